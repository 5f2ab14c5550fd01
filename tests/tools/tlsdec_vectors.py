#!/usr/bin/python3
"""tlsdec_vectors.py - writes tests/unit/tlsdec_vectors.h, the TLS records test_tlsdec opens
that no RFC publishes: TLS 1.3 with ChaCha20-Poly1305 (a KeyUpdate, padding, the compatibility
ChangeCipherSpec) and AES-256-GCM-SHA384, TLS 1.2 with AES-128-GCM, AES-256-GCM-SHA384 and
ChaCha20-Poly1305, and TLS 1.2 AES-CBC with HMAC-SHA1 (MAC-then-encrypt), HMAC-SHA256 and
HMAC-SHA384 (encrypt-then-MAC).

    /usr/bin/python3 tests/tools/tlsdec_vectors.py > tests/unit/tlsdec_vectors.h

Independent of capture/tlsdec.c: the key schedule is written here from RFC 8446 7.1-7.3 (HKDF
from Python's hmac) and RFC 5246 5/6.3 (the PRF), the AEADs are Debian's python3-cryptography,
nonces and additional data follow RFC 8446 5.2-5.3, RFC 5288 3 and RFC 7905 2, CBC records
RFC 5246 6.2.3.2 and RFC 7366 3. The inputs are
fixed (the ClientHello, ServerHello and traffic secrets of RFC 8448 section 3 where they fit),
so the output is the same on every run; the header is committed, and this script says how it
was made.
"""
import hashlib
import hmac
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305


def h(s):
    return bytes.fromhex(s.replace(" ", ""))


# RFC 8448 section 3: the ClientHello handshake message (196 octets) and ServerHello record.
RFC8448_CH = h(
    "01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2"
    "1a 8d 99 12 ec 18 a2 ef 62 83 02 4d ec e7 00 00 06 13 01 13 03 13 02 01"
    "00 00 91 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00"
    "0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00"
    "23 00 00 00 33 00 26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2 3d 8e"
    "43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c 00 2b 00"
    "03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06"
    "04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c"
    "00 02 40 01")
RFC8448_SH_REC = h(
    "16 03 03 00 5a 02 00 00 56 03 03 a6 af 06 a4 12 18 60 dc 5e 6e 60 24 9c"
    "d3 4c 95 93 0c 8a c5 cb 14 34 da c1 55 77 2e d3 e2 69 28 00 13 01 00 00"
    "2e 00 33 00 24 00 1d 00 20 c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6 72"
    "e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04")
RFC8448_C_HS = h("b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f"
                 " 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21")
RFC8448_S_HS = h("b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4"
                 " e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38")
RFC8448_C_AP = h("9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52"
                 " 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5")
RFC8448_S_AP = h("a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32"
                 " 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43")

REQ1 = b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Length: 2\r\n\r\n{}"
REQ2 = b"GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n"
RESP1 = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
RESP2 = b'{"id":"x1"}'


def record(rtype, body, version=b"\x03\x03"):
    return bytes([rtype]) + version + len(body).to_bytes(2, "big") + body


def hs(msg_type, body):
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


# ---- TLS 1.3 -----------------------------------------------------------------------------

def expand_label(md, secret, label, length):
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), md).digest()
        out += t
        i += 1
    return out[:length]


class Sender13:
    """One direction of a TLS 1.3 connection: seals inner plaintexts (RFC 8446 5.2)."""

    def __init__(self, aead, md, key_len, secret):
        self.aead, self.md, self.key_len = aead, md, key_len
        self.set_secret(secret)

    def set_secret(self, secret):
        self.secret = secret
        self.key = expand_label(self.md, secret, b"key", self.key_len)
        self.iv = expand_label(self.md, secret, b"iv", 12)
        self.seq = 0

    def key_update(self):
        self.set_secret(expand_label(self.md, self.secret, b"traffic upd",
                                     self.md().digest_size))

    def seal(self, inner_type, content, pad=0):
        inner = content + bytes([inner_type]) + bytes(pad)
        nonce = bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(12, "big")))
        header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
        self.seq += 1
        return header + self.aead(self.key).encrypt(nonce, inner, header)


