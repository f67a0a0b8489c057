/*
 * Unit tests of the daemons' RPC channel (libgoim/uv/goim_uv_rpc*.c): a
 * server and a client on one libuv loop over loopback TCP.  Replies now,
 * later and out of order; error replies; timeouts; cancel; a dropped
 * connection failing its calls and detaching the server's requests;
 * backoff; and the bad input that must close a connection (and only it).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "goim_uv_log.h"
#include "goim_uv_rpc.h"
#include "goim_uv_rpc_int.h"
#include "rpc_fixture.h"


/* server-side state of the handlers */
static goim_rpc_req_t  *held[8];
static int              nheld;
static int              aborted;


/* ---- handlers ----------------------------------------------------------- */

/* SessionPut: replies at once, replaced = mid of the session */
static void
h_put(goim_rpc_req_t *r)
{
    Goim__SessionPutReq    *req = (Goim__SessionPutReq *) r->msg;
    Goim__SessionPutReply   reply = GOIM__SESSION_PUT_REPLY__INIT;

    reply.replaced = req->session && req->session->mid != 0;
    goim_rpc_reply(r, &reply.base);
}

static void
on_abort(goim_rpc_req_t *r)
{
    (void) r;
    aborted++;
}

/* SessionDel: holds the request; the test replies later */
static void
h_hold(goim_rpc_req_t *r)
{
    r->abort = on_abort;
    held[nheld++] = r;
}

/* SessionRenew: an error reply */
static void
h_error(goim_rpc_req_t *r)
{
    goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAUTHORIZED, "go away");
}

static const goim_rpc_handler_t  handlers[] = {
    { GOIM__METHOD__ROUTER_SESSION_PUT, h_put },
    { GOIM__METHOD__ROUTER_SESSION_DEL, h_hold },
    { GOIM__METHOD__ROUTER_SESSION_RENEW, h_error },
    { 0, NULL }
};


/* ---- setup ------------------------------------------------------------- */

static int
setup(void **state)
{
    goim_rpc_server_opts_t  so;

    (void) state;

    memset(&so, 0, sizeof(so));
    so.frame_timeout = 200;
    so.max_body = 1024;

    listen_server(handlers, &so);

    nheld = 0;
    aborted = 0;

    return 0;
}


/* ---- client and server -------------------------------------------------- */

static void
test_call_reply(void **state)
{
    result_t            a = { 0 }, b = { 0 };
    goim_rpc_client_t  *c;

    (void) state;

    c = goim_rpc_client_create(&loop, addr, NULL);
    assert_non_null(c);

    assert_non_null(put(c, 1, 2000, &a));
    assert_non_null(put(c, 0, 2000, &b));
    assert_int_equal(a.done, 0);             /* never from inside the call */
    assert_int_equal(goim_rpc_client_pending(c), 2);

    assert_true(run_until(&b.done, 2000));
    assert_int_equal(a.status, 0);
    assert_int_equal(a.replaced, 1);
    assert_int_equal(b.status, 0);
    assert_int_equal(b.replaced, 0);
    assert_int_equal(goim_rpc_client_pending(c), 0);
    assert_true(goim_rpc_client_connected(c));
    assert_int_equal(goim_rpc_server_stats(server)->requests, 2);

    goim_rpc_client_close(c);
}

static void
test_hostname(void **state)
{
    result_t            a = { 0 };
    goim_rpc_client_t  *c;
    char                name[64];

    (void) state;

    /* resolved asynchronously; the call waits for the connection */
    snprintf(name, sizeof(name), "localhost:%d", port);
    c = goim_rpc_client_create(&loop, name, NULL);
    assert_non_null(c);

    put(c, 1, 3000, &a);
    assert_true(run_until(&a.done, 3000));
    assert_int_equal(a.status, 0);

    goim_rpc_client_close(c);
}

