/*
 * Unit tests of goim-job's offset tracking (offsets.c): the commit point
 * of a partition moves only past records that are done along with every
 * record before them; abandoned records hold it; revoked partitions
 * forget their records without losing the ones still running; a hold
 * keeps the commit point at a record once it is done, and records read
 * again go in their places behind it (the ensure replay of kafka.c).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "offsets.h"


static void
test_in_order(void **state)
{
    int          i;
    job_off_t   *o[3];
    job_part_t   p;

    (void) state;

    job_part_init(&p, 0);
    assert_int_equal(p.next, -1);

    for (i = 0; i < 3; i++) {
        o[i] = job_off_add(&p, 10 + i);
        assert_non_null(o[i]);
    }

    assert_int_equal(job_off_done(o[0]), 1);
    assert_int_equal(p.next, 11);
    assert_true(p.dirty);

    assert_int_equal(job_off_done(o[1]), 1);
    assert_int_equal(job_off_done(o[2]), 1);
    assert_int_equal(p.next, 13);
    assert_int_equal(p.count, 0);
}


static void
test_out_of_order(void **state)
{
    job_off_t   *a, *b, *c, *d;
    job_part_t   p;

    (void) state;

    job_part_init(&p, 3);

    a = job_off_add(&p, 100);
    b = job_off_add(&p, 101);
    c = job_off_add(&p, 105);           /* offsets may have gaps */
    d = job_off_add(&p, 106);

    /* later records finishing first never move the commit point */
    assert_int_equal(job_off_done(c), 0);
    assert_int_equal(job_off_done(b), 0);
    assert_int_equal(p.next, -1);
    assert_false(p.dirty);

    /* the first one finishing carries it past every finished one */
    assert_int_equal(job_off_done(a), 1);
    assert_int_equal(p.next, 106);
    assert_int_equal(p.count, 1);

    assert_int_equal(job_off_done(d), 1);
    assert_int_equal(p.next, 107);
}


static void
test_abandoned_holds(void **state)
{
    job_off_t   *a, *b, *c;
    job_part_t   p;

    (void) state;

    job_part_init(&p, 1);

    a = job_off_add(&p, 1);
    b = job_off_add(&p, 2);
    c = job_off_add(&p, 3);

    assert_int_equal(job_off_done(a), 1);
    assert_int_equal(p.next, 2);

    /* job stops before b is delivered: b and everything after stay
     * uncommitted, so the next job takes them again */
    job_off_abandon(b);
    assert_int_equal(job_off_done(c), 0);
    assert_int_equal(p.next, 2);

    job_part_detach(&p);                /* frees b and c */
    assert_int_equal(p.count, 0);
}


static void
test_detach(void **state)
{
    job_off_t   *a, *b;
    job_part_t   p;

    (void) state;

    job_part_init(&p, 2);

    a = job_off_add(&p, 50);
    b = job_off_add(&p, 51);
    assert_int_equal(job_off_done(b), 0);

    /* revoked while a runs: a's completion no longer counts */
    job_part_detach(&p);
    assert_int_equal(p.count, 0);
    assert_false(p.dirty);

    p.next = -1;
    assert_int_equal(job_off_done(a), 0);   /* frees a */
    assert_int_equal(p.next, -1);

    /* the partition comes back (reassigned) and starts afresh */
    a = job_off_add(&p, 49);
    assert_int_equal(job_off_done(a), 1);
    assert_int_equal(p.next, 50);
}


static void
test_hold_and_replay(void **state)
{
    job_off_t   *a, *b, *c, *d, *hold, *r, *r2;
    job_part_t   p;

    (void) state;

    job_part_init(&p, 1);

    a = job_off_add(&p, 10);
    b = job_off_add(&p, 11);           /* deferred: a hold at it */
    hold = job_off_hold(&p, b);
    assert_non_null(hold);
    p.hold = hold;
    c = job_off_add(&p, 12);
    d = job_off_add(&p, 13);
    assert_int_equal(p.high, 14);

    assert_int_equal(job_off_done(a), 1);
    assert_int_equal(p.next, 11);
    assert_int_equal(job_off_done(b), 0);
    assert_int_equal(job_off_done(c), 0);
    assert_int_equal(p.next, 11);      /* the hold keeps it */
    assert_int_equal(p.count, 2);      /* the finished ones are freed */

    /* the replay takes 11 and 13 again, in their places behind the hold */
    p.replay_hold = hold;
    p.hold = NULL;
    r = job_off_insert(&p, 11, hold);
    assert_non_null(r);
    r2 = job_off_insert(&p, 13, r);
    assert_non_null(r2);
    assert_int_equal(p.count, 4);

    /* the cursor's record finishes: the cursor goes back one (d, which
     * r2 went after: same offset) */
    p.cursor = r2;
    assert_int_equal(job_off_done(r2), 0);
    assert_ptr_equal(p.cursor, d);
    p.cursor = NULL;

    /* the replay is over: the commit point stops at the record taken */
    p.replay_hold = NULL;
    assert_int_equal(job_off_done(hold), 0);
    assert_int_equal(p.next, 11);
    assert_int_equal(job_off_done(r), 1);
    assert_int_equal(p.next, 13);      /* d (13) still runs */
    assert_int_equal(job_off_done(d), 1);
    assert_int_equal(p.next, 14);
    assert_int_equal(p.count, 0);
}


static void
test_detach_holds(void **state)
{
    job_off_t   *a, *hold;
    job_part_t   p;

    (void) state;

    job_part_init(&p, 2);

    a = job_off_add(&p, 5);
    hold = job_off_hold(&p, a);
    p.hold = hold;
    p.deferring = 1;
    p.high = 6;

    /* the hold is the partition's: freed with the list (ASan checks) */
    job_part_detach(&p);
    assert_null(p.hold);
    assert_int_equal(p.deferring, 0);
    assert_int_equal(p.high, -1);
    assert_null(a->part);
    job_off_done(a);                    /* detached: freed */
}


static void
test_many(void **state)
{
    int          i;
    job_off_t  **o;
    job_part_t   p;

    (void) state;

    job_part_init(&p, 0);

    o = calloc(1000, sizeof(job_off_t *));
    assert_non_null(o);

    for (i = 0; i < 1000; i++) {
        o[i] = job_off_add(&p, i);
    }

    /* finish the odd ones, then the even ones backwards */
    for (i = 1; i < 1000; i += 2) {
        assert_int_equal(job_off_done(o[i]), 0);
    }

    for (i = 998; i > 0; i -= 2) {
        assert_int_equal(job_off_done(o[i]), 0);
    }

    assert_int_equal(p.next, -1);
    assert_int_equal(job_off_done(o[0]), 1);
    assert_int_equal(p.next, 1000);
    assert_int_equal(p.count, 0);

    free(o);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_abandoned_holds),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_hold_and_replay),
        cmocka_unit_test(test_detach_holds),
        cmocka_unit_test(test_many),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
