
/*
 * Copyright (C) ngx_goim authors
 */


#ifndef _NGX_GOIM_RPC_H_INCLUDED_
#define _NGX_GOIM_RPC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include <goim_auth.h>
#include <goim_rpc.h>


#pragma GCC visibility push(hidden)


/*
 * The RPC channel inside an NGINX worker, both directions, never blocking:
 *
 * - a peer is one upstream (logic, router, job) seen from one worker: one
 *   connection opened on first use, calls multiplexed on it by sequence
 *   number, each with its own deadline, reconnection on the next call;
 *   a connection that stops being served (calls time out in a row, or
 *   unsent calls pile up) is reset, and calls fail at once for a while;
 * - a session is the server side of one accepted connection: frames are
 *   unpacked and handed to a handler, which replies now or later; a few
 *   frames per read event, none while the peer leaves its replies unread,
 *   each frame bounded in size and in the time it may take to arrive.
 */


typedef struct ngx_goim_rpc_peer_s     ngx_goim_rpc_peer_t;
typedef struct ngx_goim_rpc_call_s     ngx_goim_rpc_call_t;
typedef struct ngx_goim_rpc_session_s  ngx_goim_rpc_session_t;
typedef struct ngx_goim_rpc_request_s  ngx_goim_rpc_request_t;


/*
 * One worker's RPC plane, kept in the module's worker state (never in a
 * conf: it is live state) and set up from init_process, before any peer
 * connects or any session starts: the server sessions its listeners serve
 * (ngx_goim_rpc_sessions_finalize() closes them from exit_process) and
 * its secret.  With a secret (secret->len != 0) every peer and every
 * session runs goim_auth.h's handshake first, within auth_timeout; a
 * peer's calls wait for it, a session reads no request before it.  A
 * session refused by the handshake is logged and refused(ctx) (may be
 * NULL) counts it.  ctx, the module's worker state, is handed to every
 * callback and to every request as r->ctx, so handlers need no global.
 */
/*
 * What the RPC plane counts besides its callers' own counters: events that
 * fail or hold back calls without losing anything the callers do not
 * count already.  They live in the module's shared counters, so that its
 * status page adds up every worker's.
 */
typedef struct {
    ngx_atomic_t               link_resets;       /* upstream links reset
                                                     (timeouts, backlog) */
    ngx_atomic_t               link_auth_failed;  /* our handshake with an
                                                     upstream failed */
    ngx_atomic_t               sessions_paused;   /* sessions that stopped
                                                     reading: replies unread */
} ngx_goim_rpc_counters_t;

typedef struct {
    ngx_queue_t                sessions;
    const goim_auth_secret_t  *secret;       /* NULL: no handshake */
    ngx_msec_t                 auth_timeout;
    void                     (*auth_refused)(void *ctx);
    void                      *ctx;

    /* NULL, or set by the module once its counters exist */
    ngx_goim_rpc_counters_t   *counters;

    /*
     * NULL, or asked when the worker quits (nginx closes its idle
     * connections, sessions among them): NGX_OK keeps the session open
     * and frozen, reading no more requests while its replies still go
     * out, for the module to hand it to another process
     * (ngx_goim_rpc_session_export()); anything else closes it, as
     * without the hook.
     */
    ngx_int_t                (*session_quit)(void *ctx,
                                             ngx_goim_rpc_session_t *s);
} ngx_goim_rpc_t;


#define ngx_goim_rpc_count(rpc, field)                                       \
    do {                                                                     \
        if ((rpc)->counters) {                                               \
            (void) ngx_atomic_fetch_add(&(rpc)->counters->field, 1);         \
        }                                                                    \
    } while (0)


typedef struct {
    ngx_int_t                  status;   /* 0, or a Goim__ErrorCode */
    ngx_str_t                  message;  /* why, when status != 0 */
    ProtobufCMessage          *reply;    /* freed after the callback */
} ngx_goim_rpc_result_t;

typedef void (*ngx_goim_rpc_done_pt)(void *data, ngx_goim_rpc_result_t *res);


