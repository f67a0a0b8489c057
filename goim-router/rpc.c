/*
 * The methods goim-router serves: sessions (put, del, renew, look-ups by
 * mids and by keys), the comet registry (renew, list, del), totals and
 * stats.  Each handler checks its request, works on the store or the
 * registry, and replies at once.
 */

#include <stdlib.h>
#include <string.h>

#include "goim_args.h"
#include "goim_uv_log.h"
#include "router.h"


#define ROUTER_REQ(r, type)  ((type *) (r)->msg)


static int
router_bad_request(goim_rpc_req_t *r, const char *why)
{
    goim_log_warn("%s: bad %s request: %s", goim_rpc_req_peer(r),
                  goim_rpc_method(r->method)->name, why);
    goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_BAD_REQUEST, why);

    return -1;
}


static void
router_no_memory(goim_rpc_req_t *r)
{
    goim_log_error("%s: out of memory", goim_rpc_method(r->method)->name);
    goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                         "out of memory");
}


static int
router_session_valid(goim_rpc_req_t *r, const Goim__Session *s)
{
    if (s == NULL) {
        return router_bad_request(r, "no session");
    }

    if (s->key[0] == '\0') {
        return router_bad_request(r, "empty key");
    }

    if (s->server[0] == '\0') {
        return router_bad_request(r, "empty server");
    }

    return 0;
}


/* ---- sessions ----------------------------------------------------------- */

static void
router_session_put(goim_rpc_req_t *r)
{
    int                    replaced;
    Goim__Session         *s;
    Goim__SessionPutReply  reply = GOIM__SESSION_PUT_REPLY__INIT;

    s = ROUTER_REQ(r, Goim__SessionPutReq)->session;

    if (router_session_valid(r, s) != 0) {
        return;
    }

    if (router_store_put(&router.store, s->mid, s->key, s->server, s->room,
                         uv_now(router.loop), &replaced)
        == NULL)
    {
        router_no_memory(r);
        return;
    }

    router.stats.puts++;
    router.stats.replaced += (unsigned) replaced;

    goim_log_debug("session put: mid %lld key %s server %s room \"%s\"%s",
                   (long long) s->mid, s->key, s->server, s->room,
                   replaced ? " (replaced)" : "");

    reply.replaced = replaced;
    goim_rpc_reply(r, &reply.base);
}


static void
router_session_del(goim_rpc_req_t *r)
{
    Goim__SessionDelReq    *req;
    Goim__SessionDelReply   reply = GOIM__SESSION_DEL_REPLY__INIT;

    req = ROUTER_REQ(r, Goim__SessionDelReq);

    reply.has = router_store_del(&router.store, req->key, req->server);

    if (reply.has) {
        router.stats.dels++;

    } else {
        router.stats.del_misses++;
    }

    goim_log_debug("session del: mid %lld key %s server %s: %s",
                   (long long) req->mid, req->key, req->server,
                   reply.has ? "removed" : "no such session there");

    goim_rpc_reply(r, &reply.base);
}


static void
router_session_renew(goim_rpc_req_t *r)
{
    int                      rc;
    Goim__Session           *s;
    Goim__SessionRenewReply  reply = GOIM__SESSION_RENEW_REPLY__INIT;

    s = ROUTER_REQ(r, Goim__SessionRenewReq)->session;

    if (router_session_valid(r, s) != 0) {
        return;
    }

    rc = router_store_renew(&router.store, s->mid, s->key, s->server,
                            s->room, uv_now(router.loop));
    if (rc < 0) {
        router_no_memory(r);
        return;
    }

    router.stats.renews++;

    if (rc == 0) {
        router.stats.renew_misses++;
        goim_log_debug("session renew: key %s had expired: added again",
                       s->key);
    }

    reply.found = rc;
    goim_rpc_reply(r, &reply.base);
}


/*
 * A SessionsReply whose sessions point into the store: valid until the
 * store changes, so it is packed and sent before the handler returns.
 */
