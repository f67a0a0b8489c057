
/*
 * Copyright (C) ngx_goim authors
 */


#ifndef _NGX_GOIM_COMET_H_INCLUDED_
#define _NGX_GOIM_COMET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <ngx_goim_rpc.h>
#include <goim_ws.h>


#pragma GCC visibility push(hidden)


#define NGX_GOIM_COMET_ZONE_SIZE   (32 * 1024 * 1024)
#define NGX_GOIM_COMET_RING_SIZE   (4 * 1024 * 1024)


#define NGX_GOIM_COMET_HOP_BUCKETS  30


/*
 * One worker's counters; they live in the shared zone so the status page,
 * served by any worker, can add up every worker's.
 */
typedef struct {
    ngx_atomic_uint_t          conns_tcp;     /* open, any state */
    ngx_atomic_uint_t          conns_ws;
    ngx_atomic_uint_t          online;        /* authenticated */
    ngx_atomic_uint_t          rooms;
    ngx_atomic_uint_t          push_calls;    /* push RPCs served */
    ngx_atomic_uint_t          xw_records;    /* from other workers */
    ngx_atomic_uint_t          packets_out;   /* written to clients */
    ngx_atomic_uint_t          dropped;       /* a client's queue was full */
    ngx_atomic_uint_t          xw_dropped;    /* a worker's queue was full */
    ngx_atomic_uint_t          auth_failed;
    ngx_atomic_uint_t          kicked;
    ngx_atomic_uint_t          bad_input;     /* closed for a bad packet */
    ngx_atomic_uint_t          locks_recovered;  /* a dead worker's */
    ngx_atomic_uint_t          token_refused; /* op 12/14 past its JWT */
    ngx_atomic_uint_t          rpc_auth_refused;  /* push RPC handshakes */

    /* records from other workers by hop time (ngx_goim_comet_shm.c) */
    ngx_atomic_uint_t          hop_us[NGX_GOIM_COMET_HOP_BUCKETS];
} ngx_goim_comet_stats_t;


/* the comet's worker-wide state: configuration and live tables */

typedef struct {
    ngx_cycle_t               *cycle;
    ngx_str_t                  id;
    ngx_goim_rpc_upstream_t   *logic;
    ngx_msec_t                 rpc_timeout;
    ngx_uint_t                 rpc_max_timeouts;
    size_t                     rpc_max_backlog;
    ngx_msec_t                 rpc_retry;
    ngx_msec_t                 online_interval;

    ngx_str_t                  push_addr;     /* advertised to job */
    ngx_array_t               *addrs;         /* char *, for logic's nodes */
    ngx_int_t                  weight;
    ngx_str_t                  region;
    ngx_msec_t                 renew_interval;
    size_t                     zone_size;
    size_t                     ring_size;

    /* the RPC plane (goim_auth.h): NULL, or the secret both ways */
    goim_auth_secret_t        *rpc_secret;
    ngx_msec_t                 rpc_auth_timeout;
    ngx_str_t                  push_open;     /* a non-loopback push listen */

    /* delivery across workers (ngx_goim_comet_shm.c) */
    ngx_shm_zone_t            *shm_zone;
    void                      *sh;
    int                       *eventfds;
    ngx_uint_t                 neventfds;
    int                        my_eventfd;
    ngx_uint_t                 draining;      /* in ngx_goim_xw_drain() */
    ngx_uint_t                 drain_batch;   /* records per wake-up:
                                                 goim_comet_push batch= */
    ngx_uint_t                 worker;
    ngx_uint_t                 nworkers;      /* workers draining rings */
    ngx_connection_t          *xw_connection;
    ngx_uint_t                 tables_rebuilds;  /* seen by this worker */
    uint64_t                   next_id;

    /* per worker, from init_process on */
    ngx_goim_rpc_t             rpc;           /* ctx: this conf */
    ngx_goim_rpc_peer_t       *logic_peer;
    ngx_rbtree_t               channels;      /* by key, authenticated */
    ngx_rbtree_node_t          sentinel;
    ngx_queue_t                all;           /* every channel */
    ngx_rbtree_t               rooms;         /* by name */
    ngx_rbtree_node_t          room_sentinel;
    ngx_uint_t                 exiting;       /* in exit_process */
    ngx_event_t                online_event;

    ngx_queue_t                pacers;        /* paced broadcasts */
    ngx_goim_comet_stats_t    *stats;         /* shared, or local_stats */
    ngx_goim_comet_stats_t     local_stats;
} ngx_goim_comet_conf_t;


typedef enum {
    NGX_GOIM_CHANNEL_HANDSHAKE = 0,   /* waiting for op 7 */
    NGX_GOIM_CHANNEL_AUTHING,         /* Connect call under way */
    NGX_GOIM_CHANNEL_ONLINE,
    NGX_GOIM_CHANNEL_CLOSED
} ngx_goim_channel_state_e;


