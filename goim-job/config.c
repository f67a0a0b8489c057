/*
 * goim-job's options: one table gives the config file keys, the
 * command-line flags (--comet-refresh for comet_refresh), defaults,
 * bounds, and which ones SIGHUP applies.  README.md documents the same
 * table.
 */

#include <stddef.h>
#include <stdio.h>

#include "job.h"


const goim_opt_t  job_opts[] = {
    GOIM_DAEMON_OPTS("0.0.0.0:3129"),

    { "router", GOIM_OPT_ADDR, offsetof(job_conf_t, router),
      "127.0.0.1:3139", 0, 0, 0,
      "host:port of goim-router, for the comet list" },

    { "comet_refresh", GOIM_OPT_INT, offsetof(job_conf_t, comet_refresh),
      "5", 1, 3600, 1,
      "seconds between two fetches of the comet list" },

    { "comet_timeout", GOIM_OPT_INT, offsetof(job_conf_t, comet_timeout),
      "5", 1, 3600, 1,
      "seconds a comet has to answer a push" },

    { "router_timeout", GOIM_OPT_INT, offsetof(job_conf_t, router_timeout),
      "3", 1, 3600, 1,
      "seconds router has to answer for the comet list" },

    { NULL, 0, 0, NULL, 0, 0, 0, NULL }
};


int
job_conf_check(void *conf, char *err, size_t errlen)
{
    int          port;
    char         host[256];
    job_conf_t  *jc;

    jc = conf;

    if (goim_uv_addr_split(jc->router, host, sizeof(host), &port) != 0
        || host[0] == '\0')
    {
        snprintf(err, errlen, "router: \"%s\" needs a host and a port",
                 jc->router);
        return -1;
    }

    return 0;
}
