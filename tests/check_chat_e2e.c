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
#include "run_suite.h"
#include "text.h"

#define MOTD1 "natter test server"
#define MOTD2 "be nice"

#define IO_MS      10000 /* one line; generous for sanitized daemons */
#define LINE_SIZE  2048
#define CL_BUF_MAX (8 * 1024 * 1024)
#define CHILD_MS   30000 /* telnet/expect/ncat runs */

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
 * A client reads into its own buffer, so that many of them can be served
 * by one poll() and lines can be taken out later, one at a time.
 */
struct cl {
	int fd;
	char nick[40];
	char *buf; /* received; [off, len) not yet taken */
	size_t off, len, cap;
	bool eof;
	int err; /* -errno of a failed read */
};

/* read what is there without waiting: bytes read, 0 if none */
static size_t cl_read_some(struct cl *c)
{
	size_t total = 0;

	while (!c->eof && !c->err) {
		if (c->off && c->off == c->len)
			c->off = c->len = 0;
		if (c->cap - c->len < 4096) {
			if (c->off) {
				memmove(c->buf, c->buf + c->off,
				        c->len - c->off);
				c->len -= c->off;
				c->off = 0;
			}
			if (c->cap - c->len < 4096) {
				size_t ncap = c->cap ? c->cap * 2 : 16384;
				ck_assert_msg(ncap <= CL_BUF_MAX,
				              "%s: over %d unread bytes",
				              c->nick, CL_BUF_MAX);
				c->buf = realloc(c->buf, ncap);
				ck_assert_ptr_nonnull(c->buf);
				c->cap = ncap;
			}
		}
		ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (n > 0) {
			c->len += (size_t)n;
			total += (size_t)n;
		} else if (n == 0) {
			c->eof = true;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else if (errno != EINTR) {
			c->err = -errno;
		}
	}
	return total;
}

/* wait up to ms for something to read (or EOF), then read it */
static void cl_wait(struct cl *c, int ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	if (ms < 0)
		ms = 0;
	if (poll(&p, 1, ms) > 0)
		cl_read_some(c);
}

/* poll many clients once, up to ms, reading what is there */
static void cl_pump(struct cl *v, size_t n, int ms)
{
	struct pollfd p[256];

	ck_assert_uint_le(n, 256);
	for (size_t i = 0; i < n; i++)
		p[i] =
		    (struct pollfd){.fd = v[i].eof || v[i].err ? -1 : v[i].fd,
		                    .events = POLLIN};
	if (poll(p, (nfds_t)n, ms) > 0)
		for (size_t i = 0; i < n; i++)
			if (p[i].revents)
				cl_read_some(&v[i]);
}

/* take one whole CRLF line out of the buffer, if there is one */
static bool cl_take(struct cl *c, char *out, size_t size, size_t *out_len)
{
	char *start = c->buf + c->off;
	size_t avail = c->len - c->off;

	for (size_t i = 0; i + 1 < avail; i++) {
		if (start[i] != '\r' || start[i + 1] != '\n')
			continue;
		ck_assert_msg(i < size, "%s: a %zu-byte line", c->nick, i);
		memcpy(out, start, i);
		out[i] = '\0';
		if (out_len)
			*out_len = i;
		c->off += i + 2;
		return true;
	}
	return false;
}

/* the next line: 0, -ETIMEDOUT, or -EPIPE at EOF / error */
static int cl_line_n(struct cl *c, char *out, size_t size, size_t *out_len,
                     int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (cl_take(c, out, size, out_len))
			return 0;
		if (c->eof || c->err)
			return -EPIPE;
		uint64_t now = nt_test_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		cl_wait(c, (int)(deadline - now));
	}
}

static int cl_line(struct cl *c, char *out, size_t size, int timeout_ms)
{
	size_t n;
	int rc = cl_line_n(c, out, size, &n, timeout_ms);

	if (rc == 0) {
		/* every server line is one CRLF-terminated line of text */
		ck_assert_msg(strlen(out) == n, "%s: NUL in \"%s\"", c->nick,
		              out);
		ck_assert_msg(!strpbrk(out, "\r\n"),
		              "%s: bare CR or LF in \"%s\"", c->nick, out);
	}
	return rc;
}

static const char *rc_str(int rc)
{
	return rc == -ETIMEDOUT ? "timed out" : "connection closed";
}

static void cl_send_raw(struct cl *c, const void *data, size_t len)
{
	ck_assert_msg(nt_write_all(c->fd, data, len, IO_MS) == 0,
	              "%s: write failed", c->nick);
}

/* a string literal, every byte of it (it may hold a NUL) */
#define SEND_LIT(c, lit) cl_send_raw((c), (lit), sizeof(lit) - 1)

