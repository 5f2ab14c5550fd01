/*
 * conns.c - the shim's connection tables: TLS connections keyed by their SSL* (a TLS stack may
 * run over memory BIOs with no descriptor at all), plaintext TCP sockets keyed by descriptor.
 *
 * The descriptor table is what keeps read() and write() cheap for everything that is not a
 * TCP socket we care about: one bounds check and one atomic load. A socket enters it only at
 * connect(); it leaves at close(), or is marked done as soon as its first bytes show it carries
 * TLS (the SSL hooks see that traffic in plaintext) or something that is not HTTP/1.x.
 *
 * Locks: a table lock only around lookups and inserts; a lock per connection around feeding
 * its bytes. Neither is ever held across a real I/O call of the agent.
 */
#include "shim/shim.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FD_TRACK_MAX 65536
#define SSL_BUCKETS 1024

struct tconn {
	pthread_mutex_t lock;
	struct capture_conn *cap; /* created on the first bytes */
	int done;                 /* atomic: nothing more to look at on this connection */
	int tls;
	int peer_known;
	void *ssl;                /* key in the SSL table */
	struct shim_node_conn *node; /* node's TLS on this socket, decrypted (nodetls.c) */
	struct tconn *next;       /* SSL table chain */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

static struct tconn *fd_table[FD_TRACK_MAX];
static struct tconn *ssl_table[SSL_BUCKETS];
static pthread_mutex_t ssl_table_lock = PTHREAD_MUTEX_INITIALIZER;
/* Node: held by the key log reader while it tries sockets again, and by whoever frees a socket
 * with a decryptor, so the reader never holds one that is being freed. Order: node_lock, then
 * a connection's lock. node_fd_max: the highest descriptor that ever had a decryptor. */
static pthread_mutex_t node_lock = PTHREAD_MUTEX_INITIALIZER;
static int node_fd_max = -1;

static struct tconn *tconn_new(int tls)
{
	struct tconn *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->tls = tls;
	return t;
}

/*
 * Counts the connection states freed: a thread's memory of an SSL* whose connection is done
 * (ssl_done_seen) holds only while no state was freed since, as a freed SSL*'s address may come
 * back for a new connection.
 */
static unsigned long tconn_frees;
static __thread struct {
	void *ssl;
	unsigned long frees;
} ssl_done_seen __attribute__((tls_model("initial-exec")));

static void tconn_free(struct tconn *t)
{
	int node;

	if (t == NULL)
		return;
	__atomic_add_fetch(&tconn_frees, 1, __ATOMIC_RELEASE);
	node = t->node != NULL;
	if (node)
		pthread_mutex_lock(&node_lock);
	capture_conn_free(t->cap);
	shim_node_conn_free(t->node);
	pthread_mutex_destroy(&t->lock);
	free(t);
	if (node)
		pthread_mutex_unlock(&node_lock);
}

static int tconn_done(struct tconn *t)
{
	return __atomic_load_n(&t->done, __ATOMIC_RELAXED);
}

/* Feeds plaintext to the capture; called with the connection's lock held and shim_busy set. */
static void tconn_feed_locked(struct tconn *t, enum capture_dir dir, const struct iovec *iov,
			      int iovcnt, size_t len)
{
	int i;

	if (t->done)
		return;
	if (t->cap == NULL) {
		t->cap = capture_conn_new(shim_config(), t->peer_known ? (struct sockaddr *)&t->peer
								      : NULL,
					  t->peer_len, t->tls, shim_sink_emit, NULL);
		if (t->cap == NULL) {
			shim_sink_drop(CAPTURE_DROP_NOMEM);
			__atomic_store_n(&t->done, 1, __ATOMIC_RELAXED);
			return;
		}
	}
	for (i = 0; i < iovcnt && len > 0; i++) {
		size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;

		if (n == 0)
			continue;
		if (capture_conn_feed(t->cap, dir, iov[i].iov_base, n) != 0) {
			capture_conn_free(t->cap);
			t->cap = NULL;
			__atomic_store_n(&t->done, 1, __ATOMIC_RELAXED);
			break;
		}
		len -= n;
	}
}

/* shim_node_plain_fn: node's decrypted bytes, fed as any TLS plaintext. */
static void tconn_plain(void *owner, enum capture_dir dir, const void *data, size_t len)
{
	struct iovec iov = { (void *)data, len };

	tconn_feed_locked(owner, dir, &iov, 1, len);
}

/* Feeds bytes under the connection's lock (node's ciphertext through its decryptor). */
static void tconn_feed(struct tconn *t, enum capture_dir dir, const struct iovec *iov, int iovcnt,
		       size_t len)
{
	pthread_mutex_lock(&t->lock);
	if (t->node == NULL)
		tconn_feed_locked(t, dir, iov, iovcnt, len);
	else if (!t->done && shim_node_conn_feed(t->node, dir, iov, iovcnt, len) != 0)
		__atomic_store_n(&t->done, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&t->lock);
}

/* Bytes moved inside libcurl: the connection is libcurl's, captured by its hooks at the HTTP
 * layer (shim.h, shim_curl_depth). Marks it done for good and says so. */
static int tconn_curl_owned(struct tconn *t)
{
	if (shim_curl_depth == 0)
		return 0;
	__atomic_store_n(&t->done, 1, __ATOMIC_RELAXED);
	return 1;
}

static void tconn_eof(struct tconn *t)
{
	pthread_mutex_lock(&t->lock);
	if (t->node != NULL && !t->done && shim_node_conn_retry(t->node) != 0)
		__atomic_store_n(&t->done, 1, __ATOMIC_RELAXED);
	if (t->cap != NULL)
		capture_conn_eof(t->cap);
	pthread_mutex_unlock(&t->lock);
}

/* ---- TLS connections -------------------------------------------------------------------- */

static unsigned ssl_bucket(const void *ssl)
{
	uintptr_t v = (uintptr_t)ssl;

	return (unsigned)(((v >> 4) * 0x9E3779B97F4A7C15ull) >> 54) % SSL_BUCKETS;
}

/* Finds (or with create, adds) the state of an SSL*; NULL when absent or out of memory. */
static struct tconn *ssl_lookup(void *ssl, int create, int unlink)
{
	unsigned b = ssl_bucket(ssl);
	struct tconn *t, **pp;

