/*
 * goim-job's ensure messages (not in goim, whose push API documents an
 * "ensure" flag nothing implements): messages to a mid that must be
 * acknowledged by one of its connections, kept here until they are.
 *
 *   - logic sends one ENSURE record per mid (the call's id, the message,
 *     its expiry, the mid's sessions when it was pushed); it is kept in
 *     the mid's mailbox with a seq from one counter that only grows;
 *   - it goes to every session at once: as op 19 (its seq, id and the
 *     plain packet) to the connections that acknowledge (they sent op 18)
 *     and plainly, once, to those that do not (goim's clients); comet
 *     tells them apart (PushMsgReq.ack_filter);
 *   - ONLINE (a connection's first op 18) sends it what its mid has
 *     pending, in seq order; ACK (op 18's ids) finishes those messages;
 *   - every ensure_retry ms what is still pending is resent, in order, to
 *     the sessions job knows, until ensure_retries sends reached a
 *     connection or its TTL passes; a comet that no longer has the key
 *     (delivered 0) takes the session out, and the message waits for the
 *     mid's next ONLINE without using up its retries (offline delivery).
 *
 * Every message, pending or finished, is a receipt found by id (one per
 * mid); a finished one stays receipt_ttl s or until receipts_max newer
 * ones finished.  Pending messages are bounded by ensure_max and, per
 * mid, ensure_mailbox_max: a JOB_PUSH past them is refused whole
 * (logic answers 503).  What came by JOB_PUSH is in memory only: a
 * restart of job loses it, and the receipts (README.md says so).
 *
 * From Kafka (kafka.c) the push topic is the durable log and this is an
 * index of it: a message keeps its record's offset uncommitted (off)
 * until it is finished, and, with kafka_receipts_topic, until its
 * receipt record is written; its seq is its position in the log
 * (JOB_ENSURE_SEQ), so a restarted job that reads the records again
 * rebuilds the same mailboxes with the same seqs, and the ACK records
 * after them finish them again.  A record seen twice (a replay, a
 * rebalance) is known by its id and mid.
 *
 * The due list holds every pending message in the order they are due:
 * each (re)send puts one at its tail ensure_retry ms from now, so it stays
 * sorted and one timer serves it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goim_uv_hash.h"
#include "goim_uv_log.h"
#include "job.h"
#include "offsets.h"


#define JOB_ENSURE_ID_MAX        64
#define JOB_ENSURE_SESSIONS_MAX  64     /* per mailbox: a mid's devices */

/*
 * The seq of a Kafka record: 2^52 + partition * 2^39 + offset, above the
 * JOB_PUSH seqs (the start time in us stays under 2^52 until 2112) and
 * exact in a JavaScript Number (under 2^53) for partitions under 8192
 * and offsets under 2^39; it grows with the offset, so with a mid's
 * records (one partition).
 */
#define JOB_ENSURE_SEQ(partition, offset)                                     \
    (((uint64_t) 1 << 52) + ((uint64_t) (partition) << 39)                   \
     + (uint64_t) (offset))

enum {
    JOB_ENSURE_PENDING = 0,
    JOB_ENSURE_DELIVERED,
    JOB_ENSURE_EXPIRED
};


typedef struct {
    goim_queue_t            queue;      /* in mb->sessions */
    char                   *key;
    char                   *comet;
} job_ensure_session_t;

typedef struct {
    goim_hnode_t            hnode;      /* in job_mailboxes, by mid */
    int64_t                 mid;
    goim_queue_t            msgs;       /* pending, by seq */
    size_t                  nmsgs;
    goim_queue_t            sessions;
    size_t                  nsessions;
} job_mailbox_t;

typedef struct {
    goim_hnode_t            hnode;      /* in job_receipts, by id */
    uint32_t                hv;
    goim_queue_t            link;       /* mb->msgs, or job_finished */
    goim_queue_t            due;        /* job_due, while pending */
    job_mailbox_t          *mb;         /* while pending */
    int64_t                 mid;
    uint64_t                seq;
    int32_t                 op;
    unsigned                state;
    unsigned                attempts;
    char                  **keys;       /* by key: only these, or NULL */
    size_t                  nkeys;
    int64_t                 created_ms;
    int64_t                 expire_ms;
    int64_t                 done_ms;
    uint64_t                due_at;     /* uv_now() */
    job_off_t              *off;        /* its Kafka record, or NULL */
    char                   *acked_key;
    const char             *reason;
    uint8_t                *packet;     /* op 19: seq, id, the plain one */
    size_t                  len;
    size_t                  plain;      /* the plain packet's offset */
    char                    id[JOB_ENSURE_ID_MAX + 1];
} job_ensure_msg_t;

