
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <dlfcn.h>
#include <librdkafka/rdkafka.h>

#include "ngx_goim_logic.h"


/*
 * Where push records go, one interface either way:
 *
 *   goim_logic_queue job=host:port;      (or goim_logic_job host:port)
 *       JOB_PUSH straight to job over RPC;
 *
 *   goim_logic_queue kafka=host:port[,host:port] [topic=NAME]
 *                    [job=host:port];
 *       goim v2's Kafka records: PushMsg protobuf values keyed as goim's
 *       logic keys them (PUSH: keys[0], ROOM: the room, BROADCAST: the
 *       operation in decimal), partitioned by librdkafka's fnv1a, which is
 *       sarama's hash partitioner; the ensure records (ENSURE, ONLINE,
 *       ACK, not in goim) are keyed by the mid in decimal, so a mid's
 *       records are in one partition, in order.  With job= as well,
 *       records still go to Kafka and job's RPC serves the queries
 *       (receipts).
 *
 * Each worker has its own producer.  librdkafka signals its main queue
 * through a pipe whose read end is an nginx connection, so delivery
 * reports are served from the worker's event loop and it never blocks.
 * A push is answered once every record it produced has its delivery
 * report; a failure, or no report within goim_logic_rpc_timeout (broker
 * down), answers 503.
 */


struct ngx_goim_logic_kafka_s {
    rd_kafka_t                *rk;
    rd_kafka_topic_t          *rkt;
    ngx_connection_t          *conn;       /* the pipe's read end */
    ngx_fd_t                   wfd;
    ngx_event_t                tick;
    ngx_queue_t                waiting;    /* local calls */
    ngx_rbtree_key_t           id;
    ngx_log_t                 *log;
    ngx_msec_t                 timeout;    /* goim_logic_rpc_timeout */
};

/* one push's records, the opaque of each */
typedef struct {
    ngx_goim_logic_kafka_t    *kafka;
    ngx_rbtree_key_t           id;
    ngx_uint_t                 remaining;
    const char                *error;
} ngx_goim_logic_kafka_batch_t;


static ngx_int_t ngx_goim_logic_kafka_push(ngx_goim_logic_kafka_t *k,
    Goim__PushMsg **msgs, size_t n, ngx_goim_logic_queue_done_pt done,
    void *data, ngx_goim_rpc_call_t **call);
static void ngx_goim_logic_kafka_read(ngx_event_t *rev);
static void ngx_goim_logic_kafka_tick(ngx_event_t *ev);
static void ngx_goim_logic_kafka_dr(rd_kafka_t *rk,
    const rd_kafka_message_t *m, void *opaque);
static void ngx_goim_logic_kafka_batch_done(
    ngx_goim_logic_kafka_batch_t *b);
static void ngx_goim_logic_kafka_log(const rd_kafka_t *rk, int level,
    const char *fac, const char *buf);


