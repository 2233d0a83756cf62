/*
 * Unit tests of listener.c: sockets opened from hand-filled listener
 * configs on loopback, checked with getsockname, real connects and stat.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "nt_test.h"
#include "run_suite.h"

static char dir[128]; /* per test, for unix socket files */

static void setup(void)
{
	nt_log_init("check_listener", NT_LOG_ERR);
	nt_make_tmpdir(dir, sizeof(dir));
}

static void teardown(void)
{
	nt_remove_tmpdir(dir);
}

static struct nt_listener_conf ip_conf(enum nt_family family,
                                       const char *address, uint16_t port)
{
	struct nt_listener_conf lc;

	memset(&lc, 0, sizeof(lc));
	snprintf(lc.name, sizeof(lc.name), "t");
	lc.service = NT_SERVICE_ECHO;
	lc.family = family;
	snprintf(lc.address, sizeof(lc.address), "%s", address);
	lc.port = port;
	lc.backlog = 16;
	lc.reuseaddr = true;
	lc.v6only = family == NT_FAMILY_IPV6;
	return lc;
}

static struct nt_listener_conf unix_conf(const char *name, mode_t mode)
{
	struct nt_listener_conf lc;

	memset(&lc, 0, sizeof(lc));
	snprintf(lc.name, sizeof(lc.name), "u");
	lc.service = NT_SERVICE_ECHO;
	lc.family = NT_FAMILY_UNIX;
	char path[256];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert(n > 0 && (size_t)n < sizeof(lc.path));
	memcpy(lc.path, path, (size_t)n + 1);
	lc.mode = mode;
	lc.backlog = 16;
	return lc;
}

