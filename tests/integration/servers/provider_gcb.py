"""provider_gcb.py - provider_server.py's answers for Google Gemini (and Vertex AI), Cohere and
AWS Bedrock, byte for byte in each provider's own framing.

respond(req) returns the keyword arguments of provider_server.Response for a request to one of
these APIs, or None when the path is none of theirs. The Host header does not matter; the path
does:

  Gemini / Vertex   …/models/M:generateContent         JSON
                    …/models/M:streamGenerateContent?alt=sse   SSE, CRLF, one
                                                       GenerateContentResponse an event
                    …/models/M:streamGenerateContent   the default: a JSON array
                                                       "[{…}\n,\r\n{…}\n]" as application/json,
                                                       sent in 41-byte pieces that cut across
                                                       elements
                    …/models/M:embedContent, :batchEmbedContents   vectors, no usage
                    …/models/M:countTokens             {"totalTokens": P}
  Cohere            /v1/chat (NDJSON stream application/stream+json when "stream": true),
                    /v2/chat (SSE when "stream": true), /v1/embed, /v2/embed
  Bedrock           /model/{id}/converse, /converse-stream (binary AWS event-stream),
                    /invoke (Anthropic Messages body plus x-amzn-bedrock-*-token-count
                    headers), /invoke-with-response-stream (event-stream of
                    {"bytes": base64(Anthropic event)} chunks)

Recorded bodies are sent where the request matches the recording: Gemini SSE with model
gemini-2.5-flash (gemini_stream_generate_content_single_chunk), Cohere v2 chat with model
command-r7b-12-2024 not streamed (cohere_v2_chat_cached), Bedrock converse with model
us.anthropic.claude-sonnet-4-5-20250929-v1:0 (bedrock_converse_cache_write).

Generated usage (expected() computes it in DESIGN.md's semantics): B = request body bytes,
P = max(1, B // 4), O = X-Test-Output-Tokens (default 5), R = X-Test-Cache-Read, W =
X-Test-Cache-Write (Bedrock), Z = X-Test-Reasoning-Tokens (Gemini thoughts).
  Gemini:  promptTokenCount P + R, cachedContentTokenCount R, candidatesTokenCount O,
           thoughtsTokenCount Z; streams send a partial usageMetadata (prompt only) in the first
           chunk and the whole one in the last. modelVersion: the model of the path, with
           "-001" added on Vertex hosts' paths (projects/…), as Vertex answers.
  Cohere:  tokens {P + R, O}, cached_tokens R, billed_units {P, O}; v1 meta the same without
           cached tokens. Embed: billed_units {input_tokens: P}.
  Bedrock: converse usage inputTokens P, cacheRead R, cacheWrite W, outputTokens O; invoke the
           same in Anthropic's usage and in the headers.
  => input P + R + W, cache_read R, cache_write W, output O + Z, reasoning Z.
Embeddings: Gemini sends no usage (the record is estimated); countTokens bills nothing.

X-Test-Scenario: rate_limit | auth | overloaded | server_error (the provider's error shape and
status; Bedrock with its x-amzn-ErrorType header), truncate (a stream cut off after its first
half), stream_exception (Bedrock converse-stream: a throttlingException message after the text).
"""
import base64
import hashlib
import json
import os
import struct
import zlib

WORDS = ["Tokens", " are", " counted", " where", " the", " agent", " runs", "."]


