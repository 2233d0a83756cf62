/*
 * log.c: the journal fields of an entry (the pure formatter, then the real
 * daemon printing them on stderr with NATTERD_LOG_FIELDS=1, which is the
 * same code the journal path uses), and the choice between the journal and
 * stderr from $JOURNAL_STREAM.
 */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "nt_test.h"
#include "run_suite.h"

#define IO_MS 10000

static struct nt_daemon d;

static void teardown(void)
{
	nt_daemon_cleanup(&d);
}

START_TEST(test_fields_all)
{
	char f[NT_LOG_FIELDS_MAX][NT_LOG_FIELD_MAX];
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_CHAT_NICK,
	                         .client = "[::1]:5000",
	                         .nick = "bob",
	                         .room = "den",
	                         .listener = "chat6"};

	ck_assert_uint_eq(nt_log_fields(&ctx, f, NT_LOG_FIELDS_MAX), 5);
	ck_assert_str_eq(f[0], "MESSAGE_ID=" NT_MSGID_CHAT_NICK);
	ck_assert_str_eq(f[1], "NATTER_CLIENT=[::1]:5000");
	ck_assert_str_eq(f[2], "NATTER_NICK=bob");
	ck_assert_str_eq(f[3], "NATTER_ROOM=den");
	ck_assert_str_eq(f[4], "NATTER_LISTENER=chat6");
}
END_TEST

START_TEST(test_fields_partial)
{
	char f[NT_LOG_FIELDS_MAX][NT_LOG_FIELD_MAX];
	struct nt_log_ctx ctx = {.client = "unix", .nick = "", .room = NULL};

	ck_assert_uint_eq(nt_log_fields(&ctx, f, NT_LOG_FIELDS_MAX), 1);
	ck_assert_str_eq(f[0], "NATTER_CLIENT=unix");
	ck_assert_uint_eq(nt_log_fields(NULL, f, NT_LOG_FIELDS_MAX), 0);
	/* max bounds the output */
	struct nt_log_ctx all = {.msgid = "x", .client = "c", .nick = "n"};
	ck_assert_uint_eq(nt_log_fields(&all, f, 2), 2);
	ck_assert_str_eq(f[1], "NATTER_CLIENT=c");
}
END_TEST

/* a value can never carry a newline or an escape into the journal */
START_TEST(test_fields_scrubbed)
{
	char f[NT_LOG_FIELDS_MAX][NT_LOG_FIELD_MAX];
	char longname[400];
	struct nt_log_ctx ctx = {.room = "a\nMESSAGE=forged\x1b[2J"};

	ck_assert_uint_eq(nt_log_fields(&ctx, f, NT_LOG_FIELDS_MAX), 1);
	ck_assert_str_eq(f[0], "NATTER_ROOM=a?MESSAGE=forged?[2J");
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ctx.room = NULL;
	ctx.listener = longname;
	ck_assert_uint_eq(nt_log_fields(&ctx, f, NT_LOG_FIELDS_MAX), 1);
	ck_assert_uint_eq(strlen(f[0]), NT_LOG_FIELD_MAX - 1);
}
END_TEST

static uint16_t local_port(int fd)
{
	struct sockaddr_in in;
	socklen_t len = sizeof(in);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&in, &len), 0);
	return ntohs(in.sin_port);
}

/*
 * NATTERD_LOG_FIELDS=1: a chat client's events carry its address, nick,
 * room and listener, each kind with its MESSAGE_ID; the listener's line
 * carries the listener.
 */
