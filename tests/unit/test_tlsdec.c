/*
 * test_tlsdec.c - capture/tlsdec.c against fixed vectors: every record of a connection, both
 * directions, with the secrets of its key log, must open to the exact application data, and
 * nothing else may come out (handshake messages, tickets, alerts).
 *
 * The TLS 1.3 AES-128-GCM connection is RFC 8448 section 3 ("Simple 1-RTT Handshake"), byte
 * for byte: its ClientHello, ServerHello and encrypted records, its four traffic secrets, and
 * the 50 octets 00 01 .. 31 each side sends. No RFC publishes TLS 1.3 ChaCha20-Poly1305,
 * AES-256-GCM-SHA384 or any TLS 1.2 AEAD or CBC records; those connections (tlsdec_vectors.h) were
 * sealed by tests/tools/tlsdec_vectors.py with Python's cryptography and a key schedule of its
 * own, independent of tlsdec.c. An AEAD tag covers every byte of key, nonce and record, so a
 * change of one byte in tlsdec's key schedule, nonce or additional data fails these tests.
 *
 * Each connection is run whole (a record per feed), byte by byte, with a direction's records
 * coalesced into one feed, and with its secrets held back until every record is in (what a
 * late key log line does); then with one byte of each sealed record changed, and with one bit
 * of each secret changed, which must make the connection unfollowable rather than give bytes.
 *
 * The crypto is OpenSSL's libcrypto.so.3, opened at run time as the shim does in node (the test
 * binaries do not link libcrypto).
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/tlsdec.h"
#include "tests/unit/check.h"

struct tlsdec_step {
	enum capture_dir dir;
	const char *hex; /* one complete record; NULL ends the list */
};

struct tlsdec_vector {
	const char *name;
	const struct tlsdec_step *steps;
	const char *secret[TLSDEC_SECRET_N]; /* hex; NULL: not in the key log */
	const char *out_hex;                 /* the application data the client sent */
	const char *in_hex;                  /* the application data the server sent */
};

#include "tests/unit/tlsdec_vectors.h"

/* RFC 8448 section 3: "{client} send handshake record" (the ClientHello, 201 octets: 16 03 01
 * 00 c4 and the 196-octet message of "construct a ClientHello"), then each "complete record"
 * in the order the trace sends them. */
