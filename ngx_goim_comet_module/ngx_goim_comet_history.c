
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


/*
 * Room recovery (not in goim; docs/protocol.md "Room positions"): job
 * numbers every room message and broadcast in its stream (EPOCH:SEQ,
 * the room's name, or "" for the broadcasts), and each worker keeps the
 * recent ones of every stream it is sent, members or not, so that a client
 * that comes back to any worker can be given what it missed since the
 * position it names, or be told that it cannot.
 *
 * Every worker receives every room message and broadcast (the relay
 * passes them on to all), so its history needs no shared memory and no
 * lock, and what it holds, the history and what it delivered live, can
 * never disagree: a client resumed from it within one event misses
 * nothing and gets nothing twice.
 *
 * An entry is one message as it came (a batch of inner packets, held by
 * reference: no copy); a stream holds its entries' packets in one run of
 * consecutive positions.  A message that does not follow the run (a new
 * epoch, a gap: something was lost on the way) starts a new one.  Bounds:
 * goim_comet_room_history packets per stream, goim_comet_room_history_ttl
 * of age, goim_comet_room_history_size bytes per worker (the oldest entry
 * of any stream goes first, then the least recent empty streams).
 */


typedef struct {
    ngx_str_node_t             node;          /* name, in history->streams */
    ngx_queue_t                entries;
    ngx_queue_t                lru;           /* by last message */
    uint64_t                   epoch;
    uint64_t                   first;         /* oldest packet held */
    uint64_t                   last;          /* newest seen */
    ngx_uint_t                 count;         /* packets held */
    ngx_msec_t                 updated;
} ngx_goim_comet_stream_t;

typedef struct {
    ngx_queue_t                queue;         /* in its stream's */
    ngx_queue_t                all;           /* in history->entries */
    ngx_goim_comet_stream_t   *stream;
    ngx_goim_comet_msg_t      *msg;           /* a reference */
    u_char                    *pos;           /* the first packet held */
    u_char                    *last;
    uint64_t                   seq;           /* pos's position */
    ngx_uint_t                 count;
    ngx_msec_t                 time;
    size_t                     shared;        /* its op-20 copy, made for
                                                 resumes, counted here */
} ngx_goim_comet_entry_t;


#define NGX_GOIM_COMET_POS_LEN  (1 + 8 + 8)   /* kind, epoch, seq */


static ngx_goim_comet_stream_t *ngx_goim_comet_history_stream(
    ngx_goim_comet_worker_t *wk, ngx_str_t *name, ngx_uint_t create);
static void ngx_goim_comet_history_trim(ngx_goim_comet_worker_t *wk);
static void ngx_goim_comet_entry_free(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_entry_t *e);
static void ngx_goim_comet_stream_free(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_stream_t *st);
static ngx_uint_t ngx_goim_comet_history_packets(u_char *p, u_char *last);
static u_char *ngx_goim_comet_position_write(u_char *p, ngx_uint_t kind,
    uint64_t epoch, uint64_t seq, u_char *pkt, size_t len);
static size_t ngx_goim_comet_entry_copy(ngx_goim_comet_entry_t *e,
    uint64_t seq, ngx_uint_t kind, ngx_goim_opset_t *accepts, u_char *out,
    ngx_uint_t *n, ngx_uint_t *all);
static void ngx_goim_comet_msg_inner(ngx_goim_comet_msg_t *msg, u_char **p,
    u_char **last);


void
ngx_goim_comet_history_init(ngx_goim_comet_worker_t *wk)
{
    ngx_goim_comet_history_t  *h;

    h = &wk->history;

    ngx_rbtree_init(&h->streams, &h->sentinel, ngx_str_rbtree_insert_value);
    ngx_queue_init(&h->entries);
    ngx_queue_init(&h->lru);
    h->bytes = 0;
}


/* the inner packets of an OpRaw message: [p, last) */

static void
ngx_goim_comet_msg_inner(ngx_goim_comet_msg_t *msg, u_char **p, u_char **last)
{
    *p = msg->data + (msg->raw ? GOIM_HEADER_LEN : 0);
    *last = msg->data + msg->len;
}


