#!/usr/bin/python3
"""test_budgets_curl.py - the budget gate at the libcurl layer (shim/hooks_curl.c, gate.c):
a transfer refused when it starts, whatever libcurl speaks on the wire (HTTP/2 by ALPN is the
`curl` command's default over TLS), and the program reads the provider's 429 as libcurl delivers
any answer.

The clock is fixed (TOKSHIM_TEST_NOW, 100 s before UTC midnight) so every 429 is known byte for
byte: its head, Retry-After: 100, and the provider-shaped body with the gate's message. Each
test checks what the server received (nothing for a refused call), the records and the budget
events.
"""
import json
import os

import harness as h
from harness import expect_eq, test

import test_budgets as tb

OPENAI = "api.openai.com"
ANTHROPIC = "api.anthropic.com"
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
AGENT = "curl-agent"
NOW = 1795996700          # 2026-11-29T23:58:20Z: the daily window resets in 100 s
WINDOW = "2026-11-29"
AGENT_BIN = os.path.join(h.BUILD, "tests", "curl_budget_agent")
H2_SERVER = os.path.join(h.HERE, "servers", "h2_server.py")


class Ctx:
    pass


def setup():
    if not os.path.exists(AGENT_BIN):
        raise h.Failure("%s does not exist: build first" % AGENT_BIN)
    c = Ctx()
    c.h1 = h.Servers().start()
    c.h2 = h.Servers(H2_SERVER).start()
    return c


def teardown(c):
    if c:
        c.h1.stop()
        c.h2.stop()


def cap_budget(name, cap):
    return tb.budget_file({"name": name, "scope": "system", "window": "daily",
                           "max_tokens": cap})


def message(name, used, estimate, cap, in_flight=0):
    return ("tokshim budget '%s' (system '*', daily window %s) would be exceeded: %d tokens "
            "used + %d in flight + about %d for this call > cap %d tokens; the window resets at "
            "2026-11-30T00:00:00Z" % (name, WINDOW, used, in_flight, estimate, cap))


def response_429(body):
    """The 429 the gate makes (budget_response_429): head and body, bytes."""
    return ("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
            "Retry-After: 100\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)).encode()


def openai_body(msg):
    return json.dumps({"error": {"message": msg, "type": "budget_exceeded", "param": None,
                                 "code": "budget_exceeded"}}, separators=(",", ":"))


def anthropic_body(msg):
    return json.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": msg}},
                      separators=(",", ":"))


def curl(srv, host, path, body, headers, extra=()):
    """The curl command, protocol left to curl (HTTP/2 by ALPN) unless extra says otherwise;
    -i prints the head, -w what libcurl's getinfo says."""
    return (["curl", "-sS", "-i", "--max-time", "20", "--cacert", srv.ca, "--resolve",
             "%s:%d:127.0.0.1" % (host, srv.tls), "https://%s:%d%s" % (host, srv.tls, path),
             "--data-binary", "@" + h.write_temp(body),
             "-w", "\n%{http_code} %{http_version} %{content_type} %{url_effective}\n"]
            + [a for hd in headers for a in ("-H", hd)] + list(extra))


def runs(srv, argvs, bfile):
    """Runs each argv under the shim in turn on one store: results, the store, and how many
    requests the server received during each run."""
    db = h.tmp_store()
    srv.requests_seen()
    out, seen = [], []
    for argv in argvs:
        out.append(h.run(argv, shim=True, db=db, agent=AGENT,
                         env={"TOKSHIM_BUDGETS": bfile, "TOKSHIM_TEST_NOW": str(NOW)},
                         timeout=30))
        seen.append(len(srv.requests_seen()))
    return out, db, seen


def records(db):
    return [(r["status"], r["model_requested"], r["total_tokens"], r["error"])
            for r in h.records(db)]


def events(db):
    return [(e["kind"], e["budget"], e["used_tokens"], e["estimate_tokens"], e["cap_tokens"])
            for e in tb.events(db)]


def openai_at_cap(c, srv, extra, version):
    """Two calls by the curl command under a budget with room for exactly one."""
    body, per_call = tb.chat_body()
    argv = curl(srv, OPENAI, CHAT, body, ["Content-Type: application/json", tb_auth()], extra)
    url = "https://%s:%d%s" % (OPENAI, srv.tls, CHAT)
    r, db, seen = runs(srv, [argv, argv], cap_budget("one-call", per_call))
    expect_eq(seen, [1, 0], "requests the server received (first call, call at the cap)")
    expect_eq(r[0].rc, 0, "first curl exit (%r)" % r[0])
    expect_eq(r[0].stdout.splitlines()[0].split()[:2], [version, b"200"], "first answer")
    expect_eq(r[0].stdout.splitlines()[-1].decode(),
              "200 %s application/json %s" % (version.decode()[5:], url), "first getinfo")
    want = response_429(openai_body(message("one-call", per_call, per_call, per_call)))
    expect_eq((r[1].rc, r[1].stdout, r[1].stderr),
              (0, want + ("\n429 1.1 application/json %s\n" % url).encode(), b""),
              "the refused call: curl's output, byte for byte")
    expect_eq(records(db), [(200, "gpt-4o-mini", per_call, None),
                            (429, "gpt-4o-mini", 0, "budget_exceeded")], "records")
    expect_eq(events(db), [("budget_warning", "one-call", per_call, 0, per_call),
                           ("budget_block", "one-call", per_call, per_call, per_call)],
              "budget events")
    return argv, db


