/*
 * goim-job's Kafka source: a consumer group member (kafka_brokers,
 * kafka_topic, kafka_group) reading goim v2 PushMsg records, served on
 * job's libuv loop.
 *
 * librdkafka signals its consumer queue through a pipe
 * (rd_kafka_queue_io_event_enable) that a uv_poll watches; the queue is
 * then drained without blocking.  Logs, errors and rebalances come through
 * the same queue, so every callback runs on the loop thread.  A timer
 * drains it too (a safety net) and stores offsets.
 *
 * At-least-once: auto commit is on but offsets are stored by job only
 * (enable.auto.offset.store=false), and only up to the first record not
 * yet acknowledged by its comets (offsets.c).  When more than
 * max_inflight records are unfinished the partitions are paused (their
 * prefetched messages are dropped by librdkafka and fetched again on
 * resume), and resumed at half of it: memory stays bounded, nothing is
 * dropped.
 */

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goim_uv_log.h"
#include "job.h"
#include "offsets.h"


#define JOB_KAFKA_TICK    100       /* ms */
#define JOB_KAFKA_BATCH   4096      /* messages per drain */


struct job_kafka_s {
    rd_kafka_t             *rk;
    rd_kafka_queue_t       *queue;
    int                     fds[2];
    uv_poll_t               poll;
    uv_timer_t              timer;
    job_part_t            **parts;     /* by partition number */
    size_t                  nparts;
    char                    last_error[256];
    unsigned                paused:1;
    unsigned                stopped:1;
    unsigned                handles:1;
};

typedef struct {
    job_rec_t               rec;
    job_off_t              *off;
    Goim__PushMsg          *msg;
} job_krec_t;


static job_kafka_t  job_kafka;


static job_part_t *
job_kafka_part(int32_t partition)
{
    size_t        n;
    job_part_t  **parts;
    job_kafka_t  *k;

    k = &job_kafka;

    if (partition < 0) {
        return NULL;
    }

    if ((size_t) partition >= k->nparts) {
        n = (size_t) partition + 1;

        parts = realloc(k->parts, n * sizeof(job_part_t *));
        if (parts == NULL) {
            return NULL;
        }

        memset(parts + k->nparts, 0, (n - k->nparts) * sizeof(job_part_t *));
        k->parts = parts;
        k->nparts = n;
    }

    if (k->parts[partition] == NULL) {
        k->parts[partition] = malloc(sizeof(job_part_t));
        if (k->parts[partition] == NULL) {
            return NULL;
        }

        job_part_init(k->parts[partition], partition);
    }

    return k->parts[partition];
}


/* Hands the offsets that moved to librdkafka, which commits them. */
static void
job_kafka_store(void)
{
    size_t                             i, n;
    job_part_t                        *p;
    job_kafka_t                       *k;
    rd_kafka_resp_err_t                err;
    rd_kafka_topic_partition_list_t   *list;

    k = &job_kafka;
    n = 0;

    for (i = 0; i < k->nparts; i++) {
        if (k->parts[i] && k->parts[i]->dirty) {
            n++;
        }
    }

    if (n == 0 || k->rk == NULL) {
        return;
    }

    list = rd_kafka_topic_partition_list_new((int) n);

    for (i = 0; i < k->nparts; i++) {
        p = k->parts[i];

        if (p && p->dirty) {
            rd_kafka_topic_partition_list_add(list, job.conf->kafka_topic,
                                              p->partition)->offset = p->next;
            p->dirty = 0;
        }
    }

    err = rd_kafka_offsets_store(k->rk, list);
    if (err && err != RD_KAFKA_RESP_ERR__STATE) {
        goim_log_warn("kafka: storing offsets: %s", rd_kafka_err2str(err));
    }

    job.stats.kafka_commits++;
    rd_kafka_topic_partition_list_destroy(list);
}


static void
job_kafka_pause(int pause)
{
    job_kafka_t                       *k;
    rd_kafka_topic_partition_list_t   *list;

    k = &job_kafka;

    if (rd_kafka_assignment(k->rk, &list) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }

    if (pause) {
        rd_kafka_pause_partitions(k->rk, list);

    } else {
        rd_kafka_resume_partitions(k->rk, list);
    }

    rd_kafka_topic_partition_list_destroy(list);
}


void
job_kafka_update(void)
{
    job_kafka_t  *k;

    k = &job_kafka;

    if (k->rk == NULL || k->stopped) {
        return;
    }

    if (!k->paused && job.inflight >= (uint64_t) job.conf->max_inflight) {
        k->paused = 1;
        job.stats.kafka_pauses++;
        goim_log_info("kafka: %llu records in flight, pausing",
                      (unsigned long long) job.inflight);
        job_kafka_pause(1);

    } else if (k->paused
               && job.inflight <= (uint64_t) job.conf->max_inflight / 2)
    {
        k->paused = 0;
        goim_log_info("kafka: resuming");
        job_kafka_pause(0);
    }
}