static const struct tlsdec_step rfc8448_steps[] = {
	{ CAPTURE_OUT,
	  "16 03 01 00 c4 01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2"
	  "1a 8d 99 12 ec 18 a2 ef 62 83 02 4d ec e7 00 00 06 13 01 13 03 13 02 01"
	  "00 00 91 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00"
	  "0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00"
	  "23 00 00 00 33 00 26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2 3d 8e"
	  "43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c 00 2b 00"
	  "03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06"
	  "04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c"
	  "00 02 40 01" },
	/* {server} send handshake record: the ServerHello (95 octets) */
	{ CAPTURE_IN,
	  "16 03 03 00 5a 02 00 00 56 03 03 a6 af 06 a4 12 18 60 dc 5e 6e 60 24 9c"
	  "d3 4c 95 93 0c 8a c5 cb 14 34 da c1 55 77 2e d3 e2 69 28 00 13 01 00 00"
	  "2e 00 33 00 24 00 1d 00 20 c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6 72"
	  "e1 56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04" },
	/* {server} send handshake record: EncryptedExtensions .. Finished (679 octets) */
	{ CAPTURE_IN,
	  "17 03 03 02 a2 d1 ff 33 4a 56 f5 bf f6 59 4a 07 cc 87 b5 80 23 3f 50 0f"
	  "45 e4 89 e7 f3 3a f3 5e df 78 69 fc f4 0a a4 0a a2 b8 ea 73 f8 48 a7 ca"
	  "07 61 2e f9 f9 45 cb 96 0b 40 68 90 51 23 ea 78 b1 11 b4 29 ba 91 91 cd"
	  "05 d2 a3 89 28 0f 52 61 34 aa dc 7f c7 8c 4b 72 9d f8 28 b5 ec f7 b1 3b"
	  "d9 ae fb 0e 57 f2 71 58 5b 8e a9 bb 35 5c 7c 79 02 07 16 cf b9 b1 18 3e"
	  "f3 ab 20 e3 7d 57 a6 b9 d7 47 76 09 ae e6 e1 22 a4 cf 51 42 73 25 25 0c"
	  "7d 0e 50 92 89 44 4c 9b 3a 64 8f 1d 71 03 5d 2e d6 5b 0e 3c dd 0c ba e8"
	  "bf 2d 0b 22 78 12 cb b3 60 98 72 55 cc 74 41 10 c4 53 ba a4 fc d6 10 92"
	  "8d 80 98 10 e4 b7 ed 1a 8f d9 91 f0 6a a6 24 82 04 79 7e 36 a6 a7 3b 70"
	  "a2 55 9c 09 ea d6 86 94 5b a2 46 ab 66 e5 ed d8 04 4b 4c 6d e3 fc f2 a8"
	  "94 41 ac 66 27 2f d8 fb 33 0e f8 19 05 79 b3 68 45 96 c9 60 bd 59 6e ea"
	  "52 0a 56 a8 d6 50 f5 63 aa d2 74 09 96 0d ca 63 d3 e6 88 61 1e a5 e2 2f"
	  "44 15 cf 95 38 d5 1a 20 0c 27 03 42 72 96 8a 26 4e d6 54 0c 84 83 8d 89"
	  "f7 2c 24 46 1a ad 6d 26 f5 9e ca ba 9a cb bb 31 7b 66 d9 02 f4 f2 92 a3"
	  "6a c1 b6 39 c6 37 ce 34 31 17 b6 59 62 22 45 31 7b 49 ee da 0c 62 58 f1"
	  "00 d7 d9 61 ff b1 38 64 7e 92 ea 33 0f ae ea 6d fa 31 c7 a8 4d c3 bd 7e"
	  "1b 7a 6c 71 78 af 36 87 90 18 e3 f2 52 10 7f 24 3d 24 3d c7 33 9d 56 84"
	  "c8 b0 37 8b f3 02 44 da 8c 87 c8 43 f5 e5 6e b4 c5 e8 28 0a 2b 48 05 2c"
	  "f9 3b 16 49 9a 66 db 7c ca 71 e4 59 94 26 f7 d4 61 e6 6f 99 88 2b d8 9f"
	  "c5 08 00 be cc a6 2d 6c 74 11 6d bd 29 72 fd a1 fa 80 f8 5d f8 81 ed be"
	  "5a 37 66 89 36 b3 35 58 3b 59 91 86 dc 5c 69 18 a3 96 fa 48 a1 81 d6 b6"
	  "fa 4f 9d 62 d5 13 af bb 99 2f 2b 99 2f 67 f8 af e6 7f 76 91 3f a3 88 cb"
	  "56 30 c8 ca 01 e0 c6 5d 11 c6 6a 1e 2a c4 c8 59 77 b7 c7 a6 99 9b bf 10"
	  "dc 35 ae 69 f5 51 56 14 63 6c 0b 9b 68 c1 9e d2 e3 1c 0b 3b 66 76 30 38"
	  "eb ba 42 f3 b3 8e dc 03 99 f3 a9 f2 3f aa 63 97 8c 31 7f c9 fa 66 a7 3f"
	  "60 f0 50 4d e9 3b 5b 84 5e 27 55 92 c1 23 35 ee 34 0b bc 4f dd d5 02 78"
	  "40 16 e4 b3 be 7e f0 4d da 49 f4 b4 40 a3 0c b5 d2 af 93 98 28 fd 4a e3"
	  "79 4e 44 f9 4d f5 a6 31 ed e4 2c 17 19 bf da bf 02 53 fe 51 75 be 89 8e"
	  "75 0e dc 53 37 0d 2b" },
	/* {client} send handshake record: Finished (58 octets) */
	{ CAPTURE_OUT,
	  "17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 a7 1e 21 9c 56 cc 77 b0"
	  "51 7f e9 b9 3c 7a 4b fc 44 d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c"
	  "ae ac ab 68 67 d7 26 c4 05 46" },
	/* {server} send handshake record: NewSessionTicket (227 octets) */
	{ CAPTURE_IN,
	  "17 03 03 00 de 3a 6b 8f 90 41 4a 97 d6 95 9c 34 87 68 0d e5 13 4a 2b 24"
	  "0e 6c ff ac 11 6e 95 d4 1d 6a f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a"
	  "01 59 40 25 2f 55 71 3e 06 1d c1 3e 07 88 91 a3 8e fb cf 57 53 ad 8e f1"
	  "70 ad 3c 73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0"
	  "9c 30 ba 1e 62 97 2a c4 6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13 06 46 15"
	  "13 98 91 d5 e4 c5 b4 06 f1 6e 3f c1 81 a7 7c a4 75 84 00 25 db 2f 0a 77"
	  "f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86 51 9d 86 cb ee ac 87 aa c3"
	  "47 d1 43 f9 60 5d 64 f6 50 db 4d 02 3e 70 e9 52 ca 49 fe 51 37 12 1c 74"
	  "bc 26 97 68 7e 24 87 46 d6 df 35 30 05 f3 bc e1 86 96 12 9c 81 53 55 6b"
	  "3b 6c 67 79 b3 7b f1 59 85 68 4f" },
	/* {client} send application_data record (72 octets) */
	{ CAPTURE_OUT,
	  "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea"
	  "42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b"
	  "62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4" },
	/* {server} send application_data record (72 octets) */
	{ CAPTURE_IN,
	  "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc"
	  "32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8"
	  "fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d" },
	/* {client} send alert record, {server} send alert record: close_notify (24 octets) */
	{ CAPTURE_OUT,
	  "17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3" },
	{ CAPTURE_IN,
	  "17 03 03 00 13 b5 8f d6 71 66 eb f5 99 d2 47 20 cf be 7e fa 7a 88 64 a9" },
	{ CAPTURE_OUT, NULL },
};

