
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_comet.h"


/*
 * Long-poll sessions, the transport's side of a channel that has no
 * connection: its queue (the channel's output, SSE events) numbered by
 * event, each poll's cursor freeing what the client has, the one poll
 * held until events come or its timeout, and the answers, handed to the
 * poll's waiter (an HTTP request here, or a ring record to the worker
 * that holds the request).  Nothing here is written to a socket.
 */


/* an answer's events, at most: it may go through a ring (ring_size / 4) */
#define NGX_GOIM_COMET_POLL_MAX  (1024 * 1024)


static void ngx_goim_comet_poll_timeout_handler(ngx_event_t *ev);
static void ngx_goim_comet_poll_trim(ngx_goim_channel_t *ch, size_t max);
static void ngx_goim_comet_poll_answer(ngx_goim_channel_t *ch,
    ngx_goim_comet_waiter_t *w, ngx_uint_t events);
static void ngx_goim_comet_poll_detach(ngx_goim_channel_t *ch,
    ngx_goim_comet_waiter_t *w);
static size_t ngx_goim_comet_poll_max(ngx_goim_channel_t *ch);


void
ngx_goim_comet_poll_init(ngx_goim_channel_t *ch)
{
    ngx_goim_comet_poll_t  *poll;

    poll = ch->poll;

    poll->first = 1;
    poll->timer.handler = ngx_goim_comet_poll_timeout_handler;
    poll->timer.data = ch;
    poll->timer.log = ch->connection->log;
    poll->timer.cancelable = 1;

    /* timers only: the idle expiry must not keep a quitting worker */
    ch->connection->read->cancelable = 1;
}


/* the request that opened the session waits for logic's answer */

void
ngx_goim_comet_poll_open(ngx_goim_channel_t *ch, ngx_goim_comet_waiter_t *w)
{
    w->open = 1;
    w->cursor = 0;
    w->channel = ch;

    ch->poll->held = w;
}


/*
 * A poll with its cursor: the events up to it are freed, a poll held
 * before is answered empty, and this one gets what is queued at once or
 * waits for it.  A cursor above the last event answered changes nothing.
 */

void
ngx_goim_comet_poll_take(ngx_goim_channel_t *ch, uint64_t cursor,
    ngx_goim_comet_waiter_t *w)
{
    ngx_uint_t              n;
    ngx_goim_comet_out_t   *out;
    ngx_goim_comet_poll_t  *poll;

    poll = ch->poll;

    if (cursor > poll->sent) {
        ngx_goim_comet_poll_reply(w, 400, cursor, "cursor above the last "
                                  "event sent (X-Goim-Cursor)");
        return;
    }

    /*
     * A message's events go together (one node): one only partly below
     * the cursor, which comet never gives, is sent again whole.
     */
    while (ch->out) {
        out = ch->out;
        n = out->msg->events;

        if (poll->first + n - 1 > cursor && n) {
            break;
        }

        ngx_goim_comet_output_retire(ch, out);
        poll->first += n;
    }

    if (poll->held) {
        ngx_goim_comet_poll_answer(ch, poll->held, 0);
    }

    w->cursor = cursor;

    ngx_goim_comet_poll_trim(ch, ngx_goim_comet_poll_max(ch));

    if (ch->out) {
        ngx_goim_comet_poll_answer(ch, w, 1);
        return;
    }

    poll->held = w;
    w->channel = ch;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ch->connection->log, 0,
                   "goim comet: poll of key \"%V\" held at cursor %uL",
                   &ch->node.str, cursor);

    if (ch->connection->read->timer_set) {
        ngx_del_timer(ch->connection->read);
    }

    ngx_add_timer(&poll->timer, ch->conf->poll_timeout);
}


/*
 * The channel's write handler for a session: events were queued, in one
 * turn of the event loop, and go to the poll held, if any; otherwise
 * they wait for the next one.
 */

void
ngx_goim_comet_poll_flush(ngx_goim_channel_t *ch)
{
    ngx_goim_comet_poll_t  *poll;

    poll = ch->poll;

    if (poll->held == NULL || ch->out == NULL) {
        return;
    }

    ngx_goim_comet_poll_trim(ch, ngx_goim_comet_poll_max(ch));

    if (ch->out) {
        ngx_goim_comet_poll_answer(ch, poll->held, 1);
    }
}


/* the session did not start: its open is answered with the error */

void
ngx_goim_comet_poll_fail(ngx_goim_channel_t *ch, ngx_uint_t status,
    ngx_str_t *reason)
{
    ngx_goim_comet_poll_t    *poll;
    ngx_goim_comet_waiter_t  *w;
    u_char                    buf[256];

    poll = ch->poll;
    w = poll->held;

    if (poll->opened || w == NULL || !w->open) {
        return;
    }

    poll->opened = 1;

    ngx_goim_comet_poll_detach(ch, w);

    ngx_cpystrn(buf, reason->data, ngx_min(reason->len + 1, sizeof(buf)));

    ngx_goim_comet_poll_reply(w, status, 0, (char *) buf);
}


/* the session goes: a poll it holds learns so */

void
ngx_goim_comet_poll_close(ngx_goim_channel_t *ch)
{
    ngx_goim_comet_poll_t    *poll;
    ngx_goim_comet_waiter_t  *w;

    poll = ch->poll;

    if (poll->timer.timer_set) {
        ngx_del_timer(&poll->timer);
    }

    w = poll->held;

    if (w == NULL) {
        return;
    }

    ngx_goim_comet_poll_detach(ch, w);

    if (w->open) {
        ngx_goim_comet_poll_reply(w, 503, 0, "the session closed before "
                                  "it started");
        return;
    }

    ngx_goim_comet_poll_reply(w, 404, w->cursor, "no poll session with this "
                              "key (it closed): authenticate again");
}


