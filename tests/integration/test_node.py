#!/usr/bin/python3
"""test_node.py - Node.js agents on the real `openai` and `@anthropic-ai/sdk` npm packages.

`node` links OpenSSL statically, so the SSL hooks never see its TLS: the shim has node preload
a small script of its own (`--require`, through NODE_OPTIONS, which the script then puts back as
it was) that hands each TLS secret to the shim as the handshake makes it; the shim decrypts the
records its socket hooks see (shim/nodetls.c, capture/tlsdec.c). Each test runs the agent
(clients/node/agent.js) without the shim, then under it, and asserts the same stdout (which
starts with NODE_OPTIONS as the agent sees it), the same stderr byte for byte, the same
requests at the server and the exact records. TLS 1.3 and 1.2 with each AEAD cipher are chosen
with NODE_OPTIONS (--tls-max-v1.2, --tls-cipher-list), the agent unchanged.

Setup installs the pinned SDKs (clients/node/package.json and package-lock.json) with
`npm ci` into $TOKSHIM_BUILD/node when they are not there yet: the npm registry is the only
place they come from.
"""
import base64
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import expect, expect_eq, test  # noqa: E402
import provider_server  # noqa: E402

NODE_SRC = os.path.join(h.HERE, "clients", "node")
NODE_DIR = os.path.join(h.BUILD, "node")
AGENT_JS = os.path.join(NODE_SRC, "agent.js")
H2AGENT_JS = os.path.join(NODE_SRC, "h2agent.js")
H2_SERVER = os.path.join(h.HERE, "servers", "h2_server.py")
AGENT = "node-agent"

# (sdk, model, prompt, max_tokens, stream): one call of each kind the SDKs make.
CALLS = [
    ("openai", "gpt-4o", "Say hi", 5, False),
    ("openai", "gpt-4o", "Say hi twice", 7, True),
    ("anthropic", "claude-sonnet-4-0", "Hello", 6, False),
    ("anthropic", "claude-sonnet-4-0", "Hello again", 4, True),
]


class Ctx:
    pass


def npm_install():
    """npm ci of the pinned SDKs into build/node, unless the same lock is installed there."""
    lock = os.path.join(NODE_SRC, "package-lock.json")
    have = os.path.join(NODE_DIR, "package-lock.json")
    if os.path.isdir(os.path.join(NODE_DIR, "node_modules", "openai")) and \
            os.path.exists(have) and filecmp.cmp(lock, have, shallow=False):
        return
    shutil.rmtree(NODE_DIR, ignore_errors=True)
    os.makedirs(NODE_DIR)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(NODE_SRC, f), NODE_DIR)
    p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", NODE_DIR],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if p.returncode != 0:
        raise h.Failure("npm ci failed: " + p.stdout.decode(errors="replace")[-800:])


def setup():
    for path in (h.SHIM, h.CLI):
        if not os.path.exists(path):
            raise h.Failure("%s does not exist: build first (make), or set TOKSHIM_BUILD" % path)
    npm_install()
    c = Ctx()
    c.servers = h.Servers().start()
    c.dir = tempfile.mkdtemp(prefix="tokshim-node-test-")
    return c


def teardown(c):
    if c:
        c.servers.stop()
        shutil.rmtree(c.dir, ignore_errors=True)


def agent_argv(c, calls, exit_at_once=False, busy_pool=0, headers=None):
    tls = c.servers.tls
    spec = {"exit": exit_at_once, "busy_pool": busy_pool, "headers": headers or {},
            "resolve": list(h.CLOUD_HOSTS),
            "openai": "https://api.openai.com:%d/v1" % tls,
            "anthropic": "https://api.anthropic.com:%d" % tls,
            "calls": [{"sdk": sdk, "model": model, "max_tokens": mt, "stream": stream,
                       "messages": [{"role": "user", "content": prompt}]}
                      for sdk, model, prompt, mt, stream in calls]}
    path = os.path.join(c.dir, "spec-%d.json" % len(os.listdir(c.dir)))
    with open(path, "w") as f:
        json.dump(spec, f)
    return ["node", AGENT_JS, path]


def node_env(c, node_options=None, extra=None):
    env = {"NODE_EXTRA_CA_CERTS": c.servers.ca,
           "TOKSHIM_NODE_MODULES": os.path.join(NODE_DIR, "node_modules")}
    if node_options:
        env["NODE_OPTIONS"] = node_options
    env.update(extra or {})
    return env


