/*
 * An intrusive chained hash table for the daemons' indexes.
 *
 * A node is one pointer embedded in the indexed struct, so an object can
 * sit in several tables at no more cost than a pointer each (router's
 * sessions are indexed by key and by mid).  The table never owns the
 * objects: the caller hashes, walks a chain with its own comparison, and
 * frees.  Duplicate keys are allowed (router's mid index is a multimap:
 * every session of a mid hangs on the same chain).
 *
 * The table doubles when it holds more nodes than buckets; a failed
 * growth leaves it working with longer chains, so insertion never fails.
 */

#ifndef GOIM_UV_HASH_H
#define GOIM_UV_HASH_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

typedef struct goim_hnode_s  goim_hnode_t;

struct goim_hnode_s {
    goim_hnode_t  *next;
};

/* the hash of a node already in the table (needed to grow it) */
typedef uint32_t (*goim_hash_pt)(const goim_hnode_t *node);

typedef struct {
    goim_hnode_t   **buckets;
    size_t           mask;       /* buckets - 1, a power of two minus one */
    size_t           count;
    goim_hash_pt     hash;
} goim_hash_t;


/* 0, or -1 when the bucket array could not be allocated */
int goim_hash_init(goim_hash_t *h, size_t hint, goim_hash_pt hash);

/* Frees the bucket array only: the caller frees its objects first. */
void goim_hash_free(goim_hash_t *h);

void goim_hash_insert(goim_hash_t *h, goim_hnode_t *node, uint32_t hv);

/* 1 when the node was found and unlinked, 0 when it was not there */
int goim_hash_remove(goim_hash_t *h, goim_hnode_t *node, uint32_t hv);

/* The first node of the chain hv falls in: walk it with node->next and
 * compare keys yourself. */
static inline goim_hnode_t *
goim_hash_chain(const goim_hash_t *h, uint32_t hv)
{
    return h->buckets[hv & h->mask];
}

/* Calls fn on every node; fn may remove (and free) the node it is given. */
void goim_hash_each(goim_hash_t *h, void (*fn)(goim_hnode_t *node,
    void *arg), void *arg);

/* Bytes the bucket array takes (for memory statistics). */
size_t goim_hash_bytes(const goim_hash_t *h);

uint32_t goim_hash_bytes_fnv(const void *data, size_t len);
uint32_t goim_hash_str(const char *s);
uint32_t goim_hash_u64(uint64_t v);

#pragma GCC visibility pop

#endif /* GOIM_UV_HASH_H */
