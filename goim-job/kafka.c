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
 *
 * Ensure records (ENSURE, ONLINE, ACK; ensure.c) are taken at once: an
 * ENSURE record's offset stays uncommitted while its message is pending
 * (the commit point stays at the oldest), ONLINE and ACK are done when
 * read.  An ENSURE record that does not fit (ensure_max,
 * ensure_mailbox_max) is deferred, not dropped, and the partition is not
 * paused (the ACK records that make room are behind it): a hold keeps
 * the commit point before it, every later ENSURE record of the partition
 * is deferred too (a mid's messages keep their order), and once there is
 * room the partition is read again from the hold (a replay: records
 * below the highest offset read are read again; only the ENSURE records
 * not known yet, and the ONLINE and ACK records, count).
 *
 * With kafka_receipts_topic a producer writes a Receipt record (keyed by
 * the message id) when an ensure message is finished; its ENSURE record
 * is committable only once that is written, so receipts are at least
 * once too.
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
    rd_kafka_t             *prod;      /* receipts, or NULL */
    rd_kafka_topic_t       *receipts;
    rd_kafka_queue_t       *queue;
    int                     fds[2];
    uv_poll_t               poll;
    uv_timer_t              timer;
    job_part_t            **parts;     /* by partition number */
    size_t                  nparts;
    char                    last_error[256];
    unsigned                receipt_failing:1;
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


/*
 * An ENSURE record of p that does not fit: the first one gets a hold at
 * its offset (just before at, its record, done now; in a replay, where
 * the record has none, in its place after the replay's last one), the
 * later ones wait behind it.  0, or -1 when it cannot wait (no memory for
 * the hold): then it is taken over the bounds.
 */
static int
job_kafka_defer(job_part_t *p, job_off_t *at, const Goim__PushMsg *msg,
    int64_t offset, int replay)
{
    job_off_t  *hold;

    if (!p->deferring) {
        if (replay) {
            hold = job_off_insert(p, offset,
                                  p->cursor ? p->cursor : p->replay_hold);
            p->cursor = hold ? hold : p->cursor;

        } else {
            hold = job_off_hold(p, at);
        }

        if (hold == NULL) {
            goim_log_error("kafka: out of memory deferring the ENSURE record "
                           "at %d/%lld: taken over the bounds",
                           (int) p->partition, (long long) offset);
            return -1;
        }

        p->hold = hold;
        p->hold_mid = msg->mid;
        p->deferring = 1;

        goim_log_info("kafka: partition %d: ensure messages deferred from "
                      "offset %lld on (mid %lld; %zu pending, ensure_max "
                      "%lld, ensure_mailbox_max %lld)", (int) p->partition,
                      (long long) offset, (long long) msg->mid,
                      job_ensure_pending(), (long long) job.conf->ensure_max,
                      (long long) job.conf->ensure_mailbox_max);
    }

    job.stats.ensure_deferred++;

    if (!replay) {
        job_off_done(at);               /* the hold keeps the commit point */
    }

    return 0;
}


/* the replay of p read what it had to: its hold lets go */
static void
job_kafka_replay_over(job_part_t *p)
{
    job_off_t  *hold;

    hold = p->replay_hold;
    p->replay_hold = NULL;
    p->cursor = NULL;
    p->replay_end = -1;

    if (hold) {
        job_off_done(hold);
    }
}


/* an ensure record (ENSURE, ONLINE, ACK): off is done here or kept */
static void
job_kafka_ensure(job_part_t *p, job_off_t *off, const Goim__PushMsg *msg,
    int64_t offset, int replay)
{
    switch (msg->type) {

    case GOIM__PUSH_MSG__TYPE__ENSURE:
        if (job_ensure_known(msg, replay ? NULL : off)) {
            return;
        }

        if ((p->deferring || !job_ensure_room(msg->mid, 0))
            && job_kafka_defer(p, off, msg, offset, replay) == 0)
        {
            return;
        }

        if (replay) {
            /* read again: in its place behind the replay's hold */
            off = job_off_insert(p, offset,
                                 p->cursor ? p->cursor : p->replay_hold);

            if (off == NULL) {
                goim_log_error("kafka: out of memory: the ENSURE record at "
                               "%d/%lld is taken without holding its offset",
                               (int) p->partition, (long long) offset);

            } else {
                p->cursor = off;
            }
        }

        if (job_ensure_take_record(msg, off, p->partition, offset) != 0
            && off)
        {
            job_off_done(off);
        }

        return;

    case GOIM__PUSH_MSG__TYPE__ONLINE:
        /*
         * Read again too: the messages a replay takes may be for a mid
         * whose mailbox, and so its sessions, were gone meanwhile (a
         * connection that is gone since: its comet says so, and job
         * forgets it).
         */
        job_ensure_online(msg);
        break;

    default:
        /* an ACK read again may finish a message deferred before it */
        job_ensure_ack(msg);
        break;
    }

    if (!replay) {
        job_off_done(off);
    }
}


/* a record read again after a seek (offset below p->high) */
static void
job_kafka_replayed(job_part_t *p, rd_kafka_message_t *m)
{
    Goim__PushMsg  *msg;

    msg = goim__push_msg__unpack(NULL, m->len, m->payload);

    if (msg && msg->type >= GOIM__PUSH_MSG__TYPE__ENSURE
        && msg->type <= GOIM__PUSH_MSG__TYPE__ACK)
    {
        job_kafka_ensure(p, NULL, msg, m->offset, 1);
    }

    if (msg) {
        goim__push_msg__free_unpacked(msg, NULL);
    }

    if (p->replay_hold && m->offset + 1 >= p->replay_end) {
        job_kafka_replay_over(p);
    }
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

    p = job_kafka_part(m->partition);

    if (p && p->high >= 0 && m->offset < p->high) {
        job_kafka_replayed(p, m);
        return;
    }

    job.stats.kafka_records++;

    off = p ? job_off_add(p, m->offset) : NULL;

    if (off == NULL) {
        goim_log_error("kafka: out of memory");
        return;                       /* never stored past it */
    }

    if (p->replay_hold) {
        /* past everything the replay had to read again */
        job_kafka_replay_over(p);
    }

    msg = goim__push_msg__unpack(NULL, m->len, m->payload);

    if (msg == NULL) {
        job.stats.kafka_bad++;
        goim_log_warn("kafka: skipping %zu bytes at %d/%lld: not a PushMsg",
                      m->len, (int) m->partition, (long long) m->offset);
        job_off_done(off);
        return;
    }

    if (msg->type >= GOIM__PUSH_MSG__TYPE__ENSURE
        && msg->type <= GOIM__PUSH_MSG__TYPE__ACK)
    {
        job_kafka_ensure(p, off, msg, m->offset, 0);
        goim__push_msg__free_unpacked(msg, NULL);
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


/*
 * Partitions whose ensure records were deferred are read again from
 * their hold once the first mid deferred fits (with slack).
 */
static void
job_kafka_replays(void)
{
    size_t                             i;
    job_part_t                        *p;
    job_kafka_t                       *k;
    rd_kafka_error_t                  *error;
    rd_kafka_topic_partition_list_t   *list;

    k = &job_kafka;

    for (i = 0; i < k->nparts; i++) {
        p = k->parts[i];

        if (p == NULL || !p->deferring || p->replay_hold
            || !job_ensure_room(p->hold_mid, 1))
        {
            continue;
        }

        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, job.conf->kafka_topic,
                                          p->partition)->offset
            = p->hold->offset;

        error = rd_kafka_seek_partitions(k->rk, list, 0);
        rd_kafka_topic_partition_list_destroy(list);

        if (error) {
            goim_log_warn("kafka: partition %d: seeking to %lld: %s",
                          (int) p->partition, (long long) p->hold->offset,
                          rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            continue;
        }

        job.stats.ensure_replays++;

        goim_log_info("kafka: partition %d: room for ensure messages again, "
                      "reading it again from offset %lld to %lld",
                      (int) p->partition, (long long) p->hold->offset,
                      (long long) p->high);

        p->replay_hold = p->hold;
        p->cursor = p->hold;
        p->replay_end = p->high;
        p->hold = NULL;
        p->deferring = 0;
    }
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

    if (job_kafka.prod) {
        rd_kafka_poll(job_kafka.prod, 0);   /* receipts' delivery reports */
    }

    if (!job_kafka.stopped) {
        job_kafka_replays();
    }

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


/* a receipt record's delivery report: its ENSURE record is done */
static void
job_kafka_receipt_dr(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque)
{
    job_off_t    *off;
    job_kafka_t  *k;

    (void) rk;
    (void) opaque;

    k = &job_kafka;
    off = m->_private;

    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        job.stats.receipts_written++;

        if (k->receipt_failing) {
            k->receipt_failing = 0;
            goim_log_info("kafka: receipt records are written again");
        }

        if (off) {
            job_off_done(off);
        }

        return;
    }

    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE
        || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
    {
        /* job stops: its ENSURE record stays uncommitted, read again */
        if (off) {
            job_off_abandon(off);
        }

        return;
    }

    job.stats.receipts_failed++;

    if (!k->receipt_failing) {
        k->receipt_failing = 1;
        goim_log_error("kafka: a receipt record to %s was not written: %s "
                       "(counted in receipts_failed; logged once until one "
                       "is written)", job.conf->kafka_receipts_topic,
                       rd_kafka_err2str(m->err));
    }

    if (off) {
        job_off_done(off);
    }
}


static int
job_kafka_receipts_start(void)
{
    char              err[512];
    job_kafka_t      *k;
    rd_kafka_conf_t  *conf;

    k = &job_kafka;

    if (job.conf->kafka_receipts_topic[0] == '\0') {
        return 0;
    }

    conf = rd_kafka_conf_new();

    /*
     * Never given up (message.timeout.ms 0): a receipt waits for the
     * broker, bounded by librdkafka's queue; its ENSURE record stays
     * uncommitted meanwhile.
     */
    if (job_kafka_set(conf, "bootstrap.servers", job.conf->kafka_brokers)
        || job_kafka_set(conf, "client.id", JOB_NAME "-receipts")
        || job_kafka_set(conf, "acks", "all")
        || job_kafka_set(conf, "message.timeout.ms", "0")
        || job_kafka_set(conf, "linger.ms", "5")
        || job_kafka_set(conf, "queue.buffering.max.messages", "100000")
        || job_kafka_set(conf, "queue.buffering.max.kbytes", "65536")
        || job_kafka_set(conf, "partitioner", "fnv1a")
        || job_kafka_set(conf, "reconnect.backoff.max.ms", "1000"))
    {
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    rd_kafka_conf_set_dr_msg_cb(conf, job_kafka_receipt_dr);
    rd_kafka_conf_set_error_cb(conf, job_kafka_error);
    rd_kafka_conf_set_log_cb(conf, job_kafka_log);

    k->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (k->prod == NULL) {
        goim_log_error("kafka: receipts producer: %s", err);
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    k->receipts = rd_kafka_topic_new(k->prod, job.conf->kafka_receipts_topic,
                                     NULL);
    if (k->receipts == NULL) {
        goim_log_error("kafka: topic %s: %s", job.conf->kafka_receipts_topic,
                       rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }

    goim_log_info("kafka: writing ensure receipts to %s",
                  job.conf->kafka_receipts_topic);

    return 0;
}


int
job_kafka_receipts(void)
{
    return job_kafka.receipts != NULL;
}


int
job_kafka_receipt(const Goim__Receipt *rc, job_off_t *off)
{
    size_t        len;
    uint8_t      *buf;
    job_kafka_t  *k;

    k = &job_kafka;

    if (k->receipts == NULL) {
        return -1;
    }

    len = goim__receipt__get_packed_size(rc);

    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        job.stats.receipts_failed++;
        goim_log_error("kafka: receipt of %s: out of memory", rc->id);
        return -1;
    }

    goim__receipt__pack(rc, buf);

    if (rd_kafka_produce(k->receipts, RD_KAFKA_PARTITION_UA,
                         RD_KAFKA_MSG_F_FREE, buf, len, rc->id,
                         strlen(rc->id), off)
        != 0)
    {
        free(buf);
        job.stats.receipts_failed++;

        if (!k->receipt_failing) {
            k->receipt_failing = 1;
            goim_log_error("kafka: the receipt record of %s was not "
                           "written: %s (counted in receipts_failed; logged "
                           "once until one is written)", rc->id,
                           rd_kafka_err2str(rd_kafka_last_error()));
        }

        return -1;
    }

    return 0;
}


/* what is still unwritten gets stop_timeout's first seconds, no more */
static void
job_kafka_receipts_close(void)
{
    job_kafka_t  *k;

    k = &job_kafka;

    if (k->prod == NULL) {
        return;
    }

    if (rd_kafka_flush(k->prod, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        goim_log_warn("kafka: %d receipt records not written at stop (their "
                      "ENSURE records stay uncommitted)",
                      rd_kafka_outq_len(k->prod));
    }

    rd_kafka_purge(k->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(k->prod, 0);

    if (k->receipts) {
        rd_kafka_topic_destroy(k->receipts);
        k->receipts = NULL;
    }

    rd_kafka_destroy(k->prod);
    k->prod = NULL;
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

    return job_kafka_receipts_start();
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

    /* the receipts written let their ENSURE records be committed */
    job_kafka_receipts_close();

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
