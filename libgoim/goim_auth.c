/*
 * The RPC plane's handshake (see goim_auth.h): nonces, the MACs and the
 * three frames, with no transport.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "goim_auth.h"


#define GOIM_AUTH_LABEL_SERVER  "goim-rpc-auth-v1 server"
#define GOIM_AUTH_LABEL_CLIENT  "goim-rpc-auth-v1 client"

static void goim_auth_mac(const goim_auth_t *a, const char *label,
    uint8_t *mac);


enum {
    GOIM_AUTH_START = 0,         /* client: HELLO not written yet */
    GOIM_AUTH_WAIT_HELLO,        /* server */
    GOIM_AUTH_WAIT_CHALLENGE,    /* client */
    GOIM_AUTH_WAIT_PROOF,        /* server */
    GOIM_AUTH_OVER,
    GOIM_AUTH_FAILED
};


int
goim_auth_secret_load(goim_auth_secret_t *s, const char *path, char *err,
    size_t errlen)
{
    int          fd;
    char         extra;
    size_t       len;
    ssize_t      n;
    struct stat  st;

    s->len = 0;

    fd = open(path, O_RDONLY | O_NOCTTY);
    if (fd == -1) {
        snprintf(err, errlen, "cannot open the RPC secret file \"%s\": %s",
                 path, strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the RPC secret file \"%s\" is not a regular "
                 "file", path);
        close(fd);
        return -1;
    }

    if (st.st_mode & (S_IRWXO)) {
        snprintf(err, errlen, "the RPC secret file \"%s\" is accessible by "
                 "others (mode %03o): chmod o-rwx it", path,
                 (unsigned) (st.st_mode & 0777));
        close(fd);
        return -1;
    }

    len = 0;

    for ( ;; ) {
        n = read(fd, s->key + len, sizeof(s->key) - len);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == -1) {
            snprintf(err, errlen, "cannot read the RPC secret file \"%s\": "
                     "%s", path, strerror(errno));
            close(fd);
            return -1;
        }

        if (n == 0) {
            break;
        }

        len += (size_t) n;

        if (len == sizeof(s->key)) {
            /* one byte more says it is too long */
            if (read(fd, &extra, 1) > 0) {
                snprintf(err, errlen, "the RPC secret file \"%s\" is longer "
                         "than %d bytes", path, GOIM_AUTH_SECRET_MAX);
                close(fd);
                OPENSSL_cleanse(s->key, sizeof(s->key));
                return -1;
            }

            break;
        }
    }

    close(fd);

    /* "echo secret > file" leaves a newline that is no part of it */
    while (len && (s->key[len - 1] == '\n' || s->key[len - 1] == '\r')) {
        len--;
    }

    if (len < GOIM_AUTH_SECRET_MIN) {
        snprintf(err, errlen, "the RPC secret file \"%s\" holds %zu bytes, "
                 "at least %d are needed", path, len, GOIM_AUTH_SECRET_MIN);
        OPENSSL_cleanse(s->key, sizeof(s->key));
        return -1;
    }

    s->len = len;

    return 0;
}


int
goim_auth_warmup(const goim_auth_secret_t *secret)
{
    goim_auth_t  a;
    uint8_t      mac[GOIM_AUTH_MAC_LEN];

    goim_auth_init(&a, secret, 1);

    if (RAND_bytes(a.nonce_c, GOIM_AUTH_NONCE_LEN) != 1) {
        return -1;
    }

    goim_auth_mac(&a, GOIM_AUTH_LABEL_CLIENT, mac);

    return 0;
}


void
goim_auth_init(goim_auth_t *a, const goim_auth_secret_t *secret, int client)
{
    memset(a, 0, sizeof(goim_auth_t));

    a->secret = secret;
    a->client = client ? 1 : 0;
    a->state = client ? GOIM_AUTH_START : GOIM_AUTH_WAIT_HELLO;
}


