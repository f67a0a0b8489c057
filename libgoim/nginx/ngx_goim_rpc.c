
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_goim_rpc.h"


#define NGX_GOIM_RPC_BUF_MIN  4096

/* an emptied buffer larger than this is freed: a burst does not pin it */
#define NGX_GOIM_RPC_BUF_KEEP  (64 * 1024)


/* the byte stream shared by both sides: one connection, two buffers */

typedef struct {
    u_char                    *data;
    size_t                     pos;
    size_t                     len;
    size_t                     cap;
} ngx_goim_rpc_buf_t;

typedef ngx_int_t (*ngx_goim_rpc_frame_pt)(void *owner, goim_packet_t *pkt);


/*
 * A handshake under way (goim_auth.h) on a peer's or a session's
 * connection.  Its frames are read exactly, never past their end, so the
 * RPC bytes that follow stay in the socket for the channel.
 */
typedef struct {
    goim_auth_t                auth;
    u_char                     in[GOIM_AUTH_FRAME_MAX];
    size_t                     in_len;
    u_char                     out[GOIM_AUTH_FRAME_MAX];
    size_t                     out_pos;
    size_t                     out_len;
    const char                *error;
} ngx_goim_rpc_auth_t;

typedef struct {
    ngx_connection_t          *connection;
    ngx_goim_rpc_buf_t         in;
    ngx_goim_rpc_buf_t         out;
    size_t                     max_frame;
    ngx_log_t                 *log;

    /* server sessions only; 0: no bound */
    ngx_msec_t                 frame_timeout;
    size_t                     backlog;
    ngx_uint_t                 batch;
    unsigned                   frame_done:1;  /* since the timer was set */
    unsigned                   bad:1;         /* closing for bad input */
} ngx_goim_rpc_chan_t;


struct ngx_goim_rpc_peer_s {
    ngx_goim_rpc_chan_t        chan;
    ngx_goim_rpc_t            *rpc;
    ngx_goim_rpc_upstream_t   *upstream;
    ngx_uint_t                 next_addr;
    ngx_msec_t                 connect_timeout;
    ngx_peer_connection_t      pc;
    unsigned                   connected:1;
    unsigned                   down:1;       /* calls fail until retry_at */

    ngx_uint_t                 timeouts;     /* in a row, on this link */
    ngx_msec_t                 retry_at;

    int32_t                    seq;
    ngx_rbtree_t               pending;
    ngx_rbtree_node_t          sentinel;

    ngx_event_t                fail_event;   /* reports failures later */
    ngx_queue_t                failed;       /* calls failed on send */

    ngx_goim_rpc_auth_t       *auth;         /* handshake under way */
};


struct ngx_goim_rpc_session_s {
    ngx_goim_rpc_chan_t        chan;
    ngx_goim_rpc_t            *rpc;
    ngx_queue_t                queue;        /* in rpc->sessions */
    ngx_goim_rpc_handler_t    *handlers;
    void                     (*bad_input)(void *ctx);
    ngx_queue_t                requests;
    void                     (*on_close)(void *data);
    void                      *data;
    ngx_goim_rpc_auth_t       *auth;         /* handshake under way */
    unsigned                   closed:1;
    unsigned                   failed:1;
    unsigned                   paused:1;     /* replies over the backlog */
};


typedef struct {
    ngx_goim_rpc_call_t        call;
    ngx_queue_t                queue;        /* in peer->failed */
    ngx_int_t                  status;
    const char                *message;
} ngx_goim_rpc_call_ext_t;



static ngx_int_t ngx_goim_rpc_buf_reserve(ngx_goim_rpc_buf_t *b, size_t n,
    ngx_log_t *log);
static void ngx_goim_rpc_buf_free(ngx_goim_rpc_buf_t *b);
static void ngx_goim_rpc_buf_drained(ngx_goim_rpc_buf_t *b);
static ngx_int_t ngx_goim_rpc_chan_read(ngx_goim_rpc_chan_t *ch,
    ngx_goim_rpc_frame_pt frame, void *owner);
static ngx_int_t ngx_goim_rpc_chan_flush(ngx_goim_rpc_chan_t *ch);
static u_char *ngx_goim_rpc_chan_frame(ngx_goim_rpc_chan_t *ch, size_t size);

static ngx_int_t ngx_goim_rpc_peer_connect(ngx_goim_rpc_peer_t *peer);
static void ngx_goim_rpc_peer_read_handler(ngx_event_t *rev);
static void ngx_goim_rpc_peer_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_goim_rpc_peer_frame(void *owner, goim_packet_t *pkt);
static void ngx_goim_rpc_peer_fail(ngx_goim_rpc_peer_t *peer,
    const char *reason);
static void ngx_goim_rpc_peer_reset(ngx_goim_rpc_peer_t *peer,
    const char *reason);
static ngx_int_t ngx_goim_rpc_peer_check_backlog(ngx_goim_rpc_peer_t *peer);
static void ngx_goim_rpc_call_finish(ngx_goim_rpc_call_t *call,
    ngx_goim_rpc_result_t *res);
static void ngx_goim_rpc_call_timeout(ngx_event_t *ev);
static void ngx_goim_rpc_fail_handler(ngx_event_t *ev);

static ngx_goim_rpc_auth_t *ngx_goim_rpc_auth_create(ngx_goim_rpc_t *rpc,
    int client,
    ngx_log_t *log);
static ngx_int_t ngx_goim_rpc_auth_step(ngx_connection_t *c,
    ngx_goim_rpc_auth_t *a);
static void ngx_goim_rpc_peer_auth_start(ngx_goim_rpc_peer_t *peer);
static void ngx_goim_rpc_peer_auth_handler(ngx_event_t *ev);
static void ngx_goim_rpc_session_auth_handler(ngx_event_t *ev);

