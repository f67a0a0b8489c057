#!/bin/bash
# SSE subscribers against WebSocket ones and nchan's EventSource (issue 17):
# SUBS subscribers in one room, on three servers one after the other in
# the same run, with the same client (goim-cli) on the same machine, each
# nginx with WORKERS (2) workers and worker_cpu_affinity auto:
#
#   goim-ws     ngx_goim over WebSocket (/sub, goim-cli -w)
#   goim-sse    ngx_goim over SSE (/sse: goim_comet_sse, goim-cli --sse)
#   nchan-sse   nchan's EventSource (nchan_subscriber eventsource,
#               goim-cli --sse --raw), Debian's libnginx-mod-nchan
#
# For each server:
#
#   memory      the workers' resident growth (VmRSS) once SUBS idle
#               subscribers are up, over the subscribers
#   fan-out     for each rate in RATES (10 50), a fresh set of SUBS
#               subscribers and RATE timestamped pushes a second for SECS
#               (10) seconds, through logic's room push (nchan: its
#               publisher location), then until the deliveries stop:
#               pushes sent a second, late ones (not answered within the
#               pusher's 10 s: nchan answers a publish once it has
#               written it to every subscriber), deliveries a second, lost
#               (pushes sent x subscribers - deliveries: a late push still
#               counts), latency p50 (the client processes'
#               count-weighted mean) and p99 (the largest of theirs), the
#               nginx workers' CPU per delivery, goim-cli's CPU per
#               delivery, how busy the whole machine was
#
#   bench/sse.sh                          # SUBS=10000 RATES="10 50"
#   SUBS=1000 SECS=5 bench/sse.sh         # a quick look
#   SERVERS="goim-sse nchan-sse" bench/sse.sh
#
# Each goim-cli process holds at most PER_PROC (5000) subscribers from its
# own four 127.0.0.x source addresses.  Results in build/bench/sse/, the
# tables on stdout.  Ports STACK_BASE (4800) + 1 to 39 for ngx_goim and
# + 52 for nchan, clear of the other benchmarks'.

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
CLI=$BUILD/goim-cli
OUT=$BUILD/bench/sse
SUBS=${SUBS:-10000}
RATES=${RATES:-10 50}
SECS=${SECS:-10}
PER_PROC=${PER_PROC:-5000}
SERVERS=${SERVERS:-goim-ws goim-sse nchan-sse}
WORKERS=${WORKERS:-2}
STACK_BASE=${STACK_BASE:-4800}
STACK_MAIN='worker_cpu_affinity auto;'
STACK_LISTEN='backlog=4096'
STACK_LOCATIONS='location = /sse { goim_comet_sse; }'
GOIM_HTTP=127.0.0.1:$(( STACK_BASE + 2 ))
GOIM_TCP=127.0.0.1:$(( STACK_BASE + 1 ))
NCHAN_HTTP=127.0.0.1:$(( STACK_BASE + 52 ))
MID0=400000

# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

[ -x "$CLI" ] || { echo "bench: build goim-cli first (make)" >&2; exit 1; }
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || [[ $SERVERS != *nchan* ]] \
    || { echo "bench: nchan is missing (make bench installs it)" >&2; exit 1; }
mkdir -p "$OUT"

PIDS=()
NCHAN_UP=
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    stack_stop
    [ -n "$NCHAN_UP" ] && nchan_stop
    return 0
}
trap cleanup EXIT

nchan_start() {
    local d=$OUT/nchan pid
    mkdir -p "$d/tmp"
    if pid=$(cat "$d/nginx.pid" 2>/dev/null) && kill "$pid" 2>/dev/null; then
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    # new subscribers start at the newest message, not the buffered ones
    # of the rate before
    cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
worker_processes $WORKERS;
$STACK_MAIN
worker_rlimit_nofile 20000;
error_log $d/error.log warn;
pid $d/nginx.pid;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $d/tmp;
    server {
        listen $NCHAN_HTTP reuseport $STACK_LISTEN;
        location = /sub {
            nchan_subscriber eventsource;
            nchan_channel_id bench;
            nchan_subscriber_first_message newest;
        }
        location = /idle {
            nchan_subscriber eventsource;
            nchan_channel_id idle;
        }
        location = /pub { nchan_publisher; nchan_channel_id bench; }
    }
}
EOF
    "$NGINX" -p "$d" -c "$d/nginx.conf"
    NCHAN_UP=1
    for (( t = 0; t < 50; t++ )); do
        curl -s -o /dev/null "http://$NCHAN_HTTP/pub" && break
        sleep 0.1
    done
}

