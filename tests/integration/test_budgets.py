"""test_budgets.py - budgets enforced inside the agent (docs/budgets.md), with real clients.

Every call here is an OpenAI chat request whose body is a multiple of 4 bytes long and asks for
max_tokens <= 12, so the shim's estimate (ceil(B/4) + max_tokens) equals the server's usage
(B//4 + min(max_tokens, 12)): the call that gets the first 429 is known exactly. A block budget
refuses a call when used + in flight + its estimate would pass the cap.
"""
import json
import os
import subprocess
import sys
import time

import harness as h
from harness import expect, expect_eq, test

OPENAI = "api.openai.com"
CHAT = "/v1/chat/completions"
EVENTS = os.path.join(h.BUILD, "tests", "budget_events")
DAY1_LATE = 1795996799    # 2026-11-29T23:59:59Z, a Sunday
DAY2 = 1795996800         # 2026-11-30T00:00:00Z, a Monday: a new day and a new week


class Ctx:
    pass


def setup():
    for path in (h.SHIM, h.CLI, EVENTS):
        if not os.path.exists(path):
            raise h.Failure("%s does not exist: build first (make unit-tests)" % path)
    c = Ctx()
    c.servers = h.Servers().start()
    return c


def teardown(c):
    if c:
        c.servers.stop()
    h.cleanup()


def chat_body(model="gpt-4o-mini", max_tokens=10, text="hello", stream=False):
    """A chat body padded to a multiple of 4 bytes; returns (bytes, tokens of one call)."""
    extra = {"stream": True, "stream_options": {"include_usage": True}} if stream else {}
    for pad in range(4):
        b = json.dumps(dict({"model": model, "max_tokens": max_tokens,
                             "messages": [{"role": "user", "content": text + " " * pad}]},
                            **extra))
        if len(b) % 4 == 0:
            return b, len(b) // 4 + max_tokens
    raise AssertionError("unreachable")


def budget_file(*budgets):
    return h.write_temp(json.dumps({"budgets": list(budgets)}))


def chat_calls(c, n, body, headers=None):
    hd = {"Content-Type": "application/json", "Authorization": "Bearer sk-test"}
    hd.update(headers or {})
    return [{"method": "POST", "url": c.servers.url(OPENAI, CHAT), "headers": hd,
             "body": body}] * n


def statuses(stdout):
    return [int(line[3:]) for line in stdout.decode().splitlines() if line.startswith("== ")]


def run_agent(c, lib, calls, db, bfile, agent="bot-1", tenant=None, now=None, log=None,
              session=False):
    env = {"TOKSHIM_BUDGETS": bfile}
    if tenant:
        env["TOKSHIM_TENANT"] = tenant
    if now:
        env["TOKSHIM_TEST_NOW"] = str(now)
    if log:
        env["TOKSHIM_LOG"] = log
    return h.run(h.pyagent_argv(c.servers, lib, calls, session=session), shim=True, db=db,
                 agent=agent, env=env, timeout=60)


