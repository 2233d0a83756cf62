/*
 * The end-to-end suites' chat client (nt_chat.h): line helpers on a bare
 * fd, and the buffered client that checks every line in order. Server
 * lines are classified with libnatter's natter_parse_line().
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "natter.h"
#include "nt_chat.h"
#include "nt_test.h"
#include "text.h"

/* natterd's hard limit on a nick, whatever chat.max_nick says */
#define NICK_MAX 32

bool nt_chat_protocol_line(const char *s, size_t len)
{
	struct natter_line l;

	if (!nt_text_is_clean((const uint8_t *)s, len))
		return false;
	if (natter_parse_line(s, len, &l) <= NATTER_LINE_OTHER)
		return false;
	/* natterd always puts a space after the marker ("***" alone, or
	 * "<nick>" with nothing after it, is not its) */
	if (l.text == l.raw || l.text[-1] != ' ')
		return false;
	return !l.nick || nt_text_nick_valid(l.nick, l.nick_len, NICK_MAX);
}

/* ---- a bare fd ----------------------------------------------------------- */

static int vformat_line(char *line, size_t size, const char *fmt, va_list ap)
{
	int n = vsnprintf(line, size - 2, fmt, ap);

	if (n < 0 || (size_t)n >= size - 2)
		return -EMSGSIZE;
	memcpy(line + n, "\r\n", 2);
	return n + 2;
}

int nt_chat_send_fd(int fd, int timeout_ms, const char *fmt, ...)
{
	char line[NT_CHAT_LINE_SIZE];
	va_list ap;

	va_start(ap, fmt);
	int n = vformat_line(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return n;
	return nt_write_all(fd, line, (size_t)n, timeout_ms);
}

bool nt_chat_wait_line(int fd, const char *what, bool anchored, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	char line[4096];

	for (;;) {
		uint64_t now = nt_test_now_ms();
		if (now >= deadline)
			return false;
		ssize_t n =
		    nt_read_line(fd, line, sizeof(line), (int)(deadline - now));
		if (n <= 0 && n != -EMSGSIZE)
			return false;
		if (anchored ? !strncmp(line, what, strlen(what))
		             : strstr(line, what) != NULL)
			return true;
	}
}

void nt_chat_enter(int fd, const char *nick, const char *room, int timeout_ms)
{
	bool join = room && strcmp(room, "lobby");
	char want[128];

	ck_assert_msg(nt_chat_wait_line(fd, "*** you are now in #lobby", true,
	                                timeout_ms),
	              "no greeting on fd %d", fd);
	if (nick) {
		ck_assert_int_eq(
		    nt_chat_send_fd(fd, timeout_ms, "/nick %s", nick), 0);
		snprintf(want, sizeof(want), "*** you are now known as %s",
		         nick);
	}
	if (join) {
		ck_assert_int_eq(
		    nt_chat_send_fd(fd, timeout_ms, "/join #%s", room), 0);
		snprintf(want, sizeof(want), "*** you are now in #%s", room);
	}
	if (nick || join)
		ck_assert_msg(nt_chat_wait_line(fd, want, true, timeout_ms),
		              "%s never got \"%s\"", nick ? nick : "a client",
		              want);
}

void nt_chat_join(int fd, const char *room, int timeout_ms)
{
	char want[128];

	ck_assert_int_eq(nt_chat_send_fd(fd, timeout_ms, "/join #%s", room), 0);
	snprintf(want, sizeof(want), "*** you are now in #%s", room);
	ck_assert_msg(nt_chat_wait_line(fd, want, true, timeout_ms),
	              "fd %d never got into #%s", fd, room);
}

bool nt_chat_alive(int fd, const char *token, int timeout_ms)
{
	char want[128];

	snprintf(want, sizeof(want), "*** pong %s", token);
	return nt_chat_send_fd(fd, timeout_ms, "/ping %s", token) == 0 &&
	       nt_chat_wait_line(fd, want, true, timeout_ms);
}

/* ---- a buffered client --------------------------------------------------- */

void nt_chat_init(struct nt_chat *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	snprintf(c->nick, sizeof(c->nick), "fd%d", fd);
}

void nt_chat_connect(struct nt_chat *c, const struct nt_daemon *d,
                     const char *listener)
{
	int fd = nt_daemon_connect(d, listener);

	ck_assert_int_ge(fd, 0);
	nt_chat_init(c, fd);
}

void nt_chat_close(struct nt_chat *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->off = c->len = c->cap = 0;
}

/* room for 4 kB more at the end of the buffer */
static void make_room(struct nt_chat *c)
{
	if (c->cap - c->len >= 4096)
		return;
	if (c->off) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->cap - c->len >= 4096)
		return;
	size_t ncap = c->cap ? c->cap * 2 : 16384;
	ck_assert_msg(ncap <= NT_CHAT_BUF_MAX, "%s: over %d unread bytes",
	              c->nick, NT_CHAT_BUF_MAX);
	c->buf = realloc(c->buf, ncap);
	ck_assert_ptr_nonnull(c->buf);
	c->cap = ncap;
}

