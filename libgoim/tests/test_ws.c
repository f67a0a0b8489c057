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


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(test_split_and_offset_unmask),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_header_write),
    };

    return cmocka_run_group_tests_name("goim_ws", tests, NULL, NULL);
}
