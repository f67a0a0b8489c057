/*
 * Unit tests of the auth token parser: goim's JSON token and the HS256 JWT.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "goim_args.h"
#include "goim_token.h"


#define NOW  1700000000

static const char  secret[] = "unit-secret";


static size_t
b64url(char *dst, const uint8_t *src, size_t len)
{
    static const char  tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t    i, n;
    uint32_t  v;

    for (i = 0, n = 0; i + 2 < len; i += 3) {
        v = (uint32_t) src[i] << 16 | (uint32_t) src[i + 1] << 8 | src[i + 2];
        dst[n++] = tab[v >> 18];
        dst[n++] = tab[(v >> 12) & 63];
        dst[n++] = tab[(v >> 6) & 63];
        dst[n++] = tab[v & 63];
    }

    if (len - i == 1) {
        v = (uint32_t) src[i] << 16;
        dst[n++] = tab[v >> 18];
        dst[n++] = tab[(v >> 12) & 63];

    } else if (len - i == 2) {
        v = (uint32_t) src[i] << 16 | (uint32_t) src[i + 1] << 8;
        dst[n++] = tab[v >> 18];
        dst[n++] = tab[(v >> 12) & 63];
        dst[n++] = tab[(v >> 6) & 63];
    }

    dst[n] = '\0';

    return n;
}


/* header.claims.signature, signed with key */
static char *
jwt(const char *header, const char *claims, const char *key)
{
    char          *t;
    size_t         n;
    unsigned int   maclen;
    uint8_t        mac[EVP_MAX_MD_SIZE];

    t = malloc(2 * (strlen(header) + strlen(claims)) + 128);
    assert_non_null(t);

    n = b64url(t, (const uint8_t *) header, strlen(header));
    t[n++] = '.';
    n += b64url(t + n, (const uint8_t *) claims, strlen(claims));

    HMAC(EVP_sha256(), key, (int) strlen(key), (uint8_t *) t, n, mac,
         &maclen);

    t[n++] = '.';
    b64url(t + n, mac, maclen);

    return t;
}


static const char *
parse_jwt(goim_token_t *tok, const char *token)
{
    return goim_token_parse(tok, (const uint8_t *) token, strlen(token),
                            (const uint8_t *) secret, strlen(secret), NOW);
}


static void
test_json_token(void **state)
{
    goim_token_t  t;
    const char   *s = "{\"mid\":123,\"key\":\"k1\",\"room_id\":\"live://1\","
                      "\"platform\":\"web\",\"accepts\":[1000,1001]}";

    (void) state;

    assert_null(goim_token_parse(&t, (const uint8_t *) s, strlen(s), NULL, 0,
                                 NOW));
    assert_int_equal(t.mid, 123);
    assert_string_equal(t.key, "k1");
    assert_string_equal(t.room, "live://1");
    assert_int_equal(t.naccepts, 2);
    assert_int_equal(t.accepts[1], 1001);
    goim_token_free(&t);

    /* goim: mid may be missing, key empty means logic makes one */
    s = "{\"key\":\"\"}";
    assert_null(goim_token_parse(&t, (const uint8_t *) s, strlen(s), NULL, 0,
                                 NOW));
    assert_int_equal(t.mid, 0);
    assert_null(t.key);
    goim_token_free(&t);

    s = "{\"mid\":\"1\"}";
    assert_string_equal(goim_token_parse(&t, (const uint8_t *) s, strlen(s),
                                         NULL, 0, NOW),
                        "token mid is not an integer");
    assert_null(t.key);

    s = "[1]";
    assert_string_equal(goim_token_parse(&t, (const uint8_t *) s, strlen(s),
                                         NULL, 0, NOW),
                        "token is not a JSON object");

    s = "{\"mid\":1,\"accepts\":[1,2147483648]}";
    assert_string_equal(goim_token_parse(&t, (const uint8_t *) s, strlen(s),
                                         NULL, 0, NOW),
                        "token accepts holds a non-int32 value");
    assert_null(t.accepts);

    /* a NUL ends the JSON: what follows is not read */
    assert_string_equal(goim_token_parse(&t, (const uint8_t *) "{\"mid\"\0:1}",
                                         10, NULL, 0, NOW),
                        "token is not valid JSON");
}


