/*
 * Unit tests of goim-router's session store (session.c): put, del with a
 * server mismatch, renew, look-ups by mid across devices, expiry, and the
 * interned strings coming and going with their sessions.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "session.h"


#define S  1000                         /* ms */


static int
setup(void **state)
{
    static router_store_t  st;

    assert_int_equal(router_store_init(&st, 0, 10 * S), 0);
    *state = &st;

    return 0;
}


static int
teardown(void **state)
{
    router_store_t  *st = *state;

    router_store_free(st);
    return 0;
}


static size_t
count_mid(router_store_t *st, int64_t mid)
{
    size_t             n;
    router_session_t  *s;

    n = 0;

    for (s = router_store_by_mid(st, mid, NULL); s;
         s = router_store_by_mid(st, mid, s))
    {
        assert_int_equal(s->mid, mid);
        n++;
    }

    return n;
}


static void
test_put_get(void **state)
{
    int                replaced;
    router_store_t    *st = *state;
    router_session_t  *s;

    s = router_store_put(st, 42, "k1", "comet-a", "live://1", 0, &replaced);
    assert_non_null(s);
    assert_int_equal(replaced, 0);

    s = router_store_get(st, "k1");
    assert_non_null(s);
    assert_int_equal(s->mid, 42);
    assert_string_equal(s->key, "k1");
    assert_string_equal(router_session_server(s), "comet-a");
    assert_string_equal(router_session_room(s), "live://1");
    assert_int_equal(router_store_count(st), 1);

    /* the same key again: updated in place */
    s = router_store_put(st, 42, "k1", "comet-b", "", S, &replaced);
    assert_non_null(s);
    assert_int_equal(replaced, 1);
    assert_string_equal(router_session_server(s), "comet-b");
    assert_string_equal(router_session_room(s), "");
    assert_int_equal(router_store_count(st), 1);

    assert_null(router_store_get(st, "k2"));
    assert_null(router_store_get(st, ""));
}


static void
test_mid_zero_not_indexed(void **state)
{
    int              replaced;
    router_store_t  *st = *state;

    assert_non_null(router_store_put(st, 0, "anon", "c", NULL, 0,
                                     &replaced));
    assert_non_null(router_store_get(st, "anon"));
    assert_int_equal(count_mid(st, 0), 0);
    assert_int_equal(st->mids.count, 0);
}


static void
test_mid_change_reindexes(void **state)
{
    int              replaced;
    router_store_t  *st = *state;

    router_store_put(st, 1, "k", "c", NULL, 0, &replaced);
    assert_int_equal(count_mid(st, 1), 1);

    router_store_put(st, 2, "k", "c", NULL, 0, &replaced);
    assert_int_equal(replaced, 1);
    assert_int_equal(count_mid(st, 1), 0);
    assert_int_equal(count_mid(st, 2), 1);

    router_store_put(st, 0, "k", "c", NULL, 0, &replaced);
    assert_int_equal(count_mid(st, 2), 0);
    assert_int_equal(st->mids.count, 0);
}


static void
test_del_server_mismatch(void **state)
{
    int              replaced;
    router_store_t  *st = *state;

    router_store_put(st, 7, "k", "comet-new", NULL, 0, &replaced);

    /* a late disconnect from the comet the key was on before */
    assert_int_equal(router_store_del(st, "k", "comet-old"), 0);
    assert_non_null(router_store_get(st, "k"));
    assert_int_equal(count_mid(st, 7), 1);

    assert_int_equal(router_store_del(st, "missing", "comet-new"), 0);

    assert_int_equal(router_store_del(st, "k", "comet-new"), 1);
    assert_null(router_store_get(st, "k"));
    assert_int_equal(count_mid(st, 7), 0);
    assert_int_equal(router_store_count(st), 0);

    assert_int_equal(router_store_del(st, "k", "comet-new"), 0);
}


