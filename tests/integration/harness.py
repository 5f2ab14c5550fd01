"""harness.py - what tokshim's integration tests share.

  Servers         a throw-away CA and tests/integration/servers/provider_server.py on 127.0.0.1
  run()           runs a real client command, with or without the shim
                  (LD_PRELOAD=$TOKSHIM_BUILD/libtokshim.so, TOKSHIM_DB, TOKSHIM_AGENT), or
                  through `tokshim run`
  records()       reads a store with `tokshim records --db P --format jsonl`
  curl_argv(), pyagent_argv()   real clients: curl, and requests/httpx/urllib/http.client
  expected_cost() the cost a record must show, from providers/pricing.json, as an exact Fraction
  test / main()   a tiny registry: runs every test, prints failures with field-by-field diffs,
                  ends with exactly one line "N passed, N failed", exits 1 on any failure

Environment: TOKSHIM_BUILD (default <repo>/build), TOKSHIM_FIXTURES (default
<repo>/../shared/fixtures). Only Debian's /usr/bin/python3 and its standard library plus the
clients under test are used.
"""
import decimal
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("TOKSHIM_BUILD") or os.path.join(REPO, "build"))
FIXTURES = os.path.abspath(os.environ.get("TOKSHIM_FIXTURES") or
                           os.path.join(REPO, "..", "shared", "fixtures"))
