
/*
 * Copyright (C) ngx_goim authors
 */


/*
 * The client side of the RPC layer: a peer is one upstream's link, its
 * calls wait in a tree by sequence number until answered, timed out or
 * failed with the link.  Local calls (ngx_goim_rpc_local_call()) are the
 * same calls answered by the caller itself, from a list it keeps.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_goim_rpc_internal.h"


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
static void ngx_goim_rpc_peer_auth_failed(void *owner, const char *reason);
static void ngx_goim_rpc_peer_auth_ready(void *owner);


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
            ngx_goim_rpc_auth_peer_start(peer, ngx_goim_rpc_peer_auth_failed,
                                         ngx_goim_rpc_peer_auth_ready);
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


static void
ngx_goim_rpc_peer_auth_failed(void *owner, const char *reason)
{
    ngx_goim_rpc_peer_fail(owner, reason);
}


/* authenticated: the calls that waited leave now */

static void
ngx_goim_rpc_peer_auth_ready(void *owner)
{
    ngx_connection_t     *c;
    ngx_goim_rpc_peer_t  *peer;

    peer = owner;
    c = peer->chan.connection;

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
        if (peer->pending.root == peer->pending.sentinel) {
            ngx_goim_rpc_peer_fail(peer, "worker is shutting down");
            return;
        }

        /*
         * The worker quits with calls under way: their answers come on
         * this link (a failed push the upstream did serve would be sent
         * again); it goes with the worker.
         */
        c->close = 0;
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

    ngx_goim_rpc_count(peer->rpc, link_resets);

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

