#!/bin/bash
# Room fan-out at rising push rates, ngx_goim, nchan and the machine's
# floor (../shared/tools/floor) side by side (bench/comet_vs_nchan.sh's
# fan-out phase once per rate, same SUBS and WORKERS): where each keeps
# up, and what each delivers once it cannot.
#
#   bench/fanout_sweep.sh                 # RATES="10 20 50 100 200"
#   RATES="20 40" SERVERS="goim floor" SUBS=10000 bench/fanout_sweep.sh
#
# One table row per rate and server: pushes/s accepted, deliveries/s over
# the delivery span, lost, latency p50/p99, push answer p99 (ngx_goim's
# API; nchan's publisher answers after its fan-out; the floor has none),
# server and client CPU per delivery, machine busy %.  Rows also go to
# build/bench/sweep.

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BUILD:-$TOP/build}/bench
RATES=${RATES:-10 20 50 100 200}
SERVERS=${SERVERS:-goim nchan floor}

mkdir -p "$OUT"
: >"$OUT/sweep"

for rate in $RATES; do
    PHASES="$SERVERS" RATE=$rate bash "$TOP/bench/comet_vs_nchan.sh" \
        >"$OUT/sweep.$rate.log" 2>&1 || {
            echo "sweep: rate $rate failed, see $OUT/sweep.$rate.log" >&2
            continue
        }
    awk -v rate="$rate" '{print rate, $0}' "$OUT/results" >>"$OUT/sweep"
done

awk '
    {v[$1, $2, $3] = $4; if (!($1 in seen)) {seen[$1] = 1; rates[++n] = $1}}
    END {
        printf "| %5s | %-8s | %8s | %12s | %5s | %9s | %9s | %9s | %9s | %9s | %5s |\n",
            "msg/s", "server", "pushes/s", "deliveries/s", "lost",
            "p50 ms", "p99 ms", "answer p99", "server us", "client us", "busy"
        printf "|-------|----------|----------|--------------|-------|-----------|-----------|-----------|-----------|-----------|-------|\n"
        for (i = 1; i <= n; i++) {
            split("goim nchan floor", names, " ")
            for (j = 1; j <= 3; j++) {
                k = rates[i] SUBSEP names[j]
                if (!((k, "deliveries_s") in v)) continue
                printf "| %5s | %-8s | %8s | %12s | %5s | %9.1f | %9.1f | %9s | %9s | %9s | %4s%% |\n",
                    rates[i], names[j] == "goim" ? "ngx_goim" : names[j],
                    v[k, "pushes_s"], v[k, "deliveries_s"], v[k, "lost"],
                    v[k, "p50_ms"], v[k, "p99_ms"],
                    v[k, "push_answer_p99_ms"] != "" ? v[k, "push_answer_p99_ms"] : "-",
                    v[k, "cpu_us_per_delivery"],
                    v[k, "client_cpu_us_per_delivery"],
                    v[k, "machine_busy_pct"]
            }
        }
    }' "$OUT/sweep"
