/*
 * nodetls.c - Node.js, whose TLS the SSL hooks cannot see: `node` links OpenSSL statically and
 * its calls to SSL_write never leave the executable. Its sockets still go through libc, so the
 * socket hooks see the ciphertext; this file supplies the secrets to open it (capture/tlsdec.h).
 *
 * The secrets come from Node itself: a TLS socket emits 'keylog' with each secret, in the key
 * log format, the moment OpenSSL derives it. A preload cannot change the options of a running
 * node, but its constructor runs before node's main() reads NODE_OPTIONS: so when the shim
 * finds itself loaded into node (the executable exports node_module_register) it writes a small
 * script into a fresh 0700 folder and puts `--require=SCRIPT` first in NODE_OPTIONS, for this
 * process only. Before any code of the agent's runs, the script puts NODE_OPTIONS back as the
 * user had it (the agent, and any process it starts, sees it unchanged; a child node loads the
 * shim through LD_PRELOAD and does the same again), then wraps tls.connect, which https, fetch
 * (undici) and http2 all call through the module object, to add a 'keylog' listener to each
 * client socket. The listener writes the line with fs.writeSync to a FIFO in the same folder:
 * synchronously, from OpenSSL's own callback, so a secret is in the FIFO before the record it
 * opens is written or read by node's code, and a process that exits right after a call loses
 * nothing. The lines pass through the kernel and are never stored on disk (DESIGN.md rule 2).
 * Node's --tls-keylog is not used: it warns on stderr, and writes asynchronously on the thread
 * pool. Nothing is printed; the FIFO is opened non-blocking on both ends, so a full FIFO drops
 * lines rather than stall the agent. The shim holds the FIFO open for reading from the start
 * and removes the folder at exit. TOKSHIM_NODE_KEYLOG=off turns all of this off; so does
 * node's permission model or a policy manifest (they would refuse to load the script).
 *
 * A reader thread drains the FIFO and tries again the connections whose records wait for a
 * secret (a server's handshake records are read before node has derived the key for them; they
 * open when the client next writes, or when the thread has read the line).
 *
 * The ciphers, HMAC and digests are OpenSSL's, taken with dlsym(RTLD_DEFAULT) from the copy the
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
#define OUR_DIR "/tokshim-node-"
#define NODE_OPTIONS_MAX 65536 /* a longer NODE_OPTIONS is left alone (nothing is seen) */

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
static int keylog_fd = -1; /* the FIFO's reading end */
static char keylog_dir[PATH_MAX];
static char keylog_path[PATH_MAX];
static char script_path[PATH_MAX];
static pid_t keylog_owner;

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
 * table and has the connections whose records wait for them tried again (conns.c). The hooks
 * read the FIFO themselves when a record needs a secret, which covers a normal exchange: the
 * thread keeps the FIFO from filling with the lines of connections no hook follows, and opens
 * records that wait while their connection is idle. It runs with every signal blocked (they
 * stay the agent's) and with shim_busy set (its own reads are not captured).
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

/*
 * The script node preloads. Its two %s are JavaScript expressions for the strings it needs,
 * written as hex (script_string): NODE_OPTIONS as the user set it (or null), the FIFO's path.
 * It deletes itself from require.cache and puts NODE_OPTIONS back before anything else, and
 * catches every error of its own: the agent must not notice it (a worker thread runs it too).
 */
static const char script_fmt[] =
	"'use strict';\n"
	"// tokshim (libtokshim.so, shim/nodetls.c): hands the secrets of node's TLS client\n"
	"// connections to the shim, as the handshake makes them, through its FIFO.\n"
	"(function () {\n"
	"\tconst was = %s;\n"
	"\tif (was === null)\n"
	"\t\tdelete process.env.NODE_OPTIONS;\n"
	"\telse\n"
	"\t\tprocess.env.NODE_OPTIONS = was;\n"
	"\tdelete require.cache[__filename];\n"
	"\tconst fs = require('fs'), tls = require('tls');\n"
	"\tlet fd;\n"
	"\ttry {\n"
	"\t\tfd = fs.openSync(%s, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);\n"
	"\t} catch (e) {\n"
	"\t\treturn;\n"
	"\t}\n"
	"\tconst keylog = (line) => {\n"
	"\t\ttry {\n"
	"\t\t\tfs.writeSync(fd, line);\n"
	"\t\t} catch (e) {\n"
	"\t\t\t// a full FIFO: the line is dropped, the agent carries on\n"
	"\t\t}\n"
	"\t};\n"
	"\tconst connect = tls.connect;\n"
	"\ttls.connect = {\n"
	"\t\tconnect(...args) {\n"
	"\t\t\tconst socket = connect.apply(this, args);\n"
	"\t\t\tsocket.on('keylog', keylog);\n"
	"\t\t\treturn socket;\n"
	"\t\t},\n"
	"\t}.connect;\n"
	"})();\n";

/* s as a JavaScript expression, Buffer.from('<hex>', 'hex').toString() (no quoting to get
 * wrong), or "null" when s is NULL. Allocated; NULL when out of memory. */
static char *script_string(const char *s)
{
	static const char pre[] = "Buffer.from('", post[] = "', 'hex').toString()";
	static const char digits[] = "0123456789abcdef";
	size_t n, o;
	char *out;

	if (s == NULL)
		return strdup("null");
	n = strlen(s);
	out = malloc(sizeof pre - 1 + 2 * n + sizeof post);
	if (out == NULL)
		return NULL;
	memcpy(out, pre, sizeof pre - 1);
	o = sizeof pre - 1;
	for (size_t i = 0; i < n; i++) {
		out[o++] = digits[(unsigned char)s[i] >> 4];
		out[o++] = digits[(unsigned char)s[i] & 15];
	}
	memcpy(out + o, post, sizeof post);
	return out;
}

/* Writes the script to script_path (created 0600, never replacing a file). 0 or -1. */
static int script_write(const char *node_options)
{
	char *was = script_string(node_options), *fifo = script_string(keylog_path), *text = NULL;
	size_t len, done = 0;
	ssize_t w;
	int fd = -1, ret = -1, n;

	if (was == NULL || fifo == NULL)
		goto free_strings;
	n = asprintf(&text, script_fmt, was, fifo);
	if (n < 0) {
		text = NULL;
		goto free_strings;
	}
	len = (size_t)n;
	fd = open(script_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto free_strings;
	while (done < len) {
		w = write(fd, text + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto close_fd;
		done += (size_t)w;
	}
	ret = 0;
close_fd:
	close(fd);
free_strings:
	free(text);
	free(fifo);
	free(was);
	return ret;
}

/* The folder's contents, then the folder, as far as they were made. */
static void keylog_dir_remove(void)
{
	if (script_path[0] != '\0')
		unlink(script_path);
	if (keylog_path[0] != '\0')
		unlink(keylog_path);
	rmdir(keylog_dir);
	script_path[0] = keylog_path[0] = keylog_dir[0] = '\0';
}

/* A fresh 0700 folder holding the FIFO (held open for reading) and the script. 0 or -1. */
static int keylog_dir_make(const char *node_options)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	int w;

	/* The script's path goes into NODE_OPTIONS unquoted: no space or quote in it. */
	if (base == NULL || base[0] != '/' || strpbrk(base, " \t\n\"'\\") != NULL ||
	    access(base, W_OK) != 0)
		base = "/tmp";
	w = snprintf(keylog_dir, sizeof keylog_dir, "%s%sXXXXXX", base, OUR_DIR);
	if (w < 0 || (size_t)w >= sizeof keylog_dir || mkdtemp(keylog_dir) == NULL) {
		keylog_dir[0] = '\0';
		return -1;
	}
	keylog_owner = getpid();
	w = snprintf(keylog_path, sizeof keylog_path, "%s/keylog", keylog_dir);
	if (w < 0 || (size_t)w >= sizeof keylog_path || mkfifo(keylog_path, 0600) != 0) {
		keylog_path[0] = '\0';
		goto remove;
	}
	/* O_RDWR: a reader is always there (node's non-blocking open for writing succeeds) and
	 * read never sees EOF. */
	keylog_fd = open(keylog_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (keylog_fd < 0)
		goto remove;
	/* .cjs: CommonJS whatever node's default module type or a package.json above says. */
	w = snprintf(script_path, sizeof script_path, "%s/preload.cjs", keylog_dir);
	if (w < 0 || (size_t)w >= sizeof script_path || script_write(node_options) != 0) {
		script_path[0] = '\0';
		goto close_fifo;
	}
	return 0;
close_fifo:
	close(keylog_fd);
	keylog_fd = -1;
remove:
	keylog_dir_remove();
	return -1;
}

/*
 * Does node run with an option under which it would refuse to load the script (its permission
 * model, a policy manifest)? Looked for in NODE_OPTIONS and in the command line; a match in
 * the agent's own arguments only turns the capture off, which is the safe side.
 */
static int node_refuses_script(const char *node_options)
{
	static const char *const opts[] = { "--experimental-permission", "--permission",
					    "--experimental-policy" };
	char buf[16384];
	ssize_t got = 0, r;
	int fd, found = 0;

	fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		while (got < (ssize_t)sizeof buf - 1) {
			r = read(fd, buf + got, sizeof buf - 1 - (size_t)got);
			if (r <= 0)
				break;
			got += r;
		}
		close(fd);
	}
	buf[got] = '\0';
	for (ssize_t i = 0; i < got; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !found; k++)
		found = strstr(buf, opts[k]) != NULL ||
			(node_options != NULL && strstr(node_options, opts[k]) != NULL);
	return found;
}

void shim_node_init(void)
{
	const char *off = getenv("TOKSHIM_NODE_KEYLOG");
	const char *old = getenv("NODE_OPTIONS");
	char *next = NULL;

	if (off != NULL && strcmp(off, "off") == 0)
		return;
	if (dlsym(RTLD_DEFAULT, "node_module_register") == NULL)
		return; /* not node */
	if ((old != NULL && strlen(old) > NODE_OPTIONS_MAX) || node_refuses_script(old) ||
	    tlsdec_crypto_resolve(&crypto, RTLD_DEFAULT) != 0)
		return;
	keys = calloc(KEYS_MAX, sizeof(*keys));
	if (keys == NULL)
		return;
	if (keylog_dir_make(old) != 0)
		goto free_keys;
	/* First: the script puts NODE_OPTIONS back before the user's own preloads run. */
	if (asprintf(&next, "--require=%s%s%s", script_path, old != NULL && old[0] ? " " : "",
		     old != NULL ? old : "") < 0) {
		next = NULL;
		goto remove_dir;
	}
	if (setenv("NODE_OPTIONS", next, 1) != 0)
		goto remove_dir;
	shim_node_tls = 1;
	goto out;
remove_dir:
	close(keylog_fd);
	keylog_fd = -1;
	keylog_dir_remove();
free_keys:
	free(keys);
	keys = NULL;
out:
	free(next);
}

/* The folder goes with the process that made it (not with a forked child). */
__attribute__((destructor)) static void shim_node_fini(void)
{
	if (keylog_dir[0] != '\0' && keylog_owner == getpid())
		keylog_dir_remove();
}
