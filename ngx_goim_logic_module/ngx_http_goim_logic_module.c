
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_logic.h"


/*
 * goim v2's business API: POST /goim/push/{keys,mids,room,all} and GET
 * /goim/online/{top,room,total}.  A push by mid asks the router each mid
 * belongs to (the ketama ring), a push by key asks every router (keys are
 * not sharded), then one record per comet goes to job; room and broadcast
 * pushes go to job at once.  Online counts are summed over every router.
 * The JSON envelope is goim's: {"code":0,"message":"","data":...}.
 */


typedef struct ngx_http_goim_logic_ctx_s  ngx_http_goim_logic_ctx_t;

typedef ngx_int_t (*ngx_http_goim_logic_handler_pt)(
    ngx_http_goim_logic_ctx_t *ctx);

typedef struct {
    ngx_str_t                        path;
    ngx_uint_t                       method;
    ngx_http_goim_logic_handler_pt   handler;
} ngx_http_goim_logic_endpoint_t;

typedef struct {
    ngx_str_t                        name;
    int64_t                          count;
} ngx_http_goim_logic_room_t;

typedef struct {
    ngx_flag_t                       enable;
} ngx_http_goim_logic_loc_conf_t;

struct ngx_http_goim_logic_ctx_s {
    ngx_http_request_t              *request;
    ngx_http_goim_logic_endpoint_t  *endpoint;
    ngx_goim_rpc_call_t             *call;
    ngx_goim_logic_fanout_t         *fanout;
    int32_t                          operation;
    ngx_str_t                        msg;

    ngx_array_t                      sessions;    /* Goim__Session */
    ngx_array_t                      rooms;       /* ..._room_t */
    char                           **asked;       /* full room names */
    int64_t                          limit;
    int64_t                          conn_count;
    int64_t                          ip_count;
    int64_t                          session_count;
};


static ngx_int_t ngx_http_goim_logic_handler(ngx_http_request_t *r);
static void ngx_http_goim_logic_body_handler(ngx_http_request_t *r);
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
static ngx_int_t ngx_http_goim_logic_fanout(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done);
static void ngx_http_goim_logic_sessions_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_sessions_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_top_each(void *data,
    ngx_goim_rpc_result_t *res);
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
static ngx_int_t ngx_http_goim_logic_add_room(ngx_http_goim_logic_ctx_t *ctx,
    const char *name, int64_t count);
static void ngx_http_goim_logic_sum_rooms(ngx_http_goim_logic_ctx_t *ctx);
static void ngx_http_goim_logic_finish_data(ngx_http_goim_logic_ctx_t *ctx,
    ngx_chain_t *data);
