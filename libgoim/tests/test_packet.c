/*
 * Unit tests of the goim packet codec: split reads, packets back to back,
 * every malformed header, OpRaw batches, and the RPC frame round trip.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "goim_packet.h"
#include "goim_rpc.h"


static size_t
make_packet(uint8_t *dst, int32_t pack_len, int16_t header_len, int16_t ver,
    int32_t op, int32_t seq, const char *body)
{
    size_t  n;

    goim_put_be32(dst, (uint32_t) pack_len);
    goim_put_be16(dst + 4, (uint16_t) header_len);
    goim_put_be16(dst + 6, (uint16_t) ver);
    goim_put_be32(dst + 8, (uint32_t) op);
    goim_put_be32(dst + 12, (uint32_t) seq);

    n = body ? strlen(body) : 0;
    if (n) {
        memcpy(dst + 16, body, n);
    }

    return 16 + n;
}


static void
test_heartbeat_bytes(void **state)
{
    /* goim reference §1.11: heartbeat request, ver 1, seq 1 */
    static const uint8_t  hb[] = { 0, 0, 0, 0x10, 0, 0x10, 0, 1,
                                   0, 0, 0, 2, 0, 0, 0, 1 };
    size_t         consumed;
    goim_packet_t  pkt;

    (void) state;

    assert_int_equal(goim_packet_parse(hb, sizeof(hb), 4096, &pkt,
                                       &consumed), GOIM_OK);
    assert_int_equal(consumed, 16);
    assert_int_equal(pkt.header.ver, 1);
    assert_int_equal(pkt.header.op, GOIM_OP_HEARTBEAT);
    assert_int_equal(pkt.header.seq, 1);
    assert_int_equal(pkt.body_len, 0);
}


static void
test_write_matches_reference(void **state)
{
    /* heartbeat reply with room online 5 (reference §1.11) */
    static const uint8_t  want[] = { 0, 0, 0, 0x14, 0, 0x10, 0, 1,
                                     0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 5 };
    uint8_t  buf[32], body[4];

    (void) state;

    goim_put_be32(body, 5);
    assert_int_equal(goim_packet_write(buf, 1, GOIM_OP_HEARTBEAT_REPLY, 1,
                                       body, 4), 20);
    assert_memory_equal(buf, want, sizeof(want));
}


static void
test_split_reads(void **state)
{
    uint8_t        buf[64];
    size_t         len, i, consumed;
    goim_packet_t  pkt;

    (void) state;

    len = make_packet(buf, 16 + 5, 16, 1, 7, 9, "hello");

    /* every prefix is incomplete, and nothing is consumed */
    for (i = 0; i < len; i++) {
        assert_int_equal(goim_packet_parse(buf, i, 4096, &pkt, &consumed),
                         GOIM_AGAIN);
        assert_int_equal(consumed, 0);
    }

    assert_int_equal(goim_packet_parse(buf, len, 4096, &pkt, &consumed),
                     GOIM_OK);
    assert_int_equal(consumed, len);
    assert_int_equal(pkt.body_len, 5);
    assert_memory_equal(pkt.body, "hello", 5);
    assert_int_equal(pkt.header.op, 7);
    assert_int_equal(pkt.header.seq, 9);
}


static void
test_back_to_back(void **state)
{
    uint8_t        buf[128];
    size_t         len, off, consumed;
    goim_packet_t  pkt;
    int            n;

    (void) state;

    len = make_packet(buf, 16 + 1, 16, 1, 2, 1, "a");
    len += make_packet(buf + len, 16, 16, 1, 2, 2, NULL);
    len += make_packet(buf + len, 16 + 3, 16, 1, 1000, 3, "xyz");

    for (off = 0, n = 0; off < len; n++) {
        assert_int_equal(goim_packet_parse(buf + off, len - off, 4096, &pkt,
                                           &consumed), GOIM_OK);
        assert_int_equal(pkt.header.seq, n + 1);
        off += consumed;
    }

    assert_int_equal(n, 3);
    assert_int_equal(off, len);

    /* the same stream with its last byte missing stops at the third */
    assert_int_equal(goim_packet_parse(buf + 17 + 16, len - 17 - 16 - 1,
                                       4096, &pkt, &consumed), GOIM_AGAIN);
}


