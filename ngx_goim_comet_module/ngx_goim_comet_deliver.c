
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


/*
 * Delivery to this worker's channels: by key, to a room's members, to
 * every channel accepting an operation, at once or paced.
 */


static void ngx_goim_comet_pacer_handler(ngx_event_t *ev);
static void ngx_goim_comet_deliver_done(ngx_goim_comet_msg_t *msg);


/* a broadcast as ch takes it: with its position if ch asked for them */
#define ngx_goim_comet_deliver_as(ch, msg)                                   \
    ((ch)->positions                                                         \
     ? ngx_goim_comet_msg_positioned(msg, NGX_GOIM_COMET_STREAM_ALL) : (msg))


/* delivery to this worker's connections */

ngx_uint_t
ngx_goim_comet_deliver_key(ngx_goim_comet_worker_t *wk, ngx_str_t *key,
    int32_t op, ngx_uint_t ack_filter, ngx_goim_comet_msg_t *msg)
{
    ngx_goim_channel_t  *ch;

    ch = ngx_goim_channel_lookup(wk, key);

    if (ch == NULL) {
        return 0;
    }

    /* an ensure message: op 19 to those that acknowledge, plain to others */
    if (ack_filter == GOIM__PUSH_MSG_REQ__ACK_FILTER__ACKING && !ch->acks) {
        return 1;
    }

    if (ack_filter == GOIM__PUSH_MSG_REQ__ACK_FILTER__NOT_ACKING && ch->acks)
    {
        return 1;
    }

    if (ngx_goim_channel_accepts(ch, op)) {
        /* unlike goim, a full queue skips this key, not all the rest */
        (void) ngx_goim_channel_push(ch, msg);
    }

    return 1;
}


void
ngx_goim_comet_deliver_room(ngx_goim_comet_worker_t *wk, ngx_str_t *name,
    ngx_goim_comet_msg_t *msg)
{
    ngx_queue_t            *q;
    ngx_goim_channel_t     *ch;
    ngx_goim_comet_room_t  *room;

    /* kept whether or not this worker has members: they may come back */
    ngx_goim_comet_history_add(wk, name, msg);

    room = ngx_goim_room_lookup(wk, name);

    if (room == NULL) {
        return;
    }

    /* room pushes are not filtered by the accept set (goim v2) */
    for (q = ngx_queue_head(&room->members);
         q != ngx_queue_sentinel(&room->members);
         q = ngx_queue_next(q))
    {
        ch = ngx_queue_data(q, ngx_goim_channel_t, room_link);
        (void) ngx_goim_channel_push(ch, ch->positions
                    ? ngx_goim_comet_msg_positioned(msg,
                                                    NGX_GOIM_COMET_STREAM_ROOM)
                    : msg);
    }

    ngx_goim_comet_deliver_done(msg);
}


/*
 * The op-20 and SSE copies of a message are their recipients' once the
 * walk is over: the history keeps the plain one only, within its size
 * bound.
 */

static void
ngx_goim_comet_deliver_done(ngx_goim_comet_msg_t *msg)
{
    if (msg->positioned) {
        ngx_goim_comet_msg_release(msg->positioned);
        msg->positioned = NULL;
    }

    if (msg->sse) {
        ngx_goim_comet_msg_release(msg->sse);
        msg->sse = NULL;
    }
}


/*
 * A broadcast to this worker's connections that accept op.  With a speed
 * (connections per second) it is paced: every 100 ms the next share of
 * the key tree, in order, so connections that come and go meanwhile are
 * no trouble: the walk resumes after the last key it served.
 */