typedef struct {
    Goim__SessionsReply   reply;
    Goim__Session        *items;
    size_t                cap;
} router_sessions_t;


static int
router_sessions_add(router_sessions_t *out, router_session_t *s)
{
    size_t          cap, i;
    Goim__Session  *items;

    if (out->reply.n_sessions == out->cap) {
        cap = out->cap ? out->cap * 2 : 16;

        items = realloc(out->items, cap * sizeof(Goim__Session));
        if (items == NULL) {
            return -1;
        }

        out->items = items;
        out->cap = cap;
    }

    i = out->reply.n_sessions++;
    goim__session__init(&out->items[i]);
    out->items[i].mid = s->mid;
    out->items[i].key = s->key;
    out->items[i].server = (char *) router_session_server(s);
    out->items[i].room = (char *) router_session_room(s);

    return 0;
}


static void
router_sessions_reply(goim_rpc_req_t *r, router_sessions_t *out, int rc)
{
    size_t           i;
    Goim__Session  **ptrs;

    router.stats.lookups++;
    ptrs = NULL;

    if (rc == 0 && out->reply.n_sessions) {
        ptrs = malloc(out->reply.n_sessions * sizeof(Goim__Session *));
        rc = ptrs ? 0 : -1;
    }

    if (rc != 0) {
        router_no_memory(r);

    } else {
        for (i = 0; i < out->reply.n_sessions; i++) {
            ptrs[i] = &out->items[i];
        }

        out->reply.sessions = ptrs;
        goim_rpc_reply(r, &out->reply.base);
    }

    free(ptrs);
    free(out->items);
}


/*
 * The look-up's mids (strs = 0) or keys without their repeats, the first
 * of each kept in order, as goim's map of keys has them: a copy the caller
 * frees, since the request's arrays belong to protobuf-c (which frees
 * each key it unpacked).  NULL when memory ran out.
 */
static void *
router_dedup(goim_rpc_req_t *r, const void *v, size_t *n, int strs)
{
    void    *copy;
    size_t   was, size;

    /* both element types are 8 bytes: the table after them is aligned */
    size = *n * (strs ? sizeof(char *) : sizeof(int64_t));

    copy = malloc(size + goim_args_dedup_size(*n));
    if (copy == NULL) {
        return NULL;
    }

    if (size) {
        memcpy(copy, v, size);
    }

    was = *n;
    *n = strs ? goim_args_dedup_strs(copy, NULL, *n, (char *) copy + size)
              : goim_args_dedup_int64(copy, *n, (char *) copy + size);

    if (*n != was) {
        router.stats.lookup_repeats += was - *n;
        goim_log_debug("%s: %zu repeated %s ignored", goim_rpc_req_peer(r),
                       was - *n, strs ? "keys" : "mids");
    }

    return copy;
}


static void
router_sessions_by_mids(goim_rpc_req_t *r)
{
    int                       rc;
    size_t                    i, n;
    int64_t                  *mids;
    router_session_t         *s;
    router_sessions_t         out;
    Goim__SessionsByMidsReq  *req;

    req = ROUTER_REQ(r, Goim__SessionsByMidsReq);

    memset(&out, 0, sizeof(out));
    goim__sessions_reply__init(&out.reply);

    /* each mid once: a repeated one would list its sessions again, and
     * every copy would be delivered */
    n = req->n_mids;
    mids = router_dedup(r, req->mids, &n, 0);
    rc = mids ? 0 : -1;

    for (i = 0; i < n && rc == 0; i++) {
        for (s = router_store_by_mid(&router.store, mids[i], NULL);
             s && rc == 0;
             s = router_store_by_mid(&router.store, mids[i], s))
        {
            rc = router_sessions_add(&out, s);
        }
    }

    free(mids);
    router_sessions_reply(r, &out, rc);
}


