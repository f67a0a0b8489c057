/*
 * The life of a daemon (see goim_uv_daemon.h): command line, configuration
 * and its reload, the RPC listener, signals, the event loop and a clean
 * exit, and the --stats client.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "goim_uv_daemon.h"
#include "goim_uv_log.h"


typedef struct {
    const goim_opt_t         *opt;
    const char               *value;
    char                      flag[64];  /* as written: --session-ttl */
} goim_daemon_flag_t;

typedef struct {
    const goim_daemon_t      *d;
    uv_loop_t                 loop;
    goim_rpc_server_t        *server;
    void                     *conf;
    const char               *conf_file;
    goim_daemon_flag_t       *flags;
    int                       nflags;
    uv_signal_t               sigterm;
    uv_signal_t               sigint;
    uv_signal_t               sighup;
    uint64_t                  started;
    goim_auth_secret_t        secret;    /* len 0: none */
    unsigned                  stopping:1;
    unsigned                  signals:1;   /* the uv_signal_t are set up */
} goim_daemon_state_t;

static goim_daemon_state_t  goim_daemon;


goim_rpc_server_t *
goim_daemon_server(void)
{
    return goim_daemon.server;
}


void
goim_daemon_client_opts(goim_rpc_client_opts_t *o)
{
    goim_daemon_conf_t  *base;

    memset(o, 0, sizeof(*o));

    base = goim_daemon.conf;

    if (goim_daemon.secret.len) {
        o->secret = &goim_daemon.secret;
    }

    if (base) {
        o->auth_timeout = (uint64_t) base->rpc_auth_timeout;
    }
}


/*
 * Without a secret anyone who reaches the listener can call every method:
 * only a loopback listener is allowed then.
 */
static int
goim_daemon_check_plane(goim_daemon_conf_t *base, char *err, size_t errlen)
{
    int                      rc;
    struct sockaddr_storage  ss;

    if (base->rpc_secret_file[0] != '\0') {
        return 0;
    }

    rc = goim_uv_addr_resolve(base->listen, &ss);
    if (rc != 0) {
        snprintf(err, errlen, "listen: cannot resolve \"%s\": %s",
                 base->listen, uv_strerror(rc));
        return -1;
    }

    if (!goim_auth_is_loopback(&ss)) {
        snprintf(err, errlen, "listen: \"%s\" is not a loopback address "
                 "and no rpc_secret_file is set: anyone reaching it could "
                 "call every method (set rpc_secret_file, or listen on "
                 "127.0.0.1)", base->listen);
        return -1;
    }

    return 0;
}


int64_t
goim_daemon_wall_ms(void)
{
    struct timeval  tv;

    gettimeofday(&tv, NULL);

    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


/* ---- command line and configuration ------------------------------------- */

static void
goim_daemon_usage(const goim_daemon_t *d)
{
    printf("usage: %s [-c FILE] [--OPTION VALUE ...] [-t] "
           "[--stats HOST:PORT]\n\n"
           "  -c, --config FILE    libconfig file (flags override it)\n"
           "  -t, --test           check the configuration and exit\n"
           "  --stats HOST:PORT    print the counters of a running %s\n"
           "  -h, --help           this text\n\n"
           "options (config file key = flag without the dashes, "
           "'-' as '_'):\n", d->name, d->name);

    goim_conf_usage(d->opts);
}


/* 0, 1 (exit 0 now: help), or -1 with err */
static int
goim_daemon_args(goim_daemon_state_t *st, int argc, char **argv,
    int *test, const char **stats, char *err, size_t errlen)
{
    int                i;
    char              *a, *eq, name[64];
    size_t             n;
    const char        *value;
    const goim_opt_t  *o;

    st->flags = calloc((size_t) argc, sizeof(goim_daemon_flag_t));
    if (st->flags == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    for (i = 1; i < argc; i++) {
        a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            goim_daemon_usage(st->d);
            return 1;
        }

        if (strcmp(a, "-t") == 0 || strcmp(a, "--test") == 0) {
            *test = 1;
            continue;
        }

        if (strncmp(a, "--", 2) != 0 && strcmp(a, "-c") != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\" (see -h)", a);
            return -1;
        }

        /* an option with a value: "--name value" or "--name=value" */

        eq = strchr(a, '=');
        n = eq ? (size_t) (eq - a) : strlen(a);

        if (n >= sizeof(name)) {
            snprintf(err, errlen, "unknown option \"%s\" (see -h)", a);
            return -1;
        }

        memcpy(name, a, n);
        name[n] = '\0';

        if (eq) {
            value = eq + 1;

        } else if (i + 1 < argc) {
            value = argv[++i];

        } else {
            snprintf(err, errlen, "%s needs a value", name);
            return -1;
        }

        if (strcmp(name, "-c") == 0 || strcmp(name, "--config") == 0) {
            st->conf_file = value;
            continue;
        }

        if (strcmp(name, "--stats") == 0) {
            *stats = value;
            continue;
        }

        o = goim_conf_flag(st->d->opts, name + 2);
        if (o == NULL) {
            snprintf(err, errlen, "unknown option \"%s\" (see -h)", name);
            return -1;
        }

        st->flags[st->nflags].opt = o;
        st->flags[st->nflags].value = value;
        memcpy(st->flags[st->nflags].flag, name, n + 1);
        st->nflags++;
    }

    return 0;
}


