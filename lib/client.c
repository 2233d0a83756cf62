/*
 * The client's life: options (defaults, checks, copies), creation and
 * destruction, and the calls any thread may make (send, stop, state,
 * stats), which touch only what the lock guards and wake the driving
 * thread through the eventfd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client.h"

#define QUEUE_LINES_MAX 1000000
#define QUEUE_BYTES_MAX ((size_t)1 << 30)
#define MAX_LINE_MIN    64
#define MAX_LINE_MAX    (1 << 20)
#define TIME_MAX_MS     (7 * 24 * 3600 * 1000) /* a week */
#define NATTERD_RATE    5                      /* natterd's chat.flood */
#define NATTERD_BURST   20

/*
 * The layout of each release must end on its last field, without tail
 * padding: an older caller's size then always ends on a field boundary.
 * Name the new last field here whenever fields are appended.
 */
_Static_assert(sizeof(struct natter_options) ==
                   offsetof(struct natter_options, data) + sizeof(void *),
               "struct natter_options must end without tail padding");

void natter_options_init_size(struct natter_options *o, size_t size)
{
	struct natter_options d = {.size = sizeof(d)};

	if (!o || size < sizeof(o->size))
		return;
	d.family = NATTER_FAMILY_ANY;
	d.service = NATTER_SERVICE_CHAT;
	d.connect_timeout_ms = 10000;
	d.attempt_delay_ms = 250; /* RFC 8305's recommended value */
	/* back within about a second of a restart, at most one attempt a
	 * second on average per client while the server stays down */
	d.reconnect_initial_ms = 100;
	d.reconnect_max_ms = 2000;
	d.max_attempts = -1;
	d.stable_ms = 0; /* a restored session resets the backoff */
	d.queue_lines = 1000;
	d.queue_bytes = (size_t)1 << 20;
	d.overflow = NATTER_OVERFLOW_FAIL;
	d.send_rate = -1;
	d.send_burst = NATTERD_BURST;
	d.ping_interval_ms = 30000;
	d.pong_timeout_ms = 10000;
	d.max_line = 8192;
	d.recv_queue_lines = 1024;
	/* a newer caller's fields this library does not know stay 0 */
	memset(o, 0, size);
	memcpy(o, &d, size < sizeof(d) ? size : sizeof(d));
	o->size = size;
}

/*
 * The caller's options as this library's layout: the fields its size
 * covers, the defaults for the rest.
 */
static int options_import(struct natter_options *dst,
                          const struct natter_options *o, char *msg,
                          size_t msg_size)
{
	size_t n = o->size;

	natter_options_init_size(dst, sizeof(*dst));
	if (n < sizeof(*dst)) {
		if (n <
		    offsetof(struct natter_options, host) + sizeof(o->host)) {
			snprintf(msg, msg_size,
			         "size: %zu is too small: call "
			         "natter_options_init() first",
			         n);
			return NATTER_EINVAL;
		}
		memcpy(dst, o, n);
	} else {
		for (size_t i = sizeof(*dst); i < n; i++)
			if (((const unsigned char *)o)[i]) {
				snprintf(
				    msg, msg_size,
				    "size: %zu: a field this library (%zu "
				    "bytes of options) does not know is set",
				    n, sizeof(*dst));
				return NATTER_EINVAL;
			}
		memcpy(dst, o, sizeof(*dst));
	}
	dst->size = sizeof(*dst);
	return 0;
}

static bool in_range(long v, long lo, long hi)
{
	return v >= lo && v <= hi;
}

