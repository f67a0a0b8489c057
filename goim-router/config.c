/*
 * goim-router's options: one table gives the config file keys, the
 * command-line flags (--session-ttl for session_ttl), defaults, bounds,
 * and which ones SIGHUP applies.  README.md documents the same table.
 */

#include <stddef.h>

#include "router.h"


const goim_opt_t  router_opts[] = {
    GOIM_DAEMON_OPTS("127.0.0.1:3139"),

    { "session_ttl", GOIM_OPT_INT, offsetof(router_conf_t, session_ttl),
      "1800", 1, 30 * 86400, 1,
      "seconds a session lives without a put or renewal" },

    { "comet_ttl", GOIM_OPT_INT, offsetof(router_conf_t, comet_ttl),
      "30", 1, 86400, 1,
      "seconds a comet stays registered without a renewal" },

    { "expire_batch", GOIM_OPT_INT, offsetof(router_conf_t, expire_batch),
      "100000", 100, 100000000, 1,
      "most sessions one expiry pass removes before yielding" },

    { NULL, 0, 0, NULL, 0, 0, 0, NULL }
};

