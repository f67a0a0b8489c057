/*
 * The RPC server of the daemons (see goim_uv_rpc.h): a listener, its
 * accepted connections, and the requests in flight on each.
 *
 * Memory: a connection is freed when libuv has closed both its handles
 * (the socket and the partial-frame timer); the server when its listener
 * and every connection are gone.  Requests outlive their connection when
 * a handler still holds them: they are detached (conn = NULL) and freed
 * by the handler's reply.
 *
 * With a secret, a connection starts in the handshake (conn->auth set):
 * its bytes go to goim_auth_input() until it is over, its timer is the
 * handshake's deadline, and no request is read before it succeeds.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_uv_log.h"
#include "goim_uv_rpc_int.h"


struct goim_rpc_server_s {
    uv_loop_t                 *loop;
    uv_tcp_t                   listener;
    const goim_rpc_handler_t  *handlers;
    goim_rpc_server_opts_t     opts;
    goim_rpc_server_stats_t    stats;
    goim_queue_t               conns;
    unsigned                   refs;     /* listener + connections */
    unsigned                   closed:1;
    unsigned                   listening:1;
};

struct goim_rpc_conn_s {
    uv_tcp_t                   tcp;
    uv_timer_t                 timer;    /* partial-frame deadline */
    goim_queue_t               queue;    /* in server->conns */
    goim_queue_t               reqs;     /* requests not yet answered */
    goim_rpc_server_t         *server;
    goim_rbuf_t                rbuf;
    size_t                     max_body;
    uint64_t                   frame_timeout;
    size_t                     max_write_queue;
    goim_queue_t               batch;    /* replies made while reading */
    size_t                     batch_len;
    size_t                     batch_n;
    goim_auth_t               *auth;     /* handshake under way */
    uint64_t                   auth_timeout;
    unsigned                   refs;     /* open handles */
    unsigned                   reading:1;
    unsigned                   closing:1;
    char                       peer[64];
};


static void goim_rpc_server_unref(goim_rpc_server_t *s);
static void goim_rpc_conn_send(goim_rpc_conn_t *conn, goim_wbuf_t *wb);
static void goim_rpc_conn_flush(goim_rpc_conn_t *conn);


static void
goim_rpc_server_opts_fill(goim_rpc_server_opts_t *dst,
    const goim_rpc_server_opts_t *src)
{
    if (src) {
        *dst = *src;

    } else {
        memset(dst, 0, sizeof(*dst));
    }

    if (dst->max_body == 0) {
        dst->max_body = GOIM_RPC_MAX_BODY_DEFAULT;
    }

    if (dst->frame_timeout == 0) {
        dst->frame_timeout = GOIM_RPC_FRAME_TIMEOUT_DEFAULT;
    }

    if (dst->max_write_queue == 0) {
        dst->max_write_queue = 2 * dst->max_body + GOIM_RBUF_CHUNK;
    }

    if (dst->auth_timeout == 0) {
        dst->auth_timeout = GOIM_AUTH_TIMEOUT_DEFAULT;
    }

    if (dst->secret && dst->secret->len == 0) {
        dst->secret = NULL;
    }
}


goim_rpc_server_t *
goim_rpc_server_create(uv_loop_t *loop, const goim_rpc_handler_t *handlers,
    const goim_rpc_server_opts_t *opts)
{
    goim_rpc_server_t  *s;

    s = calloc(1, sizeof(goim_rpc_server_t));
    if (s == NULL) {
        return NULL;
    }

    s->loop = loop;
    s->handlers = handlers;
    goim_rpc_server_opts_fill(&s->opts, opts);
    goim_queue_init(&s->conns);

    if (uv_tcp_init(loop, &s->listener) != 0) {
        free(s);
        return NULL;
    }

    s->listener.data = s;
    s->refs = 1;

    return s;
}


void
goim_rpc_server_set_opts(goim_rpc_server_t *s,
    const goim_rpc_server_opts_t *opts)
{
    goim_rpc_server_opts_fill(&s->opts, opts);
}


const goim_rpc_server_stats_t *
goim_rpc_server_stats(goim_rpc_server_t *s)
{
    return &s->stats;
}


/* ---- connections -------------------------------------------------------- */

static void
goim_rpc_conn_closed(uv_handle_t *h)
{
    goim_rpc_conn_t    *conn;
    goim_rpc_server_t  *s;

    conn = h->data;

    if (--conn->refs) {
        return;
    }

    s = conn->server;

    goim_rbuf_free(&conn->rbuf);
    free(conn->auth);
    free(conn);

    goim_rpc_server_unref(s);
}