static void ngx_goim_rpc_session_read_handler(ngx_event_t *rev);
static void ngx_goim_rpc_session_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_goim_rpc_session_frame(void *owner, goim_packet_t *pkt);
static void ngx_goim_rpc_session_close(ngx_goim_rpc_session_t *s);
static void ngx_goim_rpc_request_free(ngx_goim_rpc_request_t *r);


/* buffers */

static ngx_int_t
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


static void
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

static ngx_int_t
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


static ngx_int_t
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

static u_char *
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


/* client side */

char *
ngx_goim_rpc_parse_upstream(ngx_conf_t *cf, ngx_str_t *value,
    ngx_goim_rpc_upstream_t *up)
{
    ngx_url_t  u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *value;
    u.no_resolve = 0;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in upstream \"%V\"", u.err, &u.url);
        }

        return NGX_CONF_ERROR;
    }

    if (u.no_port || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "upstream \"%V\" needs a host and a port",
                           &u.url);
        return NGX_CONF_ERROR;
    }

    up->name = *value;
    up->addrs = u.addrs;
    up->naddrs = u.naddrs;

    return NGX_CONF_OK;
}


ngx_goim_rpc_peer_t *
ngx_goim_rpc_peer_create(ngx_goim_rpc_t *rpc, ngx_cycle_t *cycle,
    ngx_goim_rpc_upstream_t *up, ngx_msec_t connect_timeout)
{
    ngx_goim_rpc_peer_t  *peer;

    peer = ngx_pcalloc(cycle->pool, sizeof(ngx_goim_rpc_peer_t));
    if (peer == NULL) {
        return NULL;
    }

    peer->rpc = rpc;
    peer->upstream = up;
    peer->connect_timeout = connect_timeout;
    peer->chan.log = cycle->log;
    peer->chan.max_frame = GOIM_RPC_MAX_BODY_DEFAULT;
    peer->seq = (int32_t) (ngx_random() & 0xffff);

    ngx_rbtree_init(&peer->pending, &peer->sentinel,
                    ngx_rbtree_insert_value);
    ngx_queue_init(&peer->failed);

    peer->fail_event.handler = ngx_goim_rpc_fail_handler;
    peer->fail_event.data = peer;
    peer->fail_event.log = cycle->log;
    peer->fail_event.cancelable = 1;

    return peer;
}


static ngx_int_t
ngx_goim_rpc_peer_connect(ngx_goim_rpc_peer_t *peer)
{
    ngx_int_t                 rc;
    ngx_addr_t               *addr;
    ngx_connection_t         *c;
    ngx_peer_connection_t    *pc;
    ngx_goim_rpc_upstream_t  *up;

    up = peer->upstream;
    addr = &up->addrs[peer->next_addr++ % up->naddrs];

    pc = &peer->pc;
    ngx_memzero(pc, sizeof(ngx_peer_connection_t));

    pc->sockaddr = addr->sockaddr;
    pc->socklen = addr->socklen;
    pc->name = &up->name;
    pc->get = ngx_event_get_peer;
    pc->log = peer->chan.log;
    pc->log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(pc);

    if (rc == NGX_ERROR || rc == NGX_DECLINED || rc == NGX_BUSY) {
        if (pc->connection) {
            ngx_close_connection(pc->connection);
            pc->connection = NULL;
        }

        return NGX_ERROR;
    }

    c = pc->connection;
    c->data = peer;
    c->read->handler = ngx_goim_rpc_peer_read_handler;
    c->write->handler = ngx_goim_rpc_peer_write_handler;

    /* an upstream link must not keep a worker alive on "nginx -s quit" */
    c->idle = 1;

    peer->chan.connection = c;
    peer->connected = 0;

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, peer->connect_timeout);
        return NGX_OK;
    }

    if (peer->rpc->secret) {
        /* the handshake starts from the write handler, not in a call */
        ngx_post_event(c->write, &ngx_posted_events);
        return NGX_OK;
    }

    peer->connected = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_goim_rpc_test_connect(ngx_connection_t *c)
{
    int        err;
    socklen_t  len;

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        (void) ngx_connection_error(c, err, "connect() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_goim_rpc_peer_write_handler(ngx_event_t *wev)
{
    ngx_connection_t     *c;
    ngx_goim_rpc_peer_t  *peer;

    c = wev->data;
    peer = c->data;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, NGX_ETIMEDOUT,
                      "goim rpc: connect to %V timed out",
                      &peer->upstream->name);
        ngx_goim_rpc_peer_fail(peer, "upstream connect timed out");
        return;
    }

    if (!peer->connected) {
        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        if (ngx_goim_rpc_test_connect(c) != NGX_OK) {
            ngx_goim_rpc_peer_fail(peer, "upstream unreachable");
            return;
        }

        if (peer->rpc->secret) {
            ngx_goim_rpc_peer_auth_start(peer);
            return;
        }

        peer->connected = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, peer->chan.log, 0,
                       "goim rpc: connected to %V", &peer->upstream->name);

        if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
            ngx_goim_rpc_peer_fail(peer, "upstream read event failed");
            return;
        }
    }

    if (ngx_goim_rpc_chan_flush(&peer->chan) == NGX_ERROR) {
        ngx_goim_rpc_peer_fail(peer, "upstream write failed");
        return;
    }

    (void) ngx_goim_rpc_peer_check_backlog(peer);
}


/*
 * What the kernel's buffers did not take waits here: an upstream that
 * does not read would make it grow by every call.  Checked after each
 * flush and each call, so it exceeds max_backlog by one call at most.
 */

static ngx_int_t
ngx_goim_rpc_peer_check_backlog(ngx_goim_rpc_peer_t *peer)
{
    size_t  unsent;

    unsent = peer->chan.out.len - peer->chan.out.pos;

    if (peer->upstream->max_backlog == 0
        || unsent <= peer->upstream->max_backlog
        || !peer->connected
        || peer->chan.connection->write->ready)
    {
        /* under the bound, or the socket may still take it */
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                  "goim rpc: %V does not read: %uz bytes wait to be sent",
                  &peer->upstream->name, unsent);

    ngx_goim_rpc_peer_reset(peer, "upstream is not reading");

    return NGX_ERROR;
}


