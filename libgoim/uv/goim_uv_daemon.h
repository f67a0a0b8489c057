/*
 * What goim-router and goim-job have in common: the command line, the
 * configuration life cycle, the RPC listener, signals, the event loop, and
 * the --stats query.  A daemon describes itself in a goim_daemon_t and
 * its main() is one call to goim_daemon_main().
 *
 * The RPC plane: with rpc_secret_file every connection, accepted or
 * opened, runs goim_auth.h's handshake; without one, the listener may
 * only be a loopback address (anything else is a configuration error) and
 * a warning says the plane is unauthenticated.  rpc_secret_file defaults
 * to $GOIM_RPC_SECRET_FILE when that is set.
 *
 *   daemon [-c FILE] [--OPTION VALUE ...] [-t] [--stats HOST:PORT] [-h]
 *
 * Values come from the option table's defaults, then the file, then the
 * flags.  SIGTERM and SIGINT stop the daemon: the listener and every
 * connection are closed, the daemon's stop() closes its own handles, the
 * loop runs until nothing is left, and the process exits 0.  SIGHUP reads
 * the file again (flags still win) and applies the reloadable options.
 */

#ifndef GOIM_UV_DAEMON_H
#define GOIM_UV_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goim_uv_conf.h"
#include "goim_uv_rpc.h"

#pragma GCC visibility push(hidden)

/* The options every daemon has; its conf struct starts with this. */
typedef struct {
    char                      *listen;
    int                        log_level;
    int64_t                    max_frame;
    int64_t                    frame_timeout;
    char                      *rpc_secret_file;
    int64_t                    rpc_auth_timeout;
} goim_daemon_conf_t;

#define GOIM_DAEMON_OPTS(listen_default)                                      \
    { "listen", GOIM_OPT_ADDR, offsetof(goim_daemon_conf_t, listen),          \
      listen_default, 0, 0, 0, "host:port of the RPC listener" },             \
    { "log_level", GOIM_OPT_LEVEL, offsetof(goim_daemon_conf_t, log_level),   \
      "info", 0, 0, 1, "debug, info, warn or error" },                        \
    { "max_frame", GOIM_OPT_INT, offsetof(goim_daemon_conf_t, max_frame),     \
      "16777216", 1024, 1073741824, 1,                                        \
      "largest RPC frame body accepted, bytes" },                             \
    { "frame_timeout", GOIM_OPT_INT,                                          \
      offsetof(goim_daemon_conf_t, frame_timeout), "30", 1, 3600, 1,          \
      "seconds a partial RPC frame may take to arrive" },                     \
    { "rpc_secret_file", GOIM_OPT_STRING,                                     \
      offsetof(goim_daemon_conf_t, rpc_secret_file), "", 0, 0, 0,             \
      "shared secret every RPC peer must prove; empty: loopback only" },      \
    { "rpc_auth_timeout", GOIM_OPT_INT,                                       \
      offsetof(goim_daemon_conf_t, rpc_auth_timeout), "5000", 1, 3600000, 1,  \
      "ms an RPC peer has to finish the authentication handshake" }

typedef struct {
    const char                *name;       /* "goim-router" */
    const goim_opt_t          *opts;       /* GOIM_DAEMON_OPTS first */
    size_t                     conf_size;
    const goim_rpc_handler_t  *handlers;
    int32_t                    stats_method;

    /* Validates a whole configuration (optional); 0 or -1 with err. */
    int                      (*check)(void *conf, char *err, size_t errlen);
    /* Starts the daemon's own work once the listener is up; 0 or -1. */
    int                      (*start)(uv_loop_t *loop, void *conf);
    /* The reloadable options of conf changed (SIGHUP). */
    void                     (*reload)(void *conf);
    /* Closes the daemon's handles and frees its state (SIGTERM). */
    void                     (*stop)(void);
} goim_daemon_t;

int goim_daemon_main(const goim_daemon_t *d, int argc, char **argv);

/* The listener, for statistics. */
goim_rpc_server_t *goim_daemon_server(void);

/* The options of the daemon's own RPC clients: the secret (or none) and
 * the handshake's timeout, as the listener has them. */
void goim_daemon_client_opts(goim_rpc_client_opts_t *o);

/* Wall-clock milliseconds. */
int64_t goim_daemon_wall_ms(void);

/*
 * Replies to a stats request with names[i] = values[i], followed by the
 * RPC listener's own counters (rpc_*).
 */
void goim_daemon_stats_reply(goim_rpc_req_t *r, const char *const *names,
    const int64_t *values, size_t n);

#pragma GCC visibility pop

#endif /* GOIM_UV_DAEMON_H */
