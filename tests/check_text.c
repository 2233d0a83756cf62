/*
 * Line framing (every line end, splits, limits), text cleaning (UTF-8 edge
 * cases, escape sequences, controls, bidi, random input) and the nick and
 * room rules.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "run_suite.h"
#include "text.h"

/* ---- line framing ------------------------------------------------------ */

#define MAXLINES 64

/* every line and too-long report a feed produced, in order */
struct lines {
	struct nt_line l;
	uint8_t buf[256];
	size_t n;
	char got[MAXLINES][257]; /* "=" line, or "!" for too long */
};

static void lines_init(struct lines *ls, size_t max_line)
{
	ck_assert_uint_le(max_line, sizeof(ls->buf));
	nt_line_init(&ls->l, ls->buf, max_line);
	ls->n = 0;
}

static void lines_feed(struct lines *ls, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		const uint8_t *line = NULL;
		size_t used = 0, line_len = 0;
		enum nt_line_result r;

		r = nt_line_next(&ls->l, p, len, &used, &line, &line_len);
		ck_assert_uint_ge(used, 1);
		ck_assert_uint_le(used, len);
		p += used;
		len -= used;
		if (r == NT_LINE_NEED_MORE) {
			ck_assert_uint_eq(len, 0);
			break;
		}
		ck_assert_uint_lt(ls->n, MAXLINES);
		if (r == NT_LINE_TOO_LONG) {
			strcpy(ls->got[ls->n++], "!");
			continue;
		}
		ck_assert_int_eq(r, NT_LINE_OK);
		ck_assert_ptr_eq(line, ls->buf);
		ck_assert_uint_le(line_len, ls->l.max);
		ls->got[ls->n][0] = '=';
		memcpy(ls->got[ls->n] + 1, line, line_len);
		ls->got[ls->n][line_len + 1] = '\0';
		ls->n++;
	}
}

#define FEEDS(ls, s) lines_feed((ls), (s), sizeof(s) - 1)

/* expect exactly these results, each "=text" or "!" */
static void lines_expect(struct lines *ls, const char *const *want,
                         size_t nwant)
{
	ck_assert_uint_eq(ls->n, nwant);
	for (size_t i = 0; i < nwant; i++)
		ck_assert_str_eq(ls->got[i], want[i]);
}

#define EXPECT(ls, ...)                                                        \
	do {                                                                   \
		static const char *const w_[] = {__VA_ARGS__};                 \
		lines_expect((ls), w_, sizeof(w_) / sizeof(w_[0]));            \
	} while (0)

START_TEST(test_line_endings)
{
	struct lines ls;

	lines_init(&ls, 64);
	FEEDS(&ls, "lf\ncrlf\r\ncrnul\r\0lone\rlast\n");
	EXPECT(&ls, "=lf", "=crlf", "=crnul", "=lone", "=last");
	ck_assert(!nt_line_partial(&ls.l));
}
END_TEST

START_TEST(test_line_split_cr_lf)
{
	struct lines ls;

	lines_init(&ls, 64);
	FEEDS(&ls, "one\r");
	EXPECT(&ls, "=one");
	FEEDS(&ls, "\ntwo\r");
	FEEDS(&ls, "\0");
	FEEDS(&ls, "three\n");
	/* no empty line from the LF or NUL after a CR in an earlier feed */
	EXPECT(&ls, "=one", "=two", "=three");
}
END_TEST

START_TEST(test_line_empty_lines)
{
	struct lines ls;

	lines_init(&ls, 64);
	FEEDS(&ls, "\n\r\n\r\0\r\r\n\n");
	/* LF, CRLF, CR NUL, lone CR, CRLF, LF: six empty lines */
	EXPECT(&ls, "=", "=", "=", "=", "=", "=");
}
END_TEST

START_TEST(test_line_cr_cr_lf)
{
	struct lines ls;

	lines_init(&ls, 64);
	FEEDS(&ls, "a\r\r\nb\n");
	/* the second CR ends an empty line, its LF is swallowed */
	EXPECT(&ls, "=a", "=", "=b");
}
END_TEST

