
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <sys/eventfd.h>

#include "ngx_goim_comet.h"


/*
 * Delivery across workers ("xw" in names).  A connection lives in one
 * worker; a push RPC arrives at any.  One shared zone per configuration
 * generation holds:
 *
 * - the key table: key -> (worker, connection id), so a push by key goes
 *   to its owner only, and a second connection with a key can kick the
 *   first wherever it is;
 * - the room table: every room some worker has members in, with a bit
 *   per worker, so Rooms() and the status count them once for all;
 * - one byte ring per worker: producers append records under a spinlock,
 *   the owner drains them.  The owner sleeps on an eventfd, and a producer
 *   writes it only when the owner said it was going to sleep, so a burst
 *   costs one wake-up;
 * - each worker's pid, so the worker that replaces a killed one knows
 *   whose locks to release (ngx_goim_xw_recover()).
 *
 * Every lock here (one per ring, one for both tables) holds its owner's
 * pid, and the tables' nodes come from a slab pool of their own, so that
 * a dead owner's half-made change can be thrown away whole
 * (ngx_goim_xw_tables_rebuild()).  The zone's own slab mutex is taken only
 * at start, by the master.
 *
 * A fresh zone per generation keeps a reloaded configuration's workers off
 * the rings of the old ones, which share their worker numbers.
 */


#define NGX_GOIM_XW_PAD        0
#define NGX_GOIM_XW_KEYS       1
#define NGX_GOIM_XW_ROOM       2
#define NGX_GOIM_XW_BROADCAST  3
#define NGX_GOIM_XW_KICK       4


/* ngx_goim_xw_recovered(): the tables' lock, not a queue's */
#define NGX_GOIM_XW_NO_RING    ((ngx_uint_t) -1)


typedef struct {
    uint32_t                   len;          /* the record, 8-aligned */
    uint16_t                   type;
    uint16_t                   raw;
    int32_t                    op;           /* accept filter */
    uint32_t                   msg_len;
    uint32_t                   nkeys;        /* or the name's length */
    uint32_t                   reserved;
    uint64_t                   id;           /* KICK: the connection */
    uint64_t                   sent_ns;      /* CLOCK_MONOTONIC */
} ngx_goim_xw_rec_t;


typedef struct {
    ngx_atomic_t               lock;
    ngx_atomic_t               sleeping;     /* owner waits for a kick */
    ngx_atomic_t               dropped;      /* records refused: full */
    volatile uint64_t          head;         /* producers */
    volatile uint64_t          tail;         /* the owner */
    size_t                     size;
    u_char                    *data;
} ngx_goim_xw_ring_t;


typedef struct {
    ngx_atomic_t               lock;         /* the tables: owner's pid */
    ngx_atomic_t               rebuilds;     /* of the tables */
    ngx_slab_pool_t           *pool;         /* the tables' nodes */
    size_t                     pool_size;
    ngx_rbtree_t               keys;
    ngx_rbtree_node_t          sentinel;
    ngx_uint_t                 nkeys;
    ngx_rbtree_t               rooms;
    ngx_rbtree_node_t          room_sentinel;
    ngx_uint_t                 nrooms;
    size_t                     room_bytes;   /* their names, added up */
    ngx_uint_t                 nrings;
    ngx_goim_xw_ring_t        *rings;
    ngx_goim_comet_stats_t    *stats;        /* one per worker */
    ngx_atomic_t              *pids;         /* one per worker */
} ngx_goim_xw_shctx_t;


typedef struct {
    ngx_str_node_t             node;
    ngx_uint_t                 worker;
    uint64_t                   id;
} ngx_goim_xw_key_t;


/* a room some worker has members in; the name follows the bitmap */
typedef struct {
    ngx_str_node_t             node;
    uint64_t                   workers[1];   /* (nrings + 63) / 64 words */
} ngx_goim_xw_room_t;


#define ngx_goim_xw_sh(ccf)  ((ngx_goim_xw_shctx_t *) (ccf)->sh)

#define ngx_goim_xw_room_words(sh)  (((sh)->nrings + 63) / 64)


static ngx_int_t ngx_goim_xw_init_zone(ngx_shm_zone_t *shm_zone, void *data);
static void ngx_goim_xw_close_fds(void *data);
static void ngx_goim_xw_read_handler(ngx_event_t *rev);
static void ngx_goim_xw_drain(ngx_goim_comet_conf_t *ccf);
static void ngx_goim_xw_record(ngx_goim_comet_conf_t *ccf,
    ngx_goim_xw_rec_t *rec);
static void ngx_goim_xw_hop(ngx_goim_comet_conf_t *ccf,
    ngx_goim_xw_rec_t *rec);
static uint64_t ngx_goim_xw_now_ns(void);
static void ngx_goim_xw_recover(ngx_goim_comet_conf_t *ccf);
static void ngx_goim_xw_forget(ngx_goim_comet_conf_t *ccf);
static ngx_pid_t ngx_goim_xw_lock(ngx_atomic_t *lock);
static void ngx_goim_xw_recovered(ngx_goim_comet_conf_t *ccf,
    ngx_pid_t pid, ngx_uint_t ring);
static void ngx_goim_xw_tables_init(ngx_goim_xw_shctx_t *sh);
static void ngx_goim_xw_tables_lock(ngx_goim_comet_conf_t *ccf);
static void ngx_goim_xw_tables_unlock(ngx_goim_comet_conf_t *ccf);
static void ngx_goim_xw_tables_rebuild(ngx_goim_comet_conf_t *ccf);
static void ngx_goim_xw_tables_add_mine(ngx_goim_comet_conf_t *ccf);
static void ngx_goim_xw_room_drop_locked(ngx_goim_comet_conf_t *ccf,
    ngx_goim_xw_room_t *room);
static ngx_int_t ngx_goim_xw_append(ngx_goim_comet_conf_t *ccf,
    ngx_uint_t worker, ngx_goim_xw_rec_t *rec, u_char *extra,
    size_t extra_len, u_char *msg);


