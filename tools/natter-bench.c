/*
 * natter-bench: a load generator for natterd and its peers. Four modes:
 * echo (pipelined round trips), chat (fan-out through one room), hold
 * (idle connections, and what they cost the server) and churn (short
 * connections). Everything received is checked; the last line printed is
 * one RESULT line of key=value pairs for scripts.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { EXIT_OK = 0, EXIT_ERRORS = 1, EXIT_USAGE = 2, EXIT_SETUP = 3 };

#define NSEC          1000000000ull
#define MSEC          1000000ull
#define RBUF_SIZE     (256 * 1024) /* one read takes what the kernel has */
#define WBUF_SIZE     (64 * 1024)
#define CONNECT_BATCH 256         /* connects in progress at once */
#define SETUP_NS      (15 * NSEC) /* echo, chat: every connect done by then */
#define READY_NS      (30 * NSEC) /* chat: every member in the room */
#define SETTLE_NS     (NSEC / 2)  /* chat: between ready and the first line */
#define DRAIN_NS      (5 * NSEC)  /* chat: wait for the last lines */
#define RETRY_NS      (10 * MSEC) /* churn: pause of a slot after an error */
#define FD_HEADROOM   64
#define ERRS_SHOWN    5
#define MAX_THREADS   256

enum mode { MODE_ECHO, MODE_CHAT, MODE_HOLD, MODE_CHURN };
enum proto { PROTO_NATTER, PROTO_NCAT, PROTO_IRC };

static const char *const mode_names[] = {"echo", "chat", "hold", "churn"};
static const char *const proto_names[] = {"natter", "ncat", "irc"};

/* the options, read-only once parsed */
static struct {
	enum mode mode;
	int family; /* AF_INET, AF_INET6 or AF_UNIX */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char peer[128];
	bool bind_src; /* bind to 127.0.0.x before connect */
	long conns, threads, depth, size, senders, window, sources, slots;
	double rate, duration, warmup, hold_time;
	long server_pid;
	bool quiet;
	enum proto proto;
	const char *room;
	char *preamble, *ready, *send_fmt; /* escapes expanded; NULL: preset */
} cfg;

static const char *prog = "natter-bench";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* a human line on stdout, unless --quiet */
static void say(const char *fmt, ...)
{
	va_list ap;

	if (cfg.quiet)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void warnx(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

/* epoll timeout in ms until deadline, rounded up, at most cap */
static int ms_until(uint64_t deadline, uint64_t now, int cap)
{
	if (deadline <= now)
		return 0;
	uint64_t ms = (deadline - now + MSEC - 1) / MSEC;
	return ms < (uint64_t)cap ? (int)ms : cap;
}

/* ---- run phases, shared by all threads ---- */

enum { PH_SETUP, PH_RUN, PH_STOP };
static _Atomic int phase;
/* load starts, measuring starts, measuring ends: set before PH_RUN (chat)
 * or before the start barrier (echo) or the threads (churn) */
static uint64_t t_start, t_measure, t_end;
static uint64_t t_stopped; /* main thread: when an interrupt ended it */
static pthread_barrier_t barrier;
static int sigfd = -1;

static bool in_window(uint64_t t)
{
	return t >= t_measure && t < t_end;
}

static bool stopped(void)
{
	return atomic_load_explicit(&phase, memory_order_relaxed) == PH_STOP;
}

/* Sleep until deadline or SIGINT/SIGTERM; true if a signal came. */
static bool wait_signal(uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline)
			return false;
		struct pollfd p = {.fd = sigfd, .events = POLLIN};
		if (poll(&p, 1, ms_until(deadline, now, 1000)) > 0) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) > 0)
				return true;
		}
	}
}

/* the measured seconds: shorter if interrupted */
static double measured_s(void)
{
	uint64_t end = t_stopped && t_stopped < t_end ? t_stopped : t_end;

	return end > t_measure ? (double)(end - t_measure) / NSEC : 0;
}

/* ---- latency: a log-linear histogram, under 0.4% error ---- */

#define HIST_SUB  8 /* 2^(HIST_SUB-1) sub-buckets per power of two */
#define HIST_HALF (1u << (HIST_SUB - 1))
#define HIST_TOP  40 /* ns values clamp at 2^40, 18 minutes */
#define HIST_N    ((HIST_TOP - HIST_SUB + 2) * HIST_HALF)

struct hist {
	uint64_t n, max;
	uint64_t b[HIST_N];
};

static unsigned hist_index(uint64_t v)
{
	if (v >= 1ull << HIST_TOP)
		v = (1ull << HIST_TOP) - 1;
	if (v < 1u << HIST_SUB)
		return (unsigned)v;
	unsigned shift = 63 - (unsigned)__builtin_clzll(v) - (HIST_SUB - 1);
	return shift * HIST_HALF + (unsigned)(v >> shift);
}

/* the middle of bucket i */
static uint64_t hist_value(unsigned i)
{
	if (i < 1u << HIST_SUB)
		return i;
	unsigned shift = i / HIST_HALF - 1;
	uint64_t sub = i - shift * HIST_HALF;
	return (sub << shift) + ((1ull << shift) - 1) / 2;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->n++;
	if (v > h->max)
		h->max = v;
	h->b[hist_index(v)]++;
}

static void hist_merge(struct hist *to, const struct hist *from)
{
	to->n += from->n;
	if (from->max > to->max)
		to->max = from->max;
	for (unsigned i = 0; i < HIST_N; i++)
		to->b[i] += from->b[i];
}

/* percentile (in per mille) in microseconds */
static double hist_us(const struct hist *h, unsigned permille)
{
	uint64_t rank = (h->n * permille + 999) / 1000, seen = 0;

	if (!h->n)
		return 0;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_N; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);
			return (double)(v < h->max ? v : h->max) / 1000;
		}
	}
	return (double)h->max / 1000;
}

/* ---- errors: counted, the first few kept for the report ---- */

struct errs {
	uint64_t n;
	int shown;
	char msg[ERRS_SHOWN][200];
};

static void err_add(struct errs *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void err_add(struct errs *e, const char *fmt, ...)
{
	va_list ap;

	e->n++;
	if (e->shown == ERRS_SHOWN)
		return;
	va_start(ap, fmt);
	vsnprintf(e->msg[e->shown++], sizeof(e->msg[0]), fmt, ap);
	va_end(ap);
}

static void err_merge(struct errs *to, const struct errs *from)
{
	to->n += from->n;
	for (int i = 0; i < from->shown && to->shown < ERRS_SHOWN; i++)
		memcpy(to->msg[to->shown++], from->msg[i], sizeof(to->msg[0]));
}

static void err_print(const struct errs *e)
{
	for (int i = 0; i < e->shown; i++)
		warnx("error: %s", e->msg[i]);
	if (e->n > (uint64_t)e->shown)
		warnx("... %" PRIu64 " errors in all", e->n);
}

/* ---- echo and churn payload: a header, then a pattern ---- */

/*
 * Message seq of connection id: 16 bytes of header (id, seq, size, little
 * endian), then pat[] from an offset that depends on both, so that bytes
 * of another connection or message never pass the check. pat[] repeats
 * with period 251 and is long enough to copy or compare a whole chunk.
 */
#define MSG_HDR    16
#define PAT_PERIOD 251
#define PAT_CHUNK  4096

static unsigned char pat[PAT_PERIOD + PAT_CHUNK];

static void pat_init(void)
{
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (unsigned char)((i % PAT_PERIOD) * 97 + 13);
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void msg_header(unsigned char *h, uint32_t id, uint64_t seq)
{
	put_le(h, id, 4);
	put_le(h + 4, seq, 8);
	put_le(h + 12, (uint64_t)cfg.size, 4);
}

static size_t msg_key(uint32_t id, uint64_t seq)
{
	return (size_t)((id * 17ull + seq * 29ull) % PAT_PERIOD);
}

/* bytes [off, off + len) of message (id, seq) */
static void msg_fill(unsigned char *dst, uint32_t id, uint64_t seq, size_t off,
                     size_t len)
{
	if (off < MSG_HDR && len) {
		unsigned char h[MSG_HDR];
		size_t k = MSG_HDR - off < len ? MSG_HDR - off : len;
		msg_header(h, id, seq);
		memcpy(dst, h + off, k);
		dst += k;
		off += k;
		len -= k;
	}
	size_t key = msg_key(id, seq);
	while (len) {
		size_t k = len < PAT_CHUNK ? len : PAT_CHUNK;
		memcpy(dst, pat + (key + off) % PAT_PERIOD, k);
		dst += k;
		off += k;
		len -= k;
	}
}

/* -1 if src holds bytes [off, off + len) of (id, seq), else the first
 * offset (in the message) that does not */
static long msg_check(const unsigned char *src, uint32_t id, uint64_t seq,
                      size_t off, size_t len)
{
	size_t start = off;
	unsigned char want[PAT_CHUNK];

	while (len) {
		size_t k = len < PAT_CHUNK ? len : PAT_CHUNK;
		const unsigned char *w;
		if (off < MSG_HDR) {
			k = MSG_HDR - off < k ? MSG_HDR - off : k;
			msg_fill(want, id, seq, off, k);
			w = want;
		} else {
			w = pat + (msg_key(id, seq) + off) % PAT_PERIOD;
		}
		if (memcmp(src + (off - start), w, k))
			for (size_t i = 0; i < k; i++)
				if (src[off - start + i] != w[i])
					return (long)(off + i);
		off += k;
		len -= k;
	}
	return -1;
}

static unsigned char msg_byte(uint32_t id, uint64_t seq, size_t off)
{
	unsigned char b;

	msg_fill(&b, id, seq, off, 1);
	return b;
}

/* ---- sockets ---- */

/* A non-blocking stream socket to the server, bound to source address
 * src (mod --sources) when bind_src. */
static int sock_open(unsigned src)
{
	int one = 1, fd, err;

	fd = socket(cfg.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (cfg.family == AF_UNIX)
		return fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (cfg.bind_src) {
		struct sockaddr_in sa = {
		    .sin_family = AF_INET,
		    .sin_addr.s_addr =
		        htonl(0x7f000001u + src % (unsigned)cfg.sources),
		};
		/* the kernel picks the port at connect, per 4-tuple, so
		 * one source address serves more than 28k connections */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		           sizeof(one));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			err = -errno;
			close(fd);
			return err;
		}
	}
	return fd;
}

static int sock_connect(int fd)
{
	if (connect(fd, (struct sockaddr *)&cfg.addr, cfg.addrlen) == 0)
		return 0;
	return -errno;
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

/*
 * Connect n sockets (connection i from source src0 + i), at most
 * CONNECT_BATCH in progress, by deadline. fds[i] is the connected socket
 * or -1. Returns how many connected; *first_err is the first failure.
 */
static int connect_many(int *fds, int n, unsigned src0, uint64_t deadline,
                        int *first_err)
{
	struct epoll_event ev[CONNECT_BATCH];
	int ep = epoll_create1(EPOLL_CLOEXEC), next = 0, busy = 0, ok = 0;

	*first_err = 0;
	for (int i = 0; i < n; i++)
		fds[i] = -1;
	if (ep < 0) {
		*first_err = errno;
		return 0;
	}
	while (next < n || busy) {
		uint64_t now = now_ns();
		if (now >= deadline || stopped())
			break;
		bool again = false;
		while (next < n && busy < CONNECT_BATCH) {
			int fd = sock_open(src0 + (unsigned)next), rc;
			rc = fd < 0 ? fd : sock_connect(fd);
			if (rc == 0) {
				fds[next++] = fd;
				ok++;
				continue;
			}
			if (rc == -EINPROGRESS) {
				struct epoll_event e = {.events = EPOLLOUT,
				                        .data.u32 = (uint32_t)next};
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				fds[next++] = fd;
				busy++;
				continue;
			}
			if (fd >= 0)
				close(fd);
			/* a unix listener's backlog is full: try again */
			if (rc == -EAGAIN && cfg.family == AF_UNIX) {
				again = true;
				break;
			}
			if (!*first_err)
				*first_err = -rc;
			next++;
		}
		if (!busy) {
			if (again)
				usleep(1000);
			continue;
		}
		int k = epoll_wait(ep, ev, CONNECT_BATCH,
		                   ms_until(deadline, now_ns(), again ? 1 : 100));
		for (int j = 0; j < k; j++) {
			int i = (int)ev[j].data.u32, err = sock_error(fds[i]);
			epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
			busy--;
			if (err) {
				if (!*first_err)
					*first_err = -err;
				close(fds[i]);
				fds[i] = -1;
			} else {
				ok++;
			}
		}
	}
	/* out of time: what is still in progress failed */
	if (busy || next < n) {
		for (int i = 0; i < n; i++) {
			if (fds[i] < 0 || !busy)
				continue;
			struct epoll_event e;
			if (epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &e) == 0) {
				close(fds[i]);
				fds[i] = -1;
				busy--;
			}
		}
		if (!*first_err)
			*first_err = ETIMEDOUT;
	}
	close(ep);
	return ok;
}

/* Can we talk to the server at all? 0 or a negative errno. */
static int probe(void)
{
	int fd = sock_open(0), rc;

	if (fd < 0)
		return fd;
	rc = sock_connect(fd);
	if (rc == -EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		rc = poll(&p, 1, 5000) == 1 ? sock_error(fd) : -ETIMEDOUT;
	}
	close(fd);
	return rc;
}

static void nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static long nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	return rl.rlim_cur > 1L << 30 ? 1L << 30 : (long)rl.rlim_cur;
}

