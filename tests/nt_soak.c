/*
 * nt_soak: the load generator of `make check-long`. For a given time it
 * keeps natterd busy with a mix and checks everything it gets back:
 *  - chat fan-out: rooms of members that all talk; every member must get
 *    every other member's lines, each sender's in order, none lost;
 *  - echo: clients sending payloads of random size that must come back
 *    exactly;
 *  - churn: short-lived connections (echo round trips, chat visitors that
 *    join a busy room, talk and /quit, or drop with a reset mid-broadcast).
 * Every line received must be a whole protocol line. Anything else (a lost
 * or reordered line, a wrong echo, a persistent client disconnected, a
 * connect failure, no progress for STALL_MS) is an error; the summary says
 * how many, and the exit status is 1 if there was any.
 *
 *   nt_soak --chat PORT --echo PORT --seconds N [--rooms R] [--members M]
 *           [--rate LINES_PER_S] [--echoers E] [--pause MS] [--churn PER_S]
 *
 * Defaults: 8 rooms of 8 members saying 5 lines a second each, 8 echo
 * clients with 10 ms between round trips of 1..64 KiB, 20 short
 * connections a second.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nt_chat.h"

#define MAX_CLIENTS  1024
#define IN_MAX       (256 * 1024)
#define STALL_MS     10000
#define ECHO_MAX     (64 * 1024)
#define MEMBERS_MAX  32
#define ERRORS_SHOWN 20

enum kind { CHAT_MEMBER, ECHOER, CHURN_ECHO, CHURN_CHAT };
enum churn_end { END_QUIT, END_RESET, END_CLOSE };

struct client {
	enum kind kind;
	int fd;
	bool connected; /* the TCP connect finished */
	bool ready;     /* chat: in its room; echo: connected */
	bool leaving;   /* a /quit was sent, EOF is expected */
	int room, idx;  /* chat member: room and index in it */
	char nick[32];
	uint64_t started, progress; /* ms */
	/* output not yet written */
	char *out;
	size_t out_len, out_off, out_cap;
	/* input not yet parsed (chat) */
	char *in;
	size_t in_len;
	/* chat member: what to say next, and when */
	uint64_t next_say;
	unsigned seq;
	unsigned expect[MEMBERS_MAX]; /* next seq from each member */
	/* echo: what must come back */
	uint8_t *payload;
	size_t payload_len, echo_sent, echo_got;
	uint64_t rng;
	enum churn_end end;
	bool said;    /* chat churn: its line went out */
	bool got_bye; /* "*** bye" came after a /quit */
};

static struct {
	const char *host;
	uint16_t chat_port, echo_port;
	unsigned seconds, rooms, members, rate, echoers, churn, pause;
} opt = {"127.0.0.1", 0, 0, 60, 8, 8, 5, 8, 20, 10};

static struct {
	uint64_t chat_sent, chat_got, echo_bytes, echo_rounds;
	uint64_t churn_done, connects, lines;
	uint64_t errors;
} st;

static struct client *cl[MAX_CLIENTS];
static size_t n_cl;
static uint64_t churn_seq;
static unsigned members_ready; /* the rooms talk once all are in */
static volatile sig_atomic_t stop_now;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

__attribute__((format(printf, 2, 3))) static void fail(struct client *c,
                                                       const char *fmt, ...)
{
	va_list ap;

	if (st.errors++ >= ERRORS_SHOWN)
		return;
	fprintf(stderr, "nt_soak: error: %s: ", c ? c->nick : "-");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- connections ----------------------------------------------------- */

static int dial(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(port)};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, opt.host, &sin.sin_addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	st.connects++;
	return fd;
}

