/*
 * What the unit tests of the daemons' RPC channel share (test_rpc.c,
 * test_rpc_auth.c): one libuv loop, a server listening on a free loopback
 * port, the result of a call, and running the loop until it comes.  Test
 * binaries only: the names are the tests' own, unprefixed.
 */

#ifndef _RPC_FIXTURE_H_INCLUDED_
#define _RPC_FIXTURE_H_INCLUDED_


#include <stdint.h>

#include "goim_uv_rpc.h"


typedef struct {
    int                 done;
    int                 status;
    int                 replaced;    /* from a SessionPutReply */
    int                 order;       /* when it completed */
    char                message[256];
} result_t;


extern uv_loop_t           loop;
extern goim_rpc_server_t  *server;
extern int                 port;
extern char                addr[64];
extern int                 completed;    /* calls done since the server */


/* a call's goim_rpc_done_pt: fills the result_t in data, once */
void done_cb(void *data, int status, const ProtobufCMessage *reply,
    const char *message);

/* runs the loop until *flag or ms have passed; returns *flag */
int run_until(int *flag, uint64_t ms);
void run_for(uint64_t ms);

/* SessionPut of a session of mid, done_cb filling res */
goim_rpc_call_t *put(goim_rpc_client_t *c, int64_t mid, uint64_t timeout,
    result_t *res);

/*
 * A quiet log, a new loop and the server, on the first free port from a
 * random one up (port, addr); completed is reset.
 */
void listen_server(const goim_rpc_handler_t *handlers,
    const goim_rpc_server_opts_t *so);

/* cmocka teardown: closes the server, runs the loop dry, closes it */
int teardown(void **state);


#endif /* _RPC_FIXTURE_H_INCLUDED_ */
