
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"
#include "ngx_goim_comet_zone.h"


/*
 * The tables every worker shares, in the zone: key -> (worker, connection
 * id), so a push by key goes to its owner only and a second connection
 * with a key kicks the first wherever it is; and every room some worker
 * has members in, with a bit per worker, so Rooms() and the status count
 * them once for all.  Used under one pid lock (ngx_goim_comet_zone.c);
 * nothing here calls above the zone.
 */


static void ngx_goim_comet_tables_lock(ngx_goim_comet_worker_t *wk);
static void ngx_goim_comet_tables_unlock(ngx_goim_comet_worker_t *wk);
static void ngx_goim_comet_tables_rebuild(ngx_goim_comet_worker_t *wk);
static void ngx_goim_comet_tables_add_mine(ngx_goim_comet_worker_t *wk);
static void ngx_goim_comet_tables_room_drop_locked(
    ngx_goim_comet_worker_t *wk, ngx_goim_comet_shroom_t *room);


static void
ngx_goim_comet_tables_lock(ngx_goim_comet_worker_t *wk)
{
    ngx_pid_t  dead;

    dead = ngx_goim_comet_zone_lock(&ngx_goim_comet_sh(wk)->lock);

    if (dead) {
        ngx_goim_comet_zone_recovered(wk, dead, NGX_GOIM_COMET_NO_RING);
        ngx_goim_comet_tables_rebuild(wk);
    }
}


static void
ngx_goim_comet_tables_unlock(ngx_goim_comet_worker_t *wk)
{
    /* what was written under the lock is written before it is free */
    ngx_memory_barrier();

    ngx_unlock(&ngx_goim_comet_sh(wk)->lock);
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
ngx_goim_comet_tables_rebuild(ngx_goim_comet_worker_t *wk)
{
    ngx_uint_t               w;
    ngx_goim_comet_shctx_t  *sh;

    sh = ngx_goim_comet_sh(wk);

    ngx_goim_comet_zone_tables_reset(sh);
    sh->rebuilds++;

    ngx_goim_comet_tables_add_mine(wk);

    for (w = 0; w < wk->nworkers; w++) {
        if (w != wk->worker) {
            ngx_goim_comet_zone_wake(wk, w);
        }
    }
}


/* under the lock: this worker's keys and rooms, into fresh tables */

static void
ngx_goim_comet_tables_add_mine(ngx_goim_comet_worker_t *wk)
{
    size_t                    words;
    ngx_uint_t                lost;
    ngx_rbtree_t             *tree;
    ngx_rbtree_node_t        *node;
    ngx_goim_comet_shkey_t   *k;
    ngx_goim_comet_shroom_t  *room;
    ngx_goim_channel_t       *ch;
    ngx_goim_comet_shctx_t   *sh;
    ngx_goim_comet_room_t    *mine;

    sh = ngx_goim_comet_sh(wk);
    words = ngx_goim_comet_room_words(sh);
    lost = 0;

    tree = &wk->channels;

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

        k = ngx_slab_alloc_locked(sh->pool, sizeof(ngx_goim_comet_shkey_t)
                                            + ch->node.str.len);
        if (k == NULL) {
            lost++;
            continue;
        }

        k->node.str.data = (u_char *) (k + 1);
        k->node.str.len = ch->node.str.len;
        ngx_memcpy(k->node.str.data, ch->node.str.data, ch->node.str.len);
        k->node.node.key = ch->node.node.key;
        k->worker = wk->worker;
        k->id = ch->id;

        ngx_rbtree_insert(&sh->keys, &k->node.node);
        sh->nkeys++;
    }

    tree = &wk->rooms;

    for (node = (tree->root == tree->sentinel)
                ? NULL : ngx_rbtree_min(tree->root, tree->sentinel);
         node;
         node = ngx_rbtree_next(tree, node))
    {
        mine = (ngx_goim_comet_room_t *) node;

        room = (ngx_goim_comet_shroom_t *)
                   ngx_str_rbtree_lookup(&sh->rooms, &mine->node.str,
                                         (uint32_t) mine->node.node.key);

        if (room == NULL) {
            room = ngx_slab_calloc_locked(sh->pool,
                                   offsetof(ngx_goim_comet_shroom_t, workers)
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

        room->workers[wk->worker / 64] |= (uint64_t) 1 << (wk->worker % 64);
    }

    wk->tables_rebuilds = sh->rebuilds;

    if (lost) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "goim comet: the shared tables are full, %ui keys or "
                      "rooms of worker %ui left out: raise goim_comet_zone",
                      lost, wk->worker);
    }
}


/*
 * Another worker rebuilt the tables and woke this one to add its own
 * (the relay asks when it wakes up).
 */

