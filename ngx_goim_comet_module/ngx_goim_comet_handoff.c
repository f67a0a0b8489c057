
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <sys/mman.h>
#include <sys/un.h>

#include "ngx_goim_comet.h"
#include "ngx_goim_comet_zone.h"


/*
 * The reload hand-off: on `nginx -s reload` every old worker gives its
 * plain TCP and WebSocket clients, and the push listener's connections
 * (job's), to the workers of the new configuration, descriptor and state,
 * over AF_UNIX SOCK_SEQPACKET sockets (SCM_RIGHTS).  Nobody reconnects.
 *
 * Exactly once and in order.  Pushes enter comet only through the push
 * listener's connections.  So every old worker first stops reading them
 * (FREEZING, FROZEN), and once all old workers have (the board says), it
 * delivers what its cross-worker queue still holds: from then on nothing
 * changes in the old generation but the clients' own requests.  It hands
 * its clients on (SENDING), each with its queued output; once every old
 * worker's clients are in new hands (CHANNELS_DONE on the board), it
 * hands on the push connections (SESSIONS) with the bytes read but not
 * handled and the replies not yet sent, and the new workers go on
 * reading them, finding every key in their own tables.  Pushes wait
 * meanwhile; none is lost, none is delivered twice, none overtakes
 * another.
 *
 * The board is a page of shared memory the master maps once and every
 * worker of every generation inherits: the newest configuration's
 * generation, one slot per process (pid, generation, number, phase) and
 * the counters.  Each worker listens on an abstract socket named after
 * the master, its generation and its number; only a process with our
 * master for a parent and our user may connect (SO_PEERCRED).
 *
 * A connection is frozen (no timer, no posted event, out of epoll) and
 * sent in one step; the old worker keeps its copy of the descriptor until
 * the new one acknowledges, and the new one acknowledges before it reads
 * or writes a byte, so a worker that dies in between loses nothing that
 * either side could serve twice: unacknowledged connections are sent to
 * another new worker, or drained.  Drained means today's reload: closed,
 * WebSocket with 1001, the client reconnects; TLS connections always are,
 * spread over goim_comet_drain_window.
 */


#define NGX_GOIM_HANDOFF_MAGIC     0x676f686f    /* "goho" */
#define NGX_GOIM_HANDOFF_VERSION   1

#define NGX_GOIM_HANDOFF_CHANNEL   1
#define NGX_GOIM_HANDOFF_SESSION   2
#define NGX_GOIM_HANDOFF_ACK       3

#define NGX_GOIM_HANDOFF_ADOPTED   0
#define NGX_GOIM_HANDOFF_REFUSED   1

/* a record larger than this travels in a memfd passed beside the socket */
#define NGX_GOIM_HANDOFF_INLINE    (32 * 1024)
#define NGX_GOIM_HANDOFF_MAX       (64 * 1024 * 1024)

/* records a link takes per event loop pass: adopted ones must run too */
#define NGX_GOIM_HANDOFF_BATCH     64

/*
 * clients frozen and sent per event loop pass: a connection's freeze
 * lasts from its own export to its start, so the new workers adopt one
 * batch while the next is made, rather than all of them after the last
 */
#define NGX_GOIM_HANDOFF_SEND_BATCH  128

/*
 * clients sent and not yet acknowledged: what the new workers have not
 * read waits in their sockets, frozen; a bound keeps that wait to a few
 * adoptions, not a whole worker's clients (those not sent yet are still
 * served here)
 */
#define NGX_GOIM_HANDOFF_WINDOW      128

#define NGX_GOIM_HANDOFF_TICK      1
#define NGX_GOIM_HANDOFF_DISCOVER  5000      /* ms to wait for new workers */

/* phases, in the board */
#define NGX_GOIM_HANDOFF_RUNNING        0
#define NGX_GOIM_HANDOFF_FREEZING       1
#define NGX_GOIM_HANDOFF_FROZEN         2
#define NGX_GOIM_HANDOFF_SENDING        3
#define NGX_GOIM_HANDOFF_CHANNELS_DONE  4
#define NGX_GOIM_HANDOFF_SESSIONS       5
#define NGX_GOIM_HANDOFF_DONE           6

#define NGX_GOIM_HANDOFF_MODE_NONE      0
#define NGX_GOIM_HANDOFF_MODE_RELOAD    1
#define NGX_GOIM_HANDOFF_MODE_QUIT      2


typedef struct {
    ngx_atomic_t                     pid;
    ngx_atomic_t                     generation;
    ngx_atomic_t                     worker;
    ngx_atomic_t                     nworkers;
    ngx_atomic_t                     phase;
} ngx_goim_comet_board_slot_t;

typedef struct {
    ngx_atomic_t                     generation;   /* the newest conf's */
    ngx_goim_comet_handoff_stats_t   stats;
    ngx_goim_comet_board_slot_t      slots[NGX_MAX_PROCESSES];
} ngx_goim_comet_board_t;


/* what goes over a link: this, then len bytes (or a memfd holding them) */
typedef struct {
    uint32_t                         magic;
    uint16_t                         version;
    uint16_t                         type;
    uint32_t                         kind;         /* a server kind */
    uint32_t                         status;       /* ACK */
    uint64_t                         cookie;
    uint64_t                         frozen_ns;    /* CLOCK_MONOTONIC */
    uint64_t                         len;
    uint32_t                         memfd;        /* 1: len is in it */
    uint16_t                         server_name_len;   /* WS: first */
    uint16_t                         location_len;
} ngx_goim_handoff_msg_t;


typedef struct ngx_goim_comet_handoff_link_s  ngx_goim_comet_handoff_link_t;

/* a connection on its way out */
typedef struct {
    ngx_queue_t                      queue;        /* ho->blocked or
                                                      link->inflight */
    ngx_uint_t                       type;
    void                            *data;         /* channel, session */
    ngx_connection_t                *connection;
    ngx_goim_handoff_msg_t           msg;
    u_char                          *payload;      /* kept for a resend */
    int                              memfd;
} ngx_goim_comet_handoff_item_t;

/* an adopted connection waiting for its ack to be written */
typedef struct {
    uint64_t                         cookie;
    uint32_t                         status;
    ngx_uint_t                       type;
    void                            *data;
    ngx_msec_t                       deadline;
    ngx_uint_t                       frozen;       /* a session adopted by
                                                      a worker that quits */
    uint64_t                         frozen_ns;    /* since, in the old one */
} ngx_goim_comet_handoff_ack_t;

struct ngx_goim_comet_handoff_link_s {
    ngx_queue_t                      queue;        /* ho->links, ->inbound */
    ngx_goim_comet_handoff_t        *handoff;
    ngx_connection_t                *connection;
    ngx_queue_t                      inflight;     /* out: sent, unacked */
    ngx_uint_t                       generation;   /* out: the target's */
    ngx_uint_t                       worker;
    ngx_pid_t                        pid;
    ngx_event_t                      keepalive;    /* in: holds the worker */
    ngx_goim_comet_handoff_ack_t     acks[NGX_GOIM_HANDOFF_BATCH];
    ngx_uint_t                       nacks;
    unsigned                         outbound:1;
    unsigned                         eof:1;
};

struct ngx_goim_comet_handoff_s {
    ngx_goim_comet_worker_t         *worker;
    ngx_goim_comet_board_slot_t     *slot;
    ngx_connection_t                *listener;
    ngx_uint_t                       generation;   /* this worker's */
    ngx_uint_t                       mode;
    ngx_uint_t                       phase;
    ngx_msec_t                       deadline;     /* of the whole */
    ngx_msec_t                       discover_until;
    ngx_uint_t                       target_generation;
    ngx_event_t                      tick;
    ngx_queue_t                      links;
    ngx_queue_t                      inbound;
    ngx_queue_t                      sessions;     /* frozen, still here:
                                                      items */
    ngx_queue_t                      blocked;      /* no link took them */
    ngx_uint_t                       inflight;
    ngx_uint_t                       next_link;
    uint64_t                         next_cookie;
    unsigned                         sweep:1;      /* channels may be
                                                      left to send */
    unsigned                         more:1;       /* a batch is sent, the
                                                      next one at once */
};


static ngx_int_t ngx_goim_comet_handoff_begin(ngx_goim_comet_worker_t *wk);
static ngx_int_t ngx_goim_comet_handoff_session_quit(void *ctx,
    ngx_goim_rpc_session_t *s);
static void ngx_goim_comet_handoff_tick(ngx_event_t *ev);
static ngx_uint_t ngx_goim_comet_handoff_all_reached(
    ngx_goim_comet_handoff_t *ho, ngx_uint_t phase, ngx_uint_t older_only);
static void ngx_goim_comet_handoff_set_phase(ngx_goim_comet_handoff_t *ho,
    ngx_uint_t phase);
static ngx_int_t ngx_goim_comet_handoff_discover(ngx_goim_comet_handoff_t *ho);
static ngx_int_t ngx_goim_comet_handoff_connect(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_board_slot_t *slot);
static void ngx_goim_comet_handoff_send_channels(
    ngx_goim_comet_handoff_t *ho);
static ngx_goim_comet_server_t *ngx_goim_comet_handoff_ws_server(
    ngx_goim_comet_worker_t *wk, void *conf);
static void ngx_goim_comet_handoff_send_sessions(
    ngx_goim_comet_handoff_t *ho);
static void ngx_goim_comet_handoff_freeze(ngx_connection_t *c);
static ngx_int_t ngx_goim_comet_handoff_send(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_handoff_item_t *item);
static void ngx_goim_comet_handoff_retry(ngx_goim_comet_handoff_t *ho);
static void ngx_goim_comet_handoff_give_up(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_handoff_item_t *item, ngx_uint_t failed);
static void ngx_goim_comet_handoff_done(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_handoff_item_t *item);
static void ngx_goim_comet_handoff_item_free(
    ngx_goim_comet_handoff_item_t *item);
static ngx_goim_comet_handoff_link_t *ngx_goim_comet_handoff_link_create(
    ngx_goim_comet_handoff_t *ho, int fd, ngx_pid_t pid, ngx_uint_t outbound);
static void ngx_goim_comet_handoff_accept(ngx_event_t *rev);
static ngx_int_t ngx_goim_comet_handoff_peer_allowed(int fd, ngx_log_t *log,
    ngx_pid_t *pid);
