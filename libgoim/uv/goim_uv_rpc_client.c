/*
 * The RPC client of the daemons (see goim_uv_rpc.h).
 *
 * A client owns at most one link (a TCP connection attempt or
 * connection) at a time.  A link that fails is detached from its client
 * and closed on its own, so a new one can start at once; it is freed when
 * libuv has finished with its handles and its name resolution.
 *
 * Calls sit in a hash by sequence number (the ones sent) and in one list
 * sorted by deadline (all of them); one timer, armed for the earliest
 * deadline, times them out.  A call that fails before it is sent (during
 * backoff) gets a deadline of "now" and a status, so its callback too runs
 * from the timer, never from inside goim_rpc_call().
 *
 * With a secret, a connected link first runs the handshake (state AUTH,
 * its timer the handshake's deadline); calls made meanwhile wait in
 * link->unsent, written right after the proof.
 *
 * About 1,000 lines as one file: links, calls and the handshake of the
 * client side share the link's state machine, which a cut would expose.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_uv_hash.h"
#include "goim_uv_log.h"
#include "goim_uv_rpc_int.h"


typedef struct goim_rpc_link_s  goim_rpc_link_t;

struct goim_rpc_client_s {
    uv_loop_t               *loop;
    char                    *addr;       /* as given */
    char                     host[256];
    int                      port;
    goim_rpc_client_opts_t   opts;
    goim_rpc_link_t         *link;
    uv_timer_t               timer;      /* the earliest deadline */
    goim_hash_t              sent;       /* calls by seq */
    goim_queue_t             calls;      /* every call, by deadline */
    size_t                   pending;
    int32_t                  seq;
    uint64_t                 backoff;    /* the next delay */
    uint64_t                 retry_at;   /* no connecting before this */
    char                     error[160]; /* why the last link failed */
    unsigned                 closed:1;
};

struct goim_rpc_call_s {
    goim_hnode_t             node;       /* in client->sent */
    goim_queue_t             queue;      /* in client->calls or a local list */
    goim_rpc_client_t       *client;
    goim_rpc_done_pt         done;
    void                    *data;
    uint64_t                 deadline;
    int32_t                  method;
    int32_t                  seq;
    int                      status;     /* preset: failed before a reply */
    unsigned                 in_sent:1;  /* in client->sent */
    unsigned                 in_calls:1; /* in client->calls (pending) */
};

enum {
    GOIM_LINK_RESOLVING = 0,
    GOIM_LINK_CONNECTING,
    GOIM_LINK_AUTH,
    GOIM_LINK_CONNECTED
};

struct goim_rpc_link_s {
    uv_tcp_t                 tcp;
    uv_timer_t               timer;      /* connect timeout */
    uv_connect_t             connect;
    uv_getaddrinfo_t         gai;
    goim_rpc_client_t       *client;     /* NULL once detached */
    goim_rbuf_t              rbuf;
    goim_queue_t             unsent;     /* frames written before connect */
    goim_auth_t              auth;
    int                      state;
    unsigned                 refs;       /* handles + a resolution */
    unsigned                 resolving:1;  /* uv_getaddrinfo() running */
};


