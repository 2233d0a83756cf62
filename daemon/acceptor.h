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

struct nt_acceptor {
	pthread_t thread;
	bool started;
	int epfd;
	int evfd;     /* stop request */
	int timerfd;  /* re-arms the listeners after running out of fds */
	int spare_fd; /* given up to accept-and-refuse when out of fds */
	bool paused;
	bool out_of_fds; /* since the last successful accept */
	uint64_t nofd_refused_before;
	struct nt_listener *listeners; /* not owned */
	size_t n_listeners;
	const struct nt_listener_conf **lconfs; /* per listener, not owned */
	struct nt_worker **workers;             /* not owned */
	size_t n_workers;
	size_t next_worker;
	unsigned max_connections;
	struct nt_iplimit *iplimit;

	atomic_uint open; /* admitted and not yet released */
	atomic_uint_fast64_t heartbeat;
	struct nt_acceptor_stats stats;
};

/*
 * listeners[i] is served with lconfs[i]. max_connections is the effective
 * limit (the configured one, lowered to what the fd limit allows).
 */
int nt_acceptor_init(struct nt_acceptor *a, struct nt_listener *listeners,
                     const struct nt_listener_conf **lconfs, size_t n,
                     struct nt_worker **workers, size_t n_workers,
                     unsigned max_connections, unsigned per_ip);
int nt_acceptor_start(struct nt_acceptor *a);
/* Ask the thread to stop and wait for it; listeners stay open. */
void nt_acceptor_stop(struct nt_acceptor *a);
void nt_acceptor_destroy(struct nt_acceptor *a);

/* A connection admitted by this acceptor has ended; any thread. */
void nt_acceptor_release(struct nt_acceptor *a, const struct nt_peer *peer);

#endif
