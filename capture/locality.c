/*
 * locality.c - is a call local or cloud? The rule of DESIGN.md, in order: a host the user
 * listed in TOKSHIM_LOCAL_HOSTS is local; a known cloud provider's domain is cloud whatever it
 * resolves to (tests and corporate proxies point those names at local addresses); otherwise a
 * loopback, private or link-local peer is local; anything else is cloud.
 */
#include "capture/capture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

static int in_list(const char *host, const char *list)
{
	size_t hl = strlen(host);
	const char *p = list;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == hl && strncasecmp(p, host, n) == 0)
			return 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

static int ipv4_is_local(uint32_t a /* host order */)
{
	return (a >> 24) == 127 ||          /* loopback */
	       (a >> 24) == 10 ||           /* RFC 1918 */
	       (a >> 20) == 0xac1 ||        /* 172.16.0.0/12 */
	       (a >> 16) == 0xc0a8 ||       /* 192.168.0.0/16 */
	       (a >> 16) == 0xa9fe ||       /* 169.254.0.0/16 link-local */
	       a == 0;
}

static int ipv6_is_local(const struct in6_addr *a)
{
	const uint8_t *b = a->s6_addr;
	uint32_t v4;

	if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a))
		return 1;
	if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 unique local */
		return 1;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		memcpy(&v4, b + 12, 4);
		return ipv4_is_local(ntohl(v4));
	}
	return 0;
}

static int sockaddr_is_local(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ipv4_is_local(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6)
		return ipv6_is_local(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return sa->sa_family == AF_UNIX;
}

static int host_literal_is_local(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return ipv4_is_local(ntohl(a4.s_addr));
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return ipv6_is_local(&a6);
	return 0;
}

int capture_is_local(const char *host, const struct sockaddr *peer, const char *local_hosts,
		     int known_cloud)
{
	if (local_hosts != NULL && in_list(host, local_hosts))
		return 1;
	if (known_cloud)
		return 0;
	if (peer != NULL && peer->sa_family != AF_UNSPEC)
		return sockaddr_is_local(peer);
	return host_literal_is_local(host);
}
