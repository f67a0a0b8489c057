#!/bin/bash
# Comet against nchan, side by side, with the same client (goim-cli) on the
# same machine in the same run:
#
#   1. memory per idle connection: nginx workers' memory (PSS, so shared
#      pages count once) before and after SUBS idle clients connect
#      (authenticated ones for comet; kernel socket memory is not counted,
#      as in nchan-measured.md);
#   2. room fan-out: SUBS WebSocket subscribers in one room / one nchan
#      channel, RATE timestamped pushes a second for SECS seconds: deliveries
#      a second, latency p50/p99 (client side), server CPU per delivery;
#   2b. the machine's floor for the same fan-out (../shared/tools/floor,
#      two processes sharing the port as two workers would: one write per
#      subscriber per message, nothing else), same clients (--raw);
#   3. comet's cross-worker hop alone: HOP_KEYS TCP clients with known
#      keys, HOP_RATE PushMsg calls a second, one key each, sent straight to
#      comet's push RPC (build/bench/push_rpc) for SECS seconds; half the
#      keys live in the other worker.  Hop p50/p99/p99.9 from comet's
#      status page (upper bounds of its buckets), and the clients' latency
#      from the call to the client.  (nchan's own figure for this is its
#      internal benchmark's, peers.md 2.6: it has no per-key push.)
#
#   bench/comet_vs_nchan.sh            # SUBS=10000 WORKERS=2 RATE=10 SECS=10
#   SUBS=20000 RATE=20 bench/comet_vs_nchan.sh
#   PHASES="goim nchan" RATE=50 bench/comet_vs_nchan.sh    # no hop phase
#   PHASES="goim floor" RATE=100 bench/comet_vs_nchan.sh    # against the floor
#   PHASES=hop HOP_RATE=50000 bench/comet_vs_nchan.sh
#   PERF=1 PHASES=goim bench/comet_vs_nchan.sh   # perf record the workers
#   SETTLE=10 PHASES=goim bench/comet_vs_nchan.sh  # pushes start 10 s (not
#                                     # 2) after the last subscriber is online
#
# Each goim-cli process holds at most PER_PROC clients and binds its own
# 127.0.0.x source addresses (one process may hold 20,000 files here).
# Results go to build/bench/ and a summary table to stdout.

set -euo pipefail

# the benchmark's own stack runs its internal plane unauthenticated on
# loopback: a secret the daemons would take from the environment (as the
# test harness exports one) would make them refuse its nginx
unset GOIM_RPC_SECRET_FILE

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
CLI=$BUILD/goim-cli
OUT=$BUILD/bench
SUBS=${SUBS:-10000}
WORKERS=${WORKERS:-2}
RATE=${RATE:-10}
SECS=${SECS:-10}
PER_PROC=${PER_PROC:-5000}
HOP_KEYS=${HOP_KEYS:-1000}
HOP_RATE=${HOP_RATE:-10000}
NGINX=/usr/sbin/nginx

mkdir -p "$OUT"
PIDS=()         # client processes
DAEMONS=()      # goim-router, goim-job

FLOOR_PIDS=()