ngx_int_t
ngx_goim_xw_add_zone(ngx_conf_t *cf, ngx_goim_comet_conf_t *ccf)
{
    size_t            size;
    ngx_str_t         name;
    ngx_uint_t        workers;
    ngx_core_conf_t  *core;

    static ngx_uint_t  generation;

    core = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    /* worker_processes is known here when it comes before stream {} */
    workers = (core->worker_processes == NGX_CONF_UNSET) ? 1
              : (ngx_uint_t) core->worker_processes;

    /*
     * The zone is sized now, before the core module's init_conf: these
     * directives count only when they come before stream {} too.
     */
    if (ccf->zone_size == NGX_CONF_UNSET_SIZE) {
        ccf->zone_size = NGX_GOIM_COMET_ZONE_SIZE;
    }

    if (ccf->ring_size == NGX_CONF_UNSET_SIZE) {
        ccf->ring_size = NGX_GOIM_COMET_RING_SIZE;
    }

    ccf->ring_size = ngx_align(ccf->ring_size, 8);

    size = ccf->zone_size + workers * (ccf->ring_size + ngx_pagesize)
           + 8 * ngx_pagesize;

    /* the slab pool's own page descriptors */
    size += size / ngx_pagesize * sizeof(ngx_slab_page_t);

    name.data = ngx_pnalloc(cf->pool, sizeof("goim_comet_") + NGX_INT_T_LEN);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    name.len = ngx_sprintf(name.data, "goim_comet_%ui", ++generation)
               - name.data;

    ccf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                          &ngx_goim_comet_module);
    if (ccf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    ccf->shm_zone->init = ngx_goim_xw_init_zone;
    ccf->shm_zone->data = ccf;
    ccf->shm_zone->noreuse = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_goim_xw_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_goim_comet_conf_t *ccf = shm_zone->data;

    int                   fd;
    ngx_uint_t            i, n;
    ngx_slab_pool_t      *shpool;
    ngx_core_conf_t      *core;
    ngx_pool_cleanup_t   *cln;
    ngx_goim_xw_shctx_t  *sh;

    /* the new cycle's settings: ngx_cycle is still the old one here */
    core = (ngx_core_conf_t *) ngx_get_conf(ccf->cycle->conf_ctx,
                                           ngx_core_module);

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    n = core->worker_processes > 0 ? (ngx_uint_t) core->worker_processes : 1;

    sh = ngx_slab_alloc(shpool, sizeof(ngx_goim_xw_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->lock = 0;
    sh->nrings = n;

    sh->rings = ngx_slab_calloc(shpool, n * sizeof(ngx_goim_xw_ring_t));
    sh->stats = ngx_slab_calloc(shpool, n * sizeof(ngx_goim_comet_stats_t));
    sh->pids = ngx_slab_calloc(shpool, n * sizeof(ngx_atomic_t));

    if (sh->rings == NULL || sh->stats == NULL || sh->pids == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        sh->rings[i].size = ccf->ring_size;
        sh->rings[i].sleeping = 1;
        sh->rings[i].data = ngx_slab_alloc(shpool, ccf->ring_size);

        if (sh->rings[i].data == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "goim comet: no room for %ui worker queues: put "
                          "worker_processes before stream {}", n);
            return NGX_ERROR;
        }
    }

    sh->pool_size = ngx_align(ccf->zone_size, ngx_pagesize);
    sh->pool = ngx_slab_alloc(shpool, sh->pool_size);

    if (sh->pool == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "goim comet: no room for the shared tables");
        return NGX_ERROR;
    }

    ngx_goim_xw_tables_init(sh);

    ccf->sh = sh;

    /* the wake-up fds are made here, in the master, for every worker */

    ccf->eventfds = ngx_palloc(ccf->cycle->pool, n * sizeof(int));
    if (ccf->eventfds == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        fd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);
        if (fd == -1) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, ngx_errno,
                          "goim comet: eventfd() failed");
            return NGX_ERROR;
        }

        ccf->eventfds[i] = fd;
    }

    ccf->neventfds = n;

    cln = ngx_pool_cleanup_add(ccf->cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_goim_xw_close_fds;
    cln->data = ccf;

    return NGX_OK;
}


static void
ngx_goim_xw_close_fds(void *data)
{
    ngx_goim_comet_conf_t *ccf = data;

    ngx_uint_t  i;

    for (i = 0; i < ccf->neventfds; i++) {
        if (ccf->eventfds[i] != -1 && ccf->eventfds[i] != ccf->my_eventfd) {
            (void) close(ccf->eventfds[i]);
        }
    }

    ccf->neventfds = 0;
}


ngx_int_t
ngx_goim_xw_init_worker(ngx_cycle_t *cycle, ngx_goim_comet_conf_t *ccf)
{
    ngx_connection_t  *c;

    if (ccf->sh == NULL) {
        return NGX_OK;
    }

    ccf->worker = (ngx_process == NGX_PROCESS_WORKER) ? ngx_worker : 0;

    /* without a master one process serves everything */
    ccf->nworkers = (ngx_process == NGX_PROCESS_WORKER)
                    ? ngx_goim_xw_sh(ccf)->nrings : 1;

    if (ccf->worker >= ngx_goim_xw_sh(ccf)->nrings) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim comet: worker %ui has no queue: put "
                      "worker_processes before stream {}", ccf->worker);
        return NGX_ERROR;
    }

    ccf->my_eventfd = ccf->eventfds[ccf->worker];
    ccf->stats = &ngx_goim_xw_sh(ccf)->stats[ccf->worker];

    c = ngx_get_connection(ccf->my_eventfd, cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = ccf;
    c->read->handler = ngx_goim_xw_read_handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    /* not a client: it must not keep a quitting worker alive */
    c->idle = 1;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_CLEAR_EVENT) != NGX_OK) {
        ngx_free_connection(c);
        return NGX_ERROR;
    }

    ccf->xw_connection = c;

    /* it has nothing to add back after a rebuild before its start */
    ccf->tables_rebuilds = ngx_goim_xw_sh(ccf)->rebuilds;

    /* what a crashed worker with this number left behind */
    ngx_goim_xw_recover(ccf);
    ngx_goim_xw_forget(ccf);

    /* anything queued before this worker listened */
    ngx_goim_xw_drain(ccf);

    return NGX_OK;
}