static void ngx_goim_comet_handoff_link_read(ngx_event_t *rev);
static void ngx_goim_comet_handoff_link_write(ngx_event_t *wev);
static void ngx_goim_comet_handoff_receive(
    ngx_goim_comet_handoff_link_t *link, ngx_goim_handoff_msg_t *msg,
    u_char *payload, int fd, int memfd);
static ngx_int_t ngx_goim_comet_handoff_adopt(ngx_goim_comet_handoff_t *ho,
    ngx_goim_handoff_msg_t *msg, u_char *p, size_t len, int fd,
    ngx_goim_comet_handoff_ack_t *ack);
static void ngx_goim_comet_handoff_start(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_handoff_ack_t *ack);
static void ngx_goim_comet_handoff_abort(ngx_goim_comet_handoff_t *ho);
static void ngx_goim_comet_handoff_acked(ngx_goim_comet_handoff_link_t *link,
    ngx_goim_handoff_msg_t *msg);
static ngx_int_t ngx_goim_comet_handoff_flush_acks(
    ngx_goim_comet_handoff_link_t *link);
static void ngx_goim_comet_handoff_link_close(
    ngx_goim_comet_handoff_link_t *link);
static void ngx_goim_comet_handoff_keepalive(ngx_event_t *ev);
static ngx_goim_comet_server_t *ngx_goim_comet_handoff_server(
    ngx_goim_comet_handoff_t *ho, ngx_goim_handoff_msg_t *msg,
    u_char **p, size_t *len, struct sockaddr *local, socklen_t socklen);
static ngx_connection_t *ngx_goim_comet_handoff_connection(int fd,
    ngx_goim_comet_server_t *srv, ngx_sockaddr_t *local, socklen_t llen,
    ngx_sockaddr_t *peer, socklen_t plen);
static void ngx_goim_comet_handoff_unstarted(ngx_event_t *ev);
static u_char *ngx_goim_comet_handoff_log_error(ngx_log_t *log, u_char *buf,
    size_t len);
static void ngx_goim_comet_handoff_close_connection(ngx_connection_t *c);
static void ngx_goim_comet_handoff_channel_finalize(ngx_goim_channel_t *ch);
static void ngx_goim_comet_handoff_session_close(void *data);
static void ngx_goim_comet_handoff_freeze_time(uint64_t frozen_ns);
static void ngx_goim_comet_handoff_name(struct sockaddr_un *sun,
    socklen_t *len, ngx_uint_t generation, ngx_uint_t worker);


/* mapped by the master at its first start, inherited ever after */
static ngx_goim_comet_board_t  *ngx_goim_comet_board;


static const uint32_t
    ngx_goim_comet_freeze_bounds[NGX_GOIM_COMET_FREEZE_BUCKETS] =
{
    50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
    200000, 500000, 1000000, 5000000, (uint32_t) -1
};


/*
 * init_module, in the master, after the new configuration's sockets are
 * open and before its workers fork: the board, once, and this
 * configuration's generation, so that an old worker told to quit knows
 * a newer one exists (a reload) or not (nginx -s quit).  nginx -t runs
 * this too, and must change nothing.
 */

ngx_int_t
ngx_goim_comet_handoff_init_module(ngx_cycle_t *cycle,
    ngx_goim_comet_conf_t *ccf)
{
    void  *p;

    if (ngx_test_config) {
        return NGX_OK;
    }

    if (ngx_goim_comet_board == NULL) {
        p = mmap(NULL, sizeof(ngx_goim_comet_board_t),
                 PROT_READ | PROT_WRITE, MAP_ANON | MAP_SHARED, -1, 0);

        if (p == MAP_FAILED) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "goim comet: mmap(%uz) for the hand-off failed",
                          sizeof(ngx_goim_comet_board_t));
            return NGX_ERROR;
        }

        ngx_goim_comet_board = p;
    }

    ccf->generation = (ngx_uint_t)
                      ngx_atomic_fetch_add(&ngx_goim_comet_board->generation,
                                           1) + 1;

    return NGX_OK;
}


/* the stream and http modules say what can adopt a connection */

ngx_goim_comet_server_t *
ngx_goim_comet_server_add(ngx_conf_t *cf)
{
    ngx_goim_comet_conf_t    *ccf;
    ngx_goim_comet_server_t  *srv;

    ccf = ngx_goim_comet_get_conf(cf->cycle);

    if (ccf->servers == NULL) {
        ccf->servers = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_goim_comet_server_t));
        if (ccf->servers == NULL) {
            return NULL;
        }
    }

    srv = ngx_array_push(ccf->servers);
    if (srv == NULL) {
        return NULL;
    }

    ngx_memzero(srv, sizeof(ngx_goim_comet_server_t));

    return srv;
}


void
ngx_goim_comet_handoff_stats(ngx_goim_comet_handoff_stats_t *st)
{
    if (ngx_goim_comet_board == NULL) {
        ngx_memzero(st, sizeof(ngx_goim_comet_handoff_stats_t));
        return;
    }

    ngx_memcpy(st, &ngx_goim_comet_board->stats,
               sizeof(ngx_goim_comet_handoff_stats_t));
}


void
ngx_goim_comet_handoff_drained(void)
{
    if (ngx_goim_comet_board) {
        (void) ngx_atomic_fetch_add(&ngx_goim_comet_board->stats.drained, 1);
    }
}


/* the upper bound of the bucket holding the quantile, or the maximum */

ngx_uint_t
ngx_goim_comet_handoff_freeze_percentile(ngx_goim_comet_handoff_stats_t *st,
    ngx_uint_t permille)
{
    ngx_uint_t  us;

    us = ngx_goim_comet_zone_percentile(st->freeze_us,
                                        ngx_goim_comet_freeze_bounds,
                                        NGX_GOIM_COMET_FREEZE_BUCKETS,
                                        permille);

    /* the last bucket has no bound: the maximum says more */
    return ngx_min(us, st->freeze_max_us);
}


/*
 * init_process: this worker's slot on the board and its listener, which
 * is an idle connection: nginx's QUIT closes idle connections first, and
 * that is where a hand-off begins.
 */

ngx_int_t
ngx_goim_comet_handoff_init(ngx_goim_comet_worker_t *wk)
{
    int                        fd;
    socklen_t                  len;
    ngx_cycle_t               *cycle;
    ngx_connection_t          *c;
    struct sockaddr_un         sun;
    ngx_goim_comet_conf_t     *ccf;
    ngx_goim_comet_handoff_t  *ho;
    ngx_goim_comet_board_slot_t *slot;

    ccf = wk->conf;
    cycle = wk->cycle;

    if (!ccf->handoff || ccf->servers == NULL || ngx_goim_comet_board == NULL
        || ngx_process != NGX_PROCESS_WORKER
        || ngx_process_slot < 0 || ngx_process_slot >= NGX_MAX_PROCESSES)
    {
        return NGX_OK;
    }

    ho = ngx_pcalloc(cycle->pool, sizeof(ngx_goim_comet_handoff_t));
    if (ho == NULL) {
        return NGX_ERROR;
    }

    ho->worker = wk;
    ho->generation = ccf->generation;
    ho->next_cookie = 1;
    ngx_queue_init(&ho->links);
    ngx_queue_init(&ho->inbound);
    ngx_queue_init(&ho->sessions);
    ngx_queue_init(&ho->blocked);

    ho->tick.handler = ngx_goim_comet_handoff_tick;
    ho->tick.data = ho;
    ho->tick.log = cycle->log;
    ho->tick.cancelable = 0;              /* the worker stays until done */

    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                      "goim comet: hand-off socket() failed, this worker's "
                      "clients will be drained on reload");
        /* a worker without its hand-off still serves: not a respawn loop */
        return NGX_OK;
    }

    ngx_goim_comet_handoff_name(&sun, &len, ho->generation, ngx_worker);

    if (bind(fd, (struct sockaddr *) &sun, len) == -1
        || listen(fd, 512) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_socket_errno,
                      "goim comet: hand-off listener \"@%s\" failed, this "
                      "worker's clients will be drained on reload",
                      sun.sun_path + 1);
        close(fd);
        return NGX_OK;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        close(fd);
        return NGX_ERROR;
    }

    c->data = ho;
    c->read->handler = ngx_goim_comet_handoff_accept;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    /* QUIT reaches it: nginx closes idle connections at once */
    c->idle = 1;

    if (ngx_add_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
        ngx_free_connection(c);
        close(fd);
        return NGX_ERROR;
    }

    ho->listener = c;

    slot = &ngx_goim_comet_board->slots[ngx_process_slot];
    slot->phase = NGX_GOIM_HANDOFF_RUNNING;
    slot->generation = ho->generation;
    slot->worker = ngx_worker;
    slot->nworkers = wk->nworkers;
    ngx_memory_barrier();
    slot->pid = ngx_pid;
    ho->slot = slot;

    wk->handoff = ho;
    wk->quit = ngx_goim_comet_handoff_begin;
    wk->rpc.session_quit = ngx_goim_comet_handoff_session_quit;

    return NGX_OK;
}


/* exit_process: the slot is free; what is still open goes with us */

void
ngx_goim_comet_handoff_exit(ngx_goim_comet_worker_t *wk)
{
    ngx_queue_t                    *q;
    ngx_goim_comet_handoff_t       *ho;
    ngx_goim_comet_handoff_link_t  *link;

    ho = wk->handoff;

    if (ho == NULL) {
        return;
    }

    while (!ngx_queue_empty(&ho->links)) {
        q = ngx_queue_head(&ho->links);
        link = ngx_queue_data(q, ngx_goim_comet_handoff_link_t, queue);
        ngx_goim_comet_handoff_link_close(link);
    }

    while (!ngx_queue_empty(&ho->inbound)) {
        q = ngx_queue_head(&ho->inbound);
        link = ngx_queue_data(q, ngx_goim_comet_handoff_link_t, queue);
        ngx_goim_comet_handoff_link_close(link);
    }

    if (ho->listener) {
        ngx_close_connection(ho->listener);
        ho->listener = NULL;
    }

    if (ho->tick.timer_set) {
        ngx_del_timer(&ho->tick);
    }

    ho->slot->phase = NGX_GOIM_HANDOFF_DONE;
    ngx_memory_barrier();
    ho->slot->pid = 0;

    wk->handoff = NULL;
    wk->quit = NULL;
}


