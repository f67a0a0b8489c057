
/*
 * Copyright (C) ngx_goim authors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_goim_logic.h"


/*
 * Who a client is, from its auth body: goim's JSON token, or with
 * goim_logic_jwt_secret_file an HS256 JWT signed with that secret.  The
 * parsing is libgoim's goim_token.c, plain C that is unit-tested and
 * fuzzed on its own.
 */


const char *
ngx_goim_logic_token_parse(ngx_goim_logic_conf_t *lcf, goim_token_t *t,
    u_char *token, size_t len)
{
    return goim_token_parse(t, token, len, lcf->jwt_secret.data,
                            lcf->jwt_secret.len, (int64_t) ngx_time());
}


/* goim_logic_jwt_secret_file: read once, at configuration time */

char *
ngx_goim_logic_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_goim_logic_conf_t *lcf = conf;

    u_char           *p;
    ssize_t           n;
    ngx_str_t        *value, name;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    if (lcf->jwt_secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 4096)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a readable file of at most 4k",
                           &name);
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);
    if (p == NULL) {
        (void) ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, p, (size_t) ngx_file_size(&fi), 0);

    (void) ngx_close_file(file.fd);

    if (n == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    /* a trailing newline is not part of the secret */
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r')) {
        n--;
    }

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the JWT secret in \"%V\" is empty", &name);
        return NGX_CONF_ERROR;
    }

    lcf->jwt_secret.data = p;
    lcf->jwt_secret.len = n;

    return NGX_CONF_OK;
}
