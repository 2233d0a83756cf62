/*
 * Pure text handling for the chat service: line framing with a hard bound,
 * cleaning user text so it cannot drive anyone's terminal, and the nick and
 * room name rules. No fd, no lock, no log, no malloc.
 */
#ifndef NT_TEXT_H
#define NT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- line framing ------------------------------------------------------ */

enum nt_line_result {
	NT_LINE_NEED_MORE, /* all input consumed, no complete line */
	NT_LINE_OK,        /* a line is available (without its terminator) */
	NT_LINE_TOO_LONG,  /* a line passed max_line: reported once, the rest
	                      of it is then discarded up to its end */
};

/*
 * A line ends at CR LF, LF, CR NUL or a lone CR. After a CR the next byte is
 * swallowed if it is LF or NUL, even when it comes in a later call, so a
 * split CR|LF never yields an extra empty line. NUL elsewhere is data.
 * Only max_line bytes are ever held, in the caller's buffer.
 */
struct nt_line {
	uint8_t *buf;    /* caller's, at least max bytes */
	size_t max;      /* max_line */
	size_t len;      /* bytes of the current line held in buf */
	bool after_cr;   /* last byte ended a line with CR */
	bool discarding; /* inside a line already reported too long */
};

/* buf must hold max_line bytes (max_line may be 0: only empty lines fit) */
void nt_line_init(struct nt_line *l, uint8_t *buf, size_t max_line);

/*
 * Consume input up to the first line end or overflow: *used is how much of
 * in was consumed; call again with the rest. On NT_LINE_OK *line and *line_len
 * point into the line buffer, valid until the next call; otherwise they are
 * untouched. A line of exactly max_line bytes is OK; one more byte before
 * the line end gives NT_LINE_TOO_LONG, once for that line, even if no line
 * end ever arrives. Feeding whole or in any pieces gives the same lines.
 */
enum nt_line_result nt_line_next(struct nt_line *l, const uint8_t *in,
                                 size_t len, size_t *used, const uint8_t **line,
                                 size_t *line_len);

/*
 * True while in the middle of a line (bytes held, or discarding an over-long
 * one): what the incomplete-line deadline should watch. When false, no byte
 * of buf is needed and the caller may swap buf (l->buf) for another.
 */
bool nt_line_partial(const struct nt_line *l);

/* ---- text cleaning ----------------------------------------------------- */

/* output room that nt_text_clean() never exceeds: every byte -> U+FFFD */
#define NT_TEXT_CLEAN_MAX(len) ((len)*3)

/*
 * The longest line a room hears for one input line of max_line bytes:
 * "<nick> TEXT" or "* nick TEXT" put NT_TEXT_SAY_EXTRA bytes (CRLF
 * included) around a nick of up to max_nick bytes and the cleaned text.
 * Any other line the chat service sends is shorter, is cut to what the
 * queue has room for (/who, /rooms), or is bounded by the config (the
 * greeting, NT_TEXT_GREETING_MAX()), so a client's output bound
 * (limits.max_output) must hold at least this.
 */
#define NT_TEXT_SAY_EXTRA 5
#define NT_TEXT_SAY_MAX(max_line, max_nick)                                    \
	((size_t)(max_nick) + NT_TEXT_SAY_EXTRA +                              \
	 NT_TEXT_CLEAN_MAX((size_t)(max_line)))

/*
 * Turn one line of untrusted bytes into text safe to show on a terminal:
 *  - valid UTF-8 out; each maximal subpart of an ill-formed sequence
 *    (overlong, surrogate, > U+10FFFF, truncated, stray continuation,
 *    C0/C1/F5..FF) becomes one U+FFFD (Unicode ch. 3 "best practice");
 *  - TAB becomes a space; other C0, DEL, C1 (U+0080..U+009F) are removed;
 *  - escape sequences are removed whole: ESC [ ... final 0x40-0x7E (CSI);
 *    ESC ] / P / X / ^ / _ ... up to ST (ESC \ or U+009C) or BEL (OSC, DCS,
 *    SOS, PM, APC); ESC, optional intermediates 0x20-0x2F, one final
 *    0x30-0x7E. The UTF-8 encoded C1 introducers U+009B (CSI), U+009D
 *    (OSC), U+0090/98/9E/9F start the same sequences; a raw 0x9B byte is
 *    invalid UTF-8 and becomes U+FFFD. CAN/SUB abort a sequence, ESC starts
 *    a new one, a non-ASCII character ends a CSI or ESC sequence and is
 *    kept; an unterminated sequence is removed to the end of the input;
 *  - bidi controls U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069
 *    are removed.
 * Whatever goes out has no ESC, C0 or C1 in it, so no sequence can start on
 * the reader's terminal. Stateless: call it once per whole line. Returns
 * the output length; 0 means nothing visible was left (see also
 * nt_text_is_blank()). out must not overlap in; with outcap below
 * NT_TEXT_CLEAN_MAX(len) the output may be cut, always at a character
 * boundary.
 */
