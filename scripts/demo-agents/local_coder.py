#!/usr/bin/python3
"""Demo agent "local-coder": a local model through Ollama's API over plain HTTP.

Streams a chat with httpx (Ollama answers NDJSON, one line per token) and makes one
non-streamed /api/generate call with urllib. The server is the demo's stand-in for Ollama on
127.0.0.1:DEMO_PLAIN_PORT. It knows nothing about tokshim.
"""
import json
import os
import sys
import urllib.request

import httpx

base = "http://127.0.0.1:%s" % os.environ["DEMO_PLAIN_PORT"]
req = {"model": "qwen2.5-coder:7b", "options": {"num_predict": 10},
       "messages": [{"role": "user", "content": "Write a Python one-liner that sums a list."}]}
sys.stdout.write("local-coder: qwen2.5-coder:7b streams: ")
with httpx.Client(timeout=30) as c:
    with c.stream("POST", base + "/api/chat", json=req) as r:
        for line in r.iter_lines():
            if line:
                sys.stdout.write(json.loads(line)["message"]["content"])
                sys.stdout.flush()
print()

req = {"model": "llama3.2", "prompt": "Name a sorting algorithm.", "stream": False,
       "options": {"num_predict": 6}}
r = urllib.request.urlopen(urllib.request.Request(base + "/api/generate",
                                                  data=json.dumps(req).encode(),
                                                  headers={"Content-Type": "application/json"}))
print("local-coder: llama3.2 answered: %s" % json.loads(r.read())["response"])
