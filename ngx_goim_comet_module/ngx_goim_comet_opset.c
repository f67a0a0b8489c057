
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


/*
 * A set of operations: a sorted array without duplicates.  A channel's
 * accepts (what pushes by key and broadcasts it gets) and, with a signed
 * token, the operations it may subscribe to are such sets; a push looks
 * an operation up with a binary search, op 14 and op 16 merge a sorted
 * list in, so no client request costs more than O(n log n + set size)
 * (goim's nested loops let one client stall a worker).
 */


static int ngx_libc_cdecl ngx_goim_opset_cmp(const void *one,
    const void *two);


static int ngx_libc_cdecl
ngx_goim_opset_cmp(const void *one, const void *two)
{
    int32_t  a, b;

    a = *(const int32_t *) one;
    b = *(const int32_t *) two;

    return (a > b) - (a < b);
}


/* sorts ops in place and drops duplicates; returns how many are left */

ngx_uint_t
ngx_goim_opset_sort(int32_t *ops, ngx_uint_t n)
{
    ngx_uint_t  i, k;

    if (n < 2) {
        return n;
    }

    ngx_qsort(ops, n, sizeof(int32_t), ngx_goim_opset_cmp);

    for (i = 1, k = 1; i < n; i++) {
        if (ops[i] != ops[k - 1]) {
            ops[k++] = ops[i];
        }
    }

    return k;
}


/*
 * "1000,1001": decimal int32s separated by commas, into ops (room for
 * ngx_goim_opset_count() of them), sorted and unique.  NGX_DECLINED: one
 * of them does not parse.
 */

ngx_uint_t
ngx_goim_opset_count(u_char *p, size_t len)
{
    u_char      *last;
    ngx_uint_t   n;

    if (len == 0) {
        return 0;
    }

    for (n = 1, last = p + len; p < last; p++) {
        n += (*p == ',');
    }

    return n;
}


ngx_int_t
ngx_goim_opset_parse(u_char *p, size_t len, int32_t *ops, ngx_uint_t *n)
{
    u_char      *last, *end;
    int64_t      v;
    ngx_int_t    neg;
    ngx_uint_t   i, count;

    count = ngx_goim_opset_count(p, len);
    last = p + len;

    for (i = 0; i < count; i++) {
        end = ngx_strlchr(p, last, ',');
        if (end == NULL) {
            end = last;
        }

        neg = (p < end && *p == '-');
        p += neg;

        if (p == end || end - p > 10) {
            return NGX_DECLINED;
        }

        for (v = 0; p < end; p++) {
            if (*p < '0' || *p > '9') {
                return NGX_DECLINED;
            }

            v = v * 10 + (*p - '0');
        }

        v = neg ? -v : v;

        if (v < INT32_MIN || v > INT32_MAX) {
            return NGX_DECLINED;
        }

        ops[i] = (int32_t) v;
        p = end + 1;
    }

    *n = ngx_goim_opset_sort(ops, count);

    return NGX_OK;
}


/* a set made of any list: NGX_DECLINED when it holds more than max */

ngx_int_t
ngx_goim_opset_init(ngx_goim_opset_t *set, const int32_t *ops, ngx_uint_t n,
    ngx_uint_t max, ngx_log_t *log)
{
    ngx_goim_opset_free(set);

    if (n == 0) {
        return NGX_OK;
    }

    set->elts = ngx_alloc(n * sizeof(int32_t), log);
    if (set->elts == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(set->elts, ops, n * sizeof(int32_t));
    set->nelts = ngx_goim_opset_sort(set->elts, n);

    if (set->nelts > max) {
        ngx_goim_opset_free(set);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Adds ops (sorted, unique).  NGX_DECLINED: the set would hold more than
 * max, and nothing changed.  The new array is allocated at its exact size,
 * so a set never takes more than max elements' memory.
 */

ngx_int_t
ngx_goim_opset_add(ngx_goim_opset_t *set, const int32_t *ops, ngx_uint_t n,
    ngx_uint_t max, ngx_log_t *log)
{
    int32_t     *elts;
    ngx_uint_t   i, j, k, count;

    for (i = 0, j = 0, count = 0; i < set->nelts || j < n; count++) {
        if (j == n || (i < set->nelts && set->elts[i] < ops[j])) {
            i++;

        } else if (i == set->nelts || ops[j] < set->elts[i]) {
            j++;

        } else {
            i++;
            j++;
        }
    }

    if (count > max) {
        return NGX_DECLINED;
    }

    if (count == set->nelts) {
        return NGX_OK;
    }

    elts = ngx_alloc(count * sizeof(int32_t), log);
    if (elts == NULL) {
        return NGX_ERROR;
    }

    for (i = 0, j = 0, k = 0; i < set->nelts || j < n; k++) {
        if (j == n || (i < set->nelts && set->elts[i] < ops[j])) {
            elts[k] = set->elts[i++];

        } else if (i == set->nelts || ops[j] < set->elts[i]) {
            elts[k] = ops[j++];

        } else {
            elts[k] = ops[j++];
            i++;
        }
    }

    if (set->elts) {
        ngx_free(set->elts);
    }

    set->elts = elts;
    set->nelts = count;

    return NGX_OK;
}


/* removes ops (sorted, unique), in place */

void
ngx_goim_opset_remove(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n)
{
    ngx_uint_t  i, j, k;

    for (i = 0, j = 0, k = 0; i < set->nelts; i++) {
        while (j < n && ops[j] < set->elts[i]) {
            j++;
        }

        if (j < n && ops[j] == set->elts[i]) {
            continue;
        }

        set->elts[k++] = set->elts[i];
    }

    set->nelts = k;
}


ngx_uint_t
ngx_goim_opset_has(ngx_goim_opset_t *set, int32_t op)
{
    ngx_uint_t  lo, hi, mid;

    lo = 0;
    hi = set->nelts;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (set->elts[mid] < op) {
            lo = mid + 1;

        } else if (set->elts[mid] > op) {
            hi = mid;

        } else {
            return 1;
        }
    }

    return 0;
}


/* NGX_OK when every one of ops (sorted) is in the set */

ngx_int_t
ngx_goim_opset_covers(ngx_goim_opset_t *set, const int32_t *ops,
    ngx_uint_t n, int32_t *missing)
{
    ngx_uint_t  i, j;

    for (i = 0, j = 0; j < n; j++) {
        while (i < set->nelts && set->elts[i] < ops[j]) {
            i++;
        }

        if (i == set->nelts || set->elts[i] != ops[j]) {
            *missing = ops[j];
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


void
ngx_goim_opset_free(ngx_goim_opset_t *set)
{
    if (set->elts) {
        ngx_free(set->elts);
    }

    set->elts = NULL;
    set->nelts = 0;
}