nchan_stop() {
    local pid
    pid=$(cat "$OUT/nchan/nginx.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null || true
    while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    NCHAN_UP=
}

# busy and total ticks of the whole machine (softirq included)
machine_ticks() {
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat
}

# progress NAME FIELD: FIELD ("alive", "messages") of NAME's clients, from
# each process's latest progress line, added up
progress() {
    awk -v f="$2" '/^goim-cli: [0-9.]+s alive/ {
             for (i = 1; i <= NF; i++) if ($i == f) m[FILENAME] = $(i + 1)
         }
         END {s = 0; for (k in m) s += m[k]; print s}' "$OUT/$1".*.err \
        2>/dev/null || echo 0
}

# a summary field over NAME's processes: summed, largest, count-weighted
sum_of() { field_sum "$2" "$OUT/$1".*.err; }
max_of() {
    awk -v f="$2" '$1 == f && $2 > m {m = $2} END {print m + 0}' "$OUT/$1".*.err
}
wmean_of() {
    awk -v f="$2" '$1 == "latency_count" {c = $2}
        $1 == f {s += $2 * c; n += c}
        END {printf "%.1f", n ? s / n : 0}' "$OUT/$1".*.err
}

# clients NAME TARGET ARGS...: SUBS subscribers in PROCS processes
CLIENT_PIDS=()
clients() {
    local name=$1 target=$2 procs n i first
    shift 2
    procs=$(( (SUBS + PER_PROC - 1) / PER_PROC ))
    n=$(( SUBS / procs ))
    CLIENT_PIDS=()
    rm -f "$OUT/$name".*.err "$OUT/$name".*.out
    for (( i = 0; i < procs; i++ )); do
        first=$(( 2 + i * 4 ))
        "$CLI" -q -n "$n" -m "$(( MID0 + i * n ))" -R 2000 -i 0.5 -H 240 -L \
            -b "127.0.0.$first-127.0.0.$(( first + 3 ))" "$@" "$target" \
            >"$OUT/$name.$i.out" 2>"$OUT/$name.$i.err" &
        PIDS+=($!)
        CLIENT_PIDS+=($!)
    done
    for (( t = 0; t < 240; t++ )); do
        [ "$(progress "$name" alive)" -ge $(( procs * n )) ] && break
        sleep 0.5
    done
    sleep 2
}

stop_clients() {
    for p in "${CLIENT_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${CLIENT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
    CLIENT_PIDS=()
}

MEM_ROWS=()
FAN_ROWS=()

