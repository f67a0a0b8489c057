
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <math.h>

#include "ngx_goim_logic.h"


/*
 * Node selection, shared by GET /goim/nodes/weighted (http) and the RPC
 * Nodes (stream): the comets router knows (every router gets every comet's
 * renewals; the freshest copy of each wins), weighted as goim's load
 * balancer does: a comet's share of the weight against its share of the
 * connections, a gain for the client's region, the first node counted as
 * taking one more connection.  The settings are the http{} level
 * goim_logic_node_* directives, parsed here into a nodes conf.
 */


#define NGX_GOIM_LOGIC_NODES_MAX  5


typedef struct {
    Goim__CometInfo            *comet;
    int64_t                     conns;
    int64_t                     weight;
} ngx_goim_logic_node_t;


static ngx_int_t ngx_goim_logic_nodes_parse_float(ngx_str_t *value,
    double *d);
static ngx_goim_logic_chosen_t *ngx_goim_logic_chosen(
    ngx_goim_logic_worker_t *w, Goim__CometInfo *comet);


void
ngx_goim_logic_nodes_conf_init(ngx_goim_logic_nodes_conf_t *nc)
{
    ngx_str_null(&nc->domain);
    ngx_str_null(&nc->host_domain);
    ngx_str_null(&nc->factor);
    ngx_str_null(&nc->jitter);

    nc->tcp_port = NGX_CONF_UNSET;
    nc->ws_port = NGX_CONF_UNSET;
    nc->wss_port = NGX_CONF_UNSET;
    nc->max_delay = NGX_CONF_UNSET;
    nc->base_delay = NGX_CONF_UNSET;
    nc->region_weight = -1;
}


void
ngx_goim_logic_nodes_conf_defaults(ngx_goim_logic_nodes_conf_t *nc)
{
    /* goim's example config */

    ngx_conf_init_value(nc->tcp_port, 3101);
    ngx_conf_init_value(nc->ws_port, 3102);
    ngx_conf_init_value(nc->wss_port, 3103);
    ngx_conf_init_value(nc->max_delay, 300);
    ngx_conf_init_value(nc->base_delay, 3);

    if (nc->factor.len == 0) {
        ngx_str_set(&nc->factor, "1.8");
        ngx_str_set(&nc->jitter, "0.3");
    }

    if (nc->region_weight < 0) {
        nc->region_weight = 1.6;
    }
}


/* goim_logic_node_ports tcp ws wss */

char *
ngx_goim_logic_nodes_ports(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_logic_nodes_conf_t *nc = (ngx_goim_logic_nodes_conf_t *)
                                       ((char *) conf + cmd->offset);

    ngx_int_t   port[3];
    ngx_str_t  *value;
    ngx_uint_t  i;

    if (nc->tcp_port != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < 3; i++) {
        port[i] = ngx_atoi(value[i + 1].data, value[i + 1].len);

        if (port[i] == NGX_ERROR || port[i] > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid port \"%V\" (0 to 65535)",
                               &value[i + 1]);
            return NGX_CONF_ERROR;
        }
    }

    nc->tcp_port = port[0];
    nc->ws_port = port[1];
    nc->wss_port = port[2];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_goim_logic_nodes_parse_float(ngx_str_t *value, double *d)
{
    u_char      *p;
    ngx_uint_t   dot;

    /* a plain decimal: it is also written into JSON as is */

    dot = 0;

    for (p = value->data; p < value->data + value->len; p++) {
        if (*p == '.' && dot == 0 && p > value->data) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }
    }

    if (value->len == 0 || value->data[value->len - 1] == '.') {
        return NGX_ERROR;
    }

    *d = strtod((char *) value->data, NULL);

    return NGX_OK;
}


/* goim_logic_backoff max_delay base_delay factor jitter */

char *
ngx_goim_logic_nodes_backoff(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_logic_nodes_conf_t *nc = (ngx_goim_logic_nodes_conf_t *)
                                       ((char *) conf + cmd->offset);

    double      d;
    ngx_str_t  *value;

    if (nc->max_delay != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    nc->max_delay = ngx_atoi(value[1].data, value[1].len);
    nc->base_delay = ngx_atoi(value[2].data, value[2].len);

    if (nc->max_delay == NGX_ERROR || nc->base_delay == NGX_ERROR
        || nc->max_delay > INT32_MAX || nc->base_delay > INT32_MAX
        || ngx_goim_logic_nodes_parse_float(&value[3], &d) != NGX_OK
        || ngx_goim_logic_nodes_parse_float(&value[4], &d) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid backoff \"%V %V %V %V\": two whole "
                           "numbers of seconds, then two decimals",
                           &value[1], &value[2], &value[3], &value[4]);
        return NGX_CONF_ERROR;
    }

    nc->factor = value[3];
    nc->jitter = value[4];

    return NGX_CONF_OK;
}