/*
 * What a send's answer needs, whatever became of its message; a send to a
 * comet job does not know yet waits with it for the next comet list.
 */
typedef struct {
    job_wait_t              wait;
    int64_t                 mid;
    char                   *key;
    char                   *comet;
    int32_t                 ack_filter;
    char                    id[JOB_ENSURE_ID_MAX + 1];
} job_ensure_ticket_t;


static goim_hash_t   job_mailboxes;
static goim_hash_t   job_receipts;
static goim_queue_t  job_due;
static goim_queue_t  job_finished;
static size_t        job_pending;
static size_t        job_nfinished;
static uint64_t      job_seq;
static uv_timer_t    job_ensure_timer;
static unsigned      job_ensure_ready;


static void job_ensure_tick(uv_timer_t *t);
static int job_ensure_send_one(job_ensure_msg_t *m, job_ensure_session_t *s,
    int32_t ack_filter);
static job_ensure_msg_t *job_receipt_find(const char *id, int64_t mid);


static uint32_t
job_mailbox_hash(const goim_hnode_t *node)
{
    return goim_hash_u64((uint64_t) ((const job_mailbox_t *) node)->mid);
}


static uint32_t
job_receipt_hash(const goim_hnode_t *node)
{
    return ((const job_ensure_msg_t *) node)->hv;
}


static int64_t
job_ensure_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int
job_ensure_init(void)
{
    if (goim_hash_init(&job_mailboxes, 1024, job_mailbox_hash) != 0
        || goim_hash_init(&job_receipts, 1024, job_receipt_hash) != 0)
    {
        return -1;
    }

    goim_queue_init(&job_due);
    goim_queue_init(&job_finished);

    /*
     * Seqs only grow, across restarts too (a client keeps what it saw):
     * the first is the start time in microseconds.
     */
    job_seq = (uint64_t) job_ensure_now_ms() * 1000;

    uv_timer_init(job.loop, &job_ensure_timer);
    job_ensure_ready = 1;

    return 0;
}


static job_mailbox_t *
job_mailbox_find(int64_t mid)
{
    goim_hnode_t   *n;
    job_mailbox_t  *mb;

    for (n = goim_hash_chain(&job_mailboxes, goim_hash_u64((uint64_t) mid));
         n; n = n->next)
    {
        mb = (job_mailbox_t *) n;

        if (mb->mid == mid) {
            return mb;
        }
    }

    return NULL;
}


static job_mailbox_t *
job_mailbox_get(int64_t mid)
{
    job_mailbox_t  *mb;

    mb = job_mailbox_find(mid);
    if (mb) {
        return mb;
    }

    mb = calloc(1, sizeof(job_mailbox_t));
    if (mb == NULL) {
        return NULL;
    }

    mb->mid = mid;
    goim_queue_init(&mb->msgs);
    goim_queue_init(&mb->sessions);
    goim_hash_insert(&job_mailboxes, &mb->hnode,
                     goim_hash_u64((uint64_t) mid));

    return mb;
}


static void
job_session_free(job_mailbox_t *mb, job_ensure_session_t *s)
{
    goim_queue_remove(&s->queue);
    mb->nsessions--;
    free(s->key);
    free(s->comet);
    free(s);
}


static void
job_mailbox_free(job_mailbox_t *mb)
{
    goim_queue_t  *q;

    while (!goim_queue_empty(&mb->sessions)) {
        q = goim_queue_head(&mb->sessions);
        job_session_free(mb, goim_queue_data(q, job_ensure_session_t, queue));
    }

    (void) goim_hash_remove(&job_mailboxes, &mb->hnode,
                            goim_hash_u64((uint64_t) mb->mid));
    free(mb);
}


static job_ensure_session_t *
job_session_find(job_mailbox_t *mb, const char *key)
{
    goim_queue_t          *q;
    job_ensure_session_t  *s;

    for (q = goim_queue_head(&mb->sessions); q != &mb->sessions;
         q = q->next)
    {
        s = goim_queue_data(q, job_ensure_session_t, queue);

        if (strcmp(s->key, key) == 0) {
            return s;
        }
    }

    return NULL;
}


