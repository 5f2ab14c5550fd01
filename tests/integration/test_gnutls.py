#!/usr/bin/python3
"""test_gnutls.py - GnuTLS programs (shim/hooks_gnutls.c): Debian's wget, and libcurl over
GnuTLS (Debian's libcurl3-gnutls) through tests/tools/curl_multi_agent.c built against it.

wget speaks HTTP/1.1 over GnuTLS to servers/provider_server.py: its plaintext is seen at
gnutls_record_send / gnutls_record_recv. The libcurl-gnutls agent runs four transfers at once
over HTTP/2 (servers/h2_server.py): captured at the HTTP layer by the libcurl hooks, and not
again by the GnuTLS hooks underneath. Each run is made without and with the shim: same exit
status and stdout, exactly one record per call.
"""
import json
import os

import harness as h
from harness import expect_eq, test

import provider_server as ps
import test_curl as tc

OPENAI = "api.openai.com"
ANTHROPIC = "api.anthropic.com"
AGENT = "gnutls-agent"
GNUTLS_AGENT = os.path.join(h.BUILD, "tests", "curl_multi_agent_gnutls")


setup, teardown = tc.setup, tc.teardown  # both servers: HTTP/1.1 and HTTP/2


def wget_argv(c, host, path, body, headers):
    """wget to 127.0.0.1 (it has no --resolve) with the provider's name in the Host header."""
    argv = ["wget", "-q", "-O", "-", "--ca-certificate=" + c.h1.ca, "--tries=1", "--timeout=30",
            "--header=Host: " + host, "--post-file=" + h.write_temp(body)]
    argv += ["--header=%s" % hd for hd in headers]
    return argv + ["https://127.0.0.1:%d%s" % (c.h1.tls, path)]


def run_both(c, srv, argv, wants, version=None, sort=False):
    return tc.run_both(c, srv, argv, wants, version, sort, agent=AGENT)[1]


@test
def wget_openai_whole(c):
    case = "openai_chat_nonstream_cached"
    u = c.man[case]["expected"]
    w = h.want_record("openai", "chat.completions", "gpt-4.1", "gpt-4.1-2025-04-14",
                      {k: u[k] for k in h.TOKEN_FIELDS}, host=OPENAI,
                      path="/v1/chat/completions", agent=AGENT)
    out = run_both(c, c.h1, wget_argv(c, OPENAI, "/v1/chat/completions",
                                      h.fixture_bytes(case + ".req.json"),
                                      ["Content-Type: application/json",
                                       "Authorization: Bearer sk-test-wget"]), [w])
    expect_eq(out, h.fixture_bytes(case + ".body"), "wget's output")


@test
def wget_anthropic_stream(c):
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 6, "stream": True,
                       "messages": [{"role": "user", "content": "wget over gnutls"}]})
    hdrs = {"X-Test-Cache-Write": "40"}
    w = h.want_record("anthropic", "messages", "claude-haiku-4-5", "claude-haiku-4-5-20251001",
                      ps.expected_usage("/v1/messages", body.encode(), hdrs), host=ANTHROPIC,
                      path="/v1/messages", agent=AGENT, stream=True)
    run_both(c, c.h1, wget_argv(c, ANTHROPIC, "/v1/messages", body,
                                ["content-type: application/json", "x-api-key: sk-ant-wget",
                                 "anthropic-version: 2023-06-01", "X-Test-Cache-Write: 40"]),
             [w])


@test
def libcurl_gnutls_multi_http2(c):
    bodies, wants = tc.multi_calls(c)
    for w in wants:
        w["agent"] = AGENT
    argv = [GNUTLS_AGENT] + tc.multi_argv(c.h2, bodies)[1:]
    run_both(c, c.h2, argv, wants, b" HTTP/2 ", sort=True)


if __name__ == "__main__":
    h.main(setup, teardown)
