#!/bin/sh
# tokshim demo: three unmodified agents call (local stand-ins for) OpenAI, Anthropic and
# Ollama under `tokshim run`; then `tokshim report` says who spent what.
#   scripts/demo.sh [BUILD_DIR]        (run by `make demo` after building)
# Needs only the repository and the Debian packages `make deps` installs (curl, openssl,
# python3, python3-requests, python3-httpx). Everything runs on 127.0.0.1 in a temp dir, which
# is removed at the end together with the server process.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
PY=/usr/bin/python3
tokshim="$build/tokshim"
for f in "$tokshim" "$build/libtokshim.so"; do
	[ -e "$f" ] || { echo "demo: $f is missing: run make first" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tokshim-demo.XXXXXX")
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

heading() { printf '\n\033[1m== %s\033[0m\n' "$*" 2>/dev/null || printf '\n== %s\n' "$*"; }
if [ ! -t 1 ]; then heading() { printf '\n== %s\n' "$*"; }; fi

heading "Setting up: a throw-away CA and local stand-ins for the LLM APIs"
$PY "$top/tests/integration/servers/testca.py" "$work/ca" >/dev/null
$PY "$top/tests/integration/servers/provider_server.py" --cert "$work/ca/server.pem" \
	--key "$work/ca/server.key" --ports-file "$work/ports.json" >/dev/null 2>"$work/server.err" &
server_pid=$!
i=0
while [ ! -s "$work/ports.json" ]; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
		echo "demo: the provider server did not start:" >&2
		cat "$work/server.err" >&2
		exit 1
	fi
	sleep 0.1
done
port() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/ports.json" "$1"; }
DEMO_TLS_PORT=$(port tls)
DEMO_PLAIN_PORT=$(port plain)
DEMO_CA="$work/ca/ca.pem"
DEMO_RESOLVE="api.openai.com,api.anthropic.com"
export DEMO_TLS_PORT DEMO_PLAIN_PORT DEMO_CA DEMO_RESOLVE
store="$work/usage.mdb"
echo "api.openai.com and api.anthropic.com: HTTPS on 127.0.0.1:$DEMO_TLS_PORT (the agents trust a demo CA)"
echo "Ollama: plain HTTP on 127.0.0.1:$DEMO_PLAIN_PORT"
echo "Usage store: $store"

agents="$top/scripts/demo-agents"
heading "Agent \"researcher\" (Python requests -> OpenAI): tokshim run --agent researcher -- python3 researcher.py"
"$tokshim" run --agent researcher --db "$store" -- $PY "$agents/researcher.py"

heading "Agent \"writer\" (curl -> Anthropic): tokshim run --agent writer -- sh writer.sh"
"$tokshim" run --agent writer --db "$store" -- sh "$agents/writer.sh"

heading "Agent \"local-coder\" (Python httpx + urllib -> Ollama): tokshim run --agent local-coder -- python3 local_coder.py"
"$tokshim" run --agent local-coder --db "$store" -- $PY "$agents/local_coder.py"

heading "None of the agents was changed. What tokshim recorded: tokshim report --db $store"
"$tokshim" report --db "$store"

heading "One record per call: tokshim records --db STORE --format jsonl (first line)"
"$tokshim" records --db "$store" --format jsonl | head -n 1
echo
echo "Done. (The demo's servers and temp files are removed on exit.)"
