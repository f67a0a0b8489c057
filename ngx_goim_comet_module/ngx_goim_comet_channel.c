
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <goim_args.h>
#include <goim_ws.h>

#include "ngx_goim_comet.h"


/*
 * A channel: one client connection of either transport, from its start to
 * its cleanup, its read loop and the goim operations it serves (auth,
 * heartbeat, change room, sub, unsub, the rest handed to logic).  Longer
 * than 1,000 lines on purpose: the operations reply, close and re-enter
 * the read loop (an auth reply handles the packets that came behind it),
 * so cut apart they would call each other in a circle; WebSocket framing
 * and the output queue, which call nothing back, have files of their own.
 */


static void ngx_goim_channel_read_handler(ngx_event_t *rev);
static void ngx_goim_channel_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_goim_channel_process(ngx_goim_channel_t *ch);
static ngx_int_t ngx_goim_channel_process_ws(ngx_goim_channel_t *ch);
static ngx_int_t ngx_goim_channel_message(ngx_goim_channel_t *ch,
    u_char *data, size_t len);
static void ngx_goim_channel_ws_fail(ngx_goim_channel_t *ch,
    ngx_uint_t status, const char *reason);
static ngx_int_t ngx_goim_channel_packet(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
static ngx_int_t ngx_goim_channel_ack_call(ngx_goim_channel_t *ch,
    Goim__AckReq *req);
static ngx_int_t ngx_goim_channel_recover(ngx_goim_channel_t *ch,
    ngx_uint_t kind, uint64_t epoch, uint64_t seq);
static ngx_int_t ngx_goim_channel_auth(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
static ngx_int_t ngx_goim_channel_ack(ngx_goim_channel_t *ch,
    goim_packet_t *pkt);
static ngx_int_t ngx_goim_channel_sub(ngx_goim_channel_t *ch,
    goim_packet_t *pkt, ngx_uint_t add);
static ngx_msec_t ngx_goim_channel_renew_delay(ngx_goim_channel_t *ch);
static void ngx_goim_channel_renew(ngx_goim_channel_t *ch);
static void ngx_goim_channel_auth_done(void *data,
    ngx_goim_rpc_result_t *res);
static ngx_int_t ngx_goim_channel_register(ngx_goim_channel_t *ch,
    Goim__ConnectReply *reply);
static ngx_int_t ngx_goim_channel_restrict(ngx_goim_channel_t *ch,
    Goim__ConnectReply *reply);
static ngx_uint_t ngx_goim_channel_room_allowed(ngx_goim_channel_t *ch,
    ngx_str_t *name);
static u_char *ngx_goim_channel_auth_body(ngx_goim_channel_t *ch,
    size_t *len);
static ngx_int_t ngx_goim_channel_reply(ngx_goim_channel_t *ch,
    goim_header_t *h, int32_t op, const void *body, size_t len);
static void ngx_goim_channel_close(ngx_goim_channel_t *ch,
    const char *reason);
static void ngx_goim_channel_cleanup(void *data);
static void ngx_goim_channel_unregister(ngx_goim_channel_t *ch);
static void ngx_goim_channel_rpc_logged(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_goim_channel_online_done(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_goim_channel_drain_handler(ngx_event_t *ev);
static void ngx_goim_channel_going_away(ngx_goim_channel_t *ch);
static ngx_int_t ngx_goim_channel_heartbeat(ngx_goim_channel_t *ch);
static ngx_int_t ngx_goim_channel_sse_tick(ngx_goim_channel_t *ch);
static void ngx_goim_channel_fail(ngx_goim_channel_t *ch, ngx_uint_t status,
    ngx_str_t *reason);


/* the settings a channel takes from its server or location */

void
ngx_goim_channel_conf_init(ngx_goim_channel_conf_t *conf)
{
    conf->handshake_timeout = NGX_CONF_UNSET_MSEC;
    conf->max_body = NGX_CONF_UNSET_SIZE;
    conf->queue_size = NGX_CONF_UNSET_UINT;
    conf->max_accepts = NGX_CONF_UNSET_UINT;
    conf->deflate = NGX_CONF_UNSET;
    conf->deflate_min_length = NGX_CONF_UNSET_SIZE;
    conf->sse_ping = NGX_CONF_UNSET_MSEC;
    conf->poll_timeout = NGX_CONF_UNSET_MSEC;
    conf->poll_idle = NGX_CONF_UNSET_MSEC;
}


char *
ngx_goim_channel_conf_merge(ngx_conf_t *cf, ngx_goim_channel_conf_t *conf,
    ngx_goim_channel_conf_t *prev)
{
    ngx_conf_merge_msec_value(conf->handshake_timeout,
                              prev->handshake_timeout, 5000);
    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              GOIM_MAX_BODY_DEFAULT);
    ngx_conf_merge_uint_value(conf->queue_size, prev->queue_size, 64);

    /* logic caps a token's accepts at 1024 too */
    ngx_conf_merge_uint_value(conf->max_accepts, prev->max_accepts, 1024);

    /* WebSocket only: a TCP server has no directive for them */
    ngx_conf_merge_value(conf->deflate, prev->deflate, 0);
    ngx_conf_merge_size_value(conf->deflate_min_length,
                              prev->deflate_min_length, 256);
    /* under the 30 s and 60 s proxies and load balancers time out at */
    ngx_conf_merge_msec_value(conf->sse_ping, prev->sse_ping, 25000);

    /* as the ping: a held poll is answered before a proxy gives up */
    ngx_conf_merge_msec_value(conf->poll_timeout, prev->poll_timeout, 25000);
    ngx_conf_merge_msec_value(conf->poll_idle, prev->poll_idle, 60000);

    if (conf->poll_idle <= conf->poll_timeout) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "goim_comet_poll_idle (%M) must be longer than "
                           "goim_comet_poll_timeout (%M)", conf->poll_idle,
                           conf->poll_timeout);
        return NGX_CONF_ERROR;
    }

    if (conf->max_body > 16 * 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "goim_comet_max_body must not exceed 16m");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_goim_channel_t *
ngx_goim_channel_create(ngx_connection_t *c, ngx_goim_channel_conf_t *conf,
    ngx_uint_t ws, void (*finalize)(ngx_goim_channel_t *ch), void *owner)
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
    ch->worker = ngx_goim_comet_worker;
    ch->conf = conf;
    ch->finalize = finalize;
    ch->owner = owner;
    ch->out_tail = &ch->out;
    ch->ws = (ws == NGX_GOIM_CHANNEL_WS);

    if (ws == NGX_GOIM_CHANNEL_SSE || ws == NGX_GOIM_CHANNEL_POLL) {
        ch->sse = ngx_pcalloc(c->pool, sizeof(ngx_goim_comet_sse_t));
        if (ch->sse == NULL) {
            return NULL;
        }
    }

    if (ws == NGX_GOIM_CHANNEL_POLL) {
        ch->poll = ngx_pcalloc(c->pool, sizeof(ngx_goim_comet_poll_t));
        if (ch->poll == NULL) {
            return NULL;
        }

        ngx_goim_comet_poll_init(ch);
    }

    ngx_queue_insert_tail(&ch->worker->all, &ch->queue);

    if (ch->poll) {
        ch->worker->stats->conns_poll++;

    } else if (ch->sse) {
        ch->worker->stats->conns_sse++;

    } else if (ch->ws) {
        ch->worker->stats->conns_ws++;

    } else {
        ch->worker->stats->conns_tcp++;
    }

    return ch;
}


void
ngx_goim_channel_start(ngx_goim_channel_t *ch, u_char *data, size_t len)
{
    ngx_connection_t  *c;

    c = ch->connection;

    /* the transport's finalize() keeps its owner: c->data is ours now */
    c->data = ch;

    /*
     * A quitting or reloaded worker closes idle connections, and ours are
     * idle between packets: clients reconnect to the new workers.
     */
    c->idle = 1;
    c->read->handler = ngx_goim_channel_read_handler;
    c->write->handler = ngx_goim_channel_write_handler;

    if (ngx_exiting && ch->worker->quit
        && ch->worker->quit(ch->worker) != NGX_OK)
    {
        /* came in as the worker quits, too late for its hand-off */
        ngx_goim_channel_drain(ch, 0);
        return;
    }

    if (ch->worker->logic_peer == NULL) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "goim comet: no goim_comet_logic configured");

        ngx_goim_channel_fail(ch, 503, &(ngx_str_t)
                              ngx_string("no goim_comet_logic configured"));

        ngx_goim_channel_close(ch, NULL);
        return;
    }

    /* the handshake deadline covers everything up to a successful auth */
    ngx_add_timer(c->read, ch->conf->handshake_timeout);

    /* bytes that came with the WebSocket handshake are not lost */
    if (len) {
        ch->in = ngx_alloc(ngx_goim_channel_in_size(ch), c->log);
        if (ch->in == NULL || len > ngx_goim_channel_in_size(ch)) {
            ngx_goim_channel_close(ch, "handshake followed by too much data");
            return;
        }

        ngx_memcpy(ch->in, data, len);
        ch->in_len = len;

        if (ngx_goim_channel_process(ch) != NGX_OK
            || ch->state == NGX_GOIM_CHANNEL_AUTHING)
        {
            return;
        }
    }

    if (ch->poll) {
        /* no socket to read: its request gave the op 7 */
        return;
    }

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

    if (ch->state == NGX_GOIM_CHANNEL_MOVING || ch->adopting) {
        /* the socket is another process's now, or not yet ours */
        return;
    }

    if (rev->timedout) {
        if (ch->poll && ch->state == NGX_GOIM_CHANNEL_ONLINE) {
            /* no poll since goim_comet_poll_idle: the client is gone */
            ch->worker->stats->poll_expired++;
            ngx_goim_channel_close(ch, "poll session expired: no poll "
                                   "within goim_comet_poll_idle");
            return;
        }

        if (ch->sse && ch->state == NGX_GOIM_CHANNEL_ONLINE) {
            /* a ping's time, not a deadline; closed: ch is gone */
            rev->timedout = 0;
            (void) ngx_goim_channel_sse_tick(ch);
            return;

        } else {
            ngx_goim_channel_close(ch, ch->state == NGX_GOIM_CHANNEL_ONLINE
                                       ? "heartbeat timed out"
                                       : "handshake timed out");
            return;
        }
    }

    if (ch->poll) {
        /* timers only: a session has no socket */
        return;
    }

    if (c->close) {
        if (!c->error && ch->drain == NULL
            && ch->worker->quit && ch->worker->quit(ch->worker) == NGX_OK)
        {
            /* a reload: the hand-off takes the connection on, or drains it */
            c->close = 0;

        } else {
            ngx_goim_channel_drain(ch, 0);
            return;
        }
    }

    if (ch->state != NGX_GOIM_CHANNEL_HANDSHAKE
        && ch->state != NGX_GOIM_CHANNEL_ONLINE)
    {
        /* input waits in the socket until logic has answered */
        return;
    }

    if (ch->sse) {
        /* the request said everything: only the end of it counts */
        switch (ngx_goim_comet_sse_discard(ch)) {

        case NGX_DONE:
            ngx_goim_channel_close(ch, NULL);
            return;

        case NGX_ERROR:
            ngx_goim_channel_close(ch, "read failed");
            return;

        default:
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_goim_channel_close(ch, "read event failed");
            }

            return;
        }
    }

    cap = ngx_goim_channel_in_size(ch);

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

        if (ch->state != NGX_GOIM_CHANNEL_HANDSHAKE
            && ch->state != NGX_GOIM_CHANNEL_ONLINE)
        {
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

    if (ch->ws) {
        return ngx_goim_channel_process_ws(ch);
    }

    pos = 0;
    rv = NGX_OK;

    while (ch->state != NGX_GOIM_CHANNEL_AUTHING) {
        rc = goim_packet_parse(ch->in + pos, ch->in_len - pos,
                               ch->conf->max_body, &pkt, &consumed);

        if (rc == GOIM_AGAIN) {
            break;
        }

        if (rc != GOIM_OK) {
            ch->worker->stats->bad_input++;
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


/* WebSocket: one goim packet per (reassembled) message */

static ngx_int_t
ngx_goim_channel_process_ws(ngx_goim_channel_t *ch)
{
    size_t                  pos;
    ngx_int_t               rc;
    ngx_goim_comet_ws_in_t  in;

    pos = 0;

    while (ch->state == NGX_GOIM_CHANNEL_HANDSHAKE
           || ch->state == NGX_GOIM_CHANNEL_ONLINE)
    {
        rc = ngx_goim_comet_ws_read(ch, &pos, &in);

        if (rc == NGX_AGAIN) {
            break;
        }

        if (rc == NGX_DECLINED) {
            ngx_goim_channel_ws_fail(ch, in.status, in.reason);
            return NGX_ERROR;
        }

        if (rc == NGX_ERROR) {
            ngx_goim_channel_close(ch, in.reason);
            return NGX_ERROR;
        }

        rc = ngx_goim_channel_message(ch, in.data, in.len);

        if (in.reassembled) {
            ngx_free(in.data);
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (pos) {
        ngx_memmove(ch->in, ch->in + pos, ch->in_len - pos);
        ch->in_len -= pos;
    }

    return NGX_OK;
}


/*
 * Ends a WebSocket connection with a close frame carrying status: one
 * attempt to write what is queued and the frame, then the connection goes.
 */

static void
ngx_goim_channel_ws_fail(ngx_goim_channel_t *ch, ngx_uint_t status,
    const char *reason)
{
    ngx_goim_comet_ws_close(ch, status);

    if (reason) {
        if (status != GOIM_WS_CLOSE_GOING_AWAY) {
            ch->worker->stats->bad_input++;
        }

        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim comet: closing with status %ui: %s",
                      status, reason);
        reason = NULL;
    }

    ngx_goim_channel_close(ch, reason);
}


/* one WebSocket message must be exactly one goim packet */

static ngx_int_t
ngx_goim_channel_message(ngx_goim_channel_t *ch, u_char *data, size_t len)
{
    size_t         consumed;
    goim_rc_t      rc;
    goim_packet_t  pkt;

    rc = goim_packet_parse(data, len, ch->conf->max_body, &pkt, &consumed);

    if (rc == GOIM_OK && consumed == len) {
        return ngx_goim_channel_packet(ch, &pkt);
    }

    ngx_goim_channel_ws_fail(ch, GOIM_WS_CLOSE_PROTOCOL,
                             rc == GOIM_OK || rc == GOIM_AGAIN
                             ? "packet length differs from its frame length"
                             : goim_strerror(rc));
    return NGX_ERROR;
}


static ngx_int_t
ngx_goim_channel_packet(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    int32_t                 op;
    u_char                  online[4], *p;
    uint64_t                epoch, seq;
    ngx_int_t               rc;
    ngx_str_t               name;
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
        if (ch->sse) {
            /* comet beats for an SSE client itself */
            return NGX_OK;
        }

        ngx_add_timer(c->read, ch->heartbeat);

        if (ngx_goim_channel_heartbeat(ch) != NGX_OK) {
            return NGX_ERROR;
        }

        goim_put_be32(online, (uint32_t) ngx_goim_room_online(ch->room));

        return ngx_goim_channel_reply(ch, &pkt->header,
                                      GOIM_OP_HEARTBEAT_REPLY, online, 4);

    case GOIM_OP_CHANGE_ROOM:
        name.data = (u_char *) pkt->body;
        name.len = pkt->body_len;
        epoch = 0;
        seq = 0;

        if (ch->positions) {
            /* "room" or "room\nEPOCH:SEQ": the last position seen there */
            p = ngx_strlchr(name.data, name.data + name.len, '\n');

            if (p) {
                if (goim_args_position((char *) p + 1,
                                        name.data + name.len - p - 1,
                                        &epoch, &seq)
                    != 0)
                {
                    ch->worker->stats->bad_input++;
                    ngx_goim_channel_close(ch, "change room: position is "
                                           "not EPOCH:SEQ");
                    return NGX_ERROR;
                }

                name.len = p - name.data;
            }
        }

        if (ch->restricted && !ngx_goim_channel_room_allowed(ch, &name)) {
            ch->worker->stats->token_refused++;
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "goim comet: room \"%*s\" is not allowed by the "
                          "token of mid %L", ngx_min(name.len, 64),
                          name.data, ch->mid);
            ngx_goim_channel_close(ch, "change room refused by the token");
            return NGX_ERROR;
        }

        if (ngx_goim_room_join(ch, &name) != NGX_OK) {
            ngx_goim_channel_close(ch, "out of memory");
            return NGX_ERROR;
        }

        /* router keeps presence per room: tell it at once */
        ngx_goim_channel_renew(ch);

        if (ngx_goim_channel_reply(ch, &pkt->header,
                                   GOIM_OP_CHANGE_ROOM_REPLY, name.data,
                                   name.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ch->positions) {
            return ngx_goim_channel_recover(ch, NGX_GOIM_COMET_STREAM_ROOM,
                                            epoch, seq);
        }

        return NGX_OK;

    case GOIM_OP_SUB:
    case GOIM_OP_UNSUB:
        rc = ngx_goim_channel_sub(ch, pkt, op == GOIM_OP_SUB);

        if (rc != NGX_OK) {
            if (rc == NGX_DECLINED) {
                ch->worker->stats->bad_input++;

            } else if (rc == NGX_ABORT) {
                ch->worker->stats->token_refused++;
            }

            ngx_goim_channel_close(ch, rc == NGX_DECLINED
                                       ? "too many operations subscribed"
                                       : rc == NGX_ABORT
                                       ? "sub refused by the token"
                                       : "out of memory");
            return NGX_ERROR;
        }

        return ngx_goim_channel_reply(ch, &pkt->header, op + 1, pkt->body,
                                      pkt->body_len);

    case GOIM_OP_ACK:
        return ngx_goim_channel_ack(ch, pkt);

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

        if (ngx_goim_rpc_call(ch->worker->logic_peer,
                              GOIM__METHOD__LOGIC_RECEIVE,
                              &req.base, ch->worker->conf->rpc_timeout,
                              ngx_goim_channel_rpc_logged, NULL)
            == NULL)
        {
            ngx_goim_channel_close(ch, "out of memory");
            return NGX_ERROR;
        }

        return ngx_goim_channel_reply(ch, &pkt->header, op, NULL, 0);
    }
}


/*
 * What a heartbeat does besides its reply: the session's renewal when it
 * is due, an ONLINE not confirmed sent again.
 */

static ngx_int_t
ngx_goim_channel_heartbeat(ngx_goim_channel_t *ch)
{
    Goim__AckReq  ack = GOIM__ACK_REQ__INIT;

    if (ngx_current_msec >= ch->renew_at) {
        ngx_goim_channel_renew(ch);
    }

    if (ch->online_unsure) {
        ack.mid = ch->mid;
        ack.key = (char *) ch->node.str.data;
        ack.server = (char *) ch->worker->conf->id.data;
        ack.online = 1;

        return ngx_goim_channel_ack_call(ch, &ack);
    }

    return NGX_OK;
}


/*
 * An SSE client cannot send op 2: every goim_comet_sse_ping comet writes
 * a comment line and does what the client's heartbeat would.  A client
 * gone is found by the write failing or the socket's end; one that reads
 * nothing fills its queue, and is closed when two pings in a row find it
 * full.  NGX_ERROR: ch was closed (and is gone).
 */

static ngx_int_t
ngx_goim_channel_sse_tick(ngx_goim_channel_t *ch)
{
    ngx_int_t  rc;

    rc = ngx_goim_comet_sse_ping(ch);

    if (rc == NGX_ERROR) {
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        if (++ch->sse->stalled >= 2) {
            ch->worker->stats->sse_stalled++;
            ngx_goim_channel_close(ch, "SSE client reads nothing: output "
                                   "queue full at two pings");
            return NGX_ERROR;
        }

    } else {
        ch->sse->stalled = 0;
    }

    ch->worker->stats->sse_beats++;

    if (ngx_goim_channel_heartbeat(ch) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_add_timer(ch->connection->read, ch->conf->sse_ping);

    return NGX_OK;
}


/*
 * A control call (SSE): op 12, 14, 16 or 18 with its body, applied as if
 * the client had sent it; the reply goes on the stream.  NGX_DECLINED:
 * the channel is not online; NGX_ERROR: it was closed by the operation.
 */

ngx_int_t
ngx_goim_channel_control(ngx_goim_channel_t *ch, int32_t op, u_char *body,
    size_t len)
{
    goim_packet_t  pkt;

    if (ch->state != NGX_GOIM_CHANNEL_ONLINE || ch->adopting) {
        return NGX_DECLINED;
    }

    ngx_memzero(&pkt, sizeof(goim_packet_t));
    pkt.header.pack_len = (int32_t) (GOIM_HEADER_LEN + len);
    pkt.header.header_len = GOIM_HEADER_LEN;
    pkt.header.ver = 1;
    pkt.header.op = op;
    pkt.body = body;
    pkt.body_len = len;

    return ngx_goim_channel_packet(ch, &pkt);
}


/*
 * A poll of a long-poll session: what the client's heartbeat would do
 * (the session's renewal when due), then the poll itself, answered or
 * held (ngx_goim_comet_poll.c).  NGX_DECLINED: no live session, or its
 * open not answered yet; w is untouched then.
 */

ngx_int_t
ngx_goim_channel_poll(ngx_goim_channel_t *ch, uint64_t cursor,
    ngx_goim_comet_waiter_t *w)
{
    if (ch->poll == NULL || ch->state != NGX_GOIM_CHANNEL_ONLINE
        || !ch->poll->opened)
    {
        return NGX_DECLINED;
    }

    if (ngx_goim_channel_heartbeat(ch) != NGX_OK) {
        /* closed: ch is gone */
        return NGX_DECLINED;
    }

    ngx_goim_comet_poll_take(ch, cursor, w);

    return NGX_OK;
}


/* the request of an SSE stream or a poll's open, not answered yet */

static void
ngx_goim_channel_fail(ngx_goim_channel_t *ch, ngx_uint_t status,
    ngx_str_t *reason)
{
    if (ch->poll) {
        ngx_goim_comet_poll_fail(ch, status, reason);

    } else if (ch->sse && !ch->sse->open) {
        ngx_goim_comet_sse_fail(ch, status, reason);
    }
}


/*
 * Op 18 (not in goim): "id1,id2", the ensure messages this connection
 * acknowledges, for logic to hand to job; the first one also says that
 * the connection acknowledges, so ensure messages reach it as op 19 from
 * now on and job sends it what its mid has pending.  No reply: the ids
 * come back again (a resend) if the ack is lost.
 */

static ngx_int_t
ngx_goim_channel_ack(ngx_goim_channel_t *ch, goim_packet_t *pkt)
{
    char            **ids, *copy;
    size_t            n, i, len;
    u_char           *p, *last, *comma;
    ngx_int_t         rc;
    Goim__AckReq      req = GOIM__ACK_REQ__INIT;

    len = pkt->body_len;

    if (len == 0 && ch->acks) {
        return NGX_OK;
    }

    /* at most one id per two bytes: "a,b,c" */
    n = len / 2 + 1;

    ids = ngx_alloc(n * sizeof(char *) + len + 1, ch->connection->log);
    if (ids == NULL) {
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    copy = (char *) (ids + n);
    ngx_memcpy(copy, pkt->body, len);
    copy[len] = '\0';

    p = (u_char *) copy;
    last = p + len;
    i = 0;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        *comma = '\0';

        if (comma > p) {
            ids[i++] = (char *) p;
        }

        p = comma + 1;
    }

    req.mid = ch->mid;
    req.key = (char *) ch->node.str.data;
    req.server = (char *) ch->worker->conf->id.data;
    req.ids = ids;
    req.n_ids = i;
    req.online = !ch->acks || ch->online_unsure;

    ch->acks = 1;

    rc = ngx_goim_channel_ack_call(ch, &req);

    ngx_free(ids);

    return rc;
}


/*
 * Logic.Ack.  An ONLINE one (the connection's first op 18: job sends it
 * what its mid has pending) is sent again with the next op 18 or
 * heartbeat until logic confirms it: lost (logic or its queue down), the
 * mid's pending messages would wait for their next resend, or their TTL.
 */

typedef struct {
    ngx_goim_comet_worker_t   *worker;
    uint64_t                   id;
    ngx_str_t                  key;
} ngx_goim_channel_online_t;


static ngx_int_t
ngx_goim_channel_ack_call(ngx_goim_channel_t *ch, Goim__AckReq *req)
{
    void                       (*done)(void *data,
                                       ngx_goim_rpc_result_t *res);
    ngx_goim_channel_online_t   *on;

    done = ngx_goim_channel_rpc_logged;
    on = NULL;

    if (req->online) {
        on = ngx_alloc(sizeof(ngx_goim_channel_online_t) + ch->node.str.len,
                       ch->connection->log);
        if (on == NULL) {
            ngx_goim_channel_close(ch, "out of memory");
            return NGX_ERROR;
        }

        on->worker = ch->worker;
        on->id = ch->id;
        on->key.len = ch->node.str.len;
        on->key.data = (u_char *) (on + 1);
        ngx_memcpy(on->key.data, ch->node.str.data, on->key.len);

        ch->online_unsure = 1;
        done = ngx_goim_channel_online_done;
    }

    if (ngx_goim_rpc_call(ch->worker->logic_peer, GOIM__METHOD__LOGIC_ACK,
                          &req->base, ch->worker->conf->rpc_timeout, done, on)
        == NULL)
    {
        if (on) {
            ngx_free(on);
        }

        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_goim_channel_online_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_goim_channel_online_t *on = data;

    ngx_goim_channel_t  *ch;

    if (res->status) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim comet: logic Ack (online) failed, sent again "
                      "with the next heartbeat: %V", &res->message);

    } else {
        /* the channel may be gone, or its key taken by another since */
        ch = ngx_goim_channel_lookup(on->worker, &on->key);

        if (ch && ch->id == on->id) {
            ch->online_unsure = 0;
        }
    }

    ngx_free(on);
}


/*
 * Sub/Unsub: "1000,1001", decimal int32s separated by commas; if any of
 * them does not parse nothing changes (goim v2).  The reply echoes the
 * body either way.  A Sub that would make the set larger than
 * goim_comet_max_accepts closes the connection: NGX_DECLINED; so does one
 * of an operation a signed token does not allow: NGX_ABORT.
 */

static ngx_int_t
ngx_goim_channel_sub(ngx_goim_channel_t *ch, goim_packet_t *pkt,
    ngx_uint_t add)
{
    int32_t     *ops, missing;
    ngx_int_t    rc;
    ngx_uint_t   n;

    n = ngx_goim_opset_count((u_char *) pkt->body, pkt->body_len);

    if (n == 0) {
        return NGX_OK;
    }

    ops = ngx_alloc(n * sizeof(int32_t), ch->connection->log);
    if (ops == NULL) {
        return NGX_ERROR;
    }

    if (ngx_goim_opset_parse((u_char *) pkt->body, pkt->body_len, ops, &n)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim comet: %s body \"%*s\" is not a list of "
                      "operations, nothing changed", add ? "sub" : "unsub",
                      ngx_min(pkt->body_len, 64), pkt->body);
        ngx_free(ops);
        return NGX_OK;
    }

    rc = NGX_OK;

    if (add && ch->restricted
        && ngx_goim_opset_covers(&ch->allowed_ops, ops, n, &missing)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                      "goim comet: sub of operation %D is not allowed by "
                      "the token of mid %L", missing, ch->mid);
        rc = NGX_ABORT;

    } else if (add) {
        rc = ngx_goim_opset_add(&ch->accepts, ops, n, ch->conf->max_accepts,
                                ch->connection->log);

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                          "goim comet: sub of %ui operations would accept "
                          "more than %ui (goim_comet_max_accepts)",
                          n, ch->conf->max_accepts);
        }

    } else {
        ngx_goim_opset_remove(&ch->accepts, ops, n);
    }

    ngx_free(ops);

    return rc;
}


