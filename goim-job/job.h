/*
 * goim-job: the one server struct and the configuration, shared by its
 * files (main.c: main(), server.c: life cycle, config.c: options,
 * comets.c: the comet directory and its clients, push.c: routing PushMsgs
 * to comets with retries, room.c: the per-room aggregator, kafka.c: the
 * Kafka consumer, offsets.c: at-least-once offset tracking, ensure.c:
 * messages kept until a client acknowledges them, rpc.c: the methods it
 * serves).
 */

#ifndef JOB_H
#define JOB_H

#include <stdint.h>
#include <uv.h>

#include "goim_uv_daemon.h"
#include "goim_uv_queue.h"

#define JOB_NAME  "goim-job"

typedef struct {
    goim_daemon_conf_t   base;            /* listen, log_level, ... */
    char                *router;          /* host:port */
    int64_t              comet_refresh;   /* s */
    int64_t              comet_timeout;   /* s */
    int64_t              router_timeout;  /* s */
    char                *kafka_brokers;   /* "" : no Kafka source */
    char                *kafka_topic;
    char                *kafka_group;
    char                *kafka_receipts_topic;  /* "": no receipt records */
    int64_t              max_inflight;    /* records, then pause */
    int64_t              room_batch;      /* messages per BroadcastRoom */
    int64_t              room_wait;       /* ms */
    int64_t              room_streams;    /* positions kept for */
    int64_t              stop_timeout;    /* s */
    int64_t              comet_window;    /* calls in flight per comet */
    int64_t              ensure_max;      /* ensure messages pending */
    int64_t              ensure_mailbox_max;  /* ... for one mid */
    int64_t              ensure_retry;    /* ms between two sends */
    int64_t              ensure_retries;  /* sends before giving up */
    int64_t              receipt_ttl;     /* s a finished one is kept */
    int64_t              receipts_max;    /* finished ones kept */
} job_conf_t;

/* A comet as router lists it, and the client job pushes to it with. */
typedef struct {
    goim_queue_t         queue;           /* in job.comets */
    char                *id;
    char                *push_addr;
    goim_rpc_client_t   *client;
    goim_queue_t         waiting;         /* deliveries over the window */
    unsigned             inflight;        /* calls on client now */
    unsigned             seen:1;          /* in the latest list */
} job_comet_t;

/*
 * Something waiting for a comet list fetched after it started waiting
 * (a push naming a comet job does not know yet).
 */
typedef struct job_wait_s  job_wait_t;

struct job_wait_s {
    goim_queue_t         queue;
    void               (*ready)(job_wait_t *w);
};

/*
 * A record to deliver (a Kafka message, or a JOB_PUSH request's messages):
 * pending counts the sends still serving it; done() runs once they all
 * finished, with failed > 0 when any gave up (only when job stops: a
 * failing comet call is retried while the comet is listed).
 */
typedef struct job_rec_s  job_rec_t;

struct job_rec_s {
    unsigned             pending;
    unsigned             failed;
    void               (*done)(job_rec_t *rec);
};

typedef struct {
    uint64_t             requests;        /* JOB_PUSH calls */
    uint64_t             msgs;            /* PushMsgs in them */
    uint64_t             sent;            /* comet calls answered OK */
    uint64_t             failed;          /* comet calls that failed */
    uint64_t             dropped;         /* PushMsgs with no comet to go to */
    uint64_t             keys_delivered;  /* as comets reported */
    uint64_t             keys_dropped;    /* as comets reported */
    uint64_t             refreshes;       /* comet lists fetched */
    uint64_t             refresh_failures;
    uint64_t             waiting;         /* PushMsgs waiting for a list */
    uint64_t             retries;         /* comet calls tried again */
    uint64_t             gone;            /* calls given up: comet left */
    uint64_t             windowed;        /* deliveries that had to wait */
    uint64_t             room_msgs;       /* ROOM messages aggregated */
    uint64_t             room_batches;    /* BroadcastRooms sent */
    uint64_t             streams_evicted; /* positions forgotten */
    uint64_t             push_refused;    /* JOB_PUSHes: full, stopping */
    uint64_t             push_failed;     /* ... taken, then given up */
    uint64_t             kafka_records;   /* records consumed */
    uint64_t             kafka_bad;       /* records skipped: undecodable */
    uint64_t             kafka_done;      /* records finished */
    uint64_t             kafka_commits;   /* offset stores */
    uint64_t             kafka_pauses;    /* times consumption paused */
    uint64_t             kafka_errors;    /* errors librdkafka reported */
    uint64_t             ensure_msgs;     /* ENSURE records taken */
    uint64_t             ensure_refused;  /* JOB_PUSHes refused: full */
    uint64_t             ensure_sends;    /* op-19 calls to a comet */
    uint64_t             ensure_plain;    /* plain copies to goim clients */
    uint64_t             ensure_resends;  /* messages sent again */
    uint64_t             ensure_acked;
    uint64_t             ensure_acks_unknown;  /* ids not pending */
    uint64_t             ensure_expired_ttl;
    uint64_t             ensure_expired_retries;
    uint64_t             ensure_online;   /* ONLINE records */
    uint64_t             ensure_sessions_gone;  /* comet lacked the key */
    uint64_t             ensure_sessions_evicted;  /* past the bound */
    uint64_t             ensure_known;    /* ENSURE records seen before */
    uint64_t             ensure_deferred; /* ENSURE records not taken yet */
    uint64_t             ensure_replays;  /* partitions read again */
    uint64_t             receipts_written;  /* receipt records */
    uint64_t             receipts_failed;   /* ... not written */
} job_stats_t;