static void goim_rpc_client_arm(goim_rpc_client_t *c);
static void goim_rpc_link_fail(goim_rpc_link_t *link, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void goim_rpc_link_read(uv_stream_t *stream, ssize_t nread,
    const uv_buf_t *buf);
static void goim_rpc_link_timeout(uv_timer_t *t);


static uint32_t
goim_rpc_call_hash(const goim_hnode_t *node)
{
    return goim_hash_u64((uint64_t)
               ((const goim_rpc_call_t *) node)->seq);
}


goim_rpc_client_t *
goim_rpc_client_create(uv_loop_t *loop, const char *addr,
    const goim_rpc_client_opts_t *opts)
{
    goim_rpc_client_t  *c;

    c = calloc(1, sizeof(goim_rpc_client_t));
    if (c == NULL) {
        return NULL;
    }

    if (goim_uv_addr_split(addr, c->host, sizeof(c->host), &c->port) != 0
        || c->host[0] == '\0')
    {
        goim_log_error("rpc: bad address \"%s\": host:port expected", addr);
        free(c);
        return NULL;
    }

    c->addr = strdup(addr);
    if (c->addr == NULL || goim_hash_init(&c->sent, 64, goim_rpc_call_hash)) {
        free(c->addr);
        free(c);
        return NULL;
    }

    if (opts) {
        c->opts = *opts;
    }

    if (c->opts.max_body == 0) {
        c->opts.max_body = GOIM_RPC_MAX_BODY_DEFAULT;
    }

    if (c->opts.connect_timeout == 0) {
        c->opts.connect_timeout = GOIM_RPC_CONNECT_TIMEOUT_DEFAULT;
    }

    if (c->opts.backoff_min == 0) {
        c->opts.backoff_min = GOIM_RPC_BACKOFF_MIN_DEFAULT;
    }

    if (c->opts.backoff_max == 0) {
        c->opts.backoff_max = GOIM_RPC_BACKOFF_MAX_DEFAULT;
    }

    if (c->opts.auth_timeout == 0) {
        c->opts.auth_timeout = GOIM_AUTH_TIMEOUT_DEFAULT;
    }

    if (c->opts.secret && c->opts.secret->len == 0) {
        c->opts.secret = NULL;
    }

    c->loop = loop;
    c->backoff = c->opts.backoff_min;
    goim_queue_init(&c->calls);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;

    return c;
}


const char *
goim_rpc_client_addr(const goim_rpc_client_t *c)
{
    return c->addr;
}


size_t
goim_rpc_client_pending(const goim_rpc_client_t *c)
{
    return c->pending;
}


int
goim_rpc_client_connected(const goim_rpc_client_t *c)
{
    return c->link && c->link->state == GOIM_LINK_CONNECTED;
}


/* ---- calls -------------------------------------------------------------- */

static void
goim_rpc_call_unlink(goim_rpc_call_t *call)
{
    goim_rpc_client_t  *c;

    c = call->client;

    if (call->in_sent) {
        goim_hash_remove(&c->sent, &call->node, goim_rpc_call_hash(
                                                    &call->node));
        call->in_sent = 0;
    }

    goim_queue_remove(&call->queue);
    call->in_calls = 0;
    c->pending--;
}


/* Runs the callback of a call already unlinked, and frees it. */
static void
goim_rpc_call_finish(goim_rpc_call_t *call, int status,
    const ProtobufCMessage *reply, const char *message)
{
    call->done(call->data, status, reply, message);
    free(call);
}


/* Fails every call that is unlinked into list (callbacks may cancel
 * calls still in it, or start new ones elsewhere). */
static void
goim_rpc_calls_fail(goim_queue_t *list, int status, const char *message)
{
    goim_queue_t     *q;
    goim_rpc_call_t  *call;

    while (!goim_queue_empty(list)) {
        q = goim_queue_head(list);
        goim_queue_remove(q);

        call = goim_queue_data(q, goim_rpc_call_t, queue);
        goim_rpc_call_finish(call, status, NULL, message);
    }
}


static void
goim_rpc_client_timer(uv_timer_t *t)
{
    uint64_t            now;
    goim_queue_t        expired, *q, *next;
    goim_rpc_client_t  *c;
    goim_rpc_call_t    *call;
    char                message[200];

    c = t->data;
    now = uv_now(c->loop);

    goim_queue_init(&expired);

    for (q = goim_queue_head(&c->calls); q != &c->calls; q = next) {
        next = goim_queue_next(q);
        call = goim_queue_data(q, goim_rpc_call_t, queue);

        if (call->deadline > now) {
            break;
        }

        goim_rpc_call_unlink(call);
        goim_queue_insert_tail(&expired, &call->queue);
    }

    goim_rpc_client_arm(c);

    while (!goim_queue_empty(&expired)) {
        q = goim_queue_head(&expired);
        goim_queue_remove(q);
        call = goim_queue_data(q, goim_rpc_call_t, queue);

        if (call->status) {
            snprintf(message, sizeof(message), "%s: %s", c->addr, c->error);
            goim_rpc_call_finish(call, call->status, NULL, message);

        } else {
            snprintf(message, sizeof(message), "%s: timed out", c->addr);
            goim_log_info("rpc: call %s to %s timed out",
                          goim_rpc_method(call->method)->name, c->addr);
            goim_rpc_call_finish(call, GOIM__ERROR_CODE__ERROR_TIMEOUT,
                                 NULL, message);
        }
    }
}


static void
goim_rpc_client_arm(goim_rpc_client_t *c)
{
    uint64_t          now;
    goim_rpc_call_t  *call;

    if (goim_queue_empty(&c->calls)) {
        uv_timer_stop(&c->timer);
        return;
    }

    call = goim_queue_data(goim_queue_head(&c->calls), goim_rpc_call_t,
                           queue);
    now = uv_now(c->loop);

    uv_timer_start(&c->timer, goim_rpc_client_timer,
                   call->deadline > now ? call->deadline - now : 0, 0);
}


/* Links call into the deadline-sorted list (from the tail: calls mostly
 * share one timeout, so this is usually one step). */
static void
goim_rpc_call_queue(goim_rpc_client_t *c, goim_rpc_call_t *call)
{
    goim_queue_t     *q;
    goim_rpc_call_t  *other;

    for (q = goim_queue_last(&c->calls); q != &c->calls; q = q->prev) {
        other = goim_queue_data(q, goim_rpc_call_t, queue);

        if (other->deadline <= call->deadline) {
            break;
        }
    }

    goim_queue_insert_after(q, &call->queue);
    call->in_calls = 1;
    c->pending++;

    if (goim_queue_head(&c->calls) == &call->queue) {
        goim_rpc_client_arm(c);
    }
}


/* ---- links -------------------------------------------------------------- */

static void
goim_rpc_link_unref(goim_rpc_link_t *link)
{
    goim_queue_t  *q;

    if (--link->refs) {
        return;
    }

    while (!goim_queue_empty(&link->unsent)) {
        q = goim_queue_head(&link->unsent);
        goim_queue_remove(q);
        free(goim_queue_data(q, goim_wbuf_t, queue));
    }

    goim_rbuf_free(&link->rbuf);
    free(link);
}


static void
goim_rpc_link_closed(uv_handle_t *h)
{
    goim_rpc_link_unref(h->data);
}


/* Detaches link from its client and closes it. */
static void
goim_rpc_link_close(goim_rpc_link_t *link)
{
    if (link->client) {
        link->client->link = NULL;
        link->client = NULL;
    }

    if (link->resolving) {
        uv_cancel((uv_req_t *) &link->gai);
    }

    uv_close((uv_handle_t *) &link->tcp, goim_rpc_link_closed);
    uv_close((uv_handle_t *) &link->timer, goim_rpc_link_closed);
}


/*
 * The link failed: close it, back off if it never connected, and fail the
 * calls sent on it.
 * Their callbacks run from the timer, at once, so none runs from inside a
 * read callback or goim_rpc_call().
 */
static void
goim_rpc_link_fail(goim_rpc_link_t *link, const char *fmt, ...)
{
    int                 connected;
    va_list             ap;
    uint64_t            now;
    goim_queue_t        failed, *q, *next;
    goim_rpc_call_t    *call;
    goim_rpc_client_t  *c;

    c = link->client;
    connected = (link->state == GOIM_LINK_CONNECTED);
    goim_rpc_link_close(link);

    if (c == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);

    now = uv_now(c->loop);

    if (connected) {
        /*
         * The peer went away after a working connection (a restart, an
         * idle close): the next call reconnects at once.  Backing off is
         * for addresses that refuse connections.
         */
        c->retry_at = 0;
        goim_log_warn("rpc: %s: %s (reconnecting on the next call)",
                      c->addr, c->error);

    } else {
        c->retry_at = now + c->backoff;
        goim_log_warn("rpc: %s: %s (next attempt in %llu ms at the earliest)",
                      c->addr, c->error, (unsigned long long) c->backoff);

        c->backoff *= 2;
        if (c->backoff > c->opts.backoff_max) {
            c->backoff = c->opts.backoff_max;
        }
    }

    goim_queue_init(&failed);

    for (q = goim_queue_head(&c->calls); q != &c->calls; q = next) {
        next = goim_queue_next(q);
        call = goim_queue_data(q, goim_rpc_call_t, queue);

        if (call->in_sent) {
            goim_hash_remove(&c->sent, &call->node,
                             goim_rpc_call_hash(&call->node));
            call->in_sent = 0;
            call->status = GOIM__ERROR_CODE__ERROR_UNAVAILABLE;
            call->deadline = now;
            goim_queue_remove(q);
            goim_queue_insert_tail(&failed, q);
        }
    }

    /* due now: to the head of the deadline list, in order */

    while (!goim_queue_empty(&failed)) {
        q = goim_queue_last(&failed);
        goim_queue_remove(q);
        goim_queue_insert_after(&c->calls, q);
    }

    goim_rpc_client_arm(c);
}


static void
goim_rpc_link_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    goim_rpc_link_t  *link;

    (void) suggested;

    link = h->data;
    goim_rbuf_alloc(&link->rbuf, link->client ? link->client->opts.max_body
                                              : GOIM_RPC_MAX_BODY_DEFAULT,
                    buf);
}


