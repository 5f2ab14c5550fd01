#!/usr/bin/python3
"""test_capture.py - real clients, real TLS, under the shim: exactly the right records.

Every test runs a real, unmodified client (curl, Python requests / httpx / urllib /
http.client) against tests/integration/servers/provider_server.py twice: without the shim
(the baseline) and with LD_PRELOAD=libtokshim.so (or `tokshim run`). It then asserts:
  - the exit status and stdout are byte-identical with and without the shim (fail open);
  - the server received the same requests (method, target, headers, body) both times;
  - `tokshim records --format jsonl` holds exactly the expected records: provider, api, host,
    path, model_requested, model, every token field, total, locality, status, stream,
    estimated, error, agent, and cost_usd (from providers/pricing.json, exact to the
    micro-dollar).
Expected tokens come from the fixtures' manifest "expected" where a recorded body is served,
else from the server's documented generation rule (provider_server.expected_usage).
"""
import json
import os
import subprocess

import harness as h
from harness import expect, expect_eq, test

import provider_server as ps

OPENAI = "api.openai.com"
ANTHROPIC = "api.anthropic.com"
LOCAL = "127.0.0.1"
CHAT = "/v1/chat/completions"
AGENT = "it-agent"

OPENAI_HDRS = {"Content-Type": "application/json", "Authorization": "Bearer sk-test-0123456789abcdef"}
ANTHROPIC_HDRS = {"content-type": "application/json", "anthropic-version": "2023-06-01",
                  "x-api-key": "sk-ant-api03-test-0123456789"}
OLLAMA_HDRS = {"Content-Type": "application/json"}

PADDING = "This is padding text to ensure the prompt is large enough for caching. " * 60
ANTHROPIC_CACHE_REQ = json.dumps({
    "model": "claude-sonnet-4-5", "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are a concise assistant. " + PADDING,
                "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Describe Python in one sentence."}]},
    separators=(",", ":"))


setup = h.setup_servers
teardown = h.teardown_servers


# ---------------------------------------------------------------------------------------------

def fx_usage(c, case):
    e = c.man[case]["expected"]
    return {k: e[k] for k in h.TOKEN_FIELDS}


def zero_usage():
    return {k: 0 for k in h.TOKEN_FIELDS}


def header_lines(hdrs):
    return ["%s: %s" % kv for kv in hdrs.items()]


def client_argv(c, client, host, path, body, hdrs, stream, curl_extra=()):
    body_path = h.write_temp(body)
    if client == "curl":
        return h.curl_argv(c.servers, host, path, body_path, header_lines(hdrs), curl_extra)
    return h.pyagent_argv(c.servers, client, [{"url": c.servers.url(host, path), "headers": hdrs,
                                                "body_file": body_path, "stream": stream}])


def same_requests(seen0, seen1):
    """The shim must not change what reaches the server."""
    key = [("method", "target", "version", "headers", "body_sha256", "body_len", "seq", "tls")]
    a = [{k: s[k] for k in key[0]} for s in seen0]
    b = [{k: s[k] for k in key[0]} for s in seen1]
    expect_eq(b, a, "requests received by the server with the shim (vs without)")


def capture(c, argv, wants, agent=AGENT, base_rc=0, check_stdout=None, via_cli=False, env=None):
    """Baseline run, shim run, then the records. Returns (records, server log of the shim run)."""
    base = h.run(argv, env=env)
    seen0 = c.servers.requests_seen()
    expect_eq(base.rc, base_rc, "client exit status without the shim (%s)" %
              base.stderr.decode(errors="replace")[-300:])
    if check_stdout:
        check_stdout(base.stdout)
    db = h.tmp_store()
    got = h.run(argv, shim=True, db=db, agent=agent, env=env, via_cli=via_cli)
    seen1 = c.servers.requests_seen()
    expect_eq(got.rc, base.rc, "client exit status with the shim (stderr: %s)" %
              got.stderr.decode(errors="replace")[-500:])
    expect_eq(got.stdout, base.stdout, "client stdout with the shim (vs without)")
    same_requests(seen0, seen1)
    recs = h.records(db)
    h.check(recs, wants)
    return recs, seen1


def contains(expected_bytes):
    def chk(out):
        expect(expected_bytes in out, "client output lacks the expected body; got %r" % out[:300])
    return chk


# ---------------------------------------------------------------------------------------------
# The client × scenario matrix
# ---------------------------------------------------------------------------------------------

