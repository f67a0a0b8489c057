#!/bin/bash
# `make run`: goim-router, goim-job and nginx (comet + logic) in the
# foreground on goim's default ports; Ctrl-C stops all three cleanly.
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
RUN=$BUILD/run

mkdir -p "$RUN/tmp"

# The internal RPC plane (comet, logic, router, job) proves a shared
# secret on every connection: one is made on the first run, readable by
# this user only (docs/deployment.md).
SECRET=$RUN/rpc.secret
if [ ! -s "$SECRET" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' \
        > "$SECRET" && echo >> "$SECRET") || exit 1
fi

sed -e "s|@BUILD@|$BUILD|g" -e "s|@RUN@|$RUN|g" -e "s|@TOP@|$TOP|g" \
    "$TOP/scripts/nginx.conf.in" > "$RUN/nginx.conf"

pids=()

stop() {
    trap - INT TERM
    echo "run: stopping" >&2
    kill -TERM "${pids[@]}" 2>/dev/null
    rc=0
    for p in "${pids[@]}"; do
        wait "$p" || rc=1
    done
    exit $rc
}

trap stop INT TERM

"$BUILD/goim-router" --listen 127.0.0.1:3139 --rpc-secret-file "$SECRET" &
pids+=($!)
"$BUILD/goim-job" --listen 127.0.0.1:3129 --router 127.0.0.1:3139 \
    --rpc-secret-file "$SECRET" &
pids+=($!)

/usr/sbin/nginx -p "$RUN" -c "$RUN/nginx.conf" -t -q || stop
/usr/sbin/nginx -p "$RUN" -c "$RUN/nginx.conf" &
pids+=($!)

cat >&2 <<MSG
run: router :3139, job :3129, comet TCP :3101, WebSocket :3102/sub
     (push RPC :3109),
     logic API :3111 (RPC :3119). Ctrl-C stops everything.
     The push API and status pages answer 127.0.0.1 only.
     Demo page: http://127.0.0.1:3111/demo/
     Try:  perl scripts/goim-client.pl 127.0.0.1 3101 '{"mid":123,"room_id":"live://1000","platform":"web","accepts":[1000]}'
     then: curl -d 'hello' 'http://127.0.0.1:3111/goim/push/mids?operation=1000&mids=123'
MSG

# if any of them dies, take the others down too
wait -n
echo "run: a process exited; stopping the rest" >&2
stop
