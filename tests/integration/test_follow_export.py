#!/usr/bin/python3
"""tail -f, show K#ID, prune, export (jsonl, csv, OTLP posted to a local receiver) and the
dashboard read back from headless Chromium's DOM, all against stores made by mkstore from
tests/cli/stores/*.jsonl. Prints "N passed, N failed"."""

import csv
import decimal
import html.parser
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TOKSHIM_BUILD") or os.path.join(TOP, "build")
TOKSHIM = os.path.join(BUILD, "tokshim")
MKSTORE = os.path.join(BUILD, "tests", "mkstore")
STORES = os.path.join(TOP, "tests", "cli", "stores")
D = decimal.Decimal

passed = failed = 0


def check(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s" % name)
        for line in str(detail).rstrip("\n").split("\n")[:40]:
            print("    " + line)


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("TOKSHIM_")}
    e["HOME"] = TMP
    e["LC_ALL"] = "C.UTF-8"
    return e


def run(*args, **kw):
    return subprocess.run([TOKSHIM] + list(args), capture_output=True, text=True, env=env(),
                          timeout=120, **kw)


def mkstore(name, src=None, lines=None):
    path = os.path.join(TMP, name + ".mdb")
    if lines is not None:
        r = subprocess.run([MKSTORE, path], input="\n".join(lines) + "\n",
                           capture_output=True, text=True)
    else:
        r = subprocess.run([MKSTORE, path, os.path.join(STORES, src + ".jsonl")],
                           capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return path


def loads(text):
    return json.loads(text, parse_float=D)


def rec(ts, agent, model, inp, out, **extra):
    r = {"ts": ts, "agent": agent, "provider": "openai", "api": "chat.completions",
         "host": "api.openai.com", "model": model, "status": 200, "input_tokens": inp,
         "output_tokens": out, "latency_us": 1500000}
    r.update(extra)
    return json.dumps(r)


def test_tail_follow():
    db = mkstore("follow", "basic")
    p = subprocess.Popen([TOKSHIM, "tail", "-f", "-n", "2", "--db", db, "--format", "jsonl"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        first = [json.loads(p.stdout.readline()) for _ in range(2)]
        check([r["id"] for r in first] == [5, 6], "tail -n 2: the last two records", first)
        # A second process appends (mkstore opens the same store and adds one record).
        t0 = time.monotonic()
        subprocess.run([MKSTORE, db], input=rec("2020-01-01T00:00:00Z", "late", "gpt-4o", 7, 3)
                       + "\n", text=True, check=True)
        line = p.stdout.readline()
        elapsed = time.monotonic() - t0
        got = json.loads(line)
        # Its time is older than every other record: found by id, not by time.
        check(got["id"] == 7 and got["agent"] == "late" and got["total_tokens"] == 10 and
              elapsed < 1.0, "tail -f: an appended record shows up within a second",
              "%.3f s: %s" % (elapsed, line))
        # Filters apply to followed records too.
    finally:
        p.terminate()
        p.wait(timeout=10)
    q = subprocess.Popen([TOKSHIM, "tail", "-f", "-n", "0", "--db", db, "--agent", "keep",
                          "--format", "jsonl"], stdout=subprocess.PIPE, text=True, env=env())
    try:
        time.sleep(0.3)
        subprocess.run([MKSTORE, db], input=rec("2026-11-25T00:00:00Z", "skip", "gpt-4o", 1, 1)
                       + "\n" + rec("2026-11-25T00:00:01Z", "keep", "gpt-4o", 2, 2) + "\n",
                       text=True, check=True)
        got = json.loads(q.stdout.readline())
        check(got["id"] == 9 and got["agent"] == "keep", "tail -f --agent: only matching",
              got)
    finally:
        q.terminate()
        q.wait(timeout=10)


def test_fallback_of():
    """export (jsonl, csv, otlp) and tail (first listing and -f) give each record the
    fallback_of that records computes: tests/cli/stores/fallback.jsonl has record 6 falling back
    from the failed 5 and record 2 routed by OpenRouter (its own id); 4 is a retry (null)."""
    db = mkstore("fbof", "fallback")
    want = {1: None, 2: 2, 3: None, 4: None, 5: None, 6: 5, 7: None, 8: None, 9: None, 10: None}
    jl = run("export", "--db", db)
    got = {o["id"]: o["fallback_of"] for o in map(json.loads, jl.stdout.splitlines())}
    check(jl.returncode == 0 and got == want, "export jsonl: fallback_of of every record", got)
    c = run("export", "--db", db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(c.stdout, newline="")))
    got = {int(r["id"]): r["fallback_of"] for r in rows}
    check(got == {k: "" if v is None else str(v) for k, v in want.items()},
          "export csv: the fallback_of column", got)
    o = loads(run("export", "--db", db, "--format", "otlp").stdout)
    spans = o["resourceSpans"][0]["scopeSpans"][0]["spans"]
    got = {attrs(s)["tokshim.record_id"]: attrs(s).get("tokshim.fallback_of") for s in spans}
    check(got == want, "export otlp: tokshim.fallback_of only on fallbacks", got)
    t = run("tail", "--db", db, "-n", "3", "--format", "jsonl")
    got = [(o["id"], o["fallback_of"]) for o in map(json.loads, t.stdout.splitlines())]
    check(got == [(6, 5), (2, 2), (8, None)], "tail -n 3: fallback_of as records has it", got)
    # -f: a failure committed before tail started, then its fallback and a retry of it.
    subprocess.run([MKSTORE, db], input=rec("2026-11-25T10:00:00Z", "w", "gpt-4o", 0, 0,
                                            session="f1", status=500, error="server") + "\n",
                   text=True, check=True)
    p = subprocess.Popen([TOKSHIM, "tail", "-f", "-n", "0", "--db", db, "--format", "jsonl"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        time.sleep(0.3)
        subprocess.run([MKSTORE, db], input=rec(
            "2026-11-25T10:00:05Z", "w", "claude-sonnet-4-5", 7, 3, session="f1",
            provider="anthropic") + "\n" + rec(
            "2026-11-25T10:00:20Z", "w", "gpt-4o", 5, 5, session="f1", status=503,
            error="overloaded") + "\n" + rec(
            "2026-11-25T10:00:25Z", "w", "gpt-4o", 1, 1, session="f1") + "\n",
            text=True, check=True)
        got = [json.loads(p.stdout.readline()) for _ in range(3)]
        got = [(o["id"], o["fallback_of"]) for o in got]
        # 12 falls back from 11 (committed before tail started), 13 fails, 14 retries it
        # with the same model: null.
        check(got == [(12, 11), (13, None), (14, None)],
              "tail -f: fallback_of of followed records, against a failure from before", got)
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_stats_payloads():
    """stats: payloads under 1 KiB are stored uncompressed (36-byte header, 12-byte frame, the
    bytes), larger ones compressed; the table says both numbers. Sizes from basic.jsonl."""
    db = mkstore("stats", "basic")
    totals = []
    for line in open(os.path.join(STORES, "basic.jsonl"), encoding="utf-8"):
        if line.startswith("{") and "payload" in json.loads(line):
            pl = json.loads(line)["payload"]
            totals.append(sum(len(pl.get(k, "").encode()) for k in
                              ("req_head", "req_body", "resp_head", "resp_body")))
    kept = [t for t in totals if t < 1024]
    st = json.loads(run("stats", "--db", db, "--format", "json").stdout)
    big = st["payload_bytes"] - sum(48 + t for t in kept)
    check(st["payloads"] == 5 and st["payload_raw_bytes"] == sum(totals) and
          st["payloads_uncompressed"] == len(kept) == 4 and 36 < big < max(totals),
          "stats --format json: stored and held payload bytes", "%r %r" % (st, totals))
    # Every distinct name of 1 to 255 bytes but the error messages is kept once.
    names = set()
    for line in open(os.path.join(STORES, "basic.jsonl"), encoding="utf-8"):
        if line.startswith("{"):
            o = json.loads(line)
            names |= {o[k] for k in ("process", "agent", "agent_type", "tenant", "session",
                                     "provider", "api", "host", "path", "model_requested",
                                     "model", "error")
                      if isinstance(o.get(k), str) and 0 < len(o[k].encode()) <= 255}
    check(st["strings"] == len(names) > 0, "stats --format json: strings",
          "%r %r" % (st["strings"], sorted(names)))
    t = run("stats", "--db", db)
    check("strings    %d distinct names, each stored once\n" % len(names) in t.stdout,
          "stats: the strings line", t.stdout)
    check("payloads   5: %d bytes stored for %d bytes of heads and bodies (4 stored "
          "uncompressed, 1 compressed)\n" % (st["payload_bytes"], sum(totals)) in t.stdout and
          "compressed)" in t.stdout, "stats: the payloads line", t.stdout)


def test_show_refs():
    a, b = mkstore("refs_a", "basic"), mkstore("refs_b", "host2")
    r = run("show", "--db", a, "--db", b, "1")
    check(r.returncode == 1 and r.stderr ==
          "tokshim: record '1' is in 2 of the stores: name one of 1#1, 2#1\n",
          "show: a bare id held by two stores is refused", r.stderr)
    r = run("show", "--db", a, "--db", b, "2#1")
    check(r.returncode == 0 and "agent      dave" in r.stdout, "show 2#1: the second store",
          r.stdout[:400] + r.stderr)
    r = run("show", "--db", a, "--db", b, "5")
    check(r.returncode == 0 and "status     429" in r.stdout, "show: a bare id in one store",
          r.stderr)
    r = run("show", "--db", a, "--db", b, "3#1")
    check(r.returncode == 2 and "no store 3" in r.stderr, "show 3#1: no such store", r.stderr)
    r = run("records", "--db", a, "--db", b, "--format", "jsonl")
    refs = ["%d#%d" % (o["db"], o["id"]) for o in map(json.loads, r.stdout.splitlines())]
    check(sorted(refs) == ["1#1", "1#2", "1#3", "1#4", "1#5", "1#6", "2#1", "2#2"],
          "records over two stores: every record named K#ID once", refs)
    r = run("tail", "--db", a, "--db", b, "-n", "3")
    check(r.returncode == 0 and r.stdout.splitlines()[1].split()[0] == "1#4",
          "tail over two stores: K#ID in the table", r.stdout)


def test_prune_cli():
    db = mkstore("prune", "basic")
    r = run("prune", "--db", db, "--before", "2026-11-22", "--dry-run")
    check(r.returncode == 0 and r.stdout == "%s: would delete 2 records (2 with payloads) "
          "before 2026-11-22T00:00:00.000000Z\n" % db, "prune --dry-run", r.stdout + r.stderr)
    before = os.path.getsize(db)
    r = run("prune", "--db", db, "--before", "2026-11-22")
    check(r.returncode == 0 and "deleted 2 records (2 with payloads)" in r.stdout and
          "compacted %d -> %d bytes" % (before, os.path.getsize(db)) in r.stdout and
          os.path.getsize(db) < before, "prune: deleted and compacted", r.stdout + r.stderr)
    r = run("records", "--db", db, "--format", "jsonl")
    check([json.loads(l)["id"] for l in r.stdout.splitlines()] == [3, 4, 5, 6],
          "prune: exactly the newer records remain", r.stdout)
    r = run("verify", "--db", db)
    check(r.returncode == 0, "prune: the store verifies", r.stdout + r.stderr)
    # A tail -f holding the store open: deleted, not compacted.
    p = subprocess.Popen([TOKSHIM, "tail", "-f", "--db", db], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=env())
    try:
        time.sleep(0.3)
        r = run("prune", "--db", db, "--before", "2026-11-23")
        check(r.returncode == 0 and "deleted 1 records" in r.stdout and
              "not compacted: the store is open in another process" in r.stdout,
              "prune beside a reader: deleted, not compacted", r.stdout + r.stderr)
    finally:
        p.terminate()
        p.wait(timeout=10)
    r = run("prune", "--db", db)
    check(r.returncode == 2 and "missing '--before TIME'" in r.stderr, "prune without --before",
          r.stderr)
    r = run("prune", "--db", os.path.join(TMP, "none.mdb"), "--before", "1d")
    check(r.returncode == 1 and r.stderr == "tokshim: cannot prune '%s': no such store\n" %
          os.path.join(TMP, "none.mdb"), "prune of a missing store: one line", r.stderr)


def test_export_jsonl_csv():
    db = mkstore("exp", "basic")
    jl = run("export", "--db", db)
    recs = run("records", "--db", db, "--format", "jsonl")
    check(jl.returncode == 0 and jl.stdout == recs.stdout, "export jsonl is the records jsonl",
          jl.stderr)
    c = run("export", "--db", db, "--format", "csv")
    rows = list(csv.reader(io.StringIO(c.stdout, newline="")))
    objs = [json.loads(l) for l in recs.stdout.splitlines()]
    head = list(objs[0].keys())

    def cell(v):
        return "" if v is None else ("true" if v is True else "false" if v is False else str(v))
    want = [head] + [[cell(o[k]) for k in head] for o in objs]
    # Numbers are compared as the JSON text wrote them.
    raw = [[str(v) for v in r] for r in rows]
    ok = c.returncode == 0 and len(rows) == 7 and rows[0] == head and \
        all(len(r) == len(head) for r in rows) and \
        subprocess.run([TOKSHIM, "export", "--db", db, "--format", "csv"], capture_output=True,
                       env=env()).stdout.count(b"\r\n") == 7
    diffs = [(i, k, raw[i][j], want[i][j]) for i in range(1, min(len(raw), len(want)))
             for j, k in enumerate(head) if j < len(raw[i]) and
             not (raw[i][j] == want[i][j] or (k in ("latency_ms", "ttfb_ms", "cost_usd") and
                                              raw[i][j] and D(raw[i][j]) == D(want[i][j])))]
    check(ok and not diffs, "export csv: the jsonl columns, one row per record",
          "%r\n%r\n%r" % (diffs[:5], rows[0], head))
    check(rows[1][head.index("cost_usd")] == "0.00725", "export csv: exact cost text",
          rows[1])
    # RFC 4180 quoting of commas, quotes and newlines in a field.
    q = mkstore("quote", lines=[rec("2026-11-25T00:00:00Z", 'a,"b"\nc', "m", 1, 1)])
    c = run("export", "--db", q, "--format", "csv")
    check(c.stdout.splitlines()[1].startswith("1,2026-11-25T00:00:00.000000Z,0,,\"a,\"\"b\"\""),
          "export csv: quoting", c.stdout)


class Receiver(http.server.BaseHTTPRequestHandler):
    bodies = []
    status = 200

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        Receiver.bodies.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(Receiver.status)
        self.send_header("Content-Type", "application/json")
        msg = b"{}" if Receiver.status == 200 else b"collector is down\nsecond line"
        self.send_header("Content-Length", str(len(msg)))
        self.end_headers()
        self.wfile.write(msg)

    def log_message(self, *a):
        pass


def attrs(span):
    out = {}
    for a in span["attributes"]:
        (kind, v), = a["value"].items()
        out[a["key"]] = v if kind != "intValue" else int(v)
    return out


def test_export_otlp():
    db = mkstore("otlp", "basic")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/v1/traces" % srv.server_address[1]
    try:
        Receiver.bodies = []
        r = run("export", "--db", db, "--format", "otlp", "--to", url, "--batch", "4")
        check(r.returncode == 0 and r.stdout == "exported 6 records in 2 requests to %s\n" % url,
              "export otlp --to: posted in batches", r.stdout + r.stderr)
        spans = []
        for path, ctype, body in Receiver.bodies:
            req = loads(body)
            rs, = req["resourceSpans"]
            ss, = rs["scopeSpans"]
            spans.append(ss["spans"])
            check(path == "/v1/traces" and ctype == "application/json" and
                  ss["scope"]["name"] == "tokshim", "otlp request shape", req)
        check([len(s) for s in spans] == [4, 2], "otlp: batches of 4 then 2",
              [len(s) for s in spans])
        flat = [s for b in spans for s in b]
        ids = sorted(attrs(s)["tokshim.record_id"] for s in flat)
        check(ids == [1, 2, 3, 4, 5, 6], "otlp: every record exactly once", ids)
        one = flat[0]
        a = attrs(one)
        want = {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 500,
                "gen_ai.usage.cache_read.input_tokens": 200,
                "gen_ai.usage.cache_creation.input_tokens": 0,
                "gen_ai.usage.reasoning.output_tokens": 0, "http.response.status_code": 200,
                "server.address": "api.openai.com", "tokshim.cost_usd": D("0.00725"),
                "tokshim.agent": "alice", "tokshim.tenant": "acme", "tokshim.session": "s1"}
        diff = {k: (v, a.get(k)) for k, v in want.items() if a.get(k) != v}
        check(not diff and one["name"] == "chat gpt-4o-2024-08-06" and one["kind"] == 3 and
              one["startTimeUnixNano"] == "1795168800123456000" and
              one["endTimeUnixNano"] == "1795168801358023000" and
              len(one["traceId"]) == 32 and len(one["spanId"]) == 16 and "status" not in one,
              "otlp: span 1 attributes, name, times", "%r\n%r" % (diff, one))
        r5 = [s for s in flat if attrs(s)["tokshim.record_id"] == 5][0]
        a5 = attrs(r5)
        check(a5["error.type"] == "rate_limit" and a5["http.response.status_code"] == 429 and
              r5["status"]["code"] == 2 and a5["gen_ai.provider.name"] == "anthropic",
              "otlp: a failed call is an error span", r5)
        r4 = [s for s in flat if attrs(s)["tokshim.record_id"] == 4][0]
        check("tokshim.cost_usd" not in attrs(r4), "otlp: an unpriced call has no cost", r4)
        # Without --to: the same spans printed as one request.
        r = run("export", "--db", db, "--format", "otlp")
        printed = loads(r.stdout)["resourceSpans"][0]["scopeSpans"][0]["spans"]
        check([s["spanId"] for s in printed] == [s["spanId"] for s in flat] and
              [attrs(s) for s in printed] == [attrs(s) for s in flat],
              "otlp printed: the same spans", r.stdout[:300])
        Receiver.status = 500
        r = run("export", "--db", db, "--format", "otlp", "--to", url)
        check(r.returncode == 1 and r.stderr == "tokshim: '%s' answered HTTP 500: collector is "
              "down\n" % url, "otlp: a collector answering 500", r.stderr)
        Receiver.status = 200
    finally:
        srv.shutdown()
    r = run("export", "--db", db, "--format", "otlp", "--to", "http://127.0.0.1:1/v1/traces")
    check(r.returncode == 1 and "cannot post to 'http://127.0.0.1:1/v1/traces'" in r.stderr,
          "otlp: nobody listening", r.stderr)
    r = run("export", "--db", db, "--format", "csv", "--to", url)
    check(r.returncode == 2 and "'--to' needs '--format otlp'" in r.stderr, "csv --to refused",
          r.stderr)


class Dom(html.parser.HTMLParser):
    """Collects data-value by id, every attribute by id, table cells by section, and the
    rows of the fallbacks and anomalies tables as dicts of their cells' data-key: data-value
    (a fallback row's pair under "pair")."""

    def __init__(self):
        super().__init__()
        self.values = {}
        self.attrs = {}
        self.groups = {}
        self.lists = {"fallbacks": [], "anomalies": []}
        self.listing = None
        self.section = None
        self.row = None
        self.depth = 0

    def handle_starttag(self, tag, a):
        a = dict(a)
        if "id" in a:
            self.attrs[a["id"]] = a
        if "id" in a and "data-value" in a:
            self.values[a["id"]] = a["data-value"]
        if tag == "div" and a.get("id") in self.lists:
            self.listing = self.lists[a["id"]]
        if self.listing is not None and tag == "tr":
            self.listing.append({})
        if self.listing is not None and tag == "td" and self.listing:
            if "data-pair" in a:
                self.listing[-1]["pair"] = a["data-pair"]
            if "data-key" in a:
                self.listing[-1][a["data-key"]] = a["data-value"]
        if tag == "div" and a.get("id", "").startswith("by-"):
            self.section = a["id"]
            self.groups[self.section] = {}
        if self.section and tag == "td":
            if "data-name" in a:
                self.row = {}
                self.groups[self.section][a["data-name"]] = self.row
            elif "data-key" in a and self.row is not None:
                self.row[a["data-key"]] = a["data-value"]

    def handle_endtag(self, tag):
        if tag == "section":
            self.section = None
        if tag == "div" and self.listing is not None:
            self.listing[:] = [r for r in self.listing if r]  # the header row has no cells
            self.listing = None


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def dump_dom(page, fragment=""):
    profile = tempfile.mkdtemp(dir=TMP)
    r = subprocess.run([chromium()] + CHROMIUM_ARGS + ["--user-data-dir=" + profile,
                       "--dump-dom", "file://" + page + fragment],
                       capture_output=True, text=True, timeout=120)
    d = Dom()
    d.feed(r.stdout)
    return r, d


def compare(dom, report, name):
    """The page's totals and groups against report --format json, exactly."""
    want = {"total-requests": report["totalRequests"], "total-failed": report["failedRequests"],
            "total-tokens": report["totalTokens"], "total-cache": report["cacheReadTokens"],
            "total-cost": report["totalCost"]}
    diff = {k: (str(v), dom.values.get(k)) for k, v in want.items()
            if not (dom.values.get(k) == str(v) or
                    (v is not None and dom.values.get(k) not in (None, "null") and
                     D(dom.values[k]) == D(str(v))) or
                    (v is None and dom.values.get(k) == "null"))}
    for sec, key in (("by-agent", "byAgent"), ("by-model", "byModel"),
                     ("by-provider", "byProvider")):
        got = dom.groups.get(sec, {})
        if sorted(got) != sorted(report[key]):
            diff[sec] = (sorted(report[key]), sorted(got))
            continue
        for n, row in report[key].items():
            g = got[n]
            for k in ("requests", "failedRequests", "totalTokens", "cost"):
                ok = (row[k] is None and g.get(k) == "null") or \
                    (row[k] is not None and g.get(k) not in (None, "null") and
                     D(g[k]) == D(str(row[k])))
                if not ok:
                    diff["%s.%s.%s" % (sec, n, k)] = (row[k], g.get(k))
    loc = dom.groups.get("by-locality", {})
    for where in ("local", "cloud"):
        if report["locality"][where]["requests"] and \
                loc.get(where, {}).get("requests") != str(report["locality"][where]["requests"]):
            diff["locality." + where] = (report["locality"][where]["requests"], loc.get(where))
    check(not diff, name, diff)


def test_dashboard():
    a, b = mkstore("dash_a", "basic"), mkstore("dash_b", "host2")
    page = os.path.join(TMP, "usage.html")
    r = run("dashboard", "--db", a, "--db", b, "-o", page)
    check(r.returncode == 0 and os.path.exists(page), "dashboard -o writes the page", r.stderr)
    text = open(page, encoding="utf-8").read()
    check("http://" not in text.replace("http://www.w3.org/2000/svg", "") and
          "https://" not in text and "<script src" not in text and "<link" not in text and
          "@import" not in text and "url(" not in text,
          "dashboard: nothing fetched from the network", "")
    if chromium() is None:
        check(False, "dashboard: chromium is installed (scripts/install-deps.sh --test)")
        return
    rep = loads(run("report", "--db", a, "--db", b, "--format", "json").stdout)
    res, dom = dump_dom(page)
    check(res.returncode == 0 and 'data-rendered="1"' in res.stdout,
          "chromium renders the dashboard", res.stderr[-800:])
    compare(dom, rep, "dashboard totals and groups == report --format json")
    for frag, args in (("#agent=alice", ["--agent", "alice"]),
                       ("#provider=openai&from=2026-11-21&to=2026-11-23",
                        ["--provider", "openai", "--since", "2026-11-21", "--until",
                         "2026-11-23"])):
        rep = loads(run("report", "--db", a, "--db", b, "--format", "json", *args).stdout)
        res, dom = dump_dom(page, frag)
        compare(dom, rep, "dashboard filtered by %s == report %s" % (frag, " ".join(args)))
    # A name that tries to close the script element stays data.
    h = mkstore("dash_hostile", lines=[rec("2026-11-25T00:00:00Z", "</script><b>x", "m", 1, 1)])
    page2 = os.path.join(TMP, "hostile.html")
    run("dashboard", "--db", h, "-o", page2)
    res, dom = dump_dom(page2)
    check(dom.groups.get("by-agent", {}).keys() == {"</script><b>x"} and
          dom.values.get("total-tokens") == "2", "dashboard: hostile names stay text",
          dom.groups)
    r = run("dashboard", "--db", a)
    check(r.returncode == 2 and "missing '-o FILE'" in r.stderr, "dashboard without -o",
          r.stderr)


def page_fallbacks(dom):
    """The fallbacks section as the shape of `fallbacks --format json`'s numbers."""
    summ = dom.attrs.get("fallback-summary", {})
    return {"totalFallbacks": summ.get("data-fallbacks"), "routed": summ.get("data-routed"),
            "afterFailure": summ.get("data-after-failure"), "retries": summ.get("data-retries"),
            "fallbackTokens": summ.get("data-tokens"), "fallbackCost": summ.get("data-cost"),
            "pairs": sorted((r["pair"], r["count"], r["tokens"], r["cost"])
                            for r in dom.lists["fallbacks"])}


def cli_fallbacks(dbs, args):
    fb = loads(run("fallbacks", *dbs, "--format", "json", *args).stdout)

    def name(n):
        return n["provider"] + "/" + n["model"] if n["provider"] else n["model"]
    return {"totalFallbacks": str(fb["totalFallbacks"]), "routed": str(fb["routed"]),
            "afterFailure": str(fb["afterFailure"]), "retries": str(fb["retries"]),
            "fallbackTokens": str(fb["fallbackTokens"]), "fallbackCost": str(fb["fallbackCost"]),
            "pairs": sorted((name(p["primary"]) + " -> " + name(p["fallback"]), str(p["count"]),
                             str(p["tokens"]), "null" if p["cost"] is None else str(p["cost"]))
                            for p in fb["pairs"])}


def flag_rows(flags):
    return [{"kind": f["kind"], "severity": f["severity"], "agent": f["agent"],
             "from": f["from"], "to": f["to"], "ids": " ".join(str(i) for i in f["ids"])}
            for f in flags]


def test_dashboard_fallbacks_anomalies():
    """The page's fallbacks follow its selectors; its anomalies are `anomalies`' flags over its
    records, picked by the agent and date selectors, the other selectors said not to apply.
    Stores: tests/cli/stores/anomalies.jsonl (1#: one flag of most kinds, all on 2026-11-01,
    and retries) and fallback.jsonl (2#, 2026-11-20: router's routed call 2, worker's 6 after
    the failed 5, worker's 4 retrying 3)."""
    an_db, fb_db = mkstore("dash_an", "anomalies"), mkstore("dash_fb", "fallback")
    dbs = ["--db", an_db, "--db", fb_db]
    page = os.path.join(TMP, "fb_an.html")
    r = run("dashboard", *dbs, "-o", page)
    check(r.returncode == 0, "dashboard of the anomalies and fallback stores", r.stderr)
    an = loads(run("anomalies", *dbs, "--format", "json").stdout)
    flags = flag_rows(an["anomalies"])
    res, dom = dump_dom(page)
    got, want = page_fallbacks(dom), cli_fallbacks(dbs, [])
    check(got == want and want["totalFallbacks"] == "2" and want["fallbackCost"] == "0.0108" and
          want["pairs"] == [("openai/gpt-4o -> anthropic/claude-sonnet-4-5", "1", "2200",
                             "0.0063"),
                            ("openrouter/gpt-4o -> openrouter/claude-sonnet-4-5", "1", "1100",
                             "0.0045")],
          "dashboard fallbacks == fallbacks --format json", "%r\n%r" % (got, want))
    check(dom.lists["anomalies"] == flags and len(flags) == 7 and
          flags[0] == {"kind": "spike", "severity": "warning", "agent": "steady",
                       "from": "2026-11-01T08:00:00.000000Z",
                       "to": "2026-11-01T09:00:00.000000Z", "ids": "1#9"} and
          dom.attrs.get("anomaly-note", {}).get("data-listed") == "7" and
          "not recomputed for the selection" in res.stdout,
          "dashboard anomalies == anomalies --format json (every flag, in order, K#ID)",
          "%r\n%r" % (dom.lists["anomalies"], flags))
    # One agent: the page and the command agree; router has no anomaly.
    _, dom = dump_dom(page, "#agent=router")
    got, want = page_fallbacks(dom), cli_fallbacks(dbs, ["--agent", "router"])
    check(got == want and want["routed"] == "1" and want["totalFallbacks"] == "1" and
          dom.lists["anomalies"] == [],
          "dashboard #agent=router: fallbacks == fallbacks --agent router, no anomaly",
          "%r\n%r\n%r" % (got, want, dom.lists["anomalies"]))
    # The fallback calls among the selected calls, detected over all records: anthropic's call
    # 6 replaced openai's failed 5, which the provider selector leaves out. Anomalies ignore
    # the provider selector and say so.
    res, dom = dump_dom(page, "#provider=anthropic")
    got = page_fallbacks(dom)
    check(got == {"totalFallbacks": "1", "routed": "0", "afterFailure": "1", "retries": "0",
                  "fallbackTokens": "2200", "fallbackCost": "0.0063",
                  "pairs": [("openai/gpt-4o -> anthropic/claude-sonnet-4-5", "1", "2200",
                             "0.0063")]},
          "dashboard #provider=anthropic: the fallback call 6 of the failed openai call 5", got)
    check(dom.lists["anomalies"] == flags and
          "empty" in dom.attrs.get("anomaly-note", {}).get("class", "") and
          "(provider selected: ignored here)" in res.stdout,
          "dashboard #provider=anthropic: every flag, the selector said to be ignored",
          dom.attrs.get("anomaly-note"))
    # Dates: the fallbacks (2026-11-20) stay, every flag (2026-11-01) goes.
    _, dom = dump_dom(page, "#from=2026-11-02")
    got, want = page_fallbacks(dom), cli_fallbacks(dbs, ["--since", "2026-11-02"])
    check(got == want and want["totalFallbacks"] == "2" and want["retries"] == "1" and
          dom.lists["anomalies"] == [],
          "dashboard #from=2026-11-02: fallbacks == fallbacks --since, no flag",
          "%r\n%r\n%r" % (got, want, dom.lists["anomalies"]))
    _, dom = dump_dom(page, "#agent=steady&to=2026-11-01")
    check(dom.lists["anomalies"] == flags[:1] and page_fallbacks(dom)["totalFallbacks"] == "0"
          and dom.lists["fallbacks"] == [],
          "dashboard #agent=steady&to=2026-11-01: its spike only, no fallback",
          dom.lists["anomalies"])


def main():
    global TMP
    TMP = tempfile.mkdtemp(prefix="tokshim-follow-")
    try:
        for t in (test_tail_follow, test_fallback_of, test_stats_payloads, test_show_refs, test_prune_cli, test_export_jsonl_csv,
                  test_export_otlp, test_dashboard, test_dashboard_fallbacks_anomalies):
            try:
                t()
            except Exception as e:  # a crash of one test is a failure, not the end of the run
                import traceback
                check(False, t.__name__, traceback.format_exc())
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
