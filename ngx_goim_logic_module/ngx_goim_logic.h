
/*
 * Copyright (C) ngx_goim authors
 */


#ifndef _NGX_GOIM_LOGIC_H_INCLUDED_
#define _NGX_GOIM_LOGIC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <ngx_goim_rpc.h>
#include <goim_ketama.h>
#include <goim_token.h>


#pragma GCC visibility push(hidden)


/* logic's worker-wide state: where router and job are, session policy */

typedef struct {
    ngx_array_t               *routers;       /* ngx_goim_rpc_upstream_t */
    ngx_goim_rpc_upstream_t   *job;
    ngx_msec_t                 heartbeat;
    ngx_uint_t                 heartbeat_max;
    ngx_msec_t                 rpc_timeout;
    ngx_msec_t                 connect_timeout;
    ngx_uint_t                 rpc_max_timeouts;
    size_t                     rpc_max_backlog;
    ngx_msec_t                 rpc_retry;
    ngx_str_t                  jwt_secret;    /* empty: goim's JSON token */
    ngx_str_t                  kafka_brokers;  /* goim_logic_queue kafka= */
    ngx_str_t                  kafka_topic;

    /* the RPC plane (goim_auth.h): NULL, or the secret both ways */
    goim_auth_secret_t        *rpc_secret;
    ngx_msec_t                 rpc_auth_timeout;
    ngx_str_t                  rpc_open;      /* a non-loopback RPC listen */

    /* the ketama ring over the routers, named "1", "2", ... in order */
    goim_ketama_point_t       *ring;
    size_t                     ring_points;

    /* per worker, from init_process on */
    ngx_goim_rpc_t             rpc;          /* ctx: this conf */
    ngx_goim_rpc_peer_t      **router_peers;
    ngx_goim_rpc_peer_t       *job_peer;
} ngx_goim_logic_conf_t;


extern ngx_module_t  ngx_goim_logic_module;


/* NULL, or why the token is refused; goim_token_free() it either way */
const char *ngx_goim_logic_token_parse(ngx_goim_logic_conf_t *lcf,
    goim_token_t *t, u_char *token, size_t len);
char *ngx_goim_logic_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#define ngx_goim_logic_get_conf(cycle)                                       \
    ((ngx_goim_logic_conf_t *) ngx_get_conf(cycle->conf_ctx,                 \
                                            ngx_goim_logic_module))


/*
 * Hands push records to the queue (job over RPC, or Kafka).  NGX_OK: done()
 * runs later with the outcome, and *call can cancel it; NGX_DECLINED: no
 * queue is configured; NGX_ERROR: out of memory.
 */
typedef void (*ngx_goim_logic_queue_done_pt)(void *data,
    ngx_goim_rpc_result_t *res);

ngx_int_t ngx_goim_logic_queue_push(ngx_goim_logic_conf_t *lcf,
    Goim__PushMsg **msgs, size_t n, ngx_goim_logic_queue_done_pt done,
    void *data, ngx_goim_rpc_call_t **call);

/* goim_logic_queue job=host:port | kafka=host:port[,...] [topic=NAME] */
char *ngx_goim_logic_queue_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_goim_logic_queue_init_process(ngx_cycle_t *cycle,
    ngx_goim_logic_conf_t *lcf);
void ngx_goim_logic_queue_exit_process(ngx_cycle_t *cycle);

/* the router that owns a mid's sessions, and its index */
ngx_goim_rpc_peer_t *ngx_goim_logic_router(ngx_goim_logic_conf_t *lcf,
    int64_t mid);
ngx_uint_t ngx_goim_logic_router_index(ngx_goim_logic_conf_t *lcf,
    int64_t mid);

#define ngx_goim_logic_nrouters(lcf)                                         \
    ((lcf)->router_peers ? (lcf)->routers->nelts : 0)


/*
 * One request sent to several routers at once (keys are on any router,
 * room counts are summed over all): each() sees every successful reply,
 * then done() runs once after the last one, with the first error if any.
 * done() may free the fanout; nothing touches it afterwards.
 */

typedef struct ngx_goim_logic_fanout_s  ngx_goim_logic_fanout_t;

typedef void (*ngx_goim_logic_fanout_each_pt)(void *data,
    ngx_goim_rpc_result_t *res);
typedef void (*ngx_goim_logic_fanout_done_pt)(void *data, ngx_int_t status,
    ngx_str_t *message);

