/*
 * End-to-end tests of the chat service: the real natterd with four workers
 * on a loopback port chosen at run time, driven over real sockets (and by
 * the system's telnet and ncat), checking the exact lines every client
 * receives.
 *
 * Ordering that the tests rely on, and only that: a client's lines from one
 * sender arrive in the order sent; replies to a client's own commands come
 * in the order of the commands. Lines from different senders may
 * interleave, so a test that checks for "nothing else" makes the last thing
 * it looks for come from the same sender as what must not have come.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "nt_test.h"
#include "nt_chat.h"
#include "run_suite.h"
#include "text.h"

#define MOTD1 "natter test server"
#define MOTD2 "be nice"

#define IO_MS    NT_CHAT_IO_MS
#define CHILD_MS 30000 /* telnet/expect/ncat runs */

static struct nt_daemon d;

static void teardown(void)
{
	nt_daemon_cleanup(&d);
}

/* ---- the daemon ---------------------------------------------------------- */

struct chat_opts {
	size_t max_output;
	unsigned idle, line;
	unsigned rate, burst;
	unsigned max_rooms;
	unsigned max_line, max_nick;
	const char *motd; /* chat.motd's value as the file spells it */
};

static const struct chat_opts defaults = {
    .max_output = 1024 * 1024,
    .idle = 300,
    .rate = 5,
    .burst = 20,
    .max_rooms = 1000,
    .max_line = 512,
    .max_nick = 24,
    .motd = "\"" MOTD1 "\\n" MOTD2 "\"",
};

static void chat_start(const struct chat_opts *o)
{
	if (!o)
		o = &defaults;
	nt_daemon_start(
	    &d, NULL,
	    "workers = 4;\n"
	    "max_connections = 1000;\n"
	    "limits = { per_ip = 0; max_output = %zu; };\n"
	    "timeouts = { idle = %u; line = %u; write = 60; "
	    "shutdown_grace = 2; };\n"
	    "chat = { motd = %s;\n"
	    "  default_room = \"lobby\"; max_line = %u; max_nick = %u;\n"
	    "  max_rooms = %u; flood = { rate = %u; burst = %u; }; };\n"
	    "listeners = ( { name = \"chat\"; service = \"chat\"; "
	    "family = \"ipv4\"; address = \"127.0.0.1\"; port = 0; } );\n",
	    o->max_output, o->idle, o->line, o->motd, o->max_line, o->max_nick,
	    o->max_rooms, o->rate, o->burst);
}

/* ---- clients --------------------------------------------------------------
 *
 * nt_chat.h's buffered client; every daemon here greets with the MOTD above.
 */
static const char *const test_motd[] = {MOTD1, MOTD2, NULL};

static unsigned cl_greeting(struct nt_chat *c)
{
	return nt_chat_greeting(c, test_motd, "lobby");
}

static void cl_open(struct nt_chat *c)
{
	nt_chat_connect(c, &d, "chat");
	cl_greeting(c);
}

/*
 * Connect n clients one after another, each seeing the others join, then
 * give each a nick (NULL: keep the guest nick), each rename seen by all.
 * Every line is checked; afterwards nothing is pending anywhere.
 */
static void group_open(struct nt_chat *v, size_t n, const char *const *nicks)
{
	for (size_t i = 0; i < n; i++) {
		nt_chat_connect(&v[i], &d, "chat");
		ck_assert_uint_eq(cl_greeting(&v[i]), i + 1);
		for (size_t j = 0; j < i; j++)
			NT_EXPECT(&v[j], "*** %s has joined #lobby", v[i].nick);
	}
	for (size_t i = 0; nicks && i < n; i++) {
		if (!nicks[i])
			continue;
		char old[40];
		snprintf(old, sizeof(old), "%s", v[i].nick);
		nt_chat_send(&v[i], "/nick %s", nicks[i]);
		NT_EXPECT(&v[i], "*** you are now known as %s", nicks[i]);
		snprintf(v[i].nick, sizeof(v[i].nick), "%s", nicks[i]);
		for (size_t j = 0; j < n; j++)
			if (j != i)
				NT_EXPECT(&v[j], "*** %s is now known as %s",
				          old, nicks[i]);
	}
}

static void group_close(struct nt_chat *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		nt_chat_close(&v[i]);
}

static void stop_ok(void)
{
	int code = nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS);

	if (code != 0)
		nt_daemon_dump_log(&d);
	ck_assert_int_eq(code, 0);
}

/* ---- conversation -------------------------------------------------------- */

/* Three people talk; every line each of them receives is checked. */
START_TEST(test_conversation)
{
	struct nt_chat v[3];
	struct nt_chat *a = &v[0], *b = &v[1], *c = &v[2];
	char ga[40], gb[40], gc[40];

	chat_start(NULL);
	cl_open(a);
	cl_open(b);
	NT_EXPECT(a, "*** %s has joined #lobby", b->nick);
	memset(c, 0, sizeof(*c));
	c->fd = nt_daemon_connect(&d, "chat");
	ck_assert_uint_eq(cl_greeting(c), 3);
	NT_EXPECT(a, "*** %s has joined #lobby", c->nick);
	NT_EXPECT(b, "*** %s has joined #lobby", c->nick);
	ck_assert_str_ne(a->nick, b->nick);
	ck_assert_str_ne(b->nick, c->nick);
	ck_assert_str_ne(a->nick, c->nick);
	snprintf(ga, sizeof(ga), "%s", a->nick);
	snprintf(gb, sizeof(gb), "%s", b->nick);
	snprintf(gc, sizeof(gc), "%s", c->nick);

	nt_chat_send(a, "/nick alice");
	NT_EXPECT(a, "*** you are now known as alice");
	NT_EXPECT(b, "*** %s is now known as alice", ga);
	NT_EXPECT(c, "*** %s is now known as alice", ga);
	nt_chat_send(b, "/nick bob");
	NT_EXPECT(b, "*** you are now known as bob");
	NT_EXPECT(a, "*** %s is now known as bob", gb);
	NT_EXPECT(c, "*** %s is now known as bob", gb);
	nt_chat_send(c, "/nick carol");
	NT_EXPECT(c, "*** you are now known as carol");
	NT_EXPECT(a, "*** %s is now known as carol", gc);
	NT_EXPECT(b, "*** %s is now known as carol", gc);
	snprintf(a->nick, sizeof(a->nick), "alice");
	snprintf(b->nick, sizeof(b->nick), "bob");
	snprintf(c->nick, sizeof(c->nick), "carol");

	/* the sender never gets its own line back */
	nt_chat_send(a, "hello, everyone");
	NT_EXPECT(b, "<alice> hello, everyone");
	NT_EXPECT(c, "<alice> hello, everyone");
	NT_EXPECT_QUIET(a);

	nt_chat_send(b, "/me waves");
	NT_EXPECT(a, "* bob waves");
	NT_EXPECT(c, "* bob waves");
	NT_EXPECT_QUIET(b);

	/* markers inside user text stay inside the <nick> line */
	nt_chat_send(c, "*** you are now known as root");
	nt_chat_send(c, "!!! fake error <x> * y");
	NT_EXPECT(a, "<carol> *** you are now known as root");
	NT_EXPECT(a, "<carol> !!! fake error <x> * y");
	NT_EXPECT(b, "<carol> *** you are now known as root");
	NT_EXPECT(b, "<carol> !!! fake error <x> * y");
	NT_EXPECT_QUIET(c);

	/* a private line reaches only its target */
	nt_chat_send(a, "/msg bob psst, bob");
	NT_EXPECT(b, "*alice* psst, bob");
	NT_EXPECT(a, "-> *bob* psst, bob");
	nt_chat_send(a, "after the whisper");
	NT_EXPECT(c, "<alice> after the whisper"); /* and not the whisper */
	NT_EXPECT(b, "<alice> after the whisper");

	nt_chat_send(b, "/quit see you");
	NT_EXPECT(b, "*** bye");
	NT_EXPECT_EOF(b);
	NT_EXPECT(a, "*** bob has quit (see you)");
	NT_EXPECT(c, "*** bob has quit (see you)");

	nt_chat_send(a, "just us");
	NT_EXPECT(c, "<alice> just us");

	/* a plain disconnect is announced too */
	nt_chat_close(c);
	NT_EXPECT(a, "*** carol has quit (client closed)");

	nt_chat_send(a, "/quit");
	NT_EXPECT(a, "*** bye");
	NT_EXPECT_EOF(a);
	group_close(v, 3);
	stop_ok();
}
END_TEST