def scenario_openai_nonstream_cached(c, client):
    case = "openai_chat_nonstream_cached"
    body = h.fixture_bytes(case + ".req.json")
    w = h.want_record("openai", "chat.completions", "gpt-4.1", "gpt-4.1-2025-04-14",
                      fx_usage(c, case), host=OPENAI, path=CHAT, agent=AGENT)
    capture(c, client_argv(c, client, OPENAI, CHAT, body, OPENAI_HDRS, False), [w],
            check_stdout=contains(h.fixture_bytes(case + ".body")))


def scenario_openai_stream_include_usage(c, client):
    case = "openai_chat_stream_include_usage_toolcall"
    body = h.fixture_bytes(case + ".req.json")
    w = h.want_record("openai", "chat.completions", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
                      fx_usage(c, case), host=OPENAI, path=CHAT, agent=AGENT, stream=True)
    capture(c, client_argv(c, client, OPENAI, CHAT, body, OPENAI_HDRS, True), [w],
            check_stdout=contains(h.fixture_bytes(case + ".body")))


def scenario_anthropic_nonstream_cache(c, client):
    case = "anthropic_messages_nonstream_cache_write_and_read"
    path = "/v1/messages?beta=true"
    w = h.want_record("anthropic", "messages", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
                      fx_usage(c, case), host=ANTHROPIC, path=path, agent=AGENT)
    capture(c, client_argv(c, client, ANTHROPIC, path, ANTHROPIC_CACHE_REQ, ANTHROPIC_HDRS,
                           False), [w], check_stdout=contains(h.fixture_bytes(case + ".body")))


def scenario_anthropic_stream(c, client):
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 9, "stream": True,
                       "messages": [{"role": "user", "content": "Say something about tokens."}]})
    hdrs = dict(ANTHROPIC_HDRS, **{"X-Test-Cache-Read": "2048", "X-Test-Cache-Write": "100"})
    u = ps.expected_usage("/v1/messages", body.encode(), hdrs)
    expect_eq((u["output_tokens"], u["cache_read_tokens"], u["cache_write_tokens"]),
              (9, 2048, 100), "generation rule sanity")
    w = h.want_record("anthropic", "messages", "claude-haiku-4-5", "claude-haiku-4-5-20251001",
                      u, host=ANTHROPIC, path="/v1/messages", agent=AGENT, stream=True)
    capture(c, client_argv(c, client, ANTHROPIC, "/v1/messages", body, hdrs, True), [w],
            check_stdout=contains(b"event: message_stop"))


def scenario_ollama_chat_nonstream(c, client):
    case = "ollama_chat_nonstream"
    body = h.fixture_bytes(case + ".req.json")
    w = h.want_record("ollama", "chat", "mistral:7b-instruct", "mistral:7b-instruct",
                      fx_usage(c, case), host=LOCAL, path="/api/chat", agent=AGENT,
                      locality="local")
    capture(c, client_argv(c, client, LOCAL, "/api/chat", body, OLLAMA_HDRS, False), [w],
            check_stdout=contains(h.fixture_bytes(case + ".body")))


def scenario_ollama_generate_stream(c, client):
    body = json.dumps({"model": "llama3.2", "prompt": "Why is the sky blue? Answer briefly.",
                       "options": {"num_predict": 10}})
    u = ps.expected_usage("/api/generate", body.encode())
    w = h.want_record("ollama", "generate", "llama3.2", "llama3.2", u, host=LOCAL,
                      path="/api/generate", agent=AGENT, locality="local", stream=True)
    capture(c, client_argv(c, client, LOCAL, "/api/generate", body, OLLAMA_HDRS, True), [w],
            check_stdout=contains(b'"done":true'))


MATRIX = [
    (scenario_openai_nonstream_cached, ("curl", "requests", "httpx", "urllib")),
    (scenario_openai_stream_include_usage, ("curl", "requests", "httpx", "urllib")),
    (scenario_anthropic_nonstream_cache, ("curl", "requests", "httpx", "urllib")),
    (scenario_anthropic_stream, ("curl", "requests", "httpx", "urllib")),
    (scenario_ollama_chat_nonstream, ("curl", "requests", "httpx", "urllib")),
    (scenario_ollama_generate_stream, ("curl", "requests", "httpx", "urllib")),
]


def _register(fn, client):
    def t(c):
        fn(c, client)
    t.__name__ = "%s__%s" % (fn.__name__.replace("scenario_", ""), client.replace(".", "_"))
    test(t)


