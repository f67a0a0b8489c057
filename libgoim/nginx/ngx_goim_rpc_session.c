
/*
 * Copyright (C) ngx_goim authors
 */


/*
 * The server side of the RPC layer: a session serves one accepted
 * connection, each request frame goes to its method's handler and waits
 * in s->requests until the handler replies.  Also the listener parameters
 * (max_frame=, frame_timeout=, backlog=, batch=) a session runs with.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_rpc_internal.h"


static void ngx_goim_rpc_session_finalize(ngx_goim_rpc_session_t *s);
static void ngx_goim_rpc_session_auth_failed(void *owner, const char *reason);
static void ngx_goim_rpc_session_auth_ready(void *owner);
static void ngx_goim_rpc_session_read_handler(ngx_event_t *rev);
static void ngx_goim_rpc_session_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_goim_rpc_session_frame(void *owner, goim_packet_t *pkt);
static void ngx_goim_rpc_session_close(ngx_goim_rpc_session_t *s);
static void ngx_goim_rpc_request_free(ngx_goim_rpc_request_t *r);
static ngx_int_t ngx_goim_rpc_session_freeze(ngx_goim_rpc_session_t *s);
static ngx_goim_rpc_session_t *ngx_goim_rpc_session_create(
    ngx_goim_rpc_t *rpc, ngx_connection_t *c,
    ngx_goim_rpc_handler_t *handlers, ngx_goim_rpc_session_conf_t *conf,
    void (*on_close)(void *data), void *data);


/* a session on c, in rpc's list, closed with c's pool; c->data is it */

static ngx_goim_rpc_session_t *
ngx_goim_rpc_session_create(ngx_goim_rpc_t *rpc, ngx_connection_t *c,
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

    return s;
}


