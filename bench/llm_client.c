/*
 * llm_client.c - the agent `make bench` runs: LLM-shaped calls over one keep-alive TLS
 * connection, each timed from the request's first byte written to the response's last byte
 * read. Links libssl dynamically, as real agents do, so the shim's hooks sit in its path.
 *
 *   llm_client PORT CALLS CA.pem [PROXY_PORT]
 *
 * Connects to 127.0.0.1:PORT (or through the HTTP proxy at 127.0.0.1:PROXY_PORT with
 * CONNECT, for mitmproxy), checks the server's certificate for "localhost" against CA.pem,
 * makes WARMUP untimed calls (the shim opens its store on the first), then CALLS timed ones.
 * Prints one JSON line: calls, seconds, calls_per_s, median_us, p90_us, p99_us, min_us.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define CLI_WARMUP 20
#define CLI_BUF 65536

static const char cli_body[] =
	"{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":"
	"\"You are a helpful assistant. Answer in one sentence.\"},{\"role\":\"user\","
	"\"content\":\"What is the capital of France?\"}],\"temperature\":0.2,"
	"\"max_tokens\":64}";

static double cli_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cli_connect(int port, int proxy_port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char buf[1024];
	int fd, one = 1, n, have = 0;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)(proxy_port ? proxy_port : port));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (proxy_port == 0)
		return fd;
	n = snprintf(buf, sizeof(buf), "CONNECT localhost:%d HTTP/1.1\r\nHost: localhost:%d\r\n\r\n",
		     port, port);
	if (write(fd, buf, (size_t)n) != n)
		goto fail;
	/* The proxy's answer is a head only; read it byte by byte so no TLS byte is eaten. */
	while (have < (int)sizeof(buf) - 1) {
		if (read(fd, buf + have, 1) != 1)
			goto fail;
		have++;
		buf[have] = '\0';
		if (have >= 4 && strcmp(buf + have - 4, "\r\n\r\n") == 0)
			break;
	}
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0 && strncmp(buf, "HTTP/1.0 200", 12) != 0)
		goto fail;
	return fd;
fail:
	perror("llm_client: cannot connect");
	if (fd >= 0)
		close(fd);
	return -1;
}

/* One call: write the request, read the head and the Content-Length body. 0 or -1. */
static int cli_call(SSL *ssl, const char *req, int req_len, char *buf)
{
	int have = 0, n, hlen;
	char *end;
	size_t body;
	const char *cl;

	if (SSL_write(ssl, req, req_len) != req_len)
		return -1;
	for (;;) {
		n = SSL_read(ssl, buf + have, CLI_BUF - 1 - have);
		if (n <= 0)
			return -1;
		have += n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end != NULL)
			break;
		if (have >= CLI_BUF - 1)
			return -1;
	}
	hlen = (int)(end - buf) + 4;
	cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl == NULL || strncmp(buf, "HTTP/1.1 200", 12) != 0)
		return -1;
	body = strtoull(cl + 17, NULL, 10);
	while ((size_t)(have - hlen) < body) {
		n = SSL_read(ssl, buf, CLI_BUF);
		if (n <= 0)
			return -1;
		have += n;
	}
	return 0;
}

static int cli_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	char req[2048], *buf;
	double *lat, t0, start, total;
	int port, calls, proxy_port, fd, req_len, i;
	SSL_CTX *ctx;
	SSL *ssl;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: llm_client PORT CALLS CA.pem [PROXY_PORT]\n");
		return 2;
	}
	port = atoi(argv[1]);
	calls = atoi(argv[2]);
	proxy_port = argc == 5 ? atoi(argv[4]) : 0;
	lat = calloc((size_t)calls, sizeof(*lat));
	buf = malloc(CLI_BUF);
	ctx = SSL_CTX_new(TLS_client_method());
	if (calls <= 0 || lat == NULL || buf == NULL || ctx == NULL ||
	    SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1)
		goto ssl_fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	fd = cli_connect(port, proxy_port);
	if (fd < 0)
		return 1;
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_set1_host(ssl, "localhost");
	if (SSL_connect(ssl) != 1)
		goto ssl_fail;
	req_len = snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\n"
			   "Host: localhost:%d\r\nAuthorization: Bearer sk-bench-not-a-secret\r\n"
			   "Content-Type: application/json\r\nAccept: application/json\r\n"
			   "User-Agent: tokshim-bench/1\r\nContent-Length: %zu\r\n\r\n%s",
			   port, strlen(cli_body), cli_body);
	for (i = 0; i < CLI_WARMUP; i++) {
		if (cli_call(ssl, req, req_len, buf) != 0)
			goto call_fail;
	}
	start = cli_now_us();
	for (i = 0; i < calls; i++) {
		t0 = cli_now_us();
		if (cli_call(ssl, req, req_len, buf) != 0)
			goto call_fail;
		lat[i] = cli_now_us() - t0;
	}
	total = cli_now_us() - start;
	qsort(lat, (size_t)calls, sizeof(*lat), cli_cmp);
	printf("{\"calls\":%d,\"seconds\":%.6f,\"calls_per_s\":%.1f,\"median_us\":%.2f,"
	       "\"p90_us\":%.2f,\"p99_us\":%.2f,\"min_us\":%.2f}\n", calls, total / 1e6,
	       calls / (total / 1e6), lat[calls / 2], lat[calls * 9 / 10], lat[calls * 99 / 100],
	       lat[0]);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	free(lat);
	free(buf);
	return 0;
call_fail:
	fprintf(stderr, "llm_client: call %d failed\n", i);
	return 1;
ssl_fail:
	fprintf(stderr, "llm_client: tls setup failed\n");
	ERR_print_errors_fp(stderr);
	return 1;
}
