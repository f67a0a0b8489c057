/*
 * Who a client is, from the body of its auth packet (op 7).  goim's own
 * form is a JSON token that nobody checks: {"mid":123, "key":"",
 * "room_id":"live://1", "platform":"web", "accepts":[1000]}.  Given a
 * secret, the body must be an HS256 JWT signed with it instead, whose
 * claims are the same fields; it is refused when the signature is wrong,
 * the algorithm is not HS256, it has expired (exp) or is not yet valid
 * (nbf), or mid is missing.
 *
 * A signed token also bounds what the client may do after auth: "rooms"
 * lists the rooms op 12 may enter besides room_id (an entry ending in '*'
 * matches every room that starts with what precedes the '*'), "ops" the
 * operations op 14 may add besides accepts.  Without the claims, room_id
 * and accepts are all it may have.
 * goim's unsigned token restricts nothing, as in goim.
 *
 * Room recovery (not in goim): "recover": true asks for positions on room
 * messages and broadcasts, "room_pos" and "all_pos" ("EPOCH:SEQ", as
 * positions are given to the client) for what was missed since.  They
 * are the client's own choice, not the business's: after a JWT they may
 * follow it, separated by white space, as a JSON object of their own:
 * "eyJ...sig {"room_pos":"1764...:42"}".
 *
 * Plain C (OpenSSL's HMAC, yajl's parser, malloc), no NGINX: logic calls
 * it, and it is unit-tested and fuzzed on its own.
 */

#ifndef GOIM_TOKEN_H
#define GOIM_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

#define GOIM_TOKEN_MAX_ACCEPTS  1024
#define GOIM_TOKEN_MAX_KEY      128
#define GOIM_TOKEN_MAX_ROOM     4096

typedef struct {
    int64_t         mid;
    char           *key;                 /* NULL: logic makes one */
    char           *room;                /* NULL: no room */
    int32_t        *accepts;
    size_t          naccepts;

    /* set from a JWT only: the token's claims bound ops 12 and 14 */
    unsigned        restricted:1;
    char          **rooms;               /* the "rooms" claim */
    size_t          nrooms;
    int32_t        *ops;                 /* the "ops" claim */
    size_t          nops;

    /* room recovery: epoch 0 when no position was given */
    unsigned        recover:1;
    uint64_t        room_epoch;
    uint64_t        room_seq;
    uint64_t        all_epoch;
    uint64_t        all_seq;
} goim_token_t;

/* room matches a "rooms" entry: equal, or an entry "prefix*" */
int goim_token_room_allowed(const char *pattern, const char *room,
    size_t len);

/* NULL, or why the token is refused (a static string); free the token
 * either way.  secret_len 0: goim's JSON token.  now: Unix seconds, for
 * exp and nbf. */
const char *goim_token_parse(goim_token_t *t, const uint8_t *body,
    size_t len, const uint8_t *secret, size_t secret_len, int64_t now);

/* The claims (or goim's JSON token) alone; jwt: mid is required and exp,
 * nbf are checked. */
const char *goim_token_parse_claims(goim_token_t *t, const uint8_t *json,
    size_t len, int jwt, int64_t now);

void goim_token_free(goim_token_t *t);

/* base64url without padding (trailing '=' tolerated); dst has room for
 * len * 3 / 4 bytes.  Returns the decoded length, or -1. */
long goim_base64url_decode(uint8_t *dst, const uint8_t *src, size_t len);

#pragma GCC visibility pop

#endif /* GOIM_TOKEN_H */
