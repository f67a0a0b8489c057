/*
 * RFC 6455 frames, server side: parse client frames from a caller-owned
 * buffer without reading past it, unmask payloads, write frame headers.
 * No allocation and no I/O, so it is fuzzed on its own.
 */

#ifndef GOIM_WS_H
#define GOIM_WS_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

#define GOIM_WS_OP_CONT      0x0
#define GOIM_WS_OP_TEXT      0x1
#define GOIM_WS_OP_BINARY    0x2
#define GOIM_WS_OP_CLOSE     0x8
#define GOIM_WS_OP_PING      0x9
#define GOIM_WS_OP_PONG      0xa

/* close status codes (RFC 6455 §7.4.1) */
#define GOIM_WS_CLOSE_NORMAL        1000
#define GOIM_WS_CLOSE_GOING_AWAY    1001
#define GOIM_WS_CLOSE_PROTOCOL      1002
#define GOIM_WS_CLOSE_UNSUPPORTED   1003
#define GOIM_WS_CLOSE_NO_STATUS     1005     /* never on the wire */
#define GOIM_WS_CLOSE_BAD_DATA      1007
#define GOIM_WS_CLOSE_POLICY        1008
#define GOIM_WS_CLOSE_TOO_BIG       1009

#define GOIM_WS_MAX_HEADER   14          /* 2 + 8 length + 4 mask */

typedef enum {
    GOIM_WS_OK = 0,                      /* a whole frame is there */
    GOIM_WS_AGAIN = 1,                   /* need more bytes */
    GOIM_WS_ERR_RSV = -1,                /* reserved bits set: no extensions */
    GOIM_WS_ERR_OPCODE = -2,             /* unknown opcode */
    GOIM_WS_ERR_UNMASKED = -3,           /* client frames must be masked */
    GOIM_WS_ERR_CONTROL = -4,            /* control frame fragmented or > 125 */
    GOIM_WS_ERR_TOO_BIG = -5,            /* payload over the maximum */
    GOIM_WS_ERR_LENGTH = -6              /* non-minimal or 64-bit MSB set */
} goim_ws_rc_t;

typedef struct {
    unsigned        fin:1;
    unsigned        rsv1:1;              /* permessage-deflate: compressed */
    unsigned        masked:1;
    unsigned        opcode:4;
    uint8_t         mask[4];             /* copied: the buffer may move */
    size_t          header_len;
    uint64_t        payload_len;
} goim_ws_frame_t;

/* Parses the frame header at buf[0..len); on GOIM_WS_OK the whole payload
 * is in the buffer at buf + header_len. */
goim_ws_rc_t goim_ws_parse(const uint8_t *buf, size_t len, uint64_t max_payload,
    goim_ws_frame_t *frame);

/* As goim_ws_parse(), on a connection that negotiated permessage-deflate
 * (RFC 7692) when rsv1 is 1: RSV1 may then be set on the first frame of a
 * data message (frame->rsv1), never on a control or continuation frame. */
goim_ws_rc_t goim_ws_parse_ext(const uint8_t *buf, size_t len,
    uint64_t max_payload, int rsv1, goim_ws_frame_t *frame);

const char *goim_ws_strerror(goim_ws_rc_t rc);

/* XORs len bytes with the mask, starting at payload offset "offset". */
void goim_ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4],
    size_t offset);

/* Writes an unmasked server frame header; returns its length (2..10). */
size_t goim_ws_header_write(uint8_t *dst, unsigned opcode, uint64_t len);

/* 1 if a close frame may carry code (RFC 6455 §7.4: 1000-1003, 1007-1014
 * as registered, 3000-4999 for libraries and applications). */
int goim_ws_close_code_valid(unsigned code);

/* 1 if data[0..len) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF). */
int goim_ws_utf8_valid(const uint8_t *data, size_t len);

/* The status a server answers a client's (unmasked) close payload with:
 * the client's own when it is valid, 1000 when the frame has none, 1002
 * for a 1-byte payload or a code §7.4 forbids, 1007 for a reason that is
 * not UTF-8 (§8.1).  *err is NULL, or why the frame is refused. */
unsigned goim_ws_close_reply(const uint8_t *payload, size_t len,
    const char **err);

#pragma GCC visibility pop

#endif /* GOIM_WS_H */
