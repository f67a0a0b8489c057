/*
 * goim packet codec: the 16-byte big-endian header every goim client and
 * every ngx_goim RPC frame starts with.
 *
 *   offset 0   int32  packet length (header + body)
 *   offset 4   int16  header length, always 16
 *   offset 6   int16  version
 *   offset 8   int32  operation
 *   offset 12  int32  sequence
 *   offset 16         body
 *
 * Plain C, no allocation: the parser looks at a caller-owned buffer and
 * never reads past the length it is given, so it works on partial reads
 * (it answers GOIM_AGAIN until a whole packet is there).
 */

#ifndef GOIM_PACKET_H
#define GOIM_PACKET_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

#define GOIM_HEADER_LEN          16
#define GOIM_MAX_BODY_DEFAULT    4096

/* goim v2 operations (api/protocol/operation.go) */
#define GOIM_OP_HANDSHAKE        0
#define GOIM_OP_HANDSHAKE_REPLY  1
#define GOIM_OP_HEARTBEAT        2
#define GOIM_OP_HEARTBEAT_REPLY  3
#define GOIM_OP_SEND_MSG         4
#define GOIM_OP_SEND_MSG_REPLY   5
#define GOIM_OP_DISCONNECT_REPLY 6
#define GOIM_OP_AUTH             7
#define GOIM_OP_AUTH_REPLY       8
#define GOIM_OP_RAW              9
#define GOIM_OP_PROTO_READY      10
#define GOIM_OP_PROTO_FINISH     11
#define GOIM_OP_CHANGE_ROOM      12
#define GOIM_OP_CHANGE_ROOM_REPLY 13
#define GOIM_OP_SUB              14
#define GOIM_OP_SUB_REPLY        15
#define GOIM_OP_UNSUB            16
#define GOIM_OP_UNSUB_REPLY      17
#define GOIM_OP_ACK              18      /* not in goim: docs/protocol.md */
#define GOIM_OP_ENSURE           19
#define GOIM_OP_POSITION         20      /* room recovery */
#define GOIM_OP_RECOVERY         21

/* server-originated packets carry version 1, as in goim v2 */
#define GOIM_PUSH_VERSION        1


typedef enum {
    GOIM_OK = 0,                 /* a whole packet was parsed */
    GOIM_AGAIN = 1,              /* need more bytes */
    GOIM_ERR_HEADER_LEN = -1,    /* header length field is not 16 */
    GOIM_ERR_NEGATIVE_LEN = -2,  /* packet length < 0 */
    GOIM_ERR_SHORT_LEN = -3,     /* 0 <= packet length < 16 */
    GOIM_ERR_TOO_LARGE = -4      /* body longer than the maximum */
} goim_rc_t;


typedef struct {
    int32_t         pack_len;
    int16_t         header_len;
    int16_t         ver;
    int32_t         op;
    int32_t         seq;
} goim_header_t;


typedef struct {
    goim_header_t   header;
    const uint8_t  *body;        /* points into the parsed buffer */
    size_t          body_len;
} goim_packet_t;


/*
 * Parses the packet at the start of buf[0..len).  On GOIM_OK fills *pkt
 * and sets *consumed to the packet's whole length; on GOIM_AGAIN nothing
 * is consumed; on an error the input cannot be resynchronised and the
 * connection should be closed.  The header is validated as soon as its
 * 16 bytes are in, so an oversize length is refused before its body is
 * buffered.
 */
goim_rc_t goim_packet_parse(const uint8_t *buf, size_t len, size_t max_body,
    goim_packet_t *pkt, size_t *consumed);

const char *goim_strerror(goim_rc_t rc);

/* Writes a 16-byte header for a body of body_len bytes. */
void goim_header_write(uint8_t *dst, size_t body_len, int16_t ver,
    int32_t op, int32_t seq);

/* Writes header and body; dst needs GOIM_HEADER_LEN + body_len bytes.
 * Returns the bytes written. */
size_t goim_packet_write(uint8_t *dst, int16_t ver, int32_t op, int32_t seq,
    const void *body, size_t body_len);

static inline uint32_t
goim_get_be32(const uint8_t *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

static inline uint16_t
goim_get_be16(const uint8_t *p)
{
    return (uint16_t) (((uint16_t) p[0] << 8) | p[1]);
}

static inline void
goim_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

/* The length of the whole packet at p, or 0 when [p, last) does not hold
 * one (a batch's packets, already checked when the batch was made). */
static inline size_t
goim_packet_len(const uint8_t *p, const uint8_t *last)
{
    uint32_t  len;

    if (last - p < GOIM_HEADER_LEN) {
        return 0;
    }

    len = goim_get_be32(p);

    if (len < GOIM_HEADER_LEN || len > (size_t) (last - p)) {
        return 0;
    }

    return len;
}

static inline void
goim_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}


/*
 * OpRaw batches: an op-9 packet whose body is whole packets back to back.
 * The buffer is caller-owned memory grown through an allocator hook, so
 * NGINX code can back it with its pools and the daemons with malloc.
 */

typedef void *(*goim_realloc_pt)(void *ctx, void *ptr, size_t size);

typedef struct {
    uint8_t         *data;
    size_t           len;
    size_t           cap;
    unsigned         count;      /* inner packets appended */
    goim_realloc_pt  realloc;    /* NULL: the C library's realloc() */
    void            *ctx;
} goim_batch_t;

/* Starts an empty batch; its outer header is reserved at data[0..16). */
int goim_batch_init(goim_batch_t *b, size_t cap, goim_realloc_pt realloc,
    void *ctx);

/* Appends one inner packet; returns 0, or -1 when allocation failed. */
int goim_batch_append(goim_batch_t *b, int16_t ver, int32_t op, int32_t seq,
    const void *body, size_t body_len);

/* Fills in the outer op-9 header; the whole packet is data[0..len). */
void goim_batch_finish(goim_batch_t *b, int16_t ver, int32_t seq);

void goim_batch_free(goim_batch_t *b);

#pragma GCC visibility pop

#endif /* GOIM_PACKET_H */
