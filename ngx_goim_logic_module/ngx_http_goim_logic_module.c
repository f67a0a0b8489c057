
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_logic.h"
#include "ngx_http_goim_logic.h"

#include "goim_args.h"


/*
 * goim v2's business API: POST /goim/push/{keys,mids,room,all} and GET
 * /goim/online/{top,room,total} (the nodes endpoints, v1's API and the
 * status page have files of their own).  A push by mid asks the router each mid
 * belongs to (the ketama ring), a push by key asks every router (keys are
 * not sharded), then one record per comet goes to job; room and broadcast
 * pushes go to job at once.  Online counts are summed over every router.
 * The JSON envelope is goim's: {"code":0,"message":"","data":...}.
 */


static ngx_int_t ngx_http_goim_logic_handler(ngx_http_request_t *r);
static void ngx_http_goim_logic_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_goim_logic_list_arg(ngx_http_goim_logic_ctx_t *ctx,
    const char *name, ngx_uint_t split, goim_args_list_t *list);
static ngx_int_t ngx_http_goim_logic_push_keys(
    ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_push_mids(
    ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_push_room(
    ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_push_all(
    ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_online_top(
    ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_online_room(
    ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_online_total(
    ngx_http_goim_logic_ctx_t *ctx);
static void ngx_http_goim_logic_sessions_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_sessions_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_top_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_room_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_room_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_total_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_total_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_job_done(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_cleanup(void *data);
static char *ngx_http_goim_logic_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_goim_logic_ports(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_goim_logic_backoff(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_goim_logic_region_weight(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_goim_logic_log_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_goim_logic_init(ngx_conf_t *cf);
static void *ngx_http_goim_logic_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_goim_logic_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_goim_logic_create_loc_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_goim_logic_init_process(ngx_cycle_t *cycle);


static ngx_http_goim_logic_endpoint_t  ngx_http_goim_logic_endpoints[] = {
    { ngx_string("/push/keys"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_keys, NGX_GOIM_LOGIC_EP_PUSH_KEYS },
    { ngx_string("/push/mids"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_mids, NGX_GOIM_LOGIC_EP_PUSH_MIDS },
    { ngx_string("/push/room"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_room, NGX_GOIM_LOGIC_EP_PUSH_ROOM },
    { ngx_string("/push/all"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_all, NGX_GOIM_LOGIC_EP_PUSH_ALL },
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
      offsetof(ngx_http_goim_logic_main_conf_t, domain),
      NULL },

    { ngx_string("goim_logic_node_host_domain"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_goim_logic_main_conf_t, host_domain),
      NULL },

    { ngx_string("goim_logic_node_ports"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_goim_logic_ports,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("goim_logic_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE4,
      ngx_http_goim_logic_backoff,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("goim_logic_region_weight"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_goim_logic_region_weight,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
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
    ngx_http_goim_logic_init_process,      /* init process */
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


static ngx_int_t
ngx_http_goim_logic_push_keys(ngx_http_goim_logic_ctx_t *ctx)
{
    goim_args_list_t          keys;
    Goim__SessionsByKeysReq   req = GOIM__SESSIONS_BY_KEYS_REQ__INIT;

    /* each key once: a repeated key would be delivered again */

    if (ngx_http_goim_logic_list_arg(ctx, "keys", 0, &keys) != NGX_OK) {
        return NGX_ERROR;
    }

    req.keys = keys.values;
    req.n_keys = keys.n;

    /* keys are not sharded: every router is asked */

    return ngx_http_goim_logic_ask_routers(ctx,
                                     ngx_http_goim_logic_sessions_each,
                                     ngx_http_goim_logic_sessions_done,
                                     GOIM__METHOD__ROUTER_SESSIONS_BY_KEYS,
                                     &req.base);
}


static ngx_int_t
ngx_http_goim_logic_push_mids(ngx_http_goim_logic_ctx_t *ctx)
{
    int64_t             *mids;
    ngx_uint_t           i;
    goim_args_list_t     list;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ngx_http_goim_logic_list_arg(ctx, "mids", 1, &list) != NGX_OK) {
        return NGX_ERROR;
    }

    mids = ngx_palloc(r->pool, list.n * sizeof(int64_t));
    if (mids == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    for (i = 0; i < list.n; i++) {
        if (goim_args_int(list.values[i], list.lens[i], INT64_MIN + 1,
                          INT64_MAX, &mids[i])
            != 0)
        {
            ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                       "mids holds \"%s\", not an int64",
                                       list.values[i]);
            return NGX_ERROR;
        }
    }

    return ngx_http_goim_logic_mids_lookup(ctx, mids, list.n);
}


/*
 * each mid once (a repeated mid would get the message again), to the
 * router the ring gives it: one request per router
 */

ngx_int_t
ngx_http_goim_logic_mids_lookup(ngx_http_goim_logic_ctx_t *ctx,
    int64_t *mids, size_t nmids)
{
    void                     *scratch;
    ngx_uint_t                i, k, n, *owner;
    ngx_http_request_t       *r;
    ngx_goim_logic_conf_t    *lcf;
    Goim__SessionsByMidsReq   req = GOIM__SESSIONS_BY_MIDS_REQ__INIT;
    Goim__SessionsByMidsReq   part = GOIM__SESSIONS_BY_MIDS_REQ__INIT;

    r = ctx->request;

    scratch = ngx_palloc(r->pool, goim_args_dedup_size(nmids));
    if (scratch == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    req.mids = mids;
    req.n_mids = goim_args_dedup_int64(mids, nmids, scratch);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "goim logic: %uz mids, %uz repeats ignored",
                   req.n_mids, nmids - req.n_mids);

    lcf = ngx_goim_logic_get_conf(ngx_cycle);
    n = ngx_goim_logic_nrouters(lcf);

    if (ngx_http_goim_logic_fanout(ctx, ngx_http_goim_logic_sessions_each,
                                   ngx_http_goim_logic_sessions_done)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (n == 1) {
        if (ngx_goim_logic_fanout_call(ctx->fanout, 0,
                                       GOIM__METHOD__ROUTER_SESSIONS_BY_MIDS,
                                       &req.base)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    owner = ngx_palloc(r->pool, req.n_mids * sizeof(ngx_uint_t));
    part.mids = ngx_palloc(r->pool, req.n_mids * sizeof(int64_t));
    if (owner == NULL || part.mids == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    for (i = 0; i < req.n_mids; i++) {
        owner[i] = ngx_goim_logic_router_index(lcf, req.mids[i]);
    }

    for (k = 0; k < n; k++) {
        part.n_mids = 0;

        for (i = 0; i < req.n_mids; i++) {
            if (owner[i] == k) {
                part.mids[part.n_mids++] = req.mids[i];
            }
        }

        /* packed at once: part.mids can be reused for the next router */

        if (part.n_mids
            && ngx_goim_logic_fanout_call(ctx->fanout, k,
                                       GOIM__METHOD__ROUTER_SESSIONS_BY_MIDS,
                                       &part.base)
               != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_goim_logic_push_room(ngx_http_goim_logic_ctx_t *ctx)
{
    u_char              *p;
    ngx_str_t            type, room;
    char                *room_id;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->operation == 0) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "operation is required");
        return NGX_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "type", 4, &type) != NGX_OK
        || type.len == 0
        || ngx_http_arg(r, (u_char *) "room", 4, &room) != NGX_OK
        || room.len == 0)
    {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "type and room are required");
        return NGX_ERROR;
    }

    /* goim's room id: "<type>://<room>" */
    room_id = ngx_pnalloc(r->pool, type.len + room.len + sizeof("://"));
    if (room_id == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    p = ngx_cpymem(room_id, type.data, type.len);
    p = ngx_cpymem(p, "://", 3);
    p = ngx_cpymem(p, room.data, room.len);
    *p = '\0';

    return ngx_http_goim_logic_push_one(ctx, GOIM__PUSH_MSG__TYPE__ROOM,
                                        room_id, 0);
}


static ngx_int_t
ngx_http_goim_logic_push_all(ngx_http_goim_logic_ctx_t *ctx)
{
    int64_t         speed;
    ngx_int_t       rc;

    if (ctx->operation == 0) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "operation is required");
        return NGX_ERROR;
    }

    rc = ngx_http_goim_logic_int_arg(ctx->request, "speed", 0, INT32_MAX,
                                     &speed);
    if (rc == NGX_ERROR) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "speed must be a non-negative int32");
        return NGX_ERROR;
    }

    return ngx_http_goim_logic_push_one(ctx, GOIM__PUSH_MSG__TYPE__BROADCAST,
                                        NULL,
                                        rc == NGX_OK ? (int32_t) speed : 0);
}


/* the routers answered where the connections are: kept until the last */

static void
ngx_http_goim_logic_sessions_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    size_t                i;
    Goim__Session        *s, *copy;
    Goim__SessionsReply  *reply;
    ngx_http_request_t   *r;

    r = ctx->request;
    reply = (Goim__SessionsReply *) res->reply;

    for (i = 0; i < reply->n_sessions; i++) {
        s = reply->sessions[i];

        copy = ngx_array_push(&ctx->sessions);
        if (copy == NULL) {
            return;
        }

        goim__session__init(copy);
        copy->mid = s->mid;
        copy->key = (char *) ngx_http_goim_logic_strdup(r->pool, s->key);
        copy->server = (char *) ngx_http_goim_logic_strdup(r->pool, s->server);

        if (copy->key == NULL || copy->server == NULL) {
            ctx->sessions.nelts--;
            return;
        }
    }
}


/* one PUSH record per comet */

static void
ngx_http_goim_logic_sessions_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    size_t               i, j, n, total;
    Goim__Session       *s;
    Goim__PushMsg      **msgs, *m;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    total = ctx->sessions.nelts;
    s = ctx->sessions.elts;

    if (total == 0) {
        /* as in goim: nobody online is not an error */
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_OK, 0, "");
        return;
    }

    msgs = ngx_pcalloc(r->pool, total * (sizeof(Goim__PushMsg *)
                                         + sizeof(Goim__PushMsg)));
    if (msgs == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    m = (Goim__PushMsg *) (msgs + total);
    n = 0;

    for (i = 0; i < total; i++) {

        for (j = 0; j < n; j++) {
            if (ngx_strcmp(msgs[j]->server, s[i].server) == 0) {
                break;
            }
        }

        if (j == n) {
            goim__push_msg__init(&m[n]);
            m[n].type = GOIM__PUSH_MSG__TYPE__PUSH;
            m[n].operation = ctx->operation;
            m[n].server = s[i].server;
            m[n].msg.data = ctx->msg.data;
            m[n].msg.len = ctx->msg.len;
            m[n].keys = ngx_palloc(r->pool, total * sizeof(char *));
            if (m[n].keys == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            msgs[n] = &m[n];
            n++;
        }

        msgs[j]->keys[msgs[j]->n_keys++] = s[i].key;
    }

    (void) ngx_http_goim_logic_job_push(ctx, msgs, n);
}


/* GET /goim/online/top?type=live&limit=10 */

static ngx_int_t
ngx_http_goim_logic_online_top(ngx_http_goim_logic_ctx_t *ctx)
{
    ngx_str_t               type;
    ngx_uint_t              n;
    ngx_http_request_t     *r;
    ngx_goim_logic_conf_t  *lcf;
    Goim__OnlineTopReq      req = GOIM__ONLINE_TOP_REQ__INIT;

    r = ctx->request;
    lcf = ngx_goim_logic_get_conf(ngx_cycle);

    if (ngx_http_arg(r, (u_char *) "type", 4, &type) != NGX_OK
        || type.len == 0)
    {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "type is required");
        return NGX_ERROR;
    }

    if (ngx_http_goim_logic_int_arg(r, "limit", 1, INT32_MAX, &ctx->limit)
        != NGX_OK)
    {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "limit must be a positive int32");
        return NGX_ERROR;
    }

    req.type = ngx_pnalloc(r->pool, type.len + 1);
    if (req.type == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    ngx_memcpy(req.type, type.data, type.len);
    req.type[type.len] = '\0';

    /* the top of a sum is not the sum of the tops: all, with several */
    n = ngx_goim_logic_nrouters(lcf);
    req.limit = n == 1 ? (int32_t) ctx->limit : 0;

    return ngx_http_goim_logic_ask_routers(ctx, ngx_http_goim_logic_top_each,
                                           ngx_http_goim_logic_top_done,
                                           GOIM__METHOD__ROUTER_ONLINE_TOP,
                                           &req.base);
}


/* OnlineTop answers, summed per room (v1's /1/count uses it too) */

void
ngx_http_goim_logic_top_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    size_t                 i;
    Goim__OnlineTopReply  *reply;

    reply = (Goim__OnlineTopReply *) res->reply;

    for (i = 0; i < reply->n_rooms; i++) {
        if (ngx_http_goim_logic_add_room(ctx, reply->rooms[i]->room_id,
                                         reply->rooms[i]->count)
            != NGX_OK)
        {
            return;
        }
    }
}


static int ngx_libc_cdecl
ngx_http_goim_logic_count_cmp(const void *one, const void *two)
{
    const ngx_http_goim_logic_room_t  *a = one, *b = two;

    if (a->count != b->count) {
        return a->count > b->count ? -1 : 1;
    }

    return ngx_strcmp(a->name.data, b->name.data);
}


static void
ngx_http_goim_logic_top_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    u_char                      *p, *id, *end;
    size_t                       len;
    ngx_buf_t                   *b;
    ngx_uint_t                   i, n;
    ngx_chain_t                  out;
    ngx_http_goim_logic_room_t  *room;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    ngx_http_goim_logic_sum_rooms(ctx);

    room = ctx->rooms.elts;
    ngx_qsort(room, ctx->rooms.nelts, sizeof(ngx_http_goim_logic_room_t),
              ngx_http_goim_logic_count_cmp);

    len = sizeof("[]");

    for (i = 0; i < ctx->rooms.nelts; i++) {
        len += sizeof("{\"room_id\":\"\",\"count\":},") + NGX_INT64_LEN
               + room[i].name.len
               + ngx_escape_json(NULL, room[i].name.data, room[i].name.len);
    }

    b = ngx_create_temp_buf(ctx->request->pool, len);
    if (b == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = b->last;
    *p++ = '[';
    n = 0;

    for (i = 0; i < ctx->rooms.nelts && n < (ngx_uint_t) ctx->limit; i++) {

        /* goim's room id: the host of "<type>://<id>" */

        id = (u_char *) ngx_strstr(room[i].name.data, "://");
        if (id == NULL) {
            continue;
        }

        id += 3;

        for (end = id; *end && *end != '/' && *end != '?' && *end != '#';
             end++)
        {
            /* void */
        }

        if (n++) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, "{\"room_id\":\"", sizeof("{\"room_id\":\"") - 1);
        p = (u_char *) ngx_escape_json(p, id, end - id);
        p = ngx_sprintf(p, "\",\"count\":%L}", room[i].count);
    }

    *p++ = ']';
    b->last = p;

    out.buf = b;
    out.next = NULL;

    ngx_http_goim_logic_finish_data(ctx, &out);
}


/* GET /goim/online/room?type=live&rooms=1000&rooms=1001 */

static ngx_int_t
ngx_http_goim_logic_online_room(ngx_http_goim_logic_ctx_t *ctx)
{
    u_char                      *p;
    ngx_str_t                    type;
    ngx_uint_t                   i;
    goim_args_list_t             rooms;
    ngx_http_request_t          *r;
    ngx_http_goim_logic_room_t  *room;
    Goim__OnlineRoomReq          req = GOIM__ONLINE_ROOM_REQ__INIT;

    r = ctx->request;

    if (ngx_http_arg(r, (u_char *) "type", 4, &type) != NGX_OK
        || type.len == 0)
    {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "type is required");
        return NGX_ERROR;
    }

    if (ngx_http_goim_logic_list_arg(ctx, "rooms", 0, &rooms) != NGX_OK) {
        return NGX_ERROR;
    }

    req.rooms = ngx_palloc(r->pool, rooms.n * sizeof(char *));
    if (req.rooms == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    /* ctx->rooms: the answer, one entry per room asked (each once) */

    for (i = 0; i < rooms.n; i++) {
        room = ngx_array_push(&ctx->rooms);
        p = ngx_pnalloc(r->pool, type.len + sizeof("://") + rooms.lens[i]);
        if (room == NULL || p == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }

        room->name.data = (u_char *) rooms.values[i];
        room->name.len = rooms.lens[i];
        room->count = 0;

        req.rooms[req.n_rooms++] = (char *) p;
        p = ngx_cpymem(p, type.data, type.len);
        p = ngx_cpymem(p, "://", 3);
        p = ngx_cpymem(p, rooms.values[i], rooms.lens[i]);
        *p = '\0';
    }

    ctx->asked = req.rooms;

    return ngx_http_goim_logic_ask_routers(ctx, ngx_http_goim_logic_room_each,
                                           ngx_http_goim_logic_room_done,
                                           GOIM__METHOD__ROUTER_ONLINE_ROOM,
                                           &req.base);
}


static void
ngx_http_goim_logic_room_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    char                                    **asked;
    size_t                                    i, j, n;
    ngx_http_goim_logic_room_t               *room;
    Goim__OnlineRoomReply                    *reply;
    Goim__OnlineRoomReply__RoomCountEntry    *e;

    reply = (Goim__OnlineRoomReply *) res->reply;
    asked = ctx->asked;
    room = ctx->rooms.elts;
    n = ctx->rooms.nelts;

    for (i = 0; i < reply->n_room_count; i++) {
        e = reply->room_count[i];

        /* router answers in the order asked; look further if not */

        if (i < n && ngx_strcmp(asked[i], e->key) == 0) {
            room[i].count += e->value;
            continue;
        }

        for (j = 0; j < n; j++) {
            if (ngx_strcmp(asked[j], e->key) == 0) {
                room[j].count += e->value;
                break;
            }
        }
    }
}


static void
ngx_http_goim_logic_room_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    u_char                      *p;
    size_t                       len;
    ngx_buf_t                   *b;
    ngx_uint_t                   i;
    ngx_chain_t                  out;
    ngx_http_goim_logic_room_t  *room;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    room = ctx->rooms.elts;
    len = sizeof("{}");

    for (i = 0; i < ctx->rooms.nelts; i++) {
        len += sizeof("\"\":,") + NGX_INT64_LEN + room[i].name.len
               + ngx_escape_json(NULL, room[i].name.data, room[i].name.len);
    }

    b = ngx_create_temp_buf(ctx->request->pool, len);
    if (b == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = b->last;
    *p++ = '{';

    for (i = 0; i < ctx->rooms.nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        *p++ = '"';
        p = (u_char *) ngx_escape_json(p, room[i].name.data,
                                       room[i].name.len);
        p = ngx_sprintf(p, "\":%L", room[i].count);
    }

    *p++ = '}';
    b->last = p;

    out.buf = b;
    out.next = NULL;

    ngx_http_goim_logic_finish_data(ctx, &out);
}


/* GET /goim/online/total */

static ngx_int_t
ngx_http_goim_logic_online_total(ngx_http_goim_logic_ctx_t *ctx)
{
    Goim__OnlineTotalReq  req = GOIM__ONLINE_TOTAL_REQ__INIT;

    return ngx_http_goim_logic_ask_routers(ctx, ngx_http_goim_logic_total_each,
                                           ngx_http_goim_logic_total_done,
                                           GOIM__METHOD__ROUTER_ONLINE_TOTAL,
                                           &req.base);
}


static void
ngx_http_goim_logic_total_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    Goim__OnlineTotalReply  *reply;

    reply = (Goim__OnlineTotalReply *) res->reply;

    /*
     * What comets report reaches every router alike: the largest is the
     * freshest; sessions are sharded: summed.
     */

    ctx->conn_count = ngx_max(ctx->conn_count, reply->conn_count);
    ctx->ip_count = ngx_max(ctx->ip_count, reply->ip_count);
    ctx->session_count += reply->session_count;
}


static void
ngx_http_goim_logic_total_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    b = ngx_create_temp_buf(ctx->request->pool,
                            sizeof("{\"conn_count\":,\"ip_count\":,"
                                   "\"session_count\":}")
                            + 3 * NGX_INT64_LEN);
    if (b == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b->last = ngx_sprintf(b->last,
                          "{\"conn_count\":%L,\"ip_count\":%L,"
                          "\"session_count\":%L}",
                          ctx->conn_count, ctx->ip_count, ctx->session_count);

    out.buf = b;
    out.next = NULL;

    ngx_http_goim_logic_finish_data(ctx, &out);
}


u_char *
ngx_http_goim_logic_strdup(ngx_pool_t *pool, const char *s)
{
    u_char  *p;
    size_t   len;

    len = ngx_strlen(s) + 1;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    return ngx_cpymem(p, s, len) - len;
}


/* room counts from several routers: appended, then summed by name */

ngx_int_t
ngx_http_goim_logic_add_room(ngx_http_goim_logic_ctx_t *ctx,
    const char *name, int64_t count)
{
    ngx_http_goim_logic_room_t  *room;

    room = ngx_array_push(&ctx->rooms);
    if (room == NULL) {
        return NGX_ERROR;
    }

    room->name.len = ngx_strlen(name);
    room->name.data = ngx_http_goim_logic_strdup(ctx->request->pool, name);
    room->count = count;

    if (room->name.data == NULL) {
        ctx->rooms.nelts--;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_goim_logic_name_cmp(const void *one, const void *two)
{
    const ngx_http_goim_logic_room_t  *a = one, *b = two;

    return ngx_strcmp(a->name.data, b->name.data);
}


void
ngx_http_goim_logic_sum_rooms(ngx_http_goim_logic_ctx_t *ctx)
{
    ngx_uint_t                   i, n;
    ngx_http_goim_logic_room_t  *room;

    room = ctx->rooms.elts;

    ngx_qsort(room, ctx->rooms.nelts, sizeof(ngx_http_goim_logic_room_t),
              ngx_http_goim_logic_name_cmp);

    n = 0;

    for (i = 0; i < ctx->rooms.nelts; i++) {
        if (n && ngx_strcmp(room[n - 1].name.data, room[i].name.data) == 0) {
            room[n - 1].count += room[i].count;
            continue;
        }

        room[n++] = room[i];
    }

    ctx->rooms.nelts = n;
}


/* one ROOM or BROADCAST record carrying the request's message */

ngx_int_t
ngx_http_goim_logic_push_one(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg__Type type, char *room, int32_t speed)
{
    Goim__PushMsg  msg = GOIM__PUSH_MSG__INIT, *msgs[1];

    msg.type = type;
    msg.operation = ctx->operation;
    msg.speed = speed;
    msg.room = room ? room : "";
    msg.msg.data = ctx->msg.data;
    msg.msg.len = ctx->msg.len;
    msgs[0] = &msg;

    return ngx_http_goim_logic_job_push(ctx, msgs, 1);
}


ngx_int_t
ngx_http_goim_logic_job_push(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg **msgs, size_t n)
{
    ctx->rpc_start = ngx_current_msec;

    switch (ngx_goim_logic_queue_push(ngx_goim_logic_get_conf(ngx_cycle),
                                      msgs, n, ngx_http_goim_logic_job_done,
                                      ctx, &ctx->call))
    {
    case NGX_OK:
        return NGX_OK;

    case NGX_DECLINED:
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "no queue configured (goim_logic_job)");
        return NGX_ERROR;

    default:
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }
}


static void
ngx_http_goim_logic_job_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    ctx->call = NULL;

    ngx_goim_logic_stats_rpc(NGX_GOIM_LOGIC_RPC_JOB, ctx->rpc_start,
                             res->status);

    if (res->status) {
        ngx_goim_logic_stats_inc(queue_errors);

        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "queue: %V", &res->message);
        return;
    }

    ngx_http_goim_logic_finish(ctx, NGX_HTTP_OK, 0, "");
}


ngx_int_t
ngx_http_goim_logic_fanout(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done)
{
    ngx_goim_logic_conf_t  *lcf;

    lcf = ngx_goim_logic_get_conf(ngx_cycle);

    if (ngx_goim_logic_nrouters(lcf) == 0) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "no goim_logic_router configured");
        return NGX_ERROR;
    }

    ctx->rpc_start = ngx_current_msec;

    ctx->fanout = ngx_goim_logic_fanout_create(lcf, each, done, ctx);
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


/*
 * A list argument the endpoint cannot do without: NGX_OK with at least one
 * value, each once (goim_args.h); otherwise the request is answered here
 * (400 when it is missing).
 */

static ngx_int_t
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


static ngx_int_t
ngx_http_goim_logic_vrespond(ngx_http_request_t *r, ngx_uint_t status,
    ngx_int_t code, const char *fmt, va_list args)
{
    u_char                          text[512], *p;
    size_t                          len;
    ngx_buf_t                      *b;
    ngx_int_t                       rc;
    ngx_chain_t                     out;
    ngx_http_goim_logic_loc_conf_t *glcf;

    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    len = p - text;

    b = ngx_create_temp_buf(r->pool, sizeof("{\"code\":,\"message\":\"\"}\n")
                                     + NGX_INT_T_LEN
                                     + ngx_escape_json(NULL, text, len)
                                     + len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_logic_module);

    if (glcf->api == NGX_HTTP_GOIM_LOGIC_API_V1) {

        /* goim v1: {"ret":1} or {"ret":65535}; the reason is ours */

        if (code == 0) {
            b->last = ngx_cpymem(b->last, "{\"ret\":1}\n", 10);

        } else {
            b->last = ngx_cpymem(b->last, "{\"ret\":65535,\"message\":\"",
                                 sizeof("{\"ret\":65535,\"message\":\"") - 1);
            b->last = (u_char *) ngx_escape_json(b->last, text, len);
            b->last = ngx_cpymem(b->last, "\"}\n", 3);
        }

    } else {
        b->last = ngx_sprintf(b->last, "{\"code\":%i,\"message\":\"", code);
        b->last = (u_char *) ngx_escape_json(b->last, text, len);
        b->last = ngx_cpymem(b->last, "\"}\n", 3);
    }
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    if (status >= NGX_HTTP_BAD_REQUEST) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "goim logic: %ui: %*s", status, len, text);
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


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


/* {"code":0,"message":"","data":<data>} */

void
ngx_http_goim_logic_finish_data(ngx_http_goim_logic_ctx_t *ctx,
    ngx_chain_t *data)
{
    ngx_buf_t           *head, *tail;
    ngx_str_t           *hp;
    ngx_int_t            rc;
    ngx_chain_t          out[2];
    ngx_http_request_t  *r;

    static ngx_str_t  h0 = ngx_string("{\"code\":0,\"message\":\"\",\"data\":");
    static ngx_str_t  h1 = ngx_string("{\"ret\":1,\"data\":");
    static ngx_str_t  t = ngx_string("}\n");

    r = ctx->request;

    hp = ctx->v1 ? &h1 : &h0;

    head = ngx_calloc_buf(r->pool);
    tail = ngx_calloc_buf(r->pool);
    if (head == NULL || tail == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    head->pos = hp->data;
    head->last = hp->data + hp->len;
    head->memory = 1;
    tail->pos = t.data;
    tail->last = t.data + t.len;
    tail->memory = 1;
    tail->last_buf = (r == r->main) ? 1 : 0;
    tail->last_in_chain = 1;

    out[0].buf = head;
    out[0].next = data;
    data->next = &out[1];
    out[1].buf = tail;
    out[1].next = NULL;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = hp->len + t.len
                                      + (data->buf->last - data->buf->pos);
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out[0]));
}


ngx_int_t
ngx_http_goim_logic_rpc_done(ngx_http_goim_logic_ctx_t *ctx, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_goim_logic_stats_rpc(NGX_GOIM_LOGIC_RPC_ROUTER, ctx->rpc_start,
                             status);

    if (status) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "router %V", message);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_goim_logic_out_init(ngx_http_goim_logic_out_t *out, ngx_pool_t *pool,
    size_t size)
{
    out->pool = pool;
    out->failed = 0;
    out->buf = ngx_create_temp_buf(pool, size);

    return out->buf ? NGX_OK : NGX_ERROR;
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


void
ngx_http_goim_logic_out_escaped(ngx_http_goim_logic_out_t *out,
    const char *s)
{
    u_char  *p;
    size_t   len;

    len = ngx_strlen(s);

    p = ngx_http_goim_logic_out_reserve(out, len
                                 + ngx_escape_json(NULL, (u_char *) s, len));
    if (p == NULL) {
        return;
    }

    out->buf->last = (u_char *) ngx_escape_json(p, (u_char *) s, len);
}


void
ngx_http_goim_logic_out_json(ngx_http_goim_logic_out_t *out, const char *s)
{
    ngx_http_goim_logic_out_printf(out, "\"");
    ngx_http_goim_logic_out_escaped(out, s);
    ngx_http_goim_logic_out_printf(out, "\"");
}


static ngx_int_t
ngx_http_goim_logic_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                       ep;
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

    } else {
        ep = NGX_GOIM_LOGIC_EP_UNKNOWN;
    }

    ngx_goim_logic_stats_request(ep, r->headers_out.status);

    return NGX_OK;
}


static char *
ngx_http_goim_logic_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_goim_logic_loc_conf_t *glcf = conf;

    ngx_str_t                        *value;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_goim_logic_main_conf_t  *lmcf;

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
        lmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_goim_logic_module);
        if (ngx_http_goim_logic_status_zone(cf, lmcf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_goim_logic_handler;

    return NGX_CONF_OK;
}


/* goim_logic_node_ports tcp ws wss */

static char *
ngx_http_goim_logic_ports(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_goim_logic_main_conf_t *lmcf = conf;

    ngx_int_t   port[3];
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (lmcf->tcp_port != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < 3; i++) {
        port[i] = ngx_atoi(value[i + 1].data, value[i + 1].len);

        if (port[i] == NGX_ERROR || port[i] > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid port \"%V\" (0 to 65535)",
                               &value[i + 1]);
            return NGX_CONF_ERROR;
        }
    }

    lmcf->tcp_port = port[0];
    lmcf->ws_port = port[1];
    lmcf->wss_port = port[2];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_goim_logic_parse_float(ngx_str_t *value, double *d)
{
    u_char      *p;
    ngx_uint_t   dot;

    /* a plain decimal: it is also written into JSON as is */

    dot = 0;

    for (p = value->data; p < value->data + value->len; p++) {
        if (*p == '.' && dot == 0 && p > value->data) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }
    }

    if (value->len == 0 || value->data[value->len - 1] == '.') {
        return NGX_ERROR;
    }

    *d = strtod((char *) value->data, NULL);

    return NGX_OK;
}


/* goim_logic_backoff max_delay base_delay factor jitter */

static char *
ngx_http_goim_logic_backoff(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_goim_logic_main_conf_t *lmcf = conf;

    double      d;
    ngx_str_t  *value;

    if (lmcf->max_delay != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    lmcf->max_delay = ngx_atoi(value[1].data, value[1].len);
    lmcf->base_delay = ngx_atoi(value[2].data, value[2].len);

    if (lmcf->max_delay == NGX_ERROR || lmcf->base_delay == NGX_ERROR
        || lmcf->max_delay > INT32_MAX || lmcf->base_delay > INT32_MAX
        || ngx_http_goim_logic_parse_float(&value[3], &d) != NGX_OK
        || ngx_http_goim_logic_parse_float(&value[4], &d) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid backoff \"%V %V %V %V\": two whole "
                           "numbers of seconds, then two decimals",
                           &value[1], &value[2], &value[3], &value[4]);
        return NGX_CONF_ERROR;
    }

    lmcf->factor = value[3];
    lmcf->jitter = value[4];

    return NGX_CONF_OK;
}


static char *
ngx_http_goim_logic_region_weight(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_goim_logic_main_conf_t *lmcf = conf;

    ngx_str_t  *value;

    if (lmcf->region_weight >= 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_goim_logic_parse_float(&value[1], &lmcf->region_weight)
        != NGX_OK
        || lmcf->region_weight > 1000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid region weight \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

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
     *     lmcf->domain = { 0, NULL };
     *     lmcf->host_domain = { 0, NULL };
     *     lmcf->factor = { 0, NULL };
     *     lmcf->jitter = { 0, NULL };
     *     lmcf->client_region = NULL;
     *     lmcf->status_zone = NULL;
     */

    lmcf->tcp_port = NGX_CONF_UNSET;
    lmcf->ws_port = NGX_CONF_UNSET;
    lmcf->wss_port = NGX_CONF_UNSET;
    lmcf->max_delay = NGX_CONF_UNSET;
    lmcf->base_delay = NGX_CONF_UNSET;
    lmcf->region_weight = -1;

    return lmcf;
}


static char *
ngx_http_goim_logic_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_goim_logic_main_conf_t *lmcf = conf;

    /* goim's example config */

    ngx_conf_init_value(lmcf->tcp_port, 3101);
    ngx_conf_init_value(lmcf->ws_port, 3102);
    ngx_conf_init_value(lmcf->wss_port, 3103);
    ngx_conf_init_value(lmcf->max_delay, 300);
    ngx_conf_init_value(lmcf->base_delay, 3);

    if (lmcf->factor.len == 0) {
        ngx_str_set(&lmcf->factor, "1.8");
        ngx_str_set(&lmcf->jitter, "0.3");
    }

    if (lmcf->region_weight < 0) {
        lmcf->region_weight = 1.6;
    }

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


static ngx_int_t
ngx_http_goim_logic_init_process(ngx_cycle_t *cycle)
{
    ngx_http_goim_logic_status_attach(cycle);

    return NGX_OK;
}