def want(calls, seen):
    """The records these calls must make, from the request bodies the server received."""
    expect_eq(len(seen), len(calls), "requests the server received")
    out = []
    for (sdk, model, _, _, stream), s in zip(calls, seen):
        body = base64.b64decode(s["body_b64"])
        path = s["target"]
        usage = provider_server.expected_usage(path, body)
        if sdk == "openai":
            out.append(h.want_record("openai", "chat.completions", model,
                                     provider_server.response_model(model), usage,
                                     host="api.openai.com", path=path, agent=AGENT,
                                     stream=stream))
        else:
            out.append(h.want_record("anthropic", "messages", model,
                                     provider_server.response_model(model), usage,
                                     host="api.anthropic.com", path=path, agent=AGENT,
                                     stream=stream))
    return out


def node_pid_masked(stderr):
    """stderr with node's "(node:PID)" prefixes made equal across runs."""
    return re.sub(rb"\(node:\d+\)", b"(node:PID)", stderr)


def run_pair(c, calls, node_options=None, via_cli=True, extra_env=None, argv=None,
             mask_pid=False, servers=None):
    """The agent without the shim, then with it: the same stdout (NODE_OPTIONS as the agent
    sees it first), the same stderr byte for byte (mask_pid: but for node's own "(node:PID)"
    prefix, which differs between any two runs) and the same requests at the server. Returns
    (records, shim run, requests seen)."""
    argv = argv or agent_argv(c, calls)
    servers = servers or c.servers
    env = node_env(c, node_options, extra_env)
    base = h.run(argv, env=env)
    seen0 = servers.requests_seen()
    expect_eq(base.rc, 0, "agent exit status without the shim (%s)" %
              (base.stdout + base.stderr).decode(errors="replace")[-400:])
    db = h.tmp_store()
    got = h.run(argv, shim=not via_cli, via_cli=via_cli, db=db, agent=AGENT, env=env)
    seen1 = servers.requests_seen()
    expect_eq(got.rc, 0, "agent exit status with the shim (%s)" %
              (got.stdout + got.stderr).decode(errors="replace")[-400:])
    expect_eq(got.stdout, base.stdout, "agent stdout with the shim (vs without)")
    expect_eq(got.stdout.split(b"\n")[0],
              b"node_options " + json.dumps(node_options).encode(),
              "NODE_OPTIONS as the agent sees it under the shim")
    if mask_pid:
        expect_eq(node_pid_masked(got.stderr), node_pid_masked(base.stderr),
                  "agent stderr with the shim (vs without; node's PID masked)")
    else:
        expect_eq(got.stderr, base.stderr, "agent stderr with the shim (vs without)")
    key = ("method", "target", "body_sha256", "body_len", "tls")
    expect_eq(sorted([s[k] for k in key] for s in seen1),
              sorted([s[k] for k in key] for s in seen0),
              "requests received by the server with the shim (vs without)")
    return h.records(db), got, seen1


def check_calls(c, calls, node_options=None, via_cli=True):
    recs, _, seen = run_pair(c, calls, node_options, via_cli)
    h.check(recs, want(calls, seen))


@test
def node_sdks_tls13_aes256_tokshim_run(c):
    """Node's default: TLS 1.3, TLS_AES_256_GCM_SHA384; every kind of call, `tokshim run`."""
    check_calls(c, CALLS)


@test
def node_sdks_tls13_aes128_ld_preload(c):
    check_calls(c, CALLS[:2], "--tls-cipher-list=TLS_AES_128_GCM_SHA256", via_cli=False)


@test
def node_sdks_tls13_chacha20(c):
    check_calls(c, CALLS[2:], "--tls-cipher-list=TLS_CHACHA20_POLY1305_SHA256")


@test
def node_sdks_tls12_aes128_gcm(c):
    check_calls(c, CALLS[:2], "--tls-max-v1.2 --tls-cipher-list=ECDHE-ECDSA-AES128-GCM-SHA256")


@test
def node_sdks_tls12_aes256_gcm(c):
    check_calls(c, CALLS[2:], "--tls-max-v1.2 --tls-cipher-list=ECDHE-ECDSA-AES256-GCM-SHA384")


