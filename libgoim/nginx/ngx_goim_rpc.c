
/*
 * Copyright (C) ngx_goim authors
 */


/*
 * The RPC channel: one connection's byte stream, both sides' (peers and
 * sessions), cut into goim frames.  Its buffers are the layer's own, not
 * a pool's: a link lives as long as the worker, so pool memory would only
 * grow.
 *
 *   chan.in, chan.out    ngx_alloc(); grown by doubling from 4k, in as far
 *                        as a frame needs (a frame is at most max_frame),
 *                        out as far as the unsent frames do (the peer's
 *                        max_backlog, the session's backlog bound it);
 *                        once emptied, one over 64k is freed, and both are
 *                        freed with the link
 *   ngx_goim_rpc_auth_t  ngx_calloc(), fixed frames of GOIM_AUTH_FRAME_MAX,
 *                        freed when the handshake ends
 *   calls, requests      ngx_calloc(), one each, freed when answered
 *   peers, sessions      the cycle's pool, the connection's pool
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_rpc_internal.h"


#define NGX_GOIM_RPC_BUF_MIN  4096

/* an emptied buffer larger than this is freed: a burst does not pin it */
#define NGX_GOIM_RPC_BUF_KEEP  (64 * 1024)


static void ngx_goim_rpc_buf_drained(ngx_goim_rpc_buf_t *b);


/* buffers */

