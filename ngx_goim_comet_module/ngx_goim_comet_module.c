
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_stream.h>

#include "ngx_goim_comet.h"


static void *ngx_goim_comet_create_conf(ngx_cycle_t *cycle);
static char *ngx_goim_comet_init_conf(ngx_cycle_t *cycle, void *conf);
static char *ngx_goim_comet_logic(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_goim_comet_addrs(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_goim_comet_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_goim_comet_init_process(ngx_cycle_t *cycle);
static void ngx_goim_comet_rpc_refused(void *ctx);
static void ngx_goim_comet_exit_process(ngx_cycle_t *cycle);
static void ngx_goim_comet_online_handler(ngx_event_t *ev);
static void ngx_goim_comet_online_done(void *data,
    ngx_goim_rpc_result_t *res);


static ngx_conf_num_bounds_t  ngx_goim_comet_ws_deflate_level_bounds = {
    ngx_conf_check_num_bounds, 1, 9
};


static ngx_command_t  ngx_goim_comet_commands[] = {

    { ngx_string("goim_comet_id"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, id),
      NULL },

    { ngx_string("goim_comet_logic"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_goim_comet_logic,
      0,
      0,
      NULL },

    { ngx_string("goim_comet_rpc_timeout"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, rpc_timeout),
      NULL },

    { ngx_string("goim_comet_rpc_max_timeouts"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, rpc_max_timeouts),
      NULL },

    { ngx_string("goim_comet_rpc_max_backlog"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, rpc_max_backlog),
      NULL },

    { ngx_string("goim_comet_rpc_retry"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, rpc_retry),
      NULL },

    { ngx_string("goim_comet_renew_interval"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, renew_interval),
      NULL },

    { ngx_string("goim_comet_room_history"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, history),
      NULL },

    { ngx_string("goim_comet_room_history_ttl"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, history_ttl),
      NULL },

    { ngx_string("goim_comet_room_history_size"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, history_size),
      NULL },

    { ngx_string("goim_comet_zone"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, zone_size),
      NULL },

    { ngx_string("goim_comet_worker_queue"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, ring_size),
      NULL },

    { ngx_string("goim_comet_online_interval"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, online_interval),
      NULL },

    { ngx_string("goim_comet_addrs"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_1MORE,
      ngx_goim_comet_addrs,
      0,
      0,
      NULL },

    { ngx_string("goim_comet_weight"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, weight),
      NULL },

    { ngx_string("goim_comet_region"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, region),
      NULL },

    { ngx_string("goim_comet_rpc_secret_file"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_goim_rpc_set_secret_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, rpc_secret),
      NULL },

    { ngx_string("goim_comet_rpc_auth_timeout"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, rpc_auth_timeout),
      NULL },

    { ngx_string("goim_comet_handoff"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, handoff),
      NULL },

    { ngx_string("goim_comet_handoff_timeout"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, handoff_timeout),
      NULL },

    { ngx_string("goim_comet_drain_window"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, drain_window),
      NULL },

    { ngx_string("goim_comet_ws_deflate_level"),
      NGX_MAIN_CONF|NGX_DIRECT_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      0,
      offsetof(ngx_goim_comet_conf_t, ws_deflate_level),
      &ngx_goim_comet_ws_deflate_level_bounds },

      ngx_null_command
};


static ngx_core_module_t  ngx_goim_comet_module_ctx = {
    ngx_string("goim_comet"),
    ngx_goim_comet_create_conf,            /* create conf */
    ngx_goim_comet_init_conf               /* init conf */
};


ngx_module_t  ngx_goim_comet_module = {
    NGX_MODULE_V1,
    &ngx_goim_comet_module_ctx,            /* module context */
    ngx_goim_comet_commands,               /* module directives */
    NGX_CORE_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_goim_comet_init_module,            /* init module */
    ngx_goim_comet_init_process,           /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_goim_comet_exit_process,           /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_goim_comet_create_conf(ngx_cycle_t *cycle)
{
    ngx_goim_comet_conf_t  *ccf;

    ccf = ngx_pcalloc(cycle->pool, sizeof(ngx_goim_comet_conf_t));
    if (ccf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     ccf->id = { 0, NULL };
     *     ccf->logic = NULL;
     *     ccf->push_addr = { 0, NULL };
     *     ccf->addrs = NULL;
     *     ccf->region = { 0, NULL };
     *     ccf->rpc_secret = NULL;
     *     ccf->push_open = { 0, NULL };
     *     ccf->drain_batch = 0;
     *     ccf->shm_zone = NULL;
     */

    ccf->rpc_timeout = NGX_CONF_UNSET_MSEC;
    ccf->rpc_max_timeouts = NGX_CONF_UNSET_UINT;
    ccf->rpc_max_backlog = NGX_CONF_UNSET_SIZE;
    ccf->rpc_retry = NGX_CONF_UNSET_MSEC;
    ccf->rpc_auth_timeout = NGX_CONF_UNSET_MSEC;
    ccf->online_interval = NGX_CONF_UNSET_MSEC;
    ccf->renew_interval = NGX_CONF_UNSET_MSEC;
    ccf->zone_size = NGX_CONF_UNSET_SIZE;
    ccf->ring_size = NGX_CONF_UNSET_SIZE;
    ccf->history = NGX_CONF_UNSET_UINT;
    ccf->history_ttl = NGX_CONF_UNSET_MSEC;
    ccf->history_size = NGX_CONF_UNSET_SIZE;
    ccf->weight = NGX_CONF_UNSET;
    ccf->handoff = NGX_CONF_UNSET;
    ccf->handoff_timeout = NGX_CONF_UNSET_MSEC;
    ccf->drain_window = NGX_CONF_UNSET_MSEC;
    ccf->ws_deflate_level = NGX_CONF_UNSET;

    return ccf;
}


static char *
ngx_goim_comet_init_conf(ngx_cycle_t *cycle, void *conf)
{
    ngx_goim_comet_conf_t *ccf = conf;

    if (ccf->id.len == 0) {
        /* goim names a comet after its host; RPC wants it terminated */
        ccf->id.len = cycle->hostname.len;
        ccf->id.data = ngx_pnalloc(cycle->pool, ccf->id.len + 1);
        if (ccf->id.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(ccf->id.data, cycle->hostname.data, ccf->id.len + 1);
    }

    ngx_conf_init_msec_value(ccf->rpc_timeout, 3000);
    ngx_conf_init_uint_value(ccf->rpc_max_timeouts, 3);
    ngx_conf_init_size_value(ccf->rpc_max_backlog, 4 * 1024 * 1024);
    ngx_conf_init_msec_value(ccf->rpc_retry, 1000);

    if (ccf->rpc_max_timeouts > 1000) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_comet_rpc_max_timeouts must be at most 1000");
        return NGX_CONF_ERROR;
    }

    if (ccf->logic) {
        ccf->logic->max_timeouts = ccf->rpc_max_timeouts;
        ccf->logic->max_backlog = ccf->rpc_max_backlog;
        ccf->logic->retry = ccf->rpc_retry;
    }

    ngx_conf_init_msec_value(ccf->rpc_auth_timeout, GOIM_AUTH_TIMEOUT_DEFAULT);

    /* without a secret, anyone reaching the push listener could push */
    if (ccf->push_open.len && ccf->rpc_secret == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_comet_push listens on %V, not a loopback "
                      "address, and no goim_comet_rpc_secret_file is set",
                      &ccf->push_open);
        return NGX_CONF_ERROR;
    }

    if (ccf->rpc_secret == NULL && (ccf->logic || ccf->push_addr.len)) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "no goim_comet_rpc_secret_file: comet's RPC is "
                      "unauthenticated (its push listener must be on "
                      "loopback)");
    }

    ngx_conf_init_msec_value(ccf->online_interval, 10000);
    ngx_conf_init_msec_value(ccf->renew_interval, 10 * 60 * 1000);
    ngx_conf_init_size_value(ccf->zone_size, NGX_GOIM_COMET_ZONE_SIZE);
    ngx_conf_init_size_value(ccf->ring_size, NGX_GOIM_COMET_RING_SIZE);
    ngx_conf_init_uint_value(ccf->history, 0);
    ngx_conf_init_msec_value(ccf->history_ttl, 5 * 60 * 1000);
    ngx_conf_init_size_value(ccf->history_size, 64 * 1024 * 1024);
    ngx_conf_init_value(ccf->weight, 10);    /* goim's -weight default */

    if (ccf->history > 1000000) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_comet_room_history must be at most 1000000");
        return NGX_CONF_ERROR;
    }

    if (ccf->history_ttl == 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_comet_room_history_ttl must not be 0");
        return NGX_CONF_ERROR;
    }
    ngx_conf_init_value(ccf->handoff, 1);
    ngx_conf_init_msec_value(ccf->handoff_timeout, 10000);
    ngx_conf_init_msec_value(ccf->drain_window, 5000);

    /* zlib's own default, and nchan's */
    ngx_conf_init_value(ccf->ws_deflate_level, 6);

    if (ccf->weight > 1000000) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_comet_weight must be at most 1000000");
        return NGX_CONF_ERROR;
    }

    ccf->ring_size = ngx_align(ccf->ring_size, 8);

    if (ccf->ring_size < 64 * 1024) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_comet_worker_queue must be at least 64k");
        return NGX_CONF_ERROR;
    }

    if (ccf->zone_size < 64 * 1024) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_comet_zone must be at least 64k");
        return NGX_CONF_ERROR;
    }

    if (ccf->online_interval < 1000) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim_comet_online_interval must be at least 1s");
        return NGX_CONF_ERROR;
    }

    /*
     * The zone is sized here, wherever worker_processes and the sizes are
     * in the file: ngx_core_module's init_conf has run (it comes first),
     * and shared memory is made after every init_conf.  The push listener
     * is a stream server: without stream {} there is no zone.
     */
    if (cycle->conf_ctx[ngx_stream_module.index]
        && ngx_goim_comet_zone_add(cycle, ccf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_goim_comet_logic(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_comet_conf_t *ccf = conf;

    ngx_str_t  *value;

    if (ccf->logic) {
        return "is duplicate";
    }

    ccf->logic = ngx_pcalloc(cf->pool, sizeof(ngx_goim_rpc_upstream_t));
    if (ccf->logic == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    return ngx_goim_rpc_parse_upstream(cf, &value[1], ccf->logic);
}



/* the public addresses logic hands to non-web clients */

static char *
ngx_goim_comet_addrs(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_comet_conf_t *ccf = conf;

    char       **addr;
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (ccf->addrs) {
        return "is duplicate";
    }

    ccf->addrs = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                  sizeof(char *));
    if (ccf->addrs == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        addr = ngx_array_push(ccf->addrs);
        if (addr == NULL) {
            return NGX_CONF_ERROR;
        }

        /* the parser leaves every word terminated */
        *addr = (char *) value[i].data;
    }

    return NGX_CONF_OK;
}


/*
 * the master, before the workers fork: the reload hand-off's board, the
 * SSE session secret
 */

static ngx_int_t
ngx_goim_comet_init_module(ngx_cycle_t *cycle)
{
    if (ngx_goim_comet_session_init_module(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_goim_comet_handoff_init_module(cycle,
                                              ngx_goim_comet_get_conf(cycle));
}


static ngx_int_t
ngx_goim_comet_init_process(ngx_cycle_t *cycle)
{
    ngx_goim_comet_conf_t    *ccf;
    ngx_goim_comet_worker_t  *wk;

    ccf = ngx_goim_comet_get_conf(cycle);

    wk = ngx_goim_comet_worker_create(cycle);
    if (wk == NULL) {
        return NGX_ERROR;
    }

    if (ngx_goim_comet_relay_init(wk) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_goim_rpc_init(&wk->rpc, ccf->rpc_secret, ccf->rpc_auth_timeout,
                      ngx_goim_comet_rpc_refused, wk, cycle->log);
    wk->rpc.counters = &wk->stats->rpc;

    if (ngx_goim_comet_handoff_init(wk) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ccf->logic == NULL) {
        return NGX_OK;
    }

    wk->logic_peer = ngx_goim_rpc_peer_create(&wk->rpc, cycle, ccf->logic,
                                              ccf->rpc_timeout);
    if (wk->logic_peer == NULL) {
        return NGX_ERROR;
    }

    /* announce this comet (and its push address) to logic at once */
    if (ccf->push_addr.len) {
        wk->online_event.handler = ngx_goim_comet_online_handler;
        wk->online_event.data = wk;
        wk->online_event.log = cycle->log;
        wk->online_event.cancelable = 1;

        ngx_add_timer(&wk->online_event, 1);
    }

    return NGX_OK;
}


static void
ngx_goim_comet_rpc_refused(void *ctx)
{
    ngx_goim_comet_worker_t  *wk = ctx;

    wk->stats->rpc_auth_refused++;
}


static void
ngx_goim_comet_exit_process(ngx_cycle_t *cycle)
{
    ngx_goim_comet_worker_t  *wk;

    wk = ngx_goim_comet_worker;

    if (wk == NULL) {
        return;
    }

    /*
     * Whatever is still open goes now, so nothing is left behind; no
     * Disconnect is sent, as its answer could never arrive: router's
     * session expiry removes those sessions.
     */
    wk->exiting = 1;

    ngx_goim_comet_handoff_exit(wk);
    ngx_goim_channel_close_all(wk);

    if (wk->poll_watch) {
        ngx_close_connection(wk->poll_watch);
        wk->poll_watch = NULL;
    }

    ngx_goim_comet_deliver_stop(wk);

    ngx_goim_rpc_sessions_finalize(&wk->rpc);
    ngx_goim_comet_relay_exit(wk);

    ngx_goim_comet_worker_destroy(wk);
}


/*
 * RenewOnline: tells logic this comet is alive, where job reaches it and
 * how many connections each room has here.
 */

static void
ngx_goim_comet_online_handler(ngx_event_t *ev)
{
    uint64_t                  queued;
    ngx_uint_t                workers, keys;
    ngx_goim_comet_conf_t    *ccf;
    ngx_goim_comet_stats_t    st;
    ngx_goim_comet_worker_t  *wk;
    Goim__OnlineReq           req = GOIM__ONLINE_REQ__INIT;
    Goim__CometInfo           info = GOIM__COMET_INFO__INIT;
    u_char                    id[256], push_addr[256], region[256];

    wk = ev->data;
    ccf = wk->conf;

    if (ngx_exiting) {
        return;
    }

    ngx_cpystrn(id, ccf->id.data, ngx_min(ccf->id.len + 1, sizeof(id)));
    ngx_cpystrn(push_addr, ccf->push_addr.data,
                ngx_min(ccf->push_addr.len + 1, sizeof(push_addr)));

    info.id = (char *) id;
    info.push_addr = (char *) push_addr;

    /*
     * Each worker renews the one registration of the comet, and router
     * keeps the last: it counts every worker's connections, not its own.
     */
    ngx_goim_comet_tables_stats(wk, &st, &workers, &queued, &keys);
    info.conn_count = st.online;
    info.weight = (int32_t) ccf->weight;

    ngx_cpystrn(region, ccf->region.data ? ccf->region.data : (u_char *) "",
                ngx_min(ccf->region.len + 1, sizeof(region)));
    info.region = (char *) region;

    if (ccf->addrs) {
        info.tcp_addrs = ccf->addrs->elts;
        info.n_tcp_addrs = ccf->addrs->nelts;
    }

    req.server = (char *) id;
    req.comet = &info;

    if (ngx_goim_rpc_call(wk->logic_peer, GOIM__METHOD__LOGIC_RENEW_ONLINE,
                          &req.base, ccf->rpc_timeout,
                          ngx_goim_comet_online_done, wk)
        == NULL)
    {
        ngx_add_timer(ev, 1000);
    }
}


static void
ngx_goim_comet_online_done(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_goim_comet_worker_t  *wk = data;

    size_t                  i;
    ngx_str_t               name;
    ngx_rbtree_node_t      *node;
    Goim__OnlineReply      *reply;
    ngx_goim_comet_room_t  *room;

    if (res->status) {
        ngx_log_error(NGX_LOG_WARN, wk->online_event.log, 0,
                      "goim comet: RenewOnline failed: %V, retrying in 1s",
                      &res->message);

        ngx_add_timer(&wk->online_event, 1000);
        return;
    }

    /* everyone's counts, for heartbeat replies; a room not listed has 0 */

    reply = (Goim__OnlineReply *) res->reply;

    if (wk->rooms.root != wk->rooms.sentinel) {
        for (node = ngx_rbtree_min(wk->rooms.root, wk->rooms.sentinel);
             node;
             node = ngx_rbtree_next(&wk->rooms, node))
        {
            ((ngx_goim_comet_room_t *) node)->all_online = 0;
        }
    }

    for (i = 0; i < reply->n_all_room_count; i++) {
        name.data = (u_char *) reply->all_room_count[i]->key;
        name.len = ngx_strlen(reply->all_room_count[i]->key);

        room = ngx_goim_room_lookup(wk, &name);
        if (room) {
            room->all_online = reply->all_room_count[i]->value;
        }
    }

    ngx_add_timer(&wk->online_event, wk->conf->online_interval);
}
