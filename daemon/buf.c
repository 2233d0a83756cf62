/*
 * Reference-counted buffers: see buf.h.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct nt_buf *nt_buf_new(size_t cap)
{
	if (cap > UINT32_MAX)
		return NULL;
	struct nt_buf *b = malloc(sizeof(*b) + cap);
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->len = 0;
	b->cap = (uint32_t)cap;
	return b;
}

struct nt_buf *nt_buf_from(const void *data, size_t len)
{
	struct nt_buf *b = nt_buf_new(len);
	if (!b)
		return NULL;
	memcpy(b->data, data, len);
	b->len = (uint32_t)len;
	return b;
}

void nt_buf_unref(struct nt_buf *b)
{
	/* acq_rel: the freeing thread must see every other holder's last
	 * use; a plain fence would do too, but TSan does not model fences */
	if (b &&
	    atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		free(b);
}
