/*
 * Internals shared by the RPC server and client (goim_uv_rpc_server.c,
 * goim_uv_rpc_client.c): the read buffer that frames are parsed from and
 * the write buffer a frame is sent from.  Not for the daemons.
 */

#ifndef GOIM_UV_RPC_INT_H
#define GOIM_UV_RPC_INT_H

#include "goim_uv_rpc.h"

#pragma GCC visibility push(hidden)

/* Bytes of free space offered to each read when no frame asks for more. */
#define GOIM_RBUF_CHUNK  65536


/*
 * Bytes read and not yet parsed are data[start..end).  Space for the next
 * read is made at the end: what is free, a chunk more once less than a
 * sixteenth of one is, or the rest of the frame whose header is in, so a
 * large frame is read in few calls.
 */
typedef struct {
    uint8_t       *data;
    size_t         start;
    size_t         end;
    size_t         cap;
} goim_rbuf_t;

/* libuv's alloc callback body; buf->len is 0 when memory ran out. */
void goim_rbuf_alloc(goim_rbuf_t *rb, size_t max_body, uv_buf_t *buf);

/*
 * Parses the next frame of rb: GOIM_OK (rb->start moves past it; pkt
 * points into rb), GOIM_AGAIN, or an error.  On GOIM_AGAIN the buffer is
 * compacted, and released when it is empty and large.
 */
goim_rc_t goim_rbuf_next(goim_rbuf_t *rb, size_t max_body,
    goim_packet_t *pkt);

void goim_rbuf_free(goim_rbuf_t *rb);


/* One frame being written: the libuv request and the bytes, one block. */
typedef struct {
    uv_write_t     req;
    goim_queue_t   queue;        /* the client's not-yet-sent list */
    size_t         len;
    uint8_t        data[];
} goim_wbuf_t;

goim_wbuf_t *goim_wbuf_frame(int32_t op, int32_t seq,
    const ProtobufCMessage *msg);
/* a copy of len bytes already framed (the handshake's) */
goim_wbuf_t *goim_wbuf_raw(const uint8_t *data, size_t len);
goim_wbuf_t *goim_wbuf_error(int32_t method, int32_t seq,
    Goim__ErrorCode code, const char *message);

/* Starts writing wb, which is freed when the write ends or fails;
 * returns 0 or a libuv error. */
int goim_wbuf_send(uv_stream_t *stream, goim_wbuf_t *wb);

/* "ip:port" of a socket address into buf. */
void goim_uv_sockaddr_name(const struct sockaddr *sa, char *buf,
    size_t len);

#pragma GCC visibility pop

#endif /* GOIM_UV_RPC_INT_H */