/* one encoded packet, shared by reference among all its recipients */
typedef struct {
    ngx_uint_t                 refs;
    size_t                     len;
    unsigned                   raw:1;         /* an OpRaw batch */
    unsigned                   frame:1;       /* bytes ready for the wire */
    u_char                     data[1];
} ngx_goim_comet_msg_t;


typedef struct ngx_goim_comet_out_s  ngx_goim_comet_out_t;

struct ngx_goim_comet_out_s {
    ngx_goim_comet_out_t      *next;
    ngx_goim_comet_msg_t      *msg;
    u_char                    *pos;
    u_char                    *last;
    u_char                     hdr[10];       /* WebSocket frame header */
    u_char                     hdr_pos;
    u_char                     hdr_len;
};


typedef struct ngx_goim_channel_s  ngx_goim_channel_t;

typedef struct {
    ngx_str_node_t             node;          /* name, in ccf->rooms */
    ngx_queue_t                members;
    ngx_uint_t                 online;        /* members in this worker */
    int32_t                    all_online;    /* everywhere, from logic */
} ngx_goim_comet_room_t;

/* what the transport (TCP now, WebSocket later) gives a channel */
typedef struct {
    ngx_msec_t                 handshake_timeout;
    size_t                     max_body;
    ngx_uint_t                 queue_size;
    ngx_uint_t                 max_accepts;
} ngx_goim_channel_conf_t;


/* operations, sorted and unique (ngx_goim_comet_opset.c) */
typedef struct {
    int32_t                   *elts;          /* ngx_alloc()ed */
    ngx_uint_t                 nelts;
} ngx_goim_opset_t;


struct ngx_goim_channel_s {
    ngx_str_node_t             node;          /* key, in ccf->channels */
    ngx_queue_t                queue;         /* in ccf->all */
    ngx_connection_t          *connection;
    ngx_goim_comet_conf_t     *ccf;
    ngx_goim_channel_conf_t   *conf;
    void                     (*finalize)(ngx_goim_channel_t *ch);
    void                      *owner;

    ngx_goim_channel_state_e   state;
    ngx_goim_rpc_call_t       *call;
    uint64_t                   id;            /* unique in a generation */

    int64_t                    mid;
    ngx_goim_comet_room_t     *room;
    ngx_queue_t                room_link;     /* in room->members */
    ngx_goim_opset_t           accepts;

    /* with a signed token: what ops 12 and 14 may ask for (restricted) */
    ngx_goim_opset_t           allowed_ops;
    ngx_str_t                 *allowed_rooms; /* one ngx_alloc() block */
    ngx_uint_t                 nallowed_rooms;
    ngx_msec_t                 heartbeat;
    ngx_msec_t                 renew_at;      /* next session renewal */

    u_char                    *in;
    size_t                     in_len;

    u_char                    *frag;          /* WebSocket reassembly */
    size_t                     frag_len;

    ngx_goim_comet_out_t      *out;
    ngx_goim_comet_out_t     **out_tail;
    ngx_uint_t                 queued;

    unsigned                   registered:1;
    unsigned                   kicked:1;
    unsigned                   ws:1;
    unsigned                   restricted:1;
};


extern ngx_module_t  ngx_goim_comet_module;


#define ngx_goim_channel_from_connection(c)                                  \
    ((ngx_goim_channel_t *) (c)->data)

/* room for one whole frame (WebSocket) or packet (TCP) */
#define ngx_goim_channel_in_size(ch)                                         \
    (((ch)->ws ? GOIM_WS_MAX_HEADER : 0) + GOIM_HEADER_LEN                   \
     + (ch)->conf->max_body)

#define ngx_goim_comet_get_conf(cycle)                                       \
    ((ngx_goim_comet_conf_t *) ngx_get_conf(cycle->conf_ctx,                 \
                                            ngx_goim_comet_module))


void ngx_goim_channel_conf_init(ngx_goim_channel_conf_t *conf);
char *ngx_goim_channel_conf_merge(ngx_conf_t *cf,
    ngx_goim_channel_conf_t *conf, ngx_goim_channel_conf_t *prev);

ngx_goim_channel_t *ngx_goim_channel_create(ngx_connection_t *c,
    ngx_goim_channel_conf_t *conf, ngx_uint_t ws,
    void (*finalize)(ngx_goim_channel_t *ch), void *owner);
void ngx_goim_channel_start(ngx_goim_channel_t *ch, u_char *data,
    size_t len);

void ngx_goim_channel_close_all(ngx_goim_comet_conf_t *ccf);
ngx_goim_channel_t *ngx_goim_channel_lookup(ngx_goim_comet_conf_t *ccf,
    ngx_str_t *key);
ngx_int_t ngx_goim_channel_accepts(ngx_goim_channel_t *ch, int32_t op);

