"""bench.py - every speed figure of tokshim, measured side by side in one run (make bench).

    /usr/bin/python3 bench/bench.py BUILD_DIR        BENCH_QUICK=1 for a short run

Figures (docs/PERFORMANCE.md says what each means):
  1. bulk non-LLM TLS download with curl, without and with the shim: throughput ratio
  2. LLM-shaped calls over keep-alive TLS (C server, C client): time the shim adds per call,
     with TOKSHIM_CAPTURE=off and full
  3. the same calls through mitmproxy (mitmdump -w) instead: the ratio against tokshim
  4. store appends per second, 1 and 4 writer processes
  5. callgrind instructions per call that the shim adds, and where they go
  6. tokshim report over N generated records vs sqlite3 json_extract GROUP BY over the same rows

Runs of the things compared alternate (A B A B ...) and medians are reported, so a slow
moment of the machine hits both sides. Nothing here is a pass/fail on time: the run fails only
when a step cannot run or when tokshim and sqlite3 disagree on the totals. Every server binds
127.0.0.1 only; every temporary file lives in one folder removed at the end.
"""
import datetime
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
P = {  # sizes: the full run stays within a few minutes on 2 cores
    "bulk_bytes": 128 << 20,
    "bulk_runs": 11 if QUICK else 41,
    "bulk_cg_mib": (4, 12) if QUICK else (10, 50),
    "calls": 2000 if QUICK else 20000,
    "call_runs": 3 if QUICK else 5,
    "mitm_calls": 300 if QUICK else 2000,
    "mitm_runs": 2 if QUICK else 3,
    "appends": 2000 if QUICK else 20000,
    "append_runs": 2 if QUICK else 3,
    "cg_calls": (50, 150) if QUICK else (100, 300),
    "records": 1000000 if QUICK else 10000000,
    "report_runs": 2 if QUICK else 3,
}

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
BIN = os.path.join(BUILD, "bench")
SHIM = os.path.join(BUILD, "libtokshim.so")
CLI = os.path.join(BUILD, "tokshim")
TMP = tempfile.mkdtemp(prefix="tokshim-bench-")
CERT = os.path.join(TMP, "cert.pem")
KEY = os.path.join(TMP, "key.pem")
procs = []


def say(line=""):
    print(line, flush=True)


def run(cmd, env=None, check=True):
    """Runs cmd; returns its stdout. A failure stops the bench with the command's stderr."""
    full = dict(os.environ)
    full.update(env or {})
    p = subprocess.run(cmd, env=full, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p.stdout


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, seconds=20.0):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def shim_env(db, capture="full"):
    return {"LD_PRELOAD": SHIM, "TOKSHIM_DB": db, "TOKSHIM_CAPTURE": capture}


def med(xs):
    return statistics.median(xs)


