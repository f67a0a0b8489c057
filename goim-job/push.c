/*
 * goim-job's routing: each PushMsg (from a JOB_PUSH request or a Kafka
 * record) becomes comet calls, wrapped exactly as goim v2's job does:
 *
 *   inner = packet {ver 1, op = operation, seq 0, body = msg}
 *   proto = Proto {ver 1, op 9 (OpRaw), seq 0, body = inner}
 *
 *   PUSH       COMET_PUSH_MSG {keys, proto, proto_op = operation} to the
 *              comet whose id is msg.server
 *   ROOM       through the room aggregator (room.c): one
 *              COMET_BROADCAST_ROOM {room_id, proto = several inner
 *              packets, epoch, seq} to every comet
 *   BROADCAST  COMET_BROADCAST {proto_op, proto, speed / comets, epoch,
 *              seq} to every comet
 *
 * epoch and seq (not in goim, which skips them) are the position of the
 * first message in its stream (stream.c), for comet's room history.
 *
 * A send is one such request and its deliveries, one per comet.  A
 * delivery that fails is tried again (100 ms doubling to 3 s) for as long
 * as its comet is still listed by router; a comet that left the list
 * counts as delivered ("gone").  Only a stopping job gives up, and then
 * the record is not committed, so nothing is lost either way.
 *
 * A record finishes when every send serving it has: a JOB_PUSH request is
 * then answered (ERROR_UNAVAILABLE if any gave up), a Kafka record's
 * offset becomes committable.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_uv_log.h"
#include "job.h"


typedef struct {
    int32_t                 method;
    Goim__Proto             proto;
    uint8_t                *body;
    const Goim__PushMsg    *m;          /* PUSH, BROADCAST */
    char                  **keys;       /* job_send_keys()'s, or NULL */
    size_t                  nkeys;
    int32_t                 op;
    int32_t                 ack_filter;
    int                     delivered;  /* keys found, as comets said */
    void                  (*keys_done)(void *data, int delivered);
    char                   *room;       /* ROOM */
    int32_t                 speed;
    uint64_t                epoch;      /* ROOM, BROADCAST: the position */
    uint64_t                seq;        /* of the first message */
    unsigned                pending;    /* deliveries */
    unsigned                failed;
    job_rec_t             **recs;
    size_t                  nrecs;
    job_rec_t              *one;
    void                  (*done)(void *data);
    void                   *data;
} job_send_t;

typedef struct {
    goim_queue_t            queue;      /* in job.retrying, or in its
                                           comet's waiting list */
    job_send_t             *send;
    job_comet_t            *cm;         /* counted in its inflight */
    char                   *comet;
    uv_timer_t              timer;
    unsigned                attempts;
    unsigned                timer_init:1;
} job_dlv_t;

/* a message waiting for a fresh comet list */
typedef struct {
    job_wait_t              wait;
    job_rec_t              *rec;
    const Goim__PushMsg    *msg;
} job_route_wait_t;


/* a JOB_PUSH taken: its record and the request, which routing points into */
typedef struct {
    job_rec_t               rec;
    Goim__JobPushReq       *req;
} job_push_t;


static void job_route_msg(job_rec_t *rec, const Goim__PushMsg *m,
    int retried);
static void job_dlv_start(job_dlv_t *d);
static void job_dlv_finish(job_dlv_t *d, unsigned failed);


void
job_rec_release(job_rec_t *rec, unsigned failed)
{
    rec->failed += failed;

    if (--rec->pending == 0) {
        rec->done(rec);
    }
}


static void
job_send_finish(job_send_t *s)
{
    size_t  i;

    for (i = 0; i < s->nrecs; i++) {
        job_rec_release(s->recs[i], s->failed ? 1 : 0);
    }

    if (s->done) {
        s->done(s->data);
    }

    if (s->keys_done) {
        s->keys_done(s->data, s->failed ? -1 : s->delivered);
    }

    for (i = 0; s->keys && i < s->nkeys; i++) {
        free(s->keys[i]);
    }

    free(s->keys);

    if (s->recs != &s->one) {
        free(s->recs);
    }

    free(s->body);
    free(s->room);
    free(s);
}


static void
job_dlv_free(uv_handle_t *h)
{
    free(h->data);
}


