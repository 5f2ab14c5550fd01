#!/usr/bin/python3
"""test_gnutls.py - GnuTLS programs (shim/hooks_gnutls.c): Debian's wget, and libcurl over
GnuTLS (Debian's libcurl3-gnutls) through tests/tools/curl_multi_agent.c built against it.

wget speaks HTTP/1.1 over GnuTLS to servers/provider_server.py: its plaintext is seen at
gnutls_record_send / gnutls_record_recv. The libcurl-gnutls agent runs four transfers at once
over HTTP/2 (servers/h2_server.py): captured at the HTTP layer by the libcurl hooks, and not
again by the GnuTLS hooks underneath. tests/tools/gnutls_agent.c writes with gnutls_record_send2 and
reads with gnutls_record_recv_seq and gnutls_record_recv_packet. Each run is made without and
with the shim: same exit status and stdout, exactly one record per call, nothing dropped.
The budget gate on GnuTLS: wget and the libcurl-gnutls agent against a budget at its cap get
the provider-shaped 429 and the server sees no request.
"""
import json
import os
import subprocess

import harness as h
from harness import expect, expect_eq, test

import provider_server as ps
import test_budgets as tb
import test_curl as tc

OPENAI = "api.openai.com"
ANTHROPIC = "api.anthropic.com"
AGENT = "gnutls-agent"
GNUTLS_AGENT = os.path.join(h.BUILD, "tests", "curl_multi_agent_gnutls")
RECORD_AGENT = os.path.join(h.BUILD, "tests", "gnutls_agent")
CHAT = "/v1/chat/completions"


setup, teardown = tc.setup, tc.teardown  # both servers: HTTP/1.1 and HTTP/2


def wget_argv(c, host, path, body, headers):
    """wget to 127.0.0.1 (it has no --resolve) with the provider's name in the Host header."""
    argv = ["wget", "-q", "-O", "-", "--ca-certificate=" + c.h1.ca, "--tries=1", "--timeout=30",
            "--header=Host: " + host, "--post-file=" + h.write_temp(body)]
    argv += ["--header=%s" % hd for hd in headers]
    return argv + ["https://127.0.0.1:%d%s" % (c.h1.tls, path)]


def run_both(c, srv, argv, wants, version=None, sort=False, norm=None):
    """test_curl's run_both, and nothing dropped: bytes counted twice (GnuTLS calls its own
    gnutls_record_send2 under gnutls_record_send) would show as a dropped exchange."""
    _, out, db = tc.run_both(c, srv, argv, wants, version, sort, agent=AGENT, norm=norm)
    expect_eq(drops(db), {}, "drop counters of the shim run")
    return out


def drops(db):
    """The store's drop counters (`tokshim stats`)."""
    p = subprocess.run([h.CLI, "stats", "--db", db, "--format", "json"], env=h.clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    expect_eq(p.returncode, 0, "tokshim stats exit status (%s)" % p.stderr[-300:])
    return {k: v for k, v in json.loads(p.stdout)["counters"].items()
            if k.startswith("dropped.")}


@test
def wget_openai_whole(c):
    case = "openai_chat_nonstream_cached"
    u = c.man[case]["expected"]
    w = h.want_record("openai", "chat.completions", "gpt-4.1", "gpt-4.1-2025-04-14",
                      {k: u[k] for k in h.TOKEN_FIELDS}, host=OPENAI,
                      path="/v1/chat/completions", agent=AGENT)
    out = run_both(c, c.h1, wget_argv(c, OPENAI, "/v1/chat/completions",
                                      h.fixture_bytes(case + ".req.json"),
                                      ["Content-Type: application/json",
                                       "Authorization: Bearer sk-test-wget"]), [w])
    expect_eq(out, h.fixture_bytes(case + ".body"), "wget's output")


def haiku_stream(text, max_tokens, hint, value):
    """A streamed Anthropic call: its body, its request headers (hint: value among them, a
    token count the server adds) and the record it must make."""
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": max_tokens, "stream": True,
                       "messages": [{"role": "user", "content": text}]})
    w = h.want_record("anthropic", "messages", "claude-haiku-4-5", "claude-haiku-4-5-20251001",
                      ps.expected_usage("/v1/messages", body.encode(), {hint: str(value)}),
                      host=ANTHROPIC, path="/v1/messages", agent=AGENT, stream=True)
    hdrs = ["content-type: application/json", "x-api-key: sk-ant-gnutls",
            "anthropic-version: 2023-06-01", "%s: %d" % (hint, value)]
    return body, hdrs, w


@test
def wget_anthropic_stream(c):
    body, hdrs, w = haiku_stream("wget over gnutls", 6, "X-Test-Cache-Write", 40)
    run_both(c, c.h1, wget_argv(c, ANTHROPIC, "/v1/messages", body, hdrs), [w])


