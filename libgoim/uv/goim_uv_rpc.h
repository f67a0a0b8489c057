/*
 * The RPC channel of the daemons (goim-router, goim-job) over libuv: the
 * frames of goim_rpc.h on TCP, both directions.
 *
 * Server: listens on host:port, reads frames from every accepted
 * connection, unpacks each request and hands it to the handler registered
 * for its method.  A handler answers with goim_rpc_reply() or
 * goim_rpc_reply_error(), at once or later (after calls of its own): each
 * request gets exactly one of the two, which frees it.  If the connection
 * closed in between, the request is "detached" (r->conn == NULL), its
 * abort hook runs if set, and the late reply is dropped quietly.
 *
 * Bad input (a bad header, an oversize frame, a reply sent to a server, a
 * method id no goim peer knows, a malformed protobuf body, a partial frame
 * held longer than frame_timeout) logs one line and closes that
 * connection only.  A known method this server does not serve gets an
 * RpcError NOT_FOUND reply: the stream is still in step.
 *
 * With a secret (opts.secret) both ends run goim_auth.h's handshake when
 * the connection opens: the server refuses (logs, counts, closes) a peer
 * that sends anything else, proves the wrong secret or stays silent past
 * auth_timeout; the client holds its calls until the server has proved
 * the secret, and fails the link (with backoff) when it cannot.
 *
 * Client: one TCP connection to one host:port, opened on the first call,
 * calls multiplexed on it by sequence number, each with its own deadline.
 * The done callback runs exactly once per call (never from inside
 * goim_rpc_call itself), unless the call is cancelled first.  When the
 * connection drops, every call on it fails with ERROR_UNAVAILABLE; the
 * next call reconnects, after an exponential backoff during which calls
 * fail at once (also with ERROR_UNAVAILABLE).
 */

#ifndef GOIM_UV_RPC_H
#define GOIM_UV_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "goim_auth.h"
#include "goim_rpc.h"
#include "goim_uv_queue.h"

#pragma GCC visibility push(hidden)

typedef struct goim_rpc_server_s  goim_rpc_server_t;
typedef struct goim_rpc_conn_s    goim_rpc_conn_t;
typedef struct goim_rpc_req_s     goim_rpc_req_t;
typedef struct goim_rpc_client_s  goim_rpc_client_t;
typedef struct goim_rpc_call_s    goim_rpc_call_t;


#define GOIM_RPC_FRAME_TIMEOUT_DEFAULT    30000   /* ms */
#define GOIM_RPC_CONNECT_TIMEOUT_DEFAULT  3000    /* ms */
#define GOIM_RPC_BACKOFF_MIN_DEFAULT      100     /* ms */
#define GOIM_RPC_BACKOFF_MAX_DEFAULT      3000    /* ms */


/* ---- addresses ---------------------------------------------------------- */

/*
 * Splits "host:port", "[v6addr]:port" or ":port" (any address).  host
 * gets at most hostlen - 1 bytes; returns 0, or -1 for a malformed text
 * or a port outside 1..65535.
 */
int goim_uv_addr_split(const char *text, char *host, size_t hostlen,
    int *port);

/* Resolves text to a socket address, blocking (start-up and tools only).
 * Returns 0 or a libuv error. */
int goim_uv_addr_resolve(const char *text, struct sockaddr_storage *ss);


/* ---- server ------------------------------------------------------------- */

typedef void (*goim_rpc_handler_pt)(goim_rpc_req_t *r);

typedef struct {
    int32_t              method;         /* a Goim__Method */
    goim_rpc_handler_pt  handler;
} goim_rpc_handler_t;                    /* a table ends with { 0, NULL } */

struct goim_rpc_req_s {
    goim_queue_t         queue;          /* in its connection's list */
    goim_rpc_conn_t     *conn;           /* NULL once detached */
    int32_t              method;
    int32_t              seq;
    ProtobufCMessage    *msg;            /* the request: freed with r; a
                                            handler keeping it sets NULL
                                            (it was unpacked with the
                                            default allocator) */

    /* optional: runs when the connection closes before the reply; r stays
     * valid (detached) until the handler replies */
    void               (*abort)(goim_rpc_req_t *r);
    void                *data;           /* the handler's */
};