void
ngx_goim_xw_exit_worker(ngx_goim_comet_conf_t *ccf)
{
    if (ccf->xw_connection) {
        ngx_close_connection(ccf->xw_connection);
        ccf->xw_connection = NULL;
        ccf->my_eventfd = -1;
    }
}


static void
ngx_goim_xw_read_handler(ngx_event_t *rev)
{
    uint64_t               n;
    ngx_connection_t      *c;
    ngx_goim_comet_conf_t *ccf;

    c = rev->data;
    ccf = c->data;

    if (c->close) {
        ngx_goim_xw_exit_worker(ccf);
        return;
    }

    /* one read takes every kick since the last one and rearms it */
    (void) read(c->fd, &n, sizeof(uint64_t));

    ngx_goim_xw_drain(ccf);
}


static void
ngx_goim_xw_drain(ngx_goim_comet_conf_t *ccf)
{
    uint64_t              head;
    ngx_uint_t            n, batch;
    ngx_goim_xw_rec_t    *rec;
    ngx_goim_xw_ring_t   *ring;
    ngx_goim_xw_shctx_t  *sh;

    sh = ngx_goim_xw_sh(ccf);
    ring = &sh->rings[ccf->worker];

    /* another worker rebuilt the tables and woke this one to add its own */

    if (ccf->tables_rebuilds != sh->rebuilds) {
        ngx_goim_xw_tables_lock(ccf);

        if (ccf->tables_rebuilds != sh->rebuilds) {
            ngx_goim_xw_tables_add_mine(ccf);
        }

        ngx_goim_xw_tables_unlock(ccf);
    }

    batch = ccf->drain_batch ? ccf->drain_batch : NGX_GOIM_RPC_BATCH;
    n = 0;

    ccf->draining = 1;

    for ( ;; ) {
        ring->sleeping = 0;

        for ( ;; ) {
            head = ring->head;
            ngx_memory_barrier();

            if (ring->tail == head) {
                break;
            }

            while (ring->tail != head) {
                if (n++ == batch) {
                    /*
                     * As the push listener does: the client writes these
                     * records queued run before the next ones, or a burst
                     * for one client overflows its queue.  Not sleeping,
                     * so producers do not kick; the next loop resumes.
                     */
                    ngx_post_event(ccf->xw_connection->read,
                                   &ngx_posted_next_events);
                    ccf->draining = 0;
                    return;
                }

                rec = (ngx_goim_xw_rec_t *)
                          (ring->data + ring->tail % ring->size);

                if (rec->type != NGX_GOIM_XW_PAD) {
                    ngx_goim_xw_hop(ccf, rec);
                    ngx_goim_xw_record(ccf, rec);
                }

                ring->tail += rec->len;
            }

            ngx_memory_barrier();
        }

        /* going to sleep: a producer that sees this kicks the eventfd */
        ring->sleeping = 1;
        ngx_memory_barrier();

        if (ring->head == ring->tail) {
            break;
        }
    }

    ccf->draining = 0;
}


/*
 * Called between two writes of a long fan-out: records that arrived
 * meanwhile are taken now rather than after the whole walk, so the hop
 * stays short while this worker is busy, and their messages join the
 * queues of connections not yet written (one writev() for both).  The
 * check is one load of a shared cache line.
 */

void
ngx_goim_xw_poll(ngx_goim_comet_conf_t *ccf)
{
    ngx_goim_xw_ring_t  *ring;

    if (ccf->sh == NULL || ccf->my_eventfd == -1 || ccf->draining) {
        return;
    }

    ring = &ngx_goim_xw_sh(ccf)->rings[ccf->worker];

    if (ring->head != ring->tail) {
        ngx_goim_xw_drain(ccf);
    }
}


static uint64_t
ngx_goim_xw_now_ns(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}


/*
 * Hop times are counted in fixed buckets, fine around the 100 us that
 * matters and coarse beyond: [i] counts records that waited less than
 * ngx_goim_xw_hop_bounds[i] microseconds, the last one everything longer.
 */

static const uint32_t  ngx_goim_xw_hop_bounds[NGX_GOIM_COMET_HOP_BUCKETS] = {
    2, 4, 8, 16, 24, 32, 48, 64, 80, 100, 128, 160, 200, 256, 384, 512,
    768, 1000, 1500, 2000, 3000, 5000, 10000, 20000, 50000, 100000,
    200000, 500000, 1000000, 0xffffffff
};


/* how long the record waited between the two workers, for the status */

static void
ngx_goim_xw_hop(ngx_goim_comet_conf_t *ccf, ngx_goim_xw_rec_t *rec)
{
    uint64_t    us;
    ngx_uint_t  i;

    us = (ngx_goim_xw_now_ns() - rec->sent_ns) / 1000;

    for (i = 0; i < NGX_GOIM_COMET_HOP_BUCKETS - 1; i++) {
        if (us < ngx_goim_xw_hop_bounds[i]) {
            break;
        }
    }

    ccf->stats->hop_us[i]++;
    ccf->stats->xw_records++;
}


/*
 * The upper bound, in microseconds, of the bucket holding the permille-th
 * record (500: the median, 990: p99, 999: p99.9); 0 before any record.
 */

ngx_uint_t
ngx_goim_xw_hop_percentile(ngx_goim_comet_stats_t *st, ngx_uint_t permille)
{
    uint64_t    total, seen;
    ngx_uint_t  i;

    for (total = 0, i = 0; i < NGX_GOIM_COMET_HOP_BUCKETS; i++) {
        total += st->hop_us[i];
    }

    if (total == 0) {
        return 0;
    }

    for (seen = 0, i = 0; i < NGX_GOIM_COMET_HOP_BUCKETS - 1; i++) {
        seen += st->hop_us[i];

        if (seen * 1000 >= total * permille) {
            break;
        }
    }

    return ngx_goim_xw_hop_bounds[i];
}


/* one record from another worker, delivered here */

