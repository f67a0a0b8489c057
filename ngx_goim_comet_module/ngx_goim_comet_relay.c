
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"
#include "ngx_goim_comet_zone.h"


/*
 * The relay across workers: what a worker cannot deliver itself goes to
 * the owners' rings as records (pushes by key, room pushes, broadcasts,
 * SSE control calls, long-polls and their answers; the tables post
 * kicks), and each worker drains its own ring when its eventfd wakes it,
 * delivering the records here and counting how long they waited (the hop
 * times on the status page).
 *
 * A long-poll may come to any worker.  The one holding the session is
 * sent the poll (its cursor, and which waiter of which worker it is) and
 * treats it as its own, with a waiter standing for the request
 * (ngx_goim_comet_relay_poll_back()); the answer comes back as a record
 * the polling worker hands to the request, if that still waits for it (a
 * late one is dropped: what it held is sent again on the next poll).
 */


static void ngx_goim_comet_relay_read_handler(ngx_event_t *rev);
static void ngx_goim_comet_relay_drain(ngx_goim_comet_worker_t *wk);
static void ngx_goim_comet_relay_poll(ngx_goim_comet_worker_t *wk);
static void ngx_goim_comet_relay_hop(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_rec_t *rec);
static void ngx_goim_comet_relay_record(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_rec_t *rec);
static void ngx_goim_comet_relay_poll_in(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_rec_t *rec);
static void ngx_goim_comet_relay_poll_back(ngx_goim_comet_waiter_t *w,
    ngx_goim_comet_answer_t *a);
static void ngx_goim_comet_relay_answer_in(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_rec_t *rec);
static ngx_int_t ngx_goim_comet_relay_owner(ngx_goim_comet_worker_t *wk,
    ngx_str_t *key, ngx_uint_t *owner);


ngx_int_t
ngx_goim_comet_relay_init(ngx_goim_comet_worker_t *wk)
{
    ngx_cycle_t       *cycle;
    ngx_connection_t  *c;

    if (wk->sh == NULL) {
        return NGX_OK;
    }

    cycle = wk->cycle;

    wk->worker = (ngx_process == NGX_PROCESS_WORKER) ? ngx_worker : 0;

    /* without a master one process serves everything */
    wk->nworkers = (ngx_process == NGX_PROCESS_WORKER)
                    ? ngx_goim_comet_sh(wk)->nrings : 1;

    if (wk->worker >= ngx_goim_comet_sh(wk)->nrings) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim comet: worker %ui has no queue", wk->worker);
        return NGX_ERROR;
    }

    wk->zone->my_eventfd = wk->zone->eventfds[wk->worker];
    wk->stats = &ngx_goim_comet_sh(wk)->stats[wk->worker];

    c = ngx_get_connection(wk->zone->my_eventfd, cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = wk;
    c->read->handler = ngx_goim_comet_relay_read_handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    /* not a client: it must not keep a quitting worker alive */
    c->idle = 1;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_CLEAR_EVENT) != NGX_OK) {
        ngx_free_connection(c);
        return NGX_ERROR;
    }

    wk->relay_connection = c;
    wk->poll = ngx_goim_comet_relay_poll;

    /* it has nothing to add back after a rebuild before its start */
    wk->tables_rebuilds = ngx_goim_comet_sh(wk)->rebuilds;

    /* what a crashed worker with this number left behind */
    ngx_goim_comet_tables_recover(wk);
    ngx_goim_comet_tables_forget(wk);

    /* anything queued before this worker listened */
    ngx_goim_comet_relay_drain(wk);

    return NGX_OK;
}


void
ngx_goim_comet_relay_exit(ngx_goim_comet_worker_t *wk)
{
    if (wk->relay_connection) {
        ngx_close_connection(wk->relay_connection);
        wk->relay_connection = NULL;
        wk->zone->my_eventfd = -1;
        wk->poll = NULL;
    }
}


static void
ngx_goim_comet_relay_read_handler(ngx_event_t *rev)
{
    uint64_t                  n;
    ngx_connection_t         *c;
    ngx_goim_comet_worker_t  *wk;

    c = rev->data;
    wk = c->data;

    if (c->close) {
        /*
         * The worker quits: records for its clients may still come (the
         * clients a reload hands on are served until they go), so it
         * drains its queue to the end; exit_process closes the eventfd.
         */
        c->close = 0;
    }

    /* one read takes every kick since the last one and rearms it */
    (void) read(c->fd, &n, sizeof(uint64_t));

    ngx_goim_comet_relay_drain(wk);
}


