/*
 * bench/produce: writes goim v2 PushMsg records to Kafka as fast as
 * librdkafka takes them, keyed as goim's logic keys them.
 *
 *   produce BROKERS TOPIC room  COUNT ROOM      OP
 *   produce BROKERS TOPIC push  COUNT SERVER:KEY OP
 *
 * Bodies are "r<i>" / "p<i>".  Exits once every record is acknowledged.
 */

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim.pb-c.h"


static long  failed;


static void
dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void) rk;
    (void) opaque;

    if (m->err) {
        failed++;
    }
}


int
main(int argc, char **argv)
{
    long               i, count;
    char               err[512], body[32], *server, *key;
    size_t             len;
    uint8_t            buf[256];
    rd_kafka_t        *rk;
    rd_kafka_conf_t   *conf;
    Goim__PushMsg      m = GOIM__PUSH_MSG__INIT;

    if (argc != 7) {
        fprintf(stderr, "usage: produce BROKERS TOPIC room|push COUNT "
                "ROOM|SERVER:KEY OP\n");
        return 1;
    }

    count = atol(argv[4]);
    m.operation = atoi(argv[6]);

    if (strcmp(argv[3], "room") == 0) {
        m.type = GOIM__PUSH_MSG__TYPE__ROOM;
        m.room = argv[5];
        key = argv[5];

    } else {
        m.type = GOIM__PUSH_MSG__TYPE__PUSH;
        server = argv[5];
        key = strchr(server, ':');
        if (key == NULL) {
            return 1;
        }

        *key++ = '\0';
        m.server = server;
        m.n_keys = 1;
        m.keys = &key;
    }

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err));
    rd_kafka_conf_set(conf, "partitioner", "fnv1a", err, sizeof(err));
    rd_kafka_conf_set_dr_msg_cb(conf, dr);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "produce: %s\n", err);
        return 1;
    }

    for (i = 1; i <= count; i++) {
        m.msg.len = (size_t) snprintf(body, sizeof(body), "%c%ld",
                                      m.type == GOIM__PUSH_MSG__TYPE__ROOM
                                      ? 'r' : 'p', i);
        m.msg.data = (uint8_t *) body;
        len = goim__push_msg__pack(&m, buf);

        while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[2]),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_VALUE(buf, len),
                                 RD_KAFKA_V_KEY(key, strlen(key)),
                                 RD_KAFKA_V_END)
               == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        {
            rd_kafka_poll(rk, 10);
        }

        rd_kafka_poll(rk, 0);
    }

    rd_kafka_flush(rk, 30000);
    rd_kafka_destroy(rk);

    if (failed) {
        fprintf(stderr, "produce: %ld records failed\n", failed);
        return 1;
    }

    return 0;
}
