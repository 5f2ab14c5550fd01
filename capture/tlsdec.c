/*
 * tlsdec.c - TLS records in, application data out; see tlsdec.h.
 *
 * Each direction keeps the bytes it could not open yet (an incomplete record, or records
 * whose secrets the key log does not hold yet) and opens them in order once it can. Bytes are
 * copied only when they must wait: a direction with nothing pending is read in place.
 *
 * Key schedule (RFC 8446 7.1-7.3, RFC 5246 5-6.3, RFC 5288, RFC 7905):
 *   TLS 1.3  key = HKDF-Expand-Label(secret, "key", "", key_len)
 *            iv  = HKDF-Expand-Label(secret, "iv", "", 12), nonce = iv ^ seq
 *            next secret on KeyUpdate = HKDF-Expand-Label(secret, "traffic upd", "", hash_len)
 *            AAD = the record header; the plaintext ends with its real type and zero padding
 *   TLS 1.2  key block = PRF(master, "key expansion", server_random + client_random):
 *            client MAC key, server MAC key (CBC suites only), client key, server key,
 *            client IV, server IV (AEAD suites only)
 *            GCM nonce = 4-byte salt + the record's 8-byte explicit nonce;
 *            ChaCha20-Poly1305 nonce = 12-byte IV ^ seq
 *            AAD = seq, type, version, plaintext length
 *            CBC (RFC 5246 6.2.3.2): IV(16) + CBC(plaintext + MAC + padding), the MAC an HMAC
 *            of seq, type, version, plaintext length, plaintext; with encrypt-then-MAC
 *            (RFC 7366): IV + CBC(plaintext + padding) + MAC, the MAC over seq, type,
 *            version, length of IV and ciphertext, IV and ciphertext
 */
#include "capture/tlsdec.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#define REC_HDR 5
#define REC_MAX (16384 + 2048) /* the largest ciphertext TLS 1.2 allows (1.3: 16384 + 256) */
#define TAG_LEN 16
#define NONCE_LEN 12
#define KEY_MAX 32
#define HASH_MAX 48
#define BLOCK 16      /* the AES block, and the CBC record's explicit IV */
#define MAC_HDR 13    /* seq, type, version, length: what a TLS 1.2 MAC covers first */
#define EVP_CTRL_AEAD_SET_TAG 0x11

enum { REC_CCS = 20, REC_ALERT = 21, REC_HANDSHAKE = 22, REC_DATA = 23 };
enum { HS_CLIENT_HELLO = 1, HS_SERVER_HELLO = 2 };
enum { CIPHER_AES128, CIPHER_AES256, CIPHER_CHACHA };
enum { VERSION_UNKNOWN, VERSION_12, VERSION_13 };
/* A 1.3 direction's keys come from its handshake secret, then its application secret. */
enum { STAGE_NONE, STAGE_HANDSHAKE, STAGE_APP };

/*
 * The cipher suites whose records this reads: the AEAD ones, and TLS 1.2's AES-CBC with an
 * HMAC (mac: its length; 0 for an AEAD), which OpenSSL's default list (and so Node's) still
 * offers for servers that have nothing better. sha384: the PRF's (1.3: HKDF's) hash.
 */