ngx_goim_rpc_session_t *
ngx_goim_rpc_session_start(ngx_goim_rpc_t *rpc, ngx_connection_t *c,
    ngx_goim_rpc_handler_t *handlers, ngx_goim_rpc_session_conf_t *conf,
    void (*on_close)(void *data), void *data)
{
    ngx_goim_rpc_session_t  *s;

    s = ngx_goim_rpc_session_create(rpc, c, handlers, conf, on_close, data);
    if (s == NULL) {
        return NULL;
    }

    c->read->handler = ngx_goim_rpc_session_read_handler;
    c->write->handler = ngx_goim_rpc_session_write_handler;

    /* RPC links are long-lived: do not let them hold a quitting worker */
    c->idle = 1;

    if (rpc->secret) {
        if (ngx_goim_rpc_auth_session_start(s,
                                            ngx_goim_rpc_session_auth_failed,
                                            ngx_goim_rpc_session_auth_ready)
            != NGX_OK)
        {
            return NULL;
        }

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
ngx_goim_rpc_session_auth_failed(void *owner, const char *reason)
{
    ngx_goim_rpc_session_finalize(owner);
}


static void
ngx_goim_rpc_session_auth_ready(void *owner)
{
    ngx_connection_t        *c;
    ngx_goim_rpc_session_t  *s;

    s = owner;
    c = s->chan.connection;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                   "goim rpc: %V authenticated", &c->addr_text);

    c->read->handler = ngx_goim_rpc_session_read_handler;
    c->write->handler = ngx_goim_rpc_session_write_handler;

    /* requests sent right after the proof are in the socket already */
    ngx_goim_rpc_session_read_handler(c->read);
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
        if (!c->error && ngx_goim_rpc_session_freeze(s) == NGX_OK) {
            /* a worker that hands its sessions on keeps them meanwhile */
            c->close = 0;
            return;
        }

        ngx_goim_rpc_session_finalize(s);
        return;
    }

    if (s->frozen) {
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
        ngx_goim_rpc_count(s->rpc, sessions_paused);
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

    /* a handler for a method libgoim's table lacks: our bug, not the peer's */
    if (h->handler == NULL || goim_rpc_method(method) == NULL) {
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


/*
 * The worker quits: a session its module will hand on stops reading
 * here, before the next request, and keeps writing the replies it owes.
 * One still in its handshake has served nothing and just closes: its
 * client reconnects.
 */

static ngx_int_t
ngx_goim_rpc_session_freeze(ngx_goim_rpc_session_t *s)
{
    ngx_event_t  *rev;

    if (s->frozen) {
        return NGX_OK;
    }

    if (s->closed || s->auth || s->rpc->session_quit == NULL) {
        return NGX_DECLINED;
    }

    s->frozen = 1;

    if (s->rpc->session_quit(s->rpc->ctx, s) != NGX_OK) {
        s->frozen = 0;
        return NGX_DECLINED;
    }

    /* a frame half read waits in the buffer: no clock runs on it now */
    rev = s->chan.connection->read;

    if (rev->timer_set) {
        ngx_del_timer(rev);
    }

    return NGX_OK;
}


ngx_int_t
ngx_goim_rpc_session_exportable(ngx_goim_rpc_session_t *s)
{
    if (s->closed || s->failed) {
        return NGX_DECLINED;
    }

    if (s->auth || !ngx_queue_empty(&s->requests)) {
        return NGX_AGAIN;
    }

    return NGX_OK;
}


void
ngx_goim_rpc_session_export(ngx_goim_rpc_session_t *s, ngx_str_t *in,
    ngx_str_t *out)
{
    in->data = s->chan.in.data + s->chan.in.pos;
    in->len = s->chan.in.len - s->chan.in.pos;
    out->data = s->chan.out.data + s->chan.out.pos;
    out->len = s->chan.out.len - s->chan.out.pos;
}


void
ngx_goim_rpc_session_release(ngx_goim_rpc_session_t *s)
{
    /* no bad-input count, no byte written: the socket is not ours now */
    s->chan.bad = 0;

    ngx_goim_rpc_session_finalize(s);
}


ngx_connection_t *
ngx_goim_rpc_session_connection(ngx_goim_rpc_session_t *s)
{
    return s->chan.connection;
}


/*
 * A session another process exported: its bytes are put back where that
 * one had them, and it goes on reading (or, frozen, waits to be handed
 * on again: a worker that quits while it adopts).
 */

ngx_goim_rpc_session_t *
ngx_goim_rpc_session_adopt(ngx_goim_rpc_t *rpc, ngx_connection_t *c,
    ngx_goim_rpc_handler_t *handlers, ngx_goim_rpc_session_conf_t *conf,
    void (*on_close)(void *data), void *data, ngx_str_t *in, ngx_str_t *out,
    ngx_uint_t frozen)
{
    ngx_goim_rpc_session_t  *s;

    s = ngx_goim_rpc_session_create(rpc, c, handlers, conf, on_close, data);
    if (s == NULL) {
        return NULL;
    }

    s->frozen = frozen ? 1 : 0;

    if (in->len) {
        if (ngx_goim_rpc_buf_reserve(&s->chan.in, in->len, c->log)
            != NGX_OK)
        {
            return NULL;
        }

        ngx_memcpy(s->chan.in.data, in->data, in->len);
        s->chan.in.len = in->len;
        s->chan.frame_done = 1;
    }

    if (out->len) {
        if (ngx_goim_rpc_buf_reserve(&s->chan.out, out->len, c->log)
            != NGX_OK)
        {
            return NULL;
        }

        ngx_memcpy(s->chan.out.data, out->data, out->len);
        s->chan.out.len = out->len;
    }

    /* its handlers are set by resume(): nothing is read before */
    c->idle = 1;

    return s;
}


/* an adopted session starts: what it owes first, then what is waiting */

void
ngx_goim_rpc_session_resume(ngx_goim_rpc_session_t *s)
{
    ngx_connection_t  *c;

    c = s->chan.connection;

    c->read->handler = ngx_goim_rpc_session_read_handler;
    c->write->handler = ngx_goim_rpc_session_write_handler;

    c->write->ready = 1;
    c->read->ready = 1;
    c->read->available = -1;

    ngx_goim_rpc_session_write_handler(c->write);

    if (s->closed) {
        return;
    }

    if (s->frozen) {
        /* reads nothing, but its socket is watched for the peer's close */
        if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
            ngx_goim_rpc_session_finalize(s);
        }

        return;
    }

    ngx_goim_rpc_session_read_handler(c->read);
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

