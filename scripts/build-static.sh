#!/bin/bash
# Builds an nginx binary with the comet and logic modules linked in
# statically (./configure --add-module), from NGINX 1.22.1's source: the
# proof that config honours a static build, and what t/003-static.t runs.
#
#   scripts/build-static.sh [DIR]      default DIR: build/static
#
# The source is Debian's original tarball (nginx-dev has headers only),
# cached in $GOIM_NGINX_CACHE (default ~/.cache/ngx_goim/nginx-src) and
# fetched once with `apt-get source --download-only nginx`, which needs a
# deb-src entry (see "Reading NGINX's own .c files" in the style guide);
# $GOIM_NGINX_TARBALL names a tarball to use instead.  With
# GOIM_STATIC_OPTIONAL=1 (make test) a source that cannot be had is a
# warning, not an error: t/003-static.t then skips and says why.  The binary is
# DIR/nginx-1.22.1/objs/nginx; a second run only remakes what changed
# (configure again when config or goim.proto changed).
set -euo pipefail

VERSION=1.22.1
TOP=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mkdir -p "${1:-$TOP/build/static}" && cd "${1:-$TOP/build/static}" && pwd)
CACHE=${GOIM_NGINX_CACHE:-$HOME/.cache/ngx_goim/nginx-src}
TARBALL=${GOIM_NGINX_TARBALL:-$CACHE/nginx_$VERSION.orig.tar.gz}
SRC=$DIR/nginx-$VERSION
GEN=$TOP/build/gen

die() { echo "build-static.sh: $*" >&2; exit 1; }

fetch() {
    [ -f "$TARBALL" ] && return 0
    mkdir -p "$CACHE"
    echo "build-static.sh: fetching nginx $VERSION's source into $CACHE" >&2
    # the .dsc may be missing from the mirror: the tarball is what we need
    (cd "$CACHE" && apt-get source --download-only nginx >fetch.log 2>&1) \
        || true
    [ -f "$TARBALL" ] && return 0
    # a clean Debian has no deb-src entry: as root, add bookworm-security's
    # (where Debian's nginx 1.22.1 comes from) and try once more
    if [ "$(id -u)" = 0 ] && ! grep -rqs '^Types:.*deb-src\|^deb-src' \
            /etc/apt/sources.list /etc/apt/sources.list.d
    then
        echo "build-static.sh: adding a deb-src entry for bookworm-security" >&2
        cat > /etc/apt/sources.list.d/ngx-goim-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        (apt-get update >>"$CACHE/fetch.log" 2>&1 \
         && cd "$CACHE" && apt-get source --download-only nginx \
            >>fetch.log 2>&1) || true
        [ -f "$TARBALL" ] && return 0
    fi
    if [ "${GOIM_STATIC_OPTIONAL:-0}" = 1 ]; then
        echo "build-static.sh: warning: no $TARBALL, no static build" >&2
        exit 0
    fi
    die "apt-get source gave no $TARBALL" \
        "(add a deb-src entry; $CACHE/fetch.log says why)"
}

# the flags the tests' configurations need: stream and http with TLS
configure() {
    rm -rf "$SRC"
    tar -xzf "$TARBALL" -C "$DIR"
    (cd "$SRC" && NGX_GOIM_GEN_DIR=$GEN ./configure \
        --prefix="$DIR" --with-debug --with-threads \
        --with-http_ssl_module --with-http_realip_module \
        --with-http_stub_status_module \
        --with-stream --with-stream_ssl_module \
        --with-stream_ssl_preread_module --with-stream_realip_module \
        --add-module="$TOP" >configure.log 2>&1) \
        || { tail -20 "$SRC/configure.log" >&2; die "configure failed"; }
    touch "$SRC/.configured"
}

fetch

# the generated protobuf-c code, from the Makefile's one rule
make -C "$TOP" --no-print-directory "$GEN/goim.pb-c.c" "$GEN/goim.pb-c.h"

if [ ! -f "$SRC/.configured" ] || [ "$TOP/config" -nt "$SRC/.configured" ] \
   || [ "$GEN/goim.pb-c.h" -nt "$SRC/.configured" ]
then
    configure
fi

make -C "$SRC" -f objs/Makefile -j"${GOIM_JOBS:-2}" >"$SRC/make.log" 2>&1 \
    || { tail -30 "$SRC/make.log" >&2; die "make failed"; }

echo "build-static.sh: $SRC/objs/nginx" >&2