cleanup() {
    for p in "${PIDS[@]}" "${DAEMONS[@]}" "${FLOOR_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for d in "$OUT"/goim "$OUT"/nchan; do
        [ -f "$d/nginx.pid" ] && kill "$(cat "$d/nginx.pid")" 2>/dev/null
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

[ -x "$CLI" ] || { echo "bench: build goim-cli first (make)" >&2; exit 1; }

procs=$(( (SUBS + PER_PROC - 1) / PER_PROC ))

# worker pids of the nginx whose master's pid file is $1
workers() {
    local pids
    pids=$(dirname "$1")/pids
    if [ -f "$pids" ]; then cat "$pids"; return; fi
    pgrep -P "$(cat "$1")" | tr '\n' ' '
}

# proportional set size: a shared page several workers touched counts once
rss_kb() {
    local sum=0 p
    for p in $1; do
        sum=$(( sum + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup") ))
    done
    echo $sum
}

cpu_ticks() {
    local sum=0 p v
    for p in $1; do
        # a process that has exited (the floor, at its end) counts 0
        v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || true)
        sum=$(( sum + ${v:-0} ))
    done
    echo $sum
}

# busy and total ticks of the whole machine (softirq included)
machine_ticks() {
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat
}

# progress NAME FIELD: FIELD ("alive", "messages") of the clients of NAME
# so far, from each process's latest 1 s report, added up
progress() {
    awk -v f="$2" '/^goim-cli: [0-9.]+s alive/ {
             for (i = 1; i <= NF; i++) if ($i == f) m[FILENAME] = $(i + 1)
         }
         END {s = 0; for (k in m) s += m[k]; print s}' "$OUT"/"$1".*.err \
        2>/dev/null || echo 0
}

# clients NAME ARGS...: PROCS goim-cli processes, SUBS clients in all
clients() {
    local name=$1 i first last n
    shift
    for (( i = 0; i < procs; i++ )); do
        n=$(( SUBS / procs ))
        first=$(( 2 + i * 8 ))
        last=$(( first + 7 ))
        "$CLI" -q -n "$n" -m "$(( 100000 + i * PER_PROC ))" -R 4000 \
            -b "127.0.0.$first-127.0.0.$last" "$@" \
            >"$OUT/$name.$i.out" 2>"$OUT/$name.$i.err" &
        PIDS+=($!)
    done
}

wait_clients() {
    local name=$1 want=$2 t got
    for (( t = 0; t < 60; t++ )); do
        got=$(progress "$name" alive)
        [ "${got:-0}" -ge "$want" ] && return 0
        sleep 1
    done
    echo "bench: only ${got:-0} of $want $name clients came up" >&2
    return 1
}

stop_clients() {
    for p in "${PIDS[@]}"; do
        kill -INT "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    PIDS=()
}

# sum of a summary field over the client processes
field_sum() {
    cat "$OUT"/"$1".*.err | awk -v f="$2" '$1 == f {s += $2} END {print s + 0}'
}

field_max() {
    cat "$OUT"/"$1".*.err | awk -v f="$2" '$1 == f && $2 > m {m = $2} END {print m + 0}'
}

# count-weighted mean of a per-process percentile
field_wmean() {
    cat "$OUT"/"$1".*.err | awk -v f="$2" '
        $1 == "latency_count" {c = $2}
        $1 == f {s += $2 * c; n += c}
        END {printf "%.3f", n ? s / n : 0}'
}


# ---- the servers -----------------------------------------------------------

# an nginx a broken earlier run left behind holds the ports
stop_stale() {
    local pid
    pid=$(cat "$1/nginx.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
}

start_goim() {
    local d=$OUT/goim
    mkdir -p "$d/tmp"
    stop_stale "$d"
    "$BUILD/goim-router" --listen 127.0.0.1:4139 --log-level warn \
        >"$d/router.log" 2>&1 &
    DAEMONS+=($!)
    "$BUILD/goim-job" --listen 127.0.0.1:4129 --router 127.0.0.1:4139 \
        ${ROOM_WAIT:+--room-wait "$ROOM_WAIT"} --log-level warn >"$d/job.log" 2>&1 &
    DAEMONS+=($!)
    cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $BUILD/nginx/objs/ngx_goim_comet_module.so;
load_module $BUILD/nginx/objs/ngx_goim_logic_module.so;
worker_processes $WORKERS;
worker_priority ${PRIORITY:-0};
worker_cpu_affinity ${AFFINITY:-auto};
worker_rlimit_nofile 20000;
error_log $d/error.log warn;
pid $d/nginx.pid;
events { worker_connections 20000; }
goim_comet_id bench;
goim_comet_logic 127.0.0.1:4119;
goim_logic_router 127.0.0.1:4139;
goim_logic_job 127.0.0.1:4129;
goim_logic_rpc_timeout 5s;
stream {
    server { listen 127.0.0.1:4101 reuseport; goim_comet; }
    server { listen 127.0.0.1:4109; goim_comet_push; }
    server { listen 127.0.0.1:4119; goim_logic_rpc; }
}
http {
    access_log off;
    client_body_temp_path $d/tmp;
    server {
        listen 127.0.0.1:4102 reuseport;
        location = /sub { goim_comet_ws; }
        location = /status { goim_comet_status; }
        location /goim/ { goim_logic_api; }
    }
}
EOF
    "$NGINX" -p "$d" -c "$d/nginx.conf"
    sleep 1
}

start_nchan() {
    local d=$OUT/nchan
    mkdir -p "$d/tmp"
    stop_stale "$d"
    cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
worker_processes $WORKERS;
worker_priority ${PRIORITY:-0};
worker_cpu_affinity ${AFFINITY:-auto};
worker_rlimit_nofile 20000;
error_log $d/error.log warn;
pid $d/nginx.pid;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $d/tmp;
    server {
        listen 127.0.0.1:4202 reuseport;
        location = /sub { nchan_subscriber websocket; nchan_channel_id bench; }
        location = /pub { nchan_publisher; nchan_channel_id bench; }
    }
}
EOF
    "$NGINX" -p "$d" -c "$d/nginx.conf"
    sleep 1
}

# the floor: two processes on one port (SO_REUSEPORT), as two workers
start_floor() {
    local d=$OUT/floor i src=${FLOOR_SRC:-$TOP/../shared/tools/floor/floor.c}
    mkdir -p "$d"
    rm -f "$d/start"
    [ -x "$d/floor" ] && [ "$d/floor" -nt "$src" ] \
        || gcc -O2 -o "$d/floor" "$src" -lcrypto
    FLOOR_PIDS=()
    for (( i = 0; i < WORKERS; i++ )); do
        FLOOR_BODY=ts "$d/floor" 4402 "$RATE" "$SECS" "$d/start" >"$d/floor.$i.out" 2>&1 &
        FLOOR_PIDS+=($!)
    done
    echo "${FLOOR_PIDS[*]}" >"$d/pids"     # what workers() lists
    sleep 1
}

stop_floor() {
    for p in "${FLOOR_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    stop_clients
}

stop_server() {
    local d=$OUT/$1
    kill -QUIT "$(cat "$d/nginx.pid")" 2>/dev/null || true
    sleep 1
    stop_clients
    for p in "${DAEMONS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    DAEMONS=()
    sleep 1
}


# ---- one server: memory, then fan-out --------------------------------------

# measure NAME ADDR SUBSCRIBE_ARGS... -- PUSH_URL
measure() {
    local name=$1 addr=$2 w base idle c0 c1 k0 k1 m0 m1 args=() url
    shift 2
    while [ "$1" != "--" ]; do args+=("$1"); shift; done
    url=$2

    w=$(workers "$OUT/$name/nginx.pid")
    base=$(rss_kb "$w")

    clients "$name-idle" -i 1 -H 240 "${args[@]}" "$addr"
    wait_clients "$name-idle" "$SUBS"
    sleep 2
    idle=$(rss_kb "$w")
    stop_clients

    echo "$name mem_per_conn_bytes $(( (idle - base) * 1024 / SUBS ))" \
        >>"$OUT/results"

    clients "$name-fan" -i 1 -H 240 -L -d $(( SECS + 30 )) "${args[@]}" "$addr"
    wait_clients "$name-fan" "$SUBS"
    sleep "${SETTLE:-2}"

    c0=$(cpu_ticks "$w")
    k0=$(cpu_ticks "${PIDS[*]}")
    m0=$(machine_ticks)
    if [ -n "${PERF:-}" ]; then
        # PERF=1: a call-graph profile of the workers during the fan-out
        perf record -q -g -o "$OUT/$name.perf.data" -p "${w// /,}" \
            -- sleep "$SECS" 2>/dev/null &
    fi
    if [ "$name" = floor ]; then
        # the floor pushes by itself, from the moment this file exists, and
        # exits SECS later, closing its clients: the CPU is sampled before
        touch "$OUT/floor/start"
        sleep "$(awk -v s="$SECS" 'BEGIN {print s - 0.3}')"
        fc1=$(cpu_ticks "$w")
        fk1=$(cpu_ticks "${PIDS[*]}")
        fm1=$(machine_ticks)
        for p in "${FLOOR_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
        printf '  pushes_ok %s\n' "$(awk '/^RESULT floor/ {for (i = 2; i <= NF; i++)
                if ($i ~ /^msgs=/) {split($i, a, "="); if (a[2] > m) m = a[2]}}
            END {print m + 0}' "$OUT"/floor/floor.*.out)" >"$OUT/$name-pusher.err"
    else
        # the pusher is one more subscriber; the others measure the fan-out
        "$CLI" -q -n 1 -b 127.0.0.250 "${args[@]}" -P "$url" \
            --push-rate "$RATE" -d "$SECS" "$addr" \
            >"$OUT/$name-pusher.out" 2>"$OUT/$name-pusher.err" || true
    fi

    # an overloaded server is still writing: wait for the deliveries to stop
    local pushed want last=-1 now t
    pushed=$(awk '$1 == "pushes_ok" {print $2 + 0}' "$OUT/$name-pusher.err")
    pushed=${pushed:-0}
    want=$(( pushed * (SUBS - SUBS % procs) ))
    for (( t = 0; t < 60; t++ )); do
        now=$(progress "$name-fan" messages)
        [ "$now" -ge "$want" ] || [ "$now" -eq "$last" ] && break
        last=$now
        sleep 1
    done
    c1=$(cpu_ticks "$w")
    k1=$(cpu_ticks "${PIDS[*]}")
    m1=$(machine_ticks)
    if [ "$name" = floor ]; then
        c1=$fc1 k1=$fk1 m1=$fm1
    fi
    stop_clients

    local msgs hz
    msgs=$(field_sum "$name-fan" messages)
    hz=$(getconf CLK_TCK)
    {
        echo "$name pushes_s $(( pushed / SECS ))"
        echo "$name deliveries $msgs"
        echo "$name lost $(( want - msgs ))"
        echo "$name deliveries_s $(field_sum "$name-fan" deliveries_s)"
        echo "$name p50_ms $(field_wmean "$name-fan" latency_p50_ms)"
        echo "$name p99_ms $(field_max "$name-fan" latency_p99_ms)"
        echo "$name cpu_us_per_delivery $(awk -v t=$(( c1 - c0 )) \
            -v hz="$hz" -v m="$msgs" \
            'BEGIN {printf "%.2f", m ? t * 1e6 / hz / m : 0}')"
        echo "$name client_cpu_us_per_delivery $(awk -v t=$(( k1 - k0 )) \
            -v hz="$hz" -v m="$msgs" \
            'BEGIN {printf "%.2f", m ? t * 1e6 / hz / m : 0}')"
        echo "$name push_answer_p99_ms $(awk '$1 == "push_answer_p99_ms" {print $2}' \
            "$OUT/$name-pusher.err")"
        echo "$name machine_busy_pct $(awk -v b="$m0" -v e="$m1" 'BEGIN {
            split(b, x, " "); split(e, y, " ")
            printf "%.0f", (y[2] - x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0}')"
    } >>"$OUT/results"
}


