#!/usr/bin/python3
"""test_curl.py - libcurl programs captured at the HTTP layer (shim/hooks_curl.c).

The `curl` command with its default protocol choice over TLS (HTTP/2 by ALPN against
servers/h2_server.py), with --compressed (libcurl decodes the gzip body itself), and with
--http1.1 (servers/provider_server.py); and tests/tools/curl_multi_agent.c, several transfers
at once on libcurl's multi interface, bodies by POSTFIELDS and by READFUNCTION. Each run is
made without and with the shim: same exit status and stdout, and exactly one record per call
(the SSL hooks underneath must not count the same bytes again).
"""
import base64
import json
import os
import re
import subprocess

import harness as h
from harness import expect, expect_eq, test

import provider_server as ps

OPENAI = "api.openai.com"
ANTHROPIC = "api.anthropic.com"
CHAT = "/v1/chat/completions"
AGENT = "curl-agent"
MULTI = os.path.join(h.BUILD, "tests", "curl_multi_agent")
EASY = os.path.join(h.BUILD, "tests", "curl_easy_agent")
H2_SERVER = os.path.join(h.HERE, "servers", "h2_server.py")
AUTH = "Authorization: Bearer sk-test-curl-0123456789"


class Ctx:
    pass


def setup():
    c = Ctx()
    c.h1 = h.Servers().start()
    c.h2 = h.Servers(H2_SERVER).start()
    c.servers = c.h1
    c.man = h.manifest()
    return c


def teardown(c):
    if c:
        c.h1.stop()
        c.h2.stop()


def fx_usage(c, case):
    e = c.man[case]["expected"]
    return {k: e[k] for k in h.TOKEN_FIELDS}


def curl_argv(srv, host, path, body, headers, extra=()):
    """The curl command, protocol left to curl and ALPN unless extra says otherwise."""
    return (["curl", "-sS", "--max-time", "30", "--cacert", srv.ca,
             "--resolve", "%s:%d:127.0.0.1" % (host, srv.tls), "https://%s:%d%s" % (host, srv.tls, path),
             "--data-binary", "@" + h.write_temp(body), "-w", "\n%{http_version}\n"]
            + [a for hd in headers for a in ("-H", hd)] + list(extra))


def no_date(out):
    """out without its Date header lines (the one thing two runs' answers differ in)."""
    return re.sub(rb"(?im)^date: [^\r\n]*\r?\n", b"", out)


def run_both(c, srv, argv, wants, version=None, sort=False, agent=AGENT, norm=None):
    """Baseline and shim runs: every answer came over version (when given), one record per
    call; the program's stdout the same in both (after norm, when given). Returns the server's
    log of the shim run, the program's stdout and the store."""
    norm = norm or (lambda out: out)
    base = h.run(argv)
    srv.requests_seen()
    expect_eq(base.rc, 0, "exit status without the shim (%s)" % base.stderr[-300:])
    if version is not None:
        expect_eq(base.stdout.count(version), len(wants),
                  "answers over %s" % version.decode().strip())
    db = h.tmp_store()
    got = h.run(argv, shim=True, db=db, agent=agent)
    seen = srv.requests_seen()
    expect_eq(got.rc, base.rc, "exit status with the shim (%s)" % got.stderr[-300:])
    expect_eq(norm(got.stdout), norm(base.stdout), "stdout with the shim (vs without)")
    expect_eq(len(seen), len(wants), "requests the server answered with the shim")
    recs = h.records(db)
    if sort:
        recs.sort(key=lambda r: r.get("model_requested") or "")
        wants = sorted(wants, key=lambda w: w["model_requested"])
    h.check(recs, wants)
    return seen, base.stdout, db


