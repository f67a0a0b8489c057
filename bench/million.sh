#!/bin/bash
# A million connections on one machine (goim's headline: one million on one
# comet): N authenticated goim clients, half TCP and half WebSocket, on one
# nginx of WORKERS workers (every process here may hold 20,000 open files
# at most, so about 52 workers and as many client processes, each bound to
# its own 127.0.0.x source addresses), in rooms of ROOM_SIZE.  56 workers by
# default: 1,000,000 / 56 leaves each worker's share of a random spread
# well under 20,000.
#
#   1. ramp: every client process connects at RAMP/PROCS a second; the
#      connect rate is N over the time until comet counts N online;
#      nginx's and router's memory before and after (nginx PSS per
#      connection; router RSS per session);
#   2. hold HOLD s with heartbeats every HEARTBEAT s (goim's client
#      interval: 4 min); the CPU nginx spent on them, per heartbeat;
#   3. a broadcast (op 1001) to every client that accepts it (all but the
#      probes): how long until the last one has it (the clients' latency
#      max; p50, p99 too);
#   4. PROBES pushes by mid, to PROBES clients of their own (they accept
#      op 1000 only, so the broadcast and rooms do not mix into their
#      figures), at PROBE_RATE a second: the push-to-client latency
#      p50 / p99 under that load;
#   5. one push to each room (ROOM_SIZE members);
#   6. everyone stops (SIGINT): each client process's summary says what
#      it got; nothing may be missing.
#
#   bench/million.sh                       # N=1000000 WORKERS=52 HOLD=300
#   N=40000 WORKERS=4 HOLD=10 bench/million.sh   # a rehearsal
#
# It checks the machine's limits first, cleans up after itself (trap), stops
# by itself (every wait has a deadline), and stays on 127.0.0.0/8.  Output
# and logs in build/bench/million/.  Never part of make test.

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
CLI=$BUILD/goim-cli
OUT=$BUILD/bench/million
N=${N:-1000000}
WORKERS=${WORKERS:-56}
PER_PROC=${PER_PROC:-19000}
ROOM_SIZE=${ROOM_SIZE:-10000}
HOLD=${HOLD:-300}
HEARTBEAT=${HEARTBEAT:-240}
RAMP=${RAMP:-4000}              # connects a second, all processes
PROBES=${PROBES:-1000}
PROBE_RATE=${PROBE_RATE:-100}
DEADLINE=${DEADLINE:-900}
MID0=1000000
ADDRS_PER_PROC=2
WATCH=(python3 "$TOP/bench/watch.py" --job 127.0.0.1:4329 --status 127.0.0.1:4302)

mkdir -p "$OUT"
# a bigger run's client files would be added up with this one's
rm -f "$OUT"/client.*.err "$OUT"/client.*.out "$OUT"/probes.*

# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

say() { echo "bench: $(date +%T) $*" >&2; }
die() { say "$*"; exit 1; }
calc() { awk "BEGIN { printf \"%.2f\", ($1) }"; }
now() { date +%s.%N; }

BIG=$(( N - PROBES ))
PROCS=$(( (BIG + PER_PROC - 1) / PER_PROC ))
PER=$(( BIG / PROCS ))
BIG=$(( PER * PROCS ))
N=$(( BIG + PROBES ))
ROOMS=$(( (BIG + ROOM_SIZE - 1) / ROOM_SIZE ))

# ---- the machine's limits -------------------------------------------------

