/*
 * Unit tests of the RFC 6455 frame codec.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "goim_ws.h"


static const uint8_t  mask[4] = { 0x37, 0xfa, 0x21, 0x3d };


/* a masked client frame carrying payload, as a browser sends it */
static size_t
client_frame(uint8_t *dst, unsigned fin, unsigned op, const char *payload,
    size_t len)
{
    size_t  n;

    dst[0] = (uint8_t) ((fin ? 0x80 : 0) | op);

    if (len < 126) {
        dst[1] = (uint8_t) (0x80 | len);
        n = 2;

    } else {
        dst[1] = 0x80 | 126;
        dst[2] = (uint8_t) (len >> 8);
        dst[3] = (uint8_t) len;
        n = 4;
    }

    memcpy(dst + n, mask, 4);
    n += 4;
    memcpy(dst + n, payload, len);
    goim_ws_unmask(dst + n, len, mask, 0);

    return n + len;
}


static void
test_rfc_example(void **state)
{
    /* RFC 6455 §5.7: a masked "Hello" */
    uint8_t  f[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                     0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    goim_ws_frame_t  fr;

    (void) state;

    assert_int_equal(goim_ws_parse(f, sizeof(f), 4096, &fr), GOIM_WS_OK);
    assert_int_equal(fr.fin, 1);
    assert_int_equal(fr.opcode, GOIM_WS_OP_TEXT);
    assert_int_equal(fr.header_len, 6);
    assert_int_equal(fr.payload_len, 5);

    goim_ws_unmask(f + fr.header_len, 5, fr.mask, 0);
    assert_memory_equal(f + 6, "Hello", 5);
}


static void
test_split_and_offset_unmask(void **state)
{
    uint8_t          f[512];
    char             payload[300];
    size_t           len, i;
    goim_ws_frame_t  fr;

    (void) state;

    for (i = 0; i < sizeof(payload); i++) {
        payload[i] = (char) i;
    }

    len = client_frame(f, 1, GOIM_WS_OP_BINARY, payload, sizeof(payload));
    assert_int_equal(len, 4 + 4 + 300);

    for (i = 0; i < len; i++) {
        assert_int_equal(goim_ws_parse(f, i, 4096, &fr), GOIM_WS_AGAIN);
    }

    assert_int_equal(goim_ws_parse(f, len, 4096, &fr), GOIM_WS_OK);
    assert_int_equal(fr.payload_len, 300);

    /* unmasking in two pieces gives the same bytes */
    goim_ws_unmask(f + 8, 101, fr.mask, 0);
    goim_ws_unmask(f + 8 + 101, 199, fr.mask, 101);
    assert_memory_equal(f + 8, payload, 300);
}


static void
test_errors(void **state)
{
    uint8_t          f[32];
    goim_ws_frame_t  fr;

    (void) state;

    client_frame(f, 1, GOIM_WS_OP_BINARY, "x", 1);
    f[0] |= 0x40;
    assert_int_equal(goim_ws_parse(f, 7, 4096, &fr), GOIM_WS_ERR_RSV);

    client_frame(f, 1, 0x3, "x", 1);
    assert_int_equal(goim_ws_parse(f, 7, 4096, &fr), GOIM_WS_ERR_OPCODE);

    client_frame(f, 1, GOIM_WS_OP_BINARY, "x", 1);
    f[1] &= 0x7f;
    assert_int_equal(goim_ws_parse(f, 7, 4096, &fr), GOIM_WS_ERR_UNMASKED);

    client_frame(f, 0, GOIM_WS_OP_PING, "x", 1);
    assert_int_equal(goim_ws_parse(f, 7, 4096, &fr), GOIM_WS_ERR_CONTROL);

    /* oversize: refused from the header alone */
    f[0] = 0x82;
    f[1] = 0x80 | 127;
    memset(f + 2, 0, 8);
    f[6] = 0x01;                         /* 2^32 */
    assert_int_equal(goim_ws_parse(f, 10, 4096, &fr), GOIM_WS_ERR_TOO_BIG);

    f[2] = 0x80;                         /* 64-bit length with the MSB */
    assert_int_equal(goim_ws_parse(f, 10, UINT64_MAX, &fr),
                     GOIM_WS_ERR_LENGTH);

    f[0] = 0x82;
    f[1] = 0x80 | 126;
    f[2] = 0;
    f[3] = 5;                            /* non-minimal 16-bit length */
    assert_int_equal(goim_ws_parse(f, 4, 4096, &fr), GOIM_WS_ERR_LENGTH);

    assert_string_equal(goim_ws_strerror(GOIM_WS_ERR_UNMASKED),
                        "unmasked client frame");
}


static void
test_header_write(void **state)
{
    uint8_t  h[GOIM_WS_MAX_HEADER];

    (void) state;

    assert_int_equal(goim_ws_header_write(h, GOIM_WS_OP_BINARY, 20), 2);
    assert_int_equal(h[0], 0x82);
    assert_int_equal(h[1], 20);

    assert_int_equal(goim_ws_header_write(h, GOIM_WS_OP_BINARY, 4112), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal((h[2] << 8) | h[3], 4112);

    assert_int_equal(goim_ws_header_write(h, GOIM_WS_OP_CLOSE, 70000), 10);
    assert_int_equal(h[0], 0x88);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[7], 0x01);
    assert_int_equal(h[8], 0x11);
    assert_int_equal(h[9], 0x70);
}


static void
test_close_codes(void **state)
{
    unsigned  code;
    unsigned  valid[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                          1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999 };
    unsigned  invalid[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100,
                            2000, 2999, 5000, 65535 };
    size_t    i;

    (void) state;

    for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        assert_true(goim_ws_close_code_valid(valid[i]));
    }

    for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        assert_false(goim_ws_close_code_valid(invalid[i]));
    }

    for (code = 0; code < 65536; code++) {
        assert_int_equal(goim_ws_close_code_valid(code),
                         (code >= 1000 && code <= 1003)
                         || (code >= 1007 && code <= 1014)
                         || (code >= 3000 && code <= 4999));
    }
}


