
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_logic.h"


static void *ngx_goim_logic_create_conf(ngx_cycle_t *cycle);
static char *ngx_goim_logic_init_conf(ngx_cycle_t *cycle, void *conf);
static char *ngx_goim_logic_router_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_goim_logic_job_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_goim_logic_init_process(ngx_cycle_t *cycle);
static void ngx_goim_logic_rpc_refused(void *ctx);
static void ngx_goim_logic_exit_process(ngx_cycle_t *cycle);
static void ngx_goim_logic_fanout_handler(void *data,
    ngx_goim_rpc_result_t *res);


typedef struct {
    ngx_goim_logic_fanout_t   *fanout;
    ngx_goim_rpc_call_t       *call;
} ngx_goim_logic_fanout_call_t;


struct ngx_goim_logic_fanout_s {
    ngx_goim_logic_conf_t          *lcf;
    ngx_goim_logic_fanout_call_t   *calls;     /* one per router */
    ngx_uint_t                      pending;
    ngx_int_t                       status;
    ngx_str_t                       message;
    ngx_goim_logic_fanout_each_pt   each;
    ngx_goim_logic_fanout_done_pt   done;
    void                           *data;
    u_char                          text[256];
};


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
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE12,
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
     *     lcf->router_peers = NULL;
     *     lcf->job_peer = NULL;
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

    return lcf;
}


static char *
ngx_goim_logic_init_conf(ngx_cycle_t *cycle, void *conf)
{
    ngx_goim_logic_conf_t *lcf = conf;

    char       **names;
    u_char      *p;
    size_t      *lens;
    ngx_uint_t   i, n;

    /* goim's example config: 4m x 2, an eight minute deadline */
    ngx_conf_init_msec_value(lcf->heartbeat, 4 * 60 * 1000);
    ngx_conf_init_uint_value(lcf->heartbeat_max, 2);
    ngx_conf_init_msec_value(lcf->rpc_timeout, 1000);
    ngx_conf_init_uint_value(lcf->rpc_max_timeouts, 3);
    ngx_conf_init_size_value(lcf->rpc_max_backlog, 4 * 1024 * 1024);
    ngx_conf_init_msec_value(lcf->rpc_retry, 1000);
    ngx_conf_init_msec_value(lcf->rpc_auth_timeout, GOIM_AUTH_TIMEOUT_DEFAULT);

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

    if (lcf->heartbeat < 1000) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_logic_heartbeat must be at least 1s");
        return NGX_CONF_ERROR;
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
    ngx_goim_rpc_upstream_t  *up;

    lcf = ngx_goim_logic_get_conf(cycle);

    ngx_goim_rpc_init(&lcf->rpc, lcf->rpc_secret, lcf->rpc_auth_timeout,
                      ngx_goim_logic_rpc_refused, lcf, cycle->log);

    if (lcf->routers) {
        lcf->router_peers = ngx_pcalloc(cycle->pool, lcf->routers->nelts
                                        * sizeof(ngx_goim_rpc_peer_t *));
        if (lcf->router_peers == NULL) {
            return NGX_ERROR;
        }

        up = lcf->routers->elts;

        for (i = 0; i < lcf->routers->nelts; i++) {
            up[i].max_timeouts = lcf->rpc_max_timeouts;
            up[i].max_backlog = lcf->rpc_max_backlog;
            up[i].retry = lcf->rpc_retry;

            lcf->router_peers[i] = ngx_goim_rpc_peer_create(&lcf->rpc, cycle, &up[i],
                                                        lcf->connect_timeout);
            if (lcf->router_peers[i] == NULL) {
                return NGX_ERROR;
            }
        }
    }

    if (lcf->job) {
        lcf->job->max_timeouts = lcf->rpc_max_timeouts;
        lcf->job->max_backlog = lcf->rpc_max_backlog;
        lcf->job->retry = lcf->rpc_retry;

        lcf->job_peer = ngx_goim_rpc_peer_create(&lcf->rpc, cycle, lcf->job,
                                                 lcf->connect_timeout);
        if (lcf->job_peer == NULL) {
            return NGX_ERROR;
        }
    }

    return ngx_goim_logic_queue_init_process(cycle, lcf);
}


static void
ngx_goim_logic_rpc_refused(void *ctx)
{
    ngx_goim_logic_stats_inc(rpc_auth_refused);
}