static void
ngx_goim_comet_relay_drain(ngx_goim_comet_worker_t *wk)
{
    uint64_t                 head;
    ngx_uint_t               n, batch;
    ngx_goim_comet_rec_t    *rec;
    ngx_goim_comet_ring_t   *ring;
    ngx_goim_comet_shctx_t  *sh;

    sh = ngx_goim_comet_sh(wk);
    ring = &sh->rings[wk->worker];

    ngx_goim_comet_tables_sync(wk);

    batch = wk->conf->drain_batch ? wk->conf->drain_batch : NGX_GOIM_RPC_BATCH;
    n = 0;

    wk->draining = 1;

    for ( ;; ) {
        ring->sleeping = 0;

        for ( ;; ) {
            head = ring->head;
            ngx_memory_barrier();

            if (ring->tail == head) {
                break;
            }

            while (ring->tail != head) {
                if (n++ == batch) {
                    /*
                     * As the push listener does: the client writes these
                     * records queued run before the next ones, or a burst
                     * for one client overflows its queue.  Not sleeping,
                     * so producers do not kick; the next loop resumes.
                     */
                    ngx_post_event(wk->relay_connection->read,
                                   &ngx_posted_next_events);
                    wk->draining = 0;
                    return;
                }

                rec = (ngx_goim_comet_rec_t *)
                          (ring->data + ring->tail % ring->size);

                if (rec->type != NGX_GOIM_COMET_REC_PAD) {
                    ngx_goim_comet_relay_hop(wk, rec);
                    ngx_goim_comet_relay_record(wk, rec);
                }

                ring->tail += rec->len;
            }

            ngx_memory_barrier();
        }

        /* going to sleep: a producer that sees this kicks the eventfd */
        ring->sleeping = 1;
        ngx_memory_barrier();

        if (ring->head == ring->tail) {
            break;
        }
    }

    wk->draining = 0;
}


/*
 * wk->poll, called by a channel's write handler between two writes of a
 * long fan-out (the one call upward, made through the hook): records that
 * arrived meanwhile are taken now rather than after the whole walk, so the hop
 * stays short while this worker is busy, and their messages join the
 * queues of connections not yet written (one writev() for both).  The
 * check is one load of a shared cache line.
 */

static void
ngx_goim_comet_relay_poll(ngx_goim_comet_worker_t *wk)
{
    ngx_goim_comet_ring_t  *ring;

    if (wk->relay_connection == NULL || wk->draining) {
        return;
    }

    ring = &ngx_goim_comet_sh(wk)->rings[wk->worker];

    if (ring->head != ring->tail) {
        ngx_goim_comet_relay_drain(wk);
    }
}


/*
 * A reload's hand-off: no push comes in any more, and what the other
 * workers queued for this one is delivered now, to the end, so that it
 * travels with the connections.
 */

void
ngx_goim_comet_relay_flush(ngx_goim_comet_worker_t *wk)
{
    ngx_goim_comet_ring_t  *ring;

    if (wk->relay_connection == NULL || wk->draining) {
        return;
    }

    ring = &ngx_goim_comet_sh(wk)->rings[wk->worker];

    for ( ;; ) {
        ngx_memory_barrier();

        if (ring->head == ring->tail) {
            return;
        }

        ngx_goim_comet_relay_drain(wk);
    }
}


/*
 * Hop times are counted in fixed buckets, fine around the 100 us that
 * matters and coarse beyond: [i] counts records that waited less than
 * ngx_goim_comet_relay_hop_bounds[i] microseconds, the last one everything
 * longer.
 */

static const uint32_t
    ngx_goim_comet_relay_hop_bounds[NGX_GOIM_COMET_HOP_BUCKETS] =
{
    2, 4, 8, 16, 24, 32, 48, 64, 80, 100, 128, 160, 200, 256, 384, 512,
    768, 1000, 1500, 2000, 3000, 5000, 10000, 20000, 50000, 100000,
    200000, 500000, 1000000, 0xffffffff
};


/* how long the record waited between the two workers, for the status */

