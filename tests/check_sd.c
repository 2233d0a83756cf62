/*
 * sd.c and natterd under a stand-in for systemd: the pure helpers (fd
 * names, session records), then the real daemon with a NOTIFY_SOCKET made
 * here (READY, STATUS, RELOADING, STOPPING, the watchdog and a stuck
 * worker), and socket activation through systemd-socket-activate. No
 * systemd PID 1 is needed.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "nt_test.h"
#include "run_suite.h"
#include "sd.h"

#define IO_MS 10000

#define CHAT_ECHO_CONF                                                         \
	"workers = 2;\n"                                                       \
	"listeners = (\n"                                                      \
	" { name = \"chat\"; service = \"chat\"; family = \"ipv4\";\n"         \
	"   address = \"127.0.0.1\"; port = 0; },\n"                           \
	" { name = \"echo\"; service = \"echo\"; family = \"ipv4\";\n"         \
	"   address = \"127.0.0.1\"; port = 0; } );\n"

static struct nt_daemon d;
static struct nt_notify nfy = {.fd = -1};

static void teardown(void)
{
	nt_daemon_cleanup(&d);
	nt_notify_close(&nfy);
}

/* ---- pure helpers ------------------------------------------------------- */

START_TEST(test_fdname_parse)
{
	char key[NT_SD_FDNAME_MAX + 1];

	ck_assert_int_eq(nt_sd_fdname_parse("chat", key, sizeof(key)),
	                 NT_SD_FD_SOCKET);
	ck_assert_str_eq(key, "chat");
	/* systemd's default name is the unit's: a socket, matching nothing */
	ck_assert_int_eq(nt_sd_fdname_parse("natterd.socket", key, sizeof(key)),
	                 NT_SD_FD_SOCKET);
	ck_assert_int_eq(nt_sd_fdname_parse("listener@chat", key, sizeof(key)),
	                 NT_SD_FD_LISTENER);
	ck_assert_str_eq(key, "chat");
	ck_assert_int_eq(nt_sd_fdname_parse("client@5f00-7", key, sizeof(key)),
	                 NT_SD_FD_CLIENT);
	ck_assert_str_eq(key, "5f00-7");
	ck_assert_int_eq(nt_sd_fdname_parse("client@", key, sizeof(key)),
	                 NT_SD_FD_UNKNOWN);
	ck_assert_int_eq(nt_sd_fdname_parse("stored@x", key, sizeof(key)),
	                 NT_SD_FD_UNKNOWN);
	ck_assert_int_eq(nt_sd_fdname_parse("clients@x", key, sizeof(key)),
	                 NT_SD_FD_UNKNOWN);
}
END_TEST

/* the chat session a record's blob holds */
static struct nt_chat_saved chat_saved(const struct nt_sd_session *s)
{
	struct nt_chat_saved c;

	ck_assert_int_eq(nt_chat_session_decode(s->blob, s->blob_len, &c), 0);
	return c;
}

START_TEST(test_session_roundtrip)
{
	struct nt_sd_session in = {.listener = "chat-v6.x",
	                           .socket = UINT64_MAX},
	                     out;
	char buf[NT_SD_SESSION_SIZE];
	int n =
	    nt_chat_session_encode("Alice_99", "den", in.blob, sizeof(in.blob));

	ck_assert_int_gt(n, 0);
	in.blob_len = (uint32_t)n;
	nt_sd_session_encode(&in, buf);
	ck_assert_int_eq(nt_sd_session_decode(buf, sizeof(buf), &out), 0);
	ck_assert_str_eq(out.listener, "chat-v6.x");
	ck_assert_str_eq(chat_saved(&out).nick, "Alice_99");
	ck_assert_str_eq(chat_saved(&out).room, "den");
	ck_assert_uint_eq(out.socket, UINT64_MAX);
	/* the padding after the text is zeros: a shorter record written over
	 * a longer one leaves nothing of it behind */
	for (size_t i = strlen(buf); i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], 0);

	/* echo: no nick, no room */
	struct nt_sd_session e = {.listener = "echo"};
	nt_sd_session_encode(&e, buf);
	ck_assert_int_eq(nt_sd_session_decode(buf, sizeof(buf), &out), 0);
	ck_assert_uint_eq(out.blob_len, 0);
	ck_assert_str_eq(chat_saved(&out).nick, "");
	ck_assert_str_eq(chat_saved(&out).room, "");
	ck_assert_uint_eq(out.socket, 0);

	/* a record of a natterd that stored each client alone: no socket */
	static const char alone[] = "natter-session 1\nlistener=echo\n";
	ck_assert_int_eq(nt_sd_session_decode(alone, sizeof(alone), &out), 0);
	ck_assert_uint_eq(out.socket, 0);
}
END_TEST

