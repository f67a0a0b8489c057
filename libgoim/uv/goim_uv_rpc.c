/*
 * Pieces of the RPC channel that the server and the client share:
 * host:port parsing, the read buffer frames are parsed from, and the
 * write buffers frames are sent from (see goim_uv_rpc_int.h).
 */

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goim_uv_rpc_int.h"


int
goim_uv_addr_split(const char *text, char *host, size_t hostlen, int *port)
{
    char        *end;
    long         p;
    size_t       n;
    const char  *colon, *h;

    colon = strrchr(text, ':');
    if (colon == NULL || colon[1] == '\0') {
        return -1;
    }

    h = text;
    n = (size_t) (colon - text);

    if (n && text[0] == '[') {
        if (text[n - 1] != ']' || n < 3) {
            return -1;
        }

        h = text + 1;
        n -= 2;

    } else if (memchr(text, ':', n) != NULL) {
        return -1;                  /* a bare IPv6 address needs [] */
    }

    if (n >= hostlen) {
        return -1;
    }

    p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535) {
        return -1;
    }

    memcpy(host, h, n);
    host[n] = '\0';
    *port = (int) p;

    return 0;
}


int
goim_uv_addr_resolve(const char *text, struct sockaddr_storage *ss)
{
    int              port, rc;
    char             host[256];
    struct addrinfo  hints, *res;

    if (goim_uv_addr_split(text, host, sizeof(host), &port) != 0) {
        return UV_EINVAL;
    }

    if (host[0] == '\0') {
        return uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *) ss);
    }

    if (uv_ip4_addr(host, port, (struct sockaddr_in *) ss) == 0
        || uv_ip6_addr(host, port, (struct sockaddr_in6 *) ss) == 0)
    {
        return 0;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        return UV_EAI_NONAME;
    }

    memcpy(ss, res->ai_addr, res->ai_addrlen);

    if (res->ai_family == AF_INET) {
        ((struct sockaddr_in *) ss)->sin_port = htons((uint16_t) port);

    } else {
        ((struct sockaddr_in6 *) ss)->sin6_port = htons((uint16_t) port);
    }

    freeaddrinfo(res);

    return 0;
}


void
goim_uv_sockaddr_name(const struct sockaddr *sa, char *buf, size_t len)
{
    char  ip[64];

    ip[0] = '\0';

    if (sa->sa_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *) sa, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%d", ip,
                 ntohs(((const struct sockaddr_in6 *) sa)->sin6_port));
        return;
    }

    uv_ip4_name((const struct sockaddr_in *) sa, ip, sizeof(ip));
    snprintf(buf, len, "%s:%d", ip,
             ntohs(((const struct sockaddr_in *) sa)->sin_port));
}


/* ---- read buffer -------------------------------------------------------- */

void
goim_rbuf_alloc(goim_rbuf_t *rb, size_t max_body, uv_buf_t *buf)
{
    size_t            have, want, least, cap;
    uint8_t          *p;
    goim_rpc_frame_t  f;

    have = rb->end - rb->start;

    /*
     * Room for the rest of a frame whose header is in, or else whatever
     * is free; the buffer grows (by a chunk, or by a larger frame's rest)
     * only when that is not there: growing on every read that left less
     * than a chunk free cost a peer sending a byte at a time one
     * realloc() per byte (fuzz_rpc_rbuf).
     */

    want = GOIM_RBUF_CHUNK;
    least = GOIM_RBUF_CHUNK / 16;

    if (have >= GOIM_HEADER_LEN
        && goim_rpc_frame_split(rb->data + rb->start, have, max_body, &f)
           == GOIM_AGAIN)
    {
        want = f.need - have > want ? f.need - have : want;
        least = f.need - have > least ? f.need - have : least;
    }

    if (rb->cap - rb->end < least && rb->start) {
        memmove(rb->data, rb->data + rb->start, have);
        rb->start = 0;
        rb->end = have;
    }

    if (rb->cap - rb->end < least) {
        cap = rb->end + want;

        p = realloc(rb->data, cap);
        if (p == NULL) {
            buf->base = NULL;
            buf->len = 0;
            return;
        }

        rb->data = p;
        rb->cap = cap;
    }

    buf->base = (char *) rb->data + rb->end;
    buf->len = rb->cap - rb->end;
}


goim_rc_t
goim_rbuf_next(goim_rbuf_t *rb, size_t max_body, goim_packet_t *pkt)
{
    goim_rc_t         rc;
    goim_rpc_frame_t  f;

    rc = goim_rpc_frame_split(rb->data + rb->start, rb->end - rb->start,
                              max_body, &f);

    if (rc == GOIM_OK) {
        *pkt = f.pkt;
        rb->start += f.len;
        return rc;
    }

    if (rc == GOIM_AGAIN) {
        if (rb->start == rb->end) {
            rb->start = 0;
            rb->end = 0;

            if (rb->cap > 4 * GOIM_RBUF_CHUNK) {
                goim_rbuf_free(rb);   /* a large frame passed: give back */
            }
        }
    }

    return rc;
}


void
goim_rbuf_free(goim_rbuf_t *rb)
{
    free(rb->data);
    rb->data = NULL;
    rb->start = 0;
    rb->end = 0;
    rb->cap = 0;
}


/* ---- write buffers ------------------------------------------------------ */

static goim_wbuf_t *
goim_wbuf_alloc(size_t len)
{
    goim_wbuf_t  *wb;

    if (len > INT32_MAX) {
        return NULL;
    }

    wb = malloc(sizeof(goim_wbuf_t) + len);
    if (wb == NULL) {
        return NULL;
    }

    goim_queue_init(&wb->queue);
    wb->len = len;

    return wb;
}


goim_wbuf_t *
goim_wbuf_frame(int32_t op, int32_t seq, const ProtobufCMessage *msg)
{
    goim_wbuf_t  *wb;

    wb = goim_wbuf_alloc(goim_rpc_frame_size(msg));
    if (wb == NULL) {
        return NULL;
    }

    wb->len = goim_rpc_frame_write(wb->data, op, seq, msg);

    return wb;
}


goim_wbuf_t *
goim_wbuf_raw(const uint8_t *data, size_t len)
{
    goim_wbuf_t  *wb;

    wb = goim_wbuf_alloc(len);
    if (wb == NULL) {
        return NULL;
    }

    memcpy(wb->data, data, len);

    return wb;
}


goim_wbuf_t *
goim_wbuf_error(int32_t method, int32_t seq, Goim__ErrorCode code,
    const char *message)
{
    goim_wbuf_t  *wb;

    wb = goim_wbuf_alloc(goim_rpc_error_size(message));
    if (wb == NULL) {
        return NULL;
    }

    wb->len = goim_rpc_error_write(wb->data, method, seq, code, message);

    return wb;
}


static void
goim_wbuf_written(uv_write_t *req, int status)
{
    (void) status;              /* a failed write shows up as a read error */

    free(req->data);
}


int
goim_wbuf_send(uv_stream_t *stream, goim_wbuf_t *wb)
{
    int       rc;
    uv_buf_t  buf;

    buf = uv_buf_init((char *) wb->data, (unsigned) wb->len);
    wb->req.data = wb;

    rc = uv_write(&wb->req, stream, &buf, 1, goim_wbuf_written);
    if (rc != 0) {
        free(wb);
    }

    return rc;
}
