/*
 * The methods goim-job serves: JOB_PUSH (routed by push.c, ensure records
 * kept by ensure.c), JOB_RECEIPTS (ensure.c) and JOB_STATS.
 */

#include "job.h"


static void
job_stats(goim_rpc_req_t *r)
{
    int64_t  values[49];

    static const char *const  names[] = {
        "push_requests", "push_msgs", "sent", "failed", "dropped",
        "keys_delivered", "keys_dropped", "comets", "comet_refreshes",
        "comet_refresh_failures", "waiting", "retries", "gone",
        "room_msgs", "room_batches", "rooms", "inflight", "kafka_records",
        "kafka_bad", "kafka_done", "kafka_commits", "kafka_pauses",
        "kafka_errors", "kafka_paused", "windowed", "ensure_msgs",
        "ensure_refused", "ensure_sends", "ensure_plain", "ensure_resends",
        "ensure_acked", "ensure_acks_unknown", "ensure_expired_ttl",
        "ensure_expired_retries", "ensure_online", "ensure_sessions_gone",
        "ensure_sessions_evicted", "ensure_pending", "ensure_mailboxes",
        "ensure_receipts", "streams", "streams_evicted", "push_refused",
        "push_failed", "ensure_known", "ensure_deferred", "ensure_replays",
        "receipts_written", "receipts_failed"
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
    values[11] = (int64_t) job.stats.retries;
    values[12] = (int64_t) job.stats.gone;
    values[13] = (int64_t) job.stats.room_msgs;
    values[14] = (int64_t) job.stats.room_batches;
    values[15] = (int64_t) job_rooms_count();
    values[16] = (int64_t) job.inflight;
    values[17] = (int64_t) job.stats.kafka_records;
    values[18] = (int64_t) job.stats.kafka_bad;
    values[19] = (int64_t) job.stats.kafka_done;
    values[20] = (int64_t) job.stats.kafka_commits;
    values[21] = (int64_t) job.stats.kafka_pauses;
    values[22] = (int64_t) job.stats.kafka_errors;
    values[23] = (int64_t) job_kafka_paused();
    values[24] = (int64_t) job.stats.windowed;
    values[25] = (int64_t) job.stats.ensure_msgs;
    values[26] = (int64_t) job.stats.ensure_refused;
    values[27] = (int64_t) job.stats.ensure_sends;
    values[28] = (int64_t) job.stats.ensure_plain;
    values[29] = (int64_t) job.stats.ensure_resends;
    values[30] = (int64_t) job.stats.ensure_acked;
    values[31] = (int64_t) job.stats.ensure_acks_unknown;
    values[32] = (int64_t) job.stats.ensure_expired_ttl;
    values[33] = (int64_t) job.stats.ensure_expired_retries;
    values[34] = (int64_t) job.stats.ensure_online;
    values[35] = (int64_t) job.stats.ensure_sessions_gone;
    values[36] = (int64_t) job.stats.ensure_sessions_evicted;
    values[37] = (int64_t) job_ensure_pending();
    values[38] = (int64_t) job_ensure_mailboxes();
    values[39] = (int64_t) job_ensure_finished();
    values[40] = (int64_t) job_streams_count();
    values[41] = (int64_t) job.stats.streams_evicted;
    values[42] = (int64_t) job.stats.push_refused;
    values[43] = (int64_t) job.stats.push_failed;
    values[44] = (int64_t) job.stats.ensure_known;
    values[45] = (int64_t) job.stats.ensure_deferred;
    values[46] = (int64_t) job.stats.ensure_replays;
    values[47] = (int64_t) job.stats.receipts_written;
    values[48] = (int64_t) job.stats.receipts_failed;

    goim_daemon_stats_reply(r, names, values,
                            sizeof(names) / sizeof(names[0]));
}


const goim_rpc_handler_t  job_handlers[] = {
    { GOIM__METHOD__JOB_PUSH, job_push },
    { GOIM__METHOD__JOB_STATS, job_stats },
    { GOIM__METHOD__JOB_RECEIPTS, job_ensure_receipts },
    { 0, NULL }
};