/* Rooms: a line said in one room never reaches another. */
START_TEST(test_room_isolation)
{
	static const char *const nicks[] = {"alice", "bob", "carol"};
	struct nt_chat v[3];
	struct nt_chat *a = &v[0], *b = &v[1], *c = &v[2];

	chat_start(NULL);
	group_open(v, 3, nicks);

	/* '#' optional, the name folded to lower case */
	nt_chat_send(c, "/join #Dev");
	NT_EXPECT(c, "*** you are now in #dev (1 user)");
	NT_EXPECT(a, "*** carol has left #lobby");
	NT_EXPECT(b, "*** carol has left #lobby");

	nt_chat_send(a, "lobby only");
	NT_EXPECT(b, "<alice> lobby only");
	/* alice follows carol; carol's next line from alice must be the
	 * join, since alice's lines reach carol in order */
	nt_chat_send(a, "/join dev");
	NT_EXPECT(a, "*** you are now in #dev (2 users)");
	NT_EXPECT(b, "*** alice has left #lobby");
	NT_EXPECT(c, "*** alice has joined #dev");

	nt_chat_send(c, "dev only");
	NT_EXPECT(a, "<carol> dev only");
	nt_chat_send(c, "/join LOBBY");
	NT_EXPECT(c, "*** you are now in #lobby (2 users)");
	NT_EXPECT(a, "*** carol has left #dev");
	NT_EXPECT(b, "*** carol has joined #lobby"); /* not "dev only" */

	nt_chat_send(c, "/join lobby");
	NT_EXPECT(c, "!!! you are already in #lobby");
	nt_chat_send(c, "/part");
	NT_EXPECT(c, "!!! you are already in #lobby");

	/* /part goes back to the default room; #dev empties and goes */
	nt_chat_send(a, "/part");
	NT_EXPECT(a, "*** you are now in #lobby (3 users)");
	NT_EXPECT(b, "*** alice has joined #lobby");
	NT_EXPECT(c, "*** alice has joined #lobby");
	nt_chat_send(a, "/who dev");
	NT_EXPECT(a, "!!! no such room: #dev");

	/* bad arguments */
	nt_chat_send(a, "/join");
	NT_EXPECT(a, "!!! give exactly one room; usage: /join ROOM");
	nt_chat_send(a, "/join a b");
	NT_EXPECT(a, "!!! give exactly one room; usage: /join ROOM");
	nt_chat_send(a, "/part now");
	NT_EXPECT(a, "!!! no arguments; usage: /part");
	char got[NT_CHAT_LINE_SIZE];
	nt_chat_send(a, "/join bad.room");
	NT_EXPECT_PREFIX(a, "!!! invalid room \"bad.room\"", got);
	nt_chat_send(a, "/join #");
	NT_EXPECT_PREFIX(a, "!!! invalid room \"#\"", got);
	/* 32 characters is the longest room name */
	nt_chat_send(a, "/join %s", "abcdefghijklmnopqrstuvwxyz012345-");
	NT_EXPECT_PREFIX(a, "!!! invalid room", got);
	nt_chat_send(a, "/join %s", "#abcdefghijklmnopqrstuvwxyz0123_-");
	NT_EXPECT(a, "*** you are now in #abcdefghijklmnopqrstuvwxyz0123_- "
	             "(1 user)");
	NT_EXPECT(b, "*** alice has left #lobby");
	NT_EXPECT(c, "*** alice has left #lobby");
	NT_EXPECT_QUIET(a);
	NT_EXPECT_QUIET(b);
	NT_EXPECT_QUIET(c);
	group_close(v, 3);
	stop_ok();
}
END_TEST

/* "*** #room has N users: a b c" in any order: check count and names */
static void expect_who(int at, struct nt_chat *c, const char *room,
                       const char *const *names, size_t n)
{
	char got[NT_CHAT_LINE_SIZE], prefix[128];

	snprintf(prefix, sizeof(prefix), "*** #%s has %zu %s: ", room, n,
	         n == 1 ? "user" : "users");
	nt_chat_expect_prefix(at, c, prefix, got, sizeof(got));
	char *list = got + strlen(prefix), *save = NULL;
	size_t seen = 0;
	for (char *w = strtok_r(list, " ", &save); w;
	     w = strtok_r(NULL, " ", &save)) {
		bool known = false;
		for (size_t i = 0; i < n; i++)
			known |= !strcmp(w, names[i]);
		ck_assert_msg(known, "line %d: /who lists \"%s\"", at, w);
		seen++;
	}
	ck_assert_msg(seen == n, "line %d: /who lists %zu names, want %zu", at,
	              seen, n);
}
#define EXPECT_WHO(c, room, ...)                                               \
	do {                                                                   \
		const char *const who_[] = {__VA_ARGS__};                      \
		expect_who(__LINE__, (c), (room), who_,                        \
		           sizeof(who_) / sizeof(who_[0]));                    \
	} while (0)

/* the next n lines are these, in any order (for /rooms) */
static void expect_set(int at, struct nt_chat *c, const char *const *want,
                       size_t n)
{
	char got[NT_CHAT_LINE_SIZE];
	bool seen[16] = {false};

	ck_assert_uint_le(n, 16);
	for (size_t k = 0; k < n; k++) {
		int rc = nt_chat_line(c, got, sizeof(got), NULL, IO_MS);
		ck_assert_msg(rc == 0, "line %d: %s: %s", at, c->nick,
		              nt_chat_rc_str(rc));
		size_t i = 0;
		while (i < n && (seen[i] || strcmp(got, want[i])))
			i++;
		ck_assert_msg(i < n, "line %d: %s: unexpected \"%s\"", at,
		              c->nick, got);
		seen[i] = true;
	}
}
#define EXPECT_SET(c, ...)                                                     \
	do {                                                                   \
		const char *const set_[] = {__VA_ARGS__};                      \
		expect_set(__LINE__, (c), set_,                                \
		           sizeof(set_) / sizeof(set_[0]));                    \
	} while (0)

START_TEST(test_who_rooms)
{
	static const char *const nicks[] = {"alice", "bob", "carol"};
	struct nt_chat v[3];
	struct nt_chat *a = &v[0], *b = &v[1], *c = &v[2];

	chat_start(NULL);
	group_open(v, 3, nicks);

	nt_chat_send(a, "/who");
	EXPECT_WHO(a, "lobby", "alice", "bob", "carol");
	nt_chat_send(a, "/rooms");
	NT_EXPECT(a, "*** 1 room:");
	NT_EXPECT(a, "*** #lobby (3 users)");

	nt_chat_send(c, "/join dev");
	NT_EXPECT(c, "*** you are now in #dev (1 user)");
	NT_EXPECT(a, "*** carol has left #lobby");
	NT_EXPECT(b, "*** carol has left #lobby");

	nt_chat_send(a, "/who");
	EXPECT_WHO(a, "lobby", "alice", "bob");
	nt_chat_send(a, "/who #dev");
	NT_EXPECT(a, "*** #dev has 1 user: carol");
	nt_chat_send(a, "/WHO DEV");
	NT_EXPECT(a, "*** #dev has 1 user: carol");
	nt_chat_send(c, "/who");
	NT_EXPECT(c, "*** #dev has 1 user: carol");
	nt_chat_send(c, "/who lobby");
	EXPECT_WHO(c, "lobby", "alice", "bob");
	nt_chat_send(a, "/rooms");
	NT_EXPECT(a, "*** 2 rooms:");
	EXPECT_SET(a, "*** #lobby (2 users)", "*** #dev (1 user)");

	nt_chat_send(a, "/who nosuch");
	NT_EXPECT(a, "!!! no such room: #nosuch");
	nt_chat_send(a, "/who a b");
	NT_EXPECT(a, "!!! give at most one room; usage: /who [ROOM]");
	nt_chat_send(a, "/rooms all");
	NT_EXPECT(a, "!!! no arguments; usage: /rooms");
	char got[NT_CHAT_LINE_SIZE];
	nt_chat_send(a, "/who bad!room");
	NT_EXPECT_PREFIX(a, "!!! invalid room \"bad!room\"", got);

	/* a quit leaves the counts right */
	nt_chat_send(b, "/quit");
	NT_EXPECT(b, "*** bye");
	NT_EXPECT(a, "*** bob has quit");
	nt_chat_send(a, "/rooms");
	NT_EXPECT(a, "*** 2 rooms:");
	EXPECT_SET(a, "*** #lobby (1 user)", "*** #dev (1 user)");
	nt_chat_send(c, "/part");
	NT_EXPECT(c, "*** you are now in #lobby (2 users)");
	NT_EXPECT(a, "*** carol has joined #lobby");
	nt_chat_send(a, "/rooms");
	NT_EXPECT(a, "*** 1 room:");
	NT_EXPECT(a, "*** #lobby (2 users)");

	nt_chat_send(a, "/help");
	NT_EXPECT(a,
	          "*** commands (text without a command goes to your room):");
	for (int i = 0; i < 10; i++)
		NT_EXPECT_PREFIX(a, "*** /", got);
	ck_assert_str_eq(got, "*** //text            says /text");
	NT_EXPECT_QUIET(a);
	group_close(v, 3);
	stop_ok();
}
END_TEST

