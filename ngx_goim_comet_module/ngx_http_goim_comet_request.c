
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_comet.h"
#include "ngx_http_goim_comet.h"


static ngx_int_t ngx_http_goim_comet_token(ngx_http_request_t *r,
    ngx_str_t *token);
static ngx_int_t ngx_http_goim_comet_last_id(ngx_http_request_t *r,
    ngx_str_t *id);


/*
 * What comet's http transports share of a request: a header by name (the
 * ones nginx does not keep), the goim token from a header, a cookie or
 * the query, the last event id to resume from, and answers of one buffer,
 * goim's JSON envelope among them.
 */


ngx_table_elt_t *
ngx_http_goim_comet_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* an answer of b's bytes, the last of the request */

ngx_int_t
ngx_http_goim_comet_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The header X-Goim-Token first (kept out of access logs, and a fetch()
 * client can set it), then the cookie goim_token (the same, for pages of
 * the same site), then the argument token (all EventSource can send
 * across sites), unescaped.  NGX_DECLINED: none.
 */

static ngx_int_t
ngx_http_goim_comet_token(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char           *dst, *src;
    ngx_str_t         arg;
    ngx_table_elt_t  *h;

    h = ngx_http_goim_comet_header(r, "X-Goim-Token");

    if (h && h->value.len) {
        *token = h->value;
        return NGX_OK;
    }

    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies,
                                          &(ngx_str_t)
                                          ngx_string("goim_token"), &arg)
        != NGX_DECLINED
        || ngx_http_arg(r, (u_char *) "token", 5, &arg) == NGX_OK)
    {
        if (arg.len == 0) {
            return NGX_DECLINED;
        }

        dst = ngx_pnalloc(r->pool, arg.len);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        token->data = dst;
        src = arg.data;
        ngx_unescape_uri(&dst, &src, arg.len, 0);
        token->len = dst - token->data;

        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * EventSource's Last-Event-ID header on a reconnect, or the last_event_id
 * argument a new one passes (URL-escaped: encodeURIComponent); empty:
 * neither.
 */

static ngx_int_t
ngx_http_goim_comet_last_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char           *dst, *src;
    ngx_str_t         arg;
    ngx_table_elt_t  *h;

    h = ngx_http_goim_comet_header(r, "Last-Event-ID");

    if (h) {
        *id = h->value;
        return NGX_OK;
    }

    id->len = 0;

    if (ngx_http_arg(r, (u_char *) "last_event_id", 13, &arg) != NGX_OK
        || arg.len == 0)
    {
        return NGX_OK;
    }

    id->data = ngx_pnalloc(r->pool, arg.len);
    if (id->data == NULL) {
        return NGX_ERROR;
    }

    dst = id->data;
    src = arg.data;
    ngx_unescape_uri(&dst, &src, arg.len, 0);
    id->len = dst - id->data;

    return NGX_OK;
}


/*
 * What an SSE or long-poll subscription's request brings, checked: its
 * token made into the op 7 that authenticates it (on r's pool), and the
 * positions it resumes from (resume: Last-Event-ID or last_event_id was
 * given).  NGX_OK; or NGX_DECLINED, the request answered (401, 400) or
 * failed, and *rc what the handler returns.
 */

ngx_int_t
ngx_http_goim_comet_subscription(ngx_http_request_t *r, size_t max_body,
    ngx_str_t *auth, uint64_t *epoch, uint64_t *seq, ngx_uint_t *resume,
    ngx_int_t *rc)
{
    ngx_int_t  n;
    ngx_str_t  token, id;

    n = ngx_http_goim_comet_token(r, &token);

    if (n == NGX_DECLINED) {
        *rc = ngx_http_goim_comet_json(r, NGX_HTTP_UNAUTHORIZED,
                                       "no token: an X-Goim-Token header, "
                                       "a goim_token cookie or a token "
                                       "argument");
        return NGX_DECLINED;
    }

    if (n != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    if (token.len > max_body) {
        *rc = ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                       "token longer than "
                                       "goim_comet_max_body");
        return NGX_DECLINED;
    }

    /* EventSource's own on a reconnect; the argument for a new one */
    if (ngx_http_goim_comet_last_id(r, &id) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    *resume = 0;

    if (id.len) {
        if (ngx_goim_comet_events_last_id(&id, epoch, seq) != NGX_OK) {
            *rc = ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                           "Last-Event-ID is not "
                                           "\"EPOCH:SEQ/EPOCH:SEQ\" (a side "
                                           "may be empty)");
            return NGX_DECLINED;
        }

        *resume = 1;
    }

    auth->len = GOIM_HEADER_LEN + token.len;
    auth->data = ngx_pnalloc(r->pool, auth->len);
    if (auth->data == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DECLINED;
    }

    goim_packet_write(auth->data, 1, GOIM_OP_AUTH, 0, token.data, token.len);

    return NGX_OK;
}


/* goim's envelope: {"code":0,"message":""}, or -STATUS and the reason */

ngx_int_t
ngx_http_goim_comet_json(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    size_t       len;
    ngx_int_t    rc;
    ngx_buf_t   *b;

    if (r->request_body == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (message) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "goim comet: %V refused (%ui): %s", &r->uri, status,
                      message);
    }

    len = message ? ngx_strlen(message) : 0;

    b = ngx_create_temp_buf(r->pool, sizeof("{\"code\":-,\"message\":\"\"}\n")
                                     + NGX_INT_T_LEN + 2 * len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (message) {
        b->last = ngx_sprintf(b->last, "{\"code\":-%ui,\"message\":\"",
                              status);
        b->last = (u_char *) ngx_escape_json(b->last, (u_char *) message,
                                             len);
        b->last = ngx_cpymem(b->last, "\"}\n", 3);

    } else {
        b->last = ngx_cpymem(b->last, "{\"code\":0,\"message\":\"\"}\n",
                             sizeof("{\"code\":0,\"message\":\"\"}\n") - 1);
    }

    return ngx_http_goim_comet_send(r, status,
                                    &(ngx_str_t) ngx_string("application/json"),
                                    b);
}
