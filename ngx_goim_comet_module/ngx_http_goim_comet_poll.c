
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/eventfd.h>

#include "ngx_goim_comet.h"
#include "ngx_http_goim_comet.h"


/*
 * goim over long-polls (docs/protocol.md, "Long-poll subscribers"): the
 * open's token makes a channel that lives on a connection without a
 * socket (a session), and each poll is an ordinary request, held until
 * the session has events for it (its waiter), on any worker: one that
 * does not hold the session sends the poll to the one that does through
 * its ring (ngx_goim_comet_relay.c).  The sessions' cursors and answers
 * are ngx_goim_comet_poll.c's.
 */


/* a long-poll request, its open's too, while it waits for its answer */
typedef struct {
    ngx_goim_comet_waiter_t    waiter;
    ngx_http_request_t        *request;
    ngx_event_t                guard;         /* another worker's answer is
                                                 late */
} ngx_http_goim_comet_poll_ctx_t;


/* past the owner's goim_comet_poll_timeout: its answer is lost */
#define NGX_HTTP_GOIM_COMET_POLL_GUARD  2000


static ngx_int_t ngx_http_goim_comet_poll_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_goim_comet_poll_open(ngx_http_request_t *r,
    ngx_http_goim_comet_poll_ctx_t *ctx);
static ngx_int_t ngx_http_goim_comet_poll_next(ngx_http_request_t *r,
    ngx_http_goim_comet_poll_ctx_t *ctx, ngx_str_t *arg);
static ngx_connection_t *ngx_http_goim_comet_poll_connection(
    ngx_http_request_t *r);
static void ngx_http_goim_comet_poll_finalize(ngx_goim_channel_t *ch);
static void ngx_http_goim_comet_poll_answer(ngx_goim_comet_waiter_t *w,
    ngx_goim_comet_answer_t *a);
static void ngx_http_goim_comet_poll_guard(ngx_event_t *ev);
static void ngx_http_goim_comet_poll_cleanup(void *data);
static ngx_int_t ngx_http_goim_comet_poll_watch(ngx_goim_comet_worker_t *wk);
static void ngx_http_goim_comet_poll_quit(ngx_event_t *rev);
static ngx_int_t ngx_http_goim_comet_header_out(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);


/*
 * A long-poll (docs/protocol.md, "Long-poll subscribers"): a GET with a
 * token opens a session, answered with op 8's event, what else is queued
 * and the session's id; a GET with session=MAC.KEY&cursor=N polls it.
 * Both wait as ordinary requests do (r->main->count), so the connection
 * stays HTTP's: keep-alive, the access log, a browser's reuse of it.
 */

static ngx_int_t
ngx_http_goim_comet_poll_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        arg;
    ngx_pool_cleanup_t              *cln;
    ngx_http_goim_comet_poll_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    if (r->method != NGX_HTTP_GET) {
        return ngx_http_goim_comet_json(r, NGX_HTTP_NOT_ALLOWED,
                                        "a poll is a GET");
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        return ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                        "a poll has no body");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_goim_comet_poll_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->waiter.answer = ngx_http_goim_comet_poll_answer;
    ctx->waiter.data = ctx;
    ctx->guard.handler = ngx_http_goim_comet_poll_guard;
    ctx->guard.data = ctx;
    ctx->guard.log = r->connection->log;
    ctx->guard.cancelable = 1;

    cln->handler = ngx_http_goim_comet_poll_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_goim_comet_module);

    if (ngx_http_arg(r, (u_char *) "session", 7, &arg) == NGX_OK) {
        return ngx_http_goim_comet_poll_next(r, ctx, &arg);
    }

    return ngx_http_goim_comet_poll_open(r, ctx);
}


/* the token and Last-Event-ID as SSE's; the session starts here */

