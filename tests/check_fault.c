/*
 * The fault suite: hostile clients against the real natterd. Each case says
 * what must hold afterwards and checks it, on top of what every case checks
 * (fault_end()):
 *  - the daemon is alive, and exits 0 on SIGTERM (under ASan: no leak);
 *  - a canary (an echo client and two chat clients in a room of their own,
 *    from an address of their own) made round trips all through the
 *    attack, none slower than CANARY_WORST_MS;
 *  - the daemon's fds came back to their count before the attack, and its
 *    RSS to within a tolerance; while under attack it never grew past a
 *    bound that buffering the attack would break.
 * Attackers connect from 127.0.0.1, observers from 127.0.0.2, the canary
 * from 127.0.0.9: loopback only, and per-address limits keep them apart.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nt_chat.h"
#include "nt_test.h"
#include "run_suite.h"
#include "text.h"
#include "util.h"

/* ---- how slow this build is --------------------------------------------- */

#if defined(__SANITIZE_THREAD__)
#define SLOW 8
#elif defined(__SANITIZE_ADDRESS__)
#define SLOW 3
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLOW 8
#elif __has_feature(address_sanitizer)
#define SLOW 3
#endif
#endif
#ifndef SLOW
#define SLOW 1
#endif

#define KIB 1024
#define MIB (1024 * 1024)

/* a canary round trip slower than this means someone was not served */
#define CANARY_WORST_MS (1500 * SLOW)
#define CANARY_PAUSE_MS 20
/* RSS may end this far above where it started (allocator slack) */
#define RSS_SLACK_KB (4 * 1024 * SLOW)

#define BUSY_READERS 10
#define BUSY_SLOW    5
#define BUSY_SENDERS 3
#define BUSY_LINES   5000

#define ATTACKER "127.0.0.1"
#define OBSERVER "127.0.0.2"
#define CANARY   "127.0.0.9"

static struct nt_daemon d;

/* ---- sockets ------------------------------------------------------------ */

static void small_rcvbuf(int fd)
{
	int small = 4096;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
}

/* a non-blocking TCP connection from src (a loopback address) to port */
static int connect_opt(const char *src, uint16_t port, int timeout_ms,
                       bool small)
{
	struct sockaddr_in from = {.sin_family = AF_INET};
	struct sockaddr_in to = {.sin_family = AF_INET,
	                         .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return -errno;
	inet_pton(AF_INET, src, &from.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	if (small) /* before connect: the window is agreed on then */
		small_rcvbuf(fd);
	if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, timeout_ms) != 1) {
		errno = ETIMEDOUT;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		errno = err ? err : errno;
		goto fail;
	}
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

static int connect_from(const char *src, uint16_t port, int timeout_ms)
{
	return connect_opt(src, port, timeout_ms, false);
}

static int must_connect(const char *src, uint16_t port)
{
	int fd = connect_from(src, port, 5000 * SLOW);

	ck_assert_msg(fd >= 0, "connect from %s to port %u: %s", src, port,
	              strerror(-fd));
	return fd;
}

/* close with an RST instead of a FIN */
static void reset_close(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* ---- many connections at once ------------------------------------------- */

/* a connection's two directions: what to send, what came back */
struct io {
	int fd;
	const uint8_t *out;
	size_t out_len, sent;
	bool shut_wr; /* shutdown(SHUT_WR) once everything is sent */
	char *in;     /* received, NUL-terminated; at most in_cap bytes */
	size_t in_len, in_cap, in_total;
	bool closed; /* EOF, reset or a failed write */
	bool eof;    /* a clean EOF, not a reset */
	bool no_read;
	bool tail; /* when in_cap is reached, keep the latest bytes */
	/* what count_got() has looked through, so it need not again */
	char needle[128];
	size_t scanned, hits, last_end;
};

static void io_init(struct io *v, int fd, size_t in_cap)
{
	memset(v, 0, sizeof(*v));
	v->fd = fd;
	v->in_cap = in_cap;
	v->in = malloc(in_cap + 1);
	ck_assert_ptr_nonnull(v->in);
	v->in[0] = '\0';
}

static void io_send(struct io *v, const void *out, size_t len)
{
	v->out = out;
	v->out_len = len;
	v->sent = 0;
}

static void io_free(struct io *v)
{
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
	free(v->in);
	v->in = NULL;
}

static void io_read(struct io *v)
{
	char buf[65536];

	for (;;) {
		ssize_t n = recv(v->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			const char *from = buf;
			if (v->tail && v->in_len + (size_t)n > v->in_cap) {
				/* keep the latest in_cap bytes */
				size_t m = NT_MIN((size_t)n, v->in_cap);
				size_t drop = v->in_len + m - v->in_cap;
				memmove(v->in, v->in + drop, v->in_len - drop);
				v->in_len -= drop;
				v->needle[0] = '\0'; /* offsets moved */
				from += (size_t)n - m;
				n = (ssize_t)m;
			}
			size_t keep = NT_MIN((size_t)n, v->in_cap - v->in_len);
			memcpy(v->in + v->in_len, from, keep);
			v->in_len += keep;
			v->in[v->in_len] = '\0';
			v->in_total += (size_t)n; /* with tail: what was kept */
			continue;
		}
		if (n == 0) {
			v->closed = v->eof = true;
		} else if (errno != EAGAIN && errno != EINTR) {
			v->closed = true;
		}
		return;
	}
}

static void io_write(struct io *v)
{
	while (v->sent < v->out_len) {
		ssize_t n = send(v->fd, v->out + v->sent,
		                 NT_MIN(v->out_len - v->sent, (size_t)65536),
		                 MSG_NOSIGNAL);
		if (n > 0) {
			v->sent += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		v->closed = true;
		return;
	}
	if (v->shut_wr) {
		shutdown(v->fd, SHUT_WR);
		v->shut_wr = false;
	}
}

typedef bool until_fn(struct io *v, size_t n, void *arg);

/* everything sent (or the connection gone) everywhere */
static bool all_sent(struct io *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!v[i].closed && (v[i].sent < v[i].out_len || v[i].shut_wr))
			return false;
	return true;
}

/*
 * Send and receive on every connection at once until everything is sent
 * and until(v, n, arg) holds (NULL: nothing more), or timeout_ms passes.
 * True when done.
 */
static bool pump(struct io *v, size_t n, int timeout_ms, until_fn *until,
                 void *arg)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	struct pollfd *p = calloc(n ? n : 1, sizeof(*p));

	ck_assert_ptr_nonnull(p);
	for (;;) {
		if (all_sent(v, n) && (!until || until(v, n, arg))) {
			free(p);
			return true;
		}
		uint64_t now = nt_test_now_ms();
		if (now >= deadline)
			break;
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			p[i].fd = v[i].closed ? -1 : v[i].fd;
			p[i].events =
			    (v[i].no_read ? 0 : POLLIN) |
			    (v[i].sent < v[i].out_len || v[i].shut_wr ? POLLOUT
			                                              : 0);
			p[i].revents = 0;
			k += p[i].fd >= 0;
		}
		if (k == 0)
			break;
		int r = poll(p, n, (int)NT_MIN(deadline - now, (uint64_t)100));
		ck_assert_msg(r >= 0 || errno == EINTR, "poll: %s",
		              strerror(errno));
		for (size_t i = 0; r > 0 && i < n; i++) {
			if (p[i].revents & POLLOUT)
				io_write(&v[i]);
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR) &&
			    !v[i].closed)
				io_read(&v[i]);
		}
	}
	free(p);
	return all_sent(v, n) && (!until || until(v, n, arg));
}

static bool until_never(struct io *v, size_t n, void *arg)
{
	(void)v;
	(void)n;
	(void)arg;
	return false;
}

/* keep every connection going for ms, whatever happens */
static void pump_for(struct io *v, size_t n, int ms)
{
	pump(v, n, ms, until_never, NULL);
}

static bool until_closed(struct io *v, size_t n, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < n; i++)
		if (!v[i].closed)
			return false;
	return true;
}

/*
 * How many times v received what (which cannot overlap itself), looking
 * only at what came since the last call with the same what: a busy room
 * gives megabytes, searched after every poll().
 */
static size_t count_got(struct io *v, const char *what)
{
	size_t n = strlen(what);

	if (n >= sizeof(v->needle) || strcmp(v->needle, what)) {
		snprintf(v->needle, sizeof(v->needle), "%s", what);
		v->scanned = v->hits = v->last_end = 0;
	}
	size_t from = v->scanned >= n ? v->scanned - n + 1 : 0;
	from = NT_MAX(from, v->last_end);
	for (const char *p = v->in + from;
	     (p = memmem(p, (size_t)(v->in + v->in_len - p), what, n));
	     p += n) {
		v->hits++;
		v->last_end = (size_t)(p - v->in) + n;
	}
	v->scanned = v->in_len;
	return v->hits;
}

/* v received what (telnet answers may hold NULs: not strstr) */
static bool got(struct io *v, const char *what)
{
	return count_got(v, what) > 0;
}

