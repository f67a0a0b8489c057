/*
 * goim-job's offset tracking for at-least-once consumption: per Kafka
 * partition, the records taken and not yet finished, in offset order.  A
 * partition's commit point (next) only moves past a record once it and
 * every record before it are done, so a crash at any moment redelivers
 * whatever the comets had not acknowledged.  Pure C, no librdkafka, so
 * the unit tests drive it directly.
 */

#ifndef JOB_OFFSETS_H
#define JOB_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "goim_uv_queue.h"

typedef struct job_part_s  job_part_t;

typedef struct job_off_s {
    goim_queue_t         queue;       /* in part->inflight */
    job_part_t          *part;        /* NULL once detached */
    int64_t              offset;
    unsigned             abandoned:1;
} job_off_t;

struct job_part_s {
    goim_queue_t         inflight;    /* job_off_t, oldest first */
    size_t               count;
    int32_t              partition;
    int64_t              next;        /* offset to commit; -1: none yet */

    /*
     * Ensure records deferred (kafka.c): a hold is a record that is never
     * done by itself, so that the commit point stays before the first
     * ENSURE record job could not take; the partition is read again from
     * there (a replay, up to replay_end) once there is room.
     */
    int64_t              high;        /* next offset never taken; -1 */
    job_off_t           *hold;        /* deferred from here on */
    job_off_t           *replay_hold; /* the hold of the replay running */
    job_off_t           *cursor;      /* the replay's latest insert */
    int64_t              replay_end;  /* high when the replay started */
    int64_t              hold_mid;    /* the first mid deferred */
    unsigned             deferring:1; /* every later ENSURE is deferred */
    unsigned             dirty:1;     /* next moved since it was stored */
};

void job_part_init(job_part_t *p, int32_t partition);

/* A record at offset was taken: NULL when memory ran out. */
job_off_t *job_off_add(job_part_t *p, int64_t offset);

/*
 * The record is finished, and freed.  Returns 1 when its partition's
 * commit point moved (p->next, p->dirty set), 0 otherwise.
 */
int job_off_done(job_off_t *o);

/* The record will never be finished (job stops): it holds the commit
 * point where it is, and is freed. */
void job_off_abandon(job_off_t *o);

/*
 * A hold just before o: a record that is not done, at o's offset, so that
 * the commit point stays at o once o is done; NULL without memory.
 */
job_off_t *job_off_hold(job_part_t *p, job_off_t *o);

/*
 * A record at offset, not done, put in its place among the records after
 * "from" (NULL: all of them): a record read again (kafka.c's replays,
 * always behind a hold); NULL without memory.
 */
job_off_t *job_off_insert(job_part_t *p, int64_t offset, job_off_t *from);

/*
 * The partition was revoked: its records still running are detached
 * (their completion no longer counts), finished ones are freed.
 */
void job_part_detach(job_part_t *p);

#endif /* JOB_OFFSETS_H */