static void
goim_rpc_conn_close(goim_rpc_conn_t *conn)
{
    goim_queue_t    *q;
    goim_rpc_req_t  *r;

    if (conn->closing) {
        return;
    }

    /* the replies made before the reason to close still go out */
    if (conn->batch_n) {
        conn->reading = 0;
        goim_rpc_conn_flush(conn);

        if (conn->closing) {
            return;
        }
    }

    conn->closing = 1;
    conn->server->stats.active--;
    goim_queue_remove(&conn->queue);

    /* detach the requests still being worked on: their replies go nowhere */

    while (!goim_queue_empty(&conn->reqs)) {
        q = goim_queue_head(&conn->reqs);
        goim_queue_remove(q);

        r = goim_queue_data(q, goim_rpc_req_t, queue);
        r->conn = NULL;

        if (r->abort) {
            r->abort(r);
        }
    }

    uv_close((uv_handle_t *) &conn->timer, goim_rpc_conn_closed);
    uv_close((uv_handle_t *) &conn->tcp, goim_rpc_conn_closed);
}


static void
goim_rpc_conn_bad(goim_rpc_conn_t *conn, const char *what, int32_t op)
{
    goim_log_warn("rpc: closing %s: %s (op %d)", conn->peer, what, (int) op);

    conn->server->stats.bad_input++;
    goim_rpc_conn_close(conn);
}


static void
goim_rpc_conn_auth_refuse(goim_rpc_conn_t *conn, const char *why)
{
    goim_log_warn("rpc: refusing %s: authentication failed: %s", conn->peer,
                  why);

    conn->server->stats.auth_refused++;
    goim_rpc_conn_close(conn);
}


static void
goim_rpc_conn_auth_timeout(uv_timer_t *t)
{
    goim_rpc_conn_t  *conn;
    char              why[64];

    conn = t->data;

    snprintf(why, sizeof(why), "no handshake within %llu ms",
             (unsigned long long) conn->auth_timeout);
    goim_rpc_conn_auth_refuse(conn, why);
}


/*
 * Feeds what was read to the handshake.  0: it is over, requests may
 * follow in the buffer; 1: waiting for more, or the connection closed.
 */
static int
goim_rpc_conn_auth(goim_rpc_conn_t *conn)
{
    int             rc;
    size_t          want, outlen;
    goim_wbuf_t    *wb;
    goim_auth_rc_t  arc;
    uint8_t         out[GOIM_AUTH_FRAME_MAX];

    while (conn->auth) {
        want = goim_auth_expect(conn->auth);

        arc = goim_auth_input(conn->auth, conn->rbuf.data + conn->rbuf.start,
                              conn->rbuf.end - conn->rbuf.start, out,
                              &outlen);

        if (arc == GOIM_AUTH_AGAIN) {
            return 1;
        }

        if (arc < 0) {
            goim_rpc_conn_auth_refuse(conn, goim_auth_strerror(arc));
            return 1;
        }

        conn->rbuf.start += want;

        if (outlen) {
            wb = goim_wbuf_raw(out, outlen);
            rc = wb ? goim_wbuf_send((uv_stream_t *) &conn->tcp, wb)
                    : UV_ENOMEM;

            if (rc != 0) {
                goim_log_info("rpc: closing %s: write: %s", conn->peer,
                              uv_strerror(rc));
                goim_rpc_conn_close(conn);
                return 1;
            }
        }

        if (arc == GOIM_AUTH_DONE) {
            free(conn->auth);
            conn->auth = NULL;
            uv_timer_stop(&conn->timer);

            goim_log_debug("rpc: %s authenticated", conn->peer);
        }
    }

    return 0;
}


static void
goim_rpc_conn_timeout(uv_timer_t *t)
{
    goim_rpc_conn_t  *conn;

    conn = t->data;

    goim_log_warn("rpc: closing %s: a partial frame waited over %llu ms",
                  conn->peer, (unsigned long long) conn->frame_timeout);

    conn->server->stats.timeouts++;
    goim_rpc_conn_close(conn);
}


