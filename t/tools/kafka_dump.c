/*
 * kafka_dump BROKERS TOPIC COUNT: reads COUNT records of TOPIC from the
 * beginning (a fresh consumer group) and prints one line each:
 * "partition=P key=KEY value=HEX".  Tests use it to check the records
 * logic produces, byte for byte.  Exits 1 if fewer arrive within 20 s.
 * COUNT "all": every record up to the end of each partition (as the
 * topic's metadata counts them), or exit 1 after 20 s.
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
    int                       n, want, parts, eofs;
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

    want = strcmp(argv[3], "all") == 0 ? -1 : atoi(argv[3]);
    parts = 0;
    eofs = 0;
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
                             sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "enable.partition.eof",
                             want < 0 ? "true" : "false", errstr,
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

    if (want < 0) {
        const rd_kafka_metadata_t  *md;
        rd_kafka_topic_t           *rkt;

        rkt = rd_kafka_topic_new(rk, argv[2], NULL);

        if (rkt == NULL
            || rd_kafka_metadata(rk, 0, rkt, &md, 10000)
               != RD_KAFKA_RESP_ERR_NO_ERROR)
        {
            fprintf(stderr, "kafka_dump: no metadata for %s\n", argv[2]);
            return 1;
        }

        parts = md->topic_cnt ? md->topics[0].partition_cnt : 0;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }

    for (n = 0; (want < 0 ? eofs < parts : n < want)
                && time(NULL) < deadline; /* void */)
    {
        m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL) {
            continue;
        }

        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
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

    return (want < 0 ? eofs >= parts : n == want) ? 0 : 1;
}