static bool numeric_addr(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

static int check_addresses(const char *const *a, char *msg, size_t size)
{
	size_t n = 0;

	for (; a && a[n]; n++) {
		if (n == NATTER__ADDRS_MAX) {
			snprintf(msg, size, "addresses: more than %d",
			         NATTER__ADDRS_MAX);
			return NATTER_EINVAL;
		}
		if (!numeric_addr(a[n])) {
			snprintf(
			    msg, size,
			    "addresses: \"%.64s\" is not a numeric address",
			    a[n]);
			return NATTER_EINVAL;
		}
	}
	if (a && !n) {
		snprintf(msg, size, "addresses: empty list");
		return NATTER_EINVAL;
	}
	return 0;
}

/* "name: v is not in lo..hi" unless it is */
static bool range_ok(const char *name, long v, long lo, long hi, char *msg,
                     size_t size)
{
	if (in_range(v, lo, hi))
		return true;
	snprintf(msg, size, "%s: %ld is not in %ld..%ld", name, v, lo, hi);
	return false;
}

#define RANGE(field, lo, hi) range_ok(#field, o->field, lo, hi, msg, size)

/* 0, or NATTER_EINVAL with "field: why" in msg */
static int check_options(const struct natter_options *o, char *msg, size_t size)
{
	char room[NATTER__ROOM_MAX + 1];
	bool tcp = o->host || o->addresses;

	if (tcp == !!o->unix_path) {
		snprintf(msg, size,
		         tcp ? "unix_path: set together with host or addresses"
		             : "host: none of host, addresses and unix_path");
		return NATTER_EINVAL;
	}
	if (o->host && !*o->host) {
		snprintf(msg, size, "host: empty");
		return NATTER_EINVAL;
	}
	if (o->port && !*o->port) {
		snprintf(msg, size, "port: empty");
		return NATTER_EINVAL;
	}
	if (o->port && !natter__port_valid(o->port)) {
		snprintf(msg, size,
		         "port: \"%.16s\" is not a number in 1..65535",
		         o->port);
		return NATTER_EINVAL;
	}
	if (check_addresses(o->addresses, msg, size) < 0)
		return NATTER_EINVAL;
	if (o->unix_path && (!*o->unix_path ||
	                     strlen(o->unix_path) >=
	                         sizeof(((struct sockaddr_un *)0)->sun_path))) {
		snprintf(msg, size, "unix_path: empty or longer than %zu bytes",
		         sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return NATTER_EINVAL;
	}
	if (!RANGE(family, NATTER_FAMILY_ANY, NATTER_FAMILY_IPV4_ONLY) ||
	    !RANGE(service, NATTER_SERVICE_CHAT, NATTER_SERVICE_ECHO) ||
	    !RANGE(overflow, NATTER_OVERFLOW_FAIL, NATTER_OVERFLOW_DROP_OLDEST))
		return NATTER_EINVAL;
	if (!RANGE(connect_timeout_ms, 1, TIME_MAX_MS) ||
	    !RANGE(attempt_delay_ms, 10, TIME_MAX_MS) ||
	    !RANGE(reconnect_initial_ms, 1, TIME_MAX_MS) ||
	    !RANGE(reconnect_max_ms, o->reconnect_initial_ms, TIME_MAX_MS) ||
	    !RANGE(max_attempts, -1, INT_MAX) ||
	    !RANGE(stable_ms, 0, TIME_MAX_MS))
		return NATTER_EINVAL;
	if (!RANGE(queue_lines, 1, QUEUE_LINES_MAX))
		return NATTER_EINVAL;
	if (o->queue_bytes < 3 || o->queue_bytes > QUEUE_BYTES_MAX) {
		snprintf(msg, size, "queue_bytes: %zu is not in 3..%zu",
		         o->queue_bytes, QUEUE_BYTES_MAX);
		return NATTER_EINVAL;
	}
	if (!RANGE(send_rate, -1, 1000000) || !RANGE(send_burst, 1, 1000000))
		return NATTER_EINVAL;
	if ((o->ping_interval_ms &&
	     !RANGE(ping_interval_ms, 10, TIME_MAX_MS)) ||
	    !RANGE(pong_timeout_ms, 10, TIME_MAX_MS) ||
	    !RANGE(max_line, MAX_LINE_MIN, MAX_LINE_MAX) ||
	    !RANGE(recv_queue_lines, 1, QUEUE_LINES_MAX))
		return NATTER_EINVAL;
	/* natterd keeps "guest..." for the nicks it hands out */
	if (o->nick && (!natter__nick_valid(o->nick) ||
	                !strncasecmp(o->nick, "guest", 5))) {
		snprintf(msg, size,
		         "nick: \"%.64s\" is not 1..%d letters, digits, - or _ "
		         "starting with a letter and not with guest",
		         o->nick, NATTER__NICK_MAX);
		return NATTER_EINVAL;
	}
	if (o->room && natter__room_norm(o->room, room) < 0) {
		snprintf(msg, size, "room: \"%.64s\" is not a room name",
		         o->room);
		return NATTER_EINVAL;
	}
	return 0;
}

#undef RANGE

static int copy_strings(natter_client *c, const struct natter_options *o)
{
	const char *port = o->port                             ? o->port
	                   : o->service == NATTER_SERVICE_ECHO ? "4007"
	                                                       : "4000";
	char buf[NATTER__PEER_MAX];

	if (o->host && !(c->host = strdup(o->host)))
		return NATTER_ENOMEM;
	if (o->unix_path && !(c->unix_path = strdup(o->unix_path)))
		return NATTER_ENOMEM;
	if (!(c->port = strdup(port)))
		return NATTER_ENOMEM;
	for (; o->addresses && o->addresses[c->n_addresses];)
		c->n_addresses++;
	if (c->n_addresses) {
		c->addresses = calloc(c->n_addresses, sizeof(char *));
		if (!c->addresses)
			return NATTER_ENOMEM;
		for (size_t i = 0; i < c->n_addresses; i++)
			if (!(c->addresses[i] = strdup(o->addresses[i])))
				return NATTER_ENOMEM;
	}
	/* how messages name the server */
	const char *h = c->host ? c->host : c->addresses ? c->addresses[0] : "";
	if (c->unix_path)
		snprintf(buf, sizeof(buf), "%s", c->unix_path);
	else if (strchr(h, ':'))
		snprintf(buf, sizeof(buf), "[%s]:%s", h, c->port);
	else
		snprintf(buf, sizeof(buf), "%s:%s", h, c->port);
	if (!(c->target = strdup(buf)))
		return NATTER_ENOMEM;
	c->o.host = c->host;
	c->o.port = c->port;
	c->o.unix_path = c->unix_path;
	c->o.addresses = (const char *const *)c->addresses;
	c->o.nick = c->o.room = NULL; /* kept in the session instead */
	return 0;
}

static int open_fds(natter_client *c)
{
	struct epoll_event ev = {.events = EPOLLIN,
	                         .data.u64 = NATTER__TAG_WAKE};

	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0)
		return natter__errno_code(errno);
	c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->evfd < 0)
		return natter__errno_code(errno);
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->evfd, &ev) < 0)
		return natter__errno_code(errno);
	return 0;
}

