
/*
 * Copyright (C) ngx_goim authors
 */


#ifndef _NGX_GOIM_COMET_H_INCLUDED_
#define _NGX_GOIM_COMET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <ngx_goim_rpc.h>
#include <goim_ws.h>


#pragma GCC visibility push(hidden)


#define NGX_GOIM_COMET_ZONE_SIZE   (32 * 1024 * 1024)
#define NGX_GOIM_COMET_RING_SIZE   (4 * 1024 * 1024)


#define NGX_GOIM_COMET_HOP_BUCKETS  30


/*
 * One worker's counters; they live in the shared zone so the status page,
 * served by any worker, can add up every worker's.
 */
typedef struct {
    ngx_atomic_uint_t          conns_tcp;     /* open, any state */
    ngx_atomic_uint_t          conns_ws;
    ngx_atomic_uint_t          conns_sse;
    ngx_atomic_uint_t          conns_poll;    /* long-poll sessions */
    ngx_atomic_uint_t          online;        /* authenticated */
    ngx_atomic_uint_t          rooms;
    ngx_atomic_uint_t          push_calls;    /* push RPCs served */
    ngx_atomic_uint_t          relay_records; /* from other workers */
    ngx_atomic_uint_t          packets_out;   /* written to clients */
    ngx_atomic_uint_t          dropped;       /* a client's queue was full */
    ngx_atomic_uint_t          relay_dropped; /* a worker's queue was full */
    ngx_atomic_uint_t          write_slices;  /* writes left for a next turn */
    ngx_atomic_uint_t          auth_failed;
    ngx_atomic_uint_t          kicked;
    ngx_atomic_uint_t          bad_input;     /* closed for a bad packet */
    ngx_atomic_uint_t          locks_recovered;  /* a dead worker's */
    ngx_atomic_uint_t          token_refused; /* op 12/14 past its JWT */
    ngx_atomic_uint_t          rpc_auth_refused;  /* push RPC handshakes */

    /* SSE (ngx_goim_comet_sse.c) */
    ngx_atomic_uint_t          sse_pings;     /* comment lines written */
    ngx_atomic_uint_t          sse_beats;     /* heartbeats made for them */
    ngx_atomic_uint_t          sse_stalled;   /* closed: stopped reading */
    ngx_atomic_uint_t          ctl_calls;     /* control calls applied */
    ngx_atomic_uint_t          ctl_refused;   /* ... answered 4xx/5xx */

    /* long-poll (ngx_goim_comet_poll.c) */
    ngx_atomic_uint_t          poll_answered; /* polls answered 200 */
    ngx_atomic_uint_t          poll_timeouts; /* ... empty, at the timeout */
    ngx_atomic_uint_t          poll_expired;  /* sessions idle too long */

    /* room recovery (ngx_goim_comet_history.c), in packets */
    ngx_atomic_uint_t          history_msgs;  /* held, ever */
    ngx_atomic_uint_t          history_evicted;  /* past the size bound */
    ngx_atomic_uint_t          history_dropped;  /* out of memory */
    ngx_atomic_uint_t          history_breaks;   /* a run cut by a gap */
    ngx_atomic_uint_t          recover_ok;    /* resumes recovered */
    ngx_atomic_uint_t          recover_gap;   /* ... told "too old" */
    ngx_atomic_uint_t          recovered_msgs;
    ngx_atomic_uint_t          history_bytes; /* held now (a gauge) */
    ngx_atomic_uint_t          history_streams;

    /* permessage-deflate (ngx_goim_comet_deflate.c) */
    ngx_atomic_uint_t          deflated;      /* messages compressed */
    ngx_atomic_uint_t          deflate_in;    /* ... their bytes before */
    ngx_atomic_uint_t          deflate_out;   /* ... and after */
    ngx_atomic_uint_t          deflate_frames;   /* compressed frames
                                                 queued to clients */
    ngx_atomic_uint_t          deflate_skipped;  /* no smaller: sent plain */
    ngx_atomic_uint_t          deflate_failed;   /* zlib failed: plain */
    ngx_atomic_uint_t          inflated;      /* client messages */
    ngx_goim_rpc_counters_t    rpc;           /* link to logic, push RPC */

    /* records from other workers by hop time (ngx_goim_comet_relay.c) */
    ngx_atomic_uint_t          hop_us[NGX_GOIM_COMET_HOP_BUCKETS];
} ngx_goim_comet_stats_t;


/*
 * What the core module's directives set, and what stream {} adds to it
 * (the push listener).  Nothing here changes once configuration is read:
 * the live state is the worker's (ngx_goim_comet_worker_t), the shared
 * zone's (ngx_goim_comet_zone_t) or a channel's.
 */