static void
router_sessions_by_keys(goim_rpc_req_t *r)
{
    int                       rc;
    char                    **keys;
    size_t                    i, n;
    router_session_t         *s;
    router_sessions_t         out;
    Goim__SessionsByKeysReq  *req;

    req = ROUTER_REQ(r, Goim__SessionsByKeysReq);

    memset(&out, 0, sizeof(out));
    goim__sessions_reply__init(&out.reply);

    n = req->n_keys;
    keys = router_dedup(r, req->keys, &n, 1);
    rc = keys ? 0 : -1;

    for (i = 0; i < n && rc == 0; i++) {
        s = router_store_get(&router.store, keys[i]);

        if (s) {
            rc = router_sessions_add(&out, s);
        }
    }

    free(keys);
    router_sessions_reply(r, &out, rc);
}


/* ---- comets ------------------------------------------------------------- */

typedef struct {
    Goim__CometRenewReply__AllRoomCountEntry   *entries;
    Goim__CometRenewReply__AllRoomCountEntry  **ptrs;
    size_t                                      n;
} router_all_rooms_t;


static void
router_all_rooms_add(const char *room, uint32_t count, void *arg)
{
    router_all_rooms_t                        *a = arg;
    Goim__CometRenewReply__AllRoomCountEntry  *e;

    e = &a->entries[a->n];
    goim__comet_renew_reply__all_room_count_entry__init(e);
    e->key = (char *) room;
    e->value = count > INT32_MAX ? INT32_MAX : (int32_t) count;
    a->ptrs[a->n++] = e;
}


static void
router_comet_renew(goim_rpc_req_t *r)
{
    int                    rc;
    size_t                 rooms;
    Goim__CometRenewReq   *req;
    router_all_rooms_t     all;
    Goim__CometRenewReply  reply = GOIM__COMET_RENEW_REPLY__INIT;

    req = ROUTER_REQ(r, Goim__CometRenewReq);

    if (req->comet == NULL || req->comet->id[0] == '\0') {
        router_bad_request(r, "no comet id");
        return;
    }

    /* the registry keeps the request itself */

    r->msg = NULL;

    rc = router_comets_renew(&router.comets, req, uv_now(router.loop),
                             goim_daemon_wall_ms());
    if (rc == ROUTER_COMET_TAKEOVER) {
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAUTHORIZED,
                             "this comet id is live with another push "
                             "address");
        return;
    }

    if (rc < 0) {
        router_no_memory(r);
        return;
    }

    router.stats.comet_renews++;

    /* the sessions held here per room: exact, and logic sums the routers */

    rooms = router_store_room_total(&router.store);
    memset(&all, 0, sizeof(all));

    if (rooms) {
        all.entries = malloc(rooms * (sizeof(*all.entries)
                                      + sizeof(*all.ptrs)));
        if (all.entries == NULL) {
            router_no_memory(r);
            return;
        }

        all.ptrs = (Goim__CometRenewReply__AllRoomCountEntry **)
                   (all.entries + rooms);
        router_store_each_room(&router.store, router_all_rooms_add, &all);
    }

    reply.n_all_room_count = all.n;
    reply.all_room_count = all.ptrs;

    goim_rpc_reply(r, &reply.base);
    free(all.entries);
}


static void
router_comet_list(goim_rpc_req_t *r)
{
    size_t                i;
    goim_queue_t         *q;
    router_comet_t       *cm;
    Goim__CometInfo     **infos;
    Goim__CometListReply  reply = GOIM__COMET_LIST_REPLY__INIT;

    infos = NULL;

    if (router.comets.count) {
        infos = malloc(router.comets.count * sizeof(Goim__CometInfo *));
        if (infos == NULL) {
            router_no_memory(r);
            return;
        }
    }

    i = 0;

    for (q = goim_queue_head(&router.comets.list);
         q != &router.comets.list;
         q = q->next)
    {
        cm = goim_queue_data(q, router_comet_t, queue);
        cm->renew->comet->session_count =
            router_store_server_count(&router.store, cm->renew->comet->id);
        infos[i++] = cm->renew->comet;
    }

    reply.n_comets = i;
    reply.comets = infos;

    goim_rpc_reply(r, &reply.base);
    free(infos);
}


