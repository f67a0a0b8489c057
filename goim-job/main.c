/*
 * goim-job: routes pushes from logic to the comets.
 *
 * main() hands the command line to the shared daemon skeleton
 * (libgoim/uv/goim_uv_daemon.c); this file holds job's life cycle: the
 * comet directory comes up at start (first list fetched at once), SIGHUP
 * applies a new refresh period, and stop closes the router and comet
 * clients, failing what is still in flight.
 */

#include "goim_uv_log.h"
#include "job.h"


job_server_t  job;


static int
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


static void
job_reload(void *conf)
{
    job.conf = conf;
    job_comets_reload();
}


static void
job_stop(void)
{
    if (!job.started) {
        return;
    }

    job.started = 0;
    job_comets_stop();
}


static const goim_daemon_t  job_daemon = {
    JOB_NAME,
    job_opts,
    sizeof(job_conf_t),
    job_handlers,
    GOIM__METHOD__JOB_STATS,
    job_conf_check,
    job_start,
    job_reload,
    job_stop
};


int
main(int argc, char **argv)
{
    return goim_daemon_main(&job_daemon, argc, argv);
}
