#!/usr/bin/python3
"""Demo agent "researcher": Python requests against the OpenAI chat API.

Asks one question (not streamed; the first try meets a 429 and is retried, as agents do), then
streams a follow-up with stream_options.include_usage. It knows nothing about tokshim. It
reaches the demo's local stand-in for api.openai.com because it maps that name to 127.0.0.1
(DEMO_RESOLVE) and trusts the demo CA (DEMO_CA); the URL and Host stay api.openai.com.
"""
import json
import os
import socket
import sys
import time

import requests

_gai = socket.getaddrinfo
_resolve = set(os.environ.get("DEMO_RESOLVE", "").split(","))
socket.getaddrinfo = lambda h, *a, **k: _gai("127.0.0.1" if h in _resolve else h, *a, **k)

URL = "https://api.openai.com:%s/v1/chat/completions" % os.environ["DEMO_TLS_PORT"]
HDRS = {"Authorization": "Bearer sk-demo-not-a-real-key", "Content-Type": "application/json"}
CA = os.environ["DEMO_CA"]
s = requests.Session()

q = {"model": "gpt-4.1", "max_tokens": 12,
     "messages": [{"role": "system", "content": "You are a careful research assistant."},
                  {"role": "user", "content": "Where should token usage be measured?"}]}
for attempt in (1, 2):
    hdrs = dict(HDRS, **({"X-Test-Scenario": "rate_limit", "X-Test-Retry-After": "1"}
                         if attempt == 1 else {}))
    r = s.post(URL, headers=hdrs, data=json.dumps(q), verify=CA)
    if r.status_code == 429:
        print("researcher: gpt-4.1 said 429 (%s), retrying" % r.json()["error"]["code"])
        time.sleep(0.2)
        continue
    j = r.json()
    print("researcher: gpt-4.1 answered: %s" % j["choices"][0]["message"]["content"])
    break

q = {"model": "gpt-4.1-mini", "stream": True, "stream_options": {"include_usage": True},
     "max_tokens": 8, "messages": [{"role": "user", "content": "Summarise that in a line."}]}
sys.stdout.write("researcher: gpt-4.1-mini streams: ")
with s.post(URL, headers=HDRS, data=json.dumps(q), stream=True, verify=CA) as r:
    for line in r.iter_lines():
        if line.startswith(b"data: {"):
            for ch in json.loads(line[6:])["choices"]:
                sys.stdout.write(ch["delta"].get("content") or "")
                sys.stdout.flush()
print()
