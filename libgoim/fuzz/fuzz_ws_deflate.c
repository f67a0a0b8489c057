/*
 * libFuzzer target: permessage-deflate negotiation on arbitrary
 * Sec-WebSocket-Extensions values, and the answer to what it accepts.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "goim_ws_deflate.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                     buf[128], *value;
    goim_ws_deflate_rc_t     rc;
    goim_ws_deflate_offer_t  offer;

    /* an exact-size copy: a read past the value is caught */
    value = malloc(size ? size : 1);
    if (value == NULL) {
        return 0;
    }

    memcpy(value, data, size);
    memset(&offer, 0, sizeof(offer));

    rc = goim_ws_deflate_offer(value, size, &offer);

    if (rc == GOIM_WS_DEFLATE_ACCEPT
        && goim_ws_deflate_response(&offer, buf, sizeof(buf)) == 0)
    {
        abort();
    }

    if (rc == GOIM_WS_DEFLATE_NONE && offer.declined && offer.why == NULL) {
        abort();
    }

    free(value);

    return 0;
}
