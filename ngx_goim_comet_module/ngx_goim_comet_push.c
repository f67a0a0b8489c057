
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


static void ngx_goim_comet_push_msg(ngx_goim_rpc_request_t *r);
static void ngx_goim_comet_broadcast(ngx_goim_rpc_request_t *r);
static void ngx_goim_comet_broadcast_room(ngx_goim_rpc_request_t *r);
static void ngx_goim_comet_rooms(ngx_goim_rpc_request_t *r);
static ngx_goim_comet_msg_t *ngx_goim_comet_push_start(
    ngx_goim_rpc_request_t *r, Goim__Proto *proto, ngx_uint_t valid,
    const char *usage);


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
    ngx_goim_comet_conf_t  *ccf = ctx;

    ccf->stats->bad_input++;
}


void
ngx_goim_comet_push_session(ngx_connection_t *c,
    ngx_goim_rpc_session_conf_t *conf, void (*on_close)(void *data),
    void *data)
{
    ngx_goim_comet_conf_t  *ccf;

    ccf = ngx_goim_comet_get_conf(ngx_cycle);

    if (ngx_goim_rpc_session_start(&ccf->rpc, c, ngx_goim_comet_push_handlers,
                                   conf, on_close, data)
        == NULL)
    {
        on_close(data);
    }
}


/*
 * A pushed Proto is encoded once and shared by every recipient; goim v2
 * wraps every push in an OpRaw packet, which each channel writes as its
 * transport wants (see ngx_goim_channel_enqueue()).  NULL: the request was
 * refused and answered here (usage says what it needs).
 */

static ngx_goim_comet_msg_t *
ngx_goim_comet_push_start(ngx_goim_rpc_request_t *r, Goim__Proto *proto,
    ngx_uint_t valid, const char *usage)
{
    ngx_goim_comet_msg_t   *msg;
    ngx_goim_comet_conf_t  *ccf;

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

    ccf = r->ctx;
    ccf->stats->push_calls++;

    return msg;
}


static void
ngx_goim_comet_push_msg(ngx_goim_rpc_request_t *r)
{
    Goim__PushMsgReq *req = (Goim__PushMsgReq *) r->msg;

    ngx_uint_t              dropped;
    ngx_goim_comet_msg_t   *msg;
    ngx_goim_comet_conf_t  *ccf;
    Goim__PushMsgReply      reply = GOIM__PUSH_MSG_REPLY__INIT;

    msg = ngx_goim_comet_push_start(r, req->proto, req->n_keys != 0,
                                    "PushMsg needs keys and a proto");
    if (msg == NULL) {
        return;
    }

    ccf = r->ctx;
    dropped = ccf->stats->dropped + ccf->stats->xw_dropped;

    /* keys owned by other workers go to them (ngx_goim_comet_shm.c) */
    reply.delivered = (int32_t) ngx_goim_xw_push_keys(ccf, req->keys,
                                                      req->n_keys,
                                                      req->proto_op, msg);
    reply.dropped = (int32_t) (ccf->stats->dropped + ccf->stats->xw_dropped
                               - dropped);

    ngx_goim_comet_msg_release(msg);

    ngx_goim_rpc_reply(r, &reply.base);
}


static void
ngx_goim_comet_broadcast(ngx_goim_rpc_request_t *r)
{
    Goim__BroadcastReq *req = (Goim__BroadcastReq *) r->msg;

    ngx_uint_t              speed;
    ngx_goim_comet_msg_t   *msg;
    ngx_goim_comet_conf_t  *ccf;
    Goim__BroadcastReply    reply = GOIM__BROADCAST_REPLY__INIT;

    msg = ngx_goim_comet_push_start(r, req->proto, 1,
                                    "Broadcast needs a proto");
    if (msg == NULL) {
        return;
    }

    ccf = r->ctx;

    /* goim's speed: connections per second, shared out among workers */
    speed = req->speed > 0 ? ngx_max((ngx_uint_t) req->speed / ccf->nworkers,
                                     1)
                           : 0;

    ngx_goim_xw_push_others(ccf, NULL, req->proto_op, speed, msg);
    ngx_goim_comet_push_all(ccf, req->proto_op, msg, speed);

    ngx_goim_comet_msg_release(msg);

    ngx_goim_rpc_reply(r, &reply.base);
}


