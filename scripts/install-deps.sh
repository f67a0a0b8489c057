#!/bin/sh
# Installs the Debian packages ngx_goim needs to build, run and test.
# Idempotent and quiet: prints nothing when everything is present.
#
#   scripts/install-deps.sh          # build, run and test
#   scripts/install-deps.sh bench    # and the peers bench/ runs beside us
set -eu

PKGS="nginx-light libnginx-mod-stream nginx-dev
      build-essential pkg-config
      libprotobuf-c-dev protobuf-c-compiler librdkafka-dev libyajl-dev
      libuv1-dev libconfig-dev libcmocka-dev libssl-dev libpcre2-dev zlib1g-dev
      clang libclang-rt-14-dev valgrind curl
      openjdk-17-jre-headless maven
      libtest-base-perl libtest-longstring-perl liblist-moreutils-perl
      libtext-diff-perl liburi-perl libhttp-message-perl libipc-run-perl
      libio-socket-ssl-perl openssl
      chromium gdb"

# node and npm for the browser tests (t/070-browser.t): Debian's, unless a
# node with its own npm is installed already
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"

# nchan, the peer bench/comet_vs_nchan.sh and bench/fanout_sweep.sh run
# in the same script as ngx_goim
[ "${1:-}" = bench ] && PKGS="$PKGS libnginx-mod-nchan"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'
    then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The stock nginx service must not grab port 80 or keep running in tests.
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