char *
ngx_goim_logic_queue_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_goim_logic_conf_t *lcf = conf;

    ngx_str_t   *value, v;
    ngx_uint_t   i;

    if (lcf->job || lcf->kafka_brokers.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "job=", 4) == 0) {
            v.data = value[i].data + 4;
            v.len = value[i].len - 4;

            lcf->job = ngx_pcalloc(cf->pool,
                                   sizeof(ngx_goim_rpc_upstream_t));
            if (lcf->job == NULL) {
                return NGX_CONF_ERROR;
            }

            if (ngx_goim_rpc_parse_upstream(cf, &v, lcf->job)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "kafka=", 6) == 0) {
            lcf->kafka_brokers.data = value[i].data + 6;
            lcf->kafka_brokers.len = value[i].len - 6;

            if (lcf->kafka_brokers.len == 0
                || ngx_strlchr(lcf->kafka_brokers.data,
                               lcf->kafka_brokers.data
                               + lcf->kafka_brokers.len, ':')
                   == NULL)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"kafka=\" needs host:port[,host:port]");
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "topic=", 6) == 0) {
            lcf->kafka_topic.data = value[i].data + 6;
            lcf->kafka_topic.len = value[i].len - 6;

            if (lcf->kafka_topic.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"topic=\" needs a name");
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (lcf->job == NULL && lcf->kafka_brokers.len == 0) {
        return "needs job=host:port or kafka=host:port";
    }

    if (lcf->kafka_brokers.len == 0 && lcf->kafka_topic.len) {
        return "takes topic= only with kafka=";
    }

    if (lcf->kafka_brokers.len && lcf->kafka_topic.len == 0) {
        ngx_str_set(&lcf->kafka_topic, "goim-push-topic");
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_goim_logic_kafka_set(rd_kafka_conf_t *conf, ngx_log_t *log,
    const char *name, const char *value)
{
    char  err[256];

    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err))
        != RD_KAFKA_CONF_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, log, 0, "goim kafka: %s: %s", name, err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_goim_logic_queue_init_process(ngx_cycle_t *cycle,
    ngx_goim_logic_worker_t *w)
{
    int                      fds[2];
    char                     err[256], timeout[NGX_INT_T_LEN + 1];
    u_char                  *brokers, *topic;
    rd_kafka_conf_t         *conf;
    ngx_connection_t        *c;
    ngx_goim_logic_conf_t   *lcf;
    ngx_goim_logic_kafka_t  *k;

    lcf = w->conf;

    if (lcf->kafka_brokers.len == 0) {
        return NGX_OK;
    }

    k = ngx_pcalloc(cycle->pool, sizeof(ngx_goim_logic_kafka_t));
    if (k == NULL) {
        return NGX_ERROR;
    }

    w->kafka = k;
    k->log = cycle->log;
    k->timeout = lcf->rpc_timeout;
    ngx_queue_init(&k->waiting);

    /*
     * librdkafka initializes process-wide state once (SASL, OpenSSL) and
     * never frees it; unloading it with this module at exit would make
     * that state unreachable (a leak under valgrind), so it stays loaded.
     */
    {
        Dl_info  info;

        if (dladdr((void *) rd_kafka_new, &info) && info.dli_fname) {
            (void) dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
        }
    }

    brokers = ngx_pnalloc(cycle->pool, lcf->kafka_brokers.len + 1);
    topic = ngx_pnalloc(cycle->pool, lcf->kafka_topic.len + 1);
    if (brokers == NULL || topic == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn(brokers, lcf->kafka_brokers.data, lcf->kafka_brokers.len + 1);
    ngx_cpystrn(topic, lcf->kafka_topic.data, lcf->kafka_topic.len + 1);
    ngx_snprintf((u_char *) timeout, sizeof(timeout), "%M%Z",
                 lcf->rpc_timeout);

    conf = rd_kafka_conf_new();

    if (ngx_goim_logic_kafka_set(conf, cycle->log, "bootstrap.servers",
                                 (char *) brokers) != NGX_OK
        || ngx_goim_logic_kafka_set(conf, cycle->log, "client.id",
                                    "ngx_goim_logic") != NGX_OK
        || ngx_goim_logic_kafka_set(conf, cycle->log, "acks", "all")
           != NGX_OK
        || ngx_goim_logic_kafka_set(conf, cycle->log, "message.timeout.ms",
                                    timeout) != NGX_OK
        || ngx_goim_logic_kafka_set(conf, cycle->log, "linger.ms", "1")
           != NGX_OK
        || ngx_goim_logic_kafka_set(conf, cycle->log,
                                    "reconnect.backoff.max.ms", "1000")
           != NGX_OK
        || ngx_goim_logic_kafka_set(conf, cycle->log, "partitioner", "fnv1a")
           != NGX_OK
        || ngx_goim_logic_kafka_set(conf, cycle->log, "log.queue", "true")
           != NGX_OK)
    {
        rd_kafka_conf_destroy(conf);
        return NGX_ERROR;
    }

    /* the callbacks find k as the handle's opaque */
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, ngx_goim_logic_kafka_dr);
    rd_kafka_conf_set_log_cb(conf, ngx_goim_logic_kafka_log);

    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (k->rk == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "goim kafka: %s", err);
        rd_kafka_conf_destroy(conf);
        return NGX_ERROR;
    }

    rd_kafka_set_log_queue(k->rk, NULL);

    k->rkt = rd_kafka_topic_new(k->rk, (char *) topic, NULL);
    if (k->rkt == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim kafka: topic \"%s\": %s", topic,
                      rd_kafka_err2str(rd_kafka_last_error()));
        return NGX_ERROR;
    }

    if (pipe(fds) != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "goim kafka: pipe() failed");
        return NGX_ERROR;
    }

    if (ngx_nonblocking(fds[0]) == -1 || ngx_nonblocking(fds[1]) == -1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      ngx_nonblocking_n " failed");
        close(fds[0]);
        close(fds[1]);
        return NGX_ERROR;
    }

    c = ngx_get_connection(fds[0], cycle->log);
    if (c == NULL) {
        close(fds[0]);
        close(fds[1]);
        return NGX_ERROR;
    }

    k->conn = c;
    k->wfd = fds[1];

    c->read->handler = ngx_goim_logic_kafka_read;
    c->read->log = cycle->log;
    c->data = k;

    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    {
        rd_kafka_queue_t  *q;

        q = rd_kafka_queue_get_main(k->rk);
        rd_kafka_queue_io_event_enable(q, fds[1], "1", 1);
        rd_kafka_queue_destroy(q);
    }

    /*
     * The pipe is written only when the queue goes from empty to not
     * empty: what librdkafka queued before (its first connection errors)
     * is served now, and a slow tick serves anything ever missed.
     */
    rd_kafka_poll(k->rk, 0);

    k->tick.handler = ngx_goim_logic_kafka_tick;
    k->tick.data = k->conn;            /* ngx_event_ident() wants one */
    k->tick.log = cycle->log;
    k->tick.cancelable = 1;
    ngx_add_timer(&k->tick, 1000);

    return NGX_OK;
}


