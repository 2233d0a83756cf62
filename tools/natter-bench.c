/*
 * natter-bench: a load generator for natterd and its peers. Four modes
 * (echo, chat, hold, churn), each verifying everything it gets back and
 * ending with one "RESULT key=value ..." line. epoll and non-blocking
 * sockets; loopback (numeric addresses) only by design. See natter-bench(1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { EXIT_OK = 0, EXIT_ERRORS = 1, EXIT_USAGE = 2, EXIT_SETUP = 3 };

#define MAX_EVENTS 512
#define DRAIN_NS   (5 * NS)
#define NS         1000000000ull

/* ---- options ---- */

enum mode { M_ECHO, M_CHAT, M_HOLD, M_CHURN };

struct opts {
	enum mode mode;
	const char *host;
	int port;
	const char *unix_path;
	long conns;
	double duration, warmup;
	int threads;
	bool quiet;
	/* echo */
	int depth;
	long size;
	/* chat */
	int senders;
	double rate;
	int window;
	long messages; /* per sender; 0 = by time */
	const char *proto;
	const char *preamble, *ready, *send_format;
	const char *room;
	/* hold, churn */
	int sources;
	long server_pid;
	double hold_time;
	int slots;
};

static struct opts o = {
    .host = "127.0.0.1",
    .conns = 50,
    .duration = 10,
    .warmup = 1,
    .threads = 1,
    .depth = 1,
    .size = -1,
    .senders = 1,
    .window = 16,
    .proto = "natter",
    .room = "bench",
    .sources = 1,
    .hold_time = 2,
    .slots = 16,
};

