/*
 * gnutls_agent.c - an "agent" on GnuTLS's less common record calls: one HTTP/1.1 POST written
 * with gnutls_record_send2 (the head, then the body in two pieces) and its answer read with
 * gnutls_record_recv_seq and gnutls_record_recv_packet in turn (tests/integration/
 * test_gnutls.py).
 *
 *   gnutls_agent [--cork] CA PORT HOST PATH BODYFILE [HEADER …]
 *
 * Connects to 127.0.0.1:PORT, verifies the server as HOST (also its SNI and Host header) with
 * the CA file CA, and prints the whole answer (head and body) as read. With --cork the sends
 * go to a corked session (gnutls_record_cork) and leave together at gnutls_record_uncork.
 * Exit status 0, 1 when the connection or the TLS session failed, 2 on a usage error.
 */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_io.h"

#define HEAD_MAX 8192

static int connect_local(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Every byte of p out with gnutls_record_send2, retried as GnuTLS asks. */
static int send_all(gnutls_session_t s, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = gnutls_record_send2(s, p, n, 0, 0);

		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The answer, to stdout: recv_seq and recv_packet take turns until the server closes. */
static int read_all(gnutls_session_t s)
{
	unsigned char seq[8];
	char buf[1000];
	int turn = 0;

	for (;;) {
		gnutls_packet_t pkt = NULL;
		gnutls_datum_t d;
		ssize_t r;

		if (turn++ % 2 == 0) {
			r = gnutls_record_recv_seq(s, buf, sizeof(buf), seq);
			if (r > 0)
				fwrite(buf, 1, (size_t)r, stdout);
		} else {
			r = gnutls_record_recv_packet(s, &pkt);
			if (r > 0) {
				gnutls_packet_get(pkt, &d, seq);
				fwrite(d.data, 1, d.size, stdout);
			}
			if (pkt != NULL)
				gnutls_packet_deinit(pkt);
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || r > 0)
			continue;
		return r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION ? 0 : -1;
	}
}

int main(int argc, char **argv)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	char head[HEAD_MAX];
	size_t body_len = 0, n;
	char *body;
	int fd = -1, rc = 1, i, cork = argc > 1 && strcmp(argv[1], "--cork") == 0;

	argc -= cork;
	argv += cork;
	if (argc < 6) {
		fprintf(stderr, "usage: gnutls_agent [--cork] CA PORT HOST PATH BODYFILE [HEADER …]\n");
		return 2;
	}
	body = agent_io_slurp(argv[5], &body_len);
	if (body == NULL) {
		fprintf(stderr, "gnutls_agent: cannot read '%s'\n", argv[5]);
		return 2;
	}
	n = (size_t)snprintf(head, sizeof head,
			     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
			     "Connection: close\r\n",
			     argv[4], argv[3], body_len);
	for (i = 6; i < argc && n < sizeof head; i++)
		n += (size_t)snprintf(head + n, sizeof head - n, "%s\r\n", argv[i]);
	if (n + 2 >= sizeof head) {
		fprintf(stderr, "gnutls_agent: headers too long\n");
		goto body_free;
	}
	memcpy(head + n, "\r\n", 3);
	n += 2;
	fd = connect_local(atoi(argv[2]));
	if (fd < 0) {
		perror("gnutls_agent: connect");
		goto body_free;
	}
	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_certificate_set_x509_trust_file(cred, argv[1], GNUTLS_X509_FMT_PEM) <= 0 ||
	    gnutls_init(&s, GNUTLS_CLIENT) < 0 || gnutls_set_default_priority(s) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
	    gnutls_server_name_set(s, GNUTLS_NAME_DNS, argv[3], strlen(argv[3])) < 0)
		goto tls_free;
	gnutls_session_set_verify_cert(s, argv[3], 0);
	gnutls_transport_set_int(s, fd);
	if (gnutls_handshake(s) < 0) {
		fprintf(stderr, "gnutls_agent: handshake failed\n");
		goto tls_free;
	}
	if (cork)
		gnutls_record_cork(s);
	/* the head, then the body in two pieces: three sends for one request */
	if (send_all(s, head, n) != 0 || send_all(s, body, body_len / 2) != 0 ||
	    send_all(s, body + body_len / 2, body_len - body_len / 2) != 0 ||
	    (cork && gnutls_record_uncork(s, GNUTLS_RECORD_WAIT) < 0) || read_all(s) != 0) {
		fprintf(stderr, "gnutls_agent: the exchange failed\n");
		goto bye;
	}
	rc = 0;
bye:
	gnutls_bye(s, GNUTLS_SHUT_WR);
tls_free:
	if (s != NULL)
		gnutls_deinit(s);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	if (fd >= 0)
		close(fd);
body_free:
	free(body);
	return rc;
}
