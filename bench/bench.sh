#!/bin/sh
# make bench: runs every speed figure of tokshim side by side and prints them (bench/bench.py
# does the work; this wrapper only picks Debian's python3 and keeps a copy of the output).
#
#   sh bench/bench.sh BUILD_DIR          (BENCH_QUICK=1 for a short run)
#
# Timings are never a pass/fail: the script fails only when a step could not run at all or
# when the two report engines disagree on the totals.
set -eu
build="${1:-build}"
out="$build/bench/last-run.txt"
mkdir -p "$build/bench"
/usr/bin/python3 "$(dirname "$0")/bench.py" "$build" 2>&1 | tee "$out"
# tee hides bench.py's status; bench.py writes its verdict as the last line.
tail -n 1 "$out" | grep -q '^bench: done' || exit 1
