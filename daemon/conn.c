/*
 * A connection's life: created when its worker receives the fd, fed by
 * epoll events, written only through its output queue, timed out by the
 * worker's timer heap, and torn down through nt_conn_close() alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "admit.h"
#include "conn.h"
#include "log.h"
#include "worker.h"

#define FLUSH_IOV_MAX 64
/* natterd.conf(5)'s largest max_output (1 GiB) fills no ring to its most */
_Static_assert(((size_t)1 << 30) / (NT_OUTQ_SEG_COST + 1) < NT_OUTQ_SEGS_MAX,
               "max_output is the bound that counts");

uint64_t nt_conn_now(const struct nt_conn *c)
{
	return c->w->now;
}

/* the service reads: open and not paused */
static bool conn_reading(const struct nt_conn *c)
{
	return c->state == NT_CONN_OPEN && !c->pause;
}

static void conn_update_epoll(struct nt_conn *c)
{
	uint32_t ev = 0;

	if (c->state == NT_CONN_CLOSED)
		return;
	/* lingering reads too, to drop what comes */
	if (conn_reading(c) || c->state == NT_CONN_LINGERING)
		ev |= EPOLLIN;
	if (c->want_write)
		ev |= EPOLLOUT;
	if (ev == c->watch.events)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = &c->watch};
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->watch.fd, &e) < 0) {
		nt_log_warn("epoll_ctl on a client");
		nt_conn_close(c, "internal error (epoll)");
		return;
	}
	c->watch.events = ev;
}

static uint64_t conn_deadline(const struct nt_conn *c)
{
	const struct nt_timeouts *t = &c->lc->timeouts;
	uint64_t d = UINT64_MAX;

	if (c->state == NT_CONN_LINGERING)
		return c->linger_until;
	/* idle means the client sent nothing and is owed nothing: while
	 * output is queued the write timeout watches instead */
	if (t->idle && !c->out.count)
		d = c->last_activity + (uint64_t)t->idle * 1000;
	if (t->write && c->out.count)
		d = NT_MIN(d, c->last_progress + (uint64_t)t->write * 1000);
	if (t->line && c->partial_since)
		d = NT_MIN(d, c->partial_since + (uint64_t)t->line * 1000);
	if (c->svc_deadline)
		d = NT_MIN(d, c->svc_deadline);
	return d;
}

/* c's deadline is d from now on (UINT64_MAX: none) */
static void conn_timer_set(struct nt_conn *c, uint64_t d)
{
	struct nt_heap *h = &c->w->deadlines;

	if (d == UINT64_MAX) {
		if (c->heap_idx != NT_HEAP_NONE)
			nt_heap_remove(h, c->heap_idx);
	} else if (c->heap_idx != NT_HEAP_NONE)
		nt_heap_update(h, c->heap_idx, d);
	else if (nt_heap_insert(h, c, d) < 0)
		/* without a timer it would never time out */
		nt_conn_close(c, "out of memory");
}

/*
 * The worker's deadline heap is kept lazily: our key there may be earlier
 * than the real deadline, never later. Activity only ever moves a deadline
 * later, so the common case (a line came, output went) touches no heap;
 * when the early key comes due, nt_conn_on_deadline() finds nothing due
 * and re-keys it exactly (conn_rekey). A deadline moving earlier (a line
 * started, a service timer) is re-keyed at once.
 */
static void conn_rekey(struct nt_conn *c)
{
	conn_timer_set(c, conn_deadline(c));
}

static void conn_reschedule(struct nt_conn *c)
{
	uint64_t d = conn_deadline(c);

	if (c->heap_idx != NT_HEAP_NONE &&
	    d >= nt_heap_key(&c->w->deadlines, c->heap_idx))
		return;
	conn_timer_set(c, d);
}

/* ---- the state machine ---- */

static const char *const state_names[NT_CONN_STATES] = {
    [NT_CONN_OPEN] = "open",           [NT_CONN_FINISHING] = "finishing",
    [NT_CONN_DRAINING] = "draining",   [NT_CONN_HANDED_OVER] = "handed over",
    [NT_CONN_LINGERING] = "lingering", [NT_CONN_CLOSED] = "closed",
};

