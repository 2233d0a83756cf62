/*
 * Counters. A worker's are written by that worker only, with relaxed
 * atomics, so the hot path pays no lock and no locked instruction;
 * admission's are written by every worker that accepts, so they take a
 * locked add (NT_STAT_ADD_SHARED). Anyone may read them and sum them on
 * demand.
 */
#ifndef NT_STATS_H
#define NT_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef atomic_uint_fast64_t nt_counter;

/* single-writer increment: a load and a store, no read-modify-write */
#define NT_STAT_ADD(ctr, n)                                                    \
	atomic_store_explicit(                                                 \
	    &(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + (n),  \
	    memory_order_relaxed)
/* any number of writers */
#define NT_STAT_ADD_SHARED(ctr, n)                                             \
	atomic_fetch_add_explicit(&(ctr), (n), memory_order_relaxed)
#define NT_STAT_GET(ctr) atomic_load_explicit(&(ctr), memory_order_relaxed)

struct nt_worker_stats {
	nt_counter opened;
	nt_counter closed;
	nt_counter bytes_in;
	nt_counter bytes_out;
	nt_counter timeouts;
	nt_counter handed_over; /* left in the fd store at shutdown */
};

struct nt_admit_stats {
	nt_counter accepted;
	nt_counter refused_full;   /* max_connections */
	nt_counter refused_per_ip; /* limits.per_ip */
	nt_counter refused_nofd;   /* EMFILE / ENFILE */
	nt_counter accept_errors;
};

/* a plain snapshot, summed over every thread */
struct nt_stats {
	uint64_t accepted, refused_full, refused_per_ip, refused_nofd;
	uint64_t accept_errors;
	uint64_t open, opened, closed, bytes_in, bytes_out, timeouts;
};

struct nt_worker;
struct nt_admit;

void nt_stats_collect(struct nt_stats *out, const struct nt_admit *a,
                      struct nt_worker *const *workers, size_t n);
/* one line: "accepted 10, refused 2 (full 1, per-ip 1, no fd 0), ..." */
int nt_stats_format(const struct nt_stats *s, char *buf, size_t size);

#endif