START_TEST(test_line_only_one_byte_swallowed)
{
	struct lines ls;

	lines_init(&ls, 64);
	/* CR LF LF: a line then an empty one; CR NUL NUL: the second NUL
	 * starts the next line */
	FEEDS(&ls, "a\r\n\nb\r\0\0c\n");
	ck_assert_uint_eq(ls.n, 4);
	ck_assert_str_eq(ls.got[0], "=a");
	ck_assert_str_eq(ls.got[1], "=");
	ck_assert_str_eq(ls.got[2], "=b");
	ck_assert_mem_eq(ls.got[3], "=\0c", 4);
}
END_TEST

START_TEST(test_line_nul_is_data)
{
	struct nt_line l;
	uint8_t buf[16];
	const uint8_t in[] = {'a', 0, 'b', '\n'};
	const uint8_t *line;
	size_t used, len;

	nt_line_init(&l, buf, sizeof(buf));
	ck_assert_int_eq(nt_line_next(&l, in, sizeof(in), &used, &line, &len),
	                 NT_LINE_OK);
	ck_assert_uint_eq(used, 4);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(line, "a\0b", 3);
}
END_TEST

START_TEST(test_line_exactly_max)
{
	struct lines ls;

	lines_init(&ls, 8);
	FEEDS(&ls, "12345678\n");
	EXPECT(&ls, "=12345678");
	/* also when the line end comes in a later feed */
	FEEDS(&ls, "abcdefgh");
	ck_assert(nt_line_partial(&ls.l));
	FEEDS(&ls, "\r\n");
	EXPECT(&ls, "=12345678", "=abcdefgh");
}
END_TEST

START_TEST(test_line_max_plus_one_with_end)
{
	struct lines ls;

	lines_init(&ls, 8);
	FEEDS(&ls, "123456789\nok\n");
	EXPECT(&ls, "!", "=ok");
	/* over by a lot, line end split as CR|LF */
	FEEDS(&ls, "123456789abcdefghijklmnop\r");
	FEEDS(&ls, "\nnext\n");
	EXPECT(&ls, "!", "=ok", "!", "=next");
}
END_TEST

START_TEST(test_line_max_plus_one_without_end)
{
	struct lines ls;

	lines_init(&ls, 8);
	FEEDS(&ls, "123456789");
	EXPECT(&ls, "!");
	ck_assert(nt_line_partial(&ls.l));
	FEEDS(&ls, "more and more");
	EXPECT(&ls, "!");
	ck_assert(nt_line_partial(&ls.l));
}
END_TEST

START_TEST(test_line_zero_max)
{
	struct lines ls;

	lines_init(&ls, 0);
	FEEDS(&ls, "\nx\n\r\n");
	EXPECT(&ls, "=", "!", "=");
}
END_TEST

START_TEST(test_line_ten_mib_bounded)
{
	struct nt_line l;
	uint8_t buf[100];
	size_t chunk = 64 * 1024, total = 10 * 1024 * 1024;
	uint8_t *in = malloc(chunk);
	size_t too_long = 0;
	const uint8_t *line = NULL;
	size_t used, len;

	ck_assert_ptr_nonnull(in);
	memset(in, 'x', chunk);
	nt_line_init(&l, buf, sizeof(buf));
	for (size_t off = 0; off < total; off += chunk) {
		const uint8_t *p = in;
		size_t left = chunk;

		while (left > 0) {
			enum nt_line_result r =
			    nt_line_next(&l, p, left, &used, &line, &len);

			ck_assert_int_ne(r, NT_LINE_OK);
			too_long += r == NT_LINE_TOO_LONG;
			p += used;
			left -= used;
			ck_assert_uint_le(l.len, sizeof(buf));
		}
	}
	ck_assert_uint_eq(too_long, 1);
	ck_assert(nt_line_partial(&l));
	/* the line end finally comes: nothing reported, then a good line */
	ck_assert_int_eq(
	    nt_line_next(&l, (const uint8_t *)"\nok\n", 4, &used, &line, &len),
	    NT_LINE_OK);
	ck_assert_uint_eq(used, 4);
	ck_assert_uint_eq(len, 2);
	ck_assert_mem_eq(line, "ok", 2);
	ck_assert(!nt_line_partial(&l));
	free(in);
}
END_TEST

