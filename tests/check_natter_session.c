/*
 * The chat session as libnatter follows it: confirmations update the nick
 * and room (and, once established, what is restored), pongs match only
 * our token, and the replies a restore makes are recognised. Plus the
 * client's option checks, which need no server.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "natter-int.h"
#include "run_suite.h"

static enum natter__sev feed(struct natter__session *s, const char *line,
                             bool established)
{
	struct natter_line l;

	natter_parse_line(line, strlen(line), &l);
	return natter__session_line(s, &l, established);
}

/*
 * The greeting's "limits:" notice: max_line among any keys, in any order;
 * anything malformed, or said by a user, sets nothing; a new connection
 * forgets it.
 */
START_TEST(test_limits)
{
	struct natter__session s;

	natter__session_init(&s, false, NULL, NULL, 1);
	ck_assert_uint_eq(s.max_line, 0);
	ck_assert_int_eq(feed(&s, "*** limits: max_line=512", false),
	                 NATTER__SEV_LIMITS);
	ck_assert_uint_eq(s.max_line, 512);
	ck_assert_int_eq(
	    feed(&s, "*** limits: max_nick=24 max_line=300 x", true),
	    NATTER__SEV_LIMITS);
	ck_assert_uint_eq(s.max_line, 300);
	static const char *const bad[] = {
	    "*** limits: max_line=",
	    "*** limits: max_line=0",
	    "*** limits: max_line=12x",
	    "*** limits: max_line=-5",
	    "*** limits: max_line=99999999999",
	    "*** limits:max_line=80",
	    "*** limits: max_nick=80",
	    "<eve> limits: max_line=80",
	    "*** eve said limits: max_line=80",
	    "!!! limits: max_line=80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(feed(&s, bad[i], true) == NATTER__SEV_NONE, "%s",
		              bad[i]);
		ck_assert_uint_eq(s.max_line, 300);
	}
	natter__session_reset(&s);
	ck_assert_uint_eq(s.max_line, 0);
}
END_TEST

START_TEST(test_tracking)
{
	struct natter__session s;

	natter__session_init(&s, false, "alice", "#Ops", 1);
	ck_assert_str_eq(s.want_nick, "alice");
	ck_assert_str_eq(s.want_room, "ops"); /* folded, without '#' */

	/* during a restore: what the server says, not what to restore */
	ck_assert_int_eq(
	    feed(&s, "*** your nick is guest0007 (change it)", false),
	    NATTER__SEV_NONE);
	ck_assert_str_eq(s.nick, "guest0007");
	ck_assert_int_eq(feed(&s, "*** you are now in #lobby (3 users)", false),
	                 NATTER__SEV_ROOM);
	ck_assert_str_eq(s.room, "lobby");
	ck_assert_str_eq(s.want_room, "ops");
	ck_assert_int_eq(feed(&s, "*** you are now known as alice", false),
	                 NATTER__SEV_NICK);
	ck_assert_str_eq(s.nick, "alice");

	/* established: the user's own /nick and /join are remembered */
	ck_assert_int_eq(feed(&s, "*** you are now known as bob", true),
	                 NATTER__SEV_NICK);
	ck_assert_str_eq(s.want_nick, "bob");
	ck_assert_int_eq(feed(&s, "*** you are now in #dev (1 user)", true),
	                 NATTER__SEV_ROOM);
	ck_assert_str_eq(s.want_room, "dev");

	/* another user's words are not the server's */
	ck_assert_int_eq(feed(&s, "<eve> *** you are now known as eve", true),
	                 NATTER__SEV_NONE);
	ck_assert_int_eq(feed(&s, "*** you are now known as bad nick!", true),
	                 NATTER__SEV_NONE);
	ck_assert_str_eq(s.want_nick, "bob");
	ck_assert_int_eq(feed(&s, "*** carol is now known as dave", true),
	                 NATTER__SEV_NONE);
	ck_assert_str_eq(s.want_nick, "bob");
}
END_TEST