/*
 * wk->quit: the first idle connection nginx closes on QUIT lands here
 * (the listener, a client, the relay: whichever comes first).  NGX_OK: a
 * reload, the connections stay for the hand-off.
 */

static ngx_int_t
ngx_goim_comet_handoff_begin(ngx_goim_comet_worker_t *wk)
{
    ngx_goim_comet_handoff_t  *ho;

    ho = wk->handoff;

    if (ho->mode != NGX_GOIM_HANDOFF_MODE_NONE) {
        if (ho->mode != NGX_GOIM_HANDOFF_MODE_RELOAD
            || ho->phase >= NGX_GOIM_HANDOFF_CHANNELS_DONE)
        {
            /* nginx -s quit, or too late: drained */
            return NGX_DECLINED;
        }

        /* a connection the last pass over the channels may have missed */
        ho->sweep = 1;

        return NGX_OK;
    }

    if (!ngx_exiting && !ngx_quit) {
        return NGX_DECLINED;
    }

    if (ngx_goim_comet_board->generation <= ho->generation) {
        /* nginx -s quit, or a binary upgrade's: today's shutdown */
        ho->mode = NGX_GOIM_HANDOFF_MODE_QUIT;
        ngx_goim_comet_handoff_set_phase(ho, NGX_GOIM_HANDOFF_DONE);
        return NGX_DECLINED;
    }

    ho->mode = NGX_GOIM_HANDOFF_MODE_RELOAD;
    ho->deadline = ngx_current_msec + wk->conf->handoff_timeout;
    ho->discover_until = ngx_current_msec + ngx_min(NGX_GOIM_HANDOFF_DISCOVER,
                                                  wk->conf->handoff_timeout);

    ho->sweep = 1;

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "goim comet: reload, handing connections of generation "
                  "%ui to generation %uA", ho->generation,
                  ngx_goim_comet_board->generation);

    ngx_goim_comet_handoff_set_phase(ho, NGX_GOIM_HANDOFF_FREEZING);

    ngx_add_timer(&ho->tick, NGX_GOIM_HANDOFF_TICK);

    return NGX_OK;
}


/* rpc->session_quit: a push connection stops reading, to be handed on */

static ngx_int_t
ngx_goim_comet_handoff_session_quit(void *ctx, ngx_goim_rpc_session_t *s)
{
    ngx_goim_comet_worker_t *wk = ctx;

    ngx_goim_comet_handoff_t       *ho;
    ngx_goim_comet_handoff_item_t  *item;

    if (wk->handoff == NULL || ngx_goim_comet_handoff_begin(wk) != NGX_OK) {
        return NGX_DECLINED;
    }

    ho = wk->handoff;

    item = ngx_calloc(sizeof(ngx_goim_comet_handoff_item_t), ngx_cycle->log);
    if (item == NULL) {
        return NGX_DECLINED;
    }

    item->type = NGX_GOIM_HANDOFF_SESSION;
    item->data = s;
    item->connection = ngx_goim_rpc_session_connection(s);
    item->memfd = -1;

    ngx_queue_insert_tail(&ho->sessions, &item->queue);

    return NGX_OK;
}


static void
ngx_goim_comet_handoff_set_phase(ngx_goim_comet_handoff_t *ho,
    ngx_uint_t phase)
{
    ho->phase = phase;
    ho->slot->phase = phase;
    ngx_memory_barrier();
}


/*
 * Whether every worker still quitting (of a generation older than the
 * newest; older than this one's with older_only) has reached phase.  A
 * dead one has nothing left to wait for.
 */

static ngx_uint_t
ngx_goim_comet_handoff_all_reached(ngx_goim_comet_handoff_t *ho,
    ngx_uint_t phase, ngx_uint_t older_only)
{
    ngx_pid_t                     pid;
    ngx_uint_t                    i, newest, gen;
    ngx_goim_comet_board_slot_t  *slot;

    newest = ngx_goim_comet_board->generation;

    for (i = 0; i < NGX_MAX_PROCESSES; i++) {
        slot = &ngx_goim_comet_board->slots[i];
        pid = (ngx_pid_t) slot->pid;

        if (pid == 0 || slot == ho->slot) {
            continue;
        }

        gen = slot->generation;

        if (gen >= newest || (older_only && gen >= ho->generation)) {
            continue;
        }

        if (slot->phase >= phase) {
            continue;
        }

        if (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
            continue;
        }

        return 0;
    }

    return 1;
}


/*
 * The hand-off's clock, a non-cancelable timer: while it runs the worker
 * does not exit.  Each tick moves the phase on as far as it can.
 */

static void
ngx_goim_comet_handoff_tick(ngx_event_t *ev)
{
    ngx_goim_comet_handoff_t *ho = ev->data;

    ngx_queue_t                    *q;
    ngx_goim_comet_worker_t        *wk;
    ngx_goim_comet_handoff_item_t  *item;

    wk = ho->worker;

    if ((ngx_msec_int_t) (ngx_current_msec - ho->deadline) >= 0
        && ho->phase < NGX_GOIM_HANDOFF_DONE)
    {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim comet: the hand-off did not finish within "
                      "goim_comet_handoff_timeout, the rest is drained");

        ngx_goim_comet_handoff_abort(ho);
        ngx_goim_comet_handoff_set_phase(ho, NGX_GOIM_HANDOFF_DONE);
    }

    switch (ho->phase) {

    case NGX_GOIM_HANDOFF_FREEZING:

        /* own push connections frozen with nothing owed to a handler */
        for (q = ngx_queue_head(&ho->sessions);
             q != ngx_queue_sentinel(&ho->sessions);
             q = ngx_queue_next(q))
        {
            item = ngx_queue_data(q, ngx_goim_comet_handoff_item_t, queue);

            if (ngx_goim_rpc_session_exportable(item->data) == NGX_AGAIN) {
                break;
            }
        }

        if (q != ngx_queue_sentinel(&ho->sessions)) {
            break;
        }

        ngx_goim_comet_handoff_set_phase(ho, NGX_GOIM_HANDOFF_FROZEN);

        /* fall through */

    case NGX_GOIM_HANDOFF_FROZEN:

        if (!ngx_goim_comet_handoff_all_reached(ho, NGX_GOIM_HANDOFF_FROZEN,
                                                0))
        {
            break;
        }

        /*
         * No old worker reads a push any more: what is queued between
         * them is delivered now, paced broadcasts at once, so that it
         * travels with the connections.
         */
        ngx_goim_comet_relay_flush(wk);

        ngx_goim_comet_deliver_finish(wk);

        ngx_goim_comet_handoff_set_phase(ho, NGX_GOIM_HANDOFF_SENDING);

        /* fall through */

    case NGX_GOIM_HANDOFF_SENDING:

        ngx_goim_comet_handoff_send_channels(ho);

        if (ho->phase != NGX_GOIM_HANDOFF_CHANNELS_DONE) {
            break;
        }

        /* fall through */

    case NGX_GOIM_HANDOFF_CHANNELS_DONE:

        if (!ngx_goim_comet_handoff_all_reached(ho,
                                         NGX_GOIM_HANDOFF_CHANNELS_DONE, 0))
        {
            break;
        }

        ngx_goim_comet_handoff_set_phase(ho, NGX_GOIM_HANDOFF_SESSIONS);

        /* fall through */

    case NGX_GOIM_HANDOFF_SESSIONS:

        ngx_goim_comet_handoff_send_sessions(ho);

        if (!ngx_queue_empty(&ho->sessions) || !ngx_queue_empty(&ho->blocked)
            || ho->inflight
            || !ngx_goim_comet_handoff_all_reached(ho, NGX_GOIM_HANDOFF_DONE,
                                                   1))
        {
            break;
        }

        ngx_goim_comet_handoff_set_phase(ho, NGX_GOIM_HANDOFF_DONE);

        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "goim comet: hand-off done");

        /* fall through */

    default:

        /* links close: the new workers' reads see EOF after our records */
        while (!ngx_queue_empty(&ho->links)) {
            q = ngx_queue_head(&ho->links);
            ngx_goim_comet_handoff_link_close(
                ngx_queue_data(q, ngx_goim_comet_handoff_link_t, queue));
        }

        return;
    }

    if (ho->more) {
        ho->more = 0;
        ngx_add_timer(ev, 0);
        return;
    }

    ngx_add_timer(ev, NGX_GOIM_HANDOFF_TICK);
}


/*
 * The workers of the newest generation: a link to each of those up.
 * NGX_OK: links to all of them (or to some, once discovery has waited
 * long enough); NGX_AGAIN: wait; NGX_DECLINED: none will come.
 */

