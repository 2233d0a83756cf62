/*
 * The connection state machine, driven by natter_client_process(): lookup,
 * Happy Eyeballs, session restore, the established session (reading,
 * writing, pings) and the backoff between attempts. Nothing here blocks:
 * every wait is a deadline that natter_client_timeout() reports.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "client.h"

#define READ_CHUNK   16384
#define READ_ROUNDS  16 /* reads per process(), so one call stays short */
#define WRITE_ROUNDS 8
#define WRITE_IOV    64
#define EVENTS_MAX   32
#define NICK_TRIES   5 /* other nicks the nick_taken callback may offer */
#define CMD_MAX      (NATTER__TOKEN_MAX + 64)

static void reasonf(natter_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reasonf(natter_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

static enum natter_state public_state(enum natter__state s)
{
	switch (s) {
	case NATTER__ST_IDLE:
		return NATTER_STATE_IDLE;
	case NATTER__ST_CONNECTED:
		return NATTER_STATE_CONNECTED;
	case NATTER__ST_WAITING:
		return NATTER_STATE_WAITING;
	case NATTER__ST_GAVE_UP:
		return NATTER_STATE_GAVE_UP;
	case NATTER__ST_STOPPED:
		return NATTER_STATE_STOPPED;
	default:
		return NATTER_STATE_CONNECTING;
	}
}

void natter__set_state(natter_client *c, enum natter__state s)
{
	c->state = s;
	pthread_mutex_lock(&c->lock);
	/* a stop from another thread stays visible as such */
	if (!c->stop_req)
		c->pub_state = public_state(s);
	pthread_mutex_unlock(&c->lock);
}

bool natter__terminal(const natter_client *c)
{
	return c->state == NATTER__ST_GAVE_UP || c->state == NATTER__ST_STOPPED;
}

int natter__terminal_code(const natter_client *c)
{
	if (c->state == NATTER__ST_GAVE_UP)
		return c->last_err ? c->last_err : NATTER_ECLOSED;
	return NATTER_ECLOSED;
}

/* ---- the socket ---- */

static void want_out(natter_client *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
	                         .data.u64 = NATTER__TAG_SOCK};

	if (c->fd < 0 || c->want_out == on)
		return;
	if (on)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = on;
}

static void sock_close(natter_client *c)
{
	if (c->fd >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->want_out = false;
	c->peer[0] = '\0';
}

void natter__half_close(natter_client *c)
{
	if (c->fd < 0)
		return;
	shutdown(c->fd, SHUT_WR);
	c->half_closed = true;
	c->close_err = NATTER_ETIMEDOUT; /* until the EOF comes */
	/* nothing more can go out: no pings, no pong to wait for */
	c->ping_at = c->pong_at = NATTER__NEVER;
	want_out(c, false);
}

/* the server closed after our shutdown: the graceful end */
static void closed(natter_client *c, int err)
{
	c->close_err = err;
	c->half_closed = false;
	natter__teardown(c);
	natter__set_state(c, NATTER__ST_STOPPED);
}

void natter__teardown(natter_client *c)
{
	natter__he_abort(&c->he);
	natter__resolve_abandon(c->job);
	c->job = NULL;
	sock_close(c);
}

/* ---- giving up, waiting, starting over ---- */

bool natter__stop_requested(natter_client *c)
{
	pthread_mutex_lock(&c->lock);
	bool stop = c->stop_req;
	pthread_mutex_unlock(&c->lock);
	return stop;
}

static void give_up(natter_client *c, int err)
{
	natter__set_state(c, NATTER__ST_GAVE_UP);
	if (c->o.cb.gave_up)
		c->o.cb.gave_up(c, err, c->o.data);
}

static void schedule_retry(natter_client *c, int err)
{
	c->last_err = err;
	if ((!c->ever_up && !c->o.retry_first_connect) ||
	    (c->o.max_attempts >= 0 && c->attempt >= c->o.max_attempts)) {
		give_up(c, err);
		return;
	}
	c->attempt++;
	int delay = natter__backoff_delay(&c->rng, c->attempt,
	                                  c->o.reconnect_initial_ms,
	                                  c->o.reconnect_max_ms);
	natter__set_state(c, NATTER__ST_WAITING);
	if (c->o.cb.reconnecting)
		c->o.cb.reconnecting(c, c->attempt, delay, err, c->o.data);
	/* counted from after the callback, so the wait is never shorter
	 * than the delay it was told */
	c->wake_at = natter__now_ms() + (uint64_t)delay;
}

static void cycle_failed(natter_client *c, int err)
{
	natter__teardown(c);
	schedule_retry(c, err);
}

/* The session's connection is gone (or never finished its restore). */
static void conn_lost(natter_client *c, int err, uint64_t now)
{
	bool was_up = c->state == NATTER__ST_CONNECTED;

	sock_close(c);
	c->ses.token[0] = '\0';
	pthread_mutex_lock(&c->lock);
	natter__queue_rewind(&c->q);
	if (was_up)
		c->st.disconnects++;
	pthread_mutex_unlock(&c->lock);
	if (was_up)
		c->attempt = natter__backoff_after_session(
		    c->attempt, now - c->up_since, c->o.stable_ms);
	c->last_err = err;
	if (was_up && c->o.cb.disconnected)
		c->o.cb.disconnected(c, err, c->reason, c->o.data);
	if (natter__stop_requested(c))
		return; /* process() finishes the stop */
	schedule_retry(c, err);
}

/* ---- connecting ---- */

static void he_check(natter_client *c)
{
	const struct natter__he *h = &c->he;
	char addr[NATTER__PEER_MAX];

	if (c->state != NATTER__ST_CONNECTING || !natter__he_failed(h))
		return;
	natter__addr_format(&h->addrs[h->err_idx], addr, sizeof(addr));
	int err = h->err ? h->err : NATTER_EIO;
	if (c->unix_path)
		reasonf(c, "cannot connect to %s: %s", c->target,
		        natter_strerror(err));
	else
		reasonf(c, "cannot connect to %s (%s): %s", c->target, addr,
		        natter_strerror(err));
	cycle_failed(c, err);
}

static void begin_addrs(natter_client *c, struct natter__addr *a, size_t n,
                        uint64_t now)
{
	n = natter__addr_order(a, n, c->o.family);
	if (!n) {
		reasonf(c, "%s has no address of the wanted family", c->target);
		cycle_failed(c, NATTER_ENOADDR);
		return;
	}
	natter__set_state(c, NATTER__ST_CONNECTING);
	natter__he_begin(&c->he, a, n, now);
	he_check(c);
}

/* a numeric address: the list at once, no lookup; 0 if not numeric */
static size_t numeric(natter_client *c, const char *host,
                      struct natter__addr *a, size_t max)
{
	struct addrinfo hints = {0}, *res = NULL;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, c->port, &hints, &res) != 0)
		return 0;
	size_t n = natter__addr_from_ai(res, a, max);
	freeaddrinfo(res);
	return n;
}

