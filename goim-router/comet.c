/*
 * goim-router's comet registry (see comet.h).
 */

#include <stdlib.h>
#include <string.h>

#include "comet.h"
#include "goim_uv_hash.h"
#include "goim_uv_log.h"


void
router_comets_init(router_comets_t *rc)
{
    goim_queue_init(&rc->list);
    rc->count = 0;
    rc->expired = 0;
    rc->ttl = 30000;
    rc->takeovers = 0;
    rc->on_remove = NULL;
    rc->arg = NULL;
}


static void
router_comet_free(router_comets_t *rc, router_comet_t *cm)
{
    goim_queue_remove(&cm->queue);
    protobuf_c_message_free_unpacked(&cm->renew->base, NULL);
    free(cm);
    rc->count--;
}


void
router_comets_free(router_comets_t *rc)
{
    while (!goim_queue_empty(&rc->list)) {
        router_comet_free(rc, goim_queue_data(goim_queue_head(&rc->list),
                                              router_comet_t, queue));
    }
}


router_comet_t *
router_comets_find(router_comets_t *rc, const char *id)
{
    goim_queue_t    *q;
    router_comet_t  *cm;

    for (q = goim_queue_head(&rc->list); q != &rc->list; q = q->next) {
        cm = goim_queue_data(q, router_comet_t, queue);

        if (strcmp(cm->renew->comet->id, id) == 0) {
            return cm;
        }
    }

    return NULL;
}


int
router_comets_renew(router_comets_t *rc, Goim__CometRenewReq *req,
    uint64_t now, int64_t wall_ms)
{
    int              created;
    router_comet_t  *cm;

    req->comet->updated_ms = wall_ms;

    cm = router_comets_find(rc, req->comet->id);
    created = cm == NULL;

    if (cm == NULL) {
        cm = calloc(1, sizeof(router_comet_t));
        if (cm == NULL) {
            protobuf_c_message_free_unpacked(&req->base, NULL);
            return -1;
        }

        goim_queue_insert_tail(&rc->list, &cm->queue);
        rc->count++;

        goim_log_info("comet %s registered (push %s)", req->comet->id,
                      req->comet->push_addr);

    } else {
        if (strcmp(cm->renew->comet->push_addr, req->comet->push_addr)) {
            if (now - cm->renewed < rc->ttl) {
                goim_log_warn("comet %s: refusing a renewal with push "
                              "address %s: it is live at %s (another "
                              "address is taken once it expires)",
                              req->comet->id, req->comet->push_addr,
                              cm->renew->comet->push_addr);
                rc->takeovers++;
                protobuf_c_message_free_unpacked(&req->base, NULL);
                return ROUTER_COMET_TAKEOVER;
            }

            goim_log_info("comet %s moved its push address to %s",
                          req->comet->id, req->comet->push_addr);
        }

        protobuf_c_message_free_unpacked(&cm->renew->base, NULL);
    }

    cm->renew = req;
    cm->renewed = now;

    return created;
}


int
router_comets_del(router_comets_t *rc, const char *id)
{
    router_comet_t  *cm;

    cm = router_comets_find(rc, id);
    if (cm == NULL) {
        return 0;
    }

    goim_log_info("comet %s removed", id);

    if (rc->on_remove) {
        rc->on_remove(id, rc->arg);
    }

    router_comet_free(rc, cm);

    return 1;
}


size_t
router_comets_expire(router_comets_t *rc, uint64_t now, uint64_t ttl)
{
    size_t           n;
    goim_queue_t    *q, *next;
    router_comet_t  *cm;

    n = 0;

    for (q = goim_queue_head(&rc->list); q != &rc->list; q = next) {
        next = q->next;
        cm = goim_queue_data(q, router_comet_t, queue);

        if (now - cm->renewed >= ttl) {
            goim_log_info("comet %s expired: no renewal for %llu ms",
                          cm->renew->comet->id,
                          (unsigned long long) (now - cm->renewed));

            if (rc->on_remove) {
                rc->on_remove(cm->renew->comet->id, rc->arg);
            }

            router_comet_free(rc, cm);
            n++;
        }
    }

    rc->expired += n;

    return n;
}