static ngx_int_t
ngx_goim_comet_handoff_discover(ngx_goim_comet_handoff_t *ho)
{
    ngx_pid_t                       pid;
    ngx_uint_t                      i, gen, nworkers, nlinks;
    ngx_queue_t                    *q;
    ngx_goim_comet_board_slot_t    *slot;
    ngx_goim_comet_handoff_link_t  *link;

    gen = ngx_goim_comet_board->generation;

    if (gen != ho->target_generation) {
        /* a newer reload: send there, as soon as its workers are up */
        ho->target_generation = gen;
        ho->discover_until = ngx_current_msec
                             + ngx_min(NGX_GOIM_HANDOFF_DISCOVER,
                                       ho->worker->conf->handoff_timeout);
    }

    nworkers = 0;

    for (i = 0; i < NGX_MAX_PROCESSES; i++) {
        slot = &ngx_goim_comet_board->slots[i];
        pid = (ngx_pid_t) slot->pid;

        if (pid == 0 || slot->generation != gen
            || slot->phase != NGX_GOIM_HANDOFF_RUNNING)
        {
            continue;
        }

        nworkers = slot->nworkers;

        for (q = ngx_queue_head(&ho->links);
             q != ngx_queue_sentinel(&ho->links);
             q = ngx_queue_next(q))
        {
            link = ngx_queue_data(q, ngx_goim_comet_handoff_link_t, queue);

            if (link->pid == pid) {
                break;
            }
        }

        if (q == ngx_queue_sentinel(&ho->links)) {
            (void) ngx_goim_comet_handoff_connect(ho, slot);
        }
    }

    nlinks = 0;

    for (q = ngx_queue_head(&ho->links);
         q != ngx_queue_sentinel(&ho->links);
         q = ngx_queue_next(q))
    {
        link = ngx_queue_data(q, ngx_goim_comet_handoff_link_t, queue);

        if (link->generation == gen && !link->eof) {
            nlinks++;
        }
    }

    if (nlinks && nlinks >= nworkers) {
        return NGX_OK;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - ho->discover_until) < 0) {
        return NGX_AGAIN;
    }

    return nlinks ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_goim_comet_handoff_connect(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_board_slot_t *slot)
{
    int                             fd, size;
    socklen_t                       len;
    struct sockaddr_un              sun;
    ngx_goim_comet_handoff_link_t  *link;

    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return NGX_ERROR;
    }

    /* records carry a client's queued output: room for many at once */
    size = 4 * 1024 * 1024;
    (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(int));

    ngx_goim_comet_handoff_name(&sun, &len, slot->generation, slot->worker);

    if (connect(fd, (struct sockaddr *) &sun, len) == -1) {
        /* not listening yet (it binds, then listens), or gone */
        close(fd);
        return NGX_AGAIN;
    }

    link = ngx_goim_comet_handoff_link_create(ho, fd, (ngx_pid_t) slot->pid,
                                              1);
    if (link == NULL) {
        return NGX_ERROR;
    }

    link->generation = slot->generation;
    link->worker = slot->worker;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "goim comet: hand-off link to generation %ui worker %ui "
                   "(pid %P)", link->generation, link->worker, link->pid);

    return NGX_OK;
}


/*
 * SENDING: every client connection that can move goes, each in one step:
 * snapshot, freeze, sendmsg().  Those that cannot (TLS) are drained over
 * the window; one still authenticating is waited for.  Done when none is
 * left to send or waiting for its ack, and no older worker can send us
 * more.
 */

static void
ngx_goim_comet_handoff_send_channels(ngx_goim_comet_handoff_t *ho)
{
    u_char                         *p;
    size_t                          size, names;
    ngx_int_t                       rc;
    ngx_uint_t                      waiting, sent;
    ngx_goim_comet_server_t        *srv;
    ngx_msec_t                      window;
    ngx_queue_t                    *q, *next;
    ngx_goim_channel_t             *ch;
    ngx_goim_comet_worker_t        *wk;
    ngx_goim_comet_handoff_item_t  *item;

    wk = ho->worker;

    rc = ngx_goim_comet_handoff_discover(ho);

    if (rc == NGX_AGAIN) {
        return;
    }

    ngx_goim_comet_handoff_retry(ho);

    /* a pass over every channel only when one may be new to it */
    if (!ho->sweep) {
        goto done;
    }

    ho->sweep = 0;
    waiting = 0;
    sent = 0;
    window = wk->conf->drain_window;

    for (q = ngx_queue_head(&wk->all);
         q != ngx_queue_sentinel(&wk->all);
         q = next)
    {
        next = ngx_queue_next(q);
        ch = ngx_queue_data(q, ngx_goim_channel_t, queue);

        if (ch->state == NGX_GOIM_CHANNEL_MOVING || ch->drain) {
            continue;
        }

        if (sent == NGX_GOIM_HANDOFF_SEND_BATCH) {
            /* the rest on the next pass, right after this loop's events */
            ho->more = 1;
            waiting++;
            break;
        }

        if (ho->inflight >= NGX_GOIM_HANDOFF_WINDOW) {
            /* the rest once the new workers have answered */
            waiting++;
            break;
        }

        if (ch->state == NGX_GOIM_CHANNEL_AUTHING || ch->adopting) {
            /* it moves once logic has answered, or we have it for good */
            waiting++;
            continue;
        }

        if (rc == NGX_DECLINED || !ngx_goim_channel_movable(ch)) {
            /* today's reload, but spread: no reconnect storm */
            (void) ngx_atomic_fetch_add(&ngx_goim_comet_board->stats.drained,
                                        1);
            ngx_goim_channel_drain(ch, window ? ngx_random() % window + 1
                                              : 0);
            continue;
        }

        srv = NULL;
        names = 0;

        if (ch->ws) {
            /* the new workers find its location by name */
            srv = ngx_goim_comet_handoff_ws_server(wk, ch->conf);

            if (srv == NULL) {
                (void) ngx_atomic_fetch_add(
                                      &ngx_goim_comet_board->stats.drained, 1);
                ngx_goim_channel_drain(ch, 0);
                continue;
            }

            names = srv->server_name.len + srv->location.len;
        }

        item = ngx_calloc(sizeof(ngx_goim_comet_handoff_item_t),
                          ngx_cycle->log);
        size = names + ngx_goim_channel_export_size(ch);

        if (item) {
            item->payload = ngx_alloc(size ? size : 1, ngx_cycle->log);
        }

        if (item == NULL || item->payload == NULL) {
            if (item) {
                ngx_free(item);
            }

            (void) ngx_atomic_fetch_add(&ngx_goim_comet_board->stats.failed,
                                        1);
            ngx_goim_channel_drain(ch, 0);
            continue;
        }

        item->type = NGX_GOIM_HANDOFF_CHANNEL;
        item->data = ch;
        item->connection = ch->connection;
        item->memfd = -1;

        item->msg.magic = NGX_GOIM_HANDOFF_MAGIC;
        item->msg.version = NGX_GOIM_HANDOFF_VERSION;
        item->msg.type = NGX_GOIM_HANDOFF_CHANNEL;
        item->msg.kind = ch->ws ? NGX_GOIM_COMET_SERVER_WS
                                : NGX_GOIM_COMET_SERVER_TCP;
        item->msg.cookie = ho->next_cookie++;
        item->msg.len = size;

        p = item->payload;

        if (srv) {
            item->msg.server_name_len = (uint16_t) srv->server_name.len;
            item->msg.location_len = (uint16_t) srv->location.len;
            p = ngx_cpymem(p, srv->server_name.data, srv->server_name.len);
            p = ngx_cpymem(p, srv->location.data, srv->location.len);
        }

        /* one step: nothing may be read or written after the snapshot */
        (void) ngx_goim_channel_export(ch, p);
        ngx_goim_comet_handoff_freeze(ch->connection);
        item->msg.frozen_ns = ngx_goim_comet_zone_now_ns();

        sent++;

        if (ngx_goim_comet_handoff_send(ho, item) == NGX_AGAIN) {
            ngx_queue_insert_tail(&ho->blocked, &item->queue);
        }
    }

    if (waiting) {
        ho->sweep = 1;
    }

done:

    if (ho->sweep || ho->inflight || !ngx_queue_empty(&ho->blocked)
        || !ngx_goim_comet_handoff_all_reached(ho,
                                          NGX_GOIM_HANDOFF_CHANNELS_DONE, 1))
    {
        return;
    }

    ngx_goim_comet_handoff_set_phase(ho, NGX_GOIM_HANDOFF_CHANNELS_DONE);
}


/* the goim_comet_ws location a WebSocket channel's settings come from */

static ngx_goim_comet_server_t *
ngx_goim_comet_handoff_ws_server(ngx_goim_comet_worker_t *wk, void *conf)
{
    ngx_uint_t                i;
    ngx_goim_comet_server_t  *srv;

    if (wk->conf->servers == NULL) {
        return NULL;
    }

    srv = wk->conf->servers->elts;

    for (i = 0; i < wk->conf->servers->nelts; i++) {
        if (srv[i].kind == NGX_GOIM_COMET_SERVER_WS && srv[i].conf == conf
            && srv[i].server_name.len <= 0xffff
            && srv[i].location.len <= 0xffff)
        {
            return &srv[i];
        }
    }

    return NULL;
}


/* SESSIONS: the push connections, now that every client has moved */

static void
ngx_goim_comet_handoff_send_sessions(ngx_goim_comet_handoff_t *ho)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_str_t                       in, out;
    ngx_queue_t                    *q, *next;
    ngx_goim_comet_handoff_item_t  *item;
    uint32_t                        n;

    if (ngx_queue_empty(&ho->sessions)) {
        return;
    }

    rc = ngx_goim_comet_handoff_discover(ho);

    if (rc == NGX_AGAIN) {
        return;
    }

    for (q = ngx_queue_head(&ho->sessions);
         q != ngx_queue_sentinel(&ho->sessions);
         q = next)
    {
        next = ngx_queue_next(q);
        item = ngx_queue_data(q, ngx_goim_comet_handoff_item_t, queue);

        switch (ngx_goim_rpc_session_exportable(item->data)) {

        case NGX_AGAIN:
            continue;

        case NGX_DECLINED:
            /* it closed meanwhile (its peer went) */
            ngx_queue_remove(q);
            ngx_goim_comet_handoff_item_free(item);
            continue;
        }

        ngx_queue_remove(q);

        if (rc == NGX_DECLINED) {
            ngx_goim_comet_handoff_give_up(ho, item, 1);
            continue;
        }

        ngx_goim_rpc_session_export(item->data, &in, &out);

        item->msg.magic = NGX_GOIM_HANDOFF_MAGIC;
        item->msg.version = NGX_GOIM_HANDOFF_VERSION;
        item->msg.type = NGX_GOIM_HANDOFF_SESSION;
        item->msg.kind = NGX_GOIM_COMET_SERVER_PUSH;
        item->msg.cookie = ho->next_cookie++;
        item->msg.len = 2 * sizeof(uint32_t) + in.len + out.len;

        item->payload = ngx_alloc(item->msg.len, ngx_cycle->log);
        if (item->payload == NULL) {
            ngx_goim_comet_handoff_give_up(ho, item, 1);
            continue;
        }

        p = item->payload;
        n = (uint32_t) in.len;
        p = ngx_cpymem(p, &n, sizeof(uint32_t));
        n = (uint32_t) out.len;
        p = ngx_cpymem(p, &n, sizeof(uint32_t));
        p = ngx_cpymem(p, in.data, in.len);
        (void) ngx_cpymem(p, out.data, out.len);

        ngx_goim_comet_handoff_freeze(item->connection);
        item->msg.frozen_ns = ngx_goim_comet_zone_now_ns();

        if (ngx_goim_comet_handoff_send(ho, item) == NGX_AGAIN) {
            ngx_queue_insert_tail(&ho->blocked, &item->queue);
        }
    }
}


