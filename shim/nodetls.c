/*
 * nodetls.c - Node.js, whose TLS the SSL hooks cannot see: `node` links OpenSSL statically and
 * its calls to SSL_write never leave the executable. Its sockets still go through libc, so the
 * socket hooks see the ciphertext; this file supplies the secrets to open it (capture/tlsdec.h).
 *
 * The secrets come from Node itself: `--tls-keylog=FILE` makes it append each TLS secret as a
 * key log line. A preload cannot change the options of a running node, but its constructor
 * runs before node's main() reads NODE_OPTIONS: so when the shim finds itself loaded into node
 * (the executable exports node_module_register) it adds `--tls-keylog=PATH` to NODE_OPTIONS
 * there, for this process only (a child node started with the shim replaces the option with
 * its own). PATH is a FIFO in a fresh 0700 folder: the lines pass through the kernel and are
 * never stored on disk (DESIGN.md rule 2); the shim holds the FIFO open for reading from the
 * start, so Node's writes (made on its thread pool) never block, and it removes both at exit.
 * When NODE_OPTIONS already names a key log file of the user's, that file is read instead and
 * nothing is changed. TOKSHIM_NODE_KEYLOG=off turns all of this off.
 *
 * Node writes key log lines asynchronously, so a record may arrive before its secret: the
 * decryptor keeps it, and a reader thread tries it again as soon as the line lands (records
 * of a fast local server are then emitted from that thread, a moment after the response was
 * read; their latency includes the moment).
 *
 * The AEAD, HMAC and digests are OpenSSL's, taken with dlsym(RTLD_DEFAULT) from the copy the
 * node executable exports: the shim never links libcrypto. None of this runs in a process that
 * is not node: there the constructor's one dlsym finds nothing and shim_node_tls stays 0.
 */
#include "shim/shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/tlsdec.h"

#define KEYS_MAX 256      /* connections whose secrets are kept; the oldest go first */
#define KEY_LINE_MAX 512  /* a key log line: label, 64 hex digits, up to 96 hex digits */
#define OUR_KEYLOG "/tokshim-node-"

int shim_node_tls;

struct shim_node_conn {
	struct tlsdec *dec;
	shim_node_plain_fn plain;
	void *owner;
};

struct keys_entry {
	uint8_t random[TLSDEC_RANDOM_LEN];
	uint8_t len[TLSDEC_SECRET_N];
	uint8_t secret[TLSDEC_SECRET_N][TLSDEC_SECRET_MAX];
};

static struct tlsdec_crypto crypto;
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static struct keys_entry *keys; /* KEYS_MAX entries, used as a ring */
static size_t keys_next;
static char line_buf[KEY_LINE_MAX];
static size_t line_len;
static int keylog_fd = -1;
static int keylog_fifo;  /* keylog_fd is our FIFO (else the user's file, opened when needed) */
static char keylog_path[PATH_MAX];
static char keylog_dir[PATH_MAX];
static pid_t keylog_owner;

/* Every OpenSSL function the decryptor borrows, from the node executable. 0 or -1. */
static int crypto_resolve(void)
{
	static const char *const names[] = {
		"EVP_sha256", "EVP_sha384", "EVP_aes_128_gcm", "EVP_aes_256_gcm",
		"EVP_chacha20_poly1305", "HMAC", "EVP_CIPHER_CTX_new", "EVP_CIPHER_CTX_free",
		"EVP_DecryptInit_ex", "EVP_CIPHER_CTX_ctrl", "EVP_DecryptUpdate",
		"EVP_DecryptFinal_ex",
	};
	void *fn[sizeof names / sizeof names[0]];

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		fn[i] = dlsym(RTLD_DEFAULT, names[i]);
		if (fn[i] == NULL)
			return -1;
	}
	/* Function pointers through void*: POSIX guarantees dlsym's result converts. */
	memcpy(&crypto.sha256, &fn[0], sizeof(void *));
	memcpy(&crypto.sha384, &fn[1], sizeof(void *));
	memcpy(&crypto.aes_128_gcm, &fn[2], sizeof(void *));
	memcpy(&crypto.aes_256_gcm, &fn[3], sizeof(void *));
	memcpy(&crypto.chacha20_poly1305, &fn[4], sizeof(void *));
	memcpy(&crypto.hmac, &fn[5], sizeof(void *));
	memcpy(&crypto.ctx_new, &fn[6], sizeof(void *));
	memcpy(&crypto.ctx_free, &fn[7], sizeof(void *));
	memcpy(&crypto.decrypt_init, &fn[8], sizeof(void *));
	memcpy(&crypto.ctx_ctrl, &fn[9], sizeof(void *));
	memcpy(&crypto.decrypt_update, &fn[10], sizeof(void *));
	memcpy(&crypto.decrypt_final, &fn[11], sizeof(void *));
	return 0;
}