: >"$OUT/results"
rm -f "$OUT"/*.err "$OUT"/*.out "$OUT"/*-status.json

# PHASES: which of the three parts run
PHASES=" ${PHASES:-goim nchan hop} "

if [[ $PHASES == *" goim "* ]]; then
start_goim
measure goim 127.0.0.1:4102 -w -r live://1 -- \
    "http://127.0.0.1:4102/goim/push/room?operation=1000&type=live&room=1"
curl -s http://127.0.0.1:4102/status >"$OUT/goim-status.json"
stop_server goim
fi

if [[ $PHASES == *" nchan "* ]]; then
start_nchan
measure nchan 127.0.0.1:4202 --raw -- "http://127.0.0.1:4202/pub"
stop_server nchan
fi

if [[ $PHASES == *" floor "* ]]; then
start_floor
measure floor 127.0.0.1:4402 --raw -- none
stop_floor
# its CPU is its own report (it has exited when the fan-out is measured)
sed -i '/^floor cpu_us_per_delivery /d' "$OUT/results"
awk '/^RESULT floor/ {for (i = 2; i <= NF; i++) if ($i ~ /^cpu_s=|^deliveries=/) {
         split($i, a, "="); v[a[1]] += a[2] } }
     END {if (v["deliveries"]) printf "floor cpu_us_per_delivery %.2f\n", v["cpu_s"] * 1e6 / v["deliveries"]}' \
    "$OUT"/floor/floor.*.out >>"$OUT/results"
fi

# the hop alone: keyed pushes straight into comet's push RPC
if [[ $PHASES == *" hop "* ]]; then
start_goim
${HOP_CLIENT_PREFIX:-} "$CLI" -q -n "$HOP_KEYS" -k 'hop{i}' -i 1 -H 240 -L -d $(( SECS + 30 )) \
    -b 127.0.0.2-127.0.0.9 127.0.0.1:4101 \
    >"$OUT/hop.0.out" 2>"$OUT/hop.0.err" &
PIDS+=($!)
wait_clients hop "$HOP_KEYS"
sleep 2
"$BUILD/bench/push_rpc" -a 127.0.0.1:4109 -r "$HOP_RATE" -d "$SECS" \
    -n "$HOP_KEYS" -k hop >"$OUT/hop-pusher.out" 2>&1 || true
sleep 2
stop_clients
curl -s http://127.0.0.1:4102/status >"$OUT/hop-status.json"
stop_server goim
fi

hop=$(sed -n 's/.*"hop_us_p50":\([0-9]*\),"hop_us_p99":\([0-9]*\),"hop_us_p999":\([0-9]*\).*/\1 \2 \3/p' \
      "$OUT/goim-status.json" 2>/dev/null || true)