def show(db, rec_id):
    """`tokshim show` of one record: heads as the capture kept them, the stream reassembled."""
    p = subprocess.run([h.CLI, "show", "--db", db, str(rec_id)], env=h.clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    expect_eq(p.returncode, 0, "tokshim show exit status (%s)" % p.stderr[-300:])
    return p.stdout.decode()


@test
def curl_default_http2_whole(c):
    case = "openai_chat_nonstream_cached"
    w = h.want_record("openai", "chat.completions", "gpt-4.1", "gpt-4.1-2025-04-14",
                      fx_usage(c, case), host=OPENAI, path=CHAT, agent=AGENT)
    argv = curl_argv(c.h2, OPENAI, CHAT, h.fixture_bytes(case + ".req.json"),
                     ["Content-Type: application/json", AUTH])
    run_both(c, c.h2, argv, [w], b"\n2\n")


@test
def curl_default_http2_stream_compressed(c):
    """--compressed: libcurl asks for gzip and decodes it; the capture must not decode again."""
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 8, "stream": True,
                       "messages": [{"role": "user", "content": "curl over h2"}]})
    hdrs = ["content-type: application/json", "anthropic-version: 2023-06-01",
            "x-api-key: sk-ant-api03-curl", "X-Test-Cache-Read: 64"]
    u = ps.expected_usage("/v1/messages", body.encode(), {"X-Test-Cache-Read": "64"})
    w = h.want_record("anthropic", "messages", "claude-haiku-4-5", "claude-haiku-4-5-20251001",
                      u, host=ANTHROPIC, path="/v1/messages", agent=AGENT, stream=True)
    seen, _, db = run_both(c, c.h2, curl_argv(c.h2, ANTHROPIC, "/v1/messages", body, hdrs,
                                              ["--compressed"]), [w], b"\n2\n")
    expect_eq(seen[0]["encoding"], "gzip", "the answer was gzip-encoded")
    out = show(db, 1)
    for want in ("POST /v1/messages HTTP/2\n", "\nHTTP/2 200\n", "x-api-key: [REDACTED]",
                 "stream reassembled (server-sent events, "):
        expect(want in out, "show lacks %r:\n%s" % (want, out[:1500]))


@test
def curl_http11_stream(c):
    case = "openai_chat_stream_include_usage_toolcall"
    w = h.want_record("openai", "chat.completions", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
                      fx_usage(c, case), host=OPENAI, path=CHAT, agent=AGENT, stream=True)
    argv = curl_argv(c.h1, OPENAI, CHAT, h.fixture_bytes(case + ".req.json"),
                     ["Content-Type: application/json", AUTH], ["--http1.1"])
    _, _, db = run_both(c, c.h1, argv, [w], b"\n1.1\n")
    out = show(db, 1)
    for want in ("POST /v1/chat/completions HTTP/1.1\n", "\nHTTP/1.1 200\n"):
        expect(want in out, "show lacks %r:\n%s" % (want, out[:1500]))


def multi_calls(c):
    whole, stream = "openai_chat_nonstream_cached", "openai_chat_stream_include_usage_toolcall"
    gen = json.dumps({"model": "gpt-4o", "max_tokens": 6,
                      "messages": [{"role": "user", "content": "multi, read by READFUNCTION"}]})
    gen2 = json.dumps({"model": "gpt-4o-mini-2024-07-18", "max_tokens": 3, "stream": True,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "multi stream"}]})
    bodies = [h.fixture_bytes(whole + ".req.json"), h.fixture_bytes(stream + ".req.json"),
              gen.encode(), gen2.encode()]
    wants = [
        h.want_record("openai", "chat.completions", "gpt-4.1", "gpt-4.1-2025-04-14",
                      fx_usage(c, whole), host=OPENAI, path=CHAT, agent=AGENT),
        h.want_record("openai", "chat.completions", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
                      fx_usage(c, stream), host=OPENAI, path=CHAT, agent=AGENT, stream=True),
        h.want_record("openai", "chat.completions", "gpt-4o", "gpt-4o-2024-08-06",
                      ps.expected_usage(CHAT, gen.encode()), host=OPENAI, path=CHAT, agent=AGENT),
        h.want_record("openai", "chat.completions", "gpt-4o-mini-2024-07-18",
                      "gpt-4o-mini-2024-07-18", ps.expected_usage(CHAT, gen2.encode()),
                      host=OPENAI, path=CHAT, agent=AGENT, stream=True),
    ]
    return bodies, wants


def multi_argv(srv, bodies):
    argv = [MULTI, srv.ca, "%s:%d:127.0.0.1" % (OPENAI, srv.tls), AUTH]
    for b in bodies:
        argv += ["https://%s:%d%s" % (OPENAI, srv.tls, CHAT), h.write_temp(b)]
    return argv


