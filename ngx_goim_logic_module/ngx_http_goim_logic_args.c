
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


/*
 * What a push API request's arguments say, through libgoim's goim_args.c
 * (plain C, unit-tested and fuzzed): numbers, lists each value once, and
 * goim's room ids.
 */


/*
 * A list argument the endpoint cannot do without: NGX_OK with at least one
 * value, each once (goim_args.h); otherwise the request is answered here
 * (400 when it is missing).
 */

ngx_int_t
ngx_http_goim_logic_list_arg(ngx_http_goim_logic_ctx_t *ctx,
    const char *name, ngx_uint_t split, goim_args_list_t *list)
{
    void                *scratch;
    ngx_http_request_t  *r;

    r = ctx->request;

    scratch = ngx_palloc(r->pool, goim_args_list_size(r->args.len));
    if (scratch == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    goim_args_list((char *) r->args.data, r->args.len, name, split, scratch,
                   list);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "goim logic: %s: %uz values, %uz repeats ignored",
                   name, list->n, list->repeats);

    if (list->n == 0) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "%s is required", name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* NGX_OK: set; NGX_DECLINED: absent or empty; NGX_ERROR: not a number */

ngx_int_t
ngx_http_goim_logic_int_arg(ngx_http_request_t *r, const char *name,
    int64_t min, int64_t max, int64_t *value)
{
    ngx_str_t  arg;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &arg) != NGX_OK
        || arg.len == 0)
    {
        return NGX_DECLINED;
    }

    if (goim_args_int((char *) arg.data, arg.len, min, max, value) != 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* an argument the endpoint cannot do without: 400 when absent or empty */

ngx_int_t
ngx_http_goim_logic_str_arg(ngx_http_goim_logic_ctx_t *ctx, const char *name,
    ngx_str_t *value)
{
    if (ngx_http_arg(ctx->request, (u_char *) name, ngx_strlen(name), value)
        != NGX_OK
        || value->len == 0)
    {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "%s is required", name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* goim's room id: "<type>://<id>" */

char *
ngx_http_goim_logic_room_id(ngx_pool_t *pool, ngx_str_t *type, u_char *id,
    size_t len)
{
    u_char  *room, *p;

    room = ngx_pnalloc(pool, type->len + sizeof("://") + len);
    if (room == NULL) {
        return NULL;
    }

    p = ngx_cpymem(room, type->data, type->len);
    p = ngx_cpymem(p, "://", 3);
    p = ngx_cpymem(p, id, len);
    *p = '\0';

    return (char *) room;
}