static const struct suite {
	uint16_t id;
	int v13;
	int cipher;
	int sha384;
	int mac;
} suites[] = {
	{ 0x1301, 1, CIPHER_AES128, 0, 0 },  { 0x1302, 1, CIPHER_AES256, 1, 0 },
	{ 0x1303, 1, CIPHER_CHACHA, 0, 0 },  { 0xC02B, 0, CIPHER_AES128, 0, 0 },
	{ 0xC02F, 0, CIPHER_AES128, 0, 0 },  { 0xC02C, 0, CIPHER_AES256, 1, 0 },
	{ 0xC030, 0, CIPHER_AES256, 1, 0 },  { 0xCCA8, 0, CIPHER_CHACHA, 0, 0 },
	{ 0xCCA9, 0, CIPHER_CHACHA, 0, 0 },  { 0xCCAA, 0, CIPHER_CHACHA, 0, 0 },
	{ 0x009C, 0, CIPHER_AES128, 0, 0 },  { 0x009D, 0, CIPHER_AES256, 1, 0 },
	{ 0x009E, 0, CIPHER_AES128, 0, 0 },  { 0x009F, 0, CIPHER_AES256, 1, 0 },
	{ 0xC009, 0, CIPHER_AES128, 0, 20 }, { 0xC00A, 0, CIPHER_AES256, 0, 20 },
	{ 0xC013, 0, CIPHER_AES128, 0, 20 }, { 0xC014, 0, CIPHER_AES256, 0, 20 },
	{ 0x002F, 0, CIPHER_AES128, 0, 20 }, { 0x0035, 0, CIPHER_AES256, 0, 20 },
	{ 0x0033, 0, CIPHER_AES128, 0, 20 }, { 0x0039, 0, CIPHER_AES256, 0, 20 },
	{ 0xC023, 0, CIPHER_AES128, 0, 32 }, { 0xC027, 0, CIPHER_AES128, 0, 32 },
	{ 0x003C, 0, CIPHER_AES128, 0, 32 }, { 0x003D, 0, CIPHER_AES256, 0, 32 },
	{ 0x0067, 0, CIPHER_AES128, 0, 32 }, { 0x006B, 0, CIPHER_AES256, 0, 32 },
	{ 0xC024, 0, CIPHER_AES256, 1, 48 }, { 0xC028, 0, CIPHER_AES256, 1, 48 },
};

/* SHA-256("HelloRetryRequest"): the random of a ServerHello that is a HelloRetryRequest. */
static const uint8_t hrr_random[TLSDEC_RANDOM_LEN] = {
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
};

struct tlsdec_dir {
	uint8_t *buf; /* bytes waiting: an incomplete record, or records waiting for secrets */
	size_t len, cap;
	int waiting;  /* the last pass stopped at a record whose secrets are missing */
	int ccs;      /* a ChangeCipherSpec went this way (TLS 1.2: what follows is sealed) */
	int stage;    /* TLS 1.3: where the current key came from */
	int keyed;
	uint64_t seq;
	uint8_t secret[HASH_MAX]; /* TLS 1.3: the current traffic secret (for KeyUpdate) */
	uint8_t mac_key[HASH_MAX]; /* TLS 1.2 CBC suites */
	uint8_t key[KEY_MAX];
	uint8_t iv[NONCE_LEN];
	void *ctx;    /* the EVP_CIPHER_CTX, with the key set */
};

struct tlsdec {
	const struct tlsdec_crypto *cr;
	tlsdec_key_fn key;
	tlsdec_plain_fn plain;
	void *ctx;
	int dead;
	int have_random;
	int hello_done;    /* the (final) ServerHello was read */
	int etm;           /* the ServerHello agreed to encrypt-then-MAC (CBC suites) */
	int version;
	const struct suite *suite;
	uint8_t client_random[TLSDEC_RANDOM_LEN];
	uint8_t server_random[TLSDEC_RANDOM_LEN];
	struct tlsdec_dir dir[2]; /* CAPTURE_OUT, CAPTURE_IN */
	uint8_t *out;             /* one record's plaintext: outbuf after room for a MAC header */
	uint8_t outbuf[MAC_HDR + REC_MAX];
};

int tlsdec_crypto_resolve(struct tlsdec_crypto *cr, void *handle)
{
	static const char *const names[] = {
		"EVP_sha1", "EVP_sha256", "EVP_sha384", "EVP_aes_128_gcm", "EVP_aes_256_gcm",
		"EVP_chacha20_poly1305", "EVP_aes_128_cbc", "EVP_aes_256_cbc", "HMAC",
		"EVP_CIPHER_CTX_new", "EVP_CIPHER_CTX_free", "EVP_DecryptInit_ex",
		"EVP_CIPHER_CTX_ctrl", "EVP_CIPHER_CTX_set_padding", "EVP_DecryptUpdate",
		"EVP_DecryptFinal_ex",
	};
	void *fn[sizeof names / sizeof names[0]];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		fn[i] = dlsym(handle, names[i]);
		if (fn[i] == NULL)
			return -1;
	}
	/* Function pointers through void*: POSIX guarantees dlsym's result converts. */
	memcpy(&cr->sha1, &fn[0], sizeof(void *));
	memcpy(&cr->sha256, &fn[1], sizeof(void *));
	memcpy(&cr->sha384, &fn[2], sizeof(void *));
	memcpy(&cr->aes_128_gcm, &fn[3], sizeof(void *));
	memcpy(&cr->aes_256_gcm, &fn[4], sizeof(void *));
	memcpy(&cr->chacha20_poly1305, &fn[5], sizeof(void *));
	memcpy(&cr->aes_128_cbc, &fn[6], sizeof(void *));
	memcpy(&cr->aes_256_cbc, &fn[7], sizeof(void *));
	memcpy(&cr->hmac, &fn[8], sizeof(void *));
	memcpy(&cr->ctx_new, &fn[9], sizeof(void *));
	memcpy(&cr->ctx_free, &fn[10], sizeof(void *));
	memcpy(&cr->decrypt_init, &fn[11], sizeof(void *));
	memcpy(&cr->ctx_ctrl, &fn[12], sizeof(void *));
	memcpy(&cr->ctx_set_padding, &fn[13], sizeof(void *));
	memcpy(&cr->decrypt_update, &fn[14], sizeof(void *));
	memcpy(&cr->decrypt_final, &fn[15], sizeof(void *));
	return 0;
}