static void
goim_auth_mac(const goim_auth_t *a, const char *label, uint8_t *mac)
{
    size_t        llen;
    unsigned int  len;
    uint8_t       data[64 + 2 * GOIM_AUTH_NONCE_LEN];

    llen = strlen(label);

    memcpy(data, label, llen);
    memcpy(data + llen, a->nonce_c, GOIM_AUTH_NONCE_LEN);
    memcpy(data + llen + GOIM_AUTH_NONCE_LEN, a->nonce_s, GOIM_AUTH_NONCE_LEN);

    len = GOIM_AUTH_MAC_LEN;

    HMAC(EVP_sha256(), a->secret->key, (int) a->secret->len, data,
         llen + 2 * GOIM_AUTH_NONCE_LEN, mac, &len);
}


goim_auth_rc_t
goim_auth_hello(goim_auth_t *a, uint8_t *out)
{
    if (!a->client || a->state != GOIM_AUTH_START) {
        return GOIM_AUTH_ERR_STATE;
    }

    if (RAND_bytes(a->nonce_c, GOIM_AUTH_NONCE_LEN) != 1) {
        a->state = GOIM_AUTH_FAILED;
        return GOIM_AUTH_ERR_RANDOM;
    }

    goim_packet_write(out, 1, GOIM_AUTH_OP_HELLO, 0, a->nonce_c,
                      GOIM_AUTH_NONCE_LEN);

    a->state = GOIM_AUTH_WAIT_CHALLENGE;

    return GOIM_AUTH_NEXT;
}


size_t
goim_auth_expect(const goim_auth_t *a)
{
    switch (a->state) {

    case GOIM_AUTH_WAIT_HELLO:
        return GOIM_AUTH_HELLO_LEN;

    case GOIM_AUTH_WAIT_CHALLENGE:
        return GOIM_AUTH_CHALLENGE_LEN;

    case GOIM_AUTH_WAIT_PROOF:
        return GOIM_AUTH_PROOF_LEN;

    default:
        return 0;
    }
}


static int32_t
goim_auth_expect_op(const goim_auth_t *a)
{
    switch (a->state) {

    case GOIM_AUTH_WAIT_HELLO:
        return GOIM_AUTH_OP_HELLO;

    case GOIM_AUTH_WAIT_CHALLENGE:
        return GOIM_AUTH_OP_CHALLENGE;

    default:
        return GOIM_AUTH_OP_PROOF;
    }
}