/*
 * Nothing of this process touches the connection any more: no timer, no
 * posted event, and out of epoll explicitly, since close() would not
 * remove a descriptor another process holds too.
 */

static void
ngx_goim_comet_handoff_freeze(ngx_connection_t *c)
{
    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    if ((c->read->active || c->write->active) && ngx_del_conn) {
        (void) ngx_del_conn(c, 0);

    } else {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }
    }
}


/*
 * One record on the next link round the new workers that takes it.
 * NGX_OK: sent (or given up); NGX_AGAIN: every link is full, the caller
 * keeps it for the next writable link or tick.
 */

static ngx_int_t
ngx_goim_comet_handoff_send(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_handoff_item_t *item)
{
    int                             fds[2];
    ssize_t                         n;
    ngx_uint_t                      i, nlinks, tried, gen;
    ngx_queue_t                    *q;
    struct iovec                    iov[2];
    struct msghdr                   mh;
    struct cmsghdr                 *cm;
    ngx_goim_comet_handoff_link_t  *link;
    union {
        struct cmsghdr              cm;
        u_char                      space[CMSG_SPACE(2 * sizeof(int))];
    } cmsg;

    gen = ho->target_generation;
    nlinks = 0;

    for (q = ngx_queue_head(&ho->links);
         q != ngx_queue_sentinel(&ho->links);
         q = ngx_queue_next(q))
    {
        link = ngx_queue_data(q, ngx_goim_comet_handoff_link_t, queue);

        if (link->generation == gen && !link->eof) {
            nlinks++;
        }
    }

    if (nlinks == 0) {
        if (ngx_goim_comet_handoff_discover(ho) == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        ngx_goim_comet_handoff_give_up(ho, item, 1);
        return NGX_OK;
    }

    if (item->msg.len > NGX_GOIM_HANDOFF_INLINE && item->memfd == -1) {
        item->memfd = memfd_create("goim-handoff", MFD_CLOEXEC);

        if (item->memfd == -1
            || write(item->memfd, item->payload, item->msg.len)
               != (ssize_t) item->msg.len)
        {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          "goim comet: hand-off memfd failed");
            ngx_goim_comet_handoff_give_up(ho, item, 1);
            return NGX_OK;
        }
    }

    item->msg.memfd = (item->memfd != -1);

    for (tried = 0; tried < nlinks; /* void */) {

        /* the next link of the target generation, round-robin */
        i = ho->next_link++ % nlinks;

        for (q = ngx_queue_head(&ho->links);
             q != ngx_queue_sentinel(&ho->links);
             q = ngx_queue_next(q))
        {
            link = ngx_queue_data(q, ngx_goim_comet_handoff_link_t, queue);

            if (link->generation == gen && !link->eof && i-- == 0) {
                break;
            }
        }

        tried++;

        iov[0].iov_base = &item->msg;
        iov[0].iov_len = sizeof(ngx_goim_handoff_msg_t);
        iov[1].iov_base = item->payload;
        iov[1].iov_len = item->msg.memfd ? 0 : item->msg.len;

        fds[0] = item->connection->fd;
        fds[1] = item->memfd;

        ngx_memzero(&mh, sizeof(struct msghdr));
        ngx_memzero(&cmsg, sizeof(cmsg));
        mh.msg_iov = iov;
        mh.msg_iovlen = iov[1].iov_len ? 2 : 1;
        mh.msg_control = cmsg.space;
        mh.msg_controllen = CMSG_SPACE((item->msg.memfd ? 2 : 1)
                                       * sizeof(int));

        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN((item->msg.memfd ? 2 : 1) * sizeof(int));
        ngx_memcpy(CMSG_DATA(cm), fds,
                   (item->msg.memfd ? 2 : 1) * sizeof(int));

        n = sendmsg(link->connection->fd, &mh, MSG_NOSIGNAL);

        if (n == -1) {
            if (ngx_errno == NGX_EAGAIN || ngx_errno == ENOBUFS
                || ngx_errno == ETOOMANYREFS)
            {
                /* full, or too many descriptors in flight: later */
                continue;
            }

            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, ngx_errno,
                          "goim comet: hand-off to worker %P failed",
                          link->pid);
            link->eof = 1;
            continue;
        }

        ngx_queue_insert_tail(&link->inflight, &item->queue);
        ho->inflight++;

        if (item->memfd != -1) {
            /* the message holds the memfd now */
            close(item->memfd);
            item->memfd = -1;
        }

        return NGX_OK;
    }

    return NGX_AGAIN;
}


/* what waited for room: a link became writable, or a tick */

static void
ngx_goim_comet_handoff_retry(ngx_goim_comet_handoff_t *ho)
{
    ngx_queue_t                    *q;
    ngx_goim_comet_handoff_item_t  *item;

    while (!ngx_queue_empty(&ho->blocked)) {
        q = ngx_queue_head(&ho->blocked);
        item = ngx_queue_data(q, ngx_goim_comet_handoff_item_t, queue);
        ngx_queue_remove(q);

        if (ngx_goim_comet_handoff_send(ho, item) == NGX_AGAIN) {
            ngx_queue_insert_head(&ho->blocked, &item->queue);
            return;
        }
    }
}


/*
 * A connection that could not be handed on is drained, today's way: its
 * socket is still ours (nobody acknowledged it).
 */

static void
ngx_goim_comet_handoff_give_up(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_handoff_item_t *item, ngx_uint_t failed)
{
    ngx_goim_comet_handoff_stats_t  *st;

    /* the caller took it out of any queue */

    st = &ngx_goim_comet_board->stats;

    if (failed) {
        (void) ngx_atomic_fetch_add(&st->failed, 1);
    }

    if (item->type == NGX_GOIM_HANDOFF_CHANNEL) {
        (void) ngx_atomic_fetch_add(&st->drained, 1);
        ngx_goim_channel_drain(item->data, 0);

    } else {
        /* job reconnects and sends again what got no reply */
        (void) ngx_atomic_fetch_add(&st->sessions_closed, 1);
        ngx_goim_rpc_session_release(item->data);
    }

    ngx_goim_comet_handoff_item_free(item);
}


/* acknowledged: the connection is the new worker's, ours goes quietly */

static void
ngx_goim_comet_handoff_done(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_handoff_item_t *item)
{
    ngx_goim_comet_handoff_stats_t  *st;

    st = &ngx_goim_comet_board->stats;

    if (item->type == NGX_GOIM_HANDOFF_CHANNEL) {
        (void) ngx_atomic_fetch_add(&st->handed_off, 1);
        ngx_goim_channel_moved(item->data);

    } else {
        (void) ngx_atomic_fetch_add(&st->sessions_handed_off, 1);
        ngx_goim_rpc_session_release(item->data);
    }

    ngx_goim_comet_handoff_item_free(item);
}


static void
ngx_goim_comet_handoff_item_free(ngx_goim_comet_handoff_item_t *item)
{
    if (item->memfd != -1) {
        close(item->memfd);
    }

    if (item->payload) {
        ngx_free(item->payload);
    }

    ngx_free(item);
}


/* a link on fd, to or from (outbound or not) worker pid; NULL: fd closed */

static ngx_goim_comet_handoff_link_t *
ngx_goim_comet_handoff_link_create(ngx_goim_comet_handoff_t *ho, int fd,
    ngx_pid_t pid, ngx_uint_t outbound)
{
    ngx_connection_t               *c;
    ngx_goim_comet_handoff_link_t  *link;

    link = ngx_calloc(sizeof(ngx_goim_comet_handoff_link_t), ngx_cycle->log);
    c = ngx_get_connection(fd, ngx_cycle->log);

    if (link == NULL || c == NULL) {
        goto failed;
    }

    link->handoff = ho;
    link->connection = c;
    link->pid = pid;
    link->outbound = outbound ? 1 : 0;
    ngx_queue_init(&link->inflight);

    c->data = link;
    c->read->handler = ngx_goim_comet_handoff_link_read;
    c->write->handler = ngx_goim_comet_handoff_link_write;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;
    c->log = ngx_cycle->log;

    if (ngx_add_conn && ngx_add_conn(c) != NGX_OK) {
        goto failed;
    }

    ngx_queue_insert_tail(outbound ? &ho->links : &ho->inbound, &link->queue);

    return link;

failed:

    if (c) {
        ngx_free_connection(c);
    }

    ngx_free(link);
    close(fd);

    return NULL;
}


/* the new worker's side: links from old workers */

static void
ngx_goim_comet_handoff_accept(ngx_event_t *rev)
{
    int                             fd;
    ngx_pid_t                       pid;
    ngx_connection_t               *c, *lc;
    ngx_goim_comet_handoff_t       *ho;
    ngx_goim_comet_handoff_link_t  *link;

    lc = rev->data;
    ho = lc->data;

    if (lc->close) {
        /* QUIT: no new senders; those linked already may go on */
        lc->close = 0;

        (void) ngx_goim_comet_handoff_begin(ho->worker);

        if (ho->mode != NGX_GOIM_HANDOFF_MODE_NONE) {
            ngx_close_connection(lc);
            ho->listener = NULL;
        }

        return;
    }

    for ( ;; ) {
        fd = accept4(lc->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd == -1) {
            if (ngx_socket_errno != NGX_EAGAIN) {
                ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_socket_errno,
                              "goim comet: hand-off accept() failed");
            }

            return;
        }

        if (ngx_goim_comet_handoff_peer_allowed(fd, ngx_cycle->log, &pid)
            != NGX_OK)
        {
            close(fd);
            continue;
        }

        link = ngx_goim_comet_handoff_link_create(ho, fd, pid, 0);
        if (link == NULL) {
            continue;
        }

        c = link->connection;

        /* while an old worker may still send, this one stays */
        link->keepalive.handler = ngx_goim_comet_handoff_keepalive;
        link->keepalive.data = link;
        link->keepalive.log = ngx_cycle->log;
        link->keepalive.cancelable = 0;
        ngx_add_timer(&link->keepalive,
                      ho->worker->conf->handoff_timeout + 5000);

        c->read->ready = 1;
        ngx_goim_comet_handoff_link_read(c->read);
    }
}


