/*
 * permessage-deflate (RFC 7692) negotiation, server side: reads a
 * client's Sec-WebSocket-Extensions offers and picks the first one a
 * server can accept that compresses every message on its own
 * (server_no_context_takeover) with a 15-bit window and inflates the
 * client's messages on their own (client_no_context_takeover, which a
 * server may always ask for).  No allocation, no zlib: fuzzed on its own.
 */

#ifndef GOIM_WS_DEFLATE_H
#define GOIM_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

typedef enum {
    GOIM_WS_DEFLATE_ACCEPT = 0,          /* *offer is the one accepted */
    GOIM_WS_DEFLATE_NONE = 1,            /* no offer of it, or all declined */
    GOIM_WS_DEFLATE_MALFORMED = -1       /* not RFC 6455 §9.1's grammar */
} goim_ws_deflate_rc_t;

/* the offer accepted: what the answer must say back */
typedef struct {
    unsigned        server_max_window_bits;  /* offered (15 only), or 0 */
    unsigned        declined;                /* offers declined before */
    const char     *why;                     /* the last one's reason */
} goim_ws_deflate_offer_t;

/*
 * Reads one Sec-WebSocket-Extensions value (a comma-separated list of
 * extensions, each with ";"-separated parameters).  Call it on each such
 * header in order until one is accepted; offer->declined and ->why add up
 * across the calls (zero them once before).  A permessage-deflate offer
 * is declined (§7) for a parameter §7.1 does not define, a value it does
 * not allow, a parameter given twice, or server_max_window_bits below 15
 * (every client gets the same compressed frame, made with a 15-bit
 * window).  MALFORMED: the value breaks RFC 6455's grammar, which §9.1
 * says fails the connection.
 */
goim_ws_deflate_rc_t goim_ws_deflate_offer(const char *value, size_t len,
    goim_ws_deflate_offer_t *offer);

/* The answer to an accepted offer, NUL-terminated, in dst[0..size);
 * returns its length, or 0 if size is too small (128 is enough). */
size_t goim_ws_deflate_response(const goim_ws_deflate_offer_t *offer,
    char *dst, size_t size);

/* the 4 octets RFC 7692 §7.2.1 strips from a message's end and §7.2.2
 * appends before inflating it */
extern const uint8_t  goim_ws_deflate_tail[4];

#pragma GCC visibility pop

#endif /* GOIM_WS_DEFLATE_H */
