/*
 * goim-router over its RPC channel: the daemon itself, pinned to one core,
 * fed by this client on another (bench/README.md).
 *
 *   make bench && build/bench/router_rpc_bench [sessions] [window]
 *
 * Starts build/goim-router on a free port, then:
 *
 *   register  SessionPut of every session (goim-shaped keys and mids)
 *   mixed     pairs of SessionRenew (one in eight moving room) and
 *             SessionsByMids of one mid, as logic sends them
 *
 * with `window` requests in flight on one connection (logic multiplexes
 * calls the same way), and reports requests/s and the daemon's resident
 * growth per session (VmRSS from /proc).
 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "goim_rpc.h"


static double
now_s(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static long
rss_kb(pid_t pid)
{
    char   path[64], line[256];
    long   kb;
    FILE  *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);

    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }

    kb = 0;

    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
            break;
        }
    }

    fclose(f);

    return kb;
}


static void
pin(int cpu)
{
    cpu_set_t  set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void) sched_setaffinity(0, sizeof(set), &set);
}


static int
free_port(void)
{
    int                 fd, port;
    socklen_t           len;
    struct sockaddr_in  sa;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    len = sizeof(sa);
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || getsockname(fd, (struct sockaddr *) &sa, &len) != 0)
    {
        return -1;
    }

    port = ntohs(sa.sin_port);
    close(fd);

    return port;
}


static int
connect_to(int port)
{
    int                 fd, one, i;
    struct sockaddr_in  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    for (i = 0; i < 200; i++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);

        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
            one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }

        close(fd);
        usleep(20000);
    }

    return -1;
}


static void
make_key(char *buf, size_t i)
{
    snprintf(buf, 37, "%08x-%04x-4%03x-8%03x-%012llx",
             (unsigned) (i * 2654435761u & 0xffffffff),
             (unsigned) (i & 0xffff), (unsigned) ((i >> 4) & 0xfff),
             (unsigned) ((i >> 8) & 0xfff),
             (unsigned long long) (i & 0xffffffffffffull));
}


static int64_t
mid_of(size_t i)
{
    return (int64_t) (i % 10 == 9 ? i - 1 : i) + 1;
}


typedef struct {
    int        fd;
    uint8_t   *out;
    size_t     out_len;
    uint8_t   *in;
    size_t     in_len;
    size_t     in_cap;
    size_t     errors;
} conn_t;


static int
conn_flush(conn_t *c)
{
    size_t   off;
    ssize_t  n;

    for (off = 0; off < c->out_len; off += (size_t) n) {
        n = write(c->fd, c->out + off, c->out_len - off);
        if (n <= 0) {
            return -1;
        }
    }

    c->out_len = 0;

    return 0;
}


/* reads until `want` replies have arrived */
static int
conn_replies(conn_t *c, size_t want)
{
    size_t    got, off;
    int32_t   len, op;
    ssize_t   n;

    got = 0;

    while (got < want) {
        n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n <= 0) {
            return -1;
        }

        c->in_len += (size_t) n;
        off = 0;

        while (c->in_len - off >= GOIM_HEADER_LEN) {
            memcpy(&len, c->in + off, 4);
            len = (int32_t) ntohl((uint32_t) len);

            if (c->in_len - off < (size_t) len) {
                break;
            }

            memcpy(&op, c->in + off + 8, 4);
            op = (int32_t) ntohl((uint32_t) op);
            c->errors += (op & GOIM_RPC_ERROR) != 0;

            off += (size_t) len;
            got++;
        }

        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }

    return 0;
}


static void
conn_add(conn_t *c, int32_t method, int32_t seq, const ProtobufCMessage *m)
{
    c->out_len += goim_rpc_frame_write(c->out + c->out_len, method, seq, m);
}


