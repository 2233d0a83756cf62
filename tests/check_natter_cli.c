/*
 * The natter client (tools/natter) against the real natterd: scripting
 * mode by count and by pattern, session restore, reconnect status lines,
 * unix sockets, its exit codes, what it shows on a terminal, and text
 * holding 0xFF. Every run is bounded and killed if it overstays.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "natter_test.h"
#include "run_suite.h"

static struct nt_daemon d;

static void teardown(void)
{
	nt_daemon_cleanup(&d);
}

static const char *cli_path(void)
{
	const char *p = getenv("NATTER_CLI");

	return p && *p ? p : "tools/natter";
}

struct cli {
	int code; /* exit code, or -ETIMEDOUT (killed) */
	char out[65536], err[65536];
	size_t out_len, err_len;
};

/* a pipe end into buf until EOF; false at EOF */
static bool drain(int fd, char *buf, size_t *len, size_t cap)
{
	char scratch[4096];
	char *dst = *len < cap - 1 ? buf + *len : scratch;
	size_t room = *len < cap - 1 ? cap - 1 - *len : sizeof(scratch);
	ssize_t n = read(fd, dst, room);

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	if (dst == buf + *len)
		*len += (size_t)n;
	buf[*len] = '\0';
	return true;
}

/*
 * A pseudo-terminal for stdout, as pipe2() would give: [0] the master to
 * read, [1] the terminal, raw so that what is read is what was written
 * (no CR added before LF). Reading the master fails with EIO once every
 * copy of the terminal is closed, which drain() takes as the end.
 */