/*
 * Only a worker of our own master, running as our user, may hand us a
 * connection: anyone else on the host could otherwise inject one.
 */

static ngx_int_t
ngx_goim_comet_handoff_peer_allowed(int fd, ngx_log_t *log, ngx_pid_t *pid)
{
    int            n;
    char          *p;
    char           path[64], buf[512];
    ssize_t        len;
    ngx_fd_t       f;
    ngx_pid_t      ppid;
    socklen_t      slen;
    struct ucred   cred;

    slen = sizeof(struct ucred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &slen) == -1) {
        return NGX_ERROR;
    }

    if (cred.uid != geteuid()) {
        goto refused;
    }

    n = snprintf(path, sizeof(path), "/proc/%d/stat", (int) cred.pid);
    if (n <= 0 || n >= (int) sizeof(path)) {
        goto refused;
    }

    f = open(path, O_RDONLY);
    if (f == -1) {
        goto refused;
    }

    len = read(f, buf, sizeof(buf) - 1);
    close(f);

    if (len <= 0) {
        goto refused;
    }

    buf[len] = '\0';

    /* "pid (comm) state ppid ...": comm may hold anything but the last ) */
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 1, " %*c %d", &n) != 1) {
        goto refused;
    }

    ppid = (ngx_pid_t) n;

    if (ppid != ngx_parent) {
        goto refused;
    }

    *pid = (ngx_pid_t) cred.pid;

    return NGX_OK;

refused:

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "goim comet: hand-off connection from pid %d uid %d "
                  "refused: not a worker of this nginx",
                  (int) cred.pid, (int) cred.uid);

    return NGX_DECLINED;
}


/*
 * A link's records (inbound) or acknowledgements (outbound).  An old
 * worker that went away leaves its records in the socket: they are read
 * to the end (EOF), never thrown away, since their descriptors are the
 * only ones left of those clients.
 */

static void
ngx_goim_comet_handoff_link_read(ngx_event_t *rev)
{
    int                             fds[2], nfds;
    ssize_t                         n;
    ngx_uint_t                      handled;
    ngx_connection_t               *c;
    struct iovec                    iov[2];
    struct msghdr                   mh;
    struct cmsghdr                 *cm;
    ngx_goim_handoff_msg_t          msg;
    ngx_goim_comet_handoff_link_t  *link;
    union {
        struct cmsghdr              cm;
        u_char                      space[CMSG_SPACE(2 * sizeof(int))];
    } cmsg;
    static u_char                   payload[NGX_GOIM_HANDOFF_INLINE];

    c = rev->data;
    link = c->data;

    if (c->close) {
        /* QUIT or the shutdown timer: the link lives until its EOF */
        c->close = 0;
    }

    if (link->nacks && ngx_goim_comet_handoff_flush_acks(link) != NGX_OK) {
        /* nothing more is adopted before the old worker hears */
        return;
    }

    for (handled = 0; /* void */; handled++) {

        if (handled == NGX_GOIM_HANDOFF_BATCH) {
            /* the acks, then the connections start, then the rest */
            if (ngx_goim_comet_handoff_flush_acks(link) == NGX_OK) {
                ngx_post_event(rev, &ngx_posted_next_events);
            }

            return;
        }

        iov[0].iov_base = &msg;
        iov[0].iov_len = sizeof(ngx_goim_handoff_msg_t);
        iov[1].iov_base = payload;
        iov[1].iov_len = sizeof(payload);

        ngx_memzero(&mh, sizeof(struct msghdr));
        mh.msg_iov = iov;
        mh.msg_iovlen = 2;
        mh.msg_control = cmsg.space;
        mh.msg_controllen = sizeof(cmsg.space);

        n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);

        if (n == -1) {
            if (ngx_errno == NGX_EAGAIN) {
                break;
            }

            if (ngx_errno == NGX_ECONNRESET) {
                /* the sender closed with acks unread: records may follow */
                continue;
            }

            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, ngx_errno,
                          "goim comet: hand-off recvmsg() failed");
            ngx_goim_comet_handoff_link_close(link);
            return;
        }

        if (n == 0) {
            ngx_goim_comet_handoff_link_close(link);
            return;
        }

        nfds = 0;
        fds[0] = -1;
        fds[1] = -1;

        for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                nfds = ngx_min(nfds, 2);
                ngx_memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
            }
        }

        if ((size_t) n < sizeof(ngx_goim_handoff_msg_t)
            || msg.magic != NGX_GOIM_HANDOFF_MAGIC
            || msg.version != NGX_GOIM_HANDOFF_VERSION
            || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
        {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                          "goim comet: bad hand-off record (%z bytes)", n);

            if (fds[0] != -1) {
                close(fds[0]);
            }

            if (fds[1] != -1) {
                close(fds[1]);
            }

            continue;
        }

        if (msg.type == NGX_GOIM_HANDOFF_ACK) {
            if (link->outbound) {
                ngx_goim_comet_handoff_acked(link, &msg);
            }

            continue;
        }

        if (link->outbound || fds[0] == -1) {
            if (fds[0] != -1) {
                close(fds[0]);
            }

            if (fds[1] != -1) {
                close(fds[1]);
            }

            continue;
        }

        if (msg.memfd && fds[1] == -1) {
            msg.len = (uint64_t) -1;        /* refused below */
        }

        if (!msg.memfd && (size_t) n - sizeof(ngx_goim_handoff_msg_t)
                          != msg.len)
        {
            msg.len = (uint64_t) -1;
        }

        /* the client's descriptor is a connection's now, or closed */
        ngx_goim_comet_handoff_receive(link, &msg, payload, fds[0],
                                       msg.memfd ? fds[1] : -1);

        if (!msg.memfd && fds[1] != -1) {
            close(fds[1]);
        }
    }

    if (link->nacks && ngx_goim_comet_handoff_flush_acks(link) == NGX_ERROR) {
        return;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_goim_comet_handoff_link_close(link);
    }
}


static void
ngx_goim_comet_handoff_link_write(ngx_event_t *wev)
{
    ngx_connection_t               *c;
    ngx_goim_comet_handoff_link_t  *link;

    c = wev->data;
    link = c->data;

    if (link->nacks) {
        if (ngx_goim_comet_handoff_flush_acks(link) == NGX_OK) {
            /* adopting resumes where it stopped */
            ngx_post_event(c->read, &ngx_posted_events);
        }

        return;
    }

    if (link->outbound) {
        ngx_goim_comet_handoff_retry(link->handoff);
    }
}


/*
 * One record from an old worker: the connection is adopted, or refused
 * and closed here (the old worker then drains its own copy).  Either
 * way an ack is owed; the connection starts once it is written.
 */

static void
ngx_goim_comet_handoff_receive(ngx_goim_comet_handoff_link_t *link,
    ngx_goim_handoff_msg_t *msg, u_char *payload, int fd, int memfd)
{
    u_char                        *p;
    size_t                         len;
    ssize_t                        n;
    ngx_int_t                      rc;
    ngx_goim_comet_handoff_t      *ho;
    ngx_goim_comet_handoff_ack_t  *ack;

    ho = link->handoff;
    p = payload;
    len = (size_t) msg->len;

    ack = &link->acks[link->nacks++];
    ngx_memzero(ack, sizeof(ngx_goim_comet_handoff_ack_t));
    ack->cookie = msg->cookie;
    ack->type = msg->type;
    ack->status = NGX_GOIM_HANDOFF_REFUSED;

    if (msg->len == (uint64_t) -1 || msg->len > NGX_GOIM_HANDOFF_MAX
        || (msg->type != NGX_GOIM_HANDOFF_CHANNEL
            && msg->type != NGX_GOIM_HANDOFF_SESSION))
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "goim comet: bad hand-off record from pid %P",
                      link->pid);
        close(fd);
        goto done;
    }

    if (memfd != -1) {
        p = ngx_alloc(len ? len : 1, ngx_cycle->log);
        if (p == NULL) {
            close(fd);
            goto done;
        }

        /* at 0: the file's offset is the sender's, past its write */
        n = pread(memfd, p, len, 0);

        if (n != (ssize_t) len) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          "goim comet: hand-off memfd read failed");
            ngx_free(p);
            close(memfd);
            close(fd);
            goto done;
        }

        close(memfd);
    }

    rc = ngx_goim_comet_handoff_adopt(ho, msg, p, len, fd, ack);

    if (p != payload) {
        ngx_free(p);
    }

    if (rc != NGX_OK) {
        goto done;
    }

    ack->status = NGX_GOIM_HANDOFF_ADOPTED;
    ack->frozen_ns = msg->frozen_ns;

    (void) ngx_atomic_fetch_add(msg->type == NGX_GOIM_HANDOFF_CHANNEL
                                ? &ngx_goim_comet_board->stats.adopted
                                : &ngx_goim_comet_board->stats
                                      .sessions_adopted, 1);

    return;

done:

    ack->data = NULL;
}


/* NGX_OK: adopted; otherwise fd is closed */

