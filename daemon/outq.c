/*
 * The output queue's ring (growth, consumption, clearing) and the pool of
 * spare rings it takes from and gives back to. No I/O and no policy: the
 * connection decides what may be queued and writes it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"

/* the first ring in segments */
#define RING_FIRST_CAP (NT_OUTQ_RING_FIRST_SIZE / sizeof(struct nt_oseg))
_Static_assert(NT_OUTQ_RING_FIRST_SIZE % sizeof(struct nt_oseg) == 0,
               "the first ring holds whole segments");
_Static_assert(NT_OUTQ_SEGS_MAX <= UINT32_MAX / 2 &&
                   (NT_OUTQ_SEGS_MAX & (NT_OUTQ_SEGS_MAX - 1)) == 0,
               "rings double up to exactly NT_OUTQ_SEGS_MAX");

void nt_outq_pool_init(struct nt_outq_pool *p)
{
	memset(p, 0, sizeof(*p));
}

void nt_outq_pool_free(struct nt_outq_pool *p)
{
	for (unsigned k = 0; k < NT_OUTQ_RING_CLASSES; k++) {
		for (uint32_t i = 0; i < p->len[k]; i++)
			free(p->spare[k][i]);
		free(p->spare[k]);
	}
	nt_outq_pool_init(p);
}

/* the class of a ring of `size` bytes, or -1 if it is not kept */
static int pool_class(size_t size)
{
	size_t units = size / NT_OUTQ_RING_FIRST_SIZE;

	if (size % NT_OUTQ_RING_FIRST_SIZE || !units || (units & (units - 1)))
		return -1;
	int k = __builtin_ctzl(units);
	return k < NT_OUTQ_RING_CLASSES ? k : -1;
}

void *nt_outq_pool_get(struct nt_outq_pool *p, size_t size)
{
	int k = pool_class(size);

	if (k >= 0 && p->len[k]) {
		p->bytes -= size;
		return p->spare[k][--p->len[k]];
	}
	return malloc(size);
}

void nt_outq_pool_put(struct nt_outq_pool *p, void *ring, size_t size)
{
	int k = ring ? pool_class(size) : -1;

	if (k >= 0 && p->bytes + size <= NT_OUTQ_SPARE_BYTES) {
		if (p->len[k] == p->cap[k]) {
			uint32_t ncap = p->cap[k] ? p->cap[k] * 2 : 64;
			void **ns = realloc(p->spare[k], ncap * sizeof(*ns));
			if (!ns) {
				free(ring);
				return;
			}
			p->spare[k] = ns;
			p->cap[k] = ncap;
		}
		p->spare[k][p->len[k]++] = ring;
		p->bytes += size;
		return;
	}
	free(ring);
}

/* the ring goes back to the pool; an idle queue keeps none */
static void outq_free_ring(struct nt_outq *q, struct nt_outq_pool *p)
{
	nt_outq_pool_put(p, q->seg, q->cap * sizeof(*q->seg));
	memset(q, 0, sizeof(*q));
}

int nt_outq_grow(struct nt_outq *q, struct nt_outq_pool *p)
{
	if (q->count < q->cap)
		return 0;
	if (q->cap >= NT_OUTQ_SEGS_MAX)
		return -ENOBUFS;
	uint32_t ncap = q->cap ? q->cap * 2 : (uint32_t)RING_FIRST_CAP;
	struct nt_oseg *ns = nt_outq_pool_get(p, ncap * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	/* unwrap the ring into the new array */
	for (uint32_t i = 0; i < q->count; i++)
		ns[i] = q->seg[(q->head + i) % q->cap];
	nt_outq_pool_put(p, q->seg, q->cap * sizeof(*q->seg));
	q->seg = ns;
	q->head = 0;
	q->cap = ncap;
	return 0;
}

void nt_outq_consume(struct nt_outq *q, struct nt_outq_pool *p, size_t n)
{
	while (n && q->count) {
		struct nt_oseg *s = &q->seg[q->head];
		if (n < s->len) {
			s->off += (uint32_t)n;
			s->len -= (uint32_t)n;
			q->bytes -= n;
			return;
		}
		n -= s->len;
		q->bytes -= s->len + NT_OUTQ_SEG_COST;
		nt_buf_unref(s->buf);
		q->head = (q->head + 1) % q->cap;
		q->count--;
	}
	if (!q->count)
		outq_free_ring(q, p);
}

void nt_outq_clear(struct nt_outq *q, struct nt_outq_pool *p)
{
	for (uint32_t i = 0; i < q->count; i++)
		nt_buf_unref(q->seg[(q->head + i) % q->cap].buf);
	outq_free_ring(q, p);
}
