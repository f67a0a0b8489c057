/*
 * goim-job: the one server struct and the configuration, shared by its
 * files (main.c: main(), server.c: life cycle, config.c: options,
 * comets.c: the comet directory and its clients, push.c: routing PushMsgs
 * to comets, rpc.c: the methods it serves).
 */

#ifndef JOB_H
#define JOB_H

#include <stdint.h>
#include <uv.h>

#include "goim_uv_daemon.h"
#include "goim_uv_queue.h"

#define JOB_NAME  "goim-job"

typedef struct {
    goim_daemon_conf_t   base;            /* listen, log_level, ... */
    char                *router;          /* host:port */
    int64_t              comet_refresh;   /* s */
    int64_t              comet_timeout;   /* s */
    int64_t              router_timeout;  /* s */
} job_conf_t;

/* A comet as router lists it, and the client job pushes to it with. */
typedef struct {
    goim_queue_t         queue;           /* in job.comets */
    char                *id;
    char                *push_addr;
    goim_rpc_client_t   *client;
    unsigned             seen:1;          /* in the latest list */
} job_comet_t;

/*
 * Something waiting for a comet list fetched after it started waiting
 * (a push naming a comet job does not know yet).
 */
typedef struct job_wait_s  job_wait_t;

struct job_wait_s {
    goim_queue_t         queue;
    void               (*ready)(job_wait_t *w);
};

typedef struct {
    uint64_t             requests;        /* JOB_PUSH calls */
    uint64_t             msgs;            /* PushMsgs in them */
    uint64_t             sent;            /* comet calls answered OK */
    uint64_t             failed;          /* comet calls that failed */
    uint64_t             dropped;         /* PushMsgs with no comet to go to */
    uint64_t             keys_delivered;  /* as comets reported */
    uint64_t             keys_dropped;    /* as comets reported */
    uint64_t             refreshes;       /* comet lists fetched */
    uint64_t             refresh_failures;
    uint64_t             waiting;         /* PushMsgs waiting for a list */
} job_stats_t;

typedef struct {
    job_conf_t          *conf;
    uv_loop_t           *loop;
    goim_rpc_client_t   *router;
    uv_timer_t           refresh_timer;
    goim_rpc_call_t     *refresh_call;    /* in flight */
    goim_queue_t         wait_next;       /* for a refresh not started */
    goim_queue_t         wait_inflight;   /* for the one in flight */
    goim_queue_t         comets;
    size_t               ncomets;
    job_stats_t          stats;
    unsigned             refresh_failing:1;
    unsigned             started:1;
    unsigned             stopping:1;
} job_server_t;

extern job_server_t              job;
extern const goim_opt_t          job_opts[];
extern const goim_rpc_handler_t  job_handlers[];

/* server.c */
int job_start(uv_loop_t *loop, void *conf);
void job_reload(void *conf);
void job_stop(void);

/* config.c */
int job_conf_check(void *conf, char *err, size_t errlen);

/* comets.c */
int job_comets_start(void);
void job_comets_reload(void);
void job_comets_stop(void);
job_comet_t *job_comets_find(const char *id);
void job_comets_wait(job_wait_t *w);

/* push.c */
void job_push(goim_rpc_req_t *r);

#endif /* JOB_H */