static void
goim_rpc_conn_send(goim_rpc_conn_t *conn, goim_wbuf_t *wb)
{
    int  rc;

    if (wb == NULL) {
        goim_log_error("rpc: out of memory replying to %s", conn->peer);
        goim_rpc_conn_close(conn);
        return;
    }

    if (conn->reading) {
        /* one write for all the replies of one read: see conn_flush */
        goim_queue_insert_tail(&conn->batch, &wb->queue);
        conn->batch_len += wb->len;
        conn->batch_n++;
        return;
    }

    rc = goim_wbuf_send((uv_stream_t *) &conn->tcp, wb);
    if (rc != 0) {
        goim_log_info("rpc: closing %s: write: %s", conn->peer,
                      uv_strerror(rc));
        goim_rpc_conn_close(conn);
        return;
    }

    if (uv_stream_get_write_queue_size((uv_stream_t *) &conn->tcp)
        > conn->max_write_queue)
    {
        goim_log_warn("rpc: closing %s: it does not read its replies "
                      "(%zu bytes queued)", conn->peer,
                      uv_stream_get_write_queue_size(
                          (uv_stream_t *) &conn->tcp));
        conn->server->stats.bad_input++;
        goim_rpc_conn_close(conn);
    }
}


/*
 * Sends the replies made while one read was parsed: one write (a syscall
 * a frame was most of a small request's cost), the frames copied into
 * one buffer.
 */
static void
goim_rpc_conn_flush(goim_rpc_conn_t *conn)
{
    uint8_t       *p;
    goim_queue_t  *q;
    goim_wbuf_t   *wb, *all;

    if (conn->batch_n == 0) {
        return;
    }

    if (conn->batch_n == 1) {
        q = goim_queue_head(&conn->batch);
        goim_queue_remove(q);
        conn->batch_n = 0;
        conn->batch_len = 0;

        goim_rpc_conn_send(conn, goim_queue_data(q, goim_wbuf_t, queue));
        return;
    }

    all = malloc(sizeof(goim_wbuf_t) + conn->batch_len);
    p = all ? all->data : NULL;

    while (!goim_queue_empty(&conn->batch)) {
        q = goim_queue_head(&conn->batch);
        goim_queue_remove(q);
        wb = goim_queue_data(q, goim_wbuf_t, queue);

        if (p) {
            memcpy(p, wb->data, wb->len);
            p += wb->len;
        }

        free(wb);
    }

    if (all) {
        goim_queue_init(&all->queue);
        all->len = conn->batch_len;
    }

    conn->batch_n = 0;
    conn->batch_len = 0;

    goim_rpc_conn_send(conn, all);
}


static goim_rpc_handler_pt
goim_rpc_server_handler(goim_rpc_server_t *s, int32_t method)
{
    const goim_rpc_handler_t  *h;

    for (h = s->handlers; h->handler; h++) {
        if (h->method == method) {
            return h->handler;
        }
    }

    return NULL;
}


static void
goim_rpc_conn_frame(goim_rpc_conn_t *conn, goim_packet_t *pkt)
{
    int32_t                   op;
    goim_rpc_req_t           *r;
    ProtobufCMessage         *msg;
    goim_rpc_handler_pt       handler;
    goim_rpc_server_t        *s;
    const goim_rpc_method_t  *m;
    char                      text[128];

    s = conn->server;
    op = pkt->header.op;

    if (pkt->header.ver != GOIM_RPC_VERSION) {
        goim_rpc_conn_bad(conn, "bad frame version", op);
        return;
    }

    if (goim_rpc_is_reply(op)) {
        goim_rpc_conn_bad(conn, "a reply frame sent to a server", op);
        return;
    }

    m = goim_rpc_method(op);
    if (m == NULL) {
        goim_rpc_conn_bad(conn, "unknown method", op);
        return;
    }

    handler = goim_rpc_server_handler(s, op);
    if (handler == NULL) {
        goim_log_warn("rpc: %s called %s, which is not served here",
                      conn->peer, m->name);
        snprintf(text, sizeof(text), "%s is not served here", m->name);
        s->stats.error_replies++;
        goim_rpc_conn_send(conn, goim_wbuf_error(op, pkt->header.seq,
                                   GOIM__ERROR_CODE__ERROR_NOT_FOUND, text));
        return;
    }

    msg = goim_rpc_unpack(op, 0, NULL, pkt->body, pkt->body_len);
    if (msg == NULL) {
        goim_rpc_conn_bad(conn, "malformed request body", op);
        return;
    }

    r = calloc(1, sizeof(goim_rpc_req_t));
    if (r == NULL) {
        protobuf_c_message_free_unpacked(msg, NULL);
        goim_log_error("rpc: out of memory, closing %s", conn->peer);
        goim_rpc_conn_close(conn);
        return;
    }

    r->conn = conn;
    r->method = op;
    r->seq = pkt->header.seq;
    r->msg = msg;
    goim_queue_insert_tail(&conn->reqs, &r->queue);

    s->stats.requests++;

    goim_log_debug("rpc: %s -> %s seq %d", conn->peer, m->name,
                   (int) r->seq);

    handler(r);
}