/* key on comet: added, or moved there; the oldest goes past the bound */
static job_ensure_session_t *
job_session_add(job_mailbox_t *mb, const char *key, const char *comet)
{
    char                  *c;
    goim_queue_t          *q;
    job_ensure_session_t  *s;

    s = job_session_find(mb, key);

    if (s) {
        if (strcmp(s->comet, comet) != 0) {
            c = strdup(comet);
            if (c == NULL) {
                return NULL;
            }

            free(s->comet);
            s->comet = c;
        }

        return s;
    }

    if (mb->nsessions == JOB_ENSURE_SESSIONS_MAX) {
        q = goim_queue_head(&mb->sessions);
        job_session_free(mb, goim_queue_data(q, job_ensure_session_t, queue));
        job.stats.ensure_sessions_evicted++;
    }

    s = calloc(1, sizeof(job_ensure_session_t));
    if (s == NULL) {
        return NULL;
    }

    s->key = strdup(key);
    s->comet = strdup(comet);
    if (s->key == NULL || s->comet == NULL) {
        free(s->key);
        free(s->comet);
        free(s);
        return NULL;
    }

    goim_queue_insert_tail(&mb->sessions, &s->queue);
    mb->nsessions++;

    return s;
}


static int
job_ensure_for_key(const job_ensure_msg_t *m, const char *key)
{
    size_t  i;

    if (m->keys == NULL) {
        return 1;
    }

    for (i = 0; i < m->nkeys; i++) {
        if (strcmp(m->keys[i], key) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
job_ensure_ticket_free(job_ensure_ticket_t *t)
{
    free(t->key);
    free(t->comet);
    free(t);
}


/* a send's answer: a comet without the key no longer has the session */
static void
job_ensure_sent(void *data, int delivered)
{
    job_mailbox_t          *mb;
    job_ensure_ticket_t    *t;
    job_ensure_session_t   *s;

    t = data;

    if (delivered == 0 && job_ensure_ready) {
        mb = job_mailbox_find(t->mid);
        s = mb ? job_session_find(mb, t->key) : NULL;

        if (s && strcmp(s->comet, t->comet) == 0) {
            job.stats.ensure_sessions_gone++;
            job_session_free(mb, s);
        }
    }

    job_ensure_ticket_free(t);
}


/* the comet list came: the send goes now, if its message still waits */
static void
job_ensure_comet_ready(job_wait_t *w)
{
    job_mailbox_t          *mb;
    job_ensure_msg_t       *m;
    job_ensure_ticket_t    *t;
    job_ensure_session_t   *s;

    t = (job_ensure_ticket_t *) w;

    if (job_ensure_ready && job_comets_find(t->comet)) {
        m = job_receipt_find(t->id, t->mid);
        mb = job_mailbox_find(t->mid);
        s = mb ? job_session_find(mb, t->key) : NULL;

        if (m && m->state == JOB_ENSURE_PENDING && s
            && strcmp(s->comet, t->comet) == 0)
        {
            (void) job_ensure_send_one(m, s, t->ack_filter);
        }
    }

    job_ensure_ticket_free(t);
}


/* one call of m to session s: as op 19, or plainly (ack_filter) */
static int
job_ensure_send_one(job_ensure_msg_t *m, job_ensure_session_t *s,
    int32_t ack_filter)
{
    size_t                  off, len;
    uint8_t                *body;
    job_comet_t            *cm;
    job_ensure_ticket_t    *t;

    cm = job_comets_find(s->comet);

    if (cm == NULL) {
        /* a comet job does not know yet: after the next comet list */
        t = calloc(1, sizeof(job_ensure_ticket_t));
        if (t == NULL) {
            return -1;
        }

        t->mid = m->mid;
        t->ack_filter = ack_filter;
        memcpy(t->id, m->id, sizeof(m->id));
        t->key = strdup(s->key);
        t->comet = strdup(s->comet);
        if (t->key == NULL || t->comet == NULL) {
            job_ensure_ticket_free(t);
            return -1;
        }

        t->wait.ready = job_ensure_comet_ready;
        job_comets_wait(&t->wait);

        return 0;
    }

    off = ack_filter == GOIM__PUSH_MSG_REQ__ACK_FILTER__ACKING ? 0 : m->plain;
    len = m->len - off;

    body = malloc(len);
    t = calloc(1, sizeof(job_ensure_ticket_t));
    if (body == NULL || t == NULL) {
        free(body);
        free(t);
        return -1;
    }

    memcpy(body, m->packet + off, len);

    t->mid = m->mid;
    t->key = strdup(s->key);
    t->comet = strdup(s->comet);
    if (t->key == NULL || t->comet == NULL) {
        goto failed;
    }

    if (job_send_keys(cm, s->key, m->op, ack_filter, body, len,
                      job_ensure_sent, t)
        != 0)
    {
        goto failed;
    }

    return 0;

failed:

    free(body);
    job_ensure_ticket_free(t);

    return -1;
}


/* m to every session (only) of its mailbox; 1 if any call went */
static int
job_ensure_send(job_ensure_msg_t *m, job_ensure_session_t *only, int first)
{
    int                     sent;
    goim_queue_t           *q;
    job_ensure_session_t   *s;

    sent = 0;

    for (q = goim_queue_head(&m->mb->sessions); q != &m->mb->sessions;
         q = q->next)
    {
        s = goim_queue_data(q, job_ensure_session_t, queue);

        if ((only && s != only) || !job_ensure_for_key(m, s->key)) {
            continue;
        }

        if (job_ensure_send_one(m, s,
                                GOIM__PUSH_MSG_REQ__ACK_FILTER__ACKING)
            == 0)
        {
            sent = 1;
            job.stats.ensure_sends++;
        }

        /* goim's clients get it once, as any push, when it is pushed */
        if (first
            && job_ensure_send_one(m, s,
                                GOIM__PUSH_MSG_REQ__ACK_FILTER__NOT_ACKING)
               == 0)
        {
            job.stats.ensure_plain++;
        }
    }

    if (sent) {
        m->attempts++;
    }

    return sent;
}


static void
job_ensure_due(job_ensure_msg_t *m)
{
    m->due_at = uv_now(job.loop) + (uint64_t) job.conf->ensure_retry;

    goim_queue_remove(&m->due);
    goim_queue_insert_tail(&job_due, &m->due);

    if (!uv_is_active((uv_handle_t *) &job_ensure_timer)) {
        uv_timer_start(&job_ensure_timer, job_ensure_tick,
                       (uint64_t) job.conf->ensure_retry, 0);
    }
}


static void
job_receipt_free(job_ensure_msg_t *m)
{
    size_t  i;

    (void) goim_hash_remove(&job_receipts, &m->hnode, m->hv);

    for (i = 0; i < m->nkeys; i++) {
        free(m->keys[i]);
    }

    free(m->keys);
    free(m->acked_key);
    free(m->packet);
    free(m);
}


/* the oldest finished receipts past receipts_max or receipt_ttl go */
static void
job_receipts_trim(void)
{
    int64_t            old;
    job_ensure_msg_t  *m;

    old = job_ensure_now_ms() - job.conf->receipt_ttl * 1000;

    while (!goim_queue_empty(&job_finished)) {
        m = goim_queue_data(goim_queue_head(&job_finished), job_ensure_msg_t,
                            link);

        if (job_nfinished <= (size_t) job.conf->receipts_max
            && m->done_ms > old)
        {
            break;
        }

        goim_queue_remove(&m->link);
        job_nfinished--;
        job_receipt_free(m);
    }
}


static void
job_receipt_fill(Goim__Receipt *rc, const job_ensure_msg_t *m)
{
    goim__receipt__init(rc);
    rc->id = (char *) m->id;
    rc->mid = m->mid;
    rc->state = (Goim__Receipt__State) m->state;
    rc->key = m->acked_key ? m->acked_key : "";
    rc->time_ms = m->done_ms;
    rc->reason = (char *) (m->reason ? m->reason : "");
    rc->seq = m->seq;
    rc->attempts = (int32_t) m->attempts;
    rc->created_ms = m->created_ms;
}


/*
 * A finished message's record lets go of the commit point, once its
 * receipt record is written when there is a receipts topic; a message
 * job gives up as it stops holds it (the next job takes it again).
 */
static void
job_ensure_release(job_ensure_msg_t *m, int stopping)
{
    job_off_t      *off;
    Goim__Receipt   rc;

    off = m->off;
    m->off = NULL;

    if (stopping) {
        if (off) {
            job_off_abandon(off);
        }

        return;
    }

    if (job_kafka_receipts()) {
        job_receipt_fill(&rc, m);

        if (job_kafka_receipt(&rc, off) == 0) {
            return;                     /* off is done once it is written */
        }
    }

    if (off) {
        job_off_done(off);
    }
}


/* m leaves its mailbox for the finished receipts */
static void
job_ensure_finish(job_ensure_msg_t *m, unsigned state, const char *key,
    const char *reason)
{
    job_mailbox_t  *mb;

    mb = m->mb;

    goim_queue_remove(&m->link);
    goim_queue_remove(&m->due);
    mb->nmsgs--;
    job_pending--;
    m->mb = NULL;

    m->state = state;
    m->reason = reason;
    m->done_ms = job_ensure_now_ms();
    m->acked_key = key ? strdup(key) : NULL;

    /* the packet is not needed any more: the receipt is */
    free(m->packet);
    m->packet = NULL;

    job_ensure_release(m, job_ensure_ready == 2);

    goim_queue_insert_tail(&job_finished, &m->link);
    job_nfinished++;

    if (mb->nmsgs == 0) {
        job_mailbox_free(mb);
    }

    job_receipts_trim();
}


static void
job_ensure_expire(job_ensure_msg_t *m, const char *reason)
{
    if (strcmp(reason, "ttl") == 0) {
        job.stats.ensure_expired_ttl++;

    } else {
        job.stats.ensure_expired_retries++;
    }

    goim_log_info("ensure: message %s to mid %lld expired (%s) after %u "
                  "sends", m->id, (long long) m->mid, reason, m->attempts);

    job_ensure_finish(m, JOB_ENSURE_EXPIRED, NULL, reason);
}


static void
job_ensure_tick(uv_timer_t *t)
{
    int64_t            now_ms;
    uint64_t           now;
    goim_queue_t       moved;
    job_ensure_msg_t  *m;

    (void) t;

    now = uv_now(job.loop);
    now_ms = job_ensure_now_ms();
    goim_queue_init(&moved);

    while (!goim_queue_empty(&job_due)) {
        m = goim_queue_data(goim_queue_head(&job_due), job_ensure_msg_t,
                            due);

        if (m->due_at > now) {
            break;
        }

        goim_queue_remove(&m->due);

        if (now_ms >= m->expire_ms) {
            job_ensure_expire(m, "ttl");
            continue;
        }

        if (!goim_queue_empty(&m->mb->sessions)) {
            if (m->attempts >= (unsigned) job.conf->ensure_retries) {
                job_ensure_expire(m, "retries");
                continue;
            }

            if (job_ensure_send(m, NULL, 0)) {
                job.stats.ensure_resends++;
            }
        }

        /* after the loop: what is put back is due ensure_retry from now */
        goim_queue_insert_tail(&moved, &m->due);
    }

    while (!goim_queue_empty(&moved)) {
        m = goim_queue_data(goim_queue_head(&moved), job_ensure_msg_t, due);
        job_ensure_due(m);
    }

    job_receipts_trim();

    if (!goim_queue_empty(&job_due)) {
        m = goim_queue_data(goim_queue_head(&job_due), job_ensure_msg_t,
                            due);
        uv_timer_start(&job_ensure_timer, job_ensure_tick,
                       m->due_at > now ? m->due_at - now : 0, 0);
    }
}


/*
 * r's ENSURE records are well formed and fit, all of them: 0, or why not:
 * -1 malformed, -2 full
 */
static int
job_ensure_fits(const Goim__JobPushReq *req, char *why, size_t len)
{
    size_t          i, n;
    job_mailbox_t  *mb;
    Goim__PushMsg  *m;

    for (n = 0, i = 0; i < req->n_msgs; i++) {
        m = req->msgs[i];

        if (m->type != GOIM__PUSH_MSG__TYPE__ENSURE) {
            continue;
        }

        n++;

        if (m->id == NULL || m->id[0] == '\0'
            || strlen(m->id) > JOB_ENSURE_ID_MAX)
        {
            snprintf(why, len, "an ENSURE record needs an id of 1 .. %d "
                     "bytes", JOB_ENSURE_ID_MAX);
            return -1;
        }

        mb = job_mailbox_find(m->mid);

        if (mb && mb->nmsgs >= (size_t) job.conf->ensure_mailbox_max) {
            snprintf(why, len, "mid %lld has %zu ensure messages pending "
                     "(ensure_mailbox_max)", (long long) m->mid, mb->nmsgs);
            return -2;
        }
    }

    if (job_pending + n > (size_t) job.conf->ensure_max) {
        snprintf(why, len, "%zu ensure messages pending (ensure_max %lld)",
                 job_pending, (long long) job.conf->ensure_max);
        return -2;
    }

    return 0;
}


/*
 * takes one ENSURE record: kept, sent to the sessions logic found; off
 * (its Kafka record, or NULL) is the message's from now on, seq is its
 * position in the log (0: the next JOB_PUSH seq)
 */
static int
job_ensure_take(const Goim__PushMsg *rec, job_off_t *off, uint64_t seq)
{
    size_t                 i, n, len;
    uint8_t               *p;
    job_mailbox_t         *mb;
    job_ensure_msg_t      *m;
    const Goim__Session   *s;

    mb = job_mailbox_get(rec->mid);
    if (mb == NULL) {
        return -1;
    }

    m = calloc(1, sizeof(job_ensure_msg_t));
    if (m == NULL) {
        goto failed;
    }

    n = strlen(rec->id);
    memcpy(m->id, rec->id, n + 1);
    m->hv = goim_hash_str(m->id);
    m->mid = rec->mid;
    m->seq = seq ? seq : ++job_seq;
    m->op = rec->operation;
    m->created_ms = job_ensure_now_ms();
    m->expire_ms = rec->expire_ms;
    goim_queue_init(&m->due);

    /* op 19's body: seq, the id's length and the id, the plain packet */
    m->plain = GOIM_HEADER_LEN + 8 + 1 + n;
    len = m->plain + GOIM_HEADER_LEN + rec->msg.len;
    m->len = len;

    m->packet = malloc(len);
    if (m->packet == NULL) {
        goto failed;
    }

    goim_packet_write(m->packet + m->plain, GOIM_PUSH_VERSION,
                      rec->operation, 0, rec->msg.data, rec->msg.len);

    p = m->packet + GOIM_HEADER_LEN;
    goim_put_be32(p, (uint32_t) (m->seq >> 32));
    goim_put_be32(p + 4, (uint32_t) m->seq);
    p[8] = (uint8_t) n;
    memcpy(p + 9, m->id, n);

    goim_header_write(m->packet, len - GOIM_HEADER_LEN, GOIM_PUSH_VERSION,
                      GOIM_OP_ENSURE, 0);

    if (rec->n_keys) {
        m->keys = calloc(rec->n_keys, sizeof(char *));
        if (m->keys == NULL) {
            goto failed;
        }

        for (i = 0; i < rec->n_keys; i++) {
            m->keys[i] = strdup(rec->keys[i]);
            if (m->keys[i] == NULL) {
                goto failed;
            }

            m->nkeys++;
        }
    }

    for (i = 0; i < rec->n_sessions; i++) {
        s = rec->sessions[i];

        if (s->key && s->key[0] && s->server && s->server[0]) {
            (void) job_session_add(mb, s->key, s->server);
        }
    }

    m->mb = mb;
    m->off = off;
    goim_queue_insert_tail(&mb->msgs, &m->link);
    mb->nmsgs++;
    job_pending++;
    goim_hash_insert(&job_receipts, &m->hnode, m->hv);
    job.stats.ensure_msgs++;

    job_ensure_due(m);

    if (m->created_ms >= m->expire_ms) {
        job_ensure_expire(m, "ttl");
        return 0;
    }

    (void) job_ensure_send(m, NULL, 1);

    return 0;

failed:

    if (m) {
        for (i = 0; i < m->nkeys; i++) {
            free(m->keys[i]);
        }

        free(m->keys);
        free(m->packet);
        free(m);
    }

    if (mb->nmsgs == 0) {
        job_mailbox_free(mb);
    }

    return -1;
}


/* a connection acknowledges from now on: what its mid has pending */
void
job_ensure_online(const Goim__PushMsg *rec)
{
    goim_queue_t          *q;
    job_mailbox_t         *mb;
    job_ensure_msg_t      *m;
    job_ensure_session_t  *s;

    job.stats.ensure_online++;

    if (rec->n_keys == 0 || rec->server == NULL || rec->server[0] == '\0') {
        return;
    }

    mb = job_mailbox_find(rec->mid);
    if (mb == NULL) {
        return;                         /* nothing pending */
    }

    s = job_session_add(mb, rec->keys[0], rec->server);
    if (s == NULL) {
        goim_log_error("ensure: out of memory");
        return;
    }

    for (q = goim_queue_head(&mb->msgs); q != &mb->msgs; q = q->next) {
        m = goim_queue_data(q, job_ensure_msg_t, link);

        if (job_ensure_send(m, s, 0)) {
            job_ensure_due(m);
        }
    }
}


static job_ensure_msg_t *
job_receipt_find(const char *id, int64_t mid)
{
    goim_hnode_t      *n;
    job_ensure_msg_t  *m;

    for (n = goim_hash_chain(&job_receipts, goim_hash_str(id)); n;
         n = n->next)
    {
        m = (job_ensure_msg_t *) n;

        if (m->mid == mid && strcmp(m->id, id) == 0) {
            return m;
        }
    }

    return NULL;
}


void
job_ensure_ack(const Goim__PushMsg *rec)
{
    size_t             i;
    job_ensure_msg_t  *m;

    for (i = 0; i < rec->n_ids; i++) {
        m = job_receipt_find(rec->ids[i], rec->mid);

        if (m == NULL || m->state != JOB_ENSURE_PENDING) {
            job.stats.ensure_acks_unknown++;
            continue;
        }

        job.stats.ensure_acked++;
        job_ensure_finish(m, JOB_ENSURE_DELIVERED,
                          rec->n_keys ? rec->keys[0] : "", NULL);
    }
}


int
job_ensure_push(goim_rpc_req_t *r)
{
    size_t              i;
    Goim__PushMsg      *m;
    Goim__JobPushReq   *req;
    char                why[160];

    req = (Goim__JobPushReq *) r->msg;

    for (i = 0; i < req->n_msgs; i++) {
        m = req->msgs[i];

        if (m->type >= GOIM__PUSH_MSG__TYPE__ENSURE
            && m->type <= GOIM__PUSH_MSG__TYPE__ACK)
        {
            break;
        }
    }

    if (i == req->n_msgs) {
        return 0;                       /* none of ours */
    }

    if (job.draining) {
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAVAILABLE,
                             "job is stopping");
        return 1;
    }

    switch (job_ensure_fits(req, why, sizeof(why))) {

    case 0:
        break;

    case -1:
        job.stats.ensure_refused++;
        goim_log_warn("ensure: bad record: %s", why);
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_BAD_REQUEST, why);
        return 1;

    default:
        job.stats.ensure_refused++;
        goim_log_warn("ensure: refused: %s", why);
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_UNAVAILABLE, why);
        return 1;
    }

    for (i = 0; i < req->n_msgs; i++) {
        m = req->msgs[i];

        switch (m->type) {

        case GOIM__PUSH_MSG__TYPE__ENSURE:
            if (job_ensure_take(m, NULL, 0) != 0) {
                goim_log_error("ensure: out of memory");
                goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                                     "out of memory");
                return 1;
            }

            break;

        case GOIM__PUSH_MSG__TYPE__ONLINE:
            job_ensure_online(m);
            break;

        case GOIM__PUSH_MSG__TYPE__ACK:
            job_ensure_ack(m);
            break;

        default:
            job.stats.dropped++;
            goim_log_warn("ensure: dropped a record of type %d sent with "
                          "ensure records", (int) m->type);
            break;
        }
    }

    {
        Goim__JobPushReply  reply = GOIM__JOB_PUSH_REPLY__INIT;

        goim_rpc_reply(r, &reply.base);
    }

    return 1;
}