static size_t suite_key_len(const struct suite *s)
{
	return s->cipher == CIPHER_AES128 ? 16 : 32;
}

static size_t suite_hash_len(const struct suite *s)
{
	return s->sha384 ? 48 : 32;
}

static const void *suite_md(const struct tlsdec *d)
{
	return d->suite->sha384 ? d->cr->sha384() : d->cr->sha256();
}

/* The digest of a CBC suite's HMAC. */
static const void *suite_mac_md(const struct tlsdec *d)
{
	if (d->suite->mac == 20)
		return d->cr->sha1();
	return d->suite->mac == 48 ? d->cr->sha384() : d->cr->sha256();
}

static const void *suite_cipher(const struct tlsdec *d)
{
	switch (d->suite->cipher) {
	case CIPHER_AES128:
		return d->suite->mac ? d->cr->aes_128_cbc() : d->cr->aes_128_gcm();
	case CIPHER_AES256:
		return d->suite->mac ? d->cr->aes_256_cbc() : d->cr->aes_256_gcm();
	default:
		return d->cr->chacha20_poly1305();
	}
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* ---- key derivation --------------------------------------------------------------------- */

/* HMAC with digest md (out_len bytes) of data under key into out. Returns 0 or -1. */
static int hmac_md(const struct tlsdec *d, const void *md, size_t out_len, const uint8_t *key,
		   size_t key_len, const uint8_t *data, size_t n, uint8_t out[HASH_MAX])
{
	unsigned int len = 0;

	if (d->cr->hmac(md, key, (int)key_len, data, n, out, &len) == NULL)
		return -1;
	return len == out_len ? 0 : -1;
}

/* HMAC with the suite's PRF (1.3: HKDF) hash. Returns 0 or -1. */
static int hmac(const struct tlsdec *d, const uint8_t *key, size_t key_len, const uint8_t *data,
		size_t n, uint8_t out[HASH_MAX])
{
	return hmac_md(d, suite_md(d), suite_hash_len(d->suite), key, key_len, data, n, out);
}

/* HKDF-Expand (RFC 5869) of info to out_len (<= 255 * hash) bytes. Returns 0 or -1. */
static int hkdf_expand(const struct tlsdec *d, const uint8_t *prk, size_t prk_len,
		       const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
	uint8_t in[HASH_MAX + 64 + 1], t[HASH_MAX];
	size_t hash = suite_hash_len(d->suite), done = 0, n, take, tlen = 0;
	uint8_t i = 1;

	if (info_len > 64)
		return -1;
	while (done < out_len) {
		memcpy(in, t, tlen);
		memcpy(in + tlen, info, info_len);
		n = tlen + info_len;
		in[n++] = i++;
		if (hmac(d, prk, prk_len, in, n, t) != 0)
			return -1;
		tlen = hash;
		take = out_len - done < hash ? out_len - done : hash;
		memcpy(out + done, t, take);
		done += take;
	}
	return 0;
}

/* HKDF-Expand-Label(secret, label, "", out_len) of TLS 1.3. Returns 0 or -1. */
static int expand_label(const struct tlsdec *d, const uint8_t *secret, const char *label,
			uint8_t *out, size_t out_len)
{
	uint8_t info[64];
	size_t llen = strlen(label), n = 0;

	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)(6 + llen);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = 0; /* empty context */
	return hkdf_expand(d, secret, suite_hash_len(d->suite), info, n, out, out_len);
}

