/*
 * shim.h - what the shim's files share. Nothing here is exported from libtokshim.so: only the
 * hook functions themselves are (SHIM_EXPORT).
 *
 * The rules every hook follows (DESIGN.md, rule 1): call the real function exactly once, return
 * its result and errno unchanged; look at the bytes only after the real call, and only when the
 * calling thread is not already inside the shim (the shim's own I/O is never captured).
 */
#ifndef TOKSHIM_SHIM_H
#define TOKSHIM_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "capture/capture.h"

#define SHIM_EXPORT __attribute__((visibility("default")))

/* Set while a thread runs the shim's own code: its I/O then passes straight through.
 * initial-exec: no allocation on first access, which a hook inside malloc could not afford. */
extern __thread int shim_busy __attribute__((tls_model("initial-exec")));

/* ---- real functions (real.c) ---- */

/* Returns the next definition of a libc symbol after ours (dlsym RTLD_NEXT), cached by caller. */
void *shim_real_libc(const char *name);

/*
 * Returns the real definition of a libssl symbol: RTLD_NEXT when libssl is in the global scope,
 * else the libssl that the process loaded with RTLD_LOCAL (Python does), found among the loaded
 * objects and opened with RTLD_NOLOAD. NULL when no loaded library defines it.
 */
void *shim_real_ssl(const char *name);

/* The same search for any library: lib_prefix is the start of its file name ("libgnutls.so",
 * "libcurl"). NULL when no loaded library defines name. */
void *shim_real_in(const char *lib_prefix, const char *name);

/* Resolves a real function once per process into *slot (an atomic pointer). */
#define SHIM_REAL(slot, resolver, name)                                                     \
	({                                                                                  \
		void *p_ = __atomic_load_n(&(slot), __ATOMIC_ACQUIRE);                      \
		if (p_ == NULL) {                                                           \
			p_ = resolver(name);                                                \
			__atomic_store_n(&(slot), p_, __ATOMIC_RELEASE);                    \
		}                                                                           \
		p_;                                                                         \
	})

/* ---- libcurl (hooks_curl.c) ---- */

/* > 0 while this thread runs inside libcurl (curl_easy_perform, curl_multi_perform …) and not
 * inside one of the program's callbacks: every byte libcurl moves, it moves inside one of its
 * own calls on the calling thread, and its transfers are captured at the HTTP layer by the
 * libcurl hooks. A TLS or socket connection that carries bytes while it is set belongs to
 * libcurl: conns.c marks it done, so those bytes are never counted twice. */
extern __thread int shim_curl_depth __attribute__((tls_model("initial-exec")));

/* ---- configuration and diagnostics (config.c) ---- */

/* The process-wide capture settings, read from the environment on first use. */
const struct capture_config *shim_config(void);

/* Writes one line to TOKSHIM_LOG when it is set (never to the agent's stdout or stderr). */
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the store (sink.c) ---- */

/* capture_emit_fn: appends a finished exchange to the store, counting what it must drop. */
void shim_sink_emit(void *ctx, struct record *rec, const struct payload *pl);

/* capture_drop_fn: counts what the capture gave up on; written with the next record, or at
 * exit when none follows. */
void shim_sink_drop(enum capture_drop reason);

/* ---- connections (conns.c) ---- */

/* Bytes through a TLS connection, keyed by its SSL*. fd is its socket when known (-1 not). */
void shim_tls_data(void *ssl, int fd, enum capture_dir dir, const void *data, size_t len);
/* Did this thread last see ssl's connection done (its bytes no longer wanted), with no
 * connection state freed since? A read hook's test before shim_tls_data. */
int shim_tls_done(const void *ssl);
/* The TLS connection ended (shutdown, close notify, or freed). */
void shim_tls_end(void *ssl, int free_state);

/* A TCP socket connected to peer: its plaintext may be HTTP to a local model server. */
void shim_fd_connected(int fd, const struct sockaddr *peer, socklen_t len);
/* Bytes through a socket; cheap no-op for descriptors that are not tracked TCP sockets. */
void shim_fd_data(int fd, enum capture_dir dir, const void *data, size_t len);
void shim_fd_data_iov(int fd, enum capture_dir dir, const struct iovec *iov, int iovcnt,
		      size_t len);
/* The socket reached end of stream (read returned 0) or is being closed. */
void shim_fd_end(int fd, int closing);
/* Is fd a tracked socket? The fast test every read/write hook makes first. */
int shim_fd_tracked(int fd);
/* Is fd a tracked socket whose bytes are still wanted (not handed to the TLS hooks, not given
 * up)? What a hook tests before passing data on: a TLS download's every read stops here. */
int shim_fd_live(int fd);
/* Node: tries again every socket whose TLS records wait for key log lines (nodetls.c's
 * reader thread calls it when lines came). */
void shim_conns_node_retry(void);

/* ---- Node.js (nodetls.c) ---- */

/* Set once at load when this process is node and a TLS key log is there to read: the one test
 * the socket hooks make before they hand a TLS connection to a decryptor. */
extern int shim_node_tls;

/* Called by the constructor: in node, has node preload the key log script (see nodetls.c). */
void shim_node_init(void);

/* Receives one connection's decrypted application data (called during shim_node_conn_feed or
 * shim_node_conn_retry, with the caller's connection lock held). */
typedef void (*shim_node_plain_fn)(void *owner, enum capture_dir dir, const void *data,
				   size_t len);
