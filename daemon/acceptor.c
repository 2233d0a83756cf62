/*
 * The acceptor thread: accepts on every listener, admits or politely
 * refuses, and hands each new fd to the least-loaded worker. Running out of
 * file descriptors neither spins nor kills it: a spare fd is given up to
 * accept and refuse one waiting client, and the listeners rest briefly.
 * Its listener set and limits change only through a message to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "acceptor.h"
#include "conn.h"
#include "log.h"
#include "worker.h"

#define ACCEPT_BATCH  64
#define TAG_WAKE      UINT64_MAX
#define TAG_TIMER     (UINT64_MAX - 1)
#define NOFD_PAUSE_MS 100
#define TICK_MS       1000

static const char refuse_full[] = "!!! server full, try again later\r\n";
static const char refuse_per_ip[] =
    "!!! too many connections from your address\r\n";
static const char refuse_nofd[] = "!!! server busy, try again later\r\n";

static int acceptor_watch(struct nt_acceptor *a, int fd, uint32_t events,
                          uint64_t tag, int op)
{
	struct epoll_event e = {.events = events, .data.u64 = tag};
	return epoll_ctl(a->epfd, op, fd, &e) < 0 ? -errno : 0;
}

static uint32_t acceptor_events(const struct nt_acceptor *a)
{
	return a->paused ? 0 : EPOLLIN;
}

/* watch every listener of set, tagged with its index */
static int acceptor_watch_set(struct nt_acceptor *a,
                              const struct nt_listener_set *set, int op)
{
	int rc;

	for (size_t i = 0; i < set->n; i++)
		if ((rc = acceptor_watch(a, set->l[i]->fd, acceptor_events(a),
		                         i, op)) < 0)
			return rc;
	return 0;
}