typedef struct {
    ngx_str_t                  id;
    ngx_goim_rpc_upstream_t   *logic;
    ngx_msec_t                 rpc_timeout;
    ngx_uint_t                 rpc_max_timeouts;
    size_t                     rpc_max_backlog;
    ngx_msec_t                 rpc_retry;
    ngx_msec_t                 online_interval;

    ngx_str_t                  push_addr;     /* advertised to job */
    ngx_array_t               *addrs;         /* char *, for logic's nodes */
    ngx_int_t                  weight;
    ngx_str_t                  region;
    ngx_msec_t                 renew_interval;
    size_t                     zone_size;

    /* room recovery: per stream, per worker (ngx_goim_comet_history.c) */
    ngx_uint_t                 history;       /* packets, 0: none kept */
    ngx_msec_t                 history_ttl;
    size_t                     history_size;
    size_t                     ring_size;

    /* the RPC plane (goim_auth.h): NULL, or the secret both ways */
    goim_auth_secret_t        *rpc_secret;
    ngx_msec_t                 rpc_auth_timeout;
    ngx_str_t                  push_open;     /* a non-loopback push listen */

    ngx_int_t                  ws_deflate_level;  /* zlib's, 1-9 */

    ngx_uint_t                 drain_batch;   /* records per wake-up:
                                                 goim_comet_push batch= */
    ngx_shm_zone_t            *shm_zone;      /* NULL without stream {} */

    /* the reload hand-off (ngx_goim_comet_handoff.c) */
    ngx_flag_t                 handoff;
    ngx_msec_t                 handoff_timeout;
    ngx_msec_t                 drain_window;
    ngx_uint_t                 generation;    /* this configuration's */
    ngx_array_t               *servers;       /* ngx_goim_comet_server_t */
} ngx_goim_comet_conf_t;


/*
 * What can take over a handed-off connection in a configuration: a
 * goim_comet stream server or a goim_comet_push one, by the address the
 * connection was accepted on; a goim_comet_ws location, by its server's
 * name and its own.  Filled in by the stream and http modules.
 */

#define NGX_GOIM_COMET_SERVER_TCP   1
#define NGX_GOIM_COMET_SERVER_WS    2
#define NGX_GOIM_COMET_SERVER_PUSH  3

typedef struct {
    ngx_uint_t                 kind;
    ngx_sockaddr_t             sockaddr;      /* TCP, PUSH */
    socklen_t                  socklen;
    ngx_str_t                  server_name;   /* WS */
    ngx_str_t                  location;      /* WS */
    void                      *conf;          /* a channel's, a session's */
    ngx_log_t                 *log;
    void                      *http_srv;      /* WS: core confs, for the */
    void                      *http_loc;      /* name and log once merged */
} ngx_goim_comet_server_t;


#define NGX_GOIM_COMET_FREEZE_BUCKETS  16

/*
 * The hand-off's counters, for the life of the master: in memory every
 * generation of workers shares, so a reload does not reset them.
 */
typedef struct {
    ngx_atomic_t               handed_off;    /* client connections */
    ngx_atomic_t               adopted;
    ngx_atomic_t               drained;       /* closed instead */
    ngx_atomic_t               failed;        /* tried, then drained */
    ngx_atomic_t               sessions_handed_off;  /* push listener's */
    ngx_atomic_t               sessions_adopted;
    ngx_atomic_t               sessions_closed;
    ngx_atomic_t               freeze_max_us;
    ngx_atomic_t               freeze_us[NGX_GOIM_COMET_FREEZE_BUCKETS];
} ngx_goim_comet_handoff_stats_t;


/*
 * The shared zone of one configuration generation, as this process sees
 * it: made in init_conf, laid out by the master (ngx_goim_comet_zone.c),
 * inherited by every worker.
 */

typedef struct {
    ngx_cycle_t               *cycle;
    ngx_goim_comet_conf_t     *conf;
    void                      *sh;           /* ngx_goim_comet_shctx_t */
    int                       *eventfds;     /* one per worker */
    ngx_uint_t                 neventfds;
    int                        my_eventfd;   /* closed with the relay's
                                                connection, not here */
} ngx_goim_comet_zone_t;


typedef struct ngx_goim_comet_out_s      ngx_goim_comet_out_t;


/* a worker's room history (ngx_goim_comet_history.c) */
typedef struct {
    ngx_rbtree_t               streams;       /* by name; "": broadcasts */
    ngx_rbtree_node_t          sentinel;
    ngx_queue_t                entries;       /* every stream's, oldest
                                                 first */
    ngx_queue_t                lru;           /* streams, by last message */
    size_t                     bytes;
    ngx_uint_t                 nstreams;
} ngx_goim_comet_history_t;
typedef struct ngx_goim_comet_worker_s   ngx_goim_comet_worker_t;
typedef struct ngx_goim_comet_handoff_s  ngx_goim_comet_handoff_t;


/*
 * One worker's live state, made in init_process (ngx_goim_comet_worker.c)
 * and gone with the process.  Everything a worker changes while it runs
 * is here or in its channels, so that it can be written out whole.
 */

struct ngx_goim_comet_worker_s {
    ngx_cycle_t               *cycle;
    ngx_goim_comet_conf_t     *conf;
    ngx_goim_comet_zone_t     *zone;          /* NULL without stream {} */
    void                      *sh;            /* zone->sh, or NULL */

    ngx_uint_t                 worker;        /* this one's number */
    ngx_uint_t                 nworkers;      /* workers draining rings */
    uint64_t                   next_id;       /* of channels */

