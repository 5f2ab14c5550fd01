#!/usr/bin/python3
"""provider_server.py - an HTTP/1.1 server that answers like OpenAI, Anthropic and Ollama.

Used by tokshim's integration tests and by scripts/demo.sh. Python 3 standard library only.
It writes every status line, header and body byte by hand on the socket so that what a client
(and the tokshim shim inside it) sees is what the real providers send: Content-Length or
chunked framing, gzip Content-Encoding (also over a chunked SSE stream, compressed
incrementally with one zlib stream and a Z_SYNC_FLUSH per event), SSE events and NDJSON lines
flushed one chunk each, keep-alive with several requests per connection, 100 Continue, and the
providers' error shapes.

    /usr/bin/python3 provider_server.py --cert server.pem --key server.key \
        [--ports-file F] [--log F]

Listens on 127.0.0.1 twice, both ports chosen by the OS: TLS (for api.openai.com and
api.anthropic.com, clients resolve those names to 127.0.0.1) and plain HTTP (Ollama). When
ready it prints one JSON line {"tls": PORT, "plain": PORT, "pid": PID} on stdout and writes the
same object to --ports-file. SIGTERM or SIGINT stops it. With --log, every request is appended
as one JSON line (see Request log below) so a test can check that the agent's request reached
the server unchanged.

Endpoints (either port; the Host header does not matter)
  POST /v1/chat/completions    OpenAI chat; "stream": true gives SSE; the final usage chunk
                               (choices: []) is sent only when stream_options.include_usage
                               is true, and only then do the other chunks carry "usage": null.
  POST /v1/messages[?...]      Anthropic messages; "stream": true gives the real event sequence
                               message_start, content_block_start, ping, content_block_delta…,
                               content_block_stop, message_delta, message_stop.
  POST /api/chat, /api/generate  Ollama; NDJSON stream unless the body says "stream": false.
  Gemini, Vertex AI, Cohere, Bedrock paths   answered by provider_gcb.py (see its docstring).
  anything else                404 in the provider's error shape.

Recorded bodies (from $TOKSHIM_FIXTURES, default <repo>/../shared/fixtures) are sent as they
were recorded when the request matches the recording:
  OpenAI chat, model "gpt-4.1", not streamed          openai_chat_nonstream_cached.body
  OpenAI chat, model "gpt-4o-mini", streamed          openai_chat_stream_include_usage_toolcall.body
        (without include_usage: the usage chunk is dropped and "usage":null removed)
  Anthropic, model "claude-sonnet-4-5", not streamed  anthropic_messages_nonstream_cache_write_and_read.body
  Ollama /api/chat, model "mistral:7b-instruct", "stream": false   ollama_chat_nonstream.body
Everything else is generated, deterministically from the request (same request, same bytes).
When the fixtures directory is missing, these requests get generated bodies too.

Generated usage (the rule tests use; expected_usage() below computes it)
  B  = length of the request body in bytes (as received, after chunked decoding)
  P  = max(1, B // 4)                      prompt tokens not served from cache
  R  = int(X-Test-Cache-Read header, 0)    tokens read from cache
  W  = int(X-Test-Cache-Write header, 0)   tokens written to cache (Anthropic only)
  Z  = int(X-Test-Reasoning-Tokens, 0)     reasoning tokens (OpenAI only)
  O  = int(X-Test-Output-Tokens) if given, else min(max_tokens, 12) where max_tokens is the
       request's max_completion_tokens / max_tokens (OpenAI), max_tokens (Anthropic),
       options.num_predict (Ollama), 12 when absent. The reply text is O words, one per token,
       one per streamed delta.
  OpenAI:    prompt_tokens = P + R, cached_tokens = R, completion_tokens = O + Z,
             reasoning_tokens = Z, total_tokens = P + R + O + Z
  Anthropic: input_tokens = P, cache_read_input_tokens = R, cache_creation_input_tokens = W,
             output_tokens = O (message_start says output_tokens 1, message_delta the final O)
  Ollama:    prompt_eval_count = P, eval_count = O
  In DESIGN.md's semantics: input = P + R + W, cache_read = R, cache_write = W,
  output = O + Z, reasoning = Z, total = input + output.
  The response model is the dated snapshot of the requested alias (SNAPSHOTS below), else the
  requested name.

Request headers that choose behaviour (a test's choice, never something the shim must know)
  X-Test-Scenario: rate_limit (429 + Retry-After) | auth (401) | server_error (500) |
                   overloaded (Anthropic 529 overloaded_error, OpenAI 503) |
                   truncate (a stream cut off after half its events: the connection closes
                   without the final chunk) | close (answer, then close: Connection: close)
  X-Test-Retry-After: seconds for Retry-After (default 20)
  X-Test-Encoding: gzip | identity. Default: gzip when Accept-Encoding lists gzip (OpenAI and
                   Anthropic only; Ollama, like Go's net/http, never compresses).
  X-Test-Framing: length | chunked for non-streamed bodies. Default: Content-Length when not
                  compressed, chunked when gzip (as Cloudflare does). Streams are always chunked.
  X-Test-Chunk-Sizes: comma-separated sizes for splitting a chunked non-streamed body
                      (default 256,1024,4096 repeated).
  X-Test-Event-Delay-Ms: pause between streamed events (default 2).
  X-Test-Reply: path of a JSON file giving the exact answer (see replay()), for the APIs and
                services whose bodies this server does not generate.
  Connection: close and Expect: 100-continue are honoured as HTTP/1.1 says.

Request log (--log): one JSON object per request: conn (connection number), seq (1-based
request number on that connection), tls, port, method, target, version, headers
([[name, value], …] as received), body_b64, body_len, body_sha256, sent_100_continue,
status, encoding, framing, fixture (case name or null).
"""
import argparse
import base64
import email.utils
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import zlib