/* max_rooms: a /join that would make one room too many is refused */
START_TEST(test_max_rooms)
{
	static const char *const nicks[] = {"alice", "bob", "carol"};
	struct chat_opts o = defaults;
	struct nt_chat v[3];
	struct nt_chat *a = &v[0], *b = &v[1], *c = &v[2];

	o.max_rooms = 2;
	chat_start(&o);
	group_open(v, 3, nicks);
	nt_chat_send(c, "/join x");
	NT_EXPECT(c, "*** you are now in #x (1 user)");
	NT_EXPECT(a, "*** carol has left #lobby");
	NT_EXPECT(b, "*** carol has left #lobby");

	nt_chat_send(a, "/join y");
	NT_EXPECT(a, "!!! cannot create #y: the server has its maximum of 2 "
	             "rooms");
	nt_chat_send(a, "/who");
	EXPECT_WHO(a, "lobby", "alice", "bob");
	/* an existing room is fine */
	nt_chat_send(a, "/join x");
	NT_EXPECT(a, "*** you are now in #x (2 users)");
	NT_EXPECT(b, "*** alice has left #lobby");
	NT_EXPECT(c, "*** alice has joined #x");
	/* bob alone in #lobby: leaving it frees a room for the new one */
	nt_chat_send(b, "/join z");
	NT_EXPECT(b, "*** you are now in #z (1 user)");
	nt_chat_send(b, "/rooms");
	NT_EXPECT(b, "*** 2 rooms:");
	NT_EXPECT(b, "*** #x (2 users)"); /* sorted by name */
	NT_EXPECT(b, "*** #z (1 user)");
	/* two rooms exist and #lobby is gone, yet a newcomer still gets in:
	 * the default room is exempt from max_rooms */
	{
		struct nt_chat newcomer;
		cl_open(&newcomer);
		nt_chat_send(&newcomer, "/rooms");
		NT_EXPECT(&newcomer, "*** 3 rooms:");
		nt_chat_close(&newcomer);
	}
	/* and /part back to it works too */
	nt_chat_send(c, "/part");
	{
		char got[128]; /* the newcomer may or may not be gone yet */
		NT_EXPECT_PREFIX(c, "*** you are now in #lobby (", got);
	}
	group_close(v, 3);
	stop_ok();
}
END_TEST

/*
 * Private messages between clients on different workers: with four
 * workers and every client kept connected, the least-loaded
 * choice spreads eight consecutive clients over all of them, so most pairs
 * below cross workers.
 */
START_TEST(test_msg_across_workers)
{
	static const char *const nicks[] = {"n0", "n1", "n2", "n3",
	                                    "n4", "n5", "n6", "n7"};
	struct nt_chat v[8];

	chat_start(NULL);
	group_open(v, 8, nicks);
	for (int k = 1; k < 8; k++) {
		nt_chat_send(&v[0], "/msg n%d hello %d", k, k);
		NT_EXPECT(&v[k], "*n0* hello %d", k);
		NT_EXPECT(&v[0], "-> *n%d* hello %d", k, k);
		/* any case finds the nick; the echo shows its real spelling */
		nt_chat_send(&v[k], "/msg N0 back %d", k);
		NT_EXPECT(&v[0], "*n%d* back %d", k, k);
		NT_EXPECT(&v[k], "-> *n0* back %d", k);
	}
	/* between two other workers, both ways */
	nt_chat_send(&v[3], "/msg n6 three to six");
	NT_EXPECT(&v[6], "*n3* three to six");
	NT_EXPECT(&v[3], "-> *n6* three to six");
	nt_chat_send(&v[6], "/msg n3 six to three");
	NT_EXPECT(&v[3], "*n6* six to three");
	NT_EXPECT(&v[6], "-> *n3* six to three");
	/* nobody else got any of it */
	for (int k = 0; k < 8; k++)
		NT_EXPECT_QUIET(&v[k]);

	nt_chat_send(&v[1], "/msg nobody hi");
	NT_EXPECT(&v[1], "!!! no such nick: nobody");
	nt_chat_send(&v[1], "/msg n2");
	NT_EXPECT(&v[1],
	          "!!! give a nick and a message; usage: /msg NICK TEXT");
	nt_chat_send(&v[1], "/msg");
	NT_EXPECT(&v[1],
	          "!!! give a nick and a message; usage: /msg NICK TEXT");

	/* once n7 has gone, its nick finds nobody */
	nt_chat_send(&v[7], "/quit");
	NT_EXPECT(&v[7], "*** bye");
	NT_EXPECT_EOF(&v[7]);
	for (int k = 0; k < 7; k++)
		NT_EXPECT(&v[k], "*** n7 has quit");
	nt_chat_send(&v[1], "/msg n7 still there?");
	NT_EXPECT(&v[1], "!!! no such nick: n7");
	group_close(v, 8);
	stop_ok();
}
END_TEST

START_TEST(test_nick_rules)
{
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];
	char got[NT_CHAT_LINE_SIZE];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"Alice", NULL});

	/* taken, in any case */
	nt_chat_send(b, "/nick alice");
	NT_EXPECT(b, "!!! nick alice is taken");
	nt_chat_send(b, "/nick ALICE");
	NT_EXPECT(b, "!!! nick ALICE is taken");
	nt_chat_send(b, "/nick %s", a->nick);
	NT_EXPECT(b, "!!! nick Alice is taken");
	/* someone else's guest nick is reserved anyway */
	nt_chat_send(a, "/nick %s", b->nick);
	NT_EXPECT(a,
	          "!!! nicks starting with \"guest\" are reserved for guests");

	/* the owner may change just the case */
	nt_chat_send(a, "/nick ALICE");
	NT_EXPECT(a, "*** you are now known as ALICE");
	NT_EXPECT(b, "*** Alice is now known as ALICE");
	nt_chat_send(a, "/nick ALICE");
	NT_EXPECT(a, "!!! you are already ALICE");

	nt_chat_send(b, "/nick guest1");
	NT_EXPECT(b,
	          "!!! nicks starting with \"guest\" are reserved for guests");
	nt_chat_send(b, "/nick GuestStar");
	NT_EXPECT(b,
	          "!!! nicks starting with \"guest\" are reserved for guests");
	nt_chat_send(b, "/nick 9lives");
	NT_EXPECT(b,
	          "!!! invalid nick \"9lives\": 1 to 24 letters, digits, '_' "
	          "or '-', starting with a letter");
	nt_chat_send(b, "/nick a.b");
	NT_EXPECT_PREFIX(b, "!!! invalid nick \"a.b\"", got);
	nt_chat_send(b, "/nick -x");
	NT_EXPECT_PREFIX(b, "!!! invalid nick \"-x\"", got);
	nt_chat_send(b, "/nick abcdefghijklmnopqrstuvwxy"); /* 25 */
	NT_EXPECT_PREFIX(b, "!!! invalid nick \"abcdefghijklmnopqrstuvwxy\"",
	                 got);
	nt_chat_send(b, "/nick");
	NT_EXPECT(b, "!!! give exactly one name; usage: /nick NAME");
	nt_chat_send(b, "/nick bob robert");
	NT_EXPECT(b, "!!! give exactly one name; usage: /nick NAME");
	NT_EXPECT_QUIET(a); /* none of b's failures were announced */

	char gb[40];
	snprintf(gb, sizeof(gb), "%s", b->nick);
	nt_chat_send(b, "/nick B_o-b9abcdefghijklmnopq"); /* 24 */
	NT_EXPECT(b, "*** you are now known as B_o-b9abcdefghijklmnopq");
	NT_EXPECT(a, "*** %s is now known as B_o-b9abcdefghijklmnopq", gb);
	nt_chat_send(b, "/nick bob");
	NT_EXPECT(b, "*** you are now known as bob");
	NT_EXPECT(a, "*** B_o-b9abcdefghijklmnopq is now known as bob");

	/* a nick is free again once its owner has gone */
	nt_chat_send(a, "/quit");
	NT_EXPECT(a, "*** bye");
	NT_EXPECT(b, "*** ALICE has quit");
	nt_chat_send(b, "/nick alice");
	NT_EXPECT(b, "*** you are now known as alice");
	group_close(v, 2);
	stop_ok();
}
END_TEST

/* /me, "//", command case, unknown commands, /ping, blank lines */
START_TEST(test_commands)
{
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});

	nt_chat_send(a, "/ME dances");
	NT_EXPECT(b, "* alice dances");
	nt_chat_send(a, "/me");
	NT_EXPECT(a, "!!! say what you do; usage: /me TEXT");
	nt_chat_send(a, "//join x");
	NT_EXPECT(b, "<alice> /join x");
	nt_chat_send(a, "//");
	NT_EXPECT(b, "<alice> /");
	nt_chat_send(a, "///");
	NT_EXPECT(b, "<alice> //");
	nt_chat_send(a, "/frobnicate now");
	NT_EXPECT(a,
	          "!!! unknown command /frobnicate; /help lists the commands");
	nt_chat_send(a, "/");
	NT_EXPECT(a, "!!! unknown command /; /help lists the commands");
	nt_chat_send(a, "/PiNg X y");
	NT_EXPECT(a, "*** pong X y");
	nt_chat_send(a, "/ping");
	NT_EXPECT(a, "*** pong");
	nt_chat_send(a, "/Msg BOB hi");
	NT_EXPECT(b, "*alice* hi");
	NT_EXPECT(a, "-> *bob* hi");
	/* a tab is a space, also between a command and its arguments */
	nt_chat_send(a, "/msg\tbob\ttabbed\tline");
	NT_EXPECT(b, "*alice* tabbed line");
	NT_EXPECT(a, "-> *bob* tabbed line");
	/* blank lines go nowhere; the next line shows nothing came first */
	nt_chat_send(a, "%s", "");
	nt_chat_send(a, "%s", "     ");
	nt_chat_send(a, "%s", "\t");
	nt_chat_send(a, "after blanks");
	NT_EXPECT(b, "<alice> after blanks");
	NT_EXPECT_QUIET(a);
	NT_EXPECT_QUIET(b);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/* ---- load ---------------------------------------------------------------- */

#define FAN_CLIENTS 100
#define FAN_SENDERS 10
#define FAN_LINES   20

