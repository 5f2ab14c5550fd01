#!/usr/bin/python3
"""test_http2.py - HTTP/2 on the TLS and socket paths: httpx with http2=True, several calls at
once as streams of one connection, against tests/integration/servers/h2_server.py.

Each test runs clients/h2agent.py without and with the shim and asserts: same exit status and
stdout, every call answered over HTTP/2 on one connection per host (the server's log), and one
record per stream with every token field and the cost. httpx asks for gzip, so OpenAI and
Anthropic answers come gzip-encoded (streams included) and the capture must decode them.
"""
import json
import os

import harness as h
from harness import expect, expect_eq, test

import provider_server as ps

OPENAI = "api.openai.com"
ANTHROPIC = "api.anthropic.com"
AGENT = "h2-agent"
H2_SERVER = os.path.join(h.HERE, "servers", "h2_server.py")
H2AGENT = os.path.join(h.HERE, "clients", "h2agent.py")
OPENAI_HDRS = {"content-type": "application/json", "authorization": "Bearer sk-test-h2-0123456789"}
ANTHROPIC_HDRS = {"content-type": "application/json", "anthropic-version": "2023-06-01",
                  "x-api-key": "sk-ant-api03-test-h2"}


class Ctx:
    pass


def setup():
    c = Ctx()
    c.servers = h.Servers(H2_SERVER).start()
    c.man = h.manifest()
    return c


def teardown(c):
    if c:
        c.servers.stop()


def fx_usage(c, case):
    e = c.man[case]["expected"]
    return {k: e[k] for k in h.TOKEN_FIELDS}


def agent_argv(c, calls, prior_knowledge=False):
    spec = {"ca": c.servers.ca, "resolve": [OPENAI, ANTHROPIC], "calls": calls,
            "prior_knowledge": prior_knowledge}
    return [h.PYTHON, H2AGENT, h.write_temp(json.dumps(spec))]


def by_model(recs):
    return sorted(recs, key=lambda r: r.get("model_requested") or "")


def run_both(c, argv, wants, nstreams, nconns):
    """Baseline and shim runs; returns the shim run's records (sorted by model requested)."""
    base = h.run(argv)
    seen0 = c.servers.requests_seen()
    expect_eq(base.rc, 0, "h2agent exit status without the shim (%s)" % base.stderr[-400:])
    expect_eq(base.stdout.count(b" HTTP/2\n"), nstreams, "calls answered over HTTP/2")
    db = h.tmp_store()
    got = h.run(argv, shim=True, db=db, agent=AGENT)
    seen1 = c.servers.requests_seen()
    expect_eq(got.rc, base.rc, "h2agent exit status with the shim (%s)" % got.stderr[-400:])
    expect_eq(got.stdout, base.stdout, "h2agent stdout with the shim (vs without)")
    for seen in (seen0, seen1):
        expect_eq(len(seen), nstreams, "streams the server answered")
        expect_eq(len({s["conn"] for s in seen}), nconns, "connections the streams came on")
    key = lambda s: (s["target"], s["body_sha256"])  # noqa: E731
    expect_eq(sorted(map(key, seen1)), sorted(map(key, seen0)), "requests with the shim")
    recs = by_model(h.records(db))
    h.check(recs, sorted(wants, key=lambda w: w["model_requested"]))
    return recs


@test
def tls_four_streams_at_once(c):
    """OpenAI whole and streamed (recorded bodies), Anthropic streamed and whole, at once."""
    fx_whole = "openai_chat_nonstream_cached"
    fx_stream = "openai_chat_stream_include_usage_toolcall"
    anth_stream = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 7, "stream": True,
                              "messages": [{"role": "user", "content": "h2 stream"}]})
    anth_whole = json.dumps({"model": "claude-opus-4-1", "max_tokens": 5,
                             "messages": [{"role": "user", "content": "h2 whole, a bit longer"}]})
    hdr_stream = dict(ANTHROPIC_HDRS, **{"x-test-cache-read": "300", "x-test-event-delay-ms": "20"})
    calls = [
        {"url": c.servers.url(OPENAI, "/v1/chat/completions"), "headers": OPENAI_HDRS,
         "body": h.fixture_bytes(fx_whole + ".req.json").decode()},
        {"url": c.servers.url(OPENAI, "/v1/chat/completions"),
         "headers": dict(OPENAI_HDRS, **{"x-test-event-delay-ms": "15"}),
         "body": h.fixture_bytes(fx_stream + ".req.json").decode(), "stream": True},
        {"url": c.servers.url(ANTHROPIC, "/v1/messages"), "headers": hdr_stream,
         "body": anth_stream, "stream": True},
        {"url": c.servers.url(ANTHROPIC, "/v1/messages"), "headers": ANTHROPIC_HDRS,
         "body": anth_whole},
    ]
    u_stream = ps.expected_usage("/v1/messages", anth_stream.encode(), hdr_stream)
    u_whole = ps.expected_usage("/v1/messages", anth_whole.encode(), ANTHROPIC_HDRS)
    expect_eq((u_stream["output_tokens"], u_stream["cache_read_tokens"]), (7, 300), "rule")
    wants = [
        h.want_record("openai", "chat.completions", "gpt-4.1", "gpt-4.1-2025-04-14",
                      fx_usage(c, fx_whole), host=OPENAI, path="/v1/chat/completions",
                      agent=AGENT),
        h.want_record("openai", "chat.completions", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
                      fx_usage(c, fx_stream), host=OPENAI, path="/v1/chat/completions",
                      agent=AGENT, stream=True),
        h.want_record("anthropic", "messages", "claude-haiku-4-5", "claude-haiku-4-5-20251001",
                      u_stream, host=ANTHROPIC, path="/v1/messages", agent=AGENT, stream=True),
        h.want_record("anthropic", "messages", "claude-opus-4-1", "claude-opus-4-1-20250805",
                      u_whole, host=ANTHROPIC, path="/v1/messages", agent=AGENT),
    ]
    recs = run_both(c, agent_argv(c, calls), wants, 4, 2)  # one connection per host
    # the streams overlapped: the streamed ones ended after the whole ones began
    expect(all(r["latency_ms"] is not None for r in recs), "latency on every record")


@test
def plaintext_prior_knowledge_streams(c):
    """h2c with prior knowledge to a local model server: the socket path, two streams at once."""
    gen = json.dumps({"model": "llama3.2", "prompt": "h2c stream", "options": {"num_predict": 6}})
    chat = json.dumps({"model": "qwen2.5:7b", "stream": False, "options": {"num_predict": 4},
                       "messages": [{"role": "user", "content": "h2c whole"}]})
    base = "http://127.0.0.1:%d" % c.servers.plain
    hdrs = {"content-type": "application/json"}
    calls = [{"url": base + "/api/generate", "headers": hdrs, "body": gen, "stream": True},
             {"url": base + "/api/chat", "headers": hdrs, "body": chat}]
    wants = [
        h.want_record("ollama", "generate", "llama3.2", "llama3.2",
                      ps.expected_usage("/api/generate", gen.encode()), host="127.0.0.1",
                      path="/api/generate", agent=AGENT, locality="local", stream=True),
        h.want_record("ollama", "chat", "qwen2.5:7b", "qwen2.5:7b",
                      ps.expected_usage("/api/chat", chat.encode()), host="127.0.0.1",
                      path="/api/chat", agent=AGENT, locality="local"),
    ]
    run_both(c, agent_argv(c, calls, prior_knowledge=True), wants, 2, 1)


if __name__ == "__main__":
    h.main(setup, teardown)