typedef struct {
    ngx_queue_t             queue;           /* in wk->pacers */
    ngx_event_t             event;
    ngx_goim_comet_worker_t  *wk;
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
ngx_goim_comet_deliver_all(ngx_goim_comet_worker_t *wk, int32_t op,
    ngx_goim_comet_msg_t *msg, ngx_uint_t speed)
{
    ngx_str_t                all = ngx_null_string;
    ngx_rbtree_node_t       *node, *root, *sentinel;
    ngx_goim_channel_t      *ch;
    ngx_goim_comet_pacer_t  *pacer;

    /* the broadcasts' stream is "", a name no room can have */
    ngx_goim_comet_history_add(wk, &all, msg);

    if (speed) {
        pacer = ngx_calloc(sizeof(ngx_goim_comet_pacer_t), ngx_cycle->log);

        if (pacer) {
            pacer->wk = wk;
            pacer->msg = msg;
            pacer->op = op;
            pacer->per_tick = ngx_max(speed / 10, 1);
            pacer->event.handler = ngx_goim_comet_pacer_handler;
            pacer->event.data = pacer;
            pacer->event.log = ngx_cycle->log;
            pacer->event.cancelable = 1;

            msg->refs++;
            ngx_queue_insert_tail(&wk->pacers, &pacer->queue);

            ngx_goim_comet_pacer_handler(&pacer->event);
            return;
        }

        /* no memory for pacing: deliver at once rather than not at all */
    }

    root = wk->channels.root;
    sentinel = wk->channels.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&wk->channels, node))
    {
        ch = (ngx_goim_channel_t *) node;

        if (ngx_goim_channel_accepts(ch, op)) {
            (void) ngx_goim_channel_push(ch, ngx_goim_comet_deliver_as(ch,
                                                                      msg));
        }
    }

    ngx_goim_comet_deliver_done(msg);
}


static void
ngx_goim_comet_pacer_handler(ngx_event_t *ev)
{
    ngx_goim_comet_pacer_t *pacer = ev->data;

    ngx_uint_t                n;
    ngx_rbtree_node_t        *node, *next, *sentinel;
    ngx_goim_channel_t       *ch;
    ngx_goim_comet_worker_t  *wk;

    wk = pacer->wk;
    sentinel = wk->channels.sentinel;

    /* the first key after the last one served */

    next = NULL;
    node = wk->channels.root;

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
            (void) ngx_goim_channel_push(ch, ngx_goim_comet_deliver_as(ch,
                                                                  pacer->msg));
        }

        pacer->started = 1;
        pacer->last_hash = (uint32_t) ch->node.node.key;
        pacer->last_key.len = ngx_min(ch->node.str.len, sizeof(pacer->key));
        pacer->last_key.data = pacer->key;
        ngx_memcpy(pacer->key, ch->node.str.data, pacer->last_key.len);

        next = ngx_rbtree_next(&wk->channels, next);
    }

    if (next == NULL) {
        ngx_queue_remove(&pacer->queue);
        ngx_goim_comet_deliver_done(pacer->msg);
        ngx_goim_comet_msg_release(pacer->msg);
        ngx_free(pacer);
        return;
    }

    ngx_add_timer(ev, 100);
}


/*
 * A reload hands the connections on: what paced broadcasts have left to
 * deliver is queued now, so that it travels with each connection.
 */

void
ngx_goim_comet_deliver_finish(ngx_goim_comet_worker_t *wk)
{
    ngx_queue_t             *q;
    ngx_goim_comet_pacer_t  *pacer;

    while (!ngx_queue_empty(&wk->pacers)) {
        q = ngx_queue_head(&wk->pacers);
        pacer = ngx_queue_data(q, ngx_goim_comet_pacer_t, queue);

        if (pacer->event.timer_set) {
            ngx_del_timer(&pacer->event);
        }

        /* the walk removes it from the queue once at its end */
        pacer->per_tick = (ngx_uint_t) -1;
        ngx_goim_comet_pacer_handler(&pacer->event);
    }
}


void
ngx_goim_comet_deliver_stop(ngx_goim_comet_worker_t *wk)
{
    ngx_queue_t             *q;
    ngx_goim_comet_pacer_t  *pacer;

    while (!ngx_queue_empty(&wk->pacers)) {
        q = ngx_queue_head(&wk->pacers);
        pacer = ngx_queue_data(q, ngx_goim_comet_pacer_t, queue);

        if (pacer->event.timer_set) {
            ngx_del_timer(&pacer->event);
        }

        ngx_queue_remove(q);
        ngx_goim_comet_msg_release(pacer->msg);
        ngx_free(pacer);
    }
}