START_TEST(test_fields_on_stderr)
{
	static const char *const env[] = {"NATTERD_LOG_FIELDS=1", NULL};
	struct nt_daemon_opts o = {.env = env};
	char line[512], want[512];

	nt_daemon_start(&d, &o,
	                "log_level = \"debug\";\nlisteners = ({ name = "
	                "\"talk\"; service = \"chat\"; family = \"ipv4\"; "
	                "address = \"127.0.0.1\"; port = 0; });\n");
	ck_assert(nt_daemon_log_contains(
	    &d, "listener=talk MESSAGE_ID=" NT_MSGID_LISTENING
	        " NATTER_LISTENER=talk\n"));
	ck_assert(
	    nt_daemon_log_contains(&d, " MESSAGE_ID=" NT_MSGID_STARTED "\n"));
	int c = nt_daemon_connect(&d, "talk");
	uint16_t port = local_port(c);
	ck_assert_int_gt(
	    nt_read_line_with(c, "you are now in", line, sizeof(line), IO_MS),
	    0);
	ck_assert_int_eq(
	    nt_write_all(c, "/nick zoe\r\n/join den\r\n", 22, IO_MS), 0);
	ck_assert_int_gt(nt_read_line_with(c, "you are now in #den", line,
	                                   sizeof(line), IO_MS),
	                 0);
	close(c);
	snprintf(want, sizeof(want),
	         " MESSAGE_ID=" NT_MSGID_CONN_CLOSE
	         " NATTER_CLIENT=127.0.0.1:%u NATTER_LISTENER=talk\n",
	         port);
	ck_assert_msg(nt_daemon_wait_log(&d, want, 5000), "no \"%s\"", want);
	snprintf(want, sizeof(want),
	         "is now known as zoe MESSAGE_ID=" NT_MSGID_CHAT_NICK
	         " NATTER_CLIENT=127.0.0.1:%u NATTER_NICK=zoe "
	         "NATTER_ROOM=lobby NATTER_LISTENER=talk\n",
	         port);
	ck_assert_msg(nt_daemon_log_contains(&d, want), "no \"%s\"", want);
	snprintf(want, sizeof(want),
	         "zoe went from #lobby to #den MESSAGE_ID=" NT_MSGID_CHAT_JOIN
	         " NATTER_CLIENT=127.0.0.1:%u NATTER_NICK=zoe "
	         "NATTER_ROOM=den NATTER_LISTENER=talk\n",
	         port);
	ck_assert_msg(nt_daemon_log_contains(&d, want), "no \"%s\"", want);
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
	/* without the variable: the same lines, no fields */
	nt_daemon_cleanup(&d);
	nt_daemon_start(&d, NULL,
	                "listeners = ({ name = \"talk\"; service = \"chat\"; "
	                "address = \"127.0.0.1\"; port = 0; });\n");
	ck_assert(nt_daemon_log_contains(&d, "listener=talk\n"));
	ck_assert(!nt_daemon_log_contains(&d, "MESSAGE_ID="));
}
END_TEST

/*
 * $JOURNAL_STREAM naming our stderr switches to the journal: nothing at all
 * is written to stderr then (entries go to journald, or nowhere where
 * there is none, as here usually), yet natterd serves. A JOURNAL_STREAM
 * that is not our stderr (one inherited from elsewhere) changes nothing.
 */
START_TEST(test_journal_stream)
{
	char env1[64], path[300];
	struct stat st;
	struct nt_notify n = {.fd = -1};

	nt_daemon_init(&d);
	int fd = open(d.log, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	close(fd);
	nt_notify_open(&n, d.dir);
	snprintf(env1, sizeof(env1), "JOURNAL_STREAM=%llu:%llu",
	         (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	const char *const env[] = {env1, n.env, NULL};
	struct nt_daemon_opts o = {.env = env};
	ck_assert_int_eq(
	    nt_daemon_spawn(&d, &o,
	                    "listeners = ({ name = \"e\"; service "
	                    "= \"echo\"; path = \"@DIR@/e\"; });\n"),
	    0);
	ck_assert(nt_notify_wait(&n, "READY=1", NULL, 0, NT_TEST_READY_MS));
	nt_notify_close(&n);
	snprintf(path, sizeof(path), "%s/e", d.dir);
	int c = nt_connect_unix(path, IO_MS);
	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(nt_echo_check(c, "journal", 7, IO_MS), 0);
	close(c);
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
	char *log = nt_daemon_log(&d);
	ck_assert_msg(log[0] == '\0', "written to stderr:\n%s", log);
	free(log);
	nt_daemon_cleanup(&d);

	const char *const other[] = {"JOURNAL_STREAM=1:1", NULL};
	o.env = other;
	nt_daemon_start(&d, &o,
	                "listeners = ({ name = \"e\"; service = \"echo\"; "
	                "address = \"127.0.0.1\"; port = 0; });\n");
	ck_assert_int_gt(nt_daemon_log_level_count(&d, "info"), 0);
}
END_TEST

Suite *log_suite(void);

Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("fields");

	tcase_add_test(tc, test_fields_all);
	tcase_add_test(tc, test_fields_partial);
	tcase_add_test(tc, test_fields_scrubbed);
	suite_add_tcase(s, tc);

	tc = tcase_create("daemon");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fields_on_stderr);
	tcase_add_test(tc, test_journal_stream);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(log_suite)