/* the poll's request went (the client closed): nothing is answered */

void
ngx_goim_comet_poll_cancel(ngx_goim_comet_waiter_t *w)
{
    ngx_goim_channel_t  *ch;

    ch = w->channel;

    if (ch == NULL) {
        return;
    }

    if (w->open) {
        /* what is queued waits for a poll with the session's id */
        ch->poll->opened = 1;
    }

    ngx_goim_comet_poll_detach(ch, w);
}


/* an answer without events: an error with its reason, or 200 empty */

void
ngx_goim_comet_poll_reply(ngx_goim_comet_waiter_t *w, ngx_uint_t status,
    uint64_t cursor, const char *reason)
{
    ngx_goim_comet_answer_t  a;

    ngx_memzero(&a, sizeof(ngx_goim_comet_answer_t));

    a.status = status;
    a.cursor = cursor;

    if (reason) {
        a.body = (u_char *) reason;
        a.len = ngx_strlen(reason);
    }

    w->answer(w, &a);
}


static void
ngx_goim_comet_poll_timeout_handler(ngx_event_t *ev)
{
    ngx_goim_channel_t *ch = ev->data;

    if (ch->poll->held == NULL) {
        return;
    }

    ch->worker->stats->poll_timeouts++;

    ngx_goim_comet_poll_answer(ch, ch->poll->held, 0);
}


/*
 * A message too large for any answer (one over the bound an answer has
 * so that it fits a worker's ring) would stop the session: it is dropped,
 * counted and logged, as a push a full queue refuses.
 */

static void
ngx_goim_comet_poll_trim(ngx_goim_channel_t *ch, size_t max)
{
    ngx_goim_comet_out_t  *out;

    while (ch->out) {
        out = ch->out;

        if ((size_t) (out->last - out->pos) <= max) {
            return;
        }

        ch->worker->stats->dropped++;

        ngx_log_error(NGX_LOG_WARN, ch->connection->log, 0,
                      "goim comet: key \"%V\": a message of %uz bytes as "
                      "events is over a poll answer's %uz, dropped",
                      &ch->node.str, (size_t) (out->last - out->pos), max);

        ch->poll->first += out->msg->events;
        ngx_goim_comet_output_retire(ch, out);
    }
}


/*
 * Answers w with 200: the events not yet confirmed, as many as the bound
 * takes (events 0: none), the cursor the number of the last one (or the
 * poll's own); the open's answer carries the session id too.
 */

static void
ngx_goim_comet_poll_answer(ngx_goim_channel_t *ch, ngx_goim_comet_waiter_t *w,
    ngx_uint_t events)
{
    u_char                   *p;
    size_t                    size, len, max, slen;
    uint64_t                  last;
    ngx_goim_comet_out_t     *out, *end;
    ngx_goim_comet_poll_t    *poll;
    ngx_goim_comet_answer_t   a;

    poll = ch->poll;

    ngx_goim_comet_poll_detach(ch, w);

    ngx_memzero(&a, sizeof(ngx_goim_comet_answer_t));
    a.status = 200;
    a.cursor = w->cursor;

    size = 0;
    last = poll->first - 1;
    end = ch->out;

    if (events) {
        max = ngx_goim_comet_poll_max(ch);

        for (out = ch->out; out; out = out->next) {
            len = out->last - out->pos;

            if (size + len > max) {
                break;
            }

            size += len;
            last += out->msg->events;
        }

        end = out;
        a.cursor = last;
    }

    slen = w->open ? ngx_goim_comet_session_len(&ch->node.str) : 0;

    p = NULL;

    if (size + slen) {
        p = ngx_alloc(size + slen, ch->connection->log);
        if (p == NULL) {
            ngx_goim_comet_poll_reply(w, 500, w->cursor, "out of memory");
            return;
        }

        a.body = p;

        for (out = ch->out; out != end; out = out->next) {
            p = ngx_cpymem(p, out->pos, out->last - out->pos);
        }

        a.len = size;

        if (slen) {
            a.session.data = p;
            a.session.len = ngx_goim_comet_session(p, &ch->node.str) - p;
        }
    }

    if (a.cursor > poll->sent) {
        poll->sent = a.cursor;
    }

    if (w->open) {
        poll->opened = 1;
    }

    w->answer(w, &a);

    if (a.body) {
        ngx_free(a.body);
    }
}


/*
 * w is not held any more; the session waits for its next poll, up to
 * goim_comet_poll_idle (while it authenticates, the handshake's deadline
 * stays).
 */

static void
ngx_goim_comet_poll_detach(ngx_goim_channel_t *ch, ngx_goim_comet_waiter_t *w)
{
    ngx_goim_comet_poll_t  *poll;

    poll = ch->poll;
    w->channel = NULL;

    if (poll->held != w) {
        return;
    }

    poll->held = NULL;

    if (poll->timer.timer_set) {
        ngx_del_timer(&poll->timer);
    }

    if (ch->state == NGX_GOIM_CHANNEL_ONLINE) {
        ngx_add_timer(ch->connection->read, ch->conf->poll_idle);
    }
}


static size_t
ngx_goim_comet_poll_max(ngx_goim_channel_t *ch)
{
    size_t  max;

    max = NGX_GOIM_COMET_POLL_MAX;

    if (ch->worker->sh && ch->worker->conf->ring_size / 4 < max) {
        max = ch->worker->conf->ring_size / 4;
    }

    return max;
}
