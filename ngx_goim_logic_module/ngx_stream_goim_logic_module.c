
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_goim_logic.h"


/*
 * The RPC comets call: Connect, Disconnect, Heartbeat, RenewOnline,
 * Receive, Nodes (goim's Logic.Nodes, node selection by logic's core,
 * with or without an http{} block) and Ack (a client's op 18, not goim's).  Each handler answers after router
 * did; a comet that goes away first cancels the router call through the
 * request's abort().  One file near 1,000 lines, on purpose: one RPC
 * service whose six methods share the request plumbing at its top.
 */


typedef struct {
    ngx_goim_rpc_session_conf_t  rpc;          /* goim_logic_rpc's bounds */
} ngx_stream_goim_logic_srv_conf_t;


typedef struct {
    ngx_goim_rpc_request_t    *request;
    ngx_goim_logic_worker_t   *worker;
    ngx_goim_rpc_call_t       *call;
    ngx_goim_logic_fanout_t   *fanout;
    ngx_pool_t                *pool;          /* RenewOnline's room sums */
    ngx_array_t                answers;       /* routers' answers, merged:
                                                 RenewOnline's room counts,
                                                 Nodes' Goim__CometInfo */
    Goim__ConnectReply         reply;
    goim_token_t               token;
    char                       key[40];
} ngx_stream_goim_logic_ctx_t;