void
job_ensure_receipts(goim_rpc_req_t *r)
{
    size_t               n, i;
    goim_hnode_t        *hn;
    Goim__Receipt       *rcs, **ptrs;
    job_ensure_msg_t    *m;
    Goim__ReceiptsReq   *req;
    Goim__ReceiptsReply  reply = GOIM__RECEIPTS_REPLY__INIT;

    req = (Goim__ReceiptsReq *) r->msg;

    if (req->id == NULL || req->id[0] == '\0') {
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_BAD_REQUEST,
                             "Receipts needs an id");
        return;
    }

    n = 0;

    for (hn = goim_hash_chain(&job_receipts, goim_hash_str(req->id)); hn;
         hn = hn->next)
    {
        m = (job_ensure_msg_t *) hn;
        n += strcmp(m->id, req->id) == 0;
    }

    if (n == 0) {
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_NOT_FOUND,
                             "no such ensure message");
        return;
    }

    rcs = calloc(n, sizeof(Goim__Receipt) + sizeof(Goim__Receipt *));
    if (rcs == NULL) {
        goim_rpc_reply_error(r, GOIM__ERROR_CODE__ERROR_INTERNAL,
                             "out of memory");
        return;
    }

    ptrs = (Goim__Receipt **) (rcs + n);
    i = 0;

    for (hn = goim_hash_chain(&job_receipts, goim_hash_str(req->id)); hn;
         hn = hn->next)
    {
        m = (job_ensure_msg_t *) hn;

        if (strcmp(m->id, req->id) != 0) {
            continue;
        }

        job_receipt_fill(&rcs[i], m);
        ptrs[i] = &rcs[i];
        i++;
    }

    reply.receipts = ptrs;
    reply.n_receipts = n;

    goim_rpc_reply(r, &reply.base);

    free(rcs);
}