size_t nt_text_clean(const uint8_t *in, size_t len, uint8_t *out,
                     size_t outcap);

/*
 * What nt_text_clean() guarantees, as a check for tests and fuzzers: valid
 * UTF-8 with no byte below 0x20 (so no ESC, no TAB), no DEL, no C1 and no
 * bidi control.
 */
bool nt_text_is_clean(const uint8_t *s, size_t len);

enum nt_text_flaw {
	NT_TEXT_FLAW_NONE,
	NT_TEXT_FLAW_UTF8,    /* an ill-formed sequence (a maximal subpart) */
	NT_TEXT_FLAW_CONTROL, /* C0 (TAB and ESC included), DEL or C1 */
	NT_TEXT_FLAW_BIDI,    /* a bidi control */
};

/*
 * The first thing in s that nt_text_is_clean() refuses, for text that must
 * be clean as it is rather than cleaned (the configured MOTD): its offset
 * in *off and its length in bytes in *flaw_len. NT_TEXT_FLAW_NONE leaves
 * *off = len and *flaw_len = 0.
 */
enum nt_text_flaw nt_text_find_flaw(const uint8_t *s, size_t len, size_t *off,
                                    size_t *flaw_len);

/*
 * The longest prefix of s (at most max bytes) that does not split a UTF-8
 * character: for quoting user text in a bounded reply. s is clean text.
 */
size_t nt_text_prefix(const char *s, size_t len, size_t max);

/* true if s is empty or all spaces: a line not worth sending to anyone */
bool nt_text_is_blank(const uint8_t *s, size_t len);

/* ---- nicks and rooms --------------------------------------------------- */

#define NT_TEXT_ROOM_MAX 32 /* room name length, as NT_ROOM_MAX */

/* ---- the greeting ------------------------------------------------------ */

/*
 * The MOTD as a chat session sees it: each of its lines ("\n" between
 * them; nothing after a last "\n") as "*** LINE" CRLF. Written to out
 * unless out is NULL (out holds the returned size then; no NUL is added);
 * returns its size in bytes either way, so that what is measured is what
 * is sent.
 */
size_t nt_text_motd_lines(const char *motd, char *out);

/*
 * The largest greeting a new chat session gets, for MOTD lines of
 * motd_size bytes (nt_text_motd_lines()): the welcome and the nick hint,
 * each with a nick of up to max_nick bytes, the limits notice with the
 * widest max_line (10 digits), the MOTD, and the room line
 * with a room name of up to NT_TEXT_ROOM_MAX bytes and the widest count
 * ("4294967295 users"). NT_TEXT_GREETING_EXTRA is every other byte, CRLFs
 * included; chat.c ties its formats to it. The greeting goes out as one
 * send on a fresh queue, so limits.max_output must hold at least this
 * (config.c); the notice of a new MOTD after a reload is shorter.
 */
#define NT_TEXT_GREETING_EXTRA 173
#define NT_TEXT_GREETING_MAX(motd_size, max_nick)                              \
	((size_t)(motd_size) + 2 * (size_t)(max_nick) + NT_TEXT_ROOM_MAX +     \
	 NT_TEXT_GREETING_EXTRA)

/* 1..max_nick of [A-Za-z0-9_-], starting with a letter */
bool nt_text_nick_valid(const char *s, size_t len, unsigned max_nick);

/*
 * Nicks are unique without regard to ASCII case: fold gives the key (len
 * bytes plus a NUL into out, which holds len + 1), cmp orders two
 * NUL-terminated nicks like strcasecmp() but never depends on the locale.
 */
void nt_text_nick_fold(const char *in, size_t len, char *out);
int nt_text_nick_cmp(const char *a, const char *b);

/*
 * An optional leading '#' is dropped and the rest lowercased; it must then
 * be 1..NT_TEXT_ROOM_MAX of [a-z0-9_-]. Returns the length, with the name
 * and a NUL in out, or -EINVAL with out untouched.
 */
int nt_text_room_normalize(const char *in, size_t len,
                           char out[NT_TEXT_ROOM_MAX + 1]);

#endif
