
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


/*
 * The SSE transport's own writes and reads, for the channel layer: the
 * HTTP answer before the events (or an HTTP error when the stream does not
 * start), the comment lines that keep proxies from timing the stream out,
 * and reading what a client sends after its request (nothing it means).
 * The events themselves are ngx_goim_comet_events.c's.
 */


#define NGX_GOIM_COMET_SSE_HEADER                                            \
    "HTTP/1.1 200 OK" CRLF                                                   \
    "Content-Type: text/event-stream" CRLF                                   \
    "Cache-Control: no-cache" CRLF                                           \
    "X-Accel-Buffering: no" CRLF                                             \
    "Connection: close" CRLF CRLF


/* the auth went through: the answer's head, before the first event */

ngx_int_t
ngx_goim_comet_sse_open(ngx_goim_channel_t *ch)
{
    ngx_int_t              rc;
    ngx_goim_comet_msg_t  *msg;

    msg = ngx_goim_comet_msg_create(sizeof(NGX_GOIM_COMET_SSE_HEADER) - 1,
                                    ch->connection->log);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(msg->data, NGX_GOIM_COMET_SSE_HEADER, msg->len);

    rc = ngx_goim_channel_enqueue_raw(ch, msg);

    ngx_goim_comet_msg_release(msg);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ch->sse->open = 1;

    return NGX_OK;
}


/*
 * The stream did not start (a bad token, logic unavailable): an HTTP
 * error with goim's JSON envelope, {"code":-403,"message":"..."}, and one
 * attempt to write it; the caller closes the channel.
 */

void
ngx_goim_comet_sse_fail(ngx_goim_channel_t *ch, ngx_uint_t status,
    ngx_str_t *reason)
{
    u_char                *p;
    size_t                 len, blen;
    const char            *line;
    ngx_goim_comet_msg_t  *msg;
    u_char                 body[sizeof("{\"code\":-,\"message\":\"\"}\n")
                                + NGX_INT_T_LEN + 6 * 256];

    if (ch->sse == NULL || ch->sse->open) {
        return;
    }

    ch->sse->open = 1;

    switch (status) {
    case 403:
        line = "403 Forbidden";
        break;
    case 504:
        line = "504 Gateway Timeout";
        break;
    case 503:
        line = "503 Service Unavailable";
        break;
    default:
        status = 500;
        line = "500 Internal Server Error";
        break;
    }

    len = ngx_min(reason->len, 256);

    p = ngx_sprintf(body, "{\"code\":-%ui,\"message\":\"", status);
    p = (u_char *) ngx_escape_json(p, reason->data, len);
    p = ngx_cpymem(p, "\"}\n", 3);
    blen = p - body;

    msg = ngx_goim_comet_msg_create(sizeof("HTTP/1.1 " CRLF
                                           "Content-Type: application/json"
                                           CRLF
                                           "Cache-Control: no-cache" CRLF
                                           "Connection: close" CRLF
                                           "Content-Length: " CRLF CRLF)
                                    + 32 + NGX_SIZE_T_LEN + blen,
                                    ch->connection->log);
    if (msg == NULL) {
        return;
    }

    p = ngx_sprintf(msg->data, "HTTP/1.1 %s" CRLF
                    "Content-Type: application/json" CRLF
                    "Cache-Control: no-cache" CRLF
                    "Connection: close" CRLF
                    "Content-Length: %uz" CRLF CRLF, line, blen);
    p = ngx_cpymem(p, body, blen);

    msg->len = p - msg->data;

    if (ngx_goim_channel_enqueue_raw(ch, msg) == NGX_OK) {
        (void) ngx_goim_comet_output_flush(ch);
    }

    ngx_goim_comet_msg_release(msg);
}


/*
 * A comment line, every goim_comet_sse_ping: proxies see the stream is
 * alive, and a client gone is found by the write failing.  NGX_DECLINED:
 * the queue is full (the client reads nothing).
 */

ngx_int_t
ngx_goim_comet_sse_ping(ngx_goim_channel_t *ch)
{
    ngx_int_t              rc;
    ngx_goim_comet_msg_t  *msg;

    if (ch->queued >= ch->conf->queue_size) {
        return NGX_DECLINED;
    }

    msg = ngx_goim_comet_msg_create(sizeof(":\n\n") - 1, ch->connection->log);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(msg->data, ":\n\n", 3);
    msg->frame = 1;

    rc = ngx_goim_comet_output_enqueue(ch, msg, 0);

    ngx_goim_comet_msg_release(msg);

    if (rc == NGX_OK) {
        ch->worker->stats->sse_pings++;
    }

    return rc;
}


/*
 * What the client sends after its request means nothing (EventSource
 * sends nothing): read and dropped, up to the socket's end.  NGX_OK: the
 * socket is drained; NGX_DONE: the client closed; NGX_ERROR: it failed.
 */

ngx_int_t
ngx_goim_comet_sse_discard(ngx_goim_channel_t *ch)
{
    ssize_t            n;
    ngx_connection_t  *c;
    u_char             buf[512];

    c = ch->connection;

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            return NGX_OK;
        }

        if (n == 0) {
            return NGX_DONE;
        }

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }
    }
}
