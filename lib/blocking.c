/*
 * The blocking calls: each drives the client (process, then poll its fd
 * for at most natter_client_timeout()) until its condition holds, the
 * client is done, or the caller's timeout passes.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

typedef bool (*done_fn)(natter_client *c);

static int drive(natter_client *c, int timeout_ms, done_fn done)
{
	uint64_t end = timeout_ms < 0 ? NATTER__NEVER
	                              : natter__now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		natter__process(c);
		if (done && done(c))
			return 0;
		if (natter__terminal(c))
			return natter__terminal_code(c);
		uint64_t now = natter__now_ms();
		if (now >= end)
			return NATTER_ETIMEDOUT;
		int t = natter_client_timeout(c);
		if (end != NATTER__NEVER && (t < 0 || (uint64_t)t > end - now))
			t = (int)(end - now);
		struct pollfd p = {.fd = c->epfd, .events = POLLIN};
		if (poll(&p, 1, t) < 0 && errno != EINTR)
			return NATTER_EIO;
	}
}

/* run fn as the one driving call, or NATTER_EBUSY */
#define DRIVING(c, expr)                                                       \
	do {                                                                   \
		if (!(c))                                                      \
			return NATTER_EINVAL;                                  \
		if (atomic_exchange(&(c)->driving, true))                      \
			return NATTER_EBUSY;                                   \
		int rc_ = (expr);                                              \
		atomic_store(&(c)->driving, false);                            \
		return rc_;                                                    \
	} while (0)

static bool is_up(natter_client *c)
{
	return c->state == NATTER__ST_CONNECTED;
}

static bool is_flushed(natter_client *c)
{
	return natter_client_pending(c) == 0;
}

static bool has_line(natter_client *c)
{
	return c->rq_head != NULL;
}

int natter_client_connect(natter_client *c)
{
	DRIVING(c, drive(c, -1, is_up));
}

static int run(natter_client *c)
{
	int rc = drive(c, -1, NULL);
	return c->state == NATTER__ST_STOPPED ? 0 : rc;
}

int natter_client_run(natter_client *c)
{
	DRIVING(c, run(c));
}

int natter_client_flush(natter_client *c, int timeout_ms)
{
	DRIVING(c, drive(c, timeout_ms, is_flushed));
}

static bool is_stopped(natter_client *c)
{
	return c->state == NATTER__ST_STOPPED;
}

static int close_gracefully(natter_client *c, int timeout_ms)
{
	uint64_t end = timeout_ms < 0 ? NATTER__NEVER
	                              : natter__now_ms() + (uint64_t)timeout_ms;
	int rc = 0;

	if (natter__terminal(c))
		return c->state == NATTER__ST_STOPPED
		           ? 0
		           : natter__terminal_code(c);
	if (c->state != NATTER__ST_IDLE || natter_client_pending(c))
		rc = drive(c, timeout_ms, is_flushed);
	if (rc == 0 && c->state == NATTER__ST_CONNECTED) {
		natter__half_close(c);
		uint64_t now = natter__now_ms();
		int left = end == NATTER__NEVER ? -1
		           : now >= end         ? 0
		                                : (int)(end - now);
		drive(c, left, is_stopped);
		rc = c->close_err;
	}
	natter__teardown(c);
	c->half_closed = false;
	natter__set_state(c, NATTER__ST_STOPPED);
	return rc;
}

int natter_client_close(natter_client *c, int timeout_ms)
{
	DRIVING(c, close_gracefully(c, timeout_ms));
}

static int receive(natter_client *c, char *buf, size_t size, int timeout_ms)
{
	if (c->o.cb.line || !buf || !size)
		return NATTER_EINVAL;
	int rc = has_line(c) ? 0 : drive(c, timeout_ms, has_line);
	if (rc < 0 && !has_line(c))
		return rc;
	struct natter__rline *l = c->rq_head;
	c->rq_head = l->next;
	if (!c->rq_head)
		c->rq_tail = NULL;
	c->rq_len--;
	size_t n = l->len < size - 1 ? l->len : size - 1;
	memcpy(buf, l->data, n);
	buf[n] = '\0';
	size_t len = l->len;
	free(l);
	return len > (size_t)INT32_MAX ? INT32_MAX : (int)len;
}

int natter_client_receive(natter_client *c, char *buf, size_t size,
                          int timeout_ms)
{
	DRIVING(c, receive(c, buf, size, timeout_ms));
}
