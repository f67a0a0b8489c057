
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_goim_logic.h"


/*
 * logic's counters: one set in a shared zone that every worker adds to
 * (atomics, no lock), created when a goim_logic_status location exists;
 * each worker reaches it through its state (ngx_goim_logic_worker_t), and
 * the status page (ngx_http_goim_logic_status.c) prints it.
 */


static ngx_int_t ngx_goim_logic_stats_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


ngx_uint_t  ngx_goim_logic_stats_statuses[NGX_GOIM_LOGIC_STATUS_N - 1] = {
    200, 400, 404, 405, 413, 500, 503
};

ngx_msec_t  ngx_goim_logic_stats_bounds[NGX_GOIM_LOGIC_BUCKETS - 1] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500
};


void
ngx_goim_logic_stats_request(ngx_goim_logic_stats_t *st, ngx_uint_t endpoint,
    ngx_uint_t status)
{
    ngx_uint_t  i;

    if (st == NULL) {
        return;
    }

    for (i = 0; i < NGX_GOIM_LOGIC_STATUS_N - 1; i++) {
        if (ngx_goim_logic_stats_statuses[i] == status) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&st->requests[endpoint][i], 1);
}


void
ngx_goim_logic_stats_rpc(ngx_goim_logic_stats_t *st, ngx_uint_t upstream,
    ngx_msec_t start, ngx_int_t failed)
{
    ngx_uint_t  i;
    ngx_msec_t  ms;

    if (st == NULL) {
        return;
    }

    /* the cached clock: as exact as the event loop's iterations */
    ms = ngx_current_msec - start;

    for (i = 0; i < NGX_GOIM_LOGIC_BUCKETS - 1; i++) {
        if (ms <= ngx_goim_logic_stats_bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&st->rpc_bucket[upstream][i], 1);
    (void) ngx_atomic_fetch_add(&st->rpc_sum_ms[upstream], ms);

    if (failed) {
        (void) ngx_atomic_fetch_add(&st->rpc_errors[upstream], 1);
    }
}


char *
ngx_goim_logic_stats_zone(ngx_conf_t *cf, ngx_goim_logic_conf_t *lcf)
{
    ngx_str_t  name = ngx_string("goim_logic_status");

    if (lcf->stats_zone) {
        return NGX_CONF_OK;
    }

    lcf->stats_zone = ngx_shared_memory_add(cf, &name, 64 * 1024,
                                            &ngx_goim_logic_module);
    if (lcf->stats_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    lcf->stats_zone->init = ngx_goim_logic_stats_init_zone;

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
