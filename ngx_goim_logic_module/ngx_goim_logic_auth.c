
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <yajl/yajl_tree.h>

#include "ngx_goim_logic.h"


/*
 * Who a client is, from its auth body.  goim's own form is a JSON token
 * that nobody checks: {"mid":123, "key":"", "room_id":"live://1",
 * "platform":"web", "accepts":[1000]}.  With goim_logic_jwt_secret_file
 * the body must be an HS256 JWT instead, signed with that secret, whose
 * claims are the same fields; it is refused when the signature is wrong,
 * the algorithm is not HS256, it has expired (exp) or is not yet valid
 * (nbf), or mid is missing.
 */


#define NGX_GOIM_LOGIC_MAX_ACCEPTS  1024
#define NGX_GOIM_LOGIC_MAX_KEY      128


static const char *ngx_goim_logic_token_json(ngx_goim_logic_token_t *t,
    u_char *json, size_t len, ngx_uint_t jwt);
static const char *ngx_goim_logic_token_jwt(ngx_goim_logic_conf_t *lcf,
    ngx_goim_logic_token_t *t, u_char *token, size_t len);
static char *ngx_goim_logic_strdup(const char *s, size_t max);


const char *
ngx_goim_logic_token_parse(ngx_goim_logic_conf_t *lcf,
    ngx_goim_logic_token_t *t, u_char *token, size_t len)
{
    ngx_memzero(t, sizeof(ngx_goim_logic_token_t));

    if (lcf->jwt_secret.len) {
        return ngx_goim_logic_token_jwt(lcf, t, token, len);
    }

    return ngx_goim_logic_token_json(t, token, len, 0);
}


void
ngx_goim_logic_token_free(ngx_goim_logic_token_t *t)
{
    if (t->key) {
        ngx_free(t->key);
    }

    if (t->room) {
        ngx_free(t->room);
    }

    if (t->accepts) {
        ngx_free(t->accepts);
    }

    ngx_memzero(t, sizeof(ngx_goim_logic_token_t));
}


static char *
ngx_goim_logic_strdup(const char *s, size_t max)
{
    char    *p;
    size_t   n;

    n = ngx_strlen(s);
    if (n > max) {
        return NULL;
    }

    p = ngx_alloc(n + 1, ngx_cycle->log);
    if (p) {
        ngx_memcpy(p, s, n + 1);
    }

    return p;
}


static const char *
ngx_goim_logic_token_json(ngx_goim_logic_token_t *t, u_char *json,
    size_t len, ngx_uint_t jwt)
{
    char        *text, errbuf[128];
    size_t       i, n;
    time_t       now;
    yajl_val     root, v, op;
    const char  *err;

    static const char  *mid_path[] = { "mid", NULL };
    static const char  *key_path[] = { "key", NULL };
    static const char  *room_path[] = { "room_id", NULL };
    static const char  *accepts_path[] = { "accepts", NULL };
    static const char  *exp_path[] = { "exp", NULL };
    static const char  *nbf_path[] = { "nbf", NULL };

    text = ngx_alloc(len + 1, ngx_cycle->log);
    if (text == NULL) {
        return "out of memory";
    }

    ngx_memcpy(text, json, len);
    text[len] = '\0';

    root = yajl_tree_parse(text, errbuf, sizeof(errbuf));
    ngx_free(text);

    if (root == NULL) {
        return jwt ? "JWT claims are not valid JSON"
                   : "token is not valid JSON";
    }

    err = NULL;

    if (!YAJL_IS_OBJECT(root)) {
        err = "token is not a JSON object";
        goto done;
    }

    v = yajl_tree_get(root, mid_path, yajl_t_any);
    if (v) {
        if (!YAJL_IS_INTEGER(v)) {
            err = "token mid is not an integer";
            goto done;
        }

        t->mid = YAJL_GET_INTEGER(v);

    } else if (jwt) {
        err = "JWT has no mid claim";
        goto done;
    }

    if (jwt) {
        now = ngx_time();

        v = yajl_tree_get(root, exp_path, yajl_t_any);
        if (v && (!YAJL_IS_NUMBER(v) || YAJL_GET_DOUBLE(v) <= (double) now)) {
            err = "JWT has expired";
            goto done;
        }

        v = yajl_tree_get(root, nbf_path, yajl_t_any);
        if (v && (!YAJL_IS_NUMBER(v) || YAJL_GET_DOUBLE(v) > (double) now)) {
            err = "JWT is not valid yet";
            goto done;
        }
    }

    v = yajl_tree_get(root, key_path, yajl_t_any);
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_STRING(v)) {
            err = "token key is not a string";
            goto done;
        }

        if (v->u.string[0]) {
            t->key = ngx_goim_logic_strdup(v->u.string,
                                           NGX_GOIM_LOGIC_MAX_KEY);
            if (t->key == NULL) {
                err = "token key is longer than 128 bytes";
                goto done;
            }
        }
    }

    v = yajl_tree_get(root, room_path, yajl_t_any);
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_STRING(v)) {
            err = "token room_id is not a string";
            goto done;
        }

        t->room = ngx_goim_logic_strdup(v->u.string, 4096);
        if (t->room == NULL) {
            err = "token room_id is too long";
            goto done;
        }
    }

    v = yajl_tree_get(root, accepts_path, yajl_t_any);
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_ARRAY(v)) {
            err = "token accepts is not an array";
            goto done;
        }

        n = YAJL_GET_ARRAY(v)->len;
        if (n > NGX_GOIM_LOGIC_MAX_ACCEPTS) {
            err = "token accepts has too many operations";
            goto done;
        }

        t->accepts = ngx_alloc(n * sizeof(int32_t) + 1, ngx_cycle->log);
        if (t->accepts == NULL) {
            err = "out of memory";
            goto done;
        }

        for (i = 0; i < n; i++) {
            op = YAJL_GET_ARRAY(v)->values[i];

            if (!YAJL_IS_INTEGER(op)
                || YAJL_GET_INTEGER(op) < INT32_MIN
                || YAJL_GET_INTEGER(op) > INT32_MAX)
            {
                err = "token accepts holds a non-int32 value";
                goto done;
            }

            t->accepts[i] = (int32_t) YAJL_GET_INTEGER(op);
        }

        t->naccepts = n;
    }