static void ngx_stream_goim_logic_handler(ngx_stream_session_t *s);
static void ngx_stream_goim_logic_close(void *data);
static char *ngx_stream_goim_logic_rpc(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_stream_goim_logic_create_srv_conf(ngx_conf_t *cf);
static void ngx_stream_goim_logic_bad_input(void *ctx);

static void ngx_stream_goim_logic_connect(ngx_goim_rpc_request_t *r);
static void ngx_stream_goim_logic_connect_done(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_stream_goim_logic_disconnect(ngx_goim_rpc_request_t *r);
static void ngx_stream_goim_logic_disconnect_done(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_stream_goim_logic_heartbeat(ngx_goim_rpc_request_t *r);
static void ngx_stream_goim_logic_heartbeat_done(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_stream_goim_logic_renew_online(ngx_goim_rpc_request_t *r);
static void ngx_stream_goim_logic_renew_online_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_stream_goim_logic_renew_online_done(void *data,
    ngx_int_t status, ngx_str_t *message);
static void ngx_stream_goim_logic_receive(ngx_goim_rpc_request_t *r);
static void ngx_stream_goim_logic_ack(ngx_goim_rpc_request_t *r);
static void ngx_stream_goim_logic_ack_done(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_stream_goim_logic_nodes(ngx_goim_rpc_request_t *r);
static void ngx_stream_goim_logic_nodes_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_stream_goim_logic_nodes_done(void *data, ngx_int_t status,
    ngx_str_t *message);

static ngx_goim_logic_worker_t *ngx_stream_goim_logic_worker(
    ngx_goim_rpc_request_t *r);
static ngx_stream_goim_logic_ctx_t *ngx_stream_goim_logic_ctx(
    ngx_goim_rpc_request_t *r);
static void ngx_stream_goim_logic_ctx_free(ngx_stream_goim_logic_ctx_t *ctx);
static void ngx_stream_goim_logic_ask_routers(ngx_goim_rpc_request_t *r,
    size_t size, ngx_goim_logic_fanout_each_pt each,
    ngx_goim_logic_fanout_done_pt done, int32_t method,
    const ProtobufCMessage *req);
static void ngx_stream_goim_logic_abort(ngx_goim_rpc_request_t *r);
static ngx_int_t ngx_stream_goim_logic_call(ngx_goim_rpc_request_t *r,
    ngx_goim_rpc_peer_t *peer, int32_t method, const ProtobufCMessage *req,
    ngx_goim_rpc_done_pt done);
static void ngx_stream_goim_logic_fail(ngx_stream_goim_logic_ctx_t *ctx,
    ngx_goim_rpc_result_t *res);
static void ngx_stream_goim_logic_fanout_fail(
    ngx_stream_goim_logic_ctx_t *ctx, ngx_int_t status, ngx_str_t *message);
static ngx_int_t ngx_stream_goim_logic_allowed(
    ngx_stream_goim_logic_ctx_t *ctx);


static ngx_int_t ngx_stream_goim_logic_postconfiguration(ngx_conf_t *cf);


static ngx_command_t  ngx_stream_goim_logic_commands[] = {

    { ngx_string("goim_logic_rpc"),
      NGX_STREAM_SRV_CONF|NGX_CONF_ANY,
      ngx_stream_goim_logic_rpc,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_goim_logic_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_stream_goim_logic_postconfiguration, /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_goim_logic_create_srv_conf, /* create server configuration */
    NULL                                   /* merge server configuration */
};


ngx_module_t  ngx_stream_goim_logic_module = {
    NGX_MODULE_V1,
    &ngx_stream_goim_logic_module_ctx,     /* module context */
    ngx_stream_goim_logic_commands,        /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_goim_rpc_handler_t  ngx_stream_goim_logic_handlers[] = {
    { GOIM__METHOD__LOGIC_CONNECT, ngx_stream_goim_logic_connect },
    { GOIM__METHOD__LOGIC_DISCONNECT, ngx_stream_goim_logic_disconnect },
    { GOIM__METHOD__LOGIC_HEARTBEAT, ngx_stream_goim_logic_heartbeat },
    { GOIM__METHOD__LOGIC_RENEW_ONLINE, ngx_stream_goim_logic_renew_online },
    { GOIM__METHOD__LOGIC_RECEIVE, ngx_stream_goim_logic_receive },
    { GOIM__METHOD__LOGIC_NODES, ngx_stream_goim_logic_nodes },
    { GOIM__METHOD__LOGIC_ACK, ngx_stream_goim_logic_ack },
    { 0, NULL }
};


static void
ngx_stream_goim_logic_handler(ngx_stream_session_t *s)
{
    ngx_stream_goim_logic_srv_conf_t  *glscf;

    s->connection->log->action = "serving goim logic RPC";

    glscf = ngx_stream_get_module_srv_conf(s, ngx_stream_goim_logic_module);

    /* the sessions' requests carry this worker's state as r->ctx */

    if (ngx_goim_rpc_session_start(&ngx_goim_logic_worker->rpc,
                                   s->connection,
                                   ngx_stream_goim_logic_handlers,
                                   &glscf->rpc,
                                   ngx_stream_goim_logic_close, s)
        == NULL)
    {
        ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_stream_goim_logic_close(void *data)
{
    ngx_stream_finalize_session(data, NGX_STREAM_OK);
}


static char *
ngx_stream_goim_logic_rpc(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_goim_logic_srv_conf_t *glscf = conf;

    ngx_int_t                    rc;
    ngx_str_t                   *value;
    ngx_uint_t                   i;
    ngx_stream_core_srv_conf_t  *cscf;

    cscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_core_module);

    if (cscf->handler) {
        return "is duplicate: this server already has a handler";
    }

    cscf->handler = ngx_stream_goim_logic_handler;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        rc = ngx_goim_rpc_session_conf_param(cf, &value[i], &glscf->rpc);

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_stream_goim_logic_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_goim_logic_srv_conf_t  *conf;

    conf = ngx_palloc(cf->pool, sizeof(ngx_stream_goim_logic_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    ngx_goim_rpc_session_conf_init(&conf->rpc);
    conf->rpc.bad_input = ngx_stream_goim_logic_bad_input;

    return conf;
}


static void
ngx_stream_goim_logic_bad_input(void *ctx)
{
    ngx_goim_logic_worker_t *w = ctx;

    ngx_goim_logic_stats_inc(w->stats, rpc_bad_input);
}


/* notes a non-loopback RPC listener: init_conf refuses it without a secret */

static ngx_int_t
ngx_stream_goim_logic_postconfiguration(ngx_conf_t *cf)
{
    u_char                        text[NGX_SOCKADDR_STRLEN];
    size_t                        len;
    ngx_uint_t                    i;
    ngx_stream_listen_t          *ls;
    ngx_goim_logic_conf_t        *lcf;
    ngx_stream_core_srv_conf_t   *cscf;
    ngx_stream_core_main_conf_t  *cmcf;

    lcf = ngx_goim_logic_get_conf(cf->cycle);
    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    ls = cmcf->listen.elts;

    for (i = 0; i < cmcf->listen.nelts; i++) {
        cscf = ls[i].ctx->srv_conf[ngx_stream_core_module.ctx_index];

        if (cscf->handler != ngx_stream_goim_logic_handler
            || goim_auth_is_loopback(ls[i].sockaddr))
        {
            continue;
        }

        len = ngx_sock_ntop(ls[i].sockaddr, ls[i].socklen, text,
                            NGX_SOCKADDR_STRLEN, 1);

        lcf->rpc_open.data = ngx_pstrdup(cf->pool,
                                         &(ngx_str_t) { len, text });
        if (lcf->rpc_open.data == NULL) {
            return NGX_ERROR;
        }

        lcf->rpc_open.len = len;
    }

    return NGX_OK;
}


/* request plumbing: this worker's state, from the RPC plane */

static ngx_goim_logic_worker_t *
ngx_stream_goim_logic_worker(ngx_goim_rpc_request_t *r)
{
    return r->ctx;
}


/* a context that lives until the reply */

static ngx_stream_goim_logic_ctx_t *
ngx_stream_goim_logic_ctx(ngx_goim_rpc_request_t *r)
{
    ngx_stream_goim_logic_ctx_t  *ctx;

    ctx = ngx_calloc(sizeof(ngx_stream_goim_logic_ctx_t), ngx_cycle->log);
    if (ctx == NULL) {
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return NULL;
    }

    goim__connect_reply__init(&ctx->reply);

    ctx->request = r;
    ctx->worker = ngx_stream_goim_logic_worker(r);
    r->data = ctx;
    r->abort = ngx_stream_goim_logic_abort;

    return ctx;
}


static void
ngx_stream_goim_logic_ctx_free(ngx_stream_goim_logic_ctx_t *ctx)
{
    if (ctx->request) {
        ctx->request->abort = NULL;
        ctx->request->data = NULL;
    }

    if (ctx->fanout) {
        ngx_goim_logic_fanout_free(ctx->fanout);
    }

    if (ctx->pool) {
        ngx_destroy_pool(ctx->pool);
    }

    goim_token_free(&ctx->token);
    ngx_free(ctx);
}


static void
ngx_stream_goim_logic_abort(ngx_goim_rpc_request_t *r)
{
    ngx_stream_goim_logic_ctx_t *ctx = r->data;

    if (ctx->call) {
        ngx_goim_rpc_cancel(ctx->call);
    }

    ctx->request = NULL;

    ngx_stream_goim_logic_ctx_free(ctx);
}


static ngx_int_t
ngx_stream_goim_logic_call(ngx_goim_rpc_request_t *r,
    ngx_goim_rpc_peer_t *peer, int32_t method, const ProtobufCMessage *req,
    ngx_goim_rpc_done_pt done)
{
    ngx_stream_goim_logic_ctx_t  *ctx;

    ctx = r->data;

    if (ctx == NULL) {
        ctx = ngx_stream_goim_logic_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    if (peer == NULL) {
        ngx_stream_goim_logic_ctx_free(ctx);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAVAILABLE,
                                 "no goim_logic_router configured");
        return NGX_ERROR;
    }

    ctx->call = ngx_goim_rpc_call(peer, method, req,
                                  ctx->worker->conf->rpc_timeout, done, ctx);
    if (ctx->call == NULL) {
        ngx_stream_goim_logic_ctx_free(ctx);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_stream_goim_logic_fail(ngx_stream_goim_logic_ctx_t *ctx,
    ngx_goim_rpc_result_t *res)
{
    u_char                   msg[256], *p;
    ngx_goim_rpc_request_t  *r;

    r = ctx->request;

    p = ngx_snprintf(msg, sizeof(msg) - 1, "router: %V", &res->message);
    *p = '\0';

    ngx_stream_goim_logic_ctx_free(ctx);

    ngx_goim_rpc_reply_error(r, res->status, (char *) msg);
}


/* a fanout's first error, naming its router */

static void
ngx_stream_goim_logic_fanout_fail(ngx_stream_goim_logic_ctx_t *ctx,
    ngx_int_t status, ngx_str_t *message)
{
    u_char                   msg[300], *p;
    ngx_goim_rpc_request_t  *r;

    r = ctx->request;

    p = ngx_snprintf(msg, sizeof(msg) - 1, "router %V", message);
    *p = '\0';

    ngx_stream_goim_logic_ctx_free(ctx);

    ngx_goim_rpc_reply_error(r, status, (char *) msg);
}


/* Connect: check the token, register the session in router */

static void
ngx_stream_goim_logic_connect(ngx_goim_rpc_request_t *r)
{
    Goim__ConnectReq *req = (Goim__ConnectReq *) r->msg;

    const char                   *err;
    ngx_goim_logic_conf_t        *lcf;
    ngx_stream_goim_logic_ctx_t  *ctx;
    Goim__Session                 session = GOIM__SESSION__INIT;
    Goim__SessionPutReq           put = GOIM__SESSION_PUT_REQ__INIT;

    ctx = ngx_stream_goim_logic_ctx(r);
    if (ctx == NULL) {
        return;
    }

    lcf = ctx->worker->conf;

    err = ngx_goim_logic_token_parse(lcf, &ctx->token, req->token.data,
                                     req->token.len);
    if (err) {
        ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                      "goim logic: auth from %s refused: %s",
                      req->client_ip, err);

        ngx_goim_logic_stats_inc(ctx->worker->stats, auth_refused);

        ngx_stream_goim_logic_ctx_free(ctx);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAUTHORIZED,
                                 err);
        return;
    }

    ngx_goim_logic_stats_inc(ctx->worker->stats, auth_accepted);

    ctx->reply.mid = ctx->token.mid;
    ctx->reply.room_id = ctx->token.room ? ctx->token.room : "";
    ctx->reply.accepts = ctx->token.accepts;
    ctx->reply.n_accepts = ctx->token.naccepts;

    /* room recovery is comet's: logic only reads what the client asked */
    ctx->reply.recover = ctx->token.recover;
    ctx->reply.room_epoch = ctx->token.room_epoch;
    ctx->reply.room_seq = ctx->token.room_seq;
    ctx->reply.all_epoch = ctx->token.all_epoch;
    ctx->reply.all_seq = ctx->token.all_seq;

    if (ctx->token.restricted
        && ngx_stream_goim_logic_allowed(ctx) != NGX_OK)
    {
        ngx_stream_goim_logic_ctx_free(ctx);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return;
    }

    if (ctx->token.key) {
        ctx->reply.key = ctx->token.key;

    } else {
        ngx_goim_logic_uuid(ctx->key);
        ctx->reply.key = ctx->key;
    }

    /* goim hands the deadline to comet in nanoseconds */
    ctx->reply.heartbeat = (int64_t) lcf->heartbeat * lcf->heartbeat_max
                           * 1000000;

    session.mid = ctx->reply.mid;
    session.key = ctx->reply.key;
    session.server = req->server;
    session.room = ctx->reply.room_id;
    put.session = &session;

    (void) ngx_stream_goim_logic_call(r,
                                ngx_goim_logic_router(ctx->worker,
                                                      ctx->reply.mid),
                                GOIM__METHOD__ROUTER_SESSION_PUT, &put.base,
                                ngx_stream_goim_logic_connect_done);
}


/*
 * A signed token's bounds for comet: the rooms op 12 may enter (room_id
 * and the "rooms" claim) and the operations op 14 may add (accepts and the
 * "ops" claim).  They point into the token, freed with the context.
 */

static ngx_int_t
ngx_stream_goim_logic_allowed(ngx_stream_goim_logic_ctx_t *ctx)
{
    size_t         n;
    goim_token_t  *t;

    t = &ctx->token;

    if (ctx->pool == NULL) {
        ctx->pool = ngx_create_pool(1024, ngx_cycle->log);
        if (ctx->pool == NULL) {
            return NGX_ERROR;
        }
    }

    ctx->reply.restricted = 1;

    ctx->reply.allowed_rooms = ngx_palloc(ctx->pool,
                                          (t->nrooms + 1) * sizeof(char *));
    ctx->reply.allowed_ops = ngx_palloc(ctx->pool,
                                        (t->naccepts + t->nops + 1)
                                        * sizeof(int32_t));

    if (ctx->reply.allowed_rooms == NULL || ctx->reply.allowed_ops == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    if (t->room && t->room[0]) {
        ctx->reply.allowed_rooms[n++] = t->room;
    }

    if (t->nrooms) {
        ngx_memcpy(&ctx->reply.allowed_rooms[n], t->rooms,
                   t->nrooms * sizeof(char *));
        n += t->nrooms;
    }

    ctx->reply.n_allowed_rooms = n;

    if (t->naccepts) {
        ngx_memcpy(ctx->reply.allowed_ops, t->accepts,
                   t->naccepts * sizeof(int32_t));
    }

    if (t->nops) {
        ngx_memcpy(&ctx->reply.allowed_ops[t->naccepts], t->ops,
                   t->nops * sizeof(int32_t));
    }

    ctx->reply.n_allowed_ops = t->naccepts + t->nops;

    return NGX_OK;
}


static void
ngx_stream_goim_logic_connect_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_stream_goim_logic_ctx_t *ctx = data;

    ngx_goim_rpc_request_t  *r;

    ctx->call = NULL;

    if (res->status) {
        /*
         * goim lets a client in when its session could not be stored, and
         * pushes to it then vanish; refusing the connection is honest.
         */
        ngx_stream_goim_logic_fail(ctx, res);
        return;
    }

    /* the reply lives in ctx: send it before ctx goes */
    r = ctx->request;
    r->abort = NULL;
    r->data = NULL;
    ctx->request = NULL;

    ngx_goim_rpc_reply(r, &ctx->reply.base);

    ngx_stream_goim_logic_ctx_free(ctx);
}


/* Disconnect: router removes the session only if it is still this one */

static void
ngx_stream_goim_logic_disconnect(ngx_goim_rpc_request_t *r)
{
    Goim__DisconnectReq *req = (Goim__DisconnectReq *) r->msg;

    Goim__SessionDelReq  del = GOIM__SESSION_DEL_REQ__INIT;

    del.mid = req->mid;
    del.key = req->key;
    del.server = req->server;

    (void) ngx_stream_goim_logic_call(r,
                    ngx_goim_logic_router(ngx_stream_goim_logic_worker(r),
                                          req->mid),
                    GOIM__METHOD__ROUTER_SESSION_DEL, &del.base,
                    ngx_stream_goim_logic_disconnect_done);
}


static void
ngx_stream_goim_logic_disconnect_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_stream_goim_logic_ctx_t *ctx = data;

    ngx_goim_rpc_request_t  *r;
    Goim__SessionDelReply   *del;
    Goim__DisconnectReply    reply = GOIM__DISCONNECT_REPLY__INIT;

    ctx->call = NULL;

    if (res->status) {
        ngx_stream_goim_logic_fail(ctx, res);
        return;
    }

    del = (Goim__SessionDelReply *) res->reply;
    reply.has = del->has;

    r = ctx->request;
    ngx_stream_goim_logic_ctx_free(ctx);

    ngx_goim_rpc_reply(r, &reply.base);
}


/* Heartbeat: renew the session's lease (router re-adds an expired one) */

static void
ngx_stream_goim_logic_heartbeat(ngx_goim_rpc_request_t *r)
{
    Goim__HeartbeatReq *req = (Goim__HeartbeatReq *) r->msg;

    Goim__Session          session = GOIM__SESSION__INIT;
    Goim__SessionRenewReq  renew = GOIM__SESSION_RENEW_REQ__INIT;

    session.mid = req->mid;
    session.key = req->key;
    session.server = req->server;
    session.room = req->room_id;
    renew.session = &session;

    (void) ngx_stream_goim_logic_call(r,
                    ngx_goim_logic_router(ngx_stream_goim_logic_worker(r),
                                          req->mid),
                    GOIM__METHOD__ROUTER_SESSION_RENEW, &renew.base,
                    ngx_stream_goim_logic_heartbeat_done);
}


static void
ngx_stream_goim_logic_heartbeat_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_stream_goim_logic_ctx_t *ctx = data;

    ngx_goim_rpc_request_t  *r;
    Goim__HeartbeatReply     reply = GOIM__HEARTBEAT_REPLY__INIT;

    ctx->call = NULL;

    if (res->status) {
        ngx_stream_goim_logic_fail(ctx, res);
        return;
    }

    r = ctx->request;
    ngx_stream_goim_logic_ctx_free(ctx);

    ngx_goim_rpc_reply(r, &reply.base);
}


/*
 * The same call to every router; the answers are gathered in ctx->answers
 * (entries of size bytes, in ctx->pool) until the reply.
 */

static void
ngx_stream_goim_logic_ask_routers(ngx_goim_rpc_request_t *r, size_t size,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done,
    int32_t method, const ProtobufCMessage *req)
{
    ngx_stream_goim_logic_ctx_t  *ctx;

    if (ngx_stream_goim_logic_worker(r)->nrouters == 0) {
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAVAILABLE,
                                 "no goim_logic_router configured");
        return;
    }

    ctx = ngx_stream_goim_logic_ctx(r);
    if (ctx == NULL) {
        return;
    }

    ctx->pool = ngx_create_pool(4096, ngx_cycle->log);

    if (ctx->pool == NULL
        || ngx_array_init(&ctx->answers, ctx->pool, 16, size) != NGX_OK)
    {
        goto failed;
    }

    ctx->fanout = ngx_goim_logic_fanout_create(ctx->worker, each, done, ctx);

    if (ctx->fanout == NULL
        || ngx_goim_logic_fanout_call_all(ctx->fanout, method, req) != NGX_OK)
    {
        goto failed;
    }

    return;

failed:

    ngx_stream_goim_logic_ctx_free(ctx);
    ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                             "out of memory");
}


/*
 * RenewOnline: the comet's registration goes to every router (each keeps
 * the comet registry); the room counts in the reply are the sum of the
 * sessions each router holds per room.
 */

static void
ngx_stream_goim_logic_renew_online(ngx_goim_rpc_request_t *r)
{
    Goim__OnlineReq *req = (Goim__OnlineReq *) r->msg;

    Goim__CometRenewReq  renew = GOIM__COMET_RENEW_REQ__INIT;

    if (req->comet == NULL || req->comet->id[0] == '\0') {
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_BAD_REQUEST,
                                 "RenewOnline needs the comet's info");
        return;
    }

    renew.comet = req->comet;
    renew.n_room_count = req->n_room_count;
    renew.room_count = (Goim__CometRenewReq__RoomCountEntry **)
                       req->room_count;

    ngx_stream_goim_logic_ask_routers(r,
                    sizeof(Goim__OnlineReply__AllRoomCountEntry),
                    ngx_stream_goim_logic_renew_online_each,
                    ngx_stream_goim_logic_renew_online_done,
                    GOIM__METHOD__ROUTER_COMET_RENEW, &renew.base);
}


static void
ngx_stream_goim_logic_renew_online_each(void *data,
    ngx_goim_rpc_result_t *res)
{
    ngx_stream_goim_logic_ctx_t *ctx = data;

    size_t                                  i;
    Goim__CometRenewReply                  *renew;
    Goim__OnlineReply__AllRoomCountEntry   *e;

    renew = (Goim__CometRenewReply *) res->reply;

    for (i = 0; i < renew->n_all_room_count; i++) {
        e = ngx_array_push(&ctx->answers);
        if (e == NULL) {
            return;
        }

        goim__online_reply__all_room_count_entry__init(e);
        e->value = renew->all_room_count[i]->value;

        e->key = ngx_goim_logic_strdup(ctx->pool,
                                       renew->all_room_count[i]->key);
        if (e->key == NULL) {
            ctx->answers.nelts--;
            return;
        }
    }
}


static int ngx_libc_cdecl
ngx_stream_goim_logic_room_cmp(const void *one, const void *two)
{
    const Goim__OnlineReply__AllRoomCountEntry  *a = one, *b = two;

    return ngx_strcmp(a->key, b->key);
}


static void
ngx_stream_goim_logic_renew_online_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_stream_goim_logic_ctx_t *ctx = data;

    ngx_uint_t                              i, n;
    ngx_goim_rpc_request_t                 *r;
    Goim__OnlineReply__AllRoomCountEntry   *e, **ptrs;
    Goim__OnlineReply                       reply = GOIM__ONLINE_REPLY__INIT;

    r = ctx->request;

    if (status) {
        ngx_stream_goim_logic_fanout_fail(ctx, status, message);
        return;
    }

    /* the same room from several routers: summed */

    e = ctx->answers.elts;
    ngx_qsort(e, ctx->answers.nelts,
              sizeof(Goim__OnlineReply__AllRoomCountEntry),
              ngx_stream_goim_logic_room_cmp);

    ptrs = ngx_palloc(ctx->pool, (ctx->answers.nelts + 1) * sizeof(void *));
    if (ptrs == NULL) {
        ngx_stream_goim_logic_ctx_free(ctx);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return;
    }

    n = 0;

    for (i = 0; i < ctx->answers.nelts; i++) {
        if (n && ngx_strcmp(ptrs[n - 1]->key, e[i].key) == 0) {
            ptrs[n - 1]->value += e[i].value;
            continue;
        }

        ptrs[n++] = &e[i];
    }

    reply.n_all_room_count = n;
    reply.all_room_count = ptrs;

    /* the reply lives in ctx's pool: send it before ctx goes */
    r->abort = NULL;
    r->data = NULL;
    ctx->request = NULL;

    ngx_goim_rpc_reply(r, &reply.base);

    ngx_stream_goim_logic_ctx_free(ctx);
}


/* Receive: goim only logs what clients send upstream */

static void
ngx_stream_goim_logic_receive(ngx_goim_rpc_request_t *r)
{
    Goim__ReceiveReq *req = (Goim__ReceiveReq *) r->msg;

    Goim__ReceiveReply  reply = GOIM__RECEIVE_REPLY__INIT;

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "goim logic: receive from mid %L key \"%s\" op %D",
                  req->mid, req->key, req->proto ? req->proto->op : 0);

    ngx_goim_rpc_reply(r, &reply.base);
}


/*
 * Ack (not in goim): a client's op 18 becomes job's records, in the queue
 * ensure messages travel by: ONLINE when the connection starts to
 * acknowledge (job sends it what its mid has pending), ACK with the ids.
 * Answered once the queue took them, so a comet's link bounds how many
 * are in flight.
 */

static void
ngx_stream_goim_logic_ack(ngx_goim_rpc_request_t *r)
{
    Goim__AckReq *req = (Goim__AckReq *) r->msg;

    size_t                        n;
    int64_t                       now;
    ngx_time_t                   *tp;
    ngx_goim_logic_worker_t      *w;
    ngx_stream_goim_logic_ctx_t  *ctx;
    Goim__PushMsg                 online = GOIM__PUSH_MSG__INIT;
    Goim__PushMsg                 ack = GOIM__PUSH_MSG__INIT;
    Goim__PushMsg                *msgs[2];
    Goim__AckReply                reply = GOIM__ACK_REPLY__INIT;

    w = ngx_stream_goim_logic_worker(r);

    if (req->key == NULL || req->key[0] == '\0'
        || req->server == NULL || req->server[0] == '\0')
    {
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_BAD_REQUEST,
                                 "Ack needs a key and a server");
        return;
    }

    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000 + tp->msec;
    n = 0;

    if (req->online) {
        online.type = GOIM__PUSH_MSG__TYPE__ONLINE;
        online.mid = req->mid;
        online.keys = &req->key;
        online.n_keys = 1;
        online.server = req->server;
        online.time_ms = now;
        msgs[n++] = &online;
    }

    if (req->n_ids) {
        ack.type = GOIM__PUSH_MSG__TYPE__ACK;
        ack.mid = req->mid;
        ack.keys = &req->key;
        ack.n_keys = 1;
        ack.server = req->server;
        ack.ids = req->ids;
        ack.n_ids = req->n_ids;
        ack.time_ms = now;
        msgs[n++] = &ack;
    }

    /* by the queue the ensure records went by: Kafka, else job's RPC */

    if (n == 0 || (w->job_peer == NULL && w->kafka == NULL)) {
        ngx_goim_rpc_reply(r, &reply.base);
        return;
    }

    ctx = ngx_stream_goim_logic_ctx(r);
    if (ctx == NULL) {
        return;
    }

    switch (ngx_goim_logic_queue_push(w, msgs, n,
                                      ngx_stream_goim_logic_ack_done,
                                      ctx, &ctx->call))
    {
    case NGX_OK:
        return;

    case NGX_DECLINED:
        ngx_stream_goim_logic_ctx_free(ctx);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAVAILABLE,
                                 "no queue configured (goim_logic_job)");
        return;

    default:
        ngx_stream_goim_logic_ctx_free(ctx);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return;
    }
}


static void
ngx_stream_goim_logic_ack_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_stream_goim_logic_ctx_t *ctx = data;

    u_char                   msg[256], *p;
    ngx_goim_rpc_request_t  *r;
    Goim__AckReply           reply = GOIM__ACK_REPLY__INIT;

    ctx->call = NULL;
    r = ctx->request;

    ngx_stream_goim_logic_ctx_free(ctx);

    if (res->status) {
        p = ngx_snprintf(msg, sizeof(msg) - 1, "queue: %V", &res->message);
        *p = '\0';

        ngx_goim_rpc_reply_error(r, res->status, (char *) msg);
        return;
    }

    ngx_goim_rpc_reply(r, &reply.base);
}


