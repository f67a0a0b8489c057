
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <goim_ws.h>

#include "ngx_goim_comet.h"


/*
 * WebSocket framing of a channel: frames in, one message (one goim
 * packet) out at a time, inflated if it came compressed (permessage-
 * deflate), control frames answered through the output queue, and the
 * closing frame.
 */


static ngx_int_t ngx_goim_comet_ws_control(ngx_goim_channel_t *ch,
    unsigned opcode, u_char *data, size_t len, ngx_goim_comet_ws_in_t *in);


/*
 * The next data message in ch->in from *pos on, which moves past the
 * frames taken.  Text and binary are both accepted, as goim does; control
 * frames are answered here, through the same output queue as everything
 * else.  NGX_OK: in->data, in->len is a whole message; NGX_AGAIN: more
 * bytes are needed; NGX_DECLINED: the connection is to be closed with
 * in->status (in->reason, or NULL: nothing to log); NGX_ERROR: to be
 * closed without a frame, for in->reason.
 */

ngx_int_t
ngx_goim_comet_ws_read(ngx_goim_channel_t *ch, size_t *pos,
    ngx_goim_comet_ws_in_t *in)
{
    u_char           *payload;
    size_t            plen, max;
    ngx_int_t         rc;
    goim_ws_rc_t      wrc;
    goim_ws_frame_t   fr;

    max = GOIM_HEADER_LEN + ch->conf->max_body;
    in->reassembled = 0;

    for ( ;; ) {
        wrc = goim_ws_parse_ext(ch->in + *pos, ch->in_len - *pos, max,
                                ch->deflate, &fr);

        if (wrc == GOIM_WS_AGAIN) {
            return NGX_AGAIN;
        }

        if (wrc != GOIM_WS_OK) {
            in->status = (wrc == GOIM_WS_ERR_TOO_BIG) ? GOIM_WS_CLOSE_TOO_BIG
                                                      : GOIM_WS_CLOSE_PROTOCOL;
            in->reason = goim_ws_strerror(wrc);
            return NGX_DECLINED;
        }

        payload = ch->in + *pos + fr.header_len;
        plen = (size_t) fr.payload_len;
        *pos += fr.header_len + plen;

        goim_ws_unmask(payload, plen, fr.mask, 0);

        if (fr.opcode >= GOIM_WS_OP_CLOSE) {
            rc = ngx_goim_comet_ws_control(ch, fr.opcode, payload, plen, in);
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if ((fr.opcode == GOIM_WS_OP_CONT) != (ch->frag != NULL)) {
            in->status = GOIM_WS_CLOSE_PROTOCOL;
            in->reason = ch->frag ? "new message inside a fragmented one"
                                  : "continuation frame without a message";
            return NGX_DECLINED;
        }

        if (fr.fin && ch->frag == NULL) {
            if (fr.rsv1) {
                return ngx_goim_comet_ws_inflate(ch, payload, plen, max, in);
            }

            in->data = payload;
            in->len = plen;
            return NGX_OK;
        }

        /* a fragment: reassemble up to one packet's maximum */

        if (ch->frag == NULL) {
            ch->frag = ngx_alloc(max, ch->connection->log);
            if (ch->frag == NULL) {
                in->reason = "out of memory";
                return NGX_ERROR;
            }

            /* compressed, the message is inflated once whole */
            ch->frag_deflated = fr.rsv1;
        }

        if (max - ch->frag_len < plen) {
            in->status = GOIM_WS_CLOSE_TOO_BIG;
            in->reason = "fragmented message too large";
            return NGX_DECLINED;
        }

        ngx_memcpy(ch->frag + ch->frag_len, payload, plen);
        ch->frag_len += plen;

        if (fr.fin && ch->frag_deflated) {
            rc = ngx_goim_comet_ws_inflate(ch, ch->frag, ch->frag_len, max,
                                           in);
            ngx_free(ch->frag);
            ch->frag = NULL;
            ch->frag_len = 0;
            ch->frag_deflated = 0;
            return rc;
        }

        if (fr.fin) {
            /* the caller frees it */
            in->data = ch->frag;
            in->len = ch->frag_len;
            in->reassembled = 1;
            ch->frag = NULL;
            ch->frag_len = 0;
            return NGX_OK;
        }
    }
}


static ngx_int_t
ngx_goim_comet_ws_control(ngx_goim_channel_t *ch, unsigned opcode,
    u_char *data, size_t len, ngx_goim_comet_ws_in_t *in)
{
    u_char                *p;
    ngx_uint_t             status;
    const char            *err;
    ngx_goim_comet_msg_t  *msg;

    switch (opcode) {

    case GOIM_WS_OP_PING:
        msg = ngx_goim_comet_msg_create(GOIM_WS_MAX_HEADER + len,
                                        ch->connection->log);
        if (msg == NULL) {
            in->reason = "out of memory";
            return NGX_ERROR;
        }

        msg->len = goim_ws_header_write(msg->data, GOIM_WS_OP_PONG, len);
        msg->len = ngx_cpymem(msg->data + msg->len, data, len) - msg->data;
        msg->frame = 1;

        if (ngx_goim_comet_output_enqueue(ch, msg, 0) != NGX_OK) {
            ngx_goim_comet_msg_release(msg);
            in->reason = "request flood: output queue full";
            return NGX_ERROR;
        }

        ngx_goim_comet_msg_release(msg);
        return NGX_OK;

    case GOIM_WS_OP_PONG:
        return NGX_OK;

    default: /* GOIM_WS_OP_CLOSE */

        /*
         * A valid status is echoed, as RFC 6455 §5.5.1 asks; one that may
         * not be on the wire is answered with 1002, a reason that is not
         * UTF-8 with 1007.
         */
        status = goim_ws_close_reply(data, len, &err);

        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, ch->connection->log, 0,
                       "goim comet: client sent close, answering %ui",
                       status);

        if (err && len >= 2 && status == GOIM_WS_CLOSE_PROTOCOL) {
            p = ngx_snprintf(in->buf, sizeof(in->buf) - 1, "%s %ui", err,
                             (ngx_uint_t) (data[0] << 8 | data[1]));
            *p = '\0';
            err = (const char *) in->buf;
        }

        in->status = status;
        in->reason = err;
        return NGX_DECLINED;
    }
}


/*
 * A close frame carrying status, past the queue's bound (it is the last
 * thing the queue carries), and one attempt to write what is queued.
 */

void
ngx_goim_comet_ws_close(ngx_goim_channel_t *ch, ngx_uint_t status)
{
    ngx_goim_comet_msg_t  *msg;

    msg = ngx_goim_comet_msg_create(4, ch->connection->log);

    if (msg == NULL) {
        return;
    }

    msg->data[0] = 0x80 | GOIM_WS_OP_CLOSE;
    msg->data[1] = 2;
    msg->data[2] = (u_char) (status >> 8);
    msg->data[3] = (u_char) status;
    msg->frame = 1;

    (void) ngx_goim_comet_output_enqueue(ch, msg, 1);
    ngx_goim_comet_msg_release(msg);

    (void) ngx_goim_comet_output_flush(ch);
}
