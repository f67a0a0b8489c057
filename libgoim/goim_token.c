/*
 * goim's auth token and its signed form, an HS256 JWT (see goim_token.h).
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <yajl/yajl_tree.h>

#include "goim_args.h"
#include "goim_token.h"


static const char *goim_token_jwt(goim_token_t *t, const uint8_t *token,
    size_t len, const uint8_t *secret, size_t secret_len, int64_t now);
static char *goim_token_strdup(const char *s, size_t max);
static const char *goim_token_ops(yajl_val v, int32_t **ops, size_t *n,
    const char **errs);
static const char *goim_token_rooms(goim_token_t *t, yajl_val v);
static const char *goim_token_recovery(goim_token_t *t, yajl_val root);
static const char *goim_token_options(goim_token_t *t, const uint8_t *p,
    size_t len);


const char *
goim_token_parse(goim_token_t *t, const uint8_t *body, size_t len,
    const uint8_t *secret, size_t secret_len, int64_t now)
{
    memset(t, 0, sizeof(goim_token_t));

    if (secret_len) {
        return goim_token_jwt(t, body, len, secret, secret_len, now);
    }

    return goim_token_parse_claims(t, body, len, 0, now);
}


void
goim_token_free(goim_token_t *t)
{
    size_t  i;

    for (i = 0; i < t->nrooms; i++) {
        free(t->rooms[i]);
    }

    free(t->rooms);
    free(t->ops);
    free(t->key);
    free(t->room);
    free(t->accepts);

    memset(t, 0, sizeof(goim_token_t));
}


static char *
goim_token_strdup(const char *s, size_t max)
{
    char    *p;
    size_t   n;

    n = strlen(s);
    if (n > max) {
        return NULL;
    }

    p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n + 1);
    }

    return p;
}


const char *
goim_token_parse_claims(goim_token_t *t, const uint8_t *json, size_t len,
    int jwt, int64_t now)
{
    char        *text, errbuf[128];
    yajl_val     root, v;
    const char  *err;

    static const char  *mid_path[] = { "mid", NULL };
    static const char  *key_path[] = { "key", NULL };
    static const char  *room_path[] = { "room_id", NULL };
    static const char  *accepts_path[] = { "accepts", NULL };
    static const char  *exp_path[] = { "exp", NULL };
    static const char  *nbf_path[] = { "nbf", NULL };
    static const char  *ops_path[] = { "ops", NULL };
    static const char  *rooms_path[] = { "rooms", NULL };
    static const char  *accepts_errs[] = {
        "token accepts is not an array",
        "token accepts has too many operations",
        "token accepts holds a non-int32 value"
    };
    static const char  *ops_errs[] = {
        "token ops is not an array",
        "token ops has too many operations",
        "token ops holds a non-int32 value"
    };

    memset(t, 0, sizeof(goim_token_t));

    /* yajl_tree_parse() wants a C string; a NUL inside ends it early */
    text = malloc(len + 1);
    if (text == NULL) {
        return "out of memory";
    }

    memcpy(text, json, len);
    text[len] = '\0';

    root = yajl_tree_parse(text, errbuf, sizeof(errbuf));
    free(text);

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
            t->key = goim_token_strdup(v->u.string, GOIM_TOKEN_MAX_KEY);
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

        t->room = goim_token_strdup(v->u.string, GOIM_TOKEN_MAX_ROOM);
        if (t->room == NULL) {
            err = "token room_id is too long";
            goto done;
        }
    }

    v = yajl_tree_get(root, accepts_path, yajl_t_any);
    err = goim_token_ops(v, &t->accepts, &t->naccepts, accepts_errs);
    if (err) {
        goto done;
    }

    err = goim_token_recovery(t, root);
    if (err || !jwt) {
        goto done;
    }

    t->restricted = 1;

    v = yajl_tree_get(root, ops_path, yajl_t_any);
    err = goim_token_ops(v, &t->ops, &t->nops, ops_errs);
    if (err) {
        goto done;
    }

    /* comet keeps both in one set, as bounded as accepts alone */
    if (t->naccepts + t->nops > GOIM_TOKEN_MAX_ACCEPTS) {
        err = "token accepts and ops have more than 1024 operations";
        goto done;
    }

    v = yajl_tree_get(root, rooms_path, yajl_t_any);
    err = goim_token_rooms(t, v);

done:

    yajl_tree_free(root);

    if (err) {
        goim_token_free(t);
    }

    return err;
}


