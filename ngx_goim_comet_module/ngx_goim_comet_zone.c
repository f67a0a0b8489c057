
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <sys/eventfd.h>

#include "ngx_goim_comet.h"
#include "ngx_goim_comet_zone.h"


/*
 * The shared zone (one per configuration generation): sized and added in
 * the core module's init_conf, laid out by the master, and the
 * primitives everything in it is used with: the pid locks a dead owner's
 * successor takes back, a record posted into a worker's ring, a
 * wake-up.  It calls nothing else of comet's.
 *
 * A connection lives in one worker; a push RPC arrives at any.  The zone
 * holds:
 *
 * - the key table and the room table (ngx_goim_comet_tables.c);
 * - one byte ring per worker: producers append records under a spinlock,
 *   the owner drains them (ngx_goim_comet_relay.c).  The owner sleeps on
 *   an eventfd, and a producer writes it only when the owner said it was
 *   going to sleep, so a burst costs one wake-up;
 * - each worker's counters and pid, so the worker that replaces a killed
 *   one knows whose locks to release (ngx_goim_comet_tables_recover()).
 *
 * Every lock here (one per ring, one for both tables) holds its owner's
 * pid, and the tables' nodes come from a slab pool of their own, so that
 * a dead owner's half-made change can be thrown away whole
 * (ngx_goim_comet_tables_rebuild()).  The zone's own slab mutex is taken
 * only at start, by the master.
 *
 * A fresh zone per generation keeps a reloaded configuration's workers off
 * the rings of the old ones, which share their worker numbers.
 */


static ngx_int_t ngx_goim_comet_zone_init(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_goim_comet_zone_close_fds(void *data);


/* from the core module's init_conf: the sizes have their defaults now */

ngx_int_t
ngx_goim_comet_zone_add(ngx_cycle_t *cycle, ngx_goim_comet_conf_t *ccf)
{
    size_t                  size;
    ngx_str_t               name;
    ngx_conf_t              cf;
    ngx_uint_t              workers;
    ngx_core_conf_t        *core;
    ngx_goim_comet_zone_t  *zone;

    static ngx_uint_t  generation;

    core = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx,
                                           ngx_core_module);

    /* ngx_core_module's init_conf ran first: this is the final count */
    workers = core->worker_processes > 0
              ? (ngx_uint_t) core->worker_processes : 1;

    size = ccf->zone_size + workers * (ccf->ring_size + ngx_pagesize)
           + 8 * ngx_pagesize;

    /* the slab pool's own page descriptors */
    size += size / ngx_pagesize * sizeof(ngx_slab_page_t);

    zone = ngx_pcalloc(cycle->pool, sizeof(ngx_goim_comet_zone_t));
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->cycle = cycle;
    zone->conf = ccf;
    zone->my_eventfd = -1;

    name.data = ngx_pnalloc(cycle->pool,
                            sizeof("goim_comet_") + NGX_INT_T_LEN);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    name.len = ngx_sprintf(name.data, "goim_comet_%ui", ++generation)
               - name.data;

    /* what ngx_shared_memory_add() reads of a configuration */
    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.cycle = cycle;
    cf.pool = cycle->pool;
    cf.log = cycle->log;

    ccf->shm_zone = ngx_shared_memory_add(&cf, &name, size,
                                          &ngx_goim_comet_module);
    if (ccf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    ccf->shm_zone->init = ngx_goim_comet_zone_init;
    ccf->shm_zone->data = zone;
    ccf->shm_zone->noreuse = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_goim_comet_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_goim_comet_zone_t *zone = shm_zone->data;

    int                      fd;
    ngx_uint_t               i, n;
    ngx_slab_pool_t         *shpool;
    ngx_core_conf_t         *core;
    ngx_pool_cleanup_t      *cln;
    ngx_goim_comet_conf_t   *ccf;
    ngx_goim_comet_shctx_t  *sh;

    ccf = zone->conf;

    /* the new cycle's settings: ngx_cycle is still the old one here */
    core = (ngx_core_conf_t *) ngx_get_conf(zone->cycle->conf_ctx,
                                           ngx_core_module);

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    n = core->worker_processes > 0 ? (ngx_uint_t) core->worker_processes : 1;

    sh = ngx_slab_alloc(shpool, sizeof(ngx_goim_comet_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->lock = 0;
    sh->nrings = n;

    sh->rings = ngx_slab_calloc(shpool, n * sizeof(ngx_goim_comet_ring_t));
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
                          "goim comet: no room for %ui worker queues", n);
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

    ngx_goim_comet_zone_tables_reset(sh);

    zone->sh = sh;

    /* the wake-up fds are made here, in the master, for every worker */

    zone->eventfds = ngx_palloc(zone->cycle->pool, n * sizeof(int));
    if (zone->eventfds == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        fd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);
        if (fd == -1) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, ngx_errno,
                          "goim comet: eventfd() failed");
            return NGX_ERROR;
        }

        zone->eventfds[i] = fd;
    }

    zone->neventfds = n;

    cln = ngx_pool_cleanup_add(zone->cycle->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_goim_comet_zone_close_fds;
    cln->data = zone;

    return NGX_OK;
}