    ngx_goim_rpc_t             rpc;           /* its ctx: this struct */
    ngx_goim_rpc_peer_t       *logic_peer;
    ngx_rbtree_t               channels;      /* by key, authenticated */
    ngx_rbtree_node_t          sentinel;
    ngx_queue_t                all;           /* every channel */
    ngx_rbtree_t               rooms;         /* by name */
    ngx_rbtree_node_t          room_sentinel;
    ngx_queue_t                pacers;        /* paced broadcasts */
    ngx_goim_comet_history_t   history;
    ngx_uint_t                 exiting;       /* in exit_process */
    ngx_event_t                online_event;

    /* the relay across workers (ngx_goim_comet_relay.c) */
    ngx_connection_t          *relay_connection;  /* this one's eventfd */
    ngx_uint_t                 draining;      /* in the relay's drain */
    ngx_uint_t                 tables_rebuilds;  /* seen by this worker */

    /*
     * The one call that runs upward on purpose: a channel's write
     * handler calls it between two writes, so that records other workers
     * sent meanwhile join a long fan-out instead of waiting for its end.
     * Set by the relay when it starts; NULL without a zone.
     */
    void                     (*poll)(ngx_goim_comet_worker_t *wk);

    /* permessage-deflate's zlib streams (ngx_goim_comet_deflate.c) */
    void                      *deflate;

    /*
     * Long-poll: the polls this worker holds for sessions of other
     * workers, by id, until their answers come back in ring records
     * (ngx_goim_comet_relay.c); and the idle connection that nginx
     * closes when the worker quits, so that poll sessions, which have no
     * connection of their own, are closed then (the http module's).
     */
    ngx_rbtree_t               waiters;
    ngx_rbtree_node_t          waiter_sentinel;
    uint64_t                   next_waiter;
    ngx_connection_t          *poll_watch;

    ngx_goim_comet_out_t      *free_out;      /* output nodes to reuse */
    ngx_uint_t                 nfree_out;

    /*
     * Write events of channels with output queued, in order: a long
     * fan-out is written from here in slices (ngx_goim_comet_output.c),
     * and write_event is posted while the queue is not empty.
     */
    ngx_queue_t                write_posted;
    ngx_event_t                write_event;

    /*
     * The reload hand-off, NULL without it; quit is its hook for the
     * channels: the worker was told to quit, NGX_OK if their connections
     * are to be handed on (then they stay open meanwhile).
     */
    ngx_goim_comet_handoff_t  *handoff;
    ngx_int_t                (*quit)(ngx_goim_comet_worker_t *wk);

    ngx_goim_comet_stats_t    *stats;         /* shared, or local_stats */
    ngx_goim_comet_stats_t     local_stats;
};


typedef enum {
    NGX_GOIM_CHANNEL_HANDSHAKE = 0,   /* waiting for op 7 */
    NGX_GOIM_CHANNEL_AUTHING,         /* Connect call under way */
    NGX_GOIM_CHANNEL_ONLINE,
    NGX_GOIM_CHANNEL_MOVING,          /* sent to another process */
    NGX_GOIM_CHANNEL_CLOSED
} ngx_goim_channel_state_e;


/* one encoded packet, shared by reference among all its recipients */
typedef struct ngx_goim_comet_msg_s  ngx_goim_comet_msg_t;

struct ngx_goim_comet_msg_s {
    ngx_uint_t                 refs;
    size_t                     len;

    /* a room message or broadcast: its first packet's position, 0 none */
    uint64_t                   epoch;
    uint64_t                   seq;
    ngx_goim_comet_msg_t      *positioned;    /* as op 20s, once made */
    ngx_goim_comet_msg_t      *deflated;      /* as a compressed frame */

    /*
     * As SSE events, once made (ngx_goim_comet_events.c).  On that copy:
     * epoch, seq the last position of its stream (stream), key_* the
     * other stream's position its ids were written with.
     */
    ngx_goim_comet_msg_t      *sse;
    uint64_t                   key_epoch;
    uint64_t                   key_seq;
    ngx_uint_t                 events;        /* on that copy: how many */

    unsigned                   raw:1;         /* an OpRaw batch */
    unsigned                   frame:1;       /* bytes ready for the wire */
    unsigned                   ids:1;         /* SSE: events with ids */
    unsigned                   stream:1;      /* ... of this stream */
    unsigned                   ws_head_len:4; /* ws_head written, 0 not yet */
    unsigned                   deflate_tried:1;  /* deflated is NULL: sent
                                                 as it is */

    /*
     * Room for the WebSocket frame header right before the data, written
     * once, right-aligned, by the first WebSocket recipient: the frame is
     * then one piece for every one of them, written with one send().
     */
    u_char                     ws_head[10];
    u_char                     data[1];
};


struct ngx_goim_comet_out_s {
    ngx_goim_comet_out_t      *next;
    ngx_goim_comet_msg_t      *msg;
    u_char                    *pos;
    u_char                    *last;
    u_char                     uncounted;     /* not in ch->queued */
};