static void resolved(natter_client *c, struct addrinfo *res, int gai_err,
                     uint64_t now)
{
	struct natter__addr a[NATTER__ADDRS_MAX];

	if (gai_err) {
		reasonf(c, "cannot resolve %s: %s", c->host,
		        gai_strerror(gai_err));
		cycle_failed(c, NATTER_ERESOLVE);
		return;
	}
	size_t n = natter__addr_from_ai(res, a, NATTER__ADDRS_MAX);
	freeaddrinfo(res);
	begin_addrs(c, a, n, now);
}

static void cycle_start(natter_client *c, uint64_t now)
{
	struct natter__addr a[NATTER__ADDRS_MAX];
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	c->st.attempts++;
	pthread_mutex_unlock(&c->lock);
	c->deadline = now + (uint64_t)c->o.connect_timeout_ms;
	natter__set_state(c, NATTER__ST_RESOLVING);
	if (c->unix_path) {
		natter__addr_unix(&a[0], c->unix_path);
		begin_addrs(c, a, 1, now);
		return;
	}
	if (c->addresses) {
		for (size_t i = 0; i < c->n_addresses && n < NATTER__ADDRS_MAX;
		     i++)
			n += numeric(c, c->addresses[i], a + n,
			             NATTER__ADDRS_MAX - n);
		begin_addrs(c, a, n, now);
		return;
	}
	if ((n = numeric(c, c->host, a, NATTER__ADDRS_MAX))) {
		begin_addrs(c, a, n, now);
		return;
	}
	/* every family: a name without one of the wanted family is then
	 * NATTER_ENOADDR from the ordering, as a numeric address is */
	if (natter__resolve_start(&c->job, c->host, c->port, AF_UNSPEC,
	                          c->evfd) < 0) {
		/* no thread to be had: look up here, blocking, rather than
		 * not at all */
		struct addrinfo hints = {0}, *res = NULL;
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		int rc = getaddrinfo(c->host, c->port, &hints, &res);
		resolved(c, res, rc, natter__now_ms());
	}
}

