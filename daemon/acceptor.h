/*
 * The acceptor thread: one epoll over every listening socket. It admits a
 * connection (max_connections, per-address limit, a polite refusal
 * otherwise) and hands the fd to the least-loaded worker.
 */
#ifndef NT_ACCEPTOR_H
#define NT_ACCEPTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "iplimit.h"
#include "listener.h"
#include "stats.h"
#include "util.h"

struct nt_worker;
struct nt_latch;
struct nt_conn_restore;

/* a change posted to the acceptor: a new listener set and limits */
struct nt_acceptor_ctl {
	struct nt_acceptor_ctl *next;
	struct nt_listener_set *set;
	unsigned max_connections;
	unsigned per_ip;
	struct nt_latch *latch; /* done once applied; may be NULL */
};

struct nt_acceptor {
	pthread_t thread;
	bool started;
	int epfd;
	int evfd;     /* wakes the loop: a control message or stop */
	int timerfd;  /* re-arms the listeners after running out of fds */
	int spare_fd; /* given up to accept-and-refuse when out of fds */
	bool paused;
	bool out_of_fds; /* since the last successful accept */
	uint64_t nofd_refused_before;
	struct nt_listener_set *set; /* owned; the thread's once started */
	struct nt_worker **workers;  /* not owned */
	size_t n_workers;
	size_t next_worker;
	unsigned max_connections;
	struct nt_iplimit *iplimit;

	pthread_mutex_t lock; /* guards ctl_head and ctl_tail only */
	struct nt_acceptor_ctl *ctl_head, *ctl_tail;
	atomic_bool stop;

	atomic_uint open; /* admitted and not yet released */
	atomic_uint_fast64_t heartbeat;
	struct nt_acceptor_stats stats;
};

/*
 * Serve set (the acceptor owns it from now on, also on failure).
 * max_connections is the effective limit (the configured one, lowered to
 * what the fd limit allows).
 */
int nt_acceptor_init(struct nt_acceptor *a, struct nt_listener_set *set,
                     struct nt_worker **workers, size_t n_workers,
                     unsigned max_connections, unsigned per_ip);
int nt_acceptor_start(struct nt_acceptor *a);
/*
 * From now on serve set (taken) with these limits; the old set's listeners
 * that set does not have are closed. latch is done when the acceptor has
 * applied it. From the thread that started it. -ENOMEM: set stays the
 * caller's.
 */
int nt_acceptor_update(struct nt_acceptor *a, struct nt_listener_set *set,
                       unsigned max_connections, unsigned per_ip,
                       struct nt_latch *latch);
/*
 * A client connection taken over from an earlier natterd, before the
 * thread starts: counted like an admitted one (whatever the limits) and
 * handed to the least-loaded worker with restore (taken).
 */
void nt_acceptor_adopt(struct nt_acceptor *a, int fd,
                       const struct nt_listener_conf *lc,
                       const struct nt_peer *peer,
                       struct nt_conn_restore *restore);
/* Ask the thread to stop and wait for it; listeners stay open. */
void nt_acceptor_stop(struct nt_acceptor *a);
/* After stop: the set it served, now the caller's (NULL the second time). */
struct nt_listener_set *nt_acceptor_take_set(struct nt_acceptor *a);
/* Frees what init made; a set still held is closed with its listeners. */
void nt_acceptor_destroy(struct nt_acceptor *a);

/* A connection admitted by this acceptor has ended; any thread. */
void nt_acceptor_release(struct nt_acceptor *a, const struct nt_peer *peer);

#endif