static void
ngx_goim_rpc_peer_read_handler(ngx_event_t *rev)
{
    ngx_int_t             rc;
    ngx_connection_t     *c;
    ngx_goim_rpc_peer_t  *peer;

    c = rev->data;
    peer = c->data;

    if (c->close) {
        ngx_goim_rpc_peer_fail(peer, "worker is shutting down");
        return;
    }

    if (!peer->connected) {
        /* the write handler finishes the connect */
        return;
    }

    rc = ngx_goim_rpc_chan_read(&peer->chan, ngx_goim_rpc_peer_frame, peer);

    if (rc == NGX_AGAIN) {
        if (ngx_handle_read_event(rev, 0) != NGX_OK) {
            ngx_goim_rpc_peer_fail(peer, "upstream read event failed");
        }

        return;
    }

    if (rc == NGX_DONE) {
        ngx_log_error(NGX_LOG_WARN, peer->chan.log, 0,
                      "goim rpc: %V closed the connection",
                      &peer->upstream->name);
    }

    ngx_goim_rpc_peer_fail(peer, "upstream connection lost");
}


static ngx_int_t
ngx_goim_rpc_peer_frame(void *owner, goim_packet_t *pkt)
{
    int32_t                 method;
    ngx_rbtree_node_t      *node, *sentinel;
    ngx_goim_rpc_peer_t    *peer;
    ngx_goim_rpc_call_t    *call;
    ngx_goim_rpc_result_t   res;
    Goim__RpcError         *err;

    peer = owner;

    /* it answers: whatever timed out before was not a dead link */
    peer->timeouts = 0;

    if (!goim_rpc_is_reply(pkt->header.op)) {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                      "goim rpc: %V sent a request (op %D) to a client",
                      &peer->upstream->name, pkt->header.op);
        return NGX_ERROR;
    }

    node = peer->pending.root;
    sentinel = peer->pending.sentinel;

    while (node != sentinel) {
        if ((ngx_rbtree_key_t) (uint32_t) pkt->header.seq == node->key) {
            break;
        }

        node = ((ngx_rbtree_key_t) (uint32_t) pkt->header.seq < node->key)
               ? node->left : node->right;
    }

    if (node == sentinel) {
        /* its caller gave up (timeout or cancel) */
        return NGX_OK;
    }

    call = (ngx_goim_rpc_call_t *) node;
    method = goim_rpc_op_method(pkt->header.op);

    ngx_memzero(&res, sizeof(ngx_goim_rpc_result_t));

    if (pkt->header.op & GOIM_RPC_ERROR) {
        err = (Goim__RpcError *) protobuf_c_message_unpack(
                  &goim__rpc_error__descriptor, NULL, pkt->body_len,
                  pkt->body);

        if (err == NULL) {
            ngx_str_set(&res.message, "malformed error reply");
            res.status = GOIM__ERROR_CODE__ERROR_INTERNAL;

        } else {
            res.status = err->code ? (ngx_int_t) err->code
                                   : GOIM__ERROR_CODE__ERROR_INTERNAL;
            res.message.data = (u_char *) err->message;
            res.message.len = ngx_strlen(err->message);
        }

        ngx_goim_rpc_call_finish(call, &res);

        if (err) {
            protobuf_c_message_free_unpacked(&err->base, NULL);
        }

        return NGX_OK;
    }

    if (method != call->method) {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                      "goim rpc: %V answered method %D to a call of %D",
                      &peer->upstream->name, method, call->method);
        return NGX_ERROR;
    }

    res.reply = goim_rpc_unpack(method, 1, NULL, pkt->body, pkt->body_len);

    if (res.reply == NULL) {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                      "goim rpc: malformed reply from %V",
                      &peer->upstream->name);
        return NGX_ERROR;
    }

    ngx_goim_rpc_call_finish(call, &res);

    protobuf_c_message_free_unpacked(res.reply, NULL);

    return NGX_OK;
}


static void
ngx_goim_rpc_call_finish(ngx_goim_rpc_call_t *call,
    ngx_goim_rpc_result_t *res)
{
    ngx_goim_rpc_done_pt   done;
    void                  *data;

    done = call->done;
    data = call->data;

    ngx_goim_rpc_cancel(call);

    done(data, res);
}


void
ngx_goim_rpc_cancel(ngx_goim_rpc_call_t *call)
{
    ngx_goim_rpc_call_ext_t  *ext;

    ext = (ngx_goim_rpc_call_ext_t *) call;

    if (call->timeout.timer_set) {
        ngx_del_timer(&call->timeout);
    }

    if (ext->queue.next) {
        ngx_queue_remove(&ext->queue);

    } else {
        ngx_rbtree_delete(&call->peer->pending, &call->node);
    }

    ngx_free(call);
}


static void
ngx_goim_rpc_call_timeout(ngx_event_t *ev)
{
    ngx_goim_rpc_peer_t    *peer;
    ngx_goim_rpc_call_t    *call;
    ngx_goim_rpc_result_t   res;

    call = ev->data;
    peer = call->peer;

    ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                  "goim rpc: %s to %V timed out",
                  goim_rpc_method(call->method)->name,
                  &peer->upstream->name);

    ngx_memzero(&res, sizeof(ngx_goim_rpc_result_t));
    res.status = GOIM__ERROR_CODE__ERROR_TIMEOUT;
    ngx_str_set(&res.message, "upstream timed out");

    ngx_goim_rpc_call_finish(call, &res);

    /*
     * A stopped upstream keeps its socket open: nothing but time says it
     * is gone, and every call would wait its full timeout behind it.
     */
    if (peer->upstream->max_timeouts
        && peer->chan.connection
        && ++peer->timeouts >= peer->upstream->max_timeouts)
    {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                      "goim rpc: %ui calls to %V in a row timed out",
                      peer->timeouts, &peer->upstream->name);

        ngx_goim_rpc_peer_reset(peer, "upstream is not answering");
    }
}


