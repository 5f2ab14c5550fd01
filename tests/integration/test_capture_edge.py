#!/usr/bin/python3
"""test_capture_edge.py - harder traffic under the shim: odd framing, long streams, threads,
chunked uploads, fail-open on an unusable store, secrets at rest.

Same method as test_capture.py: a real client runs with and without the shim; stdout, exit
status and the requests the server saw must be identical; the records must be exactly right.
"""
import json
import os
import stat
import subprocess

import harness as h
from harness import expect, expect_eq, test

import provider_server as ps
from test_capture import (AGENT, ANTHROPIC, ANTHROPIC_HDRS, CHAT, LOCAL, OLLAMA_HDRS, OPENAI,
                          OPENAI_HDRS, capture, client_argv, contains, fx_usage, setup,
                          teardown)

SECRET = "sk-test-0123456789abcdef"  # in OPENAI_HDRS' Authorization
ANT_SECRET = "sk-ant-api03-test-0123456789"


@test
def one_byte_chunks_gzip_nonstream(c):
    """A gzip body cut into 1-, 2- and 3-byte chunks: framing must not depend on chunk size."""
    case = "openai_chat_nonstream_cached"
    hdrs = dict(OPENAI_HDRS, **{"X-Test-Encoding": "gzip", "X-Test-Framing": "chunked",
                                "X-Test-Chunk-Sizes": "1,2,3"})
    w = h.want_record("openai", "chat.completions", "gpt-4.1", "gpt-4.1-2025-04-14",
                      fx_usage(c, case), host=OPENAI, path=CHAT, agent=AGENT)
    capture(c, client_argv(c, "requests", OPENAI, CHAT, h.fixture_bytes(case + ".req.json"),
                           hdrs, False), [w],
            check_stdout=contains(h.fixture_bytes(case + ".body")))


@test
def long_gzip_sse_stream_httpx(c):
    """3000 events, gzip per event over chunked transfer, no delay between events."""
    body = json.dumps({"model": "gpt-4o", "stream": True,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "Write a long essay."}]})
    hdrs = dict(OPENAI_HDRS, **{"X-Test-Output-Tokens": "3000", "X-Test-Event-Delay-Ms": "0"})
    w = h.want_record("openai", "chat.completions", "gpt-4o", "gpt-4o-2024-08-06",
                      ps.expected_usage(CHAT, body.encode(), hdrs), host=OPENAI, path=CHAT,
                      agent=AGENT, stream=True)
    _, seen = capture(c, client_argv(c, "httpx", OPENAI, CHAT, body, hdrs, True), [w],
                      check_stdout=contains(b"data: [DONE]"))
    expect_eq(seen[0]["encoding"], "gzip", "server encoding")


@test
def long_anthropic_stream_curl(c):
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": True,
                       "messages": [{"role": "user", "content": "Tell a long story."}]})
    hdrs = dict(ANTHROPIC_HDRS, **{"X-Test-Output-Tokens": "2500", "X-Test-Event-Delay-Ms": "0",
                                   "X-Test-Cache-Read": "70000"})
    w = h.want_record("anthropic", "messages", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
                      ps.expected_usage("/v1/messages", body.encode(), hdrs), host=ANTHROPIC,
                      path="/v1/messages", agent=AGENT, stream=True)
    capture(c, client_argv(c, "curl", ANTHROPIC, "/v1/messages", body, hdrs, True), [w])


