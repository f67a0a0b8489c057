
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


static void ngx_goim_channel_read_handler(ngx_event_t *rev);
static void ngx_goim_channel_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_goim_channel_process(ngx_goim_channel_t *ch);
static ngx_int_t ngx_goim_channel_packet(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
static ngx_int_t ngx_goim_channel_auth(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
static void ngx_goim_channel_auth_done(void *data,
    ngx_goim_rpc_result_t *res);
static ngx_int_t ngx_goim_channel_register(ngx_goim_channel_t *ch,
    Goim__ConnectReply *reply);
static ngx_int_t ngx_goim_channel_reply(ngx_goim_channel_t *ch,
    goim_header_t *h, int32_t op, const void *body, size_t len);
static ngx_int_t ngx_goim_channel_enqueue(ngx_goim_channel_t *ch,
    ngx_goim_comet_msg_t *msg, size_t offset);
static void ngx_goim_channel_close(ngx_goim_channel_t *ch,
    const char *reason);
static void ngx_goim_channel_cleanup(void *data);
static void ngx_goim_channel_rpc_logged(void *data,
    ngx_goim_rpc_result_t *res);


ngx_goim_channel_t *
ngx_goim_channel_create(ngx_connection_t *c, ngx_goim_channel_conf_t *conf,
    void (*finalize)(ngx_goim_channel_t *ch), void *owner)
{
    ngx_goim_channel_t  *ch;
    ngx_pool_cleanup_t  *cln;

    ch = ngx_pcalloc(c->pool, sizeof(ngx_goim_channel_t));
    if (ch == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(c->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_goim_channel_cleanup;
    cln->data = ch;

    ch->connection = c;
    ch->ccf = ngx_goim_comet_get_conf(ngx_cycle);
    ch->conf = conf;
    ch->finalize = finalize;
    ch->owner = owner;
    ch->out_tail = &ch->out;

    return ch;
}


void
ngx_goim_channel_start(ngx_goim_channel_t *ch)
{
    ngx_connection_t  *c;

    c = ch->connection;

    if (ch->ccf->logic_peer == NULL) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "goim comet: no goim_comet_logic configured");
        ngx_goim_channel_close(ch, NULL);
        return;
    }

    /* the transport's finalize() keeps its owner: c->data is ours now */
    c->data = ch;
    c->read->handler = ngx_goim_channel_read_handler;
    c->write->handler = ngx_goim_channel_write_handler;

    /* the handshake deadline covers everything up to a successful auth */
    ngx_add_timer(c->read, ch->conf->handshake_timeout);

    ngx_goim_channel_read_handler(c->read);
}


static void
ngx_goim_channel_read_handler(ngx_event_t *rev)
{
    size_t               cap;
    ssize_t              n;
    ngx_connection_t    *c;
    ngx_goim_channel_t  *ch;

    c = rev->data;
    ch = ngx_goim_channel_from_connection(c);

    if (rev->timedout) {
        ngx_goim_channel_close(ch, ch->state == NGX_GOIM_CHANNEL_ONLINE
                                   ? "heartbeat timed out"
                                   : "handshake timed out");
        return;
    }

    if (c->close) {
        ngx_goim_channel_close(ch, "worker is shutting down");
        return;
    }

    if (ch->state == NGX_GOIM_CHANNEL_AUTHING) {
        /* input waits in the socket until logic has answered */
        return;
    }

    cap = GOIM_HEADER_LEN + ch->conf->max_body;

    for ( ;; ) {
        if (ch->in == NULL) {
            ch->in = ngx_alloc(cap, c->log);
            if (ch->in == NULL) {
                ngx_goim_channel_close(ch, "out of memory");
                return;
            }
        }

        n = c->recv(c, ch->in + ch->in_len, cap - ch->in_len);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_goim_channel_close(ch, n ? "read failed" : NULL);
            return;
        }

        ch->in_len += n;

        if (ngx_goim_channel_process(ch) != NGX_OK) {
            return;
        }

        if (ch->state == NGX_GOIM_CHANNEL_AUTHING) {
            return;
        }
    }

    /* an idle connection keeps no read buffer */
    if (ch->in_len == 0 && ch->in) {
        ngx_free(ch->in);
        ch->in = NULL;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_goim_channel_close(ch, "read event failed");
    }
}


/* handles every whole packet in the input buffer; NGX_OK: go on reading */

static ngx_int_t
ngx_goim_channel_process(ngx_goim_channel_t *ch)
{
    size_t         pos, consumed;
    goim_rc_t      rc;
    ngx_int_t      rv;
    goim_packet_t  pkt;

    pos = 0;
    rv = NGX_OK;

    while (ch->state != NGX_GOIM_CHANNEL_AUTHING) {
        rc = goim_packet_parse(ch->in + pos, ch->in_len - pos,
                               ch->conf->max_body, &pkt, &consumed);

        if (rc == GOIM_AGAIN) {
            break;
        }

        if (rc != GOIM_OK) {
            ngx_goim_channel_close(ch, goim_strerror(rc));
            return NGX_ERROR;
        }

        pos += consumed;

        rv = ngx_goim_channel_packet(ch, &pkt);
        if (rv != NGX_OK) {
            return rv;
        }
    }

    if (pos) {
        ngx_memmove(ch->in, ch->in + pos, ch->in_len - pos);
        ch->in_len -= pos;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_goim_channel_packet(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    int32_t                 op;
    u_char                  online[4];
    ngx_connection_t       *c;
    Goim__ReceiveReq        req = GOIM__RECEIVE_REQ__INIT;
    Goim__Proto             proto = GOIM__PROTO__INIT;

    c = ch->connection;
    op = pkt->header.op;

    if (ch->state == NGX_GOIM_CHANNEL_HANDSHAKE) {
        if (op != GOIM_OP_AUTH) {
            /* goim v2: anything before auth is ignored */
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                           "goim comet: op %D before auth ignored", op);
            return NGX_OK;
        }

        return ngx_goim_channel_auth(ch, pkt);
    }

    switch (op) {

    case GOIM_OP_HEARTBEAT:
        ngx_add_timer(c->read, ch->heartbeat);

        /* the room's online count: rooms come with the comet issue */
        goim_put_be32(online, 0);

        return ngx_goim_channel_reply(ch, &pkt->header,
                                      GOIM_OP_HEARTBEAT_REPLY, online, 4);

    default:
        /* goim v2: hand it to logic, acknowledge with an empty body */
        proto.ver = pkt->header.ver;
        proto.op = op;
        proto.seq = pkt->header.seq;
        proto.body.data = (uint8_t *) pkt->body;
        proto.body.len = pkt->body_len;

        req.mid = ch->mid;
        req.key = (char *) ch->node.str.data;
        req.proto = &proto;

        if (ngx_goim_rpc_call(ch->ccf->logic_peer, GOIM__METHOD__LOGIC_RECEIVE,
                              &req.base, ch->ccf->rpc_timeout,
                              ngx_goim_channel_rpc_logged, NULL)
            == NULL)
        {
            ngx_goim_channel_close(ch, "out of memory");
            return NGX_ERROR;
        }

        return ngx_goim_channel_reply(ch, &pkt->header, op, NULL, 0);
    }
}


static ngx_int_t
ngx_goim_channel_auth(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    u_char              *p;
    ngx_connection_t    *c;
    Goim__ConnectReq     req = GOIM__CONNECT_REQ__INIT;
    u_char               ip[NGX_SOCKADDR_STRLEN + 1];

    c = ch->connection;

    p = ngx_cpymem(ip, c->addr_text.data,
                   ngx_min(c->addr_text.len, NGX_SOCKADDR_STRLEN));
    *p = '\0';

    req.server = (char *) ch->ccf->id.data;
    req.token.data = (uint8_t *) pkt->body;
    req.token.len = pkt->body_len;
    req.client_ip = (char *) ip;
    req.cookie = "";

    /*
     * The auth reply must echo the request's ver and seq; mid is unknown
     * until logic answers, so it holds them meanwhile.
     */
    ch->mid = ((int64_t) (uint16_t) pkt->header.ver << 32)
              | (uint32_t) pkt->header.seq;

    ch->call = ngx_goim_rpc_call(ch->ccf->logic_peer,
                                 GOIM__METHOD__LOGIC_CONNECT, &req.base,
                                 ch->ccf->rpc_timeout,
                                 ngx_goim_channel_auth_done, ch);
    if (ch->call == NULL) {
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    ch->state = NGX_GOIM_CHANNEL_AUTHING;

    return NGX_OK;
}


static void
ngx_goim_channel_auth_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_goim_channel_t *ch = data;

    goim_header_t        h;
    ngx_connection_t    *c;
    Goim__ConnectReply  *reply;

    c = ch->connection;
    ch->call = NULL;

    if (res->status) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "goim comet: auth refused by logic: %V (%i)",
                      &res->message, res->status);
        ngx_goim_channel_close(ch, "auth failed");
        return;
    }

    reply = (Goim__ConnectReply *) res->reply;

    ngx_memzero(&h, sizeof(goim_header_t));
    h.ver = (int16_t) (ch->mid >> 32);
    h.seq = (int32_t) (ch->mid & 0xffffffff);

    if (ngx_goim_channel_register(ch, reply) != NGX_OK) {
        ngx_goim_channel_close(ch, "out of memory");
        return;
    }

    ch->state = NGX_GOIM_CHANNEL_ONLINE;

    ngx_log_debug3(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "goim comet: mid %L key \"%V\" authenticated, "
                   "heartbeat %M", ch->mid, &ch->node.str, ch->heartbeat);

    ngx_add_timer(c->read, ch->heartbeat);

    if (ngx_goim_channel_reply(ch, &h, GOIM_OP_AUTH_REPLY, NULL, 0)
        != NGX_OK)
    {
        return;
    }

    /* packets that came behind the auth are handled now */
    if (ch->in_len && ngx_goim_channel_process(ch) != NGX_OK) {
        return;
    }

    ngx_post_event(c->read, &ngx_posted_events);
}