static void
test_jwt_valid(void **state)
{
    char          claims[128], *t;
    goim_token_t  tok;

    (void) state;

    snprintf(claims, sizeof(claims),
             "{\"mid\":77,\"room_id\":\"live://7\",\"accepts\":[1000],"
             "\"exp\":%d,\"nbf\":%d}", NOW + 60, NOW - 60);
    t = jwt("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, secret);

    assert_null(parse_jwt(&tok, t));
    assert_int_equal(tok.mid, 77);
    assert_string_equal(tok.room, "live://7");
    assert_int_equal(tok.naccepts, 1);
    goim_token_free(&tok);

    /* a newline around it is fine */
    t = realloc(t, strlen(t) + 3);
    memmove(t + 1, t, strlen(t) + 1);
    t[0] = ' ';
    strcat(t, "\n");
    assert_null(parse_jwt(&tok, t));
    goim_token_free(&tok);

    free(t);
}


static void
test_jwt_refused(void **state)
{
    char          claims[64], *t;
    goim_token_t  tok;

    (void) state;

    snprintf(claims, sizeof(claims), "{\"mid\":1,\"exp\":%d}", NOW);
    t = jwt("{\"alg\":\"HS256\"}", claims, secret);
    assert_string_equal(parse_jwt(&tok, t), "JWT has expired");
    free(t);

    snprintf(claims, sizeof(claims), "{\"mid\":1,\"nbf\":%d}", NOW + 1);
    t = jwt("{\"alg\":\"HS256\"}", claims, secret);
    assert_string_equal(parse_jwt(&tok, t), "JWT is not valid yet");
    free(t);

    t = jwt("{\"alg\":\"HS256\"}", "{\"mid\":1}", "other");
    assert_string_equal(parse_jwt(&tok, t), "JWT signature does not match");
    free(t);

    t = jwt("{\"alg\":\"none\"}", "{\"mid\":1}", secret);
    assert_string_equal(parse_jwt(&tok, t), "JWT algorithm is not HS256");
    free(t);

    t = jwt("{\"alg\":\"HS512\"}", "{\"mid\":1}", secret);
    assert_string_equal(parse_jwt(&tok, t), "JWT algorithm is not HS256");
    free(t);

    t = jwt("{\"alg\":\"HS256\"}", "{\"room_id\":\"x\"}", secret);
    assert_string_equal(parse_jwt(&tok, t), "JWT has no mid claim");
    free(t);

    t = jwt("{\"alg\":\"HS256\"}", "not json", secret);
    assert_string_equal(parse_jwt(&tok, t), "JWT claims are not valid JSON");
    free(t);

    assert_string_equal(parse_jwt(&tok, "{\"mid\":1}"),
                        "token is not a JWT (three dot-separated parts)");
    assert_string_equal(parse_jwt(&tok, "a.b.c.d"),
                        "token is not a JWT (three dot-separated parts)");
    assert_string_equal(parse_jwt(&tok, "a.b.c*"),
                        "JWT signature is not base64url");
    assert_string_equal(parse_jwt(&tok, "*.b.cc"),
                        "JWT header is not base64url");
}


static void
test_claims(void **state)
{
    char          *t;
    goim_token_t   tok;
    const char    *s;

    (void) state;

    t = jwt("{\"alg\":\"HS256\"}",
            "{\"mid\":5,\"room_id\":\"live://1\",\"accepts\":[1000],"
            "\"rooms\":[\"live://2\",\"chat://*\"],\"ops\":[2000,2001]}",
            secret);
    assert_null(parse_jwt(&tok, t));
    assert_true(tok.restricted);
    assert_int_equal(tok.nrooms, 2);
    assert_string_equal(tok.rooms[1], "chat://*");
    assert_int_equal(tok.nops, 2);
    assert_int_equal(tok.ops[1], 2001);
    goim_token_free(&tok);
    free(t);

    /* a JWT without the claims is restricted to room_id and accepts */
    t = jwt("{\"alg\":\"HS256\"}", "{\"mid\":5}", secret);
    assert_null(parse_jwt(&tok, t));
    assert_true(tok.restricted);
    assert_int_equal(tok.nrooms, 0);
    assert_int_equal(tok.nops, 0);
    goim_token_free(&tok);
    free(t);

    t = jwt("{\"alg\":\"HS256\"}", "{\"mid\":5,\"rooms\":[1]}", secret);
    assert_string_equal(parse_jwt(&tok, t),
                        "token rooms holds a non-string value");
    assert_null(tok.rooms);
    free(t);

    t = jwt("{\"alg\":\"HS256\"}", "{\"mid\":5,\"ops\":\"1\"}", secret);
    assert_string_equal(parse_jwt(&tok, t), "token ops is not an array");
    free(t);

    /* goim's unsigned token restricts nothing, whatever it claims */
    s = "{\"mid\":5,\"rooms\":[\"x\"],\"ops\":[1]}";
    assert_null(goim_token_parse(&tok, (const uint8_t *) s, strlen(s), NULL,
                                 0, NOW));
    assert_false(tok.restricted);
    assert_int_equal(tok.nrooms, 0);
    goim_token_free(&tok);

    assert_true(goim_token_room_allowed("live://1", "live://1", 8));
    assert_false(goim_token_room_allowed("live://1", "live://10", 9));
    assert_false(goim_token_room_allowed("live://1", "live://", 7));
    assert_true(goim_token_room_allowed("live://*", "live://10", 9));
    assert_true(goim_token_room_allowed("live://*", "live://", 7));
    assert_false(goim_token_room_allowed("live://*", "chat://1", 8));
    assert_false(goim_token_room_allowed("live://*", "live:/", 6));
    assert_true(goim_token_room_allowed("*", "anything", 8));
}


/* room recovery: in goim's JSON token, and after a JWT */
static void
test_recovery(void **state)
{
    char          claims[128], *t, *body;
    uint64_t      e, q;
    goim_token_t  tok;
    const char   *s;

    (void) state;

    s = "{\"mid\":1,\"room_id\":\"r\",\"room_pos\":\"1764000000000000:42\","
        "\"all_pos\":\"5:0\"}";
    assert_null(goim_token_parse(&tok, (const uint8_t *) s, strlen(s), NULL,
                                 0, NOW));
    assert_true(tok.recover);
    assert_true(tok.room_epoch == 1764000000000000ULL);
    assert_true(tok.room_seq == 42);
    assert_true(tok.all_epoch == 5);
    assert_true(tok.all_seq == 0);
    goim_token_free(&tok);

    s = "{\"mid\":1,\"recover\":true}";
    assert_null(goim_token_parse(&tok, (const uint8_t *) s, strlen(s), NULL,
                                 0, NOW));
    assert_true(tok.recover);
    assert_true(tok.room_epoch == 0);
    goim_token_free(&tok);

    /* goim's token asks for nothing */
    s = "{\"mid\":1}";
    assert_null(goim_token_parse(&tok, (const uint8_t *) s, strlen(s), NULL,
                                 0, NOW));
    assert_false(tok.recover);
    goim_token_free(&tok);

    s = "{\"mid\":1,\"room_pos\":\"0:1\"}";
    assert_string_equal(goim_token_parse(&tok, (const uint8_t *) s,
                                         strlen(s), NULL, 0, NOW),
                        "token room_pos is not EPOCH:SEQ");

    s = "{\"mid\":1,\"all_pos\":\"12\"}";
    assert_string_equal(goim_token_parse(&tok, (const uint8_t *) s,
                                         strlen(s), NULL, 0, NOW),
                        "token all_pos is not EPOCH:SEQ");

    s = "{\"mid\":1,\"recover\":1}";
    assert_string_equal(goim_token_parse(&tok, (const uint8_t *) s,
                                         strlen(s), NULL, 0, NOW),
                        "token recover is not a boolean");

    assert_int_equal(goim_args_position("1:2", 3, &e, &q), 0);
    assert_int_equal(goim_args_position("1:", 2, &e, &q), -1);
    assert_int_equal(goim_args_position(":1", 2, &e, &q), -1);
    assert_int_equal(goim_args_position("1:-1", 4, &e, &q), -1);
    assert_int_equal(goim_args_position("99999999999999999999:1", 22, &e,
                                         &q), -1);

    /* after a JWT, separated by white space: the client's own options */
    snprintf(claims, sizeof(claims), "{\"mid\":7,\"exp\":%d}", NOW + 60);
    t = jwt("{\"alg\":\"HS256\"}", claims, secret);
    body = malloc(strlen(t) + 64);
    assert_non_null(body);

    sprintf(body, "%s {\"room_pos\":\"3:4\"}\n", t);
    assert_null(parse_jwt(&tok, body));
    assert_int_equal(tok.mid, 7);
    assert_true(tok.recover);
    assert_true(tok.room_epoch == 3 && tok.room_seq == 4);
    goim_token_free(&tok);

    sprintf(body, "%s\n[1]", t);
    assert_string_equal(parse_jwt(&tok, body),
                        "the options after the JWT are not a JSON object");

    sprintf(body, "%s {\"room_pos\":\"x\"}", t);
    assert_string_equal(parse_jwt(&tok, body),
                        "token room_pos is not EPOCH:SEQ");

    /* the options never say who the client is: a signature still must */
    sprintf(body, "%sx {\"mid\":8}", t);
    assert_string_equal(parse_jwt(&tok, body), "JWT signature does not match");

    free(body);
    free(t);
}


static void
test_base64url(void **state)
{
    uint8_t  out[16];

    (void) state;

    assert_int_equal(goim_base64url_decode(out, (const uint8_t *) "", 0), 0);
    assert_int_equal(goim_base64url_decode(out, (const uint8_t *) "aGk", 3),
                     2);
    assert_memory_equal(out, "hi", 2);
    assert_int_equal(goim_base64url_decode(out, (const uint8_t *) "aGk=", 4),
                     2);
    assert_int_equal(goim_base64url_decode(out, (const uint8_t *) "-_8", 3),
                     2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(goim_base64url_decode(out, (const uint8_t *) "a", 1), -1);
    assert_int_equal(goim_base64url_decode(out, (const uint8_t *) "a+b/", 4),
                     -1);
    assert_int_equal(goim_base64url_decode(out, (const uint8_t *) "a=bc", 4),
                     -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_json_token),
        cmocka_unit_test(test_jwt_valid),
        cmocka_unit_test(test_jwt_refused),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_base64url),
    };

    return cmocka_run_group_tests_name("goim_token", tests, NULL, NULL);
}
