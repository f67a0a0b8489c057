/*
 * Unit tests of the permessage-deflate negotiation (RFC 7692 §7) and of
 * RSV1 in the frame parser.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "goim_ws.h"
#include "goim_ws_deflate.h"


static goim_ws_deflate_rc_t
offer(const char *value, goim_ws_deflate_offer_t *o)
{
    memset(o, 0, sizeof(*o));

    return goim_ws_deflate_offer(value, strlen(value), o);
}


static void
test_browser_offers(void **state)
{
    char                     buf[128];
    goim_ws_deflate_offer_t  o;

    (void) state;

    /* Chromium's and Firefox's */
    assert_int_equal(offer("permessage-deflate; client_max_window_bits", &o),
                     GOIM_WS_DEFLATE_ACCEPT);
    assert_int_equal(o.server_max_window_bits, 0);
    assert_int_equal(o.declined, 0);

    assert_int_equal(goim_ws_deflate_response(&o, buf, sizeof(buf)),
                     strlen("permessage-deflate; server_no_context_takeover; "
                            "client_no_context_takeover"));
    assert_string_equal(buf, "permessage-deflate; server_no_context_takeover; "
                        "client_no_context_takeover");

    assert_int_equal(offer("permessage-deflate", &o), GOIM_WS_DEFLATE_ACCEPT);
    assert_int_equal(offer("PerMessage-Deflate;client_no_context_takeover;"
                           "server_no_context_takeover", &o),
                     GOIM_WS_DEFLATE_ACCEPT);

    /* server_max_window_bits=15 is accepted and said back */
    assert_int_equal(offer("permessage-deflate; server_max_window_bits=\"15\"; "
                           "client_max_window_bits=10", &o),
                     GOIM_WS_DEFLATE_ACCEPT);
    assert_int_equal(o.server_max_window_bits, 15);
    goim_ws_deflate_response(&o, buf, sizeof(buf));
    assert_string_equal(buf, "permessage-deflate; server_no_context_takeover; "
                        "client_no_context_takeover; "
                        "server_max_window_bits=15");

    assert_int_equal(goim_ws_deflate_response(&o, buf, 20), 0);
}


static void
test_declined(void **state)
{
    goim_ws_deflate_offer_t  o;

    (void) state;

    assert_int_equal(offer("x-webkit-deflate-frame", &o),
                     GOIM_WS_DEFLATE_NONE);
    assert_int_equal(o.declined, 0);

    assert_int_equal(offer("permessage-deflate; server_max_window_bits=10",
                           &o), GOIM_WS_DEFLATE_NONE);
    assert_int_equal(o.declined, 1);
    assert_string_equal(o.why,
                        "server_max_window_bits below 15 is not supported");

    assert_int_equal(offer("permessage-deflate; foo", &o),
                     GOIM_WS_DEFLATE_NONE);
    assert_string_equal(o.why, "unknown permessage-deflate parameter");

    assert_int_equal(offer("permessage-deflate; client_max_window_bits=16",
                           &o), GOIM_WS_DEFLATE_NONE);
    assert_int_equal(offer("permessage-deflate; client_max_window_bits=7",
                           &o), GOIM_WS_DEFLATE_NONE);
    assert_int_equal(offer("permessage-deflate; client_max_window_bits=010",
                           &o), GOIM_WS_DEFLATE_NONE);
    assert_int_equal(offer("permessage-deflate; server_max_window_bits",
                           &o), GOIM_WS_DEFLATE_NONE);
    assert_int_equal(offer("permessage-deflate; server_no_context_takeover=1",
                           &o), GOIM_WS_DEFLATE_NONE);
    assert_int_equal(offer("permessage-deflate; client_no_context_takeover; "
                           "client_no_context_takeover", &o),
                     GOIM_WS_DEFLATE_NONE);
    assert_string_equal(o.why, "client_no_context_takeover given twice");
    assert_int_equal(offer("permessage-deflate; client_max_window_bits; "
                           "client_max_window_bits=9", &o),
                     GOIM_WS_DEFLATE_NONE);
    assert_int_equal(offer("permessage-deflate; server_max_window_bits="
                           "15555555555555555555555", &o),
                     GOIM_WS_DEFLATE_NONE);

    /* the next offer is taken when one is declined (§5.1) */
    assert_int_equal(offer("permessage-deflate; server_max_window_bits=9, "
                           "permessage-deflate", &o), GOIM_WS_DEFLATE_ACCEPT);
    assert_int_equal(o.declined, 1);
    assert_int_equal(o.server_max_window_bits, 0);

    /* and across headers */
    memset(&o, 0, sizeof(o));
    assert_int_equal(goim_ws_deflate_offer("permessage-deflate; bar", 23, &o),
                     GOIM_WS_DEFLATE_NONE);
    assert_int_equal(goim_ws_deflate_offer("permessage-deflate", 18, &o),
                     GOIM_WS_DEFLATE_ACCEPT);
    assert_int_equal(o.declined, 1);
}