static void
ngx_goim_xw_record(ngx_goim_comet_conf_t *ccf, ngx_goim_xw_rec_t *rec)
{
    u_char                *p;
    uint16_t               len;
    uint32_t               i;
    ngx_str_t              key;
    ngx_goim_channel_t    *ch;
    ngx_goim_comet_msg_t  *msg;

    p = (u_char *) (rec + 1);

    if (rec->type == NGX_GOIM_XW_KICK) {
        key.data = p;
        key.len = rec->nkeys;

        ch = ngx_goim_channel_lookup(ccf, &key);

        if (ch && ch->id == rec->id) {
            ngx_goim_channel_kick(ch);
        }

        return;
    }

    msg = ngx_goim_comet_msg_create(rec->msg_len, ngx_cycle->log);
    if (msg == NULL) {
        return;
    }

    msg->raw = rec->raw;

    switch (rec->type) {

    case NGX_GOIM_XW_KEYS:
        for (i = 0; i < rec->nkeys; i++) {
            ngx_memcpy(&len, p, sizeof(uint16_t));
            key.data = p + sizeof(uint16_t);
            key.len = len;
            p = key.data + len;
        }

        ngx_memcpy(msg->data, p, rec->msg_len);

        p = (u_char *) (rec + 1);

        for (i = 0; i < rec->nkeys; i++) {
            ngx_memcpy(&len, p, sizeof(uint16_t));
            key.data = p + sizeof(uint16_t);
            key.len = len;
            p = key.data + len;

            ngx_goim_comet_push_key(ccf, &key, rec->op, msg);
        }

        break;

    case NGX_GOIM_XW_ROOM:
        key.data = p;
        key.len = rec->nkeys;
        ngx_memcpy(msg->data, p + key.len, rec->msg_len);

        ngx_goim_comet_push_room(ccf, &key, msg);
        break;

    default: /* NGX_GOIM_XW_BROADCAST */
        ngx_memcpy(msg->data, p, rec->msg_len);

        ngx_goim_comet_push_all(ccf, rec->op, msg, (ngx_uint_t) rec->id);
        break;
    }

    ngx_goim_comet_msg_release(msg);
}


static ngx_int_t
ngx_goim_xw_append(ngx_goim_comet_conf_t *ccf, ngx_uint_t worker,
    ngx_goim_xw_rec_t *rec, u_char *extra, size_t extra_len, u_char *msg)
{
    u_char              *p;
    size_t               len, pos, gap;
    uint64_t             one;
    ngx_pid_t            dead;
    ngx_goim_xw_rec_t   *pad;
    ngx_goim_xw_ring_t  *ring;

    ring = &ngx_goim_xw_sh(ccf)->rings[worker];

    len = ngx_align(sizeof(ngx_goim_xw_rec_t) + extra_len + rec->msg_len, 8);
    rec->len = (uint32_t) len;
    rec->sent_ns = ngx_goim_xw_now_ns();

    if (len > ring->size / 2) {
        (void) ngx_atomic_fetch_add(&ring->dropped, 1);
        return NGX_DECLINED;
    }

    dead = ngx_goim_xw_lock(&ring->lock);

    if (dead) {
        ngx_goim_xw_recovered(ccf, dead, worker);
    }

    pos = ring->head % ring->size;
    gap = (pos + len > ring->size) ? ring->size - pos : 0;

    if (ring->size - (ring->head - ring->tail) < gap + len) {
        ngx_unlock(&ring->lock);
        (void) ngx_atomic_fetch_add(&ring->dropped, 1);
        return NGX_DECLINED;
    }

    if (gap) {
        pad = (ngx_goim_xw_rec_t *) (ring->data + pos);
        pad->len = (uint32_t) gap;
        pad->type = NGX_GOIM_XW_PAD;
        pos = 0;
    }

    p = ngx_cpymem(ring->data + pos, rec, sizeof(ngx_goim_xw_rec_t));
    p = ngx_cpymem(p, extra, extra_len);
    ngx_memcpy(p, msg, rec->msg_len);

    ngx_memory_barrier();
    ring->head += gap + len;

    ngx_unlock(&ring->lock);

    if (ngx_atomic_cmp_set(&ring->sleeping, 1, 0)) {
        one = 1;

        if (write(ccf->eventfds[worker], &one, sizeof(uint64_t)) == -1) {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          "goim comet: eventfd write failed");
        }
    }

    return NGX_OK;
}


/*
 * A queue's lock holds its owner's pid.  A worker killed while it holds
 * one (SIGKILL, the OOM killer) would leave it taken for good, and every
 * producer of that queue would spin on it: the worker that replaces the
 * dead one releases its locks at start (ngx_goim_xw_recover()), and a
 * producer that finds the owner gone takes the lock over, which also
 * covers a pid nobody replaces.  What the dead owner was appending was
 * not published (the head moves last), so the next record overwrites it.
 */

/* the pid of a dead owner it was taken from, or 0 */

static ngx_pid_t
ngx_goim_xw_lock(ngx_atomic_t *lock)
{
    ngx_pid_t   pid;
    ngx_uint_t  i, n;

    for ( ;; ) {

        if (*lock == 0 && ngx_atomic_cmp_set(lock, 0, ngx_pid)) {
            return 0;
        }

        if (ngx_ncpu > 1) {

            for (n = 1; n < 1024; n <<= 1) {

                for (i = 0; i < n; i++) {
                    ngx_cpu_pause();
                }

                if (*lock == 0 && ngx_atomic_cmp_set(lock, 0, ngx_pid)) {
                    return 0;
                }
            }
        }

        pid = (ngx_pid_t) *lock;

        if (pid != 0
            && kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH
            && ngx_atomic_cmp_set(lock, (ngx_atomic_uint_t) pid, ngx_pid))
        {
            return pid;
        }

        ngx_sched_yield();
    }
}


static void
ngx_goim_xw_recovered(ngx_goim_comet_conf_t *ccf, ngx_pid_t pid,
    ngx_uint_t ring)
{
    ccf->stats->locks_recovered++;

    if (ring == NGX_GOIM_XW_NO_RING) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "goim comet: process %P died holding the lock of the "
                      "shared key and room tables, released: rebuilding "
                      "them", pid);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "goim comet: process %P died holding the lock of worker "
                  "%ui's queue, released", pid, ring);
}