static void
ngx_goim_comet_relay_hop(ngx_goim_comet_worker_t *wk, ngx_goim_comet_rec_t *rec)
{
    uint64_t    us;
    ngx_uint_t  i;

    us = (ngx_goim_comet_zone_now_ns() - rec->sent_ns) / 1000;
    i = ngx_goim_comet_zone_bucket(ngx_goim_comet_relay_hop_bounds,
                                   NGX_GOIM_COMET_HOP_BUCKETS, us);

    wk->stats->hop_us[i]++;
    wk->stats->relay_records++;
}


/*
 * The upper bound, in microseconds, of the bucket holding the permille-th
 * record (500: the median, 990: p99, 999: p99.9); 0 before any record.
 */

ngx_uint_t
ngx_goim_comet_relay_hop_percentile(ngx_goim_comet_stats_t *st,
    ngx_uint_t permille)
{
    return ngx_goim_comet_zone_percentile(st->hop_us,
                                          ngx_goim_comet_relay_hop_bounds,
                                          NGX_GOIM_COMET_HOP_BUCKETS,
                                          permille);
}


/* one record from another worker, delivered here */

static void
ngx_goim_comet_relay_record(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_rec_t *rec)
{
    u_char                *p;
    uint16_t               len;
    uint32_t               i;
    ngx_str_t              key;
    ngx_goim_channel_t    *ch;
    ngx_goim_comet_msg_t  *msg;

    p = (u_char *) (rec + 1);

    if (rec->type == NGX_GOIM_COMET_REC_KICK) {
        key.data = p;
        key.len = rec->nkeys;

        ch = ngx_goim_channel_lookup(wk, &key);

        if (ch && ch->id == rec->id) {
            ngx_goim_channel_kick(ch);
        }

        return;
    }

    if (rec->type == NGX_GOIM_COMET_REC_CONTROL) {
        key.data = p;
        key.len = rec->nkeys;

        ch = ngx_goim_channel_lookup(wk, &key);

        if (ch == NULL || ch->sse == NULL
            || ngx_goim_channel_control(ch, rec->op, p + key.len,
                                        rec->msg_len)
               == NGX_DECLINED)
        {
            /* gone between the call and now */
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "goim comet: control call op %D for key \"%V\" "
                          "dropped: no SSE or poll session with it here",
                          rec->op, &key);
            return;
        }

        wk->stats->ctl_calls++;
        return;
    }

    if (rec->type == NGX_GOIM_COMET_REC_POLL) {
        ngx_goim_comet_relay_poll_in(wk, rec);
        return;
    }

    if (rec->type == NGX_GOIM_COMET_REC_ANSWER) {
        ngx_goim_comet_relay_answer_in(wk, rec);
        return;
    }

    msg = ngx_goim_comet_msg_create(rec->msg_len, ngx_cycle->log);
    if (msg == NULL) {
        return;
    }

    msg->raw = rec->raw;
    msg->epoch = rec->epoch;
    msg->seq = rec->seq;

    switch (rec->type) {

    case NGX_GOIM_COMET_REC_KEYS:
        for (i = 0; i < rec->nkeys; i++) {
            ngx_memcpy(&len, p, sizeof(uint16_t));
            key.data = p + sizeof(uint16_t);
            key.len = len;
            p = key.data + len;
        }

        ngx_memcpy(msg->data, p, rec->msg_len);

        p = (u_char *) (rec + 1);

        for (i = 0; i < rec->nkeys; i++) {
            ngx_memcpy(&len, p, sizeof(uint16_t));
            key.data = p + sizeof(uint16_t);
            key.len = len;
            p = key.data + len;

            ngx_goim_comet_deliver_key(wk, &key, rec->op, rec->ack_filter,
                                       msg);
        }

        break;

    case NGX_GOIM_COMET_REC_ROOM:
        key.data = p;
        key.len = rec->nkeys;
        ngx_memcpy(msg->data, p + key.len, rec->msg_len);

        ngx_goim_comet_deliver_room(wk, &key, msg);
        break;

    default: /* NGX_GOIM_COMET_REC_BROADCAST */
        ngx_memcpy(msg->data, p, rec->msg_len);

        ngx_goim_comet_deliver_all(wk, rec->op, msg, (ngx_uint_t) rec->id);
        break;
    }

    ngx_goim_comet_msg_release(msg);
}


/*
 * A push by keys: local keys are served here, the others are sent to
 * their workers, one record per worker.  Returns how many keys are known.
 */

