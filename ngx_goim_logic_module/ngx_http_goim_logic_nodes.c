
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>

#include "ngx_goim_logic.h"
#include "ngx_http_goim_logic.h"


/*
 * GET /goim/nodes/weighted and /goim/nodes/instances: the comets router
 * knows (every router gets every comet's renewals; the freshest copy of
 * each wins), weighted as goim's load balancer does: a comet's share of
 * the weight against its share of the connections, a gain for the
 * client's region, the first node counted as taking one more connection.
 */


#define NGX_HTTP_GOIM_LOGIC_NODES_MAX  5
#define NGX_HTTP_GOIM_LOGIC_CHOSEN     64


typedef struct {
    Goim__CometInfo            *comet;
    int64_t                     conns;
    int64_t                     weight;
} ngx_http_goim_logic_node_t;


/*
 * The connections given out since a comet last reported (per worker):
 * goim adds one to the first node of every answer until the node's next
 * report replaces the count.
 */

typedef struct {
    u_char                      id[64];
    int64_t                     updated_ms;
    int64_t                     chosen;
} ngx_http_goim_logic_chosen_t;


static void ngx_http_goim_logic_comets_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_weighted_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_instances_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static ngx_http_goim_logic_chosen_t *ngx_http_goim_logic_chosen(
    Goim__CometInfo *comet);


static ngx_http_goim_logic_chosen_t
    ngx_http_goim_logic_chosen_nodes[NGX_HTTP_GOIM_LOGIC_CHOSEN];


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


static char *
ngx_http_goim_logic_dup(ngx_pool_t *pool, const char *s)
{
    return (char *) ngx_http_goim_logic_strdup(pool, s ? s : "");
}


static void
ngx_http_goim_logic_comets_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    (void) ngx_goim_logic_comets_merge(ctx->comets, ctx->request->pool,
                                       (Goim__CometListReply *) res->reply);
}


/* a router's comets into comets (Goim__CometInfo, copied into pool) */

ngx_int_t
ngx_goim_logic_comets_merge(ngx_array_t *comets, ngx_pool_t *pool,
    Goim__CometListReply *reply)
{
    size_t            i, j, k;
    ngx_uint_t        added;
    Goim__CometInfo  *c, *copy;

    for (i = 0; i < reply->n_comets; i++) {
        c = reply->comets[i];
        copy = comets->elts;

        for (j = 0; j < comets->nelts; j++) {
            if (ngx_strcmp(copy[j].id, c->id) == 0) {
                break;
            }
        }

        if (j < comets->nelts) {
            if (copy[j].updated_ms >= c->updated_ms) {
                copy[j].session_count += c->session_count;
                continue;
            }

            c->session_count += copy[j].session_count;
            copy = &copy[j];
            added = 0;

        } else {
            copy = ngx_array_push(comets);
            if (copy == NULL) {
                return NGX_ERROR;
            }

            added = 1;
        }

        goim__comet_info__init(copy);

        copy->id = ngx_http_goim_logic_dup(pool, c->id);
        copy->push_addr = ngx_http_goim_logic_dup(pool, c->push_addr);
        copy->region = ngx_http_goim_logic_dup(pool, c->region);
        copy->weight = c->weight;
        copy->offline = c->offline;
        copy->conn_count = c->conn_count;
        copy->ip_count = c->ip_count;
        copy->updated_ms = c->updated_ms;
        copy->session_count = c->session_count;

        copy->tcp_addrs = ngx_palloc(pool,
                                     (c->n_tcp_addrs + 1) * sizeof(char *));
        if (copy->tcp_addrs == NULL) {
            goto failed;
        }

        for (k = 0; k < c->n_tcp_addrs; k++) {
            copy->tcp_addrs[k] = ngx_http_goim_logic_dup(pool,
                                                         c->tcp_addrs[k]);
            if (copy->tcp_addrs[k] == NULL) {
                goto failed;
            }
        }

        copy->n_tcp_addrs = c->n_tcp_addrs;

        if (copy->id == NULL || copy->push_addr == NULL
            || copy->region == NULL)
        {
            goto failed;
        }
    }

    return NGX_OK;

failed:

    /* out of memory: this comet is left out (the last takes its place) */

    if (!added) {
        *copy = ((Goim__CometInfo *) comets->elts)[comets->nelts - 1];
    }

    comets->nelts--;

    return NGX_ERROR;
}


static int ngx_libc_cdecl
ngx_http_goim_logic_weight_cmp(const void *one, const void *two)
{
    const ngx_http_goim_logic_node_t  *a = one, *b = two;

    if (a->weight != b->weight) {
        return a->weight > b->weight ? -1 : 1;
    }

    return ngx_strcmp(a->comet->id, b->comet->id);
}


