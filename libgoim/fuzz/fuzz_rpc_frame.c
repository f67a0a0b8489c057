/*
 * libFuzzer target: the RPC frame splitter both transports read with
 * (goim_rpc_frame_split()), on arbitrary bytes fed whole and in pieces, as
 * a socket delivers them.  The first byte picks the maximum body (small
 * ones too, so refusals are reached), the second the piece size.  The
 * splitter must never read past what it is given, never ask for less
 * than it has or more than the maximum allows, and agree with itself
 * whatever the split.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goim_rpc.h"


typedef struct {
    size_t      frames;
    uint32_t    sum;         /* of each frame's op, seq and length */
    goim_rc_t   rc;          /* how the stream ended */
} split_result_t;


static void
split(const uint8_t *data, size_t len, size_t step, size_t max_body,
    split_result_t *res)
{
    uint8_t           *buf, *copy;
    size_t             have, fed, chunk;
    goim_rc_t          rc;
    goim_rpc_frame_t   f;

    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        abort();
    }

    have = 0;
    fed = 0;
    memset(res, 0, sizeof(*res));
    res->rc = GOIM_AGAIN;

    while (fed < len) {
        chunk = step < len - fed ? step : len - fed;
        memcpy(buf + have, data + fed, chunk);
        have += chunk;
        fed += chunk;

        for ( ;; ) {
            /* exactly what is there: ASan sees any overread */
            copy = malloc(have ? have : 1);
            if (copy == NULL) {
                abort();
            }

            memcpy(copy, buf, have);
            rc = goim_rpc_frame_split(copy, have, max_body, &f);

            if (rc == GOIM_OK) {
                if (f.len < GOIM_HEADER_LEN || f.len > have
                    || f.len != GOIM_HEADER_LEN + f.pkt.body_len
                    || f.pkt.body_len > max_body
                    || f.pkt.body != copy + GOIM_HEADER_LEN
                    || f.need != f.len)
                {
                    abort();
                }

                res->frames++;
                res->sum += (uint32_t) f.pkt.header.op
                            ^ (uint32_t) f.pkt.header.seq * 31
                            ^ (uint32_t) f.len * 131;

                memmove(buf, buf + f.len, have - f.len);
                have -= f.len;
                free(copy);
                continue;
            }

            free(copy);

            if (rc == GOIM_AGAIN) {
                /* a reader sizes its next read with need */
                if (f.need <= have || f.need > GOIM_HEADER_LEN + max_body
                    || (have < GOIM_HEADER_LEN && f.need != GOIM_HEADER_LEN))
                {
                    abort();
                }

                break;
            }

            /* refused: the header alone decided, nothing was consumed */
            if (have < GOIM_HEADER_LEN || goim_strerror(rc) == NULL) {
                abort();
            }

            res->rc = rc;
            free(buf);
            return;
        }
    }

    free(buf);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          max_body, step;
    split_result_t  whole, pieces;

    if (size < 2) {
        return 0;
    }

    max_body = data[0] < 0xf0 ? data[0] : GOIM_RPC_MAX_BODY_DEFAULT;
    step = (size_t) data[1] % 40 + 1;
    data += 2;
    size -= 2;

    split(data, size, size ? size : 1, max_body, &whole);
    split(data, size, step, max_body, &pieces);

    if (whole.frames != pieces.frames || whole.sum != pieces.sum
        || whole.rc != pieces.rc)
    {
        abort();
    }

    return 0;
}