static void
router_comet_del(goim_rpc_req_t *r)
{
    Goim__CometDelReply  reply = GOIM__COMET_DEL_REPLY__INIT;

    reply.has = router_comets_del(&router.comets,
                                  ROUTER_REQ(r, Goim__CometDelReq)->id);
    router.stats.comet_dels += (unsigned) reply.has;
    router_comets_sweep();

    goim_rpc_reply(r, &reply.base);
}


/* ---- presence ------------------------------------------------------------ */

typedef struct {
    Goim__RoomCount   *items;
    size_t             n;
    const char        *prefix;
    size_t             prefix_len;
} router_top_t;


static void
router_top_add(const char *room, uint32_t count, void *arg)
{
    router_top_t     *t = arg;
    Goim__RoomCount  *rc;

    if (strncmp(room, t->prefix, t->prefix_len) != 0) {
        return;
    }

    rc = &t->items[t->n++];
    goim__room_count__init(rc);
    rc->room_id = (char *) room;
    rc->count = count > INT32_MAX ? INT32_MAX : (int32_t) count;
}


static int
router_top_cmp(const void *a, const void *b)
{
    const Goim__RoomCount  *x = a, *y = b;

    if (x->count != y->count) {
        return x->count > y->count ? -1 : 1;
    }

    return strcmp(x->room_id, y->room_id);
}


static void
router_online_top(goim_rpc_req_t *r)
{
    size_t                 i, rooms;
    router_top_t           top;
    Goim__OnlineTopReq    *req;
    Goim__RoomCount      **ptrs;
    Goim__OnlineTopReply   reply = GOIM__ONLINE_TOP_REPLY__INIT;

    req = ROUTER_REQ(r, Goim__OnlineTopReq);

    if (req->limit < 0) {
        router_bad_request(r, "negative limit");
        return;
    }

    rooms = router_store_room_total(&router.store);
    memset(&top, 0, sizeof(top));
    ptrs = NULL;

    if (rooms) {
        top.items = malloc(rooms * (sizeof(Goim__RoomCount)
                                    + sizeof(Goim__RoomCount *)));
        if (top.items == NULL) {
            router_no_memory(r);
            return;
        }

        ptrs = (Goim__RoomCount **) (top.items + rooms);
        top.prefix = req->type;
        top.prefix_len = strlen(req->type);

        router_store_each_room(&router.store, router_top_add, &top);
        qsort(top.items, top.n, sizeof(Goim__RoomCount), router_top_cmp);
    }

    if (req->limit && top.n > (size_t) req->limit) {
        top.n = (size_t) req->limit;
    }

    for (i = 0; i < top.n; i++) {
        ptrs[i] = &top.items[i];
    }

    router.stats.online_queries++;
    reply.n_rooms = top.n;
    reply.rooms = ptrs;

    goim_rpc_reply(r, &reply.base);
    free(top.items);
}


static void
router_online_room(goim_rpc_req_t *r)
{
    size_t                               i;
    Goim__OnlineRoomReq                 *req;
    Goim__OnlineRoomReply__RoomCountEntry  *entries, **ptrs;
    Goim__OnlineRoomReply                reply = GOIM__ONLINE_ROOM_REPLY__INIT;

    req = ROUTER_REQ(r, Goim__OnlineRoomReq);
    entries = NULL;
    ptrs = NULL;

    if (req->n_rooms) {
        entries = malloc(req->n_rooms * (sizeof(*entries) + sizeof(*ptrs)));
        if (entries == NULL) {
            router_no_memory(r);
            return;
        }

        ptrs = (Goim__OnlineRoomReply__RoomCountEntry **)
               (entries + req->n_rooms);
    }

    for (i = 0; i < req->n_rooms; i++) {
        uint32_t  n;

        n = router_store_room_count(&router.store, req->rooms[i]);

        goim__online_room_reply__room_count_entry__init(&entries[i]);
        entries[i].key = req->rooms[i];
        entries[i].value = n > INT32_MAX ? INT32_MAX : (int32_t) n;
        ptrs[i] = &entries[i];
    }

    router.stats.online_queries++;
    reply.n_room_count = req->n_rooms;
    reply.room_count = ptrs;

    goim_rpc_reply(r, &reply.base);
    free(entries);
}


