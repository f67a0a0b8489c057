
/*
 * Copyright (C) ngx_goim authors
 */


#ifndef _NGX_HTTP_GOIM_LOGIC_H_INCLUDED_
#define _NGX_HTTP_GOIM_LOGIC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <yajl/yajl_gen.h>

#include <goim_args.h>

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


/* http{} level: what nodes answers besides the nodes, logic's core reads */

typedef struct {
    ngx_goim_logic_nodes_conf_t      nodes;
    ngx_http_complex_value_t        *client_region;
} ngx_http_goim_logic_main_conf_t;


/*
 * A text that grows as it is written (in pool): the status page's, and
 * the JSON replies' through gen, yajl's generator printing into it.
 */

typedef struct {
    ngx_buf_t                       *buf;
    ngx_pool_t                      *pool;
    yajl_gen                         gen;
    ngx_uint_t                       failed;
} ngx_http_goim_logic_out_t;


struct ngx_http_goim_logic_ctx_s {
    ngx_http_request_t              *request;
    ngx_http_goim_logic_endpoint_t  *endpoint;
    ngx_goim_logic_worker_t         *worker;
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

    /* ensure=1 (not in goim): one id for the call, a record per mid */
    int64_t                         *mids;        /* as asked, each once */
    size_t                           nmids;
    ngx_msec_t                       ensure_ttl;
    char                             ensure_id[NGX_GOIM_LOGIC_UUID_LEN + 1];

    ngx_msec_t                       rpc_start;
    ngx_http_goim_logic_out_t        out;         /* the JSON reply */
    unsigned                         v1:1;
    unsigned                         ensure:1;
};


extern ngx_module_t  ngx_http_goim_logic_module;


/* ngx_http_goim_logic_module.c: a request's calls to the routers */

/*
 * A fanout in ctx, or the request is answered (503 without routers, 500
 * without memory) and NGX_ERROR returned; ask_routers() sends req to all.
 */
ngx_int_t ngx_http_goim_logic_fanout(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done);
ngx_int_t ngx_http_goim_logic_ask_routers(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done,
    int32_t method, const ProtobufCMessage *req);
/* a fanout's done(): NGX_OK, or the request is answered 503 */
ngx_int_t ngx_http_goim_logic_rpc_done(ngx_http_goim_logic_ctx_t *ctx,
    ngx_int_t status, ngx_str_t *message);

/* ngx_http_goim_logic_args.c: what the request's arguments say */

/* NGX_OK: set; NGX_DECLINED: absent or empty; NGX_ERROR: not a number */
ngx_int_t ngx_http_goim_logic_int_arg(ngx_http_request_t *r,
    const char *name, int64_t min, int64_t max, int64_t *value);
/* NGX_OK: not empty; or the request is answered (400) */
ngx_int_t ngx_http_goim_logic_str_arg(ngx_http_goim_logic_ctx_t *ctx,
    const char *name, ngx_str_t *value);
/* at least one value, each once; or the request is answered (400) */
ngx_int_t ngx_http_goim_logic_list_arg(ngx_http_goim_logic_ctx_t *ctx,
    const char *name, ngx_uint_t split, goim_args_list_t *list);
/* goim's room id "<type>://<id>", NUL-terminated; NULL: out of memory */
char *ngx_http_goim_logic_room_id(ngx_pool_t *pool, ngx_str_t *type,
    u_char *id, size_t len);

/* ngx_http_goim_logic_push.c */
ngx_int_t ngx_http_goim_logic_push_keys(ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_push_mids(ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_push_room(ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_push_all(ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_mids_lookup(ngx_http_goim_logic_ctx_t *ctx,
    int64_t *mids, size_t n);
/* ensure=, ttl= (also v1's pushes): NGX_OK, or the request is answered */
ngx_int_t ngx_http_goim_logic_ensure_args(ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_push_one(ngx_http_goim_logic_ctx_t *ctx,
    Goim__PushMsg__Type type, char *room, int32_t speed);

/* ngx_http_goim_logic_receipts.c (not in goim) */
ngx_int_t ngx_http_goim_logic_receipts(ngx_http_goim_logic_ctx_t *ctx);

/* ngx_http_goim_logic_online.c */
ngx_int_t ngx_http_goim_logic_online_top(ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_online_room(ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_online_total(ngx_http_goim_logic_ctx_t *ctx);
void ngx_http_goim_logic_top_each(void *data, ngx_goim_rpc_result_t *res);
void ngx_http_goim_logic_sum_rooms(ngx_http_goim_logic_ctx_t *ctx);

/* ngx_http_goim_logic_nodes.c */
ngx_int_t ngx_http_goim_logic_nodes_weighted(ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_nodes_instances(
    ngx_http_goim_logic_ctx_t *ctx);
ngx_int_t ngx_http_goim_logic_comet_list(ngx_http_goim_logic_ctx_t *ctx,
    ngx_goim_logic_fanout_done_pt done);

/* ngx_http_goim_logic_v1.c */
extern ngx_http_goim_logic_endpoint_t  ngx_http_goim_logic_v1_endpoints[];

/* ngx_http_goim_logic_status.c */
ngx_int_t ngx_http_goim_logic_status_handler(ngx_http_request_t *r);


/* ngx_http_goim_logic_reply.c: the answers */

/* {"code":code,"message":fmt...} (v1: {"ret":...}); the handler's rc */
ngx_int_t ngx_http_goim_logic_respond(ngx_http_request_t *r,
    ngx_uint_t status, ngx_int_t code, const char *fmt, ...);
/* the same, then the request is finalized */
void ngx_http_goim_logic_finish(ngx_http_goim_logic_ctx_t *ctx,
    ngx_uint_t status, ngx_int_t code, const char *fmt, ...);

/*
 * {"code":0,"message":"","data":<what the caller writes with gen>} (v1:
 * {"ret":1,"data":...}): start() returns the generator positioned at the
 * data, or NULL when the request was answered 500; finish() closes the
 * envelope, sends it and finalizes the request.
 */
yajl_gen ngx_http_goim_logic_data_start(ngx_http_goim_logic_ctx_t *ctx);
void ngx_http_goim_logic_data_finish(ngx_http_goim_logic_ctx_t *ctx);

/* JSON values: s NUL-terminated (NULL: ""), a literal, a number's text */
void ngx_http_goim_logic_json_str(yajl_gen g, const char *s);
#define ngx_http_goim_logic_json_key(g, lit)                                 \
    yajl_gen_string(g, (const unsigned char *) lit, sizeof(lit) - 1)

ngx_int_t ngx_http_goim_logic_out_init(ngx_http_goim_logic_out_t *out,
    ngx_pool_t *pool, size_t size);
void ngx_http_goim_logic_out_printf(ngx_http_goim_logic_out_t *out,
    const char *fmt, ...);

/* status, headers and out's text; the handler's rc */
ngx_int_t ngx_http_goim_logic_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_http_goim_logic_out_t *out);


#pragma GCC visibility pop


#endif /* _NGX_HTTP_GOIM_LOGIC_H_INCLUDED_ */