/*
 * The worker this one replaces died: its pid leaves every lock it held,
 * and every worker is woken, as it may have died between taking a
 * sleeping worker's flag and writing its eventfd (a spurious wake-up
 * finds an empty queue).
 */

static void
ngx_goim_xw_recover(ngx_goim_comet_conf_t *ccf)
{
    uint64_t              one;
    ngx_pid_t             dead;
    ngx_uint_t            w;
    ngx_goim_xw_shctx_t  *sh;

    sh = ngx_goim_xw_sh(ccf);

    dead = (ngx_pid_t) sh->pids[ccf->worker];
    sh->pids[ccf->worker] = ngx_pid;

    if (dead == 0 || dead == ngx_pid) {
        return;
    }

    if (ngx_atomic_cmp_set(&sh->lock, (ngx_atomic_uint_t) dead, ngx_pid)) {
        ngx_goim_xw_recovered(ccf, dead, NGX_GOIM_XW_NO_RING);
        ngx_goim_xw_tables_rebuild(ccf);
        ngx_goim_xw_tables_unlock(ccf);
    }

    one = 1;

    for (w = 0; w < sh->nrings; w++) {

        if (ngx_atomic_cmp_set(&sh->rings[w].lock, (ngx_atomic_uint_t) dead,
                               0))
        {
            ngx_goim_xw_recovered(ccf, dead, w);
        }

        if (w != ccf->worker
            && write(ccf->eventfds[w], &one, sizeof(uint64_t)) == -1)
        {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          "goim comet: eventfd write failed");
        }
    }
}


/*
 * The tables' nodes live in a slab pool inside the zone, used under
 * sh->lock alone (never the zone's own mutex), so that starting it afresh
 * drops every node at once, whatever state a dead owner left it in.
 */

static void
ngx_goim_xw_tables_init(ngx_goim_xw_shctx_t *sh)
{
    ngx_slab_pool_t  *pool;

    pool = sh->pool;

    pool->end = (u_char *) pool + sh->pool_size;
    pool->min_shift = 3;
    pool->addr = pool;

    ngx_slab_init(pool);

    ngx_rbtree_init(&sh->keys, &sh->sentinel, ngx_str_rbtree_insert_value);
    sh->nkeys = 0;

    ngx_rbtree_init(&sh->rooms, &sh->room_sentinel,
                    ngx_str_rbtree_insert_value);
    sh->nrooms = 0;
    sh->room_bytes = 0;
}


static void
ngx_goim_xw_tables_lock(ngx_goim_comet_conf_t *ccf)
{
    ngx_pid_t  dead;

    dead = ngx_goim_xw_lock(&ngx_goim_xw_sh(ccf)->lock);

    if (dead) {
        ngx_goim_xw_recovered(ccf, dead, NGX_GOIM_XW_NO_RING);
        ngx_goim_xw_tables_rebuild(ccf);
    }
}


static void
ngx_goim_xw_tables_unlock(ngx_goim_comet_conf_t *ccf)
{
    /* what was written under the lock is written before it is free */
    ngx_memory_barrier();

    ngx_unlock(&ngx_goim_xw_sh(ccf)->lock);
}


/*
 * The tables' lock was taken from a dead owner, who may have died in the
 * middle of a tree rotation or inside the allocator: nothing in them can
 * be trusted.  They start afresh, and every worker adds back what it
 * holds, this one now (it holds the lock), the others when they wake up
 * and see the count of rebuilds move; until then a push to their keys
 * finds nothing, and a room they alone hold is missing from Rooms().
 */

static void
ngx_goim_xw_tables_rebuild(ngx_goim_comet_conf_t *ccf)
{
    uint64_t              one;
    ngx_uint_t            w;
    ngx_goim_xw_shctx_t  *sh;

    sh = ngx_goim_xw_sh(ccf);

    ngx_goim_xw_tables_init(sh);
    sh->rebuilds++;

    ngx_goim_xw_tables_add_mine(ccf);

    one = 1;

    for (w = 0; w < ccf->nworkers; w++) {
        if (w != ccf->worker
            && write(ccf->eventfds[w], &one, sizeof(uint64_t)) == -1)
        {
            ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                          "goim comet: eventfd write failed");
        }
    }
}


/* under the lock: this worker's keys and rooms, into fresh tables */