ngx_int_t
ngx_goim_rpc_buf_reserve(ngx_goim_rpc_buf_t *b, size_t n, ngx_log_t *log)
{
    size_t   cap;
    u_char  *p;

    if (b->pos && b->pos == b->len) {
        b->pos = 0;
        b->len = 0;
    }

    if (b->cap - b->len >= n) {
        return NGX_OK;
    }

    if (b->pos) {
        ngx_memmove(b->data, b->data + b->pos, b->len - b->pos);
        b->len -= b->pos;
        b->pos = 0;

        if (b->cap - b->len >= n) {
            return NGX_OK;
        }
    }

    cap = ngx_max(b->cap * 2, NGX_GOIM_RPC_BUF_MIN);
    while (cap - b->len < n) {
        cap *= 2;
    }

    p = ngx_alloc(cap, log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (b->len) {
        ngx_memcpy(p, b->data, b->len);
    }

    if (b->data) {
        ngx_free(b->data);
    }

    b->data = p;
    b->cap = cap;

    return NGX_OK;
}


void
ngx_goim_rpc_buf_free(ngx_goim_rpc_buf_t *b)
{
    if (b->data) {
        ngx_free(b->data);
    }

    ngx_memzero(b, sizeof(ngx_goim_rpc_buf_t));
}


/* all of b was consumed: start over, giving back what a burst took */

static void
ngx_goim_rpc_buf_drained(ngx_goim_rpc_buf_t *b)
{
    if (b->cap > NGX_GOIM_RPC_BUF_KEEP) {
        ngx_goim_rpc_buf_free(b);
        return;
    }

    b->pos = 0;
    b->len = 0;
}


/*
 * Hands each whole frame buffered or on the socket to frame().
 * NGX_AGAIN: wait for more; NGX_DONE: the peer closed; NGX_ERROR: a bad
 * frame or a socket error (logged here); NGX_BUSY: ch->batch frames were
 * handled, come back from the next event loop iteration; NGX_DECLINED:
 * more than ch->backlog reply bytes are unsent, come back once they went.
 * A partial frame keeps the read timer (ch->frame_timeout) running: it
 * starts with the frame's first bytes, not with each read.
 */

ngx_int_t
ngx_goim_rpc_chan_read(ngx_goim_rpc_chan_t *ch, ngx_goim_rpc_frame_pt frame,
    void *owner)
{
    size_t             consumed;
    ssize_t            n;
    goim_rc_t          rc;
    ngx_uint_t         handled;
    ngx_event_t       *rev;
    goim_packet_t      pkt;
    ngx_connection_t  *c;

    c = ch->connection;
    rev = c->read;
    handled = 0;

    for ( ;; ) {

        /* the frames already buffered first, then the socket */

        for ( ;; ) {
            if (ch->backlog && ch->out.len - ch->out.pos > ch->backlog) {
                /* the peer does not read: do not read it either */
                if (rev->timer_set) {
                    ngx_del_timer(rev);
                }

                return NGX_DECLINED;
            }

            if (ch->batch && handled == ch->batch) {
                return NGX_BUSY;
            }

            if (ch->in.pos == ch->in.len) {
                break;
            }

            rc = goim_packet_parse(ch->in.data + ch->in.pos,
                                   ch->in.len - ch->in.pos,
                                   ch->max_frame, &pkt, &consumed);

            if (rc == GOIM_AGAIN) {
                break;
            }

            if (rc != GOIM_OK) {
                ngx_log_error(NGX_LOG_ERR, ch->log, 0,
                              "goim rpc: bad frame from %V: %s",
                              &c->addr_text, goim_strerror(rc));
                ch->bad = 1;
                return NGX_ERROR;
            }

            ch->in.pos += consumed;
            ch->frame_done = 1;
            handled++;

            if (frame(owner, &pkt) != NGX_OK) {
                return NGX_ERROR;
            }

            if (ch->in.data == NULL) {
                /* the owner failed the connection in frame() */
                return NGX_DONE;
            }
        }

        if (ch->in.pos == ch->in.len) {
            ngx_goim_rpc_buf_drained(&ch->in);
        }

        if (ngx_goim_rpc_buf_reserve(&ch->in, NGX_GOIM_RPC_BUF_MIN, ch->log)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        n = c->recv(c, ch->in.data + ch->in.len, ch->in.cap - ch->in.len);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (n == 0) {
            return NGX_DONE;
        }

        ch->in.len += n;
    }

    if (ch->frame_timeout == 0) {
        return NGX_AGAIN;
    }

    if (ch->in.pos == ch->in.len) {
        /* between frames a link may idle as long as it likes */
        if (rev->timer_set) {
            ngx_del_timer(rev);
        }

    } else if (!rev->timer_set || ch->frame_done) {
        /* a new frame's clock; ngx_add_timer() alone may keep the old one */
        if (rev->timer_set) {
            ngx_del_timer(rev);
        }

        ngx_add_timer(rev, ch->frame_timeout);
    }

    ch->frame_done = 0;

    return NGX_AGAIN;
}


ngx_int_t
ngx_goim_rpc_chan_flush(ngx_goim_rpc_chan_t *ch)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = ch->connection;

    while (ch->out.pos < ch->out.len) {
        n = c->send(c, ch->out.data + ch->out.pos, ch->out.len - ch->out.pos);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        ch->out.pos += n;
    }

    if (ch->out.pos == ch->out.len) {
        ngx_goim_rpc_buf_drained(&ch->out);
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return ch->out.len ? NGX_AGAIN : NGX_OK;
}


/* room for one outgoing frame of size bytes, appended to the output */

u_char *
ngx_goim_rpc_chan_frame(ngx_goim_rpc_chan_t *ch, size_t size)
{
    u_char  *p;

    if (ngx_goim_rpc_buf_reserve(&ch->out, size, ch->log) != NGX_OK) {
        return NULL;
    }

    p = ch->out.data + ch->out.len;
    ch->out.len += size;

    return p;
}



void
ngx_goim_rpc_init(ngx_goim_rpc_t *rpc, const goim_auth_secret_t *secret,
    ngx_msec_t auth_timeout, void (*refused)(void *ctx), void *ctx,
    ngx_log_t *log)
{
    ngx_queue_init(&rpc->sessions);
    rpc->secret = (secret && secret->len) ? secret : NULL;
    rpc->auth_timeout = auth_timeout;
    rpc->auth_refused = refused;
    rpc->ctx = ctx;
    rpc->counters = NULL;
    rpc->session_quit = NULL;

    if (rpc->secret && goim_auth_warmup(rpc->secret) != 0) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "goim rpc: no random bytes for the handshake's nonces");
    }
}