/* NGX_OK queued, NGX_DECLINED dropped (queue full), NGX_ERROR */
ngx_int_t ngx_goim_channel_push(ngx_goim_channel_t *ch,
    ngx_goim_comet_msg_t *msg);

ngx_int_t ngx_goim_channel_enqueue_raw(ngx_goim_channel_t *ch,
    ngx_goim_comet_msg_t *msg);

ngx_goim_comet_msg_t *ngx_goim_comet_msg_create(size_t len, ngx_log_t *log);
void ngx_goim_comet_msg_release(ngx_goim_comet_msg_t *msg);

ngx_goim_comet_room_t *ngx_goim_room_lookup(ngx_goim_comet_conf_t *ccf,
    ngx_str_t *name);
ngx_int_t ngx_goim_room_join(ngx_goim_channel_t *ch, ngx_str_t *name);
void ngx_goim_room_leave(ngx_goim_channel_t *ch);
int32_t ngx_goim_room_online(ngx_goim_comet_room_t *room);

void ngx_goim_channel_kick(ngx_goim_channel_t *ch);

ngx_uint_t ngx_goim_opset_sort(int32_t *ops, ngx_uint_t n);
ngx_uint_t ngx_goim_opset_count(u_char *p, size_t len);
ngx_int_t ngx_goim_opset_parse(u_char *p, size_t len, int32_t *ops,
    ngx_uint_t *n);
ngx_int_t ngx_goim_opset_init(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n, ngx_uint_t max, ngx_log_t *log);
ngx_int_t ngx_goim_opset_add(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n, ngx_uint_t max, ngx_log_t *log);
void ngx_goim_opset_remove(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n);
ngx_uint_t ngx_goim_opset_has(ngx_goim_opset_t *set, int32_t op);
ngx_int_t ngx_goim_opset_covers(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n, int32_t *missing);
void ngx_goim_opset_free(ngx_goim_opset_t *set);

ngx_uint_t ngx_goim_comet_push_key(ngx_goim_comet_conf_t *ccf, ngx_str_t *key,
    int32_t op, ngx_goim_comet_msg_t *msg);
void ngx_goim_comet_push_room(ngx_goim_comet_conf_t *ccf, ngx_str_t *name,
    ngx_goim_comet_msg_t *msg);
void ngx_goim_comet_push_all(ngx_goim_comet_conf_t *ccf, int32_t op,
    ngx_goim_comet_msg_t *msg, ngx_uint_t speed);
void ngx_goim_comet_pacers_stop(ngx_goim_comet_conf_t *ccf);

ngx_int_t ngx_goim_xw_add_zone(ngx_conf_t *cf, ngx_goim_comet_conf_t *ccf);
ngx_int_t ngx_goim_xw_init_worker(ngx_cycle_t *cycle,
    ngx_goim_comet_conf_t *ccf);
void ngx_goim_xw_exit_worker(ngx_goim_comet_conf_t *ccf);
void ngx_goim_xw_poll(ngx_goim_comet_conf_t *ccf);
void ngx_goim_xw_room_add(ngx_goim_comet_conf_t *ccf, ngx_str_node_t *name);
void ngx_goim_xw_room_del(ngx_goim_comet_conf_t *ccf, ngx_str_node_t *name);
ngx_int_t ngx_goim_xw_rooms(ngx_goim_comet_conf_t *ccf, char ***names,
    size_t *n);
ngx_int_t ngx_goim_xw_key_set(ngx_goim_comet_conf_t *ccf,
    ngx_goim_channel_t *ch);
void ngx_goim_xw_key_del(ngx_goim_comet_conf_t *ccf, ngx_goim_channel_t *ch);
ngx_uint_t ngx_goim_xw_push_keys(ngx_goim_comet_conf_t *ccf, char **keys,
    size_t n, int32_t op, ngx_goim_comet_msg_t *msg);
void ngx_goim_xw_push_others(ngx_goim_comet_conf_t *ccf, ngx_str_t *room,
    int32_t op, ngx_uint_t speed, ngx_goim_comet_msg_t *msg);
void ngx_goim_xw_stats(ngx_goim_comet_conf_t *ccf,
    ngx_goim_comet_stats_t *sum, ngx_uint_t *workers, uint64_t *queued,
    ngx_uint_t *keys);
ngx_uint_t ngx_goim_xw_hop_percentile(ngx_goim_comet_stats_t *st,
    ngx_uint_t permille);

void ngx_goim_comet_push_bad_input(void *ctx);
void ngx_goim_comet_push_session(ngx_connection_t *c,
    ngx_goim_rpc_session_conf_t *conf,
    void (*on_close)(void *data), void *data);


#pragma GCC visibility pop


#endif /* _NGX_GOIM_COMET_H_INCLUDED_ */