/* arg is a string every connection must have received */
static bool until_all_got(struct io *v, size_t n, void *arg)
{
	for (size_t i = 0; i < n; i++)
		if (!got(&v[i], arg))
			return false;
	return true;
}

/* arg is a string the second connection (the observer) must have got */
static bool until_observer_got(struct io *v, size_t n, void *arg)
{
	return n >= 2 && got(&v[1], arg);
}

/* arg is a string the first BUSY_READERS connections must have received */
static bool until_readers_got(struct io *v, size_t n, void *arg)
{
	return until_all_got(v, NT_MIN(n, (size_t)BUSY_READERS), arg);
}

/* where each connection stands, for a failing test's output */
static void io_report(const struct io *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(
		    stderr,
		    "  #%zu: sent %zu of %zu, got %zu bytes%s; last: %.120s\n",
		    i, v[i].sent, v[i].out_len, v[i].in_total,
		    v[i].closed ? (v[i].eof ? ", EOF" : ", reset") : "",
		    v[i].in + (v[i].in_len > 120 ? v[i].in_len - 120 : 0));
}

/* the last 300 bytes received, for messages */
static const char *tail_of(const struct io *v)
{
	return v->in + (v->in_len > 300 ? v->in_len - 300 : 0);
}

/*
 * Every line of what v received is whole (CRLF-terminated, the last one
 * too) and a protocol line. Returns the number of lines; fails the test
 * otherwise.
 */
/*
 * Lines of what came, one at a time: *line and *len (without the line
 * end), *whole if it ended in CRLF. A plain loop, not memmem() and the
 * like: under ASan each of those checks all the rest of a buffer of
 * megabytes, line after line.
 */
struct line_it {
	const char *p, *end;
};

static bool line_next(struct line_it *it, const char **line, size_t *len,
                      bool *whole)
{
	const char *q = it->p;

	if (it->p >= it->end)
		return false;
	while (q < it->end && *q != '\n')
		q++;
	*line = it->p;
	*whole = q < it->end && q > it->p && q[-1] == '\r';
	*len = (size_t)(q - it->p) - (*whole ? 1 : 0);
	it->p = q < it->end ? q + 1 : q;
	return true;
}

static size_t check_lines(const struct io *v, const char *who)
{
	struct line_it it = {v->in, v->in + v->in_len};
	const char *p;
	size_t len, lines = 0;
	bool whole;

	ck_assert_msg(v->in_total == v->in_len,
	              "%s: %zu bytes received, only %zu kept", who, v->in_total,
	              v->in_len);
	while (line_next(&it, &p, &len, &whole)) {
		ck_assert_msg(whole, "%s: a torn line: \"%.*s\"", who,
		              (int)NT_MIN(len, 80), p);
		ck_assert_msg(!memchr(p, '\r', len),
		              "%s: a bare CR in \"%.*s\"", who,
		              (int)NT_MIN(len, 80), p);
		ck_assert_msg(nt_chat_protocol_line(p, len),
		              "%s: not a protocol line: \"%.*s\"", who,
		              (int)NT_MIN(len, 200), p);
		lines++;
	}
	return lines;
}

/* ---- chat clients -------------------------------------------------------- */

static int send_str(int fd, const char *s)
{
	return nt_write_all(fd, s, strlen(s), 5000 * SLOW);
}

/*
 * A chat client from src called nick in #room, greeting and all read, so
 * that what it gets from now on is what happens in the room.
 */
static int chat_client_opt(const char *src, const char *nick, const char *room,
                           bool small)
{
	int fd =
	    connect_opt(src, nt_daemon_port(&d, "chat"), 5000 * SLOW, small);

	ck_assert_msg(fd >= 0, "connect from %s: %s", src, strerror(-fd));
	nt_chat_enter(fd, nick, room, 5000 * SLOW);
	return fd;
}

static int chat_client(const char *src, const char *nick, const char *room)
{
	return chat_client_opt(src, nick, room, false);
}

/* one that will not read: a window of a few kB */
static int chat_client_small(const char *src, const char *nick,
                             const char *room)
{
	return chat_client_opt(src, nick, room, true);
}

/* ---- the canary ---------------------------------------------------------- */

struct canary {
	pthread_t thread;
	atomic_bool stop;
	atomic_int state; /* 0 starting, 1 a round done, -1 failed */
	uint16_t echo_port, chat_port;
	pid_t pid;
	/* results, read after the join */
	unsigned rounds;
	uint64_t worst_ms;
	long rss_peak;
	char error[256];
};

static uint64_t canary_echo(int fd, unsigned round, char *err, size_t size)
{
	unsigned char msg[64];
	uint64_t t = nt_test_now_ms();

	nt_fill_random(msg, sizeof(msg), round + 1);
	int rc = nt_echo_check(fd, msg, sizeof(msg), 2 * CANARY_WORST_MS);
	if (rc < 0)
		snprintf(err, size, "echo round %u: %s", round, strerror(-rc));
	return nt_test_now_ms() - t;
}

/*
 * One says, the other hears, turn about: both keep talking, so neither is
 * idle in the daemon's eyes (idle means "sent nothing").
 */
static uint64_t canary_chat(int a, int b, unsigned round, char *err,
                            size_t size)
{
	char msg[64], want[64], sink[512];
	uint64_t t = nt_test_now_ms();
	int say = round % 2 ? b : a, hear = round % 2 ? a : b;

	/* the speaker hears nothing of its own; what else it has got (its
	 * partner's earlier lines) is not our concern */
	while (recv(say, sink, sizeof(sink), 0) > 0)
		;
	snprintf(msg, sizeof(msg), "c%u\r\n", round);
	snprintf(want, sizeof(want), "<canary%c> c%u", round % 2 ? 'B' : 'A',
	         round);
	if (send_str(say, msg) < 0 ||
	    !nt_chat_wait_line(hear, want, true, 2 * CANARY_WORST_MS))
		snprintf(err, size, "chat round %u: \"%s\" never came", round,
		         want);
	return nt_test_now_ms() - t;
}

static void *canary_main(void *arg)
{
	struct canary *c = arg;
	int e = connect_from(CANARY, c->echo_port, 5000 * SLOW);
	int a = connect_from(CANARY, c->chat_port, 5000 * SLOW);
	int b = connect_from(CANARY, c->chat_port, 5000 * SLOW);

	if (e < 0 || a < 0 || b < 0) {
		snprintf(c->error, sizeof(c->error), "cannot connect");
		goto out;
	}
	/* both into #canary, away from whatever the attack does */
	const char *setup[2] = {"/nick canaryA\r\n/join #canary\r\n",
	                        "/nick canaryB\r\n/join #canary\r\n"};
	int fds[2] = {a, b};
	for (int i = 0; i < 2; i++)
		if (send_str(fds[i], setup[i]) < 0 ||
		    !nt_chat_wait_line(fds[i], "*** you are now in #canary",
		                       true, 5000 * SLOW)) {
			snprintf(c->error, sizeof(c->error), "chat set-up");
			goto out;
		}
	while (!atomic_load(&c->stop) && !c->error[0]) {
		uint64_t t =
		    canary_echo(e, c->rounds, c->error, sizeof(c->error));
		if (!c->error[0])
			t = NT_MAX(t, canary_chat(a, b, c->rounds, c->error,
			                          sizeof(c->error)));
		c->worst_ms = NT_MAX(c->worst_ms, t);
		c->rounds++;
		long rss = nt_proc_rss_kb(c->pid);
		c->rss_peak = NT_MAX(c->rss_peak, rss);
		if (!c->error[0])
			atomic_store(&c->state, 1);
		nt_sleep_ms(CANARY_PAUSE_MS);
	}
out:
	if (c->error[0])
		atomic_store(&c->state, -1);
	if (e >= 0)
		close(e);
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	return NULL;
}

/* ---- every case's frame -------------------------------------------------- */

struct fault_conf {
	unsigned idle, write, line, grace;
	unsigned max_conns, per_ip;
	unsigned max_output, max_line;
	unsigned flood_rate, flood_burst;
	long nofile;
};

static const struct fault_conf base_conf = {
    .idle = 60,
    .write = 10,
    .line = 30,
    .grace = 5,
    .max_conns = 2000,
    .per_ip = 0,
    .max_output = 256 * KIB,
    .max_line = 512,
    .flood_rate = 10000,
    .flood_burst = 10000,
};

/*
 * For busy rooms where every reader keeps up: output may pile up for a
 * moment when the test process is not scheduled, and being cut off for it
 * is the slow-consumer case's business, not theirs.
 */
static const struct fault_conf roomy_conf = {
    .idle = 60,
    .write = 10,
    .line = 30,
    .grace = 5,
    .max_conns = 2000,
    .per_ip = 0,
    .max_output = 16 * MIB,
    .max_line = 512,
    .flood_rate = 10000,
    .flood_burst = 10000,
};

