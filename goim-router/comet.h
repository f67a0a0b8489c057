/*
 * goim-router's comet registry: the comets that renewed lately, with what
 * they said about themselves (CometInfo) and their room counts.
 *
 * A comet registers and stays registered by renewing (ROUTER_COMET_RENEW,
 * sent for it by logic every 10 s in goim); one that has not renewed for
 * comet_ttl is dropped, and with it (through on_remove) every session
 * the store holds on it.  Comets are few (tens), so they are kept in a
 * list; each entry owns the last renewal request it got, so the registry
 * answers ROUTER_COMET_LIST with pointers into those messages.
 *
 * A live comet's push address is its own: a renewal of its id with
 * another push address is refused (job would send that comet's pushes
 * there) until the registration expires or is deleted.
 */

#ifndef ROUTER_COMET_H
#define ROUTER_COMET_H

#include <stddef.h>
#include <stdint.h>

#include "goim_rpc.h"
#include "goim_uv_queue.h"

typedef struct {
    goim_queue_t          queue;
    Goim__CometRenewReq  *renew;     /* owned; renew->comet is set */
    uint64_t              renewed;   /* ms, monotonic */
} router_comet_t;

typedef struct {
    goim_queue_t          list;
    size_t                count;
    uint64_t              expired;
    uint64_t              ttl;       /* ms a registration lives */
    uint64_t              takeovers; /* renewals refused: another address */

    /* called as a comet leaves (del or expiry), to drop its sessions */
    void                (*on_remove)(const char *id, void *arg);
    void                 *arg;
} router_comets_t;


void router_comets_init(router_comets_t *rc);
void router_comets_free(router_comets_t *rc);

router_comet_t *router_comets_find(router_comets_t *rc, const char *id);

/*
 * Takes req (unpacked with the default allocator, req->comet set, a
 * non-empty id) as the comet's latest state.  Returns 1 for a comet new to
 * the registry, 0 for a renewal, -1 when memory ran out (req is freed),
 * ROUTER_COMET_TAKEOVER when the id is live with another push address
 * (req is freed, the registration stays as it was).
 */
#define ROUTER_COMET_TAKEOVER  (-2)

int router_comets_renew(router_comets_t *rc, Goim__CometRenewReq *req,
    uint64_t now, int64_t wall_ms);

/* 1 when id was registered (and is no more), else 0. */
int router_comets_del(router_comets_t *rc, const char *id);

/* Drops comets not renewed within ttl ms; returns how many. */
size_t router_comets_expire(router_comets_t *rc, uint64_t now, uint64_t ttl);

#endif /* ROUTER_COMET_H */