/* ---- the handshake (goim_auth.h) --------------------------------------- */

static void
goim_rpc_link_auth_start(goim_rpc_link_t *link)
{
    int                 rc;
    goim_wbuf_t        *wb;
    goim_rpc_client_t  *c;
    uint8_t             hello[GOIM_AUTH_HELLO_LEN];

    c = link->client;
    link->state = GOIM_LINK_AUTH;

    goim_auth_init(&link->auth, c->opts.secret, 1);

    if (goim_auth_hello(&link->auth, hello) != GOIM_AUTH_NEXT) {
        goim_rpc_link_fail(link, "authentication: %s",
                           goim_auth_strerror(GOIM_AUTH_ERR_RANDOM));
        return;
    }

    wb = goim_wbuf_raw(hello, sizeof(hello));
    rc = wb ? goim_wbuf_send((uv_stream_t *) &link->tcp, wb) : UV_ENOMEM;
    if (rc != 0) {
        goim_rpc_link_fail(link, "write: %s", uv_strerror(rc));
        return;
    }

    uv_timer_start(&link->timer, goim_rpc_link_timeout,
                   c->opts.auth_timeout, 0);
}


/* 0: authenticated (replies may follow); 1: wait, or the link failed */
static int
goim_rpc_link_auth(goim_rpc_link_t *link)
{
    int                 rc;
    size_t              want, outlen;
    goim_queue_t       *q;
    goim_wbuf_t        *wb;
    goim_auth_rc_t      arc;
    goim_rpc_client_t  *c;
    uint8_t             out[GOIM_AUTH_FRAME_MAX];

    c = link->client;
    want = goim_auth_expect(&link->auth);

    arc = goim_auth_input(&link->auth, link->rbuf.data + link->rbuf.start,
                          link->rbuf.end - link->rbuf.start, out, &outlen);

    if (arc == GOIM_AUTH_AGAIN) {
        return 1;
    }

    if (arc != GOIM_AUTH_DONE) {
        goim_rpc_link_fail(link, "authentication refused: %s",
                           arc < 0 ? goim_auth_strerror(arc)
                                   : "unexpected step");
        return 1;
    }

    link->rbuf.start += want;

    /* the proof, then the calls that waited for it, in order */

    wb = goim_wbuf_raw(out, outlen);
    rc = wb ? goim_wbuf_send((uv_stream_t *) &link->tcp, wb) : UV_ENOMEM;

    while (rc == 0 && !goim_queue_empty(&link->unsent)) {
        q = goim_queue_head(&link->unsent);
        goim_queue_remove(q);
        rc = goim_wbuf_send((uv_stream_t *) &link->tcp,
                            goim_queue_data(q, goim_wbuf_t, queue));
    }

    if (rc != 0) {
        goim_rpc_link_fail(link, "write: %s", uv_strerror(rc));
        return 1;
    }

    uv_timer_stop(&link->timer);

    link->state = GOIM_LINK_CONNECTED;
    c->backoff = c->opts.backoff_min;
    c->error[0] = '\0';

    goim_log_debug("rpc: connected to %s, authenticated", c->addr);

    return 0;
}


