#!/usr/bin/python3
"""test_secrets.py - no secrets at rest (DESIGN.md rule 2).

A real client sends every secret form tokshim knows, each with its own distinctive value:
Authorization: Bearer, x-api-key, x-goog-api-key, api-key, Cookie, Proxy-Authorization, and
?key= in the URL; the server answers with a Set-Cookie. Then three places are searched for
every value: the store file's raw bytes, every payload decompressed (`tokshim show`, since
payloads are zstd-compressed and a raw scan of them proves nothing), and the shim's log
(TOKSHIM_LOG). None may hold one. The store's data and -lock files are 0600, and `tokshim
show` names what was redacted.
"""
import os
import stat
import subprocess

import harness as h
from harness import expect, expect_eq, test

from test_failopen import FaultServer, OPENAI, setup as fo_setup, teardown as fo_teardown

SECRETS = {
    "Authorization": "Bearer sk-proj-authz-secret-0001",
    "x-api-key": "sk-ant-xapikey-secret-0002",
    "x-goog-api-key": "AIza-goog-secret-0003",
    "api-key": "azure-apikey-secret-0004",
    "Cookie": "sid=cookie-secret-0005; theme=dark",
    "Proxy-Authorization": "Basic proxy-secret-0006",
}
QUERY_SECRET = "query-key-secret-0007"
SETCOOKIE_SECRET = "sc-setcookie-secret-77"
VALUES = [v.split(" ", 1)[-1].split("=", 1)[-1].split(";")[0] for v in SECRETS.values()] + \
    [QUERY_SECRET, SETCOOKIE_SECRET]

setup, teardown = fo_setup, fo_teardown


def curl(c, path):
    port = c.faults.ports["tls"]
    argv = ["curl", "-sS", "--http1.1", "--max-time", "30", "--cacert", c.certs["ca"],
            "--resolve", "%s:%d:127.0.0.1" % (OPENAI, port),
            "https://%s:%d%s" % (OPENAI, port, path), "-H", "X-Fault: secrets",
            "-H", "Content-Type: application/json",
            "--data-binary", '{"model":"gpt-4o-mini","messages":[]}']
    for k, v in SECRETS.items():
        argv += ["-H", "%s: %s" % (k, v)]
    return argv


def scan(blob, where):
    for s in VALUES:
        expect(s.encode() not in blob, "secret %r found in %s" % (s, where))


@test
def every_secret_form_redacted(c):
    db = h.tmp_store()
    log = db + ".log"
    path = "/v1/chat/completions?key=%s&alt=sse" % QUERY_SECRET
    base = h.run(curl(c, path))
    got = h.run(curl(c, path), shim=True, db=db, agent="secrets",
                env={"TOKSHIM_LOG": log, "TOKSHIM_CAPTURE": "full"})
    expect_eq((got.rc, got.stdout), (base.rc, base.stdout), "(exit, stdout) with the shim")
    recs = h.records(db)
    expect_eq([(r["status"], r["input_tokens"], r["output_tokens"]) for r in recs],
              [(200, 11, 7)], "records")
    expect_eq(recs[0]["path"], "/v1/chat/completions?key=[REDACTED]&alt=sse", "record path")
    for f in (db, db + "-lock"):
        expect_eq(oct(stat.S_IMODE(os.stat(f).st_mode)), oct(0o600), f + " mode")
        with open(f, "rb") as fh:
            scan(fh.read(), f)
    p = subprocess.run([h.CLI, "show", "--db", db, str(recs[0]["id"])], env=h.clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    expect_eq(p.returncode, 0, "show exit (%r)" % p.stderr)
    scan(p.stdout, "`tokshim show` (the decompressed payload)")
    # The payload was really stored and decompressed: its heads are in the output.
    for line in (b"x-goog-api-key: [REDACTED]", b"Proxy-Authorization: [REDACTED]",
                 b"Set-Cookie: [REDACTED]", b"?key=[REDACTED]&alt=sse"):
        expect(line in p.stdout, "show lacks %r: %r" % (line, p.stdout[:800]))
    expect(b"request head (redacted: key=, authorization, x-api-key, x-goog-api-key, api-key, "
           b"cookie, proxy-authorization)" in p.stdout, "show's redaction note: %r" %
           p.stdout[:1200])
    expect(b"response head (redacted: set-cookie)" in p.stdout, "response redaction note")
    # The log has lines only when something goes wrong: a run with an unusable store and a
    # malformed answer writes some, with the same secrets in flight.
    blocker = db + ".file"
    open(blocker, "w").close()
    argv = [a.replace("X-Fault: secrets", "X-Fault: malformed_head") for a in curl(c, path)]
    h.run(argv, shim=True, db=os.path.join(blocker, "usage.mdb"), agent="secrets",
          env={"TOKSHIM_LOG": log})
    with open(log, "rb") as fh:
        text = fh.read()
    expect(b"cannot open store" in text and b"capture gave up" in text, "log: %r" % text)
    scan(text, "the shim's log")


@test
def a_secret_in_every_capture_mode(c):
    """meta keeps only the heads, off only the record: still no secret anywhere."""
    for mode in ("meta", "off"):
        db = h.tmp_store()
        r = h.run(curl(c, "/v1/chat/completions?key=" + QUERY_SECRET), shim=True, db=db,
                  agent="secrets", env={"TOKSHIM_CAPTURE": mode})
        expect_eq(r.rc, 0, mode + " run")
        with open(db, "rb") as fh:
            scan(fh.read(), mode + " store file")
        p = subprocess.run([h.CLI, "show", "--db", db, "1"], env=h.clean_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        expect_eq(p.returncode, 0, mode + " show")
        scan(p.stdout, mode + " show")


if __name__ == "__main__":
    h.main(setup, teardown)
