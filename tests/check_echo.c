/*
 * End-to-end tests of the echo service: the real natterd on loopback ports
 * chosen at run time, over IPv4, IPv6, dual-stack and unix sockets. Every
 * byte sent is compared with what comes back.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nt_test.h"
#include "run_suite.h"

#define MIB (1024 * 1024)

/*
 * The usual daemon: two workers, no per-IP limit (every client comes from
 * 127.0.0.1), small output bound, one IPv4 echo listener named "echo".
 */
#define ECHO_CONF                                                              \
	"workers = 2;\n"                                                       \
	"max_connections = 1000;\n"                                            \
	"limits = { per_ip = 0; max_output = 65536; };\n"                      \
	"timeouts = { idle = 120; write = 120; shutdown_grace = 1; };\n"       \
	"listeners = ( { name = \"echo\"; service = \"echo\"; "                \
	"family = \"ipv4\"; address = \"127.0.0.1\"; port = 0; } );\n"

static struct nt_daemon d;

static void teardown(void)
{
	nt_daemon_cleanup(&d);
}

/* first offset where a and b differ, for failure messages */
static size_t first_diff(const unsigned char *a, const unsigned char *b,
                         size_t n)
{
	size_t i = 0;

	while (i < n && a[i] == b[i])
		i++;
	return i;
}

static void stop_ok(void)
{
	int code = nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS);

	if (code != 0)
		nt_daemon_dump_log(&d);
	ck_assert_int_eq(code, 0);
}

/* ---- data integrity ----------------------------------------------------- */

/*
 * Echo is binary safe: NUL, CR, LF, IAC (0xff) and every other byte come
 * back unchanged, whether sent in one write or one byte per segment.
 */
START_TEST(test_all_byte_values)
{
	unsigned char out[256], in[256];
	int one = 1;

	for (int i = 0; i < 256; i++)
		out[i] = (unsigned char)i;
	nt_daemon_start(&d, NULL, ECHO_CONF);
	int fd = nt_daemon_connect(&d, "echo");

	ck_assert_int_eq(nt_echo_check(fd, out, sizeof(out), 5000), 0);

	/* descending, one byte per segment: no reassembly may reorder them */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (int i = 0; i < 256; i++) {
		out[i] = (unsigned char)(255 - i);
		ck_assert_int_eq(nt_write_all(fd, &out[i], 1, 5000), 0);
	}
	ck_assert_int_eq(nt_read_exact(fd, in, sizeof(in), 5000), 256);
	ck_assert_msg(memcmp(in, out, sizeof(in)) == 0,
	              "byte %zu differs: sent 0x%02x, got 0x%02x",
	              first_diff(in, out, 256), out[first_diff(in, out, 256)],
	              in[first_diff(in, out, 256)]);
	close(fd);
	stop_ok();
}
END_TEST

/*
 * 8 MiB, far more than max_output and the socket buffers: the daemon must
 * keep reading and writing as the client does both at once.
 */
START_TEST(test_large_random)
{
	const size_t n = 8 * MIB;
	unsigned char *out = malloc(n), *in = malloc(n);

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(in);
	nt_fill_random(out, n, 8);
	nt_daemon_start(&d, NULL, ECHO_CONF);
	int fd = nt_daemon_connect(&d, "echo");

	ssize_t got = nt_exchange(fd, out, n, in, n, 0, 40000);
	ck_assert_msg(got == (ssize_t)n, "got %zd of %zu bytes back", got, n);
	ck_assert_msg(memcmp(in, out, n) == 0, "echo differs at byte %zu",
	              first_diff(in, out, n));
	close(fd);
	free(out);
	free(in);
	stop_ok();
}
END_TEST

/*
 * Half-close: after the client's FIN, everything it sent still comes back,
 * then the daemon closes too (EOF, not a reset, not a hang).
 */