#define TO(s) (1u << (s))
/* the moves conn.h's enum nt_conn_state lists, by state left */
static const unsigned state_moves[NT_CONN_STATES] = {
    [NT_CONN_OPEN] = TO(NT_CONN_FINISHING) | TO(NT_CONN_DRAINING) |
                     TO(NT_CONN_HANDED_OVER) | TO(NT_CONN_CLOSED),
    [NT_CONN_FINISHING] =
        TO(NT_CONN_HANDED_OVER) | TO(NT_CONN_LINGERING) | TO(NT_CONN_CLOSED),
    [NT_CONN_DRAINING] = TO(NT_CONN_FINISHING) | TO(NT_CONN_HANDED_OVER) |
                         TO(NT_CONN_LINGERING) | TO(NT_CONN_CLOSED),
    [NT_CONN_HANDED_OVER] = TO(NT_CONN_CLOSED),
    [NT_CONN_LINGERING] = TO(NT_CONN_CLOSED),
    [NT_CONN_CLOSED] = 0,
};
#undef TO

bool nt_conn_state_ok(enum nt_conn_state from, enum nt_conn_state to)
{
	return from < NT_CONN_STATES && to < NT_CONN_STATES &&
	       (state_moves[from] & (1u << to));
}

const char *nt_conn_state_name(enum nt_conn_state s)
{
	return s < NT_CONN_STATES ? state_names[s] : "?";
}

/*
 * A move the table does not allow is a bug in natterd, and the one state
 * every live connection may move to is CLOSED: so such a move is logged
 * and the connection closed instead, rather than asserted. natterd has
 * no separate debug build, and an abort would end every client's session
 * for one connection's bug; check_conn holds the table to its spec. 0, or
 * -EINVAL when the move was refused (c is then closed).
 */
static int conn_set_state(struct nt_conn *c, enum nt_conn_state to)
{
	if (nt_conn_state_ok(c->state, to)) {
		c->state = (uint8_t)to;
		return 0;
	}
	nt_log_errx("internal error: a connection went from %s to %s",
	            nt_conn_state_name(c->state), nt_conn_state_name(to));
	nt_conn_close(c, "internal error (state)");
	return -EINVAL;
}

void nt_conn_restore_free(struct nt_conn_restore *r)
{
	if (!r)
		return;
	nt_sd_client_forget(r->store);
	free(r);
}

/* what a connection that lost its listener keeps when memory is short */
static const struct nt_listener_conf orphan_lc = {.name = "?"};

static void conn_lc_set(struct nt_conn *c, const struct nt_listener_conf *lc,
                        bool owned)
{
	if (c->lc_owned && c->lc != lc)
		free((void *)c->lc);
	c->lc = lc;
	c->lc_owned = owned;
}

/*
 * Point c at lc, which is in cfg: if cfg is not the worker's, the listener
 * of the same name and service in the worker's config; if there is none,
 * a private copy of lc, so the connection keeps its settings.
 */
static void conn_set_listener(struct nt_conn *c,
                              const struct nt_listener_conf *lc,
                              const struct nt_config *cfg)
{
	const struct nt_listener_conf *nl = lc;

	if (cfg != c->w->cfg) {
		nl = nt_config_listener(c->w->cfg, lc->name);
		if (nl && nl->service != lc->service)
			nl = NULL;
	}
	if (nl) {
		conn_lc_set(c, nl, false);
		return;
	}
	if (c->lc_owned && lc == c->lc)
		return;
	struct nt_listener_conf *own = malloc(sizeof(*own));
	if (!own) {
		conn_lc_set(c, &orphan_lc, false);
		nt_conn_close(c, "out of memory");
		return;
	}
	*own = *lc;
	conn_lc_set(c, own, true);
}

void nt_conn_client(const struct nt_conn *c, char *buf, size_t size)
{
	nt_peer_format(&c->peer, buf, size);
}

/*
 * "ADDRESS (LISTENER) WHATDETAIL" at debug level. Only formatted when debug
 * is on: formatting the address costs more than opening or closing.
 */
static void conn_debug(const struct nt_conn *c, const char *msgid,
                       const char *what, const char *detail)
{
	if (!nt_log_enabled(NT_LOG_DEBUG))
		return;
	char who[NT_ADDRSTR_MAX];
	nt_conn_client(c, who, sizeof(who));
	struct nt_log_ctx ctx = {
	    .msgid = msgid, .client = who, .listener = c->lc->name};
	nt_logc(NT_LOG_DEBUG, &ctx, "%s (%s) %s%s", who, c->lc->name, what,
	        detail);
}

