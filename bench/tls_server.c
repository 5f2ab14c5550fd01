/*
 * tls_server.c - the TLS server `make bench` measures against: fast enough that it is never
 * the bottleneck, so what a figure shows is the client side (with or without the shim).
 *
 *   tls_server PORT CERT.pem KEY.pem
 *
 * Listens on 127.0.0.1:PORT, one thread per connection, HTTP/1.1 keep-alive. Answers
 *   GET /bulk/N                   N bytes of application/octet-stream (a non-LLM download)
 *   POST /v1/chat/completions     a small OpenAI-shaped chat completion with usage
 *   anything else                 404
 * It links libssl (a bench program may; the shim never does). It runs until killed.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* A request head larger than this is refused: the bench clients send well under 1 KiB. */
#define SRV_HEAD_MAX 16384
/* Request bodies are read and thrown away in pieces of this size. */
#define SRV_CHUNK (256 * 1024)

static const char srv_chat_body[] =
	"{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1764044400,"
	"\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"message\":"
	"{\"role\":\"assistant\",\"content\":\"The capital of France is Paris.\"},"
	"\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":27,"
	"\"completion_tokens\":8,\"total_tokens\":35,\"prompt_tokens_details\":"
	"{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}},"
	"\"system_fingerprint\":\"fp_bench\"}";

static SSL_CTX *srv_ctx;
static unsigned char srv_fill[SRV_CHUNK];

/* Reads one request head into buf (NUL-terminated); *have is the bytes read so far, which may
 * run past the head into the body. Returns the head's length, 0 at a clean end, -1 on error. */
static int srv_read_head(SSL *ssl, char *buf, size_t *have)
{
	char *end;
	int n;

	for (;;) {
		buf[*have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end != NULL)
			return (int)(end - buf) + 4;
		if (*have >= SRV_HEAD_MAX - 1)
			return -1;
		n = SSL_read(ssl, buf + *have, (int)(SRV_HEAD_MAX - 1 - *have));
		if (n <= 0)
			return *have == 0 ? 0 : -1;
		*have += (size_t)n;
	}
}

/* Reads and discards the rest of a body of len bytes, of which some already arrived. */
static int srv_skip_body(SSL *ssl, size_t len, size_t already)
{
	static __thread unsigned char sink[SRV_CHUNK];
	int n;

	while (already < len) {
		n = SSL_read(ssl, sink, sizeof(sink));
		if (n <= 0)
			return -1;
		already += (size_t)n;
	}
	return 0;
}

static int srv_write_all(SSL *ssl, const void *p, size_t len)
{
	const unsigned char *c = p;
	int n;

	while (len > 0) {
		n = SSL_write(ssl, c, len > SRV_CHUNK ? SRV_CHUNK : (int)len);
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

static int srv_bulk(SSL *ssl, unsigned long long n)
{
	char head[256];
	int len;

	len = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
		       "\r\nContent-Length: %llu\r\n\r\n", n);
	if (srv_write_all(ssl, head, (size_t)len) != 0)
		return -1;
	while (n > 0) {
		size_t piece = n > SRV_CHUNK ? SRV_CHUNK : (size_t)n;

		if (srv_write_all(ssl, srv_fill, piece) != 0)
			return -1;
		n -= piece;
	}
	return 0;
}

/* Sends the head and body as one buffer, so a chat answer is one TLS record, as a real
 * provider's small answer usually is. */
static int srv_answer(SSL *ssl, const char *status, const char *type, const char *body)
{
	char out[4096];
	int len;

	len = snprintf(out, sizeof(out), "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		       "x-request-id: req_bench\r\n\r\n%s", status, type, strlen(body), body);
	if (len < 0 || (size_t)len >= sizeof(out))
		return -1;
	return srv_write_all(ssl, out, (size_t)len);
}

static size_t srv_content_length(const char *head)
{
	const char *p = strcasestr(head, "\r\ncontent-length:");

	return p == NULL ? 0 : strtoull(p + 17, NULL, 10);
}

static void *srv_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(SRV_HEAD_MAX);
	SSL *ssl = SSL_new(srv_ctx);
	size_t have = 0, body;
	int hlen;

	if (buf == NULL || ssl == NULL)
		goto done;
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		goto done;
	for (;;) {
		hlen = srv_read_head(ssl, buf, &have);
		if (hlen <= 0)
			break;
		body = srv_content_length(buf);
		if (srv_skip_body(ssl, body, have - (size_t)hlen) != 0)
			break;
		/* The bench clients never pipeline: whatever followed the head was its body. */
		have = 0;
		if (strncmp(buf, "GET /bulk/", 10) == 0) {
			if (srv_bulk(ssl, strtoull(buf + 10, NULL, 10)) != 0)
				break;
		} else if (strncmp(buf, "POST /v1/chat/completions ", 26) == 0) {
			if (srv_answer(ssl, "200 OK", "application/json", srv_chat_body) != 0)
				break;
		} else if (srv_answer(ssl, "404 Not Found", "text/plain", "not found\n") != 0) {
			break;
		}
	}
	SSL_shutdown(ssl);
done:
	SSL_free(ssl);
	free(buf);
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	pthread_attr_t attr;
	pthread_t th;
	int lfd, fd, one = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: tls_server PORT CERT.pem KEY.pem\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(srv_fill, 'x', sizeof(srv_fill));
	srv_ctx = SSL_CTX_new(TLS_server_method());
	if (srv_ctx == NULL || SSL_CTX_use_certificate_chain_file(srv_ctx, argv[2]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(srv_ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 128) != 0) {
		perror("tls_server: cannot listen");
		return 1;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("tls_server: accept");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (pthread_create(&th, &attr, srv_conn, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
}
