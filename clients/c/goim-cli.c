/*
 * goim-cli: a goim client for tests and benchmarks.
 *
 * Connects N clients to a comet over TCP or WebSocket (optionally from
 * several local source addresses), authenticates each with a token made
 * from a template, sends heartbeats, and prints or counts what arrives.
 * In latency mode pushes carry the sender's clock ("ts=<microseconds>"),
 * sent by goim-cli itself through logic's HTTP API (--push) or by anyone
 * else, and the summary reports p50/p99/max and deliveries per second.
 * With --ack it acknowledges ensure messages (ops 18 and 19) by id and
 * drops the resends it has seen; with --recover it takes room positions
 * (op 20), names the last ones on reconnect and reads the answer (op 21).
 * With --deflate it offers permessage-deflate and inflates what comes
 * compressed; the summary counts the bytes read off the sockets.  With
 * --sse it subscribes over Server-Sent Events instead (comet's
 * goim_comet_sse, the token in a header, or with --raw any EventSource
 * server such as nchan's): one GET, then events parsed as EventSource
 * does.
 *
 * One thread, one epoll loop, non-blocking sockets.  Whatever the server
 * sends is parsed defensively: bad input is counted, the connection is
 * closed, and the run goes on.  Options: clients/c/README.md.
 *
 * One file on purpose, though it is over 1,000 lines: the client is built
 * and copied alone to the machines a benchmark runs from (it needs only
 * libgoim's goim_packet.c, libcrypto and zlib), and its parts (options, the
 * loop, the three transports, the latency counters) share one client
 * struct and one loop that no other program uses.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "goim_packet.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ensure messages (docs/protocol.md): not in goim, so not in every libgoim */
#ifndef GOIM_OP_ACK
#define GOIM_OP_ACK             18
#endif
#ifndef GOIM_OP_ENSURE
#define GOIM_OP_ENSURE          19
#endif
#ifndef GOIM_OP_POSITION
#define GOIM_OP_POSITION        20      /* room recovery */
#define GOIM_OP_RECOVERY        21
#endif

#define CLI_READ_BUF        65536
#define CLI_MAX_PACKET      (16 * 1024 * 1024)
#define CLI_MAX_WS_HEADER   8192
#define CLI_MAX_SENDS       32
#define CLI_MAX_BINDS       256
#define CLI_HIST_BUCKETS    2560
#define CLI_AUTH_TIMEOUT    10.0
#define CLI_TICK_MS         50
#define CLI_ENSURE_ID_MAX   64
#define CLI_ENSURE_SEEN     4096    /* ids per generation: see ensure_seen() */
#define CLI_ACK_BODY_MAX    4096
/* an SSE event's bytes: a largest packet's body in base64, and its lines */
#define CLI_MAX_SSE_EVENT   (CLI_MAX_PACKET / 3 * 4 + 65536)
#define CLI_SSE_ANSWER_BODY 1024    /* of an error answer, to print */

enum { CONN_CLIENT = 1, CONN_PUSH };

enum {
    ST_IDLE = 0,        /* not connected; (re)connects at reconnect_at */
    ST_CONNECTING,
    ST_WS_HANDSHAKE,    /* the HTTP answer: WebSocket's 101, SSE's 200 */
    ST_AUTHING,
    ST_READY,
    ST_DONE             /* closed for good */
};

typedef struct {
    int32_t      op;
    char        *body;
} cli_send_t;

/* --sse: where a chunked answer's decoding is (Transfer-Encoding) */
enum {
    CHUNK_SIZE = 0,     /* hex digits */
    CHUNK_EXT,          /* ";name=value" up to the LF */
    CHUNK_DATA,
    CHUNK_DATA_CR,      /* the CRLF after the data */
    CHUNK_DATA_LF,
    CHUNK_LAST          /* the zero-size chunk came: the body is over */
};

/* --ack: ids seen, as 64-bit hashes in an open-addressed table (0: free) */
typedef struct {
    uint64_t    *hashes;
    unsigned     size;          /* slots, a power of two */
    unsigned     used;
} cli_idset_t;

/* --ack: an id to acknowledge once due */
typedef struct {
    double       due;
    uint8_t      len;
    uint8_t      id[CLI_ENSURE_ID_MAX];
} cli_ack_t;

typedef struct {
    int          kind;
    int          fd;
    int          state;
    unsigned     idx;
    int64_t      mid;
    int32_t      seq;
    double       next_hb;
    double       deadline;
    double       reconnect_at;
    unsigned     attempts;      /* connects since the last auth */
    unsigned     connects;      /* connects that succeeded */
    uint8_t     *pend;          /* unparsed input */
    size_t       pend_len;
    size_t       pend_cap;
    uint8_t     *wbuf;          /* unsent output */
    size_t       wlen;
    size_t       wcap;
    char         ws_accept[32];
    double       push_sent;     /* CONN_PUSH: when it was started */
    uint8_t     *seen;          /* --check-seq: room pushes seen (bits) */
    uint64_t     max_seen;
    cli_idset_t  ids;           /* --ack: ensure ids seen, kept across */
    cli_idset_t  ids_old;       /* reconnects: this generation and the last */
    cli_ack_t   *acks;          /* --ack: ids to acknowledge, in arrival */
    size_t       acks_head;     /* order, from acks_head to nacks */
    size_t       nacks;
    size_t       acks_cap;
    uint64_t     pos_epoch[2];  /* --recover: the last position seen, */
    uint64_t     pos_seq[2];    /* room [0] and broadcasts [1], kept across
                                   reconnects */
    unsigned     named[2];      /* named in the last auth */
    int          deflate;       /* permessage-deflate answered */
    unsigned     chunked:1;     /* --sse: the answer is chunked */
    unsigned     chunk_state:3;
    unsigned     chunk_digits:5;
    uint64_t     chunk_left;
    size_t       sse_scan;      /* pend's bytes known to hold no event end */
} cli_conn_t;

static struct {
    /* options */
    const char  *target;
    int          ws;
    int          raw;           /* --raw: a frame is a message, no goim */
    int          deflate;       /* --deflate: offer permessage-deflate */
    int          sse;           /* --sse: Server-Sent Events */
    const char  *path;
    unsigned     clients;
    const char  *token_tpl;
    const char  *key_tpl;
    const char  *room_tpl;
    unsigned     rooms;
    const char  *accepts;
    const char  *platform;
    int64_t      mid_first;
    int64_t      mid_last;      /* -1: no wrap */
    double       heartbeat;
    double       rate;
    double       duration;
    double       interval;
    int          print;
    int          reconnect;
    int          latency;
    uint64_t     expect;
    cli_send_t   sends[CLI_MAX_SENDS];
    unsigned     nsends;
    struct sockaddr_in binds[CLI_MAX_BINDS];
    unsigned     nbinds;
    const char  *push_url;
    double       push_rate;
    uint64_t     push_count;        /* --push-count: 0 no limit */
    const char  *push_body;
    int64_t      push_mid_first;    /* --push-mids A-B: &mids= per push */
    int64_t      push_mid_last;
    int          check_seq;
    int          expect_stay;   /* --expect-stay: -e says so, goes on */
    int          expected;
    int          ack;           /* --ack: acknowledge ensure messages */
    int          print_ensure;
    double       ack_delay;     /* seconds */
    int          recover;       /* --recover: room positions */
    int          print_recover;
    uint64_t     room_pos_epoch;    /* --room-pos: where every client's */
    uint64_t     room_pos_seq;      /* room stream starts (0: unknown) */

    /* resolved */
    struct sockaddr_storage addr;
    socklen_t    addrlen;
    char         host_header[300];
    struct sockaddr_storage push_addr;
    socklen_t    push_addrlen;
    char         push_host[300];
    char         push_path[2048];

    /* state */
    int          ep;
    cli_conn_t  *conns;
    cli_conn_t  *pushes;
    unsigned     npushes;
    unsigned     started;       /* clients started so far */
    double       t0;
    double       first_msg;
    double       last_msg;
    double       next_push;
    int          pushes_over;   /* the run is over: answers still count */
    double       next_report;
    uint8_t      rbuf[CLI_READ_BUF];

    /* counters */
    uint64_t     connected, authed, alive, closed_by_server, failed;
    uint64_t     auth_timeouts, reconnects;
    uint64_t     messages, message_bytes, hb_replies, replies, raw_frames;
    uint64_t     bad_packets, bad_frames, bad_handshakes, bad_timestamps;
    uint64_t     pushes_sent, pushes_ok, pushes_failed;
    uint64_t     ensures, ensure_dups, acks_sent;
    uint64_t     positioned, position_dups, recovered, recovery_gaps;
    uint64_t     report_messages;
    uint64_t     wire_bytes;    /* read off the client sockets */
    uint64_t     deflate_conns, deflate_frames, deflate_bytes, inflated_bytes;
    uint64_t     sse_events, sse_comments, bad_events;
    int          sse_answer_told;   /* a bad SSE answer said on stderr */
    uint8_t     *sse_data;      /* an event's data lines, joined */
    size_t       sse_data_cap;
    z_stream     inflate;       /* one for every connection: the server */
    int          inflate_ready; /* says server_no_context_takeover */
    uint8_t     *zbuf;
    size_t       zbuf_cap;
    int32_t      online;
    int          online_seen;
    uint64_t     hist[CLI_HIST_BUCKETS];
    uint64_t     lat_count;
    uint64_t     lat_max;
    uint64_t     ans_hist[CLI_HIST_BUCKETS];   /* --push: answer times */
    uint64_t     ans_count;
    uint64_t     ans_max;
} g;

static volatile sig_atomic_t  stop_signal;


static double
now_mono(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static uint64_t
now_real_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


static void
die(const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "goim-cli: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(2);
}


static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}


/* latency histogram: exact below 128 us, then 64 sub-buckets per power
 * of two (under 1.6% error) */

static unsigned
hist_index(uint64_t v)
{
    unsigned  msb, shift, idx;

    if (v < 128) {
        return (unsigned) v;
    }

    msb = 63 - (unsigned) __builtin_clzll(v);
    shift = msb - 6;
    idx = 128 + (shift - 1) * 64 + (unsigned) ((v >> shift) - 64);

    return idx < CLI_HIST_BUCKETS ? idx : CLI_HIST_BUCKETS - 1;
}


static uint64_t
hist_value(unsigned idx)
{
    unsigned  shift;
    uint64_t  m;

    if (idx < 128) {
        return idx;
    }

    shift = (idx - 128) / 64 + 1;
    m = (idx - 128) % 64 + 64;

    /* the middle of the bucket */
    return (m << shift) + ((1ULL << shift) >> 1);
}


static uint64_t
hist_percentile_of(const uint64_t *hist, uint64_t count, uint64_t max,
    double p)
{
    uint64_t  want, seen;
    unsigned  i;

    if (count == 0) {
        return 0;
    }

    want = (uint64_t) (p * (double) count + 0.999999);
    if (want == 0) {
        want = 1;
    }

    for (seen = 0, i = 0; i < CLI_HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= want) {
            return hist_value(i) < max ? hist_value(i) : max;
        }
    }

    return max;
}


/* the deliveries' latency (-L) */
static uint64_t
hist_percentile(double p)
{
    return hist_percentile_of(g.hist, g.lat_count, g.lat_max, p);
}


/* "ts=<microseconds since the epoch>" at the start of a body */

static void
record_latency(const uint8_t *body, size_t len)
{
    uint64_t  ts, now;
    size_t    i;

    if (len < 4 || memcmp(body, "ts=", 3) != 0 || !isdigit(body[3])) {
        g.bad_timestamps++;
        return;
    }

    for (ts = 0, i = 3; i < len && i < 23 && isdigit(body[i]); i++) {
        ts = ts * 10 + (uint64_t) (body[i] - '0');
    }

    now = now_real_us();
    if (ts > now + 1000000 || now - ts > 3600ULL * 1000000) {
        g.bad_timestamps++;
        return;
    }

    now = now > ts ? now - ts : 0;

    g.hist[hist_index(now)]++;
    g.lat_count++;
    if (now > g.lat_max) {
        g.lat_max = now;
    }
}


/* output buffering */

static void
conn_queue(cli_conn_t *c, const void *data, size_t len)
{
    if (c->wlen + len > c->wcap) {
        c->wcap = (c->wlen + len) * 2;
        c->wbuf = xrealloc(c->wbuf, c->wcap);
    }

    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
}


static void
conn_events(cli_conn_t *c, uint32_t events)
{
    struct epoll_event  ev;

    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
}


/* returns -1 when the connection failed */
static int
conn_flush(cli_conn_t *c)
{
    ssize_t  n;

    while (c->wlen) {
        n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_events(c, EPOLLIN | EPOLLOUT);
                return 0;
            }
            return -1;
        }
        memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t) n);
        c->wlen -= (size_t) n;
    }

    conn_events(c, EPOLLIN);
    return 0;
}


