#!/usr/bin/python3
"""test_lossless.py - nothing committed is lost (DESIGN.md rule 3).

Many writers into one store (16 processes x 200 calls, and 8 threads x 200 calls in one
process, each over its own keep-alive connection): the exact record count and token sums.
Children forked without exec (multiprocessing, fork start method) after the parent has opened
the store: their calls are recorded. A writer killed with SIGKILL at random moments, 100 times:
the store opens, `tokshim verify` passes, and every call the writer had finished is there.

The agent is Python's http.client on a keep-alive connection to provider_server's plain port
(Ollama's /api/chat, not streamed): the usage of each call follows expected_usage().
"""
import json
import os
import random
import signal
import subprocess
import time

import harness as h
from harness import expect, expect_eq, test

import provider_server as ps

AGENT = "lossless"

# One worker: n calls over one keep-alive connection; prints "done TAG I" after each response
# has been read whole. The body of call I of worker TAG is body(TAG, I) below.
WORKER = r'''
import http.client, json, sys
def body(tag, i):
    return json.dumps({"model": "llama3.2", "stream": False, "options": {"num_predict": 1 + i % 9},
                       "messages": [{"role": "user", "content": "%s call %d" % (tag, i)}]})
def work(port, tag, n, out):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(n):
        c.request("POST", "/api/chat", body=body(tag, i), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit("status %d" % r.status)
        out.write("done %s %d\n" % (tag, i))
        out.flush()
    c.close()
'''


def body(tag, i):
    return json.dumps({"model": "llama3.2", "stream": False, "options": {"num_predict": 1 + i % 9},
                       "messages": [{"role": "user", "content": "%s call %d" % (tag, i)}]})


def usage_sum(tags, n):
    tot = {"input_tokens": 0, "output_tokens": 0}
    for t in tags:
        for i in range(n):
            u = ps.expected_usage("/api/chat", body(t, i).encode())
            tot["input_tokens"] += u["input_tokens"]
            tot["output_tokens"] += u["output_tokens"]
    return tot


def shim_env(db, **extra):
    e = h.clean_env()
    e.update(LD_PRELOAD=h.SHIM, TOKSHIM_DB=db, TOKSHIM_AGENT=AGENT)
    e.update(extra)
    return e


def sums(recs):
    return {"input_tokens": sum(r["input_tokens"] for r in recs),
            "output_tokens": sum(r["output_tokens"] for r in recs)}


def verify(db):
    p = subprocess.run([h.CLI, "verify", "--db", db], env=h.clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    expect_eq((p.returncode, p.stderr), (0, b""), "tokshim verify (stdout %r)" % p.stdout[-600:])


class Ctx:
    pass


def setup():
    c = Ctx()
    c.servers = h.Servers().start()
    return c


def teardown(c):
    if c:
        c.servers.stop()


@test
def many_processes_and_threads(c):
    db = h.tmp_store()
    n, nproc, nthr = 200, 16, 8
    port = c.servers.plain
    proc_code = WORKER + "import sys\nwork(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.stdout)\n"
    thr_code = WORKER + r'''
import io, sys, threading
outs = [io.StringIO() for _ in range(int(sys.argv[3]))]
ts = [threading.Thread(target=work, args=(int(sys.argv[1]), "t%d" % k, int(sys.argv[2]), outs[k]))
      for k in range(len(outs))]
[t.start() for t in ts]
[t.join() for t in ts]
sys.stdout.write("".join(o.getvalue() for o in outs))
'''
    t0 = time.time()
    procs = [subprocess.Popen([h.PYTHON, "-c", proc_code, str(port), "p%d" % k, str(n)],
                              env=shim_env(db), stdout=subprocess.PIPE)
             for k in range(nproc)]
    procs.append(subprocess.Popen([h.PYTHON, "-c", thr_code, str(port), str(n), str(nthr)],
                                  env=shim_env(db), stdout=subprocess.PIPE))
    lines = 0
    for p in procs:
        out, _ = p.communicate(timeout=300)
        expect_eq(p.returncode, 0, "worker exit")
        lines += out.count(b"done ")
    took = time.time() - t0
    expect_eq(lines, (nproc + nthr) * n, "calls completed")
    recs = h.records(db)
    expect_eq(len(recs), (nproc + nthr) * n, "records")
    tags = ["p%d" % k for k in range(nproc)] + ["t%d" % k for k in range(nthr)]
    expect_eq(sums(recs), usage_sum(tags, n), "token sums")
    expect_eq(sorted(r["id"] for r in recs), list(range(1, len(recs) + 1)), "ids 1..N")
    verify(db)
    print("  %d calls from %d processes and %d threads in %.1fs" %
          (len(recs), nproc, nthr, took))
    expect(took < 60, "took %.1fs" % took)


@test
def fork_without_exec(c):
    """The parent calls (opening the store), then forks 4 children that call 5 times each."""
    db = h.tmp_store()
    code = WORKER + r'''
import multiprocessing, sys
port = int(sys.argv[1])
def child(k):
    work(port, "child%d" % k, 5, sys.stdout)
if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    work(port, "parent", 1, sys.stdout)
    ps = [multiprocessing.Process(target=child, args=(k,)) for k in range(4)]
    [p.start() for p in ps]
    [p.join() for p in ps]
    sys.exit(max(p.exitcode for p in ps))
'''
    r = subprocess.run([h.PYTHON, "-c", code, str(c.servers.plain)], env=shim_env(db),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    expect_eq(r.returncode, 0, "exit (%r)" % r.stderr[-300:])
    expect_eq(r.stdout.count(b"done "), 21, "calls")
    recs = h.records(db)
    expect_eq(len(recs), 21, "records")
    expect_eq(len({x["pid"] for x in recs}), 5, "distinct pids (parent and 4 children)")
    tags = ["parent"] + ["child%d" % k for k in range(4)]
    expect_eq(sums(recs), {k: sum(usage_sum([t], 1 if t == "parent" else 5)[k] for t in tags)
                           for k in ("input_tokens", "output_tokens")}, "token sums")
    verify(db)


@test
def kill9_at_random_moments(c):
    """100 writers killed with SIGKILL after a random 0-250 ms: each finished call is there."""
    db = h.tmp_store()
    rnd = random.Random(4)
    code = WORKER + "import sys\nwork(int(sys.argv[1]), 'k', 100000, sys.stdout)\n"
    t0 = time.time()
    done = []
    for run in range(100):
        p = subprocess.Popen([h.PYTHON, "-c", code, str(c.servers.plain)],
                             env=shim_env(db, TOKSHIM_SESSION="run-%d" % run),
                             stdout=subprocess.PIPE)
        time.sleep(rnd.uniform(0, 0.25))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate(timeout=30)
        done.append(out.count(b"\n"))  # whole lines only: a cut line is not a finished call
    verify(db)
    recs = h.records(db)
    got = [0] * 100
    for r in recs:
        got[int(r["session"].split("-")[1])] += 1
    for run in range(100):
        # A record may be committed before its line was printed: at most one more.
        expect(done[run] <= got[run] <= done[run] + 1,
               "run %d: %d calls finished, %d records" % (run, done[run], got[run]))
    total = len(recs)
    expect_eq(sorted(r["id"] for r in recs), list(range(1, total + 1)), "ids 1..N")
    print("  100 killed writers, %d records, %.1fs" % (total, time.time() - t0))


if __name__ == "__main__":
    h.main(setup, teardown)
