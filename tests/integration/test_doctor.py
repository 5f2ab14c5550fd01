#!/usr/bin/python3
"""test_doctor.py - `tokshim doctor`: what it says of real commands, stores, budget files,
Ollama servers and proxy variables, line by line.

Commands: curl, Debian's python3 (OpenSSL through its _ssl module), node (OpenSSL inside the
executable), wget (GnuTLS), a static executable (/sbin/ldconfig), and a program carrying a
.go.buildinfo section, built here with gcc: there is no Go toolchain or Go program on this
machine, so this one stands for a Go binary in the only thing doctor reads of it. Library
paths in the expected lines come from ldd, the loader's own answer. Ollama: a fake server
(http.server on 127.0.0.1) answering /api/version and /api/tags with and without models, a
port where nothing listens, and a server that is not Ollama.
"""
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import expect_eq, test  # noqa: E402


# The store format this build writes (store/store.c, docs/record-format.md).
STORE_FORMAT = 3


class Ctx:
    pass


def setup():
    if not os.path.exists(h.CLI):
        raise h.Failure("%s does not exist: build first (make)" % h.CLI)
    c = Ctx()
    c.dir = tempfile.mkdtemp(prefix="tokshim-doctor-")
    return c


def teardown(c):
    if c:
        subprocess.run(["rm", "-rf", c.dir])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def doctor(args, env=None):
    e = h.clean_env()
    e.pop("OLLAMA_HOST", None)
    e.pop("NO_PROXY", None)
    e.pop("TOKSHIM_ALERTS", None)
    e.update(env or {})
    p = subprocess.run([h.CLI, "doctor"] + args, env=e, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout.decode().splitlines(), p.stderr.decode()


def ldd_path(binary, prefix):
    out = subprocess.run(["ldd", binary], stdout=subprocess.PIPE).stdout.decode()
    for line in out.splitlines():
        name = line.strip()
        if name.startswith(prefix):
            return name.split("=> ")[1].split(" (")[0]
    return None


class FakeOllama(http.server.BaseHTTPRequestHandler):
    models = []
    version = "0.9.6"

    def do_GET(self):
        if self.path == "/api/version" and self.version:
            body = json.dumps({"version": self.version})
        elif self.path == "/api/tags":
            body = json.dumps({"models": [{"name": m, "size": 1} for m in self.models]})
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def serve(models, version="0.9.6"):
    handler = type("H", (FakeOllama,), {"models": models, "version": version})
    srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def tail_lines(c, ollama_line, proxy="proxy: no proxy variable captures localhost"):
    return ["store '%s/none.mdb': not there yet: made by the first record" % c.dir,
            "budgets: TOKSHIM_BUDGETS not set: no budget is enforced",
            "alerts: TOKSHIM_ALERTS not set: no alert is delivered", ollama_line, proxy]


def command_lines(c, cmd, port):
    rc, lines, err = doctor(["--db", c.dir + "/none.mdb", "--ollama", "127.0.0.1:%d" % port,
                             "--", cmd])
    return rc, lines[:-5], lines[-5:], err


def check_command(c, cmd, want):
    port = free_port()
    rc, got, tail, err = command_lines(c, cmd, port)
    expect_eq(got, want, "doctor -- %s" % cmd)
    expect_eq(tail, tail_lines(c, "ollama 127.0.0.1:%d: not running (connection refused)"
                               % port), "doctor's other lines")
    expect_eq(rc, 1, "exit status (the Ollama asked for is not running)")


@test
def doctor_curl(c):
    exe = os.path.realpath("/usr/bin/curl")
    want = ["command '%s': dynamic executable" % exe,
            "  openssl: %s: seen (SSL_read/SSL_write hooks)" % ldd_path(exe, "libssl.so")]
    if ldd_path(exe, "libgnutls.so"):
        want.append("  gnutls: %s: seen (gnutls_record_send/recv hooks)"
                    % ldd_path(exe, "libgnutls.so"))
    want.append("  libcurl: %s: seen (libcurl hooks, HTTP/2 included)"
                % ldd_path(exe, "libcurl.so"))
    check_command(c, "curl", want)


@test
def doctor_python3(c):
    exe = os.path.realpath("/usr/bin/python3")
    mod = subprocess.run([h.PYTHON, "-c", "import _ssl; print(_ssl.__file__)"],
                         stdout=subprocess.PIPE).stdout.decode().strip()
    mod = os.path.realpath(mod)
    check_command(c, "/usr/bin/python3", [
        "command '%s': dynamic executable" % exe,
        "  openssl: %s → %s: seen (SSL_read/SSL_write hooks)" % (mod, ldd_path(mod, "libssl.so"))])


@test
def doctor_node(c):
    exe = os.path.realpath(subprocess.run(["sh", "-c", "command -v node"],
                                          stdout=subprocess.PIPE).stdout.decode().strip())
    check_command(c, "node", [
        "command '%s': dynamic executable" % exe,
        "  openssl: static, inside node: seen (TLS key log through NODE_OPTIONS, set by the "
        "shim; TOKSHIM_NODE_KEYLOG=off turns it off)"])


@test
def doctor_wget(c):
    exe = os.path.realpath("/usr/bin/wget")
    check_command(c, "/usr/bin/wget", [
        "command '%s': dynamic executable" % exe,
        "  gnutls: %s: seen (gnutls_record_send/recv hooks)" % ldd_path(exe, "libgnutls.so")])


@test
def doctor_static_executable(c):
    check_command(c, "/sbin/ldconfig", [
        "command '%s': static executable" % os.path.realpath("/sbin/ldconfig"),
        "  static: no preload runs in a static executable: nothing seen"])


@test
def doctor_go_program(c):
    src = os.path.join(c.dir, "gobin.c")
    exe = os.path.join(c.dir, "gobin")
    with open(src, "w") as f:
        f.write('__attribute__((section(".go.buildinfo"), used)) static const char bi[32] = '
                '"\\xff Go buildinf:";\nint main(void) { return bi[0] == 0; }\n')
    subprocess.run(["gcc", "-o", exe, src], check=True)
    check_command(c, exe, [
        "command '%s': dynamic executable (Go)" % exe,
        "  go: Go's own crypto/tls and system calls: not seen (no preload reaches them); send "
        "its calls through a local proxy that tokshim runs under"])


@test
def doctor_script_and_missing_command(c):
    script = os.path.join(c.dir, "agent.sh")
    with open(script, "w") as f:
        f.write("#!/usr/bin/env wget\n")
    os.chmod(script, 0o755)
    exe = os.path.realpath("/usr/bin/wget")
    check_command(c, script, [
        "command '%s': a script run by '%s'" % (script, exe),
        "command '%s': dynamic executable" % exe,
        "  gnutls: %s: seen (gnutls_record_send/recv hooks)" % ldd_path(exe, "libgnutls.so")])
    port = free_port()
    rc, got, _, _ = command_lines(c, "no-such-command-xyz", port)
    expect_eq(got, ["command 'no-such-command-xyz': not found"], "doctor of a missing command")
    expect_eq(rc, 1, "exit status")


@test
def doctor_ollama_with_models(c):
    srv = serve(["llama3.2:1b", "qwen2.5:0.5b"])
    try:
        port = srv.server_address[1]
        rc, lines, _ = doctor(["--db", c.dir + "/none.mdb"],
                              {"OLLAMA_HOST": "127.0.0.1:%d" % port})
        expect_eq(lines, tail_lines(c, "ollama 127.0.0.1:%d: version 0.9.6, 2 models: "
                                       "llama3.2:1b, qwen2.5:0.5b" % port), "doctor")
        expect_eq(rc, 0, "exit status")
    finally:
        srv.shutdown()


@test
def doctor_ollama_without_models(c):
    srv = serve([])
    try:
        port = srv.server_address[1]
        rc, lines, _ = doctor(["--db", c.dir + "/none.mdb", "--ollama",
                               "http://localhost:%d/" % port])
        expect_eq(lines, tail_lines(c, "ollama localhost:%d: version 0.9.6, no models pulled "
                                       "(ollama pull MODEL)" % port), "doctor")
        expect_eq(rc, 1, "exit status")
    finally:
        srv.shutdown()


@test
def doctor_ollama_not_running_and_not_ollama(c):
    port = free_port()
    rc, lines, _ = doctor(["--db", c.dir + "/none.mdb"], {"OLLAMA_HOST": "127.0.0.1:%d" % port})
    expect_eq(lines, tail_lines(c, "ollama 127.0.0.1:%d: not running (connection refused); is "
                                   "OLLAMA_HOST right?" % port), "doctor, nothing listening")
    expect_eq(rc, 1, "exit status")
    srv = serve([], version=None)
    try:
        port = srv.server_address[1]
        rc, lines, _ = doctor(["--db", c.dir + "/none.mdb", "--ollama", "127.0.0.1:%d" % port])
        expect_eq(lines, tail_lines(c, "ollama 127.0.0.1:%d: something answers that is not "
                                       "Ollama (HTTP 404 on /api/version): wrong address?"
                                       % port), "doctor, another server")
        expect_eq(rc, 1, "exit status")
    finally:
        srv.shutdown()


@test
def doctor_proxy_captures_localhost(c):
    port = free_port()
    rc, lines, _ = doctor(["--db", c.dir + "/none.mdb", "--ollama", "127.0.0.1:%d" % port],
                          {"HTTPS_PROXY": "http://proxy.invalid:3128"})
    expect_eq(lines[-1], "proxy: HTTPS_PROXY is set and NO_PROXY does not name localhost and "
              "127.0.0.1: calls to local model servers may go through the proxy (set "
              "NO_PROXY=localhost,127.0.0.1)", "doctor's proxy line")
    expect_eq(rc, 1, "exit status")
    rc, lines, _ = doctor(["--db", c.dir + "/none.mdb", "--ollama", "127.0.0.1:%d" % port],
                          {"HTTPS_PROXY": "http://proxy.invalid:3128",
                           "NO_PROXY": "localhost,127.0.0.1"})
    expect_eq(lines[-1], "proxy: no proxy variable captures localhost", "with NO_PROXY")


@test
def doctor_store_and_budgets(c):
    db = os.path.join(c.dir, "s", "usage.mdb")
    good = os.path.join(c.dir, "budgets.json")
    bad = os.path.join(c.dir, "bad.json")
    with open(good, "w") as f:
        json.dump({"budgets": [{"name": "d", "scope": "system", "window": "daily",
                                "max_tokens": 1000}]}, f)
    with open(bad, "w") as f:
        f.write('{"budgets": [{"name": "d", "scope": "system", "window": "hourly",\n'
                '"max_tokens": 1000}]}\n')
    port = free_port()
    # A real store with two records (tests/tools/mkstore).
    os.makedirs(os.path.dirname(db))
    p = subprocess.run([os.path.join(h.BUILD, "tests", "mkstore"), db],
                       input=b'{"model": "gpt-4o", "input_tokens": 3}\n'
                             b'{"model": "gpt-4o", "input_tokens": 4}\n',
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    expect_eq(p.returncode, 0, "mkstore (%s)" % p.stderr.decode())
    rc, lines, _ = doctor(["--db", db, "--ollama", "127.0.0.1:%d" % port],
                          {"TOKSHIM_BUDGETS": good})
    expect_eq(lines[:2], ["store '%s': format %d (current), 2 records, writable"
                          % (db, STORE_FORMAT),
                          "budgets '%s': 1 budget, valid" % good], "doctor, good budgets")
    rc, lines, _ = doctor(["--db", db, "--ollama", "127.0.0.1:%d" % port],
                          {"TOKSHIM_BUDGETS": bad})
    lint = subprocess.run([h.CLI, "budget", "lint", bad], stderr=subprocess.PIPE,
                          stdout=subprocess.PIPE).stderr.decode().strip()
    expect_eq(lines[1], "budgets: " + lint.split("tokshim: ", 1)[1], "doctor, bad budgets")
    expect_eq(rc, 1, "exit status")
    alerts = os.path.join(c.dir, "alerts.json")
    with open(alerts, "w") as f:
        f.write('{"channels": [{"type": "log"}]}\n')
    rc, lines, _ = doctor(["--db", db, "--ollama", "127.0.0.1:%d" % port],
                          {"TOKSHIM_ALERTS": alerts})
    lint = subprocess.run([h.CLI, "alerts", "lint", alerts], stderr=subprocess.PIPE,
                          stdout=subprocess.PIPE).stderr.decode().strip()
    expect_eq(lines[2], "alerts: " + lint.split("tokshim: ", 1)[1], "doctor, bad alerts file")
    with open(alerts, "w") as f:
        json.dump({"channels": [{"name": "ops", "type": "log",
                                 "path": os.path.join(c.dir, "alerts.log")}]}, f)
    rc, lines, _ = doctor(["--db", db, "--ollama", "127.0.0.1:%d" % port],
                          {"TOKSHIM_ALERTS": alerts})
    expect_eq(lines[2], "alerts '%s': 1 channel, valid" % alerts, "doctor, good alerts file")
    os.makedirs(os.path.join(c.dir, "ro"))
    os.chmod(os.path.join(c.dir, "ro"), 0o500)
    rc, lines, _ = doctor(["--db", c.dir + "/ro/x/usage.mdb", "--ollama", "127.0.0.1:%d" % port])
    want = "store '%s/ro/x/usage.mdb': cannot be created: '%s/ro' is not writable" % (c.dir, c.dir)
    if os.geteuid() == 0:
        want = "store '%s/ro/x/usage.mdb': not there yet: made by the first record" % c.dir
    expect_eq(lines[0], want, "doctor, store in a folder that is not writable")


if __name__ == "__main__":
    h.main(setup, teardown)