/* one goim packet, in a masked binary frame on WebSocket */
static void
send_packet(cli_conn_t *c, int32_t op, const void *body, size_t len)
{
    uint8_t   hdr[GOIM_HEADER_LEN], fh[14], mask[4];
    uint8_t  *p;
    size_t    fl, total, i;

    goim_header_write(hdr, len, 1, op, ++c->seq);

    if (!g.ws) {
        conn_queue(c, hdr, sizeof(hdr));
        conn_queue(c, body, len);
        return;
    }

    total = GOIM_HEADER_LEN + len;
    fh[0] = 0x80 | 0x2;
    if (total < 126) {
        fh[1] = 0x80 | (uint8_t) total;
        fl = 2;
    } else if (total <= 0xffff) {
        fh[1] = 0x80 | 126;
        goim_put_be16(fh + 2, (uint16_t) total);
        fl = 4;
    } else {
        fh[1] = 0x80 | 127;
        goim_put_be32(fh + 2, 0);
        goim_put_be32(fh + 6, (uint32_t) total);
        fl = 10;
    }

    for (i = 0; i < 4; i++) {
        mask[i] = (uint8_t) rand();
        fh[fl + i] = mask[i];
    }
    fl += 4;

    conn_queue(c, fh, fl);
    conn_queue(c, hdr, sizeof(hdr));
    conn_queue(c, body, len);
    p = c->wbuf + c->wlen - total;

    for (i = 0; i < total; i++) {
        p[i] ^= mask[i % 4];
    }
}


static void
send_ws_control(cli_conn_t *c, unsigned opcode, const uint8_t *data,
    size_t len)
{
    uint8_t  fh[6 + 125];
    size_t   i;

    if (len > 125) {
        len = 125;
    }

    fh[0] = 0x80 | (uint8_t) opcode;
    fh[1] = 0x80 | (uint8_t) len;
    for (i = 0; i < 4; i++) {
        fh[2 + i] = (uint8_t) rand();
    }
    for (i = 0; i < len; i++) {
        fh[6 + i] = data[i] ^ fh[2 + i % 4];
    }

    conn_queue(c, fh, 6 + len);
}


/* token template: {mid} {key} {room} {accepts} {platform} {i} */

static void
expand(char *dst, size_t size, const char *tpl, cli_conn_t *c, int depth)
{
    char         sub[4096], num[32];
    const char  *val, *end;
    size_t       n, o;

    for (o = 0; *tpl && o + 1 < size; ) {
        val = NULL;

        if (*tpl == '{' && (end = strchr(tpl, '}')) != NULL) {
            n = (size_t) (end - tpl - 1);

            if (n == 3 && strncmp(tpl + 1, "mid", 3) == 0) {
                snprintf(num, sizeof(num), "%" PRId64, c->mid);
                val = num;
            } else if (n == 1 && tpl[1] == 'i') {
                snprintf(num, sizeof(num), "%u", c->idx);
                val = num;
            } else if (n == 1 && tpl[1] == 'r') {
                snprintf(num, sizeof(num), "%u", c->idx % g.rooms);
                val = num;
            } else if (depth == 0 && n == 3 && strncmp(tpl + 1, "key", 3) == 0)
            {
                expand(sub, sizeof(sub), g.key_tpl, c, 1);
                val = sub;
            } else if (depth == 0 && n == 4
                       && strncmp(tpl + 1, "room", 4) == 0)
            {
                expand(sub, sizeof(sub), g.room_tpl, c, 1);
                val = sub;
            } else if (n == 7 && strncmp(tpl + 1, "accepts", 7) == 0) {
                val = g.accepts;
            } else if (n == 8 && strncmp(tpl + 1, "platform", 8) == 0) {
                val = g.platform;
            }

            if (val) {
                while (*val && o + 1 < size) {
                    dst[o++] = *val++;
                }
                tpl = end + 1;
                continue;
            }
        }

        dst[o++] = *tpl++;
    }

    dst[o] = '\0';
}


/*
 * --recover: the token asks for positions and names the last ones seen:
 * inside goim's JSON token, or after a JWT as a JSON object of its own
 * (docs/protocol.md "Room positions")
 */
static void
recover_token(cli_conn_t *c, char *token, size_t size)
{
    int     i, n;
    char    opts[200], *end;
    size_t  len;

    static const char  *names[] = { "room_pos", "all_pos" };

    n = snprintf(opts, sizeof(opts), "\"recover\":true");

    for (i = 0; i < 2; i++) {
        c->named[i] = c->pos_epoch[i] != 0;

        if (c->pos_epoch[i]) {
            n += snprintf(opts + n, sizeof(opts) - (size_t) n,
                          ",\"%s\":\"%" PRIu64 ":%" PRIu64 "\"", names[i],
                          c->pos_epoch[i], c->pos_seq[i]);
        }
    }

    len = strlen(token);
    end = strrchr(token, '}');

    if (token[0] == '{' && end) {
        /* {..., "recover":true, ...} */
        if (len + (size_t) n + 2 < size) {
            snprintf(end, size - (size_t) (end - token), "%s%s}",
                     end > token + 1 ? "," : "", opts);
        }

    } else if (len + (size_t) n + 4 < size) {
        snprintf(token + len, size - len, " {%s}", opts);
    }
}


static void
send_auth(cli_conn_t *c)
{
    char  token[8192];

    expand(token, sizeof(token), g.token_tpl, c, 0);

    if (g.recover) {
        recover_token(c, token, sizeof(token));
    }

    send_packet(c, GOIM_OP_AUTH, token, strlen(token));
    c->state = ST_AUTHING;
    c->deadline = now_mono() + CLI_AUTH_TIMEOUT;
}


/*
 * the first 4096 bytes of data as printable ASCII, others as \xNN, into
 * out (4 * 4096 + 4 bytes); "..." follows when data was longer
 */
static void
print_escape(char *out, const uint8_t *data, size_t len)
{
    size_t   i, o, n;
    uint8_t  ch;

    n = len < 4096 ? len : 4096;

    for (i = 0, o = 0; i < n; i++) {
        ch = data[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            out[o++] = (char) ch;
        } else {
            o += (size_t) sprintf(out + o, "\\x%02x", ch);
        }
    }

    strcpy(out + o, n < len ? "..." : "");
}


static void
print_packet(cli_conn_t *c, const goim_packet_t *p)
{
    char  out[4 * 4096 + 4];

    print_escape(out, p->body, p->body_len);

    printf("client=%u op=%d seq=%d ver=%d body=%s\n", c->idx,
           p->header.op, p->header.seq, p->header.ver, out);
}


static void conn_close(cli_conn_t *c, int by_server);
static void check_seq(cli_conn_t *c, const uint8_t *body, size_t len);
static int handle_packet(cli_conn_t *c, const goim_packet_t *p);


/*
 * --ack: ensure messages (op 19) are acknowledged by id (op 18) and
 * dropped when their id was seen before, a resend.
 *
 * The ids a client slot saw are kept across its reconnects as FNV-1a
 * 64-bit hashes (two ids taken for one: odds about n^2 / 2^65, 10^-12 for
 * 8192 ids), in two generations of at most CLI_ENSURE_SEEN each: when the
 * current one is full it becomes the old one and the old one is
 * forgotten.  So the last 4096 ids at least, 8192 at most, are known, in
 * at most 128 KB per client (tables of 8192 slots), allocated as they
 * fill.
 */

static uint64_t
ensure_hash(const uint8_t *id, size_t len)
{
    uint64_t  h;
    size_t    i;

    h = 14695981039346656037ULL;

    for (i = 0; i < len; i++) {
        h = (h ^ id[i]) * 1099511628211ULL;
    }

    return h ? h : 1;
}


static int
idset_has(const cli_idset_t *s, uint64_t h)
{
    unsigned  i, mask;

    if (s->size == 0) {
        return 0;
    }

    mask = s->size - 1;

    for (i = (unsigned) h & mask; s->hashes[i]; i = (i + 1) & mask) {
        if (s->hashes[i] == h) {
            return 1;
        }
    }

    return 0;
}


/* h is not in s yet; the table stays at most half full */
static void
idset_add(cli_idset_t *s, uint64_t h)
{
    uint64_t  *old;
    unsigned   i, j, mask, size;

    if ((s->used + 1) * 2 > s->size) {
        old = s->hashes;
        size = s->size;

        s->size = size ? size * 2 : 64;
        s->hashes = calloc(s->size, sizeof(uint64_t));
        if (s->hashes == NULL) {
            die("out of memory");
        }

        mask = s->size - 1;

        for (j = 0; j < size; j++) {
            if (old[j]) {
                for (i = (unsigned) old[j] & mask; s->hashes[i];
                     i = (i + 1) & mask)
                {
                    /* void */
                }
                s->hashes[i] = old[j];
            }
        }

        free(old);
    }

    mask = s->size - 1;

    for (i = (unsigned) h & mask; s->hashes[i]; i = (i + 1) & mask) {
        /* void */
    }

    s->hashes[i] = h;
    s->used++;
}


/* 1 if the client saw id before; else it is remembered */
static int
ensure_seen(cli_conn_t *c, const uint8_t *id, size_t len)
{
    uint64_t  h;

    h = ensure_hash(id, len);

    if (idset_has(&c->ids, h) || idset_has(&c->ids_old, h)) {
        return 1;
    }

    if (c->ids.used == CLI_ENSURE_SEEN) {
        free(c->ids_old.hashes);
        c->ids_old = c->ids;
        memset(&c->ids, 0, sizeof(cli_idset_t));
    }

    idset_add(&c->ids, h);

    return 0;
}


static void
ack_queue(cli_conn_t *c, const uint8_t *id, size_t len, double due)
{
    cli_ack_t  *a;

    if (c->nacks == c->acks_cap && c->acks_head) {
        c->nacks -= c->acks_head;
        memmove(c->acks, c->acks + c->acks_head, c->nacks * sizeof(cli_ack_t));
        c->acks_head = 0;
    }

    if (c->nacks == c->acks_cap) {
        c->acks_cap = c->acks_cap ? c->acks_cap * 2 : 16;
        c->acks = xrealloc(c->acks, c->acks_cap * sizeof(cli_ack_t));
    }

    a = &c->acks[c->nacks++];
    a->due = due;
    a->len = (uint8_t) len;
    memcpy(a->id, id, len);
}


static void
ack_send(cli_conn_t *c, const uint8_t *body, size_t len)
{
    char  out[4 * CLI_ACK_BODY_MAX + 4];

    send_packet(c, GOIM_OP_ACK, body, len);

    if (g.print_ensure) {
        print_escape(out, body, len);
        printf("client=%u ack ids=%s\n", c->idx, out);
    }
}


/* the ids due by now, in op-18 bodies of at most CLI_ACK_BODY_MAX bytes */
static void
ack_flush(cli_conn_t *c, double now)
{
    uint8_t     body[CLI_ACK_BODY_MAX];
    cli_ack_t  *a;
    size_t      len;

    len = 0;

    while (c->acks_head < c->nacks) {
        a = &c->acks[c->acks_head];
        if (a->due > now) {
            break;
        }

        if (len && len + 1 + a->len > CLI_ACK_BODY_MAX) {
            ack_send(c, body, len);
            len = 0;
        }

        if (len) {
            body[len++] = ',';
        }

        memcpy(body + len, a->id, a->len);
        len += a->len;
        c->acks_head++;
        g.acks_sent++;
    }

    if (len) {
        ack_send(c, body, len);
    }

    if (c->acks_head == c->nacks) {
        c->acks_head = c->nacks = 0;
    }
}


static int
ack_due(cli_conn_t *c, double now)
{
    return c->acks_head < c->nacks && c->acks[c->acks_head].due <= now;
}


/*
 * op 19: seq (8 bytes) | n (1) | id (n, 1..64) | a whole packet, handed
 * on as a plain push unless the id was seen; returns -1 to close
 */
