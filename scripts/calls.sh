#!/bin/sh
# calls.sh: which of a module's files call which, from its built objects.
#
#   scripts/calls.sh [-c] OBJDIR
#
# For each object in OBJDIR (e.g. build/nginx/objs/addon/ngx_goim_comet_module),
# the other objects whose functions it calls: one "caller -> callee" line
# per pair of files, by the symbols nm says one defines (T) and the other
# needs (U).  Calls through a pointer (a hook, an event handler) are not
# seen, which is what makes a hook the way to call upward.  With -c it
# prints nothing but a cycle between files, if any, and exits 1 then.
# docs/architecture.md's diagram is this script's output; t/006-module-calls.t
# keeps the modules free of cycles.

set -e

cycles=0
if [ "$1" = "-c" ]; then
    cycles=1
    shift
fi

dir=${1:?usage: calls.sh [-c] OBJDIR}

edges=$(
    for o in "$dir"/*.o; do
        nm --defined-only "$o" | awk -v f="$(basename "$o" .o)" \
            '$2 == "T" { print "D", $3, f }'
        nm --undefined-only "$o" | awk -v f="$(basename "$o" .o)" \
            '{ print "U", $2, f }'
    done | awk '
        $1 == "D" { def[$2] = $3; next }
        { use[NR] = $2; user[NR] = $3 }
        END {
            for (i in use) {
                if ((use[i] in def) && def[use[i]] != user[i]) {
                    print user[i] " -> " def[use[i]]
                }
            }
        }' | sort -u
)

if [ $cycles = 0 ]; then
    printf '%s\n' "$edges"
    exit 0
fi

# a cycle: a topological sort (tsort) reports one on stderr
pairs=$(printf '%s\n' "$edges" | awk 'NF == 3 { print $1, $3 }')
if out=$(printf '%s\n' "$pairs" | tsort 2>&1 >/dev/null) && [ -z "$out" ]; then
    exit 0
fi

printf '%s\n' "$out"
exit 1