static void
test_async_out_of_order(void **state)
{
    result_t               a = { 0 }, b = { 0 };
    goim_rpc_client_t     *c;
    Goim__SessionDelReq    req = GOIM__SESSION_DEL_REQ__INIT;
    Goim__SessionDelReply  reply = GOIM__SESSION_DEL_REPLY__INIT;

    (void) state;

    c = goim_rpc_client_create(&loop, addr, NULL);

    goim_rpc_call(c, GOIM__METHOD__ROUTER_SESSION_DEL, &req.base, 2000,
                  done_cb, &a);
    goim_rpc_call(c, GOIM__METHOD__ROUTER_SESSION_DEL, &req.base, 2000,
                  done_cb, &b);

    while (nheld < 2) {
        uv_run(&loop, UV_RUN_ONCE);
    }

    /* the second is answered first */
    goim_rpc_reply(held[1], &reply.base);
    goim_rpc_reply(held[0], &reply.base);

    assert_true(run_until(&a.done, 2000));
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, 0);
    assert_int_equal(b.order, 1);
    assert_int_equal(a.order, 2);

    goim_rpc_client_close(c);
}

static void
test_error_reply(void **state)
{
    result_t               a = { 0 }, b = { 0 };
    goim_rpc_client_t     *c;
    Goim__SessionRenewReq  req = GOIM__SESSION_RENEW_REQ__INIT;

    (void) state;

    c = goim_rpc_client_create(&loop, addr, NULL);

    goim_rpc_call(c, GOIM__METHOD__ROUTER_SESSION_RENEW, &req.base, 2000,
                  done_cb, &a);

    /* a method this server does not serve: NOT_FOUND, connection kept */
    goim_rpc_call(c, GOIM__METHOD__JOB_PUSH, NULL, 2000, done_cb, &b);

    assert_true(run_until(&b.done, 2000));
    assert_int_equal(a.status, GOIM__ERROR_CODE__ERROR_UNAUTHORIZED);
    assert_non_null(strstr(a.message, "go away"));
    assert_int_equal(b.status, GOIM__ERROR_CODE__ERROR_NOT_FOUND);
    assert_non_null(strstr(b.message, "Job.Push"));
    assert_true(goim_rpc_client_connected(c));
    assert_int_equal(goim_rpc_server_stats(server)->bad_input, 0);

    goim_rpc_client_close(c);
}

static void
test_timeout_then_late_reply(void **state)
{
    result_t               a = { 0 }, b = { 0 };
    goim_rpc_client_t     *c;
    Goim__SessionDelReply  reply = GOIM__SESSION_DEL_REPLY__INIT;

    (void) state;

    c = goim_rpc_client_create(&loop, addr, NULL);

    goim_rpc_call(c, GOIM__METHOD__ROUTER_SESSION_DEL, NULL, 100, done_cb,
                  &a);
    assert_true(run_until(&a.done, 2000));
    assert_int_equal(a.status, GOIM__ERROR_CODE__ERROR_TIMEOUT);

    /* the late reply is ignored; the connection still works */
    assert_int_equal(nheld, 1);
    goim_rpc_reply(held[0], &reply.base);

    put(c, 1, 2000, &b);
    assert_true(run_until(&b.done, 2000));
    assert_int_equal(b.status, 0);

    goim_rpc_client_close(c);
}

static void
test_cancel(void **state)
{
    result_t            a = { 0 }, b = { 0 };
    goim_rpc_call_t    *call;
    goim_rpc_client_t  *c;

    (void) state;

    c = goim_rpc_client_create(&loop, addr, NULL);

    call = put(c, 1, 2000, &a);
    goim_rpc_cancel(call);
    assert_int_equal(goim_rpc_client_pending(c), 0);

    put(c, 1, 2000, &b);
    assert_true(run_until(&b.done, 2000));
    run_for(50);
    assert_int_equal(a.done, 0);

    goim_rpc_client_close(c);
}

