
/*
 * Copyright (C) ngx_goim authors
 */


#ifndef _NGX_HTTP_GOIM_COMET_H_INCLUDED_
#define _NGX_HTTP_GOIM_COMET_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_goim_comet.h"


#pragma GCC visibility push(hidden)


/*
 * The http transports of comet, for their three files: the module (its
 * directives, WebSocket, SSE, the control call, the status page), the
 * long-poll transport (ngx_http_goim_comet_poll.c) and what they share
 * of a request (ngx_http_goim_comet_request.c).
 */

typedef struct {
    ngx_goim_channel_conf_t    channel;
    ngx_flag_t                 enable;
    ngx_flag_t                 sse;
    ngx_flag_t                 poll;
} ngx_http_goim_comet_loc_conf_t;


extern ngx_module_t  ngx_http_goim_comet_module;


/* ngx_http_goim_comet_request.c */
ngx_table_elt_t *ngx_http_goim_comet_header(ngx_http_request_t *r,
    const char *name);
ngx_int_t ngx_http_goim_comet_subscription(ngx_http_request_t *r,
    size_t max_body, ngx_str_t *auth, uint64_t *epoch, uint64_t *seq,
    ngx_uint_t *resume, ngx_int_t *rc);
ngx_int_t ngx_http_goim_comet_json(ngx_http_request_t *r, ngx_uint_t status,
    const char *message);
ngx_int_t ngx_http_goim_comet_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, ngx_buf_t *b);

/* ngx_http_goim_comet_poll.c: goim_comet_poll's directive */
char *ngx_http_goim_comet_poll(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#pragma GCC visibility pop


#endif /* _NGX_HTTP_GOIM_COMET_H_INCLUDED_ */