static int
handle_ensure(cli_conn_t *c, const goim_packet_t *p)
{
    const uint8_t  *id;
    goim_packet_t   in;
    const char     *why;
    goim_rc_t       rc;
    uint64_t        seq;
    size_t          n, i, used;
    char            id_out[4 * CLI_ENSURE_ID_MAX + 4], out[4 * 4096 + 4];
    int             dup;

    if (p->body_len < 9) {
        why = "shorter than its seq and id";
        goto bad;
    }

    n = p->body[8];
    id = p->body + 9;

    if (n == 0 || n > CLI_ENSURE_ID_MAX || p->body_len < 9 + n) {
        why = "bad id length";
        goto bad;
    }

    for (i = 0; i < n; i++) {
        if (id[i] < 0x20 || id[i] > 0x7e || id[i] == ',') {
            why = "id not printable ASCII, or with a comma";
            goto bad;
        }
    }

    rc = goim_packet_parse(id + n, p->body_len - 9 - n, CLI_MAX_PACKET, &in,
                           &used);
    if (rc != GOIM_OK) {
        why = goim_strerror(rc);
        goto bad;
    }

    if (used != p->body_len - 9 - n) {
        why = "bytes after the message";
        goto bad;
    }

    if (in.header.op == GOIM_OP_RAW || in.header.op == GOIM_OP_ENSURE) {
        why = "a batch or an ensure message inside";
        goto bad;
    }

    for (seq = 0, i = 0; i < 8; i++) {
        seq = (seq << 8) | p->body[i];
    }

    g.ensures++;
    ack_queue(c, id, n, now_mono() + g.ack_delay);
    dup = ensure_seen(c, id, n);

    if (g.print_ensure) {
        print_escape(id_out, id, n);
        print_escape(out, in.body, in.body_len);
        printf("client=%u ensure id=%s seq=%" PRIu64 " op=%d dup=%d "
               "body=%s\n", c->idx, id_out, seq, in.header.op, dup, out);
    }

    if (dup) {
        g.ensure_dups++;
        return 0;
    }

    return handle_packet(c, &in);

bad:

    if (g.print) {
        printf("client=%u bad ensure packet: %s\n", c->idx, why);
    }
    g.bad_packets++;
    return -1;
}


/*
 * op 20: kind (0 room, 1 broadcasts) | epoch (8) | seq (8) | a whole
 * packet, handed on as a plain push unless its position was seen already
 * (a client that came back to a worker behind the one it left); returns
 * -1 to close
 */
static int
handle_position(cli_conn_t *c, const goim_packet_t *p)
{
    unsigned        kind, i;
    uint64_t        epoch, seq;
    size_t          used;
    goim_packet_t   in;
    goim_rc_t       rc;
    const char     *why;
    char            out[4 * 4096 + 4];
    int             dup;

    if (p->body_len < 17) {
        why = "shorter than its position";
        goto bad;
    }

    kind = p->body[0];
    if (kind > 1) {
        why = "unknown stream";
        goto bad;
    }

    for (epoch = 0, seq = 0, i = 0; i < 8; i++) {
        epoch = (epoch << 8) | p->body[1 + i];
        seq = (seq << 8) | p->body[9 + i];
    }

    rc = goim_packet_parse(p->body + 17, p->body_len - 17, CLI_MAX_PACKET,
                           &in, &used);
    if (rc != GOIM_OK) {
        why = goim_strerror(rc);
        goto bad;
    }

    if (used != p->body_len - 17 || epoch == 0) {
        why = used != p->body_len - 17 ? "bytes after the message"
                                        : "epoch 0";
        goto bad;
    }

    if (in.header.op == GOIM_OP_RAW || in.header.op == GOIM_OP_POSITION) {
        why = "a batch or a position inside";
        goto bad;
    }

    dup = (epoch == c->pos_epoch[kind] && seq <= c->pos_seq[kind]);

    if (!dup) {
        c->pos_epoch[kind] = epoch;
        c->pos_seq[kind] = seq;
    }

    g.positioned++;

    if (g.print_recover) {
        print_escape(out, in.body, in.body_len);
        printf("client=%u pos stream=%s epoch=%" PRIu64 " seq=%" PRIu64
               " op=%d dup=%d body=%s\n", c->idx, kind ? "all" : "room",
               epoch, seq, in.header.op, dup, out);
    }

    if (dup) {
        g.position_dups++;
        return 0;
    }

    return handle_packet(c, &in);

bad:

    if (g.print) {
        printf("client=%u bad position packet: %s\n", c->idx, why);
    }
    g.bad_packets++;
    return -1;
}


/* a string field of op 21's flat JSON object: its value, or "" */
static void
recovery_field(const uint8_t *body, size_t len, const char *name, char *out,
    size_t size)
{
    char        key[32];
    const char *p, *last, *v;
    size_t      n, klen;

    out[0] = '\0';
    klen = (size_t) snprintf(key, sizeof(key), "\"%s\":", name);
    last = (const char *) body + len;

    for (p = (const char *) body; p + klen <= last; p++) {
        if (memcmp(p, key, klen) != 0) {
            continue;
        }

        v = p + klen;
        if (v < last && *v == '"') {
            v++;
        }

        for (n = 0; v + n < last && v[n] != '"' && v[n] != ',' && v[n] != '}'
                    && n + 1 < size; n++)
        {
            out[n] = v[n];
        }

        out[n] = '\0';
        return;
    }
}


/*
 * op 21: how a resume went, {"stream":..., "pos":"E:S", "recovered":...,
 * "missed":N}; the position goes on from "pos" either way (what could
 * not be recovered is for the application to reload)
 */
static void
handle_recovery(cli_conn_t *c, const goim_packet_t *p)
{
    char      stream[8], pos[48], recovered[8], missed[24];
    unsigned  kind;
    uint64_t  epoch, seq;

    recovery_field(p->body, p->body_len, "stream", stream, sizeof(stream));
    recovery_field(p->body, p->body_len, "pos", pos, sizeof(pos));
    recovery_field(p->body, p->body_len, "recovered", recovered,
                   sizeof(recovered));
    recovery_field(p->body, p->body_len, "missed", missed, sizeof(missed));

    kind = strcmp(stream, "all") == 0;

    if (sscanf(pos, "%" SCNu64 ":%" SCNu64, &epoch, &seq) == 2 && epoch) {
        c->pos_epoch[kind] = epoch;
        c->pos_seq[kind] = seq;
    }

    if (strcmp(recovered, "true") == 0) {
        g.recovered++;

    } else if (c->named[kind]) {
        /* a position named and not recovered: the app reloads */
        g.recovery_gaps++;
    }

    c->named[kind] = 0;

    if (g.print_recover) {
        printf("client=%u recovery stream=%s recovered=%d missed=%s pos=%s\n",
               c->idx, kind ? "all" : "room",
               strcmp(recovered, "true") == 0, missed[0] ? missed : "0", pos);
    }
}


/* --raw: a WebSocket message that is the pushed body itself (nchan) */
static void
handle_raw_message(const uint8_t *body, size_t len)
{
    g.messages++;
    g.message_bytes += len;
    g.last_msg = now_mono();
    if (g.first_msg == 0) {
        g.first_msg = g.last_msg;
    }

    if (g.latency) {
        record_latency(body, len);
    }
}


/* one goim packet from the server; returns -1 to close */
static int
handle_packet(cli_conn_t *c, const goim_packet_t *p)
{
    goim_packet_t  in;
    goim_rc_t      rc;
    size_t         off, used;
    unsigned       i;
    double         now;

    if (g.print && !g.sse && p->header.op != GOIM_OP_RAW
        && !(g.ack && p->header.op == GOIM_OP_ENSURE)
        && !(g.recover && (p->header.op == GOIM_OP_POSITION
                           || p->header.op == GOIM_OP_RECOVERY)))
    {
        print_packet(c, p);
    }

    switch (p->header.op) {

    case GOIM_OP_AUTH_REPLY:
        if (c->state != ST_AUTHING) {
            g.replies++;
            return 0;
        }
        c->state = ST_READY;
        c->attempts = 0;
        g.authed++;
        g.alive++;
        now = now_mono();
        c->next_hb = now + g.heartbeat;
        c->deadline = 0;
        if (g.sse) {
            /* the client sends nothing: comet renews the session itself */
            c->next_hb = 1e300;
            return 0;
        }
        if (g.ack) {
            /* the first op 18 declares that this connection acknowledges */
            send_packet(c, GOIM_OP_ACK, "", 0);
        }
        /* a first heartbeat at once, as goim's client.js does */
        send_packet(c, GOIM_OP_HEARTBEAT, "", 0);
        for (i = 0; i < g.nsends; i++) {
            send_packet(c, g.sends[i].op, g.sends[i].body,
                        strlen(g.sends[i].body));
        }
        return 0;

    case GOIM_OP_HEARTBEAT_REPLY:
        g.hb_replies++;
        if (p->body_len == 4) {
            g.online = (int32_t) goim_get_be32(p->body);
            g.online_seen = 1;
        }
        return 0;

    case GOIM_OP_RAW:
        g.raw_frames++;
        for (off = 0; off < p->body_len; off += used) {
            rc = goim_packet_parse(p->body + off, p->body_len - off,
                                   CLI_MAX_PACKET, &in, &used);
            if (rc != GOIM_OK) {
                if (g.print) {
                    printf("client=%u bad packet in a batch: %s\n", c->idx,
                           goim_strerror(rc));
                }
                g.bad_packets++;
                return -1;
            }
            if (in.header.op == GOIM_OP_RAW) {
                g.bad_packets++;
                return -1;
            }
            if (handle_packet(c, &in) != 0) {
                return -1;
            }
        }
        return 0;

    case GOIM_OP_CHANGE_ROOM_REPLY:
    case GOIM_OP_SUB_REPLY:
    case GOIM_OP_UNSUB_REPLY:
        g.replies++;
        return 0;
    }

    if (c->state != ST_READY) {
        /* nothing but op 8 is expected before the auth reply */
        g.bad_packets++;
        return -1;
    }

    if (g.ack && p->header.op == GOIM_OP_ENSURE) {
        return handle_ensure(c, p);
    }

    if (g.recover && p->header.op == GOIM_OP_POSITION) {
        return handle_position(c, p);
    }

    if (g.recover && p->header.op == GOIM_OP_RECOVERY) {
        handle_recovery(c, p);
        return 0;
    }

    if (p->header.seq != 0) {
        /* the echo of a packet we sent (goim acknowledges unknown ops) */
        g.replies++;
        return 0;
    }

    g.messages++;
    g.message_bytes += p->body_len;
    g.last_msg = now_mono();
    if (g.first_msg == 0) {
        g.first_msg = g.last_msg;
    }

    if (g.latency) {
        record_latency(p->body, p->body_len);
    }

    if (g.check_seq) {
        check_seq(c, p->body, p->body_len);
    }

    return 0;
}


/* goim packets back to back (TCP); returns bytes consumed or -1 */
static ssize_t
parse_tcp(cli_conn_t *c, const uint8_t *data, size_t len)
{
    goim_packet_t  p;
    goim_rc_t      rc;
    size_t         off, used;

    for (off = 0; off < len; off += used) {
        rc = goim_packet_parse(data + off, len - off, CLI_MAX_PACKET, &p,
                               &used);
        if (rc == GOIM_AGAIN) {
            break;
        }
        if (rc != GOIM_OK) {
            if (g.print) {
                printf("client=%u bad packet: %s\n", c->idx,
                       goim_strerror(rc));
            }
            g.bad_packets++;
            return -1;
        }
        if (handle_packet(c, &p) != 0) {
            return -1;
        }
        if (c->state == ST_DONE || c->state == ST_IDLE) {
            return -1;
        }
    }

    return (ssize_t) off;
}


static int
bad_frame(cli_conn_t *c, const char *why)
{
    if (g.print) {
        printf("client=%u bad WebSocket frame: %s\n", c->idx, why);
    }
    g.bad_frames++;
    return -1;
}


/*
 * A compressed message (RFC 7692) inflated into g.zbuf, each on its own:
 * the shared stream is reset first.  NULL: bad data or too large.
 */
static uint8_t *
inflate_message(const uint8_t *in, size_t len, size_t *out_len)
{
    static const uint8_t  tail[4] = { 0x00, 0x00, 0xff, 0xff };
    int                   rc, tailed;

    if (!g.inflate_ready) {
        if (inflateInit2(&g.inflate, -MAX_WBITS) != Z_OK) {
            die("inflateInit2() failed");
        }
        g.inflate_ready = 1;
    } else if (inflateReset(&g.inflate) != Z_OK) {
        return NULL;
    }

    if (g.zbuf == NULL) {
        g.zbuf_cap = 65536;
        g.zbuf = xrealloc(NULL, g.zbuf_cap);
    }

    g.inflate.next_in = (uint8_t *) in;
    g.inflate.avail_in = (uInt) len;
    g.inflate.next_out = g.zbuf;
    g.inflate.avail_out = (uInt) g.zbuf_cap;
    tailed = 0;

    for ( ;; ) {
        rc = inflate(&g.inflate, Z_SYNC_FLUSH);

        if (rc == Z_STREAM_END) {
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return NULL;
        }

        if (g.inflate.avail_out == 0) {
            size_t  used = g.zbuf_cap;

            if (g.zbuf_cap >= CLI_MAX_PACKET) {
                return NULL;
            }
            g.zbuf_cap *= 2;
            g.zbuf = xrealloc(g.zbuf, g.zbuf_cap);
            g.inflate.next_out = g.zbuf + used;
            g.inflate.avail_out = (uInt) (g.zbuf_cap - used);
            continue;
        }

        if (g.inflate.avail_in == 0) {
            if (tailed) {
                break;
            }
            g.inflate.next_in = (uint8_t *) tail;
            g.inflate.avail_in = sizeof(tail);
            tailed = 1;
            continue;
        }

        if (rc == Z_BUF_ERROR) {
            return NULL;
        }
    }

    *out_len = (size_t) (g.inflate.next_out - g.zbuf);
    return g.zbuf;
}