/* The TLS 1.2 PRF: P_hash(secret, label + seed) to out_len bytes (RFC 5246 5). */
static int prf12(const struct tlsdec *d, const uint8_t *secret, size_t secret_len,
		 const uint8_t *seed, size_t seed_len, uint8_t *out, size_t out_len)
{
	uint8_t a[HASH_MAX], in[HASH_MAX + 96], t[HASH_MAX];
	size_t hash = suite_hash_len(d->suite), done = 0, take;

	if (seed_len > 96 || hmac(d, secret, secret_len, seed, seed_len, a) != 0)
		return -1;
	while (done < out_len) {
		memcpy(in, a, hash);
		memcpy(in + hash, seed, seed_len);
		if (hmac(d, secret, secret_len, in, hash + seed_len, t) != 0 ||
		    hmac(d, secret, secret_len, a, hash, a) != 0)
			return -1;
		take = out_len - done < hash ? out_len - done : hash;
		memcpy(out + done, t, take);
		done += take;
	}
	return 0;
}

/* Sets the direction's cipher key; its sequence number starts again at 0. */
static int dir_set_key(struct tlsdec *d, struct tlsdec_dir *s, const uint8_t *key,
		       const uint8_t *iv, size_t iv_len)
{
	if (s->ctx == NULL)
		s->ctx = d->cr->ctx_new();
	if (s->ctx == NULL || d->cr->decrypt_init(s->ctx, suite_cipher(d), NULL, key, NULL) != 1 ||
	    (d->suite->mac && d->cr->ctx_set_padding(s->ctx, 0) != 1))
		return -1; /* CBC: the TLS padding is not PKCS#7's, it is taken off here */
	memcpy(s->key, key, suite_key_len(d->suite));
	memcpy(s->iv, iv, iv_len);
	s->seq = 0;
	s->keyed = 1;
	return 0;
}

/* TLS 1.3: the keys of a traffic secret. */
static int dir_set_secret(struct tlsdec *d, struct tlsdec_dir *s, const uint8_t *secret)
{
	uint8_t key[KEY_MAX], iv[NONCE_LEN];
	size_t hash = suite_hash_len(d->suite);

	if (expand_label(d, secret, "key", key, suite_key_len(d->suite)) != 0 ||
	    expand_label(d, secret, "iv", iv, NONCE_LEN) != 0)
		return -1;
	memmove(s->secret, secret, hash);
	return dir_set_key(d, s, key, iv, NONCE_LEN);
}

/* TLS 1.2: both directions' keys from the master secret. 0, 1 when it is not known yet, -1. */
static int keys_from_master(struct tlsdec *d)
{
	uint8_t master[TLSDEC_SECRET_MAX], seed[13 + 2 * TLSDEC_RANDOM_LEN];
	uint8_t block[2 * HASH_MAX + 2 * KEY_MAX + 24], *keys;
	size_t mac = (size_t)d->suite->mac, klen = suite_key_len(d->suite);
	size_t ivlen = mac ? 0 : d->suite->cipher == CIPHER_CHACHA ? 12 : 4;
	size_t mlen = d->key(d->ctx, d->client_random, TLSDEC_MASTER, master);

	if (mlen == 0)
		return 1;
	memcpy(seed, "key expansion", 13);
	memcpy(seed + 13, d->server_random, TLSDEC_RANDOM_LEN);
	memcpy(seed + 13 + TLSDEC_RANDOM_LEN, d->client_random, TLSDEC_RANDOM_LEN);
	if (prf12(d, master, mlen, seed, sizeof seed, block, 2 * mac + 2 * klen + 2 * ivlen) != 0)
		return -1;
	memcpy(d->dir[CAPTURE_OUT].mac_key, block, mac);
	memcpy(d->dir[CAPTURE_IN].mac_key, block + mac, mac);
	keys = block + 2 * mac;
	if (dir_set_key(d, &d->dir[CAPTURE_OUT], keys, keys + 2 * klen, ivlen) != 0 ||
	    dir_set_key(d, &d->dir[CAPTURE_IN], keys + klen, keys + 2 * klen + ivlen, ivlen) != 0)
		return -1;
	return 0;
}

