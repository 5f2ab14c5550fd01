#!/usr/bin/python3
"""h2_server.py - provider_server.py's answers over HTTP/2 (Debian's python3-h2).

    /usr/bin/python3 h2_server.py --cert server.pem --key server.key [--ports-file F] [--log F]

Listens on 127.0.0.1 twice: TLS with ALPN "h2" only, and plain HTTP/2 (h2c), with prior
knowledge or by an HTTP/1.1 request with "Upgrade: h2c" (answered 101; it becomes stream 1). Every stream is answered by provider_server.respond(), the same bytes provider_server
sends over HTTP/1.1: gzip when the request accepts it (streams compressed with one zlib stream
and a sync flush per event), SSE and NDJSON events one DATA frame each with the request's
X-Test-Event-Delay-Ms between them. Streams are answered concurrently, each in its own thread,
so several requests on one connection are in flight at once. The ports line and --log entries
have provider_server's shape (version "HTTP/2", plus "stream_id").
"""
import base64
import hashlib
import socket
import ssl
import sys
import threading
import time
import zlib

import h2.config
import h2.connection
import h2.events

import provider_server as ps


class Conn:
    """One HTTP/2 connection: a reader thread, a thread per answered stream."""

    def __init__(self, server, sock, cid, tls):
        self.server, self.sock, self.cid, self.tls = server, sock, cid, tls
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                          header_encoding=None))
        self.lock = threading.Condition()
        self.reqs = {}  # stream id -> [headers, body]
        self.pending = b""  # bytes read past an upgraded request: the client's preface

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def upgrade(self):
        """h2c by Upgrade: the HTTP/1.1 request asking for it is answered 101 and becomes
        stream 1. False when the client speaks HTTP/2 at once (prior knowledge)."""
        if self.sock.recv(4, socket.MSG_PEEK | socket.MSG_WAITALL) == b"PRI ":
            return False
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = self.sock.recv(65536)
            if not data:
                raise OSError("closed before its request")
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        hdrs = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
        hmap = {k.lower(): v for k, v in hdrs}
        if "h2c" not in hmap.get("upgrade", "").lower():
            raise OSError("HTTP/1.1 without Upgrade: h2c")
        n = int(hmap.get("content-length", "0"))
        while len(rest) < n:
            data = self.sock.recv(65536)
            if not data:
                raise OSError("closed inside its request body")
            rest += data
        body, self.pending = rest[:n], rest[n:]
        self.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                          b"Upgrade: h2c\r\n\r\n")
        self.h2.initiate_upgrade_connection(hmap.get("http2-settings", ""))
        hop = ("connection", "upgrade", "http2-settings", "host")
        hdrs = ([(":method", method), (":path", target), (":scheme", "http"),
                 (":authority", hmap.get("host", ""))] +
                [(k.lower(), v) for k, v in hdrs if k.lower() not in hop])
        threading.Thread(target=self.answer, args=(1, hdrs, body), daemon=True).start()
        return True

    def run(self):
        with self.lock:
            if self.tls or not self.upgrade():
                self.h2.initiate_connection()
            self.flush()
        while True:
            data, self.pending = self.pending or self.sock.recv(65536), b""
            if not data:
                break
            with self.lock:
                events = self.h2.receive_data(data)
                for ev in events:
                    self.event(ev)
                self.flush()
                self.lock.notify_all()

    def event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            self.reqs[ev.stream_id] = [[(k.decode(), v.decode()) for k, v in ev.headers], b""]
        elif isinstance(ev, h2.events.DataReceived):
            self.reqs[ev.stream_id][1] += ev.data
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            hdrs, body = self.reqs.pop(ev.stream_id)
            threading.Thread(target=self.answer, args=(ev.stream_id, hdrs, body),
                             daemon=True).start()

    def send_data(self, sid, data, end):
        with self.lock:
            while data:
                window = min(self.h2.local_flow_control_window(sid),
                             self.h2.max_outbound_frame_size)
                if window <= 0:
                    self.lock.wait(1)
                    continue
                self.h2.send_data(sid, data[:window])
                data = data[window:]
                self.flush()
            if end:
                self.h2.end_stream(sid)
                self.flush()

    def answer(self, sid, hdrs, body):
        pseudo = {k: v for k, v in hdrs if k.startswith(":")}
        plain = [(k, v) for k, v in hdrs if not k.startswith(":")]
        req = ps.Request(pseudo.get(":method", ""), pseudo.get(":path", ""), "HTTP/2", plain,
                         body)
        resp = ps.respond(req)
        gz, _ = ps.plan(req, resp)
        self.server._log({"conn": self.cid, "stream_id": sid, "tls": self.tls,
                         "method": req.method, "target": req.target, "version": "HTTP/2",
                         "headers": [[k, v] for k, v in hdrs],
                         "body_b64": base64.b64encode(body).decode(), "body_len": len(body),
                         "body_sha256": hashlib.sha256(body).hexdigest(),
                         "status": resp.status, "stream": resp.stream,
                         "encoding": "gzip" if gz else "identity"})
        head = [(":status", str(resp.status))] + [(k.lower(), v) for k, v in resp.headers]
        if gz:
            head.append(("content-encoding", "gzip"))
        co = zlib.compressobj(6, zlib.DEFLATED, 31) if gz else None
        with self.lock:
            self.h2.send_headers(sid, head)
            self.flush()
        if not resp.stream:
            data = resp.parts[0]
            self.send_data(sid, co.compress(data) + co.flush() if co else data, True)
            return
        delay = req.int_header("X-Test-Event-Delay-Ms", 2) / 1000.0
        for i, ev in enumerate(resp.parts):
            self.send_data(sid, co.compress(ev) + co.flush(zlib.Z_SYNC_FLUSH) if co else ev, False)
            if delay and i + 1 < len(resp.parts):
                time.sleep(delay)
        self.send_data(sid, co.flush() if co else b"", True)


class Server(ps.Server):
    """provider_server's listeners and log; each connection speaks HTTP/2."""

    def __init__(self, cert, key, log_path=None):
        super().__init__(cert, key, log_path)
        self.ctx.set_alpn_protocols(["h2"])

    def _handle(self, kind, sock, cid, port):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if kind == "tls":
                sock = self.ctx.wrap_socket(sock, server_side=True)
            Conn(self, sock, cid, kind == "tls").run()
        except (OSError, ssl.SSLError):
            pass
        except Exception as e:  # a server bug: say so on stderr, drop the connection
            sys.stderr.write("h2_server: %s: %r\n" % (type(e).__name__, e))
        finally:
            sock.close()


if __name__ == "__main__":
    ps.main(Server)
