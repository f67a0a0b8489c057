
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


/*
 * The push API's answers: goim's envelope {"code":0,"message":"",
 * "data":...} (v1: {"ret":1,...}), every JSON text written by yajl's
 * generator into a buffer that grows in r->pool.  yajl escapes strings as
 * ngx_escape_json() does (\uXXXX upper case), so the bytes are the ones
 * the hand-written replies had.
 */


static ngx_int_t ngx_http_goim_logic_vrespond(ngx_http_request_t *r,
    ngx_uint_t status, ngx_int_t code, const char *fmt, va_list args);
static ngx_int_t ngx_http_goim_logic_out_json(ngx_http_goim_logic_out_t *out,
    ngx_pool_t *pool, size_t size);
static void ngx_http_goim_logic_out_append(void *data, const char *s,
    size_t len);
static u_char *ngx_http_goim_logic_out_reserve(
    ngx_http_goim_logic_out_t *out, size_t len);
static void ngx_http_goim_logic_out_cleanup(void *data);


static ngx_str_t  ngx_http_goim_logic_json_type =
    ngx_string("application/json");


ngx_int_t
ngx_http_goim_logic_respond(ngx_http_request_t *r, ngx_uint_t status,
    ngx_int_t code, const char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;

    va_start(args, fmt);
    rc = ngx_http_goim_logic_vrespond(r, status, code, fmt, args);
    va_end(args);

    return rc;
}


void
ngx_http_goim_logic_finish(ngx_http_goim_logic_ctx_t *ctx, ngx_uint_t status,
    ngx_int_t code, const char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;

    va_start(args, fmt);
    rc = ngx_http_goim_logic_vrespond(ctx->request, status, code, fmt, args);
    va_end(args);

    ngx_http_finalize_request(ctx->request, rc);
}


static ngx_int_t
ngx_http_goim_logic_vrespond(ngx_http_request_t *r, ngx_uint_t status,
    ngx_int_t code, const char *fmt, va_list args)
{
    u_char                          text[512], *p;
    size_t                          len;
    yajl_gen                        g;
    ngx_http_goim_logic_out_t       out;
    ngx_http_goim_logic_loc_conf_t *glcf;

    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    len = p - text;

    if (ngx_http_goim_logic_out_json(&out, r->pool, 64 + 2 * len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    g = out.gen;
    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_logic_module);

    yajl_gen_map_open(g);

    if (glcf->api == NGX_HTTP_GOIM_LOGIC_API_V1) {

        /* goim v1: {"ret":1} or {"ret":65535}; the reason is ours */

        ngx_http_goim_logic_json_key(g, "ret");
        yajl_gen_integer(g, code == 0 ? 1 : 65535);

        if (code) {
            ngx_http_goim_logic_json_key(g, "message");
            yajl_gen_string(g, text, len);
        }

    } else {
        ngx_http_goim_logic_json_key(g, "code");
        yajl_gen_integer(g, code);
        ngx_http_goim_logic_json_key(g, "message");
        yajl_gen_string(g, text, len);
    }

    yajl_gen_map_close(g);
    ngx_http_goim_logic_out_append(&out, "\n", 1);

    if (status >= NGX_HTTP_BAD_REQUEST) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "goim logic: %ui: %*s", status, len, text);
    }

    return ngx_http_goim_logic_send(r, status, &ngx_http_goim_logic_json_type,
                                    &out);
}