static ngx_int_t
ngx_goim_channel_register(ngx_goim_channel_t *ch, Goim__ConnectReply *reply)
{
    size_t               n;
    uint32_t             hash;
    ngx_str_t            key;
    ngx_pool_t          *pool;
    ngx_goim_channel_t  *old;

    pool = ch->connection->pool;

    key.len = ngx_strlen(reply->key);
    key.data = ngx_pnalloc(pool, key.len + 1);
    if (key.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(key.data, reply->key, key.len + 1);

    n = ngx_strlen(reply->room_id);
    if (n) {
        ch->room.data = ngx_pnalloc(pool, n + 1);
        if (ch->room.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ch->room.data, reply->room_id, n + 1);
        ch->room.len = n;
    }

    if (reply->n_accepts) {
        ch->accepts = ngx_palloc(pool, reply->n_accepts * sizeof(int32_t));
        if (ch->accepts == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ch->accepts, reply->accepts,
                   reply->n_accepts * sizeof(int32_t));
        ch->naccepts = reply->n_accepts;
    }

    ch->mid = reply->mid;

    /* logic sends nanoseconds, as goim does; never less than a second */
    ch->heartbeat = (ngx_msec_t) (reply->heartbeat / 1000000);
    if (ch->heartbeat < 1000) {
        ch->heartbeat = 1000;
    }

    hash = ngx_crc32_long(key.data, key.len);

    old = (ngx_goim_channel_t *) ngx_str_rbtree_lookup(&ch->ccf->channels,
                                                       &key, hash);
    if (old) {
        /*
         * The same key connected again: the older connection goes, and it
         * must not send a Disconnect that would remove the new session.
         */
        old->kicked = 1;
        ngx_goim_channel_close(old, "kicked by a newer connection "
                                    "with the same key");
    }

    ch->node.str = key;
    ch->node.node.key = hash;
    ngx_rbtree_insert(&ch->ccf->channels, &ch->node.node);
    ch->registered = 1;
    ch->ccf->nchannels++;

    return NGX_OK;
}


ngx_goim_channel_t *
ngx_goim_channel_lookup(ngx_goim_comet_conf_t *ccf, ngx_str_t *key)
{
    return (ngx_goim_channel_t *) ngx_str_rbtree_lookup(&ccf->channels, key,
                                      ngx_crc32_long(key->data, key->len));
}


ngx_int_t
ngx_goim_channel_accepts(ngx_goim_channel_t *ch, int32_t op)
{
    ngx_uint_t  i;

    for (i = 0; i < ch->naccepts; i++) {
        if (ch->accepts[i] == op) {
            return 1;
        }
    }

    return 0;
}


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

    return msg;
}