@test
def node_http2_module_streams(c):
    """Node's own http2 module (http2.connect, ALPN h2) to servers/h2_server.py: three calls at
    once, two of them streams of one session. The socket hooks see the ciphertext, the
    decryptor the HTTP/2 frames, capture/h2.c one exchange per stream."""
    calls = [("openai", "gpt-4o", "Say hi over h2", 5, False),
             ("openai", "gpt-4o", "Stream over h2", 6, True),
             ("anthropic", "claude-sonnet-4-0", "Hello over h2", 4, True)]
    servers = h.Servers(H2_SERVER).start()
    try:
        spec = {"resolve": list(h.CLOUD_HOSTS), "calls": []}
        for sdk, model, prompt, max_tokens, stream in calls:
            body = {"model": model, "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": prompt}]}
            if sdk == "openai":
                host, path = "api.openai.com", "/v1/chat/completions"
                headers = {"content-type": "application/json", "authorization": "Bearer sk-h2"}
                if stream:
                    body.update(stream=True, stream_options={"include_usage": True})
            else:
                host, path = "api.anthropic.com", "/v1/messages"
                headers = {"content-type": "application/json", "x-api-key": "sk-ant-h2",
                           "anthropic-version": "2023-06-01"}
                if stream:
                    body["stream"] = True
            spec["calls"].append({"origin": "https://%s:%d" % (host, servers.tls), "path": path,
                                  "headers": headers, "body": json.dumps(body)})
        argv = ["node", H2AGENT_JS, h.write_temp(json.dumps(spec))]
        env = {"NODE_EXTRA_CA_CERTS": servers.ca}
        recs, got, seen = run_pair(c, calls, argv=argv, servers=servers, extra_env=env)
    finally:
        servers.stop()
    expect_eq(got.stdout.count(b" 200\n"), 3, "calls answered")
    conns = sorted({s["conn"] for s in seen})
    expect_eq(sorted((s["version"], conns.index(s["conn"]), s["stream_id"]) for s in seen),
              [("HTTP/2", 0, 1), ("HTTP/2", 0, 3), ("HTTP/2", 1, 1)],
              "streams and connections at the server")
    # the streams ran at once: the server's log is in the order they ended
    bodies = [call["body"] for call in spec["calls"]]
    seen.sort(key=lambda s: bodies.index(base64.b64decode(s["body_b64"]).decode()))
    key = lambda r: (r["model_requested"], r["stream"])  # noqa: E731
    h.check(sorted(recs, key=key), sorted(want(calls, seen), key=key))


@test
def node_sdks_tls12_chacha20(c):
    check_calls(c, CALLS[1:3], "--tls-max-v1.2 --tls-cipher-list=ECDHE-ECDSA-CHACHA20-POLY1305")


@test
def node_sdks_tls12_aes128_cbc_sha256(c):
    """A CBC suite node still offers by default (OpenSSL's list), forced as a server with
    nothing better would: AES-128-CBC, HMAC-SHA256, encrypt-then-MAC (OpenSSL's default)."""
    check_calls(c, CALLS[:2], "--tls-max-v1.2 --tls-cipher-list=ECDHE-ECDSA-AES128-SHA256")


@test
def node_sdks_tls12_aes256_cbc_sha(c):
    check_calls(c, CALLS[2:], "--tls-max-v1.2 --tls-cipher-list=ECDHE-ECDSA-AES256-SHA")


@test
def node_resumed_sessions(c):
    """The server closes after each answer, so each call opens a new connection, and undici
    resumes the TLS session of the one before (a ticket; in 1.2 no new master secret, in 1.3 a
    PSK): their key lines come from node all the same. TLS 1.3, then 1.2."""
    calls = CALLS[:1] * 2
    for opts in (None, "--tls-max-v1.2"):
        argv = agent_argv(c, calls, headers={"X-Test-Scenario": "close"})
        recs, _, seen = run_pair(c, calls, opts, argv=argv)
        expect_eq([s["tls_resumed"] for s in seen], [False, True],
                  "sessions resumed at the server (%s)" % opts)
        expect_eq(len({s["conn"] for s in seen}), 2, "connections (%s)" % opts)
        h.check(recs, want(calls, seen))


@test
def node_keylog_off_records_nothing(c):
    """TOKSHIM_NODE_KEYLOG=off: nothing decrypted, nothing recorded."""
    recs, _, _ = run_pair(c, CALLS[:1], extra_env={"TOKSHIM_NODE_KEYLOG": "off"})
    expect_eq(recs, [], "records with TOKSHIM_NODE_KEYLOG=off")


