
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <goim_args.h>

#include "ngx_goim_comet.h"


/*
 * SSE events (docs/protocol.md, "SSE subscribers"): what a goim message
 * is as text/event-stream.  Every packet is one event: its operation as
 * the event's name (".b64" added when the body goes in base64), the
 * positions of room recovery as its id, its body as data lines.  Only the
 * bytes: the output queue (ngx_goim_comet_output.c) allocates the copy
 * and shares it among the recipients whose ids come out the same.
 */


/* a position "EPOCH:SEQ", twice, and the slash between */
#define NGX_GOIM_COMET_EVENTS_ID_LEN  (2 * (2 * NGX_INT64_LEN + 1) + 1)


static size_t ngx_goim_comet_events_one(u_char *w, int32_t op, u_char *body,
    size_t len, u_char *id, size_t id_len);
static ngx_uint_t ngx_goim_comet_events_text(u_char *p, size_t len);
static u_char *ngx_goim_comet_events_id(u_char *p, uint64_t *epoch,
    uint64_t *seq);


/* the most msg's events take */

size_t
ngx_goim_comet_events_size(ngx_goim_comet_msg_t *msg)
{
    u_char  *p, *last, *body;
    size_t   len, size, blen;
    u_char   ids[NGX_GOIM_COMET_EVENTS_ID_LEN];

    p = msg->data + (msg->raw ? GOIM_HEADER_LEN : 0);
    last = msg->data + msg->len;
    size = 0;

    while ((len = goim_packet_len(p, last)) != 0) {
        body = p + GOIM_HEADER_LEN;
        blen = len - GOIM_HEADER_LEN;

        if (goim_get_be32(p + 8) == GOIM_OP_POSITION && blen >= 1 + 16
            && goim_packet_len(body + 17, body + blen))
        {
            body += 17 + GOIM_HEADER_LEN;
            blen -= 17 + GOIM_HEADER_LEN;
        }

        size += ngx_goim_comet_events_one(NULL, 0, body, blen, ids,
                                          NGX_GOIM_COMET_EVENTS_ID_LEN);
        p += len;
    }

    return size;
}


/*
 * msg's events written into sm (events_size() bytes), with ids going on
 * from sse's positions, which move to the last ones written; sm gets its
 * length and number of events, and ids, stream, epoch, seq, key_* when it
 * has positions.
 * Returns 1 when the copy is sse's own (op 21's ids: the positions of
 * both streams), not to be shared.
 */

ngx_uint_t
ngx_goim_comet_events_write(ngx_goim_comet_sse_t *sse, ngx_uint_t positions,
    ngx_goim_comet_msg_t *msg, ngx_goim_comet_msg_t *sm)
{
    u_char      *p, *last, *body, *w, *id;
    size_t       len, blen, idlen;
    int32_t      op;
    uint64_t     epoch[2], seq[2];
    ngx_uint_t   kind, kinds, own, n;
    u_char       ids[NGX_GOIM_COMET_EVENTS_ID_LEN];

    epoch[0] = sse->epoch[0];
    epoch[1] = sse->epoch[1];
    seq[0] = sse->seq[0];
    seq[1] = sse->seq[1];
    kinds = 0;
    kind = 0;
    own = 0;
    n = 0;

    p = msg->data + (msg->raw ? GOIM_HEADER_LEN : 0);
    last = msg->data + msg->len;
    w = sm->data;

    while ((len = goim_packet_len(p, last)) != 0) {
        body = p + GOIM_HEADER_LEN;
        blen = len - GOIM_HEADER_LEN;
        op = (int32_t) goim_get_be32(p + 8);
        id = NULL;
        idlen = 0;

        if (op == GOIM_OP_POSITION && blen >= 1 + 16
            && goim_packet_len(body + 17, body + blen))
        {
            /* stream byte | epoch u64 | seq u64 | the packet */
            kind = body[0] ? NGX_GOIM_COMET_STREAM_ALL
                           : NGX_GOIM_COMET_STREAM_ROOM;
            epoch[kind] = ((uint64_t) goim_get_be32(body + 1) << 32)
                          | goim_get_be32(body + 5);
            seq[kind] = ((uint64_t) goim_get_be32(body + 9) << 32)
                        | goim_get_be32(body + 13);
            kinds |= 1 << kind;

            op = (int32_t) goim_get_be32(body + 17 + 8);
            body += 17 + GOIM_HEADER_LEN;
            blen -= 17 + GOIM_HEADER_LEN;

            id = ids;

        } else if (op == GOIM_OP_RECOVERY && positions) {
            /* where each stream stands now: a resume starts there */
            id = ids;
            own = 1;
        }

        if (id) {
            idlen = ngx_goim_comet_events_id(ids, epoch, seq) - ids;
        }

        w += ngx_goim_comet_events_one(w, op, body, blen, id, idlen);
        p += len;
        n++;
    }

    sm->len = w - sm->data;
    sm->events = n;

    if (kinds) {
        sm->ids = 1;
        sm->stream = kind;
        sm->epoch = epoch[kind];
        sm->seq = seq[kind];
        sm->key_epoch = epoch[kind ^ 1];
        sm->key_seq = seq[kind ^ 1];
    }

    sse->epoch[0] = epoch[0];
    sse->epoch[1] = epoch[1];
    sse->seq[0] = seq[0];
    sse->seq[1] = seq[1];

    /* ids of both streams' positions: they differ between recipients */
    return own || kinds == 3;
}