static struct sockaddr_storage target;
static socklen_t target_len;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	if (o.quiet)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx_(const char *fmt, ...)
{
	va_list ap;

	fputs("natter-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- latency histogram: log-linear, under 0.2% error, in microseconds */

#define H_LINEAR 1024
#define H_SUB    512
#define H_SIZE   (H_LINEAR + 40 * H_SUB)

struct hist {
	uint64_t n;
	uint64_t max;
	uint64_t b[H_SIZE];
};

static unsigned h_index(uint64_t us)
{
	if (us < H_LINEAR)
		return (unsigned)us;
	unsigned e =
	    63u - (unsigned)__builtin_clzll(us) - 9; /* us >> e: 512..1023 */
	unsigned i = H_LINEAR + (e - 1) * H_SUB + (unsigned)((us >> e) - H_SUB);
	return i < H_SIZE ? i : H_SIZE - 1;
}

static uint64_t h_value(unsigned i)
{
	if (i < H_LINEAR)
		return i;
	unsigned e = (i - H_LINEAR) / H_SUB + 1;
	uint64_t m = (i - H_LINEAR) % H_SUB + H_SUB;
	return (m << e) + ((1ull << e) >> 1); /* the middle of the bucket */
}

static void h_add(struct hist *h, uint64_t ns)
{
	uint64_t us = ns / 1000;

	h->b[h_index(us)]++;
	h->n++;
	if (us > h->max)
		h->max = us;
}

static void h_merge(struct hist *to, const struct hist *from)
{
	for (unsigned i = 0; i < H_SIZE; i++)
		to->b[i] += from->b[i];
	to->n += from->n;
	if (from->max > to->max)
		to->max = from->max;
}

static uint64_t h_pct(const struct hist *h, double p)
{
	if (!h->n)
		return 0;
	uint64_t want = (uint64_t)(p / 100.0 * (double)h->n + 0.5), seen = 0;
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < H_SIZE; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t v = h_value(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

/* ---- sockets ---- */

static int parse_target(void)
{
	memset(&target, 0, sizeof(target));
	if (o.unix_path) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&target;
		if (strlen(o.unix_path) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, o.unix_path);
		target_len = sizeof(*sun);
		return 0;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)&target;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&target;
	if (inet_pton(AF_INET, o.host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)o.port);
		target_len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, o.host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)o.port);
		target_len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/*
 * A non-blocking connect to the target from source 127.0.0.(1 + src) when
 * sources are in use (IPv4 only). The fd, with *done set if it connected
 * at once; -1 with errno.
 */
static int start_connect(unsigned src, bool *done)
{
	int one = 1;
	int fd = socket(target.ss_family,
	                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*done = false;
	if (fd < 0)
		return -1;
	if (target.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (target.ss_family == AF_INET && o.sources > 1) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		sa.sin_addr.s_addr =
		    htonl(0x7f000001u + src % (unsigned)o.sources);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		           sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
	}
	if (connect(fd, (struct sockaddr *)&target, target_len) == 0) {
		*done = true;
		return fd;
	}
	if (errno == EINPROGRESS || errno == EAGAIN)
		return fd;
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

static void ep_set(int ep, int op, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = {.events = events, .data.ptr = ptr};

	epoll_ctl(ep, op, fd, &ev);
}

/*
 * Connect count sockets (sources first .. first + count - 1) in parallel,
 * at most CONNECT_INFLIGHT at a time so the listen backlog is not
 * overrun, until the deadline. fds[i] is the connected socket or -1, with
 * errs[i] (when errs is given) the errno. Returns how many connected.
 */
#define CONNECT_INFLIGHT 256

static long connect_many(int *fds, int *errs, long first, long count,
                         uint64_t deadline)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	bool *wait = calloc((size_t)count + 1, sizeof(*wait));
	long next = 0, inflight = 0, ok = 0;
	struct epoll_event evs[MAX_EVENTS];

	for (long i = 0; i < count; i++) {
		fds[i] = -1;
		if (errs)
			errs[i] = ETIMEDOUT;
	}
	if (ep < 0 || !wait) {
		if (ep >= 0)
			close(ep);
		free(wait);
		return 0;
	}
	while ((next < count || inflight) && now_ns() < deadline) {
		while (next < count && inflight < CONNECT_INFLIGHT) {
			bool done;
			int fd = start_connect((unsigned)(first + next), &done);
			if (fd < 0) {
				if (errs)
					errs[next] = errno;
			} else if (done) {
				fds[next] = fd;
				ok++;
			} else {
				fds[next] = fd;
				wait[next] = true;
				ep_set(ep, EPOLL_CTL_ADD, fd, EPOLLOUT,
				       (void *)(intptr_t)next);
				inflight++;
			}
			next++;
		}
		int n = epoll_wait(ep, evs, MAX_EVENTS, 50);
		for (int i = 0; i < n; i++) {
			long j = (long)(intptr_t)evs[i].data.ptr;
			int err = sock_error(fds[j]);
			epoll_ctl(ep, EPOLL_CTL_DEL, fds[j], NULL);
			wait[j] = false;
			inflight--;
			if (err) {
				close(fds[j]);
				fds[j] = -1;
				if (errs)
					errs[j] = err;
			} else {
				ok++;
			}
		}
	}
	/* what is still in flight at the deadline has timed out */
	for (long i = 0; i < count; i++) {
		if (wait[i]) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	free(wait);
	close(ep);
	return ok;
}

/*
 * One connect with a deadline, for chat's set-up, which connects its
 * clients one at a time: a chat server (ncat --chat) that has not accepted
 * a client yet would not send it what others say, and an IRC server
 * throttles bursts of connects. The fd, or -1 with errno.
 */
static int connect_wait(unsigned src, uint64_t deadline)
{
	int fd, err;

	connect_many(&fd, &err, src, 1, deadline);
	errno = err;
	return fd;
}

/* ---- the run's clock ---- */

struct clock {
	uint64_t start;   /* load begins */
	uint64_t measure; /* the measured window begins */
	uint64_t end;     /* the measured window ends; no new load after */
};

static struct clock run_clock(uint64_t start)
{
	struct clock c = {.start = start};

	c.measure = start + (uint64_t)(o.warmup * NS);
	c.end = c.measure + (uint64_t)(o.duration * NS);
	return c;
}

static bool in_window(const struct clock *c, uint64_t t)
{
	return t >= c->measure && t < c->end;
}

/* ---- echo ---- */

struct econn {
	int fd;
	uint32_t id;
	uint64_t sent;  /* messages queued */
	uint64_t recvd; /* messages fully received */
	size_t rpos;    /* bytes of message `recvd` received so far */
	uint64_t *ts;   /* send time per in-flight message, ring of depth */
	char *out;      /* unwritten bytes */
	size_t out_len, out_cap;
	bool want_out;
	bool dead;
};

struct estats {
	uint64_t msgs, bytes, errors;
	uint64_t total; /* every message that came back, window or not */
	struct hist h;
};

static inline uint8_t echo_byte(uint32_t conn, uint64_t seq, size_t i)
{
	if (i < 8)
		return (uint8_t)((uint64_t)conn >> (8 * i));
	if (i < 16)
		return (uint8_t)(seq >> (8 * (i - 8)));
	return (uint8_t)(conn * 31u + seq * 17u + i);
}

static void echo_queue(struct econn *e, uint64_t t)
{
	size_t n = (size_t)o.size;

	if (e->out_len + n > e->out_cap) {
		e->out_cap = (e->out_len + n) * 2;
		e->out = realloc(e->out, e->out_cap);
		if (!e->out)
			abort();
	}
	for (size_t i = 0; i < n; i++)
		e->out[e->out_len + i] = (char)echo_byte(e->id, e->sent, i);
	e->out_len += n;
	e->ts[e->sent % (uint64_t)o.depth] = t;
	e->sent++;
}

static int echo_flush(int ep, struct econn *e)
{
	size_t off = 0;

	while (off < e->out_len) {
		ssize_t n =
		    send(e->fd, e->out + off, e->out_len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			return -1;
		}
		off += (size_t)n;
	}
	memmove(e->out, e->out + off, e->out_len - off);
	e->out_len -= off;
	bool want = e->out_len > 0;
	if (want != e->want_out) {
		e->want_out = want;
		ep_set(ep, EPOLL_CTL_MOD, e->fd,
		       EPOLLIN | (want ? EPOLLOUT : 0), e);
	}
	return 0;
}

struct ethread {
	pthread_t tid;
	long first, count;
	struct clock clk;
	struct estats st;
	int setup_failed;
};

static void echo_kill(int ep, struct econn *e, long *live)
{
	if (e->dead)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);
	close(e->fd);
	e->dead = true;
	(*live)--;
}

/* Read what came back and check it byte by byte; 1 when the conn ended. */
static int echo_read(struct econn *e, char *buf, size_t cap, struct ethread *t,
                     uint64_t *now, bool more)
{
	size_t size = (size_t)o.size;

	for (;;) {
		ssize_t n = read(e->fd, buf, cap);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			if (e->recvd < e->sent) {
				t->st.errors++;
				warnx_(
				    "echo: connection %u closed with %" PRIu64
				    " messages outstanding",
				    e->id, e->sent - e->recvd);
			}
			return 1;
		}
		if (n < 0)
			return 0;
		*now = now_ns();
		for (ssize_t i = 0; i < n; i++) {
			if (e->recvd >= e->sent) {
				t->st.errors++;
				warnx_("echo: connection %u: bytes nobody sent",
				       e->id);
				return 1;
			}
			if ((uint8_t)buf[i] !=
			    echo_byte(e->id, e->recvd, e->rpos)) {
				if (t->st.errors++ < 5)
					warnx_("echo: connection %u message "
					       "%" PRIu64 " byte %zu is wrong",
					       e->id, e->recvd, e->rpos);
			}
			if (++e->rpos == size) {
				uint64_t ts =
				    e->ts[e->recvd % (uint64_t)o.depth];
				e->rpos = 0;
				e->recvd++;
				t->st.total++;
				if (in_window(&t->clk, ts)) {
					t->st.msgs++;
					t->st.bytes += size;
					h_add(&t->st.h, *now - ts);
				}
				if (more)
					echo_queue(e, *now);
			}
		}
		if ((size_t)n < cap)
			return 0;
	}
}

/* the threads meet here once connected; then run_echo sets echo_clk */
static pthread_barrier_t echo_gate;
static struct clock echo_clk;

static void *echo_thread(void *arg)
{
	struct ethread *t = arg;
	struct econn *cs = calloc((size_t)t->count, sizeof(*cs));
	size_t cap = 256 * 1024;
	char *buf = malloc(cap);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	long live = 0;
	uint64_t deadline = now_ns() + 30 * NS;
	int *fds = malloc((size_t)t->count * sizeof(int));
	int *errs = malloc((size_t)t->count * sizeof(int));

	if (!cs || !buf || ep < 0 || !fds || !errs)
		abort();
	connect_many(fds, errs, t->first, t->count, deadline);
	for (long i = 0; i < t->count; i++) {
		struct econn *e = &cs[i];
		e->id = (uint32_t)(t->first + i);
		e->fd = fds[i];
		if (e->fd < 0) {
			if (t->setup_failed++ < 5)
				warnx_("echo: connection %u: %s", e->id,
				       strerror(errs[i]));
			e->dead = true;
			continue;
		}
		e->ts = calloc((size_t)o.depth, sizeof(*e->ts));
		ep_set(ep, EPOLL_CTL_ADD, e->fd, EPOLLIN, e);
		live++;
	}
	free(fds);
	free(errs);
	/* every thread connected: the clock starts now, for all together */
	pthread_barrier_wait(&echo_gate);
	pthread_barrier_wait(&echo_gate);
	t->clk = echo_clk;
	uint64_t now = now_ns();
	for (long i = 0; i < t->count; i++) {
		struct econn *e = &cs[i];
		if (e->dead)
			continue;
		for (int d = 0; d < o.depth; d++)
			echo_queue(e, now);
		if (echo_flush(ep, e) < 0) {
			t->st.errors++;
			echo_kill(ep, e, &live);
		}
	}
	struct epoll_event evs[MAX_EVENTS];
	bool draining = false;
	while (live > 0) {
		now = now_ns();
		if (now >= t->clk.end && !draining)
			draining = true;
		if (draining) {
			/* done when every message came back, or the drain ran
			 * out */
			bool all = true;
			for (long i = 0; i < t->count && all; i++)
				all = cs[i].dead || cs[i].recvd == cs[i].sent;
			if (all || now >= t->clk.end + DRAIN_NS)
				break;
		}
		int n = epoll_wait(ep, evs, MAX_EVENTS, 50);
		for (int i = 0; i < n; i++) {
			struct econn *e = evs[i].data.ptr;
			if (e->dead)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				if (echo_read(e, buf, cap, t, &now,
				              now < t->clk.end)) {
					echo_kill(ep, e, &live);
					continue;
				}
			}
			if ((e->out_len || (evs[i].events & EPOLLOUT)) &&
			    echo_flush(ep, e) < 0) {
				t->st.errors++;
				echo_kill(ep, e, &live);
			}
		}
	}
	for (long i = 0; i < t->count; i++) {
		struct econn *e = &cs[i];
		if (!e->dead && e->recvd != e->sent) {
			t->st.errors++;
			warnx_("echo: connection %u: %" PRIu64
			       " messages never came back",
			       e->id, e->sent - e->recvd);
		}
		if (!e->dead)
			close(e->fd);
		free(e->ts);
		free(e->out);
	}
	free(cs);
	free(buf);
	close(ep);
	return NULL;
}

static int run_echo(void)
{
	if (o.size < 0)
		o.size = 64;
	if (o.size < 1 || o.depth < 1) {
		warnx_("echo: --size and --depth must be at least 1");
		return EXIT_USAGE;
	}
	int nt = o.threads;
	struct ethread *ts = calloc((size_t)nt, sizeof(*ts));
	long per = o.conns / nt, extra = o.conns % nt, first = 0;

	pthread_barrier_init(&echo_gate, NULL, (unsigned)nt + 1);
	say("echo: %ld connections x depth %d x %ld bytes, %d thread(s), "
	    "%.1f s + %.1f s warm-up\n",
	    o.conns, o.depth, o.size, nt, o.duration, o.warmup);
	for (int i = 0; i < nt; i++) {
		ts[i].first = first;
		ts[i].count = per + (i < extra);
		first += ts[i].count;
		pthread_create(&ts[i].tid, NULL, echo_thread, &ts[i]);
	}
	pthread_barrier_wait(&echo_gate);
	echo_clk = run_clock(now_ns());
	pthread_barrier_wait(&echo_gate);
	struct estats all = {0};
	int failed = 0;
	for (int i = 0; i < nt; i++) {
		pthread_join(ts[i].tid, NULL);
		all.msgs += ts[i].st.msgs;
		all.bytes += ts[i].st.bytes;
		all.errors += ts[i].st.errors;
		all.total += ts[i].st.total;
		failed += ts[i].setup_failed;
		h_merge(&all.h, &ts[i].st.h);
	}
	free(ts);
	pthread_barrier_destroy(&echo_gate);
	if (failed) {
		warnx_("echo: %d of %ld connections failed", failed, o.conns);
		return EXIT_SETUP;
	}
	if (!all.msgs) {
		/* a window with nothing in it measured nothing: not a pass */
		warnx_("echo: no message came back in the measured window");
		all.errors++;
	}
	double mps = (double)all.msgs / o.duration;
	double mib = (double)all.bytes / o.duration / (1024.0 * 1024.0);
	say("echo: %.0f msgs/s, %.2f MiB/s, round trip p50 %" PRIu64
	    " us p90 %" PRIu64 " us p99 %" PRIu64 " us max %" PRIu64
	    " us, %" PRIu64 " errors\n",
	    mps, mib, h_pct(&all.h, 50), h_pct(&all.h, 90), h_pct(&all.h, 99),
	    all.h.max, all.errors);
	printf("RESULT mode=echo conns=%ld depth=%d size=%ld msgs=%" PRIu64
	       " total_msgs=%" PRIu64
	       " msgs_per_s=%.0f mib_per_s=%.3f p50_us=%" PRIu64
	       " p90_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64
	       " errors=%" PRIu64 "\n",
	       o.conns, o.depth, o.size, all.msgs, all.total, mps, mib,
	       h_pct(&all.h, 50), h_pct(&all.h, 90), h_pct(&all.h, 99),
	       all.h.max, all.errors);
	return all.errors ? EXIT_ERRORS : EXIT_OK;
}

/* ---- chat ---- */

#define LINE_MAX_ 8192
#define STEPS_MAX 4

/* set-up steps: wait for a line holding `wait` ("" = at once), then send */
struct step {
	const char *wait;
	const char *send;
};

static struct step steps[STEPS_MAX];
static int n_steps;
static const char *send_fmt = "%t\r\n";

struct chat_thr;

struct cclient {
	int fd;
	int idx;
	int step;
	bool ready;
	bool dead;
	bool want_out;
	char in[LINE_MAX_];
	size_t in_len;
	bool in_skip; /* discarding an over-long line */
	char *out;
	size_t out_len, out_cap;
	int64_t *last;      /* per sender: the last seq seen */
	struct chat_thr *t; /* the thread that reads it */
};

/*
 * A sender's lines. Its thread (the first) alone writes sent, acked and
 * next_at; the receivers, on any thread, only count a line's pending
 * deliveries down.
 */
struct sender {
	_Atomic uint64_t sent;
	_Atomic uint64_t acked;
	_Atomic uint32_t *pending; /* window ring: receivers still to get it */
	uint64_t next_at;          /* rate mode: when the next line is due */
};

/*
 * A receiving thread: its own epoll over its share of the clients, and its
 * own counts, which only it writes; the first thread, which also sends,
 * reads the others' received and reordered to know when all has come.
 */
struct chat_thr {
	pthread_t tid;
	int ep;
	char *buf;
	size_t cap;
	uint64_t deliveries;       /* in the window */
	_Atomic uint64_t received; /* in order, whole run */
	_Atomic uint64_t reordered;
	uint64_t errors;
	struct hist h;
};

static struct cclient *cl;
static struct sender *snd;
static struct chat_thr *cth;
static int n_cth;     /* cth[0] is the caller's own thread */
static int n_started; /* of cth[1..], those running */
static const struct clock *chat_clk;
static atomic_bool chat_stop;
/* wakes the sending thread when a line of its window is fully delivered */
static int chat_wake_fd = -1;
static char chat_wake_tag;

/* counters written by their thread only: a plain add, visible to others */
#define ADD1(ctr)                                                              \
	atomic_store_explicit(                                                 \
	    &(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + 1,    \
	    memory_order_relaxed)

/* expand %i %t %r and \r \n in a template */
static size_t expand(char *to, size_t cap, const char *fmt, int idx,
                     const char *text)
{
	size_t n = 0;

	for (const char *p = fmt; *p && n + 1 < cap; p++) {
		char tmp[32];
		const char *ins = NULL;
		if (*p == '%' && p[1]) {
			p++;
			if (*p == 'i') {
				snprintf(tmp, sizeof(tmp), "%d", idx);
				ins = tmp;
			} else if (*p == 't')
				ins = text;
			else if (*p == 'r')
				ins = o.room;
			else if (*p == '%')
				ins = "%";
			else {
				to[n++] = '%';
				if (n + 1 < cap)
					to[n++] = *p;
				continue;
			}
		} else if (*p == '\\' && (p[1] == 'r' || p[1] == 'n')) {
			p++;
			to[n++] = *p == 'r' ? '\r' : '\n';
			continue;
		}
		if (ins) {
			size_t l = strlen(ins);
			if (n + l >= cap)
				l = cap - n - 1;
			memcpy(to + n, ins, l);
			n += l;
		} else
			to[n++] = *p;
	}
	to[n] = 0;
	return n;
}

static void chat_kill(struct cclient *c)
{
	if (c->dead)
		return;
	epoll_ctl(c->t->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->dead = true;
}

static void chat_flush(struct cclient *c)
{
	size_t off = 0;

	while (off < c->out_len) {
		ssize_t n =
		    send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			c->t->errors++;
			warnx_("chat: client %d: write: %s", c->idx,
			       strerror(errno));
			chat_kill(c);
			return;
		}
		off += (size_t)n;
	}
	memmove(c->out, c->out + off, c->out_len - off);
	c->out_len -= off;
	bool want = c->out_len > 0;
	if (want != c->want_out) {
		c->want_out = want;
		ep_set(c->t->ep, EPOLL_CTL_MOD, c->fd,
		       EPOLLIN | (want ? EPOLLOUT : 0), c);
	}
}

static void chat_put(struct cclient *c, const char *data, size_t len)
{
	if (c->dead)
		return;
	if (c->out_len + len > c->out_cap) {
		c->out_cap = (c->out_len + len) * 2 + 256;
		c->out = realloc(c->out, c->out_cap);
		if (!c->out)
			abort();
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
	chat_flush(c);
}

/* run the set-up steps that need no (more) waiting */
static void chat_steps(struct cclient *c, const char *line)
{
	while (!c->ready) {
		if (c->step >= n_steps) {
			c->ready = true;
			return;
		}
		struct step *s = &steps[c->step];
		if (s->wait[0]) {
			char w[256];
			expand(w, sizeof(w), s->wait, c->idx, "");
			/* natter: joining the room one is in is refused */
			if (!line ||
			    (!strstr(line, w) &&
			     strncmp(line, "!!! you are already in", 22)))
				return;
			line = NULL; /* one line satisfies one step */
		}
		if (s->send && s->send[0]) {
			char b[1024];
			size_t n = expand(b, sizeof(b), s->send, c->idx, "");
			chat_put(c, b, n);
		}
		c->step++;
	}
}

static void chat_send_one(int k, uint64_t now)
{
	char text[LINE_MAX_], line[LINE_MAX_ + 512];
	struct sender *s = &snd[k];
	uint64_t seq = atomic_load_explicit(&s->sent, memory_order_relaxed);
	int n = snprintf(text, sizeof(text), "~nb:%d:%" PRIu64 ":%" PRIu64 "~",
	                 k, seq, now);
	long want = o.size;

	if (want >= (long)sizeof(text))
		want = (long)sizeof(text) - 1;
	while (n < want)
		text[n++] = 'x';
	text[n] = 0;
	size_t len = expand(line, sizeof(line), send_fmt, k, text);
	if (o.window > 0 && o.rate <= 0)
		atomic_store_explicit(&s->pending[seq % (uint64_t)o.window],
		                      (uint32_t)(o.conns - 1),
		                      memory_order_relaxed);
	/* release: a receiver that sees seq counted also sees its slot */
	atomic_store_explicit(&s->sent, seq + 1, memory_order_release);
	chat_put(&cl[k], line, len);
}

/* a receiver got line seq of sender k: one delivery fewer to wait for */
static void chat_ack(int k, uint64_t seq)
{
	struct sender *s = &snd[k];

	if (o.rate > 0 ||
	    seq >= atomic_load_explicit(&s->sent, memory_order_acquire) ||
	    seq < atomic_load_explicit(&s->acked, memory_order_relaxed))
		return;
	_Atomic uint32_t *p = &s->pending[seq % (uint64_t)o.window];
	uint32_t v = atomic_load_explicit(p, memory_order_relaxed);
	while (v && !atomic_compare_exchange_weak(p, &v, v - 1))
		;
	if (v == 1 && n_cth > 1) {
		uint64_t one = 1;
		ssize_t w = write(chat_wake_fd, &one, sizeof(one));
		(void)w; /* EAGAIN: it is awake already */
	}
}

/* the sending thread: move acked past every fully delivered line */
static void chat_advance(struct sender *s)
{
	uint64_t a = atomic_load_explicit(&s->acked, memory_order_relaxed);
	uint64_t sent = atomic_load_explicit(&s->sent, memory_order_relaxed);

	while (a < sent &&
	       !atomic_load_explicit(&s->pending[a % (uint64_t)o.window],
	                             memory_order_relaxed))
		a++;
	atomic_store_explicit(&s->acked, a, memory_order_relaxed);
}

static void chat_line(struct cclient *c, char *line, uint64_t now)
{
	struct chat_thr *t = c->t;

	if (!c->ready) {
		chat_steps(c, line);
		return;
	}
	if (!strncmp(line, "PING ", 5)) {
		line[1] = 'O';
		chat_put(c, line, strlen(line));
		chat_put(c, "\r\n", 2);
		return;
	}
	char *tok = strstr(line, "~nb:");
	if (!tok)
		return;
	char *end;
	long k = strtol(tok + 4, &end, 10);
	if (*end != ':' || k < 0 || k >= o.senders)
		goto bad;
	uint64_t seq = strtoull(end + 1, &end, 10);
	if (*end != ':')
		goto bad;
	uint64_t ts = strtoull(end + 1, &end, 10);
	if (*end != '~')
		goto bad;
	if (k == c->idx) {
		if (t->errors++ < 5)
			warnx_("chat: client %d got its own line back", c->idx);
		return;
	}
	if ((int64_t)seq <= c->last[k]) {
		ADD1(t->reordered);
		return;
	}
	c->last[k] = (int64_t)seq;
	if (chat_clk && in_window(chat_clk, now)) {
		t->deliveries++;
		h_add(&t->h, now - ts);
	}
	chat_ack((int)k, seq);
	ADD1(t->received);
	return;
bad:
	if (t->errors++ < 5)
		warnx_("chat: client %d: a mangled token: %s", c->idx, line);
}

static void chat_read(struct cclient *c)
{
	struct chat_thr *t = c->t;

	for (;;) {
		ssize_t n = read(c->fd, t->buf, t->cap);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			t->errors++;
			warnx_("chat: client %d: the server closed the "
			       "connection",
			       c->idx);
			chat_kill(c);
			return;
		}
		if (n < 0)
			return;
		uint64_t now = now_ns();
		for (ssize_t i = 0; i < n; i++) {
			char ch = t->buf[i];
			if (ch == '\n') {
				if (c->in_len && c->in[c->in_len - 1] == '\r')
					c->in_len--;
				c->in[c->in_len] = 0;
				if (!c->in_skip)
					chat_line(c, c->in, now);
				c->in_len = 0;
				c->in_skip = false;
				if (c->dead)
					return;
			} else if (c->in_len + 1 < sizeof(c->in)) {
				c->in[c->in_len++] = ch;
			} else if (!c->in_skip) {
				t->errors++;
				warnx_("chat: client %d: a line over %zu bytes",
				       c->idx, sizeof(c->in));
				c->in_skip = true;
			}
		}
		if ((size_t)n < t->cap)
			return;
	}
}

/* one epoll_wait's worth of events on t (timeout in ms) */
static void chat_events(struct chat_thr *t, int timeout)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(t->ep, evs, MAX_EVENTS, timeout);

	for (int i = 0; i < n; i++) {
		if (evs[i].data.ptr == &chat_wake_tag) {
			uint64_t v;
			ssize_t r = read(chat_wake_fd, &v, sizeof(v));
			(void)r;
			continue;
		}
		struct cclient *c = evs[i].data.ptr;
		if (c->dead)
			continue;
		if (evs[i].events & EPOLLOUT)
			chat_flush(c);
		if (!c->dead &&
		    (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			chat_read(c);
	}
}

/* a receiving thread other than the first: read until told to stop */
static void *chat_thread(void *arg)
{
	struct chat_thr *t = arg;

	while (!atomic_load(&chat_stop))
		chat_events(t, 50);
	return NULL;
}

static int chat_setup_proto(void)
{
	n_steps = 0;
	if (!strcmp(o.proto, "natter")) {
		steps[n_steps++] =
		    (struct step){"*** you are now in #", "/join %r\r\n"};
		steps[n_steps++] = (struct step){"*** you are now in #%r", ""};
	} else if (!strcmp(o.proto, "irc")) {
		steps[n_steps++] =
		    (struct step){"", "NICK nb%i\r\nUSER nb%i 0 * :nb%i\r\n"};
		steps[n_steps++] = (struct step){" 001 ", "JOIN #%r\r\n"};
		steps[n_steps++] = (struct step){" 366 ", ""};
		send_fmt = "PRIVMSG #%r :%t\r\n";
	} else if (!strcmp(o.proto, "ncat") || !strcmp(o.proto, "none")) {
		/* ready on connect */
	} else {
		warnx_("--proto is natter, ncat, irc or none");
		return -1;
	}
	if (o.preamble || o.ready) {
		n_steps = 0;
		if (o.preamble)
			steps[n_steps++] = (struct step){"", o.preamble};
		if (o.ready)
			steps[n_steps++] = (struct step){o.ready, ""};
	}
	if (o.send_format) {
		static char f[512];
		snprintf(f, sizeof(f), "%s\\r\\n", o.send_format);
		send_fmt = f;
	}
	return 0;
}

/* sums over the threads */
static uint64_t chat_received(void)
{
	uint64_t n = 0;

	for (int i = 0; i < n_cth; i++)
		n += atomic_load_explicit(&cth[i].received,
		                          memory_order_relaxed) +
		     atomic_load_explicit(&cth[i].reordered,
		                          memory_order_relaxed);
	return n;
}

/* connect every client, one at a time, and take each through the set-up
 * steps on the first thread; 0 or an exit code */
static int chat_connect(void)
{
	uint64_t deadline = now_ns() + 30 * NS;

	for (long i = 0; i < o.conns; i++) {
		struct cclient *c = &cl[i];
		c->idx = (int)i;
		c->t = &cth[0];
		c->last = malloc((size_t)o.senders * sizeof(int64_t));
		if (!c->last)
			abort();
		for (int k = 0; k < o.senders; k++)
			c->last[k] = -1;
		c->fd = connect_wait((unsigned)i, deadline);
		if (c->fd < 0) {
			warnx_("chat: client %ld: connect: %s", i,
			       strerror(errno));
			return EXIT_SETUP;
		}
		ep_set(cth[0].ep, EPOLL_CTL_ADD, c->fd, EPOLLIN, c);
		chat_steps(c, NULL);
	}
	/* every client in the room before anyone speaks */
	long ready = 0;
	while (ready < o.conns && now_ns() < deadline) {
		chat_events(&cth[0], 50);
		ready = 0;
		for (long i = 0; i < o.conns; i++)
			ready += cl[i].ready && !cl[i].dead;
	}
	if (ready < o.conns) {
		warnx_("chat: only %ld of %ld clients got ready", ready,
		       o.conns);
		return EXIT_SETUP;
	}
	/* a settle, reading what the joins still bring */
	uint64_t settle = now_ns() + NS / 2;
	while (now_ns() < settle)
		chat_events(&cth[0], 20);
	return 0;
}

/*
 * Hand the receivers to the other threads: the senders stay on the first,
 * which writes their lines, the rest are dealt out in turn.
 */
static int chat_spread(void)
{
	for (long i = o.senders; i < o.conns && n_cth > 1; i++) {
		struct cclient *c = &cl[i];
		if (c->dead)
			continue;
		struct chat_thr *t = &cth[i % n_cth];
		if (t == c->t)
			continue;
		epoll_ctl(c->t->ep, EPOLL_CTL_DEL, c->fd, NULL);
		c->t = t;
		ep_set(t->ep, EPOLL_CTL_ADD, c->fd,
		       EPOLLIN | (c->want_out ? EPOLLOUT : 0), c);
	}
	if (n_cth > 1) {
		chat_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (chat_wake_fd < 0) {
			warnx_("chat: eventfd: %s", strerror(errno));
			return -1;
		}
		ep_set(cth[0].ep, EPOLL_CTL_ADD, chat_wake_fd, EPOLLIN,
		       &chat_wake_tag);
	}
	for (int i = 1; i < n_cth; i++) {
		int rc =
		    pthread_create(&cth[i].tid, NULL, chat_thread, &cth[i]);
		if (rc) {
			warnx_("chat: thread: %s", strerror(rc));
			return -1;
		}
		n_started++;
	}
	return 0;
}

/* the first thread's loop: send what is due or what the window allows,
 * read its clients, until all has come or the drain time is over */
static void chat_drive(const struct clock *clk)
{
	uint64_t now = clk->start;

	for (int k = 0; k < o.senders; k++)
		snd[k].next_at =
		    now + (o.rate > 0 ? (uint64_t)((double)NS / o.rate) *
		                            (uint64_t)k / (uint64_t)o.senders
		                      : 0);
	for (;;) {
		now = now_ns();
		bool sending = now < clk->end;
		uint64_t wake = now + 50000000;
		for (int k = 0; k < o.senders && sending; k++) {
			struct sender *s = &snd[k];
			if (cl[k].dead ||
			    (o.messages > 0 && s->sent >= (uint64_t)o.messages))
				continue;
			if (o.rate > 0) {
				while (s->next_at <= now &&
				       (o.messages <= 0 ||
				        s->sent < (uint64_t)o.messages)) {
					chat_send_one(k, now);
					s->next_at +=
					    (uint64_t)((double)NS / o.rate);
				}
				if (s->next_at < wake)
					wake = s->next_at;
			} else {
				chat_advance(s);
				while (s->sent - s->acked <
				           (uint64_t)o.window &&
				       (o.messages <= 0 ||
				        s->sent < (uint64_t)o.messages))
					chat_send_one(k, now);
			}
		}
		uint64_t expected = 0;
		for (int k = 0; k < o.senders; k++)
			expected += snd[k].sent * (uint64_t)(o.conns - 1);
		bool all_sent = !sending;
		if (o.messages > 0) {
			all_sent = true;
			for (int k = 0; k < o.senders; k++)
				all_sent &= cl[k].dead ||
				            snd[k].sent >= (uint64_t)o.messages;
		}
		if (all_sent && (chat_received() >= expected ||
		                 now >= (sending ? now : clk->end) + DRAIN_NS))
			break;
		if (now >= clk->end + DRAIN_NS)
			break;
		/* while draining, the other threads' progress wakes no one */
		int timeout =
		    all_sent ? 10
		             : (int)((wake > now ? wake - now + 999999 : 0) /
		                     1000000);
		chat_events(&cth[0], timeout);
	}
}

static void chat_free(void)
{
	for (long i = 0; i < o.conns; i++) {
		if (!cl[i].dead && cl[i].fd >= 0)
			close(cl[i].fd);
		free(cl[i].out);
		free(cl[i].last);
	}
	for (int k = 0; k < o.senders; k++)
		free((void *)snd[k].pending);
	for (int i = 0; i < n_cth; i++) {
		if (cth[i].ep >= 0)
			close(cth[i].ep);
		free(cth[i].buf);
	}
	if (chat_wake_fd >= 0)
		close(chat_wake_fd);
	free(cl);
	free(snd);
	free(cth);
}

static int run_chat(void)
{
	if (o.size < 0)
		o.size = 48;
	if (o.conns < 2 || o.senders < 1 || o.senders > o.conns) {
		warnx_("chat: needs at least 2 clients and 1..N senders");
		return EXIT_USAGE;
	}
	if (chat_setup_proto() < 0)
		return EXIT_USAGE;
	if (o.rate <= 0 && o.window < 1)
		o.window = 16;
	/* more threads than receivers to share out would idle */
	n_cth = o.threads < 1 ? 1 : o.threads;
	if (n_cth > o.conns - o.senders + 1)
		n_cth = (int)(o.conns - o.senders + 1);
	cl = calloc((size_t)o.conns, sizeof(*cl));
	snd = calloc((size_t)o.senders, sizeof(*snd));
	cth = calloc((size_t)n_cth, sizeof(*cth));
	if (!cl || !snd || !cth)
		abort();
	for (long i = 0; i < o.conns; i++)
		cl[i].fd = -1;
	for (int i = 0; i < n_cth; i++) {
		cth[i].cap = 256 * 1024;
		cth[i].buf = malloc(cth[i].cap);
		cth[i].ep = epoll_create1(EPOLL_CLOEXEC);
		if (!cth[i].buf || cth[i].ep < 0)
			abort();
	}
	for (int k = 0; k < o.senders; k++) {
		snd[k].pending = calloc((size_t)(o.window > 0 ? o.window : 1),
		                        sizeof(*snd[k].pending));
		if (!snd[k].pending)
			abort();
	}

	say("chat: %ld clients, %d senders, %s, proto %s, room %s, %d "
	    "thread%s\n",
	    o.conns, o.senders, o.rate > 0 ? "fixed rate" : "window", o.proto,
	    o.room, n_cth, n_cth == 1 ? "" : "s");
	int rc = chat_connect();
	if (rc) {
		chat_free();
		return rc;
	}
	for (int i = 0; i < n_cth; i++)
		cth[i].errors = 0;
	struct clock clk = run_clock(now_ns());
	chat_clk = &clk;
	int spread = chat_spread();
	if (!spread)
		chat_drive(&clk);
	atomic_store(&chat_stop, true);
	for (int i = 1; i <= n_started; i++)
		pthread_join(cth[i].tid, NULL);
	chat_clk = NULL;

	uint64_t sent = 0, expected = 0, received = 0, reordered = 0;
	uint64_t deliveries = 0, errors = spread ? 1 : 0;
	struct hist *h = calloc(1, sizeof(*h));
	if (!h)
		abort();
	for (int k = 0; k < o.senders; k++) {
		sent += snd[k].sent;
		expected += snd[k].sent * (uint64_t)(o.conns - 1);
	}
	for (int i = 0; i < n_cth; i++) {
		received += cth[i].received;
		reordered += cth[i].reordered;
		deliveries += cth[i].deliveries;
		errors += cth[i].errors;
		h_merge(h, &cth[i].h);
	}
	uint64_t lost = expected > received ? expected - received : 0;
	double dps = (double)deliveries / o.duration;
	say("chat: %" PRIu64 " lines sent, %" PRIu64
	    " deliveries expected, %" PRIu64 " received in order; lost %" PRIu64
	    ", reordered %" PRIu64 "\n",
	    sent, expected, received, lost, reordered);
	say("chat: %.0f deliveries/s, fan-out latency p50 %" PRIu64
	    " us p99 %" PRIu64 " us max %" PRIu64 " us, %" PRIu64 " errors\n",
	    dps, h_pct(h, 50), h_pct(h, 99), h->max, errors);
	printf(
	    "RESULT mode=chat members=%ld senders=%d threads=%d sent=%" PRIu64
	    " deliveries=%" PRIu64 " deliveries_per_s=%.0f expected=%" PRIu64
	    " lost=%" PRIu64 " reordered=%" PRIu64 " p50_us=%" PRIu64
	    " p90_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64
	    " errors=%" PRIu64 "\n",
	    o.conns, o.senders, n_cth, sent, deliveries, dps, expected, lost,
	    reordered, h_pct(h, 50), h_pct(h, 90), h_pct(h, 99), h->max,
	    errors);
	free(h);
	chat_free();
	return errors || lost || reordered ? EXIT_ERRORS : EXIT_OK;
}

/* ---- hold ---- */

static long rss_kb(long pid)
{
	char path[64], line[256];
	long kb = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * How many of fds are still open at the server: a connection it refused or
 * dropped shows end-of-file (POLLRDHUP) or an error, whatever it wrote
 * first (a welcome line is not a refusal). Closes those it finds gone.
 */
static long hold_count(int *fds, long count)
{
	long held = 0;

	for (long i = 0; i < count; i++) {
		if (fds[i] < 0)
			continue;
		struct pollfd p = {.fd = fds[i], .events = POLLRDHUP};
		if (poll(&p, 1, 0) == 1 &&
		    (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
			close(fds[i]);
			fds[i] = -1;
			continue;
		}
		held++;
	}
	return held;
}

/*
 * One process's share: connect, report "connected held" on out, wait for
 * a byte on ctl (the hold time is over), report "held" again, then wait
 * for ctl to close.
 */
static void hold_child(long first, long count, int out, int ctl)
{
	int *fds = malloc((size_t)count * sizeof(int));
	char b;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!fds)
		_exit(1);
	long connected =
	    connect_many(fds, NULL, first, count, now_ns() + 60 * NS);
	/* a refusal is a line and a close: give it time to arrive */
	usleep(500000);
	dprintf(out, "%ld %ld\n", connected, hold_count(fds, count));
	if (read(ctl, &b, 1) == 1)
		dprintf(out, "%ld\n", hold_count(fds, count));
	while (read(ctl, &b, 1) > 0)
		;
	_exit(0);
}

static int run_hold(void)
{
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	long per = (long)rl.rlim_cur - 64;
	if (per < 16)
		per = 16;
	int procs = (int)((o.conns + per - 1) / per);
	if (procs < 1)
		procs = 1;
	long before = o.server_pid ? rss_kb(o.server_pid) : 0;
	int res[2];
	if (pipe2(res, O_CLOEXEC) < 0)
		return EXIT_SETUP;
	say("hold: %ld connections from %d source address(es) in %d "
	    "process(es)\n",
	    o.conns, o.sources, procs);
	long share = o.conns / procs, extra = o.conns % procs, first = 0;
	pid_t *kids = calloc((size_t)procs, sizeof(pid_t));
	int *ctl = calloc((size_t)procs, sizeof(int)); /* one pipe each */
	if (!kids || !ctl)
		abort();
	for (int i = 0; i < procs; i++) {
		long count = share + (i < extra);
		int c[2];
		if (pipe2(c, O_CLOEXEC) < 0)
			abort();
		pid_t p = fork();
		if (p == 0) {
			close(c[1]);
			close(res[0]);
			hold_child(first, count, res[1], c[0]);
		}
		close(c[0]);
		ctl[i] = c[1];
		kids[i] = p;
		first += count;
	}
	close(res[1]);
	long connected = 0, held = 0, still = 0;
	bool lost = false;
	FILE *f = fdopen(res[0], "r");
	for (int i = 0; i < procs; i++) {
		long c, h;
		if (!f || fscanf(f, "%ld %ld", &c, &h) != 2) {
			warnx_("hold: a child process did not report");
			lost = true;
			continue;
		}
		connected += c;
		held += h;
	}
	sleep(1);
	long after = o.server_pid ? rss_kb(o.server_pid) : 0;
	say("hold: %ld connected, %ld held, %ld refused or dropped, %ld "
	    "failed to connect\n",
	    connected, held, connected - held, o.conns - connected);
	long per_conn =
	    held && o.server_pid ? (after - before) * 1024 / held : 0;
	if (o.server_pid)
		say("hold: server RSS %ld kB before, %ld kB holding: %ld bytes "
		    "per connection\n",
		    before, after, per_conn);
	struct timespec ts = {
	    (time_t)o.hold_time,
	    (long)((o.hold_time - (double)(time_t)o.hold_time) * 1e9)};
	nanosleep(&ts, NULL);
	/* ask every child to look again: what the server dropped since */
	for (int i = 0; i < procs; i++)
		if (write(ctl[i], "x", 1) != 1)
			lost = true;
	for (int i = 0; i < procs && !lost; i++) {
		long h;
		if (!f || fscanf(f, "%ld", &h) != 1) {
			warnx_("hold: a child process did not report");
			lost = true;
			continue;
		}
		still += h;
	}
	say("hold: %ld still held after %.1f s\n", still, o.hold_time);
	for (int i = 0; i < procs; i++)
		close(ctl[i]);
	for (int i = 0; i < procs; i++)
		waitpid(kids[i], NULL, 0);
	if (f)
		fclose(f);
	free(kids);
	free(ctl);
	/* hold_count only ever closes: still <= held */
	long errors = o.conns - still + (lost ? 1 : 0);
	printf("RESULT mode=hold target=%ld connected=%ld held=%ld "
	       "held_end=%ld refused=%ld failed=%ld rss_before_kb=%ld "
	       "rss_after_kb=%ld rss_per_conn_bytes=%ld errors=%ld\n",
	       o.conns, connected, held, still, connected - held,
	       o.conns - connected, before, after, per_conn, errors);
	return errors ? EXIT_ERRORS : EXIT_OK;
}

/* ---- churn ---- */

struct slot {
	int fd;
	int state; /* 0 connecting, 1 echoing */
	uint64_t t0;
	size_t got;
	unsigned src;
};

struct cthread {
	pthread_t tid;
	int first, count;
	struct clock clk;
	uint64_t conns, errors;
	struct hist h;
};

static void churn_start(int ep, struct slot *s, struct cthread *t)
{
	bool done;

	for (int tries = 0; tries < 3; tries++) {
		s->t0 = now_ns();
		s->got = 0;
		s->src += (unsigned)o.slots;
		s->fd = start_connect(s->src, &done);
		if (s->fd >= 0)
			break;
		if (t->errors++ < 5)
			warnx_("churn: connect: %s", strerror(errno));
	}
	if (s->fd < 0)
		return;
	s->state = 0;
	ep_set(ep, EPOLL_CTL_ADD, s->fd, EPOLLOUT, s);
}

static void churn_end(int ep, struct slot *s)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
}

static void *churn_thread(void *arg)
{
	struct cthread *t = arg;
	struct slot *ss = calloc((size_t)t->count, sizeof(*ss));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	size_t size = (size_t)o.size;
	char *msg = malloc(size), buf[4096];
	struct epoll_event evs[MAX_EVENTS];

	for (size_t i = 0; i < size; i++)
		msg[i] = (char)('a' + i % 26);
	for (int i = 0; i < t->count; i++) {
		ss[i].src = (unsigned)(t->first + i);
		churn_start(ep, &ss[i], t);
	}
	for (;;) {
		uint64_t now = now_ns();
		if (now >= t->clk.end)
			break;
		int n = epoll_wait(ep, evs, MAX_EVENTS, 50);
		for (int i = 0; i < n; i++) {
			struct slot *s = evs[i].data.ptr;
			if (s->fd < 0)
				continue;
			now = now_ns();
			if (s->state == 0) {
				if (sock_error(s->fd)) {
					t->errors++;
					churn_end(ep, s);
					churn_start(ep, s, t);
					continue;
				}
				if (in_window(&t->clk, s->t0))
					h_add(&t->h, now - s->t0);
				if (send(s->fd, msg, size, MSG_NOSIGNAL) !=
				    (ssize_t)size) {
					t->errors++;
					churn_end(ep, s);
					churn_start(ep, s, t);
					continue;
				}
				s->state = 1;
				ep_set(ep, EPOLL_CTL_MOD, s->fd, EPOLLIN, s);
				continue;
			}
			ssize_t r = read(s->fd, buf, sizeof(buf));
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0 || s->got + (size_t)r > size ||
			    memcmp(buf, msg + s->got, (size_t)r)) {
				if (t->errors++ < 5)
					warnx_(
					    "churn: a wrong or missing echo");
				churn_end(ep, s);
				churn_start(ep, s, t);
				continue;
			}
			s->got += (size_t)r;
			if (s->got < size)
				continue;
			if (in_window(&t->clk, s->t0))
				t->conns++;
			churn_end(ep, s);
			if (now < t->clk.end)
				churn_start(ep, s, t);
		}
	}
	for (int i = 0; i < t->count; i++)
		if (ss[i].fd >= 0)
			close(ss[i].fd);
	free(ss);
	free(msg);
	close(ep);
	return NULL;
}

static int run_churn(void)
{
	if (o.size < 0)
		o.size = 16;
	if (o.size < 1 || o.size > 4096 || o.slots < 1) {
		warnx_("churn: --size is 1..4096, --slots at least 1");
		return EXIT_USAGE;
	}
	int nt = o.threads > o.slots ? o.slots : o.threads;
	struct cthread *ts = calloc((size_t)nt, sizeof(*ts));
	struct clock clk = run_clock(now_ns());
	int per = o.slots / nt, extra = o.slots % nt, first = 0;

	say("churn: %d slots, %d source address(es), %d thread(s)\n", o.slots,
	    o.sources, nt);
	for (int i = 0; i < nt; i++) {
		ts[i].first = first;
		ts[i].count = per + (i < extra);
		ts[i].clk = clk;
		first += ts[i].count;
		pthread_create(&ts[i].tid, NULL, churn_thread, &ts[i]);
	}
	uint64_t conns = 0, errors = 0;
	struct hist *h = calloc(1, sizeof(*h));
	for (int i = 0; i < nt; i++) {
		pthread_join(ts[i].tid, NULL);
		conns += ts[i].conns;
		errors += ts[i].errors;
		h_merge(h, &ts[i].h);
	}
	if (!conns) {
		warnx_("churn: no connection completed in the measured window");
		errors++;
	}
	double cps = (double)conns / o.duration;
	say("churn: %.0f connections/s, connect p50 %" PRIu64 " us p99 %" PRIu64
	    " us max %" PRIu64 " us, %" PRIu64 " errors\n",
	    cps, h_pct(h, 50), h_pct(h, 99), h->max, errors);
	printf("RESULT mode=churn slots=%d conns=%" PRIu64
	       " conns_per_s=%.0f p50_us=%" PRIu64 " p99_us=%" PRIu64
	       " max_us=%" PRIu64 " errors=%" PRIu64 "\n",
	       o.slots, conns, cps, h_pct(h, 50), h_pct(h, 99), h->max, errors);
	free(h);
	free(ts);
	return errors ? EXIT_ERRORS : EXIT_OK;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: natter-bench echo  -p PORT [-c N] [-D DEPTH] [-s SIZE]\n"
	       "       natter-bench chat  -p PORT [-c N] [-k SENDERS] "
	       "[--rate R | --window W]\n"
	       "                          [--proto natter|ncat|irc|none] "
	       "[--messages M]\n"
	       "       natter-bench hold  -p PORT [-c N] [--sources S] "
	       "[--server-pid PID]\n"
	       "       natter-bench churn -p PORT [-P SLOTS] [--sources S]\n"
	       "\n"
	       "  -H, --host ADDR        numeric server address (127.0.0.1)\n"
	       "  -p, --port PORT        server port\n"
	       "  -U, --unix PATH        a unix socket instead\n"
	       "  -c, --connections N    connections or chat members (50)\n"
	       "  -t, --duration S       measured seconds (10)\n"
	       "  -W, --warmup S         seconds of load before that (1)\n"
	       "  -T, --threads N        threads (1); chat: receiving threads\n"
	       "  -q, --quiet            only the RESULT line\n"
	       "  echo:  -D, --depth N (1)  -s, --size BYTES (64)\n"
	       "  chat:  -k, --senders N (1)  --rate LINES/S  --window N (16)\n"
	       "         --messages N  --room NAME (bench)  -s, --size BYTES "
	       "(48)\n"
	       "         --proto P  --preamble STR  --ready STR  "
	       "--send-format STR\n"
	       "  hold:  --sources N (1)  --server-pid PID  --hold-time S (2)\n"
	       "  churn: -P, --slots N (16)  --sources N (1)  -s, --size BYTES "
	       "(16)\n"
	       "See natter-bench(1).\n");
}

enum {
	O_RATE = 256,
	O_WINDOW,
	O_MESSAGES,
	O_PROTO,
	O_PREAMBLE,
	O_READY,
	O_SENDFMT,
	O_ROOM,
	O_SOURCES,
	O_PID,
	O_HOLDTIME,
};

static const struct option longopts[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"unix", required_argument, NULL, 'U'},
    {"connections", required_argument, NULL, 'c'},
    {"duration", required_argument, NULL, 't'},
    {"warmup", required_argument, NULL, 'W'},
    {"threads", required_argument, NULL, 'T'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"depth", required_argument, NULL, 'D'},
    {"size", required_argument, NULL, 's'},
    {"senders", required_argument, NULL, 'k'},
    {"slots", required_argument, NULL, 'P'},
    {"rate", required_argument, NULL, O_RATE},
    {"window", required_argument, NULL, O_WINDOW},
    {"messages", required_argument, NULL, O_MESSAGES},
    {"proto", required_argument, NULL, O_PROTO},
    {"preamble", required_argument, NULL, O_PREAMBLE},
    {"ready", required_argument, NULL, O_READY},
    {"send-format", required_argument, NULL, O_SENDFMT},
    {"room", required_argument, NULL, O_ROOM},
    {"sources", required_argument, NULL, O_SOURCES},
    {"server-pid", required_argument, NULL, O_PID},
    {"hold-time", required_argument, NULL, O_HOLDTIME},
    {NULL, 0, NULL, 0},
};

