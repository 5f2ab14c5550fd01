#!/usr/bin/python3
"""test_servers.py - the provider-shaped server sends what providers send (no shim involved).

The capture tests are only as good as the bytes the server puts on the wire, so these check
them with real clients (curl, requests, httpx) and with a raw socket: framing, gzip over SSE
flushed per event, keep-alive, 100 Continue, error shapes, fixtures byte for byte, and the
generated-usage rule that test_capture.py relies on.
"""
import gzip
import json
import socket
import ssl
import zlib

import harness as h
from harness import expect, expect_eq, test

import provider_server as ps


class Ctx:
    pass


def setup():
    c = Ctx()
    c.servers = h.Servers().start()
    c.man = h.manifest()
    return c


def teardown(c):
    if c:
        c.servers.stop()


def raw_exchange(c, host, request_bytes, tls=True, read_until_close=True, timeout=10):
    """Sends request_bytes on a fresh connection and returns every byte received."""
    s = socket.create_connection(("127.0.0.1", c.servers.tls if tls else c.servers.plain),
                                 timeout=timeout)
    if tls:
        ctx = ssl.create_default_context(cafile=c.servers.ca)
        s = ctx.wrap_socket(s, server_hostname=host)
    s.sendall(request_bytes)
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        if not b:
            break
        data += b
    s.close()
    return data


def post(host, path, body, headers=(), close=True):
    hs = ["POST %s HTTP/1.1" % path, "Host: %s" % host, "Content-Type: application/json",
          "Content-Length: %d" % len(body)] + list(headers)
    if close:
        hs.append("Connection: close")
    return ("\r\n".join(hs) + "\r\n\r\n").encode() + body


def split_response(data):
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs, rest


def dechunk(rest):
    """The list of chunk payloads, and whether the terminating 0-chunk was there."""
    chunks = []
    while rest:
        line, _, rest = rest.partition(b"\r\n")
        n = int(line.split(b";")[0], 16)
        if n == 0:
            return chunks, True
        chunks.append(rest[:n])
        expect_eq(rest[n:n + 2], b"\r\n", "CRLF after chunk")
        rest = rest[n + 2:]
    return chunks, False


@test
def fixture_nonstream_curl_byte_exact(c):
    argv = h.curl_argv(c.servers, "api.openai.com", "/v1/chat/completions",
                       h.fixture_path("openai_chat_nonstream_cached.req.json"),
                       ["Content-Type: application/json"], ["-D", "/dev/stderr"])
    r = h.run(argv)
    expect_eq(r.rc, 0, "curl exit")
    expect_eq(r.stdout, h.fixture_bytes("openai_chat_nonstream_cached.body"), "body")
    head = r.stderr.decode()
    expect("Content-Length: 815\r\n" in head, "Content-Length missing: " + head)
    expect("Transfer-Encoding" not in head, "unexpected chunking: " + head)
    seen = c.servers.requests_seen()
    expect_eq(len(seen), 1, "requests seen")
    expect_eq(seen[0]["fixture"], "openai_chat_nonstream_cached", "fixture used")
    expect_eq(seen[0]["body_len"], 5823, "request body length")


@test
def gzip_sse_flushed_per_event_raw(c):
    body = h.fixture_bytes("openai_chat_stream_include_usage_toolcall.req.json")
    data = raw_exchange(c, "api.openai.com", post("api.openai.com", "/v1/chat/completions", body,
                                                   ["Accept-Encoding: gzip, deflate"]))
    status, hdrs, rest = split_response(data)
    expect_eq(status, "HTTP/1.1 200 OK", "status line")
    expect_eq(hdrs.get("content-encoding"), "gzip", "content-encoding")
    expect_eq(hdrs.get("transfer-encoding"), "chunked", "transfer-encoding")
    expect_eq(hdrs.get("connection"), "close", "connection")
    chunks, done = dechunk(rest)
    expect(done, "no terminating chunk")
    want_events = [e + b"\n\n" for e in
                   h.fixture_bytes("openai_chat_stream_include_usage_toolcall.body").split(b"\n\n")
                   if e.strip()]
    d = zlib.decompressobj(31)
    # Each event's chunk must decode on its own to exactly that event (Z_SYNC_FLUSH).
    for i, ev in enumerate(want_events):
        expect_eq(d.decompress(chunks[i]), ev, "event %d decoded from its own chunk" % i)
    tail = b"".join(d.decompress(x) for x in chunks[len(want_events):]) + d.flush()
    expect_eq(tail, b"", "trailing gzip bytes decode to nothing")
    expect(d.eof, "gzip stream not finished")
    expect_eq(gzip.decompress(b"".join(chunks)),
              h.fixture_bytes("openai_chat_stream_include_usage_toolcall.body"), "whole stream")