/* Defaults, then the file, then the flags: a whole new configuration. */
static void *
goim_daemon_conf_load(goim_daemon_state_t *st, char *err, size_t errlen)
{
    int          i;
    char         sub[256];
    void        *conf;
    size_t       n;
    const char  *env;

    conf = calloc(1, st->d->conf_size);
    if (conf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    if (goim_conf_defaults(st->d->opts, conf, err, errlen) != 0) {
        goto failed;
    }

    env = getenv("GOIM_RPC_SECRET_FILE");

    if (env && env[0]) {
        free(((goim_daemon_conf_t *) conf)->rpc_secret_file);
        ((goim_daemon_conf_t *) conf)->rpc_secret_file = strdup(env);

        if (((goim_daemon_conf_t *) conf)->rpc_secret_file == NULL) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }
    }

    if (st->conf_file
        && goim_conf_file(st->d->opts, conf, st->conf_file, err, errlen)
           != 0)
    {
        goto failed;
    }

    for (i = 0; i < st->nflags; i++) {
        if (goim_conf_set(st->flags[i].opt, conf, st->flags[i].value, sub,
                          sizeof(sub))
            != 0)
        {
            /* "session_ttl: ..." becomes "--session-ttl: ..." */
            n = strlen(st->flags[i].opt->name);
            snprintf(err, errlen, "%s%s", st->flags[i].flag,
                     strncmp(sub, st->flags[i].opt->name, n) == 0
                     ? sub + n : sub);
            goto failed;
        }
    }

    if (st->d->check && st->d->check(conf, err, errlen) != 0) {
        goto failed;
    }

    if (goim_daemon_check_plane(conf, err, errlen) != 0) {
        goto failed;
    }

    return conf;

failed:

    goim_conf_free(st->d->opts, conf);
    free(conf);

    return NULL;
}


static void
goim_daemon_server_opts(goim_daemon_state_t *st, goim_rpc_server_opts_t *o)
{
    goim_daemon_conf_t  *base;

    base = st->conf;

    memset(o, 0, sizeof(*o));
    o->max_body = (size_t) base->max_frame;
    o->frame_timeout = (uint64_t) base->frame_timeout * 1000;
    o->secret = st->secret.len ? &st->secret : NULL;
    o->auth_timeout = (uint64_t) base->rpc_auth_timeout;
}


static void
goim_daemon_reload(goim_daemon_state_t *st)
{
    void                   *conf;
    const goim_opt_t       *o;
    goim_rpc_server_opts_t  so;
    char                    err[512];

    conf = goim_daemon_conf_load(st, err, sizeof(err));
    if (conf == NULL) {
        goim_log_error("reload failed, the running configuration stays: %s",
                       err);
        return;
    }

    for (o = st->d->opts; o->name; o++) {
        if (!o->reload && !goim_conf_equal(o, conf, st->conf)) {
            goim_log_warn("reload: a change of %s needs a restart", o->name);
        }
    }

    goim_conf_copy_reloadable(st->d->opts, st->conf, conf);
    goim_conf_free(st->d->opts, conf);
    free(conf);

    goim_log_level = ((goim_daemon_conf_t *) st->conf)->log_level;

    goim_daemon_server_opts(st, &so);
    goim_rpc_server_set_opts(st->server, &so);

    if (st->d->reload) {
        st->d->reload(st->conf);
    }

    goim_log_info("configuration reloaded");
}


/* ---- signals and shutdown ----------------------------------------------- */

static void
goim_daemon_stop(goim_daemon_state_t *st)
{
    if (st->stopping) {
        return;
    }

    st->stopping = 1;

    /*
     * The signals stay caught while the daemon drains, without keeping
     * the loop alive: closing their handles would give them back their
     * default action, and a second SIGTERM (or a SIGHUP) would kill the
     * drain half-way.  They are closed once the loop has ended.
     */
    uv_unref((uv_handle_t *) &st->sigterm);
    uv_unref((uv_handle_t *) &st->sigint);
    uv_unref((uv_handle_t *) &st->sighup);

    goim_rpc_server_close(st->server);

    if (st->d->stop) {
        st->d->stop();
    }
}