for _fn, _clients in MATRIX:
    for _client in _clients:
        _register(_fn, _client)


# ---------------------------------------------------------------------------------------------
# Encodings and framing
# ---------------------------------------------------------------------------------------------

@test
def gzip_chunked_nonstream_curl(c):
    body = json.dumps({"model": "gpt-4o", "max_tokens": 7,
                       "messages": [{"role": "user", "content": "Compress me."}]})
    hdrs = dict(OPENAI_HDRS, **{"X-Test-Cache-Read": "1024", "X-Test-Encoding": "gzip",
                                "X-Test-Framing": "chunked", "X-Test-Chunk-Sizes": "64,200,17"})
    u = ps.expected_usage(CHAT, body.encode(), hdrs)
    w = h.want_record("openai", "chat.completions", "gpt-4o", "gpt-4o-2024-08-06", u,
                      host=OPENAI, path=CHAT, agent=AGENT)
    _, seen = capture(c, client_argv(c, "curl", OPENAI, CHAT, body, hdrs, False,
                                     ["--compressed"]), [w], check_stdout=contains(b'"usage"'))
    expect_eq((seen[0]["encoding"], seen[0]["framing"]), ("gzip", "chunked"), "server framing")


@test
def gzip_sse_stream_reasoning_curl(c):
    body = json.dumps({"model": "o4-mini", "stream": True,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "Think, then answer."}]})
    hdrs = dict(OPENAI_HDRS, **{"X-Test-Reasoning-Tokens": "64", "X-Test-Cache-Read": "128",
                                "X-Test-Output-Tokens": "40"})
    u = ps.expected_usage(CHAT, body.encode(), hdrs)
    expect_eq((u["output_tokens"], u["reasoning_tokens"]), (104, 64), "generation rule sanity")
    w = h.want_record("openai", "chat.completions", "o4-mini", "o4-mini-2025-04-16", u,
                      host=OPENAI, path=CHAT, agent=AGENT, stream=True)
    _, seen = capture(c, client_argv(c, "curl", OPENAI, CHAT, body, hdrs, True, ["--compressed"]),
                      [w], check_stdout=contains(b"data: [DONE]"))
    expect_eq((seen[0]["encoding"], seen[0]["framing"]), ("gzip", "chunked"), "server framing")


@test
def gzip_sse_stream_requests(c):
    """requests sends Accept-Encoding: gzip, so the server gzips the SSE stream per event."""
    case = "openai_chat_stream_include_usage_toolcall"
    w = h.want_record("openai", "chat.completions", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
                      fx_usage(c, case), host=OPENAI, path=CHAT, agent=AGENT, stream=True)
    _, seen = capture(c, client_argv(c, "requests", OPENAI, CHAT,
                                     h.fixture_bytes(case + ".req.json"), OPENAI_HDRS, True), [w])
    expect_eq((seen[0]["encoding"], seen[0]["framing"]), ("gzip", "chunked"), "server framing")


@test
def expect_100_continue_curl(c):
    case = "openai_chat_nonstream_cached"
    w = h.want_record("openai", "chat.completions", "gpt-4.1", "gpt-4.1-2025-04-14",
                      fx_usage(c, case), host=OPENAI, path=CHAT, agent=AGENT)
    hdrs = dict(OPENAI_HDRS, Expect="100-continue")
    _, seen = capture(c, client_argv(c, "curl", OPENAI, CHAT, h.fixture_bytes(case + ".req.json"),
                                     hdrs, False), [w],
                      check_stdout=contains(h.fixture_bytes(case + ".body")))
    expect(seen[0]["sent_100_continue"] is True, "server did not send 100 Continue")


# ---------------------------------------------------------------------------------------------
# Keep-alive: several exchanges on one connection
# ---------------------------------------------------------------------------------------------

def one_connection(seen, n):
    expect_eq([(s["conn"], s["seq"]) for s in seen], [(seen[0]["conn"], i + 1) for i in range(n)],
              "(connection, request number) of the %d requests" % n)