check_limits() {
    local nofile lo hi mem files
    [ -x "$CLI" ] && [ -x "$BUILD/goim-job" ] && [ -x "$BUILD/goim-router" ] \
        && [ -f "$BUILD/nginx/objs/ngx_goim_comet_module.so" ] \
        || die "build first (make)"
    command -v python3 >/dev/null || die "python3 is needed (bench/watch.py)"
    (( PER_PROC <= 19000 )) || die "PER_PROC=$PER_PROC: a process holds at most 20,000 open files"
    nofile=$(ulimit -Hn)
    (( nofile >= PER + 64 )) || die "ulimit -Hn is $nofile, a client process needs $(( PER + 64 ))"
    # reuseport spreads connections at random: 5% spare in each worker
    (( N * 21 / 20 / WORKERS + 300 < 20000 )) \
        || die "N=$N is too many for $WORKERS workers of 20,000 connections: raise WORKERS"
    (( 2 + (PROCS + 1) * ADDRS_PER_PROC <= 254 )) || die "too many client processes for 127.0.0.2-254"
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    (( PER / ADDRS_PER_PROC < (hi - lo + 1) * 3 / 4 )) \
        || die "ip_local_port_range ($lo-$hi) is too small for $(( PER / ADDRS_PER_PROC )) connections an address"
    files=$(cut -f3 /proc/sys/fs/file-nr)
    (( files > 2 * N + 100000 )) || die "fs.file-max is $files: $N connections take $(( 2 * N )) files"
    mem=$(awk '/^MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)
    # kernel sockets on both sides, nginx, router and the clients: ~10 KB a connection
    (( mem >= N / 100 )) || die "only $mem MB of memory available for $N connections"
    if ss -Hltn 'sport = :4301 or sport = :4302 or sport = :4309 or sport = :4319 or sport = :4329 or sport = :4339' \
        | grep -q .; then
        die "a port of 4301-4339 is taken (another benchmark running?)"
    fi
    say "$(nproc) CPUs, ulimit -Hn $nofile, ports $lo-$hi, file-max $files, ${mem} MB available, load $(cut -d' ' -f1-3 /proc/loadavg)"
    say "$N clients: $PROCS processes of $PER (half TCP, half WebSocket) in $ROOMS rooms of ~$ROOM_SIZE, and $PROBES probes; $WORKERS nginx workers"
}

# ---- the processes --------------------------------------------------------

CLIENT_PIDS=()
OTHER_PIDS=()

cleanup() {
    local p
    for p in "${CLIENT_PIDS[@]}" "${OTHER_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    CLIENT_PIDS=() OTHER_PIDS=()
    stack_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

clients_start() {
    local i first to rate
    rate=$(( RAMP / (PROCS + 1) ))
    for (( i = 0; i < PROCS; i++ )); do
        first=$(( 2 + i * ADDRS_PER_PROC ))
        if (( i % 2 )); then to="-w 127.0.0.1:4302"; else to="127.0.0.1:4301"; fi
        # shellcheck disable=SC2086
        # --reconnect: a connect the machine turned away (a full accept
        # queue, an auth past its 10 s) comes back after a backoff
        "$CLI" -q -L --reconnect -n "$PER" -m "$(( MID0 + i * PER ))" -a 1000,1001 \
            -r 'live://{r}' --rooms "$ROOMS" -R "$rate" -H "$HEARTBEAT" \
            -b "127.0.0.$first-127.0.0.$(( first + ADDRS_PER_PROC - 1 ))" $to \
            >/dev/null 2>"$OUT/client.$i.err" &
        CLIENT_PIDS+=($!)
    done
    # the probes: op 1000 only, in no room
    first=$(( 2 + PROCS * ADDRS_PER_PROC ))
    "$CLI" -q -L --reconnect -n "$PROBES" -m "$(( MID0 + BIG ))" -a 1000 -R "$rate" -H "$HEARTBEAT" \
        -b "127.0.0.$first-127.0.0.$(( first + ADDRS_PER_PROC - 1 ))" 127.0.0.1:4301 \
        >/dev/null 2>"$OUT/probes.err" &
    CLIENT_PIDS+=($!)
}

# KB of proportional memory (PSS) of processes
pss() {
    local p s=0
    for p in "$@"; do
        s=$(( s + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0) ))
    done
    echo "$s"
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

watch_until() {
    local name=$1
    shift
    "${WATCH[@]}" --interval 250 --deadline "$DEADLINE" --keys online \
        "${@/#/--goal=}" >"$OUT/watch.$name"
    grep -q '^done=' "$OUT/watch.$name"
}

status() { curl -s http://127.0.0.1:4302/status; }
packets_out() { status | python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"]["out"])'; }

post() { curl -s -o /dev/null -w '%{http_code}' --data-binary "$2" "http://127.0.0.1:4302$1"; }

# a summary field of the client processes (the probes' separately)
field() { field_sum "$1" "$OUT"/client.*.err; }
max_field() { cat "$OUT"/client.*.err | awk -v f="$1" '$1 == f && $2 > m {m = $2} END {print m + 0}'; }

# ---- the run --------------------------------------------------------------

check_limits

STACK_MAIN="
goim_comet_zone 512m;
goim_comet_worker_queue 1m;
goim_comet_rpc_timeout 30s;
goim_comet_rpc_max_backlog 64m;
goim_logic_rpc_max_backlog 64m;
"
STACK_LISTEN="backlog=4096"
stack_start million
ROUTER_PID=${STACK_DAEMONS[0]}
NGINX_PIDS=$(nginx_workers)
# shellcheck disable=SC2086
nginx0=$(pss $NGINX_PIDS "$(cat "$OUT/nginx.pid")")
router0=$(rss "$ROUTER_PID")
say "nginx up: $WORKERS workers, ${nginx0} KB PSS; router ${router0} KB RSS"

# 1. the ramp
t0=$(now)
clients_start
watch_until ramp "online>=$N" || die "only $(tail -2 "$OUT/watch.ramp" | head -1) online after ${DEADLINE} s"
t1=$(grep '^done=' "$OUT/watch.ramp" | cut -d= -f2)
ramp_s=$(calc "$t1 - $t0")
# shellcheck disable=SC2086
nginx1=$(pss $NGINX_PIDS "$(cat "$OUT/nginx.pid")")
router1=$(rss "$ROUTER_PID")
say "ramp: $N online in $ramp_s s ($(calc "$N / $ramp_s") connects/s); nginx $nginx1 KB, router $router1 KB"

# 2. the hold, with heartbeats
# shellcheck disable=SC2086
ticks0=$(cpu_ticks $NGINX_PIDS)
rticks0=$(cpu_ticks "$ROUTER_PID")
sleep "$HOLD"
# shellcheck disable=SC2086
ticks1=$(cpu_ticks $NGINX_PIDS)
rticks1=$(cpu_ticks "$ROUTER_PID")
online=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"]["online"])')
hz=$(getconf CLK_TCK)
beats=$(calc "$N * $HOLD / $HEARTBEAT")
say "hold: $online online after $HOLD s; nginx $(calc "($ticks1 - $ticks0) / $hz") s CPU for ~$beats heartbeats, router $(calc "($rticks1 - $rticks0) / $hz") s"

# 3. the broadcast
out0=$(packets_out)
tb=$(now)
code=$(post "/goim/push/all?operation=1001" "ts=$(date +%s%6N) broadcast")
[ "$code" = 200 ] || die "broadcast answered $code"
for (( i = 0; i < 1200; i++ )); do
    (( $(packets_out) - out0 >= BIG )) && break
    sleep 0.25
done
say "broadcast: comet wrote $(( $(packets_out) - out0 )) packets in $(calc "$(now) - $tb") s (heartbeat replies included)"

# 4. pushes by mid to the probes, latency measured by them
"$CLI" -q -n 1 -m 1 -d "$(( PROBES / PROBE_RATE + 30 ))" --push-count "$PROBES" \
    -P "http://127.0.0.1:4302/goim/push/mids?operation=1000" \
    --push-mids "$(( MID0 + BIG ))-$(( MID0 + BIG + PROBES - 1 ))" \
    --push-rate "$PROBE_RATE" 127.0.0.1:4301 >/dev/null 2>"$OUT/pusher.err" &
OTHER_PIDS+=($!)
wait "${OTHER_PIDS[-1]}" || true
say "mid pushes: $(field_sum pushes_ok "$OUT/pusher.err") of $PROBES answered ok"

# 5. one push into each room (no timestamp: the latency figures stay the broadcast's)
out1=$(packets_out)
tr=$(now)
for (( r = 0; r < ROOMS; r++ )); do
    code=$(post "/goim/push/room?operation=1000&type=live&room=$r" "room $r")
    [ "$code" = 200 ] || say "room $r: answered $code"
done
for (( i = 0; i < 1200; i++ )); do
    (( $(packets_out) - out1 >= BIG )) && break
    sleep 0.25
done
say "rooms: comet wrote $(( $(packets_out) - out1 )) packets in $(calc "$(now) - $tr") s (heartbeat replies included)"

# 6. the summaries
jstats=$("$BUILD/goim-job" --stats 127.0.0.1:4329)
rstats=$("$BUILD/goim-router" --stats 127.0.0.1:4339 2>/dev/null || true)
for p in "${CLIENT_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${CLIENT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
CLIENT_PIDS=()

got=$(field_sum messages "$OUT"/client.[0-9]*.err)
want=$(( BIG * 2 ))                  # the broadcast and their room's push
probe_got=$(field_sum messages "$OUT/probes.err")
closed=$(( $(field_sum closed "$OUT"/client.*.err "$OUT/probes.err") ))
lat_max=$(max_field latency_max_ms)
lat_p99=$(max_field latency_p99_ms)

{
    echo "connections            $N ($BIG in $PROCS processes, half TCP and half WebSocket, $PROBES probes)"
    echo "nginx workers          $WORKERS"
    echo "ramp                   $ramp_s s: $(calc "$N / $ramp_s") connects/s"
    echo "nginx PSS              $(calc "($nginx1 - $nginx0) / 1024") MB more: $(calc "($nginx1 - $nginx0) * 1024 / $N") bytes a connection"
    echo "router RSS             $(calc "($router1 - $router0) / 1024") MB more: $(calc "($router1 - $router0) * 1024 / $N") bytes a session"
    echo "hold                   $HOLD s, heartbeats every $HEARTBEAT s (~$beats): nginx $(calc "($ticks1 - $ticks0) / $hz") s CPU, $(calc "($ticks1 - $ticks0) * 1000000 / $hz / $beats") us a heartbeat; router $(calc "($rticks1 - $rticks0) / $hz") s"
    echo "broadcast              to $BIG: p50 $(max_field latency_p50_ms) ms (the slowest process's), p99 $lat_p99 ms, last one after $lat_max ms"
    echo "mid pushes             $PROBES to $PROBES probes: $(field_sum latency_count "$OUT/probes.err") timed, p50 $(field_sum latency_p50_ms "$OUT/probes.err") ms, p99 $(field_sum latency_p99_ms "$OUT/probes.err") ms, max $(field_sum latency_max_ms "$OUT/probes.err") ms"
    echo "rooms                  $ROOMS pushes into rooms of ~$ROOM_SIZE"
    echo "delivered              $got of $want to the big processes, $probe_got of $PROBES to the probes; $closed connections closed by the server"
    echo "job                    $(echo "$jstats" | grep -E '^(failed|dropped|push_refused|keys_dropped)=' | tr '\n' ' ')"
} | tee "$OUT/result"