static ngx_uint_t
ngx_goim_comet_history_packets(u_char *p, u_char *last)
{
    size_t      len;
    ngx_uint_t  n;

    for (n = 0; p < last; n++) {
        len = goim_packet_len(p, last);
        if (len == 0) {
            break;
        }

        p += len;
    }

    return n;
}


/* a message of a stream came: it joins the stream's history */

void
ngx_goim_comet_history_add(ngx_goim_comet_worker_t *wk, ngx_str_t *name,
    ngx_goim_comet_msg_t *msg)
{
    u_char                   *p, *last;
    ngx_uint_t                n;
    ngx_goim_comet_entry_t   *e;
    ngx_goim_comet_stream_t  *st;

    if (wk->conf->history == 0 || msg->epoch == 0 || !msg->raw) {
        return;
    }

    ngx_goim_comet_msg_inner(msg, &p, &last);

    n = ngx_goim_comet_history_packets(p, last);
    if (n == 0) {
        return;
    }

    st = ngx_goim_comet_history_stream(wk, name, 1);
    if (st == NULL) {
        wk->stats->history_dropped += n;
        return;
    }

    if (st->epoch == msg->epoch && msg->seq <= st->last) {
        /* sent twice (a retried call): held already */
        return;
    }

    if (st->epoch != msg->epoch || msg->seq != st->last + 1) {
        /* a new epoch, or a gap: the run held so far ends here */
        if (st->epoch && st->count) {
            wk->stats->history_breaks++;
        }

        while (!ngx_queue_empty(&st->entries)) {
            ngx_goim_comet_entry_free(wk, ngx_queue_data(
                                      ngx_queue_head(&st->entries),
                                      ngx_goim_comet_entry_t, queue));
        }

        st->epoch = msg->epoch;
    }

    st->last = msg->seq + n - 1;
    st->updated = ngx_current_msec;

    ngx_queue_remove(&st->lru);
    ngx_queue_insert_tail(&wk->history.lru, &st->lru);

    e = ngx_alloc(sizeof(ngx_goim_comet_entry_t), ngx_cycle->log);
    if (e == NULL) {
        /* the run is broken: a resume from before it is refused */
        wk->stats->history_dropped += n;

        while (!ngx_queue_empty(&st->entries)) {
            ngx_goim_comet_entry_free(wk, ngx_queue_data(
                                      ngx_queue_head(&st->entries),
                                      ngx_goim_comet_entry_t, queue));
        }

        st->first = st->last + 1;
        return;
    }

    if (ngx_queue_empty(&st->entries)) {
        st->first = msg->seq;
    }

    msg->refs++;

    e->stream = st;
    e->msg = msg;
    e->pos = p;
    e->last = last;
    e->seq = msg->seq;
    e->count = n;
    e->time = ngx_current_msec;
    e->shared = 0;

    ngx_queue_insert_tail(&st->entries, &e->queue);
    ngx_queue_insert_tail(&wk->history.entries, &e->all);
    st->count += n;

    wk->history.bytes += sizeof(ngx_goim_comet_entry_t) + msg->len;
    wk->stats->history_msgs += n;

    /* goim_comet_room_history: the oldest packets of this stream go */

    while (st->count > wk->conf->history) {
        e = ngx_queue_data(ngx_queue_head(&st->entries),
                           ngx_goim_comet_entry_t, queue);

        if (st->count - e->count >= wk->conf->history) {
            ngx_goim_comet_entry_free(wk, e);
            continue;
        }

        /* part of the oldest entry: its first packets */
        while (st->count > wk->conf->history) {
            e->pos += goim_packet_len(e->pos, e->last);
            e->seq++;
            e->count--;
            st->count--;
            st->first++;
        }
    }

    ngx_goim_comet_history_trim(wk);
}


/* the age and size bounds, over every stream */