static ngx_int_t
ngx_http_goim_comet_poll_open(ngx_http_request_t *r,
    ngx_http_goim_comet_poll_ctx_t *ctx)
{
    uint64_t                         epoch[2], seq[2];
    ngx_int_t                        rc;
    ngx_str_t                        auth;
    ngx_uint_t                       resume;
    ngx_connection_t                *c;
    ngx_goim_channel_t              *ch;
    ngx_goim_comet_worker_t         *wk;
    ngx_http_goim_comet_loc_conf_t  *glcf;

    wk = ngx_goim_comet_worker;
    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_comet_module);

    if (ngx_http_goim_comet_subscription(r, glcf->channel.max_body, &auth,
                                         epoch, seq, &resume, &rc)
        != NGX_OK)
    {
        return rc;
    }

    if (ngx_exiting || ngx_terminate) {
        return ngx_http_goim_comet_json(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "worker is shutting down");
    }

    if (wk->poll_watch == NULL && ngx_http_goim_comet_poll_watch(wk) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    c = ngx_http_goim_comet_poll_connection(r);
    if (c == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ch = ngx_goim_channel_create(c, &glcf->channel, NGX_GOIM_CHANNEL_POLL,
                                 ngx_http_goim_comet_poll_finalize, NULL);
    if (ch == NULL) {
        c->destroyed = 1;
        ngx_destroy_pool(c->pool);
        c->pool = NULL;
        c->fd = 0;
        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (resume) {
        ch->sse->resume = 1;
        ngx_memcpy(ch->sse->resume_epoch, epoch, sizeof(epoch));
        ngx_memcpy(ch->sse->resume_seq, seq, sizeof(seq));
    }

    ngx_goim_comet_poll_open(ch, &ctx->waiter);

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;
    r->main->count++;

    /* its answer, an error included, may be given before this returns */
    ngx_goim_channel_start(ch, auth.data, auth.len);

    return NGX_DONE;
}


/* a poll of a session, on whichever worker holds it */

static ngx_int_t
ngx_http_goim_comet_poll_next(ngx_http_request_t *r,
    ngx_http_goim_comet_poll_ctx_t *ctx, ngx_str_t *arg)
{
    off_t                            cursor;
    u_char                          *dst, *src;
    ngx_int_t                        rc;
    ngx_str_t                        session, key, value;
    ngx_goim_comet_worker_t         *wk;
    ngx_http_goim_comet_loc_conf_t  *glcf;

    wk = ngx_goim_comet_worker;
    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_comet_module);

    session.data = ngx_pnalloc(r->pool, arg->len);
    if (session.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dst = session.data;
    src = arg->data;
    ngx_unescape_uri(&dst, &src, arg->len, 0);
    session.len = dst - session.data;

    if (ngx_goim_comet_session_key(&session, &key) != NGX_OK) {
        return ngx_http_goim_comet_json(r, NGX_HTTP_FORBIDDEN,
                                        "not a session id comet gave");
    }

    cursor = NGX_ERROR;

    if (ngx_http_arg(r, (u_char *) "cursor", 6, &value) == NGX_OK
        && value.len)
    {
        cursor = ngx_atoof(value.data, value.len);
    }

    if (cursor == NGX_ERROR) {
        return ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                        "cursor missing or not a number: "
                                        "the last answer's X-Goim-Cursor");
    }

    if (ngx_exiting || ngx_terminate) {
        /* every session of this generation is closed by now */
        return ngx_http_goim_comet_json(r, NGX_HTTP_NOT_FOUND,
                                        "no poll session with this key "
                                        "(lost in a reload): authenticate "
                                        "again");
    }

    /* a poll held for another worker is answered too when this one quits */
    if (wk->poll_watch == NULL && ngx_http_goim_comet_poll_watch(wk) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->waiter.cursor = (uint64_t) cursor;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;
    r->main->count++;

    /* answered before this returns, or held, here or by its worker */
    rc = ngx_goim_comet_relay_poll_request(wk, &key, &ctx->waiter);

    if (rc == NGX_OK) {
        if (ctx->waiter.remote) {
            ngx_add_timer(&ctx->guard, glcf->channel.poll_timeout
                                       + NGX_HTTP_GOIM_COMET_POLL_GUARD);
        }

        return NGX_DONE;
    }

    r->main->count--;
    r->read_event_handler = ngx_http_block_reading;

    switch (rc) {

    case NGX_DECLINED:
        return ngx_http_goim_comet_json(r, NGX_HTTP_NOT_FOUND,
                                        "no poll session with this key "
                                        "(expired, closed, or never made "
                                        "here): authenticate again");

    case NGX_BUSY:
        return ngx_http_goim_comet_json(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "the session's worker queue is "
                                        "full");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/*
 * A session's connection: no socket (fd -1, so nginx never reads, writes
 * or closes it), timers and the write event the channel posts itself,
 * its own pool and log (the location's), the client's address for logic.
 */

static ngx_connection_t *
ngx_http_goim_comet_poll_connection(ngx_http_request_t *r)
{
    ngx_log_t         *log;
    ngx_pool_t        *pool;
    ngx_connection_t  *c;

    /* any valid descriptor for ngx_get_connection()'s check: not kept */
    c = ngx_get_connection(0, r->connection->log);
    if (c == NULL) {
        return NULL;
    }

    c->fd = (ngx_socket_t) -1;

    pool = ngx_create_pool(1024, r->connection->log);
    if (pool == NULL) {
        goto failed;
    }

    c->pool = pool;

    log = ngx_palloc(pool, sizeof(ngx_log_t));
    c->addr_text.data = ngx_pnalloc(pool, r->connection->addr_text.len + 1);

    if (log == NULL || c->addr_text.data == NULL) {
        ngx_destroy_pool(pool);
        goto failed;
    }

    c->addr_text.len = r->connection->addr_text.len;
    ngx_memcpy(c->addr_text.data, r->connection->addr_text.data,
               c->addr_text.len);

    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);

    /* the location's error log; not the request's context, gone soon */
    *log = *r->connection->log;
    log->connection = c->number;
    log->handler = NULL;
    log->data = NULL;
    log->action = "serving goim poll session";

    /* the session outlives the request's connection, and its log */
    pool->log = log;

    c->log = log;
    c->read->log = log;
    c->write->log = log;

    return c;

failed:

    c->fd = 0;
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    return NULL;
}


/* the channel closed: its connection goes, as one without a socket does */

static void
ngx_http_goim_comet_poll_finalize(ngx_goim_channel_t *ch)
{
    ngx_pool_t        *pool;
    ngx_connection_t  *c;

    c = ch->connection;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->read->closed = 1;
    c->write->closed = 1;
    c->destroyed = 1;

    pool = c->pool;
    c->pool = NULL;

    c->fd = 0;
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    /* ch with it */
    ngx_destroy_pool(pool);
}


/* w's answer: the request ends with it */

static void
ngx_http_goim_comet_poll_answer(ngx_goim_comet_waiter_t *w,
    ngx_goim_comet_answer_t *a)
{
    u_char                          *p;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_str_t                        value;
    ngx_uint_t                       i;
    ngx_http_request_t              *r;
    ngx_http_goim_comet_poll_ctx_t  *ctx;

    ctx = w->data;
    r = ctx->request;

    if (ctx->guard.timer_set) {
        ngx_del_timer(&ctx->guard);
    }

    r->read_event_handler = ngx_http_block_reading;

    if (a->status != NGX_HTTP_OK) {
        p = ngx_pnalloc(r->pool, a->len + 1);
        if (p == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(p, a->body, a->len);
        p[a->len] = '\0';

        ngx_http_finalize_request(r, ngx_http_goim_comet_json(r, a->status,
                                                              (char *) p));
        return;
    }

    /* an empty answer's buffer holds no memory: only last_buf */
    b = a->len ? ngx_create_temp_buf(r->pool, a->len) : ngx_calloc_buf(r->pool);
    value.data = ngx_pnalloc(r->pool, NGX_INT64_LEN);

    if (b == NULL || value.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (a->len) {
        b->last = ngx_cpymem(b->last, a->body, a->len);
    }

    value.len = ngx_sprintf(value.data, "%uL", a->cursor) - value.data;

    if (ngx_http_goim_comet_header_out(r, "X-Goim-Cursor", &value) != NGX_OK
        || ngx_http_goim_comet_header_out(r, "Cache-Control",
                                          &(ngx_str_t)
                                          ngx_string("no-cache"))
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (a->session.len) {
        /* a key a header cannot carry: op 8's event has it anyway */
        for (i = 0; i < a->session.len; i++) {
            if (a->session.data[i] <= 0x20 || a->session.data[i] >= 0x7f) {
                break;
            }
        }

        value.data = ngx_pnalloc(r->pool, a->session.len);

        if (i == a->session.len && value.data) {
            value.len = a->session.len;
            ngx_memcpy(value.data, a->session.data, value.len);

            if (ngx_http_goim_comet_header_out(r, "X-Goim-Session", &value)
                != NGX_OK)
            {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        }
    }

    ngx_goim_comet_worker->stats->poll_answered++;

    rc = ngx_http_goim_comet_send(r, NGX_HTTP_OK,
                                  &(ngx_str_t)
                                  ngx_string("text/event-stream"), b);

    ngx_http_finalize_request(r, rc);
}


/* the answer of the worker holding the session did not come in time */

static void
ngx_http_goim_comet_poll_guard(ngx_event_t *ev)
{
    ngx_http_goim_comet_poll_ctx_t *ctx = ev->data;

    ngx_goim_comet_relay_poll_cancel(ngx_goim_comet_worker, &ctx->waiter);

    ngx_goim_comet_worker->stats->poll_timeouts++;

    ngx_goim_comet_poll_reply(&ctx->waiter, NGX_HTTP_OK, ctx->waiter.cursor,
                              NULL);
}


/* the request goes (answered, or the client closed): nothing waits */

static void
ngx_http_goim_comet_poll_cleanup(void *data)
{
    ngx_http_goim_comet_poll_ctx_t *ctx = data;

    if (ctx->guard.timer_set) {
        ngx_del_timer(&ctx->guard);
    }

    ngx_goim_comet_poll_cancel(&ctx->waiter);

    if (ngx_goim_comet_worker) {
        ngx_goim_comet_relay_poll_cancel(ngx_goim_comet_worker, &ctx->waiter);
    }
}


/*
 * Sessions have no socket nginx could close when the worker quits: this
 * idle connection (an eventfd nobody writes) is closed instead, and its
 * handler closes them, so that they are told to logic and the polls they
 * hold are answered before the worker goes.
 */

static ngx_int_t
ngx_http_goim_comet_poll_watch(ngx_goim_comet_worker_t *wk)
{
    int                fd;
    ngx_connection_t  *c;

    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd == -1) {
        ngx_log_error(NGX_LOG_ALERT, wk->cycle->log, ngx_errno,
                      "goim comet: eventfd() for poll sessions failed");
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, wk->cycle->log);
    if (c == NULL) {
        (void) close(fd);
        return NGX_ERROR;
    }

    c->data = wk;
    c->idle = 1;
    c->read->handler = ngx_http_goim_comet_poll_quit;
    c->read->log = wk->cycle->log;
    c->write->log = wk->cycle->log;

    wk->poll_watch = c;

    return NGX_OK;
}


static void
ngx_http_goim_comet_poll_quit(ngx_event_t *rev)
{
    ngx_uint_t                n;
    ngx_queue_t              *q, *next;
    ngx_connection_t         *c;
    ngx_goim_channel_t       *ch;
    ngx_goim_comet_worker_t  *wk;

    c = rev->data;
    wk = c->data;
    n = 0;

    for (q = ngx_queue_head(&wk->all);
         q != ngx_queue_sentinel(&wk->all);
         q = next)
    {
        next = ngx_queue_next(q);
        ch = ngx_queue_data(q, ngx_goim_channel_t, queue);

        if (ch->poll == NULL) {
            continue;
        }

        ngx_goim_comet_handoff_drained();
        ngx_goim_channel_drain(ch, 0);
        n++;
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "goim comet: worker quits, %ui poll session(s) closed", n);

    ngx_goim_comet_relay_poll_lost(wk);

    wk->poll_watch = NULL;
    ngx_close_connection(c);
}


static ngx_int_t
ngx_http_goim_comet_header_out(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.len = ngx_strlen(name);
    h->key.data = (u_char *) name;
    h->value = *value;

    return NGX_OK;
}


char *
ngx_http_goim_comet_poll(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_goim_comet_loc_conf_t *glcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (glcf->poll) {
        return "is duplicate";
    }

    glcf->poll = 1;

    /* a reload closes its sessions: their clients authenticate again */
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_goim_comet_poll_handler;

    return NGX_CONF_OK;
}