static struct client *client_new(enum kind k, uint16_t port)
{
	if (n_cl == MAX_CLIENTS)
		return NULL;
	struct client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->kind = k;
	c->fd = dial(port);
	if (c->fd < 0) {
		fail(NULL, "cannot connect to port %u: %s", port,
		     strerror(errno));
		free(c);
		return NULL;
	}
	c->in = malloc(IN_MAX);
	c->started = c->progress = now_ms();
	c->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n_cl ^ c->started;
	if (!c->in) {
		close(c->fd);
		free(c);
		return NULL;
	}
	cl[n_cl++] = c;
	return c;
}

static void client_free(size_t i)
{
	struct client *c = cl[i];

	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	free(c->in);
	free(c->payload);
	free(c);
	cl[i] = cl[--n_cl];
}

static void put(struct client *c, const void *p, size_t n)
{
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + n)
			cap *= 2;
		char *q = realloc(c->out, cap);
		if (!q) {
			fail(c, "out of memory");
			return;
		}
		c->out = q;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

__attribute__((format(printf, 2, 3))) static void say(struct client *c,
                                                      const char *fmt, ...)
{
	char line[600];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return;
	memcpy(line + n, "\r\n", 2);
	put(c, line, (size_t)n + 2);
}

/* ---- chat ------------------------------------------------------------ */

/* "<mR_I> sN ..." from a member of this client's room: its order */
static void member_line(struct client *c, const char *s, size_t len)
{
	unsigned r, i, seq;
	int n = 0;
	char buf[64];

	snprintf(buf, sizeof(buf), "%.*s", (int)(len < 63 ? len : 63), s);
	if (sscanf(buf, "<m%u_%u> s%u %n", &r, &i, &seq, &n) != 3 || !n)
		return; /* a visitor, a notice: not counted */
	if ((int)r != c->room || i >= opt.members) {
		fail(c, "a line from another room: %.60s", buf);
		return;
	}
	if (seq != c->expect[i])
		fail(c, "from m%u_%u got s%u, expected s%u", r, i, seq,
		     c->expect[i]);
	c->expect[i] = seq + 1;
	st.chat_got++;
}

static void chat_line(struct client *c, const char *s, size_t len)
{
	char want[64];

	st.lines++;
	if (!nt_chat_protocol_line(s, len)) {
		fail(c, "not a protocol line: %.*s", (int)(len < 80 ? len : 80),
		     s);
		return;
	}
	if (!c->ready) {
		snprintf(want, sizeof(want), "*** you are now in #soak%d (",
		         c->room);
		if (len >= strlen(want) && !memcmp(s, want, strlen(want))) {
			c->ready = true;
			c->next_say = now_ms();
			members_ready += c->kind == CHAT_MEMBER;
		}
		return;
	}
	if (c->kind == CHAT_MEMBER)
		member_line(c, s, len);
	if (len == 7 && !memcmp(s, "*** bye", 7))
		c->got_bye = true;
}

