/*
 * goim-router's session store (see session.h).
 */

#include <stdlib.h>
#include <string.h>

#include "session.h"


#define ROUTER_SESSION_OF_KEY(n)                                              \
    ((router_session_t *) ((char *) (n)                                      \
                           - offsetof(router_session_t, key_node)))
#define ROUTER_SESSION_OF_MID(n)                                              \
    ((router_session_t *) ((char *) (n)                                      \
                           - offsetof(router_session_t, mid_node)))


static uint32_t
router_key_hash(const goim_hnode_t *n)
{
    return ROUTER_SESSION_OF_KEY(n)->key_hash;
}


static uint32_t
router_mid_hash(const goim_hnode_t *n)
{
    return goim_hash_u64((uint64_t) ROUTER_SESSION_OF_MID(n)->mid);
}


static uint32_t
router_str_hash(const goim_hnode_t *n)
{
    return ((const router_str_t *) n)->hash;
}


int
router_store_init(router_store_t *st, uint64_t now, uint64_t ttl)
{
    memset(st, 0, sizeof(*st));

    if (goim_hash_init(&st->keys, 1024, router_key_hash) != 0
        || goim_hash_init(&st->mids, 1024, router_mid_hash) != 0
        || goim_hash_init(&st->servers, 16, router_str_hash) != 0
        || goim_hash_init(&st->rooms, 256, router_str_hash) != 0)
    {
        goim_hash_free(&st->keys);
        goim_hash_free(&st->mids);
        goim_hash_free(&st->servers);
        goim_hash_free(&st->rooms);
        return -1;
    }

    goim_queue_init(&st->expiry);
    st->epoch = now;
    st->ttl = ttl;

    return 0;
}


void
router_store_set_ttl(router_store_t *st, uint64_t ttl)
{
    st->ttl = ttl;
}


size_t
router_store_memory(const router_store_t *st)
{
    return st->bytes + goim_hash_bytes(&st->keys)
           + goim_hash_bytes(&st->mids) + goim_hash_bytes(&st->servers)
           + goim_hash_bytes(&st->rooms);
}


/* ---- interned strings --------------------------------------------------- */

static router_str_t *
router_str_find(goim_hash_t *pool, const char *s)
{
    uint32_t       hv;
    goim_hnode_t  *n;
    router_str_t  *str;

    hv = goim_hash_str(s);

    for (n = goim_hash_chain(pool, hv); n; n = n->next) {
        str = (router_str_t *) n;

        if (str->hash == hv && strcmp(str->s, s) == 0) {
            return str;
        }
    }

    return NULL;
}


static router_str_t *
router_str_get(router_store_t *st, goim_hash_t *pool, const char *s)
{
    size_t         len;
    uint32_t       hv;
    goim_hnode_t  *n;
    router_str_t  *str;

    len = strlen(s);
    hv = goim_hash_bytes_fnv(s, len);

    for (n = goim_hash_chain(pool, hv); n; n = n->next) {
        str = (router_str_t *) n;

        if (str->hash == hv && strcmp(str->s, s) == 0) {
            str->refs++;
            return str;
        }
    }

    str = malloc(sizeof(router_str_t) + len + 1);
    if (str == NULL) {
        return NULL;
    }

    str->refs = 1;
    str->hash = hv;
    str->gone = 0;
    memcpy(str->s, s, len + 1);

    goim_hash_insert(pool, &str->node, hv);
    st->bytes += sizeof(router_str_t) + len + 1;

    return str;
}


static void
router_str_put(router_store_t *st, goim_hash_t *pool, router_str_t *str)
{
    if (str == NULL || --str->refs) {
        return;
    }

    goim_hash_remove(pool, &str->node, str->hash);
    st->bytes -= sizeof(router_str_t) + strlen(str->s) + 1;
    free(str);
}


/* ---- sessions ----------------------------------------------------------- */

static uint32_t
router_store_expires(router_store_t *st, uint64_t now)
{
    uint64_t  at;

    /* rounded up: a session never goes before its ttl is over */
    at = (now - st->epoch + st->ttl + 999) / 1000;

    return at > UINT32_MAX ? UINT32_MAX : (uint32_t) at;
}


