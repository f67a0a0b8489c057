
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>

#include <goim_args.h>
#include <goim_ws_deflate.h>

#include "ngx_goim_comet.h"
#include "ngx_http_goim_comet.h"


/*
 * goim over WebSocket: the upgrade is checked here, then the connection
 * leaves HTTP for good.  The request and its header buffers are freed so
 * an idle client costs only its channel; bytes the client sent right
 * behind the handshake are handed to the channel first.  With
 * goim_comet_ws_deflate on, a permessage-deflate offer is answered here
 * (goim_ws_deflate.h) and the channel compresses (ngx_goim_comet_deflate.c).
 *
 * goim over Server-Sent Events the same way: the request's token becomes
 * the channel's op 7, the channel answers 200 once logic has let it in,
 * and an SSE control call makes the operations EventSource cannot send.
 *
 * goim over long-polls is ngx_http_goim_comet_poll.c's; what the
 * transports share of a request (its token, Last-Event-ID, goim's JSON
 * answers) ngx_http_goim_comet_request.c's.
 */


#define NGX_HTTP_GOIM_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


/* from the upgrade's handler to the takeover */
typedef struct {
    ngx_uint_t                 deflate;       /* permessage-deflate agreed */
} ngx_http_goim_comet_ctx_t;


/* an SSE request between its handler and its takeover */
typedef struct {
    ngx_str_t                  auth;          /* the op 7 packet */
    ngx_uint_t                 resume;
    uint64_t                   epoch[2];      /* Last-Event-ID's */
    uint64_t                   seq[2];
} ngx_http_goim_comet_sse_ctx_t;


static ngx_int_t ngx_http_goim_comet_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_goim_comet_status_handler(ngx_http_request_t *r);
static char *ngx_http_goim_comet_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_goim_comet_deflate_offer(ngx_http_request_t *r,
    ngx_str_t *answer);
static ngx_int_t ngx_http_goim_comet_refuse(ngx_http_request_t *r,
    const char *reason, ngx_uint_t version);
static ngx_int_t ngx_http_goim_comet_hand_over(ngx_http_request_t *r,
    ngx_event_handler_pt takeover);
