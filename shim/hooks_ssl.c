/*
 * hooks_ssl.c - OpenSSL's plaintext read and write paths.
 *
 * SSL_read/SSL_write (curl) and SSL_read_ex/SSL_write_ex (Python) give the plaintext of a TLS
 * connection. Only bytes that were really moved are looked at: a call that returns <= 0 leaves
 * junk in the buffer. SSL_peek is not hooked: peeked bytes are read again later and must not
 * count twice. SSL_shutdown, a clean close from the peer and SSL_free end the connection.
 *
 * The shim never links libssl (DESIGN.md): SSL is an opaque type here, and the real functions
 * come from the copy the process already has (real.c).
 */
#include "shim/shim.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>

typedef struct ssl_st SSL;

#define SSL_ERROR_WANT_READ 2
#define SSL_ERROR_WANT_WRITE 3
#define SSL_ERROR_SYSCALL 5
#define SSL_ERROR_ZERO_RETURN 6

static void *real_read, *real_write, *real_read_ex, *real_write_ex;
static void *real_shutdown, *real_free, *real_get_error, *real_get_fd;

static int ssl_fd(SSL *s)
{
	int (*get_fd)(const SSL *) = SHIM_REAL(real_get_fd, shim_real_ssl, "SSL_get_fd");

	return get_fd ? get_fd(s) : -1;
}

/* A read that returned ret <= 0: did the peer close the connection? */
static int ssl_read_eof(SSL *s, int ret)
{
	int (*get_error)(const SSL *, int) =
		SHIM_REAL(real_get_error, shim_real_ssl, "SSL_get_error");
	int e;

	if (get_error == NULL)
		return 0;
	e = get_error(s, ret);
	return e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ret == 0);
}

static void after_read(SSL *s, int ok, const void *buf, size_t n, int ret)
{
	int saved = errno;

	/* A download the capture has let go of: one comparison per read, not a lookup. */
	if (ok && n > 0 && !shim_tls_done(s))
		shim_tls_data(s, ssl_fd(s), CAPTURE_IN, buf, n);
	else if (!ok && ssl_read_eof(s, ret))
		shim_tls_end(s, 0);
	errno = saved;
}

static void after_write(SSL *s, const void *buf, size_t n)
{
	int saved = errno;
	struct iovec iov = { (void *)buf, n };

	shim_tls_data(s, ssl_fd(s), CAPTURE_OUT, buf, n);
	if (__atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED))
		shim_gate_sent(s, -1, &iov, 1, n);
	errno = saved;
}