def counters(db):
    p = subprocess.run([h.CLI, "stats", "--db", db, "--format", "json"], env=h.clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    expect_eq(p.returncode, 0, "tokshim stats exit (%s)" % p.stderr[-300:])
    return {k: v for k, v in json.loads(p.stdout)["counters"].items() if k.startswith("budget:")}


def events(db):
    p = subprocess.run([EVENTS, db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    expect_eq(p.returncode, 0, "budget_events exit (%s)" % p.stderr[-300:])
    return [json.loads(line) for line in p.stdout.decode().splitlines()]


def status(db, bfile, *args, env=None):
    e = h.clean_env()
    e.update(env or {})
    p = subprocess.run([h.CLI, "budget", "status", "--db", db, "--budgets", bfile,
                        "--format", "json"] + list(args), env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    expect_eq(p.returncode, 0, "tokshim budget status exit (%s)" % p.stderr[-300:])
    return json.loads(p.stdout)["budgets"]


def today_key():
    return time.strftime("d%Y-%m-%d", time.gmtime())


def first_429_exactly(c, lib):
    body, per_call = chat_body()
    cap = 3 * per_call + per_call // 2  # room for 3 calls, not for a 4th
    bfile = budget_file({"name": "bot-daily", "scope": "agent", "match": "bot-*",
                         "window": "daily", "max_tokens": cap})
    db = h.tmp_store()
    r = run_agent(c, lib, chat_calls(c, 6, body), db, bfile)
    expect_eq(r.rc, 0, "agent exit (%r)" % r)
    expect_eq(statuses(r.stdout), [200, 200, 200, 429, 429, 429], "statuses seen by " + lib)
    err = json.loads(r.stdout.decode().split("== 429\n")[1])["error"]
    expect_eq((err["type"], err["code"]), ("budget_exceeded", "budget_exceeded"), "error shape")
    expect("'bot-daily'" in err["message"] and "%d tokens used" % (3 * per_call) in
           err["message"] and "cap %d tokens" % cap in err["message"],
           "message names budget, spend and cap: %r" % err["message"])
    recs = h.records(db)
    expect_eq([(x["status"], x["total_tokens"], x["error"], float(x["cost_usd"] or 0))
               for x in recs],
              [(200, per_call, None, float(recs[0]["cost_usd"]))] * 3 +
              [(429, 0, "budget_exceeded", 0.0)] * 3, "records")
    # Counters equal the sums of the records, in the same store.
    total = sum(x["total_tokens"] for x in recs)
    key = "budget:%s:agent:bot-*::" % today_key()
    got = counters(db)
    expect_eq(got[key + "tokens"], total, "token counter = sum of records")
    want_pusd = sum(round(h.Fraction(str(x["cost_usd"])) * 10 ** 12) for x in recs)
    expect_eq(got[key + "cost_pusd"], want_pusd, "cost counter = sum of record costs")
    st = status(db, bfile)
    expect_eq([(s["name"], s["used_tokens"], s["reserved_tokens"], s["max_tokens"], s["state"])
               for s in st], [("bot-daily", total, 0, cap, "ok")], "budget status")
    return recs


@test
def requests_first_429_when_cap_crossed(c):
    recs = first_429_exactly(c, "requests")
    now = time.time()
    left = (int(now) // 86400 + 1) * 86400 - now
    expect(abs(recs[3]["retry_after"] - left) <= 5,
           "Retry-After %r is the time to UTC midnight" % recs[3]["retry_after"])


@test
def httpx_first_429_when_cap_crossed(c):
    # httpx writes the head and the body in two writes: the gate holds the head.
    first_429_exactly(c, "httpx")


@test
def curl_gets_the_429_at_once(c):
    body, per_call = chat_body()
    bfile = budget_file({"name": "one-call", "scope": "system", "window": "daily",
                         "max_tokens": per_call})
    db = h.tmp_store()
    bpath = h.write_temp(body)
    outs = []
    for _ in range(2):
        t0 = time.time()
        r = h.run(h.curl_argv(c.servers, OPENAI, CHAT, body_file=bpath, extra=["-i"]),
                  shim=True, db=db, agent="curl-agent", env={"TOKSHIM_BUDGETS": bfile},
                  timeout=20)
        expect(time.time() - t0 < 5, "curl took %.1fs" % (time.time() - t0))
        expect_eq(r.rc, 0, "curl exit (%r)" % r)
        outs.append(r.stdout.decode())
    expect(outs[0].startswith("HTTP/1.1 200"), "first call allowed: %r" % outs[0][:80])
    head, _, payload = outs[1].partition("\r\n\r\n")
    expect(head.startswith("HTTP/1.1 429 Too Many Requests"), "429: %r" % head)
    secs = int([l for l in head.split("\r\n") if l.startswith("Retry-After: ")][0][13:])
    now = time.time()
    midnight = (int(now) // 86400 + 1) * 86400
    expect(abs(secs - (midnight - now)) <= 5, "Retry-After %d is the time to midnight" % secs)
    expect_eq(json.loads(payload)["error"]["code"], "budget_exceeded", "OpenAI-shaped body")
    expect_eq([x["status"] for x in h.records(db)], [200, 429], "records")


@test
def anthropic_shape(c):
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 100,
                       "messages": [{"role": "user", "content": "hi"}]})
    bfile = budget_file({"name": "tiny", "scope": "model", "match": "claude-*",
                         "window": "monthly", "max_tokens": 10})
    db = h.tmp_store()
    calls = [{"method": "POST", "url": c.servers.url("api.anthropic.com", "/v1/messages"),
              "headers": {"content-type": "application/json", "x-api-key": "k",
                          "anthropic-version": "2023-06-01"}, "body": body}]
    c.servers.requests_seen()  # forget earlier tests' requests
    r = run_agent(c, "requests", calls, db, bfile)
    expect_eq(statuses(r.stdout), [429], "statuses")
    j = json.loads(r.stdout.decode().split("== 429\n")[1])
    expect_eq((j["type"], j["error"]["type"]), ("error", "rate_limit_error"), "Anthropic shape")
    expect("monthly window" in j["error"]["message"], "window named: %r" % j)
    expect_eq(c.servers.requests_seen(), [], "nothing reached the server")


@test
def plain_http_ollama(c):
    # A local model server over plain TCP: the socket hooks hold and answer, urllib reads it.
    for pad in range(4):
        body = json.dumps({"model": "llama3.2", "stream": False, "options": {"num_predict": 8},
                           "messages": [{"role": "user", "content": "hi" + " " * pad}]})
        if len(body) % 4 == 0:
            break
    per_call = len(body) // 4 + 8
    bfile = budget_file({"name": "local", "scope": "provider", "match": "ollama",
                         "window": "daily", "max_tokens": 2 * per_call + 1})
    db = h.tmp_store()
    calls = [{"method": "POST", "url": c.servers.url("localhost", "/api/chat"),
              "headers": {"Content-Type": "application/json"}, "body": body}] * 3
    c.servers.requests_seen()  # forget earlier tests' requests
    r = run_agent(c, "urllib", calls, db, bfile)
    expect_eq(statuses(r.stdout), [200, 200, 429], "statuses (%r)" % r)
    err = json.loads(r.stdout.decode().split("== 429\n")[1])["error"]
    expect_eq(err["code"], "budget_exceeded", "OpenAI-shaped error for Ollama")
    expect_eq([(x["provider"], x["status"], x["total_tokens"]) for x in h.records(db)],
              [("ollama", 200, per_call)] * 2 + [("ollama", 429, 0)], "records")
    expect_eq(len(c.servers.requests_seen()), 2, "the blocked call never reached the server")


@test
def concurrent_agents_do_not_overshoot(c):
    # Streams of 12 events 40 ms apart: every agent has calls in flight while others check.
    body, per_call = chat_body(model="gpt-4o", stream=True)
    cap = 10 * per_call + 3
    bfile = budget_file({"name": "shared", "scope": "agent_type", "match": "worker",
                         "window": "daily", "max_tokens": cap})
    db = h.tmp_store()
    env = h.clean_env()
    env.update({"LD_PRELOAD": h.SHIM, "TOKSHIM_DB": db, "TOKSHIM_BUDGETS": bfile,
                "TOKSHIM_AGENT_TYPE": "worker"})
    procs = []
    for i in range(6):
        env["TOKSHIM_AGENT"] = "w%d" % i
        argv = h.pyagent_argv(c.servers, "requests",
                              chat_calls(c, 4, body, {"X-Test-Event-Delay-Ms": "40"}))
        procs.append(subprocess.Popen(argv, env=dict(env), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
    seen = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        expect_eq(p.returncode, 0, "agent exit (%r)" % err[-300:])
        seen += statuses(out)
    recs = h.records(db)
    spent = sum(x["total_tokens"] for x in recs)
    expect_eq(len(recs), 24, "one record per call")
    # How many get through depends on the interleaving (a call is refused while others are
    # in flight); that none overshoots does not.
    allowed = seen.count(200)
    expect_eq((len(seen), seen.count(429)), (24, 24 - allowed), "every call answered")
    expect(1 <= allowed <= 10, "%d calls allowed" % allowed)
    expect_eq(spent, allowed * per_call, "spend of the allowed calls")
    expect(spent <= cap, "spent %d over the cap %d" % (spent, cap))
    expect_eq(counters(db)["budget:%s:agent_type:worker::tokens" % today_key()], spent,
              "counter = sum of records")
    expect_eq(status(db, bfile)[0]["reserved_tokens"], 0, "no reservation left")


@test
def window_resets_at_utc_midnight(c):
    body, per_call = chat_body()
    bfile = budget_file({"name": "d", "scope": "agent", "match": "*", "window": "daily",
                         "max_tokens": 2 * per_call},
                        {"name": "w", "scope": "agent", "match": "*", "window": "weekly",
                         "max_tokens": 100 * per_call})
    db = h.tmp_store()
    r1 = run_agent(c, "requests", chat_calls(c, 3, body), db, bfile, now=DAY1_LATE)
    expect_eq(statuses(r1.stdout), [200, 200, 429], "day 1")
    r2 = run_agent(c, "requests", chat_calls(c, 3, body), db, bfile, now=DAY2)
    expect_eq(statuses(r2.stdout), [200, 200, 429], "day 2 starts afresh")
    recs = h.records(db)
    expect_eq((recs[2]["retry_after"], recs[2]["ts"]), (1, "2026-11-29T23:59:59.000000Z"),
              "Retry-After of the block at 23:59:59")
    got = counters(db)
    expect_eq((got["budget:d2026-11-29:agent:*::tokens"], got["budget:d2026-11-30:agent:*::tokens"],
               got["budget:w2026-11-23:agent:*::tokens"], got["budget:w2026-11-30:agent:*::tokens"]),
              (2 * per_call,) * 4, "counters by window")
    st = status(db, bfile, env={"TOKSHIM_TEST_NOW": str(DAY2)})
    expect_eq([(s["name"], s["window_start"], s["used_tokens"]) for s in st],
              [("d", "2026-11-30", 2 * per_call), ("w", "2026-11-30", 2 * per_call)], "status")


@test
def tenants_are_isolated(c):
    body, per_call = chat_body()
    bfile = budget_file({"name": "per-tenant", "scope": "system", "window": "daily",
                         "max_tokens": per_call})
    db = h.tmp_store()
    ra = run_agent(c, "requests", chat_calls(c, 2, body), db, bfile, tenant="acme")
    rb = run_agent(c, "requests", chat_calls(c, 2, body), db, bfile, tenant="globex")
    expect_eq((statuses(ra.stdout), statuses(rb.stdout)), ([200, 429], [200, 429]),
              "each tenant has its own cap")
    st = status(db, bfile)
    expect_eq(sorted((s["tenant"], s["used_tokens"]) for s in st),
              [("acme", per_call), ("globex", per_call)], "status per tenant")
    chk = subprocess.run([h.CLI, "budget", "check", "--db", db, "--budgets", bfile, "--agent",
                          "x", "--tenant", "initech", "--model", "gpt-4o-mini", "--tokens",
                          str(per_call)], env=h.clean_env(), stdout=subprocess.PIPE,
                         timeout=30)
    expect_eq(chk.returncode, 0, "a third tenant is allowed (%r)" % chk.stdout)
    chk = subprocess.run([h.CLI, "budget", "check", "--db", db, "--budgets", bfile, "--agent",
                          "x", "--tenant", "acme", "--model", "gpt-4o-mini", "--tokens", "1"],
                         env=h.clean_env(), stdout=subprocess.PIPE, timeout=30)
    expect_eq(chk.returncode, 1, "acme would be blocked")
    expect(b"'per-tenant'" in chk.stdout, "reason printed: %r" % chk.stdout)


@test
def warn_budget_writes_one_event(c):
    body, per_call = chat_body()
    bfile = budget_file({"name": "soft", "scope": "agent", "match": "*", "window": "daily",
                         "max_tokens": 2 * per_call, "warn_at": 0.5, "action": "warn"})
    db = h.tmp_store()
    r = run_agent(c, "requests", chat_calls(c, 4, body), db, bfile)
    expect_eq(statuses(r.stdout), [200] * 4, "a warn budget never blocks")
    ev = events(db)
    expect_eq([(e["kind"], e["budget"], e["used_tokens"], e["warn_tokens"]) for e in ev],
              [("budget_warning", "soft", per_call, per_call)], "one warning per window")
    expect_eq(status(db, bfile)[0]["state"], "over", "state past the cap")


@test
def block_event_per_blocked_call(c):
    body, per_call = chat_body()
    bfile = budget_file({"name": "hard", "scope": "agent", "match": "*", "window": "daily",
                         "max_tokens": per_call, "warn_at": 1})
    db = h.tmp_store()
    run_agent(c, "requests", chat_calls(c, 3, body), db, bfile)
    ev = events(db)
    expect_eq([(e["kind"], e["used_tokens"], e["estimate_tokens"], e["cap_tokens"])
               for e in ev],
              [("budget_warning", per_call, 0, per_call)] +
              [("budget_block", per_call, per_call, per_call)] * 2, "events")


@test
def malformed_budget_file_enforces_nothing(c):
    body, _ = chat_body()
    bfile = h.write_temp('{"budgets": [\n  {"name": "x", "scope": "agent", "match": "*",\n'
                         '   "window": "hourly", "max_tokens": 1}\n]}\n')
    p = subprocess.run([h.CLI, "budget", "lint", bfile], env=h.clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    expect_eq((p.returncode, p.stderr.decode()),
              (1, "tokshim: '%s' line 3: field 'window': must be daily, weekly or monthly\n"
               % bfile), "lint")
    db = h.tmp_store()
    log = os.path.join(os.path.dirname(db), "shim.log")
    r = run_agent(c, "requests", chat_calls(c, 2, body), db, bfile, log=log)
    expect_eq(statuses(r.stdout), [200, 200], "nothing enforced")
    with open(log) as f:
        text = f.read()
    expect("budgets not enforced: '%s' line 3: field 'window'" % bfile in text,
           "log says so: %r" % text)
    expect_eq(counters(db), {}, "no budget counters")


if __name__ == "__main__":
    h.main(setup, teardown)
