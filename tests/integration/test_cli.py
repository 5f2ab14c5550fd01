#!/usr/bin/python3
"""Data-driven tests of the tokshim CLI, in the manner of jq's jq.test.

Every tests/cli/*.test file holds cases separated by blank lines. A case is:

    # comments
    $ tokshim records --db @basic --format jsonl      the command (split like a shell would)
    env KEY=VALUE                                     extra environment (repeatable)
    ? 2                                               expected exit status (default 0)
    > line                                            stdout, exactly (all '>' lines together)
    crlf                                              the '>' lines end with CRLF (CSV), not LF
    ! line                                            stderr, exactly (all '!' lines together)
    ~ regex                                           some stdout line matches (re.search)
    no regex                                          no stdout line matches
    !~ regex                                          some stderr line matches
    lines N                                           stdout has exactly N lines
    width N                                           no stdout line is wider than N characters
    json {...}                                        stdout is one JSON value containing this
    jsonl [{...}, ...]                                stdout is one JSON value per line, as many
                                                      as listed, each containing its element

"Containing" means: objects have at least the listed keys with matching values, arrays have
the same length and matching elements, numbers are equal as decimals (so 0.00725 is checked
to the pico-dollar, never through a float), and true/false/null are not numbers. A json or
jsonl value may continue on the following lines of its case.

In a command or env value, @NAME is the path of a store built from tests/cli/stores/NAME.jsonl
by build/tests/mkstore; there and in '>' and '!' lines, %tmp is a scratch folder (the
command's working folder), %build the build folder and %cases the tests/cli folder. The command runs in a
clean environment: HOME is a scratch folder and no TOKSHIM_* variable is set.

A few cases need files arranged around the binary (tokshim run finds libtokshim.so next to
itself); they are written in Python below. The last line printed is "N passed, N failed".
"""

import decimal
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TOKSHIM_BUILD") or os.path.join(TOP, "build")
TOKSHIM = os.path.join(BUILD, "tokshim")
MKSTORE = os.path.join(BUILD, "tests", "mkstore")
CASES = os.path.join(TOP, "tests", "cli")

passed = 0
failed = 0


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s" % name)
        for line in detail.rstrip("\n").split("\n"):
            print("    " + line)


def loads(text):
    return json.loads(text, parse_float=decimal.Decimal)