START_TEST(test_session_rejects)
{
	struct nt_sd_session out = {.listener = "untouched"};
	static const char *const bad[] = {
	    "",
	    "natter-session 2\nlistener=chat\n",
	    "natter-session 1\n",                             /* no listener */
	    "natter-session 1\nlistener=chat\nnick=9lives\n", /* bad nick */
	    "natter-session 1\nlistener=chat\nroom=a b\n",    /* bad room */
	    "natter-session 1\nlistener=ch at\n",             /* bad name */
	    "natter-session 1\nlistener=chat\nnick=bob",      /* cut */
	    "natter-session 1\nlistener=chat\nnick\n",        /* no '=' */
	    "natter-session 1\nlistener=chat\nnick=\x1b[2Jx\n", /* escape */
	    "natter-session 1\nlistener=chat\nsocket=\n",
	    "natter-session 1\nlistener=chat\nsocket=12x\n",
	    "natter-session 1\nlistener=chat\nsocket=-1\n",
	    "natter-session 1\nlistener=chat\nsocket=18446744073709551616\n",
	    "natter-session 3\nlistener=chat\nblob=0\n", /* unknown version */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(nt_sd_session_decode(bad[i], strlen(bad[i]),
		                                   &out) == -EINVAL,
		              "accepted bad record %zu", i);
		ck_assert_str_eq(out.listener, "untouched");
	}
	/* a key from a later version is skipped, a room is normalized */
	static const char later[] =
	    "natter-session 1\nlistener=chat\nflavour=x\nroom=#Den\n";
	ck_assert_int_eq(nt_sd_session_decode(later, strlen(later), &out), 0);
	ck_assert_str_eq(chat_saved(&out).room, "den");
}
END_TEST

/*
 * A record as natterd wrote it before blobs (natter-session 1 with nick=
 * and room= lines) is still read, so a restart onto this natterd keeps
 * every chat session: the chat service finds its nick and room.
 */
START_TEST(test_session_v1_compat)
{
	char buf[NT_SD_SESSION_SIZE] = {0};
	struct nt_sd_session out;

	/* exactly what that natterd's encoder wrote */
	snprintf(
	    buf, sizeof(buf),
	    "natter-session 1\nlistener=%s\nnick=%s\nroom=%s\nsocket=%llu\n",
	    "chat", "alice", "den", 4242ULL);
	ck_assert_int_eq(nt_sd_session_decode(buf, sizeof(buf), &out), 0);
	ck_assert_str_eq(out.listener, "chat");
	ck_assert_uint_eq(out.socket, 4242);
	ck_assert_str_eq(chat_saved(&out).nick, "alice");
	ck_assert_str_eq(chat_saved(&out).room, "den");

	/* an echo client's record of then: an empty blob */
	memset(buf, 0, sizeof(buf));
	snprintf(buf, sizeof(buf),
	         "natter-session 1\nlistener=echo\nnick=\nroom=\nsocket=7\n");
	ck_assert_int_eq(nt_sd_session_decode(buf, sizeof(buf), &out), 0);
	ck_assert_uint_eq(out.blob_len, 0);
	ck_assert_uint_eq(out.socket, 7);
}
END_TEST

