/*
 * Reference-counted byte buffers. A buffer is written once by its creator
 * and then only read: an output queue entry points into it, so one chat
 * line reaches any number of recipients, on any worker, without a copy.
 */
#ifndef NT_BUF_H
#define NT_BUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct nt_buf {
	atomic_uint refs;
	uint32_t len; /* bytes filled */
	uint32_t cap;
	uint8_t data[];
};

/* a buffer with room for cap bytes, one reference, len 0; NULL if no memory */
struct nt_buf *nt_buf_new(size_t cap);
/* a buffer holding a copy of data */
struct nt_buf *nt_buf_from(const void *data, size_t len);

static inline struct nt_buf *nt_buf_ref(struct nt_buf *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

static inline unsigned nt_buf_refs(struct nt_buf *b)
{
	return atomic_load_explicit(&b->refs, memory_order_acquire);
}

/* drops one reference; the last one frees. NULL is fine. */
void nt_buf_unref(struct nt_buf *b);

#endif