@test
def multi_interface_http2_four_at_once(c):
    bodies, wants = multi_calls(c)
    seen, _, _ = run_both(c, c.h2, multi_argv(c.h2, bodies), wants, b" HTTP/2 ", sort=True)
    expect_eq(len({s["conn"] for s in seen}), 1, "connections the four transfers shared")


@test
def multi_interface_http11(c):
    bodies, wants = multi_calls(c)
    run_both(c, c.h1, multi_argv(c.h1, bodies), wants, b" HTTP/1.1 ", sort=True)


# ---- the easy interface's less common options (tests/tools/curl_easy_agent.c) ----------------

GEN_BODY = json.dumps({"model": "gpt-4o", "max_tokens": 7,
                       "messages": [{"role": "user", "content": "easy interface options"}]})


def easy_argv(srv, mode, body, headers=("Content-Type: application/json", AUTH)):
    return [EASY, mode, srv.ca, "%s:%d:127.0.0.1" % (OPENAI, srv.tls),
            "https://%s:%d%s" % (OPENAI, srv.tls, CHAT), h.write_temp(body)] + list(headers)


def easy_want(n=1):
    u = ps.expected_usage(CHAT, GEN_BODY.encode())
    return [h.want_record("openai", "chat.completions", "gpt-4o", "gpt-4o-2024-08-06", u,
                          host=OPENAI, path=CHAT, agent=AGENT) for _ in range(n)]


def easy_answer(out, version):
    """The agent's one answer: status line of its own, and the body its write function got."""
    head, _, rest = out.partition(b"\n")
    expect_eq(head, b"== 200 " + version, "the agent's answer line")
    return rest


@test
def easy_curlu_http2(c):
    """CURLOPT_CURLU instead of CURLOPT_URL: the URL is read from the CURLU handle."""
    _, out, _ = run_both(c, c.h2, easy_argv(c.h2, "curlu", GEN_BODY), easy_want(), b"HTTP/2")
    expect_eq(json.loads(easy_answer(out, b"HTTP/2").rpartition(b"\n-- ")[0])["model"],
              "gpt-4o-2024-08-06", "the program's body")