/*
 * 100 clients in one room, 10 of them each sending 20 numbered lines at
 * once: everyone gets every line of every other sender exactly once, and
 * each sender's lines in the order sent.
 */
START_TEST(test_fanout_100)
{
	struct chat_opts o = defaults;
	struct nt_chat *v = calloc(FAN_CLIENTS, sizeof(*v));
	unsigned(*next)[FAN_SENDERS] = calloc(FAN_CLIENTS, sizeof(*next));
	unsigned *got = calloc(FAN_CLIENTS, sizeof(*got));
	char line[NT_CHAT_LINE_SIZE];

	ck_assert(v && next && got);
	o.rate = 1000;
	o.burst = 1000;
	chat_start(&o);
	for (size_t i = 0; i < FAN_CLIENTS; i++) {
		v[i].fd = nt_daemon_connect(&d, "chat");
		ck_assert_uint_eq(cl_greeting(&v[i]), i + 1);
	}
	for (size_t s = 0; s < FAN_SENDERS; s++) {
		char batch[FAN_LINES * 32];
		size_t n = 0;
		for (int k = 0; k < FAN_LINES; k++)
			n += (size_t)snprintf(batch + n, sizeof(batch) - n,
			                      "fan %zu %d\r\n", s, k);
		nt_chat_send_raw(&v[s], batch, n);
	}

	uint64_t deadline = nt_test_now_ms() + 40000;
	size_t done = 0;
	while (done < FAN_CLIENTS && nt_test_now_ms() < deadline) {
		nt_chat_pump(v, FAN_CLIENTS, 100);
		done = 0;
		for (size_t i = 0; i < FAN_CLIENTS; i++) {
			while (nt_chat_take(&v[i], line, sizeof(line), NULL)) {
				char nick[40];
				unsigned s, k;
				if (sscanf(line, "<%39[^>]> fan %u %u", nick,
				           &s, &k) != 3) {
					/* joins of later clients */
					ck_assert_msg(
					    !strncmp(line, "*** guest", 9) &&
					        strstr(line, " has "
					                     "joined"
					                     " #lobb"
					                     "y"),
					    "client %zu: \"%s\"", i, line);
					continue;
				}
				ck_assert_msg(s < FAN_SENDERS && s != i,
				              "client %zu got \"%s\"", i, line);
				ck_assert_str_eq(nick, v[s].nick);
				ck_assert_msg(k == next[i][s],
				              "client %zu: from %zu line %u, "
				              "want %u",
				              i, (size_t)s, k, next[i][s]);
				next[i][s]++;
				got[i]++;
			}
			unsigned want =
			    (i < FAN_SENDERS ? FAN_SENDERS - 1 : FAN_SENDERS) *
			    FAN_LINES;
			ck_assert_uint_le(got[i], want);
			if (got[i] == want)
				done++;
		}
	}
	for (size_t i = 0; i < FAN_CLIENTS; i++) {
		unsigned want =
		    (i < FAN_SENDERS ? FAN_SENDERS - 1 : FAN_SENDERS) *
		    FAN_LINES;
		ck_assert_msg(got[i] == want, "client %zu got %u of %u lines",
		              i, got[i], want);
	}
	/* and nothing more: no duplicates waiting behind */
	for (size_t i = 0; i < FAN_CLIENTS; i++)
		NT_EXPECT_QUIET(&v[i]);
	group_close(v, FAN_CLIENTS);
	free(v);
	free(next);
	free(got);
	stop_ok();
}
END_TEST

/* a TCP client with a tiny receive buffer, set before connecting */
static int connect_small_rcvbuf(uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int size = 2048;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)), 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

#define SLOW_BATCH_LINES 32
#define SLOW_MAX_BATCHES 600 /* 8 MB: far past any socket buffers */

/*
 * A client that never reads is disconnected once its queue would pass
 * max_output; the others, reading, get every line meanwhile. The sender
 * paces itself by the reader, so only the sleeper can fall behind.
 */
