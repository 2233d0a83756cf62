/*
 * Line framing, UTF-8 validation, control and escape stripping, nick and
 * room rules. Everything here is pure and bounded by its caller's buffers,
 * so it is tested (and fuzzed) without a socket in sight.
 */
#include <errno.h>
#include <string.h>

#include "text.h"

/* ---- line framing ------------------------------------------------------ */

void nt_line_init(struct nt_line *l, uint8_t *buf, size_t max_line)
{
	l->buf = buf;
	l->max = max_line;
	l->len = 0;
	l->after_cr = false;
	l->discarding = false;
}

bool nt_line_partial(const struct nt_line *l)
{
	return l->len > 0 || l->discarding;
}

enum nt_line_result nt_line_next(struct nt_line *l, const uint8_t *in,
                                 size_t len, size_t *used, const uint8_t **line,
                                 size_t *line_len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		/* the LF or NUL of CR LF / CR NUL, possibly a call later */
		if (l->after_cr) {
			l->after_cr = false;
			if (c == '\n' || c == '\0')
				continue;
		}
		if (c == '\r' || c == '\n') {
			l->after_cr = c == '\r';
			if (l->discarding) { /* already reported */
				l->discarding = false;
				continue;
			}
			*used = i + 1;
			*line = l->buf;
			*line_len = l->len;
			l->len = 0; /* buf stays intact until the next call */
			return NT_LINE_OK;
		}
		if (l->discarding)
			continue;
		if (l->len == l->max) {
			l->discarding = true;
			l->len = 0;
			*used = i + 1;
			return NT_LINE_TOO_LONG;
		}
		l->buf[l->len++] = c;
	}
	*used = len;
	return NT_LINE_NEED_MORE;
}

/* ---- UTF-8 ------------------------------------------------------------- */

#define CP_INVALID 0xFFFFFFFFu /* an ill-formed subpart, shown as U+FFFD */

/*
 * Decode one character from s (n >= 1 bytes) into *cp; returns the bytes it
 * took. The ranges are those of Unicode Table 3-7, checked byte by byte, so
 * an ill-formed sequence stops at the first byte that cannot continue it:
 * that prefix (its "maximal subpart", at least one byte) is one CP_INVALID
 * and decoding resumes at the offending byte.
 */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xBF;
	size_t need;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		v = c & 0x0F;
		lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong */
		hi = c == 0xED ? 0x9F : 0xBF; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		v = c & 0x07;
		lo = c == 0xF0 ? 0x90 : 0x80; /* overlong */
		hi = c == 0xF4 ? 0x8F : 0xBF; /* above U+10FFFF */
	} else {
		*cp = CP_INVALID; /* continuation, C0, C1, F5..FF */
		return 1;
	}
	for (size_t i = 1; i <= need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*cp = CP_INVALID;
			return i;
		}
		v = v << 6 | (s[i] & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*cp = v;
	return need + 1;
}

