/*
 * End-to-end tests of natterd as an operator meets it: command line and
 * exit codes, configuration checking, connection limits, running out of
 * file descriptors, signals and shutdown, binding and socket files.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "nt_test.h"
#include "run_suite.h"

#define FULL_LINE  "!!! server full, try again later\r\n"
#define PERIP_LINE "!!! too many connections from your address\r\n"

/* one IPv4 echo listener "echo" on a port the kernel picks */
#define ECHO_LISTENER                                                          \
	"listeners = ( { name = \"echo\"; service = \"echo\"; "                \
	"family = \"ipv4\"; address = \"127.0.0.1\"; port = 0; } );\n"

static struct nt_daemon d, d2;

static void teardown(void)
{
	nt_daemon_cleanup(&d);
	nt_daemon_cleanup(&d2);
}

/* write text to DIR/name (DIR: d's temp dir); the path, static */
static const char *put_file(struct nt_daemon *dm, const char *name,
                            const char *text)
{
	static char path[512];

	if (!dm->dir[0])
		nt_daemon_init(dm);
	snprintf(path, sizeof(path), "%s/%s", dm->dir, name);
	FILE *f = fopen(path, "we");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

static void run(struct nt_run *r, const char *a1, const char *a2,
                const char *a3, const char *a4)
{
	int rc = nt_run_natterd(r, 15000, a1, a2, a3, a4, (char *)NULL);

	ck_assert_msg(rc == 0, "cannot run %s: %s", nt_natterd_path(),
	              strerror(-rc));
	ck_assert_msg(r->code != -ETIMEDOUT, "natterd %s did not exit", a1);
}

/*
 * Connect and prove the connection is served: an echo comes back. A refusal
 * line, EOF or a reset instead means "not accepted": retry until the
 * deadline, since the daemon frees a closed client's slot asynchronously.
 */
static int connect_served(struct nt_daemon *dm, const char *name,
                          int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;

	do {
		int fd = nt_daemon_connect(dm, name);
		if (nt_echo_check(fd, "ping\r\n", 6, 3000) == 0)
			return fd;
		close(fd);
		nt_sleep_ms(50);
	} while (nt_test_now_ms() < deadline);
	ck_abort_msg("no client was served on listener %s for %d ms", name,
	             timeout_ms);
	return -1;
}

/* the next line must be exactly `line`, then EOF */
static void expect_refusal(int fd, const char *line)
{
	char buf[256];
	ssize_t n = nt_read_line(fd, buf, sizeof(buf), 5000);

	ck_assert_msg(n > 0, "expected \"%.*s\", got %s", (int)strlen(line) - 2,
	              line, n == 0 ? "EOF" : strerror((int)-n));
	ck_assert_str_eq(buf, line);
	ck_assert_int_eq(nt_expect_eof(fd, 5000), 0);
}

static void stop_ok(struct nt_daemon *dm)
{
	int code = nt_daemon_stop(dm, SIGTERM, NT_TEST_STOP_MS);

	if (code != 0)
		nt_daemon_dump_log(dm);
	ck_assert_int_eq(code, 0);
}

/* ---- command line ------------------------------------------------------- */

/*
 * --check-config reads and validates only: it must succeed even though the
 * configured port is taken and must not create the unix socket file.
 */
START_TEST(test_check_config_ok)
{
	struct nt_run r;
	char conf[1024], sock[600];
	uint16_t port = 0;
	struct stat st;

	int busy = nt_listen_tcp("127.0.0.1", &port);
	ck_assert_int_ge(busy, 0);
	nt_daemon_init(&d);
	snprintf(sock, sizeof(sock), "%s/never.sock", d.dir);
	snprintf(
	    conf, sizeof(conf),
	    "workers = 2;\n"
	    "listeners = (\n"
	    "  { name = \"taken\"; service = \"echo\"; family = \"ipv4\";\n"
	    "    address = \"127.0.0.1\"; port = %u; reuseaddr = false; "
	    "},\n"
	    "  { name = \"u\"; service = \"echo\"; family = \"unix\";\n"
	    "    path = \"%s\"; mode = \"0600\"; }\n"
	    ");\n",
	    port, sock);
	const char *path = put_file(&d, "ok.conf", conf);

	run(&r, "-c", path, "--check-config", NULL);
	ck_assert_msg(r.code == 0, "exit %d, stderr: %s", r.code, r.err);
	ck_assert_msg(strstr(r.out, "configuration OK"), "stdout: %s", r.out);
	nt_run_free(&r);

	run(&r, "-t", "-c", path, NULL);
	ck_assert_msg(r.code == 0, "-t: exit %d, stderr: %s", r.code, r.err);
	ck_assert_msg(strstr(r.out, "configuration OK"), "stdout: %s", r.out);
	nt_run_free(&r);

	ck_assert_msg(stat(sock, &st) < 0 && errno == ENOENT,
	              "--check-config created %s", sock);
	close(busy);
}
END_TEST

/* every error is reported, each as FILE:LINE:, and nothing says OK */
START_TEST(test_check_config_errors)
{
	struct nt_run r;
	char want[600];
	const char *path =
	    put_file(&d, "bad.conf",
	             "workers = 2;\n"
	             "frobnicate = 1;\n"
	             "max_connections = 10;\n"
	             "listeners = (\n"
	             "  { name = \"a\"; service = \"echo\"; family = \"ipx\"; "
	             "address = \"127.0.0.1\"; port = 0; },\n"
	             "  { name = \"b\"; service = \"echo\"; family = \"ipv4\"; "
	             "address = \"127.0.0.1\"; port = 70000; }\n"
	             ");\n");

	run(&r, "-c", path, "--check-config", NULL);
	ck_assert_msg(r.code == 1, "exit %d, stderr: %s", r.code, r.err);
	ck_assert_msg(!strstr(r.out, "configuration OK"), "stdout: %s", r.out);
	static const int lines[] = {2, 5, 6};
	for (size_t i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "%s:%d: ", path, lines[i]);
		ck_assert_msg(strstr(r.err, want), "no \"%s\" in stderr:\n%s",
		              want, r.err);
	}
	nt_run_free(&r);
}
END_TEST

