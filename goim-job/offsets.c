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
    p->high = -1;
    p->hold = NULL;
    p->replay_hold = NULL;
    p->cursor = NULL;
    p->replay_end = -1;
    p->hold_mid = 0;
    p->deferring = 0;
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


job_off_t *
job_off_find(job_part_t *p, int64_t offset, job_off_t *from)
{
    goim_queue_t  *q;
    job_off_t     *o;

    q = from ? &from->queue : goim_queue_head(&p->inflight);

    for ( /* void */ ; q != &p->inflight; q = q->next) {
        o = goim_queue_data(q, job_off_t, queue);

        if (o->offset == offset && o != p->hold && o != p->replay_hold) {
            return o;
        }

        if (o->offset > offset) {
            break;
        }
    }

    return NULL;
}


job_off_t *
job_off_hold(job_part_t *p, job_off_t *o)
{
    job_off_t  *n;

    n = calloc(1, sizeof(job_off_t));
    if (n == NULL) {
        return NULL;
    }

    n->part = p;
    n->offset = o->offset - 1;          /* done: next is o's offset */

    /* goim_queue_insert_tail(q, x) puts x just before q */
    goim_queue_insert_tail(&o->queue, &n->queue);
    p->count++;

    return n;
}


void
job_off_reopen(job_off_t *o)
{
    o->done = 0;
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

    /* the holds belong to the partition: freed with it */
    if (p->hold) {
        p->hold->abandoned = 1;
    }

    if (p->replay_hold) {
        p->replay_hold->abandoned = 1;
    }

    p->high = -1;
    p->hold = NULL;
    p->replay_hold = NULL;
    p->cursor = NULL;
    p->replay_end = -1;
    p->deferring = 0;

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
