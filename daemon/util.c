/*
 * Stateless helpers: address conversion and formatting, clocks; and the
 * latch that lets the main thread wait for the others.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
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

struct nt_latch {
	pthread_mutex_t lock; /* guards left and refs */
	pthread_cond_t cond;  /* signalled when left reaches 0 */
	unsigned left;
	unsigned refs;
};

struct nt_latch *nt_latch_new(unsigned n)
{
	struct nt_latch *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;

	if (!l)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	l->left = n;
	l->refs = n + 1;
	return l;
}

/* drops one reference; the lock is held and released here */
static void latch_put_locked(struct nt_latch *l)
{
	bool last = --l->refs == 0;

	pthread_mutex_unlock(&l->lock);
	if (last) {
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->lock);
		free(l);
	}
}

void nt_latch_done(struct nt_latch *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	if (l->left && --l->left == 0)
		pthread_cond_signal(&l->cond);
	latch_put_locked(l);
}

bool nt_latch_wait(struct nt_latch *l, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	if (!l)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->lock);
	while (l->left && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&l->cond, &l->lock, &ts);
	bool all = l->left == 0;
	latch_put_locked(l);
	return all;
}