START_TEST(test_check_config_syntax)
{
	struct nt_run r;
	char want[600];
	const char *path = put_file(&d, "syntax.conf",
	                            "workers = 2;\n"
	                            "\n"
	                            "max_connections = ;\n" ECHO_LISTENER);

	run(&r, "-c", path, "--check-config", NULL);
	ck_assert_msg(r.code == 1, "exit %d, stderr: %s", r.code, r.err);
	snprintf(want, sizeof(want), "%s:3:", path);
	ck_assert_msg(strstr(r.err, want), "no \"%s\" in stderr:\n%s", want,
	              r.err);
	nt_run_free(&r);
}
END_TEST

/* the documented default config in the source tree is valid */
START_TEST(test_check_shipped_config)
{
	const char *src = getenv("NT_SRCDIR");
	char path[1024];
	struct nt_run r;

	if (!src || !*src)
		return; /* run outside `make check`: nothing to find */
	snprintf(path, sizeof(path), "%s/conf/natterd.conf", src);
	if (access(path, R_OK) < 0)
		return;
	run(&r, "-c", path, "--check-config", NULL);
	ck_assert_msg(r.code == 0, "%s: exit %d, stderr: %s", path, r.code,
	              r.err);
	nt_run_free(&r);
}
END_TEST

START_TEST(test_version)
{
	struct nt_run r;

	run(&r, "--version", NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d, stderr: %s", r.code, r.err);
	ck_assert_msg(strstr(r.out, "natterd"), "stdout: %s", r.out);
	nt_run_free(&r);

	run(&r, "--help", NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "--help: exit %d, stderr: %s", r.code,
	              r.err);
	ck_assert_msg(strcasestr(r.out, "usage"), "--help stdout: %s", r.out);
	nt_run_free(&r);
}
END_TEST

START_TEST(test_usage_errors)
{
	struct nt_run r;
	const char *path = put_file(&d, "ok.conf", ECHO_LISTENER);

	run(&r, "--frobnicate", NULL, NULL, NULL);
	ck_assert_msg(r.code == 2, "unknown option: exit %d", r.code);
	ck_assert_msg(r.err[0] != '\0', "unknown option: nothing on stderr");
	nt_run_free(&r);

	run(&r, "-c", path, "--log-level", "loud");
	ck_assert_msg(r.code == 2, "--log-level loud: exit %d, stderr: %s",
	              r.code, r.err);
	nt_run_free(&r);
}
END_TEST

START_TEST(test_missing_config)
{
	struct nt_run r;
	char path[600];

	nt_daemon_init(&d);
	snprintf(path, sizeof(path), "%s/absent.conf", d.dir);
	run(&r, "-c", path, NULL, NULL);
	ck_assert_msg(r.code == 1, "exit %d, stderr: %s", r.code, r.err);
	ck_assert_msg(strstr(r.err, path), "stderr does not name %s: %s", path,
	              r.err);
	nt_run_free(&r);
}
END_TEST

/* ---- connection limits -------------------------------------------------- */

START_TEST(test_max_connections)
{
	int c[3];

	nt_daemon_start(&d, NULL,
	                "workers = 2;\n"
	                "max_connections = 3;\n"
	                "limits = { per_ip = 0; };\n" ECHO_LISTENER);
	for (int i = 0; i < 3; i++)
		c[i] = connect_served(&d, "echo", 5000);

	/* the 4th gets one polite line, then EOF; we send nothing first */
	int extra = nt_daemon_connect(&d, "echo");
	expect_refusal(extra, FULL_LINE);
	close(extra);

	/* the others were not disturbed */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(nt_echo_check(c[i], "ok", 2, 5000), 0);

	/* a closed client's slot is reused */
	close(c[0]);
	c[0] = connect_served(&d, "echo", 10000);
	extra = nt_daemon_connect(&d, "echo");
	expect_refusal(extra, FULL_LINE);
	close(extra);
	for (int i = 0; i < 3; i++)
		close(c[i]);
	stop_ok(&d);
}
END_TEST

START_TEST(test_per_ip)
{
	int c[2];

	nt_daemon_start(&d, NULL,
	                "workers = 2;\n"
	                "max_connections = 100;\n"
	                "limits = { per_ip = 2; };\n" ECHO_LISTENER);
	for (int i = 0; i < 2; i++)
		c[i] = connect_served(&d, "echo", 5000);
	int extra = nt_daemon_connect(&d, "echo");
	expect_refusal(extra, PERIP_LINE);
	close(extra);

	close(c[1]);
	c[1] = connect_served(&d, "echo", 10000);
	extra = nt_daemon_connect(&d, "echo");
	expect_refusal(extra, PERIP_LINE);
	close(extra);
	close(c[0]);
	close(c[1]);
	stop_ok(&d);
}
END_TEST

/* ---- out of file descriptors -------------------------------------------- */

#define FLOOD 200

/* true if some warning line of the log mentions the limit 64 */
static bool warned_fd_limit(void)
{
	char *log = nt_daemon_log(&d);
	bool found = false;

	for (char *line = strtok(log, "\n"); line && !found;
	     line = strtok(NULL, "\n"))
		found = strcasestr(line, " warning:") && strstr(line, "64");
	free(log);
	return found;
}

/*
 * Under `ulimit -n 64`, 200 clients arrive and stay. The daemon must warn at
 * start (max_connections cannot be reached), keep serving the clients it
 * has, neither die nor spin on EMFILE, and recover once the flood leaves.
 */
START_TEST(test_fd_exhaustion)
{
	struct nt_daemon_opts o = {.nofile = 64};
	int early[3], flood[FLOOD];
	int n_flood = 0, busy = 0;

	nt_daemon_start(&d, &o,
	                "workers = 2;\n"
	                "max_connections = 1000;\n"
	                "limits = { per_ip = 0; };\n"
	                "timeouts = { idle = 120; shutdown_grace = 1; };\n"
	                "listeners = ( { name = \"echo\"; service = \"echo\"; "
	                "family = \"ipv4\"; address = \"127.0.0.1\"; port = 0; "
	                "backlog = 511; } );\n");
	ck_assert_msg(warned_fd_limit(),
	              "no warning about the fd limit (64) at start");
	for (int i = 0; i < 3; i++)
		early[i] = connect_served(&d, "echo", 5000);

	uint64_t t0 = nt_test_now_ms();
	uint16_t port = nt_daemon_port(&d, "echo");
	for (int i = 0; i < FLOOD && nt_test_now_ms() - t0 < 10000; i++) {
		int fd = nt_connect_tcp("127.0.0.1", port, 1000);
		if (fd >= 0)
			flood[n_flood++] = fd;
	}
	ck_assert_int_gt(n_flood, 64);
	nt_sleep_ms(500);
	ck_assert_msg(nt_daemon_alive(&d), "natterd died (exit %d)", d.status);

	/* not spinning: under half a CPU-second in one second of flood */
	long cpu0 = nt_proc_cpu_ms(d.pid);
	nt_sleep_ms(1000);
	long cpu1 = nt_proc_cpu_ms(d.pid);
	ck_assert_msg(cpu0 >= 0 && cpu1 - cpu0 < 500,
	              "natterd used %ld ms of CPU in 1 s while out of fds",
	              cpu1 - cpu0);
	ck_assert_int_le(nt_proc_fd_count(d.pid), 64);

	for (int i = 0; i < 3; i++)
		ck_assert_msg(nt_echo_check(early[i], "still", 5, 5000) == 0,
		              "early client %d not served during the flood", i);

	/* the refused ones were told why (for the report only) */
	for (int i = 0; i < n_flood; i++) {
		char line[128];
		struct pollfd p = {.fd = flood[i], .events = POLLIN};
		if (poll(&p, 1, 0) == 1 &&
		    nt_read_line(flood[i], line, sizeof(line), 100) > 0 &&
		    strncmp(line, "!!! ", 4) == 0)
			busy++;
		close(flood[i]);
	}
	fprintf(stderr, "fd exhaustion: %d of %d flood clients refused\n", busy,
	        n_flood);

	/* after the flood, new clients are served again */
	int late[5];
	for (int i = 0; i < 5; i++)
		late[i] = connect_served(&d, "echo", 10000);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(nt_echo_check(early[i], "again", 5, 5000), 0);
	for (int i = 0; i < 5; i++)
		close(late[i]);
	for (int i = 0; i < 3; i++)
		close(early[i]);
	stop_ok(&d);
}
END_TEST

/* ---- signals ------------------------------------------------------------ */

/* a client that never reads, with output queued in the daemon */
static int stuck_client(struct nt_daemon *dm)
{
	int small = 65536;
	bool stalled;
	int fd = nt_daemon_connect(dm, "echo");

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	ssize_t n =
	    nt_push_until_stall(fd, (size_t)256 << 20, 500, 20000, &stalled);
	ck_assert_msg(n > 0 && stalled, "pushed %zd bytes without a stall", n);
	return fd;
}

/*
 * SIGTERM with clients connected: output that can be delivered is (a client
 * whose echo sits unread gets it all, then a clean EOF), a client that
 * never reads is given up on after shutdown_grace, and the exit is 0.
 */
START_TEST(test_sigterm)
{
	unsigned char out[16384], in[16384];
	int queued = 0;

	nt_daemon_start(&d, NULL,
	                "workers = 2;\n"
	                "limits = { per_ip = 0; max_output = 65536; };\n"
	                "timeouts = { idle = 120; write = 0; "
	                "shutdown_grace = 1; };\n" ECHO_LISTENER);
	int idle = connect_served(&d, "echo", 5000);
	int stuck = stuck_client(&d);

	/* wait until the whole echo is in our socket: nothing left unread */
	int c = nt_daemon_connect(&d, "echo");
	nt_fill_random(out, sizeof(out), 3);
	ck_assert_int_eq(nt_write_all(c, out, sizeof(out), 5000), 0);
	for (int i = 0; i < 1000 && queued < (int)sizeof(out); i++) {
		ck_assert_int_eq(ioctl(c, FIONREAD, &queued), 0);
		nt_sleep_ms(10);
	}
	ck_assert_int_eq(queued, (int)sizeof(out));

	uint64_t t0 = nt_test_now_ms();
	int code = nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS);
	uint64_t took = nt_test_now_ms() - t0;
	if (code != 0)
		nt_daemon_dump_log(&d);
	ck_assert_int_eq(code, 0);
	/* the stuck client's output was waited for, but only for the grace */
	ck_assert_msg(took >= 700 && took < 8000,
	              "shutdown took %llu ms with shutdown_grace = 1",
	              (unsigned long long)took);
	ck_assert(nt_daemon_log_contains(&d, "shutting down"));
	ck_assert(nt_daemon_log_contains(&d, "stats:"));

	ck_assert_int_eq(nt_read_exact(c, in, sizeof(in), 2000),
	                 (ssize_t)sizeof(in));
	ck_assert(memcmp(in, out, sizeof(in)) == 0);
	ck_assert_int_eq(nt_expect_eof(c, 2000), 0);
	ck_assert_int_eq(nt_expect_eof(idle, 2000), 0);
	close(c);
	close(idle);
	close(stuck);
}
END_TEST