@test
def keepalive_requests_session_openai(c):
    bodies = [json.dumps({"model": "gpt-4o", "max_tokens": n,
                          "messages": [{"role": "user", "content": "Count to %d." % n}]})
              for n in (3, 5, 7)]
    bodies[1] = json.dumps({"model": "gpt-4o", "max_tokens": 5, "stream": True,
                            "stream_options": {"include_usage": True},
                            "messages": [{"role": "user", "content": "Count to 5."}]})
    calls = [{"url": c.servers.url(OPENAI, CHAT), "headers": OPENAI_HDRS, "body": b,
              "stream": i == 1} for i, b in enumerate(bodies)]
    wants = [h.want_record("openai", "chat.completions", "gpt-4o", "gpt-4o-2024-08-06",
                           ps.expected_usage(CHAT, b.encode(), OPENAI_HDRS), host=OPENAI,
                           path=CHAT, agent=AGENT, stream=i == 1) for i, b in enumerate(bodies)]
    _, seen = capture(c, h.pyagent_argv(c.servers, "requests", calls, session=True), wants)
    one_connection(seen, 3)


@test
def keepalive_httpx_client_anthropic(c):
    gen = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 4, "stream": True,
                      "messages": [{"role": "user", "content": "Hi"}]})
    gen2 = json.dumps({"model": "claude-opus-4-1", "max_tokens": 6,
                       "messages": [{"role": "user", "content": "Hello there"}]})
    calls = [{"url": c.servers.url(ANTHROPIC, "/v1/messages?beta=true"), "headers": ANTHROPIC_HDRS,
              "body": ANTHROPIC_CACHE_REQ},
             {"url": c.servers.url(ANTHROPIC, "/v1/messages"), "headers": ANTHROPIC_HDRS,
              "body": gen, "stream": True},
             {"url": c.servers.url(ANTHROPIC, "/v1/messages"), "headers": ANTHROPIC_HDRS,
              "body": gen2}]
    wants = [h.want_record("anthropic", "messages", "claude-sonnet-4-5",
                           "claude-sonnet-4-5-20250929",
                           fx_usage(c, "anthropic_messages_nonstream_cache_write_and_read"),
                           host=ANTHROPIC, path="/v1/messages?beta=true", agent=AGENT),
             h.want_record("anthropic", "messages", "claude-haiku-4-5", "claude-haiku-4-5-20251001",
                           ps.expected_usage("/v1/messages", gen.encode()), host=ANTHROPIC,
                           path="/v1/messages", agent=AGENT, stream=True),
             h.want_record("anthropic", "messages", "claude-opus-4-1", "claude-opus-4-1-20250805",
                           ps.expected_usage("/v1/messages", gen2.encode()), host=ANTHROPIC,
                           path="/v1/messages", agent=AGENT)]
    _, seen = capture(c, h.pyagent_argv(c.servers, "httpx", calls, session=True), wants)
    one_connection(seen, 3)


@test
def keepalive_curl_next_openai(c):
    bodies = [json.dumps({"model": "gpt-4.1-mini", "max_tokens": n,
                          "messages": [{"role": "user", "content": "n=%d" % n}]}) for n in (2, 4, 6)]
    argv = h.curl_argv(c.servers, OPENAI, CHAT, h.write_temp(bodies[0]), header_lines(OPENAI_HDRS))
    for b in bodies[1:]:
        argv += ["--next", "--http1.1", "--cacert", c.servers.ca, c.servers.url(OPENAI, CHAT),
                 "--data-binary", "@" + h.write_temp(b)] + \
            sum([["-H", x] for x in header_lines(OPENAI_HDRS)], [])
    wants = [h.want_record("openai", "chat.completions", "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14",
                           ps.expected_usage(CHAT, b.encode()), host=OPENAI, path=CHAT, agent=AGENT)
             for b in bodies]
    _, seen = capture(c, argv, wants)
    one_connection(seen, 3)


@test
def keepalive_http_client_ollama(c):
    chat_stream = json.dumps({"model": "qwen2.5-coder:7b",
                              "messages": [{"role": "user", "content": "Write a haiku."}]})
    gen = json.dumps({"model": "llama3.2", "prompt": "One word:", "stream": False,
                      "options": {"num_predict": 3}})
    fixture = h.fixture_bytes("ollama_chat_nonstream.req.json").decode()
    url = lambda p: c.servers.url(LOCAL, p)  # noqa: E731
    calls = [{"url": url("/api/chat"), "headers": OLLAMA_HDRS, "body": chat_stream, "stream": True},
             {"url": url("/api/generate"), "headers": OLLAMA_HDRS, "body": gen},
             {"url": url("/api/chat"), "headers": OLLAMA_HDRS, "body": fixture}]
    wants = [h.want_record("ollama", "chat", "qwen2.5-coder:7b", "qwen2.5-coder:7b",
                           ps.expected_usage("/api/chat", chat_stream.encode()), host=LOCAL,
                           path="/api/chat", agent=AGENT, locality="local", stream=True),
             h.want_record("ollama", "generate", "llama3.2", "llama3.2",
                           ps.expected_usage("/api/generate", gen.encode()), host=LOCAL,
                           path="/api/generate", agent=AGENT, locality="local"),
             h.want_record("ollama", "chat", "mistral:7b-instruct", "mistral:7b-instruct",
                           fx_usage(c, "ollama_chat_nonstream"), host=LOCAL, path="/api/chat",
                           agent=AGENT, locality="local")]
    _, seen = capture(c, h.pyagent_argv(c.servers, "http.client", calls, session=True), wants)
    one_connection(seen, 3)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

