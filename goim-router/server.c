/*
 * goim-router's server: the one global struct and its life cycle.  The
 * store and registry come up at start, one timer expires sessions and
 * comets every second, SIGHUP applies a new session_ttl, and stop frees
 * it all.
 */

#include <stdlib.h>

#include "goim_uv_log.h"
#include "router.h"


#define ROUTER_EXPIRE_PERIOD  1000      /* ms */

router_server_t  router;


/*
 * A comet left (CometDel or no renewal): its sessions go with it.  The
 * comets leaving together are swept in one walk (router_comets_sweep).
 */
static void
router_comet_removed(const char *id, void *arg)
{
    size_t  n;

    (void) arg;

    n = router_store_mark_server(&router.store, id);

    goim_log_info("comet %s: %zu sessions to drop with it", id, n);
}


void
router_comets_sweep(void)
{
    size_t  n;

    if (router.store.marked == 0) {
        return;
    }

    n = router_store_sweep(&router.store);
    router.stats.comet_sessions_dropped += n;

    goim_log_info("%zu sessions dropped with their comets, %zu left", n,
                  router_store_count(&router.store));
}


static void
router_expire(uv_timer_t *t)
{
    size_t    n;
    uint64_t  now;

    (void) t;

    now = uv_now(router.loop);

    n = router_store_expire(&router.store, now,
                            (size_t) router.conf->expire_batch);
    if (n) {
        goim_log_debug("%zu sessions expired, %zu left", n,
                       router_store_count(&router.store));
    }

    router_comets_expire(&router.comets, now,
                         (uint64_t) router.conf->comet_ttl * 1000);
    router_comets_sweep();

    if (n == (size_t) router.conf->expire_batch) {
        /* more are due: go on soon, letting requests in between */
        uv_timer_start(&router.expire_timer, router_expire, 1,
                       ROUTER_EXPIRE_PERIOD);
    }
}


int
router_start(uv_loop_t *loop, void *conf)
{
    router.conf = conf;
    router.loop = loop;

    if (router_store_init(&router.store, uv_now(loop),
                          (uint64_t) router.conf->session_ttl * 1000)
        != 0)
    {
        goim_log_error("out of memory");
        return -1;
    }

    router_comets_init(&router.comets);
    router.comets.on_remove = router_comet_removed;
    router.comets.ttl = (uint64_t) router.conf->comet_ttl * 1000;

    uv_timer_init(loop, &router.expire_timer);
    uv_timer_start(&router.expire_timer, router_expire, ROUTER_EXPIRE_PERIOD,
                   ROUTER_EXPIRE_PERIOD);

    router.started = 1;

    goim_log_info("session ttl %lld s, comet ttl %lld s",
                  (long long) router.conf->session_ttl,
                  (long long) router.conf->comet_ttl);

    return 0;
}


void
router_reload(void *conf)
{
    router.conf = conf;
    router_store_set_ttl(&router.store,
                         (uint64_t) router.conf->session_ttl * 1000);
    router.comets.ttl = (uint64_t) router.conf->comet_ttl * 1000;

    goim_log_info("session ttl %lld s, comet ttl %lld s",
                  (long long) router.conf->session_ttl,
                  (long long) router.conf->comet_ttl);
}


void
router_stop(void)
{
    if (!router.started) {
        return;
    }

    router.started = 0;

    uv_close((uv_handle_t *) &router.expire_timer, NULL);

    goim_log_info("dropping %zu sessions and %zu comets",
                  router_store_count(&router.store), router.comets.count);

    router_store_free(&router.store);
    router_comets_free(&router.comets);
}


