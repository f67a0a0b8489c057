/*
 * goim-job's comet directory: which comets exist and where they take
 * pushes, as goim-router's registry says (ROUTER_COMET_LIST), with one
 * RPC client per comet, kept across refreshes.
 *
 * The list is fetched at start, every comet_refresh seconds, and on
 * demand: a push naming a comet job does not know waits (job_comets_wait)
 * for a list fetched after it arrived, since a comet registers before its
 * first client can connect.  One fetch is in flight at a time; waiters
 * arriving meanwhile wait for the next one, which starts as soon as the
 * current one ends.
 */

#include <stdlib.h>
#include <string.h>

#include "goim_uv_log.h"
#include "job.h"


static void job_refresh_start(void);


job_comet_t *
job_comets_find(const char *id)
{
    goim_queue_t  *q;
    job_comet_t   *cm;

    for (q = goim_queue_head(&job.comets); q != &job.comets; q = q->next) {
        cm = goim_queue_data(q, job_comet_t, queue);

        if (strcmp(cm->id, id) == 0) {
            return cm;
        }
    }

    return NULL;
}


static void
job_comet_free(job_comet_t *cm)
{
    goim_queue_remove(&cm->queue);
    job.ncomets--;

    /* fails the pushes still waiting on it: their callbacks run now */
    if (cm->client) {
        goim_rpc_client_close(cm->client);
    }

    job_push_comet_gone(cm);

    free(cm->id);
    free(cm->push_addr);
    free(cm);
}


static job_comet_t *
job_comet_add(const char *id, const char *push_addr)
{
    job_comet_t             *cm;
    goim_rpc_client_opts_t   opts;

    cm = calloc(1, sizeof(job_comet_t));
    if (cm == NULL) {
        return NULL;
    }

    goim_queue_init(&cm->waiting);
    cm->id = strdup(id);
    cm->push_addr = strdup(push_addr);
    goim_daemon_client_opts(&opts);
    cm->client = goim_rpc_client_create(job.loop, push_addr, &opts);

    if (cm->id == NULL || cm->push_addr == NULL || cm->client == NULL) {
        if (cm->client) {
            goim_rpc_client_close(cm->client);
        }

        free(cm->id);
        free(cm->push_addr);
        free(cm);
        return NULL;
    }

    goim_queue_insert_tail(&job.comets, &cm->queue);
    job.ncomets++;

    return cm;
}


static void
job_comets_update(const Goim__CometListReply *list)
{
    size_t            i;
    goim_queue_t     *q, *next;
    job_comet_t      *cm;
    goim_rpc_client_t *client, *old;
    Goim__CometInfo  *info;
    goim_rpc_client_opts_t  opts;

    for (q = goim_queue_head(&job.comets); q != &job.comets; q = q->next) {
        goim_queue_data(q, job_comet_t, queue)->seen = 0;
    }

    for (i = 0; i < list->n_comets; i++) {
        info = list->comets[i];

        if (info->id[0] == '\0' || info->push_addr[0] == '\0') {
            goim_log_debug("comet list: skipping \"%s\" without a push "
                           "address", info->id);
            continue;
        }

        cm = job_comets_find(info->id);

        if (cm && strcmp(cm->push_addr, info->push_addr) != 0) {
            goim_log_info("comet %s moved from %s to %s", cm->id,
                          cm->push_addr, info->push_addr);

            goim_daemon_client_opts(&opts);
            client = goim_rpc_client_create(job.loop, info->push_addr,
                                            &opts);
            if (client == NULL) {
                continue;                   /* logged; keep the old one */
            }

            /*
             * Swapped first: closing the old client fails its calls at
             * once, and their callbacks start the deliveries waiting for
             * the comet's window, which must go to the new address (on
             * the closed client they failed for good).
             */
            old = cm->client;
            cm->client = client;
            goim_rpc_client_close(old);

            free(cm->push_addr);
            cm->push_addr = strdup(info->push_addr);

            if (cm->push_addr == NULL) {
                job_comet_free(cm);
                continue;
            }

        } else if (cm == NULL) {
            cm = job_comet_add(info->id, info->push_addr);
            if (cm == NULL) {
                goim_log_error("cannot add comet %s at %s", info->id,
                               info->push_addr);
                continue;
            }

            goim_log_info("comet %s at %s", cm->id, cm->push_addr);
        }

        cm->seen = 1;
    }

    for (q = goim_queue_head(&job.comets); q != &job.comets; q = next) {
        next = q->next;
        cm = goim_queue_data(q, job_comet_t, queue);

        if (!cm->seen) {
            goim_log_info("comet %s is gone", cm->id);
            job_comet_free(cm);
        }
    }
}


