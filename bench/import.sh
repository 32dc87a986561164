#!/usr/bin/env bash
# Import benchmark (issue 3): a generated Goodreads export into an empty SQLite library,
# against sqlite3's own `.import` of the same file into a bare table; then the same file
# again (all unchanged); then 10k vs 100k rows for merge-cost growth.
# Usage: bench/import.sh [ROWS]   (default 100000). Needs sqlite3 and GNU time.
# Prints wall time, CPU time (user + system: what the import itself costs, whatever else
# the machine runs) and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-100000}"
small=$((rows / 10))
tiny=$((rows / 100))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

nice -n 10 cargo build --release -q -p bookbridge
nice -n 10 cargo build --release -q -p bb-importers --example gen_goodreads
bin=target/release/bookbridge
gen=target/release/examples/gen_goodreads

"$gen" "$rows" > "$work/big.csv"
"$gen" "$small" > "$work/small.csv"
"$gen" "$tiny" > "$work/tiny.csv"
echo "file: $rows rows, $(du -h "$work/big.csv" | cut -f1)"

measure() { # label, command...: prints wall seconds, CPU seconds and peak RSS
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" > /dev/null 2> "$work/err" || { cat "$work/err"; exit 1; }
  read -r secs user sys kb < "$work/time"
  printf '%-42s %8.2f s wall %8.2f s cpu  %6d MB peak\n' "$label" "$secs" \
    "$(echo "$user + $sys" | bc)" $((kb / 1024))
}

measure "sqlite3 .import (bare table)" sqlite3 "$work/bare.db" ".mode csv" ".import $work/big.csv books"

fresh() { rm -rf "$work/data"; echo "a benchmark passphrase" | "$bin" --data-dir "$work/data" user add bench 2> /dev/null; }
fresh
measure "bookbridge import ($rows rows, empty)" "$bin" --data-dir "$work/data" import --user bench "$work/big.csv"
measure "bookbridge import again (all unchanged)" "$bin" --data-dir "$work/data" import --user bench "$work/big.csv"
fresh
measure "bookbridge import ($small rows, empty)" "$bin" --data-dir "$work/data" import --user bench "$work/small.csv"
fresh
measure "bookbridge import ($tiny rows, empty)" "$bin" --data-dir "$work/data" import --user bench "$work/tiny.csv"
