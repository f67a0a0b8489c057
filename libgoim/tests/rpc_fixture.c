/*
 * The shared fixture of the RPC channel's unit tests (rpc_fixture.h).
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
#include "rpc_fixture.h"


uv_loop_t           loop;
goim_rpc_server_t  *server;
int                 port;
char                addr[64];
int                 completed;


void
done_cb(void *data, int status, const ProtobufCMessage *reply,
    const char *message)
{
    result_t  *res = data;

    assert_int_equal(res->done, 0);         /* exactly once */

    res->done = 1;
    res->status = status;
    res->order = ++completed;

    if (status == 0 && reply
        && reply->descriptor == &goim__session_put_reply__descriptor)
    {
        res->replaced = ((const Goim__SessionPutReply *) reply)->replaced;
    }

    if (message) {
        snprintf(res->message, sizeof(res->message), "%s", message);
    }
}


static void
stop_timer_cb(uv_timer_t *t)
{
    *(int *) t->data = 1;
}


int
run_until(int *flag, uint64_t ms)
{
    int         expired = 0;
    uv_timer_t  t;

    uv_timer_init(&loop, &t);
    t.data = &expired;
    uv_timer_start(&t, stop_timer_cb, ms, 0);

    while (!*flag && !expired) {
        uv_run(&loop, UV_RUN_ONCE);
    }

    uv_close((uv_handle_t *) &t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);

    return *flag;
}


void
run_for(uint64_t ms)
{
    int  never = 0;

    run_until(&never, ms);
}


goim_rpc_call_t *
put(goim_rpc_client_t *c, int64_t mid, uint64_t timeout, result_t *res)
{
    Goim__Session        s = GOIM__SESSION__INIT;
    Goim__SessionPutReq  req = GOIM__SESSION_PUT_REQ__INIT;

    s.mid = mid;
    s.key = "k";
    s.server = "c";
    req.session = &s;

    return goim_rpc_call(c, GOIM__METHOD__ROUTER_SESSION_PUT, &req.base,
                         timeout, done_cb, res);
}


void
listen_server(const goim_rpc_handler_t *handlers,
    const goim_rpc_server_opts_t *so)
{
    goim_log_level = GOIM_LOG_ERROR + 1;    /* quiet */
    uv_loop_init(&loop);

    for (port = 20000 + (int) (uv_hrtime() % 20000); ; port++) {
        server = goim_rpc_server_create(&loop, handlers, so);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);

        if (goim_rpc_server_listen(server, addr) == 0) {
            break;
        }

        goim_rpc_server_close(server);
        uv_run(&loop, UV_RUN_NOWAIT);
    }

    completed = 0;
}


int
teardown(void **state)
{
    (void) state;

    if (server) {
        goim_rpc_server_close(server);
    }

    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    return 0;
}
