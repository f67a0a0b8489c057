/*
 * libFuzzer target: the push API's argument parsers (goim_args.h) on
 * arbitrary bytes, each input through all of them: as a query string
 * (mids split on commas, keys not), as a whole number, and as a v1
 * /1/pushs body.  Lists must hold each value once, NUL-terminated within
 * the scratch block; numbers must be within their bounds and print back
 * as parsed; a body's m must be one whole JSON value and its uids numbers
 * of the body.
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "goim_args.h"


static void
check_list(const char *query, size_t len, const char *name, int split)
{
    char              *scratch;
    size_t             i, j, size;
    goim_args_list_t   list;

    size = goim_args_list_size(len);

    scratch = malloc(size);
    if (scratch == NULL) {
        abort();
    }

    goim_args_list(query, len, name, split, scratch, &list);

    if (list.n > len / 2 + 1) {
        abort();
    }

    for (i = 0; i < list.n; i++) {
        if (list.values[i] < scratch
            || list.values[i] + list.lens[i] >= scratch + size
            || list.values[i][list.lens[i]] != '\0'
            || list.lens[i] > len
            || (split && memchr(list.values[i], ',', list.lens[i])
                && !memmem(query, len, "%2", 2)))
        {
            abort();
        }
    }

    /* each value once: pairwise, on lists small enough to afford it */

    if (list.n <= 256) {
        for (i = 0; i < list.n; i++) {
            for (j = i + 1; j < list.n; j++) {
                if (list.lens[i] == list.lens[j]
                    && memcmp(list.values[i], list.values[j], list.lens[i])
                       == 0)
                {
                    abort();
                }
            }
        }
    }

    free(scratch);
}


static void
check_int(const char *s, size_t len)
{
    char     text[32];
    int64_t  v, again;

    if (goim_args_int(s, len, INT32_MIN, INT32_MAX, &v) == 0) {
        if (v < INT32_MIN || v > INT32_MAX) {
            abort();
        }
    }

    if (goim_args_int(s, len, INT64_MIN + 1, INT64_MAX, &v) != 0) {
        return;
    }

    snprintf(text, sizeof(text), "%" PRId64, v);

    if (goim_args_int(text, strlen(text), INT64_MIN + 1, INT64_MAX, &again)
        != 0
        || again != v)
    {
        abort();
    }
}


static void
check_pushs(const char *body, size_t len)
{
    void          *scratch;
    size_t         m_len, n, i, j;
    int64_t       *uids;
    yajl_handle    yajl;
    const char    *err, *m;

    uids = malloc((len / 2 + 1) * sizeof(int64_t));
    if (uids == NULL) {
        abort();
    }

    err = goim_args_v1_pushs(body, len, &m, &m_len, uids, &n);

    if (err) {
        free(uids);
        return;
    }

    if (m < body || m + m_len > body + len || m_len == 0 || n == 0
        || n > len / 2 + 1)
    {
        abort();
    }

    /* m is one JSON value, exactly: no trailing bytes, no second value */

    yajl = yajl_alloc(NULL, NULL, NULL);
    if (yajl == NULL) {
        abort();
    }

    yajl_config(yajl, yajl_dont_validate_strings, 1);

    if (yajl_parse(yajl, (const unsigned char *) m, m_len) != yajl_status_ok
        || yajl_complete_parse(yajl) != yajl_status_ok)
    {
        abort();
    }

    yajl_free(yajl);

    scratch = malloc(goim_args_dedup_size(n));
    if (scratch == NULL) {
        abort();
    }

    n = goim_args_dedup_int64(uids, n, scratch);

    for (i = 0; i < n && n <= 256; i++) {
        for (j = i + 1; j < n; j++) {
            if (uids[i] == uids[j]) {
                abort();
            }
        }
    }

    free(scratch);
    free(uids);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char  *copy;

    /* exactly the input's bytes: ASan sees any overread */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, data, size);

    check_list(copy, size, "mids", 1);
    check_list(copy, size, "keys", 0);
    check_list(copy, size, "k", 1);
    check_int(copy, size);
    check_pushs(copy, size);

    free(copy);

    return 0;
}
