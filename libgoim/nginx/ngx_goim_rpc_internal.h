
/*
 * Copyright (C) ngx_goim authors
 */


/*
 * What the RPC layer's files share and its users never see (comet and
 * logic include ngx_goim_rpc.h only):
 *
 *   ngx_goim_rpc.c          the channel: buffers, frame reader, output
 *   ngx_goim_rpc_peer.c     the client side: peers, calls, local calls
 *   ngx_goim_rpc_session.c  the server side: sessions, requests, replies
 *   ngx_goim_rpc_auth.c     the handshake (goim_auth.h) of both sides
 *
 * peer and session call the channel and the handshake, never the other
 * way: the handshake reports back through the hooks its caller gave.
 */


#ifndef _NGX_GOIM_RPC_INTERNAL_H_INCLUDED_
#define _NGX_GOIM_RPC_INTERNAL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_goim_rpc.h"


#pragma GCC visibility push(hidden)


/* the byte stream shared by both sides: one connection, two buffers */

typedef struct {
    u_char                    *data;
    size_t                     pos;
    size_t                     len;
    size_t                     cap;
} ngx_goim_rpc_buf_t;

typedef ngx_int_t (*ngx_goim_rpc_frame_pt)(void *owner, goim_packet_t *pkt);


/* reason: what a peer's calls fail with; NULL for a session */
typedef void (*ngx_goim_rpc_auth_failed_pt)(void *owner, const char *reason);
typedef void (*ngx_goim_rpc_auth_ready_pt)(void *owner);


/*
 * A handshake under way (goim_auth.h) on a peer's or a session's
 * connection.  Its frames are read exactly, never past their end, so the
 * RPC bytes that follow stay in the socket for the channel.
 */
typedef struct {
    goim_auth_t                auth;
    u_char                     in[GOIM_AUTH_FRAME_MAX];
    size_t                     in_len;
    u_char                     out[GOIM_AUTH_FRAME_MAX];
    size_t                     out_pos;
    size_t                     out_len;
    const char                *error;

    /* set by the side that started it: the handshake calls nothing above */
    ngx_goim_rpc_auth_failed_pt  failed;
    ngx_goim_rpc_auth_ready_pt   ready;
} ngx_goim_rpc_auth_t;

typedef struct {
    ngx_connection_t          *connection;
    ngx_goim_rpc_buf_t         in;
    ngx_goim_rpc_buf_t         out;
    size_t                     max_frame;
    ngx_log_t                 *log;

    /* server sessions only; 0: no bound */
    ngx_msec_t                 frame_timeout;
    size_t                     backlog;
    ngx_uint_t                 batch;
    unsigned                   frame_done:1;  /* since the timer was set */
    unsigned                   bad:1;         /* closing for bad input */
} ngx_goim_rpc_chan_t;


struct ngx_goim_rpc_peer_s {
    ngx_goim_rpc_chan_t        chan;
    ngx_goim_rpc_t            *rpc;
    ngx_goim_rpc_upstream_t   *upstream;
    ngx_uint_t                 next_addr;
    ngx_msec_t                 connect_timeout;
    ngx_peer_connection_t      pc;
    unsigned                   connected:1;
    unsigned                   down:1;       /* calls fail until retry_at */

    ngx_uint_t                 timeouts;     /* in a row, on this link */
    ngx_msec_t                 retry_at;

    int32_t                    seq;
    ngx_rbtree_t               pending;
    ngx_rbtree_node_t          sentinel;

    ngx_event_t                fail_event;   /* reports failures later */
    ngx_queue_t                failed;       /* calls failed on send */

    ngx_goim_rpc_auth_t       *auth;         /* handshake under way */
};


struct ngx_goim_rpc_session_s {
    ngx_goim_rpc_chan_t        chan;
    ngx_goim_rpc_t            *rpc;
    ngx_queue_t                queue;        /* in rpc->sessions */
    ngx_goim_rpc_handler_t    *handlers;
    void                     (*bad_input)(void *ctx);
    ngx_queue_t                requests;
    void                     (*on_close)(void *data);
    void                      *data;
    ngx_goim_rpc_auth_t       *auth;         /* handshake under way */
    unsigned                   closed:1;
    unsigned                   failed:1;
    unsigned                   paused:1;     /* replies over the backlog */
    unsigned                   frozen:1;     /* being handed off: reads
                                                nothing more */
};


typedef struct {
    ngx_goim_rpc_call_t        call;
    ngx_queue_t                queue;        /* in peer->failed */
    ngx_int_t                  status;
    const char                *message;
} ngx_goim_rpc_call_ext_t;



/* the channel (ngx_goim_rpc.c) */

ngx_int_t ngx_goim_rpc_buf_reserve(ngx_goim_rpc_buf_t *b, size_t n,
    ngx_log_t *log);
void ngx_goim_rpc_buf_free(ngx_goim_rpc_buf_t *b);
ngx_int_t ngx_goim_rpc_chan_read(ngx_goim_rpc_chan_t *ch,
    ngx_goim_rpc_frame_pt frame, void *owner);
ngx_int_t ngx_goim_rpc_chan_flush(ngx_goim_rpc_chan_t *ch);
u_char *ngx_goim_rpc_chan_frame(ngx_goim_rpc_chan_t *ch, size_t size);


/*
 * The handshake (ngx_goim_rpc_auth.c) on a peer's connection once it is
 * connected, or on a session's once accepted.  It ends in one call of
 * failed(owner, reason), where the owner closes the connection and frees
 * peer->auth or s->auth, or of ready(owner), that state freed and its
 * timer gone: ready() sets the channel's handlers.  NGX_ERROR from the
 * session's: out of memory, no hook ran.
 */
void ngx_goim_rpc_auth_peer_start(ngx_goim_rpc_peer_t *peer,
    ngx_goim_rpc_auth_failed_pt failed, ngx_goim_rpc_auth_ready_pt ready);
ngx_int_t ngx_goim_rpc_auth_session_start(ngx_goim_rpc_session_t *s,
    ngx_goim_rpc_auth_failed_pt failed, ngx_goim_rpc_auth_ready_pt ready);


#pragma GCC visibility pop


#endif /* _NGX_GOIM_RPC_INTERNAL_H_INCLUDED_ */
