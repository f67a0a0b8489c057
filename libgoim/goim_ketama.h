/*
 * The ketama ring logic uses to give each mid to one goim-router, goim
 * v1's (libs/hash/ketama), so that any client can compute the same
 * placement (docs/ketama.md):
 *
 *   - node n (its name, e.g. "1") gets GOIM_KETAMA_POINTS points: for
 *     i = 1 .. 255, the last four bytes (16..19) of SHA-1("<name>:<i>")
 *     read as a big-endian uint32;
 *   - the points are sorted by value, ties by node order;
 *   - a mid's hash is the same four bytes of SHA-1 of its decimal text
 *     ("123", "-5"); its node is the one owning the first point >= that
 *     hash, or the first point when none is.
 *
 * Plain C, no allocation: the caller gives the points array
 * (goim_ketama_npoints(nodes) entries).  SHA-1 is OpenSSL's libcrypto.
 */

#ifndef GOIM_KETAMA_H
#define GOIM_KETAMA_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

#define GOIM_KETAMA_POINTS  255

typedef struct {
    uint32_t  value;
    uint32_t  node;            /* index into the names given */
} goim_ketama_point_t;

#define goim_ketama_npoints(nodes)  ((size_t) (nodes) * GOIM_KETAMA_POINTS)


/* The last four bytes of SHA-1(data), big-endian. */
uint32_t goim_ketama_hash(const void *data, size_t len);

/*
 * Fills points (goim_ketama_npoints(n) of them) for nodes names[0..n-1],
 * names[i] being lens[i] bytes long, and sorts them.
 */
void goim_ketama_build(goim_ketama_point_t *points, const char *const *names,
    const size_t *lens, size_t n);

/* The node owning hash on a ring of npoints (> 0) points. */
uint32_t goim_ketama_find(const goim_ketama_point_t *points, size_t npoints,
    uint32_t hash);

/* The node owning mid. */
uint32_t goim_ketama_mid(const goim_ketama_point_t *points, size_t npoints,
    int64_t mid);

#pragma GCC visibility pop

#endif /* GOIM_KETAMA_H */
