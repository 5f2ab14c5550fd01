"""test_alerts.py - `tokshim alerts` delivering a store's alert events (docs/alerts.md) to real
receivers: an HTTP server here (Slack and JSON webhooks), an aiosmtpd SMTP sink (email) and a
log file; retries, exactly-once after acknowledgement across restarts, --dry-run, the alerts
file's errors, and the failure-rate rule evaluated by `watch` over real records.

Events come from build/tests/alert_event (store_event_append, the same writer `watch` uses) or
from a real budget warning written by the shim (test_budget_warning_from_shim).
"""
import json
import os
import re
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness as h
import test_budgets as tb
from harness import expect, expect_eq, test

EVENT_TOOL = os.path.join(h.BUILD, "tests", "alert_event")
EVENTS = os.path.join(h.BUILD, "tests", "budget_events")
MKSTORE = os.path.join(h.BUILD, "tests", "mkstore")

WARNING = ('"kind":"budget_warning","ts_ns":1795608000000000000,"record_id":42,'
           '"budget":"bot-daily","counter":"budget:d2026-11-25:agent:bot-*:",'
           '"since_ns":1795564800000000000,"until_ns":1795651200000000000,'
           '"used_tokens":960,"used_cost_pusd":288000000,"reserved_tokens":0,'
           '"reserved_cost_pusd":0,"estimate_tokens":0,"estimate_cost_pusd":0,'
           '"cap_tokens":1000,"cap_cost_pusd":-1,"warn_tokens":950,"warn_cost_pusd":-1')
BLOCK = WARNING.replace('"budget_warning"', '"budget_block"').replace(
    '"estimate_tokens":0', '"estimate_tokens":70')
WARNING_SUMMARY = "budget 'bot-daily' reached its warning level: 960 tokens used"
BLOCK_SUMMARY = ("budget 'bot-daily' blocked a call: 960 tokens used, the call's 70 tokens "
                 "would pass the cap of 1000 tokens")


