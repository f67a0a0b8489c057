/*
 * permessage-deflate negotiation (see goim_ws_deflate.h).
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "goim_ws_deflate.h"


#define GOIM_WS_DEFLATE_NAME  "permessage-deflate"

/* the longest parameter value kept: "15" is what is ever valid */
#define GOIM_WS_DEFLATE_VALUE_MAX  16


const uint8_t  goim_ws_deflate_tail[4] = { 0x00, 0x00, 0xff, 0xff };


typedef struct {
    unsigned        server_no_context_takeover:1;
    unsigned        client_no_context_takeover:1;
    unsigned        server_max_window_bits;
    unsigned        client_max_window_bits;   /* 0, 1 without a value */
    const char     *bad;                      /* why it is declined */
} goim_ws_deflate_params_t;


static int
goim_ws_deflate_tchar(unsigned char c)
{
    /* RFC 2616 §2.2 token: any CHAR but CTLs and separators */
    if (c <= 32 || c >= 127) {
        return 0;
    }

    return strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}


static const char *
goim_ws_deflate_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    return p;
}


/* 8..15 as RFC 7692 §7.1.2 writes them (no leading zero), or 0 */
static unsigned
goim_ws_deflate_bits(const char *v, size_t len)
{
    if (len == 1 && v[0] >= '8' && v[0] <= '9') {
        return (unsigned) (v[0] - '0');
    }

    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') {
        return (unsigned) (10 + v[1] - '0');
    }

    return 0;
}


static void
goim_ws_deflate_param(goim_ws_deflate_params_t *pm, const char *name,
    size_t nlen, const char *value, size_t vlen, int has_value)
{
    unsigned  bits;

#define goim_ws_deflate_is(s)                                                \
    (nlen == sizeof(s) - 1 && strncasecmp(name, s, nlen) == 0)

    if (pm->bad) {
        return;
    }

    if (goim_ws_deflate_is("server_no_context_takeover")) {
        if (has_value) {
            pm->bad = "server_no_context_takeover with a value";

        } else if (pm->server_no_context_takeover) {
            pm->bad = "server_no_context_takeover given twice";
        }

        pm->server_no_context_takeover = 1;
        return;
    }

    if (goim_ws_deflate_is("client_no_context_takeover")) {
        if (has_value) {
            pm->bad = "client_no_context_takeover with a value";

        } else if (pm->client_no_context_takeover) {
            pm->bad = "client_no_context_takeover given twice";
        }

        pm->client_no_context_takeover = 1;
        return;
    }

    if (goim_ws_deflate_is("server_max_window_bits")) {
        bits = has_value ? goim_ws_deflate_bits(value, vlen) : 0;

        if (pm->server_max_window_bits) {
            pm->bad = "server_max_window_bits given twice";

        } else if (bits == 0) {
            pm->bad = "server_max_window_bits not 8 to 15";

        } else if (bits < 15) {
            /* one compressed frame serves every client: a 15-bit window */
            pm->bad = "server_max_window_bits below 15 is not supported";
        }

        pm->server_max_window_bits = bits ? bits : 1;
        return;
    }

    if (goim_ws_deflate_is("client_max_window_bits")) {
        bits = has_value ? goim_ws_deflate_bits(value, vlen) : 1;

        if (pm->client_max_window_bits) {
            pm->bad = "client_max_window_bits given twice";

        } else if (bits == 0) {
            pm->bad = "client_max_window_bits not 8 to 15";
        }

        /* whatever window the client uses, ours inflates it (15 bits) */
        pm->client_max_window_bits = bits ? bits : 1;
        return;
    }

    pm->bad = "unknown permessage-deflate parameter";

#undef goim_ws_deflate_is
}


