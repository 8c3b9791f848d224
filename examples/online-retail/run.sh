#!/usr/bin/env bash
# Runs tact's main job on a year of a real shop's customers (the UCI Online Retail data set):
# converts the invoice lines, simulates December 2010 to December 2011 with the daemon's own
# scheduler on a simulated clock, delivers into a Maildir and prints the report.
#
# Usage: bash examples/online-retail/run.sh [WORK_FOLDER]   (default target/online-retail)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:-$root/target/online-retail}"

cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p tact
tact="${CARGO_TARGET_DIR:-$root/target}/release/tact"

rm -rf "$work"
mkdir -p "$work"
cp "$here/tact.toml" "$work/tact.toml"

echo "== Converting the invoice lines"
"$tact" convert online-retail "$here/online_retail.csv.gz" --out "$work/data"

echo
echo "== Simulating the year"
start=$(date +%s)
"$tact" --config "$work/tact.toml" simulate \
  --from 2010-12-01T00:00:00Z --to 2011-12-10T00:00:00Z \
  --plan "$here/plan.toml" \
  --customers "$work/data/customers.csv" --signals "$work/data/signals.csv" --progress
echo
echo "Finished in $(( $(date +%s) - start )) s. Messages: $work/outbox/new"