def tls13_vector(name, suite, aead, md, key_len, secrets, key_update):
    c_hs, s_hs, c_ap, s_ap = secrets
    sh = bytearray(RFC8448_SH_REC)
    assert sh[44:46] == b"\x13\x01"
    sh[44:46] = suite.to_bytes(2, "big")
    ccs = record(20, b"\x01")
    cw = Sender13(aead, md, key_len, c_hs)
    sw = Sender13(aead, md, key_len, s_hs)
    steps = [("OUT", record(22, RFC8448_CH, b"\x03\x01")), ("IN", bytes(sh)), ("IN", ccs),
             ("IN", sw.seal(22, hs(8, b"\x00\x00") + hs(20, bytes(md().digest_size)))),
             ("OUT", ccs), ("OUT", cw.seal(22, hs(20, bytes(md().digest_size))))]
    cw.set_secret(c_ap)
    sw.set_secret(s_ap)
    steps.append(("OUT", cw.seal(23, REQ1, pad=5)))
    steps.append(("IN", sw.seal(22, hs(4, bytes(12)))))  # NewSessionTicket
    steps.append(("IN", sw.seal(23, RESP1)))
    if key_update:
        steps.append(("OUT", cw.seal(22, hs(24, b"\x00"))))  # KeyUpdate, update_not_requested
        cw.key_update()
    steps.append(("OUT", cw.seal(23, REQ2)))
    steps.append(("IN", sw.seal(23, RESP2, pad=1)))
    steps.append(("IN", sw.seal(21, b"\x01\x00")))  # close_notify
    return dict(name=name, secrets={"CLIENT_HS": c_hs, "SERVER_HS": s_hs, "CLIENT_APP": c_ap,
                                    "SERVER_APP": s_ap},
                steps=steps, out=REQ1 + REQ2, inn=RESP1 + RESP2)


# ---- TLS 1.2 -----------------------------------------------------------------------------

def prf12(md, secret, label, seed, length):
    seed = label + seed
    a, out = seed, b""
    while len(out) < length:
        a = hmac.new(secret, a, md).digest()
        out += hmac.new(secret, a + seed, md).digest()
    return out[:length]


class Sender12:
    """One direction of TLS 1.2 after its ChangeCipherSpec: RFC 5288 (GCM), RFC 7905 (ChaCha)."""

    def __init__(self, aead, key, iv, explicit):
        self.aead, self.key, self.iv, self.explicit, self.seq = aead, key, iv, explicit, 0

    def seal(self, rtype, content):
        seq = self.seq.to_bytes(8, "big")
        aad = seq + bytes([rtype]) + b"\x03\x03" + len(content).to_bytes(2, "big")
        if self.explicit:
            explicit = (0x1000 + self.seq * 7).to_bytes(8, "big")  # any value: sent in clear
            nonce = self.iv + explicit
        else:
            explicit = b""
            nonce = bytes(a ^ b for a, b in zip(self.iv, bytes(4) + seq))
        self.seq += 1
        return record(rtype, explicit + self.aead(self.key).encrypt(nonce, content, aad))


class SenderCbc:
    """One direction of a TLS 1.2 AES-CBC suite after its ChangeCipherSpec (RFC 5246 6.2.3.2;
    etm: RFC 7366)."""

    def __init__(self, mac_md, mac_key, key, etm):
        self.mac_md, self.mac_key, self.key, self.etm, self.seq = mac_md, mac_key, key, etm, 0

    def mac(self, rtype, data):
        head = self.seq.to_bytes(8, "big") + bytes([rtype]) + b"\x03\x03"
        return hmac.new(self.mac_key, head + len(data).to_bytes(2, "big") + data,
                        self.mac_md).digest()

    def seal(self, rtype, content):
        iv = hashlib.sha256(b"iv %d %d" % (self.seq, rtype) + self.key).digest()[:16]
        plain = content if self.etm else content + self.mac(rtype, content)
        pad = 16 - (len(plain) + 1) % 16 + 16 * (self.seq % 2)  # more than needed, at times
        plain += bytes([pad]) * (pad + 1)
        enc = Cipher(algorithms.AES(self.key), modes.CBC(iv)).encryptor()
        body = iv + enc.update(plain) + enc.finalize()
        if self.etm:
            body += self.mac(rtype, body)
        self.seq += 1
        return record(rtype, body)


