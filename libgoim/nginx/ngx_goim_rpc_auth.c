
/*
 * Copyright (C) ngx_goim authors
 */


/*
 * The handshake of the RPC plane (goim_auth.h), on a peer's connection
 * once connected and on a session's once accepted, and the directive slot
 * that loads the secret.  It reports to the side that started it through
 * that side's hooks, failed() and ready(), never by name.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_goim_rpc_internal.h"


static ngx_goim_rpc_auth_t *ngx_goim_rpc_auth_create(ngx_goim_rpc_t *rpc,
    int client, ngx_log_t *log);
static ngx_int_t ngx_goim_rpc_auth_step(ngx_connection_t *c,
    ngx_goim_rpc_auth_t *a);
static void ngx_goim_rpc_auth_peer_handler(ngx_event_t *ev);
static void ngx_goim_rpc_auth_session_handler(ngx_event_t *ev);


char *
ngx_goim_rpc_set_secret_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t             path, *value;
    goim_auth_secret_t   *s, **secret;
    char                  err[NGX_MAX_PATH + 128];

    secret = (goim_auth_secret_t **) ((char *) conf + cmd->offset);

    if (*secret) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    s = ngx_pcalloc(cf->pool, sizeof(goim_auth_secret_t));
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    if (goim_auth_secret_load(s, (char *) path.data, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s", err);
        return NGX_CONF_ERROR;
    }

    *secret = s;

    return NGX_CONF_OK;
}


static ngx_goim_rpc_auth_t *
ngx_goim_rpc_auth_create(ngx_goim_rpc_t *rpc, int client, ngx_log_t *log)
{
    ngx_goim_rpc_auth_t  *a;

    a = ngx_calloc(sizeof(ngx_goim_rpc_auth_t), log);
    if (a == NULL) {
        return NULL;
    }

    goim_auth_init(&a->auth, rpc->secret, client);

    if (client) {
        if (goim_auth_hello(&a->auth, a->out) != GOIM_AUTH_NEXT) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "goim rpc: no random bytes for a nonce");
            ngx_free(a);
            return NULL;
        }

        a->out_len = GOIM_AUTH_HELLO_LEN;
    }

    return a;
}


/*
 * Moves the handshake on: sends what it has to send, reads the next
 * frame, never more.  NGX_DONE: authenticated and everything sent;
 * NGX_AGAIN: waiting for the socket; NGX_ERROR: refused or the connection
 * failed, a->error says why; NGX_DECLINED: the peer closed the connection
 * before sending anything (a port probe).
 */