static void
job_krec_done(job_rec_t *rec)
{
    job_krec_t  *kr;

    kr = (job_krec_t *) rec;

    if (rec->failed) {
        job_off_abandon(kr->off);

    } else {
        job_off_done(kr->off);
        job.stats.kafka_done++;
    }

    goim__push_msg__free_unpacked(kr->msg, NULL);
    free(kr);

    job.inflight--;
    job_kafka_update();
    job_stop_check();
}


static void
job_kafka_message(rd_kafka_message_t *m)
{
    job_off_t      *off;
    job_part_t     *p;
    job_krec_t     *kr;
    Goim__PushMsg  *msg;

    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            job.stats.kafka_errors++;
            goim_log_warn("kafka: %s", rd_kafka_message_errstr(m));
        }

        return;
    }

    if (job.draining) {
        return;                       /* not stored: taken again later */
    }

    job.stats.kafka_records++;

    p = job_kafka_part(m->partition);
    off = p ? job_off_add(p, m->offset) : NULL;

    if (off == NULL) {
        goim_log_error("kafka: out of memory");
        return;                       /* never stored past it */
    }

    msg = goim__push_msg__unpack(NULL, m->len, m->payload);

    if (msg == NULL) {
        job.stats.kafka_bad++;
        goim_log_warn("kafka: skipping %zu bytes at %d/%lld: not a PushMsg",
                      m->len, (int) m->partition, (long long) m->offset);
        job_off_done(off);
        return;
    }

    kr = calloc(1, sizeof(job_krec_t));
    if (kr == NULL) {
        goim_log_error("kafka: out of memory");
        goim__push_msg__free_unpacked(msg, NULL);
        job_off_abandon(off);
        return;
    }

    kr->off = off;
    kr->msg = msg;
    kr->rec.done = job_krec_done;
    kr->rec.pending = 1;
    job.inflight++;

    job_route(&kr->rec, msg);
    job_rec_release(&kr->rec, 0);
}


static void
job_kafka_drain(void)
{
    int                   n;
    char                  buf[256];
    job_kafka_t          *k;
    rd_kafka_message_t   *m;

    k = &job_kafka;

    while (read(k->fds[0], buf, sizeof(buf)) > 0) {
        /* void */
    }

    for (n = 0; n < JOB_KAFKA_BATCH && k->rk; n++) {
        m = rd_kafka_consumer_poll(k->rk, 0);
        if (m == NULL) {
            break;
        }

        job_kafka_message(m);
        rd_kafka_message_destroy(m);
    }

    job_kafka_update();
}


static void
job_kafka_poll_cb(uv_poll_t *h, int status, int events)
{
    (void) h;
    (void) status;
    (void) events;

    job_kafka_drain();
}


static void
job_kafka_timer_cb(uv_timer_t *t)
{
    (void) t;

    job_kafka_drain();
    job_kafka_store();
}


static void
job_kafka_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
    rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    int          i;
    job_part_t  *p;
    job_kafka_t *k;

    (void) opaque;

    k = &job_kafka;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (i = 0; i < parts->cnt; i++) {
            p = job_kafka_part(parts->elems[i].partition);
            if (p) {
                job_part_detach(p);
                p->next = -1;
            }
        }

        goim_log_info("kafka: %d partitions of %s assigned", parts->cnt,
                      job.conf->kafka_topic);

        rd_kafka_assign(rk, parts);

        if (k->paused) {
            rd_kafka_pause_partitions(rk, parts);
        }

        return;
    }

    /* revoked: what is acknowledged is committed now, the rest later by
     * whoever gets these partitions (duplicates, never a loss) */
    job_kafka_store();

    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        goim_log_warn("kafka: rebalance: %s", rd_kafka_err2str(err));
    }

    for (i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition >= 0
            && (size_t) parts->elems[i].partition < k->nparts
            && k->parts[parts->elems[i].partition])
        {
            job_part_detach(k->parts[parts->elems[i].partition]);
        }
    }

    goim_log_info("kafka: %d partitions revoked", parts->cnt);

    rd_kafka_assign(rk, NULL);
}


static void
job_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    job_kafka_t  *k;

    (void) rk;
    (void) opaque;

    k = &job_kafka;
    job.stats.kafka_errors++;

    /* one line per change, not one per retry */
    if (strcmp(k->last_error, reason) != 0) {
        snprintf(k->last_error, sizeof(k->last_error), "%s", reason);
        goim_log_warn("kafka: %s (%s)", reason,
                      rd_kafka_err2name((rd_kafka_resp_err_t) err));
    }
}


static void
job_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    (void) rk;

    if (level <= 3) {
        goim_log_error("kafka: %s: %s", fac, buf);

    } else if (level <= 5) {
        goim_log_info("kafka: %s: %s", fac, buf);

    } else {
        goim_log_debug("kafka: %s: %s", fac, buf);
    }
}


static int
job_kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char  err[256];

    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err))
        != RD_KAFKA_CONF_OK)
    {
        goim_log_error("kafka: %s: %s", name, err);
        return -1;
    }

    return 0;
}


