
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <sys/random.h>

#include "ngx_goim_logic.h"


/*
 * logic's core module: the main-level directives (routers, job, session
 * policy, the RPC plane), the ketama ring over the routers, and the
 * worker's state: its links to router and job, made in init_process.
 */


static void *ngx_goim_logic_create_conf(ngx_cycle_t *cycle);
static char *ngx_goim_logic_init_conf(ngx_cycle_t *cycle, void *conf);
static char *ngx_goim_logic_router_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_goim_logic_job_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_goim_logic_init_process(ngx_cycle_t *cycle);
static void ngx_goim_logic_rpc_refused(void *ctx);
static void ngx_goim_logic_exit_process(ngx_cycle_t *cycle);


ngx_goim_logic_worker_t  *ngx_goim_logic_worker;


static ngx_conf_num_bounds_t  ngx_goim_logic_heartbeat_max_bounds = {
    ngx_conf_check_num_bounds, 1, 100
};

static ngx_conf_num_bounds_t  ngx_goim_logic_max_timeouts_bounds = {
    ngx_conf_check_num_bounds, 0, 1000
};


static ngx_command_t  ngx_goim_logic_commands[] = {

    { ngx_string("goim_logic_router"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_goim_logic_router_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_logic_job"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_goim_logic_job_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_logic_queue"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE123,
      ngx_goim_logic_queue_directive,
      0,
      0,
      NULL },

    { ngx_string("goim_logic_heartbeat"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, heartbeat),
      NULL },

    { ngx_string("goim_logic_heartbeat_max"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, heartbeat_max),
      &ngx_goim_logic_heartbeat_max_bounds },

    { ngx_string("goim_logic_jwt_secret_file"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_goim_logic_jwt_secret,
      0,
      0,
      NULL },

    { ngx_string("goim_logic_ensure_ttl"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, ensure_ttl),
      NULL },

    { ngx_string("goim_logic_ensure_max_ttl"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, ensure_max_ttl),
      NULL },

    { ngx_string("goim_logic_rpc_timeout"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, rpc_timeout),
      NULL },

    { ngx_string("goim_logic_rpc_max_timeouts"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, rpc_max_timeouts),
      &ngx_goim_logic_max_timeouts_bounds },

    { ngx_string("goim_logic_rpc_max_backlog"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, rpc_max_backlog),
      NULL },

    { ngx_string("goim_logic_rpc_retry"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, rpc_retry),
      NULL },

    { ngx_string("goim_logic_rpc_secret_file"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_goim_rpc_set_secret_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, rpc_secret),
      NULL },

    { ngx_string("goim_logic_rpc_auth_timeout"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_logic_conf_t, rpc_auth_timeout),
      NULL },

      ngx_null_command
};


static ngx_core_module_t  ngx_goim_logic_module_ctx = {
    ngx_string("goim_logic"),
    ngx_goim_logic_create_conf,            /* create conf */
    ngx_goim_logic_init_conf               /* init conf */
};


ngx_module_t  ngx_goim_logic_module = {
    NGX_MODULE_V1,
    &ngx_goim_logic_module_ctx,            /* module context */
    ngx_goim_logic_commands,               /* module directives */
    NGX_CORE_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_goim_logic_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_goim_logic_exit_process,           /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_goim_logic_create_conf(ngx_cycle_t *cycle)
{
    ngx_goim_logic_conf_t  *lcf;

    lcf = ngx_pcalloc(cycle->pool, sizeof(ngx_goim_logic_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lcf->routers = NULL;
     *     lcf->job = NULL;
     *     lcf->stats_zone = NULL;
     *     lcf->nodes = NULL;
     *     lcf->kafka_brokers = { 0, NULL };
     *     lcf->kafka_topic = { 0, NULL };
     *     lcf->rpc_secret = NULL;
     *     lcf->rpc_open = { 0, NULL };
     */

    lcf->heartbeat = NGX_CONF_UNSET_MSEC;
    lcf->heartbeat_max = NGX_CONF_UNSET_UINT;
    lcf->rpc_timeout = NGX_CONF_UNSET_MSEC;
    lcf->rpc_max_timeouts = NGX_CONF_UNSET_UINT;
    lcf->rpc_max_backlog = NGX_CONF_UNSET_SIZE;
    lcf->rpc_retry = NGX_CONF_UNSET_MSEC;
    lcf->rpc_auth_timeout = NGX_CONF_UNSET_MSEC;
    lcf->ensure_ttl = NGX_CONF_UNSET_MSEC;
    lcf->ensure_max_ttl = NGX_CONF_UNSET_MSEC;

    return lcf;
}


static char *
ngx_goim_logic_init_conf(ngx_cycle_t *cycle, void *conf)
{
    ngx_goim_logic_conf_t *lcf = conf;

    char                     **names;
    u_char                    *p;
    size_t                    *lens;
    ngx_uint_t                 i, n;
    ngx_goim_rpc_upstream_t   *up;

    /* goim's example config: 4m x 2, an eight minute deadline */
    ngx_conf_init_msec_value(lcf->heartbeat, 4 * 60 * 1000);
    ngx_conf_init_uint_value(lcf->heartbeat_max, 2);
    ngx_conf_init_msec_value(lcf->rpc_timeout, 1000);
    ngx_conf_init_uint_value(lcf->rpc_max_timeouts, 3);
    ngx_conf_init_size_value(lcf->rpc_max_backlog, 4 * 1024 * 1024);
    ngx_conf_init_msec_value(lcf->rpc_retry, 1000);
    ngx_conf_init_msec_value(lcf->rpc_auth_timeout, GOIM_AUTH_TIMEOUT_DEFAULT);
    ngx_conf_init_msec_value(lcf->ensure_ttl, 10 * 60 * 1000);
    ngx_conf_init_msec_value(lcf->ensure_max_ttl, 24 * 60 * 60 * 1000);

    if (lcf->ensure_ttl < 1000 || lcf->ensure_max_ttl < 1000
        || lcf->ensure_ttl > lcf->ensure_max_ttl)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_logic_ensure_ttl (%M ms) must be at least 1s "
                      "and at most goim_logic_ensure_max_ttl (%M ms)",
                      lcf->ensure_ttl, lcf->ensure_max_ttl);
        return NGX_CONF_ERROR;
    }

    /* without a secret, anyone reaching the RPC listener could log in */
    if (lcf->rpc_open.len && lcf->rpc_secret == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_logic_rpc listens on %V, not a loopback "
                      "address, and no goim_logic_rpc_secret_file is set",
                      &lcf->rpc_open);
        return NGX_CONF_ERROR;
    }

    if (lcf->rpc_secret == NULL && (lcf->routers || lcf->job)) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "no goim_logic_rpc_secret_file: logic's RPC is "
                      "unauthenticated (its RPC listener must be on "
                      "loopback)");
    }

    lcf->connect_timeout = lcf->rpc_timeout;

    /* every link to router and job has the same bounds */

    if (lcf->job) {
        lcf->job->max_timeouts = lcf->rpc_max_timeouts;
        lcf->job->max_backlog = lcf->rpc_max_backlog;
        lcf->job->retry = lcf->rpc_retry;
    }

    up = lcf->routers ? lcf->routers->elts : NULL;

    for (i = 0; lcf->routers && i < lcf->routers->nelts; i++) {
        up[i].max_timeouts = lcf->rpc_max_timeouts;
        up[i].max_backlog = lcf->rpc_max_backlog;
        up[i].retry = lcf->rpc_retry;
    }

    if (lcf->heartbeat < 1000) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_logic_heartbeat must be at least 1s");
        return NGX_CONF_ERROR;
    }

    /* no http{} block gave the goim_logic_node_* settings: the defaults */

    if (lcf->nodes == NULL) {
        lcf->nodes = ngx_palloc(cycle->pool,
                                sizeof(ngx_goim_logic_nodes_conf_t));
        if (lcf->nodes == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_goim_logic_nodes_conf_init(lcf->nodes);
        ngx_goim_logic_nodes_conf_defaults(lcf->nodes);
    }

    if (lcf->routers == NULL) {
        return NGX_CONF_OK;
    }

    /* goim v1 names its routers by id: here "1", "2"... in config order */

    n = lcf->routers->nelts;

    names = ngx_palloc(cycle->pool, n * (sizeof(char *) + sizeof(size_t)
                                         + NGX_INT_T_LEN + 1));
    lcf->ring = ngx_palloc(cycle->pool,
                           goim_ketama_npoints(n)
                           * sizeof(goim_ketama_point_t));
    if (names == NULL || lcf->ring == NULL) {
        return NGX_CONF_ERROR;
    }

    lens = (size_t *) (names + n);
    p = (u_char *) (lens + n);

    for (i = 0; i < n; i++) {
        names[i] = (char *) p;
        p = ngx_sprintf(p, "%ui", i + 1);
        lens[i] = p - (u_char *) names[i];
    }

    goim_ketama_build(lcf->ring, (const char *const *) names, lens, n);
    lcf->ring_points = goim_ketama_npoints(n);

    return NGX_CONF_OK;
}