static void cl_send(struct cl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* one line, CRLF added */
static void cl_send(struct cl *c, const char *fmt, ...)
{
	char line[LINE_SIZE];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	ck_assert(n >= 0 && (size_t)n < sizeof(line) - 2);
	memcpy(line + n, "\r\n", 2);
	cl_send_raw(c, line, (size_t)n + 2);
}

static void expect_line(int at, struct cl *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* the next line must be exactly this */
static void expect_line(int at, struct cl *c, const char *fmt, ...)
{
	char want[LINE_SIZE], got[LINE_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	int rc = cl_line(c, got, sizeof(got), IO_MS);
	ck_assert_msg(rc == 0, "line %d: %s: waiting for \"%s\": %s", at,
	              c->nick, want, rc_str(rc));
	ck_assert_msg(!strcmp(got, want),
	              "line %d: %s: expected \"%s\", got \"%s\"", at, c->nick,
	              want, got);
}
#define EXPECT(c, ...) expect_line(__LINE__, (c), __VA_ARGS__)

/* the next line, which must start with prefix, into got */
static void expect_prefix(int at, struct cl *c, const char *prefix, char *got,
                          size_t size)
{
	int rc = cl_line(c, got, size, IO_MS);

	ck_assert_msg(rc == 0, "line %d: %s: waiting for \"%s...\": %s", at,
	              c->nick, prefix, rc_str(rc));
	ck_assert_msg(!strncmp(got, prefix, strlen(prefix)),
	              "line %d: %s: expected \"%s...\", got \"%s\"", at,
	              c->nick, prefix, got);
}
#define EXPECT_PREFIX(c, p, buf)                                               \
	expect_prefix(__LINE__, (c), (p), (buf), sizeof(buf))

/* exactly these bytes next (telnet replies) */
static void expect_bytes(int at, struct cl *c, const void *want, size_t n)
{
	uint64_t deadline = nt_test_now_ms() + IO_MS;

	while (c->len - c->off < n && !c->eof && !c->err &&
	       nt_test_now_ms() < deadline)
		cl_wait(c, 100);
	ck_assert_msg(c->len - c->off >= n, "line %d: %s: %zu of %zu bytes", at,
	              c->nick, c->len - c->off, n);
	ck_assert_msg(!memcmp(c->buf + c->off, want, n),
	              "line %d: %s: unexpected bytes", at, c->nick);
	c->off += n;
}
#define EXPECT_BYTES(c, s) expect_bytes(__LINE__, (c), (s), sizeof(s) - 1)

/* nothing more, then EOF (a reset counts as the end too) */
static void expect_eof(int at, struct cl *c)
{
	uint64_t deadline = nt_test_now_ms() + IO_MS;

	while (!c->eof && !c->err && c->off == c->len &&
	       nt_test_now_ms() < deadline)
		cl_wait(c, 100);
	ck_assert_msg(c->off == c->len, "line %d: %s: more data: \"%.*s\"", at,
	              c->nick,
	              (int)(c->len - c->off < 200 ? c->len - c->off : 200),
	              c->buf + c->off);
	ck_assert_msg(c->eof || c->err == -ECONNRESET,
	              "line %d: %s: no EOF (err %d)", at, c->nick, c->err);
}
#define EXPECT_EOF(c) expect_eof(__LINE__, (c))

/*
 * Nothing queued for c before this: a ping's answer comes right after
 * whatever the server had already sent c.
 */
static void expect_quiet(int at, struct cl *c)
{
	static unsigned seq;
	char want[64], got[LINE_SIZE];

	snprintf(want, sizeof(want), "*** pong quiet-%u", ++seq);
	cl_send(c, "/ping quiet-%u", seq);
	int rc = cl_line(c, got, sizeof(got), IO_MS);
	ck_assert_msg(rc == 0, "line %d: %s: no pong: %s", at, c->nick,
	              rc_str(rc));
	ck_assert_msg(!strcmp(got, want),
	              "line %d: %s: expected \"%s\", got "
	              "\"%s\"",
	              at, c->nick, want, got);
}
#define EXPECT_QUIET(c) expect_quiet(__LINE__, (c))

static bool is_guest(const char *nick)
{
	size_t n = strlen(nick);

	if (n != 9 || strncmp(nick, "guest", 5))
		return false;
	return strspn(nick + 5, "0123456789") == 4;
}

/*
 * Read the greeting to its last line, checking each line exactly: the
 * welcome with the guest nick, the MOTD, the nick hint, the room line.
 * Returns the room's size as announced.
 */
static unsigned cl_greeting(struct cl *c)
{
	char got[LINE_SIZE];
	unsigned members;

	snprintf(c->nick, sizeof(c->nick), "fd%d", c->fd);
	EXPECT_PREFIX(c, "*** Welcome to natter, ", got);
	size_t n = strlen(got);
	ck_assert_msg(got[n - 1] == '!', "welcome: \"%s\"", got);
	snprintf(c->nick, sizeof(c->nick), "%.*s",
	         (int)(n - 1 - strlen("*** Welcome to natter, ")),
	         got + strlen("*** Welcome to natter, "));
	ck_assert_msg(is_guest(c->nick), "not a guest nick: \"%s\"", c->nick);
	EXPECT(c, "*** " MOTD1);
	EXPECT(c, "*** " MOTD2);
	EXPECT(c,
	       "*** your nick is %s (change it with /nick NAME; /help lists "
	       "the commands)",
	       c->nick);
	EXPECT_PREFIX(c, "*** you are now in #lobby (", got);
	char unit[16] = "";
	ck_assert_msg(sscanf(got, "*** you are now in #lobby (%u %15[^)])",
	                     &members, unit) == 2,
	              "room line: \"%s\"", got);
	ck_assert_str_eq(unit, members == 1 ? "user" : "users");
	return members;
}

static void cl_open(struct cl *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = nt_daemon_connect(&d, "chat");
	ck_assert_int_ge(c->fd, 0);
	cl_greeting(c);
}

static void cl_close(struct cl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->off = c->len = c->cap = 0;
}

/*
 * Connect n clients one after another, each seeing the others join, then
 * give each a nick (NULL: keep the guest nick), each rename seen by all.
 * Every line is checked; afterwards nothing is pending anywhere.
 */
static void group_open(struct cl *v, size_t n, const char *const *nicks)
{
	for (size_t i = 0; i < n; i++) {
		memset(&v[i], 0, sizeof(v[i]));
		v[i].fd = nt_daemon_connect(&d, "chat");
		ck_assert_uint_eq(cl_greeting(&v[i]), i + 1);
		for (size_t j = 0; j < i; j++)
			EXPECT(&v[j], "*** %s has joined #lobby", v[i].nick);
	}
	for (size_t i = 0; nicks && i < n; i++) {
		if (!nicks[i])
			continue;
		char old[40];
		snprintf(old, sizeof(old), "%s", v[i].nick);
		cl_send(&v[i], "/nick %s", nicks[i]);
		EXPECT(&v[i], "*** you are now known as %s", nicks[i]);
		snprintf(v[i].nick, sizeof(v[i].nick), "%s", nicks[i]);
		for (size_t j = 0; j < n; j++)
			if (j != i)
				EXPECT(&v[j], "*** %s is now known as %s", old,
				       nicks[i]);
	}
}

static void group_close(struct cl *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cl_close(&v[i]);
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
	struct cl v[3];
	struct cl *a = &v[0], *b = &v[1], *c = &v[2];
	char ga[40], gb[40], gc[40];

	chat_start(NULL);
	cl_open(a);
	cl_open(b);
	EXPECT(a, "*** %s has joined #lobby", b->nick);
	memset(c, 0, sizeof(*c));
	c->fd = nt_daemon_connect(&d, "chat");
	ck_assert_uint_eq(cl_greeting(c), 3);
	EXPECT(a, "*** %s has joined #lobby", c->nick);
	EXPECT(b, "*** %s has joined #lobby", c->nick);
	ck_assert_str_ne(a->nick, b->nick);
	ck_assert_str_ne(b->nick, c->nick);
	ck_assert_str_ne(a->nick, c->nick);
	snprintf(ga, sizeof(ga), "%s", a->nick);
	snprintf(gb, sizeof(gb), "%s", b->nick);
	snprintf(gc, sizeof(gc), "%s", c->nick);

	cl_send(a, "/nick alice");
	EXPECT(a, "*** you are now known as alice");
	EXPECT(b, "*** %s is now known as alice", ga);
	EXPECT(c, "*** %s is now known as alice", ga);
	cl_send(b, "/nick bob");
	EXPECT(b, "*** you are now known as bob");
	EXPECT(a, "*** %s is now known as bob", gb);
	EXPECT(c, "*** %s is now known as bob", gb);
	cl_send(c, "/nick carol");
	EXPECT(c, "*** you are now known as carol");
	EXPECT(a, "*** %s is now known as carol", gc);
	EXPECT(b, "*** %s is now known as carol", gc);
	snprintf(a->nick, sizeof(a->nick), "alice");
	snprintf(b->nick, sizeof(b->nick), "bob");
	snprintf(c->nick, sizeof(c->nick), "carol");

	/* the sender never gets its own line back */
	cl_send(a, "hello, everyone");
	EXPECT(b, "<alice> hello, everyone");
	EXPECT(c, "<alice> hello, everyone");
	EXPECT_QUIET(a);

	cl_send(b, "/me waves");
	EXPECT(a, "* bob waves");
	EXPECT(c, "* bob waves");
	EXPECT_QUIET(b);

	/* markers inside user text stay inside the <nick> line */
	cl_send(c, "*** you are now known as root");
	cl_send(c, "!!! fake error <x> * y");
	EXPECT(a, "<carol> *** you are now known as root");
	EXPECT(a, "<carol> !!! fake error <x> * y");
	EXPECT(b, "<carol> *** you are now known as root");
	EXPECT(b, "<carol> !!! fake error <x> * y");
	EXPECT_QUIET(c);

	/* a private line reaches only its target */
	cl_send(a, "/msg bob psst, bob");
	EXPECT(b, "*alice* psst, bob");
	EXPECT(a, "-> *bob* psst, bob");
	cl_send(a, "after the whisper");
	EXPECT(c, "<alice> after the whisper"); /* and not the whisper */
	EXPECT(b, "<alice> after the whisper");

	cl_send(b, "/quit see you");
	EXPECT(b, "*** bye");
	EXPECT_EOF(b);
	EXPECT(a, "*** bob has quit (see you)");
	EXPECT(c, "*** bob has quit (see you)");

	cl_send(a, "just us");
	EXPECT(c, "<alice> just us");

	/* a plain disconnect is announced too */
	cl_close(c);
	EXPECT(a, "*** carol has quit (client closed)");

	cl_send(a, "/quit");
	EXPECT(a, "*** bye");
	EXPECT_EOF(a);
	group_close(v, 3);
	stop_ok();
}
END_TEST

/* Rooms: a line said in one room never reaches another. */
START_TEST(test_room_isolation)
{
	static const char *const nicks[] = {"alice", "bob", "carol"};
	struct cl v[3];
	struct cl *a = &v[0], *b = &v[1], *c = &v[2];

	chat_start(NULL);
	group_open(v, 3, nicks);

	/* '#' optional, the name folded to lower case */
	cl_send(c, "/join #Dev");
	EXPECT(c, "*** you are now in #dev (1 user)");
	EXPECT(a, "*** carol has left #lobby");
	EXPECT(b, "*** carol has left #lobby");

	cl_send(a, "lobby only");
	EXPECT(b, "<alice> lobby only");
	/* alice follows carol; carol's next line from alice must be the
	 * join, since alice's lines reach carol in order */
	cl_send(a, "/join dev");
	EXPECT(a, "*** you are now in #dev (2 users)");
	EXPECT(b, "*** alice has left #lobby");
	EXPECT(c, "*** alice has joined #dev");

	cl_send(c, "dev only");
	EXPECT(a, "<carol> dev only");
	cl_send(c, "/join LOBBY");
	EXPECT(c, "*** you are now in #lobby (2 users)");
	EXPECT(a, "*** carol has left #dev");
	EXPECT(b, "*** carol has joined #lobby"); /* not "dev only" */

	cl_send(c, "/join lobby");
	EXPECT(c, "!!! you are already in #lobby");
	cl_send(c, "/part");
	EXPECT(c, "!!! you are already in #lobby");

	/* /part goes back to the default room; #dev empties and goes */
	cl_send(a, "/part");
	EXPECT(a, "*** you are now in #lobby (3 users)");
	EXPECT(b, "*** alice has joined #lobby");
	EXPECT(c, "*** alice has joined #lobby");
	cl_send(a, "/who dev");
	EXPECT(a, "!!! no such room: #dev");

	/* bad arguments */
	cl_send(a, "/join");
	EXPECT(a, "!!! give exactly one room; usage: /join ROOM");
	cl_send(a, "/join a b");
	EXPECT(a, "!!! give exactly one room; usage: /join ROOM");
	cl_send(a, "/part now");
	EXPECT(a, "!!! no arguments; usage: /part");
	char got[LINE_SIZE];
	cl_send(a, "/join bad.room");
	EXPECT_PREFIX(a, "!!! invalid room \"bad.room\"", got);
	cl_send(a, "/join #");
	EXPECT_PREFIX(a, "!!! invalid room \"#\"", got);
	/* 32 characters is the longest room name */
	cl_send(a, "/join %s", "abcdefghijklmnopqrstuvwxyz012345-");
	EXPECT_PREFIX(a, "!!! invalid room", got);
	cl_send(a, "/join %s", "#abcdefghijklmnopqrstuvwxyz0123_-");
	EXPECT(a, "*** you are now in #abcdefghijklmnopqrstuvwxyz0123_- "
	          "(1 user)");
	EXPECT(b, "*** alice has left #lobby");
	EXPECT(c, "*** alice has left #lobby");
	EXPECT_QUIET(a);
	EXPECT_QUIET(b);
	EXPECT_QUIET(c);
	group_close(v, 3);
	stop_ok();
}
END_TEST

/* "*** #room has N users: a b c" in any order: check count and names */
static void expect_who(int at, struct cl *c, const char *room,
                       const char *const *names, size_t n)
{
	char got[LINE_SIZE], prefix[128];

	snprintf(prefix, sizeof(prefix), "*** #%s has %zu %s: ", room, n,
	         n == 1 ? "user" : "users");
	expect_prefix(at, c, prefix, got, sizeof(got));
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
static void expect_set(int at, struct cl *c, const char *const *want, size_t n)
{
	char got[LINE_SIZE];
	bool seen[16] = {false};

	ck_assert_uint_le(n, 16);
	for (size_t k = 0; k < n; k++) {
		int rc = cl_line(c, got, sizeof(got), IO_MS);
		ck_assert_msg(rc == 0, "line %d: %s: %s", at, c->nick,
		              rc_str(rc));
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
	struct cl v[3];
	struct cl *a = &v[0], *b = &v[1], *c = &v[2];

	chat_start(NULL);
	group_open(v, 3, nicks);

	cl_send(a, "/who");
	EXPECT_WHO(a, "lobby", "alice", "bob", "carol");
	cl_send(a, "/rooms");
	EXPECT(a, "*** 1 room:");
	EXPECT(a, "*** #lobby (3 users)");

	cl_send(c, "/join dev");
	EXPECT(c, "*** you are now in #dev (1 user)");
	EXPECT(a, "*** carol has left #lobby");
	EXPECT(b, "*** carol has left #lobby");

	cl_send(a, "/who");
	EXPECT_WHO(a, "lobby", "alice", "bob");
	cl_send(a, "/who #dev");
	EXPECT(a, "*** #dev has 1 user: carol");
	cl_send(a, "/WHO DEV");
	EXPECT(a, "*** #dev has 1 user: carol");
	cl_send(c, "/who");
	EXPECT(c, "*** #dev has 1 user: carol");
	cl_send(c, "/who lobby");
	EXPECT_WHO(c, "lobby", "alice", "bob");
	cl_send(a, "/rooms");
	EXPECT(a, "*** 2 rooms:");
	EXPECT_SET(a, "*** #lobby (2 users)", "*** #dev (1 user)");

	cl_send(a, "/who nosuch");
	EXPECT(a, "!!! no such room: #nosuch");
	cl_send(a, "/who a b");
	EXPECT(a, "!!! give at most one room; usage: /who [ROOM]");
	cl_send(a, "/rooms all");
	EXPECT(a, "!!! no arguments; usage: /rooms");
	char got[LINE_SIZE];
	cl_send(a, "/who bad!room");
	EXPECT_PREFIX(a, "!!! invalid room \"bad!room\"", got);

	/* a quit leaves the counts right */
	cl_send(b, "/quit");
	EXPECT(b, "*** bye");
	EXPECT(a, "*** bob has quit");
	cl_send(a, "/rooms");
	EXPECT(a, "*** 2 rooms:");
	EXPECT_SET(a, "*** #lobby (1 user)", "*** #dev (1 user)");
	cl_send(c, "/part");
	EXPECT(c, "*** you are now in #lobby (2 users)");
	EXPECT(a, "*** carol has joined #lobby");
	cl_send(a, "/rooms");
	EXPECT(a, "*** 1 room:");
	EXPECT(a, "*** #lobby (2 users)");

	cl_send(a, "/help");
	EXPECT(a, "*** commands (text without a command goes to your room):");
	for (int i = 0; i < 10; i++)
		EXPECT_PREFIX(a, "*** /", got);
	ck_assert_str_eq(got, "*** //text            says /text");
	EXPECT_QUIET(a);
	group_close(v, 3);
	stop_ok();
}
END_TEST

/* max_rooms: a /join that would make one room too many is refused */
START_TEST(test_max_rooms)
{
	static const char *const nicks[] = {"alice", "bob", "carol"};
	struct chat_opts o = defaults;
	struct cl v[3];
	struct cl *a = &v[0], *b = &v[1], *c = &v[2];

	o.max_rooms = 2;
	chat_start(&o);
	group_open(v, 3, nicks);
	cl_send(c, "/join x");
	EXPECT(c, "*** you are now in #x (1 user)");
	EXPECT(a, "*** carol has left #lobby");
	EXPECT(b, "*** carol has left #lobby");

	cl_send(a, "/join y");
	EXPECT(a, "!!! cannot create #y: the server has its maximum of 2 "
	          "rooms");
	cl_send(a, "/who");
	EXPECT_WHO(a, "lobby", "alice", "bob");
	/* an existing room is fine */
	cl_send(a, "/join x");
	EXPECT(a, "*** you are now in #x (2 users)");
	EXPECT(b, "*** alice has left #lobby");
	EXPECT(c, "*** alice has joined #x");
	/* bob alone in #lobby: leaving it frees a room for the new one */
	cl_send(b, "/join z");
	EXPECT(b, "*** you are now in #z (1 user)");
	cl_send(b, "/rooms");
	EXPECT(b, "*** 2 rooms:");
	EXPECT(b, "*** #x (2 users)"); /* sorted by name */
	EXPECT(b, "*** #z (1 user)");
	/* two rooms exist and #lobby is gone, yet a newcomer still gets in:
	 * the default room is exempt from max_rooms */
	{
		struct cl newcomer;
		cl_open(&newcomer);
		cl_send(&newcomer, "/rooms");
		EXPECT(&newcomer, "*** 3 rooms:");
		cl_close(&newcomer);
	}
	/* and /part back to it works too */
	cl_send(c, "/part");
	{
		char got[128]; /* the newcomer may or may not be gone yet */
		EXPECT_PREFIX(c, "*** you are now in #lobby (", got);
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
	struct cl v[8];

	chat_start(NULL);
	group_open(v, 8, nicks);
	for (int k = 1; k < 8; k++) {
		cl_send(&v[0], "/msg n%d hello %d", k, k);
		EXPECT(&v[k], "*n0* hello %d", k);
		EXPECT(&v[0], "-> *n%d* hello %d", k, k);
		/* any case finds the nick; the echo shows its real spelling */
		cl_send(&v[k], "/msg N0 back %d", k);
		EXPECT(&v[0], "*n%d* back %d", k, k);
		EXPECT(&v[k], "-> *n0* back %d", k);
	}
	/* between two other workers, both ways */
	cl_send(&v[3], "/msg n6 three to six");
	EXPECT(&v[6], "*n3* three to six");
	EXPECT(&v[3], "-> *n6* three to six");
	cl_send(&v[6], "/msg n3 six to three");
	EXPECT(&v[3], "*n6* six to three");
	EXPECT(&v[6], "-> *n3* six to three");
	/* nobody else got any of it */
	for (int k = 0; k < 8; k++)
		EXPECT_QUIET(&v[k]);

	cl_send(&v[1], "/msg nobody hi");
	EXPECT(&v[1], "!!! no such nick: nobody");
	cl_send(&v[1], "/msg n2");
	EXPECT(&v[1], "!!! give a nick and a message; usage: /msg NICK TEXT");
	cl_send(&v[1], "/msg");
	EXPECT(&v[1], "!!! give a nick and a message; usage: /msg NICK TEXT");

	/* once n7 has gone, its nick finds nobody */
	cl_send(&v[7], "/quit");
	EXPECT(&v[7], "*** bye");
	EXPECT_EOF(&v[7]);
	for (int k = 0; k < 7; k++)
		EXPECT(&v[k], "*** n7 has quit");
	cl_send(&v[1], "/msg n7 still there?");
	EXPECT(&v[1], "!!! no such nick: n7");
	group_close(v, 8);
	stop_ok();
}
END_TEST

START_TEST(test_nick_rules)
{
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];
	char got[LINE_SIZE];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"Alice", NULL});

	/* taken, in any case */
	cl_send(b, "/nick alice");
	EXPECT(b, "!!! nick alice is taken");
	cl_send(b, "/nick ALICE");
	EXPECT(b, "!!! nick ALICE is taken");
	cl_send(b, "/nick %s", a->nick);
	EXPECT(b, "!!! nick Alice is taken");
	/* someone else's guest nick is reserved anyway */
	cl_send(a, "/nick %s", b->nick);
	EXPECT(a, "!!! nicks starting with \"guest\" are reserved for guests");

	/* the owner may change just the case */
	cl_send(a, "/nick ALICE");
	EXPECT(a, "*** you are now known as ALICE");
	EXPECT(b, "*** Alice is now known as ALICE");
	cl_send(a, "/nick ALICE");
	EXPECT(a, "!!! you are already ALICE");

	cl_send(b, "/nick guest1");
	EXPECT(b, "!!! nicks starting with \"guest\" are reserved for guests");
	cl_send(b, "/nick GuestStar");
	EXPECT(b, "!!! nicks starting with \"guest\" are reserved for guests");
	cl_send(b, "/nick 9lives");
	EXPECT(b, "!!! invalid nick \"9lives\": 1 to 24 letters, digits, '_' "
	          "or '-', starting with a letter");
	cl_send(b, "/nick a.b");
	EXPECT_PREFIX(b, "!!! invalid nick \"a.b\"", got);
	cl_send(b, "/nick -x");
	EXPECT_PREFIX(b, "!!! invalid nick \"-x\"", got);
	cl_send(b, "/nick abcdefghijklmnopqrstuvwxy"); /* 25 */
	EXPECT_PREFIX(b, "!!! invalid nick \"abcdefghijklmnopqrstuvwxy\"", got);
	cl_send(b, "/nick");
	EXPECT(b, "!!! give exactly one name; usage: /nick NAME");
	cl_send(b, "/nick bob robert");
	EXPECT(b, "!!! give exactly one name; usage: /nick NAME");
	EXPECT_QUIET(a); /* none of b's failures were announced */

	char gb[40];
	snprintf(gb, sizeof(gb), "%s", b->nick);
	cl_send(b, "/nick B_o-b9abcdefghijklmnopq"); /* 24 */
	EXPECT(b, "*** you are now known as B_o-b9abcdefghijklmnopq");
	EXPECT(a, "*** %s is now known as B_o-b9abcdefghijklmnopq", gb);
	cl_send(b, "/nick bob");
	EXPECT(b, "*** you are now known as bob");
	EXPECT(a, "*** B_o-b9abcdefghijklmnopq is now known as bob");

	/* a nick is free again once its owner has gone */
	cl_send(a, "/quit");
	EXPECT(a, "*** bye");
	EXPECT(b, "*** ALICE has quit");
	cl_send(b, "/nick alice");
	EXPECT(b, "*** you are now known as alice");
	group_close(v, 2);
	stop_ok();
}
END_TEST

/* /me, "//", command case, unknown commands, /ping, blank lines */
START_TEST(test_commands)
{
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});

	cl_send(a, "/ME dances");
	EXPECT(b, "* alice dances");
	cl_send(a, "/me");
	EXPECT(a, "!!! say what you do; usage: /me TEXT");
	cl_send(a, "//join x");
	EXPECT(b, "<alice> /join x");
	cl_send(a, "//");
	EXPECT(b, "<alice> /");
	cl_send(a, "///");
	EXPECT(b, "<alice> //");
	cl_send(a, "/frobnicate now");
	EXPECT(a, "!!! unknown command /frobnicate; /help lists the commands");
	cl_send(a, "/");
	EXPECT(a, "!!! unknown command /; /help lists the commands");
	cl_send(a, "/PiNg X y");
	EXPECT(a, "*** pong X y");
	cl_send(a, "/ping");
	EXPECT(a, "*** pong");
	cl_send(a, "/Msg BOB hi");
	EXPECT(b, "*alice* hi");
	EXPECT(a, "-> *bob* hi");
	/* a tab is a space, also between a command and its arguments */
	cl_send(a, "/msg\tbob\ttabbed\tline");
	EXPECT(b, "*alice* tabbed line");
	EXPECT(a, "-> *bob* tabbed line");
	/* blank lines go nowhere; the next line shows nothing came first */
	cl_send(a, "%s", "");
	cl_send(a, "%s", "     ");
	cl_send(a, "%s", "\t");
	cl_send(a, "after blanks");
	EXPECT(b, "<alice> after blanks");
	EXPECT_QUIET(a);
	EXPECT_QUIET(b);
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
	struct cl *v = calloc(FAN_CLIENTS, sizeof(*v));
	unsigned(*next)[FAN_SENDERS] = calloc(FAN_CLIENTS, sizeof(*next));
	unsigned *got = calloc(FAN_CLIENTS, sizeof(*got));
	char line[LINE_SIZE];

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
		cl_send_raw(&v[s], batch, n);
	}

	uint64_t deadline = nt_test_now_ms() + 40000;
	size_t done = 0;
	while (done < FAN_CLIENTS && nt_test_now_ms() < deadline) {
		cl_pump(v, FAN_CLIENTS, 100);
		done = 0;
		for (size_t i = 0; i < FAN_CLIENTS; i++) {
			while (cl_take(&v[i], line, sizeof(line), NULL)) {
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
		EXPECT_QUIET(&v[i]);
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
	struct cl v[2];
	struct cl *r = &v[0], *s = &v[1];
	char pad[420], line[LINE_SIZE], quit[128], zname[40];
	bool seen = false;
	int after = 0, batch;

	o.max_output = 65536;
	o.rate = 10000;
	o.burst = 100000;
	chat_start(&o);
	group_open(v, 2, (const char *const[]){"reader", "sender"});
	int z = connect_small_rcvbuf(nt_daemon_port(&d, "chat"));
	char got[LINE_SIZE];
	EXPECT_PREFIX(r, "*** guest", got);
	ck_assert_int_eq(sscanf(got, "*** %39s has joined #lobby", zname), 1);
	EXPECT(s, "*** %s has joined #lobby", zname);
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
		cl_send_raw(s, buf, n);
		for (int k = 0; k < SLOW_BATCH_LINES;) {
			int rc = cl_line(r, line, sizeof(line), IO_MS);
			ck_assert_msg(rc == 0, "reader: batch %d line %d: %s",
			              batch, k, rc_str(rc));
			if (!strcmp(line, quit)) {
				seen = true;
				continue;
			}
			char want[LINE_SIZE];
			snprintf(want, sizeof(want), "<sender> %d:%d:%s", batch,
			         k, pad);
			ck_assert_msg(!strcmp(line, want),
			              "reader: batch %d line %d: \"%.60s\"",
			              batch, k, line);
			k++;
		}
		/* the sender gets nothing but the sleeper's quit */
		cl_read_some(s);
		while (cl_take(s, line, sizeof(line), NULL))
			ck_assert_str_eq(line, quit);
		ck_assert(!s->eof && !s->err);
		if (seen)
			after++;
	}
	ck_assert_msg(seen, "no overflow after %d batches of %d lines", batch,
	              SLOW_BATCH_LINES);
	EXPECT_QUIET(r);
	EXPECT_QUIET(s);
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
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];
	char buf[20 * 16], line[LINE_SIZE];
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
	cl_send_raw(a, buf, n);
	for (int k = 0; k < 20; k++) {
		char want[32];
		snprintf(want, sizeof(want), "<alice> flood %d", k);
		int rc = cl_line(b, line, sizeof(line), 20000);
		ck_assert_msg(rc == 0, "line %d: %s", k, rc_str(rc));
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
	EXPECT_QUIET(a);
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
	struct cl v[2];
	struct cl *a = &v[0];
	uint8_t neg[80 * 3], want[80 * 3];
	char line[LINE_SIZE];

	o.rate = 1;
	o.burst = 10;
	chat_start(&o);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	for (int i = 0; i < 80; i++) {
		memcpy(neg + 3 * i, "\xff\xfd", 2);  /* IAC DO opt */
		memcpy(want + 3 * i, "\xff\xfc", 2); /* IAC WONT opt */
		neg[3 * i + 2] = want[3 * i + 2] = (uint8_t)(100 + i);
	}
	cl_send_raw(a, neg, sizeof(neg));
	expect_bytes(__LINE__, a, want, sizeof(want));
	uint64_t t0 = nt_test_now_ms();
	cl_send(a, "/ping paid");
	ck_assert_int_eq(cl_line(a, line, sizeof(line), 20000), 0);
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
static void clean_line(int at, struct cl *c, char *got, size_t size)
{
	size_t n;

	int rc = cl_line_n(c, got, size, &n, IO_MS);
	ck_assert_msg(rc == 0, "line %d: %s: %s", at, c->nick, rc_str(rc));
	const char *why = unclean((const uint8_t *)got, n);
	ck_assert_msg(!why, "line %d: %s received %s: \"%s\"", at, c->nick, why,
	              got);
	ck_assert_msg(strlen(got) == n, "line %d: %s: NUL in a line", at,
	              c->nick);
}

/* the next line must be want, and clean */
static void expect_clean(int at, struct cl *c, const char *want)
{
	char got[LINE_SIZE];

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
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[256];
		size_t n = cases[i].len;
		ck_assert_uint_lt(n + 2, sizeof(buf));
		memcpy(buf, cases[i].in, n);
		memcpy(buf + n, "\r\n", 2);
		cl_send_raw(a, buf, n + 2);
		EXPECT_CLEAN(b, cases[i].out);
	}
	/* nothing visible left: nothing sent; the marker comes next */
	cl_send(a, "\x1b[2J\x1b[H\x1b]0;x\x07\xe2\x80\xae");
	cl_send(a, "marker");
	EXPECT_CLEAN(b, "<alice> marker");

	cl_send(a, "/msg bob hi\x1b]0;x\x07!\xe2\x80\xae");
	EXPECT_CLEAN(b, "*alice* hi!");
	EXPECT_CLEAN(a, "-> *bob* hi!");
	cl_send(a, "/quit bye\x1b[2J\x9b!");
	EXPECT(a, "*** bye");
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
	struct cl v[3];
	struct cl *a = &v[0], *b = &v[1], *c = &v[2];
	char got[LINE_SIZE], want[LINE_SIZE], as[200];

	chat_start(NULL);
	group_open(v, 3, (const char *const[]){"alice", "bob", "carol"});
	memset(as, 'a', sizeof(as));

	/* a quit message goes to others, up to 160 bytes of it */
	cl_send(c, "/quit %.159s\xc3\xa9", as);
	EXPECT(c, "*** bye");
	clean_line(__LINE__, b, got, sizeof(got));
	snprintf(want, sizeof(want), "*** carol has quit (%.159s", as);
	ck_assert_msg(!strncmp(got, want, strlen(want)) &&
	                  got[strlen(got) - 1] == ')',
	              "got \"%s\"", got);

	/* the ping token is repeated up to 64 bytes */
	/* alice saw carol go too (checked on bob's side above) */
	EXPECT_PREFIX(a, "*** carol has quit (", got);
	cl_send(a, "/ping %.63s\xc3\xa9", as);
	clean_line(__LINE__, a, got, sizeof(got));
	snprintf(want, sizeof(want), "*** pong %.63s", as);
	ck_assert_msg(!strncmp(got, want, strlen(want)), "got \"%s\"", got);

	/* a rejected nick is quoted up to 64 bytes */
	cl_send(a, "/nick %.63s\xc3\xa9", as);
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
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];
	char buf[4096];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	memset(buf, 'a', 512);
	buf[512] = '\0';
	cl_send(a, "%s", buf);
	EXPECT(b, "<alice> %.512s", buf);

	memset(buf, 'b', 513);
	buf[513] = '\0';
	cl_send(a, "%s", buf);
	EXPECT(a, "!!! line too long (the limit is 512 bytes): discarded");
	cl_send(a, "after one");
	EXPECT(b, "<alice> after one"); /* and nothing of the long one */

	/* 3000 bytes in pieces, no line end for a while: one error only,
	 * and not a byte of it said */
	memset(buf, 'c', 1000);
	for (int i = 0; i < 3; i++) {
		cl_send_raw(a, buf, 1000);
		nt_sleep_ms(50);
	}
	EXPECT(a, "!!! line too long (the limit is 512 bytes): discarded");
	SEND_LIT(a, "tail of it\r\nafter two\r\n");
	EXPECT(b, "<alice> after two");
	EXPECT_QUIET(a);
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
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];
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
	cl_send_raw(a, in, sizeof(in));
	n = (size_t)snprintf(want, sizeof(want), "<%s> ", nick);
	for (unsigned i = 0; i < o.max_line; i++, n += 3)
		memcpy(want + n, "\xef\xbf\xbd", 3);
	ck_assert_uint_eq(n + 2, o.max_output);
	int rc = cl_line_n(b, got, sizeof(got), &len, IO_MS);
	ck_assert_msg(rc == 0, "bob: waiting for the long line: %s",
	              rc_str(rc));
	ck_assert_uint_eq(len, n);
	ck_assert(!memcmp(got, want, n));
	EXPECT_QUIET(b);
	EXPECT_QUIET(a);
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
	char line[LONG_MOTD_LEN + 1], got[LINE_SIZE];
	struct cl c = {.fd = -1};

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
	EXPECT_PREFIX(&c, "*** Welcome to natter, guest", got);
	for (int i = 0; i < LONG_MOTD_LINES; i++) {
		snprintf(line, sizeof(line), "%02d%0*d", i, LONG_MOTD_LEN - 2,
		         0);
		EXPECT(&c, "*** %s", line);
	}
	EXPECT_PREFIX(&c, "*** your nick is guest", got);
	EXPECT(&c, "*** you are now in #lobby (1 user)");
	EXPECT_QUIET(&c);
	cl_close(&c);
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
	static struct cl v[MANY_ROOMS];
	struct chat_opts o = defaults;
	struct cl asker;
	char room[NT_ROOM_MAX + 1], got[LINE_SIZE], prev[LINE_SIZE] = "";
	unsigned listed = 0, more = 0, total = 0;

	o.max_output = NT_MIN_MAX_OUTPUT;
	chat_start(&o);
	for (unsigned i = 0; i < MANY_ROOMS; i++) {
		cl_open(&v[i]);
		long_name(room, NT_ROOM_MAX, "r", i);
		cl_send(&v[i], "/join %s", room);
		EXPECT(&v[i], "*** you are now in #%s (1 user)", room);
	}
	cl_open(&asker);
	cl_send(&asker, "/rooms");
	EXPECT(&asker, "*** %u rooms:", MANY_ROOMS + 1);
	size_t bytes = (size_t)snprintf(got, sizeof(got), "*** %u rooms:\r\n",
	                                MANY_ROOMS + 1);
	for (;;) {
		int rc = cl_line(&asker, got, sizeof(got), IO_MS);
		ck_assert_msg(rc == 0, "/rooms: %s", rc_str(rc));
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
	EXPECT_QUIET(&asker);
	cl_close(&asker);
	group_close(v, MANY_ROOMS);
	stop_ok();
}
END_TEST

#define MANY_NICKS 120

/* the names of "*** #lobby has N users: a b c ..." in order, checked */
static unsigned who_names(struct cl *c, unsigned users, bool *cut)
{
	char got[NT_MIN_MAX_OUTPUT], prefix[64], *save = NULL, prev[64] = "";
	unsigned n = 0;

	snprintf(prefix, sizeof(prefix), "*** #lobby has %u users:", users);
	EXPECT_PREFIX(c, prefix, got);
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
	static struct cl v[MANY_NICKS];
	struct chat_opts o = defaults;
	struct cl asker;
	char nick[NT_NICK_LIMIT + 1];
	bool cut;

	o.max_output = NT_MIN_MAX_OUTPUT;
	o.max_nick = NT_NICK_LIMIT;
	chat_start(&o);
	for (unsigned i = 0; i < MANY_NICKS; i++) {
		cl_open(&v[i]);
		long_name(nick, NT_NICK_LIMIT, "n", i);
		cl_send(&v[i], "/nick %s", nick);
		EXPECT(&v[i], "*** you are now known as %s", nick);
	}
	memset(&asker, 0, sizeof(asker));
	asker.fd = nt_daemon_connect(&d, "chat");
	ck_assert_int_ge(asker.fd, 0);
	ck_assert_uint_eq(cl_greeting(&asker), MANY_NICKS + 1);
	SEND_LIT(&asker, "/who\r\n/who\r\n");
	unsigned first = who_names(&asker, MANY_NICKS + 1, &cut);
	ck_assert(cut);
	unsigned second = who_names(&asker, MANY_NICKS + 1, &cut);
	ck_assert(cut);
	ck_assert_uint_le(first, 100);
	ck_assert_uint_lt(second, first);
	EXPECT_QUIET(&asker);
	cl_close(&asker);
	group_close(v, MANY_NICKS);
	stop_ok();
}
END_TEST

/* CRLF, LF, CR NUL and a lone CR all end a line, never an extra one */
START_TEST(test_line_endings)
{
	static const char mixed[] = "one\r\ntwo\nthree\r\0four\rfive\r\n";
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	cl_send_raw(a, mixed, sizeof(mixed) - 1);
	EXPECT(b, "<alice> one");
	EXPECT(b, "<alice> two");
	EXPECT(b, "<alice> three");
	EXPECT(b, "<alice> four");
	EXPECT(b, "<alice> five");

	/* a lone CR ends the line at once, without waiting for more */
	SEND_LIT(a, "six\r");
	EXPECT(b, "<alice> six");
	/* the LF or NUL that follows later is swallowed */
	SEND_LIT(a, "\nseven\r");
	EXPECT(b, "<alice> seven");
	SEND_LIT(a, "\0eight\n");
	EXPECT(b, "<alice> eight");
	/* a command with each ending */
	SEND_LIT(a, "/ping lf\n/ping cr\r/ping crnul\r\0/ping crlf\r\n");
	EXPECT(a, "*** pong lf");
	EXPECT(a, "*** pong cr");
	EXPECT(a, "*** pong crnul");
	EXPECT(a, "*** pong crlf");
	/* byte by byte */
	for (const char *p = "nine\r\n"; *p; p++) {
		cl_send_raw(a, p, 1);
		nt_sleep_ms(5);
	}
	EXPECT(b, "<alice> nine");
	EXPECT_QUIET(a);
	EXPECT_QUIET(b);
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
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});

	/* RFC 860: DO TIMING-MARK is answered, here with WONT, every time */
	SEND_LIT(a, IAC DO TM);
	EXPECT_BYTES(a, IAC WONT TM);
	SEND_LIT(a, IAC DO TM);
	EXPECT_BYTES(a, IAC WONT TM);

	/* offers and requests refused, once per option and direction */
	SEND_LIT(a, IAC WILL "\x01" IAC DO "\x03");
	EXPECT_BYTES(a, IAC DONT "\x01" IAC WONT "\x03");
	SEND_LIT(a, IAC WILL "\x01" IAC DO "\x03");
	EXPECT_QUIET(a); /* no second refusal before the pong */
	/* WONT and DONT of what is off anyway need no answer */
	SEND_LIT(a, IAC WONT "\x05" IAC DONT "\x05");
	EXPECT_QUIET(a);

	SEND_LIT(a, IAC AYT);
	EXPECT(a, "*** yes, natter is here");

	/* commands inside a line vanish from it; IAC IAC is a 0xff byte,
	 * which is not UTF-8 */
	SEND_LIT(a, "he" IAC NOP "llo" IAC SB "\x18\x01" IAC SE " wor"
	            "ld\r\n");
	EXPECT(b, "<alice> hello world");
	SEND_LIT(a, "x" IAC IAC "y\r\n");
	EXPECT(b, "<alice> x\xef\xbf\xbdy");
	/* split anywhere */
	SEND_LIT(a, "sp" IAC);
	nt_sleep_ms(50);
	SEND_LIT(a, NOP "lit\r\n");
	EXPECT(b, "<alice> split");
	EXPECT_QUIET(a);

	/* an endless subnegotiation costs no memory, but it would dodge the
	 * line timeout and flood control: past NT_TELNET_SB_MAX it ends the
	 * session */
	{
		struct cl e;
		static char junk[4096];
		cl_open(&e);
		memset(junk, 'x', sizeof(junk));
		SEND_LIT(&e, IAC SB "\x18");
		cl_send_raw(&e, junk, sizeof(junk));
		EXPECT(&e, "!!! telnet subnegotiation too long: disconnecting");
		EXPECT_EOF(&e);
		for (int i = 0; i < 2; i++) {
			char got[128], want[128];
			EXPECT_PREFIX(&v[i], "*** guest", got);
			snprintf(want, sizeof(want),
			         "*** %s has quit (protocol error)",
			         strtok(got + 4, " "));
			EXPECT(&v[i], "%s", want);
		}
		cl_close(&e);
	}

	/* Ctrl-C: the session ends */
	SEND_LIT(a, IAC IP);
	EXPECT(a, "*** bye");
	EXPECT_EOF(a);
	EXPECT(b, "*** alice has quit (interrupted)");
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
	struct cl b;
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
	char got[LINE_SIZE], guest[40];
	EXPECT_PREFIX(&b, "*** guest", got);
	ck_assert_int_eq(sscanf(got, "*** %39s has joined #lobby", guest), 1);
	EXPECT(&b, "*** %s is now known as tel", guest);
	EXPECT(&b, "<tel> hello from telnet");
	EXPECT(&b, "*** tel has quit (interrupted)");
	int code = wait_child(pid, CHILD_MS);
	if (code != 0)
		dump_file(logf);
	ck_assert_int_eq(code, 0);
	EXPECT_QUIET(&b);
	cl_close(&b);
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
	struct cl b;

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

	char got[LINE_SIZE], guest[40];
	EXPECT_PREFIX(&b, "*** guest", got);
	ck_assert_int_eq(sscanf(got, "*** %39s has joined #lobby", guest), 1);
	EXPECT(&b, "*** %s is now known as nc", guest);
	EXPECT(&b, "<nc> hello from ncat");
	EXPECT(&b, "*** nc has quit (done)");

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
	EXPECT_QUIET(&b);
	cl_close(&b);
	stop_ok();
}
END_TEST

