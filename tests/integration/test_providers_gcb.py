#!/usr/bin/python3
"""test_providers_gcb.py - Google Gemini and Vertex AI, Cohere and AWS Bedrock through the real
capture path: real clients (curl, requests, httpx) over TLS to provider_server.py (answers from
servers/provider_gcb.py, in each provider's own framing: SSE, a JSON array streamed in pieces,
NDJSON, the binary AWS event-stream with real CRCs), under LD_PRELOAD=libtokshim.so.

Each test asserts the exact records: provider, api, host, path, the model pair, every token
field, stream, estimated, error type and cost_usd to the micro-dollar (prices from
providers/pricing.json). The recorded fixtures are served where one exists, and the manifest's
"expected" is then the contract.
"""
import json
import os

import harness as h
from harness import expect, expect_eq, test

import provider_gcb as gcb

GEMINI = "generativelanguage.googleapis.com"
VERTEX = "us-central1-aiplatform.googleapis.com"
COHERE = "api.cohere.com"
BEDROCK = "bedrock-runtime.us-east-1.amazonaws.com"
HOSTS = (GEMINI, VERTEX, COHERE, BEDROCK)
AGENT = "gcb-agent"
VERTEX_MODELS = "/v1/projects/tokshim-test/locations/us-central1/publishers/google/models/"
SONNET_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"


setup = h.setup_servers
teardown = h.teardown_servers


def url(c, host, path):
    return "https://%s:%d%s" % (host, c.servers.tls, path)


def curl(c, host, path, body, headers=(), extra=()):
    argv = ["curl", "-sS", "--http1.1", "--max-time", "30", "--cacert", c.servers.ca,
            "--resolve", "%s:%d:127.0.0.1" % (host, c.servers.tls), url(c, host, path)]
    for k in headers:
        argv += ["-H", k]
    return argv + ["--data-binary", "@" + h.write_temp(body)] + list(extra)


def pyagent(c, lib, calls):
    spec = {"lib": lib, "ca": c.servers.ca, "resolve": list(HOSTS), "session": True,
            "calls": calls}
    return [h.PYTHON, h.PYAGENT, h.write_temp(json.dumps(spec))]


def shim_run(argv, baseline=False):
    """Runs argv under the shim; returns the records. baseline: run it without the shim first
    and require the same exit status and the same bytes on stdout (fail open)."""
    db = h.tmp_store()
    r = h.run(argv, shim=True, db=db, agent=AGENT)
    expect(r.rc == 0, "client failed under the shim: %r" % r)
    if baseline:
        b = h.run(argv)
        expect_eq(r.rc, b.rc, "exit status with and without the shim")
        expect_eq(r.stdout, b.stdout, "client output with and without the shim")
    return h.records(db)


def want(provider, api, host, path, mreq, model, usage, price=None, **kw):
    """Expected record; price: the pricing.json model that prices it (None: by model names)."""
    w = h.want_record(provider, api, mreq, model, usage, host=host, path=path, agent=AGENT,
                      cost=price is None, **kw)
    if price is not None:
        w["cost_usd"] = h.expected_cost(price, price, usage)
    return w


def usage(inp, out, cr=0, cw=0, rs=0):
    return {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": cr,
            "cache_write_tokens": cw, "reasoning_tokens": rs, "total_tokens": inp + out}


def manifest_usage(c, case):
    return dict(c.man[case]["expected"])


def gemini_req(text):
    return json.dumps({"contents": [{"role": "user", "parts": [{"text": text}]}],
                       "generationConfig": {"temperature": 0.0}})


# --- Gemini and Vertex AI ----------------------------------------------------------------------

@test
def gemini_sse_fixture_curl(c):
    case = "gemini_stream_generate_content_single_chunk"
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    recs = shim_run(curl(c, GEMINI, path, h.fixture_bytes(case + ".req.json"),
                         ["Content-Type: application/json",
                          "x-goog-api-key: AIzaSyTokshimTest0123456789"]), baseline=True)
    h.check(recs, [want("gcp.gemini", "streamGenerateContent", GEMINI, path, "gemini-2.5-flash",
                        "gemini-2.5-flash", manifest_usage(c, case), stream=True)])
    # 15 in × $0.30/M + 24 out × $2.50/M
    expect_eq(h.expected_cost("gemini-2.5-flash", "gemini-2.5-flash", manifest_usage(c, case)),
              h.Fraction(645, 10 ** 7), "fixture cost")