/* the blob is opaque to the record and bounded by it */
START_TEST(test_session_blob_bounds)
{
	struct nt_sd_session in = {.socket = UINT64_MAX}, out;
	char buf[NT_SD_SESSION_SIZE];

	/* the longest header and the longest blob, binary, fit */
	memset(in.listener, 'l', NT_NAME_MAX);
	in.listener[NT_NAME_MAX] = '\0';
	for (size_t i = 0; i < NT_SD_BLOB_MAX; i++)
		in.blob[i] = (uint8_t)(i * 7);
	in.blob_len = NT_SD_BLOB_MAX;
	nt_sd_session_encode(&in, buf);
	ck_assert_int_eq(nt_sd_session_decode(buf, sizeof(buf), &out), 0);
	ck_assert_uint_eq(out.blob_len, NT_SD_BLOB_MAX);
	ck_assert_int_eq(memcmp(out.blob, in.blob, NT_SD_BLOB_MAX), 0);
	ck_assert_str_eq(out.listener, in.listener);

	out.listener[0] = '\0';
	struct {
		const char *head;
		size_t extra; /* blob bytes after head */
		bool garbage; /* a stray byte after the blob */
		bool cut;     /* the record ends with the bytes given */
	} bad[] = {
	    {"natter-session 2\nlistener=x\nblob=129\n", 129, false, false},
	    {"natter-session 2\nlistener=x\nblob=10\n", 5, false, true},
	    {"natter-session 2\nlistener=x\nblob=3\n", 3, true, false},
	    {"natter-session 2\nlistener=x\nblob=-1\n", 0, false, false},
	    {"natter-session 2\nlistener=x\nblob=\n", 0, false, false},
	    {"natter-session 2\nlistener=x\n", 0, false, false},
	    {"natter-session 2\nblob=0\n", 0, false, false},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char rec[512] = {0};
		size_t n = strlen(bad[i].head);
		memcpy(rec, bad[i].head, n);
		memset(rec + n, 'b', bad[i].extra);
		n += bad[i].extra;
		if (bad[i].garbage)
			rec[n + 7] = 'g';
		size_t len = bad[i].cut ? n : NT_SD_SESSION_SIZE;
		ck_assert_msg(nt_sd_session_decode(rec, len, &out) == -EINVAL,
		              "accepted bad record %zu", i);
		ck_assert_str_eq(out.listener, "");
	}

	/* what the chat service refuses in its own blob */
	struct nt_chat_saved c = {.nick = "untouched"};
	static const char *const chat_bad[] = {
	    "chat 2\nnick=bob\n",
	    "chat 1\nnick=9lives\n",
	    "chat 1\nroom=a b\n",
	    "chat 1\nnick=bob",
	    "nick\n",
	    "chat",
	};
	for (size_t i = 0; i < sizeof(chat_bad) / sizeof(chat_bad[0]); i++)
		ck_assert_msg(
		    nt_chat_session_decode((const uint8_t *)chat_bad[i],
		                           strlen(chat_bad[i]), &c) == -EINVAL,
		    "chat accepted bad blob %zu", i);
	ck_assert_int_eq(
	    nt_chat_session_decode((const uint8_t *)"nick=a\0b\n", 9, &c),
	    -EINVAL);
	ck_assert_str_eq(c.nick, "untouched");
	ck_assert_int_eq(nt_chat_session_encode("bob", "den", in.blob, 10),
	                 -ENOSPC);
}
END_TEST

/* ---- notifications ------------------------------------------------------ */

/* natterd with NOTIFY_SOCKET (and extra env), not waiting for ready */
/* hooks: run natterd-test, the build with the test-only hooks */
static void spawn_notified(const char *const *env_extra, const char *conf,
                           bool hooks)
{
	const char *env[8];
	size_t n = 0;

	nt_daemon_init(&d);
	nt_notify_open(&nfy, d.dir);
	env[n++] = nfy.env;
	for (size_t i = 0; env_extra && env_extra[i] && n < 7; i++)
		env[n++] = env_extra[i];
	env[n] = NULL;
	struct nt_daemon_opts o = {.env = env, .test_hooks = hooks};
	ck_assert_int_eq(nt_daemon_spawn(&d, &o, "%s", conf), 0);
}

