/*
 * permessage-deflate negotiation (see goim_ws_deflate.h).
 */

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "goim_ws_deflate.h"


#define GOIM_WS_DEFLATE_NAME  "permessage-deflate"

/* the longest parameter value kept: "15" is what is ever valid */
#define GOIM_WS_DEFLATE_VALUE_MAX  16


const uint8_t  goim_ws_deflate_tail[4] = { 0x00, 0x00, 0xff, 0xff };


typedef struct {
    unsigned        server_no_context_takeover;
    unsigned        client_no_context_takeover;
    unsigned        server_max_window_bits;   /* 0: absent */
    unsigned        client_max_window_bits;   /* 0: absent, 1: no value */
    const char     *bad;                      /* why it is declined */
} goim_ws_deflate_params_t;


/* a parameter of §7.1 and what is wrong with it, if anything */
typedef struct {
    const char     *name;
    size_t          offset;          /* in goim_ws_deflate_params_t */
    int             window;          /* a window size, 8 to 15 */
    int             value_needed;    /* window: no default */
    const char     *valued;          /* a flag given a value */
    const char     *twice;
    const char     *range;           /* window: not 8 to 15 */
} goim_ws_deflate_param_t;


static const goim_ws_deflate_param_t  goim_ws_deflate_params[] = {
    { "server_no_context_takeover",
      offsetof(goim_ws_deflate_params_t, server_no_context_takeover), 0, 0,
      "server_no_context_takeover with a value",
      "server_no_context_takeover given twice", NULL },
    { "client_no_context_takeover",
      offsetof(goim_ws_deflate_params_t, client_no_context_takeover), 0, 0,
      "client_no_context_takeover with a value",
      "client_no_context_takeover given twice", NULL },
    { "server_max_window_bits",
      offsetof(goim_ws_deflate_params_t, server_max_window_bits), 1, 1, NULL,
      "server_max_window_bits given twice",
      "server_max_window_bits not 8 to 15" },
    { "client_max_window_bits",
      offsetof(goim_ws_deflate_params_t, client_max_window_bits), 1, 0, NULL,
      "client_max_window_bits given twice",
      "client_max_window_bits not 8 to 15" },
};


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
    size_t                          i;
    unsigned                        bits, *seen;
    const goim_ws_deflate_param_t  *d;

    if (pm->bad) {
        return;
    }

    for (i = 0; i < sizeof(goim_ws_deflate_params)
                    / sizeof(goim_ws_deflate_params[0]); i++)
    {
        d = &goim_ws_deflate_params[i];

        if (strlen(d->name) != nlen || strncasecmp(name, d->name, nlen) != 0) {
            continue;
        }

        seen = (unsigned *) ((char *) pm + d->offset);

        if (!d->window) {
            bits = has_value ? 0 : 1;

        } else if (has_value) {
            bits = goim_ws_deflate_bits(value, vlen);

        } else {
            /* client_max_window_bits alone: whatever the client uses */
            bits = d->value_needed ? 0 : 1;
        }

        if (*seen) {
            pm->bad = d->twice;

        } else if (bits == 0) {
            pm->bad = d->window ? d->range : d->valued;
        }

        *seen = bits ? bits : 1;
        return;
    }

    pm->bad = "unknown permessage-deflate parameter";
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

        if (pm.bad == NULL && pm.server_max_window_bits
            && pm.server_max_window_bits < 15)
        {
            /* one compressed frame serves every client: a 15-bit window */
            pm.bad = "server_max_window_bits below 15 is not supported";
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