@test
def gemini_json_array_stream_requests(c):
    """The default streamGenerateContent: a JSON array sent as application/json in 41-byte
    pieces; two usageMetadata, the last cumulative (taken, not added)."""
    path = "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    body = gemini_req("Explain caching in one line. " * 8)
    hdrs = {"Content-Type": "application/json", "x-goog-api-key": "AIzaSyTokshimTest0123456789",
            "X-Test-Cache-Read": "64", "X-Test-Reasoning-Tokens": "30",
            "X-Test-Output-Tokens": "7"}
    recs = shim_run(pyagent(c, "requests", [{"url": url(c, GEMINI, path), "headers": hdrs,
                                             "body": body, "stream": True}]), baseline=True)
    u = gcb.expected(path, body.encode(), hdrs)
    expect_eq((u["cache_read_tokens"], u["reasoning_tokens"], u["output_tokens"]), (64, 30, 37),
              "generated usage")
    h.check(recs, [want("gcp.gemini", "streamGenerateContent", GEMINI, path, "gemini-2.5-pro",
                        "gemini-2.5-pro", u, stream=True)])


@test
def vertex_generate_and_stream_curl(c):
    """Vertex AI: provider gcp.vertex_ai, model from the projects/… path, the answering model
    (modelVersion gemini-2.0-flash-001) priced as gemini-2.0-flash; SSE and JSON array."""
    body = gemini_req("What is a token?")
    recs = []
    for verb in (":generateContent", ":streamGenerateContent?alt=sse", ":streamGenerateContent"):
        path = VERTEX_MODELS + "gemini-2.0-flash" + verb
        recs += shim_run(curl(c, VERTEX, path, body, ["Content-Type: application/json",
                                                      "Authorization: Bearer ya29.tokshim",
                                                      "X-Test-Cache-Read: 20"]))
    wants = []
    for verb, api in ((":generateContent", "generateContent"),
                      (":streamGenerateContent?alt=sse", "streamGenerateContent"),
                      (":streamGenerateContent", "streamGenerateContent")):
        path = VERTEX_MODELS + "gemini-2.0-flash" + verb
        u = gcb.expected(path, body.encode(), {"X-Test-Cache-Read": "20"})
        wants.append(want("gcp.vertex_ai", api, VERTEX, path, "gemini-2.0-flash",
                          "gemini-2.0-flash-001", u, price="gemini-2.0-flash",
                          stream=api != "generateContent"))
    h.check(recs, wants)