static ngx_int_t
ngx_goim_comet_handoff_adopt(ngx_goim_comet_handoff_t *ho,
    ngx_goim_handoff_msg_t *msg, u_char *p, size_t len, int fd,
    ngx_goim_comet_handoff_ack_t *ack)
{
    uint32_t                  in_len, out_len;
    ngx_str_t                 in, out;
    socklen_t                 llen, plen;
    ngx_msec_t                deadline;
    ngx_sockaddr_t            local, peer;
    ngx_connection_t         *c;
    ngx_goim_channel_t       *ch;
    ngx_goim_rpc_session_t   *s;
    ngx_goim_comet_server_t  *srv;

    llen = sizeof(ngx_sockaddr_t);
    plen = sizeof(ngx_sockaddr_t);

    if (getsockname(fd, &local.sockaddr, &llen) == -1
        || getpeername(fd, &peer.sockaddr, &plen) == -1)
    {
        /* the client went meanwhile */
        close(fd);
        return NGX_DECLINED;
    }

    srv = ngx_goim_comet_handoff_server(ho, msg, &p, &len, &local.sockaddr,
                                        llen);
    if (srv == NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim comet: no server of this configuration takes a "
                      "handed-off connection, it is drained");
        close(fd);
        return NGX_DECLINED;
    }

    c = ngx_goim_comet_handoff_connection(fd, srv, &local, llen, &peer, plen);
    if (c == NULL) {
        close(fd);
        return NGX_DECLINED;
    }

    if (msg->type == NGX_GOIM_HANDOFF_CHANNEL) {
        c->log->action = msg->kind == NGX_GOIM_COMET_SERVER_WS
                         ? "serving goim WebSocket client"
                         : "serving goim client";

        ch = ngx_goim_channel_adopt(c, srv->conf,
                                    msg->kind == NGX_GOIM_COMET_SERVER_WS,
                                    p, len,
                                    ngx_goim_comet_handoff_channel_finalize,
                                    &deadline);
        if (ch == NULL) {
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "goim comet: a handed-off client could not be "
                          "adopted, it is drained");
            ngx_goim_comet_handoff_close_connection(c);
            return NGX_DECLINED;
        }

        ack->data = ch;
        ack->deadline = deadline;

        /* a worker quitting meanwhile passes it on too */
        ho->sweep = 1;

        return NGX_OK;
    }

    c->log->action = "serving goim push RPC";

    if (len < 2 * sizeof(uint32_t)) {
        goto bad;
    }

    ngx_memcpy(&in_len, p, sizeof(uint32_t));
    ngx_memcpy(&out_len, p + sizeof(uint32_t), sizeof(uint32_t));

    if ((uint64_t) in_len + out_len != len - 2 * sizeof(uint32_t)) {
        goto bad;
    }

    in.data = p + 2 * sizeof(uint32_t);
    in.len = in_len;
    out.data = in.data + in_len;
    out.len = out_len;

    ack->frozen = (ho->mode == NGX_GOIM_HANDOFF_MODE_RELOAD);

    s = ngx_goim_comet_push_adopt(ho->worker, c, srv->conf,
                                  ngx_goim_comet_handoff_session_close,
                                  &in, &out, ack->frozen);
    if (s == NULL) {
        goto bad;
    }

    ack->data = s;

    return NGX_OK;

bad:

    ngx_log_error(NGX_LOG_WARN, c->log, 0,
                  "goim comet: a handed-off push connection could not be "
                  "adopted, it is closed");
    ngx_goim_comet_handoff_close_connection(c);

    return NGX_DECLINED;
}


/*
 * What takes a connection here: a TCP or push one by the address it was
 * accepted on (a wildcard listen of the same port matches any), a
 * WebSocket one by its server's name and location, which come first in
 * its record.
 */

static ngx_goim_comet_server_t *
ngx_goim_comet_handoff_server(ngx_goim_comet_handoff_t *ho,
    ngx_goim_handoff_msg_t *msg, u_char **p, size_t *len,
    struct sockaddr *local, socklen_t socklen)
{
    size_t                    names;
    ngx_str_t                 server_name, location;
    ngx_uint_t                i;
    ngx_goim_comet_server_t  *srv, *wildcard;

    if (ho->worker->conf->servers == NULL) {
        return NULL;
    }

    srv = ho->worker->conf->servers->elts;
    wildcard = NULL;

    if (msg->kind == NGX_GOIM_COMET_SERVER_WS) {
        names = (size_t) msg->server_name_len + msg->location_len;

        if (names > *len) {
            return NULL;
        }

        server_name.data = *p;
        server_name.len = msg->server_name_len;
        location.data = *p + server_name.len;
        location.len = msg->location_len;

        *p += names;
        *len -= names;

        for (i = 0; i < ho->worker->conf->servers->nelts; i++) {
            if (srv[i].kind == NGX_GOIM_COMET_SERVER_WS
                && srv[i].server_name.len == server_name.len
                && srv[i].location.len == location.len
                && ngx_strncmp(srv[i].server_name.data, server_name.data,
                               server_name.len) == 0
                && ngx_strncmp(srv[i].location.data, location.data,
                               location.len) == 0)
            {
                return &srv[i];
            }
        }

        return NULL;
    }

    if (msg->kind != NGX_GOIM_COMET_SERVER_TCP
        && msg->kind != NGX_GOIM_COMET_SERVER_PUSH)
    {
        return NULL;
    }

    if ((msg->type == NGX_GOIM_HANDOFF_SESSION)
        != (msg->kind == NGX_GOIM_COMET_SERVER_PUSH))
    {
        return NULL;
    }

    for (i = 0; i < ho->worker->conf->servers->nelts; i++) {
        if (srv[i].kind != msg->kind
            || srv[i].sockaddr.sockaddr.sa_family != local->sa_family
            || ngx_inet_get_port(&srv[i].sockaddr.sockaddr)
               != ngx_inet_get_port(local))
        {
            continue;
        }

        if (ngx_cmp_sockaddr(&srv[i].sockaddr.sockaddr, srv[i].socklen,
                             local, socklen, 1)
            == NGX_OK)
        {
            return &srv[i];
        }

        if (ngx_inet_wildcard(&srv[i].sockaddr.sockaddr)) {
            wildcard = &srv[i];
        }
    }

    return wildcard;
}


/* a connection as ngx_event_accept() makes one, for a descriptor we got */

static ngx_connection_t *
ngx_goim_comet_handoff_connection(int fd, ngx_goim_comet_server_t *srv,
    ngx_sockaddr_t *local, socklen_t llen, ngx_sockaddr_t *peer,
    socklen_t plen)
{
    ngx_log_t         *log;
    ngx_pool_t        *pool;
    ngx_connection_t  *c;

    pool = ngx_create_pool(512, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    log = ngx_palloc(pool, sizeof(ngx_log_t));
    if (log == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    c = ngx_get_connection(fd, ngx_cycle->log);
    if (c == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    c->pool = pool;

    *log = *srv->log;
    log->handler = ngx_goim_comet_handoff_log_error;
    log->data = c;
    log->action = NULL;

    c->log = log;
    pool->log = log;
    c->read->log = log;
    c->write->log = log;

    c->recv = ngx_recv;
    c->send = ngx_send;
    c->recv_chain = ngx_recv_chain;
    c->send_chain = ngx_send_chain;
    c->log_error = NGX_ERROR_INFO;
    c->type = SOCK_STREAM;
    c->start_time = ngx_current_msec;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);

    c->sockaddr = ngx_palloc(pool, plen);
    c->local_sockaddr = ngx_palloc(pool, llen);
    c->addr_text.data = ngx_pnalloc(pool, NGX_SOCKADDR_STRLEN);

    if (c->sockaddr == NULL || c->local_sockaddr == NULL
        || c->addr_text.data == NULL)
    {
        goto failed;
    }

    ngx_memcpy(c->sockaddr, peer, plen);
    c->socklen = plen;
    ngx_memcpy(c->local_sockaddr, local, llen);
    c->local_socklen = llen;
    c->addr_text.len = ngx_sock_ntop(c->sockaddr, c->socklen,
                                     c->addr_text.data, NGX_SOCKADDR_STRLEN,
                                     0);

    /* nothing runs on it before its owner starts it */
    c->read->handler = ngx_goim_comet_handoff_unstarted;
    c->write->handler = ngx_goim_comet_handoff_unstarted;

#if (NGX_STAT_STUB)
    (void) ngx_atomic_fetch_add(ngx_stat_active, 1);
#endif

    if (ngx_add_conn && ngx_add_conn(c) != NGX_OK) {
#if (NGX_STAT_STUB)
        (void) ngx_atomic_fetch_add(ngx_stat_active, -1);
#endif
        goto failed;
    }

    return c;

failed:

    /* the caller closes the descriptor */
    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);
    ngx_destroy_pool(pool);

    return NULL;
}


static void
ngx_goim_comet_handoff_unstarted(ngx_event_t *ev)
{
    /* resume() reads and writes what came meanwhile */
}


static u_char *
ngx_goim_comet_handoff_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    u_char            *p;
    ngx_connection_t  *c;

    p = buf;

    if (log->action) {
        p = ngx_snprintf(buf, len, " while %s", log->action);
        len -= p - buf;
        buf = p;
    }

    c = log->data;

    p = ngx_snprintf(buf, len, ", client: %V (handed over)", &c->addr_text);

    return p;
}


static void
ngx_goim_comet_handoff_close_connection(ngx_connection_t *c)
{
    ngx_pool_t  *pool;

#if (NGX_STAT_STUB)
    (void) ngx_atomic_fetch_add(ngx_stat_active, -1);
#endif

    pool = c->pool;
    c->destroyed = 1;

    ngx_close_connection(c);
    ngx_destroy_pool(pool);
}


static void
ngx_goim_comet_handoff_channel_finalize(ngx_goim_channel_t *ch)
{
    ngx_goim_comet_handoff_close_connection(ch->connection);
}


static void
ngx_goim_comet_handoff_session_close(void *data)
{
    ngx_goim_comet_handoff_close_connection(data);
}


/*
 * An ack is written: the connection is ours alone, it starts.  A session
 * adopted by a worker that quits itself is passed on in turn.
 */

static void
ngx_goim_comet_handoff_start(ngx_goim_comet_handoff_t *ho,
    ngx_goim_comet_handoff_ack_t *ack)
{
    ngx_connection_t               *c;
    ngx_goim_channel_t             *ch;
    ngx_goim_rpc_session_t         *s;
    ngx_goim_comet_handoff_item_t  *item;

    if (ack->status != NGX_GOIM_HANDOFF_ADOPTED || ack->data == NULL) {
        return;
    }

    /* served by nobody from its freeze in the old worker until now */
    ngx_goim_comet_handoff_freeze_time(ack->frozen_ns);

    if (ack->type == NGX_GOIM_HANDOFF_CHANNEL) {
        ch = ack->data;

        if (ho->mode == NGX_GOIM_HANDOFF_MODE_RELOAD
            && ho->phase >= NGX_GOIM_HANDOFF_CHANNELS_DONE)
        {
            /* this worker's own hand-off is past its clients */
            (void) ngx_atomic_fetch_add(&ngx_goim_comet_board->stats.drained,
                                        1);
            ngx_goim_channel_drain(ch, 0);
            return;
        }

        if (ho->mode == NGX_GOIM_HANDOFF_MODE_RELOAD) {
            ho->sweep = 1;
        }

        ngx_goim_channel_resume(ch, ack->deadline);
        return;
    }

    s = ack->data;
    c = ngx_goim_rpc_session_connection(s);

    if (ack->frozen) {
        item = ngx_calloc(sizeof(ngx_goim_comet_handoff_item_t),
                          ngx_cycle->log);
        if (item == NULL) {
            /* job reconnects and sends again what got no reply */
            ngx_goim_rpc_session_release(s);
            return;
        }

        item->type = NGX_GOIM_HANDOFF_SESSION;
        item->data = s;
        item->connection = c;
        item->memfd = -1;

        ngx_queue_insert_tail(&ho->sessions, &item->queue);

    } else if (ho->mode != NGX_GOIM_HANDOFF_MODE_NONE) {
        /* the worker began to quit meanwhile: its read handler sees it */
        c->close = 1;
    }

    ngx_goim_rpc_session_resume(s);
}


