/*
 * The chat service's pure parts: the command parser (every command, case,
 * the "//" escape, word splitting, bounds) and the shared registry (guest
 * nicks, case-insensitive renames, rooms made and dropped, the room limit,
 * per-worker membership, and one lock under several threads).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "hub.h"
#include "run_suite.h"

/* ---- the parser ---------------------------------------------------------- */

/* what one line must parse to; NULL for a field that must be NULL/empty */
struct parse_case {
	const char *line;
	enum nt_chat_cmd cmd;
	const char *name;
	const char *text;
	const char *arg;
	const char *rest;
};

static const struct parse_case parse_cases[] = {
    /* not commands: the whole line is text for the room */
    {"", NT_CHAT_SAY, NULL, "", NULL, NULL},
    {"hello", NT_CHAT_SAY, NULL, "hello", NULL, NULL},
    {"hello /nick bob", NT_CHAT_SAY, NULL, "hello /nick bob", NULL, NULL},
    {" /nick bob", NT_CHAT_SAY, NULL, " /nick bob", NULL, NULL},
    {"nick bob", NT_CHAT_SAY, NULL, "nick bob", NULL, NULL},
    /* "//" says a line that starts with one '/' */
    {"//", NT_CHAT_SAY, NULL, "/", NULL, NULL},
    {"//nick bob", NT_CHAT_SAY, NULL, "/nick bob", NULL, NULL},
    {"///", NT_CHAT_SAY, NULL, "//", NULL, NULL},
    {"// spaced ", NT_CHAT_SAY, NULL, "/ spaced ", NULL, NULL},
    /* every command, any case */
    {"/nick bob", NT_CHAT_NICK, "nick", "bob", "bob", ""},
    {"/NICK bob", NT_CHAT_NICK, "NICK", "bob", "bob", ""},
    {"/NiCk Bob", NT_CHAT_NICK, "NiCk", "Bob", "Bob", ""},
    {"/join #Dev", NT_CHAT_JOIN, "join", "#Dev", "#Dev", ""},
    {"/JOIN dev", NT_CHAT_JOIN, "JOIN", "dev", "dev", ""},
    {"/part", NT_CHAT_PART, "part", "", "", ""},
    {"/Part", NT_CHAT_PART, "Part", "", "", ""},
    {"/rooms", NT_CHAT_ROOMS, "rooms", "", "", ""},
    {"/ROOMS", NT_CHAT_ROOMS, "ROOMS", "", "", ""},
    {"/who", NT_CHAT_WHO, "who", "", "", ""},
    {"/Who #lobby", NT_CHAT_WHO, "Who", "#lobby", "#lobby", ""},
    {"/msg bob hi there", NT_CHAT_MSG, "msg", "bob hi there", "bob",
     "hi there"},
    {"/MSG bob x", NT_CHAT_MSG, "MSG", "bob x", "bob", "x"},
    {"/me waves hello", NT_CHAT_ME, "me", "waves hello", "waves", "hello"},
    {"/ME x", NT_CHAT_ME, "ME", "x", "x", ""},
    {"/ping", NT_CHAT_PING, "ping", "", "", ""},
    {"/PING tok en", NT_CHAT_PING, "PING", "tok en", "tok", "en"},
    {"/help", NT_CHAT_HELP, "help", "", "", ""},
    {"/HeLp me", NT_CHAT_HELP, "HeLp", "me", "me", ""},
    {"/quit", NT_CHAT_QUIT, "quit", "", "", ""},
    {"/QUIT see you", NT_CHAT_QUIT, "QUIT", "see you", "see", "you"},
    /* spaces: runs of them separate, text keeps what follows the first
     * word's leading run, rest keeps trailing spaces */
    {"/msg  bob   hi  there ", NT_CHAT_MSG, "msg", "bob   hi  there ", "bob",
     "hi  there "},
    {"/nick   bob  ", NT_CHAT_NICK, "nick", "bob  ", "bob", ""},
    {"/nick bob alice", NT_CHAT_NICK, "nick", "bob alice", "bob", "alice"},
    {"/who   ", NT_CHAT_WHO, "who", "", "", ""},
    {"/msg bob", NT_CHAT_MSG, "msg", "bob", "bob", ""},
    {"/msg", NT_CHAT_MSG, "msg", "", "", ""},
    /* unknown: no abbreviations, no prefixes, no extensions */
    {"/foo bar", NT_CHAT_UNKNOWN, "foo", "bar", "bar", ""},
    {"/nickname x", NT_CHAT_UNKNOWN, "nickname", "x", "x", ""},
    {"/ni x", NT_CHAT_UNKNOWN, "ni", "x", "x", ""},
    {"/m bob hi", NT_CHAT_UNKNOWN, "m", "bob hi", "bob", "hi"},
    {"/", NT_CHAT_UNKNOWN, "", "", "", ""},
    {"/ nick bob", NT_CHAT_UNKNOWN, "", "nick bob", "nick", "bob"},
};

