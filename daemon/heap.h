/*
 * A binary min-heap of items on a 64-bit key, the key kept beside each
 * item so that sifting touches only the heap's own array. Each item learns
 * its slot through the moved callback, so it can be re-keyed or removed
 * later without a search: the worker keys its connections' deadlines here.
 */
#ifndef NT_HEAP_H
#define NT_HEAP_H

#include <stdint.h>

/* the slot of an item that is in no heap */
#define NT_HEAP_NONE UINT32_MAX

/* item is now at slot idx, or NT_HEAP_NONE when it left the heap */
typedef void nt_heap_moved_fn(void *item, uint32_t idx);

struct nt_heap_ent {
	uint64_t key;
	void *item;
};

struct nt_heap {
	struct nt_heap_ent *e;
	uint32_t len, cap;
	nt_heap_moved_fn *moved;
};

void nt_heap_init(struct nt_heap *h, nt_heap_moved_fn *moved);
/* Frees the array; the items are the caller's and are not told. */
void nt_heap_destroy(struct nt_heap *h);

/* Add item with key; its moved hook hears its slot. 0 or -ENOMEM. */
int nt_heap_insert(struct nt_heap *h, void *item, uint64_t key);
/* Give the item at slot idx a new key, earlier or later. */
void nt_heap_update(struct nt_heap *h, uint32_t idx, uint64_t key);
/* Take out the item at slot idx; its moved hook hears NT_HEAP_NONE. */
void nt_heap_remove(struct nt_heap *h, uint32_t idx);

static inline uint32_t nt_heap_len(const struct nt_heap *h)
{
	return h->len;
}
/* The key at slot idx, which must be in use. */
static inline uint64_t nt_heap_key(const struct nt_heap *h, uint32_t idx)
{
	return h->e[idx].key;
}
/* The smallest key, or UINT64_MAX when the heap is empty. */
static inline uint64_t nt_heap_min_key(const struct nt_heap *h)
{
	return h->len ? h->e[0].key : UINT64_MAX;
}
/* The item with the smallest key, or NULL when the heap is empty. */
static inline void *nt_heap_min(const struct nt_heap *h)
{
	return h->len ? h->e[0].item : NULL;
}

#endif
