/*
 * Unit tests of the push API's argument parsers: query lists (split,
 * unescaped, each value once), bounded numbers, v1's /1/pushs body.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "goim_args.h"


/* the list's values joined by '|', for one comparison per case */
static const char *
list_of(const char *query, const char *name, int split, size_t *repeats)
{
    size_t            i;
    void             *scratch;
    goim_args_list_t  list;
    static char       out[1024];

    scratch = malloc(goim_args_list_size(strlen(query)));
    assert_non_null(scratch);

    goim_args_list(query, strlen(query), name, split, scratch, &list);

    out[0] = '\0';

    for (i = 0; i < list.n; i++) {
        assert_int_equal(strlen(list.values[i]), list.lens[i]);
        strcat(out, i ? "|" : "");
        strcat(out, list.values[i]);
    }

    if (repeats) {
        *repeats = list.repeats;
    }

    free(scratch);

    return out;
}


static void
test_list_repeated_names_and_commas(void **state)
{
    size_t  repeats;

    (void) state;

    assert_string_equal(list_of("mids=1&mids=2,3", "mids", 1, &repeats),
                        "1|2|3");
    assert_int_equal(repeats, 0);

    /* without split a comma is part of the value (keys, rooms) */
    assert_string_equal(list_of("keys=a,b&keys=c", "keys", 0, NULL),
                        "a,b|c");

    /* other names, prefixes of the name, names without '=' */
    assert_string_equal(list_of("xmids=1&mid=2&mids&mids=4&operation=5",
                                "mids", 1, NULL),
                        "4");

    /* empty pieces are not values */
    assert_string_equal(list_of("mids=,&mids=&mids=,7,", "mids", 1, NULL),
                        "7");
    assert_string_equal(list_of("", "mids", 1, NULL), "");
}


static void
test_list_each_value_once(void **state)
{
    size_t  repeats;

    (void) state;

    assert_string_equal(list_of("mids=7,7,7", "mids", 1, &repeats), "7");
    assert_int_equal(repeats, 2);

    /* the first of each, in the order given */
    assert_string_equal(list_of("keys=b&keys=a&keys=b&keys=c&keys=a",
                                "keys", 0, &repeats),
                        "b|a|c");
    assert_int_equal(repeats, 2);

    /* compared after unescaping */
    assert_string_equal(list_of("keys=a%20b&keys=a+b&keys=a%20b", "keys", 0,
                                &repeats),
                        "a b|a+b");
    assert_int_equal(repeats, 1);
}


static void
test_list_many_repeats(void **state)
{
    char    *q, *p;
    size_t   i;

    (void) state;

    /* 1000 copies of one key and 1000 distinct ones */
    q = malloc(1000 * 16 + 1000 * 16 + 1);
    assert_non_null(q);
    p = q;

    for (i = 0; i < 1000; i++) {
        p += sprintf(p, "%skeys=k&keys=k%zu", i ? "&" : "", i);
    }

    {
        void             *scratch;
        goim_args_list_t  list;

        scratch = malloc(goim_args_list_size(strlen(q)));
        goim_args_list(q, strlen(q), "keys", 0, scratch, &list);

        assert_int_equal(list.n, 1001);
        assert_int_equal(list.repeats, 999);
        assert_string_equal(list.values[0], "k");
        assert_string_equal(list.values[1], "k0");
        assert_string_equal(list.values[1000], "k999");

        free(scratch);
    }

    free(q);
}


static void
test_unescape_as_nginx(void **state)
{
    char    buf[64];
    size_t  n;

    (void) state;

#define UNESCAPE(in, out)                                                     \
    n = goim_args_unescape(buf, in, sizeof(in) - 1);                          \
    assert_int_equal(n, sizeof(out) - 1);                                     \
    assert_memory_equal(buf, out, n)

    UNESCAPE("plain", "plain");
    UNESCAPE("a%20b%2C%2c", "a b,,");
    UNESCAPE("%e4%BD%a0", "\xe4\xbd\xa0");
    UNESCAPE("%00x", "\0x");
    /* a '%' without a hex digit after it is dropped, the byte kept */
    UNESCAPE("%zz", "zz");
    UNESCAPE("%%41", "%41");
    /* "%4" and a non-hex byte: both dropped */
    UNESCAPE("%4zq", "q");
    /* at the end: nothing */
    UNESCAPE("ab%", "ab");
    UNESCAPE("ab%4", "ab");
    /* '?' ends the value, plain or decoded */
    UNESCAPE("ab?cd", "ab?");
    UNESCAPE("ab%3Fcd", "ab?");
    UNESCAPE("ab%3fcd", "ab?");
    /* '+' is not a space in a URI */
    UNESCAPE("a+b", "a+b");

#undef UNESCAPE
}