/* ---- worker threads ---- */

struct chat_sender;

struct worker {
	pthread_t tid;
	int id;
	int epfd;
	int n;       /* connections (echo, chat) or slots (churn) */
	void *conns; /* struct echo_conn, chat_conn or churn_slot [n] */
	unsigned char *rbuf, *wbuf;
	struct hist *hist;
	struct errs errs;
	uint64_t count; /* messages, deliveries or connections measured */
	int setup_failed, setup_err;

	/* chat */
	int evfd; /* another thread completed a line of ours */
	struct chat_sender **snd;
	int nsnd;
	bool acked; /* a line of ours completed here */
	uint64_t received, reordered;
	char hs_last[120]; /* a line that did not make a member ready */
	_Atomic int wake_pending, ready, past_end;
	_Atomic uint64_t pub_received;

	/* churn */
	unsigned src_next;
};

static struct worker *workers;
static int nworkers;

static int worker_arm(struct worker *w, int fd, uint32_t events, void *ptr,
                      int op)
{
	struct epoll_event e = {.events = events, .data.ptr = ptr};

	return epoll_ctl(w->epfd, op, fd, &e);
}

static int workers_start(void *(*fn)(void *))
{
	nworkers = (int)cfg.threads;
	workers = calloc((size_t)nworkers, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];
		w->id = i;
		w->evfd = -1;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->rbuf = malloc(RBUF_SIZE);
		w->wbuf = malloc(WBUF_SIZE);
		w->hist = calloc(1, sizeof(*w->hist));
		if (w->epfd < 0 || !w->rbuf || !w->wbuf || !w->hist)
			return -ENOMEM;
	}
	for (int i = 0; i < nworkers; i++)
		if (pthread_create(&workers[i].tid, NULL, fn, &workers[i]))
			return -EAGAIN;
	return 0;
}

static void workers_join(struct hist *h, struct errs *e, uint64_t *count)
{
	for (int i = 0; i < nworkers; i++) {
		pthread_join(workers[i].tid, NULL);
		hist_merge(h, workers[i].hist);
		err_merge(e, &workers[i].errs);
		*count += workers[i].count;
	}
}

/* how many of n things (members, slots) worker w gets: i % T == w */
static int share_of(long n, int w)
{
	return (int)(n / cfg.threads + (w < n % cfg.threads));
}

/* Connect worker w's share; 0, or the count that failed. */
static int worker_connect(struct worker *w, int *fds)
{
	int err, ok = connect_many(fds, w->n, (unsigned)w->id,
	                           now_ns() + SETUP_NS, &err);

	if (ok == w->n)
		return 0;
	w->setup_failed = w->n - ok;
	w->setup_err = err;
	for (int i = 0; i < w->n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return w->setup_failed;
}

/* main thread: after the connect barrier, did everyone connect? */
static bool setup_ok(void)
{
	int failed = 0, err = 0;

	for (int i = 0; i < nworkers; i++) {
		failed += workers[i].setup_failed;
		if (!err)
			err = workers[i].setup_err;
	}
	if (!failed)
		return true;
	warnx("%d of %ld connections to %s failed: %s", failed,
	      cfg.mode == MODE_CHAT ? cfg.conns : cfg.conns, cfg.peer,
	      strerror(err));
	return false;
}

/* ---- echo ---- */

struct echo_conn {
	int fd;
	uint32_t id;
	bool out_wait; /* EPOLLOUT armed */
	size_t tx_off, rx_off;
	uint64_t tx_seq, rx_seq; /* message being written, being read */
	uint64_t *ts;            /* [depth]: when each was written */
};

static void echo_drop(struct worker *w, struct echo_conn *c)
{
	(void)w;
	close(c->fd);
	c->fd = -1;
}

/* Write what the window allows: messages up to rx_seq + depth. */
static void echo_flush(struct worker *w, struct echo_conn *c)
{
	uint64_t limit = c->rx_seq + (uint64_t)cfg.depth;
	size_t size = (size_t)cfg.size;

	while (c->tx_seq < limit) {
		uint64_t s = c->tx_seq;
		size_t off = c->tx_off, len = 0;
		while (s < limit && len < WBUF_SIZE) {
			size_t k = size - off;
			if (k > WBUF_SIZE - len)
				k = WBUF_SIZE - len;
			msg_fill(w->wbuf + len, c->id, s, off, k);
			len += k;
			off += k;
			if (off == size) {
				s++;
				off = 0;
			}
		}
		ssize_t n = send(c->fd, w->wbuf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			err_add(&w->errs, "echo: connection %u: write: %s",
			        c->id, strerror(errno));
			echo_drop(w, c);
			return;
		}
		uint64_t now = now_ns();
		for (size_t done = n > 0 ? (size_t)n : 0; done;) {
			size_t k = size - c->tx_off < done ? size - c->tx_off
			                                   : done;
			c->tx_off += k;
			done -= k;
			if (c->tx_off == size) {
				c->ts[c->tx_seq % (uint64_t)cfg.depth] = now;
				c->tx_seq++;
				c->tx_off = 0;
			}
		}
		if (n < 0 || (size_t)n < len) {
			if (!c->out_wait)
				worker_arm(w, c->fd, EPOLLIN | EPOLLOUT, c,
				           EPOLL_CTL_MOD);
			c->out_wait = true;
			return;
		}
	}
	if (c->out_wait)
		worker_arm(w, c->fd, EPOLLIN, c, EPOLL_CTL_MOD);
	c->out_wait = false;
}

/* Check n received bytes against what was sent; -1 on a mismatch. */
static int echo_input(struct worker *w, struct echo_conn *c,
                      const unsigned char *p, size_t n, uint64_t now)
{
	size_t size = (size_t)cfg.size;

	while (n) {
		size_t k = size - c->rx_off < n ? size - c->rx_off : n;
		if (c->rx_seq > c->tx_seq ||
		    (c->rx_seq == c->tx_seq && c->rx_off + k > c->tx_off)) {
			err_add(&w->errs,
			        "echo: connection %u: more bytes came back "
			        "than were sent",
			        c->id);
			return -1;
		}
		long bad = msg_check(p, c->id, c->rx_seq, c->rx_off, k);
		if (bad >= 0) {
			err_add(&w->errs,
			        "echo: connection %u, message %" PRIu64
			        ", byte %ld: got 0x%02x, want 0x%02x",
			        c->id, c->rx_seq, bad,
			        p[(size_t)bad - c->rx_off],
			        msg_byte(c->id, c->rx_seq, (size_t)bad));
			return -1;
		}
		p += k;
		n -= k;
		c->rx_off += k;
		if (c->rx_off == size) {
			if (in_window(now)) {
				w->count++;
				hist_add(w->hist,
				         now - c->ts[c->rx_seq %
				                     (uint64_t)cfg.depth]);
			}
			c->rx_seq++;
			c->rx_off = 0;
		}
	}
	return 0;
}

static void echo_read(struct worker *w, struct echo_conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, w->rbuf, RBUF_SIZE, 0);
		if (n > 0) {
			if (echo_input(w, c, w->rbuf, (size_t)n, now_ns())) {
				echo_drop(w, c);
				return;
			}
			if (n < RBUF_SIZE)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		err_add(&w->errs, "echo: connection %u: %s", c->id,
		        n == 0 ? "closed by the server" : strerror(errno));
		echo_drop(w, c);
		return;
	}
	echo_flush(w, c);
}