static void
router_store_touch(router_store_t *st, router_session_t *s, uint64_t now)
{
    s->expires = router_store_expires(st, now);

    goim_queue_remove(&s->queue);
    goim_queue_insert_tail(&st->expiry, &s->queue);
}


router_session_t *
router_store_get(router_store_t *st, const char *key)
{
    uint32_t           hv;
    goim_hnode_t      *n;
    router_session_t  *s;

    hv = goim_hash_str(key);

    for (n = goim_hash_chain(&st->keys, hv); n; n = n->next) {
        s = ROUTER_SESSION_OF_KEY(n);

        if (s->key_hash == hv && strcmp(s->key, key) == 0) {
            return s;
        }
    }

    return NULL;
}


router_session_t *
router_store_by_mid(router_store_t *st, int64_t mid, router_session_t *prev)
{
    goim_hnode_t      *n;
    router_session_t  *s;

    if (mid == 0) {
        return NULL;
    }

    n = prev ? prev->mid_node.next
             : goim_hash_chain(&st->mids, goim_hash_u64((uint64_t) mid));

    for ( /* void */ ; n; n = n->next) {
        s = ROUTER_SESSION_OF_MID(n);

        if (s->mid == mid) {
            return s;
        }
    }

    return NULL;
}


/* Points s at server and room: 0, or -1 (s unchanged) without memory. */
static int
router_session_place(router_store_t *st, router_session_t *s,
    const char *server, const char *room)
{
    router_str_t  *srv, *rm;

    if (s->server && strcmp(s->server->s, server) == 0) {
        srv = s->server;
        srv->refs++;

    } else {
        srv = router_str_get(st, &st->servers, server);
        if (srv == NULL) {
            return -1;
        }
    }

    rm = NULL;

    if (room && room[0]) {
        rm = router_str_get(st, &st->rooms, room);
        if (rm == NULL) {
            router_str_put(st, &st->servers, srv);
            return -1;
        }
    }

    router_str_put(st, &st->servers, s->server);
    router_str_put(st, &st->rooms, s->room);
    s->server = srv;
    s->room = rm;

    return 0;
}


static void
router_session_set_mid(router_store_t *st, router_session_t *s, int64_t mid)
{
    if (s->mid == mid) {
        return;
    }

    if (s->mid) {
        goim_hash_remove(&st->mids, &s->mid_node,
                         goim_hash_u64((uint64_t) s->mid));
    }

    s->mid = mid;

    if (mid) {
        goim_hash_insert(&st->mids, &s->mid_node,
                         goim_hash_u64((uint64_t) mid));
    }
}


router_session_t *
router_store_put(router_store_t *st, int64_t mid, const char *key,
    const char *server, const char *room, uint64_t now, int *replaced)
{
    size_t             len;
    router_session_t  *s;

    s = router_store_get(st, key);

    if (s) {
        if (router_session_place(st, s, server, room) != 0) {
            return NULL;
        }

        router_session_set_mid(st, s, mid);
        router_store_touch(st, s, now);
        *replaced = 1;

        return s;
    }

    *replaced = 0;
    len = strlen(key);

    s = calloc(1, sizeof(router_session_t) + len + 1);
    if (s == NULL) {
        return NULL;
    }

    if (router_session_place(st, s, server, room) != 0) {
        free(s);
        return NULL;
    }

    memcpy(s->key, key, len + 1);
    s->key_hash = goim_hash_bytes_fnv(key, len);
    goim_queue_init(&s->queue);

    goim_hash_insert(&st->keys, &s->key_node, s->key_hash);
    router_session_set_mid(st, s, mid);
    router_store_touch(st, s, now);

    st->bytes += sizeof(router_session_t) + len + 1;

    return s;
}