/* ---- records ------------------------------------------------------------------------------ */

/* Opens ct with the direction's key: the plaintext in d->out, its length, or -1 (bad tag). */
static long aead_open(struct tlsdec *d, struct tlsdec_dir *s, const uint8_t *nonce,
		      const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len)
{
	const struct tlsdec_crypto *cr = d->cr;
	int l1 = 0, l2 = 0;

	if (cr->decrypt_init(s->ctx, NULL, NULL, NULL, nonce) != 1 ||
	    cr->ctx_ctrl(s->ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)(ct + ct_len)) != 1 ||
	    cr->decrypt_update(s->ctx, NULL, &l1, aad, (int)aad_len) != 1)
		return -1;
	l1 = 0;
	if (ct_len > 0 && cr->decrypt_update(s->ctx, d->out, &l1, ct, (int)ct_len) != 1)
		return -1;
	if (cr->decrypt_final(s->ctx, d->out + l1, &l2) != 1)
		return -1;
	return (long)l1 + l2;
}

/* The record nonce: iv ^ seq (TLS 1.3, ChaCha20-Poly1305 in 1.2). */
static void nonce_xor(const struct tlsdec_dir *s, uint8_t nonce[NONCE_LEN])
{
	memcpy(nonce, s->iv, NONCE_LEN);
	for (int i = 0; i < 8; i++)
		nonce[NONCE_LEN - 1 - i] ^= (uint8_t)(s->seq >> (8 * i));
}

/* TLS 1.2: opens one sealed record. Its plaintext length, or -1. */
static long open12(struct tlsdec *d, struct tlsdec_dir *s, const uint8_t *rec, size_t n)
{
	uint8_t nonce[NONCE_LEN], aad[13];
	const uint8_t *ct = rec + REC_HDR;
	size_t ct_len, explicit = d->suite->cipher == CIPHER_CHACHA ? 0 : 8;

	if (n < explicit + TAG_LEN)
		return -1;
	ct_len = n - explicit - TAG_LEN;
	if (explicit) {
		memcpy(nonce, s->iv, 4);
		memcpy(nonce + 4, ct, 8);
		ct += 8;
	} else {
		nonce_xor(s, nonce);
	}
	for (int i = 0; i < 8; i++)
		aad[i] = (uint8_t)(s->seq >> (56 - 8 * i));
	memcpy(aad + 8, rec, 3);
	aad[11] = (uint8_t)(ct_len >> 8);
	aad[12] = (uint8_t)ct_len;
	return aead_open(d, s, nonce, aad, sizeof aad, ct, ct_len);
}

/* The first MAC_HDR bytes of what a TLS 1.2 MAC covers, before d->out: seq, the record's
 * type and version, len. */
static void mac_header(struct tlsdec *d, const struct tlsdec_dir *s, const uint8_t *rec,
		       size_t len)
{
	uint8_t *h = d->out - MAC_HDR;

	for (int i = 0; i < 8; i++)
		h[i] = (uint8_t)(s->seq >> (56 - 8 * i));
	memcpy(h + 8, rec, 3);
	h[11] = (uint8_t)(len >> 8);
	h[12] = (uint8_t)len;
}

/* Is the HMAC of the MAC_HDR + len bytes before and at d->out the mac given? */
static int mac_matches(struct tlsdec *d, const struct tlsdec_dir *s, size_t len,
		       const uint8_t *mac)
{
	uint8_t want[HASH_MAX];
	size_t n = (size_t)d->suite->mac;

	return hmac_md(d, suite_mac_md(d), n, s->mac_key, n, d->out - MAC_HDR, MAC_HDR + len,
		       want) == 0 &&
	       memcmp(want, mac, n) == 0;
}

/*
 * TLS 1.2: opens one AES-CBC record (the explicit IV first) and checks its MAC, before the
 * decryption with encrypt-then-MAC, after it otherwise. Its plaintext length, or -1.
 */