static void
ngx_goim_rpc_local_timeout(ngx_event_t *ev)
{
    ngx_goim_rpc_call_ext_t  *ext;

    ext = ev->data;

    if (ext->message) {
        ngx_goim_rpc_local_finish(&ext->call, ext->status, ext->message);
        return;
    }

    ngx_goim_rpc_local_finish(&ext->call, GOIM__ERROR_CODE__ERROR_TIMEOUT,
                              "no answer in time");
}


ngx_goim_rpc_call_t *
ngx_goim_rpc_local_call(ngx_queue_t *list, ngx_rbtree_key_t id,
    ngx_msec_t timeout, ngx_log_t *log, ngx_goim_rpc_done_pt done,
    void *data)
{
    ngx_goim_rpc_call_ext_t  *ext;

    ext = ngx_calloc(sizeof(ngx_goim_rpc_call_ext_t), log);
    if (ext == NULL) {
        return NULL;
    }

    ext->call.node.key = id;
    ext->call.done = done;
    ext->call.data = data;
    ext->call.timeout.handler = ngx_goim_rpc_local_timeout;
    ext->call.timeout.data = ext;
    ext->call.timeout.log = log;

    ngx_queue_insert_tail(list, &ext->queue);
    ngx_add_timer(&ext->call.timeout, timeout);

    return &ext->call;
}


ngx_goim_rpc_call_t *
ngx_goim_rpc_local_find(ngx_queue_t *list, ngx_rbtree_key_t id)
{
    ngx_queue_t              *q;
    ngx_goim_rpc_call_ext_t  *ext;

    /* answers come back mostly in order: the head is the likely one */
    for (q = ngx_queue_head(list);
         q != ngx_queue_sentinel(list);
         q = ngx_queue_next(q))
    {
        ext = ngx_queue_data(q, ngx_goim_rpc_call_ext_t, queue);

        if (ext->call.node.key == id) {
            return &ext->call;
        }
    }

    return NULL;
}


void
ngx_goim_rpc_local_finish(ngx_goim_rpc_call_t *call, ngx_int_t status,
    const char *message)
{
    ngx_goim_rpc_result_t  res;

    ngx_memzero(&res, sizeof(ngx_goim_rpc_result_t));
    res.status = status;

    if (message) {
        res.message.data = (u_char *) message;
        res.message.len = ngx_strlen(message);
    }

    ngx_goim_rpc_call_finish(call, &res);
}


void
ngx_goim_rpc_local_finish_later(ngx_goim_rpc_call_t *call, ngx_int_t status,
    const char *message)
{
    ngx_goim_rpc_call_ext_t  *ext;

    ext = (ngx_goim_rpc_call_ext_t *) call;
    ext->status = status;
    ext->message = message ? message : "";

    if (call->timeout.timer_set) {
        ngx_del_timer(&call->timeout);
    }

    ngx_add_timer(&call->timeout, 0);
}


/* calls that could not even be sent are reported from a posted event, so
 * that done() never runs inside ngx_goim_rpc_call() */

static void
ngx_goim_rpc_fail_later(ngx_goim_rpc_peer_t *peer,
    ngx_goim_rpc_call_ext_t *ext, const char *reason)
{
    ext->status = GOIM__ERROR_CODE__ERROR_UNAVAILABLE;
    ext->message = reason;

    ngx_queue_insert_tail(&peer->failed, &ext->queue);

    if (!peer->fail_event.posted) {
        ngx_post_event(&peer->fail_event, &ngx_posted_events);
    }
}


static void
ngx_goim_rpc_fail_handler(ngx_event_t *ev)
{
    ngx_queue_t              *q;
    ngx_goim_rpc_peer_t      *peer;
    ngx_goim_rpc_result_t     res;
    ngx_goim_rpc_call_ext_t  *ext;

    peer = ev->data;

    while (!ngx_queue_empty(&peer->failed)) {
        q = ngx_queue_head(&peer->failed);
        ext = ngx_queue_data(q, ngx_goim_rpc_call_ext_t, queue);

        ngx_memzero(&res, sizeof(ngx_goim_rpc_result_t));
        res.status = ext->status;
        res.message.data = (u_char *) ext->message;
        res.message.len = ngx_strlen(ext->message);

        ngx_goim_rpc_call_finish(&ext->call, &res);
    }
}


static void
ngx_goim_rpc_peer_fail(ngx_goim_rpc_peer_t *peer, const char *reason)
{
    ngx_rbtree_node_t        *node;
    ngx_goim_rpc_call_ext_t  *ext;

    if (peer->chan.connection) {
        ngx_close_connection(peer->chan.connection);
        peer->chan.connection = NULL;
    }

    peer->connected = 0;
    peer->timeouts = 0;

    if (peer->auth) {
        ngx_free(peer->auth);
        peer->auth = NULL;
    }

    ngx_goim_rpc_buf_free(&peer->chan.in);
    ngx_goim_rpc_buf_free(&peer->chan.out);

    while (peer->pending.root != peer->pending.sentinel) {
        node = ngx_rbtree_min(peer->pending.root, peer->pending.sentinel);
        ngx_rbtree_delete(&peer->pending, node);

        ext = (ngx_goim_rpc_call_ext_t *) node;
        ngx_goim_rpc_fail_later(peer, ext, reason);
    }
}


/*
 * Gives up on a link that is open but not served: its calls fail now, and
 * the ones made during the next retry ms too, rather than each waiting
 * its timeout; the first call after that reconnects.
 */