/* why the last natter_client_new() on this thread failed */
static _Thread_local char new_error[160];

const char *natter_options_error(void)
{
	return new_error;
}

natter_client *natter_client_new(const struct natter_options *user, int *err)
{
	struct natter_options opt;
	const struct natter_options *o = &opt;
	natter_client *c = NULL;
	int rc = NATTER_EINVAL;

	new_error[0] = '\0';
	if (!user) {
		snprintf(new_error, sizeof(new_error), "options: NULL");
		goto fail;
	}
	rc = options_import(&opt, user, new_error, sizeof(new_error));
	if (rc < 0 || (rc = check_options(o, new_error, sizeof(new_error))) < 0)
		goto fail;
	rc = NATTER_ENOMEM;
	if (!(c = calloc(1, sizeof(*c))))
		goto fail;
	c->epfd = c->evfd = c->fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	atomic_init(&c->driving, false);
	c->o = *o;
	if ((rc = copy_strings(c, o)) < 0 || (rc = open_fds(c)) < 0)
		goto fail;
	rc = NATTER_ENOMEM;
	if (!(c->rdbuf = malloc((size_t)o->max_line)))
		goto fail;
	if (c->o.send_rate < 0)
		c->o.send_rate =
		    o->service == NATTER_SERVICE_CHAT ? NATTERD_RATE : 0;
	/* chat parses telnet; echo is binary safe and sends 0xFF back as is */
	natter__queue_init(&c->q, (size_t)o->queue_lines, o->queue_bytes,
	                   o->overflow, o->service == NATTER_SERVICE_CHAT);
	natter__reader_init(&c->rd, c->rdbuf, (size_t)o->max_line);
	natter__rng_seed(&c->rng, 0);
	natter__session_init(&c->ses, o->service == NATTER_SERVICE_ECHO,
	                     o->nick, o->room, natter__rng_next(&c->rng));
	natter__he_init(&c->he, c->epfd, NATTER__TAG_ATTEMPT,
	                o->attempt_delay_ms);
	c->st.last_rtt_ms = -1;
	c->state = NATTER__ST_IDLE;
	c->pub_state = NATTER_STATE_IDLE;
	if (err)
		*err = 0;
	return c;
fail:
	natter_client_free(c);
	if (!new_error[0])
		snprintf(new_error, sizeof(new_error), "%s",
		         natter_strerror(rc));
	if (err)
		*err = rc;
	return NULL;
}

/*
 * Closing with unread input makes the kernel reset the connection, and a
 * reset makes the server drop what it had not read yet: read what is
 * there first (bounded), so that a plain free() loses less.
 */
