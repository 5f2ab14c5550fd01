#!/usr/bin/python3
"""tokshim pricing: list, update from LiteLLM and OpenRouter price lists served by a local HTTP
server, and the costs that reports give before and after, on a store made by mkstore from
tests/cli/stores/pricing.jsonl (whose comments work every cost out by hand).

Every cost is asserted exactly (decimals, never floats). The price lists below are small but
have the shape of the real documents: LiteLLM's model_prices_and_context_window.json (with its
sample_spec entry, per-token USD numbers, the above-200k tier, Perplexity's search fees, an
image model to skip) and OpenRouter's /api/v1/models (USD-per-token strings, "-1" for a router
whose price varies). The last line printed is "N passed, N failed".
"""

import decimal
import http.server
import json
import os
import stat
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli  # noqa: E402  (the CLI test helpers: Env, contains, loads)

from test_cli import TOKSHIM, MKSTORE, contains, loads, report  # noqa: E402

D = decimal.Decimal
LITELLM = {
    "sample_spec": {
        "input_cost_per_token": 0.0,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
        "max_input_tokens": "max input tokens, if the provider specifies it",
        "mode": "one of: chat, embedding, completion, image_generation, audio_transcription",
        "output_cost_per_token": 0.0,
        "search_context_cost_per_query": {"search_context_size_high": 0.0,
                                          "search_context_size_low": 0.0,
                                          "search_context_size_medium": 0.0},
        "supports_function_calling": True,
    },
    "gpt-4o": {
        "cache_read_input_token_cost": 1.25e-06, "input_cost_per_token": 2.5e-06,
        "input_cost_per_token_batches": 1.25e-06, "litellm_provider": "openai",
        "max_input_tokens": 128000, "max_output_tokens": 16384, "max_tokens": 16384,
        "mode": "chat", "output_cost_per_token": 1e-05, "output_cost_per_token_batches": 5e-06,
        "supports_function_calling": True, "supports_prompt_caching": True,
    },
    "claude-sonnet-4-5": {
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
        "cache_read_input_token_cost": 3e-07,
        "cache_read_input_token_cost_above_200k_tokens": 6e-07,
        "input_cost_per_token": 3e-06, "input_cost_per_token_above_200k_tokens": 6e-06,
        "litellm_provider": "anthropic", "max_input_tokens": 200000, "max_output_tokens": 64000,
        "mode": "chat", "output_cost_per_token": 1.5e-05,
        "output_cost_per_token_above_200k_tokens": 2.25e-05,
    },
    "deepseek/deepseek-chat": {
        "cache_read_input_token_cost": 7e-08, "input_cost_per_token": 2.7e-07,
        "litellm_provider": "deepseek", "max_input_tokens": 65536, "mode": "chat",
        "output_cost_per_token": 1.1e-06, "supports_prompt_caching": True,
    },
    "groq/llama-3.3-70b-versatile": {
        "input_cost_per_token": 5.9e-07, "litellm_provider": "groq", "max_input_tokens": 128000,
        "mode": "chat", "output_cost_per_token": 7.9e-07,
    },
    "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo": {
        "input_cost_per_token": 8.8e-07, "litellm_provider": "together_ai", "mode": "chat",
        "output_cost_per_token": 8.8e-07,
    },
    "perplexity/sonar-pro": {
        "input_cost_per_token": 3e-06, "litellm_provider": "perplexity",
        "max_input_tokens": 200000, "mode": "chat", "output_cost_per_token": 1.5e-05,
        "search_context_cost_per_query": {"search_context_size_high": 0.014,
                                          "search_context_size_low": 0.006,
                                          "search_context_size_medium": 0.01},
    },
    "text-embedding-3-small": {
        "input_cost_per_token": 2e-08, "litellm_provider": "openai", "max_input_tokens": 8191,
        "mode": "embedding", "output_cost_per_token": 0.0, "output_vector_size": 1536,
    },
    "dall-e-3": {
        "input_cost_per_pixel": 3.81469e-08, "litellm_provider": "openai",
        "mode": "image_generation", "output_cost_per_pixel": 0.0,
    },
    "some-unknown-host/model-x": {
        "input_cost_per_token": 1e-06, "litellm_provider": "nobody_we_know", "mode": "chat",
        "output_cost_per_token": 1e-06,
    },
}

