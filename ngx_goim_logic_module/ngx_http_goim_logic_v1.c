
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


/*
 * goim v1.2's push API (goim_logic_api_v1): the same lookups and records
 * as v2, answered with {"ret":1} or {"ret":65535}.  v1's rooms were
 * integers: room N is "<type>://N" here, type from the directive.
 */


static ngx_int_t ngx_http_goim_logic_v1_push(ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_v1_pushs(
    ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_v1_push_room(
    ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_v1_push_all(
    ngx_http_goim_logic_ctx_t *ctx);
static ngx_int_t ngx_http_goim_logic_v1_server_del(
    ngx_http_goim_logic_ctx_t *ctx);
static void ngx_http_goim_logic_v1_del_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_v1_del_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static ngx_int_t ngx_http_goim_logic_v1_count(ngx_http_goim_logic_ctx_t *ctx);
static void ngx_http_goim_logic_v1_rooms_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_v1_servers_done(void *data,
    ngx_int_t status, ngx_str_t *message);


ngx_http_goim_logic_endpoint_t  ngx_http_goim_logic_v1_endpoints[] = {
    { ngx_string("/push"), NGX_HTTP_POST,
      ngx_http_goim_logic_v1_push, NGX_GOIM_LOGIC_EP_V1_PUSH },
    { ngx_string("/pushs"), NGX_HTTP_POST,
      ngx_http_goim_logic_v1_pushs, NGX_GOIM_LOGIC_EP_V1_PUSHS },
    { ngx_string("/push/room"), NGX_HTTP_POST,
      ngx_http_goim_logic_v1_push_room, NGX_GOIM_LOGIC_EP_V1_PUSH_ROOM },
    { ngx_string("/push/all"), NGX_HTTP_POST,
      ngx_http_goim_logic_v1_push_all, NGX_GOIM_LOGIC_EP_V1_PUSH_ALL },
    { ngx_string("/server/del"), NGX_HTTP_POST,
      ngx_http_goim_logic_v1_server_del, NGX_GOIM_LOGIC_EP_V1_SERVER_DEL },
    { ngx_string("/count"), NGX_HTTP_GET,
      ngx_http_goim_logic_v1_count, NGX_GOIM_LOGIC_EP_V1_COUNT },
    { ngx_null_string, 0, NULL, NGX_GOIM_LOGIC_EP_UNKNOWN }
};


/* POST /1/push?uid=123 */

static ngx_int_t
ngx_http_goim_logic_v1_push(ngx_http_goim_logic_ctx_t *ctx)
{
    int64_t  *uid;

    uid = ngx_palloc(ctx->request->pool, sizeof(int64_t));
    if (uid == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    if (ngx_http_goim_logic_int_arg(ctx->request, "uid", INT64_MIN + 1,
                                    INT64_MAX, uid)
        != NGX_OK)
    {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "uid must be an int64");
        return NGX_ERROR;
    }

    if (ngx_http_goim_logic_ensure_args(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_goim_logic_mids_lookup(ctx, uid, 1);
}


/* POST /1/pushs with {"m":<any JSON>,"u":[uid,...]}: m's text is pushed */

static ngx_int_t
ngx_http_goim_logic_v1_pushs(ngx_http_goim_logic_ctx_t *ctx)
{
    size_t       n;
    int64_t     *uids;
    const char  *err, *m;

    /* at most one uid per two bytes of body */
    uids = ngx_palloc(ctx->request->pool,
                      (ctx->msg.len / 2 + 1) * sizeof(int64_t));
    if (uids == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    err = goim_args_v1_pushs((char *) ctx->msg.data, ctx->msg.len, &m,
                             &ctx->msg.len, uids, &n);
    if (err) {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400, "%s",
                                   err);
        return NGX_ERROR;
    }

    ctx->msg.data = (u_char *) m;

    /* each uid once: ngx_http_goim_logic_mids_lookup() */

    if (ngx_http_goim_logic_ensure_args(ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_goim_logic_mids_lookup(ctx, uids, n);
}


/* POST /1/push/room?rid=1 */

static ngx_int_t
ngx_http_goim_logic_v1_push_room(ngx_http_goim_logic_ctx_t *ctx)
{
    u_char                           id[NGX_INT64_LEN];
    int64_t                          rid;
    char                            *room_id;
    ngx_http_request_t              *r;
    ngx_http_goim_logic_loc_conf_t  *glcf;

    r = ctx->request;
    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_logic_module);

    if (ngx_http_goim_logic_int_arg(r, "rid", INT32_MIN, INT32_MAX, &rid)
        != NGX_OK)
    {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "rid must be an int32");
        return NGX_ERROR;
    }

    room_id = ngx_http_goim_logic_room_id(r->pool, &glcf->v1_room_type, id,
                                          ngx_sprintf(id, "%L", rid) - id);
    if (room_id == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    return ngx_http_goim_logic_push_one(ctx, GOIM__PUSH_MSG__TYPE__ROOM,
                                        room_id, 0);
}


/* POST /1/push/all */

static ngx_int_t
ngx_http_goim_logic_v1_push_all(ngx_http_goim_logic_ctx_t *ctx)
{
    return ngx_http_goim_logic_push_one(ctx, GOIM__PUSH_MSG__TYPE__BROADCAST,
                                        NULL, 0);
}


/* POST /1/server/del?server=comet-1: the comet's sessions, every router */

static ngx_int_t
ngx_http_goim_logic_v1_server_del(ngx_http_goim_logic_ctx_t *ctx)
{
    ngx_str_t            server;
    ngx_http_request_t  *r;
    Goim__CometDelReq    req = GOIM__COMET_DEL_REQ__INIT;

    r = ctx->request;

    if (ngx_http_goim_logic_str_arg(ctx, "server", &server) != NGX_OK) {
        return NGX_ERROR;
    }

    req.id = ngx_pnalloc(r->pool, server.len + 1);
    if (req.id == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    ngx_memcpy(req.id, server.data, server.len);
    req.id[server.len] = '\0';

    return ngx_http_goim_logic_ask_routers(ctx, ngx_http_goim_logic_v1_del_each,
                                           ngx_http_goim_logic_v1_del_done,
                                           GOIM__METHOD__ROUTER_COMET_DEL,
                                           &req.base);
}


static void
ngx_http_goim_logic_v1_del_each(void *data, ngx_goim_rpc_result_t *res)
{
    /* void */
}


static void
ngx_http_goim_logic_v1_del_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    ngx_http_goim_logic_finish(ctx, NGX_HTTP_OK, 0, "");
}


/* GET /1/count?type=room|server */

static ngx_int_t
ngx_http_goim_logic_v1_count(ngx_http_goim_logic_ctx_t *ctx)
{
    ngx_str_t                        type;
    ngx_http_request_t              *r;
    Goim__OnlineTopReq               req = GOIM__ONLINE_TOP_REQ__INIT;
    ngx_http_goim_logic_loc_conf_t  *glcf;

    r = ctx->request;

    if (ngx_http_arg(r, (u_char *) "type", 4, &type) != NGX_OK) {
        type.len = 0;
    }

    if (type.len == 6 && ngx_strncmp(type.data, "server", 6) == 0) {
        return ngx_http_goim_logic_comet_list(ctx,
                                       ngx_http_goim_logic_v1_servers_done);
    }

    if (type.len != 4 || ngx_strncmp(type.data, "room", 4) != 0) {
        /* as v1: any other type answers success with no data */
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_OK, 0, "");
        return NGX_OK;
    }

    /* every room of the v1 type: "live://" */

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_logic_module);

    req.type = ngx_http_goim_logic_room_id(r->pool, &glcf->v1_room_type,
                                           (u_char *) "", 0);
    if (req.type == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    return ngx_http_goim_logic_ask_routers(ctx, ngx_http_goim_logic_top_each,
                                           ngx_http_goim_logic_v1_rooms_done,
                                           GOIM__METHOD__ROUTER_ONLINE_TOP,
                                           &req.base);
}


static void
ngx_http_goim_logic_v1_rooms_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    u_char                      *id;
    yajl_gen                     g;
    ngx_int_t                    rid;
    ngx_uint_t                   i;
    ngx_http_goim_logic_room_t  *room;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    ngx_http_goim_logic_sum_rooms(ctx);

    g = ngx_http_goim_logic_data_start(ctx);
    if (g == NULL) {
        return;
    }

    /* v1's rooms were numbers: rooms not named "<type>://<int>" are left */

    yajl_gen_array_open(g);

    room = ctx->rooms.elts;

    for (i = 0; i < ctx->rooms.nelts; i++) {
        id = (u_char *) ngx_strstr(room[i].name.data, "://") + 3;

        rid = ngx_atoi(id, room[i].name.data + room[i].name.len - id);
        if (rid == NGX_ERROR || rid > INT32_MAX) {
            continue;
        }

        yajl_gen_map_open(g);
        ngx_http_goim_logic_json_key(g, "RoomId");
        yajl_gen_integer(g, rid);
        ngx_http_goim_logic_json_key(g, "Count");
        yajl_gen_integer(g, room[i].count);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_http_goim_logic_data_finish(ctx);
}


/* v1's servers were numbers; comets here are named: "Server" is a string */

static void
ngx_http_goim_logic_v1_servers_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    yajl_gen          g;
    ngx_uint_t        i;
    Goim__CometInfo  *c;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    g = ngx_http_goim_logic_data_start(ctx);
    if (g == NULL) {
        return;
    }

    yajl_gen_array_open(g);

    c = ctx->comets->elts;

    for (i = 0; i < ctx->comets->nelts; i++) {
        yajl_gen_map_open(g);
        ngx_http_goim_logic_json_key(g, "Server");
        ngx_http_goim_logic_json_str(g, c[i].id);
        ngx_http_goim_logic_json_key(g, "Count");
        yajl_gen_integer(g, c[i].session_count);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_http_goim_logic_data_finish(ctx);
}