/* field must be a slice of line[0..len) equal to want (NULL: no slice) */
static void check_field(const char *what, const char *line, size_t len,
                        const char *got, size_t got_len, const char *want)
{
	if (!want) {
		ck_assert_msg(got == NULL && got_len == 0,
		              "\"%.*s\": %s should be unset, is \"%.*s\"",
		              (int)len, line, what, (int)got_len,
		              got ? got : "");
		return;
	}
	ck_assert_msg(got != NULL, "\"%.*s\": %s unset", (int)len, line, what);
	ck_assert_msg(got >= line && got + got_len <= line + len,
	              "\"%.*s\": %s points outside the line", (int)len, line,
	              what);
	ck_assert_msg(got_len == strlen(want) && !memcmp(got, want, got_len),
	              "\"%.*s\": %s is \"%.*s\", want \"%s\"", (int)len, line,
	              what, (int)got_len, got, want);
}

/* parse from an exact-size heap copy, so that reading past len is caught
 * by AddressSanitizer (there is no NUL to stop at) */
static void check_parse(const struct parse_case *pc)
{
	size_t len = strlen(pc->line);
	char *line = malloc(len ? len : 1);
	struct nt_chat_line l;

	ck_assert_ptr_nonnull(line);
	memcpy(line, pc->line, len);
	memset(&l, 0xa5, sizeof(l)); /* every field must be set */
	nt_chat_parse(line, len, &l);
	ck_assert_msg(l.cmd == pc->cmd, "\"%s\": cmd %d, want %d", pc->line,
	              (int)l.cmd, (int)pc->cmd);
	check_field("name", line, len, l.name, l.name_len, pc->name);
	check_field("text", line, len, l.text, l.text_len, pc->text);
	check_field("arg", line, len, l.arg, l.arg_len, pc->arg);
	check_field("rest", line, len, l.rest, l.rest_len, pc->rest);
	free(line);
}

START_TEST(test_parse_table)
{
	check_parse(&parse_cases[_i]);
}
END_TEST

/* only len bytes count: what follows in memory is not part of the line */
START_TEST(test_parse_len_bound)
{
	const char buf[] = "/nick bobXYZ and more";
	struct nt_chat_line l;

	nt_chat_parse(buf, 9, &l);
	ck_assert_int_eq(l.cmd, NT_CHAT_NICK);
	ck_assert_uint_eq(l.arg_len, 3);
	ck_assert_uint_eq(l.rest_len, 0);
	ck_assert_ptr_eq(l.rest, buf + 9);

	/* "/ni" of "/nick": the command word is cut, so it is unknown */
	nt_chat_parse(buf, 3, &l);
	ck_assert_int_eq(l.cmd, NT_CHAT_UNKNOWN);
	ck_assert_uint_eq(l.name_len, 2);

	/* one byte: "/" */
	nt_chat_parse(buf, 1, &l);
	ck_assert_int_eq(l.cmd, NT_CHAT_UNKNOWN);
	ck_assert_uint_eq(l.name_len, 0);

	/* nothing at all */
	nt_chat_parse(buf, 0, &l);
	ck_assert_int_eq(l.cmd, NT_CHAT_SAY);
	ck_assert_uint_eq(l.text_len, 0);
}
END_TEST

/* a NUL is an ordinary byte to the parser: the length decides */
START_TEST(test_parse_embedded_nul)
{
	const char buf[] = "/msg bob a\0b";
	struct nt_chat_line l;

	nt_chat_parse(buf, sizeof(buf) - 1, &l);
	ck_assert_int_eq(l.cmd, NT_CHAT_MSG);
	ck_assert_uint_eq(l.rest_len, 3);
	ck_assert_int_eq(memcmp(l.rest, "a\0b", 3), 0);
}
END_TEST

/* a command word of every length up to a long one never matches wrongly */
START_TEST(test_parse_long_word)
{
	char buf[600];
	struct nt_chat_line l;

	buf[0] = '/';
	memset(buf + 1, 'q', sizeof(buf) - 1);
	for (size_t len = 1; len <= sizeof(buf); len++) {
		nt_chat_parse(buf, len, &l);
		ck_assert_int_eq(l.cmd, NT_CHAT_UNKNOWN);
		ck_assert_uint_eq(l.name_len, len - 1);
		ck_assert_uint_eq(l.text_len, 0);
	}
}
END_TEST

START_TEST(test_usage)
{
	static const struct {
		enum nt_chat_cmd cmd;
		const char *usage;
	} u[] = {
	    {NT_CHAT_NICK, "/nick NAME"}, {NT_CHAT_JOIN, "/join ROOM"},
	    {NT_CHAT_PART, "/part"},      {NT_CHAT_ROOMS, "/rooms"},
	    {NT_CHAT_WHO, "/who [ROOM]"}, {NT_CHAT_MSG, "/msg NICK TEXT"},
	    {NT_CHAT_ME, "/me TEXT"},     {NT_CHAT_PING, "/ping [TOKEN]"},
	    {NT_CHAT_HELP, "/help"},      {NT_CHAT_QUIT, "/quit [MESSAGE]"},
	};

	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		const char *got = nt_chat_usage(u[i].cmd);
		ck_assert_ptr_nonnull(got);
		ck_assert_str_eq(got, u[i].usage);
	}
	ck_assert_ptr_null(nt_chat_usage(NT_CHAT_SAY));
	ck_assert_ptr_null(nt_chat_usage(NT_CHAT_UNKNOWN));
}
END_TEST

/* ---- the hub ------------------------------------------------------------- */

#define N_WORKERS 4