/* a second SIGTERM while the first waits out a long grace: exit now, 4 */
START_TEST(test_second_sigterm)
{
	nt_daemon_start(&d, NULL,
	                "workers = 2;\n"
	                "limits = { per_ip = 0; max_output = 65536; };\n"
	                "timeouts = { idle = 120; write = 0; "
	                "shutdown_grace = 60; };\n" ECHO_LISTENER);
	int stuck = stuck_client(&d);

	kill(d.pid, SIGTERM);
	ck_assert(nt_daemon_wait_log(&d, "shutting down", 5000));
	nt_sleep_ms(300);
	ck_assert_msg(nt_daemon_alive(&d),
	              "exited (%d) before shutdown_grace with output pending",
	              d.status);
	uint64_t t0 = nt_test_now_ms();
	int code = nt_daemon_stop(&d, SIGTERM, 5000);
	ck_assert_msg(code == 4, "second SIGTERM: exit %d after %llu ms", code,
	              (unsigned long long)(nt_test_now_ms() - t0));
	close(stuck);
}
END_TEST

/* ---- binding ------------------------------------------------------------ */

/* a second daemon on a port the first holds: exit 3, a precise message */
static void check_bind_failure(uint16_t port, bool reuseaddr)
{
	char want[256];

	ck_assert_int_eq(
	    nt_daemon_spawn(&d2, NULL,
	                    "workers = 1;\n"
	                    "listeners = ( { name = \"clash\"; "
	                    "service = \"echo\"; family = \"ipv4\"; "
	                    "address = \"127.0.0.1\"; port = %u; "
	                    "reuseaddr = %s; } );\n",
	                    port, reuseaddr ? "true" : "false"),
	    0);
	int code = nt_daemon_wait_exit(&d2, NT_TEST_READY_MS);
	if (code != 3)
		nt_daemon_dump_log(&d2);
	ck_assert_msg(code == 3, "exit %d", code);
	snprintf(
	    want, sizeof(want),
	    "listener \"clash\": cannot bind 127.0.0.1:%u: Address already "
	    "in use",
	    port);
	ck_assert_msg(nt_daemon_log_contains(&d2, want), "no \"%s\" in the log",
	              want);
	ck_assert(nt_daemon_log_contains(&d2, reuseaddr ? "(reuseaddr on)"
	                                                : "(reuseaddr off)"));
	ck_assert_msg(!nt_daemon_log_contains(&d2, " ready"),
	              "claims to be ready without its listener");
	nt_daemon_cleanup(&d2);
}

