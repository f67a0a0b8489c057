/*
 * goim-job's options: one table gives the config file keys, the
 * command-line flags (--comet-refresh for comet_refresh), defaults,
 * bounds, and which ones SIGHUP applies.  README.md documents the same
 * table.
 */

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "job.h"


const goim_opt_t  job_opts[] = {
    GOIM_DAEMON_OPTS("127.0.0.1:3129"),

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

    { "kafka_brokers", GOIM_OPT_STRING, offsetof(job_conf_t, kafka_brokers),
      "", 0, 0, 0,
      "Kafka bootstrap brokers host:port[,host:port]; empty: no Kafka" },

    { "kafka_topic", GOIM_OPT_STRING, offsetof(job_conf_t, kafka_topic),
      "goim-push-topic", 0, 0, 0,
      "Kafka topic of goim PushMsg records" },

    { "kafka_group", GOIM_OPT_STRING, offsetof(job_conf_t, kafka_group),
      "goim-push-group-job", 0, 0, 0,
      "Kafka consumer group" },

    { "kafka_receipts_topic", GOIM_OPT_STRING,
      offsetof(job_conf_t, kafka_receipts_topic),
      "", 0, 0, 0,
      "Kafka topic job writes ensure receipts to; empty: none" },

    { "max_inflight", GOIM_OPT_INT, offsetof(job_conf_t, max_inflight),
      "10000", 1, 10000000, 1,
      "pushes taken, unfinished: past it JOB_PUSH is refused, Kafka paused" },

    { "room_batch", GOIM_OPT_INT, offsetof(job_conf_t, room_batch),
      "20", 1, 10000, 1,
      "most room messages in one BroadcastRoom" },

    { "room_wait", GOIM_OPT_INT, offsetof(job_conf_t, room_wait),
      "200", 0, 10000, 1,
      "ms a busy room's next batch waits for company" },

    { "room_streams", GOIM_OPT_INT, offsetof(job_conf_t, room_streams),
      "100000", 1, 100000000, 1,
      "rooms whose message positions are kept (the least recent go)" },

    { "comet_window", GOIM_OPT_INT, offsetof(job_conf_t, comet_window),
      "32", 1, 100000, 1,
      "calls in flight per comet; more wait in job" },

    { "ensure_max", GOIM_OPT_INT, offsetof(job_conf_t, ensure_max),
      "100000", 1, 10000000, 1,
      "ensure messages pending at most; more are refused" },

    { "ensure_mailbox_max", GOIM_OPT_INT,
      offsetof(job_conf_t, ensure_mailbox_max),
      "1000", 1, 1000000, 1,
      "ensure messages pending for one mid at most" },

    { "ensure_retry", GOIM_OPT_INT, offsetof(job_conf_t, ensure_retry),
      "5000", 100, 3600000, 1,
      "ms before an unacknowledged ensure message is sent again" },

    { "ensure_retries", GOIM_OPT_INT, offsetof(job_conf_t, ensure_retries),
      "10", 1, 10000, 1,
      "sends to a connection before an ensure message is given up" },

    { "receipt_ttl", GOIM_OPT_INT, offsetof(job_conf_t, receipt_ttl),
      "3600", 1, 2592000, 1,
      "seconds a finished ensure message's receipt is kept" },

    { "receipts_max", GOIM_OPT_INT, offsetof(job_conf_t, receipts_max),
      "100000", 1, 10000000, 1,
      "finished receipts kept at most (the oldest go first)" },

    { "stop_timeout", GOIM_OPT_INT, offsetof(job_conf_t, stop_timeout),
      "10", 1, 3600, 1,
      "seconds SIGTERM waits for calls in flight" },

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

    if (jc->kafka_receipts_topic[0] != '\0' && jc->kafka_brokers[0] == '\0')
    {
        snprintf(err, errlen, "kafka_receipts_topic needs kafka_brokers");
        return -1;
    }

    if (jc->kafka_brokers[0] != '\0') {
        if (jc->kafka_topic[0] == '\0' || jc->kafka_group[0] == '\0') {
            snprintf(err, errlen, "kafka_topic and kafka_group must not be "
                     "empty when kafka_brokers is set");
            return -1;
        }

        if (strchr(jc->kafka_brokers, ':') == NULL
            || strchr(jc->kafka_brokers, ' ') != NULL)
        {
            snprintf(err, errlen, "kafka_brokers: \"%s\" needs "
                     "host:port[,host:port...]", jc->kafka_brokers);
            return -1;
        }
    }

    return 0;
}