@test
def vertex_stream_cut_keeps_usage_reached(c):
    """A JSON-array stream cut off after its first element: a network error that keeps the
    partial usage the first chunk reported (prompt tokens, no output yet)."""
    path = VERTEX_MODELS + "gemini-2.5-flash:streamGenerateContent"
    body = gemini_req("Tell me a long story. " * 5)
    argv = pyagent(c, "httpx", [{"url": url(c, VERTEX, path), "body": body, "stream": True,
                                 "headers": {"Content-Type": "application/json",
                                             "X-Test-Scenario": "truncate"}}])
    db = h.tmp_store()
    h.run(argv, shim=True, db=db, agent=AGENT)  # the client fails: the answer was cut
    p = max(1, len(body) // 4)
    h.check(h.records(db), [want("gcp.vertex_ai", "streamGenerateContent", VERTEX, path,
                                 "gemini-2.5-flash", "gemini-2.5-flash-001", usage(p, 0),
                                 price="gemini-2.5-flash", stream=True, error="network")])


@test
def gemini_embeddings_and_count_tokens_curl(c):
    """embedContent and batchEmbedContents send no usage: estimated from the request text
    (ceil(bytes / 4)), priced at gemini-embedding-001's $0.15 per 1M input tokens. countTokens
    is free: no tokens, cost 0."""
    text1, text2 = "What is the meaning of life?", "How much wood would a woodchuck chuck?"
    m = "/v1beta/models/gemini-embedding-001"
    one = json.dumps({"model": "models/gemini-embedding-001",
                      "content": {"parts": [{"text": text1}]}})
    batch = json.dumps({"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}}
        for t in (text1, text2)]})
    count = gemini_req("count these tokens please")
    recs = shim_run(curl(c, GEMINI, m + ":embedContent", one, ["Content-Type: application/json"])
                    + ["--next"] + curl(c, GEMINI, m + ":batchEmbedContents", batch,
                                        ["Content-Type: application/json"])[1:]
                    + ["--next"] + curl(c, GEMINI, "/v1beta/models/gemini-2.5-flash:countTokens",
                                        count, ["Content-Type: application/json"])[1:])
    w1 = want("gcp.gemini", "embedContent", GEMINI, m + ":embedContent", "gemini-embedding-001",
              "gemini-embedding-001", usage(7, 0), estimated=True)
    w2 = want("gcp.gemini", "batchEmbedContents", GEMINI, m + ":batchEmbedContents",
              "gemini-embedding-001", "gemini-embedding-001", usage(17, 0), estimated=True)
    w3 = want("gcp.gemini", "countTokens", GEMINI, "/v1beta/models/gemini-2.5-flash:countTokens",
              "gemini-2.5-flash", "gemini-2.5-flash", usage(0, 0), price="gemini-2.5-flash")
    expect_eq((w1["cost_usd"], w2["cost_usd"]), (h.Fraction(7 * 15, 10 ** 8),
                                                  h.Fraction(17 * 15, 10 ** 8)),
              "embedding models priced by input tokens")
    w3["cost_usd"] = h.Fraction(0)
    h.check(recs, [w1, w2, w3])


def reply(body, headers=()):
    """An X-Test-Reply header: the server answers exactly this JSON body (and headers)."""
    spec = {"status": 200, "reason": "OK", "content_type": "application/json",
            "headers": [list(kv) for kv in headers], "body": json.dumps(body)}
    return "X-Test-Reply: " + h.write_temp(json.dumps(spec))


@test
def vertex_predict_embeddings_curl(c):
    """Vertex AI's :predict on the text embedding models: the input is the sum of the
    predictions' statistics.token_count; gemini-embedding-001 at $0.15/M, text-embedding-005
    unpriced (Vertex prices it per character)."""
    calls, wants = [], []
    for model, counts, cost in (("gemini-embedding-001", [9], h.Fraction(9 * 15, 10 ** 8)),
                                ("text-embedding-005", [4, 3], None)):
        path = VERTEX_MODELS + model + ":predict"
        body = json.dumps({"instances": [{"content": "text %d" % i, "task_type": "RETRIEVAL_QUERY"}
                                         for i in range(len(counts))]})
        resp = {"predictions": [{"embeddings": {"statistics": {"truncated": False, "token_count": n},
                                                "values": [0.0123, -0.0456, 0.0789]}}
                                for n in counts],
                "metadata": {"billableCharacterCount": 6 * len(counts)}}
        calls += ["--next"] + curl(c, VERTEX, path, body, ["Content-Type: application/json",
                                                          "Authorization: Bearer ya29.tokshim",
                                                          reply(resp)])[1:]
        w = want("gcp.vertex_ai", "predict", VERTEX, path, model, model, usage(sum(counts), 0))
        w["cost_usd"] = cost
        wants.append(w)
    h.check(shim_run(["curl"] + calls[1:], baseline=True), wants)


@test
def gemini_errors_curl(c):
    recs = []
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    cases = (("rate_limit", 429, "rate_limit"), ("overloaded", 503, "overloaded"),
             ("auth", 403, "auth"), ("server_error", 500, "server"))
    for scen, _, _ in cases:
        recs += shim_run(curl(c, GEMINI, path, gemini_req("hi"),
                              ["Content-Type: application/json", "X-Test-Scenario: " + scen]))
    h.check(recs, [want("gcp.gemini", "generateContent", GEMINI, path, "gemini-2.5-flash",
                        "gemini-2.5-flash", usage(0, 0), status=st, error=err)
                   for _, st, err in cases])