static void
test_malformed(void **state)
{
    uint8_t        buf[64];
    size_t         consumed;
    goim_packet_t  pkt;

    (void) state;

    make_packet(buf, 20, 15, 1, 2, 1, "abcd");
    assert_int_equal(goim_packet_parse(buf, 20, 4096, &pkt, &consumed),
                     GOIM_ERR_HEADER_LEN);

    make_packet(buf, 20, 17, 1, 2, 1, "abcd");
    assert_int_equal(goim_packet_parse(buf, 20, 4096, &pkt, &consumed),
                     GOIM_ERR_HEADER_LEN);

    make_packet(buf, -1, 16, 1, 2, 1, NULL);
    assert_int_equal(goim_packet_parse(buf, 16, 4096, &pkt, &consumed),
                     GOIM_ERR_NEGATIVE_LEN);

    make_packet(buf, INT32_MIN, 16, 1, 2, 1, NULL);
    assert_int_equal(goim_packet_parse(buf, 16, 4096, &pkt, &consumed),
                     GOIM_ERR_NEGATIVE_LEN);

    make_packet(buf, 15, 16, 1, 2, 1, NULL);
    assert_int_equal(goim_packet_parse(buf, 16, 4096, &pkt, &consumed),
                     GOIM_ERR_SHORT_LEN);

    make_packet(buf, 0, 16, 1, 2, 1, NULL);
    assert_int_equal(goim_packet_parse(buf, 16, 4096, &pkt, &consumed),
                     GOIM_ERR_SHORT_LEN);

    /* oversize is refused from the header alone, before any body */
    make_packet(buf, 16 + 4097, 16, 1, 2, 1, NULL);
    assert_int_equal(goim_packet_parse(buf, 16, 4096, &pkt, &consumed),
                     GOIM_ERR_TOO_LARGE);

    make_packet(buf, INT32_MAX, 16, 1, 2, 1, NULL);
    assert_int_equal(goim_packet_parse(buf, 16, 4096, &pkt, &consumed),
                     GOIM_ERR_TOO_LARGE);

    /* exactly the maximum is fine (and incomplete here) */
    make_packet(buf, 16 + 4096, 16, 1, 2, 1, NULL);
    assert_int_equal(goim_packet_parse(buf, 16, 4096, &pkt, &consumed),
                     GOIM_AGAIN);

    assert_string_equal(goim_strerror(GOIM_ERR_TOO_LARGE),
                        "packet body too large");
}


static void
test_no_overread(void **state)
{
    uint8_t        *buf;
    size_t          consumed, i;
    goim_packet_t   pkt;

    (void) state;

    /* a heap block of exactly the bytes given: ASan catches any overread */
    for (i = 0; i <= 20; i++) {
        buf = malloc(i ? i : 1);
        assert_non_null(buf);
        memset(buf, 0, i ? i : 1);
        if (i >= 16) {
            make_packet(buf, 20, 16, 1, 2, 1, NULL);
        }
        (void) goim_packet_parse(buf, i, 4096, &pkt, &consumed);
        free(buf);
    }
}


static void
test_batch(void **state)
{
    goim_batch_t   b;
    size_t         consumed, off;
    goim_packet_t  outer, inner;
    int            i;

    (void) state;

    /* reference §1.11: a room batch of "room message" and "hi", op 1000 */
    assert_int_equal(goim_batch_init(&b, 8, NULL, NULL), 0);
    assert_int_equal(goim_batch_append(&b, 1, 1000, 0, "room message", 12),
                     0);
    assert_int_equal(goim_batch_append(&b, 1, 1000, 0, "hi", 2), 0);
    goim_batch_finish(&b, 1, 0);

    assert_int_equal(b.count, 2);
    assert_int_equal(b.len, 0x3e);
    assert_int_equal(goim_get_be32(b.data), 0x3e);
    assert_int_equal(goim_get_be32(b.data + 8), GOIM_OP_RAW);

    assert_int_equal(goim_packet_parse(b.data, b.len, 4096, &outer,
                                       &consumed), GOIM_OK);
    assert_int_equal(outer.header.op, GOIM_OP_RAW);

    for (off = 0, i = 0; off < outer.body_len; i++) {
        assert_int_equal(goim_packet_parse(outer.body + off,
                                           outer.body_len - off, 4096,
                                           &inner, &consumed), GOIM_OK);
        assert_int_equal(inner.header.op, 1000);
        assert_int_equal(inner.header.ver, 1);
        assert_int_equal(inner.body_len, i == 0 ? 12 : 2);
        off += consumed;
    }

    assert_int_equal(i, 2);

    goim_batch_free(&b);
    assert_null(b.data);
}