OPENROUTER = {"data": [
    {"id": "mistralai/mistral-small-3.2-24b-instruct",
     "canonical_slug": "mistralai/mistral-small-3.2-24b-instruct-2506",
     "name": "Mistral: Mistral Small 3.2 24B", "created": 1750443016, "context_length": 131072,
     "architecture": {"modality": "text+image->text", "tokenizer": "Mistral"},
     "pricing": {"prompt": "0.00000005", "completion": "0.0000001", "request": "0",
                 "image": "0", "web_search": "0", "internal_reasoning": "0"},
     "top_provider": {"context_length": 131072, "is_moderated": False}},
    {"id": "anthropic/claude-sonnet-4.5", "canonical_slug": "anthropic/claude-4.5-sonnet-20250929",
     "name": "Anthropic: Claude Sonnet 4.5", "context_length": 1000000,
     "pricing": {"prompt": "0.000003", "completion": "0.000015", "request": "0",
                 "image": "0.0048", "web_search": "0", "internal_reasoning": "0",
                 "input_cache_read": "0.0000003", "input_cache_write": "0.00000375"}},
    {"id": "perplexity/sonar", "name": "Perplexity: Sonar", "context_length": 127072,
     "pricing": {"prompt": "0.000001", "completion": "0.000001", "request": "0.005",
                 "image": "0", "web_search": "0", "internal_reasoning": "0"}},
    {"id": "openrouter/auto", "name": "Auto Router", "context_length": 2000000,
     "pricing": {"prompt": "-1", "completion": "-1"}},
]}