/* server WebSocket frames: unmasked, one goim packet per data frame */
static ssize_t
parse_ws(cli_conn_t *c, uint8_t *data, size_t len)
{
    goim_packet_t  p;
    goim_rc_t      rc;
    uint64_t       plen;
    size_t         off, hl, used, i, mlen;
    unsigned       opcode;
    uint8_t       *pl, *msg;

    for (off = 0; len - off >= 2; off += hl + (size_t) plen) {
        pl = data + off;

        if (pl[0] & 0x30) {
            return bad_frame(c, "reserved bits set");
        }
        if ((pl[0] & 0x40) && (!c->deflate || ((pl[0] & 0x0f) != 0x1
                                               && (pl[0] & 0x0f) != 0x2)))
        {
            return bad_frame(c, "RSV1 without permessage-deflate");
        }
        if (pl[1] & 0x80) {
            return bad_frame(c, "masked server frame");
        }

        opcode = pl[0] & 0x0f;
        plen = pl[1] & 0x7f;
        hl = 2;

        if (plen == 126) {
            if (len - off < 4) {
                break;
            }
            plen = goim_get_be16(pl + 2);
            hl = 4;
        } else if (plen == 127) {
            if (len - off < 10) {
                break;
            }
            for (plen = 0, i = 2; i < 10; i++) {
                plen = (plen << 8) | pl[i];
            }
            hl = 10;
        }

        if (plen > CLI_MAX_PACKET) {
            return bad_frame(c, "frame too large");
        }
        if (len - off - hl < plen) {
            break;
        }

        if (!(pl[0] & 0x80)) {
            return bad_frame(c, "fragmented frame");
        }

        switch (opcode) {

        case 0x1:
        case 0x2:
            msg = pl + hl;
            mlen = (size_t) plen;

            if (pl[0] & 0x40) {
                msg = inflate_message(pl + hl, (size_t) plen, &mlen);
                if (msg == NULL) {
                    return bad_frame(c, "bad compressed data");
                }
                g.deflate_frames++;
                g.deflate_bytes += plen;
                g.inflated_bytes += mlen;
            }

            if (g.raw) {
                handle_raw_message(msg, mlen);
                break;
            }

            rc = goim_packet_parse(msg, mlen, CLI_MAX_PACKET, &p, &used);
            if (rc != GOIM_OK || used != mlen) {
                if (g.print) {
                    printf("client=%u bad packet: %s\n", c->idx,
                           rc == GOIM_OK ? "packet length differs from "
                           "its frame length" : goim_strerror(rc));
                }
                g.bad_packets++;
                return -1;
            }
            if (handle_packet(c, &p) != 0) {
                return -1;
            }
            break;

        case 0x8:
            if (g.print) {
                printf("client=%u close frame %u\n", c->idx,
                       plen >= 2 ? goim_get_be16(pl + hl) : 1005);
            }
            send_ws_control(c, 0x8, pl + hl, plen >= 2 ? 2 : 0);
            conn_flush(c);
            return -1;

        case 0x9:
            send_ws_control(c, 0xa, pl + hl, (size_t) plen);
            break;

        case 0xa:
            break;

        default:
            return bad_frame(c, "unknown opcode");
        }

        if (c->state == ST_DONE || c->state == ST_IDLE) {
            return -1;
        }
    }

    return (ssize_t) off;
}


/* the 101 answer; returns bytes consumed, 0 for more, -1 on failure */
static ssize_t
parse_ws_handshake(cli_conn_t *c, const uint8_t *data, size_t len)
{
    const char  *end, *h;
    char         head[CLI_MAX_WS_HEADER + 1];
    size_t       n;

    end = memmem(data, len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (len > CLI_MAX_WS_HEADER) {
            goto bad;
        }
        return 0;
    }

    n = (size_t) (end - (const char *) data) + 4;
    if (n > CLI_MAX_WS_HEADER) {
        goto bad;
    }

    memcpy(head, data, n);
    head[n] = '\0';

    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        goto bad;
    }

    for (h = strstr(head, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
        if (g.deflate
            && strncasecmp(h + 2, "Sec-WebSocket-Extensions:", 25) == 0)
        {
            /* what we offered: the server answers it or says nothing */
            if (strncmp(h + 27 + strspn(h + 27, " \t"), "permessage-deflate",
                        18) != 0)
            {
                goto bad;
            }
            c->deflate = 1;
            g.deflate_conns++;
        }
    }

    for (h = strstr(head, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
        if (strncasecmp(h + 2, "Sec-WebSocket-Accept:", 21) == 0) {
            h += 23;
            while (*h == ' ' || *h == '\t') {
                h++;
            }
            if (strncmp(h, c->ws_accept, strlen(c->ws_accept)) == 0) {
                if (g.raw) {
                    /* no goim auth: subscribed once upgraded */
                    c->state = ST_READY;
                    c->attempts = 0;
                    c->deadline = 0;
                    c->next_hb = 1e300;
                    g.authed++;
                    g.alive++;
                    return (ssize_t) n;
                }

                send_auth(c);
                return (ssize_t) n;
            }
            break;
        }
    }

bad:

    if (g.print) {
        printf("client=%u bad WebSocket handshake answer\n", c->idx);
    }
    g.bad_handshakes++;
    return -1;
}


static void
ws_start(cli_conn_t *c)
{
    uint8_t        key[16], md[EVP_MAX_MD_SIZE];
    char           key64[32], buf[512];
    unsigned       i, mdlen;
    int            n;

    for (i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t) rand();
    }
    EVP_EncodeBlock((unsigned char *) key64, key, sizeof(key));

    n = snprintf(buf, sizeof(buf), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
                 key64);
    EVP_Digest(buf, (size_t) n, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *) c->ws_accept, md, (int) mdlen);

    n = snprintf(buf, sizeof(buf),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s\r\n",
                 g.path, g.host_header, key64,
                 g.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                             "client_max_window_bits\r\n" : "");
    c->deflate = 0;

    conn_queue(c, buf, (size_t) n);
    c->state = ST_WS_HANDSHAKE;
    c->deadline = now_mono() + CLI_AUTH_TIMEOUT;
}


/*
 * --sse: Server-Sent Events (docs/protocol.md, "SSE subscribers").  One
 * GET with the token in X-Goim-Token (none with --raw), a 200 of
 * text/event-stream, plain or chunked, then events as EventSource reads
 * them: lines end in LF, CRLF or CR; "field: value", one space after the
 * colon dropped; a line that starts with a colon is a comment; an empty
 * line ends an event, dispatched when it had data lines (joined with
 * LF).  In goim's mode an event's name is its packet's operation ("OP",
 * or "OP.b64" for a body in base64) and its data the body; with --raw
 * every event is a message, whatever its name (nchan's "data:" lines).
 */

static void
conn_pend_append(cli_conn_t *c, const uint8_t *data, size_t len)
{
    if (c->pend_len + len > c->pend_cap) {
        c->pend_cap = (c->pend_len + len) * 2;
        if (c->pend_cap < 4096) {
            c->pend_cap = 4096;
        }
        c->pend = xrealloc(c->pend, c->pend_cap);
    }

    memcpy(c->pend + c->pend_len, data, len);
    c->pend_len += len;
}


static void
sse_start(cli_conn_t *c)
{
    char  token[8192], req[8192 + 4096];
    int   n;

    token[0] = '\0';

    if (!g.raw) {
        expand(token, sizeof(token), g.token_tpl, c, 0);
        if (strpbrk(token, "\r\n") != NULL) {
            die("--sse sends the token in a header: it cannot hold CR or LF");
        }
    }

    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                 "Cache-Control: no-cache\r\n%s%s%s\r\n",
                 g.path, g.host_header, g.raw ? "" : "X-Goim-Token: ", token,
                 g.raw ? "" : "\r\n");
    if (n < 0 || (size_t) n >= sizeof(req)) {
        die("--sse: the request is over %zu bytes", sizeof(req));
    }

    c->chunked = 0;
    c->chunk_state = CHUNK_SIZE;
    c->chunk_digits = 0;
    c->chunk_left = 0;
    c->sse_scan = 0;

    conn_queue(c, req, (size_t) n);
    c->state = ST_WS_HANDSHAKE;
    c->deadline = now_mono() + CLI_AUTH_TIMEOUT;
}


/* an answer that opens no stream: its status line, and why or its body */
static void
sse_refused(cli_conn_t *c, const char *head, const char *why,
    const uint8_t *body, size_t len)
{
    char    line[4 * 200 + 4], msg[sizeof(line) + 4 * CLI_SSE_ANSWER_BODY + 8];
    size_t  n;

    static char  out[4 * CLI_SSE_ANSWER_BODY + 4];

    n = strcspn(head, "\r\n");
    print_escape(line, (const uint8_t *) head, n < 200 ? n : 200);

    if (why == NULL) {
        while (len && (body[len - 1] == '\n' || body[len - 1] == '\r')) {
            len--;
        }
        print_escape(out, body, len < CLI_SSE_ANSWER_BODY
                                ? len : CLI_SSE_ANSWER_BODY);
        why = out;
    }

    snprintf(msg, sizeof(msg), "%s%s%s", line[0] ? line : "(nothing)",
             why[0] ? ": " : "", why);

    g.bad_handshakes++;

    if (g.print) {
        printf("client=%u bad SSE answer: %s\n", c->idx, msg);

    } else if (!g.sse_answer_told) {
        /* the first one, so that a run of many clients says why */
        g.sse_answer_told = 1;
        fprintf(stderr, "goim-cli: client %u: bad SSE answer: %s\n", c->idx,
                msg);
    }
}


/*
 * The answer's head: a 200 of text/event-stream opens the stream; any
 * other answer is reported with its status line and the start of its
 * body (comet's JSON envelope), once the body came (Content-Length, at
 * most CLI_SSE_ANSWER_BODY bytes) or the server closed (eof).  Returns
 * the head's length, 0 for more, -1 when it was refused.
 */
static ssize_t
parse_sse_head(cli_conn_t *c, const uint8_t *data, size_t len, int eof)
{
    const char  *end, *h, *v;
    char         head[CLI_MAX_WS_HEADER + 1];
    size_t       n, body, want;
    long         status, clen;
    int          type;

    end = len ? memmem(data, len, "\r\n\r\n", 4) : NULL;

    if (end == NULL || (size_t) (end - (const char *) data) + 4
                       > CLI_MAX_WS_HEADER)
    {
        if (end == NULL && len <= CLI_MAX_WS_HEADER && !eof) {
            return 0;
        }

        n = len < CLI_MAX_WS_HEADER ? len : CLI_MAX_WS_HEADER;
        if (n) {
            memcpy(head, data, n);
        }
        head[n] = '\0';

        sse_refused(c, head, end == NULL && eof
                             ? "closed before the end of its head"
                             : "a head over 8192 bytes", NULL, 0);
        return -1;
    }

    n = (size_t) (end - (const char *) data) + 4;
    memcpy(head, data, n);
    head[n] = '\0';

    status = 0;
    if (strncmp(head, "HTTP/1.", 7) == 0 && head[8] == ' ') {
        status = strtol(head + 9, NULL, 10);
    }

    type = 0;
    clen = -1;
    c->chunked = 0;

    for (h = strstr(head, "\r\n"); h && h[2] != '\r'; h = strstr(h + 2, "\r\n"))
    {
        v = strchr(h + 2, ':');
        if (v == NULL) {
            continue;
        }
        v++;
        v += strspn(v, " \t");

        if (strncasecmp(h + 2, "Content-Type:", 13) == 0) {
            type = strncasecmp(v, "text/event-stream", 17) == 0
                   && strchr("; \t\r", v[17]) != NULL;

        } else if (strncasecmp(h + 2, "Transfer-Encoding:", 18) == 0) {
            c->chunked = strncasecmp(v, "chunked", 7) == 0;

        } else if (strncasecmp(h + 2, "Content-Length:", 15) == 0) {
            clen = strtol(v, NULL, 10);
        }
    }

    if (status == 200 && type) {
        return (ssize_t) n;
    }

    if (status == 200) {
        sse_refused(c, head, "not text/event-stream", NULL, 0);
        return -1;
    }

    body = len - n;
    want = clen < 0 || clen > CLI_SSE_ANSWER_BODY ? CLI_SSE_ANSWER_BODY
                                                  : (size_t) clen;
    if (body < want && !eof) {
        return 0;
    }

    sse_refused(c, head, NULL, data + n, body < want ? body : want);
    return -1;
}


