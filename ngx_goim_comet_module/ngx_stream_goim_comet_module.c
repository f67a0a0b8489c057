
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_stream.h>

#include "ngx_goim_comet.h"


typedef struct {
    ngx_goim_channel_conf_t    channel;
    ngx_flag_t                 comet;
    ngx_flag_t                 push;
    ngx_str_t                  advertise;
    ngx_goim_rpc_session_conf_t  rpc;         /* goim_comet_push's bounds */
} ngx_stream_goim_comet_srv_conf_t;


static void ngx_stream_goim_comet_handler(ngx_stream_session_t *s);
static void ngx_stream_goim_comet_finalize(ngx_goim_channel_t *ch);
static void ngx_stream_goim_comet_push_handler(ngx_stream_session_t *s);
static void ngx_stream_goim_comet_push_close(void *data);
static char *ngx_stream_goim_comet(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_goim_comet_push(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_stream_goim_comet_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_goim_comet_merge_srv_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_stream_goim_comet_postconfiguration(ngx_conf_t *cf);


static ngx_conf_num_bounds_t  ngx_stream_goim_comet_queue_bounds = {
    ngx_conf_check_num_bounds, 1, 65536
};

static ngx_conf_num_bounds_t  ngx_stream_goim_comet_max_accepts_bounds = {
    ngx_conf_check_num_bounds, 1, 65536
};


static ngx_command_t  ngx_stream_goim_comet_commands[] = {

    { ngx_string("goim_comet"),
      NGX_STREAM_SRV_CONF|NGX_CONF_NOARGS,
      ngx_stream_goim_comet,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("goim_comet_push"),
      NGX_STREAM_SRV_CONF|NGX_CONF_ANY,
      ngx_stream_goim_comet_push,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("goim_comet_handshake_timeout"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_goim_comet_srv_conf_t, channel.handshake_timeout),
      NULL },

    { ngx_string("goim_comet_max_body"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_goim_comet_srv_conf_t, channel.max_body),
      NULL },

    { ngx_string("goim_comet_queue"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_goim_comet_srv_conf_t, channel.queue_size),
      &ngx_stream_goim_comet_queue_bounds },

    { ngx_string("goim_comet_max_accepts"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_goim_comet_srv_conf_t, channel.max_accepts),
      &ngx_stream_goim_comet_max_accepts_bounds },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_goim_comet_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_stream_goim_comet_postconfiguration, /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_stream_goim_comet_create_srv_conf, /* create server configuration */
    ngx_stream_goim_comet_merge_srv_conf   /* merge server configuration */
};


ngx_module_t  ngx_stream_goim_comet_module = {
    NGX_MODULE_V1,
    &ngx_stream_goim_comet_module_ctx,     /* module context */
    ngx_stream_goim_comet_commands,        /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void
ngx_stream_goim_comet_handler(ngx_stream_session_t *s)
{
    ngx_connection_t                  *c;
    ngx_goim_channel_t                *ch;
    ngx_stream_goim_comet_srv_conf_t  *gscf;

    c = s->connection;
    c->log->action = "serving goim client";

    gscf = ngx_stream_get_module_srv_conf(s, ngx_stream_goim_comet_module);

    ch = ngx_goim_channel_create(c, &gscf->channel, 0,
                                 ngx_stream_goim_comet_finalize, s);
    if (ch == NULL) {
        ngx_stream_finalize_session(s, NGX_STREAM_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_goim_channel_start(ch, NULL, 0);
}


static void
ngx_stream_goim_comet_finalize(ngx_goim_channel_t *ch)
{
    ngx_stream_finalize_session(ch->owner, NGX_STREAM_OK);
}


static void
ngx_stream_goim_comet_push_handler(ngx_stream_session_t *s)
{
    ngx_stream_goim_comet_srv_conf_t  *gscf;

    s->connection->log->action = "serving goim push RPC";

    gscf = ngx_stream_get_module_srv_conf(s, ngx_stream_goim_comet_module);

    ngx_goim_comet_push_session(s->connection, &gscf->rpc,
                                ngx_stream_goim_comet_push_close, s);
}


static void
ngx_stream_goim_comet_push_close(void *data)
{
    ngx_stream_finalize_session(data, NGX_STREAM_OK);
}


static char *
ngx_stream_goim_comet(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_core_srv_conf_t  *cscf;

    cscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_core_module);

    if (cscf->handler) {
        return "is duplicate: this server already has a handler";
    }

    cscf->handler = ngx_stream_goim_comet_handler;
    ((ngx_stream_goim_comet_srv_conf_t *) conf)->comet = 1;

    return NGX_CONF_OK;
}


static char *
ngx_stream_goim_comet_push(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_goim_comet_srv_conf_t *gscf = conf;

    ngx_int_t                    rc;
    ngx_str_t                   *value;
    ngx_url_t                    u;
    ngx_uint_t                   i;
    ngx_stream_core_srv_conf_t  *cscf;

    cscf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_core_module);

    if (cscf->handler) {
        return "is duplicate: this server already has a handler";
    }

    cscf->handler = ngx_stream_goim_comet_push_handler;
    gscf->push = 1;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        rc = ngx_goim_rpc_session_conf_param(cf, &value[i], &gscf->rpc);

        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (ngx_strncmp(value[i].data, "advertise=", 10) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        gscf->advertise.data = value[i].data + 10;
        gscf->advertise.len = value[i].len - 10;
    }

    if (gscf->advertise.data == NULL) {
        return NGX_CONF_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = gscf->advertise;
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.no_port) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid advertise address \"%V\"",
                           &gscf->advertise);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_stream_goim_comet_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_goim_comet_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_goim_comet_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->comet = 0;
     *     conf->push = 0;
     *     conf->advertise = { 0, NULL };
     */

    ngx_goim_channel_conf_init(&conf->channel);
    ngx_goim_rpc_session_conf_init(&conf->rpc);
    conf->rpc.bad_input = ngx_goim_comet_push_bad_input;

    return conf;
}


static char *
ngx_stream_goim_comet_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_stream_goim_comet_srv_conf_t *prev = parent;
    ngx_stream_goim_comet_srv_conf_t *conf = child;

    return ngx_goim_channel_conf_merge(cf, &conf->channel, &prev->channel);
}


/*
 * Finds the push listener, so the comet can tell job where it is: the
 * advertise= address, else the listen address (a wildcard one is taken
 * as this host's loopback, which only suits a one-host setup).
 */

static ngx_int_t
ngx_stream_goim_comet_postconfiguration(ngx_conf_t *cf)
{
    u_char                             text[NGX_SOCKADDR_STRLEN];
    size_t                             len;
    ngx_uint_t                         i;
    ngx_sockaddr_t                     sa;
    ngx_stream_listen_t               *ls;
    ngx_goim_comet_conf_t             *ccf;
    ngx_goim_comet_server_t           *srv;
    ngx_stream_core_srv_conf_t        *cscf;
    ngx_stream_core_main_conf_t       *cmcf;
    ngx_stream_goim_comet_srv_conf_t  *gscf;

    ccf = ngx_goim_comet_get_conf(cf->cycle);
    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    ls = cmcf->listen.elts;

    for (i = 0; i < cmcf->listen.nelts; i++) {
        gscf = ls[i].ctx->srv_conf[ngx_stream_goim_comet_module.ctx_index];

        if (!gscf->comet && !gscf->push) {
            continue;
        }

        /* what takes a connection a reload hands over, by this address */
        srv = ngx_goim_comet_server_add(cf);
        if (srv == NULL) {
            return NGX_ERROR;
        }

        cscf = ls[i].ctx->srv_conf[ngx_stream_core_module.ctx_index];

        srv->kind = gscf->push ? NGX_GOIM_COMET_SERVER_PUSH
                               : NGX_GOIM_COMET_SERVER_TCP;
        ngx_memcpy(&srv->sockaddr, ls[i].sockaddr, ls[i].socklen);
        srv->socklen = ls[i].socklen;
        srv->conf = gscf->push ? (void *) &gscf->rpc : (void *) &gscf->channel;
        srv->log = cscf->error_log;

        if (!gscf->push) {
            continue;
        }

        if (ccf->push_addr.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "only one goim_comet_push listener "
                               "is allowed");
            return NGX_ERROR;
        }

        /* pushes that hop to another worker are paced as they came in */
        ccf->drain_batch = gscf->rpc.batch;
        if (!goim_auth_is_loopback(ls[i].sockaddr)) {
            /* refused in init_conf unless a secret is set by then */
            len = ngx_sock_ntop(ls[i].sockaddr, ls[i].socklen, text,
                                NGX_SOCKADDR_STRLEN, 1);
            ccf->push_open.data = ngx_pstrdup(cf->pool,
                                              &(ngx_str_t) { len, text });
            if (ccf->push_open.data == NULL) {
                return NGX_ERROR;
            }

            ccf->push_open.len = len;
        }

        if (gscf->advertise.len) {
            ccf->push_addr = gscf->advertise;
            continue;
        }

        ngx_memcpy(&sa, ls[i].sockaddr, ls[i].socklen);

        if (sa.sockaddr.sa_family == AF_INET
            && sa.sockaddr_in.sin_addr.s_addr == INADDR_ANY)
        {
            sa.sockaddr_in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        }

        len = ngx_sock_ntop(&sa.sockaddr, ls[i].socklen, text,
                            NGX_SOCKADDR_STRLEN, 1);

        ccf->push_addr.data = ngx_pstrdup(cf->pool,
                                          &(ngx_str_t) { len, text });
        if (ccf->push_addr.data == NULL) {
            return NGX_ERROR;
        }

        ccf->push_addr.len = len;
    }

    return NGX_OK;
}
