
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


/*
 * goim_logic_status: logic's counters (ngx_goim_logic_stats.c), every
 * worker's, in Prometheus' text format.
 */


static char  *ngx_http_goim_logic_endpoint_names[NGX_GOIM_LOGIC_EP_N] = {
    "/goim/push/keys", "/goim/push/mids", "/goim/push/room",
    "/goim/push/all", "/goim/online/top", "/goim/online/room",
    "/goim/online/total", "/goim/nodes/weighted", "/goim/nodes/instances",
    "/1/push", "/1/pushs", "/1/push/room", "/1/push/all", "/1/server/del",
    "/1/count", "/goim/push/receipts", "unknown"
};

static char  *ngx_http_goim_logic_upstream_names[NGX_GOIM_LOGIC_RPC_N] = {
    "router", "job"
};

static ngx_str_t  ngx_http_goim_logic_status_type =
    ngx_string("text/plain; version=0.0.4");


ngx_int_t
ngx_http_goim_logic_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i, j, k, count;
    ngx_atomic_uint_t           n;
    ngx_goim_logic_stats_t     *st;
    ngx_http_goim_logic_out_t   out;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    st = ngx_goim_logic_worker ? ngx_goim_logic_worker->stats : NULL;
    if (st == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (ngx_http_goim_logic_out_init(&out, r->pool, 8192) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_goim_logic_out_printf(&out,
        "# HELP goim_logic_requests_total HTTP API requests by endpoint "
        "and status\n# TYPE goim_logic_requests_total counter\n");

    for (i = 0; i < NGX_GOIM_LOGIC_EP_N; i++) {
        for (j = 0; j < NGX_GOIM_LOGIC_STATUS_N; j++) {
            n = st->requests[i][j];
            if (n == 0) {
                continue;
            }

            if (j < NGX_GOIM_LOGIC_STATUS_N - 1) {
                ngx_http_goim_logic_out_printf(&out,
                    "goim_logic_requests_total{endpoint=\"%s\","
                    "status=\"%ui\"} %uA\n",
                    ngx_http_goim_logic_endpoint_names[i],
                    ngx_goim_logic_stats_statuses[j], n);

            } else {
                ngx_http_goim_logic_out_printf(&out,
                    "goim_logic_requests_total{endpoint=\"%s\","
                    "status=\"other\"} %uA\n",
                    ngx_http_goim_logic_endpoint_names[i], n);
            }
        }
    }

    ngx_http_goim_logic_out_printf(&out,
        "# HELP goim_logic_rpc_duration_milliseconds RPC round trips to "
        "router and job, per request\n"
        "# TYPE goim_logic_rpc_duration_milliseconds histogram\n");

    for (i = 0; i < NGX_GOIM_LOGIC_RPC_N; i++) {
        count = 0;

        for (k = 0; k < NGX_GOIM_LOGIC_BUCKETS; k++) {
            count += st->rpc_bucket[i][k];

            if (k < NGX_GOIM_LOGIC_BUCKETS - 1) {
                ngx_http_goim_logic_out_printf(&out,
                    "goim_logic_rpc_duration_milliseconds_bucket"
                    "{upstream=\"%s\",le=\"%M\"} %ui\n",
                    ngx_http_goim_logic_upstream_names[i],
                    ngx_goim_logic_stats_bounds[k], count);

            } else {
                ngx_http_goim_logic_out_printf(&out,
                    "goim_logic_rpc_duration_milliseconds_bucket"
                    "{upstream=\"%s\",le=\"+Inf\"} %ui\n",
                    ngx_http_goim_logic_upstream_names[i], count);
            }
        }

        ngx_http_goim_logic_out_printf(&out,
            "goim_logic_rpc_duration_milliseconds_sum{upstream=\"%s\"} %uA\n"
            "goim_logic_rpc_duration_milliseconds_count{upstream=\"%s\"} "
            "%ui\n",
            ngx_http_goim_logic_upstream_names[i], st->rpc_sum_ms[i],
            ngx_http_goim_logic_upstream_names[i], count);
    }

    ngx_http_goim_logic_out_printf(&out,
        "# HELP goim_logic_rpc_errors_total RPCs that failed or timed out\n"
        "# TYPE goim_logic_rpc_errors_total counter\n");

    for (i = 0; i < NGX_GOIM_LOGIC_RPC_N; i++) {
        ngx_http_goim_logic_out_printf(&out,
            "goim_logic_rpc_errors_total{upstream=\"%s\"} %uA\n",
            ngx_http_goim_logic_upstream_names[i], st->rpc_errors[i]);
    }

    ngx_http_goim_logic_out_printf(&out,
        "# HELP goim_logic_queue_errors_total push records the queue "
        "(job or Kafka) did not take\n"
        "# TYPE goim_logic_queue_errors_total counter\n"
        "goim_logic_queue_errors_total %uA\n", st->queue_errors);

    ngx_http_goim_logic_out_printf(&out,
        "# HELP goim_logic_auth_total comets' Connect calls by outcome\n"
        "# TYPE goim_logic_auth_total counter\n"
        "goim_logic_auth_total{result=\"accepted\"} %uA\n"
        "goim_logic_auth_total{result=\"refused\"} %uA\n",
        st->auth_accepted, st->auth_refused);

    ngx_http_goim_logic_out_printf(&out,
        "# HELP goim_logic_rpc_bad_input_total comets' RPC connections "
        "closed for bad input\n"
        "# TYPE goim_logic_rpc_bad_input_total counter\n"
        "goim_logic_rpc_bad_input_total %uA\n", st->rpc_bad_input);

    ngx_http_goim_logic_out_printf(&out,
        "# HELP goim_logic_rpc_auth_refused_total RPC connections refused "
        "by the handshake\n"
        "# TYPE goim_logic_rpc_auth_refused_total counter\n"
        "goim_logic_rpc_auth_refused_total %uA\n", st->rpc_auth_refused);

    ngx_http_goim_logic_out_printf(&out,
        "# HELP goim_logic_rpc_link_resets_total links to router or job "
        "reset after timeouts in a row or a backlog\n"
        "# TYPE goim_logic_rpc_link_resets_total counter\n"
        "goim_logic_rpc_link_resets_total %uA\n"
        "# HELP goim_logic_rpc_link_auth_failed_total handshakes with router "
        "or job that failed or timed out\n"
        "# TYPE goim_logic_rpc_link_auth_failed_total counter\n"
        "goim_logic_rpc_link_auth_failed_total %uA\n"
        "# HELP goim_logic_rpc_sessions_paused_total times a comet's RPC "
        "session stopped being read: its replies were not read\n"
        "# TYPE goim_logic_rpc_sessions_paused_total counter\n"
        "goim_logic_rpc_sessions_paused_total %uA\n",
        st->rpc.link_resets, st->rpc.link_auth_failed,
        st->rpc.sessions_paused);

    return ngx_http_goim_logic_send(r, NGX_HTTP_OK,
                                    &ngx_http_goim_logic_status_type, &out);
}
