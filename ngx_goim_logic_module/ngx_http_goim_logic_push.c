
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


/*
 * POST /goim/push/{keys,mids,room,all} (and v1's pushes, which end here
 * too): a push by mid asks the router each mid belongs to (the ketama
 * ring), a push by key asks every router (keys are not sharded), then one
 * record per comet goes to the queue; room and broadcast pushes go to the
 * queue at once.
 *
 * With ensure=1 (not in goim) a push by mid or key becomes one ENSURE
 * record per mid instead, with the call's id, its expiry and the mid's
 * sessions, for job to keep until a connection acknowledges it
 * (docs/architecture.md, "Ensure messages").
 */


static void ngx_http_goim_logic_sessions_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_sessions_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_ensure_push(ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_job_push(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg **msgs, size_t n);
static void ngx_http_goim_logic_job_done(void *data,
    ngx_goim_rpc_result_t *res);


ngx_int_t
ngx_http_goim_logic_push_keys(ngx_http_goim_logic_ctx_t *ctx)
{
    goim_args_list_t          keys;
    Goim__SessionsByKeysReq   req = GOIM__SESSIONS_BY_KEYS_REQ__INIT;

    /* each key once: a repeated key would be delivered again */

    if (ngx_http_goim_logic_list_arg(ctx, "keys", 0, &keys) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_goim_logic_ensure_args(ctx) != NGX_OK) {
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


ngx_int_t
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

    if (ngx_http_goim_logic_ensure_args(ctx) != NGX_OK) {
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

    ctx->mids = req.mids;
    ctx->nmids = req.n_mids;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "goim logic: %uz mids, %uz repeats ignored",
                   req.n_mids, nmids - req.n_mids);

    n = ctx->worker->nrouters;

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
        owner[i] = ngx_goim_logic_router_index(ctx->worker, req.mids[i]);
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


ngx_int_t
ngx_http_goim_logic_push_room(ngx_http_goim_logic_ctx_t *ctx)
{
    char                *room_id;
    ngx_str_t            type, room;
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

    room_id = ngx_http_goim_logic_room_id(r->pool, &type, room.data,
                                          room.len);
    if (room_id == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    return ngx_http_goim_logic_push_one(ctx, GOIM__PUSH_MSG__TYPE__ROOM,
                                        room_id, 0);
}


ngx_int_t
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
        copy->key = ngx_goim_logic_strdup(r->pool, s->key);
        copy->server = ngx_goim_logic_strdup(r->pool, s->server);

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

    if (ctx->ensure) {
        ngx_http_goim_logic_ensure_push(ctx);
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


/*
 * ensure=0|1 and ttl=SECONDS (1 .. goim_logic_ensure_max_ttl, default
 * goim_logic_ensure_ttl): NGX_OK, or the request was answered 400/503.
 */

ngx_int_t
ngx_http_goim_logic_ensure_args(ngx_http_goim_logic_ctx_t *ctx)
{
    int64_t                 v, max;
    ngx_int_t               rc;
    ngx_http_request_t     *r;
    ngx_goim_logic_conf_t  *lcf;

    r = ctx->request;
    lcf = ctx->worker->conf;

    rc = ngx_http_goim_logic_int_arg(r, "ensure", 0, 1, &v);
    if (rc == NGX_ERROR) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "ensure must be 0 or 1");
        return NGX_ERROR;
    }

    ctx->ensure = (rc == NGX_OK && v == 1);

    max = (int64_t) (lcf->ensure_max_ttl / 1000);

    rc = ngx_http_goim_logic_int_arg(r, "ttl", 1, max, &v);
    if (rc == NGX_ERROR) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "ttl must be 1 .. %L seconds "
                                   "(goim_logic_ensure_max_ttl)", max);
        return NGX_ERROR;
    }

    if (rc == NGX_OK && !ctx->ensure) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "ttl needs ensure=1");
        return NGX_ERROR;
    }

    if (!ctx->ensure) {
        return NGX_OK;
    }

    if (ctx->worker->job_peer == NULL && ctx->worker->kafka == NULL) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "ensure=1 needs a queue "
                                   "(goim_logic_queue job=... or kafka=...)");
        return NGX_ERROR;
    }

    ctx->ensure_ttl = rc == NGX_OK ? (ngx_msec_t) v * 1000 : lcf->ensure_ttl;
    ngx_goim_logic_uuid(ctx->ensure_id);

    return NGX_OK;
}