static struct fault {
	uint64_t t0;
	uint16_t chat, echo;
	int fds0;
	long rss0;
	struct canary canary;
	bool canary_running;
} F;

static void teardown(void)
{
	if (F.canary_running) {
		atomic_store(&F.canary.stop, true);
		pthread_join(F.canary.thread, NULL);
		F.canary_running = false;
	}
	nt_daemon_cleanup(&d);
}

/* the daemon's fd count, once it has stopped changing for a while */
static int settled_fds(int target, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	int n;

	while ((n = nt_proc_fd_count(d.pid)) > target &&
	       nt_test_now_ms() < deadline)
		nt_sleep_ms(20);
	return n;
}

/* the daemon's fd count once it has not changed for 300 ms */
static int steady_fds(void)
{
	int n = nt_proc_fd_count(d.pid), same = 0;

	for (int i = 0; i < 500 * SLOW && same < 15; i++) {
		nt_sleep_ms(20);
		int m = nt_proc_fd_count(d.pid);
		same = m == n ? same + 1 : 0;
		n = m;
	}
	return n;
}

static void canary_start(void)
{
	memset(&F.canary, 0, sizeof(F.canary));
	F.canary.echo_port = F.echo;
	F.canary.chat_port = F.chat;
	F.canary.pid = d.pid;
	ck_assert_int_eq(
	    pthread_create(&F.canary.thread, NULL, canary_main, &F.canary), 0);
	F.canary_running = true;
	/* wait for a first round: the canary is connected and counted */
	for (int i = 0; i < 1000 * SLOW; i++) {
		if (atomic_load(&F.canary.state) != 0)
			break;
		nt_sleep_ms(10);
	}
	ck_assert_msg(atomic_load(&F.canary.state) == 1,
	              "the canary did not get going");
}

static void canary_stop(const char *name)
{
	if (!F.canary_running)
		return;
	atomic_store(&F.canary.stop, true);
	pthread_join(F.canary.thread, NULL);
	F.canary_running = false;
	fprintf(stderr, "%s: canary %u rounds, slowest %llu ms\n", name,
	        F.canary.rounds, (unsigned long long)F.canary.worst_ms);
	ck_assert_msg(!F.canary.error[0], "%s: canary: %s", name,
	              F.canary.error);
	ck_assert_msg(F.canary.rounds >= 2, "%s: canary made %u rounds", name,
	              F.canary.rounds);
	ck_assert_msg(F.canary.worst_ms <= CANARY_WORST_MS,
	              "%s: a canary round trip took %llu ms (at most %d)", name,
	              (unsigned long long)F.canary.worst_ms, CANARY_WORST_MS);
}

/*
 * Start natterd (chat and echo on 127.0.0.1), warm it up, start the
 * canary, and take the fd and RSS baseline.
 */
static void fault_start(const struct fault_conf *c)
{
	char asan[512];
	const char *asan0 = getenv("ASAN_OPTIONS");
	const char *env[] = {asan, NULL};
	struct nt_daemon_opts o = {.env = env, .nofile = c->nofile};

	/* no quarantine: RSS then follows what the daemon keeps, not what
	 * passed through it (a no-op without ASan) */
	snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%squarantine_size_mb=0",
	         asan0 ? asan0 : "", asan0 && *asan0 ? ":" : "");
	memset(&F, 0, sizeof(F));
	F.t0 = nt_test_now_ms();
	nt_daemon_start(
	    &d, &o,
	    "workers = 2;\n"
	    "max_connections = %u;\n"
	    "limits = { per_ip = %u; max_output = %u; };\n"
	    "timeouts = { idle = %u; write = %u; line = %u; "
	    "shutdown_grace = %u; };\n"
	    "chat = { max_line = %u; flood = { rate = %u; burst = %u; }; };\n"
	    "listeners = (\n"
	    " { name = \"chat\"; service = \"chat\"; address = \"127.0.0.1\"; "
	    "port = 0; },\n"
	    " { name = \"echo\"; service = \"echo\"; address = \"127.0.0.1\"; "
	    "port = 0; }\n);\n",
	    c->max_conns, c->per_ip, c->max_output, c->idle, c->write, c->line,
	    c->grace, c->max_line, c->flood_rate, c->flood_burst);
	F.chat = nt_daemon_port(&d, "chat");
	F.echo = nt_daemon_port(&d, "echo");

	/* both workers' buffers and pools taken once before the baseline */
	for (int i = 0; i < 4; i++) {
		static unsigned char warm[256 * KIB];
		nt_fill_random(warm, sizeof(warm), (uint64_t)i + 7);
		int e = must_connect(OBSERVER, F.echo);
		ck_assert_int_eq(nt_echo_check(e, warm, sizeof(warm), 20000),
		                 0);
		close(e);
		int ch = chat_client(OBSERVER, "warmup", "warmup");
		ck_assert(nt_chat_alive(ch, "warm", 5000 * SLOW));
		close(ch);
	}
	canary_start();
	F.fds0 = steady_fds();
	F.rss0 = nt_proc_rss_kb(d.pid);
	ck_assert_int_gt(F.fds0, 0);
	ck_assert_int_gt(F.rss0, 0);
}

/*
 * What must hold after every case (its attackers all closed by now): the
 * daemon alive, its fds back, its RSS near where it was and never far
 * above, the canary served throughout; then a clean exit.
 */
static void fault_end(const char *name, long peak_kb)
{
	int fds = settled_fds(F.fds0, 10000 * SLOW);

	ck_assert_msg(nt_daemon_alive(&d), "%s: natterd died (exit %d)", name,
	              d.status);
	canary_stop(name);
	long rss = nt_proc_rss_kb(d.pid);
	long peak = NT_MAX(F.canary.rss_peak, rss);
	fprintf(stderr,
	        "%s: fds %d -> %d; RSS %ld -> peak %ld -> %ld kB; %llu ms\n",
	        name, F.fds0, fds, F.rss0, peak, rss,
	        (unsigned long long)(nt_test_now_ms() - F.t0));
	ck_assert_msg(fds <= F.fds0, "%s: %d fds before, %d after", name,
	              F.fds0, fds);
	ck_assert_msg(rss - F.rss0 <= RSS_SLACK_KB,
	              "%s: RSS %ld kB before, %ld kB after", name, F.rss0, rss);
	ck_assert_msg(peak - F.rss0 <= peak_kb,
	              "%s: RSS peaked at %ld kB from %ld kB (bound +%ld)", name,
	              peak, F.rss0, peak_kb);
	int code = nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS * SLOW);
	if (code != 0)
		nt_daemon_dump_log(&d);
	ck_assert_msg(code == 0, "%s: natterd exited %d", name, code);
}

/* what an attack may cost at most while it lasts */
#define PEAK_KB (16 * 1024 * SLOW)

/* ---- hostile bytes ------------------------------------------------------- */

/* n random bytes, but no IAC IP: that is a polite quit, not an attack */
static uint8_t *random_bytes(size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n);

	ck_assert_ptr_nonnull(p);
	nt_fill_random(p, n, seed);
	for (size_t i = 1; i < n; i++)
		if (p[i - 1] == 0xff && p[i] == 0xf4)
			p[i] = 0xf3;
	return p;
}

/*
 * 1 MiB of random bytes to chat: whatever the sender gets, every line an
 * observer in the same room receives is whole and clean, and the observer
 * is still served afterwards.
 */
START_TEST(test_random_chat)
{
	struct io v[2];
	uint8_t *junk = random_bytes(MIB, 1);

	/* roomy: the observer gets 3 MB in a burst, and must not be cut off
	 * as a slow consumer should the test not be scheduled for a moment */
	fault_start(&roomy_conf);
	int obs = chat_client(OBSERVER, "observer", "lobby");
	io_init(&v[0], must_connect(ATTACKER, F.chat), MIB);
	io_init(&v[1], obs, 16 * MIB);
	io_send(&v[0], junk, MIB);
	ck_assert_msg(pump(v, 2, 60000 * SLOW, NULL, NULL),
	              "1 MiB to chat not taken in time (%zu sent)", v[0].sent);
	ck_assert_msg(!v[0].closed, "the sender was disconnected: %s",
	              tail_of(&v[0]));
	/* what the attacker said reaches the observer: wait for the tail,
	 * after an IAC SE: the random bytes may have left an SB open */
	ck_assert_int_eq(send_str(v[0].fd, "\xff\xf0\r\nthe end\r\n"), 0);
	ck_assert_msg(
	    pump(v, 2, 20000 * SLOW, until_observer_got, "> the end\r\n"),
	    "the last line never came; the observer%s: %s",
	    v[1].closed ? " was disconnected" : "'s last bytes",
	    tail_of(&v[1]));
	size_t lines = check_lines(&v[1], "observer");
	ck_assert_msg(lines > 1000, "the observer saw only %zu lines", lines);
	fprintf(stderr, "random chat: the observer got %zu clean lines\n",
	        lines);
	v[1].fd = -1;
	ck_assert(nt_chat_alive(obs, "after", 5000 * SLOW));
	close(obs);
	io_free(&v[0]);
	io_free(&v[1]);
	free(junk);
	fault_end("random to chat", PEAK_KB);
}
END_TEST

