/*
 * goim-job's room aggregator.  goim makes a lone room message wait up to
 * room.signal (1 s) for company; here a message goes out at once when its
 * room is idle, and batches only form under load:
 *
 *   - at most one BroadcastRoom per room is in flight, so the messages of
 *     a room reach every comet in the order they were taken (a failed
 *     call is retried before anything behind it goes);
 *   - messages arriving meanwhile queue up; when the call in flight has
 *     finished, up to room_batch of them leave as one OpRaw body, but no
 *     sooner than room_wait ms after the previous batch left (so a busy
 *     room sends at most one batch per room_wait, and a message waits at
 *     most room_wait plus one round trip);
 *   - a room with nothing queued and nothing in flight is freed at once.
 *
 * Each queued message holds a reference on its record, handed to the send
 * at flush time, so a Kafka offset is committable only once its batch was
 * acknowledged by every comet.
 */

#include <stdlib.h>
#include <string.h>

#include "goim_uv_hash.h"
#include "goim_uv_log.h"
#include "job.h"


typedef struct {
    goim_hnode_t            hnode;
    uint32_t                hv;
    char                   *room;
    goim_queue_t            msgs;       /* job_room_msg_t */
    size_t                  count;
    uv_timer_t              timer;
    uint64_t                last_flush; /* uv_now() */
    unsigned                inflight:1;
    unsigned                flushed:1;  /* last_flush is set */
} job_room_t;

typedef struct {
    goim_queue_t            queue;
    job_rec_t              *rec;
    size_t                  len;
    uint8_t                 data[];     /* the inner packet */
} job_room_msg_t;


static goim_hash_t  job_rooms_tab;


static void job_room_timer(uv_timer_t *t);


static uint32_t
job_room_hash(const goim_hnode_t *node)
{
    return ((const job_room_t *) node)->hv;
}


int
job_rooms_init(void)
{
    return goim_hash_init(&job_rooms_tab, 64, job_room_hash);
}


size_t
job_rooms_count(void)
{
    return job_rooms_tab.count;
}


static job_room_t *
job_room_get(const char *name)
{
    uint32_t       hv;
    job_room_t    *rm;
    goim_hnode_t  *n;

    hv = goim_hash_str(name);

    for (n = goim_hash_chain(&job_rooms_tab, hv); n; n = n->next) {
        rm = (job_room_t *) n;

        if (rm->hv == hv && strcmp(rm->room, name) == 0) {
            return rm;
        }
    }

    rm = calloc(1, sizeof(job_room_t));
    if (rm == NULL) {
        return NULL;
    }

    rm->room = strdup(name);
    if (rm->room == NULL) {
        free(rm);
        return NULL;
    }

    rm->hv = hv;
    goim_queue_init(&rm->msgs);
    uv_timer_init(job.loop, &rm->timer);
    rm->timer.data = rm;

    goim_hash_insert(&job_rooms_tab, &rm->hnode, hv);

    return rm;
}


static void
job_room_free(uv_handle_t *h)
{
    job_room_t  *rm;

    rm = h->data;
    free(rm->room);
    free(rm);
}


static void
job_room_close(job_room_t *rm)
{
    goim_hash_remove(&job_rooms_tab, &rm->hnode, rm->hv);
    uv_close((uv_handle_t *) &rm->timer, job_room_free);
}


static void
job_room_sent(void *data)
{
    job_room_t  *rm;

    rm = data;
    rm->inflight = 0;

    /* never from inside the flush: the next step runs from the loop */
    uv_timer_start(&rm->timer, job_room_timer, 0, 0);
}


