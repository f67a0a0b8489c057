/*
 * goim-job's routing: each PushMsg of a JOB_PUSH request becomes comet
 * calls, wrapped exactly as goim v2's job does:
 *
 *   inner = packet {ver 1, op = operation, seq 0, body = msg}
 *   proto = Proto {ver 1, op 9 (OpRaw), seq 0, body = inner}
 *
 *   PUSH       COMET_PUSH_MSG {keys, proto, proto_op = operation} to the
 *              comet whose id is msg.server
 *   ROOM       COMET_BROADCAST_ROOM {room_id = msg.room, proto} to every
 *              comet
 *   BROADCAST  COMET_BROADCAST {proto_op, proto, speed / comets} to every
 *              comet
 *
 * The request is answered once every comet call it made has answered: OK
 * when all succeeded, ERROR_UNAVAILABLE when any failed (logic then says
 * 503).  A message with nowhere to go (an unknown comet even after a fresh
 * list, or no comet at all) is counted as dropped and does not fail it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_uv_log.h"
#include "job.h"


typedef struct {
    goim_rpc_req_t   *r;
    unsigned          pending;   /* calls and waits; +1 while dispatching */
    unsigned          calls;
    unsigned          failed;
} job_push_t;

/* a message waiting for a fresh comet list */
typedef struct {
    job_wait_t             wait;
    job_push_t            *push;
    const Goim__PushMsg   *msg;      /* in push->r->msg */
} job_push_wait_t;


static void job_push_msg(job_push_t *p, const Goim__PushMsg *m,
    int retried);


static void
job_push_finish(job_push_t *p)
{
    char                 text[64];
    Goim__JobPushReply   reply = GOIM__JOB_PUSH_REPLY__INIT;

    if (--p->pending) {
        return;
    }

    if (p->failed) {
        snprintf(text, sizeof(text), "%u of %u comet calls failed",
                 p->failed, p->calls);
        goim_rpc_reply_error(p->r, GOIM__ERROR_CODE__ERROR_UNAVAILABLE,
                             text);

    } else {
        goim_rpc_reply(p->r, &reply.base);
    }

    free(p);
}


static void
job_push_done(void *data, int status, const ProtobufCMessage *reply,
    const char *message)
{
    job_push_t                *p;
    const Goim__PushMsgReply  *pr;

    p = data;

    if (status != 0) {
        p->failed++;
        job.stats.failed++;
        goim_log_warn("push: %s (code %d)", message, status);

    } else {
        job.stats.sent++;

        if (reply->descriptor == &goim__push_msg_reply__descriptor) {
            pr = (const Goim__PushMsgReply *) reply;
            job.stats.keys_delivered += (uint64_t) pr->delivered;
            job.stats.keys_dropped += (uint64_t) pr->dropped;
        }
    }

    job_push_finish(p);
}


static void
job_push_call(job_push_t *p, job_comet_t *cm, int32_t method,
    const ProtobufCMessage *req)
{
    p->calls++;
    p->pending++;

    if (goim_rpc_call(cm->client, method, req,
                      (uint64_t) job.conf->comet_timeout * 1000,
                      job_push_done, p)
        == NULL)
    {
        goim_log_error("push to comet %s: out of memory", cm->id);
        p->failed++;
        job.stats.failed++;
        p->pending--;
    }
}


static void
job_push_ready(job_wait_t *w)
{
    job_push_wait_t  *pw;

    pw = (job_push_wait_t *) w;

    job_push_msg(pw->push, pw->msg, 1);
    job_push_finish(pw->push);
    free(pw);
}


/* Waits for a fresh comet list, then routes m again: 0, or -1. */
static int
job_push_wait(job_push_t *p, const Goim__PushMsg *m)
{
    job_push_wait_t  *pw;

    pw = calloc(1, sizeof(job_push_wait_t));
    if (pw == NULL) {
        return -1;
    }

    pw->wait.ready = job_push_ready;
    pw->push = p;
    pw->msg = m;
    p->pending++;

    job_comets_wait(&pw->wait);

    return 0;
}


