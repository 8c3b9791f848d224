#!/usr/bin/env bash
# The HTTP load benchmark: 64 clients send `POST /api/v1/decisions` with `record: true` to
# `tact serve` on 127.0.0.1 for 30 s against 100,000 customers, then tact-loadtest checks
# from the database that no customer's caps were exceeded by concurrent bookings.
#
# Usage: crates/loadtest/bench-http.sh [customers] [clients] [seconds]
#
# Works in a new folder under ${BENCH_TMP:-/tmp}, deleted at the end unless BENCH_KEEP=1.
set -euo pipefail

customers=${1:-100000}
clients=${2:-64}
seconds=${3:-30}
cd "$(dirname "$0")/../.."

cargo build --quiet --release -p tact -p tact-loadtest
release=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)
work=$(mktemp -d "${BENCH_TMP:-/tmp}/bench-http.XXXXXX")
serve=""
cleanup() {
    if [ -n "$serve" ]; then kill "$serve" 2>/dev/null || true; fi
    if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

cd "$work"
"$release/tact" --config tact.toml init >/dev/null
# Contact hours that never close, so the figures do not depend on the time of day.
printf '\nquiet_hours = { start = "00:00", end = "00:00" }\n' >>tact.toml
awk -v n="$customers" 'BEGIN {
    print "external_id,name,email,timezone"
    for (i = 1; i <= n; i++) printf "c%d,Customer %d,c%d@example.com,UTC\n", i, i, i
}' >customers.csv
"$release/tact" --config tact.toml import customers customers.csv

TACT_HTTP_LISTEN=127.0.0.1:0 TACT_LOG=warn "$release/tact" --config tact.toml serve \
    >serve.out 2>serve.log &
serve=$!
for _ in $(seq 100); do
    if grep -q '^listening on ' serve.out; then break; fi
    sleep 0.1
done
url=$(sed -n 's/^listening on //p' serve.out)
token=$(sed -n 's/^api_token = "\(.*\)"$/\1/p' tact.toml)

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
"$release/tact-loadtest" --url "$url" --token "$token" --customers "$customers" \
    --clients "$clients" --seconds "$seconds" --database tact.db