static struct nt_hub_entry *entry_new(struct nt_hub *h, unsigned worker,
                                      uint32_t slot)
{
	struct nt_hub_entry *e = calloc(1, sizeof(*e));

	ck_assert_ptr_nonnull(e);
	e->id = nt_hub_next_id(h);
	e->worker = worker;
	e->slot = slot;
	return e;
}

/* enter e into room, asserting success and the member count */
static void enter_ok(struct nt_hub *h, struct nt_hub_entry *e, const char *room,
                     unsigned members)
{
	unsigned got = 0;

	ck_assert_int_eq(nt_hub_enter(h, e, room, &got), 0);
	ck_assert_uint_eq(got, members);
	ck_assert_str_eq(e->room, room);
}

/* true if nick is a guest nick: "guest" and four digits */
static bool is_guest4(const char *nick)
{
	if (strncmp(nick, "guest", 5) || strlen(nick) != 9)
		return false;
	for (int i = 5; i < 9; i++)
		if (nick[i] < '0' || nick[i] > '9')
			return false;
	return true;
}

static unsigned room_count(struct nt_hub *h)
{
	struct nt_hub_room_info info[1];

	return nt_hub_rooms(h, info, 0);
}

START_TEST(test_hub_enter_guests)
{
	struct nt_hub *h = nt_hub_new(N_WORKERS, 10, "lobby");
	struct nt_hub_entry *e[8];
	struct nt_hub_target t;

	ck_assert_ptr_nonnull(h);
	for (unsigned i = 0; i < 8; i++) {
		e[i] = entry_new(h, i % N_WORKERS, i);
		enter_ok(h, e[i], "lobby", i + 1);
		ck_assert_msg(is_guest4(e[i]->nick), "nick \"%s\"", e[i]->nick);
		for (unsigned j = 0; j < i; j++)
			ck_assert_str_ne(e[i]->nick, e[j]->nick);
		/* findable, in any case, and pointing at the right session */
		char upper[NT_NICK_LIMIT + 1];
		snprintf(upper, sizeof(upper), "GUEST%s", e[i]->nick + 5);
		ck_assert_int_eq(nt_hub_find(h, upper, &t), 0);
		ck_assert_uint_eq(t.id, e[i]->id);
		ck_assert_uint_eq(t.worker, i % N_WORKERS);
		ck_assert_uint_eq(t.slot, i);
		ck_assert_str_eq(t.nick, e[i]->nick);
	}
	ck_assert_uint_eq(room_count(h), 1);
	for (unsigned i = 0; i < 8; i++) {
		char nick[NT_NICK_LIMIT + 1];
		memcpy(nick, e[i]->nick, sizeof(nick));
		nt_hub_leave(h, e[i]);
		ck_assert_int_eq(nt_hub_find(h, nick, &t), -ENOENT);
		free(e[i]);
	}
	ck_assert_uint_eq(room_count(h), 0);
	nt_hub_free(h);
}
END_TEST

/*
 * 9999 guests take every four-digit guest nick; the next gets a longer one
 * that is still unique, and a freed four-digit nick is found again.
 */
START_TEST(test_hub_guest_exhaustion)
{
	enum { N = 9999 };
	struct nt_hub *h = nt_hub_new(1, 10, "lobby");
	struct nt_hub_entry *e = calloc(N + 2, sizeof(*e));
	struct nt_hub_target t;
	unsigned members;

	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(e);
	for (unsigned i = 0; i < N; i++) {
		e[i].id = nt_hub_next_id(h);
		ck_assert_int_eq(nt_hub_enter(h, &e[i], "lobby", &members), 0);
		ck_assert(is_guest4(e[i].nick));
	}
	ck_assert_uint_eq(members, N);
	e[N].id = nt_hub_next_id(h);
	ck_assert_int_eq(nt_hub_enter(h, &e[N], "lobby", &members), 0);
	ck_assert_msg(!strncmp(e[N].nick, "guest", 5) && !is_guest4(e[N].nick),
	              "nick \"%s\"", e[N].nick);
	ck_assert_int_eq(nt_hub_find(h, e[N].nick, &t), 0);
	ck_assert_uint_eq(t.id, e[N].id);

	/* free guest0005: the next guest must get exactly that one */
	ck_assert_str_eq(e[4].nick, "guest0005");
	nt_hub_leave(h, &e[4]);
	e[N + 1].id = nt_hub_next_id(h);
	ck_assert_int_eq(nt_hub_enter(h, &e[N + 1], "lobby", &members), 0);
	ck_assert_str_eq(e[N + 1].nick, "guest0005");
	ck_assert_uint_eq(members, N + 1);

	for (unsigned i = 0; i < N + 2; i++)
		if (i != 4)
			nt_hub_leave(h, &e[i]);
	ck_assert_uint_eq(room_count(h), 0);
	free(e);
	nt_hub_free(h);
}
END_TEST

/* enter e as a guest of lobby; returns the probes the enter cost */
static uint64_t guest_enter(struct nt_hub *h, struct nt_hub_entry *e)
{
	uint64_t before = nt_hub_guest_probes(h);

	e->id = nt_hub_next_id(h);
	ck_assert_int_eq(nt_hub_enter(h, e, "lobby", NULL), 0);
	return nt_hub_guest_probes(h) - before;
}