START_TEST(test_bind_failure)
{
	nt_daemon_start(&d, NULL, "workers = 1;\n" ECHO_LISTENER);
	uint16_t port = nt_daemon_port(&d, "echo");

	check_bind_failure(port, true);
	check_bind_failure(port, false);
	/* the first daemon is unharmed */
	int fd = connect_served(&d, "echo", 5000);
	close(fd);
	stop_ok(&d);
}
END_TEST

/*
 * Restart on the same port right after a shutdown that closed connections
 * (TIME_WAIT on the server side): with reuseaddr the new daemon binds.
 */
START_TEST(test_quick_restart)
{
	int c[3];

	nt_daemon_start(&d, NULL, "workers = 2;\n" ECHO_LISTENER);
	uint16_t port = nt_daemon_port(&d, "echo");
	for (int i = 0; i < 3; i++)
		c[i] = connect_served(&d, "echo", 5000);
	stop_ok(&d);
	for (int i = 0; i < 3; i++) {
		int rc = nt_expect_eof(c[i], 5000);
		ck_assert_msg(rc == 0 || rc == -ECONNRESET, "client %d: %s", i,
		              strerror(-rc));
		close(c[i]);
	}
	/* the daemon closed first, so its side lingers in TIME_WAIT */
	ck_assert_msg(nt_tcp_timewait_count(port) > 0,
	              "no TIME_WAIT on port %u: the test would prove nothing",
	              port);

	nt_daemon_start(&d2, NULL,
	                "workers = 2;\n"
	                "listeners = ( { name = \"echo\"; service = \"echo\"; "
	                "family = \"ipv4\"; address = \"127.0.0.1\"; "
	                "port = %u; reuseaddr = true; } );\n",
	                port);
	ck_assert_int_eq(nt_daemon_port(&d2, "echo"), port);
	int fd = connect_served(&d2, "echo", 5000);
	close(fd);
	stop_ok(&d2);
}
END_TEST