static void *echo_worker(void *arg)
{
	struct worker *w = arg;
	struct echo_conn *cs;
	int *fds;

	w->n = share_of(cfg.conns, w->id);
	cs = calloc((size_t)w->n, sizeof(*cs));
	fds = calloc((size_t)w->n, sizeof(*fds));
	uint64_t *ts = calloc((size_t)w->n * (size_t)cfg.depth, sizeof(*ts));
	if (!cs || !fds || !ts) {
		w->setup_failed = w->n;
		w->setup_err = ENOMEM;
	} else if (!worker_connect(w, fds)) {
		for (int i = 0; i < w->n; i++) {
			cs[i].fd = fds[i];
			cs[i].id = (uint32_t)(i * cfg.threads + w->id);
			cs[i].ts = ts + (size_t)i * (size_t)cfg.depth;
			worker_arm(w, fds[i], EPOLLIN, &cs[i], EPOLL_CTL_ADD);
		}
	}
	free(fds);
	w->conns = cs;
	pthread_barrier_wait(&barrier); /* connected */
	pthread_barrier_wait(&barrier); /* the main thread set the times */
	if (stopped() || w->setup_failed)
		goto done;

	struct epoll_event ev[256];
	for (int i = 0; i < w->n; i++)
		echo_flush(w, &cs[i]);
	for (;;) {
		uint64_t now = now_ns();
		if (now >= t_end || stopped())
			break;
		int k = epoll_wait(w->epfd, ev, 256, ms_until(t_end, now, 100));
		for (int j = 0; j < k; j++) {
			struct echo_conn *c = ev[j].data.ptr;
			if (c->fd < 0)
				continue;
			if (ev[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				echo_read(w, c);
			else if (ev[j].events & EPOLLOUT)
				echo_flush(w, c);
		}
	}
done:
	for (int i = 0; i < w->n && cs; i++)
		if (cs[i].fd >= 0)
			close(cs[i].fd);
	free(cs);
	free(ts);
	return NULL;
}

static int echo_run(void)
{
	struct hist *h = calloc(1, sizeof(*h));
	struct errs e = {0};
	uint64_t msgs = 0;

	say("echo: %s, %ld connections, %ld in flight each, %ld bytes, "
	    "%ld thread%s, %.1f s warm-up + %.1f s",
	    cfg.peer, cfg.conns, cfg.depth, cfg.size, cfg.threads,
	    cfg.threads == 1 ? "" : "s", cfg.warmup, cfg.duration);
	pthread_barrier_init(&barrier, NULL, (unsigned)cfg.threads + 1);
	if (!h || workers_start(echo_worker) < 0) {
		warnx("cannot start: %s", strerror(ENOMEM));
		return EXIT_SETUP;
	}
	pthread_barrier_wait(&barrier);
	bool ok = setup_ok();
	t_start = now_ns();
	t_measure = t_start + (uint64_t)(cfg.warmup * NSEC);
	t_end = t_measure + (uint64_t)(cfg.duration * NSEC);
	if (!ok)
		atomic_store(&phase, PH_STOP);
	pthread_barrier_wait(&barrier);
	if (ok && wait_signal(t_end)) {
		t_stopped = now_ns();
		atomic_store(&phase, PH_STOP);
	}
	workers_join(h, &e, &msgs);
	if (!ok)
		return EXIT_SETUP;

	double secs = measured_s();
	if (!msgs)
		err_add(&e, "no message came back in the measured window");
	double rate = secs > 0 ? (double)msgs / secs : 0;
	double mib = rate * (double)cfg.size / (1024.0 * 1024.0);
	say("echo: %" PRIu64 " messages in %.3f s: %.1f msgs/s, %.3f MiB/s",
	    msgs, secs, rate, mib);
	say("echo: round trip (us): p50 %.1f p90 %.1f p99 %.1f max %.1f",
	    hist_us(h, 500), hist_us(h, 900), hist_us(h, 990),
	    (double)h->max / 1000);
	say("echo: errors %" PRIu64, e.n);
	err_print(&e);
	fflush(stdout);
	printf("RESULT mode=echo conns=%ld depth=%ld size=%ld msgs=%" PRIu64
	       " msgs_per_s=%.1f mib_per_s=%.3f p50_us=%.1f p90_us=%.1f "
	       "p99_us=%.1f max_us=%.1f errors=%" PRIu64 "\n",
	       cfg.conns, cfg.depth, cfg.size, msgs, rate, mib, hist_us(h, 500),
	       hist_us(h, 900), hist_us(h, 990), (double)h->max / 1000, e.n);
	free(h);
	return e.n ? EXIT_ERRORS : EXIT_OK;
}

/* ---- chat ---- */

/*
 * Member m is worker m % T's; members 0..K-1 also send. A line of sender
 * s carries ~nb:s:seq:t_ns~ and filler up to --size; every other member
 * checks that s's seqs come in order. With --window, ring[seq % W]
 * counts down the members that still have to get line seq; the sender
 * sends while fewer than W of its lines are incomplete.
 */
struct chat_sender {
	_Atomic uint32_t *ring; /* [window], or NULL with --rate */
	_Atomic uint64_t pub_sent;
	uint64_t sent, acked; /* the owner's: lines sent, lines complete */
	uint64_t next_ns;     /* --rate: when the next line is due */
	int owner;            /* worker */
	struct chat_conn *conn;
	char *pre, *post; /* the send format around %t */
	size_t pre_len, post_len;
};

struct chat_conn {
	int fd;
	uint32_t idx;
	int step; /* of the handshake */
	bool ready, out_wait, tail_over;
	struct chat_sender *snd; /* NULL if it only listens */
	uint64_t *next;          /* [senders]: next seq expected */
	char *out;
	size_t out_off, out_len, out_cap;
	char *tail; /* a line not yet complete */
	size_t tail_len;
};

/* a handshake step: wait for a line that starts with (prefix) or
 * contains pat, or starts with alt; then send send (%i expanded) */
struct hs_step {
	char *pat, *alt, *send;
	bool prefix;
	bool word; /* pat must be followed by a space or the line end */
};

static struct chat_sender *senders;
static struct hs_step steps[2];
static int nsteps;
static const char *eol = "\r\n"; /* appended to the send format */
static uint64_t period_ns;       /* --rate */
static size_t line_max, tail_cap;

#define OUT_SMALL 4096 /* a member that only listens: handshake, PONGs */

/* Expand %i %r %% (and %t as text) in fmt; NULL if it does not fit. */
static char *expand(const char *fmt, long idx, const char *text)
{
	char buf[4096];
	size_t n = 0;

	for (const char *p = fmt; *p; p++) {
		char num[24];
		const char *add = NULL;
		if (*p == '%' && p[1]) {
			p++;
			if (*p == 'i') {
				snprintf(num, sizeof(num), "%ld", idx);
				add = num;
			} else if (*p == 'r') {
				add = cfg.room;
			} else if (*p == 't' && text) {
				add = text;
			} else if (*p != '%') {
				p--;
			}
		}
		size_t k = add ? strlen(add) : 1;
		if (n + k >= sizeof(buf))
			return NULL;
		memcpy(buf + n, add ? add : p, k);
		n += k;
	}
	buf[n] = 0;
	return strdup(buf);
}

static bool hs_match(const struct hs_step *s, const char *line, size_t len)
{
	size_t k = strlen(s->pat);

	if (s->alt && len >= strlen(s->alt) &&
	    !memcmp(line, s->alt, strlen(s->alt)))
		return true;
	if (!s->prefix)
		return memmem(line, len, s->pat, k) != NULL;
	if (len < k || memcmp(line, s->pat, k))
		return false;
	return !s->word || len == k || line[k] == ' ';
}

static size_t fmt_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

static char filler(uint64_t s, uint64_t seq, size_t at)
{
	return (char)('a' + (s + seq + at) % 26);
}

/* the text of line seq of sender s, sent at t */
static size_t chat_text(char *dst, uint64_t s, uint64_t seq, uint64_t t)
{
	char *p = dst;

	memcpy(p, "~nb:", 4);
	p += 4;
	p += fmt_u64(p, s);
	*p++ = ':';
	p += fmt_u64(p, seq);
	*p++ = ':';
	p += fmt_u64(p, t);
	*p++ = '~';
	for (size_t at = (size_t)(p - dst); at < (size_t)cfg.size; at++)
		*p++ = filler(s, seq, at);
	return (size_t)(p - dst);
}

static const char *parse_u64(const char *p, const char *end, uint64_t *v)
{
	const char *start = p;

	*v = 0;
	while (p < end && *p >= '0' && *p <= '9' && p - start < 19)
		*v = *v * 10 + (uint64_t)(*p++ - '0');
	return p > start ? p : NULL;
}

static void chat_drop(struct worker *w, struct chat_conn *c, const char *why)
{
	err_add(&w->errs, "chat: member %u: %s", c->idx, why);
	close(c->fd);
	c->fd = -1;
}

static void chat_flush(struct worker *w, struct chat_conn *c)
{
	while (c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len,
		                 MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			c->out_len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!c->out_wait)
				worker_arm(w, c->fd, EPOLLIN | EPOLLOUT, c,
				           EPOLL_CTL_MOD);
			c->out_wait = true;
			return;
		}
		chat_drop(w, c, strerror(errno));
		return;
	}
	c->out_off = 0;
	if (c->out_wait)
		worker_arm(w, c->fd, EPOLLIN, c, EPOLL_CTL_MOD);
	c->out_wait = false;
}