START_TEST(test_slow_consumer)
{
	struct chat_opts o = defaults;
	struct nt_chat v[2];
	struct nt_chat *r = &v[0], *s = &v[1];
	char pad[420], line[NT_CHAT_LINE_SIZE], quit[128], zname[40];
	bool seen = false;
	int after = 0, batch;

	o.max_output = 65536;
	o.rate = 10000;
	o.burst = 100000;
	chat_start(&o);
	group_open(v, 2, (const char *const[]){"reader", "sender"});
	int z = connect_small_rcvbuf(nt_daemon_port(&d, "chat"));
	char got[NT_CHAT_LINE_SIZE];
	NT_EXPECT_PREFIX(r, "*** guest", got);
	ck_assert_int_eq(sscanf(got, "*** %39s has joined #lobby", zname), 1);
	NT_EXPECT(s, "*** %s has joined #lobby", zname);
	snprintf(quit, sizeof(quit), "*** %s has quit (output overflow)",
	         zname);

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (batch = 0; batch < SLOW_MAX_BATCHES && after < 3; batch++) {
		char buf[SLOW_BATCH_LINES * (sizeof(pad) + 32)];
		size_t n = 0;
		for (int k = 0; k < SLOW_BATCH_LINES; k++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			                      "%d:%d:%s\r\n", batch, k, pad);
		nt_chat_send_raw(s, buf, n);
		for (int k = 0; k < SLOW_BATCH_LINES;) {
			int rc =
			    nt_chat_line(r, line, sizeof(line), NULL, IO_MS);
			ck_assert_msg(rc == 0, "reader: batch %d line %d: %s",
			              batch, k, nt_chat_rc_str(rc));
			if (!strcmp(line, quit)) {
				seen = true;
				continue;
			}
			char want[NT_CHAT_LINE_SIZE];
			snprintf(want, sizeof(want), "<sender> %d:%d:%s", batch,
			         k, pad);
			ck_assert_msg(!strcmp(line, want),
			              "reader: batch %d line %d: \"%.60s\"",
			              batch, k, line);
			k++;
		}
		/* the sender gets nothing but the sleeper's quit */
		nt_chat_read_some(s);
		while (nt_chat_take(s, line, sizeof(line), NULL))
			ck_assert_str_eq(line, quit);
		ck_assert(!s->eof && !s->err);
		if (seen)
			after++;
	}
	ck_assert_msg(seen, "no overflow after %d batches of %d lines", batch,
	              SLOW_BATCH_LINES);
	NT_EXPECT_QUIET(r);
	NT_EXPECT_QUIET(s);
	ck_assert(nt_daemon_log_contains(&d, "disconnected: output overflow"));

	/* the sleeper's connection ends: what was queued, then EOF */
	uint64_t deadline = nt_test_now_ms() + IO_MS;
	ssize_t n = -1;
	int err = ETIMEDOUT;
	while (nt_test_now_ms() < deadline) {
		char buf[65536];
		struct pollfd p = {.fd = z, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(z, buf, sizeof(buf));
		err = n < 0 ? errno : 0;
		if (n == 0 || (n < 0 && err != EAGAIN && err != EINTR))
			break;
	}
	ck_assert_msg(n == 0 || (n < 0 && err == ECONNRESET),
	              "the sleeper's connection did not end (%s)",
	              strerror(err));
	close(z);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/*
 * Flood control (5 lines a second, a burst of 5): 20 lines sent at once all
 * arrive, in order, but spread over about three seconds.
 */
START_TEST(test_flood_delays)
{
	struct chat_opts o = defaults;
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];
	char buf[20 * 16], line[NT_CHAT_LINE_SIZE];
	size_t n = 0;
	int early = 0;

	o.rate = 5;
	o.burst = 5;
	chat_start(&o);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	for (int k = 0; k < 20; k++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "flood %d\r\n",
		                      k);
	uint64_t t0 = nt_test_now_ms();
	nt_chat_send_raw(a, buf, n);
	for (int k = 0; k < 20; k++) {
		char want[32];
		snprintf(want, sizeof(want), "<alice> flood %d", k);
		int rc = nt_chat_line(b, line, sizeof(line), NULL, 20000);
		ck_assert_msg(rc == 0, "line %d: %s", k, nt_chat_rc_str(rc));
		ck_assert_str_eq(line, want);
		if (nt_test_now_ms() - t0 < 1000)
			early++;
	}
	uint64_t took = nt_test_now_ms() - t0;
	/* the burst, plus about 5 a second; never all at once */
	ck_assert_msg(early <= 11, "%d lines within the first second", early);
	ck_assert_msg(took >= 2500, "20 lines took only %llu ms",
	              (unsigned long long)took);
	ck_assert_msg(took < 15000, "20 lines took %llu ms",
	              (unsigned long long)took);
	/* held back, not dropped, and the sender is still connected */
	NT_EXPECT_QUIET(a);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/*
 * Telnet answers cost flood tokens (an eighth of a line each): 80 refused
 * options empty a bucket of 10 (rate 1), so the /ping after them waits
 * about a second for a token, like a line after a burst of lines.
 */
START_TEST(test_flood_telnet)
{
	struct chat_opts o = defaults;
	struct nt_chat v[2];
	struct nt_chat *a = &v[0];
	uint8_t neg[80 * 3], want[80 * 3];
	char line[NT_CHAT_LINE_SIZE];

	o.rate = 1;
	o.burst = 10;
	chat_start(&o);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	for (int i = 0; i < 80; i++) {
		memcpy(neg + 3 * i, "\xff\xfd", 2);  /* IAC DO opt */
		memcpy(want + 3 * i, "\xff\xfc", 2); /* IAC WONT opt */
		neg[3 * i + 2] = want[3 * i + 2] = (uint8_t)(100 + i);
	}
	nt_chat_send_raw(a, neg, sizeof(neg));
	nt_chat_expect_bytes(__LINE__, a, want, sizeof(want));
	uint64_t t0 = nt_test_now_ms();
	nt_chat_send(a, "/ping paid");
	ck_assert_int_eq(nt_chat_line(a, line, sizeof(line), NULL, 20000), 0);
	uint64_t took = nt_test_now_ms() - t0;
	ck_assert_str_eq(line, "*** pong paid");
	ck_assert_msg(took >= 600, "the pong came after only %llu ms",
	              (unsigned long long)took);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/* ---- text ---------------------------------------------------------------- */

static bool is_bidi(uint32_t cp)
{
	return cp == 0x61c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* what is wrong with a line that reached another user, or NULL */
static const char *unclean(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c0 = s[i];
		uint32_t cp;
		size_t k;

		if (c0 < 0x80) {
			if (c0 < 0x20 || c0 == 0x7f)
				return "a C0 control or DEL";
			i++;
			continue;
		}
		if (c0 >= 0xc2 && c0 <= 0xdf) {
			k = 1;
			cp = c0 & 0x1f;
		} else if (c0 >= 0xe0 && c0 <= 0xef) {
			k = 2;
			cp = c0 & 0x0f;
		} else if (c0 >= 0xf0 && c0 <= 0xf4) {
			k = 3;
			cp = c0 & 0x07;
		} else {
			return "invalid UTF-8";
		}
		if (n - i <= k)
			return "truncated UTF-8";
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return "invalid UTF-8";
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return "overlong, surrogate or out of range";
		if (cp <= 0x9f)
			return "a C1 control";
		if (is_bidi(cp))
			return "a bidi control";
		i += k + 1;
	}
	return NULL;
}

/* the next line, which must be clean, into got */
static void clean_line(int at, struct nt_chat *c, char *got, size_t size)
{
	size_t n;

	int rc = nt_chat_line(c, got, size, &n, IO_MS);
	ck_assert_msg(rc == 0, "line %d: %s: %s", at, c->nick,
	              nt_chat_rc_str(rc));
	const char *why = unclean((const uint8_t *)got, n);
	ck_assert_msg(!why, "line %d: %s received %s: \"%s\"", at, c->nick, why,
	              got);
	ck_assert_msg(strlen(got) == n, "line %d: %s: NUL in a line", at,
	              c->nick);
}

/* the next line must be want, and clean */
static void expect_clean(int at, struct nt_chat *c, const char *want)
{
	char got[NT_CHAT_LINE_SIZE];

	clean_line(at, c, got, sizeof(got));
	ck_assert_msg(!strcmp(got, want),
	              "line %d: %s: expected \"%s\", got \"%s\"", at, c->nick,
	              want, got);
}
#define EXPECT_CLEAN(c, want) expect_clean(__LINE__, (c), (want))

/*
 * Terminal escapes (CSI, OSC with BEL or ST, DCS, 8-bit C1 introducers),
 * bidi overrides, C0 controls and broken UTF-8 sent by one user never
 * reach another, whichever way the text goes out: said, /me, /msg, /quit.
 */
START_TEST(test_injection)
{
	/* the length of a literal, which may hold a NUL */
#define IN(lit) lit, sizeof(lit) - 1
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
	    {IN("a\x1b[31mred\x1b[0m b"), "<alice> ared b"},
	    {IN("\x1b[2J\x1b[Hcls"), "<alice> cls"},
	    {IN("t\x1b]0;pwned\x07 u"), "<alice> t u"},
	    {IN("h\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\ e"),
	     "<alice> hlink e"},
	    {IN("c1 \xc2\x9b"
	        "31m x"),
	     "<alice> c1  x"},
	    {IN("o \xc2\x9d"
	        "0;t\xc2\x9c"
	        "k"),
	     "<alice> o k"},
	    {IN("r\x9b"
	        "31m"),
	     "<alice> r\xef\xbf\xbd"
	     "31m"},
	    {IN("abc\xe2\x80\xae"
	        "def\xe2\x81\xa6g\xd8\x9ch\xe2\x80\x8f"),
	     "<alice> abcdefgh"},
	    {IN("bell\x07 bs\x08 del\x7f nul\x00!"),
	     "<alice> bell bs del nul!"},
	    {IN("x\xc0\xafy\xed\xa0\x80z"),
	     "<alice> x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd"
	     "\xef\xbf\xbdz"},
	    {IN("p\x1bPq#0;2;0;0;0\x1b\\q"), "<alice> pq"},
	    {IN("unterminated \x1b]0;title"), "<alice> unterminated "},
	    {IN("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
	     "<alice> caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
	    {IN("/me waves\x1b[5m\x07"), "* alice waves"},
	};
#undef IN
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[256];
		size_t n = cases[i].len;
		ck_assert_uint_lt(n + 2, sizeof(buf));
		memcpy(buf, cases[i].in, n);
		memcpy(buf + n, "\r\n", 2);
		nt_chat_send_raw(a, buf, n + 2);
		EXPECT_CLEAN(b, cases[i].out);
	}
	/* nothing visible left: nothing sent; the marker comes next */
	nt_chat_send(a, "\x1b[2J\x1b[H\x1b]0;x\x07\xe2\x80\xae");
	nt_chat_send(a, "marker");
	EXPECT_CLEAN(b, "<alice> marker");

	nt_chat_send(a, "/msg bob hi\x1b]0;x\x07!\xe2\x80\xae");
	EXPECT_CLEAN(b, "*alice* hi!");
	EXPECT_CLEAN(a, "-> *bob* hi!");
	nt_chat_send(a, "/quit bye\x1b[2J\x9b!");
	NT_EXPECT(a, "*** bye");
	EXPECT_CLEAN(b, "*** alice has quit (bye\xef\xbf\xbd!)");
	group_close(v, 2);
	stop_ok();
}
END_TEST

/*
 * Where the server shortens text (a quit message, a ping token, a name
 * quoted in an error), it must not cut a UTF-8 character in two: every
 * line stays valid UTF-8. Each text below puts a two-byte character
 * across the server's limit.
 */
START_TEST(test_truncation_utf8)
{
	struct nt_chat v[3];
	struct nt_chat *a = &v[0], *b = &v[1], *c = &v[2];
	char got[NT_CHAT_LINE_SIZE], want[NT_CHAT_LINE_SIZE], as[200];

	chat_start(NULL);
	group_open(v, 3, (const char *const[]){"alice", "bob", "carol"});
	memset(as, 'a', sizeof(as));

	/* a quit message goes to others, up to 160 bytes of it */
	nt_chat_send(c, "/quit %.159s\xc3\xa9", as);
	NT_EXPECT(c, "*** bye");
	clean_line(__LINE__, b, got, sizeof(got));
	snprintf(want, sizeof(want), "*** carol has quit (%.159s", as);
	ck_assert_msg(!strncmp(got, want, strlen(want)) &&
	                  got[strlen(got) - 1] == ')',
	              "got \"%s\"", got);

	/* the ping token is repeated up to 64 bytes */
	/* alice saw carol go too (checked on bob's side above) */
	NT_EXPECT_PREFIX(a, "*** carol has quit (", got);
	nt_chat_send(a, "/ping %.63s\xc3\xa9", as);
	clean_line(__LINE__, a, got, sizeof(got));
	snprintf(want, sizeof(want), "*** pong %.63s", as);
	ck_assert_msg(!strncmp(got, want, strlen(want)), "got \"%s\"", got);

	/* a rejected nick is quoted up to 64 bytes */
	nt_chat_send(a, "/nick %.63s\xc3\xa9", as);
	clean_line(__LINE__, a, got, sizeof(got));
	snprintf(want, sizeof(want), "!!! invalid nick \"%.63s", as);
	ck_assert_msg(!strncmp(got, want, strlen(want)), "got \"%s\"", got);
	group_close(v, 3);
	stop_ok();
}
END_TEST

/* max_line is 512: a 512-byte line passes, 513 is refused and discarded */
START_TEST(test_long_line)
{
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];
	char buf[4096];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	memset(buf, 'a', 512);
	buf[512] = '\0';
	nt_chat_send(a, "%s", buf);
	NT_EXPECT(b, "<alice> %.512s", buf);

	memset(buf, 'b', 513);
	buf[513] = '\0';
	nt_chat_send(a, "%s", buf);
	NT_EXPECT(a, "!!! line too long (the limit is 512 bytes): discarded");
	nt_chat_send(a, "after one");
	NT_EXPECT(b, "<alice> after one"); /* and nothing of the long one */

	/* 3000 bytes in pieces, no line end for a while: one error only,
	 * and not a byte of it said */
	memset(buf, 'c', 1000);
	for (int i = 0; i < 3; i++) {
		nt_chat_send_raw(a, buf, 1000);
		nt_sleep_ms(50);
	}
	NT_EXPECT(a, "!!! line too long (the limit is 512 bytes): discarded");
	NT_SEND_LIT(a, "tail of it\r\nafter two\r\n");
	NT_EXPECT(b, "<alice> after two");
	NT_EXPECT_QUIET(a);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/*
 * With the least max_output the config accepts for its max_line, the
 * longest line a room can hear (the longest nick, every input byte shown
 * as U+FFFD) still reaches a reader whole, and the reader stays.
 */
START_TEST(test_max_output_holds_line)
{
	struct chat_opts o = defaults;
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];
	char nick[NT_NICK_LIMIT + 1], want[8192], got[8192];
	uint8_t in[2000 + 2];
	size_t n, len;

	o.max_line = sizeof(in) - 2;
	o.max_nick = NT_NICK_LIMIT;
	o.max_output = NT_TEXT_SAY_MAX(o.max_line, NT_NICK_LIMIT);
	chat_start(&o);
	memset(nick, 'n', NT_NICK_LIMIT);
	nick[NT_NICK_LIMIT] = '\0';
	group_open(v, 2, (const char *const[]){nick, "bob"});

	/* a stray continuation byte is one U+FFFD each (0xFF is telnet's) */
	memset(in, 0x80, o.max_line);
	memcpy(in + o.max_line, "\r\n", 2);
	nt_chat_send_raw(a, in, sizeof(in));
	n = (size_t)snprintf(want, sizeof(want), "<%s> ", nick);
	for (unsigned i = 0; i < o.max_line; i++, n += 3)
		memcpy(want + n, "\xef\xbf\xbd", 3);
	ck_assert_uint_eq(n + 2, o.max_output);
	int rc = nt_chat_line(b, got, sizeof(got), &len, IO_MS);
	ck_assert_msg(rc == 0, "bob: waiting for the long line: %s",
	              nt_chat_rc_str(rc));
	ck_assert_uint_eq(len, n);
	ck_assert(!memcmp(got, want, n));
	NT_EXPECT_QUIET(b);
	NT_EXPECT_QUIET(a);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/*
 * The greeting is sized by the config: with the least max_output a long
 * MOTD allows, a newcomer gets all of it and stays.
 */
#define LONG_MOTD_LINES 50
#define LONG_MOTD_LEN   78

START_TEST(test_greeting_long_motd)
{
	struct chat_opts o = defaults;
	char motd[LONG_MOTD_LINES * (LONG_MOTD_LEN + 4) + 4], *p = motd;
	char line[LONG_MOTD_LEN + 1], got[NT_CHAT_LINE_SIZE];
	struct nt_chat c = {.fd = -1};

	p += sprintf(p, "(");
	for (int i = 0; i < LONG_MOTD_LINES; i++) {
		snprintf(line, sizeof(line), "%02d%0*d", i, LONG_MOTD_LEN - 2,
		         0);
		p += sprintf(p, "%s\"%s\"", i ? ", " : "", line);
	}
	sprintf(p, ")");
	o.motd = motd;
	o.max_output = NT_TEXT_GREETING_MAX(
	    LONG_MOTD_LINES * (4 + LONG_MOTD_LEN + 2), NT_NICK_LIMIT);
	ck_assert_uint_gt(o.max_output, NT_MIN_MAX_OUTPUT);
	chat_start(&o);

	c.fd = nt_daemon_connect(&d, "chat");
	ck_assert_int_ge(c.fd, 0);
	NT_EXPECT_PREFIX(&c, "*** Welcome to natter, guest", got);
	for (int i = 0; i < LONG_MOTD_LINES; i++) {
		snprintf(line, sizeof(line), "%02d%0*d", i, LONG_MOTD_LEN - 2,
		         0);
		NT_EXPECT(&c, "*** %s", line);
	}
	NT_EXPECT(&c, "*** limits: max_line=%u", o.max_line);
	NT_EXPECT_PREFIX(&c, "*** your nick is guest", got);
	NT_EXPECT(&c, "*** you are now in #lobby (1 user)");
	NT_EXPECT_QUIET(&c);
	nt_chat_close(&c);
	stop_ok();
}
END_TEST

/* a name of n bytes: prefix, then 'x', then i in three digits */
static void long_name(char *out, size_t n, const char *prefix, unsigned i)
{
	size_t k = strlen(prefix);

	memcpy(out, prefix, k);
	memset(out + k, 'x', n - k - 3);
	snprintf(out + n - 3, 4, "%03u", i);
}

#define MANY_ROOMS 150

/*
 * More rooms than max_output holds lines for: /rooms lists what fits,
 * sorted, then "... and N more", and the asker stays.
 */
START_TEST(test_rooms_truncated)
{
	static struct nt_chat v[MANY_ROOMS];
	struct chat_opts o = defaults;
	struct nt_chat asker;
	char room[NT_ROOM_MAX + 1], got[NT_CHAT_LINE_SIZE],
	    prev[NT_CHAT_LINE_SIZE] = "";
	unsigned listed = 0, more = 0, total = 0;

	o.max_output = NT_MIN_MAX_OUTPUT;
	chat_start(&o);
	for (unsigned i = 0; i < MANY_ROOMS; i++) {
		cl_open(&v[i]);
		long_name(room, NT_ROOM_MAX, "r", i);
		nt_chat_send(&v[i], "/join %s", room);
		NT_EXPECT(&v[i], "*** you are now in #%s (1 user)", room);
	}
	cl_open(&asker);
	nt_chat_send(&asker, "/rooms");
	NT_EXPECT(&asker, "*** %u rooms:", MANY_ROOMS + 1);
	size_t bytes = (size_t)snprintf(got, sizeof(got), "*** %u rooms:\r\n",
	                                MANY_ROOMS + 1);
	for (;;) {
		int rc = nt_chat_line(&asker, got, sizeof(got), NULL, IO_MS);
		ck_assert_msg(rc == 0, "/rooms: %s", nt_chat_rc_str(rc));
		bytes += strlen(got) + 2;
		if (sscanf(got, "*** ... and %u more", &more) == 1)
			break;
		ck_assert_msg(!strncmp(got, "*** #", 5), "\"%s\"", got);
		ck_assert_msg(strcmp(prev, got) < 0, "not sorted: %s", got);
		snprintf(prev, sizeof(prev), "%s", got);
		listed++;
	}
	total = listed + more;
	ck_assert_uint_eq(total, MANY_ROOMS + 1);
	ck_assert_uint_gt(listed, 0);
	ck_assert_uint_le(bytes, NT_MIN_MAX_OUTPUT);
	NT_EXPECT_QUIET(&asker);
	nt_chat_close(&asker);
	group_close(v, MANY_ROOMS);
	stop_ok();
}
END_TEST

#define MANY_NICKS 120

/* the names of "*** #lobby has N users: a b c ..." in order, checked */
static unsigned who_names(struct nt_chat *c, unsigned users, bool *cut)
{
	char got[NT_MIN_MAX_OUTPUT], prefix[64], *save = NULL, prev[64] = "";
	unsigned n = 0;

	snprintf(prefix, sizeof(prefix), "*** #lobby has %u users:", users);
	NT_EXPECT_PREFIX(c, prefix, got);
	ck_assert_uint_le(strlen(got) + 2, NT_MIN_MAX_OUTPUT);
	*cut = false;
	for (char *w = strtok_r(got + strlen(prefix), " ", &save); w;
	     w = strtok_r(NULL, " ", &save)) {
		ck_assert_msg(!*cut, "a name after \"...\"");
		if (!strcmp(w, "...")) {
			*cut = true;
			continue;
		}
		ck_assert_msg(strlen(w) == NT_NICK_LIMIT || !strcmp(w, c->nick),
		              "/who lists \"%s\"", w);
		ck_assert_msg(strcmp(prev, w) < 0, "not sorted: %s", w);
		snprintf(prev, sizeof(prev), "%s", w);
		n++;
	}
	return n;
}

/*
 * Two /who of a room of long nicks in one go: the second finds the first
 * still queued and lists only what fits, and the asker stays.
 */
START_TEST(test_who_truncated)
{
	static struct nt_chat v[MANY_NICKS];
	struct chat_opts o = defaults;
	struct nt_chat asker;
	char nick[NT_NICK_LIMIT + 1];
	bool cut;

	o.max_output = NT_MIN_MAX_OUTPUT;
	o.max_nick = NT_NICK_LIMIT;
	chat_start(&o);
	for (unsigned i = 0; i < MANY_NICKS; i++) {
		cl_open(&v[i]);
		long_name(nick, NT_NICK_LIMIT, "n", i);
		nt_chat_send(&v[i], "/nick %s", nick);
		NT_EXPECT(&v[i], "*** you are now known as %s", nick);
	}
	memset(&asker, 0, sizeof(asker));
	asker.fd = nt_daemon_connect(&d, "chat");
	ck_assert_int_ge(asker.fd, 0);
	ck_assert_uint_eq(cl_greeting(&asker), MANY_NICKS + 1);
	NT_SEND_LIT(&asker, "/who\r\n/who\r\n");
	unsigned first = who_names(&asker, MANY_NICKS + 1, &cut);
	ck_assert(cut);
	unsigned second = who_names(&asker, MANY_NICKS + 1, &cut);
	ck_assert(cut);
	ck_assert_uint_le(first, 100);
	ck_assert_uint_lt(second, first);
	NT_EXPECT_QUIET(&asker);
	nt_chat_close(&asker);
	group_close(v, MANY_NICKS);
	stop_ok();
}
END_TEST

/* CRLF, LF, CR NUL and a lone CR all end a line, never an extra one */
START_TEST(test_line_endings)
{
	static const char mixed[] = "one\r\ntwo\nthree\r\0four\rfive\r\n";
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	nt_chat_send_raw(a, mixed, sizeof(mixed) - 1);
	NT_EXPECT(b, "<alice> one");
	NT_EXPECT(b, "<alice> two");
	NT_EXPECT(b, "<alice> three");
	NT_EXPECT(b, "<alice> four");
	NT_EXPECT(b, "<alice> five");

	/* a lone CR ends the line at once, without waiting for more */
	NT_SEND_LIT(a, "six\r");
	NT_EXPECT(b, "<alice> six");
	/* the LF or NUL that follows later is swallowed */
	NT_SEND_LIT(a, "\nseven\r");
	NT_EXPECT(b, "<alice> seven");
	NT_SEND_LIT(a, "\0eight\n");
	NT_EXPECT(b, "<alice> eight");
	/* a command with each ending */
	NT_SEND_LIT(a, "/ping lf\n/ping cr\r/ping crnul\r\0/ping crlf\r\n");
	NT_EXPECT(a, "*** pong lf");
	NT_EXPECT(a, "*** pong cr");
	NT_EXPECT(a, "*** pong crnul");
	NT_EXPECT(a, "*** pong crlf");
	/* byte by byte */
	for (const char *p = "nine\r\n"; *p; p++) {
		nt_chat_send_raw(a, p, 1);
		nt_sleep_ms(5);
	}
	NT_EXPECT(b, "<alice> nine");
	NT_EXPECT_QUIET(a);
	NT_EXPECT_QUIET(b);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/* ---- telnet -------------------------------------------------------------- */

#define IAC  "\xff"
#define WILL "\xfb"
#define WONT "\xfc"
#define DO   "\xfd"
#define DONT "\xfe"
#define SB   "\xfa"
#define SE   "\xf0"
#define NOP  "\xf1"
#define IP   "\xf4"
#define AYT  "\xf6"
#define TM   "\x06"

START_TEST(test_telnet_iac)
{
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});

	/* RFC 860: DO TIMING-MARK is answered, here with WONT, every time */
	NT_SEND_LIT(a, IAC DO TM);
	NT_EXPECT_BYTES(a, IAC WONT TM);
	NT_SEND_LIT(a, IAC DO TM);
	NT_EXPECT_BYTES(a, IAC WONT TM);

	/* offers and requests refused, once per option and direction */
	NT_SEND_LIT(a, IAC WILL "\x01" IAC DO "\x03");
	NT_EXPECT_BYTES(a, IAC DONT "\x01" IAC WONT "\x03");
	NT_SEND_LIT(a, IAC WILL "\x01" IAC DO "\x03");
	NT_EXPECT_QUIET(a); /* no second refusal before the pong */
	/* WONT and DONT of what is off anyway need no answer */
	NT_SEND_LIT(a, IAC WONT "\x05" IAC DONT "\x05");
	NT_EXPECT_QUIET(a);

	NT_SEND_LIT(a, IAC AYT);
	NT_EXPECT(a, "*** yes, natter is here");

	/* commands inside a line vanish from it; IAC IAC is a 0xff byte,
	 * which is not UTF-8 */
	NT_SEND_LIT(a, "he" IAC NOP "llo" IAC SB "\x18\x01" IAC SE " wor"
	               "ld\r\n");
	NT_EXPECT(b, "<alice> hello world");
	NT_SEND_LIT(a, "x" IAC IAC "y\r\n");
	NT_EXPECT(b, "<alice> x\xef\xbf\xbdy");
	/* split anywhere */
	NT_SEND_LIT(a, "sp" IAC);
	nt_sleep_ms(50);
	NT_SEND_LIT(a, NOP "lit\r\n");
	NT_EXPECT(b, "<alice> split");
	NT_EXPECT_QUIET(a);

	/* an endless subnegotiation costs no memory, but it would dodge the
	 * line timeout and flood control: past NT_TELNET_SB_MAX it ends the
	 * session */
	{
		struct nt_chat e;
		static char junk[4096];
		cl_open(&e);
		memset(junk, 'x', sizeof(junk));
		NT_SEND_LIT(&e, IAC SB "\x18");
		nt_chat_send_raw(&e, junk, sizeof(junk));
		NT_EXPECT(&e,
		          "!!! telnet subnegotiation too long: disconnecting");
		NT_EXPECT_EOF(&e);
		for (int i = 0; i < 2; i++) {
			char got[128], want[128];
			NT_EXPECT_PREFIX(&v[i], "*** guest", got);
			snprintf(want, sizeof(want),
			         "*** %s has quit (protocol error)",
			         strtok(got + 4, " "));
			NT_EXPECT(&v[i], "%s", want);
		}
		nt_chat_close(&e);
	}

	/* Ctrl-C: the session ends */
	NT_SEND_LIT(a, IAC IP);
	NT_EXPECT(a, "*** bye");
	NT_EXPECT_EOF(a);
	NT_EXPECT(b, "*** alice has quit (interrupted)");
	group_close(v, 2);
	stop_ok();
}
END_TEST

/* the first executable called name in $PATH, into out */
static bool find_program(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	char dirs[4096];

	snprintf(dirs, sizeof(dirs), "%s",
	         path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	char *save = NULL;
	for (char *dir = strtok_r(dirs, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, size, "%s/%s", dir, name);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

/* wait for pid at most ms: its nt_exit_code(), or -ETIMEDOUT (killed) */
static int wait_child(pid_t pid, int ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return nt_exit_code(status);
		if (r < 0)
			return -errno;
		if (nt_test_now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		nt_sleep_ms(20);
	}
}

static void dump_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[4096];
	size_t n;

	if (!f)
		return;
	fprintf(stderr, "---- %s ----\n", path);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "---- end ----\n");
	fclose(f);
}

/*
 * The real telnet client, driven by expect (tests/chat_telnet.exp): it
 * talks, then Ctrl-C ends the session with "*** bye" and the server
 * closing the connection.
 */
START_TEST(test_telnet_client)
{
	char expect_bin[512], telnet_bin[512], script[1024], logf[400];
	char port[16];
	struct nt_chat b;
	const char *srcdir = getenv("NT_SRCDIR");

	if (!find_program("expect", expect_bin, sizeof(expect_bin)) ||
	    !find_program("telnet", telnet_bin, sizeof(telnet_bin))) {
		fprintf(stderr, "SKIP test_telnet_client: no expect or "
		                "telnet\n");
		return;
	}
	if (!srcdir)
		srcdir = getenv("srcdir");
	snprintf(script, sizeof(script), "%s/tests/chat_telnet.exp",
	         srcdir ? srcdir : ".");
	ck_assert_msg(access(script, R_OK) == 0, "no %s (set NT_SRCDIR)",
	              script);

	chat_start(NULL);
	cl_open(&b);
	snprintf(port, sizeof(port), "%u", nt_daemon_port(&d, "chat"));
	snprintf(logf, sizeof(logf), "%s/telnet.log", d.dir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0)
			dup2(null, 0);
		execl(expect_bin, "expect", "-f", script, "127.0.0.1", port,
		      "tel", (char *)NULL);
		_exit(127);
	}
	char got[NT_CHAT_LINE_SIZE], guest[40];
	NT_EXPECT_PREFIX(&b, "*** guest", got);
	ck_assert_int_eq(sscanf(got, "*** %39s has joined #lobby", guest), 1);
	NT_EXPECT(&b, "*** %s is now known as tel", guest);
	NT_EXPECT(&b, "<tel> hello from telnet");
	NT_EXPECT(&b, "*** tel has quit (interrupted)");
	int code = wait_child(pid, CHILD_MS);
	if (code != 0)
		dump_file(logf);
	ck_assert_int_eq(code, 0);
	NT_EXPECT_QUIET(&b);
	nt_chat_close(&b);
	stop_ok();
}
END_TEST

/*
 * ncat, a plain line-oriented client sending LF line endings: the
 * greeting, a nick, a line for the room, /quit with a message.
 */
START_TEST(test_ncat_client)
{
	char ncat_bin[512], port[16], errf[400];
	char out[16384];
	size_t out_len = 0;
	int in_pipe[2], out_pipe[2];
	struct nt_chat b;

	if (!find_program("ncat", ncat_bin, sizeof(ncat_bin))) {
		fprintf(stderr, "SKIP test_ncat_client: no ncat\n");
		return;
	}
	signal(SIGPIPE, SIG_IGN);
	chat_start(NULL);
	cl_open(&b);
	snprintf(port, sizeof(port), "%u", nt_daemon_port(&d, "chat"));
	snprintf(errf, sizeof(errf), "%s/ncat.err", d.dir);
	ck_assert_int_eq(pipe(in_pipe), 0);
	ck_assert_int_eq(pipe(out_pipe), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(in_pipe[0], 0);
		dup2(out_pipe[1], 1);
		if (fd >= 0)
			dup2(fd, 2);
		/* ncat must see its input end when the test closes it */
		close(in_pipe[0]);
		close(in_pipe[1]);
		close(out_pipe[0]);
		close(out_pipe[1]);
		execl(ncat_bin, "ncat", "127.0.0.1", port, (char *)NULL);
		_exit(127);
	}
	close(in_pipe[0]);
	close(out_pipe[1]);
	static const char cmds[] = "/nick nc\nhello from ncat\n/quit done\n";
	ck_assert_int_eq(write(in_pipe[1], cmds, sizeof(cmds) - 1),
	                 (ssize_t)sizeof(cmds) - 1); /* fits in any pipe */

	char got[NT_CHAT_LINE_SIZE], guest[40];
	NT_EXPECT_PREFIX(&b, "*** guest", got);
	ck_assert_int_eq(sscanf(got, "*** %39s has joined #lobby", guest), 1);
	NT_EXPECT(&b, "*** %s is now known as nc", guest);
	NT_EXPECT(&b, "<nc> hello from ncat");
	NT_EXPECT(&b, "*** nc has quit (done)");

	/* ncat prints what the server sent until it closes */
	uint64_t deadline = nt_test_now_ms() + IO_MS;
	while (out_len < sizeof(out) - 1 && nt_test_now_ms() < deadline) {
		out[out_len] = '\0';
		if (strstr(out, "*** bye\r\n"))
			break;
		struct pollfd p = {.fd = out_pipe[0], .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n =
		    read(out_pipe[0], out + out_len, sizeof(out) - 1 - out_len);
		if (n <= 0)
			break;
		out_len += (size_t)n;
	}
	out[out_len] = '\0';
	close(in_pipe[1]); /* ncat waits for its input to end too */
	close(out_pipe[0]);
	int code = wait_child(pid, CHILD_MS);
	if (code != 0)
		dump_file(errf);
	char want[256];
	snprintf(want, sizeof(want),
	         "*** Welcome to natter, %s!\r\n*** " MOTD1 "\r\n*** " MOTD2
	         "\r\n",
	         guest);
	ck_assert_msg(!strncmp(out, want, strlen(want)), "ncat got: %s", out);
	ck_assert_msg(strstr(out, "\r\n*** you are now known as nc\r\n*** "
	                          "bye\r\n"),
	              "ncat got: %s", out);
	ck_assert_int_eq(code, 0);
	NT_EXPECT_QUIET(&b);
	nt_chat_close(&b);
	stop_ok();
}
END_TEST

/* ---- ending sessions ----------------------------------------------------- */

/* idle = 1: a silent client is told, then dropped; the room is told */
START_TEST(test_idle_timeout)
{
	struct chat_opts o = defaults;
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];
	char got[NT_CHAT_LINE_SIZE];
	bool gone = false;

	o.idle = 1;
	chat_start(&o);
	cl_open(a);
	cl_open(b);
	uint64_t t0 = nt_test_now_ms();
	/* b keeps talking, so only a is idle */
	for (int i = 0; i < 40 && !gone; i++) {
		nt_chat_send(b, "/ping %d", i);
		char want[32];
		snprintf(want, sizeof(want), "*** pong %d", i);
		for (;;) {
			int rc = nt_chat_line(b, got, sizeof(got), NULL, IO_MS);
			ck_assert_msg(rc == 0, "b: %s", nt_chat_rc_str(rc));
			if (!strcmp(got, want))
				break;
			char quit[128];
			snprintf(quit, sizeof(quit),
			         "*** %s has quit (idle timeout)", a->nick);
			ck_assert_str_eq(got, quit);
			gone = true;
		}
		nt_sleep_ms(200);
	}
	ck_assert_msg(gone, "b never saw a leave");
	NT_EXPECT(a, "*** %s has joined #lobby", b->nick);
	NT_EXPECT_PREFIX(a, "*** idle for 1 second", got);
	ck_assert_msg(!strcmp(got, "*** idle for 1 second: disconnecting") ||
	                  !strcmp(got, "*** idle for 1 seconds: "
	                               "disconnecting"),
	              "a got \"%s\"", got);
	NT_EXPECT_EOF(a);
	uint64_t took = nt_test_now_ms() - t0;
	ck_assert_msg(took >= 900, "dropped after %llu ms",
	              (unsigned long long)took);
	NT_EXPECT_QUIET(b);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/* line = 1: a line begun and never ended costs the session */
START_TEST(test_line_timeout)
{
	struct chat_opts o = defaults;
	struct nt_chat v[2];
	struct nt_chat *a = &v[0], *b = &v[1];
	char got[NT_CHAT_LINE_SIZE];

	o.line = 1;
	chat_start(&o);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	uint64_t t0 = nt_test_now_ms();
	NT_SEND_LIT(a, "this line never ends");
	NT_EXPECT_PREFIX(a, "!!! a line must end within 1 second", got);
	ck_assert_msg(!strcmp(got, "!!! a line must end within 1 second: "
	                           "disconnecting") ||
	                  !strcmp(got, "!!! a line must end within 1 "
	                               "seconds: disconnecting"),
	              "alice got \"%s\"", got);
	NT_EXPECT_EOF(a);
	uint64_t took = nt_test_now_ms() - t0;
	ck_assert_msg(took >= 900, "dropped after %llu ms",
	              (unsigned long long)took);
	/* and not a byte of the unfinished line was said */
	NT_EXPECT(b, "*** alice has quit (line timeout)");
	NT_EXPECT_QUIET(b);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/*
 * SIGTERM: everyone is told, then the connections close (a FIN, not a
 * reset), exit 0. The goodbye is a session's last line: others leaving
 * as the server goes may come before it, never after.
 */
START_TEST(test_sigterm)
{
	struct nt_chat v[3];

	chat_start(NULL);
	group_open(v, 3, (const char *const[]){"alice", "bob", NULL});
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	for (int i = 0; i < 3; i++) {
		char got[NT_CHAT_LINE_SIZE];
		bool told = false;
		for (int k = 0; k < 10 && !told; k++) {
			int rc =
			    nt_chat_line(&v[i], got, sizeof(got), NULL, IO_MS);
			ck_assert_msg(rc == 0, "%s: %s", v[i].nick,
			              nt_chat_rc_str(rc));
			if (!strcmp(got,
			            "*** the server is shutting down; bye"))
				told = true;
			else /* others leaving as the server goes */
				ck_assert_msg(!strncmp(got, "*** ", 4) &&
				                  strstr(got, " has quit"),
				              "%s: \"%s\"", v[i].nick, got);
		}
		ck_assert_msg(told, "%s was not told", v[i].nick);
		NT_EXPECT_EOF(&v[i]);
		ck_assert_msg(v[i].eof, "%s: reset instead of EOF", v[i].nick);
	}
	ck_assert_int_eq(nt_daemon_wait_exit(&d, NT_TEST_STOP_MS), 0);
	group_close(v, 3);
}
END_TEST

/*
 * /quit with more input right behind it, unread: the client still gets its
 * "bye" and a clean EOF. Closing a socket with unread input resets it, and
 * the reset can destroy what was written and not yet received; natterd
 * sends its FIN and drops the rest of the input instead.
 */
START_TEST(test_quit_while_sending)
{
	struct nt_chat v[2];
	static char flood[256 * 1024 + 32];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	size_t n = (size_t)snprintf(flood, sizeof(flood), "/quit going\r\n");
	while (n + 64 < sizeof(flood))
		n += (size_t)snprintf(flood + n, sizeof(flood) - n,
		                      "%054zu\r\n", n);
	nt_chat_send_raw(&v[0], flood, n);
	NT_EXPECT(&v[0], "*** bye");
	NT_EXPECT_EOF(&v[0]);
	ck_assert_msg(v[0].eof, "reset instead of EOF");
	NT_EXPECT(&v[1], "*** alice has quit (going)");
	NT_EXPECT_QUIET(&v[1]);
	/* its nick is free at once, however long the socket lingers */
	nt_chat_send(&v[1], "/nick alice");
	NT_EXPECT(&v[1], "*** you are now known as alice");
	group_close(v, 2);
	stop_ok();
}
END_TEST

Suite *chat_e2e_suite(void);

Suite *chat_e2e_suite(void)
{
	Suite *s = suite_create("chat_e2e");
	TCase *tc;

	tc = tcase_create("conversation");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_conversation);
	tcase_add_test(tc, test_room_isolation);
	tcase_add_test(tc, test_who_rooms);
	tcase_add_test(tc, test_max_rooms);
	tcase_add_test(tc, test_msg_across_workers);
	tcase_add_test(tc, test_nick_rules);
	tcase_add_test(tc, test_commands);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fanout_100);
	tcase_add_test(tc, test_slow_consumer);
	tcase_add_test(tc, test_flood_delays);
	tcase_add_test(tc, test_flood_telnet);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_injection);
	tcase_add_test(tc, test_truncation_utf8);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_max_output_holds_line);
	tcase_add_test(tc, test_greeting_long_motd);
	tcase_add_test(tc, test_rooms_truncated);
	tcase_add_test(tc, test_who_truncated);
	tcase_add_test(tc, test_line_endings);
	suite_add_tcase(s, tc);

	tc = tcase_create("telnet");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_telnet_iac);
	tcase_add_test(tc, test_telnet_client);
	tcase_add_test(tc, test_ncat_client);
	suite_add_tcase(s, tc);

	tc = tcase_create("end");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_idle_timeout);
	tcase_add_test(tc, test_line_timeout);
	tcase_add_test(tc, test_sigterm);
	tcase_add_test(tc, test_quit_while_sending);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(chat_e2e_suite)