/* RFC 8448 section 3: 00 01 .. 31, the payload of both application_data records. */
#define RFC8448_PAYLOAD                                                                  \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"              \
	"202122232425262728292a2b2c2d2e2f3031"

static const struct tlsdec_vector rfc8448 = {
	"rfc8448_tls13_aes_128_gcm_sha256",
	rfc8448_steps,
	{
		/* derive secret "tls13 c hs traffic", "tls13 s hs traffic" (expanded) */
		[TLSDEC_CLIENT_HS] = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f"
				     "3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21",
		[TLSDEC_SERVER_HS] = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4"
				     "e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38",
		/* derive secret "tls13 c ap traffic", "tls13 s ap traffic" (expanded) */
		[TLSDEC_CLIENT_APP] = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52"
				      "87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5",
		[TLSDEC_SERVER_APP] = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32"
				      "82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43",
	},
	RFC8448_PAYLOAD,
	RFC8448_PAYLOAD,
};

#define BYTES_MAX 4096

static struct tlsdec_crypto crypto;

/* Hex digits (spaces allowed) into out; the byte count, or -1 (a bad digit, too long). */
static long unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1, v;

	for (const char *p = hex; *p; p++) {
		if (*p == ' ')
			continue;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else
			return -1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? (long)n : -1;
}

/* One run of a connection: what the key log holds, what came out. */
struct conn_run {
	const struct tlsdec_vector *v;
	int hold;             /* the key log is empty while set */
	int flip_secret;      /* the secret of this kind has its low bit changed (-1: none) */
	uint8_t random[TLSDEC_RANDOM_LEN];
	uint8_t plain[2][BYTES_MAX];
	size_t plain_len[2];
	int plain_calls;
};

static size_t key_fn(void *ctx, const uint8_t random[TLSDEC_RANDOM_LEN], enum tlsdec_secret kind,
		     uint8_t out[TLSDEC_SECRET_MAX])
{
	struct conn_run *r = ctx;
	long n;

	/* The decryptor asks by the ClientHello's random: bytes 11..42 of its record. */
	CHECK(memcmp(random, r->random, TLSDEC_RANDOM_LEN) == 0);
	if (r->hold || r->v->secret[kind] == NULL)
		return 0;
	n = unhex(r->v->secret[kind], out, TLSDEC_SECRET_MAX);
	CHECK(n == 32 || n == 48);
	if (n < 0)
		return 0;
	if ((int)kind == r->flip_secret)
		out[n - 1] ^= 1;
	return (size_t)n;
}