START_TEST(test_restore_replies)
{
	struct natter__session s;

	natter__session_init(&s, false, "alice", "lobby", 1);
	ck_assert_int_eq(feed(&s, "!!! nick alice is taken", false),
	                 NATTER__SEV_NICK_TAKEN);
	ck_assert_str_eq(s.taken, "alice");
	ck_assert_int_eq(feed(&s, "!!! you are already in #lobby", false),
	                 NATTER__SEV_ALREADY);
	ck_assert_str_eq(s.room, "lobby");
	/* established, the same error is the user's business */
	ck_assert_int_eq(feed(&s, "!!! you are already in #lobby", true),
	                 NATTER__SEV_NONE);
	ck_assert_int_eq(feed(&s, "!!! nick is taken", false),
	                 NATTER__SEV_NONE);
	natter__session_reset(&s);
	ck_assert_str_eq(s.nick, "");
	ck_assert_str_eq(s.taken, "");
	ck_assert_str_eq(s.want_nick, "alice");
}
END_TEST

START_TEST(test_pong_chat)
{
	struct natter__session s, t;
	char ping[64], pong[96];

	natter__session_init(&s, false, NULL, NULL, 0x1234);
	natter__session_init(&t, false, NULL, NULL, 0x5678);
	size_t n = natter__session_ping(&s, ping, sizeof(ping));
	ck_assert_uint_eq(n, strlen(ping));
	ck_assert(!strncmp(ping, "/ping natter-", 13));
	natter__session_ping(&t, pong, sizeof(pong));
	/* someone else's token, or none */
	ck_assert_int_eq(feed(&s, "*** pong", true), NATTER__SEV_NONE);
	snprintf(pong, sizeof(pong), "*** pong %s", t.token);
	ck_assert_int_eq(feed(&s, pong, true), NATTER__SEV_NONE);
	snprintf(pong, sizeof(pong), "<eve> pong %s", s.token);
	ck_assert_int_eq(feed(&s, pong, true), NATTER__SEV_NONE);
	snprintf(pong, sizeof(pong), "*** pong %sx", s.token);
	ck_assert_int_eq(feed(&s, pong, true), NATTER__SEV_NONE);
	/* ours, once */
	snprintf(pong, sizeof(pong), "*** pong %s", s.token);
	ck_assert_int_eq(feed(&s, pong, true), NATTER__SEV_PONG);
	ck_assert_int_eq(feed(&s, pong, true), NATTER__SEV_NONE);
	/* each ping a new token */
	char first[64];
	strcpy(first, s.token);
	natter__session_ping(&s, ping, sizeof(ping));
	ck_assert_str_ne(first, s.token);
}
END_TEST

/* echo: the ping comes back as it went, and a chat pong means nothing */
START_TEST(test_pong_echo)
{
	struct natter__session s;
	char ping[64], line[96];

	natter__session_init(&s, true, NULL, NULL, 9);
	natter__session_ping(&s, ping, sizeof(ping));
	snprintf(line, sizeof(line), "*** pong %s", s.token);
	ck_assert_int_eq(feed(&s, line, true), NATTER__SEV_NONE);
	ck_assert_int_eq(feed(&s, "*** you are now known as x", true),
	                 NATTER__SEV_NONE);
	ck_assert_int_eq(feed(&s, ping, true), NATTER__SEV_PONG);
	ck_assert_int_eq(feed(&s, ping, true), NATTER__SEV_NONE);
}
END_TEST

START_TEST(test_names)
{
	char room[NATTER__ROOM_MAX + 1];

	ck_assert(natter__nick_valid("a"));
	ck_assert(natter__nick_valid("Alice_the-2nd"));
	ck_assert(!natter__nick_valid(""));
	ck_assert(!natter__nick_valid("2pac"));
	ck_assert(!natter__nick_valid("a b"));
	ck_assert(natter__nick_valid("abcdefghijklmnopqrstuvwxyzabcdef"));
	ck_assert(!natter__nick_valid("abcdefghijklmnopqrstuvwxyzabcdefg"));
	ck_assert_int_eq(natter__room_norm("#Dev-Ops", room), 0);
	ck_assert_str_eq(room, "dev-ops");
	ck_assert_int_eq(natter__room_norm("#", room), NATTER_EINVAL);
	ck_assert_int_eq(natter__room_norm("a b", room), NATTER_EINVAL);
	ck_assert_int_eq(
	    natter__room_norm("#abcdefghijklmnopqrstuvwxyzabcdefg", room),
	    NATTER_EINVAL);
}
END_TEST

