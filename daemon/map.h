/*
 * A small intrusive hash map keyed by short strings, for the chat registry
 * and the workers' room tables. The caller embeds a struct nt_map_node in
 * its record and owns the record's memory; the map only links it. Keys are
 * compared as given, so callers fold case before insert and lookup.
 * Not thread-safe: each map has one owner or one lock.
 */
#ifndef NT_MAP_H
#define NT_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct nt_map_node {
	struct nt_map_node *next;
	const char *key; /* points into the record; must outlive the link */
	uint32_t hash;
};

struct nt_map {
	struct nt_map_node **bucket;
	size_t n_buckets; /* a power of two, or 0 before the first insert */
	size_t n;
	uint64_t seed;
};

void nt_map_init(struct nt_map *m);
void nt_map_free(struct nt_map *m); /* frees the table, not the records */
struct nt_map_node *nt_map_get(const struct nt_map *m, const char *key);
/* -ENOMEM, or -EEXIST if the key is there already */
int nt_map_put(struct nt_map *m, struct nt_map_node *node, const char *key);
void nt_map_del(struct nt_map *m, struct nt_map_node *node);

/* for (node = nt_map_first(m, &i); node; node = nt_map_next(m, node, &i)) */
struct nt_map_node *nt_map_first(const struct nt_map *m, size_t *iter);
struct nt_map_node *nt_map_next(const struct nt_map *m,
                                struct nt_map_node *node, size_t *iter);

#endif