def contains(want, got, path="$"):
    """Returns None when got contains want, else a description of the first difference."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return "%s: want an object, got %r" % (path, got)
        for k, v in want.items():
            if k not in got:
                return "%s: missing key %r" % (path, k)
            d = contains(v, got[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return "%s: want %d elements, got %r" % (path, len(want), got)
        for i, (w, g) in enumerate(zip(want, got)):
            d = contains(w, g, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    # bool is an int in Python: compare types first so true never equals 1.
    if isinstance(want, bool) or isinstance(got, bool) or want is None or got is None:
        ok = type(want) is type(got) and want == got
    elif isinstance(want, (int, decimal.Decimal)):
        ok = isinstance(got, (int, decimal.Decimal)) and not isinstance(got, bool) and \
            decimal.Decimal(want) == decimal.Decimal(got)
    else:
        ok = want == got
    return None if ok else "%s: want %r, got %r" % (path, want, got)


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="tokshim-cli-")
        self.home = os.path.join(self.tmp, "home")
        os.mkdir(self.home)
        self.stores = {}

    def store(self, name):
        if name not in self.stores:
            src = os.path.join(CASES, "stores", name + ".jsonl")
            dst = os.path.join(self.tmp, name + ".mdb")
            r = subprocess.run([MKSTORE, dst, src], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("mkstore %s: %s" % (name, r.stderr.strip()))
            self.stores[name] = dst
        return self.stores[name]

    def expand_paths(self, text):
        return text.replace("%tmp", self.tmp).replace("%build", BUILD).replace("%cases", CASES)

    def expand(self, word):
        word = self.expand_paths(word)
        return re.sub(r"@([A-Za-z0-9_]+)", lambda m: self.store(m.group(1)), word)

    def base_environ(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TOKSHIM_") and k not in ("XDG_DATA_HOME", "NO_COLOR",
                                                             "LD_PRELOAD")}
        env["HOME"] = self.home
        env["LC_ALL"] = "C.UTF-8"
        # ASan builds: a leak report would change stderr and the exit status.
        # A sanitized shim preloaded into an unsanitized command must not abort it.
        env["ASAN_OPTIONS"] = "detect_leaks=1:verify_asan_link_order=0"
        return env


def parse_cases(path):
    """Yields (line number, list of lines) for each blank-line-separated case."""
    block, start = [], 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.strip() == "":
                if block:
                    yield start, block
                block = []
                continue
            if not block:
                start = n
            block.append(line)
    if block:
        yield start, block


def run_case(env, path, lineno, lines):
    name = "%s:%d" % (os.path.relpath(path, TOP), lineno)
    cmd = None
    extra_env = {}
    want_status = 0
    out_lines, err_lines, out_res, err_res, out_nos = None, None, [], [], []
    want_count = None
    max_width = None
    eol = "\n"
    json_text, json_kind = None, None
    for line in lines:
        if json_kind and not re.match(r"^(\$ |env |\? |> |>$|! |!$|~ |!~ |no |crlf$|lines |width |json |jsonl |#)", line):
            json_text += "\n" + line
            continue
        if line.startswith("#"):
            continue
        if line.startswith("$ "):
            cmd = line[2:]
            name += " " + cmd
        elif line.startswith("env "):
            k, _, v = line[4:].partition("=")
            extra_env[k] = v
        elif line.startswith("? "):
            want_status = int(line[2:])
        elif line == ">" or line.startswith("> "):
            out_lines = (out_lines or []) + [line[2:]]
        elif line == "!" or line.startswith("! "):
            err_lines = (err_lines or []) + [line[2:]]
        elif line.startswith("~ "):
            out_res.append(line[2:])
        elif line.startswith("!~ "):
            err_res.append(line[3:])
        elif line.startswith("no "):
            out_nos.append(line[3:])
        elif line == "crlf":
            eol = "\r\n"
        elif line.startswith("lines "):
            want_count = int(line[6:])
        elif line.startswith("width "):
            max_width = int(line[6:])
        elif line.startswith("json ") or line.startswith("jsonl "):
            json_kind, _, json_text = line.partition(" ")
        else:
            report(False, name, "cannot read this line of the case: %r" % line)
            return
    if cmd is None:
        report(False, name, "a case without a '$ command' line")
        return
    try:
        argv = [env.expand(w) for w in shlex.split(cmd)]
        environ = env.base_environ()
        for k, v in extra_env.items():
            environ[k] = env.expand(v)
    except RuntimeError as e:
        report(False, name, str(e))
        return
    if argv and argv[0] == "tokshim":
        argv[0] = TOKSHIM
    r = subprocess.run(argv, capture_output=True, env=environ, cwd=env.tmp, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    problems = []
    if r.returncode != want_status:
        problems.append("exit status %d, want %d" % (r.returncode, want_status))
    if out_lines is not None:
        out_lines = [env.expand_paths(l) for l in out_lines]
    if err_lines is not None:
        err_lines = [env.expand_paths(l) for l in err_lines]
    if out_lines is not None and out != eol.join(out_lines) + eol:
        want_out, got_out = "\n".join(out_lines), out
        if eol != "\n":  # a CR is seen only in a repr
            want_out, got_out = repr(eol.join(out_lines) + eol), repr(out)
        problems.append("stdout differs:\n--- want\n%s\n--- got\n%s" % (want_out, got_out))
    if err_lines is not None and err != "\n".join(err_lines) + "\n":
        problems.append("stderr differs:\n--- want\n%s\n--- got\n%s" % ("\n".join(err_lines), err))
    for rx in out_res:
        if not any(re.search(rx, l) for l in out.split("\n")):
            problems.append("no stdout line matches %r" % rx)
    for rx in out_nos:
        hits = [l for l in out.split("\n") if re.search(rx, l)]
        if hits:
            problems.append("a stdout line matches %r: %r" % (rx, hits[0]))
    for rx in err_res:
        if not any(re.search(rx, l) for l in err.split("\n")):
            problems.append("no stderr line matches %r" % rx)
    if want_count is not None and len(out.splitlines()) != want_count:
        problems.append("%d stdout lines, want %d" % (len(out.splitlines()), want_count))
    if max_width is not None:
        wide = [l for l in out.splitlines() if len(l) > max_width]
        if wide:
            problems.append("%d lines wider than %d: %r" % (len(wide), max_width, wide[0]))
    if json_kind:
        try:
            want = loads(json_text)
            if json_kind == "json":
                got = loads(out)
            else:
                got = [loads(l) for l in out.splitlines()]
            d = contains(want, got)
            if d:
                problems.append("json: " + d)
        except ValueError as e:
            problems.append("json: %s\n%s" % (e, out[:2000]))
    if problems and r.returncode != want_status and err:
        problems.append("stderr:\n" + err[:2000])
    report(not problems, name, "\n".join(problems))


def python_cases(env):
    """Cases that arrange files around the binary: `tokshim run` and its library."""
    # The library missing next to the executable: a clear error, exit 1.
    bare = os.path.join(env.tmp, "bare")
    os.mkdir(bare)
    shutil.copy2(TOKSHIM, bare)
    r = subprocess.run([os.path.join(bare, "tokshim"), "run", "--", "env"],
                       capture_output=True, text=True, env=env.base_environ())
    want = "tokshim: cannot use '%s/libtokshim.so': No such file or directory " \
           "(it must sit next to the tokshim executable)\n" % bare
    report(r.returncode == 1 and r.stderr == want and r.stdout == "",
           "tokshim run without libtokshim.so",
           "exit %d\nstderr %r\nwant   %r" % (r.returncode, r.stderr, want))

    # A stand-in library (an empty shared object) so the test does not depend on the shim:
    # what is checked is the environment `run` gives the command.
    kit = os.path.join(env.tmp, "kit")
    os.mkdir(kit)
    shutil.copy2(TOKSHIM, kit)
    lib = os.path.join(kit, "libtokshim.so")
    src = os.path.join(env.tmp, "empty.c")
    with open(src, "w") as f:
        f.write("int tokshim_test_stand_in;\n")
    cc = subprocess.run(["gcc", "-shared", "-fPIC", "-o", lib, src], capture_output=True,
                        text=True)
    if cc.returncode != 0:
        report(False, "tokshim run: build a stand-in library", cc.stderr)
        return
    environ = env.base_environ()
    environ["LD_PRELOAD"] = "/nonexistent/other.so"
    environ["TOKSHIM_AGENT"] = "overridden"
    os.makedirs(os.path.join(env.tmp, "work"), exist_ok=True)
    r = subprocess.run([os.path.join(kit, "tokshim"), "run", "--agent", "alice",
                        "--agent-type", "coder", "--tenant=acme", "--session", "s-42",
                        "--db", "rel/usage.mdb", "--capture", "meta", "--", "env"],
                       capture_output=True, text=True, env=environ,
                       cwd=os.path.join(env.tmp, "work"))
    got = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    want = {
        "LD_PRELOAD": lib + ":/nonexistent/other.so",
        "TOKSHIM_AGENT": "alice",
        "TOKSHIM_AGENT_TYPE": "coder",
        "TOKSHIM_TENANT": "acme",
        "TOKSHIM_SESSION": "s-42",
        "TOKSHIM_DB": os.path.join(env.tmp, "work", "rel/usage.mdb"),
        "TOKSHIM_CAPTURE": "meta",
    }
    diff = {k: (v, got.get(k)) for k, v in want.items() if got.get(k) != v}
    report(r.returncode == 0 and not diff, "tokshim run -- env: LD_PRELOAD and TOKSHIM_*",
           "exit %d, differences (want, got): %r\n%s" % (r.returncode, diff, r.stderr))

    # Without options: only LD_PRELOAD is set, the caller's TOKSHIM_* pass through untouched.
    environ = env.base_environ()
    environ["TOKSHIM_TENANT"] = "inherited"
    r = subprocess.run([os.path.join(kit, "tokshim"), "run", "env"], capture_output=True,
                       text=True, env=environ)
    got = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    ok = r.returncode == 0 and got.get("LD_PRELOAD") == lib and \
        got.get("TOKSHIM_TENANT") == "inherited" and "TOKSHIM_AGENT" not in got
    report(ok, "tokshim run env: no options", "exit %d\n%r" % (r.returncode, got))

    # A run inside a run: the shim is not preloaded twice.
    environ = env.base_environ()
    r = subprocess.run([os.path.join(kit, "tokshim"), "run", "--", os.path.join(kit, "tokshim"),
                        "run", "--", "env"], capture_output=True, text=True, env=environ)
    got = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    report(r.returncode == 0 and got.get("LD_PRELOAD") == lib, "tokshim run inside tokshim run",
           "exit %d\n%r\n%s" % (r.returncode, got.get("LD_PRELOAD"), r.stderr))

    # The command's exit status is the caller's to see (exec, not a child).
    r = subprocess.run([os.path.join(kit, "tokshim"), "run", "--", "sh", "-c", "exit 7"],
                       capture_output=True, text=True, env=env.base_environ())
    report(r.returncode == 7, "tokshim run: exit status of the command",
           "exit %d\n%s" % (r.returncode, r.stderr))

    # With the real shim, when it is built: `env` runs under it unharmed.
    if os.path.exists(os.path.join(BUILD, "libtokshim.so")):
        r = subprocess.run([TOKSHIM, "run", "--agent", "real", "--db",
                            os.path.join(env.tmp, "real.mdb"), "--", "env"],
                           capture_output=True, text=True, env=env.base_environ())
        got = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
        ok = r.returncode == 0 and got.get("LD_PRELOAD", "").startswith(
            os.path.join(os.path.realpath(BUILD), "libtokshim.so")) and \
            got.get("TOKSHIM_AGENT") == "real"
        report(ok, "tokshim run -- env under the real shim",
               "exit %d\n%s\n%s" % (r.returncode, r.stdout[-2000:], r.stderr[-2000:]))


class NdjsonChat(http.server.BaseHTTPRequestHandler):
    """A local Ollama-like /api/chat answering with a three-line NDJSON stream."""
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        lines = [{"model": "llama3.2", "message": {"role": "assistant", "content": "Hi"},
                  "done": False},
                 {"model": "llama3.2", "message": {"role": "assistant", "content": " there"},
                  "done": False},
                 {"model": "llama3.2", "message": {"role": "assistant", "content": ""},
                  "done": True, "prompt_eval_count": 11, "eval_count": 2}]
        body = "".join(json.dumps(l) + "\n" for l in lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def end_to_end_cases(env):
    """curl under the real shim against a local server, then the CLI reads what it wrote."""
    if not os.path.exists(os.path.join(BUILD, "libtokshim.so")):
        return
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NdjsonChat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/api/chat" % server.server_address[1]
    db = os.path.join(env.tmp, "e2e.mdb")
    body = '{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}'
    try:
        for capture in ("full", "off"):
            r = subprocess.run([TOKSHIM, "run", "--agent", "e2e", "--tenant", "t1", "--db", db,
                                "--capture", capture, "--", "curl", "-s", url, "-H",
                                "Authorization: Bearer sk-not-a-secret", "-d", body],
                               capture_output=True, text=True, env=env.base_environ(),
                               timeout=60)
            report(r.returncode == 0 and '"done": true' in r.stdout,
                   "end to end: curl under tokshim run --capture %s" % capture,
                   "exit %d\n%s\n%s" % (r.returncode, r.stdout[-1000:], r.stderr[-1000:]))
    finally:
        server.shutdown()
    r = subprocess.run([TOKSHIM, "records", "--db", db, "--format", "jsonl"],
                       capture_output=True, text=True, env=env.base_environ())
    try:
        got = [loads(l) for l in r.stdout.splitlines()]
        want = [{"id": 1, "agent": "e2e", "tenant": "t1", "process": "curl", "provider": "ollama",
                 "locality": "local", "model": "llama3.2", "status": 200, "stream": True,
                 "input_tokens": 11, "output_tokens": 2, "total_tokens": 13, "cost_usd": 0,
                 "error": None},
                {"id": 2, "agent": "e2e", "total_tokens": 13}]
        d = contains(want, got)
    except ValueError as e:
        d = str(e)
    report(r.returncode == 0 and d is None, "end to end: records of the captured calls",
           "%s\n%s%s" % (d, r.stdout, r.stderr))
    r = subprocess.run([TOKSHIM, "show", "--db", db, "1"], capture_output=True, text=True,
                       env=env.base_environ())
    ok = r.returncode == 0 and "\nHi there\n" in r.stdout and \
        "Authorization: [REDACTED]" in r.stdout and "sk-not-a-secret" not in r.stdout and \
        "(ndjson, 3 events)" in r.stdout
    report(ok, "end to end: show reassembles the captured stream, secrets redacted",
           r.stdout[-3000:] + r.stderr)
    r = subprocess.run([TOKSHIM, "show", "--db", db, "2"], capture_output=True, text=True,
                       env=env.base_environ())
    report(r.returncode == 0 and "no payload stored" in r.stdout,
           "end to end: show of a call captured with --capture off", r.stdout + r.stderr)
    r = subprocess.run([TOKSHIM, "report", "--db", db, "--format", "json"],
                       capture_output=True, text=True, env=env.base_environ())
    try:
        d = contains({"totalRequests": 2, "totalTokens": 26, "totalCost": 0,
                      "byAgent": {"e2e": {"requests": 2, "inputTokens": 22}},
                      "locality": {"local": {"requests": 2}}}, loads(r.stdout))
    except ValueError as e:
        d = str(e)
    report(r.returncode == 0 and d is None, "end to end: report of the captured calls",
           "%s\n%s%s" % (d, r.stdout, r.stderr))


def main():
    for exe in (TOKSHIM, MKSTORE):
        if not os.access(exe, os.X_OK):
            print("FAIL %s is not built" % exe)
            print("0 passed, 1 failed")
            return 1
    env = Env()
    try:
        for name in sorted(os.listdir(CASES)):
            if name.endswith(".test"):
                path = os.path.join(CASES, name)
                for lineno, lines in parse_cases(path):
                    if all(l.startswith("#") for l in lines):
                        continue
                    run_case(env, path, lineno, lines)
        python_cases(env)
        end_to_end_cases(env)
    finally:
        shutil.rmtree(env.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