	pthread_mutex_lock(&ssl_table_lock);
	for (pp = &ssl_table[b]; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->ssl == ssl)
			break;
	}
	t = *pp;
	if (t != NULL && unlink) {
		*pp = t->next;
	} else if (t == NULL && create) {
		t = tconn_new(1);
		if (t != NULL) {
			t->ssl = ssl;
			t->next = ssl_table[b];
			ssl_table[b] = t;
		}
	}
	pthread_mutex_unlock(&ssl_table_lock);
	return t;
}

int shim_tls_done(const void *ssl)
{
	return ssl != NULL && ssl_done_seen.ssl == ssl &&
	       ssl_done_seen.frees == __atomic_load_n(&tconn_frees, __ATOMIC_ACQUIRE);
}

void shim_tls_data(void *ssl, int fd, enum capture_dir dir, const void *data, size_t len)
{
	unsigned long frees = __atomic_load_n(&tconn_frees, __ATOMIC_ACQUIRE);
	struct tconn *t;
	struct iovec iov = { (void *)data, len };

	shim_busy = 1;
	t = ssl_lookup(ssl, 1, 0);
	if (t != NULL && tconn_done(t)) {
		ssl_done_seen.ssl = ssl;
		ssl_done_seen.frees = frees;
	}
	if (t == NULL || tconn_done(t) || tconn_curl_owned(t))
		goto out;
	if (!t->peer_known && fd >= 0) {
		socklen_t n = sizeof(t->peer);

		if (getpeername(fd, (struct sockaddr *)&t->peer, &n) == 0) {
			t->peer_len = n;
			t->peer_known = 1;
		}
	}
	tconn_feed(t, dir, &iov, 1, len);
out:
	shim_busy = 0;
}

void shim_tls_end(void *ssl, int free_state)
{
	struct tconn *t;

	shim_busy = 1;
	t = ssl_lookup(ssl, 0, free_state);
	if (t != NULL) {
		tconn_eof(t);
		if (free_state)
			tconn_free(t);
	}
	shim_busy = 0;
}

/* ---- plaintext sockets ------------------------------------------------------------------ */

int shim_fd_tracked(int fd)
{
	return fd >= 0 && fd < FD_TRACK_MAX &&
	       __atomic_load_n(&fd_table[fd], __ATOMIC_ACQUIRE) != NULL;
}

