/*
 * SIGHUP reloads, end to end: a bad file changes nothing; listeners are
 * added, removed and moved while clients on all of them stay connected;
 * timeouts, limits, the MOTD and the log level apply to the connections
 * that are already there; a unix socket's new mode reaches that socket and
 * nothing else.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nt_chat.h"
#include "nt_test.h"
#include "run_suite.h"

#define IO_MS 10000

#define ECHO_L(name)                                                           \
	" { name = \"" name "\"; service = \"echo\"; family = \"ipv4\";"       \
	" address = \"127.0.0.1\"; port = 0; }"
#define CHAT_L(name, addr)                                                     \
	" { name = \"" name "\"; service = \"chat\"; family = \"ipv4\";"       \
	" address = \"" addr "\"; port = 0; }"

static struct nt_daemon d;

static void teardown(void)
{
	nt_daemon_cleanup(&d);
}

/* rewrite the daemon's config (printf format, "@DIR@" as for spawn) */
static void rewrite(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void rewrite(const char *fmt, ...)
{
	char text[4096], out[8192];
	va_list ap;
	size_t o = 0;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (const char *p = text; *p && o < sizeof(out) - 300;) {
		if (!strncmp(p, "@DIR@", 5)) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s",
			                      d.dir);
			p += 5;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	FILE *f = fopen(d.conf, "we");
	ck_assert_ptr_nonnull(f);
	fputs(out, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* how many times s is in the daemon's log */
static int log_count(const char *s)
{
	char *log = nt_daemon_log(&d);
	int seen = 0;

	for (char *p = log; (p = strstr(p, s)); p++)
		seen++;
	free(log);
	return seen;
}

/* wait until s is in the log n times; false when IO_MS passed first */
static bool wait_log_count(const char *s, int n)
{
	uint64_t deadline = nt_test_now_ms() + IO_MS;

	while (log_count(s) < n) {
		if (nt_test_now_ms() >= deadline)
			return false;
		nt_sleep_ms(20);
	}
	return true;
}

/* SIGHUP, and wait for the n-th "reloaded" or "reload failed" line */
static void hup(const char *expect, int nth)
{
	ck_assert_int_eq(log_count(expect), nth - 1);
	kill(d.pid, SIGHUP);
	if (!wait_log_count(expect, nth)) {
		nt_daemon_dump_log(&d);
		ck_abort_msg("no \"%s\" after SIGHUP", expect);
	}
}

static int chat_client(const char *name)
{
	int fd = nt_daemon_connect(&d, name);

	nt_chat_enter(fd, NULL, NULL, IO_MS);
	return fd;
}

/* a chat client still served: /ping gets its pong */
static void chat_alive(int fd, const char *token)
{
	ck_assert_msg(nt_chat_alive(fd, token, IO_MS), "no pong for %s", token);
}

/*
 * A file with a syntax error, then one with a bad value, then a listener
 * that cannot bind: each time the error is logged with file and line (or
 * the listener), and the old configuration keeps serving old and new
 * clients. Then a good file is taken.
 */
START_TEST(test_bad_reload_keeps_serving)
{
	char want[512];

	nt_daemon_start(&d, NULL,
	                "workers = 2;\nlisteners = (" ECHO_L("echo") ");\n");
	uint16_t port = nt_daemon_port(&d, "echo");
	int c = nt_daemon_connect(&d, "echo");
	ck_assert_int_eq(nt_echo_check(c, "before", 6, IO_MS), 0);

	rewrite("workers = 2;\n\nlisteners = (" ECHO_L(
	    "echo") ");\n"
	            "limits = { per_ip = ; };\n");
	hup("reload failed", 1);
	snprintf(want, sizeof(want), "%s:4:", d.conf);
	ck_assert_msg(nt_daemon_log_contains(&d, want), "no \"%s\"", want);
	ck_assert_int_eq(nt_echo_check(c, "after 1", 7, IO_MS), 0);

	rewrite("workers = 2;\nmax_connections = 0;\n"
	        "listeners = (" ECHO_L("echo") ");\n");
	hup("reload failed", 2);
	snprintf(want, sizeof(want), "%s:2:", d.conf);
	ck_assert_msg(nt_daemon_log_contains(&d, want), "no \"%s\"", want);

	/* a second listener on a port that is taken */
	uint16_t busy = 0;
	int holder = nt_listen_tcp("127.0.0.1", &busy);
	ck_assert_int_ge(holder, 0);
	rewrite("workers = 2;\nlisteners = (" ECHO_L(
	            "echo") ",\n { name = \"clash\"; service = \"echo\"; "
	                    "address = \"127.0.0.1\"; port = %u; } );\n",
	        busy);
	hup("reload failed", 3);
	ck_assert(
	    nt_daemon_log_contains(&d, "listener \"clash\": cannot bind"));
	ck_assert(nt_daemon_log_contains(&d, "a listener could not be opened"));
	close(holder);

	/* still the old configuration, serving old and new clients */
	ck_assert_int_eq(nt_echo_check(c, "after 3", 7, IO_MS), 0);
	int c2 = nt_daemon_connect(&d, "echo");
	ck_assert_int_eq(nt_echo_check(c2, "second", 6, IO_MS), 0);
	ck_assert_int_eq(nt_daemon_port(&d, "echo"), port);

	/* and a good file is taken */
	rewrite("workers = 2;\nlisteners = (" ECHO_L("echo") ");\n");
	hup("reloaded", 1);
	ck_assert_int_eq(nt_echo_check(c, "after 4", 7, IO_MS), 0);
	close(c);
	close(c2);
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
}
END_TEST

/*
 * Listeners "keep" (unchanged), "gone" (removed), "moved" (chat, to
 * another address) and, after the reload, "new" (a unix socket): every
 * client connected before stays connected and served, the removed and
 * the old address refuse, the new ones accept.
 */
START_TEST(test_listener_changes)
{
	char line[512], path[300];

	nt_daemon_start(&d, NULL,
	                "workers = 2;\nlisteners = (" ECHO_L("keep") "," ECHO_L(
	                    "gone") "," CHAT_L("moved", "127.0.0.1") ");\n");
	uint16_t gone_port = nt_daemon_port(&d, "gone");
	uint16_t moved_port = nt_daemon_port(&d, "moved");
	int k = nt_daemon_connect(&d, "keep");
	int g = nt_daemon_connect(&d, "gone");
	int m = chat_client("moved");
	ck_assert_int_eq(nt_echo_check(k, "k", 1, IO_MS), 0);
	ck_assert_int_eq(nt_echo_check(g, "g", 1, IO_MS), 0);

	rewrite("workers = 2;\nlisteners = (" ECHO_L("keep") "," CHAT_L(
	    "moved", "127.0.0.2") ",\n"
	                          " { name = \"new\"; service = \"chat\"; "
	                          "path = \"@DIR@/new.sock\"; } );\n");
	hup("reloaded", 1);
	ck_assert(nt_daemon_log_contains(&d, "listener \"gone\" closed"));
	ck_assert(
	    nt_daemon_log_contains(&d, "3 listeners (2 opened, 2 closed)"));
	nt_daemon_refresh_listeners(&d);

	/* everyone who was connected still is */
	ck_assert_int_eq(nt_echo_check(k, "k2", 2, IO_MS), 0);
	ck_assert_int_eq(nt_echo_check(g, "g2", 2, IO_MS), 0);
	chat_alive(m, "moved-old");

	/* new connections: where the configuration now says */
	int k2 = nt_daemon_connect(&d, "keep");
	ck_assert_int_eq(nt_echo_check(k2, "k3", 2, IO_MS), 0);
	ck_assert_int_eq(nt_connect_tcp("127.0.0.1", gone_port, IO_MS),
	                 -ECONNREFUSED);
	ck_assert_int_eq(nt_connect_tcp("127.0.0.1", moved_port, IO_MS),
	                 -ECONNREFUSED);
	const struct nt_test_listener *ml = nt_daemon_listener(&d, "moved");
	ck_assert_ptr_nonnull(ml);
	ck_assert_str_eq(ml->host, "127.0.0.2");
	int m2 = nt_connect_tcp("127.0.0.2", ml->port, IO_MS);
	ck_assert_int_ge(m2, 0);
	ck_assert_int_gt(nt_read_line_with(m2, "Welcome to natter", line,
	                                   sizeof(line), IO_MS),
	                 0);
	snprintf(path, sizeof(path), "%s/new.sock", d.dir);
	int n = nt_connect_unix(path, IO_MS);
	ck_assert_int_ge(n, 0);
	ck_assert_int_gt(nt_read_line_with(n, "Welcome to natter", line,
	                                   sizeof(line), IO_MS),
	                 0);
	/* the old and the new chat clients are in one chat */
	ck_assert_int_eq(nt_write_all(m2, "hello old\r\n", 11, IO_MS), 0);
	ck_assert_int_gt(
	    nt_read_line_with(m, "> hello old", line, sizeof(line), IO_MS), 0);

	/* removing a unix listener removes its file */
	rewrite("workers = 2;\nlisteners = (" ECHO_L("keep") ");\n");
	hup("reloaded", 2);
	ck_assert_int_ne(access(path, F_OK), 0);
	chat_alive(m, "still");
	chat_alive(n, "unix-still");
	int clients[] = {k, g, m, k2, m2, n};
	for (size_t i = 0; i < sizeof(clients) / sizeof(clients[0]); i++)
		close(clients[i]);
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
}
END_TEST

/* a shorter idle timeout applies to connections idle since before it */
START_TEST(test_idle_timeout_applies)
{
	char line[512];

	nt_daemon_start(&d, NULL,
	                "workers = 2;\ntimeouts = { idle = 300; };\n"
	                "listeners = (" ECHO_L("echo") "," CHAT_L(
	                    "chat", "127.0.0.1") ");\n");
	int e = nt_daemon_connect(&d, "echo");
	ck_assert_int_eq(nt_echo_check(e, "x", 1, IO_MS), 0);
	int c = chat_client("chat");
	nt_sleep_ms(1500);
	/* still there after 1.5 s idle: 300 s apply */
	ck_assert_int_eq(nt_expect_eof(e, 10), -ETIMEDOUT);

	rewrite("workers = 2;\ntimeouts = { idle = 1; };\n"
	        "listeners = (" ECHO_L("echo") "," CHAT_L("chat",
	                                                  "127.0.0.1") ");\n");
	uint64_t t0 = nt_test_now_ms();
	hup("reloaded", 1);
	ck_assert_int_gt(nt_read_line_with(c,
	                                   "idle for 1 second: disconnecting",
	                                   line, sizeof(line), IO_MS),
	                 0);
	ck_assert_int_eq(nt_expect_eof(c, IO_MS), 0);
	ck_assert_int_eq(nt_expect_eof(e, IO_MS), 0);
	ck_assert_msg(nt_test_now_ms() - t0 < 5000,
	              "idle clients closed only %llu ms after the reload",
	              (unsigned long long)(nt_test_now_ms() - t0));
	close(c);
	close(e);
}
END_TEST

/*
 * A reload that changes chat.max_line tells every chat session the new
 * limit, in the greeting's machine-readable notice; one that leaves it
 * alone says nothing of it.
 */
START_TEST(test_max_line_told)
{
	char line[512];

	nt_daemon_start(&d, NULL,
	                "chat = { max_line = 512; motd = \"one\"; };\n"
	                "listeners = (" CHAT_L("chat", "127.0.0.1") ");\n");
	int c = chat_client("chat");

	rewrite("chat = { max_line = 100; motd = \"one\"; };\n"
	        "listeners = (" CHAT_L("chat", "127.0.0.1") ");\n");
	hup("reloaded", 1);
	ck_assert_int_gt(
	    nt_read_line_with(c, "*** limits:", line, sizeof(line), IO_MS), 0);
	ck_assert_str_eq(line, "*** limits: max_line=100\r\n");

	rewrite("chat = { max_line = 100; motd = \"two\"; };\n"
	        "listeners = (" CHAT_L("chat", "127.0.0.1") ");\n");
	hup("reloaded", 2);
	ck_assert_int_gt(
	    nt_read_line_with(c, "*** two", line, sizeof(line), IO_MS), 0);
	/* the next line is the pong: no limits notice came in between */
	ck_assert_int_eq(nt_write_all(c, "/ping after\r\n", 13, IO_MS), 0);
	ck_assert_int_gt(nt_read_line(c, line, sizeof(line), IO_MS), 0);
	ck_assert_str_eq(line, "*** pong after\r\n");
	close(c);
}
END_TEST

/*
 * max_connections, the MOTD and log_level apply at once; workers is
 * logged as needing a restart.
 */
START_TEST(test_limits_motd_level)
{
	char line[512];

	nt_daemon_start(&d, NULL,
	                "workers = 2;\nmax_connections = 10;\n"
	                "log_level = \"info\";\n"
	                "chat = { motd = \"old motd\"; };\n"
	                "listeners = (" CHAT_L("chat", "127.0.0.1") ");\n");
	int c = chat_client("chat");
	int c2 = chat_client("chat");
	ck_assert_int_eq(nt_daemon_log_level_count(&d, "debug"), 0);

	rewrite("workers = 3;\nmax_connections = 2;\n"
	        "log_level = \"debug\";\n"
	        "chat = { motd = ( \"new motd\", \"line two\" ); };\n"
	        "listeners = (" CHAT_L("chat", "127.0.0.1") ");\n");
	hup("reloaded", 1);
	ck_assert(nt_daemon_log_contains(
	    &d, "workers = 3 takes effect at the next restart (running 2)"));
	ck_assert_int_gt(nt_read_line_with(c, "message of the day is now", line,
	                                   sizeof(line), IO_MS),
	                 0);
	ck_assert_int_gt(
	    nt_read_line_with(c, "*** new motd", line, sizeof(line), IO_MS), 0);
	ck_assert_int_gt(
	    nt_read_line_with(c, "*** line two", line, sizeof(line), IO_MS), 0);
	/* two are connected, two are allowed: the third is refused */
	int c3 = nt_daemon_connect(&d, "chat");
	ck_assert_int_gt(nt_read_line(c3, line, sizeof(line), IO_MS), 0);
	ck_assert_str_eq(line, "!!! server full, try again later\r\n");
	close(c3);
	/* debug is on now: a nick change is logged */
	ck_assert_int_eq(nt_write_all(c2, "/nick bob\r\n", 11, IO_MS), 0);
	ck_assert_int_gt(
	    nt_read_line_with(c2, "known as bob", line, sizeof(line), IO_MS),
	    0);
	ck_assert(nt_daemon_wait_log(&d, "is now known as bob", 5000));
	ck_assert_int_gt(nt_daemon_log_level_count(&d, "debug"), 0);
	close(c);
	close(c2);
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
}
END_TEST

/* --log-level on the command line wins over a reloaded log_level */
START_TEST(test_cli_level_wins)
{
	static const char *const args[] = {"--log-level", "warning", NULL};
	struct nt_daemon_opts o = {.args = args};
	char path[300];

	ck_assert_int_eq(
	    nt_daemon_spawn(&d, &o,
	                    "log_level = \"debug\";\nlisteners = ({ name = "
	                    "\"u\"; service = \"echo\"; path = "
	                    "\"@DIR@/u.sock\"; });\n"),
	    0);
	/* nothing is logged at warning: wait for the socket to answer */
	snprintf(path, sizeof(path), "%s/u.sock", d.dir);
	int fd = -1;
	for (int i = 0; i < 1500 && fd < 0; i++) {
		fd = nt_connect_unix(path, 1000);
		if (fd < 0)
			nt_sleep_ms(10);
	}
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(nt_echo_check(fd, "up", 2, IO_MS), 0);
	rewrite("log_level = \"debug\";\nlisteners = ({ name = \"u\"; "
	        "service = \"echo\"; path = \"@DIR@/u.sock\"; });\n");
	kill(d.pid, SIGHUP);
	nt_sleep_ms(1000);
	ck_assert_int_eq(nt_echo_check(fd, "still", 5, IO_MS), 0);
	close(fd);
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
	ck_assert_int_eq(nt_daemon_log_level_count(&d, "debug"), 0);
	ck_assert_int_eq(nt_daemon_log_level_count(&d, "info"), 0);
	ck_assert_int_eq(nt_daemon_log_level_count(&d, "notice"), 0);
}
END_TEST

#define PER_IP_CONF(n)                                                         \
	"log_level = \"debug\";\nlimits = { per_ip = " n "; };\n"              \
	"listeners = (" ECHO_L("echo") ");\n"

static int echo_client(void)
{
	int fd = nt_daemon_connect(&d, "echo");

	ck_assert_int_eq(nt_echo_check(fd, "hi", 2, IO_MS), 0);
	return fd;
}

static void echo_refused_per_ip(void)
{
	char line[512];
	int fd = nt_daemon_connect(&d, "echo");

	ck_assert_int_gt(nt_read_line(fd, line, sizeof(line), IO_MS), 0);
	ck_assert_str_eq(line,
	                 "!!! too many connections from your address\r\n");
	close(fd);
}

/*
 * Connections made while per_ip was 0 were never counted, so their end
 * must not give back what connections counted after a reload took: three
 * with no limit, then per_ip = 2 and two more, the three close, and still
 * no third one from the address.
 */
START_TEST(test_per_ip_from_unlimited)
{
	int old[3], now[2];

	nt_daemon_start(&d, NULL, PER_IP_CONF("0"));
	for (int i = 0; i < 3; i++)
		old[i] = echo_client();
	rewrite(PER_IP_CONF("2"));
	hup("reloaded", 1);
	for (int i = 0; i < 2; i++)
		now[i] = echo_client();
	echo_refused_per_ip();
	int closed = log_count("closed: ");
	for (int i = 0; i < 3; i++)
		close(old[i]);
	ck_assert(wait_log_count("closed: ", closed + 3));
	/* their slots (if any) are given back just after that line */
	nt_sleep_ms(100);
	echo_refused_per_ip();
	echo_refused_per_ip();
	/* one of the counted ones leaves: room for exactly one */
	close(now[0]);
	ck_assert(wait_log_count("closed: ", closed + 4));
	nt_sleep_ms(100);
	now[0] = echo_client();
	echo_refused_per_ip();
	close(now[0]);
	close(now[1]);
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
}
END_TEST

#define UNIX_L(mode)                                                           \
	"listeners = ({ name = \"u\"; service = \"echo\";"                     \
	" path = \"@DIR@/u.sock\"; mode = \"" mode "\"; });\n"

static unsigned file_mode(const char *path)
{
	struct stat st;

	ck_assert_msg(lstat(path, &st) == 0, "lstat %s: %s", path,
	              strerror(errno));
	return (unsigned)(st.st_mode & 07777);
}

/*
 * The socket file has exactly the configured mode from the start, whatever
 * natterd's umask, and a reload changes it. Once the path is a symlink to
 * another file, a new mode leaves that file alone and the log says why.
 */
START_TEST(test_unix_mode_not_through_symlink)
{
	char sock[300], victim[300];

	mode_t um = umask(0077);
	nt_daemon_start(&d, NULL, UNIX_L("0644"));
	umask(um);
	snprintf(sock, sizeof(sock), "%s/u.sock", d.dir);
	ck_assert_uint_eq(file_mode(sock), 0644);
	rewrite(UNIX_L("0660"));
	hup("reloaded", 1);
	ck_assert_uint_eq(file_mode(sock), 0660);

	snprintf(victim, sizeof(victim), "%s/victim", d.dir);
	int fd = open(victim, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(chmod(victim, 0600), 0);
	ck_assert_int_eq(unlink(sock), 0);
	ck_assert_int_eq(symlink(victim, sock), 0);
	rewrite(UNIX_L("0666"));
	hup("reloaded", 2);
	ck_assert_uint_eq(file_mode(victim), 0600);
	ck_assert(nt_daemon_log_contains(
	    &d,
	    "is no longer the socket natterd bound; not changing its mode"));
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
	/* and the file natterd did not create is not removed */
	ck_assert_uint_eq(file_mode(victim), 0600);
}
END_TEST

Suite *reload_suite(void);

Suite *reload_suite(void)
{
	Suite *s = suite_create("reload");
	TCase *tc = tcase_create("reload");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_bad_reload_keeps_serving);
	tcase_add_test(tc, test_listener_changes);
	tcase_add_test(tc, test_idle_timeout_applies);
	tcase_add_test(tc, test_limits_motd_level);
	tcase_add_test(tc, test_max_line_told);
	tcase_add_test(tc, test_cli_level_wins);
	tcase_add_test(tc, test_unix_mode_not_through_symlink);
	tcase_add_test(tc, test_per_ip_from_unlimited);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(reload_suite)
