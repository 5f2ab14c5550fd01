#!/usr/bin/python3
"""test_providers_openai_compat.py - the OpenAI family and every OpenAI-compatible service,
through the real capture path: a real client (curl, requests, httpx) under the shim, real TLS
with the test CA, tests/integration/servers/provider_server.py answering with the bytes each
service sends (X-Test-Reply: the exact status, headers and body or stream of that service, or
the recorded body from ../shared/fixtures where one exists).

Every test runs the client twice (without and with the shim: same exit status, same output,
same requests at the server) and asserts the records exactly: provider, api, host, path, the
model pair, every token field, total, locality, status, stream, estimated, error, billed,
retry_after, truncated, and cost_usd to the micro-dollar. A cost is computed from the
providers/pricing.json entry the test names (the entry the model's name must resolve to), or
must be null when the model has no price; local calls cost 0, and a provider's own billed cost
is the cost.

Also here: Anthropic count_tokens (a record that is not billed), Ollama /api/embed, errors with
their normalised type and Retry-After, streams that break off, and hosts tokshim has never
heard of, recorded by the shape of their usage alone.
"""
import json

import harness as h
from harness import expect, test

import test_capture as tc

AGENT = "compat-agent"
JSON_HDRS = {"Content-Type": "application/json", "Authorization": "Bearer sk-test-0123456789abcdef"}


def setup():
    return tc.setup()


def teardown(c):
    tc.teardown(c)


# ---------------------------------------------------------------------------------------------
# Building calls
# ---------------------------------------------------------------------------------------------

def usage(inp, out, cache_read=0, cache_write=0, reasoning=0):
    return {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": cache_read,
            "cache_write_tokens": cache_write, "reasoning_tokens": reasoning,
            "total_tokens": inp + out}


def zero():
    return usage(0, 0)


