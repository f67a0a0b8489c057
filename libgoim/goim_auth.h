/*
 * Authentication of the internal RPC plane (comet, logic, router, job):
 * a mutual HMAC-SHA256 challenge-response on a shared secret, run once
 * when a connection opens, before any RPC frame (docs/protocol.md,
 * "Authentication").
 *
 *   client -> server  HELLO      nonce_c (32 random bytes)
 *   server -> client  CHALLENGE  nonce_s (32), then HMAC(secret,
 *                                "goim-rpc-auth-v1 server" nonce_c nonce_s)
 *   client -> server  PROOF      HMAC(secret,
 *                                "goim-rpc-auth-v1 client" nonce_c nonce_s)
 *
 * Each frame is a goim packet (16-byte header, version 1) whose op is one
 * of GOIM_AUTH_OP_*, outside the RPC method space, so a peer without a
 * secret refuses it as an unknown method and a peer with one refuses any
 * RPC frame sent before the handshake.  Each side proves the secret on
 * nonces that include one it just drew, so neither a recorded handshake
 * nor a reflected one passes; the role in the MAC stops a server's proof
 * from being replayed as a client's.  MACs are compared in constant time.
 *
 * The handshake authenticates the two ends when the connection opens; it
 * does not encrypt or sign the frames that follow (a private network, or
 * a tunnel, protects against an attacker on the path).
 *
 * This file is transport-free: the caller moves the bytes.  Both the
 * NGINX transport (libgoim/nginx) and the libuv one (libgoim/uv) use it.
 */

#ifndef GOIM_AUTH_H
#define GOIM_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "goim_packet.h"

#pragma GCC visibility push(hidden)

#define GOIM_AUTH_OP_HELLO       0x10000001
#define GOIM_AUTH_OP_CHALLENGE   0x10000002
#define GOIM_AUTH_OP_PROOF       0x10000003

#define GOIM_AUTH_NONCE_LEN      32
#define GOIM_AUTH_MAC_LEN        32

#define GOIM_AUTH_HELLO_LEN      (GOIM_HEADER_LEN + GOIM_AUTH_NONCE_LEN)
#define GOIM_AUTH_CHALLENGE_LEN  (GOIM_HEADER_LEN + GOIM_AUTH_NONCE_LEN      \
                                  + GOIM_AUTH_MAC_LEN)
#define GOIM_AUTH_PROOF_LEN      (GOIM_HEADER_LEN + GOIM_AUTH_MAC_LEN)
#define GOIM_AUTH_FRAME_MAX      GOIM_AUTH_CHALLENGE_LEN

/* a secret file holds 16 to 4096 bytes (trailing newlines not counted) */
#define GOIM_AUTH_SECRET_MIN     16
#define GOIM_AUTH_SECRET_MAX     4096

#define GOIM_AUTH_TIMEOUT_DEFAULT  5000       /* ms */


typedef struct {
    size_t        len;           /* 0: no secret, the plane is open */
    uint8_t       key[GOIM_AUTH_SECRET_MAX];
} goim_auth_secret_t;

typedef enum {
    GOIM_AUTH_AGAIN = 1,         /* more bytes needed for this step */
    GOIM_AUTH_DONE = 0,          /* authenticated: RPC frames may follow */
    GOIM_AUTH_NEXT = 2,          /* a step passed: send out, wait again */
    GOIM_AUTH_ERR_OP = -1,       /* not the frame this step expects */
    GOIM_AUTH_ERR_FRAME = -2,    /* the frame's header is malformed */
    GOIM_AUTH_ERR_PROOF = -3,    /* the peer's MAC is wrong */
    GOIM_AUTH_ERR_RANDOM = -4,   /* no random bytes for a nonce */
    GOIM_AUTH_ERR_STATE = -5     /* input after the end, or before start */
} goim_auth_rc_t;

typedef struct {
    const goim_auth_secret_t  *secret;
    unsigned                   client:1;
    unsigned                   state:3;
    uint8_t                    nonce_c[GOIM_AUTH_NONCE_LEN];
    uint8_t                    nonce_s[GOIM_AUTH_NONCE_LEN];
} goim_auth_t;


/*
 * Reads a secret file into s: its bytes less trailing CR/LF.  Refuses a
 * file that others may read or write (mode & 007), one shorter than
 * GOIM_AUTH_SECRET_MIN or longer than GOIM_AUTH_SECRET_MAX.  Returns 0, or
 * -1 with one line in err.
 */
int goim_auth_secret_load(goim_auth_secret_t *s, const char *path,
    char *err, size_t errlen);

/*
 * Draws a nonce and computes a MAC once, so that the crypto library's
 * first-use cost (seeding its generator, loading its providers) is paid at
 * start, not inside the first handshake and the deadline of the calls
 * waiting for it.  0, or -1 when no random bytes can be had.
 */
int goim_auth_warmup(const goim_auth_secret_t *secret);

/* client != 0: this end opened the connection. */
void goim_auth_init(goim_auth_t *a, const goim_auth_secret_t *secret,
    int client);

/* Client: writes the HELLO frame (GOIM_AUTH_HELLO_LEN bytes) into out;
 * returns GOIM_AUTH_NEXT or GOIM_AUTH_ERR_RANDOM. */
goim_auth_rc_t goim_auth_hello(goim_auth_t *a, uint8_t *out);

/* Bytes of the frame this end waits for now (0 once done). */
size_t goim_auth_expect(const goim_auth_t *a);

/*
 * Feeds the bytes received so far (buf[0..len), len may be more than
 * goim_auth_expect()).  A header that cannot start the expected frame is
 * refused as soon as it is in, not after goim_auth_expect() bytes.
 * GOIM_AUTH_AGAIN: nothing consumed.  GOIM_AUTH_NEXT or GOIM_AUTH_DONE:
 * goim_auth_expect() bytes as they were before the call are consumed, and
 * *outlen bytes (maybe 0) written into out (GOIM_AUTH_FRAME_MAX bytes) are
 * to be sent before anything else.  Negative: refuse the peer.
 */
goim_auth_rc_t goim_auth_input(goim_auth_t *a, const uint8_t *buf,
    size_t len, uint8_t *out, size_t *outlen);

/* 1 when the handshake is over and succeeded. */
int goim_auth_done(const goim_auth_t *a);

/* 1 for a server that has taken no frame yet (a peer closing then only
 * probed the port). */
int goim_auth_idle(const goim_auth_t *a);

const char *goim_auth_strerror(goim_auth_rc_t rc);

/* 1 when the IPv4/IPv6 address sa is a loopback one (or a unix socket). */
int goim_auth_is_loopback(const void *sa);

#pragma GCC visibility pop

#endif /* GOIM_AUTH_H */