ngx_goim_logic_fanout_t *ngx_goim_logic_fanout_create(
    ngx_goim_logic_conf_t *lcf, ngx_goim_logic_fanout_each_pt each,
    ngx_goim_logic_fanout_done_pt done, void *data);

/* Sends req to router i: NGX_OK, or NGX_ERROR when memory ran out. */
ngx_int_t ngx_goim_logic_fanout_call(ngx_goim_logic_fanout_t *f,
    ngx_uint_t i, int32_t method, const ProtobufCMessage *req);

/* Sends req to every router (the same for all). */
ngx_int_t ngx_goim_logic_fanout_call_all(ngx_goim_logic_fanout_t *f,
    int32_t method, const ProtobufCMessage *req);

/* Cancels the calls still pending and frees f. */
void ngx_goim_logic_fanout_free(ngx_goim_logic_fanout_t *f);


/* counters of every worker, in the status zone (ngx_goim_logic_stats.c) */

#define NGX_GOIM_LOGIC_EP_PUSH_KEYS        0
#define NGX_GOIM_LOGIC_EP_PUSH_MIDS        1
#define NGX_GOIM_LOGIC_EP_PUSH_ROOM        2
#define NGX_GOIM_LOGIC_EP_PUSH_ALL         3
#define NGX_GOIM_LOGIC_EP_ONLINE_TOP       4
#define NGX_GOIM_LOGIC_EP_ONLINE_ROOM      5
#define NGX_GOIM_LOGIC_EP_ONLINE_TOTAL     6
#define NGX_GOIM_LOGIC_EP_NODES_WEIGHTED   7
#define NGX_GOIM_LOGIC_EP_NODES_INSTANCES  8
#define NGX_GOIM_LOGIC_EP_V1_PUSH          9
#define NGX_GOIM_LOGIC_EP_V1_PUSHS         10
#define NGX_GOIM_LOGIC_EP_V1_PUSH_ROOM     11
#define NGX_GOIM_LOGIC_EP_V1_PUSH_ALL      12
#define NGX_GOIM_LOGIC_EP_V1_SERVER_DEL    13
#define NGX_GOIM_LOGIC_EP_V1_COUNT         14
#define NGX_GOIM_LOGIC_EP_UNKNOWN          15
#define NGX_GOIM_LOGIC_EP_N                16

#define NGX_GOIM_LOGIC_STATUS_N            8   /* 200 400 404 405 413 500
                                                  503 other */
#define NGX_GOIM_LOGIC_RPC_ROUTER          0
#define NGX_GOIM_LOGIC_RPC_JOB             1
#define NGX_GOIM_LOGIC_RPC_N               2
#define NGX_GOIM_LOGIC_BUCKETS             12  /* le 1 2 5 ... 2500 +Inf ms */

typedef struct {
    ngx_atomic_t               requests[NGX_GOIM_LOGIC_EP_N]
                                       [NGX_GOIM_LOGIC_STATUS_N];
    ngx_atomic_t               rpc_bucket[NGX_GOIM_LOGIC_RPC_N]
                                         [NGX_GOIM_LOGIC_BUCKETS];
    ngx_atomic_t               rpc_sum_ms[NGX_GOIM_LOGIC_RPC_N];
    ngx_atomic_t               rpc_errors[NGX_GOIM_LOGIC_RPC_N];
    ngx_atomic_t               queue_errors;
    ngx_atomic_t               auth_accepted;
    ngx_atomic_t               auth_refused;
    ngx_atomic_t               rpc_bad_input;  /* goim_logic_rpc closes */
    ngx_atomic_t               rpc_auth_refused;  /* handshakes refused */
} ngx_goim_logic_stats_t;

extern ngx_goim_logic_stats_t  *ngx_goim_logic_stats;

#define ngx_goim_logic_stats_inc(field)                                      \
    do {                                                                     \
        if (ngx_goim_logic_stats) {                                          \
            (void) ngx_atomic_fetch_add(&ngx_goim_logic_stats->field, 1);    \
        }                                                                    \
    } while (0)

void ngx_goim_logic_stats_request(ngx_uint_t endpoint, ngx_uint_t status);
void ngx_goim_logic_stats_rpc(ngx_uint_t upstream, ngx_msec_t start,
    ngx_int_t failed);


#pragma GCC visibility pop


#endif /* _NGX_GOIM_LOGIC_H_INCLUDED_ */