/* shim_gate_io.send: one real SSL_write of held bytes, and what to wait for when it must. */
static long ssl_gate_send(const struct shim_gate_io *io, const char *p, size_t n, short *events)
{
	int (*fn)(SSL *, const void *, int) = SHIM_REAL(real_write, shim_real_ssl, "SSL_write");
	int (*get_error)(const SSL *, int) =
		SHIM_REAL(real_get_error, shim_real_ssl, "SSL_get_error");
	int ret, e;

	if (fn == NULL)
		return -1;
	/* A retry after WANT_WRITE passes the same buffer and length, as OpenSSL requires. */
	ret = fn(io->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
	if (ret <= 0 && get_error != NULL) {
		e = get_error(io->ssl, ret);
		*events = e == SSL_ERROR_WANT_WRITE ? POLLOUT
			  : e == SSL_ERROR_WANT_READ ? POLLIN : 0;
	}
	return ret;
}

/* The budget gate's look at a write (docs/budgets.md): SHIM_GATE_DONE when it took it. */
static int ssl_gate_write(SSL *s, const void *buf, size_t n, long *ret)
{
	struct shim_gate_io io = { s, ssl_fd(s), ssl_gate_send };
	struct iovec iov = { (void *)buf, n };

	return shim_gate_write(&io, &iov, 1, n, ret);
}

/* A 429 the gate holds for this connection, copied into buf: its length, or -1 for none. */
static ssize_t ssl_gate_read(SSL *s, void *buf, size_t n)
{
	struct iovec iov = { buf, n };

	return shim_gate_read(s, -1, &iov, 1, 0);
}

SHIM_EXPORT int SSL_read(SSL *s, void *buf, int num)
{
	int (*fn)(SSL *, void *, int) = SHIM_REAL(real_read, shim_real_ssl, "SSL_read");
	ssize_t got;
	int ret;

	if (shim_gate_reads_on() && !shim_busy && num > 0) {
		got = ssl_gate_read(s, buf, (size_t)num);
		if (got >= 0)
			return (int)got;
	}
	if (fn == NULL) {
		errno = ENOSYS;
		return -1;
	}
	ret = fn(s, buf, num);
	if (!shim_busy)
		after_read(s, ret > 0, buf, ret > 0 ? (size_t)ret : 0, ret);
	return ret;
}

SHIM_EXPORT int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *readbytes)
{
	int (*fn)(SSL *, void *, size_t, size_t *) =
		SHIM_REAL(real_read_ex, shim_real_ssl, "SSL_read_ex");
	ssize_t got;
	int ret;

	if (shim_gate_reads_on() && !shim_busy && num > 0) {
		got = ssl_gate_read(s, buf, num);
		if (got >= 0 && readbytes != NULL)
			*readbytes = (size_t)got;
		if (got >= 0)
			return 1;
	}
	if (fn == NULL) {
		errno = ENOSYS;
		return 0;
	}
	ret = fn(s, buf, num, readbytes);
	if (!shim_busy)
		after_read(s, ret == 1 && readbytes != NULL, buf,
			   ret == 1 && readbytes != NULL ? *readbytes : 0, ret);
	return ret;
}

SHIM_EXPORT int SSL_write(SSL *s, const void *buf, int num)
{
	int (*fn)(SSL *, const void *, int) = SHIM_REAL(real_write, shim_real_ssl, "SSL_write");
	long gret;
	int ret;

	if (shim_gate_writes_on() && !shim_busy && num > 0 &&
	    ssl_gate_write(s, buf, (size_t)num, &gret) == SHIM_GATE_DONE)
		return gret == 0 ? num : (int)gret;
	if (fn == NULL) {
		errno = ENOSYS;
		return -1;
	}
	ret = fn(s, buf, num);
	if (ret > 0 && !shim_busy)
		after_write(s, buf, (size_t)ret);
	return ret;
}

SHIM_EXPORT int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)
{
	int (*fn)(SSL *, const void *, size_t, size_t *) =
		SHIM_REAL(real_write_ex, shim_real_ssl, "SSL_write_ex");
	long gret;
	int ret;

	if (shim_gate_writes_on() && !shim_busy && num > 0 &&
	    ssl_gate_write(s, buf, num, &gret) == SHIM_GATE_DONE) {
		if (gret == 0 && written != NULL)
			*written = num;
		return gret == 0;
	}
	if (fn == NULL) {
		errno = ENOSYS;
		return 0;
	}
	ret = fn(s, buf, num, written);
	if (ret == 1 && written != NULL && *written > 0 && !shim_busy)
		after_write(s, buf, *written);
	return ret;
}

SHIM_EXPORT int SSL_shutdown(SSL *s)
{
	int (*fn)(SSL *) = SHIM_REAL(real_shutdown, shim_real_ssl, "SSL_shutdown");
	int ret, saved;

	if (fn == NULL) {
		errno = ENOSYS;
		return -1;
	}
	ret = fn(s);
	if (!shim_busy) {
		saved = errno;
		shim_tls_end(s, 0);
		errno = saved;
	}
	return ret;
}

SHIM_EXPORT void SSL_free(SSL *s)
{
	void (*fn)(SSL *) = SHIM_REAL(real_free, shim_real_ssl, "SSL_free");
	int saved = errno;

	/* Before the real call: afterwards the pointer may already belong to a new SSL. */
	if (s != NULL && !shim_busy)
		shim_tls_end(s, 1);
	if (s != NULL && !shim_busy && __atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED))
		shim_gate_end(s, -1);
	errno = saved;
	if (fn != NULL)
		fn(s);
}
