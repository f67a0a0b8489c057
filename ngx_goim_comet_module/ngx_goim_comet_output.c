
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


/*
 * Messages and the output queue: a message is encoded once and shared by
 * reference among its recipients; each channel queues output nodes that
 * point into it, taken from the worker's free list, and writes them with
 * one send_chain() per 64 pieces.
 */


/*
 * Output nodes freed are kept for reuse, up to this many per worker: a
 * fan-out queues one per recipient, and the next one needs as many.
 */
#define NGX_GOIM_COMET_FREE_OUT  4096


static ngx_goim_comet_out_t *ngx_goim_comet_output_node(
    ngx_goim_comet_worker_t *wk, ngx_log_t *log);
static void ngx_goim_comet_output_node_free(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_out_t *out);
static ngx_goim_comet_msg_t *ngx_goim_comet_msg_deflated(
    ngx_goim_channel_t *ch, ngx_goim_comet_msg_t *msg);
static ngx_goim_comet_msg_t *ngx_goim_comet_output_events(
    ngx_goim_channel_t *ch, ngx_goim_comet_msg_t *msg, ngx_uint_t share);


ngx_goim_comet_msg_t *
ngx_goim_comet_msg_create(size_t len, ngx_log_t *log)
{
    ngx_goim_comet_msg_t  *msg;

    msg = ngx_alloc(offsetof(ngx_goim_comet_msg_t, data) + len, log);
    if (msg == NULL) {
        return NULL;
    }

    msg->refs = 1;
    msg->len = len;
    msg->epoch = 0;
    msg->seq = 0;
    msg->positioned = NULL;
    msg->deflated = NULL;
    msg->sse = NULL;
    msg->key_epoch = 0;
    msg->key_seq = 0;
    msg->events = 0;
    msg->raw = 0;
    msg->frame = 0;
    msg->ids = 0;
    msg->stream = 0;
    msg->ws_head_len = 0;
    msg->deflate_tried = 0;

    return msg;
}


void
ngx_goim_comet_msg_release(ngx_goim_comet_msg_t *msg)
{
    if (--msg->refs == 0) {
        if (msg->positioned) {
            ngx_goim_comet_msg_release(msg->positioned);
        }

        if (msg->deflated) {
            ngx_goim_comet_msg_release(msg->deflated);
        }

        if (msg->sse) {
            ngx_goim_comet_msg_release(msg->sse);
        }

        ngx_free(msg);
    }
}


/*
 * The compressed variant of msg for a channel that negotiated
 * permessage-deflate, made at the first call and kept with the message:
 * the payload compressed, its frame header (RSV1 set) in the head room.
 * NULL: msg goes as it is (under the channel's threshold, no smaller
 * compressed, or zlib failed).
 */

static ngx_goim_comet_msg_t *
ngx_goim_comet_msg_deflated(ngx_goim_channel_t *ch, ngx_goim_comet_msg_t *msg)
{
    u_char                *p;
    size_t                 n;
    ngx_goim_comet_msg_t  *dm;

    if (msg->len < ch->conf->deflate_min_length) {
        return NULL;
    }

    if (msg->deflate_tried) {
        return msg->deflated;
    }

    msg->deflate_tried = 1;

    if (ngx_goim_comet_deflate(ch->worker, msg->data, msg->len, &p, &n,
                               ch->connection->log)
        != NGX_OK)
    {
        return NULL;
    }

    dm = ngx_goim_comet_msg_create(n, ch->connection->log);
    if (dm == NULL) {
        return NULL;
    }

    ngx_memcpy(dm->data, p, n);

    /* written here, not by the enqueue: RSV1 says compressed */
    dm->ws_head_len = goim_ws_header_write(dm->ws_head, GOIM_WS_OP_BINARY, n);
    ngx_memmove(dm->data - dm->ws_head_len, dm->ws_head, dm->ws_head_len);
    dm->data[-(ngx_int_t) dm->ws_head_len] |= 0x40;

    /* it is its own compressed form */
    dm->deflate_tried = 1;

    msg->deflated = dm;

    return dm;
}