/* 1 MiB of random bytes to echo come back exactly */
START_TEST(test_random_echo)
{
	uint8_t *junk = random_bytes(MIB, 2);

	fault_start(&base_conf);
	int fd = must_connect(ATTACKER, F.echo);
	ck_assert_int_eq(nt_echo_check(fd, junk, MIB, 60000 * SLOW), 0);
	close(fd);
	free(junk);
	fault_end("random to echo", PEAK_KB);
}
END_TEST

/*
 * A 10 MiB line with no newline: one "line too long" for the sender, the
 * rest discarded as it comes (RSS stays put, nobody sees any of it), and
 * the next line is served normally.
 */
START_TEST(test_long_line)
{
	struct io v[2];
	size_t n = 10 * MIB;
	uint8_t *line = malloc(n);

	ck_assert_ptr_nonnull(line);
	memset(line, 'x', n);
	fault_start(&base_conf);
	int obs = chat_client(OBSERVER, "observer", "lobby");
	io_init(&v[0], must_connect(ATTACKER, F.chat), 64 * KIB);
	io_init(&v[1], obs, 64 * KIB);
	io_send(&v[0], line, n);
	ck_assert_msg(pump(v, 2, 60000 * SLOW, NULL, NULL),
	              "10 MiB not taken in time (%zu sent)", v[0].sent);
	ck_assert_int_eq(send_str(v[0].fd, "\r\n/ping long\r\n"), 0);
	ck_assert(pump(v, 1, 10000 * SLOW, until_all_got, "*** pong long\r\n"));
	const char *tl = strstr(v[0].in, "!!! line too long");
	ck_assert_msg(tl && !strstr(tl + 1, "!!! line too long"),
	              "not one \"line too long\": %.300s", v[0].in);
	ck_assert_msg(!strstr(v[1].in, "xxxx"), "the observer saw the long "
	                                        "line");
	io_free(&v[0]);
	io_free(&v[1]);
	free(line);
	fault_end("10 MiB line", 4 * 1024 * SLOW);
}
END_TEST

/*
 * 100,000 telnet commands: negotiation for every option, timing marks,
 * NOPs, AYTs, empty subnegotiations. The answers are bounded (each option
 * refused once, timing marks and AYT at most a few per read), nothing
 * reaches the room, and the session works afterwards.
 */
START_TEST(test_iac_flood)
{
	struct io v[2];
	size_t n = 0, cap = 100000 * 5;
	uint8_t *p = malloc(cap);

	ck_assert_ptr_nonnull(p);
	for (unsigned i = 0; i < 100000; i++) {
		static const uint8_t verbs[] = {251, 252, 253, 254};
		p[n++] = 0xff;
		switch (i % 8) {
		case 0:
		case 1:
		case 2:
		case 3:
			p[n++] = verbs[i % 4];
			p[n++] = (uint8_t)(i / 8);
			break;
		case 4:
			p[n++] = 253; /* DO TIMING-MARK */
			p[n++] = 6;
			break;
		case 5:
			p[n++] = 246; /* AYT */
			break;
		case 6:
			p[n++] = 250; /* SB x IAC SE */
			p[n++] = 24;
			p[n++] = 0xff;
			p[n++] = 240;
			break;
		default:
			p[n++] = 241; /* NOP */
			break;
		}
	}
	fault_start(&base_conf);
	int obs = chat_client(OBSERVER, "observer", "lobby");
	int atk = chat_client(ATTACKER, "telnetter", "lobby");
	ck_assert(nt_chat_wait_line(obs, " is now known as telnetter\r", false,
	                            5000 * SLOW));
	io_init(&v[0], atk, 4 * MIB);
	io_init(&v[1], obs, 64 * KIB);
	io_send(&v[0], p, n);
	ck_assert(pump(v, 2, 60000 * SLOW, NULL, NULL));
	ck_assert_int_eq(send_str(atk, "/ping iac\r\n"), 0);
	ck_assert(pump(v, 1, 10000 * SLOW, until_all_got, "*** pong iac\r\n"));
	fprintf(stderr, "IAC flood: %zu bytes of answers to %zu bytes\n",
	        v[0].in_total, n);
	ck_assert_msg(v[0].in_total < 256 * KIB, "%zu bytes of telnet answers",
	              v[0].in_total);
	ck_assert_msg(v[1].in_len == 0, "the observer saw: %.300s", v[1].in);
	io_free(&v[0]);
	io_free(&v[1]);
	free(p);
	fault_end("100k IAC", PEAK_KB);
}
END_TEST

/*
 * IAC DO TIMING-MARK over and over from a client that reads its answers
 * never (read_every_ms 0) or only a little now and then. Each answer is
 * output like any other and counts against max_output, so the client is
 * cut off for output overflow, and while it lasts natterd's RSS grows by
 * less than twice max_output. A trickle read is progress for the write
 * timeout, so only the bound can stop this one.
 */
static void timing_mark_flood(const char *name, int read_every_ms)
{
	static uint8_t tm[3 * 21845];
	struct fault_conf c = base_conf;
	char sink[4 * KIB];
	size_t sent = 0;
	long peak = 0;
	bool closed = false;
	/* under a sanitizer the allocator's own overhead (redzones, shadow
	 * memory, per-thread caches) comes on top; the plain build holds
	 * natterd to the bound itself */
	long bound =
	    2 * (long)c.max_output / KIB + (SLOW > 1 ? RSS_SLACK_KB : 0);

	for (size_t i = 0; i < sizeof(tm); i += 3)
		memcpy(tm + i, "\xff\xfd\x06", 3);
	/* the most flood control lets through, so that the answers outrun
	 * what the kernel's socket buffers take: the bound must stop them */
	c.flood_burst = 100000;
	fault_start(&c);
	int fd = connect_opt(ATTACKER, F.chat, 5000 * SLOW, true);
	ck_assert_int_ge(fd, 0);
	uint64_t t0 = nt_test_now_ms(), next_read = t0 + read_every_ms;
	uint64_t next_rss = t0;
	while (!closed && nt_test_now_ms() < t0 + 20000 * SLOW) {
		uint64_t now = nt_test_now_ms();
		if (now >= next_rss) {
			peak = NT_MAX(peak, nt_proc_rss_kb(d.pid));
			next_rss = now + 10;
		}
		if (read_every_ms && now >= next_read) {
			ssize_t r = recv(fd, sink, sizeof(sink), 0);
			closed = r == 0 ||
			         (r < 0 && errno != EAGAIN && errno != EINTR);
			next_read = now + (uint64_t)read_every_ms;
		}
		/* from where the last send stopped: a command cut in two
		 * would make data bytes of the rest */
		size_t at = sent % sizeof(tm);
		ssize_t n = send(fd, tm + at, sizeof(tm) - at, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			closed = true;
		} else {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, 10);
			closed = closed || (p.revents & (POLLHUP | POLLERR));
		}
	}
	peak = NT_MAX(peak, nt_proc_rss_kb(d.pid));
	close(fd);
	fprintf(stderr, "%s: %zu bytes sent in %llu ms; RSS %ld -> %ld kB\n",
	        name, sent, (unsigned long long)(nt_test_now_ms() - t0), F.rss0,
	        peak);
	ck_assert_msg(closed, "%s: still connected after %zu bytes", name,
	              sent);
	ck_assert_msg(nt_daemon_wait_log(&d, "disconnected: output overflow",
	                                 5000 * SLOW),
	              "%s: not cut off for output overflow", name);
	ck_assert_msg(peak - F.rss0 < bound,
	              "%s: RSS grew from %ld to %ld kB (max_output %u kB)",
	              name, F.rss0, peak, c.max_output / KIB);
	fault_end(name, bound);
}

START_TEST(test_timing_mark_flood)
{
	timing_mark_flood("timing marks, never read", 0);
}
END_TEST

START_TEST(test_timing_mark_trickle)
{
	timing_mark_flood("timing marks, read now and then", 100);
}
END_TEST

/*
 * IAC SB with a megabyte after it and no IAC SE: it is discarded as it
 * comes (memory stays put, the lines in it reach nobody), and past
 * NT_TELNET_SB_MAX the client is told and disconnected: an endless SB
 * would otherwise dodge flood control and the line timeout.
 */
