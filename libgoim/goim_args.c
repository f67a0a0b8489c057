/*
 * The push API's arguments (see goim_args.h).
 */

#include <string.h>

#include <yajl/yajl_parse.h>

#include "goim_args.h"


#define GOIM_ARGS_ALIGN(n)                                                    \
    (((n) + sizeof(void *) - 1) & ~(sizeof(void *) - 1))


static int
goim_args_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


size_t
goim_args_unescape(char *dst, const char *src, size_t len)
{
    int             hi, lo;
    char           *d;
    unsigned char   ch;
    const char     *last;

    d = dst;
    last = src + len;

    while (src < last) {
        ch = (unsigned char) *src++;

        if (ch == '?') {
            *d++ = (char) ch;
            break;
        }

        if (ch != '%') {
            *d++ = (char) ch;
            continue;
        }

        if (src == last) {
            break;
        }

        hi = goim_args_hex((unsigned char) *src++);

        if (hi < 0) {
            /* NGINX keeps the byte after a lone '%' */
            *d++ = src[-1];
            continue;
        }

        if (src == last) {
            break;
        }

        lo = goim_args_hex((unsigned char) *src++);

        if (lo < 0) {
            continue;
        }

        ch = (unsigned char) (hi << 4 | lo);
        *d++ = (char) ch;

        if (ch == '?') {
            break;
        }
    }

    return d - dst;
}


size_t
goim_args_dedup_size(size_t n)
{
    size_t  cap;

    for (cap = 8; cap < 2 * n; cap <<= 1) {
        /* void */
    }

    return cap * sizeof(uint32_t);
}


static uint32_t
goim_args_hash_int64(int64_t v)
{
    uint64_t  x;

    x = (uint64_t) v;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;

    return (uint32_t) x;
}


static uint32_t
goim_args_hash_str(const char *s, size_t len)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) s[i];
        h *= 16777619u;
    }

    return h;
}


/*
 * Open addressing over indices into the kept prefix v[0..k): a slot holds
 * index + 1, 0 is free.  The table has twice the slots of values, so a
 * probe ends quickly; kept values never move, so indices stay valid.
 */

size_t
goim_args_dedup_int64(int64_t *v, size_t n, void *scratch)
{
    size_t     i, k, mask, h;
    uint32_t  *slot;

    mask = goim_args_dedup_size(n) / sizeof(uint32_t) - 1;
    slot = scratch;
    memset(slot, 0, (mask + 1) * sizeof(uint32_t));

    for (i = 0, k = 0; i < n; i++) {
        h = goim_args_hash_int64(v[i]) & mask;

        while (slot[h] && v[slot[h] - 1] != v[i]) {
            h = (h + 1) & mask;
        }

        if (slot[h]) {
            continue;
        }

        v[k] = v[i];
        slot[h] = (uint32_t) ++k;
    }

    return k;
}


size_t
goim_args_dedup_strs(char **v, size_t *lens, size_t n, void *scratch)
{
    char       *s;
    size_t      i, k, mask, h, len, j;
    uint32_t   *slot;

    mask = goim_args_dedup_size(n) / sizeof(uint32_t) - 1;
    slot = scratch;
    memset(slot, 0, (mask + 1) * sizeof(uint32_t));

    for (i = 0, k = 0; i < n; i++) {
        s = v[i];
        len = lens ? lens[i] : strlen(s);
        h = goim_args_hash_str(s, len) & mask;

        for ( ;; ) {
            if (slot[h] == 0) {
                break;
            }

            j = slot[h] - 1;

            if ((lens ? lens[j] : strlen(v[j])) == len
                && memcmp(v[j], s, len) == 0)
            {
                break;
            }

            h = (h + 1) & mask;
        }

        if (slot[h]) {
            continue;
        }

        v[k] = s;
        if (lens) {
            lens[k] = len;
        }

        slot[h] = (uint32_t) ++k;
    }

    return k;
}


size_t
goim_args_list_size(size_t len)
{
    size_t  nmax;

    /* a value takes one byte at least, and a separator */
    nmax = len / 2 + 1;

    return GOIM_ARGS_ALIGN(nmax * (sizeof(char *) + sizeof(size_t)))
           + GOIM_ARGS_ALIGN(goim_args_dedup_size(nmax))
           + len + nmax;
}


