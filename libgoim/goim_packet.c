/*
 * goim packet codec (see goim_packet.h).
 */

#include <stdlib.h>
#include <string.h>

#include "goim_packet.h"


goim_rc_t
goim_packet_parse(const uint8_t *buf, size_t len, size_t max_body,
    goim_packet_t *pkt, size_t *consumed)
{
    int32_t   pack_len;
    int16_t   header_len;
    size_t    body_len;

    *consumed = 0;

    if (len < GOIM_HEADER_LEN) {
        return GOIM_AGAIN;
    }

    pack_len = (int32_t) goim_get_be32(buf);
    header_len = (int16_t) goim_get_be16(buf + 4);

    if (header_len != GOIM_HEADER_LEN) {
        return GOIM_ERR_HEADER_LEN;
    }

    if (pack_len < 0) {
        return GOIM_ERR_NEGATIVE_LEN;
    }

    /*
     * goim accepts 0 <= packLen < 16 as "empty body" but then disagrees
     * with itself on how many bytes the packet took; a length shorter
     * than the header it sits in is malformed, so it is refused.
     */
    if (pack_len < GOIM_HEADER_LEN) {
        return GOIM_ERR_SHORT_LEN;
    }

    body_len = (size_t) pack_len - GOIM_HEADER_LEN;

    if (body_len > max_body) {
        return GOIM_ERR_TOO_LARGE;
    }

    if (len - GOIM_HEADER_LEN < body_len) {
        return GOIM_AGAIN;
    }

    pkt->header.pack_len = pack_len;
    pkt->header.header_len = header_len;
    pkt->header.ver = (int16_t) goim_get_be16(buf + 6);
    pkt->header.op = (int32_t) goim_get_be32(buf + 8);
    pkt->header.seq = (int32_t) goim_get_be32(buf + 12);
    pkt->body = buf + GOIM_HEADER_LEN;
    pkt->body_len = body_len;

    *consumed = (size_t) pack_len;

    return GOIM_OK;
}


const char *
goim_strerror(goim_rc_t rc)
{
    switch (rc) {
    case GOIM_OK:
        return "ok";
    case GOIM_AGAIN:
        return "incomplete packet";
    case GOIM_ERR_HEADER_LEN:
        return "header length is not 16";
    case GOIM_ERR_NEGATIVE_LEN:
        return "negative packet length";
    case GOIM_ERR_SHORT_LEN:
        return "packet length shorter than its header";
    case GOIM_ERR_TOO_LARGE:
        return "packet body too large";
    }

    return "unknown error";
}


void
goim_header_write(uint8_t *dst, size_t body_len, int16_t ver, int32_t op,
    int32_t seq)
{
    goim_put_be32(dst, (uint32_t) (GOIM_HEADER_LEN + body_len));
    goim_put_be16(dst + 4, GOIM_HEADER_LEN);
    goim_put_be16(dst + 6, (uint16_t) ver);
    goim_put_be32(dst + 8, (uint32_t) op);
    goim_put_be32(dst + 12, (uint32_t) seq);
}


size_t
goim_packet_write(uint8_t *dst, int16_t ver, int32_t op, int32_t seq,
    const void *body, size_t body_len)
{
    goim_header_write(dst, body_len, ver, op, seq);

    if (body_len) {
        memcpy(dst + GOIM_HEADER_LEN, body, body_len);
    }

    return GOIM_HEADER_LEN + body_len;
}


static void *
goim_default_realloc(void *ctx, void *ptr, size_t size)
{
    (void) ctx;

    if (size == 0) {
        free(ptr);
        return NULL;
    }

    return realloc(ptr, size);
}


int
goim_batch_init(goim_batch_t *b, size_t cap, goim_realloc_pt realloc_fn,
    void *ctx)
{
    b->realloc = realloc_fn ? realloc_fn : goim_default_realloc;
    b->ctx = ctx;
    b->count = 0;
    b->len = GOIM_HEADER_LEN;
    b->cap = cap < GOIM_HEADER_LEN ? GOIM_HEADER_LEN : cap;

    b->data = b->realloc(b->ctx, NULL, b->cap);
    if (b->data == NULL) {
        b->cap = 0;
        b->len = 0;
        return -1;
    }

    return 0;
}


int
goim_batch_append(goim_batch_t *b, int16_t ver, int32_t op, int32_t seq,
    const void *body, size_t body_len)
{
    size_t    need, cap;
    uint8_t  *p;

    need = b->len + GOIM_HEADER_LEN + body_len;

    if (need > INT32_MAX) {
        return -1;
    }

    if (need > b->cap) {
        cap = b->cap * 2;
        if (cap < need) {
            cap = need;
        }

        p = b->realloc(b->ctx, b->data, cap);
        if (p == NULL) {
            return -1;
        }

        b->data = p;
        b->cap = cap;
    }

    b->len += goim_packet_write(b->data + b->len, ver, op, seq, body,
                                body_len);
    b->count++;

    return 0;
}


void
goim_batch_finish(goim_batch_t *b, int16_t ver, int32_t seq)
{
    goim_header_write(b->data, b->len - GOIM_HEADER_LEN, ver, GOIM_OP_RAW,
                      seq);
}


void
goim_batch_free(goim_batch_t *b)
{
    if (b->data) {
        b->realloc(b->ctx, b->data, 0);
    }

    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->count = 0;
}
