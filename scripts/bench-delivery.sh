#!/bin/sh
# Compares the email channel's delivery rate with postfix's smtp-source, both sending to one
# postfix smtp-sink on 127.0.0.1, at 2 KB and 20 KB per message over 1 and 4 connections.
#
# Usage: scripts/bench-delivery.sh [messages] [rounds]   (defaults 4000 and 3)
#
# Each configuration runs smtp-source and tact alternately `rounds` times. The script reports
# the median rate of each and the median of the per-round ratios. Other load on the machine
# moves single runs by a factor of 2, and a round's two runs share the same load.
# Needs /usr/sbin/smtp-sink and /usr/sbin/smtp-source (Debian's postfix package).
set -eu

messages=${1:-4000}
rounds=${2:-3}
cd "$(dirname "$0")/.."

cargo build --quiet --release -p tact-delivery --example bench_smtp
bench="${CARGO_TARGET_DIR:-target}/release/examples/bench_smtp"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$(id -u)" = 0 ]; then sink_user="-u postfix"; else sink_user=""; fi
# shellcheck disable=SC2086
/usr/sbin/smtp-sink $sink_user 127.0.0.1:"$port" 256 &
sink=$!
trap 'kill "$sink" 2>/dev/null || true' EXIT INT TERM
sleep 0.5

now() { date +%s.%N; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

source_rate() {
    start=$(now)
    /usr/sbin/smtp-source -d -s "$2" -m "$messages" -l "$1" \
        -f news@acme.example -t customer@example.com 127.0.0.1:"$port"
    end=$(now)
    echo "$start $end" | awk -v m="$messages" '{ printf "%.0f\n", m / ($2 - $1) }'
}

tact_rate() {
    line=$("$bench" --port "$port" --messages "$messages" --size "$1" --connections "$2" $3)
    case "$line" in
        *failed=0*) ;;
        *) echo "bench_smtp reported failures: $line" >&2; exit 1 ;;
    esac
    echo "$line" | sed 's/.*rate=\([0-9]*\).*/\1/'
}

printf '%-7s %-12s %-14s %-9s %s\n' size connections smtp-source/s tact/s ratio
for size in 2048 20480; do
    for connections in 1 4; do
        sources="" tacts="" ratios=""
        for _ in $(seq "$rounds"); do
            s=$(source_rate "$size" "$connections")
            t=$(tact_rate "$size" "$connections" "")
            sources="$sources $s" tacts="$tacts $t"
            ratios="$ratios $(awk -v t="$t" -v s="$s" 'BEGIN { printf "%.0f", 100 * t / s }')"
        done
        s=$(echo "$sources" | tr ' ' '\n' | grep . | median)
        t=$(echo "$tacts" | tr ' ' '\n' | grep . | median)
        ratio="$(echo "$ratios" | tr ' ' '\n' | grep . | median)%"
        printf '%-7s %-12s %-14s %-9s %s\n' "$size" "$connections" "$s" "$t" "$ratio"
    done
done

# smtp-source does not pipeline, so also show tact without it, and without TCP_NODELAY.
for flag in --no-pipelining --no-nodelay; do
    for size in 2048 20480; do
        rate=$(tact_rate "$size" 1 "$flag")
        printf 'tact %s: %s messages/s (%s bytes, 1 connection)\n' "$flag" "$rate" "$size"
    done
done
