# Shared by the benchmarks that run the whole ngx_goim stack from build/
# (bench/ensure.sh, bench/reload.sh): sourced, with TOP, BUILD and OUT set.
#
#   stack_start NAME [JOB_FLAGS...]   goim-router, goim-job and an nginx of
#                                     $WORKERS workers (TCP 4301, HTTP
#                                     4302: /sub, /status, /goim/), with the
#                                     main-level directives in $STACK_MAIN
#                                     and the client listeners' parameters
#                                     in $STACK_LISTEN (e.g. backlog=4096),
#                                     more locations in $STACK_LOCATIONS;
#                                     logs in $OUT/*.NAME.log
#   stack_stop                        all of it, waiting for nginx to exit
#   field_sum FIELD FILE...           a goim-cli summary field, summed
#   cpu_ticks PID...                  utime + stime of the processes, in ticks
#   rss_kb PID...                     their resident memory, in kB
#
# The stack's internal plane is unauthenticated, on loopback.  Its ports
# are STACK_BASE (4300) + 1 to 39: a benchmark that may run beside another
# one sets its own base.

unset GOIM_RPC_SECRET_FILE

NGINX=${NGINX:-/usr/sbin/nginx}
WORKERS=${WORKERS:-2}
STACK_BASE=${STACK_BASE:-4300}
STACK_DAEMONS=()

stack_start() {
    local name=$1 pid
    shift
    if pid=$(cat "$OUT/nginx.pid" 2>/dev/null) && kill "$pid" 2>/dev/null; then
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    mkdir -p "$OUT/tmp"
    "$BUILD/goim-router" --listen 127.0.0.1:$(( STACK_BASE + 39 )) --log-level warn \
        >"$OUT/router.$name.log" 2>&1 &
    STACK_DAEMONS+=($!)
    "$BUILD/goim-job" --listen 127.0.0.1:$(( STACK_BASE + 29 )) --router 127.0.0.1:$(( STACK_BASE + 39 )) \
        --log-level warn "$@" >"$OUT/job.$name.log" 2>&1 &
    JOB_PID=$!
    STACK_DAEMONS+=($JOB_PID)
    cat >"$OUT/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $BUILD/nginx/objs/ngx_goim_comet_module.so;
load_module $BUILD/nginx/objs/ngx_goim_logic_module.so;
worker_processes $WORKERS;
worker_rlimit_nofile 20000;
error_log $OUT/error.$name.log notice;
pid $OUT/nginx.pid;
events { worker_connections 20000; }
goim_comet_id bench;
goim_comet_logic 127.0.0.1:$(( STACK_BASE + 19 ));
goim_logic_router 127.0.0.1:$(( STACK_BASE + 39 ));
goim_logic_job 127.0.0.1:$(( STACK_BASE + 29 ));
goim_logic_rpc_timeout 5s;
${STACK_MAIN:-}
stream {
    server { listen 127.0.0.1:$(( STACK_BASE + 1 )) reuseport ${STACK_LISTEN:-}; goim_comet; }
    server { listen 127.0.0.1:$(( STACK_BASE + 9 )); goim_comet_push; }
    server { listen 127.0.0.1:$(( STACK_BASE + 19 )); goim_logic_rpc; }
}
http {
    access_log off;
    client_body_temp_path $OUT/tmp;
    server {
        listen 127.0.0.1:$(( STACK_BASE + 2 )) reuseport ${STACK_LISTEN:-};
        location = /sub { goim_comet_ws; }
        location = /status { goim_comet_status; }
        location /goim/ { goim_logic_api; }
        ${STACK_LOCATIONS:-}
    }
}
EOF
    : >"$OUT/error.$name.log"
    "$NGINX" -p "$OUT" -c "$OUT/nginx.conf"
    # until job has the comet in its list (it fetches it every 5 s)
    for (( t = 0; t < 100; t++ )); do
        "$BUILD/goim-job" --stats 127.0.0.1:$(( STACK_BASE + 29 )) 2>/dev/null \
            | grep -q '^comets=1$' && break
        sleep 0.1
    done
}

stack_stop() {
    local pid
    pid=$(cat "$OUT/nginx.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null || true
    for p in "${STACK_DAEMONS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    STACK_DAEMONS=()
    while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

field_sum() {
    local f=$1
    shift
    cat "$@" | awk -v f="$f" '$1 == f {s += $2} END {print s + 0}'
}

cpu_ticks() {
    proc_sum '{print $14 + $15}' stat "$@"
}

rss_kb() {
    proc_sum '/^VmRSS:/ {print $2}' status "$@"
}

# what awk program $1 reads off /proc/PID/$2, summed over the PIDs
proc_sum() {
    local prog=$1 file=$2 p s=0
    shift 2
    for p in "$@"; do
        s=$(( s + $(awk "$prog" "/proc/$p/$file" 2>/dev/null || echo 0) ))
    done
    echo "$s"
}

nginx_workers() {
    pgrep -P "$(cat "$OUT/nginx.pid")" | sort -n | tr '\n' ' '
}