class Receiver(BaseHTTPRequestHandler):
    """POSTs land in server.got[path]; server.fail[path] failures (500) come first."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        srv = self.server
        with srv.lock:
            srv.attempts[self.path] = srv.attempts.get(self.path, 0) + 1
            failing = srv.fail.get(self.path, 0) > 0
            if failing:
                srv.fail[self.path] -= 1
            else:
                srv.got.setdefault(self.path, []).append(
                    (self.headers.get("Content-Type"), body))
        self.send_response(500 if failing else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Ctx:
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def setup():
    for path in (h.CLI, EVENT_TOOL, EVENTS, MKSTORE):
        if not os.path.exists(path):
            raise h.Failure("%s does not exist: build first (make unit-tests)" % path)
    from aiosmtpd.controller import Controller  # Debian's python3-aiosmtpd

    c = Ctx()
    c.servers = h.Servers().start()
    c.http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    c.http.lock = threading.Lock()
    c.http.got, c.http.fail, c.http.attempts = {}, {}, {}
    threading.Thread(target=c.http.serve_forever, daemon=True).start()
    c.url = "http://127.0.0.1:%d" % c.http.server_address[1]

    class Sink:
        def __init__(self):
            self.mails = []

        async def handle_DATA(self, server, session, envelope):
            self.mails.append(envelope)
            return "250 OK"

    c.sink = Sink()
    c.smtp_port = free_port()
    c.smtp = Controller(c.sink, hostname="127.0.0.1", port=c.smtp_port)
    c.smtp.start()
    return c


def teardown(c):
    if c:
        c.http.shutdown()
        c.smtp.stop()
        c.servers.stop()
    h.cleanup()


def reset(c):
    with c.http.lock:
        c.http.got.clear()
        c.http.fail.clear()
        c.http.attempts.clear()
    c.sink.mails.clear()


def store_with(*members):
    db = h.tmp_store("alerts")
    for m in members:
        r = h.run([EVENT_TOOL, db, m])
        expect(r.rc == 0, "alert_event: %r" % r)
    return db


def stored_events(db):
    r = h.run([EVENTS, db])
    expect(r.rc == 0, "budget_events: %r" % r)
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def alerts_file(c, channels, rules=None, **extra):
    doc = {"channels": channels, "backoff_ms": 20}
    if rules is not None:
        doc["rules"] = rules
    doc.update(extra)
    return h.write_temp(json.dumps(doc).encode())


def alerts(cmd, afile, db, *extra):
    return h.run([h.CLI, "alerts", cmd, "--alerts", afile, "--db", db] + list(extra))


@test
def test_webhook_exact_json(c):
    reset(c)
    db = store_with(WARNING, BLOCK)
    afile = alerts_file(c, [{"name": "hook", "type": "webhook", "url": c.url + "/hook"}])
    r = alerts("send", afile, db)
    expect_eq(r.rc, 0, "exit status (%r)" % r)
    expect_eq(r.stdout.decode(), "sent event 1 (budget_warning) to 'hook'\n"
              "sent event 2 (budget_block) to 'hook'\n", "stdout")
    got = c.http.got.get("/hook", [])
    expect_eq(len(got), 2, "deliveries")
    events = stored_events(db)
    for i, (ctype, body) in enumerate(got):
        expect_eq(ctype, "application/json", "content type")
        # The stored event passes through byte for byte.
        stored = h.run([EVENTS, db]).stdout.decode().splitlines()[i]
        expect(body.startswith(b'{"event":' + stored.encode() + b',"delivery":'),
               "event not passed as is: %r" % body)
        doc = json.loads(body)
        expect_eq(doc["event"], events[i], "event %d" % (i + 1))
        delivery = doc["delivery"]
        expect_eq(sorted(delivery), ["attempt", "channel", "event_id", "sent_at"], "keys")
        expect_eq((delivery["channel"], delivery["event_id"], delivery["attempt"]),
                  ("hook", i + 1, 1), "delivery")
        expect(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", delivery["sent_at"]),
               "sent_at %r" % delivery["sent_at"])


@test
def test_slack_exact_json(c):
    reset(c)
    db = store_with(WARNING)
    afile = alerts_file(c, [{"name": "ops", "type": "slack", "url": c.url + "/slack"}])
    r = alerts("send", afile, db)
    expect_eq(r.rc, 0, "exit status (%r)" % r)
    got = c.http.got.get("/slack", [])
    expect_eq(len(got), 1, "deliveries")
    expect_eq(json.loads(got[0][1]), {
        "text": WARNING_SUMMARY,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": "*tokshim: budget_warning*\n" + WARNING_SUMMARY}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "event 1"}]},
        ]}, "slack message")


@test
def test_email_smtp(c):
    reset(c)
    db = store_with(WARNING, BLOCK)
    afile = alerts_file(c, [{"name": "mail", "type": "email",
                             "url": "smtp://127.0.0.1:%d" % c.smtp_port,
                             "from": "tokshim@example.test",
                             "to": ["ops@example.test", "lead@example.test"],
                             "subject": "[tokshim] {kind}: {summary}"}],
                        rules=[{"kinds": ["budget_block"], "channels": ["mail"]}])
    r = alerts("send", afile, db)
    expect_eq(r.rc, 0, "exit status (%r)" % r)
    expect_eq(r.stdout.decode(), "sent event 2 (budget_block) to 'mail'\n", "stdout")
    expect_eq(len(c.sink.mails), 1, "mails (only budget_block is routed)")
    env = c.sink.mails[0]
    expect_eq(env.mail_from, "tokshim@example.test", "envelope from")
    expect_eq(env.rcpt_tos, ["ops@example.test", "lead@example.test"], "envelope to")
    import email
    msg = email.message_from_bytes(env.content)
    expect_eq(msg["From"], "tokshim@example.test", "From")
    expect_eq(msg["To"], "ops@example.test, lead@example.test", "To")
    expect_eq(msg["Subject"], "[tokshim] budget_block: " + BLOCK_SUMMARY, "Subject")
    expect_eq(msg.get_content_type(), "text/plain", "content type")
    stored = h.run([EVENTS, db]).stdout.decode().splitlines()[1]
    expect_eq(msg.get_payload(decode=True).decode(),
              BLOCK_SUMMARY + "\r\n\r\n" + stored + "\r\n", "body")
    # Nothing is sent twice.
    r = alerts("send", afile, db)
    expect_eq((r.rc, r.stdout, len(c.sink.mails)), (0, b"", 1), "second send")


@test
def test_fails_twice_then_exactly_once(c):
    reset(c)
    c.http.fail["/flaky"] = 2
    db = store_with(WARNING)
    afile = alerts_file(c, [{"name": "hook", "type": "webhook", "url": c.url + "/flaky"}],
                        retries=3)
    t0 = time.time()
    r = alerts("send", afile, db)
    expect_eq(r.rc, 0, "exit status (%r)" % r)
    expect(time.time() - t0 >= 0.06, "back-off: 20 + 40 ms between the three attempts")
    expect_eq(c.http.attempts.get("/flaky"), 3, "attempts")
    got = c.http.got.get("/flaky", [])
    expect_eq(len(got), 1, "acknowledged deliveries")
    expect_eq(json.loads(got[0][1])["delivery"]["attempt"], 3, "attempt number")
    # A restarted sender: nothing again.
    r = alerts("send", afile, db)
    expect_eq((r.rc, r.stdout), (0, b""), "second send")
    expect_eq(c.http.attempts.get("/flaky"), 3, "attempts after the restart")


@test
def test_failure_keeps_event_pending(c):
    reset(c)
    c.http.fail["/down"] = 100
    db = store_with(WARNING)
    afile = alerts_file(c, [{"name": "hook", "type": "webhook", "url": c.url + "/down"}],
                        retries=1)
    r = alerts("send", afile, db)
    expect_eq(r.rc, 1, "exit status (%r)" % r)
    expect_eq(r.stderr.decode(), "tokshim: cannot deliver event 1 to 'hook': http status 500 "
              "(2 attempts)\n", "stderr")
    c.http.fail["/down"] = 0
    r = alerts("send", afile, db)
    expect_eq((r.rc, r.stdout), (0, b"sent event 1 (budget_warning) to 'hook'\n"), "retry")
    expect_eq(len(c.http.got.get("/down", [])), 1, "deliveries")


@test
def test_dry_run_sends_nothing(c):
    reset(c)
    db = store_with(WARNING)
    afile = alerts_file(c, [{"name": "hook", "type": "slack", "url": c.url + "/dry"}])
    r = alerts("send", afile, db, "--dry-run")
    expect_eq(r.rc, 0, "exit status (%r)" % r)
    out = r.stdout.decode()
    expect(out.startswith("would send event 1 (budget_warning) to 'hook' (slack): {\"text\":"),
           "dry run output: %r" % out)
    expect_eq(c.http.attempts, {}, "requests during the dry run")
    r = alerts("send", afile, db)
    expect_eq(r.stdout, b"sent event 1 (budget_warning) to 'hook'\n", "real send after it")


@test
def test_log_channel_and_routing(c):
    reset(c)
    db = store_with(WARNING, BLOCK, WARNING)
    log = h.tmp_store("alerts") + ".log"
    afile = alerts_file(c, [{"name": "file", "type": "log", "path": log}],
                        rules=[{"kinds": ["budget_warning"], "channels": ["file"]}])
    r = alerts("send", afile, db)
    expect_eq(r.rc, 0, "exit status (%r)" % r)
    lines = open(log).read().splitlines()
    stored = h.run([EVENTS, db]).stdout.decode().splitlines()
    expect_eq(lines, [stored[0], stored[2]], "log lines")


@test
def test_malformed_alerts_file(c):
    cases = [
        ({"channels": [{"name": "a", "type": "webhook"}]}, "channels[0].url: missing"),
        ({"channels": [{"name": "a", "type": "pager", "url": "x"}]},
         "channels[0].type: unknown type 'pager': expected slack, webhook, email, log or "
         "syslog"),
        ({"channels": [{"name": "m", "type": "email", "url": "smtp://127.0.0.1:1",
                        "from": "a@b", "to": ["nobody"]}]}, "channels[0].to[0]: expected an address"),
        ({"channels": [{"name": "a", "type": "syslog"}],
          "rules": [{"kinds": ["budget_warning"], "channels": ["b"]}]},
         "rules[0].channels[0]: no channel of that name"),
        ({"channels": [{"name": "a", "type": "syslog"}], "failure_rate": {"rate": 2}},
         "failure_rate.rate: expected a number from 1e-06 to 1"),
    ]
    for doc, want in cases:
        path = h.write_temp(json.dumps(doc).encode())
        r = h.run([h.CLI, "alerts", "lint", path])
        expect_eq((r.rc, r.stderr.decode()), (1, "tokshim: '%s': %s\n" % (path, want)),
                  "lint of %s" % json.dumps(doc))
    path = h.write_temp(b"{\"channels\": [")
    r = h.run([h.CLI, "alerts", "send", "--alerts", path, "--db", h.tmp_store()])
    expect_eq((r.rc, r.stderr.decode()), (1, "tokshim: '%s': not valid JSON\n" % path), "send")


@test
def test_watch_failure_rate_rule(c):
    reset(c)
    db = h.tmp_store("alerts")
    now = time.time()
    lines = []
    for i in range(10):  # 6 of 10 calls in the last minute failed
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60 + i))
        lines.append(json.dumps({"ts": ts, "agent": "bot", "provider": "openai",
                                 "model": "gpt-4o-mini", "status": 500 if i < 6 else 200,
                                 "error": "server_error" if i < 6 else ""}))
    r = subprocess.run([MKSTORE, db], input="\n".join(lines).encode(), capture_output=True)
    expect(r.returncode == 0, "mkstore: %r" % r)
    afile = alerts_file(c, [{"name": "hook", "type": "webhook", "url": c.url + "/fr"}],
                        failure_rate={"window": "10m", "rate": 0.5, "min_calls": 10})
    r = alerts("watch", afile, db, "--interval", "1s", "--iterations", "2")
    expect_eq(r.rc, 0, "exit status (%r)" % r)
    events = stored_events(db)
    expect_eq(len(events), 1, "failure_rate events after two rounds (once per window)")
    ev = events[0]
    expect_eq((ev["kind"], ev["calls"], ev["failed"], ev["rate"]),
              ("failure_rate", 10, 6, 0.5), "event")
    expect_eq(ev["summary"], "6 of 10 calls failed in the last 600 s (60%, the limit is 50%)",
              "summary")
    got = c.http.got.get("/fr", [])
    expect_eq(len(got), 1, "deliveries")
    expect_eq(json.loads(got[0][1])["event"], ev, "delivered event")


@test
def test_watch_anomaly_rule(c):
    """5 of 6 calls failing in one 5-minute window: the analyzer's error_burst flag (warning),
    written once as an anomaly event however often watch runs, and only at its severity."""
    reset(c)
    db = h.tmp_store("alerts")
    start = (int(time.time()) - 3600) // 300 * 300 + 10
    lines = [json.dumps({"ts_ns": (start + i) * 10**9, "agent": "bot", "provider": "openai",
                         "model": "gpt-4o-mini", "status": 500 if i else 200,
                         "error": "server_error" if i else ""}) for i in range(6)]
    r = subprocess.run([MKSTORE, db], input="\n".join(lines).encode(), capture_output=True)
    expect(r.returncode == 0, "mkstore: %r" % r)
    hook = [{"name": "hook", "type": "webhook", "url": c.url + "/an"}]
    critical = alerts_file(c, hook, anomaly={"severity": "critical", "lookback": "2h"})
    r = alerts("watch", critical, db, "--iterations", "1")
    expect_eq((r.rc, stored_events(db)), (0, []), "no critical flag")
    warning = alerts_file(c, hook, anomaly={"severity": "warning", "lookback": "2h"})
    for _ in range(2):
        r = alerts("watch", warning, db, "--iterations", "1")
        expect_eq(r.rc, 0, "exit status (%r)" % r)
    events = stored_events(db)
    expect_eq([(e["kind"], e["anomaly"], e["severity"], e["agent"], e["from_ns"], e["summary"],
                e["evidence"]["failures"], e["evidence"]["calls"]) for e in events],
              [("anomaly", "error_burst", "warning", "bot", (start - 10) * 10**9,
                "5 of 6 calls failed in 300 s", 5, 6)], "anomaly events")
    got = c.http.got.get("/an", [])
    expect_eq([json.loads(b)["event"] for _, b in got], events, "delivered once")


@test
def test_budget_warning_from_shim(c):
    """A real warning: requests under the shim crosses a warn budget's level; the event the
    shim wrote reaches the webhook and the Slack channel."""
    reset(c)
    body, per_call = tb.chat_body()
    bfile = tb.budget_file({"name": "soft", "scope": "agent", "match": "*", "window": "daily",
                            "max_tokens": 2 * per_call, "warn_at": 0.5, "action": "warn"})
    db = h.tmp_store()
    r = tb.run_agent(c, "requests", tb.chat_calls(c, 3, body), db, bfile)
    expect_eq(tb.statuses(r.stdout), [200] * 3, "statuses")
    afile = alerts_file(c, [{"name": "hook", "type": "webhook", "url": c.url + "/shim"},
                            {"name": "ops", "type": "slack", "url": c.url + "/shim-slack"}])
    r = alerts("send", afile, db)
    expect_eq((r.rc, r.stdout.decode()), (0, "sent event 1 (budget_warning) to 'hook'\n"
                                             "sent event 1 (budget_warning) to 'ops'\n"), "send")
    events = stored_events(db)
    expect_eq([(e["kind"], e["budget"], e["used_tokens"]) for e in events],
              [("budget_warning", "soft", per_call)], "stored events")
    expect_eq(json.loads(c.http.got["/shim"][0][1])["event"], events[0], "webhook event")
    expect_eq(json.loads(c.http.got["/shim-slack"][0][1])["text"],
              "budget 'soft' reached its warning level: %d tokens used" % per_call, "slack text")


if __name__ == "__main__":
    h.main(setup, teardown)