@test
def threads_in_one_process(c):
    """Eight threads, each its own requests.Session and connection, at the same time."""
    url = c.servers.url(OPENAI, CHAT)
    code = r'''
import json, socket, sys, threading, requests
g = socket.getaddrinfo
socket.getaddrinfo = lambda host, *a, **k: g("127.0.0.1" if host == "api.openai.com" else host, *a, **k)
out = [None] * 8
def work(i):
    s = requests.Session()
    body = json.dumps({"model": "gpt-4.1-mini", "max_tokens": i + 1, "stream": i % 2 == 1,
                       "stream_options": {"include_usage": True} if i % 2 else None,
                       "messages": [{"role": "user", "content": "thread %d" % i}]})
    r = s.post(URL, data=body, headers=HDRS, verify=CA, stream=True)
    out[i] = r.status_code, len(r.content)
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
print(out)
'''.replace("URL", repr(url)).replace("HDRS", repr(OPENAI_HDRS)).replace("CA", repr(c.servers.ca))
    bodies = [json.dumps({"model": "gpt-4.1-mini", "max_tokens": i + 1, "stream": i % 2 == 1,
                          "stream_options": {"include_usage": True} if i % 2 else None,
                          "messages": [{"role": "user", "content": "thread %d" % i}]})
              for i in range(8)]
    wants = [h.want_record("openai", "chat.completions", "gpt-4.1-mini",
                           "gpt-4.1-mini-2025-04-14",
                           ps.expected_usage(CHAT, b.encode(), OPENAI_HDRS), host=OPENAI,
                           path=CHAT, agent=AGENT, stream=i % 2 == 1)
             for i, b in enumerate(bodies)]
    base = h.run([h.PYTHON, "-c", code])
    c.servers.requests_seen()
    db = h.tmp_store()
    got = h.run([h.PYTHON, "-c", code], shim=True, db=db, agent=AGENT)
    expect_eq((got.rc, got.stdout), (base.rc, base.stdout), "(exit, stdout) with the shim; "
              "stderr %r" % got.stderr[-300:])
    recs = h.records(db)
    recs.sort(key=lambda r: r.get("output_tokens") or 0)
    h.check(recs, wants)


@test
def chunked_request_body_requests(c):
    """The agent uploads its JSON with Transfer-Encoding: chunked (a generator body)."""
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 6,
                       "messages": [{"role": "user", "content": "Chunked upload " + "x" * 3000}]})
    code = r'''
import socket, requests
g = socket.getaddrinfo
socket.getaddrinfo = lambda host, *a, **k: g("127.0.0.1" if host == "api.anthropic.com" else host, *a, **k)
body = BODY.encode()
def gen():
    for i in range(0, len(body), 700):
        yield body[i:i + 700]
r = requests.post(URL, data=gen(), headers=HDRS, verify=CA)
print(r.status_code, r.text)
'''.replace("BODY", repr(body)).replace("URL", repr(c.servers.url(ANTHROPIC, "/v1/messages"))) \
        .replace("HDRS", repr(ANTHROPIC_HDRS)).replace("CA", repr(c.servers.ca))
    w = h.want_record("anthropic", "messages", "claude-haiku-4-5", "claude-haiku-4-5-20251001",
                      ps.expected_usage("/v1/messages", body.encode()), host=ANTHROPIC,
                      path="/v1/messages", agent=AGENT)
    _, seen = capture(c, [h.PYTHON, "-c", code], [w], check_stdout=contains(b"200 {"))
    te = [v for k, v in seen[0]["headers"] if k.lower() == "transfer-encoding"]
    expect_eq(te, ["chunked"], "request Transfer-Encoding")


@test
def unusable_store_fails_open(c):
    """TOKSHIM_DB under a regular file: the store cannot be created; the agent must not notice."""
    d = os.path.dirname(h.tmp_store())
    blocker = os.path.join(d, "file")
    open(blocker, "w").close()
    case = "openai_chat_stream_include_usage_toolcall"
    for client in ("curl", "httpx"):
        argv = client_argv(c, client, OPENAI, CHAT, h.fixture_bytes(case + ".req.json"),
                           OPENAI_HDRS, True)
        base = h.run(argv)
        got = h.run(argv, shim=True, db=os.path.join(blocker, "usage.mdb"), agent=AGENT)
        expect_eq((got.rc, got.stdout), (base.rc, base.stdout),
                  client + " (exit, stdout) with an unusable store; stderr %r" % got.stderr[-300:])