/*
 * Freed guest numbers come back (after leave, after a rename away): a
 * four-digit one when its turn comes round, a longer one as soon as it is
 * the lowest free. Numbers that someone holds in any case are skipped,
 * whether taken by a rename or restored.
 */
START_TEST(test_hub_guest_reuse)
{
	enum { N = 9999, M = N + 12 };
	struct nt_hub *h = nt_hub_new(1, 10, "lobby");
	struct nt_hub_entry *e = calloc(M, sizeof(*e));
	struct nt_hub_target t;
	unsigned n = N;

	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(e);
	for (unsigned i = 0; i < N; i++) {
		guest_enter(h, &e[i]);
		if (i != 19)
			continue;
		/* guest0003 leaves: the next guest does not get it */
		ck_assert_str_eq(e[2].nick, "guest0003");
		nt_hub_leave(h, &e[2]);
		guest_enter(h, &e[2]);
		ck_assert_str_eq(e[2].nick, "guest0021");
	}
	/* its turn came round */
	ck_assert_str_eq(e[N - 2].nick, "guest9999");
	ck_assert_str_eq(e[N - 1].nick, "guest0003");

	/* guest0010 renames away: its number is free again */
	ck_assert_int_eq(nt_hub_rename(h, &e[9], "alice"), 0);
	guest_enter(h, &e[n]);
	ck_assert_str_eq(e[n++].nick, "guest0010");

	/* all four-digit numbers held: longer ones, in order */
	guest_enter(h, &e[n]);
	ck_assert_str_eq(e[n++].nick, "guest10000");
	guest_enter(h, &e[n]);
	ck_assert_str_eq(e[n++].nick, "guest10001");

	/* a session restored under the next number, in upper case */
	e[n].id = nt_hub_next_id(h);
	ck_assert_int_eq(nt_hub_enter_as(h, &e[n], "GUEST10002", "lobby", NULL),
	                 0);
	ck_assert_str_eq(e[n++].nick, "GUEST10002");
	/* and one renamed to the number after it */
	ck_assert_int_eq(nt_hub_rename(h, &e[9], "Guest10003"), 0);
	guest_enter(h, &e[n]);
	ck_assert_str_eq(e[n++].nick, "guest10004");

	/* guest10000 leaves: it is the lowest free number, so it is next */
	unsigned g10000 = N + 1;
	nt_hub_leave(h, &e[g10000]);
	guest_enter(h, &e[g10000]);
	ck_assert_str_eq(e[g10000].nick, "guest10000");

	/* the rename away frees 10003, guest0001 leaves: a four-digit
	 * number comes before any longer one */
	ck_assert_int_eq(nt_hub_rename(h, &e[9], "alice"), 0);
	nt_hub_leave(h, &e[0]);
	guest_enter(h, &e[0]);
	ck_assert_str_eq(e[0].nick, "guest0001");
	guest_enter(h, &e[n]);
	ck_assert_str_eq(e[n++].nick, "guest10003");

	/* nicks that only look like a number hold none */
	nt_hub_leave(h, &e[6]);
	ck_assert_int_eq(nt_hub_rename(h, &e[9], "guest7"), 0);
	ck_assert_int_eq(nt_hub_rename(h, &e[N + 3], "Guest00007"), 0);
	guest_enter(h, &e[6]);
	ck_assert_str_eq(e[6].nick, "guest0007");
	ck_assert_int_eq(nt_hub_find(h, "GUEST0007", &t), 0);
	ck_assert_uint_eq(t.id, e[6].id);
	ck_assert_int_eq(nt_hub_find(h, "guest7", &t), 0);
	ck_assert_uint_eq(t.id, e[9].id);

	for (unsigned i = 0; i < n; i++)
		nt_hub_leave(h, &e[i]);
	ck_assert_uint_eq(room_count(h), 0);
	free(e);
	nt_hub_free(h);
}
END_TEST

/*
 * What one enter costs must not grow with the sessions: the same with 100
 * as with 30,000, every guestNNNN held and some numbers held by renames and
 * restored sessions. Counted in probes, not time, so load cannot fail it.
 */
#define GUEST_PROBES_MAX 24 /* a few words per bitmap level, two searches */