static void
job_room_flush(job_room_t *rm)
{
    size_t           n, i, len;
    uint8_t         *body, *p;
    uint64_t         epoch, seq;
    job_rec_t      **recs;
    goim_queue_t    *q;
    job_room_msg_t  *msg;

    n = rm->count;
    if (n > (size_t) job.conf->room_batch) {
        n = (size_t) job.conf->room_batch;
    }

    len = 0;
    q = goim_queue_head(&rm->msgs);

    for (i = 0; i < n; i++) {
        len += goim_queue_data(q, job_room_msg_t, queue)->len;
        q = q->next;
    }

    body = malloc(len);
    recs = malloc(n * sizeof(job_rec_t *));

    if (body == NULL || recs == NULL) {
        free(body);
        free(recs);
        goim_log_error("room %s: out of memory, trying again", rm->room);
        uv_timer_start(&rm->timer, job_room_timer, 100, 0);
        return;
    }

    p = body;

    for (i = 0; i < n; i++) {
        q = goim_queue_head(&rm->msgs);
        goim_queue_remove(q);
        rm->count--;

        msg = goim_queue_data(q, job_room_msg_t, queue);
        memcpy(p, msg->data, msg->len);
        p += msg->len;
        recs[i] = msg->rec;
        free(msg);
    }

    rm->inflight = 1;
    rm->flushed = 1;
    rm->last_flush = uv_now(job.loop);

    /* taken when the batch leaves: positions go in the order sent */
    (void) job_streams_take(rm->room, n, &epoch, &seq);

    if (job_send_room(rm->room, body, len, recs, n, epoch, seq,
                      job_room_sent, rm)
        != 0)
    {
        goim_log_error("room %s: out of memory", rm->room);
        free(body);
        rm->inflight = 0;
        job.stats.failed++;

        for (i = 0; i < n; i++) {
            job_rec_release(recs[i], 1);
        }

        free(recs);
        uv_timer_start(&rm->timer, job_room_timer, 0, 0);
        return;
    }

    /* the send holds the records now */
    for (i = 0; i < n; i++) {
        job_rec_release(recs[i], 0);
    }

    free(recs);
}


/* What a room does next: flush, wait, or go away. */
static void
job_room_kick(job_room_t *rm)
{
    uint64_t  now, due;

    if (rm->inflight) {
        return;
    }

    if (rm->count == 0) {
        job_room_close(rm);
        return;
    }

    now = uv_now(job.loop);
    due = rm->flushed ? rm->last_flush + (uint64_t) job.conf->room_wait : 0;

    if (now >= due || job.draining
        || rm->count >= (size_t) job.conf->room_batch)
    {
        job_room_flush(rm);
        return;
    }

    /* a busy room: a batch has just left; the next waits for company */
    if (!uv_is_active((uv_handle_t *) &rm->timer)) {
        uv_timer_start(&rm->timer, job_room_timer, due - now, 0);
    }
}


static void
job_room_timer(uv_timer_t *t)
{
    job_room_kick(t->data);
}


void
job_rooms_add(job_rec_t *rec, const Goim__PushMsg *m)
{
    job_room_t      *rm;
    job_room_msg_t  *msg;

    rm = job_room_get(m->room);
    if (rm) {
        msg = malloc(sizeof(job_room_msg_t) + GOIM_HEADER_LEN + m->msg.len);
    }

    if (rm == NULL || msg == NULL) {
        goim_log_error("room %s: out of memory", m->room);
        job.stats.failed++;
        rec->failed++;

        if (rm && rm->count == 0 && !rm->inflight
            && !uv_is_active((uv_handle_t *) &rm->timer))
        {
            job_room_close(rm);
        }

        return;
    }

    msg->rec = rec;
    msg->len = GOIM_HEADER_LEN + m->msg.len;
    goim_packet_write(msg->data, GOIM_PUSH_VERSION, m->operation, 0,
                      m->msg.data, m->msg.len);

    rec->pending++;
    goim_queue_insert_tail(&rm->msgs, &msg->queue);
    rm->count++;
    job.stats.room_msgs++;

    if (rm->count >= (size_t) job.conf->room_batch
        && uv_is_active((uv_handle_t *) &rm->timer))
    {
        /* a full batch does not wait for company */
        uv_timer_stop(&rm->timer);
    }

    if (!uv_is_active((uv_handle_t *) &rm->timer)) {
        job_room_kick(rm);
    }
}


static void
job_room_flush_one(goim_hnode_t *node, void *arg)
{
    job_room_t  *rm;

    (void) arg;

    rm = (job_room_t *) node;
    uv_timer_stop(&rm->timer);
    job_room_kick(rm);
}


void
job_rooms_flush(void)
{
    goim_hash_each(&job_rooms_tab, job_room_flush_one, NULL);
}


static void
job_room_free_one(goim_hnode_t *node, void *arg)
{
    job_room_t      *rm;
    goim_queue_t    *q;
    job_room_msg_t  *msg;

    (void) arg;

    rm = (job_room_t *) node;

    while (!goim_queue_empty(&rm->msgs)) {
        q = goim_queue_head(&rm->msgs);
        goim_queue_remove(q);
        msg = goim_queue_data(q, job_room_msg_t, queue);
        job_rec_release(msg->rec, 1);
        free(msg);
    }

    rm->count = 0;
    job_room_close(rm);
}


void
job_rooms_free(void)
{
    if (job_rooms_tab.buckets == NULL) {
        return;
    }

    goim_hash_each(&job_rooms_tab, job_room_free_one, NULL);
    goim_hash_free(&job_rooms_tab);
    job_rooms_tab.buckets = NULL;
}
