#!/bin/sh
# Demo agent "writer": curl against the Anthropic messages API, once whole, once streamed.
# It knows nothing about tokshim. curl --resolve sends it to the demo's local stand-in for
# api.anthropic.com (DEMO_TLS_PORT) and --cacert trusts the demo CA; Host and SNI stay real.
set -eu
url="https://api.anthropic.com:$DEMO_TLS_PORT/v1/messages"
ask() { # body
	curl -sS --http1.1 --cacert "$DEMO_CA" --resolve "api.anthropic.com:$DEMO_TLS_PORT:127.0.0.1" \
		-H "x-api-key: sk-ant-demo-not-a-real-key" -H "anthropic-version: 2023-06-01" \
		-H "content-type: application/json" --data-binary "$1" "$url"
}
text=$(ask '{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"Describe Python in one sentence."}]}' |
	sed -n 's/.*"text":"\([^"]*\)".*/\1/p')
echo "writer: claude-sonnet-4-5 wrote: $text"
printf 'writer: claude-haiku-4-5 streams: '
ask '{"model":"claude-haiku-4-5","max_tokens":14,"stream":true,"messages":[{"role":"user","content":"Now a subtitle."}]}' |
	sed -n 's/^data: .*"text_delta","text":"\([^"]*\)".*/\1/p' | tr -d '\n'
echo