/* the options natter_client_new() refuses, and what a good one opens */
START_TEST(test_options)
{
	static const char *const bad_addr[] = {"localhost", NULL};
	static const char *const empty[] = {NULL};
	static const char *const many[] = {
	    "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1",
	    "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1",
	    "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1",
	    "127.0.0.1", "127.0.0.1", NULL};
	struct natter_options o;
	int err = 0;

/* refused with NATTER_EINVAL, and the message names the field */
#define REFUSED(why, stmt)                                                     \
	do {                                                                   \
		natter_options_init(&o);                                       \
		o.host = "127.0.0.1";                                          \
		stmt;                                                          \
		err = 0;                                                       \
		ck_assert_ptr_null(natter_client_new(&o, &err));               \
		ck_assert_msg(err == NATTER_EINVAL, "%s: %s", #stmt,           \
		              natter_err_name(err));                           \
		ck_assert_msg(!strcmp(natter_options_error(), why),            \
		              "%s: \"%s\", not \"%s\"", #stmt,                 \
		              natter_options_error(), why);                    \
	} while (0)

	ck_assert_ptr_null(natter_client_new(NULL, &err));
	ck_assert_int_eq(err, NATTER_EINVAL);
	ck_assert_str_eq(natter_options_error(), "options: NULL");
	REFUSED("host: none of host, addresses and unix_path", o.host = NULL);
	REFUSED("unix_path: set together with host or addresses",
	        o.unix_path = "/tmp/x.sock");
	REFUSED("host: empty", o.host = "");
	REFUSED("port: empty", o.port = "");
	REFUSED("port: \"99999\" is not a number in 1..65535",
	        o.port = "99999");
	REFUSED("unix_path: empty or longer than 107 bytes",
	        (o.host = NULL, o.unix_path = ""));
	REFUSED("addresses: \"localhost\" is not a numeric address",
	        o.addresses = bad_addr);
	REFUSED("addresses: empty list", o.addresses = empty);
	REFUSED("addresses: more than 16", o.addresses = many);
	REFUSED("nick: \"guest1\" is not 1..32 letters, digits, - or _ "
	        "starting with a letter and not with guest",
	        o.nick = "guest1");
	REFUSED("nick: \"9lives\" is not 1..32 letters, digits, - or _ "
	        "starting with a letter and not with guest",
	        o.nick = "9lives");
	REFUSED("room: \"no spaces\" is not a room name", o.room = "no spaces");
	REFUSED("queue_lines: 0 is not in 1..1000000", o.queue_lines = 0);
	REFUSED("queue_bytes: 0 is not in 3..1073741824", o.queue_bytes = 0);
	REFUSED("max_attempts: -2 is not in -1..2147483647",
	        o.max_attempts = -2);
	REFUSED("reconnect_max_ms: 1 is not in 100..604800000",
	        o.reconnect_max_ms = 1);
	REFUSED("reconnect_initial_ms: 0 is not in 1..604800000",
	        o.reconnect_initial_ms = 0);
	REFUSED("connect_timeout_ms: 0 is not in 1..604800000",
	        o.connect_timeout_ms = 0);
	REFUSED("attempt_delay_ms: 1 is not in 10..604800000",
	        o.attempt_delay_ms = 1);
	REFUSED("stable_ms: -1 is not in 0..604800000", o.stable_ms = -1);
	REFUSED("ping_interval_ms: 5 is not in 10..604800000",
	        o.ping_interval_ms = 5);
	REFUSED("pong_timeout_ms: 0 is not in 10..604800000",
	        o.pong_timeout_ms = 0);
	REFUSED("max_line: 10 is not in 64..1048576", o.max_line = 10);
	REFUSED("recv_queue_lines: 0 is not in 1..1000000",
	        o.recv_queue_lines = 0);
	REFUSED("send_rate: -2 is not in -1..1000000", o.send_rate = -2);
	REFUSED("send_burst: 0 is not in 1..1000000", o.send_burst = 0);
	REFUSED("family: 99 is not in 0..4", o.family = 99);
	REFUSED("overflow: 7 is not in 0..1", o.overflow = 7);
	REFUSED("service: -1 is not in 0..1", o.service = -1);
	/* the size: set by natter_options_init(), or a newer layout's */
	REFUSED("size: 0 is too small: call natter_options_init() first",
	        o.size = 0);
	REFUSED("size: 8 is too small: call natter_options_init() first",
	        o.size = sizeof(size_t));

	/* a newer header's options: unknown fields left at 0 are fine */
	struct {
		struct natter_options o;
		long later;
	} newer;
	natter_options_init(&newer.o);
	newer.o.host = "127.0.0.1";
	newer.o.size = sizeof(newer);
	newer.later = 0;
	natter_client *nc = natter_client_new(&newer.o, &err);
	ck_assert_ptr_nonnull(nc);
	ck_assert_str_eq(natter_options_error(), "");
	natter_client_free(nc);
	newer.later = 1;
	ck_assert_ptr_null(natter_client_new(&newer.o, &err));
	ck_assert_int_eq(err, NATTER_EINVAL);
	char want[128];
	snprintf(want, sizeof(want),
	         "size: %zu: a field this library (%zu bytes of options) does "
	         "not know is set",
	         sizeof(newer), sizeof(struct natter_options));
	ck_assert_str_eq(natter_options_error(), want);

	natter_options_init(&o);
	o.host = "127.0.0.1";
	o.nick = "alice";
	o.room = "#Ops";
	natter_client *c = natter_client_new(&o, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(err, 0);
	int fd = natter_client_fd(c);
	ck_assert_int_ge(fd, 0);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(natter_client_state(c), NATTER_STATE_IDLE);
	ck_assert_str_eq(natter_client_nick(c), "alice");
	ck_assert_str_eq(natter_client_room(c), "ops");
	ck_assert_str_eq(natter_client_peer(c), "");
	/* sends: one line each, bounded */
	ck_assert_int_eq(natter_client_send(c, "two\nlines", 9), NATTER_EINVAL);
	ck_assert_int_eq(natter_client_send(c, "cr\rhere", 7), NATTER_EINVAL);
	ck_assert_int_eq(natter_client_send(c, "nul\0", 4), NATTER_EINVAL);
	ck_assert_int_eq(natter_client_send(c, "fgets\n", 6), 0);
	ck_assert_int_eq(natter_client_send(c, "crlf\r\n", 6), 0);
	ck_assert_int_eq(natter_client_send(c, "", 0), 0);
	ck_assert_uint_eq(natter_client_pending(c), 3);
	char big[9000];
	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(natter_client_send(c, big, 8193), NATTER_ETOOLONG);
	ck_assert_int_eq(natter_client_send(c, big, 8192), 0);
	ck_assert_int_eq(natter_client_sendf(c, "%s", "a\nb"), NATTER_EINVAL);
	ck_assert_int_eq(natter_client_sendf(c, "%d", 42), 0);
	natter_client_free(c);
	natter_client_free(NULL);
	natter_options_init(NULL);
}
END_TEST

static Suite *natter_session_suite(void)
{
	Suite *s = suite_create("natter_session");
	TCase *tc = tcase_create("session");

	tcase_add_test(tc, test_tracking);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_restore_replies);
	tcase_add_test(tc, test_pong_chat);
	tcase_add_test(tc, test_pong_echo);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_options);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_session_suite)