static void ngx_http_goim_comet_takeover(ngx_event_t *rev);
static void ngx_http_goim_comet_release(ngx_http_request_t *r);
static ngx_int_t ngx_http_goim_comet_sse_handler(ngx_http_request_t *r);
static void ngx_http_goim_comet_sse_takeover(ngx_event_t *rev);
static ngx_int_t ngx_http_goim_comet_control_handler(ngx_http_request_t *r);
static void ngx_http_goim_comet_control_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_goim_comet_control(ngx_http_request_t *r);
static char *ngx_http_goim_comet_sse(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_goim_comet_sse_control(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_goim_comet_finalize(ngx_goim_channel_t *ch);
static char *ngx_http_goim_comet_ws(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_goim_comet_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_goim_comet_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_goim_comet_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);


static ngx_conf_num_bounds_t  ngx_http_goim_comet_queue_bounds = {
    ngx_conf_check_num_bounds, 1, 65536
};

static ngx_conf_num_bounds_t  ngx_http_goim_comet_max_accepts_bounds = {
    ngx_conf_check_num_bounds, 1, 65536
};


static ngx_command_t  ngx_http_goim_comet_commands[] = {

    { ngx_string("goim_comet_ws"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_comet_ws,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("goim_comet_sse"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_comet_sse,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("goim_comet_sse_control"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_comet_sse_control,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("goim_comet_sse_ping"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_goim_comet_loc_conf_t, channel.sse_ping),
      NULL },

    { ngx_string("goim_comet_poll"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_comet_poll,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("goim_comet_poll_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_goim_comet_loc_conf_t, channel.poll_timeout),
      NULL },

    { ngx_string("goim_comet_poll_idle"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_goim_comet_loc_conf_t, channel.poll_idle),
      NULL },

    { ngx_string("goim_comet_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_goim_comet_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("goim_comet_handshake_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_goim_comet_loc_conf_t, channel.handshake_timeout),
      NULL },

    { ngx_string("goim_comet_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_goim_comet_loc_conf_t, channel.max_body),
      NULL },

    { ngx_string("goim_comet_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_goim_comet_loc_conf_t, channel.queue_size),
      &ngx_http_goim_comet_queue_bounds },

    { ngx_string("goim_comet_max_accepts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_goim_comet_loc_conf_t, channel.max_accepts),
      &ngx_http_goim_comet_max_accepts_bounds },

    { ngx_string("goim_comet_ws_deflate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_goim_comet_loc_conf_t, channel.deflate),
      NULL },

    { ngx_string("goim_comet_ws_deflate_min_length"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_goim_comet_loc_conf_t, channel.deflate_min_length),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_goim_comet_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_goim_comet_postconfiguration, /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_goim_comet_create_loc_conf,   /* create location configuration */
    ngx_http_goim_comet_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_goim_comet_module = {
    NGX_MODULE_V1,
    &ngx_http_goim_comet_module_ctx,       /* module context */
    ngx_http_goim_comet_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_goim_comet_handler(ngx_http_request_t *r)
{
    u_char                          *p;
    size_t                           len;
    ngx_int_t                        rc;
    ngx_str_t                        key, decoded, accept, ext;
    ngx_sha1_t                       sha1;
    ngx_table_elt_t                 *h;
    ngx_http_goim_comet_ctx_t       *ctx;
    ngx_http_goim_comet_loc_conf_t  *glcf;
    u_char                           digest[20], buf[32];

    if (r != r->main) {
        return NGX_DECLINED;
    }

#if (NGX_HTTP_V2)
    if (r->stream) {
        return ngx_http_goim_comet_refuse(r, "WebSocket over HTTP/2 is not "
                                          "supported", 0);
    }
#endif

    if (r->method != NGX_HTTP_GET) {
        return ngx_http_goim_comet_refuse(r, "the upgrade must be a GET", 0);
    }

    if (r->http_version < NGX_HTTP_VERSION_11) {
        return ngx_http_goim_comet_refuse(r, "the upgrade needs HTTP/1.1", 0);
    }

    h = r->headers_in.upgrade;

    if (h == NULL || h->value.len != 9
        || ngx_strncasecmp(h->value.data, (u_char *) "websocket", 9) != 0)
    {
        return ngx_http_goim_comet_refuse(r, "\"Upgrade: websocket\" "
                                          "is missing", 0);
    }

    /* nginx 1.22 parses Connection without keeping it in headers_in */
    h = ngx_http_goim_comet_header(r, "Connection");

    if (h == NULL
        || ngx_strlcasestrn(h->value.data, h->value.data + h->value.len,
                            (u_char *) "upgrade", 7 - 1) == NULL)
    {
        return ngx_http_goim_comet_refuse(r, "\"Connection: upgrade\" "
                                          "is missing", 0);
    }

    h = ngx_http_goim_comet_header(r, "Sec-WebSocket-Version");

    if (h == NULL || h->value.len != 2
        || ngx_strncmp(h->value.data, "13", 2) != 0)
    {
        return ngx_http_goim_comet_refuse(r, "Sec-WebSocket-Version "
                                          "must be 13", 1);
    }

    h = ngx_http_goim_comet_header(r, "Sec-WebSocket-Key");

    key = h ? h->value : (ngx_str_t) ngx_null_string;

    decoded.data = buf;

    if (key.len != 24
        || ngx_decode_base64(&decoded, &key) != NGX_OK
        || decoded.len != 16)
    {
        return ngx_http_goim_comet_refuse(r, "Sec-WebSocket-Key is missing "
                                          "or not 16 bytes in base64", 0);
    }

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key.data, key.len);
    ngx_sha1_update(&sha1, NGX_HTTP_GOIM_WS_GUID,
                    sizeof(NGX_HTTP_GOIM_WS_GUID) - 1);
    ngx_sha1_final(digest, &sha1);

    accept.data = buf;
    ngx_encode_base64(&accept, &(ngx_str_t) { 20, digest });

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_goim_comet_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_goim_comet_module);

    ngx_str_null(&ext);

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_comet_module);

    if (glcf->channel.deflate) {
        rc = ngx_http_goim_comet_deflate_offer(r, &ext);

        if (rc == NGX_DECLINED) {
            return ngx_http_goim_comet_refuse(r, "Sec-WebSocket-Extensions "
                                              "is malformed", 0);
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->deflate = (ext.len != 0);
    }

    /*
     * The 101 answer is written by the channel itself, so no output of
     * the request is pending when the request is freed.
     */

    len = sizeof("HTTP/1.1 101 Switching Protocols" CRLF
                 "Upgrade: websocket" CRLF
                 "Connection: Upgrade" CRLF
                 "Sec-WebSocket-Accept: " CRLF CRLF) - 1
          + accept.len;

    if (ext.len) {
        len += sizeof("Sec-WebSocket-Extensions: " CRLF) - 1 + ext.len;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status_line.data = p;
    p = ngx_cpymem(p, "HTTP/1.1 101 Switching Protocols" CRLF
                      "Upgrade: websocket" CRLF
                      "Connection: Upgrade" CRLF
                      "Sec-WebSocket-Accept: ",
                   sizeof("HTTP/1.1 101 Switching Protocols" CRLF
                          "Upgrade: websocket" CRLF
                          "Connection: Upgrade" CRLF
                          "Sec-WebSocket-Accept: ") - 1);
    p = ngx_cpymem(p, accept.data, accept.len);

    if (ext.len) {
        p = ngx_cpymem(p, CRLF "Sec-WebSocket-Extensions: ",
                       sizeof(CRLF "Sec-WebSocket-Extensions: ") - 1);
        p = ngx_cpymem(p, ext.data, ext.len);
    }

    p = ngx_cpymem(p, CRLF CRLF, 4);
    r->headers_out.status_line.len = p - r->headers_out.status_line.data;

    /* for the access log */
    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;

    return ngx_http_goim_comet_hand_over(r, ngx_http_goim_comet_takeover);
}


/*
 * The request stays (its count) until takeover runs, posted, outside the
 * phase handlers; the connection is never kept alive for HTTP.
 */

static ngx_int_t
ngx_http_goim_comet_hand_over(ngx_http_request_t *r,
    ngx_event_handler_pt takeover)
{
    ngx_connection_t  *c;

    c = r->connection;

    r->keepalive = 0;
    r->main->count++;

    c->read->handler = takeover;
    c->write->handler = ngx_http_empty_handler;

    ngx_post_event(c->read, &ngx_posted_events);

    return NGX_DONE;
}


/*
 * The client's permessage-deflate offers, every Sec-WebSocket-Extensions
 * header in order: answer is the extension accepted, or empty when none
 * is (offers RFC 7692 §7 says to decline are logged, and the upgrade goes
 * on without it).  NGX_DECLINED: a header breaks RFC 6455 §9.1's grammar,
 * which fails the upgrade.
 */

static ngx_int_t
ngx_http_goim_comet_deflate_offer(ngx_http_request_t *r, ngx_str_t *answer)
{
    size_t                    n;
    ngx_uint_t                i;
    ngx_list_part_t          *part;
    ngx_table_elt_t          *h;
    goim_ws_deflate_rc_t      rc;
    goim_ws_deflate_offer_t   offer;
    char                      buf[128];

    ngx_memzero(&offer, sizeof(goim_ws_deflate_offer_t));
    rc = GOIM_WS_DEFLATE_NONE;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != sizeof("Sec-WebSocket-Extensions") - 1
            || ngx_strncasecmp(h[i].key.data,
                               (u_char *) "Sec-WebSocket-Extensions",
                               h[i].key.len)
               != 0)
        {
            continue;
        }

        rc = goim_ws_deflate_offer((char *) h[i].value.data, h[i].value.len,
                                   &offer);

        if (rc == GOIM_WS_DEFLATE_MALFORMED) {
            return NGX_DECLINED;
        }

        if (rc == GOIM_WS_DEFLATE_ACCEPT) {
            break;
        }
    }

    if (offer.declined) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "goim comet: %ui permessage-deflate offer(s) declined, "
                      "the last: %s", (ngx_uint_t) offer.declined, offer.why);
    }

    if (rc != GOIM_WS_DEFLATE_ACCEPT) {
        return NGX_OK;
    }

    n = goim_ws_deflate_response(&offer, buf, sizeof(buf));
    if (n == 0) {
        return NGX_ERROR;
    }

    answer->data = ngx_pnalloc(r->pool, n);
    if (answer->data == NULL) {
        return NGX_ERROR;
    }

    answer->len = n;
    ngx_memcpy(answer->data, buf, n);

    return NGX_OK;
}


static ngx_int_t
ngx_http_goim_comet_refuse(ngx_http_request_t *r, const char *reason,
    ngx_uint_t version)
{
    size_t            len;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_table_elt_t  *h;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "goim comet: WebSocket upgrade refused: %s", reason);

    len = ngx_strlen(reason);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, reason, len);
    *b->last++ = LF;

    if (version) {
        /* RFC 6455 §4.4: say which version the server speaks */
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Sec-WebSocket-Version");
        ngx_str_set(&h->value, "13");
    }

    /* a client that wanted another protocol gets no keepalive of HTTP */
    r->keepalive = 0;

    return ngx_http_goim_comet_send(r, NGX_HTTP_BAD_REQUEST,
                                    &(ngx_str_t) ngx_string("text/plain"), b);
}


/* runs once, outside the HTTP phase handlers: the request can go now */

static void
ngx_http_goim_comet_takeover(ngx_event_t *rev)
{
    u_char                          *early;
    size_t                           len;
    ngx_buf_t                       *b;
    ngx_connection_t                *c;
    ngx_goim_channel_t              *ch;
    ngx_http_request_t              *r;
    ngx_goim_comet_msg_t            *msg;
    ngx_http_goim_comet_ctx_t       *ctx;
    ngx_http_goim_comet_loc_conf_t  *glcf;

    c = rev->data;
    r = c->data;
    msg = NULL;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_comet_module);

    ctx = ngx_http_get_module_ctx(r, ngx_http_goim_comet_module);

    ch = ngx_goim_channel_create(c, &glcf->channel, 1,
                                 ngx_http_goim_comet_finalize, c);

    msg = ngx_goim_comet_msg_create(r->headers_out.status_line.len, c->log);

    if (ch == NULL || msg == NULL) {
        goto failed;
    }

    ch->deflate = ctx->deflate;

    ngx_memcpy(msg->data, r->headers_out.status_line.data, msg->len);
    msg->frame = 1;

    if (ngx_goim_channel_enqueue_raw(ch, msg) != NGX_OK) {
        goto failed;
    }

    ngx_goim_comet_msg_release(msg);
    msg = NULL;

    /* what came behind the handshake, copied before its buffer goes */

    b = r->header_in;
    len = b->last - b->pos;
    early = NULL;

    if (len) {
        early = ngx_alloc(len, c->log);
        if (early == NULL) {
            goto failed;
        }

        ngx_memcpy(early, b->pos, len);
    }

    c->log->action = "serving goim WebSocket client";

    ngx_http_goim_comet_release(r);

    ngx_goim_channel_start(ch, early, len);

    if (early) {
        ngx_free(early);
    }

    return;

failed:

    if (msg) {
        ngx_goim_comet_msg_release(msg);
    }

    /* the count taken in the handler: the request ends here */
    r->main->count--;
    ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/* the request goes, with its header buffers: the channel has c now */

static void
ngx_http_goim_comet_release(ngx_http_request_t *r)
{
    ngx_chain_t            *cl, *ln;
    ngx_connection_t       *c;
    ngx_http_connection_t  *hc;

    c = r->connection;
    hc = r->http_connection;

    ngx_http_free_request(r, 0);
    c->destroyed = 0;

    if (c->buffer) {
        ngx_pfree(c->pool, c->buffer->start);
        c->buffer = NULL;
    }

    for (cl = hc->busy; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
    }

    for (cl = hc->free; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
    }

    hc->busy = NULL;
    hc->free = NULL;
    hc->nbusy = 0;
}


/*
 * An SSE subscriber: the token (a header, a cookie or the query, in that
 * order: docs/protocol.md says why) and Last-Event-ID are checked here,
 * so a bad one gets its 4xx before anything else; the rest, logic's
 * answer above all, is the channel's.
 */

static ngx_int_t
ngx_http_goim_comet_sse_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_goim_comet_sse_ctx_t   *ctx;
    ngx_http_goim_comet_loc_conf_t  *glcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    if (r->method != NGX_HTTP_GET) {
        return ngx_http_goim_comet_json(r, NGX_HTTP_NOT_ALLOWED,
                                        "an SSE subscription is a GET");
    }

#if (NGX_HTTP_V2)
    if (r->stream) {
        return ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                        "SSE over HTTP/2 is not supported");
    }
#endif

    /* a body would still be on its way when the channel takes over */
    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        r->keepalive = 0;
        return ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                        "an SSE subscription has no body");
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_comet_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_goim_comet_sse_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_goim_comet_subscription(r, glcf->channel.max_body,
                                         &ctx->auth, ctx->epoch, ctx->seq,
                                         &ctx->resume, &rc)
        != NGX_OK)
    {
        return rc;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_goim_comet_module);

    /* for the access log: the stream's answer is the channel's */
    r->headers_out.status = NGX_HTTP_OK;

    return ngx_http_goim_comet_hand_over(r, ngx_http_goim_comet_sse_takeover);
}


static void
ngx_http_goim_comet_sse_takeover(ngx_event_t *rev)
{
    ngx_connection_t                *c;
    ngx_goim_channel_t              *ch;
    ngx_http_request_t              *r;
    ngx_http_goim_comet_sse_ctx_t   *ctx;
    ngx_http_goim_comet_loc_conf_t  *glcf;
    u_char                          *auth;
    size_t                           len;

    c = rev->data;
    r = c->data;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_comet_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_goim_comet_module);

    ch = ngx_goim_channel_create(c, &glcf->channel, NGX_GOIM_CHANNEL_SSE,
                                 ngx_http_goim_comet_finalize, c);

    /* the op 7, copied before the request's pool goes */
    len = ctx->auth.len;
    auth = ngx_alloc(len, c->log);

    if (ch == NULL || auth == NULL) {
        if (auth) {
            ngx_free(auth);
        }

        r->main->count--;
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(auth, ctx->auth.data, len);

    if (ctx->resume) {
        ch->sse->resume = 1;
        ngx_memcpy(ch->sse->resume_epoch, ctx->epoch, sizeof(ctx->epoch));
        ngx_memcpy(ch->sse->resume_seq, ctx->seq, sizeof(ctx->seq));
    }

    c->log->action = "serving goim SSE client";

    ngx_http_goim_comet_release(r);

    ngx_goim_channel_start(ch, auth, len);

    ngx_free(auth);
}


/*
 * POST ...?session=S&op=N with the operation's body: what an SSE client
 * would send itself if it could (op 12 change room, 14 sub, 16 unsub, 18
 * ack), applied by the worker holding the session's connection.  202
 * once that worker has it, the reply comes on the stream.
 */

static ngx_int_t
ngx_http_goim_comet_control_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_goim_comet_loc_conf_t  *glcf;

    if (r->method != NGX_HTTP_POST) {
        ngx_goim_comet_worker->stats->ctl_refused++;
        return ngx_http_goim_comet_json(r, NGX_HTTP_NOT_ALLOWED,
                                        "a control call is a POST");
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_comet_module);

    if (r->headers_in.content_length_n > (off_t) glcf->channel.max_body) {
        ngx_goim_comet_worker->stats->ctl_refused++;
        r->keepalive = 0;
        return ngx_http_goim_comet_json(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "body longer than "
                                        "goim_comet_max_body");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                          ngx_http_goim_comet_control_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_goim_comet_control_body(ngx_http_request_t *r)
{
    ngx_http_finalize_request(r, ngx_http_goim_comet_control(r));
}


static ngx_int_t
ngx_http_goim_comet_control(ngx_http_request_t *r)
{
    u_char                          *dst, *src, *body, *lf;
    size_t                           len;
    int32_t                         *ops;
    uint64_t                         epoch, seq;
    ngx_int_t                        op, rc;
    ngx_str_t                        arg, session, key;
    ngx_buf_t                       *b;
    ngx_uint_t                       n;
    ngx_goim_comet_worker_t         *wk;
    ngx_http_goim_comet_loc_conf_t  *glcf;

    wk = ngx_goim_comet_worker;
    glcf = ngx_http_get_module_loc_conf(r, ngx_http_goim_comet_module);

    /* the body, in memory (request_body_in_single_buf) */

    body = (u_char *) "";
    len = 0;

    if (r->request_body && r->request_body->bufs) {
        b = r->request_body->bufs->buf;

        if (b->in_file || r->request_body->bufs->next) {
            wk->stats->ctl_refused++;
            return ngx_http_goim_comet_json(r,
                                       NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "body longer than "
                                       "client_body_buffer_size");
        }

        body = b->pos;
        len = b->last - b->pos;
    }

    if (len > glcf->channel.max_body) {
        wk->stats->ctl_refused++;
        return ngx_http_goim_comet_json(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "body longer than "
                                        "goim_comet_max_body");
    }

    if (ngx_http_arg(r, (u_char *) "session", 7, &arg) != NGX_OK
        || arg.len == 0)
    {
        wk->stats->ctl_refused++;
        return ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                        "no session argument");
    }

    session.data = ngx_pnalloc(r->pool, arg.len);
    if (session.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dst = session.data;
    src = arg.data;
    ngx_unescape_uri(&dst, &src, arg.len, 0);
    session.len = dst - session.data;

    if (ngx_goim_comet_session_key(&session, &key) != NGX_OK) {
        wk->stats->ctl_refused++;
        return ngx_http_goim_comet_json(r, NGX_HTTP_FORBIDDEN,
                                        "not a session id comet gave");
    }

    op = NGX_ERROR;

    if (ngx_http_arg(r, (u_char *) "op", 2, &arg) == NGX_OK) {
        op = ngx_atoi(arg.data, arg.len);
    }

    switch (op) {

    case GOIM_OP_CHANGE_ROOM:
        /* "room" or "room\nEPOCH:SEQ": a bad position would close */
        lf = ngx_strlchr(body, body + len, '\n');

        if (lf && goim_args_position((char *) lf + 1, body + len - lf - 1,
                                     &epoch, &seq)
                  != 0)
        {
            wk->stats->ctl_refused++;
            return ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                            "op 12: the position after the "
                                            "room is not EPOCH:SEQ");
        }

        break;

    case GOIM_OP_SUB:
    case GOIM_OP_UNSUB:
        /* goim ignores a bad list; a call is told */
        n = ngx_goim_opset_count(body, len);

        if (n) {
            ops = ngx_palloc(r->pool, n * sizeof(int32_t));
            if (ops == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (ngx_goim_opset_parse(body, len, ops, &n) != NGX_OK) {
                wk->stats->ctl_refused++;
                return ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                                "the body is not a list of "
                                                "operations: \"1000,1001\"");
            }
        }

        break;

    case GOIM_OP_ACK:
        break;

    default:
        wk->stats->ctl_refused++;
        return ngx_http_goim_comet_json(r, NGX_HTTP_BAD_REQUEST,
                                        "op must be 12 (change room), 14 "
                                        "(sub), 16 (unsub) or 18 (ack)");
    }

    rc = ngx_goim_comet_relay_control(wk, &key, (int32_t) op, body, len);

    switch (rc) {

    case NGX_OK:
        return ngx_http_goim_comet_json(r, NGX_HTTP_ACCEPTED, NULL);

    case NGX_DECLINED:
        wk->stats->ctl_refused++;
        return ngx_http_goim_comet_json(r, NGX_HTTP_NOT_FOUND,
                                        "no SSE or poll session with this "
                                        "session's key");

    case NGX_BUSY:
        wk->stats->ctl_refused++;
        return ngx_http_goim_comet_json(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "the connection's worker queue is "
                                        "full");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_http_goim_comet_finalize(ngx_goim_channel_t *ch)
{
    ngx_http_close_connection(ch->connection);
}


static char *
ngx_http_goim_comet_ws(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_goim_comet_loc_conf_t *glcf = conf;

    ngx_goim_comet_server_t   *srv;
    ngx_http_core_loc_conf_t  *clcf;

    if (glcf->enable) {
        return "is duplicate";
    }

    glcf->enable = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_goim_comet_handler;

    /* what takes a WebSocket client a reload hands over, by name */
    srv = ngx_goim_comet_server_add(cf);
    if (srv == NULL) {
        return NGX_CONF_ERROR;
    }

    srv->kind = NGX_GOIM_COMET_SERVER_WS;
    srv->conf = &glcf->channel;
    srv->http_srv = ngx_http_conf_get_module_srv_conf(cf,
                                                      ngx_http_core_module);
    srv->http_loc = clcf;

    return NGX_CONF_OK;
}


static char *
ngx_http_goim_comet_sse(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_goim_comet_loc_conf_t *glcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (glcf->sse) {
        return "is duplicate";
    }

    glcf->sse = 1;

    /* not handed on by a reload: closed, EventSource comes back */
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_goim_comet_sse_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_goim_comet_sse_control(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_goim_comet_control_handler;

    return NGX_CONF_OK;
}


/* the names and logs of the goim_comet_ws locations, merged by now */

static ngx_int_t
ngx_http_goim_comet_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                 i;
    ngx_goim_comet_conf_t     *ccf;
    ngx_goim_comet_server_t   *srv;
    ngx_http_core_srv_conf_t  *cscf;
    ngx_http_core_loc_conf_t  *clcf;

    ccf = ngx_goim_comet_get_conf(cf->cycle);

    if (ccf->servers == NULL) {
        return NGX_OK;
    }

    srv = ccf->servers->elts;

    for (i = 0; i < ccf->servers->nelts; i++) {
        if (srv[i].kind != NGX_GOIM_COMET_SERVER_WS) {
            continue;
        }

        cscf = srv[i].http_srv;
        clcf = srv[i].http_loc;

        srv[i].server_name = cscf->server_name;
        srv[i].location = clcf->name;
        srv[i].log = clcf->error_log;
    }

    return NGX_OK;
}


/*
 * The comet's counters over every worker: JSON, or Prometheus text with
 * ?format=prometheus.
 */

static ngx_int_t
ngx_http_goim_comet_status_handler(ngx_http_request_t *r)
{
    uint64_t                  queued;
    ngx_int_t                 rc;
    ngx_str_t                 format, type;
    ngx_buf_t                *b;
    ngx_uint_t                workers, keys, prometheus;
    ngx_goim_comet_worker_t  *wk;
    ngx_goim_comet_stats_t    st;
    ngx_goim_comet_handoff_stats_t  ho;

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    prometheus = (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
                  && format.len == 10
                  && ngx_strncmp(format.data, "prometheus", 10) == 0);

    wk = ngx_goim_comet_worker;
    ngx_goim_comet_tables_stats(wk, &st, &workers, &queued, &keys);
    ngx_goim_comet_handoff_stats(&ho);

    b = ngx_create_temp_buf(r->pool, 16384 + wk->conf->id.len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (prometheus) {
        b->last = ngx_sprintf(b->last,
            "# HELP goim_comet_connections Open client connections.\n"
            "# TYPE goim_comet_connections gauge\n"
            "goim_comet_connections{transport=\"tcp\"} %uA\n"
            "goim_comet_connections{transport=\"ws\"} %uA\n"
            "goim_comet_connections{transport=\"sse\"} %uA\n"
            "goim_comet_connections{transport=\"poll\"} %uA\n"
            "# HELP goim_comet_online Authenticated connections.\n"
            "# TYPE goim_comet_online gauge\n"
            "goim_comet_online %uA\n"
            "# HELP goim_comet_rooms Rooms with members, each counted once.\n"
            "# TYPE goim_comet_rooms gauge\n"
            "goim_comet_rooms %uA\n"
            "# HELP goim_comet_push_calls_total Push RPCs served.\n"
            "# TYPE goim_comet_push_calls_total counter\n"
            "goim_comet_push_calls_total %uA\n"
            "# HELP goim_comet_packets_out_total Packets written to "
            "clients.\n"
            "# TYPE goim_comet_packets_out_total counter\n"
            "goim_comet_packets_out_total %uA\n"
            "# HELP goim_comet_dropped_total Pushes dropped.\n"
            "# TYPE goim_comet_dropped_total counter\n"
            "goim_comet_dropped_total{reason=\"client_queue_full\"} %uA\n"
            "goim_comet_dropped_total{reason=\"worker_queue_full\"} %uA\n"
            "# HELP goim_comet_write_slices_total Times a worker left the "
            "rest of its writes (a long fan-out) for the next turn of its "
            "event loop.\n"
            "# TYPE goim_comet_write_slices_total counter\n"
            "goim_comet_write_slices_total %uA\n"
            "# HELP goim_comet_worker_records_total Records passed between "
            "workers.\n"
            "# TYPE goim_comet_worker_records_total counter\n"
            "goim_comet_worker_records_total %uA\n"
            "# HELP goim_comet_worker_queue_bytes Bytes waiting in the "
            "workers' queues.\n"
            "# TYPE goim_comet_worker_queue_bytes gauge\n"
            "goim_comet_worker_queue_bytes %uL\n"
            "# TYPE goim_comet_auth_failed_total counter\n"
            "goim_comet_auth_failed_total %uA\n"
            "# TYPE goim_comet_kicked_total counter\n"
            "goim_comet_kicked_total %uA\n"
            "# TYPE goim_comet_bad_input_total counter\n"
            "goim_comet_bad_input_total %uA\n"
            "# HELP goim_comet_locks_recovered_total Locks of the shared zone "
            "taken back from a dead worker.\n"
            "# TYPE goim_comet_locks_recovered_total counter\n"
            "goim_comet_locks_recovered_total %uA\n"
            "# HELP goim_comet_token_refused_total Connections closed for "
            "an op 12 or 14 their signed token does not allow.\n"
            "# TYPE goim_comet_token_refused_total counter\n"
            "goim_comet_token_refused_total %uA\n"
            "# TYPE goim_comet_workers gauge\n"
            "goim_comet_workers %ui\n"
            "# HELP goim_comet_worker_hop_us Time records waited between "
            "workers (upper bound of the bucket holding the quantile).\n"
            "# TYPE goim_comet_worker_hop_us gauge\n"
            "goim_comet_worker_hop_us{quantile=\"0.5\"} %ui\n"
            "goim_comet_worker_hop_us{quantile=\"0.99\"} %ui\n"
            "goim_comet_worker_hop_us{quantile=\"0.999\"} %ui\n"
            "# HELP goim_comet_keys Keys in the table shared by the workers.\n"
            "# TYPE goim_comet_keys gauge\n"
            "goim_comet_keys %ui\n"
            "# HELP goim_comet_rpc_auth_refused_total Push RPC connections "
            "refused by the handshake.\n"
            "# TYPE goim_comet_rpc_auth_refused_total counter\n"
            "goim_comet_rpc_auth_refused_total %uA\n"
            "# HELP goim_comet_rpc_link_resets_total Links to logic reset "
            "after timeouts in a row or a backlog.\n"
            "# TYPE goim_comet_rpc_link_resets_total counter\n"
            "goim_comet_rpc_link_resets_total %uA\n"
            "# HELP goim_comet_rpc_link_auth_failed_total Handshakes with "
            "logic that failed or timed out.\n"
            "# TYPE goim_comet_rpc_link_auth_failed_total counter\n"
            "goim_comet_rpc_link_auth_failed_total %uA\n"
            "# HELP goim_comet_rpc_sessions_paused_total Times a push RPC "
            "session stopped being read: its replies were not read.\n"
            "# TYPE goim_comet_rpc_sessions_paused_total counter\n"
            "goim_comet_rpc_sessions_paused_total %uA\n"
            "# HELP goim_comet_handoff_connections_total Client connections "
            "a reload handed to the new workers, adopted from the old ones, "
            "drained (closed for the client to reconnect), and failed "
            "hand-offs (drained too).\n"
            "# TYPE goim_comet_handoff_connections_total counter\n"
            "goim_comet_handoff_connections_total{event=\"handed_off\"} %uA\n"
            "goim_comet_handoff_connections_total{event=\"adopted\"} %uA\n"
            "goim_comet_handoff_connections_total{event=\"drained\"} %uA\n"
            "goim_comet_handoff_connections_total{event=\"failed\"} %uA\n"
            "# HELP goim_comet_handoff_sessions_total Push RPC connections "
            "(job's) a reload handed on, adopted, or closed.\n"
            "# TYPE goim_comet_handoff_sessions_total counter\n"
            "goim_comet_handoff_sessions_total{event=\"handed_off\"} %uA\n"
            "goim_comet_handoff_sessions_total{event=\"adopted\"} %uA\n"
            "goim_comet_handoff_sessions_total{event=\"closed\"} %uA\n"
            "# HELP goim_comet_handoff_freeze_us Time a handed-off connection "
            "was served by no process (upper bound of the bucket holding "
            "the quantile; the maximum).\n"
            "# TYPE goim_comet_handoff_freeze_us gauge\n"
            "goim_comet_handoff_freeze_us{quantile=\"0.5\"} %ui\n"
            "goim_comet_handoff_freeze_us{quantile=\"0.99\"} %ui\n"
            "goim_comet_handoff_freeze_us{quantile=\"1\"} %uA\n"
            "# HELP goim_comet_history_packets_total Room messages and "
            "broadcasts kept for recovery, evicted past "
            "goim_comet_room_history_size, dropped (out of memory), and "
            "sent to clients that came back.\n"
            "# TYPE goim_comet_history_packets_total counter\n"
            "goim_comet_history_packets_total{event=\"kept\"} %uA\n"
            "goim_comet_history_packets_total{event=\"evicted\"} %uA\n"
            "goim_comet_history_packets_total{event=\"dropped\"} %uA\n"
            "goim_comet_history_packets_total{event=\"recovered\"} %uA\n"
            "# HELP goim_comet_history_breaks_total Times a stream's history "
            "was cut by a gap in its positions.\n"
            "# TYPE goim_comet_history_breaks_total counter\n"
            "goim_comet_history_breaks_total %uA\n"
            "# HELP goim_comet_history_bytes Memory the room history holds, "
            "all workers.\n"
            "# TYPE goim_comet_history_bytes gauge\n"
            "goim_comet_history_bytes %uA\n"
            "# TYPE goim_comet_history_streams gauge\n"
            "goim_comet_history_streams %uA\n"
            "# HELP goim_comet_recoveries_total Clients that named a "
            "position: recovered, or told the gap is too old.\n"
            "# TYPE goim_comet_recoveries_total counter\n"
            "goim_comet_recoveries_total{result=\"recovered\"} %uA\n"
            "goim_comet_recoveries_total{result=\"gap\"} %uA\n"
            "# HELP goim_comet_deflate_messages_total Messages for "
            "permessage-deflate clients: compressed once, sent plain "
            "(no smaller compressed), sent plain (zlib failed).\n"
            "# TYPE goim_comet_deflate_messages_total counter\n"
            "goim_comet_deflate_messages_total{result=\"compressed\"} %uA\n"
            "goim_comet_deflate_messages_total{result=\"no_smaller\"} %uA\n"
            "goim_comet_deflate_messages_total{result=\"failed\"} %uA\n"
            "# HELP goim_comet_deflate_bytes_total The compressed messages' "
            "bytes, before and after.\n"
            "# TYPE goim_comet_deflate_bytes_total counter\n"
            "goim_comet_deflate_bytes_total{stage=\"in\"} %uA\n"
            "goim_comet_deflate_bytes_total{stage=\"out\"} %uA\n"
            "# HELP goim_comet_deflate_frames_total Compressed frames queued "
            "to clients.\n"
            "# TYPE goim_comet_deflate_frames_total counter\n"
            "goim_comet_deflate_frames_total %uA\n"
            "# HELP goim_comet_inflated_total Compressed client messages "
            "inflated.\n"
            "# TYPE goim_comet_inflated_total counter\n"
            "goim_comet_inflated_total %uA\n"
            "# HELP goim_comet_sse_total SSE comment lines written, "
            "heartbeats comet made for SSE clients, SSE clients closed for "
            "reading nothing.\n"
            "# TYPE goim_comet_sse_total counter\n"
            "goim_comet_sse_total{event=\"ping\"} %uA\n"
            "goim_comet_sse_total{event=\"heartbeat\"} %uA\n"
            "goim_comet_sse_total{event=\"stalled\"} %uA\n"
            "# HELP goim_comet_control_calls_total SSE control calls "
            "applied, and refused (4xx, 5xx).\n"
            "# TYPE goim_comet_control_calls_total counter\n"
            "goim_comet_control_calls_total{result=\"applied\"} %uA\n"
            "goim_comet_control_calls_total{result=\"refused\"} %uA\n"
            "# HELP goim_comet_poll_total Long-polls answered (200), held "
            "polls answered empty at their timeout, poll sessions closed "
            "for no poll within goim_comet_poll_idle.\n"
            "# TYPE goim_comet_poll_total counter\n"
            "goim_comet_poll_total{event=\"answered\"} %uA\n"
            "goim_comet_poll_total{event=\"timed_out\"} %uA\n"
            "goim_comet_poll_total{event=\"expired\"} %uA\n",
            st.conns_tcp, st.conns_ws, st.conns_sse, st.conns_poll, st.online,
            st.rooms,
            st.push_calls, st.packets_out, st.dropped, st.relay_dropped,
            st.write_slices, st.relay_records, queued, st.auth_failed,
            st.kicked, st.bad_input,
            st.locks_recovered, st.token_refused, workers,
            ngx_goim_comet_relay_hop_percentile(&st, 500),
            ngx_goim_comet_relay_hop_percentile(&st, 990),
            ngx_goim_comet_relay_hop_percentile(&st, 999), keys,
            st.rpc_auth_refused, st.rpc.link_resets, st.rpc.link_auth_failed,
            st.rpc.sessions_paused, ho.handed_off, ho.adopted, ho.drained,
            ho.failed, ho.sessions_handed_off, ho.sessions_adopted,
            ho.sessions_closed,
            ngx_goim_comet_handoff_freeze_percentile(&ho, 500),
            ngx_goim_comet_handoff_freeze_percentile(&ho, 990),
            ho.freeze_max_us, st.history_msgs, st.history_evicted,
            st.history_dropped, st.recovered_msgs, st.history_breaks,
            st.history_bytes, st.history_streams, st.recover_ok,
            st.recover_gap, st.deflated, st.deflate_skipped,
            st.deflate_failed, st.deflate_in, st.deflate_out,
            st.deflate_frames, st.inflated, st.sse_pings, st.sse_beats,
            st.sse_stalled, st.ctl_calls, st.ctl_refused, st.poll_answered,
            st.poll_timeouts, st.poll_expired);

        ngx_str_set(&type, "text/plain; version=0.0.4");

    } else {
        b->last = ngx_sprintf(b->last,
            "{\"id\":\"%V\",\"workers\":%ui,"
            "\"connections\":{\"tcp\":%uA,\"ws\":%uA,\"poll\":%uA,"
            "\"online\":%uA},"
            "\"rooms\":%uA,"
            "\"rpc\":{\"link_resets\":%uA,\"link_auth_failed\":%uA,"
            "\"sessions_paused\":%uA},"
            "\"messages\":{\"push_calls\":%uA,\"out\":%uA,"
            "\"dropped\":%uA,\"dropped_worker_queue\":%uA,"
            "\"write_slices\":%uA},"
            "\"workers_queue\":{\"records\":%uA,\"queued_bytes\":%uL,"
            "\"hop_us_p50\":%ui,\"hop_us_p99\":%ui,\"hop_us_p999\":%ui,"
            "\"keys\":%ui},\"locks_recovered\":%uA,\"token_refused\":%uA,"
            "\"handoff\":{\"handed_off\":%uA,\"adopted\":%uA,"
            "\"drained\":%uA,\"failed\":%uA,\"sessions_handed_off\":%uA,"
            "\"sessions_adopted\":%uA,\"sessions_closed\":%uA,"
            "\"freeze_us_p50\":%ui,\"freeze_us_p99\":%ui,"
            "\"freeze_us_max\":%uA},"
            "\"history\":{\"kept\":%uA,\"evicted\":%uA,\"dropped\":%uA,"
            "\"breaks\":%uA,\"bytes\":%uA,\"streams\":%uA,"
            "\"recovered\":%uA,\"gaps\":%uA,\"recovered_msgs\":%uA},"
            "\"deflate\":{\"messages\":%uA,\"skipped\":%uA,"
            "\"failed\":%uA,\"bytes_in\":%uA,\"bytes_out\":%uA,"
            "\"frames\":%uA,\"inflated\":%uA},"
            "\"sse\":{\"connections\":%uA,\"pings\":%uA,\"heartbeats\":%uA,"
            "\"stalled\":%uA,\"control_calls\":%uA,"
            "\"control_refused\":%uA},"
            "\"poll\":{\"sessions\":%uA,\"answered\":%uA,"
            "\"timed_out\":%uA,\"expired\":%uA},"
            "\"auth_failed\":%uA,\"kicked\":%uA,\"bad_input\":%uA,"
            "\"rpc_auth_refused\":%uA}\n",
            &wk->conf->id, workers, st.conns_tcp, st.conns_ws, st.conns_poll,
            st.online,
            st.rooms, st.rpc.link_resets, st.rpc.link_auth_failed,
            st.rpc.sessions_paused, st.push_calls, st.packets_out, st.dropped,
            st.relay_dropped, st.write_slices, st.relay_records, queued,
            ngx_goim_comet_relay_hop_percentile(&st, 500),
            ngx_goim_comet_relay_hop_percentile(&st, 990),
            ngx_goim_comet_relay_hop_percentile(&st, 999), keys,
            st.locks_recovered,
            st.token_refused, ho.handed_off, ho.adopted, ho.drained,
            ho.failed, ho.sessions_handed_off, ho.sessions_adopted,
            ho.sessions_closed,
            ngx_goim_comet_handoff_freeze_percentile(&ho, 500),
            ngx_goim_comet_handoff_freeze_percentile(&ho, 990),
            ho.freeze_max_us, st.history_msgs, st.history_evicted,
            st.history_dropped, st.history_breaks, st.history_bytes,
            st.history_streams, st.recover_ok, st.recover_gap,
            st.recovered_msgs, st.deflated, st.deflate_skipped,
            st.deflate_failed, st.deflate_in, st.deflate_out,
            st.deflate_frames, st.inflated, st.conns_sse, st.sse_pings,
            st.sse_beats, st.sse_stalled, st.ctl_calls, st.ctl_refused,
            st.conns_poll, st.poll_answered, st.poll_timeouts,
            st.poll_expired, st.auth_failed, st.kicked, st.bad_input,
            st.rpc_auth_refused);

        ngx_str_set(&type, "application/json");
    }

    return ngx_http_goim_comet_send(r, NGX_HTTP_OK, &type, b);
}


static char *
ngx_http_goim_comet_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_goim_comet_status_handler;

    return NGX_CONF_OK;
}


static void *
ngx_http_goim_comet_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_goim_comet_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_goim_comet_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->enable = 0;
     */

    ngx_goim_channel_conf_init(&conf->channel);

    return conf;
}


static char *
ngx_http_goim_comet_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_goim_comet_loc_conf_t *prev = parent;
    ngx_http_goim_comet_loc_conf_t *conf = child;

    return ngx_goim_channel_conf_merge(cf, &conf->channel, &prev->channel);
}