import provider_gcb  # Gemini, Vertex AI, Cohere and Bedrock answers

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def fixtures_dir():
    return os.environ.get("TOKSHIM_FIXTURES") or os.path.join(REPO, "..", "shared", "fixtures")


def read_fixture(case):
    with open(os.path.join(fixtures_dir(), case + ".body"), "rb") as f:
        return f.read()


SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "o4-mini": "o4-mini-2025-04-16",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
}

WORDS = ["Tokens", " are", " counted", " where", " the", " agent", " runs", ",", " not",
         " where", " the", " bill", " arrives", ".", " Every", " call", " leaves", " one",
         " record", "."]

# Fixture choice: (family, model, stream) -> case.
FIXTURE_CASES = {
    ("openai", "gpt-4.1", False): "openai_chat_nonstream_cached",
    ("openai", "gpt-4o-mini", True): "openai_chat_stream_include_usage_toolcall",
    ("anthropic", "claude-sonnet-4-5", False): "anthropic_messages_nonstream_cache_write_and_read",
    ("ollama-chat", "mistral:7b-instruct", False): "ollama_chat_nonstream",
}


# ---------------------------------------------------------------------------------------------
# Request model and the deterministic rules (importable by tests)
# ---------------------------------------------------------------------------------------------

class Request:
    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # [(name, value)] as received
        self.body = body
        self.path = target.split("?", 1)[0]
        try:
            self.json = json.loads(body.decode("utf-8")) if body else {}
            if not isinstance(self.json, dict):
                self.json = {}
        except (ValueError, UnicodeDecodeError):
            self.json = {}
        self._form()

    def _form(self):
        """A multipart/form-data body (libcurl's MIME posts): its text fields stand for the JSON
        body's, and its random boundary is blanked in self.body so the answer is the same for
        the same form (the log keeps the body as received)."""
        ct = self.header("Content-Type") or ""
        b = ct.partition("boundary=")[2].strip('"; ').encode()
        if not ct.lower().startswith("multipart/form-data") or not b:
            return
        for part in self.body.split(b"--" + b)[1:]:
            head, _, value = part.partition(b"\r\n\r\n")
            name = re.search(rb'name="([^"]*)"', head)
            if name and b"filename=" not in head:
                self.json[name.group(1).decode()] = value[:-2].decode("utf-8", "replace")
        self.body = self.body.replace(b, b"B" * len(b))

    def header(self, name, default=None):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def int_header(self, name, default=0):
        v = self.header(name)
        try:
            return int(v) if v is not None else default
        except ValueError:
            return default


def family_of(path):
    if path == "/v1/chat/completions":
        return "openai"
    if path == "/v1/messages":
        return "anthropic"
    if path == "/api/chat":
        return "ollama-chat"
    if path == "/api/generate":
        return "ollama-generate"
    return None


def is_stream(family, j):
    if family.startswith("ollama"):
        return j.get("stream", True) is not False  # Ollama streams unless told not to
    return j.get("stream") is True


def include_usage(j):
    so = j.get("stream_options")
    return isinstance(so, dict) and so.get("include_usage") is True


