#!/bin/bash
# What WebSocket permessage-deflate costs and saves (issue 17): the same
# room of SUBS WebSocket subscribers twice in one run, on a location
# without compression (/sub) and one with goim_comet_ws_deflate on
# (/subz, goim-cli --deflate), each on a fresh stack:
#
#   memory    the nginx workers' resident growth per connection, once all
#             are up (the zlib streams are the worker's, not the
#             connection's: made at the first compressed message)
#   room      ROOM_PUSHES room pushes of a realistic JSON message
#             (BODY_BYTES, a chat batch) at ROOM_RATE/s: every one
#             reaches all SUBS; nginx CPU per delivery, bytes read off
#             the client sockets per delivery, goim-cli's CPU per
#             delivery (its inflating)
#   mid       MID_PUSHES pushes by mid at MID_RATE/s, each to one
#             subscriber: a message per recipient, so each is compressed
#             for one delivery (the worst case for deflate's CPU)
#   worker    the workers' resident growth over both push phases (the
#             zlib streams, made at the first compressed message)
#
# Three rows: plain, deflate at goim_comet_ws_deflate_level 6 (the
# default), and at level 1 (LEVELS="6 1").
#
#   bench/deflate.sh                    # SUBS=10000
#   SUBS=2000 ROOM_PUSHES=10 bench/deflate.sh
#
# It shares the machine: one nginx worker, pushes paced, about a minute.

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
CLI=$BUILD/goim-cli
OUT=$BUILD/bench/deflate
SUBS=${SUBS:-10000}
ROOM_PUSHES=${ROOM_PUSHES:-20}
ROOM_RATE=${ROOM_RATE:-2}
MID_PUSHES=${MID_PUSHES:-4000}
MID_RATE=${MID_RATE:-400}
PER_PROC=${PER_PROC:-5000}
MID0=300000
WORKERS=${WORKERS:-1}
# clear of bench/lib.sh's usual 4301-4339, which another benchmark may hold
STACK_BASE=${STACK_BASE:-4700}
HTTP=127.0.0.1:$(( STACK_BASE + 2 ))
TCP=127.0.0.1:$(( STACK_BASE + 1 ))
STACK_LOCATIONS='location = /subz { goim_comet_ws; goim_comet_ws_deflate on; }'

# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

[ -x "$CLI" ] || { echo "bench: build goim-cli first (make)" >&2; exit 1; }
mkdir -p "$OUT"

# a chat batch as an app would push it: ids, names, texts, timestamps
python3 - >"$OUT/body.json" <<'PY'
import json
msgs = [{"id": 90210 + i, "room": "live://bench", "type": "chat",
         "from": {"uid": 100000 + i * 7, "name": f"viewer_{i * 7}",
                  "level": i % 9, "badges": ["fan"] if i % 3 else []},
         "text": ["nice play!", "what a goal", "lol", "gg everyone",
                  "who else is watching from home?", "replay please"][i % 6],
         "ts": 1764779000123 + i * 137} for i in range(6)]
print(json.dumps({"op": "room.batch", "seq": 4711, "messages": msgs},
                 separators=(",", ":")), end="")
PY
BODY=$(cat "$OUT/body.json")

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    stack_stop
}
trap cleanup EXIT

# the last progress line's field N, summed over the client processes
progress() {
    awk -v f="$1" '/^goim-cli: [0-9.]+s alive/ {a[FILENAME] = $f}
         END {s = 0; for (k in a) s += a[k]; print s}' "$OUT"/client.*.err \
        2>/dev/null || echo 0
}

# until the clients have $1 messages (for at most $2 s)
wait_messages() {
    local t
    for (( t = 0; t < $2 * 5; t++ )); do
        [ "$(progress 6)" -ge "$1" ] && return 0
        sleep 0.2
    done
    return 1
}