START_TEST(test_unterminated_sb)
{
	struct io v[2];
	size_t n = MIB;
	uint8_t *p = malloc(n);

	ck_assert_ptr_nonnull(p);
	memcpy(p, "\xff\xfa\x18", 3);
	for (size_t i = 3; i < n; i++)
		p[i] = "hello\r\n"[i % 7];
	fault_start(&base_conf);
	int obs = chat_client(OBSERVER, "observer", "lobby");
	int atk = chat_client(ATTACKER, "sb", "lobby");
	ck_assert(nt_chat_wait_line(obs, " is now known as sb\r", false,
	                            5000 * SLOW));
	io_init(&v[0], atk, 64 * KIB);
	io_init(&v[1], obs, 64 * KIB);
	io_send(&v[0], p, n);
	ck_assert_msg(pump(v, 1, 30000 * SLOW, until_closed, NULL),
	              "still connected after a megabyte of SB");
	ck_assert_msg(v[0].eof, "reset instead of EOF");
	ck_assert_msg(got(&v[0], "!!! telnet subnegotiation too long: "
	                         "disconnecting\r\n"),
	              "not told: %s", tail_of(&v[0]));
	ck_assert(pump(v, 2, 5000 * SLOW, until_observer_got, "\r\n"));
	pump_for(v, 2, 200); /* and nothing more */
	ck_assert_str_eq(v[1].in, "*** sb has quit (protocol error)\r\n");
	io_free(&v[0]);
	io_free(&v[1]);
	free(p);
	fault_end("unterminated SB", 4 * 1024 * SLOW);
}
END_TEST

/* send a line from atk; the observer must get exactly want */
static void say_expect(int atk, int obs, const void *line, size_t len,
                       const char *want)
{
	char got[4096];

	ck_assert_int_eq(nt_write_all(atk, line, len, 5000 * SLOW), 0);
	ssize_t n = nt_read_line(obs, got, sizeof(got), 5000 * SLOW);
	ck_assert_msg(n > 0, "nothing came for \"%s\"", want);
	ck_assert_str_eq(got, want);
}

/*
 * NUL bytes, invalid UTF-8, escape sequences and bidi controls, in lines
 * and in a nick: others get valid UTF-8 with all of it removed or replaced,
 * and a nick never holds anything but its ASCII set.
 */
START_TEST(test_hostile_text)
{
	static const char nuls[] = "a\0b\0\0c\r\n";
	static const char bad_utf8[] = "\xc0\x80x\xed\xa0\x80y\xfe\xf4\x90\x80"
	                               "\x80z\xe2\x82\r\n";
	static const char ansi[] =
	    "red \x1b[31mRED\x1b[0m \x1b]0;pwned\x07title \x1b]8;;http://x"
	    "\x1b\\link\x1b]8;;\x1b\\ \x1b[2J\x1b[H\xc2\x9b"
	    "31mc1\x1bP"
	    "q#0\x1b\\end\x1b]52;c;aGk=\r\n";
	static const char bidi[] = "\xe2\x80\xae"
	                           "exe.txt \xe2\x81\xa6x"
	                           "\xe2\x81\xa9 \xd8\x9c\xe2\x80\x8f!\r\n";
	uint8_t zeros[4096];

	fault_start(&roomy_conf); /* a megabyte of lines in a burst */
	int obs = chat_client(OBSERVER, "observer", "lobby");
	int atk = chat_client(ATTACKER, "mallory", "lobby");
	ck_assert(nt_chat_wait_line(obs, " is now known as mallory\r", false,
	                            5000 * SLOW));

	say_expect(atk, obs, nuls, sizeof(nuls) - 1, "<mallory> abc\r\n");
	say_expect(atk, obs, bad_utf8, sizeof(bad_utf8) - 1,
	           "<mallory> \xef\xbf\xbd\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf"
	           "\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	           "\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd\r\n");
	say_expect(atk, obs, ansi, sizeof(ansi) - 1,
	           "<mallory> red RED title link c1end\r\n");
	say_expect(atk, obs, bidi, sizeof(bidi) - 1,
	           "<mallory> exe.txt x !\r\n");

	/* a line of NULs only is blank: nobody hears it; one too long is
	 * refused to its sender only */
	memset(zeros, 0, sizeof(zeros));
	ck_assert_int_eq(nt_write_all(atk, zeros, 100, 5000), 0);
	ck_assert_int_eq(nt_write_all(atk, "\r\n", 2, 5000), 0);
	ck_assert_int_eq(nt_write_all(atk, zeros, sizeof(zeros), 5000), 0);
	ck_assert_int_eq(nt_write_all(atk, "\r\n", 2, 5000), 0);
	ck_assert(
	    nt_chat_wait_line(atk, "!!! line too long", true, 5000 * SLOW));

	/* a bidi override in a nick is removed before the nick is looked
	 * at; a non-ASCII nick is refused */
	ck_assert_int_eq(send_str(atk, "/nick \xe2\x80\xae"
	                               "eve\xe2\x81\xa6"
	                               "\r\n"),
	                 0);
	ck_assert(nt_chat_wait_line(atk, "*** you are now known as eve\r", true,
	                            5000 * SLOW));
	say_expect(atk, obs, "", 0, "*** mallory is now known as eve\r\n");
	ck_assert_int_eq(send_str(atk, "/nick \xc3\xa9ve\r\n"), 0);
	ck_assert(
	    nt_chat_wait_line(atk, "!!! invalid nick", true, 5000 * SLOW));
	ck_assert_int_eq(send_str(obs, "/who\r\n"), 0);
	char who[512];
	ck_assert_int_gt(nt_read_line(obs, who, sizeof(who), 5000 * SLOW), 0);
	ck_assert_msg(strstr(who, "eve") &&
	                  nt_text_is_clean((uint8_t *)who, strlen(who) - 2),
	              "who: %s", who);

	/* and a megabyte of every kind of it: every line clean */
	uint8_t *junk = malloc(MIB);
	ck_assert_ptr_nonnull(junk);
	static const char *const parts[] = {
	    "\x1b[",  "31m",          "\x1b]",    "0;t",   "\x07",
	    "\x1b\\", "\xe2\x80\xae", "\xc0",     "\x80",  "\xed\xa0\x80",
	    "\0",     "\t",           "\xc2\x9b", "x",     " ",
	    "\r\n",   "\xe2\x81\xa6", "\xf8",     "\x1bP", "\x18"};
	uint64_t seed = 99;
	size_t len = 0;
	while (len < MIB - 16) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		const char *s = parts[seed % NT_ARRAY_SIZE(parts)];
		size_t k = *s ? strlen(s) : 1;
		memcpy(junk + len, s, k);
		len += k;
	}
	struct io o[2];
	io_init(&o[0], atk, 4 * MIB);
	io_init(&o[1], obs, 32 * MIB);
	io_send(&o[0], junk, len);
	ck_assert(pump(o, 2, 60000 * SLOW, NULL, NULL));
	ck_assert_int_eq(send_str(atk, "\r\nthe end\r\n"), 0);
	ck_assert(
	    pump(&o[1], 1, 20000 * SLOW, until_all_got, "<eve> the end\r\n"));
	size_t lines = check_lines(&o[1], "observer");
	fprintf(stderr, "hostile text: the observer got %zu clean lines\n",
	        lines);
	o[0].fd = o[1].fd = -1;
	io_free(&o[0]);
	io_free(&o[1]);
	close(atk);
	close(obs);
	free(junk);
	fault_end("hostile text", PEAK_KB);
}
END_TEST

/* ---- slow and strange clients ------------------------------------------ */

#define SLOWLORIS 500

/*
 * 500 connections each sending one byte a second and never a line end:
 * each is told and closed once timeouts.line has passed from its first
 * byte, not before; the canary notices nothing.
 */
START_TEST(test_slowloris)
{
	struct fault_conf c = base_conf;
	static struct io v[SLOWLORIS];
	uint64_t first_byte = 0;

	c.line = 3;
	fault_start(&c);
	for (int i = 0; i < SLOWLORIS; i++) {
		io_init(&v[i], must_connect(ATTACKER, F.chat), 8 * KIB);
		v[i].tail = true; /* 500 in the lobby: joins and quits */
		v[i].out = (const uint8_t *)"x";
	}
	uint64_t t0 = nt_test_now_ms();
	size_t open = SLOWLORIS;
	for (int s = 0; open > 0 && s < 6 + 4 * SLOW; s++) {
		/* one byte each, every second */
		uint64_t tick = nt_test_now_ms();
		for (int i = 0; i < SLOWLORIS; i++)
			if (!v[i].closed) {
				v[i].out_len = 1;
				v[i].sent = 0;
			}
		if (!first_byte)
			first_byte = nt_test_now_ms();
		pump(v, SLOWLORIS, 1000, NULL, NULL);
		uint64_t left = 1000 - NT_MIN(nt_test_now_ms() - tick, 1000);
		for (int i = 0; i < SLOWLORIS; i++)
			v[i].out_len = v[i].sent; /* nothing more this second */
		pump(v, SLOWLORIS, (int)left, until_closed, NULL);
		open = 0;
		for (int i = 0; i < SLOWLORIS; i++)
			open += !v[i].closed;
		ck_assert_msg(
		    open == SLOWLORIS || nt_test_now_ms() - first_byte >= 2900,
		    "%zu of %d closed only %llu ms after the first "
		    "byte (timeouts.line = 3)",
		    SLOWLORIS - open, SLOWLORIS,
		    (unsigned long long)(nt_test_now_ms() - first_byte));
	}
	ck_assert_msg(open == 0,
	              "%zu of %d slow clients still open after %llu "
	              "ms",
	              open, SLOWLORIS,
	              (unsigned long long)(nt_test_now_ms() - t0));
	for (int i = 0; i < SLOWLORIS; i++) {
		ck_assert_msg(strstr(v[i].in, "!!! a line must end within 3 "
		                              "seconds: disconnecting\r\n"),
		              "client %d was not told; its last bytes: %s", i,
		              tail_of(&v[i]));
		io_free(&v[i]);
	}
	fault_end("slowloris", PEAK_KB);
}
END_TEST