static void
goim_rpc_link_connected(uv_connect_t *req, int status)
{
    int                 rc;
    goim_rpc_link_t    *link;
    goim_rpc_client_t  *c;

    link = req->data;
    c = link->client;

    if (c == NULL || status == UV_ECANCELED) {
        return;
    }

    if (status != 0) {
        goim_rpc_link_fail(link, "connect: %s", uv_strerror(status));
        return;
    }

    uv_timer_stop(&link->timer);
    uv_tcp_nodelay(&link->tcp, 1);

    rc = uv_read_start((uv_stream_t *) &link->tcp, goim_rpc_link_alloc,
                       goim_rpc_link_read);
    if (rc != 0) {
        goim_rpc_link_fail(link, "read: %s", uv_strerror(rc));
        return;
    }

    if (c->opts.secret) {
        goim_rpc_link_auth_start(link);
        return;
    }

    link->state = GOIM_LINK_CONNECTED;
    c->backoff = c->opts.backoff_min;
    c->error[0] = '\0';

    goim_log_debug("rpc: connected to %s", c->addr);
}


static void
goim_rpc_link_connect(goim_rpc_link_t *link, const struct sockaddr *sa)
{
    int           rc;
    goim_queue_t  *q;
    goim_wbuf_t   *wb;

    link->state = GOIM_LINK_CONNECTING;
    link->connect.data = link;

    rc = uv_tcp_connect(&link->connect, &link->tcp, sa,
                        goim_rpc_link_connected);
    if (rc != 0) {
        goim_rpc_link_fail(link, "connect: %s", uv_strerror(rc));
        return;
    }

    /* libuv holds writes made while connecting until it is done; with a
     * secret they wait for the handshake instead */

    while (!link->client->opts.secret && !goim_queue_empty(&link->unsent)) {
        q = goim_queue_head(&link->unsent);
        goim_queue_remove(q);
        wb = goim_queue_data(q, goim_wbuf_t, queue);

        rc = goim_wbuf_send((uv_stream_t *) &link->tcp, wb);
        if (rc != 0) {
            goim_rpc_link_fail(link, "write: %s", uv_strerror(rc));
            return;
        }
    }
}