static long open12_cbc(struct tlsdec *d, struct tlsdec_dir *s, const uint8_t *rec, size_t n)
{
	const struct tlsdec_crypto *cr = d->cr;
	const uint8_t *body = rec + REC_HDR;
	size_t mac = (size_t)d->suite->mac, ct_len = n - (d->etm ? mac : 0), len, pad;
	int l1 = 0, l2 = 0;

	if (n < (d->etm ? mac : 0) + 2 * BLOCK || (ct_len - BLOCK) % BLOCK != 0)
		return -1;
	if (d->etm) {
		memcpy(d->out, body, ct_len);
		mac_header(d, s, rec, ct_len);
		if (!mac_matches(d, s, ct_len, body + ct_len))
			return -1;
	}
	if (cr->decrypt_init(s->ctx, NULL, NULL, NULL, body) != 1 ||
	    cr->ctx_set_padding(s->ctx, 0) != 1 ||
	    cr->decrypt_update(s->ctx, d->out, &l1, body + BLOCK, (int)(ct_len - BLOCK)) != 1 ||
	    cr->decrypt_final(s->ctx, d->out + l1, &l2) != 1)
		return -1;
	len = (size_t)l1 + (size_t)l2;
	pad = (size_t)d->out[len - 1] + 1;
	if (pad + (d->etm ? 0 : mac) > len)
		return -1;
	len -= pad;
	if (!d->etm) {
		len -= mac;
		mac_header(d, s, rec, len);
		if (!mac_matches(d, s, len, d->out + len))
			return -1;
	}
	return (long)len;
}

/* TLS 1.3: opens one sealed record with the current key. Its plaintext length, or -1. */
static long open13(struct tlsdec *d, struct tlsdec_dir *s, const uint8_t *rec, size_t n)
{
	uint8_t nonce[NONCE_LEN];

	if (n < TAG_LEN + 1)
		return -1;
	nonce_xor(s, nonce);
	return aead_open(d, s, nonce, rec, REC_HDR, rec + REC_HDR, n - TAG_LEN);
}

/* Fetches a secret of the key log into s's key. 0, 1 when not logged yet, -1. */
static int dir_fetch(struct tlsdec *d, struct tlsdec_dir *s, enum tlsdec_secret kind)
{
	uint8_t secret[TLSDEC_SECRET_MAX];
	size_t len = d->key(d->ctx, d->client_random, kind, secret);

	if (len == 0)
		return 1;
	if (len != suite_hash_len(d->suite))
		return -1;
	return dir_set_secret(d, s, secret);
}

/*
 * TLS 1.3: opens a sealed record, moving on to the next key when the current one does not fit
 * (handshake to application secret, or a KeyUpdate). Plaintext length (type byte included,
 * padding stripped), -2 when the secret it needs is not logged yet, -1 when nothing opens it.
 */
static long sealed13(struct tlsdec *d, enum capture_dir dir, const uint8_t *rec, size_t n)
{
	struct tlsdec_dir *s = &d->dir[dir];
	uint8_t next[HASH_MAX];
	long got = -1;
	int r;

	if (s->stage == STAGE_NONE) {
		r = dir_fetch(d, s, dir == CAPTURE_OUT ? TLSDEC_CLIENT_HS : TLSDEC_SERVER_HS);
		if (r != 0)
			return r > 0 ? -2 : -1;
		s->stage = STAGE_HANDSHAKE;
	}
	got = open13(d, s, rec, n);
	if (got >= 0)
		goto strip;
	if (s->stage == STAGE_HANDSHAKE) {
		r = dir_fetch(d, s, dir == CAPTURE_OUT ? TLSDEC_CLIENT_APP : TLSDEC_SERVER_APP);
		if (r != 0)
			return r > 0 ? -2 : -1;
		s->stage = STAGE_APP;
	} else {
		if (expand_label(d, s->secret, "traffic upd", next, suite_hash_len(d->suite)) != 0 ||
		    dir_set_secret(d, s, next) != 0)
			return -1;
	}
	got = open13(d, s, rec, n);
	if (got < 0)
		return -1;
strip:
	while (got > 0 && d->out[got - 1] == 0)
		got--;
	return got > 0 ? got : -1;
}