static void
ngx_goim_comet_broadcast_room(ngx_goim_rpc_request_t *r)
{
    Goim__BroadcastRoomReq *req = (Goim__BroadcastRoomReq *) r->msg;

    ngx_str_t                 name;
    ngx_goim_comet_msg_t     *msg;
    ngx_goim_comet_conf_t    *ccf;
    Goim__BroadcastRoomReply  reply = GOIM__BROADCAST_ROOM_REPLY__INIT;

    name.data = (u_char *) req->room_id;
    name.len = req->room_id ? ngx_strlen(req->room_id) : 0;

    msg = ngx_goim_comet_push_start(r, req->proto, name.len != 0,
                                    "BroadcastRoom needs a room and a proto");
    if (msg == NULL) {
        return;
    }

    ccf = r->ctx;

    ngx_goim_xw_push_others(ccf, &name, 0, 0, msg);
    ngx_goim_comet_push_room(ccf, &name, msg);

    ngx_goim_comet_msg_release(msg);

    ngx_goim_rpc_reply(r, &reply.base);
}


/* delivery to this worker's connections */

ngx_uint_t
ngx_goim_comet_push_key(ngx_goim_comet_conf_t *ccf, ngx_str_t *key,
    int32_t op, ngx_goim_comet_msg_t *msg)
{
    ngx_goim_channel_t  *ch;

    ch = ngx_goim_channel_lookup(ccf, key);

    if (ch == NULL) {
        return 0;
    }

    if (ngx_goim_channel_accepts(ch, op)) {
        /* unlike goim, a full queue skips this key, not all the rest */
        (void) ngx_goim_channel_push(ch, msg);
    }

    return 1;
}


void
ngx_goim_comet_push_room(ngx_goim_comet_conf_t *ccf, ngx_str_t *name,
    ngx_goim_comet_msg_t *msg)
{
    ngx_queue_t            *q;
    ngx_goim_channel_t     *ch;
    ngx_goim_comet_room_t  *room;

    room = ngx_goim_room_lookup(ccf, name);

    if (room == NULL) {
        return;
    }

    /* room pushes are not filtered by the accept set (goim v2) */
    for (q = ngx_queue_head(&room->members);
         q != ngx_queue_sentinel(&room->members);
         q = ngx_queue_next(q))
    {
        ch = ngx_queue_data(q, ngx_goim_channel_t, room_link);
        (void) ngx_goim_channel_push(ch, msg);
    }
}


/*
 * A broadcast to this worker's connections that accept op.  With a speed
 * (connections per second) it is paced: every 100 ms the next share of
 * the key tree, in order, so connections that come and go meanwhile are
 * no trouble: the walk resumes after the last key it served.
 */

typedef struct {
    ngx_queue_t             queue;           /* in ccf->pacers */
    ngx_event_t             event;
    ngx_goim_comet_conf_t  *ccf;
    ngx_goim_comet_msg_t   *msg;
    int32_t                 op;
    ngx_uint_t              per_tick;
    ngx_uint_t              started;
    uint32_t                last_hash;
    ngx_str_t               last_key;
    u_char                  key[256];
} ngx_goim_comet_pacer_t;


static void ngx_goim_comet_pacer_handler(ngx_event_t *ev);


static ngx_int_t
ngx_goim_comet_key_cmp(ngx_str_node_t *n, uint32_t hash, ngx_str_t *key)
{
    if (n->node.key != hash) {
        return n->node.key < hash ? -1 : 1;
    }

    return ngx_memn2cmp(n->str.data, key->data, n->str.len, key->len);
}


