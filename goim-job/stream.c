/*
 * goim-job's room streams (not in goim): every room message, and every
 * broadcast, gets a position in its stream, so that a client that comes
 * back can ask comet for what it missed (room recovery, docs/protocol.md
 * "Room positions").
 *
 * A position is EPOCH:SEQ.  SEQ counts a stream's messages from 1, one
 * apart; the epoch names one run of that counter.  A stream is a room's
 * name, or "" for the broadcasts.  Epochs come from one clock that only
 * grows (microseconds, at least one more than the last handed out), so a
 * restarted job, or a stream forgotten and met again, starts an epoch no
 * client has seen: comet then tells a client holding an older position
 * that its gap cannot be recovered, rather than serve it the wrong
 * messages.
 *
 * The streams are bounded by room_streams: past it the one used least
 * recently is forgotten (counted in streams_evicted).
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goim_uv_hash.h"
#include "goim_uv_log.h"
#include "job.h"


typedef struct {
    goim_hnode_t            hnode;
    uint32_t                hv;
    goim_queue_t            lru;        /* the most recent at the tail */
    uint64_t                epoch;
    uint64_t                seq;        /* the last one handed out */
    char                    name[];
} job_stream_t;


static goim_hash_t   job_streams_tab;
static goim_queue_t  job_streams_lru;
static uint64_t      job_streams_epoch;


static uint32_t
job_stream_hash(const goim_hnode_t *node)
{
    return ((const job_stream_t *) node)->hv;
}


int
job_streams_init(void)
{
    goim_queue_init(&job_streams_lru);

    return goim_hash_init(&job_streams_tab, 64, job_stream_hash);
}


size_t
job_streams_count(void)
{
    return job_streams_tab.count;
}


static uint64_t
job_streams_new_epoch(void)
{
    uint64_t         now;
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;

    job_streams_epoch = now > job_streams_epoch ? now : job_streams_epoch + 1;

    return job_streams_epoch;
}


static void
job_stream_forget(job_stream_t *st)
{
    goim_hash_remove(&job_streams_tab, &st->hnode, st->hv);
    goim_queue_remove(&st->lru);
    free(st);
}


/*
 * n positions in a row in name's stream: the first in *epoch, *seq.
 * -1 (out of memory): the messages go without a position (epoch 0), as
 * goim's do; comet then keeps no history of them.
 */

int
job_streams_take(const char *name, uint64_t n, uint64_t *epoch, uint64_t *seq)
{
    size_t         len;
    uint32_t       hv;
    goim_hnode_t  *node;
    job_stream_t  *st;

    hv = goim_hash_str(name);

    for (node = goim_hash_chain(&job_streams_tab, hv); node; node = node->next)
    {
        st = (job_stream_t *) node;

        if (st->hv == hv && strcmp(st->name, name) == 0) {
            goim_queue_remove(&st->lru);
            goim_queue_insert_tail(&job_streams_lru, &st->lru);
            goto found;
        }
    }

    if (job_streams_tab.count >= (size_t) job.conf->room_streams
        && !goim_queue_empty(&job_streams_lru))
    {
        job.stats.streams_evicted++;
        job_stream_forget(goim_queue_data(goim_queue_head(&job_streams_lru),
                                          job_stream_t, lru));
    }

    len = strlen(name);

    st = malloc(sizeof(job_stream_t) + len + 1);
    if (st == NULL) {
        goim_log_error("stream \"%s\": out of memory, no position", name);
        *epoch = 0;
        *seq = 0;
        return -1;
    }

    memcpy(st->name, name, len + 1);
    st->hv = hv;
    st->epoch = job_streams_new_epoch();
    st->seq = 0;

    goim_hash_insert(&job_streams_tab, &st->hnode, hv);
    goim_queue_insert_tail(&job_streams_lru, &st->lru);

found:

    *epoch = st->epoch;
    *seq = st->seq + 1;
    st->seq += n;

    return 0;
}


static void
job_stream_free_one(goim_hnode_t *node, void *arg)
{
    (void) arg;

    job_stream_forget((job_stream_t *) node);
}


void
job_streams_free(void)
{
    if (job_streams_tab.buckets == NULL) {
        return;
    }

    goim_hash_each(&job_streams_tab, job_stream_free_one, NULL);
    goim_hash_free(&job_streams_tab);
    job_streams_tab.buckets = NULL;
}