/*
 * A record of mid fits (with slack: resumes only below 3/4 of the
 * bounds, so that a replay takes more than one).
 */
int
job_ensure_room(int64_t mid, int slack)
{
    size_t          max, mbmax;
    job_mailbox_t  *mb;

    max = (size_t) job.conf->ensure_max;
    mbmax = (size_t) job.conf->ensure_mailbox_max;

    if (slack) {
        max -= max / 4;
        mbmax -= mbmax / 4;
    }

    if (job_pending >= max) {
        return 0;
    }

    mb = job_mailbox_find(mid);

    return mb == NULL || mb->nmsgs < mbmax;
}


/*
 * An ENSURE record from Kafka seen before (a replay, a rebalance, a
 * producer's retry): 1, and off is taken care of (the pending message's
 * record from now on, or done), or 0.
 */
int
job_ensure_known(const Goim__PushMsg *rec, job_off_t *off)
{
    job_ensure_msg_t  *m;

    if (rec->id == NULL || rec->id[0] == '\0') {
        return 0;
    }

    m = job_receipt_find(rec->id, rec->mid);
    if (m == NULL) {
        return 0;
    }

    job.stats.ensure_known++;

    if (off == NULL) {
        return 1;
    }

    if (m->state == JOB_ENSURE_PENDING
        && (m->off == NULL || m->off->part == NULL))
    {
        /* its record was revoked and came back: it holds it again */
        if (m->off) {
            job_off_done(m->off);       /* detached: freed */
        }

        m->off = off;
        return 1;
    }

    job_off_done(off);

    return 1;
}