def fixture_case(family, j):
    """The recorded case to serve, or None (also when the fixtures are not there: a fresh
    checkout without ../shared/fixtures gets generated bodies instead)."""
    case = FIXTURE_CASES.get((family, j.get("model"), is_stream(family, j)))
    if case and not os.path.exists(os.path.join(fixtures_dir(), case + ".body")):
        return None
    return case


def output_count(family, j, hdr_value):
    if hdr_value is not None:
        return max(0, int(hdr_value))
    mt = None
    if family == "openai":
        mt = j.get("max_completion_tokens", j.get("max_tokens"))
    elif family == "anthropic":
        mt = j.get("max_tokens")
    else:
        opts = j.get("options")
        if isinstance(opts, dict):
            mt = opts.get("num_predict")
    if not isinstance(mt, int) or mt <= 0:
        return 12
    return min(mt, 12)


def native_numbers(family, body, headers_get):
    """The generated numbers P, R, W, Z, O for a request (see the module docstring)."""
    try:
        j = json.loads(body.decode("utf-8")) if body else {}
        if not isinstance(j, dict):
            j = {}
    except (ValueError, UnicodeDecodeError):
        j = {}

    def hint(name):
        v = headers_get(name)
        return int(v) if v is not None else 0

    n = {"P": max(1, len(body) // 4), "R": hint("X-Test-Cache-Read"), "W": 0, "Z": 0,
         "O": output_count(family, j, headers_get("X-Test-Output-Tokens"))}
    if family == "anthropic":
        n["W"] = hint("X-Test-Cache-Write")
    if family == "openai":
        n["Z"] = hint("X-Test-Reasoning-Tokens")
    if family.startswith("ollama"):
        n["R"] = 0
    return n


def expected_usage(path, body, headers=None):
    """DESIGN.md usage for a generated response to a POST of body to path with these request
    headers ({name: value}, case-insensitive). Not valid for fixture cases (use the manifest)."""
    hd = {k.lower(): v for k, v in (headers or {}).items()}
    family = family_of(path.split("?", 1)[0])
    n = native_numbers(family, body, lambda k: hd.get(k.lower()))
    inp = n["P"] + n["R"] + n["W"]
    out = n["O"] + n["Z"]
    return {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": n["R"],
            "cache_write_tokens": n["W"], "reasoning_tokens": n["Z"],
            "total_tokens": inp + out}


def response_model(requested):
    return SNAPSHOTS.get(requested, requested)


def _digest(body, n=24):
    return hashlib.sha256(body).hexdigest()[:n]


def _b62(body, salt, n):
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    h = hashlib.sha256(salt.encode() + body).digest()
    return "".join(alphabet[b % 62] for b in h[:n])


def _created(body):
    return 1750000000 + int(hashlib.sha256(body).hexdigest()[:6], 16)


def _compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------

class Response:
    """status, reason, provider headers (framing/encoding headers are added when sent), and
    parts: one bytes for a plain body, or the list of events of a stream."""

    def __init__(self, status, reason, headers, parts, stream=False, compressible=True,
                 fixture=None, truncate=False):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.parts = parts
        self.stream = stream
        self.compressible = compressible
        self.fixture = fixture
        self.truncate = truncate


def _http_date():
    return email.utils.formatdate(usegmt=True)


def openai_headers(req, content_type, model):
    rid = "req_" + _digest(req.body, 32)
    return [
        ("Date", _http_date()),
        ("Content-Type", content_type),
        ("access-control-expose-headers", "X-Request-ID"),
        ("openai-organization", "user-tokshim-tests"),
        ("openai-processing-ms", "412"),
        ("openai-project", "proj_tokshimTests0000000000"),
        ("openai-version", "2020-10-01"),
        ("x-envoy-upstream-service-time", "417"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-limit-tokens", "30000000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-remaining-tokens", "29998765"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-reset-tokens", "2ms"),
        ("x-request-id", rid),
        ("cf-cache-status", "DYNAMIC"),
        ("Set-Cookie", "__cf_bm=tokshimTestCookie0000; path=/; expires=Thu, 01-Jan-2037 00:00:00 GMT; "
                       "domain=.api.openai.com; HttpOnly; Secure; SameSite=None"),
        ("Strict-Transport-Security", "max-age=31536000; includeSubDomains; preload"),
        ("X-Content-Type-Options", "nosniff"),
        ("Server", "cloudflare"),
        ("CF-RAY", _digest(req.body, 16) + "-AMS"),
        ("alt-svc", 'h3=":443"; ma=86400'),
    ]


def anthropic_headers(req, content_type):
    return [
        ("Date", _http_date()),
        ("Content-Type", content_type),
        ("anthropic-ratelimit-input-tokens-limit", "2000000"),
        ("anthropic-ratelimit-input-tokens-remaining", "1999000"),
        ("anthropic-ratelimit-input-tokens-reset", "2025-09-30T10:00:01Z"),
        ("anthropic-ratelimit-output-tokens-limit", "400000"),
        ("anthropic-ratelimit-output-tokens-remaining", "400000"),
        ("anthropic-ratelimit-output-tokens-reset", "2025-09-30T10:00:01Z"),
        ("anthropic-ratelimit-requests-limit", "4000"),
        ("anthropic-ratelimit-requests-remaining", "3999"),
        ("anthropic-ratelimit-requests-reset", "2025-09-30T10:00:00Z"),
        ("request-id", "req_011C" + _b62(req.body, "rid", 20)),
        ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
        ("anthropic-organization-id", "00000000-0000-4000-8000-746f6b736869"),
        ("via", "1.1 google"),
        ("cf-cache-status", "DYNAMIC"),
        ("X-Robots-Tag", "none"),
        ("Server", "cloudflare"),
        ("CF-RAY", _digest(req.body, 16) + "-LHR"),
    ]


def ollama_headers(content_type):
    return [("Content-Type", content_type), ("Date", _http_date())]


def reply_words(n):
    return [WORDS[i % len(WORDS)] for i in range(n)]


# --- OpenAI ---------------------------------------------------------------------------------

def openai_error(req, scenario):
    model = req.json.get("model", "gpt-4o-mini")
    retry = req.header("X-Test-Retry-After", "20")
    if scenario == "rate_limit":
        body = {"error": {"message": "Rate limit reached for %s in organization org-tokshimtests on "
                                     "tokens per min (TPM): Limit 200000, Used 199420, Requested "
                                     "1337. Please try again in 227ms. Visit "
                                     "https://platform.openai.com/account/rate-limits to learn more."
                                     % model,
                          "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}
        return 429, "Too Many Requests", body, [("retry-after", retry)]
    if scenario == "auth":
        body = {"error": {"message": "Incorrect API key provided: sk-test-***************cdef. You "
                                     "can find your API key at "
                                     "https://platform.openai.com/account/api-keys.",
                          "type": "invalid_request_error", "param": None,
                          "code": "invalid_api_key"}}
        return 401, "Unauthorized", body, []
    if scenario == "overloaded":
        body = {"error": {"message": "The engine is currently overloaded, please try again later",
                          "type": "server_error", "param": None, "code": None}}
        return 503, "Service Unavailable", body, []
    body = {"error": {"message": "The server had an error while processing your request. Sorry "
                                 "about that!", "type": "server_error", "param": None,
                      "code": None}}
    return 500, "Internal Server Error", body, []


def openai_chat(req, scenario):
    j = req.json
    model = j.get("model", "")
    stream = is_stream("openai", j)
    if scenario in ("rate_limit", "auth", "server_error", "overloaded"):
        status, reason, body, extra = openai_error(req, scenario)
        hdrs = openai_headers(req, "application/json; charset=utf-8", model) + extra
        return Response(status, reason, hdrs, [(json.dumps(body, indent=4) + "\n").encode()])
    case = fixture_case("openai", j)
    if case and stream:
        raw = read_fixture(case)
        events = [e + b"\n\n" for e in raw.split(b"\n\n") if e.strip()]
        if not include_usage(j):
            events = [e.replace(b',"usage":null', b"") for e in events
                      if b'"choices":[]' not in e]
        return Response(200, "OK", openai_headers(req, "text/event-stream; charset=utf-8", model),
                        events, stream=True, fixture=case)
    if case:
        return Response(200, "OK", openai_headers(req, "application/json", model),
                        [read_fixture(case)], fixture=case)

    n = native_numbers("openai", req.body, req.header)
    rid = "chatcmpl-" + _b62(req.body, "id", 29)
    created = _created(req.body)
    rmodel = response_model(model)
    fp = "fp_" + _digest(req.body, 10)
    usage = {"prompt_tokens": n["P"] + n["R"], "completion_tokens": n["O"] + n["Z"],
             "total_tokens": n["P"] + n["R"] + n["O"] + n["Z"],
             "prompt_tokens_details": {"cached_tokens": n["R"], "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": n["Z"], "audio_tokens": 0,
                                           "accepted_prediction_tokens": 0,
                                           "rejected_prediction_tokens": 0}}
    words = reply_words(n["O"])
    if not stream:
        body = {"id": rid, "object": "chat.completion", "created": created, "model": rmodel,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words),
                                                     "refusal": None, "annotations": []},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": usage, "service_tier": "default", "system_fingerprint": fp}
        return Response(200, "OK", openai_headers(req, "application/json", model),
                        [(json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()])
    with_usage = include_usage(j)

    def chunk(choices, usage_value, k):
        c = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": rmodel,
             "service_tier": "default", "system_fingerprint": fp, "choices": choices}
        if with_usage:
            c["usage"] = usage_value
        c["obfuscation"] = _b62(req.body, "ob%d" % k, 4 + k % 11)
        return b"data: " + _compact(c) + b"\n\n"

    events = [chunk([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                      "logprobs": None, "finish_reason": None}], None, 0)]
    for i, w in enumerate(words):
        events.append(chunk([{"index": 0, "delta": {"content": w}, "logprobs": None,
                              "finish_reason": None}], None, i + 1))
    events.append(chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
                        None, len(words) + 1))
    if with_usage:
        events.append(chunk([], usage, len(words) + 2))
    events.append(b"data: [DONE]\n\n")
    return Response(200, "OK", openai_headers(req, "text/event-stream; charset=utf-8", model),
                    events, stream=True)