goim_ws_deflate_rc_t
goim_ws_deflate_offer(const char *value, size_t len,
    goim_ws_deflate_offer_t *offer)
{
    int                        has_value, accepted, pmd;
    char                       v[GOIM_WS_DEFLATE_VALUE_MAX];
    size_t                     nlen, vlen;
    unsigned                   nexts;
    const char                *p, *end, *name, *q;
    goim_ws_deflate_params_t   pm;

    p = value;
    end = value + len;
    nexts = 0;
    accepted = 0;

    for ( ;; ) {
        p = goim_ws_deflate_ows(p, end);

        if (p == end) {
            break;
        }

        if (*p == ',') {
            /* an empty list element, as the #rule allows */
            p++;
            continue;
        }

        for (name = p; p < end && goim_ws_deflate_tchar(*p); p++) {
            /* void */
        }

        if (p == name) {
            return GOIM_WS_DEFLATE_MALFORMED;
        }

        pmd = ((size_t) (p - name) == sizeof(GOIM_WS_DEFLATE_NAME) - 1
               && strncasecmp(name, GOIM_WS_DEFLATE_NAME, p - name) == 0);

        memset(&pm, 0, sizeof(pm));

        /* its parameters, up to the next extension */

        for ( ;; ) {
            p = goim_ws_deflate_ows(p, end);

            if (p == end || *p == ',') {
                break;
            }

            if (*p != ';') {
                return GOIM_WS_DEFLATE_MALFORMED;
            }

            p = goim_ws_deflate_ows(p + 1, end);

            for (name = p; p < end && goim_ws_deflate_tchar(*p); p++) {
                /* void */
            }

            nlen = (size_t) (p - name);

            if (nlen == 0) {
                return GOIM_WS_DEFLATE_MALFORMED;
            }

            p = goim_ws_deflate_ows(p, end);
            has_value = 0;
            vlen = 0;

            if (p < end && *p == '=') {
                p = goim_ws_deflate_ows(p + 1, end);
                has_value = 1;

                if (p < end && *p == '"') {
                    /* §9.1: unescaped, a quoted value is still a token */
                    for (p++; p < end && *p != '"'; p++) {
                        if (*p == '\\' && ++p == end) {
                            return GOIM_WS_DEFLATE_MALFORMED;
                        }

                        if (!goim_ws_deflate_tchar(*p)) {
                            return GOIM_WS_DEFLATE_MALFORMED;
                        }

                        if (vlen < sizeof(v)) {
                            v[vlen] = *p;
                        }

                        vlen++;
                    }

                    if (p == end) {
                        return GOIM_WS_DEFLATE_MALFORMED;
                    }

                    p++;

                } else {
                    for (q = p; p < end && goim_ws_deflate_tchar(*p); p++) {
                        if (vlen < sizeof(v)) {
                            v[vlen] = *p;
                        }

                        vlen++;
                    }

                    if (p == q) {
                        return GOIM_WS_DEFLATE_MALFORMED;
                    }
                }

                if (vlen == 0) {
                    return GOIM_WS_DEFLATE_MALFORMED;
                }

                if (vlen > sizeof(v)) {
                    /* too long to be a valid value: any will do */
                    vlen = sizeof(v);
                }
            }

            if (pmd) {
                goim_ws_deflate_param(&pm, name, nlen, v, vlen, has_value);
            }
        }

        nexts++;

        if (!pmd || accepted) {
            continue;
        }

        if (pm.bad) {
            offer->declined++;
            offer->why = pm.bad;
            continue;
        }

        /* the first acceptable offer wins; the rest is read for its form */
        offer->server_max_window_bits = pm.server_max_window_bits;
        accepted = 1;
    }

    if (nexts == 0) {
        /* 1#extension: at least one */
        return GOIM_WS_DEFLATE_MALFORMED;
    }

    return accepted ? GOIM_WS_DEFLATE_ACCEPT : GOIM_WS_DEFLATE_NONE;
}


size_t
goim_ws_deflate_response(const goim_ws_deflate_offer_t *offer, char *dst,
    size_t size)
{
    int  n;

    n = snprintf(dst, size, "%s; server_no_context_takeover; "
                 "client_no_context_takeover%s", GOIM_WS_DEFLATE_NAME,
                 offer->server_max_window_bits
                 ? "; server_max_window_bits=15" : "");

    if (n < 0 || (size_t) n >= size) {
        return 0;
    }

    return (size_t) n;
}