/* ngx_goim_comet_output_enqueue()'s force: past the queue's bound */
#define NGX_GOIM_COMET_OUT_FORCE      1
/* ... and not counted in it: a replay the client asked for (its size has
   a bound of its own) leaves the live pushes their room */
#define NGX_GOIM_COMET_OUT_REPLAY     2


typedef struct ngx_goim_channel_s  ngx_goim_channel_t;


/* what an SSE channel keeps besides a channel's (ngx_goim_comet_sse.c) */
typedef struct {
    uint64_t                   epoch[2];      /* the last position given */
    uint64_t                   seq[2];        /* in each stream, 0 none */
    uint64_t                   resume_epoch[2];   /* Last-Event-ID's */
    uint64_t                   resume_seq[2];
    ngx_uint_t                 stalled;       /* pings the queue refused */
    unsigned                   open:1;        /* the 200 is queued */
    unsigned                   resume:1;      /* Last-Event-ID given */
} ngx_goim_comet_sse_t;


/*
 * A long-poll's answer (ngx_goim_comet_poll.c): 200 with the events
 * (body, valid only during the waiter's answer()) and the cursor of the
 * last one, or an error status with its reason as body.  session: the
 * open's answer carries the session id.
 */
typedef struct {
    ngx_uint_t                 status;
    uint64_t                   cursor;
    u_char                    *body;
    size_t                     len;
    ngx_str_t                  session;
} ngx_goim_comet_answer_t;

typedef struct ngx_goim_comet_waiter_s  ngx_goim_comet_waiter_t;

/*
 * A poll waiting for its answer: an HTTP request on this worker, or one
 * another worker holds (a ring record carries the answer back there).
 * answer() runs exactly once per poll the session takes, and after it
 * the session holds no pointer to the waiter.
 */
struct ngx_goim_comet_waiter_s {
    ngx_rbtree_node_t          node;          /* the polling worker's, by
                                                 id, while the owner has
                                                 it (wk->waiters) */
    void                     (*answer)(ngx_goim_comet_waiter_t *w,
                                       ngx_goim_comet_answer_t *a);
    void                      *data;
    ngx_goim_channel_t        *channel;       /* holding it, or NULL */
    uint64_t                   cursor;        /* the poll's */
    ngx_uint_t                 worker;        /* remote: the polling one */
    unsigned                   open:1;        /* the session's first */
    unsigned                   remote:1;      /* wk->waiters has it */
};

/* what a long-poll session keeps besides a channel's and SSE's */
typedef struct {
    ngx_goim_comet_waiter_t   *held;          /* a poll, or NULL */
    uint64_t                   first;         /* number of the event the
                                                 head of ch->out starts
                                                 with */
    uint64_t                   sent;          /* the last event answered */
    ngx_event_t                timer;         /* the held poll's timeout */
    unsigned                   opened:1;      /* the open was answered */
} ngx_goim_comet_poll_t;

typedef struct {
    ngx_str_node_t             node;          /* name, in worker->rooms */
    ngx_queue_t                members;
    ngx_uint_t                 online;        /* members in this worker */
    int32_t                    all_online;    /* everywhere, from logic */
} ngx_goim_comet_room_t;

/* what the transport (TCP now, WebSocket later) gives a channel */
typedef struct {
    ngx_msec_t                 handshake_timeout;
    size_t                     max_body;
    ngx_uint_t                 queue_size;
    ngx_uint_t                 max_accepts;
    ngx_flag_t                 deflate;       /* WebSocket: offer it */
    size_t                     deflate_min_length;
    ngx_msec_t                 sse_ping;      /* SSE: comment lines */
    ngx_msec_t                 poll_timeout;  /* long-poll: a poll held */
    ngx_msec_t                 poll_idle;     /* ... a session without one */
} ngx_goim_channel_conf_t;


/* operations, sorted and unique (ngx_goim_comet_opset.c) */
typedef struct {
    int32_t                   *elts;          /* ngx_alloc()ed */
    ngx_uint_t                 nelts;
} ngx_goim_opset_t;


struct ngx_goim_channel_s {
    ngx_str_node_t             node;          /* key, in worker->channels */
    ngx_queue_t                queue;         /* in worker->all */
    ngx_connection_t          *connection;
    ngx_goim_comet_worker_t   *worker;
    ngx_goim_channel_conf_t   *conf;
    void                     (*finalize)(ngx_goim_channel_t *ch);
    void                      *owner;

    ngx_goim_channel_state_e   state;
    ngx_goim_rpc_call_t       *call;
    uint64_t                   id;            /* unique in a generation */

    int64_t                    mid;
    ngx_goim_comet_room_t     *room;
    ngx_queue_t                room_link;     /* in room->members */
    ngx_goim_opset_t           accepts;

    /* with a signed token: what ops 12 and 14 may ask for (restricted) */
    ngx_goim_opset_t           allowed_ops;
    ngx_str_t                 *allowed_rooms; /* one ngx_alloc() block */
    ngx_uint_t                 nallowed_rooms;
    ngx_msec_t                 heartbeat;
    ngx_msec_t                 renew_at;      /* next session renewal */

    u_char                    *in;
    size_t                     in_len;