static void
ngx_http_goim_logic_weighted_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    char                            **node;
    ngx_str_t                         platform, region;
    ngx_uint_t                        i, web;
    ngx_array_t                       nodes;
    ngx_chain_t                       cl;
    ngx_http_request_t               *r;
    ngx_goim_logic_conf_t            *lcf;
    ngx_http_goim_logic_out_t         out;
    ngx_http_goim_logic_main_conf_t  *lmcf;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    r = ctx->request;
    lcf = ngx_goim_logic_get_conf(ngx_cycle);
    lmcf = ngx_http_get_module_main_conf(r, ngx_http_goim_logic_module);

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
        || ngx_goim_logic_nodes_pick(lmcf, ctx->comets, &region, web,
                                     r->pool, &nodes)
           != NGX_OK
        || ngx_http_goim_logic_out_init(&out, r->pool, 512) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* goim's NodesReply; zero values are left out, as goim's HEAD does */

    ngx_http_goim_logic_out_printf(&out, "{");

    if (lmcf->domain.len) {
        ngx_http_goim_logic_out_printf(&out, "\"domain\":");
        ngx_http_goim_logic_out_json(&out, (char *) lmcf->domain.data);
        ngx_http_goim_logic_out_printf(&out, ",");
    }

    if (lmcf->tcp_port) {
        ngx_http_goim_logic_out_printf(&out, "\"tcp_port\":%i,",
                                       lmcf->tcp_port);
    }

    if (lmcf->ws_port) {
        ngx_http_goim_logic_out_printf(&out, "\"ws_port\":%i,",
                                       lmcf->ws_port);
    }

    if (lmcf->wss_port) {
        ngx_http_goim_logic_out_printf(&out, "\"wss_port\":%i,",
                                       lmcf->wss_port);
    }

    ngx_http_goim_logic_out_printf(&out, "\"heartbeat\":%M,\"nodes\":[",
                                   lcf->heartbeat / 1000);

    node = nodes.elts;

    for (i = 0; i < nodes.nelts; i++) {
        if (i) {
            ngx_http_goim_logic_out_printf(&out, ",");
        }

        ngx_http_goim_logic_out_json(&out, node[i]);
    }

    ngx_http_goim_logic_out_printf(&out,
                          "],\"backoff\":{\"max_delay\":%i,\"base_delay\":%i,"
                          "\"factor\":%V,\"jitter\":%V},\"heartbeat_max\":%ui}",
                          lmcf->max_delay, lmcf->base_delay, &lmcf->factor,
                          &lmcf->jitter, lcf->heartbeat_max);

    if (out.failed) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cl.buf = out.buf;
    cl.next = NULL;

    ngx_http_goim_logic_finish_data(ctx, &cl);
}


/*
 * goim's weighting over comets for a client of region (empty: none): at
 * most 5 nodes into nodes (char *), host names for web clients when a host
 * domain is set, else addresses; the default domain when none qualifies.
 */

ngx_int_t
ngx_goim_logic_nodes_pick(ngx_http_goim_logic_main_conf_t *lmcf,
    ngx_array_t *comets, ngx_str_t *region, ngx_uint_t web,
    ngx_pool_t *pool, ngx_array_t *nodes)
{
    char                           **node;
    size_t                           k, len;
    double                           fw, tw, diff, m, fl;
    int64_t                          total_weight, total_conns, w;
    ngx_uint_t                       i, n;
    Goim__CometInfo                 *c;
    ngx_http_goim_logic_node_t      *ns;
    ngx_http_goim_logic_chosen_t    *chosen;

    /* without a host domain a comet's id names no host: addresses then */
    web = web && lmcf->host_domain.len;

    ns = ngx_pcalloc(pool, (comets->nelts + 1)
                           * sizeof(ngx_http_goim_logic_node_t));
    if (ns == NULL) {
        return NGX_ERROR;
    }

    /* goim skips comets that are offline */

    c = comets->elts;
    n = 0;
    total_weight = 0;
    total_conns = 0;

    for (i = 0; i < comets->nelts; i++) {
        if (c[i].offline) {
            continue;
        }

        ns[n].comet = &c[i];
        ns[n].conns = c[i].conn_count;

        chosen = ngx_http_goim_logic_chosen(&c[i]);
        if (chosen) {
            ns[n].conns += chosen->chosen;
        }

        total_weight += c[i].weight;
        total_conns += ns[n].conns;
        n++;
    }

    for (i = 0; i < n; i++) {
        c = ns[i].comet;

        fw = c->weight;

        if (region->len && region->len == ngx_strlen(c->region)
            && ngx_strncmp(region->data, c->region, region->len) == 0)
        {
            fw *= lmcf->region_weight;
        }

        tw = total_weight + (fw - c->weight);

        if (total_conns > 0 && tw > 0) {
            diff = fw / tw - (double) ns[i].conns / total_conns * 0.5;
            m = diff * total_conns;
            fl = floor(m);

            w = (int64_t) (fw + (fl - m >= -0.5 ? fl : ceil(m)));

            if (diff < 0) {
                w = ngx_max(w, 1);

            } else {
                w = ngx_min(w, 1 << 20);
            }

        } else {
            w = 0;
        }

        ns[i].weight = w;
    }

    ngx_qsort(ns, n, sizeof(ngx_http_goim_logic_node_t),
              ngx_http_goim_logic_weight_cmp);

    if (n) {
        chosen = ngx_http_goim_logic_chosen(ns[0].comet);
        if (chosen) {
            chosen->chosen++;
        }
    }

    for (i = 0; i < n && i < NGX_HTTP_GOIM_LOGIC_NODES_MAX; i++) {
        c = ns[i].comet;

        if (web) {
            node = ngx_array_push(nodes);
            if (node == NULL) {
                return NGX_ERROR;
            }

            len = ngx_strlen(c->id);

            *node = ngx_pnalloc(pool, len + lmcf->host_domain.len + 1);
            if (*node == NULL) {
                return NGX_ERROR;
            }

            *ngx_cpymem(ngx_cpymem(*node, c->id, len),
                        lmcf->host_domain.data, lmcf->host_domain.len)
                = '\0';

            continue;
        }

        for (k = 0; k < c->n_tcp_addrs; k++) {
            node = ngx_array_push(nodes);
            if (node == NULL) {
                return NGX_ERROR;
            }

            *node = c->tcp_addrs[k];
        }
    }

    if (nodes->nelts == 0 && lmcf->domain.len) {
        node = ngx_array_push(nodes);
        if (node == NULL) {
            return NGX_ERROR;
        }

        *node = (char *) lmcf->domain.data;
    }

    return NGX_OK;
}


