/*
 * The push API's arguments, parsed without NGINX so that they are unit
 * tested and fuzzed on their own: the list arguments of a query string
 * (mids, keys, rooms: repeated names, optionally comma lists, URI-escaped),
 * whole numbers with bounds (operation, speed, limit, uid, rid), and goim
 * v1's /1/pushs JSON body {"m":<any JSON>,"u":[uid,...]}.
 *
 * Lists come back with each value once, in the order first given: goim
 * groups a push's keys in a map, so a repeated mid or key is delivered
 * once, and a list of one value repeated cannot fill a queue.
 *
 * No allocation except yajl's own while a JSON body is parsed: lists are
 * built in a scratch block the caller sizes with goim_args_list_size() and
 * owns (an NGINX pool, malloc); the de-duplication tables are carved out
 * of it.
 */

#ifndef GOIM_ARGS_H
#define GOIM_ARGS_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)


typedef struct {
    char       **values;     /* unescaped, NUL-terminated, each once */
    size_t      *lens;
    size_t       n;
    size_t       repeats;    /* values dropped: given before */
} goim_args_list_t;


/*
 * Decodes len bytes of URI escapes (%XX) into dst (which may be src), as
 * NGINX's ngx_unescape_uri(NGX_UNESCAPE_URI) does: a '%' not followed by
 * a hex digit is dropped, "%X" followed by a non-hex byte drops both, and
 * a '?' (plain or decoded) ends the value.  Returns the bytes written.
 */
size_t goim_args_unescape(char *dst, const char *src, size_t len);

/* Bytes of scratch goim_args_list() needs for a query of len bytes. */
size_t goim_args_list_size(size_t len);

/*
 * Every value of the argument name in query (len bytes, "a=1&b=2", not
 * NUL-terminated): goim lists repeat the name (mids=1&mids=2); split also
 * accepts commas (mids=1,2).  Empty pieces between separators are not
 * values.  Values are unescaped, then repeats are dropped.  scratch holds
 * goim_args_list_size(len) bytes, suitably aligned, and backs the list.
 */
void goim_args_list(const char *query, size_t len, const char *name,
    int split, void *scratch, goim_args_list_t *list);

/*
 * A decimal whole number: an optional '-', then 1 to 18 digits (every such
 * number fits an int64), within [min, max].  0, or -1 when s is not one.
 */
int goim_args_int(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *value);

/*
 * Drops repeated values from v[0..n), keeping the first of each, in
 * order; returns how many are left.  scratch holds goim_args_dedup_size(n)
 * bytes, suitably aligned.
 */
size_t goim_args_dedup_size(size_t n);
size_t goim_args_dedup_int64(int64_t *v, size_t n, void *scratch);
size_t goim_args_dedup_strs(char **v, size_t *lens, size_t n,
    void *scratch);

/*
 * goim v1's /1/pushs body: {"m":<any JSON>,"u":[uid,...]}.  *m, *m_len:
 * the JSON text of m's value, within body (pushed as is); uids get the
 * uids as given (room for len / 2 + 1: goim_args_dedup_int64() drops the
 * repeats); *n how many.  NULL, or the reason the body was refused, for
 * the client.
 */
const char *goim_args_v1_pushs(const char *body, size_t len,
    const char **m, size_t *m_len, int64_t *uids, size_t *n);


/*
 * A position in a room's stream (room recovery): "EPOCH:SEQ", both
 * decimal, epoch > 0.  0, or -1 (and both 0).
 */
int goim_args_position(const char *s, size_t len, uint64_t *epoch,
    uint64_t *seq);

#pragma GCC visibility pop

#endif /* GOIM_ARGS_H */
