/*
 * goim-router: the one server struct and the configuration, shared by
 * its files (main.c: main(), server.c: life cycle and timers, config.c:
 * options, rpc.c: the methods it serves, session.c: the store, comet.c:
 * the registry).
 */

#ifndef ROUTER_H
#define ROUTER_H

#include <stdint.h>
#include <uv.h>

#include "comet.h"
#include "goim_uv_daemon.h"
#include "session.h"

#define ROUTER_NAME  "goim-router"

typedef struct {
    goim_daemon_conf_t   base;           /* listen, log_level, ... */
    int64_t              session_ttl;    /* s */
    int64_t              comet_ttl;      /* s */
    int64_t              expire_batch;   /* sessions per expiry pass */
} router_conf_t;

typedef struct {
    uint64_t             puts;
    uint64_t             replaced;
    uint64_t             dels;
    uint64_t             del_misses;
    uint64_t             renews;
    uint64_t             renew_misses;
    uint64_t             lookups;        /* by-mids and by-keys requests */
    uint64_t             lookup_repeats; /* mids and keys asked twice */
    uint64_t             comet_renews;
    uint64_t             comet_dels;
    uint64_t             comet_sessions_dropped;  /* with their comet */
    uint64_t             online_queries;          /* top, room, total */
} router_stats_t;

typedef struct {
    router_conf_t       *conf;
    uv_loop_t           *loop;
    uv_timer_t           expire_timer;
    router_store_t       store;
    router_comets_t      comets;
    router_stats_t       stats;
    unsigned             started:1;
} router_server_t;

extern router_server_t           router;
extern const goim_opt_t          router_opts[];
extern const goim_rpc_handler_t  router_handlers[];

/* server.c */
int router_start(uv_loop_t *loop, void *conf);
void router_reload(void *conf);
void router_stop(void);

/* Drops the sessions of the comets that just left, in one walk. */
void router_comets_sweep(void);

#endif /* ROUTER_H */
