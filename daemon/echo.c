/*
 * Echo, binary safe: bytes are read into a pooled buffer and written
 * straight back when nothing waits ahead of them; whatever the socket does
 * not take at once is queued from that same buffer, without a copy. A
 * client that does not read its echoes is read no further than its output
 * queue has room for (max_output): TCP back-pressure instead of server
 * memory, and never a send the queue's bound refuses.
 */
#include <errno.h>

#include "echo.h"
#include "worker.h"

static size_t echo_limit(const struct nt_conn *c)
{
	return c->w->cfg->limits.max_output;
}

static void echo_readable(struct nt_conn *c)
{
	size_t room = nt_conn_room(c);

	if (!room) {
		nt_conn_pause(c, NT_PAUSE_OUTPUT);
		return;
	}
	if (!c->in && !(c->in = nt_worker_buf_get(c->w))) {
		nt_conn_close(c, "out of memory");
		return;
	}
	struct nt_buf *b = c->in;
	ssize_t n =
	    nt_conn_read(c, b->data + b->len, NT_MIN(b->cap - b->len, room));
	if (n <= 0)
		return;
	ssize_t sent = nt_conn_write_now(c, b->data + b->len, (size_t)n);
	if (sent < 0)
		return;
	if (sent == n) {
		/* all out and nothing queued: the buffer is ours alone */
		nt_worker_buf_put(c->w, b);
		c->in = NULL;
		return;
	}
	if (nt_conn_send(c, b, b->len + (size_t)sent, (size_t)(n - sent)) < 0) {
		nt_conn_close(c, "out of memory");
		return;
	}
	b->len += (uint32_t)n;
	if (b->len == b->cap) {
		/* full: the queue keeps it alive until it is sent */
		nt_buf_unref(b);
		c->in = NULL;
	}
	if (!nt_conn_room(c))
		nt_conn_pause(c, NT_PAUSE_OUTPUT);
}

static void echo_drained(struct nt_conn *c)
{
	/* resume at half the limit so the pipe never runs dry */
	if ((c->pause & NT_PAUSE_OUTPUT) &&
	    nt_conn_queued(c) <= echo_limit(c) / 2)
		nt_conn_resume(c, NT_PAUSE_OUTPUT);
	/* nothing refers to the read buffer any more: recycle it, so an idle
	 * connection holds no buffer at all */
	if (!nt_conn_queued(c) && c->in && nt_buf_refs(c->in) == 1) {
		nt_worker_buf_put(c->w, c->in);
		c->in = NULL;
	}
}

static const struct nt_service_ops echo_ops = {
    .readable = echo_readable,
    .drained = echo_drained,
};

const struct nt_service_def nt_echo_service = {
    .name = "echo",
    .ops = &echo_ops,
};