# --- Cohere ------------------------------------------------------------------------------------

def cohere_billed_cost(price, billed_in, billed_out):
    """Cohere's cost: its billed units at the table's input and output prices (USD)."""
    p = h.price_of(price)
    return (billed_in * p["input"] + billed_out * p["output"]) / 1000000


@test
def cohere_v2_chat_fixture_curl(c):
    """Tokens follow usage.tokens (manifest "expected"); the billed units (usage.billed_units,
    manifest semantics.alt_billed) are kept beside them and are what the cost is made of."""
    case = "cohere_v2_chat_cached"
    body = json.dumps({"model": "command-r7b-12-2024", "messages": [
        {"role": "system", "content": "You are a helpful assistant. " * 40},
        {"role": "user", "content": "Hello"}]})
    argv = curl(c, COHERE, "/v2/chat", body,
                ["Content-Type: application/json", "Authorization: Bearer co-test"])
    recs = shim_run(argv, baseline=True)
    u = manifest_usage(c, case)
    billed = c.man[case]["semantics"]["alt_billed"]
    expect_eq((billed["billed_input_tokens"], billed["billed_output_tokens"]), (2406, 2),
              "the fixture's billed units")
    w = want("cohere", "chat", COHERE, "/v2/chat", "command-r7b-12-2024", "command-r7b-12-2024",
             u, price="command-r7b")
    w.update(billed)
    # By tokens it would be 2935 × 0.0375 + 4 × 0.15 = 110.6625 µ$; Cohere bills its units:
    # 2406 × $0.0375/M + 2 × $0.15/M = 90.225 + 0.3 = 90.525 µ$.
    w["cost_usd"] = cohere_billed_cost("command-r7b", billed["billed_input_tokens"],
                                       billed["billed_output_tokens"])
    expect_eq(w["cost_usd"], h.Fraction(90525, 10 ** 9), "fixture cost by billed units")
    h.check(recs, [w])
    db = h.tmp_store()
    h.run(argv, shim=True, db=db, agent=AGENT)
    show = h.run([h.CLI, "show", "--db", db, "1"])
    expect(show.rc == 0 and b"\nbilling    billed units: input 2406, output 2\n" in show.stdout
           and b"0.000090525 USD" in show.stdout,
           "tokshim show names the billed units and their cost: %r" % show)


@test
def cohere_v2_stream_httpx(c):
    body = json.dumps({"model": "command-r", "stream": True, "messages": [
        {"role": "user", "content": "Say something short about tokens."}]})
    hdrs = {"Content-Type": "application/json", "X-Test-Cache-Read": "512",
            "X-Test-Output-Tokens": "6"}
    recs = shim_run(pyagent(c, "httpx", [{"url": url(c, COHERE, "/v2/chat"), "headers": hdrs,
                                          "body": body, "stream": True}]))
    u = gcb.expected("/v2/chat", body.encode(), hdrs)
    expect_eq(u["cache_read_tokens"], 512, "generated cache read")
    # billed_units {P, O}: the 512 cached tokens are not billed.
    p_in = u["input_tokens"] - 512
    w = want("cohere", "chat", COHERE, "/v2/chat", "command-r", "command-r", u, stream=True)
    w.update({"billed_input_tokens": p_in, "billed_output_tokens": 6,
              "cost_usd": cohere_billed_cost("command-r", p_in, 6)})
    h.check(recs, [w])


@test
def cohere_v1_chat_and_ndjson_stream_requests(c):
    """v1: meta.tokens, not streamed and as the application/stream+json NDJSON stream whose
    stream-end event holds the response."""
    calls, wants = [], []
    for stream in (False, True):
        body = json.dumps({"model": "command-r-plus", "message": "Hello there, tell me more.",
                           "stream": stream})
        calls.append({"url": url(c, COHERE, "/v1/chat"), "body": body, "stream": stream,
                      "headers": {"Content-Type": "application/json"}})
        wants.append(want("cohere", "chat", COHERE, "/v1/chat", "command-r-plus",
                          "command-r-plus", gcb.expected("/v1/chat", body.encode()),
                          stream=stream))
    h.check(shim_run(pyagent(c, "requests", calls)), wants)


