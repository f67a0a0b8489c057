#!/bin/bash
# Recovery after an outage: SUBS clients that acknowledge (goim-cli --ack,
# half TCP, half WebSocket, PER_PROC a process, each process on its own
# 127.0.0.x source addresses) are connected; then the outage: every client
# process is killed (SIGKILL), so all connections close at once, as when
# the clients' side of the network goes (nginx, job and router stay up and
# see every connection close).  During the OUTAGE s, PER_CLIENT pushes by
# mid go to every client's mid (PUSHERS goim-cli pushers through logic's
# HTTP API, spread over the outage); then all SUBS clients reconnect at
# once (new processes, no connect rate limit) and the run measures, from
# that moment, every 10 ms (bench/watch.py: job's counters over RPC,
# comet's /status, the CPU ticks of the nginx workers and of job):
#
#   - connects: until comet counts SUBS clients online, and until job has
#     every connection's first op 18 (ensure_online);
#   - for the mode's messages: until they are all delivered (and, for
#     ensure, acknowledged: job's ensure_acked, nothing pending);
#   - the CPU the nginx workers and job used meanwhile;
#   - what was lost: expired or pending in job, missing or duplicated at
#     the clients.
#
#   bench/recovery.sh                     # MODES="ensure plain" SUBS=10000
#   MODES=ensure SUBS=2000 OUTAGE=3 bench/recovery.sh
#   MODES="room room_plain" bench/recovery.sh      # ROOMS=10 ROOM_MSGS=10
#
# Modes (one function each: outage_<mode> sends during the outage,
# goals_<mode> says when recovery is done, report_<mode> prints its row):
#
#   ensure   ensure=1 pushes by mid: job keeps them while the mid is
#            offline and sends them when its connection sends op 18
#   plain    the same pushes without ensure=1: the comparison point (a
#            push to a mid with no connection is answered and lost)
#   room     room recovery: the clients ask for positions (goim-cli
#            --recover) in ROOMS rooms, one process a room (SUBS / ROOMS
#            clients each); a room message before the outage gives them
#            a position (each client's own, from its op-20 lines: the
#            clients of a room agree); ROOM_MSGS pushes to each room
#            during the outage; the new processes start from the saved
#            position (--room-pos) and comet (goim_comet_room_history
#            HISTORY) sends what they missed; done when every client
#            process has every missed message (-e) and comet counts SUBS
#            recoveries and SUBS x ROOM_MSGS messages recovered
#   room_plain  the same without --recover: the comparison point (the
#            room messages of the outage are not sent to anyone)
#
# Parameters: SUBS (10000), PER_PROC (2500), OUTAGE s (5), PER_CLIENT
# pushes for each client during it (1), PUSHERS (4), WORKERS (2),
# BACKLOG of comet's TCP and WebSocket listeners (nginx's default, 511
# each worker's reuseport socket), DEADLINE s for each wait (120), MODES
# ("ensure plain"; "room room_plain" for the room modes), ROOMS (10),
# ROOM_MSGS pushes to each room during the outage (10), HISTORY, comet's
# goim_comet_room_history in the room modes (1000).  Output and logs
# in build/bench/recovery/.  Never part of make test; everything on
# 127.0.0.0/8; it stops by itself and stops what it started.

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
CLI=$BUILD/goim-cli
OUT=$BUILD/bench/recovery
SUBS=${SUBS:-10000}
PER_PROC=${PER_PROC:-2500}
OUTAGE=${OUTAGE:-5}
PER_CLIENT=${PER_CLIENT:-1}
PUSHERS=${PUSHERS:-4}
DEADLINE=${DEADLINE:-120}
MODES=${MODES:-ensure plain}
MID0=300000
ROOMS=${ROOMS:-10}
ROOM_MSGS=${ROOM_MSGS:-10}
HISTORY=${HISTORY:-1000}
BACKLOG=${BACKLOG:-}
STACK_LISTEN=${BACKLOG:+backlog=$BACKLOG}
ADDRS_PER_PROC=4
WATCH=(python3 "$TOP/bench/watch.py" --job 127.0.0.1:4329 --status 127.0.0.1:4302)
KEYS=online,ensure_online,ensure_msgs,ensure_sends,ensure_acked,ensure_pending,ensure_resends,ensure_expired_ttl,ensure_expired_retries,push_msgs,keys_delivered,keys_dropped,history_kept,history_breaks,history_evicted,history_dropped,history_recovered,history_gaps,history_recovered_msgs