static u_char *ngx_http_goim_logic_strdup(ngx_pool_t *pool, const char *s);
static ngx_int_t ngx_http_goim_logic_job_push(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg **msgs, size_t n);
static void ngx_http_goim_logic_job_done(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_cleanup(void *data);
static ngx_int_t ngx_http_goim_logic_args(ngx_http_request_t *r,
    const char *name, ngx_array_t *values, ngx_uint_t split);
static ngx_int_t ngx_http_goim_logic_int_arg(ngx_http_request_t *r,
    const char *name, int64_t min, int64_t max, int64_t *value);
static ngx_int_t ngx_http_goim_logic_respond(ngx_http_request_t *r,
    ngx_uint_t status, ngx_int_t code, const char *fmt, ...);
static void ngx_http_goim_logic_finish(ngx_http_goim_logic_ctx_t *ctx,
    ngx_uint_t status, ngx_int_t code, const char *fmt, ...);
static char *ngx_http_goim_logic_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_goim_logic_create_loc_conf(ngx_conf_t *cf);


static ngx_http_goim_logic_endpoint_t  ngx_http_goim_logic_endpoints[] = {
    { ngx_string("/push/keys"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_keys },
    { ngx_string("/push/mids"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_mids },
    { ngx_string("/push/room"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_room },
    { ngx_string("/push/all"), NGX_HTTP_POST,
      ngx_http_goim_logic_push_all },
    { ngx_string("/online/top"), NGX_HTTP_GET,
      ngx_http_goim_logic_online_top },
    { ngx_string("/online/room"), NGX_HTTP_GET,
      ngx_http_goim_logic_online_room },
    { ngx_string("/online/total"), NGX_HTTP_GET,
      ngx_http_goim_logic_online_total },
    { ngx_null_string, 0, NULL }
};


static ngx_command_t  ngx_http_goim_logic_commands[] = {

    { ngx_string("goim_logic_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_logic_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_goim_logic_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

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

    for (ep = ngx_http_goim_logic_endpoints; ep->handler; ep++) {
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
    ngx_http_set_ctx(r, ctx, ngx_http_goim_logic_module);

    if (ngx_array_init(&ctx->sessions, r->pool, 4, sizeof(Goim__Session))
        != NGX_OK
        || ngx_array_init(&ctx->rooms, r->pool, 4,
                          sizeof(ngx_http_goim_logic_room_t))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
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
        ctx->operation = 0;
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
    ngx_str_t                *v;
    ngx_uint_t                i;
    ngx_array_t               keys;
    ngx_http_request_t       *r;
    ngx_goim_logic_conf_t    *lcf;
    Goim__SessionsByKeysReq   req = GOIM__SESSIONS_BY_KEYS_REQ__INIT;

    r = ctx->request;
    lcf = ngx_goim_logic_get_conf(ngx_cycle);

    if (ngx_array_init(&keys, r->pool, 4, sizeof(ngx_str_t)) != NGX_OK
        || ngx_http_goim_logic_args(r, "keys", &keys, 0) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    if (keys.nelts == 0) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "keys is required");
        return NGX_ERROR;
    }

    req.keys = ngx_palloc(r->pool, keys.nelts * sizeof(char *));
    if (req.keys == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    v = keys.elts;

    for (i = 0; i < keys.nelts; i++) {
        req.keys[i] = (char *) v[i].data;
    }

    req.n_keys = keys.nelts;

    /* keys are not sharded: every router is asked */

    if (ngx_http_goim_logic_fanout(ctx, ngx_http_goim_logic_sessions_each,
                                   ngx_http_goim_logic_sessions_done)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < ngx_goim_logic_nrouters(lcf); i++) {
        if (ngx_goim_logic_fanout_call(ctx->fanout, i,
                                       GOIM__METHOD__ROUTER_SESSIONS_BY_KEYS,
                                       &req.base)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_goim_logic_push_mids(ngx_http_goim_logic_ctx_t *ctx)
{
    u_char                   *p, *last;
    int64_t                   mid;
    ngx_str_t                *v;
    ngx_uint_t                i;
    ngx_uint_t                k, n, *owner;
    ngx_array_t               mids;
    ngx_http_request_t       *r;
    ngx_goim_logic_conf_t    *lcf;
    Goim__SessionsByMidsReq   req = GOIM__SESSIONS_BY_MIDS_REQ__INIT;
    Goim__SessionsByMidsReq   part = GOIM__SESSIONS_BY_MIDS_REQ__INIT;

    r = ctx->request;

    if (ngx_array_init(&mids, r->pool, 4, sizeof(ngx_str_t)) != NGX_OK
        || ngx_http_goim_logic_args(r, "mids", &mids, 1) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    if (mids.nelts == 0) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "mids is required");
        return NGX_ERROR;
    }

    req.mids = ngx_palloc(r->pool, mids.nelts * sizeof(int64_t));
    if (req.mids == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    v = mids.elts;

    for (i = 0; i < mids.nelts; i++) {
        p = v[i].data;
        last = p + v[i].len;
        mid = 0;

        if (p < last && *p == '-') {
            p++;
        }

        if (p == last || last - p > 18) {
            goto invalid;
        }

        for ( /* void */ ; p < last; p++) {
            if (*p < '0' || *p > '9') {
                goto invalid;
            }

            mid = mid * 10 + (*p - '0');
        }

        req.mids[i] = v[i].data[0] == '-' ? -mid : mid;
    }

    req.n_mids = mids.nelts;

    /* each mid to the router the ring gives it: one request per router */

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

invalid:

    ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                               "mids holds \"%V\", not an int64", &v[i]);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_goim_logic_push_room(ngx_http_goim_logic_ctx_t *ctx)
{
    u_char              *p;
    ngx_str_t            type, room;
    Goim__PushMsg        msg = GOIM__PUSH_MSG__INIT, *msgs[1];
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
    msg.room = ngx_pnalloc(r->pool, type.len + room.len + sizeof("://"));
    if (msg.room == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    p = ngx_cpymem(msg.room, type.data, type.len);
    p = ngx_cpymem(p, "://", 3);
    p = ngx_cpymem(p, room.data, room.len);
    *p = '\0';

    msg.type = GOIM__PUSH_MSG__TYPE__ROOM;
    msg.operation = ctx->operation;
    msg.msg.data = ctx->msg.data;
    msg.msg.len = ctx->msg.len;
    msgs[0] = &msg;

    return ngx_http_goim_logic_job_push(ctx, msgs, 1);
}


static ngx_int_t
ngx_http_goim_logic_push_all(ngx_http_goim_logic_ctx_t *ctx)
{
    int64_t         speed;
    ngx_int_t       rc;
    Goim__PushMsg   msg = GOIM__PUSH_MSG__INIT, *msgs[1];

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

    msg.type = GOIM__PUSH_MSG__TYPE__BROADCAST;
    msg.operation = ctx->operation;
    msg.speed = rc == NGX_OK ? (int32_t) speed : 0;
    msg.msg.data = ctx->msg.data;
    msg.msg.len = ctx->msg.len;
    msgs[0] = &msg;

    return ngx_http_goim_logic_job_push(ctx, msgs, 1);
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

    if (status) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "router %V", message);
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
    ngx_uint_t              i, n;
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

    if (ngx_http_goim_logic_fanout(ctx, ngx_http_goim_logic_top_each,
                                   ngx_http_goim_logic_top_done)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (ngx_goim_logic_fanout_call(ctx->fanout, i,
                                       GOIM__METHOD__ROUTER_ONLINE_TOP,
                                       &req.base)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
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

    if (status) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "router %V", message);
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
    ngx_str_t                    type, *v;
    ngx_uint_t                   i, j, n;
    ngx_array_t                  rooms;
    ngx_http_request_t          *r;
    ngx_goim_logic_conf_t       *lcf;
    ngx_http_goim_logic_room_t  *room;
    Goim__OnlineRoomReq          req = GOIM__ONLINE_ROOM_REQ__INIT;

    r = ctx->request;
    lcf = ngx_goim_logic_get_conf(ngx_cycle);

    if (ngx_http_arg(r, (u_char *) "type", 4, &type) != NGX_OK
        || type.len == 0)
    {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "type is required");
        return NGX_ERROR;
    }

    if (ngx_array_init(&rooms, r->pool, 4, sizeof(ngx_str_t)) != NGX_OK
        || ngx_http_goim_logic_args(r, "rooms", &rooms, 0) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    if (rooms.nelts == 0) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "rooms is required");
        return NGX_ERROR;
    }

    req.rooms = ngx_palloc(r->pool, rooms.nelts * sizeof(char *));
    if (req.rooms == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    /* ctx->rooms: the answer, one entry per room asked (each once) */

    v = rooms.elts;

    for (i = 0; i < rooms.nelts; i++) {
        room = ctx->rooms.elts;

        for (j = 0; j < ctx->rooms.nelts; j++) {
            if (room[j].name.len == v[i].len
                && ngx_strncmp(room[j].name.data, v[i].data, v[i].len) == 0)
            {
                break;
            }
        }

        if (j < ctx->rooms.nelts) {
            continue;
        }

        room = ngx_array_push(&ctx->rooms);
        p = ngx_pnalloc(r->pool, type.len + sizeof("://") + v[i].len);
        if (room == NULL || p == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }

        room->name = v[i];
        room->count = 0;

        req.rooms[req.n_rooms++] = (char *) p;
        p = ngx_cpymem(p, type.data, type.len);
        p = ngx_cpymem(p, "://", 3);
        p = ngx_cpymem(p, v[i].data, v[i].len);
        *p = '\0';
    }

    ctx->asked = req.rooms;

    if (ngx_http_goim_logic_fanout(ctx, ngx_http_goim_logic_room_each,
                                   ngx_http_goim_logic_room_done)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    n = ngx_goim_logic_nrouters(lcf);

    for (i = 0; i < n; i++) {
        if (ngx_goim_logic_fanout_call(ctx->fanout, i,
                                       GOIM__METHOD__ROUTER_ONLINE_ROOM,
                                       &req.base)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
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

    if (status) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "router %V", message);
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
    ngx_uint_t              i, n;
    ngx_goim_logic_conf_t  *lcf;
    Goim__OnlineTotalReq    req = GOIM__ONLINE_TOTAL_REQ__INIT;

    lcf = ngx_goim_logic_get_conf(ngx_cycle);

    if (ngx_http_goim_logic_fanout(ctx, ngx_http_goim_logic_total_each,
                                   ngx_http_goim_logic_total_done)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    n = ngx_goim_logic_nrouters(lcf);

    for (i = 0; i < n; i++) {
        if (ngx_goim_logic_fanout_call(ctx->fanout, i,
                                       GOIM__METHOD__ROUTER_ONLINE_TOTAL,
                                       &req.base)
            != NGX_OK)
        {
            ngx_http_finalize_request(ctx->request,
                                      NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
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

    if (status) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "router %V", message);
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


static u_char *
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

static ngx_int_t
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


static void
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


static ngx_int_t
ngx_http_goim_logic_job_push(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg **msgs, size_t n)
{
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

    if (res->status) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "queue: %V", &res->message);
        return;
    }

    ngx_http_goim_logic_finish(ctx, NGX_HTTP_OK, 0, "");
}


static ngx_int_t
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

    ctx->fanout = ngx_goim_logic_fanout_create(lcf, each, done, ctx);
    if (ctx->fanout == NULL) {
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
 * All values of a query argument: goim lists repeat the name
 * (mids=1&mids=2); split also accepts commas (mids=1,2).
 */

static ngx_int_t
ngx_http_goim_logic_args(ngx_http_request_t *r, const char *name,
    ngx_array_t *values, ngx_uint_t split)
{
    u_char     *p, *last, *end, *v, *dst;
    size_t      len;
    ngx_str_t  *value;

    len = ngx_strlen(name);
    p = r->args.data;
    last = p + r->args.len;

    while (p < last) {
        end = ngx_strlchr(p, last, '&');
        if (end == NULL) {
            end = last;
        }

        if ((size_t) (end - p) > len && p[len] == '='
            && ngx_strncmp(p, name, len) == 0)
        {
            v = p + len + 1;

            while (v < end) {
                u_char  *stop;

                stop = split ? ngx_strlchr(v, end, ',') : NULL;
                if (stop == NULL) {
                    stop = end;
                }

                if (stop > v) {
                    value = ngx_array_push(values);
                    if (value == NULL) {
                        return NGX_ERROR;
                    }

                    value->data = ngx_pnalloc(r->pool, stop - v + 1);
                    if (value->data == NULL) {
                        return NGX_ERROR;
                    }

                    dst = value->data;
                    ngx_unescape_uri(&dst, &v, stop - v, NGX_UNESCAPE_URI);
                    *dst = '\0';
                    value->len = dst - value->data;
                }

                v = stop + 1;
            }
        }

        p = end + 1;
    }

    return NGX_OK;
}


/* NGX_OK: set; NGX_DECLINED: absent or empty; NGX_ERROR: not a number */

static ngx_int_t
ngx_http_goim_logic_int_arg(ngx_http_request_t *r, const char *name,
    int64_t min, int64_t max, int64_t *value)
{
    u_char     *p, *last;
    int64_t     n;
    ngx_int_t   neg;
    ngx_str_t   arg;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &arg) != NGX_OK
        || arg.len == 0)
    {
        return NGX_DECLINED;
    }

    p = arg.data;
    last = p + arg.len;
    neg = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }

    if (p == last || last - p > 18) {
        return NGX_ERROR;
    }

    for (n = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        n = n * 10 + (*p - '0');
    }

    n = neg ? -n : n;

    if (n < min || n > max) {
        return NGX_ERROR;
    }

    *value = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_goim_logic_vrespond(ngx_http_request_t *r, ngx_uint_t status,
    ngx_int_t code, const char *fmt, va_list args)
{
    u_char       text[512], *p;
    size_t       len;
    ngx_buf_t   *b;
    ngx_int_t    rc;
    ngx_chain_t  out;

    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    len = p - text;

    b = ngx_create_temp_buf(r->pool, sizeof("{\"code\":,\"message\":\"\"}\n")
                                     + NGX_INT_T_LEN
                                     + ngx_escape_json(NULL, text, len)
                                     + len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "{\"code\":%i,\"message\":\"", code);
    b->last = (u_char *) ngx_escape_json(b->last, text, len);
    b->last = ngx_cpymem(b->last, "\"}\n", 3);
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


static ngx_int_t
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


static void
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

static void
ngx_http_goim_logic_finish_data(ngx_http_goim_logic_ctx_t *ctx,
    ngx_chain_t *data)
{
    ngx_buf_t           *head, *tail;
    ngx_int_t            rc;
    ngx_chain_t          out[2];
    ngx_http_request_t  *r;

    static ngx_str_t  h = ngx_string("{\"code\":0,\"message\":\"\",\"data\":");
    static ngx_str_t  t = ngx_string("}\n");

    r = ctx->request;

    head = ngx_calloc_buf(r->pool);
    tail = ngx_calloc_buf(r->pool);
    if (head == NULL || tail == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    head->pos = h.data;
    head->last = h.data + h.len;
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
    r->headers_out.content_length_n = h.len + t.len
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


static char *
ngx_http_goim_logic_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_goim_logic_loc_conf_t *glcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (glcf->enable) {
        return "is duplicate";
    }

    glcf->enable = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_goim_logic_handler;

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
     *     conf->enable = 0;
     */

    return conf;
}