@test
def cohere_embed_and_error_curl(c):
    body = json.dumps({"model": "embed-v4.0", "texts": ["hello", "world"],
                       "input_type": "search_document", "embedding_types": ["float"]})
    recs = shim_run(curl(c, COHERE, "/v2/embed", body, ["Content-Type: application/json"]))
    recs += shim_run(curl(c, COHERE, "/v2/chat", json.dumps({"model": "command-a-03-2025"}),
                          ["Content-Type: application/json", "X-Test-Scenario: rate_limit"]))
    h.check(recs, [
        want("cohere", "embed", COHERE, "/v2/embed", "embed-v4.0", "embed-v4.0",
             gcb.expected("/v2/embed", body.encode())),
        want("cohere", "chat", COHERE, "/v2/chat", "command-a-03-2025", "command-a-03-2025",
             usage(0, 0), price="command-a", status=429, error="rate_limit")])


# --- AWS Bedrock -------------------------------------------------------------------------------

@test
def bedrock_converse_fixture_curl(c):
    case = "bedrock_converse_cache_write"
    path = "/model/%s/converse" % SONNET_ID
    recs = shim_run(curl(c, BEDROCK, path, h.fixture_bytes(case + ".req.json"),
                         ["Content-Type: application/json",
                          "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/x"]),
                    baseline=True)
    u = manifest_usage(c, case)
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    h.check(recs, [want("aws.bedrock", "converse", BEDROCK, path, model, model, u,
                        price="claude-sonnet-4-5")])
    # 2 × $3 + 1322 × $3.75 + 5 × $15 per M = 5038.5 µ$
    expect_eq(h.expected_cost("claude-sonnet-4-5", "claude-sonnet-4-5", u),
              h.Fraction(50385, 10 ** 7), "fixture cost")


@test
def bedrock_converse_stream_eventstream_curl(c):
    """converse-stream: the binary event-stream; usage from the metadata event."""
    path = "/model/%s/converse-stream" % SONNET_ID
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "Hi " * 30}]}],
                       "system": [{"text": "Be brief."}]})
    hd = {"X-Test-Cache-Read": "300", "X-Test-Cache-Write": "40", "X-Test-Output-Tokens": "6"}
    recs = shim_run(curl(c, BEDROCK, path, body, ["Content-Type: application/json"] +
                         ["%s: %s" % kv for kv in hd.items()]), baseline=True)
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    u = gcb.expected(path, body.encode(), hd)
    expect_eq((u["cache_read_tokens"], u["cache_write_tokens"]), (300, 40), "generated cache")
    h.check(recs, [want("aws.bedrock", "converse-stream", BEDROCK, path, model, model, u,
                        price="claude-sonnet-4-5", stream=True)])


@test
def bedrock_converse_stream_exception_curl(c):
    """A throttlingException message inside the stream: error rate_limit; no metadata came, so
    the tokens are estimated from the text (request: system + messages text; output: the
    deltas that arrived)."""
    path = "/model/%s/converse-stream" % SONNET_ID
    text, system = "Count to three.", "Be brief."
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": text}]}],
                       "system": [{"text": system}]})
    recs = shim_run(curl(c, BEDROCK, path, body, ["Content-Type: application/json",
                                                  "X-Test-Scenario: stream_exception",
                                                  "X-Test-Output-Tokens: 4"]))
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    out_bytes = len("".join(gcb.WORDS[:4]))
    est = usage(-(-(len(text) + len(system)) // 4), -(-out_bytes // 4))
    h.check(recs, [want("aws.bedrock", "converse-stream", BEDROCK, path, model, model, est,
                        price="claude-sonnet-4-5", stream=True, estimated=True,
                        error="rate_limit")])


@test
def bedrock_invoke_and_response_stream_requests(c):
    """invoke: Anthropic's body with Bedrock's token-count headers (the model that answered is
    the body's); invoke-with-response-stream: base64 chunks of Anthropic events in the
    event-stream, Bedrock's invocationMetrics at the end."""
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
                       "messages": [{"role": "user", "content": "Name three colours."}]})
    hdrs = {"Content-Type": "application/json", "X-Test-Cache-Read": "128",
            "X-Test-Output-Tokens": "8"}
    calls, wants = [], []
    for api, stream in (("invoke", False), ("invoke-with-response-stream", True)):
        path = "/model/%s/%s" % (SONNET_ID, api)
        calls.append({"url": url(c, BEDROCK, path), "headers": hdrs, "body": body,
                      "stream": stream})
        wants.append(want("aws.bedrock", api, BEDROCK, path,
                          "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                          "claude-sonnet-4-5-20250929", gcb.expected(path, body.encode(), hdrs),
                          price="claude-sonnet-4-5", stream=stream))
    h.check(shim_run(pyagent(c, "requests", calls)), wants)