# shellcheck source=bench/lib.sh
. "$TOP/bench/lib.sh"

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

SUBS0=$SUBS

# layout MODE: PROCS client processes of N clients (SUBS in all); the room
# modes have one process a room
layout() {
    case $1 in
    room*) PROCS=$ROOMS ;;
    *) PROCS=$(( (SUBS0 + PER_PROC - 1) / PER_PROC )) ;;
    esac
    N=$(( SUBS0 / PROCS ))              # clients a process
    SUBS=$(( N * PROCS ))
}
is_room() { [[ $1 == room* ]]; }

# ---- the machine's limits -------------------------------------------------

check_limits() {
    local mode=$1 nofile ports lo hi mem
    [ -x "$CLI" ] && [ -x "$BUILD/goim-job" ] && [ -x "$BUILD/goim-router" ] \
        && [ -f "$BUILD/nginx/objs/ngx_goim_comet_module.so" ] \
        || die "build first (make)"
    command -v python3 >/dev/null || die "python3 is needed (bench/watch.py)"
    (( N <= 19000 )) || die "$N clients a process: a process holds at most 20,000 open files (lower PER_PROC, or raise ROOMS)"
    nofile=$(ulimit -n)
    (( nofile >= N + 64 )) \
        || die "ulimit -n is $nofile, a client process needs $(( N + 64 )): lower PER_PROC or raise it"
    # lib.sh's nginx: worker_rlimit_nofile and worker_connections 20000;
    # reuseport spreads connections unevenly, so leave a third spare
    (( SUBS * 3 / 2 / WORKERS + 200 < 20000 )) \
        || die "SUBS=$SUBS is too many for $WORKERS workers of 20,000 connections: raise WORKERS"
    (( 2 + PROCS * ADDRS_PER_PROC <= 254 )) || die "too many client processes for 127.0.0.2-254"
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    ports=$(( hi - lo + 1 ))
    (( N / ADDRS_PER_PROC < ports / 2 )) \
        || die "ip_local_port_range ($lo-$hi) is too small for $(( N / ADDRS_PER_PROC )) connections an address"
    mem=$(awk '/^MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)
    (( mem >= 1024 )) || die "only $mem MB of memory available"
    if ss -Hltn 'sport = :4301 or sport = :4302 or sport = :4309 or sport = :4319 or sport = :4329 or sport = :4339' \
        | grep -q .; then
        die "a port of 4301-4339 is taken (another benchmark running?)"
    fi
    say "$(nproc) CPUs, ulimit -n $nofile, ports $lo-$hi, somaxconn $(cat /proc/sys/net/core/somaxconn), ${mem} MB available"
    if is_room "$mode"; then
        (( ROOMS >= 1 && ROOM_MSGS >= 1 && HISTORY >= ROOM_MSGS + 1 )) \
            || die "ROOMS and ROOM_MSGS must be at least 1, HISTORY at least ROOM_MSGS + 1"
        say "$mode: $SUBS clients in $ROOMS rooms (one process each) of $N, outage ${OUTAGE} s, $ROOM_MSGS pushes a room, goim_comet_room_history $HISTORY, listen backlog ${BACKLOG:-511 (nginx default)}"
    else
        say "$mode: $SUBS clients in $PROCS processes of $N, outage ${OUTAGE} s, $PER_CLIENT push(es) a client, listen backlog ${BACKLOG:-511 (nginx default)}"
    fi
    say "load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# ---- clients ----------------------------------------------------------------

CLIENT_PIDS=()
PUSH_PIDS=()
WATCH_PID=

cleanup() {
    local p
    for p in "${CLIENT_PIDS[@]}" "${PUSH_PIDS[@]}" $WATCH_PID; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    CLIENT_PIDS=() PUSH_PIDS=() WATCH_PID=
    stack_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# clients_start MODE TAG RATE: the SUBS clients, RATE connects a second per
# process (0: all at once); what else they do is the mode's (args_MODE
# TAG I: the options of process I)
clients_start() {
    local mode=$1 tag=$2 rate=$3 i first to args
    for (( i = 0; i < PROCS; i++ )); do
        first=$(( 2 + i * ADDRS_PER_PROC ))
        if (( i % 2 )); then to="-w 127.0.0.1:4302"; else to="127.0.0.1:4301"; fi
        read -ra args <<<"$("args_$mode" "$tag" "$i")"
        # shellcheck disable=SC2086
        "$CLI" -q -n "$N" -m "$(( MID0 + i * N ))" -a 1000 -R "$rate" -H 30 \
            -i 1 "${args[@]}" -b "127.0.0.$first-127.0.0.$(( first + ADDRS_PER_PROC - 1 ))" $to \
            >"$(stdout_of "$mode" "$tag" "$i")" 2>"$OUT/client.$tag.$i.err" &
        CLIENT_PIDS+=($!)
    done
}

# the up clients of the room modes print what they get (-p, and the
# positions with --print-recover: goim-cli's stdout is line-buffered, so
# the SIGKILL loses none of it); the rest print nothing
stdout_of() {
    if is_room "$1" && [ "$2" = up ]; then echo "$OUT/client.up.$3.out"; else echo /dev/null; fi
}

clients_stop() {
    local sig=$1 p
    for p in "${CLIENT_PIDS[@]}"; do kill "-$sig" "$p" 2>/dev/null || true; done
    for p in "${CLIENT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    CLIENT_PIDS=()
}

# watch_until NAME GOAL...: samples until the goals hold (exit 1 if not
# within DEADLINE s); the samples in $OUT/watch.NAME
watch_until() {
    local name=$1
    shift
    "${WATCH[@]}" --interval 100 --deadline "$DEADLINE" --keys "$KEYS" \
        "${@/#/--goal=}" >"$OUT/watch.$name"
    grep -q '^done=' "$OUT/watch.$name"
}

# one counter of job's (or "online") now
counter() {
    "${WATCH[@]}" --deadline -1 --keys "$1" | awk -F'[ =]' 'NR == 1 {print $4}'
}

now() { date +%s.%N; }

# the kernel's count of connections a full listen queue turned away
listen_drops() {
    awk '$1 == "TcpExt:" { if (!n) { for (i = 2; i <= NF; i++) k[i] = $i; n = 1 }
                            else for (i = 2; i <= NF; i++) if (k[i] == "ListenDrops") print $i }' \
        /proc/net/netstat
}
calc() { awk "BEGIN { printf \"%.4f\", ($1) }"; }
holds() { awk "BEGIN { exit !($1) }"; }

# pushers QUERY: PUSHERS goim-cli pushers, each to its share of the mids,
# PER_CLIENT pushes a mid, spread over SPAN s; they run in the background
pushers() {
    local query=$1 span=$2 j m count rate
    m=$(( SUBS / PUSHERS ))
    count=$(( m * PER_CLIENT ))
    rate=$(calc "$count / $span")
    for (( j = 0; j < PUSHERS; j++ )); do
        # push N (from 1) goes to mid first + (N-1) % m, the last one at
        # (count - 1) / rate s
        "$CLI" -q -n 1 -m "$(( 1 + j ))" -d "$(calc "$span + 2")" \
            --push-count "$count" \
            -P "http://127.0.0.1:4302/goim/push/mids?operation=1000$query" \
            --push-mids "$(( MID0 + j * m ))-$(( MID0 + (j + 1) * m - 1 ))" \
            --push-rate "$rate" --push-body ' #m:{n}' 127.0.0.1:4301 \
            >/dev/null 2>"$OUT/push.$j.err" &
        PUSH_PIDS+=($!)
    done
}

pushers_wait() {
    local p
    for p in "${PUSH_PIDS[@]}"; do wait "$p" || true; done
    PUSH_PIDS=()
}

# ---- the modes ----------------------------------------------------------------

outage_ensure() { pushers "&ensure=1" "$1"; }
outage_plain() { pushers "" "$1"; }

args_ensure() { echo --ack; }
args_plain() { echo --ack; }
up_goals_ensure() { echo "online>=$SUBS" "ensure_online>=$SUBS"; }
up_goals_plain() { up_goals_ensure; }
before_ensure() { :; }
before_plain() { :; }
stack_main_ensure() { :; }
stack_main_plain() { :; }

# ---- the room modes -----------------------------------------------------------

ROOM_POS=()
room_of() { echo "live://bench$1"; }

args_room() {
    local tag=$1 i=$2
    if [ "$tag" = up ]; then
        echo "-r $(room_of "$i") -p --print-recover"
    else
        # from the position saved, until every missed message is there
        echo "-r $(room_of "$i") --room-pos ${ROOM_POS[$i]} --check-seq -e $(( N * ROOM_MSGS )) --expect-stay"
    fi
}
args_room_plain() {
    local tag=$1 i=$2
    if [ "$tag" = up ]; then echo "-r $(room_of "$i") -p"; else echo "-r $(room_of "$i") --check-seq"; fi
}
up_goals_room() { echo "online>=$SUBS"; }
up_goals_room_plain() { up_goals_room; }
stack_main_room() { echo "goim_comet_room_history $HISTORY;"; }
stack_main_room_plain() { stack_main_room; }

# room_push ROOM BODY: one push through logic's API, answered {"code":0}
room_push() {
    python3 - "$1" "$2" <<'PY'
import sys, urllib.parse, urllib.request
room, body = sys.argv[1:]
t, r = room.split("://", 1)
q = urllib.parse.urlencode({"operation": 1000, "type": t, "room": r})
with urllib.request.urlopen(urllib.request.Request(
        "http://127.0.0.1:4302/goim/push/room?" + q, data=body.encode(),
        headers={"Connection": "close"}), timeout=5) as a:
    ans = a.read().decode()
if not ans.startswith('{"code":0'):
    sys.exit("push to %s: %s" % (room, ans))
PY
}

# before the outage: a room message to each room, until every client has
# it; then each process's position in its room, from its clients' op-20
# lines (every client must have one, and those of a room agree)
before_room() {
    local i t pos
    for (( i = 0; i < ROOMS; i++ )); do room_push "$(room_of "$i")" "before the outage"; done
    t=$(now)
    for (( i = 0; i < ROOMS; i++ )); do
        until (( $(grep -c ' op=1000 .*body=before the outage$' "$OUT/client.up.$i.out") >= N )); do
            holds "$(now) - $t < $DEADLINE" || die "room: the clients of $(room_of "$i") did not all get the message before the outage"
            sleep 0.05
        done
        is_room_plain "${1:-}" && continue
        pos=$(awk -v n="$N" '$2 == "pos" && $3 == "stream=room" {
                  split($4, e, "="); split($5, q, "="); last[$1] = e[2] ":" q[2] }
              END { for (c in last) { k++; p[last[c]]++ } for (x in p) { m++; v = x }
                    if (k == n && m == 1) print v }' "$OUT/client.up.$i.out")
        [ -n "$pos" ] || die "room: the clients of $(room_of "$i") do not agree on their position"
        ROOM_POS[$i]=$pos
    done
    is_room_plain "${1:-}" || say "room: positions before the outage: ${ROOM_POS[*]}"
}
is_room_plain() { [ "$1" = room_plain ]; }
before_room_plain() { before_room room_plain; }

# ROOMS pushers, one a room, ROOM_MSGS pushes each (#r:1 ... #r:ROOM_MSGS)
room_pushers() {
    local span=$1 j
    for (( j = 0; j < ROOMS; j++ )); do
        "$CLI" -q -n 1 -m "$(( 1 + j ))" -d "$(calc "$span + 2")" \
            --push-count "$ROOM_MSGS" \
            -P "http://127.0.0.1:4302/goim/push/room?operation=1000&type=live&room=bench$j" \
            --push-rate "$(calc "$ROOM_MSGS / $span")" --push-body ' #r:{n}' 127.0.0.1:4301 \
            >/dev/null 2>"$OUT/push.$j.err" &
        PUSH_PIDS+=($!)
    done
}
outage_room() { room_pushers "$1"; }
outage_room_plain() { room_pushers "$1"; }

# done: every client online, comet has answered SUBS resumes "recovered"
# with SUBS x ROOM_MSGS messages, and every client process has said that
# all its clients have every missed message (-e, --expect-stay: they stay
# connected, so that their going costs nothing during the measure)
goals_room() {
    echo "online>=$SUBS" \
         "history_recovered>=$(( $(val history_recovered "$1") + SUBS ))" \
         "history_recovered_msgs>=$(( $(val history_recovered_msgs "$1") + SUBS * ROOM_MSGS ))" \
         "marked_back>=$PROCS"
}
goals_room_plain() { echo "online>=$SUBS"; }

# goals_MODE BEFORE_FILE: what holds once recovery is done
goals_ensure() {
    echo "online>=$SUBS" "ensure_online>=$(( $(val ensure_online "$1") + SUBS ))" \
         "ensure_pending<=0" "ensure_acked>=$(val ensure_msgs "$1")"
}
goals_plain() {
    echo "online>=$SUBS" "ensure_online>=$(( $(val ensure_online "$1") + SUBS ))"
}

# val KEY FILE: a counter from the last sample of a watch file
val() { grep '^t=' "$2" | tail -1 | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }

# ---- one run ------------------------------------------------------------------

run() {
    local mode=$1 t_kill t_push t0 span left goals up
    layout "$mode"
    check_limits "$mode"
    rm -f "$OUT"/client.* "$OUT"/push.*.err "$OUT"/watch.*
    STACK_MAIN=$("stack_main_$mode") stack_start "$mode"

    # 1. connected: every client online (ensure: acknowledging, its op 18
    # in job; room: with a position in its room)
    clients_start "$mode" up 2000
    read -ra up <<<"$("up_goals_$mode")"
    watch_until up "${up[@]}" \
        || die "$mode: only $(counter online) of $SUBS clients came up"
    "before_$mode"
    say "$mode: $SUBS clients up"

    # 2. the outage: every client process killed, the pushes meanwhile
    t_kill=$(now)
    clients_stop KILL
    watch_until gone "online<=0" || die "$mode: comet still counts $(counter online) clients"
    t_push=$(now)
    # the pushes over what is left of the outage, less 0.5 s for answers
    span=$(calc "$OUTAGE - ($t_push - $t_kill) - 0.5")
    holds "$span >= 0.5" || die "$mode: the disconnects took $(calc "$t_push - $t_kill") s of the ${OUTAGE} s outage"
    "outage_$mode" "$span"
    pushers_wait
    left=$(calc "$t_kill + $OUTAGE - $(now)")
    if holds "$left > 0"; then
        sleep "$left"      # the outage's length is the parameter itself
    else
        say "$mode: the pushes outlasted the outage by $(calc "-($left)") s"
    fi
    "${WATCH[@]}" --deadline -1 --keys "$KEYS" >"$OUT/watch.before"

    # 3. everyone back at once: sampled every 10 ms until the goals hold
    read -ra goals <<<"$("goals_$mode" "$OUT/watch.before")"
    "${WATCH[@]}" --interval 10 --deadline "$DEADLINE" --keys "$KEYS" \
        --pids "nginx=$(nginx_workers | tr ' ' ',')" --pids "job=$JOB_PID" \
        --mark "back=$OUT/client.back.*.err" \
        "${goals[@]/#/--goal=}" >"$OUT/watch.back" &
    WATCH_PID=$!
    until [ -s "$OUT/watch.back" ]; do sleep 0.01; done
    listen_drops >"$OUT/drops.before"
    head -1 /proc/stat >"$OUT/cpu.before"
    t0=$(now)
    clients_start "$mode" back 0
    wait "$WATCH_PID" || true
    WATCH_PID=
    listen_drops >"$OUT/drops.after"
    head -1 /proc/stat >"$OUT/cpu.after"
    grep -q '^done=' "$OUT/watch.back" || say "$mode: not recovered within ${DEADLINE} s"

    # what the clients got, and job's counters once they are gone
    clients_stop INT
    "${WATCH[@]}" --deadline -1 --keys "$KEYS" >"$OUT/watch.after"
    stack_stop
    "report_$mode" "$t0" "$t_kill" "$t_push"
}

# the figures common to the modes, as key=value lines
figures() {
    python3 - "$1" "$2" "$3" "$OUT" "$(getconf CLK_TCK)" "$SUBS" <<'EOF'
import glob, sys
t0, t_kill, t_push, out, hz, subs = sys.argv[1:]
t0, t_kill, t_push, hz, subs = float(t0), float(t_kill), float(t_push), int(hz), int(subs)

def samples(name):
    r = []
    for l in open(f"{out}/watch.{name}"):
        if l.startswith("t="):
            r.append({k: float(v) for k, v in (kv.split("=") for kv in l.split())})
    return r

def summed(pattern, key):
    s = 0
    for f in glob.glob(f"{out}/{pattern}"):
        for l in open(f):
            p = l.split()
            if len(p) == 2 and p[0] == key:
                s += int(p[1])
    return s

before, back, after = samples("before")[-1], samples("back"), samples("after")[-1]
first = back[0]
def when(cond):
    for s in back:
        if cond(s):
            return s["t"] - t0
    return None
last = back[-1]
done = None
for l in open(f"{out}/watch.back"):
    if l.startswith("done="):
        done = float(l[5:]) - t0
f = {
    "disconnects_s": t_push - t_kill,
    "pushes_ok": summed("push.*.err", "pushes_ok"),
    "pushes_failed": summed("push.*.err", "pushes_failed"),
    "taken": before["ensure_msgs"],
    "pending_before": before["ensure_pending"],
    "online_s": when(lambda s: s["online"] >= subs),
    "op18_s": when(lambda s: s["ensure_online"] - before["ensure_online"] >= subs),
    "first_send_s": when(lambda s: s["ensure_sends"] > before["ensure_sends"]),
    "half_acked_s": when(lambda s: before["ensure_msgs"] > 0
                         and s["ensure_acked"] - before["ensure_acked"] >= before["ensure_msgs"] / 2),
    "done_s": done,
    "nginx_cpu_s": (last["ticks_nginx"] - first["ticks_nginx"]) / hz,
    "job_cpu_s": (last["ticks_job"] - first["ticks_job"]) / hz,
    "received": summed("client.back.*.err", "messages"),
    "ensure_received": summed("client.back.*.err", "ensure"),
    "dups": summed("client.back.*.err", "ensure_dups"),
    "reconnected": summed("client.back.*.err", "authed"),
    "failed_connects": summed("client.back.*.err", "failed"),
    "acked": after["ensure_acked"] - before["ensure_acked"],
    "resends": after["ensure_resends"] - before["ensure_resends"],
    "expired": after["ensure_expired_ttl"] + after["ensure_expired_retries"],
    "pending_after": after["ensure_pending"],
    "listen_drops": int(open(f"{out}/drops.after").read()) - int(open(f"{out}/drops.before").read()),
}
# the whole machine, from just before the reconnect to its end (others' load too)
c0, c1 = ([int(x) for x in open(f"{out}/cpu.{w}").read().split()[1:]] for w in ("before", "after"))
d = [b - a for a, b in zip(c0, c1)]
f["busy_pct"] = 100 * (1 - (d[3] + d[4]) / sum(d)) if sum(d) else None
for k, v in f.items():
    print(f"{k}={'-' if v is None else (f'{v:.3f}' if isinstance(v, float) and not v.is_integer() else int(v))}")
EOF
}

# row MODE: the table's row from $OUT/figures.MODE; for plain pushes,
# what the clients did not get is lost
row() {
    python3 - "$OUT/figures.$1" "$1" "$SUBS" <<'EOF'
import sys
f = dict(l.strip().split("=", 1) for l in open(sys.argv[1]))
mode, subs = sys.argv[2], int(sys.argv[3])
s = lambda k: "-" if f[k] == "-" else f"{float(f[k]):.2f} s"
rate = f"{subs / float(f['online_s']):,.0f}/s" if f["online_s"] != "-" else "-"
ensure = int(f["taken"]) > 0
lost = int(f["pushes_ok"]) - int(f["received"])
print(f"| {mode} | {f['pushes_ok']} / {f['pushes_failed']} | {f['taken'] if ensure else '-'} | "
      f"{s('online_s')} ({rate}) | {f['listen_drops']} | {s('op18_s')} | "
      + (f"{s('first_send_s')} / {s('half_acked_s')} / **{s('done_s')}** | {f['ensure_received']} / {f['acked']} | "
         f"{f['dups']} / {f['resends']} | {f['expired']} / {f['pending_after']} | "
         if ensure else f"- | {f['received']} / - | - | **{lost} lost** | ")
      + f"{float(f['nginx_cpu_s']):.3f} / {float(f['job_cpu_s']):.3f} s | {float(f['busy_pct']):.0f} % |")
EOF
}

report_ensure() {
    figures "$@" >"$OUT/figures.ensure"
    sed 's/^/bench: ensure: /' "$OUT/figures.ensure" >&2
    row ensure
}

report_plain() {
    figures "$@" >"$OUT/figures.plain"
    sed 's/^/bench: plain: /' "$OUT/figures.plain" >&2
    row plain
}

# the room modes' figures, as key=value lines
figures_room() {
    python3 - "$2" "$3" "$4" "$OUT" "$(getconf CLK_TCK)" "$SUBS" "$N" "$PROCS" "$1" <<'EOF'
import glob, re, sys
t0, t_kill, t_push, out, hz, subs, n, procs, mode = sys.argv[1:]
t0, t_kill, t_push, hz, subs, n, procs = float(t0), float(t_kill), float(t_push), int(hz), int(subs), int(n), int(procs)

def samples(name):
    r = []
    for l in open(f"{out}/watch.{name}"):
        if l.startswith("t="):
            r.append({k: float(v) for k, v in (kv.split("=") for kv in l.split())})
    return r

def field(path, key):
    for l in open(path):
        p = l.split()
        if len(p) == 2 and p[0] == key:
            return int(p[1])
    return 0

def summed(pattern, key):
    return sum(field(f, key) for f in glob.glob(f"{out}/{pattern}"))

before, back, after = samples("before")[-1], samples("back"), samples("after")[-1]
first, last = back[0], back[-1]
def when(cond):
    for s in back:
        if cond(s):
            return s["t"] - t0
    return None
d = lambda s, k: s[k] - before[k]
done = None
for l in open(f"{out}/watch.back"):
    if l.startswith("done="):
        done = float(l[5:]) - t0
# each pusher is one room's: its answered pushes, times the room's members
missed = sum(field(f, "pushes_ok") * n for f in glob.glob(f"{out}/push.*.err"))
f = {
    "disconnects_s": t_push - t_kill,
    "pushes_ok": summed("push.*.err", "pushes_ok"),
    "pushes_failed": summed("push.*.err", "pushes_failed"),
    "missed": missed,
    "online_s": when(lambda s: s["online"] >= subs),
    "comet_recovered": d(after, "history_recovered"),
    "comet_gaps": d(after, "history_gaps"),
    "comet_recovered_msgs": d(after, "history_recovered_msgs"),
    "comet_breaks": d(after, "history_breaks"),
    "comet_evicted": d(after, "history_evicted") + d(after, "history_dropped"),
    # comet has queued every resume's messages
    "comet_all_s": when(lambda s: d(s, "history_recovered") >= subs
                        and d(s, "history_recovered_msgs") >= missed),
    # a client process says so (-e, --expect-stay) once all its clients
    # have all they missed
    "first_proc_s": when(lambda s: s["marked_back"] >= 1),
    "all_procs_s": when(lambda s: s["marked_back"] >= procs),
    "done_s": done,
    "nginx_cpu_s": (last["ticks_nginx"] - first["ticks_nginx"]) / hz,
    "job_cpu_s": (last["ticks_job"] - first["ticks_job"]) / hz,
    "received": summed("client.back.*.err", "messages"),
    "distinct": summed("client.back.*.err", "seq_room"),
    "seq_dups": summed("client.back.*.err", "seq_dups"),
    "seq_reordered": summed("client.back.*.err", "seq_reordered"),
    "positioned": summed("client.back.*.err", "positioned"),
    "position_dups": summed("client.back.*.err", "position_dups"),
    "recovered": summed("client.back.*.err", "recovered"),
    "recovery_gaps": summed("client.back.*.err", "recovery_gaps"),
    "reconnected": summed("client.back.*.err", "authed"),
    "failed_connects": summed("client.back.*.err", "failed"),
    "listen_drops": int(open(f"{out}/drops.after").read()) - int(open(f"{out}/drops.before").read()),
}
f["lost"] = missed - f["distinct"]
c0, c1 = ([int(x) for x in open(f"{out}/cpu.{w}").read().split()[1:]] for w in ("before", "after"))
dd = [b - a for a, b in zip(c0, c1)]
f["busy_pct"] = 100 * (1 - (dd[3] + dd[4]) / sum(dd)) if sum(dd) else None
for k, v in f.items():
    print(f"{k}={'-' if v is None else (f'{v:.3f}' if isinstance(v, float) and not v.is_integer() else int(v))}")
EOF
}

row_room() {
    python3 - "$OUT/figures.$1" "$1" "$SUBS" <<'EOF'
import sys
f = dict(l.strip().split("=", 1) for l in open(sys.argv[1]))
mode, subs = sys.argv[2], int(sys.argv[3])
s = lambda k: "-" if f[k] == "-" else f"{float(f[k]):.2f} s"
rate = f"{subs / float(f['online_s']):,.0f}/s" if f["online_s"] != "-" else "-"
rec = mode == "room"
print(f"| {mode} | {f['pushes_ok']} / {f['pushes_failed']} | {int(f['missed']):,} | "
      f"{s('online_s')} ({rate}) | {f['listen_drops']} | "
      + (f"{f['comet_recovered']} / {f['comet_gaps']} / {int(f['comet_recovered_msgs']):,} | "
         f"{s('comet_all_s')} | {s('first_proc_s')} / **{s('all_procs_s')}** | "
         f"{f['positioned']} / {f['position_dups']} / {f['recovered']} / {f['recovery_gaps']} | "
         if rec else "- | - | - | - | ")
      + f"{int(f['distinct']):,} / {f['seq_dups']} / {f['seq_reordered']} | "
      + (f"**{int(f['lost']):,}** | " if int(f['lost']) else "**0** | ")
      + f"{float(f['nginx_cpu_s']):.3f} / {float(f['job_cpu_s']):.3f} s | {float(f['busy_pct']):.0f} % |")
EOF
}

report_room() {
    figures_room room "$@" >"$OUT/figures.room"
    sed 's/^/bench: room: /' "$OUT/figures.room" >&2
    row_room room
}

report_room_plain() {
    figures_room room_plain "$@" >"$OUT/figures.room_plain"
    sed 's/^/bench: room_plain: /' "$OUT/figures.room_plain" >&2
    row_room room_plain
}

# the table's header, once for each kind of mode run
header() {
    local mode=$1
    if is_room "$mode"; then
        [ -n "${HEADER_ROOM:-}" ] && return
        HEADER_ROOM=1
        echo "| mode | room pushes answered ok / failed | missed deliveries (pushes x members) | all $SUBS connected (connect rate) | listen queue drops (machine-wide) | comet: resumes recovered / gaps / messages recovered | comet sent all | first / last client process with every missed message | clients: positioned / position dups / recovered / recovery gaps | distinct received / dups / out of order | lost | nginx / job CPU | machine busy |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    else
        [ -n "${HEADER_ENSURE:-}" ] && return
        HEADER_ENSURE=1
        echo "| pushes | answered ok / failed | ensure pending at reconnect | all $SUBS online (connect rate) | listen queue drops (machine-wide) | all op 18 in job | first send / half acked / all acked | received / acked | duplicates dropped / resends | expired / pending after | nginx / job CPU | machine busy |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    fi
}

mkdir -p "$OUT"
for mode in $MODES; do
    declare -F "outage_$mode" >/dev/null || die "no mode $mode"
done
for mode in $MODES; do
    layout "$mode"
    header "$mode"
    run "$mode"
done
