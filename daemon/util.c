/*
 * Stateless helpers: address conversion and formatting, clocks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "util.h"

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};

void nt_peer_from_sockaddr(struct nt_peer *p, const struct sockaddr *sa,
                           socklen_t len)
{
	memset(p, 0, sizeof(*p));
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;
		p->family = AF_INET;
		p->port = ntohs(in->sin_port);
		memcpy(p->addr, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 &&
	           len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		p->port = ntohs(in6->sin6_port);
		if (!memcmp(in6->sin6_addr.s6_addr, v4mapped_prefix, 12)) {
			p->family = AF_INET;
			memcpy(p->addr, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			p->family = AF_INET6;
			memcpy(p->addr, in6->sin6_addr.s6_addr, 16);
		}
	} else {
		p->family = AF_UNIX;
	}
}

void nt_peer_format(const struct nt_peer *p, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	switch (p->family) {
	case AF_INET:
		inet_ntop(AF_INET, p->addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, p->port);
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, p->addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, p->port);
		break;
	default:
		snprintf(buf, size, "unix");
		break;
	}
}

void nt_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                        size_t size)
{
	if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)sa;
		size_t n = len > offsetof(struct sockaddr_un, sun_path)
		               ? len - offsetof(struct sockaddr_un, sun_path)
		               : 0;
		if (n == 0 || un->sun_path[0] == '\0')
			snprintf(buf, size, "unix");
		else
			snprintf(buf, size, "%.*s",
			         (int)strnlen(un->sun_path, n), un->sun_path);
		return;
	}
	/* keep v4-mapped addresses as they are: this shows what was bound */
	char ip[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, size, "family %d", sa->sa_family);
	}
}

uint64_t nt_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t nt_now_ms(void)
{
	return nt_now_us() / 1000u;
}
