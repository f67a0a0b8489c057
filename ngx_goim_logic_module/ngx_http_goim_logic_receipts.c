
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


/*
 * GET /goim/push/receipts?id=ID (not in goim): what became of an ensure
 * message, one receipt per mid it was pushed to, as goim-job knows it
 * (JOB_RECEIPTS): pending, delivered (which key, when) or expired (why,
 * when).  Job keeps a receipt for receipt_ttl after its message finished.
 */


static void ngx_http_goim_logic_receipts_done(void *data,
    ngx_goim_rpc_result_t *res);


static const char  *ngx_http_goim_logic_receipt_states[] = {
    "pending", "delivered", "expired"
};


ngx_int_t
ngx_http_goim_logic_receipts(ngx_http_goim_logic_ctx_t *ctx)
{
    ngx_str_t                id;
    ngx_http_request_t      *r;
    ngx_goim_logic_worker_t *w;
    Goim__ReceiptsReq        req = GOIM__RECEIPTS_REQ__INIT;

    r = ctx->request;
    w = ctx->worker;

    if (ngx_http_goim_logic_str_arg(ctx, "id", &id) != NGX_OK) {
        return NGX_ERROR;
    }

    if (id.len > 64) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "id is longer than 64 bytes");
        return NGX_ERROR;
    }

    if (w->job_peer == NULL) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "receipts need goim-job's RPC "
                                   "(goim_logic_queue job=..., with or "
                                   "without kafka=)");
        return NGX_ERROR;
    }

    req.id = ngx_pnalloc(r->pool, id.len + 1);
    if (req.id == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    /* the argument as given: ids are ASCII, an escaped one is not an id */
    ngx_memcpy(req.id, id.data, id.len);
    req.id[id.len] = '\0';

    ctx->rpc_start = ngx_current_msec;

    ctx->call = ngx_goim_rpc_call(w->job_peer, GOIM__METHOD__JOB_RECEIPTS,
                                  &req.base, w->conf->rpc_timeout,
                                  ngx_http_goim_logic_receipts_done, ctx);
    if (ctx->call == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_goim_logic_receipts_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    size_t                i;
    yajl_gen              g;
    Goim__Receipt        *rc;
    Goim__ReceiptsReply  *reply;

    ctx->call = NULL;

    ngx_goim_logic_stats_rpc(ctx->worker->stats, NGX_GOIM_LOGIC_RPC_JOB,
                             ctx->rpc_start, res->status);

    if (res->status == GOIM__ERROR_CODE__ERROR_NOT_FOUND) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_NOT_FOUND, -404,
                                   "no ensure message with this id (never "
                                   "pushed, or its receipt expired)");
        return;
    }

    if (res->status) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_SERVICE_UNAVAILABLE, -500,
                                   "job: %V", &res->message);
        return;
    }

    reply = (Goim__ReceiptsReply *) res->reply;

    g = ngx_http_goim_logic_data_start(ctx);
    if (g == NULL) {
        return;
    }

    yajl_gen_array_open(g);

    for (i = 0; i < reply->n_receipts; i++) {
        rc = reply->receipts[i];

        yajl_gen_map_open(g);

        ngx_http_goim_logic_json_key(g, "mid");
        yajl_gen_integer(g, rc->mid);

        ngx_http_goim_logic_json_key(g, "state");
        ngx_http_goim_logic_json_str(g,
            ngx_http_goim_logic_receipt_states[
                (ngx_uint_t) rc->state < 3 ? rc->state : 0]);

        ngx_http_goim_logic_json_key(g, "seq");
        yajl_gen_integer(g, (long long) rc->seq);

        ngx_http_goim_logic_json_key(g, "attempts");
        yajl_gen_integer(g, rc->attempts);

        ngx_http_goim_logic_json_key(g, "created_ms");
        yajl_gen_integer(g, rc->created_ms);

        if (rc->state == GOIM__RECEIPT__STATE__DELIVERED) {
            ngx_http_goim_logic_json_key(g, "key");
            ngx_http_goim_logic_json_str(g, rc->key);
        }

        if (rc->state == GOIM__RECEIPT__STATE__EXPIRED) {
            ngx_http_goim_logic_json_key(g, "reason");
            ngx_http_goim_logic_json_str(g, rc->reason);
        }

        if (rc->state != GOIM__RECEIPT__STATE__PENDING) {
            ngx_http_goim_logic_json_key(g, "time_ms");
            yajl_gen_integer(g, rc->time_ms);
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_http_goim_logic_data_finish(ctx);
}
