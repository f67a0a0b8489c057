
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


/*
 * The push API's http module: its directives and confs, and the dispatch
 * of a request to its endpoint (push, online, nodes: files of their own;
 * goim_logic_api_v1's in ngx_http_goim_logic_v1.c), the body read, the
 * request's calls to the routers and their cleanup, and the log phase's
 * counting.  The http{} level goim_logic_node_* settings are handed to
 * logic's core (ngx_goim_logic_nodes.c), which the stream module's Nodes
 * reads too.
 */


static ngx_int_t ngx_http_goim_logic_handler(ngx_http_request_t *r);
static void ngx_http_goim_logic_body_handler(ngx_http_request_t *r);
static void ngx_http_goim_logic_cleanup(void *data);
static char *ngx_http_goim_logic_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_goim_logic_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_goim_logic_init(ngx_conf_t *cf);
static void *ngx_http_goim_logic_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_goim_logic_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_goim_logic_create_loc_conf(ngx_conf_t *cf);


static ngx_http_goim_logic_endpoint_t  ngx_http_goim_logic_endpoints[] = {
    { ngx_string("/push/keys"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_keys, NGX_GOIM_LOGIC_EP_PUSH_KEYS },
    { ngx_string("/push/mids"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_mids, NGX_GOIM_LOGIC_EP_PUSH_MIDS },
    { ngx_string("/push/room"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_room, NGX_GOIM_LOGIC_EP_PUSH_ROOM },
    { ngx_string("/push/all"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_all, NGX_GOIM_LOGIC_EP_PUSH_ALL },
    { ngx_string("/push/receipts"), NGX_HTTP_GET,
      ngx_http_goim_logic_receipts, NGX_GOIM_LOGIC_EP_PUSH_RECEIPTS },
    { ngx_string("/online/top"), NGX_HTTP_GET,
      ngx_http_goim_logic_online_top, NGX_GOIM_LOGIC_EP_ONLINE_TOP },
    { ngx_string("/online/room"), NGX_HTTP_GET,
      ngx_http_goim_logic_online_room, NGX_GOIM_LOGIC_EP_ONLINE_ROOM },
    { ngx_string("/online/total"), NGX_HTTP_GET,
      ngx_http_goim_logic_online_total, NGX_GOIM_LOGIC_EP_ONLINE_TOTAL },
    { ngx_string("/nodes/weighted"), NGX_HTTP_GET,
      ngx_http_goim_logic_nodes_weighted, NGX_GOIM_LOGIC_EP_NODES_WEIGHTED },
    { ngx_string("/nodes/instances"), NGX_HTTP_GET,
      ngx_http_goim_logic_nodes_instances,
      NGX_GOIM_LOGIC_EP_NODES_INSTANCES },
    { ngx_null_string, 0, NULL, NGX_GOIM_LOGIC_EP_UNKNOWN }
};


static ngx_command_t  ngx_http_goim_logic_commands[] = {

    { ngx_string("goim_logic_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_logic_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_GOIM_LOGIC_API,
      NULL },

    { ngx_string("goim_logic_api_v1"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_goim_logic_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_GOIM_LOGIC_API_V1,
      NULL },

    { ngx_string("goim_logic_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_logic_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_GOIM_LOGIC_STATUS,
      NULL },

    { ngx_string("goim_logic_node_domain"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_goim_logic_main_conf_t, nodes.domain),
      NULL },

    { ngx_string("goim_logic_node_host_domain"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_goim_logic_main_conf_t, nodes.host_domain),
      NULL },

    { ngx_string("goim_logic_node_ports"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_goim_logic_nodes_ports,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_goim_logic_main_conf_t, nodes),
      NULL },

    { ngx_string("goim_logic_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE4,
      ngx_goim_logic_nodes_backoff,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_goim_logic_main_conf_t, nodes),
      NULL },

    { ngx_string("goim_logic_region_weight"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_goim_logic_nodes_region_weight,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_goim_logic_main_conf_t, nodes),
      NULL },

    { ngx_string("goim_logic_client_region"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_goim_logic_main_conf_t, client_region),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_goim_logic_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_goim_logic_init,              /* postconfiguration */

    ngx_http_goim_logic_create_main_conf,  /* create main configuration */
    ngx_http_goim_logic_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_goim_logic_create_loc_conf,   /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_goim_logic_module = {
    NGX_MODULE_V1,
    &ngx_http_goim_logic_module_ctx,       /* module context */
    ngx_http_goim_logic_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_goim_logic_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_pool_cleanup_t              *cln;
    ngx_http_goim_logic_ctx_t       *ctx;
    ngx_http_goim_logic_endpoint_t  *ep;
    ngx_http_goim_logic_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_logic_module);

    if (glcf->api == NGX_HTTP_GOIM_LOGIC_STATUS) {
        return ngx_http_goim_logic_status_handler(r);
    }

    ep = glcf->api == NGX_HTTP_GOIM_LOGIC_API_V1
         ? ngx_http_goim_logic_v1_endpoints : ngx_http_goim_logic_endpoints;

    for ( /* void */ ; ep->handler; ep++) {
        if (r->uri.len >= ep->path.len
            && ngx_strncmp(r->uri.data + r->uri.len - ep->path.len,
                           ep->path.data, ep->path.len) == 0)
        {
            break;
        }
    }

    if (ep->handler == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_goim_logic_respond(r, NGX_HTTP_NOT_FOUND, -404,
                                           "unknown endpoint \"%V\"",
                                           &r->uri);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_goim_logic_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_goim_logic_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->endpoint = ep;
    ctx->worker = ngx_goim_logic_worker;
    ctx->v1 = (glcf->api == NGX_HTTP_GOIM_LOGIC_API_V1);
    ngx_http_set_ctx(r, ctx, ngx_http_goim_logic_module);

    if (ngx_array_init(&ctx->sessions, r->pool, 4, sizeof(Goim__Session))
        != NGX_OK
        || ngx_array_init(&ctx->rooms, r->pool, 4,
                          sizeof(ngx_http_goim_logic_room_t))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!(r->method & ep->method)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_goim_logic_respond(r, NGX_HTTP_NOT_ALLOWED, -405,
                                           "%V needs %s", &ep->path,
                                           ep->method == NGX_HTTP_GET
                                           ? "GET" : "POST");
    }

    if (ep->method == NGX_HTTP_GET) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        /* the handler answers now or after router did */
        r->main->count++;
        (void) ep->handler(ctx);

        return NGX_DONE;
    }

    /* the message is the body: keep it in one memory buffer */
    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_goim_logic_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_goim_logic_body_handler(ngx_http_request_t *r)
{
    size_t                      len;
    int64_t                     op;
    ngx_buf_t                  *b;
    ngx_chain_t                *cl;
    ngx_http_goim_logic_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_goim_logic_module);

    if (r->request_body == NULL) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "the message body is missing");
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            ngx_http_goim_logic_finish(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       -413, "message larger than "
                                       "client_body_buffer_size");
            return;
        }

        len += b->last - b->pos;
    }

    if (len) {
        ctx->msg.data = ngx_pnalloc(r->pool, len);
        if (ctx->msg.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            ctx->msg.data = ngx_cpymem(ctx->msg.data, cl->buf->pos,
                                       cl->buf->last - cl->buf->pos);
        }

        ctx->msg.data -= len;
        ctx->msg.len = len;
    }

    switch (ngx_http_goim_logic_int_arg(r, "operation", INT32_MIN, INT32_MAX,
                                        &op))
    {
    case NGX_OK:
        ctx->operation = (int32_t) op;
        break;

    case NGX_DECLINED:
        /* goim v1 delivered every push as OP_SEND_SMS_REPLY (5) */
        ctx->operation = ctx->v1 ? 5 : 0;
        break;

    default:
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "operation must be an int32");
        return;
    }

    (void) ctx->endpoint->handler(ctx);
}


static void
ngx_http_goim_logic_cleanup(void *data)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    if (ctx->call) {
        ngx_goim_rpc_cancel(ctx->call);
        ctx->call = NULL;
    }

    if (ctx->fanout) {
        ngx_goim_logic_fanout_free(ctx->fanout);
        ctx->fanout = NULL;
    }
}


static ngx_int_t
ngx_http_goim_logic_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                       ep;
    ngx_goim_logic_stats_t          *st;
    ngx_http_goim_logic_ctx_t       *ctx;
    ngx_http_goim_logic_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_logic_module);

    if (glcf->api != NGX_HTTP_GOIM_LOGIC_API
        && glcf->api != NGX_HTTP_GOIM_LOGIC_API_V1)
    {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_goim_logic_module);

    if (ctx) {
        ep = ctx->endpoint->stat;
        st = ctx->worker->stats;

    } else {
        ep = NGX_GOIM_LOGIC_EP_UNKNOWN;
        st = ngx_goim_logic_worker ? ngx_goim_logic_worker->stats : NULL;
    }

    ngx_goim_logic_stats_request(st, ep, r->headers_out.status);

    return NGX_OK;
}


static char *
ngx_http_goim_logic_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_goim_logic_loc_conf_t *glcf = conf;

    ngx_str_t                 *value;
    ngx_goim_logic_conf_t     *lcf;
    ngx_http_core_loc_conf_t  *clcf;

    if (glcf->api) {
        return "is duplicate";
    }

    glcf->api = cmd->offset;

    if (glcf->api == NGX_HTTP_GOIM_LOGIC_API_V1) {
        ngx_str_set(&glcf->v1_room_type, "live");

        if (cf->args->nelts == 2) {
            value = cf->args->elts;

            if (value[1].len == 0) {
                return "takes a room type, not an empty string";
            }

            glcf->v1_room_type = value[1];
        }
    }

    if (glcf->api == NGX_HTTP_GOIM_LOGIC_STATUS) {
        lcf = ngx_goim_logic_get_conf(cf->cycle);

        if (ngx_goim_logic_stats_zone(cf, lcf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_goim_logic_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_goim_logic_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_goim_logic_log_handler;

    return NGX_OK;
}


static void *
ngx_http_goim_logic_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_goim_logic_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_goim_logic_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lmcf->client_region = NULL;
     */

    ngx_goim_logic_nodes_conf_init(&lmcf->nodes);

    return lmcf;
}


/* the nodes settings are logic's core's, read by Nodes over RPC too */

static char *
ngx_http_goim_logic_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_goim_logic_main_conf_t *lmcf = conf;

    ngx_goim_logic_conf_t  *lcf;

    ngx_goim_logic_nodes_conf_defaults(&lmcf->nodes);

    lcf = ngx_goim_logic_get_conf(cf->cycle);
    lcf->nodes = &lmcf->nodes;

    return NGX_CONF_OK;
}


static void *
ngx_http_goim_logic_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_goim_logic_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_goim_logic_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->api = 0;
     *     conf->v1_room_type = { 0, NULL };
     */

    return conf;
}
