/*
 * tlsdec.h - a TLS 1.2/1.3 client connection's records, both directions, decrypted from the
 * ciphertext on its socket with secrets from a key log (the NSS SSLKEYLOGFILE format that
 * Node's 'keylog' event gives).
 *
 * This is how tokshim sees the calls of a program whose TLS stack it cannot hook: `node` links
 * OpenSSL statically, so its SSL_write never passes through the preload; its socket writes do.
 * The decryptor reads the ClientHello's random and the ServerHello's version and cipher suite
 * in the clear, asks the caller for the secrets of that random, derives the traffic keys
 * (HKDF-Expand-Label for 1.3, the PRF for 1.2) and opens each record with the AEAD (AES-128-GCM,
 * AES-256-GCM, ChaCha20-Poly1305) or, in TLS 1.2, AES-CBC with its HMAC (SHA-1, SHA-256,
 * SHA-384; MAC-then-encrypt, or encrypt-then-MAC when the ServerHello says so, RFC 7366), the
 * MAC checked as the tag is. Application data comes out in order, per direction.
 *
 * Secrets arrive late: a key log line is written after the handshake step that made it (the
 * server's handshake records are read before the client has derived their key). So records
 * wait, capped, until their secrets are there; a
 * response never comes out before the request it answers (the received direction waits while
 * sent records still do). In TLS 1.3 the switch from handshake to application keys, and each
 * KeyUpdate, is found by the AEAD tag itself: a record that does not open with the current key
 * is tried with the next one, once.
 *
 * The crypto is borrowed (struct tlsdec_crypto): the shim must not link libcrypto, and takes
 * the functions from the copy the process already carries. Pure otherwise: no I/O, no clock.
 * A tlsdec is not thread-safe: the caller serialises calls on one connection.
 */
#ifndef TOKSHIM_TLSDEC_H
#define TOKSHIM_TLSDEC_H

#include <stddef.h>
#include <stdint.h>

#include "capture/capture.h"

/* OpenSSL's EVP and HMAC entry points, by their OpenSSL 3 signatures (types left opaque). */
struct tlsdec_crypto {
	const void *(*sha1)(void);
	const void *(*sha256)(void);
	const void *(*sha384)(void);
	const void *(*aes_128_gcm)(void);
	const void *(*aes_256_gcm)(void);
	const void *(*chacha20_poly1305)(void);
	const void *(*aes_128_cbc)(void);
	const void *(*aes_256_cbc)(void);
	unsigned char *(*hmac)(const void *md, const void *key, int key_len,
			       const unsigned char *data, size_t n, unsigned char *md_out,
			       unsigned int *md_len);
	void *(*ctx_new)(void);
	void (*ctx_free)(void *ctx);
	int (*decrypt_init)(void *ctx, const void *cipher, void *engine, const unsigned char *key,
			    const unsigned char *iv);
	int (*ctx_ctrl)(void *ctx, int type, int arg, void *ptr);
	int (*ctx_set_padding)(void *ctx, int pad);
	int (*decrypt_update)(void *ctx, unsigned char *out, int *out_len,
			      const unsigned char *in, int in_len);
	int (*decrypt_final)(void *ctx, unsigned char *out, int *out_len);
};

/*
 * Fills cr with the functions above, looked up with dlsym in handle (RTLD_DEFAULT: the copy
 * of OpenSSL the process carries; or a handle of dlopen). Returns 0, or -1 when one is missing
 * (cr is then unusable). The functions stay valid as long as the library stays loaded.
 */
int tlsdec_crypto_resolve(struct tlsdec_crypto *cr, void *handle);

/* The secrets of one connection a key log may hold (its labels in the comments). */
enum tlsdec_secret {
	TLSDEC_CLIENT_HS,  /* CLIENT_HANDSHAKE_TRAFFIC_SECRET */
	TLSDEC_SERVER_HS,  /* SERVER_HANDSHAKE_TRAFFIC_SECRET */
	TLSDEC_CLIENT_APP, /* CLIENT_TRAFFIC_SECRET_0 */
	TLSDEC_SERVER_APP, /* SERVER_TRAFFIC_SECRET_0 */
	TLSDEC_MASTER,     /* CLIENT_RANDOM (TLS 1.2 master secret) */
	TLSDEC_SECRET_N
};

#define TLSDEC_SECRET_MAX 48
#define TLSDEC_RANDOM_LEN 32

/* Copies the secret of kind for the connection whose ClientHello random is random into out:
 * returns its length (32 or 48), or 0 when the key log does not hold it (yet). */
typedef size_t (*tlsdec_key_fn)(void *ctx, const uint8_t random[TLSDEC_RANDOM_LEN],
				enum tlsdec_secret kind, uint8_t out[TLSDEC_SECRET_MAX]);

/* Receives application data in direction dir; data is valid only during the call. */
typedef void (*tlsdec_plain_fn)(void *ctx, enum capture_dir dir, const void *data, size_t len);

/* Bytes of ciphertext one direction may hold while it waits for its secrets. */
#define TLSDEC_PENDING_MAX (4u << 20)

struct tlsdec;

/*
 * A decryptor for one client connection, from its first byte. crypto must outlive it; ctx is
 * passed to key and plain. Returns NULL when out of memory.
 */
struct tlsdec *tlsdec_new(const struct tlsdec_crypto *crypto, tlsdec_key_fn key,
			  tlsdec_plain_fn plain, void *ctx);

/*
 * Feeds bytes that crossed the socket in direction dir (CAPTURE_OUT: the client wrote them),
 * then opens every record whose secrets are known, calling plain for application data.
 * Returns 0, or -1 once the connection cannot be followed (not TLS, a version or cipher suite
 * it does not handle, a record that opens with no key, the pending cap passed, out of
 * memory); after -1 it ignores all input.
 */
int tlsdec_feed(struct tlsdec *d, enum capture_dir dir, const void *data, size_t len);

/* Tries the waiting records again (more of the key log has been read). Returns as feed. */
int tlsdec_retry(struct tlsdec *d);

/* Do records wait for secrets the key log did not hold when they were last tried? */
int tlsdec_waiting(const struct tlsdec *d);

/* The ClientHello random, or NULL before the ClientHello was seen. Valid as long as d. */
const uint8_t *tlsdec_random(const struct tlsdec *d);

/* Frees d. NULL is allowed. */
void tlsdec_free(struct tlsdec *d);

#endif