/*
 * Nodes: /goim/nodes/weighted over RPC (goim's Logic.Nodes), with the
 * http{} level goim_logic_node_* settings (their defaults without an
 * http{} block); no client region (goim's IP lookup is a stub).
 */

static void
ngx_stream_goim_logic_nodes(ngx_goim_rpc_request_t *r)
{
    Goim__CometListReq  req = GOIM__COMET_LIST_REQ__INIT;

    ngx_stream_goim_logic_ask_routers(r, sizeof(Goim__CometInfo),
                                      ngx_stream_goim_logic_nodes_each,
                                      ngx_stream_goim_logic_nodes_done,
                                      GOIM__METHOD__ROUTER_COMET_LIST,
                                      &req.base);
}


static void
ngx_stream_goim_logic_nodes_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_stream_goim_logic_ctx_t *ctx = data;

    (void) ngx_goim_logic_comets_merge(&ctx->answers, ctx->pool,
                                       (Goim__CometListReply *) res->reply);
}


static void
ngx_stream_goim_logic_nodes_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_stream_goim_logic_ctx_t *ctx = data;

    ngx_str_t                     region;
    ngx_array_t                   nodes;
    Goim__NodesReq               *req;
    Goim__Backoff                 backoff = GOIM__BACKOFF__INIT;
    Goim__NodesReply              reply = GOIM__NODES_REPLY__INIT;
    ngx_goim_rpc_request_t       *r;
    ngx_goim_logic_conf_t        *lcf;
    ngx_goim_logic_nodes_conf_t  *nc;

    r = ctx->request;
    req = (Goim__NodesReq *) r->msg;

    if (status) {
        ngx_stream_goim_logic_fanout_fail(ctx, status, message);
        return;
    }

    lcf = ctx->worker->conf;
    nc = lcf->nodes;

    ngx_str_null(&region);

    if (ngx_array_init(&nodes, ctx->pool, 8, sizeof(char *)) != NGX_OK
        || ngx_goim_logic_nodes_pick(ctx->worker, &ctx->answers, &region,
                                     req->platform
                                     && ngx_strcmp(req->platform, "web") == 0,
                                     ctx->pool, &nodes)
           != NGX_OK)
    {
        ngx_stream_goim_logic_ctx_free(ctx);
        ngx_goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 "out of memory");
        return;
    }

    reply.domain = nc->domain.len ? (char *) nc->domain.data : "";
    reply.tcp_port = (int32_t) nc->tcp_port;
    reply.ws_port = (int32_t) nc->ws_port;
    reply.wss_port = (int32_t) nc->wss_port;
    reply.heartbeat = (int32_t) (lcf->heartbeat / 1000);
    reply.heartbeat_max = (int32_t) lcf->heartbeat_max;
    reply.nodes = nodes.elts;
    reply.n_nodes = nodes.nelts;

    backoff.max_delay = (int32_t) nc->max_delay;
    backoff.base_delay = (int32_t) nc->base_delay;
    backoff.factor = (float) strtod((char *) nc->factor.data, NULL);
    backoff.jitter = (float) strtod((char *) nc->jitter.data, NULL);
    reply.backoff = &backoff;

    /* the reply lives in ctx's pool: send it before ctx goes */
    r->abort = NULL;
    r->data = NULL;
    ctx->request = NULL;

    ngx_goim_rpc_reply(r, &reply.base);

    ngx_stream_goim_logic_ctx_free(ctx);
}