/* the old worker's side: a new worker answered for a connection */

static void
ngx_goim_comet_handoff_acked(ngx_goim_comet_handoff_link_t *link,
    ngx_goim_handoff_msg_t *msg)
{
    ngx_queue_t                    *q;
    ngx_goim_comet_handoff_t       *ho;
    ngx_goim_comet_handoff_item_t  *item;

    ho = link->handoff;

    for (q = ngx_queue_head(&link->inflight);
         q != ngx_queue_sentinel(&link->inflight);
         q = ngx_queue_next(q))
    {
        item = ngx_queue_data(q, ngx_goim_comet_handoff_item_t, queue);

        if (item->msg.cookie != msg->cookie) {
            continue;
        }

        ngx_queue_remove(q);
        ho->inflight--;

        if (msg->status == NGX_GOIM_HANDOFF_ADOPTED) {
            ngx_goim_comet_handoff_done(ho, item);

        } else {
            ngx_goim_comet_handoff_give_up(ho, item, 1);
        }

        return;
    }

    ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                  "goim comet: hand-off ack for an unknown connection from "
                  "pid %P", link->pid);
}


/*
 * The acks owed, each followed by its connection's start.  NGX_AGAIN:
 * the link is full, its write event goes on; NGX_ERROR: the old worker
 * is gone and the link with it (the connections started anyway: nobody
 * else has them now).
 */

static ngx_int_t
ngx_goim_comet_handoff_flush_acks(ngx_goim_comet_handoff_link_t *link)
{
    ssize_t                        n;
    ngx_uint_t                     i;
    ngx_goim_handoff_msg_t         msg;
    ngx_goim_comet_handoff_ack_t  *ack;

    for (i = 0; i < link->nacks; i++) {
        ack = &link->acks[i];

        ngx_memzero(&msg, sizeof(ngx_goim_handoff_msg_t));
        msg.magic = NGX_GOIM_HANDOFF_MAGIC;
        msg.version = NGX_GOIM_HANDOFF_VERSION;
        msg.type = NGX_GOIM_HANDOFF_ACK;
        msg.status = ack->status;
        msg.cookie = ack->cookie;

        n = send(link->connection->fd, &msg, sizeof(ngx_goim_handoff_msg_t),
                 MSG_NOSIGNAL);

        if (n == -1 && (ngx_errno == NGX_EAGAIN || ngx_errno == ENOBUFS)) {
            ngx_memmove(link->acks, &link->acks[i],
                        (link->nacks - i)
                        * sizeof(ngx_goim_comet_handoff_ack_t));
            link->nacks -= i;

            if (ngx_handle_write_event(link->connection->write, 0) != NGX_OK)
            {
                ngx_goim_comet_handoff_link_close(link);
                return NGX_ERROR;
            }

            return NGX_AGAIN;
        }

        if (n == -1) {
            ngx_memmove(link->acks, &link->acks[i],
                        (link->nacks - i)
                        * sizeof(ngx_goim_comet_handoff_ack_t));
            link->nacks -= i;

            /* link_close() starts what is left */
            ngx_goim_comet_handoff_link_close(link);
            return NGX_ERROR;
        }

        ngx_goim_comet_handoff_start(link->handoff, ack);
    }

    link->nacks = 0;

    return NGX_OK;
}


/*
 * A link ends.  Outbound: the new worker is gone (its records were read
 * to EOF by now, acks included): what it did not acknowledge is still
 * ours and goes to another.  Inbound: the old worker is done or gone;
 * acks it did not get are moot, the connections are ours.
 */

static void
ngx_goim_comet_handoff_link_close(ngx_goim_comet_handoff_link_t *link)
{
    ngx_uint_t                      i;
    ngx_queue_t                    *q;
    ngx_goim_comet_handoff_t       *ho;
    ngx_goim_comet_handoff_item_t  *item;

    ho = link->handoff;

    ngx_queue_remove(&link->queue);
    link->eof = 1;

    if (link->outbound) {
        if (!ngx_queue_empty(&link->inflight)) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "goim comet: hand-off link to worker %P lost with "
                          "connections not acknowledged, handing them to "
                          "another", link->pid);
        }

        while (!ngx_queue_empty(&link->inflight)) {
            q = ngx_queue_head(&link->inflight);
            item = ngx_queue_data(q, ngx_goim_comet_handoff_item_t, queue);
            ngx_queue_remove(q);
            ho->inflight--;

            if (ngx_goim_comet_handoff_send(ho, item) == NGX_AGAIN) {
                ngx_queue_insert_tail(&ho->blocked, &item->queue);
            }
        }

    } else {
        for (i = 0; i < link->nacks; i++) {
            ngx_goim_comet_handoff_start(ho, &link->acks[i]);
        }

        link->nacks = 0;

        if (link->keepalive.timer_set) {
            ngx_del_timer(&link->keepalive);
        }
    }

    ngx_close_connection(link->connection);
    ngx_free(link);
}


/* an inbound link keeps its worker while its old worker lives */

static void
ngx_goim_comet_handoff_keepalive(ngx_event_t *ev)
{
    ngx_goim_comet_handoff_link_t *link = ev->data;

    if (kill(link->pid, 0) == 0 || ngx_errno != NGX_ESRCH) {
        ngx_add_timer(ev, 1000);
        return;
    }

    /* what it sent before it went is read to EOF, then the link closes */
    link->connection->read->ready = 1;
    ngx_goim_comet_handoff_link_read(link->connection->read);
}


/* the time from a connection's freeze in the old worker to its adoption */

static void
ngx_goim_comet_handoff_freeze_time(uint64_t frozen_ns)
{
    uint64_t                         now, us;
    ngx_uint_t                       i;
    ngx_atomic_uint_t                max;
    ngx_goim_comet_handoff_stats_t  *st;

    st = &ngx_goim_comet_board->stats;
    now = ngx_goim_comet_zone_now_ns();
    us = now > frozen_ns ? (now - frozen_ns) / 1000 : 0;

    i = ngx_goim_comet_zone_bucket(ngx_goim_comet_freeze_bounds,
                                   NGX_GOIM_COMET_FREEZE_BUCKETS, us);

    (void) ngx_atomic_fetch_add(&st->freeze_us[i], 1);

    for ( ;; ) {
        max = st->freeze_max_us;

        if (us <= max || ngx_atomic_cmp_set(&st->freeze_max_us, max, us)) {
            break;
        }
    }
}


static void
ngx_goim_comet_handoff_name(struct sockaddr_un *sun, socklen_t *len,
    ngx_uint_t generation, ngx_uint_t worker)
{
    int  n;

    ngx_memzero(sun, sizeof(struct sockaddr_un));
    sun->sun_family = AF_UNIX;

    /* abstract: nothing on disk to clean up after a crash */
    n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
                 "goim-comet/%d/%lu/%lu", (int) ngx_parent,
                 (unsigned long) generation, (unsigned long) worker);

    *len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
}


/*
 * Out of time: what waits is drained, what is in flight is the new
 * workers' (they adopt what they read, even from a worker gone), every
 * client not on its way is drained.
 */

static void
ngx_goim_comet_handoff_abort(ngx_goim_comet_handoff_t *ho)
{
    ngx_queue_t                    *q, *next, *lq;
    ngx_goim_channel_t             *ch;
    ngx_goim_comet_worker_t        *wk;
    ngx_goim_comet_handoff_item_t  *item;
    ngx_goim_comet_handoff_link_t  *link;
    ngx_goim_comet_handoff_stats_t *st;

    wk = ho->worker;
    st = &ngx_goim_comet_board->stats;

    while (!ngx_queue_empty(&ho->blocked)) {
        q = ngx_queue_head(&ho->blocked);
        item = ngx_queue_data(q, ngx_goim_comet_handoff_item_t, queue);
        ngx_queue_remove(q);
        ngx_goim_comet_handoff_give_up(ho, item, 1);
    }

    while (!ngx_queue_empty(&ho->sessions)) {
        q = ngx_queue_head(&ho->sessions);
        item = ngx_queue_data(q, ngx_goim_comet_handoff_item_t, queue);
        ngx_queue_remove(q);
        ngx_goim_comet_handoff_give_up(ho, item, 1);
    }

    for (lq = ngx_queue_head(&ho->links);
         lq != ngx_queue_sentinel(&ho->links);
         lq = ngx_queue_next(lq))
    {
        link = ngx_queue_data(lq, ngx_goim_comet_handoff_link_t, queue);

        while (!ngx_queue_empty(&link->inflight)) {
            q = ngx_queue_head(&link->inflight);
            item = ngx_queue_data(q, ngx_goim_comet_handoff_item_t, queue);
            ngx_queue_remove(q);
            ho->inflight--;

            (void) ngx_atomic_fetch_add(&st->failed, 1);

            if (item->type == NGX_GOIM_HANDOFF_CHANNEL) {
                ngx_goim_channel_moved(item->data);

            } else {
                ngx_goim_rpc_session_release(item->data);
            }

            ngx_goim_comet_handoff_item_free(item);
        }
    }

    for (q = ngx_queue_head(&wk->all);
         q != ngx_queue_sentinel(&wk->all);
         q = next)
    {
        next = ngx_queue_next(q);
        ch = ngx_queue_data(q, ngx_goim_channel_t, queue);

        if (ch->state == NGX_GOIM_CHANNEL_MOVING || ch->adopting || ch->drain)
        {
            continue;
        }

        (void) ngx_atomic_fetch_add(&st->drained, 1);
        ngx_goim_channel_drain(ch, 0);
    }

    ho->sweep = 0;
}