@test
def curl_compressed_stream_decodes_to_fixture(c):
    argv = h.curl_argv(c.servers, "api.openai.com", "/v1/chat/completions",
                       h.fixture_path("openai_chat_stream_include_usage_toolcall.req.json"),
                       ["Content-Type: application/json"], ["--compressed"])
    r = h.run(argv)
    expect_eq(r.rc, 0, "curl exit: %r" % r)
    expect_eq(r.stdout, h.fixture_bytes("openai_chat_stream_include_usage_toolcall.body"), "body")


@test
def stream_without_include_usage_has_no_usage(c):
    j = json.loads(h.fixture_bytes("openai_chat_stream_include_usage_toolcall.req.json"))
    del j["stream_options"]
    argv = h.curl_argv(c.servers, "api.openai.com", "/v1/chat/completions",
                       h.write_temp(json.dumps(j)), ["Content-Type: application/json"])
    out = h.run(argv).stdout
    expect(b"usage" not in out, "usage present without include_usage")
    expect(b'"choices":[]' not in out, "usage chunk present")
    expect(out.endswith(b"data: [DONE]\n\n"), "no [DONE]")
    gen = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    out = h.run(h.curl_argv(c.servers, "api.openai.com", "/v1/chat/completions",
                            h.write_temp(json.dumps(gen)))).stdout
    expect(b"usage" not in out and out.count(b"data: ") == 12 + 3, "generated stream: %r" % out)
    gen["stream_options"] = {"include_usage": True}
    out = h.run(h.curl_argv(c.servers, "api.openai.com", "/v1/chat/completions",
                            h.write_temp(json.dumps(gen)))).stdout
    events = [json.loads(e[6:]) for e in out.split(b"\n\n") if e.startswith(b"data: {")]
    expect_eq(events[-1]["choices"], [], "usage chunk choices")
    expect(all(e["usage"] is None for e in events[:-1]), "usage null before the last chunk")
    u = h.provider_server.expected_usage("/v1/chat/completions", json.dumps(gen).encode())
    expect_eq(events[-1]["usage"]["prompt_tokens"], u["input_tokens"], "prompt_tokens rule")
    expect_eq(events[-1]["usage"]["completion_tokens"], u["output_tokens"], "completion rule")