# --- Anthropic ------------------------------------------------------------------------------

def anthropic_error(req, scenario):
    rid = "req_011C" + _b62(req.body, "rid", 20)
    retry = req.header("X-Test-Retry-After", "20")
    if scenario == "rate_limit":
        e = ("rate_limit_error", "This request would exceed the rate limit for your organization "
             "(00000000-0000-4000-8000-746f6b736869) of 30,000 input tokens per minute. For details, "
             "refer to: https://docs.claude.com/en/api/rate-limits.")
        return 429, "Too Many Requests", e, rid, [("retry-after", retry)]
    if scenario == "auth":
        return 401, "Unauthorized", ("authentication_error", "invalid x-api-key"), rid, []
    if scenario == "overloaded":
        return 529, "Site Overloaded", ("overloaded_error", "Overloaded"), rid, []
    return 500, "Internal Server Error", ("api_error", "Internal server error"), rid, []


def anthropic_messages(req, scenario):
    j = req.json
    model = j.get("model", "")
    stream = is_stream("anthropic", j)
    if scenario in ("rate_limit", "auth", "server_error", "overloaded"):
        status, reason, (etype, msg), rid, extra = anthropic_error(req, scenario)
        body = _compact({"type": "error", "error": {"type": etype, "message": msg},
                         "request_id": rid})
        hdrs = anthropic_headers(req, "application/json") + [("x-should-retry", "true")] + extra
        return Response(status, reason, hdrs, [body])
    case = fixture_case("anthropic", j)
    if case:
        return Response(200, "OK", anthropic_headers(req, "application/json"),
                        [read_fixture(case)], fixture=case)
    n = native_numbers("anthropic", req.body, req.header)
    mid = "msg_01" + _b62(req.body, "msg", 22)
    rmodel = response_model(model)
    words = reply_words(n["O"])
    usage_full = {"input_tokens": n["P"], "cache_creation_input_tokens": n["W"],
                  "cache_read_input_tokens": n["R"],
                  "cache_creation": {"ephemeral_5m_input_tokens": n["W"],
                                     "ephemeral_1h_input_tokens": 0},
                  "output_tokens": n["O"], "service_tier": "standard"}
    if not stream:
        body = {"model": rmodel, "id": mid, "type": "message", "role": "assistant",
                "content": [{"type": "text", "text": "".join(words)}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": usage_full}
        return Response(200, "OK", anthropic_headers(req, "application/json"), [_compact(body)])

    def ev(name, obj):
        return b"event: " + name.encode() + b"\ndata: " + _compact(obj) + b"\n\n"

    start_usage = dict(usage_full)
    start_usage["output_tokens"] = 1
    events = [ev("message_start", {"type": "message_start", "message": {
        "model": rmodel, "id": mid, "type": "message", "role": "assistant", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}),
        b'event: ping\ndata: {"type": "ping"}\n\n']
    for w in words:
        events.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": w}}))
    events.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(ev("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                       "usage": {"input_tokens": n["P"],
                                                 "cache_creation_input_tokens": n["W"],
                                                 "cache_read_input_tokens": n["R"],
                                                 "output_tokens": n["O"]}}))
    events.append(ev("message_stop", {"type": "message_stop"}))
    return Response(200, "OK", anthropic_headers(req, "text/event-stream; charset=utf-8") +
                    [("Cache-Control", "no-cache")], events, stream=True)


# --- Ollama ---------------------------------------------------------------------------------

def _ollama_time(body, k):
    secs = 1753893765 + int(hashlib.sha256(body).hexdigest()[:4], 16)
    micro = (int(hashlib.sha256(body).hexdigest()[4:9], 16) + k * 41731) % 1000000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%06dZ" % micro


def ollama(req, scenario, family):
    j = req.json
    model = j.get("model", "")
    stream = is_stream(family, j)
    if scenario in ("rate_limit", "auth", "server_error", "overloaded"):
        status, reason, msg = {
            "rate_limit": (429, "Too Many Requests", "server busy, please try again.  maximum pending requests exceeded"),
            "auth": (401, "Unauthorized", "unauthorized"),
        }.get(scenario, (500, "Internal Server Error",
                         "llama runner process has terminated: exit status 2"))
        return Response(status, reason, ollama_headers("application/json; charset=utf-8"),
                        [_compact({"error": msg})], compressible=False)
    case = fixture_case(family, j)
    if case:
        return Response(200, "OK", ollama_headers("application/json; charset=utf-8"),
                        [read_fixture(case)], compressible=False, fixture=case)
    n = native_numbers(family, req.body, req.header)
    words = reply_words(n["O"])
    timings = {"total_duration": 1503950333 + n["O"] * 1000, "load_duration": 24249916,
               "prompt_eval_count": n["P"], "prompt_eval_duration": 343185417,
               "eval_count": n["O"], "eval_duration": 1135413666}

    def base(k):
        return {"model": model, "created_at": _ollama_time(req.body, k)}

    if family == "ollama-chat":
        def piece(k, text):
            d = base(k)
            d["message"] = {"role": "assistant", "content": text}
            return d
    else:
        def piece(k, text):
            d = base(k)
            d["response"] = text
            return d

    if not stream:
        d = piece(0, "".join(words))
        d["done_reason"] = "stop"
        d["done"] = True
        if family == "ollama-generate":
            d = {"model": d["model"], "created_at": d["created_at"], "response": d["response"],
                 "done": True, "done_reason": "stop", "context": [1, 733, 16289, 28793]}
        d.update(timings)
        return Response(200, "OK", ollama_headers("application/json; charset=utf-8"),
                        [_compact(d)], compressible=False)
    lines = []
    for i, w in enumerate(words):
        d = piece(i, w)
        d["done"] = False
        lines.append(_compact(d) + b"\n")
    d = piece(len(words), "")
    if family == "ollama-chat":
        d["done_reason"] = "stop"
        d["done"] = True
    else:
        d["done"] = True
        d["done_reason"] = "stop"
        d["context"] = [1, 733, 16289, 28793]
    d.update(timings)
    lines.append(_compact(d) + b"\n")
    return Response(200, "OK", ollama_headers("application/x-ndjson"), lines, stream=True,
                    compressible=False)


def not_found(req, family_hint):
    if req.path.startswith("/api/"):
        return Response(404, "Not Found", ollama_headers("text/plain"), [b"404 page not found"],
                        compressible=False)
    body = {"error": {"message": "Invalid URL (%s %s)" % (req.method, req.path),
                      "type": "invalid_request_error", "param": None, "code": None}}
    return Response(404, "Not Found", openai_headers(req, "application/json; charset=utf-8", ""),
                    [(json.dumps(body, indent=4) + "\n").encode()])


def replay(req, spec_path):
    """X-Test-Reply: SPEC.json, a test's exact answer for an API this server does not generate:
    {"status", "reason", "content_type", "headers": [[name, value]], and one of "body" (text),
    "fixture" (a case of $TOKSHIM_FIXTURES, sent as recorded) or "events" (a stream: each
    string one chunk), "cut_after": N (send N events, then close without the final chunk)}."""
    with open(spec_path) as f:
        spec = json.load(f)
    hdrs = [("Date", _http_date()), ("Content-Type", spec.get("content_type", "application/json"))]
    hdrs += [(k, v) for k, v in spec.get("headers", [])]
    if "events" in spec:
        parts, stream = [e.encode("utf-8") for e in spec["events"]], True
    elif "fixture" in spec:
        parts, stream = [read_fixture(spec["fixture"])], False
    else:
        parts, stream = [spec["body"].encode("utf-8")], False
    r = Response(spec.get("status", 200), spec.get("reason", "OK"), hdrs, parts, stream=stream,
                 fixture=spec.get("fixture"))
    r.cut_after = spec.get("cut_after")
    r.truncate = r.cut_after is not None
    return r


def respond(req):
    if req.header("X-Test-Reply"):
        return replay(req, req.header("X-Test-Reply"))
    gcb = provider_gcb.respond(req)
    if gcb is not None:
        return Response(**gcb)
    scenario = (req.header("X-Test-Scenario") or "").strip().lower()
    family = family_of(req.path)
    if req.method != "POST" or family is None:
        r = not_found(req, family)
    elif family == "openai":
        r = openai_chat(req, scenario)
    elif family == "anthropic":
        r = anthropic_messages(req, scenario)
    else:
        r = ollama(req, scenario, family)
    r.truncate = scenario == "truncate" and r.stream
    return r


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 on a socket, by hand
# ---------------------------------------------------------------------------------------------

class ClientGone(Exception):
    pass


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        try:
            d = self.sock.recv(65536)
        except (OSError, ssl.SSLError):
            d = b""
        if not d:
            raise ClientGone()
        self.buf += d

    def read_until(self, sep, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise ClientGone()
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError):
            raise ClientGone()


def read_request(conn):
    """Returns (method, target, version, headers, expect_continue) or raises ClientGone."""
    while True:
        head = conn.read_until(b"\r\n\r\n", 64 * 1024)
        if head.strip():
            break
    lines = head[:-4].decode("iso-8859-1").split("\r\n")
    while lines and not lines[0]:
        lines.pop(0)
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ClientGone()
    method, target, version = parts
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k, v.strip()))
    return method, target, version, headers


