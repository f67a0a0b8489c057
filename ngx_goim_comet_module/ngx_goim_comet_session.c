
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <sys/mman.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ngx_goim_comet.h"


/*
 * Session ids for SSE streams: "MAC.KEY", MAC the first 16 bytes of
 * HMAC-SHA256(secret, "goim-sse-session-v1 " KEY) in base64url.  The
 * secret is the master's, drawn at its first start and kept across
 * reloads (mapped once, inherited by every generation of workers), so
 * any worker checks an id without asking anyone, and one cannot be made
 * for a key but by comet.
 */


/* what a session id's MAC covers besides the key */
#define NGX_GOIM_COMET_SESSION_CTX  "goim-sse-session-v1 "
#define NGX_GOIM_COMET_SESSION_SECRET  32


static ngx_int_t ngx_goim_comet_session_mac(ngx_str_t *key, u_char *b64);


/* mapped by the master at its first start, inherited ever after */
static u_char  *ngx_goim_comet_session_secret;


/* init_module, in the master: nginx -t changes nothing */

ngx_int_t
ngx_goim_comet_session_init_module(ngx_cycle_t *cycle)
{
    void  *p;

    if (ngx_test_config || ngx_goim_comet_session_secret) {
        return NGX_OK;
    }

    p = mmap(NULL, NGX_GOIM_COMET_SESSION_SECRET, PROT_READ | PROT_WRITE,
             MAP_ANON | MAP_SHARED, -1, 0);

    if (p == MAP_FAILED) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "goim comet: mmap() for the session secret failed");
        return NGX_ERROR;
    }

    if (RAND_bytes(p, NGX_GOIM_COMET_SESSION_SECRET) != 1) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "goim comet: no random bytes for the session secret");
        (void) munmap(p, NGX_GOIM_COMET_SESSION_SECRET);
        return NGX_ERROR;
    }

    ngx_goim_comet_session_secret = p;

    return NGX_OK;
}


size_t
ngx_goim_comet_session_len(ngx_str_t *key)
{
    return NGX_GOIM_COMET_SESSION_MAC + 1 + key->len;
}


u_char *
ngx_goim_comet_session(u_char *p, ngx_str_t *key)
{
    u_char  b64[32];

    if (ngx_goim_comet_session_mac(key, b64) != NGX_OK) {
        return p;
    }

    p = ngx_cpymem(p, b64, NGX_GOIM_COMET_SESSION_MAC);
    *p++ = '.';

    return ngx_cpymem(p, key->data, key->len);
}


/* the key a session id names, NGX_ERROR: not one comet made */

ngx_int_t
ngx_goim_comet_session_key(ngx_str_t *session, ngx_str_t *key)
{
    u_char  b64[32];

    if (session->len < NGX_GOIM_COMET_SESSION_MAC + 2
        || session->data[NGX_GOIM_COMET_SESSION_MAC] != '.')
    {
        return NGX_ERROR;
    }

    key->data = session->data + NGX_GOIM_COMET_SESSION_MAC + 1;
    key->len = session->len - NGX_GOIM_COMET_SESSION_MAC - 1;

    if (ngx_goim_comet_session_mac(key, b64) != NGX_OK) {
        return NGX_ERROR;
    }

    if (CRYPTO_memcmp(b64, session->data, NGX_GOIM_COMET_SESSION_MAC)
        != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the MAC of key, in base64url (NGX_GOIM_COMET_SESSION_MAC characters) */

static ngx_int_t
ngx_goim_comet_session_mac(ngx_str_t *key, u_char *b64)
{
    u_char        *data, *out;
    size_t         len;
    ngx_str_t      src, dst;
    unsigned int   n;
    u_char         mac[EVP_MAX_MD_SIZE];

    if (ngx_goim_comet_session_secret == NULL) {
        return NGX_ERROR;
    }

    len = sizeof(NGX_GOIM_COMET_SESSION_CTX) - 1 + key->len;

    data = ngx_alloc(len, ngx_cycle->log);
    if (data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(data, NGX_GOIM_COMET_SESSION_CTX,
               sizeof(NGX_GOIM_COMET_SESSION_CTX) - 1);
    ngx_memcpy(data + sizeof(NGX_GOIM_COMET_SESSION_CTX) - 1, key->data,
               key->len);

    n = 0;
    out = HMAC(EVP_sha256(), ngx_goim_comet_session_secret,
               NGX_GOIM_COMET_SESSION_SECRET, data, len, mac, &n);

    ngx_free(data);

    if (out == NULL || n < 16) {
        return NGX_ERROR;
    }

    src.data = mac;
    src.len = 16;
    dst.data = b64;
    ngx_encode_base64url(&dst, &src);

    return NGX_OK;
}