/* the stream is open: goim's op 8 is awaited, or with --raw it is ready */
static void
sse_opened(cli_conn_t *c)
{
    if (!g.raw) {
        c->state = ST_AUTHING;
        c->deadline = now_mono() + CLI_AUTH_TIMEOUT;
        return;
    }

    c->state = ST_READY;
    c->attempts = 0;
    c->deadline = 0;
    c->next_hb = 1e300;
    g.authed++;
    g.alive++;
}


static int
sse_bad_event(cli_conn_t *c, const char *why)
{
    if (g.print) {
        printf("client=%u bad SSE event: %s\n", c->idx, why);
    }
    g.bad_events++;
    return -1;
}


/*
 * A chunked body decoded in place (RFC 9112 7.1): the chunks' data moved
 * to the front, sizes, extensions and CRLFs dropped; the state carries
 * over to the next read.  Returns the data's length, or -1.
 */
static ssize_t
sse_dechunk(cli_conn_t *c, uint8_t *p, size_t len)
{
    size_t   i, o, n;
    uint8_t  ch;
    int      d;

    for (i = 0, o = 0; i < len; /* void */) {

        switch (c->chunk_state) {

        case CHUNK_SIZE:
            ch = p[i++];
            d = isdigit(ch) ? ch - '0'
                : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'f'
                  ? (ch | 0x20) - 'a' + 10 : -1;

            if (d >= 0) {
                if (c->chunk_digits == 16) {
                    return -1;
                }
                c->chunk_left = c->chunk_left * 16 + (uint64_t) d;
                c->chunk_digits++;
                break;
            }

            if (c->chunk_digits == 0) {
                return -1;
            }

            if (ch == '\n') {
                c->chunk_digits = 0;
                c->chunk_state = c->chunk_left ? CHUNK_DATA : CHUNK_LAST;
                break;
            }

            if (ch != '\r' && ch != ';' && ch != ' ' && ch != '\t') {
                return -1;
            }

            c->chunk_state = CHUNK_EXT;
            break;

        case CHUNK_EXT:
            if (p[i++] == '\n') {
                c->chunk_digits = 0;
                c->chunk_state = c->chunk_left ? CHUNK_DATA : CHUNK_LAST;
            }
            break;

        case CHUNK_DATA:
            n = len - i;
            if (n > c->chunk_left) {
                n = (size_t) c->chunk_left;
            }
            memmove(p + o, p + i, n);
            o += n;
            i += n;
            c->chunk_left -= n;
            if (c->chunk_left == 0) {
                c->chunk_state = CHUNK_DATA_CR;
            }
            break;

        case CHUNK_DATA_CR:
            ch = p[i++];
            if (ch == '\r') {
                c->chunk_state = CHUNK_DATA_LF;
                break;
            }
            if (ch != '\n') {
                return -1;
            }
            c->chunk_state = CHUNK_SIZE;
            break;

        case CHUNK_DATA_LF:
            if (p[i++] != '\n') {
                return -1;
            }
            c->chunk_state = CHUNK_SIZE;
            break;

        default: /* CHUNK_LAST: trailers, then the server closes */
            i = len;
            break;
        }
    }

    return (ssize_t) o;
}


/* RFC 4648 base64 with its padding, decoded in place; -1 if it is not */
static ssize_t
sse_base64_decode(uint8_t *p, size_t len)
{
    size_t    i, o, pad;
    uint32_t  acc;
    unsigned  bits;
    uint8_t   ch;
    int       v;

    if (len % 4) {
        return -1;
    }

    for (i = 0, o = 0, acc = 0, bits = 0, pad = 0; i < len; i++) {
        ch = p[i];

        if (ch == '=') {
            if (i + 2 < len) {
                return -1;
            }
            pad++;
            continue;
        }

        if (pad) {
            return -1;
        }

        v = ch >= 'A' && ch <= 'Z' ? ch - 'A'
            : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
            : ch >= '0' && ch <= '9' ? ch - '0' + 52
            : ch == '+' ? 62 : ch == '/' ? 63 : -1;
        if (v < 0) {
            return -1;
        }

        acc = (acc << 6) | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            p[o++] = (uint8_t) (acc >> bits);
        }
    }

    return (ssize_t) o;
}


/* one event with data; returns -1 to close */
static int
sse_dispatch(cli_conn_t *c, const uint8_t *name, size_t nlen,
    const uint8_t *id, size_t idlen, uint8_t *data, size_t dlen)
{
    goim_packet_t  p;
    ssize_t        n;
    int64_t        op;
    size_t         i;
    int            b64;
    char           nout[4 * 64 + 4], idout[4 * 128 + 4];

    static char    out[4 * 4096 + 4];

    g.sse_events++;

    if (g.print) {
        print_escape(idout, id, idlen < 128 ? idlen : 128);
    }

    if (g.raw) {
        if (g.print) {
            print_escape(nout, name, nlen < 64 ? nlen : 64);
            print_escape(out, data, dlen);
            printf("client=%u event=%s id=%s body=%s\n", c->idx,
                   nlen ? nout : "message", idout, out);
        }

        handle_raw_message(data, dlen);
        return 0;
    }

    b64 = nlen > 4 && memcmp(name + nlen - 4, ".b64", 4) == 0;
    if (b64) {
        nlen -= 4;
    }

    for (op = 0, i = 0; i < nlen && i < 10 && isdigit(name[i]); i++) {
        op = op * 10 + (name[i] - '0');
    }

    if (nlen == 0 || i != nlen || op > INT32_MAX) {
        return sse_bad_event(c, "its name is not an operation");
    }

    if (b64) {
        n = sse_base64_decode(data, dlen);
        if (n < 0) {
            return sse_bad_event(c, "bad base64");
        }
        dlen = (size_t) n;
    }

    memset(&p, 0, sizeof(p));
    p.header.pack_len = (int32_t) (GOIM_HEADER_LEN + dlen);
    p.header.header_len = GOIM_HEADER_LEN;
    p.header.ver = 1;
    p.header.op = (int32_t) op;
    p.body = data;
    p.body_len = dlen;

    if (g.print) {
        print_escape(out, data, dlen);
        printf("client=%u op=%d id=%s body=%s\n", c->idx, p.header.op, idout,
               out);
    }

    return handle_packet(c, &p);
}


/* an event's lines (each with its end), up to the empty line */
static int
sse_event(cli_conn_t *c, uint8_t *block, size_t len)
{
    uint8_t  *p, *last, *eol, *next, *colon, *v, *name, *id, *data;
    size_t    nlen, idlen, dlen, flen, vlen, lines;

    name = id = data = NULL;
    nlen = idlen = dlen = lines = 0;
    last = block + len;

    for (p = block; p < last; p = next) {
        for (eol = p; eol < last && *eol != '\n' && *eol != '\r'; eol++) {
            /* void */
        }

        next = eol < last ? eol + 1 : last;
        if (next < last && *eol == '\r' && *next == '\n') {
            next++;
        }

        if (*p == ':') {
            g.sse_comments++;
            continue;
        }

        colon = memchr(p, ':', (size_t) (eol - p));
        flen = (size_t) ((colon ? colon : eol) - p);
        v = colon ? colon + 1 : eol;
        if (v < eol && *v == ' ') {
            v++;
        }
        vlen = (size_t) (eol - v);

        if (flen == 5 && memcmp(p, "event", 5) == 0) {
            name = v;
            nlen = vlen;

        } else if (flen == 4 && memcmp(p, "data", 4) == 0) {
            if (lines++ == 0) {
                /* the usual one line: left where it is */
                data = v;
                dlen = vlen;
                continue;
            }

            /* more lines: joined with LF in g.sse_data (at most len) */
            if (g.sse_data_cap < len) {
                g.sse_data_cap = len < 4096 ? 4096 : len;
                free(g.sse_data);
                g.sse_data = xrealloc(NULL, g.sse_data_cap);
            }
            if (lines == 2) {
                memcpy(g.sse_data, data, dlen);
                data = g.sse_data;
            }
            data[dlen++] = '\n';
            memcpy(data + dlen, v, vlen);
            dlen += vlen;

        } else if (flen == 2 && memcmp(p, "id", 2) == 0
                   && memchr(v, '\0', vlen) == NULL)
        {
            id = v;
            idlen = vlen;
        }

        /* "retry" and unknown fields: nothing to goim-cli */
    }

    if (lines == 0) {
        /* a comment (a ping), or an event without data: not dispatched */
        return 0;
    }

    return sse_dispatch(c, name, nlen, id, idlen, data, dlen);
}


/*
 * The complete events at the start of data, each up to its empty line,
 * parsed and dispatched; returns the bytes consumed (the rest is an event
 * still coming, bounded by CLI_MAX_SSE_EVENT), or -1 to close.  A CR at
 * the very end waits for the next byte: it may be the first half of a
 * CRLF.
 */
static ssize_t
parse_sse(cli_conn_t *c, uint8_t *data, size_t len)
{
    uint8_t  *lf, *cr, *eol;
    size_t    off, pos, next;

    off = 0;                /* where the event being read starts */
    pos = c->sse_scan;      /* the start of its first line not yet seen */

    while (pos < len) {
        lf = memchr(data + pos, '\n', len - pos);
        cr = memchr(data + pos, '\r', (size_t) ((lf ? lf : data + len)
                                                - (data + pos)));
        eol = cr ? cr : lf;

        if (eol == NULL || (eol == cr && eol + 1 == data + len)) {
            break;
        }

        next = (size_t) (eol - data) + 1;
        if (eol == cr && data[next] == '\n') {
            next++;
        }

        if ((size_t) (eol - data) == pos) {
            /* the empty line: the event is [off, pos) */
            if (pos > off && sse_event(c, data + off, pos - off) != 0) {
                return -1;
            }
            if (c->state == ST_DONE || c->state == ST_IDLE) {
                return -1;
            }
            off = next;
        }

        pos = next;
    }

    if (len - off > CLI_MAX_SSE_EVENT) {
        return sse_bad_event(c, "an event over its size limit");
    }

    c->sse_scan = pos - off;

    return (ssize_t) off;
}


/* bytes read off an SSE connection; returns -1 to close */
static int
sse_input(cli_conn_t *c, uint8_t *in, size_t n)
{
    uint8_t  *data;
    ssize_t   used;
    size_t    len;

    if (c->state == ST_WS_HANDSHAKE) {
        conn_pend_append(c, in, n);

        used = parse_sse_head(c, c->pend, c->pend_len, 0);
        if (used <= 0) {
            return (int) used;
        }

        sse_opened(c);

        /* what came after the head is the body's start */
        n = c->pend_len - (size_t) used;
        memmove(c->pend, c->pend + used, n);
        c->pend_len = 0;
        in = c->pend;
    }

    if (c->chunked) {
        used = sse_dechunk(c, in, n);
        if (used < 0) {
            return sse_bad_event(c, "bad chunked encoding");
        }
        n = (size_t) used;
    }

    if (c->pend_len) {
        conn_pend_append(c, in, n);
        data = c->pend;
        len = c->pend_len;

    } else {
        data = in;
        len = n;
    }

    used = parse_sse(c, data, len);
    if (used < 0) {
        return -1;
    }

    /* an event still coming waits in pend */
    len -= (size_t) used;

    if (data == c->pend) {
        memmove(c->pend, c->pend + used, len);

    } else if (len) {
        if (len > c->pend_cap) {
            c->pend_cap = len < 4096 ? 4096 : len * 2;
            c->pend = xrealloc(c->pend, c->pend_cap);
        }
        memcpy(c->pend, data + used, len);
    }

    c->pend_len = len;

    return 0;
}


static int
open_socket(const struct sockaddr_storage *sa, socklen_t salen,
    const struct sockaddr_in *bind_to, void *ptr)
{
    struct epoll_event  ev;
    int                 fd, one;

    fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }

    one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (bind_to) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (const struct sockaddr *) bind_to, sizeof(*bind_to)) < 0)
        {
            close(fd);
            return -1;
        }
    }

    if (connect(fd, (const struct sockaddr *) sa, salen) < 0
        && errno != EINPROGRESS)
    {
        close(fd);
        return -1;
    }

    ev.events = EPOLLOUT;
    ev.data.ptr = ptr;
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        return -1;
    }

    return fd;
}