/* Runs the waiters of list (moved out of job first: ready() may wait
 * again, or start a refresh). */
static void
job_waiters_run(goim_queue_t *list)
{
    goim_queue_t   local, *q;
    job_wait_t    *w;

    goim_queue_init(&local);
    goim_queue_move(list, &local);

    while (!goim_queue_empty(&local)) {
        q = goim_queue_head(&local);
        goim_queue_remove(q);

        w = goim_queue_data(q, job_wait_t, queue);
        job.stats.waiting--;
        w->ready(w);
    }
}


static void
job_refresh_done(void *data, int status, const ProtobufCMessage *reply,
    const char *message)
{
    (void) data;

    job.refresh_call = NULL;

    if (status == 0) {
        job.stats.refreshes++;

        if (job.refresh_failing) {
            job.refresh_failing = 0;
            goim_log_info("comet list: router answers again");
        }

        job_comets_update((const Goim__CometListReply *) reply);

    } else {
        job.stats.refresh_failures++;

        /* one line when it starts failing, not one per period */
        if (!job.refresh_failing) {
            job.refresh_failing = 1;
            goim_log_warn("comet list: %s (keeping the %zu comets known)",
                          message, job.ncomets);

        } else {
            goim_log_debug("comet list: %s", message);
        }
    }

    job_waiters_run(&job.wait_inflight);

    if (!goim_queue_empty(&job.wait_next)) {
        job_refresh_start();
    }
}


static void
job_refresh_start(void)
{
    if (job.refresh_call || job.stopping) {
        return;
    }

    goim_queue_move(&job.wait_next, &job.wait_inflight);

    job.refresh_call = goim_rpc_call(job.router,
                                     GOIM__METHOD__ROUTER_COMET_LIST, NULL,
                                     (uint64_t) job.conf->router_timeout
                                     * 1000,
                                     job_refresh_done, NULL);

    if (job.refresh_call == NULL) {
        goim_log_error("comet list: out of memory");
        job_waiters_run(&job.wait_inflight);
    }
}


static void
job_refresh_timer(uv_timer_t *t)
{
    (void) t;

    job_refresh_start();
}


void
job_comets_wait(job_wait_t *w)
{
    job.stats.waiting++;
    goim_queue_insert_tail(&job.wait_next, &w->queue);

    if (job.stopping) {
        job_waiters_run(&job.wait_next);
        return;
    }

    job_refresh_start();
}


int
job_comets_start(void)
{
    uint64_t                period;
    goim_rpc_client_opts_t  opts;

    goim_queue_init(&job.comets);
    goim_queue_init(&job.wait_next);
    goim_queue_init(&job.wait_inflight);

    goim_daemon_client_opts(&opts);
    job.router = goim_rpc_client_create(job.loop, job.conf->router, &opts);
    if (job.router == NULL) {
        return -1;
    }

    period = (uint64_t) job.conf->comet_refresh * 1000;

    uv_timer_init(job.loop, &job.refresh_timer);
    uv_timer_start(&job.refresh_timer, job_refresh_timer, period, period);

    job_refresh_start();

    return 0;
}


void
job_comets_reload(void)
{
    uint64_t  period;

    period = (uint64_t) job.conf->comet_refresh * 1000;

    if (uv_timer_get_repeat(&job.refresh_timer) != period) {
        uv_timer_start(&job.refresh_timer, job_refresh_timer, period,
                       period);
    }
}


void
job_comets_stop(void)
{
    job.stopping = 1;

    uv_close((uv_handle_t *) &job.refresh_timer, NULL);

    /* fails the fetch in flight, whose waiters then find job stopping */
    goim_rpc_client_close(job.router);
    job.router = NULL;

    job_waiters_run(&job.wait_inflight);
    job_waiters_run(&job.wait_next);

    while (!goim_queue_empty(&job.comets)) {
        job_comet_free(goim_queue_data(goim_queue_head(&job.comets),
                                       job_comet_t, queue));
    }
}
