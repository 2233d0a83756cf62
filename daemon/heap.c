/*
 * The binary min-heap of heap.h: parents at (i - 1) / 2, the array doubled
 * when full and never shrunk (its high-water mark is the most connections
 * a worker held at once).
 */
#include <errno.h>
#include <stdlib.h>

#include "heap.h"

#define HEAP_FIRST_CAP 64

void nt_heap_init(struct nt_heap *h, nt_heap_moved_fn *moved)
{
	*h = (struct nt_heap){.moved = moved};
}

void nt_heap_destroy(struct nt_heap *h)
{
	free(h->e);
	h->e = NULL;
	h->len = h->cap = 0;
}

static void heap_set(struct nt_heap *h, uint32_t i, struct nt_heap_ent e)
{
	h->e[i] = e;
	h->moved(e.item, i);
}

static uint32_t heap_up(struct nt_heap *h, uint32_t i)
{
	struct nt_heap_ent e = h->e[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (h->e[p].key <= e.key)
			break;
		heap_set(h, i, h->e[p]);
		i = p;
	}
	heap_set(h, i, e);
	return i;
}

static void heap_down(struct nt_heap *h, uint32_t i)
{
	struct nt_heap_ent e = h->e[i];

	for (;;) {
		uint32_t l = 2 * i + 1, m = i;
		uint64_t best = e.key;
		if (l < h->len && h->e[l].key < best)
			m = l, best = h->e[l].key;
		if (l + 1 < h->len && h->e[l + 1].key < best)
			m = l + 1;
		if (m == i)
			break;
		heap_set(h, i, h->e[m]);
		i = m;
	}
	heap_set(h, i, e);
}

/* an entry at i whose key changed either way goes where it belongs */
static void heap_fix(struct nt_heap *h, uint32_t i)
{
	heap_down(h, heap_up(h, i));
}

int nt_heap_insert(struct nt_heap *h, void *item, uint64_t key)
{
	if (h->len == h->cap) {
		uint32_t ncap = h->cap ? h->cap * 2 : HEAP_FIRST_CAP;
		void *ne;
		if (ncap < h->cap ||
		    !(ne = realloc(h->e, (size_t)ncap * sizeof(*h->e))))
			return -ENOMEM;
		h->e = ne;
		h->cap = ncap;
	}
	h->e[h->len] = (struct nt_heap_ent){.key = key, .item = item};
	heap_up(h, h->len++);
	return 0;
}

void nt_heap_update(struct nt_heap *h, uint32_t idx, uint64_t key)
{
	h->e[idx].key = key;
	heap_fix(h, idx);
}

void nt_heap_remove(struct nt_heap *h, uint32_t idx)
{
	void *item = h->e[idx].item;

	h->len--;
	if (idx != h->len) {
		h->e[idx] = h->e[h->len];
		heap_fix(h, idx);
	}
	h->moved(item, NT_HEAP_NONE);
}
