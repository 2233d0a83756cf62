/*
 * natter_parse_line(): a server line classified by its marker
 * (natter-protocol(7)). Pure and strict: a marker with a malformed nick
 * or a missing space is not trusted and the line is NATTER_LINE_OTHER.
 */
#include <string.h>

#include "natter-int.h"

static bool nick_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool nick_ok(const char *s, size_t len)
{
	if (!len || len > NATTER__NICK_MAX ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!nick_char(s[i]))
			return false;
	return true;
}

/* a fixed marker, then a space or the end of the line */
static bool marker(const char *s, size_t len, const char *m, size_t *text)
{
	size_t n = strlen(m);

	if (len < n || memcmp(s, m, n))
		return false;
	if (len == n) {
		*text = n;
		return true;
	}
	if (s[n] != ' ')
		return false;
	*text = n + 1;
	return true;
}

/*
 * At s (len bytes): a nick ended by the byte close, then a space and the
 * text or the end of the line. Sets nick/text as offsets from s.
 */
static bool nick_then(const char *s, size_t len, char close, size_t *nick_len,
                      size_t *text)
{
	size_t i = 0;

	while (i < len && i <= NATTER__NICK_MAX && s[i] != close)
		i++;
	if (i >= len || !nick_ok(s, i))
		return false;
	*nick_len = i;
	if (i + 1 == len) {
		*text = len;
		return true;
	}
	if (s[i + 1] != ' ')
		return false;
	*text = i + 2;
	return true;
}

/* At s: a nick, then a space and the text, or the end of the line. */
static bool nick_text(const char *s, size_t len, size_t *nick_len, size_t *text)
{
	size_t i = 0;

	while (i < len && i <= NATTER__NICK_MAX && s[i] != ' ')
		i++;
	if (!nick_ok(s, i))
		return false;
	*nick_len = i;
	*text = i < len ? i + 1 : len;
	return true;
}

static int set(struct natter_line *out, enum natter_line_type type,
               const char *line, size_t len, size_t nick_off, size_t nick_len,
               size_t text_off)
{
	out->type = type;
	out->nick = nick_len ? line + nick_off : NULL;
	out->nick_len = nick_len;
	out->text = line + text_off;
	out->text_len = len - text_off;
	return (int)type;
}

int natter_parse_line(const char *line, size_t len, struct natter_line *out)
{
	size_t t, nl;

	if (!out || !line)
		return NATTER_EINVAL;
	memset(out, 0, sizeof(*out));
	out->raw = line;
	out->raw_len = len;

	if (marker(line, len, "***", &t))
		return set(out, NATTER_LINE_NOTICE, line, len, 0, 0, t);
	if (marker(line, len, "!!!", &t))
		return set(out, NATTER_LINE_ERROR, line, len, 0, 0, t);
	if (len > 4 && !memcmp(line, "-> *", 4) &&
	    nick_then(line + 4, len - 4, '*', &nl, &t))
		return set(out, NATTER_LINE_PRIVATE_SENT, line, len, 4, nl,
		           4 + t);
	if (len > 2 && !memcmp(line, "* ", 2) &&
	    nick_text(line + 2, len - 2, &nl, &t))
		return set(out, NATTER_LINE_ACTION, line, len, 2, nl, 2 + t);
	if (len > 1 && line[0] == '*' &&
	    nick_then(line + 1, len - 1, '*', &nl, &t))
		return set(out, NATTER_LINE_PRIVATE, line, len, 1, nl, 1 + t);
	if (len > 1 && line[0] == '<' &&
	    nick_then(line + 1, len - 1, '>', &nl, &t))
		return set(out, NATTER_LINE_MESSAGE, line, len, 1, nl, 1 + t);
	return set(out, NATTER_LINE_OTHER, line, len, 0, 0, 0);
}
