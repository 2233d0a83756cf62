/*
 * natter_parse_line(), two ways. Byte 0 picks the mode.
 *  - Any line (mode even): the result is the return value; raw is the
 *    line; text is a tail of the line; a nick, when there is one, is a
 *    valid nick inside the line right after its marker; OTHER has no nick
 *    and all of the line as text.
 *  - A line as natterd writes it (mode odd): the rest of the input is
 *    split into a nick and a text, made what natterd would make of them
 *    (nt_text_clean(), a valid nick), and put behind each marker of
 *    natter-protocol(7); libnatter must read back that marker's type, the
 *    nick and the text, whatever the text says ("*** fake" included).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "natter.h"
#include "text.h"

static bool inside(const char *line, size_t len, const char *p, size_t n)
{
	return p >= line && n <= len && (size_t)(p - line) <= len - n;
}

static void check_any(const char *line, size_t len)
{
	struct natter_line l;
	int t = natter_parse_line(line, len, &l);

	FUZZ_CHECK(t >= NATTER_LINE_OTHER && t <= NATTER_LINE_ERROR &&
	               t == (int)l.type,
	           "type %d, returned %d", (int)l.type, t);
	FUZZ_CHECK(l.raw == line && l.raw_len == len, "raw is not the line");
	FUZZ_CHECK(inside(line, len, l.text, l.text_len) &&
	               l.text + l.text_len == line + len,
	           "text is not a tail of the line");
	if (l.type == NATTER_LINE_OTHER) {
		FUZZ_CHECK(!l.nick && l.text == line, "OTHER with parts");
		return;
	}
	if (!l.nick)
		return;
	FUZZ_CHECK(inside(line, len, l.nick, l.nick_len) &&
	               nt_text_nick_valid(l.nick, l.nick_len, 32),
	           "nick \"%.*s\"", (int)l.nick_len, l.nick);
	FUZZ_CHECK(l.nick < l.text, "nick after text");
}

/* nick from the input's first line, text from its rest, as natterd would */
static void check_round_trip(const uint8_t *in, size_t n)
{
	char nick[33], line[4200];
	uint8_t text[3 * 1024];
	const uint8_t *nl = memchr(in, '\n', n);
	size_t nick_len = nl ? (size_t)(nl - in) : 0;
	size_t rest = nl ? n - nick_len - 1 : n;

	if (!nick_len || nick_len > 32 ||
	    !nt_text_nick_valid((const char *)in, nick_len, 32))
		memcpy(nick, "guest0001", (nick_len = 9) + 1);
	else
		memcpy(nick, in, nick_len);
	nick[nick_len] = '\0';
	if (rest > 1024)
		rest = 1024;
	size_t tl = nt_text_clean(nl ? nl + 1 : in, rest, text, sizeof(text));
	if (nt_text_is_blank(text, tl))
		return; /* natterd sends no blank line */

	/* each form is pre NICK post TEXT (no nick for the server's lines) */
	static const struct {
		const char *pre, *post;
		enum natter_line_type type;
		bool has_nick;
	} forms[] = {
	    {"<", "> ", NATTER_LINE_MESSAGE, true},
	    {"* ", " ", NATTER_LINE_ACTION, true},
	    {"*", "* ", NATTER_LINE_PRIVATE, true},
	    {"-> *", "* ", NATTER_LINE_PRIVATE_SENT, true},
	    {"*** ", "", NATTER_LINE_NOTICE, false},
	    {"!!! ", "", NATTER_LINE_ERROR, false},
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct natter_line l;
		int len = snprintf(line, sizeof(line), "%s%s%s%.*s",
		                   forms[i].pre, forms[i].has_nick ? nick : "",
		                   forms[i].post, (int)tl, (const char *)text);
		FUZZ_CHECK(len > 0 && (size_t)len < sizeof(line), "snprintf");
		check_any(line, (size_t)len);
		natter_parse_line(line, (size_t)len, &l);
		FUZZ_CHECK(l.type == forms[i].type,
		           "\"%s\" read as type %d, not %d", line, (int)l.type,
		           (int)forms[i].type);
		FUZZ_CHECK(l.text_len == tl && !memcmp(l.text, text, tl),
		           "\"%s\": the text came back as \"%.*s\"", line,
		           (int)l.text_len, l.text);
		if (forms[i].has_nick)
			FUZZ_CHECK(l.nick && l.nick_len == nick_len &&
			               !memcmp(l.nick, nick, nick_len),
			           "\"%s\": the nick came back wrong", line);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] % 2 == 0) {
		/* exactly size - 1 bytes, not NUL-terminated */
		char *line = malloc(size - 1 ? size - 1 : 1);
		if (!line)
			abort();
		memcpy(line, data + 1, size - 1);
		check_any(line, size - 1);
		free(line);
	} else {
		check_round_trip(data + 1, size - 1);
	}
	return 0;
}
