/*
 * A connection's output queue: a ring of spans of reference-counted
 * buffers with the bytes it holds, and the pool of spare rings a worker
 * keeps for its queues. What the queue may hold (max_output) is the
 * connection's policy, not the queue's.
 */
#ifndef NT_OUTQ_H
#define NT_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "buf.h"

/* a span of one buffer: off + len never passes its cap, a uint32_t too */
struct nt_oseg {
	struct nt_buf *buf;
	uint32_t off;
	uint32_t len;
};

/* the queue charges each segment this much on top of its bytes, so a
 * stream of tiny pieces cannot hide a large ring behind max_output */
#define NT_OUTQ_SEG_COST sizeof(struct nt_oseg)

/*
 * The most segments one output queue holds. limits.max_output is the bound
 * that counts (each segment is charged sizeof(struct nt_oseg) on top of its
 * bytes, so no max_output natterd.conf(5) allows reaches this one); this
 * one keeps the ring's 32-bit arithmetic (cap * 2, head + count) in range
 * whatever the configuration says.
 */
#define NT_OUTQ_SEGS_MAX (UINT32_C(1) << 26)

/* a ring of segments; allocated on first use, freed when empty */
struct nt_outq {
	struct nt_oseg *seg;
	uint32_t head;
	uint32_t count;
	uint32_t cap;
	size_t bytes; /* of every segment, each charged NT_OUTQ_SEG_COST more */
};

/* rings: the first is NT_OUTQ_RING_FIRST_SIZE bytes (4 segments) and each
 * growth doubles it; a pool keeps spares of NT_OUTQ_RING_CLASSES such sizes,
 * NT_OUTQ_SPARE_BYTES in all at most */
#define NT_OUTQ_RING_FIRST_SIZE 64
#define NT_OUTQ_RING_CLASSES    8
#define NT_OUTQ_SPARE_BYTES     (1024 * 1024)

/*
 * Spare rings by size class (NT_OUTQ_RING_FIRST_SIZE << k): a chat line to
 * a room queues into many queues at once, and a queue's ring is given back
 * when it empties, so without these every recipient would cost a malloc and
 * a free per line, more as its queue grows. One per worker; not locked.
 */
struct nt_outq_pool {
	void **spare[NT_OUTQ_RING_CLASSES];
	uint32_t len[NT_OUTQ_RING_CLASSES], cap[NT_OUTQ_RING_CLASSES];
	size_t bytes; /* in all classes; at most NT_OUTQ_SPARE_BYTES */
};

void nt_outq_pool_init(struct nt_outq_pool *p);
/* frees every spare; p is empty and usable again */
void nt_outq_pool_free(struct nt_outq_pool *p);
/* a ring of `size` bytes from the spares (or malloc); NULL if no memory */
void *nt_outq_pool_get(struct nt_outq_pool *p, size_t size);
/* ring (NULL is fine) back: kept if its size is a class and the pool has
 * room for it, freed otherwise */
void nt_outq_pool_put(struct nt_outq_pool *p, void *ring, size_t size);

/* Room for one more segment: the ring from p, or a ring twice as large;
 * -ENOBUFS at NT_OUTQ_SEGS_MAX segments, -ENOMEM. */
int nt_outq_grow(struct nt_outq *q, struct nt_outq_pool *p);

/*
 * A new segment at the tail: len bytes of b from off (within b's cap, the
 * caller checks), with its own reference to b. Whatever max_output says:
 * the caller applies its bound first. -ENOBUFS or -ENOMEM as for
 * nt_outq_grow(), and then nothing is queued.
 */
static inline int nt_outq_push(struct nt_outq *q, struct nt_outq_pool *p,
                               struct nt_buf *b, size_t off, size_t len)
{
	if (q->count == q->cap) {
		int rc = nt_outq_grow(q, p);
		if (rc < 0)
			return rc;
	}
	q->seg[(q->head + q->count) % q->cap] = (struct nt_oseg){
	    .buf = nt_buf_ref(b), .off = (uint32_t)off, .len = (uint32_t)len};
	q->count++;
	q->bytes += len + NT_OUTQ_SEG_COST;
	return 0;
}

/* the segment at the tail, or NULL when the queue is empty */
static inline struct nt_oseg *nt_outq_last(struct nt_outq *q)
{
	return q->count ? &q->seg[(q->head + q->count - 1) % q->cap] : NULL;
}

/* t, the tail segment (nt_outq_last), takes the len bytes of its buffer
 * right after it */
static inline void nt_outq_extend(struct nt_outq *q, struct nt_oseg *t,
                                  size_t len)
{
	t->len += (uint32_t)len;
	q->bytes += len;
}

/* the first segments, at most max of them, for writev: how many */
static inline int nt_outq_iov(const struct nt_outq *q, struct iovec *iov,
                              int max)
{
	int n = 0;

	for (uint32_t i = 0; i < q->count && n < max; i++) {
		struct nt_oseg *s = &q->seg[(q->head + i) % q->cap];
		iov[n].iov_base = s->buf->data + s->off;
		iov[n++].iov_len = s->len;
	}
	return n;
}

/* Drop n written bytes from the front; an emptied queue gives its ring
 * back to p. */
void nt_outq_consume(struct nt_outq *q, struct nt_outq_pool *p, size_t n);
/* Drop everything queued, unwritten; the ring goes back to p. */
void nt_outq_clear(struct nt_outq *q, struct nt_outq_pool *p);

#endif