def read_body(conn, headers):
    def get(name):
        for k, v in headers:
            if k.lower() == name:
                return v
        return None

    te = get("transfer-encoding")
    if te and "chunked" in te.lower():
        body = b""
        while True:
            line = conn.read_until(b"\r\n")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while conn.read_until(b"\r\n") != b"\r\n":  # trailers
                    pass
                return body
            body += conn.read_exact(size)
            conn.read_exact(2)
    cl = get("content-length")
    if cl:
        return conn.read_exact(int(cl))
    return b""


def accepts_gzip(req):
    forced = (req.header("X-Test-Encoding") or "").strip().lower()
    if forced:
        return forced == "gzip"
    ae = req.header("Accept-Encoding") or ""
    for item in ae.split(","):
        tok = item.split(";")[0].strip().lower()
        q = 1.0
        for p in item.split(";")[1:]:
            p = p.strip()
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    pass
        if tok == "gzip" and q > 0:
            return True
    return False


def chunk_sizes(req):
    v = req.header("X-Test-Chunk-Sizes")
    if v:
        try:
            sizes = [int(x) for x in v.split(",") if int(x) > 0]
            if sizes:
                return sizes
        except ValueError:
            pass
    return [256, 1024, 4096]


def chunk_frame(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def plan(req, resp):
    """(gzip?, "length" | "chunked") for this response."""
    gz = resp.compressible and accepts_gzip(req)
    if resp.stream:
        return gz, "chunked"
    f = (req.header("X-Test-Framing") or "").strip().lower()
    return gz, f if f in ("length", "chunked") else ("chunked" if gz else "length")


def send_response(conn, req, resp, close):
    gz, framing = plan(req, resp)
    body = None
    if not resp.stream:
        body = resp.parts[0]
        if gz:
            co = zlib.compressobj(6, zlib.DEFLATED, 31)
            body = co.compress(body) + co.flush()
    head = ["HTTP/1.1 %d %s" % (resp.status, resp.reason)]
    for k, v in resp.headers:
        head.append("%s: %s" % (k, v))
        if k == "Content-Type":  # framing right after the type, where providers put it
            if framing == "chunked":
                head.append("Transfer-Encoding: chunked")
            else:
                head.append("Content-Length: %d" % len(body))
            head.append("Connection: %s" % ("close" if close else "keep-alive"))
    if gz:
        head.append("Content-Encoding: gzip")
        head.append("Vary: Accept-Encoding")
    conn.send(("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1"))
    if not resp.stream:
        if framing == "length":
            conn.send(body)
        else:
            sizes = chunk_sizes(req)
            pos, k = 0, 0
            while pos < len(body):
                n = sizes[k % len(sizes)]
                conn.send(chunk_frame(body[pos:pos + n]))
                pos += n
                k += 1
            conn.send(b"0\r\n\r\n")
        return gz, framing
    delay = req.int_header("X-Test-Event-Delay-Ms", 2) / 1000.0
    co = zlib.compressobj(6, zlib.DEFLATED, 31) if gz else None
    events = resp.parts
    if resp.truncate:
        events = events[:getattr(resp, "cut_after", None) or max(1, len(events) // 2)]
    for i, ev in enumerate(events):
        data = co.compress(ev) + co.flush(zlib.Z_SYNC_FLUSH) if co else ev
        conn.send(chunk_frame(data))
        if delay and i + 1 < len(events):
            time.sleep(delay)
    if resp.truncate:
        raise ClientGone()  # close without the final chunk
    if co:
        tail = co.flush()
        if tail:
            conn.send(chunk_frame(tail))
    conn.send(b"0\r\n\r\n")
    return gz, framing


class Server:
    def __init__(self, cert, key, log_path=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.log_path = log_path
        self.log_lock = threading.Lock()
        self.conn_lock = threading.Lock()
        self.nconn = 0
        self.listeners = []

    def listen(self):
        ports = {}
        for kind in ("tls", "plain"):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(128)
            self.listeners.append((kind, s))
            ports[kind] = s.getsockname()[1]
        return ports

    def serve_forever(self):
        for kind, s in self.listeners:
            threading.Thread(target=self._accept_loop, args=(kind, s), daemon=True).start()

    def _accept_loop(self, kind, lsock):
        while True:
            try:
                sock, _ = lsock.accept()
            except OSError:
                return
            with self.conn_lock:
                self.nconn += 1
                cid = self.nconn
            threading.Thread(target=self._handle, args=(kind, sock, cid, lsock.getsockname()[1]),
                             daemon=True).start()

    def _log(self, entry):
        if not self.log_path:
            return
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.log_lock:
            with open(self.log_path, "a") as f:
                f.write(line)

    def _handle(self, kind, sock, cid, port):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if kind == "tls":
                sock.settimeout(10)
                sock = self.ctx.wrap_socket(sock, server_side=True)
            sock.settimeout(60)
            conn = Conn(sock)
            seq = 0
            while True:
                method, target, version, headers = read_request(conn)
                seq += 1
                hmap = {k.lower(): v for k, v in headers}
                sent_continue = False
                has_body = "content-length" in hmap or "transfer-encoding" in hmap
                if (version == "HTTP/1.1" and "100-continue" in hmap.get("expect", "").lower()
                        and has_body):
                    conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                    sent_continue = True
                body = read_body(conn, headers)
                req = Request(method, target, version, headers, body)
                close = ("close" in hmap.get("connection", "").lower() or version != "HTTP/1.1"
                         or (req.header("X-Test-Scenario") or "").lower() == "close")
                resp = respond(req)
                entry = {"conn": cid, "seq": seq, "tls": kind == "tls", "port": port,
                         "method": method, "target": target, "version": version,
                         "headers": [[k, v] for k, v in headers],
                         "body_b64": base64.b64encode(body).decode(), "body_len": len(body),
                         "body_sha256": hashlib.sha256(body).hexdigest(),
                         "sent_100_continue": sent_continue, "status": resp.status,
                         "fixture": resp.fixture, "stream": resp.stream,
                         "tls_resumed": getattr(sock, "session_reused", None)}
                gz, framing = plan(req, resp)
                entry.update(encoding="gzip" if gz else "identity", framing=framing)
                self._log(entry)  # before answering: a client that has its answer finds it
                send_response(conn, req, resp, close)
                if close:
                    break
        except ClientGone:
            pass
        except Exception as e:  # a server bug: say so on stderr, drop the connection
            sys.stderr.write("provider_server: %s: %r\n" % (type(e).__name__, e))
        finally:
            try:
                if isinstance(sock, ssl.SSLSocket):
                    try:
                        sock.settimeout(0.5)
                        sock.unwrap()
                    except (OSError, ssl.SSLError, ValueError):
                        pass
                sock.close()
            except OSError:
                pass


def main(server_class=Server):
    """Serves until SIGTERM; server_class: Server, or h2_server.py's subclass."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ports-file")
    ap.add_argument("--log")
    a = ap.parse_args()
    srv = server_class(a.cert, a.key, a.log)
    ports = srv.listen()
    ports["pid"] = os.getpid()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    srv.serve_forever()
    line = json.dumps(ports)
    if a.ports_file:
        tmp = a.ports_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.rename(tmp, a.ports_file)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    for _, s in srv.listeners:
        s.close()


if __name__ == "__main__":
    main()
