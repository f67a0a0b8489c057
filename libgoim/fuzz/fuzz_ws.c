/*
 * libFuzzer target: the WebSocket frame parser and unmasking on arbitrary
 * bytes, then goim packets inside the frames' payloads, as comet's
 * WebSocket transport handles them.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goim_packet.h"
#include "goim_ws.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t          *buf, *payload;
    size_t            pos, consumed;
    goim_rc_t         prc;
    goim_ws_rc_t      rc;
    goim_packet_t     pkt;
    goim_ws_frame_t   fr;

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        abort();
    }

    memcpy(buf, data, size);
    pos = 0;

    for ( ;; ) {
        rc = goim_ws_parse(buf + pos, size - pos, 16 + 4096, &fr);

        if (rc != GOIM_WS_OK) {
            (void) goim_ws_strerror(rc);
            break;
        }

        if (fr.header_len + fr.payload_len > size - pos
            || fr.payload_len > 16 + 4096)
        {
            abort();
        }

        payload = buf + pos + fr.header_len;
        goim_ws_unmask(payload, (size_t) fr.payload_len, fr.mask, 0);

        prc = goim_packet_parse(payload, (size_t) fr.payload_len, 4096, &pkt,
                                &consumed);
        if (prc == GOIM_OK && consumed > fr.payload_len) {
            abort();
        }

        pos += fr.header_len + (size_t) fr.payload_len;
    }

    free(buf);

    return 0;
}