def tls12_vector(name, suite, aead, md, key_len, chacha, mac_md=None, etm=False):
    """aead None: an AES-CBC suite with HMAC mac_md."""
    client_random = RFC8448_CH[6:38]
    server_random = bytes(range(0x70, 0x90))
    master = hashlib.sha384(("tokshim tls12 master " + name).encode()).digest()
    mac_len = mac_md().digest_size if mac_md else 0
    iv_len = 0 if mac_md else 12 if chacha else 4
    block = prf12(md, master, b"key expansion", server_random + client_random,
                  2 * mac_len + 2 * key_len + 2 * iv_len)
    cmac, smac, block = block[:mac_len], block[mac_len:2 * mac_len], block[2 * mac_len:]
    ck, sk = block[:key_len], block[key_len:2 * key_len]
    civ, siv = block[2 * key_len:2 * key_len + iv_len], block[2 * key_len + iv_len:]
    ext = b"\xff\x01\x00\x01\x00"  # renegotiation_info, empty
    if etm:
        ext += b"\x00\x16\x00\x00"  # encrypt_then_mac
    sh = hs(2, b"\x03\x03" + server_random + b"\x00" + suite.to_bytes(2, "big") + b"\x00" +
            len(ext).to_bytes(2, "big") + ext)
    if mac_md:
        cw = SenderCbc(mac_md, cmac, ck, etm)
        sw = SenderCbc(mac_md, smac, sk, etm)
    else:
        cw = Sender12(aead, ck, civ, not chacha)
        sw = Sender12(aead, sk, siv, not chacha)
    ccs = record(20, b"\x01")
    steps = [("OUT", record(22, RFC8448_CH, b"\x03\x01")), ("IN", record(22, sh)),
             ("IN", record(22, hs(11, bytes(3)) + hs(12, bytes(4)) + hs(14, b""))),
             ("OUT", record(22, hs(16, b"\x01\x00"))), ("OUT", ccs),
             ("OUT", cw.seal(22, hs(20, bytes(12)))),
             ("IN", ccs), ("IN", sw.seal(22, hs(20, bytes(12)))),
             ("OUT", cw.seal(23, REQ1)), ("IN", sw.seal(23, RESP1)), ("IN", sw.seal(23, RESP2)),
             ("OUT", cw.seal(23, REQ2)), ("OUT", cw.seal(21, b"\x01\x00"))]
    return dict(name=name, secrets={"MASTER": master}, steps=steps, out=REQ1 + REQ2,
                inn=RESP1 + RESP2)


def c_hex(b, indent):
    """b as a C string of hex digits, 32 bytes a line."""
    x = b.hex()
    return "\n".join(indent + '"' + x[i:i + 64] + '"' for i in range(0, len(x), 64))


def main():
    v = [
        tls13_vector("tls13_chacha20_poly1305_sha256", 0x1303, ChaCha20Poly1305, hashlib.sha256,
                     32, (RFC8448_C_HS, RFC8448_S_HS, RFC8448_C_AP, RFC8448_S_AP), True),
        tls13_vector("tls13_aes_256_gcm_sha384", 0x1302, AESGCM, hashlib.sha384, 32,
                     tuple(hashlib.sha384(s).digest() for s in
                           (b"c hs", b"s hs", b"c ap", b"s ap")), False),
        tls12_vector("tls12_ecdhe_rsa_aes_128_gcm_sha256", 0xC02F, AESGCM, hashlib.sha256, 16,
                     False),
        tls12_vector("tls12_ecdhe_ecdsa_aes_256_gcm_sha384", 0xC02C, AESGCM, hashlib.sha384, 32,
                     False),
        tls12_vector("tls12_ecdhe_rsa_chacha20_poly1305", 0xCCA8, ChaCha20Poly1305,
                     hashlib.sha256, 32, True),
        tls12_vector("tls12_ecdhe_rsa_aes_256_cbc_sha", 0xC014, None, hashlib.sha256, 32, False,
                     hashlib.sha1),
        tls12_vector("tls12_ecdhe_ecdsa_aes_128_cbc_sha256_etm", 0xC023, None, hashlib.sha256,
                     16, False, hashlib.sha256, etm=True),
        tls12_vector("tls12_ecdhe_ecdsa_aes_256_cbc_sha384_etm", 0xC024, None, hashlib.sha384,
                     32, False, hashlib.sha384, etm=True),
    ]
    w = sys.stdout.write
    w("/* tlsdec_vectors.h - generated by tests/tools/tlsdec_vectors.py (see there how); do not\n"
      " * edit. Connections as struct tlsdec_vector (test_tlsdec.c): records in order, in hex.\n"
      " */\n")
    for vec in v:
        w("\nstatic const struct tlsdec_step %s_steps[] = {\n" % vec["name"])
        for d, rec in vec["steps"]:
            w("\t{ CAPTURE_%s,\n%s },\n" % (d, c_hex(rec, "\t  ")))
        w("\t{ CAPTURE_OUT, NULL },\n};\n")
    w("\nstatic const struct tlsdec_vector generated_vectors[] = {\n")
    for vec in v:
        w("\t{\n\t\t\"%s\",\n\t\t%s_steps,\n\t\t{\n" % (vec["name"], vec["name"]))
        for kind, s in vec["secrets"].items():
            w("\t\t\t[TLSDEC_%s] =\n%s,\n" % (kind, c_hex(s, "\t\t\t\t")))
        w("\t\t},\n%s,\n%s,\n\t},\n" % (c_hex(vec["out"], "\t\t"), c_hex(vec["inn"], "\t\t")))
    w("};\n")


if __name__ == "__main__":
    main()
