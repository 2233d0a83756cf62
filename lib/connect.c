/*
 * Happy Eyeballs (RFC 8305): the addresses are tried in their interleaved
 * order, the next one started when the previous attempt has neither
 * connected nor failed within the attempt delay, or at once when it
 * fails. The first to connect wins and every other attempt is closed.
 * The overall deadline is the caller's.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "natter-int.h"

void natter__he_init(struct natter__he *h, int epfd, uint64_t tag, int delay_ms)
{
	memset(h, 0, sizeof(*h));
	h->epfd = epfd;
	h->tag = tag;
	h->delay_ms = delay_ms;
	h->next_at = NATTER__NEVER;
	for (size_t i = 0; i < NATTER__ADDRS_MAX; i++)
		h->fds[i] = -1;
}

/* How telling a failure is, to report the best one when all fail: a
 * refusal says the most (the host is there, the server is not). */
static int err_rank(int err)
{
	switch (err) {
	case NATTER_ECONNREFUSED:
	case NATTER_ENOENT:
		return 4;
	case NATTER_ETIMEDOUT:
		return 3;
	case NATTER_EUNREACH:
		return 1;
	default:
		return 2;
	}
}

static void record(struct natter__he *h, int sys_err, size_t idx)
{
	int err = natter__errno_code(sys_err);

	if (!h->err || err_rank(err) > err_rank(h->err)) {
		h->err = err;
		h->sys_err = sys_err;
		h->err_idx = idx;
	}
}

static void slot_close(struct natter__he *h, size_t slot)
{
	if (h->fds[slot] < 0)
		return;
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->fds[slot], NULL);
	close(h->fds[slot]);
	h->fds[slot] = -1;
	h->in_flight--;
}

static size_t free_slot(const struct natter__he *h)
{
	for (size_t i = 0; i < NATTER__ADDRS_MAX; i++)
		if (h->fds[i] < 0)
			return i;
	return NATTER__ADDRS_MAX; /* cannot happen: one slot per address */
}

/* Start the next address that gets as far as connecting; those that
 * fail at once are recorded and skipped. */
static void start_next(struct natter__he *h, uint64_t now)
{
	h->next_at = NATTER__NEVER;
	while (h->next < h->n) {
		size_t idx = h->next++;
		const struct natter__addr *a = &h->addrs[idx];
		int fd = socket(a->ss.ss_family,
		                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			record(h, errno, idx);
			continue;
		}
		if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
		    errno != EINPROGRESS) {
			/* a unix socket with a full backlog says EAGAIN:
			 * nobody will take us, like a refusal */
			record(h, errno == EAGAIN ? ECONNREFUSED : errno, idx);
			close(fd);
			continue;
		}
		size_t slot = free_slot(h);
		struct epoll_event ev = {.events = EPOLLOUT,
		                         .data.u64 = h->tag + slot};
		if (slot == NATTER__ADDRS_MAX ||
		    epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			record(h, slot == NATTER__ADDRS_MAX ? EMFILE : errno,
			       idx);
			close(fd);
			continue;
		}
		h->fds[slot] = fd;
		h->idx[slot] = idx;
		h->in_flight++;
		if (h->next < h->n)
			h->next_at = now + (uint64_t)h->delay_ms;
		return;
	}
}

void natter__he_begin(struct natter__he *h, const struct natter__addr *a,
                      size_t n, uint64_t now)
{
	natter__he_abort(h);
	h->n = n < NATTER__ADDRS_MAX ? n : NATTER__ADDRS_MAX;
	memcpy(h->addrs, a, h->n * sizeof(*a));
	h->next = 0;
	h->err = 0;
	h->sys_err = 0;
	h->err_idx = 0;
	start_next(h, now);
}

void natter__he_timer(struct natter__he *h, uint64_t now)
{
	if (now >= h->next_at)
		start_next(h, now);
}

int natter__he_ready(struct natter__he *h, size_t slot, uint64_t now, int *fd,
                     size_t *idx)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (slot >= NATTER__ADDRS_MAX || h->fds[slot] < 0)
		return 0;
	if (getsockopt(h->fds[slot], SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		record(h, err, h->idx[slot]);
		slot_close(h, slot);
		start_next(h, now); /* a failure starts the next one at once */
		return 0;
	}
	/* no error yet may also mean not connected yet: an event left over
	 * from an earlier attempt in the same slot */
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	if (getpeername(h->fds[slot], (struct sockaddr *)&peer, &plen) < 0)
		return 0;
	*fd = h->fds[slot];
	*idx = h->idx[slot];
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, *fd, NULL);
	h->fds[slot] = -1;
	h->in_flight--;
	natter__he_abort(h);
	return 1;
}

bool natter__he_failed(const struct natter__he *h)
{
	return h->in_flight == 0 && h->next >= h->n;
}

void natter__he_abort(struct natter__he *h)
{
	for (size_t i = 0; i < NATTER__ADDRS_MAX; i++)
		slot_close(h, i);
	h->next = h->n;
	h->next_at = NATTER__NEVER;
}