/* ---- totals and stats --------------------------------------------------- */

static void
router_online_total(goim_rpc_req_t *r)
{
    goim_queue_t           *q;
    router_comet_t         *cm;
    Goim__OnlineTotalReply  reply = GOIM__ONLINE_TOTAL_REPLY__INIT;

    for (q = goim_queue_head(&router.comets.list);
         q != &router.comets.list;
         q = q->next)
    {
        cm = goim_queue_data(q, router_comet_t, queue);
        reply.conn_count += cm->renew->comet->conn_count;
        reply.ip_count += cm->renew->comet->ip_count;
    }

    reply.session_count = (int64_t) router_store_count(&router.store);
    router.stats.online_queries++;

    goim_rpc_reply(r, &reply.base);
}


static void
router_stats(goim_rpc_req_t *r)
{
    int64_t  values[19];

    static const char *const  names[] = {
        "sessions", "session_bytes", "comets", "session_puts",
        "session_replaced", "session_dels", "session_del_misses",
        "session_renews", "session_renew_misses", "session_lookups",
        "sessions_expired", "comet_renews", "comet_dels", "comets_expired",
        "comet_sessions_dropped", "rooms", "online_queries",
        "comet_takeovers_refused", "session_lookup_repeats"
    };

    values[0] = (int64_t) router_store_count(&router.store);
    values[1] = (int64_t) router_store_memory(&router.store);
    values[2] = (int64_t) router.comets.count;
    values[3] = (int64_t) router.stats.puts;
    values[4] = (int64_t) router.stats.replaced;
    values[5] = (int64_t) router.stats.dels;
    values[6] = (int64_t) router.stats.del_misses;
    values[7] = (int64_t) router.stats.renews;
    values[8] = (int64_t) router.stats.renew_misses;
    values[9] = (int64_t) router.stats.lookups;
    values[10] = (int64_t) router.store.expired;
    values[11] = (int64_t) router.stats.comet_renews;
    values[12] = (int64_t) router.stats.comet_dels;
    values[13] = (int64_t) router.comets.expired;
    values[14] = (int64_t) router.stats.comet_sessions_dropped;
    values[15] = (int64_t) router_store_room_total(&router.store);
    values[16] = (int64_t) router.stats.online_queries;
    values[17] = (int64_t) router.comets.takeovers;
    values[18] = (int64_t) router.stats.lookup_repeats;

    goim_daemon_stats_reply(r, names, values, 19);
}


const goim_rpc_handler_t  router_handlers[] = {
    { GOIM__METHOD__ROUTER_SESSION_PUT, router_session_put },
    { GOIM__METHOD__ROUTER_SESSION_DEL, router_session_del },
    { GOIM__METHOD__ROUTER_SESSION_RENEW, router_session_renew },
    { GOIM__METHOD__ROUTER_SESSIONS_BY_MIDS, router_sessions_by_mids },
    { GOIM__METHOD__ROUTER_SESSIONS_BY_KEYS, router_sessions_by_keys },
    { GOIM__METHOD__ROUTER_COMET_RENEW, router_comet_renew },
    { GOIM__METHOD__ROUTER_COMET_LIST, router_comet_list },
    { GOIM__METHOD__ROUTER_COMET_DEL, router_comet_del },
    { GOIM__METHOD__ROUTER_ONLINE_TOP, router_online_top },
    { GOIM__METHOD__ROUTER_ONLINE_ROOM, router_online_room },
    { GOIM__METHOD__ROUTER_ONLINE_TOTAL, router_online_total },
    { GOIM__METHOD__ROUTER_STATS, router_stats },
    { 0, NULL }
};