/*
 * One event at w (NULL: only its size, at most): "event: OP", "id: ID"
 * when there is one, the body as data lines, an empty line.  A body of
 * UTF-8 text without CR or NUL is split on LF, one data line each (the
 * client joins them with LF again); any other goes in base64 on one line,
 * and the event is named "OP.b64".
 */

static size_t
ngx_goim_comet_events_one(u_char *w, int32_t op, u_char *body, size_t len,
    u_char *id, size_t id_len)
{
    u_char      *p, *last, *lf, *start;
    size_t       size;
    ngx_str_t    src, dst;
    ngx_uint_t   text;

    text = ngx_goim_comet_events_text(body, len);

    if (w == NULL) {
        size = sizeof("event: .b64\n") - 1 + NGX_INT32_LEN + 1;

        if (id) {
            size += sizeof("id: \n") - 1 + id_len;
        }

        if (text) {
            size += len + sizeof("data: \n") - 1;

            for (p = body, last = body + len; p < last; p++) {
                if (*p == LF) {
                    size += sizeof("data: ") - 1;
                }
            }

        } else {
            size += sizeof("data: \n") - 1 + ngx_base64_encoded_length(len);
        }

        return size;
    }

    start = w;

    w = ngx_sprintf(w, "event: %D%s\n", op, text ? "" : ".b64");

    if (id) {
        w = ngx_cpymem(w, "id: ", 4);
        w = ngx_cpymem(w, id, id_len);
        *w++ = LF;
    }

    if (text) {
        p = body;
        last = body + len;

        for ( ;; ) {
            lf = ngx_strlchr(p, last, LF);

            w = ngx_cpymem(w, "data: ", 6);
            w = ngx_cpymem(w, p, (lf ? lf : last) - p);
            *w++ = LF;

            if (lf == NULL) {
                break;
            }

            p = lf + 1;
        }

    } else {
        w = ngx_cpymem(w, "data: ", 6);

        src.data = body;
        src.len = len;
        dst.data = w;
        ngx_encode_base64(&dst, &src);

        w += dst.len;
        *w++ = LF;
    }

    *w++ = LF;

    return w - start;
}


/* UTF-8 without CR (an SSE line end) or NUL */

static ngx_uint_t
ngx_goim_comet_events_text(u_char *p, size_t len)
{
    u_char    *last;
    uint32_t   u;

    last = p + len;

    while (p < last) {
        if (*p < 0x80) {
            if (*p == CR || *p == '\0') {
                return 0;
            }

            p++;
            continue;
        }

        u = ngx_utf8_decode(&p, last - p);

        /* surrogates are no characters: JavaScript would get U+FFFD */
        if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


/* "ROOM_EPOCH:SEQ/ALL_EPOCH:SEQ", a side empty where there is none */

static u_char *
ngx_goim_comet_events_id(u_char *p, uint64_t *epoch, uint64_t *seq)
{
    if (epoch[NGX_GOIM_COMET_STREAM_ROOM]) {
        p = ngx_sprintf(p, "%uL:%uL", epoch[NGX_GOIM_COMET_STREAM_ROOM],
                        seq[NGX_GOIM_COMET_STREAM_ROOM]);
    }

    *p++ = '/';

    if (epoch[NGX_GOIM_COMET_STREAM_ALL]) {
        p = ngx_sprintf(p, "%uL:%uL", epoch[NGX_GOIM_COMET_STREAM_ALL],
                        seq[NGX_GOIM_COMET_STREAM_ALL]);
    }

    return p;
}


/*
 * A Last-Event-ID as the id above: each side's position, 0:0 for an
 * empty one.  NGX_ERROR: not of that form.
 */

ngx_int_t
ngx_goim_comet_events_last_id(ngx_str_t *id, uint64_t *epoch,
    uint64_t *seq)
{
    u_char      *slash, *last;
    ngx_uint_t   k;
    ngx_str_t    side[2];

    last = id->data + id->len;
    slash = ngx_strlchr(id->data, last, '/');

    if (slash == NULL) {
        return NGX_ERROR;
    }

    side[NGX_GOIM_COMET_STREAM_ROOM].data = id->data;
    side[NGX_GOIM_COMET_STREAM_ROOM].len = slash - id->data;
    side[NGX_GOIM_COMET_STREAM_ALL].data = slash + 1;
    side[NGX_GOIM_COMET_STREAM_ALL].len = last - slash - 1;

    for (k = 0; k < 2; k++) {
        epoch[k] = 0;
        seq[k] = 0;

        if (side[k].len == 0) {
            continue;
        }

        if (goim_args_position((char *) side[k].data, side[k].len,
                               &epoch[k], &seq[k])
            != 0
            || epoch[k] == 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