ngx_uint_t
ngx_goim_comet_relay_push_keys(ngx_goim_comet_worker_t *wk, char **keys,
    size_t n, int32_t op, ngx_uint_t ack_filter, ngx_goim_comet_msg_t *msg)
{
    u_char                *p, *buf;
    size_t                 i, size;
    uint16_t               len;
    ngx_str_t              key;
    ngx_uint_t             w, found, *owner, *klen, *count;
    ngx_goim_comet_rec_t   rec;

    found = 0;

    if (wk->sh == NULL || wk->nworkers == 1) {
        for (i = 0; i < n; i++) {
            key.data = (u_char *) keys[i];
            key.len = ngx_strlen(keys[i]);
            found += ngx_goim_comet_deliver_key(wk, &key, op, ack_filter,
                                                msg);
        }

        return found;
    }

    /* each key's owner and length, then the keys per worker */
    owner = ngx_alloc((2 * n + wk->nworkers) * sizeof(ngx_uint_t),
                      ngx_cycle->log);
    if (owner == NULL) {
        return 0;
    }

    klen = owner + n;
    count = klen + n;
    ngx_memzero(count, wk->nworkers * sizeof(ngx_uint_t));

    found = ngx_goim_comet_tables_owners(wk, keys, n, owner, klen, count);

    for (w = 0; w < wk->nworkers; w++) {
        if (count[w] == 0) {
            continue;
        }

        if (w == wk->worker) {
            for (i = 0; i < n; i++) {
                if (owner[i] == w) {
                    key.data = (u_char *) keys[i];
                    key.len = klen[i];
                    (void) ngx_goim_comet_deliver_key(wk, &key, op, ack_filter,
                                                     msg);
                }
            }

            continue;
        }

        for (size = 0, i = 0; i < n; i++) {
            if (owner[i] == w) {
                size += sizeof(uint16_t) + klen[i];
            }
        }

        buf = ngx_alloc(size, ngx_cycle->log);
        if (buf == NULL) {
            continue;
        }

        for (p = buf, i = 0; i < n; i++) {
            if (owner[i] == w) {
                len = (uint16_t) klen[i];
                p = ngx_cpymem(p, &len, sizeof(uint16_t));
                p = ngx_cpymem(p, keys[i], len);
            }
        }

        ngx_memzero(&rec, sizeof(ngx_goim_comet_rec_t));
        rec.type = NGX_GOIM_COMET_REC_KEYS;
        rec.raw = msg->raw;
        rec.op = op;
        rec.ack_filter = (uint32_t) ack_filter;
        rec.msg_len = (uint32_t) msg->len;
        rec.nkeys = (uint32_t) count[w];

        if (ngx_goim_comet_zone_post(wk, w, &rec, buf, size, msg->data)
            != NGX_OK)
        {
            wk->stats->relay_dropped += count[w];
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "goim comet: worker %ui queue full, push to %ui "
                          "keys dropped", w, count[w]);
        }

        ngx_free(buf);
    }

    ngx_free(owner);

    return found;
}


/*
 * A control call for key's SSE connection, applied here if this worker
 * has it, or sent to the worker that has it: the call is answered once
 * the record is in that worker's ring, the operation's reply comes on the
 * stream.
 */

ngx_int_t
ngx_goim_comet_relay_control(ngx_goim_comet_worker_t *wk, ngx_str_t *key,
    int32_t op, u_char *body, size_t len)
{
    ngx_int_t              rc;
    ngx_uint_t             owner;
    ngx_goim_channel_t    *ch;
    ngx_goim_comet_rec_t   rec;

    rc = ngx_goim_comet_relay_owner(wk, key, &owner);
    if (rc != NGX_OK) {
        return rc;
    }

    if (owner == wk->worker) {
        ch = ngx_goim_channel_lookup(wk, key);

        if (ch == NULL || ch->sse == NULL) {
            return NGX_DECLINED;
        }

        if (ngx_goim_channel_control(ch, op, body, len) == NGX_DECLINED) {
            return NGX_DECLINED;
        }

        wk->stats->ctl_calls++;
        return NGX_OK;
    }

    ngx_memzero(&rec, sizeof(ngx_goim_comet_rec_t));
    rec.type = NGX_GOIM_COMET_REC_CONTROL;
    rec.op = op;
    rec.msg_len = (uint32_t) len;
    rec.nkeys = (uint32_t) key->len;

    if (ngx_goim_comet_zone_post(wk, owner, &rec, key->data, key->len, body)
        != NGX_OK)
    {
        wk->stats->relay_dropped++;
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim comet: worker %ui queue full, control call "
                      "refused", owner);
        return NGX_BUSY;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "goim comet: control call for key \"%V\" sent to "
                   "worker %ui", key, owner);

    return NGX_OK;
}


