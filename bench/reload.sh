#!/bin/bash
# Reloads under load, with the hand-off and without (issue 14):
#
#   SUBS clients (half TCP, half WebSocket) in one room; a pusher by mid
#   (MID_RATE a second, each push to the next mid) and one to the room
#   (ROOM_RATE a second); RELOADS `nginx -s reload` GAP s apart.  Then:
#   connections the server closed, pushes lost (sent and answered
#   {"code":0}, never received) and duplicated, pushes that came out of
#   order, the hand-off's freeze per connection (p50/p99/max, from the
#   status page), and the time from each HUP to the old workers' exit.
#
#   bench/reload.sh                     # both modes, SUBS=10000 RELOADS=5
#   MODES=on SUBS=2000 bench/reload.sh
#
# Each goim-cli process holds at most PER_PROC clients and binds its own
# 127.0.0.x source addresses (one process may hold 20,000 files here).
# Clients reconnect when closed (--reconnect), as goim.js does.

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
CLI=$BUILD/goim-cli
OUT=$BUILD/bench/reload
SUBS=${SUBS:-10000}
MID_RATE=${MID_RATE:-100}
ROOM_RATE=${ROOM_RATE:-10}
RELOADS=${RELOADS:-5}
GAP=${GAP:-2}
PER_PROC=${PER_PROC:-2500}
MODES=${MODES:-"on off"}
MID0=100000

# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

[ -x "$CLI" ] || { echo "bench: build goim-cli first (make)" >&2; exit 1; }
mkdir -p "$OUT"

PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    stack_stop
}
trap cleanup EXIT

alive() {
    awk '/^goim-cli: [0-9.]+s alive/ {a[FILENAME] = $4}
         END {s = 0; for (k in a) s += a[k]; print s}' "$OUT"/client.*.err \
        2>/dev/null || echo 0
}

run() {
    local mode=$1 procs i n first tcp t0 t1 old w gone secs
    rm -f "$OUT"/client.*.err "$OUT"/client.*.out "$OUT"/push.*.err
    STACK_MAIN="goim_comet_handoff $mode;" stack_start "$mode"

    procs=$(( (SUBS + PER_PROC - 1) / PER_PROC ))
    n=$(( SUBS / procs ))
    for (( i = 0; i < procs; i++ )); do
        first=$(( 2 + i * 8 ))
        if (( i % 2 )); then tcp="-w 127.0.0.1:4302"; else tcp="127.0.0.1:4301"; fi
        # shellcheck disable=SC2086
        "$CLI" -q -n "$n" -m "$(( MID0 + i * n ))" -r live://1 -a 1000 \
            -R 4000 -H 30 -i 1 --reconnect --check-seq \
            -b "127.0.0.$first-127.0.0.$(( first + 7 ))" $tcp \
            >"$OUT/client.$i.out" 2>"$OUT/client.$i.err" &
        PIDS+=($!)
    done
    for (( t = 0; t < 120; t++ )); do
        [ "$(alive)" -ge "$SUBS" ] && break
        sleep 0.5
    done
    echo "bench: $mode: $(alive) clients up" >&2

    # the pushes run through the reloads and a little after
    secs=$(( RELOADS * GAP + 6 ))
    "$CLI" -q -n 1 -m 1 -r live://pusher -d "$secs" \
        -P "http://127.0.0.1:4302/goim/push/room?operation=1000&type=live&room=1" \
        --push-rate "$ROOM_RATE" --push-body " #r:{n}" 127.0.0.1:4301 \
        2>"$OUT/push.room.err" >/dev/null &
    local room_pusher=$!
    "$CLI" -q -n 1 -m 2 -r live://pusher -d "$secs" \
        -P "http://127.0.0.1:4302/goim/push/mids?operation=1000" \
        --push-mids "$MID0-$(( MID0 + SUBS - 1 ))" \
        --push-rate "$MID_RATE" --push-body " #m:{n}" 127.0.0.1:4301 \
        2>"$OUT/push.mid.err" >/dev/null &
    local mid_pusher=$!
    sleep 2

    : >"$OUT/reloads.$mode"
    for (( r = 1; r <= RELOADS; r++ )); do
        old=$(nginx_workers)
        t0=$(date +%s.%N)
        kill -HUP "$(cat "$OUT/nginx.pid")"
        # until none of the old workers is left
        while :; do
            gone=1
            for w in $old; do
                kill -0 "$w" 2>/dev/null && gone=0
            done
            [ $gone = 1 ] && break
            sleep 0.01
        done
        t1=$(date +%s.%N)
        echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}' >>"$OUT/reloads.$mode"
        sleep "$GAP"
    done

    wait "$room_pusher" "$mid_pusher" || true
    sleep 3
    curl -s "http://127.0.0.1:4302/status" >"$OUT/status.$mode.json"
    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
    stack_stop

    local room_ok mid_ok room_got mid_got dups reord closed reconn
    room_ok=$(field_sum pushes_ok "$OUT/push.room.err")
    mid_ok=$(field_sum pushes_ok "$OUT/push.mid.err")
    room_got=$(field_sum seq_room "$OUT"/client.*.err)
    mid_got=$(field_sum seq_mid "$OUT"/client.*.err)
    dups=$(field_sum seq_dups "$OUT"/client.*.err)
    reord=$(field_sum seq_reordered "$OUT"/client.*.err)
    closed=$(field_sum closed "$OUT"/client.*.err)
    reconn=$(field_sum reconnects "$OUT"/client.*.err)
    python3 - "$mode" "$SUBS" "$room_ok" "$mid_ok" "$room_got" "$mid_got" \
        "$dups" "$reord" "$closed" "$reconn" "$OUT/reloads.$mode" \
        "$OUT/status.$mode.json" <<'EOF'
import json, sys
(mode, subs, room_ok, mid_ok, room_got, mid_got, dups, reord, closed,
 reconn, reloads, status) = sys.argv[1:]
subs, room_ok, mid_ok, room_got, mid_got = map(int, (subs, room_ok, mid_ok, room_got, mid_got))
times = [float(l) for l in open(reloads) if l.strip()]
try:
    ho = json.load(open(status)).get("handoff", {})
except Exception:
    ho = {}
print(f"| {mode} | {closed} | {reconn} | {room_ok} x {subs} | "
      f"{room_ok * subs - room_got} | {mid_ok} | {mid_ok - mid_got} | {dups} | {reord} | "
      f"{ho.get('freeze_us_p50', '-')} / {ho.get('freeze_us_p99', '-')} / {ho.get('freeze_us_max', '-')} | "
      f"{min(times):.2f} / {max(times):.2f} | "
      f"{ho.get('handed_off', '-')} / {ho.get('drained', '-')} / {ho.get('failed', '-')} |")
EOF
}

echo "| hand-off | connections closed | reconnects | room pushes x members | room deliveries lost | pushes by mid | lost | duplicated | out of order | freeze us p50 / p99 / max | HUP to old workers gone, s (min / max) | handed off / drained / failed |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for m in $MODES; do
    run "$m"
done