goim_auth_rc_t
goim_auth_input(goim_auth_t *a, const uint8_t *buf, size_t len, uint8_t *out,
    size_t *outlen)
{
    int32_t         op;
    size_t          want;
    const uint8_t  *body;
    uint8_t         mac[GOIM_AUTH_MAC_LEN];

    *outlen = 0;
    want = goim_auth_expect(a);

    if (want == 0) {
        return GOIM_AUTH_ERR_STATE;
    }

    op = goim_auth_expect_op(a);

    /* the op and the length tell at once whether this can be the frame */

    if (len >= 12 && (int32_t) goim_get_be32(buf + 8) != op) {
        a->state = GOIM_AUTH_FAILED;
        return GOIM_AUTH_ERR_OP;
    }

    if (len >= 4 && goim_get_be32(buf) != want) {
        a->state = GOIM_AUTH_FAILED;
        return GOIM_AUTH_ERR_FRAME;
    }

    if (len < want) {
        return GOIM_AUTH_AGAIN;
    }

    if (goim_get_be16(buf + 4) != GOIM_HEADER_LEN
        || goim_get_be16(buf + 6) != 1)
    {
        a->state = GOIM_AUTH_FAILED;
        return GOIM_AUTH_ERR_FRAME;
    }

    body = buf + GOIM_HEADER_LEN;

    switch (a->state) {

    case GOIM_AUTH_WAIT_HELLO:
        memcpy(a->nonce_c, body, GOIM_AUTH_NONCE_LEN);

        if (RAND_bytes(a->nonce_s, GOIM_AUTH_NONCE_LEN) != 1) {
            a->state = GOIM_AUTH_FAILED;
            return GOIM_AUTH_ERR_RANDOM;
        }

        goim_header_write(out, GOIM_AUTH_NONCE_LEN + GOIM_AUTH_MAC_LEN, 1,
                          GOIM_AUTH_OP_CHALLENGE, 0);
        memcpy(out + GOIM_HEADER_LEN, a->nonce_s, GOIM_AUTH_NONCE_LEN);
        goim_auth_mac(a, GOIM_AUTH_LABEL_SERVER,
                      out + GOIM_HEADER_LEN + GOIM_AUTH_NONCE_LEN);

        *outlen = GOIM_AUTH_CHALLENGE_LEN;
        a->state = GOIM_AUTH_WAIT_PROOF;
        return GOIM_AUTH_NEXT;

    case GOIM_AUTH_WAIT_CHALLENGE:
        memcpy(a->nonce_s, body, GOIM_AUTH_NONCE_LEN);
        goim_auth_mac(a, GOIM_AUTH_LABEL_SERVER, mac);

        if (CRYPTO_memcmp(mac, body + GOIM_AUTH_NONCE_LEN, GOIM_AUTH_MAC_LEN)
            != 0)
        {
            a->state = GOIM_AUTH_FAILED;
            return GOIM_AUTH_ERR_PROOF;
        }

        goim_header_write(out, GOIM_AUTH_MAC_LEN, 1, GOIM_AUTH_OP_PROOF, 0);
        goim_auth_mac(a, GOIM_AUTH_LABEL_CLIENT, out + GOIM_HEADER_LEN);

        *outlen = GOIM_AUTH_PROOF_LEN;
        a->state = GOIM_AUTH_OVER;
        return GOIM_AUTH_DONE;

    default:    /* GOIM_AUTH_WAIT_PROOF */
        goim_auth_mac(a, GOIM_AUTH_LABEL_CLIENT, mac);

        if (CRYPTO_memcmp(mac, body, GOIM_AUTH_MAC_LEN) != 0) {
            a->state = GOIM_AUTH_FAILED;
            return GOIM_AUTH_ERR_PROOF;
        }

        a->state = GOIM_AUTH_OVER;
        return GOIM_AUTH_DONE;
    }
}


int
goim_auth_done(const goim_auth_t *a)
{
    return a->state == GOIM_AUTH_OVER;
}


int
goim_auth_idle(const goim_auth_t *a)
{
    return a->state == GOIM_AUTH_WAIT_HELLO;
}


const char *
goim_auth_strerror(goim_auth_rc_t rc)
{
    switch (rc) {

    case GOIM_AUTH_AGAIN:
        return "incomplete";

    case GOIM_AUTH_DONE:
        return "authenticated";

    case GOIM_AUTH_NEXT:
        return "in progress";

    case GOIM_AUTH_ERR_OP:
        return "the peer sent another frame than the authentication one "
               "(no RPC secret on its side?)";

    case GOIM_AUTH_ERR_FRAME:
        return "malformed authentication frame";

    case GOIM_AUTH_ERR_PROOF:
        return "wrong proof of the RPC secret (another secret on its side?)";

    case GOIM_AUTH_ERR_RANDOM:
        return "no random bytes for a nonce";

    default:
        return "authentication out of sequence";
    }
}


int
goim_auth_is_loopback(const void *addr)
{
    const struct sockaddr      *sa;
    const struct sockaddr_in   *sin;
    const struct sockaddr_in6  *sin6;

    sa = addr;

    switch (sa->sa_family) {

    case AF_INET:
        sin = addr;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;

    case AF_INET6:
        sin6 = addr;

        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
            return 1;
        }

        /* ::ffff:127.x.x.x */
        return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)
               && sin6->sin6_addr.s6_addr[12] == 127;

    case AF_UNIX:
        return 1;

    default:
        return 0;
    }
}