static void
test_drop_fails_calls_and_detaches(void **state)
{
    result_t               a = { 0 }, b = { 0 };
    goim_rpc_client_t     *c;
    Goim__SessionDelReply  reply = GOIM__SESSION_DEL_REPLY__INIT;

    (void) state;

    c = goim_rpc_client_create(&loop, addr, NULL);

    goim_rpc_call(c, GOIM__METHOD__ROUTER_SESSION_DEL, NULL, 5000, done_cb,
                  &a);
    goim_rpc_call(c, GOIM__METHOD__ROUTER_SESSION_DEL, NULL, 5000, done_cb,
                  &b);

    while (nheld < 2) {
        uv_run(&loop, UV_RUN_ONCE);
    }

    /* the server goes away with two requests in its handler's hands */
    goim_rpc_server_close(server);
    server = NULL;

    assert_int_equal(aborted, 2);
    assert_null(held[0]->conn);

    assert_true(run_until(&b.done, 2000));
    assert_int_equal(a.status, GOIM__ERROR_CODE__ERROR_UNAVAILABLE);
    assert_int_equal(b.status, GOIM__ERROR_CODE__ERROR_UNAVAILABLE);

    /* late replies to detached requests are dropped (and free them) */
    goim_rpc_reply(held[0], &reply.base);
    goim_rpc_reply_error(held[1], GOIM__ERROR_CODE__ERROR_INTERNAL, "late");

    goim_rpc_client_close(c);
}

static void
test_refused_and_backoff(void **state)
{
    result_t                a = { 0 }, b = { 0 }, d = { 0 };
    goim_rpc_client_t      *c;
    goim_rpc_client_opts_t  o;
    char                    bad[64];

    (void) state;

    memset(&o, 0, sizeof(o));
    o.backoff_min = 300;

    snprintf(bad, sizeof(bad), "127.0.0.1:%d", port + 1 > 65535 ? 1
                                                                : port + 1);
    c = goim_rpc_client_create(&loop, bad, &o);

    put(c, 1, 2000, &a);
    assert_true(run_until(&a.done, 2000));
    assert_int_equal(a.status, GOIM__ERROR_CODE__ERROR_UNAVAILABLE);

    /* within the backoff: fails at once, though not from inside the call */
    put(c, 1, 2000, &b);
    assert_int_equal(b.done, 0);
    run_for(10);
    assert_int_equal(b.done, 1);
    assert_int_equal(b.status, GOIM__ERROR_CODE__ERROR_UNAVAILABLE);

    /* after it: a real attempt again (still refused) */
    run_for(350);
    put(c, 1, 2000, &d);
    assert_true(run_until(&d.done, 2000));
    assert_int_equal(d.status, GOIM__ERROR_CODE__ERROR_UNAVAILABLE);
    assert_non_null(strstr(d.message, "refused"));

    goim_rpc_client_close(c);
}

static void
test_close_fails_pending(void **state)
{
    result_t            a = { 0 };
    goim_rpc_client_t  *c;

    (void) state;

    c = goim_rpc_client_create(&loop, addr, NULL);

    goim_rpc_call(c, GOIM__METHOD__ROUTER_SESSION_DEL, NULL, 5000, done_cb,
                  &a);
    run_for(20);

    goim_rpc_client_close(c);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.status, GOIM__ERROR_CODE__ERROR_UNAVAILABLE);

    /* the held request is detached when the server sees the close */
    run_for(50);
    assert_int_equal(aborted, 1);
    goim_rpc_reply(held[0], NULL);
}


/* ---- bad input ---------------------------------------------------------- */

typedef struct {
    uv_tcp_t      tcp;
    uv_connect_t  connect;
    uv_write_t    write;
    uv_buf_t      out;
    char          in[4096];
    size_t        nin;
    int           eof;
} raw_t;

