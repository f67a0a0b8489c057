
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_logic.h"


/*
 * goim v2's business API: POST /goim/push/{keys,mids,room,all}.  A push
 * by key or mid asks router where those connections are, then hands one
 * record per comet to job; room and broadcast pushes go to job at once.
 * The JSON envelope is goim's: {"code":0,"message":""}.
 */


typedef struct ngx_http_goim_logic_ctx_s  ngx_http_goim_logic_ctx_t;

typedef ngx_int_t (*ngx_http_goim_logic_handler_pt)(
    ngx_http_goim_logic_ctx_t *ctx);

typedef struct {
    ngx_str_t                        path;
    ngx_http_goim_logic_handler_pt   handler;
} ngx_http_goim_logic_endpoint_t;

typedef struct {
    ngx_flag_t                       enable;
} ngx_http_goim_logic_loc_conf_t;

struct ngx_http_goim_logic_ctx_s {
    ngx_http_request_t              *request;
    ngx_http_goim_logic_endpoint_t  *endpoint;
    ngx_goim_rpc_call_t             *call;
    int32_t                          operation;
    ngx_str_t                        msg;
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
static void ngx_http_goim_logic_sessions_done(void *data,
    ngx_goim_rpc_result_t *res);
static ngx_int_t ngx_http_goim_logic_job_push(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg **msgs, size_t n);
static void ngx_http_goim_logic_job_done(void *data,
    ngx_goim_rpc_result_t *res);
static ngx_int_t ngx_http_goim_logic_call(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_rpc_peer_t *peer, int32_t method, const ProtobufCMessage *req,
    ngx_goim_rpc_done_pt done);
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
    { ngx_string("/push/keys"), ngx_http_goim_logic_push_keys },
    { ngx_string("/push/mids"), ngx_http_goim_logic_push_mids },
    { ngx_string("/push/room"), ngx_http_goim_logic_push_room },
    { ngx_string("/push/all"), ngx_http_goim_logic_push_all },
    { ngx_null_string, NULL }
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

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_goim_logic_respond(r, NGX_HTTP_NOT_ALLOWED, -405,
                                           "%V needs POST", &ep->path);
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
    Goim__SessionsByKeysReq   req = GOIM__SESSIONS_BY_KEYS_REQ__INIT;

    r = ctx->request;

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

    /* keys are not sharded: with several routers, ask the first */
    return ngx_http_goim_logic_call(ctx,
                      ngx_goim_logic_router(ngx_goim_logic_get_conf(ngx_cycle),
                                            0),
                      GOIM__METHOD__ROUTER_SESSIONS_BY_KEYS, &req.base,
                      ngx_http_goim_logic_sessions_done);
}


static ngx_int_t
ngx_http_goim_logic_push_mids(ngx_http_goim_logic_ctx_t *ctx)
{
    u_char                   *p, *last;
    int64_t                   mid;
    ngx_str_t                *v;
    ngx_uint_t                i;
    ngx_array_t               mids;
    ngx_http_request_t       *r;
    Goim__SessionsByMidsReq   req = GOIM__SESSIONS_BY_MIDS_REQ__INIT;

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

    return ngx_http_goim_logic_call(ctx,
                      ngx_goim_logic_router(ngx_goim_logic_get_conf(ngx_cycle),
                                            req.mids[0]),
                      GOIM__METHOD__ROUTER_SESSIONS_BY_MIDS, &req.base,
                      ngx_http_goim_logic_sessions_done);

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


/* router answered where the keys are: one PUSH record per comet */

static void
ngx_http_goim_logic_sessions_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    size_t               i, j, n;
    Goim__Session       *s;
    Goim__PushMsg      **msgs, *m;
    Goim__SessionsReply *reply;
    ngx_http_request_t  *r;

    ctx->call = NULL;
    r = ctx->request;

    if (res->status) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "router: %V", &res->message);
        return;
    }

    reply = (Goim__SessionsReply *) res->reply;

    if (reply->n_sessions == 0) {
        /* as in goim: nobody online is not an error */
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_OK, 0, "");
        return;
    }

    msgs = ngx_pcalloc(r->pool, reply->n_sessions
                                * (sizeof(Goim__PushMsg *)
                                   + sizeof(Goim__PushMsg)));
    if (msgs == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    m = (Goim__PushMsg *) (msgs + reply->n_sessions);
    n = 0;

    for (i = 0; i < reply->n_sessions; i++) {
        s = reply->sessions[i];

        for (j = 0; j < n; j++) {
            if (ngx_strcmp(msgs[j]->server, s->server) == 0) {
                break;
            }
        }

        if (j == n) {
            goim__push_msg__init(&m[n]);
            m[n].type = GOIM__PUSH_MSG__TYPE__PUSH;
            m[n].operation = ctx->operation;
            m[n].server = s->server;
            m[n].msg.data = ctx->msg.data;
            m[n].msg.len = ctx->msg.len;
            m[n].keys = ngx_palloc(r->pool,
                                   reply->n_sessions * sizeof(char *));
            if (m[n].keys == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            msgs[n] = &m[n];
            n++;
        }

        msgs[j]->keys[msgs[j]->n_keys++] = s->key;
    }

    /* the record is packed now, while the router's reply is alive */
    (void) ngx_http_goim_logic_job_push(ctx, msgs, n);
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
ngx_http_goim_logic_call(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_rpc_peer_t *peer, int32_t method, const ProtobufCMessage *req,
    ngx_goim_rpc_done_pt done)
{
    if (peer == NULL) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "no goim_logic_router configured");
        return NGX_ERROR;
    }

    ctx->call = ngx_goim_rpc_call(peer, method, req,
                                  ngx_goim_logic_get_conf(ngx_cycle)
                                      ->rpc_timeout,
                                  done, ctx);
    if (ctx->call == NULL) {
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