static void
ngx_goim_rpc_peer_reset(ngx_goim_rpc_peer_t *peer, const char *reason)
{
    ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                  "goim rpc: closing the connection to %V (%s), "
                  "calls fail for %M ms, then it is retried",
                  &peer->upstream->name, reason, peer->upstream->retry);

    ngx_goim_rpc_peer_fail(peer, reason);

    peer->down = 1;
    peer->retry_at = ngx_current_msec + peer->upstream->retry;
}


/*
 * For exit_process: the connection goes and every call still pending is
 * freed; no callback runs, their owners are going away too.
 */

void
ngx_goim_rpc_peer_close(ngx_goim_rpc_peer_t *peer)
{
    ngx_queue_t              *q;
    ngx_goim_rpc_call_ext_t  *ext;

    ngx_goim_rpc_peer_fail(peer, "worker is exiting");

    if (peer->fail_event.posted) {
        ngx_delete_posted_event(&peer->fail_event);
    }

    while (!ngx_queue_empty(&peer->failed)) {
        q = ngx_queue_head(&peer->failed);
        ext = ngx_queue_data(q, ngx_goim_rpc_call_ext_t, queue);

        ngx_goim_rpc_cancel(&ext->call);
    }
}


ngx_goim_rpc_call_t *
ngx_goim_rpc_call(ngx_goim_rpc_peer_t *peer, int32_t method,
    const ProtobufCMessage *req, ngx_msec_t timeout,
    ngx_goim_rpc_done_pt done, void *data)
{
    u_char                   *p;
    size_t                    size;
    ngx_goim_rpc_call_t      *call;
    ngx_goim_rpc_call_ext_t  *ext;

    ext = ngx_calloc(sizeof(ngx_goim_rpc_call_ext_t), peer->chan.log);
    if (ext == NULL) {
        return NULL;
    }

    call = &ext->call;
    call->peer = peer;
    call->method = method;
    call->done = done;
    call->data = data;

    if (peer->down) {
        if ((ngx_msec_int_t) (peer->retry_at - ngx_current_msec) > 0) {
            ngx_goim_rpc_fail_later(peer, ext, "upstream is down");
            return call;
        }

        peer->down = 0;

        ngx_log_error(NGX_LOG_NOTICE, peer->chan.log, 0,
                      "goim rpc: reconnecting to %V", &peer->upstream->name);
    }

    if (peer->chan.connection == NULL
        && ngx_goim_rpc_peer_connect(peer) != NGX_OK)
    {
        ngx_goim_rpc_fail_later(peer, ext, "upstream unreachable");
        return call;
    }

    size = goim_rpc_frame_size(req);

    if (size > GOIM_HEADER_LEN + peer->chan.max_frame) {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                      "goim rpc: %uz bytes request too large", size);
        ext->status = GOIM__ERROR_CODE__ERROR_TOO_LARGE;
        ext->message = "request too large";
        ngx_queue_insert_tail(&peer->failed, &ext->queue);
        ngx_post_event(&peer->fail_event, &ngx_posted_events);
        return call;
    }

    p = ngx_goim_rpc_chan_frame(&peer->chan, size);
    if (p == NULL) {
        ngx_free(ext);
        return NULL;
    }

    peer->seq = (peer->seq + 1) & 0x7fffffff;
    call->node.key = (ngx_rbtree_key_t) peer->seq;

    goim_rpc_frame_write(p, method, peer->seq, req);

    ngx_rbtree_insert(&peer->pending, &call->node);

    call->timeout.handler = ngx_goim_rpc_call_timeout;
    call->timeout.data = call;
    call->timeout.log = peer->chan.log;
    ngx_add_timer(&call->timeout, timeout);

    /*
     * The write is posted, not done here: calls made in one event loop
     * iteration leave in one send(), and a failing socket is dealt with
     * outside the caller's stack.
     */
    if (peer->connected && !peer->chan.connection->write->posted) {
        ngx_post_event(peer->chan.connection->write, &ngx_posted_events);
    }

    /* this call fails with the others if it is the one over the bound */
    (void) ngx_goim_rpc_peer_check_backlog(peer);

    return call;
}


/* server side */

