
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


/*
 * logic's core, shared by the http module (the push API) and the stream
 * module (the RPC comets call); neither includes the other's headers.
 * Configuration (what directives set) and the worker's live state are
 * apart: ngx_goim_logic_conf_t is read-only once the cycle is made,
 * ngx_goim_logic_worker_t is made by init_process and freed at exit.
 */


/*
 * What Nodes answers besides the nodes: the http{} level goim_logic_node_*
 * and goim_logic_backoff directives, or their defaults when there is no
 * http{} block (ngx_goim_logic_nodes.c).
 */

typedef struct {
    ngx_str_t                  domain;
    ngx_str_t                  host_domain;
    ngx_int_t                  tcp_port;
    ngx_int_t                  ws_port;
    ngx_int_t                  wss_port;
    ngx_int_t                  max_delay;
    ngx_int_t                  base_delay;
    ngx_str_t                  factor;        /* as written: JSON */
    ngx_str_t                  jitter;
    double                     region_weight;
} ngx_goim_logic_nodes_conf_t;


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
    ngx_msec_t                 ensure_ttl;    /* an ensure push's default */
    ngx_msec_t                 ensure_max_ttl;

    /* the RPC plane (goim_auth.h): NULL, or the secret both ways */
    goim_auth_secret_t        *rpc_secret;
    ngx_msec_t                 rpc_auth_timeout;
    ngx_str_t                  rpc_open;      /* a non-loopback RPC listen */

    /* the ketama ring over the routers, named "1", "2", ... in order */
    goim_ketama_point_t       *ring;
    size_t                     ring_points;

    /* the counters' zone, added by a goim_logic_status location */
    ngx_shm_zone_t            *stats_zone;

    /* the http{} block's, or defaults (init_conf) */
    ngx_goim_logic_nodes_conf_t  *nodes;
} ngx_goim_logic_conf_t;


typedef struct ngx_goim_logic_stats_s  ngx_goim_logic_stats_t;
typedef struct ngx_goim_logic_kafka_s  ngx_goim_logic_kafka_t;


/*
 * The connections given out since a comet last reported: goim adds one to
 * the first node of every Nodes answer until the node's next report
 * replaces the count (ngx_goim_logic_nodes.c).
 */

#define NGX_GOIM_LOGIC_CHOSEN  64

typedef struct {
    u_char                     id[64];
    int64_t                    updated_ms;
    int64_t                    chosen;
} ngx_goim_logic_chosen_t;


/* a worker's live state: its links to router and job, its counters */

typedef struct {
    ngx_goim_logic_conf_t     *conf;
    ngx_goim_rpc_t             rpc;           /* its ctx: this worker */
    ngx_goim_rpc_peer_t      **router_peers;  /* one per goim_logic_router */
    ngx_uint_t                 nrouters;
    ngx_goim_rpc_peer_t       *job_peer;
    ngx_goim_logic_kafka_t    *kafka;         /* goim_logic_queue kafka= */
    ngx_goim_logic_stats_t    *stats;         /* NULL: no goim_logic_status */
    ngx_goim_logic_chosen_t    chosen[NGX_GOIM_LOGIC_CHOSEN];
} ngx_goim_logic_worker_t;


/*
 * This worker's state, from init_process to exit_process (NULL before and
 * after).  An http request reads it once, where it starts, and passes it
 * on; an RPC request gets it as r->ctx from the RPC plane (w->rpc), which
 * the stream handler hands its sessions.
 */
extern ngx_goim_logic_worker_t  *ngx_goim_logic_worker;

extern ngx_module_t  ngx_goim_logic_module;


#define ngx_goim_logic_get_conf(cycle)                                       \
    ((ngx_goim_logic_conf_t *) ngx_get_conf(cycle->conf_ctx,                 \
                                            ngx_goim_logic_module))


/*
 * s (a protobuf string) copied into pool, NULL as ""; NULL when memory ran
 * out.  Inline: the core, http and stream files all copy replies with it.
 */
static ngx_inline char *
ngx_goim_logic_strdup(ngx_pool_t *pool, const char *s)
{
    u_char  *p;
    size_t   len;

    if (s == NULL) {
        s = "";
    }

    len = ngx_strlen(s) + 1;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len);

    return (char *) p;
}


/* a random UUID, NUL-terminated, in dst (ngx_goim_logic_module.c) */
#define NGX_GOIM_LOGIC_UUID_LEN  36
void ngx_goim_logic_uuid(char *dst);


/* NULL, or why the token is refused; goim_token_free() it either way */
const char *ngx_goim_logic_token_parse(ngx_goim_logic_conf_t *lcf,
    goim_token_t *t, u_char *token, size_t len);
char *ngx_goim_logic_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/*
 * Hands push records to the queue (job over RPC, or Kafka).  NGX_OK: done()
 * runs later with the outcome, and *call can cancel it; NGX_DECLINED: no
 * queue is configured; NGX_ERROR: out of memory.
 */
typedef void (*ngx_goim_logic_queue_done_pt)(void *data,
    ngx_goim_rpc_result_t *res);

ngx_int_t ngx_goim_logic_queue_push(ngx_goim_logic_worker_t *w,
    Goim__PushMsg **msgs, size_t n, ngx_goim_logic_queue_done_pt done,
    void *data, ngx_goim_rpc_call_t **call);

/*
 * The same, to job over RPC whether or not Kafka is configured: ensure
 * messages and their acks (job keeps them; not through Kafka yet).
 */
ngx_int_t ngx_goim_logic_queue_push_job(ngx_goim_logic_worker_t *w,
    Goim__PushMsg **msgs, size_t n, ngx_goim_logic_queue_done_pt done,
    void *data, ngx_goim_rpc_call_t **call);

