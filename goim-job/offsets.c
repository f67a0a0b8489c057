/*
 * goim-job's per-partition offset tracking (offsets.h): the records taken
 * from a partition and not finished, oldest first.  A finished record
 * leaves the list at once; the commit point is the offset of the oldest
 * record still there (the next one to read again after a crash), or,
 * when none is, the offset after the last one taken.  So the memory is
 * the unfinished records', however long one of them holds the commit
 * point.
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

    if (offset + 1 > p->high) {
        p->high = offset + 1;
    }

    return o;
}


int
job_off_done(job_off_t *o)
{
    int            head;
    int64_t        next;
    job_part_t    *p;
    goim_queue_t  *q;

    p = o->part;

    if (p == NULL) {
        free(o);
        return 0;
    }

    head = goim_queue_head(&p->inflight) == &o->queue;

    if (p->cursor == o) {
        q = o->queue.prev;
        p->cursor = q == &p->inflight ? NULL
                                      : goim_queue_data(q, job_off_t, queue);
    }

    goim_queue_remove(&o->queue);
    p->count--;
    free(o);

    if (!head) {
        return 0;                       /* an older record holds it */
    }

    if (goim_queue_empty(&p->inflight)) {
        next = p->high;

    } else {
        next = goim_queue_data(goim_queue_head(&p->inflight), job_off_t,
                               queue)->offset;
    }

    if (next <= p->next) {
        return 0;
    }

    p->next = next;
    p->dirty = 1;

    return 1;
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
    n->offset = o->offset;

    /* goim_queue_insert_tail(q, x) puts x just before q */
    goim_queue_insert_tail(&o->queue, &n->queue);
    p->count++;

    return n;
}


job_off_t *
job_off_insert(job_part_t *p, int64_t offset, job_off_t *from)
{
    job_off_t     *n;
    goim_queue_t  *q;

    n = calloc(1, sizeof(job_off_t));
    if (n == NULL) {
        return NULL;
    }

    n->part = p;
    n->offset = offset;

    q = from ? from->queue.next : goim_queue_head(&p->inflight);

    while (q != &p->inflight
           && goim_queue_data(q, job_off_t, queue)->offset <= offset)
    {
        q = q->next;
    }

    goim_queue_insert_tail(q, &n->queue);
    p->count++;

    return n;
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

        if (o->abandoned) {
            free(o);

        } else {
            o->part = NULL;
        }
    }

    p->count = 0;
    p->dirty = 0;
}