def error_case(c, client, host, path, model, hdrs, scenario, status, error):
    body = json.dumps({"model": model, "max_tokens": 16,
                       "messages": [{"role": "user", "content": "Hello"}]})
    hdrs = dict(hdrs, **{"X-Test-Scenario": scenario})
    provider, api = ("openai", "chat.completions") if host == OPENAI else ("anthropic", "messages")
    w = h.want_record(provider, api, model, model, zero_usage(), host=host, path=path,
                      agent=AGENT, status=status, error=error)
    capture(c, client_argv(c, client, host, path, body, hdrs, False), [w],
            check_stdout=contains(b"error"))


@test
def error_429_rate_limit_curl(c):
    error_case(c, "curl", OPENAI, CHAT, "gpt-4o-mini", OPENAI_HDRS, "rate_limit", 429, "rate_limit")


@test
def error_429_rate_limit_anthropic_httpx(c):
    error_case(c, "httpx", ANTHROPIC, "/v1/messages", "claude-haiku-4-5", ANTHROPIC_HDRS,
               "rate_limit", 429, "rate_limit")


@test
def error_529_overloaded_requests(c):
    error_case(c, "requests", ANTHROPIC, "/v1/messages", "claude-sonnet-4-5", ANTHROPIC_HDRS,
               "overloaded", 529, "overloaded")


@test
def error_401_auth_urllib(c):
    error_case(c, "urllib", OPENAI, CHAT, "gpt-4o", OPENAI_HDRS, "auth", 401, "auth")


@test
def error_500_server_curl(c):
    error_case(c, "curl", ANTHROPIC, "/v1/messages", "claude-haiku-4-5", ANTHROPIC_HDRS,
               "server_error", 500, "server")


@test
def truncated_stream_is_a_network_error(c):
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 12, "stream": True,
                       "messages": [{"role": "user", "content": "This will be cut."}]})
    hdrs = dict(ANTHROPIC_HDRS, **{"X-Test-Scenario": "truncate"})
    argv = client_argv(c, "curl", ANTHROPIC, "/v1/messages", body, hdrs, True)
    base = h.run(argv)
    c.servers.requests_seen()
    expect(base.rc != 0, "curl should fail on a cut stream: %r" % base)
    db = h.tmp_store()
    got = h.run(argv, shim=True, db=db, agent=AGENT)
    expect_eq((got.rc, got.stdout), (base.rc, base.stdout), "(exit, stdout) with the shim")
    recs = h.records(db)
    expect_eq(len(recs), 1, "records")
    r = recs[0]
    h.check([r], [{"provider": "anthropic", "model_requested": "claude-haiku-4-5",
                   "stream": True, "status": 200, "_error": "network", "agent": AGENT}])


# ---------------------------------------------------------------------------------------------
# Estimates, agents, processes
# ---------------------------------------------------------------------------------------------

@test
def stream_without_include_usage_is_estimated(c):
    j = json.loads(h.fixture_bytes("openai_chat_stream_include_usage_toolcall.req.json"))
    del j["stream_options"]
    body = json.dumps(j)
    recs, _ = capture(c, client_argv(c, "requests", OPENAI, CHAT, body, OPENAI_HDRS, True),
                      [{"provider": "openai", "api": "chat.completions", "stream": True,
                        "estimated": True, "model_requested": "gpt-4o-mini",
                        "model": "gpt-4o-mini-2024-07-18", "status": 200}],
                      check_stdout=lambda out: expect(b"usage" not in out, "usage in stream"))
    r = recs[0]
    expect(r["input_tokens"] > 0 and r["output_tokens"] > 0,
           "estimated tokens must be positive: input %r output %r"
           % (r["input_tokens"], r["output_tokens"]))
    expect_eq(r["total_tokens"], r["input_tokens"] + r["output_tokens"], "total_tokens")
    u = {k: r[k] for k in h.TOKEN_FIELDS}
    expect(h.cost_matches(r["cost_usd"], h.expected_cost("gpt-4o-mini", r["model"], u)),
           "cost_usd %r does not match the estimated tokens" % r["cost_usd"])