static void resolve_poll(natter_client *c, uint64_t now)
{
	struct addrinfo *res = NULL;
	int gai_err = 0;

	if (!c->job || !natter__resolve_done(c->job, &res, &gai_err))
		return;
	natter__resolve_abandon(c->job); /* done: this frees it */
	c->job = NULL;
	resolved(c, res, gai_err, now);
}

/* ---- the session ---- */

static void push_ctl(natter_client *c, const char *line)
{
	pthread_mutex_lock(&c->lock);
	/* out of memory: the pong will not come and the timeout acts */
	natter__queue_push_ctl(&c->q, line, strlen(line));
	pthread_mutex_unlock(&c->lock);
}

static void ping(natter_client *c, uint64_t now)
{
	char cmd[CMD_MAX];

	natter__session_ping(&c->ses, cmd, sizeof(cmd));
	push_ctl(c, cmd);
	c->ping_sent = now;
	c->pong_at = now + (uint64_t)c->o.pong_timeout_ms;
	c->ping_at = NATTER__NEVER;
}

/*
 * Re-take the nick and room, then ping: natterd answers in order, so the
 * pong says every reply is in and the queue may go.
 */
static void restore_send(natter_client *c, bool nick, bool room, uint64_t now)
{
	char cmd[CMD_MAX];

	if (nick && c->ses.want_nick[0]) {
		snprintf(cmd, sizeof(cmd), "/nick %s", c->ses.want_nick);
		push_ctl(c, cmd);
	}
	if (room && c->ses.want_room[0]) {
		snprintf(cmd, sizeof(cmd), "/join %s", c->ses.want_room);
		push_ctl(c, cmd);
	}
	ping(c, now);
}

static void established(natter_client *c, uint64_t now)
{
	natter__set_state(c, NATTER__ST_CONNECTED);
	c->up_since = now;
	c->ever_up = true;
	c->sessions++;
	pthread_mutex_lock(&c->lock);
	c->st.connects++;
	/* a server that did not announce a limit this time (echo, an older
	 * natterd) leaves only max_line */
	c->server_max_line = c->ses.max_line;
	pthread_mutex_unlock(&c->lock);
	c->pong_at = NATTER__NEVER;
	c->ping_at = c->o.ping_interval_ms
	                 ? now + (uint64_t)c->o.ping_interval_ms
	                 : NATTER__NEVER;
	if (c->o.cb.connected)
		c->o.cb.connected(c, c->sessions, c->o.data);
}

static void won(natter_client *c, int fd, size_t idx, uint64_t now)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
	                         .data.u64 = NATTER__TAG_SOCK};
	int one = 1;

	natter__addr_format(&c->he.addrs[idx], c->peer, sizeof(c->peer));
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = natter__errno_code(errno);
		close(fd);
		reasonf(c, "%s: %s", c->peer, natter_strerror(err));
		c->peer[0] = '\0';
		cycle_failed(c, err);
		return;
	}
	c->fd = fd;
	c->want_out = false;
	if (c->he.addrs[idx].ss.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	natter__reader_reset(&c->rd);
	natter__session_reset(&c->ses);
	/* a new connection has a full flood bucket at the server too */
	natter__pacer_init(&c->pacer, c->o.send_rate, c->o.send_burst, now);
	c->pace_at = NATTER__NEVER;
	c->nick_tries = 0;
	c->refusal[0] = '\0';
	if (c->o.service == NATTER_SERVICE_ECHO) {
		established(c, now);
		return;
	}
	natter__set_state(c, NATTER__ST_RESTORING);
	restore_send(c, true, true, now);
}

/*
 * The server gave another nick than the one asked for: taken, or not
 * valid there (natterd's chat.max_nick may be shorter than ours). The
 * caller hears of it through nick_taken and the reason, and may offer
 * another; natter_client_current_nick() has what the server gave.
 */
