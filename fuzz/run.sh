#!/bin/sh
# Runs one libFuzzer target of tokshim and ends with "1 passed, 0 failed" or "0 passed, 1 failed".
#   fuzz/run.sh build/fuzz/fuzz_NAME SECONDS [keep]
# First replays every input of fuzz/regressions/NAME/ (crashes found before, kept so they stay
# fixed), then fuzzes for SECONDS starting from the seeds in fuzz/corpus/NAME/ with the
# dictionary fuzz/NAME.dict. New inputs go to a throw-away directory, or with "keep" (make fuzz)
# to build/fuzz/corpus/NAME/ so that long runs build on each other. A crash leaves its input
# in build/fuzz/crashes/NAME/: copy it to fuzz/regressions/NAME/ once the bug is fixed.
set -u
target=$1
seconds=$2
keep=${3:-}
top=$(cd "$(dirname "$0")/.." && pwd)
name=$(basename "$target")
name=${name#fuzz_}
corpus=$top/fuzz/corpus/$name
regressions=$top/fuzz/regressions/$name
crashes=$top/build/fuzz/crashes/$name
mkdir -p "$crashes"
if [ "$keep" = keep ]; then
	work=$top/build/fuzz/corpus/$name
	mkdir -p "$work"
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi
dict=""
[ -f "$top/fuzz/$name.dict" ] && dict="-dict=$top/fuzz/$name.dict"
# Leaks fail a run like crashes do (libFuzzer checks them after each input that allocated).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

ok=1
if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions" 2>/dev/null)" ]; then
	echo "$name: replaying $(ls "$regressions" | wc -l) regression inputs"
	"$target" -runs=1 "$regressions"/* || ok=0
fi
if [ "$ok" -eq 1 ]; then
	[ -d "$corpus" ] || corpus=""
	# shellcheck disable=SC2086
	"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$crashes/" $dict "$work" $corpus || ok=0
fi
if [ "$ok" -eq 1 ]; then
	echo "1 passed, 0 failed"
else
	echo "$name: crash input in $crashes/"
	echo "0 passed, 1 failed"
	exit 1
fi