typedef struct job_kafka_s  job_kafka_t;
struct job_off_s;                     /* offsets.h */

typedef struct {
    job_conf_t          *conf;
    uv_loop_t           *loop;
    goim_rpc_client_t   *router;
    uv_timer_t           refresh_timer;
    goim_rpc_call_t     *refresh_call;    /* in flight */
    goim_queue_t         wait_next;       /* for a refresh not started */
    goim_queue_t         wait_inflight;   /* for the one in flight */
    goim_queue_t         comets;
    size_t               ncomets;
    job_stats_t          stats;
    uint64_t             inflight;        /* records not finished */
    goim_queue_t         retrying;        /* deliveries waiting to retry */
    void                *rooms;           /* room.c's table */
    job_kafka_t         *kafka;
    uv_timer_t           stop_timer;
    unsigned             refresh_failing:1;
    unsigned             started:1;
    unsigned             stopping:1;      /* comets closed */
    unsigned             draining:1;      /* SIGTERM: finishing */
    unsigned             finished:1;
} job_server_t;

extern job_server_t              job;
extern const goim_opt_t          job_opts[];
extern const goim_rpc_handler_t  job_handlers[];

/* server.c */
int job_start(uv_loop_t *loop, void *conf);
void job_reload(void *conf);
void job_stop(void);

/* config.c */
int job_conf_check(void *conf, char *err, size_t errlen);

/* comets.c */
int job_comets_start(void);
void job_comets_reload(void);
void job_comets_stop(void);
job_comet_t *job_comets_find(const char *id);
void job_comets_wait(job_wait_t *w);

/* push.c */
void job_push(goim_rpc_req_t *r);
void job_route(job_rec_t *rec, const Goim__PushMsg *m);
void job_rec_release(job_rec_t *rec, unsigned failed);
/* sends body (owned from now on, unless -1) to every comet as one
 * BroadcastRoom serving recs; done(data) runs when it finished */
int job_send_room(const char *room, uint8_t *body, size_t len,
    job_rec_t **recs, size_t nrecs, uint64_t epoch, uint64_t seq,
    void (*done)(void *data), void *data);
/*
 * Sends body (owned from now on, unless -1) to key on comet cm as one
 * COMET_PUSH_MSG with ack_filter; done(data, delivered) runs once it is
 * answered: the keys comet found, or -1 when the call failed (not retried:
 * ensure.c resends on its own).
 */
int job_send_keys(job_comet_t *cm, const char *key, int32_t op,
    int32_t ack_filter, uint8_t *body, size_t len,
    void (*done)(void *data, int delivered), void *data);
void job_push_stop(void);
void job_push_comet_gone(job_comet_t *cm);   /* its waiting deliveries */

/* room.c */
int job_rooms_init(void);
void job_rooms_add(job_rec_t *rec, const Goim__PushMsg *m);
void job_rooms_flush(void);
void job_rooms_free(void);
size_t job_rooms_count(void);

/* stream.c: n positions in a row in name's stream ("": broadcasts) */
int job_streams_init(void);
int job_streams_take(const char *name, uint64_t n, uint64_t *epoch,
    uint64_t *seq);
size_t job_streams_count(void);
void job_streams_free(void);

/* ensure.c */
int job_ensure_init(void);
/* a JOB_PUSH of ensure records: 1 when it took (and answered) it */
int job_ensure_push(goim_rpc_req_t *r);
void job_ensure_receipts(goim_rpc_req_t *r);
void job_ensure_online(const Goim__PushMsg *rec);
void job_ensure_ack(const Goim__PushMsg *rec);
/* from Kafka (kafka.c): see ensure.c */
int job_ensure_room(int64_t mid, int slack);
int job_ensure_known(const Goim__PushMsg *rec, struct job_off_s *off);
int job_ensure_take_record(const Goim__PushMsg *rec, struct job_off_s *off,
    int32_t partition, int64_t offset);
size_t job_ensure_pending(void);
size_t job_ensure_mailboxes(void);
size_t job_ensure_finished(void);
void job_ensure_stop(void);

/* kafka.c */
int job_kafka_start(void);
void job_kafka_update(void);          /* job.inflight changed */
void job_kafka_stop(void);            /* stop taking records */
void job_kafka_close(void);           /* store, commit, close */
int job_kafka_paused(void);
int job_kafka_receipts(void);         /* a receipts topic is written */
/* writes rc; off (or NULL) is done once it is written: 0, or -1 */
int job_kafka_receipt(const Goim__Receipt *rc, struct job_off_s *off);

/* server.c */
void job_stop_check(void);            /* finish stopping when drained */

#endif /* JOB_H */