START_TEST(test_hub_guest_cost)
{
	enum { SMALL = 100, BIG = 30000 };
	struct nt_hub *h = nt_hub_new(1, 10, "lobby");
	struct nt_hub_entry *e = calloc(BIG + 1, sizeof(*e));
	struct nt_hub_target t;
	uint64_t small, big, worst = 0;
	char nick[NT_NICK_LIMIT + 1];

	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(e);
	for (unsigned i = 0; i < SMALL; i++)
		guest_enter(h, &e[i]);
	small = guest_enter(h, &e[SMALL]);
	ck_assert_uint_gt(small, 0);
	for (unsigned i = SMALL + 1; i < BIG; i++) {
		uint64_t cost;
		if (i % 1000 == 500) {
			/* restored under a number not handed out yet */
			snprintf(nick, sizeof(nick), "Guest%u", i + 2000);
			e[i].id = nt_hub_next_id(h);
			ck_assert_int_eq(
			    nt_hub_enter_as(h, &e[i], nick, "lobby", NULL), 0);
			ck_assert_str_eq(e[i].nick, nick);
			continue;
		}
		cost = guest_enter(h, &e[i]);
		worst = cost > worst ? cost : worst;
		if (i % 7 == 0) {
			/* a guest renames: its number is free again */
			snprintf(nick, sizeof(nick), "user%u", i);
			ck_assert_int_eq(nt_hub_rename(h, &e[i], nick), 0);
		} else if (i % 7 == 1 && i < 9000) {
			/* a user takes a number ahead of the guests */
			snprintf(nick, sizeof(nick), "GUEST%04u", i + 900);
			if (nt_hub_find(h, nick, &t) < 0)
				ck_assert_int_eq(nt_hub_rename(h, &e[i], nick),
				                 0);
		}
	}
	for (unsigned g = 1; g <= 9999; g++) {
		snprintf(nick, sizeof(nick), "guest%04u", g);
		ck_assert_msg(nt_hub_find(h, nick, &t) == 0, "%s is free",
		              nick);
	}
	/* every session has its own nick */
	for (unsigned i = 0; i < BIG; i++) {
		ck_assert_int_eq(nt_hub_find(h, e[i].nick, &t), 0);
		ck_assert_uint_eq(t.id, e[i].id);
	}
	big = guest_enter(h, &e[BIG]);
	ck_assert_msg(big <= GUEST_PROBES_MAX && worst <= GUEST_PROBES_MAX,
	              "probes per enter: %llu with %u sessions, %llu with %u, "
	              "%llu at worst",
	              (unsigned long long)small, SMALL, (unsigned long long)big,
	              BIG, (unsigned long long)worst);

	for (unsigned i = 0; i <= BIG; i++)
		nt_hub_leave(h, &e[i]);
	ck_assert_uint_eq(room_count(h), 0);
	free(e);
	nt_hub_free(h);
}
END_TEST

START_TEST(test_hub_rename)
{
	struct nt_hub *h = nt_hub_new(N_WORKERS, 10, "lobby");
	struct nt_hub_entry *a = entry_new(h, 0, 0), *b = entry_new(h, 1, 0);
	struct nt_hub_target t;
	char guest_a[NT_NICK_LIMIT + 1];

	enter_ok(h, a, "lobby", 1);
	enter_ok(h, b, "lobby", 2);
	memcpy(guest_a, a->nick, sizeof(guest_a));

	ck_assert_int_eq(nt_hub_rename(h, a, "Alice"), 0);
	ck_assert_str_eq(a->nick, "Alice");
	ck_assert_int_eq(nt_hub_find(h, guest_a, &t), -ENOENT);
	ck_assert_int_eq(nt_hub_find(h, "aLiCe", &t), 0);
	ck_assert_str_eq(t.nick, "Alice");
	ck_assert_uint_eq(t.id, a->id);

	/* taken in any case, and the loser keeps its nick */
	char guest_b[NT_NICK_LIMIT + 1];
	memcpy(guest_b, b->nick, sizeof(guest_b));
	ck_assert_int_eq(nt_hub_rename(h, b, "alice"), -EEXIST);
	ck_assert_int_eq(nt_hub_rename(h, b, "ALICE"), -EEXIST);
	ck_assert_int_eq(nt_hub_rename(h, b, "Alice"), -EEXIST);
	ck_assert_str_eq(b->nick, guest_b);
	ck_assert_int_eq(nt_hub_find(h, guest_b, &t), 0);
	ck_assert_uint_eq(t.id, b->id);
	/* a's old guest nick is free for someone else */
	ck_assert_int_eq(nt_hub_rename(h, b, guest_a), 0);
	ck_assert_int_eq(nt_hub_find(h, guest_a, &t), 0);
	ck_assert_uint_eq(t.id, b->id);
	ck_assert_int_eq(nt_hub_find(h, guest_b, &t), -ENOENT);

	/* its owner may change only the case */
	ck_assert_int_eq(nt_hub_rename(h, a, "ALICE"), 0);
	ck_assert_str_eq(a->nick, "ALICE");
	ck_assert_int_eq(nt_hub_find(h, "alice", &t), 0);
	ck_assert_str_eq(t.nick, "ALICE");
	ck_assert_uint_eq(t.id, a->id);
	/* and renaming to the very same nick is harmless */
	ck_assert_int_eq(nt_hub_rename(h, a, "ALICE"), 0);
	ck_assert_int_eq(nt_hub_find(h, "Alice", &t), 0);
	ck_assert_uint_eq(t.id, a->id);

	/* a nick of the largest allowed length */
	char longest[NT_NICK_LIMIT + 1];
	memset(longest, 'z', NT_NICK_LIMIT);
	longest[NT_NICK_LIMIT] = '\0';
	ck_assert_int_eq(nt_hub_rename(h, a, longest), 0);
	ck_assert_str_eq(a->nick, longest);
	ck_assert_int_eq(nt_hub_find(h, longest, &t), 0);
	ck_assert_uint_eq(t.id, a->id);
	/* the old nick left with the rename */
	ck_assert_int_eq(nt_hub_find(h, "alice", &t), -ENOENT);

	/* who shows the current nicks */
	char names[4][NT_NICK_LIMIT + 1];
	ck_assert_uint_eq(nt_hub_who(h, "lobby", names, 4), 2);
	ck_assert_msg(
	    (!strcmp(names[0], longest) && !strcmp(names[1], guest_a)) ||
	        (!strcmp(names[1], longest) && !strcmp(names[0], guest_a)),
	    "who: %s %s", names[0], names[1]);

	nt_hub_leave(h, a);
	nt_hub_leave(h, b);
	ck_assert_int_eq(nt_hub_find(h, longest, &t), -ENOENT);
	free(a);
	free(b);
	nt_hub_free(h);
}
END_TEST