# measure SERVER TARGET PUSH_URL PUSH_TARGET "PUSH_ARGS" CLIENT_ARGS...
measure() {
    local server=$1 target=$2 url=$3 ptarget=$4 pargs=$5 ws rss0 rss1 alive \
          rate name c0 c1 k0 k1 m0 m1 sent ok want now last msgs hz first=1
    shift 5
    ws=$(nginx_workers_of "$server")
    # shellcheck disable=SC2086
    rss0=$(rss_kb $ws)
    hz=$(getconf CLK_TCK)

    for rate in $RATES; do
        name=$server-$rate
        clients "$name" "$target" "$@"
        alive=$(progress "$name" alive)
        echo "bench: $name: $alive subscribers up" >&2
        if [ "$first" ]; then
            # shellcheck disable=SC2086
            rss1=$(rss_kb $ws)
            MEM_ROWS+=("| $server | $alive | $(( (rss1 - rss0) * 1024 / (alive ? alive : 1) )) |")
            first=
        fi

        # shellcheck disable=SC2086
        c0=$(cpu_ticks $ws)
        k0=$(cpu_ticks "${CLIENT_PIDS[@]}")
        m0=$(machine_ticks)
        # shellcheck disable=SC2086
        "$CLI" -q -n 1 -m 1 -b 127.0.0.250 -H 240 $pargs -P "$url" \
            --push-rate "$rate" -d "$SECS" "$ptarget" \
            >"$OUT/$name-pusher.out" 2>"$OUT/$name-pusher.err" || true

        # an overloaded server is still writing: until the deliveries stop
        sent=$(awk '$1 == "pushes_sent" {print $2 + 0}' "$OUT/$name-pusher.err")
        ok=$(awk '$1 == "pushes_ok" {print $2 + 0}' "$OUT/$name-pusher.err")
        sent=${sent:-0}
        ok=${ok:-0}
        want=$(( sent * alive ))
        last=-1
        for (( t = 0; t < 120; t++ )); do
            now=$(progress "$name" messages)
            [ "$now" -ge "$want" ] || [ "$now" -eq "$last" ] && break
            last=$now
            sleep 1
        done
        # shellcheck disable=SC2086
        c1=$(cpu_ticks $ws)
        k1=$(cpu_ticks "${CLIENT_PIDS[@]}")
        m1=$(machine_ticks)
        stop_clients

        msgs=$(sum_of "$name" messages)
        FAN_ROWS+=("$(awk -v s="$server" -v r="$rate" -v p="$sent" -v late=$(( sent - ok )) -v secs="$SECS" \
            -v d="$(sum_of "$name" deliveries_s)" -v lost=$(( want - msgs )) \
            -v p50="$(wmean_of "$name" latency_p50_ms)" \
            -v p99="$(max_of "$name" latency_p99_ms)" \
            -v c=$(( c1 - c0 )) -v k=$(( k1 - k0 )) -v hz="$hz" -v m="$msgs" \
            -v b="$m0" -v e="$m1" 'BEGIN {
                split(b, x, " "); split(e, y, " ")
                printf "| %s | %s | %.0f | %d | %d | %d | %.1f | %.1f | %.2f | %.2f | %.0f %% |",
                    s, r, p / secs, late, d, lost, p50, p99,
                    m ? c * 1e6 / hz / m : 0, m ? k * 1e6 / hz / m : 0,
                    (y[2] - x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0
            }')")
        echo "bench: ${FAN_ROWS[-1]}" >&2
    done
}

nginx_workers_of() {
    case $1 in
    nchan-*) pgrep -P "$(cat "$OUT/nchan/nginx.pid")" | sort -n | tr '\n' ' ' ;;
    *) nginx_workers ;;
    esac
}

room="live://bench"
for server in $SERVERS; do
    case $server in
    goim-ws)
        stack_start ws
        measure goim-ws "$GOIM_HTTP" \
            "http://$GOIM_HTTP/goim/push/room?operation=1000&type=live&room=bench" \
            "$GOIM_TCP" "" -w -r "$room" -a 1000
        stack_stop ;;
    goim-sse)
        stack_start sse
        measure goim-sse "$GOIM_HTTP" \
            "http://$GOIM_HTTP/goim/push/room?operation=1000&type=live&room=bench" \
            "$GOIM_TCP" "" --sse -r "$room" -a 1000
        stack_stop ;;
    nchan-sse)
        nchan_start
        # the pusher listens on a channel of its own
        measure nchan-sse "$NCHAN_HTTP" "http://$NCHAN_HTTP/pub" \
            "$NCHAN_HTTP" "--sse --raw --path /idle" --sse --raw --path /sub
        nchan_stop ;;
    *) echo "bench: unknown server $server" >&2; exit 2 ;;
    esac
done

echo
echo "SUBS=$SUBS WORKERS=$WORKERS RATES=\"$RATES\" SECS=$SECS ($(nproc) cores, $(date -u +%F))"
echo
echo "| server | subscribers | nginx RSS bytes / subscriber |"
echo "|---|---|---|"
printf '%s\n' "${MEM_ROWS[@]}"
echo
echo "| server | msg/s | pushes sent / s | late | deliveries/s | lost | p50 ms | p99 ms | nginx CPU us / delivery | client CPU us / delivery | machine busy |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${FAN_ROWS[@]}"