static bool num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	int opt;
	double v;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (!strcmp(argv[1], "echo"))
		o.mode = M_ECHO;
	else if (!strcmp(argv[1], "chat"))
		o.mode = M_CHAT;
	else if (!strcmp(argv[1], "hold"))
		o.mode = M_HOLD;
	else if (!strcmp(argv[1], "churn"))
		o.mode = M_CHURN;
	else {
		warnx_("unknown mode '%s' (echo, chat, hold, churn)", argv[1]);
		return EXIT_USAGE;
	}
	argv++;
	argc--;
#define NUM(lo, hi)                                                            \
	do {                                                                   \
		if (!num(optarg, (lo), (hi), &v)) {                            \
			warnx_("bad value '%s' for -%c / --%s", optarg,        \
			       opt < 256 ? opt : '-',                          \
			       argv[optind - 1] +                              \
			           (argv[optind - 1][1] == '-' ? 2 : 1));      \
			return EXIT_USAGE;                                     \
		}                                                              \
	} while (0)
	while ((opt = getopt_long(argc, argv, "H:p:U:c:t:W:T:qhD:s:k:P:",
	                          longopts, NULL)) != -1) {
		switch (opt) {
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			NUM(1, 65535);
			o.port = (int)v;
			break;
		case 'U':
			o.unix_path = optarg;
			break;
		case 'c':
			NUM(1, 10000000);
			o.conns = (long)v;
			break;
		case 't':
			NUM(0.1, 86400);
			o.duration = v;
			break;
		case 'W':
			NUM(0, 3600);
			o.warmup = v;
			break;
		case 'T':
			NUM(1, 64);
			o.threads = (int)v;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'D':
			NUM(1, 4096);
			o.depth = (int)v;
			break;
		case 's':
			NUM(1, 1 << 24);
			o.size = (long)v;
			break;
		case 'k':
			NUM(1, 100000);
			o.senders = (int)v;
			break;
		case 'P':
			NUM(1, 100000);
			o.slots = (int)v;
			break;
		case O_RATE:
			NUM(0.001, 1e6);
			o.rate = v;
			break;
		case O_WINDOW:
			NUM(1, 1e6);
			o.window = (int)v;
			break;
		case O_MESSAGES:
			NUM(0, 1e12);
			o.messages = (long)v;
			break;
		case O_PROTO:
			o.proto = optarg;
			break;
		case O_PREAMBLE:
			o.preamble = optarg;
			break;
		case O_READY:
			o.ready = optarg;
			break;
		case O_SENDFMT:
			o.send_format = optarg;
			break;
		case O_ROOM:
			o.room = optarg;
			break;
		case O_SOURCES:
			NUM(1, 250);
			o.sources = (int)v;
			break;
		case O_PID:
			NUM(1, 1e9);
			o.server_pid = (long)v;
			break;
		case O_HOLDTIME:
			NUM(0, 3600);
			o.hold_time = v;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		warnx_("unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (!o.unix_path && !o.port) {
		warnx_("give the server's port (-p) or unix socket (-U)");
		return EXIT_USAGE;
	}
	if (parse_target() < 0) {
		warnx_("'%s' is not a numeric IPv4 or IPv6 address", o.host);
		return EXIT_USAGE;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	switch (o.mode) {
	case M_ECHO:
		return run_echo();
	case M_CHAT:
		return run_chat();
	case M_HOLD:
		return run_hold();
	case M_CHURN:
		return run_churn();
	}
	return EXIT_USAGE;
}