struct shim_node_conn;
/* A TLS connection of node's, from its first byte out. NULL when out of memory. */
struct shim_node_conn *shim_node_conn_new(shim_node_plain_fn plain, void *owner);
/* Ciphertext that crossed the socket. Returns 0, or -1 once the connection cannot be followed
 * (then stop feeding). */
int shim_node_conn_feed(struct shim_node_conn *c, enum capture_dir dir, const struct iovec *iov,
			int iovcnt, size_t len);
/* Do records wait for key log lines? */
int shim_node_conn_waiting(const struct shim_node_conn *c);
/* Tries the waiting records again (at the end of the connection, or when lines came).
 * Returns as shim_node_conn_feed. */
int shim_node_conn_retry(struct shim_node_conn *c);
/* NULL is allowed. */
void shim_node_conn_free(struct shim_node_conn *c);

/* ---- budgets (gate.c; docs/budgets.md) ---- */

/* TOKSHIM_BUDGETS names a file (cleared once it proves malformed): the one test every write
 * hook makes. Without budgets it is never set and nothing below runs. */
extern int shim_gate_on;
/* Connections holding a synthesized 429 not yet read: the one test every read hook makes. */
extern int shim_gate_reads;

/* The two tests, as branches predicted never taken. */
static inline int shim_gate_writes_on(void)
{
	return __builtin_expect(__atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED), 0);
}

static inline int shim_gate_reads_on(void)
{
	return __builtin_expect(__atomic_load_n(&shim_gate_reads, __ATOMIC_RELAXED) > 0, 0);
}

enum { SHIM_GATE_PASS, SHIM_GATE_DONE };

/* How the gate writes held bytes for real on one connection. */
struct shim_gate_io {
	void *ssl; /* the SSL*, or NULL for a plaintext socket */
	int fd;    /* the socket (-1 when unknown): polled when a write must wait */
	/* One real write of up to n bytes: returns > 0 bytes written, else <= 0 with *events
	 * set to POLLOUT or POLLIN when the call must be retried once the socket is ready. */
	long (*send)(const struct shim_gate_io *io, const char *p, size_t n, short *events);
};

/*
 * Before a write of n bytes (iov) on a connection: SHIM_GATE_PASS, the hook makes its real call
 * as usual (then calls shim_gate_sent); SHIM_GATE_DONE, the gate took the bytes (held, sent or
 * blocked) and *ret is 0 (the hook reports all n written) or the failing real call's return
 * value (errno set), which the hook returns.
 */
int shim_gate_write(const struct shim_gate_io *io, const struct iovec *iov, int iovcnt,
		    size_t n, long *ret);
/* After a real write the hook made itself: the gate follows a request it let pass. */
void shim_gate_sent(void *ssl, int fd, const struct iovec *iov, int iovcnt, size_t n);
/* A read on a connection: copies a pending 429 into iov and returns its length (peek: leaves
 * it pending), or -1 when there is none (the hook reads for real). */
ssize_t shim_gate_read(void *ssl, int fd, const struct iovec *iov, int iovcnt, int peek);
/* The connection is freed or closed. */
void shim_gate_end(void *ssl, int fd);
/*
 * A whole request known before any of it is sent, from the layer above the wire (libcurl's
 * transfers, hooks_curl.c): authority is its URL's host[:port] (alen bytes), tls its scheme,
 * path its target, body its body (NULL: none). SHIM_GATE_PASS: it may go (not an LLM call,
 * allowed, or not checked); when allowed its estimate is reserved (*resv, else 0) for its
 * record, and the wire gate below lets it pass once without deciding it again. SHIM_GATE_DONE:
 * blocked; the call's record and budget_block event are stored, and *resp is the provider's
 * HTTP/1.1 429 (malloc'd, the caller frees; NULL out of memory), *resp_len its length; the
 * caller answers it itself, and the wire gate lets the request pass once (libcurl sends it to
 * the caller's listener).
 */
int shim_gate_request(const char *authority, size_t alen, int tls, const char *path,
		      size_t plen, const char *body, size_t blen, uint64_t *resv, char **resp,
		      size_t *resp_len);
/* A transfer shim_gate_request decided ended (body as given to it): its reservation resv, if
 * no record settled it (the transfer made none), is released; blocked: the wire gate stops
 * expecting it. */
void shim_gate_request_end(const char *body, size_t blen, uint64_t resv, int blocked);
/* capture's record with budgets on: settles the budgets it falls under (and its reservation). */
void shim_gate_emit(struct record *rec, const struct payload *pl);

struct budget_plan;
/* Reserves plan's estimates in the store (store_budget_reserve). Returns its result. */
int shim_sink_reserve(struct budget_plan *plan, int64_t now_ns, uint64_t *resv, size_t *refused);
void shim_sink_release(uint64_t resv);
/* Appends a record, settling plan (NULL: no budgets) and reservation resv; block < plan->n
 * writes a block event for that budget. */
void shim_sink_emit_budget(struct record *rec, const struct payload *pl,
			   struct budget_plan *plan, uint64_t resv, size_t block);

/* After fork() in the child: locks reset, the store reopened on next use. */
void shim_conns_atfork_child(void);
void shim_sink_atfork_child(void);
void shim_config_atfork_child(void);
void shim_gate_atfork_child(void);
void shim_curl_atfork_child(void);

#endif