void
ngx_goim_comet_tables_sync(ngx_goim_comet_worker_t *wk)
{
    ngx_goim_comet_shctx_t  *sh;

    sh = ngx_goim_comet_sh(wk);

    if (wk->tables_rebuilds == sh->rebuilds) {
        return;
    }

    ngx_goim_comet_tables_lock(wk);

    if (wk->tables_rebuilds != sh->rebuilds) {
        ngx_goim_comet_tables_add_mine(wk);
    }

    ngx_goim_comet_tables_unlock(wk);
}


/*
 * The worker this one replaces died: its pid leaves every lock it held,
 * and every worker is woken, as it may have died between taking a
 * sleeping worker's flag and writing its eventfd (a spurious wake-up
 * finds an empty queue).
 */

void
ngx_goim_comet_tables_recover(ngx_goim_comet_worker_t *wk)
{
    ngx_pid_t                dead;
    ngx_uint_t               w;
    ngx_goim_comet_shctx_t  *sh;

    sh = ngx_goim_comet_sh(wk);

    dead = (ngx_pid_t) sh->pids[wk->worker];
    sh->pids[wk->worker] = ngx_pid;

    if (dead == 0 || dead == ngx_pid) {
        return;
    }

    if (ngx_atomic_cmp_set(&sh->lock, (ngx_atomic_uint_t) dead, ngx_pid)) {
        ngx_goim_comet_zone_recovered(wk, dead, NGX_GOIM_COMET_NO_RING);
        ngx_goim_comet_tables_rebuild(wk);
        ngx_goim_comet_tables_unlock(wk);
    }

    for (w = 0; w < sh->nrings; w++) {

        if (ngx_atomic_cmp_set(&sh->rings[w].lock, (ngx_atomic_uint_t) dead,
                               0))
        {
            ngx_goim_comet_zone_recovered(wk, dead, w);
        }

        if (w != wk->worker) {
            ngx_goim_comet_zone_wake(wk, w);
        }
    }
}


/*
 * Keys, rooms and gauges still marked as this worker's when it starts
 * were left by a worker that died with this number (the master made this
 * one to replace it): those connections are gone.  A fresh generation's
 * tables hold nothing of ours, and the walk finds nothing.
 */