static void
test_rpc_frame_round_trip(void **state)
{
    uint8_t              *buf;
    size_t                size, consumed;
    goim_packet_t         pkt;
    Goim__PushMsg         msg = GOIM__PUSH_MSG__INIT, *got;
    char                 *keys[] = { "k1", "k2" };
    const goim_rpc_method_t  *m;

    (void) state;

    msg.type = GOIM__PUSH_MSG__TYPE__PUSH;
    msg.operation = 1000;
    msg.server = "comet-1";
    msg.n_keys = 2;
    msg.keys = keys;
    msg.msg.data = (uint8_t *) "hello";
    msg.msg.len = 5;

    size = goim_rpc_frame_size(&msg.base);
    buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(goim_rpc_frame_write(buf, 401, 77, &msg.base), size);

    assert_int_equal(goim_packet_parse(buf, size, GOIM_RPC_MAX_BODY_DEFAULT,
                                       &pkt, &consumed), GOIM_OK);
    assert_int_equal(pkt.header.ver, GOIM_RPC_VERSION);
    assert_int_equal(pkt.header.seq, 77);

    got = (Goim__PushMsg *) protobuf_c_message_unpack(
              &goim__push_msg__descriptor, NULL, pkt.body_len, pkt.body);
    assert_non_null(got);
    assert_int_equal(got->operation, 1000);
    assert_string_equal(got->server, "comet-1");
    assert_int_equal(got->n_keys, 2);
    assert_string_equal(got->keys[1], "k2");
    protobuf_c_message_free_unpacked(&got->base, NULL);
    free(buf);

    m = goim_rpc_method(GOIM__METHOD__LOGIC_CONNECT);
    assert_non_null(m);
    assert_string_equal(m->name, "Logic.Connect");
    assert_null(goim_rpc_method(9999));
    assert_true(goim_rpc_is_reply(101 | GOIM_RPC_REPLY));
    assert_false(goim_rpc_is_reply(101));
    assert_int_equal(goim_rpc_op_method(101 | GOIM_RPC_ERROR), 101);
}


/* the splitter the RPC transports read with */
static void
test_rpc_frame_split(void **state)
{
    uint8_t           buf[200];
    size_t            n, i;
    goim_rpc_frame_t  f;

    (void) state;

    n = goim_packet_write(buf, GOIM_RPC_VERSION, 304, 9, "0123456789", 10);
    assert_int_equal(n, 26);
    goim_packet_write(buf + n, GOIM_RPC_VERSION, 305, 10, "x", 1);

    /* a header not in yet: 16 bytes needed whatever came */
    for (i = 0; i < GOIM_HEADER_LEN; i++) {
        assert_int_equal(goim_rpc_frame_split(buf, i, 64, &f), GOIM_AGAIN);
        assert_int_equal(f.need, GOIM_HEADER_LEN);
    }

    /* the header is in: the whole frame's size */
    for (i = GOIM_HEADER_LEN; i < n; i++) {
        assert_int_equal(goim_rpc_frame_split(buf, i, 64, &f), GOIM_AGAIN);
        assert_int_equal(f.need, 26);
        assert_int_equal(f.len, 0);
    }

    /* a frame and the start of the next: the first only */
    assert_int_equal(goim_rpc_frame_split(buf, n + 5, 64, &f), GOIM_OK);
    assert_int_equal(f.len, 26);
    assert_int_equal(f.pkt.header.op, 304);
    assert_int_equal(f.pkt.header.seq, 9);
    assert_int_equal(f.pkt.body_len, 10);
    assert_ptr_equal(f.pkt.body, buf + 16);

    assert_int_equal(goim_rpc_frame_split(buf + 26, 17, 64, &f), GOIM_OK);
    assert_int_equal(f.len, 17);
    assert_int_equal(f.pkt.header.op, 305);

    /* a body at the maximum passes, one byte more is refused at once */
    assert_int_equal(goim_rpc_frame_split(buf, 16, 10, &f), GOIM_AGAIN);
    assert_int_equal(goim_rpc_frame_split(buf, 16, 9, &f),
                     GOIM_ERR_TOO_LARGE);
    assert_string_equal(goim_strerror(GOIM_ERR_TOO_LARGE),
                        goim_strerror(GOIM_ERR_TOO_LARGE));

    /* bad headers: no resynchronising */
    goim_put_be16(buf + 4, 12);
    assert_int_equal(goim_rpc_frame_split(buf, 26, 64, &f),
                     GOIM_ERR_HEADER_LEN);
    goim_put_be16(buf + 4, 16);
    goim_put_be32(buf, 15);
    assert_int_equal(goim_rpc_frame_split(buf, 26, 64, &f),
                     GOIM_ERR_SHORT_LEN);
    goim_put_be32(buf, 0x80000000u);
    assert_int_equal(goim_rpc_frame_split(buf, 26, 64, &f),
                     GOIM_ERR_NEGATIVE_LEN);
    goim_put_be32(buf, 0x7fffffffu);
    assert_int_equal(goim_rpc_frame_split(buf, 26, GOIM_RPC_MAX_BODY_DEFAULT,
                                          &f),
                     GOIM_ERR_TOO_LARGE);
}


