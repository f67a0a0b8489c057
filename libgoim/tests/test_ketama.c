/*
 * Unit tests of the ketama ring (goim_ketama.c) against fixed vectors
 * computed independently (Python hashlib, see docs/ketama.md): the point
 * hash, the sorted ring, the node of some mids for 1, 2, 3 and 5 nodes,
 * and the spread of 100,000 mids over two nodes.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "goim_ketama.h"


static void
build(goim_ketama_point_t *pts, const char *const *names, size_t n)
{
    size_t  i, lens[8];

    for (i = 0; i < n; i++) {
        lens[i] = strlen(names[i]);
    }

    goim_ketama_build(pts, names, lens, n);
}


static void
test_hash(void **state)
{
    (void) state;

    assert_int_equal(goim_ketama_hash("1:1", 3), 3004942413u);
    assert_int_equal(goim_ketama_hash("123", 3), 3420176111u);
    assert_int_equal(goim_ketama_hash("", 0), 2950170377u);
}


static void
test_ring_sorted(void **state)
{
    size_t                i;
    goim_ketama_point_t   pts[2 * GOIM_KETAMA_POINTS];
    static const char    *names[] = { "1", "2" };

    (void) state;

    build(pts, names, 2);

    assert_int_equal(pts[0].value, 7392041u);
    assert_int_equal(pts[0].node, 0);
    assert_int_equal(pts[1].value, 10483950u);
    assert_int_equal(pts[2].value, 11553349u);
    assert_int_equal(pts[2].node, 1);
    assert_int_equal(pts[2 * GOIM_KETAMA_POINTS - 1].value, 4287235006u);

    for (i = 1; i < 2 * GOIM_KETAMA_POINTS; i++) {
        assert_true(pts[i - 1].value <= pts[i].value);
    }
}


static void
test_mids(void **state)
{
    size_t                i;
    goim_ketama_point_t   pts[5 * GOIM_KETAMA_POINTS];
    static const char    *two[] = { "1", "2" };
    static const char    *three[] = { "1", "2", "3" };
    static const char    *five[] = { "node1", "node2", "node3", "node4",
                                     "node5" };

    static const struct {
        int64_t   mid;
        uint32_t  node;
    } v2[] = {
        { 0, 0 }, { 1, 1 }, { 2, 0 }, { 3, 0 }, { 4, 1 }, { 5, 0 },
        { 6, 1 }, { 7, 0 }, { 123, 1 }, { 124, 0 }, { 125, 1 },
        { 200, 0 }, { -5, 0 }, { INT64_MAX, 0 }
    }, v3[] = {
        { 0, 0 }, { 1, 1 }, { 4, 1 }, { 6, 2 }, { 8, 2 }, { 123, 1 },
        { -5, 2 }, { INT64_MAX, 2 }
    };

    static const uint32_t  v5[10] = { 0, 0, 3, 2, 3, 4, 0, 0, 4, 1 };

    (void) state;

    build(pts, two, 2);

    for (i = 0; i < sizeof(v2) / sizeof(v2[0]); i++) {
        assert_int_equal(goim_ketama_mid(pts, goim_ketama_npoints(2),
                                         v2[i].mid), v2[i].node);
    }

    build(pts, three, 3);

    for (i = 0; i < sizeof(v3) / sizeof(v3[0]); i++) {
        assert_int_equal(goim_ketama_mid(pts, goim_ketama_npoints(3),
                                         v3[i].mid), v3[i].node);
    }

    build(pts, five, 5);

    for (i = 0; i < 10; i++) {
        assert_int_equal(goim_ketama_mid(pts, goim_ketama_npoints(5),
                                         (int64_t) i), v5[i]);
    }
}


static void
test_one_node_and_wrap(void **state)
{
    goim_ketama_point_t   pts[GOIM_KETAMA_POINTS];
    static const char    *one[] = { "solo" };

    (void) state;

    build(pts, one, 1);

    assert_int_equal(goim_ketama_mid(pts, goim_ketama_npoints(1), 42), 0);

    /* past the last point: the first point's node */
    assert_int_equal(goim_ketama_find(pts, GOIM_KETAMA_POINTS, UINT32_MAX),
                     pts[0].node);
    assert_int_equal(goim_ketama_find(pts, GOIM_KETAMA_POINTS, 0),
                     pts[0].node);
}


static void
test_spread(void **state)
{
    int64_t               mid;
    size_t                count[2];
    goim_ketama_point_t   pts[2 * GOIM_KETAMA_POINTS];
    static const char    *two[] = { "1", "2" };

    (void) state;

    build(pts, two, 2);
    count[0] = count[1] = 0;

    for (mid = 0; mid < 100000; mid++) {
        count[goim_ketama_mid(pts, goim_ketama_npoints(2), mid)]++;
    }

    assert_int_equal(count[0], 49705);
    assert_int_equal(count[1], 50295);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_ring_sorted),
        cmocka_unit_test(test_mids),
        cmocka_unit_test(test_one_node_and_wrap),
        cmocka_unit_test(test_spread),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