static void
goim_rpc_link_resolved(uv_getaddrinfo_t *req, int status,
    struct addrinfo *res)
{
    goim_rpc_link_t  *link;

    link = req->data;
    link->resolving = 0;

    if (link->client && status == 0) {
        goim_rpc_link_connect(link, res->ai_addr);

    } else if (link->client) {
        goim_rpc_link_fail(link, "resolve %s: %s", link->client->host,
                           uv_strerror(status));
    }

    uv_freeaddrinfo(res);
    goim_rpc_link_unref(link);
}


static void
goim_rpc_link_timeout(uv_timer_t *t)
{
    goim_rpc_link_t  *link;

    link = t->data;

    if (link->state == GOIM_LINK_AUTH) {
        goim_rpc_link_fail(link, "authentication: no answer within %llu ms",
                           (unsigned long long)
                           link->client->opts.auth_timeout);
        return;
    }

    goim_rpc_link_fail(link, "connect: timed out");
}


static goim_rpc_link_t *
goim_rpc_link_open(goim_rpc_client_t *c)
{
    int                  rc;
    goim_rpc_link_t     *link;
    struct addrinfo      hints;
    struct sockaddr_in6  sin6;
    struct sockaddr_in   sin;
    char                 port[8];

    link = calloc(1, sizeof(goim_rpc_link_t));
    if (link == NULL) {
        return NULL;
    }

    goim_queue_init(&link->unsent);
    uv_tcp_init(c->loop, &link->tcp);
    uv_timer_init(c->loop, &link->timer);
    link->tcp.data = link;
    link->timer.data = link;
    link->refs = 2;
    link->client = c;
    link->state = GOIM_LINK_RESOLVING;
    c->link = link;

    uv_timer_start(&link->timer, goim_rpc_link_timeout,
                   c->opts.connect_timeout, 0);

    goim_log_debug("rpc: connecting to %s", c->addr);

    if (uv_ip4_addr(c->host, c->port, &sin) == 0) {
        goim_rpc_link_connect(link, (struct sockaddr *) &sin);

    } else if (uv_ip6_addr(c->host, c->port, &sin6) == 0) {
        goim_rpc_link_connect(link, (struct sockaddr *) &sin6);

    } else {
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;

        link->gai.data = link;
        link->refs++;

        snprintf(port, sizeof(port), "%d", c->port);

        rc = uv_getaddrinfo(c->loop, &link->gai, goim_rpc_link_resolved,
                            c->host, port, &hints);
        if (rc == 0) {
            link->resolving = 1;

        } else {
            link->refs--;
            goim_rpc_link_fail(link, "resolve %s: %s", c->host,
                               uv_strerror(rc));
        }
    }

    return link;
}