/* ---- unix socket files -------------------------------------------------- */

#define UNIX_LISTENER(path)                                                    \
	"workers = 1;\n"                                                       \
	"listeners = ( { name = \"u\"; service = \"echo\"; "                   \
	"family = \"unix\"; path = \"" path "\"; mode = \"0660\"; } );\n"

/* a socket file nobody listens on (left by a crash) is replaced */
START_TEST(test_stale_unix_socket)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct stat st;

	char path[512];

	nt_daemon_init(&d);
	snprintf(path, sizeof(path), "%s/echo.sock", d.dir);
	ck_assert_uint_lt(strlen(path), sizeof(un.sun_path));
	memcpy(un.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&un, sizeof(un)), 0);
	close(s);
	ck_assert_int_eq(stat(un.sun_path, &st), 0);

	nt_daemon_start(&d, NULL, UNIX_LISTENER("@DIR@/echo.sock"));
	int fd = connect_served(&d, "u", 5000);
	close(fd);
	stop_ok(&d);
}
END_TEST

/* a live socket file is never taken over: the second daemon refuses */
START_TEST(test_live_unix_socket)
{
	char conf[1024], want[512];
	struct stat st0, st1;

	nt_daemon_start(&d, NULL, UNIX_LISTENER("@DIR@/echo.sock"));
	const char *path = nt_daemon_sock_path(&d, "u");
	ck_assert_int_eq(stat(path, &st0), 0);

	snprintf(conf, sizeof(conf),
	         "workers = 1;\n"
	         "listeners = ( { name = \"u\"; service = \"echo\"; "
	         "family = \"unix\"; path = \"%s\"; } );\n",
	         path);
	ck_assert_int_eq(nt_daemon_spawn(&d2, NULL, "%s", conf), 0);
	int code = nt_daemon_wait_exit(&d2, NT_TEST_READY_MS);
	ck_assert_msg(code == 3, "second daemon: exit %d", code);
	snprintf(want, sizeof(want), "%s", path);
	ck_assert_msg(nt_daemon_log_contains(&d2, want),
	              "second daemon's log does not name %s", path);

	/* the first daemon still owns the very same file, and serves */
	ck_assert_int_eq(stat(path, &st1), 0);
	ck_assert(st0.st_ino == st1.st_ino);
	int fd = connect_served(&d, "u", 5000);
	close(fd);
	stop_ok(&d);
}
END_TEST