void
ngx_goim_comet_push_all(ngx_goim_comet_conf_t *ccf, int32_t op,
    ngx_goim_comet_msg_t *msg, ngx_uint_t speed)
{
    ngx_rbtree_node_t       *node, *root, *sentinel;
    ngx_goim_channel_t      *ch;
    ngx_goim_comet_pacer_t  *pacer;

    if (speed) {
        pacer = ngx_calloc(sizeof(ngx_goim_comet_pacer_t), ngx_cycle->log);

        if (pacer) {
            pacer->ccf = ccf;
            pacer->msg = msg;
            pacer->op = op;
            pacer->per_tick = ngx_max(speed / 10, 1);
            pacer->event.handler = ngx_goim_comet_pacer_handler;
            pacer->event.data = pacer;
            pacer->event.log = ngx_cycle->log;
            pacer->event.cancelable = 1;

            msg->refs++;
            ngx_queue_insert_tail(&ccf->pacers, &pacer->queue);

            ngx_goim_comet_pacer_handler(&pacer->event);
            return;
        }

        /* no memory for pacing: deliver at once rather than not at all */
    }

    root = ccf->channels.root;
    sentinel = ccf->channels.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&ccf->channels, node))
    {
        ch = (ngx_goim_channel_t *) node;

        if (ngx_goim_channel_accepts(ch, op)) {
            (void) ngx_goim_channel_push(ch, msg);
        }
    }
}


static void
ngx_goim_comet_pacer_handler(ngx_event_t *ev)
{
    ngx_goim_comet_pacer_t *pacer = ev->data;

    ngx_uint_t              n;
    ngx_rbtree_node_t      *node, *next, *sentinel;
    ngx_goim_channel_t     *ch;
    ngx_goim_comet_conf_t  *ccf;

    ccf = pacer->ccf;
    sentinel = ccf->channels.sentinel;

    /* the first key after the last one served */

    next = NULL;
    node = ccf->channels.root;

    while (node != sentinel) {
        if (!pacer->started
            || ngx_goim_comet_key_cmp((ngx_str_node_t *) node,
                                      pacer->last_hash, &pacer->last_key) > 0)
        {
            next = node;
            node = node->left;

        } else {
            node = node->right;
        }
    }

    for (n = 0; next && n < pacer->per_tick; n++) {
        ch = (ngx_goim_channel_t *) next;

        if (ngx_goim_channel_accepts(ch, pacer->op)) {
            (void) ngx_goim_channel_push(ch, pacer->msg);
        }

        pacer->started = 1;
        pacer->last_hash = (uint32_t) ch->node.node.key;
        pacer->last_key.len = ngx_min(ch->node.str.len, sizeof(pacer->key));
        pacer->last_key.data = pacer->key;
        ngx_memcpy(pacer->key, ch->node.str.data, pacer->last_key.len);

        next = ngx_rbtree_next(&ccf->channels, next);
    }

    if (next == NULL) {
        ngx_queue_remove(&pacer->queue);
        ngx_goim_comet_msg_release(pacer->msg);
        ngx_free(pacer);
        return;
    }

    ngx_add_timer(ev, 100);
}


void
ngx_goim_comet_pacers_stop(ngx_goim_comet_conf_t *ccf)
{
    ngx_queue_t             *q;
    ngx_goim_comet_pacer_t  *pacer;

    while (!ngx_queue_empty(&ccf->pacers)) {
        q = ngx_queue_head(&ccf->pacers);
        pacer = ngx_queue_data(q, ngx_goim_comet_pacer_t, queue);

        if (pacer->event.timer_set) {
            ngx_del_timer(&pacer->event);
        }

        ngx_queue_remove(q);
        ngx_goim_comet_msg_release(pacer->msg);
        ngx_free(pacer);
    }
}


/* every room this comet has members in, whichever worker holds them */

static void
ngx_goim_comet_rooms(ngx_goim_rpc_request_t *r)
{
    char                          **names;
    size_t                          n, i;
    ngx_goim_comet_conf_t          *ccf;
    Goim__RoomsReply                reply = GOIM__ROOMS_REPLY__INIT;
    Goim__RoomsReply__RoomsEntry   *entries, **ptrs;

    ccf = r->ctx;

    if (ngx_goim_xw_rooms(ccf, &names, &n) != NGX_OK) {
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
