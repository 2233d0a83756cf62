/*
 * The libnatter end-to-end helpers (see natter_test.h).
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "natter_test.h"
#include "nt_chat.h"

/* the lowest port the kernel hands out by itself (to clients, to port 0) */
static unsigned ephemeral_low(void)
{
	unsigned lo = 32768, hi;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");

	if (f) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	return lo;
}

/* a port below the ephemeral range that address has free just now */
static uint16_t low_port(const char *address)
{
	static unsigned seed;
	unsigned lo = 10000, hi = ephemeral_low();

	if (!seed)
		seed = (unsigned)getpid() * 2654435761u ^
		       (unsigned)nt_test_now_ms();
	if (hi <= lo + 1000)
		return 0; /* an odd range: let the kernel choose */
	for (int tries = 0; tries < 100; tries++) {
		seed = seed * 1103515245u + 12345u;
		uint16_t port = (uint16_t)(lo + (seed >> 8) % (hi - lo));
		int fd = nt_listen_tcp(address, &port);
		if (fd >= 0) {
			close(fd);
			return port;
		}
	}
	return 0;
}

/*
 * A port natterd chose (port 0) comes from the ephemeral range, so once
 * natterd is killed any client socket on the machine may take it and a
 * restart on it fails. Tests that restart therefore run natterd on ports
 * below that range, picked here; a bind that still fails (someone took
 * the port in between) is retried: with new ports on a first start, with
 * the same ones, a little later, on a restart.
 */
static void start_flood(struct nt_daemon *d, const char *family,
                        const char *address, uint16_t chat_port,
                        uint16_t echo_port, int rate, int burst)
{
	bool pick = !chat_port && !echo_port;

	for (int tries = 0; tries < 40; tries++) {
		uint16_t chat = chat_port, echo = echo_port;
		if (pick) {
			chat = low_port(address);
			echo = low_port(address);
			if (chat == echo)
				echo = 0;
		}
		if (nt_daemon_spawn(d, NULL, TN_CONF, rate, burst, family,
		                    address, chat, family, address,
		                    echo) == 0) {
			int rc = nt_daemon_wait_ready(d, NT_TEST_READY_MS);
			if (rc == 0)
				return;
			if (rc == -ETIMEDOUT || d->status != 3)
				break;
		}
		nt_sleep_ms(pick ? 0 : 50);
	}
	/* the harness's own start, to fail the test with the log */
	nt_daemon_kill(d);
	nt_daemon_start(d, NULL, TN_CONF, rate, burst, family, address,
	                chat_port, family, address, echo_port);
}

void tn_start(struct nt_daemon *d, const char *family, const char *address,
              uint16_t chat_port, uint16_t echo_port)
{
	start_flood(d, family, address, chat_port, echo_port, 10000, 100000);
}

void tn_start_flood(struct nt_daemon *d, const char *family,
                    const char *address, int rate, int burst)
{
	start_flood(d, family, address, 0, 0, rate, burst);
}

void tn_restart(struct nt_daemon *d, const char *family, const char *address)
{
	uint16_t chat = nt_daemon_port(d, "chat");
	uint16_t echo = nt_daemon_port(d, "echo");

	nt_daemon_kill(d);
	tn_start(d, family, address, chat, echo);
}

/* ---- the recorder ---- */

void tn_rec_init(struct tn_rec *r, bool record_lines)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->record_lines = record_lines;
}

void tn_rec_free(struct tn_rec *r)
{
	for (int i = 0; i < r->n_lines; i++)
		free(r->lines[i]);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
}

static void rec_connected(natter_client *c, int n, void *data)
{
	struct tn_rec *r = data;

	pthread_mutex_lock(&r->lock);
	r->connected = n;
	r->t_connected = nt_test_now_ms();
	snprintf(r->peer, sizeof(r->peer), "%s", natter_client_peer(c));
	snprintf(r->nick, sizeof(r->nick), "%s", natter_client_nick(c));
	snprintf(r->room, sizeof(r->room), "%s", natter_client_room(c));
	pthread_mutex_unlock(&r->lock);
}

