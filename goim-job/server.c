/*
 * goim-job's server: the one global struct and its life cycle.  The comet
 * directory comes up at start (first list fetched at once), SIGHUP applies
 * a new refresh period, and stop closes the router and comet clients,
 * failing what is still in flight.
 */

#include "goim_uv_log.h"
#include "job.h"


job_server_t  job;


int
job_start(uv_loop_t *loop, void *conf)
{
    job.conf = conf;
    job.loop = loop;

    if (job_comets_start() != 0) {
        goim_log_error("cannot start the comet directory");
        return -1;
    }

    job.started = 1;

    goim_log_info("router %s, comet list every %lld s", job.conf->router,
                  (long long) job.conf->comet_refresh);

    return 0;
}


void
job_reload(void *conf)
{
    job.conf = conf;
    job_comets_reload();
}


void
job_stop(void)
{
    if (!job.started) {
        return;
    }

    job.started = 0;
    job_comets_stop();
}


