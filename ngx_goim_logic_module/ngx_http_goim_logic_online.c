
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_goim_logic.h"


/*
 * GET /goim/online/{top,room,total}: every router's counts, summed (v1's
 * /1/count sums OnlineTop answers the same way).
 */


static ngx_int_t ngx_http_goim_logic_add_room(ngx_http_goim_logic_ctx_t *ctx,
    const char *name, int64_t count);
static void ngx_http_goim_logic_top_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_room_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_room_done(void *data, ngx_int_t status,
    ngx_str_t *message);
static void ngx_http_goim_logic_total_each(void *data,
    ngx_goim_rpc_result_t *res);
static void ngx_http_goim_logic_total_done(void *data, ngx_int_t status,
    ngx_str_t *message);


/* GET /goim/online/top?type=live&limit=10 */

ngx_int_t
ngx_http_goim_logic_online_top(ngx_http_goim_logic_ctx_t *ctx)
{
    ngx_str_t            type;
    ngx_http_request_t  *r;
    Goim__OnlineTopReq   req = GOIM__ONLINE_TOP_REQ__INIT;

    r = ctx->request;

    if (ngx_http_goim_logic_str_arg(ctx, "type", &type) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_goim_logic_int_arg(r, "limit", 1, INT32_MAX, &ctx->limit)
        != NGX_OK)
    {
        ngx_http_goim_logic_finish(ctx, NGX_HTTP_BAD_REQUEST, -400,
                                   "limit must be a positive int32");
        return NGX_ERROR;
    }

    req.type = ngx_pnalloc(r->pool, type.len + 1);
    if (req.type == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    ngx_memcpy(req.type, type.data, type.len);
    req.type[type.len] = '\0';

    /* the top of a sum is not the sum of the tops: all, with several */
    req.limit = ctx->worker->nrouters == 1 ? (int32_t) ctx->limit : 0;

    return ngx_http_goim_logic_ask_routers(ctx, ngx_http_goim_logic_top_each,
                                           ngx_http_goim_logic_top_done,
                                           GOIM__METHOD__ROUTER_ONLINE_TOP,
                                           &req.base);
}


/* OnlineTop answers, summed per room (v1's /1/count uses it too) */

void
ngx_http_goim_logic_top_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    size_t                 i;
    Goim__OnlineTopReply  *reply;

    reply = (Goim__OnlineTopReply *) res->reply;

    for (i = 0; i < reply->n_rooms; i++) {
        if (ngx_http_goim_logic_add_room(ctx, reply->rooms[i]->room_id,
                                         reply->rooms[i]->count)
            != NGX_OK)
        {
            return;
        }
    }
}


static int ngx_libc_cdecl
ngx_http_goim_logic_count_cmp(const void *one, const void *two)
{
    const ngx_http_goim_logic_room_t  *a = one, *b = two;

    if (a->count != b->count) {
        return a->count > b->count ? -1 : 1;
    }

    return ngx_strcmp(a->name.data, b->name.data);
}


static void
ngx_http_goim_logic_top_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    u_char                      *id, *end;
    yajl_gen                     g;
    ngx_uint_t                   i, n;
    ngx_http_goim_logic_room_t  *room;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    ngx_http_goim_logic_sum_rooms(ctx);

    room = ctx->rooms.elts;
    ngx_qsort(room, ctx->rooms.nelts, sizeof(ngx_http_goim_logic_room_t),
              ngx_http_goim_logic_count_cmp);

    g = ngx_http_goim_logic_data_start(ctx);
    if (g == NULL) {
        return;
    }

    yajl_gen_array_open(g);
    n = 0;

    for (i = 0; i < ctx->rooms.nelts && n < (ngx_uint_t) ctx->limit; i++) {

        /* goim's room id: the host of "<type>://<id>" */

        id = (u_char *) ngx_strstr(room[i].name.data, "://");
        if (id == NULL) {
            continue;
        }

        id += 3;

        for (end = id; *end && *end != '/' && *end != '?' && *end != '#';
             end++)
        {
            /* void */
        }

        n++;

        yajl_gen_map_open(g);
        ngx_http_goim_logic_json_key(g, "room_id");
        yajl_gen_string(g, id, end - id);
        ngx_http_goim_logic_json_key(g, "count");
        yajl_gen_integer(g, room[i].count);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_http_goim_logic_data_finish(ctx);
}


/* GET /goim/online/room?type=live&rooms=1000&rooms=1001 */