static void
goim_rpc_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    goim_rpc_conn_t  *conn;

    (void) suggested;

    conn = h->data;
    goim_rbuf_alloc(&conn->rbuf, conn->max_body, buf);
}


static void
goim_rpc_conn_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    goim_rc_t         rc;
    goim_packet_t     pkt;
    goim_rpc_conn_t  *conn;

    (void) buf;

    conn = stream->data;

    if (nread == UV_EOF && conn->auth && conn->rbuf.end == conn->rbuf.start
        && goim_auth_idle(conn->auth))
    {
        /* a port probe: nothing was tried */
        goim_log_debug("rpc: %s closed the connection before the handshake",
                       conn->peer);
        goim_rpc_conn_close(conn);
        return;
    }

    if (nread < 0 && conn->auth) {
        goim_rpc_conn_auth_refuse(conn, nread == UV_EOF
                                        ? "it closed the connection first"
                                        : uv_strerror((int) nread));
        return;
    }

    if (nread < 0) {
        if (nread == UV_EOF) {
            goim_log_debug("rpc: %s closed the connection", conn->peer);

        } else if (nread == UV_ENOBUFS) {
            goim_log_error("rpc: out of memory reading from %s", conn->peer);

        } else {
            goim_log_info("rpc: closing %s: %s", conn->peer,
                          uv_strerror((int) nread));
        }

        goim_rpc_conn_close(conn);
        return;
    }

    conn->rbuf.end += (size_t) nread;

    if (conn->auth && goim_rpc_conn_auth(conn) != 0) {
        return;
    }

    conn->reading = 1;

    while (!conn->closing) {
        rc = goim_rbuf_next(&conn->rbuf, conn->max_body, &pkt);

        if (rc == GOIM_AGAIN) {
            break;
        }

        if (rc != GOIM_OK) {
            goim_rpc_conn_bad(conn, goim_strerror(rc),
                              conn->rbuf.end - conn->rbuf.start >= 12
                              ? (int32_t) goim_get_be32(conn->rbuf.data
                                                  + conn->rbuf.start + 8)
                              : 0);
            return;
        }

        goim_rpc_conn_frame(conn, &pkt);
    }

    if (conn->closing) {
        return;
    }

    conn->reading = 0;
    goim_rpc_conn_flush(conn);

    if (conn->closing) {
        return;
    }

    /* a partial frame must complete within frame_timeout of its start */

    if (conn->rbuf.end == conn->rbuf.start) {
        uv_timer_stop(&conn->timer);

    } else if (!uv_is_active((uv_handle_t *) &conn->timer)) {
        uv_timer_start(&conn->timer, goim_rpc_conn_timeout,
                       conn->frame_timeout, 0);
    }
}


