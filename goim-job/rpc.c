/*
 * The methods goim-job serves: JOB_PUSH (routed by push.c) and JOB_STATS.
 */

#include "job.h"


static void
job_stats(goim_rpc_req_t *r)
{
    int64_t  values[11];

    static const char *const  names[] = {
        "push_requests", "push_msgs", "sent", "failed", "dropped",
        "keys_delivered", "keys_dropped", "comets", "comet_refreshes",
        "comet_refresh_failures", "waiting"
    };

    values[0] = (int64_t) job.stats.requests;
    values[1] = (int64_t) job.stats.msgs;
    values[2] = (int64_t) job.stats.sent;
    values[3] = (int64_t) job.stats.failed;
    values[4] = (int64_t) job.stats.dropped;
    values[5] = (int64_t) job.stats.keys_delivered;
    values[6] = (int64_t) job.stats.keys_dropped;
    values[7] = (int64_t) job.ncomets;
    values[8] = (int64_t) job.stats.refreshes;
    values[9] = (int64_t) job.stats.refresh_failures;
    values[10] = (int64_t) job.stats.waiting;

    goim_daemon_stats_reply(r, names, values, 11);
}


const goim_rpc_handler_t  job_handlers[] = {
    { GOIM__METHOD__JOB_PUSH, job_push },
    { GOIM__METHOD__JOB_STATS, job_stats },
    { 0, NULL }
};