void
ngx_goim_comet_msg_release(ngx_goim_comet_msg_t *msg)
{
    if (--msg->refs == 0) {
        ngx_free(msg);
    }
}


/* a reply to the client's own request, with its ver and seq */

static ngx_int_t
ngx_goim_channel_reply(ngx_goim_channel_t *ch, goim_header_t *h, int32_t op,
    const void *body, size_t len)
{
    ngx_int_t              rc;
    ngx_goim_comet_msg_t  *msg;

    msg = ngx_goim_comet_msg_create(GOIM_HEADER_LEN + len, ch->connection->log);
    if (msg == NULL) {
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    goim_packet_write(msg->data, h->ver, op, h->seq, body, len);

    rc = ngx_goim_channel_enqueue(ch, msg, 0);

    ngx_goim_comet_msg_release(msg);

    if (rc == NGX_DECLINED) {
        /* goim closes a client whose requests outrun its replies */
        ngx_goim_channel_close(ch, "request flood: output queue full");
        return NGX_ERROR;
    }

    if (rc == NGX_ERROR) {
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_goim_channel_push(ngx_goim_channel_t *ch, ngx_goim_comet_msg_t *msg,
    size_t offset)
{
    ngx_int_t  rc;

    rc = ngx_goim_channel_enqueue(ch, msg, offset);

    if (rc == NGX_DECLINED) {
        ch->ccf->msgs_dropped++;

        ngx_log_error(NGX_LOG_WARN, ch->connection->log, 0,
                      "goim comet: key \"%V\" output queue full (%ui), "
                      "push dropped", &ch->node.str, ch->queued);
    }

    return rc;
}


static ngx_int_t
ngx_goim_channel_enqueue(ngx_goim_channel_t *ch, ngx_goim_comet_msg_t *msg,
    size_t offset)
{
    ngx_event_t           *wev;
    ngx_goim_comet_out_t  *out;

    if (ch->state == NGX_GOIM_CHANNEL_CLOSED) {
        return NGX_DECLINED;
    }

    if (ch->queued >= ch->conf->queue_size) {
        return NGX_DECLINED;
    }

    out = ngx_alloc(sizeof(ngx_goim_comet_out_t), ch->connection->log);
    if (out == NULL) {
        return NGX_ERROR;
    }

    msg->refs++;

    out->next = NULL;
    out->msg = msg;
    out->pos = msg->data + offset;
    out->last = msg->data + msg->len;

    *ch->out_tail = out;
    ch->out_tail = &out->next;
    ch->queued++;

    wev = ch->connection->write;

    if (!wev->posted) {
        ngx_post_event(wev, &ngx_posted_events);
    }

    return NGX_OK;
}


static void
ngx_goim_channel_write_handler(ngx_event_t *wev)
{
    ssize_t                n;
    ngx_connection_t      *c;
    ngx_goim_channel_t    *ch;
    ngx_goim_comet_out_t  *out;

    c = wev->data;
    ch = ngx_goim_channel_from_connection(c);

    if (ch->state == NGX_GOIM_CHANNEL_CLOSED) {
        return;
    }

    while (ch->out) {
        out = ch->out;

        n = c->send(c, out->pos, out->last - out->pos);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR) {
            ngx_goim_channel_close(ch, "write failed");
            return;
        }

        out->pos += n;

        if (out->pos < out->last) {
            continue;
        }

        ch->out = out->next;
        if (ch->out == NULL) {
            ch->out_tail = &ch->out;
        }

        ch->queued--;
        ch->ccf->msgs_out++;

        ngx_goim_comet_msg_release(out->msg);
        ngx_free(out);
    }

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        ngx_goim_channel_close(ch, "write event failed");
    }
}


/* reason NULL: the client closed; otherwise logged at info */

static void
ngx_goim_channel_close(ngx_goim_channel_t *ch, const char *reason)
{
    if (ch->state == NGX_GOIM_CHANNEL_CLOSED) {
        return;
    }

    if (reason) {
        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim comet: closing: %s", reason);
    }

    ngx_goim_channel_cleanup(ch);

    ch->finalize(ch);
}


static void
ngx_goim_channel_cleanup(void *data)
{
    ngx_goim_channel_t *ch = data;

    ngx_goim_comet_out_t   *out;
    Goim__DisconnectReq     req = GOIM__DISCONNECT_REQ__INIT;

    if (ch->state == NGX_GOIM_CHANNEL_CLOSED) {
        return;
    }

    ch->state = NGX_GOIM_CHANNEL_CLOSED;

    if (ch->call) {
        ngx_goim_rpc_cancel(ch->call);
        ch->call = NULL;
    }

    if (ch->registered) {
        ngx_rbtree_delete(&ch->ccf->channels, &ch->node.node);
        ch->registered = 0;
        ch->ccf->nchannels--;

        if (!ch->kicked) {
            req.mid = ch->mid;
            req.key = (char *) ch->node.str.data;
            req.server = (char *) ch->ccf->id.data;

            (void) ngx_goim_rpc_call(ch->ccf->logic_peer,
                                     GOIM__METHOD__LOGIC_DISCONNECT,
                                     &req.base, ch->ccf->rpc_timeout,
                                     ngx_goim_channel_rpc_logged, NULL);
        }
    }

    while (ch->out) {
        out = ch->out;
        ch->out = out->next;

        ngx_goim_comet_msg_release(out->msg);
        ngx_free(out);
    }

    ch->out_tail = &ch->out;
    ch->queued = 0;

    if (ch->in) {
        ngx_free(ch->in);
        ch->in = NULL;
    }
}


static void
ngx_goim_channel_rpc_logged(void *data, ngx_goim_rpc_result_t *res)
{
    if (res->status) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim comet: logic call failed: %V", &res->message);
    }
}