ngx_int_t
ngx_goim_channel_push(ngx_goim_channel_t *ch, ngx_goim_comet_msg_t *msg)
{
    ngx_int_t  rc;

    rc = ngx_goim_comet_output_enqueue(ch, msg, 0);

    if (rc == NGX_DECLINED) {
        ch->worker->stats->dropped++;

        ngx_log_error(NGX_LOG_WARN, ch->connection->log, 0,
                      "goim comet: key \"%V\" output queue full (%ui), "
                      "push dropped", &ch->node.str, ch->queued);
    }

    return rc;
}


/*
 * Queues a message for the writer.  On TCP an OpRaw batch goes out as its
 * inner packets (the outer header is skipped); on WebSocket every packet,
 * a batch with its outer header, is one binary frame, compressed when the
 * channel negotiated permessage-deflate; on SSE every packet, a batch's
 * inner ones, is one event (ngx_goim_comet_sse.c), on long-poll too
 * (ngx_goim_comet_poll.c answers polls from the queue).  force: past the
 * queue's bound (a closing frame).
 */

ngx_int_t
ngx_goim_comet_output_enqueue(ngx_goim_channel_t *ch, ngx_goim_comet_msg_t *msg,
    ngx_uint_t force)
{
    u_char                 head[10];
    ngx_event_t           *wev;
    ngx_goim_comet_msg_t  *dm, *sm;
    ngx_goim_comet_out_t  *out;

    if (ch->state == NGX_GOIM_CHANNEL_CLOSED
        || ch->state == NGX_GOIM_CHANNEL_MOVING)
    {
        return NGX_DECLINED;
    }

    if (ch->queued >= ch->conf->queue_size && !force) {
        return NGX_DECLINED;
    }

    sm = NULL;

    if (ch->sse && !msg->frame) {
        sm = ngx_goim_comet_output_events(ch, msg,
                                          force != NGX_GOIM_COMET_OUT_REPLAY);
        if (sm == NULL) {
            return NGX_ERROR;
        }

        /* the node holds the reference encode() gave */
        msg = sm;
    }

    out = ngx_goim_comet_output_node(ch->worker, ch->connection->log);
    if (out == NULL) {
        if (sm) {
            ngx_goim_comet_msg_release(sm);
        }

        return NGX_ERROR;
    }

    if (ch->deflate && ch->conf->deflate && !msg->frame) {
        dm = ngx_goim_comet_msg_deflated(ch, msg);

        if (dm) {
            ch->worker->stats->deflate_frames++;
            msg = dm;
        }
    }

    if (sm == NULL) {
        msg->refs++;
    }

    out->next = NULL;
    out->msg = msg;
    out->pos = msg->data;
    out->last = msg->data + msg->len;
    out->uncounted = (force == NGX_GOIM_COMET_OUT_REPLAY);

    if (ch->ws) {
        if (!msg->frame) {
            if (msg->ws_head_len == 0) {
                msg->ws_head_len = goim_ws_header_write(head,
                                                        GOIM_WS_OP_BINARY,
                                                        msg->len);
                ngx_memcpy(msg->data - msg->ws_head_len, head,
                           msg->ws_head_len);
            }

            out->pos = msg->data - msg->ws_head_len;
        }

    } else if (msg->raw) {
        out->pos += GOIM_HEADER_LEN;
    }

    *ch->out_tail = out;
    ch->out_tail = &out->next;

    if (!out->uncounted) {
        ch->queued++;
    }

    wev = ch->connection->write;

    if (!wev->posted) {
        ngx_post_event(wev, &ch->worker->write_posted);

        if (!ch->worker->write_event.posted) {
            ngx_post_event(&ch->worker->write_event, &ngx_posted_events);
        }
    }

    return NGX_OK;
}


/*
 * The events of msg as SSE channel ch takes them, a reference the caller
 * releases; NULL: no memory.  The copy is kept on msg for the next
 * recipients (share: not a replay's, the history would keep it) when its
 * ids are the same for them: none, or one stream's going on from the
 * other stream's position they stand at (in practice, a room's members).
 */