    u_char                    *frag;          /* WebSocket reassembly */
    size_t                     frag_len;

    ngx_goim_comet_out_t      *out;
    ngx_goim_comet_out_t     **out_tail;
    ngx_uint_t                 queued;

    ngx_event_t               *drain;         /* a reload's late close */
    ngx_goim_comet_sse_t      *sse;           /* SSE, long-poll: the
                                                 events' state */
    ngx_goim_comet_poll_t     *poll;          /* long-poll only */
    ngx_goim_channel_state_e   moving_from;

    unsigned                   registered:1;
    unsigned                   moved:1;       /* handed off: no Disconnect */
    unsigned                   adopting:1;    /* handed to us, not yet
                                                 acknowledged: untouched */
    unsigned                   kicked:1;
    unsigned                   ws:1;
    unsigned                   restricted:1;
    unsigned                   acks:1;        /* sent op 18: ensure
                                                 messages come as op 19 */
    unsigned                   positions:1;   /* room messages come as
                                                 op 20 (recover) */
    unsigned                   online_unsure:1;  /* its ONLINE (first op
                                                 18) not confirmed yet */
    unsigned                   deflate:1;     /* permessage-deflate
                                                 negotiated */
    unsigned                   frag_deflated:1;  /* ch->frag is compressed */
};


extern ngx_module_t  ngx_goim_comet_module;

/* this process's worker state, from init_process on (worker.c) */
extern ngx_goim_comet_worker_t  *ngx_goim_comet_worker;


#define ngx_goim_channel_from_connection(c)                                  \
    ((ngx_goim_channel_t *) (c)->data)

/* room for one whole frame (WebSocket) or packet (TCP) */
#define ngx_goim_channel_in_size(ch)                                         \
    (((ch)->ws ? GOIM_WS_MAX_HEADER : 0) + GOIM_HEADER_LEN                   \
     + (ch)->conf->max_body)

#define ngx_goim_comet_get_conf(cycle)                                       \
    ((ngx_goim_comet_conf_t *) ngx_get_conf(cycle->conf_ctx,                 \
                                            ngx_goim_comet_module))


/*
 * Who allocates each kind of object, and who frees it:
 *
 * - the conf, the zone's context: cycle->pool, with the cycle;
 * - the worker state: cycle->pool, made in init_process;
 * - the shared tables' nodes, the rings: the zone's own slab pools;
 * - an SSE channel's state (ngx_goim_comet_sse_t): c->pool, with it;
 * - a long-poll session: a connection without a socket (fd -1, from the
 *   worker's connections) and a pool of its own, made by the http module
 *   and closed by its finalize(); the channel, SSE and poll state in
 *   that pool, as for any channel;
 * - a poll's waiter: the request's pool (r->pool) on the worker it came
 *   to; one the owner of its session holds for another worker: ngx_alloc()
 *   there, freed by its answer();
 * - a message's SSE copy: a message itself, held by msg->sse until the
 *   message goes or its fan-out ends (ngx_goim_comet_deliver.c);
 * - the SSE session secret: mmap() by the master, never freed;
 * - a channel and its key: c->pool, with the connection; what it holds
 *   besides is let go by its pool cleanup (ngx_goim_channel_cleanup());
 * - a channel's input buffer: ngx_alloc(), only while a packet is read in
 *   part, freed when it is whole (an idle connection holds none);
 * - a WebSocket message in fragments: ngx_alloc(), freed when whole;
 * - accepts and allowed operations: ngx_alloc() (they grow with op 14),
 *   freed by ngx_goim_opset_free() in the cleanup;
 * - a token's allowed rooms: c->pool, once, at auth;
 * - a message (ngx_goim_comet_msg_t): ngx_alloc(), counted references,
 *   freed by the last ngx_goim_comet_msg_release(); so are its variants
 *   (positioned, deflated), each held by the message until it goes;
 * - the zlib streams of permessage-deflate: one pair per worker, made at
 *   first use, freed in exit_process (ngx_goim_comet_deflate_free());
 * - an output node: the worker's free list, refilled by ngx_alloc() and
 *   trimmed to NGX_GOIM_COMET_FREE_OUT (ngx_goim_comet_output.c);
 * - a room, a paced broadcast: ngx_alloc(), freed with its last member,
 *   at its last tick, or at exit.
 */


/* ngx_goim_comet_worker.c */
ngx_goim_comet_worker_t *ngx_goim_comet_worker_create(ngx_cycle_t *cycle);
void ngx_goim_comet_worker_destroy(ngx_goim_comet_worker_t *wk);


/* ngx_goim_comet_channel.c: lifecycle, read loop, goim operations */

/* a channel's transport, ngx_goim_channel_create()'s ws */
#define NGX_GOIM_CHANNEL_TCP  0
#define NGX_GOIM_CHANNEL_WS   1
#define NGX_GOIM_CHANNEL_SSE  2
#define NGX_GOIM_CHANNEL_POLL 3

void ngx_goim_channel_conf_init(ngx_goim_channel_conf_t *conf);
char *ngx_goim_channel_conf_merge(ngx_conf_t *cf,
    ngx_goim_channel_conf_t *conf, ngx_goim_channel_conf_t *prev);