static void
ngx_goim_logic_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t              i;
    ngx_goim_logic_conf_t  *lcf;

    lcf = ngx_goim_logic_get_conf(cycle);

    ngx_goim_rpc_sessions_finalize(&lcf->rpc);
    ngx_goim_logic_queue_exit_process(cycle);

    if (lcf->router_peers) {
        for (i = 0; i < lcf->routers->nelts; i++) {
            ngx_goim_rpc_peer_close(lcf->router_peers[i]);
        }
    }

    if (lcf->job_peer) {
        ngx_goim_rpc_peer_close(lcf->job_peer);
    }
}


ngx_uint_t
ngx_goim_logic_router_index(ngx_goim_logic_conf_t *lcf, int64_t mid)
{
    if (lcf->ring_points == 0 || lcf->routers->nelts == 1) {
        return 0;
    }

    return goim_ketama_mid(lcf->ring, lcf->ring_points, mid);
}


ngx_goim_rpc_peer_t *
ngx_goim_logic_router(ngx_goim_logic_conf_t *lcf, int64_t mid)
{
    if (lcf->router_peers == NULL) {
        return NULL;
    }

    return lcf->router_peers[ngx_goim_logic_router_index(lcf, mid)];
}


ngx_goim_logic_fanout_t *
ngx_goim_logic_fanout_create(ngx_goim_logic_conf_t *lcf,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done,
    void *data)
{
    ngx_uint_t                i, n;
    ngx_goim_logic_fanout_t  *f;

    n = ngx_goim_logic_nrouters(lcf);

    f = ngx_calloc(sizeof(ngx_goim_logic_fanout_t)
                   + n * sizeof(ngx_goim_logic_fanout_call_t),
                   ngx_cycle->log);
    if (f == NULL) {
        return NULL;
    }

    f->lcf = lcf;
    f->calls = (ngx_goim_logic_fanout_call_t *) (f + 1);
    f->each = each;
    f->done = done;
    f->data = data;

    for (i = 0; i < n; i++) {
        f->calls[i].fanout = f;
    }

    return f;
}


ngx_int_t
ngx_goim_logic_fanout_call(ngx_goim_logic_fanout_t *f, ngx_uint_t i,
    int32_t method, const ProtobufCMessage *req)
{
    ngx_goim_logic_fanout_call_t  *fc;

    fc = &f->calls[i];

    fc->call = ngx_goim_rpc_call(f->lcf->router_peers[i], method, req,
                                 f->lcf->rpc_timeout,
                                 ngx_goim_logic_fanout_handler, fc);
    if (fc->call == NULL) {
        return NGX_ERROR;
    }

    f->pending++;

    return NGX_OK;
}


ngx_int_t
ngx_goim_logic_fanout_call_all(ngx_goim_logic_fanout_t *f, int32_t method,
    const ProtobufCMessage *req)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_goim_logic_nrouters(f->lcf); i++) {
        if (ngx_goim_logic_fanout_call(f, i, method, req) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_goim_logic_fanout_handler(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_goim_logic_fanout_call_t *fc = data;

    u_char                   *p;
    ngx_goim_logic_fanout_t  *f;
    ngx_goim_rpc_upstream_t  *up;

    f = fc->fanout;
    fc->call = NULL;
    f->pending--;

    if (res->status == 0) {
        if (f->status == 0) {
            f->each(f->data, res);
        }

    } else if (f->status == 0) {
        /* the first error is the one reported, naming the router */
        up = f->lcf->routers->elts;
        up = &up[fc - f->calls];

        f->status = res->status;
        p = ngx_snprintf(f->text, sizeof(f->text), "%V: %V", &up->name,
                         &res->message);
        f->message.data = f->text;
        f->message.len = p - f->text;
    }

    if (f->pending == 0) {
        f->done(f->data, f->status, &f->message);
    }
}


void
ngx_goim_logic_fanout_free(ngx_goim_logic_fanout_t *f)
{
    ngx_uint_t  i;

    if (f == NULL) {
        return;
    }

    for (i = 0; i < ngx_goim_logic_nrouters(f->lcf); i++) {
        if (f->calls[i].call) {
            ngx_goim_rpc_cancel(f->calls[i].call);
        }
    }

    ngx_free(f);
}