def tb_auth():
    return "Authorization: Bearer sk-test-budget-curl"


@test
def curl_http2_at_cap_gets_429(c):
    """The `curl` command's default over TLS: HTTP/2 by ALPN."""
    openai_at_cap(c, c.h2, (), b"HTTP/2")


@test
def curl_http11_at_cap_gets_429(c):
    """--http1.1: decided once, at the libcurl layer (the wire gate lets it pass): one record,
    one block event."""
    openai_at_cap(c, c.h1, ("--http1.1",), b"HTTP/1.1")


@test
def curl_fail_exits_22(c):
    """--fail: libcurl turns the 429 into CURLE_HTTP_RETURNED_ERROR, as for a real one."""
    body, per_call = tb.chat_body()
    argv = ["curl", "-sS", "--fail", "--max-time", "20", "--cacert", c.h2.ca, "--resolve",
            "%s:%d:127.0.0.1" % (OPENAI, c.h2.tls), "https://%s:%d%s" % (OPENAI, c.h2.tls, CHAT),
            "--data-binary", body, "-H", "Content-Type: application/json"]
    r, db, seen = runs(c.h2, [argv], cap_budget("tiny", per_call - 1))
    expect_eq(seen, [0], "requests the server received")
    expect_eq((r[0].rc, r[0].stdout, r[0].stderr),
              (22, b"", b"curl: (22) The requested URL returned error: 429\n"), "curl --fail")
    expect_eq(records(db), [(429, "gpt-4o-mini", 0, "budget_exceeded")], "records")
    expect_eq(events(db), [("budget_block", "tiny", 0, per_call, per_call - 1)], "events")