static void plain_fn(void *ctx, enum capture_dir dir, const void *data, size_t len)
{
	struct conn_run *r = ctx;

	r->plain_calls++;
	CHECK(len > 0);
	CHECK(r->plain_len[dir] + len <= BYTES_MAX);
	if (len == 0 || r->plain_len[dir] + len > BYTES_MAX)
		return;
	memcpy(r->plain[dir] + r->plain_len[dir], data, len);
	r->plain_len[dir] += len;
}

static void run_init(struct conn_run *r, const struct tlsdec_vector *v)
{
	uint8_t ch[BYTES_MAX];

	memset(r, 0, sizeof(*r));
	r->v = v;
	r->flip_secret = -1;
	CHECK(unhex(v->steps[0].hex, ch, sizeof ch) > 11 + TLSDEC_RANDOM_LEN);
	memcpy(r->random, ch + 11, TLSDEC_RANDOM_LEN);
}

/* The application data came out, exactly, once each way. */
static void check_plain(const struct conn_run *r, const char *what)
{
	uint8_t want[BYTES_MAX];
	long n;

	for (int dir = 0; dir < 2; dir++) {
		n = unhex(dir == CAPTURE_OUT ? r->v->out_hex : r->v->in_hex, want, sizeof want);
		if (n < 0 || r->plain_len[dir] != (size_t)n ||
		    memcmp(r->plain[dir], want, (size_t)n) != 0) {
			fprintf(stderr, "%s, %s: %s data: %zu bytes, want %ld\n", r->v->name, what,
				dir == CAPTURE_OUT ? "sent" : "received", r->plain_len[dir], n);
			check_case_failed = 1;
		}
	}
}

/* How the records reach the decryptor. */
enum feeding { WHOLE, BYTEWISE, COALESCED };

/*
 * Feeds the connection's records (one changed at byte tamper_at of the body of record
 * tamper_step, when tamper_step >= 0). Returns 0 when every feed returned 0, else -1 (the first failing feed
 * ends the run).
 */
static int run_feed(struct conn_run *r, struct tlsdec *d, enum feeding how, int tamper_step,
		    size_t tamper_at)
{
	static uint8_t batch[2][16 * BYTES_MAX];
	size_t batch_len[2] = { 0, 0 };
	uint8_t rec[BYTES_MAX];
	long n;

	for (int i = 0; r->v->steps[i].hex != NULL; i++) {
		enum capture_dir dir = r->v->steps[i].dir;

		n = unhex(r->v->steps[i].hex, rec, sizeof rec);
		CHECK(n > 5);
		if (n <= 5)
			return -1;
		if (i == tamper_step)
			rec[5 + tamper_at % (size_t)(n - 5)] ^= 0x80; /* past the header */
		if (how == COALESCED) {
			/* A direction's records since the other last spoke, in one piece. */
			if (batch_len[!dir] > 0) {
				if (tlsdec_feed(d, !dir, batch[!dir], batch_len[!dir]) != 0)
					return -1;
				batch_len[!dir] = 0;
			}
			memcpy(batch[dir] + batch_len[dir], rec, (size_t)n);
			batch_len[dir] += (size_t)n;
			continue;
		}
		for (long off = 0; off < n; off += how == BYTEWISE ? 1 : n)
			if (tlsdec_feed(d, dir, rec + off, how == BYTEWISE ? 1 : (size_t)n) != 0)
				return -1;
	}
	for (int dir = 0; dir < 2; dir++)
		if (batch_len[dir] > 0 && tlsdec_feed(d, dir, batch[dir], batch_len[dir]) != 0)
			return -1;
	return 0;
}