static void drain_input(natter_client *c)
{
	char buf[4096];

	for (int i = 0; c->fd >= 0 && i < 256; i++)
		if (recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

void natter_client_free(natter_client *c)
{
	if (!c)
		return;
	drain_input(c);
	natter__teardown(c);
	if (c->evfd >= 0)
		close(c->evfd);
	if (c->epfd >= 0)
		close(c->epfd);
	natter__queue_clear(&c->q);
	for (struct natter__rline *l = c->rq_head, *next; l; l = next) {
		next = l->next;
		free(l);
	}
	for (size_t i = 0; c->addresses && i < c->n_addresses; i++)
		free(c->addresses[i]);
	free(c->addresses);
	free(c->host);
	free(c->port);
	free(c->unix_path);
	free(c->target);
	free(c->rdbuf);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* with c->lock held */
static void wake(natter_client *c)
{
	uint64_t one = 1;

	if (c->wake_pending)
		return;
	c->wake_pending = true;
	ssize_t w = write(c->evfd, &one, sizeof(one));
	(void)w; /* EAGAIN: the counter is at its maximum, so awake */
}

int natter_client_send(natter_client *c, const char *line, size_t len)
{
	if (!c || (!line && len))
		return NATTER_EINVAL;
	/* a line read with fgets() may keep its end: take it off once */
	if (len && line[len - 1] == '\n')
		len -= len > 1 && line[len - 2] == '\r' ? 2 : 1;
	if (len > (size_t)c->o.max_line)
		return NATTER_ETOOLONG;
	/* one call, one line: text from elsewhere must not smuggle in a
	 * second line (a command); a 0xFF, which could smuggle in a telnet
	 * command, is escaped by the queue instead, so that no line is lost */
	if (len && (memchr(line, '\r', len) || memchr(line, '\n', len) ||
	            memchr(line, '\0', len)))
		return NATTER_EINVAL;
	pthread_mutex_lock(&c->lock);
	int rc = NATTER_ECLOSED;
	/* the server counts bytes as decoded: an 0xFF is one, as here */
	if (c->server_max_line && len > c->server_max_line)
		rc = NATTER_ETOOLONG;
	else if (c->pub_state != NATTER_STATE_STOPPED &&
	         c->pub_state != NATTER_STATE_GAVE_UP) {
		rc = natter__queue_push(&c->q, line ? line : "", len);
		c->st.lines_dropped = c->q.dropped;
		if (rc == 0)
			wake(c);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int natter_client_sendf(natter_client *c, const char *fmt, ...)
{
	va_list ap;
	char small[512], *buf = small;

	if (!c || !fmt)
		return NATTER_EINVAL;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return NATTER_EINVAL;
	if ((size_t)n > (size_t)c->o.max_line + 2)
		return NATTER_ETOOLONG;
	if ((size_t)n >= sizeof(small)) {
		if (!(buf = malloc((size_t)n + 1)))
			return NATTER_ENOMEM;
		va_start(ap, fmt);
		vsnprintf(buf, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	int rc = natter_client_send(c, buf, (size_t)n);
	if (buf != small)
		free(buf);
	return rc;
}

int natter_client_stop(natter_client *c)
{
	if (!c)
		return NATTER_EINVAL;
	pthread_mutex_lock(&c->lock);
	c->stop_req = true;
	c->pub_state = NATTER_STATE_STOPPED;
	wake(c);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

enum natter_state natter_client_state(natter_client *c)
{
	if (!c)
		return NATTER_STATE_STOPPED;
	pthread_mutex_lock(&c->lock);
	enum natter_state s = c->pub_state;
	pthread_mutex_unlock(&c->lock);
	return s;
}

size_t natter_client_pending(natter_client *c)
{
	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	size_t n = c->q.lines;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void natter_client_stats(natter_client *c, struct natter_stats *out)
{
	if (!c || !out)
		return;
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	out->lines_dropped = c->q.dropped;
	pthread_mutex_unlock(&c->lock);
}

int natter_client_fd(const natter_client *c)
{
	return c ? c->epfd : NATTER_EINVAL;
}

const char *natter_client_nick(const natter_client *c)
{
	return c ? c->ses.want_nick : "";
}

const char *natter_client_current_nick(const natter_client *c)
{
	if (!c || (c->state != NATTER__ST_CONNECTED &&
	           c->state != NATTER__ST_RESTORING))
		return "";
	return c->ses.nick;
}

const char *natter_client_room(const natter_client *c)
{
	return c ? c->ses.want_room : "";
}

const char *natter_client_peer(const natter_client *c)
{
	return c ? c->peer : "";
}

const char *natter_client_reason(const natter_client *c)
{
	return c ? c->reason : "";
}

void *natter_client_data(const natter_client *c)
{
	return c ? c->o.data : NULL;
}