/* something that is not a socket is never unlinked to make room */
START_TEST(test_unix_path_not_socket)
{
	char buf[64] = {0};

	const char *path = put_file(&d, "echo.sock", "precious\n");
	ck_assert_int_eq(
	    nt_daemon_spawn(&d, NULL, UNIX_LISTENER("@DIR@/echo.sock")), 0);
	int code = nt_daemon_wait_exit(&d, NT_TEST_READY_MS);
	ck_assert_msg(code == 3, "exit %d", code);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "%s is gone", path);
	ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), 9);
	ck_assert_str_eq(buf, "precious\n");
	close(fd);
}
END_TEST

/*
 * The socket file goes away on shutdown, but a file that replaced it in the
 * meantime belongs to someone else and stays.
 */
START_TEST(test_unix_socket_removed)
{
	char path[512], moved[520];
	struct stat st;

	nt_daemon_start(&d, NULL, UNIX_LISTENER("@DIR@/echo.sock"));
	snprintf(path, sizeof(path), "%s", nt_daemon_sock_path(&d, "u"));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	stop_ok(&d);
	ck_assert_msg(stat(path, &st) < 0 && errno == ENOENT, "%s left behind",
	              path);

	nt_daemon_start(&d2, NULL, UNIX_LISTENER("@DIR@/echo.sock"));
	snprintf(path, sizeof(path), "%s", nt_daemon_sock_path(&d2, "u"));
	snprintf(moved, sizeof(moved), "%s.old", path);
	ck_assert_int_eq(rename(path, moved), 0);
	put_file(&d2, "echo.sock", "not yours\n");
	stop_ok(&d2);
	ck_assert_msg(stat(path, &st) == 0 && S_ISREG(st.st_mode),
	              "natterd removed a file it did not create");
}
END_TEST

