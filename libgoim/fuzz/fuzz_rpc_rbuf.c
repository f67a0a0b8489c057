/*
 * libFuzzer target: the daemons' RPC read buffer (goim_rbuf_alloc() and
 * goim_rbuf_next(), libgoim/uv/goim_uv_rpc.c) as libuv drives it: space
 * is offered, a read fills part of it, frames are taken off.  The first
 * byte picks the maximum body, the second the most a read returns.  The
 * buffer must never be written or read past, must offer room for the rest
 * of a frame whose header is in, give back a large buffer once empty, and
 * split exactly as goim_rpc_frame_split() does on the whole input.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goim_uv_rpc_int.h"


/*
 * Every run frees a read buffer of a chunk (64 KiB) or more: ASan's
 * default 256 MB quarantine of them made runs page-fault bound (300 runs/s
 * against 1300 with 8 MB).
 */
const char *
__asan_default_options(void)
{
    return "quarantine_size_mb=8";
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t             max_body, step, fed, n, pos, frames, whole;
    uv_buf_t           buf;
    goim_rc_t          rc, whole_rc;
    goim_rbuf_t        rb;
    goim_packet_t      pkt;
    goim_rpc_frame_t   f;

    if (size < 2) {
        return 0;
    }

    /* past GOIM_RBUF_CHUNK too: the path sizing reads to a large frame */
    max_body = data[0] < 0xf0 ? (size_t) data[0] * 16 : 2 * GOIM_RBUF_CHUNK;
    step = (size_t) data[1] * 64 + 1;
    data += 2;
    size -= 2;

    /* the reference: the splitter over everything at once */

    whole = 0;
    pos = 0;

    for ( ;; ) {
        whole_rc = goim_rpc_frame_split(data + pos, size - pos, max_body, &f);
        if (whole_rc != GOIM_OK) {
            break;
        }

        pos += f.len;
        whole++;
    }

    memset(&rb, 0, sizeof(rb));
    fed = 0;
    frames = 0;
    rc = GOIM_AGAIN;

    while (fed < size && rc == GOIM_AGAIN) {
        goim_rbuf_alloc(&rb, max_body, &buf);

        if (buf.base == NULL || buf.len == 0
            || (char *) buf.base + buf.len != (char *) rb.data + rb.cap)
        {
            abort();
        }

        if (rb.end - rb.start >= GOIM_HEADER_LEN
            && goim_rpc_frame_split(rb.data + rb.start, rb.end - rb.start,
                                    max_body, &f)
               == GOIM_AGAIN
            && buf.len < f.need - (rb.end - rb.start))
        {
            abort();
        }

        n = size - fed;
        n = n < step ? n : step;
        n = n < buf.len ? n : buf.len;
        memcpy(buf.base, data + fed, n);
        fed += n;
        rb.end += n;

        for ( ;; ) {
            rc = goim_rbuf_next(&rb, max_body, &pkt);

            if (rc != GOIM_OK) {
                break;
            }

            if (pkt.body_len > max_body
                || pkt.body < rb.data || pkt.body + pkt.body_len
                                         > rb.data + rb.start)
            {
                abort();
            }

            frames++;
        }

        if (rb.start > rb.end || rb.end > rb.cap) {
            abort();
        }

        if (rc == GOIM_AGAIN && rb.start == rb.end
            && rb.cap > 4 * GOIM_RBUF_CHUNK)
        {
            abort();
        }
    }

    if (frames != whole || rc != whole_rc) {
        abort();
    }

    goim_rbuf_free(&rb);

    return 0;
}