/*
 * "<sN> mK " at p: N and K. Not sscanf(), which takes the length of all
 * that follows first: megabytes, for every line.
 */
static bool sender_line(const char *p, unsigned *s, unsigned *k)
{
	char *end;

	if (strncmp(p, "<s", 2))
		return false;
	*s = (unsigned)strtoul(p + 2, &end, 10);
	if (end == p + 2 || strncmp(end, "> m", 3))
		return false;
	p = end + 3;
	*k = (unsigned)strtoul(p, &end, 10);
	return end != p && *end == ' ';
}

/* "<sN> mK ..." lines: from each sender, in order and none missing */
static void check_order(const struct io *v, const char *who, unsigned lines)
{
	unsigned next[BUSY_SENDERS] = {0};
	struct line_it it = {v->in, v->in + v->in_len};
	const char *p;
	size_t len;
	bool whole;

	while (line_next(&it, &p, &len, &whole)) {
		unsigned s, k;
		if (sender_line(p, &s, &k) && s < BUSY_SENDERS) {
			ck_assert_msg(k == next[s],
			              "%s: from s%u got m%u, "
			              "expected m%u",
			              who, s, k, next[s]);
			next[s]++;
		}
	}
	for (unsigned s = 0; s < BUSY_SENDERS; s++)
		ck_assert_msg(next[s] == lines, "%s: %u of %u lines from s%u",
		              who, next[s], lines, s);
}

/* what a sender says: lines "mK " padded with 'x' to width bytes */
static char *sender_script(unsigned lines, unsigned width, size_t *len)
{
	char *p = malloc((size_t)lines * (width + 16));
	size_t n = 0;

	ck_assert_ptr_nonnull(p);
	for (unsigned k = 0; k < lines; k++) {
		int head = sprintf(p + n, "m%u ", k);
		memset(p + n + head, 'x', width - (unsigned)head);
		n += width;
		memcpy(p + n, "\r\n", 2);
		n += 2;
	}
	*len = n;
	return p;
}

/* arg: "> mK " for the senders' last line K */
static bool until_busy_done(struct io *v, size_t n, void *arg)
{
	(void)n;

	/* every fast reader has every sender's last line */
	for (size_t i = 0; i < BUSY_READERS; i++)
		if (count_got(&v[i], arg) < BUSY_SENDERS)
			return false;
	return true;
}

static const char *last_line(char *buf, size_t size, unsigned lines)
{
	snprintf(buf, size, "> m%u ", lines - 1);
	return buf;
}

/*
 * A busy room with clients that never read: they are disconnected once
 * max_output is queued for them, and meanwhile everyone else gets every
 * line, whole and in order.
 */
START_TEST(test_slow_consumers)
{
	struct fault_conf c = base_conf;
	struct io v[BUSY_READERS + BUSY_SENDERS];
	int slow[BUSY_SLOW];
	unsigned lines = BUSY_LINES;
	size_t len;
	char *script = sender_script(lines, 420, &len);
	char nick[32];

	/*
	 * A slow consumer is cut off once the kernel's buffers are full (its
	 * send buffer grows up to tcp_wmem's 4 MiB) and max_output on top:
	 * each is sent 6 MB. The senders are held to 4000 lines a second by
	 * flood control, so that a fast reader falling behind for a moment
	 * (the test is not scheduled) is not cut off too.
	 */
	c.flood_rate = 4000;
	c.flood_burst = 400;
	fault_start(&c);
	for (int i = 0; i < BUSY_READERS; i++) {
		snprintf(nick, sizeof(nick), "r%d", i);
		io_init(&v[i], chat_client(OBSERVER, nick, "busy"), 8 * MIB);
	}
	for (int i = 0; i < BUSY_SLOW; i++) {
		snprintf(nick, sizeof(nick), "slow%d", i);
		slow[i] = chat_client_small(ATTACKER, nick, "busy");
	}
	for (int i = 0; i < BUSY_SENDERS; i++) {
		struct io *s = &v[BUSY_READERS + i];
		snprintf(nick, sizeof(nick), "s%d", i);
		io_init(s, chat_client(OBSERVER, nick, "busy"), 8 * MIB);
		io_send(s, script, len);
	}
	char done[32];
	last_line(done, sizeof(done), lines);
	if (!pump(v, NT_ARRAY_SIZE(v), 40000 * SLOW, until_busy_done, done))
		io_report(v, NT_ARRAY_SIZE(v));
	ck_assert_msg(until_busy_done(v, NT_ARRAY_SIZE(v), done),
	              "the fast readers did not get every line");
	for (int i = 0; i < BUSY_READERS; i++) {
		char who[16];
		snprintf(who, sizeof(who), "r%d", i);
		check_lines(&v[i], who);
		check_order(&v[i], who, lines);
	}
	/* each slow one was cut off, and told the others so */
	for (int i = 0; i < BUSY_SLOW; i++) {
		char want[64];
		snprintf(want, sizeof(want),
		         "*** slow%d has quit (output "
		         "overflow)\r\n",
		         i);
		if (!pump(v, BUSY_READERS, 5000 * SLOW, until_all_got, want))
			nt_daemon_dump_log(&d);
		ck_assert_msg(got(&v[0], want),
		              "r0 never heard that slow%d was cut off", i);
		reset_close(slow[i]);
	}
	for (size_t i = 0; i < NT_ARRAY_SIZE(v); i++)
		io_free(&v[i]);
	free(script);
	fault_end("slow consumers", PEAK_KB);
}
END_TEST

/*
 * Clients that reset (SO_LINGER 0) in the middle of a line, in the middle
 * of a broadcast meant for them, and in the middle of an echo: the others
 * are not disturbed and nothing of theirs is left behind.
 */
START_TEST(test_resets)
{
	struct io v[BUSY_READERS + 1];
	unsigned lines = 200;
	size_t len;
	char *script = sender_script(lines, 200, &len);
	uint8_t *big = random_bytes(MIB, 3);
	char nick[32];

	fault_start(&roomy_conf);
	for (int i = 0; i < BUSY_READERS; i++) {
		snprintf(nick, sizeof(nick), "r%d", i);
		io_init(&v[i], chat_client(OBSERVER, nick, "busy"), 4 * MIB);
	}
	/* mid-line */
	for (int i = 0; i < 50; i++) {
		int fd = must_connect(ATTACKER, F.chat);
		ck_assert_int_eq(send_str(fd, "/join #busy\r\nhalf a li"), 0);
		nt_sleep_ms(2);
		reset_close(fd);
	}
	/* mid-broadcast: receivers in the room that reset while s0 talks */
	int gone[20];
	for (int i = 0; i < 20; i++) {
		snprintf(nick, sizeof(nick), "gone%d", i);
		gone[i] = chat_client_small(ATTACKER, nick, "busy");
	}
	struct io *s = &v[BUSY_READERS];
	io_init(s, chat_client(OBSERVER, "s0", "busy"), 4 * MIB);
	io_send(s, script, len);
	pump_for(v, NT_ARRAY_SIZE(v), 50);
	for (int i = 0; i < 20; i++) {
		reset_close(gone[i]);
		pump_for(v, NT_ARRAY_SIZE(v), 5);
	}
	/* mid-echo: a megabyte in, nothing read, reset */
	for (int i = 0; i < 5; i++) {
		int e = must_connect(ATTACKER, F.echo);
		struct io x;
		io_init(&x, e, 16);
		x.no_read = true;
		io_send(&x, big, MIB);
		pump(&x, 1, 200, NULL, NULL);
		reset_close(e);
		x.fd = -1;
		io_free(&x);
	}
	/* the readers got all of s0's lines, whole and in order */
	char want[64];
	snprintf(want, sizeof(want), "<s0> m%u ", lines - 1);
	ck_assert_msg(
	    pump(v, NT_ARRAY_SIZE(v), 30000 * SLOW, until_readers_got, want),
	    "not every reader got every line");
	for (int i = 0; i < BUSY_READERS; i++) {
		char who[16];
		snprintf(who, sizeof(who), "r%d", i);
		check_lines(&v[i], who);
		struct line_it it = {v[i].in, v[i].in + v[i].in_len};
		const char *p;
		size_t n;
		bool whole;
		unsigned next = 0, k, from;
		while (line_next(&it, &p, &n, &whole)) {
			if (!sender_line(p, &from, &k))
				continue;
			ck_assert_msg(from == 0 && k == next,
			              "%s: s%u m%u after m%u", who, from, k,
			              next);
			next++;
		}
		ck_assert_msg(next == lines, "%s: %u of s0's %u lines", who,
		              next, lines);
	}
	for (size_t i = 0; i < NT_ARRAY_SIZE(v); i++)
		io_free(&v[i]);
	free(script);
	free(big);
	fault_end("resets", PEAK_KB);
}
END_TEST