static ngx_goim_comet_msg_t *
ngx_goim_comet_output_events(ngx_goim_channel_t *ch, ngx_goim_comet_msg_t *msg,
    ngx_uint_t share)
{
    ngx_uint_t             kind;
    ngx_goim_comet_sse_t  *sse;
    ngx_goim_comet_msg_t  *sm;

    sse = ch->sse;
    sm = msg->sse;

    if (sm) {
        if (!sm->ids) {
            sm->refs++;
            return sm;
        }

        kind = sm->stream;

        if (sse->epoch[kind ^ 1] == sm->key_epoch
            && sse->seq[kind ^ 1] == sm->key_seq)
        {
            sse->epoch[kind] = sm->epoch;
            sse->seq[kind] = sm->seq;
            sm->refs++;
            return sm;
        }

        /* another position than the copy's: a copy of ch's own */
        share = 0;
    }

    sm = ngx_goim_comet_msg_create(ngx_goim_comet_events_size(msg),
                                   ch->connection->log);
    if (sm == NULL) {
        return NULL;
    }

    sm->frame = 1;

    if (ngx_goim_comet_events_write(sse, ch->positions, msg, sm)) {
        share = 0;
    }

    if (share && msg->sse == NULL) {
        sm->refs++;
        msg->sse = sm;
    }

    return sm;
}


/*
 * writes a turn of the event loop: ~0.5 ms of a fan-out's (6-8 us each),
 * so that what comes meanwhile (a push API call and its answer, an RPC
 * reply, a new client) is not held behind thousands of writes.  A push
 * API call takes three turns (accept, request and job's answer), and on
 * a machine the clients share a worker gets a few ms of CPU at a time:
 * 64 writes a turn answered pushes at p99 34-43 ms where 256 took 66-71
 * (bench/comet_vs_nchan.sh, 10,000 members, 50 and 100 msg/s), for the
 * same delivery latency and 3 % more CPU.
 */
#define NGX_GOIM_COMET_WRITE_SLICE  64

/*
 * The channels' write events are posted to the worker's own queue, not
 * to ngx_posted_events: the rest of a long fan-out then waits for the
 * next turn as one event, where re-posting each of its write events
 * would touch every one of them once per slice.
 */

void
ngx_goim_comet_output_write_posted(ngx_event_t *ev)
{
    ngx_uint_t                n;
    ngx_queue_t              *q;
    ngx_event_t              *wev;
    ngx_goim_comet_worker_t  *wk;

    wk = ev->data;

    for (n = 0; n < NGX_GOIM_COMET_WRITE_SLICE; n++) {

        if (ngx_queue_empty(&wk->write_posted)) {
            return;
        }

        q = ngx_queue_head(&wk->write_posted);
        wev = ngx_queue_data(q, ngx_event_t, queue);

        ngx_delete_posted_event(wev);

        wev->handler(wev);
    }

    if (!ngx_queue_empty(&wk->write_posted)) {
        wk->stats->write_slices++;
        ngx_post_event(ev, &ngx_posted_next_events);
    }
}


/* bytes that are their own frame, like the 101 answer to an upgrade */

ngx_int_t
ngx_goim_channel_enqueue_raw(ngx_goim_channel_t *ch, ngx_goim_comet_msg_t *msg)
{
    msg->frame = 1;

    return ngx_goim_comet_output_enqueue(ch, msg, 1);
}


#define NGX_GOIM_CHANNEL_IOVS  64

/*
 * Writes as much of the queue as the socket takes, up to 64 pieces per
 * send_chain() (one writev(), or one SSL record buffer).  A WebSocket
 * frame is one piece, its header written before the data it shares with
 * every recipient (msg->ws_head).
 */

