/*
 * Table-driven configuration of the daemons, Redis-style: each daemon
 * describes its options once (name, type, where it lives in its conf
 * struct, default, bounds, whether SIGHUP applies it, help), and the same
 * table reads the libconfig file, the command-line flags and prints the
 * usage.  An option "session_ttl" is the key session_ttl in the file and
 * the flag --session-ttl on the command line.
 */

#ifndef GOIM_UV_CONF_H
#define GOIM_UV_CONF_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

typedef enum {
    GOIM_OPT_STRING = 0,         /* char *, malloc'd */
    GOIM_OPT_ADDR,               /* char *, "host:port" */
    GOIM_OPT_INT,                /* int64_t within [min, max] */
    GOIM_OPT_LEVEL               /* int, a goim_log_level_t */
} goim_opt_type_t;

typedef struct {
    const char       *name;      /* NULL ends a table */
    goim_opt_type_t   type;
    size_t            offset;    /* in the daemon's conf struct */
    const char       *def;       /* default, written as on the command line */
    int64_t           min;
    int64_t           max;
    unsigned          reload;    /* SIGHUP applies a new value */
    const char       *help;
} goim_opt_t;


/* Each returns 0, or -1 with one line of explanation in err. */

int goim_conf_defaults(const goim_opt_t *opts, void *conf, char *err,
    size_t errlen);

/* Parses value (text) into the option's field. */
int goim_conf_set(const goim_opt_t *opt, void *conf, const char *value,
    char *err, size_t errlen);

/* Reads a libconfig file: top-level settings named after the options. */
int goim_conf_file(const goim_opt_t *opts, void *conf, const char *path,
    char *err, size_t errlen);

/* The option whose flag is --flag (flag given without the dashes). */
const goim_opt_t *goim_conf_flag(const goim_opt_t *opts, const char *flag);

/* Copies the values of reloadable options from src to dst (strings are
 * moved: src loses them). */
void goim_conf_copy_reloadable(const goim_opt_t *opts, void *dst,
    void *src);

/* 1 when option o has the same value in a and b. */
int goim_conf_equal(const goim_opt_t *o, const void *a, const void *b);

/* Frees the strings of conf. */
void goim_conf_free(const goim_opt_t *opts, void *conf);

/* Prints one usage line per option to stdout. */
void goim_conf_usage(const goim_opt_t *opts);

#pragma GCC visibility pop

#endif /* GOIM_UV_CONF_H */
