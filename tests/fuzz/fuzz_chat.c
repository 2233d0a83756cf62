/*
 * The chat service's input path without a socket: telnet filter, line
 * framing, cleaning and nt_chat_parse(), as chat.c chains them. Byte 0
 * picks chunk sizes, byte 1 max_line (64..319), the rest is what a client
 * sends. Properties: whole and chunked give the same parsed lines; no line
 * exceeds max_line; cleaned text is clean; every parse result points inside
 * its line and splits it the way chat.h says.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "fuzz.h"
#include "telnet.h"
#include "text.h"

static const char *const known[] = {"nick", "join", "part", "rooms", "who",
                                    "msg",  "me",   "ping", "help",  "quit"};

static bool is_known(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == len &&
		    !strncasecmp(known[i], name, len))
			return true;
	return false;
}

static bool inside(const char *line, size_t len, const char *p, size_t n)
{
	return p >= line && n <= len && (size_t)(p - line) <= len - n;
}

static void check_parse(const char *s, size_t len, const struct nt_chat_line *l)
{
	FUZZ_CHECK(inside(s, len, l->text, l->text_len), "text outside");
	if (l->cmd == NT_CHAT_SAY) {
		bool slashes = len >= 2 && s[0] == '/' && s[1] == '/';
		FUZZ_CHECK(len == 0 || s[0] != '/' || slashes,
		           "a command taken for text");
		FUZZ_CHECK(l->text == s + slashes &&
		               l->text_len == len - slashes,
		           "text is not the line (less one '/')");
		FUZZ_CHECK(!l->name && !l->arg && !l->rest,
		           "text with command parts");
		return;
	}
	FUZZ_CHECK(len >= 1 && s[0] == '/' && (len == 1 || s[1] != '/'),
	           "text taken for a command");
	FUZZ_CHECK(l->name == s + 1 && inside(s, len, l->name, l->name_len) &&
	               !memchr(l->name, ' ', l->name_len) &&
	               (1 + l->name_len == len || s[1 + l->name_len] == ' '),
	           "the command word is not the first word");
	FUZZ_CHECK(
	    (l->cmd == NT_CHAT_UNKNOWN) == !is_known(l->name, l->name_len),
	    "command %d for \"%.*s\"", (int)l->cmd, (int)l->name_len, l->name);
	FUZZ_CHECK(l->cmd == NT_CHAT_UNKNOWN || nt_chat_usage(l->cmd),
	           "no usage for command %d", (int)l->cmd);
	FUZZ_CHECK(inside(s, len, l->arg, l->arg_len) &&
	               inside(s, len, l->rest, l->rest_len),
	           "arg or rest outside");
	FUZZ_CHECK(l->text == s + len - l->text_len &&
	               (l->text_len == 0 || l->text[0] != ' '),
	           "text is not what follows the command word");
	FUZZ_CHECK(l->arg == l->text && !memchr(l->arg, ' ', l->arg_len) &&
	               (l->arg_len == l->text_len || l->arg[l->arg_len] == ' '),
	           "arg is not the first word of text");
	FUZZ_CHECK(l->rest == s + len - l->rest_len &&
	               l->rest >= l->arg + l->arg_len &&
	               (l->rest_len == 0 || l->rest[0] != ' '),
	           "rest is not what follows arg");
	FUZZ_CHECK((l->arg_len == 0) == (l->text_len == 0),
	           "arg %zu bytes of text %zu", l->arg_len, l->text_len);
}

struct session {
	struct nt_telnet tn;
	struct nt_line line;
	uint8_t *linebuf, *clean;
	size_t max_line;
	struct fuzz_log log;      /* lines as parsed, overflows */
	struct fuzz_log refusals; /* telnet replies but timing-mark answers */
	unsigned events, tm;
};