/* ---- log level ---------------------------------------------------------- */

/* open, echo and close one connection, then shut down cleanly */
static void one_session(struct nt_daemon *dm)
{
	int fd = connect_served(dm, "u", 10000);
	close(fd);
	nt_sleep_ms(200); /* let the worker log the close */
	stop_ok(dm);
}

START_TEST(test_log_level)
{
	static const char *const debug[] = {"--log-level", "debug", NULL};
	struct nt_daemon_opts o = {.args = debug};
	struct stat st;

	/* log_level = "info": the same session logs no debug line... */
	nt_daemon_start(
	    &d, NULL, "log_level = \"info\";\n" UNIX_LISTENER("@DIR@/u.sock"));
	one_session(&d);
	ck_assert_int_eq(nt_daemon_log_level_count(&d, "debug"), 0);
	ck_assert_int_gt(nt_daemon_log_level_count(&d, "info"), 0);
	nt_daemon_cleanup(&d);

	/* ...but some with --log-level debug, which overrides the file */
	nt_daemon_start(
	    &d, &o, "log_level = \"info\";\n" UNIX_LISTENER("@DIR@/u.sock"));
	one_session(&d);
	ck_assert_msg(nt_daemon_log_level_count(&d, "debug") > 0,
	              "no debug line with --log-level debug");
	nt_daemon_cleanup(&d);

	/*
	 * log_level = "warning": not even the ready line, so wait for the
	 * socket file instead of the log
	 */
	ck_assert_int_eq(
	    nt_daemon_spawn(
	        &d, NULL,
	        "log_level = \"warning\";\n" UNIX_LISTENER("@DIR@/u.sock")),
	    0);
	char path[512];
	snprintf(path, sizeof(path), "%s/u.sock", d.dir);
	for (int i = 0; i < 1500 && stat(path, &st) < 0; i++)
		nt_sleep_ms(10);
	int fd = nt_connect_unix(path, 5000);
	ck_assert_msg(fd >= 0, "connect %s: %s", path, strerror(-fd));
	ck_assert_int_eq(nt_echo_check(fd, "quiet", 5, 5000), 0);
	close(fd);
	stop_ok(&d);
	char *log = nt_daemon_log(&d);
	ck_assert_msg(nt_daemon_log_level_count(&d, "info") == 0 &&
	                  nt_daemon_log_level_count(&d, "notice") == 0 &&
	                  nt_daemon_log_level_count(&d, "debug") == 0,
	              "log_level = warning, yet:\n%s", log);
	free(log);
}
END_TEST