START_TEST(test_hub_move)
{
	struct nt_hub *h = nt_hub_new(N_WORKERS, 10, "lobby");
	struct nt_hub_entry *a = entry_new(h, 0, 0), *b = entry_new(h, 1, 0);
	unsigned members = 99;

	enter_ok(h, a, "lobby", 1);
	enter_ok(h, b, "lobby", 2);

	ck_assert_int_eq(nt_hub_move(h, a, "lobby", &members), -EALREADY);
	ck_assert_str_eq(a->room, "lobby");

	ck_assert_int_eq(nt_hub_move(h, a, "dev", &members), 0);
	ck_assert_uint_eq(members, 1);
	ck_assert_str_eq(a->room, "dev");
	ck_assert_uint_eq(room_count(h), 2);
	ck_assert_uint_eq(nt_hub_who(h, "lobby", NULL, 0), 1);
	ck_assert_uint_eq(nt_hub_who(h, "dev", NULL, 0), 1);

	ck_assert_int_eq(nt_hub_move(h, b, "dev", &members), 0);
	ck_assert_uint_eq(members, 2);
	/* lobby emptied: it is gone */
	ck_assert_uint_eq(room_count(h), 1);
	ck_assert_uint_eq(nt_hub_who(h, "lobby", NULL, 0), 0);
	ck_assert_uint_eq(nt_hub_who(h, "dev", NULL, 0), 2);

	/* a room made again after it vanished starts from scratch */
	ck_assert_int_eq(nt_hub_move(h, a, "lobby", &members), 0);
	ck_assert_uint_eq(members, 1);
	ck_assert_uint_eq(room_count(h), 2);

	nt_hub_leave(h, a);
	ck_assert_uint_eq(room_count(h), 1);
	nt_hub_leave(h, b);
	ck_assert_uint_eq(room_count(h), 0);
	free(a);
	free(b);
	nt_hub_free(h);
}
END_TEST

/* max_rooms: entering and moving may not make one room too many */
START_TEST(test_hub_max_rooms)
{
	struct nt_hub *h = nt_hub_new(N_WORKERS, 2, "lobby");
	struct nt_hub_entry *a = entry_new(h, 0, 0), *b = entry_new(h, 1, 0);
	struct nt_hub_entry *c = entry_new(h, 2, 0), *x = entry_new(h, 3, 0);
	struct nt_hub_target t;
	unsigned members = 99;

	enter_ok(h, a, "r1", 1);
	enter_ok(h, b, "r2", 1);
	ck_assert_uint_eq(room_count(h), 2);

	/* a third room on enter: refused, and the would-be guest is gone */
	ck_assert_int_eq(nt_hub_enter(h, x, "r3", &members), -ENOSPC);
	ck_assert_uint_eq(room_count(h), 2);
	ck_assert_int_eq(nt_hub_find(h, x->nick, &t), -ENOENT);
	/* an existing room is fine */
	enter_ok(h, c, "r2", 2);

	/* a third room on move: refused, and c stays where it was */
	ck_assert_int_eq(nt_hub_move(h, c, "r3", &members), -ENOSPC);
	ck_assert_str_eq(c->room, "r2");
	ck_assert_uint_eq(nt_hub_who(h, "r2", NULL, 0), 2);
	ck_assert_uint_eq(nt_hub_who(h, "r3", NULL, 0), 0);
	ck_assert_uint_eq(room_count(h), 2);

	/* a alone in r1: moving to a new room leaves the count at 2 */
	ck_assert_int_eq(nt_hub_move(h, a, "r3", &members), 0);
	ck_assert_uint_eq(members, 1);
	ck_assert_uint_eq(room_count(h), 2);
	ck_assert_uint_eq(nt_hub_who(h, "r1", NULL, 0), 0);

	/* room freed: a new one may be made */
	ck_assert_int_eq(nt_hub_move(h, a, "r2", &members), 0);
	ck_assert_uint_eq(members, 3);
	ck_assert_uint_eq(room_count(h), 1);
	ck_assert_int_eq(nt_hub_move(h, c, "r4", &members), 0);
	ck_assert_uint_eq(room_count(h), 2);

	/* the default room can always be made: a full server still lets
	 * new clients in and lets anyone /part back */
	ck_assert_int_eq(nt_hub_enter(h, x, "lobby", &members), 0);
	ck_assert_uint_eq(room_count(h), 3);
	ck_assert_int_eq(nt_hub_move(h, c, "lobby", &members), 0);
	ck_assert_uint_eq(members, 2);
	nt_hub_leave(h, x);

	nt_hub_leave(h, a);
	nt_hub_leave(h, b);
	nt_hub_leave(h, c);
	ck_assert_uint_eq(room_count(h), 0);
	free(a);
	free(b);
	free(c);
	free(x);
	nt_hub_free(h);
}
END_TEST

static bool has_name(char (*names)[NT_NICK_LIMIT + 1], unsigned n,
                     const char *nick)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(names[i], nick))
			return true;
	return false;
}

