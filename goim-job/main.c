/*
 * goim-job: routes pushes from logic to the comets.
 *
 * main() hands the command line to the shared daemon skeleton
 * (libgoim/uv/goim_uv_daemon.c) with job's description: its options
 * (config.c), the methods it serves (rpc.c) and its life cycle
 * (server.c).
 */

#include "job.h"


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