/* configuration of an upstream, filled in while parsing */
typedef struct {
    ngx_str_t                  name;     /* host:port as written */
    ngx_addr_t                *addrs;
    ngx_uint_t                 naddrs;

    /*
     * When to give up on a connection that is open but not served (a
     * stopped or wedged upstream): after max_timeouts calls in a row
     * timed out, or when more than max_backlog bytes wait to be sent.
     * The connection is then closed, its pending calls fail at once, and
     * so does every call for the next retry ms; the call after that
     * reconnects.  0 turns the first two off.  The module sets these
     * from its directives before ngx_goim_rpc_peer_create().
     */
    ngx_uint_t                 max_timeouts;
    size_t                     max_backlog;
    ngx_msec_t                 retry;
} ngx_goim_rpc_upstream_t;


/* the listener parameters' defaults (docs/directives.md) */
#define NGX_GOIM_RPC_MAX_FRAME      (4 * 1024 * 1024)
#define NGX_GOIM_RPC_FRAME_TIMEOUT  30000
#define NGX_GOIM_RPC_BACKLOG        (1024 * 1024)
#define NGX_GOIM_RPC_BATCH          16


/* the bounds of a server session, from its listener's parameters */
typedef struct {
    size_t                     max_frame;      /* body bytes */
    ngx_msec_t                 frame_timeout;  /* a frame started must
                                                  complete in this */
    size_t                     backlog;        /* unsent reply bytes past
                                                  which reading stops */
    ngx_uint_t                 batch;          /* frames per read event */

    /* counts a session closed for bad input: a bad or oversize frame, a
     * frame timeout, an unknown method (the module's status); or NULL */
    void                     (*bad_input)(void *ctx);
} ngx_goim_rpc_session_conf_t;


struct ngx_goim_rpc_call_s {
    ngx_rbtree_node_t          node;     /* key: sequence number */
    ngx_event_t                timeout;
    ngx_goim_rpc_peer_t       *peer;
    int32_t                    method;
    ngx_goim_rpc_done_pt       done;
    void                      *data;
};


char *ngx_goim_rpc_parse_upstream(ngx_conf_t *cf, ngx_str_t *value,
    ngx_goim_rpc_upstream_t *up);

ngx_goim_rpc_peer_t *ngx_goim_rpc_peer_create(ngx_goim_rpc_t *rpc,
    ngx_cycle_t *cycle, ngx_goim_rpc_upstream_t *up,
    ngx_msec_t connect_timeout);

/* For exit_process: closes the connection, drops pending calls unheard. */
void ngx_goim_rpc_peer_close(ngx_goim_rpc_peer_t *peer);

/*
 * Sends a call.  done() runs exactly once, later (never from inside this
 * function), unless the call is cancelled first.  Returns NULL only when
 * memory ran out; an unreachable peer is reported through done().
 */
ngx_goim_rpc_call_t *ngx_goim_rpc_call(ngx_goim_rpc_peer_t *peer,
    int32_t method, const ProtobufCMessage *req, ngx_msec_t timeout,
    ngx_goim_rpc_done_pt done, void *data);

/* Forgets a call whose caller went away; its reply will be ignored. */
void ngx_goim_rpc_cancel(ngx_goim_rpc_call_t *call);

/*
 * A local call: the same handle and done() contract for an answer that
 * comes from elsewhere in the worker (logic's Kafka delivery reports).
 * It waits in list under id until ngx_goim_rpc_local_finish(), or fails
 * with ERROR_TIMEOUT after timeout; ngx_goim_rpc_cancel() works on it.
 */
ngx_goim_rpc_call_t *ngx_goim_rpc_local_call(ngx_queue_t *list,
    ngx_rbtree_key_t id, ngx_msec_t timeout, ngx_log_t *log,
    ngx_goim_rpc_done_pt done, void *data);
ngx_goim_rpc_call_t *ngx_goim_rpc_local_find(ngx_queue_t *list,
    ngx_rbtree_key_t id);
/* runs done() now (status 0 or a Goim__ErrorCode; message static) */
void ngx_goim_rpc_local_finish(ngx_goim_rpc_call_t *call, ngx_int_t status,
    const char *message);
/* the same from the event loop, for an answer known at once */
void ngx_goim_rpc_local_finish_later(ngx_goim_rpc_call_t *call,
    ngx_int_t status, const char *message);


