#!/bin/bash
# What ensure=1 costs (issue 15): the same load twice, plain pushes by mid
# and ensure pushes by mid, in one run:
#
#   SUBS clients (half TCP, half WebSocket) that acknowledge (goim-cli
#   --ack); a pusher by mid at RATE a second for SECS s, each push to the
#   next mid, its body timestamped.  Then: pushes answered, deliveries
#   and deliveries/s, duplicates (resends the client dropped), latency
#   p50/p99 (push sent to message read), the CPU of the nginx workers and
#   of goim-job per delivery, and what job still holds.
#
#   bench/ensure.sh                      # SUBS=2000 RATE=1000 SECS=20
#   SUBS=500 RATE=200 bench/ensure.sh
#
# Each goim-cli process holds at most PER_PROC clients on its own
# 127.0.0.x source addresses.

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
CLI=$BUILD/goim-cli
OUT=$BUILD/bench/ensure
SUBS=${SUBS:-2000}
RATE=${RATE:-1000}
SECS=${SECS:-20}
PER_PROC=${PER_PROC:-1000}
MID0=200000

# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

[ -x "$CLI" ] || { echo "bench: build goim-cli first (make)" >&2; exit 1; }
mkdir -p "$OUT"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    stack_stop
}
trap cleanup EXIT

alive() {
    awk '/^goim-cli: [0-9.]+s alive/ {a[FILENAME] = $4}
         END {s = 0; for (k in a) s += a[k]; print s}' "$OUT"/client.*.err \
        2>/dev/null || echo 0
}

run() {
    local mode=$1 query=$2 procs i n first tcp cpu0 cpu1 job0 job1 ws
    rm -f "$OUT"/client.*.err "$OUT"/client.*.out "$OUT"/push.err
    stack_start "$mode"

    procs=$(( (SUBS + PER_PROC - 1) / PER_PROC ))
    n=$(( SUBS / procs ))
    for (( i = 0; i < procs; i++ )); do
        first=$(( 2 + i * 4 ))
        if (( i % 2 )); then tcp="-w 127.0.0.1:4302"; else tcp="127.0.0.1:4301"; fi
        # shellcheck disable=SC2086
        "$CLI" -q -n "$n" -m "$(( MID0 + i * n ))" -a 1000 -R 2000 -H 30 \
            -i 1 -L --ack -b "127.0.0.$first-127.0.0.$(( first + 3 ))" $tcp \
            >"$OUT/client.$i.out" 2>"$OUT/client.$i.err" &
        PIDS+=($!)
    done
    for (( t = 0; t < 120; t++ )); do
        [ "$(alive)" -ge "$SUBS" ] && break
        sleep 0.5
    done
    echo "bench: $mode: $(alive) clients up" >&2

    ws=$(nginx_workers)
    # shellcheck disable=SC2086
    cpu0=$(cpu_ticks $ws)
    job0=$(cpu_ticks "$JOB_PID")
    "$CLI" -q -n 1 -m 1 -d "$SECS" \
        -P "http://127.0.0.1:4302/goim/push/mids?operation=1000$query" \
        --push-mids "$MID0-$(( MID0 + procs * n - 1 ))" \
        --push-rate "$RATE" 127.0.0.1:4301 2>"$OUT/push.err" >/dev/null
    sleep 2
    # shellcheck disable=SC2086
    cpu1=$(cpu_ticks $ws)
    job1=$(cpu_ticks "$JOB_PID")
    "$BUILD/goim-job" --stats 127.0.0.1:4329 >"$OUT/job.$mode.stats" 2>&1 || true

    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
    stack_stop

    python3 - "$mode" "$SECS" "$(getconf CLK_TCK)" \
        "$(field_sum pushes_ok "$OUT/push.err")" \
        "$(field_sum pushes_failed "$OUT/push.err")" \
        "$(field_sum messages "$OUT"/client.*.err)" \
        "$(field_sum ensure_dups "$OUT"/client.*.err)" \
        "$(awk '$1 == "latency_p50_ms" {print $2}' "$OUT"/client.*.err | sort -n | tail -1)" \
        "$(awk '$1 == "latency_p99_ms" {print $2}' "$OUT"/client.*.err | sort -n | tail -1)" \
        "$(( cpu1 - cpu0 ))" "$(( job1 - job0 ))" "$OUT/job.$mode.stats" <<'EOF'
import sys
(mode, secs, hz, ok, failed, got, dups, p50, p99, cpu, job, stats) = sys.argv[1:]
secs, hz, ok, got, cpu, job = int(secs), int(hz), int(ok), int(got), int(cpu), int(job)
st = dict(l.strip().split("=", 1) for l in open(stats) if "=" in l)
per = lambda t: f"{t / hz * 1e6 / got:.2f}" if got else "-"
print(f"| {mode} | {ok} / {failed} | {got} | {got / secs:.0f} | {dups} | {p50} / {p99} | "
      f"{per(cpu)} | {per(job)} | {st.get('ensure_pending', '-')} |")
EOF
}

echo "| pushes | answered ok / failed | delivered | deliveries/s | duplicates dropped | latency ms p50 / p99 (worst client) | nginx CPU us / delivery | job CPU us / delivery | pending in job after |"
echo "|---|---|---|---|---|---|---|---|---|"
run plain ""
run ensure "&ensure=1"