static void
test_utf8(void **state)
{
    (void) state;

    assert_true(goim_ws_utf8_valid((const uint8_t *) "", 0));
    assert_true(goim_ws_utf8_valid((const uint8_t *) "bye", 3));
    /* é, €, U+1F600, U+10FFFF */
    assert_true(goim_ws_utf8_valid((const uint8_t *) "\xc3\xa9", 2));
    assert_true(goim_ws_utf8_valid((const uint8_t *) "\xe2\x82\xac", 3));
    assert_true(goim_ws_utf8_valid((const uint8_t *) "\xf0\x9f\x98\x80", 4));
    assert_true(goim_ws_utf8_valid((const uint8_t *) "\xf4\x8f\xbf\xbf", 4));

    /* a lone continuation byte, a truncated sequence, an overlong '/' */
    assert_false(goim_ws_utf8_valid((const uint8_t *) "\x80", 1));
    assert_false(goim_ws_utf8_valid((const uint8_t *) "a\xe2\x82", 3));
    assert_false(goim_ws_utf8_valid((const uint8_t *) "\xc0\xaf", 2));
    assert_false(goim_ws_utf8_valid((const uint8_t *) "\xe0\x80\xaf", 3));
    /* a surrogate, past U+10FFFF, 0xff */
    assert_false(goim_ws_utf8_valid((const uint8_t *) "\xed\xa0\x80", 3));
    assert_false(goim_ws_utf8_valid((const uint8_t *) "\xf4\x90\x80\x80", 4));
    assert_false(goim_ws_utf8_valid((const uint8_t *) "\xff", 1));
}


static void
test_close_reply(void **state)
{
    const char  *err;

    (void) state;

    assert_int_equal(goim_ws_close_reply(NULL, 0, &err), 1000);
    assert_null(err);

    assert_int_equal(goim_ws_close_reply((const uint8_t *) "\x03", 1, &err),
                     1002);
    assert_string_equal(err, "close frame with a 1-byte payload");

    assert_int_equal(goim_ws_close_reply((const uint8_t *) "\x03\xe8" "bye", 5,
                                         &err), 1000);
    assert_null(err);

    assert_int_equal(goim_ws_close_reply((const uint8_t *) "\x0f\xa0", 2,
                                         &err), 4000);
    assert_null(err);

    /* 1005, 1006, 1015 are for APIs, never on the wire; 5000 unassigned */
    assert_int_equal(goim_ws_close_reply((const uint8_t *) "\x03\xed", 2,
                                         &err), 1002);
    assert_string_equal(err, "invalid close status code");
    assert_int_equal(goim_ws_close_reply((const uint8_t *) "\x03\xee", 2,
                                         &err), 1002);
    assert_int_equal(goim_ws_close_reply((const uint8_t *) "\x03\xf7", 2,
                                         &err), 1002);
    assert_int_equal(goim_ws_close_reply((const uint8_t *) "\x13\x88", 2,
                                         &err), 1002);
    assert_int_equal(goim_ws_close_reply((const uint8_t *) "\x00\x00", 2,
                                         &err), 1002);

    assert_int_equal(goim_ws_close_reply((const uint8_t *) "\x03\xe8\xce\xba"
                                         "\xe1\xbd\xb9\xed\xa0\x80", 9,
                                         &err), 1007);
    assert_string_equal(err, "close reason is not valid UTF-8");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(test_split_and_offset_unmask),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_header_write),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_close_reply),
    };

    return cmocka_run_group_tests_name("goim_ws", tests, NULL, NULL);
}