static void
conn_start(cli_conn_t *c)
{
    const struct sockaddr_in  *b;

    b = g.nbinds ? &g.binds[c->idx % g.nbinds] : NULL;

    c->fd = open_socket(&g.addr, g.addrlen, b, c);
    c->seq = 0;
    c->pend_len = 0;
    c->wlen = 0;
    c->attempts++;

    if (c->fd < 0) {
        if (g.print || g.clients == 1) {
            fprintf(stderr, "goim-cli: client %u: connect: %s\n", c->idx,
                    strerror(errno));
        }
        g.failed++;
        conn_close(c, 0);
        return;
    }

    c->state = ST_CONNECTING;
    c->deadline = now_mono() + CLI_AUTH_TIMEOUT;
}


static void
conn_close(cli_conn_t *c, int by_server)
{
    double  delay;

    if (c->fd >= 0) {
        epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }

    if (c->state == ST_READY) {
        g.alive--;
        if (by_server) {
            g.closed_by_server++;
        }
        if (g.print) {
            printf("client=%u closed\n", c->idx);
        }
    } else if (c->state != ST_IDLE && c->state != ST_DONE) {
        g.failed++;
    }

    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_cap = 0;
    c->wlen = 0;

    /* the server resends what this connection did not acknowledge */
    c->acks_head = c->nacks = 0;

    if (!g.reconnect) {
        c->state = ST_DONE;
        return;
    }

    /* jittered exponential backoff: 0.5 s doubling up to 30 s, +-50% */
    delay = 0.5 * (double) (1u << (c->attempts < 7 ? c->attempts : 6));
    if (delay > 30) {
        delay = 30;
    }
    delay *= 0.5 + (double) rand() / RAND_MAX;

    c->state = ST_IDLE;
    c->reconnect_at = now_mono() + delay;
}


static void
client_read(cli_conn_t *c)
{
    ssize_t   n, used;
    uint8_t  *data;
    size_t    len;
    double    now;

    for ( ;; ) {
        n = recv(c->fd, g.rbuf, sizeof(g.rbuf), 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            conn_close(c, 1);
            return;
        }
        if (n == 0) {
            if (g.sse && c->state == ST_WS_HANDSHAKE) {
                /* an error answer without a length ends with the close */
                (void) parse_sse_head(c, c->pend, c->pend_len, 1);
            }
            conn_close(c, 1);
            return;
        }

        g.wire_bytes += (uint64_t) n;

        if (g.sse) {
            if (sse_input(c, g.rbuf, (size_t) n) != 0) {
                conn_close(c, c->state == ST_READY);
                return;
            }
            continue;
        }

        if (c->pend_len) {
            if (c->pend_len + (size_t) n > c->pend_cap) {
                c->pend_cap = (c->pend_len + (size_t) n) * 2;
                c->pend = xrealloc(c->pend, c->pend_cap);
            }
            memcpy(c->pend + c->pend_len, g.rbuf, (size_t) n);
            c->pend_len += (size_t) n;
            data = c->pend;
            len = c->pend_len;
        } else {
            data = g.rbuf;
            len = (size_t) n;
        }

        used = 0;

        if (c->state == ST_WS_HANDSHAKE) {
            used = parse_ws_handshake(c, data, len);
            if (used < 0) {
                conn_close(c, 0);
                return;
            }
        }

        if (c->state != ST_WS_HANDSHAKE && (size_t) used < len) {
            n = g.ws ? parse_ws(c, data + used, len - (size_t) used)
                     : parse_tcp(c, data + used, len - (size_t) used);
            if (n < 0) {
                conn_close(c, c->state == ST_READY);
                return;
            }
            used += n;
        }

        if (c->fd < 0) {
            return;
        }

        now = now_mono();
        if (ack_due(c, now)) {
            ack_flush(c, now);
        }

        len -= (size_t) used;
        if (data == c->pend) {
            memmove(c->pend, c->pend + used, len);
        } else if (len) {
            if (len > c->pend_cap) {
                c->pend_cap = len < 4096 ? 4096 : len;
                c->pend = xrealloc(c->pend, c->pend_cap);
            }
            memcpy(c->pend, data + used, len);
        }
        c->pend_len = len;

        if (c->wlen && conn_flush(c) != 0) {
            conn_close(c, 1);
            return;
        }
    }
}


static void
client_event(cli_conn_t *c, uint32_t events)
{
    int        err;
    socklen_t  len;

    if (c->state == ST_CONNECTING) {
        err = 0;
        len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            if (g.print || g.clients == 1) {
                fprintf(stderr, "goim-cli: client %u: connect: %s\n",
                        c->idx, strerror(err));
            }
            conn_close(c, 0);
            return;
        }
        g.connected++;
        if (c->connects++) {
            g.reconnects++;
        }
        if (g.sse) {
            sse_start(c);
        } else if (g.ws) {
            ws_start(c);
        } else {
            send_auth(c);
        }
        if (conn_flush(c) != 0) {
            conn_close(c, 0);
        }
        return;
    }

    if (events & EPOLLOUT) {
        if (conn_flush(c) != 0) {
            conn_close(c, 1);
            return;
        }
    }

    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        client_read(c);
    }
}


/* latency pushes through logic's HTTP API, one connection each */

/* --push-body with {n}, the push's number from 1, filled in */
static void
push_body_fill(char *out, size_t size, uint64_t n)
{
    const char  *b, *q;
    size_t       o;
    int          w;

    o = 0;

    for (b = g.push_body; *b && o + 1 < size; /* void */) {
        q = strstr(b, "{n}");
        if (q == b) {
            w = snprintf(out + o, size - o, "%" PRIu64, n);
            o += w > 0 ? (size_t) w : 0;
            b += 3;
            continue;
        }
        out[o++] = *b++;
    }

    out[o < size ? o : size - 1] = '\0';
}


/*
 * --check-seq: bodies carry " #r:N" (a room push, every client gets each
 * N) or " #m:N" (a push by mid, one client gets it): each N seen twice is
 * a duplicate, a room N below the client's highest one arrived out of
 * order; the distinct ones are counted against what the pushers sent.
 */

#define CLI_SEQ_ROOM_MAX  (64 * 1024)
#define CLI_SEQ_MID_MAX   (4 * 1024 * 1024)

static uint8_t   cli_seq_mids[CLI_SEQ_MID_MAX / 8];
static uint64_t  cli_seq_room_distinct, cli_seq_mid_distinct, cli_seq_dups,
                 cli_seq_reordered, cli_seq_bad;

static void
check_seq(cli_conn_t *c, const uint8_t *body, size_t len)
{
    size_t    i;
    uint64_t  n;
    uint8_t  *bits, tag;

    for (i = 0; i + 3 < len; i++) {
        if (body[i] == '#' && (body[i + 1] == 'r' || body[i + 1] == 'm')
            && body[i + 2] == ':')
        {
            break;
        }
    }

    if (i + 3 >= len) {
        return;
    }

    tag = body[i + 1];
    n = 0;

    for (i += 3; i < len && isdigit(body[i]); i++) {
        n = n * 10 + (uint64_t) (body[i] - '0');
    }

    if (tag == 'r') {
        if (n >= CLI_SEQ_ROOM_MAX) {
            cli_seq_bad++;
            return;
        }

        if (c->seen == NULL) {
            c->seen = calloc(CLI_SEQ_ROOM_MAX / 8, 1);
            if (c->seen == NULL) {
                cli_seq_bad++;
                return;
            }
        }

        bits = c->seen;

        if (n < c->max_seen) {
            cli_seq_reordered++;
        } else {
            c->max_seen = n;
        }

    } else {
        if (n >= CLI_SEQ_MID_MAX) {
            cli_seq_bad++;
            return;
        }

        bits = cli_seq_mids;
    }

    if (bits[n / 8] & (1u << (n % 8))) {
        cli_seq_dups++;
        return;
    }

    bits[n / 8] |= (uint8_t) (1u << (n % 8));

    if (tag == 'r') {
        cli_seq_room_distinct++;
    } else {
        cli_seq_mid_distinct++;
    }
}


static void
push_start(void)
{
    cli_conn_t  *c;
    char         req[4096 + 2048], body[2048], mids[64];
    unsigned     i;
    int          n, bl;

    for (i = 0; i < g.npushes; i++) {
        if (g.pushes[i].fd < 0) {
            break;
        }
    }
    if (i == g.npushes) {
        g.pushes_failed++;    /* too many outstanding */
        return;
    }

    c = &g.pushes[i];
    c->fd = open_socket(&g.push_addr, g.push_addrlen, NULL, c);
    if (c->fd < 0) {
        g.pushes_failed++;
        return;
    }

    bl = snprintf(body, sizeof(body), "ts=%" PRIu64, now_real_us());
    push_body_fill(body + bl, sizeof(body) - bl, g.pushes_sent + 1);
    bl = (int) strlen(body);

    mids[0] = '\0';
    if (g.push_mid_last >= g.push_mid_first && g.push_mid_first > 0) {
        snprintf(mids, sizeof(mids), "&mids=%" PRId64,
                 g.push_mid_first + (int64_t) (g.pushes_sent
                     % (uint64_t) (g.push_mid_last - g.push_mid_first + 1)));
    }

    n = snprintf(req, sizeof(req),
                 "POST %s%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n"
                 "Content-Type: text/plain\r\nConnection: close\r\n\r\n%s",
                 g.push_path, mids, g.push_host, bl, body);
    c->wlen = 0;
    c->pend_len = 0;
    conn_queue(c, req, (size_t) n);
    c->state = ST_CONNECTING;
    c->push_sent = now_mono();
    g.pushes_sent++;
}


static int
pushes_pending(void)
{
    unsigned  i;

    for (i = 0; i < g.npushes; i++) {
        if (g.pushes[i].fd >= 0) {
            return 1;
        }
    }

    return 0;
}


static void
push_done(cli_conn_t *c, int ok)
{
    uint64_t  us;

    epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = ST_IDLE;

    if (ok) {
        /* from the connect to the answer's end (HTTP/1.0: the close) */
        us = (uint64_t) ((now_mono() - c->push_sent) * 1e6);
        g.ans_hist[hist_index(us)]++;
        g.ans_count++;
        if (us > g.ans_max) {
            g.ans_max = us;
        }
        g.pushes_ok++;
    } else {
        g.pushes_failed++;
    }
}


static void
push_event(cli_conn_t *c, uint32_t events)
{
    ssize_t  n;
    int      ok;

    if (events & EPOLLOUT) {
        if (conn_flush(c) != 0) {
            push_done(c, 0);
            return;
        }
    }

    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }

    for ( ;; ) {
        n = recv(c->fd, g.rbuf, sizeof(g.rbuf), 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n > 0 && c->pend_len < 64) {
            if (c->pend_cap < 64) {
                c->pend_cap = 64;
                c->pend = xrealloc(c->pend, c->pend_cap);
            }
            if ((size_t) n > 64 - c->pend_len) {
                n = (ssize_t) (64 - c->pend_len);
            }
            memcpy(c->pend + c->pend_len, g.rbuf, (size_t) n);
            c->pend_len += (size_t) n;
            continue;
        }
        if (n > 0) {
            continue;
        }

        /* EOF or error: judge by the status line (nchan answers 201/202) */
        ok = c->pend_len >= 12 && memcmp(c->pend, "HTTP/1.", 7) == 0
             && memcmp(c->pend + 8, " 20", 3) == 0;
        push_done(c, ok);
        return;
    }
}