START_TEST(test_hub_who_rooms)
{
	struct nt_hub *h = nt_hub_new(N_WORKERS, 10, "lobby");
	struct nt_hub_entry *e[5];
	char names[5][NT_NICK_LIMIT + 1];
	struct nt_hub_room_info info[3];
	const char *rooms[5] = {"a", "b", "b", "c", "c"};

	for (unsigned i = 0; i < 5; i++) {
		e[i] = entry_new(h, i % N_WORKERS, i);
		ck_assert_int_eq(nt_hub_enter(h, e[i], "lobby", NULL), 0);
	}
	ck_assert_uint_eq(nt_hub_who(h, "lobby", names, 5), 5);
	for (unsigned i = 0; i < 5; i++)
		ck_assert_msg(has_name(names, 5, e[i]->nick), "%s missing",
		              e[i]->nick);
	/* fewer slots than members: the count is still the whole */
	memset(names, 0, sizeof(names));
	ck_assert_uint_eq(nt_hub_who(h, "lobby", names, 2), 5);
	ck_assert(names[0][0] && names[1][0] && !names[2][0]);
	ck_assert_uint_eq(nt_hub_who(h, "nosuch", names, 5), 0);

	for (unsigned i = 0; i < 5; i++)
		ck_assert_int_eq(nt_hub_move(h, e[i], rooms[i], NULL), 0);
	ck_assert_uint_eq(nt_hub_who(h, "lobby", names, 5), 0);
	ck_assert_uint_eq(nt_hub_who(h, "b", names, 5), 2);
	ck_assert(has_name(names, 2, e[1]->nick) &&
	          has_name(names, 2, e[2]->nick));

	ck_assert_uint_eq(nt_hub_rooms(h, info, 3), 3);
	unsigned seen = 0;
	for (unsigned i = 0; i < 3; i++) {
		unsigned want = !strcmp(info[i].name, "a") ? 1 : 2;
		ck_assert_msg(!strcmp(info[i].name, "a") ||
		                  !strcmp(info[i].name, "b") ||
		                  !strcmp(info[i].name, "c"),
		              "room %s", info[i].name);
		ck_assert_uint_eq(info[i].members, want);
		seen |= 1u << (info[i].name[0] - 'a');
	}
	ck_assert_uint_eq(seen, 7);
	/* fewer slots than rooms: the total is still returned */
	memset(info, 0, sizeof(info));
	ck_assert_uint_eq(nt_hub_rooms(h, info, 1), 3);
	ck_assert(info[0].name[0] && !info[1].name[0]);

	for (unsigned i = 0; i < 5; i++) {
		nt_hub_leave(h, e[i]);
		free(e[i]);
	}
	ck_assert_uint_eq(nt_hub_rooms(h, info, 3), 0);
	nt_hub_free(h);
}
END_TEST

static void check_workers(struct nt_hub *h, const char *room, unsigned members,
                          const bool want[N_WORKERS])
{
	bool got[N_WORKERS];

	memset(got, 0xff, sizeof(got));
	ck_assert_uint_eq(nt_hub_room_workers(h, room, got), members);
	for (unsigned i = 0; i < N_WORKERS; i++)
		ck_assert_msg(got[i] == want[i], "#%s worker %u: %d, want %d",
		              room, i, got[i], want[i]);
}

START_TEST(test_hub_room_workers)
{
	struct nt_hub *h = nt_hub_new(N_WORKERS, 10, "lobby");
	struct nt_hub_entry *a = entry_new(h, 0, 0), *b = entry_new(h, 2, 0);
	struct nt_hub_entry *c = entry_new(h, 2, 1);

	check_workers(h, "lobby", 0, (bool[]){false, false, false, false});
	enter_ok(h, a, "lobby", 1);
	check_workers(h, "lobby", 1, (bool[]){true, false, false, false});
	enter_ok(h, b, "lobby", 2);
	enter_ok(h, c, "lobby", 3);
	check_workers(h, "lobby", 3, (bool[]){true, false, true, false});

	/* worker 2 keeps its flag while one of its two members remains */
	ck_assert_int_eq(nt_hub_move(h, b, "dev", NULL), 0);
	check_workers(h, "lobby", 2, (bool[]){true, false, true, false});
	check_workers(h, "dev", 1, (bool[]){false, false, true, false});
	ck_assert_int_eq(nt_hub_move(h, c, "dev", NULL), 0);
	check_workers(h, "lobby", 1, (bool[]){true, false, false, false});
	check_workers(h, "dev", 2, (bool[]){false, false, true, false});

	/* the last worker index */
	struct nt_hub_entry *z = entry_new(h, N_WORKERS - 1, 7);
	enter_ok(h, z, "dev", 3);
	check_workers(h, "dev", 3, (bool[]){false, false, true, true});

	nt_hub_leave(h, a);
	check_workers(h, "lobby", 0, (bool[]){false, false, false, false});
	nt_hub_leave(h, b);
	nt_hub_leave(h, c);
	check_workers(h, "dev", 1, (bool[]){false, false, false, true});
	nt_hub_leave(h, z);
	check_workers(h, "dev", 0, (bool[]){false, false, false, false});
	free(a);
	free(b);
	free(c);
	free(z);
	nt_hub_free(h);
}
END_TEST

