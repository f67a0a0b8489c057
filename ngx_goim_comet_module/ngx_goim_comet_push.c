
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <goim_args.h>

#include "ngx_goim_comet.h"


/*
 * The push RPC (job calls it): PushMsg, Broadcast, BroadcastRoom and
 * Rooms, served by whichever worker holds the connection; what other
 * workers hold goes through the relay.
 */


static ngx_goim_comet_msg_t *ngx_goim_comet_push_start(
    ngx_goim_rpc_request_t *r, Goim__Proto *proto, ngx_uint_t valid,
    const char *usage);
static void ngx_goim_comet_push_msg(ngx_goim_rpc_request_t *r);
static void ngx_goim_comet_broadcast(ngx_goim_rpc_request_t *r);
static void ngx_goim_comet_broadcast_room(ngx_goim_rpc_request_t *r);
static void ngx_goim_comet_rooms(ngx_goim_rpc_request_t *r);


/* the worker a push request is served by: its RPC plane's context */
#define ngx_goim_comet_rpc_worker(r)  ((ngx_goim_comet_worker_t *) (r)->ctx)


static ngx_goim_rpc_handler_t  ngx_goim_comet_push_handlers[] = {
    { GOIM__METHOD__COMET_PUSH_MSG, ngx_goim_comet_push_msg },
    { GOIM__METHOD__COMET_BROADCAST, ngx_goim_comet_broadcast },
    { GOIM__METHOD__COMET_BROADCAST_ROOM, ngx_goim_comet_broadcast_room },
    { GOIM__METHOD__COMET_ROOMS, ngx_goim_comet_rooms },
    { 0, NULL }
};


/* a push connection closed for bad input counts with the clients' */

void
ngx_goim_comet_push_bad_input(void *ctx)
{
    ngx_goim_comet_worker_t  *wk = ctx;

    wk->stats->bad_input++;
}


void
ngx_goim_comet_push_session(ngx_connection_t *c,
    ngx_goim_rpc_session_conf_t *conf, void (*on_close)(void *data),
    void *data)
{
    /* a new connection: the worker's RPC plane is found from the top */
    if (ngx_goim_rpc_session_start(&ngx_goim_comet_worker->rpc, c,
                                   ngx_goim_comet_push_handlers, conf,
                                   on_close, data)
        == NULL)
    {
        on_close(data);
    }
}


/* a push connection another worker handed on (a reload) */

ngx_goim_rpc_session_t *
ngx_goim_comet_push_adopt(ngx_goim_comet_worker_t *wk, ngx_connection_t *c,
    ngx_goim_rpc_session_conf_t *conf, void (*on_close)(void *data),
    ngx_str_t *in, ngx_str_t *out, ngx_uint_t frozen)
{
    return ngx_goim_rpc_session_adopt(&wk->rpc, c,
                                      ngx_goim_comet_push_handlers, conf,
                                      on_close, c, in, out, frozen);
}


/*
 * A pushed Proto is encoded once and shared by every recipient; goim v2
 * wraps every push in an OpRaw packet, which each channel writes as its
 * transport wants (see ngx_goim_comet_output_enqueue()).  NULL: the request was
 * refused and answered here (usage says what it needs).
 */

static ngx_goim_comet_msg_t *
ngx_goim_comet_push_start(ngx_goim_rpc_request_t *r, Goim__Proto *proto,
    ngx_uint_t valid, const char *usage)
{
    ngx_goim_comet_msg_t     *msg;
    ngx_goim_comet_worker_t  *wk;

    if (proto == NULL || !valid) {
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_BAD_REQUEST,
                                 usage);
        return NULL;
    }

    msg = ngx_goim_comet_msg_create(GOIM_HEADER_LEN + proto->body.len,
                                    ngx_cycle->log);
    if (msg == NULL) {
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return NULL;
    }

    goim_packet_write(msg->data, (int16_t) proto->ver, proto->op, proto->seq,
                      proto->body.data, proto->body.len);

    msg->raw = (proto->op == GOIM_OP_RAW);

    wk = ngx_goim_comet_rpc_worker(r);
    wk->stats->push_calls++;

    return msg;
}


