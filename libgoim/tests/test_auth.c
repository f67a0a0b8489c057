/*
 * Unit tests of the RPC plane's handshake (libgoim/goim_auth.c): a whole
 * handshake, the frames' layout against known MACs, and every refusal a
 * transport relies on (another secret, a replayed or reflected proof, an
 * RPC frame instead of the handshake, a malformed header), plus the
 * secret file's checks and the loopback test.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "goim_auth.h"


static goim_auth_secret_t  secret_a, secret_b;


static void
set_secret(goim_auth_secret_t *s, const char *text)
{
    s->len = strlen(text);
    memcpy(s->key, text, s->len);
}


static int
setup(void **state)
{
    (void) state;

    set_secret(&secret_a, "0123456789abcdef");
    set_secret(&secret_b, "0123456789abcdeF");

    return 0;
}


/* runs a handshake; returns the client's and server's last codes */
static void
handshake(const goim_auth_secret_t *cs, const goim_auth_secret_t *ss,
    goim_auth_rc_t *crc, goim_auth_rc_t *src)
{
    size_t       n;
    goim_auth_t  c, s;
    uint8_t      hello[GOIM_AUTH_HELLO_LEN], out[GOIM_AUTH_FRAME_MAX],
                 out2[GOIM_AUTH_FRAME_MAX];

    goim_auth_init(&c, cs, 1);
    goim_auth_init(&s, ss, 0);

    assert_int_equal(goim_auth_hello(&c, hello), GOIM_AUTH_NEXT);
    assert_int_equal(goim_auth_expect(&s), GOIM_AUTH_HELLO_LEN);
    assert_int_equal(goim_auth_input(&s, hello, sizeof(hello), out, &n),
                     GOIM_AUTH_NEXT);
    assert_int_equal(n, GOIM_AUTH_CHALLENGE_LEN);

    *crc = goim_auth_input(&c, out, n, out2, &n);
    *src = GOIM_AUTH_AGAIN;

    if (*crc == GOIM_AUTH_DONE) {
        assert_int_equal(n, GOIM_AUTH_PROOF_LEN);
        *src = goim_auth_input(&s, out2, n, out, &n);
        assert_int_equal(n, 0);
    }
}


static void
test_handshake(void **state)
{
    goim_auth_rc_t  crc, src;

    (void) state;

    assert_int_equal(goim_auth_warmup(&secret_a), 0);

    handshake(&secret_a, &secret_a, &crc, &src);
    assert_int_equal(crc, GOIM_AUTH_DONE);
    assert_int_equal(src, GOIM_AUTH_DONE);
}


/* a server with another secret cannot prove it: the client refuses first */
static void
test_wrong_secret(void **state)
{
    goim_auth_rc_t  crc, src;

    (void) state;

    handshake(&secret_a, &secret_b, &crc, &src);
    assert_int_equal(crc, GOIM_AUTH_ERR_PROOF);
}


