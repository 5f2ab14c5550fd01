#!/usr/bin/python3
"""testca.py - a throw-away certificate authority for tokshim's integration tests and demo.

Runs the `openssl` command-line tool to create, in a directory of the caller's choosing:

    ca.pem, ca.key          a self-signed CA (P-256, valid 2 days)
    server.pem, server.key  a server certificate signed by it, with the SANs
                            api.openai.com, api.anthropic.com, localhost, 127.0.0.1 and the
                            other provider hosts of SAN_DNS

Clients trust ca.pem explicitly (curl --cacert, requests verify=, httpx verify=, urllib
cafile=); nothing is installed system-wide.

    /usr/bin/python3 testca.py DIR        # prints the four paths as JSON
"""
import json
import os
import subprocess
import sys

SAN_DNS = ("api.openai.com", "api.anthropic.com", "localhost",
           # OpenAI-compatible services (tests/integration/test_providers_openai_compat.py)
           "api.groq.com", "api.deepseek.com", "api.mistral.ai", "api.x.ai", "api.perplexity.ai",
           "openrouter.ai", "api.together.xyz", "api.fireworks.ai", "myres.openai.azure.com",
           "llm.example.net")
# Gemini, Vertex AI, Cohere and Bedrock (tests/integration/test_providers_gcb.py)
SAN_DNS += ("generativelanguage.googleapis.com", "us-central1-aiplatform.googleapis.com",
            "aiplatform.googleapis.com", "api.cohere.com",
            "bedrock-runtime.us-east-1.amazonaws.com")
SAN_IP = ("127.0.0.1",)


def _openssl(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))


def make_ca(directory):
    """Creates the CA and the server certificate in directory; returns a dict of paths."""
    os.makedirs(directory, exist_ok=True)
    d = os.path.abspath(directory)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(["req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
              "-subj", "/O=tokshim tests/CN=tokshim test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-addext", "subjectKeyIdentifier=hash"], d)
    _openssl(["req"] + ec + ["-keyout", "server.key", "-out", "server.csr",
              "-subj", "/O=tokshim tests/CN=api.openai.com"], d)
    san = ",".join(["DNS:" + n for n in SAN_DNS] + ["IP:" + a for a in SAN_IP])
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n"
                "subjectAltName=%s\n" % san)
    _openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
              "-CAcreateserial", "-out", "server.pem", "-days", "2", "-sha256",
              "-extfile", "server.ext"], d)
    for name in ("ca.key", "server.key"):
        os.chmod(os.path.join(d, name), 0o600)
    return {"ca": os.path.join(d, "ca.pem"), "ca_key": os.path.join(d, "ca.key"),
            "cert": os.path.join(d, "server.pem"), "key": os.path.join(d, "server.key")}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: testca.py DIR\n")
        sys.exit(2)
    print(json.dumps(make_ca(sys.argv[1])))