static void conn_store(struct nt_conn *c, struct nt_conn_restore *restore)
{
	struct nt_sd_session s = {0};

	if (restore) {
		c->store = restore->store;
		restore->store = NULL;
		return;
	}
	if (!nt_sd_store_enabled())
		return;
	snprintf(s.listener, sizeof(s.listener), "%s", c->lc->name);
	c->store = nt_sd_client_store(c->watch.fd, &s);
}

struct nt_conn *nt_conn_new(struct nt_worker *w, int fd,
                            const struct nt_listener_conf *lc,
                            const struct nt_config *cfg,
                            const struct nt_peer *peer,
                            struct nt_conn_restore *restore)
{
	struct nt_conn *c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->watch.fd = fd;
	c->watch.fn = nt_conn_on_events;
	c->w = w;
	c->lc = lc;
	c->peer = *peer;
	c->ops = nt_service_get(lc->service)->ops;
	c->heap_idx = NT_HEAP_NONE;
	c->last_activity = c->last_progress = w->now;
	if (nt_worker_watch_set(w, &c->watch, EPOLLIN) < 0) {
		free(c);
		goto fail;
	}
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	NT_STAT_ADD(w->stats.opened, 1);
	conn_set_listener(c, lc, cfg);
	conn_debug(
	    c, NT_MSGID_CONN_OPEN,
	    restore ? "taken over from the previous natterd" : "connected", "");
	if (!nt_conn_closed(c)) {
		conn_store(c, restore);
		conn_reschedule(c);
		if (c->ops->open &&
		    c->ops->open(c, restore ? &restore->session : NULL) < 0)
			nt_conn_close(c, "could not set up the session");
	}
	nt_conn_restore_free(restore);
	return c;
fail:
	if (restore) {
		/* it was only alive because systemd held it */
		shutdown(fd, SHUT_RDWR);
		nt_conn_restore_free(restore);
	}
	return NULL;
}

/*
 * Whatever is still queued (a refusal, a quit notice, "disconnected: ...")
 * gets one non-blocking write before the socket closes; if the peer is not
 * reading, it is simply lost with the connection.
 */
static void conn_last_words(struct nt_conn *c)
{
	struct iovec iov[FLUSH_IOV_MAX];
	int n;

	/* as much as the socket takes without waiting, however many
	 * segments are queued */
	while ((n = nt_outq_iov(&c->out, iov, FLUSH_IOV_MAX)) > 0) {
		ssize_t w = writev(c->watch.fd, iov, n);
		if (w <= 0)
			break;
		NT_STAT_ADD(c->w->stats.bytes_out, (uint64_t)w);
		nt_outq_consume(&c->out, &c->w->rings, (size_t)w);
	}
}

/*
 * Our descriptor is one of two when systemd's fd store holds the other:
 * closing ours alone would leave the client connected. Either let go for
 * the next natterd (handover) or end the connection for real.
 */
static void conn_unstore(struct nt_conn *c)
{
	if (!c->store)
		return;
	if (c->handed_over) {
		NT_STAT_ADD(c->w->stats.handed_over, 1);
		nt_sd_client_release(c->store);
	} else {
		shutdown(c->watch.fd, SHUT_RDWR);
		nt_sd_client_forget(c->store);
	}
	c->store = NULL;
}

void nt_conn_free(struct nt_conn *c)
{
	struct nt_worker *w = c->w;

	if (c->ops->close)
		c->ops->close(c);
	conn_debug(c, NT_MSGID_CONN_CLOSE,
	           "closed: ", c->close_reason ? c->close_reason : "?");
	if (c->heap_idx != NT_HEAP_NONE)
		nt_heap_remove(&w->deadlines, c->heap_idx);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	conn_last_words(c);
	nt_outq_clear(&c->out, &w->rings);
	nt_buf_unref(c->in);
	conn_unstore(c);
	close(c->watch.fd); /* out of the epoll set since nt_conn_close() */
	if (c->lc_owned)
		free((void *)c->lc);
	NT_STAT_ADD(w->stats.closed, 1);
	atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
	nt_admit_release(w->admit, &c->peer);
	free(c);
}

void nt_conn_close(struct nt_conn *c, const char *reason)
{
	if (c->state == NT_CONN_CLOSED)
		return;
	c->handed_over = c->state == NT_CONN_HANDED_OVER;
	conn_set_state(c, NT_CONN_CLOSED); /* allowed from every other */
	c->close_reason = reason ? reason : "closed";
	/* no more events for it; the fd itself is closed at the safe point */
	epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->watch.fd, NULL);
	nt_worker_closing(c->w, c);
}