static char *
ngx_goim_logic_router_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_goim_logic_conf_t *lcf = conf;

    ngx_str_t                *value;
    ngx_goim_rpc_upstream_t  *up;

    if (lcf->routers == NULL) {
        lcf->routers = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_goim_rpc_upstream_t));
        if (lcf->routers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    up = ngx_array_push(lcf->routers);
    if (up == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    return ngx_goim_rpc_parse_upstream(cf, &value[1], up);
}



static char *
ngx_goim_logic_job_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_logic_conf_t *lcf = conf;

    ngx_str_t  *value;

    if (lcf->job || lcf->kafka_brokers.len) {
        return "is duplicate";
    }

    lcf->job = ngx_pcalloc(cf->pool, sizeof(ngx_goim_rpc_upstream_t));
    if (lcf->job == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    return ngx_goim_rpc_parse_upstream(cf, &value[1], lcf->job);
}


static ngx_int_t
ngx_goim_logic_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                i;
    ngx_goim_logic_conf_t    *lcf;
    ngx_goim_logic_worker_t  *w;
    ngx_goim_rpc_upstream_t  *up;

    lcf = ngx_goim_logic_get_conf(cycle);

    w = ngx_pcalloc(cycle->pool, sizeof(ngx_goim_logic_worker_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->conf = lcf;

    /* the zone's counters exist once shared memory is made */
    if (lcf->stats_zone) {
        w->stats = lcf->stats_zone->data;
    }

    ngx_goim_logic_worker = w;

    ngx_goim_rpc_init(&w->rpc, lcf->rpc_secret, lcf->rpc_auth_timeout,
                      ngx_goim_logic_rpc_refused, w, cycle->log);

    if (w->stats) {
        w->rpc.counters = &w->stats->rpc;
    }

    if (lcf->routers) {
        w->router_peers = ngx_pcalloc(cycle->pool, lcf->routers->nelts
                                      * sizeof(ngx_goim_rpc_peer_t *));
        if (w->router_peers == NULL) {
            return NGX_ERROR;
        }

        up = lcf->routers->elts;

        for (i = 0; i < lcf->routers->nelts; i++) {
            w->router_peers[i] = ngx_goim_rpc_peer_create(&w->rpc, cycle,
                                                        &up[i],
                                                        lcf->connect_timeout);
            if (w->router_peers[i] == NULL) {
                return NGX_ERROR;
            }

            w->nrouters++;
        }
    }

    if (lcf->job) {
        w->job_peer = ngx_goim_rpc_peer_create(&w->rpc, cycle, lcf->job,
                                               lcf->connect_timeout);
        if (w->job_peer == NULL) {
            return NGX_ERROR;
        }
    }

    return ngx_goim_logic_queue_init_process(cycle, w);
}


static void
ngx_goim_logic_rpc_refused(void *ctx)
{
    ngx_goim_logic_worker_t *w = ctx;

    ngx_goim_logic_stats_inc(w->stats, rpc_auth_refused);
}


static void
ngx_goim_logic_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                i;
    ngx_goim_logic_worker_t  *w;

    w = ngx_goim_logic_worker;

    if (w == NULL) {
        return;
    }

    ngx_goim_rpc_sessions_finalize(&w->rpc);

    ngx_goim_logic_queue_exit_process(w);

    for (i = 0; i < w->nrouters; i++) {
        ngx_goim_rpc_peer_close(w->router_peers[i]);
    }

    if (w->job_peer) {
        ngx_goim_rpc_peer_close(w->job_peer);
    }

    ngx_goim_logic_worker = NULL;
}


ngx_uint_t
ngx_goim_logic_router_index(ngx_goim_logic_worker_t *w, int64_t mid)
{
    ngx_goim_logic_conf_t  *lcf;

    lcf = w->conf;

    if (lcf->ring_points == 0 || lcf->routers->nelts == 1) {
        return 0;
    }

    return goim_ketama_mid(lcf->ring, lcf->ring_points, mid);
}


ngx_goim_rpc_peer_t *
ngx_goim_logic_router(ngx_goim_logic_worker_t *w, int64_t mid)
{
    if (w->nrouters == 0) {
        return NULL;
    }

    return w->router_peers[ngx_goim_logic_router_index(w, mid)];
}


/*
 * A random (version 4) UUID, as goim makes for a client without a key;
 * ensure messages' ids too.  dst holds NGX_GOIM_LOGIC_UUID_LEN + 1.
 */

void
ngx_goim_logic_uuid(char *dst)
{
    u_char  b[16];

    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != sizeof(b)) {
        *(uint64_t *) b = (uint64_t) ngx_random() << 32 ^ ngx_random();
        *(uint64_t *) (b + 8) = (uint64_t) ngx_random() << 32
                                ^ ngx_random() ^ (uint64_t) ngx_current_msec;
    }

    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;

    ngx_sprintf((u_char *) dst,
                "%02xd%02xd%02xd%02xd-%02xd%02xd-%02xd%02xd-%02xd%02xd-"
                "%02xd%02xd%02xd%02xd%02xd%02xd%Z",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                b[10], b[11], b[12], b[13], b[14], b[15]);
}
