
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


/*
 * GET /goim/nodes/weighted and /goim/nodes/instances: the comets router
 * knows, weighted by logic's core (ngx_goim_logic_nodes.c), in goim's JSON.
 */


static void ngx_http_goim_logic_comets_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_weighted_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_instances_done(void *data, ngx_int_t status,
    ngx_str_t *message);


ngx_int_t
ngx_http_goim_logic_nodes_weighted(ngx_http_goim_logic_ctx_t *ctx)
{
    return ngx_http_goim_logic_comet_list(ctx,
                                          ngx_http_goim_logic_weighted_done);
}


ngx_int_t
ngx_http_goim_logic_nodes_instances(ngx_http_goim_logic_ctx_t *ctx)
{
    return ngx_http_goim_logic_comet_list(ctx,
                                          ngx_http_goim_logic_instances_done);
}


ngx_int_t
ngx_http_goim_logic_comet_list(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_done_pt done)
{
    Goim__CometListReq  req = GOIM__COMET_LIST_REQ__INIT;

    ctx->comets = ngx_array_create(ctx->request->pool, 4,
                                   sizeof(Goim__CometInfo));
    if (ctx->comets == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    return ngx_http_goim_logic_ask_routers(ctx, ngx_http_goim_logic_comets_each,
                                           done,
                                           GOIM__METHOD__ROUTER_COMET_LIST,
                                           &req.base);
}


static void
ngx_http_goim_logic_comets_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    (void) ngx_goim_logic_comets_merge(ctx->comets, ctx->request->pool,
                                       (Goim__CometListReply *) res->reply);
}