START_TEST(test_hub_ids)
{
	struct nt_hub *h = nt_hub_new(1, 1, "lobby");
	uint64_t prev = nt_hub_next_id(h);

	ck_assert_uint_ne(prev, 0);
	for (int i = 0; i < 1000; i++) {
		uint64_t id = nt_hub_next_id(h);
		ck_assert_uint_gt(id, prev);
		prev = id;
	}
	nt_hub_free(h);
	nt_hub_free(NULL);
}
END_TEST

/* ---- the hub under several threads --------------------------------------- */

#define T_THREADS 4
#define T_ENTRIES 16
#define T_ROUNDS  300

struct hub_thread {
	struct nt_hub *h;
	pthread_barrier_t *done; /* nobody leaves before all are done */
	unsigned idx;
	unsigned shared_wins; /* renames to the contested nick that worked */
	unsigned failures;    /* anything that should not have happened */
};

static void *hub_thread_main(void *arg)
{
	struct hub_thread *ht = arg;
	struct nt_hub_entry e[T_ENTRIES];
	char nick[NT_NICK_LIMIT + 1], room[8];
	char names[8][NT_NICK_LIMIT + 1];
	bool workers[T_THREADS];
	struct nt_hub_target t;

	memset(e, 0, sizeof(e));
	for (unsigned i = 0; i < T_ENTRIES; i++) {
		e[i].id = nt_hub_next_id(ht->h);
		e[i].worker = ht->idx;
		e[i].slot = i;
		if (nt_hub_enter(ht->h, &e[i], "lobby", NULL) < 0)
			ht->failures++;
	}
	for (unsigned r = 0; r < T_ROUNDS; r++) {
		/* e[0] is kept for the contested nick */
		struct nt_hub_entry *x = &e[1 + r % (T_ENTRIES - 1)];
		snprintf(nick, sizeof(nick), "t%ux%u", ht->idx, r);
		if (nt_hub_rename(ht->h, x, nick) < 0)
			ht->failures++;
		if (nt_hub_find(ht->h, nick, &t) < 0 || t.id != x->id)
			ht->failures++;
		/* everybody wants this one; only one can ever have it */
		if (nt_hub_rename(ht->h, &e[0], r % 2 ? "Shared" : "sHARED") ==
		    0)
			ht->shared_wins++;
		snprintf(room, sizeof(room), "r%u", r % 5);
		int rc = nt_hub_move(ht->h, x, room, NULL);
		if (rc < 0 && rc != -EALREADY)
			ht->failures++;
		nt_hub_who(ht->h, room, names, 8);
		nt_hub_room_workers(ht->h, room, workers);
		if (!workers[ht->idx])
			ht->failures++;
	}
	pthread_barrier_wait(ht->done);
	for (unsigned i = 0; i < T_ENTRIES; i++)
		nt_hub_leave(ht->h, &e[i]);
	return NULL;
}

START_TEST(test_hub_threads)
{
	struct nt_hub *h = nt_hub_new(T_THREADS, 100, "lobby");
	struct hub_thread ht[T_THREADS];
	pthread_t tid[T_THREADS];
	pthread_barrier_t done;
	unsigned wins = 0;

	ck_assert_ptr_nonnull(h);
	pthread_barrier_init(&done, NULL, T_THREADS);
	for (unsigned i = 0; i < T_THREADS; i++) {
		ht[i] = (struct hub_thread){.h = h, .done = &done, .idx = i};
		ck_assert_int_eq(
		    pthread_create(&tid[i], NULL, hub_thread_main, &ht[i]), 0);
	}
	for (unsigned i = 0; i < T_THREADS; i++) {
		pthread_join(tid[i], NULL);
		ck_assert_uint_eq(ht[i].failures, 0);
		/* the winner keeps winning (changing only the case of its
		 * own nick is allowed); nobody else ever gets it */
		if (ht[i].shared_wins)
			wins++;
	}
	pthread_barrier_destroy(&done);
	ck_assert_uint_eq(wins, 1);
	ck_assert_uint_eq(room_count(h), 0);
	nt_hub_free(h);
}
END_TEST

Suite *chat_suite(void);

Suite *chat_suite(void)
{
	Suite *s = suite_create("chat");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_set_timeout(tc, 10);
	tcase_add_loop_test(
	    tc, test_parse_table, 0,
	    (int)(sizeof(parse_cases) / sizeof(parse_cases[0])));
	tcase_add_test(tc, test_parse_len_bound);
	tcase_add_test(tc, test_parse_embedded_nul);
	tcase_add_test(tc, test_parse_long_word);
	tcase_add_test(tc, test_usage);
	suite_add_tcase(s, tc);

	tc = tcase_create("hub");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_hub_enter_guests);
	tcase_add_test(tc, test_hub_guest_exhaustion);
	tcase_add_test(tc, test_hub_guest_reuse);
	tcase_add_test(tc, test_hub_guest_cost);
	tcase_add_test(tc, test_hub_rename);
	tcase_add_test(tc, test_hub_move);
	tcase_add_test(tc, test_hub_max_rooms);
	tcase_add_test(tc, test_hub_who_rooms);
	tcase_add_test(tc, test_hub_room_workers);
	tcase_add_test(tc, test_hub_ids);
	tcase_add_test(tc, test_hub_threads);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(chat_suite)