static void
ngx_goim_comet_zone_close_fds(void *data)
{
    ngx_goim_comet_zone_t *zone = data;

    ngx_uint_t  i;

    for (i = 0; i < zone->neventfds; i++) {
        if (zone->eventfds[i] != -1
            && zone->eventfds[i] != zone->my_eventfd)
        {
            (void) close(zone->eventfds[i]);
        }
    }

    zone->neventfds = 0;
}


/*
 * The tables' nodes live in a slab pool inside the zone, used under
 * sh->lock alone (never the zone's own mutex), so that starting it afresh
 * drops every node at once, whatever state a dead owner left it in.
 */

void
ngx_goim_comet_zone_tables_reset(ngx_goim_comet_shctx_t *sh)
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


uint64_t
ngx_goim_comet_zone_now_ns(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}


/*
 * The counters' histograms (hops between workers, a reload's freezes):
 * n buckets, [i] counts values below bounds[i], the last one the rest.
 */

ngx_uint_t
ngx_goim_comet_zone_bucket(const uint32_t *bounds, ngx_uint_t n,
    uint64_t value)
{
    ngx_uint_t  i;

    for (i = 0; i < n - 1; i++) {
        if (value < bounds[i]) {
            break;
        }
    }

    return i;
}


/* the upper bound of the bucket holding the permille-th value; 0: none */

ngx_uint_t
ngx_goim_comet_zone_percentile(const volatile ngx_atomic_uint_t *counts,
    const uint32_t *bounds, ngx_uint_t n, ngx_uint_t permille)
{
    uint64_t    total, seen;
    ngx_uint_t  i;

    for (total = 0, i = 0; i < n; i++) {
        total += counts[i];
    }

    if (total == 0) {
        return 0;
    }

    for (seen = 0, i = 0; i < n - 1; i++) {
        seen += counts[i];

        if (seen * 1000 >= total * permille) {
            break;
        }
    }

    return bounds[i];
}


ngx_int_t
ngx_goim_comet_zone_post(ngx_goim_comet_worker_t *wk, ngx_uint_t worker,
    ngx_goim_comet_rec_t *rec, u_char *extra, size_t extra_len, u_char *msg)
{
    u_char                 *p;
    size_t                  len, pos, gap;
    ngx_pid_t               dead;
    ngx_goim_comet_rec_t   *pad;
    ngx_goim_comet_ring_t  *ring;

    ring = &ngx_goim_comet_sh(wk)->rings[worker];

    len = ngx_align(sizeof(ngx_goim_comet_rec_t) + extra_len + rec->msg_len, 8);
    rec->len = (uint32_t) len;
    rec->sent_ns = ngx_goim_comet_zone_now_ns();

    if (len > ring->size / 2) {
        (void) ngx_atomic_fetch_add(&ring->dropped, 1);
        return NGX_DECLINED;
    }

    dead = ngx_goim_comet_zone_lock(&ring->lock);

    if (dead) {
        ngx_goim_comet_zone_recovered(wk, dead, worker);
    }

    pos = ring->head % ring->size;
    gap = (pos + len > ring->size) ? ring->size - pos : 0;

    if (ring->size - (ring->head - ring->tail) < gap + len) {
        ngx_unlock(&ring->lock);
        (void) ngx_atomic_fetch_add(&ring->dropped, 1);
        return NGX_DECLINED;
    }

    if (gap) {
        pad = (ngx_goim_comet_rec_t *) (ring->data + pos);
        pad->len = (uint32_t) gap;
        pad->type = NGX_GOIM_COMET_REC_PAD;
        pos = 0;
    }

    p = ngx_cpymem(ring->data + pos, rec, sizeof(ngx_goim_comet_rec_t));
    p = ngx_cpymem(p, extra, extra_len);
    ngx_memcpy(p, msg, rec->msg_len);

    ngx_memory_barrier();
    ring->head += gap + len;

    ngx_unlock(&ring->lock);

    if (ngx_atomic_cmp_set(&ring->sleeping, 1, 0)) {
        ngx_goim_comet_zone_wake(wk, worker);
    }

    return NGX_OK;
}


/*
 * A queue's lock holds its owner's pid.  A worker killed while it holds
 * one (SIGKILL, the OOM killer) would leave it taken for good, and every
 * producer of that queue would spin on it: the worker that replaces the
 * dead one releases its locks at start (ngx_goim_comet_tables_recover()), and a
 * producer that finds the owner gone takes the lock over, which also
 * covers a pid nobody replaces.  What the dead owner was appending was
 * not published (the head moves last), so the next record overwrites it.
 */

/* the pid of a dead owner it was taken from, or 0 */

ngx_pid_t
ngx_goim_comet_zone_lock(ngx_atomic_t *lock)
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


void
ngx_goim_comet_zone_recovered(ngx_goim_comet_worker_t *wk, ngx_pid_t pid,
    ngx_uint_t ring)
{
    wk->stats->locks_recovered++;

    if (ring == NGX_GOIM_COMET_NO_RING) {
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


/* wakes worker w up, to drain its ring or to see the tables rebuilt */

void
ngx_goim_comet_zone_wake(ngx_goim_comet_worker_t *wk, ngx_uint_t w)
{
    uint64_t  one;

    one = 1;

    if (write(wk->zone->eventfds[w], &one, sizeof(uint64_t)) == -1) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                      "goim comet: eventfd write failed");
    }
}
