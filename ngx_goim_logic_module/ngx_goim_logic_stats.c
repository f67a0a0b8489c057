
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_logic.h"
#include "ngx_http_goim_logic.h"


/*
 * logic's counters: one set in a shared zone that every worker adds to
 * (atomics, no lock), created when a goim_logic_status location exists;
 * the status location prints them in Prometheus' text format.
 */


static ngx_int_t ngx_goim_logic_stats_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


ngx_goim_logic_stats_t  *ngx_goim_logic_stats;


static char  *ngx_goim_logic_endpoint_names[NGX_GOIM_LOGIC_EP_N] = {
    "/goim/push/keys", "/goim/push/mids", "/goim/push/room",
    "/goim/push/all", "/goim/online/top", "/goim/online/room",
    "/goim/online/total", "/goim/nodes/weighted", "/goim/nodes/instances",
    "/1/push", "/1/pushs", "/1/push/room", "/1/push/all", "/1/server/del",
    "/1/count", "unknown"
};

static ngx_uint_t  ngx_goim_logic_statuses[NGX_GOIM_LOGIC_STATUS_N - 1] = {
    200, 400, 404, 405, 413, 500, 503
};

static char  *ngx_goim_logic_upstream_names[NGX_GOIM_LOGIC_RPC_N] = {
    "router", "job"
};

static ngx_msec_t  ngx_goim_logic_bounds[NGX_GOIM_LOGIC_BUCKETS - 1] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500
};


void
ngx_goim_logic_stats_request(ngx_uint_t endpoint, ngx_uint_t status)
{
    ngx_uint_t  i;

    if (ngx_goim_logic_stats == NULL) {
        return;
    }

    for (i = 0; i < NGX_GOIM_LOGIC_STATUS_N - 1; i++) {
        if (ngx_goim_logic_statuses[i] == status) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&ngx_goim_logic_stats->requests[endpoint][i],
                                1);
}


void
ngx_goim_logic_stats_rpc(ngx_uint_t upstream, ngx_msec_t start,
    ngx_int_t failed)
{
    ngx_uint_t  i;
    ngx_msec_t  ms;

    if (ngx_goim_logic_stats == NULL) {
        return;
    }

    /* the cached clock: as exact as the event loop's iterations */
    ms = ngx_current_msec - start;

    for (i = 0; i < NGX_GOIM_LOGIC_BUCKETS - 1; i++) {
        if (ms <= ngx_goim_logic_bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&ngx_goim_logic_stats->rpc_bucket[upstream][i],
                                1);
    (void) ngx_atomic_fetch_add(&ngx_goim_logic_stats->rpc_sum_ms[upstream],
                                ms);

    if (failed) {
        (void) ngx_atomic_fetch_add(
                                  &ngx_goim_logic_stats->rpc_errors[upstream],
                                  1);
    }
}


char *
ngx_http_goim_logic_status_zone(ngx_conf_t *cf,
    ngx_http_goim_logic_main_conf_t *lmcf)
{
    ngx_str_t  name = ngx_string("goim_logic_status");

    if (lmcf->status_zone) {
        return NGX_CONF_OK;
    }

    lmcf->status_zone = ngx_shared_memory_add(cf, &name, 64 * 1024,
                                              &ngx_http_goim_logic_module);
    if (lmcf->status_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    lmcf->status_zone->init = ngx_goim_logic_stats_init_zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_goim_logic_stats_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    /* a reload keeps the counts */

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    shm_zone->data = ngx_slab_calloc(shpool, sizeof(ngx_goim_logic_stats_t));
    if (shm_zone->data == NULL) {
        return NGX_ERROR;
    }

    shpool->data = shm_zone->data;

    return NGX_OK;
}


/* in each worker: the zone of this cycle, if any */

void
ngx_http_goim_logic_status_attach(ngx_cycle_t *cycle)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *zone;

    ngx_goim_logic_stats = NULL;

    part = &cycle->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].tag == &ngx_http_goim_logic_module) {
            ngx_goim_logic_stats = zone[i].data;
            break;
        }
    }
}


ngx_int_t
ngx_http_goim_logic_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i, j, k, count;
    ngx_chain_t                 cl;
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

    st = ngx_goim_logic_stats;
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
                    ngx_goim_logic_endpoint_names[i],
                    ngx_goim_logic_statuses[j], n);

            } else {
                ngx_http_goim_logic_out_printf(&out,
                    "goim_logic_requests_total{endpoint=\"%s\","
                    "status=\"other\"} %uA\n",
                    ngx_goim_logic_endpoint_names[i], n);
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
                    ngx_goim_logic_upstream_names[i],
                    ngx_goim_logic_bounds[k], count);

            } else {
                ngx_http_goim_logic_out_printf(&out,
                    "goim_logic_rpc_duration_milliseconds_bucket"
                    "{upstream=\"%s\",le=\"+Inf\"} %ui\n",
                    ngx_goim_logic_upstream_names[i], count);
            }
        }

        ngx_http_goim_logic_out_printf(&out,
            "goim_logic_rpc_duration_milliseconds_sum{upstream=\"%s\"} %uA\n"
            "goim_logic_rpc_duration_milliseconds_count{upstream=\"%s\"} "
            "%ui\n",
            ngx_goim_logic_upstream_names[i], st->rpc_sum_ms[i],
            ngx_goim_logic_upstream_names[i], count);
    }

    ngx_http_goim_logic_out_printf(&out,
        "# HELP goim_logic_rpc_errors_total RPCs that failed or timed out\n"
        "# TYPE goim_logic_rpc_errors_total counter\n");

    for (i = 0; i < NGX_GOIM_LOGIC_RPC_N; i++) {
        ngx_http_goim_logic_out_printf(&out,
            "goim_logic_rpc_errors_total{upstream=\"%s\"} %uA\n",
            ngx_goim_logic_upstream_names[i], st->rpc_errors[i]);
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

    if (out.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = out.buf->last - out.buf->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf->last_buf = (r == r->main) ? 1 : 0;
    out.buf->last_in_chain = 1;

    cl.buf = out.buf;
    cl.next = NULL;

    return ngx_http_output_filter(r, &cl);
}