/* ---- the key log ------------------------------------------------------------------------ */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex digits p[0..2*n) into out. 0 or -1. */
static int hex_decode(const char *p, size_t n, uint8_t *out)
{
	int hi, lo;

	for (size_t i = 0; i < n; i++) {
		hi = hex_value(p[2 * i]);
		lo = hex_value(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static struct keys_entry *keys_find(const uint8_t *random)
{
	for (size_t i = 0; i < KEYS_MAX; i++)
		if (memcmp(keys[i].random, random, TLSDEC_RANDOM_LEN) == 0)
			return &keys[i];
	return NULL;
}

/* One key log line "LABEL RANDOM SECRET" into the table; other lines are skipped. */
static void keys_add_line(const char *s, size_t n)
{
	static const char *const labels[TLSDEC_SECRET_N] = {
		"CLIENT_HANDSHAKE_TRAFFIC_SECRET ", "SERVER_HANDSHAKE_TRAFFIC_SECRET ",
		"CLIENT_TRAFFIC_SECRET_0 ", "SERVER_TRAFFIC_SECRET_0 ", "CLIENT_RANDOM ",
	};
	uint8_t random[TLSDEC_RANDOM_LEN], secret[TLSDEC_SECRET_MAX];
	struct keys_entry *e;
	size_t lab = 0, slen;
	int kind = -1;

	for (int k = 0; k < TLSDEC_SECRET_N && kind < 0; k++) {
		lab = strlen(labels[k]);
		if (n > lab && memcmp(s, labels[k], lab) == 0)
			kind = k;
	}
	if (kind < 0)
		return;
	s += lab;
	n -= lab;
	if (n < 2 * TLSDEC_RANDOM_LEN + 1 || s[2 * TLSDEC_RANDOM_LEN] != ' ')
		return;
	slen = (n - 2 * TLSDEC_RANDOM_LEN - 1) / 2;
	if ((slen != 32 && slen != 48) || hex_decode(s, TLSDEC_RANDOM_LEN, random) != 0 ||
	    hex_decode(s + 2 * TLSDEC_RANDOM_LEN + 1, slen, secret) != 0)
		return;
	e = keys_find(random);
	if (e == NULL) {
		e = &keys[keys_next];
		keys_next = (keys_next + 1) % KEYS_MAX;
		memset(e, 0, sizeof(*e));
		memcpy(e->random, random, TLSDEC_RANDOM_LEN);
	}
	memcpy(e->secret[kind], secret, slen);
	e->len[kind] = (uint8_t)slen;
}

/* Reads what the key log holds beyond what was read before. Called with keys_lock held. */
static void keylog_drain(void)
{
	char buf[4096];
	ssize_t got;

	if (keylog_fd < 0 && !keylog_fifo && keylog_path[0] != '\0')
		keylog_fd = open(keylog_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (keylog_fd < 0)
		return;
	for (;;) {
		got = read(keylog_fd, buf, sizeof buf);
		if (got <= 0)
			break;
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] == '\n') {
				keys_add_line(line_buf, line_len);
				line_len = 0;
				continue;
			}
			/* An overlong line is cut, and then fails to parse. */
			if (line_len < KEY_LINE_MAX)
				line_buf[line_len++] = buf[i];
		}
	}
}

/* tlsdec_key_fn over the key log. */
static size_t keys_lookup(void *ctx, const uint8_t random[TLSDEC_RANDOM_LEN],
			  enum tlsdec_secret kind, uint8_t out[TLSDEC_SECRET_MAX])
{
	struct keys_entry *e;
	size_t len = 0;

	(void)ctx;
	pthread_mutex_lock(&keys_lock);
	e = keys_find(random);
	if (e == NULL || e->len[kind] == 0) {
		keylog_drain();
		e = keys_find(random);
	}
	if (e != NULL && e->len[kind] != 0) {
		len = e->len[kind];
		memcpy(out, e->secret[kind], len);
	}
	pthread_mutex_unlock(&keys_lock);
	return len;
}

/*
 * The key log reader: a thread that sleeps on the FIFO and, when lines come, hands them to the
 * table and has the connections whose records wait for them tried again (conns.c). Node
 * writes a line on its thread pool and continues the write on its event loop, so waiting for
 * it inside a hook of the main thread would wait for nothing: the line comes only once the
 * hook has returned. The thread runs with every signal blocked (they stay the agent's) and
 * with shim_busy set (its own reads are not captured).
 */
static void *keylog_reader(void *arg)
{
	struct pollfd pfd = { keylog_fd, POLLIN, 0 };

	(void)arg;
	for (;;) {
		shim_busy = 1;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&keys_lock);
		keylog_drain();
		pthread_mutex_unlock(&keys_lock);
		shim_conns_node_retry();
	}
	return NULL;
}

