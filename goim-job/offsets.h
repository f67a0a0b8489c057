/*
 * goim-job's offset tracking for at-least-once consumption: per Kafka
 * partition, the records taken and not yet finished, in the order they
 * were taken.  A partition's commit point (next) only moves past a record
 * once it and every record before it are done, so a crash at any moment
 * redelivers whatever the comets had not acknowledged.  Pure C, no
 * librdkafka, so the unit tests drive it directly.
 */

#ifndef JOB_OFFSETS_H
#define JOB_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "goim_uv_queue.h"

typedef struct job_part_s  job_part_t;

typedef struct {
    goim_queue_t         queue;       /* in part->inflight */
    job_part_t          *part;        /* NULL once detached */
    int64_t              offset;
    unsigned             done:1;
    unsigned             abandoned:1;
} job_off_t;

struct job_part_s {
    goim_queue_t         inflight;    /* job_off_t, oldest first */
    size_t               count;
    int32_t              partition;
    int64_t              next;        /* offset to commit; -1: none yet */
    unsigned             dirty:1;     /* next moved since it was stored */
};

void job_part_init(job_part_t *p, int32_t partition);

/* A record at offset was taken: NULL when memory ran out. */
job_off_t *job_off_add(job_part_t *p, int64_t offset);

/*
 * The record is finished.  Returns 1 when its partition's commit point
 * moved (p->next, p->dirty set), 0 otherwise.  o is freed now or when the
 * records before it are done.
 */
int job_off_done(job_off_t *o);

/* The record will never be finished (job stops): it holds the commit
 * point where it is, and is freed. */
void job_off_abandon(job_off_t *o);

/*
 * The partition was revoked: its records still running are detached
 * (their completion no longer counts), finished ones are freed.
 */
void job_part_detach(job_part_t *p);

#endif /* JOB_OFFSETS_H */