void
ngx_goim_comet_tables_forget(ngx_goim_comet_worker_t *wk)
{
    ngx_rbtree_t            *tree;
    ngx_rbtree_node_t       *node, *next;
    ngx_goim_comet_shkey_t  *k;
    ngx_goim_comet_shctx_t  *sh;

    sh = ngx_goim_comet_sh(wk);

    /* its gauges too; the counters of what it did stay */
    wk->stats->conns_tcp = 0;
    wk->stats->conns_ws = 0;
    wk->stats->online = 0;
    wk->stats->rooms = 0;

    ngx_goim_comet_tables_lock(wk);

    tree = &sh->keys;

    for (node = (tree->root == tree->sentinel)
                ? NULL : ngx_rbtree_min(tree->root, tree->sentinel);
         node;
         node = next)
    {
        next = ngx_rbtree_next(tree, node);
        k = (ngx_goim_comet_shkey_t *) node;

        if (k->worker == wk->worker) {
            ngx_rbtree_delete(tree, node);
            ngx_slab_free_locked(ngx_goim_comet_sh(wk)->pool, k);
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
        ngx_goim_comet_tables_room_drop_locked(wk,
                                         (ngx_goim_comet_shroom_t *) node);
    }

    ngx_goim_comet_tables_unlock(wk);
}


/* this worker has no member left in ROOM; the last worker frees it */

static void
ngx_goim_comet_tables_room_drop_locked(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_shroom_t *room)
{
    ngx_uint_t               i, words, used;
    ngx_goim_comet_shctx_t  *sh;

    sh = ngx_goim_comet_sh(wk);
    words = ngx_goim_comet_room_words(sh);

    room->workers[wk->worker / 64] &= ~((uint64_t) 1 << (wk->worker % 64));

    for (used = 0, i = 0; i < words; i++) {
        used |= (room->workers[i] != 0);
    }

    if (!used) {
        ngx_rbtree_delete(&sh->rooms, &room->node.node);
        sh->nrooms--;
        sh->room_bytes -= room->node.str.len;
        ngx_slab_free_locked(ngx_goim_comet_sh(wk)->pool, room);
    }
}


/* the room table: this worker has members in NAME now */

void
ngx_goim_comet_tables_room_add(ngx_goim_comet_worker_t *wk,
    ngx_str_node_t *name)
{
    size_t                    words;
    ngx_goim_comet_shroom_t  *room;
    ngx_goim_comet_shctx_t   *sh;

    if (wk->sh == NULL) {
        return;
    }

    sh = ngx_goim_comet_sh(wk);
    words = ngx_goim_comet_room_words(sh);

    ngx_goim_comet_tables_lock(wk);

    room = (ngx_goim_comet_shroom_t *)
               ngx_str_rbtree_lookup(&sh->rooms, &name->str,
                                     (uint32_t) name->node.key);

    if (room == NULL) {
        room = ngx_slab_calloc_locked(sh->pool,
                                      offsetof(ngx_goim_comet_shroom_t, workers)
                                      + words * sizeof(uint64_t)
                                      + name->str.len);
        if (room == NULL) {
            ngx_goim_comet_tables_unlock(wk);
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

    room->workers[wk->worker / 64] |= (uint64_t) 1 << (wk->worker % 64);

    ngx_goim_comet_tables_unlock(wk);
}


/* ... and has none left */

void
ngx_goim_comet_tables_room_del(ngx_goim_comet_worker_t *wk,
    ngx_str_node_t *name)
{
    ngx_goim_comet_shroom_t  *room;
    ngx_goim_comet_shctx_t   *sh;

    if (wk->sh == NULL) {
        return;
    }

    sh = ngx_goim_comet_sh(wk);

    ngx_goim_comet_tables_lock(wk);

    room = (ngx_goim_comet_shroom_t *)
               ngx_str_rbtree_lookup(&sh->rooms, &name->str,
                                     (uint32_t) name->node.key);

    if (room) {
        ngx_goim_comet_tables_room_drop_locked(wk, room);
    }

    ngx_goim_comet_tables_unlock(wk);
}


/*
 * Every room of every worker, for Rooms(): a copy made under the lock,
 * NUL-terminated names in one ngx_alloc()ed block the caller frees.  The
 * push listener is a stream server, and stream {} always makes the zone.
 */

ngx_int_t
ngx_goim_comet_tables_rooms(ngx_goim_comet_worker_t *wk, char ***names,
    size_t *n)
{
    u_char                    *p;
    char                     **list;
    size_t                     i;
    ngx_rbtree_t              *tree;
    ngx_rbtree_node_t         *node;
    ngx_goim_comet_shroom_t   *room;
    ngx_goim_comet_shctx_t    *sh;

    sh = ngx_goim_comet_sh(wk);
    tree = &sh->rooms;

    ngx_goim_comet_tables_lock(wk);

    list = ngx_alloc(sh->nrooms * (sizeof(char *) + 1) + sh->room_bytes + 1,
                     ngx_cycle->log);
    if (list == NULL) {
        ngx_goim_comet_tables_unlock(wk);
        return NGX_ERROR;
    }

    p = (u_char *) (list + sh->nrooms);
    i = 0;

    if (tree->root != tree->sentinel) {
        for (node = ngx_rbtree_min(tree->root, tree->sentinel);
             node;
             node = ngx_rbtree_next(tree, node))
        {
            room = (ngx_goim_comet_shroom_t *) node;

            list[i++] = (char *) p;
            p = ngx_cpymem(p, room->node.str.data, room->node.str.len);
            *p++ = '\0';
        }
    }

    ngx_goim_comet_tables_unlock(wk);

    *names = list;
    *n = i;

    return NGX_OK;
}


/* the key table */

ngx_int_t
ngx_goim_comet_tables_key_set(ngx_goim_comet_worker_t *wk,
    ngx_goim_channel_t *ch)
{
    uint32_t                 hash;
    ngx_uint_t               worker;
    uint64_t                 id;
    ngx_goim_comet_shkey_t  *k;
    ngx_goim_comet_rec_t     rec;

    if (wk->sh == NULL) {
        return NGX_OK;
    }

    hash = ch->node.node.key;
    worker = wk->worker;
    id = 0;

    ngx_goim_comet_tables_lock(wk);

    k = (ngx_goim_comet_shkey_t *)
            ngx_str_rbtree_lookup(&ngx_goim_comet_sh(wk)->keys, &ch->node.str,
                                  hash);
    if (k) {
        worker = k->worker;
        id = k->id;
        k->worker = wk->worker;
        k->id = ch->id;

    } else {
        k = ngx_slab_alloc_locked(ngx_goim_comet_sh(wk)->pool,
                                  sizeof(ngx_goim_comet_shkey_t)
                                  + ch->node.str.len);
        if (k == NULL) {
            ngx_goim_comet_tables_unlock(wk);
            ngx_log_error(NGX_LOG_ERR, ch->connection->log, 0,
                          "goim comet: the shared key table is full, "
                          "raise goim_comet_zone");
            return NGX_ERROR;
        }

        k->node.str.data = (u_char *) (k + 1);
        k->node.str.len = ch->node.str.len;
        ngx_memcpy(k->node.str.data, ch->node.str.data, ch->node.str.len);
        k->node.node.key = hash;
        k->worker = wk->worker;
        k->id = ch->id;

        ngx_rbtree_insert(&ngx_goim_comet_sh(wk)->keys, &k->node.node);
        ngx_goim_comet_sh(wk)->nkeys++;
    }

    ngx_goim_comet_tables_unlock(wk);

    if (id && worker != wk->worker) {
        /* the older connection with this key is in another worker */
        ngx_memzero(&rec, sizeof(ngx_goim_comet_rec_t));
        rec.type = NGX_GOIM_COMET_REC_KICK;
        rec.nkeys = (uint32_t) ch->node.str.len;
        rec.id = id;

        (void) ngx_goim_comet_zone_post(wk, worker, &rec, ch->node.str.data,
                                  ch->node.str.len, NULL);
    }

    return NGX_OK;
}


void
ngx_goim_comet_tables_key_del(ngx_goim_comet_worker_t *wk,
    ngx_goim_channel_t *ch)
{
    ngx_goim_comet_shkey_t  *k;

    if (wk->sh == NULL) {
        return;
    }

    ngx_goim_comet_tables_lock(wk);

    k = (ngx_goim_comet_shkey_t *)
            ngx_str_rbtree_lookup(&ngx_goim_comet_sh(wk)->keys, &ch->node.str,
                                  ch->node.node.key);

    /* only its own entry: a newer connection may own the key by now */
    if (k && k->id == ch->id) {
        ngx_rbtree_delete(&ngx_goim_comet_sh(wk)->keys, &k->node.node);
        ngx_slab_free_locked(ngx_goim_comet_sh(wk)->pool, k);
        ngx_goim_comet_sh(wk)->nkeys--;
    }

    ngx_goim_comet_tables_unlock(wk);
}


/*
 * For a push by keys: each key's owner (NGX_CONF_UNSET_UINT: none) and
 * length, and how many keys each worker owns.  Returns how many are known.
 */

ngx_uint_t
ngx_goim_comet_tables_owners(ngx_goim_comet_worker_t *wk, char **keys,
    size_t n, ngx_uint_t *owner, ngx_uint_t *klen, ngx_uint_t *count)
{
    size_t                   i;
    uint32_t                 hash;
    ngx_str_t                key;
    ngx_uint_t               found;
    ngx_goim_comet_shkey_t  *k;

    found = 0;

    ngx_goim_comet_tables_lock(wk);

    for (i = 0; i < n; i++) {
        key.data = (u_char *) keys[i];
        key.len = ngx_strlen(keys[i]);
        klen[i] = key.len;
        hash = ngx_crc32_long(key.data, key.len);

        k = (ngx_goim_comet_shkey_t *)
                ngx_str_rbtree_lookup(&ngx_goim_comet_sh(wk)->keys, &key,
                                      hash);
        owner[i] = (k && k->worker < wk->nworkers) ? k->worker
                                                   : NGX_CONF_UNSET_UINT;

        if (owner[i] != NGX_CONF_UNSET_UINT && key.len <= 0xffff) {
            count[k->worker]++;
            found++;
        }
    }

    ngx_goim_comet_tables_unlock(wk);

    return found;
}


/* for the status page: every worker's counters and queues, added up */

void
ngx_goim_comet_tables_stats(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_stats_t *sum, ngx_uint_t *workers, uint64_t *queued,
    ngx_uint_t *keys)
{
    ngx_uint_t               w, i, n;
    ngx_atomic_uint_t       *from, *to;
    ngx_goim_comet_ring_t   *ring;
    ngx_goim_comet_stats_t  *stats;

    ngx_memzero(sum, sizeof(ngx_goim_comet_stats_t));
    *queued = 0;

    if (wk->sh == NULL) {
        *sum = *wk->stats;
        *workers = 1;
        *keys = sum->online;
        return;
    }

    n = sizeof(ngx_goim_comet_stats_t) / sizeof(ngx_atomic_uint_t);
    *workers = wk->nworkers;

    for (w = 0; w < wk->nworkers; w++) {
        stats = &ngx_goim_comet_sh(wk)->stats[w];
        from = (ngx_atomic_uint_t *) stats;
        to = (ngx_atomic_uint_t *) sum;

        for (i = 0; i < n; i++) {
            to[i] += from[i];
        }

        ring = &ngx_goim_comet_sh(wk)->rings[w];
        *queued += ring->head - ring->tail;
    }

    /* a room with members in two workers is one room */
    sum->rooms = ngx_goim_comet_sh(wk)->nrooms;
    *keys = ngx_goim_comet_sh(wk)->nkeys;
}