ngx_int_t
ngx_goim_comet_output_flush(ngx_goim_channel_t *ch)
{
    off_t                  sent;
    size_t                 n;
    ssize_t                written;
    ngx_buf_t              bufs[NGX_GOIM_CHANNEL_IOVS];
    ngx_uint_t             i, single;
    ngx_chain_t            chain[NGX_GOIM_CHANNEL_IOVS], *cl, *rc;
    ngx_connection_t      *c;
    ngx_goim_comet_out_t  *out;

    c = ch->connection;

    /*
     * One piece queued, as in a fan-out, goes with one send(), without a
     * chain for writev().  Not on TLS: an HTTP connection's TLS layer may
     * still hold bytes send_chain() gave it, and they must go first.
     */
    single = 1;

#if (NGX_SSL)
    if (c->ssl) {
        single = 0;
    }
#endif

    while (ch->out) {

        out = ch->out;

        if (single && out->next == NULL && out->pos < out->last) {
            written = c->send(c, out->pos, out->last - out->pos);

            if (written == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (written == NGX_AGAIN) {
                goto again;
            }

            out->pos += written;

            if (out->pos < out->last) {
                goto again;
            }

            ngx_goim_comet_output_retire(ch, out);
            break;
        }

        i = 0;

        for (out = ch->out;
             out && i < NGX_GOIM_CHANNEL_IOVS;
             out = out->next)
        {
            ngx_memzero(&bufs[i], sizeof(ngx_buf_t));
            bufs[i].pos = out->pos;
            bufs[i].last = out->last;
            bufs[i].memory = 1;
            i++;
        }

        for (n = 0; n < i; n++) {
            chain[n].buf = &bufs[n];
            chain[n].next = (n + 1 < i) ? &chain[n + 1] : NULL;
        }

        /* an HTTP connection's TLS layer holds output until a flush */
        bufs[i - 1].flush = 1;

        sent = c->sent;

        rc = c->send_chain(c, chain, 0);

        if (rc == NGX_CHAIN_ERROR) {
            return NGX_ERROR;
        }

        sent = c->sent - sent;

        /* retire what went out */

        while (sent > 0 && ch->out) {
            out = ch->out;

            n = ngx_min((size_t) sent, (size_t) (out->last - out->pos));
            out->pos += n;
            sent -= n;

            if (out->pos < out->last) {
                break;
            }

            ngx_goim_comet_output_retire(ch, out);
        }

        for (cl = rc; cl; cl = cl->next) {
            if (ngx_buf_size(cl->buf)) {
                /* the socket is full */
                goto again;
            }
        }
    }

again:

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the head of the queue went out whole (or a poll confirmed it) */

void
ngx_goim_comet_output_retire(ngx_goim_channel_t *ch, ngx_goim_comet_out_t *out)
{
    ch->out = out->next;
    if (ch->out == NULL) {
        ch->out_tail = &ch->out;
    }

    if (!out->uncounted) {
        ch->queued--;
    }

    ch->worker->stats->packets_out++;

    ngx_goim_comet_msg_release(out->msg);
    ngx_goim_comet_output_node_free(ch->worker, out);
}


/* what a closing channel still has queued */

void
ngx_goim_comet_output_free(ngx_goim_channel_t *ch)
{
    ngx_goim_comet_out_t  *out;

    while (ch->out) {
        out = ch->out;
        ch->out = out->next;

        ngx_goim_comet_msg_release(out->msg);
        ngx_goim_comet_output_node_free(ch->worker, out);
    }

    ch->out_tail = &ch->out;
    ch->queued = 0;
}


/* the worker is exiting: its free list goes */

void
ngx_goim_comet_output_free_all(ngx_goim_comet_worker_t *wk)
{
    ngx_goim_comet_out_t  *out;

    while (wk->free_out) {
        out = wk->free_out;
        wk->free_out = out->next;
        ngx_free(out);
    }

    wk->nfree_out = 0;
}


static ngx_goim_comet_out_t *
ngx_goim_comet_output_node(ngx_goim_comet_worker_t *wk, ngx_log_t *log)
{
    ngx_goim_comet_out_t  *out;

    out = wk->free_out;

    if (out) {
        wk->free_out = out->next;
        wk->nfree_out--;
        return out;
    }

    return ngx_alloc(sizeof(ngx_goim_comet_out_t), log);
}


static void
ngx_goim_comet_output_node_free(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_out_t *out)
{
    if (wk->nfree_out >= NGX_GOIM_COMET_FREE_OUT) {
        ngx_free(out);
        return;
    }

    out->next = wk->free_out;
    wk->free_out = out;
    wk->nfree_out++;
}