/*
 * Half-closed clients (shutdown(SHUT_WR) after their input): echo sends
 * everything back, then EOF; chat answers what was asked, then EOF; an
 * unfinished line is dropped; nobody waits for a timeout to close them.
 */
START_TEST(test_half_close)
{
	uint8_t *data = random_bytes(200 * KIB, 4);
	struct io v[40];

	fault_start(&base_conf);
	for (int i = 0; i < 20; i++) {
		io_init(&v[i], must_connect(ATTACKER, F.echo), 256 * KIB);
		io_send(&v[i], data, 200 * KIB);
		v[i].shut_wr = true;
	}
	for (int i = 20; i < 40; i++) {
		static const char ask[] = "/ping half\r\nunfinished line";
		io_init(&v[i], must_connect(ATTACKER, F.chat), 64 * KIB);
		io_send(&v[i], ask, sizeof(ask) - 1);
		v[i].shut_wr = true;
	}
	uint64_t t0 = nt_test_now_ms();
	ck_assert_msg(pump(v, 40, 30000 * SLOW, until_closed, NULL),
	              "half-closed clients were not closed");
	uint64_t took = nt_test_now_ms() - t0;
	for (int i = 0; i < 20; i++) {
		ck_assert_msg(v[i].eof, "echo %d: reset instead of EOF", i);
		ck_assert_uint_eq(v[i].in_len, 200 * KIB);
		ck_assert(!memcmp(v[i].in, data, 200 * KIB));
	}
	for (int i = 20; i < 40; i++) {
		ck_assert_msg(v[i].eof, "chat %d: reset instead of EOF", i);
		ck_assert_msg(strstr(v[i].in, "*** pong half\r\n"),
		              "chat %d: %.300s", i, v[i].in);
		ck_assert_msg(!strstr(v[i].in, "unfinished"), "chat %d: %.300s",
		              i, v[i].in);
		check_lines(&v[i], "half-closed chat");
	}
	/* well before any timeout (idle 60 s, write 10 s) */
	ck_assert_msg(took < 5000 * SLOW, "closing took %llu ms",
	              (unsigned long long)took);
	for (int i = 0; i < 40; i++)
		io_free(&v[i]);
	free(data);
	fault_end("half-closed", PEAK_KB);
}
END_TEST

/*
 * Clients that connect and never send anything: each is closed once
 * timeouts.idle has passed (a chat client told why), not before; the
 * canary, busy all along, is not.
 */
START_TEST(test_silent)
{
	struct fault_conf c = base_conf;
	struct io v[200];

	c.idle = 2;
	fault_start(&c);
	uint64_t t0 = nt_test_now_ms();
	for (int i = 0; i < 200; i++) {
		io_init(&v[i], must_connect(ATTACKER, i % 2 ? F.chat : F.echo),
		        8 * KIB);
		v[i].tail = true;
	}
	uint64_t spent = nt_test_now_ms() - t0;
	if (spent < 1500)
		pump(v, 200, (int)(1500 - spent), until_closed, NULL);
	for (int i = 0; i < 200; i++)
		ck_assert_msg(!v[i].closed, "client %d closed within 1.5 s", i);
	ck_assert_msg(pump(v, 200, 10000 * SLOW, until_closed, NULL),
	              "silent clients not closed");
	fprintf(stderr, "silent: 200 clients closed after %llu ms\n",
	        (unsigned long long)(nt_test_now_ms() - t0));
	for (int i = 0; i < 200; i++) {
		ck_assert_msg(v[i].eof, "client %d: reset instead of EOF", i);
		if (i % 2)
			ck_assert_msg(
			    strstr(v[i].in, "*** idle for 2 seconds: "
			                    "disconnecting\r\n"),
			    "chat client %d was not told; its last bytes: "
			    "%s",
			    i, tail_of(&v[i]));
		else
			ck_assert_uint_eq(v[i].in_len, 0);
		io_free(&v[i]);
	}
	fault_end("silent clients", PEAK_KB);
}
END_TEST

/* ---- floods -------------------------------------------------------------- */

#define FULL_LINE  "!!! server full, try again later\r\n"
#define PERIP_LINE "!!! too many connections from your address\r\n"
#define BUSY_LINE  "!!! server busy, try again later\r\n"

/* connect from src: true, *fd open, if served (an echo comes back) */
static bool admitted(const char *src, int *fd)
{
	*fd = must_connect(src, F.echo);
	if (nt_echo_check(*fd, "hi\r\n", 4, 5000 * SLOW) == 0)
		return true;
	close(*fd);
	*fd = -1;
	return false;
}

/* a refused connection: its one line, then EOF */
static void expect_refused(const char *src, const char *want)
{
	char line[256];
	int fd = must_connect(src, F.echo);
	ssize_t n = nt_read_line(fd, line, sizeof(line), 5000 * SLOW);

	ck_assert_msg(n > 0, "from %s: %s instead of \"%.*s\"", src,
	              n == 0 ? "EOF" : strerror((int)-n), (int)strlen(want) - 2,
	              want);
	ck_assert_str_eq(line, want);
	ck_assert_int_eq(nt_expect_eof(fd, 5000 * SLOW), 0);
	close(fd);
}

/*
 * Past per_ip and max_connections: exactly the clients over each limit are
 * refused, with the right line; those admitted are served; a flood of
 * connect-and-close churn changes nothing; once they leave, new clients
 * are admitted again.
 */
START_TEST(test_connection_flood)
{
	struct fault_conf c = base_conf;
	int fds[80], n = 0;

	c.max_conns = 60;
	c.per_ip = 20;
	fault_start(&c); /* the canary holds 3 of the 60 */
	for (int i = 0; i < 20; i++) {
		ck_assert_msg(admitted(ATTACKER, &fds[n]),
		              "client %d from " ATTACKER " refused", i);
		n++;
	}
	for (int i = 0; i < 30; i++)
		expect_refused(ATTACKER, PERIP_LINE);
	for (int i = 0; i < 20; i++) {
		ck_assert(admitted("127.0.0.2", &fds[n]));
		n++;
	}
	for (int i = 0; i < 17; i++) {
		ck_assert(admitted("127.0.0.3", &fds[n]));
		n++;
	}
	/* 3 + 20 + 20 + 17 = 60: full, whoever asks */
	for (int i = 0; i < 10; i++) {
		expect_refused("127.0.0.3", FULL_LINE);
		expect_refused("127.0.0.4", FULL_LINE);
	}
	/* churn: connect, maybe say something, go, a thousand times */
	uint64_t t0 = nt_test_now_ms();
	for (int i = 0; i < 1000 && nt_test_now_ms() - t0 < 20000u * SLOW;
	     i++) {
		int fd = connect_from("127.0.0.5", F.echo, 5000);
		if (fd < 0)
			continue;
		if (i % 3 == 0)
			send(fd, "x", 1, MSG_NOSIGNAL);
		if (i % 2)
			reset_close(fd);
		else
			close(fd);
	}
	/* the admitted ones are still served */
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(nt_echo_check(fds[i], "ok", 2, 5000 * SLOW),
		                 0);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	/* room again, for everyone */
	int again;
	uint64_t t1 = nt_test_now_ms();
	while (!admitted(ATTACKER, &again) &&
	       nt_test_now_ms() - t1 < 10000u * SLOW)
		nt_sleep_ms(50);
	ck_assert_msg(again >= 0, "no client admitted after the flood left");
	close(again);
	fault_end("connection flood", PEAK_KB);
}
END_TEST

/*
 * Out of file descriptors: the soft RLIMIT_NOFILE of the running daemon is
 * cut to just above what it uses, then a flood comes. It neither dies nor
 * spins, keeps serving the canary, refuses who it can ("server busy"), and
 * accepts again once descriptors are free.
 */