static void
goim_daemon_signal(uv_signal_t *h, int signum)
{
    goim_daemon_state_t  *st;

    st = h->data;

    if (st->stopping) {
        goim_log_info("%s while shutting down: ignored", strsignal(signum));
        return;
    }

    if (signum == SIGHUP) {
        goim_log_info("SIGHUP: reloading %s",
                      st->conf_file ? st->conf_file : "(no config file)");
        goim_daemon_reload(st);
        return;
    }

    goim_log_info("%s: shutting down", strsignal(signum));
    goim_daemon_stop(st);
}


static void
goim_daemon_close_left(uv_handle_t *h, void *arg)
{
    (void) arg;

    if (!uv_is_closing(h)) {
        goim_log_warn("a %s handle was left open at exit",
                      uv_handle_type_name(uv_handle_get_type(h)));
        uv_close(h, NULL);
    }
}


static void
goim_daemon_loop_close(uv_loop_t *loop)
{
    if (uv_loop_close(loop) == UV_EBUSY) {
        uv_walk(loop, goim_daemon_close_left, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
    }
}


/* ---- --stats ------------------------------------------------------------ */

typedef struct {
    goim_rpc_client_t  *client;
    int                 rc;
} goim_daemon_query_t;


static void
goim_daemon_stats_done(void *data, int status, const ProtobufCMessage *reply,
    const char *message)
{
    size_t                    i;
    goim_daemon_query_t      *q;
    const Goim__StatsReply   *sr;

    q = data;

    if (status == 0) {
        sr = (const Goim__StatsReply *) reply;

        for (i = 0; i < sr->n_counters; i++) {
            printf("%s=%lld\n", sr->counters[i]->key,
                   (long long) sr->counters[i]->value);
        }

        q->rc = 0;

    } else {
        fprintf(stderr, "%s\n", message);
    }

    goim_rpc_client_close(q->client);
}


static int
goim_daemon_stats_query(const goim_daemon_t *d, const char *addr)
{
    uv_loop_t               loop;
    goim_daemon_query_t     q;
    goim_rpc_client_opts_t  co;

    goim_log_level = GOIM_LOG_ERROR;
    uv_loop_init(&loop);

    /* the daemon asked has the secret of this configuration */
    goim_daemon_client_opts(&co);

    q.rc = 1;
    q.client = goim_rpc_client_create(&loop, addr, &co);

    if (q.client == NULL) {
        fprintf(stderr, "%s: --stats: \"%s\" is not host:port\n", d->name,
                addr);

    } else if (goim_rpc_call(q.client, d->stats_method, NULL, 5000,
                             goim_daemon_stats_done, &q)
               == NULL)
    {
        fprintf(stderr, "%s: out of memory\n", d->name);
        goim_rpc_client_close(q.client);
    }

    uv_run(&loop, UV_RUN_DEFAULT);
    goim_daemon_loop_close(&loop);

    return q.rc;
}


void
goim_daemon_stats_reply(goim_rpc_req_t *r, const char *const *names,
    const int64_t *values, size_t n)
{
    size_t                            i, total;
    int64_t                           extra[9];
    Goim__StatsReply                  reply = GOIM__STATS_REPLY__INIT;
    Goim__StatsReply__CountersEntry  *entries, **ptrs;
    const goim_rpc_server_stats_t    *ss;

    static const char *const  extra_names[] = {
        "uptime_s", "rpc_accepted", "rpc_connections", "rpc_requests",
        "rpc_replies", "rpc_error_replies", "rpc_bad_input", "rpc_timeouts",
        "rpc_auth_refused"
    };

    ss = goim_rpc_server_stats(goim_daemon.server);
    extra[0] = (int64_t) (uv_now(&goim_daemon.loop) - goim_daemon.started)
               / 1000;
    extra[1] = (int64_t) ss->accepted;
    extra[2] = (int64_t) ss->active;
    extra[3] = (int64_t) ss->requests;
    extra[4] = (int64_t) ss->replies;
    extra[5] = (int64_t) ss->error_replies;
    extra[6] = (int64_t) ss->bad_input;
    extra[7] = (int64_t) ss->timeouts;
    extra[8] = (int64_t) ss->auth_refused;

    total = n + 9;
    entries = calloc(total, sizeof(Goim__StatsReply__CountersEntry));
    ptrs = calloc(total, sizeof(Goim__StatsReply__CountersEntry *));

    if (entries == NULL || ptrs == NULL) {
        free(entries);
        free(ptrs);
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                             "out of memory");
        return;
    }

    for (i = 0; i < total; i++) {
        goim__stats_reply__counters_entry__init(&entries[i]);
        entries[i].key = (char *) (i < n ? names[i] : extra_names[i - n]);
        entries[i].value = i < n ? values[i] : extra[i - n];
        ptrs[i] = &entries[i];
    }

    reply.n_counters = total;
    reply.counters = ptrs;

    goim_rpc_reply(r, &reply.base);

    free(entries);
    free(ptrs);
}