static void
test_renew(void **state)
{
    router_store_t    *st = *state;
    router_session_t  *s;

    /* missing: added again, found = 0 */
    assert_int_equal(router_store_renew(st, 5, "k", "c", "r", 0), 0);
    s = router_store_get(st, "k");
    assert_non_null(s);
    assert_int_equal(s->mid, 5);
    assert_string_equal(router_session_room(s), "r");

    /* present: found = 1, ttl pushed back */
    assert_int_equal(router_store_renew(st, 5, "k", "c", "r", 8 * S), 1);

    assert_int_equal(router_store_expire(st, 12 * S, 100), 0);
    assert_non_null(router_store_get(st, "k"));

    assert_int_equal(router_store_expire(st, 18 * S, 100), 1);
    assert_null(router_store_get(st, "k"));
    assert_int_equal(st->expired, 1);

    /* expired: found = 0 again */
    assert_int_equal(router_store_renew(st, 5, "k", "c", "r", 20 * S), 0);
    assert_int_equal(router_store_count(st), 1);
}


static void
test_by_mids_multi_device(void **state)
{
    int                replaced, seen;
    router_store_t    *st = *state;
    router_session_t  *s;
    char               key[32];
    int64_t            mid;

    /* mid 1: web, phone, tablet on two comets; mid 2: one; others: noise */
    router_store_put(st, 1, "web", "comet-a", NULL, 0, &replaced);
    router_store_put(st, 1, "phone", "comet-b", NULL, 0, &replaced);
    router_store_put(st, 1, "tablet", "comet-a", "room", 0, &replaced);
    router_store_put(st, 2, "other", "comet-a", NULL, 0, &replaced);

    for (mid = 100; mid < 600; mid++) {
        snprintf(key, sizeof(key), "noise-%lld", (long long) mid);
        router_store_put(st, mid, key, "comet-c", NULL, 0, &replaced);
    }

    assert_int_equal(count_mid(st, 1), 3);
    assert_int_equal(count_mid(st, 2), 1);
    assert_int_equal(count_mid(st, 3), 0);

    seen = 0;

    for (s = router_store_by_mid(st, 1, NULL); s;
         s = router_store_by_mid(st, 1, s))
    {
        if (strcmp(s->key, "web") == 0) {
            seen |= 1;
            assert_string_equal(router_session_server(s), "comet-a");

        } else if (strcmp(s->key, "phone") == 0) {
            seen |= 2;
            assert_string_equal(router_session_server(s), "comet-b");

        } else if (strcmp(s->key, "tablet") == 0) {
            seen |= 4;
        }
    }

    assert_int_equal(seen, 7);

    /* one device leaves: the others stay */
    assert_int_equal(router_store_del(st, "phone", "comet-b"), 1);
    assert_int_equal(count_mid(st, 1), 2);
}


static void
test_expiry_order_and_cost(void **state)
{
    int              replaced;
    size_t           i;
    router_store_t  *st = *state;
    char             key[32];

    /* 1000 sessions at t=0, 1000 at t=5 s; ttl 10 s */
    for (i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        assert_non_null(router_store_put(st, (int64_t) i % 700, key, "c",
                                         NULL, i < 1000 ? 0 : 5 * S,
                                         &replaced));
    }

    assert_int_equal(router_store_count(st), 2000);

    /* nothing before its time, not even 1 ms early */
    assert_int_equal(router_store_expire(st, 10 * S - 1, 5000), 0);

    /* the first 1000, in batches */
    assert_int_equal(router_store_expire(st, 10 * S, 300), 300);
    assert_int_equal(router_store_expire(st, 10 * S, 5000), 700);
    assert_null(router_store_get(st, "k0"));
    assert_non_null(router_store_get(st, "k1000"));

    /* a renewal moves a session to the back */
    assert_int_equal(router_store_renew(st, 0, "k1000", "c", NULL, 12 * S),
                     1);

    assert_int_equal(router_store_expire(st, 15 * S, 5000), 999);
    assert_non_null(router_store_get(st, "k1000"));
    assert_int_equal(router_store_expire(st, 22 * S, 5000), 1);
    assert_int_equal(router_store_count(st), 0);
    assert_int_equal(st->expired, 2000);
    assert_int_equal(st->mids.count, 0);
}