ssize_t nt_conn_read(struct nt_conn *c, void *buf, size_t len)
{
	ssize_t n = read(c->watch.fd, buf, len);

	if (n > 0) {
		NT_STAT_ADD(c->w->stats.bytes_in, (uint64_t)n);
		c->last_activity = c->w->now;
		return n;
	}
	if (n == 0) {
		c->peer_eof = true;
		nt_conn_finish(c, NT_FINISH_OUTPUT, "client closed");
	} else if (errno == ECONNRESET)
		nt_conn_close(c, "connection reset by peer");
	else if (errno != EINTR && errno != EWOULDBLOCK)
		nt_conn_close(c, "read error");
	return 0;
}

/* a new segment at the tail, whatever the bound says */
static int conn_push(struct nt_conn *c, struct nt_buf *b, size_t off,
                     size_t len)
{
	int rc = nt_outq_push(&c->out, &c->w->rings, b, off, len);

	if (rc < 0)
		return rc;
	if (c->out.count == 1) {
		c->last_progress = c->w->now;
		conn_reschedule(c);
	}
	nt_worker_want_flush(c->w, c);
	return 0;
}

/* the service says what passing the bound means; closing is the default */
static int conn_overflow(struct nt_conn *c)
{
	if (c->ops->overflow)
		c->ops->overflow(c);
	else
		nt_conn_close(c, "output overflow");
	return -ENOBUFS;
}

int nt_conn_send(struct nt_conn *c, struct nt_buf *b, size_t off, size_t len)
{
	struct nt_outq *q = &c->out;

	if (c->state >= NT_CONN_LINGERING)
		return -EPIPE;
	if (len == 0)
		return 0;
	/* a segment is a span of b, whose cap is 32-bit: so are its off and
	 * len, and a tail grown within b */
	if (off > b->cap || len > b->cap - off)
		return -EINVAL;
	/* what is queued, charges included, and the new bytes: a line as
	 * long as max_output still fits an empty queue */
	if (q->bytes + len > c->w->cfg->limits.max_output)
		return conn_overflow(c);
	/* a tail segment of the same buffer just grows: echo reads land
	 * right after each other in one read buffer */
	struct nt_oseg *t = nt_outq_last(q);
	if (!t || t->buf != b || t->off + t->len != off) {
		int rc = conn_push(c, b, off, len);
		return rc == -ENOBUFS ? conn_overflow(c) : rc;
	}
	nt_outq_extend(q, t, len);
	nt_worker_want_flush(c->w, c);
	return 0;
}

/* a copy buffer has room for this much, so that replies in a row share it */
#define COPY_BUF_MIN 256

int nt_conn_send_copy(struct nt_conn *c, const void *data, size_t len)
{
	struct nt_oseg *t = nt_outq_last(&c->out);
	struct nt_buf *b = NULL;

	/* a tail buffer only this queue refers to may take bytes after its
	 * end: nobody else can see them */
	if (t && t->off + t->len == t->buf->len &&
	    t->buf->cap - t->buf->len >= len && nt_buf_refs(t->buf) == 1)
		b = nt_buf_ref(t->buf);
	if (!b && !(b = nt_buf_new(NT_MAX(len, (size_t)COPY_BUF_MIN))))
		return -ENOMEM;
	memcpy(b->data + b->len, data, len);
	int rc = nt_conn_send(c, b, b->len, len);
	if (rc == 0)
		b->len += (uint32_t)len;
	nt_buf_unref(b);
	return rc;
}

void nt_conn_close_with(struct nt_conn *c, const char *reason, const void *data,
                        size_t len)
{
	if (c->state < NT_CONN_LINGERING) {
		struct nt_buf *b = nt_buf_from(data, len);
		/* no memory for them: the close alone will do */
		if (b)
			conn_push(c, b, 0, len);
		nt_buf_unref(b);
	}
	nt_conn_close(c, reason);
}

/*
 * Everything owed is written: send our FIN and wait for the peer's, reading
 * and dropping what it still sends (see NT_LINGER_MS). A peer that already
 * sent its EOF has nothing more to send: closed at once.
 */
static void conn_linger(struct nt_conn *c)
{
	if (c->peer_eof || shutdown(c->watch.fd, SHUT_WR) < 0) {
		nt_conn_close(c, c->close_reason);
		return;
	}
	if (conn_set_state(c, NT_CONN_LINGERING) < 0)
		return;
	c->linger_until = c->w->now + NT_LINGER_MS;
	conn_update_epoll(c);
	conn_reschedule(c);
}

