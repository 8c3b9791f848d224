#!/usr/bin/env bash
# The end-to-end benchmark: import a generated customer base, plan a newsletter to all of
# it, deliver the approved messages through `tact serve` to postfix's smtp-sink, and plan a
# sales campaign to the same audience afterwards.
#
# Usage: scripts/bench-million.sh [customers] [runs]   (defaults 100000 and 1)
#
# Each run starts from an empty database in a new folder under ${BENCH_TMP:-/tmp}, which is
# deleted at the end unless BENCH_KEEP=1. The script prints one line per step and run, then
# the median of every figure over the runs. Rates are wall-clock rates; "per CPU second"
# divides by the process's user plus system time, which moves less with other load on the
# machine. Peak memory is the maximum resident set size of the step's process.
#
# BENCH_BUILD=0 skips the release build and uses the binaries already built.
# Needs /usr/bin/time, /usr/sbin/smtp-sink and /usr/sbin/smtp-source (Debian's time and
# postfix packages) and python3 (to pick a free port).
set -euo pipefail

customers=${1:-100000}
runs=${2:-1}
# Connections of tact's SMTP pool and of smtp-source.
connections=4
# Sends tact keeps in flight: each one also decides its delivery again before it waits for
# a connection and waits for its sent mark after, so more sends than connections keep the
# connections busy.
concurrency=${BENCH_CONCURRENCY:-256}
# Deliveries claimed at a time. A round claims the next batch while the previous one's
# last sends are in flight, so the size matters little beyond a few hundred.
batch=${BENCH_BATCH:-1000}
cd "$(dirname "$0")/.."
scripts=$PWD/scripts

if [ "${BENCH_BUILD:-1}" = 1 ]; then
    cargo build --quiet --release -p tact -p tact-loadgen
    cargo build --quiet --release -p tact-domain --example decide_loop
fi
release=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)
tact=$release/tact
loadgen=$release/tact-loadgen