@test
def curl_http2_anthropic_shape(c):
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 50,
                       "messages": [{"role": "user", "content": "budgets over h2"}]})
    estimate = -(-len(body) // 4) + 50
    argv = curl(c.h2, ANTHROPIC, MESSAGES, body,
                ["content-type: application/json", "anthropic-version: 2023-06-01",
                 "x-api-key: sk-ant-api03-budget"])
    r, db, seen = runs(c.h2, [argv], cap_budget("claude-cap", estimate - 1))
    expect_eq(seen, [0], "requests the server received")
    url = "https://%s:%d%s" % (ANTHROPIC, c.h2.tls, MESSAGES)
    want = response_429(anthropic_body(message("claude-cap", 0, estimate, estimate - 1)))
    expect_eq((r[0].rc, r[0].stdout),
              (0, want + ("\n429 1.1 application/json %s\n" % url).encode()), "curl's output")
    expect_eq(records(db), [(429, "claude-haiku-4-5", 0, "budget_exceeded")], "records")


@test
def curl_http2_warning_then_block(c):
    """The warning at 95 % on the HTTP/2 path: written with the allowed call's record."""
    body, per_call = tb.chat_body()
    cap = per_call * 100 // 96  # 96 % used after one call: warned, and no room for a second
    argv = curl(c.h2, OPENAI, CHAT, body, ["Content-Type: application/json", tb_auth()])
    r, db, seen = runs(c.h2, [argv, argv], cap_budget("warned", cap))
    expect_eq(seen, [1, 0], "requests the server received")
    expect_eq([x.stdout.splitlines()[-1].split()[0] for x in r], [b"200", b"429"], "statuses")
    expect_eq(events(db), [("budget_warning", "warned", per_call, 0, cap),
                           ("budget_block", "warned", per_call, per_call, cap)], "events")


@test
def curl_h2c_prior_knowledge_local_at_cap(c):
    """HTTP/2 in clear to a local model server (curl --http2-prior-knowledge): refused, the
    OpenAI-shaped 429 of an Ollama call; the refused transfer's own connection (to the shim's
    listener, over the socket hooks) is not decided again."""
    body = json.dumps({"model": "qwen2.5:7b", "stream": False, "options": {"num_predict": 5},
                       "messages": [{"role": "user", "content": "h2c at the cap"}]})
    estimate = -(-len(body) // 4) + 5
    url = "http://127.0.0.1:%d/api/chat" % c.h2.plain
    argv = ["curl", "-sS", "-i", "--max-time", "20", "--http2-prior-knowledge", url,
            "--data-binary", body, "-H", "Content-Type: application/json",
            "-w", "\n%{http_code} %{http_version} %{url_effective}\n"]
    bfile = tb.budget_file({"name": "local-cap", "scope": "provider", "match": "ollama",
                            "window": "daily", "max_tokens": estimate - 1})
    r, db, seen = runs(c.h2, [argv], bfile)
    expect_eq(seen, [0], "requests the server received")
    msg = message("local-cap", 0, estimate, estimate - 1).replace(
        "(system '*',", "(provider 'ollama',")
    expect_eq((r[0].rc, r[0].stdout, r[0].stderr),
              (0, response_429(openai_body(msg)) + ("\n429 1.1 %s\n" % url).encode(), b""),
              "curl's output")
    expect_eq([(x["provider"], x["status"], x["error"], x["locality"]) for x in h.records(db)],
              [("ollama", 429, "budget_exceeded", "local")], "records")
    expect_eq(events(db), [("budget_block", "local-cap", 0, estimate, estimate - 1)], "events")


def agent_answers(out):
    """curl_budget_agent's output: per call (result, status, version, type, url, head, body)."""
    calls = []
    for part in out.decode().split("== ")[1:]:
        line, _, rest = part.partition("\n")
        head, _, body = rest.partition("--\n")
        calls.append(tuple(line.split(" ")) + (head, body[:-1]))
    return calls


@test
def multi_three_transfers_one_refused(c):
    """Three transfers at once on one multi handle over HTTP/2, room for two: the third is
    refused when it is added; the program's header and write callbacks get its 429 from
    libcurl, its DONE message says CURLE_OK, the others run on the shared connection."""
    body, per_call = tb.chat_body()
    files = [h.write_temp(body)] * 3
    url = "https://%s:%d%s" % (OPENAI, c.h2.tls, CHAT)
    argv = [AGENT_BIN, "multi", c.h2.ca, "%s:%d:127.0.0.1" % (OPENAI, c.h2.tls), url] + files
    r, db, seen = runs(c.h2, [argv], cap_budget("two-calls", 2 * per_call))
    expect_eq(r[0].rc, 0, "agent exit (%r)" % r[0])
    expect_eq(seen, [2], "requests the server received")
    got = agent_answers(r[0].stdout)
    expect_eq([g[:5] for g in got], [("0", "200", "HTTP/2", "application/json", url)] * 2 +
              [("0", "429", "HTTP/1.1", "application/json", url)], "results and getinfo")
    want_body = openai_body(message("two-calls", 0, per_call, 2 * per_call, 2 * per_call))
    want_head = response_429(want_body).decode()[:-len(want_body)]
    expect_eq((got[2][5], got[2][6]), (want_head, want_body),
              "the refused call's head (header function) and body (write function)")
    expect_eq(sorted(records(db)), [(200, "gpt-4o-mini", per_call, None)] * 2 +
              [(429, "gpt-4o-mini", 0, "budget_exceeded")], "records")
    expect_eq(tb.counters(db).get("budget:d%s:system:*::tokens" % WINDOW), 2 * per_call,
              "the budget's counter: the two calls once each")


@test
def easy_handle_reused_after_refusal(c):
    """One easy handle: a call over the cap is refused, then the same handle makes a call that
    fits, over HTTP/2 to the server as before (the program's URL, protocol and callbacks back)."""
    big = json.dumps({"model": "gpt-4o-mini", "max_tokens": 4000,
                      "messages": [{"role": "user", "content": "too big"}]})
    body, per_call = tb.chat_body()
    url = "https://%s:%d%s" % (OPENAI, c.h2.tls, CHAT)
    argv = [AGENT_BIN, "easy", c.h2.ca, "%s:%d:127.0.0.1" % (OPENAI, c.h2.tls), url,
            h.write_temp(big), h.write_temp(body)]
    r, db, seen = runs(c.h2, [argv], cap_budget("room-for-small", per_call))
    expect_eq(r[0].rc, 0, "agent exit (%r)" % r[0])
    expect_eq(seen, [1], "requests the server received: the second call only")
    got = agent_answers(r[0].stdout)
    expect_eq([g[:5] for g in got], [("0", "429", "HTTP/1.1", "application/json", url),
                                     ("0", "200", "HTTP/2", "application/json", url)],
              "results and getinfo")
    expect_eq(json.loads(got[1][6])["usage"]["total_tokens"], per_call, "the second answer")
    expect_eq(records(db), [(429, "gpt-4o-mini", 0, "budget_exceeded"),
                            (200, "gpt-4o-mini", per_call, None)], "records")


if __name__ == "__main__":
    h.main(setup, teardown)