/* timers: connects at --rate, heartbeats, deadlines, reconnects */
static void
tick(double now)
{
    cli_conn_t  *c;
    unsigned     i, want;

    if (g.started < g.clients) {
        want = g.rate > 0 ? (unsigned) ((now - g.t0) * g.rate) + 1
                          : g.clients;
        if (want > g.clients) {
            want = g.clients;
        }
        while (g.started < want) {
            conn_start(&g.conns[g.started++]);
        }
    }

    for (i = 0; i < g.started; i++) {
        c = &g.conns[i];

        switch (c->state) {

        case ST_IDLE:
            if (now >= c->reconnect_at) {
                conn_start(c);
            }
            break;

        case ST_CONNECTING:
        case ST_WS_HANDSHAKE:
        case ST_AUTHING:
            if (now >= c->deadline) {
                if (c->state == ST_AUTHING) {
                    g.auth_timeouts++;
                }
                conn_close(c, 0);
            }
            break;

        case ST_READY:
            if (now < c->next_hb && !ack_due(c, now)) {
                break;
            }
            if (now >= c->next_hb) {
                c->next_hb = now + g.heartbeat;
                send_packet(c, GOIM_OP_HEARTBEAT, "", 0);
            }
            ack_flush(c, now);
            if (conn_flush(c) != 0) {
                conn_close(c, 1);
            }
            break;
        }
    }

    for (i = 0; i < g.npushes; i++) {
        c = &g.pushes[i];
        if (c->fd >= 0 && now - c->push_sent > 10) {
            push_done(c, 0);
        }
    }

    if (g.push_url && g.push_rate > 0 && !g.pushes_over) {
        if (g.next_push == 0) {
            g.next_push = now;
        }
        while (now >= g.next_push) {
            if (g.push_count && g.pushes_sent >= g.push_count) {
                break;
            }
            push_start();
            g.next_push += 1 / g.push_rate;
        }
    }

    if (g.interval > 0 && now >= g.next_report) {
        fprintf(stderr, "goim-cli: %.1fs alive %" PRIu64 " messages %" PRIu64
                " (%.0f/s) online %d bad %" PRIu64 " wire %" PRIu64 "\n",
                now - g.t0, g.alive, g.messages,
                (double) (g.messages - g.report_messages) / g.interval,
                g.online, g.bad_packets + g.bad_frames + g.bad_handshakes
                          + g.bad_events,
                g.wire_bytes);
        g.report_messages = g.messages;
        g.next_report += g.interval;
    }
}


static void
summary(double now)
{
    double  span;

    fflush(stdout);

    span = g.last_msg > g.first_msg ? g.last_msg - g.first_msg : 0;

    fprintf(stderr,
            "goim-cli: summary after %.2f s\n"
            "  clients        %u (%s)\n"
            "  connected      %" PRIu64 "\n"
            "  authed         %" PRIu64 "\n"
            "  alive          %" PRIu64 "\n"
            "  failed         %" PRIu64 "\n"
            "  auth_timeouts  %" PRIu64 "\n"
            "  closed         %" PRIu64 "\n"
            "  reconnects     %" PRIu64 "\n"
            "  messages       %" PRIu64 "\n"
            "  message_bytes  %" PRIu64 "\n"
            "  raw_frames     %" PRIu64 "\n"
            "  hb_replies     %" PRIu64 "\n"
            "  replies        %" PRIu64 "\n"
            "  wire_bytes     %" PRIu64 "\n",
            now - g.t0, g.clients,
            g.sse ? (g.raw ? "sse raw" : "sse") : g.ws ? "ws" : "tcp",
            g.connected,
            g.authed, g.alive, g.failed, g.auth_timeouts, g.closed_by_server,
            g.reconnects, g.messages, g.message_bytes, g.raw_frames,
            g.hb_replies, g.replies, g.wire_bytes);

    if (g.deflate) {
        fprintf(stderr,
                "  deflate_conns  %" PRIu64 "\n"
                "  deflate_frames %" PRIu64 "\n"
                "  deflate_bytes  %" PRIu64 "\n"
                "  inflated_bytes %" PRIu64 "\n",
                g.deflate_conns, g.deflate_frames, g.deflate_bytes,
                g.inflated_bytes);
    }

    if (g.sse) {
        fprintf(stderr,
                "  sse_events     %" PRIu64 "\n"
                "  sse_comments   %" PRIu64 "\n"
                "  bad_events     %" PRIu64 "\n",
                g.sse_events, g.sse_comments, g.bad_events);
    }

    if (g.online_seen) {
        fprintf(stderr, "  online         %d\n", g.online);
    }

    fprintf(stderr,
            "  bad_packets    %" PRIu64 "\n"
            "  bad_frames     %" PRIu64 "\n"
            "  bad_handshakes %" PRIu64 "\n",
            g.bad_packets, g.bad_frames, g.bad_handshakes);

    if (g.ack) {
        fprintf(stderr,
                "  ensure         %" PRIu64 "\n"
                "  ensure_dups    %" PRIu64 "\n"
                "  acks_sent      %" PRIu64 "\n",
                g.ensures, g.ensure_dups, g.acks_sent);
    }

    if (g.recover) {
        fprintf(stderr,
                "  positioned     %" PRIu64 "\n"
                "  position_dups  %" PRIu64 "\n"
                "  recovered      %" PRIu64 "\n"
                "  recovery_gaps  %" PRIu64 "\n",
                g.positioned, g.position_dups, g.recovered, g.recovery_gaps);
    }

    if (g.push_url) {
        fprintf(stderr,
                "  pushes_sent    %" PRIu64 "\n"
                "  pushes_ok      %" PRIu64 "\n"
                "  pushes_failed  %" PRIu64 "\n"
                "  push_answer_p50_ms %.3f\n"
                "  push_answer_p99_ms %.3f\n"
                "  push_answer_max_ms %.3f\n",
                g.pushes_sent, g.pushes_ok, g.pushes_failed,
                hist_percentile_of(g.ans_hist, g.ans_count, g.ans_max, 0.50)
                    / 1000.0,
                hist_percentile_of(g.ans_hist, g.ans_count, g.ans_max, 0.99)
                    / 1000.0,
                g.ans_max / 1000.0);
    }

    if (g.check_seq) {
        fprintf(stderr,
                "  seq_room       %" PRIu64 "\n"
                "  seq_mid        %" PRIu64 "\n"
                "  seq_dups       %" PRIu64 "\n"
                "  seq_reordered  %" PRIu64 "\n"
                "  seq_bad        %" PRIu64 "\n",
                cli_seq_room_distinct, cli_seq_mid_distinct, cli_seq_dups,
                cli_seq_reordered, cli_seq_bad);
    }

    if (g.latency) {
        fprintf(stderr,
                "  latency_count  %" PRIu64 "\n"
                "  bad_timestamps %" PRIu64 "\n"
                "  latency_p50_ms %.3f\n"
                "  latency_p99_ms %.3f\n"
                "  latency_max_ms %.3f\n"
                "  deliveries_s   %.0f\n",
                g.lat_count, g.bad_timestamps,
                hist_percentile(0.50) / 1000.0,
                hist_percentile(0.99) / 1000.0, g.lat_max / 1000.0,
                span > 0 ? (double) (g.messages - 1) / span : 0.0);
    }
}


static void
on_signal(int signo)
{
    stop_signal = signo;
}


static void
resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *len,
    char *host_header, size_t hhsize)
{
    struct addrinfo   hints, *res;
    char              host[256], *colon;
    const char       *port;
    int               rc;

    if (strlen(hostport) >= sizeof(host)) {
        die("address too long: %s", hostport);
    }

    strcpy(host, hostport);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        die("address without a port: %s", hostport);
    }
    *colon = '\0';
    port = colon + 1;

    if (host[0] == '[' && colon[-1] == ']') {
        colon[-1] = '\0';
        memmove(host, host + 1, strlen(host));
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        die("%s: %s", hostport, gai_strerror(rc));
    }

    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);

    snprintf(host_header, hhsize, "%s", hostport);
}


/* 127.0.0.1,127.0.0.2 or 127.0.0.1-127.0.0.20 */
static void
parse_binds(const char *arg)
{
    char            buf[4096], *tok, *save, *dash;
    struct in_addr  a, b;
    uint32_t        i, from, to;

    snprintf(buf, sizeof(buf), "%s", arg);

    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
    {
        dash = strchr(tok, '-');
        if (dash) {
            *dash = '\0';
        }
        if (inet_pton(AF_INET, tok, &a) != 1
            || (dash && inet_pton(AF_INET, dash + 1, &b) != 1))
        {
            die("--bind: not an IPv4 address or range: %s", arg);
        }
        from = ntohl(a.s_addr);
        to = dash ? ntohl(b.s_addr) : from;
        if (to < from) {
            die("--bind: empty range: %s", arg);
        }
        for (i = from; ; i++) {
            if (g.nbinds == CLI_MAX_BINDS) {
                die("--bind: at most %d addresses", CLI_MAX_BINDS);
            }
            g.binds[g.nbinds].sin_family = AF_INET;
            g.binds[g.nbinds].sin_port = 0;
            g.binds[g.nbinds].sin_addr.s_addr = htonl(i);
            g.nbinds++;
            if (i == to) {
                break;
            }
        }
    }
}


static void
parse_push_url(const char *url)
{
    const char  *p, *slash;
    char         hostport[300];
    size_t       n;

    if (strncmp(url, "http://", 7) != 0) {
        die("--push: only http:// URLs: %s", url);
    }

    p = url + 7;
    slash = strchr(p, '/');
    n = slash ? (size_t) (slash - p) : strlen(p);
    if (n == 0 || n >= sizeof(hostport) - 4) {
        die("--push: bad URL: %s", url);
    }

    memcpy(hostport, p, n);
    hostport[n] = '\0';
    if (strchr(hostport, ':') == NULL || hostport[n - 1] == ']') {
        strcat(hostport, ":80");
    }

    snprintf(g.push_path, sizeof(g.push_path), "%s", slash ? slash : "/");
    resolve(hostport, &g.push_addr, &g.push_addrlen, g.push_host,
            sizeof(g.push_host));
}


static double
parse_double(const char *opt, const char *arg, double min)
{
    char    *end;
    double   v;

    v = strtod(arg, &end);
    if (*arg == '\0' || *end != '\0' || v < min) {
        die("%s: not a number >= %g: %s", opt, min, arg);
    }
    return v;
}


static void
usage(FILE *f)
{
    fprintf(f,
"usage: goim-cli [options] HOST:PORT\n"
"  -w, --ws               WebSocket (HOST:PORT is comet's http listener)\n"
"      --sse              Server-Sent Events (HOST:PORT is comet's http\n"
"                         listener): GET with the token in X-Goim-Token, one\n"
"                         event a packet; nothing sent after the request\n"
"      --path PATH        WebSocket or SSE path (default /sub, /sse)\n"
"      --raw              plain WebSocket pub/sub (nchan): no goim auth or\n"
"                         heartbeats, every frame is one message (implies\n"
"                         -w); with --sse a plain EventSource: no token,\n"
"                         every event is one message\n"
"      --deflate          offer permessage-deflate, inflate compressed frames\n"
"                         (implies -w)\n"
"  -n, --clients N        clients to connect (default 1)\n"
"  -m, --mid A[-B]        mid of client i: A+i, wrapping after B (default 1)\n"
"  -r, --room ROOM        room id (default none); {r} = i %% --rooms\n"
"      --rooms K          rooms {r} takes (default 1)\n"
"  -a, --accepts LIST     accepted operations (default 1000,1001,1002)\n"
"  -k, --key TEMPLATE     connection key (default empty: server picks)\n"
"      --platform NAME    (default cli)\n"
"  -T, --token TEMPLATE   auth body; {mid} {key} {room} {accepts}\n"
"                         {platform} {i} are filled in (default goim v2 JSON)\n"
"  -s, --send OP:BODY     a packet to send after auth (repeatable), e.g.\n"
"                         12:live://2 (change room), 14:1001 (sub)\n"
"  -b, --bind ADDRS       source addresses, round robin: 127.0.0.1,127.0.0.2\n"
"                         or 127.0.0.1-127.0.0.20\n"
"  -H, --heartbeat SECS   heartbeat interval (default 30)\n"
"  -R, --rate N           connects per second (default 0: all at once)\n"
"  -d, --duration SECS    stop after SECS (default: until SIGINT)\n"
"  -e, --expect N         stop once N messages arrived (exit 1 if not)\n"
"      --expect-stay      with -e: say so on stderr (\"goim-cli: expected N\n"
"                         messages after S s\") and go on until -d or\n"
"                         SIGINT\n"
"  -i, --interval SECS    progress line on stderr every SECS\n"
"  -p, --print            print every packet received on stdout\n"
"  -q, --quiet            do not (default unless -n 1)\n"
"      --reconnect        reconnect closed clients (jittered backoff)\n"
"  -L, --latency          bodies start with ts=<microseconds>: report\n"
"                         p50/p99/max and deliveries/s\n"
"  -P, --push URL         POST ts=<now> to this logic URL (implies -L), e.g.\n"
"                         http://127.0.0.1:3111/goim/push/room?operation=1000&type=live&room=1\n"
"      --push-rate N      pushes per second (default 1)\n"
"      --push-count N     stop after N pushes, once they are answered\n"
"      --push-body TEXT   appended after the timestamp; {n} is the\n"
"                         push's number, from 1\n"
"      --push-mids A-B    push N goes to mid A + (N-1) %% (B-A+1) (&mids=)\n"
"      --check-seq        count bodies' #r:N (room: each client gets\n"
"                         every N) and #m:N (by mid): duplicates, out of\n"
"                         order, distinct\n"
"      --ack              acknowledge ensure messages: an empty op 18 after\n"
"                         auth; each op 19's id acked (op 18), a seen id\n"
"                         dropped, the message inside counted as a push\n"
"      --ack-delay MS     ack each id MS ms after it came (default 0: at\n"
"                         once; implies --ack)\n"
"      --print-ensure     print every op 19 and op 18 sent on stdout\n"
"                         (implies --ack)\n"
"      --recover          ask for room positions (op 20), name the last\n"
"                         ones on reconnect, drop those seen; op 21 read\n"
"      --print-recover    print every op 20 and op 21 on stdout (implies\n"
"                         --recover)\n"
"      --room-pos E:S     the last position seen in the room, named in\n"
"                         the first auth (a client back from a restart;\n"
"                         implies --recover)\n"
"  -h, --help\n");
}