static bool nick_refused(natter_client *c, uint64_t now)
{
	struct natter__session *s = &c->ses;
	char wanted[NATTER__NICK_MAX + 1];

	reasonf(c, "%s refused the nick %s: %s", c->peer, s->want_nick,
	        c->refusal[0] ? c->refusal : "no reason given");
	if (!c->o.cb.nick_taken)
		return false;
	memcpy(wanted, s->want_nick, sizeof(wanted));
	const char *alt = c->o.cb.nick_taken(c, wanted, c->o.data);
	if (!alt || !natter__nick_valid(alt) || !strncasecmp(alt, "guest", 5) ||
	    c->nick_tries >= NICK_TRIES)
		return false;
	c->nick_tries++;
	snprintf(s->want_nick, sizeof(s->want_nick), "%s", alt);
	s->taken[0] = '\0';
	c->refusal[0] = '\0';
	restore_send(c, true, false, now);
	return true;
}

static void restore_done(natter_client *c, uint64_t now)
{
	struct natter__session *s = &c->ses;

	if (s->want_nick[0] && strcasecmp(s->nick, s->want_nick) &&
	    nick_refused(c, now))
		return;
	established(c, now);
}

static void pong(natter_client *c, uint64_t now)
{
	pthread_mutex_lock(&c->lock);
	c->st.pings++;
	c->st.last_rtt_ms = (int)(now - c->ping_sent);
	pthread_mutex_unlock(&c->lock);
	c->pong_at = NATTER__NEVER;
	if (c->state == NATTER__ST_RESTORING) {
		restore_done(c, now);
		return;
	}
	if (c->o.ping_interval_ms)
		c->ping_at = now + (uint64_t)c->o.ping_interval_ms;
}

/* ---- reading ---- */

static void deliver(natter_client *c, const struct natter_line *l)
{
	if (c->o.cb.line) {
		c->o.cb.line(c, l, c->o.data);
		return;
	}
	struct natter__rline *r = malloc(sizeof(*r) + l->raw_len + 1);
	if (!r)
		return; /* counted as dropped below, like an overflow */
	r->next = NULL;
	r->len = l->raw_len;
	memcpy(r->data, l->raw, l->raw_len);
	r->data[l->raw_len] = '\0';
	if (c->rq_tail)
		c->rq_tail->next = r;
	else
		c->rq_head = r;
	c->rq_tail = r;
	c->rq_len++;
	if (c->rq_len <= (size_t)c->o.recv_queue_lines)
		return;
	/* nobody is reading: keep the newest, as a terminal would */
	struct natter__rline *old = c->rq_head;
	c->rq_head = old->next;
	c->rq_len--;
	free(old);
	pthread_mutex_lock(&c->lock);
	c->st.recv_dropped++;
	pthread_mutex_unlock(&c->lock);
}

/* the answer to natter_client_flush_server()'s ping: a chat pong, or
 * for echo the ping line itself coming back */
static bool sync_reply(natter_client *c, const struct natter_line *l)
{
	size_t n = strlen(c->sync_token), m;
	const char *text = l->text, *pre = "pong ";

	if (!n)
		return false;
	if (c->o.service == NATTER_SERVICE_ECHO) {
		text = l->raw;
		m = l->raw_len;
		pre = "/ping ";
	} else if (l->type == NATTER_LINE_NOTICE) {
		m = l->text_len;
	} else {
		return false;
	}
	size_t p = strlen(pre);
	if (m != p + n || memcmp(text, pre, p) ||
	    memcmp(text + p, c->sync_token, n))
		return false;
	c->sync_token[0] = '\0';
	return true;
}

static void on_line(natter_client *c, const char *line, size_t len, bool cut,
                    uint64_t now)
{
	struct natter_line l;

	natter_parse_line(line, len, &l);
	l.truncated = cut;
	if (sync_reply(c, &l))
		return;
	switch (natter__session_line(&c->ses, &l,
	                             c->state == NATTER__ST_CONNECTED)) {
	case NATTER__SEV_PONG:
		pong(c, now);
		return;
	case NATTER__SEV_ALREADY:
		return;
	case NATTER__SEV_LIMITS:
		pthread_mutex_lock(&c->lock);
		c->server_max_line = c->ses.max_line;
		pthread_mutex_unlock(&c->lock);
		break; /* and the caller sees it too */
	case NATTER__SEV_NONE:
	case NATTER__SEV_NICK_TAKEN:
		if (c->state == NATTER__ST_RESTORING &&
		    l.type == NATTER_LINE_ERROR)
			snprintf(c->refusal, sizeof(c->refusal), "%.*s",
			         (int)l.text_len, l.text);
		break;
	default:
		break;
	}
	deliver(c, &l);
}