/* the worker holding key's channel: NGX_DECLINED none */

static ngx_int_t
ngx_goim_comet_relay_owner(ngx_goim_comet_worker_t *wk, ngx_str_t *key,
    ngx_uint_t *owner)
{
    char        *keys[1];
    ngx_uint_t   klen, *count, found;

    *owner = wk->worker;

    if (wk->sh == NULL || wk->nworkers == 1) {
        return NGX_OK;
    }

    keys[0] = ngx_alloc(key->len + 1, ngx_cycle->log);
    count = ngx_calloc(wk->nworkers * sizeof(ngx_uint_t), ngx_cycle->log);

    if (keys[0] == NULL || count == NULL) {
        ngx_free(keys[0]);
        ngx_free(count);
        return NGX_ERROR;
    }

    ngx_memcpy(keys[0], key->data, key->len);
    keys[0][key->len] = '\0';

    found = ngx_goim_comet_tables_owners(wk, keys, 1, owner, &klen, count);

    ngx_free(keys[0]);
    ngx_free(count);

    return found ? NGX_OK : NGX_DECLINED;
}


/*
 * A poll of key's session (w->cursor its cursor): taken here when this
 * worker holds it, else sent to the one that does, w waiting in
 * wk->waiters for the answer (the caller bounds how long).
 */

ngx_int_t
ngx_goim_comet_relay_poll_request(ngx_goim_comet_worker_t *wk,
    ngx_str_t *key, ngx_goim_comet_waiter_t *w)
{
    ngx_int_t              rc;
    ngx_uint_t             owner;
    ngx_goim_channel_t    *ch;
    ngx_goim_comet_rec_t   rec;

    rc = ngx_goim_comet_relay_owner(wk, key, &owner);
    if (rc != NGX_OK) {
        return rc;
    }

    if (owner == wk->worker) {
        ch = ngx_goim_channel_lookup(wk, key);

        if (ch == NULL) {
            return NGX_DECLINED;
        }

        return ngx_goim_channel_poll(ch, w->cursor, w);
    }

    w->node.key = ++wk->next_waiter;

    ngx_memzero(&rec, sizeof(ngx_goim_comet_rec_t));
    rec.type = NGX_GOIM_COMET_REC_POLL;
    rec.nkeys = (uint32_t) key->len;
    rec.from = (uint32_t) wk->worker;
    rec.id = w->node.key;
    rec.epoch = w->cursor;

    if (ngx_goim_comet_zone_post(wk, owner, &rec, key->data, key->len,
                                 (u_char *) "")
        != NGX_OK)
    {
        wk->stats->relay_dropped++;
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim comet: worker %ui queue full, poll refused",
                      owner);
        return NGX_BUSY;
    }

    ngx_rbtree_insert(&wk->waiters, &w->node);
    w->remote = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "goim comet: poll of key \"%V\" sent to worker %ui",
                   key, owner);

    return NGX_OK;
}


/* the poll's request went, or it was answered here: its answer is late */

void
ngx_goim_comet_relay_poll_cancel(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_waiter_t *w)
{
    if (w->remote) {
        ngx_rbtree_delete(&wk->waiters, &w->node);
        w->remote = 0;
    }
}


/* the worker quits, and so do the others of its generation */

void
ngx_goim_comet_relay_poll_lost(ngx_goim_comet_worker_t *wk)
{
    ngx_rbtree_node_t        *node;
    ngx_goim_comet_waiter_t  *w;

    while (wk->waiters.root != wk->waiters.sentinel) {
        node = ngx_rbtree_min(wk->waiters.root, wk->waiters.sentinel);
        w = (ngx_goim_comet_waiter_t *) node;

        ngx_goim_comet_relay_poll_cancel(wk, w);

        ngx_goim_comet_poll_reply(w, 404, w->cursor, "no poll session with "
                                  "this key (lost in a reload): "
                                  "authenticate again");
    }
}


/* another worker's poll of a session here: a waiter stands for it */