START_TEST(test_half_close)
{
	const size_t n = 1 * MIB;
	unsigned char *out = malloc(n), *in = malloc(n + 1);

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(in);
	nt_fill_random(out, n, 1);
	nt_daemon_start(&d, NULL, ECHO_CONF);
	int fd = nt_daemon_connect(&d, "echo");

	/* room for one more byte: nt_exchange returns only at EOF */
	ssize_t got = nt_exchange(fd, out, n, in, n + 1, NT_SHUT_WR, 20000);
	ck_assert_msg(got == (ssize_t)n, "got %zd of %zu bytes before EOF (%s)",
	              got, n, got < 0 ? strerror((int)-got) : "no error");
	ck_assert_msg(memcmp(in, out, n) == 0, "echo differs at byte %zu",
	              first_diff(in, out, n));
	close(fd);
	free(out);
	free(in);
	stop_ok();
}
END_TEST

/* ---- many clients ------------------------------------------------------- */

#define N_CLIENTS  200
#define CLIENT_LEN 4096

struct client {
	int fd;
	size_t sent, got;
	unsigned char out[CLIENT_LEN], in[CLIENT_LEN];
};

/* one poll loop drives every client's writes and reads until all are done */
static void run_clients(struct client *c, size_t n, int timeout_ms)
{
	struct pollfd *p = calloc(n, sizeof(*p));
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	size_t done = 0;

	ck_assert_ptr_nonnull(p);
	while (done < n) {
		ck_assert_msg(nt_test_now_ms() < deadline,
		              "only %zu of %zu clients got their echo in time",
		              done, n);
		for (size_t i = 0; i < n; i++) {
			p[i].fd = c[i].got == CLIENT_LEN ? -1 : c[i].fd;
			p[i].events =
			    (short)(POLLIN |
			            (c[i].sent < CLIENT_LEN ? POLLOUT : 0));
		}
		int r = poll(p, n, 100);
		ck_assert_msg(r >= 0 || errno == EINTR, "poll: %s",
		              strerror(errno));
		for (size_t i = 0; r > 0 && i < n; i++) {
			struct client *k = &c[i];
			if (p[i].revents & POLLOUT) {
				ssize_t w =
				    send(k->fd, k->out + k->sent,
				         CLIENT_LEN - k->sent, MSG_NOSIGNAL);
				ck_assert_msg(w >= 0 || errno == EAGAIN,
				              "client %zu: send: %s", i,
				              strerror(errno));
				k->sent += w > 0 ? (size_t)w : 0;
			}
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t g = recv(k->fd, k->in + k->got,
				                 CLIENT_LEN - k->got, 0);
				ck_assert_msg(g != 0,
				              "client %zu: EOF after %zu bytes",
				              i, k->got);
				ck_assert_msg(g > 0 || errno == EAGAIN,
				              "client %zu: recv: %s", i,
				              strerror(errno));
				k->got += g > 0 ? (size_t)g : 0;
				if (k->got == CLIENT_LEN)
					done++;
			}
		}
	}
	free(p);
}

/*
 * 200 clients connected at once, each with its own data: the daemon keeps
 * every connection's bytes apart, and gives back every fd afterwards.
 */