ngx_goim_rpc_session_t *
ngx_goim_rpc_session_start(ngx_goim_rpc_t *rpc, ngx_connection_t *c,
    ngx_goim_rpc_handler_t *handlers, ngx_goim_rpc_session_conf_t *conf,
    void (*on_close)(void *data), void *data)
{
    ngx_goim_rpc_session_t  *s;
    ngx_pool_cleanup_t      *cln;

    s = ngx_pcalloc(c->pool, sizeof(ngx_goim_rpc_session_t));
    if (s == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = (ngx_pool_cleanup_pt) ngx_goim_rpc_session_close;
    cln->data = s;

    s->chan.connection = c;
    s->chan.log = c->log;
    s->chan.max_frame = conf->max_frame;
    s->chan.frame_timeout = conf->frame_timeout;
    s->chan.backlog = conf->backlog;
    s->chan.batch = conf->batch;
    s->bad_input = conf->bad_input;
    s->rpc = rpc;
    s->handlers = handlers;
    s->on_close = on_close;
    s->data = data;
    ngx_queue_init(&s->requests);

    ngx_queue_insert_tail(&rpc->sessions, &s->queue);

    c->data = s;
    c->read->handler = ngx_goim_rpc_session_read_handler;
    c->write->handler = ngx_goim_rpc_session_write_handler;

    /* RPC links are long-lived: do not let them hold a quitting worker */
    c->idle = 1;

    if (rpc->secret) {
        s->auth = ngx_goim_rpc_auth_create(rpc, 0, c->log);
        if (s->auth == NULL) {
            return NULL;
        }

        c->read->handler = ngx_goim_rpc_session_auth_handler;
        c->write->handler = ngx_goim_rpc_session_auth_handler;

        ngx_add_timer(c->read, rpc->auth_timeout);

        ngx_goim_rpc_session_auth_handler(c->read);

        return s;
    }

    ngx_goim_rpc_session_read_handler(c->read);

    return s;
}


void
ngx_goim_rpc_session_conf_init(ngx_goim_rpc_session_conf_t *conf)
{
    conf->max_frame = NGX_GOIM_RPC_MAX_FRAME;
    conf->frame_timeout = NGX_GOIM_RPC_FRAME_TIMEOUT;
    conf->backlog = NGX_GOIM_RPC_BACKLOG;
    conf->batch = NGX_GOIM_RPC_BATCH;
    conf->bad_input = NULL;
}


ngx_int_t
ngx_goim_rpc_session_conf_param(ngx_conf_t *cf, ngx_str_t *value,
    ngx_goim_rpc_session_conf_t *conf)
{
    ssize_t     size;
    ngx_int_t   n;
    ngx_str_t   v;
    ngx_msec_t  ms;

    if (ngx_strncmp(value->data, "max_frame=", 10) == 0) {
        v.data = value->data + 10;
        v.len = value->len - 10;

        size = ngx_parse_size(&v);

        if (size < 1024 || size > 1024 * 1024 * 1024) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": max_frame must be 1k to 1g", value);
            return NGX_ERROR;
        }

        conf->max_frame = size;
        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "frame_timeout=", 14) == 0) {
        v.data = value->data + 14;
        v.len = value->len - 14;

        ms = ngx_parse_time(&v, 0);

        if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": frame_timeout must be a time "
                               "above 0", value);
            return NGX_ERROR;
        }

        conf->frame_timeout = ms;
        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "backlog=", 8) == 0) {
        v.data = value->data + 8;
        v.len = value->len - 8;

        size = ngx_parse_size(&v);

        if (size < 4096 || size > 1024 * 1024 * 1024) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": backlog must be 4k to 1g", value);
            return NGX_ERROR;
        }

        conf->backlog = size;
        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "batch=", 6) == 0) {
        n = ngx_atoi(value->data + 6, value->len - 6);

        if (n < 1 || n > 65536) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": batch must be 1 to 65536", value);
            return NGX_ERROR;
        }

        conf->batch = n;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


void *
ngx_goim_rpc_session_data(ngx_goim_rpc_session_t *s)
{
    return s->data;
}


static void
ngx_goim_rpc_session_finalize(ngx_goim_rpc_session_t *s)
{
    if (s->closed) {
        return;
    }

    ngx_goim_rpc_session_close(s);

    if (s->chan.bad && s->bad_input) {
        s->bad_input(s->rpc->ctx);
    }

    s->on_close(s->data);
}


static void
ngx_goim_rpc_session_read_handler(ngx_event_t *rev)
{
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_goim_rpc_session_t  *s;

    c = rev->data;
    s = c->data;

    if (c->close) {
        ngx_goim_rpc_session_finalize(s);
        return;
    }

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, s->chan.log, 0,
                      "goim rpc: closing %V: a frame was not complete "
                      "within %M ms (frame_timeout)",
                      &c->addr_text, s->chan.frame_timeout);
        s->chan.bad = 1;
        ngx_goim_rpc_session_finalize(s);
        return;
    }

    if (s->paused) {
        /* the write handler resumes once the replies went out */
        return;
    }

    rc = ngx_goim_rpc_chan_read(&s->chan, ngx_goim_rpc_session_frame, s);

    switch (rc) {

    case NGX_AGAIN:
        if (ngx_handle_read_event(rev, 0) != NGX_OK) {
            ngx_goim_rpc_session_finalize(s);
        }

        return;

    case NGX_BUSY:
        /*
         * Let what the frames queued (client writes, posted) go out before
         * the next ones: a burst of pushes for one client would otherwise
         * all land in its queue at once and overflow it.
         */
        ngx_post_event(rev, &ngx_posted_next_events);
        break;

    case NGX_DECLINED:
        ngx_log_debug2(NGX_LOG_DEBUG_STREAM, s->chan.log, 0,
                       "goim rpc: %V reads no replies (%uz bytes unsent), "
                       "reading from it stops",
                       &c->addr_text, s->chan.out.len - s->chan.out.pos);
        s->paused = 1;
        break;

    default:
        ngx_goim_rpc_session_finalize(s);
        return;
    }

    /* the socket is left unread: a level-triggered poller must not spin */
    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_goim_rpc_session_finalize(s);
    }
}


static void
ngx_goim_rpc_session_write_handler(ngx_event_t *wev)
{
    ngx_event_t             *rev;
    ngx_connection_t        *c;
    ngx_goim_rpc_session_t  *s;

    c = wev->data;
    s = c->data;

    if (s->failed || ngx_goim_rpc_chan_flush(&s->chan) == NGX_ERROR) {
        ngx_goim_rpc_session_finalize(s);
        return;
    }

    if (s->paused && s->chan.out.len - s->chan.out.pos <= s->chan.backlog) {
        s->paused = 0;

        rev = c->read;

        if (!rev->posted) {
            ngx_post_event(rev, &ngx_posted_events);
        }
    }
}


