
/*
 * Copyright (C) ngx_goim authors
 */


#ifndef _NGX_GOIM_COMET_ZONE_H_INCLUDED_
#define _NGX_GOIM_COMET_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_goim_comet.h"


#pragma GCC visibility push(hidden)


/*
 * The layout of the shared zone, for the three files that use it: the
 * zone itself (ngx_goim_comet_zone.c: layout, locks, posting records),
 * the tables in it (ngx_goim_comet_tables.c) and the relay that drains
 * the rings (ngx_goim_comet_relay.c).
 */


#define NGX_GOIM_COMET_REC_PAD        0
#define NGX_GOIM_COMET_REC_KEYS       1
#define NGX_GOIM_COMET_REC_ROOM       2
#define NGX_GOIM_COMET_REC_BROADCAST  3
#define NGX_GOIM_COMET_REC_KICK       4
#define NGX_GOIM_COMET_REC_CONTROL    5    /* an SSE control call */
#define NGX_GOIM_COMET_REC_POLL       6    /* a long-poll, to its owner */
#define NGX_GOIM_COMET_REC_ANSWER     7    /* ... its answer, back */


/* ngx_goim_comet_zone_recovered(): the tables' lock, not a ring's */
#define NGX_GOIM_COMET_NO_RING    ((ngx_uint_t) -1)


/* a record in a ring: this, then its keys or room name, then the message */
typedef struct {
    uint32_t                   len;          /* the record, 8-aligned */
    uint16_t                   type;
    uint16_t                   raw;
    int32_t                    op;           /* accept filter; ANSWER:
                                                the HTTP status */
    uint32_t                   msg_len;
    uint32_t                   nkeys;        /* or the name's length */
    uint32_t                   ack_filter;   /* KEYS: PushMsgReq's */
    uint32_t                   from;         /* POLL: the polling worker */
    uint64_t                   id;           /* KICK: the connection;
                                                POLL, ANSWER: the waiter */
    uint64_t                   sent_ns;      /* CLOCK_MONOTONIC */
    uint64_t                   epoch;        /* ROOM, BROADCAST: the
                                                message's position; POLL,
                                                ANSWER: the cursor */
    uint64_t                   seq;
} ngx_goim_comet_rec_t;


typedef struct {
    ngx_atomic_t               lock;
    ngx_atomic_t               sleeping;     /* owner waits for a kick */
    ngx_atomic_t               dropped;      /* records refused: full */
    volatile uint64_t          head;         /* producers */
    volatile uint64_t          tail;         /* the owner */
    size_t                     size;
    u_char                    *data;
} ngx_goim_comet_ring_t;


typedef struct {
    ngx_atomic_t               lock;         /* the tables: owner's pid */
    ngx_atomic_t               rebuilds;     /* of the tables */
    ngx_slab_pool_t           *pool;         /* the tables' nodes */
    size_t                     pool_size;
    ngx_rbtree_t               keys;
    ngx_rbtree_node_t          sentinel;
    ngx_uint_t                 nkeys;
    ngx_rbtree_t               rooms;
    ngx_rbtree_node_t          room_sentinel;
    ngx_uint_t                 nrooms;
    size_t                     room_bytes;   /* their names, added up */
    ngx_uint_t                 nrings;
    ngx_goim_comet_ring_t     *rings;
    ngx_goim_comet_stats_t    *stats;        /* one per worker */
    ngx_atomic_t              *pids;         /* one per worker */
} ngx_goim_comet_shctx_t;


typedef struct {
    ngx_str_node_t             node;
    ngx_uint_t                 worker;
    uint64_t                   id;
} ngx_goim_comet_shkey_t;


/* a room some worker has members in; the name follows the bitmap */
typedef struct {
    ngx_str_node_t             node;
    uint64_t                   workers[1];   /* (nrings + 63) / 64 words */
} ngx_goim_comet_shroom_t;


#define ngx_goim_comet_sh(wk)  ((ngx_goim_comet_shctx_t *) (wk)->sh)

#define ngx_goim_comet_room_words(sh)  (((sh)->nrings + 63) / 64)


/* ngx_goim_comet_zone.c */
ngx_pid_t ngx_goim_comet_zone_lock(ngx_atomic_t *lock);
void ngx_goim_comet_zone_recovered(ngx_goim_comet_worker_t *wk,
    ngx_pid_t pid, ngx_uint_t ring);
void ngx_goim_comet_zone_tables_reset(ngx_goim_comet_shctx_t *sh);
ngx_int_t ngx_goim_comet_zone_post(ngx_goim_comet_worker_t *wk,
    ngx_uint_t worker, ngx_goim_comet_rec_t *rec, u_char *extra,
    size_t extra_len, u_char *msg);
void ngx_goim_comet_zone_wake(ngx_goim_comet_worker_t *wk, ngx_uint_t w);
uint64_t ngx_goim_comet_zone_now_ns(void);
ngx_uint_t ngx_goim_comet_zone_bucket(const uint32_t *bounds, ngx_uint_t n,
    uint64_t value);
ngx_uint_t ngx_goim_comet_zone_percentile(
    const volatile ngx_atomic_uint_t *counts, const uint32_t *bounds,
    ngx_uint_t n, ngx_uint_t permille);

/* ngx_goim_comet_tables.c, for the relay */
void ngx_goim_comet_tables_recover(ngx_goim_comet_worker_t *wk);
void ngx_goim_comet_tables_forget(ngx_goim_comet_worker_t *wk);
void ngx_goim_comet_tables_sync(ngx_goim_comet_worker_t *wk);
ngx_uint_t ngx_goim_comet_tables_owners(ngx_goim_comet_worker_t *wk,
    char **keys, size_t n, ngx_uint_t *owner, ngx_uint_t *klen,
    ngx_uint_t *count);


#pragma GCC visibility pop


#endif /* _NGX_GOIM_COMET_ZONE_H_INCLUDED_ */
