/*
 * hooks_socket.c - plaintext TCP, for local model servers (Ollama on http://127.0.0.1:11434,
 * llama.cpp, vLLM) that agents reach without TLS.
 *
 * These hooks run on every read and write of the process, files and pipes included, so each
 * first asks the one cheap question — is this descriptor a TCP socket we track? — and returns
 * at once when not. Peeked bytes (MSG_PEEK) are not consumed and are not looked at. The
 * fortified variants (__read_chk …) that _FORTIFY_SOURCE builds call are hooked too: they reach
 * the kernel without going through read().
 */
#include "shim/shim.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

static void *real_connect, *real_close;
static void *real_write, *real_send, *real_sendto, *real_sendmsg, *real_writev;
static void *real_read, *real_recv, *real_recvfrom, *real_recvmsg, *real_readv;
static void *real_read_chk, *real_recv_chk, *real_recvfrom_chk;

#define LIBC(slot, name) SHIM_REAL(slot, shim_real_libc, name)

/* Does the budget gate look at writes to fd? One never-taken branch without budgets. */
#define GATED(fd) (shim_gate_writes_on() && !shim_busy && shim_fd_tracked(fd))

/* shim_gate_io.send: one real send of held bytes. MSG_NOSIGNAL: a peer gone is an error the
 * agent's own call reports, never a SIGPIPE raised by bytes the agent believes sent. */
static long fd_gate_send(const struct shim_gate_io *io, const char *p, size_t n, short *events)
{
	ssize_t (*fn)(int, const void *, size_t, int) = LIBC(real_send, "send");
	ssize_t r = fn(io->fd, p, n, MSG_NOSIGNAL);

	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		*events = POLLOUT;
	return r;
}

/* The budget gate's look at a write: 1 when it took the bytes (*ret is the hook's result). */
static int fd_gate_write(int fd, const struct iovec *iov, int iovcnt, ssize_t *ret)
{
	struct shim_gate_io io = { NULL, fd, fd_gate_send };
	size_t n = 0;
	long r;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	if (shim_gate_write(&io, iov, iovcnt, n, &r) != SHIM_GATE_DONE)
		return 0;
	*ret = r == 0 ? (ssize_t)n : -1;
	return 1;
}

/* A 429 the gate holds for fd: 1 when it was copied into iov (*ret its length). */
static int fd_gate_read(int fd, const struct iovec *iov, int iovcnt, int flags, ssize_t *ret)
{
	ssize_t got;

	if (!shim_gate_reads_on() || shim_busy)
		return 0;
	got = shim_gate_read(NULL, fd, iov, iovcnt, flags & MSG_PEEK);
	if (got < 0)
		return 0;
	*ret = got;
	return 1;
}

static void saw_out(int fd, const void *buf, ssize_t ret)
{
	int saved;

	if (ret <= 0 || shim_busy || !shim_fd_tracked(fd))
		return;
	saved = errno;
	shim_fd_data(fd, CAPTURE_OUT, buf, (size_t)ret);
	if (__atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED)) {
		struct iovec iov = { (void *)buf, (size_t)ret };

		shim_gate_sent(NULL, fd, &iov, 1, (size_t)ret);
	}
	errno = saved;
}

static void saw_out_iov(int fd, const struct iovec *iov, int iovcnt, ssize_t ret)
{
	int saved;

	if (ret <= 0 || shim_busy || !shim_fd_tracked(fd))
		return;
	saved = errno;
	shim_fd_data_iov(fd, CAPTURE_OUT, iov, iovcnt, (size_t)ret);
	if (__atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED))
		shim_gate_sent(NULL, fd, iov, iovcnt, (size_t)ret);
	errno = saved;
}

/* ret bytes were read into buf; 0 from a read that asked for bytes is the end of stream. */
static void saw_in(int fd, const void *buf, size_t asked, ssize_t ret, int flags)
{
	int saved;

	if (ret < 0 || shim_busy || (flags & MSG_PEEK) ||
	    !(ret > 0 ? shim_fd_live(fd) : shim_fd_tracked(fd)))
		return;
	saved = errno;
	if (ret > 0)
		shim_fd_data(fd, CAPTURE_IN, buf, (size_t)ret);
	else if (asked > 0)
		shim_fd_end(fd, 0);
	errno = saved;
}

static void saw_in_iov(int fd, const struct iovec *iov, int iovcnt, ssize_t ret, int flags)
{
	int saved;

	if (ret < 0 || shim_busy || (flags & MSG_PEEK) ||
	    !(ret > 0 ? shim_fd_live(fd) : shim_fd_tracked(fd)))
		return;
	saved = errno;
	if (ret > 0)
		shim_fd_data_iov(fd, CAPTURE_IN, iov, iovcnt, (size_t)ret);
	else if (iovcnt > 0)
		shim_fd_end(fd, 0);
	errno = saved;
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int (*fn)(int, const struct sockaddr *, socklen_t) = LIBC(real_connect, "connect");
	int ret = fn(fd, addr, len);
	int saved = errno;

	if (!shim_busy && (ret == 0 || saved == EINPROGRESS) && addr != NULL)
		shim_fd_connected(fd, addr, len);
	if (!shim_busy && __atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED))
		shim_gate_end(NULL, fd); /* a descriptor reused for a new connection */
	errno = saved;
	return ret;
}