def records_in(db):
    if not os.path.exists(db):
        return 0
    out = run([CLI, "report", "--db", db, "--format", "json"])
    return json.loads(out)["totalRequests"]


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    commit = run(["git", "rev-parse", "--short", "HEAD"], check=False).strip() or "unknown"
    say("tokshim bench  %s UTC  (%s run)" % (
        datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S"), "quick" if QUICK else "full"))
    say("machine        nproc %d, %s, %.1f GiB RAM, Linux %s" % (
        os.cpu_count(), cpu, mem_kb / 1048576, os.uname().release))
    say("software       %s; curl %s; commit %s" % (
        run(["openssl", "version"]).strip(), run(["curl", "--version"]).split()[1], commit))
    say()


def bulk(port, server_pid):
    """Figure 1: curl downloads bulk bytes without (A) and with (B) the shim. Each round runs
    both, in alternating order (A B, then B A, ...), and gives one ratio; the figure is the
    median of the rounds' ratios, so a slow moment of the machine falls inside one round and
    weighs on both of its sides. The server's connection thread is kept on the first core and
    curl on the second, when there are two: left to the scheduler, the two sometimes share a
    core, and which side that slows is chance (unpinned, 9 rounds gave ratios 0.76 to 0.97 while
    curl's CPU time and callgrind's count barely moved). callgrind then counts the instructions
    per MiB both ways, which the machine's load does not change."""
    n = P["bulk_bytes"]
    db = os.path.join(TMP, "bulk.mdb")
    url = "https://localhost:%d/bulk/%d" % (port, n)
    base = ["curl", "-sS", "-o", "/dev/null", "--cacert", CERT]
    cmd = base + ["-w", "%{size_download} %{time_starttransfer} %{time_total}", url]
    a, b, ratios, cpu_ratios = [], [], [], []
    cores = sorted(os.sched_getaffinity(0))
    pinned = len(cores) >= 2 and shutil.which("taskset") is not None
    if pinned:
        # tls_server starts a thread per connection from its main thread, which they inherit.
        os.sched_setaffinity(server_pid, {cores[0]})
        cmd = ["taskset", "-c", str(cores[1])] + cmd

    first = {False: [], True: []}

    def one(shim):
        """(bytes/s from the first byte to the last, CPU seconds of curl: user + system, which
        waiting for a core leaves out). The throughput leaves out the process's start and the
        handshake, which the time to the first byte (kept apart) holds."""
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        size, start, total = (float(x) for x in run(cmd, env=shim_env(db) if shim else None)
                              .split())
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        first[shim].append(start)
        return size / (total - start), (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

    for i in range(P["bulk_runs"]):
        if i % 2 == 0:
            pa, pb = one(False), one(True)
        else:
            pb, pa = one(True), one(False)
        a.append(pa[0])
        b.append(pb[0])
        ratios.append(pb[0] / pa[0])
        cpu_ratios.append(pa[1] / pb[1])
    ratio = med(ratios)
    if pinned:
        os.sched_setaffinity(server_pid, set(cores))
    say("1. bulk TLS download, curl, %d MiB, %d rounds of one run each way (A B, B A, ...),"
        " bytes/s from first to last byte%s" % (n >> 20, len(a),
                                                ", server on core %d, curl on core %d" % (
                                                    cores[0], cores[1]) if pinned else ""))
    say("   without shim   median %8.1f MiB/s   runs %s" % (med(a) / 2**20,
        " ".join("%.0f" % (x / 2**20) for x in a)))
    say("   with shim      median %8.1f MiB/s   runs %s" % (med(b) / 2**20,
        " ".join("%.0f" % (x / 2**20) for x in b)))
    say("   ratio with/without, median of the rounds' ratios %.3f   (target >= 0.98)   rounds %s"
        % (ratio, " ".join("%.3f" % x for x in ratios)))
    say("   curl's CPU time (user + system) without/with, median of the rounds' ratios %.3f"
        "   rounds %s" % (med(cpu_ratios), " ".join("%.3f" % x for x in cpu_ratios)))
    say("   time to the first byte (process start, handshake), median: without %.2f ms, with"
        " %.2f ms" % (med(first[False]) * 1e3, med(first[True]) * 1e3))
    say("   records written: %d (non-LLM: 0 expected)" % records_in(db))
    res = {"ratio": ratio, "without": med(a), "with": med(b), "cpu_ratio": med(cpu_ratios)}
    if shutil.which("valgrind") is not None:
        m1, m2 = P["bulk_cg_mib"]
        ir = {}
        for shim in (False, True):
            for m in (m1, m2):
                out = os.path.join(TMP, "cg.bulk.%d.%d" % (shim, m))
                c = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + \
                    base + ["https://localhost:%d/bulk/%d" % (port, m << 20)]
                run(c, env=shim_env(db) if shim else None)
                ir[(shim, m)] = cg_total(out)
        per = {s: (ir[(s, m2)] - ir[(s, m1)]) / (m2 - m1) for s in (False, True)}
        say("   callgrind, instructions per MiB downloaded ((%d MiB - %d MiB) / %d): without %.0f,"
            " with %.0f: ratio %.4f" % (m2, m1, m2 - m1, per[False], per[True],
                                        per[False] / per[True]))
        res["ir_ratio"] = per[False] / per[True]
    say()
    return res


def client(port, calls, env=None, ca=CERT, proxy=None):
    cmd = [os.path.join(BIN, "llm_client"), str(port), str(calls), ca]
    if proxy:
        cmd.append(str(proxy))
    return json.loads(run(cmd, env=env))


def calls(port):
    """Figure 2: the same calls plain (A), shim capture off (B), shim capture full (C), in
    rounds of one run each, A B C then C B A, ...; the time added is the median over the rounds
    of each round's difference, so a slow stretch of the machine weighs on all three runs it
    spans rather than on whichever mode ran then."""
    n, runs = P["calls"], P["call_runs"]
    dbs = {"off": os.path.join(TMP, "calls-off.mdb"), "full": os.path.join(TMP, "calls-full.mdb")}
    res = {"plain": [], "off": [], "full": []}
    envs = {"plain": None, "off": shim_env(dbs["off"], "off"),
            "full": shim_env(dbs["full"], "full")}
    for i in range(runs):
        for k in (("plain", "off", "full") if i % 2 == 0 else ("full", "off", "plain")):
            res[k].append(client(port, n, envs[k]))
    m = {k: med([r["median_us"] for r in v]) for k, v in res.items()}
    added = {k: med([r["median_us"] - p["median_us"] for r, p in zip(res[k], res["plain"])])
             for k in ("off", "full")}
    cps = {k: med([r["calls_per_s"] for r in v]) for k, v in res.items()}
    p90 = {k: med([r["p90_us"] for r in v]) for k, v in res.items()}
    say("2. LLM-shaped calls over one keep-alive TLS connection, C client and C server,")
    say("   %d calls x %d rounds of one run each (plain, capture off, capture full; then the"
        " other way)" % (n, runs))
    for k, label in (("plain", "without shim"), ("off", "shim, CAPTURE=off"),
                     ("full", "shim, CAPTURE=full")):
        say("   %-19s median %7.2f us/call  p90 %7.2f  %9.0f calls/s   run medians %s" % (
            label, m[k], p90[k], cps[k], " ".join("%.1f" % r["median_us"] for r in res[k])))
    expect = runs * (n + 20)  # llm_client makes 20 untimed warm-up calls per run
    for k in ("off", "full"):
        got = records_in(dbs[k])
        say("   added by the shim, %-4s %6.2f us/call, median of the rounds' differences"
            " (target <= 30)   records %d of %d%s"
            % (k, added[k], got, expect, "" if got == expect else "  MISMATCH"))
    say()
    return {"median_us": m, "calls_per_s": cps, "added_off": added["off"],
            "added_full": added["full"]}


def mitm(port, tok):
    """Figure 3: the same calls through mitmdump writing every flow to a file."""
    say("3. the same calls through mitmproxy (mitmdump -w FILE, a capturing proxy) instead")
    exe = shutil.which("mitmdump")
    if exe is None:
        say("   mitmproxy: not available (mitmdump not found; `sh scripts/install-deps.sh --bench`"
            " installs Debian's mitmproxy)")
        say()
        return None
    conf = os.path.join(TMP, "mitmconf")
    os.makedirs(conf, exist_ok=True)
    mport = free_port()
    log = open(os.path.join(TMP, "mitm.log"), "w")
    version = run([exe, "--version"]).splitlines()[0]
    p = subprocess.Popen([exe, "-q", "--listen-host", "127.0.0.1", "-p", str(mport),
                          "--set", "confdir=" + conf, "--set", "ssl_insecure=true",
                          "-w", os.path.join(TMP, "flows.mitm")], stdout=log, stderr=log)
    procs.append(p)
    ca = os.path.join(conf, "mitmproxy-ca-cert.pem")
    if not wait_port(mport) or not os.path.exists(ca):
        say("   mitmproxy: could not be started here (see its log); no figure")
        say()
        return None
    n, runs = P["mitm_calls"], P["mitm_runs"]
    res = []
    for _ in range(runs):
        res.append(client(port, n, ca=ca, proxy=mport))
    m = med([r["median_us"] for r in res])
    cps = med([r["calls_per_s"] for r in res])
    added = m - tok["median_us"]["plain"]
    say("   %s, %d calls x %d runs" % (version, n, runs))
    say("   through mitmdump   median %8.2f us/call  %9.0f calls/s   run medians %s" % (
        m, cps, " ".join("%.1f" % r["median_us"] for r in res)))
    say("   added per call: mitmproxy %.1f us, tokshim (capture full) %.2f us: tokshim adds "
        "%.0fx less" % (added, tok["added_full"], added / max(tok["added_full"], 0.01)))
    say("   calls/s: tokshim (capture full) %.0f, mitmproxy %.0f: ratio %.1fx" % (
        tok["calls_per_s"]["full"], cps, tok["calls_per_s"]["full"] / cps))
    say()
    return {"median_us": m, "calls_per_s": cps, "added": added}


def appends():
    """Figure 4: store_append (one commit each, with payload) from 1 and from 4 processes."""
    n, runs = P["appends"], P["append_runs"]
    res = {1: [], 4: []}
    for i in range(runs):
        for w in (1, 4):
            db = os.path.join(TMP, "appends-%d-%d.mdb" % (w, i))
            out = run([os.path.join(BIN, "store_appends"), db, str(w), str(n // w)])
            res[w].append(json.loads(out)["appends_per_s"])
            if records_in(db) != (n // w) * w:
                raise RuntimeError("store_appends: %s holds the wrong number of records" % db)
    say("4. store appends (one transaction and commit each, ~2.4 KiB payload), %d appends x %d"
        " runs" % (n, runs))
    for w in (1, 4):
        say("   %d writer%s   median %9.0f appends/s   runs %s" % (
            w, " " if w == 1 else "s", med(res[w]), " ".join("%.0f" % x for x in res[w])))
    say()
    return {w: med(v) for w, v in res.items()}


CG_PARTS = [("hooks (SSL_read + SSL_write, incl. the real calls)", ("SSL_read", "SSL_write")),
            ("capture_conn_feed (HTTP, provider, record)", ("capture_conn_feed",)),
            ("provider JSON parse (pjson_read)", ("pjson_read",)),
            ("store_append (commit, LMDB)", ("store_append",)),
            ("payload_encode (zstd)", ("payload_encode",))]
CG_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.+?):([^\s:]+)(?: \[(.*)\])?$")


def cg_table(path, inclusive):
    """callgrind_annotate's per-function costs: {(object file, function): Ir}."""
    cmd = ["callgrind_annotate", "--threshold=100"]
    if inclusive:
        cmd.append("--inclusive=yes")
    out = run(cmd + [path])
    costs = {}
    for line in out.splitlines():
        m = CG_LINE.match(line)
        if m and m.group(4):  # lines with [object] are whole functions
            costs[(m.group(4), m.group(3))] = int(m.group(1).replace(",", ""))
    return costs


def cg_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + path)


def callgrind(port):
    """Figure 5: instruction counts; N1 and N2 calls so fixed costs (start, store open) cancel."""
    if shutil.which("valgrind") is None:
        say("5. callgrind: valgrind not installed; no figure")
        say()
        return None
    n1, n2 = P["cg_calls"]
    data = {}
    for mode in ("plain", "off", "full"):
        for n in (n1, n2):
            out = os.path.join(TMP, "cg.%s.%d.out" % (mode, n))
            env = None if mode == "plain" else shim_env(os.path.join(TMP, "cg-%s-%d.mdb" % (
                mode, n)), mode)
            run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                 os.path.join(BIN, "llm_client"), str(port), str(n), CERT], env=env)
            data[(mode, n)] = out
    per = lambda a, b: (a - b) / (n2 - n1)
    say("5. callgrind instructions per call (Ir; runs of %d and %d calls, difference / %d, so"
        % (n1, n2, n2 - n1))
    say("   start-up and the store's opening cancel out)")
    base = per(cg_total(data[("plain", n2)]), cg_total(data[("plain", n1)]))
    say("   client without shim          %9.0f Ir/call (client + OpenSSL + kernel calls)" % base)
    res = {"plain": base}
    for mode in ("off", "full"):
        tot = per(cg_total(data[(mode, n2)]), cg_total(data[(mode, n1)]))
        incl2, incl1 = cg_table(data[(mode, n2)], True), cg_table(data[(mode, n1)], True)
        self2, self1 = cg_table(data[(mode, n2)], False), cg_table(data[(mode, n1)], False)
        # All of tokshim's own code is in libtokshim.so: its self cost is our instructions.
        ours = per(sum(v for k, v in self2.items() if k[0].endswith("/libtokshim.so")),
                   sum(v for k, v in self1.items() if k[0].endswith("/libtokshim.so")))
        say("   shim, CAPTURE=%-4s added     %9.0f Ir/call; in tokshim's own code "
            "(self cost in libtokshim.so): %.0f" % (mode, tot - base, ours))
        for label, fns in CG_PARTS:
            v = per(sum(c for k, c in incl2.items() if k[1] in fns),
                    sum(c for k, c in incl1.items() if k[1] in fns))
            say("        %-52s %9.0f Ir/call inclusive" % (label, v))
        res[mode] = tot - base
    say()
    return res


def timed(cmd, out_path):
    """Runs cmd under /usr/bin/time -v; returns (wall seconds, peak RSS in KiB, CPU seconds:
    user + system, which a busy machine inflates less than the wall clock)."""
    with open(out_path, "w") as out:
        p = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=out, stderr=subprocess.PIPE,
                           text=True)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    wall = rss = None
    cpu = 0.0
    for line in p.stderr.splitlines():
        line = line.strip()
        if line.startswith("User time (seconds)") or line.startswith("System time (seconds)"):
            cpu += float(line.rsplit(" ", 1)[1])
        elif line.startswith("Elapsed (wall clock) time"):
            parts = line.rsplit(" ", 1)[1].split(":")
            wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(parts)))
        elif line.startswith("Maximum resident set size"):
            rss = int(line.rsplit(" ", 1)[1])
    return wall, rss, cpu


