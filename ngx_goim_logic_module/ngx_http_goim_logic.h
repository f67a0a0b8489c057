
/*
 * Copyright (C) ngx_goim authors
 */


#ifndef _NGX_HTTP_GOIM_LOGIC_H_INCLUDED_
#define _NGX_HTTP_GOIM_LOGIC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_logic.h"


#pragma GCC visibility push(hidden)


typedef struct ngx_http_goim_logic_ctx_s  ngx_http_goim_logic_ctx_t;

typedef ngx_int_t (*ngx_http_goim_logic_handler_pt)(
    ngx_http_goim_logic_ctx_t *ctx);

typedef struct {
    ngx_str_t                        path;
    ngx_uint_t                       method;
    ngx_http_goim_logic_handler_pt   handler;
    ngx_uint_t                       stat;        /* NGX_GOIM_LOGIC_EP_* */
} ngx_http_goim_logic_endpoint_t;

typedef struct {
    ngx_str_t                        name;
    int64_t                          count;
} ngx_http_goim_logic_room_t;

typedef struct {
    ngx_uint_t                       api;         /* NGX_HTTP_GOIM_LOGIC_* */
    ngx_str_t                        v1_room_type;
} ngx_http_goim_logic_loc_conf_t;

#define NGX_HTTP_GOIM_LOGIC_API      1
#define NGX_HTTP_GOIM_LOGIC_API_V1   2
#define NGX_HTTP_GOIM_LOGIC_STATUS   3


/* what /goim/nodes/weighted answers besides the nodes (http{} level) */

typedef struct {
    ngx_str_t                        domain;
    ngx_str_t                        host_domain;
    ngx_int_t                        tcp_port;
    ngx_int_t                        ws_port;
    ngx_int_t                        wss_port;
    ngx_int_t                        max_delay;
    ngx_int_t                        base_delay;
    ngx_str_t                        factor;      /* as written: JSON */
    ngx_str_t                        jitter;
    double                           region_weight;
    ngx_http_complex_value_t        *client_region;
    ngx_shm_zone_t                  *status_zone;
} ngx_http_goim_logic_main_conf_t;


struct ngx_http_goim_logic_ctx_s {
    ngx_http_request_t              *request;
    ngx_http_goim_logic_endpoint_t  *endpoint;
    ngx_goim_rpc_call_t             *call;
    ngx_goim_logic_fanout_t         *fanout;
    int32_t                          operation;
    ngx_str_t                        msg;

    ngx_array_t                      sessions;    /* Goim__Session */
    ngx_array_t                      rooms;       /* ..._room_t */
    char                           **asked;       /* full room names */
    int64_t                          limit;
    int64_t                          conn_count;
    int64_t                          ip_count;
    int64_t                          session_count;

    ngx_array_t                     *comets;      /* Goim__CometInfo */
    ngx_msec_t                       rpc_start;
    unsigned                         v1:1;
};


extern ngx_module_t  ngx_http_goim_logic_module;


ngx_int_t ngx_http_goim_logic_fanout(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done);
ngx_int_t ngx_http_goim_logic_ask_routers(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done,
    int32_t method, const ProtobufCMessage *req);
void ngx_http_goim_logic_top_each(void *data, ngx_goim_rpc_result_t *res);
ngx_int_t ngx_http_goim_logic_rpc_done(ngx_http_goim_logic_ctx_t *ctx,
    ngx_int_t status, ngx_str_t *message);
ngx_int_t ngx_http_goim_logic_mids_lookup(ngx_http_goim_logic_ctx_t *ctx,
    int64_t *mids, size_t n);
ngx_int_t ngx_http_goim_logic_push_one(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg__Type type, char *room, int32_t speed);
ngx_int_t ngx_http_goim_logic_job_push(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg **msgs, size_t n);
ngx_int_t ngx_http_goim_logic_add_room(ngx_http_goim_logic_ctx_t *ctx,
    const char *name, int64_t count);
void ngx_http_goim_logic_sum_rooms(ngx_http_goim_logic_ctx_t *ctx);
u_char *ngx_http_goim_logic_strdup(ngx_pool_t *pool, const char *s);
ngx_int_t ngx_http_goim_logic_int_arg(ngx_http_request_t *r,
    const char *name, int64_t min, int64_t max, int64_t *value);
ngx_int_t ngx_http_goim_logic_respond(ngx_http_request_t *r,
    ngx_uint_t status, ngx_int_t code, const char *fmt, ...);
void ngx_http_goim_logic_finish(ngx_http_goim_logic_ctx_t *ctx,
    ngx_uint_t status, ngx_int_t code, const char *fmt, ...);
void ngx_http_goim_logic_finish_data(ngx_http_goim_logic_ctx_t *ctx,
    ngx_chain_t *data);

/* a JSON text that grows as it is written (r->pool) */
typedef struct {
    ngx_buf_t                       *buf;
    ngx_pool_t                      *pool;
    ngx_uint_t                       failed;
} ngx_http_goim_logic_out_t;

ngx_int_t ngx_http_goim_logic_out_init(ngx_http_goim_logic_out_t *out,
    ngx_pool_t *pool, size_t size);
void ngx_http_goim_logic_out_printf(ngx_http_goim_logic_out_t *out,
    const char *fmt, ...);
void ngx_http_goim_logic_out_json(ngx_http_goim_logic_out_t *out,
    const char *s);
void ngx_http_goim_logic_out_escaped(ngx_http_goim_logic_out_t *out,
    const char *s);

/* ngx_http_goim_logic_nodes.c */
ngx_int_t ngx_http_goim_logic_nodes_weighted(ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_nodes_instances(
    ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_comet_list(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_done_pt done);
ngx_int_t ngx_goim_logic_comets_merge(ngx_array_t *comets, ngx_pool_t *pool,
    Goim__CometListReply *reply);
ngx_int_t ngx_goim_logic_nodes_pick(ngx_http_goim_logic_main_conf_t *lmcf,
    ngx_array_t *comets, ngx_str_t *region, ngx_uint_t web,
    ngx_pool_t *pool, ngx_array_t *nodes);

/* ngx_http_goim_logic_v1.c */
extern ngx_http_goim_logic_endpoint_t  ngx_http_goim_logic_v1_endpoints[];

/* ngx_goim_logic_stats.c */
ngx_int_t ngx_http_goim_logic_status_handler(ngx_http_request_t *r);
char *ngx_http_goim_logic_status_zone(ngx_conf_t *cf,
    ngx_http_goim_logic_main_conf_t *lmcf);
void ngx_http_goim_logic_status_attach(ngx_cycle_t *cycle);


#pragma GCC visibility pop


#endif /* _NGX_HTTP_GOIM_LOGIC_H_INCLUDED_ */