static void
ngx_http_goim_logic_weighted_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    char                            **node;
    yajl_gen                          g;
    ngx_str_t                         platform, region;
    ngx_uint_t                        i, web;
    ngx_array_t                       nodes;
    ngx_http_request_t               *r;
    ngx_goim_logic_conf_t            *lcf;
    ngx_goim_logic_nodes_conf_t      *nc;
    ngx_http_goim_logic_main_conf_t  *lmcf;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    r = ctx->request;
    lcf = ctx->worker->conf;
    lmcf = ngx_http_get_module_main_conf(r, ngx_http_goim_logic_module);
    nc = lcf->nodes;

    region.len = 0;

    if (lmcf->client_region
        && ngx_http_complex_value(r, lmcf->client_region, &region) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    web = ngx_http_arg(r, (u_char *) "platform", 8, &platform) == NGX_OK
          && platform.len == 3 && ngx_strncmp(platform.data, "web", 3) == 0;

    if (ngx_array_init(&nodes, r->pool, 8, sizeof(char *)) != NGX_OK
        || ngx_goim_logic_nodes_pick(ctx->worker, ctx->comets, &region, web,
                                     r->pool, &nodes)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    g = ngx_http_goim_logic_data_start(ctx);
    if (g == NULL) {
        return;
    }

    /* goim's NodesReply; zero values are left out, as goim's HEAD does */

    yajl_gen_map_open(g);

    if (nc->domain.len) {
        ngx_http_goim_logic_json_key(g, "domain");
        yajl_gen_string(g, nc->domain.data, nc->domain.len);
    }

    if (nc->tcp_port) {
        ngx_http_goim_logic_json_key(g, "tcp_port");
        yajl_gen_integer(g, nc->tcp_port);
    }

    if (nc->ws_port) {
        ngx_http_goim_logic_json_key(g, "ws_port");
        yajl_gen_integer(g, nc->ws_port);
    }

    if (nc->wss_port) {
        ngx_http_goim_logic_json_key(g, "wss_port");
        yajl_gen_integer(g, nc->wss_port);
    }

    ngx_http_goim_logic_json_key(g, "heartbeat");
    yajl_gen_integer(g, lcf->heartbeat / 1000);

    ngx_http_goim_logic_json_key(g, "nodes");
    yajl_gen_array_open(g);

    node = nodes.elts;

    for (i = 0; i < nodes.nelts; i++) {
        ngx_http_goim_logic_json_str(g, node[i]);
    }

    yajl_gen_array_close(g);

    /* factor and jitter as written (plain decimals, checked at load) */

    ngx_http_goim_logic_json_key(g, "backoff");
    yajl_gen_map_open(g);
    ngx_http_goim_logic_json_key(g, "max_delay");
    yajl_gen_integer(g, nc->max_delay);
    ngx_http_goim_logic_json_key(g, "base_delay");
    yajl_gen_integer(g, nc->base_delay);
    ngx_http_goim_logic_json_key(g, "factor");
    yajl_gen_number(g, (char *) nc->factor.data, nc->factor.len);
    ngx_http_goim_logic_json_key(g, "jitter");
    yajl_gen_number(g, (char *) nc->jitter.data, nc->jitter.len);
    yajl_gen_map_close(g);

    ngx_http_goim_logic_json_key(g, "heartbeat_max");
    yajl_gen_integer(g, lcf->heartbeat_max);

    yajl_gen_map_close(g);

    ngx_http_goim_logic_data_finish(ctx);
}


/* goim's discovery instances, from the comet registry */

static void
ngx_http_goim_logic_instances_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    u_char              *p, num[NGX_INT64_LEN];
    size_t               k, len;
    yajl_gen             g;
    ngx_uint_t           i;
    Goim__CometInfo     *c;
    ngx_http_request_t  *r;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    r = ctx->request;

    g = ngx_http_goim_logic_data_start(ctx);
    if (g == NULL) {
        return;
    }

    c = ctx->comets->elts;

    yajl_gen_array_open(g);

    for (i = 0; i < ctx->comets->nelts; i++) {
        yajl_gen_map_open(g);

        ngx_http_goim_logic_json_key(g, "region");
        ngx_http_goim_logic_json_str(g, c[i].region);
        ngx_http_goim_logic_json_key(g, "zone");
        ngx_http_goim_logic_json_str(g, "");
        ngx_http_goim_logic_json_key(g, "env");
        ngx_http_goim_logic_json_str(g, "");
        ngx_http_goim_logic_json_key(g, "appid");
        ngx_http_goim_logic_json_str(g, "goim.comet");
        ngx_http_goim_logic_json_key(g, "hostname");
        ngx_http_goim_logic_json_str(g, c[i].id);

        ngx_http_goim_logic_json_key(g, "addrs");
        yajl_gen_array_open(g);

        if (c[i].push_addr[0]) {
            len = ngx_strlen(c[i].push_addr);

            p = ngx_pnalloc(r->pool, sizeof("grpc://") - 1 + len);
            if (p == NULL) {
                ctx->out.failed = 1;
                break;
            }

            ngx_memcpy(ngx_cpymem(p, "grpc://", sizeof("grpc://") - 1),
                       c[i].push_addr, len);
            yajl_gen_string(g, p, sizeof("grpc://") - 1 + len);
        }

        yajl_gen_array_close(g);

        ngx_http_goim_logic_json_key(g, "version");
        ngx_http_goim_logic_json_str(g, "");
        ngx_http_goim_logic_json_key(g, "latest_timestamp");
        yajl_gen_integer(g, c[i].updated_ms * 1000000);

        /* goim's metadata values are all strings */

        ngx_http_goim_logic_json_key(g, "metadata");
        yajl_gen_map_open(g);

        ngx_http_goim_logic_json_key(g, "addrs");

        len = 0;

        for (k = 0; k < c[i].n_tcp_addrs; k++) {
            len += ngx_strlen(c[i].tcp_addrs[k]) + 1;
        }

        p = ngx_pnalloc(r->pool, len + 1);
        if (p == NULL) {
            ctx->out.failed = 1;
            break;
        }

        len = 0;

        for (k = 0; k < c[i].n_tcp_addrs; k++) {
            if (k) {
                p[len++] = ',';
            }

            len = ngx_cpymem(p + len, c[i].tcp_addrs[k],
                             ngx_strlen(c[i].tcp_addrs[k]))
                  - p;
        }

        yajl_gen_string(g, p, len);

        ngx_http_goim_logic_json_key(g, "conn_count");
        yajl_gen_string(g, num, ngx_sprintf(num, "%L", c[i].conn_count) - num);
        ngx_http_goim_logic_json_key(g, "ip_count");
        yajl_gen_string(g, num, ngx_sprintf(num, "%L", c[i].ip_count) - num);
        ngx_http_goim_logic_json_key(g, "offline");
        ngx_http_goim_logic_json_str(g, c[i].offline ? "true" : "false");
        ngx_http_goim_logic_json_key(g, "weight");
        yajl_gen_string(g, num, ngx_sprintf(num, "%D", c[i].weight) - num);

        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_http_goim_logic_data_finish(ctx);
}
