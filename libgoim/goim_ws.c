/*
 * RFC 6455 frame codec (see goim_ws.h).
 */

#include "goim_ws.h"


goim_ws_rc_t
goim_ws_parse(const uint8_t *buf, size_t len, uint64_t max_payload,
    goim_ws_frame_t *frame)
{
    return goim_ws_parse_ext(buf, len, max_payload, 0, frame);
}


goim_ws_rc_t
goim_ws_parse_ext(const uint8_t *buf, size_t len, uint64_t max_payload,
    int rsv1, goim_ws_frame_t *frame)
{
    size_t    need;
    uint64_t  plen;
    unsigned  op, i;

    if (len < 2) {
        return GOIM_WS_AGAIN;
    }

    op = buf[0] & 0x0f;

    /* RFC 7692 §6.1: RSV1 marks the first frame of a compressed message */
    if ((buf[0] & 0x30)
        || ((buf[0] & 0x40)
            && (!rsv1 || (op != GOIM_WS_OP_TEXT && op != GOIM_WS_OP_BINARY))))
    {
        return GOIM_WS_ERR_RSV;
    }

    switch (op) {
    case GOIM_WS_OP_CONT:
    case GOIM_WS_OP_TEXT:
    case GOIM_WS_OP_BINARY:
        break;

    case GOIM_WS_OP_CLOSE:
    case GOIM_WS_OP_PING:
    case GOIM_WS_OP_PONG:
        if (!(buf[0] & 0x80) || (buf[1] & 0x7f) > 125) {
            return GOIM_WS_ERR_CONTROL;
        }
        break;

    default:
        return GOIM_WS_ERR_OPCODE;
    }

    if (!(buf[1] & 0x80)) {
        return GOIM_WS_ERR_UNMASKED;
    }

    plen = buf[1] & 0x7f;
    need = 2;

    if (plen == 126) {
        need = 4;
        if (len < need) {
            return GOIM_WS_AGAIN;
        }

        plen = ((uint64_t) buf[2] << 8) | buf[3];
        if (plen < 126) {
            return GOIM_WS_ERR_LENGTH;
        }

    } else if (plen == 127) {
        need = 10;
        if (len < need) {
            return GOIM_WS_AGAIN;
        }

        if (buf[2] & 0x80) {
            return GOIM_WS_ERR_LENGTH;
        }

        for (plen = 0, i = 2; i < 10; i++) {
            plen = (plen << 8) | buf[i];
        }

        if (plen <= 0xffff) {
            return GOIM_WS_ERR_LENGTH;
        }
    }

    /* refused from the header, before any payload is buffered */
    if (plen > max_payload) {
        return GOIM_WS_ERR_TOO_BIG;
    }

    need += 4;
    if (len < need) {
        return GOIM_WS_AGAIN;
    }

    frame->fin = (buf[0] & 0x80) ? 1 : 0;
    frame->rsv1 = (buf[0] & 0x40) ? 1 : 0;
    frame->opcode = op;
    frame->masked = 1;
    frame->mask[0] = buf[need - 4];
    frame->mask[1] = buf[need - 3];
    frame->mask[2] = buf[need - 2];
    frame->mask[3] = buf[need - 1];
    frame->header_len = need;
    frame->payload_len = plen;

    if (len - need < plen) {
        return GOIM_WS_AGAIN;
    }

    return GOIM_WS_OK;
}


const char *
goim_ws_strerror(goim_ws_rc_t rc)
{
    switch (rc) {
    case GOIM_WS_OK:
        return "ok";
    case GOIM_WS_AGAIN:
        return "incomplete frame";
    case GOIM_WS_ERR_RSV:
        return "reserved bits set in a frame";
    case GOIM_WS_ERR_OPCODE:
        return "unknown frame opcode";
    case GOIM_WS_ERR_UNMASKED:
        return "unmasked client frame";
    case GOIM_WS_ERR_CONTROL:
        return "fragmented or oversize control frame";
    case GOIM_WS_ERR_TOO_BIG:
        return "frame too large";
    case GOIM_WS_ERR_LENGTH:
        return "invalid frame length encoding";
    }

    return "unknown error";
}


void
goim_ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4],
    size_t offset)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        data[i] ^= mask[(offset + i) & 3];
    }
}


size_t
goim_ws_header_write(uint8_t *dst, unsigned opcode, uint64_t len)
{
    unsigned  i;

    dst[0] = (uint8_t) (0x80 | (opcode & 0x0f));

    if (len < 126) {
        dst[1] = (uint8_t) len;
        return 2;
    }

    if (len <= 0xffff) {
        dst[1] = 126;
        dst[2] = (uint8_t) (len >> 8);
        dst[3] = (uint8_t) len;
        return 4;
    }

    dst[1] = 127;

    for (i = 0; i < 8; i++) {
        dst[2 + i] = (uint8_t) (len >> (56 - 8 * i));
    }

    return 10;
}


int
goim_ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003)
           || (code >= 1007 && code <= 1014)
           || (code >= 3000 && code <= 4999);
}


int
goim_ws_utf8_valid(const uint8_t *data, size_t len)
{
    size_t    i, n, k;
    uint32_t  cp, min;

    for (i = 0; i < len; i += n) {
        if (data[i] < 0x80) {
            n = 1;
            continue;
        }

        if ((data[i] & 0xe0) == 0xc0) {
            n = 2;
            cp = data[i] & 0x1f;
            min = 0x80;

        } else if ((data[i] & 0xf0) == 0xe0) {
            n = 3;
            cp = data[i] & 0x0f;
            min = 0x800;

        } else if ((data[i] & 0xf8) == 0xf0) {
            n = 4;
            cp = data[i] & 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (len - i < n) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((data[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (data[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


unsigned
goim_ws_close_reply(const uint8_t *payload, size_t len, const char **err)
{
    unsigned  code;

    *err = NULL;

    if (len == 0) {
        return GOIM_WS_CLOSE_NORMAL;
    }

    if (len == 1) {
        *err = "close frame with a 1-byte payload";
        return GOIM_WS_CLOSE_PROTOCOL;
    }

    code = ((unsigned) payload[0] << 8) | payload[1];

    if (!goim_ws_close_code_valid(code)) {
        *err = "invalid close status code";
        return GOIM_WS_CLOSE_PROTOCOL;
    }

    if (!goim_ws_utf8_valid(payload + 2, len - 2)) {
        *err = "close reason is not valid UTF-8";
        return GOIM_WS_CLOSE_BAD_DATA;
    }

    return code;
}