static void wait_notify(const char *line, char *msg, size_t size, int ms)
{
	if (!nt_notify_wait(&nfy, line, msg, size, ms)) {
		nt_daemon_dump_log(&d);
		ck_abort_msg("no %s from natterd within %d ms", line, ms);
	}
}

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * READY=1 comes with MAINPID and a STATUS, and only once the listeners
 * accept: at that moment both are served, and the ready line is logged.
 */
START_TEST(test_ready)
{
	char msg[4096], val[256], line[512];

	spawn_notified(NULL, CHAT_ECHO_CONF, false);
	wait_notify("READY=1", msg, sizeof(msg), NT_TEST_READY_MS);
	/* the log line is written before READY=1 is sent */
	ck_assert_int_eq(nt_daemon_wait_ready(&d, 0), 0);
	ck_assert(nt_notify_field(msg, "MAINPID", val, sizeof(val)));
	ck_assert_int_eq(atoi(val), d.pid);
	ck_assert(nt_notify_field(msg, "STATUS", val, sizeof(val)));
	ck_assert_str_eq(val, "0 connections, 0 rooms, 2 listeners");

	int c = nt_daemon_connect(&d, "chat");
	ck_assert_int_gt(nt_read_line_with(c, "Welcome to natter", line,
	                                   sizeof(line), IO_MS),
	                 0);
	int e = nt_daemon_connect(&d, "echo");
	ck_assert_int_eq(nt_echo_check(e, "ready?", 6, IO_MS), 0);
	close(c);
	close(e);
}
END_TEST

/* STATUS= follows the connections, rooms and listeners within seconds */
START_TEST(test_status)
{
	char msg[4096], val[256], line[512];
	int c[3];

	spawn_notified(NULL, CHAT_ECHO_CONF, false);
	wait_notify("READY=1", msg, sizeof(msg), NT_TEST_READY_MS);
	ck_assert_int_eq(nt_daemon_wait_ready(&d, 0), 0);
	for (int i = 0; i < 3; i++) {
		c[i] = nt_daemon_connect(&d, "chat");
		ck_assert_int_gt(nt_read_line_with(c[i], "you are now in", line,
		                                   sizeof(line), IO_MS),
		                 0);
	}
	ck_assert_int_eq(nt_write_all(c[2], "/join den\r\n", 11, IO_MS), 0);
	ck_assert_int_gt(nt_read_line_with(c[2], "you are now in #den", line,
	                                   sizeof(line), IO_MS),
	                 0);
	bool seen = false;
	uint64_t deadline = nt_test_now_ms() + 10000;
	while (!seen && nt_test_now_ms() < deadline &&
	       nt_notify_wait(&nfy, "STATUS", msg, sizeof(msg), 10000)) {
		ck_assert(nt_notify_field(msg, "STATUS", val, sizeof(val)));
		seen = !strcmp(val, "3 connections, 2 rooms, 2 listeners");
	}
	ck_assert_msg(seen,
	              "no STATUS with 3 connections and 2 rooms; last "
	              "\"%s\"",
	              val);
	/* and back down when they leave */
	for (int i = 0; i < 3; i++)
		close(c[i]);
	seen = false;
	deadline = nt_test_now_ms() + 10000;
	while (!seen && nt_test_now_ms() < deadline &&
	       nt_notify_wait(&nfy, "STATUS", msg, sizeof(msg), 10000)) {
		ck_assert(nt_notify_field(msg, "STATUS", val, sizeof(val)));
		seen = !strcmp(val, "0 connections, 0 rooms, 2 listeners");
	}
	ck_assert_msg(seen, "STATUS did not go back to 0; last \"%s\"", val);
}
END_TEST

