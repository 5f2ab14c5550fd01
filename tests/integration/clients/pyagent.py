#!/usr/bin/python3
"""pyagent.py - a small "agent" that makes LLM API calls with a real Python HTTP client.

    /usr/bin/python3 pyagent.py SPEC.json

SPEC is a JSON object:
  lib       "requests" | "httpx" | "urllib" | "http.client"
  ca        CA file to trust (clients verify the server against it, as usual)
  resolve   host names this agent maps to 127.0.0.1 (the agent wraps socket.getaddrinfo: the
            client libraries are untouched and still send the real Host / SNI)
  session   true: one requests.Session / httpx.Client / http.client connection for every call
            (keep-alive); false: a fresh one per call
  calls     [{"method", "url", "headers": {..}, "body": "text" or "body_file": path,
              "stream": true/false}]

For each call it prints "== STATUS\n", the response body as the library hands it over (gzip
decoded by requests and httpx; streams read piece by piece as they arrive), then "\n".
HTTP errors are answers too: the agent prints them and carries on. Exit status 0 unless a
call failed below HTTP (connection, TLS), then 3.
"""
import json
import socket
import sys


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    resolve = set(spec.get("resolve", []))
    real_gai = socket.getaddrinfo

    def gai(host, port, *args, **kwargs):
        if host in resolve:
            host = "127.0.0.1"
        return real_gai(host, port, *args, **kwargs)

    socket.getaddrinfo = gai
    out = sys.stdout.buffer
    lib = spec["lib"]
    ca = spec.get("ca")
    calls = spec["calls"]
    for c in calls:
        if "body_file" in c:
            with open(c["body_file"], "rb") as f:
                c["body"] = f.read()
        elif isinstance(c.get("body"), str):
            c["body"] = c["body"].encode("utf-8")
    rc = 0
    try:
        if lib == "requests":
            run_requests(spec, calls, ca, out)
        elif lib == "httpx":
            run_httpx(spec, calls, ca, out)
        elif lib == "urllib":
            run_urllib(calls, ca, out)
        elif lib == "http.client":
            run_http_client(spec, calls, ca, out)
        else:
            raise SystemExit("unknown lib " + lib)
    except Exception as e:  # below HTTP: report like an agent would, exit non-zero
        out.flush()
        sys.stderr.write("pyagent: %s: %s\n" % (type(e).__name__, e))
        rc = 3
    out.flush()
    return rc


def emit(out, status, pieces):
    out.write(b"== %d\n" % status)
    for p in pieces:
        out.write(p)
        out.flush()
    out.write(b"\n")


def run_requests(spec, calls, ca, out):
    import requests
    s = requests.Session() if spec.get("session") else None
    for c in calls:
        sess = s or requests.Session()
        r = sess.request(c.get("method", "POST"), c["url"], headers=c.get("headers", {}),
                         data=c.get("body"), verify=ca, stream=bool(c.get("stream")),
                         timeout=30)
        if c.get("stream"):
            emit(out, r.status_code, r.iter_content(chunk_size=None))
        else:
            emit(out, r.status_code, [r.content])
        r.close()
        if not s:
            sess.close()
    if s:
        s.close()


def run_httpx(spec, calls, ca, out):
    import httpx
    shared = httpx.Client(verify=ca, timeout=30) if spec.get("session") else None
    for c in calls:
        client = shared or httpx.Client(verify=ca, timeout=30)
        if c.get("stream"):
            with client.stream(c.get("method", "POST"), c["url"], headers=c.get("headers", {}),
                               content=c.get("body")) as r:
                emit(out, r.status_code, r.iter_bytes())
        else:
            r = client.request(c.get("method", "POST"), c["url"], headers=c.get("headers", {}),
                               content=c.get("body"))
            emit(out, r.status_code, [r.content])
        if not shared:
            client.close()
    if shared:
        shared.close()


def _read_pieces(resp):
    while True:
        b = resp.read1(65536)
        if not b:
            return
        yield b


def run_urllib(calls, ca, out):
    import ssl
    import urllib.error
    import urllib.request
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    for c in calls:
        req = urllib.request.Request(c["url"], data=c.get("body"), method=c.get("method", "POST"),
                                     headers=c.get("headers", {}))
        try:
            resp = urllib.request.urlopen(req, context=ctx, timeout=30)
        except urllib.error.HTTPError as e:
            resp = e
        status = resp.status if hasattr(resp, "status") else resp.code
        if c.get("stream"):
            emit(out, status, _read_pieces(resp))
        else:
            emit(out, status, [resp.read()])
        resp.close()


def run_http_client(spec, calls, ca, out):
    import http.client
    import ssl
    import urllib.parse
    conn = None
    for c in calls:
        u = urllib.parse.urlsplit(c["url"])
        if conn is None or not spec.get("session"):
            if u.scheme == "https":
                conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=30,
                                                   context=ssl.create_default_context(cafile=ca))
            else:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        target = u.path + ("?" + u.query if u.query else "")
        conn.request(c.get("method", "POST"), target, body=c.get("body"),
                     headers=c.get("headers", {}))
        resp = conn.getresponse()
        if c.get("stream"):
            emit(out, resp.status, _read_pieces(resp))
        else:
            emit(out, resp.status, [resp.read()])
        if not spec.get("session"):
            conn.close()
    if conn:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