@test
def tokshim_run_sets_agent(c):
    case = "openai_chat_nonstream_cached"
    argv = client_argv(c, "curl", OPENAI, CHAT, h.fixture_bytes(case + ".req.json"),
                       OPENAI_HDRS, False)
    w = h.want_record("openai", "chat.completions", "gpt-4.1", "gpt-4.1-2025-04-14",
                      fx_usage(c, case), host=OPENAI, path=CHAT, agent="writer")
    capture(c, argv, [w], agent="writer", via_cli=True)


@test
def agent_defaults_to_process_name(c):
    case = "ollama_chat_nonstream"
    argv = client_argv(c, "curl", LOCAL, "/api/chat", h.fixture_bytes(case + ".req.json"),
                       OLLAMA_HDRS, False)
    w = h.want_record("ollama", "chat", "mistral:7b-instruct", "mistral:7b-instruct",
                      fx_usage(c, case), host=LOCAL, path="/api/chat", agent="curl",
                      locality="local")
    w["process"] = "curl"
    capture(c, argv, [w], agent=None)


@test
def python_https_under_shim_does_not_crash(c):
    """Python loads libssl RTLD_LOCAL; a naive SSL_read_ex hook segfaults on the first call."""
    code = ("import ssl, urllib.request, socket\n"
            "g = socket.getaddrinfo\n"
            "socket.getaddrinfo = lambda h, *a, **k: g('127.0.0.1' if h == 'api.openai.com' else h, *a, **k)\n"
            "ctx = ssl.create_default_context(cafile=%r)\n"
            "r = urllib.request.urlopen(urllib.request.Request(%r, data=b'{\"model\":\"gpt-4o\"}',"
            " headers={'Content-Type': 'application/json'}), context=ctx)\n"
            "print(r.status, len(r.read()))\n" % (c.servers.ca, c.servers.url(OPENAI, CHAT)))
    body = b'{"model":"gpt-4o"}'
    w = h.want_record("openai", "chat.completions", "gpt-4o", "gpt-4o-2024-08-06",
                      ps.expected_usage(CHAT, body), host=OPENAI, path=CHAT, agent=AGENT)
    capture(c, [h.PYTHON, "-c", code], [w], check_stdout=contains(b"200 "))


@test
def non_llm_traffic_is_not_recorded(c):
    argv = ["curl", "-sS", "--http1.1", c.servers.url(LOCAL, "/healthz"), "-o", "/dev/null",
            "-w", "%{http_code}\n"]
    argv2 = h.curl_argv(c.servers, OPENAI, "/v1/nothing-here", None, ["Accept: */*"],
                        ["-w", "%{http_code}\n"])
    capture(c, argv, [])
    capture(c, argv2, [])


@test
def concurrent_agents_share_one_store(c):
    """Six processes (curl and Python) append to one store at the same time."""
    db = h.tmp_store()
    procs = []
    wants = {}
    for i in range(6):
        body = json.dumps({"model": "gpt-4o-mini", "max_tokens": i + 1,
                           "messages": [{"role": "user", "content": "agent %d" % i}]})
        client = "curl" if i % 2 else "requests"
        argv = client_argv(c, client, OPENAI, CHAT, body, OPENAI_HDRS, False)
        env = h.clean_env()
        env.update(TOKSHIM_DB=db, TOKSHIM_AGENT="agent-%d" % i)
        h.preload_shim(env)
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE))
        wants["agent-%d" % i] = h.want_record(
            "openai", "chat.completions", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
            ps.expected_usage(CHAT, body.encode()), host=OPENAI, path=CHAT, agent="agent-%d" % i)
    for p in procs:
        _, err = p.communicate(timeout=60)
        expect_eq(p.returncode, 0, "agent exit (%s)" % err.decode(errors="replace")[-300:])
    recs = h.records(db)
    expect_eq(sorted(r.get("agent") for r in recs), sorted(wants), "agents of the records")
    recs.sort(key=lambda r: r["agent"])
    h.check(recs, [wants[k] for k in sorted(wants)])
    expect_eq(len(set(r["id"] for r in recs)), 6, "distinct ids")


if __name__ == "__main__":
    h.main(setup, teardown)