static void
test_malformed(void **state)
{
    goim_ws_deflate_offer_t  o;

    (void) state;

    assert_int_equal(offer("", &o), GOIM_WS_DEFLATE_MALFORMED);
    assert_int_equal(offer(" , ,", &o), GOIM_WS_DEFLATE_MALFORMED);
    assert_int_equal(offer("permessage-deflate;", &o),
                     GOIM_WS_DEFLATE_MALFORMED);
    assert_int_equal(offer("permessage-deflate; =15", &o),
                     GOIM_WS_DEFLATE_MALFORMED);
    assert_int_equal(offer("permessage-deflate; client_max_window_bits=", &o),
                     GOIM_WS_DEFLATE_MALFORMED);
    assert_int_equal(offer("permessage-deflate; client_max_window_bits=\"10",
                           &o), GOIM_WS_DEFLATE_MALFORMED);
    assert_int_equal(offer("permessage-deflate; client_max_window_bits=\"1 0\"",
                           &o), GOIM_WS_DEFLATE_MALFORMED);
    assert_int_equal(offer("permessage-deflate; client_max_window_bits=\"\"",
                           &o), GOIM_WS_DEFLATE_MALFORMED);
    assert_int_equal(offer("permessage-deflate client_max_window_bits", &o),
                     GOIM_WS_DEFLATE_MALFORMED);
    assert_int_equal(offer("permessage-deflate, \"x\"", &o),
                     GOIM_WS_DEFLATE_MALFORMED);

    /* a malformed tail fails the whole value, an accepted offer too */
    assert_int_equal(offer("permessage-deflate, foo;;", &o),
                     GOIM_WS_DEFLATE_MALFORMED);

    /* an escape inside quotes, and empty list elements, are allowed */
    assert_int_equal(offer(", permessage-deflate; client_max_window_bits="
                           "\"1\\0\" ,", &o), GOIM_WS_DEFLATE_ACCEPT);
}


static void
test_rsv1(void **state)
{
    uint8_t          f[8] = { 0xc2, 0x82, 0, 0, 0, 0, 'a', 'b' };
    goim_ws_frame_t  fr;

    (void) state;

    /* refused unless negotiated */
    assert_int_equal(goim_ws_parse(f, sizeof(f), 4096, &fr), GOIM_WS_ERR_RSV);
    assert_int_equal(goim_ws_parse_ext(f, sizeof(f), 4096, 0, &fr),
                     GOIM_WS_ERR_RSV);

    assert_int_equal(goim_ws_parse_ext(f, sizeof(f), 4096, 1, &fr),
                     GOIM_WS_OK);
    assert_int_equal(fr.rsv1, 1);
    assert_int_equal(fr.opcode, GOIM_WS_OP_BINARY);

    f[0] = 0x82;
    assert_int_equal(goim_ws_parse_ext(f, sizeof(f), 4096, 1, &fr),
                     GOIM_WS_OK);
    assert_int_equal(fr.rsv1, 0);

    /* never on a continuation or a control frame; RSV2, RSV3 never */
    f[0] = 0xc0;
    assert_int_equal(goim_ws_parse_ext(f, sizeof(f), 4096, 1, &fr),
                     GOIM_WS_ERR_RSV);
    f[0] = 0xc9;
    assert_int_equal(goim_ws_parse_ext(f, sizeof(f), 4096, 1, &fr),
                     GOIM_WS_ERR_RSV);
    f[0] = 0xa2;
    assert_int_equal(goim_ws_parse_ext(f, sizeof(f), 4096, 1, &fr),
                     GOIM_WS_ERR_RSV);
    f[0] = 0x92;
    assert_int_equal(goim_ws_parse_ext(f, sizeof(f), 4096, 1, &fr),
                     GOIM_WS_ERR_RSV);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_browser_offers),
        cmocka_unit_test(test_declined),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_rsv1),
    };

    return cmocka_run_group_tests_name("goim_ws_deflate", tests, NULL, NULL);
}