void
goim_args_list(const char *query, size_t len, const char *name, int split,
    void *scratch, goim_args_list_t *list)
{
    char        *text;
    size_t       nlen, nmax;
    const char  *p, *last, *end, *v, *stop;
    uint32_t    *table;

    nmax = len / 2 + 1;
    nlen = strlen(name);

    list->values = scratch;
    list->lens = (size_t *) (list->values + nmax);
    table = (uint32_t *) ((char *) scratch
                          + GOIM_ARGS_ALIGN(nmax * (sizeof(char *)
                                                    + sizeof(size_t))));
    text = (char *) table + GOIM_ARGS_ALIGN(goim_args_dedup_size(nmax));
    list->n = 0;
    list->repeats = 0;

    p = query;
    last = query + len;

    while (p < last) {
        end = memchr(p, '&', last - p);
        if (end == NULL) {
            end = last;
        }

        if ((size_t) (end - p) > nlen && p[nlen] == '='
            && memcmp(p, name, nlen) == 0)
        {
            for (v = p + nlen + 1; v < end; v = stop + 1) {
                stop = split ? memchr(v, ',', end - v) : NULL;
                if (stop == NULL) {
                    stop = end;
                }

                if (stop == v) {
                    continue;
                }

                list->values[list->n] = text;
                list->lens[list->n] = goim_args_unescape(text, v, stop - v);
                text += list->lens[list->n];
                *text++ = '\0';
                list->n++;
            }
        }

        p = end + 1;
    }

    nlen = list->n;
    list->n = goim_args_dedup_strs(list->values, list->lens, list->n, table);
    list->repeats = nlen - list->n;
}


int
goim_args_int(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *value)
{
    int          neg;
    int64_t      n;
    const char  *p, *last;

    p = s;
    last = s + len;
    neg = 0;

    if (p < last && *p == '-') {
        neg = 1;
        p++;
    }

    if (p == last || last - p > 18) {
        return -1;
    }

    for (n = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }

        n = n * 10 + (*p - '0');
    }

    n = neg ? -n : n;

    if (n < min || n > max) {
        return -1;
    }

    *value = n;

    return 0;
}


/*
 * /1/pushs with yajl's callback parser: the offsets it has consumed when a
 * callback runs mark where m's value starts (after its key, the ':' and
 * blanks) and ends (after its last token), so m's text is pushed as sent.
 */

#define GOIM_ARGS_NOT_OBJECT  "the body is not a JSON object"
#define GOIM_ARGS_BAD_UIDS    "u must be an array of int64 uids"

typedef enum {
    GOIM_ARGS_KEY_OTHER = 0,
    GOIM_ARGS_KEY_M,
    GOIM_ARGS_KEY_U
} goim_args_key_t;

typedef struct {
    yajl_handle       yajl;
    const char       *body;
    size_t            len;
    size_t            depth;
    goim_args_key_t   key;
    size_t            value_start;
    const char       *m;
    size_t            m_len;
    int64_t          *uids;
    size_t            n;
    const char       *err;
} goim_args_pushs_t;


/* a value of the object's (depth 1) is complete: m's text ends here */

static void
goim_args_pushs_done(goim_args_pushs_t *ps)
{
    if (ps->key == GOIM_ARGS_KEY_M) {
        ps->m = ps->body + ps->value_start;
        ps->m_len = yajl_get_bytes_consumed(ps->yajl) - ps->value_start;
    }
}


static int
goim_args_pushs_scalar(goim_args_pushs_t *ps)
{
    if (ps->depth == 0) {
        ps->err = GOIM_ARGS_NOT_OBJECT;
        return 0;
    }

    if (ps->key == GOIM_ARGS_KEY_U) {
        ps->err = GOIM_ARGS_BAD_UIDS;
        return 0;
    }

    if (ps->depth == 1) {
        goim_args_pushs_done(ps);
    }

    return 1;
}


static int
goim_args_pushs_null(void *ctx)
{
    return goim_args_pushs_scalar(ctx);
}


static int
goim_args_pushs_boolean(void *ctx, int b)
{
    (void) b;

    return goim_args_pushs_scalar(ctx);
}


static int
goim_args_pushs_string(void *ctx, const unsigned char *s, size_t len)
{
    (void) s;
    (void) len;

    return goim_args_pushs_scalar(ctx);
}


static int
goim_args_pushs_number(void *ctx, const char *s, size_t len)
{
    goim_args_pushs_t *ps = ctx;

    if (ps->key != GOIM_ARGS_KEY_U || ps->depth != 2) {
        return goim_args_pushs_scalar(ps);
    }

    if (goim_args_int(s, len, INT64_MIN + 1, INT64_MAX, &ps->uids[ps->n])
        != 0)
    {
        ps->err = GOIM_ARGS_BAD_UIDS;
        return 0;
    }

    ps->n++;

    return 1;
}