/* the frames, byte for byte, with fixed nonces (docs/protocol.md) */
static void
test_known_answer(void **state)
{
    size_t       n;
    goim_auth_t  c, s;
    uint8_t      hello[GOIM_AUTH_HELLO_LEN], out[GOIM_AUTH_FRAME_MAX],
                 proof[GOIM_AUTH_FRAME_MAX];

    static const uint8_t  server_mac[32] = {
        0x92, 0x70, 0xb4, 0xd3, 0x4e, 0xd5, 0x65, 0xd0,
        0x84, 0x6c, 0xd8, 0x7c, 0xc2, 0xc7, 0xfb, 0x04,
        0x31, 0x6c, 0x59, 0xff, 0x9a, 0x58, 0x8f, 0xc0,
        0x31, 0xd5, 0xcd, 0x50, 0xa2, 0x5b, 0xf4, 0x6f
    };
    static const uint8_t  client_mac[32] = {
        0x44, 0x42, 0xae, 0x28, 0xa0, 0xe5, 0xec, 0x36,
        0x06, 0x4b, 0x7f, 0xe2, 0x71, 0xe5, 0x04, 0xc5,
        0x20, 0x63, 0x74, 0x36, 0x80, 0xfb, 0x84, 0xd6,
        0xa4, 0xf3, 0x39, 0xee, 0x31, 0x9f, 0x78, 0x64
    };

    (void) state;

    /* the client's HELLO: header then its nonce, here all 0x01 */
    goim_auth_init(&c, &secret_a, 1);
    assert_int_equal(goim_auth_hello(&c, hello), GOIM_AUTH_NEXT);
    assert_int_equal(goim_get_be32(hello), 48);
    assert_int_equal(goim_get_be16(hello + 4), 16);
    assert_int_equal(goim_get_be16(hello + 6), 1);
    assert_int_equal(goim_get_be32(hello + 8), GOIM_AUTH_OP_HELLO);
    memset(c.nonce_c, 0x01, 32);
    memset(hello + 16, 0x01, 32);

    /* the server's CHALLENGE, its nonce forced to all 0x02 */
    goim_auth_init(&s, &secret_a, 0);
    assert_int_equal(goim_auth_input(&s, hello, 48, out, &n), GOIM_AUTH_NEXT);
    memset(s.nonce_s, 0x02, 32);
    memset(out + 16, 0x02, 32);
    memcpy(out + 48, server_mac, 32);

    assert_int_equal(goim_get_be32(out), 80);
    assert_int_equal(goim_get_be32(out + 8), GOIM_AUTH_OP_CHALLENGE);

    assert_int_equal(goim_auth_input(&c, out, 80, proof, &n), GOIM_AUTH_DONE);
    assert_int_equal(n, 48);
    assert_int_equal(goim_get_be32(proof + 8), GOIM_AUTH_OP_PROOF);
    assert_memory_equal(proof + 16, client_mac, 32);

    assert_int_equal(goim_auth_input(&s, proof, 48, out, &n), GOIM_AUTH_DONE);
    assert_true(goim_auth_done(&s));
    assert_true(goim_auth_done(&c));
}


/* a proof recorded from one handshake fails on the next (new nonce_s) */
static void
test_replay(void **state)
{
    size_t       n;
    goim_auth_t  c, s, s2;
    uint8_t      hello[GOIM_AUTH_HELLO_LEN], out[GOIM_AUTH_FRAME_MAX],
                 proof[GOIM_AUTH_FRAME_MAX];

    (void) state;

    goim_auth_init(&c, &secret_a, 1);
    goim_auth_init(&s, &secret_a, 0);
    goim_auth_hello(&c, hello);
    goim_auth_input(&s, hello, sizeof(hello), out, &n);
    assert_int_equal(goim_auth_input(&c, out, n, proof, &n), GOIM_AUTH_DONE);

    /* an eavesdropper replays HELLO and PROOF to a new connection */
    goim_auth_init(&s2, &secret_a, 0);
    assert_int_equal(goim_auth_input(&s2, hello, sizeof(hello), out, &n),
                     GOIM_AUTH_NEXT);
    assert_false(goim_auth_idle(&s2));
    assert_int_equal(goim_auth_input(&s2, proof, GOIM_AUTH_PROOF_LEN, out,
                                     &n),
                     GOIM_AUTH_ERR_PROOF);
    assert_false(goim_auth_done(&s2));
}


/* the server's own MAC sent back as a client proof: the role differs */
static void
test_reflection(void **state)
{
    size_t       n;
    goim_auth_t  s;
    uint8_t      hello[GOIM_AUTH_HELLO_LEN], out[GOIM_AUTH_FRAME_MAX],
                 proof[GOIM_AUTH_PROOF_LEN];

    (void) state;

    memset(hello, 0x05, sizeof(hello));
    goim_header_write(hello, 32, 1, GOIM_AUTH_OP_HELLO, 0);

    goim_auth_init(&s, &secret_a, 0);
    assert_int_equal(goim_auth_input(&s, hello, sizeof(hello), out, &n),
                     GOIM_AUTH_NEXT);

    goim_header_write(proof, 32, 1, GOIM_AUTH_OP_PROOF, 0);
    memcpy(proof + 16, out + 48, 32);

    assert_int_equal(goim_auth_input(&s, proof, sizeof(proof), out, &n),
                     GOIM_AUTH_ERR_PROOF);
}


