#!/bin/sh
# Runs every test of tokshim and ends with the line "N passed, N failed".
#   tests/run.sh [BUILD_DIR]
# Unit tests are the C binaries $BUILD/tests/test_*; integration tests are the Python scripts
# tests/integration/test_*.py run by Debian's python3 with real clients under the shim. Each
# prints its own "N passed, N failed" line; this script adds them up. A test binary or script
# that crashes or prints no count line counts as one failure.
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$top" && cd "$build" && pwd)
export TOKSHIM_BUILD="$build"
export TOKSHIM_FIXTURES="${TOKSHIM_FIXTURES:-$top/../shared/fixtures}"
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
passed=0 failed=0

count() { # name, output file, exit status
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
	if [ -z "$line" ]; then
		echo "FAIL $1: no result line (exit $3)"
		tail -n 20 "$2" | sed 's/^/    /'
		failed=$((failed + 1))
		return
	fi
	p=${line%% passed*}
	f=${line#*passed, }
	f=${f%% failed*}
	[ "$3" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		echo "FAIL $1: $line"
		grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 40 | sed 's/^/    /'
	else
		echo "ok   $1: $line"
	fi
}

cd "$top" || exit 1
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	name=unit/$(basename "$t")
	"$t" >"$log/out" 2>&1
	count "$name" "$log/out" $?
done

for t in tests/integration/test_*.py; do
	[ -f "$t" ] || continue
	name=integration/$(basename "$t" .py)
	timeout 300 /usr/bin/python3 "$t" >"$log/out" 2>&1
	count "$name" "$log/out" $?
done

# Under ASan and UBSan, when make test passes TOKSHIM_SAN_BUILD (build/san): every unit test
# with leak detection, and the integration tests of SAN_INTEGRATION with the sanitized shim and
# CLI (TOKSHIM_SAN=1: harness.py preloads the sanitizer runtimes ahead of the shim; the CLI is
# leak-checked, agents are not). The subset: test_pricing, the sanitized CLI over real price
# files, leak-checked; test_http2, httpx's HTTP/2 streams through the sanitized shim; test_curl
# and test_capture, curl, libcurl and Python clients through it; test_budgets_curl, the budget
# gate's libcurl path. curl once hung with the ASan
# runtime preloaded (p11-kit's constructor starts ASan inside a glibc lock): harness.py now
# preloads build/san/tests/asan_initfirst.so, which starts it first (tests/preload/). Left out:
# test_failopen's memory bounds (ASan's own memory counts) and the tests that preload the shim
# without the runtimes. test_capture runs its curl cases and one case of each other kind
# (SAN_CAPTURE_CASES): all 44 take about two minutes under ASan, which the suite's 10 minutes
# cannot spare.
SAN_INTEGRATION="test_pricing test_http2 test_curl test_capture test_budgets_curl"
SAN_CAPTURE_CASES="anthropic_stream__curl openai_stream_include_usage__curl
anthropic_nonstream_cache__curl ollama_generate_stream__curl ollama_chat_nonstream__curl
gzip_sse_stream_reasoning_curl gzip_chunked_nonstream_curl error_500_server_curl
expect_100_continue_curl error_429_rate_limit_curl openai_nonstream_cached__curl
keepalive_curl_next_openai anthropic_stream__requests openai_nonstream_cached__urllib
keepalive_requests_session_openai gzip_sse_stream_requests python_https_under_shim_does_not_crash
concurrent_agents_share_one_store non_llm_traffic_is_not_recorded
truncated_stream_is_a_network_error"
if [ -n "${TOKSHIM_SAN_BUILD:-}" ]; then
	san=$(cd "$top" && cd "$TOKSHIM_SAN_BUILD" && pwd)
	for t in "$san"/tests/test_*; do
		[ -x "$t" ] || continue
		TOKSHIM_BUILD="$san" ASAN_OPTIONS=detect_leaks=1 "$t" >"$log/out" 2>&1
		count "san/unit/$(basename "$t")" "$log/out" $?
	done
	for t in $SAN_INTEGRATION; do
		cases=""
		[ "$t" = test_capture ] && cases=$SAN_CAPTURE_CASES
		# shellcheck disable=SC2086 # the case names are separate arguments
		TOKSHIM_BUILD="$san" TOKSHIM_SAN=1 ASAN_OPTIONS=detect_leaks=1 \
			timeout 300 /usr/bin/python3 "tests/integration/$t.py" $cases >"$log/out" 2>&1
		count "san/integration/$t" "$log/out" $?
	done
fi

# Each libFuzzer target (TOKSHIM_FUZZ_BUILD, build/fuzz) replays its regression inputs, then
# fuzzes for FUZZ_TEST_SECONDS (3) from its seed corpus: one test per target.
if [ -n "${TOKSHIM_FUZZ_BUILD:-}" ]; then
	for t in "$top/$TOKSHIM_FUZZ_BUILD"/fuzz_*; do
		[ -x "$t" ] || continue
		sh fuzz/run.sh "$t" "${FUZZ_TEST_SECONDS:-3}" >"$log/out" 2>&1
		count "fuzz/$(basename "$t")" "$log/out" $?
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