static void
ngx_goim_xw_tables_add_mine(ngx_goim_comet_conf_t *ccf)
{
    size_t                 words;
    ngx_uint_t             lost;
    ngx_rbtree_t          *tree;
    ngx_rbtree_node_t     *node;
    ngx_goim_xw_key_t     *k;
    ngx_goim_xw_room_t    *room;
    ngx_goim_channel_t    *ch;
    ngx_goim_xw_shctx_t   *sh;
    ngx_goim_comet_room_t *mine;

    sh = ngx_goim_xw_sh(ccf);
    words = ngx_goim_xw_room_words(sh);
    lost = 0;

    tree = &ccf->channels;

    for (node = (tree->root == tree->sentinel)
                ? NULL : ngx_rbtree_min(tree->root, tree->sentinel);
         node;
         node = ngx_rbtree_next(tree, node))
    {
        ch = (ngx_goim_channel_t *) node;

        if (!ch->registered) {
            continue;
        }

        /* a newer connection elsewhere may have taken the key meanwhile */
        if (ngx_str_rbtree_lookup(&sh->keys, &ch->node.str,
                                  (uint32_t) ch->node.node.key))
        {
            continue;
        }

        k = ngx_slab_alloc_locked(sh->pool, sizeof(ngx_goim_xw_key_t)
                                            + ch->node.str.len);
        if (k == NULL) {
            lost++;
            continue;
        }

        k->node.str.data = (u_char *) (k + 1);
        k->node.str.len = ch->node.str.len;
        ngx_memcpy(k->node.str.data, ch->node.str.data, ch->node.str.len);
        k->node.node.key = ch->node.node.key;
        k->worker = ccf->worker;
        k->id = ch->id;

        ngx_rbtree_insert(&sh->keys, &k->node.node);
        sh->nkeys++;
    }

    tree = &ccf->rooms;

    for (node = (tree->root == tree->sentinel)
                ? NULL : ngx_rbtree_min(tree->root, tree->sentinel);
         node;
         node = ngx_rbtree_next(tree, node))
    {
        mine = (ngx_goim_comet_room_t *) node;

        room = (ngx_goim_xw_room_t *)
                   ngx_str_rbtree_lookup(&sh->rooms, &mine->node.str,
                                         (uint32_t) mine->node.node.key);

        if (room == NULL) {
            room = ngx_slab_calloc_locked(sh->pool,
                                          offsetof(ngx_goim_xw_room_t, workers)
                                          + words * sizeof(uint64_t)
                                          + mine->node.str.len);
            if (room == NULL) {
                lost++;
                continue;
            }

            room->node.str.data = (u_char *) &room->workers[words];
            room->node.str.len = mine->node.str.len;
            ngx_memcpy(room->node.str.data, mine->node.str.data,
                       mine->node.str.len);
            room->node.node.key = mine->node.node.key;

            ngx_rbtree_insert(&sh->rooms, &room->node.node);
            sh->nrooms++;
            sh->room_bytes += mine->node.str.len;
        }

        room->workers[ccf->worker / 64] |= (uint64_t) 1 << (ccf->worker % 64);
    }

    ccf->tables_rebuilds = sh->rebuilds;

    if (lost) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "goim comet: the shared tables are full, %ui keys or "
                      "rooms of worker %ui left out: raise goim_comet_zone",
                      lost, ccf->worker);
    }
}


/*
 * Keys, rooms and gauges still marked as this worker's when it starts
 * were left by a worker that died with this number (the master made this
 * one to replace it): those connections are gone.  A fresh generation's tables
 * hold nothing of ours, and the walk finds nothing.
 */

static void
ngx_goim_xw_forget(ngx_goim_comet_conf_t *ccf)
{
    ngx_rbtree_t         *tree;
    ngx_rbtree_node_t    *node, *next;
    ngx_goim_xw_key_t    *k;
    ngx_goim_xw_shctx_t  *sh;

    sh = ngx_goim_xw_sh(ccf);

    /* its gauges too; the counters of what it did stay */
    ccf->stats->conns_tcp = 0;
    ccf->stats->conns_ws = 0;
    ccf->stats->online = 0;
    ccf->stats->rooms = 0;

    ngx_goim_xw_tables_lock(ccf);

    tree = &sh->keys;

    for (node = (tree->root == tree->sentinel)
                ? NULL : ngx_rbtree_min(tree->root, tree->sentinel);
         node;
         node = next)
    {
        next = ngx_rbtree_next(tree, node);
        k = (ngx_goim_xw_key_t *) node;

        if (k->worker == ccf->worker) {
            ngx_rbtree_delete(tree, node);
            ngx_slab_free_locked(ngx_goim_xw_sh(ccf)->pool, k);
            sh->nkeys--;
        }
    }

    tree = &sh->rooms;

    for (node = (tree->root == tree->sentinel)
                ? NULL : ngx_rbtree_min(tree->root, tree->sentinel);
         node;
         node = next)
    {
        next = ngx_rbtree_next(tree, node);
        ngx_goim_xw_room_drop_locked(ccf, (ngx_goim_xw_room_t *) node);
    }

    ngx_goim_xw_tables_unlock(ccf);
}


/* this worker has no member left in ROOM; the last worker frees it */

static void
ngx_goim_xw_room_drop_locked(ngx_goim_comet_conf_t *ccf,
    ngx_goim_xw_room_t *room)
{
    ngx_uint_t            i, words, used;
    ngx_goim_xw_shctx_t  *sh;

    sh = ngx_goim_xw_sh(ccf);
    words = ngx_goim_xw_room_words(sh);

    room->workers[ccf->worker / 64] &= ~((uint64_t) 1 << (ccf->worker % 64));

    for (used = 0, i = 0; i < words; i++) {
        used |= (room->workers[i] != 0);
    }

    if (!used) {
        ngx_rbtree_delete(&sh->rooms, &room->node.node);
        sh->nrooms--;
        sh->room_bytes -= room->node.str.len;
        ngx_slab_free_locked(ngx_goim_xw_sh(ccf)->pool, room);
    }
}


/* the room table: this worker has members in NAME now */

void
ngx_goim_xw_room_add(ngx_goim_comet_conf_t *ccf, ngx_str_node_t *name)
{
    size_t                words;
    ngx_goim_xw_room_t   *room;
    ngx_goim_xw_shctx_t  *sh;

    if (ccf->sh == NULL) {
        return;
    }

    sh = ngx_goim_xw_sh(ccf);
    words = ngx_goim_xw_room_words(sh);

    ngx_goim_xw_tables_lock(ccf);

    room = (ngx_goim_xw_room_t *)
               ngx_str_rbtree_lookup(&sh->rooms, &name->str,
                                     (uint32_t) name->node.key);

    if (room == NULL) {
        room = ngx_slab_calloc_locked(sh->pool,
                                      offsetof(ngx_goim_xw_room_t, workers)
                                      + words * sizeof(uint64_t)
                                      + name->str.len);
        if (room == NULL) {
            ngx_goim_xw_tables_unlock(ccf);
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "goim comet: the shared room table is full, room "
                          "\"%V\" is missing from Rooms(): raise "
                          "goim_comet_zone", &name->str);
            return;
        }

        room->node.str.data = (u_char *) &room->workers[words];
        room->node.str.len = name->str.len;
        ngx_memcpy(room->node.str.data, name->str.data, name->str.len);
        room->node.node.key = name->node.key;

        ngx_rbtree_insert(&sh->rooms, &room->node.node);
        sh->nrooms++;
        sh->room_bytes += name->str.len;
    }

    room->workers[ccf->worker / 64] |= (uint64_t) 1 << (ccf->worker % 64);

    ngx_goim_xw_tables_unlock(ccf);
}


