/*
 * Table-driven configuration (see goim_uv_conf.h): defaults, the libconfig
 * file and command-line values all go through goim_conf_set(), so a bound
 * is checked the same way wherever a value comes from.
 */

#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_uv_conf.h"
#include "goim_uv_log.h"
#include "goim_uv_rpc.h"


#define GOIM_CONF_FIELD(conf, opt, type)                                      \
    ((type *) ((char *) (conf) + (opt)->offset))


int
goim_conf_set(const goim_opt_t *opt, void *conf, const char *value,
    char *err, size_t errlen)
{
    int        level, port;
    char      *end, *s, host[256];
    long long  n;

    switch (opt->type) {

    case GOIM_OPT_ADDR:
        if (goim_uv_addr_split(value, host, sizeof(host), &port) != 0) {
            snprintf(err, errlen, "%s: \"%s\" is not host:port", opt->name,
                     value);
            return -1;
        }

        /* fall through */

    case GOIM_OPT_STRING:
        s = strdup(value);
        if (s == NULL) {
            snprintf(err, errlen, "%s: out of memory", opt->name);
            return -1;
        }

        free(*GOIM_CONF_FIELD(conf, opt, char *));
        *GOIM_CONF_FIELD(conf, opt, char *) = s;
        return 0;

    case GOIM_OPT_INT:
        errno = 0;
        n = strtoll(value, &end, 10);

        if (errno || end == value || *end != '\0') {
            snprintf(err, errlen, "%s: \"%s\" is not a number", opt->name,
                     value);
            return -1;
        }

        if (n < opt->min || n > opt->max) {
            snprintf(err, errlen, "%s: %lld is out of range %" PRId64
                     "..%" PRId64, opt->name, n, opt->min, opt->max);
            return -1;
        }

        *GOIM_CONF_FIELD(conf, opt, int64_t) = n;
        return 0;

    case GOIM_OPT_LEVEL:
        level = goim_log_level_parse(value);
        if (level < 0) {
            snprintf(err, errlen, "%s: \"%s\" is not one of debug, info, "
                     "warn, error", opt->name, value);
            return -1;
        }

        *GOIM_CONF_FIELD(conf, opt, int) = level;
        return 0;
    }

    snprintf(err, errlen, "%s: bad option type", opt->name);
    return -1;
}


int
goim_conf_defaults(const goim_opt_t *opts, void *conf, char *err,
    size_t errlen)
{
    const goim_opt_t  *o;

    for (o = opts; o->name; o++) {
        if (goim_conf_set(o, conf, o->def, err, errlen) != 0) {
            return -1;
        }
    }

    return 0;
}


static const goim_opt_t *
goim_conf_find(const goim_opt_t *opts, const char *name)
{
    const goim_opt_t  *o;

    for (o = opts; o->name; o++) {
        if (strcmp(o->name, name) == 0) {
            return o;
        }
    }

    return NULL;
}


const goim_opt_t *
goim_conf_flag(const goim_opt_t *opts, const char *flag)
{
    char    name[64];
    size_t  i;

    for (i = 0; flag[i] && i < sizeof(name) - 1; i++) {
        name[i] = flag[i] == '-' ? '_' : flag[i];
    }

    name[i] = '\0';

    return goim_conf_find(opts, name);
}