size_t nt_chat_read_some(struct nt_chat *c)
{
	size_t total = 0;

	while (!c->eof && !c->err) {
		if (c->off && c->off == c->len)
			c->off = c->len = 0;
		make_room(c);
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

void nt_chat_wait(struct nt_chat *c, int ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	if (ms < 0)
		ms = 0;
	if (poll(&p, 1, ms) > 0)
		nt_chat_read_some(c);
}

void nt_chat_pump(struct nt_chat *v, size_t n, int ms)
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
				nt_chat_read_some(&v[i]);
}

size_t nt_chat_pending(const struct nt_chat *c)
{
	return c->len - c->off;
}

bool nt_chat_take(struct nt_chat *c, char *out, size_t size, size_t *out_len)
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

int nt_chat_line(struct nt_chat *c, char *out, size_t size, size_t *out_len,
                 int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	size_t n;

	for (;;) {
		if (nt_chat_take(c, out, size, &n))
			break;
		if (c->eof || c->err)
			return -EPIPE;
		uint64_t now = nt_test_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		nt_chat_wait(c, (int)(deadline - now));
	}
	/* every server line is one CRLF-terminated line of text */
	ck_assert_msg(strlen(out) == n, "%s: NUL in \"%s\"", c->nick, out);
	ck_assert_msg(!strpbrk(out, "\r\n"), "%s: bare CR or LF in \"%s\"",
	              c->nick, out);
	if (out_len)
		*out_len = n;
	return 0;
}

const char *nt_chat_rc_str(int rc)
{
	return rc == -ETIMEDOUT ? "timed out" : "connection closed";
}

void nt_chat_send_raw(struct nt_chat *c, const void *data, size_t len)
{
	ck_assert_msg(nt_write_all(c->fd, data, len, NT_CHAT_IO_MS) == 0,
	              "%s: write failed", c->nick);
}

void nt_chat_send(struct nt_chat *c, const char *fmt, ...)
{
	char line[NT_CHAT_LINE_SIZE];
	va_list ap;

	va_start(ap, fmt);
	int n = vformat_line(line, sizeof(line), fmt, ap);
	va_end(ap);
	ck_assert(n >= 0);
	nt_chat_send_raw(c, line, (size_t)n);
}

void nt_chat_expect_line(int at, struct nt_chat *c, const char *fmt, ...)
{
	char want[NT_CHAT_LINE_SIZE], got[NT_CHAT_LINE_SIZE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	int rc = nt_chat_line(c, got, sizeof(got), NULL, NT_CHAT_IO_MS);
	ck_assert_msg(rc == 0, "line %d: %s: waiting for \"%s\": %s", at,
	              c->nick, want, nt_chat_rc_str(rc));
	ck_assert_msg(!strcmp(got, want),
	              "line %d: %s: expected \"%s\", got \"%s\"", at, c->nick,
	              want, got);
}

void nt_chat_expect_prefix(int at, struct nt_chat *c, const char *prefix,
                           char *got, size_t size)
{
	int rc = nt_chat_line(c, got, size, NULL, NT_CHAT_IO_MS);

	ck_assert_msg(rc == 0, "line %d: %s: waiting for \"%s...\": %s", at,
	              c->nick, prefix, nt_chat_rc_str(rc));
	ck_assert_msg(!strncmp(got, prefix, strlen(prefix)),
	              "line %d: %s: expected \"%s...\", got \"%s\"", at,
	              c->nick, prefix, got);
}

void nt_chat_expect_bytes(int at, struct nt_chat *c, const void *want, size_t n)
{
	uint64_t deadline = nt_test_now_ms() + NT_CHAT_IO_MS;

	while (c->len - c->off < n && !c->eof && !c->err &&
	       nt_test_now_ms() < deadline)
		nt_chat_wait(c, 100);
	ck_assert_msg(c->len - c->off >= n, "line %d: %s: %zu of %zu bytes", at,
	              c->nick, c->len - c->off, n);
	ck_assert_msg(!memcmp(c->buf + c->off, want, n),
	              "line %d: %s: unexpected bytes", at, c->nick);
	c->off += n;
}

void nt_chat_expect_eof(int at, struct nt_chat *c)
{
	uint64_t deadline = nt_test_now_ms() + NT_CHAT_IO_MS;

	while (!c->eof && !c->err && c->off == c->len &&
	       nt_test_now_ms() < deadline)
		nt_chat_wait(c, 100);
	ck_assert_msg(c->off == c->len, "line %d: %s: more data: \"%.*s\"", at,
	              c->nick,
	              (int)(c->len - c->off < 200 ? c->len - c->off : 200),
	              c->buf + c->off);
	ck_assert_msg(c->eof || c->err == -ECONNRESET,
	              "line %d: %s: no EOF (err %d)", at, c->nick, c->err);
}

void nt_chat_expect_quiet(int at, struct nt_chat *c)
{
	static unsigned seq;
	char want[64], got[NT_CHAT_LINE_SIZE];

	snprintf(want, sizeof(want), "*** pong quiet-%u", ++seq);
	nt_chat_send(c, "/ping quiet-%u", seq);
	int rc = nt_chat_line(c, got, sizeof(got), NULL, NT_CHAT_IO_MS);
	ck_assert_msg(rc == 0, "line %d: %s: no pong: %s", at, c->nick,
	              nt_chat_rc_str(rc));
	ck_assert_msg(!strcmp(got, want),
	              "line %d: %s: expected \"%s\", got "
	              "\"%s\"",
	              at, c->nick, want, got);
}

bool nt_chat_is_guest(const char *nick)
{
	size_t n = strlen(nick);

	if (n != 9 || strncmp(nick, "guest", 5))
		return false;
	return strspn(nick + 5, "0123456789") == 4;
}

unsigned nt_chat_greeting(struct nt_chat *c, const char *const *motd,
                          const char *room)
{
	static const char welcome[] = "*** Welcome to natter, ";
	char got[NT_CHAT_LINE_SIZE], want[128], unit[16] = "";
	unsigned members;

	NT_EXPECT_PREFIX(c, welcome, got);
	size_t n = strlen(got);
	ck_assert_msg(got[n - 1] == '!', "welcome: \"%s\"", got);
	snprintf(c->nick, sizeof(c->nick), "%.*s",
	         (int)(n - 1 - strlen(welcome)), got + strlen(welcome));
	ck_assert_msg(nt_chat_is_guest(c->nick), "not a guest nick: \"%s\"",
	              c->nick);
	for (size_t i = 0; motd && motd[i]; i++)
		NT_EXPECT(c, "*** %s", motd[i]);
	NT_EXPECT_PREFIX(c, "*** limits: max_line=", got);
	unsigned max_line = 0;
	int used = 0;
	ck_assert_msg(sscanf(got + strlen("*** limits: max_line="), "%u%n",
	                     &max_line, &used) == 1 &&
	                  max_line > 0 &&
	                  got[strlen("*** limits: max_line=") + used] == '\0',
	              "limits: \"%s\"", got);
	NT_EXPECT(c,
	          "*** your nick is %s (change it with /nick NAME; /help lists "
	          "the commands)",
	          c->nick);
	snprintf(want, sizeof(want), "*** you are now in #%s (", room);
	NT_EXPECT_PREFIX(c, want, got);
	ck_assert_msg(
	    sscanf(got + strlen(want), "%u %15[^)])", &members, unit) == 2,
	    "room line: \"%s\"", got);
	ck_assert_str_eq(unit, members == 1 ? "user" : "users");
	return members;
}