/* ... and has none left */

void
ngx_goim_xw_room_del(ngx_goim_comet_conf_t *ccf, ngx_str_node_t *name)
{
    ngx_goim_xw_room_t   *room;
    ngx_goim_xw_shctx_t  *sh;

    if (ccf->sh == NULL) {
        return;
    }

    sh = ngx_goim_xw_sh(ccf);

    ngx_goim_xw_tables_lock(ccf);

    room = (ngx_goim_xw_room_t *)
               ngx_str_rbtree_lookup(&sh->rooms, &name->str,
                                     (uint32_t) name->node.key);

    if (room) {
        ngx_goim_xw_room_drop_locked(ccf, room);
    }

    ngx_goim_xw_tables_unlock(ccf);
}


/*
 * Every room of every worker, for Rooms(): a copy made under the lock,
 * NUL-terminated names in one ngx_alloc()ed block the caller frees.  The
 * push listener is a stream server, and stream {} always makes the zone.
 */

ngx_int_t
ngx_goim_xw_rooms(ngx_goim_comet_conf_t *ccf, char ***names, size_t *n)
{
    u_char               *p;
    char                **list;
    size_t                i;
    ngx_rbtree_t         *tree;
    ngx_rbtree_node_t    *node;
    ngx_goim_xw_room_t   *room;
    ngx_goim_xw_shctx_t  *sh;

    sh = ngx_goim_xw_sh(ccf);
    tree = &sh->rooms;

    ngx_goim_xw_tables_lock(ccf);

    list = ngx_alloc(sh->nrooms * (sizeof(char *) + 1) + sh->room_bytes + 1,
                     ngx_cycle->log);
    if (list == NULL) {
        ngx_goim_xw_tables_unlock(ccf);
        return NGX_ERROR;
    }

    p = (u_char *) (list + sh->nrooms);
    i = 0;

    if (tree->root != tree->sentinel) {
        for (node = ngx_rbtree_min(tree->root, tree->sentinel);
             node;
             node = ngx_rbtree_next(tree, node))
        {
            room = (ngx_goim_xw_room_t *) node;

            list[i++] = (char *) p;
            p = ngx_cpymem(p, room->node.str.data, room->node.str.len);
            *p++ = '\0';
        }
    }

    ngx_goim_xw_tables_unlock(ccf);

    *names = list;
    *n = i;

    return NGX_OK;
}


/* the key table */

ngx_int_t
ngx_goim_xw_key_set(ngx_goim_comet_conf_t *ccf, ngx_goim_channel_t *ch)
{
    uint32_t            hash;
    ngx_uint_t          worker;
    uint64_t            id;
    ngx_goim_xw_key_t  *k;
    ngx_goim_xw_rec_t   rec;

    if (ccf->sh == NULL) {
        return NGX_OK;
    }

    hash = ch->node.node.key;
    worker = ccf->worker;
    id = 0;

    ngx_goim_xw_tables_lock(ccf);

    k = (ngx_goim_xw_key_t *)
            ngx_str_rbtree_lookup(&ngx_goim_xw_sh(ccf)->keys, &ch->node.str,
                                  hash);
    if (k) {
        worker = k->worker;
        id = k->id;
        k->worker = ccf->worker;
        k->id = ch->id;

    } else {
        k = ngx_slab_alloc_locked(ngx_goim_xw_sh(ccf)->pool,
                                  sizeof(ngx_goim_xw_key_t) + ch->node.str.len);
        if (k == NULL) {
            ngx_goim_xw_tables_unlock(ccf);
            ngx_log_error(NGX_LOG_ERR, ch->connection->log, 0,
                          "goim comet: the shared key table is full, "
                          "raise goim_comet_zone");
            return NGX_ERROR;
        }

        k->node.str.data = (u_char *) (k + 1);
        k->node.str.len = ch->node.str.len;
        ngx_memcpy(k->node.str.data, ch->node.str.data, ch->node.str.len);
        k->node.node.key = hash;
        k->worker = ccf->worker;
        k->id = ch->id;

        ngx_rbtree_insert(&ngx_goim_xw_sh(ccf)->keys, &k->node.node);
        ngx_goim_xw_sh(ccf)->nkeys++;
    }

    ngx_goim_xw_tables_unlock(ccf);

    if (id && worker != ccf->worker) {
        /* the older connection with this key is in another worker */
        ngx_memzero(&rec, sizeof(ngx_goim_xw_rec_t));
        rec.type = NGX_GOIM_XW_KICK;
        rec.nkeys = (uint32_t) ch->node.str.len;
        rec.id = id;

        (void) ngx_goim_xw_append(ccf, worker, &rec, ch->node.str.data,
                                  ch->node.str.len, NULL);
    }

    return NGX_OK;
}


void
ngx_goim_xw_key_del(ngx_goim_comet_conf_t *ccf, ngx_goim_channel_t *ch)
{
    ngx_goim_xw_key_t  *k;

    if (ccf->sh == NULL) {
        return;
    }

    ngx_goim_xw_tables_lock(ccf);

    k = (ngx_goim_xw_key_t *)
            ngx_str_rbtree_lookup(&ngx_goim_xw_sh(ccf)->keys, &ch->node.str,
                                  ch->node.node.key);

    /* only its own entry: a newer connection may own the key by now */
    if (k && k->id == ch->id) {
        ngx_rbtree_delete(&ngx_goim_xw_sh(ccf)->keys, &k->node.node);
        ngx_slab_free_locked(ngx_goim_xw_sh(ccf)->pool, k);
        ngx_goim_xw_sh(ccf)->nkeys--;
    }

    ngx_goim_xw_tables_unlock(ccf);
}


/*
 * A push by keys: local keys are served here, the others are sent to
 * their workers, one record per worker.  Returns how many keys are known.
 */