static void
test_ttl_change(void **state)
{
    int              replaced;
    router_store_t  *st = *state;

    router_store_set_ttl(st, 2 * S);
    router_store_put(st, 1, "k", "c", NULL, 0, &replaced);

    assert_int_equal(router_store_expire(st, 2 * S - 1, 10), 0);
    assert_int_equal(router_store_expire(st, 2 * S, 10), 1);
}


static void
test_strings_interned_and_freed(void **state)
{
    int              replaced;
    size_t           i;
    router_store_t  *st = *state;
    char             key[32];

    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        router_store_put(st, (int64_t) i, key, i % 2 ? "comet-a" : "comet-b",
                         i % 10 ? "room-x" : "room-y", 0, &replaced);
    }

    assert_int_equal(st->servers.count, 2);
    assert_int_equal(st->rooms.count, 2);

    /* moving every session off room-y drops that string */
    for (i = 0; i < 100; i += 10) {
        snprintf(key, sizeof(key), "k%zu", i);
        router_store_put(st, (int64_t) i, key, "comet-b", "room-x", 0,
                         &replaced);
    }

    assert_int_equal(st->rooms.count, 1);

    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        assert_int_equal(router_store_del(st, key, i % 2 ? "comet-a"
                                                         : "comet-b"), 1);
    }

    assert_int_equal(st->servers.count, 0);
    assert_int_equal(st->rooms.count, 0);
    assert_int_equal(st->bytes, 0);
}


static void
test_compact(void **state)
{
    int              replaced;
    size_t           i, n;
    router_store_t  *st = *state;
    char             key[64];

    /* goim keys are UUIDs: 36 characters */
    n = 100000;

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%08zx-0000-4000-8000-%012zx", i, i * 7);
        assert_non_null(router_store_put(st, (int64_t) (i / 2 + 1), key,
                                         "comet-a", "live://1000", 0,
                                         &replaced));
    }

    print_message("# %zu bytes per session (allocated sizes, no malloc "
                  "overhead)\n", router_store_memory(st) / n);

    assert_true(router_store_memory(st) / n <= 150);
    assert_int_equal(count_mid(st, 1), 2);
}


static void
test_presence_counts(void **state)
{
    int              replaced;
    router_store_t  *st = *state;

    assert_non_null(router_store_put(st, 1, "a", "c1", "live://1", 0,
                                     &replaced));
    assert_non_null(router_store_put(st, 2, "b", "c1", "live://1", 0,
                                     &replaced));
    assert_non_null(router_store_put(st, 3, "c", "c2", "live://2", 0,
                                     &replaced));
    assert_non_null(router_store_put(st, 4, "d", "c2", "", 0, &replaced));

    assert_int_equal(router_store_room_count(st, "live://1"), 2);
    assert_int_equal(router_store_room_count(st, "live://2"), 1);
    assert_int_equal(router_store_room_count(st, "live://3"), 0);
    assert_int_equal(router_store_room_count(st, ""), 0);
    assert_int_equal(router_store_server_count(st, "c1"), 2);
    assert_int_equal(router_store_server_count(st, "c2"), 2);
    assert_int_equal(router_store_room_total(st), 2);

    /* a renewal from another room (ChangeRoom) moves the session */
    assert_int_equal(router_store_renew(st, 2, "b", "c1", "live://2", S), 1);
    assert_int_equal(router_store_room_count(st, "live://1"), 1);
    assert_int_equal(router_store_room_count(st, "live://2"), 2);

    /* ... and from another comet, its comet count too */
    assert_int_equal(router_store_renew(st, 1, "a", "c2", "live://1", S), 1);
    assert_int_equal(router_store_server_count(st, "c1"), 1);
    assert_int_equal(router_store_server_count(st, "c2"), 3);

    /* leaving the room */
    assert_int_equal(router_store_renew(st, 1, "a", "c2", "", S), 1);
    assert_int_equal(router_store_room_count(st, "live://1"), 0);
    assert_int_equal(router_store_room_total(st), 1);

    /* del and expiry keep the counts too */
    assert_int_equal(router_store_del(st, "c", "c2"), 1);
    assert_int_equal(router_store_room_count(st, "live://2"), 1);
    assert_int_equal(router_store_server_count(st, "c2"), 2);

    assert_int_equal(router_store_expire(st, 20 * S, 100), 3);
    assert_int_equal(router_store_room_total(st), 0);
    assert_int_equal(router_store_server_count(st, "c1"), 0);
    assert_int_equal(router_store_server_count(st, "c2"), 0);
}