/* One sealed record: 1 done, 0 waits for its secret, -1 cannot be followed. */
static int record_sealed(struct tlsdec *d, enum capture_dir dir, const uint8_t *rec, size_t n)
{
	struct tlsdec_dir *s = &d->dir[dir];
	int type = rec[0], r;
	long got;

	if (d->version == VERSION_13) {
		got = sealed13(d, dir, rec, n);
		if (got == -2)
			return 0;
		if (got < 0)
			return -1;
		type = d->out[--got];
	} else {
		if (!s->keyed) {
			r = keys_from_master(d);
			if (r != 0)
				return r > 0 ? 0 : -1;
		}
		got = d->suite->mac ? open12_cbc(d, s, rec, n) : open12(d, s, rec, n);
		if (got < 0)
			return -1;
	}
	s->seq++;
	if (type == REC_DATA && got > 0)
		d->plain(d->ctx, dir, d->out, (size_t)got);
	return 1;
}

/* The ServerHello: version, cipher suite, server random. 0 read, -1 not one this follows. */
static int server_hello(struct tlsdec *d, const uint8_t *p, size_t n)
{
	size_t off, end, ext_end;
	uint16_t id, version = 0;

	/* type(1) length(3) legacy_version(2) random(32) session_id<0..32> */
	if (n < 39 || p[0] != HS_SERVER_HELLO)
		return -1;
	if (memcmp(p + 6, hrr_random, TLSDEC_RANDOM_LEN) == 0)
		return 0; /* HelloRetryRequest: a second ClientHello and ServerHello follow */
	memcpy(d->server_random, p + 6, TLSDEC_RANDOM_LEN);
	off = 39 + p[38];
	if (off + 3 > n)
		return -1;
	id = be16(p + off);
	off += 3; /* cipher suite, compression method */
	if (off + 2 <= n) {
		ext_end = off + 2 + be16(p + off);
		off += 2;
		for (; off + 4 <= n && off + 4 <= ext_end; off = end) {
			end = off + 4 + be16(p + off + 2);
			if (be16(p + off) == 0x002b && end <= n && end - off >= 6)
				version = be16(p + off + 4); /* supported_versions */
			if (be16(p + off) == 0x0016)
				d->etm = 1; /* encrypt_then_mac */
		}
	}
	d->suite = NULL;
	for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
		if (suites[i].id == id)
			d->suite = &suites[i];
	d->version = version == 0x0304 ? VERSION_13 : be16(p + 4) == 0x0303 ? VERSION_12 : 0;
	if (d->suite == NULL || d->version == VERSION_UNKNOWN ||
	    d->suite->v13 != (d->version == VERSION_13))
		return -1;
	d->hello_done = 1;
	return 0;
}

/* One record: 1 done, 0 waits for a secret, -1 cannot be followed. */
static int record(struct tlsdec *d, enum capture_dir dir, const uint8_t *rec, size_t n)
{
	struct tlsdec_dir *s = &d->dir[dir];
	const uint8_t *body = rec + REC_HDR;
	int type = rec[0];

	if (type == REC_CCS) {
		s->ccs = 1;
		s->seq = 0;
		return 1;
	}
	if ((d->version == VERSION_13 && type == REC_DATA) || (d->version == VERSION_12 && s->ccs))
		return record_sealed(d, dir, rec, n);
	if (type == REC_DATA)
		return -1; /* application data before any key */
	if (type == REC_HANDSHAKE && dir == CAPTURE_OUT && !d->have_random) {
		/* type(1) length(3) legacy_version(2) random(32) */
		if (n < 38 || body[0] != HS_CLIENT_HELLO)
			return -1;
		memcpy(d->client_random, body + 6, TLSDEC_RANDOM_LEN);
		d->have_random = 1;
		return 1;
	}
	if (type == REC_HANDSHAKE && dir == CAPTURE_IN && !d->hello_done)
		return d->have_random && server_hello(d, body, n) == 0 ? 1 : -1;
	return 1; /* the rest of a 1.2 handshake in the clear, alerts in the clear */
}

/* Opens the complete records of p[0..len): bytes consumed, or -1. Sets s->waiting. */
static long dir_run(struct tlsdec *d, enum capture_dir dir, const uint8_t *p, size_t len)
{
	struct tlsdec_dir *s = &d->dir[dir];
	size_t off = 0, n;
	int r;

	s->waiting = 0;
	while (len - off >= REC_HDR) {
		n = be16(p + off + 3);
		if (p[off] < REC_CCS || p[off] > REC_DATA || p[off + 1] != 3 || n > REC_MAX)
			return -1;
		if (len - off - REC_HDR < n)
			break;
		r = record(d, dir, p + off, n);
		if (r < 0)
			return -1;
		if (r == 0) {
			s->waiting = 1;
			break;
		}
		off += REC_HDR + n;
	}
	return (long)off;
}