START_TEST(test_line_outputs_untouched)
{
	struct nt_line l;
	uint8_t buf[4];
	const uint8_t *line = (const uint8_t *)"sentinel";
	size_t used, len = 12345;

	nt_line_init(&l, buf, sizeof(buf));
	ck_assert_int_eq(
	    nt_line_next(&l, (const uint8_t *)"abc", 3, &used, &line, &len),
	    NT_LINE_NEED_MORE);
	ck_assert_uint_eq(used, 3);
	ck_assert_int_eq(
	    nt_line_next(&l, (const uint8_t *)"de", 2, &used, &line, &len),
	    NT_LINE_TOO_LONG);
	ck_assert_uint_eq(used, 2); /* up to and including the 5th byte */
	ck_assert_uint_eq(len, 12345);
	ck_assert_str_eq((const char *)line, "sentinel");
}
END_TEST

/* every result of feeding in pieces of 1..maxchunk bytes (0: whole) */
static size_t frame_all(const uint8_t *in, size_t len, size_t max_line,
                        size_t maxchunk, unsigned seed, uint8_t *log,
                        size_t logcap)
{
	uint8_t buf[64];
	struct nt_line l;
	size_t off = 0, n = 0;

	ck_assert_uint_le(max_line, sizeof(buf));
	nt_line_init(&l, buf, max_line);
	srand(seed);
	while (off < len) {
		size_t chunk = maxchunk ? 1 + (size_t)rand() % maxchunk : len;
		const uint8_t *p = in + off;

		if (chunk > len - off)
			chunk = len - off;
		off += chunk;
		while (chunk > 0) {
			const uint8_t *line;
			size_t used, ll;
			enum nt_line_result r =
			    nt_line_next(&l, p, chunk, &used, &line, &ll);

			p += used;
			chunk -= used;
			if (r == NT_LINE_NEED_MORE)
				continue;
			/* log as: tag, length, bytes (no ck_assert in hot
			 * loops: each one costs a round trip to the runner) */
			if (n + 2 + max_line > logcap)
				ck_abort_msg("log overflow");
			log[n++] = (uint8_t)r;
			if (r == NT_LINE_OK) {
				log[n++] = (uint8_t)ll;
				memcpy(log + n, line, ll);
				n += ll;
			}
		}
	}
	return n;
}

START_TEST(test_line_split_random)
{
	static const uint8_t alphabet[] = {'\r', '\r', '\n', '\n', 0,
	                                   'a',  'b',  'c',  ' '};
	enum { LEN = 20000 };
	static uint8_t in[LEN], a[3 * LEN], b[3 * LEN], c[3 * LEN];

	for (unsigned seed = 1; seed <= 40; seed++) {
		size_t max_line = seed % 12;
		size_t na, nb, nc;

		srand(seed);
		for (size_t i = 0; i < LEN; i++)
			in[i] = alphabet[(size_t)rand() % sizeof(alphabet)];
		/* runs of letters so that some lines overflow */
		for (size_t i = 0; i < LEN; i += 1000)
			memset(in + i, 'z', (size_t)rand() % 20);
		na = frame_all(in, LEN, max_line, 0, seed, a, sizeof(a));
		nb = frame_all(in, LEN, max_line, 1, seed, b, sizeof(b));
		nc = frame_all(in, LEN, max_line, 29, seed, c, sizeof(c));
		ck_assert_uint_gt(na, 0);
		ck_assert_uint_eq(na, nb);
		ck_assert_mem_eq(a, b, na);
		ck_assert_uint_eq(na, nc);
		ck_assert_mem_eq(a, c, na);
	}
}
END_TEST

/* ---- text cleaning ----------------------------------------------------- */

/* clean s and compare with want; also check the result is clean */
static void check_clean(const void *s, size_t len, const void *want,
                        size_t wlen)
{
	uint8_t out[1024];
	size_t n;

	ck_assert_uint_le(NT_TEXT_CLEAN_MAX(len), sizeof(out));
	n = nt_text_clean(s, len, out, sizeof(out));
	ck_assert_uint_eq(n, wlen);
	ck_assert_mem_eq(out, want, wlen);
	ck_assert(nt_text_is_clean(out, n));
}

#define IS_CLEAN(lit) nt_text_is_clean((const uint8_t *)(lit), sizeof(lit) - 1)

#define CLEAN(in, want)                                                        \
	check_clean((in), sizeof(in) - 1, (want), sizeof(want) - 1)

/*
 * Pieces of test strings. B and X stand for "b" and "x" after a hex escape,
 * which would otherwise swallow them as hex digits.
 */