int
main(int argc, char **argv)
{
    static const struct option  opts[] = {
        { "ws", no_argument, NULL, 'w' },
        { "raw", no_argument, NULL, 9 },
        { "path", required_argument, NULL, 1 },
        { "clients", required_argument, NULL, 'n' },
        { "mid", required_argument, NULL, 'm' },
        { "room", required_argument, NULL, 'r' },
        { "rooms", required_argument, NULL, 2 },
        { "accepts", required_argument, NULL, 'a' },
        { "key", required_argument, NULL, 'k' },
        { "platform", required_argument, NULL, 3 },
        { "token", required_argument, NULL, 'T' },
        { "send", required_argument, NULL, 's' },
        { "bind", required_argument, NULL, 'b' },
        { "heartbeat", required_argument, NULL, 'H' },
        { "rate", required_argument, NULL, 'R' },
        { "duration", required_argument, NULL, 'd' },
        { "expect", required_argument, NULL, 'e' },
        { "interval", required_argument, NULL, 'i' },
        { "print", no_argument, NULL, 'p' },
        { "quiet", no_argument, NULL, 'q' },
        { "reconnect", no_argument, NULL, 4 },
        { "latency", no_argument, NULL, 'L' },
        { "push", required_argument, NULL, 'P' },
        { "push-rate", required_argument, NULL, 5 },
        { "push-count", required_argument, NULL, 13 },
        { "push-body", required_argument, NULL, 6 },
        { "push-mids", required_argument, NULL, 7 },
        { "check-seq", no_argument, NULL, 8 },
        { "ack", no_argument, NULL, 10 },
        { "ack-delay", required_argument, NULL, 11 },
        { "print-ensure", no_argument, NULL, 12 },
        { "recover", no_argument, NULL, 15 },
        { "print-recover", no_argument, NULL, 16 },
        { "room-pos", required_argument, NULL, 17 },
        { "expect-stay", no_argument, NULL, 18 },
        { "deflate", no_argument, NULL, 19 },
        { "sse", no_argument, NULL, 20 },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    struct epoll_event  evs[512];
    struct sigaction    sa;
    struct rlimit       rl;
    cli_conn_t         *c;
    char               *colon, *end;
    double              now, stop_at;
    unsigned            i;
    int                 opt, n, print, quiet, rc;

    g.clients = 1;
    g.token_tpl = "{\"mid\":{mid},\"key\":\"{key}\",\"room_id\":\"{room}\","
                  "\"platform\":\"{platform}\",\"accepts\":[{accepts}]}";
    g.key_tpl = "";
    g.room_tpl = "";
    g.rooms = 1;
    g.accepts = "1000,1001,1002";
    g.platform = "cli";
    g.mid_first = 1;
    g.mid_last = -1;
    g.heartbeat = 30;
    g.push_rate = 1;
    g.push_body = "";
    print = quiet = 0;

    while ((opt = getopt_long(argc, argv, "wn:m:r:a:k:T:s:b:H:R:d:e:i:pqLP:h",
                              opts, NULL)) != -1)
    {
        switch (opt) {
        case 'w': g.ws = 1; break;
        case 9: g.raw = 1; g.ws = 1; break;
        case 1: g.path = optarg; break;
        case 'n':
            g.clients = (unsigned) parse_double("--clients", optarg, 1);
            break;
        case 'm':
            g.mid_first = strtoll(optarg, &end, 10);
            if (end == optarg || (*end && *end != '-')) {
                die("--mid: not A or A-B: %s", optarg);
            }
            if (*end == '-') {
                g.mid_last = strtoll(end + 1, &end, 10);
                if (*end || g.mid_last < g.mid_first) {
                    die("--mid: not A or A-B: %s", optarg);
                }
            }
            break;
        case 'r': g.room_tpl = optarg; break;
        case 2: g.rooms = (unsigned) parse_double("--rooms", optarg, 1); break;
        case 'a': g.accepts = optarg; break;
        case 'k': g.key_tpl = optarg; break;
        case 3: g.platform = optarg; break;
        case 'T': g.token_tpl = optarg; break;
        case 's':
            if (g.nsends == CLI_MAX_SENDS) {
                die("--send: at most %d", CLI_MAX_SENDS);
            }
            colon = strchr(optarg, ':');
            g.sends[g.nsends].op = (int32_t) strtol(optarg, &end, 10);
            if (colon == NULL || end != colon) {
                die("--send: not OP:BODY: %s", optarg);
            }
            g.sends[g.nsends++].body = colon + 1;
            break;
        case 'b': parse_binds(optarg); break;
        case 'H': g.heartbeat = parse_double("--heartbeat", optarg, 0.01);
                  break;
        case 'R': g.rate = parse_double("--rate", optarg, 0); break;
        case 'd': g.duration = parse_double("--duration", optarg, 0); break;
        case 'e': g.expect = (uint64_t) parse_double("--expect", optarg, 1);
                  break;
        case 'i': g.interval = parse_double("--interval", optarg, 0.1); break;
        case 'p': print = 1; break;
        case 'q': quiet = 1; break;
        case 4: g.reconnect = 1; break;
        case 'L': g.latency = 1; break;
        case 'P': g.push_url = optarg; g.latency = 1; break;
        case 5: g.push_rate = parse_double("--push-rate", optarg, 0); break;
        case 13:
            g.push_count = (uint64_t) parse_double("--push-count", optarg, 1);
            break;
        case 6: g.push_body = optarg; break;
        case 7:
            if (sscanf(optarg, "%" SCNd64 "-%" SCNd64, &g.push_mid_first,
                       &g.push_mid_last) != 2
                || g.push_mid_first <= 0 || g.push_mid_last < g.push_mid_first)
            {
                die("--push-mids takes A-B, 0 < A <= B");
            }
            break;
        case 8: g.check_seq = 1; break;
        case 10: g.ack = 1; break;
        case 11:
            g.ack_delay = parse_double("--ack-delay", optarg, 0) / 1000;
            g.ack = 1;
            break;
        case 12: g.print_ensure = 1; g.ack = 1; break;
        case 15: g.recover = 1; break;
        case 16: g.print_recover = 1; g.recover = 1; break;
        case 18: g.expect_stay = 1; break;
        case 19: g.deflate = 1; g.ws = 1; break;
        case 20: g.sse = 1; break;
        case 17:
            {
                size_t  n = strspn(optarg, "0123456789");

                /* digits, a colon, digits: nothing else */
                if (n == 0 || n > 20 || optarg[n] != ':'
                    || strspn(optarg + n + 1, "0123456789") == 0
                    || strspn(optarg + n + 1, "0123456789") > 20
                    || optarg[n + 1 + strspn(optarg + n + 1, "0123456789")]
                       != '\0'
                    || sscanf(optarg, "%" SCNu64 ":%" SCNu64,
                              &g.room_pos_epoch, &g.room_pos_seq) != 2
                    || g.room_pos_epoch == 0)
                {
                    die("--room-pos takes EPOCH:SEQ, EPOCH above 0");
                }
                g.recover = 1;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }

    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }

    if (g.ack && g.raw) {
        die("--ack needs goim's protocol: not with --raw");
    }

    if (g.sse) {
        if (g.deflate) {
            die("--deflate is WebSocket's: not with --sse");
        }
        if (g.ack || g.recover || g.nsends) {
            die("--ack, --recover and --send send packets: not with --sse");
        }
        if (!g.raw && (strpbrk(g.token_tpl, "\r\n")
                       || strpbrk(g.key_tpl, "\r\n")
                       || strpbrk(g.room_tpl, "\r\n")
                       || strpbrk(g.platform, "\r\n")
                       || strpbrk(g.accepts, "\r\n")))
        {
            die("--sse sends the token in a header: it cannot hold CR or LF");
        }
        g.ws = 0;
    }

    if (g.path == NULL) {
        g.path = g.sse ? "/sse" : "/sub";
    }

    g.target = argv[optind];
    g.print = print || (g.clients == 1 && !quiet);
    resolve(g.target, &g.addr, &g.addrlen, g.host_header,
            sizeof(g.host_header));
    if (g.push_url) {
        parse_push_url(g.push_url);
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t) g.clients + 80) {
            die("%u clients need %u file descriptors, the limit is %lu",
                g.clients, g.clients + 80, (unsigned long) rl.rlim_cur);
        }
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    srand((unsigned) (now_real_us() ^ (uint64_t) getpid()));

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (g.ep < 0) {
        die("epoll_create1: %s", strerror(errno));
    }

    g.conns = calloc(g.clients, sizeof(cli_conn_t));
    g.npushes = 64;
    g.pushes = calloc(g.npushes, sizeof(cli_conn_t));
    if (g.conns == NULL || g.pushes == NULL) {
        die("out of memory");
    }

    for (i = 0; i < g.clients; i++) {
        c = &g.conns[i];
        c->kind = CONN_CLIENT;
        c->fd = -1;
        c->idx = i;
        c->mid = g.mid_last < 0
                 ? g.mid_first + i
                 : g.mid_first + (int64_t) (i % (uint64_t) (g.mid_last
                                                   - g.mid_first + 1));
        /* --room-pos: the position a client saved before it went */
        c->pos_epoch[0] = g.room_pos_epoch;
        c->pos_seq[0] = g.room_pos_seq;
    }

    for (i = 0; i < g.npushes; i++) {
        g.pushes[i].kind = CONN_PUSH;
        g.pushes[i].fd = -1;
    }

    g.t0 = now_mono();
    g.next_report = g.t0 + g.interval;
    stop_at = g.duration > 0 ? g.t0 + g.duration : 0;

    while (!stop_signal) {
        now = now_mono();
        tick(now);

        if (stop_at && now >= stop_at) {
            /* no more pushes; the ones under way have 10 s to answer */
            if (!g.push_url || !pushes_pending() || now >= stop_at + 10) {
                break;
            }
            g.pushes_over = 1;
        }
        if (g.expect && g.messages >= g.expect) {
            if (!g.expect_stay) {
                break;
            }
            if (!g.expected) {
                /* --expect-stay: the moment, and the clients stay */
                g.expected = 1;
                fprintf(stderr, "goim-cli: expected %" PRIu64
                        " messages after %.3f s\n", g.expect,
                        now_mono() - g.t0);
            }
        }
        if (g.push_count && g.pushes_sent >= g.push_count
            && !pushes_pending())
        {
            break;      /* --push-count: all sent and answered */
        }
        if (!g.reconnect && g.started == g.clients && g.alive == 0
            && !g.push_url)
        {
            for (i = 0; i < g.clients; i++) {
                if (g.conns[i].state != ST_DONE) {
                    break;
                }
            }
            if (i == g.clients) {
                break;      /* every client is gone for good */
            }
        }

        n = epoll_wait(g.ep, evs, 512, CLI_TICK_MS);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait: %s", strerror(errno));
        }

        for (i = 0; i < (unsigned) n; i++) {
            c = evs[i].data.ptr;
            if (c->fd < 0) {
                continue;
            }
            if (c->kind == CONN_PUSH) {
                push_event(c, evs[i].events);
            } else {
                client_event(c, evs[i].events);
            }
        }
    }

    now = now_mono();
    summary(now);

    rc = 0;
    if (g.expect && g.messages < g.expect) {
        rc = 1;
    }
    if (g.authed == 0) {
        rc = 1;
    }

    for (i = 0; i < g.clients; i++) {
        if (g.conns[i].fd >= 0) {
            close(g.conns[i].fd);
        }
        free(g.conns[i].pend);
        free(g.conns[i].wbuf);
        free(g.conns[i].seen);
        free(g.conns[i].ids.hashes);
        free(g.conns[i].ids_old.hashes);
        free(g.conns[i].acks);
    }
    for (i = 0; i < g.npushes; i++) {
        if (g.pushes[i].fd >= 0) {
            close(g.pushes[i].fd);
        }
        free(g.pushes[i].pend);
        free(g.pushes[i].wbuf);
    }
    free(g.conns);
    free(g.pushes);
    free(g.sse_data);
    close(g.ep);

    return rc;
}