static void do_read(natter_client *c, uint64_t now)
{
	char buf[READ_CHUNK];
	unsigned long long lines = 0;

	for (int r = 0; r < READ_ROUNDS && c->fd >= 0; r++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			int err = n ? natter__errno_code(errno) : NATTER_EOF;
			if (c->half_closed) {
				closed(c, n ? err : 0);
				break;
			}
			if (n)
				reasonf(c, "%s: %s", c->peer,
				        natter_strerror(err));
			else
				reasonf(c, "%s closed the connection", c->peer);
			conn_lost(c, err, now);
			break;
		}
		size_t off = 0, used, len;
		const char *line;
		bool cut;
		/* a callback may stop us, but the socket stays until we
		 * are back in process() */
		while (off < (size_t)n &&
		       natter__reader_next(&c->rd, buf + off, (size_t)n - off,
		                           &used, &line, &len, &cut)) {
			off += used;
			lines++;
			on_line(c, line, len, cut, now);
		}
	}
	pthread_mutex_lock(&c->lock);
	c->st.lines_received += lines;
	pthread_mutex_unlock(&c->lock);
}

/* ---- writing ---- */

static bool have_output(natter_client *c, bool user)
{
	struct iovec iov;

	pthread_mutex_lock(&c->lock);
	bool any = natter__queue_iov(&c->q, &iov, 1, 1, user) > 0;
	pthread_mutex_unlock(&c->lock);
	return any;
}

static void do_write(natter_client *c, uint64_t now)
{
	/* while restoring only our lines go: the queue waits for the room */
	bool user = c->state == NATTER__ST_CONNECTED;
	struct iovec iov[WRITE_IOV];

	c->pace_at = NATTER__NEVER;
	for (int r = 0; r < WRITE_ROUNDS; r++) {
		if (c->fd < 0)
			return;
		size_t allow = natter__pacer_allow(&c->pacer, now);
		if (!allow) {
			if (have_output(c, user))
				c->pace_at = natter__pacer_next(&c->pacer, now);
			want_out(c, false);
			return;
		}
		pthread_mutex_lock(&c->lock);
		int n = natter__queue_iov(&c->q, iov, WRITE_IOV, allow, user);
		ssize_t w = 0;
		int e = 0;
		size_t lines = 0, ulines = 0;
		if (n > 0) {
			struct msghdr mh = {.msg_iov = iov,
			                    .msg_iovlen = (size_t)n};
			w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
			e = errno;
			if (w > 0) {
				natter__queue_consume(&c->q, (size_t)w, &lines,
				                      &ulines);
				c->st.lines_sent += ulines;
			}
		}
		pthread_mutex_unlock(&c->lock);
		if (n == 0) {
			want_out(c, false);
			return;
		}
		if (w > 0) {
			natter__pacer_take(&c->pacer, lines);
			continue;
		}
		if (e == EINTR)
			continue;
		if (e == EAGAIN || e == EWOULDBLOCK) {
			want_out(c, true);
			return;
		}
		int err = natter__errno_code(e);
		reasonf(c, "%s: %s", c->peer, natter_strerror(err));
		conn_lost(c, err, now);
		return;
	}
	want_out(c, true); /* more to write: come back when writable */
}

/* ---- timers ---- */

static void timers(natter_client *c, uint64_t now)
{
	switch (c->state) {
	case NATTER__ST_RESOLVING:
		resolve_poll(c, now);
		if (c->state == NATTER__ST_RESOLVING && now >= c->deadline) {
			reasonf(c, "looking up %s timed out after %d ms",
			        c->target, c->o.connect_timeout_ms);
			cycle_failed(c, NATTER_ETIMEDOUT);
		}
		break;
	case NATTER__ST_CONNECTING:
		natter__he_timer(&c->he, now);
		he_check(c);
		if (c->state == NATTER__ST_CONNECTING && now >= c->deadline) {
			reasonf(c, "connecting to %s timed out after %d ms",
			        c->target, c->o.connect_timeout_ms);
			cycle_failed(c, NATTER_ETIMEDOUT);
		}
		break;
	case NATTER__ST_RESTORING:
		if (now >= c->pong_at) {
			reasonf(c,
			        "%s did not answer the session restore within "
			        "%d ms",
			        c->peer, c->o.pong_timeout_ms);
			conn_lost(c, NATTER_EPONG, now);
		}
		break;
	case NATTER__ST_CONNECTED:
		if (now >= c->pong_at) {
			reasonf(c, "no pong from %s within %d ms", c->peer,
			        c->o.pong_timeout_ms);
			conn_lost(c, NATTER_EPONG, now);
		} else if (now >= c->ping_at) {
			ping(c, now);
		}
		break;
	case NATTER__ST_WAITING:
		if (now >= c->wake_at)
			cycle_start(c, now);
		break;
	default:
		break;
	}
}