static void
job_dlv_finish(job_dlv_t *d, unsigned failed)
{
    job_send_t  *s;

    s = d->send;
    free(d->comet);

    if (d->timer_init) {
        d->timer.data = d;
        uv_close((uv_handle_t *) &d->timer, job_dlv_free);

    } else {
        free(d);
    }

    s->failed += failed;

    if (--s->pending == 0) {
        job_send_finish(s);
    }
}


static void
job_dlv_retry_timer(uv_timer_t *t)
{
    job_dlv_t  *d;

    d = t->data;
    goim_queue_remove(&d->queue);
    job_dlv_start(d);
}


/* the call of d is over: its comet's window has room for one more */
static void
job_dlv_release(job_dlv_t *d)
{
    job_dlv_t     *w;
    job_comet_t   *cm;
    goim_queue_t  *q;

    cm = d->cm;
    d->cm = NULL;

    /* a comet being freed is no longer listed: nothing to count */
    if (cm == NULL || job_comets_find(d->comet) != cm) {
        return;
    }

    cm->inflight--;

    while (cm->inflight < (unsigned) job.conf->comet_window
           && !goim_queue_empty(&cm->waiting))
    {
        q = goim_queue_head(&cm->waiting);
        goim_queue_remove(q);
        w = goim_queue_data(q, job_dlv_t, queue);
        job_dlv_start(w);
    }
}


static void
job_dlv_done(void *data, int status, const ProtobufCMessage *reply,
    const char *message)
{
    uint64_t                   delay;
    job_dlv_t                 *d;
    const Goim__PushMsgReply  *pr;

    d = data;

    job_dlv_release(d);

    if (status == 0) {
        job.stats.sent++;

        if (reply->descriptor == &goim__push_msg_reply__descriptor) {
            pr = (const Goim__PushMsgReply *) reply;
            job.stats.keys_delivered += (uint64_t) pr->delivered;
            job.stats.keys_dropped += (uint64_t) pr->dropped;
            d->send->delivered += pr->delivered;
        }

        job_dlv_finish(d, 0);
        return;
    }

    job.stats.failed++;

    if (job.draining) {
        job_dlv_finish(d, 1);
        return;
    }

    if (job_comets_find(d->comet) == NULL) {
        job.stats.gone++;
        goim_log_info("push: comet %s is gone: %s", d->comet, message);
        job_dlv_finish(d, 0);
        return;
    }

    /* an ensure send has retries of its own, with fresher sessions */
    if (d->send->keys_done) {
        job_dlv_finish(d, 1);
        return;
    }

    if (d->attempts == 0 || d->attempts % 10 == 0) {
        goim_log_warn("push to comet %s: %s (code %d), trying again",
                      d->comet, message, status);
    }

    delay = 100u << (d->attempts < 5 ? d->attempts : 5);
    if (delay > 3000) {
        delay = 3000;
    }

    d->attempts++;
    job.stats.retries++;

    if (!d->timer_init) {
        uv_timer_init(job.loop, &d->timer);
        d->timer.data = d;
        d->timer_init = 1;
    }

    goim_queue_insert_tail(&job.retrying, &d->queue);
    uv_timer_start(&d->timer, job_dlv_retry_timer, delay, 0);
}


