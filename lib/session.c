/*
 * The chat session as the server confirms it (nick, room), what is to be
 * restored after a reconnect, and the ping tokens. Pure: it reads parsed
 * lines and says what they meant; client.c does the sending.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "natter-int.h"

static bool alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool name_char(char c)
{
	return alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool natter__nick_valid(const char *s)
{
	size_t len = strlen(s);

	if (!len || len > NATTER__NICK_MAX || !alpha(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

int natter__room_norm(const char *s, char *out)
{
	if (*s == '#')
		s++;
	size_t len = strlen(s);
	if (!len || len > NATTER__ROOM_MAX)
		return NATTER_EINVAL;
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i]))
			return NATTER_EINVAL;
	/* natterd folds room names to lower case */
	for (size_t i = 0; i < len; i++)
		out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
	out[len] = '\0';
	return 0;
}

void natter__session_init(struct natter__session *s, bool echo,
                          const char *nick, const char *room, uint64_t salt)
{
	memset(s, 0, sizeof(*s));
	s->echo = echo;
	s->token_salt = salt;
	if (nick)
		snprintf(s->want_nick, sizeof(s->want_nick), "%s", nick);
	if (room)
		natter__room_norm(room, s->want_room);
}

void natter__session_reset(struct natter__session *s)
{
	s->nick[0] = s->room[0] = s->taken[0] = s->token[0] = '\0';
	s->max_line = 0;
}

size_t natter__session_ping(struct natter__session *s, char *buf, size_t size)
{
	snprintf(s->token, sizeof(s->token), "natter-%016" PRIx64 "-%" PRIu64,
	         s->token_salt, ++s->token_seq);
	int n = snprintf(buf, size, "/ping %s", s->token);
	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* text starts with prefix: the rest, else NULL */
static const char *after(const char *text, size_t len, const char *prefix,
                         size_t *rest_len)
{
	size_t n = strlen(prefix);

	if (len < n || memcmp(text, prefix, n))
		return NULL;
	*rest_len = len - n;
	return text + n;
}

/* copy a name of the server's into dst if it is one (else leave dst) */
static bool take_name(char *dst, size_t size, const char *src, size_t len)
{
	if (!len || len >= size)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(src[i]))
			return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

static bool is_pong(struct natter__session *s, const struct natter_line *l)
{
	size_t tlen = strlen(s->token), n;
	const char *rest;

	if (!tlen)
		return false;
	if (s->echo)
		rest = l->type == NATTER_LINE_OTHER
		           ? after(l->raw, l->raw_len, "/ping ", &n)
		           : NULL;
	else
		rest = l->type == NATTER_LINE_NOTICE
		           ? after(l->text, l->text_len, "pong ", &n)
		           : NULL;
	if (!rest || n != tlen || memcmp(rest, s->token, n))
		return false;
	s->token[0] = '\0';
	return true;
}

/*
 * "KEY=VALUE ..." after "limits: ": max_line if it is there and sane
 * (1..10^9), keys this library does not know skipped; false without it
 */
static bool limits(const char *p, size_t n, size_t *max_line)
{
	static const char key[] = "max_line=";
	bool found = false;

	while (n) {
		const char *sp = memchr(p, ' ', n);
		size_t w = sp ? (size_t)(sp - p) : n, v = 0,
		       k = sizeof(key) - 1;
		if (w > k && w - k <= 10 && !memcmp(p, key, k)) {
			size_t i = k;
			while (i < w && p[i] >= '0' && p[i] <= '9')
				v = v * 10 + (size_t)(p[i++] - '0');
			if (i == w && v > 0 && v <= 1000000000) {
				*max_line = v;
				found = true;
			}
		}
		p += w;
		n -= w;
		if (n) {
			p++;
			n--;
		}
	}
	return found;
}

enum natter__sev natter__session_line(struct natter__session *s,
                                      const struct natter_line *l,
                                      bool established)
{
	const char *p;
	size_t n;

	if (is_pong(s, l))
		return NATTER__SEV_PONG;
	if (s->echo)
		return NATTER__SEV_NONE;
	if (l->type == NATTER_LINE_NOTICE) {
		if ((p = after(l->text, l->text_len, "you are now known as ",
		               &n)) &&
		    take_name(s->nick, sizeof(s->nick), p, n)) {
			if (established)
				memcpy(s->want_nick, s->nick, sizeof(s->nick));
			return NATTER__SEV_NICK;
		}
		if ((p = after(l->text, l->text_len, "your nick is ", &n))) {
			const char *sp = memchr(p, ' ', n);
			take_name(s->nick, sizeof(s->nick), p,
			          sp ? (size_t)(sp - p) : n);
			return NATTER__SEV_NONE;
		}
		if ((p = after(l->text, l->text_len, "limits: ", &n)) &&
		    limits(p, n, &s->max_line))
			return NATTER__SEV_LIMITS;
		if ((p = after(l->text, l->text_len, "you are now in #", &n))) {
			const char *sp = memchr(p, ' ', n);
			if (take_name(s->room, sizeof(s->room), p,
			              sp ? (size_t)(sp - p) : n)) {
				if (established)
					memcpy(s->want_room, s->room,
					       sizeof(s->room));
				return NATTER__SEV_ROOM;
			}
		}
		return NATTER__SEV_NONE;
	}
	if (l->type == NATTER_LINE_ERROR) {
		if ((p = after(l->text, l->text_len, "nick ", &n)) && n > 9 &&
		    !memcmp(p + n - 9, " is taken", 9) &&
		    take_name(s->taken, sizeof(s->taken), p, n - 9))
			return NATTER__SEV_NICK_TAKEN;
		if (!established &&
		    (p = after(l->text, l->text_len, "you are already ", &n))) {
			size_t m;
			const char *r = after(p, n, "in #", &m);
			if (r)
				take_name(s->room, sizeof(s->room), r, m);
			return NATTER__SEV_ALREADY;
		}
	}
	return NATTER__SEV_NONE;
}