int
goim_conf_file(const goim_opt_t *opts, void *conf, const char *path,
    char *err, size_t errlen)
{
    int                rc, i, n;
    char               text[32], sub[200];
    const char        *name, *value;
    config_t           cfg;
    config_setting_t  *root, *set;
    const goim_opt_t  *o;

    config_init(&cfg);

    if (config_read_file(&cfg, path) != CONFIG_TRUE) {
        if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO) {
            snprintf(err, errlen, "cannot read %s: %s", path,
                     strerror(errno));

        } else {
            snprintf(err, errlen, "%s:%d: %s", path,
                     config_error_line(&cfg), config_error_text(&cfg));
        }

        config_destroy(&cfg);
        return -1;
    }

    rc = 0;
    root = config_root_setting(&cfg);
    n = config_setting_length(root);

    for (i = 0; i < n && rc == 0; i++) {
        set = config_setting_get_elem(root, (unsigned) i);
        name = config_setting_name(set);

        o = goim_conf_find(opts, name);
        if (o == NULL) {
            snprintf(err, errlen, "%s:%d: unknown setting \"%s\"", path,
                     config_setting_source_line(set), name);
            rc = -1;
            break;
        }

        switch (config_setting_type(set)) {

        case CONFIG_TYPE_STRING:
            value = config_setting_get_string(set);
            if (o->type == GOIM_OPT_INT) {
                value = NULL;
            }
            break;

        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
            snprintf(text, sizeof(text), "%lld",
                     config_setting_get_int64(set));
            value = o->type == GOIM_OPT_INT ? text : NULL;
            break;

        default:
            value = NULL;
        }

        if (value == NULL) {
            snprintf(err, errlen, "%s:%d: %s: %s expected", path,
                     config_setting_source_line(set), name,
                     o->type == GOIM_OPT_INT ? "an integer" : "a string");
            rc = -1;
            break;
        }

        if (goim_conf_set(o, conf, value, sub, sizeof(sub)) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path,
                     config_setting_source_line(set), sub);
            rc = -1;
        }
    }

    config_destroy(&cfg);

    return rc;
}


void
goim_conf_copy_reloadable(const goim_opt_t *opts, void *dst, void *src)
{
    char              **sp, **dp;
    const goim_opt_t   *o;

    for (o = opts; o->name; o++) {
        if (!o->reload) {
            continue;
        }

        switch (o->type) {

        case GOIM_OPT_STRING:
        case GOIM_OPT_ADDR:
            sp = GOIM_CONF_FIELD(src, o, char *);
            dp = GOIM_CONF_FIELD(dst, o, char *);
            free(*dp);
            *dp = *sp;
            *sp = NULL;
            break;

        case GOIM_OPT_INT:
            *GOIM_CONF_FIELD(dst, o, int64_t) =
                *GOIM_CONF_FIELD(src, o, int64_t);
            break;

        case GOIM_OPT_LEVEL:
            *GOIM_CONF_FIELD(dst, o, int) = *GOIM_CONF_FIELD(src, o, int);
            break;
        }
    }
}


int
goim_conf_equal(const goim_opt_t *o, const void *a, const void *b)
{
    const char  *sa, *sb;

    switch (o->type) {

    case GOIM_OPT_STRING:
    case GOIM_OPT_ADDR:
        sa = *(char *const *) ((const char *) a + o->offset);
        sb = *(char *const *) ((const char *) b + o->offset);
        return (sa == NULL && sb == NULL)
               || (sa && sb && strcmp(sa, sb) == 0);

    case GOIM_OPT_INT:
        return *(const int64_t *) ((const char *) a + o->offset)
               == *(const int64_t *) ((const char *) b + o->offset);

    case GOIM_OPT_LEVEL:
        return *(const int *) ((const char *) a + o->offset)
               == *(const int *) ((const char *) b + o->offset);
    }

    return 0;
}


void
goim_conf_free(const goim_opt_t *opts, void *conf)
{
    char              **p;
    const goim_opt_t   *o;

    for (o = opts; o->name; o++) {
        if (o->type == GOIM_OPT_STRING || o->type == GOIM_OPT_ADDR) {
            p = GOIM_CONF_FIELD(conf, o, char *);
            free(*p);
            *p = NULL;
        }
    }
}


void
goim_conf_usage(const goim_opt_t *opts)
{
    char               flag[64];
    size_t             i;
    const goim_opt_t  *o;

    for (o = opts; o->name; o++) {
        for (i = 0; o->name[i] && i < sizeof(flag) - 1; i++) {
            flag[i] = o->name[i] == '_' ? '-' : o->name[i];
        }

        flag[i] = '\0';

        printf("  --%-18s %s (default %s%s)\n", flag, o->help, o->def,
               o->reload ? "; SIGHUP reloads it" : "");
    }
}
