
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


/*
 * Rooms of one worker: a room is its members' list, made on the first
 * join and freed with the last leave.  A channel is in at most one room;
 * ch->room says which, so membership never hangs on list pointers alone
 * (goim's list corruption bugs, #306, #363, #377).
 */


ngx_goim_comet_room_t *
ngx_goim_room_lookup(ngx_goim_comet_worker_t *wk, ngx_str_t *name)
{
    return (ngx_goim_comet_room_t *) ngx_str_rbtree_lookup(&wk->rooms, name,
                                     ngx_crc32_long(name->data, name->len));
}


ngx_int_t
ngx_goim_room_join(ngx_goim_channel_t *ch, ngx_str_t *name)
{
    ngx_goim_comet_worker_t  *wk;
    ngx_goim_comet_room_t    *room;

    wk = ch->worker;

    if (ch->room) {
        if (ch->room->node.str.len == name->len
            && ngx_memcmp(ch->room->node.str.data, name->data, name->len) == 0)
        {
            /* goim drops and fails to re-create a room one rejoins */
            return NGX_OK;
        }

        ngx_goim_room_leave(ch);
    }

    if (name->len == 0) {
        return NGX_OK;
    }

    room = ngx_goim_room_lookup(wk, name);

    if (room == NULL) {
        room = ngx_calloc(sizeof(ngx_goim_comet_room_t) + name->len + 1,
                          ch->connection->log);
        if (room == NULL) {
            return NGX_ERROR;
        }

        room->node.str.data = (u_char *) (room + 1);
        room->node.str.len = name->len;
        ngx_memcpy(room->node.str.data, name->data, name->len);
        room->node.node.key = ngx_crc32_long(name->data, name->len);

        ngx_queue_init(&room->members);
        ngx_rbtree_insert(&wk->rooms, &room->node.node);
        wk->stats->rooms++;
        ngx_goim_comet_tables_room_add(wk, &room->node);
    }

    ngx_queue_insert_tail(&room->members, &ch->room_link);
    room->online++;
    ch->room = room;

    return NGX_OK;
}


void
ngx_goim_room_leave(ngx_goim_channel_t *ch)
{
    ngx_goim_comet_room_t  *room;

    room = ch->room;

    if (room == NULL) {
        return;
    }

    ngx_queue_remove(&ch->room_link);
    ch->room = NULL;

    if (--room->online == 0) {
        /* first: ngx_rbtree_delete() zeroes the node's key, the hash */
        ngx_goim_comet_tables_room_del(ch->worker, &room->node);
        ngx_rbtree_delete(&ch->worker->rooms, &room->node.node);
        ch->worker->stats->rooms--;
        ngx_free(room);
    }
}


/* what a heartbeat reply says: everyone's count once logic has told it */

int32_t
ngx_goim_room_online(ngx_goim_comet_room_t *room)
{
    if (room == NULL) {
        return 0;
    }

    return room->all_online > 0 ? room->all_online : (int32_t) room->online;
}