static uint16_t bound_port(const struct nt_listener *l)
{
	if (l->addr.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
}

/* accept one pending connection on the (non-blocking) listener */
static int accept_one(const struct nt_listener *l)
{
	struct pollfd p = {.fd = l->fd, .events = POLLIN};

	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* connect to host:port and see the listener accept it */
static void reachable(const struct nt_listener *l, const char *host)
{
	int c = nt_connect_tcp(host, bound_port(l), 5000);

	ck_assert_msg(c >= 0, "connect %s:%u: %s", host, bound_port(l),
	              strerror(-c));
	int s = accept_one(l);
	ck_assert_int_eq(nt_write_all(c, "x", 1, 1000), 0);
	char b = 0;
	ck_assert_int_eq(nt_read_exact(s, &b, 1, 1000), 1);
	ck_assert_int_eq(b, 'x');
	close(s);
	close(c);
}

START_TEST(test_ipv4_port0)
{
	struct nt_listener_conf lc = ip_conf(NT_FAMILY_IPV4, "127.0.0.1", 0);
	struct nt_listener l;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char buf[128], want[64];

	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	ck_assert_int_ge(l.fd, 0);
	ck_assert_str_eq(l.name, "t");
	ck_assert_int_eq(getsockname(l.fd, (struct sockaddr *)&sin, &len), 0);
	ck_assert_int_eq(sin.sin_family, AF_INET);
	ck_assert_int_ne(sin.sin_port, 0);
	ck_assert_int_eq(l.addr.ss_family, AF_INET);
	ck_assert_int_eq(bound_port(&l), ntohs(sin.sin_port));
	ck_assert_int_eq(((struct sockaddr_in *)&l.addr)->sin_addr.s_addr,
	                 htonl(INADDR_LOOPBACK));
	/* the workers need a non-blocking fd that no child inherits */
	ck_assert(fcntl(l.fd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(l.fd, F_GETFD) & FD_CLOEXEC);

	nt_listener_format(&l, buf, sizeof(buf));
	snprintf(want, sizeof(want), "127.0.0.1:%u", bound_port(&l));
	ck_assert_str_eq(buf, want);
	reachable(&l, "127.0.0.1");
	nt_listener_close(&l);
	ck_assert_int_eq(l.fd, -1);
}
END_TEST

/* v6only on "::" takes the IPv6 wildcard only: IPv4 clients are refused */
START_TEST(test_ipv6_only)
{
	struct nt_listener_conf lc = ip_conf(NT_FAMILY_IPV6, "::", 0);
	struct nt_listener l;
	char buf[128], want[64];

	lc.v6only = true;
	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	ck_assert_int_eq(l.addr.ss_family, AF_INET6);
	nt_listener_format(&l, buf, sizeof(buf));
	snprintf(want, sizeof(want), "[::]:%u", bound_port(&l));
	ck_assert_str_eq(buf, want);

	int c = nt_connect_tcp("127.0.0.1", bound_port(&l), 2000);
	ck_assert_msg(c == -ECONNREFUSED, "127.0.0.1 reached a v6only socket");
	reachable(&l, "::1");
	nt_listener_close(&l);
}
END_TEST

START_TEST(test_ipv6_loopback)
{
	struct nt_listener_conf lc = ip_conf(NT_FAMILY_IPV6, "::1", 0);
	struct nt_listener l;
	char buf[128], want[64];

	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	nt_listener_format(&l, buf, sizeof(buf));
	snprintf(want, sizeof(want), "[::1]:%u", bound_port(&l));
	ck_assert_str_eq(buf, want);
	reachable(&l, "::1");
	nt_listener_close(&l);
}
END_TEST

/* family "any": one IPv6 socket with v6only off serves both */
START_TEST(test_dual_stack)
{
	struct nt_listener_conf lc = ip_conf(NT_FAMILY_ANY, "::", 0);
	struct nt_listener l;
	int v6only = -1;
	socklen_t len = sizeof(v6only);

	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	ck_assert_int_eq(
	    getsockopt(l.fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
	ck_assert_int_eq(v6only, 0);
	reachable(&l, "127.0.0.1");
	reachable(&l, "::1");
	nt_listener_close(&l);
}
END_TEST

START_TEST(test_unix)
{
	struct nt_listener_conf lc = unix_conf("a.sock", 0640);
	struct nt_listener l;
	struct stat st;
	char buf[256];

	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	ck_assert_int_eq(stat(lc.path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0640, "mode %04o",
	              (unsigned)(st.st_mode & 07777));
	nt_listener_format(&l, buf, sizeof(buf));
	ck_assert_str_eq(buf, lc.path);

	int c = nt_connect_unix(lc.path, 2000);
	ck_assert_int_ge(c, 0);
	int s = accept_one(&l);
	close(s);
	close(c);

	nt_listener_close(&l);
	ck_assert_msg(stat(lc.path, &st) < 0 && errno == ENOENT,
	              "socket file left behind");
	/* closing again is harmless */
	nt_listener_close(&l);
}
END_TEST

/* close removes only the file it created, not one put there since */
START_TEST(test_unix_replaced_file_kept)
{
	struct nt_listener_conf lc = unix_conf("a.sock", 0600);
	struct nt_listener l;
	struct stat st;
	char moved[300];

	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	snprintf(moved, sizeof(moved), "%s.old", lc.path);
	ck_assert_int_eq(rename(lc.path, moved), 0);
	FILE *f = fopen(lc.path, "we");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	nt_listener_close(&l);
	ck_assert_int_eq(stat(lc.path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

START_TEST(test_unix_stale_live_and_foreign)
{
	struct nt_listener_conf lc = unix_conf("a.sock", 0600);
	struct nt_listener l1, l2;
	struct stat st0, st1;

	/* stale: a socket file with nobody behind it is replaced */
	struct nt_listener stale;
	ck_assert_int_eq(nt_listener_open(&stale, &lc), 0);
	close(stale.fd); /* "crash": the file stays */
	ck_assert_int_eq(stat(lc.path, &st0), 0);
	ck_assert_int_eq(nt_listener_open(&l1, &lc), 0);
	int c = nt_connect_unix(lc.path, 2000);
	ck_assert_int_ge(c, 0);
	close(c);

	/* live: refused, and the listening socket's file is untouched */
	ck_assert_int_eq(stat(lc.path, &st0), 0);
	ck_assert_int_lt(nt_listener_open(&l2, &lc), 0);
	ck_assert_int_eq(l2.fd, -1);
	ck_assert_int_eq(stat(lc.path, &st1), 0);
	ck_assert(st0.st_ino == st1.st_ino);
	nt_listener_close(&l1);

	/* not a socket: never unlinked */
	FILE *f = fopen(lc.path, "we");
	ck_assert_ptr_nonnull(f);
	fputs("data", f);
	fclose(f);
	ck_assert_int_lt(nt_listener_open(&l2, &lc), 0);
	ck_assert_int_eq(stat(lc.path, &st1), 0);
	ck_assert(S_ISREG(st1.st_mode));
	ck_assert_int_eq(st1.st_size, 4);
}
END_TEST

/* a backlog of 1 and the largest allowed one both listen */
START_TEST(test_backlog)
{
	struct nt_listener_conf lc = ip_conf(NT_FAMILY_IPV4, "127.0.0.1", 0);
	struct nt_listener l;

	lc.backlog = 1;
	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	reachable(&l, "127.0.0.1");
	nt_listener_close(&l);

	lc.backlog = NT_MAX_BACKLOG;
	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	reachable(&l, "127.0.0.1");
	nt_listener_close(&l);
}
END_TEST

/*
 * After the server side closed a connection, its port sits in TIME_WAIT:
 * reopening without reuseaddr fails with EADDRINUSE, with it succeeds.
 */
START_TEST(test_reuseaddr_time_wait)
{
	struct nt_listener_conf lc = ip_conf(NT_FAMILY_IPV4, "127.0.0.1", 0);
	struct nt_listener l;

	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	uint16_t port = bound_port(&l);
	int c = nt_connect_tcp("127.0.0.1", port, 2000);
	ck_assert_int_ge(c, 0);
	int s = accept_one(&l);
	close(s); /* the server closes first: its side gets TIME_WAIT */
	ck_assert_int_eq(nt_expect_eof(c, 2000), 0);
	close(c);
	nt_listener_close(&l);
	int tw = 0;
	for (int i = 0; i < 40 && (tw = nt_tcp_timewait_count(port)) == 0; i++)
		nt_sleep_ms(50);

	lc.port = port;
	if (tw > 0) {
		lc.reuseaddr = false;
		int fds = nt_proc_fd_count(getpid());
		ck_assert_int_eq(nt_listener_open(&l, &lc), -EADDRINUSE);
		ck_assert_int_eq(l.fd, -1);
		/* nothing leaked */
		ck_assert_int_eq(nt_proc_fd_count(getpid()), fds);
	} else {
		/* the kernel makes no TIME_WAIT socket when its table
		 * (net.ipv4.tcp_max_tw_buckets) is full, as after a heavy
		 * connection-churn benchmark: only the second half holds */
		fprintf(stderr, "test_reuseaddr_time_wait: no TIME_WAIT socket "
		                "appeared; checking only that reuseaddr "
		                "rebinds\n");
	}

	lc.reuseaddr = true;
	ck_assert_int_eq(nt_listener_open(&l, &lc), 0);
	ck_assert_int_eq(bound_port(&l), port);
	reachable(&l, "127.0.0.1");
	nt_listener_close(&l);
}
END_TEST

START_TEST(test_reuseport)
{
	struct nt_listener_conf lc = ip_conf(NT_FAMILY_IPV4, "127.0.0.1", 0);
	struct nt_listener a, b, c;

	lc.reuseport = true;
	ck_assert_int_eq(nt_listener_open(&a, &lc), 0);
	lc.port = bound_port(&a);
	ck_assert_int_eq(nt_listener_open(&b, &lc), 0);
	ck_assert_int_eq(bound_port(&b), lc.port);
	/* a third without reuseport may not join them */
	lc.reuseport = false;
	ck_assert_int_eq(nt_listener_open(&c, &lc), -EADDRINUSE);
	nt_listener_close(&a);
	nt_listener_close(&b);
}
END_TEST

/* a port somebody listens on: -EADDRINUSE, even with reuseaddr */
START_TEST(test_port_in_use)
{
	struct nt_listener_conf lc = ip_conf(NT_FAMILY_IPV4, "127.0.0.1", 0);
	struct nt_listener a, b;

	ck_assert_int_eq(nt_listener_open(&a, &lc), 0);
	lc.port = bound_port(&a);
	int fds = nt_proc_fd_count(getpid());
	ck_assert_int_eq(nt_listener_open(&b, &lc), -EADDRINUSE);
	ck_assert_int_eq(b.fd, -1);
	ck_assert_int_eq(nt_proc_fd_count(getpid()), fds);
	/* a failed listener can be closed like any other */
	nt_listener_close(&b);
	nt_listener_close(NULL);
	nt_listener_close(&a);
}
END_TEST

START_TEST(test_bad_address)
{
	struct nt_listener_conf lc = ip_conf(NT_FAMILY_IPV4, "::1", 0);
	struct nt_listener l;

	ck_assert_int_lt(nt_listener_open(&l, &lc), 0);
	ck_assert_int_eq(l.fd, -1);
	lc = ip_conf(NT_FAMILY_IPV6, "127.0.0.1", 0);
	ck_assert_int_lt(nt_listener_open(&l, &lc), 0);
	ck_assert_int_eq(l.fd, -1);
}
END_TEST

Suite *listener_suite(void);

Suite *listener_suite(void)
{
	Suite *s = suite_create("listener");
	TCase *tc = tcase_create("open");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_ipv4_port0);
	tcase_add_test(tc, test_ipv6_only);
	tcase_add_test(tc, test_ipv6_loopback);
	tcase_add_test(tc, test_dual_stack);
	tcase_add_test(tc, test_unix);
	tcase_add_test(tc, test_unix_replaced_file_kept);
	tcase_add_test(tc, test_unix_stale_live_and_foreign);
	tcase_add_test(tc, test_backlog);
	tcase_add_test(tc, test_reuseaddr_time_wait);
	tcase_add_test(tc, test_reuseport);
	tcase_add_test(tc, test_port_in_use);
	tcase_add_test(tc, test_bad_address);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(listener_suite)
