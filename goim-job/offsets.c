/*
 * goim-job's per-partition offset tracking (offsets.h): a list of the
 * records taken from a partition, oldest first.  A record finishing at
 * the head advances the commit point past every finished record behind
 * it; one finishing elsewhere just waits to be reached.
 */

#include <stdlib.h>

#include "offsets.h"


void
job_part_init(job_part_t *p, int32_t partition)
{
    goim_queue_init(&p->inflight);
    p->count = 0;
    p->partition = partition;
    p->next = -1;
    p->dirty = 0;
}


job_off_t *
job_off_add(job_part_t *p, int64_t offset)
{
    job_off_t  *o;

    o = calloc(1, sizeof(job_off_t));
    if (o == NULL) {
        return NULL;
    }

    o->part = p;
    o->offset = offset;
    goim_queue_insert_tail(&p->inflight, &o->queue);
    p->count++;

    return o;
}


int
job_off_done(job_off_t *o)
{
    int            moved;
    job_part_t    *p;
    goim_queue_t  *q;

    p = o->part;

    if (p == NULL) {
        free(o);
        return 0;
    }

    o->done = 1;
    moved = 0;

    while (!goim_queue_empty(&p->inflight)) {
        q = goim_queue_head(&p->inflight);
        o = goim_queue_data(q, job_off_t, queue);

        if (!o->done) {
            break;
        }

        p->next = o->offset + 1;
        p->dirty = 1;
        moved = 1;

        goim_queue_remove(q);
        p->count--;
        free(o);
    }

    return moved;
}


void
job_off_abandon(job_off_t *o)
{
    if (o->part) {
        /* the records behind it may finish, but never get past it;
         * job_part_detach() frees it */
        o->abandoned = 1;
        return;
    }

    free(o);
}


void
job_part_detach(job_part_t *p)
{
    goim_queue_t  *q;
    job_off_t     *o;

    while (!goim_queue_empty(&p->inflight)) {
        q = goim_queue_head(&p->inflight);
        o = goim_queue_data(q, job_off_t, queue);

        goim_queue_remove(q);

        if (o->done || o->abandoned) {
            free(o);

        } else {
            o->part = NULL;
        }
    }

    p->count = 0;
    p->dirty = 0;
}
