/*
 * libFuzzer target: every protobuf message an RPC listener decodes.  The
 * first byte picks the method (of goim.proto's Method enum) and whether
 * the rest is its request, its reply or an error reply's RpcError; the
 * rest is unpacked as goim_rpc_unpack() does for a listener.  What
 * unpacks is packed back, framed, split and unpacked again: it must come
 * back byte for byte (protobuf-c's packing is canonical after one round).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goim_rpc.h"


static uint8_t *
pack(const ProtobufCMessage *msg, size_t *len)
{
    uint8_t  *buf;

    *len = protobuf_c_message_get_packed_size(msg);

    buf = malloc(*len ? *len : 1);
    if (buf == NULL || protobuf_c_message_pack(msg, buf) != *len) {
        abort();
    }

    return buf;
}


static ProtobufCMessage *
unpack(int32_t method, unsigned kind, const uint8_t *body, size_t len)
{
    if (kind == 2) {
        return (ProtobufCMessage *) goim_rpc_unpack_error(NULL, body, len);
    }

    return goim_rpc_unpack(method, (int) kind, NULL, body, len);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                     len1, len2;
    int32_t                    method, op;
    uint8_t                   *buf1, *buf2, *frame;
    unsigned                   kind;
    ProtobufCMessage          *msg, *again;
    goim_rpc_frame_t           f;
    const ProtobufCEnumValue  *ev;

    if (size < 1) {
        return 0;
    }

    ev = &goim__method__descriptor.values[(data[0] >> 2)
                                          % goim__method__descriptor.n_values];
    method = ev->value;
    kind = data[0] & 3;
    data++;
    size--;

    if (kind == 3) {
        /* unknown methods and the ids between: refused, never a crash */
        method = (int32_t) (method + (size ? data[0] : 1));
        if (goim_rpc_method(method) == NULL
            && goim_rpc_unpack(method, 0, NULL, data, size) != NULL)
        {
            abort();
        }

        return 0;
    }

    if (goim_rpc_method(method) == NULL) {
        if (goim_rpc_unpack(method, (int) kind, NULL, data, size) != NULL) {
            abort();
        }

        return 0;
    }

    msg = unpack(method, kind, data, size);
    if (msg == NULL) {
        return 0;
    }

    buf1 = pack(msg, &len1);

    /* as a listener answers: a whole frame, read back by the splitter */

    op = method | (kind == 1 ? GOIM_RPC_REPLY : 0)
         | (kind == 2 ? GOIM_RPC_ERROR : 0);

    frame = malloc(goim_rpc_frame_size(msg));
    if (frame == NULL
        || goim_rpc_frame_write(frame, op, 7, msg) != goim_rpc_frame_size(msg)
        || goim_rpc_frame_split(frame, goim_rpc_frame_size(msg), len1, &f)
           != GOIM_OK
        || f.pkt.body_len != len1
        || memcmp(f.pkt.body, buf1, len1) != 0
        || goim_rpc_op_method(f.pkt.header.op) != method
        || goim_rpc_is_reply(f.pkt.header.op) != (kind != 0))
    {
        abort();
    }

    again = unpack(method, kind, f.pkt.body, f.pkt.body_len);
    if (again == NULL) {
        abort();
    }

    buf2 = pack(again, &len2);

    if (len1 != len2 || memcmp(buf1, buf2, len1) != 0) {
        abort();
    }

    free(frame);
    free(buf1);
    free(buf2);
    protobuf_c_message_free_unpacked(again, NULL);
    protobuf_c_message_free_unpacked(msg, NULL);

    return 0;
}
