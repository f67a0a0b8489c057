
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_logic.h"


/*
 * One request to several routers at once, answers merged by the caller's
 * each() and done() (the contract is in ngx_goim_logic.h): the http push
 * API and the stream RPC both use it.
 */


typedef struct {
    ngx_goim_logic_fanout_t   *fanout;
    ngx_goim_rpc_call_t       *call;
} ngx_goim_logic_fanout_call_t;


struct ngx_goim_logic_fanout_s {
    ngx_goim_logic_worker_t        *worker;
    ngx_goim_logic_fanout_call_t   *calls;     /* one per router */
    ngx_uint_t                      pending;
    ngx_int_t                       status;
    ngx_str_t                       message;
    ngx_goim_logic_fanout_each_pt   each;
    ngx_goim_logic_fanout_done_pt   done;
    void                           *data;
    u_char                          text[256];
};


static void ngx_goim_logic_fanout_handler(void *data,
    ngx_goim_rpc_result_t *res);


ngx_goim_logic_fanout_t *
ngx_goim_logic_fanout_create(ngx_goim_logic_worker_t *w,
    ngx_goim_logic_fanout_each_pt each, ngx_goim_logic_fanout_done_pt done,
    void *data)
{
    ngx_uint_t                i, n;
    ngx_goim_logic_fanout_t  *f;

    n = w->nrouters;

    f = ngx_calloc(sizeof(ngx_goim_logic_fanout_t)
                   + n * sizeof(ngx_goim_logic_fanout_call_t),
                   ngx_cycle->log);
    if (f == NULL) {
        return NULL;
    }

    f->worker = w;
    f->calls = (ngx_goim_logic_fanout_call_t *) (f + 1);
    f->each = each;
    f->done = done;
    f->data = data;

    for (i = 0; i < n; i++) {
        f->calls[i].fanout = f;
    }

    return f;
}


ngx_int_t
ngx_goim_logic_fanout_call(ngx_goim_logic_fanout_t *f, ngx_uint_t i,
    int32_t method, const ProtobufCMessage *req)
{
    ngx_goim_logic_fanout_call_t  *fc;

    fc = &f->calls[i];

    fc->call = ngx_goim_rpc_call(f->worker->router_peers[i], method, req,
                                 f->worker->conf->rpc_timeout,
                                 ngx_goim_logic_fanout_handler, fc);
    if (fc->call == NULL) {
        return NGX_ERROR;
    }

    f->pending++;

    return NGX_OK;
}


ngx_int_t
ngx_goim_logic_fanout_call_all(ngx_goim_logic_fanout_t *f, int32_t method,
    const ProtobufCMessage *req)
{
    ngx_uint_t  i;

    for (i = 0; i < f->worker->nrouters; i++) {
        if (ngx_goim_logic_fanout_call(f, i, method, req) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_goim_logic_fanout_handler(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_goim_logic_fanout_call_t *fc = data;

    u_char                   *p;
    ngx_goim_logic_fanout_t  *f;
    ngx_goim_rpc_upstream_t  *up;

    f = fc->fanout;
    fc->call = NULL;
    f->pending--;

    if (res->status == 0) {
        if (f->status == 0) {
            f->each(f->data, res);
        }

    } else if (f->status == 0) {
        /* the first error is the one reported, naming the router */
        up = f->worker->conf->routers->elts;
        up = &up[fc - f->calls];

        f->status = res->status;
        p = ngx_snprintf(f->text, sizeof(f->text), "%V: %V", &up->name,
                         &res->message);
        f->message.data = f->text;
        f->message.len = p - f->text;
    }

    if (f->pending == 0) {
        f->done(f->data, f->status, &f->message);
    }
}


void
ngx_goim_logic_fanout_free(ngx_goim_logic_fanout_t *f)
{
    ngx_uint_t  i;

    if (f == NULL) {
        return;
    }

    for (i = 0; i < f->worker->nrouters; i++) {
        if (f->calls[i].call) {
            ngx_goim_rpc_cancel(f->calls[i].call);
        }
    }

    ngx_free(f);
}