ngx_int_t
ngx_http_goim_logic_online_room(ngx_http_goim_logic_ctx_t *ctx)
{
    ngx_str_t                    type;
    ngx_uint_t                   i;
    goim_args_list_t             rooms;
    ngx_http_request_t          *r;
    ngx_http_goim_logic_room_t  *room;
    Goim__OnlineRoomReq          req = GOIM__ONLINE_ROOM_REQ__INIT;

    r = ctx->request;

    if (ngx_http_goim_logic_str_arg(ctx, "type", &type) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_goim_logic_list_arg(ctx, "rooms", 0, &rooms) != NGX_OK) {
        return NGX_ERROR;
    }

    req.rooms = ngx_palloc(r->pool, rooms.n * sizeof(char *));
    if (req.rooms == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    /* ctx->rooms: the answer, one entry per room asked (each once) */

    for (i = 0; i < rooms.n; i++) {
        room = ngx_array_push(&ctx->rooms);
        if (room == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }

        room->name.data = (u_char *) rooms.values[i];
        room->name.len = rooms.lens[i];
        room->count = 0;

        req.rooms[req.n_rooms] = ngx_http_goim_logic_room_id(r->pool, &type,
                                                        room->name.data,
                                                        room->name.len);
        if (req.rooms[req.n_rooms++] == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }
    }

    ctx->asked = req.rooms;

    return ngx_http_goim_logic_ask_routers(ctx, ngx_http_goim_logic_room_each,
                                           ngx_http_goim_logic_room_done,
                                           GOIM__METHOD__ROUTER_ONLINE_ROOM,
                                           &req.base);
}


static void
ngx_http_goim_logic_room_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    char                                    **asked;
    size_t                                    i, j, n;
    ngx_http_goim_logic_room_t               *room;
    Goim__OnlineRoomReply                    *reply;
    Goim__OnlineRoomReply__RoomCountEntry    *e;

    reply = (Goim__OnlineRoomReply *) res->reply;
    asked = ctx->asked;
    room = ctx->rooms.elts;
    n = ctx->rooms.nelts;

    for (i = 0; i < reply->n_room_count; i++) {
        e = reply->room_count[i];

        /* router answers in the order asked; look further if not */

        if (i < n && ngx_strcmp(asked[i], e->key) == 0) {
            room[i].count += e->value;
            continue;
        }

        for (j = 0; j < n; j++) {
            if (ngx_strcmp(asked[j], e->key) == 0) {
                room[j].count += e->value;
                break;
            }
        }
    }
}


static void
ngx_http_goim_logic_room_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    yajl_gen                     g;
    ngx_uint_t                   i;
    ngx_http_goim_logic_room_t  *room;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    g = ngx_http_goim_logic_data_start(ctx);
    if (g == NULL) {
        return;
    }

    room = ctx->rooms.elts;

    yajl_gen_map_open(g);

    for (i = 0; i < ctx->rooms.nelts; i++) {
        yajl_gen_string(g, room[i].name.data, room[i].name.len);
        yajl_gen_integer(g, room[i].count);
    }

    yajl_gen_map_close(g);

    ngx_http_goim_logic_data_finish(ctx);
}


/* GET /goim/online/total */

ngx_int_t
ngx_http_goim_logic_online_total(ngx_http_goim_logic_ctx_t *ctx)
{
    Goim__OnlineTotalReq  req = GOIM__ONLINE_TOTAL_REQ__INIT;

    return ngx_http_goim_logic_ask_routers(ctx, ngx_http_goim_logic_total_each,
                                           ngx_http_goim_logic_total_done,
                                           GOIM__METHOD__ROUTER_ONLINE_TOTAL,
                                           &req.base);
}


static void
ngx_http_goim_logic_total_each(void *data, ngx_goim_rpc_result_t *res)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    Goim__OnlineTotalReply  *reply;

    reply = (Goim__OnlineTotalReply *) res->reply;

    /*
     * What comets report reaches every router alike: the largest is the
     * freshest; sessions are sharded: summed.
     */

    ctx->conn_count = ngx_max(ctx->conn_count, reply->conn_count);
    ctx->ip_count = ngx_max(ctx->ip_count, reply->ip_count);
    ctx->session_count += reply->session_count;
}


static void
ngx_http_goim_logic_total_done(void *data, ngx_int_t status,
    ngx_str_t *message)
{
    ngx_http_goim_logic_ctx_t *ctx = data;

    yajl_gen  g;

    if (ngx_http_goim_logic_rpc_done(ctx, status, message) != NGX_OK) {
        return;
    }

    g = ngx_http_goim_logic_data_start(ctx);
    if (g == NULL) {
        return;
    }

    yajl_gen_map_open(g);
    ngx_http_goim_logic_json_key(g, "conn_count");
    yajl_gen_integer(g, ctx->conn_count);
    ngx_http_goim_logic_json_key(g, "ip_count");
    yajl_gen_integer(g, ctx->ip_count);
    ngx_http_goim_logic_json_key(g, "session_count");
    yajl_gen_integer(g, ctx->session_count);
    yajl_gen_map_close(g);

    ngx_http_goim_logic_data_finish(ctx);
}


/* room counts from several routers: appended, then summed by name */

static ngx_int_t
ngx_http_goim_logic_add_room(ngx_http_goim_logic_ctx_t *ctx,
    const char *name, int64_t count)
{
    ngx_http_goim_logic_room_t  *room;

    room = ngx_array_push(&ctx->rooms);
    if (room == NULL) {
        return NGX_ERROR;
    }

    room->name.len = ngx_strlen(name);
    room->name.data = (u_char *) ngx_goim_logic_strdup(ctx->request->pool,
                                                  name);
    room->count = count;

    if (room->name.data == NULL) {
        ctx->rooms.nelts--;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_goim_logic_name_cmp(const void *one, const void *two)
{
    const ngx_http_goim_logic_room_t  *a = one, *b = two;

    return ngx_strcmp(a->name.data, b->name.data);
}


void
ngx_http_goim_logic_sum_rooms(ngx_http_goim_logic_ctx_t *ctx)
{
    ngx_uint_t                   i, n;
    ngx_http_goim_logic_room_t  *room;

    room = ctx->rooms.elts;

    ngx_qsort(room, ctx->rooms.nelts, sizeof(ngx_http_goim_logic_room_t),
              ngx_http_goim_logic_name_cmp);

    n = 0;

    for (i = 0; i < ctx->rooms.nelts; i++) {
        if (n && ngx_strcmp(room[n - 1].name.data, room[i].name.data) == 0) {
            room[n - 1].count += room[i].count;
            continue;
        }

        room[n++] = room[i];
    }

    ctx->rooms.nelts = n;
}
