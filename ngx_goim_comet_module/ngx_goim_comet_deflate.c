
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <zlib.h>

#include <goim_ws.h>
#include <goim_ws_deflate.h>

#include "ngx_goim_comet.h"


/*
 * permessage-deflate (RFC 7692) on WebSocket channels.  The answer to the
 * handshake says server_no_context_takeover and client_no_context_takeover
 * (ngx_http_goim_comet_module.c), so every message is compressed and
 * inflated on its own: a worker needs one deflate and one inflate stream,
 * reset for each message, whatever its number of connections.  An
 * outgoing message is compressed once, at its first compressing
 * recipient, and the frame made (RSV1 set) is shared by every other one,
 * as the message itself is (ngx_goim_comet_output.c keeps it with the
 * message: this file calls nothing above it).
 */


typedef struct {
    z_stream                   deflate;
    z_stream                   inflate;
    u_char                    *buf;           /* deflate's output */
    size_t                     size;
    unsigned                   deflate_ready:1;
    unsigned                   inflate_ready:1;
} ngx_goim_comet_deflate_t;


static ngx_goim_comet_deflate_t *ngx_goim_comet_deflate_get(
    ngx_goim_comet_worker_t *wk, ngx_log_t *log);


static ngx_goim_comet_deflate_t *
ngx_goim_comet_deflate_get(ngx_goim_comet_worker_t *wk, ngx_log_t *log)
{
    ngx_goim_comet_deflate_t  *d;

    d = wk->deflate;

    if (d == NULL) {
        d = ngx_calloc(sizeof(ngx_goim_comet_deflate_t), log);
        if (d == NULL) {
            return NULL;
        }

        wk->deflate = d;
    }

    return d;
}


/*
 * data compressed as RFC 7692 §7.2.1 says, into the worker's buffer
 * (*out, valid until the next call): raw deflate, a sync flush, its
 * 00 00 ff ff left out.  NGX_DECLINED: no smaller than data (counted);
 * NGX_ERROR: zlib or memory failed (counted and logged).
 */

ngx_int_t
ngx_goim_comet_deflate(ngx_goim_comet_worker_t *wk, u_char *data, size_t len,
    u_char **out, size_t *out_len, ngx_log_t *log)
{
    int                        rc;
    u_char                    *buf;
    size_t                     bound, clen;
    z_stream                  *zs;
    ngx_goim_comet_stats_t    *st;
    ngx_goim_comet_deflate_t  *d;

    st = wk->stats;

    d = ngx_goim_comet_deflate_get(wk, log);
    if (d == NULL) {
        goto failed;
    }

    zs = &d->deflate;

    if (!d->deflate_ready) {
        /* raw deflate (no zlib header), the 15-bit window negotiated */
        rc = deflateInit2(zs, (int) wk->conf->ws_deflate_level, Z_DEFLATED,
                          -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
        if (rc != Z_OK) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "goim comet: deflateInit2() failed: %d", rc);
            goto failed;
        }

        d->deflate_ready = 1;

    } else if (deflateReset(zs) != Z_OK) {
        goto failed;
    }

    /* deflateBound() is for Z_FINISH: a sync flush adds its empty block */
    bound = deflateBound(zs, len) + 16;

    if (d->size < bound) {
        /* the largest message so far: messages have a bound of their own */
        buf = ngx_alloc(bound, log);
        if (buf == NULL) {
            goto failed;
        }

        if (d->buf) {
            ngx_free(d->buf);
        }

        d->buf = buf;
        d->size = bound;
    }

    zs->next_in = data;
    zs->avail_in = len;
    zs->next_out = d->buf;
    zs->avail_out = d->size;

    rc = deflate(zs, Z_SYNC_FLUSH);

    clen = d->size - zs->avail_out;

    if (rc != Z_OK || zs->avail_in != 0 || zs->avail_out == 0
        || clen < sizeof(goim_ws_deflate_tail)
        || ngx_memcmp(d->buf + clen - sizeof(goim_ws_deflate_tail),
                      goim_ws_deflate_tail, sizeof(goim_ws_deflate_tail))
           != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "goim comet: deflate() failed: %d", rc);
        goto failed;
    }

    clen -= sizeof(goim_ws_deflate_tail);

    if (clen >= len) {
        st->deflate_skipped++;
        return NGX_DECLINED;
    }

    st->deflated++;
    st->deflate_in += len;
    st->deflate_out += clen;

    *out = d->buf;
    *out_len = clen;

    return NGX_OK;