/* Keeps p[0..len) to wait. 0, or -1 past the cap or out of memory. */
static int dir_keep(struct tlsdec_dir *s, const uint8_t *p, size_t len)
{
	size_t cap = s->cap ? s->cap : 4096;
	uint8_t *nb;

	if (len == 0)
		return 0; /* a retry (p NULL): nothing new to keep */
	if (s->len + len > TLSDEC_PENDING_MAX)
		return -1;
	while (cap < s->len + len)
		cap *= 2;
	if (cap != s->cap) {
		nb = realloc(s->buf, cap);
		if (nb == NULL)
			return -1;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	return 0;
}

/* Opens what waits in one direction, then data (may be NULL) after it. 0 or -1. */
static int dir_feed(struct tlsdec *d, enum capture_dir dir, const uint8_t *data, size_t len)
{
	struct tlsdec_dir *s = &d->dir[dir];
	long used;

	/* The response waits while the request does: capture must see them in order. */
	if (dir == CAPTURE_IN && d->dir[CAPTURE_OUT].waiting)
		return dir_keep(s, data, len);
	if (s->len == 0 && data != NULL) {
		used = dir_run(d, dir, data, len);
		if (used < 0)
			return -1;
		return dir_keep(s, data + used, len - (size_t)used);
	}
	if (data != NULL && dir_keep(s, data, len) != 0)
		return -1;
	used = dir_run(d, dir, s->buf, s->len);
	if (used < 0)
		return -1;
	memmove(s->buf, s->buf + used, s->len - (size_t)used);
	s->len -= (size_t)used;
	return 0;
}

struct tlsdec *tlsdec_new(const struct tlsdec_crypto *crypto, tlsdec_key_fn key,
			  tlsdec_plain_fn plain, void *ctx)
{
	struct tlsdec *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->cr = crypto;
	d->out = d->outbuf + MAC_HDR;
	d->key = key;
	d->plain = plain;
	d->ctx = ctx;
	return d;
}

static int fail(struct tlsdec *d)
{
	d->dead = 1;
	for (int i = 0; i < 2; i++) {
		free(d->dir[i].buf);
		d->dir[i].buf = NULL;
		d->dir[i].len = d->dir[i].cap = 0;
		d->dir[i].waiting = 0;
	}
	return -1;
}

int tlsdec_feed(struct tlsdec *d, enum capture_dir dir, const void *data, size_t len)
{
	if (d->dead)
		return -1;
	/* Sent bytes first: a request that waited must come out before its response. */
	if (dir == CAPTURE_IN && d->dir[CAPTURE_OUT].len > 0 &&
	    dir_feed(d, CAPTURE_OUT, NULL, 0) != 0)
		return fail(d);
	if (dir_feed(d, dir, data, len) != 0)
		return fail(d);
	if (dir == CAPTURE_OUT && d->dir[CAPTURE_IN].len > 0 && !d->dir[CAPTURE_OUT].waiting &&
	    dir_feed(d, CAPTURE_IN, NULL, 0) != 0)
		return fail(d);
	return 0;
}

int tlsdec_retry(struct tlsdec *d)
{
	if (d->dead)
		return -1;
	if (dir_feed(d, CAPTURE_OUT, NULL, 0) != 0 || dir_feed(d, CAPTURE_IN, NULL, 0) != 0)
		return fail(d);
	return 0;
}

int tlsdec_waiting(const struct tlsdec *d)
{
	return !d->dead && (d->dir[CAPTURE_OUT].waiting || d->dir[CAPTURE_IN].waiting);
}

const uint8_t *tlsdec_random(const struct tlsdec *d)
{
	return d->have_random ? d->client_random : NULL;
}

void tlsdec_free(struct tlsdec *d)
{
	if (d == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		if (d->dir[i].ctx != NULL)
			d->cr->ctx_free(d->dir[i].ctx);
		free(d->dir[i].buf);
	}
	free(d);
}