SHIM_EXPORT int close(int fd)
{
	int (*fn)(int) = LIBC(real_close, "close");
	int saved = errno;

	/* Before the real close: afterwards the number may already name another file. */
	if (!shim_busy && shim_fd_tracked(fd)) {
		if (__atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED))
			shim_gate_end(NULL, fd);
		shim_fd_end(fd, 1);
	}
	errno = saved;
	return fn(fd);
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	ssize_t (*fn)(int, const void *, size_t) = LIBC(real_write, "write");
	struct iovec iov = { (void *)buf, n };
	ssize_t ret;

	if (GATED(fd) && fd_gate_write(fd, &iov, 1, &ret))
		return ret;
	ret = fn(fd, buf, n);

	saw_out(fd, buf, ret);
	return ret;
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	ssize_t (*fn)(int, const void *, size_t, int) = LIBC(real_send, "send");
	struct iovec iov = { (void *)buf, n };
	ssize_t ret;

	if (GATED(fd) && fd_gate_write(fd, &iov, 1, &ret))
		return ret;
	ret = fn(fd, buf, n, flags);

	saw_out(fd, buf, ret);
	return ret;
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			   const struct sockaddr *addr, socklen_t len)
{
	ssize_t (*fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t) =
		LIBC(real_sendto, "sendto");
	struct iovec iov = { (void *)buf, n };
	ssize_t ret;

	if (GATED(fd) && fd_gate_write(fd, &iov, 1, &ret))
		return ret;
	ret = fn(fd, buf, n, flags, addr, len);

	saw_out(fd, buf, ret);
	return ret;
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t (*fn)(int, const struct msghdr *, int) = LIBC(real_sendmsg, "sendmsg");
	ssize_t ret;

	if (msg != NULL && GATED(fd) && fd_gate_write(fd, msg->msg_iov, (int)msg->msg_iovlen, &ret))
		return ret;
	ret = fn(fd, msg, flags);

	if (msg != NULL)
		saw_out_iov(fd, msg->msg_iov, (int)msg->msg_iovlen, ret);
	return ret;
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t (*fn)(int, const struct iovec *, int) = LIBC(real_writev, "writev");
	ssize_t ret;

	if (iov != NULL && GATED(fd) && fd_gate_write(fd, iov, iovcnt, &ret))
		return ret;
	ret = fn(fd, iov, iovcnt);

	saw_out_iov(fd, iov, iovcnt, ret);
	return ret;
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	ssize_t (*fn)(int, void *, size_t) = LIBC(real_read, "read");
	struct iovec iov = { buf, n };
	ssize_t ret;

	if (fd_gate_read(fd, &iov, 1, 0, &ret))
		return ret;
	ret = fn(fd, buf, n);

	saw_in(fd, buf, n, ret, 0);
	return ret;
}

SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	ssize_t (*fn)(int, void *, size_t, size_t) = LIBC(real_read_chk, "__read_chk");
	struct iovec iov = { buf, n };
	ssize_t ret;

	if (fd_gate_read(fd, &iov, 1, 0, &ret))
		return ret;
	ret = fn(fd, buf, n, buflen);

	saw_in(fd, buf, n, ret, 0);
	return ret;
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	ssize_t (*fn)(int, void *, size_t, int) = LIBC(real_recv, "recv");
	struct iovec iov = { buf, n };
	ssize_t ret;

	if (fd_gate_read(fd, &iov, 1, flags, &ret))
		return ret;
	ret = fn(fd, buf, n, flags);

	saw_in(fd, buf, n, ret, flags);
	return ret;
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	ssize_t (*fn)(int, void *, size_t, size_t, int) = LIBC(real_recv_chk, "__recv_chk");
	struct iovec iov = { buf, n };
	ssize_t ret;

	if (fd_gate_read(fd, &iov, 1, flags, &ret))
		return ret;
	ret = fn(fd, buf, n, buflen, flags);

	saw_in(fd, buf, n, ret, flags);
	return ret;
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			     socklen_t *len)
{
	ssize_t (*fn)(int, void *, size_t, int, struct sockaddr *, socklen_t *) =
		LIBC(real_recvfrom, "recvfrom");
	struct iovec iov = { buf, n };
	ssize_t ret;

	if (fd_gate_read(fd, &iov, 1, flags, &ret))
		return ret;
	ret = fn(fd, buf, n, flags, addr, len);

	saw_in(fd, buf, n, ret, flags);
	return ret;
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				   struct sockaddr *addr, socklen_t *len)
{
	ssize_t (*fn)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *) =
		LIBC(real_recvfrom_chk, "__recvfrom_chk");
	struct iovec iov = { buf, n };
	ssize_t ret;

	if (fd_gate_read(fd, &iov, 1, flags, &ret))
		return ret;
	ret = fn(fd, buf, n, buflen, flags, addr, len);

	saw_in(fd, buf, n, ret, flags);
	return ret;
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t (*fn)(int, struct msghdr *, int) = LIBC(real_recvmsg, "recvmsg");
	ssize_t ret;

	if (msg != NULL && fd_gate_read(fd, msg->msg_iov, (int)msg->msg_iovlen, flags, &ret))
		return ret;
	ret = fn(fd, msg, flags);

	if (msg != NULL)
		saw_in_iov(fd, msg->msg_iov, (int)msg->msg_iovlen, ret, flags);
	return ret;
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t (*fn)(int, const struct iovec *, int) = LIBC(real_readv, "readv");
	ssize_t ret;

	if (iov != NULL && fd_gate_read(fd, iov, iovcnt, 0, &ret))
		return ret;
	ret = fn(fd, iov, iovcnt);

	saw_in_iov(fd, iov, iovcnt, ret, 0);
	return ret;
}