static void
ngx_goim_comet_history_trim(ngx_goim_comet_worker_t *wk)
{
    ngx_queue_t               *q;
    ngx_goim_comet_entry_t    *e;
    ngx_goim_comet_stream_t   *st;
    ngx_goim_comet_history_t  *h;

    h = &wk->history;

    while (!ngx_queue_empty(&h->entries)) {
        e = ngx_queue_data(ngx_queue_head(&h->entries),
                           ngx_goim_comet_entry_t, all);

        if (h->bytes > wk->conf->history_size) {
            wk->stats->history_evicted += e->count;

        } else if (ngx_current_msec - e->time < wk->conf->history_ttl) {
            break;
        }

        ngx_goim_comet_entry_free(wk, e);
    }

    /* streams whose last message is older than the age bound, or too many */

    while (!ngx_queue_empty(&h->lru)) {
        q = ngx_queue_head(&h->lru);
        st = ngx_queue_data(q, ngx_goim_comet_stream_t, lru);

        if (!ngx_queue_empty(&st->entries)
            || (h->bytes <= wk->conf->history_size
                && ngx_current_msec - st->updated < wk->conf->history_ttl))
        {
            break;
        }

        ngx_goim_comet_stream_free(wk, st);
    }

    wk->stats->history_bytes = h->bytes;
    wk->stats->history_streams = h->nstreams;
}


static void
ngx_goim_comet_entry_free(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_entry_t *e)
{
    ngx_goim_comet_stream_t  *st;

    st = e->stream;

    ngx_queue_remove(&e->queue);
    ngx_queue_remove(&e->all);
    st->count -= e->count;
    st->first = e->seq + e->count;

    wk->history.bytes -= sizeof(ngx_goim_comet_entry_t) + e->msg->len
                         + e->shared;

    ngx_goim_comet_msg_release(e->msg);
    ngx_free(e);
}


static ngx_goim_comet_stream_t *
ngx_goim_comet_history_stream(ngx_goim_comet_worker_t *wk, ngx_str_t *name,
    ngx_uint_t create)
{
    uint32_t                  hash;
    ngx_goim_comet_stream_t  *st;

    hash = ngx_crc32_long(name->data, name->len);

    st = (ngx_goim_comet_stream_t *) ngx_str_rbtree_lookup(
                                         &wk->history.streams, name, hash);

    if (st || !create) {
        return st;
    }

    st = ngx_calloc(sizeof(ngx_goim_comet_stream_t) + name->len + 1,
                    ngx_cycle->log);
    if (st == NULL) {
        return NULL;
    }

    st->node.str.data = (u_char *) (st + 1);
    st->node.str.len = name->len;
    ngx_memcpy(st->node.str.data, name->data, name->len);
    st->node.node.key = hash;

    ngx_queue_init(&st->entries);
    ngx_queue_insert_tail(&wk->history.lru, &st->lru);
    ngx_rbtree_insert(&wk->history.streams, &st->node.node);

    wk->history.bytes += sizeof(ngx_goim_comet_stream_t) + name->len;
    wk->history.nstreams++;

    return st;
}


static void
ngx_goim_comet_stream_free(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_stream_t *st)
{
    while (!ngx_queue_empty(&st->entries)) {
        ngx_goim_comet_entry_free(wk, ngx_queue_data(
                                  ngx_queue_head(&st->entries),
                                  ngx_goim_comet_entry_t, queue));
    }

    ngx_queue_remove(&st->lru);
    ngx_rbtree_delete(&wk->history.streams, &st->node.node);

    wk->history.bytes -= sizeof(ngx_goim_comet_stream_t) + st->node.str.len;
    wk->history.nstreams--;

    ngx_free(st);
}


void
ngx_goim_comet_history_free(ngx_goim_comet_worker_t *wk)
{
    ngx_goim_comet_history_t  *h;

    h = &wk->history;

    if (h->lru.next == NULL) {
        return;                         /* never initialized */
    }

    while (!ngx_queue_empty(&h->lru)) {
        ngx_goim_comet_stream_free(wk, ngx_queue_data(ngx_queue_head(&h->lru),
                                   ngx_goim_comet_stream_t, lru));
    }

    wk->stats->history_bytes = 0;
    wk->stats->history_streams = 0;
}


/*
 * op 20 for each inner packet: what clients that asked for positions get
 * instead of the plain batch, made once per message and worker, and kept
 * with it for every such recipient.
 */