/*
 * SIGHUP: RELOADING=1 with the CLOCK_MONOTONIC time of the reload, then
 * READY=1 once it is done (also when the new file is bad); SIGTERM:
 * STOPPING=1, then a clean exit.
 */
START_TEST(test_reload_and_stop)
{
	char msg[4096], val[256];

	spawn_notified(NULL, CHAT_ECHO_CONF, false);
	wait_notify("READY=1", msg, sizeof(msg), NT_TEST_READY_MS);

	uint64_t before = mono_usec();
	kill(d.pid, SIGHUP);
	wait_notify("RELOADING=1", msg, sizeof(msg), IO_MS);
	uint64_t after = mono_usec();
	ck_assert(nt_notify_field(msg, "MONOTONIC_USEC", val, sizeof(val)));
	unsigned long long t = strtoull(val, NULL, 10);
	ck_assert_msg(t >= before && t <= after,
	              "MONOTONIC_USEC=%llu not within [%llu, %llu]", t,
	              (unsigned long long)before, (unsigned long long)after);
	wait_notify("READY=1", msg, sizeof(msg), IO_MS);
	ck_assert(nt_daemon_wait_log(&d, "reloaded", 5000));

	/* a broken file: still RELOADING=1 then READY=1, and STATUS says */
	FILE *f = fopen(d.conf, "we");
	ck_assert_ptr_nonnull(f);
	fputs("workers = ;\n", f);
	fclose(f);
	kill(d.pid, SIGHUP);
	wait_notify("RELOADING=1", msg, sizeof(msg), IO_MS);
	wait_notify("READY=1", msg, sizeof(msg), IO_MS);
	ck_assert(nt_notify_field(msg, "STATUS", val, sizeof(val)));
	ck_assert_msg(strstr(val, "last reload failed"), "STATUS=%s", val);

	kill(d.pid, SIGTERM);
	wait_notify("STOPPING=1", msg, sizeof(msg), IO_MS);
	ck_assert_int_eq(nt_daemon_wait_exit(&d, NT_TEST_STOP_MS), 0);
}
END_TEST

/* ---- watchdog ----------------------------------------------------------- */

/* times (ms since start) of WATCHDOG=1 pings during ms; returns count */
static size_t collect_pings(uint64_t *at, size_t max, int ms, uint64_t t0)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)ms;
	size_t n = 0;
	char msg[4096];

	for (;;) {
		uint64_t now = nt_test_now_ms();
		if (now >= deadline)
			return n;
		if (nt_notify_recv(&nfy, msg, sizeof(msg), NULL, 0, NULL,
		                   (int)(deadline - now)) < 0)
			return n;
		if (!strcmp(msg, "WATCHDOG=1") && n < max)
			at[n++] = nt_test_now_ms() - t0;
	}
}

/* WATCHDOG_USEC=2 s: a ping about every second, none without it */
START_TEST(test_watchdog_rate)
{
	static const char *const env[] = {"WATCHDOG_USEC=2000000", NULL};
	uint64_t at[64];
	char msg[4096];

	spawn_notified(env, CHAT_ECHO_CONF, false);
	wait_notify("READY=1", msg, sizeof(msg), NT_TEST_READY_MS);
	uint64_t t0 = nt_test_now_ms();
	size_t n = collect_pings(at, 64, 6000, t0);
	/* every 1 s (half the interval), a little later when a thread's
	 * once-a-second heartbeat is due: 4 to 6 in 6 s */
	ck_assert_msg(n >= 4 && n <= 7, "%zu pings in 6 s", n);
	for (size_t i = 1; i < n; i++) {
		uint64_t gap = at[i] - at[i - 1];
		ck_assert_msg(gap >= 800 && gap <= 1800,
		              "pings %zu and %zu are %llu ms apart", i - 1, i,
		              (unsigned long long)gap);
	}
	nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS);
	nt_daemon_cleanup(&d);
	nt_notify_close(&nfy);

	/* no WATCHDOG_USEC: no pings at all */
	spawn_notified(NULL, CHAT_ECHO_CONF, false);
	wait_notify("READY=1", msg, sizeof(msg), NT_TEST_READY_MS);
	ck_assert_int_eq(collect_pings(at, 64, 3000, nt_test_now_ms()), 0);
}
END_TEST