/* ---- worker threads ----------------------------------------------------- */

/* natterd's worker threads (named natterd-wN), counted from /proc */
static int count_workers(pid_t pid)
{
	/* room for any name readdir gives, not just the numbers it will */
	char path[64 + sizeof(((struct dirent *)0)->d_name)], comm[32];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *dir = opendir(path);
	ck_assert_msg(dir != NULL, "%s: %s", path, strerror(errno));
	for (struct dirent *e; (e = readdir(dir));) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid,
		         e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue; /* a thread that just ended */
		if (fgets(comm, sizeof(comm), f) &&
		    strncmp(comm, "natterd-w", 9) == 0)
			n++;
		fclose(f);
	}
	closedir(dir);
	return n;
}

/*
 * workers = 0 is one worker per CPU natterd may run on: started with an
 * affinity of one CPU (which it inherits from us) it runs one worker,
 * started with ours it runs one per CPU in our set.
 */
START_TEST(test_workers_follow_affinity)
{
	cpu_set_t all, one;

	ck_assert_int_eq(sched_getaffinity(0, sizeof(all), &all), 0);
	int n_all = CPU_COUNT(&all);
	CPU_ZERO(&one);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &all)) {
			CPU_SET(cpu, &one);
			break;
		}

	ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
	nt_daemon_start(&d, NULL, "workers = 0;\n" ECHO_LISTENER);
	ck_assert_int_eq(sched_setaffinity(0, sizeof(all), &all), 0);
	ck_assert_int_eq(count_workers(d.pid), 1);
	int fd = connect_served(&d, "echo", 5000);
	close(fd);
	stop_ok(&d);
	nt_daemon_cleanup(&d);

	nt_daemon_start(&d, NULL, "workers = 0;\n" ECHO_LISTENER);
	ck_assert_int_eq(count_workers(d.pid), n_all > 256 ? 256 : n_all);
	stop_ok(&d);
}
END_TEST

Suite *daemon_suite(void);

Suite *daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc;

	tc = tcase_create("cli");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_check_config_ok);
	tcase_add_test(tc, test_check_config_errors);
	tcase_add_test(tc, test_check_config_syntax);
	tcase_add_test(tc, test_check_shipped_config);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_usage_errors);
	tcase_add_test(tc, test_missing_config);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_max_connections);
	tcase_add_test(tc, test_per_ip);
	tcase_add_test(tc, test_fd_exhaustion);
	suite_add_tcase(s, tc);

	tc = tcase_create("signals");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_sigterm);
	tcase_add_test(tc, test_second_sigterm);
	suite_add_tcase(s, tc);

	tc = tcase_create("sockets");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_bind_failure);
	tcase_add_test(tc, test_quick_restart);
	tcase_add_test(tc, test_stale_unix_socket);
	tcase_add_test(tc, test_live_unix_socket);
	tcase_add_test(tc, test_unix_path_not_socket);
	tcase_add_test(tc, test_unix_socket_removed);
	suite_add_tcase(s, tc);

	tc = tcase_create("log");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_log_level);
	suite_add_tcase(s, tc);

	tc = tcase_create("workers");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_workers_follow_affinity);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(daemon_suite)