static int
goim_args_pushs_start_map(void *ctx)
{
    goim_args_pushs_t *ps = ctx;

    if (ps->key == GOIM_ARGS_KEY_U && ps->depth >= 1) {
        ps->err = GOIM_ARGS_BAD_UIDS;
        return 0;
    }

    ps->depth++;

    return 1;
}


static int
goim_args_pushs_start_array(void *ctx)
{
    goim_args_pushs_t *ps = ctx;

    if (ps->depth == 0) {
        ps->err = GOIM_ARGS_NOT_OBJECT;
        return 0;
    }

    if (ps->key == GOIM_ARGS_KEY_U && ps->depth != 1) {
        ps->err = GOIM_ARGS_BAD_UIDS;
        return 0;
    }

    ps->depth++;

    return 1;
}


static int
goim_args_pushs_end(void *ctx)
{
    goim_args_pushs_t *ps = ctx;

    if (--ps->depth == 1) {
        goim_args_pushs_done(ps);
    }

    return 1;
}


static int
goim_args_pushs_map_key(void *ctx, const unsigned char *key, size_t len)
{
    goim_args_pushs_t *ps = ctx;

    const char  *p, *last;

    if (ps->depth != 1) {
        return 1;
    }

    ps->key = GOIM_ARGS_KEY_OTHER;

    if (len == 1 && key[0] == 'm') {
        ps->key = GOIM_ARGS_KEY_M;

    } else if (len == 1 && key[0] == 'u') {
        /* a later "u" replaces an earlier one, as a later "m" does */
        ps->key = GOIM_ARGS_KEY_U;
        ps->n = 0;
    }

    /*
     * the value follows the key's closing quote, blanks and the ':';
     * blanks as yajl's lexer has them, \v and \f included (fuzz_args)
     */

    p = ps->body + yajl_get_bytes_consumed(ps->yajl);
    last = ps->body + ps->len;

    while (p < last && *p != '\0' && strchr(" \t\n\v\f\r:", *p)) {
        p++;
    }

    ps->value_start = p - ps->body;

    return 1;
}


static const yajl_callbacks  goim_args_pushs_callbacks = {
    goim_args_pushs_null,
    goim_args_pushs_boolean,
    NULL,
    NULL,
    goim_args_pushs_number,
    goim_args_pushs_string,
    goim_args_pushs_start_map,
    goim_args_pushs_map_key,
    goim_args_pushs_end,
    goim_args_pushs_start_array,
    goim_args_pushs_end
};


const char *
goim_args_v1_pushs(const char *body, size_t len, const char **m,
    size_t *m_len, int64_t *uids, size_t *n)
{
    yajl_status        st;
    goim_args_pushs_t  ps;

    memset(&ps, 0, sizeof(ps));
    ps.body = body;
    ps.len = len;
    ps.uids = uids;

    ps.yajl = yajl_alloc(&goim_args_pushs_callbacks, NULL, &ps);
    if (ps.yajl == NULL) {
        return "out of memory";
    }

    /* as goim v1: what follows the object is not looked at */
    yajl_config(ps.yajl, yajl_allow_trailing_garbage, 1);
    /* m's bytes are pushed as they are, UTF-8 or not */
    yajl_config(ps.yajl, yajl_dont_validate_strings, 1);

    st = yajl_parse(ps.yajl, (const unsigned char *) body, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(ps.yajl);
    }

    yajl_free(ps.yajl);

    if (st != yajl_status_ok) {
        if (ps.err) {
            return ps.err;
        }

        /* a syntax error inside u's list is still about u */
        return (ps.key == GOIM_ARGS_KEY_U && ps.depth == 2)
               ? GOIM_ARGS_BAD_UIDS : GOIM_ARGS_NOT_OBJECT;
    }

    if (ps.m == NULL) {
        return "the body needs \"m\", the message";
    }

    if (ps.n == 0) {
        return "the body needs \"u\", a non-empty list of uids";
    }

    *m = ps.m;
    *m_len = ps.m_len;
    *n = ps.n;

    return NULL;
}


static int
goim_args_u64(const char *s, size_t len, uint64_t *v)
{
    size_t  i;

    if (len == 0 || len > 19) {
        return -1;
    }

    *v = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        *v = *v * 10 + (uint64_t) (s[i] - '0');
    }

    return 0;
}


int
goim_args_position(const char *s, size_t len, uint64_t *epoch,
    uint64_t *seq)
{
    const char  *colon;

    colon = memchr(s, ':', len);

    if (colon == NULL
        || goim_args_u64(s, colon - s, epoch) != 0
        || goim_args_u64(colon + 1, s + len - colon - 1, seq) != 0
        || *epoch == 0)
    {
        *epoch = 0;
        *seq = 0;
        return -1;
    }

    return 0;
}
