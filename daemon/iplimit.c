/*
 * Per-address connection counts: a chained hash table keyed by address
 * (an IPv6 one masked to its prefix, and the prefix length with it, so that
 * counts taken before the prefix changed stay apart), with a random seed so
 * that a client choosing its IPv6 addresses cannot pile every entry into one
 * chain. Entries exist only while their count is above zero, so the table never
 * holds more than the open connections.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "iplimit.h"

/* what is counted: an IPv4 address, or an IPv6 one masked to a prefix */
struct ip_key {
	uint8_t addr[16];
	sa_family_t family;
	uint8_t prefix; /* 32 for IPv4 */
};

struct ip_entry {
	struct ip_entry *next;
	struct ip_key key;
	unsigned count;
};

struct nt_iplimit {
	atomic_uint max;      /* read without the lock: 0 skips it */
	atomic_uint prefix6;  /* for new connections; 1..128 */
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

static size_t ip_hash(const struct nt_iplimit *t, const struct ip_key *k)
{
	uint64_t a, b;

	memcpy(&a, k->addr, 8);
	memcpy(&b, k->addr + 8, 8);
	return (size_t)mix64(mix64(a ^ t->seed) ^ b ^
	                     ((uint64_t)k->prefix << 16 | k->family)) &
	       (t->n_buckets - 1);
}

/* p's key when IPv6 addresses count by their first prefix6 bits */
static void ip_key(struct ip_key *k, const struct nt_peer *p, unsigned prefix6)
{
	memset(k, 0, sizeof(*k));
	k->family = p->family;
	if (p->family != AF_INET6) {
		memcpy(k->addr, p->addr, 4);
		k->prefix = 32;
		return;
	}
	k->prefix = (uint8_t)prefix6;
	memcpy(k->addr, p->addr, prefix6 / 8);
	if (prefix6 % 8)
		k->addr[prefix6 / 8] =
		    p->addr[prefix6 / 8] & (uint8_t)(0xff << (8 - prefix6 % 8));
}

static bool ip_same(const struct ip_entry *e, const struct ip_key *k)
{
	return e->key.family == k->family && e->key.prefix == k->prefix &&
	       !memcmp(e->key.addr, k->addr, 16);
}

static unsigned prefix6_valid(unsigned prefix6)
{
	return prefix6 < 1 ? 1 : prefix6 > 128 ? 128 : prefix6;
}

struct nt_iplimit *nt_iplimit_new(unsigned max, unsigned prefix6)
{
	struct nt_iplimit *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	atomic_init(&t->max, max);
	atomic_init(&t->prefix6, prefix6_valid(prefix6));
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
			size_t h = ip_hash(t, &e->key);
			next = e->next;
			e->next = nb[h];
			nb[h] = e;
		}
	}
	free(old);
}

static struct ip_entry **ip_find(struct nt_iplimit *t, const struct ip_key *k)
{
	struct ip_entry **pe = &t->bucket[ip_hash(t, k)];
	while (*pe && !ip_same(*pe, k))
		pe = &(*pe)->next;
	return pe;
}

/* one more for k, up to limit (0: none); the lock is held */
static bool ip_count(struct nt_iplimit *t, const struct ip_key *k,
                     unsigned limit)
{
	struct ip_entry **pe = ip_find(t, k);

	if (*pe) {
		if (limit && (*pe)->count >= limit)
			return false;
		(*pe)->count++;
		return true;
	}
	struct ip_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return false;
	e->key = *k;
	e->count = 1;
	*pe = e;
	if (++t->n_entries > t->n_buckets * 2)
		ip_grow(t);
	return true;
}

/* p counted up to limit (0: none), recording under what in p */
static bool ip_take(struct nt_iplimit *t, struct nt_peer *p, unsigned limit)
{
	struct ip_key k;

	ip_key(&k, p, atomic_load_explicit(&t->prefix6, memory_order_relaxed));
	pthread_mutex_lock(&t->lock);
	bool ok = ip_count(t, &k, limit);
	pthread_mutex_unlock(&t->lock);
	if (ok)
		p->counted = k.prefix;
	return ok;
}

bool nt_iplimit_take(struct nt_iplimit *t, struct nt_peer *p)
{
	unsigned max = atomic_load_explicit(&t->max, memory_order_relaxed);

	p->counted = 0;
	if (!max || p->family == AF_UNIX)
		return true;
	return ip_take(t, p, max);
}

bool nt_iplimit_add(struct nt_iplimit *t, struct nt_peer *p)
{
	p->counted = 0;
	if (!atomic_load_explicit(&t->max, memory_order_relaxed) ||
	    p->family == AF_UNIX)
		return true;
	return ip_take(t, p, 0);
}

void nt_iplimit_set(struct nt_iplimit *t, unsigned max, unsigned prefix6)
{
	atomic_store_explicit(&t->prefix6, prefix6_valid(prefix6),
	                      memory_order_relaxed);
	atomic_store_explicit(&t->max, max, memory_order_relaxed);
}

void nt_iplimit_release(struct nt_iplimit *t, const struct nt_peer *p)
{
	struct ip_key k;

	/* whatever the settings are now: what counted it is what counts */
	if (!p->counted)
		return;
	ip_key(&k, p, p->counted);
	pthread_mutex_lock(&t->lock);
	struct ip_entry **pe = ip_find(t, &k);
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
	struct ip_key k;
	unsigned n;

	ip_key(&k, p, atomic_load_explicit(&t->prefix6, memory_order_relaxed));
	pthread_mutex_lock(&t->lock);
	struct ip_entry *e = *ip_find(t, &k);
	n = e ? e->count : 0;
	pthread_mutex_unlock(&t->lock);
	return n;
}