def sse(objs, done=True, named=False):
    """SSE events of JSON objects, each one chunk; named: an "event:" line of its type."""
    out = []
    for o in objs:
        text = o if isinstance(o, str) else json.dumps(o, separators=(",", ":"))
        head = "event: %s\n" % o["type"] if named and not isinstance(o, str) else ""
        out.append(head + "data: " + text + "\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return out


def reply_body(obj, status=200, reason="OK", headers=(), content_type="application/json"):
    body = obj if isinstance(obj, str) else json.dumps(obj, indent=2)
    return {"status": status, "reason": reason, "content_type": content_type,
            "headers": [list(kv) for kv in headers], "body": body}


def reply_stream(events, cut_after=None, content_type="text/event-stream; charset=utf-8"):
    r = {"status": 200, "reason": "OK", "content_type": content_type, "events": events}
    if cut_after is not None:
        r["cut_after"] = cut_after
    return r


def call(c, host, path, body, reply, client="curl", hdrs=None, tls=True, port=None,
         stream=False):
    """argv of one call by a real client to host (TLS on 443, or plain http on port), which the
    client connects to the test server instead; the server answers with reply."""
    hdrs = dict(JSON_HDRS if hdrs is None else hdrs)
    if reply is not None:
        hdrs["X-Test-Reply"] = h.write_temp(json.dumps(reply))
    body_path = h.write_temp(body if isinstance(body, (bytes, str)) else json.dumps(body))
    if client == "curl":
        if tls:
            argv = ["curl", "-sS", "--http1.1", "--max-time", "30", "--cacert", c.servers.ca,
                    "--connect-to", "%s:443:127.0.0.1:%d" % (host, c.servers.tls),
                    "https://%s%s" % (host, path)]
        else:
            argv = ["curl", "-sS", "--http1.1", "--max-time", "30",
                    "--connect-to", "%s:%d:127.0.0.1:%d" % (host, port, c.servers.plain),
                    "http://%s:%d%s" % (host, port, path)]
        for k, v in hdrs.items():
            argv += ["-H", "%s: %s" % (k, v)]
        return argv + ["--data-binary", "@" + body_path]
    expect(tls, "python clients are used over TLS only here")
    url = "https://%s:%d%s" % (host, c.servers.tls, path)
    return h.pyagent_argv(c.servers, client, [{"url": url, "headers": hdrs,
                                                "body_file": body_path, "stream": stream}],
                          resolve=[host])


def fee(entry, key, sub=None):
    """A per-call fee of a pricing.json entry ("request", "search", "request_by_context"),
    USD as a Fraction."""
    v = h._pricing_table()[entry][key]
    return h.Fraction(str(v if sub is None else v[sub]))


def want(provider, api, model_requested, model, u, *, host, path, price=None, cost=None,
         fees=0, locality="cloud", status=200, stream=False, estimated=False, error=None,
         billed=False, retry_after=None, truncated=False):
    """Expected record. price: the pricing.json entry the cost comes from (None: unpriced, so
    cost_usd must be null) plus fees (USD, per-call fees), or cost: the exact cost (a
    provider's billed cost)."""
    w = h.want_record(provider, api, model_requested, model, u, host=host, path=path,
                      agent=AGENT, locality=locality, status=status, stream=stream,
                      estimated=estimated, error=error, cost=False)
    if locality == "local":
        w["cost_usd"] = h.Fraction(0)
    elif cost is not None:
        w["cost_usd"] = cost
    elif price is not None:
        p = h.price_of(price)
        expect(p is not None, "providers/pricing.json has no entry %r" % price)
        w["cost_usd"] = h.expected_cost(price, price, u) + fees
    else:
        w["cost_usd"] = None
    w["billed"] = billed
    w["retry_after"] = retry_after
    w["truncated"] = truncated
    return w


def run(c, argv, wants, env=None, rc=0):
    return tc.capture(c, argv, wants, agent=AGENT, env=env, base_rc=rc)[0]


# ---------------------------------------------------------------------------------------------
# OpenAI: legacy completions, responses (plain and streamed), embeddings
# ---------------------------------------------------------------------------------------------

@test
def openai_legacy_completions(c):
    req = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7,
           "temperature": 0}
    resp = {"id": "cmpl-8Jx2Lq1bTz0xWnY3uJd9Kf4r5sVbA", "object": "text_completion",
            "created": 1699896916, "model": "gpt-3.5-turbo-instruct",
            "choices": [{"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None,
                         "finish_reason": "length"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
    run(c, call(c, "api.openai.com", "/v1/completions", req, reply_body(resp)),
        [want("openai", "completions", "gpt-3.5-turbo-instruct", "gpt-3.5-turbo-instruct",
              usage(5, 7), host="api.openai.com", path="/v1/completions",
              price="gpt-3.5-turbo-instruct")])


@test
def openai_responses_fixture(c):
    case = "openai_responses_nonstream"
    m = c.man[case]
    run(c, call(c, "api.openai.com", "/v1/responses", h.fixture_bytes(case + ".req.json"),
                {"fixture": case}, client="requests"),
        [want("openai", "responses", m["model_requested"], m["model_response"],
              tc.fx_usage(c, case), host="api.openai.com", path="/v1/responses",
              price="gpt-4o")])


def responses_stream_events(text_pieces, model, usage_obj):
    """The event sequence of a streamed Responses API call, as OpenAI sends it."""
    rid, mid = "resp_68af4030592c81938ec0a5fbab4a3e9f", "msg_68af40337fc48193b54e9f2f8e1b2ad6"
    base = {"id": rid, "object": "response", "created_at": 1756315696, "status": "in_progress",
            "background": False, "error": None, "incomplete_details": None,
            "instructions": "You are a terse assistant.", "max_output_tokens": None,
            "model": model, "output": [], "parallel_tool_calls": True,
            "previous_response_id": None, "reasoning": {"effort": None, "summary": None},
            "service_tier": "auto", "store": True, "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto",
            "tools": [], "top_p": 1.0, "truncation": "disabled", "usage": None, "user": None,
            "metadata": {}}
    text = "".join(text_pieces)
    item = {"id": mid, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
    done_item = dict(item, status="completed",
                     content=[{"type": "output_text", "annotations": [], "logprobs": [], "text": text}])
    ev = [{"type": "response.created", "sequence_number": 0, "response": base},
          {"type": "response.in_progress", "sequence_number": 1, "response": base},
          {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": item},
          {"type": "response.content_part.added", "sequence_number": 3, "item_id": mid,
           "output_index": 0, "content_index": 0,
           "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}}]
    for p in text_pieces:
        ev.append({"type": "response.output_text.delta", "sequence_number": len(ev), "item_id": mid,
                   "output_index": 0, "content_index": 0, "delta": p, "logprobs": [],
                   "obfuscation": "Xq3Z"})
    ev.append({"type": "response.output_text.done", "sequence_number": len(ev), "item_id": mid,
               "output_index": 0, "content_index": 0, "text": text, "logprobs": []})
    ev.append({"type": "response.content_part.done", "sequence_number": len(ev), "item_id": mid,
               "output_index": 0, "content_index": 0,
               "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": text}})
    ev.append({"type": "response.output_item.done", "sequence_number": len(ev), "output_index": 0,
               "item": done_item})
    ev.append({"type": "response.completed", "sequence_number": len(ev),
               "response": dict(base, status="completed", output=[done_item], usage=usage_obj)})
    return sse(ev, done=False, named=True)


@test
def openai_responses_stream_large_completed_event(c):
    pieces = ["Token accounting paragraph %03d: " % i + "the agent spent tokens here. " * 60
              for i in range(40)]
    uo = {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024},
          "output_tokens": 15000, "output_tokens_details": {"reasoning_tokens": 512},
          "total_tokens": 16200}
    events = responses_stream_events(pieces, "gpt-4.1-2025-04-14", uo)
    expect(len(events[-1]) > 64 * 1024, "the response.completed event must exceed 64 KiB")
    req = {"model": "gpt-4.1", "instructions": "You are a terse assistant.",
           "input": "Write forty paragraphs on token accounting.", "stream": True}
    run(c, call(c, "api.openai.com", "/v1/responses", req, reply_stream(events), client="httpx",
                stream=True),
        [want("openai", "responses", "gpt-4.1", "gpt-4.1-2025-04-14",
              usage(1200, 15000, cache_read=1024, reasoning=512), host="api.openai.com",
              path="/v1/responses", price="gpt-4.1", stream=True)])


@test
def openai_embeddings_fixture(c):
    case = "openai_embeddings"
    m = c.man[case]
    req = {"model": "text-embedding-3-small", "input": ["sunny day at the beach", "rainy day in the city"]}
    run(c, call(c, "api.openai.com", "/v1/embeddings", req, {"fixture": case}),
        [want("openai", "embeddings", m["model_requested"], m["model_response"],
              tc.fx_usage(c, case), host="api.openai.com", path="/v1/embeddings",
              price="text-embedding-3-small")])



# ---------------------------------------------------------------------------------------------
# OpenAI-compatible services
# ---------------------------------------------------------------------------------------------

def chat_body(rid, model, text, u, created=1750000000, **extra):
    b = {"id": rid, "object": "chat.completion", "created": created, "model": model,
         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                      "logprobs": None, "finish_reason": "stop"}], "usage": u}
    b.update(extra)
    return b


def chunk(rid, model, delta=None, finish=None, u=None, created=1750000000, **extra):
    ch = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
          "choices": [] if delta is None and finish is None else
          [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]}
    if u is not None:
        ch["usage"] = u
    ch.update(extra)
    return ch


AZURE = "myres.openai.azure.com"
AZURE_PATH = "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"


@test
def azure_openai_chat(c):
    # No model in the body: the deployment names it in the path; the response names the model.
    req = {"messages": [{"role": "user", "content": "What is a token?"}], "max_tokens": 40}
    resp = chat_body("chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "gpt-4o-2024-11-20",
                     "A token is a piece of text.",
                     {"completion_tokens": 9, "prompt_tokens": 14, "total_tokens": 23,
                      "completion_tokens_details": {"reasoning_tokens": 0},
                      "prompt_tokens_details": {"cached_tokens": 0}},
                     system_fingerprint="fp_ded0d14823",
                     prompt_filter_results=[{"prompt_index": 0, "content_filter_results": {
                         "hate": {"filtered": False, "severity": "safe"}}}])
    hdrs = {"Content-Type": "application/json", "api-key": "0123456789abcdef0123456789abcdef"}
    run(c, call(c, AZURE, AZURE_PATH, req, reply_body(resp), hdrs=hdrs),
        [want("azure.ai.openai", "chat.completions", "prod-gpt4o", "gpt-4o-2024-11-20",
              usage(14, 9), host=AZURE, path=AZURE_PATH, price="gpt-4o")])


@test
def azure_openai_stream_rate_limited(c):
    # Azure's first stream chunk has no choices and an empty model (prompt filter results).
    rid = "chatcmpl-B9MHEqvXyq9rOqVmHqTVexwJU4jvY"
    events = sse([{"choices": [], "created": 0, "id": "", "model": "", "object": "",
                   "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]},
                  chunk(rid, "gpt-4o-2024-11-20", {"role": "assistant", "content": ""}),
                  chunk(rid, "gpt-4o-2024-11-20", {"content": "Hello"}),
                  chunk(rid, "gpt-4o-2024-11-20", {}, "stop"),
                  chunk(rid, "gpt-4o-2024-11-20", u={"completion_tokens": 2, "prompt_tokens": 11,
                                                     "total_tokens": 13})])
    hdrs = {"Content-Type": "application/json", "api-key": "0123456789abcdef0123456789abcdef"}
    req = {"messages": [{"role": "user", "content": "Hi"}], "stream": True,
           "stream_options": {"include_usage": True}}
    err = {"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation "
                     "under Azure OpenAI API version 2024-10-21 have exceeded token rate limit "
                     "of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}}
    argv = call(c, AZURE, AZURE_PATH, req, reply_stream(events), hdrs=hdrs, client="requests",
                stream=True)
    run(c, argv, [want("azure.ai.openai", "chat.completions", "prod-gpt4o", "gpt-4o-2024-11-20",
                       usage(11, 2), host=AZURE, path=AZURE_PATH, price="gpt-4o", stream=True)])
    run(c, call(c, AZURE, AZURE_PATH, req,
                reply_body(err, 429, "Too Many Requests", [("retry-after", "6")]), hdrs=hdrs),
        [want("azure.ai.openai", "chat.completions", "prod-gpt4o", "prod-gpt4o", zero(),
              host=AZURE, path=AZURE_PATH, status=429, error="rate_limit", retry_after=6)])


OPENROUTER_PATH = "/api/v1/chat/completions"


@test
def openrouter_billed_cost_and_model_pair(c):
    req = {"model": "openrouter/auto", "messages": [{"role": "user", "content": "Name a prime."}]}
    resp = chat_body("gen-1756315696-pK3gXWq0Q4hnbY7RcZ2A", "openai/gpt-4o-mini-2024-07-18", "7",
                     {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13,
                      "cost": 0.0000028, "is_byok": False,
                      "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                      "cost_details": {"upstream_inference_cost": None},
                      "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0}},
                     provider="OpenAI")
    run(c, call(c, "openrouter.ai", OPENROUTER_PATH, req, reply_body(resp)),
        [want("openrouter", "chat.completions", "openrouter/auto", "openai/gpt-4o-mini-2024-07-18",
              usage(11, 2), host="openrouter.ai", path=OPENROUTER_PATH,
              cost=h.Fraction(28, 10000000), billed=True)])


@test
def openrouter_stream_with_processing_comments(c):
    rid, model = "gen-1756315700-Zq0rP3m4A2bT5y6U7i8O", "anthropic/claude-sonnet-4.5"
    u = {"prompt_tokens": 1520, "completion_tokens": 42, "total_tokens": 1562,
         "cost": 0.005190, "is_byok": False,
         "prompt_tokens_details": {"cached_tokens": 1280},
         "completion_tokens_details": {"reasoning_tokens": 0}}
    events = [": OPENROUTER PROCESSING\n\n", ": OPENROUTER PROCESSING\n\n"] + sse([
        chunk(rid, model, {"role": "assistant", "content": "Primes"}, provider="Anthropic"),
        chunk(rid, model, {"content": " are infinite."}, provider="Anthropic"),
        chunk(rid, model, {}, "stop", provider="Anthropic"),
        chunk(rid, model, u=u, provider="Anthropic")])
    req = {"model": "anthropic/claude-sonnet-4.5", "stream": True,
           "messages": [{"role": "user", "content": "Are primes infinite?"}]}
    run(c, call(c, "openrouter.ai", OPENROUTER_PATH, req, reply_stream(events), client="httpx",
                stream=True),
        [want("openrouter", "chat.completions", "anthropic/claude-sonnet-4.5", model,
              usage(1520, 42, cache_read=1280), host="openrouter.ai", path=OPENROUTER_PATH,
              cost=h.Fraction(5190, 1000000), billed=True, stream=True)])


GROQ_PATH = "/openai/v1/chat/completions"


@test
def groq_stream_x_groq_usage(c):
    rid, model = "chatcmpl-0c8e7d1a-5b2f-4a7e-9d3c-1f2e3d4c5b6a", "llama-3.3-70b-versatile"
    xg = {"id": "req_01k3m8x9yzf0abcdefghjkmnpq"}
    events = sse([chunk(rid, model, {"role": "assistant", "content": ""}, x_groq=xg,
                        system_fingerprint="fp_3f3b593e33"),
                  chunk(rid, model, {"content": "Fast"}, system_fingerprint="fp_3f3b593e33"),
                  chunk(rid, model, {"content": " tokens."}, system_fingerprint="fp_3f3b593e33"),
                  chunk(rid, model, {}, "stop", system_fingerprint="fp_3f3b593e33",
                        x_groq={"id": xg["id"], "usage": {
                            "queue_time": 0.046, "prompt_tokens": 44, "prompt_time": 0.0021,
                            "completion_tokens": 3, "completion_time": 0.0109,
                            "total_tokens": 47, "total_time": 0.013}})])
    req = {"model": model, "stream": True, "messages": [{"role": "user", "content": "Be fast."}]}
    run(c, call(c, "api.groq.com", GROQ_PATH, req, reply_stream(events), client="requests",
                stream=True),
        [want("groq", "chat.completions", model, model, usage(44, 3), host="api.groq.com",
              path=GROQ_PATH, price=model, stream=True)])


@test
def groq_rate_limit_retry_after(c):
    err = {"error": {"message": "Rate limit reached for model `llama-3.3-70b-versatile` in "
                                "organization `org_01` on tokens per minute (TPM): Limit 6000, "
                                "Used 5950, Requested 120. Please try again in 700ms.",
                     "type": "tokens", "code": "rate_limit_exceeded"}}
    req = {"model": "llama-3.3-70b-versatile", "messages": [{"role": "user", "content": "Hi"}]}
    run(c, call(c, "api.groq.com", GROQ_PATH, req,
                reply_body(err, 429, "Too Many Requests", [("retry-after", "1")])),
        [want("groq", "chat.completions", "llama-3.3-70b-versatile", "llama-3.3-70b-versatile",
              zero(), host="api.groq.com", path=GROQ_PATH, status=429, error="rate_limit",
              retry_after=1, price="llama-3.3-70b-versatile")])


@test
def deepseek_cache_hit_tokens(c):
    # Nonstreamed with both vocabularies, then streamed with only DeepSeek's own.
    req = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Summarise."}]}
    u = {"prompt_tokens": 1200, "completion_tokens": 50, "total_tokens": 1250,
         "prompt_tokens_details": {"cached_tokens": 1024},
         "prompt_cache_hit_tokens": 1024, "prompt_cache_miss_tokens": 176}
    resp = chat_body("930c60df-bf64-41c9-a88e-3ec75f81e00e", "deepseek-chat", "Done.", u,
                     system_fingerprint="fp_08f168e49b_prod0820_fp8_kvcache")
    run(c, call(c, "api.deepseek.com", "/chat/completions", req, reply_body(resp)),
        [want("deepseek", "chat.completions", "deepseek-chat", "deepseek-chat",
              usage(1200, 50, cache_read=1024), host="api.deepseek.com",
              path="/chat/completions", price="deepseek-chat")])
    rid = "5a7b0e0c-2f43-4c1e-9f0a-6a1b2c3d4e5f"
    us = {"prompt_tokens": 900, "completion_tokens": 310, "total_tokens": 1210,
          "completion_tokens_details": {"reasoning_tokens": 280},
          "prompt_cache_hit_tokens": 640, "prompt_cache_miss_tokens": 260}
    events = sse([chunk(rid, "deepseek-reasoner", {"role": "assistant", "content": None,
                                                    "reasoning_content": ""}),
                  chunk(rid, "deepseek-reasoner", {"content": None, "reasoning_content": "Hmm."}),
                  chunk(rid, "deepseek-reasoner", {"content": "Yes."}),
                  chunk(rid, "deepseek-reasoner", {"content": ""}, "stop", u=us)])
    req = {"model": "deepseek-reasoner", "stream": True,
           "messages": [{"role": "user", "content": "Is 7 prime?"}]}
    run(c, call(c, "api.deepseek.com", "/v1/chat/completions", req, reply_stream(events),
                client="httpx", stream=True),
        [want("deepseek", "chat.completions", "deepseek-reasoner", "deepseek-reasoner",
              usage(900, 310, cache_read=640, reasoning=280), host="api.deepseek.com",
              path="/v1/chat/completions", price="deepseek-reasoner", stream=True)])


@test
def mistral_fixture(c):
    case = "mistral_chat_completions"
    m = c.man[case]
    run(c, call(c, "api.mistral.ai", "/v1/chat/completions", h.fixture_bytes(case + ".req.json"),
                {"fixture": case}),
        [want("mistral_ai", "chat.completions", m["model_requested"], m["model_response"],
              tc.fx_usage(c, case), host="api.mistral.ai", path="/v1/chat/completions",
              price="mistral-large")])


@test
def mistral_error_object(c):
    err = {"object": "error", "message": "Invalid model: mistral-huge", "type": "invalid_model",
           "param": None, "code": "1500"}
    req = {"model": "mistral-huge", "messages": [{"role": "user", "content": "Hi"}]}
    run(c, call(c, "api.mistral.ai", "/v1/chat/completions", req,
                reply_body(err, 400, "Bad Request")),
        [want("mistral_ai", "chat.completions", "mistral-huge", "mistral-huge", zero(),
              host="api.mistral.ai", path="/v1/chat/completions", status=400,
              error="invalid_request")])


@test
def perplexity_billed_cost_object(c):
    # sonar-pro: usage.cost is the provider's own bill, the request fee included.
    u = {"prompt_tokens": 8, "completion_tokens": 312, "total_tokens": 320,
         "search_context_size": "low",
         "cost": {"input_tokens_cost": 0.000024, "output_tokens_cost": 0.00468,
                  "request_cost": 0.006, "total_cost": 0.010704}}
    resp = chat_body("3c90c3cc-0d44-4b50-8888-8dd25736052a", "sonar-pro", "The answer [1].", u,
                     citations=["https://example.org/a"],
                     search_results=[{"title": "a", "url": "https://example.org/a"}])
    req = {"model": "sonar-pro", "messages": [{"role": "user", "content": "Latest news?"}]}
    run(c, call(c, "api.perplexity.ai", "/chat/completions", req, reply_body(resp)),
        [want("perplexity", "chat.completions", "sonar-pro", "sonar-pro", usage(8, 312),
              host="api.perplexity.ai", path="/chat/completions",
              cost=h.Fraction(10704, 1000000), billed=True)])


@test
def perplexity_citation_and_reasoning_tokens(c):
    # sonar-deep-research: citation tokens are input the model read, reasoning tokens are
    # generated outside completion_tokens (total_tokens counts neither).
    u = {"prompt_tokens": 19, "completion_tokens": 498, "total_tokens": 517,
         "citation_tokens": 10950, "num_search_queries": 6, "reasoning_tokens": 73997}
    resp = chat_body("7e1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "sonar-deep-research",
                     "<think>...</think> Report.", u)
    req = {"model": "sonar-deep-research",
           "messages": [{"role": "user", "content": "Research token pricing."}]}
    run(c, call(c, "api.perplexity.ai", "/chat/completions", req, reply_body(resp)),
        [want("perplexity", "chat.completions", "sonar-deep-research", "sonar-deep-research",
              usage(19 + 10950, 498 + 73997, reasoning=73997), host="api.perplexity.ai",
              path="/chat/completions", price="sonar-deep-research",
              fees=6 * fee("sonar-deep-research", "search"))])


@test
def perplexity_search_context_request_fee(c):
    # No cost object: the record carries the search context the request asked for, and the
    # price table's per-request fee for it applies.
    u = {"prompt_tokens": 14, "completion_tokens": 120, "total_tokens": 134,
         "search_context_size": "medium"}
    resp = chat_body("0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", "sonar-pro", "Answer.", u)
    req = {"model": "sonar-pro", "messages": [{"role": "user", "content": "Search this."}],
           "web_search_options": {"search_context_size": "medium"}}
    run(c, call(c, "api.perplexity.ai", "/chat/completions", req, reply_body(resp)),
        [want("perplexity", "chat.completions", "sonar-pro", "sonar-pro", usage(14, 120),
              host="api.perplexity.ai", path="/chat/completions", price="sonar-pro",
              fees=fee("sonar-pro", "request_by_context", "medium"))])


@test
def xai_reasoning_outside_completion(c):
    u = {"prompt_tokens": 32, "completion_tokens": 9, "total_tokens": 1076,
         "prompt_tokens_details": {"text_tokens": 32, "audio_tokens": 0, "image_tokens": 0,
                                   "cached_tokens": 6},
         "completion_tokens_details": {"reasoning_tokens": 1035, "audio_tokens": 0,
                                       "accepted_prediction_tokens": 0,
                                       "rejected_prediction_tokens": 0},
         "num_sources_used": 0}
    resp = chat_body("b8f3c9e0-1d2a-4b5c-8e7f-0a1b2c3d4e5f", "grok-4-0709", "101", u,
                     system_fingerprint="fp_3a40c6f0e1")
    req = {"model": "grok-4", "messages": [{"role": "user", "content": "What is 100+1?"}]}
    run(c, call(c, "api.x.ai", "/v1/chat/completions", req, reply_body(resp), client="requests"),
        [want("x_ai", "chat.completions", "grok-4", "grok-4-0709",
              usage(32, 9 + 1035, cache_read=6, reasoning=1035), host="api.x.ai",
              path="/v1/chat/completions", price="grok-4")])


@test
def together_stream_usage_in_last_choice_chunk(c):
    # Together sends usage in the chunk that finishes, without being asked.
    rid, model = "oFf8yQ1-2kFHot-9a1b2c3d4e5f6a7b", "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    events = sse([chunk(rid, model, {"role": "assistant", "content": "Hi"}, u=None),
                  chunk(rid, model, {"content": " there"}),
                  chunk(rid, model, {"content": ""}, "eos",
                        u={"prompt_tokens": 37, "completion_tokens": 3, "total_tokens": 40,
                           "cached_tokens": 0})])
    req = {"model": model, "stream": True, "messages": [{"role": "user", "content": "Hello"}]}
    run(c, call(c, "api.together.xyz", "/v1/chat/completions", req, reply_stream(events),
                client="requests", stream=True),
        [want("together", "chat.completions", model, model, usage(37, 3),
              host="api.together.xyz", path="/v1/chat/completions", stream=True,
              price="together/llama-3.3-70b-instruct-turbo")])


@test
def fireworks_chat_and_server_error(c):
    model = "accounts/fireworks/models/llama-v3p1-8b-instruct"
    resp = chat_body("6f2d9a4c-8b1e-4f3a-9c7d-2e5b8a1f4c6d", model, "Sure.",
                     {"prompt_tokens": 17, "total_tokens": 19, "completion_tokens": 2})
    req = {"model": model, "messages": [{"role": "user", "content": "Say sure."}]}
    path = "/inference/v1/chat/completions"
    run(c, call(c, "api.fireworks.ai", path, req, reply_body(resp)),
        [want("fireworks", "chat.completions", model, model, usage(17, 2),
              host="api.fireworks.ai", path=path)])
    err = {"error": {"object": "error", "type": "internal_server_error",
                     "message": "server had an error while processing the request"}}
    run(c, call(c, "api.fireworks.ai", path, req, reply_body(err, 500, "Internal Server Error")),
        [want("fireworks", "chat.completions", model, model, zero(), host="api.fireworks.ai",
              path=path, status=500, error="server")])


# ---------------------------------------------------------------------------------------------
# Local servers speaking the OpenAI API
# ---------------------------------------------------------------------------------------------

@test
def vllm_default_port(c):
    model = "Qwen/Qwen2.5-7B-Instruct"
    resp = chat_body("chatcmpl-9f8e7d6c5b4a4f3e8d2c1b0a9f8e7d6c", model, "Four.",
                     {"prompt_tokens": 20, "total_tokens": 23, "completion_tokens": 3,
                      "prompt_tokens_details": None},
                     prompt_logprobs=None, kv_transfer_params=None)
    req = {"model": model, "messages": [{"role": "user", "content": "2+2?"}]}
    run(c, call(c, "127.0.0.1", "/v1/chat/completions", req, reply_body(resp), tls=False,
                port=8000),
        [want("vllm", "chat.completions", model, model, usage(20, 3), host="127.0.0.1",
              path="/v1/chat/completions", locality="local")])


@test
def llama_cpp_server_timings(c):
    model = "gpt-oss-20b-GGUF"
    resp = chat_body("chatcmpl-QkP2mV8xR4tY6uI0oA9sD3fG7hJ1kL5z", model, "Hello!",
                     {"completion_tokens": 4, "prompt_tokens": 12, "total_tokens": 16},
                     system_fingerprint="b6490-f4cbb8e3",
                     timings={"prompt_n": 12, "prompt_ms": 41.2, "prompt_per_token_ms": 3.43,
                              "prompt_per_second": 291.2, "predicted_n": 4,
                              "predicted_ms": 60.1, "predicted_per_token_ms": 15.0,
                              "predicted_per_second": 66.5})
    req = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
    run(c, call(c, "localhost", "/v1/chat/completions", req, reply_body(resp), tls=False,
                port=8080),
        [want("llama_cpp", "chat.completions", model, model, usage(12, 4), host="localhost",
              path="/v1/chat/completions", locality="local")])


@test
def lm_studio_port_1234(c):
    model = "qwen2.5-7b-instruct"
    resp = chat_body("chatcmpl-x1y2z3w4v5u6t7s8r9q0", model, "Paris.",
                     {"prompt_tokens": 25, "completion_tokens": 2, "total_tokens": 27},
                     stats={}, system_fingerprint=model)
    req = {"model": model, "messages": [{"role": "user", "content": "Capital of France?"}]}
    run(c, call(c, "localhost", "/v1/chat/completions", req, reply_body(resp), tls=False,
                port=1234),
        [want("localhost", "chat.completions", model, model, usage(25, 2), host="localhost",
              path="/v1/chat/completions", locality="local")])


@test
def ollama_openai_v1_and_api_embed(c):
    model = "llama3.2:3b"
    resp = chat_body("chatcmpl-412", model, "Hello there.",
                     {"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34},
                     system_fingerprint="fp_ollama")
    req = {"model": model, "messages": [{"role": "user", "content": "Hello"}]}
    run(c, call(c, "localhost", "/v1/chat/completions", req, reply_body(resp), tls=False,
                port=11434),
        [want("ollama", "chat.completions", model, model, usage(30, 4), host="localhost",
              path="/v1/chat/completions", locality="local")])
    emb = {"model": "all-minilm", "embeddings": [[0.010071029, -0.0017594862, 0.05007221]],
           "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8}
    req = {"model": "all-minilm", "input": "Why is the sky blue?"}
    run(c, call(c, "localhost", "/api/embed", req,
                reply_body(json.dumps(emb, separators=(",", ":")),
                           content_type="application/json; charset=utf-8"),
                tls=False, port=11434),
        [want("ollama", "embed", "all-minilm", "all-minilm", usage(8, 0), host="localhost",
              path="/api/embed", locality="local")])



# ---------------------------------------------------------------------------------------------
# Anthropic count_tokens; errors and streams that break off; no usage in the response
# ---------------------------------------------------------------------------------------------

ANTHROPIC_HDRS = {"content-type": "application/json", "anthropic-version": "2023-06-01",
                  "x-api-key": "sk-ant-api03-test-0123456789"}
CURL_PARTIAL = 18  # curl: transfer closed with outstanding read data remaining


@test
def anthropic_count_tokens_not_billed(c):
    req = {"model": "claude-sonnet-4-5",
           "messages": [{"role": "user", "content": "How many tokens is this?"}]}
    path = "/v1/messages/count_tokens"
    recs = run(c, call(c, "api.anthropic.com", path, req, reply_body({"input_tokens": 2095}),
                       hdrs=ANTHROPIC_HDRS),
               [want("anthropic", "messages.count_tokens", "claude-sonnet-4-5",
                     "claude-sonnet-4-5", zero(), host="api.anthropic.com", path=path,
                     cost=h.Fraction(0))])
    db = h.tmp_store()
    h.run(call(c, "api.anthropic.com", path, req, reply_body({"input_tokens": 2095}),
               hdrs=ANTHROPIC_HDRS), shim=True, db=db, agent=AGENT)
    show = h.run([h.CLI, "show", "--db", db, str(recs[0]["id"])])
    expect(show.rc == 0 and b"not billed" in show.stdout,
           "tokshim show must say the call was not billed: %r" % show)


def anthropic_stream_events(u_start, text_pieces, model="claude-sonnet-4-5-20250929"):
    ev = [{"type": "message_start", "message": {
        "model": model, "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message",
        "role": "assistant", "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": u_start}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"}]
    for p in text_pieces:
        ev.append({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": p}})
    return sse(ev, done=False, named=True)


ANTHROPIC_START = {"input_tokens": 3, "cache_creation_input_tokens": 403,
                   "cache_read_input_tokens": 1111,
                   "cache_creation": {"ephemeral_5m_input_tokens": 403, "ephemeral_1h_input_tokens": 0},
                   "output_tokens": 1, "service_tier": "standard"}


@test
def anthropic_stream_cut_keeps_usage_reached(c):
    events = anthropic_stream_events(ANTHROPIC_START, ["Python is", " a language", " that"])
    events += sse([{"type": "content_block_stop", "index": 0},
                   {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 33}},
                   {"type": "message_stop"}], done=False, named=True)
    req = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
           "messages": [{"role": "user", "content": "Describe Python."}]}
    # message_start, content_block_start, ping and three deltas; then the connection drops.
    run(c, call(c, "api.anthropic.com", "/v1/messages", req, reply_stream(events, cut_after=6),
                hdrs=ANTHROPIC_HDRS),
        [want("anthropic", "messages", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
              usage(1517, 1, cache_read=1111, cache_write=403), host="api.anthropic.com",
              path="/v1/messages", price="claude-sonnet-4-5", stream=True, error="network",
              truncated=True)], rc=CURL_PARTIAL)


@test
def anthropic_stream_overloaded_error_event(c):
    # A 200 stream that reports an error event (overloaded) and ends cleanly.
    events = anthropic_stream_events(ANTHROPIC_START, ["Python"]) + sse(
        [{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}],
        done=False, named=True)
    req = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
           "messages": [{"role": "user", "content": "Describe Python."}]}
    run(c, call(c, "api.anthropic.com", "/v1/messages", req, reply_stream(events),
                hdrs=ANTHROPIC_HDRS, client="httpx", stream=True),
        [want("anthropic", "messages", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
              usage(1517, 1, cache_read=1111, cache_write=403), host="api.anthropic.com",
              path="/v1/messages", price="claude-sonnet-4-5", stream=True, error="overloaded")])


@test
def stream_without_usage_estimated(c):
    # Groq without include_usage (and no x_groq usage): estimated from the text,
    # ceil(bytes / 4): request "Count to three." (15 bytes) -> 4, reply "One, two, three." -> 4.
    rid, model = "chatcmpl-7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d", "llama-3.1-8b-instant"
    events = sse([chunk(rid, model, {"role": "assistant", "content": ""}),
                  chunk(rid, model, {"content": "One, two,"}),
                  chunk(rid, model, {"content": " three."}),
                  chunk(rid, model, {}, "stop")])
    req = {"model": model, "stream": True,
           "messages": [{"role": "user", "content": "Count to three."}]}
    run(c, call(c, "api.groq.com", GROQ_PATH, req, reply_stream(events)),
        [want("groq", "chat.completions", model, model, usage(4, 4), host="api.groq.com",
              path=GROQ_PATH, price=model, stream=True, estimated=True)])


@test
def stream_cut_without_usage_estimated_network(c):
    # DeepSeek's usage comes in the last chunk; cut before it, the text seen so far is what
    # the estimate has: request "Is 7 prime?" (11 bytes) -> 3, reply "Yes, 7" (6 bytes) -> 2.
    rid = "5a7b0e0c-2f43-4c1e-9f0a-6a1b2c3d4e60"
    events = sse([chunk(rid, "deepseek-chat", {"role": "assistant", "content": ""}),
                  chunk(rid, "deepseek-chat", {"content": "Yes, 7"}),
                  chunk(rid, "deepseek-chat", {"content": " is prime."}),
                  chunk(rid, "deepseek-chat", {"content": ""}, "stop",
                        u={"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14,
                           "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 9})])
    req = {"model": "deepseek-chat", "stream": True,
           "messages": [{"role": "user", "content": "Is 7 prime?"}]}
    run(c, call(c, "api.deepseek.com", "/chat/completions", req, reply_stream(events, cut_after=2)),
        [want("deepseek", "chat.completions", "deepseek-chat", "deepseek-chat", usage(3, 2),
              host="api.deepseek.com", path="/chat/completions", price="deepseek-chat",
              stream=True, estimated=True, error="network", truncated=True)], rc=CURL_PARTIAL)


@test
def out_of_credit_budget_exceeded(c):
    # DeepSeek types its 402 as an invalid request; OpenRouter's code is a number.
    req = {"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hi"}]}
    err = {"error": {"message": "Insufficient Balance", "type": "unknown_error", "param": None,
                     "code": "invalid_request_error"}}
    run(c, call(c, "api.deepseek.com", "/chat/completions", req,
                reply_body(err, 402, "Payment Required")),
        [want("deepseek", "chat.completions", "deepseek-chat", "deepseek-chat", zero(),
              host="api.deepseek.com", path="/chat/completions", status=402,
              error="budget_exceeded", price="deepseek-chat")])
    req = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    err = {"error": {"message": "This request requires more credits, or fewer max_tokens. You "
                                "requested up to 16384 tokens, but can only afford 1335.",
                     "code": 402, "metadata": {"provider_name": None}}}
    run(c, call(c, "openrouter.ai", OPENROUTER_PATH, req, reply_body(err, 402, "Payment Required")),
        [want("openrouter", "chat.completions", "openai/gpt-4o", "openai/gpt-4o", zero(),
              host="openrouter.ai", path=OPENROUTER_PATH, status=402, error="budget_exceeded",
              price="gpt-4o")])


@test
def auth_and_not_found_errors(c):
    # Mistral's 401 has no error type (the status says it); xAI's error is a plain string.
    req = {"model": "mistral-small-latest", "messages": [{"role": "user", "content": "Hi"}]}
    run(c, call(c, "api.mistral.ai", "/v1/chat/completions", req,
                reply_body({"message": "Unauthorized", "request_id": "2f3e4d5c6b7a"}, 401,
                           "Unauthorized")),
        [want("mistral_ai", "chat.completions", "mistral-small-latest", "mistral-small-latest",
              zero(), host="api.mistral.ai", path="/v1/chat/completions", status=401,
              error="auth", price="mistral-small")])
    req = {"model": "grok-9", "messages": [{"role": "user", "content": "Hi"}]}
    err = {"code": "Some requested entity was not found",
           "error": "The model grok-9 does not exist or your team does not have access to it."}
    run(c, call(c, "api.x.ai", "/v1/chat/completions", req, reply_body(err, 404, "Not Found")),
        [want("x_ai", "chat.completions", "grok-9", "grok-9", zero(), host="api.x.ai",
              path="/v1/chat/completions", status=404, error="invalid_request")])



# ---------------------------------------------------------------------------------------------
# Hosts tokshim has never heard of: recorded by the shape of their usage, else not at all
# ---------------------------------------------------------------------------------------------

UNKNOWN = "llm.example.net"


def unknown_want(api_model_req, model, u, path, stream=False):
    # Its host is the provider; a loopback peer makes it local (so it costs 0).
    return want(UNKNOWN, "unknown", api_model_req, model, u, host=UNKNOWN, path=path,
                locality="local", stream=stream)


@test
def unknown_host_openai_and_anthropic_shapes(c):
    path = "/gateway/v2/generate"
    req = {"model": "team-default", "messages": [{"role": "user", "content": "Hi"}]}
    resp = chat_body("gw-1", "gpt-4o-mini-2024-07-18", "Hello.",
                     {"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45,
                      "prompt_tokens_details": {"cached_tokens": 32},
                      "completion_tokens_details": {"reasoning_tokens": 0}})
    run(c, call(c, UNKNOWN, path, req, reply_body(resp), client="requests"),
        [unknown_want("team-default", "gpt-4o-mini-2024-07-18", usage(40, 5, cache_read=32), path)])
    # Anthropic-shaped stream: input excludes the cache counts, message_delta is cumulative.
    events = anthropic_stream_events(ANTHROPIC_START, ["Hi", " there"]) + sse(
        [{"type": "content_block_stop", "index": 0},
         {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
          "usage": {"output_tokens": 7}},
         {"type": "message_stop"}], done=False, named=True)
    req = {"model": "claude-via-gateway", "stream": True,
           "messages": [{"role": "user", "content": "Hi"}]}
    run(c, call(c, UNKNOWN, "/llm/stream", req, reply_stream(events), client="httpx",
                stream=True),
        [unknown_want("claude-via-gateway", "claude-sonnet-4-5-20250929",
                      usage(1517, 7, cache_read=1111, cache_write=403), "/llm/stream",
                      stream=True)])


@test
def unknown_host_gemini_and_ollama_shapes(c):
    gem = {"candidates": [{"content": {"parts": [{"text": "Hi."}], "role": "model"},
                           "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3,
                             "totalTokenCount": 30, "thoughtsTokenCount": 18,
                             "cachedContentTokenCount": 4},
           "modelVersion": "gemini-2.5-flash", "responseId": "aBcD"}
    req = {"model": "gemini-proxy", "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    run(c, call(c, UNKNOWN, "/proxy/gemini", req, reply_body(gem), client="requests"),
        [unknown_want("gemini-proxy", "gemini-2.5-flash", usage(9, 21, cache_read=4, reasoning=18),
                      "/proxy/gemini")])
    oll = {"model": "qwen3:8b", "created_at": "2025-09-30T10:00:00.000000Z",
           "response": "Hi.", "done": True, "done_reason": "stop", "total_duration": 5043500667,
           "prompt_eval_count": 26, "eval_count": 290}
    req = {"model": "qwen3:8b", "prompt": "Hi"}
    run(c, call(c, "127.0.0.1", "/internal/infer", req, reply_body(oll), tls=False, port=9123),
        [want("127.0.0.1", "unknown", "qwen3:8b", "qwen3:8b", usage(26, 290), host="127.0.0.1",
              path="/internal/infer", locality="local")])


@test
def unknown_host_without_usage_not_recorded(c):
    # A JSON POST answered without usage, a JSON POST answered in HTML, a GET, a form POST:
    # none is an LLM call, none is recorded.
    req = {"event": "page_view", "props": {"tokens": 12}}
    run(c, call(c, UNKNOWN, "/v1/track", req, reply_body({"ok": True, "usage": {"quota": 3}})), [])
    run(c, call(c, UNKNOWN, "/v1/track", req,
                reply_body("<html>usage</html>", content_type="text/html")), [])
    resp = {"id": "x", "model": "m", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    argv = call(c, UNKNOWN, "/v1/thing", req, reply_body(resp))
    run(c, [a for a in argv if not a.startswith("@")][:-1] + ["-G"], [])
    run(c, call(c, UNKNOWN, "/v1/thing", "a=1&b=2", reply_body(resp),
                hdrs={"Content-Type": "application/x-www-form-urlencoded"}), [])



# ---------------------------------------------------------------------------------------------
# Prices the token fields alone do not tell: one-hour cache writes, service tiers, long context
# ---------------------------------------------------------------------------------------------

@test
def anthropic_cache_write_1h(c):
    """usage.cache_creation splits the cache writes by lifetime: the one-hour part is stored
    (cache_write_1h_tokens) and priced at claude-sonnet-4-5's 2 x input ($6/M), the rest at
    the 5-minute $3.75/M; streamed (message_start's usage) and not."""
    body = {"id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "The report is cached for an hour."}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 21, "cache_creation_input_tokens": 2500,
                      "cache_read_input_tokens": 1000,
                      "cache_creation": {"ephemeral_5m_input_tokens": 500,
                                         "ephemeral_1h_input_tokens": 2000},
                      "output_tokens": 40, "service_tier": "standard"}}
    req = {"model": "claude-sonnet-4-5", "max_tokens": 1024,
           "system": [{"type": "text", "text": "A long report.",
                       "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
           "messages": [{"role": "user", "content": "Summarise."}]}
    w = want("anthropic", "messages", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
             usage(3521, 40, cache_read=1000, cache_write=2500), host="api.anthropic.com",
             path="/v1/messages",
             # 21 x 3 + 1000 x 0.3 + 500 x 3.75 + 2000 x 6 + 40 x 15 = 14,838 micro-USD
             cost=h.Fraction(14838, 10 ** 6))
    w["cache_write_1h_tokens"] = 2000
    run(c, call(c, "api.anthropic.com", "/v1/messages", req, reply_body(body),
                hdrs=ANTHROPIC_HDRS), [w])

    start = {"input_tokens": 4, "cache_creation_input_tokens": 900, "cache_read_input_tokens": 0,
             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 900},
             "output_tokens": 1, "service_tier": "standard"}
    events = anthropic_stream_events(start, ["Cached", " for an hour."])
    events += sse([{"type": "content_block_stop", "index": 0},
                   {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                       "stop_sequence": None},
                    "usage": {"output_tokens": 30}},
                   {"type": "message_stop"}], done=False, named=True)
    w = want("anthropic", "messages", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
             usage(904, 30, cache_write=900), host="api.anthropic.com", path="/v1/messages",
             stream=True,
             # 4 x 3 + 900 x 6 + 30 x 15 = 5,862 micro-USD
             cost=h.Fraction(5862, 10 ** 6))
    w["cache_write_1h_tokens"] = 900
    run(c, call(c, "api.anthropic.com", "/v1/messages", dict(req, stream=True),
                reply_stream(events), hdrs=ANTHROPIC_HDRS, client="httpx", stream=True), [w])


@test
def openai_service_tiers_and_long_context(c):
    """service_tier in the response prices the call at that tier (gpt-5.4: priority 2x, flex
    0.5x); a call above 272K input is priced at gpt-5.4's long-context tier (5 / 22.5)."""
    u = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100,
         "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0,
                                       "accepted_prediction_tokens": 0,
                                       "rejected_prediction_tokens": 0}}
    req = {"model": "gpt-5.4", "service_tier": "priority",
           "messages": [{"role": "user", "content": "Quick answer, please."}]}
    resp = chat_body("chatcmpl-CkPq2dF7Zr1tYb5", "gpt-5.4-2026-03-05", "Here it is.", u,
                     service_tier="priority", system_fingerprint=None)
    w = want("openai", "chat.completions", "gpt-5.4", "gpt-5.4-2026-03-05",
             usage(1000, 100, cache_read=200, reasoning=64), host="api.openai.com",
             path="/v1/chat/completions",
             # (800 x 2.5 + 200 x 0.25 + 100 x 15) x 2 = 7,100 micro-USD
             cost=h.Fraction(7100, 10 ** 6))
    w["service_tier"] = "priority"
    run(c, call(c, "api.openai.com", "/v1/chat/completions", req, reply_body(resp)), [w])

    uo = {"input_tokens": 2000, "input_tokens_details": {"cached_tokens": 0},
          "output_tokens": 500, "output_tokens_details": {"reasoning_tokens": 300},
          "total_tokens": 2500}
    events = responses_stream_events(["Done ", "later."], "gpt-5.4-2026-03-05", uo)
    events[-1] = events[-1].replace('"service_tier":"auto"', '"service_tier":"flex"')
    expect('"service_tier":"flex"' in events[-1], "the completed event says flex")
    w = want("openai", "responses", "gpt-5.4", "gpt-5.4-2026-03-05",
             usage(2000, 500, reasoning=300), host="api.openai.com", path="/v1/responses",
             stream=True,
             # (2000 x 2.5 + 500 x 15) x 0.5 = 6,250 micro-USD
             cost=h.Fraction(6250, 10 ** 6))
    w["service_tier"] = "flex"
    run(c, call(c, "api.openai.com", "/v1/responses",
                {"model": "gpt-5.4", "input": "No rush.", "service_tier": "flex", "stream": True},
                reply_stream(events), client="httpx", stream=True), [w])

    big = {"prompt_tokens": 300000, "completion_tokens": 1000, "total_tokens": 301000,
           "prompt_tokens_details": {"cached_tokens": 0}}
    resp = chat_body("chatcmpl-CkPq2dF7Zr1tYb6", "gpt-5.4-2026-03-05", "Read it all.", big,
                     service_tier="default")
    w = want("openai", "chat.completions", "gpt-5.4", "gpt-5.4-2026-03-05", usage(300000, 1000),
             host="api.openai.com", path="/v1/chat/completions",
             # 300,000 x 5 + 1,000 x 22.5 = 1,522,500 micro-USD (272,000 would be 2.5 / 15)
             cost=h.Fraction(15225, 10 ** 4))
    w["service_tier"] = "default"
    run(c, call(c, "api.openai.com", "/v1/chat/completions",
                {"model": "gpt-5.4", "messages": [{"role": "user", "content": "A long file."}]},
                reply_body(resp)), [w])

if __name__ == "__main__":
    h.main(setup, teardown)