static ngx_int_t
ngx_goim_rpc_session_frame(void *owner, goim_packet_t *pkt)
{
    int32_t                  method;
    ngx_goim_rpc_handler_t  *h;
    ngx_goim_rpc_session_t  *s;
    ngx_goim_rpc_request_t  *r;

    s = owner;
    method = pkt->header.op;

    if (goim_rpc_is_reply(method)) {
        ngx_log_error(NGX_LOG_ERR, s->chan.log, 0,
                      "goim rpc: client %V sent a reply frame (op %D)",
                      &s->chan.connection->addr_text, method);
        s->chan.bad = 1;
        return NGX_ERROR;
    }

    for (h = s->handlers; h->handler; h++) {
        if (h->method == method) {
            break;
        }
    }

    if (h->handler == NULL) {
        ngx_log_error(NGX_LOG_ERR, s->chan.log, 0,
                      "goim rpc: client %V called unknown method %D",
                      &s->chan.connection->addr_text, method);
        s->chan.bad = 1;
        return NGX_ERROR;
    }

    r = ngx_calloc(sizeof(ngx_goim_rpc_request_t), s->chan.log);
    if (r == NULL) {
        return NGX_ERROR;
    }

    r->session = s;
    r->ctx = s->rpc->ctx;
    r->method = method;
    r->seq = pkt->header.seq;
    r->msg = goim_rpc_unpack(method, 0, NULL, pkt->body, pkt->body_len);

    if (r->msg == NULL) {
        ngx_log_error(NGX_LOG_ERR, s->chan.log, 0,
                      "goim rpc: malformed %s request from %V",
                      goim_rpc_method(method)->name,
                      &s->chan.connection->addr_text);
        ngx_free(r);
        s->chan.bad = 1;
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&s->requests, &r->queue);

    h->handler(r);

    return NGX_OK;
}


static void
ngx_goim_rpc_request_free(ngx_goim_rpc_request_t *r)
{
    ngx_queue_remove(&r->queue);

    protobuf_c_message_free_unpacked(r->msg, NULL);

    ngx_free(r);
}


static void
ngx_goim_rpc_session_send(ngx_goim_rpc_request_t *r, u_char *frame)
{
    ngx_event_t             *wev;
    ngx_goim_rpc_session_t  *s;

    s = r->session;

    ngx_goim_rpc_request_free(r);

    if (frame == NULL) {
        s->failed = 1;
    }

    /* as for calls: replies are flushed together, outside the handler */
    wev = s->chan.connection->write;

    if (!wev->posted) {
        ngx_post_event(wev, &ngx_posted_events);
    }
}


void
ngx_goim_rpc_reply(ngx_goim_rpc_request_t *r, const ProtobufCMessage *reply)
{
    u_char  *p;

    p = ngx_goim_rpc_chan_frame(&r->session->chan,
                                goim_rpc_frame_size(reply));
    if (p) {
        goim_rpc_frame_write(p, r->method | GOIM_RPC_REPLY, r->seq, reply);
    }

    ngx_goim_rpc_session_send(r, p);
}


void
ngx_goim_rpc_reply_error(ngx_goim_rpc_request_t *r, Goim__ErrorCode code,
    const char *message)
{
    u_char  *p;

    p = ngx_goim_rpc_chan_frame(&r->session->chan,
                                goim_rpc_error_size(message));
    if (p) {
        goim_rpc_error_write(p, r->method, r->seq, code, message);
    }

    ngx_goim_rpc_session_send(r, p);
}


static void
ngx_goim_rpc_session_close(ngx_goim_rpc_session_t *s)
{
    ngx_queue_t             *q;
    ngx_goim_rpc_request_t  *r;

    if (s->closed) {
        return;
    }

    s->closed = 1;
    ngx_queue_remove(&s->queue);

    while (!ngx_queue_empty(&s->requests)) {
        q = ngx_queue_head(&s->requests);
        r = ngx_queue_data(q, ngx_goim_rpc_request_t, queue);

        if (r->abort) {
            r->abort(r);
        }

        ngx_goim_rpc_request_free(r);
    }

    ngx_goim_rpc_buf_free(&s->chan.in);
    ngx_goim_rpc_buf_free(&s->chan.out);

    if (s->auth) {
        ngx_free(s->auth);
        s->auth = NULL;
    }
}


void
ngx_goim_rpc_sessions_finalize(ngx_goim_rpc_t *rpc)
{
    ngx_queue_t             *q;
    ngx_goim_rpc_session_t  *s;

    if (rpc->sessions.next == NULL) {
        return;
    }

    while (!ngx_queue_empty(&rpc->sessions)) {
        q = ngx_queue_head(&rpc->sessions);
        s = ngx_queue_data(q, ngx_goim_rpc_session_t, queue);

        ngx_goim_rpc_session_finalize(s);
    }
}


/* authentication of the RPC plane (goim_auth.h) */

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

    if (rpc->secret && goim_auth_warmup(rpc->secret) != 0) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "goim rpc: no random bytes for the handshake's nonces");
    }
}


char *
ngx_goim_rpc_set_secret_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t             path, *value;
    goim_auth_secret_t   *s, **secret;
    char                  err[NGX_MAX_PATH + 128];

    secret = (goim_auth_secret_t **) ((char *) conf + cmd->offset);

    if (*secret) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    s = ngx_pcalloc(cf->pool, sizeof(goim_auth_secret_t));
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    if (goim_auth_secret_load(s, (char *) path.data, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    *secret = s;

    return NGX_CONF_OK;
}


static ngx_goim_rpc_auth_t *
ngx_goim_rpc_auth_create(ngx_goim_rpc_t *rpc, int client, ngx_log_t *log)
{
    ngx_goim_rpc_auth_t  *a;

    a = ngx_calloc(sizeof(ngx_goim_rpc_auth_t), log);
    if (a == NULL) {
        return NULL;
    }

    goim_auth_init(&a->auth, rpc->secret, client);

    if (client) {
        if (goim_auth_hello(&a->auth, a->out) != GOIM_AUTH_NEXT) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "goim rpc: no random bytes for a nonce");
            ngx_free(a);
            return NULL;
        }

        a->out_len = GOIM_AUTH_HELLO_LEN;
    }

    return a;
}


/*
 * Moves the handshake on: sends what it has to send, reads the next
 * frame, never more.  NGX_DONE: authenticated and everything sent;
 * NGX_AGAIN: waiting for the socket; NGX_ERROR: refused or the connection
 * failed, a->error says why; NGX_DECLINED: the peer closed the connection
 * before sending anything (a port probe).
 */