/* found by fuzz_rpc_unpack: a field number 0 does not survive a repack */
static void
test_rpc_unpack_refuses_field_zero(void **state)
{
    ProtobufCMessage  *msg;

    static const uint8_t  top[] = { 0x80, 0x00, 0xfe, 0x00 };
    static const uint8_t  ok[] = { 0x88, 0x00, 0x05 };
    /* PushMsgReq { proto (2) = Proto { field 0 = 5 } } */
    static const uint8_t  nested[] = { 0x12, 0x03, 0x80, 0x00, 0x05 };
    /* RpcError { field 0 = 1 } */
    static const uint8_t  err[] = { 0x80, 0x00, 0x01 };

    (void) state;

    assert_null(goim_rpc_unpack(GOIM__METHOD__LOGIC_CONNECT, 1, NULL, top,
                                sizeof(top)));
    assert_null(goim_rpc_unpack(GOIM__METHOD__COMET_PUSH_MSG, 0, NULL,
                                nested, sizeof(nested)));
    assert_null(goim_rpc_unpack_error(NULL, err, sizeof(err)));

    /* a non-minimal tag of a real field number is still read */
    msg = goim_rpc_unpack(GOIM__METHOD__LOGIC_CONNECT, 1, NULL, ok,
                          sizeof(ok));
    assert_non_null(msg);
    protobuf_c_message_free_unpacked(msg, NULL);
}


static void
test_kafka_record_is_goim_v2(void **state)
{
    /*
     * goim v2's PushMsg for {type ROOM, operation 1000, room "live://1",
     * msg "hi"}, encoded by hand from its field numbers (type 1,
     * operation 2, room 5, msg 7).
     */
    static const uint8_t  want[] = {
        0x08, 0x01, 0x10, 0xe8, 0x07,
        0x2a, 0x08, 'l', 'i', 'v', 'e', ':', '/', '/', '1',
        0x3a, 0x02, 'h', 'i'
    };
    uint8_t        buf[64];
    Goim__PushMsg  msg = GOIM__PUSH_MSG__INIT;

    (void) state;

    msg.type = GOIM__PUSH_MSG__TYPE__ROOM;
    msg.operation = 1000;
    msg.room = "live://1";
    msg.msg.data = (uint8_t *) "hi";
    msg.msg.len = 2;

    assert_int_equal(protobuf_c_message_pack(&msg.base, buf), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_heartbeat_bytes),
        cmocka_unit_test(test_write_matches_reference),
        cmocka_unit_test(test_split_reads),
        cmocka_unit_test(test_back_to_back),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_no_overread),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_rpc_frame_round_trip),
        cmocka_unit_test(test_rpc_frame_split),
        cmocka_unit_test(test_rpc_unpack_refuses_field_zero),
        cmocka_unit_test(test_kafka_record_is_goim_v2),
    };

    return cmocka_run_group_tests_name("goim_packet", tests, NULL, NULL);
}