static void vector_opens(const struct tlsdec_vector *v, enum feeding how, const char *what)
{
	struct conn_run r;
	struct tlsdec *d;

	run_init(&r, v);
	d = tlsdec_new(&crypto, key_fn, plain_fn, &r);
	CHECK(d != NULL);
	if (d == NULL)
		return;
	CHECK(tlsdec_random(d) == NULL);
	if (run_feed(&r, d, how, -1, 0) != 0) {
		fprintf(stderr, "%s, %s: a feed failed\n", v->name, what);
		check_case_failed = 1;
	}
	CHECK(tlsdec_random(d) != NULL &&
	      memcmp(tlsdec_random(d), r.random, TLSDEC_RANDOM_LEN) == 0);
	CHECK_INT(tlsdec_waiting(d), 0);
	check_plain(&r, what);
	tlsdec_free(d);
}

/* Every record is in before the key log has a line: nothing comes out, the records wait; the
 * lines come and one retry opens them all, in order. */
static void vector_late_secrets(const struct tlsdec_vector *v)
{
	struct conn_run r;
	struct tlsdec *d;

	run_init(&r, v);
	r.hold = 1;
	d = tlsdec_new(&crypto, key_fn, plain_fn, &r);
	CHECK(d != NULL);
	if (d == NULL)
		return;
	CHECK_INT(run_feed(&r, d, WHOLE, -1, 0), 0);
	CHECK_INT(tlsdec_waiting(d), 1);
	CHECK_INT(r.plain_calls, 0);
	CHECK_INT(tlsdec_retry(d), 0);
	CHECK_INT(tlsdec_waiting(d), 1);
	r.hold = 0;
	CHECK_INT(tlsdec_retry(d), 0);
	CHECK_INT(tlsdec_waiting(d), 0);
	check_plain(&r, "late secrets");
	tlsdec_free(d);
}

/* Is step i a sealed record (opened with a key rather than read in the clear)? */
static int step_sealed(const struct tlsdec_vector *v, int i)
{
	int ccs = 0;

	for (int j = 0; j < i; j++)
		if (v->steps[j].dir == v->steps[i].dir && strncmp(v->steps[j].hex, "14", 2) == 0)
			ccs = 1;
	return strncmp(v->steps[i].hex, "17", 2) == 0 ||
	       (ccs && strncmp(v->steps[i].hex, "14", 2) != 0);
}

/* One changed byte of any sealed record (its header, nonce, ciphertext or tag), or one changed
 * bit of any secret: the connection cannot be followed, and what came out before is exact. */
static void vector_tampered(const struct tlsdec_vector *v)
{
	struct conn_run r;
	struct tlsdec *d;
	int sealed = 0;

	for (int i = 0; v->steps[i].hex != NULL; i++) {
		if (!step_sealed(v, i))
			continue;
		sealed++;
		for (size_t at = 0; at < 64; at += 21) {
			run_init(&r, v);
			d = tlsdec_new(&crypto, key_fn, plain_fn, &r);
			CHECK(d != NULL);
			if (d == NULL)
				return;
			if (run_feed(&r, d, WHOLE, i, at) == 0) {
				fprintf(stderr, "%s: record %d with byte %zu changed was accepted\n",
					v->name, i, at);
				check_case_failed = 1;
			}
			tlsdec_free(d);
		}
	}
	CHECK(sealed >= 6);
	for (int k = 0; k < TLSDEC_SECRET_N; k++) {
		if (v->secret[k] == NULL)
			continue;
		run_init(&r, v);
		r.flip_secret = k;
		d = tlsdec_new(&crypto, key_fn, plain_fn, &r);
		CHECK(d != NULL);
		if (d == NULL)
			return;
		if (run_feed(&r, d, WHOLE, -1, 0) == 0) {
			fprintf(stderr, "%s: secret %d with a bit changed was accepted\n", v->name, k);
			check_case_failed = 1;
		}
		tlsdec_free(d);
	}
}

static void each_vector(void (*fn)(const struct tlsdec_vector *v))
{
	fn(&rfc8448);
	for (size_t i = 0; i < sizeof generated_vectors / sizeof generated_vectors[0]; i++)
		fn(&generated_vectors[i]);
}

static void opens_whole(const struct tlsdec_vector *v)
{
	vector_opens(v, WHOLE, "a record per feed");
}

static void opens_bytewise(const struct tlsdec_vector *v)
{
	vector_opens(v, BYTEWISE, "a byte per feed");
}