static void
job_dlv_start(job_dlv_t *d)
{
    job_send_t             *s;
    job_comet_t            *cm;
    Goim__PushMsgReq        push = GOIM__PUSH_MSG_REQ__INIT;
    Goim__BroadcastRoomReq  room = GOIM__BROADCAST_ROOM_REQ__INIT;
    Goim__BroadcastReq      bcast = GOIM__BROADCAST_REQ__INIT;
    const ProtobufCMessage *req;

    s = d->send;

    if (job.stopping) {
        job_dlv_finish(d, 1);           /* comets closed */
        return;
    }

    cm = job_comets_find(d->comet);
    if (cm == NULL) {
        job.stats.gone++;
        job_dlv_finish(d, 0);
        return;
    }

    if (cm->inflight >= (unsigned) job.conf->comet_window) {
        /* a busy comet: wait in job, in order, rather than flood it */
        job.stats.windowed++;
        goim_queue_insert_tail(&cm->waiting, &d->queue);
        return;
    }

    switch (s->method) {

    case GOIM__METHOD__COMET_PUSH_MSG:
        if (s->keys) {
            push.n_keys = s->nkeys;
            push.keys = s->keys;
            push.proto_op = s->op;
            push.ack_filter = s->ack_filter;

        } else {
            push.n_keys = s->m->n_keys;
            push.keys = s->m->keys;
            push.proto_op = s->m->operation;
        }

        push.proto = &s->proto;
        req = &push.base;
        break;

    case GOIM__METHOD__COMET_BROADCAST_ROOM:
        room.room_id = s->room;
        room.proto = &s->proto;
        room.epoch = s->epoch;
        room.seq = s->seq;
        req = &room.base;
        break;

    default:
        bcast.proto_op = s->m->operation;
        bcast.proto = &s->proto;
        bcast.speed = s->speed;
        bcast.epoch = s->epoch;
        bcast.seq = s->seq;
        req = &bcast.base;
        break;
    }

    cm->inflight++;
    d->cm = cm;

    if (goim_rpc_call(cm->client, s->method, req,
                      (uint64_t) job.conf->comet_timeout * 1000,
                      job_dlv_done, d)
        == NULL)
    {
        cm->inflight--;
        d->cm = NULL;
        goim_log_error("push to comet %s: out of memory", cm->id);
        job.stats.failed++;
        job_dlv_finish(d, 1);
    }
}


/* Queues a delivery of s to comet cm (started by job_send_go). */
static int
job_send_to(job_send_t *s, job_comet_t *cm)
{
    job_dlv_t  *d;

    d = calloc(1, sizeof(job_dlv_t));
    if (d == NULL) {
        return -1;
    }

    d->comet = strdup(cm->id);
    if (d->comet == NULL) {
        free(d);
        return -1;
    }

    d->send = s;
    goim_queue_init(&d->queue);
    s->pending++;

    job_dlv_start(d);

    return 0;
}


static job_send_t *
job_send_create(int32_t method, uint8_t *body, size_t len, job_rec_t **recs,
    size_t nrecs)
{
    size_t       i;
    job_send_t  *s;

    s = calloc(1, sizeof(job_send_t));
    if (s == NULL) {
        return NULL;
    }

    if (nrecs <= 1) {
        s->recs = &s->one;

    } else {
        s->recs = malloc(nrecs * sizeof(job_rec_t *));
        if (s->recs == NULL) {
            free(s);
            return NULL;
        }
    }

    for (i = 0; i < nrecs; i++) {
        s->recs[i] = recs[i];
        recs[i]->pending++;
    }

    s->nrecs = nrecs;
    s->method = method;
    s->body = body;

    goim__proto__init(&s->proto);
    s->proto.ver = GOIM_PUSH_VERSION;
    s->proto.op = GOIM_OP_RAW;
    s->proto.seq = 0;
    s->proto.body.data = body;
    s->proto.body.len = len;

    /* held until every delivery has been queued */
    s->pending = 1;

    return s;
}


/* Sends s to one comet (cm) or to every comet (cm NULL), then lets go. */
static void
job_send_go(job_send_t *s, job_comet_t *cm)
{
    goim_queue_t  *q;

    if (job.stopping) {
        s->failed++;                    /* comets closed: not delivered */

    } else if (cm) {
        if (job_send_to(s, cm) != 0) {
            s->failed++;
        }

    } else {
        for (q = goim_queue_head(&job.comets); q != &job.comets; q = q->next)
        {
            cm = goim_queue_data(q, job_comet_t, queue);

            if (job_send_to(s, cm) != 0) {
                s->failed++;
            }
        }
    }

    if (--s->pending == 0) {
        job_send_finish(s);
    }
}


int
job_send_room(const char *room, uint8_t *body, size_t len, job_rec_t **recs,
    size_t nrecs, uint64_t epoch, uint64_t seq, void (*done)(void *data),
    void *data)
{
    size_t       i;
    job_send_t  *s;

    s = job_send_create(GOIM__METHOD__COMET_BROADCAST_ROOM, body, len, recs,
                        nrecs);
    if (s == NULL) {
        return -1;
    }

    s->room = strdup(room);
    if (s->room == NULL) {
        for (i = 0; i < nrecs; i++) {
            recs[i]->pending--;
        }

        if (s->recs != &s->one) {
            free(s->recs);
        }

        free(s);
        return -1;
    }

    s->done = done;
    s->data = data;
    s->epoch = epoch;
    s->seq = seq;
    job.stats.room_batches++;

    job_send_go(s, NULL);

    return 0;
}