/* an RPC call instead of HELLO is refused as soon as its header is in */
static void
test_rpc_frame_first(void **state)
{
    size_t       n;
    goim_auth_t  s;
    uint8_t      frame[16], out[GOIM_AUTH_FRAME_MAX];

    (void) state;

    goim_header_write(frame, 0, 1, 311, 1);    /* Router.Stats, no body */

    goim_auth_init(&s, &secret_a, 0);
    assert_true(goim_auth_idle(&s));
    assert_int_equal(goim_auth_input(&s, frame, 3, out, &n), GOIM_AUTH_AGAIN);
    assert_int_equal(goim_auth_input(&s, frame, 16, out, &n),
                     GOIM_AUTH_ERR_OP);
    assert_int_equal(goim_auth_input(&s, frame, 16, out, &n),
                     GOIM_AUTH_ERR_STATE);
}


static void
test_partial_and_malformed(void **state)
{
    size_t       n;
    goim_auth_t  s;
    uint8_t      hello[GOIM_AUTH_HELLO_LEN], out[GOIM_AUTH_FRAME_MAX];

    (void) state;

    memset(hello, 0, sizeof(hello));
    goim_header_write(hello, 32, 1, GOIM_AUTH_OP_HELLO, 0);

    goim_auth_init(&s, &secret_a, 0);
    assert_int_equal(goim_auth_input(&s, hello, 47, out, &n),
                     GOIM_AUTH_AGAIN);
    assert_int_equal(n, 0);

    /* a HELLO with a header length other than 16 */
    goim_put_be16(hello + 4, 20);
    assert_int_equal(goim_auth_input(&s, hello, 48, out, &n),
                     GOIM_AUTH_ERR_FRAME);

    /* a HELLO whose length field is off */
    goim_auth_init(&s, &secret_a, 0);
    goim_header_write(hello, 31, 1, GOIM_AUTH_OP_HELLO, 0);
    assert_int_equal(goim_auth_input(&s, hello, 48, out, &n),
                     GOIM_AUTH_ERR_FRAME);
}


static void
write_file(const char *path, const char *text, mode_t mode)
{
    FILE  *f;

    unlink(path);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}


static void
test_secret_file(void **state)
{
    char                path[64], err[256];
    goim_auth_secret_t  s;

    (void) state;

    snprintf(path, sizeof(path), "/tmp/goim-test-secret.%d", (int) getpid());

    write_file(path, "0123456789abcdef\n", 0600);
    assert_int_equal(goim_auth_secret_load(&s, path, err, sizeof(err)), 0);
    assert_int_equal(s.len, 16);
    assert_memory_equal(s.key, "0123456789abcdef", 16);

    write_file(path, "0123456789abcdef\n", 0644);
    assert_int_equal(goim_auth_secret_load(&s, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "accessible by others"));

    write_file(path, "short\n", 0600);
    assert_int_equal(goim_auth_secret_load(&s, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at least 16"));
    assert_int_equal(s.len, 0);

    unlink(path);
    assert_int_equal(goim_auth_secret_load(&s, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));
}


static void
test_loopback(void **state)
{
    struct sockaddr_in   sin;
    struct sockaddr_in6  sin6;

    (void) state;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_true(goim_auth_is_loopback(&sin));
    inet_pton(AF_INET, "127.3.2.1", &sin.sin_addr);
    assert_true(goim_auth_is_loopback(&sin));
    inet_pton(AF_INET, "0.0.0.0", &sin.sin_addr);
    assert_false(goim_auth_is_loopback(&sin));
    inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
    assert_false(goim_auth_is_loopback(&sin));

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;

    inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
    assert_true(goim_auth_is_loopback(&sin6));
    inet_pton(AF_INET6, "::", &sin6.sin6_addr);
    assert_false(goim_auth_is_loopback(&sin6));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
    assert_true(goim_auth_is_loopback(&sin6));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_reflection),
        cmocka_unit_test(test_rpc_frame_first),
        cmocka_unit_test(test_partial_and_malformed),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_loopback),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