run() {
    local mode=$1 path=$2 flags=$3 rss2 procs i n first ws rss0 rss1 cpu0 cpu1 \
          cli0 cli1 wire0 wire1 got0 got1 room mcpu0 mcpu1 mwire0 mwire1 \
          mgot0 mgot1 hz
    rm -f "$OUT"/client.*.err "$OUT"/client.*.out "$OUT"/push.*.err
    stack_start "$mode"
    hz=$(getconf CLK_TCK)
    ws=$(nginx_workers)
    # shellcheck disable=SC2086
    rss0=$(rss_kb $ws)

    procs=$(( (SUBS + PER_PROC - 1) / PER_PROC ))
    n=$(( SUBS / procs ))
    local clis=()
    for (( i = 0; i < procs; i++ )); do
        first=$(( 2 + i * 4 ))
        # shellcheck disable=SC2086
        "$CLI" -q -w --path "$path" $flags -n "$n" -m "$(( MID0 + i * n ))" \
            -r live://bench -a 1000 -R 2000 -H 600 -i 0.5 \
            -b "127.0.0.$first-127.0.0.$(( first + 3 ))" $HTTP \
            >"$OUT/client.$i.out" 2>"$OUT/client.$i.err" &
        PIDS+=($!)
        clis+=($!)
    done
    for (( t = 0; t < 240; t++ )); do
        [ "$(progress 4)" -ge "$SUBS" ] && break
        sleep 0.5
    done
    sleep 1
    echo "bench: $mode: $(progress 4) clients up" >&2
    # shellcheck disable=SC2086
    rss1=$(rss_kb $ws)

    # room pushes: each reaches every subscriber
    got0=$(progress 6); wire0=$(progress 13)
    # shellcheck disable=SC2086
    cpu0=$(cpu_ticks $ws); cli0=$(cpu_ticks "${clis[@]}")
    "$CLI" -q -n 1 -m 1 -d $(( ROOM_PUSHES / ROOM_RATE + 5 )) \
        -P "http://$HTTP/goim/push/room?operation=1000&type=live&room=bench" \
        --push-body "$BODY" --push-rate "$ROOM_RATE" --push-count "$ROOM_PUSHES" \
        $TCP 2>"$OUT/push.room.err" >/dev/null
    wait_messages $(( got0 + ROOM_PUSHES * SUBS )) 60 \
        || echo "bench: $mode: room pushes short: $(progress 6)" >&2
    sleep 1
    got1=$(progress 6); wire1=$(progress 13)
    # shellcheck disable=SC2086
    cpu1=$(cpu_ticks $ws); cli1=$(cpu_ticks "${clis[@]}")

    # pushes by mid: one recipient each
    mgot0=$got1; mwire0=$wire1
    # shellcheck disable=SC2086
    mcpu0=$(cpu_ticks $ws)
    "$CLI" -q -n 1 -m 1 -d $(( MID_PUSHES / MID_RATE + 5 )) \
        -P "http://$HTTP/goim/push/mids?operation=1000" \
        --push-mids "$MID0-$(( MID0 + procs * n - 1 ))" \
        --push-body "$BODY" --push-rate "$MID_RATE" --push-count "$MID_PUSHES" \
        $TCP 2>"$OUT/push.mid.err" >/dev/null
    wait_messages $(( mgot0 + MID_PUSHES )) 30 \
        || echo "bench: $mode: mid pushes short: $(progress 6)" >&2
    sleep 1
    mgot1=$(progress 6); mwire1=$(progress 13)
    # shellcheck disable=SC2086
    mcpu1=$(cpu_ticks $ws)
    # shellcheck disable=SC2086
    rss2=$(rss_kb $ws)

    curl -s http://$HTTP/status >"$OUT/status.$mode.json" || true

    for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
    stack_stop

    python3 - "$mode" "$hz" "$SUBS" "$rss0" "$rss1" "$rss2" \
        "$(( got1 - got0 ))" "$(( wire1 - wire0 ))" "$(( cpu1 - cpu0 ))" \
        "$(( cli1 - cli0 ))" "$(( mgot1 - mgot0 ))" "$(( mwire1 - mwire0 ))" \
        "$(( mcpu1 - mcpu0 ))" "$(field_sum deflate_conns "$OUT"/client.*.err)" \
        "$(field_sum bad_frames "$OUT"/client.*.err)" \
        "$OUT/status.$mode.json" "${#BODY}" <<'PY'
import json, sys
(mode, hz, subs, rss0, rss1, rss2, got, wire, cpu, cli, mgot, mwire, mcpu, dconns,
 bad, status, body) = sys.argv[1:]
hz, subs, got, wire, cpu, cli = int(hz), int(subs), int(got), int(wire), int(cpu), int(cli)
mgot, mwire, mcpu = int(mgot), int(mwire), int(mcpu)
us = lambda t, n: f"{t / hz * 1e6 / n:.2f}" if n else "-"
per = lambda b, n: f"{b / n:.0f}" if n else "-"
try:
    d = json.load(open(status)).get("deflate", {})
except Exception:
    d = {}
ratio = f"{d['bytes_out'] / d['bytes_in']:.2f}" if d.get("bytes_in") else "-"
print(f"| {mode} | {subs} ({dconns} deflate) | {(int(rss1) - int(rss0)) * 1024 / subs:.0f} | "
      f"{got} | {per(wire, got)} | {us(cpu, got)} | {us(cli, got)} | "
      f"{mgot} | {per(mwire, mgot)} | {us(mcpu, mgot)} | "
      f"{int(rss2) - int(rss1)} | "
      f"{d.get('messages', 0)} / {d.get('frames', 0)} | {ratio} | {bad} |")
PY
}

echo "body: ${#BODY} bytes of JSON ($OUT/body.json)"
echo
echo "| mode | subscribers | nginx RSS bytes / connection | room deliveries | wire bytes / delivery | nginx CPU us / delivery | client CPU us / delivery | mid deliveries | wire bytes / delivery | nginx CPU us / delivery | worker RSS growth over the pushes, kB | messages compressed / compressed frames | compressed / original | bad frames |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
run plain /sub ""
for level in ${LEVELS:-6 1}; do
    STACK_MAIN="goim_comet_ws_deflate_level $level;"
    run "deflate-$level" /subz --deflate
done