/* room for len more bytes at the end of c's output, or NULL */
static char *chat_room_for(struct chat_conn *c, size_t len)
{
	if (c->out_off + c->out_len + len > c->out_cap && c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len);
		c->out_off = 0;
	}
	if (c->out_off + c->out_len + len > c->out_cap)
		return NULL;
	return c->out + c->out_off + c->out_len;
}

static void chat_queue(struct worker *w, struct chat_conn *c, const char *s,
                       size_t len)
{
	char *p = chat_room_for(c, len);

	if (!p) {
		chat_drop(w, c, "output buffer full");
		return;
	}
	memcpy(p, s, len);
	c->out_len += len;
}

static void chat_queue_expanded(struct worker *w, struct chat_conn *c,
                                const char *fmt)
{
	char *s = expand(fmt, c->idx, NULL);

	if (s)
		chat_queue(w, c, s, strlen(s));
	free(s);
}

static void chat_step(struct worker *w, struct chat_conn *c, const char *line,
                      size_t len)
{
	if (!hs_match(&steps[c->step], line, len)) {
		size_t k = len < sizeof(w->hs_last) - 1 ? len
		                                        : sizeof(w->hs_last) - 1;
		memcpy(w->hs_last, line, k);
		w->hs_last[k] = 0;
		return;
	}
	if (steps[c->step].send)
		chat_queue_expanded(w, c, steps[c->step].send);
	if (++c->step == nsteps)
		c->ready = true;
}

/* A line of sender s reached member c. */
static void chat_delivery(struct worker *w, struct chat_conn *c,
                          const char *tok, const char *end, uint64_t now)
{
	uint64_t s, seq, t;
	const char *p = parse_u64(tok + 4, end, &s);

	if (p && p < end && *p == ':')
		p = parse_u64(p + 1, end, &seq);
	else
		p = NULL;
	if (p && p < end && *p == ':')
		p = parse_u64(p + 1, end, &t);
	else
		p = NULL;
	if (!p || p == end || *p != '~') {
		err_add(&w->errs, "chat: member %u: a damaged token: %.*s",
		        c->idx, (int)(end - tok < 60 ? end - tok : 60), tok);
		return;
	}
	p++;
	if (s >= (uint64_t)cfg.senders || s == c->idx ||
	    seq >= atomic_load_explicit(&senders[s].pub_sent,
	                                memory_order_relaxed)) {
		err_add(&w->errs,
		        "chat: member %u: line %" PRIu64 " of member %" PRIu64
		        " %s",
		        c->idx, seq, s,
		        s == c->idx ? "came back to its sender"
		                    : "was never sent");
		return;
	}
	/* the filler must be intact and end the line */
	size_t at = (size_t)(p - tok), want = 0;
	if ((size_t)cfg.size > at)
		want = (size_t)cfg.size - at;
	bool bad = (size_t)(end - p) != want;
	for (size_t i = 0; !bad && i < want; i++)
		bad = p[i] != filler(s, seq, at + i);
	if (bad) {
		err_add(&w->errs,
		        "chat: member %u: line %" PRIu64 " of member %" PRIu64
		        " damaged: %.*s",
		        c->idx, seq, s, (int)(end - tok < 80 ? end - tok : 80),
		        tok);
		return;
	}
	if (seq < c->next[s]) {
		w->reordered++;
		return;
	}
	c->next[s] = seq + 1;
	w->received++;
	if (senders[s].ring &&
	    atomic_fetch_sub_explicit(&senders[s].ring[seq % (uint64_t)
	                                                   cfg.window],
	                              1, memory_order_acq_rel) == 1) {
		struct worker *o = &workers[senders[s].owner];
		if (o == w) {
			w->acked = true;
		} else if (!atomic_exchange(&o->wake_pending, 1)) {
			uint64_t one = 1;
			if (write(o->evfd, &one, sizeof(one)) < 0)
				(void)0; /* the counter is full: awake anyway */
		}
	}
	if (in_window(now)) {
		w->count++;
		hist_add(w->hist, now > t ? now - t : 0);
	}
}

static void chat_line(struct worker *w, struct chat_conn *c, char *line,
                      size_t len, uint64_t now)
{
	if (len && line[len - 1] == '\r')
		len--;
	if (len >= 5 && !memcmp(line, "PING ", 5)) {
		chat_queue(w, c, "PONG ", 5);
		if (c->fd >= 0)
			chat_queue(w, c, line + 5, len - 5);
		if (c->fd >= 0)
			chat_queue(w, c, "\r\n", 2);
		return;
	}
	if (!c->ready) {
		chat_step(w, c, line, len);
		return;
	}
	const char *tok = memmem(line, len, "~nb:", 4);
	if (tok)
		chat_delivery(w, c, tok, line + len, now);
}

/* Split received bytes into lines; a partial one waits in c->tail. */
static void chat_input(struct worker *w, struct chat_conn *c, char *p,
                       size_t n, uint64_t now)
{
	char *end = p + n;

	while (p < end && c->fd >= 0) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t k = (size_t)((nl ? nl : end) - p);
		if (c->tail_len || !nl) {
			if (c->tail_len + k > tail_cap) {
				c->tail_over = true;
				k = tail_cap - c->tail_len;
			}
			memcpy(c->tail + c->tail_len, p, k);
			c->tail_len += k;
			if (!nl)
				return;
			if (c->tail_over)
				err_add(&w->errs,
				        "chat: member %u: a line longer "
				        "than %zu bytes",
				        c->idx, tail_cap);
			else
				chat_line(w, c, c->tail, c->tail_len, now);
			c->tail_len = 0;
			c->tail_over = false;
		} else {
			chat_line(w, c, p, k, now);
		}
		p = nl + 1;
	}
}

static void chat_read(struct worker *w, struct chat_conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, w->rbuf, RBUF_SIZE, 0);
		if (n > 0) {
			chat_input(w, c, (char *)w->rbuf, (size_t)n, now_ns());
			if (c->fd < 0)
				return;
			if (n < RBUF_SIZE)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		chat_drop(w, c,
		          n == 0 ? "closed by the server" : strerror(errno));
		return;
	}
	if (c->out_len)
		chat_flush(w, c);
}

/* Send what the window or the rate allows; true if s waits for time. */
static bool chat_send(struct worker *w, struct chat_sender *s, uint64_t now)
{
	struct chat_conn *c = s->conn;
	uint64_t t = now_ns(), n = 0;

	for (;;) {
		if (s->ring ? s->sent - s->acked >= (uint64_t)cfg.window
		            : s->next_ns > now)
			break;
		char *p = chat_room_for(c, line_max);
		if (!p)
			break; /* EPOLLOUT will call again */
		if (s->ring)
			atomic_store_explicit(
			    &s->ring[s->sent % (uint64_t)cfg.window],
			    (uint32_t)(cfg.conns - 1), memory_order_release);
		char *start = p;
		memcpy(p, s->pre, s->pre_len);
		p += s->pre_len;
		p += chat_text(p, c->idx, s->sent, t);
		memcpy(p, s->post, s->post_len);
		p += s->post_len;
		memcpy(p, eol, strlen(eol));
		p += strlen(eol);
		c->out_len += (size_t)(p - start);
		s->sent++;
		n++;
		if (!s->ring) {
			s->next_ns += period_ns;
			/* more than a second behind: do not burst */
			if (s->next_ns + NSEC < now)
				s->next_ns = now;
		}
	}
	if (n) {
		atomic_store_explicit(&s->pub_sent, s->sent,
		                      memory_order_release);
		chat_flush(w, c);
	}
	return !s->ring && c->fd >= 0 && chat_room_for(c, line_max);
}

static void chat_senders(struct worker *w, uint64_t now, uint64_t *due)
{
	bool run = atomic_load_explicit(&phase, memory_order_acquire) ==
	           PH_RUN;

	*due = UINT64_MAX;
	for (int i = 0; i < w->nsnd; i++) {
		struct chat_sender *s = w->snd[i];
		if (s->ring)
			while (s->acked < s->sent &&
			       !atomic_load_explicit(
			           &s->ring[s->acked % (uint64_t)cfg.window],
			           memory_order_acquire))
				s->acked++;
		if (!run || s->conn->fd < 0)
			continue;
		if (now < t_start) {
			*due = t_start;
			continue;
		}
		if (now >= t_end)
			continue;
		if (chat_send(w, s, now) && s->next_ns < *due)
			*due = s->next_ns;
	}
	w->acked = false;
}

static int chat_conn_init(struct chat_conn *c, uint32_t idx, int fd)
{
	c->fd = fd;
	c->idx = idx;
	c->next = calloc((size_t)cfg.senders, sizeof(*c->next));
	c->tail = malloc(tail_cap);
	c->out_cap = idx < cfg.senders ? (size_t)(WBUF_SIZE + 4 * line_max)
	                               : OUT_SMALL;
	c->out = malloc(c->out_cap);
	if (!c->next || !c->tail || !c->out)
		return -ENOMEM;
	if (idx < cfg.senders) {
		c->snd = &senders[idx];
		c->snd->conn = c;
	}
	return 0;
}

static void chat_publish(struct worker *w, uint64_t now)
{
	int ready = 0;

	for (int i = 0; i < w->n; i++)
		ready += ((struct chat_conn *)w->conns)[i].ready;
	atomic_store_explicit(&w->ready, ready, memory_order_relaxed);
	atomic_store_explicit(&w->pub_received, w->received,
	                      memory_order_relaxed);
	if (atomic_load_explicit(&phase, memory_order_acquire) == PH_RUN &&
	    now >= t_end)
		atomic_store_explicit(&w->past_end, 1, memory_order_release);
}