void ngx_goim_rpc_init(ngx_goim_rpc_t *rpc, const goim_auth_secret_t *secret,
    ngx_msec_t auth_timeout, void (*refused)(void *ctx), void *ctx,
    ngx_log_t *log);

/* for a directive: loads the secret file (relative to the prefix) */
char *ngx_goim_rpc_set_secret_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* server side */

typedef void (*ngx_goim_rpc_handler_pt)(ngx_goim_rpc_request_t *r);

typedef struct {
    int32_t                    method;
    ngx_goim_rpc_handler_pt    handler;
} ngx_goim_rpc_handler_t;

struct ngx_goim_rpc_request_s {
    ngx_queue_t                queue;
    ngx_goim_rpc_session_t    *session;
    int32_t                    method;
    int32_t                    seq;
    ProtobufCMessage          *msg;      /* the unpacked request */
    void                      *ctx;      /* the rpc plane's (worker state) */

    /* a handler still waiting on its own calls sets these, so they can
     * be cancelled if the session closes first */
    void                     (*abort)(ngx_goim_rpc_request_t *r);
    void                      *data;
};


/*
 * Serves RPC on an accepted connection until the peer closes it or sends
 * a bad frame; on_close(c, data) then finalizes the connection's owner.
 * conf must outlive the session (a listener's configuration does).
 */
ngx_goim_rpc_session_t *ngx_goim_rpc_session_start(ngx_goim_rpc_t *rpc,
    ngx_connection_t *c, ngx_goim_rpc_handler_t *handlers,
    ngx_goim_rpc_session_conf_t *conf, void (*on_close)(void *data),
    void *data);

/*
 * The listener parameters max_frame=size, frame_timeout=time,
 * backlog=size and batch=number, for a listener directive's own parser:
 * NGX_OK taken, NGX_DECLINED not one of these, NGX_ERROR bad (logged).
 */
void ngx_goim_rpc_session_conf_init(ngx_goim_rpc_session_conf_t *conf);
ngx_int_t ngx_goim_rpc_session_conf_param(ngx_conf_t *cf, ngx_str_t *value,
    ngx_goim_rpc_session_conf_t *conf);

void *ngx_goim_rpc_session_data(ngx_goim_rpc_session_t *s);

/*
 * Handing a session to another process (a reload's hand-off).  A frozen
 * session (see session_quit) can be exported once no handshake and no
 * request is under way: NGX_OK; NGX_AGAIN: not yet, a handler has still
 * to reply; NGX_DECLINED: never (closed).  export() gives the bytes read
 * but not yet handled and the reply bytes not yet sent, which the other
 * process passes to adopt() with the connection's descriptor: that one
 * goes on as if it had read them itself, without a handshake.
 * release() ends the exported session here without a byte on the wire
 * (its on_close() runs); the socket lives on in the other process.
 */
ngx_int_t ngx_goim_rpc_session_exportable(ngx_goim_rpc_session_t *s);
void ngx_goim_rpc_session_export(ngx_goim_rpc_session_t *s, ngx_str_t *in,
    ngx_str_t *out);
void ngx_goim_rpc_session_release(ngx_goim_rpc_session_t *s);
ngx_goim_rpc_session_t *ngx_goim_rpc_session_adopt(ngx_goim_rpc_t *rpc,
    ngx_connection_t *c, ngx_goim_rpc_handler_t *handlers,
    ngx_goim_rpc_session_conf_t *conf, void (*on_close)(void *data),
    void *data, ngx_str_t *in, ngx_str_t *out, ngx_uint_t frozen);
void ngx_goim_rpc_session_resume(ngx_goim_rpc_session_t *s);
ngx_connection_t *ngx_goim_rpc_session_connection(ngx_goim_rpc_session_t *s);

/* Closes every server session of this worker (from exit_process). */
void ngx_goim_rpc_sessions_finalize(ngx_goim_rpc_t *rpc);

/* Both free r. */
void ngx_goim_rpc_reply(ngx_goim_rpc_request_t *r,
    const ProtobufCMessage *reply);
void ngx_goim_rpc_reply_error(ngx_goim_rpc_request_t *r,
    Goim__ErrorCode code, const char *message);


#pragma GCC visibility pop


#endif /* _NGX_GOIM_RPC_H_INCLUDED_ */