ngx_uint_t
ngx_goim_xw_push_keys(ngx_goim_comet_conf_t *ccf, char **keys, size_t n,
    int32_t op, ngx_goim_comet_msg_t *msg)
{
    u_char              *p, *buf;
    size_t               i, size;
    uint16_t             len;
    uint32_t             hash;
    ngx_str_t            key;
    ngx_uint_t           w, found, *owner, *klen, *count;
    ngx_goim_xw_key_t   *k;
    ngx_goim_xw_rec_t    rec;

    found = 0;

    if (ccf->sh == NULL || ccf->nworkers == 1) {
        for (i = 0; i < n; i++) {
            key.data = (u_char *) keys[i];
            key.len = ngx_strlen(keys[i]);
            found += ngx_goim_comet_push_key(ccf, &key, op, msg);
        }

        return found;
    }

    /* each key's owner and length, then the keys per worker */
    owner = ngx_alloc((2 * n + ccf->nworkers) * sizeof(ngx_uint_t),
                      ngx_cycle->log);
    if (owner == NULL) {
        return 0;
    }

    klen = owner + n;
    count = klen + n;
    ngx_memzero(count, ccf->nworkers * sizeof(ngx_uint_t));

    ngx_goim_xw_tables_lock(ccf);

    for (i = 0; i < n; i++) {
        key.data = (u_char *) keys[i];
        key.len = ngx_strlen(keys[i]);
        klen[i] = key.len;
        hash = ngx_crc32_long(key.data, key.len);

        k = (ngx_goim_xw_key_t *)
                ngx_str_rbtree_lookup(&ngx_goim_xw_sh(ccf)->keys, &key, hash);
        owner[i] = (k && k->worker < ccf->nworkers) ? k->worker
                                                    : NGX_CONF_UNSET_UINT;

        if (owner[i] != NGX_CONF_UNSET_UINT && key.len <= 0xffff) {
            count[k->worker]++;
            found++;
        }
    }

    ngx_goim_xw_tables_unlock(ccf);

    for (w = 0; w < ccf->nworkers; w++) {
        if (count[w] == 0) {
            continue;
        }

        if (w == ccf->worker) {
            for (i = 0; i < n; i++) {
                if (owner[i] == w) {
                    key.data = (u_char *) keys[i];
                    key.len = klen[i];
                    (void) ngx_goim_comet_push_key(ccf, &key, op, msg);
                }
            }

            continue;
        }

        for (size = 0, i = 0; i < n; i++) {
            if (owner[i] == w) {
                size += sizeof(uint16_t) + klen[i];
            }
        }

        buf = ngx_alloc(size, ngx_cycle->log);
        if (buf == NULL) {
            continue;
        }

        for (p = buf, i = 0; i < n; i++) {
            if (owner[i] == w) {
                len = (uint16_t) klen[i];
                p = ngx_cpymem(p, &len, sizeof(uint16_t));
                p = ngx_cpymem(p, keys[i], len);
            }
        }

        ngx_memzero(&rec, sizeof(ngx_goim_xw_rec_t));
        rec.type = NGX_GOIM_XW_KEYS;
        rec.raw = msg->raw;
        rec.op = op;
        rec.msg_len = (uint32_t) msg->len;
        rec.nkeys = (uint32_t) count[w];

        if (ngx_goim_xw_append(ccf, w, &rec, buf, size, msg->data)
            != NGX_OK)
        {
            ccf->stats->xw_dropped += count[w];
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "goim comet: worker %ui queue full, push to %ui "
                          "keys dropped", w, count[w]);
        }

        ngx_free(buf);
    }

    ngx_free(owner);

    return found;
}


/* a room push or a broadcast: every other worker gets one record */

void
ngx_goim_xw_push_others(ngx_goim_comet_conf_t *ccf, ngx_str_t *room,
    int32_t op, ngx_uint_t speed, ngx_goim_comet_msg_t *msg)
{
    ngx_uint_t         w;
    ngx_goim_xw_rec_t  rec;

    if (ccf->sh == NULL) {
        return;
    }

    for (w = 0; w < ccf->nworkers; w++) {
        if (w == ccf->worker) {
            continue;
        }

        ngx_memzero(&rec, sizeof(ngx_goim_xw_rec_t));
        rec.type = room ? NGX_GOIM_XW_ROOM : NGX_GOIM_XW_BROADCAST;
        rec.raw = msg->raw;
        rec.op = op;
        rec.msg_len = (uint32_t) msg->len;
        rec.nkeys = room ? (uint32_t) room->len : 0;
        rec.id = speed;

        if (ngx_goim_xw_append(ccf, w, &rec, room ? room->data : NULL,
                               room ? room->len : 0, msg->data)
            != NGX_OK)
        {
            ccf->stats->xw_dropped++;
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "goim comet: worker %ui queue full, %s dropped",
                          w, room ? "room push" : "broadcast");
        }
    }
}


/* for the status page: every worker's counters and queues, added up */

void
ngx_goim_xw_stats(ngx_goim_comet_conf_t *ccf, ngx_goim_comet_stats_t *sum,
    ngx_uint_t *workers, uint64_t *queued, ngx_uint_t *keys)
{
    ngx_uint_t               w, i, n;
    ngx_atomic_uint_t       *from, *to;
    ngx_goim_xw_ring_t      *ring;
    ngx_goim_comet_stats_t  *stats;

    ngx_memzero(sum, sizeof(ngx_goim_comet_stats_t));
    *queued = 0;

    if (ccf->sh == NULL) {
        *sum = *ccf->stats;
        *workers = 1;
        *keys = sum->online;
        return;
    }

    n = sizeof(ngx_goim_comet_stats_t) / sizeof(ngx_atomic_uint_t);
    *workers = ccf->nworkers;

    for (w = 0; w < ccf->nworkers; w++) {
        stats = &ngx_goim_xw_sh(ccf)->stats[w];
        from = (ngx_atomic_uint_t *) stats;
        to = (ngx_atomic_uint_t *) sum;

        for (i = 0; i < n; i++) {
            to[i] += from[i];
        }

        ring = &ngx_goim_xw_sh(ccf)->rings[w];
        *queued += ring->head - ring->tail;
    }

    /* a room with members in two workers is one room */
    sum->rooms = ngx_goim_xw_sh(ccf)->nrooms;
    *keys = ngx_goim_xw_sh(ccf)->nkeys;
}
