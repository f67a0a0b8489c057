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
            router_comet_free(rc, cm);
            n++;
        }
    }

    rc->expired += n;

    return n;
}


/* ---- summed room counts ------------------------------------------------- */

typedef struct {
    goim_hnode_t                           node;
    uint32_t                               hash;
    Goim__CometRenewReply__AllRoomCountEntry  entry;
} router_room_sum_t;


static uint32_t
router_room_sum_hash(const goim_hnode_t *n)
{
    return ((const router_room_sum_t *) n)->hash;
}


int
router_comets_room_counts(router_comets_t *rc, Goim__CometRenewReply *reply)
{
    size_t                                     i, total, used;
    uint32_t                                   hv;
    goim_hash_t                                h;
    goim_hnode_t                              *n;
    goim_queue_t                              *q;
    router_comet_t                            *cm;
    router_room_sum_t                         *sums, *sum;
    Goim__CometRenewReq__RoomCountEntry       *in;
    Goim__CometRenewReply__AllRoomCountEntry **out;

    reply->n_all_room_count = 0;
    reply->all_room_count = NULL;

    total = 0;

    for (q = goim_queue_head(&rc->list); q != &rc->list; q = q->next) {
        cm = goim_queue_data(q, router_comet_t, queue);
        total += cm->renew->n_room_count;
    }

    if (total == 0) {
        return 0;
    }

    /* one block: the pointer array the reply wants, then the entries */

    out = malloc(total * (sizeof(*out) + sizeof(router_room_sum_t)));
    if (out == NULL) {
        return -1;
    }

    sums = (router_room_sum_t *) (out + total);

    if (goim_hash_init(&h, total, router_room_sum_hash) != 0) {
        free(out);
        return -1;
    }

    used = 0;

    for (q = goim_queue_head(&rc->list); q != &rc->list; q = q->next) {
        cm = goim_queue_data(q, router_comet_t, queue);

        for (i = 0; i < cm->renew->n_room_count; i++) {
            in = cm->renew->room_count[i];
            hv = goim_hash_str(in->key);

            for (n = goim_hash_chain(&h, hv); n; n = n->next) {
                sum = (router_room_sum_t *) n;

                if (sum->hash == hv && strcmp(sum->entry.key, in->key) == 0)
                {
                    break;
                }
            }

            if (n) {
                sum->entry.value += in->value;
                continue;
            }

            sum = &sums[used];
            goim__comet_renew_reply__all_room_count_entry__init(&sum->entry);
            sum->hash = hv;
            sum->entry.key = in->key;
            sum->entry.value = in->value;
            goim_hash_insert(&h, &sum->node, hv);

            out[used++] = &sum->entry;
        }
    }

    goim_hash_free(&h);

    reply->n_all_room_count = used;
    reply->all_room_count = out;

    return 0;
}


void
router_comets_room_counts_free(Goim__CometRenewReply *reply)
{
    free(reply->all_room_count);
    reply->all_room_count = NULL;
    reply->n_all_room_count = 0;
}
