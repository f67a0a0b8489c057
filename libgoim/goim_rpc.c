/*
 * RPC frames and the method table (see goim_rpc.h).
 */

#include <string.h>

#include "goim_rpc.h"


#define GOIM_RPC_METHOD(m, name, req, rep)                                    \
    { GOIM__METHOD__##m, name, &goim__##req##__descriptor,                    \
      &goim__##rep##__descriptor }

static const goim_rpc_method_t  goim_rpc_methods[] = {
    GOIM_RPC_METHOD(LOGIC_CONNECT, "Logic.Connect",
                    connect_req, connect_reply),
    GOIM_RPC_METHOD(LOGIC_DISCONNECT, "Logic.Disconnect",
                    disconnect_req, disconnect_reply),
    GOIM_RPC_METHOD(LOGIC_HEARTBEAT, "Logic.Heartbeat",
                    heartbeat_req, heartbeat_reply),
    GOIM_RPC_METHOD(LOGIC_RENEW_ONLINE, "Logic.RenewOnline",
                    online_req, online_reply),
    GOIM_RPC_METHOD(LOGIC_RECEIVE, "Logic.Receive",
                    receive_req, receive_reply),
    GOIM_RPC_METHOD(LOGIC_NODES, "Logic.Nodes", nodes_req, nodes_reply),

    GOIM_RPC_METHOD(COMET_PUSH_MSG, "Comet.PushMsg",
                    push_msg_req, push_msg_reply),
    GOIM_RPC_METHOD(COMET_BROADCAST, "Comet.Broadcast",
                    broadcast_req, broadcast_reply),
    GOIM_RPC_METHOD(COMET_BROADCAST_ROOM, "Comet.BroadcastRoom",
                    broadcast_room_req, broadcast_room_reply),
    GOIM_RPC_METHOD(COMET_ROOMS, "Comet.Rooms", rooms_req, rooms_reply),

    GOIM_RPC_METHOD(ROUTER_SESSION_PUT, "Router.SessionPut",
                    session_put_req, session_put_reply),
    GOIM_RPC_METHOD(ROUTER_SESSION_DEL, "Router.SessionDel",
                    session_del_req, session_del_reply),
    GOIM_RPC_METHOD(ROUTER_SESSION_RENEW, "Router.SessionRenew",
                    session_renew_req, session_renew_reply),
    GOIM_RPC_METHOD(ROUTER_SESSIONS_BY_MIDS, "Router.SessionsByMids",
                    sessions_by_mids_req, sessions_reply),
    GOIM_RPC_METHOD(ROUTER_SESSIONS_BY_KEYS, "Router.SessionsByKeys",
                    sessions_by_keys_req, sessions_reply),
    GOIM_RPC_METHOD(ROUTER_COMET_RENEW, "Router.CometRenew",
                    comet_renew_req, comet_renew_reply),
    GOIM_RPC_METHOD(ROUTER_COMET_DEL, "Router.CometDel",
                    comet_del_req, comet_del_reply),
    GOIM_RPC_METHOD(ROUTER_COMET_LIST, "Router.CometList",
                    comet_list_req, comet_list_reply),
    GOIM_RPC_METHOD(ROUTER_ONLINE_TOP, "Router.OnlineTop",
                    online_top_req, online_top_reply),
    GOIM_RPC_METHOD(ROUTER_ONLINE_ROOM, "Router.OnlineRoom",
                    online_room_req, online_room_reply),
    GOIM_RPC_METHOD(ROUTER_ONLINE_TOTAL, "Router.OnlineTotal",
                    online_total_req, online_total_reply),
    GOIM_RPC_METHOD(ROUTER_STATS, "Router.Stats", stats_req, stats_reply),

    GOIM_RPC_METHOD(JOB_PUSH, "Job.Push", job_push_req, job_push_reply),
    GOIM_RPC_METHOD(JOB_STATS, "Job.Stats", stats_req, stats_reply),
};


const goim_rpc_method_t *
goim_rpc_method(int32_t method)
{
    size_t  i;

    for (i = 0; i < sizeof(goim_rpc_methods) / sizeof(goim_rpc_methods[0]);
         i++)
    {
        if (goim_rpc_methods[i].method == method) {
            return &goim_rpc_methods[i];
        }
    }

    return NULL;
}


size_t
goim_rpc_frame_size(const ProtobufCMessage *msg)
{
    return GOIM_HEADER_LEN + (msg ? protobuf_c_message_get_packed_size(msg)
                                  : 0);
}


size_t
goim_rpc_frame_write(uint8_t *dst, int32_t op, int32_t seq,
    const ProtobufCMessage *msg)
{
    size_t  len;

    len = msg ? protobuf_c_message_pack(msg, dst + GOIM_HEADER_LEN) : 0;

    goim_header_write(dst, len, GOIM_RPC_VERSION, op, seq);

    return GOIM_HEADER_LEN + len;
}


size_t
goim_rpc_error_size(const char *message)
{
    Goim__RpcError  err = GOIM__RPC_ERROR__INIT;

    err.code = GOIM__ERROR_CODE__ERROR_INTERNAL;
    err.message = (char *) (message ? message : "");

    return goim_rpc_frame_size(&err.base);
}


size_t
goim_rpc_error_write(uint8_t *dst, int32_t method, int32_t seq,
    Goim__ErrorCode code, const char *message)
{
    Goim__RpcError  err = GOIM__RPC_ERROR__INIT;

    err.code = code;
    err.message = (char *) (message ? message : "");

    return goim_rpc_frame_write(dst, method | GOIM_RPC_ERROR, seq, &err.base);
}


ProtobufCMessage *
goim_rpc_unpack(int32_t method, int reply, ProtobufCAllocator *allocator,
    const uint8_t *body, size_t len)
{
    const goim_rpc_method_t  *m;

    m = goim_rpc_method(method);
    if (m == NULL) {
        return NULL;
    }

    return protobuf_c_message_unpack(reply ? m->reply : m->request,
                                     allocator, len, body);
}
