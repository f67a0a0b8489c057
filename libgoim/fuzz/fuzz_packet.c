/*
 * libFuzzer target: the goim packet parser on arbitrary bytes, fed whole
 * and in pieces (the first byte picks the piece size), as a comet reads
 * them.  The parser must never read past what it is given, never loop,
 * and agree with itself whatever the split.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goim_packet.h"


static size_t
count_packets(const uint8_t *data, size_t len, size_t step, int *err)
{
    uint8_t        *buf;
    size_t          have, fed, consumed, n;
    goim_rc_t       rc;
    goim_packet_t   pkt;

    /* a buffer exactly the size of what was fed: ASan sees any overread */
    buf = malloc(len ? len : 1);
    if (buf == NULL) {
        abort();
    }

    have = 0;
    fed = 0;
    n = 0;
    *err = 0;

    while (fed < len) {
        size_t  chunk = step < len - fed ? step : len - fed;

        memcpy(buf + have, data + fed, chunk);
        have += chunk;
        fed += chunk;

        for ( ;; ) {
            uint8_t  *copy = malloc(have ? have : 1);

            memcpy(copy, buf, have);
            rc = goim_packet_parse(copy, have, 4096, &pkt, &consumed);

            if (rc == GOIM_OK) {
                if (consumed < GOIM_HEADER_LEN || consumed > have
                    || pkt.body + pkt.body_len != copy + consumed)
                {
                    abort();
                }

                memmove(buf, buf + consumed, have - consumed);
                have -= consumed;
                n++;
                free(copy);
                continue;
            }

            free(copy);

            if (rc != GOIM_AGAIN) {
                *err = rc;
                free(buf);
                return n;
            }

            break;
        }
    }

    free(buf);

    return n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int     err1, err2;
    size_t  n1, n2, step;

    if (size < 1) {
        return 0;
    }

    step = (size_t) data[0] % 32 + 1;
    data++;
    size--;

    n1 = count_packets(data, size, size ? size : 1, &err1);
    n2 = count_packets(data, size, step, &err2);

    if (n1 != n2 || err1 != err2) {
        abort();
    }

    return 0;
}