static size_t utf8_encode(uint32_t cp, uint8_t b[4])
{
	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (uint8_t)(0xC0 | cp >> 6);
		b[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (uint8_t)(0xE0 | cp >> 12);
		b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		b[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	b[0] = (uint8_t)(0xF0 | cp >> 18);
	b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
	b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
	b[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

static bool is_c1(uint32_t cp)
{
	return cp >= 0x80 && cp <= 0x9F;
}

/* explicit embeddings, overrides, isolates and marks (UAX #9) */
static bool is_bidi(uint32_t cp)
{
	return cp == 0x061C || cp == 0x200E || cp == 0x200F ||
	       (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* ---- text cleaning ----------------------------------------------------- */

#define C_BEL 0x07
#define C_CAN 0x18
#define C_SUB 0x1A
#define C_ESC 0x1B
#define C_DEL 0x7F

enum esc_state {
	E_NONE,    /* plain text */
	E_ESC,     /* after ESC */
	E_INTER,   /* ESC + intermediates, waiting for the final */
	E_CSI,     /* control sequence: parameters/intermediates to a final */
	E_STR,     /* OSC/DCS/SOS/PM/APC string, up to ST or BEL */
	E_STR_ESC, /* ESC inside a string: ST if a backslash follows */
};

struct cleaner {
	enum esc_state st;
	uint8_t *out;
	size_t len, cap;
	bool full; /* a character did not fit: emit nothing more */
};

static void emit(struct cleaner *c, uint32_t cp)
{
	uint8_t b[4];
	size_t n = utf8_encode(cp, b);

	if (c->full || c->cap - c->len < n) {
		c->full = true; /* keep the output a prefix of the full one */
		return;
	}
	memcpy(c->out + c->len, b, n);
	c->len += n;
}

/* a character outside any escape sequence */
static void plain(struct cleaner *c, uint32_t cp)
{
	switch (cp) {
	case C_ESC:
		c->st = E_ESC;
		return;
	case 0x9B: /* C1 CSI */
		c->st = E_CSI;
		return;
	case 0x90: /* C1 DCS, SOS, OSC, PM, APC */
	case 0x98:
	case 0x9D:
	case 0x9E:
	case 0x9F:
		c->st = E_STR;
		return;
	case '\t':
		emit(c, ' ');
		return;
	case CP_INVALID:
		emit(c, 0xFFFD);
		return;
	default:
		break;
	}
	if (cp < 0x20 || cp == C_DEL || is_c1(cp) || is_bidi(cp))
		return;
	emit(c, cp);
}

/* what follows ESC (or ESC + intermediates) */
static void after_esc(struct cleaner *c, uint32_t cp)
{
	if (cp >= 0x20 && cp <= 0x2F) {
		c->st = E_INTER;
	} else if (c->st == E_ESC && cp == '[') {
		c->st = E_CSI;
	} else if (c->st == E_ESC && (cp == ']' || cp == 'P' || cp == 'X' ||
	                              cp == '^' || cp == '_')) {
		c->st = E_STR;
	} else if (cp >= 0x30 && cp <= 0x7E) {
		c->st = E_NONE; /* the final byte: done */
	} else {
		c->st = E_NONE; /* not a sequence after all */
		plain(c, cp);
	}
}

static void in_csi(struct cleaner *c, uint32_t cp)
{
	if (cp >= 0x20 && cp <= 0x3F)
		return; /* parameter or intermediate */
	c->st = E_NONE;
	if (cp < 0x40 || cp > 0x7E)
		plain(c, cp); /* broken sequence: keep the character */
}

/* strings swallow everything up to their terminator */
static void in_string(struct cleaner *c, uint32_t cp)
{
	if (cp == C_BEL || cp == 0x9C)
		c->st = E_NONE;
}

/*
 * One decoded character through the escape-sequence machine. As on a VT
 * terminal, CAN and SUB abort any sequence, ESC starts a new one, other C0
 * and DEL inside a sequence are dropped without ending it, and a C1 control
 * ends a sequence and acts as itself.
 */
static void clean_cp(struct cleaner *c, uint32_t cp)
{
	if (c->st == E_NONE) {
		plain(c, cp);
		return;
	}
	if (cp == C_CAN || cp == C_SUB) {
		c->st = E_NONE;
		return;
	}
	if (c->st == E_STR) {
		if (cp == C_ESC)
			c->st = E_STR_ESC;
		else
			in_string(c, cp);
		return;
	}
	if (c->st == E_STR_ESC) {
		if (cp == '\\') {
			c->st = E_NONE;
			return;
		}
		c->st = E_ESC; /* an ESC that was not ST starts a sequence */
	}
	if (cp == C_ESC) {
		c->st = E_ESC;
	} else if (cp < 0x20 || cp == C_DEL) {
		/* dropped, sequence goes on */
	} else if (is_c1(cp)) {
		c->st = E_NONE;
		plain(c, cp);
	} else if (c->st == E_CSI) {
		in_csi(c, cp);
	} else {
		after_esc(c, cp);
	}
}

size_t nt_text_clean(const uint8_t *in, size_t len, uint8_t *out, size_t outcap)
{
	struct cleaner c = {.st = E_NONE, .out = out, .cap = outcap};
	size_t i = 0;

	while (i < len && !c.full) {
		uint32_t cp;

		i += utf8_decode(in + i, len - i, &cp);
		clean_cp(&c, cp);
	}
	return c.len;
}

static enum nt_text_flaw flaw_of(uint32_t cp)
{
	if (cp == CP_INVALID)
		return NT_TEXT_FLAW_UTF8;
	if (cp < 0x20 || cp == C_DEL || is_c1(cp))
		return NT_TEXT_FLAW_CONTROL;
	if (is_bidi(cp))
		return NT_TEXT_FLAW_BIDI;
	return NT_TEXT_FLAW_NONE;
}

enum nt_text_flaw nt_text_find_flaw(const uint8_t *s, size_t len, size_t *off,
                                    size_t *flaw_len)
{
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_decode(s + i, len - i, &cp);
		enum nt_text_flaw f = flaw_of(cp);

		if (f != NT_TEXT_FLAW_NONE) {
			*off = i;
			*flaw_len = n;
			return f;
		}
		i += n;
	}
	*off = len;
	*flaw_len = 0;
	return NT_TEXT_FLAW_NONE;
}

bool nt_text_is_clean(const uint8_t *s, size_t len)
{
	size_t off, n;

	return nt_text_find_flaw(s, len, &off, &n) == NT_TEXT_FLAW_NONE;
}

bool nt_text_is_blank(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ')
			return false;
	return true;
}

/* ---- nicks and rooms --------------------------------------------------- */

/* ASCII only, on purpose: tolower() and isalpha() follow the locale */
static char ascii_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool ascii_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool name_char(char ch)
{
	return ascii_alpha(ch) || (ch >= '0' && ch <= '9') || ch == '_' ||
	       ch == '-';
}

bool nt_text_nick_valid(const char *s, size_t len, unsigned max_nick)
{
	if (len == 0 || len > max_nick || !ascii_alpha(s[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

void nt_text_nick_fold(const char *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		out[i] = ascii_lower(in[i]);
	out[len] = '\0';
}

int nt_text_nick_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = (unsigned char)ascii_lower(*a);
		unsigned char y = (unsigned char)ascii_lower(*b);

		if (x != y || x == '\0')
			return x - y;
	}
}

int nt_text_room_normalize(const char *in, size_t len,
                           char out[NT_TEXT_ROOM_MAX + 1])
{
	if (len > 0 && in[0] == '#') {
		in++;
		len--;
	}
	if (len == 0 || len > NT_TEXT_ROOM_MAX)
		return -EINVAL;
	/* validate first: out stays untouched on failure */
	for (size_t i = 0; i < len; i++)
		if (!name_char(in[i]))
			return -EINVAL;
	for (size_t i = 0; i < len; i++)
		out[i] = ascii_lower(in[i]);
	out[len] = '\0';
	return (int)len;
}

size_t nt_text_prefix(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	/* back up over continuation bytes to the start of a character */
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

size_t nt_text_motd_lines(const char *motd, char *out)
{
	size_t size = 0;

	while (*motd) {
		size_t n = strcspn(motd, "\n");
		if (out) {
			memcpy(out + size, "*** ", 4);
			memcpy(out + size + 4, motd, n);
			memcpy(out + size + 4 + n, "\r\n", 2);
		}
		size += 4 + n + 2;
		motd += n + (motd[n] ? 1 : 0);
	}
	return size;
}
