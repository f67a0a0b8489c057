/*
 * The RPC channel between comet, logic, router and job: goim packets whose
 * body is one protobuf-c message (see goim.proto for the framing rules).
 *
 * This file knows the frame layout and the method table; transports (the
 * libuv one of the daemons, the NGINX one of the modules) move the bytes.
 */

#ifndef GOIM_RPC_H
#define GOIM_RPC_H

#include <protobuf-c/protobuf-c.h>

#include "goim_packet.h"

#pragma GCC visibility push(hidden)

#include "goim.pb-c.h"

#define GOIM_RPC_VERSION         1
#define GOIM_RPC_REPLY           0x40000000
#define GOIM_RPC_ERROR           0x20000000
#define GOIM_RPC_METHOD_MASK     0x0fffffff

/* gRPC's default in goim: 16 MiB per message */
#define GOIM_RPC_MAX_BODY_DEFAULT  (16 * 1024 * 1024)


typedef struct {
    int32_t                           method;
    const char                       *name;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *reply;
} goim_rpc_method_t;


/* The method's entry, or NULL for an unknown id. */
const goim_rpc_method_t *goim_rpc_method(int32_t method);

/* Bytes a frame carrying msg takes (msg may be NULL: empty body). */
size_t goim_rpc_frame_size(const ProtobufCMessage *msg);

/* Writes the frame into dst (goim_rpc_frame_size() bytes); returns them. */
size_t goim_rpc_frame_write(uint8_t *dst, int32_t op, int32_t seq,
    const ProtobufCMessage *msg);

/* Writes an error reply frame for method/seq into dst, which needs
 * goim_rpc_error_size(message) bytes. */
size_t goim_rpc_error_size(const char *message);
size_t goim_rpc_error_write(uint8_t *dst, int32_t method, int32_t seq,
    Goim__ErrorCode code, const char *message);

/*
 * The frame splitter both transports read with: given the bytes received
 * so far (buf[0..len)), GOIM_OK with the first frame in f (f->len bytes
 * of buf; f->pkt points into it); GOIM_AGAIN with f->need, the bytes the
 * frame takes whole (GOIM_HEADER_LEN while its header is not in), so a
 * reader can size its next read; or an error, goim_strerror() saying why:
 * the stream cannot be resynchronised and is closed.  A header announcing
 * a body over max_body is refused before the body is buffered.
 */
typedef struct {
    goim_packet_t    pkt;
    size_t           len;
    size_t           need;
} goim_rpc_frame_t;

goim_rc_t goim_rpc_frame_split(const uint8_t *buf, size_t len,
    size_t max_body, goim_rpc_frame_t *f);

/* Classify a received frame's operation. */
static inline int
goim_rpc_is_reply(int32_t op)
{
    return (op & (GOIM_RPC_REPLY | GOIM_RPC_ERROR)) != 0;
}

static inline int32_t
goim_rpc_op_method(int32_t op)
{
    return op & GOIM_RPC_METHOD_MASK;
}

/* Unpacks a request (reply != 0: a reply) body for method; NULL when the
 * method is unknown or the body is not a valid message.  Free it with
 * protobuf_c_message_free_unpacked(msg, allocator). */
ProtobufCMessage *goim_rpc_unpack(int32_t method, int reply,
    ProtobufCAllocator *allocator, const uint8_t *body, size_t len);

/* The RpcError body of an error reply, or NULL, as goim_rpc_unpack(). */
Goim__RpcError *goim_rpc_unpack_error(ProtobufCAllocator *allocator,
    const uint8_t *body, size_t len);

#pragma GCC visibility pop

#endif /* GOIM_RPC_H */
