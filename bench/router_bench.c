/*
 * goim-router store benchmark: register + look-up throughput on one core
 * and memory per session, at 1,000,000 sessions (bench/README.md).
 *
 *   make bench && build/bench/router_bench [sessions]
 *
 * Sessions look like goim's: a 36-character UUID key, one mid each (every
 * tenth mid has a second device), 100 comets, 10,000 rooms.  Phases:
 *
 *   put      register every session (SessionPut)
 *   lookup   every session by mid (SessionsByMids) and by key
 *   mixed    register + look-up pairs on a full store: a renewal (put of
 *            a known key, which may move its room) then a look-up by mid
 *   rpc      the same pairs with the protobuf requests unpacked and the
 *            replies packed, as the RPC server does (no network)
 *   comet-del  one comet of 100 going: its sessions dropped (a walk over
 *            every session)
 *   expire   every session expiring at once
 *
 * Memory: the store's own accounting (sessions, interned strings, hash
 * tables) and the process's resident size growth, both per session.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "goim.pb-c.h"
#include "session.h"


static double
now_s(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static size_t
rss_bytes(void)
{
    long   pages, resident;
    FILE  *f;

    f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return 0;
    }

    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) {
        resident = 0;
    }

    fclose(f);

    return (size_t) resident * (size_t) sysconf(_SC_PAGESIZE);
}


static void
make_key(char *buf, size_t i)
{
    /* a UUID-shaped, unique key */
    snprintf(buf, 37, "%08x-%04x-4%03x-8%03x-%012llx",
             (unsigned) (i * 2654435761u & 0xffffffff),
             (unsigned) (i & 0xffff), (unsigned) ((i >> 4) & 0xfff),
             (unsigned) ((i >> 8) & 0xfff),
             (unsigned long long) (i & 0xffffffffffffull));
}


static int64_t
mid_of(size_t i)
{
    /* every tenth mid has a second device */
    return (int64_t) (i % 10 == 9 ? i - 1 : i) + 1;
}


static void
report(const char *phase, size_t ops, double secs)
{
    printf("%-8s %10zu ops in %7.3f s: %12.0f ops/s\n", phase, ops, secs,
           (double) ops / secs);
}