/* ---- ending sessions ----------------------------------------------------- */

/* idle = 1: a silent client is told, then dropped; the room is told */
START_TEST(test_idle_timeout)
{
	struct chat_opts o = defaults;
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];
	char got[LINE_SIZE];
	bool gone = false;

	o.idle = 1;
	chat_start(&o);
	cl_open(a);
	cl_open(b);
	uint64_t t0 = nt_test_now_ms();
	/* b keeps talking, so only a is idle */
	for (int i = 0; i < 40 && !gone; i++) {
		cl_send(b, "/ping %d", i);
		char want[32];
		snprintf(want, sizeof(want), "*** pong %d", i);
		for (;;) {
			int rc = cl_line(b, got, sizeof(got), IO_MS);
			ck_assert_msg(rc == 0, "b: %s", rc_str(rc));
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
	EXPECT(a, "*** %s has joined #lobby", b->nick);
	EXPECT_PREFIX(a, "*** idle for 1 second", got);
	ck_assert_msg(!strcmp(got, "*** idle for 1 second: disconnecting") ||
	                  !strcmp(got, "*** idle for 1 seconds: "
	                               "disconnecting"),
	              "a got \"%s\"", got);
	EXPECT_EOF(a);
	uint64_t took = nt_test_now_ms() - t0;
	ck_assert_msg(took >= 900, "dropped after %llu ms",
	              (unsigned long long)took);
	EXPECT_QUIET(b);
	group_close(v, 2);
	stop_ok();
}
END_TEST

/* line = 1: a line begun and never ended costs the session */
START_TEST(test_line_timeout)
{
	struct chat_opts o = defaults;
	struct cl v[2];
	struct cl *a = &v[0], *b = &v[1];
	char got[LINE_SIZE];

	o.line = 1;
	chat_start(&o);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	uint64_t t0 = nt_test_now_ms();
	SEND_LIT(a, "this line never ends");
	EXPECT_PREFIX(a, "!!! a line must end within 1 second", got);
	ck_assert_msg(!strcmp(got, "!!! a line must end within 1 second: "
	                           "disconnecting") ||
	                  !strcmp(got, "!!! a line must end within 1 "
	                               "seconds: disconnecting"),
	              "alice got \"%s\"", got);
	EXPECT_EOF(a);
	uint64_t took = nt_test_now_ms() - t0;
	ck_assert_msg(took >= 900, "dropped after %llu ms",
	              (unsigned long long)took);
	/* and not a byte of the unfinished line was said */
	EXPECT(b, "*** alice has quit (line timeout)");
	EXPECT_QUIET(b);
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
	struct cl v[3];

	chat_start(NULL);
	group_open(v, 3, (const char *const[]){"alice", "bob", NULL});
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	for (int i = 0; i < 3; i++) {
		char got[LINE_SIZE];
		bool told = false;
		for (int k = 0; k < 10 && !told; k++) {
			int rc = cl_line(&v[i], got, sizeof(got), IO_MS);
			ck_assert_msg(rc == 0, "%s: %s", v[i].nick, rc_str(rc));
			if (!strcmp(got,
			            "*** the server is shutting down; bye"))
				told = true;
			else /* others leaving as the server goes */
				ck_assert_msg(!strncmp(got, "*** ", 4) &&
				                  strstr(got, " has quit"),
				              "%s: \"%s\"", v[i].nick, got);
		}
		ck_assert_msg(told, "%s was not told", v[i].nick);
		EXPECT_EOF(&v[i]);
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
	struct cl v[2];
	static char flood[256 * 1024 + 32];

	chat_start(NULL);
	group_open(v, 2, (const char *const[]){"alice", "bob"});
	size_t n = (size_t)snprintf(flood, sizeof(flood), "/quit going\r\n");
	while (n + 64 < sizeof(flood))
		n += (size_t)snprintf(flood + n, sizeof(flood) - n,
		                      "%054zu\r\n", n);
	cl_send_raw(&v[0], flood, n);
	EXPECT(&v[0], "*** bye");
	EXPECT_EOF(&v[0]);
	ck_assert_msg(v[0].eof, "reset instead of EOF");
	EXPECT(&v[1], "*** alice has quit (going)");
	EXPECT_QUIET(&v[1]);
	/* its nick is free at once, however long the socket lingers */
	cl_send(&v[1], "/nick alice");
	EXPECT(&v[1], "*** you are now known as alice");
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