def easy_header(c, srv, version):
    """CURLOPT_HEADER=1: the head goes to the program's write function (and header function)
    as before, and the record's body is the body alone."""
    _, out, db = run_both(c, srv, easy_argv(srv, "header", GEN_BODY), easy_want(),
                          norm=no_date)
    body, _, hbytes = easy_answer(out, version).rpartition(b"\n-- ")
    head, sep, payload = body.partition(b"\r\n\r\n")
    expect(sep and head.startswith(version + b" 200"), "head in the write function: %r" % body[:80])
    expect_eq(int(hbytes), len(head) + 4, "bytes the header function got")
    expect_eq(json.loads(payload)["usage"]["prompt_tokens"], len(GEN_BODY) // 4, "body")
    shown = show(db, 1).split("── response body ")[-1]
    expect(shown.startswith("(%d bytes) ──" % len(payload)) and "HTTP/" not in shown,
           "stored body is the body alone (%d bytes):\n%s" % (len(payload), shown[:300]))


@test
def easy_header_in_body_http11(c):
    easy_header(c, c.h1, b"HTTP/1.1")


@test
def easy_header_in_body_http2(c):
    easy_header(c, c.h2, b"HTTP/2")


@test
def easy_postfieldsize_large(c):
    """CURLOPT_POSTFIELDSIZE_LARGE on a buffer that goes on past the body (no NUL after it)."""
    seen, _, _ = run_both(c, c.h2, easy_argv(c.h2, "large", GEN_BODY), easy_want(), b"HTTP/2")
    expect_eq(base64.b64decode(seen[0]["body_b64"]), GEN_BODY.encode(), "the body sent")


@test
def easy_reset_then_readfunction(c):
    """Two transfers on one handle, curl_easy_reset between them: POSTFIELDS, then a
    READFUNCTION with CURLOPT_POSTFIELDSIZE_LARGE."""
    seen, _, _ = run_both(c, c.h1, easy_argv(c.h1, "reset", GEN_BODY), easy_want(2),
                          b"HTTP/1.1")
    expect_eq([base64.b64decode(s["body_b64"]) for s in seen], [GEN_BODY.encode()] * 2,
              "bodies sent")


@test
def easy_duphandle(c):
    """curl_easy_duphandle of a handle with a CURLU and a copied body: both handles' calls
    recorded, each with its own copy of the body (the program overwrote its buffer)."""
    run_both(c, c.h2, easy_argv(c.h2, "dup", GEN_BODY), easy_want(2), b"HTTP/2")


@test
def easy_mimepost(c):
    """A multipart body (CURLOPT_MIMEPOST) is built inside libcurl and reaches no callback: the
    record has the response's model and usage, no requested model, and the stored request head
    says multipart/form-data over an empty body."""
    form = "model=gpt-4o\nmax_tokens=7\n"
    argv = easy_argv(c.h1, "mime", form, [AUTH])
    base = h.run(argv)
    expect_eq(base.rc, 0, "exit status without the shim (%r)" % base)
    c.h1.requests_seen()
    db = h.tmp_store()
    got = h.run(argv, shim=True, db=db, agent=AGENT)
    expect_eq((got.rc, got.stdout), (base.rc, base.stdout), "exit status and stdout with the shim")
    seen = c.h1.requests_seen()
    expect_eq(len(seen), 1, "requests the server answered")
    sent = base64.b64decode(seen[0]["body_b64"])
    expect(sent.count(b'name="model"\r\n\r\ngpt-4o\r\n') == 1, "the form sent: %r" % sent)
    w = h.want_record("openai", "chat.completions", "", "gpt-4o-2024-08-06",
                      ps.expected_usage(CHAT, sent), host=OPENAI, path=CHAT, agent=AGENT)
    h.check(h.records(db), [w])
    shown = show(db, 1)
    expect("content-type: multipart/form-data\n" in shown.lower(),
           "stored request head:\n%s" % shown[:1500])


# ---- locality: the address libcurl connected to ----------------------------------------------

LOCAL_HOST = "llm.example.net"  # no provider's domain: the peer address decides


def local_tls(c, srv, version, extra):
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 4,
                       "messages": [{"role": "user", "content": "a local TLS server"}]})
    w = h.want_record(LOCAL_HOST, "chat.completions", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
                      ps.expected_usage(CHAT, body.encode()), host=LOCAL_HOST, path=CHAT,
                      agent=AGENT, locality="local")
    run_both(c, srv, curl_argv(srv, LOCAL_HOST, CHAT, body, ["Content-Type: application/json"],
                               extra), [w], version)


@test
def curl_unknown_host_on_loopback_is_local_http2(c):
    local_tls(c, c.h2, b"\n2\n", [])


@test
def curl_unknown_host_on_loopback_is_local_http11(c):
    local_tls(c, c.h1, b"\n1.1\n", ["--http1.1"])


# ---- HTTP/2 in clear (h2c) -------------------------------------------------------------------

def curl_h2c(c, how, text):
    """curl to a local model server over HTTP/2 in clear: libcurl's callbacks see it."""
    body = json.dumps({"model": "qwen2.5:7b", "stream": False, "options": {"num_predict": 5},
                       "messages": [{"role": "user", "content": text}]})
    w = h.want_record("ollama", "chat", "qwen2.5:7b", "qwen2.5:7b",
                      ps.expected_usage("/api/chat", body.encode()), host="127.0.0.1",
                      path="/api/chat", agent=AGENT, locality="local")
    argv = ["curl", "-sS", "--max-time", "30", how,
            "http://127.0.0.1:%d/api/chat" % c.h2.plain, "--data-binary",
            "@" + h.write_temp(body), "-H", "Content-Type: application/json",
            "-w", "\n%{http_version}\n"]
    seen, _, _ = run_both(c, c.h2, argv, [w], b"\n2\n")
    expect_eq([(s["version"], s["stream_id"]) for s in seen], [("HTTP/2", 1)],
              "the server's stream")


@test
def curl_h2c_prior_knowledge(c):
    curl_h2c(c, "--http2-prior-knowledge", "curl h2c, prior knowledge")


@test
def curl_h2c_upgrade(c):
    """--http2 on http://: an HTTP/1.1 request with Upgrade: h2c, answered 101, then HTTP/2."""
    curl_h2c(c, "--http2", "curl h2c by upgrade")


if __name__ == "__main__":
    h.main(setup, teardown)