static ngx_int_t
ngx_goim_rpc_auth_step(ngx_connection_t *c, ngx_goim_rpc_auth_t *a)
{
    size_t          want, outlen;
    ssize_t         n;
    goim_auth_rc_t  rc;

    for ( ;; ) {

        while (a->out_pos < a->out_len) {
            n = c->send(c, a->out + a->out_pos, a->out_len - a->out_pos);

            if (n == NGX_AGAIN) {
                return NGX_AGAIN;
            }

            if (n == NGX_ERROR) {
                a->error = "write failed";
                return NGX_ERROR;
            }

            a->out_pos += n;
        }

        if (goim_auth_done(&a->auth)) {
            return NGX_DONE;
        }

        want = goim_auth_expect(&a->auth);

        n = c->recv(c, a->in + a->in_len, want - a->in_len);

        if (n == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (n == NGX_ERROR) {
            a->error = "read failed";
            return NGX_ERROR;
        }

        if (n == 0 && a->in_len == 0 && !a->auth.client
            && goim_auth_idle(&a->auth))
        {
            return NGX_DECLINED;
        }

        if (n == 0) {
            a->error = "the peer closed the connection during the handshake "
                       "(no RPC secret, or another one, on its side?)";
            return NGX_ERROR;
        }

        a->in_len += n;

        rc = goim_auth_input(&a->auth, a->in, a->in_len, a->out, &outlen);

        if (rc == GOIM_AUTH_AGAIN) {
            continue;
        }

        if (rc < 0) {
            a->error = goim_auth_strerror(rc);
            return NGX_ERROR;
        }

        a->in_len = 0;
        a->out_pos = 0;
        a->out_len = outlen;
    }
}


void
ngx_goim_rpc_auth_peer_start(ngx_goim_rpc_peer_t *peer,
    ngx_goim_rpc_auth_failed_pt failed, ngx_goim_rpc_auth_ready_pt ready)
{
    ngx_connection_t  *c;

    c = peer->chan.connection;

    peer->auth = ngx_goim_rpc_auth_create(peer->rpc, 1, peer->chan.log);
    if (peer->auth == NULL) {
        failed(peer, "upstream authentication failed");
        return;
    }

    peer->auth->failed = failed;
    peer->auth->ready = ready;

    c->read->handler = ngx_goim_rpc_auth_peer_handler;
    c->write->handler = ngx_goim_rpc_auth_peer_handler;

    /*
     * The proof and the first calls leave in two writes: without this the
     * second waits for the callee's delayed ACK of the first (40 ms).
     */
    if (ngx_tcp_nodelay(c) != NGX_OK) {
        failed(peer, "upstream setsockopt failed");
        return;
    }

    ngx_add_timer(c->read, peer->rpc->auth_timeout);

    ngx_goim_rpc_auth_peer_handler(c->write);
}


static void
ngx_goim_rpc_auth_peer_handler(ngx_event_t *ev)
{
    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_goim_rpc_peer_t         *peer;
    ngx_goim_rpc_auth_ready_pt   ready;

    c = ev->data;
    peer = c->data;

    if (c->close) {
        peer->auth->failed(peer, "worker is shutting down");
        return;
    }

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                      "goim rpc: %V did not authenticate within %M ms",
                      &peer->upstream->name, peer->rpc->auth_timeout);
        ngx_goim_rpc_count(peer->rpc, link_auth_failed);
        peer->auth->failed(peer, "upstream authentication timed out");
        return;
    }

    rc = ngx_goim_rpc_auth_step(c, peer->auth);

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, peer->chan.log, 0,
                      "goim rpc: authentication with %V failed: %s",
                      &peer->upstream->name, peer->auth->error);
        ngx_goim_rpc_count(peer->rpc, link_auth_failed);
        peer->auth->failed(peer, "upstream authentication failed");
        return;
    }

    if (rc == NGX_AGAIN) {
        if (ngx_handle_read_event(c->read, 0) != NGX_OK
            || ngx_handle_write_event(c->write, 0) != NGX_OK)
        {
            peer->auth->failed(peer, "upstream event failed");
        }

        return;
    }

    ready = peer->auth->ready;

    ngx_free(peer->auth);
    peer->auth = NULL;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    ready(peer);
}


ngx_int_t
ngx_goim_rpc_auth_session_start(ngx_goim_rpc_session_t *s,
    ngx_goim_rpc_auth_failed_pt failed, ngx_goim_rpc_auth_ready_pt ready)
{
    ngx_connection_t  *c;

    c = s->chan.connection;

    s->auth = ngx_goim_rpc_auth_create(s->rpc, 0, c->log);
    if (s->auth == NULL) {
        return NGX_ERROR;
    }

    s->auth->failed = failed;
    s->auth->ready = ready;

    c->read->handler = ngx_goim_rpc_auth_session_handler;
    c->write->handler = ngx_goim_rpc_auth_session_handler;

    ngx_add_timer(c->read, s->rpc->auth_timeout);

    ngx_goim_rpc_auth_session_handler(c->read);

    return NGX_OK;
}


static void
ngx_goim_rpc_auth_session_handler(ngx_event_t *ev)
{
    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_goim_rpc_session_t      *s;
    ngx_goim_rpc_auth_ready_pt   ready;

    c = ev->data;
    s = c->data;

    if (c->close) {
        s->auth->failed(s, NULL);
        return;
    }

    if (ev->timedout) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "goim rpc: refusing %V: no handshake within %M ms",
                      &c->addr_text, s->rpc->auth_timeout);
        goto refused;
    }

    rc = ngx_goim_rpc_auth_step(c, s->auth);

    if (rc == NGX_DECLINED) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, c->log, 0,
                       "goim rpc: %V closed the connection before the "
                       "handshake", &c->addr_text);
        s->auth->failed(s, NULL);
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "goim rpc: refusing %V: authentication failed: %s",
                      &c->addr_text, s->auth->error);
        goto refused;
    }

    if (rc == NGX_AGAIN) {
        if (ngx_handle_read_event(c->read, 0) != NGX_OK
            || ngx_handle_write_event(c->write, 0) != NGX_OK)
        {
            s->auth->failed(s, NULL);
        }

        return;
    }

    ready = s->auth->ready;

    ngx_free(s->auth);
    s->auth = NULL;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    ready(s);

    return;

refused:

    if (s->rpc->auth_refused) {
        s->rpc->auth_refused(s->rpc->ctx);
    }

    s->auth->failed(s, NULL);
}