failed:

    st->deflate_failed++;

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "goim comet: a message of %uz bytes not compressed, "
                  "sent as it is", len);

    return NGX_ERROR;
}


/*
 * A compressed message from the client inflated into a buffer of its own
 * (in->data, in->reassembled: the caller frees it), at most max bytes: a
 * message that inflates beyond is refused as soon as it does, so a small
 * frame cannot make a worker allocate more than one packet's maximum.
 * NGX_DECLINED: to close with in->status, in->reason.
 */

ngx_int_t
ngx_goim_comet_ws_inflate(ngx_goim_channel_t *ch, u_char *data, size_t len,
    size_t max, ngx_goim_comet_ws_in_t *in)
{
    int                        rc;
    u_char                    *out, *p;
    size_t                     cap, n;
    z_stream                  *zs;
    ngx_log_t                 *log;
    ngx_uint_t                 tail;
    ngx_goim_comet_deflate_t  *d;

    log = ch->connection->log;

    d = ngx_goim_comet_deflate_get(ch->worker, log);
    if (d == NULL) {
        in->reason = "out of memory";
        return NGX_ERROR;
    }

    zs = &d->inflate;

    if (!d->inflate_ready) {
        /* any window the client chose, up to 15 bits, inflates here */
        rc = inflateInit2(zs, -MAX_WBITS);
        if (rc != Z_OK) {
            in->reason = "inflateInit2() failed";
            return NGX_ERROR;
        }

        d->inflate_ready = 1;

    } else if (inflateReset(zs) != Z_OK) {
        in->reason = "inflateReset() failed";
        return NGX_ERROR;
    }

    /* one byte past max tells a message too large from one just max */
    cap = ngx_min(ngx_max(len * 4, 4096), max + 1);

    out = ngx_alloc(cap, log);
    if (out == NULL) {
        in->reason = "out of memory";
        return NGX_ERROR;
    }

    zs->next_in = data;
    zs->avail_in = len;
    zs->next_out = out;
    zs->avail_out = cap;
    tail = 0;

    for ( ;; ) {
        rc = inflate(zs, Z_SYNC_FLUSH);

        if (rc == Z_STREAM_END) {
            /* a final block: only the 4 octets appended may be left */
            if (!tail && zs->avail_in) {
                goto bad;
            }

            break;
        }

        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            goto bad;
        }

        if (zs->avail_out == 0) {
            if (cap > max) {
                in->status = GOIM_WS_CLOSE_TOO_BIG;
                in->reason = "inflated message over goim_comet_max_body";
                ngx_free(out);
                return NGX_DECLINED;
            }

            n = cap;
            cap = ngx_min(cap * 2, max + 1);

            p = ngx_alloc(cap, log);
            if (p == NULL) {
                ngx_free(out);
                in->reason = "out of memory";
                return NGX_ERROR;
            }

            ngx_memcpy(p, out, n);
            ngx_free(out);
            out = p;

            zs->next_out = out + n;
            zs->avail_out = cap - n;
            continue;
        }

        if (zs->avail_in == 0) {
            if (tail) {
                break;
            }

            /* RFC 7692 §7.2.2: what the sender stripped, put back */
            zs->next_in = (u_char *) goim_ws_deflate_tail;
            zs->avail_in = sizeof(goim_ws_deflate_tail);
            tail = 1;
            continue;
        }

        if (rc == Z_BUF_ERROR) {
            /* input left, room left, and no progress */
            goto bad;
        }
    }

    in->data = out;
    in->len = cap - zs->avail_out;
    in->reassembled = 1;

    ch->worker->stats->inflated++;

    return NGX_OK;

bad:

    ngx_free(out);

    in->status = GOIM_WS_CLOSE_BAD_DATA;
    in->reason = "bad compressed data";

    return NGX_DECLINED;
}


void
ngx_goim_comet_deflate_free(ngx_goim_comet_worker_t *wk)
{
    ngx_goim_comet_deflate_t  *d;

    d = wk->deflate;

    if (d == NULL) {
        return;
    }

    if (d->deflate_ready) {
        (void) deflateEnd(&d->deflate);
    }

    if (d->inflate_ready) {
        (void) inflateEnd(&d->inflate);
    }

    if (d->buf) {
        ngx_free(d->buf);
    }

    ngx_free(d);
    wk->deflate = NULL;
}