SQL = ("SELECT agent, model, count(*) AS requests,"
       " sum(json_extract(usage, '$.input_tokens')) AS input_tokens,"
       " sum(json_extract(usage, '$.output_tokens')) AS output_tokens"
       " FROM messages GROUP BY agent, model")


def check_totals(gen, tok, rows):
    """The sqlite3 rows summed by agent and by model must equal tokshim's byAgent/byModel."""
    problems = []
    for axis, col in (("byAgent", "agent"), ("byModel", "model")):
        sums = {}
        for r in rows:
            s = sums.setdefault(r[col], [0, 0, 0])
            s[0] += r["requests"]
            s[1] += r["input_tokens"]
            s[2] += r["output_tokens"]
        got = {k: [v["requests"], v["inputTokens"], v["outputTokens"]]
               for k, v in tok[axis].items()}
        if got != sums:
            problems.append("%s differs" % axis)
    if tok["totalRequests"] != gen["records"] or tok["inputTokens"] != gen["input_tokens"] \
            or tok["outputTokens"] != gen["output_tokens"]:
        problems.append("tokshim totals differ from what was generated")
    return problems


def report():
    """Figure 6: tokshim report over N records vs sqlite3 over the same rows."""
    n, runs = P["records"], P["report_runs"]
    db, sq = os.path.join(TMP, "gen.mdb"), os.path.join(TMP, "gen.sqlite")
    t0 = time.time()
    gen = json.loads(run([os.path.join(BIN, "gen_store"), str(n), db, sq]))
    gen_s = time.time() - t0
    help_text = run([CLI, "report", "--help"], check=False)
    by = "--by" in help_text
    tcmd = [CLI, "report", "--db", db] + (["--by", "agent,model"] if by else []) + \
        ["--format", "json"]
    scmd = ["sqlite3", "-json", sq, SQL]
    tout, sout = os.path.join(TMP, "report.json"), os.path.join(TMP, "sqlite.json")
    # The floor: the same slices on as many threads as report uses, LMDB's cursor alone
    # (counting entries) and store_scan with a callback that only counts (pread and decoding).
    threads = str(min(os.cpu_count() or 1, 4))
    fcmds = [[os.path.join(BIN, "scan_floor"), db, threads, m] for m in ("cursor", "scan")]
    fout = os.path.join(TMP, "floor.json")
    timed(tcmd, tout)  # one untimed run each: both read from a warm page cache
    timed(scmd, sout)
    tr, sr, fr = [], [], [[], []]
    load = [os.getloadavg()[0]]
    for _ in range(runs):
        tr.append(timed(tcmd, tout))
        sr.append(timed(scmd, sout))
        for i, fcmd in enumerate(fcmds):
            fr[i].append(timed(fcmd, fout))
    load.append(os.getloadavg()[0])
    # The totals check reads the default report (byAgent, byModel), whatever --by prints.
    tok = json.loads(run([CLI, "report", "--db", db, "--format", "json"]))
    with open(sout) as f:
        rows = json.load(f)
    problems = check_totals(gen, tok, rows)
    tw, sw = med([w for w, _, _ in tr]), med([w for w, _, _ in sr])
    trss, srss = max(r for _, r, _ in tr), max(r for _, r, _ in sr)
    tc, sc = med([c for _, _, c in tr]), med([c for _, _, c in sr])
    size = os.path.getsize(db)
    say("6. report over %d generated records (50 agents, 20 models, 6 providers; written in %.1f s"
        " to both stores)" % (n, gen_s))
    say("   store file %.0f MiB (%.0f bytes/record); sqlite file %.0f MiB" % (
        size / 2**20, size / n, os.path.getsize(sq) / 2**20))
    say("   tokshim: %s" % " ".join(os.path.basename(c) if i == 0 else c
                                    for i, c in enumerate(tcmd)))
    if not by:
        say("            (report --by is not in this build: the default report, grouped by agent,"
            " by model and by provider, is timed)")
    say("   sqlite3: sqlite3 -json gen.sqlite \"%s\"" % SQL)
    say("   floor:   %s" % " ; ".join(" ".join(os.path.basename(c) if i == 0 else c
                                                for i, c in enumerate(fc)) for fc in fcmds))
    say("   load average (1 min) before and after the timed runs: %.2f %.2f" % tuple(load))
    say("   tokshim report  median %6.2f s  %10.0f records/s  peak RSS %6.1f MiB   runs %s"
        "   CPU median %.2f s" % (tw, n / tw, trss / 1024,
                                  " ".join("%.2f" % w for w, _, _ in tr), tc))
    say("   sqlite3         median %6.2f s  %10.0f records/s  peak RSS %6.1f MiB   runs %s"
        "   CPU median %.2f s" % (sw, n / sw, srss / 1024,
                                  " ".join("%.2f" % w for w, _, _ in sr), sc))
    for name, runs_ in zip(("floor: cursor", "floor: scan"), fr):
        fw = med([w for w, _, _ in runs_])
        say("   %-15s median %6.2f s  %10.0f records/s  peak RSS %6.1f MiB   runs %s"
            "   CPU median %.2f s" % (name, fw, n / fw, max(r for _, r, _ in runs_) / 1024,
                                      " ".join("%.2f" % w for w, _, _ in runs_),
                                      med([c for _, _, c in runs_])))
    say("   tokshim is %.1fx faster; targets: >= 5,000,000 records/s (%s), peak RSS < 100 MB (%s)"
        % (sw / tw, "met" if n / tw >= 5e6 else "missed",
           "met" if trss * 1024 < 100e6 else "missed"))
    say("   totals: %s" % ("tokshim and sqlite3 agree on requests, input and output tokens by "
                           "agent and by model" if not problems else "; ".join(problems)))
    say()
    return not problems


def main():
    ok = False
    server = None
    started = time.time()
    try:
        machine()
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", KEY, "-out", CERT, "-days",
             "2", "-subj", "/CN=localhost", "-addext",
             "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        port = free_port()
        server = subprocess.Popen([os.path.join(BIN, "tls_server"), str(port), CERT, KEY])
        procs.append(server)
        if not wait_port(port):
            raise RuntimeError("tls_server did not start")
        bulk(port, server.pid)
        tok = calls(port)
        mitm(port, tok)
        appends()
        callgrind(port)
        ok = report()
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(TMP, ignore_errors=True)
    say("bench: done in %.0f s" % (time.time() - started) if ok else
        "bench: FAILED (totals disagree)")


if __name__ == "__main__":
    main()
