/*
 * Unit tests of the daemons' RPC channel with a secret (goim_auth.h over
 * libgoim/uv): calls made before and during the handshake go out after
 * it, in order; a client with another secret, or none, fails its calls
 * and is refused (counted) by the server; a silent peer is closed after
 * the auth timeout; a client with a secret cannot talk to a server
 * without one.
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
#include "rpc_fixture.h"


static goim_auth_secret_t  secret_a, secret_b;


static void
h_put(goim_rpc_req_t *r)
{
    Goim__SessionPutReply  reply = GOIM__SESSION_PUT_REPLY__INIT;

    goim_rpc_reply(r, &reply.base);
}

static const goim_rpc_handler_t  handlers[] = {
    { GOIM__METHOD__ROUTER_SESSION_PUT, h_put },
    { 0, NULL }
};


static goim_rpc_client_t *
client(const goim_auth_secret_t *secret)
{
    goim_rpc_client_opts_t  co;

    memset(&co, 0, sizeof(co));
    co.secret = secret;
    co.auth_timeout = 1000;

    return goim_rpc_client_create(&loop, addr, &co);
}

static int
start_server(const goim_auth_secret_t *secret)
{
    goim_rpc_server_opts_t  so;

    memset(&so, 0, sizeof(so));
    so.secret = secret;
    so.auth_timeout = 300;

    listen_server(handlers, &so);

    return 0;
}

static int
setup(void **state)
{
    (void) state;

    secret_a.len = 20;
    memcpy(secret_a.key, "the plane's secret A", 20);
    secret_b.len = 20;
    memcpy(secret_b.key, "the plane's secret B", 20);

    return start_server(&secret_a);
}

static int
setup_open(void **state)
{
    (void) state;

    secret_a.len = 20;
    memcpy(secret_a.key, "the plane's secret A", 20);

    return start_server(NULL);
}


/* calls made before the connection exists wait for the handshake */
static void
test_same_secret(void **state)
{
    int                 i;
    result_t            r[5];
    goim_rpc_client_t  *c;

    (void) state;

    memset(r, 0, sizeof(r));

    c = client(&secret_a);
    assert_non_null(c);

    for (i = 0; i < 5; i++) {
        assert_non_null(put(c, 1, 2000, &r[i]));
    }

    assert_false(goim_rpc_client_connected(c));
    assert_true(run_until(&r[4].done, 2000));

    for (i = 0; i < 5; i++) {
        assert_int_equal(r[i].status, 0);
        assert_int_equal(r[i].order, i + 1);
    }

    assert_true(goim_rpc_client_connected(c));
    assert_int_equal(goim_rpc_server_stats(server)->requests, 5);
    assert_int_equal(goim_rpc_server_stats(server)->auth_refused, 0);

    goim_rpc_client_close(c);
}


static void
wait_refused(uint64_t n)
{
    int  never = 0;
    int  i;

    for (i = 0; i < 200 && goim_rpc_server_stats(server)->auth_refused < n;
         i++)
    {
        run_until(&never, 10);
    }

    assert_int_equal(goim_rpc_server_stats(server)->auth_refused, n);
}


/* another secret: the client refuses the server's proof, both count it */
static void
test_other_secret(void **state)
{
    result_t            r = { 0 };
    goim_rpc_client_t  *c;

    (void) state;

    c = client(&secret_b);
    assert_non_null(put(c, 1, 2000, &r));
    assert_true(run_until(&r.done, 2000));

    assert_int_equal(r.status, GOIM__ERROR_CODE__ERROR_UNAVAILABLE);
    assert_non_null(strstr(r.message, "authentication refused: wrong proof"));
    assert_false(goim_rpc_client_connected(c));

    wait_refused(1);
    assert_int_equal(goim_rpc_server_stats(server)->requests, 0);

    goim_rpc_client_close(c);
}


/* no secret: the call is the first frame, the server refuses it */
static void
test_no_secret(void **state)
{
    result_t            r = { 0 };
    goim_rpc_client_t  *c;

    (void) state;

    c = client(NULL);
    assert_non_null(put(c, 1, 2000, &r));
    assert_true(run_until(&r.done, 2000));

    assert_int_equal(r.status, GOIM__ERROR_CODE__ERROR_UNAVAILABLE);
    wait_refused(1);
    assert_int_equal(goim_rpc_server_stats(server)->requests, 0);

    goim_rpc_client_close(c);
}


static void
silent_connected(uv_connect_t *req, int status)
{
    assert_int_equal(status, 0);
    *(int *) req->data = 1;
}

/* a peer that sends nothing is closed after the auth timeout (300 ms) */
static void
test_silent_peer(void **state)
{
    int                      connected = 0;
    uv_connect_t             req;
    static uv_tcp_t          tcp;       /* closed by the loop after us */
    struct sockaddr_storage  ss;

    (void) state;

    assert_int_equal(goim_uv_addr_resolve(addr, &ss), 0);
    uv_tcp_init(&loop, &tcp);
    req.data = &connected;
    assert_int_equal(uv_tcp_connect(&req, &tcp, (struct sockaddr *) &ss,
                                    silent_connected), 0);
    assert_true(run_until(&connected, 2000));

    wait_refused(1);
    assert_int_equal(goim_rpc_server_stats(server)->active, 0);

    uv_close((uv_handle_t *) &tcp, NULL);
}


/* a client with a secret and a server without one never agree */
static void
test_server_without_secret(void **state)
{
    result_t            r = { 0 };
    goim_rpc_client_t  *c;

    (void) state;

    c = client(&secret_a);
    assert_non_null(put(c, 1, 2000, &r));
    assert_true(run_until(&r.done, 2000));

    assert_int_equal(r.status, GOIM__ERROR_CODE__ERROR_UNAVAILABLE);
    assert_non_null(strstr(r.message, "during authentication"));
    assert_int_equal(goim_rpc_server_stats(server)->requests, 0);

    goim_rpc_client_close(c);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_same_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_without_secret,
                                        setup_open, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