ngx_goim_channel_t *ngx_goim_channel_create(ngx_connection_t *c,
    ngx_goim_channel_conf_t *conf, ngx_uint_t ws,
    void (*finalize)(ngx_goim_channel_t *ch), void *owner);
void ngx_goim_channel_start(ngx_goim_channel_t *ch, u_char *data,
    size_t len);

void ngx_goim_channel_close_all(ngx_goim_comet_worker_t *wk);
ngx_goim_channel_t *ngx_goim_channel_lookup(ngx_goim_comet_worker_t *wk,
    ngx_str_t *key);
ngx_int_t ngx_goim_channel_accepts(ngx_goim_channel_t *ch, int32_t op);
void ngx_goim_channel_kick(ngx_goim_channel_t *ch);

/* the reload hand-off's side of a channel */
ngx_uint_t ngx_goim_channel_movable(ngx_goim_channel_t *ch);
size_t ngx_goim_channel_export_size(ngx_goim_channel_t *ch);
u_char *ngx_goim_channel_export(ngx_goim_channel_t *ch, u_char *p);
void ngx_goim_channel_moved(ngx_goim_channel_t *ch);
void ngx_goim_channel_drain(ngx_goim_channel_t *ch, ngx_msec_t delay);
ngx_goim_channel_t *ngx_goim_channel_adopt(ngx_connection_t *c,
    ngx_goim_channel_conf_t *conf, ngx_uint_t ws, u_char *p, size_t len,
    void (*finalize)(ngx_goim_channel_t *ch), ngx_msec_t *deadline);
void ngx_goim_channel_resume(ngx_goim_channel_t *ch, ngx_msec_t deadline);


/* the client's own operation, made by a control call (SSE, long-poll) */
ngx_int_t ngx_goim_channel_control(ngx_goim_channel_t *ch, int32_t op,
    u_char *body, size_t len);

/* a poll of a long-poll session: NGX_DECLINED not live (w untouched) */
ngx_int_t ngx_goim_channel_poll(ngx_goim_channel_t *ch, uint64_t cursor,
    ngx_goim_comet_waiter_t *w);


/* ngx_goim_comet_poll.c: long-poll sessions' cursors, polls, answers */
void ngx_goim_comet_poll_init(ngx_goim_channel_t *ch);
void ngx_goim_comet_poll_open(ngx_goim_channel_t *ch,
    ngx_goim_comet_waiter_t *w);
void ngx_goim_comet_poll_take(ngx_goim_channel_t *ch, uint64_t cursor,
    ngx_goim_comet_waiter_t *w);
void ngx_goim_comet_poll_flush(ngx_goim_channel_t *ch);
void ngx_goim_comet_poll_fail(ngx_goim_channel_t *ch, ngx_uint_t status,
    ngx_str_t *reason);
void ngx_goim_comet_poll_close(ngx_goim_channel_t *ch);
void ngx_goim_comet_poll_cancel(ngx_goim_comet_waiter_t *w);
void ngx_goim_comet_poll_reply(ngx_goim_comet_waiter_t *w,
    ngx_uint_t status, uint64_t cursor, const char *reason);


/* ngx_goim_comet_sse.c: the SSE transport's answer, pings, reads */
ngx_int_t ngx_goim_comet_sse_open(ngx_goim_channel_t *ch);
void ngx_goim_comet_sse_fail(ngx_goim_channel_t *ch, ngx_uint_t status,
    ngx_str_t *reason);
ngx_int_t ngx_goim_comet_sse_ping(ngx_goim_channel_t *ch);
ngx_int_t ngx_goim_comet_sse_discard(ngx_goim_channel_t *ch);


/* ngx_goim_comet_events.c: messages as SSE events */
size_t ngx_goim_comet_events_size(ngx_goim_comet_msg_t *msg);
ngx_uint_t ngx_goim_comet_events_write(ngx_goim_comet_sse_t *sse,
    ngx_uint_t positions, ngx_goim_comet_msg_t *msg,
    ngx_goim_comet_msg_t *sm);
ngx_int_t ngx_goim_comet_events_last_id(ngx_str_t *id, uint64_t *epoch,
    uint64_t *seq);


/* ngx_goim_comet_session.c: SSE session ids */
#define NGX_GOIM_COMET_SESSION_MAC  22        /* base64url of 16 bytes */

ngx_int_t ngx_goim_comet_session_init_module(ngx_cycle_t *cycle);
size_t ngx_goim_comet_session_len(ngx_str_t *key);
u_char *ngx_goim_comet_session(u_char *p, ngx_str_t *key);
ngx_int_t ngx_goim_comet_session_key(ngx_str_t *session, ngx_str_t *key);


/* ngx_goim_comet_ws.c: WebSocket framing */

typedef struct {
    u_char                    *data;          /* NGX_OK: the message */
    size_t                     len;
    ngx_uint_t                 reassembled;   /* data is to be ngx_free()d */
    ngx_uint_t                 status;        /* NGX_DECLINED: to send */
    const char                *reason;        /* for the log, or NULL */
    u_char                     buf[64];       /* reason's room */
} ngx_goim_comet_ws_in_t;