static void pty_pair(int fds[2])
{
	struct termios t;

	fds[0] = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(fds[0], 0);
	ck_assert_int_eq(grantpt(fds[0]), 0);
	ck_assert_int_eq(unlockpt(fds[0]), 0);
	fds[1] = open(ptsname(fds[0]), O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(fds[1], 0);
	ck_assert_int_eq(tcgetattr(fds[1], &t), 0);
	cfmakeraw(&t);
	ck_assert_int_eq(tcsetattr(fds[1], TCSANOW, &t), 0);
}

/*
 * Run natter with args (NULL-terminated), stdin from in (then EOF, or
 * kept open for hold_ms first), for at most timeout_ms, stdout a pipe or,
 * with tty, a terminal. after_ms > 0: call after() once, that long after
 * the start (to start a server).
 */
static void run_cli_on(struct cli *r, bool tty, const char *in, int hold_ms,
                       int timeout_ms, int after_ms, void (*after)(void),
                       const char *const *args)
{
	const char *argv[32];
	int pin[2], pout[2], perr[2];
	size_t argc = 0;

	memset(r, 0, sizeof(*r));
	argv[argc++] = cli_path();
	for (size_t i = 0; args[i] && argc < 31; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	ck_assert_int_eq(pipe2(pin, O_CLOEXEC), 0);
	if (tty)
		pty_pair(pout);
	else
		ck_assert_int_eq(pipe2(pout, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(perr, O_CLOEXEC), 0);
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	signal(SIGPIPE, SIG_IGN);
	/* small inputs: the pipe holds them all */
	for (size_t off = 0, len = in ? strlen(in) : 0; off < len;) {
		ssize_t n = write(pin[1], in + off, len - off);
		ck_assert(n > 0 || errno == EINTR);
		off += n > 0 ? (size_t)n : 0;
	}
	uint64_t t0 = nt_test_now_ms();
	uint64_t end = t0 + (uint64_t)timeout_ms;
	bool in_open = true, out_open = true, err_open = true, called = false;
	if (hold_ms <= 0) {
		close(pin[1]);
		in_open = false;
	}
	while (out_open || err_open) {
		uint64_t now = nt_test_now_ms();
		if (now >= end)
			break;
		if (in_open && now >= t0 + (uint64_t)hold_ms) {
			close(pin[1]);
			in_open = false;
		}
		if (after && !called && now >= t0 + (uint64_t)after_ms) {
			after();
			called = true;
		}
		struct pollfd p[2] = {{out_open ? pout[0] : -1, POLLIN, 0},
		                      {err_open ? perr[0] : -1, POLLIN, 0}};
		poll(p, 2, 10);
		if (p[0].revents)
			out_open =
			    drain(pout[0], r->out, &r->out_len, sizeof(r->out));
		if (p[1].revents)
			err_open =
			    drain(perr[0], r->err, &r->err_len, sizeof(r->err));
	}
	if (in_open)
		close(pin[1]);
	close(pout[0]);
	close(perr[0]);
	int st;
	r->code = -ETIMEDOUT;
	while (nt_test_now_ms() < end + 2000) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			r->code = nt_exit_code(st);
			return;
		}
		nt_sleep_ms(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

static void run_cli(struct cli *r, const char *in, int hold_ms, int timeout_ms,
                    int after_ms, void (*after)(void), const char *const *args)
{
	run_cli_on(r, false, in, hold_ms, timeout_ms, after_ms, after, args);
}

#define CHECK_CODE(r, want)                                                    \
	ck_assert_msg((r).code == (want),                                      \
	              "exit %d, want %d\n--- stdout:\n%s--- stderr:\n%s",      \
	              (r).code, (want), (r).out, (r).err)

static char port_s[8], echo_s[8];

static void ports(void)
{
	snprintf(port_s, sizeof(port_s), "%u", nt_daemon_port(&d, "chat"));
	snprintf(echo_s, sizeof(echo_s), "%u", nt_daemon_port(&d, "echo"));
}

/* echo: stdin lines come back on stdout; --count ends it */
START_TEST(test_echo_count)
{
	static struct cli r;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	ports();
	const char *args[] = {"--echo",    "--count", "3", "-q",
	                      "127.0.0.1", echo_s,    NULL};
	run_cli(&r, "one\ntwo\r\nthree\n", 5000, 10000, 0, NULL, args);
	CHECK_CODE(r, 0);
	ck_assert_str_eq(r.out, "one\ntwo\nthree\n");
	ck_assert_str_eq(r.err, "");
}
END_TEST

/* chat: nick and room taken, --until a pattern, status on stderr */
START_TEST(test_chat_until)
{
	static struct cli r;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	ports();
	const char *args[] = {"-n",        "scripter", "-r",
	                      "#Ops",      "--until",  "^\\*\\*\\* pong done$",
	                      "127.0.0.1", port_s,     NULL};
	run_cli(&r, "/ping done\n", 5000, 10000, 0, NULL, args);
	CHECK_CODE(r, 0);
	ck_assert(strstr(r.out, "*** you are now known as scripter\n"));
	ck_assert(strstr(r.out, "*** you are now in #ops (1 user)\n"));
	ck_assert(strstr(r.out, "*** pong done\n"));
	/* the library's own pong never shows */
	ck_assert(!strstr(r.out, "pong natter-"));
	char want[128];
	snprintf(want, sizeof(want),
	         "natter: connected to 127.0.0.1:%s as scripter in #ops\n",
	         port_s);
	ck_assert_msg(strstr(r.err, want), "stderr: %s", r.err);
}
END_TEST

/* --only filters what is shown and counted */
START_TEST(test_only_types)
{
	static struct cli r;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	ports();
	const char *args[] = {"--only", "error",     "-c",   "1",
	                      "-q",     "127.0.0.1", port_s, NULL};
	run_cli(&r, "/nosuch\n", 5000, 10000, 0, NULL, args);
	CHECK_CODE(r, 0);
	ck_assert_str_eq(r.out, "!!! unknown command /nosuch; /help lists the "
	                        "commands\n");
}
END_TEST

static void start_server(void)
{
	uint16_t chat = (uint16_t)atoi(port_s), echo = (uint16_t)atoi(echo_s);

	tn_start(&d, "ipv4", "127.0.0.1", chat, echo);
}

/*
 * --wait before the server exists: "reconnecting in X s (attempt N)"
 * lines, then the server starts, the buffered line goes out and comes
 * back.
 */
START_TEST(test_wait_for_server)
{
	static struct cli r;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	ports();
	nt_daemon_kill(&d);
	const char *args[] = {"--echo",      "--wait", "--retry-min", "0.05",
	                      "--retry-max", "0.2",    "-c",          "1",
	                      "127.0.0.1",   echo_s,   NULL};
	run_cli(&r, "patience\n", 10000, 15000, 1500, start_server, args);
	CHECK_CODE(r, 0);
	ck_assert_str_eq(r.out, "patience\n");
	ck_assert_msg(strstr(r.err, "natter: reconnecting in 0.") &&
	                  strstr(r.err, " s (attempt 3)\n"),
	              "stderr: %s", r.err);
	char want[64];
	snprintf(want, sizeof(want), "natter: connected to 127.0.0.1:%s\n",
	         echo_s);
	ck_assert_msg(strstr(r.err, want), "stderr: %s", r.err);
}
END_TEST

/* without --wait a refused first connect ends it, with a reason */
START_TEST(test_refused_exit)
{
	static struct cli r;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	ports();
	nt_daemon_kill(&d);
	const char *args[] = {"127.0.0.1", port_s, NULL};
	uint64_t t0 = nt_test_now_ms();
	run_cli(&r, "hello\n", 5000, 10000, 0, NULL, args);
	CHECK_CODE(r, 1);
	ck_assert_int_lt(nt_test_now_ms() - t0, 3000);
	ck_assert_msg(strstr(r.err, "natter: giving up: cannot connect to "
	                            "127.0.0.1:") &&
	                  strstr(r.err, "connection refused"),
	              "stderr: %s", r.err);
}
END_TEST

/* the server restarts under an interactive session: status, restore */
static void restart_server(void)
{
	tn_restart(&d, "ipv4", "127.0.0.1");
}

START_TEST(test_reconnect_status)
{
	static struct cli r;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	ports();
	const char *args[] = {"-n",          "phoenix", "-r",          "ashes",
	                      "--retry-min", "0.05",    "--retry-max", "0.2",
	                      "-t",          "3",       "127.0.0.1",   port_s,
	                      NULL};
	/* stdin stays open: an interactive session, ended by -t */
	run_cli(&r, NULL, 8000, 15000, 700, restart_server, args);
	CHECK_CODE(r, 1);
	char want[128];
	snprintf(want, sizeof(want),
	         "natter: disconnected: 127.0.0.1:%s closed the connection\n"
	         "natter: reconnecting in 0.",
	         port_s);
	ck_assert_msg(strstr(r.err, want), "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, " s (attempt 1)\n"), "stderr: %s", r.err);
	snprintf(want, sizeof(want),
	         "natter: reconnected to 127.0.0.1:%s as phoenix in #ashes\n",
	         port_s);
	ck_assert_msg(strstr(r.err, want), "stderr: %s", r.err);
	/* both sessions took the nick and the room */
	const char *first = strstr(r.out, "*** you are now known as phoenix");
	ck_assert_ptr_nonnull(first);
	ck_assert_ptr_nonnull(
	    strstr(first + 1, "*** you are now known as phoenix"));
	first = strstr(r.out, "*** you are now in #ashes");
	ck_assert_ptr_nonnull(first);
	ck_assert_ptr_nonnull(strstr(first + 1, "*** you are now in #ashes"));
}
END_TEST

/*
 * Interactive, stdin at EOF: natter ends only once natterd (reading the
 * flood slowly, while its pongs keep coming) has acted on every line,
 * none lost to a reset.
 */
START_TEST(test_stdin_all_delivered)
{
	static struct cli r;
	static char in[80000];
	char line[128];
	size_t len = 0;

	tn_start_flood(&d, "ipv4", "127.0.0.1", 3000, 20);
	ports();
	int obs = tn_observer(&d, "watcher", "feed");
	/* the pongs keep input coming: natter always has some unread */
	for (int i = 1; i <= 2000; i++)
		len += (size_t)snprintf(in + len, sizeof(in) - len,
		                        "%d\n/ping %d\n", i, i);
	const char *args[] = {"-q",     "-n", "feeder",    "-r",   "feed",
	                      "--rate", "0",  "127.0.0.1", port_s, NULL};
	run_cli(&r, in, 0, 30000, 0, NULL, args);
	CHECK_CODE(r, 0);
	ck_assert_msg(strstr(r.out, "*** pong 2000\n"), "no last pong: %s",
	              r.out + (r.out_len > 200 ? r.out_len - 200 : 0));
	for (int next = 1; next <= 2000;) {
		ck_assert_msg(tn_obs_line(obs, line, sizeof(line), 10000) > 0,
		              "line %d never came", next);
		int seq;
		if (sscanf(line, "<feeder> %d", &seq) != 1)
			continue;
		ck_assert_int_eq(seq, next);
		next++;
	}
	close(obs);
}
END_TEST

/*
 * stdin lines holding 0xFF F4 (telnet IAC IP) and 0xFF FA (IAC SB) neither
 * end the session nor swallow the lines after them: the room gets every
 * line, 0xFF shown as U+FFFD, and natter ends normally.
 */
START_TEST(test_stdin_iac)
{
	static struct cli r;
	static const char *const want[] = {
	    "<relay> hello \xef\xbf\xbd\xef\xbf\xbd world",
	    "<relay> x \xef\xbf\xbd\xef\xbf\xbd", "<relay> after"};

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	ports();
	int obs = tn_observer(&d, "watcher", "bridge");
	const char *args[] = {"-n", "relay",     "-r",   "bridge",
	                      "-q", "--rate",    "0",    "-t",
	                      "10", "127.0.0.1", port_s, NULL};
	run_cli(&r, "hello \xff\xf4 world\nx \xff\xfa\nafter\n", 0, 15000, 0,
	        NULL, args);
	CHECK_CODE(r, 0);
	ck_assert_str_eq(r.err, "");
	tn_obs_expect(obs, want, 3, 5000);
	close(obs);
}
END_TEST

/*
 * Lines that would drive a terminal (a title set by OSC, the screen
 * cleared by CSI, a C1 CSI, DEL, BEL, a byte that is not UTF-8), echoed
 * back by natterd's echo service: on a terminal natter shows them
 * cleaned; with --raw, or into a pipe, as they came. The third line: an
 * OSC ended by ESC \, an overlong, a surrogate, a bidi override, then a
 * CSI that never ends.
 */
#define HOSTILE_1 "before\x1b]0;owned\x07\x1b[2Jafter"
#define HOSTILE_2                                                              \
	"a\xc2\x9b"                                                            \
	"31mb\x7f\xff\x07"                                                     \
	"c\tok"
#define HOSTILE_3                                                              \
	"x\x1b]2;t\x1b\\y\xc0\xaf\xed\xa0\x80\xe2\x80\xae\xf0\x9f\x98\x80"     \
	"z\x1b[1"
#define FFFD "\xef\xbf\xbd"

START_TEST(test_terminal_cleaned)
{
	static struct cli r;
	const char *raw = HOSTILE_1 "\n" HOSTILE_2 "\n" HOSTILE_3 "\n";

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	ports();
	const char *args[] = {"--echo",    "--count", "3", "-q",
	                      "127.0.0.1", echo_s,    NULL};
	run_cli_on(&r, true, raw, 5000, 10000, 0, NULL, args);
	CHECK_CODE(r, 0);
	ck_assert_str_eq(r.out,
	                 "beforeafter\n"
	                 "ab" FFFD "c\tok\n"
	                 "xy" FFFD FFFD FFFD FFFD FFFD "\xf0\x9f\x98\x80z\n");

	const char *raw_args[] = {"--echo", "--count",   "3",    "-q",
	                          "--raw",  "127.0.0.1", echo_s, NULL};
	run_cli_on(&r, true, raw, 5000, 10000, 0, NULL, raw_args);
	CHECK_CODE(r, 0);
	ck_assert_str_eq(r.out, raw);

	run_cli(&r, raw, 5000, 10000, 0, NULL, args);
	CHECK_CODE(r, 0);
	ck_assert_str_eq(r.out, raw);
}
END_TEST

/* -U: a unix socket */
START_TEST(test_unix)
{
	static struct cli r;

	nt_daemon_start(&d, NULL,
	                "workers = 1;\n"
	                "listeners = ( { name = \"echo\"; service = \"echo\";"
	                " path = \"@DIR@/echo.sock\"; } );\n");
	const char *args[] = {"--echo", "-q", "-c",
	                      "1",      "-U", nt_daemon_sock_path(&d, "echo"),
	                      NULL};
	run_cli(&r, "via unix\n", 5000, 10000, 0, NULL, args);
	CHECK_CODE(r, 0);
	ck_assert_str_eq(r.out, "via unix\n");
}
END_TEST

/* a condition never met: --timeout ends it with 1 */
START_TEST(test_timeout)
{
	static struct cli r;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	ports();
	const char *args[] = {"--echo", "-c",        "5",    "-t",
	                      "0.5",    "127.0.0.1", echo_s, NULL};
	uint64_t t0 = nt_test_now_ms();
	run_cli(&r, "only one\n", 5000, 10000, 0, NULL, args);
	CHECK_CODE(r, 1);
	ck_assert_int_lt(nt_test_now_ms() - t0, 3000);
	ck_assert_str_eq(r.out, "only one\n");
	ck_assert(strstr(r.err, "natter: timed out\n"));
}
END_TEST

/* usage errors: exit 2, nothing connected */
START_TEST(test_usage)
{
	static struct cli r;
	const char *none[] = {NULL};
	const char *bad_count[] = {"-c", "0", "127.0.0.1", NULL};
	const char *bad_nick[] = {"-n", "guest7", "127.0.0.1", NULL};
	const char *both[] = {"-U", "/tmp/x", "127.0.0.1", NULL};
	const char *bad_re[] = {"-m", "(", "127.0.0.1", NULL};
	const char *version[] = {"--version", NULL};

	run_cli(&r, NULL, 0, 5000, 0, NULL, none);
	CHECK_CODE(r, 2);
	ck_assert(strstr(r.err, "usage: "));
	run_cli(&r, NULL, 0, 5000, 0, NULL, bad_count);
	CHECK_CODE(r, 2);
	run_cli(&r, NULL, 0, 5000, 0, NULL, bad_nick);
	CHECK_CODE(r, 2);
	run_cli(&r, NULL, 0, 5000, 0, NULL, both);
	CHECK_CODE(r, 2);
	run_cli(&r, NULL, 0, 5000, 0, NULL, bad_re);
	CHECK_CODE(r, 2);
	run_cli(&r, NULL, 0, 5000, 0, NULL, version);
	CHECK_CODE(r, 0);
	ck_assert_str_eq(r.out, "natter " PACKAGE_VERSION "\n");
}
END_TEST

static Suite *natter_cli_suite(void)
{
	Suite *s = suite_create("natter_cli");
	TCase *tc = tcase_create("cli");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_echo_count);
	tcase_add_test(tc, test_chat_until);
	tcase_add_test(tc, test_only_types);
	tcase_add_test(tc, test_wait_for_server);
	tcase_add_test(tc, test_refused_exit);
	tcase_add_test(tc, test_reconnect_status);
	tcase_add_test(tc, test_stdin_all_delivered);
	tcase_add_test(tc, test_stdin_iac);
	tcase_add_test(tc, test_terminal_cleaned);
	tcase_add_test(tc, test_unix);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_usage);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_cli_suite)