static void
ngx_goim_comet_push_msg(ngx_goim_rpc_request_t *r)
{
    Goim__PushMsgReq *req = (Goim__PushMsgReq *) r->msg;

    char                    **keys;
    size_t                    n;
    ngx_uint_t                dropped;
    ngx_goim_comet_msg_t     *msg;
    ngx_goim_comet_worker_t  *wk;
    Goim__PushMsgReply        reply = GOIM__PUSH_MSG_REPLY__INIT;

    msg = ngx_goim_comet_push_start(r, req->proto, req->n_keys != 0,
                                    "PushMsg needs keys and a proto");
    if (msg == NULL) {
        return;
    }

    /*
     * A key given twice is pushed once, as logic and router already
     * ensure; a copy of the list, as the request's own is freed with it.
     */
    n = req->n_keys;
    keys = ngx_alloc(n * sizeof(char *) + goim_args_dedup_size(n),
                     ngx_cycle->log);
    if (keys == NULL) {
        ngx_goim_comet_msg_release(msg);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return;
    }

    ngx_memcpy(keys, req->keys, n * sizeof(char *));
    n = goim_args_dedup_strs(keys, NULL, n, keys + n);

    wk = ngx_goim_comet_rpc_worker(r);
    dropped = wk->stats->dropped + wk->stats->relay_dropped;

    /* keys owned by other workers go to them (ngx_goim_comet_relay.c) */
    reply.delivered = (int32_t) ngx_goim_comet_relay_push_keys(wk, keys, n,
                                                      req->proto_op,
                                                      req->ack_filter, msg);
    reply.dropped = (int32_t) (wk->stats->dropped + wk->stats->relay_dropped
                               - dropped);

    ngx_free(keys);
    ngx_goim_comet_msg_release(msg);

    ngx_goim_rpc_reply(r, &reply.base);
}


static void
ngx_goim_comet_broadcast(ngx_goim_rpc_request_t *r)
{
    Goim__BroadcastReq *req = (Goim__BroadcastReq *) r->msg;

    ngx_uint_t                speed;
    ngx_goim_comet_msg_t     *msg;
    ngx_goim_comet_worker_t  *wk;
    Goim__BroadcastReply      reply = GOIM__BROADCAST_REPLY__INIT;

    msg = ngx_goim_comet_push_start(r, req->proto, 1,
                                    "Broadcast needs a proto");
    if (msg == NULL) {
        return;
    }

    wk = ngx_goim_comet_rpc_worker(r);

    msg->epoch = req->epoch;
    msg->seq = req->seq;

    /* goim's speed: connections per second, shared out among workers */
    speed = req->speed > 0 ? ngx_max((ngx_uint_t) req->speed / wk->nworkers,
                                     1)
                           : 0;

    ngx_goim_comet_relay_push_others(wk, NULL, req->proto_op, speed, msg);
    ngx_goim_comet_deliver_all(wk, req->proto_op, msg, speed);

    ngx_goim_comet_msg_release(msg);

    ngx_goim_rpc_reply(r, &reply.base);
}


static void
ngx_goim_comet_broadcast_room(ngx_goim_rpc_request_t *r)
{
    Goim__BroadcastRoomReq *req = (Goim__BroadcastRoomReq *) r->msg;

    ngx_str_t                 name;
    ngx_goim_comet_msg_t     *msg;
    ngx_goim_comet_worker_t  *wk;
    Goim__BroadcastRoomReply  reply = GOIM__BROADCAST_ROOM_REPLY__INIT;

    name.data = (u_char *) req->room_id;
    name.len = req->room_id ? ngx_strlen(req->room_id) : 0;

    msg = ngx_goim_comet_push_start(r, req->proto, name.len != 0,
                                    "BroadcastRoom needs a room and a proto");
    if (msg == NULL) {
        return;
    }

    wk = ngx_goim_comet_rpc_worker(r);

    msg->epoch = req->epoch;
    msg->seq = req->seq;

    ngx_goim_comet_relay_push_others(wk, &name, 0, 0, msg);
    ngx_goim_comet_deliver_room(wk, &name, msg);

    ngx_goim_comet_msg_release(msg);

    ngx_goim_rpc_reply(r, &reply.base);
}


/* every room this comet has members in, whichever worker holds them */

static void
ngx_goim_comet_rooms(ngx_goim_rpc_request_t *r)
{
    char                          **names;
    size_t                          n, i;
    ngx_goim_comet_worker_t        *wk;
    Goim__RoomsReply                reply = GOIM__ROOMS_REPLY__INIT;
    Goim__RoomsReply__RoomsEntry   *entries, **ptrs;

    wk = ngx_goim_comet_rpc_worker(r);

    if (ngx_goim_comet_tables_rooms(wk, &names, &n) != NGX_OK) {
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return;
    }

    entries = ngx_alloc(n * (sizeof(*entries) + sizeof(*ptrs)) + 1,
                        ngx_cycle->log);
    if (entries == NULL) {
        ngx_free(names);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return;
    }

    ptrs = (Goim__RoomsReply__RoomsEntry **) (entries + n);

    for (i = 0; i < n; i++) {
        goim__rooms_reply__rooms_entry__init(&entries[i]);
        entries[i].key = names[i];
        entries[i].value = 1;
        ptrs[i] = &entries[i];
    }

    reply.n_rooms = n;
    reply.rooms = ptrs;

    ngx_goim_rpc_reply(r, &reply.base);

    ngx_free(entries);
    ngx_free(names);
}