void
ngx_goim_logic_queue_exit_process(ngx_goim_logic_worker_t *w)
{
    ngx_goim_logic_kafka_t  *k;

    k = w->kafka;

    if (k == NULL || k->rk == NULL) {
        return;
    }

    if (k->tick.timer_set) {
        ngx_del_timer(&k->tick);
    }

    /*
     * Records whose push was already answered or abandoned: never wait
     * for them at exit.  Their delivery reports are served here, while
     * the batches they point to still exist.
     */
    rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(k->rk, 0);

    if (k->rkt) {
        rd_kafka_topic_destroy(k->rkt);
        k->rkt = NULL;
    }

    rd_kafka_destroy(k->rk);
    k->rk = NULL;

    /* librdkafka's threads finish freeing after destroy returns */
    (void) rd_kafka_wait_destroyed(1000);

    if (k->conn) {
        ngx_close_connection(k->conn);
        k->conn = NULL;
        close(k->wfd);
    }
}


ngx_int_t
ngx_goim_logic_queue_push(ngx_goim_logic_worker_t *w, Goim__PushMsg **msgs,
    size_t n, ngx_goim_logic_queue_done_pt done, void *data,
    ngx_goim_rpc_call_t **call)
{
    *call = NULL;

    if (w->kafka && w->kafka->rk) {
        return ngx_goim_logic_kafka_push(w->kafka, msgs, n, done, data,
                                         call);
    }

    return ngx_goim_logic_queue_push_job(w, msgs, n, done, data, call);
}