char *
ngx_goim_logic_nodes_region_weight(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_goim_logic_nodes_conf_t *nc = (ngx_goim_logic_nodes_conf_t *)
                                       ((char *) conf + cmd->offset);

    ngx_str_t  *value;

    if (nc->region_weight >= 0) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_goim_logic_nodes_parse_float(&value[1], &nc->region_weight)
        != NGX_OK
        || nc->region_weight > 1000)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid region weight \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a router's comets into comets (Goim__CometInfo, copied into pool) */

ngx_int_t
ngx_goim_logic_comets_merge(ngx_array_t *comets, ngx_pool_t *pool,
    Goim__CometListReply *reply)
{
    size_t            i, j, k;
    ngx_uint_t        added;
    Goim__CometInfo  *c, *copy;

    for (i = 0; i < reply->n_comets; i++) {
        c = reply->comets[i];
        copy = comets->elts;

        for (j = 0; j < comets->nelts; j++) {
            if (ngx_strcmp(copy[j].id, c->id) == 0) {
                break;
            }
        }

        if (j < comets->nelts) {
            if (copy[j].updated_ms >= c->updated_ms) {
                copy[j].session_count += c->session_count;
                continue;
            }

            c->session_count += copy[j].session_count;
            copy = &copy[j];
            added = 0;

        } else {
            copy = ngx_array_push(comets);
            if (copy == NULL) {
                return NGX_ERROR;
            }

            added = 1;
        }

        goim__comet_info__init(copy);

        copy->id = ngx_goim_logic_strdup(pool, c->id);
        copy->push_addr = ngx_goim_logic_strdup(pool, c->push_addr);
        copy->region = ngx_goim_logic_strdup(pool, c->region);
        copy->weight = c->weight;
        copy->offline = c->offline;
        copy->conn_count = c->conn_count;
        copy->ip_count = c->ip_count;
        copy->updated_ms = c->updated_ms;
        copy->session_count = c->session_count;

        copy->tcp_addrs = ngx_palloc(pool,
                                     (c->n_tcp_addrs + 1) * sizeof(char *));
        if (copy->tcp_addrs == NULL) {
            goto failed;
        }

        for (k = 0; k < c->n_tcp_addrs; k++) {
            copy->tcp_addrs[k] = ngx_goim_logic_strdup(pool, c->tcp_addrs[k]);
            if (copy->tcp_addrs[k] == NULL) {
                goto failed;
            }
        }

        copy->n_tcp_addrs = c->n_tcp_addrs;

        if (copy->id == NULL || copy->push_addr == NULL
            || copy->region == NULL)
        {
            goto failed;
        }
    }

    return NGX_OK;

failed:

    /* out of memory: this comet is left out (the last takes its place) */

    if (!added) {
        *copy = ((Goim__CometInfo *) comets->elts)[comets->nelts - 1];
    }

    comets->nelts--;

    return NGX_ERROR;
}


static int ngx_libc_cdecl
ngx_goim_logic_nodes_weight_cmp(const void *one, const void *two)
{
    const ngx_goim_logic_node_t  *a = one, *b = two;

    if (a->weight != b->weight) {
        return a->weight > b->weight ? -1 : 1;
    }

    return ngx_strcmp(a->comet->id, b->comet->id);
}


/*
 * goim's weighting over comets for a client of region (empty: none): at
 * most 5 nodes into nodes (char *), host names for web clients when a host
 * domain is set, else addresses; the default domain when none qualifies.
 */