/* ---- replies ------------------------------------------------------------ */

static goim_rpc_call_t *
goim_rpc_client_find(goim_rpc_client_t *c, int32_t seq)
{
    goim_hnode_t     *node;
    goim_rpc_call_t  *call;

    for (node = goim_hash_chain(&c->sent, goim_hash_u64((uint64_t) seq));
         node;
         node = node->next)
    {
        call = (goim_rpc_call_t *) node;

        if (call->seq == seq) {
            return call;
        }
    }

    return NULL;
}


static void
goim_rpc_link_frame(goim_rpc_link_t *link, goim_packet_t *pkt)
{
    int32_t             op, method;
    goim_rpc_call_t    *call;
    ProtobufCMessage   *msg;
    Goim__RpcError     *err;
    goim_rpc_client_t  *c;
    char                message[300];

    c = link->client;
    op = pkt->header.op;
    method = goim_rpc_op_method(op);

    if (pkt->header.ver != GOIM_RPC_VERSION || !goim_rpc_is_reply(op)) {
        goim_rpc_link_fail(link, "not a reply frame (version %d, op %d)",
                           (int) pkt->header.ver, (int) op);
        return;
    }

    call = goim_rpc_client_find(c, pkt->header.seq);

    if (call == NULL || call->method != method) {
        goim_log_debug("rpc: %s: a reply to seq %d nobody waits for",
                       c->addr, (int) pkt->header.seq);
        return;
    }

    goim_rpc_call_unlink(call);

    if (goim_queue_head(&c->calls) == &c->calls) {
        uv_timer_stop(&c->timer);
    }

    if (op & GOIM_RPC_ERROR) {
        err = goim_rpc_unpack_error(NULL, pkt->body, pkt->body_len);

        if (err == NULL) {
            snprintf(message, sizeof(message), "%s: malformed error reply",
                     c->addr);
            goim_rpc_call_finish(call, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                 NULL, message);
            return;
        }

        snprintf(message, sizeof(message), "%s: %s", c->addr, err->message);
        goim_rpc_call_finish(call, err->code ? (int) err->code
                                             : GOIM__ERROR_CODE__ERROR_INTERNAL,
                             NULL, message);
        protobuf_c_message_free_unpacked(&err->base, NULL);
        return;
    }

    msg = goim_rpc_unpack(method, 1, NULL, pkt->body, pkt->body_len);
    if (msg == NULL) {
        snprintf(message, sizeof(message), "%s: malformed %s reply",
                 c->addr, goim_rpc_method(method)->name);
        goim_rpc_call_finish(call, GOIM__ERROR_CODE__ERROR_INTERNAL, NULL,
                             message);
        return;
    }

    goim_rpc_call_finish(call, 0, msg, NULL);
    protobuf_c_message_free_unpacked(msg, NULL);
}


static void
goim_rpc_link_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    goim_rc_t         rc;
    goim_packet_t     pkt;
    goim_rpc_link_t  *link;

    (void) buf;

    link = stream->data;

    if (link->client == NULL) {
        return;
    }

    if (nread < 0) {
        goim_rpc_link_fail(link, "%s%s", nread == UV_EOF
                                         ? "connection closed by the peer"
                                         : uv_strerror((int) nread),
                           link->state == GOIM_LINK_AUTH
                           ? " during authentication (no RPC secret, or "
                             "another one, on its side?)" : "");
        return;
    }

    link->rbuf.end += (size_t) nread;

    if (link->state == GOIM_LINK_AUTH && goim_rpc_link_auth(link) != 0) {
        return;
    }

    /* a callback may close the client, which detaches the link */

    while (link->client) {
        rc = goim_rbuf_next(&link->rbuf, link->client->opts.max_body, &pkt);

        if (rc == GOIM_AGAIN) {
            break;
        }

        if (rc != GOIM_OK) {
            goim_rpc_link_fail(link, "bad reply frame: %s",
                               goim_strerror(rc));
            return;
        }

        goim_rpc_link_frame(link, &pkt);
    }
}


