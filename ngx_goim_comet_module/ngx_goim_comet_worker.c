
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


/*
 * The worker's live state, apart from configuration: made in
 * init_process, in cycle->pool, and reached from a channel (ch->worker)
 * or, where no channel is at hand (an RPC handler, the status page, a
 * callback of libgoim's), from ngx_goim_comet_worker, this process's one
 * pointer to it.
 */


ngx_goim_comet_worker_t  *ngx_goim_comet_worker;


ngx_goim_comet_worker_t *
ngx_goim_comet_worker_create(ngx_cycle_t *cycle)
{
    ngx_goim_comet_conf_t    *ccf;
    ngx_goim_comet_worker_t  *wk;

    ccf = ngx_goim_comet_get_conf(cycle);

    wk = ngx_pcalloc(cycle->pool, sizeof(ngx_goim_comet_worker_t));
    if (wk == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     wk->worker = 0;
     *     wk->next_id = 0;
     *     wk->logic_peer = NULL;
     *     wk->exiting = 0;
     *     wk->relay_connection = NULL;
     *     wk->poll = NULL;
     *     wk->free_out = NULL;
     *     wk->next_waiter = 0;
     *     wk->poll_watch = NULL;
     */

    wk->cycle = cycle;
    wk->conf = ccf;

    if (ccf->shm_zone) {
        wk->zone = ccf->shm_zone->data;
        wk->sh = wk->zone->sh;
    }

    ngx_rbtree_init(&wk->channels, &wk->sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&wk->all);
    ngx_queue_init(&wk->pacers);
    ngx_rbtree_init(&wk->rooms, &wk->room_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&wk->waiters, &wk->waiter_sentinel,
                    ngx_rbtree_insert_value);
    ngx_goim_comet_history_init(wk);

    wk->nworkers = 1;
    wk->stats = &wk->local_stats;

    ngx_queue_init(&wk->write_posted);
    wk->write_event.handler = ngx_goim_comet_output_write_posted;
    wk->write_event.data = wk;
    wk->write_event.log = cycle->log;

    ngx_goim_comet_worker = wk;

    return wk;
}


/* exit_process, after every channel has gone */

void
ngx_goim_comet_worker_destroy(ngx_goim_comet_worker_t *wk)
{
    ngx_goim_comet_history_free(wk);
    ngx_goim_comet_output_free_all(wk);
    ngx_goim_comet_deflate_free(wk);

    if (wk->logic_peer) {
        ngx_goim_rpc_peer_close(wk->logic_peer);
        wk->logic_peer = NULL;
    }
}