static void on_line(struct session *s, const uint8_t *line, size_t len)
{
	struct nt_chat_line l;

	FUZZ_CHECK(len <= s->max_line, "a %zu byte line, max_line %zu", len,
	           s->max_line);
	size_t n =
	    nt_text_clean(line, len, s->clean, NT_TEXT_CLEAN_MAX(s->max_line));
	FUZZ_CHECK(nt_text_is_clean(s->clean, n), "cleaned line not clean");
	if (nt_text_is_blank(s->clean, n))
		return;
	nt_chat_parse((const char *)s->clean, n, &l);
	check_parse((const char *)s->clean, n, &l);

	/* what the service would act on, in offsets, for the comparison */
	uint32_t rec[8] = {
	    (uint32_t)l.cmd,      (uint32_t)n,
	    (uint32_t)l.text_len, (uint32_t)(l.text - (const char *)s->clean),
	    (uint32_t)l.arg_len,  (uint32_t)l.rest_len,
	    (uint32_t)l.name_len, 0,
	};
	fuzz_log_put(&s->log, rec, sizeof(rec));
	fuzz_log_put(&s->log, s->clean, n);
}

static void feed(struct session *s, const uint8_t *in, size_t len)
{
	struct nt_telnet_out out;
	uint8_t *data = malloc(len ? len : 1);

	if (!data)
		abort();
	nt_telnet_out_init(&out);
	size_t n = nt_telnet_feed(&s->tn, in, len, data, &out);
	/* the service answers after each read; answers to DO TIMING-MARK
	 * are capped per read, so only their number is compared */
	for (size_t i = 0; i + 3 <= out.len; i += 3) {
		if (out.buf[i + 1] == NT_TELNET_WONT &&
		    out.buf[i + 2] == NT_TELNET_OPT_TIMING_MARK)
			s->tm++;
		else
			fuzz_log_put(&s->refusals, out.buf + i, 3);
	}
	s->events |= out.events;
	for (size_t pos = 0; pos < n;) {
		const uint8_t *line;
		size_t used, line_len;
		enum nt_line_result r = nt_line_next(
		    &s->line, data + pos, n - pos, &used, &line, &line_len);
		pos += used;
		if (r == NT_LINE_OK)
			on_line(s, line, line_len);
		else if (r == NT_LINE_TOO_LONG)
			fuzz_log_put(&s->log, "TOO LONG", 8);
	}
	free(data);
}

static void session_init(struct session *s, size_t max_line)
{
	memset(s, 0, sizeof(*s));
	s->max_line = max_line;
	s->linebuf = malloc(max_line);
	s->clean = malloc(NT_TEXT_CLEAN_MAX(max_line));
	if (!s->linebuf || !s->clean)
		abort();
	nt_telnet_init(&s->tn);
	nt_line_init(&s->line, s->linebuf, max_line);
}

static void session_free(struct session *s)
{
	free(s->linebuf);
	free(s->clean);
	fuzz_log_free(&s->log);
	fuzz_log_free(&s->refusals);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunker k;
	struct session whole, chunked;

	if (size < 2)
		return 0;
	fuzz_chunker_init(&k, data[0]);
	size_t max_line = 64 + (size_t)data[1];
	data += 2;
	size -= 2;

	session_init(&whole, max_line);
	session_init(&chunked, max_line);
	feed(&whole, data, size);
	for (size_t off = 0, n; off < size; off += n) {
		n = fuzz_chunk(&k, size - off);
		feed(&chunked, data + off, n);
	}
	FUZZ_CHECK(fuzz_log_same(&whole.log, &chunked.log),
	           "whole and chunked input gave different lines");
	FUZZ_CHECK(fuzz_log_same(&whole.refusals, &chunked.refusals) &&
	               whole.events == chunked.events,
	           "whole and chunked input gave different telnet answers");
	FUZZ_CHECK(whole.tm <= chunked.tm && whole.tm <= NT_TELNET_TM_MAX,
	           "%u timing-mark answers whole, %u chunked", whole.tm,
	           chunked.tm);
	session_free(&whole);
	session_free(&chunked);
	return 0;
}