yajl_gen
ngx_http_goim_logic_data_start(ngx_http_goim_logic_ctx_t *ctx)
{
    yajl_gen  g;

    if (ngx_http_goim_logic_out_json(&ctx->out, ctx->request->pool, 512)
        != NGX_OK)
    {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    g = ctx->out.gen;

    yajl_gen_map_open(g);

    if (ctx->v1) {
        ngx_http_goim_logic_json_key(g, "ret");
        yajl_gen_integer(g, 1);

    } else {
        ngx_http_goim_logic_json_key(g, "code");
        yajl_gen_integer(g, 0);
        ngx_http_goim_logic_json_key(g, "message");
        ngx_http_goim_logic_json_str(g, "");
    }

    ngx_http_goim_logic_json_key(g, "data");

    return g;
}


void
ngx_http_goim_logic_data_finish(ngx_http_goim_logic_ctx_t *ctx)
{
    yajl_gen_map_close(ctx->out.gen);
    ngx_http_goim_logic_out_append(&ctx->out, "\n", 1);

    ngx_http_finalize_request(ctx->request,
                     ngx_http_goim_logic_send(ctx->request, NGX_HTTP_OK,
                                              &ngx_http_goim_logic_json_type,
                                              &ctx->out));
}


void
ngx_http_goim_logic_json_str(yajl_gen g, const char *s)
{
    if (s == NULL) {
        s = "";
    }

    yajl_gen_string(g, (const unsigned char *) s, ngx_strlen(s));
}


ngx_int_t
ngx_http_goim_logic_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_http_goim_logic_out_t *out)
{
    ngx_buf_t    *b;
    ngx_int_t     rc;
    ngx_chain_t   cl;

    if (out->failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = out->buf;
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

    cl.buf = b;
    cl.next = NULL;

    return ngx_http_output_filter(r, &cl);
}


ngx_int_t
ngx_http_goim_logic_out_init(ngx_http_goim_logic_out_t *out, ngx_pool_t *pool,
    size_t size)
{
    out->pool = pool;
    out->gen = NULL;
    out->failed = 0;
    out->buf = ngx_create_temp_buf(pool, size);

    return out->buf ? NGX_OK : NGX_ERROR;
}


/* out, and yajl's generator printing into it (freed with pool) */

static ngx_int_t
ngx_http_goim_logic_out_json(ngx_http_goim_logic_out_t *out, ngx_pool_t *pool,
    size_t size)
{
    ngx_pool_cleanup_t  *cln;

    if (ngx_http_goim_logic_out_init(out, pool, size) != NGX_OK) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    out->gen = yajl_gen_alloc(NULL);
    if (out->gen == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_goim_logic_out_cleanup;
    cln->data = out->gen;

    yajl_gen_config(out->gen, yajl_gen_print_callback,
                    ngx_http_goim_logic_out_append, out);

    return NGX_OK;
}


static void
ngx_http_goim_logic_out_cleanup(void *data)
{
    yajl_gen_free(data);
}


static u_char *
ngx_http_goim_logic_out_reserve(ngx_http_goim_logic_out_t *out, size_t len)
{
    size_t      size;
    ngx_buf_t  *b;

    if (out->failed) {
        return NULL;
    }

    if ((size_t) (out->buf->end - out->buf->last) >= len) {
        return out->buf->last;
    }

    size = 2 * (out->buf->end - out->buf->start) + len;

    b = ngx_create_temp_buf(out->pool, size);
    if (b == NULL) {
        out->failed = 1;
        return NULL;
    }

    b->last = ngx_cpymem(b->last, out->buf->pos,
                         out->buf->last - out->buf->pos);
    out->buf = b;

    return b->last;
}


/* yajl's print callback too */

static void
ngx_http_goim_logic_out_append(void *data, const char *s, size_t len)
{
    ngx_http_goim_logic_out_t *out = data;

    u_char  *p;

    p = ngx_http_goim_logic_out_reserve(out, len);
    if (p == NULL) {
        return;
    }

    out->buf->last = ngx_cpymem(p, s, len);
}


void
ngx_http_goim_logic_out_printf(ngx_http_goim_logic_out_t *out,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    /* every format here prints short: numbers and fixed text */

    p = ngx_http_goim_logic_out_reserve(out, 1024);
    if (p == NULL) {
        return;
    }

    va_start(args, fmt);
    out->buf->last = ngx_vslprintf(p, p + 1024, fmt, args);
    va_end(args);
}