/* ---- one round ---- */

static void drain_wake(natter_client *c)
{
	uint64_t v;

	pthread_mutex_lock(&c->lock);
	c->wake_pending = false;
	ssize_t r = read(c->evfd, &v, sizeof(v));
	(void)r; /* EAGAIN: someone else's wake-up was already read */
	pthread_mutex_unlock(&c->lock);
}

static void attempt_ready(natter_client *c, size_t slot, uint64_t now)
{
	int fd;
	size_t idx;

	if (c->state != NATTER__ST_CONNECTING)
		return;
	if (natter__he_ready(&c->he, slot, now, &fd, &idx))
		won(c, fd, idx, now);
	else
		he_check(c);
}

int natter__process(natter_client *c)
{
	struct epoll_event ev[EVENTS_MAX];
	uint64_t now = natter__now_ms();

	if (natter__terminal(c))
		return NATTER_ECLOSED;
	if (c->state == NATTER__ST_IDLE && !natter__stop_requested(c))
		cycle_start(c, now);
	int n = epoll_wait(c->epfd, ev, EVENTS_MAX, 0);
	for (int i = 0; i < n; i++) {
		uint64_t tag = ev[i].data.u64;
		if (tag == NATTER__TAG_WAKE)
			drain_wake(c);
		else if (tag == NATTER__TAG_SOCK && c->fd >= 0 &&
		         (ev[i].events & ~(uint32_t)EPOLLOUT))
			do_read(c, now);
		else if (tag >= NATTER__TAG_ATTEMPT)
			attempt_ready(c, (size_t)(tag - NATTER__TAG_ATTEMPT),
			              now);
	}
	if (natter__stop_requested(c)) {
		natter__teardown(c);
		natter__set_state(c, NATTER__ST_STOPPED);
		return NATTER_ECLOSED;
	}
	timers(c, now);
	if ((c->state == NATTER__ST_RESTORING ||
	     c->state == NATTER__ST_CONNECTED) &&
	    !c->half_closed)
		do_write(c, now);
	return natter__terminal(c) ? NATTER_ECLOSED : 0;
}

/* ---- the event-loop API ---- */

int natter_client_process(natter_client *c)
{
	if (!c)
		return NATTER_EINVAL;
	if (atomic_exchange(&c->driving, true))
		return NATTER_EBUSY;
	int rc = natter__process(c);
	atomic_store(&c->driving, false);
	return rc;
}

int natter_client_start(natter_client *c)
{
	if (!c)
		return NATTER_EINVAL;
	if (atomic_exchange(&c->driving, true))
		return NATTER_EBUSY;
	int rc = 0;
	if (c->state == NATTER__ST_GAVE_UP) {
		c->attempt = 0; /* a new start: a new count */
		c->state = NATTER__ST_IDLE;
	}
	if (c->state == NATTER__ST_STOPPED)
		rc = NATTER_ECLOSED;
	else if (c->state == NATTER__ST_IDLE)
		cycle_start(c, natter__now_ms());
	atomic_store(&c->driving, false);
	return rc;
}

int natter_client_events(const natter_client *c)
{
	return c && !natter__terminal(c) ? POLLIN : 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int natter_client_timeout(const natter_client *c)
{
	uint64_t t = NATTER__NEVER;

	if (!c)
		return -1;
	switch (c->state) {
	case NATTER__ST_IDLE:
		return 0;
	case NATTER__ST_RESOLVING:
		t = c->deadline;
		break;
	case NATTER__ST_CONNECTING:
		t = min_u64(c->deadline, c->he.next_at);
		break;
	case NATTER__ST_RESTORING:
		t = min_u64(c->pong_at, c->pace_at);
		break;
	case NATTER__ST_CONNECTED:
		t = min_u64(min_u64(c->pong_at, c->ping_at), c->pace_at);
		break;
	case NATTER__ST_WAITING:
		t = c->wake_at;
		break;
	default:
		return -1;
	}
	if (t == NATTER__NEVER)
		return -1;
	uint64_t now = natter__now_ms();
	if (t <= now)
		return 0;
	return t - now > INT_MAX ? INT_MAX : (int)(t - now);
}