int nt_acceptor_init(struct nt_acceptor *a, struct nt_listener_set *set,
                     struct nt_worker **workers, size_t n_workers,
                     unsigned max_connections, unsigned per_ip)
{
	int rc = -ENOMEM;

	memset(a, 0, sizeof(*a));
	a->epfd = a->evfd = a->timerfd = a->spare_fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	a->set = set;
	a->workers = workers;
	a->n_workers = n_workers;
	a->max_connections = max_connections;
	if (!(a->iplimit = nt_iplimit_new(per_ip)))
		goto fail;
	if ((a->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (a->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (a->timerfd = timerfd_create(CLOCK_MONOTONIC,
	                                 TFD_NONBLOCK | TFD_CLOEXEC)) < 0 ||
	    (a->spare_fd = open("/", O_RDONLY | O_CLOEXEC)) < 0)
		goto fail_errno;
	if ((rc = acceptor_watch(a, a->evfd, EPOLLIN, TAG_WAKE,
	                         EPOLL_CTL_ADD)) < 0 ||
	    (rc = acceptor_watch(a, a->timerfd, EPOLLIN, TAG_TIMER,
	                         EPOLL_CTL_ADD)) < 0 ||
	    (rc = acceptor_watch_set(a, set, EPOLL_CTL_ADD)) < 0)
		goto fail;
	return 0;
fail_errno:
	rc = -errno;
fail:
	nt_acceptor_destroy(a);
	return rc;
}

static void acceptor_wake(struct nt_acceptor *a)
{
	uint64_t one = 1;
	ssize_t r = write(a->evfd, &one, sizeof(one));
	(void)r; /* EAGAIN: it is awake already */
}

int nt_acceptor_update(struct nt_acceptor *a, struct nt_listener_set *set,
                       unsigned max_connections, unsigned per_ip,
                       struct nt_latch *latch)
{
	struct nt_acceptor_ctl *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->set = set;
	m->max_connections = max_connections;
	m->per_ip = per_ip;
	m->latch = latch;
	pthread_mutex_lock(&a->lock);
	if (a->ctl_tail)
		a->ctl_tail->next = m;
	else
		a->ctl_head = m;
	a->ctl_tail = m;
	pthread_mutex_unlock(&a->lock);
	acceptor_wake(a);
	return 0;
}

static void acceptor_apply(struct nt_acceptor *a, struct nt_acceptor_ctl *m)
{
	struct nt_listener_set *old = a->set;

	/* out of the epoll set explicitly: systemd's fd store may hold
	 * another descriptor of the same socket, which would keep it in */
	for (size_t i = 0; i < old->n; i++)
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, old->l[i]->fd, NULL);
	a->set = m->set;
	if (acceptor_watch_set(a, a->set, EPOLL_CTL_ADD) < 0)
		nt_log_warn("acceptor: cannot watch every listener");
	nt_listener_set_close(old, a->set);
	a->max_connections = m->max_connections;
	nt_iplimit_set_max(a->iplimit, m->per_ip);
	nt_latch_done(m->latch);
}

static struct nt_acceptor_ctl *acceptor_ctl_take(struct nt_acceptor *a)
{
	pthread_mutex_lock(&a->lock);
	struct nt_acceptor_ctl *m = a->ctl_head;
	a->ctl_head = a->ctl_tail = NULL;
	pthread_mutex_unlock(&a->lock);
	return m;
}

/* Handle a wake-up; true when the thread is to stop. */
static bool acceptor_woken(struct nt_acceptor *a)
{
	uint64_t junk;
	ssize_t r = read(a->evfd, &junk, sizeof(junk));
	(void)r;

	for (struct nt_acceptor_ctl *m = acceptor_ctl_take(a), *next; m;
	     m = next) {
		next = m->next;
		acceptor_apply(a, m);
		free(m);
	}
	return atomic_load(&a->stop);
}

void nt_acceptor_release(struct nt_acceptor *a, const struct nt_peer *peer)
{
	atomic_fetch_sub_explicit(&a->open, 1, memory_order_relaxed);
	nt_iplimit_release(a->iplimit, peer);
}

static void acceptor_refuse(int fd, const char *line, size_t len)
{
	/* best effort: a fresh socket's send buffer is empty, so this fits */
	ssize_t n = send(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	shutdown(fd, SHUT_WR);
	close(fd);
}

static struct nt_worker *acceptor_pick(struct nt_acceptor *a)
{
	size_t best = a->next_worker % a->n_workers;
	unsigned best_load = UINT32_MAX;

	/* start after the last pick so that equal loads take turns */
	for (size_t k = 0; k < a->n_workers; k++) {
		size_t i = (a->next_worker + k) % a->n_workers;
		unsigned l = atomic_load_explicit(&a->workers[i]->load,
		                                  memory_order_relaxed);
		if (l < best_load) {
			best_load = l;
			best = i;
		}
	}
	a->next_worker = best + 1;
	return a->workers[best];
}

static void acceptor_hand_over(struct nt_acceptor *a, int fd,
                               const struct nt_listener_conf *lc,
                               const struct nt_peer *peer,
                               struct nt_conn_restore *restore)
{
	struct nt_msg *m = calloc(1, sizeof(*m));
	if (!m) {
		nt_iplimit_release(a->iplimit, peer);
		NT_STAT_ADD(a->stats.accept_errors, 1);
		nt_conn_restore_free(restore);
		acceptor_refuse(fd, refuse_nofd, sizeof(refuse_nofd) - 1);
		return;
	}
	atomic_fetch_add_explicit(&a->open, 1, memory_order_relaxed);
	m->type = NT_MSG_CONN;
	m->u.conn.fd = fd;
	m->u.conn.lc = lc;
	/* the worker may have moved on to a newer configuration by the time
	 * it reads this: the reference keeps lc valid until it looks */
	m->u.conn.cfg = nt_config_ref(a->set->cfg);
	m->u.conn.peer = *peer;
	m->u.conn.restore = restore;
	struct nt_worker *w = acceptor_pick(a);
	atomic_fetch_add_explicit(&w->load, 1, memory_order_relaxed);
	nt_worker_post(w, m);
}

void nt_acceptor_adopt(struct nt_acceptor *a, int fd,
                       const struct nt_listener_conf *lc,
                       const struct nt_peer *peer,
                       struct nt_conn_restore *restore)
{
	nt_iplimit_add(a->iplimit, peer);
	acceptor_hand_over(a, fd, lc, peer, restore);
}

static void acceptor_admit(struct nt_acceptor *a, size_t li, int fd,
                           const struct nt_peer *peer)
{
	const struct nt_listener_conf *lc = a->set->lc[li];

	if (atomic_load_explicit(&a->open, memory_order_relaxed) >=
	    a->max_connections) {
		NT_STAT_ADD(a->stats.refused_full, 1);
		acceptor_refuse(fd, refuse_full, sizeof(refuse_full) - 1);
		return;
	}
	if (!nt_iplimit_take(a->iplimit, peer)) {
		NT_STAT_ADD(a->stats.refused_per_ip, 1);
		acceptor_refuse(fd, refuse_per_ip, sizeof(refuse_per_ip) - 1);
		return;
	}
	if (a->set->l[li]->family != NT_FAMILY_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	NT_STAT_ADD(a->stats.accepted, 1);
	acceptor_hand_over(a, fd, lc, peer, NULL);
}

static void acceptor_pause(struct nt_acceptor *a)
{
	struct itimerspec its = {.it_value.tv_nsec = NOFD_PAUSE_MS * 1000000L};

	a->paused = true;
	acceptor_watch_set(a, a->set, EPOLL_CTL_MOD);
	timerfd_settime(a->timerfd, 0, &its, NULL);
}

static void acceptor_unpause(struct nt_acceptor *a)
{
	uint64_t junk;
	ssize_t r = read(a->timerfd, &junk, sizeof(junk));
	(void)r;
	a->paused = false;
	acceptor_watch_set(a, a->set, EPOLL_CTL_MOD);
}

/*
 * Out of fds: free the spare, take one waiting client, tell it we are busy,
 * take the spare back, and rest the listeners so the loop does not spin
 * while the backlog waits for fds to come free.
 */
static void acceptor_out_of_fds(struct nt_acceptor *a, int lfd, int err)
{
	if (!a->out_of_fds) {
		a->out_of_fds = true;
		a->nofd_refused_before = NT_STAT_GET(a->stats.refused_nofd);
		nt_log(NT_LOG_WARNING, err,
		       "cannot accept: out of file descriptors; refusing new "
		       "clients and retrying every %d ms",
		       NOFD_PAUSE_MS);
	}
	if (a->spare_fd >= 0) {
		close(a->spare_fd);
		a->spare_fd = -1;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			NT_STAT_ADD(a->stats.refused_nofd, 1);
			acceptor_refuse(fd, refuse_nofd,
			                sizeof(refuse_nofd) - 1);
		}
		a->spare_fd = open("/", O_RDONLY | O_CLOEXEC);
	}
	acceptor_pause(a);
}

static void acceptor_fds_back(struct nt_acceptor *a)
{
	a->out_of_fds = false;
	nt_log_notice("accepting again: file descriptors are available; %llu "
	              "clients were refused meanwhile",
	              (unsigned long long)(NT_STAT_GET(a->stats.refused_nofd) -
	                                   a->nofd_refused_before));
}

static void acceptor_accept(struct nt_acceptor *a, size_t li)
{
	int lfd = a->set->l[li]->fd;

	for (int k = 0; k < ACCEPT_BATCH && !a->paused; k++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			struct nt_peer peer;
			if (a->out_of_fds)
				acceptor_fds_back(a);
			nt_peer_from_sockaddr(&peer, (struct sockaddr *)&ss,
			                      len);
			acceptor_admit(a, li, fd, &peer);
			continue;
		}
		switch (errno) {
		case EAGAIN:
			return;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			acceptor_out_of_fds(a, lfd, errno);
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM: /* firewall */
			continue;
		default:
			/* network errors pending on the new socket */
			NT_STAT_ADD(a->stats.accept_errors, 1);
			nt_log_debug("accept on %s", a->set->l[li]->name);
			continue;
		}
	}
}

static void *acceptor_main(void *arg)
{
	struct nt_acceptor *a = arg;
	struct epoll_event ev[32];

	/* top -H, ps -L and perf show the threads by these names */
	pthread_setname_np(pthread_self(), "natterd-accept");
	for (;;) {
		atomic_fetch_add_explicit(&a->heartbeat, 1,
		                          memory_order_relaxed);
		int n = epoll_wait(a->epfd, ev, 32, TICK_MS);
		if (n < 0 && errno != EINTR) {
			nt_log_err("acceptor: epoll_wait");
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = ev[i].data.u64;
			if (tag == TAG_WAKE) {
				if (acceptor_woken(a))
					return NULL;
				/* the set may have changed: the rest of this
				 * batch's tags are stale, and level-triggered
				 * epoll reports them again */
				break;
			}
			if (tag == TAG_TIMER)
				acceptor_unpause(a);
			else if (tag < a->set->n)
				acceptor_accept(a, (size_t)tag);
		}
	}
	return NULL;
}

int nt_acceptor_start(struct nt_acceptor *a)
{
	int rc = pthread_create(&a->thread, NULL, acceptor_main, a);
	if (rc)
		return -rc;
	a->started = true;
	return 0;
}

void nt_acceptor_stop(struct nt_acceptor *a)
{
	if (!a->started)
		return;
	atomic_store(&a->stop, true);
	acceptor_wake(a);
	pthread_join(a->thread, NULL);
	a->started = false;
	/* changes that came too late still own their sets */
	for (struct nt_acceptor_ctl *m = acceptor_ctl_take(a), *next; m;
	     m = next) {
		next = m->next;
		acceptor_apply(a, m);
		free(m);
	}
}

struct nt_listener_set *nt_acceptor_take_set(struct nt_acceptor *a)
{
	struct nt_listener_set *set = a->set;

	a->set = NULL;
	return set;
}

void nt_acceptor_destroy(struct nt_acceptor *a)
{
	if (!a)
		return;
	nt_acceptor_stop(a);
	nt_listener_set_close(a->set, NULL);
	a->set = NULL;
	if (a->spare_fd >= 0)
		close(a->spare_fd);
	if (a->timerfd >= 0)
		close(a->timerfd);
	if (a->evfd >= 0)
		close(a->evfd);
	if (a->epfd >= 0)
		close(a->epfd);
	nt_iplimit_free(a->iplimit);
	a->iplimit = NULL;
	a->spare_fd = a->timerfd = a->evfd = a->epfd = -1;
	pthread_mutex_destroy(&a->lock);
}
