
/*
 * Copyright (C) ngx_goim authors
 */


#ifndef _NGX_GOIM_LOGIC_H_INCLUDED_
#define _NGX_GOIM_LOGIC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <ngx_goim_rpc.h>


#pragma GCC visibility push(hidden)


/* logic's worker-wide state: where router and job are, session policy */

typedef struct {
    ngx_array_t               *routers;       /* ngx_goim_rpc_upstream_t */
    ngx_goim_rpc_upstream_t   *job;
    ngx_msec_t                 heartbeat;
    ngx_uint_t                 heartbeat_max;
    ngx_msec_t                 rpc_timeout;
    ngx_msec_t                 connect_timeout;
    ngx_str_t                  jwt_secret;    /* empty: goim's JSON token */

    /* per worker, from init_process on */
    ngx_goim_rpc_peer_t      **router_peers;
    ngx_goim_rpc_peer_t       *job_peer;
} ngx_goim_logic_conf_t;


/* who a client says it is (ngx_goim_logic_auth.c) */
typedef struct {
    int64_t                    mid;
    char                      *key;           /* NULL: logic makes one */
    char                      *room;          /* NULL: no room */
    int32_t                   *accepts;
    size_t                     naccepts;
} ngx_goim_logic_token_t;


extern ngx_module_t  ngx_goim_logic_module;


/* NULL, or why the token is refused; free the token either way */
const char *ngx_goim_logic_token_parse(ngx_goim_logic_conf_t *lcf,
    ngx_goim_logic_token_t *t, u_char *token, size_t len);
void ngx_goim_logic_token_free(ngx_goim_logic_token_t *t);
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

/* the router that owns a mid's sessions */
ngx_goim_rpc_peer_t *ngx_goim_logic_router(ngx_goim_logic_conf_t *lcf,
    int64_t mid);


#pragma GCC visibility pop


#endif /* _NGX_GOIM_LOGIC_H_INCLUDED_ */