static ngx_http_goim_logic_chosen_t *
ngx_http_goim_logic_chosen(Goim__CometInfo *comet)
{
    ngx_uint_t                     i;
    ngx_http_goim_logic_chosen_t  *ch, *free;

    if (ngx_strlen(comet->id) >= sizeof(ch->id)) {
        return NULL;
    }

    free = NULL;

    for (i = 0; i < NGX_HTTP_GOIM_LOGIC_CHOSEN; i++) {
        ch = &ngx_http_goim_logic_chosen_nodes[i];

        if (ch->id[0] == '\0') {
            if (free == NULL) {
                free = ch;
            }

            continue;
        }

        if (ngx_strcmp(ch->id, comet->id) != 0) {
            continue;
        }

        /* a new report counts the connections afresh */

        if (ch->updated_ms != comet->updated_ms) {
            ch->updated_ms = comet->updated_ms;
            ch->chosen = 0;
        }

        return ch;
    }

    if (free == NULL) {
        return NULL;
    }

    ngx_cpystrn(free->id, (u_char *) comet->id, sizeof(free->id));
    free->updated_ms = comet->updated_ms;
    free->chosen = 0;

    return free;
}


/* goim's discovery instances, from the comet registry */

static void
ngx_http_goim_logic_instances_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    size_t                      k;
    ngx_uint_t                  i;
    ngx_chain_t                 cl;
    Goim__CometInfo            *c;
    ngx_http_request_t         *r;
    ngx_http_goim_logic_out_t   out;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    r = ctx->request;

    if (ngx_http_goim_logic_out_init(&out, r->pool, 1024) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    c = ctx->comets->elts;

    ngx_http_goim_logic_out_printf(&out, "[");

    for (i = 0; i < ctx->comets->nelts; i++) {
        ngx_http_goim_logic_out_printf(&out, "%s{\"region\":", i ? "," : "");
        ngx_http_goim_logic_out_json(&out, c[i].region);
        ngx_http_goim_logic_out_printf(&out, ",\"zone\":\"\",\"env\":\"\","
                                       "\"appid\":\"goim.comet\","
                                       "\"hostname\":");
        ngx_http_goim_logic_out_json(&out, c[i].id);
        ngx_http_goim_logic_out_printf(&out, ",\"addrs\":[");

        if (c[i].push_addr[0]) {
            ngx_http_goim_logic_out_printf(&out, "\"grpc://");
            ngx_http_goim_logic_out_escaped(&out, c[i].push_addr);
            ngx_http_goim_logic_out_printf(&out, "\"");
        }

        ngx_http_goim_logic_out_printf(&out, "],\"version\":\"\","
                                       "\"latest_timestamp\":%L,"
                                       "\"metadata\":{\"addrs\":\"",
                                       c[i].updated_ms * 1000000);

        for (k = 0; k < c[i].n_tcp_addrs; k++) {
            if (k) {
                ngx_http_goim_logic_out_printf(&out, ",");
            }

            ngx_http_goim_logic_out_escaped(&out, c[i].tcp_addrs[k]);
        }

        ngx_http_goim_logic_out_printf(&out, "\",\"conn_count\":\"%L\","
                                       "\"ip_count\":\"%L\","
                                       "\"offline\":\"%s\","
                                       "\"weight\":\"%D\"}}",
                                       c[i].conn_count, c[i].ip_count,
                                       c[i].offline ? "true" : "false",
                                       c[i].weight);
    }

    ngx_http_goim_logic_out_printf(&out, "]");

    if (out.failed) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cl.buf = out.buf;
    cl.next = NULL;

    ngx_http_goim_logic_finish_data(ctx, &cl);
}
