/*
 * Per-address connection counts: a chained hash table keyed by address,
 * with a random seed so that a client choosing its IPv6 addresses cannot
 * pile every entry into one chain. Entries exist only while their count is
 * above zero, so the table never holds more than the open connections.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "iplimit.h"

struct ip_entry {
	struct ip_entry *next;
	uint8_t addr[16];
	sa_family_t family;
	unsigned count;
};

struct nt_iplimit {
	atomic_uint max;      /* read without the lock: 0 skips it */
	pthread_mutex_t lock; /* guards everything below */
	uint64_t seed;
	struct ip_entry **bucket;
	size_t n_buckets; /* a power of two */
	size_t n_entries;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static size_t ip_hash(const struct nt_iplimit *t, const struct nt_peer *p)
{
	uint64_t a, b;

	memcpy(&a, p->addr, 8);
	memcpy(&b, p->addr + 8, 8);
	return (size_t)mix64(mix64(a ^ t->seed) ^ b ^ p->family) &
	       (t->n_buckets - 1);
}

static bool ip_same(const struct ip_entry *e, const struct nt_peer *p)
{
	return e->family == p->family && !memcmp(e->addr, p->addr, 16);
}

struct nt_iplimit *nt_iplimit_new(unsigned max)
{
	struct nt_iplimit *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	atomic_init(&t->max, max);
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) !=
	    sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ULL;
	t->n_buckets = 64;
	t->bucket = calloc(t->n_buckets, sizeof(*t->bucket));
	if (!t->bucket) {
		nt_iplimit_free(t);
		return NULL;
	}
	return t;
}

void nt_iplimit_free(struct nt_iplimit *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->bucket && i < t->n_buckets; i++) {
		struct ip_entry *e = t->bucket[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->bucket);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Doubling keeps chains short; failure to grow only costs speed. */
static void ip_grow(struct nt_iplimit *t)
{
	size_t n = t->n_buckets * 2;
	struct ip_entry **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	struct ip_entry **old = t->bucket;
	size_t old_n = t->n_buckets;
	t->bucket = nb;
	t->n_buckets = n;
	for (size_t i = 0; i < old_n; i++) {
		struct ip_entry *e = old[i], *next;
		for (; e; e = next) {
			struct nt_peer p = {.family = e->family};
			memcpy(p.addr, e->addr, 16);
			size_t h = ip_hash(t, &p);
			next = e->next;
			e->next = nb[h];
			nb[h] = e;
		}
	}
	free(old);
}

static struct ip_entry **ip_find(struct nt_iplimit *t, const struct nt_peer *p)
{
	struct ip_entry **pe = &t->bucket[ip_hash(t, p)];
	while (*pe && !ip_same(*pe, p))
		pe = &(*pe)->next;
	return pe;
}

/* one more for p, up to limit (0: none); the lock is held */
static bool ip_count(struct nt_iplimit *t, const struct nt_peer *p,
                     unsigned limit)
{
	struct ip_entry **pe = ip_find(t, p);

	if (*pe) {
		if (limit && (*pe)->count >= limit)
			return false;
		(*pe)->count++;
		return true;
	}
	struct ip_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return false;
	memcpy(e->addr, p->addr, 16);
	e->family = p->family;
	e->count = 1;
	*pe = e;
	if (++t->n_entries > t->n_buckets * 2)
		ip_grow(t);
	return true;
}

bool nt_iplimit_take(struct nt_iplimit *t, const struct nt_peer *p)
{
	unsigned max = atomic_load_explicit(&t->max, memory_order_relaxed);

	if (!max || p->family == AF_UNIX)
		return true;
	pthread_mutex_lock(&t->lock);
	bool ok = ip_count(t, p, max);
	pthread_mutex_unlock(&t->lock);
	return ok;
}

bool nt_iplimit_add(struct nt_iplimit *t, const struct nt_peer *p)
{
	if (!atomic_load_explicit(&t->max, memory_order_relaxed) ||
	    p->family == AF_UNIX)
		return true;
	pthread_mutex_lock(&t->lock);
	bool ok = ip_count(t, p, 0);
	pthread_mutex_unlock(&t->lock);
	return ok;
}

void nt_iplimit_set_max(struct nt_iplimit *t, unsigned max)
{
	atomic_store_explicit(&t->max, max, memory_order_relaxed);
}

void nt_iplimit_release(struct nt_iplimit *t, const struct nt_peer *p)
{
	if (p->family == AF_UNIX)
		return;
	/* even with no limit now: entries counted under an earlier one */
	pthread_mutex_lock(&t->lock);
	if (!t->n_entries) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	struct ip_entry **pe = ip_find(t, p);
	struct ip_entry *e = *pe;
	if (e && --e->count == 0) {
		*pe = e->next;
		t->n_entries--;
		free(e);
	}
	pthread_mutex_unlock(&t->lock);
}

unsigned nt_iplimit_count(struct nt_iplimit *t, const struct nt_peer *p)
{
	unsigned n;

	pthread_mutex_lock(&t->lock);
	struct ip_entry *e = *ip_find(t, p);
	n = e ? e->count : 0;
	pthread_mutex_unlock(&t->lock);
	return n;
}
