/*
 * Admission: every worker accepts on every listener itself (each watches
 * its own duplicate of the socket with EPOLLEXCLUSIVE, so a new client
 * wakes one idle worker, not all), and this is what they share while doing
 * so: max_connections, the per-address limit with its polite refusal, the
 * spare fd and the rest that running out of fds calls for, the counters,
 * and the least-loaded choice that hands a connection to another worker
 * when the one that accepted it already has more than its share. It also
 * owns the listener set, which only the main thread changes.
 */
#ifndef NT_ADMIT_H
#define NT_ADMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "iplimit.h"
#include "listener.h"
#include "stats.h"
#include "util.h"

struct nt_worker;
struct nt_wlisten;
struct nt_conn_restore;

struct nt_admit {
	struct nt_listener_set *set; /* owned; the main thread's */
	struct nt_worker **workers;  /* not owned */
	size_t n_workers;
	struct nt_iplimit *iplimit;

	/* shared by the workers, lock-free */
	atomic_uint max_connections; /* the effective limit */
	atomic_uint open;            /* admitted and not yet released */
	atomic_uint next_worker;     /* where the least-loaded search starts */
	atomic_int spare_fd; /* given up to accept-and-refuse when out of fds */
	atomic_bool out_of_fds; /* since the last successful accept */
	atomic_uint_fast64_t nofd_refused_before;
	atomic_uint_fast64_t resume_ms; /* listeners rest until then */
	struct nt_admit_stats stats;
};

/*
 * Serve set (admission owns it from now on, also on failure).
 * max_connections is the effective limit (the configured one, lowered to
 * what the fd limit allows); limits.per_ip_prefix6 is set's.
 */
int nt_admit_init(struct nt_admit *a, struct nt_listener_set *set,
                  struct nt_worker **workers, size_t n_workers,
                  unsigned max_connections, unsigned per_ip);
/*
 * Main thread, once every worker watches set (taken): it replaces the old
 * set, whose listeners set does not have are closed, and the limits
 * (per_ip_prefix6 from set's configuration) apply from now on.
 */
void nt_admit_update(struct nt_admit *a, struct nt_listener_set *set,
                     unsigned max_connections, unsigned per_ip);
/*
 * A client connection taken over from an earlier natterd, before the
 * workers listen: counted like an admitted one (whatever the limits) and
 * handed to the least-loaded worker with restore (taken).
 */
void nt_admit_adopt(struct nt_admit *a, int fd,
                    const struct nt_listener_conf *lc,
                    const struct nt_peer *peer,
                    struct nt_conn_restore *restore);
/*
 * Worker w's listener l is readable: accept a bounded batch, admit or
 * refuse each, and keep it or hand it to a less loaded worker. Returns
 * the time (ms) until which w's listeners are to rest because fds ran
 * out, or 0.
 */
uint64_t nt_admit_accept(struct nt_admit *a, struct nt_worker *w,
                         const struct nt_wlisten *l);
/* Main thread: the set it served, now the caller's (NULL the second time) */
struct nt_listener_set *nt_admit_take_set(struct nt_admit *a);
/* Frees what init made; a set still held is closed with its listeners. */
void nt_admit_destroy(struct nt_admit *a);

/* A connection admitted here has ended; any thread. peer is
 * the one admission filled in (it knows what per_ip counted). */
void nt_admit_release(struct nt_admit *a, const struct nt_peer *peer);

#endif
