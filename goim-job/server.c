/*
 * goim-job's server: the one global struct and its life cycle.  The comet
 * directory comes up at start (first list fetched at once), then the
 * Kafka consumer when kafka_brokers is set.  SIGHUP applies a new refresh
 * period.
 *
 * SIGTERM drains: no new record is taken, queued room messages leave at
 * once, calls in flight get their answer (failures are no longer retried
 * and keep their records uncommitted), then the acknowledged offsets are
 * committed, the consumer leaves its group and the clients close.  After
 * stop_timeout seconds whatever is still in flight is abandoned
 * (uncommitted, so taken again by the next job).
 */

#include "goim_uv_log.h"
#include "job.h"


job_server_t  job;


int
job_start(uv_loop_t *loop, void *conf)
{
    job.conf = conf;
    job.loop = loop;

    goim_queue_init(&job.retrying);

    if (job_rooms_init() != 0 || job_streams_init() != 0
        || job_ensure_init() != 0)
    {
        goim_log_error("out of memory");
        return -1;
    }

    if (job_comets_start() != 0) {
        goim_log_error("cannot start the comet directory");
        return -1;
    }

    job.started = 1;

    goim_log_info("router %s, comet list every %lld s", job.conf->router,
                  (long long) job.conf->comet_refresh);

    if (job_kafka_start() != 0) {
        goim_log_error("cannot start the Kafka consumer");
        return -1;
    }

    return 0;
}


void
job_reload(void *conf)
{
    job.conf = conf;
    job_comets_reload();
}


static void
job_finish(void)
{
    if (job.finished) {
        return;
    }

    job.finished = 1;

    uv_close((uv_handle_t *) &job.stop_timer, NULL);

    job_kafka_close();

    /* fails what is still in flight: those records stay uncommitted */
    job_comets_stop();
    job_rooms_free();
    job_streams_free();
    job_ensure_stop();

    goim_log_info("stopped: %llu records consumed, %llu finished",
                  (unsigned long long) job.stats.kafka_records,
                  (unsigned long long) job.stats.kafka_done);
}


void
job_stop_check(void)
{
    if (job.draining && !job.finished && job.inflight == 0) {
        job_finish();
    }
}


static void
job_stop_timeout(uv_timer_t *t)
{
    (void) t;

    goim_log_warn("stop: %llu records still in flight after %lld s, "
                  "leaving them uncommitted",
                  (unsigned long long) job.inflight,
                  (long long) job.conf->stop_timeout);

    job_finish();
}


void
job_stop(void)
{
    if (!job.started) {
        job_rooms_free();               /* a failed start */
        job_streams_free();
        job_ensure_stop();
        return;
    }

    job.started = 0;

    /* armed before anything can finish the drain: job_finish() closes it */
    uv_timer_init(job.loop, &job.stop_timer);
    uv_timer_start(&job.stop_timer, job_stop_timeout,
                   (uint64_t) job.conf->stop_timeout * 1000, 0);

    job.draining = 1;

    /*
     * The steps below may finish the last records (deliveries waiting to
     * try again give up at once): the stop counts as one more record in
     * flight until they are all done, so that job_finish() runs after
     * them, never from inside them (before the rooms are flushed).
     */
    job.inflight++;

    job_kafka_stop();
    job_push_stop();
    job_rooms_flush();

    job.inflight--;

    goim_log_info("stop: %llu records in flight",
                  (unsigned long long) job.inflight);

    job_stop_check();
}