@test
def bedrock_invoke_vendor_bodies_curl(c):
    """invoke without Bedrock's token-count headers: the counts of Meta Llama's, Amazon Titan
    text's and Titan embeddings' own bodies; Mistral's body has none, so its tokens are
    estimated (ceil(text bytes / 4))."""
    text = "Say hi to the tokens."
    cases = (
        ("meta.llama3-3-70b-instruct-v1%3A0", {"prompt": text, "max_gen_len": 32},
         {"generation": " Hi, tokens!", "prompt_token_count": 17, "generation_token_count": 5,
          "stop_reason": "stop"}, usage(17, 5), h.Fraction(22 * 72, 10 ** 8), False),
        ("amazon.titan-text-express-v1", {"inputText": text},
         {"inputTextTokenCount": 7, "results": [{"tokenCount": 6, "outputText": "Hi, tokens!",
                                                 "completionReason": "FINISH"}]},
         usage(7, 6), None, False),
        ("amazon.titan-embed-text-v2%3A0", {"inputText": text},
         {"embedding": [0.1, -0.2], "inputTextTokenCount": 8}, usage(8, 0), None, False),
        ("mistral.mistral-large-2407-v1%3A0",
         {"messages": [{"role": "user", "content": text}], "max_tokens": 32},
         {"id": "cmpl-7c1", "object": "chat.completion", "choices": [{"index": 0, "message": {
             "role": "assistant", "content": "Hi, tokens!"}, "stop_reason": "stop"}]},
         usage(-(-len(text) // 4), 3),  # 21 bytes in, 11 out
         (6 * 2 + 3 * 6) / h.Fraction(10 ** 6), True),
    )
    argv, wants = [], []
    for model_id, req, resp, u, cost, est in cases:
        path = "/model/%s/invoke" % model_id
        argv += ["--next"] + curl(c, BEDROCK, path, json.dumps(req),
                                  ["Content-Type: application/json",
                                   reply(resp, [("x-amzn-RequestId", "5c0c9f1e-7d1b")])])[1:]
        model = model_id.replace("%3A", ":")
        w = want("aws.bedrock", "invoke", BEDROCK, path, model, model, u, estimated=est)
        w["cost_usd"] = cost
        wants.append(w)
    expect_eq(wants[3]["input_tokens"], 6, "Mistral's estimated input")
    h.check(shim_run(["curl"] + argv[1:]), wants)


@test
def bedrock_errors_curl(c):
    recs = []
    cases = (("rate_limit", 429, "rate_limit"), ("auth", 403, "auth"),
             ("overloaded", 503, "overloaded"))
    path = "/model/amazon.nova-pro-v1%3A0/converse"
    for scen, _, _ in cases:
        recs += shim_run(curl(c, BEDROCK, path, json.dumps({"messages": []}),
                              ["Content-Type: application/json", "X-Test-Scenario: " + scen]))
    h.check(recs, [want("aws.bedrock", "converse", BEDROCK, path, "amazon.nova-pro-v1:0",
                        "amazon.nova-pro-v1:0", usage(0, 0), status=st, error=err,
                        price="nova-pro")
                   for _, st, err in cases])


if __name__ == "__main__":
    h.main(setup, teardown)