/* an ending connection whose queue is empty goes on to its end */
static void conn_drained(struct nt_conn *c)
{
	if (c->out.count)
		return;
	switch ((enum nt_conn_state)c->state) {
	case NT_CONN_FINISHING:
	case NT_CONN_DRAINING:
		conn_linger(c);
		break;
	case NT_CONN_HANDED_OVER:
		/* the next natterd must not see a FIN */
		nt_conn_close(c, c->close_reason);
		break;
	default:
		break;
	}
}

/* lingering: what the peer sends is dropped; its EOF (or an error) ends it */
static void conn_discard(struct nt_conn *c)
{
	char buf[4096];

	/* bounded per wake-up, like any other read */
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(c->watch.fd, buf, sizeof(buf));
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		nt_conn_close(c, c->close_reason);
		return;
	}
}

/* a write other than EAGAIN or EINTR failed: errno says why */
static void conn_write_failed(struct nt_conn *c)
{
	nt_conn_close(c, errno == EPIPE || errno == ECONNRESET
	                     ? "connection reset by peer"
	                     : "write error");
}

ssize_t nt_conn_write_now(struct nt_conn *c, const void *data, size_t len)
{
	if (c->out.count || c->state >= NT_CONN_LINGERING || !len)
		return 0;
	for (;;) {
		ssize_t w = write(c->watch.fd, data, len);
		if (w >= 0) {
			NT_STAT_ADD(c->w->stats.bytes_out, (uint64_t)w);
			return w;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno != EINTR) {
			conn_write_failed(c);
			return -1;
		}
	}
}

void nt_conn_flush(struct nt_conn *c)
{
	struct nt_outq *q = &c->out;
	struct iovec iov[FLUSH_IOV_MAX];
	bool progress = false;

	while (q->count && !nt_conn_closed(c)) {
		int n = nt_outq_iov(q, iov, FLUSH_IOV_MAX);
		ssize_t w = writev(c->watch.fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_write_failed(c);
			return;
		}
		NT_STAT_ADD(c->w->stats.bytes_out, (uint64_t)w);
		nt_outq_consume(q, &c->w->rings, (size_t)w);
		progress = true;
	}
	if (progress) {
		/* output is progress, not activity: idle means "sent nothing"
		 */
		c->last_progress = c->w->now;
		conn_reschedule(c);
	}
	bool want = q->count > 0;
	if (want != c->want_write) {
		c->want_write = want;
		conn_update_epoll(c);
	}
	if (progress && c->ops->drained && !nt_conn_closed(c))
		c->ops->drained(c);
	/* input is over for good and everything owed has been sent */
	conn_drained(c);
}

/* who is ending it and why, as the state that says so */
static void conn_ending(struct nt_conn *c, enum nt_conn_state to,
                        const char *reason)
{
	if (c->state == to || conn_set_state(c, to) < 0)
		return;
	c->close_reason = reason;
	conn_update_epoll(c);
}

static void conn_finish_output(struct nt_conn *c, const char *reason)
{
	/* a handover or a finish already under way keeps its course */
	if (c->state == NT_CONN_OPEN || c->state == NT_CONN_DRAINING)
		conn_ending(c, NT_CONN_FINISHING, reason);
	conn_drained(c);
}

/*
 * An end with last words queued (a timeout's notice): they go out now as
 * far as the socket takes them. All out, the connection lingers like a
 * finished one; otherwise the peer is not reading and is closed at once.
 */
static void conn_finish_notice(struct nt_conn *c, const char *reason)
{
	conn_finish_output(c, reason);
	if (c->state >= NT_CONN_LINGERING)
		return;
	nt_conn_flush(c);
	if (c->state < NT_CONN_LINGERING)
		nt_conn_close(c, reason);
}

static void conn_finish_shutdown(struct nt_conn *c, const char *reason)
{
	if (c->ops->shutdown)
		c->ops->shutdown(c);
	/* a finished session keeps its own reason */
	if (c->state == NT_CONN_OPEN)
		conn_ending(c, NT_CONN_DRAINING, reason);
	conn_drained(c);
}