START_TEST(test_fd_exhaustion)
{
	struct fault_conf c = base_conf;
	int flood[150], n = 0, busy = 0;

	c.nofile = 256;
	fault_start(&c);
	struct rlimit low = {(rlim_t)F.fds0 + 6, 256}, back = {256, 256};
	ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, &low, NULL), 0);
	for (int i = 0; i < 150; i++) {
		int fd = connect_from(ATTACKER, F.echo, 2000);
		if (fd >= 0)
			flood[n++] = fd;
	}
	ck_assert_int_gt(n, 100);
	ck_assert_msg(
	    nt_daemon_wait_log(&d, "out of file descriptors", 5000 * SLOW),
	    "no EMFILE was met");
	long cpu0 = nt_proc_cpu_ms(d.pid);
	nt_sleep_ms(1000);
	long cpu1 = nt_proc_cpu_ms(d.pid);
	/* the canary keeps it a little busy; a spinning loop takes it all */
	ck_assert_msg(cpu1 - cpu0 < 500 * SLOW,
	              "natterd used %ld ms of CPU in 1 s while out of fds",
	              cpu1 - cpu0);
	if (nt_proc_fd_count(d.pid) > F.fds0 + 6) {
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", d.pid);
		if (system(cmd)) {
		}
	}
	ck_assert_int_le(nt_proc_fd_count(d.pid), F.fds0 + 6);
	for (int i = 0; i < n; i++) {
		char line[128];
		struct pollfd p = {.fd = flood[i], .events = POLLIN};
		if (poll(&p, 1, 0) == 1 &&
		    nt_read_line(flood[i], line, sizeof(line), 100) > 0 &&
		    !strcmp(line, BUSY_LINE))
			busy++;
		close(flood[i]);
	}
	fprintf(stderr, "fd exhaustion: %d of %d refused \"busy\"\n", busy, n);
	ck_assert_int_gt(busy, 0);
	ck_assert_int_eq(prlimit(d.pid, RLIMIT_NOFILE, &back, NULL), 0);
	int fd;
	uint64_t t0 = nt_test_now_ms();
	while (!admitted(ATTACKER, &fd) &&
	       nt_test_now_ms() - t0 < 10000u * SLOW)
		nt_sleep_ms(50);
	ck_assert_msg(fd >= 0, "not served again after the flood");
	close(fd);
	ck_assert(nt_daemon_wait_log(&d, "accepting again", 5000 * SLOW));
	fault_end("fd exhaustion", PEAK_KB);
}
END_TEST

/* ---- signals during a broadcast ------------------------------------------ */

static void write_conf(const char *text)
{
	FILE *f = fopen(d.conf, "we");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/*
 * SIGHUP, again and again, while a room is busy, one of them with a broken
 * file: every line still reaches everyone whole and in order, nobody is
 * disconnected, and the broken file leaves the running config in force.
 */
START_TEST(test_sighup_broadcast)
{
	struct io v[BUSY_READERS + BUSY_SENDERS];
	unsigned lines = 500;
	size_t len;
	char *script = sender_script(lines, 200, &len);
	char nick[32];

	fault_start(&roomy_conf);
	char *good = NULL;
	{
		FILE *f = fopen(d.conf, "re");
		ck_assert_ptr_nonnull(f);
		good = calloc(1, 8192);
		ck_assert_ptr_nonnull(good);
		ck_assert_int_gt(fread(good, 1, 8191, f), 0);
		fclose(f);
	}
	for (int i = 0; i < BUSY_READERS; i++) {
		snprintf(nick, sizeof(nick), "r%d", i);
		io_init(&v[i], chat_client(OBSERVER, nick, "busy"), 4 * MIB);
	}
	for (int i = 0; i < BUSY_SENDERS; i++) {
		struct io *s = &v[BUSY_READERS + i];
		snprintf(nick, sizeof(nick), "s%d", i);
		io_init(s, chat_client(OBSERVER, nick, "busy"), 4 * MIB);
		io_send(s, script, len);
	}
	for (int k = 0; k < 10; k++) {
		kill(d.pid, SIGHUP);
		pump_for(v, NT_ARRAY_SIZE(v), 30);
		if (k != 5)
			continue;
		/* once with a broken file, until the daemon has seen it */
		write_conf("workers = ;\n");
		kill(d.pid, SIGHUP);
		for (int i = 0; i < 250 * SLOW &&
		                !nt_daemon_log_contains(&d, "reload failed");
		     i++)
			pump_for(v, NT_ARRAY_SIZE(v), 20);
		ck_assert_msg(nt_daemon_log_contains(&d, "reload failed"),
		              "a broken file was not refused");
		write_conf(good);
	}
	char done[32];
	ck_assert_msg(pump(v, NT_ARRAY_SIZE(v), 60000 * SLOW, until_busy_done,
	                   (void *)last_line(done, sizeof(done), lines)),
	              "the readers did not get every line");
	for (size_t i = 0; i < NT_ARRAY_SIZE(v); i++) {
		char who[16];
		snprintf(who, sizeof(who), "client %zu", i);
		ck_assert_msg(!v[i].closed, "%s was disconnected", who);
		check_lines(&v[i], who);
		if (i < BUSY_READERS)
			check_order(&v[i], who, lines);
	}
	ck_assert(nt_daemon_wait_log(&d, "reloaded", 5000 * SLOW));
	for (size_t i = 0; i < NT_ARRAY_SIZE(v); i++)
		io_free(&v[i]);
	free(script);
	free(good);
	fault_end("SIGHUP in a broadcast", PEAK_KB);
}
END_TEST

/*
 * SIGTERM while a room is busy: every client gets whole lines only, the
 * goodbye last, then EOF; natterd exits 0 within shutdown_grace.
 */
START_TEST(test_sigterm_broadcast)
{
	struct io v[BUSY_READERS + BUSY_SENDERS];
	unsigned lines = 2000;
	size_t len;
	char *script = sender_script(lines, 200, &len);
	char nick[32];

	fault_start(&roomy_conf);
	for (int i = 0; i < BUSY_READERS; i++) {
		snprintf(nick, sizeof(nick), "r%d", i);
		io_init(&v[i], chat_client(OBSERVER, nick, "busy"), 16 * MIB);
	}
	for (int i = 0; i < BUSY_SENDERS; i++) {
		snprintf(nick, sizeof(nick), "s%d", i);
		io_init(&v[BUSY_READERS + i],
		        chat_client(OBSERVER, nick, "busy"), 16 * MIB);
	}
	/* the daemon is about to stop: the canary has nothing to prove */
	canary_stop("SIGTERM in a broadcast");
	for (int i = 0; i < BUSY_SENDERS; i++)
		io_send(&v[BUSY_READERS + i], script, len);
	ck_assert(pump(v, NT_ARRAY_SIZE(v), 10000 * SLOW, until_readers_got,
	               "<s0> m50 "));
	uint64_t t0 = nt_test_now_ms();
	kill(d.pid, SIGTERM);
	ck_assert_msg(
	    pump(v, NT_ARRAY_SIZE(v), 20000 * SLOW, until_closed, NULL),
	    "clients still connected after SIGTERM");
	int code = nt_daemon_wait_exit(&d, 20000 * SLOW);
	fprintf(stderr, "SIGTERM in a broadcast: exit %d after %llu ms\n", code,
	        (unsigned long long)(nt_test_now_ms() - t0));
	ck_assert_int_eq(code, 0);
	static const char bye[] = "*** the server is shutting down; bye\r\n";
	for (size_t i = 0; i < NT_ARRAY_SIZE(v); i++) {
		char who[16];
		snprintf(who, sizeof(who), "%s %zu",
		         i < BUSY_READERS ? "reader" : "sender", i);
		check_lines(&v[i], who);
		ck_assert_msg(v[i].eof, "%s: reset instead of EOF", who);
		ck_assert_msg(
		    v[i].in_len >= sizeof(bye) - 1 &&
		        !strcmp(v[i].in + v[i].in_len - (sizeof(bye) - 1), bye),
		    "%s: the last line is not the goodbye: %s", who,
		    v[i].in + (v[i].in_len > 200 ? v[i].in_len - 200 : 0));
		io_free(&v[i]);
	}
	free(script);
}
END_TEST

static Suite *fault_suite(void)
{
	Suite *s = suite_create("fault");
	TCase *tc;
	struct rlimit rl;

	/* the slowloris case holds 500 sockets, and so does the daemon */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
		rl.rlim_cur = NT_MIN(rl.rlim_max, (rlim_t)4096);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	tc = tcase_create("bytes");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60 * SLOW);
	tcase_add_test(tc, test_random_chat);
	tcase_add_test(tc, test_random_echo);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_iac_flood);
	tcase_add_test(tc, test_unterminated_sb);
	tcase_add_test(tc, test_hostile_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("output");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60 * SLOW);
	tcase_add_test(tc, test_timing_mark_flood);
	tcase_add_test(tc, test_timing_mark_trickle);
	suite_add_tcase(s, tc);

	tc = tcase_create("clients");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60 * SLOW);
	tcase_add_test(tc, test_slowloris);
	tcase_add_test(tc, test_slow_consumers);
	tcase_add_test(tc, test_resets);
	tcase_add_test(tc, test_half_close);
	tcase_add_test(tc, test_silent);
	suite_add_tcase(s, tc);

	tc = tcase_create("floods");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60 * SLOW);
	tcase_add_test(tc, test_connection_flood);
	tcase_add_test(tc, test_fd_exhaustion);
	suite_add_tcase(s, tc);

	tc = tcase_create("signals");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60 * SLOW);
	tcase_add_test(tc, test_sighup_broadcast);
	tcase_add_test(tc, test_sigterm_broadcast);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(fault_suite)