static pthread_once_t reader_once = PTHREAD_ONCE_INIT;

/* Starts the reader at the first TLS connection (never in a node that makes none). */
static void keylog_reader_start(void)
{
	sigset_t all, old;
	pthread_t th;

	if (!keylog_fifo)
		return; /* the user's file: read when a record needs it */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&th, NULL, keylog_reader, NULL) == 0)
		pthread_detach(th);
	else
		shim_log("node: cannot start the key log reader: records wait for the next I/O");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_plain(void *ctx, enum capture_dir dir, const void *data, size_t len)
{
	struct shim_node_conn *c = ctx;

	c->plain(c->owner, dir, data, len);
}

struct shim_node_conn *shim_node_conn_new(shim_node_plain_fn plain, void *owner)
{
	struct shim_node_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	pthread_once(&reader_once, keylog_reader_start);
	c->plain = plain;
	c->owner = owner;
	c->dec = tlsdec_new(&crypto, keys_lookup, conn_plain, c);
	if (c->dec == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

int shim_node_conn_feed(struct shim_node_conn *c, enum capture_dir dir, const struct iovec *iov,
			int iovcnt, size_t len)
{
	size_t n;
	int ret = 0;

	for (int i = 0; i < iovcnt && len > 0 && ret == 0; i++) {
		n = iov[i].iov_len < len ? iov[i].iov_len : len;
		ret = tlsdec_feed(c->dec, dir, iov[i].iov_base, n);
		len -= n;
	}
	if (ret != 0)
		shim_log("node: TLS connection not followed (not a TLS version, cipher or record "
			 "this reads)");
	return ret;
}

int shim_node_conn_waiting(const struct shim_node_conn *c)
{
	return tlsdec_waiting(c->dec);
}

int shim_node_conn_retry(struct shim_node_conn *c)
{
	return tlsdec_retry(c->dec);
}

void shim_node_conn_free(struct shim_node_conn *c)
{
	if (c == NULL)
		return;
	tlsdec_free(c->dec);
	free(c);
}

/* ---- start and end of the process ------------------------------------------------------- */

/* Is this --tls-keylog token one a parent shim added? */
static int ours(const char *tok, size_t n)
{
	return memmem(tok, n, OUR_KEYLOG, strlen(OUR_KEYLOG)) != NULL;
}

/*
 * NODE_OPTIONS without the --tls-keylog a parent shim added, into out. The user's own
 * --tls-keylog, if any, is copied to keylog_path. 0, or -1 when it does not fit.
 */
static int node_options_strip(const char *opts, char *out, size_t cap)
{
	static const char opt[] = "--tls-keylog=";
	size_t o = 0, n;
	const char *p = opts;

	out[0] = '\0';
	while (*p) {
		p += strspn(p, " ");
		n = strcspn(p, " ");
		if (n == 0)
			break;
		if (n > strlen(opt) && strncmp(p, opt, strlen(opt)) == 0 && ours(p, n)) {
			p += n;
			continue;
		}
		if (n > strlen(opt) && strncmp(p, opt, strlen(opt)) == 0 &&
		    n - strlen(opt) < sizeof keylog_path) {
			memcpy(keylog_path, p + strlen(opt), n - strlen(opt));
			keylog_path[n - strlen(opt)] = '\0';
		}
		if (o + n + 2 > cap)
			return -1;
		if (o > 0)
			out[o++] = ' ';
		memcpy(out + o, p, n);
		o += n;
		out[o] = '\0';
		p += n;
	}
	return 0;
}

/* A FIFO in a fresh 0700 folder, held open for reading. 0 or -1. */
static int keylog_fifo_make(void)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	int w;

	if (base == NULL || base[0] != '/' || strpbrk(base, " \"'\\") != NULL ||
	    access(base, W_OK) != 0)
		base = "/tmp";
	w = snprintf(keylog_dir, sizeof keylog_dir, "%s%sXXXXXX", base, OUR_KEYLOG);
	if (w < 0 || (size_t)w >= sizeof keylog_dir || mkdtemp(keylog_dir) == NULL)
		return -1;
	w = snprintf(keylog_path, sizeof keylog_path, "%s/keylog", keylog_dir);
	if (w < 0 || (size_t)w >= sizeof keylog_path || mkfifo(keylog_path, 0600) != 0)
		goto rmdir;
	/* O_RDWR: a reader is always there (Node's open never blocks) and read never sees EOF. */
	keylog_fd = open(keylog_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (keylog_fd < 0)
		goto unlink;
	keylog_fifo = 1;
	keylog_owner = getpid();
	return 0;
unlink:
	unlink(keylog_path);
rmdir:
	rmdir(keylog_dir);
	keylog_path[0] = keylog_dir[0] = '\0';
	return -1;
}

void shim_node_init(void)
{
	const char *off = getenv("TOKSHIM_NODE_KEYLOG");
	const char *old = getenv("NODE_OPTIONS");
	char opts[4096], *next = NULL;

	if (off != NULL && strcmp(off, "off") == 0)
		return;
	if (dlsym(RTLD_DEFAULT, "node_module_register") == NULL)
		return; /* not node */
	if (crypto_resolve() != 0 || node_options_strip(old ? old : "", opts, sizeof opts) != 0)
		return;
	keys = calloc(KEYS_MAX, sizeof(*keys));
	if (keys == NULL)
		return;
	if (keylog_path[0] == '\0') {
		if (keylog_fifo_make() != 0)
			goto free_keys;
		if (asprintf(&next, "%s%s--tls-keylog=%s", opts, opts[0] ? " " : "",
			     keylog_path) < 0)
			goto remove_fifo;
		if (setenv("NODE_OPTIONS", next, 1) != 0)
			goto remove_fifo;
	}
	shim_node_tls = 1;
	goto out;
remove_fifo:
	close(keylog_fd);
	keylog_fd = -1;
	unlink(keylog_path);
	rmdir(keylog_dir);
free_keys:
	free(keys);
	keys = NULL;
out:
	free(next);
}

/* The FIFO and its folder go with the process that made them (not with a forked child). */
__attribute__((destructor)) static void shim_node_fini(void)
{
	if (keylog_fifo && keylog_owner == getpid()) {
		unlink(keylog_path);
		rmdir(keylog_dir);
	}
}