static void
collect_room(const char *room, uint32_t count, void *arg)
{
    uint32_t  *sum = arg;

    assert_true(room[0] != '\0');
    *sum += count;
}


static void
test_del_server(void **state)
{
    int              i, replaced;
    char             key[32];
    uint32_t         sum;
    router_store_t  *st = *state;

    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_non_null(router_store_put(st, i % 10 + 1, key,
                                         i % 3 ? "keep" : "gone",
                                         i % 2 ? "live://odd" : "live://even",
                                         (uint64_t) i, &replaced));
    }

    assert_int_equal(router_store_server_count(st, "gone"), 334);
    assert_int_equal(router_store_del_server(st, "gone"), 334);
    assert_int_equal(router_store_del_server(st, "gone"), 0);
    assert_int_equal(router_store_del_server(st, "never"), 0);

    assert_int_equal(router_store_count(st), 666);
    assert_int_equal(router_store_server_count(st, "gone"), 0);
    assert_int_equal(router_store_server_count(st, "keep"), 666);
    assert_null(router_store_get(st, "k0"));
    assert_non_null(router_store_get(st, "k1"));

    /* every room count corrected: i % 3 != 0, split by parity */
    assert_int_equal(router_store_room_count(st, "live://odd"), 333);
    assert_int_equal(router_store_room_count(st, "live://even"), 333);

    sum = 0;
    router_store_each_room(st, collect_room, &sum);
    assert_int_equal(sum, 666);

    /* and the mid index: mid 1 had keys 0, 10, ... 990; 0, 30, ... gone */
    assert_int_equal(count_mid(st, 1), 66);
}


static void
test_sweep_several_comets(void **state)
{
    int              i, replaced;
    char             key[32], comet[16];
    router_store_t  *st = *state;

    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(comet, sizeof(comet), "c%d", i % 4);
        assert_non_null(router_store_put(st, i + 1, key, comet, "live://1",
                                         0, &replaced));
    }

    /* two comets leave together: one walk drops both */
    assert_int_equal(router_store_mark_server(st, "c1"), 25);
    assert_int_equal(router_store_mark_server(st, "c3"), 25);
    assert_int_equal(router_store_mark_server(st, "c3"), 0);
    assert_int_equal(router_store_mark_server(st, "none"), 0);
    assert_int_equal(router_store_sweep(st), 50);
    assert_int_equal(router_store_sweep(st), 0);

    assert_int_equal(router_store_count(st), 50);
    assert_int_equal(router_store_server_count(st, "c0"), 25);
    assert_int_equal(router_store_server_count(st, "c1"), 0);
    assert_int_equal(router_store_server_count(st, "c2"), 25);
    assert_int_equal(router_store_server_count(st, "c3"), 0);
    assert_int_equal(router_store_room_count(st, "live://1"), 50);

    /* a comet that comes back starts unmarked */
    assert_non_null(router_store_put(st, 1, "again", "c1", "", 0, &replaced));
    assert_int_equal(router_store_del_server(st, "c0"), 25);
    assert_int_equal(router_store_server_count(st, "c1"), 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mid_zero_not_indexed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mid_change_reindexes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_del_server_mismatch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_by_mids_multi_device, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expiry_order_and_cost, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ttl_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_interned_and_freed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_presence_counts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_del_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_several_comets, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("router session store", tests, NULL,
                                       NULL);
}