static void
ngx_goim_comet_relay_poll_in(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_rec_t *rec)
{
    ngx_str_t                 key;
    ngx_goim_channel_t       *ch;
    ngx_goim_comet_waiter_t  *w;

    key.data = (u_char *) (rec + 1);
    key.len = rec->nkeys;

    w = ngx_calloc(sizeof(ngx_goim_comet_waiter_t), ngx_cycle->log);
    if (w == NULL) {
        return;
    }

    w->answer = ngx_goim_comet_relay_poll_back;
    w->data = wk;
    w->worker = rec->from;
    w->node.key = rec->id;
    w->cursor = rec->epoch;

    ch = ngx_goim_channel_lookup(wk, &key);

    if (ch == NULL || ngx_goim_channel_poll(ch, w->cursor, w) != NGX_OK) {
        ngx_goim_comet_poll_reply(w, 404, w->cursor, "no poll session with "
                                  "this key: authenticate again");
    }
}


/* the answer to another worker's poll goes back there; w goes */

static void
ngx_goim_comet_relay_poll_back(ngx_goim_comet_waiter_t *w,
    ngx_goim_comet_answer_t *a)
{
    ngx_goim_comet_worker_t *wk = w->data;

    ngx_goim_comet_rec_t  rec;

    ngx_memzero(&rec, sizeof(ngx_goim_comet_rec_t));
    rec.type = NGX_GOIM_COMET_REC_ANSWER;
    rec.op = (int32_t) a->status;
    rec.id = w->node.key;
    rec.epoch = a->cursor;
    rec.msg_len = (uint32_t) a->len;

    if (ngx_goim_comet_zone_post(wk, w->worker, &rec, (u_char *) "", 0,
                                 a->body ? a->body : (u_char *) "")
        != NGX_OK)
    {
        /* the poll times out there; its events are sent again */
        wk->stats->relay_dropped++;
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim comet: worker %ui queue full, a poll's answer "
                      "dropped", w->worker);
    }

    ngx_free(w);
}


static void
ngx_goim_comet_relay_answer_in(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_rec_t *rec)
{
    ngx_rbtree_node_t        *node, *sentinel;
    ngx_goim_comet_waiter_t  *w;
    ngx_goim_comet_answer_t   a;

    node = wk->waiters.root;
    sentinel = wk->waiters.sentinel;

    while (node != sentinel && node->key != rec->id) {
        node = (rec->id < node->key) ? node->left : node->right;
    }

    if (node == sentinel) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "goim comet: answer to poll %uL came late, dropped",
                       rec->id);
        return;
    }

    w = (ngx_goim_comet_waiter_t *) node;

    ngx_goim_comet_relay_poll_cancel(wk, w);

    ngx_memzero(&a, sizeof(ngx_goim_comet_answer_t));
    a.status = (ngx_uint_t) rec->op;
    a.cursor = rec->epoch;
    a.body = (u_char *) (rec + 1);
    a.len = rec->msg_len;

    w->answer(w, &a);
}


/* a room push or a broadcast: every other worker gets one record */

void
ngx_goim_comet_relay_push_others(ngx_goim_comet_worker_t *wk, ngx_str_t *room,
    int32_t op, ngx_uint_t speed, ngx_goim_comet_msg_t *msg)
{
    ngx_uint_t            w;
    ngx_goim_comet_rec_t  rec;

    if (wk->sh == NULL) {
        return;
    }

    for (w = 0; w < wk->nworkers; w++) {
        if (w == wk->worker) {
            continue;
        }

        ngx_memzero(&rec, sizeof(ngx_goim_comet_rec_t));
        rec.type = room ? NGX_GOIM_COMET_REC_ROOM
                        : NGX_GOIM_COMET_REC_BROADCAST;
        rec.raw = msg->raw;
        rec.op = op;
        rec.msg_len = (uint32_t) msg->len;
        rec.nkeys = room ? (uint32_t) room->len : 0;
        rec.id = speed;
        rec.epoch = msg->epoch;
        rec.seq = msg->seq;

        if (ngx_goim_comet_zone_post(wk, w, &rec, room ? room->data : NULL,
                               room ? room->len : 0, msg->data)
            != NGX_OK)
        {
            wk->stats->relay_dropped++;
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "goim comet: worker %ui queue full, %s dropped",
                          w, room ? "room push" : "broadcast");
        }
    }
}