void nt_conn_finish(struct nt_conn *c, enum nt_conn_finish_how how,
                    const char *reason)
{
	/* a lingering one has sent its FIN: it just finishes */
	if (c->state >= NT_CONN_LINGERING)
		return;
	switch (how) {
	case NT_FINISH_OUTPUT:
		conn_finish_output(c, reason);
		break;
	case NT_FINISH_NOTICE:
		conn_finish_notice(c, reason);
		break;
	case NT_FINISH_SHUTDOWN:
		conn_finish_shutdown(c, reason);
		break;
	case NT_FINISH_HANDOVER:
		conn_ending(c, NT_CONN_HANDED_OVER, reason);
		conn_drained(c);
		break;
	}
}

void nt_conn_pause(struct nt_conn *c, unsigned why)
{
	c->pause |= (uint8_t)why;
	conn_update_epoll(c);
}

void nt_conn_resume(struct nt_conn *c, unsigned why)
{
	c->pause &= (uint8_t)~why;
	conn_update_epoll(c);
}

void nt_conn_partial(struct nt_conn *c, bool partial)
{
	if (partial == (c->partial_since != 0))
		return;
	c->partial_since = partial ? NT_MAX(c->w->now, 1) : 0;
	conn_reschedule(c);
}

void nt_conn_set_timer(struct nt_conn *c, uint64_t when_ms)
{
	c->svc_deadline = when_ms;
	conn_reschedule(c);
}

void nt_conn_on_deadline(struct nt_conn *c)
{
	const struct nt_timeouts *t = &c->lc->timeouts;
	uint64_t now = c->w->now;

	if (c->state == NT_CONN_LINGERING) {
		if (now >= c->linger_until)
			nt_conn_close(c, c->close_reason);
		else
			conn_rekey(c);
		return;
	}
	if (t->write && c->out.count &&
	    now >= c->last_progress + (uint64_t)t->write * 1000) {
		NT_STAT_ADD(c->w->stats.timeouts, 1);
		nt_conn_close(c, "write timeout");
		return;
	}
	if (t->line && c->partial_since &&
	    now >= c->partial_since + (uint64_t)t->line * 1000) {
		if (c->ops->line_timeout)
			c->ops->line_timeout(c);
		NT_STAT_ADD(c->w->stats.timeouts, 1);
		nt_conn_finish(c, NT_FINISH_NOTICE, "line timeout");
		return;
	}
	if (t->idle && !c->out.count &&
	    now >= c->last_activity + (uint64_t)t->idle * 1000) {
		if (c->ops->idle)
			c->ops->idle(c);
		NT_STAT_ADD(c->w->stats.timeouts, 1);
		nt_conn_finish(c, NT_FINISH_NOTICE, "idle timeout");
		return;
	}
	if (c->svc_deadline && now >= c->svc_deadline) {
		c->svc_deadline = 0;
		if (c->ops->timer)
			c->ops->timer(c);
	}
	if (!nt_conn_closed(c))
		conn_rekey(c);
}

void nt_conn_on_events(struct nt_watch *wt, uint32_t ev)
{
	struct nt_conn *c = nt_container_of(wt, struct nt_conn, watch);

	if (nt_conn_closed(c))
		return;
	if (c->state == NT_CONN_LINGERING) {
		conn_discard(c);
		return;
	}
	if (ev & EPOLLOUT)
		nt_conn_flush(c);
	if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && conn_reading(c) &&
	    c->ops->readable)
		c->ops->readable(c);
	/* with reading paused nobody would notice a dead peer, and a
	 * level-triggered HUP would wake us forever */
	if (!nt_conn_closed(c) && (ev & (EPOLLHUP | EPOLLERR)) &&
	    !conn_reading(c))
		nt_conn_close(c, "connection lost");
}

void nt_conn_reconfigure(struct nt_conn *c, const struct nt_config *old)
{
	conn_set_listener(c, c->lc, old);
	if (c->state >= NT_CONN_LINGERING)
		return;
	if (c->ops->reconfigure)
		c->ops->reconfigure(c, old);
	if (!nt_conn_closed(c))
		conn_reschedule(c);
}

void nt_conn_store_session(struct nt_conn *c)
{
	const struct nt_service_def *sv = nt_service_get(c->lc->service);
	struct nt_sd_session s = {0};

	if (!c->store)
		return;
	snprintf(s.listener, sizeof(s.listener), "%s", c->lc->name);
	if (sv->session_encode) {
		int n = sv->session_encode(c, s.blob, sizeof(s.blob));
		if (n < 0)
			return; /* the record keeps what it had */
		s.blob_len = (uint32_t)n;
	}
	nt_sd_client_update(c->store, &s);
}