void shim_fd_connected(int fd, const struct sockaddr *peer, socklen_t len)
{
	struct tconn *t, *old;
	int type = 0;
	socklen_t tl = sizeof(type);

	if (fd < 0 || fd >= FD_TRACK_MAX || peer == NULL || len > sizeof(t->peer))
		return;
	if (peer->sa_family != AF_INET && peer->sa_family != AF_INET6)
		return;
	shim_busy = 1;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
		goto out;
	t = tconn_new(0);
	if (t == NULL)
		goto out;
	memcpy(&t->peer, peer, len);
	t->peer_len = len;
	t->peer_known = 1;
	old = __atomic_exchange_n(&fd_table[fd], t, __ATOMIC_ACQ_REL);
	tconn_free(old); /* a descriptor reused without our seeing its close */
out:
	shim_busy = 0;
}

/* A socket's first byte out starts a TLS handshake: node's decryptor, else 0x16 marks it done.
 * 0, or -1 when nothing here will follow it. */
static int tconn_tls_start(struct tconn *t, int fd)
{
	int max;

	if (!shim_node_tls)
		return -1;
	pthread_mutex_lock(&t->lock);
	t->tls = 1;
	t->node = shim_node_conn_new(tconn_plain, t);
	pthread_mutex_unlock(&t->lock);
	max = __atomic_load_n(&node_fd_max, __ATOMIC_RELAXED);
	while (fd > max &&
	       !__atomic_compare_exchange_n(&node_fd_max, &max, fd, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
	return t->node != NULL ? 0 : -1;
}

void shim_conns_node_retry(void)
{
	int max = __atomic_load_n(&node_fd_max, __ATOMIC_RELAXED);
	struct tconn *t;

	pthread_mutex_lock(&node_lock);
	for (int fd = 0; fd <= max; fd++) {
		t = __atomic_load_n(&fd_table[fd], __ATOMIC_ACQUIRE);
		if (t == NULL)
			continue;
		pthread_mutex_lock(&t->lock);
		if (t->node != NULL && !t->done && shim_node_conn_waiting(t->node) &&
		    shim_node_conn_retry(t->node) != 0)
			__atomic_store_n(&t->done, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&t->lock);
	}
	pthread_mutex_unlock(&node_lock);
}

static struct tconn *fd_conn(int fd)
{
	struct tconn *t;

	if (fd < 0 || fd >= FD_TRACK_MAX)
		return NULL;
	t = __atomic_load_n(&fd_table[fd], __ATOMIC_ACQUIRE);
	return t != NULL && !tconn_done(t) ? t : NULL;
}

int shim_fd_live(int fd)
{
	return fd_conn(fd) != NULL;
}

void shim_fd_data_iov(int fd, enum capture_dir dir, const struct iovec *iov, int iovcnt,
		      size_t len)
{
	struct tconn *t = fd_conn(fd);
	const unsigned char *first;

	if (t == NULL || len == 0 || tconn_curl_owned(t))
		return;
	shim_busy = 1;
	/* A TLS handshake record (0x16) as the first byte out: the SSL hooks own this traffic,
	 * except in node, whose TLS they cannot see: there its records are opened here. */
	first = iovcnt > 0 && iov[0].iov_len > 0 ? iov[0].iov_base : NULL;
	if (t->cap == NULL && t->node == NULL && dir == CAPTURE_OUT && first != NULL &&
	    first[0] == 0x16 && tconn_tls_start(t, fd) != 0)
		__atomic_store_n(&t->done, 1, __ATOMIC_RELAXED);
	else
		tconn_feed(t, dir, iov, iovcnt, len);
	shim_busy = 0;
}

void shim_fd_data(int fd, enum capture_dir dir, const void *data, size_t len)
{
	struct iovec iov = { (void *)data, len };

	shim_fd_data_iov(fd, dir, &iov, 1, len);
}

void shim_fd_end(int fd, int closing)
{
	struct tconn *t;

	if (fd < 0 || fd >= FD_TRACK_MAX)
		return;
	shim_busy = 1;
	if (closing)
		t = __atomic_exchange_n(&fd_table[fd], NULL, __ATOMIC_ACQ_REL);
	else
		t = __atomic_load_n(&fd_table[fd], __ATOMIC_ACQUIRE);
	if (t != NULL) {
		tconn_eof(t);
		if (closing)
			tconn_free(t);
	}
	shim_busy = 0;
}

void shim_conns_atfork_child(void)
{
	/* Another thread of the parent may have held them at the fork. */
	pthread_mutex_init(&ssl_table_lock, NULL);
	pthread_mutex_init(&node_lock, NULL);
}