static void opens_coalesced(const struct tlsdec_vector *v)
{
	vector_opens(v, COALESCED, "a direction's records per feed");
}

static void test_rfc8448_aes_128_gcm(void)
{
	opens_whole(&rfc8448);
}

static void test_all_records_whole(void)
{
	each_vector(opens_whole);
}

static void test_all_records_bytewise(void)
{
	each_vector(opens_bytewise);
}

static void test_all_records_coalesced(void)
{
	each_vector(opens_coalesced);
}

static void test_secrets_arrive_late(void)
{
	each_vector(vector_late_secrets);
}

static void test_changed_byte_or_secret_refused(void)
{
	each_vector(vector_tampered);
}

/* Runs the first steps of a vector with step i replaced by hex; the result of the last feed. */
static int feed_replaced(const struct tlsdec_vector *v, int i, const char *hex)
{
	struct conn_run r;
	struct tlsdec *d;
	uint8_t rec[BYTES_MAX];
	long n;
	int ret = 0;

	run_init(&r, v);
	d = tlsdec_new(&crypto, key_fn, plain_fn, &r);
	CHECK(d != NULL);
	if (d == NULL)
		return 0;
	for (int j = 0; j <= i && ret == 0; j++) {
		n = unhex(j == i ? hex : v->steps[j].hex, rec, sizeof rec);
		CHECK(n > 0);
		ret = tlsdec_feed(d, v->steps[j].dir, rec, n > 0 ? (size_t)n : 0);
	}
	if (ret != 0)
		CHECK_INT(tlsdec_feed(d, CAPTURE_IN, rec, 5), -1); /* it stays refused */
	tlsdec_free(d);
	CHECK_INT(r.plain_calls, 0);
	return ret;
}

/* What the decryptor does not follow, said at once rather than guessed at. */
static void test_refuses_what_it_cannot_follow(void)
{
	/* Not TLS: an HTTP request as the first bytes. */
	CHECK_INT(feed_replaced(&rfc8448, 0, "474554202f20485454502f312e310d0a0d0a"), -1);
	/* A suite it does not read (TLS_RSA_WITH_3DES_EDE_CBC_SHA, 000a) in the ServerHello. */
	CHECK_INT(feed_replaced(&rfc8448, 1,
				"160303002a0200002603030102030405060708090a0b0c0d0e0f1011121314151617"
				"18191a1b1c1d1e1f2000000a00"),
		  -1);
	/* A TLS 1.3 suite with a TLS 1.2 ServerHello (no supported_versions). */
	CHECK_INT(feed_replaced(&rfc8448, 1,
				"160303002a0200002603030102030405060708090a0b0c0d0e0f1011121314151617"
				"18191a1b1c1d1e1f20001301 00"),
		  -1);
	/* Application data before any ServerHello. */
	CHECK_INT(feed_replaced(&rfc8448, 1, "1703030005 0102030405"), -1);
	/* A record longer than TLS allows. */
	CHECK_INT(feed_replaced(&rfc8448, 1, "1603034801"), -1);
}

static void test_crypto_resolve(void)
{
	struct tlsdec_crypto cr;
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);

	/* A library without OpenSSL's functions: refused, not half filled in and used. */
	CHECK(libc != NULL);
	CHECK_INT(tlsdec_crypto_resolve(&cr, libc), -1);
	if (libc != NULL)
		dlclose(libc);
}

int main(void)
{
	void *lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);

	if (lib == NULL || tlsdec_crypto_resolve(&crypto, lib) != 0) {
		fprintf(stderr, "test_tlsdec: cannot load OpenSSL's libcrypto.so.3: %s\n",
			dlerror());
		printf("0 passed, 1 failed\n");
		return 1;
	}
	RUN(test_rfc8448_aes_128_gcm);
	RUN(test_all_records_whole);
	RUN(test_all_records_bytewise);
	RUN(test_all_records_coalesced);
	RUN(test_secrets_arrive_late);
	RUN(test_changed_byte_or_secret_refused);
	RUN(test_refuses_what_it_cannot_follow);
	RUN(test_crypto_resolve);
	dlclose(lib);
	CHECK_DONE();
}
