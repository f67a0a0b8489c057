/*
 * Copyright (C) ngx_goim authors
 */


/*
 * A request's calls to the routers: one fanout per request (logic's core
 * ngx_goim_logic_fanout.c), timed into the router RPC histogram; every
 * endpoint family that asks the routers goes through here.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


ngx_int_t
ngx_http_goim_logic_fanout(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done)
{
    if (ctx->worker->nrouters == 0) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "no goim_logic_router configured");
        return NGX_ERROR;
    }

    ctx->rpc_start = ngx_current_msec;

    ctx->fanout = ngx_goim_logic_fanout_create(ctx->worker, each, done, ctx);
    if (ctx->fanout == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the same call to every router, answers merged by each/done */

ngx_int_t
ngx_http_goim_logic_ask_routers(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done,
    int32_t method, const ProtobufCMessage *req)
{
    if (ngx_http_goim_logic_fanout(ctx, each, done) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_goim_logic_fanout_call_all(ctx->fanout, method, req) != NGX_OK) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_goim_logic_rpc_done(ngx_http_goim_logic_ctx_t *ctx, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_goim_logic_stats_rpc(ctx->worker->stats, NGX_GOIM_LOGIC_RPC_ROUTER,
                             ctx->rpc_start, status);

    if (status) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "router %V", message);
        return NGX_ERROR;
    }

    return NGX_OK;
}
