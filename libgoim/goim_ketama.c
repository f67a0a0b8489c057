/*
 * goim v1's ketama ring (see goim_ketama.h and docs/ketama.md).
 */

#include <stdio.h>
#include <stdlib.h>

#include <openssl/sha.h>

#include "goim_ketama.h"


uint32_t
goim_ketama_hash(const void *data, size_t len)
{
    unsigned char  md[SHA_DIGEST_LENGTH];

    SHA1(data, len, md);

    return (uint32_t) md[16] << 24 | (uint32_t) md[17] << 16
           | (uint32_t) md[18] << 8 | (uint32_t) md[19];
}


static int
goim_ketama_cmp(const void *a, const void *b)
{
    const goim_ketama_point_t  *x = a, *y = b;

    if (x->value != y->value) {
        return x->value < y->value ? -1 : 1;
    }

    return x->node < y->node ? -1 : x->node > y->node;
}


void
goim_ketama_build(goim_ketama_point_t *points, const char *const *names,
    const size_t *lens, size_t n)
{
    int                   len;
    char                  buf[300];
    size_t                node, i, k, name_len;
    goim_ketama_point_t  *p;

    p = points;

    for (node = 0; node < n; node++) {
        name_len = lens[node] > 256 ? 256 : lens[node];

        for (i = 1; i <= GOIM_KETAMA_POINTS; i++) {
            len = snprintf(buf, sizeof(buf), "%.*s:%zu", (int) name_len,
                           names[node], i);
            k = (size_t) len < sizeof(buf) ? (size_t) len : sizeof(buf) - 1;

            p->value = goim_ketama_hash(buf, k);
            p->node = (uint32_t) node;
            p++;
        }
    }

    qsort(points, goim_ketama_npoints(n), sizeof(goim_ketama_point_t),
          goim_ketama_cmp);
}


uint32_t
goim_ketama_find(const goim_ketama_point_t *points, size_t npoints,
    uint32_t hash)
{
    size_t  lo, hi, mid;

    /* the first point >= hash */

    lo = 0;
    hi = npoints;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (points[mid].value < hash) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return points[lo == npoints ? 0 : lo].node;
}


uint32_t
goim_ketama_mid(const goim_ketama_point_t *points, size_t npoints,
    int64_t mid)
{
    int   len;
    char  buf[24];

    len = snprintf(buf, sizeof(buf), "%lld", (long long) mid);

    return goim_ketama_find(points, npoints,
                            goim_ketama_hash(buf, (size_t) len));
}
