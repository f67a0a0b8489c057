/*
 * kafka_dump BROKERS TOPIC COUNT: reads COUNT records of TOPIC from the
 * beginning (a fresh consumer group) and prints one line each:
 * "partition=P key=KEY value=HEX".  Tests use it to check the records
 * logic produces, byte for byte.  Exits 1 if fewer arrive within 20 s.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>


int
main(int argc, char **argv)
{
    int                       n, want;
    char                      errstr[512], group[64];
    size_t                    i;
    time_t                    deadline;
    rd_kafka_t               *rk;
    rd_kafka_conf_t          *conf;
    rd_kafka_message_t       *m;
    rd_kafka_topic_partition_list_t  *topics;

    if (argc != 4) {
        fprintf(stderr, "usage: kafka_dump BROKERS TOPIC COUNT\n");
        return 2;
    }

    want = atoi(argv[3]);
    snprintf(group, sizeof(group), "kafka-dump-%d-%ld", (int) getpid(),
             (long) time(NULL));

    conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr))
           != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK)
    {
        fprintf(stderr, "kafka_dump: %s\n", errstr);
        return 2;
    }

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka_dump: %s\n", errstr);
        return 2;
    }

    rd_kafka_poll_set_consumer(rk);

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);

    deadline = time(NULL) + 20;

    for (n = 0; n < want && time(NULL) < deadline; /* void */) {
        m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL) {
            continue;
        }

        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("partition=%d key=%.*s value=", (int) m->partition,
                   (int) m->key_len, m->key ? (char *) m->key : "");

            for (i = 0; i < m->len; i++) {
                printf("%02x", ((unsigned char *) m->payload)[i]);
            }

            printf("\n");
            n++;
        }

        rd_kafka_message_destroy(m);
    }

    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    return n == want ? 0 : 1;
}