ngx_int_t
ngx_goim_logic_nodes_pick(ngx_goim_logic_worker_t *w,
    ngx_array_t *comets, ngx_str_t *region, ngx_uint_t web,
    ngx_pool_t *pool, ngx_array_t *nodes)
{
    char                          **node;
    size_t                          k, len;
    double                          fw, tw, diff, m, fl;
    int64_t                         total_weight, total_conns, weight;
    ngx_uint_t                      i, n;
    Goim__CometInfo                *c;
    ngx_goim_logic_node_t          *ns;
    ngx_goim_logic_chosen_t        *chosen;
    ngx_goim_logic_nodes_conf_t    *nc;

    nc = w->conf->nodes;

    /* without a host domain a comet's id names no host: addresses then */
    web = web && nc->host_domain.len;

    ns = ngx_pcalloc(pool, (comets->nelts + 1)
                           * sizeof(ngx_goim_logic_node_t));
    if (ns == NULL) {
        return NGX_ERROR;
    }

    /* goim skips comets that are offline */

    c = comets->elts;
    n = 0;
    total_weight = 0;
    total_conns = 0;

    for (i = 0; i < comets->nelts; i++) {
        if (c[i].offline) {
            continue;
        }

        ns[n].comet = &c[i];
        ns[n].conns = c[i].conn_count;

        chosen = ngx_goim_logic_chosen(w, &c[i]);
        if (chosen) {
            ns[n].conns += chosen->chosen;
        }

        total_weight += c[i].weight;
        total_conns += ns[n].conns;
        n++;
    }

    for (i = 0; i < n; i++) {
        c = ns[i].comet;

        fw = c->weight;

        if (region->len && region->len == ngx_strlen(c->region)
            && ngx_strncmp(region->data, c->region, region->len) == 0)
        {
            fw *= nc->region_weight;
        }

        tw = total_weight + (fw - c->weight);

        if (total_conns > 0 && tw > 0) {
            diff = fw / tw - (double) ns[i].conns / total_conns * 0.5;
            m = diff * total_conns;
            fl = floor(m);

            weight = (int64_t) (fw + (fl - m >= -0.5 ? fl : ceil(m)));

            if (diff < 0) {
                weight = ngx_max(weight, 1);

            } else {
                weight = ngx_min(weight, 1 << 20);
            }

        } else {
            weight = 0;
        }

        ns[i].weight = weight;
    }

    ngx_qsort(ns, n, sizeof(ngx_goim_logic_node_t),
              ngx_goim_logic_nodes_weight_cmp);

    if (n) {
        chosen = ngx_goim_logic_chosen(w, ns[0].comet);
        if (chosen) {
            chosen->chosen++;
        }
    }

    for (i = 0; i < n && i < NGX_GOIM_LOGIC_NODES_MAX; i++) {
        c = ns[i].comet;

        if (web) {
            node = ngx_array_push(nodes);
            if (node == NULL) {
                return NGX_ERROR;
            }

            len = ngx_strlen(c->id);

            *node = ngx_pnalloc(pool, len + nc->host_domain.len + 1);
            if (*node == NULL) {
                return NGX_ERROR;
            }

            *ngx_cpymem(ngx_cpymem(*node, c->id, len),
                        nc->host_domain.data, nc->host_domain.len)
                = '\0';

            continue;
        }

        for (k = 0; k < c->n_tcp_addrs; k++) {
            node = ngx_array_push(nodes);
            if (node == NULL) {
                return NGX_ERROR;
            }

            *node = c->tcp_addrs[k];
        }
    }

    if (nodes->nelts == 0 && nc->domain.len) {
        node = ngx_array_push(nodes);
        if (node == NULL) {
            return NGX_ERROR;
        }

        *node = (char *) nc->domain.data;
    }

    return NGX_OK;
}


static ngx_goim_logic_chosen_t *
ngx_goim_logic_chosen(ngx_goim_logic_worker_t *w, Goim__CometInfo *comet)
{
    ngx_uint_t                i;
    ngx_goim_logic_chosen_t  *ch, *free;

    if (ngx_strlen(comet->id) >= sizeof(ch->id)) {
        return NULL;
    }

    free = NULL;

    for (i = 0; i < NGX_GOIM_LOGIC_CHOSEN; i++) {
        ch = &w->chosen[i];

        if (ch->id[0] == '\0') {
            if (free == NULL) {
                free = ch;
            }

            continue;
        }

        if (ngx_strcmp(ch->id, comet->id) != 0) {
            continue;
        }

        /* a new report counts the connections afresh */

        if (ch->updated_ms != comet->updated_ms) {
            ch->updated_ms = comet->updated_ms;
            ch->chosen = 0;
        }

        return ch;
    }

    if (free == NULL) {
        return NULL;
    }

    ngx_cpystrn(free->id, (u_char *) comet->id, sizeof(free->id));
    free->updated_ms = comet->updated_ms;
    free->chosen = 0;

    return free;
}