int
job_send_keys(job_comet_t *cm, const char *key, int32_t op,
    int32_t ack_filter, uint8_t *body, size_t len,
    void (*done)(void *data, int delivered), void *data)
{
    job_send_t  *s;

    s = job_send_create(GOIM__METHOD__COMET_PUSH_MSG, body, len, NULL, 0);
    if (s == NULL) {
        return -1;
    }

    s->keys = malloc(sizeof(char *));
    if (s->keys == NULL || (s->keys[0] = strdup(key)) == NULL) {
        free(s->keys);
        free(s);
        return -1;
    }

    s->nkeys = 1;
    s->op = op;
    s->ack_filter = ack_filter;
    s->keys_done = done;
    s->data = data;

    job_send_go(s, cm);

    return 0;
}


/* the inner packet {ver 1, op, seq 0, body}: malloc'd, NULL on failure */
static uint8_t *
job_inner(const Goim__PushMsg *m, size_t *len)
{
    uint8_t  *inner;

    *len = GOIM_HEADER_LEN + m->msg.len;

    inner = malloc(*len);
    if (inner == NULL) {
        return NULL;
    }

    goim_packet_write(inner, GOIM_PUSH_VERSION, m->operation, 0, m->msg.data,
                      m->msg.len);

    return inner;
}


static void
job_route_ready(job_wait_t *w)
{
    job_route_wait_t  *rw;
    job_rec_t         *rec;

    rw = (job_route_wait_t *) w;
    rec = rw->rec;

    job_route_msg(rec, rw->msg, 1);
    free(rw);

    job_rec_release(rec, 0);
}


/* Waits for a fresh comet list, then routes m again: 0, or -1. */
static int
job_route_wait(job_rec_t *rec, const Goim__PushMsg *m)
{
    job_route_wait_t  *rw;

    rw = calloc(1, sizeof(job_route_wait_t));
    if (rw == NULL) {
        return -1;
    }

    rw->wait.ready = job_route_ready;
    rw->rec = rec;
    rw->msg = m;
    rec->pending++;

    job_comets_wait(&rw->wait);

    return 0;
}


static void
job_route_drop(const Goim__PushMsg *m, const char *why)
{
    job.stats.dropped++;
    goim_log_warn("push: dropped a %s message (op %d): %s",
                  m->type == GOIM__PUSH_MSG__TYPE__PUSH ? "push"
                  : m->type == GOIM__PUSH_MSG__TYPE__ROOM ? "room"
                  : "broadcast", (int) m->operation, why);
}


static void
job_route_msg(job_rec_t *rec, const Goim__PushMsg *m, int retried)
{
    size_t        len;
    uint8_t      *inner;
    job_send_t   *s;
    job_comet_t  *cm;
    char          why[160];

    if (job.draining) {
        rec->failed++;
        return;
    }

    cm = NULL;

    switch (m->type) {

    case GOIM__PUSH_MSG__TYPE__PUSH:
        if (m->n_keys == 0) {
            job_route_drop(m, "no keys");
            return;
        }

        cm = job_comets_find(m->server);
        if (cm) {
            break;
        }

        if (!retried && job_route_wait(rec, m) == 0) {
            return;
        }

        snprintf(why, sizeof(why), "no comet \"%s\"", m->server);
        job_route_drop(m, why);
        return;

    case GOIM__PUSH_MSG__TYPE__ROOM:
    case GOIM__PUSH_MSG__TYPE__BROADCAST:
        if (job.ncomets) {
            break;
        }

        if (!retried && job_route_wait(rec, m) == 0) {
            return;
        }

        job_route_drop(m, "no comets");
        return;

    default:
        job_route_drop(m, "unknown type");
        return;
    }

    if (m->type == GOIM__PUSH_MSG__TYPE__ROOM) {
        job_rooms_add(rec, m);
        return;
    }

    inner = job_inner(m, &len);
    if (inner == NULL) {
        goto nomem;
    }

    s = job_send_create(m->type == GOIM__PUSH_MSG__TYPE__PUSH
                        ? GOIM__METHOD__COMET_PUSH_MSG
                        : GOIM__METHOD__COMET_BROADCAST,
                        inner, len, &rec, 1);
    if (s == NULL) {
        free(inner);
        goto nomem;
    }

    s->m = m;
    s->speed = m->speed / (int32_t) job.ncomets;

    if (m->type == GOIM__PUSH_MSG__TYPE__BROADCAST) {
        /* the broadcasts' stream: "", which no room can be named */
        (void) job_streams_take("", 1, &s->epoch, &s->seq);
    }

    job_send_go(s, cm);
    return;

nomem:

    goim_log_error("push: out of memory");
    job.stats.failed++;
    rec->failed++;
}


