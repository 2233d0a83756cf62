/*
 * Admission, shared by the workers that accept: each admits or politely
 * refuses what it accepted, and keeps the connection or hands it to the
 * least-loaded worker. Running out of file descriptors neither spins nor
 * kills anyone: a spare fd is given up to accept and refuse one waiting
 * client, and every worker's listeners rest briefly. The listener set and
 * the limits change only from the main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "conn.h"
#include "log.h"
#include "worker.h"

/* per wake-up and worker: small, so that a burst spreads over the workers
 * that EPOLLEXCLUSIVE wakes instead of landing on the first */
#define ACCEPT_BATCH  16
#define NOFD_PAUSE_MS 100

static const char refuse_full[] = "!!! server full, try again later\r\n";
static const char refuse_per_ip[] =
    "!!! too many connections from your address\r\n";
static const char refuse_nofd[] = "!!! server busy, try again later\r\n";

int nt_admit_init(struct nt_admit *a, struct nt_listener_set *set,
                  struct nt_worker **workers, size_t n_workers,
                  unsigned max_connections, unsigned per_ip)
{
	int rc = -ENOMEM;

	memset(a, 0, sizeof(*a));
	a->set = set;
	a->workers = workers;
	a->n_workers = n_workers;
	atomic_init(&a->max_connections, max_connections);
	atomic_init(&a->spare_fd, -1);
	if (!(a->iplimit =
	          nt_iplimit_new(per_ip, set->cfg->limits.per_ip_prefix6)))
		goto fail;
	int fd = open("/", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	atomic_store(&a->spare_fd, fd);
	return 0;
fail:
	nt_admit_destroy(a);
	return rc;
}

void nt_admit_update(struct nt_admit *a, struct nt_listener_set *set,
                     unsigned max_connections, unsigned per_ip)
{
	struct nt_listener_set *old = a->set;

	a->set = set;
	nt_listener_set_close(old, set);
	atomic_store(&a->max_connections, max_connections);
	nt_iplimit_set(a->iplimit, per_ip, set->cfg->limits.per_ip_prefix6);
}

void nt_admit_release(struct nt_admit *a, const struct nt_peer *peer)
{
	atomic_fetch_sub_explicit(&a->open, 1, memory_order_relaxed);
	nt_iplimit_release(a->iplimit, peer);
}

static void admit_refuse(int fd, const char *line, size_t len)
{
	/* best effort: a fresh socket's send buffer is empty, so this fits */
	ssize_t n = send(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	shutdown(fd, SHUT_WR);
	close(fd);
}

static unsigned worker_load(const struct nt_worker *w)
{
	return atomic_load_explicit(&w->load, memory_order_relaxed);
}

/*
 * The worker to serve a new connection: self (the one that accepted it,
 * or NULL) unless another has clearly fewer, so that a burst caught by one
 * worker still spreads while churn stays where it was accepted.
 */
static struct nt_worker *admit_pick(struct nt_admit *a, struct nt_worker *self)
{
	size_t start =
	    atomic_load_explicit(&a->next_worker, memory_order_relaxed) %
	    a->n_workers;
	size_t best = start;
	unsigned best_load = UINT32_MAX;

	/* start after the last pick so that equal loads take turns */
	for (size_t k = 0; k < a->n_workers; k++) {
		size_t i = (start + k) % a->n_workers;
		unsigned l = worker_load(a->workers[i]);
		if (l < best_load) {
			best_load = l;
			best = i;
		}
	}
	if (self && worker_load(self) <= best_load + 1 + best_load / 8)
		return self;
	atomic_store_explicit(&a->next_worker, (unsigned)(best + 1),
	                      memory_order_relaxed);
	return a->workers[best];
}

static void admit_hand_over(struct nt_admit *a, struct nt_worker *self, int fd,
                            const struct nt_listener_conf *lc,
                            struct nt_config *cfg, const struct nt_peer *peer,
                            struct nt_conn_restore *restore)
{
	struct nt_worker *w = admit_pick(a, self);
	atomic_fetch_add_explicit(&w->load, 1, memory_order_relaxed);
	/*
	 * Kept at once only when nothing waits in the queue: what was posted
	 * before this client connected is all there by now, and is handled
	 * first (a room's line sent before the client came must not reach it).
	 */
	if (w == self && !nt_worker_has_posts(self)) {
		nt_worker_take(w, fd, lc, cfg, peer, NULL);
		return;
	}
	struct nt_msg *m = calloc(1, sizeof(*m));
	if (!m) {
		atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
		nt_admit_release(a, peer);
		NT_STAT_ADD_SHARED(a->stats.accept_errors, 1);
		nt_conn_restore_free(restore);
		admit_refuse(fd, refuse_nofd, sizeof(refuse_nofd) - 1);
		return;
	}
	m->type = NT_MSG_CONN;
	m->u.conn.fd = fd;
	m->u.conn.lc = lc;
	/* the worker may have moved on to a newer configuration by the time
	 * it reads this: the reference keeps lc valid until it looks */
	m->u.conn.cfg = nt_config_ref(cfg);
	m->u.conn.peer = *peer;
	m->u.conn.restore = restore;
	nt_worker_post(w, m);
}

void nt_admit_adopt(struct nt_admit *a, int fd,
                    const struct nt_listener_conf *lc,
                    const struct nt_peer *peer, struct nt_conn_restore *restore)
{
	struct nt_peer counted = *peer;

	nt_iplimit_add(a->iplimit, &counted);
	atomic_fetch_add_explicit(&a->open, 1, memory_order_relaxed);
	admit_hand_over(a, NULL, fd, lc, a->set->cfg, &counted, restore);
}

static void admit_one(struct nt_admit *a, struct nt_worker *w,
                      const struct nt_wlisten *l, int fd, struct nt_peer *peer)
{
	/* taken first, so that workers admitting at once cannot overshoot */
	if (atomic_fetch_add_explicit(&a->open, 1, memory_order_relaxed) >=
	    atomic_load_explicit(&a->max_connections, memory_order_relaxed)) {
		atomic_fetch_sub_explicit(&a->open, 1, memory_order_relaxed);
		NT_STAT_ADD_SHARED(a->stats.refused_full, 1);
		admit_refuse(fd, refuse_full, sizeof(refuse_full) - 1);
		return;
	}
	if (!nt_iplimit_take(a->iplimit, peer)) {
		atomic_fetch_sub_explicit(&a->open, 1, memory_order_relaxed);
		NT_STAT_ADD_SHARED(a->stats.refused_per_ip, 1);
		admit_refuse(fd, refuse_per_ip, sizeof(refuse_per_ip) - 1);
		return;
	}
	if (l->tcp) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	NT_STAT_ADD_SHARED(a->stats.accepted, 1);
	admit_hand_over(a, w, fd, l->lc, w->lsn_cfg, peer, NULL);
}

/*
 * Out of fds: free the spare, take one waiting client, tell it we are busy,
 * take the spare back, and rest the listeners so that no worker spins
 * while the backlog waits for fds to come free.
 */
static uint64_t admit_out_of_fds(struct nt_admit *a, int lfd, int err,
                                 uint64_t now)
{
	if (!atomic_exchange(&a->out_of_fds, true)) {
		atomic_store(&a->nofd_refused_before,
		             NT_STAT_GET(a->stats.refused_nofd));
		nt_log(NT_LOG_WARNING, err,
		       "cannot accept: out of file descriptors; refusing new "
		       "clients and retrying every %d ms",
		       NOFD_PAUSE_MS);
	}
	/*
	 * The others rest from now on (nt_admit_accept() looks before every
	 * accept), before the spare is given up: a worker accepting at the
	 * same moment would take the freed slot, as a client over the limit,
	 * and the spare could not be opened again.
	 */
	uint64_t until = now + NOFD_PAUSE_MS;
	atomic_store(&a->resume_ms, until);
	/* one worker at a time has the spare */
	int spare = atomic_exchange(&a->spare_fd, -1);
	if (spare >= 0) {
		close(spare);
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			NT_STAT_ADD_SHARED(a->stats.refused_nofd, 1);
			admit_refuse(fd, refuse_nofd, sizeof(refuse_nofd) - 1);
		}
		atomic_store(&a->spare_fd, open("/", O_RDONLY | O_CLOEXEC));
	}
	return until;
}

static void admit_fds_back(struct nt_admit *a)
{
	if (!atomic_exchange(&a->out_of_fds, false))
		return;
	if (atomic_load(&a->spare_fd) < 0) {
		/* the spare could not be taken back when fds ran out */
		int spare = open("/", O_RDONLY | O_CLOEXEC), none = -1;
		if (spare >= 0 &&
		    !atomic_compare_exchange_strong(&a->spare_fd, &none, spare))
			close(spare);
	}
	nt_log_notice(
	    "accepting again: file descriptors are available; %llu "
	    "clients were refused meanwhile",
	    (unsigned long long)(NT_STAT_GET(a->stats.refused_nofd) -
	                         atomic_load(&a->nofd_refused_before)));
}

uint64_t nt_admit_accept(struct nt_admit *a, struct nt_worker *w,
                         const struct nt_wlisten *l)
{
	for (int k = 0; k < ACCEPT_BATCH; k++) {
		uint64_t resume =
		    atomic_load_explicit(&a->resume_ms, memory_order_relaxed);
		if (resume > w->now)
			return resume; /* another worker ran out of fds */
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->watch.fd, (struct sockaddr *)&ss, &len,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			struct nt_peer peer;
			if (atomic_load_explicit(&a->out_of_fds,
			                         memory_order_relaxed))
				admit_fds_back(a);
			nt_peer_from_sockaddr(&peer, (struct sockaddr *)&ss,
			                      len);
			admit_one(a, w, l, fd, &peer);
			continue;
		}
		switch (errno) {
		case EAGAIN:
			return 0;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			return admit_out_of_fds(a, l->watch.fd, errno, w->now);
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM: /* firewall */
			continue;
		default:
			/* network errors pending on the new socket */
			NT_STAT_ADD_SHARED(a->stats.accept_errors, 1);
			nt_log_debug("accept on %s", l->lc->name);
			continue;
		}
	}
	return 0;
}

struct nt_listener_set *nt_admit_take_set(struct nt_admit *a)
{
	struct nt_listener_set *set = a->set;

	a->set = NULL;
	return set;
}

void nt_admit_destroy(struct nt_admit *a)
{
	if (!a)
		return;
	nt_listener_set_close(a->set, NULL);
	a->set = NULL;
	int spare = atomic_exchange(&a->spare_fd, -1);
	if (spare >= 0)
		close(spare);
	nt_iplimit_free(a->iplimit);
	a->iplimit = NULL;
}