/*
 * A worker that stops running (the test hook blocks worker 0 for 6 s on
 * SIGUSR2) stops the pings, which is what gets a stuck natterd restarted;
 * they come back when it runs again.
 */
START_TEST(test_watchdog_stuck_worker)
{
	static const char *const env[] = {"WATCHDOG_USEC=2000000",
	                                  "NATTERD_TEST_STALL_MS=6000", NULL};
	uint64_t at[64];
	char msg[4096];

	spawn_notified(env, CHAT_ECHO_CONF, true);
	wait_notify("READY=1", msg, sizeof(msg), NT_TEST_READY_MS);
	ck_assert_int_ge(collect_pings(at, 64, 2500, nt_test_now_ms()), 1);

	uint64_t t0 = nt_test_now_ms();
	kill(d.pid, SIGUSR2);
	size_t n = collect_pings(at, 64, 9000, t0);
	/* at most one ping that was already due as the worker stopped,
	 * then none until it runs again at 6 s */
	size_t early = 0;
	for (size_t i = 0; i < n && at[i] < 5500; i++)
		early++;
	ck_assert_msg(early <= 1,
	              "%zu pings while worker 0 was stuck (first "
	              "at %llu ms)",
	              early, (unsigned long long)(n ? at[0] : 0));
	ck_assert_msg(n > early, "no ping after the worker ran again");
	ck_assert(nt_daemon_log_contains(&d, "test hook: worker 0 stalls"));
	ck_assert(nt_daemon_log_contains(&d, "watchdog: worker 0 has not run"));
	ck_assert(nt_daemon_log_contains(&d, "every thread runs again"));
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
}
END_TEST

/* ---- socket activation -------------------------------------------------- */

/* a port that was free a moment ago (systemd-socket-activate wants one) */
static uint16_t free_port(void)
{
	uint16_t port = 0;
	int fd = nt_listen_tcp("127.0.0.1", &port);

	ck_assert_int_ge(fd, 0);
	close(fd);
	return port;
}

/*
 * systemd-socket-activate binds a TCP and a unix socket named "chat" and
 * "uchat", and starts natterd at the first connection: natterd serves
 * them as its listeners of those names (whatever their configured
 * addresses), says so, and binds "echo" itself.
 */
