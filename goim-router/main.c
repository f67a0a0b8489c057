/*
 * goim-router: sessions and comets, in memory, over RPC.
 *
 * main() hands the command line to the shared daemon skeleton
 * (libgoim/uv/goim_uv_daemon.c) with the router's description: its
 * options (config.c), the methods it serves (rpc.c) and its life cycle
 * (server.c).
 */

#include "router.h"


static const goim_daemon_t  router_daemon = {
    ROUTER_NAME,
    router_opts,
    sizeof(router_conf_t),
    router_handlers,
    GOIM__METHOD__ROUTER_STATS,
    NULL,
    router_start,
    router_reload,
    router_stop
};


int
main(int argc, char **argv)
{
    return goim_daemon_main(&router_daemon, argc, argv);
}