static void rec_disconnected(natter_client *c, int err, const char *reason,
                             void *data)
{
	struct tn_rec *r = data;

	(void)c;
	pthread_mutex_lock(&r->lock);
	r->disconnected++;
	r->disc_err = err;
	r->t_disconnected = nt_test_now_ms();
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	pthread_mutex_unlock(&r->lock);
	if (r->on_disconnected)
		r->on_disconnected(r);
}

static void rec_reconnecting(natter_client *c, int attempt, int delay_ms,
                             int err, void *data)
{
	struct tn_rec *r = data;

	(void)c;
	pthread_mutex_lock(&r->lock);
	if (r->n_rc < TN_MAX_RC) {
		r->rc[r->n_rc].attempt = attempt;
		r->rc[r->n_rc].delay = delay_ms;
		r->rc[r->n_rc].err = err;
		r->rc[r->n_rc].t = nt_test_now_ms();
		r->n_rc++;
	}
	if (r->gate_attempt && attempt == r->gate_attempt) {
		/* hold the client here until the test is ready for it */
		r->at_gate = true;
		uint64_t end = nt_test_now_ms() + 30000;
		while (!r->gate_open && nt_test_now_ms() < end) {
			pthread_mutex_unlock(&r->lock);
			nt_sleep_ms(2);
			pthread_mutex_lock(&r->lock);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

static void rec_gave_up(natter_client *c, int err, void *data)
{
	struct tn_rec *r = data;

	(void)c;
	pthread_mutex_lock(&r->lock);
	r->gave_up++;
	r->gave_up_err = err;
	pthread_mutex_unlock(&r->lock);
}

static void rec_line(natter_client *c, const struct natter_line *l, void *data)
{
	struct tn_rec *r = data;

	(void)c;
	pthread_mutex_lock(&r->lock);
	if (r->n_lines < TN_MAX_LINES) {
		char *s = strndup(l->raw, l->raw_len);
		ck_assert_ptr_nonnull(s);
		r->lines[r->n_lines++] = s;
	}
	pthread_mutex_unlock(&r->lock);
}

void tn_rec_options(struct tn_rec *r, struct natter_options *o)
{
	o->cb.connected = rec_connected;
	o->cb.disconnected = rec_disconnected;
	o->cb.reconnecting = rec_reconnecting;
	o->cb.gave_up = rec_gave_up;
	o->cb.line = r->record_lines ? rec_line : NULL;
	o->data = r;
}

void tn_gate_open(struct tn_rec *r)
{
	pthread_mutex_lock(&r->lock);
	r->gate_open = true;
	pthread_mutex_unlock(&r->lock);
}

void tn_options(struct natter_options *o, const char *host, uint16_t port,
                char portbuf[8])
{
	natter_options_init(o);
	snprintf(portbuf, 8, "%u", port);
	o->host = host;
	o->port = portbuf;
	o->send_rate = 0;
	o->ping_interval_ms = 0;
	o->connect_timeout_ms = 5000;
	o->reconnect_initial_ms = 20;
	o->reconnect_max_ms = 200;
	o->pong_timeout_ms = 5000;
}

/* ---- waiting ---- */

bool tn_wait(struct tn_rec *r, natter_client *c, tn_pred pred, void *arg,
             int timeout_ms)
{
	uint64_t end = nt_test_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (c)
			natter_client_process(c);
		pthread_mutex_lock(&r->lock);
		bool ok = pred(r, arg);
		pthread_mutex_unlock(&r->lock);
		if (ok)
			return true;
		uint64_t now = nt_test_now_ms();
		if (now >= end)
			return false;
		int t = (int)(end - now) < 20 ? (int)(end - now) : 20;
		if (c) {
			int ct = natter_client_timeout(c);
			if (ct >= 0 && ct < t)
				t = ct;
			struct pollfd p = {.fd = natter_client_fd(c),
			                   .events = POLLIN};
			poll(&p, 1, t);
		} else {
			nt_sleep_ms(t < 2 ? t : 2);
		}
	}
}

bool tn_at_least_connected(struct tn_rec *r, void *n)
{
	return r->connected >= *(int *)n;
}

bool tn_at_least_disconnected(struct tn_rec *r, void *n)
{
	return r->disconnected >= *(int *)n;
}

bool tn_at_least_reconnecting(struct tn_rec *r, void *n)
{
	return r->n_rc >= *(int *)n;
}

bool tn_at_least_lines(struct tn_rec *r, void *n)
{
	return r->n_lines >= *(int *)n;
}

bool tn_at_gate(struct tn_rec *r, void *unused)
{
	(void)unused;
	return r->at_gate;
}

bool tn_gave_up(struct tn_rec *r, void *unused)
{
	(void)unused;
	return r->gave_up > 0;
}

/* ---- a driving thread ---- */

static void *runner_main(void *arg)
{
	struct tn_runner *run = arg;

	run->rc = natter_client_run(run->c);
	return NULL;
}

void tn_run_start(struct tn_runner *run, natter_client *c)
{
	run->c = c;
	run->rc = -12345;
	ck_assert_int_eq(pthread_create(&run->t, NULL, runner_main, run), 0);
}

int tn_run_stop(struct tn_runner *run)
{
	natter_client_stop(run->c);
	pthread_join(run->t, NULL);
	return run->rc;
}

/* ---- the observer ---- */

ssize_t tn_obs_line(int fd, char *buf, size_t size, int timeout_ms)
{
	ssize_t n = nt_read_line(fd, buf, size, timeout_ms);

	if (n < 0)
		return n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return n;
}

bool tn_obs_wait(int fd, const char *s, int timeout_ms)
{
	return nt_chat_wait_line(fd, s, false, timeout_ms);
}

void tn_obs_expect(int fd, const char *const *want, size_t n, int timeout_ms)
{
	char line[2048];

	for (size_t i = 0; i < n;) {
		ck_assert_msg(tn_obs_line(fd, line, sizeof(line), timeout_ms) >
		                  0,
		              "observer: \"%s\" never came", want[i]);
		ck_assert_msg(!strstr(line, "has quit"), "observer: %s", line);
		if (!strncmp(line, "*** ", 4))
			continue;
		ck_assert_str_eq(line, want[i]);
		i++;
	}
}

int tn_observer(const struct nt_daemon *d, const char *nick, const char *room)
{
	int fd = nt_daemon_connect(d, "chat");

	nt_chat_enter(fd, nick, room, 10000);
	return fd;
}

/* ---- black holes ---- */

int tn_blackhole(const char *host, uint16_t *port, int *filler)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int one = 1;

	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(*port);
		len = sizeof(*in);
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, host, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(*port);
		len = sizeof(*in6);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert_msg(bind(fd, (struct sockaddr *)&ss, len) == 0,
	              "bind %s:%u: %s", host, *port, strerror(errno));
	/* backlog 0 holds one connection; with tcp_abort_on_overflow off
	 * (the default) every later SYN is silently dropped */
	ck_assert_int_eq(listen(fd, 0), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*port = ntohs(ss.ss_family == AF_INET ? in->sin_port : in6->sin6_port);
	*filler = nt_connect_tcp(host, *port, 2000);
	ck_assert_int_ge(*filler, 0);
	/* prove it: a second connect must hang */
	int probe =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(probe, 0);
	int rc = connect(probe, (struct sockaddr *)&ss, len);
	ck_assert(rc < 0 && errno == EINPROGRESS);
	struct pollfd p = {.fd = probe, .events = POLLOUT};
	ck_assert_msg(poll(&p, 1, 300) == 0,
	              "%s:%u is no black hole on this kernel", host, *port);
	close(probe);
	return fd;
}

/* ---- fds ---- */

int tn_fd_count(void)
{
	return nt_proc_fd_count(getpid());
}

void tn_fd_snapshot(unsigned char before[TN_FD_MAX])
{
	memset(before, 0, TN_FD_MAX);
	for (int fd = 0; fd < TN_FD_MAX; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			before[fd] = 1;
}

int tn_fd_new_without_cloexec(const unsigned char before[TN_FD_MAX])
{
	int bad = 0;

	for (int fd = 0; fd < TN_FD_MAX; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !before[fd] && !(fl & FD_CLOEXEC))
			bad++;
	}
	return bad;
}
