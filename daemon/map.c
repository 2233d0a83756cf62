/*
 * String-keyed intrusive hash map (see map.h). Hashes are seeded per map so
 * that a client choosing nick or room names cannot force long chains.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "map.h"

static uint32_t map_hash(const struct nt_map *m, const char *key)
{
	/* FNV-1a over a seeded start, finished with a multiply-xorshift */
	uint64_t h = 0xcbf29ce484222325ULL ^ m->seed;
	for (const unsigned char *p = (const void *)key; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (uint32_t)h;
}

void nt_map_init(struct nt_map *m)
{
	memset(m, 0, sizeof(*m));
	if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) !=
	    sizeof(m->seed))
		m->seed = (uint64_t)(uintptr_t)m * 0x9e3779b97f4a7c15ULL;
}

void nt_map_free(struct nt_map *m)
{
	free(m->bucket);
	m->bucket = NULL;
	m->n_buckets = m->n = 0;
}

struct nt_map_node *nt_map_get(const struct nt_map *m, const char *key)
{
	if (!m->n_buckets)
		return NULL;
	uint32_t h = map_hash(m, key);
	for (struct nt_map_node *n = m->bucket[h & (m->n_buckets - 1)]; n;
	     n = n->next)
		if (n->hash == h && !strcmp(n->key, key))
			return n;
	return NULL;
}

static int map_grow(struct nt_map *m)
{
	size_t nb = m->n_buckets ? m->n_buckets * 2 : 16;
	struct nt_map_node **b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct nt_map_node *n = m->bucket[i], *next;
		for (; n; n = next) {
			next = n->next;
			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(m->bucket);
	m->bucket = b;
	m->n_buckets = nb;
	return 0;
}

int nt_map_put(struct nt_map *m, struct nt_map_node *node, const char *key)
{
	if (nt_map_get(m, key))
		return -EEXIST;
	if (m->n >= m->n_buckets && map_grow(m) < 0 && !m->n_buckets)
		return -ENOMEM; /* a failed grow of a non-empty map only slows
		                 */
	node->key = key;
	node->hash = map_hash(m, key);
	struct nt_map_node **b = &m->bucket[node->hash & (m->n_buckets - 1)];
	node->next = *b;
	*b = node;
	m->n++;
	return 0;
}

void nt_map_del(struct nt_map *m, struct nt_map_node *node)
{
	if (!m->n_buckets)
		return;
	struct nt_map_node **pp = &m->bucket[node->hash & (m->n_buckets - 1)];
	for (; *pp; pp = &(*pp)->next)
		if (*pp == node) {
			*pp = node->next;
			node->next = NULL;
			m->n--;
			return;
		}
}

static struct nt_map_node *map_scan(const struct nt_map *m, size_t *iter)
{
	for (; *iter < m->n_buckets; (*iter)++)
		if (m->bucket[*iter])
			return m->bucket[(*iter)++];
	return NULL;
}

struct nt_map_node *nt_map_first(const struct nt_map *m, size_t *iter)
{
	*iter = 0;
	return map_scan(m, iter);
}

struct nt_map_node *nt_map_next(const struct nt_map *m,
                                struct nt_map_node *node, size_t *iter)
{
	return node->next ? node->next : map_scan(m, iter);
}
