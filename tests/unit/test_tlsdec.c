/*
 * test_tlsdec.c - capture/tlsdec.c against fixed vectors: every record of a connection, both
 * directions, with the secrets of its key log, must open to the exact application data, and
 * nothing else may come out (handshake messages, tickets, alerts).
 *
 * The connections are in tlsdec_vectors.h. The first, TLS 1.3 AES-128-GCM, is RFC 8448
 * section 3 ("Simple 1-RTT Handshake") byte for byte: its ClientHello, ServerHello and
 * encrypted records, its four traffic secrets, and the 50 octets 00 01 .. 31 each side sends.
 * No RFC publishes TLS 1.3 ChaCha20-Poly1305, AES-256-GCM-SHA384 or any TLS 1.2 AEAD or CBC
 * records; those connections were sealed by tests/tools/tlsdec_vectors.py with Python's
 * cryptography and a key schedule of its own, independent of tlsdec.c (and checked first
 * against RFC 8448's records). An AEAD tag covers every byte of key, nonce and record, so a
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
 * tamper_step, when tamper_step >= 0). Returns 0 when every feed returned 0, else -1 (the
 * first failing feed ends the run).
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
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
		fn(&vectors[i]);
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
	CHECK_STR(vectors[0].name, "rfc8448");
	opens_whole(&vectors[0]);
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
	CHECK_INT(feed_replaced(&vectors[0], 0, "474554202f20485454502f312e310d0a0d0a"), -1);
	/* A suite it does not read (TLS_RSA_WITH_3DES_EDE_CBC_SHA, 000a) in the ServerHello. */
	CHECK_INT(feed_replaced(&vectors[0], 1,
				"160303002a0200002603030102030405060708090a0b0c0d0e0f1011121314151617"
				"18191a1b1c1d1e1f2000000a00"),
		  -1);
	/* A TLS 1.3 suite with a TLS 1.2 ServerHello (no supported_versions). */
	CHECK_INT(feed_replaced(&vectors[0], 1,
				"160303002a0200002603030102030405060708090a0b0c0d0e0f1011121314151617"
				"18191a1b1c1d1e1f20001301 00"),
		  -1);
	/* Application data before any ServerHello. */
	CHECK_INT(feed_replaced(&vectors[0], 1, "1703030005 0102030405"), -1);
	/* A record longer than TLS allows. */
	CHECK_INT(feed_replaced(&vectors[0], 1, "1603034801"), -1);
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