/*
 * Session renewal: logic re-arms the session's lease in router (re-adding
 * it if it had expired).  goim draws 10-30 min and renews only on a client
 * heartbeat, so with a 30 min lease a session can lapse; here the delay is
 * drawn in [interval/2, interval), and docs/directives.md says how to keep
 * interval + the heartbeat deadline below router's session TTL.
 */

static ngx_msec_t
ngx_goim_channel_renew_delay(ngx_goim_channel_t *ch)
{
    ngx_msec_t  interval;

    interval = ch->worker->conf->renew_interval;

    return interval / 2 + (ngx_msec_t) ngx_random() % (interval / 2 + 1);
}


static void
ngx_goim_channel_renew(ngx_goim_channel_t *ch)
{
    Goim__HeartbeatReq  req = GOIM__HEARTBEAT_REQ__INIT;

    req.mid = ch->mid;
    req.key = (char *) ch->node.str.data;
    req.server = (char *) ch->worker->conf->id.data;
    req.room_id = ch->room ? (char *) ch->room->node.str.data : "";

    ch->renew_at = ngx_current_msec + ngx_goim_channel_renew_delay(ch);

    (void) ngx_goim_rpc_call(ch->worker->logic_peer,
                             GOIM__METHOD__LOGIC_HEARTBEAT,
                             &req.base, ch->worker->conf->rpc_timeout,
                             ngx_goim_channel_rpc_logged, NULL);
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

    req.server = (char *) ch->worker->conf->id.data;
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

    ch->call = ngx_goim_rpc_call(ch->worker->logic_peer,
                                 GOIM__METHOD__LOGIC_CONNECT, &req.base,
                                 ch->worker->conf->rpc_timeout,
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

    size_t               len;
    u_char              *body;
    ngx_int_t            rc;
    goim_header_t        h;
    ngx_connection_t    *c;
    Goim__ConnectReply  *reply;
    Goim__DisconnectReq  req = GOIM__DISCONNECT_REQ__INIT;

    c = ch->connection;
    ch->call = NULL;

    if (res->status) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "goim comet: auth refused by logic: %V (%i)",
                      &res->message, res->status);
        ch->worker->stats->auth_failed++;

        ngx_goim_channel_fail(ch, 403, &res->message);

        ngx_goim_channel_close(ch, "auth failed");
        return;
    }

    reply = (Goim__ConnectReply *) res->reply;

    ngx_memzero(&h, sizeof(goim_header_t));
    h.ver = (int16_t) (ch->mid >> 32);
    h.seq = (int32_t) (ch->mid & 0xffffffff);

    if (ngx_goim_channel_register(ch, reply) != NGX_OK) {

        /* logic has stored the session in router: it must not linger */
        req.mid = reply->mid;
        req.key = reply->key;
        req.server = (char *) ch->worker->conf->id.data;

        (void) ngx_goim_rpc_call(ch->worker->logic_peer,
                                 GOIM__METHOD__LOGIC_DISCONNECT, &req.base,
                                 ch->worker->conf->rpc_timeout,
                                 ngx_goim_channel_rpc_logged, NULL);

        ngx_goim_channel_close(ch, "registration failed");
        return;
    }

    ch->state = NGX_GOIM_CHANNEL_ONLINE;

    ngx_log_debug3(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "goim comet: mid %L key \"%V\" authenticated, "
                   "heartbeat %M", ch->mid, &ch->node.str, ch->heartbeat);

    if (ch->sse && ch->in) {
        /*
         * The buffer the request's op 7 came in goes: an SSE client or a
         * poll session sends nothing more, so the read handler, which
         * frees an idle one, may never run again (4 KB a connection,
         * bench/sse.sh).
         */
        ngx_free(ch->in);
        ch->in = NULL;
        ch->in_len = 0;
    }

    if (ch->poll) {
        /*
         * Its open waits for the events queued from here on, answered
         * in this turn; should its request be gone, the session waits
         * for a poll as long as after any answer.
         */
        ngx_add_timer(c->read, ch->conf->poll_idle);

    } else if (ch->sse) {
        /* the 200 before the first event; comet's own beat from now on */
        if (ngx_goim_comet_sse_open(ch) != NGX_OK) {
            ngx_goim_channel_close(ch, "out of memory");
            return;
        }

        ngx_add_timer(c->read, ch->conf->sse_ping);
    }

    if (ch->sse) {
        if (ch->sse->resume) {
            /* Last-Event-ID: newer than what the token says */
            reply->room_epoch = ch->sse->resume_epoch[0];
            reply->room_seq = ch->sse->resume_seq[0];
            reply->all_epoch = ch->sse->resume_epoch[1];
            reply->all_seq = ch->sse->resume_seq[1];

            /* the ids go on from there, the other stream's part too */
            ngx_memcpy(ch->sse->epoch, ch->sse->resume_epoch,
                       sizeof(ch->sse->epoch));
            ngx_memcpy(ch->sse->seq, ch->sse->resume_seq,
                       sizeof(ch->sse->seq));
        }

    } else {
        ngx_add_timer(c->read, ch->heartbeat);
    }

    /*
     * goim's op 8 is empty and its clients ignore the body; ours tells the
     * client who it is, its key above all, which goim's users ask for.
     */
    body = ngx_goim_channel_auth_body(ch, &len);
    if (body == NULL) {
        ngx_goim_channel_close(ch, "out of memory");
        return;
    }

    rc = ngx_goim_channel_reply(ch, &h, GOIM_OP_AUTH_REPLY, body, len);

    ngx_free(body);

    if (rc != NGX_OK) {
        return;
    }

    /*
     * Room recovery, within this event: what the worker delivers from now
     * on comes after what its history held, so nothing is missed or
     * doubled between the two.
     */
    if (ch->positions) {
        if (ngx_goim_channel_recover(ch, NGX_GOIM_COMET_STREAM_ROOM,
                                     reply->room_epoch, reply->room_seq)
            != NGX_OK
            || ngx_goim_channel_recover(ch, NGX_GOIM_COMET_STREAM_ALL,
                                        reply->all_epoch, reply->all_seq)
               != NGX_OK)
        {
            return;
        }
    }

    /* packets that came behind the auth are handled now */
    if (ch->in_len && ngx_goim_channel_process(ch) != NGX_OK) {
        return;
    }

    if (ch->poll) {
        return;
    }

    ngx_post_event(c->read, &ngx_posted_events);
}


