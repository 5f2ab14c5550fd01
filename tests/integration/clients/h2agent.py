#!/usr/bin/python3
"""h2agent.py - an "agent" whose LLM calls run at once over one HTTP/2 connection (httpx).

    /usr/bin/python3 h2agent.py SPEC.json

SPEC: {"ca": CA file, "resolve": [host names mapped to 127.0.0.1], "prior_knowledge": bool
(http:// URLs as HTTP/2 without upgrade), "calls": [{"url", "headers": {..}, "body": text,
"stream": bool}]}. All calls are started together on one httpx.AsyncClient(http2=True), so
they are streams of one connection in flight at the same time. Prints, in the order of the
calls, "== STATUS HTTP-VERSION\n", the body as httpx hands it over (gzip decoded), "\n". Exit
status 3 when a call failed below HTTP.
"""
import asyncio
import json
import socket
import sys

import httpx


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    resolve = set(spec.get("resolve", []))
    real_gai = socket.getaddrinfo

    def gai(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host  # anyio passes IDNA bytes
        return real_gai("127.0.0.1" if name in resolve else host, port, *args, **kwargs)

    socket.getaddrinfo = gai

    async def one(client, c):
        body = c["body"].encode("utf-8")
        if c.get("stream"):
            parts = []
            async with client.stream("POST", c["url"], headers=c["headers"], content=body) as r:
                async for piece in r.aiter_bytes():
                    parts.append(piece)
            return r, b"".join(parts)
        r = await client.post(c["url"], headers=c["headers"], content=body)
        return r, r.content

    async def run():
        pk = spec.get("prior_knowledge", False)
        async with httpx.AsyncClient(http2=True, http1=not pk, verify=spec["ca"],
                                     timeout=30) as client:
            return await asyncio.gather(*(one(client, c) for c in spec["calls"]))

    out = sys.stdout.buffer
    try:
        results = asyncio.run(run())
    except httpx.TransportError as e:
        out.write(("error: %s: %s\n" % (type(e).__name__, e)).encode())
        sys.exit(3)
    for r, body in results:
        out.write(("== %d %s\n" % (r.status_code, r.http_version)).encode())
        out.write(body + b"\n")


if __name__ == "__main__":
    main()