ngx_int_t
ngx_goim_logic_queue_push_job(ngx_goim_logic_worker_t *w,
    Goim__PushMsg **msgs, size_t n, ngx_goim_logic_queue_done_pt done,
    void *data, ngx_goim_rpc_call_t **call)
{
    Goim__JobPushReq  req = GOIM__JOB_PUSH_REQ__INIT;

    *call = NULL;

    if (w->job_peer == NULL) {
        return NGX_DECLINED;
    }

    req.msgs = msgs;
    req.n_msgs = n;

    *call = ngx_goim_rpc_call(w->job_peer, GOIM__METHOD__JOB_PUSH,
                              &req.base, w->conf->rpc_timeout,
                              (ngx_goim_rpc_done_pt) done, data);

    return *call ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_goim_logic_kafka_push(ngx_goim_logic_kafka_t *k, Goim__PushMsg **msgs,
    size_t n, ngx_goim_logic_queue_done_pt done, void *data,
    ngx_goim_rpc_call_t **call)
{
    int                            rc;
    size_t                         i, len, klen;
    u_char                        *buf, *key, op[NGX_INT64_LEN];
    Goim__PushMsg                 *m;
    ngx_goim_logic_kafka_batch_t  *b;

    b = ngx_alloc(sizeof(ngx_goim_logic_kafka_batch_t), k->log);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->id = ++k->id;
    b->remaining = n + 1;              /* + 1 while producing */
    b->error = NULL;

    b->kafka = k;

    *call = ngx_goim_rpc_local_call(&k->waiting, b->id, k->timeout,
                                    k->log, (ngx_goim_rpc_done_pt) done,
                                    data);
    if (*call == NULL) {
        ngx_free(b);
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        m = msgs[i];

        switch (m->type) {

        case GOIM__PUSH_MSG__TYPE__PUSH:
            key = (u_char *) (m->n_keys ? m->keys[0] : "");
            klen = ngx_strlen(key);
            break;

        case GOIM__PUSH_MSG__TYPE__ROOM:
            key = (u_char *) m->room;
            klen = ngx_strlen(key);
            break;

        case GOIM__PUSH_MSG__TYPE__ENSURE:
        case GOIM__PUSH_MSG__TYPE__ONLINE:
        case GOIM__PUSH_MSG__TYPE__ACK:
            key = op;
            klen = ngx_sprintf(op, "%L", m->mid) - op;
            break;

        default:
            key = op;
            klen = ngx_sprintf(op, "%D", m->operation) - op;
            break;
        }

        len = goim__push_msg__get_packed_size(m);

        buf = ngx_alloc(len ? len : 1, k->log);
        if (buf == NULL) {
            b->remaining--;
            b->error = "out of memory";
            continue;
        }

        goim__push_msg__pack(m, buf);

        rc = rd_kafka_produce(k->rkt, RD_KAFKA_PARTITION_UA,
                              RD_KAFKA_MSG_F_FREE, buf, len, key, klen, b);
        if (rc != 0) {
            ngx_free(buf);
            b->remaining--;
            b->error = rd_kafka_err2str(rd_kafka_last_error());

            ngx_log_error(NGX_LOG_ERR, k->log, 0,
                          "goim kafka: produce failed: %s", b->error);
        }
    }

    ngx_goim_logic_kafka_batch_done(b);

    return NGX_OK;
}


/* b lost one reference: its push is answered once all are gone */
static void
ngx_goim_logic_kafka_batch_done(ngx_goim_logic_kafka_batch_t *b)
{
    ngx_goim_rpc_call_t  *call;

    if (--b->remaining) {
        return;
    }

    call = ngx_goim_rpc_local_find(&b->kafka->waiting, b->id);

    if (call) {
        /* never from inside ngx_goim_logic_queue_push() itself */
        if (b->error) {
            ngx_goim_rpc_local_finish_later(call,
                                        GOIM__ERROR_CODE__ERROR_UNAVAILABLE,
                                        b->error);

        } else {
            ngx_goim_rpc_local_finish_later(call, 0, NULL);
        }
    }

    ngx_free(b);
}


static void
ngx_goim_logic_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m,
    void *opaque)
{
    ngx_goim_logic_kafka_t        *k = opaque;
    ngx_goim_logic_kafka_batch_t  *b;

    b = m->_private;

    if (m->err) {
        b->error = rd_kafka_err2str(m->err);

        ngx_log_error(NGX_LOG_ERR, k->log, 0,
                      "goim kafka: record not delivered: %s", b->error);
    }

    ngx_goim_logic_kafka_batch_done(b);
}


static void
ngx_goim_logic_kafka_read(ngx_event_t *rev)
{
    u_char                   buf[64];
    ngx_connection_t        *c;
    ngx_goim_logic_kafka_t  *k;

    c = rev->data;
    k = c->data;

    while (read(c->fd, buf, sizeof(buf)) > 0) {
        /* void */
    }

    if (k->rk) {
        rd_kafka_poll(k->rk, 0);
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, k->log, 0,
                      "goim kafka: cannot watch the event pipe");
    }
}


static void
ngx_goim_logic_kafka_tick(ngx_event_t *ev)
{
    ngx_connection_t        *c;
    ngx_goim_logic_kafka_t  *k;

    c = ev->data;
    k = c->data;

    if (k->rk) {
        rd_kafka_poll(k->rk, 0);
        ngx_add_timer(ev, 1000);
    }
}


static void
ngx_goim_logic_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_uint_t               lvl;
    ngx_goim_logic_kafka_t  *k;

    k = rd_kafka_opaque(rk);

    lvl = level <= 3 ? NGX_LOG_ERR : level <= 4 ? NGX_LOG_WARN
          : level <= 6 ? NGX_LOG_INFO : NGX_LOG_DEBUG;

    ngx_log_error(lvl, k->log, 0, "goim kafka: %s: %s",
                  fac, buf);
}