/* ---- main --------------------------------------------------------------- */

int
goim_daemon_main(const goim_daemon_t *d, int argc, char **argv)
{
    int                      rc, test;
    const char              *stats;
    goim_daemon_state_t     *st;
    goim_daemon_conf_t      *base;
    goim_rpc_server_opts_t   so;
    char                     err[512];

    st = &goim_daemon;
    st->d = d;
    test = 0;
    stats = NULL;

    rc = goim_daemon_args(st, argc, argv, &test, &stats, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", d->name, err);
        }

        free(st->flags);
        return rc < 0 ? 1 : 0;
    }

    st->conf = goim_daemon_conf_load(st, err, sizeof(err));
    if (st->conf == NULL) {
        fprintf(stderr, "%s: %s\n", d->name, err);
        free(st->flags);
        return 1;
    }

    base = st->conf;

    if (base->rpc_secret_file[0] != '\0'
        && goim_auth_secret_load(&st->secret, base->rpc_secret_file, err,
                                 sizeof(err))
           != 0)
    {
        fprintf(stderr, "%s: rpc_secret_file: %s\n", d->name, err);
        goim_conf_free(d->opts, st->conf);
        free(st->conf);
        free(st->flags);
        return 1;
    }

    if (stats) {
        rc = goim_daemon_stats_query(d, stats);
        goim_conf_free(d->opts, st->conf);
        free(st->conf);
        free(st->flags);
        return rc;
    }

    if (test) {
        printf("%s: the configuration%s%s is ok\n", d->name,
               st->conf_file ? " file " : "",
               st->conf_file ? st->conf_file : "");
        goim_conf_free(d->opts, st->conf);
        free(st->conf);
        free(st->flags);
        return 0;
    }

    goim_log_level = base->log_level;
    signal(SIGPIPE, SIG_IGN);

    if (st->secret.len == 0) {
        goim_log_warn("no rpc_secret_file: the RPC plane is "
                      "unauthenticated, listening on loopback only");

    } else if (goim_auth_warmup(&st->secret) != 0) {
        goim_log_error("no random bytes for the RPC handshake's nonces");
    }

    uv_loop_init(&st->loop);
    st->started = uv_now(&st->loop);

    goim_daemon_server_opts(st, &so);
    st->server = goim_rpc_server_create(&st->loop, d->handlers, &so);

    rc = 1;

    if (st->server == NULL) {
        fprintf(stderr, "%s: out of memory\n", d->name);
        goto done;
    }

    if (goim_rpc_server_listen(st->server, base->listen) != 0) {
        goim_rpc_server_close(st->server);
        goto run;
    }

    if (d->start(&st->loop, st->conf) != 0) {
        goim_rpc_server_close(st->server);

        if (d->stop) {
            d->stop();
        }

        goto run;
    }

    uv_signal_init(&st->loop, &st->sigterm);
    uv_signal_init(&st->loop, &st->sigint);
    uv_signal_init(&st->loop, &st->sighup);
    st->sigterm.data = st;
    st->sigint.data = st;
    st->sighup.data = st;
    uv_signal_start(&st->sigterm, goim_daemon_signal, SIGTERM);
    uv_signal_start(&st->sigint, goim_daemon_signal, SIGINT);
    uv_signal_start(&st->sighup, goim_daemon_signal, SIGHUP);
    st->signals = 1;

    goim_log_info("%s started (log level %s)", d->name,
                  goim_log_level_name(goim_log_level));
    rc = 0;

run:

    uv_run(&st->loop, UV_RUN_DEFAULT);

    if (st->signals) {
        uv_close((uv_handle_t *) &st->sigterm, NULL);
        uv_close((uv_handle_t *) &st->sigint, NULL);
        uv_close((uv_handle_t *) &st->sighup, NULL);

        /* closing restored their default action: exiting 0 anyway */
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
    }

    if (rc == 0) {
        goim_log_info("%s exited", d->name);
    }

done:

    goim_daemon_loop_close(&st->loop);
    goim_conf_free(d->opts, st->conf);
    free(st->conf);
    free(st->flags);

    return rc;
}