static ngx_int_t
ngx_goim_rpc_auth_step(ngx_connection_t *c, ngx_goim_rpc_auth_t *a)
{
    size_t          want, outlen;
    ssize_t         n;
    goim_auth_rc_t  rc;

    for ( ;; ) {

        while (a->out_pos < a->out_len) {
            n = c->send(c, a->out + a->out_pos, a->out_len - a->out_pos);

            if (n == NGX_AGAIN) {
                return NGX_AGAIN;
            }

            if (n == NGX_ERROR) {
                a->error = "write failed";
                return NGX_ERROR;
            }

            a->out_pos += n;
        }

        if (goim_auth_done(&a->auth)) {
            return NGX_DONE;
        }

        want = goim_auth_expect(&a->auth);

        n = c->recv(c, a->in + a->in_len, want - a->in_len);

        if (n == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (n == NGX_ERROR) {
            a->error = "read failed";
            return NGX_ERROR;
        }

        if (n == 0 && a->in_len == 0 && !a->auth.client
            && goim_auth_idle(&a->auth))
        {
            return NGX_DECLINED;
        }

        if (n == 0) {
            a->error = "the peer closed the connection during the handshake "
                       "(no RPC secret, or another one, on its side?)";
            return NGX_ERROR;
        }

        a->in_len += n;

        rc = goim_auth_input(&a->auth, a->in, a->in_len, a->out, &outlen);

        if (rc == GOIM_AUTH_AGAIN) {
            continue;
        }

        if (rc < 0) {
            a->error = goim_auth_strerror(rc);
            return NGX_ERROR;
        }

        a->in_len = 0;
        a->out_pos = 0;
        a->out_len = outlen;
    }
}


static void
ngx_goim_rpc_peer_auth_start(ngx_goim_rpc_peer_t *peer)
{
    ngx_connection_t  *c;

    c = peer->chan.connection;

    peer->auth = ngx_goim_rpc_auth_create(peer->rpc, 1, peer->chan.log);
    if (peer->auth == NULL) {
        ngx_goim_rpc_peer_fail(peer, "upstream authentication failed");
        return;
    }

    c->read->handler = ngx_goim_rpc_peer_auth_handler;
    c->write->handler = ngx_goim_rpc_peer_auth_handler;

    /*
     * The proof and the first calls leave in two writes: without this the
     * second waits for the callee's delayed ACK of the first (40 ms).
     */
    if (ngx_tcp_nodelay(c) != NGX_OK) {
        ngx_goim_rpc_peer_fail(peer, "upstream setsockopt failed");
        return;
    }

    ngx_add_timer(c->read, peer->rpc->auth_timeout);

    ngx_goim_rpc_peer_auth_handler(c->write);
}


static void
ngx_goim_rpc_peer_auth_handler(ngx_event_t *ev)
{
    ngx_int_t             rc;
    ngx_connection_t     *c;
    ngx_goim_rpc_peer_t  *peer;

    c = ev->data;
    peer = c->data;

    if (c->close) {
        ngx_goim_rpc_peer_fail(peer, "worker is shutting down");
        return;
    }

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                      "goim rpc: %V did not authenticate within %M ms",
                      &peer->upstream->name, peer->rpc->auth_timeout);
        ngx_goim_rpc_peer_fail(peer, "upstream authentication timed out");
        return;
    }

    rc = ngx_goim_rpc_auth_step(c, peer->auth);

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                      "goim rpc: authentication with %V failed: %s",
                      &peer->upstream->name, peer->auth->error);
        ngx_goim_rpc_peer_fail(peer, "upstream authentication failed");
        return;
    }

    if (rc == NGX_AGAIN) {
        if (ngx_handle_read_event(c->read, 0) != NGX_OK
            || ngx_handle_write_event(c->write, 0) != NGX_OK)
        {
            ngx_goim_rpc_peer_fail(peer, "upstream event failed");
        }

        return;
    }

    /* authenticated: the calls that waited leave now */

    ngx_free(peer->auth);
    peer->auth = NULL;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, peer->chan.log, 0,
                   "goim rpc: connected to %V, authenticated",
                   &peer->upstream->name);

    c->read->handler = ngx_goim_rpc_peer_read_handler;
    c->write->handler = ngx_goim_rpc_peer_write_handler;
    peer->connected = 1;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_goim_rpc_peer_fail(peer, "upstream read event failed");
        return;
    }

    ngx_goim_rpc_peer_write_handler(c->write);
}


static void
ngx_goim_rpc_session_auth_handler(ngx_event_t *ev)
{
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_goim_rpc_session_t  *s;

    c = ev->data;
    s = c->data;

    if (c->close) {
        ngx_goim_rpc_session_finalize(s);
        return;
    }

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "goim rpc: refusing %V: no handshake within %M ms",
                      &c->addr_text, s->rpc->auth_timeout);
        goto refused;
    }

    rc = ngx_goim_rpc_auth_step(c, s->auth);

    if (rc == NGX_DECLINED) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                       "goim rpc: %V closed the connection before the "
                       "handshake", &c->addr_text);
        ngx_goim_rpc_session_finalize(s);
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "goim rpc: refusing %V: authentication failed: %s",
                      &c->addr_text, s->auth->error);
        goto refused;
    }

    if (rc == NGX_AGAIN) {
        if (ngx_handle_read_event(c->read, 0) != NGX_OK
            || ngx_handle_write_event(c->write, 0) != NGX_OK)
        {
            ngx_goim_rpc_session_finalize(s);
        }

        return;
    }

    ngx_free(s->auth);
    s->auth = NULL;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                   "goim rpc: %V authenticated", &c->addr_text);

    c->read->handler = ngx_goim_rpc_session_read_handler;
    c->write->handler = ngx_goim_rpc_session_write_handler;

    /* requests sent right after the proof are in the socket already */
    ngx_goim_rpc_session_read_handler(c->read);

    return;

refused:

    if (s->rpc->auth_refused) {
        s->rpc->auth_refused(s->rpc->ctx);
    }

    ngx_goim_rpc_session_finalize(s);
}
