/*
 * hooks_gnutls.c - GnuTLS's plaintext read and write paths (Debian's wget, programs on
 * libcurl3-gnutls, anything else linked with libgnutls).
 *
 * gnutls_record_send / gnutls_record_recv carry a session's plaintext; the session pointer keys
 * the connection in the same table as OpenSSL's SSL* (conns.c), so everything after the hook
 * (HTTP/1.1 or HTTP/2, the exchange, the record) is shared. The same rules as hooks_ssl.c:
 * the real function is called exactly once and its result returned unchanged; only bytes really
 * moved (a return > 0) are looked at; 0 from a read is the peer's close; gnutls_bye and
 * gnutls_deinit end the connection (deinit before the real call: afterwards the pointer may be
 * a new session's). A send retried after GNUTLS_E_AGAIN with NULL data (allowed by GnuTLS) moves
 * bytes we cannot see: they are not counted.
 *
 * The shim never links libgnutls: the real functions come from the copy the process loaded,
 * found by name like libssl's (real.c).
 */
#include "shim/shim.h"

#include <errno.h>

typedef struct gnutls_session_int *gnutls_session_t;

static void *real_send, *real_recv, *real_bye, *real_deinit, *real_get_int;

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

SHIM_EXPORT ssize_t gnutls_record_send(gnutls_session_t s, const void *data, size_t n)
{
	ssize_t (*fn)(gnutls_session_t, const void *, size_t) =
		GNUTLS(real_send, "gnutls_record_send");
	ssize_t ret;
	int saved;

	if (fn == NULL) {
		errno = ENOSYS;
		return -1;
	}
	ret = fn(s, data, n);
	if (ret > 0 && data != NULL && (size_t)ret <= n && !shim_busy) {
		saved = errno;
		shim_tls_data(s, session_fd(s), CAPTURE_OUT, data, (size_t)ret);
		errno = saved;
	}
	return ret;
}

SHIM_EXPORT ssize_t gnutls_record_recv(gnutls_session_t s, void *data, size_t n)
{
	ssize_t (*fn)(gnutls_session_t, void *, size_t) = GNUTLS(real_recv, "gnutls_record_recv");
	ssize_t ret;
	int saved;

	if (fn == NULL) {
		errno = ENOSYS;
		return -1;
	}
	ret = fn(s, data, n);
	if (shim_busy || ret < 0)
		return ret;
	saved = errno;
	if (ret > 0 && (size_t)ret <= n)
		shim_tls_data(s, session_fd(s), CAPTURE_IN, data, (size_t)ret);
	else if (ret == 0 && n > 0)
		shim_tls_end(s, 0);
	errno = saved;
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
	ret = fn(s, how);
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
	errno = saved;
	if (fn != NULL)
		fn(s);
}