START_TEST(test_many_clients)
{
	struct client *c = calloc(N_CLIENTS, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	nt_daemon_start(&d, NULL, ECHO_CONF);
	int fds0 = nt_proc_fd_count(d.pid);
	ck_assert_int_gt(fds0, 0);

	for (size_t i = 0; i < N_CLIENTS; i++) {
		nt_fill_random(c[i].out, CLIENT_LEN, i + 1);
		c[i].fd = nt_daemon_connect(&d, "echo");
	}
	run_clients(c, N_CLIENTS, 30000);
	for (size_t i = 0; i < N_CLIENTS; i++) {
		ck_assert_msg(memcmp(c[i].in, c[i].out, CLIENT_LEN) == 0,
		              "client %zu got other data at byte %zu", i,
		              first_diff(c[i].in, c[i].out, CLIENT_LEN));
		close(c[i].fd);
	}

	/* connections are torn down asynchronously: wait for the fds */
	int fds = -1;
	for (int i = 0; i < 500; i++) {
		fds = nt_proc_fd_count(d.pid);
		if (fds <= fds0 + 2)
			break;
		nt_sleep_ms(10);
	}
	ck_assert_msg(fds <= fds0 + 2,
	              "daemon had %d fds before the clients, %d after", fds0,
	              fds);
	free(c);
	stop_ok();
}
END_TEST

/* ---- back-pressure ------------------------------------------------------ */

static long sysctl_max(const char *path)
{
	long a, b, c = -1;
	FILE *f = fopen(path, "re");

	if (f) {
		if (fscanf(f, "%ld %ld %ld", &a, &b, &c) != 3)
			c = -1;
		fclose(f);
	}
	return c > 0 ? c : 8 * MIB;
}

/*
 * A client that sends but never reads: the daemon must stop reading from it
 * once max_output is queued (TCP back-pressure), not buffer without bound,
 * and meanwhile serve everyone else as usual.
 */
START_TEST(test_slow_reader)
{
	unsigned char msg[1024];
	int small = 65536;
	char asan[512];
	const char *asan0 = getenv("ASAN_OPTIONS");
	const char *env[] = {asan, NULL};
	struct nt_daemon_opts o = {.env = env};

	/*
	 * Under AddressSanitizer every buffer the daemon frees waits in a
	 * quarantine, so RSS would follow the bytes that merely passed
	 * through; this test measures what the daemon keeps, so no quarantine
	 * (a no-op for other builds).
	 */
	snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%squarantine_size_mb=0",
	         asan0 ? asan0 : "", asan0 && *asan0 ? ":" : "");
	nt_daemon_start(&d, &o, ECHO_CONF);

	/* warm both workers up so that their first allocations are counted */
	for (int i = 0; i < 4; i++) {
		unsigned char warm[65536];
		nt_fill_random(warm, sizeof(warm), (uint64_t)i + 100);
		int w = nt_daemon_connect(&d, "echo");
		ck_assert_int_eq(nt_echo_check(w, warm, sizeof(warm), 10000),
		                 0);
		close(w);
	}
	nt_sleep_ms(200);
	long rss0 = nt_proc_rss_kb(d.pid);
	ck_assert_int_gt(rss0, 0);

	/*
	 * Small buffers on our side so that the kernel absorbs little; the
	 * daemon's side may still autotune up to the sysctl maxima, so the
	 * stall must come before those plus a margin.
	 */
	int a = nt_daemon_connect(&d, "echo");
	setsockopt(a, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	size_t cap = (size_t)sysctl_max("/proc/sys/net/ipv4/tcp_rmem") +
	             (size_t)sysctl_max("/proc/sys/net/ipv4/tcp_wmem") +
	             16 * MIB;
	bool stalled;
	ssize_t pushed = nt_push_until_stall(a, cap, 1000, 30000, &stalled);
	ck_assert_msg(pushed > 0, "push: %s", strerror((int)-pushed));
	ck_assert_msg(stalled,
	              "the daemon accepted %zd bytes from a client that never "
	              "reads (limit %zu): no back-pressure",
	              pushed, cap);

	long rss1 = nt_proc_rss_kb(d.pid);
	ck_assert_msg(rss1 - rss0 < 8 * 1024,
	              "daemon RSS grew from %ld to %ld kB while holding a "
	              "stalled client (%zd bytes pushed, max_output 64 KiB)",
	              rss0, rss1, pushed);

	/* another client is served with normal latency meanwhile */
	int b = nt_daemon_connect(&d, "echo");
	uint64_t worst = 0, t0 = nt_test_now_ms();
	for (int i = 0; i < 50; i++) {
		uint64_t t = nt_test_now_ms();
		nt_fill_random(msg, sizeof(msg), (uint64_t)i + 1000);
		ck_assert_int_eq(nt_echo_check(b, msg, sizeof(msg), 5000), 0);
		t = nt_test_now_ms() - t;
		worst = t > worst ? t : worst;
	}
	/* loose bounds: sanitizer builds are slow, a blocked worker is not */
	ck_assert_msg(worst < 2000, "slowest echo took %llu ms",
	              (unsigned long long)worst);
	ck_assert_msg(nt_test_now_ms() - t0 < 10000, "50 echoes took %llu ms",
	              (unsigned long long)(nt_test_now_ms() - t0));

	/* the stalled client is still connected, merely not read from */
	int unread = 0;
	ck_assert_int_eq(ioctl(a, FIONREAD, &unread), 0);
	ck_assert_int_gt(unread, 0);
	struct pollfd p = {.fd = a, .events = POLLRDHUP};
	ck_assert_int_eq(poll(&p, 1, 0), 0);

	long rss2 = nt_proc_rss_kb(d.pid);
	fprintf(
	    stderr,
	    "slow reader: %zd bytes pushed before the stall; RSS %ld -> %ld "
	    "-> %ld kB; slowest echo %llu ms\n",
	    pushed, rss0, rss1, rss2, (unsigned long long)worst);
	ck_assert_msg(rss2 - rss0 < 8 * 1024,
	              "daemon RSS grew from %ld to %ld kB", rss0, rss2);
	close(a);
	close(b);
	stop_ok();
}
END_TEST

/* ---- timeouts ----------------------------------------------------------- */

/*
 * A listener's own idle timeout (1 s) closes its silent client, leaves its
 * talking client alone, and does not apply to another listener (global
 * idle timeout 120 s).
 */
START_TEST(test_idle_timeout)
{
	nt_daemon_start(
	    &d, NULL,
	    "workers = 2;\n"
	    "limits = { per_ip = 0; };\n"
	    "timeouts = { idle = 120; shutdown_grace = 1; };\n"
	    "listeners = (\n"
	    "  { name = \"short\"; service = \"echo\"; family = \"ipv4\";\n"
	    "    address = \"127.0.0.1\"; port = 0;\n"
	    "    timeouts = { idle = 1; }; },\n"
	    "  { name = \"long\"; service = \"echo\"; family = \"ipv4\";\n"
	    "    address = \"127.0.0.1\"; port = 0; }\n"
	    ");\n");
	int silent = nt_daemon_connect(&d, "short");
	int talker = nt_daemon_connect(&d, "short");
	int other = nt_daemon_connect(&d, "long");
	uint64_t t0 = nt_test_now_ms(), closed_at = 0;

	/* 3.5 s: the talker sends a byte every 250 ms, well inside 1 s */
	for (int tick = 0; tick < 14; tick++) {
		char c = (char)('a' + tick);
		ck_assert_msg(nt_echo_check(talker, &c, 1, 2000) == 0,
		              "talking client lost after %llu ms",
		              (unsigned long long)(nt_test_now_ms() - t0));
		uint64_t next = t0 + 250 * (uint64_t)(tick + 1);
		while (!closed_at && nt_test_now_ms() < next) {
			struct pollfd p = {.fd = silent, .events = POLLIN};
			uint64_t now = nt_test_now_ms();
			if (poll(&p, 1, (int)(next - now)) == 1) {
				ck_assert_int_eq(nt_expect_eof(silent, 1000),
				                 0);
				closed_at = nt_test_now_ms() - t0;
			}
		}
		if (nt_test_now_ms() < next)
			nt_sleep_ms((int)(next - nt_test_now_ms()));
	}
	ck_assert_msg(closed_at > 0, "silent client still open after %llu ms",
	              (unsigned long long)(nt_test_now_ms() - t0));
	ck_assert_msg(closed_at >= 900, "silent client closed after %llu ms",
	              (unsigned long long)closed_at);
	/* the other listener's silent client, idle 3.5 s, is still served */
	ck_assert_int_eq(nt_echo_check(other, "still here", 10, 2000), 0);
	ck_assert_int_eq(nt_echo_check(talker, "and me", 6, 2000), 0);
	close(silent);
	close(talker);
	close(other);
	stop_ok();
}
END_TEST

/* ---- address families --------------------------------------------------- */

START_TEST(test_unix_socket)
{
	struct stat st;

	nt_daemon_start(&d, NULL,
	                "workers = 1;\n"
	                "listeners = (\n"
	                "  { name = \"u600\"; service = \"echo\"; family = "
	                "\"unix\";\n"
	                "    path = \"@DIR@/a.sock\"; mode = \"0600\"; },\n"
	                "  { name = \"u666\"; service = \"echo\"; family = "
	                "\"unix\";\n"
	                "    path = \"@DIR@/b.sock\"; mode = \"0666\"; }\n"
	                ");\n");
	const char *p600 = nt_daemon_sock_path(&d, "u600");
	const char *p666 = nt_daemon_sock_path(&d, "u666");

	/* the mode is exact: neither the umask nor a default widens it */
	ck_assert_int_eq(stat(p600, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0600, "%s has mode %04o", p600,
	              (unsigned)(st.st_mode & 07777));
	ck_assert_int_eq(stat(p666, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0666, "%s has mode %04o", p666,
	              (unsigned)(st.st_mode & 07777));

	unsigned char buf[100000];
	nt_fill_random(buf, sizeof(buf), 6);
	int a = nt_daemon_connect(&d, "u600");
	int b = nt_daemon_connect(&d, "u666");
	ck_assert_int_eq(nt_echo_check(a, buf, sizeof(buf), 10000), 0);
	ck_assert_int_eq(nt_echo_check(b, buf, sizeof(buf), 10000), 0);
	close(a);
	close(b);
	stop_ok();
}
END_TEST

START_TEST(test_ipv6_loopback)
{
	nt_daemon_start(&d, NULL,
	                "workers = 1;\n"
	                "listeners = ( { name = \"v6\"; service = \"echo\"; "
	                "family = \"ipv6\"; address = \"::1\"; port = 0; "
	                "v6only = true; } );\n");
	const struct nt_test_listener *l = nt_daemon_listener(&d, "v6");

	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(l->family, AF_INET6);
	ck_assert_str_eq(l->host, "::1");
	ck_assert_int_ne(l->port, 0);
	int fd = nt_connect_tcp("::1", l->port, 5000);
	ck_assert_msg(fd >= 0, "connect [::1]:%u: %s", l->port, strerror(-fd));
	ck_assert_int_eq(nt_echo_check(fd, "over IPv6\r\n", 11, 5000), 0);
	close(fd);
	stop_ok();
}
END_TEST

/* family "any" on "::": one socket that IPv4 clients reach too */
START_TEST(test_dual_stack)
{
	nt_daemon_start(&d, NULL,
	                "workers = 2;\n"
	                "listeners = ( { name = \"ds\"; service = \"echo\"; "
	                "family = \"any\"; address = \"::\"; port = 0; } );\n");
	const struct nt_test_listener *l = nt_daemon_listener(&d, "ds");

	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(l->family, AF_INET6);
	ck_assert_str_eq(l->host, "::");
	int v4 = nt_connect_tcp("127.0.0.1", l->port, 5000);
	int v6 = nt_connect_tcp("::1", l->port, 5000);
	ck_assert_msg(v4 >= 0, "connect 127.0.0.1:%u: %s", l->port,
	              strerror(-v4));
	ck_assert_msg(v6 >= 0, "connect [::1]:%u: %s", l->port, strerror(-v6));
	ck_assert_int_eq(nt_echo_check(v4, "four", 4, 5000), 0);
	ck_assert_int_eq(nt_echo_check(v6, "six", 3, 5000), 0);
	close(v4);
	close(v6);
	stop_ok();
}
END_TEST

Suite *echo_suite(void);

Suite *echo_suite(void)
{
	Suite *s = suite_create("echo");
	TCase *tc;

	tc = tcase_create("data");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_all_byte_values);
	tcase_add_test(tc, test_large_random);
	tcase_add_test(tc, test_half_close);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_many_clients);
	tcase_add_test(tc, test_slow_reader);
	suite_add_tcase(s, tc);

	tc = tcase_create("timeouts");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_idle_timeout);
	suite_add_tcase(s, tc);

	tc = tcase_create("families");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_unix_socket);
	tcase_add_test(tc, test_ipv6_loopback);
	tcase_add_test(tc, test_dual_stack);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(echo_suite)