ngx_int_t ngx_goim_comet_ws_read(ngx_goim_channel_t *ch, size_t *pos,
    ngx_goim_comet_ws_in_t *in);
void ngx_goim_comet_ws_close(ngx_goim_channel_t *ch, ngx_uint_t status);


/* ngx_goim_comet_deflate.c: permessage-deflate (RFC 7692) */
ngx_int_t ngx_goim_comet_deflate(ngx_goim_comet_worker_t *wk, u_char *data,
    size_t len, u_char **out, size_t *out_len, ngx_log_t *log);
ngx_int_t ngx_goim_comet_ws_inflate(ngx_goim_channel_t *ch, u_char *data,
    size_t len, size_t max, ngx_goim_comet_ws_in_t *in);
void ngx_goim_comet_deflate_free(ngx_goim_comet_worker_t *wk);


/* ngx_goim_comet_history.c: room recovery */
#define NGX_GOIM_COMET_STREAM_ROOM  0
#define NGX_GOIM_COMET_STREAM_ALL   1

void ngx_goim_comet_history_init(ngx_goim_comet_worker_t *wk);
void ngx_goim_comet_history_free(ngx_goim_comet_worker_t *wk);
void ngx_goim_comet_history_add(ngx_goim_comet_worker_t *wk, ngx_str_t *name,
    ngx_goim_comet_msg_t *msg);
ngx_goim_comet_msg_t *ngx_goim_comet_msg_positioned(ngx_goim_comet_msg_t *msg,
    ngx_uint_t kind);
ngx_int_t ngx_goim_comet_history_recover(ngx_goim_channel_t *ch,
    ngx_str_t *name, ngx_uint_t kind, uint64_t epoch, uint64_t seq,
    uint64_t *pos_epoch, uint64_t *pos_seq, ngx_uint_t *missed);


/* ngx_goim_comet_output.c: messages and the output queue */
ngx_goim_comet_msg_t *ngx_goim_comet_msg_create(size_t len, ngx_log_t *log);
void ngx_goim_comet_msg_release(ngx_goim_comet_msg_t *msg);

/* NGX_OK queued, NGX_DECLINED refused (closed, queue full), NGX_ERROR */
ngx_int_t ngx_goim_comet_output_enqueue(ngx_goim_channel_t *ch,
    ngx_goim_comet_msg_t *msg, ngx_uint_t force);
ngx_int_t ngx_goim_channel_enqueue_raw(ngx_goim_channel_t *ch,
    ngx_goim_comet_msg_t *msg);
/* a push: as enqueue, and a full queue is counted and logged */
ngx_int_t ngx_goim_channel_push(ngx_goim_channel_t *ch,
    ngx_goim_comet_msg_t *msg);
ngx_int_t ngx_goim_comet_output_flush(ngx_goim_channel_t *ch);
/* wk->write_event's handler (worker.c arms it) */
void ngx_goim_comet_output_write_posted(ngx_event_t *ev);
void ngx_goim_comet_output_free(ngx_goim_channel_t *ch);
/* the head of the queue is done with (written, or confirmed by a poll) */
void ngx_goim_comet_output_retire(ngx_goim_channel_t *ch,
    ngx_goim_comet_out_t *out);
void ngx_goim_comet_output_free_all(ngx_goim_comet_worker_t *wk);


/* ngx_goim_comet_room.c: this worker's rooms */
ngx_goim_comet_room_t *ngx_goim_room_lookup(ngx_goim_comet_worker_t *wk,
    ngx_str_t *name);
ngx_int_t ngx_goim_room_join(ngx_goim_channel_t *ch, ngx_str_t *name);
void ngx_goim_room_leave(ngx_goim_channel_t *ch);
int32_t ngx_goim_room_online(ngx_goim_comet_room_t *room);


/* ngx_goim_comet_opset.c */
ngx_uint_t ngx_goim_opset_sort(int32_t *ops, ngx_uint_t n);
ngx_uint_t ngx_goim_opset_count(u_char *p, size_t len);
ngx_int_t ngx_goim_opset_parse(u_char *p, size_t len, int32_t *ops,
    ngx_uint_t *n);
ngx_int_t ngx_goim_opset_init(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n, ngx_uint_t max, ngx_log_t *log);
ngx_int_t ngx_goim_opset_add(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n, ngx_uint_t max, ngx_log_t *log);
void ngx_goim_opset_remove(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n);
ngx_uint_t ngx_goim_opset_has(ngx_goim_opset_t *set, int32_t op);
ngx_int_t ngx_goim_opset_covers(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n, int32_t *missing);
void ngx_goim_opset_free(ngx_goim_opset_t *set);


/* ngx_goim_comet_deliver.c: to this worker's channels */
ngx_uint_t ngx_goim_comet_deliver_key(ngx_goim_comet_worker_t *wk,
    ngx_str_t *key, int32_t op, ngx_uint_t ack_filter,
    ngx_goim_comet_msg_t *msg);
