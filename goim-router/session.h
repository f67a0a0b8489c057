/*
 * goim-router's session store: who is connected where.
 *
 * A session is one client connection: its key (unique, chosen by logic),
 * the member id (mid, 0 for an anonymous connection), the comet serving
 * it and its room.  One mid may have many sessions (multi-device).  Two
 * indexes point at each session: by key, and by mid (a multimap: every
 * session of a mid hangs on one hash chain; mid 0 is not indexed).
 *
 * Sessions expire session_ttl after their last put or renewal.  They sit
 * in one list in renewal order, so the expiry pass looks only at the
 * sessions that are due: its cost is what expires.
 *
 * Compact on purpose (goim-router aims at <= 150 bytes a session): a
 * session is 64 bytes plus its key, comet ids and room names are interned
 * (one copy each, shared by every session on them, reference-counted so
 * the count per room and per comet is there for presence).
 *
 * Plain C, no libuv: times are passed in (milliseconds, any monotonic
 * origin), so the unit tests drive the clock.
 */

#ifndef ROUTER_SESSION_H
#define ROUTER_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "goim_uv_hash.h"
#include "goim_uv_queue.h"

typedef struct {
    goim_hnode_t       node;
    uint32_t           refs;     /* sessions using it */
    uint32_t           hash;
    uint8_t            gone;     /* a comet marked for router_store_sweep */
    char               s[];
} router_str_t;

typedef struct {
    goim_hnode_t       key_node;
    goim_hnode_t       mid_node;
    goim_queue_t       queue;    /* in the store's expiry order */
    int64_t            mid;
    router_str_t      *server;
    router_str_t      *room;     /* NULL: no room */
    uint32_t           expires;  /* seconds since the store's epoch */
    uint32_t           key_hash;
    char               key[];
} router_session_t;

typedef struct {
    goim_hash_t        keys;
    goim_hash_t        mids;
    goim_hash_t        servers;  /* interned comet ids */
    goim_hash_t        rooms;    /* interned room names */
    goim_queue_t       expiry;   /* oldest renewal first */
    uint64_t           epoch;    /* ms */
    uint64_t           ttl;      /* ms */
    size_t             bytes;    /* sessions and strings, as allocated */
    size_t             marked;   /* sessions the next sweep removes */
    uint64_t           expired;  /* sessions expired so far */
} router_store_t;


/* 0, or -1 when memory ran out */
int router_store_init(router_store_t *st, uint64_t now, uint64_t ttl);
void router_store_free(router_store_t *st);

/* Applies to sessions put or renewed from now on. */
void router_store_set_ttl(router_store_t *st, uint64_t ttl);

/*
 * Registers key (or updates it: *replaced = 1) with mid, server and room
 * (NULL or "" for none), expiring ttl from now.  NULL when memory ran out.
 */
router_session_t *router_store_put(router_store_t *st, int64_t mid,
    const char *key, const char *server, const char *room, uint64_t now,
    int *replaced);

/* Removes key if it is registered on server: 1, else 0. */
int router_store_del(router_store_t *st, const char *key,
    const char *server);

/*
 * Pushes key's expiry back to ttl from now, updating its fields: 1; or,
 * when it had expired (or never was), registers it again: 0.  -1 when
 * memory ran out.
 */
int router_store_renew(router_store_t *st, int64_t mid, const char *key,
    const char *server, const char *room, uint64_t now);

router_session_t *router_store_get(router_store_t *st, const char *key);

/* The sessions of mid: start with prev = NULL, then pass the last one. */
router_session_t *router_store_by_mid(router_store_t *st, int64_t mid,
    router_session_t *prev);

/* Removes up to max sessions whose time is up; returns how many. */
size_t router_store_expire(router_store_t *st, uint64_t now, size_t max);

/*
 * Removes every session on server (a comet that went away); returns how
 * many.  Walks every session: comets go rarely, and a per-comet list
 * would cost 16 bytes a session.  To drop several comets, mark each, then
 * sweep once: one walk for all of them.
 */
size_t router_store_del_server(router_store_t *st, const char *server);

/* Marks server's sessions for the next sweep; returns how many it has. */
size_t router_store_mark_server(router_store_t *st, const char *server);

/* Removes the sessions of every marked server in one walk; how many. */
size_t router_store_sweep(router_store_t *st);

/* Sessions in room, on server: the presence counts, kept exact. */
uint32_t router_store_room_count(router_store_t *st, const char *room);
uint32_t router_store_server_count(router_store_t *st, const char *server);

/* Calls fn for every room that has sessions. */
void router_store_each_room(router_store_t *st,
    void (*fn)(const char *room, uint32_t count, void *arg), void *arg);

static inline size_t
router_store_room_total(const router_store_t *st)
{
    return st->rooms.count;
}

/* Removes every session, as at shutdown. */
void router_store_clear(router_store_t *st);

static inline size_t
router_store_count(const router_store_t *st)
{
    return st->keys.count;
}

/* Sessions and strings plus the hash tables, bytes. */
size_t router_store_memory(const router_store_t *st);

static inline const char *
router_session_server(const router_session_t *s)
{
    return s->server->s;
}

static inline const char *
router_session_room(const router_session_t *s)
{
    return s->room ? s->room->s : "";
}

#endif /* ROUTER_SESSION_H */