def _fixtures():
    return os.environ.get("TOKSHIM_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "shared", "fixtures")


def _fixture(case):
    path = os.path.join(_fixtures(), case + ".body")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def _compact(o):
    return json.dumps(o, separators=(",", ":")).encode()


def _hint(req, name, default=0):
    return req.int_header(name, default)


def numbers(req):
    return {"P": max(1, len(req.body) // 4), "O": _hint(req, "X-Test-Output-Tokens", 5),
            "R": _hint(req, "X-Test-Cache-Read"), "W": _hint(req, "X-Test-Cache-Write"),
            "Z": _hint(req, "X-Test-Reasoning-Tokens")}


def api_of(path):
    """(family, api, model) of a request path, or None."""
    p = path.split("?", 1)[0]
    seg = p.rsplit("/", 1)[-1]
    if ":" in seg:
        model, verb = seg.split(":", 1)
        if verb in ("generateContent", "streamGenerateContent", "embedContent",
                    "batchEmbedContents", "countTokens"):
            return "gemini", verb, model
    if p in ("/v1/chat", "/v2/chat", "/v1/embed", "/v2/embed"):
        return "cohere", p[1:], None
    parts = p.split("/")
    if len(parts) == 4 and parts[1] == "model" and parts[3] in (
            "converse", "converse-stream", "invoke", "invoke-with-response-stream"):
        return "bedrock", parts[3], parts[2]
    return None


def expected(path, body, headers=None):
    """DESIGN.md usage of a generated answer (not for fixture cases: use the manifest)."""
    class R:
        pass
    r = R()
    r.body = body
    hd = {k.lower(): v for k, v in (headers or {}).items()}
    r.int_header = lambda name, default=0: int(hd.get(name.lower(), default))
    n = numbers(r)
    fam, api, _ = api_of(path)
    if fam == "gemini" and api in ("embedContent", "batchEmbedContents", "countTokens"):
        raise ValueError("no usage is sent for " + api)
    if fam == "cohere" and api.endswith("embed"):
        return _usage(n["P"], 0, 0, 0, 0)
    inp = n["P"] + n["R"] + (n["W"] if fam == "bedrock" else 0)
    z = n["Z"] if fam == "gemini" else 0
    return _usage(inp, n["O"] + z, n["R"], n["W"] if fam == "bedrock" else 0, z)


def _usage(inp, out, cr, cw, rs):
    return {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": cr,
            "cache_write_tokens": cw, "reasoning_tokens": rs, "total_tokens": inp + out}


def _resp(status, reason, ctype, parts, stream=False, compressible=True, fixture=None,
          extra=(), truncate=False):
    return {"status": status, "reason": reason,
            "headers": [("Content-Type", ctype)] + list(extra), "parts": parts,
            "stream": stream, "compressible": compressible, "fixture": fixture,
            "truncate": truncate}


# --- Gemini ---------------------------------------------------------------------------------

GEMINI_ERRORS = {
    "rate_limit": (429, "Too Many Requests", "RESOURCE_EXHAUSTED",
                   "Resource has been exhausted (e.g. check quota)."),
    "auth": (403, "Forbidden", "PERMISSION_DENIED",
             "Method doesn't allow unregistered callers (callers without established identity)."
             " Please use API Key or other form of API consumer identity to call this API."),
    "overloaded": (503, "Service Unavailable", "UNAVAILABLE",
                   "The model is overloaded. Please try again later."),
    "server_error": (500, "Internal Server Error", "INTERNAL",
                     "An internal error has occurred. Please retry or report in "
                     "https://developers.generativeai.google/guide/troubleshooting"),
}


def gemini(req, api, model, scenario):
    n = numbers(req)
    ctype = "application/json; charset=UTF-8"
    if scenario in GEMINI_ERRORS:
        code, reason, status, msg = GEMINI_ERRORS[scenario]
        body = json.dumps({"error": {"code": code, "message": msg, "status": status}}, indent=2)
        return _resp(code, reason, ctype, [(body + "\n").encode()])
    if api == "countTokens":
        return _resp(200, "OK", ctype, [_compact({"totalTokens": n["P"]})])
    if api == "embedContent":
        return _resp(200, "OK", ctype, [_compact({"embedding": {"values": [0.013, -0.042]}})])
    if api == "batchEmbedContents":
        k = len(req.json.get("requests", []))
        return _resp(200, "OK", ctype, [_compact({"embeddings": [{"values": [0.5]}] * k})])
    sse = "alt=sse" in req.target
    if api == "streamGenerateContent" and sse and model == "gemini-2.5-flash":
        body = _fixture("gemini_stream_generate_content_single_chunk")
        if body is not None:
            return _resp(200, "OK", "text/event-stream", [body], stream=True,
                         fixture="gemini_stream_generate_content_single_chunk")
    version = model + ("-001" if "/projects/" in req.path else "")
    words = [WORDS[i % len(WORDS)] for i in range(n["O"])]
    full = {"promptTokenCount": n["P"] + n["R"], "candidatesTokenCount": n["O"],
            "totalTokenCount": n["P"] + n["R"] + n["O"] + n["Z"]}
    if n["R"]:
        full["cachedContentTokenCount"] = n["R"]
    if n["Z"]:
        full["thoughtsTokenCount"] = n["Z"]
    rid = hashlib.sha256(req.body).hexdigest()[:20]

    def chunk(text, usage, last):
        c = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if last:
            c["finishReason"] = "STOP"
        return {"candidates": [c], "usageMetadata": usage, "modelVersion": version,
                "responseId": rid}

    if api == "generateContent":
        body = json.dumps(chunk("".join(words), full, True), indent=2)
        return _resp(200, "OK", ctype, [(body + "\n").encode()])
    half = max(1, len(words) // 2)
    chunks = [chunk("".join(words[:half]), {"promptTokenCount": n["P"] + n["R"],
                                            "totalTokenCount": n["P"] + n["R"]}, False),
              chunk("".join(words[half:]), full, True)]
    cut = scenario == "truncate"
    if sse:
        return _resp(200, "OK", "text/event-stream",
                     [b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks],
                     stream=True, truncate=cut)
    text = b"[" + b"\n,\r\n".join(json.dumps(c, indent=2).encode() for c in chunks) + b"\n]"
    return _resp(200, "OK", ctype, [text[i:i + 41] for i in range(0, len(text), 41)],
                 stream=True, truncate=cut)


# --- Cohere ---------------------------------------------------------------------------------

COHERE_ERRORS = {
    "rate_limit": (429, "Too Many Requests",
                   "You are using a Trial key, which is limited to 10 API calls / minute."),
    "auth": (401, "Unauthorized", "invalid api token"),
    "server_error": (500, "Internal Server Error", "internal server error, this has been "
                                                   "reported to our developers"),
    "overloaded": (503, "Service Unavailable", "service unavailable"),
}


def cohere(req, api, scenario):
    n = numbers(req)
    j = req.json
    rid = hashlib.sha256(req.body).hexdigest()
    rid = "%s-%s-%s-%s-%s" % (rid[:8], rid[8:12], rid[12:16], rid[16:20], rid[20:32])
    ctype = "application/json"
    if scenario in COHERE_ERRORS:
        code, reason, msg = COHERE_ERRORS[scenario]
        return _resp(code, reason, ctype, [_compact({"id": rid, "message": msg})])
    if api.endswith("embed"):
        texts = j.get("texts", [])
        body = {"id": rid, "embeddings": {"float": [[0.25, -0.5]] * len(texts)},
                "texts": texts, "meta": {"api_version": {"version": api[1]},
                                         "billed_units": {"input_tokens": n["P"]}}}
        return _resp(200, "OK", ctype, [_compact(body)])
    words = [WORDS[i % len(WORDS)] for i in range(n["O"])]
    tokens = {"input_tokens": n["P"] + n["R"], "output_tokens": n["O"]}
    billed = {"input_tokens": n["P"], "output_tokens": n["O"]}
    stream = j.get("stream") is True
    cut = scenario == "truncate"
    if api == "v2/chat":
        if not stream and j.get("model") == "command-r7b-12-2024":
            body = _fixture("cohere_v2_chat_cached")
            if body is not None:
                return _resp(200, "OK", ctype, [body], fixture="cohere_v2_chat_cached")
        usage = {"billed_units": billed, "tokens": tokens, "cached_tokens": n["R"]}
        if not stream:
            body = {"id": rid, "message": {"role": "assistant", "content": [
                {"type": "text", "text": "".join(words)}]}, "finish_reason": "COMPLETE",
                "usage": usage}
            return _resp(200, "OK", ctype, [_compact(body)])

        def ev(name, obj):
            return ("event: %s\ndata: %s\n\n" % (name, json.dumps(obj))).encode()
        events = [ev("message-start", {"id": rid, "type": "message-start", "delta": {
            "message": {"role": "assistant", "content": [], "tool_plan": "",
                        "tool_calls": [], "citations": []}}}),
                  ev("content-start", {"type": "content-start", "index": 0, "delta": {
                      "message": {"content": {"type": "text", "text": ""}}}})]
        events += [ev("content-delta", {"type": "content-delta", "index": 0, "delta": {
            "message": {"content": {"text": w}}}}) for w in words]
        events += [ev("content-end", {"type": "content-end", "index": 0}),
                   ev("message-end", {"type": "message-end", "delta": {
                       "finish_reason": "COMPLETE", "usage": usage}})]
        return _resp(200, "OK", "text/event-stream", events, stream=True, truncate=cut)
    meta = {"api_version": {"version": "1"}, "billed_units": billed,
            "tokens": {"input_tokens": n["P"], "output_tokens": n["O"]}}
    if not stream:
        body = {"response_id": rid, "text": "".join(words), "generation_id": rid,
                "chat_history": [], "finish_reason": "COMPLETE", "meta": meta}
        return _resp(200, "OK", ctype, [_compact(body)])
    lines = [_compact({"is_finished": False, "event_type": "stream-start",
                       "generation_id": rid}) + b"\n"]
    lines += [_compact({"is_finished": False, "event_type": "text-generation", "text": w}) +
              b"\n" for w in words]
    lines.append(_compact({"is_finished": True, "event_type": "stream-end", "response": {
        "response_id": rid, "text": "".join(words), "generation_id": rid,
        "finish_reason": "COMPLETE", "meta": meta}, "finish_reason": "COMPLETE"}) + b"\n")
    return _resp(200, "OK", "application/stream+json", lines, stream=True, truncate=cut)


# --- Bedrock --------------------------------------------------------------------------------

def _es_header(name, value):
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v


def es_message(event_type, payload, message_type="event"):
    """One AWS event-stream message with correct prelude and message CRCs."""
    key = ":exception-type" if message_type == "exception" else ":event-type"
    headers = (_es_header(key, event_type) + _es_header(":content-type", "application/json") +
               _es_header(":message-type", message_type))
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    msg = prelude + headers + payload
    return msg + struct.pack(">I", zlib.crc32(msg))


BEDROCK_ERRORS = {
    "rate_limit": (429, "Too Many Requests", "ThrottlingException",
                   "Too many requests, please wait before trying again."),
    "auth": (403, "Forbidden", "AccessDeniedException",
             "You don't have access to the model with the specified model ID."),
    "overloaded": (503, "Service Unavailable", "ServiceUnavailableException",
                   "Bedrock is unable to process your request."),
    "server_error": (500, "Internal Server Error", "InternalServerException",
                     "The server encountered an internal error."),
}


def _p(k):
    """The padding field Bedrock adds to stream payloads against size side channels."""
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[:k]


def bedrock(req, api, model_id, scenario):
    n = numbers(req)
    model = model_id.replace("%3A", ":").replace("%3a", ":")
    rid = hashlib.sha256(req.body).hexdigest()
    rid = "%s-%s-%s-%s-%s" % (rid[:8], rid[8:12], rid[12:16], rid[16:20], rid[20:32])
    base = [("x-amzn-RequestId", rid)]
    if scenario in BEDROCK_ERRORS:
        code, reason, etype, msg = BEDROCK_ERRORS[scenario]
        return _resp(code, reason, "application/json", [_compact({"message": msg})],
                     extra=base + [("x-amzn-ErrorType",
                                    etype + ":http://internal.amazon.com/coral/com.amazon.bedrock/")])
    words = [WORDS[i % len(WORDS)] for i in range(n["O"])]
    usage = {"inputTokens": n["P"], "outputTokens": n["O"], "cacheReadInputTokens": n["R"],
             "cacheWriteInputTokens": n["W"],
             "totalTokens": n["P"] + n["R"] + n["W"] + n["O"]}
    es = "application/vnd.amazon.eventstream"
    cut = scenario == "truncate"
    if api == "converse":
        if model == "us.anthropic.claude-sonnet-4-5-20250929-v1:0":
            body = _fixture("bedrock_converse_cache_write")
            if body is not None:
                return _resp(200, "OK", "application/json", [body], extra=base,
                             fixture="bedrock_converse_cache_write")
        body = {"metrics": {"latencyMs": 412}, "output": {"message": {
            "content": [{"text": "".join(words)}], "role": "assistant"}},
            "stopReason": "end_turn", "usage": usage}
        return _resp(200, "OK", "application/json", [_compact(body)], extra=base)
    if api == "converse-stream":
        msgs = [es_message("messageStart", _compact({"p": _p(3), "role": "assistant"}))]
        msgs += [es_message("contentBlockDelta", _compact(
            {"contentBlockIndex": 0, "delta": {"text": w}, "p": _p(9)})) for w in words]
        if scenario == "stream_exception":
            msgs.append(es_message("throttlingException", _compact(
                {"message": "Too many tokens, please wait before trying again."}), "exception"))
            return _resp(200, "OK", es, msgs, stream=True, compressible=False, extra=base)
        msgs += [es_message("contentBlockStop", _compact({"contentBlockIndex": 0, "p": _p(5)})),
                 es_message("messageStop", _compact({"p": _p(7), "stopReason": "end_turn"})),
                 es_message("metadata", _compact({"metrics": {"latencyMs": 388}, "p": _p(11),
                                                  "usage": usage}))]
        return _resp(200, "OK", es, msgs, stream=True, compressible=False, extra=base,
                     truncate=cut)
    vendor_model = "claude-sonnet-4-5-20250929"
    a_usage = {"input_tokens": n["P"], "cache_creation_input_tokens": n["W"],
               "cache_read_input_tokens": n["R"], "output_tokens": n["O"]}
    msg_id = "msg_bdrk_01" + rid.replace("-", "")[:22]
    if api == "invoke":
        body = {"id": msg_id, "type": "message", "role": "assistant", "model": vendor_model,
                "content": [{"type": "text", "text": "".join(words)}],
                "stop_reason": "end_turn", "stop_sequence": None, "usage": a_usage}
        hdrs = base + [("X-Amzn-Bedrock-Invocation-Latency", "512"),
                       ("X-Amzn-Bedrock-Output-Token-Count", str(n["O"])),
                       ("X-Amzn-Bedrock-Input-Token-Count", str(n["P"]))]
        if n["R"]:
            hdrs.append(("X-Amzn-Bedrock-Cache-Read-Input-Token-Count", str(n["R"])))
        if n["W"]:
            hdrs.append(("X-Amzn-Bedrock-Cache-Write-Input-Token-Count", str(n["W"])))
        return _resp(200, "OK", "application/json", [_compact(body)], extra=hdrs)
    events = [{"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": vendor_model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": dict(a_usage, output_tokens=1)}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    events += [{"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": w}} for w in words]
    events += [{"type": "content_block_stop", "index": 0},
               {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                   "stop_sequence": None},
                "usage": {"output_tokens": n["O"]}},
               {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
                   "inputTokenCount": n["P"], "outputTokenCount": n["O"],
                   "invocationLatency": 640, "firstByteLatency": 210,
                   "cacheReadInputTokenCount": n["R"], "cacheWriteInputTokenCount": n["W"]}}]
    msgs = [es_message("chunk", _compact({"bytes": base64.b64encode(_compact(e)).decode(),
                                          "p": _p(4)})) for e in events]
    return _resp(200, "OK", es, msgs, stream=True, compressible=False, extra=base, truncate=cut)


def respond(req):
    """Response keyword arguments for a Gemini, Cohere or Bedrock request, or None."""
    a = api_of(req.target)
    if a is None or req.method != "POST":
        return None
    fam, api, model = a
    scenario = (req.header("X-Test-Scenario") or "").strip().lower()
    if fam == "gemini":
        return gemini(req, api, model, scenario)
    if fam == "cohere":
        return cohere(req, api, scenario)
    return bedrock(req, api, model, scenario)