#define R       "\xef\xbf\xbd" /* U+FFFD */
#define B       "b"
#define X       "x"
#define E_ACUTE "\xc3\xa9"
#define ESC     "\x1b"
#define BEL     "\x07"
#define CAN     "\x18"
#define SUB     "\x1a"
#define ST      ESC "\\"
#define RAW_CSI "\x9b"
#define U_DCS   "\xc2\x90"
#define U_NEL   "\xc2\x85"
#define U_SOS   "\xc2\x98"
#define U_CSI   "\xc2\x9b"
#define U_ST    "\xc2\x9c"
#define U_OSC   "\xc2\x9d"
#define U_PM    "\xc2\x9e"
#define U_APC   "\xc2\x9f"
#define NEIGHBOURS                                                             \
	"\xd8\x9b\xe2\x80\x8d\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa"

START_TEST(test_clean_ascii_and_valid_utf8)
{
	CLEAN("hello, world!", "hello, world!");
	CLEAN("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
	      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
	/* first and last of each length, and NBSP right after the C1 range */
	CLEAN("\xc2\xa0\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80",
	      "\xc2\xa0\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80");
	/* U+D7FF and U+E000, either side of the surrogates */
	CLEAN("\xed\x9f\xbf\xee\x80\x80", "\xed\x9f\xbf\xee\x80\x80");
	CLEAN("", "");
}
END_TEST

START_TEST(test_clean_overlong)
{
	CLEAN("\xc0\xaf", R R); /* '/' in 2 bytes */
	CLEAN("\xc1\xbf", R R);
	CLEAN("\xe0\x80\xaf", R R R); /* in 3 */
	CLEAN("\xe0\x9f\xbf", R R R);
	CLEAN("\xf0\x80\x80\xaf", R R R R); /* in 4 */
	CLEAN("\xf0\x8f\xbf\xbf", R R R R);
	CLEAN("a\xc0\x80z", "a" R R "z"); /* overlong NUL */
}
END_TEST

START_TEST(test_clean_surrogates_and_above_max)
{
	CLEAN("\xed\xa0\x80", R R R);
	CLEAN("\xed\xbf\xbf", R R R);
	CLEAN("\xed\xa0\xbd\xed\xb8\x80", R R R R R R); /* CESU-8 pair */
	CLEAN("\xf4\x90\x80\x80", R R R R);             /* U+110000 */
	CLEAN("\xf5\x80\x80\x80", R R R R);
	CLEAN("\xf7\xbf\xbf\xbf", R R R R);
	CLEAN("\xf8\x88\x80\x80\x80", R R R R R);
	CLEAN("\xfe\xff", R R);
}
END_TEST

START_TEST(test_clean_truncated_and_stray)
{
	CLEAN("a\xe2\x82", "a" R); /* truncated at the end */
	CLEAN("\xf0\x9f\x98", R);
	CLEAN("\xf0\x9f", R);
	CLEAN("\xc3", R);
	CLEAN("a\xe2\x82z", "a" R "z"); /* cut short by ASCII */
	CLEAN("\xe2\x82\xe2\x82\xac", R "\xe2\x82\xac");
	CLEAN("\x80", R); /* stray continuations */
	CLEAN("\x80\xbf\xbf", R R R);
	CLEAN("\xc3\xa9\xa9", "\xc3\xa9" R);
	/* the example of Unicode ch. 3, "U+FFFD Substitution of Maximal
	 * Subparts": 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 */
	CLEAN("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
	      "a" R R R "b" R "c" R R "d");
}
END_TEST

START_TEST(test_clean_controls)
{
	CLEAN("a\tb", "a b");
	CLEAN("a\x01" BEL "\x08\r\n\x0b\x0c\x1f\x7f" B, "ab");
	CLEAN("a\0b", "ab");
	/* C1 as UTF-8: U+0080, NEL, U+008E, a lone ST */
	CLEAN("a\xc2\x80" U_NEL "\xc2\x8e" U_ST B, "ab");
	/* raw C1 bytes are not UTF-8 */
	CLEAN("a\x85" B, "a" R "b");
}
END_TEST

START_TEST(test_clean_csi)
{
	CLEAN("a" ESC "[31mred" ESC "[0m", "ared");
	CLEAN(ESC "[?25l" ESC "[2J" ESC "[Hx", "x");
	CLEAN(ESC "[1 qx", "x"); /* with an intermediate */
	CLEAN(ESC "[>4;2mx", "x");
	CLEAN("a" ESC "[31", "a"); /* unterminated: removed to the end */
	CLEAN("a" ESC "[", "a");
	CLEAN("a" ESC, "a");
	/* C0 inside is dropped without ending it; ESC restarts */
	CLEAN(ESC "[3\n1mx", "x");
	CLEAN(ESC "[" ESC "[31mx", "x");
	/* CAN and SUB abort it */
	CLEAN(ESC "[31" CAN "x", "x");
	CLEAN(ESC "[31" SUB "x", "x");
	/* a non-ASCII character ends it and is kept */
	CLEAN(ESC "[3" E_ACUTE "x", E_ACUTE "x");
	CLEAN(ESC "[3\xff" X, R "x");
}
END_TEST

START_TEST(test_clean_osc)
{
	CLEAN("a" ESC "]0;evil title" BEL B, "ab");
	CLEAN("a" ESC "]8;;http://x/" ST "link" ESC "]8;;" ST B, "alinkb");
	CLEAN("a" ESC "]0;title", "a"); /* unterminated */
	/* everything inside is swallowed */
	CLEAN("a" ESC "]0;t" E_ACUTE "\n" ESC "[31m" BEL B, "ab");
	/* an ESC that is not ST ends the string and starts a sequence */
	CLEAN("a" ESC "]0;t" ESC "[31mb", "ab");
	CLEAN("a" ESC "]0;t" ESC "cb", "ab");
	CLEAN("a" ESC "]0;t" CAN B, "ab"); /* CAN aborts */
	CLEAN("a" ESC "]0;t" U_ST B, "ab");
}
END_TEST

START_TEST(test_clean_dcs_sos_pm_apc)
{
	CLEAN("a" ESC "Pq#0;2;0;0;0#1~~@@" ST B, "ab");
	CLEAN("a" ESC "Xsos" ST B, "ab");
	CLEAN("a" ESC "^pm" ST B, "ab");
	CLEAN("a" ESC "_apc" ST B, "ab");
	CLEAN("a" ESC "Pnever ends", "a");
}
END_TEST

START_TEST(test_clean_other_escapes)
{
	CLEAN("a" ESC "cb", "ab"); /* RIS */
	CLEAN("a" ESC "7b" ESC "8", "ab");
	CLEAN("a" ESC "(Bb", "ab");     /* designate G0: an intermediate */
	CLEAN("a" ESC "#8b", "ab");     /* DECALN */
	CLEAN("a" ESC " $ ( Bb", "ab"); /* many intermediates */
	CLEAN("a" ESC ESC "cb", "ab");
	CLEAN("a" ESC E_ACUTE, "a" E_ACUTE); /* not a sequence after all */
}
END_TEST

START_TEST(test_clean_c1_introducers)
{
	CLEAN("a" U_CSI "31mb", "ab");
	CLEAN("a" U_OSC "0;t" BEL B, "ab");
	CLEAN("a" U_OSC "0;t" U_ST B, "ab");
	CLEAN("a" U_DCS "q" ST B, "ab");
	CLEAN("a" U_SOS "x" U_ST B, "ab");
	CLEAN("a" U_PM "x" U_ST B, "ab");
	CLEAN("a" U_APC "x" U_ST B, "ab");
	/* a C1 control ends a CSI and acts as itself */
	CLEAN(ESC "[3" U_CSI "1mx", "x");
	CLEAN(ESC "[3" U_NEL "x", "x");
	/* raw 0x9B is invalid UTF-8, not a CSI */
	CLEAN("a" RAW_CSI "31mb", "a" R "31mb");
}
END_TEST

START_TEST(test_clean_bidi)
{
	CLEAN("a\xd8\x9c" B, "ab");                 /* U+061C */
	CLEAN("a\xe2\x80\x8e\xe2\x80\x8f" B, "ab"); /* U+200E, U+200F */
	/* U+202A..U+202E, U+2066..U+2069 */
	CLEAN("a\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae" B,
	      "ab");
	CLEAN("a\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9" B, "ab");
	/* neighbours stay: U+061B, U+200D, U+2029, U+202F, U+2065, U+206A */
	CLEAN(NEIGHBOURS, NEIGHBOURS);
}
END_TEST

START_TEST(test_clean_empty_after)
{
	uint8_t out[64];
	const char *s = ESC "[2J" BEL "\r\n\xe2\x80\xae";

	ck_assert_uint_eq(
	    nt_text_clean((const uint8_t *)s, strlen(s), out, sizeof(out)), 0);
	ck_assert(nt_text_is_blank(out, 0));
	ck_assert(nt_text_is_blank((const uint8_t *)"   ", 3));
	ck_assert(!nt_text_is_blank((const uint8_t *)"  x", 3));
	/* a tab-only line cleans to spaces: blank */
	ck_assert_uint_eq(
	    nt_text_clean((const uint8_t *)"\t\t", 2, out, sizeof(out)), 2);
	ck_assert(nt_text_is_blank(out, 2));
}
END_TEST

START_TEST(test_clean_small_outcap)
{
	const uint8_t in[] = "ab\xc3\xa9\xff";
	uint8_t out[16];

	memset(out, '#', sizeof(out));
	/* room for "ab" and one byte of the next character: cut before it */
	ck_assert_uint_eq(nt_text_clean(in, 5, out, 3), 2);
	ck_assert_mem_eq(out, "ab#", 3);
	ck_assert_uint_eq(nt_text_clean(in, 5, out, 4), 4);
	/* U+FFFD needs 3: a smaller character after it is not let in */
	ck_assert_uint_eq(nt_text_clean((const uint8_t *)"\xff" X, 2, out, 2),
	                  0);
	ck_assert_uint_eq(nt_text_clean(in, 5, out, 0), 0);
	ck_assert_uint_eq(nt_text_clean(in, 5, out, 7), 7);
	ck_assert_mem_eq(out, "ab\xc3\xa9" R, 7);
}
END_TEST

START_TEST(test_clean_worst_case_expansion)
{
	uint8_t in[100], out[NT_TEXT_CLEAN_MAX(100)];

	memset(in, 0xff, sizeof(in));
	ck_assert_uint_eq(nt_text_clean(in, sizeof(in), out, sizeof(out)),
	                  sizeof(out));
	ck_assert(nt_text_is_clean(out, sizeof(out)));
}
END_TEST

START_TEST(test_is_clean)
{
	ck_assert(IS_CLEAN(""));
	ck_assert(IS_CLEAN("ok " E_ACUTE " " R));
	ck_assert(!IS_CLEAN("a\tb"));
	ck_assert(!IS_CLEAN("a" ESC "b"));
	ck_assert(!IS_CLEAN("a\x7f"));
	ck_assert(!IS_CLEAN("a\0"));
	ck_assert(!IS_CLEAN(U_CSI));
	ck_assert(!IS_CLEAN("\xe2\x80\xae"));
	ck_assert(!IS_CLEAN("\xc0\xaf"));
	ck_assert(!IS_CLEAN("\xed\xa0\x80"));
	ck_assert(!IS_CLEAN("\xe2\x82"));
	ck_assert(!IS_CLEAN("\x80"));
	ck_assert(!IS_CLEAN("\xf4\x90\x80\x80"));
}
END_TEST

/* random bytes, weighted toward what starts or ends sequences */
static void random_line(uint8_t *p, size_t len)
{
	static const uint8_t special[] = {
	    0x1b, '[',  ']',  'P',  '\\', 0x07, 0x18, 0xc2, 0x9b, 0x9c, 0x9d,
	    0xe2, 0x80, 0xae, 0xf0, 0x9f, 0xed, '\t', 'm',  ';',  '0',  0x7f};

	for (size_t i = 0; i < len; i++)
		p[i] = rand() % 3 ? (uint8_t)rand()
		                  : special[(size_t)rand() % sizeof(special)];
}

/*
 * The properties for one input: NULL if they hold, else which one broke.
 * Plain ifs rather than ck_assert, which is slow in a loop this hot.
 */
static const char *clean_properties(const uint8_t *in, size_t len, size_t cap)
{
	static uint8_t out[NT_TEXT_CLEAN_MAX(512)], again[sizeof(out)];
	size_t n, m;

	n = nt_text_clean(in, len, out, sizeof(out));
	if (n > NT_TEXT_CLEAN_MAX(len))
		return "grew by more than NT_TEXT_CLEAN_MAX";
	if (!nt_text_is_clean(out, n))
		return "output not clean";
	/* clean text is a fixed point */
	m = nt_text_clean(out, n, again, sizeof(again));
	if (m != n || memcmp(again, out, n) != 0)
		return "cleaning clean text changed it";
	/* a cut output is a clean prefix of the full one, cut at most one
	 * character short of the room it had */
	cap = n ? cap % n : 0;
	m = nt_text_clean(in, len, again, cap);
	if (m > cap || m + 4 <= cap)
		return "cut output has the wrong length";
	if (memcmp(again, out, m) != 0 || !nt_text_is_clean(again, m))
		return "cut output is not a clean prefix";
	return NULL;
}

START_TEST(test_clean_random_property)
{
	uint8_t in[512];

	srand(12345);
	for (int iter = 0; iter < 30000; iter++) {
		size_t len = (size_t)rand() % (sizeof(in) + 1);
		const char *why;

		random_line(in, len);
		why = clean_properties(in, len, (size_t)rand());
		if (why)
			ck_abort_msg("input %d: %s", iter, why);
	}
}
END_TEST

/* ---- nicks and rooms --------------------------------------------------- */

static bool nick_ok(const char *s, unsigned max)
{
	return nt_text_nick_valid(s, strlen(s), max);
}

START_TEST(test_nick_valid)
{
	ck_assert(nick_ok("alice", 16));
	ck_assert(nick_ok("B", 16));
	ck_assert(nick_ok("a-b_c9", 16));
	ck_assert(nick_ok("Zz09_-", 16));
	ck_assert(nick_ok("abcdefghijklmnop", 16));   /* exactly max */
	ck_assert(!nick_ok("abcdefghijklmnopq", 16)); /* max + 1 */
	ck_assert(!nick_ok("", 16));
	ck_assert(!nick_ok("9lives", 16));
	ck_assert(!nick_ok("_x", 16));
	ck_assert(!nick_ok("-x", 16));
	ck_assert(!nick_ok("a b", 16));
	ck_assert(!nick_ok("a.b", 16));
	ck_assert(!nick_ok("al\xc3\xa9", 16));
	ck_assert(!nick_ok("a\x1b", 16));
	ck_assert(!nick_ok("a", 0));
	/* length is what counts, not the NUL */
	ck_assert(!nt_text_nick_valid("ab\0c", 4, 16));
	ck_assert(nt_text_nick_valid("ab\0c", 2, 16));
}
END_TEST

START_TEST(test_nick_fold_cmp)
{
	char out[8];

	nt_text_nick_fold("AbC-_9", 6, out);
	ck_assert_str_eq(out, "abc-_9");
	ck_assert_int_eq(nt_text_nick_cmp("Alice", "aLICE"), 0);
	ck_assert_int_lt(nt_text_nick_cmp("alice", "Bob"), 0);
	ck_assert_int_gt(nt_text_nick_cmp("BOB", "alice"), 0);
	ck_assert_int_lt(nt_text_nick_cmp("al", "alice"), 0);
	ck_assert_int_gt(nt_text_nick_cmp("alice", "Al"), 0);
	/* '_' (0x5F) sits between the cases: folding, not raw bytes */
	ck_assert_int_lt(nt_text_nick_cmp("A_", "a_b"), 0);
	ck_assert_int_lt(nt_text_nick_cmp("a_", "AB"), 0);
}
END_TEST

static int room(const char *in, char out[NT_TEXT_ROOM_MAX + 1])
{
	return nt_text_room_normalize(in, strlen(in), out);
}

START_TEST(test_room_normalize)
{
	char out[NT_TEXT_ROOM_MAX + 1];
	const char *max32 = "abcdefghijklmnopqrstuvwxyz012345";

	ck_assert_int_eq(room("#Lobby", out), 5);
	ck_assert_str_eq(out, "lobby");
	ck_assert_int_eq(room("dev-Ops_2", out), 9);
	ck_assert_str_eq(out, "dev-ops_2");
	ck_assert_int_eq(room("9", out), 1); /* digits may lead */
	ck_assert_str_eq(out, "9");
	ck_assert_int_eq(room(max32, out), 32);
	ck_assert_str_eq(out, max32);
	ck_assert_int_eq(room("#ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", out), 32);
	ck_assert_str_eq(out, max32);

	strcpy(out, "untouched");
	ck_assert_int_eq(room("abcdefghijklmnopqrstuvwxyz0123456", out),
	                 -EINVAL);
	ck_assert_int_eq(room("", out), -EINVAL);
	ck_assert_int_eq(room("#", out), -EINVAL);
	ck_assert_int_eq(room("##a", out), -EINVAL);
	ck_assert_int_eq(room("a b", out), -EINVAL);
	ck_assert_int_eq(room("a.b", out), -EINVAL);
	ck_assert_int_eq(room("caf\xc3\xa9", out), -EINVAL);
	ck_assert_int_eq(room("a#", out), -EINVAL);
	ck_assert_str_eq(out, "untouched");
	ck_assert_int_eq(nt_text_room_normalize("ab\0c", 4, out), -EINVAL);
}
END_TEST

/* shortening quoted text never splits a character */
START_TEST(test_prefix)
{
	const char *s = "ab\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
	size_t n = strlen(s);

	ck_assert_uint_eq(nt_text_prefix(s, n, 100), n);
	ck_assert_uint_eq(nt_text_prefix(s, n, 2), 2);
	ck_assert_uint_eq(nt_text_prefix(s, n, 3), 2); /* inside é */
	ck_assert_uint_eq(nt_text_prefix(s, n, 4), 4);
	ck_assert_uint_eq(nt_text_prefix(s, n, 6), 4); /* inside € */
	ck_assert_uint_eq(nt_text_prefix(s, n, 7), 7);
	ck_assert_uint_eq(nt_text_prefix(s, n, 10), 7); /* inside the emoji */
	ck_assert_uint_eq(nt_text_prefix(s, n, 11), 11);
	ck_assert_uint_eq(nt_text_prefix(s, n, 0), 0);
	for (size_t m = 0; m <= n; m++)
		ck_assert(nt_text_is_clean((const uint8_t *)s,
		                           nt_text_prefix(s, n, m)));
}
END_TEST

Suite *text_suite(void);

Suite *text_suite(void)
{
	Suite *s = suite_create("text");
	TCase *tl = tcase_create("line");
	TCase *tc = tcase_create("clean");
	TCase *tn = tcase_create("names");

	tcase_add_test(tl, test_line_endings);
	tcase_add_test(tl, test_line_split_cr_lf);
	tcase_add_test(tl, test_line_empty_lines);
	tcase_add_test(tl, test_line_cr_cr_lf);
	tcase_add_test(tl, test_line_only_one_byte_swallowed);
	tcase_add_test(tl, test_line_nul_is_data);
	tcase_add_test(tl, test_line_exactly_max);
	tcase_add_test(tl, test_line_max_plus_one_with_end);
	tcase_add_test(tl, test_line_max_plus_one_without_end);
	tcase_add_test(tl, test_line_zero_max);
	tcase_add_test(tl, test_line_ten_mib_bounded);
	tcase_add_test(tl, test_line_outputs_untouched);
	tcase_add_test(tl, test_line_split_random);
	suite_add_tcase(s, tl);

	tcase_add_test(tc, test_clean_ascii_and_valid_utf8);
	tcase_add_test(tc, test_clean_overlong);
	tcase_add_test(tc, test_clean_surrogates_and_above_max);
	tcase_add_test(tc, test_clean_truncated_and_stray);
	tcase_add_test(tc, test_clean_controls);
	tcase_add_test(tc, test_clean_csi);
	tcase_add_test(tc, test_clean_osc);
	tcase_add_test(tc, test_clean_dcs_sos_pm_apc);
	tcase_add_test(tc, test_clean_other_escapes);
	tcase_add_test(tc, test_clean_c1_introducers);
	tcase_add_test(tc, test_clean_bidi);
	tcase_add_test(tc, test_clean_empty_after);
	tcase_add_test(tc, test_clean_small_outcap);
	tcase_add_test(tc, test_clean_worst_case_expansion);
	tcase_add_test(tc, test_is_clean);
	tcase_add_test(tc, test_clean_random_property);
	suite_add_tcase(s, tc);

	tcase_add_test(tn, test_nick_valid);
	tcase_add_test(tn, test_nick_fold_cmp);
	tcase_add_test(tn, test_room_normalize);
	tcase_add_test(tn, test_prefix);
	suite_add_tcase(s, tn);
	return s;
}

NT_RUN_SUITE(text_suite)