static void
job_push_drop(const Goim__PushMsg *m, const char *why)
{
    job.stats.dropped++;
    goim_log_warn("push: dropped a %s message (op %d): %s",
                  m->type == GOIM__PUSH_MSG__TYPE__PUSH ? "push"
                  : m->type == GOIM__PUSH_MSG__TYPE__ROOM ? "room"
                  : "broadcast", (int) m->operation, why);
}


static void
job_push_msg(job_push_t *p, const Goim__PushMsg *m, int retried)
{
    uint8_t                *inner;
    size_t                  len;
    goim_queue_t           *q;
    job_comet_t            *cm;
    char                    why[160];
    Goim__Proto             proto = GOIM__PROTO__INIT;
    Goim__PushMsgReq        push = GOIM__PUSH_MSG_REQ__INIT;
    Goim__BroadcastRoomReq  room = GOIM__BROADCAST_ROOM_REQ__INIT;
    Goim__BroadcastReq      bcast = GOIM__BROADCAST_REQ__INIT;

    if (job.stopping) {
        p->failed++;
        job.stats.failed++;
        return;
    }

    cm = NULL;

    switch (m->type) {

    case GOIM__PUSH_MSG__TYPE__PUSH:
        if (m->n_keys == 0) {
            job_push_drop(m, "no keys");
            return;
        }

        cm = job_comets_find(m->server);
        if (cm) {
            break;
        }

        if (!retried && job_push_wait(p, m) == 0) {
            return;
        }

        snprintf(why, sizeof(why), "no comet \"%s\"", m->server);
        job_push_drop(m, why);
        return;

    case GOIM__PUSH_MSG__TYPE__ROOM:
    case GOIM__PUSH_MSG__TYPE__BROADCAST:
        if (job.ncomets) {
            break;
        }

        if (!retried && job_push_wait(p, m) == 0) {
            return;
        }

        job_push_drop(m, "no comets");
        return;

    default:
        job_push_drop(m, "unknown type");
        return;
    }

    len = GOIM_HEADER_LEN + m->msg.len;

    inner = malloc(len);
    if (inner == NULL) {
        goim_log_error("push: out of memory");
        p->failed++;
        job.stats.failed++;
        return;
    }

    goim_packet_write(inner, GOIM_PUSH_VERSION, m->operation, 0, m->msg.data,
                      m->msg.len);

    proto.ver = GOIM_PUSH_VERSION;
    proto.op = GOIM_OP_RAW;
    proto.seq = 0;
    proto.body.data = inner;
    proto.body.len = len;

    switch (m->type) {

    case GOIM__PUSH_MSG__TYPE__PUSH:
        push.n_keys = m->n_keys;
        push.keys = m->keys;
        push.proto = &proto;
        push.proto_op = m->operation;
        job_push_call(p, cm, GOIM__METHOD__COMET_PUSH_MSG, &push.base);
        break;

    case GOIM__PUSH_MSG__TYPE__ROOM:
        room.room_id = m->room;
        room.proto = &proto;

        for (q = goim_queue_head(&job.comets); q != &job.comets; q = q->next)
        {
            cm = goim_queue_data(q, job_comet_t, queue);
            job_push_call(p, cm, GOIM__METHOD__COMET_BROADCAST_ROOM,
                          &room.base);
        }

        break;

    default:
        bcast.proto_op = m->operation;
        bcast.proto = &proto;
        bcast.speed = m->speed / (int32_t) job.ncomets;

        for (q = goim_queue_head(&job.comets); q != &job.comets; q = q->next)
        {
            cm = goim_queue_data(q, job_comet_t, queue);
            job_push_call(p, cm, GOIM__METHOD__COMET_BROADCAST,
                          &bcast.base);
        }

        break;
    }

    free(inner);
}


void
job_push(goim_rpc_req_t *r)
{
    size_t             i;
    job_push_t        *p;
    Goim__JobPushReq  *req;

    req = (Goim__JobPushReq *) r->msg;

    job.stats.requests++;
    job.stats.msgs += req->n_msgs;

    p = calloc(1, sizeof(job_push_t));
    if (p == NULL) {
        goim_log_error("push: out of memory");
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                             "out of memory");
        return;
    }

    p->r = r;
    p->pending = 1;             /* until every message is dispatched */

    for (i = 0; i < req->n_msgs; i++) {
        job_push_msg(p, req->msgs[i], 0);
    }

    job_push_finish(p);
}
