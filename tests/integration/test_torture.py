#!/usr/bin/python3
"""test_torture.py - the shim under allocation failure (curl's -t torture mode, issue 4).

build/tests/malloc_fail.so (tests/preload/malloc_fail.c), preloaded ahead of the shim, makes
the Nth allocation from the shim's side of the process fail (libtokshim.so's own calls and
those of liblmdb and libzstd, which only the shim uses there). A count run finds how many such
allocations one whole captured call makes, store opening included; then the same call runs
once for every N from 1 to that count with the Nth failing. Each time the agent's output and
exit status must be those of the run without the shim (so no crash either). The record may be
dropped, and is then counted as a drop in the store (unless no store could be made); when the
store has one, it is the same as without failures, or it carries an error, or
it is marked cut short (truncated) or lacks only the requested model, and then the store counts
the part it could not hold as out of memory. A record with estimated tokens on a body read whole
fails: when the providers' JSON reader runs out of memory the exchange is dropped and counted.

Two agents: curl (libcurl's hooks) and Python requests (OpenSSL's SSL_read_ex/SSL_write_ex),
each making one OpenAI chat call over TLS, streamed for requests.
"""
import json
import os
import shutil
import subprocess
import tempfile

import harness as h
from harness import expect, expect_eq, test

import provider_server as ps

OPENAI = "api.openai.com"
CHAT = "/v1/chat/completions"
FAILER = os.path.join(h.BUILD, "tests", "malloc_fail.so")
# What a record kept under a failed allocation must say as the run without failures does.
NOMEM = "dropped.capture.out_of_memory"
KEPT_SAME = ("provider", "model_requested", "model", "status", "stream", "input_tokens",
             "output_tokens", "total_tokens", "estimated", "error")


def setup():
    if not os.path.exists(FAILER):
        raise h.Failure("%s does not exist: build first (make unit-tests)" % FAILER)
    return h.setup_servers()


def counters(db):
    p = subprocess.run([h.CLI, "stats", "--db", db, "--format", "json"], env=h.clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    expect_eq(p.returncode, 0, "tokshim stats (%r)" % p.stderr[-300:])
    return json.loads(p.stdout)["counters"]


def shim_run(argv, db, fail=0, count_file=None):
    e = h.clean_env()
    e.update(LD_PRELOAD=FAILER + " " + h.SHIM, TOKSHIM_DB=db, TOKSHIM_AGENT="torture",
             TOKSHIM_MALLOC_FAIL=str(fail))
    if count_file:
        e["TOKSHIM_MALLOC_COUNT"] = count_file
    p = subprocess.run(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout, p.stderr


def torture(c, argv, body):
    """The count run, then every N; returns (allocations, runs whose record was the same as
    without failures, runs whose record was kept marked as cut short)."""
    base = h.run(argv)
    expect_eq(base.rc, 0, "exit status without the shim (%s)" % base.stderr[-300:])
    stream = json.loads(body).get("stream", False)
    d = tempfile.mkdtemp(prefix="tokshim-torture-")
    count_file = os.path.join(d, "count")
    rc, out, err = shim_run(argv, os.path.join(d, "count.mdb"), 0, count_file)
    expect_eq((rc, out), (base.rc, base.stdout), "the shim's run without failures (%r)" % err)
    recs = h.records(os.path.join(d, "count.mdb"))
    expect_eq(len(recs), 1, "records of the run without failures")
    ref = recs[0]
    if not stream:  # a stream's usage is the server's own (test_capture checks it)
        want = ps.expected_usage(CHAT, body.encode())
        for k in ("input_tokens", "output_tokens"):
            expect_eq(ref[k], want[k], "%s of the run without failures" % k)
    with open(count_file) as f:
        total = int(f.read())
    expect(total >= 10, "only %d allocations counted over a captured call" % total)
    kept = marked = nostore = 0
    for n in range(1, total + 1):
        db = os.path.join(d, "n%d.mdb" % n)
        rc, out, err = shim_run(argv, db, n)
        expect_eq((rc, out), (base.rc, base.stdout),
                  "agent with allocation %d of %d failing (stderr %r)" % (n, total, err[-300:]))
        # A store whose creation failed may be left empty (0 bytes): the next writer makes it.
        exists = os.path.exists(db) and os.path.getsize(db) > 0
        recs = h.records(db) if exists else []
        expect(len(recs) <= 1, "allocation %d failing: %d records" % (n, len(recs)))
        # No record: counted as a drop in the store, unless there is no store at all (the
        # shim's own start failed, or the store could not be made even on a second try).
        if not recs and exists:
            cnt = counters(db)
            expect(any(v > 0 for k, v in cnt.items() if k.startswith("dropped.")),
                   "allocation %d of %d failing: no record and no drop counted (%r)"
                   % (n, total, cnt))
        nostore += not exists
        for r in recs:
            got = {k: r[k] for k in KEPT_SAME}
            if got == {k: ref[k] for k in KEPT_SAME}:
                kept += 1
                continue
            # A part that could not be held: the record is kept with an error, or marked as
            # cut short (truncated), or without the request's model when the request body
            # could not be held (its tokens come from the response), counted as out of memory.
            # Estimated tokens on a record read whole are never the answer to a failed
            # allocation (the JSON reader's included): such an exchange is dropped and counted.
            cnt = counters(db)
            drops = sum(v for k, v in cnt.items() if k.startswith("dropped."))
            only_model = dict(got, model_requested=ref["model_requested"]) == \
                {k: ref[k] for k in KEPT_SAME}
            expect(r["error"] or ((r["truncated"] or only_model) and cnt.get(NOMEM) == 1),
                   "allocation %d of %d failing: record %r differs from %r, unmarked or "
                   "uncounted (%d drops)" % (n, total, got, {k: ref[k] for k in KEPT_SAME},
                                               drops))
            marked += 1
    shutil.rmtree(d, ignore_errors=True)
    return total, kept, marked, nostore


@test
def curl_every_allocation_fails_once(c):
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 7,
                       "messages": [{"role": "user", "content": "torture"}]})
    argv = h.curl_argv(c.servers, OPENAI, CHAT, h.write_temp(body.encode()),
                       ["Content-Type: application/json", "Authorization: Bearer sk-torture"])
    print("  curl: %d allocations, each failed once; records: %d whole, %d marked cut short; "
          "%d runs without a store" % torture(c, argv, body))


@test
def python_requests_stream_every_allocation_fails_once(c):
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 5, "stream": True,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "torture stream"}]})
    argv = h.pyagent_argv(c.servers, "requests", [{
        "url": c.servers.url(OPENAI, CHAT), "body": body, "stream": True,
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer sk-torture"}}])
    print("  requests: %d allocations, each failed once; records: %d whole, %d marked cut "
          "short; %d runs without a store" % torture(c, argv, body))


if __name__ == "__main__":
    h.main(setup, h.teardown_servers)