/*
 * An ENSURE record from Kafka, which fits (job_ensure_room): 0, or -1
 * when it is malformed or memory ran out (off is the caller's then).
 */
int
job_ensure_take_record(const Goim__PushMsg *rec, job_off_t *off,
    int32_t partition, int64_t offset)
{
    if (rec->id == NULL || rec->id[0] == '\0'
        || strlen(rec->id) > JOB_ENSURE_ID_MAX)
    {
        job.stats.ensure_refused++;
        goim_log_warn("ensure: skipping the ENSURE record at %d/%lld: it "
                      "needs an id of 1 .. %d bytes", (int) partition,
                      (long long) offset, JOB_ENSURE_ID_MAX);
        return -1;
    }

    if (job_ensure_take(rec, off, JOB_ENSURE_SEQ(partition, offset)) != 0) {
        goim_log_error("ensure: out of memory");
        return -1;
    }

    return 0;
}


size_t
job_ensure_pending(void)
{
    return job_pending;
}


size_t
job_ensure_mailboxes(void)
{
    return job_mailboxes.count;
}


size_t
job_ensure_finished(void)
{
    return job_nfinished;
}


/* what is pending is lost with job (README.md): freed, counted */
void
job_ensure_stop(void)
{
    job_ensure_msg_t  *m;

    if (!job_ensure_ready) {
        return;
    }

    if (job_pending) {
        if (job.conf->kafka_brokers[0] != '\0') {
            goim_log_info("stop: %zu ensure messages pending (those from "
                          "Kafka stay uncommitted: the next job takes "
                          "them again)", job_pending);

        } else {
            goim_log_warn("stop: %zu ensure messages pending are lost "
                          "(job keeps them in memory)", job_pending);
        }
    }

    job_ensure_ready = 2;               /* stopping: nothing released */

    while (!goim_queue_empty(&job_due)) {
        m = goim_queue_data(goim_queue_head(&job_due), job_ensure_msg_t,
                            due);
        job_ensure_finish(m, JOB_ENSURE_EXPIRED, NULL, "stopped");
    }

    while (!goim_queue_empty(&job_finished)) {
        m = goim_queue_data(goim_queue_head(&job_finished), job_ensure_msg_t,
                            link);
        goim_queue_remove(&m->link);
        job_receipt_free(m);
    }

    job_nfinished = 0;
    job_ensure_ready = 0;

    uv_close((uv_handle_t *) &job_ensure_timer, NULL);
    goim_hash_free(&job_mailboxes);
    goim_hash_free(&job_receipts);
}
