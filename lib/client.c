/*
 * The client's life: options (defaults, checks, copies), creation and
 * destruction, and the calls any thread may make (send, stop, state,
 * stats), which touch only what the lock guards and wake the driving
 * thread through the eventfd.
 */
#include <arpa/inet.h>
#include <errno.h>
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

void natter_options_init(struct natter_options *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->family = NATTER_FAMILY_ANY;
	o->service = NATTER_SERVICE_CHAT;
	o->connect_timeout_ms = 10000;
	o->attempt_delay_ms = 250; /* RFC 8305's recommended value */
	o->reconnect_initial_ms = 500;
	o->reconnect_max_ms = 30000;
	o->max_attempts = -1;
	o->stable_ms = 30000;
	o->queue_lines = 1000;
	o->queue_bytes = (size_t)1 << 20;
	o->overflow = NATTER_OVERFLOW_FAIL;
	o->send_rate = -1;
	o->send_burst = NATTERD_BURST;
	o->ping_interval_ms = 30000;
	o->pong_timeout_ms = 10000;
	o->max_line = 8192;
	o->recv_queue_lines = 1024;
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

static int check_addresses(const char *const *a)
{
	size_t n = 0;

	for (; a && a[n]; n++)
		if (n == NATTER__ADDRS_MAX || !numeric_addr(a[n]))
			return NATTER_EINVAL;
	return a && !n ? NATTER_EINVAL : 0;
}

static int check_options(const struct natter_options *o)
{
	char room[NATTER__ROOM_MAX + 1];
	bool tcp = o->host || o->addresses;

	if (tcp == !!o->unix_path)
		return NATTER_EINVAL; /* one of the two, not both */
	if ((o->host && !*o->host) ||
	    (o->port && !natter__port_valid(o->port)) ||
	    check_addresses(o->addresses) < 0)
		return NATTER_EINVAL;
	if (o->unix_path &&
	    (!*o->unix_path || strlen(o->unix_path) >=
	                           sizeof(((struct sockaddr_un *)0)->sun_path)))
		return NATTER_EINVAL;
	if (!in_range(o->family, NATTER_FAMILY_ANY, NATTER_FAMILY_IPV4_ONLY) ||
	    !in_range(o->service, NATTER_SERVICE_CHAT, NATTER_SERVICE_ECHO) ||
	    !in_range(o->overflow, NATTER_OVERFLOW_FAIL,
	              NATTER_OVERFLOW_DROP_OLDEST))
		return NATTER_EINVAL;
	if (!in_range(o->connect_timeout_ms, 1, TIME_MAX_MS) ||
	    !in_range(o->attempt_delay_ms, 10, TIME_MAX_MS) ||
	    !in_range(o->reconnect_initial_ms, 1, TIME_MAX_MS) ||
	    !in_range(o->reconnect_max_ms, o->reconnect_initial_ms,
	              TIME_MAX_MS) ||
	    o->max_attempts < -1 || !in_range(o->stable_ms, 0, TIME_MAX_MS))
		return NATTER_EINVAL;
	if (!in_range(o->queue_lines, 1, QUEUE_LINES_MAX) ||
	    o->queue_bytes < 3 || o->queue_bytes > QUEUE_BYTES_MAX ||
	    !in_range(o->send_rate, -1, 1000000) ||
	    !in_range(o->send_burst, 1, 1000000))
		return NATTER_EINVAL;
	if ((o->ping_interval_ms &&
	     !in_range(o->ping_interval_ms, 10, TIME_MAX_MS)) ||
	    !in_range(o->pong_timeout_ms, 10, TIME_MAX_MS) ||
	    !in_range(o->max_line, MAX_LINE_MIN, MAX_LINE_MAX) ||
	    !in_range(o->recv_queue_lines, 1, QUEUE_LINES_MAX))
		return NATTER_EINVAL;
	/* natterd keeps "guest..." for the nicks it hands out */
	if (o->nick &&
	    (!natter__nick_valid(o->nick) || !strncasecmp(o->nick, "guest", 5)))
		return NATTER_EINVAL;
	if (o->room && natter__room_norm(o->room, room) < 0)
		return NATTER_EINVAL;
	return 0;
}

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

natter_client *natter_client_new(const struct natter_options *o, int *err)
{
	natter_client *c = NULL;
	int rc = o ? check_options(o) : NATTER_EINVAL;

	if (rc < 0)
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
	if (c->pub_state != NATTER_STATE_STOPPED &&
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
