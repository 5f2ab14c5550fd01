/*
 * hooks_gnutls.c - GnuTLS's plaintext read and write paths (Debian's wget, programs on
 * libcurl3-gnutls, anything else linked with libgnutls).
 *
 * gnutls_record_send, gnutls_record_send2 (padding and flags), gnutls_record_recv,
 * gnutls_record_recv_seq (the record's sequence number) and gnutls_record_recv_packet (a buffer
 * GnuTLS owns, read with gnutls_packet_get) carry a session's plaintext; the session pointer
 * keys the connection in the same table as OpenSSL's SSL* (conns.c), so everything after the
 * hook (HTTP/1.1 or HTTP/2, the exchange, the record) is shared. The same rules as hooks_ssl.c:
 * the real function is called exactly once and its result returned unchanged; only bytes really
 * moved (a return > 0) are looked at; 0 from a read is the peer's close; gnutls_bye and
 * gnutls_deinit end the connection (deinit before the real call: afterwards the pointer may be
 * a new session's). A send retried after GNUTLS_E_AGAIN with NULL data (allowed by GnuTLS) moves
 * bytes we cannot see: they are not counted.
 *
 * GnuTLS calls its own exported functions through its PLT (gnutls_record_send calls
 * gnutls_record_send2; gnutls_record_uncork sends what a corked session buffered with
 * gnutls_record_send), so a hooked call made while this thread is already inside one
 * (gnutls_depth) passes straight through: the bytes are counted once, by the outer hook, when
 * the program handed them over. gnutls_record_uncork is hooked for that alone.
 *
 * The budget gate (gate.c, docs/budgets.md) looks at every send as it does at SSL_write: a held
 * or blocked request is reported written without the real call, and the session's next
 * gnutls_record_recv / gnutls_record_recv_seq return the provider-shaped 429. A 429 cannot be
 * handed out as a gnutls_packet_t (GnuTLS allocates those): gnutls_record_recv_packet reads the
 * real session, which the gate shut for reading, and the program sees its end.
 *
 * The shim never links libgnutls: the real functions come from the copy the process loaded,
 * found by name like libssl's (real.c).
 */
#include "shim/shim.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

typedef struct gnutls_session_int *gnutls_session_t;
typedef struct mbuffer_st *gnutls_packet_t;
typedef struct {
	unsigned char *data;
	unsigned int size;
} gnutls_datum_t;

#define GNUTLS_E_AGAIN (-28)
#define GNUTLS_E_INTERRUPTED (-52)

static void *real_send, *real_send2, *real_recv, *real_recv_seq, *real_recv_packet;
static void *real_packet_get, *real_bye, *real_deinit, *real_get_int, *real_direction;
static void *real_uncork;

/* > 0 while this thread is inside a hooked GnuTLS call (see above). */
static __thread int gnutls_depth __attribute__((tls_model("initial-exec")));

#define GNUTLS(slot, name) SHIM_REAL(slot, gnutls_real, name)

static void *gnutls_real(const char *name)
{
	return shim_real_in("libgnutls.so", name);
}

/* The session's socket when it has one (a transport set as an int), for the peer address. */
static int session_fd(gnutls_session_t s)
{
	int (*get_int)(gnutls_session_t) = GNUTLS(real_get_int, "gnutls_transport_get_int");

	return get_int != NULL ? get_int(s) : -1;
}

/* Is this call ours to look at: not the shim's own I/O, not GnuTLS calling itself? */
static int session_watched(void)
{
	return !shim_busy && gnutls_depth == 0;
}

/* The real send: gnutls_record_send2 when two (with pad and flags), else gnutls_record_send. */
static ssize_t send_real(gnutls_session_t s, const void *data, size_t n, size_t pad,
			 unsigned flags, int two)
{
	ssize_t (*fn)(gnutls_session_t, const void *, size_t) =
		GNUTLS(real_send, "gnutls_record_send");
	ssize_t (*fn2)(gnutls_session_t, const void *, size_t, size_t, unsigned) =
		GNUTLS(real_send2, "gnutls_record_send2");
	ssize_t ret;

	if ((two ? (void *)fn2 : (void *)fn) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	gnutls_depth++;
	ret = two ? fn2(s, data, n, pad, flags) : fn(s, data, n);
	gnutls_depth--;
	return ret;
}

/* shim_gate_io.send: one real send of held bytes, and what to wait for when it must. */
static long gnutls_gate_send(const struct shim_gate_io *io, const char *p, size_t n,
			     short *events)
{
	int (*direction)(gnutls_session_t) =
		GNUTLS(real_direction, "gnutls_record_get_direction");
	ssize_t ret = send_real(io->ssl, p, n, 0, 0, 0);

	/* A retry after E_AGAIN passes the same data again, as GnuTLS allows. */
	if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
		*events = direction != NULL && direction(io->ssl) == 0 ? POLLIN : POLLOUT;
	return (long)ret;
}

static ssize_t record_send(gnutls_session_t s, const void *data, size_t n, size_t pad,
			   unsigned flags, int two)
{
	struct iovec iov = { (void *)data, n };
	ssize_t ret;
	long gret;
	int saved;

	if (shim_gate_writes_on() && session_watched() && data != NULL && n > 0) {
		struct shim_gate_io io = { s, session_fd(s), gnutls_gate_send };

		if (shim_gate_write(&io, &iov, 1, n, &gret) == SHIM_GATE_DONE)
			return gret == 0 ? (ssize_t)n : (ssize_t)gret;
	}
	ret = send_real(s, data, n, pad, flags, two);
	if (ret > 0 && data != NULL && (size_t)ret <= n && session_watched()) {
		saved = errno;
		shim_tls_data(s, session_fd(s), CAPTURE_OUT, data, (size_t)ret);
		if (__atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED))
			shim_gate_sent(s, -1, &iov, 1, (size_t)ret);
		errno = saved;
	}
	return ret;
}