START_TEST(test_socket_activation)
{
	char l1[64], l2[300], line[512];
	uint16_t port = free_port();

	nt_daemon_init(&d);
	snprintf(l1, sizeof(l1), "127.0.0.1:%u", port);
	snprintf(l2, sizeof(l2), "%s/chat.sock", d.dir);
	const char *const wrapper[] = {
	    "systemd-socket-activate", "-l", l1, "-l", l2,
	    "--fdname=chat:uchat",     NULL};
	struct nt_daemon_opts o = {.wrapper = wrapper};
	int rc = nt_daemon_spawn(
	    &d, &o,
	    "workers = 2;\n"
	    "listeners = (\n"
	    " { name = \"chat\"; service = \"chat\"; family = \"ipv4\";\n"
	    "   address = \"127.0.0.1\"; port = 1; },\n"
	    " { name = \"uchat\"; service = \"chat\"; path = \"@DIR@/x\"; },\n"
	    " { name = \"echo\"; service = \"echo\"; family = \"ipv4\";\n"
	    "   address = \"127.0.0.1\"; port = 0; } );\n");
	ck_assert_msg(rc == 0, "cannot start systemd-socket-activate: %s",
	              strerror(-rc));
	/* it execs natterd when the first client comes */
	int c = -1;
	for (int i = 0; i < 500 && c < 0; i++) {
		c = nt_connect_tcp("127.0.0.1", port, 1000);
		if (c < 0)
			nt_sleep_ms(20);
	}
	ck_assert_msg(c >= 0, "cannot connect to the activation socket");
	ck_assert_int_eq(nt_daemon_wait_ready(&d, NT_TEST_READY_MS), 0);
	ck_assert_int_gt(nt_read_line_with(c, "Welcome to natter", line,
	                                   sizeof(line), IO_MS),
	                 0);
	snprintf(line, sizeof(line),
	         "listening on 127.0.0.1:%u (chat) listener=chat (socket "
	         "passed by systemd)",
	         port);
	ck_assert_msg(nt_daemon_log_contains(&d, line), "no \"%s\"", line);
	snprintf(line, sizeof(line),
	         "listening on %s (chat) listener=uchat (socket passed by "
	         "systemd)",
	         l2);
	ck_assert_msg(nt_daemon_log_contains(&d, line), "no \"%s\"", line);
	ck_assert(nt_daemon_log_contains(
	    &d, "listeners from systemd socket activation: chat, uchat"));
	/* the configured path was not used; echo was bound as configured */
	char x[300];
	snprintf(x, sizeof(x), "%s/x", d.dir);
	ck_assert_int_ne(access(x, F_OK), 0);
	int u = nt_connect_unix(l2, IO_MS);
	ck_assert_int_ge(u, 0);
	ck_assert_int_gt(nt_read_line_with(u, "Welcome to natter", line,
	                                   sizeof(line), IO_MS),
	                 0);
	int e = nt_daemon_connect(&d, "echo");
	ck_assert_int_eq(nt_echo_check(e, "bound", 5, IO_MS), 0);
	close(c);
	close(u);
	close(e);
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
	/* systemd's socket file is systemd's to remove, not natterd's */
	ck_assert_int_eq(access(l2, F_OK), 0);
}
END_TEST

/* a socket whose name matches no listener: exit 3, naming it */
START_TEST(test_socket_activation_bad_name)
{
	char l1[64];
	uint16_t port = free_port();

	snprintf(l1, sizeof(l1), "127.0.0.1:%u", port);
	const char *const wrapper[] = {"systemd-socket-activate", "-l", l1,
	                               "--fdname=chatt", NULL};
	struct nt_daemon_opts o = {.wrapper = wrapper};
	ck_assert_int_eq(nt_daemon_spawn(&d, &o, "%s", CHAT_ECHO_CONF), 0);
	int c = -1;
	for (int i = 0; i < 500 && c < 0; i++) {
		c = nt_connect_tcp("127.0.0.1", port, 1000);
		if (c < 0)
			nt_sleep_ms(20);
	}
	ck_assert_int_ge(c, 0);
	int code = nt_daemon_wait_exit(&d, NT_TEST_READY_MS);
	if (code != 3)
		nt_daemon_dump_log(&d);
	ck_assert_int_eq(code, 3);
	ck_assert(nt_daemon_log_contains(
	    &d, "systemd passed a socket named \"chatt\" (fd 3), but no "
	        "listener is named so"));
	ck_assert(!nt_daemon_log_contains(&d, " ready"));
	close(c);
}
END_TEST

Suite *sd_suite(void);

Suite *sd_suite(void)
{
	Suite *s = suite_create("sd");
	TCase *tc;

	tc = tcase_create("pure");
	tcase_add_test(tc, test_fdname_parse);
	tcase_add_test(tc, test_session_roundtrip);
	tcase_add_test(tc, test_session_rejects);
	tcase_add_test(tc, test_session_v1_compat);
	tcase_add_test(tc, test_session_blob_bounds);
	suite_add_tcase(s, tc);

	tc = tcase_create("notify");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ready);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_reload_and_stop);
	suite_add_tcase(s, tc);

	tc = tcase_create("watchdog");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_watchdog_rate);
	tcase_add_test(tc, test_watchdog_stuck_worker);
	suite_add_tcase(s, tc);

	tc = tcase_create("activation");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_socket_activation);
	tcase_add_test(tc, test_socket_activation_bad_name);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(sd_suite)