/* ---- the API ------------------------------------------------------------ */

goim_rpc_call_t *
goim_rpc_call(goim_rpc_client_t *c, int32_t method,
    const ProtobufCMessage *req, uint64_t timeout, goim_rpc_done_pt done,
    void *data)
{
    int               rc;
    goim_wbuf_t      *wb;
    goim_rpc_call_t  *call;
    goim_rpc_link_t  *link;

    if (c->closed || goim_rpc_method(method) == NULL) {
        return NULL;
    }

    call = calloc(1, sizeof(goim_rpc_call_t));
    if (call == NULL) {
        return NULL;
    }

    call->client = c;
    call->done = done;
    call->data = data;
    call->method = method;
    call->deadline = uv_now(c->loop) + timeout;
    goim_queue_init(&call->queue);

    link = c->link;

    if (link == NULL) {
        if (uv_now(c->loop) < c->retry_at) {
            /* backing off: fail it from the timer, at once */
            call->status = GOIM__ERROR_CODE__ERROR_UNAVAILABLE;
            call->deadline = uv_now(c->loop);
            goim_rpc_call_queue(c, call);
            return call;
        }

        link = goim_rpc_link_open(c);
        if (link == NULL) {
            free(call);
            return NULL;
        }

        if (c->link == NULL) {
            /* failed at once (and logged): fail it from the timer */
            call->status = GOIM__ERROR_CODE__ERROR_UNAVAILABLE;
            call->deadline = uv_now(c->loop);
            goim_rpc_call_queue(c, call);
            return call;
        }
    }

    do {
        c->seq = c->seq == INT32_MAX ? 1 : c->seq + 1;
    } while (goim_rpc_client_find(c, c->seq));

    call->seq = c->seq;

    wb = goim_wbuf_frame(method, call->seq, req);
    if (wb == NULL) {
        free(call);
        return NULL;
    }

    goim_hash_insert(&c->sent, &call->node, goim_rpc_call_hash(&call->node));
    call->in_sent = 1;
    goim_rpc_call_queue(c, call);

    if (link->state == GOIM_LINK_RESOLVING
        || (c->opts.secret && link->state != GOIM_LINK_CONNECTED))
    {
        goim_queue_insert_tail(&link->unsent, &wb->queue);
        return call;
    }

    rc = goim_wbuf_send((uv_stream_t *) &link->tcp, wb);
    if (rc != 0) {
        /* fails this call with the others sent, from the timer */
        goim_rpc_link_fail(link, "write: %s", uv_strerror(rc));
    }

    return call;
}


void
goim_rpc_cancel(goim_rpc_call_t *call)
{
    if (call->in_calls) {
        goim_rpc_call_unlink(call);

    } else {
        /* in a list of calls being failed or timed out right now */
        goim_queue_remove(&call->queue);
    }

    free(call);
}


static void
goim_rpc_client_closed(uv_handle_t *h)
{
    goim_rpc_client_t  *c;

    c = h->data;

    goim_hash_free(&c->sent);
    free(c->addr);
    free(c);
}


void
goim_rpc_client_close(goim_rpc_client_t *c)
{
    goim_queue_t      failed, *q;
    goim_rpc_call_t  *call;
    char              message[300];

    if (c->closed) {
        return;
    }

    c->closed = 1;

    if (c->link) {
        goim_rpc_link_close(c->link);
    }

    goim_queue_init(&failed);

    while (!goim_queue_empty(&c->calls)) {
        q = goim_queue_head(&c->calls);
        call = goim_queue_data(q, goim_rpc_call_t, queue);
        goim_rpc_call_unlink(call);
        call->status = 0;
        goim_queue_insert_tail(&failed, &call->queue);
    }

    uv_close((uv_handle_t *) &c->timer, goim_rpc_client_closed);

    snprintf(message, sizeof(message), "%s: client closed", c->addr);
    goim_rpc_calls_fail(&failed, GOIM__ERROR_CODE__ERROR_UNAVAILABLE,
                        message);
}