/*
 * One ENSURE record per mid: by mid every mid asked, online or not (job
 * keeps it for the mid's next connection); by key the mids of the keys
 * router knows, each record limited to that mid's keys asked.
 */

static void
ngx_http_goim_logic_ensure_push(ngx_http_goim_logic_ctx_t *ctx)
{
    size_t               i, j, total, nmids;
    int64_t              now, *mids;
    ngx_time_t          *tp;
    Goim__Session       *s;
    Goim__PushMsg      **msgs, *m;
    ngx_http_request_t  *r;

    r = ctx->request;
    total = ctx->sessions.nelts;
    s = ctx->sessions.elts;

    if (ctx->mids) {
        mids = ctx->mids;
        nmids = ctx->nmids;

    } else {
        mids = ngx_palloc(r->pool, (total + 1) * sizeof(int64_t));
        if (mids == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        for (nmids = 0, i = 0; i < total; i++) {
            for (j = 0; j < nmids; j++) {
                if (mids[j] == s[i].mid) {
                    break;
                }
            }

            if (j == nmids) {
                mids[nmids++] = s[i].mid;
            }
        }

        if (nmids == 0) {
            ngx_http_goim_logic_finish(ctx, NGX_HTTP_NOT_FOUND, -404,
                                       "ensure: router knows none of the "
                                       "keys (an offline key has no mid to "
                                       "wait for; push by mid)");
            return;
        }
    }

    msgs = ngx_pcalloc(r->pool, nmids * (sizeof(Goim__PushMsg *)
                                         + sizeof(Goim__PushMsg)));
    if (msgs == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    m = (Goim__PushMsg *) (msgs + nmids);
    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000 + tp->msec;

    for (i = 0; i < nmids; i++) {
        goim__push_msg__init(&m[i]);
        m[i].type = GOIM__PUSH_MSG__TYPE__ENSURE;
        m[i].operation = ctx->operation;
        m[i].msg.data = ctx->msg.data;
        m[i].msg.len = ctx->msg.len;
        m[i].mid = mids[i];
        m[i].id = ctx->ensure_id;
        m[i].time_ms = now;
        m[i].expire_ms = now + (int64_t) ctx->ensure_ttl;

        m[i].sessions = ngx_palloc(r->pool,
                                   (total + 1) * sizeof(Goim__Session *));
        m[i].keys = ngx_palloc(r->pool, (total + 1) * sizeof(char *));
        if (m[i].sessions == NULL || m[i].keys == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        for (j = 0; j < total; j++) {
            if (s[j].mid != mids[i]) {
                continue;
            }

            m[i].sessions[m[i].n_sessions++] = &s[j];

            /* by key: only the keys asked, here and when it reconnects */
            if (ctx->mids == NULL) {
                m[i].keys[m[i].n_keys++] = s[j].key;
            }
        }

        msgs[i] = &m[i];
    }

    (void) ngx_http_goim_logic_job_push(ctx, msgs, nmids);
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


static ngx_int_t
ngx_http_goim_logic_job_push(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg **msgs, size_t n)
{
    ctx->rpc_start = ngx_current_msec;

    /* ensure records too: to Kafka when it is configured, else to job */
    switch (ngx_goim_logic_queue_push(ctx->worker, msgs, n,
                                      ngx_http_goim_logic_job_done, ctx,
                                      &ctx->call))
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

    yajl_gen  g;

    ctx->call = NULL;

    ngx_goim_logic_stats_rpc(ctx->worker->stats, NGX_GOIM_LOGIC_RPC_JOB,
                             ctx->rpc_start, res->status);

    if (res->status) {
        ngx_goim_logic_stats_inc(ctx->worker->stats, queue_errors);

        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "queue: %V", &res->message);
        return;
    }

    if (ctx->ensure) {
        g = ngx_http_goim_logic_data_start(ctx);
        if (g == NULL) {
            return;
        }

        yajl_gen_map_open(g);
        ngx_http_goim_logic_json_key(g, "id");
        ngx_http_goim_logic_json_str(g, ctx->ensure_id);
        yajl_gen_map_close(g);

        ngx_http_goim_logic_data_finish(ctx);
        return;
    }

    ngx_http_goim_logic_finish(ctx, NGX_HTTP_OK, 0, "");
}