static u_char *
ngx_goim_comet_position_write(u_char *p, ngx_uint_t kind, uint64_t epoch,
    uint64_t seq, u_char *pkt, size_t len)
{
    u_char  body[NGX_GOIM_COMET_POS_LEN];

    body[0] = (u_char) kind;
    goim_put_be32(body + 1, (uint32_t) (epoch >> 32));
    goim_put_be32(body + 5, (uint32_t) epoch);
    goim_put_be32(body + 9, (uint32_t) (seq >> 32));
    goim_put_be32(body + 13, (uint32_t) seq);

    goim_header_write(p, sizeof(body) + len, GOIM_PUSH_VERSION,
                      GOIM_OP_POSITION, 0);

    p = ngx_cpymem(p + GOIM_HEADER_LEN, body, sizeof(body));

    return ngx_cpymem(p, pkt, len);
}


ngx_goim_comet_msg_t *
ngx_goim_comet_msg_positioned(ngx_goim_comet_msg_t *msg, ngx_uint_t kind)
{
    u_char                *p, *last, *w;
    size_t                 len;
    uint64_t               seq;
    ngx_uint_t             n;
    ngx_goim_comet_msg_t  *pm;

    if (msg->positioned) {
        return msg->positioned;
    }

    if (msg->epoch == 0 || !msg->raw) {
        return msg;
    }

    ngx_goim_comet_msg_inner(msg, &p, &last);

    n = ngx_goim_comet_history_packets(p, last);

    pm = ngx_goim_comet_msg_create(GOIM_HEADER_LEN
                                   + n * (GOIM_HEADER_LEN
                                          + NGX_GOIM_COMET_POS_LEN)
                                   + (last - p), ngx_cycle->log);
    if (pm == NULL) {
        /* without its position rather than not at all */
        return msg;
    }

    pm->raw = 1;
    w = pm->data + GOIM_HEADER_LEN;

    for (seq = msg->seq; n; n--, seq++) {
        len = goim_packet_len(p, last);
        w = ngx_goim_comet_position_write(w, kind, msg->epoch, seq, p, len);
        p += len;
    }

    pm->len = w - pm->data;
    goim_header_write(pm->data, pm->len - GOIM_HEADER_LEN, GOIM_PUSH_VERSION,
                      GOIM_OP_RAW, 0);

    msg->positioned = pm;

    return pm;
}


/*
 * The packets of entry e after seq that a client accepting accepts takes
 * (a broadcast only if it accepts its operation), as op 20s in one OpRaw
 * batch written at out (NULL: only counted): its size; *n the packets,
 * *all whether that is every packet e holds.
 */

static size_t
ngx_goim_comet_entry_copy(ngx_goim_comet_entry_t *e, uint64_t seq,
    ngx_uint_t kind, ngx_goim_opset_t *accepts, u_char *out, ngx_uint_t *n,
    ngx_uint_t *all)
{
    u_char    *p, *w;
    size_t     size, len;
    int32_t    op;
    uint64_t   s;

    size = GOIM_HEADER_LEN;
    w = out ? out + GOIM_HEADER_LEN : NULL;
    *n = 0;
    *all = 1;

    for (p = e->pos, s = e->seq; p < e->last; p += len, s++) {
        len = goim_packet_len(p, e->last);
        if (len == 0) {
            break;
        }

        if (s <= seq) {
            *all = 0;
            continue;
        }

        if (kind == NGX_GOIM_COMET_STREAM_ALL) {
            op = (int32_t) goim_get_be32(p + 8);

            if (!ngx_goim_opset_has(accepts, op)) {
                *all = 0;
                continue;
            }
        }

        size += GOIM_HEADER_LEN + NGX_GOIM_COMET_POS_LEN + len;
        (*n)++;

        if (w) {
            w = ngx_goim_comet_position_write(w, kind, e->stream->epoch, s, p,
                                              len);
        }
    }

    if (out) {
        goim_header_write(out, size - GOIM_HEADER_LEN, GOIM_PUSH_VERSION,
                          GOIM_OP_RAW, 0);
    }

    return size;
}


/*
 * What a client gets of entry e: the op-20 copy of the whole batch, made
 * once and shared by every client that resumes from before it (10,000
 * clients back at once cost one copy, counted in the history's size), or
 * a copy of its own of the part it takes.  NULL: out of memory.
 */