os.environ["TOKSHIM_FIXTURES"] = FIXTURES
PYTHON = "/usr/bin/python3"
SHIM = os.path.join(BUILD, "libtokshim.so")
# TOKSHIM_SAN=1: BUILD is the ASan/UBSan build (build/san). A sanitized shim needs the
# sanitizer runtimes loaded before anything else in the agent, so run() preloads them ahead of
# it (verify_asan_link_order=0 lets `tokshim run` put the shim in front of them). Leak checking
# is off in agents: python's and curl's own allocations at exit are not ours, and the shim's
# paths are leak-checked by the unit tests and fuzzers. Any ASan or UBSan report in an agent
# aborts it, which the tests see as output or exit status differing from the run without shim.
SAN = os.environ.get("TOKSHIM_SAN") == "1"
SAN_PRELOAD = []
SAN_ENV = {}
if SAN:
    SAN_PRELOAD = [subprocess.run(["gcc", "-print-file-name=" + lib], stdout=subprocess.PIPE,
                                  check=True).stdout.decode().strip()
                   for lib in ("libasan.so", "libubsan.so")]
    # ASan initialised before any library's constructor: without it curl (p11-kit) hangs in
    # setlocale with the runtime preloaded (tests/preload/asan_initfirst.c says why).
    SAN_PRELOAD.append(os.path.join(BUILD, "tests", "asan_initfirst.so"))
    SAN_ENV = {"ASAN_OPTIONS": "detect_leaks=0:verify_asan_link_order=0",
               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
CLI = os.path.join(BUILD, "tokshim")
SERVER = os.path.join(HERE, "servers", "provider_server.py")
PYAGENT = os.path.join(HERE, "clients", "pyagent.py")

sys.path.insert(0, os.path.join(HERE, "servers"))
import provider_server  # noqa: E402  (for expected_usage, the generated-usage rule)
import testca  # noqa: E402

CLOUD_HOSTS = ("api.openai.com", "api.anthropic.com")


class Failure(AssertionError):
    pass


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------

def manifest():
    with open(os.path.join(FIXTURES, "manifest.json")) as f:
        return {c["case"]: c for c in json.load(f)}


def fixture_path(name):
    return os.path.join(FIXTURES, name)


def fixture_bytes(name):
    with open(fixture_path(name), "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------

class Servers:
    """A CA and one provider_server process (TLS port and plain port), in a temp dir."""

    def __init__(self, script=SERVER):
        self.script = script  # or servers/h2_server.py: the same answers over HTTP/2
        self.dir = tempfile.mkdtemp(prefix="tokshim-it-")
        self.certs = testca.make_ca(os.path.join(self.dir, "ca"))
        self.ca = self.certs["ca"]
        self.log = os.path.join(self.dir, "requests.jsonl")
        self.proc = None
        self.tls = self.plain = None

    def start(self):
        ports_file = os.path.join(self.dir, "ports.json")
        self.proc = subprocess.Popen(
            [PYTHON, self.script, "--cert", self.certs["cert"], "--key", self.certs["key"],
             "--ports-file", ports_file, "--log", self.log],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "server.err"), "w"),
            start_new_session=True)
        deadline = time.time() + 10
        while not os.path.exists(ports_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("provider_server did not start: " + self.server_errors())
            time.sleep(0.02)
        with open(ports_file) as f:
            p = json.load(f)
        self.tls, self.plain = p["tls"], p["plain"]
        return self

    def server_errors(self):
        try:
            with open(os.path.join(self.dir, "server.err")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def requests_seen(self):
        """The server's request log, then cleared: one dict per request received."""
        out = []
        if os.path.exists(self.log):
            with open(self.log) as f:
                out = [json.loads(line) for line in f if line.strip()]
            os.unlink(self.log)
        return out

    def url(self, host, path):
        if host in CLOUD_HOSTS:
            return "https://%s:%d%s" % (host, self.tls, path)
        return "http://%s:%d%s" % (host, self.plain, path)


# ---------------------------------------------------------------------------------------------
# Running clients
# ---------------------------------------------------------------------------------------------

class Result:
    def __init__(self, argv, rc, stdout, stderr):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, stdout, stderr

    def __repr__(self):
        return "rc=%d stdout=%r stderr=%r" % (self.rc, self.stdout[:300], self.stderr[-600:])


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKSHIM_")}
    env.pop("LD_PRELOAD", None)
    env["TOKSHIM_FIXTURES"] = FIXTURES
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env["NO_PROXY"] = "*"
    return env


def preload_shim(env):
    """Sets env's LD_PRELOAD to the shim, behind the sanitizer runtimes (and with their options)
    when TOKSHIM_SAN=1; returns env. For tests that start agents themselves."""
    if SAN:
        env.update(SAN_ENV)
    env["LD_PRELOAD"] = " ".join(SAN_PRELOAD + [SHIM])
    return env


def run(argv, shim=False, db=None, agent=None, env=None, via_cli=False, timeout=60):
    """Runs argv. shim=True: LD_PRELOAD the library with TOKSHIM_DB=db and TOKSHIM_AGENT=agent.
    via_cli=True: `tokshim run [--agent A] --db DB -- argv` instead."""
    e = clean_env()
    if env:
        e.update(env)
    if SAN and (shim or via_cli):
        e.update(SAN_ENV)
        e["LD_PRELOAD"] = " ".join(SAN_PRELOAD)
    if via_cli:
        cmd = [CLI, "run"] + (["--agent", agent] if agent else []) + ["--db", db, "--"] + argv
    else:
        cmd = list(argv)
        if shim:
            preload_shim(e)
            if db:
                e["TOKSHIM_DB"] = db
            if agent:
                e["TOKSHIM_AGENT"] = agent
    p = subprocess.run(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return Result(cmd, p.returncode, p.stdout, p.stderr)


def tmp_store(tag="usage"):
    d = tempfile.mkdtemp(prefix="tokshim-db-")
    _tmpdirs.append(d)
    return os.path.join(d, tag + ".mdb")


_tmpdirs = []


def records(db):
    """Records of a store as dicts (numbers with a fraction as Decimal), sorted by id."""
    if not os.path.exists(db):
        return []
    p = subprocess.run([CLI, "records", "--db", db, "--format", "jsonl"], env=clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if p.returncode != 0:
        raise Failure("`tokshim records --db %s --format jsonl` exited %d: %s"
                      % (db, p.returncode, p.stderr.decode(errors="replace")[-800:]))
    out = []
    for n, line in enumerate(p.stdout.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line, parse_float=decimal.Decimal))
        except ValueError as e:
            raise Failure("records line %d is not JSON (%s): %r" % (n, e, line[:300]))
    out.sort(key=lambda r: r.get("id") or 0)
    return out


def curl_argv(servers, host, path, body_file=None, headers=(), extra=()):
    """curl --http1.1 against the server, resolving host to 127.0.0.1 and trusting the test CA."""
    port = servers.tls if host in CLOUD_HOSTS else servers.plain
    argv = ["curl", "-sS", "--http1.1", "--max-time", "30"]
    if host in CLOUD_HOSTS:
        argv += ["--cacert", servers.ca, "--resolve", "%s:%d:127.0.0.1" % (host, port)]
    argv.append(servers.url(host, path))
    for h in headers:
        argv += ["-H", h]
    if body_file:
        argv += ["--data-binary", "@" + body_file]
    return argv + list(extra)


def pyagent_argv(servers, lib, calls, session=False, workdir=None, resolve=()):
    """argv running clients/pyagent.py with a spec written to a temp file. resolve: more host
    names (besides CLOUD_HOSTS) that the agent maps to 127.0.0.1."""
    spec = {"lib": lib, "ca": servers.ca, "resolve": list(CLOUD_HOSTS) + list(resolve),
            "session": session, "calls": calls}
    d = workdir or tempfile.mkdtemp(prefix="tokshim-agent-")
    if not workdir:
        _tmpdirs.append(d)
    path = os.path.join(d, "spec-%d.json" % len(os.listdir(d)))
    with open(path, "w") as f:
        json.dump(spec, f)
    return [PYTHON, PYAGENT, path]


def write_temp(data, suffix=".json"):
    d = tempfile.mkdtemp(prefix="tokshim-body-")
    _tmpdirs.append(d)
    path = os.path.join(d, "body" + suffix)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def cleanup():
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    del _tmpdirs[:]


# ---------------------------------------------------------------------------------------------
# Pricing: the cost a record must show
# ---------------------------------------------------------------------------------------------

_pricing = None


def _pricing_table():
    """providers/pricing.json as {model_name_lower: {input, output, cache_read, cache_write}}
    with prices in USD per 1M tokens (as Fractions). Accepts a "models" object or list."""
    global _pricing
    if _pricing is not None:
        return _pricing
    path = os.path.join(REPO, "providers", "pricing.json")
    with open(path) as f:
        doc = json.load(f, parse_float=decimal.Decimal)
    models = doc.get("models", doc) if isinstance(doc, dict) else doc
    table = {}
    items = models.items() if isinstance(models, dict) else \
        [(m.get("model") or m.get("name"), m) for m in models]
    for name, m in items:
        if not isinstance(m, dict) or not name:
            continue
        table[name.lower()] = m
        for alias in m.get("aliases", []) or []:
            table[alias.lower()] = m
    _pricing = table
    return table


def _price(m, *keys):
    for k in keys:
        if k in m and m[k] is not None:
            return Fraction(str(m[k]))
    return None


def price_of(model):
    """Per-1M-token prices of a model (dated snapshot suffixes stripped), or None if unpriced."""
    import re
    table = _pricing_table()
    name = (model or "").lower()
    cands = [name, re.sub(r"-\d{4}-\d{2}-\d{2}$", "", name), re.sub(r"-\d{8}$", "", name)]
    for c in cands:
        if c in table:
            m = table[c]
            inp = _price(m, "input", "input_per_mtok", "input_usd_per_mtok", "input_per_1m")
            out = _price(m, "output", "output_per_mtok", "output_usd_per_mtok", "output_per_1m")
            cr = _price(m, "cache_read", "cache_read_per_mtok", "cached_input", "cache_read_per_1m")
            cw = _price(m, "cache_write", "cache_write_per_mtok", "cache_write_per_1m")
            if inp is None or out is None:
                raise Failure("pricing.json entry for %s has no input/output price: %r" % (c, m))
            return {"input": inp, "output": out, "cache_read": inp if cr is None else cr,
                    "cache_write": inp if cw is None else cw}
    return None


def expected_cost(model_requested, model, usage, local=False):
    """Exact expected cost in USD (Fraction), or None when the model is unpriced."""
    if local:
        return Fraction(0)
    p = price_of(model) or price_of(model_requested)
    if p is None:
        return None
    uncached = usage["input_tokens"] - usage["cache_read_tokens"] - usage["cache_write_tokens"]
    return (uncached * p["input"] + usage["cache_read_tokens"] * p["cache_read"] +
            usage["cache_write_tokens"] * p["cache_write"] +
            usage["output_tokens"] * p["output"]) / 1000000


def cost_matches(got, want):
    """Equal to the micro-dollar: |got - want| < 0.5e-6, computed exactly (no floats)."""
    if want is None:
        return got is None
    if got is None or isinstance(got, bool):
        return False
    return abs(Fraction(str(got)) - want) < Fraction(1, 2000000)


# ---------------------------------------------------------------------------------------------
# Checking records
# ---------------------------------------------------------------------------------------------

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                "reasoning_tokens", "total_tokens")


def diff_fields(rec, want, label):
    """Mismatch lines 'label.field: expected X, got Y' for every key of want."""
    out = []
    for k, v in want.items():
        if k == "cost_usd":
            got = rec.get("cost_usd", "<missing>")
            if not cost_matches(None if got == "<missing>" else got, v):
                out.append("%s.cost_usd: expected %s (= %s), got %s" % (
                    label, None if v is None else "%.9f" % v, v, got))
            continue
        if k not in rec:
            out.append("%s.%s: expected %r, key missing" % (label, k, v))
            continue
        got = rec[k]
        if isinstance(v, bool) or isinstance(got, bool):
            ok = got is v if isinstance(v, bool) else got == v
        else:
            ok = got == v
        if not ok:
            out.append("%s.%s: expected %r, got %r" % (label, k, v, got))
    return out


def check_records(recs, wants):
    """Asserts the exact number of records and every expected field of each, in id order."""
    problems = []
    if len(recs) != len(wants):
        problems.append("record count: expected %d, got %d" % (len(wants), len(recs)))
    for i, (r, w) in enumerate(zip(recs, wants)):
        problems += diff_fields(r, w, "record[%d]" % i)
    if problems:
        brief = [{k: r.get(k) for k in ("id", "provider", "api", "host", "path", "model",
                                         "status", "stream", "error") + TOKEN_FIELDS}
                 for r in recs]
        raise Failure("\n".join(problems) + "\n  records: " + json.dumps(brief, default=str))


def want_record(provider, api, model_requested, model, usage, *, host, path, agent,
                locality="cloud", status=200, stream=False, estimated=False, error=None,
                cost=True):
    """The expected fields of a record. usage: the DESIGN.md token fields (total included).
    error None means no error: the record's error must be null or ""."""
    w = {"provider": provider, "api": api, "model_requested": model_requested, "model": model,
         "host": host, "path": path, "locality": locality, "status": status, "stream": stream,
         "estimated": estimated, "agent": agent}
    for k in TOKEN_FIELDS:
        w[k] = usage[k]
    w["_error"] = error
    if cost:
        w["cost_usd"] = expected_cost(model_requested, model, usage, locality == "local")
    return w


def check(recs, wants):
    """check_records, treating error None as "null or empty string"."""
    fixed = []
    extra = []
    for i, w in enumerate(wants):
        w = dict(w)
        err = w.pop("_error", None)
        if i < len(recs):
            got = recs[i].get("error", "<missing>")
            if err is None and got not in (None, ""):
                extra.append("record[%d].error: expected none, got %r" % (i, got))
            elif err is not None and got != err:
                extra.append("record[%d].error: expected %r, got %r" % (i, err, got))
        fixed.append(w)
    try:
        check_records(recs, fixed)
    except Failure as f:
        raise Failure("\n".join(extra + [str(f)]))
    if extra:
        raise Failure("\n".join(extra))


def expect_eq(got, want, what):
    if got != want:
        g, w = repr(got), repr(want)
        if len(g) > 400 or len(w) > 400:
            i = next((k for k in range(min(len(g), len(w))) if g[k] != w[k]), min(len(g), len(w)))
            g, w = "…" + g[max(0, i - 60):i + 140], "…" + w[max(0, i - 60):i + 140]
            what += " (first difference at repr offset %d)" % i
        raise Failure("%s:\n  expected %s\n  got      %s" % (what, w, g))


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


# ---------------------------------------------------------------------------------------------
# Set-up shared by the capture tests
# ---------------------------------------------------------------------------------------------

class Ctx:
    pass


def setup_servers():
    """The usual set-up: the build must exist; the provider server runs; the manifest is read."""
    for path in (SHIM, CLI):
        if not os.path.exists(path):
            raise Failure("%s does not exist: build first (make), or set TOKSHIM_BUILD" % path)
    c = Ctx()
    c.servers = Servers().start()
    c.man = manifest()
    return c


def teardown_servers(c):
    if c:
        c.servers.stop()


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def main(setup=None, teardown=None):
    """Runs every registered test (or those named on the command line)."""
    only = set(sys.argv[1:])
    passed = failed = 0
    ctx = None
    try:
        ctx = setup() if setup else None
    except Exception:
        print("FAIL setup")
        traceback.print_exc(file=sys.stdout)
        print("0 passed, 1 failed")
        sys.exit(1)
    try:
        for fn in _tests:
            if fn.__module__ != "__main__":
                continue  # registered by a test module imported for its helpers
            if only and fn.__name__ not in only:
                continue
            t0 = time.time()
            if getattr(ctx, "servers", None):
                ctx.servers.requests_seen()  # each test starts with an empty request log
            try:
                fn(ctx) if setup else fn()
                passed += 1
                print("PASS %s (%.1fs)" % (fn.__name__, time.time() - t0))
            except Failure as e:
                failed += 1
                print("FAIL %s\n  %s" % (fn.__name__, str(e).replace("\n", "\n  ")))
            except Exception:
                failed += 1
                print("FAIL %s (exception)" % fn.__name__)
                print("  " + traceback.format_exc().replace("\n", "\n  "))
            sys.stdout.flush()
    finally:
        if teardown:
            teardown(ctx)
        cleanup()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