@test
def anthropic_stream_event_sequence(c):
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5, "stream": True,
                       "messages": [{"role": "user", "content": "Hello"}]}).encode()
    argv = h.curl_argv(c.servers, "api.anthropic.com", "/v1/messages", h.write_temp(body),
                       ["content-type: application/json", "anthropic-version: 2023-06-01",
                        "x-api-key: sk-ant-test", "X-Test-Cache-Read: 2048",
                        "X-Test-Cache-Write: 100"])
    r = h.run(argv)
    names = [blk.split(b"\n")[0] for blk in r.stdout.split(b"\n\n") if blk]
    expect_eq(names, [b"event: message_start", b"event: content_block_start", b"event: ping"] +
              [b"event: content_block_delta"] * 5 +
              [b"event: content_block_stop", b"event: message_delta", b"event: message_stop"],
              "event sequence")
    expect(b'event: ping\ndata: {"type": "ping"}\n\n' in r.stdout, "ping shape")
    blocks = {blk.split(b"\n")[0][7:].decode(): json.loads(blk.split(b"\n")[1][6:])
              for blk in r.stdout.split(b"\n\n") if blk}
    su = blocks["message_start"]["message"]["usage"]
    expect_eq((su["input_tokens"], su["cache_read_input_tokens"],
               su["cache_creation_input_tokens"], su["output_tokens"]),
              (len(body) // 4, 2048, 100, 1), "message_start usage")
    expect_eq(blocks["message_delta"]["usage"]["output_tokens"], 5, "final output_tokens")
    expect_eq(blocks["message_start"]["message"]["model"], "claude-haiku-4-5-20251001", "model")
    u = ps.expected_usage("/v1/messages", body, {"X-Test-Cache-Read": "2048",
                                                 "x-test-cache-write": "100"})
    expect_eq(u, {"input_tokens": len(body) // 4 + 2148, "output_tokens": 5,
                  "cache_read_tokens": 2048, "cache_write_tokens": 100, "reasoning_tokens": 0,
                  "total_tokens": len(body) // 4 + 2153}, "expected_usage")


@test
def requests_session_keepalive_and_gzip(c):
    calls = [{"url": c.servers.url("api.openai.com", "/v1/chat/completions"),
              "headers": {"Content-Type": "application/json", "Authorization": "Bearer sk-x"},
              "body": json.dumps({"model": "gpt-4o", "max_tokens": n,
                                  "messages": [{"role": "user", "content": "count"}]})}
             for n in (3, 5, 7)]
    r = h.run(h.pyagent_argv(c.servers, "requests", calls, session=True))
    expect_eq(r.rc, 0, "agent exit: %r" % r)
    parts = r.stdout.split(b"== 200\n")[1:]
    expect_eq(len(parts), 3, "responses")
    for n, p in zip((3, 5, 7), parts):
        j = json.loads(p)
        expect_eq(j["usage"]["completion_tokens"], n, "completion_tokens")
    seen = c.servers.requests_seen()
    expect_eq([(s["conn"], s["seq"]) for s in seen],
              [(seen[0]["conn"], 1), (seen[0]["conn"], 2), (seen[0]["conn"], 3)],
              "three requests on one connection")
    expect_eq([(s["encoding"], s["framing"]) for s in seen], [("gzip", "chunked")] * 3,
              "gzip + chunked for requests (Accept-Encoding: gzip)")


@test
def httpx_stream_and_urllib(c):
    body = json.dumps({"model": "llama3.2", "prompt": "Why is the sky blue?"})
    calls = [{"url": c.servers.url("127.0.0.1", "/api/generate"), "body": body, "stream": True}]
    for lib in ("httpx", "urllib"):
        r = h.run(h.pyagent_argv(c.servers, lib, calls))
        expect_eq(r.rc, 0, lib + " exit: %r" % r)
        lines = r.stdout.split(b"\n")[1:-2]
        objs = [json.loads(x) for x in lines]
        expect_eq(len(objs), 13, lib + " ndjson lines")
        expect(objs[-1]["done"] is True and objs[-1]["eval_count"] == 12, lib + " final line")
        expect_eq(objs[-1]["prompt_eval_count"], len(body) // 4, "prompt_eval_count")
    seen = c.servers.requests_seen()
    expect_eq([(s["tls"], s["encoding"], s["framing"]) for s in seen],
              [(False, "identity", "chunked")] * 2, "ollama: plain, never gzip, chunked")


@test
def ollama_nonstream_fixture_content_length(c):
    argv = h.curl_argv(c.servers, "127.0.0.1", "/api/chat",
                       h.fixture_path("ollama_chat_nonstream.req.json"), (),
                       ["-D", "/dev/stderr"])
    r = h.run(argv)
    expect_eq(r.stdout, h.fixture_bytes("ollama_chat_nonstream.body"), "body")
    expect("Content-Length: 389" in r.stderr.decode(), "content-length: %r" % r.stderr)


@test
def expect_100_continue(c):
    argv = h.curl_argv(c.servers, "api.openai.com", "/v1/chat/completions",
                       h.fixture_path("openai_chat_nonstream_cached.req.json"),
                       ["Content-Type: application/json", "Expect: 100-continue"],
                       ["-D", "/dev/stderr"])
    r = h.run(argv)
    expect_eq(r.stdout, h.fixture_bytes("openai_chat_nonstream_cached.body"), "body")
    expect(r.stderr.decode().startswith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"),
           "interim response: %r" % r.stderr[:200])
    seen = c.servers.requests_seen()
    expect(seen[0]["sent_100_continue"] is True, "server did not send 100 Continue")


@test
def error_shapes(c):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
    r = h.run(h.curl_argv(c.servers, "api.openai.com", "/v1/chat/completions",
                          h.write_temp(body), ["X-Test-Scenario: rate_limit"],
                          ["-D", "/dev/stderr"]))
    head = r.stderr.decode()
    expect(head.startswith("HTTP/1.1 429 Too Many Requests"), head[:100])
    expect("retry-after: 20\r\n" in head, "retry-after")
    expect_eq(json.loads(r.stdout)["error"]["code"], "rate_limit_exceeded", "openai 429 code")
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "x"}]})
    for scen, status, etype in (("overloaded", 529, "overloaded_error"),
                                ("auth", 401, "authentication_error"),
                                ("server_error", 500, "api_error"),
                                ("rate_limit", 429, "rate_limit_error")):
        r = h.run(h.curl_argv(c.servers, "api.anthropic.com", "/v1/messages", h.write_temp(body),
                              ["X-Test-Scenario: " + scen], ["-w", "\n%{http_code}"]))
        j, code = r.stdout.rsplit(b"\n", 1)
        expect_eq(int(code), status, scen + " status")
        expect_eq(json.loads(j)["error"]["type"], etype, scen + " error type")
        expect_eq(json.loads(j)["type"], "error", scen + " envelope")


@test
def connection_close_honoured(c):
    body = json.dumps({"model": "gpt-4o", "messages": []}).encode()
    two = post("api.openai.com", "/v1/chat/completions", body, close=False) + \
        post("api.openai.com", "/v1/chat/completions", body, close=True)
    data = raw_exchange(c, "api.openai.com", two)
    expect_eq(data.count(b"HTTP/1.1 200 OK"), 2, "two pipelined answers then close")
    expect(b"Connection: keep-alive" in data and b"Connection: close" in data, "connection hdrs")


if __name__ == "__main__":
    h.main(setup, teardown)
