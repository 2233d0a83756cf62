/*
 * The blocking calls: each drives the client (process, then poll its fd
 * for at most natter_client_timeout()) until its condition holds, the
 * client is done, or the caller's timeout passes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

typedef bool (*done_fn)(natter_client *c);

/*
 * The one rule of natter.h: once the client is stopped or gave up, a
 * blocking call ends with this, before its own condition is looked at
 * (a flush of an empty queue did not flush anything to anyone).
 * 0 while the client is neither.
 */
static int ended_code(natter_client *c)
{
	if (c->state == NATTER__ST_STOPPED || natter__stop_requested(c))
		return NATTER_ECLOSED;
	if (c->state == NATTER__ST_GAVE_UP)
		return natter__terminal_code(c);
	return 0;
}

static int drive(natter_client *c, int timeout_ms, done_fn done)
{
	uint64_t end = timeout_ms < 0 ? NATTER__NEVER
	                              : natter__now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		int rc = ended_code(c);
		if (rc)
			return rc;
		natter__process(c);
		if ((rc = ended_code(c)))
			return rc;
		if (done && done(c))
			return 0;
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

/* a stop while running is what the caller waits for: 0 */
static int run(natter_client *c, int timeout_ms)
{
	int rc = ended_code(c);
	if (rc)
		return rc;
	rc = drive(c, timeout_ms, NULL);
	return rc == NATTER_ECLOSED && natter__stop_requested(c) ? 0 : rc;
}

int natter_client_run(natter_client *c)
{
	DRIVING(c, run(c, -1));
}

int natter_client_run_for(natter_client *c, int timeout_ms)
{
	DRIVING(c, run(c, timeout_ms < 0 ? 0 : timeout_ms));
}

int natter_client_flush(natter_client *c, int timeout_ms)
{
	DRIVING(c, drive(c, timeout_ms, is_flushed));
}

static bool is_synced(natter_client *c)
{
	return !c->sync_token[0];
}

/*
 * A ping behind every line queued so far: natterd handles a client's
 * lines in order and has acted on all of them (relayed them to the room)
 * when it answers; the echo service has echoed them when the ping comes
 * back. It goes through the user queue, so it waits out an outage too.
 */
static int flush_server(natter_client *c, int timeout_ms)
{
	char cmd[NATTER__TOKEN_MAX + 16];
	int rc = ended_code(c);

	if (rc)
		return rc;
	snprintf(c->sync_token, sizeof(c->sync_token), "natter-sync-%llu",
	         ++c->sync_seq);
	int n = snprintf(cmd, sizeof(cmd), "/ping %s", c->sync_token);
	pthread_mutex_lock(&c->lock);
	rc = natter__queue_push(&c->q, cmd, (size_t)n);
	pthread_mutex_unlock(&c->lock);
	if (rc == 0)
		rc = drive(c, timeout_ms, is_synced);
	c->sync_token[0] = '\0'; /* a late answer is an ordinary line */
	return rc;
}

int natter_client_flush_server(natter_client *c, int timeout_ms)
{
	DRIVING(c, flush_server(c, timeout_ms));
}

static int close_gracefully(natter_client *c, int timeout_ms)
{
	uint64_t end = timeout_ms < 0 ? NATTER__NEVER
	                              : natter__now_ms() + (uint64_t)timeout_ms;
	int rc = ended_code(c);

	if (rc)
		return rc; /* whatever was unsent is lost already */
	if (c->state != NATTER__ST_IDLE || natter_client_pending(c))
		rc = drive(c, timeout_ms, is_flushed);
	if (rc == 0 && c->state == NATTER__ST_CONNECTED) {
		natter__half_close(c);
		uint64_t now = natter__now_ms();
		int left = end == NATTER__NEVER ? -1
		           : now >= end         ? 0
		                                : (int)(end - now);
		drive(c, left, NULL); /* until the server's end stops us */
		rc = natter__stop_requested(c) ? NATTER_ECLOSED : c->close_err;
	}
	natter__teardown(c);
	c->half_closed = false;
	natter__set_state(c, NATTER__ST_STOPPED);
	/* a line another thread queued after the flush was not sent */
	if (rc == 0 && natter_client_pending(c))
		rc = NATTER_ECLOSED;
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
	/* lines that arrived are handed out even after the end */
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