/*
 * Room recovery for one stream of ch (its room's, or the broadcasts'):
 * what it missed since epoch:seq (epoch 0: nothing asked), then op 21
 * telling how that went and where the stream is now:
 * {"stream":"room","room":"...","pos":"E:S","recovered":true,"missed":3}.
 * NGX_ERROR: ch was closed.
 */

static ngx_int_t
ngx_goim_channel_recover(ngx_goim_channel_t *ch, ngx_uint_t kind,
    uint64_t epoch, uint64_t seq)
{
    u_char     *body, *p;
    size_t      size;
    uint64_t    pos_epoch, pos_seq;
    ngx_int_t   rc;
    ngx_str_t              name;
    ngx_uint_t             missed;
    ngx_goim_comet_msg_t  *msg;

    if (kind == NGX_GOIM_COMET_STREAM_ROOM) {
        if (ch->room == NULL) {
            return NGX_OK;              /* in no room: no stream */
        }

        name = ch->room->node.str;

    } else {
        ngx_str_null(&name);
    }

    rc = ngx_goim_comet_history_recover(ch, &name, kind, epoch, seq,
                                        &pos_epoch, &pos_seq, &missed);
    if (rc == NGX_ERROR) {
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    if (epoch) {
        if (rc == NGX_OK) {
            ch->worker->stats->recover_ok++;

        } else {
            ch->worker->stats->recover_gap++;
        }
    }

    size = sizeof("{\"stream\":\"room\",\"room\":\"\",\"pos\":\":\","
                  "\"recovered\":false,\"missed\":}")
           + name.len + ngx_escape_json(NULL, name.data, name.len)
           + 2 * NGX_INT64_LEN + NGX_INT_T_LEN;

    body = ngx_alloc(size, ch->connection->log);
    if (body == NULL) {
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    if (kind == NGX_GOIM_COMET_STREAM_ROOM) {
        p = ngx_cpymem(body, "{\"stream\":\"room\",\"room\":\"",
                       sizeof("{\"stream\":\"room\",\"room\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, name.data, name.len);
        p = ngx_cpymem(p, "\",", 2);

    } else {
        p = ngx_cpymem(body, "{\"stream\":\"all\",",
                       sizeof("{\"stream\":\"all\",") - 1);
    }

    if (pos_epoch) {
        p = ngx_sprintf(p, "\"pos\":\"%uL:%uL\"", pos_epoch, pos_seq);

    } else {
        p = ngx_cpymem(p, "\"pos\":\"\"", sizeof("\"pos\":\"\"") - 1);
    }

    p = ngx_sprintf(p, ",\"recovered\":%s,\"missed\":%ui}",
                    (epoch && rc == NGX_OK) ? "true" : "false", missed);

    if (ch->sse && pos_epoch) {
        /* op 21's event gets the id of where the stream is now */
        ch->sse->epoch[kind] = pos_epoch;
        ch->sse->seq[kind] = pos_seq;
    }

    /* the replay's end: past the queue's bound, as the replay is */
    msg = ngx_goim_comet_msg_create(GOIM_HEADER_LEN + (p - body),
                                    ch->connection->log);
    if (msg == NULL) {
        ngx_free(body);
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    goim_packet_write(msg->data, GOIM_PUSH_VERSION, GOIM_OP_RECOVERY, 0, body,
                      p - body);
    ngx_free(body);

    rc = ngx_goim_comet_output_enqueue(ch, msg, NGX_GOIM_COMET_OUT_REPLAY);

    ngx_goim_comet_msg_release(msg);

    if (rc == NGX_ERROR) {
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* {"mid":123,"key":"...","room_id":"..."}, SSE's with ,"session":"..." */

static u_char *
ngx_goim_channel_auth_body(ngx_goim_channel_t *ch, size_t *len)
{
    u_char     *body, *p, *session, *last;
    size_t      size;
    ngx_str_t   room;

    room = ch->room ? ch->room->node.str : (ngx_str_t) ngx_null_string;

    size = sizeof("{\"mid\":,\"key\":\"\",\"room_id\":\"\"}") + NGX_INT64_LEN
           + ch->node.str.len
           + ngx_escape_json(NULL, ch->node.str.data, ch->node.str.len)
           + room.len + ngx_escape_json(NULL, room.data, room.len);

    if (ch->sse) {
        size += sizeof(",\"session\":\"\"") - 1
                + 6 * ngx_goim_comet_session_len(&ch->node.str);
    }

    body = ngx_alloc(size, ch->connection->log);
    if (body == NULL) {
        return NULL;
    }

    p = ngx_sprintf(body, "{\"mid\":%L,\"key\":\"", ch->mid);
    p = (u_char *) ngx_escape_json(p, ch->node.str.data, ch->node.str.len);
    p = ngx_cpymem(p, "\",\"room_id\":\"", sizeof("\",\"room_id\":\"") - 1);
    p = (u_char *) ngx_escape_json(p, room.data, room.len);

    if (ch->sse) {
        /* a control call's credential: it names the key (session.c) */
        p = ngx_cpymem(p, "\",\"session\":\"",
                       sizeof("\",\"session\":\"") - 1);
        session = p + 5 * ngx_goim_comet_session_len(&ch->node.str);
        last = ngx_goim_comet_session(session, &ch->node.str);
        p = (u_char *) ngx_escape_json(p, session, last - session);
    }

    p = ngx_cpymem(p, "\"}", 2);

    *len = p - body;

    return body;
}


static ngx_int_t
ngx_goim_channel_register(ngx_goim_channel_t *ch, Goim__ConnectReply *reply)
{
    uint32_t             hash;
    ngx_int_t            rc;
    ngx_str_t            key, room;
    ngx_pool_t          *pool;
    ngx_goim_channel_t  *old;

    pool = ch->connection->pool;

    key.len = ngx_strlen(reply->key);
    key.data = ngx_pnalloc(pool, key.len + 1);
    if (key.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(key.data, reply->key, key.len + 1);

    room.data = (u_char *) reply->room_id;
    room.len = ngx_strlen(reply->room_id);

    if (ngx_goim_room_join(ch, &room) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_goim_opset_init(&ch->accepts, reply->accepts, reply->n_accepts,
                             ch->conf->max_accepts, ch->connection->log);
    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            ch->worker->stats->bad_input++;
            ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                          "goim comet: the token accepts more than %ui "
                          "operations (goim_comet_max_accepts)",
                          ch->conf->max_accepts);
        }

        return NGX_ERROR;
    }

    if (reply->restricted && ngx_goim_channel_restrict(ch, reply) != NGX_OK) {
        return NGX_ERROR;
    }

    ch->mid = reply->mid;
    ch->positions = reply->recover;

    /* logic sends nanoseconds, as goim does; never less than a second */
    ch->heartbeat = (ngx_msec_t) (reply->heartbeat / 1000000);
    if (ch->heartbeat < 1000) {
        ch->heartbeat = 1000;
    }

    ch->renew_at = ngx_current_msec + ngx_goim_channel_renew_delay(ch);

    hash = ngx_crc32_long(key.data, key.len);

    ch->node.str = key;
    ch->node.node.key = hash;
    ch->id = ((uint64_t) ch->worker->worker << 48) | ++ch->worker->next_id;

    /* other workers learn the key; an older owner elsewhere is kicked */
    if (ngx_goim_comet_tables_key_set(ch->worker, ch) != NGX_OK) {
        return NGX_ERROR;
    }

    old = (ngx_goim_channel_t *) ngx_str_rbtree_lookup(&ch->worker->channels,
                                                       &key, hash);
    if (old) {
        ngx_goim_channel_kick(old);
    }

    ngx_rbtree_insert(&ch->worker->channels, &ch->node.node);
    ch->registered = 1;
    ch->worker->stats->online++;

    return NGX_OK;
}


/*
 * A signed token's bounds, kept for the connection's life: the operations
 * (a set as bounded as accepts) and the rooms, copied into one block no
 * larger than the token they came from.
 */

static ngx_int_t
ngx_goim_channel_restrict(ngx_goim_channel_t *ch, Goim__ConnectReply *reply)
{
    u_char     *p;
    size_t      size;
    ngx_int_t   rc;
    ngx_uint_t  i;

    rc = ngx_goim_opset_init(&ch->allowed_ops, reply->allowed_ops,
                             reply->n_allowed_ops, ch->conf->max_accepts,
                             ch->connection->log);
    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            ch->worker->stats->bad_input++;
            ngx_log_error(NGX_LOG_INFO, ch->connection->log, 0,
                          "goim comet: the token allows more than %ui "
                          "operations (goim_comet_max_accepts)",
                          ch->conf->max_accepts);
        }

        return NGX_ERROR;
    }

    size = reply->n_allowed_rooms * sizeof(ngx_str_t);

    for (i = 0; i < reply->n_allowed_rooms; i++) {
        size += ngx_strlen(reply->allowed_rooms[i]);
    }

    if (reply->n_allowed_rooms) {
        ch->allowed_rooms = ngx_palloc(ch->connection->pool, size);
        if (ch->allowed_rooms == NULL) {
            return NGX_ERROR;
        }

        p = (u_char *) &ch->allowed_rooms[reply->n_allowed_rooms];

        for (i = 0; i < reply->n_allowed_rooms; i++) {
            ch->allowed_rooms[i].len = ngx_strlen(reply->allowed_rooms[i]);
            ch->allowed_rooms[i].data = p;
            p = ngx_cpymem(p, reply->allowed_rooms[i],
                           ch->allowed_rooms[i].len);
        }

        ch->nallowed_rooms = reply->n_allowed_rooms;
    }

    ch->restricted = 1;

    return NGX_OK;
}


/* leaving a room is always allowed; "prefix*" matches by prefix */

static ngx_uint_t
ngx_goim_channel_room_allowed(ngx_goim_channel_t *ch, ngx_str_t *name)
{
    ngx_str_t   *r;
    ngx_uint_t   i;

    if (name->len == 0) {
        return 1;
    }

    for (i = 0; i < ch->nallowed_rooms; i++) {
        r = &ch->allowed_rooms[i];

        if (r->len && r->data[r->len - 1] == '*') {
            if (name->len >= r->len - 1
                && ngx_memcmp(name->data, r->data, r->len - 1) == 0)
            {
                return 1;
            }

        } else if (r->len == name->len
                   && ngx_memcmp(r->data, name->data, r->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The same key connected again: the older connection goes, and it must
 * not send a Disconnect that would remove the new session.
 */

void
ngx_goim_channel_kick(ngx_goim_channel_t *ch)
{
    if (ch->state == NGX_GOIM_CHANNEL_MOVING) {
        /* its new process settles which connection with the key stays */
        return;
    }

    if (ch->adopting) {
        /*
         * Not ours to close before its old process lets it go (resume,
         * drain close it then); out of the key tables now, so that the
         * newer one gets the pushes.
         */
        ch->kicked = 1;
        ch->worker->stats->kicked++;

        if (ch->registered) {
            ngx_goim_channel_unregister(ch);
        }

        return;
    }

    ch->kicked = 1;
    ch->worker->stats->kicked++;
    ngx_goim_channel_close(ch, "kicked by a newer connection with the same "
                               "key");
}


/* the worker is exiting: every client goes, each logged */

void
ngx_goim_channel_close_all(ngx_goim_comet_worker_t *wk)
{
    ngx_queue_t         *q;
    ngx_goim_channel_t  *ch;

    while (!ngx_queue_empty(&wk->all)) {
        q = ngx_queue_head(&wk->all);
        ch = ngx_queue_data(q, ngx_goim_channel_t, queue);

        /* no TLS close_notify exchange: it could never finish now */
        ch->connection->error = 1;

        ngx_goim_channel_close(ch, "worker is exiting");
    }
}


ngx_goim_channel_t *
ngx_goim_channel_lookup(ngx_goim_comet_worker_t *wk, ngx_str_t *key)
{
    return (ngx_goim_channel_t *) ngx_str_rbtree_lookup(&wk->channels, key,
                                      ngx_crc32_long(key->data, key->len));
}


ngx_int_t
ngx_goim_channel_accepts(ngx_goim_channel_t *ch, int32_t op)
{
    return ngx_goim_opset_has(&ch->accepts, op);
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

    rc = ngx_goim_comet_output_enqueue(ch, msg, 0);

    ngx_goim_comet_msg_release(msg);

    if (rc == NGX_DECLINED) {
        /* goim closes a client whose requests outrun its replies */
        ch->worker->stats->bad_input++;
        ngx_goim_channel_close(ch, "request flood: output queue full");
        return NGX_ERROR;
    }

    if (rc == NGX_ERROR) {
        ngx_goim_channel_close(ch, "out of memory");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_goim_channel_write_handler(ngx_event_t *wev)
{
    ngx_connection_t         *c;
    ngx_goim_channel_t       *ch;
    ngx_goim_comet_worker_t  *wk;

    c = wev->data;
    ch = ngx_goim_channel_from_connection(c);
    wk = ch->worker;

    if (ch->state == NGX_GOIM_CHANNEL_CLOSED
        || ch->state == NGX_GOIM_CHANNEL_MOVING || ch->adopting)
    {
        return;
    }

    if (ch->poll) {
        /* no socket: what was queued goes to the poll held, if any */
        ngx_goim_comet_poll_flush(ch);
        return;
    }

    if (ngx_goim_comet_output_flush(ch) == NGX_ERROR) {
        ngx_goim_channel_close(ch, "write failed");
    }

    /* a fan-out is a run of these: let other workers' records in */
    if (wk->poll) {
        wk->poll(wk);
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

        /* an SSE request or a poll's open still to be answered */
        ngx_goim_channel_fail(ch,
                              ngx_strcmp(reason, "handshake timed out") == 0
                              ? 504 : 503,
                              &(ngx_str_t) { ngx_strlen(reason),
                                             (u_char *) reason });
    }

    ngx_goim_channel_cleanup(ch);

    ch->finalize(ch);
}


static void
ngx_goim_channel_cleanup(void *data)
{
    ngx_goim_channel_t *ch = data;

    Goim__DisconnectReq  req = GOIM__DISCONNECT_REQ__INIT;

    if (ch->state == NGX_GOIM_CHANNEL_CLOSED) {
        return;
    }

    ch->state = NGX_GOIM_CHANNEL_CLOSED;
    ngx_queue_remove(&ch->queue);

    if (ch->drain && ch->drain->timer_set) {
        ngx_del_timer(ch->drain);
    }

    if (ch->poll) {
        ch->worker->stats->conns_poll--;
        ngx_goim_comet_poll_close(ch);

    } else if (ch->sse) {
        ch->worker->stats->conns_sse--;

    } else if (ch->ws) {
        ch->worker->stats->conns_ws--;

    } else {
        ch->worker->stats->conns_tcp--;
    }

    if (ch->call) {
        ngx_goim_rpc_cancel(ch->call);
        ch->call = NULL;
    }

    if (ch->registered) {
        ngx_goim_channel_unregister(ch);

        if (!ch->kicked && !ch->moved && !ch->worker->exiting) {
            req.mid = ch->mid;
            req.key = (char *) ch->node.str.data;
            req.server = (char *) ch->worker->conf->id.data;

            (void) ngx_goim_rpc_call(ch->worker->logic_peer,
                                     GOIM__METHOD__LOGIC_DISCONNECT,
                                     &req.base, ch->worker->conf->rpc_timeout,
                                     ngx_goim_channel_rpc_logged, NULL);
        }
    }

    ngx_goim_comet_output_free(ch);

    if (ch->in) {
        ngx_free(ch->in);
        ch->in = NULL;
    }

    if (ch->frag) {
        ngx_free(ch->frag);
        ch->frag = NULL;
    }

    ngx_goim_room_leave(ch);

    ngx_goim_opset_free(&ch->accepts);
    ngx_goim_opset_free(&ch->allowed_ops);

    /* in c->pool */
    ch->allowed_rooms = NULL;
    ch->nallowed_rooms = 0;
}


/* out of the worker's and the shared key tables; no word to logic */

static void
ngx_goim_channel_unregister(ngx_goim_channel_t *ch)
{
    /* first: ngx_rbtree_delete() zeroes the node's key, the hash */
    ngx_goim_comet_tables_key_del(ch->worker, ch);
    ngx_rbtree_delete(&ch->worker->channels, &ch->node.node);
    ch->registered = 0;
    ch->worker->stats->online--;
}


static void
ngx_goim_channel_rpc_logged(void *data, ngx_goim_rpc_result_t *res)
{
    if (res->status) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim comet: logic call failed: %V", &res->message);
    }
}


/*
 * The reload hand-off's side of a channel (ngx_goim_comet_handoff.c moves
 * the connection): its state written out by value, so that a process of
 * the next configuration generation can go on with it, and read back
 * there.  The record, then its variable parts in this order: the key, the
 * room, accepts and allowed operations (int32 each), the allowed rooms
 * (a uint32 length before each), the input not yet parsed, a WebSocket
 * message's fragments so far, and the queued output, each piece the bytes
 * still to be written (a uint32 length before each).
 */

typedef struct {
    uint32_t                   state;         /* HANDSHAKE or ONLINE */
    uint32_t                   flags;
    int64_t                    mid;
    uint32_t                   deadline;      /* ms left: heartbeat or
                                                 handshake */
    uint32_t                   heartbeat;
    uint32_t                   renew;         /* ms to the renewal */
    uint32_t                   key_len;
    uint32_t                   room_len;
    uint32_t                   naccepts;
    uint32_t                   nallowed_ops;
    uint32_t                   nallowed_rooms;
    uint32_t                   in_len;
    uint32_t                   frag_len;
    uint32_t                   nout;
    uint32_t                   reserved;
} ngx_goim_channel_record_t;


#define NGX_GOIM_CHANNEL_RECORD_RESTRICTED  0x01
#define NGX_GOIM_CHANNEL_RECORD_FRAG        0x02
#define NGX_GOIM_CHANNEL_RECORD_ACKS        0x04
#define NGX_GOIM_CHANNEL_RECORD_POSITIONS   0x08
#define NGX_GOIM_CHANNEL_RECORD_DEFLATE     0x10   /* negotiated */
#define NGX_GOIM_CHANNEL_RECORD_FRAG_DEFLATED  0x20


/* a plain connection between two packets or before its auth; not TLS */

ngx_uint_t
ngx_goim_channel_movable(ngx_goim_channel_t *ch)
{
    if (ch->state != NGX_GOIM_CHANNEL_HANDSHAKE
        && ch->state != NGX_GOIM_CHANNEL_ONLINE)
    {
        return 0;
    }

    if (ch->drain) {
        return 0;
    }

    if (ch->sse) {
        /* closed instead: EventSource comes back with its Last-Event-ID */
        return 0;
    }

#if (NGX_SSL)
    if (ch->connection->ssl) {
        /* the TLS session is in this process's memory */
        return 0;
    }
#endif

    return 1;
}


size_t
ngx_goim_channel_export_size(ngx_goim_channel_t *ch)
{
    size_t                 size;
    ngx_uint_t             i;
    ngx_goim_comet_out_t  *out;

    size = sizeof(ngx_goim_channel_record_t)
           + ch->node.str.len
           + (ch->room ? ch->room->node.str.len : 0)
           + (ch->accepts.nelts + ch->allowed_ops.nelts) * sizeof(int32_t)
           + ch->in_len + ch->frag_len;

    for (i = 0; i < ch->nallowed_rooms; i++) {
        size += sizeof(uint32_t) + ch->allowed_rooms[i].len;
    }

    for (out = ch->out; out; out = out->next) {
        size += sizeof(uint32_t) + (out->last - out->pos);
    }

    return size;
}


/*
 * Writes the record at p (export_size() bytes) and stops the channel
 * where it is: from now on it reads, writes and times nothing, until the
 * new process has it (ngx_goim_channel_moved()) or refuses it.
 */

u_char *
ngx_goim_channel_export(ngx_goim_channel_t *ch, u_char *p)
{
    uint32_t                    n;
    ngx_uint_t                  i;
    ngx_msec_t                  now;
    ngx_event_t                *rev;
    ngx_goim_comet_out_t       *out;
    ngx_goim_channel_record_t   rec;

    rev = ch->connection->read;
    now = ngx_current_msec;

    ngx_memzero(&rec, sizeof(ngx_goim_channel_record_t));

    rec.state = ch->state;
    rec.mid = ch->mid;
    rec.heartbeat = (uint32_t) ch->heartbeat;

    if (rev->timer_set) {
        rec.deadline = (uint32_t) ((ngx_msec_int_t) (rev->timer.key - now) > 0
                                   ? rev->timer.key - now : 1);
    }

    if (ch->state == NGX_GOIM_CHANNEL_ONLINE) {
        rec.renew = (uint32_t) ((ngx_msec_int_t) (ch->renew_at - now) > 0
                                ? ch->renew_at - now : 0);
    }

    rec.flags = (ch->restricted ? NGX_GOIM_CHANNEL_RECORD_RESTRICTED : 0)
                | (ch->frag ? NGX_GOIM_CHANNEL_RECORD_FRAG : 0)
                | (ch->acks ? NGX_GOIM_CHANNEL_RECORD_ACKS : 0)
                | (ch->positions ? NGX_GOIM_CHANNEL_RECORD_POSITIONS : 0)
                | (ch->deflate ? NGX_GOIM_CHANNEL_RECORD_DEFLATE : 0)
                | (ch->frag_deflated ? NGX_GOIM_CHANNEL_RECORD_FRAG_DEFLATED
                                     : 0);
    rec.key_len = (uint32_t) ch->node.str.len;
    rec.room_len = (uint32_t) (ch->room ? ch->room->node.str.len : 0);
    rec.naccepts = (uint32_t) ch->accepts.nelts;
    rec.nallowed_ops = (uint32_t) ch->allowed_ops.nelts;
    rec.nallowed_rooms = (uint32_t) ch->nallowed_rooms;
    rec.in_len = (uint32_t) ch->in_len;
    rec.frag_len = (uint32_t) ch->frag_len;

    for (out = ch->out; out; out = out->next) {
        rec.nout++;
    }

    p = ngx_cpymem(p, &rec, sizeof(ngx_goim_channel_record_t));
    p = ngx_cpymem(p, ch->node.str.data, rec.key_len);

    if (ch->room) {
        p = ngx_cpymem(p, ch->room->node.str.data, rec.room_len);
    }

    p = ngx_cpymem(p, ch->accepts.elts, rec.naccepts * sizeof(int32_t));
    p = ngx_cpymem(p, ch->allowed_ops.elts,
                   rec.nallowed_ops * sizeof(int32_t));

    for (i = 0; i < ch->nallowed_rooms; i++) {
        n = (uint32_t) ch->allowed_rooms[i].len;
        p = ngx_cpymem(p, &n, sizeof(uint32_t));
        p = ngx_cpymem(p, ch->allowed_rooms[i].data, n);
    }

    p = ngx_cpymem(p, ch->in, ch->in_len);
    p = ngx_cpymem(p, ch->frag, ch->frag_len);

    for (out = ch->out; out; out = out->next) {
        n = (uint32_t) (out->last - out->pos);
        p = ngx_cpymem(p, &n, sizeof(uint32_t));
        p = ngx_cpymem(p, out->pos, n);
    }

    ch->moving_from = ch->state;
    ch->state = NGX_GOIM_CHANNEL_MOVING;

    return p;
}


/*
 * The new process has the connection: it goes here without a word to the
 * client or to logic (the session lives on), and the process's copy of
 * the descriptor is closed by the transport's finalize().
 */

void
ngx_goim_channel_moved(ngx_goim_channel_t *ch)
{
    ch->moved = 1;
    ch->state = ch->moving_from;

    ngx_goim_channel_cleanup(ch);

    ch->finalize(ch);
}


/*
 * Closes a connection the hand-off does not take (TLS, refused, out of
 * time) as a quitting worker does, now or after delay (a non-cancelable
 * timer: the worker stays until it has gone).  WebSocket clients get
 * 1001, going away.
 */

void
ngx_goim_channel_drain(ngx_goim_channel_t *ch, ngx_msec_t delay)
{
    ngx_event_t  *ev;

    if (ch->state == NGX_GOIM_CHANNEL_MOVING) {
        ch->state = ch->moving_from;
    }

    if (ch->poll) {
        /* no client to spread: its next poll finds it gone at once */
        delay = 0;
    }

    if (ch->adopting) {
        /* adopted by a worker that quits too late to hand it on */
        ch->adopting = 0;

        if (ch->kicked) {
            ngx_goim_channel_close(ch, "kicked by a newer connection with "
                                   "the same key");
            return;
        }
    }

    if (delay) {
        ev = ngx_pcalloc(ch->connection->pool, sizeof(ngx_event_t));

        if (ev) {
            ev->handler = ngx_goim_channel_drain_handler;
            ev->data = ch;
            ev->log = ch->connection->log;
            ev->cancelable = 0;

            ch->drain = ev;
            ngx_add_timer(ev, delay);
            return;
        }
    }

    ngx_goim_channel_going_away(ch);
}


/* today's shutdown for one client: WebSocket ones get 1001 */

static void
ngx_goim_channel_going_away(ngx_goim_channel_t *ch)
{
    if (ch->ws) {
        ngx_goim_channel_ws_fail(ch, GOIM_WS_CLOSE_GOING_AWAY,
                                 "worker is shutting down");

    } else {
        ngx_goim_channel_close(ch, "worker is shutting down");
    }
}


static void
ngx_goim_channel_drain_handler(ngx_event_t *ev)
{
    ngx_goim_channel_t *ch = ev->data;

    /* not again from the read handler's c->close */
    ch->connection->close = 0;

    ngx_goim_channel_going_away(ch);
}


#define ngx_goim_channel_take(p, last, n)                                    \
    ((size_t) ((last) - (p)) < (size_t) (n) ? NULL : ((p) += (n), (p) - (n)))


/* a piece with its uint32 length before it: its n bytes, or NULL */

static u_char *
ngx_goim_channel_take_piece(u_char **p, u_char *last, uint32_t *n)
{
    u_char  *q;

    q = ngx_goim_channel_take(*p, last, sizeof(uint32_t));
    if (q == NULL) {
        return NULL;
    }

    ngx_memcpy(n, q, sizeof(uint32_t));

    return ngx_goim_channel_take(*p, last, *n);
}

/*
 * A channel from a record another process wrote, on connection c, with
 * this process's configuration conf.  It is registered (the key and room
 * tables, the worker's channels) but not started: the hand-off first
 * tells the old process it has it (ngx_goim_channel_resume() then).
 * NULL: a bad record or no memory; nothing is left behind but what the
 * connection's pool cleanup takes back.
 */

ngx_goim_channel_t *
ngx_goim_channel_adopt(ngx_connection_t *c, ngx_goim_channel_conf_t *conf,
    ngx_uint_t ws, u_char *p, size_t len,
    void (*finalize)(ngx_goim_channel_t *ch), ngx_msec_t *deadline)
{
    u_char                     *last, *q, *key, *room;
    size_t                      cap;
    uint32_t                    i, n, hash;
    ngx_int_t                   rc;
    ngx_str_t                   name;
    ngx_uint_t                  max;
    ngx_goim_channel_t         *ch, *old;
    ngx_goim_comet_msg_t       *msg;
    ngx_goim_channel_record_t   rec;
    int32_t                    *accepts, *allowed;

    last = p + len;

    q = ngx_goim_channel_take(p, last, sizeof(ngx_goim_channel_record_t));
    if (q == NULL) {
        return NULL;
    }

    ngx_memcpy(&rec, q, sizeof(ngx_goim_channel_record_t));

    if ((rec.state != NGX_GOIM_CHANNEL_HANDSHAKE
         && rec.state != NGX_GOIM_CHANNEL_ONLINE)
        || rec.key_len > 4096 || rec.room_len > 4096
        || rec.naccepts > 65536 || rec.nallowed_ops > 65536)
    {
        return NULL;
    }

    key = ngx_goim_channel_take(p, last, rec.key_len);
    room = ngx_goim_channel_take(p, last, rec.room_len);
    accepts = (int32_t *) ngx_goim_channel_take(p, last,
                                          rec.naccepts * sizeof(int32_t));
    allowed = (int32_t *) ngx_goim_channel_take(p, last,
                                          rec.nallowed_ops * sizeof(int32_t));

    if (key == NULL || room == NULL || accepts == NULL || allowed == NULL) {
        return NULL;
    }

    ch = ngx_goim_channel_create(c, conf, ws, finalize, NULL);
    if (ch == NULL) {
        return NULL;
    }

    c->data = ch;
    c->idle = 1;
    c->read->handler = ngx_goim_channel_read_handler;
    c->write->handler = ngx_goim_channel_write_handler;

    /* the state the client built stays, whatever this conf's bound is */
    max = ngx_max(conf->max_accepts, ngx_max(rec.naccepts, rec.nallowed_ops));

    if (ngx_goim_opset_init(&ch->accepts, accepts, rec.naccepts, max, c->log)
        != NGX_OK)
    {
        goto failed;
    }

    ch->acks = (rec.flags & NGX_GOIM_CHANNEL_RECORD_ACKS) ? 1 : 0;
    ch->positions = (rec.flags & NGX_GOIM_CHANNEL_RECORD_POSITIONS) ? 1 : 0;

    /*
     * What the client negotiated stays with the connection: it may send
     * compressed frames, and gets them while this conf has deflate on.
     */
    ch->deflate = (ws && (rec.flags & NGX_GOIM_CHANNEL_RECORD_DEFLATE)) ? 1 : 0;
    ch->frag_deflated = (ch->deflate
                         && (rec.flags & NGX_GOIM_CHANNEL_RECORD_FRAG_DEFLATED))
                        ? 1 : 0;

    if (rec.flags & NGX_GOIM_CHANNEL_RECORD_RESTRICTED) {
        if (ngx_goim_opset_init(&ch->allowed_ops, allowed, rec.nallowed_ops,
                                max, c->log)
            != NGX_OK)
        {
            goto failed;
        }

        ch->restricted = 1;
    }

    if (rec.nallowed_rooms) {
        if (rec.nallowed_rooms > 65536) {
            goto failed;
        }

        ch->allowed_rooms = ngx_palloc(c->pool,
                                       rec.nallowed_rooms * sizeof(ngx_str_t));
        if (ch->allowed_rooms == NULL) {
            goto failed;
        }

        for (i = 0; i < rec.nallowed_rooms; i++) {
            q = ngx_goim_channel_take_piece(&p, last, &n);
            if (q == NULL) {
                goto failed;
            }

            ch->allowed_rooms[i].data = ngx_pnalloc(c->pool, n ? n : 1);
            if (ch->allowed_rooms[i].data == NULL) {
                goto failed;
            }

            ngx_memcpy(ch->allowed_rooms[i].data, q, n);
            ch->allowed_rooms[i].len = n;
        }

        ch->nallowed_rooms = rec.nallowed_rooms;
    }

    /* input and fragments: room for what came and for this conf's packet */

    q = ngx_goim_channel_take(p, last, rec.in_len);
    if (q == NULL) {
        goto failed;
    }

    if (rec.in_len) {
        cap = ngx_max(ngx_goim_channel_in_size(ch), rec.in_len);

        ch->in = ngx_alloc(cap, c->log);
        if (ch->in == NULL) {
            goto failed;
        }

        ngx_memcpy(ch->in, q, rec.in_len);
        ch->in_len = rec.in_len;
    }

    q = ngx_goim_channel_take(p, last, rec.frag_len);
    if (q == NULL) {
        goto failed;
    }

    if (rec.flags & NGX_GOIM_CHANNEL_RECORD_FRAG) {
        cap = ngx_max(GOIM_HEADER_LEN + conf->max_body, rec.frag_len);

        ch->frag = ngx_alloc(cap ? cap : 1, c->log);
        if (ch->frag == NULL) {
            goto failed;
        }

        ngx_memcpy(ch->frag, q, rec.frag_len);
        ch->frag_len = rec.frag_len;
    }

    /* the output, each piece already framed for the wire */

    for (i = 0; i < rec.nout; i++) {
        q = ngx_goim_channel_take_piece(&p, last, &n);
        if (q == NULL) {
            goto failed;
        }

        msg = ngx_goim_comet_msg_create(n, c->log);
        if (msg == NULL) {
            goto failed;
        }

        ngx_memcpy(msg->data, q, n);
        msg->frame = 1;

        rc = ngx_goim_comet_output_enqueue(ch, msg, 1);

        ngx_goim_comet_msg_release(msg);

        if (rc != NGX_OK) {
            goto failed;
        }
    }

    if (p != last) {
        goto failed;
    }

    *deadline = rec.deadline;
    ch->heartbeat = rec.heartbeat ? rec.heartbeat : 1000;
    ch->mid = rec.mid;

    if (rec.state == NGX_GOIM_CHANNEL_HANDSHAKE) {
        ch->adopting = 1;
        return ch;
    }

    /* as at auth: the room, then the key, in this process's tables */

    name.data = room;
    name.len = rec.room_len;

    if (ngx_goim_room_join(ch, &name) != NGX_OK) {
        goto failed;
    }

    ch->renew_at = ngx_current_msec + rec.renew;

    ch->node.str.data = ngx_pnalloc(c->pool, rec.key_len + 1);
    if (ch->node.str.data == NULL) {
        goto failed;
    }

    ngx_memcpy(ch->node.str.data, key, rec.key_len);
    ch->node.str.data[rec.key_len] = '\0';
    ch->node.str.len = rec.key_len;

    hash = ngx_crc32_long(ch->node.str.data, ch->node.str.len);
    ch->node.node.key = hash;
    ch->id = ((uint64_t) ch->worker->worker << 48) | ++ch->worker->next_id;

    if (ngx_goim_comet_tables_key_set(ch->worker, ch) != NGX_OK) {
        goto failed;
    }

    old = (ngx_goim_channel_t *) ngx_str_rbtree_lookup(&ch->worker->channels,
                                                       &ch->node.str, hash);
    if (old) {
        ngx_goim_channel_kick(old);
    }

    ngx_rbtree_insert(&ch->worker->channels, &ch->node.node);
    ch->registered = 1;
    ch->state = NGX_GOIM_CHANNEL_ONLINE;
    ch->worker->stats->online++;
    ch->adopting = 1;

    return ch;

failed:

    /* nothing was said to anyone: the old process drains the client */
    ch->moved = 1;
    ngx_goim_channel_cleanup(ch);

    return NULL;
}


/*
 * An adopted channel starts: its deadline (what was left of it, or this
 * conf's handshake timeout), what it had queued, and a read of what the
 * client sent while nobody served the socket.
 */

void
ngx_goim_channel_resume(ngx_goim_channel_t *ch, ngx_msec_t deadline)
{
    ngx_connection_t  *c;

    c = ch->connection;

    ch->adopting = 0;

    if (ch->kicked) {
        /* a client with its key came in while it was on its way */
        ngx_goim_channel_close(ch, "kicked by a newer connection with the "
                               "same key");
        return;
    }

    if (deadline == 0) {
        deadline = (ch->state == NGX_GOIM_CHANNEL_ONLINE)
                   ? ch->heartbeat : ch->conf->handshake_timeout;
    }

    ngx_add_timer(c->read, deadline);

    c->write->ready = 1;

    if (ch->out) {
        ngx_goim_channel_write_handler(c->write);

        if (ch->state == NGX_GOIM_CHANNEL_CLOSED) {
            return;
        }
    }

    if (ch->in_len && ngx_goim_channel_process(ch) != NGX_OK) {
        return;
    }

    c->read->ready = 1;
    c->read->available = -1;

    ngx_goim_channel_read_handler(c->read);
}