int
job_kafka_start(void)
{
    int                               uvrc;
    char                              err[512];
    job_kafka_t                      *k;
    rd_kafka_conf_t                  *conf;
    rd_kafka_resp_err_t               rc;
    rd_kafka_topic_partition_list_t  *topics;

    k = &job_kafka;
    k->fds[0] = -1;
    k->fds[1] = -1;

    if (job.conf->kafka_brokers[0] == '\0') {
        return 0;
    }

    conf = rd_kafka_conf_new();

    if (job_kafka_set(conf, "bootstrap.servers", job.conf->kafka_brokers)
        || job_kafka_set(conf, "group.id", job.conf->kafka_group)
        || job_kafka_set(conf, "client.id", JOB_NAME)
        || job_kafka_set(conf, "enable.auto.commit", "true")
        || job_kafka_set(conf, "auto.commit.interval.ms", "500")
        || job_kafka_set(conf, "enable.auto.offset.store", "false")
        || job_kafka_set(conf, "auto.offset.reset", "earliest")
        || job_kafka_set(conf, "enable.partition.eof", "false")
        || job_kafka_set(conf, "session.timeout.ms", "6000")
        || job_kafka_set(conf, "heartbeat.interval.ms", "1000")
        || job_kafka_set(conf, "queued.max.messages.kbytes", "16384")
        || job_kafka_set(conf, "fetch.wait.max.ms", "50")
        || job_kafka_set(conf, "reconnect.backoff.max.ms", "1000")
        || job_kafka_set(conf, "log.queue", "true"))
    {
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    rd_kafka_conf_set_rebalance_cb(conf, job_kafka_rebalance);
    rd_kafka_conf_set_error_cb(conf, job_kafka_error);
    rd_kafka_conf_set_log_cb(conf, job_kafka_log);

    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (k->rk == NULL) {
        goim_log_error("kafka: %s", err);
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    /* logs, errors and rebalances all come through the consumer queue */
    rd_kafka_set_log_queue(k->rk, NULL);
    rd_kafka_poll_set_consumer(k->rk);

    k->queue = rd_kafka_queue_get_consumer(k->rk);

    if (pipe2(k->fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        goim_log_error("kafka: pipe: %s", strerror(errno));
        return -1;
    }

    rd_kafka_queue_io_event_enable(k->queue, k->fds[1], "1", 1);

    /* both handles or neither: job_kafka_stop() closes them together */
    uvrc = uv_poll_init(job.loop, &k->poll, k->fds[0]);
    if (uvrc != 0) {
        goim_log_error("kafka: watching the consumer queue: %s",
                       uv_strerror(uvrc));
        return -1;
    }

    uv_timer_init(job.loop, &k->timer);
    k->handles = 1;

    uvrc = uv_poll_start(&k->poll, UV_READABLE, job_kafka_poll_cb);
    if (uvrc != 0) {
        goim_log_error("kafka: watching the consumer queue: %s",
                       uv_strerror(uvrc));
        return -1;
    }

    uv_timer_start(&k->timer, job_kafka_timer_cb, JOB_KAFKA_TICK,
                   JOB_KAFKA_TICK);

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, job.conf->kafka_topic,
                                      RD_KAFKA_PARTITION_UA);
    rc = rd_kafka_subscribe(k->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        goim_log_error("kafka: subscribe to %s: %s", job.conf->kafka_topic,
                       rd_kafka_err2str(rc));
        return -1;
    }

    job.kafka = k;

    goim_log_info("kafka: consuming %s at %s as group %s",
                  job.conf->kafka_topic, job.conf->kafka_brokers,
                  job.conf->kafka_group);

    return 0;
}


void
job_kafka_stop(void)
{
    /* records still arriving are left uncommitted: taken again later */
    job_kafka.stopped = 1;
}


void
job_kafka_close(void)
{
    size_t        i;
    job_kafka_t  *k;

    k = &job_kafka;

    if (k->rk) {
        job_kafka_store();

        /* commits the stored offsets and leaves the group (blocks) */
        rd_kafka_consumer_close(k->rk);

        if (k->queue) {
            rd_kafka_queue_destroy(k->queue);
            k->queue = NULL;
        }

        rd_kafka_destroy(k->rk);
        k->rk = NULL;
    }

    if (k->handles) {
        k->handles = 0;
        uv_poll_stop(&k->poll);
        uv_close((uv_handle_t *) &k->poll, NULL);
        uv_close((uv_handle_t *) &k->timer, NULL);
    }

    if (k->fds[0] != -1) {
        close(k->fds[0]);
        close(k->fds[1]);
        k->fds[0] = -1;
        k->fds[1] = -1;
    }

    for (i = 0; i < k->nparts; i++) {
        if (k->parts[i]) {
            job_part_detach(k->parts[i]);
            free(k->parts[i]);
        }
    }

    free(k->parts);
    k->parts = NULL;
    k->nparts = 0;
    job.kafka = NULL;
}


int
job_kafka_paused(void)
{
    return job_kafka.paused;
}