/*
 * An array of int32 operations, at most GOIM_TOKEN_MAX_ACCEPTS; errs: why
 * not an array, too long, a bad element.
 */

static const char *
goim_token_ops(yajl_val v, int32_t **ops, size_t *n, const char **errs)
{
    size_t     len;
    yajl_val   op;

    if (v == NULL || YAJL_IS_NULL(v)) {
        return NULL;
    }

    if (!YAJL_IS_ARRAY(v)) {
        return errs[0];
    }

    len = YAJL_GET_ARRAY(v)->len;
    if (len > GOIM_TOKEN_MAX_ACCEPTS) {
        return errs[1];
    }

    *ops = malloc(len * sizeof(int32_t) + 1);
    if (*ops == NULL) {
        return "out of memory";
    }

    for (*n = 0; *n < len; (*n)++) {
        op = YAJL_GET_ARRAY(v)->values[*n];

        if (!YAJL_IS_INTEGER(op)
            || YAJL_GET_INTEGER(op) < INT32_MIN
            || YAJL_GET_INTEGER(op) > INT32_MAX)
        {
            return errs[2];
        }

        (*ops)[*n] = (int32_t) YAJL_GET_INTEGER(op);
    }

    return NULL;
}


/* "recover", "room_pos", "all_pos" of an object */

static const char *
goim_token_recovery(goim_token_t *t, yajl_val root)
{
    yajl_val  v;

    static const char  *recover_path[] = { "recover", NULL };
    static const char  *room_pos_path[] = { "room_pos", NULL };
    static const char  *all_pos_path[] = { "all_pos", NULL };

    v = yajl_tree_get(root, recover_path, yajl_t_any);
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
            return "token recover is not a boolean";
        }

        t->recover = YAJL_IS_TRUE(v);
    }

    v = yajl_tree_get(root, room_pos_path, yajl_t_any);
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_STRING(v)
            || goim_args_position(v->u.string, strlen(v->u.string),
                                   &t->room_epoch, &t->room_seq)
               != 0)
        {
            return "token room_pos is not EPOCH:SEQ";
        }

        t->recover = 1;
    }

    v = yajl_tree_get(root, all_pos_path, yajl_t_any);
    if (v && !YAJL_IS_NULL(v)) {
        if (!YAJL_IS_STRING(v)
            || goim_args_position(v->u.string, strlen(v->u.string),
                                   &t->all_epoch, &t->all_seq)
               != 0)
        {
            return "token all_pos is not EPOCH:SEQ";
        }

        t->recover = 1;
    }

    return NULL;
}


/* the client's own options after a JWT: {"recover":..., "room_pos":...} */

static const char *
goim_token_options(goim_token_t *t, const uint8_t *p, size_t len)
{
    char        *text, errbuf[64];
    yajl_val     root;
    const char  *err;

    text = malloc(len + 1);
    if (text == NULL) {
        return "out of memory";
    }

    memcpy(text, p, len);
    text[len] = '\0';

    root = yajl_tree_parse(text, errbuf, sizeof(errbuf));
    free(text);

    if (root == NULL || !YAJL_IS_OBJECT(root)) {
        err = "the options after the JWT are not a JSON object";

    } else {
        err = goim_token_recovery(t, root);
    }

    if (root) {
        yajl_tree_free(root);
    }

    return err;
}


/* an array of room names or "prefix*" patterns */

static const char *
goim_token_rooms(goim_token_t *t, yajl_val v)
{
    size_t    i, len;
    yajl_val  room;

    if (v == NULL || YAJL_IS_NULL(v)) {
        return NULL;
    }

    if (!YAJL_IS_ARRAY(v)) {
        return "token rooms is not an array";
    }

    len = YAJL_GET_ARRAY(v)->len;

    t->rooms = calloc(len + 1, sizeof(char *));
    if (t->rooms == NULL) {
        return "out of memory";
    }

    for (i = 0; i < len; i++) {
        room = YAJL_GET_ARRAY(v)->values[i];

        if (!YAJL_IS_STRING(room)) {
            return "token rooms holds a non-string value";
        }

        t->rooms[i] = goim_token_strdup(room->u.string, GOIM_TOKEN_MAX_ROOM);
        if (t->rooms[i] == NULL) {
            return "token rooms holds a room that is too long";
        }

        t->nrooms = i + 1;
    }

    return NULL;
}