static void chat_loop(struct worker *w)
{
	struct chat_conn *cs = w->conns;
	struct epoll_event ev[256];
	uint64_t due = 0, now = now_ns();

	while (!stopped()) {
		int cap = 10; /* the phases change under us */
		if (atomic_load_explicit(&phase, memory_order_acquire) ==
		        PH_RUN &&
		    now >= t_start && now < t_end) {
			cap = 50;
			if (due > t_end)
				due = t_end;
		} else {
			due = UINT64_MAX;
		}
		int k = epoll_wait(w->epfd, ev, 256,
		                   w->acked ? 0 : ms_until(due, now, cap));
		for (int j = 0; j < k; j++) {
			if (!ev[j].data.ptr) {
				uint64_t v;
				atomic_store(&w->wake_pending, 0);
				if (read(w->evfd, &v, sizeof(v)) < 0)
					(void)0;
				continue;
			}
			struct chat_conn *c = ev[j].data.ptr;
			if (c->fd >= 0 &&
			    (ev[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				chat_read(w, c);
			if (c->fd >= 0 && (ev[j].events & EPOLLOUT))
				chat_flush(w, c);
		}
		now = now_ns();
		chat_senders(w, now, &due);
		chat_publish(w, now);
	}
	for (int i = 0; i < w->n; i++)
		if (cs[i].fd >= 0)
			close(cs[i].fd);
}

static void *chat_worker(void *arg)
{
	struct worker *w = arg;
	struct chat_conn *cs;
	int *fds;

	w->n = share_of(cfg.conns, w->id);
	cs = calloc((size_t)w->n, sizeof(*cs));
	fds = calloc((size_t)w->n, sizeof(*fds));
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->snd = calloc((size_t)cfg.senders, sizeof(*w->snd));
	w->conns = cs;
	if (!cs || !fds || !w->snd || w->evfd < 0) {
		w->setup_failed = w->n;
		w->setup_err = ENOMEM;
	} else if (!worker_connect(w, fds)) {
		worker_arm(w, w->evfd, EPOLLIN, NULL, EPOLL_CTL_ADD);
		for (int i = 0; i < w->n; i++) {
			struct chat_conn *c = &cs[i];
			uint32_t idx = (uint32_t)(i * cfg.threads + w->id);
			if (chat_conn_init(c, idx, fds[i]) < 0) {
				w->setup_failed = w->n;
				w->setup_err = ENOMEM;
				break;
			}
			if (c->snd) {
				c->snd->owner = w->id;
				w->snd[w->nsnd++] = c->snd;
			}
			worker_arm(w, c->fd, EPOLLIN, c, EPOLL_CTL_ADD);
			if (cfg.preamble && *cfg.preamble)
				chat_queue_expanded(w, c, cfg.preamble);
			c->ready = nsteps == 0;
			chat_flush(w, c);
		}
	}
	free(fds);
	pthread_barrier_wait(&barrier); /* connected */
	pthread_barrier_wait(&barrier); /* the main thread looked */
	if (!stopped() && !w->setup_failed)
		chat_loop(w);
	return NULL;
}

/* Handshake and send format from --proto and the overrides. */
static int chat_prepare(void)
{
	const char *pre = "", *fmt = "%t";

	switch (cfg.proto) {
	case PROTO_NATTER:
		steps[0] = (struct hs_step){.pat = "*** you are now in #",
		                            .prefix = true,
		                            .send = "/join %r\r\n"};
		steps[1] = (struct hs_step){.pat = "*** you are now in #%r",
		                            .alt = "!!! you are already in",
		                            .prefix = true,
		                            .word = true};
		nsteps = 2;
		break;
	case PROTO_NCAT:
		nsteps = 0;
		break;
	case PROTO_IRC:
		pre = "NICK nb%i\r\nUSER nb%i 0 * :nb%i\r\n";
		steps[0] = (struct hs_step){.pat = " 001 ",
		                            .send = "JOIN #%r\r\n"};
		steps[1] = (struct hs_step){.pat = " 366 "};
		nsteps = 2;
		fmt = "PRIVMSG #%r :%t";
		break;
	}
	if (cfg.ready) {
		steps[0] = (struct hs_step){.pat = cfg.ready};
		nsteps = *cfg.ready ? 1 : 0;
	}
	if (!cfg.preamble)
		cfg.preamble = strdup(pre);
	if (!cfg.send_fmt)
		cfg.send_fmt = strdup(fmt);
	for (int i = 0; i < nsteps; i++)
		steps[i].pat = expand(steps[i].pat, 0, NULL);

	/* the format around %t, %i and %r filled in per sender */
	char *t = strstr(cfg.send_fmt, "%t");
	size_t flen = strlen(cfg.send_fmt);
	if (flen && cfg.send_fmt[flen - 1] == '\n')
		eol = "";
	senders = calloc((size_t)cfg.senders, sizeof(*senders));
	if (!senders)
		return -ENOMEM;
	size_t longest = 0;
	for (long i = 0; i < cfg.senders; i++) {
		struct chat_sender *s = &senders[i];
		char *head = strndup(cfg.send_fmt, (size_t)(t - cfg.send_fmt));
		s->pre = head ? expand(head, i, NULL) : NULL;
		s->post = expand(t + 2, i, NULL);
		free(head);
		if (!s->pre || !s->post)
			return -ENOMEM;
		s->pre_len = strlen(s->pre);
		s->post_len = strlen(s->post);
		if (s->pre_len + s->post_len > longest)
			longest = s->pre_len + s->post_len;
		if (cfg.window) {
			s->ring = calloc((size_t)cfg.window, sizeof(*s->ring));
			if (!s->ring)
				return -ENOMEM;
		} else {
			/* the senders' starts spread over one period */
			s->next_ns = period_ns * (uint64_t)i /
			             (uint64_t)cfg.senders;
		}
	}
	/* a token is at most 4 + 3 * 20 + 3 bytes */
	line_max = longest + (size_t)cfg.size + 67 + 2;
	tail_cap = (size_t)cfg.size + 4096;
	return 0;
}

static uint64_t chat_sum_sent(void)
{
	uint64_t n = 0;

	for (long i = 0; i < cfg.senders; i++)
		n += atomic_load_explicit(&senders[i].pub_sent,
		                          memory_order_acquire);
	return n;
}

/* all threads past the end, everything they sent received? */
static bool chat_drained(void)
{
	uint64_t got = 0;

	for (int i = 0; i < nworkers; i++) {
		if (!atomic_load_explicit(&workers[i].past_end,
		                          memory_order_acquire))
			return false;
		got += atomic_load_explicit(&workers[i].pub_received,
		                            memory_order_relaxed);
	}
	return got >= chat_sum_sent() * (uint64_t)(cfg.conns - 1);
}

/* main thread: wait until every member is ready; false if not in time */
static bool chat_wait_ready(uint64_t *took)
{
	uint64_t t0 = now_ns(), deadline = t0 + READY_NS;
	long ready = 0;

	for (;;) {
		ready = 0;
		for (int i = 0; i < nworkers; i++)
			ready += atomic_load_explicit(&workers[i].ready,
			                              memory_order_relaxed);
		if (ready == cfg.conns) {
			*took = now_ns() - t0;
			return true;
		}
		if (now_ns() >= deadline)
			break;
		if (wait_signal(now_ns() + 10 * MSEC)) {
			warnx("interrupted while the members joined");
			return false;
		}
	}
	warnx("only %ld of %ld members got ready within %llu s", ready,
	      cfg.conns, (unsigned long long)(READY_NS / NSEC));
	for (int i = 0; i < nworkers; i++)
		if (*workers[i].hs_last) {
			warnx("a line that did not make a member ready: %s",
			      workers[i].hs_last);
			break;
		}
	return false;
}

static int chat_run(void)
{
	struct hist *h = calloc(1, sizeof(*h));
	struct errs e = {0};
	uint64_t deliveries = 0, took = 0;

	if (!h || chat_prepare() < 0) {
		warnx("cannot start: %s", strerror(ENOMEM));
		return EXIT_SETUP;
	}
	char how[64];
	if (cfg.window)
		snprintf(how, sizeof(how), "window %ld", cfg.window);
	else
		snprintf(how, sizeof(how), "%.1f lines/s each", cfg.rate);
	say("chat: %s, %ld members, %ld senders, %s, proto %s, room #%s, "
	    "%ld-byte text, %ld thread%s, %.1f s warm-up + %.1f s",
	    cfg.peer, cfg.conns, cfg.senders, how, proto_names[cfg.proto],
	    cfg.room, cfg.size, cfg.threads, cfg.threads == 1 ? "" : "s",
	    cfg.warmup, cfg.duration);
	pthread_barrier_init(&barrier, NULL, (unsigned)cfg.threads + 1);
	if (workers_start(chat_worker) < 0) {
		warnx("cannot start: %s", strerror(ENOMEM));
		return EXIT_SETUP;
	}
	pthread_barrier_wait(&barrier);
	bool ok = setup_ok();
	if (!ok)
		atomic_store(&phase, PH_STOP);
	pthread_barrier_wait(&barrier);
	if (ok && !(ok = chat_wait_ready(&took)))
		atomic_store(&phase, PH_STOP);
	if (!ok) {
		workers_join(h, &e, &deliveries);
		return EXIT_SETUP;
	}
	say("chat: %ld members ready in %.3f s", cfg.conns,
	    (double)took / NSEC);
	t_start = now_ns() + SETTLE_NS;
	t_measure = t_start + (uint64_t)(cfg.warmup * NSEC);
	t_end = t_measure + (uint64_t)(cfg.duration * NSEC);
	for (long i = 0; i < cfg.senders; i++)
		senders[i].next_ns += t_start;
	atomic_store_explicit(&phase, PH_RUN, memory_order_release);

	bool intr = wait_signal(t_end);
	if (intr)
		t_stopped = now_ns();
	uint64_t drain_end = now_ns() + DRAIN_NS;
	while (!intr && !chat_drained() && now_ns() < drain_end)
		intr = wait_signal(now_ns() + 5 * MSEC);
	uint64_t drained = now_ns();
	atomic_store(&phase, PH_STOP);
	workers_join(h, &e, &deliveries);

	uint64_t sent = chat_sum_sent(), received = 0, reordered = 0;
	for (int i = 0; i < nworkers; i++) {
		received += workers[i].received;
		reordered += workers[i].reordered;
	}
	uint64_t expected = sent * (uint64_t)(cfg.conns - 1);
	uint64_t lost = expected > received ? expected - received : 0;
	double secs = measured_s();
	double rate = secs > 0 ? (double)deliveries / secs : 0;
	if (!deliveries)
		err_add(&e, "no line was delivered in the measured window");
	say("chat: %" PRIu64 " lines sent, %" PRIu64
	    " deliveries in %.3f s: %.1f deliveries/s",
	    sent, deliveries, secs, rate);
	say("chat: over the whole run %" PRIu64 " deliveries expected, %" PRIu64
	    " received (last after %.3f s of drain): lost %" PRIu64
	    ", reordered %" PRIu64,
	    expected, received,
	    drained > t_end ? (double)(drained - t_end) / NSEC : 0.0, lost,
	    reordered);
	say("chat: latency (us): p50 %.1f p90 %.1f p99 %.1f max %.1f",
	    hist_us(h, 500), hist_us(h, 900), hist_us(h, 990),
	    (double)h->max / 1000);
	say("chat: errors %" PRIu64, e.n);
	err_print(&e);
	fflush(stdout);
	printf("RESULT mode=chat members=%ld senders=%ld sent=%" PRIu64
	       " deliveries=%" PRIu64 " deliveries_per_s=%.1f expected=%" PRIu64
	       " lost=%" PRIu64 " reordered=%" PRIu64
	       " p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f errors=%" PRIu64
	       "\n",
	       cfg.conns, cfg.senders, sent, deliveries, rate, expected, lost,
	       reordered, hist_us(h, 500), hist_us(h, 900), hist_us(h, 990),
	       (double)h->max / 1000, e.n);
	free(h);
	return e.n || lost || reordered ? EXIT_ERRORS : EXIT_OK;
}

/* ---- hold ---- */

/*
 * The connections are held by child processes, each up to the fd limit
 * less some headroom. Each reports over one pipe (records under
 * PIPE_BUF are written whole); the parent closing the control pipe tells
 * them to check their connections, report again and exit. PDEATHSIG
 * ends them if the parent dies.
 */
struct hold_msg {
	int32_t phase; /* 1: connected; 2: checked */
	int32_t a, b, c, err;
};

static void hold_child(int first, int n, int rep, int ctl, uint64_t deadline)
{
	int *fds = calloc((size_t)n, sizeof(*fds)), err = ENOMEM, ok = 0;
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	struct hold_msg m = {.phase = 1};
	char ch;

	if (fds && p)
		ok = connect_many(fds, n, (unsigned)first, deadline, &err);
	m.a = ok;
	m.b = n - ok;
	m.err = err;
	if (write(rep, &m, sizeof(m)) != sizeof(m))
		_exit(1);
	while (read(ctl, &ch, 1) < 0 && errno == EINTR)
		;
	if (!fds || !p)
		_exit(1);
	/* still open? A refusal is a line, then the server's close */
	m = (struct hold_msg){.phase = 2};
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = fds[i], .events = POLLRDHUP};
	poll(p, (nfds_t)n, 0);
	for (int i = 0; i < n; i++) {
		char buf[256];
		if (fds[i] < 0)
			continue;
		if (!(p[i].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			m.a++;
		else if (recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
			m.b++;
		else
			m.c++;
		close(fds[i]);
	}
	if (write(rep, &m, sizeof(m)) != sizeof(m))
		_exit(1);
	_exit(0);
}

/* read nproc records of one phase into sum; how many came */
static int hold_collect(int rep, int nproc, int32_t want, uint64_t deadline,
                        struct hold_msg *sum)
{
	int got = 0;

	*sum = (struct hold_msg){0};
	while (got < nproc && now_ns() < deadline) {
		struct pollfd p[2] = {{.fd = rep, .events = POLLIN},
		                      {.fd = sigfd, .events = POLLIN}};
		if (poll(p, 2, ms_until(deadline, now_ns(), 1000)) <= 0)
			continue;
		if (p[1].revents)
			break;
		struct hold_msg m;
		ssize_t n = read(rep, &m, sizeof(m));
		if (n == 0)
			break; /* every child is gone */
		if (n != sizeof(m) || m.phase != want)
			continue;
		sum->a += m.a;
		sum->b += m.b;
		sum->c += m.c;
		if (!sum->err)
			sum->err = m.err;
		got++;
	}
	return got;
}

static long rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void hold_reap(pid_t *pids, int nproc)
{
	uint64_t deadline = now_ns() + 5 * NSEC;
	int left = nproc;

	while (left && now_ns() < deadline) {
		left = 0;
		for (int i = 0; i < nproc; i++) {
			if (pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) == 0)
				left++;
			else
				pids[i] = 0;
		}
		if (left)
			usleep(10000);
	}
	for (int i = 0; i < nproc; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
}

static int hold_run(void)
{
	long lim = nofile_limit() - FD_HEADROOM;
	int nproc = (int)((cfg.conns + lim - 1) / lim), rep[2], ctl[2];
	long before = 0, after = 0;
	pid_t parent = getpid(), *pids = calloc((size_t)nproc, sizeof(*pids));

	if (lim < 1 || !pids) {
		warnx("no file descriptors to hold connections with");
		return EXIT_SETUP;
	}
	if (cfg.server_pid && (before = rss_kb(cfg.server_pid)) < 0) {
		warnx("cannot read VmRSS of process %ld", cfg.server_pid);
		return EXIT_SETUP;
	}
	say("hold: %s, %ld connections from %ld source address%s in %d "
	    "process%s",
	    cfg.peer, cfg.conns, cfg.bind_src ? cfg.sources : 1,
	    cfg.bind_src && cfg.sources > 1 ? "es" : "", nproc,
	    nproc == 1 ? "" : "es");
	if (pipe2(rep, O_CLOEXEC) < 0 || pipe2(ctl, O_CLOEXEC) < 0) {
		warnx("pipe: %s", strerror(errno));
		return EXIT_SETUP;
	}
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(cfg.duration * NSEC);
	fflush(stdout);
	fflush(stderr);
	for (int i = 0, first = 0; i < nproc; i++) {
		int share = (int)(cfg.conns / nproc + (i < cfg.conns % nproc));
		pids[i] = fork();
		if (pids[i] == 0) {
			close(rep[0]);
			close(ctl[1]);
			close(sigfd);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(1);
			hold_child(first, share, rep[1], ctl[0], deadline);
		}
		if (pids[i] < 0) {
			warnx("fork: %s", strerror(errno));
			close(ctl[1]);
			hold_reap(pids, i);
			return EXIT_SETUP;
		}
		first += share;
	}
	close(rep[1]);
	close(ctl[0]);

	struct hold_msg m1, m2;
	int got = hold_collect(rep[0], nproc, 1, deadline + 5 * NSEC, &m1);
	uint64_t t1 = now_ns();
	bool intr = got < nproc;
	say("hold: %d connected in %.3f s, %d failed%s%s", m1.a,
	    (double)(t1 - t0) / NSEC, m1.b + (int)(cfg.conns - (m1.a + m1.b)),
	    m1.err ? ": " : "", m1.err ? strerror(m1.err) : "");
	if (!intr && m1.a == 0) {
		warnx("could not connect to %s: %s", cfg.peer,
		      strerror(m1.err));
		close(ctl[1]);
		hold_reap(pids, nproc);
		return EXIT_SETUP;
	}
	if (!intr)
		intr = wait_signal(now_ns() + NSEC);
	if (cfg.server_pid && (after = rss_kb(cfg.server_pid)) < 0)
		after = 0;
	if (!intr)
		wait_signal(now_ns() + (uint64_t)(cfg.hold_time * NSEC));
	close(ctl[1]);
	hold_collect(rep[0], nproc, 2, now_ns() + 10 * NSEC, &m2);
	close(rep[0]);
	hold_reap(pids, nproc);

	long held = m2.a, refused = m2.b;
	long failed = cfg.conns - held - refused;
	long per_conn = held && cfg.server_pid ? (after - before) * 1024 / held
	                                       : 0;
	if (cfg.server_pid)
		say("hold: server RSS %ld kB before, %ld kB after: %ld bytes "
		    "per connection",
		    before, after, per_conn);
	say("hold: after holding %.1f s: %ld held, %ld refused, %ld failed",
	    cfg.hold_time, held, refused, failed);
	fflush(stdout);
	printf("RESULT mode=hold target=%ld held=%ld refused=%ld failed=%ld "
	       "rss_before_kb=%ld rss_after_kb=%ld rss_per_conn_bytes=%ld "
	       "errors=%ld\n",
	       cfg.conns, held, refused, failed, before, after, per_conn,
	       cfg.conns - held);
	return held == cfg.conns ? EXIT_OK : EXIT_ERRORS;
}

/* ---- churn ---- */

enum { CS_IDLE, CS_CONNECTING, CS_ECHO };

struct churn_slot {
	int fd, state;
	uint32_t id, gen; /* gen: stale epoll events are told apart */
	uint64_t seq, t0, retry_at;
	size_t tx_off, rx_off;
};

static void churn_close(struct worker *w, struct churn_slot *s, bool failed)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->state = CS_IDLE;
	s->gen++;
	s->seq++;
	s->retry_at = failed ? now_ns() + RETRY_NS : 0;
	(void)w;
}

static void churn_fail(struct worker *w, struct churn_slot *s,
                       const char *what, int err)
{
	err_add(&w->errs, "churn: slot %u: %s%s%s", s->id, what,
	        err ? ": " : "", err ? strerror(err) : "");
	churn_close(w, s, true);
}

static void churn_arm(struct worker *w, struct churn_slot *s, uint32_t events,
                      int op)
{
	struct epoll_event e = {
	    .events = events,
	    .data.u64 = (uint64_t)s->gen << 32 |
	                (uint32_t)(s - (struct churn_slot *)w->conns),
	};

	epoll_ctl(w->epfd, op, s->fd, &e);
}

static void churn_write(struct worker *w, struct churn_slot *s)
{
	size_t len = (size_t)cfg.size - s->tx_off;

	if (len > WBUF_SIZE)
		len = WBUF_SIZE;
	msg_fill(w->wbuf, s->id, s->seq, s->tx_off, len);
	ssize_t n = send(s->fd, w->wbuf, len, MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		churn_fail(w, s, "write", errno);
		return;
	}
	if (n > 0)
		s->tx_off += (size_t)n;
	churn_arm(w, s,
	          s->tx_off < (size_t)cfg.size ? EPOLLIN | EPOLLOUT : EPOLLIN,
	          EPOLL_CTL_MOD);
}

static void churn_connected(struct worker *w, struct churn_slot *s)
{
	uint64_t now = now_ns();
	int err = sock_error(s->fd);

	if (err) {
		churn_fail(w, s, "connect", -err);
		return;
	}
	if (in_window(now))
		hist_add(w->hist, now - s->t0);
	s->state = CS_ECHO;
	churn_write(w, s);
}

static void churn_start(struct worker *w, struct churn_slot *s)
{
	s->tx_off = s->rx_off = 0;
	s->fd = sock_open(w->src_next);
	w->src_next += (unsigned)cfg.threads;
	if (s->fd < 0) {
		int err = -s->fd;
		s->fd = -1;
		churn_fail(w, s, "socket", err);
		return;
	}
	s->t0 = now_ns();
	int rc = sock_connect(s->fd);
	if (rc && rc != -EINPROGRESS) {
		churn_fail(w, s, "connect", -rc);
		return;
	}
	s->state = CS_CONNECTING;
	churn_arm(w, s, EPOLLOUT, EPOLL_CTL_ADD);
	if (rc == 0)
		churn_connected(w, s);
}

static void churn_read(struct worker *w, struct churn_slot *s)
{
	for (;;) {
		ssize_t n = recv(s->fd, w->rbuf, RBUF_SIZE, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			churn_fail(w, s,
			           n ? "read" : "closed before the echo came",
			           n ? errno : 0);
			return;
		}
		size_t k = (size_t)n;
		if (s->rx_off + k > s->tx_off) {
			churn_fail(w, s, "more bytes came back than were sent",
			           0);
			return;
		}
		long bad = msg_check(w->rbuf, s->id, s->seq, s->rx_off, k);
		if (bad >= 0) {
			err_add(&w->errs,
			        "churn: slot %u, connection %" PRIu64
			        ", byte %ld: got 0x%02x, want 0x%02x",
			        s->id, s->seq, bad,
			        w->rbuf[(size_t)bad - s->rx_off],
			        msg_byte(s->id, s->seq, (size_t)bad));
			churn_close(w, s, true);
			return;
		}
		s->rx_off += k;
		if (s->rx_off == (size_t)cfg.size) {
			/* the client closes first, with nothing unread */
			if (in_window(now_ns()))
				w->count++;
			churn_close(w, s, false);
			churn_start(w, s);
			return;
		}
	}
}

static void *churn_worker(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[256];
	struct churn_slot *ss;

	w->n = share_of(cfg.slots, w->id);
	w->src_next = (unsigned)w->id;
	ss = w->conns = calloc((size_t)w->n, sizeof(*ss));
	if (!ss)
		return NULL;
	for (int i = 0; i < w->n; i++) {
		ss[i].fd = -1;
		ss[i].id = (uint32_t)(i * cfg.threads + w->id);
		churn_start(w, &ss[i]);
	}
	for (;;) {
		uint64_t now = now_ns(), due = t_end;
		if (now >= t_end || stopped())
			break;
		for (int i = 0; i < w->n; i++) {
			struct churn_slot *s = &ss[i];
			if (s->state != CS_IDLE)
				continue;
			if (s->retry_at <= now)
				churn_start(w, s);
			else if (s->retry_at < due)
				due = s->retry_at;
		}
		int k = epoll_wait(w->epfd, ev, 256, ms_until(due, now, 100));
		for (int j = 0; j < k; j++) {
			struct churn_slot *s = &ss[(uint32_t)ev[j].data.u64];
			if ((uint32_t)(ev[j].data.u64 >> 32) != s->gen ||
			    s->fd < 0)
				continue;
			if (s->state == CS_CONNECTING)
				churn_connected(w, s);
			else if (ev[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				churn_read(w, s);
			else if (ev[j].events & EPOLLOUT)
				churn_write(w, s);
		}
	}
	for (int i = 0; i < w->n; i++)
		if (ss[i].fd >= 0)
			close(ss[i].fd);
	free(ss);
	return NULL;
}

static int churn_run(void)
{
	struct hist *h = calloc(1, sizeof(*h));
	struct errs e = {0};
	uint64_t conns = 0;

	say("churn: %s, %ld slots, %ld-byte echo, %ld source address%s, "
	    "%ld thread%s, %.1f s warm-up + %.1f s",
	    cfg.peer, cfg.slots, cfg.size, cfg.bind_src ? cfg.sources : 1,
	    cfg.bind_src && cfg.sources > 1 ? "es" : "", cfg.threads,
	    cfg.threads == 1 ? "" : "s", cfg.warmup, cfg.duration);
	t_start = now_ns();
	t_measure = t_start + (uint64_t)(cfg.warmup * NSEC);
	t_end = t_measure + (uint64_t)(cfg.duration * NSEC);
	if (!h || workers_start(churn_worker) < 0) {
		warnx("cannot start: %s", strerror(ENOMEM));
		return EXIT_SETUP;
	}
	if (wait_signal(t_end)) {
		t_stopped = now_ns();
		atomic_store(&phase, PH_STOP);
	}
	workers_join(h, &e, &conns);

	double secs = measured_s();
	double rate = secs > 0 ? (double)conns / secs : 0;
	if (!conns)
		err_add(&e, "no connection completed in the measured window");
	say("churn: %" PRIu64 " connections in %.3f s: %.1f conns/s", conns,
	    secs, rate);
	say("churn: connect (us): p50 %.1f p99 %.1f max %.1f", hist_us(h, 500),
	    hist_us(h, 990), (double)h->max / 1000);
	say("churn: errors %" PRIu64, e.n);
	err_print(&e);
	fflush(stdout);
	printf("RESULT mode=churn slots=%ld conns=%" PRIu64
	       " conns_per_s=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f "
	       "errors=%" PRIu64 "\n",
	       cfg.slots, conns, rate, hist_us(h, 500), hist_us(h, 990),
	       (double)h->max / 1000, e.n);
	free(h);
	return e.n ? EXIT_ERRORS : EXIT_OK;
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s echo  -p PORT [-c N] [-D DEPTH] [-s SIZE] [COMMON]\n"
	        "       %s chat  -p PORT [-c N] [-k K] [--rate R | --window W]\n"
	        "                  [--proto natter|ncat|irc] [--room NAME]\n"
	        "                  [--preamble STR] [--ready STR]\n"
	        "                  [--send-format STR] [-s SIZE] [COMMON]\n"
	        "       %s hold  -p PORT [-c N] [--sources S]\n"
	        "                  [--server-pid PID] [--hold-time S]\n"
	        "       %s churn -p PORT [-P SLOTS] [--sources S] [-s SIZE]\n"
	        "\n"
	        "A load generator for natterd and its peers; it checks all it\n"
	        "receives and ends with one RESULT line.\n"
	        "\n"
	        "  -H, --host ADDR        numeric IPv4 or IPv6 (127.0.0.1)\n"
	        "  -p, --port PORT        server port\n"
	        "  -U, --unix PATH        a unix socket instead of TCP\n"
	        "  -c, --connections N    connections or members (50)\n"
	        "  -t, --duration S       measured seconds (10; hold: the\n"
	        "                         time allowed for connecting)\n"
	        "  -W, --warmup S         seconds of load before (1)\n"
	        "  -T, --threads N        threads, each its own epoll (1)\n"
	        "  -D, --depth N          echo: messages in flight (1)\n"
	        "  -s, --size N           bytes: echo 64, chat text 48,\n"
	        "                         churn 16\n"
	        "  -k, --senders K        chat: members that send (1)\n"
	        "      --rate R           chat: lines/s per sender\n"
	        "      --window W         chat: lines in flight per sender\n"
	        "                         (16 without --rate)\n"
	        "      --proto P          chat: natter, ncat or irc\n"
	        "      --room NAME        chat: the room (bench)\n"
	        "      --preamble STR     chat: sent on connect\n"
	        "      --ready STR        chat: ready on a line containing it\n"
	        "      --send-format STR  chat: a line (%%t text, %%i member,\n"
	        "                         %%r room)\n"
	        "      --sources S        hold, churn: from 127.0.0.1..S (1)\n"
	        "      --server-pid PID   hold: measure this process's RSS\n"
	        "      --hold-time S      hold: seconds to hold (2)\n"
	        "  -P, --slots N          churn: connections at once (32)\n"
	        "  -q, --quiet            only the RESULT line\n"
	        "  -h, --help\n",
	        prog, prog, prog, prog);
}

enum {
	OPT_RATE = 256,
	OPT_WINDOW,
	OPT_PROTO,
	OPT_PREAMBLE,
	OPT_READY,
	OPT_SEND_FORMAT,
	OPT_ROOM,
	OPT_SOURCES,
	OPT_SERVER_PID,
	OPT_HOLD_TIME,
	OPT_END,
};

static const struct option longopts[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"unix", required_argument, NULL, 'U'},
    {"connections", required_argument, NULL, 'c'},
    {"duration", required_argument, NULL, 't'},
    {"warmup", required_argument, NULL, 'W'},
    {"threads", required_argument, NULL, 'T'},
    {"depth", required_argument, NULL, 'D'},
    {"size", required_argument, NULL, 's'},
    {"senders", required_argument, NULL, 'k'},
    {"rate", required_argument, NULL, OPT_RATE},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"proto", required_argument, NULL, OPT_PROTO},
    {"preamble", required_argument, NULL, OPT_PREAMBLE},
    {"ready", required_argument, NULL, OPT_READY},
    {"send-format", required_argument, NULL, OPT_SEND_FORMAT},
    {"room", required_argument, NULL, OPT_ROOM},
    {"sources", required_argument, NULL, OPT_SOURCES},
    {"server-pid", required_argument, NULL, OPT_SERVER_PID},
    {"hold-time", required_argument, NULL, OPT_HOLD_TIME},
    {"slots", required_argument, NULL, 'P'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

#define M_ECHO  (1u << MODE_ECHO)
#define M_CHAT  (1u << MODE_CHAT)
#define M_HOLD  (1u << MODE_HOLD)
#define M_CHURN (1u << MODE_CHURN)
#define M_ALL   (M_ECHO | M_CHAT | M_HOLD | M_CHURN)

/* the modes an option applies to */
static unsigned opt_modes(int opt)
{
	switch (opt) {
	case 'U':
	case 'c':
		return M_ECHO | M_CHAT | M_HOLD;
	case 'W':
	case 'T':
	case 's':
		return M_ECHO | M_CHAT | M_CHURN;
	case 'D':
		return M_ECHO;
	case 'k':
	case OPT_RATE:
	case OPT_WINDOW:
	case OPT_PROTO:
	case OPT_PREAMBLE:
	case OPT_READY:
	case OPT_SEND_FORMAT:
	case OPT_ROOM:
		return M_CHAT;
	case OPT_SOURCES:
		return M_HOLD | M_CHURN;
	case OPT_SERVER_PID:
	case OPT_HOLD_TIME:
		return M_HOLD;
	case 'P':
		return M_CHURN;
	default:
		return M_ALL;
	}
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_secs(const char *s, double lo, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= lo) || v > 7 * 24 * 3600)
		return false;
	*out = v;
	return true;
}

/* \r \n \t \\ in place */
static char *unescape(const char *s)
{
	char *out = strdup(s), *d = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		if (*s == '\\' && strchr("rnt\\", s[1]) && s[1]) {
			s++;
			*d++ = *s == 'r' ? '\r' : *s == 'n' ? '\n' : *s == 't' ? '\t' : '\\';
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
	return out;
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "%s: invalid %s: '%s'\n", prog, what, arg);
	return EXIT_USAGE;
}

static const char *opt_name(int opt)
{
	static char buf[32];

	for (const struct option *o = longopts; o->name; o++)
		if (o->val == opt) {
			snprintf(buf, sizeof(buf), "--%s", o->name);
			return buf;
		}
	return "?";
}

static int parse_addr(const char *host, long port, const char *path)
{
	if (path) {
		struct sockaddr_un *un = (struct sockaddr_un *)&cfg.addr;
		if (strlen(path) >= sizeof(un->sun_path))
			return bad("socket path (too long)", path);
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		cfg.addrlen = sizeof(*un);
		cfg.family = AF_UNIX;
		snprintf(cfg.peer, sizeof(cfg.peer), "%s", path);
		return 0;
	}
	if (!port) {
		fprintf(stderr, "%s: give -p PORT (or -U PATH)\n", prog);
		return EXIT_USAGE;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)&cfg.addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&cfg.addr;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		cfg.addrlen = sizeof(*in);
		cfg.family = AF_INET;
		snprintf(cfg.peer, sizeof(cfg.peer), "%s:%ld", host, port);
		/* a loopback target: sources on 127/8 reach it */
		if ((ntohl(in->sin_addr.s_addr) >> 24) == 127)
			cfg.bind_src = true;
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		cfg.addrlen = sizeof(*in6);
		cfg.family = AF_INET6;
		snprintf(cfg.peer, sizeof(cfg.peer), "[%s]:%ld", host, port);
	} else {
		return bad("address (numeric IPv4 or IPv6 only)", host);
	}
	return 0;
}

/* the rest of the checks, once the mode is known */
static int check_args(const bool *given, bool sources_set, const char *host,
                      long port, const char *path)
{
	unsigned m = 1u << cfg.mode;

	for (int o = 0; o < OPT_END; o++)
		if (given[o] && !(opt_modes(o) & m)) {
			const char *name = opt_name(o);
			fprintf(stderr, "%s: %s does not apply to %s\n", prog,
			        name, mode_names[cfg.mode]);
			return EXIT_USAGE;
		}
	if (cfg.rate > 0 && given[OPT_WINDOW]) {
		fprintf(stderr, "%s: give --rate or --window, not both\n",
		        prog);
		return EXIT_USAGE;
	}
	int rc = parse_addr(host, port, path);
	if (rc)
		return rc;
	if (cfg.family != AF_INET || (!sources_set && !cfg.bind_src))
		cfg.bind_src = false;
	else if (cfg.mode == MODE_HOLD || cfg.mode == MODE_CHURN)
		cfg.bind_src = true;
	else
		cfg.bind_src = false;
	if (!cfg.size)
		cfg.size = cfg.mode == MODE_ECHO   ? 64
		           : cfg.mode == MODE_CHAT ? 48
		                                   : 16;
	long n = cfg.mode == MODE_CHURN ? cfg.slots : cfg.conns;
	if (cfg.threads > n)
		cfg.threads = n;
	if (cfg.mode == MODE_CHAT) {
		if (cfg.conns < 2 || cfg.senders > cfg.conns) {
			fprintf(stderr,
			        "%s: chat needs 2 members or more, and at "
			        "most as many senders\n",
			        prog);
			return EXIT_USAGE;
		}
		if (cfg.send_fmt && (!strstr(cfg.send_fmt, "%t") ||
		                     strstr(strstr(cfg.send_fmt, "%t") + 2,
		                            "%t")))
			return bad("send format (give %t once)", cfg.send_fmt);
		if (cfg.rate > 0) {
			cfg.window = 0;
			period_ns = (uint64_t)(1e9 / cfg.rate);
			if (!period_ns)
				period_ns = 1;
		} else if (!cfg.window) {
			cfg.window = 16;
		}
	}
	return 0;
}

/* 0, or an exit status with *stop set */
static int parse_args(int argc, char **argv, bool *stop)
{
	static bool given[OPT_END];
	const char *host = "127.0.0.1", *path = NULL;
	long port = 0, v;
	bool sources_set = false;
	int opt;

	*stop = true;
	cfg.conns = 50;
	cfg.duration = 10;
	cfg.warmup = 1;
	cfg.threads = 1;
	cfg.depth = 1;
	cfg.senders = 1;
	cfg.sources = 1;
	cfg.slots = 32;
	cfg.hold_time = 2;
	cfg.room = "bench";
	while ((opt = getopt_long(argc, argv, "H:p:U:c:t:W:T:D:s:k:P:qh",
	                          longopts, NULL)) != -1) {
		if (opt > 0 && opt < OPT_END)
			given[opt] = true;
		switch (opt) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			if (!parse_long(optarg, 1, 65535, &port))
				return bad("port", optarg);
			break;
		case 'U':
			path = optarg;
			break;
		case 'c':
			if (!parse_long(optarg, 1, 10000000, &cfg.conns))
				return bad("connection count", optarg);
			break;
		case 't':
			if (!parse_secs(optarg, 0.001, &cfg.duration))
				return bad("duration", optarg);
			break;
		case 'W':
			if (!parse_secs(optarg, 0, &cfg.warmup))
				return bad("warm-up", optarg);
			break;
		case 'T':
			if (!parse_long(optarg, 1, MAX_THREADS, &cfg.threads))
				return bad("thread count", optarg);
			break;
		case 'D':
			if (!parse_long(optarg, 1, 65536, &cfg.depth))
				return bad("depth", optarg);
			break;
		case 's':
			if (!parse_long(optarg, 1, 1 << 20, &cfg.size))
				return bad("size", optarg);
			break;
		case 'k':
			if (!parse_long(optarg, 1, 100000, &cfg.senders))
				return bad("sender count", optarg);
			break;
		case OPT_RATE:
			if (!parse_secs(optarg, 0, &cfg.rate) || !(cfg.rate > 0))
				return bad("rate", optarg);
			break;
		case OPT_WINDOW:
			if (!parse_long(optarg, 1, 1 << 20, &cfg.window))
				return bad("window", optarg);
			break;
		case OPT_PROTO:
			for (v = 0; v < 3; v++)
				if (!strcmp(optarg, proto_names[v]))
					break;
			if (v == 3)
				return bad("protocol", optarg);
			cfg.proto = (enum proto)v;
			break;
		case OPT_PREAMBLE:
			cfg.preamble = unescape(optarg);
			break;
		case OPT_READY:
			cfg.ready = unescape(optarg);
			break;
		case OPT_SEND_FORMAT:
			cfg.send_fmt = unescape(optarg);
			break;
		case OPT_ROOM:
			if (!*optarg || strlen(optarg) > 200 ||
			    strpbrk(optarg, " \r\n%"))
				return bad("room", optarg);
			cfg.room = optarg;
			break;
		case OPT_SOURCES:
			if (!parse_long(optarg, 1, 254, &cfg.sources))
				return bad("source count", optarg);
			sources_set = true;
			break;
		case OPT_SERVER_PID:
			if (!parse_long(optarg, 1, INT_MAX, &cfg.server_pid))
				return bad("pid", optarg);
			break;
		case OPT_HOLD_TIME:
			if (!parse_secs(optarg, 0, &cfg.hold_time))
				return bad("hold time", optarg);
			break;
		case 'P':
			if (!parse_long(optarg, 1, 1000000, &cfg.slots))
				return bad("slot count", optarg);
			break;
		case 'q':
			cfg.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (v = 0; v < 4; v++)
		if (!strcmp(argv[optind], mode_names[v]))
			break;
	if (v == 4)
		return bad("mode", argv[optind]);
	cfg.mode = (enum mode)v;
	int rc = check_args(given, sources_set, host, port, path);
	if (rc)
		return rc;
	*stop = false;
	return 0;
}

int main(int argc, char **argv)
{
	bool stop;
	sigset_t sigs;

	int rc = parse_args(argc, argv, &stop);
	if (stop)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* every thread inherits the mask; the main thread reads sigfd */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	nofile_raise();
	pat_init();

	long need = (cfg.mode == MODE_CHURN ? cfg.slots : cfg.conns) +
	            FD_HEADROOM;
	if (cfg.mode != MODE_HOLD && need > nofile_limit()) {
		warnx("%ld connections need more file descriptors than the "
		      "limit of %ld",
		      need - FD_HEADROOM, nofile_limit());
		return EXIT_SETUP;
	}
	if (sigfd < 0 || (rc = probe()) < 0) {
		warnx("cannot connect to %s: %s", cfg.peer,
		      strerror(sigfd < 0 ? errno : -rc));
		return EXIT_SETUP;
	}
	switch (cfg.mode) {
	case MODE_ECHO:
		return echo_run();
	case MODE_CHAT:
		return chat_run();
	case MODE_HOLD:
		return hold_run();
	case MODE_CHURN:
		return churn_run();
	}
	return EXIT_USAGE;
}