static void
test_int(void **state)
{
    int64_t  v;

    (void) state;

#define INT_OK(s, min, max, want)                                             \
    v = 12345;                                                                \
    assert_int_equal(goim_args_int(s, strlen(s), min, max, &v), 0);           \
    assert_true(v == (want))

#define INT_BAD(s, min, max)                                                  \
    v = 12345;                                                                \
    assert_int_equal(goim_args_int(s, strlen(s), min, max, &v), -1);          \
    assert_true(v == 12345)

    INT_OK("1000", INT32_MIN, INT32_MAX, 1000);
    INT_OK("-7", INT32_MIN, INT32_MAX, -7);
    INT_OK("0", 0, INT32_MAX, 0);
    INT_OK("999999999999999999", INT64_MIN + 1, INT64_MAX,
           999999999999999999LL);
    INT_OK("-999999999999999999", INT64_MIN + 1, INT64_MAX,
           -999999999999999999LL);
    INT_OK("0001", 1, 1, 1);

    INT_BAD("", INT32_MIN, INT32_MAX);
    INT_BAD("-", INT32_MIN, INT32_MAX);
    INT_BAD("1.5", INT32_MIN, INT32_MAX);
    INT_BAD("abc", INT32_MIN, INT32_MAX);
    INT_BAD("+1", INT32_MIN, INT32_MAX);
    INT_BAD(" 1", INT32_MIN, INT32_MAX);
    INT_BAD("1e3", INT32_MIN, INT32_MAX);
    INT_BAD("9999999999", INT32_MIN, INT32_MAX);
    INT_BAD("-1", 0, INT32_MAX);
    INT_BAD("0", 1, INT32_MAX);
    /* 19 digits: refused before it could overflow */
    INT_BAD("1000000000000000000", INT64_MIN + 1, INT64_MAX);
    INT_BAD("99999999999999999999", INT64_MIN + 1, INT64_MAX);

#undef INT_OK
#undef INT_BAD
}


static void
test_dedup_int64(void **state)
{
    size_t   i, n;
    int64_t  v[3000];
    void    *scratch;

    (void) state;

    scratch = malloc(goim_args_dedup_size(3000));
    assert_non_null(scratch);

    v[0] = 7; v[1] = 7; v[2] = -7; v[3] = 7; v[4] = 0; v[5] = -7;
    n = goim_args_dedup_int64(v, 6, scratch);
    assert_int_equal(n, 3);
    assert_true(v[0] == 7 && v[1] == -7 && v[2] == 0);

    assert_int_equal(goim_args_dedup_int64(v, 0, scratch), 0);

    /* values that collide in a small table: all kept, in order */
    for (i = 0; i < 3000; i++) {
        v[i] = (int64_t) (i % 1000) << 32;
    }

    n = goim_args_dedup_int64(v, 3000, scratch);
    assert_int_equal(n, 1000);

    for (i = 0; i < 1000; i++) {
        assert_true(v[i] == (int64_t) i << 32);
    }

    free(scratch);
}


static void
test_dedup_strs(void **state)
{
    char    *v[] = { "b", "a", "b", "", "a", "", "ab" };
    size_t   n;
    void    *scratch;

    (void) state;

    scratch = malloc(goim_args_dedup_size(7));
    assert_non_null(scratch);

    /* lengths from strlen() when none are given (the router's keys) */
    n = goim_args_dedup_strs(v, NULL, 7, scratch);
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "b");
    assert_string_equal(v[1], "a");
    assert_string_equal(v[2], "");
    assert_string_equal(v[3], "ab");

    free(scratch);
}


/* a /1/pushs body: NULL and m, uids; or the reason */
static const char *
pushs(const char *body, char *m, int64_t *uids, size_t *n)
{
    size_t       m_len;
    const char  *err, *mp;

    *n = 0;
    err = goim_args_v1_pushs(body, strlen(body), &mp, &m_len, uids, n);

    if (err == NULL) {
        memcpy(m, mp, m_len);
        m[m_len] = '\0';
    }

    return err;
}