static void
goim_rpc_server_accept(uv_stream_t *listener, int status)
{
    int                      rc, len;
    goim_rpc_conn_t         *conn;
    goim_rpc_server_t       *s;
    struct sockaddr_storage  ss;

    s = listener->data;

    if (status != 0) {
        goim_log_error("rpc: accept: %s", uv_strerror(status));
        return;
    }

    conn = calloc(1, sizeof(goim_rpc_conn_t));
    if (conn == NULL) {
        goim_log_error("rpc: out of memory accepting a connection");
        return;
    }

    conn->server = s;
    conn->max_body = s->opts.max_body;
    conn->frame_timeout = s->opts.frame_timeout;
    conn->max_write_queue = s->opts.max_write_queue;
    goim_queue_init(&conn->reqs);
    goim_queue_init(&conn->batch);

    uv_tcp_init(s->loop, &conn->tcp);
    uv_timer_init(s->loop, &conn->timer);
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->refs = 2;

    s->refs++;
    s->stats.accepted++;
    s->stats.active++;
    goim_queue_insert_tail(&s->conns, &conn->queue);

    rc = uv_accept(listener, (uv_stream_t *) &conn->tcp);
    if (rc != 0) {
        goim_log_error("rpc: accept: %s", uv_strerror(rc));
        goim_rpc_conn_close(conn);
        return;
    }

    strcpy(conn->peer, "?");
    len = sizeof(ss);
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *) &ss, &len) == 0) {
        goim_uv_sockaddr_name((struct sockaddr *) &ss, conn->peer,
                              sizeof(conn->peer));
    }

    uv_tcp_nodelay(&conn->tcp, 1);

    if (s->opts.secret) {
        conn->auth = malloc(sizeof(goim_auth_t));
        if (conn->auth == NULL) {
            goim_log_error("rpc: out of memory accepting %s", conn->peer);
            goim_rpc_conn_close(conn);
            return;
        }

        goim_auth_init(conn->auth, s->opts.secret, 0);
        conn->auth_timeout = s->opts.auth_timeout;
        uv_timer_start(&conn->timer, goim_rpc_conn_auth_timeout,
                       conn->auth_timeout, 0);
    }

    rc = uv_read_start((uv_stream_t *) &conn->tcp, goim_rpc_conn_alloc,
                       goim_rpc_conn_read);
    if (rc != 0) {
        goim_log_error("rpc: read from %s: %s", conn->peer, uv_strerror(rc));
        goim_rpc_conn_close(conn);
        return;
    }

    goim_log_debug("rpc: accepted %s", conn->peer);
}


int
goim_rpc_server_listen(goim_rpc_server_t *s, const char *addr)
{
    int                      rc;
    struct sockaddr_storage  ss;

    rc = goim_uv_addr_resolve(addr, &ss);
    if (rc == 0) {
        rc = uv_tcp_bind(&s->listener, (struct sockaddr *) &ss, 0);
    }

    if (rc == 0) {
        rc = uv_listen((uv_stream_t *) &s->listener, 511,
                       goim_rpc_server_accept);
    }

    if (rc != 0) {
        goim_log_error("rpc: cannot listen on %s: %s", addr, uv_strerror(rc));
        return rc;
    }

    s->listening = 1;
    goim_log_info("rpc: listening on %s", addr);

    return 0;
}


/* ---- replies ------------------------------------------------------------ */

const char *
goim_rpc_req_peer(const goim_rpc_req_t *r)
{
    return r->conn ? r->conn->peer : "-";
}


static void
goim_rpc_req_free(goim_rpc_req_t *r)
{
    goim_queue_remove(&r->queue);

    if (r->msg) {
        protobuf_c_message_free_unpacked(r->msg, NULL);
    }

    free(r);
}


void
goim_rpc_reply(goim_rpc_req_t *r, const ProtobufCMessage *reply)
{
    goim_rpc_conn_t  *conn;

    conn = r->conn;

    if (conn && !conn->closing) {
        conn->server->stats.replies++;
        goim_queue_remove(&r->queue);
        goim_rpc_conn_send(conn, goim_wbuf_frame(r->method | GOIM_RPC_REPLY,
                                                 r->seq, reply));
    }

    goim_rpc_req_free(r);
}


void
goim_rpc_reply_error(goim_rpc_req_t *r, Goim__ErrorCode code,
    const char *message)
{
    goim_rpc_conn_t  *conn;

    conn = r->conn;

    if (conn && !conn->closing) {
        conn->server->stats.error_replies++;
        goim_queue_remove(&r->queue);
        goim_rpc_conn_send(conn, goim_wbuf_error(r->method, r->seq, code,
                                                 message));
    }

    goim_rpc_req_free(r);
}


/* ---- shutdown ----------------------------------------------------------- */

static void
goim_rpc_server_unref(goim_rpc_server_t *s)
{
    if (--s->refs == 0) {
        free(s);
    }
}


static void
goim_rpc_listener_closed(uv_handle_t *h)
{
    goim_rpc_server_unref(h->data);
}


void
goim_rpc_server_close(goim_rpc_server_t *s)
{
    goim_queue_t  *q;

    if (s->closed) {
        return;
    }

    s->closed = 1;
    uv_close((uv_handle_t *) &s->listener, goim_rpc_listener_closed);

    while (!goim_queue_empty(&s->conns)) {
        q = goim_queue_head(&s->conns);
        goim_rpc_conn_close(goim_queue_data(q, goim_rpc_conn_t, queue));
    }
}
