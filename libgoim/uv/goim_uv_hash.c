/*
 * Intrusive chained hash table (see goim_uv_hash.h).
 */

#include <stdlib.h>
#include <string.h>

#include "goim_uv_hash.h"


#define GOIM_HASH_MIN  16


int
goim_hash_init(goim_hash_t *h, size_t hint, goim_hash_pt hash)
{
    size_t  n;

    for (n = GOIM_HASH_MIN; n < hint; n <<= 1) { /* void */ }

    h->buckets = calloc(n, sizeof(goim_hnode_t *));
    if (h->buckets == NULL) {
        return -1;
    }

    h->mask = n - 1;
    h->count = 0;
    h->hash = hash;

    return 0;
}


void
goim_hash_free(goim_hash_t *h)
{
    free(h->buckets);
    h->buckets = NULL;
    h->mask = 0;
    h->count = 0;
}


static void
goim_hash_grow(goim_hash_t *h)
{
    size_t          i, n;
    goim_hnode_t  **b, *node, *next;

    n = (h->mask + 1) * 2;

    b = calloc(n, sizeof(goim_hnode_t *));
    if (b == NULL) {
        return;                     /* keep going with longer chains */
    }

    for (i = 0; i <= h->mask; i++) {
        for (node = h->buckets[i]; node; node = next) {
            next = node->next;
            node->next = b[h->hash(node) & (n - 1)];
            b[h->hash(node) & (n - 1)] = node;
        }
    }

    free(h->buckets);
    h->buckets = b;
    h->mask = n - 1;
}


void
goim_hash_insert(goim_hash_t *h, goim_hnode_t *node, uint32_t hv)
{
    goim_hnode_t  **b;

    if (h->count > h->mask) {
        goim_hash_grow(h);
    }

    b = &h->buckets[hv & h->mask];
    node->next = *b;
    *b = node;
    h->count++;
}


int
goim_hash_remove(goim_hash_t *h, goim_hnode_t *node, uint32_t hv)
{
    goim_hnode_t  **p;

    for (p = &h->buckets[hv & h->mask]; *p; p = &(*p)->next) {
        if (*p == node) {
            *p = node->next;
            node->next = NULL;
            h->count--;
            return 1;
        }
    }

    return 0;
}


void
goim_hash_each(goim_hash_t *h, void (*fn)(goim_hnode_t *node, void *arg),
    void *arg)
{
    size_t         i;
    goim_hnode_t  *node, *next;

    if (h->buckets == NULL) {
        return;
    }

    for (i = 0; i <= h->mask; i++) {
        for (node = h->buckets[i]; node; node = next) {
            next = node->next;
            fn(node, arg);
        }
    }
}


size_t
goim_hash_bytes(const goim_hash_t *h)
{
    return h->buckets ? (h->mask + 1) * sizeof(goim_hnode_t *) : 0;
}


uint32_t
goim_hash_bytes_fnv(const void *data, size_t len)
{
    uint32_t        hv;
    const uint8_t  *p;

    /* FNV-1a */
    hv = 2166136261u;

    for (p = data; len; len--, p++) {
        hv ^= *p;
        hv *= 16777619u;
    }

    /* a final mix, so the low bits the buckets use depend on every byte */
    hv ^= hv >> 15;
    hv *= 0x2c1b3c6du;
    hv ^= hv >> 12;

    return hv;
}


uint32_t
goim_hash_str(const char *s)
{
    return goim_hash_bytes_fnv(s, strlen(s));
}


uint32_t
goim_hash_u64(uint64_t v)
{
    /* splitmix64's finaliser */
    v ^= v >> 30;
    v *= 0xbf58476d1ce4e5b9ull;
    v ^= v >> 27;
    v *= 0x94d049bb133111ebull;
    v ^= v >> 31;

    return (uint32_t) v;
}
