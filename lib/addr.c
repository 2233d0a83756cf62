/*
 * Addresses to connect to: lookup on a thread of its own (getaddrinfo
 * blocks, and process() must not), the RFC 8305 order in which they are
 * raced, and their printable form.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natter-int.h"

void natter__addr_format(const struct natter__addr *a, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)sa;
		snprintf(buf, size, "%.*s", (int)sizeof(un->sun_path),
		         un->sun_path);
	} else {
		snprintf(buf, size, "?");
	}
}

int natter__addr_unix(struct natter__addr *a, const char *path)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
	size_t len = strlen(path);

	if (!len || len >= sizeof(un->sun_path))
		return NATTER_EINVAL;
	memset(a, 0, sizeof(*a));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, len + 1);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

size_t natter__addr_from_ai(const struct addrinfo *ai, struct natter__addr *a,
                            size_t max)
{
	size_t n = 0;

	for (; ai && n < max; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(a[n].ss))
			continue;
		memset(&a[n], 0, sizeof(a[n]));
		memcpy(&a[n].ss, ai->ai_addr, ai->ai_addrlen);
		a[n].len = (socklen_t)ai->ai_addrlen;
		n++;
	}
	return n;
}

bool natter__port_valid(const char *s)
{
	unsigned long v = 0;
	size_t i = 0;

	/* getaddrinfo() would take "99999" modulo 65536 and "0" as is */
	for (; s[i] >= '0' && s[i] <= '9' && i < 6; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	return i > 0 && !s[i] && v >= 1 && v <= 65535;
}

static int fam(const struct natter__addr *a)
{
	return a->ss.ss_family;
}

static bool same(const struct natter__addr *a, const struct natter__addr *b)
{
	return a->len == b->len && !memcmp(&a->ss, &b->ss, a->len);
}

size_t natter__addr_order(struct natter__addr *a, size_t n, int family)
{
	struct natter__addr first[NATTER__ADDRS_MAX], other[NATTER__ADDRS_MAX];
	size_t nf = 0, no = 0, k = 0;
	int want = 0, lead;

	if (family == NATTER_FAMILY_IPV6_ONLY)
		want = AF_INET6;
	else if (family == NATTER_FAMILY_IPV4_ONLY)
		want = AF_INET;
	if (family == NATTER_FAMILY_PREFER_IPV6)
		lead = AF_INET6;
	else if (family == NATTER_FAMILY_PREFER_IPV4)
		lead = AF_INET;
	else
		lead = n ? fam(&a[0]) : AF_INET6;
	if (n > NATTER__ADDRS_MAX)
		n = NATTER__ADDRS_MAX;

	/* split by family, keeping the resolver's order within each */
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		if (want && fam(&a[i]) != want)
			continue;
		for (size_t j = 0; j < i && !dup; j++)
			dup = same(&a[i], &a[j]);
		if (dup)
			continue;
		if (fam(&a[i]) == lead)
			first[nf++] = a[i];
		else
			other[no++] = a[i];
	}
	/* then alternate, the leading family first (First Address Family
	 * Count of 1) */
	for (size_t i = 0; i < nf || i < no; i++) {
		if (i < nf)
			a[k++] = first[i];
		if (i < no)
			a[k++] = other[i];
	}
	return k;
}

/* ---- lookup on a thread ---- */

struct natter__resolve {
	pthread_mutex_t lock; /* guards done, abandoned, res, gai_err */
	bool done, abandoned;
	struct addrinfo *res;
	int gai_err;
	int wake_fd; /* the client's eventfd; only written if not abandoned */
	int ai_family;
	char *host, *port;
};

static void job_free(struct natter__resolve *j)
{
	if (j->res)
		freeaddrinfo(j->res);
	pthread_mutex_destroy(&j->lock);
	free(j->host);
	free(j->port);
	free(j);
}

static void *resolve_main(void *arg)
{
	struct natter__resolve *j = arg;
	struct addrinfo hints = {0}, *res = NULL;

	hints.ai_family = j->ai_family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* no AI_ADDRCONFIG: it can hide ::1 on hosts with only loopback
	 * IPv6, and a family that is not there fails fast anyway */
	int rc = getaddrinfo(j->host, j->port, &hints, &res);

	pthread_mutex_lock(&j->lock);
	if (j->abandoned) {
		pthread_mutex_unlock(&j->lock);
		if (res)
			freeaddrinfo(res);
		job_free(j);
		return NULL;
	}
	j->done = true;
	j->res = rc ? NULL : res;
	j->gai_err = rc;
	uint64_t one = 1;
	ssize_t w = write(j->wake_fd, &one, sizeof(one));
	(void)w; /* an eventfd at its maximum is awake anyway */
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

int natter__resolve_start(struct natter__resolve **job, const char *host,
                          const char *port, int ai_family, int wake_fd)
{
	struct natter__resolve *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t t;
	int rc = NATTER_ENOMEM;

	if (!j)
		return NATTER_ENOMEM;
	pthread_mutex_init(&j->lock, NULL);
	j->wake_fd = wake_fd;
	j->ai_family = ai_family;
	j->host = strdup(host);
	j->port = strdup(port);
	if (!j->host || !j->port || pthread_attr_init(&attr))
		goto fail;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int err = pthread_create(&t, &attr, resolve_main, j);
	pthread_attr_destroy(&attr);
	if (err)
		goto fail;
	*job = j;
	return 0;
fail:
	job_free(j);
	return rc;
}

bool natter__resolve_done(struct natter__resolve *job, struct addrinfo **res,
                          int *gai_err)
{
	pthread_mutex_lock(&job->lock);
	bool done = job->done;
	if (done) {
		*res = job->res;
		*gai_err = job->gai_err;
		job->res = NULL;
	}
	pthread_mutex_unlock(&job->lock);
	return done;
}

void natter__resolve_abandon(struct natter__resolve *job)
{
	if (!job)
		return;
	pthread_mutex_lock(&job->lock);
	bool done = job->done;
	job->abandoned = true;
	pthread_mutex_unlock(&job->lock);
	/* done: the thread is past its last touch of the job; else it
	 * frees the job itself when getaddrinfo returns */
	if (done)
		job_free(job);
}