static void
test_v1_pushs(void **state)
{
    char         m[256];
    size_t       n;
    int64_t      uids[64];

    (void) state;

    assert_null(pushs("{\"m\":\"hello\",\"u\":[1,2,3]}", m, uids, &n));
    assert_string_equal(m, "\"hello\"");
    assert_int_equal(n, 3);
    assert_true(uids[0] == 1 && uids[1] == 2 && uids[2] == 3);

    /* m's JSON text as sent, whatever it is; blanks around */
    assert_null(pushs(" { \"u\" : [ -5 , 6 ] , \"m\" :\t{\"a\": [1, {}]} } ",
                      m, uids, &n));
    assert_string_equal(m, "{\"a\": [1, {}]}");
    assert_int_equal(n, 2);
    assert_true(uids[0] == -5 && uids[1] == 6);

    assert_null(pushs("{\"m\":12.5e1,\"x\":{\"m\":1,\"u\":\"no\"},"
                      "\"u\":[9]}", m, uids, &n));
    assert_string_equal(m, "12.5e1");
    assert_int_equal(n, 1);

    assert_null(pushs("{\"m\":null,\"u\":[1,1,1]}", m, uids, &n));
    assert_string_equal(m, "null");
    /* repeats are the caller's to drop */
    assert_int_equal(n, 3);

    /* yajl's blanks include \v and \f: not part of m (found by fuzz_args) */
    assert_null(pushs("{\"m\"\v:\f\"x\",\"u\":[1]}", m, uids, &n));
    assert_string_equal(m, "\"x\"");

    /* a later key replaces an earlier one */
    assert_null(pushs("{\"m\":1,\"u\":[1,2],\"m\":\"b\",\"u\":[3]}", m, uids,
                      &n));
    assert_string_equal(m, "\"b\"");
    assert_int_equal(n, 1);
    assert_true(uids[0] == 3);

    /* escapes inside m stay escaped */
    assert_null(pushs("{\"m\":\"a\\\"b\\u00e9\",\"u\":[1]}", m, uids, &n));
    assert_string_equal(m, "\"a\\\"b\\u00e9\"");

    /* what follows the object is not looked at */
    assert_null(pushs("{\"m\":true,\"u\":[1]} trailing", m, uids, &n));
    assert_string_equal(m, "true");
}


static void
test_v1_pushs_refused(void **state)
{
    char     m[256];
    size_t   n;
    int64_t  uids[64];

    (void) state;

#define REFUSED(body, why)                                                    \
    assert_string_equal(pushs(body, m, uids, &n), why)

    REFUSED("", "the body is not a JSON object");
    REFUSED("not json", "the body is not a JSON object");
    REFUSED("[1]", "the body is not a JSON object");
    REFUSED("\"m\"", "the body is not a JSON object");
    REFUSED("{\"m\":1,", "the body is not a JSON object");
    REFUSED("{\"m\":abc,\"u\":[1]}", "the body is not a JSON object");
    REFUSED("{}", "the body needs \"m\", the message");
    REFUSED("{\"u\":[1]}", "the body needs \"m\", the message");
    REFUSED("{\"m\":1}", "the body needs \"u\", a non-empty list of uids");
    REFUSED("{\"m\":1,\"u\":[]}",
            "the body needs \"u\", a non-empty list of uids");
    REFUSED("{\"m\":1,\"u\":[\"a\"]}", "u must be an array of int64 uids");
    REFUSED("{\"m\":1,\"u\":5}", "u must be an array of int64 uids");
    REFUSED("{\"m\":1,\"u\":{}}", "u must be an array of int64 uids");
    REFUSED("{\"m\":1,\"u\":[[1]]}", "u must be an array of int64 uids");
    REFUSED("{\"m\":1,\"u\":[1.5]}", "u must be an array of int64 uids");
    REFUSED("{\"m\":1,\"u\":[1,]}", "u must be an array of int64 uids");
    REFUSED("{\"m\":1,\"u\":[1 2]}", "u must be an array of int64 uids");
    REFUSED("{\"m\":1,\"u\":[1000000000000000000]}",
            "u must be an array of int64 uids");

#undef REFUSED
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_list_repeated_names_and_commas),
        cmocka_unit_test(test_list_each_value_once),
        cmocka_unit_test(test_list_many_repeats),
        cmocka_unit_test(test_unescape_as_nginx),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_dedup_int64),
        cmocka_unit_test(test_dedup_strs),
        cmocka_unit_test(test_v1_pushs),
        cmocka_unit_test(test_v1_pushs_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
