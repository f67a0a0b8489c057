
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_comet.h"
#include "ngx_http_goim_comet.h"


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

ngx_int_t
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

ngx_int_t
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