done:

    yajl_tree_free(root);

    if (err) {
        ngx_goim_logic_token_free(t);
    }

    return err;
}


/* header.payload.signature, all base64url; HS256 only */

static const char *
ngx_goim_logic_token_jwt(ngx_goim_logic_conf_t *lcf,
    ngx_goim_logic_token_t *t, u_char *token, size_t len)
{
    u_char        *p, *dot1, *dot2, *last;
    unsigned int   maclen;
    ngx_str_t      part, header, payload, sig;
    const char    *err;
    u_char         mac[EVP_MAX_MD_SIZE], sigbuf[64];

    static const char  *alg_path[] = { "alg", NULL };

    /* surrounding white space is allowed, as a client may add a newline */

    last = token + len;

    while (token < last && (*token == ' ' || *token == '\n' || *token == '\r'
                            || *token == '\t'))
    {
        token++;
    }

    while (last > token && (last[-1] == ' ' || last[-1] == '\n'
                            || last[-1] == '\r' || last[-1] == '\t'))
    {
        last--;
    }

    dot1 = ngx_strlchr(token, last, '.');
    dot2 = dot1 ? ngx_strlchr(dot1 + 1, last, '.') : NULL;

    if (dot1 == NULL || dot2 == NULL || ngx_strlchr(dot2 + 1, last, '.')) {
        return "token is not a JWT (three dot-separated parts)";
    }

    /* the signature first: nothing else is trusted before it checks out */

    part.data = dot2 + 1;
    part.len = last - part.data;

    if (ngx_base64_decoded_length(part.len) > sizeof(sigbuf)) {
        return "JWT signature is invalid";
    }

    sig.data = sigbuf;

    if (ngx_decode_base64url(&sig, &part) != NGX_OK) {
        return "JWT signature is not base64url";
    }

    if (HMAC(EVP_sha256(), lcf->jwt_secret.data, (int) lcf->jwt_secret.len,
             token, dot2 - token, mac, &maclen) == NULL)
    {
        return "HMAC failed";
    }

    /* the header too: a token made for another algorithm is refused */

    part.data = token;
    part.len = dot1 - token;

    header.data = ngx_alloc(ngx_base64_decoded_length(part.len) + 1,
                            ngx_cycle->log);
    if (header.data == NULL) {
        return "out of memory";
    }

    err = NULL;

    if (ngx_decode_base64url(&header, &part) != NGX_OK) {
        err = "JWT header is not base64url";
        goto done;
    }

    {
        char      errbuf[64];
        yajl_val  root, alg;

        header.data[header.len] = '\0';
        root = yajl_tree_parse((char *) header.data, errbuf, sizeof(errbuf));

        alg = root ? yajl_tree_get(root, alg_path, yajl_t_string) : NULL;

        if (alg == NULL || ngx_strcmp(alg->u.string, "HS256") != 0) {
            err = "JWT algorithm is not HS256";
        }

        if (root) {
            yajl_tree_free(root);
        }

        if (err) {
            goto done;
        }
    }

    if (sig.len != maclen || CRYPTO_memcmp(sig.data, mac, maclen) != 0) {
        err = "JWT signature does not match";
        goto done;
    }

    part.data = dot1 + 1;
    part.len = dot2 - part.data;

    payload.data = ngx_alloc(ngx_base64_decoded_length(part.len) + 1,
                             ngx_cycle->log);
    if (payload.data == NULL) {
        err = "out of memory";
        goto done;
    }

    if (ngx_decode_base64url(&payload, &part) != NGX_OK) {
        err = "JWT claims are not base64url";

    } else {
        err = ngx_goim_logic_token_json(t, payload.data, payload.len, 1);
    }

    ngx_free(payload.data);

done:

    p = header.data;
    ngx_free(p);

    return err;
}


/* goim_logic_jwt_secret_file: read once, at configuration time */

char *
ngx_goim_logic_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_logic_conf_t *lcf = conf;

    u_char           *p;
    ssize_t           n;
    ngx_str_t        *value, name;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    if (lcf->jwt_secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 4096)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a readable file of at most 4k",
                           &name);
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (p == NULL) {
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, p, (size_t) ngx_file_size(&fi), 0);

    (void) ngx_close_file(file.fd);

    if (n == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    /* a trailing newline is not part of the secret */
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r')) {
        n--;
    }

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the JWT secret in \"%V\" is empty", &name);
        return NGX_CONF_ERROR;
    }

    lcf->jwt_secret.data = p;
    lcf->jwt_secret.len = n;

    return NGX_CONF_OK;
}