/* whole lines out of c->in; a line longer than the buffer is an error */
static void chat_input(struct client *c)
{
	size_t start = 0;

	for (size_t i = 0; i + 1 < c->in_len; i++) {
		if (c->in[i] != '\r' || c->in[i + 1] != '\n')
			continue;
		chat_line(c, c->in + start, i - start);
		start = i + 2;
		i++;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	if (c->in_len == IN_MAX)
		fail(c, "a line of more than %d bytes", IN_MAX);
}

static void chat_join(struct client *c)
{
	say(c, "/nick %s", c->nick);
	say(c, "/join #soak%d", c->room);
}

static void member_tick(struct client *c, uint64_t now)
{
	uint64_t period = 1000 / (opt.rate ? opt.rate : 1);

	/* nobody talks before everyone is in: no line can be missed */
	if (members_ready < opt.rooms * opt.members || now < c->next_say)
		return;
	say(c, "s%u %.*s", c->seq++, (int)(20 + rnd(&c->rng) % 200),
	    "the quick brown fox jumps over the lazy dog, again and again; "
	    "the quick brown fox jumps over the lazy dog, again and again; "
	    "the quick brown fox jumps over the lazy dog, again and again; "
	    "the quick brown fox jumps over the lazy dog, again and again");
	st.chat_sent++;
	c->next_say = now + period;
	c->progress = now;
}

/* ---- echo ------------------------------------------------------------ */

static void echo_next(struct client *c)
{
	size_t n = 1 + rnd(&c->rng) % ECHO_MAX;

	if (!c->payload)
		c->payload = malloc(ECHO_MAX);
	if (!c->payload) {
		fail(c, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++)
		c->payload[i] = (uint8_t)rnd(&c->rng);
	c->payload_len = n;
	c->echo_got = 0;
	put(c, c->payload, n);
}

static void echo_input(struct client *c, const uint8_t *p, size_t n)
{
	if (c->echo_got + n > c->payload_len ||
	    memcmp(c->payload + c->echo_got, p, n)) {
		fail(c, "echo differs at byte %zu of %zu", c->echo_got,
		     c->payload_len);
		c->echo_got = c->payload_len; /* start over */
	} else {
		c->echo_got += n;
	}
	st.echo_bytes += n;
	if (c->echo_got < c->payload_len)
		return;
	st.echo_rounds++;
	if (c->kind == ECHOER) {
		/* the next round after a pause: load, not a benchmark */
		c->next_say = now_ms() + opt.pause;
	} else {
		c->leaving = true;
		st.churn_done++;
	}
}

/* ---- churn --------------------------------------------------------- */

static void churn_start(uint64_t now)
{
	uint64_t k = churn_seq++;
	bool chat = k % 2;
	struct client *c = client_new(chat ? CHURN_CHAT : CHURN_ECHO,
	                              chat ? opt.chat_port : opt.echo_port);

	if (!c)
		return;
	snprintf(c->nick, sizeof(c->nick), "c%llu", (unsigned long long)k);
	c->end = (enum churn_end)(k / 2 % 3);
	c->started = c->progress = now;
	if (chat) {
		c->room = (int)(k % opt.rooms);
		chat_join(c);
	} else {
		c->payload = malloc(ECHO_MAX);
		if (c->payload) {
			c->payload_len = 1 + rnd(&c->rng) % 4096;
			for (size_t i = 0; i < c->payload_len; i++)
				c->payload[i] = (uint8_t)rnd(&c->rng);
			put(c, c->payload, c->payload_len);
		}
	}
}

/* a chat visitor: in its room, it says one thing, then ends its way */
static bool churn_chat_tick(struct client *c)
{
	if (!c->ready || c->leaving)
		return false;
	if (!c->said) {
		say(c, "hello from %s", c->nick);
		c->said = true;
		return false;
	}
	if (c->out_off < c->out_len)
		return false;
	st.churn_done++;
	if (c->end == END_QUIT) {
		say(c, "/quit soak");
		c->leaving = true;
		return false;
	}
	if (c->end == END_RESET) {
		struct linger lg = {1, 0};
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	return true; /* close now */
}

/* ---- the loop ------------------------------------------------------ */

/* false: the client is gone (closed, its end checked) */
static bool client_io(struct client *c, short rev, uint64_t now)
{
	if (!c->connected && (rev & (POLLOUT | POLLERR | POLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			fail(c, "connect: %s", strerror(err));
			return false;
		}
		c->connected = true;
		if (c->kind == ECHOER) {
			c->ready = true;
			echo_next(c);
		}
	}
	while (c->connected && c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off,
		                 c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
		c->progress = now;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (!c->connected || !(rev & (POLLIN | POLLHUP | POLLERR)))
		return true;
	for (;;) {
		uint8_t buf[65536];
		size_t room = c->kind == CHAT_MEMBER || c->kind == CHURN_CHAT
		                  ? IN_MAX - c->in_len
		                  : sizeof(buf);
		ssize_t n = recv(c->fd, buf,
		                 room < sizeof(buf) ? room : sizeof(buf), 0);
		if (n > 0) {
			c->progress = now;
			if (c->kind == ECHOER || c->kind == CHURN_ECHO) {
				echo_input(c, buf, (size_t)n);
			} else {
				memcpy(c->in + c->in_len, buf, (size_t)n);
				c->in_len += (size_t)n;
				chat_input(c);
			}
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		/* EOF or an error */
		if (!c->leaving) {
			fail(c, "disconnected (%s)",
			     n == 0 ? "EOF" : strerror(errno));
		} else if (c->kind == CHURN_CHAT) {
			/* a /quit ends with "*** bye", whole lines, a FIN */
			if (c->in_len)
				fail(c, "a torn last line: %.*s",
				     (int)(c->in_len < 80 ? c->in_len : 80),
				     c->in);
			if (c->end == END_QUIT && !c->got_bye)
				fail(c, "no \"*** bye\" after /quit");
			if (c->end == END_QUIT && n != 0)
				fail(c, "quit: %s instead of EOF",
				     strerror(errno));
		}
		return false;
	}
}

static bool client_tick(struct client *c, uint64_t now)
{
	if (c->kind == CHAT_MEMBER)
		member_tick(c, now);
	if (c->kind == ECHOER && c->ready && c->echo_got == c->payload_len &&
	    now >= c->next_say) {
		echo_next(c);
		c->progress = now;
	}
	if (c->kind == CHURN_CHAT && churn_chat_tick(c))
		return false;
	if (c->kind == CHURN_ECHO && c->leaving) {
		if (c->end == END_RESET) {
			struct linger lg = {1, 0};
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg,
			           sizeof(lg));
		}
		return false;
	}
	if (now - c->progress > STALL_MS) {
		fail(c, "no progress for %d ms", STALL_MS);
		return false;
	}
	return true;
}

static void run(uint64_t until)
{
	static struct pollfd p[MAX_CLIENTS];
	uint64_t churn_next = now_ms();

	while (!stop_now) {
		uint64_t now = now_ms();
		if (now >= until)
			break;
		while (opt.churn && now >= churn_next) {
			churn_start(now);
			churn_next += 1000 / opt.churn;
		}
		for (size_t i = 0; i < n_cl; i++) {
			p[i].fd = cl[i]->fd;
			p[i].events = POLLIN;
			if (!cl[i]->connected ||
			    cl[i]->out_off < cl[i]->out_len)
				p[i].events |= POLLOUT;
			p[i].revents = 0;
		}
		int r = poll(p, n_cl, 10);
		if (r < 0 && errno != EINTR) {
			fail(NULL, "poll: %s", strerror(errno));
			return;
		}
		now = now_ms();
		/* backwards: client_free() moves the last one into i */
		for (size_t i = n_cl; i-- > 0;) {
			bool keep = client_io(cl[i], p[i].revents, now) &&
			            client_tick(cl[i], now);
			if (!keep) {
				if (cl[i]->kind == CHAT_MEMBER ||
				    cl[i]->kind == ECHOER)
					fail(cl[i],
					     "a persistent client is gone");
				client_free(i);
			}
		}
	}
}

/* the persistent clients leave politely: chat with /quit, echo with EOF */
static void leave(void)
{
	uint64_t until = now_ms() + 10000;

	for (size_t i = 0; i < n_cl; i++) {
		struct client *c = cl[i];
		if (c->kind == CHAT_MEMBER) {
			say(c, "/quit soak over");
			c->leaving = true;
		} else {
			shutdown(c->fd, SHUT_WR);
			c->leaving = true;
		}
		c->end = c->kind == CHAT_MEMBER ? END_QUIT : END_CLOSE;
		c->kind = c->kind == CHAT_MEMBER ? CHURN_CHAT : CHURN_ECHO;
		c->said = true;
	}
	while (n_cl && now_ms() < until) {
		static struct pollfd p[MAX_CLIENTS];
		for (size_t i = 0; i < n_cl; i++) {
			p[i].fd = cl[i]->fd;
			p[i].events =
			    POLLIN |
			    (cl[i]->out_off < cl[i]->out_len ? POLLOUT : 0);
			p[i].revents = 0;
		}
		poll(p, n_cl, 50);
		uint64_t now = now_ms();
		for (size_t i = n_cl; i-- > 0;)
			if (!client_io(cl[i], p[i].revents, now))
				client_free(i);
	}
	while (n_cl)
		client_free(n_cl - 1);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_now = 1;
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"chat", required_argument, NULL, 'c'},
	    {"echo", required_argument, NULL, 'e'},
	    {"seconds", required_argument, NULL, 's'},
	    {"rooms", required_argument, NULL, 'r'},
	    {"members", required_argument, NULL, 'm'},
	    {"rate", required_argument, NULL, 'l'},
	    {"echoers", required_argument, NULL, 'E'},
	    {"churn", required_argument, NULL, 'C'},
	    {"host", required_argument, NULL, 'h'},
	    {"pause", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, NULL, 10) : 0;
		switch (ch) {
		case 'c':
			opt.chat_port = (uint16_t)v;
			break;
		case 'e':
			opt.echo_port = (uint16_t)v;
			break;
		case 's':
			opt.seconds = (unsigned)v;
			break;
		case 'r':
			opt.rooms = (unsigned)v;
			break;
		case 'm':
			opt.members = (unsigned)v;
			break;
		case 'l':
			opt.rate = (unsigned)v;
			break;
		case 'E':
			opt.echoers = (unsigned)v;
			break;
		case 'C':
			opt.churn = (unsigned)v;
			break;
		case 'h':
			opt.host = optarg;
			break;
		case 'p':
			opt.pause = (unsigned)v;
			break;
		default:
			return -1;
		}
	}
	if (!opt.chat_port || !opt.echo_port || !opt.rooms ||
	    opt.members > MEMBERS_MAX || opt.churn > 1000 ||
	    opt.rooms * opt.members + opt.echoers > MAX_CLIENTS / 2)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	if (parse_args(argc, argv) < 0) {
		fprintf(stderr, "usage: nt_soak --chat PORT --echo PORT "
		                "[--seconds N] [--rooms R] [--members M<=32] "
		                "[--rate L] [--echoers E] [--pause MS] "
		                "[--churn PER_S]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	for (unsigned r = 0; r < opt.rooms; r++)
		for (unsigned i = 0; i < opt.members; i++) {
			struct client *c =
			    client_new(CHAT_MEMBER, opt.chat_port);
			if (!c)
				return 1;
			c->room = (int)r;
			c->idx = (int)i;
			snprintf(c->nick, sizeof(c->nick), "m%u_%u", r, i);
			chat_join(c);
		}
	for (unsigned i = 0; i < opt.echoers; i++) {
		struct client *c = client_new(ECHOER, opt.echo_port);
		if (!c)
			return 1;
		snprintf(c->nick, sizeof(c->nick), "e%u", i);
	}
	uint64_t t0 = now_ms();
	run(t0 + (uint64_t)opt.seconds * 1000);
	leave();
	double secs = (double)(now_ms() - t0) / 1000.0;
	printf("nt_soak: %.0f s; chat: %llu lines sent, %llu delivered and "
	       "checked (%llu lines in all); echo: %llu round trips, %llu "
	       "bytes; churn: %llu short connections; %llu connects; "
	       "errors: %llu\n",
	       secs, (unsigned long long)st.chat_sent,
	       (unsigned long long)st.chat_got, (unsigned long long)st.lines,
	       (unsigned long long)st.echo_rounds,
	       (unsigned long long)st.echo_bytes,
	       (unsigned long long)st.churn_done,
	       (unsigned long long)st.connects, (unsigned long long)st.errors);
	return st.errors ? 1 : 0;
}