void ngx_goim_comet_deliver_room(ngx_goim_comet_worker_t *wk,
    ngx_str_t *name, ngx_goim_comet_msg_t *msg);
void ngx_goim_comet_deliver_all(ngx_goim_comet_worker_t *wk, int32_t op,
    ngx_goim_comet_msg_t *msg, ngx_uint_t speed);
void ngx_goim_comet_deliver_finish(ngx_goim_comet_worker_t *wk);
void ngx_goim_comet_deliver_stop(ngx_goim_comet_worker_t *wk);


/* ngx_goim_comet_zone.c: the shared zone */
ngx_int_t ngx_goim_comet_zone_add(ngx_cycle_t *cycle,
    ngx_goim_comet_conf_t *ccf);


/* ngx_goim_comet_tables.c: the key and room tables every worker shares */
void ngx_goim_comet_tables_room_add(ngx_goim_comet_worker_t *wk,
    ngx_str_node_t *name);
void ngx_goim_comet_tables_room_del(ngx_goim_comet_worker_t *wk,
    ngx_str_node_t *name);
ngx_int_t ngx_goim_comet_tables_rooms(ngx_goim_comet_worker_t *wk,
    char ***names, size_t *n);
ngx_int_t ngx_goim_comet_tables_key_set(ngx_goim_comet_worker_t *wk,
    ngx_goim_channel_t *ch);
void ngx_goim_comet_tables_key_del(ngx_goim_comet_worker_t *wk,
    ngx_goim_channel_t *ch);
void ngx_goim_comet_tables_stats(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_stats_t *sum, ngx_uint_t *workers, uint64_t *queued,
    ngx_uint_t *keys);


/* ngx_goim_comet_relay.c: delivery across workers */
ngx_int_t ngx_goim_comet_relay_init(ngx_goim_comet_worker_t *wk);
void ngx_goim_comet_relay_exit(ngx_goim_comet_worker_t *wk);
ngx_uint_t ngx_goim_comet_relay_push_keys(ngx_goim_comet_worker_t *wk,
    char **keys, size_t n, int32_t op, ngx_uint_t ack_filter,
    ngx_goim_comet_msg_t *msg);
void ngx_goim_comet_relay_push_others(ngx_goim_comet_worker_t *wk,
    ngx_str_t *room, int32_t op, ngx_uint_t speed,
    ngx_goim_comet_msg_t *msg);
ngx_uint_t ngx_goim_comet_relay_hop_percentile(ngx_goim_comet_stats_t *st,
    ngx_uint_t permille);
void ngx_goim_comet_relay_flush(ngx_goim_comet_worker_t *wk);
/* a control call for key: NGX_OK taken (here or by its owner's ring),
   NGX_DECLINED key not connected, NGX_BUSY the owner's ring is full */
ngx_int_t ngx_goim_comet_relay_control(ngx_goim_comet_worker_t *wk,
    ngx_str_t *key, int32_t op, u_char *body, size_t len);
/* a poll of key's session: NGX_OK taken (answered or held, here or by
   the owner's ring), NGX_DECLINED no such session, NGX_BUSY ring full */
ngx_int_t ngx_goim_comet_relay_poll_request(ngx_goim_comet_worker_t *wk,
    ngx_str_t *key, ngx_goim_comet_waiter_t *w);
void ngx_goim_comet_relay_poll_cancel(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_waiter_t *w);
/* the worker quits: every poll it holds for another worker is answered */
void ngx_goim_comet_relay_poll_lost(ngx_goim_comet_worker_t *wk);


/* ngx_goim_comet_push.c: the push RPC job calls */
void ngx_goim_comet_push_bad_input(void *ctx);
void ngx_goim_comet_push_session(ngx_connection_t *c,
    ngx_goim_rpc_session_conf_t *conf,
    void (*on_close)(void *data), void *data);
ngx_goim_rpc_session_t *ngx_goim_comet_push_adopt(ngx_goim_comet_worker_t *wk,
    ngx_connection_t *c, ngx_goim_rpc_session_conf_t *conf,
    void (*on_close)(void *data), ngx_str_t *in, ngx_str_t *out,
    ngx_uint_t frozen);


/* ngx_goim_comet_handoff.c: connections kept across a reload */
ngx_int_t ngx_goim_comet_handoff_init_module(ngx_cycle_t *cycle,
    ngx_goim_comet_conf_t *ccf);
ngx_int_t ngx_goim_comet_handoff_init(ngx_goim_comet_worker_t *wk);
void ngx_goim_comet_handoff_exit(ngx_goim_comet_worker_t *wk);
ngx_goim_comet_server_t *ngx_goim_comet_server_add(ngx_conf_t *cf);
void ngx_goim_comet_handoff_stats(ngx_goim_comet_handoff_stats_t *st);
/* one more client closed instead of handed on (a long-poll session) */
void ngx_goim_comet_handoff_drained(void);

ngx_uint_t ngx_goim_comet_handoff_freeze_percentile(
    ngx_goim_comet_handoff_stats_t *st, ngx_uint_t permille);


#pragma GCC visibility pop


#endif /* _NGX_GOIM_COMET_H_INCLUDED_ */