@test
def store_mode_and_no_secrets_at_rest(c):
    """The store is 0600 and neither the LMDB file nor `tokshim show` holds the API keys."""
    db = h.tmp_store()
    calls = [{"url": c.servers.url(OPENAI, CHAT), "headers": dict(OPENAI_HDRS, Cookie="sid=cookie-secret-42"),
              "body": json.dumps({"model": "gpt-4o", "max_tokens": 2, "messages": []})},
             {"url": c.servers.url(ANTHROPIC, "/v1/messages"), "headers": ANTHROPIC_HDRS,
              "body": json.dumps({"model": "claude-haiku-4-5", "max_tokens": 2, "messages": []})}]
    r = h.run(h.pyagent_argv(c.servers, "requests", calls, session=False), shim=True, db=db,
              agent=AGENT)
    expect_eq(r.rc, 0, "agent exit: %r" % r)
    recs = h.records(db)
    expect_eq(len(recs), 2, "records")
    mode = stat.S_IMODE(os.stat(db).st_mode)
    expect_eq(oct(mode), oct(0o600), "store file mode")
    with open(db, "rb") as f:
        raw = f.read()
    for s in (SECRET, ANT_SECRET, "cookie-secret-42"):
        expect(s.encode() not in raw, "secret %r found in the store file" % s)
    for rec in recs:
        p = subprocess.run([h.CLI, "show", "--db", db, str(rec["id"])], env=h.clean_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        expect_eq(p.returncode, 0, "tokshim show %s exit (%s)" % (rec["id"], p.stderr[-300:]))
        for s in (SECRET, ANT_SECRET, "cookie-secret-42"):
            expect(s.encode() not in p.stdout, "secret %r in `tokshim show %s`" % (s, rec["id"]))
        expect(b"200" in p.stdout, "show output lacks the status: %r" % p.stdout[:300])
        hdr = b"Authorization: [REDACTED]" if rec["provider"] == "openai" else b"x-api-key: [REDACTED]"
        expect(hdr in p.stdout, "`tokshim show %s` lacks %r: %r" % (rec["id"], hdr, p.stdout[:600]))


@test
def ollama_openai_compatible_not_confused(c):
    """A non-LLM JSON POST to the plain port next to an Ollama call: one record only."""
    body = json.dumps({"model": "llama3.2", "prompt": "hi", "stream": False})
    argv = h.curl_argv(c.servers, LOCAL, "/api/generate", h.write_temp(body),
                       ["Content-Type: application/json"])
    argv += ["--next", c.servers.url(LOCAL, "/api/version"), "-sS"]
    w = h.want_record("ollama", "generate", "llama3.2", "llama3.2",
                      ps.expected_usage("/api/generate", body.encode()), host=LOCAL,
                      path="/api/generate", agent=AGENT, locality="local")
    capture(c, argv, [w])


@test
def report_totals_match_records(c):
    """`tokshim report --format json` adds up to the records of a store written by 3 agents."""
    db = h.tmp_store()
    case = "anthropic_messages_nonstream_cache_write_and_read"
    runs = [("researcher", client_argv(c, "requests", OPENAI, CHAT,
                                       h.fixture_bytes("openai_chat_nonstream_cached.req.json"),
                                       OPENAI_HDRS, False)),
            ("writer", client_argv(c, "curl", ANTHROPIC, "/v1/messages?beta=true",
                                   '{"model":"claude-sonnet-4-5","max_tokens":9,"messages":[]}',
                                   ANTHROPIC_HDRS, False)),
            ("local-coder", client_argv(c, "httpx", LOCAL, "/api/chat",
                                        h.fixture_bytes("ollama_chat_nonstream.req.json"),
                                        OLLAMA_HDRS, False))]
    for agent, argv in runs:
        r = h.run(argv, shim=True, db=db, agent=agent)
        expect_eq(r.rc, 0, agent + " exit: %r" % r)
    recs = h.records(db)
    expect_eq(sorted(r["agent"] for r in recs), ["local-coder", "researcher", "writer"], "agents")
    p = subprocess.run([h.CLI, "report", "--db", db, "--format", "json"], env=h.clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    expect_eq(p.returncode, 0, "report exit (%s)" % p.stderr[-300:])
    rep = json.loads(p.stdout, parse_float=h.decimal.Decimal)
    for k in ("totalTokens", "totalCost", "byAgent", "byModel", "byProvider", "fallbackUsage",
              "locality"):
        expect(k in rep, "report lacks %s: keys %s" % (k, sorted(rep)))
    want_tokens = sum(r["total_tokens"] for r in recs)
    expect_eq(rep["totalTokens"], want_tokens, "report totalTokens (sum of records)")
    want_cost = sum((h.Fraction(str(r["cost_usd"])) for r in recs), h.Fraction(0))
    expect(h.cost_matches(rep["totalCost"], want_cost),
           "report totalCost %r, records add up to %s" % (rep["totalCost"], float(want_cost)))
    want = (fx_usage(c, "openai_chat_nonstream_cached")["total_tokens"] +
            fx_usage(c, case)["total_tokens"] + fx_usage(c, "ollama_chat_nonstream")["total_tokens"])
    expect_eq(want_tokens, want, "records' total_tokens vs the fixtures' manifest")
    names = json.dumps(rep["byAgent"], default=str)
    for a in ("researcher", "writer", "local-coder"):
        expect(a in names, "byAgent lacks %s: %s" % (a, names[:300]))


if __name__ == "__main__":
    h.main(setup, teardown)
