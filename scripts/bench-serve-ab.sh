#!/usr/bin/env bash
# Compares `tact serve` of several builds on copies of one planned database, each run next to
# postfix's smtp-source against the same smtp-sink on 127.0.0.1.
#
# Usage: scripts/bench-serve-ab.sh CUSTOMERS ROUNDS NAME=TACT [NAME=TACT[:VAR=VALUE,...]] ...
#
# The first build generates CUSTOMERS customers with tact-loadgen (from the same folder as
# that `tact`, or $LOADGEN) and plans the benchmark's newsletter once. Each round then runs
# every build in the order given: a fresh copy of the planned database, a fresh smtp-sink,
# smtp-source with as many messages as the plan approved, then `tact serve` until the sink
# has them all. VAR=VALUE pairs after a colon set environment variables for that build's
# runs only, for example `c512=target/release/tact:TACT_DELIVERY_CONCURRENCY=512`.
#
# The machine's speed drifts by a sixth within minutes, so the script alternates the builds
# and prints, per build, the median rate and the median of each run's share of smtp-source.
# An older build cannot open a database that a newer schema planned. So the oldest build
# goes first and plans, and the newer ones upgrade their copy when they open it.
# Needs /usr/sbin/smtp-sink and /usr/sbin/smtp-source (Debian's postfix package) and python3.
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 CUSTOMERS ROUNDS NAME=TACT [NAME=TACT[:VAR=VALUE,...]] ..." >&2
    exit 2
fi
customers=$1
rounds=$2
shift 2
scripts=$(cd "$(dirname "$0")" && pwd)

names=()
binaries=()
settings=()
for variant in "$@"; do
    name=${variant%%=*}
    rest=${variant#*=}
    binary=${rest%%:*}
    extra=""
    if [ "$rest" != "$binary" ]; then extra=${rest#*:}; fi
    if [ "$name" = "$variant" ] || [ ! -x "$binary" ]; then
        echo "invalid build $variant: write NAME=PATH where PATH is an executable tact" >&2
        exit 2
    fi
    names+=("$name")
    binaries+=("$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")")
    settings+=("$extra")
done
loadgen=${LOADGEN:-$(dirname "${binaries[0]}")/tact-loadgen}

work=$(mktemp -d "${BENCH_TMP:-/tmp}/bench-serve-ab.XXXXXX")
sink=""
serve=""
cleanup() {
    if [ -n "$serve" ]; then kill "$serve" 2>/dev/null || true; fi
    if [ -n "$sink" ]; then kill "$sink" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
sink_messages() {
    tail -c 200 "$work/sink.out" | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' |
        tail -n 1 | grep . || echo 0
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The planned database, as scripts/bench-million.sh builds it up to the newsletter's plan.
plan=$work/plan
mkdir -p "$plan"
export TACT_CONFIG=$plan/tact.toml
(
    cd "$plan"
    "$loadgen" --customers "$customers" --seed 1 --now "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        --out load >/dev/null
    "${binaries[0]}" init >/dev/null
    echo 'quiet_hours = { start = "00:00", end = "00:00" }' >>tact.toml
    for file in customers contacts signals; do
        "${binaries[0]}" import "$file" "load/$file.csv" >/dev/null
    done
    "$loadgen" apply --database tact.db --dir load >/dev/null
    "${binaries[0]}" campaign create --name "December newsletter" \
        --template "$scripts/bench-million-template.toml" --purpose value \
        --topic newsletter >/dev/null
    "${binaries[0]}" campaign send 1 >"$work/planned"
    rm -rf load
)
approved=$(sed -n 's/.*: \([0-9]*\) approved and queued.*/\1/p' "$work/planned")
echo "planned with ${names[0]}: $(cat "$work/planned")"
run=$work/run
mkdir -p "$run"
sed "s|^database = .*|database = \"$run/tact.db\"|" "$plan/tact.toml" >"$run/tact.toml"
export TACT_CONFIG=$run/tact.toml

for round in $(seq "$rounds"); do
    for i in "${!names[@]}"; do
        rm -f "$run"/tact.db*
        cp "$plan"/tact.db* "$run"/
        port=$(free_port)
        if [ "$(id -u)" = 0 ]; then sink_user=(-u postfix); else sink_user=(); fi
        /usr/sbin/smtp-sink "${sink_user[@]}" -c 127.0.0.1:"$port" 1024 >"$work/sink.out" 2>&1 &
        sink=$!
        sleep 0.3

        started=$(now)
        /usr/sbin/smtp-source -d -s 4 -m "$approved" -l "${BENCH_MESSAGE_BYTES:-1600}" \
            -f news@example.com -t customer@example.com 127.0.0.1:"$port"
        finished=$(now)
        source_rate=$(awk -v n="$approved" -v a="$started" -v b="$finished" \
            'BEGIN { printf "%.0f", n / (b - a) }')
        sleep 0.3
        target=$(($(sink_messages) + approved))

        started=$(now)
        (
            export TACT_DELIVERY_CHANNEL=smtp TACT_SMTP_HOST=127.0.0.1 TACT_SMTP_PORT=$port
            export TACT_SMTP_POOL_SIZE=4 TACT_DELIVERY_CONCURRENCY=256
            export TACT_DELIVERY_BATCH_SIZE=1000 TACT_HTTP_LISTEN=127.0.0.1:0 TACT_LOG=warn
            if [ -n "${settings[$i]}" ]; then
                IFS=, read -r -a pairs <<<"${settings[$i]}"
                for pair in "${pairs[@]}"; do export "${pair?}"; done
            fi
            exec "${binaries[$i]}" serve >"$work/serve.out" 2>"$work/serve.err"
        ) &
        serve=$!
        # Bounded wait: ten minutes, or until serve exits.
        limit=$(awk -v s="$started" 'BEGIN { printf "%.3f", s + 600 }')
        while [ "$(sink_messages)" -lt "$target" ]; do
            if ! kill -0 "$serve" 2>/dev/null; then
                echo "tact serve of ${names[$i]} stopped early:" >&2
                cat "$work/serve.err" >&2
                exit 1
            fi
            if awk -v n="$(now)" -v l="$limit" 'BEGIN { exit !(n > l) }'; then
                echo "tact serve of ${names[$i]} did not finish within ten minutes" >&2
                exit 1
            fi
            sleep 0.05
        done
        finished=$(now)
        kill -TERM "$serve"
        wait "$serve" || true
        serve=""
        kill "$sink"
        wait "$sink" 2>/dev/null || true
        sink=""

        serve_rate=$(awk -v n="$approved" -v a="$started" -v b="$finished" \
            'BEGIN { printf "%.0f", n / (b - a) }')
        share=$(awk -v t="$serve_rate" -v s="$source_rate" 'BEGIN { printf "%.1f", 100 * t / s }')
        echo "round $round ${names[$i]}: tact serve $serve_rate/s, smtp-source $source_rate/s, share $share %"
        echo "${names[$i]} $serve_rate $share" >>"$work/results"
    done
done

echo
echo "medians over $rounds round(s) of $approved messages:"
for name in "${names[@]}"; do
    rate=$(awk -v n="$name" '$1 == n { print $2 }' "$work/results" | median)
    share=$(awk -v n="$name" '$1 == n { print $3 }' "$work/results" | median)
    echo "$name: tact serve $rate/s, share of smtp-source $share %"
done
