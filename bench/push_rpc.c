/*
 * push_rpc: job's side of comet's push RPC, at a steady rate, for the
 * cross-worker hop benchmark (bench/hop.sh, bench/README.md).
 *
 *   push_rpc [-a 127.0.0.1:3109] [-r pushes/s] [-d seconds] [-n keys]
 *            [-k key-prefix] [-w window]
 *
 * Sends PushMsg calls, one key each, to keys <prefix>0 .. <prefix>n-1 in
 * turn, op 1000, body "ts=<microseconds since the epoch>" (goim-cli's
 * latency mode reads it), over one connection as goim-job does, with at
 * most `window` calls unanswered.  Prints how many went, were answered,
 * reached a connection, were dropped or refused; exits 1 on any refusal
 * or a lost connection.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "goim_rpc.h"


typedef struct {
    int        fd;
    uint8_t    out[1 << 16];
    size_t     out_len;
    uint8_t    in[1 << 16];
    size_t     in_len;

    uint64_t   sent, answered, delivered, dropped, refused;
} push_conn_t;


static uint64_t
now_us(clockid_t clock)
{
    struct timespec  ts;

    clock_gettime(clock, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


static int
push_connect(const char *addr)
{
    int                 fd, one;
    char                host[64], *colon;
    struct sockaddr_in  sa;

    snprintf(host, sizeof(host), "%s", addr);
    colon = strrchr(host, ':');
    if (colon == NULL) {
        return -1;
    }
    *colon = '\0';

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        return -1;
    }

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == -1 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        return -1;
    }

    one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, O_NONBLOCK);

    return fd;
}


static void
push_add(push_conn_t *c, const char *key)
{
    char              *keys[1], body[32];
    Goim__Proto        proto = GOIM__PROTO__INIT;
    Goim__PushMsgReq   req = GOIM__PUSH_MSG_REQ__INIT;

    keys[0] = (char *) key;
    proto.ver = 1;
    proto.op = 1000;
    proto.body.len = (size_t) snprintf(body, sizeof(body), "ts=%llu",
                                  (unsigned long long) now_us(CLOCK_REALTIME));
    proto.body.data = (uint8_t *) body;
    req.n_keys = 1;
    req.keys = keys;
    req.proto = &proto;
    req.proto_op = 1000;

    c->out_len += goim_rpc_frame_write(c->out + c->out_len,
                                       GOIM__METHOD__COMET_PUSH_MSG,
                                       (int32_t) c->sent, &req.base);
    c->sent++;
}


/* -1: the connection is gone */
static int
push_io(push_conn_t *c, int timeout_ms)
{
    size_t           off;
    int32_t          len, op;
    ssize_t          n;
    struct pollfd    pfd;
    Goim__PushMsgReply  *reply;

    pfd.fd = c->fd;
    pfd.events = POLLIN | (c->out_len ? POLLOUT : 0);

    if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) {
        return -1;
    }

    if (c->out_len) {
        n = write(c->fd, c->out, c->out_len);
        if (n < 0 && errno != EAGAIN) {
            return -1;
        }
        if (n > 0) {
            memmove(c->out, c->out + n, c->out_len - (size_t) n);
            c->out_len -= (size_t) n;
        }
    }

    n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        return -1;
    }
    if (n > 0) {
        c->in_len += (size_t) n;
    }

    for (off = 0; c->in_len - off >= GOIM_HEADER_LEN; off += (size_t) len) {
        memcpy(&len, c->in + off, 4);
        len = (int32_t) ntohl((uint32_t) len);

        if (len < GOIM_HEADER_LEN || (size_t) len > sizeof(c->in)) {
            return -1;
        }

        if (c->in_len - off < (size_t) len) {
            break;
        }

        memcpy(&op, c->in + off + 8, 4);
        op = (int32_t) ntohl((uint32_t) op);
        c->answered++;

        if (op & GOIM_RPC_ERROR) {
            c->refused++;
            continue;
        }

        reply = goim__push_msg_reply__unpack(NULL,
                                             (size_t) len - GOIM_HEADER_LEN,
                                             c->in + off + GOIM_HEADER_LEN);
        if (reply) {
            c->delivered += (uint64_t) reply->delivered;
            c->dropped += (uint64_t) reply->dropped;
            goim__push_msg_reply__free_unpacked(reply, NULL);
        }
    }

    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;

    return 0;
}


int
main(int argc, char **argv)
{
    int           opt;
    char          key[64];
    double        rate, secs;
    uint64_t      start, now, due, window, nkeys, end;
    const char   *addr, *prefix;
    push_conn_t  *c;

    addr = "127.0.0.1:3109";
    prefix = "hop";
    rate = 1000;
    secs = 10;
    nkeys = 1000;
    window = 1024;

    while ((opt = getopt(argc, argv, "a:r:d:n:k:w:")) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'n': nkeys = strtoull(optarg, NULL, 10); break;
        case 'k': prefix = optarg; break;
        case 'w': window = strtoull(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: push_rpc [-a addr] [-r pushes/s] "
                    "[-d seconds] [-n keys] [-k key-prefix] [-w window]\n");
            return 2;
        }
    }

    if (rate <= 0 || secs <= 0 || nkeys == 0 || window == 0) {
        fprintf(stderr, "push_rpc: rate, seconds, keys and window must be "
                "positive\n");
        return 2;
    }

    c = calloc(1, sizeof(push_conn_t));
    if (c == NULL) {
        return 1;
    }

    c->fd = push_connect(addr);
    if (c->fd == -1) {
        fprintf(stderr, "push_rpc: cannot connect to %s\n", addr);
        return 1;
    }

    start = now_us(CLOCK_MONOTONIC);
    end = start + (uint64_t) (secs * 1e6);

    for (now = start; now < end; now = now_us(CLOCK_MONOTONIC)) {
        due = (uint64_t) ((double) (now - start) * rate / 1e6);

        while (c->sent < due && c->sent - c->answered < window
               && c->out_len + 256 < sizeof(c->out))
        {
            snprintf(key, sizeof(key), "%s%llu", prefix,
                     (unsigned long long) (c->sent % nkeys));
            push_add(c, key);
        }

        if (push_io(c, 1) != 0) {
            fprintf(stderr, "push_rpc: connection lost\n");
            return 1;
        }
    }

    /* the answers still on their way */
    for (end = now + 5000000;
         c->answered < c->sent && now_us(CLOCK_MONOTONIC) < end; )
    {
        if (push_io(c, 10) != 0) {
            fprintf(stderr, "push_rpc: connection lost\n");
            return 1;
        }
    }

    printf("pushes %llu answered %llu delivered %llu dropped %llu "
           "refused %llu rate %.0f/s\n",
           (unsigned long long) c->sent, (unsigned long long) c->answered,
           (unsigned long long) c->delivered, (unsigned long long) c->dropped,
           (unsigned long long) c->refused, (double) c->sent / secs);

    return (c->refused || c->answered < c->sent) ? 1 : 0;
}