int
goim_token_room_allowed(const char *pattern, const char *room, size_t len)
{
    size_t  n;

    n = strlen(pattern);

    if (n && pattern[n - 1] == '*') {
        return len >= n - 1 && memcmp(pattern, room, n - 1) == 0;
    }

    return n == len && memcmp(pattern, room, n) == 0;
}


long
goim_base64url_decode(uint8_t *dst, const uint8_t *src, size_t len)
{
    size_t     i, n;
    uint8_t   *p;
    uint32_t   acc;
    unsigned   c, bits;

    while (len && src[len - 1] == '=') {
        len--;
    }

    if (len % 4 == 1) {
        return -1;
    }

    p = dst;
    acc = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        c = src[i];

        if (c >= 'A' && c <= 'Z') {
            n = c - 'A';

        } else if (c >= 'a' && c <= 'z') {
            n = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            n = c - '0' + 52;

        } else if (c == '-') {
            n = 62;

        } else if (c == '_') {
            n = 63;

        } else {
            return -1;
        }

        acc = (acc << 6) | (uint32_t) n;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *p++ = (uint8_t) (acc >> bits);
        }
    }

    return (long) (p - dst);
}


static int
goim_token_space(uint8_t c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}


/* header.payload.signature, all base64url; HS256 only */

static const char *
goim_token_jwt(goim_token_t *t, const uint8_t *token, size_t len,
    const uint8_t *secret, size_t secret_len, int64_t now)
{
    long            n, siglen;
    char            errbuf[64];
    uint8_t        *buf;
    yajl_val        root, alg;
    const char     *err;
    unsigned int    maclen;
    const uint8_t  *dot1, *dot2, *last, *end, *opts;
    uint8_t         mac[EVP_MAX_MD_SIZE], sig[64];

    static const char  *alg_path[] = { "alg", NULL };

    /* surrounding white space is allowed, as a client may add a newline */

    last = token + len;

    while (token < last && goim_token_space(*token)) {
        token++;
    }

    while (last > token && goim_token_space(last[-1])) {
        last--;
    }

    end = last;

    /* a JWT has no white space: what follows one is the client's options */

    for (opts = token; opts < last && !goim_token_space(*opts); opts++) {
        /* void */
    }

    len = opts - token;
    last = opts;

    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', last - dot1 - 1) : NULL;

    if (dot1 == NULL || dot2 == NULL
        || memchr(dot2 + 1, '.', last - dot2 - 1) != NULL)
    {
        return "token is not a JWT (three dot-separated parts)";
    }

    /* the signature first: nothing else is trusted before it checks out */

    if ((size_t) (last - dot2 - 1) > sizeof(sig) * 4 / 3) {
        return "JWT signature is invalid";
    }

    siglen = goim_base64url_decode(sig, dot2 + 1, last - dot2 - 1);
    if (siglen < 0) {
        return "JWT signature is not base64url";
    }

    if (HMAC(EVP_sha256(), secret, (int) secret_len, token, dot2 - token,
             mac, &maclen) == NULL)
    {
        return "HMAC failed";
    }

    /* the header too: a token made for another algorithm is refused */

    buf = malloc((dot1 - token) * 3 / 4 + (dot2 - dot1) * 3 / 4 + 2);
    if (buf == NULL) {
        return "out of memory";
    }

    err = NULL;

    n = goim_base64url_decode(buf, token, dot1 - token);
    if (n < 0) {
        err = "JWT header is not base64url";
        goto done;
    }

    buf[n] = '\0';
    root = yajl_tree_parse((char *) buf, errbuf, sizeof(errbuf));

    alg = root ? yajl_tree_get(root, alg_path, yajl_t_string) : NULL;

    if (alg == NULL || strcmp(alg->u.string, "HS256") != 0) {
        err = "JWT algorithm is not HS256";
    }

    if (root) {
        yajl_tree_free(root);
    }

    if (err) {
        goto done;
    }

    if ((size_t) siglen != maclen || CRYPTO_memcmp(sig, mac, maclen) != 0)
    {
        err = "JWT signature does not match";
        goto done;
    }

    n = goim_base64url_decode(buf, dot1 + 1, dot2 - dot1 - 1);
    if (n < 0) {
        err = "JWT claims are not base64url";
        goto done;
    }

    err = goim_token_parse_claims(t, buf, (size_t) n, 1, now);

    if (err == NULL && opts < end) {
        err = goim_token_options(t, opts, end - opts);

        if (err) {
            goim_token_free(t);
        }
    }

done:

    free(buf);

    return err;
}