work=$(mktemp -d "${BENCH_TMP:-/tmp}/bench-million.XXXXXX")
sink=""
serve=""
cleanup() {
    if [ -n "$serve" ]; then kill "$serve" 2>/dev/null || true; fi
    if [ -n "$sink" ]; then kill "$sink" 2>/dev/null || true; fi
    if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM
results=$work/results

now() { date +%s.%N; }
# record RUN NAME VALUE: keeps one figure of one run for the medians.
record() { echo "$1 $2 $3" >>"$results"; }
# figure RUN NAME: prints a recorded figure.
figure() { awk -v r="$1" -v n="$2" '$1 == r && $2 == n { print $3 }' "$results"; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
megabytes() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# timed RUN NAME COMMAND...: runs the command under /usr/bin/time, prints its output, and
# records NAME.wall (s), NAME.cpu (user + system s) and NAME.peak_mb.
timed() {
    local run=$1 name=$2
    shift 2
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || {
        echo "step $name failed:" >&2
        cat "$work/out" "$work/err" >&2
        exit 1
    }
    read -r wall user system peak <"$work/time"
    record "$run" "$name.wall" "$wall"
    record "$run" "$name.cpu" "$(awk -v u="$user" -v s="$system" 'BEGIN { print u + s }')"
    record "$run" "$name.peak_mb" "$(megabytes "$peak")"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Messages the sink has accepted so far, from its -c counters ("sess=N quit=N mesg=N\r").
sink_messages() {
    tail -c 200 "$work/sink.out" | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' |
        tail -n 1 | grep . || echo 0
}

# Planning counts from "campaign N: A approved and queued, D deferred, X denied, S skipped".
plan_counts() {
    sed -n 's/.*: \([0-9]*\) approved and queued, \([0-9]*\) deferred, \([0-9]*\) denied, \([0-9]*\) skipped/\1 \2 \3 \4/p' "$work/out"
}

campaign_id() {
    sed -n 's/^campaign \([0-9]*\) created.*/\1/p' "$work/out"
}

one_run() {
    local run=$1 dir=$work/run$1
    mkdir -p "$dir"
    export TACT_CONFIG=$dir/tact.toml

    # The benchmark's "now": history lies in the year before it, and tact decides with the
    # system clock a few seconds or minutes later.
    local started_at
    started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    timed "$run" generate "$loadgen" --customers "$customers" --seed "$run" \
        --now "$started_at" --out "$dir/load"
    echo "run $run: $(cat "$work/out")"
    local rows_contacts rows_signals
    rows_contacts=$(sed -n 's/.* contacts=\([0-9]*\).*/\1/p' "$work/out")
    rows_signals=$(sed -n 's/.* signals=\([0-9]*\).*/\1/p' "$work/out")

    "$tact" init >/dev/null
    # Company contact hours would hold back the half of the world where it is night, so the
    # benchmark opens them all day. `tact init` ends its file with the [policy] table, so
    # the key lands in it.
    echo 'quiet_hours = { start = "00:00", end = "00:00" }' >>"$TACT_CONFIG"
    for what in customers contacts signals; do
        timed "$run" "import_$what" "$tact" import "$what" "$dir/load/$what.csv"
        echo "run $run: $(head -n 1 "$work/out")"
    done
    record "$run" import_customers.rows_per_s \
        "$(rate "$customers" "$(figure "$run" import_customers.wall)")"
    record "$run" import_contacts.rows_per_s \
        "$(rate "$rows_contacts" "$(figure "$run" import_contacts.wall)")"
    record "$run" import_signals.rows_per_s \
        "$(rate "$rows_signals" "$(figure "$run" import_signals.wall)")"

    timed "$run" apply "$loadgen" apply --database "$dir/tact.db" --dir "$dir/load"
    echo "run $run: $(cat "$work/out")"
    record "$run" database_mb "$(du -m "$dir/tact.db" | cut -f1)"

    # The newsletter: planning from SQLite, then delivery by tact serve.
    timed "$run" create "$tact" campaign create --name "December newsletter" \
        --template "$scripts/bench-million-template.toml" --purpose value --topic newsletter
    local newsletter
    newsletter=$(campaign_id)
    local send_started
    send_started=$(now)
    timed "$run" plan_newsletter "$tact" campaign send "$newsletter"
    echo "run $run: $(cat "$work/out")"
    local approved deferred denied skipped
    read -r approved deferred denied skipped < <(plan_counts)
    record "$run" plan_newsletter.approved "$approved"
    record "$run" plan_newsletter.deferred "$deferred"
    record "$run" plan_newsletter.denied "$denied"
    deliver "$run" "$approved" "$send_started"

    # The sales campaign to the same audience, planned after the newsletter went out.
    timed "$run" create "$tact" campaign create --name "Pro upgrade" --offer \
        --template "$scripts/bench-million-sales.toml" --purpose sales --topic offers
    local sales
    sales=$(campaign_id)
    timed "$run" plan_sales "$tact" campaign send "$sales"
    echo "run $run: $(cat "$work/out")"
    read -r approved deferred denied skipped < <(plan_counts)
    record "$run" plan_sales.approved "$approved"
    record "$run" plan_sales.deferred "$deferred"
    record "$run" plan_sales.denied "$denied"

    for step in plan_newsletter plan_sales; do
        record "$run" "$step.decisions_per_s" \
            "$(rate "$customers" "$(figure "$run" "$step.wall")")"
        record "$run" "$step.decisions_per_cpu_s" \
            "$(rate "$customers" "$(figure "$run" "$step.cpu")")"
    done
    if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$dir"; fi
}

# deliver RUN APPROVED SEND_STARTED: runs tact serve until the sink has accepted every
# approved message, then smtp-source with as many messages over as many connections.
deliver() {
    local run=$1 approved=$2 send_started=$3
    local before target started finished limit
    before=$(sink_messages)
    target=$((before + approved))
    started=$(now)
    TACT_LOG=warn "$tact" serve >"$work/serve.out" 2>"$work/serve.err" &
    serve=$!
    # Bounded wait: one hour, or until serve exits.
    limit=$(awk -v s="$started" 'BEGIN { printf "%.3f", s + 3600 }')
    while [ "$(sink_messages)" -lt "$target" ]; do
        if ! kill -0 "$serve" 2>/dev/null; then
            echo "tact serve stopped early:" >&2
            cat "$work/serve.err" >&2
            exit 1
        fi
        if awk -v n="$(now)" -v l="$limit" 'BEGIN { exit !(n > l) }'; then
            echo "delivery did not finish within an hour" >&2
            exit 1
        fi
        sleep 0.1
    done
    finished=$(now)
    local peak
    peak=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$serve/status")
    kill -TERM "$serve"
    wait "$serve" || true
    serve=""
    local seconds
    seconds=$(awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.3f", b - a }')
    record "$run" deliver.messages "$approved"
    record "$run" deliver.wall "$seconds"
    record "$run" deliver.messages_per_s "$(rate "$approved" "$seconds")"
    record "$run" deliver.peak_mb "$(megabytes "$peak")"
    record "$run" send_to_last_accepted.wall \
        "$(awk -v a="$send_started" -v b="$finished" 'BEGIN { printf "%.3f", b - a }')"
    echo "run $run: tact serve delivered $approved messages in $seconds s"

    # smtp-source against the same sink: the same number of messages (at most 200,000) of
    # the size of tact's newsletter, over the same number of connections, reused (-d).
    local messages=$((approved < 200000 ? approved : 200000))
    local size=${BENCH_MESSAGE_BYTES:-1600}
    started=$(now)
    /usr/sbin/smtp-source -d -s "$connections" -m "$messages" -l "$size" \
        -f news@example.com -t customer@example.com 127.0.0.1:"$port"
    finished=$(now)
    seconds=$(awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.3f", b - a }')
    record "$run" smtp_source.messages_per_s "$(rate "$messages" "$seconds")"
    echo "run $run: smtp-source sent $messages messages of $size bytes in $seconds s"
}

# The domain's decisions from memory, for the ratio with planning from SQLite.
domain_rates() {
    local case count line nanos
    for case in approve defer; do
        count=2000000
        line=$("$release/examples/decide_loop" "$case" "$count")
        nanos=$(echo "$line" | sed -n 's/.*, \([0-9]*\) ns each/\1/p')
        record 0 "domain_$case.decisions_per_s" "$(rate 1000000000 "$nanos")"
        echo "domain: $line"
    done
}

port=$(free_port)
if [ "$(id -u)" = 0 ]; then sink_user=(-u postfix); else sink_user=(); fi
/usr/sbin/smtp-sink "${sink_user[@]}" -c 127.0.0.1:"$port" 1024 >"$work/sink.out" 2>&1 &
sink=$!
sleep 0.5
export TACT_DELIVERY_CHANNEL=smtp TACT_SMTP_HOST=127.0.0.1 TACT_SMTP_PORT=$port
export TACT_SMTP_POOL_SIZE=$connections TACT_DELIVERY_CONCURRENCY=$concurrency
export TACT_DELIVERY_BATCH_SIZE=$batch
export TACT_HTTP_LISTEN=127.0.0.1:0

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB"
echo "customers: $customers, runs: $runs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
domain_rates
for run in $(seq "$runs"); do
    one_run "$run"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "medians over $runs run(s) of $customers customers:"
awk '{ print $2, $3 }' "$results" | sort -k1,1 -k2,2g | awk '
    { values[$1] = values[$1] " " $2; count[$1]++ }
    END {
        for (name in values) {
            n = split(substr(values[name], 2), v, " ")
            printf "%-36s %s\n", name, v[int((n + 1) / 2)]
        }
    }' | sort