typedef struct {
    size_t               max_body;       /* 0: GOIM_RPC_MAX_BODY_DEFAULT */
    uint64_t             frame_timeout;  /* ms; 0: the default */
    size_t               max_write_queue;  /* bytes; 0: 2 * max_body */
    const goim_auth_secret_t  *secret;   /* NULL: no handshake */
    uint64_t             auth_timeout;   /* ms; 0: the default */
} goim_rpc_server_opts_t;

typedef struct {
    uint64_t             accepted;       /* connections */
    uint64_t             active;         /* open connections now */
    uint64_t             requests;
    uint64_t             replies;
    uint64_t             error_replies;
    uint64_t             bad_input;      /* connections closed for it */
    uint64_t             timeouts;       /* slow partial frames */
    uint64_t             auth_refused;   /* failed the handshake */
} goim_rpc_server_stats_t;

goim_rpc_server_t *goim_rpc_server_create(uv_loop_t *loop,
    const goim_rpc_handler_t *handlers, const goim_rpc_server_opts_t *opts);

/* Binds and listens; returns 0 or a libuv error (logged). */
int goim_rpc_server_listen(goim_rpc_server_t *s, const char *addr);

/* New limits for connections accepted from now on (SIGHUP). */
void goim_rpc_server_set_opts(goim_rpc_server_t *s,
    const goim_rpc_server_opts_t *opts);

const goim_rpc_server_stats_t *goim_rpc_server_stats(goim_rpc_server_t *s);

/*
 * Stops listening and closes every connection (detaching their pending
 * requests); the server is freed once libuv has closed its handles.
 */
void goim_rpc_server_close(goim_rpc_server_t *s);

/* Both free r (and r->msg). */
void goim_rpc_reply(goim_rpc_req_t *r, const ProtobufCMessage *reply);
void goim_rpc_reply_error(goim_rpc_req_t *r, Goim__ErrorCode code,
    const char *message);

/* "ip:port" of the peer that sent r ("-" once detached). */
const char *goim_rpc_req_peer(const goim_rpc_req_t *r);


/* ---- client ------------------------------------------------------------- */

/*
 * status: 0, or a Goim__ErrorCode (the callee's RpcError code, or
 * ERROR_TIMEOUT, ERROR_UNAVAILABLE, ERROR_INTERNAL for a reply that could
 * not be unpacked).  reply: the unpacked reply when status is 0, freed
 * after the callback returns.  message: why, when status != 0.
 */
typedef void (*goim_rpc_done_pt)(void *data, int status,
    const ProtobufCMessage *reply, const char *message);

typedef struct {
    size_t               max_body;       /* of replies; 0: the default */
    uint64_t             connect_timeout;  /* ms; 0: the default */
    uint64_t             backoff_min;    /* ms; 0: the default */
    uint64_t             backoff_max;    /* ms; 0: the default */
    const goim_auth_secret_t  *secret;   /* NULL: no handshake */
    uint64_t             auth_timeout;   /* ms; 0: the default */
} goim_rpc_client_opts_t;

/* NULL when addr is malformed or memory ran out.  Connects lazily. */
goim_rpc_client_t *goim_rpc_client_create(uv_loop_t *loop, const char *addr,
    const goim_rpc_client_opts_t *opts);

/*
 * Sends req (NULL: an empty body) as method, expecting the method's reply
 * within timeout ms.  Returns NULL only when memory ran out or the client
 * is closed: then done() will not run.
 */
goim_rpc_call_t *goim_rpc_call(goim_rpc_client_t *c, int32_t method,
    const ProtobufCMessage *req, uint64_t timeout,
    goim_rpc_done_pt done, void *data);

/* Forgets a call whose done() has not run yet; it never will. */
void goim_rpc_cancel(goim_rpc_call_t *call);

const char *goim_rpc_client_addr(const goim_rpc_client_t *c);

/* Calls waiting for their reply. */
size_t goim_rpc_client_pending(const goim_rpc_client_t *c);

/* 1 while a connection is established. */
int goim_rpc_client_connected(const goim_rpc_client_t *c);

/*
 * Fails every pending call with ERROR_UNAVAILABLE (their callbacks run
 * from inside this function), closes the connection, and frees the client
 * once libuv has closed its handles.
 */
void goim_rpc_client_close(goim_rpc_client_t *c);

#pragma GCC visibility pop

#endif /* GOIM_UV_RPC_H */