@test
def libcurl_gnutls_multi_http2(c):
    bodies, wants = tc.multi_calls(c)
    for w in wants:
        w["agent"] = AGENT
    argv = [GNUTLS_AGENT] + tc.multi_argv(c.h2, bodies)[1:]
    run_both(c, c.h2, argv, wants, b" HTTP/2 ", sort=True)


def record_calls(c, cork):
    """gnutls_record_send2 (head, then the body in two pieces; with cork, to a corked session
    that gnutls_record_uncork sends at once), and the answer read by gnutls_record_recv_seq and
    gnutls_record_recv_packet in turn (a stream: many records)."""
    body, hdrs, w = haiku_stream("send2 and recv_packet", 9, "X-Test-Cache-Read", 16)
    argv = [RECORD_AGENT] + (["--cork"] if cork else []) + [
        c.h1.ca, str(c.h1.tls), ANTHROPIC, "/v1/messages", h.write_temp(body)] + hdrs
    out = run_both(c, c.h1, argv, [w], norm=tc.no_date)  # the agent prints the whole head
    expect(out.startswith(b"HTTP/1.1 200 OK\r\n") and b"event: message_stop" in out,
           "the agent read the whole stream: %r" % out[:200])


@test
def gnutls_send2_recv_seq_recv_packet(c):
    record_calls(c, False)


@test
def gnutls_corked_sends_counted_once(c):
    """gnutls_record_uncork sends the corked bytes with gnutls_record_send: not counted again."""
    record_calls(c, True)


def budget_at_cap(per_call):
    """A system-wide daily budget with room for exactly one call of per_call tokens."""
    return tb.budget_file({"name": "gnutls-cap", "scope": "system", "window": "daily",
                           "max_tokens": per_call})


def gate_runs(c, argv, bfile):
    """Runs argv twice under the shim on one store and budget file: the first call fits the
    budget, the second finds it at its cap. Returns both results, the store, and the requests
    the server saw in each run."""
    db = h.tmp_store()
    c.h1.requests_seen()
    runs, seen = [], []
    for _ in range(2):
        runs.append(h.run(argv, shim=True, db=db, agent=AGENT,
                          env={"TOKSHIM_BUDGETS": bfile}, timeout=20))
        seen.append(len(c.h1.requests_seen()))
    expect_eq(seen, [1, 0], "requests the server saw (first call, call at the cap)")
    return runs, db


def check_gate(db, body429, per_call):
    err = json.loads(body429)["error"]
    expect_eq((err["type"], err["code"]), ("budget_exceeded", "budget_exceeded"),
              "the 429's OpenAI-shaped error")
    expect("'gnutls-cap'" in err["message"] and "cap %d tokens" % per_call in err["message"],
           "the message names the budget and its cap: %r" % err["message"])
    recs = h.records(db)
    expect_eq([(r["status"], r["model_requested"], r["total_tokens"], r["error"], r["agent"])
               for r in recs],
              [(200, "gpt-4o-mini", per_call, None, AGENT),
               (429, "gpt-4o-mini", 0, "budget_exceeded", AGENT)], "records")


@test
def wget_budget_at_cap_gets_429(c):
    body, per_call = tb.chat_body()
    argv = wget_argv(c, OPENAI, CHAT, body, ["Content-Type: application/json",
                                             "Authorization: Bearer sk-test-wget"])
    argv.insert(1, "--content-on-error")
    runs, db = gate_runs(c, argv, budget_at_cap(per_call))
    expect_eq([r.rc for r in runs], [0, 8], "wget's exit statuses (8: the server said no)")
    expect_eq(json.loads(runs[0].stdout)["object"], "chat.completion", "first answer")
    check_gate(db, runs[1].stdout, per_call)


@test
def libcurl_gnutls_budget_at_cap_gets_429(c):
    body, per_call = tb.chat_body()
    argv = [GNUTLS_AGENT, c.h1.ca, "%s:%d:127.0.0.1" % (OPENAI, c.h1.tls), tc.AUTH,
            "https://%s:%d%s" % (OPENAI, c.h1.tls, CHAT), h.write_temp(body)]
    runs, db = gate_runs(c, argv, budget_at_cap(per_call))
    expect_eq([r.rc for r in runs], [0, 0], "the agent's exit statuses")
    expect(runs[0].stdout.startswith(b"== 200 HTTP/1.1 "), "first answer: %r" % runs[0].stdout)
    head, _, rest = runs[1].stdout.partition(b"\n")
    expect(head.startswith(b"== 429 HTTP/1.1 "), "second answer: %r" % runs[1].stdout)
    check_gate(db, rest, per_call)


if __name__ == "__main__":
    h.main(setup, teardown)
