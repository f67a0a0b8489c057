/*
 * libFuzzer target: the auth token parser (goim's JSON token and the
 * HS256 JWT) on arbitrary bytes.  The first byte picks the path: goim's
 * JSON token; a JWT taken as it comes (almost always refused at the
 * signature); or "header.claims" that the target signs itself, so the
 * header check, base64url and the claims parser behind the signature are
 * reached too.  Whatever parses must be a token within its bounds.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "goim_token.h"


#define NOW  1700000000

static const uint8_t  secret[] = "fuzz-secret";


static void
check(const char *err, goim_token_t *t, int jwt)
{
    size_t  i;

    if (err == NULL) {
        if (t->naccepts + t->nops > GOIM_TOKEN_MAX_ACCEPTS
            || (t->naccepts && t->accepts == NULL)
            || (t->nops && t->ops == NULL)
            || (t->nrooms && t->rooms == NULL)
            || (t->key && (t->key[0] == '\0'
                           || strlen(t->key) > GOIM_TOKEN_MAX_KEY))
            || (t->room && strlen(t->room) > GOIM_TOKEN_MAX_ROOM)
            || t->restricted != (unsigned) jwt
            || (!jwt && (t->nrooms || t->nops)))
        {
            abort();
        }

        for (i = 0; i < t->nrooms; i++) {
            if (t->rooms[i] == NULL
                || strlen(t->rooms[i]) > GOIM_TOKEN_MAX_ROOM)
            {
                abort();
            }

            (void) goim_token_room_allowed(t->rooms[i], "live://1", 8);
        }

    } else if (t->key || t->room || t->accepts || t->naccepts || t->rooms
               || t->nrooms || t->ops || t->nops || t->restricted)
    {
        /* a refused token holds nothing */
        abort();
    }

    goim_token_free(t);
}


static const char  b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "abcdefghijklmnopqrstuvwxyz0123456789-_";


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t       *buf, mac[EVP_MAX_MD_SIZE];
    size_t         i, n, len;
    uint32_t       v;
    unsigned int   maclen;
    goim_token_t   t;

    if (size == 0) {
        return 0;
    }

    len = size - 1;

    /* the input (and the signature it gets): ASan sees any overread */
    n = len + (data[0] % 3 == 2 ? 1 + 43 : 0);

    buf = malloc(n ? n : 1);
    if (buf == NULL) {
        abort();
    }

    memcpy(buf, data + 1, len);

    switch (data[0] % 3) {

    case 0:
        check(goim_token_parse(&t, buf, len, NULL, 0, NOW), &t, 0);
        break;

    case 1:
        check(goim_token_parse(&t, buf, len, secret, sizeof(secret) - 1, NOW),
              &t, 1);
        break;

    default:
        /* sign what is there, then append ".signature" */
        HMAC(EVP_sha256(), secret, sizeof(secret) - 1, buf, len, mac,
             &maclen);

        n = len;
        buf[n++] = '.';

        for (i = 0; i + 2 < maclen; i += 3) {
            v = (uint32_t) mac[i] << 16 | (uint32_t) mac[i + 1] << 8
                | mac[i + 2];
            buf[n++] = b64[v >> 18];
            buf[n++] = b64[(v >> 12) & 63];
            buf[n++] = b64[(v >> 6) & 63];
            buf[n++] = b64[v & 63];
        }

        /* 32 bytes: 10 groups, then 2 bytes left */
        v = (uint32_t) mac[i] << 16 | (uint32_t) mac[i + 1] << 8;
        buf[n++] = b64[v >> 18];
        buf[n++] = b64[(v >> 12) & 63];
        buf[n++] = b64[(v >> 6) & 63];

        check(goim_token_parse(&t, buf, n, secret, sizeof(secret) - 1, NOW),
              &t, 1);
        break;
    }

    free(buf);

    return 0;
}