/* goim_logic_queue job=host:port | kafka=host:port[,...] [topic=NAME] [job=] */
char *ngx_goim_logic_queue_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_goim_logic_queue_init_process(ngx_cycle_t *cycle,
    ngx_goim_logic_worker_t *w);
void ngx_goim_logic_queue_exit_process(ngx_goim_logic_worker_t *w);

/* the router that owns a mid's sessions (NULL: none), and its index */
ngx_goim_rpc_peer_t *ngx_goim_logic_router(ngx_goim_logic_worker_t *w,
    int64_t mid);
ngx_uint_t ngx_goim_logic_router_index(ngx_goim_logic_worker_t *w,
    int64_t mid);


/*
 * One request sent to several routers at once (keys are on any router,
 * room counts are summed over all): each() sees every successful reply,
 * then done() runs once after the last one, with the first error if any.
 * done() may free the fanout; nothing touches it afterwards
 * (ngx_goim_logic_fanout.c).
 */

typedef struct ngx_goim_logic_fanout_s  ngx_goim_logic_fanout_t;

typedef void (*ngx_goim_logic_fanout_each_pt)(void *data,
    ngx_goim_rpc_result_t *res);
typedef void (*ngx_goim_logic_fanout_done_pt)(void *data, ngx_int_t status,
    ngx_str_t *message);

ngx_goim_logic_fanout_t *ngx_goim_logic_fanout_create(
    ngx_goim_logic_worker_t *w, ngx_goim_logic_fanout_each_pt each,
    ngx_goim_logic_fanout_done_pt done, void *data);

/* Sends req to router i: NGX_OK, or NGX_ERROR when memory ran out. */
ngx_int_t ngx_goim_logic_fanout_call(ngx_goim_logic_fanout_t *f,
    ngx_uint_t i, int32_t method, const ProtobufCMessage *req);

/* Sends req to every router (the same for all). */
ngx_int_t ngx_goim_logic_fanout_call_all(ngx_goim_logic_fanout_t *f,
    int32_t method, const ProtobufCMessage *req);

/* Cancels the calls still pending and frees f. */
void ngx_goim_logic_fanout_free(ngx_goim_logic_fanout_t *f);


/* node selection, for /goim/nodes/weighted and RPC Nodes alike */

/* the NGX_CONF_UNSET of every field, then the defaults of what is unset */
void ngx_goim_logic_nodes_conf_init(ngx_goim_logic_nodes_conf_t *nc);
void ngx_goim_logic_nodes_conf_defaults(ngx_goim_logic_nodes_conf_t *nc);

/* directive handlers: cmd->offset is the nodes conf's offset in conf */
char *ngx_goim_logic_nodes_ports(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_logic_nodes_backoff(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_goim_logic_nodes_region_weight(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* a router's comets into comets (Goim__CometInfo, copied into pool) */
ngx_int_t ngx_goim_logic_comets_merge(ngx_array_t *comets, ngx_pool_t *pool,
    Goim__CometListReply *reply);

/*
 * goim's weighting over comets for a client of region (empty: none): at
 * most 5 nodes into nodes (char *), host names for web clients when a host
 * domain is set, else addresses; the default domain when none qualifies.
 */
ngx_int_t ngx_goim_logic_nodes_pick(ngx_goim_logic_worker_t *w,
    ngx_array_t *comets, ngx_str_t *region, ngx_uint_t web,
    ngx_pool_t *pool, ngx_array_t *nodes);


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
#define NGX_GOIM_LOGIC_EP_PUSH_RECEIPTS    15
#define NGX_GOIM_LOGIC_EP_UNKNOWN          16
#define NGX_GOIM_LOGIC_EP_N                17

#define NGX_GOIM_LOGIC_STATUS_N            8   /* 200 400 404 405 413 500
                                                  503 other */
#define NGX_GOIM_LOGIC_RPC_ROUTER          0
#define NGX_GOIM_LOGIC_RPC_JOB             1
#define NGX_GOIM_LOGIC_RPC_N               2
#define NGX_GOIM_LOGIC_BUCKETS             12  /* le 1 2 5 ... 2500 +Inf ms */

struct ngx_goim_logic_stats_s {
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
    ngx_goim_rpc_counters_t    rpc;           /* links to router and job,
                                                 the comets' sessions */
};

/* the status codes and histogram bounds counted (the last: any other) */
extern ngx_uint_t  ngx_goim_logic_stats_statuses[NGX_GOIM_LOGIC_STATUS_N - 1];
extern ngx_msec_t  ngx_goim_logic_stats_bounds[NGX_GOIM_LOGIC_BUCKETS - 1];

#define ngx_goim_logic_stats_inc(st, field)                                  \
    do {                                                                     \
        if (st) {                                                            \
            (void) ngx_atomic_fetch_add(&(st)->field, 1);                    \
        }                                                                    \
    } while (0)

/* adds the zone once; a goim_logic_status location calls it */
char *ngx_goim_logic_stats_zone(ngx_conf_t *cf, ngx_goim_logic_conf_t *lcf);
void ngx_goim_logic_stats_request(ngx_goim_logic_stats_t *st,
    ngx_uint_t endpoint, ngx_uint_t status);
void ngx_goim_logic_stats_rpc(ngx_goim_logic_stats_t *st,
    ngx_uint_t upstream, ngx_msec_t start, ngx_int_t failed);


#pragma GCC visibility pop


#endif /* _NGX_GOIM_LOGIC_H_INCLUDED_ */