@test
def node_user_keylog_file_kept(c):
    """A key log file the user names in NODE_OPTIONS is written by node as without the shim
    (with the warning node prints for it, the user's own), and the calls are recorded."""
    path = os.path.join(c.dir, "user-keys.log")
    calls = CALLS[:1]
    recs, got, seen = run_pair(c, calls, "--tls-keylog=" + path, mask_pid=True)
    h.check(recs, want(calls, seen))
    expect(b"Using --tls-keylog" in got.stderr, "node's own warning for the user's key log: %r"
           % got.stderr[-300:])
    with open(path) as f:
        labels = sorted(set(line.split()[0] for line in f if line.strip()))
    expect_eq(labels, ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
                       "EXPORTER_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                       "SERVER_TRAFFIC_SECRET_0"], "labels in the user's key log")


@test
def node_user_options_kept(c):
    """NODE_OPTIONS of the user's, quotes and all, is what the agent sees under the shim."""
    calls = CALLS[2:3]
    recs, _, seen = run_pair(c, calls, '--max-old-space-size=256 --title="an agent"')
    h.check(recs, want(calls, seen))


@test
def node_exits_at_once_after_call(c):
    """An agent that calls process.exit() as soon as it has its reply loses no record: every
    secret reached the shim during the handshake, before the request was written. Node's
    thread pool is kept busy meanwhile (one thread, a long pbkdf2), where --tls-keylog's
    asynchronous writes would wait until after the exit; the replies are not compressed, since
    undici inflates on that pool too and would wait with them."""
    env = {"UV_THREADPOOL_SIZE": "1"}
    for calls, opts in ((CALLS[:1], None), (CALLS[3:], "--tls-max-v1.2")):
        argv = agent_argv(c, calls, exit_at_once=True, busy_pool=1000000,
                          headers={"X-Test-Encoding": "identity"})
        recs, _, seen = run_pair(c, calls, opts, argv=argv, extra_env=env)
        h.check(recs, want(calls, seen))


@test
def node_child_node_captured(c):
    """A node agent that runs another node twice: the children see NODE_OPTIONS as it was
    (unset), and the calls of both are recorded once each."""
    calls = CALLS[:1]
    child = agent_argv(c, calls)
    parent = ["node", "-e",
              "const [a, s] = process.argv.slice(1);"
              "for (let i = 0; i < 2; i++)"
              " require('child_process').execFileSync(process.execPath, [a, s],"
              " {stdio: 'inherit'})"] + child[1:]
    recs, got, seen = run_pair(c, calls * 2, argv=parent)
    expect_eq(got.stdout.count(b"node_options null\n"), 2, "children that saw no NODE_OPTIONS")
    h.check(recs, want(calls * 2, seen))


@test
def node_worker_thread_captured(c):
    """Calls made from a worker thread: node preloads the script there too."""
    calls = CALLS[:2]
    agent = agent_argv(c, calls)
    js = ("const { Worker } = require('worker_threads');"
          "new Worker(process.argv[1], { argv: [process.argv[2]] })")
    recs, _, seen = run_pair(c, calls, argv=["node", "-e", js] + agent[1:])
    h.check(recs, want(calls, seen))


@test
def node_keylog_folder_removed_at_exit(c):
    """The shim's 0700 folder (the FIFO, the preload script) is in XDG_RUNTIME_DIR while node
    runs, and gone after it."""
    run_dir = os.path.join(c.dir, "xdg")
    os.mkdir(run_dir, 0o700)
    js = ("const fs = require('fs'), d = process.argv[1];"
          "for (const e of fs.readdirSync(d)) console.log(e.replace(/-.*/, '-X'),"
          " (fs.statSync(d + '/' + e).mode & 0o777).toString(8), fs.readdirSync(d + '/' + e))")
    got = h.run(["node", "-e", js, run_dir], via_cli=True, db=h.tmp_store(),
                env={"XDG_RUNTIME_DIR": run_dir})
    expect_eq((got.rc, got.stderr), (0, b""), "node -e under the shim")
    expect_eq(got.stdout, b"tokshim-X 700 [ 'keylog', 'preload.cjs' ]\n",
              "the shim's folder in XDG_RUNTIME_DIR while node runs")
    expect_eq(os.listdir(run_dir), [], "left in XDG_RUNTIME_DIR after the run")
    calls = CALLS[:1]
    recs, _, seen = run_pair(c, calls, extra_env={"XDG_RUNTIME_DIR": run_dir})
    h.check(recs, want(calls, seen))
    expect_eq(os.listdir(run_dir), [], "left in XDG_RUNTIME_DIR after the agent")


@test
def node_permission_model_left_alone(c):
    """Under node's permission model the script would be refused (and node would die): the
    shim adds nothing there, and node runs as without it."""
    argv = ["node", "--experimental-permission", "-e",
            "console.log(JSON.stringify(process.env.NODE_OPTIONS ?? null))"]
    base = h.run(argv)
    got = h.run(argv, via_cli=True, db=h.tmp_store())
    expect_eq((got.rc, got.stdout), (0, b"null\n"), "node under the shim")
    expect_eq(node_pid_masked(got.stderr), node_pid_masked(base.stderr), "stderr (PID masked)")


@test
def non_node_process_keeps_node_options(c):
    """Only node gets the option: a shell under the shim sees NODE_OPTIONS as it was."""
    env = node_env(c, "--max-old-space-size=64")
    got = h.run(["sh", "-c", 'printf "%s" "$NODE_OPTIONS"'], via_cli=True, db=h.tmp_store(),
                env=env)
    expect_eq(got.stdout, b"--max-old-space-size=64", "NODE_OPTIONS seen by sh")


if __name__ == "__main__":
    h.main(setup, teardown)