int
main(int argc, char **argv)
{
    int                      port, fd;
    char                     portarg[32], key[37], room[24], comet[16];
    long                     rss0, rss1;
    pid_t                    pid;
    size_t                   n, window, i, j, sent;
    double                   t;
    int64_t                  mid;
    conn_t                   c;
    const char              *bin;
    Goim__Session            s = GOIM__SESSION__INIT;
    Goim__SessionPutReq      put = GOIM__SESSION_PUT_REQ__INIT;
    Goim__SessionRenewReq    renew = GOIM__SESSION_RENEW_REQ__INIT;
    Goim__SessionsByMidsReq  by = GOIM__SESSIONS_BY_MIDS_REQ__INIT;

    n = argc > 1 ? (size_t) strtoull(argv[1], NULL, 10) : 1000000;
    window = argc > 2 ? (size_t) strtoull(argv[2], NULL, 10) : 256;
    bin = getenv("GOIM_ROUTER") ? getenv("GOIM_ROUTER") : "build/goim-router";

    port = free_port();
    snprintf(portarg, sizeof(portarg), "127.0.0.1:%d", port);

    pid = fork();
    if (pid == 0) {
        pin(0);
        execl(bin, bin, "--listen", portarg, "--log-level", "warn",
              "--session-ttl", "3600", (char *) NULL);
        perror(bin);
        _exit(127);
    }

    pin(1);

    fd = connect_to(port);
    if (fd < 0) {
        fprintf(stderr, "cannot reach %s\n", portarg);
        kill(pid, SIGKILL);
        return 1;
    }

    memset(&c, 0, sizeof(c));
    c.fd = fd;
    c.out = malloc(window * 256);
    c.in_cap = 1 << 20;
    c.in = malloc(c.in_cap);
    if (c.out == NULL || c.in == NULL) {
        return 1;
    }

    rss0 = rss_kb(pid);

    printf("goim-router over RPC (daemon on cpu 0, client on cpu 1), "
           "%zu sessions, %zu requests in flight\n\n", n, window);

    /* register */

    put.session = &s;
    s.key = key;
    s.server = comet;
    s.room = room;
    t = now_s();

    for (i = 0; i < n; i = j) {
        for (j = i; j < n && j - i < window; j++) {
            make_key(key, j);
            snprintf(comet, sizeof(comet), "comet-%02zu", j % 100);
            snprintf(room, sizeof(room), "live://%zu", j % 10000);
            s.mid = mid_of(j);
            conn_add(&c, GOIM__METHOD__ROUTER_SESSION_PUT, (int32_t) j,
                     &put.base);
        }

        if (conn_flush(&c) != 0 || conn_replies(&c, j - i) != 0) {
            fprintf(stderr, "connection lost\n");
            return 1;
        }
    }

    t = now_s() - t;
    rss1 = rss_kb(pid);
    printf("register %10zu requests in %7.3f s: %10.0f requests/s\n", n, t,
           (double) n / t);

    /* mixed: renew + look-up pairs */

    renew.session = &s;
    by.n_mids = 1;
    by.mids = &mid;
    sent = 0;
    t = now_s();

    for (i = 0; i < n; i = j) {
        for (j = i; j < n && j - i < window / 2; j++) {
            size_t  k = (j * 104729) % n;

            make_key(key, k);
            snprintf(comet, sizeof(comet), "comet-%02zu", k % 100);
            snprintf(room, sizeof(room), "live://%zu",
                     (k + (j % 8 == 0)) % 10000);
            s.mid = mid_of(k);
            conn_add(&c, GOIM__METHOD__ROUTER_SESSION_RENEW, (int32_t) j,
                     &renew.base);

            mid = mid_of((j * 31) % n);
            conn_add(&c, GOIM__METHOD__ROUTER_SESSIONS_BY_MIDS, (int32_t) j,
                     &by.base);
            sent += 2;
        }

        if (conn_flush(&c) != 0 || conn_replies(&c, 2 * (j - i)) != 0) {
            fprintf(stderr, "connection lost\n");
            return 1;
        }
    }

    t = now_s() - t;
    printf("mixed    %10zu requests in %7.3f s: %10.0f requests/s\n", sent, t,
           (double) sent / t);

    printf("\nerror replies: %zu\n", c.errors);
    printf("daemon resident growth: %.1f bytes/session (%ld kB)\n",
           (double) (rss1 - rss0) * 1024 / (double) n, rss1 - rss0);

    close(fd);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    return c.errors ? 1 : 0;
}