class Lists(http.server.BaseHTTPRequestHandler):
    """Serves the two price lists, a 404, and a JSON document of neither schema."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        docs = {"/litellm/model_prices_and_context_window.json": LITELLM,
                "/api/v1/models": OPENROUTER, "/other.json": {"hello": "world"}}
        doc = docs.get(self.path)
        body = json.dumps(doc, indent=2).encode() if doc is not None else b"not found\n"
        self.send_response(200 if doc is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def run(env, args, extra=None):
    environ = env.base_environ()
    environ.update(extra or {})
    r = subprocess.run([TOKSHIM] + args, capture_output=True, text=True, env=environ,
                       timeout=60)
    return r


def check_json(name, r, want, status=0):
    try:
        d = contains(want, loads(r.stdout))
    except ValueError as e:
        d = "%s\n%s" % (e, r.stdout[:2000])
    report(r.returncode == status and d is None, name,
           "exit %d\n%s\n%s" % (r.returncode, d, r.stderr))


def main():
    for exe in (TOKSHIM, MKSTORE):
        if not os.access(exe, os.X_OK):
            print("FAIL %s is not built" % exe)
            print("0 passed, 1 failed")
            return 1
    env = test_cli.Env()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Lists)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    try:
        cases(env, base)
    finally:
        server.shutdown()
        import shutil
        shutil.rmtree(env.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (test_cli.passed, test_cli.failed))
    return 1 if test_cli.failed else 0


def cases(env, base):
    db = env.store("pricing")
    override = os.path.join(env.home, ".config", "tokshim", "pricing.json")
    litellm = base + "/litellm/model_prices_and_context_window.json"
    openrouter = base + "/api/v1/models"

    # Built-in prices: the hand-worked costs of the store's comments; billed cost wins;
    # unknown models are unpriced (null), never $0, and their tokens are counted.
    r = run(env, ["records", "--db", db, "--format", "jsonl"])
    costs = [loads(l)["cost_usd"] for l in r.stdout.splitlines()]
    want = [D("0.00725"), D("0.001259"), D("0.004567"), None, D("0.0133"), D("0.024"), None,
            0, D("0.1834"), D("0.0055")]
    report(costs == want,
           "records: costs under the built-in table", "%r\n%s" % (costs, r.stderr))
    check_json("report before any update", run(env, ["report", "--db", db, "--format", "json"]),
               {"totalCost": D("0.239276"), "unpricedTokens": 1115, "unpricedRequests": 2,
                "byModel": {"mystery-model": {"cost": None, "unpricedTokens": 15},
                            "mistralai/mistral-small-3.2-24b-instruct": {
                                "cost": None, "unpricedTokens": 1100},
                            "sonar-pro": {"requests": 2, "failedRequests": 1,
                                          "cost": D("0.0133")},
                            "anthropic/claude-sonnet-4.5": {"cost": D("0.004567")}}})
    r = run(env, ["report", "--db", db])
    report(r.returncode == 0 and "1.1k tokens in 2 requests are unpriced (no price for their "
           "model) and not in the cost (marked *)" in r.stdout,
           "report table says how many tokens are unpriced", r.stdout + r.stderr)

    # pricing list MODEL: normalisation and the entry that prices it.
    check_json("pricing list: a Bedrock id prices as the Anthropic model",
               run(env, ["pricing", "list", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                         "--format", "json"]),
               {"priced": True, "normalised": "claude-sonnet-4-5", "entry": "claude-sonnet-4-5",
                "source": "built-in", "input": 3, "output": 15, "cache_read": D("0.3"),
                "cache_write": D("3.75"),
                "long_context": {"threshold": 200000, "input": 6, "output": D("22.5")}})
    check_json("pricing list: sonar-pro fees by search context",
               run(env, ["pricing", "list", "sonar-pro", "--format", "json"]),
               {"priced": True, "request": D("0.006"),
                "request_by_context": {"low": D("0.006"), "medium": D("0.01"), "high": D("0.014")}})
    check_json("pricing list: DeepSeek's retired V4 Flash name prices as V4.1 Flash (peak)",
               run(env, ["pricing", "list", "deepseek-v4-flash", "--format", "json"]),
               {"priced": True, "entry": "deepseek-flash", "input": D("0.3"),
                "output": D("1.2"), "cache_read": D("0.006")})
    check_json("pricing list: a Fireworks account path prices as Fireworks' own entry",
               run(env, ["pricing", "list", "accounts/fireworks/models/gpt-oss-120b",
                         "--provider", "fireworks", "--format", "json"]),
               {"priced": True, "entry": "fireworks/gpt-oss-120b", "input": D("0.15"),
                "output": D("0.6"), "cache_read": D("0.015")})
    r = run(env, ["pricing", "list", "mystery-model"])
    report(r.returncode == 1 and r.stdout.startswith(
        "'mystery-model' is unpriced: no entry matches 'mystery-model'\n"),
        "pricing list: an unpriced model, exit 1", r.stdout + r.stderr)
    r = run(env, ["pricing", "list"])
    report(r.returncode == 0 and "override file '%s' (absent)" % override in r.stdout and
           any(l.split()[:1] == ["sonar-pro"] and "$0.006-0.014/req" in l and
               l.rstrip().endswith("built-in") for l in r.stdout.splitlines()),
           "pricing list: the table with fees and sources", r.stdout[:3000] + r.stderr)

    # update --dry-run: says what would change, writes nothing.
    r = run(env, ["pricing", "update", "--from", litellm, "--dry-run"])
    adds = sorted(l.split()[1] for l in r.stdout.splitlines() if l.startswith("add "))
    want_adds = sorted(["gpt-4o", "claude-sonnet-4-5", "deepseek-chat",
                        "groq/llama-3.3-70b-versatile",
                        "together/meta-llama/Llama-3.3-70B-Instruct-Turbo", "sonar-pro",
                        "text-embedding-3-small"])
    report(r.returncode == 0 and adds == want_adds and
           "LiteLLM price list '%s': 7 added, 0 changed, 0 unchanged" % litellm in r.stdout and
           "dry run: '%s' not written" % override in r.stdout and not os.path.exists(override),
           "update --dry-run from LiteLLM", "%r\n%s%s" % (adds, r.stdout, r.stderr))

    # update from LiteLLM: the file is written with our schema's exact prices.
    r = run(env, ["pricing", "update", "--from", litellm])
    report(r.returncode == 0 and "wrote '%s'" % override in r.stdout,
           "update from LiteLLM over HTTP", r.stdout + r.stderr)
    try:
        with open(override) as f:
            doc = loads(f.read())
        mode = stat.S_IMODE(os.stat(override).st_mode)
    except (OSError, ValueError) as e:
        doc, mode = {}, 0
        report(False, "the override file", str(e))
    d = contains({"currency": "USD", "unit": "per 1M tokens", "sources": [litellm], "models": {
        "deepseek-chat": {"provider": "deepseek", "input": D("0.27"), "output": D("1.1"),
                          "cache_read": D("0.07")},
        "claude-sonnet-4-5": {"provider": "anthropic", "input": 3, "output": 15,
                              "cache_read": D("0.3"), "cache_write": D("3.75"),
                              "long_context": {"threshold": 200000, "input": 6,
                                               "output": D("22.5"), "cache_read": D("0.6"),
                                               "cache_write": D("7.5")}},
        "groq/llama-3.3-70b-versatile": {"provider": "groq", "input": D("0.59"),
                                         "output": D("0.79")},
        "sonar-pro": {"provider": "perplexity", "request_by_context": {
            "low": D("0.006"), "medium": D("0.01"), "high": D("0.014")}},
        "text-embedding-3-small": {"input": D("0.02"), "output": 0}}}, doc)
    report(d is None and len(doc.get("models", {})) == 7 and mode == 0o644,
           "override file: exact prices converted from per-token USD, mode 0644",
           "%s, mode %o" % (d, mode))

    # A price update re-prices history: deepseek-chat is now 600000 x 0.27 + 400000 x 0.07 +
    # 10000 x 1.1 = 201000 -> $0.201 instead of $0.1834; nothing else changed price.
    check_json("report after the LiteLLM update re-prices history",
               run(env, ["report", "--db", db, "--format", "json"]),
               {"totalCost": D("0.256876"), "unpricedTokens": 1115,
                "byModel": {"deepseek-chat": {"cost": D("0.201")}}})
    check_json("pricing list names the override file as the source",
               run(env, ["pricing", "list", "deepseek-chat", "--format", "json"]),
               {"priced": True, "entry": "deepseek-chat", "source": override, "input": D("0.27")})

    # Running it again changes nothing.
    r = run(env, ["pricing", "update", "--from", litellm])
    report(r.returncode == 0 and "7 unchanged" in r.stdout, "update again: all unchanged",
           r.stdout + r.stderr)

    # update from OpenRouter: "openrouter/<id>" entries, merged with what is there.
    r = run(env, ["pricing", "update", "--from", openrouter])
    report(r.returncode == 0 and "OpenRouter price list '%s': 3 added, 0 changed, 0 unchanged"
           % openrouter in r.stdout, "update from OpenRouter over HTTP", r.stdout + r.stderr)
    check_json("OpenRouter prices: per-token strings, request fee",
               run(env, ["pricing", "list", "--format", "json"]),
               {"override": override, "models": {
                   "openrouter/mistralai/mistral-small-3.2-24b-instruct": {
                       "provider": "openrouter", "source": override, "input": D("0.05"),
                       "output": D("0.1"), "request": 0},
                   "openrouter/anthropic/claude-sonnet-4.5": {
                       "input": 3, "output": 15, "cache_read": D("0.3"), "cache_write": D("3.75")},
                   "openrouter/perplexity/sonar": {"input": 1, "output": 1, "request": D("0.005")},
                   "deepseek-chat": {"source": override},
                   "gpt-4o-mini": {"source": "built-in"}}})
    with open(override) as f:
        n = len(json.load(f)["models"])
    report(n == 10, "merge keeps the LiteLLM models", "%d models" % n)
    # mistral-small via OpenRouter: 1000 x 0.05 + 100 x 0.1 = 60 -> $0.00006; now priced.
    check_json("report after both updates",
               run(env, ["report", "--db", db, "--format", "json"]),
               {"totalCost": D("0.256936"), "unpricedTokens": 15, "unpricedRequests": 1,
                "byModel": {"mistralai/mistral-small-3.2-24b-instruct": {"cost": D("0.00006")},
                            "anthropic/claude-sonnet-4.5": {"cost": D("0.004567")},
                            "perplexity/sonar": {"cost": D("0.0055")}}})

    # A hand-edited override (TOKSHIM_PRICING) wins over the default file and re-prices:
    # gpt-4o at 2 / 1 (cached) / 8: 800 x 2 + 200 x 1 + 500 x 8 = 5800 -> $0.0058.
    mine = os.path.join(env.tmp, "mine.json")
    with open(mine, "w") as f:
        json.dump({"models": {"gpt-4o": {"input": 2, "output": 8, "cache_read": 1}}}, f)
    check_json("TOKSHIM_PRICING re-prices gpt-4o",
               run(env, ["report", "--db", db, "--format", "json"], {"TOKSHIM_PRICING": mine}),
               {"totalCost": D("0.237826"),
                "byModel": {"gpt-4o-2024-08-06": {"cost": D("0.0058")},
                            "deepseek-chat": {"cost": D("0.1834")}}})

    # update from a file, into TOKSHIM_PRICING's file; the file keeps its mode.
    os.chmod(mine, 0o600)
    listfile = os.path.join(env.tmp, "models.json")
    with open(listfile, "w") as f:
        json.dump(OPENROUTER, f)
    r = run(env, ["pricing", "update", "--from", listfile], {"TOKSHIM_PRICING": mine})
    with open(mine) as f:
        got = json.load(f)["models"]
    report(r.returncode == 0 and sorted(got) == sorted(
        ["gpt-4o", "openrouter/mistralai/mistral-small-3.2-24b-instruct",
         "openrouter/anthropic/claude-sonnet-4.5", "openrouter/perplexity/sonar"]) and
        stat.S_IMODE(os.stat(mine).st_mode) == 0o600,
        "update from a file into TOKSHIM_PRICING, mode kept", r.stdout + r.stderr)

    # Errors: clear message, exit status, the override file untouched.
    before = open(override).read()
    bad = [
        (["pricing", "update", "--from", base + "/missing.json"], 1,
         "tokshim: cannot fetch '%s/missing.json': HTTP status 404\n" % base),
        (["pricing", "update", "--from", base + "/other.json"], 1,
         "tokshim: cannot use '%s/other.json': neither a LiteLLM, an OpenRouter nor a tokshim "
         "price list\n" % base),
        (["pricing", "update", "--from", os.path.join(env.tmp, "nope.json")], 1,
         "tokshim: cannot open '%s/nope.json': No such file or directory\n" % env.tmp),
        (["pricing", "update"], 2,
         "tokshim: update needs --from URL|FILE\ntokshim: see 'tokshim pricing --help'\n"),
        (["pricing"], 2, "tokshim: a subcommand is needed: list or update\n"
         "tokshim: see 'tokshim pricing --help'\n"),
        (["pricing", "list", "--format", "xml"], 2,
         "tokshim: invalid format 'xml': expected table or json\n"
         "tokshim: see 'tokshim pricing --help'\n"),
    ]
    for args, status, err in bad:
        r = run(env, args)
        report(r.returncode == status and r.stderr == err and open(override).read() == before,
               "error: tokshim %s" % " ".join(args),
               "exit %d\nstderr %r\nwant   %r" % (r.returncode, r.stderr, err))
    # A malformed override stops update (and every report) with the file named.
    broken = os.path.join(env.tmp, "broken.json")
    with open(broken, "w") as f:
        f.write('{"models": {"gpt-4o": {"input": "cheap", "output": 1}}}')
    r = run(env, ["report", "--db", db], {"TOKSHIM_PRICING": broken})
    report(r.returncode == 1 and r.stderr == "tokshim: pricing file '%s': models.gpt-4o.input: "
           "not a price (a number of USD per 1M tokens)\n" % broken,
           "report with a malformed override", r.stderr)
    with open(broken, "w") as f:
        f.write('{"models": ')
    r = run(env, ["pricing", "update", "--from", listfile], {"TOKSHIM_PRICING": broken})
    report(r.returncode == 1 and r.stderr == "tokshim: cannot update '%s': not valid JSON (fix "
           "or remove it first)\n" % broken and open(broken).read() == '{"models": ',
           "update over a broken override file", r.stderr)


if __name__ == "__main__":
    sys.exit(main())
