
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_logic.h"


/*
 * Where push records go: straight to job over RPC (goim_logic_job).  A
 * Kafka producer (goim-v2-compatible records) is the other form of the
 * queue; callers see one interface either way.
 */


ngx_int_t
ngx_goim_logic_queue_push(ngx_goim_logic_conf_t *lcf, Goim__PushMsg **msgs,
    size_t n, ngx_goim_logic_queue_done_pt done, void *data,
    ngx_goim_rpc_call_t **call)
{
    Goim__JobPushReq  req = GOIM__JOB_PUSH_REQ__INIT;

    *call = NULL;

    if (lcf->job_peer == NULL) {
        return NGX_DECLINED;
    }

    req.msgs = msgs;
    req.n_msgs = n;

    *call = ngx_goim_rpc_call(lcf->job_peer, GOIM__METHOD__JOB_PUSH,
                              &req.base, lcf->rpc_timeout,
                              (ngx_goim_rpc_done_pt) done, data);

    return *call ? NGX_OK : NGX_ERROR;
}