static void
router_store_remove(router_store_t *st, router_session_t *s)
{
    goim_hash_remove(&st->keys, &s->key_node, s->key_hash);
    router_session_set_mid(st, s, 0);
    goim_queue_remove(&s->queue);

    router_str_put(st, &st->servers, s->server);
    router_str_put(st, &st->rooms, s->room);

    st->bytes -= sizeof(router_session_t) + strlen(s->key) + 1;
    free(s);
}


int
router_store_del(router_store_t *st, const char *key, const char *server)
{
    router_session_t  *s;

    s = router_store_get(st, key);

    if (s == NULL || strcmp(s->server->s, server) != 0) {
        return 0;
    }

    router_store_remove(st, s);

    return 1;
}


int
router_store_renew(router_store_t *st, int64_t mid, const char *key,
    const char *server, const char *room, uint64_t now)
{
    int  replaced;

    if (router_store_put(st, mid, key, server, room, now, &replaced)
        == NULL)
    {
        return -1;
    }

    return replaced;
}


size_t
router_store_expire(router_store_t *st, uint64_t now, size_t max)
{
    size_t             n;
    uint64_t           sec;
    goim_queue_t      *q;
    router_session_t  *s;

    sec = (now - st->epoch) / 1000;

    for (n = 0; n < max && !goim_queue_empty(&st->expiry); n++) {
        q = goim_queue_head(&st->expiry);
        s = goim_queue_data(q, router_session_t, queue);

        if (s->expires > sec) {
            break;
        }

        router_store_remove(st, s);
    }

    st->expired += n;

    return n;
}


size_t
router_store_mark_server(router_store_t *st, const char *server)
{
    router_str_t  *srv;

    srv = router_str_find(&st->servers, server);
    if (srv == NULL || srv->gone) {
        return 0;
    }

    srv->gone = 1;
    st->marked += srv->refs;

    return srv->refs;
}


size_t
router_store_sweep(router_store_t *st)
{
    size_t             n;
    goim_queue_t      *q, *next;
    router_session_t  *s;

    /*
     * A marked server goes with its last session; the walk stops when
     * every marked session is gone, so it never looks at a freed one.
     */

    n = 0;

    for (q = goim_queue_head(&st->expiry);
         q != &st->expiry && n < st->marked;
         q = next)
    {
        next = goim_queue_next(q);
        s = goim_queue_data(q, router_session_t, queue);

        if (s->server->gone) {
            router_store_remove(st, s);
            n++;
        }
    }

    st->marked = 0;

    return n;
}


size_t
router_store_del_server(router_store_t *st, const char *server)
{
    if (router_store_mark_server(st, server) == 0) {
        return 0;
    }

    return router_store_sweep(st);
}


uint32_t
router_store_room_count(router_store_t *st, const char *room)
{
    router_str_t  *str;

    str = router_str_find(&st->rooms, room);

    return str ? str->refs : 0;
}


uint32_t
router_store_server_count(router_store_t *st, const char *server)
{
    router_str_t  *str;

    str = router_str_find(&st->servers, server);

    return str ? str->refs : 0;
}


typedef struct {
    void  (*fn)(const char *room, uint32_t count, void *arg);
    void   *arg;
} router_room_walk_t;


static void
router_room_visit(goim_hnode_t *n, void *arg)
{
    router_str_t        *str = (router_str_t *) n;
    router_room_walk_t  *w = arg;

    w->fn(str->s, str->refs, w->arg);
}


void
router_store_each_room(router_store_t *st,
    void (*fn)(const char *room, uint32_t count, void *arg), void *arg)
{
    router_room_walk_t  w;

    w.fn = fn;
    w.arg = arg;

    goim_hash_each(&st->rooms, router_room_visit, &w);
}


void
router_store_clear(router_store_t *st)
{
    goim_queue_t  *q;

    while (!goim_queue_empty(&st->expiry)) {
        q = goim_queue_head(&st->expiry);
        router_store_remove(st, goim_queue_data(q, router_session_t, queue));
    }
}


void
router_store_free(router_store_t *st)
{
    router_store_clear(st);

    goim_hash_free(&st->keys);
    goim_hash_free(&st->mids);
    goim_hash_free(&st->servers);
    goim_hash_free(&st->rooms);
}