void
job_route(job_rec_t *rec, const Goim__PushMsg *m)
{
    job_route_msg(rec, m, 0);
}


void
job_push_comet_gone(job_comet_t *cm)
{
    job_dlv_t     *d;
    goim_queue_t  *q;

    while (!goim_queue_empty(&cm->waiting)) {
        q = goim_queue_head(&cm->waiting);
        goim_queue_remove(q);
        d = goim_queue_data(q, job_dlv_t, queue);

        if (job.stopping) {
            job_dlv_finish(d, 1);       /* not delivered: uncommitted */

        } else {
            job.stats.gone++;
            job_dlv_finish(d, 0);
        }
    }
}


void
job_push_stop(void)
{
    job_dlv_t     *d;
    goim_queue_t  *q;

    /* deliveries waiting to try again give up: not committed */
    while (!goim_queue_empty(&job.retrying)) {
        q = goim_queue_head(&job.retrying);
        goim_queue_remove(q);

        d = goim_queue_data(q, job_dlv_t, queue);
        uv_timer_stop(&d->timer);
        job_dlv_finish(d, 1);
    }
}


/*
 * A JOB_PUSH is answered once taken, not once delivered (goim's logic
 * answers once its Kafka produce is done): a caller's rate is not bounded
 * by its concurrency over the fan-out's time.  What fails afterwards is
 * counted (failed, dropped, gone) and logged here; a job stopped with
 * SIGTERM still finishes what it took, within stop_timeout.
 */

static void
job_push_done(job_rec_t *rec)
{
    job_push_t  *p;

    p = (job_push_t *) rec;

    job.inflight--;

    if (rec->failed) {
        job.stats.push_failed++;
        goim_log_warn("push: a request taken earlier failed: %u comet calls "
                      "given up (job stopping)", rec->failed);
    }

    goim__job_push_req__free_unpacked(p->req, NULL);
    free(p);

    job_stop_check();
}


void
job_push(goim_rpc_req_t *r)
{
    size_t             i;
    job_push_t        *p;
    Goim__JobPushReq  *req;
    char               text[96];

    req = (Goim__JobPushReq *) r->msg;

    job.stats.requests++;
    job.stats.msgs += req->n_msgs;

    /* ensure records are kept (ensure.c), answered once taken */
    if (job_ensure_push(r)) {
        return;
    }

    if (job.draining) {
        job.stats.push_refused++;
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAVAILABLE,
                             "job is stopping");
        return;
    }

    /* the bound on what job holds: past it a push is refused at once */
    if (job.inflight >= (uint64_t) job.conf->max_inflight) {
        job.stats.push_refused++;
        snprintf(text, sizeof(text), "job is full: %llu pushes in flight "
                 "(max_inflight)", (unsigned long long) job.inflight);
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAVAILABLE, text);
        return;
    }

    p = calloc(1, sizeof(job_push_t));
    if (p == NULL) {
        goim_log_error("push: out of memory");
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                             "out of memory");
        return;
    }

    /* the record keeps the request: the sends point into its messages */
    p->req = req;
    r->msg = NULL;

    p->rec.done = job_push_done;
    p->rec.pending = 1;             /* until every message is routed */
    job.inflight++;

    for (i = 0; i < req->n_msgs; i++) {
        job_route(&p->rec, req->msgs[i]);
    }

    /* taken: answered now, delivered from here on */
    {
        Goim__JobPushReply  reply = GOIM__JOB_PUSH_REPLY__INIT;

        goim_rpc_reply(r, &reply.base);
    }

    job_rec_release(&p->rec, 0);
}