/* A 429 the gate holds for this session, copied into data: its length, or -1 for none. */
static ssize_t gate_read(gnutls_session_t s, void *data, size_t n)
{
	struct iovec iov = { data, n };

	if (!shim_gate_reads_on() || !session_watched() || n == 0)
		return -1;
	return shim_gate_read(s, -1, &iov, 1, 0);
}

/* After a real read: len plaintext bytes at data, or (eof) the peer's close. */
static void after_recv(gnutls_session_t s, const void *data, size_t len, int eof)
{
	int saved = errno;

	if (len > 0)
		shim_tls_data(s, session_fd(s), CAPTURE_IN, data, len);
	else if (eof)
		shim_tls_end(s, 0);
	errno = saved;
}

SHIM_EXPORT ssize_t gnutls_record_send(gnutls_session_t s, const void *data, size_t n)
{
	return record_send(s, data, n, 0, 0, 0);
}

SHIM_EXPORT ssize_t gnutls_record_send2(gnutls_session_t s, const void *data, size_t n,
					size_t pad, unsigned flags)
{
	return record_send(s, data, n, pad, flags, 1);
}

/* gnutls_record_recv, or gnutls_record_recv_seq when with_seq. */
static ssize_t record_recv(gnutls_session_t s, void *data, size_t n, unsigned char *seq,
			   int with_seq)
{
	ssize_t (*fn)(gnutls_session_t, void *, size_t) = GNUTLS(real_recv, "gnutls_record_recv");
	ssize_t (*fn_seq)(gnutls_session_t, void *, size_t, unsigned char *) =
		GNUTLS(real_recv_seq, "gnutls_record_recv_seq");
	ssize_t ret = gate_read(s, data, n);
	int watched;

	if (ret >= 0) {
		if (seq != NULL)
			memset(seq, 0, 8); /* the gate's answer is no record of the peer's */
		return ret;
	}
	if ((with_seq ? (void *)fn_seq : (void *)fn) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	watched = session_watched();
	gnutls_depth++;
	ret = with_seq ? fn_seq(s, data, n, seq) : fn(s, data, n);
	gnutls_depth--;
	if (watched)
		after_recv(s, data, ret > 0 && (size_t)ret <= n ? (size_t)ret : 0,
			   ret == 0 && n > 0);
	return ret;
}

SHIM_EXPORT ssize_t gnutls_record_recv(gnutls_session_t s, void *data, size_t n)
{
	return record_recv(s, data, n, NULL, 0);
}

SHIM_EXPORT ssize_t gnutls_record_recv_seq(gnutls_session_t s, void *data, size_t n,
					   unsigned char *seq)
{
	return record_recv(s, data, n, seq, 1);
}

SHIM_EXPORT ssize_t gnutls_record_recv_packet(gnutls_session_t s, gnutls_packet_t *packet)
{
	ssize_t (*fn)(gnutls_session_t, gnutls_packet_t *) =
		GNUTLS(real_recv_packet, "gnutls_record_recv_packet");
	void (*get)(gnutls_packet_t, gnutls_datum_t *, unsigned char *) =
		GNUTLS(real_packet_get, "gnutls_packet_get");
	gnutls_datum_t d = { NULL, 0 };
	ssize_t ret;
	int watched;

	if (fn == NULL) {
		errno = ENOSYS;
		return -1;
	}
	watched = session_watched();
	gnutls_depth++;
	ret = fn(s, packet);
	if (watched && ret > 0 && packet != NULL && *packet != NULL && get != NULL)
		get(*packet, &d, NULL);
	gnutls_depth--;
	if (watched)
		after_recv(s, d.data, d.data != NULL ? d.size : 0, ret == 0);
	return ret;
}

SHIM_EXPORT int gnutls_record_uncork(gnutls_session_t s, unsigned flags)
{
	int (*fn)(gnutls_session_t, unsigned) = GNUTLS(real_uncork, "gnutls_record_uncork");
	int ret;

	if (fn == NULL) {
		errno = ENOSYS;
		return -1;
	}
	gnutls_depth++;
	ret = fn(s, flags);
	gnutls_depth--;
	return ret;
}

SHIM_EXPORT int gnutls_bye(gnutls_session_t s, int how)
{
	int (*fn)(gnutls_session_t, int) = GNUTLS(real_bye, "gnutls_bye");
	int ret, saved;

	if (fn == NULL) {
		errno = ENOSYS;
		return -1;
	}
	gnutls_depth++;
	ret = fn(s, how);
	gnutls_depth--;
	if (!shim_busy) {
		saved = errno;
		shim_tls_end(s, 0);
		errno = saved;
	}
	return ret;
}

SHIM_EXPORT void gnutls_deinit(gnutls_session_t s)
{
	void (*fn)(gnutls_session_t) = GNUTLS(real_deinit, "gnutls_deinit");
	int saved = errno;

	if (s != NULL && !shim_busy)
		shim_tls_end(s, 1);
	if (s != NULL && !shim_busy && __atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED))
		shim_gate_end(s, -1);
	errno = saved;
	if (fn != NULL)
		fn(s);
}