int
main(int argc, char **argv)
{
    int                 replaced;
    char                (*keys)[37], comets[100][16], (*rooms)[24];
    size_t              n, i, found, rss0, rss1, mem;
    double              t;
    uint64_t            ms;
    router_store_t      st;
    router_session_t   *s;

    n = argc > 1 ? (size_t) strtoull(argv[1], NULL, 10) : 1000000;

    keys = malloc(n * sizeof(*keys));
    rooms = malloc(10000 * sizeof(*rooms));
    if (keys == NULL || rooms == NULL) {
        return 1;
    }

    for (i = 0; i < n; i++) {
        make_key(keys[i], i);
    }

    for (i = 0; i < 100; i++) {
        snprintf(comets[i], sizeof(comets[i]), "comet-%02zu", i);
    }

    for (i = 0; i < 10000; i++) {
        snprintf(rooms[i], sizeof(rooms[i]), "live://%zu", i);
    }

    rss0 = rss_bytes();

    if (router_store_init(&st, 0, 1800 * 1000) != 0) {
        return 1;
    }

    printf("goim-router store, %zu sessions, one core\n\n", n);

    /* put */

    t = now_s();

    for (i = 0; i < n; i++) {
        if (router_store_put(&st, mid_of(i), keys[i], comets[i % 100],
                             rooms[i % 10000], 0, &replaced)
            == NULL)
        {
            return 1;
        }
    }

    report("put", n, now_s() - t);

    rss1 = rss_bytes();
    mem = router_store_memory(&st);

    /* lookup */

    t = now_s();
    found = 0;

    for (i = 0; i < n; i++) {
        for (s = router_store_by_mid(&st, mid_of(i), NULL); s;
             s = router_store_by_mid(&st, mid_of(i), s))
        {
            found++;
        }

        found += router_store_get(&st, keys[(i * 7919) % n]) != NULL;
    }

    report("lookup", 2 * n, now_s() - t);

    if (found < n) {
        fprintf(stderr, "lookups found %zu of %zu\n", found, n);
        return 1;
    }

    /* mixed: register (renewal, every eighth one moving room) + look-up */

    t = now_s();
    ms = 1000;

    for (i = 0; i < n; i++) {
        size_t  k = (i * 104729) % n;

        if (router_store_put(&st, mid_of(k), keys[k], comets[k % 100],
                             rooms[(k + (i % 8 == 0)) % 10000], ms,
                             &replaced)
            == NULL)
        {
            return 1;
        }

        for (s = router_store_by_mid(&st, mid_of((i * 31) % n), NULL); s;
             s = router_store_by_mid(&st, mid_of((i * 31) % n), s))
        {
            found++;
        }
    }

    report("mixed", 2 * n, now_s() - t);

    /* rpc: the same with the protobuf codec the RPC server runs */

    {
        uint8_t                 buf[256], *out;
        size_t                  len, cap;
        int64_t                 mid;
        Goim__Session           sess = GOIM__SESSION__INIT, one, *ptr;
        Goim__SessionPutReq     put = GOIM__SESSION_PUT_REQ__INIT, *pr;
        Goim__SessionsByMidsReq by = GOIM__SESSIONS_BY_MIDS_REQ__INIT, *br;
        Goim__SessionsReply     reply = GOIM__SESSIONS_REPLY__INIT;

        cap = 4096;
        out = malloc(cap);
        if (out == NULL) {
            return 1;
        }

        put.session = &sess;
        t = now_s();

        for (i = 0; i < n; i++) {
            size_t  k = (i * 15485863) % n;

            sess.mid = mid_of(k);
            sess.key = keys[k];
            sess.server = comets[k % 100];
            sess.room = rooms[k % 10000];

            len = goim__session_put_req__pack(&put, buf);
            pr = goim__session_put_req__unpack(NULL, len, buf);
            if (pr == NULL
                || router_store_put(&st, pr->session->mid, pr->session->key,
                                    pr->session->server, pr->session->room,
                                    ms, &replaced)
                   == NULL)
            {
                return 1;
            }

            goim__session_put_req__free_unpacked(pr, NULL);

            mid = mid_of((i * 31) % n);
            by.n_mids = 1;
            by.mids = &mid;
            len = goim__sessions_by_mids_req__pack(&by, buf);
            br = goim__sessions_by_mids_req__unpack(NULL, len, buf);
            if (br == NULL) {
                return 1;
            }

            reply.n_sessions = 0;
            reply.sessions = &ptr;

            for (s = router_store_by_mid(&st, br->mids[0], NULL); s;
                 s = router_store_by_mid(&st, br->mids[0], s))
            {
                goim__session__init(&one);
                one.mid = s->mid;
                one.key = s->key;
                one.server = (char *) router_session_server(s);
                one.room = (char *) router_session_room(s);
                ptr = &one;
                reply.n_sessions = 1;
                (void) goim__sessions_reply__pack(&reply, out);
            }

            goim__sessions_by_mids_req__free_unpacked(br, NULL);
        }

        report("rpc", 2 * n, now_s() - t);
        free(out);
    }

    /* a comet goes: its sessions are found by walking them all */

    t = now_s();
    found = router_store_del_server(&st, "comet-42");
    printf("%-8s %10zu sessions of one comet dropped in %.3f s "
           "(a walk over all %zu)\n", "comet-del", found, now_s() - t,
           router_store_count(&st) + found);

    /* expire: everything is due */

    t = now_s();
    found = router_store_expire(&st, 3600 * 1000, n);
    report("expire", found, now_s() - t);

    printf("\nmemory at %zu sessions:\n", n);
    printf("  store accounting   %8.1f bytes/session (%zu bytes)\n",
           (double) mem / (double) n, mem);
    printf("  resident growth    %8.1f bytes/session (%zu bytes, with "
           "malloc overhead)\n", (double) (rss1 - rss0) / (double) n,
           rss1 - rss0);

    router_store_free(&st);
    free(keys);
    free(rooms);

    return 0;
}