static ngx_goim_comet_msg_t *
ngx_goim_comet_entry_replay(ngx_goim_comet_worker_t *wk,
    ngx_goim_comet_entry_t *e, uint64_t seq, ngx_uint_t kind,
    ngx_goim_opset_t *accepts, ngx_uint_t *n)
{
    u_char                *inner, *last;
    size_t                 size;
    ngx_uint_t             all;
    ngx_goim_comet_msg_t  *pm;

    size = ngx_goim_comet_entry_copy(e, seq, kind, accepts, NULL, n, &all);

    if (*n == 0) {
        return NULL;
    }

    ngx_goim_comet_msg_inner(e->msg, &inner, &last);

    if (all && e->pos == inner) {
        if (e->msg->positioned == NULL) {
            pm = ngx_goim_comet_msg_positioned(e->msg, kind);
            if (pm == e->msg) {
                return NULL;            /* out of memory */
            }

            e->shared = pm->len;
            wk->history.bytes += e->shared;
        }

        e->msg->positioned->refs++;
        return e->msg->positioned;
    }

    pm = ngx_goim_comet_msg_create(size, ngx_cycle->log);
    if (pm == NULL) {
        return NULL;
    }

    pm->raw = 1;
    (void) ngx_goim_comet_entry_copy(e, seq, kind, accepts, pm->data, n, &all);

    return pm;
}


/*
 * A client names the last position it saw in a stream: what this worker
 * holds after it, as op 20 packets in one OpRaw message queued on ch (a
 * broadcast only if ch accepts its operation), and the answer: *pos_epoch
 * and *pos_seq the stream's position now (0 unknown), NGX_OK recovered
 * (*missed packets sent), NGX_DECLINED the gap cannot be recovered,
 * NGX_ERROR out of memory.  epoch 0: nothing was asked, nothing sent.
 */

ngx_int_t
ngx_goim_comet_history_recover(ngx_goim_channel_t *ch, ngx_str_t *name,
    ngx_uint_t kind, uint64_t epoch, uint64_t seq, uint64_t *pos_epoch,
    uint64_t *pos_seq, ngx_uint_t *missed)
{
    ngx_int_t                 rc;
    ngx_uint_t                n, k;
    ngx_queue_t              *q;
    ngx_goim_comet_msg_t     *pm;
    ngx_goim_comet_entry_t   *e;
    ngx_goim_comet_stream_t  *st;
    ngx_goim_comet_worker_t  *wk;

    wk = ch->worker;
    *missed = 0;
    *pos_epoch = 0;
    *pos_seq = 0;

    if (wk->conf->history == 0) {
        return NGX_DECLINED;
    }

    ngx_goim_comet_history_trim(wk);

    st = ngx_goim_comet_history_stream(wk, name, 0);

    if (st) {
        *pos_epoch = st->epoch;
        *pos_seq = st->last;
    }

    if (epoch == 0 || st == NULL || st->epoch != epoch) {
        return NGX_DECLINED;
    }

    if (seq >= st->last) {
        /* nothing since (or this worker is behind the one it came from) */
        return NGX_OK;
    }

    if (st->count == 0 || seq + 1 < st->first) {
        return NGX_DECLINED;
    }

    /* the entries after seq, in order, each as one message on the queue */

    n = 0;

    for (q = ngx_queue_head(&st->entries);
         q != ngx_queue_sentinel(&st->entries);
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_goim_comet_entry_t, queue);

        if (e->seq + e->count <= seq + 1) {
            continue;                   /* all of it seen */
        }

        pm = ngx_goim_comet_entry_replay(wk, e, seq, kind, &ch->accepts, &k);
        if (pm == NULL) {
            if (k == 0) {
                continue;               /* nothing it takes */
            }

            return NGX_ERROR;
        }

        /* past the queue's bound: it is what the client asked for */
        rc = ngx_goim_comet_output_enqueue(ch, pm, NGX_GOIM_COMET_OUT_REPLAY);

        ngx_goim_comet_msg_release(pm);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        n += k;
    }

    *missed = n;
    wk->stats->recovered_msgs += n;

    return NGX_OK;
}