static void
raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf)
{
    raw_t  *raw = h->data;

    (void) s;
    *buf = uv_buf_init(raw->in + raw->nin,
                       (unsigned) (sizeof(raw->in) - raw->nin));
}

static void
raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    raw_t  *raw = s->data;

    (void) buf;

    if (n < 0) {
        raw->eof = 1;
        uv_read_stop(s);
        return;
    }

    raw->nin += (size_t) n;
}

static void
raw_written(uv_write_t *w, int status)
{
    (void) w;
    (void) status;
}

static void
raw_connected(uv_connect_t *req, int status)
{
    raw_t  *raw = req->data;

    assert_int_equal(status, 0);
    uv_read_start((uv_stream_t *) &raw->tcp, raw_alloc, raw_read);

    if (raw->out.len) {
        uv_write(&raw->write, (uv_stream_t *) &raw->tcp, &raw->out, 1,
                 raw_written);
    }
}

/* Sends bytes on a fresh connection; returns 1 when the server closed it
 * within ms. */
static int
raw_send(const void *bytes, size_t len, uint64_t ms)
{
    int                 eof;
    raw_t              *raw;
    struct sockaddr_in  sin;

    raw = calloc(1, sizeof(raw_t));
    raw->tcp.data = raw;
    raw->connect.data = raw;
    raw->out = uv_buf_init((char *) bytes, (unsigned) len);

    uv_ip4_addr("127.0.0.1", port, &sin);
    uv_tcp_init(&loop, &raw->tcp);
    uv_tcp_connect(&raw->connect, &raw->tcp, (struct sockaddr *) &sin,
                   raw_connected);

    eof = run_until(&raw->eof, ms);

    uv_close((uv_handle_t *) &raw->tcp, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    free(raw);

    return eof;
}

static void
test_bad_input_closes(void **state)
{
    uint8_t             f[64];
    result_t            a = { 0 };
    goim_rpc_client_t  *c;

    (void) state;

    /* a client connected meanwhile is not disturbed */
    c = goim_rpc_client_create(&loop, addr, NULL);
    put(c, 1, 2000, &a);
    assert_true(run_until(&a.done, 2000));

    /* header length not 16 */
    goim_header_write(f, 0, GOIM_RPC_VERSION, 301, 1);
    goim_put_be16(f + 4, 20);
    assert_true(raw_send(f, 16, 1000));

    /* oversize (max 1024 here) */
    goim_header_write(f, 4096, GOIM_RPC_VERSION, 301, 1);
    assert_true(raw_send(f, 16, 1000));

    /* unknown method */
    goim_header_write(f, 0, GOIM_RPC_VERSION, 9999, 1);
    assert_true(raw_send(f, 16, 1000));

    /* a reply sent to a server */
    goim_header_write(f, 0, GOIM_RPC_VERSION, 301 | GOIM_RPC_REPLY, 1);
    assert_true(raw_send(f, 16, 1000));

    /* malformed protobuf: field 1, length-delimited, length 50, 2 bytes */
    goim_header_write(f, 4, GOIM_RPC_VERSION, 301, 1);
    memcpy(f + 16, "\x0a\x32\x01\x02", 4);
    assert_true(raw_send(f, 20, 1000));

    /* bad version */
    goim_header_write(f, 0, 7, 301, 1);
    assert_true(raw_send(f, 16, 1000));

    assert_int_equal(goim_rpc_server_stats(server)->bad_input, 6);

    /* slow loris: half a header, then nothing (frame timeout 200 ms) */
    assert_true(raw_send(f, 8, 2000));
    assert_int_equal(goim_rpc_server_stats(server)->timeouts, 1);

    /* an idle connection with nothing buffered stays open */
    assert_false(raw_send(f, 0, 400));

    /* and the well-behaved client still works */
    memset(&a, 0, sizeof(a));
    put(c, 1, 2000, &a);
    assert_true(run_until(&a.done, 2000));
    assert_int_equal(a.status, 0);

    goim_rpc_client_close(c);
}

/*
 * A frame arriving a byte at a time reads into the buffer it has: no
 * realloc() per byte (fuzz_rpc_rbuf); a frame larger than a chunk gets
 * room for all of its rest at once.
 */
static void
test_rbuf_small_reads(void **state)
{
    size_t          i, n;
    uint8_t         frame[300 + GOIM_HEADER_LEN], *big;
    uv_buf_t        buf;
    goim_rbuf_t     rb;
    goim_packet_t   pkt;

    (void) state;

    memset(&rb, 0, sizeof(rb));
    n = goim_packet_write(frame, GOIM_RPC_VERSION, 304, 1, NULL, 0);
    goim_put_be32(frame, sizeof(frame));
    memset(frame + n, 'x', sizeof(frame) - n);

    for (i = 0; i < sizeof(frame); i++) {
        goim_rbuf_alloc(&rb, GOIM_RPC_MAX_BODY_DEFAULT, &buf);
        assert_non_null(buf.base);
        assert_int_equal(rb.cap, GOIM_RBUF_CHUNK);

        buf.base[0] = (char) frame[i];
        rb.end++;

        assert_int_equal(goim_rbuf_next(&rb, GOIM_RPC_MAX_BODY_DEFAULT,
                                        &pkt),
                         i + 1 < sizeof(frame) ? GOIM_AGAIN : GOIM_OK);
    }

    assert_int_equal(pkt.body_len, 300);

    /* a frame of three chunks: its header in, room for the rest */
    big = calloc(1, 3 * GOIM_RBUF_CHUNK);
    assert_non_null(big);
    goim_packet_write(big, GOIM_RPC_VERSION, 304, 2, NULL, 0);
    goim_put_be32(big, 3 * GOIM_RBUF_CHUNK);

    goim_rbuf_alloc(&rb, GOIM_RPC_MAX_BODY_DEFAULT, &buf);
    memcpy(buf.base, big, 100);
    rb.end += 100;
    assert_int_equal(goim_rbuf_next(&rb, GOIM_RPC_MAX_BODY_DEFAULT, &pkt),
                     GOIM_AGAIN);

    goim_rbuf_alloc(&rb, GOIM_RPC_MAX_BODY_DEFAULT, &buf);
    assert_true(buf.len >= 3 * GOIM_RBUF_CHUNK - 100);

    goim_rbuf_free(&rb);
    free(big);
}


static void
test_addr_split(void **state)
{
    int   p;
    char  host[64];

    (void) state;

    assert_int_equal(goim_uv_addr_split("1.2.3.4:80", host, sizeof(host),
                                        &p), 0);
    assert_string_equal(host, "1.2.3.4");
    assert_int_equal(p, 80);

    assert_int_equal(goim_uv_addr_split("[::1]:3139", host, sizeof(host),
                                        &p), 0);
    assert_string_equal(host, "::1");

    assert_int_equal(goim_uv_addr_split(":3139", host, sizeof(host), &p), 0);
    assert_string_equal(host, "");

    assert_int_equal(goim_uv_addr_split("host", host, sizeof(host), &p), -1);
    assert_int_equal(goim_uv_addr_split("h:0", host, sizeof(host), &p), -1);
    assert_int_equal(goim_uv_addr_split("h:70000", host, sizeof(host), &p),
                     -1);
    assert_int_equal(goim_uv_addr_split("::1:80", host, sizeof(host), &p),
                     -1);
    assert_int_equal(goim_uv_addr_split("h:80x", host, sizeof(host), &p), -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_addr_split),
        cmocka_unit_test(test_rbuf_small_reads),
        cmocka_unit_test_setup_teardown(test_call_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_out_of_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_then_late_reply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_fails_calls_and_detaches,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_backoff, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_fails_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_closes, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("rpc over libuv", tests, NULL, NULL);
}