hop_alone=$(sed -n 's/.*"hop_us_p50":\([0-9]*\),"hop_us_p99":\([0-9]*\),"hop_us_p999":\([0-9]*\).*/\1 \2 \3/p' \
      "$OUT/hop-status.json" 2>/dev/null || true)

echo
echo "SUBS=$SUBS WORKERS=$WORKERS RATE=$RATE/s SECS=$SECS ($(nproc) cores)"
awk -v hop="$hop" -v alone="$hop_alone" \
    -v pushes="$(cat "$OUT/hop-pusher.out" 2>/dev/null)" \
    -v e2e="$(field_wmean hop latency_p50_ms 2>/dev/null) $(field_max hop latency_p99_ms 2>/dev/null)" '
    {v[$1, $2] = $3; k[$2] = 1}
    END {
        printf "| %-22s | %12s | %12s | %8s |\n", "", "ngx_goim", "nchan", "ratio"
        printf "|%s|%s|%s|%s|\n", "------------------------", "--------------", "--------------", "----------"
        n = split("mem_per_conn_bytes pushes_s deliveries_s lost p50_ms p99_ms cpu_us_per_delivery client_cpu_us_per_delivery machine_busy_pct", f, " ")
        for (i = 1; i <= n; i++) {
            g = v["goim", f[i]]; c = v["nchan", f[i]]
            printf "| %-22s | %12s | %12s | %8s |\n", f[i], g, c, (g + 0 ? sprintf("%.2f", c / g) : "-")
        }
        if (split(hop, h, " ") == 3)
            printf "\ncomet cross-worker hop during the fan-out: p50 < %s us, p99 < %s us, p99.9 < %s us\n", h[1], h[2], h[3]
        split(e2e, l, " ")
        if (split(alone, a, " ") == 3)
            printf "comet cross-worker hop alone (%s): p50 < %s us, p99 < %s us, p99.9 < %s us; push call to client p50 %s ms, p99 %s ms\n", pushes, a[1], a[2], a[3], l[1], l[2]
        printf "(ratio = nchan / ngx_goim: above 1 is ngx_goim doing better, but for deliveries_s where it is the other way round)\n"
    }' "$OUT/results"
