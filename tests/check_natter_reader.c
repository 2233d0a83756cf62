/*
 * libnatter's line reader: every way of splitting the input gives the same
 * lines, CR LF split across reads included; long lines are cut and
 * flagged, never overflow.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natter-int.h"
#include "run_suite.h"

#define MAXL 32

struct got {
	char lines[64][MAXL + 1];
	bool cut[64];
	int n;
};

/* feed in (len) as the pieces cut at the given offsets */
static void feed(struct natter__reader *r, const char *in, size_t len,
                 const size_t *cuts, int n_cuts, struct got *g)
{
	size_t start = 0;

	for (int k = 0; k <= n_cuts; k++) {
		size_t end = k < n_cuts ? cuts[k] : len;
		const char *p = in + start;
		size_t left = end - start;
		while (left) {
			size_t used, ll;
			const char *line;
			bool cut;
			int got = natter__reader_next(r, p, left, &used, &line,
			                              &ll, &cut);
			ck_assert_uint_le(used, left);
			p += used;
			left -= used;
			if (!got) {
				ck_assert_uint_eq(left, 0);
				break;
			}
			ck_assert_int_lt(g->n, 64);
			ck_assert_uint_le(ll, r->max);
			memcpy(g->lines[g->n], line, ll);
			g->lines[g->n][ll] = '\0';
			g->cut[g->n] = cut;
			g->n++;
		}
		start = end;
	}
}

static void expect(const struct got *g, const char *const *want,
                   const bool *cut, int n, const char *how)
{
	ck_assert_msg(g->n == n, "%s: %d lines, want %d", how, g->n, n);
	for (int i = 0; i < n; i++) {
		ck_assert_msg(!strcmp(g->lines[i], want[i]),
		              "%s: line %d is \"%s\", want \"%s\"", how, i,
		              g->lines[i], want[i]);
		ck_assert_msg(g->cut[i] == (cut ? cut[i] : false),
		              "%s: line %d cut flag", how, i);
	}
}

/* the input in one piece, in every two and three pieces, byte by byte */
static void all_splits(const char *in, size_t len, size_t max,
                       const char *const *want, const bool *cut, int n)
{
	char buf[MAXL];
	struct natter__reader r;
	struct got g;
	char how[64];
	size_t cuts[1024];

	ck_assert_uint_le(max, MAXL);
	for (size_t i = 0; i <= len; i++)
		for (size_t j = i; j <= len; j++) {
			natter__reader_init(&r, buf, max);
			memset(&g, 0, sizeof(g));
			size_t c2[2] = {i, j};
			feed(&r, in, len, c2, 2, &g);
			snprintf(how, sizeof(how), "cut at %zu and %zu", i, j);
			expect(&g, want, cut, n, how);
		}
	ck_assert_uint_le(len, 1024);
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	natter__reader_init(&r, buf, max);
	memset(&g, 0, sizeof(g));
	feed(&r, in, len, cuts, (int)len, &g);
	expect(&g, want, cut, n, "byte by byte");
}

START_TEST(test_crlf_every_split)
{
	static const char in[] = "one\r\ntwo\r\n\r\nthree\r\n";
	static const char *const want[] = {"one", "two", "", "three"};

	all_splits(in, sizeof(in) - 1, MAXL, want, NULL, 4);
}
END_TEST

/* LF, a lone CR, CR NUL and CR CR LF, as natterd itself accepts them */
START_TEST(test_other_endings)
{
	static const char in[] = "lf\ncr\rnul\r\0crcr\r\r\nend\r\n";
	static const char *const want[] = {"lf",   "cr", "nul",
	                                   "crcr", "",   "end"};

	all_splits(in, sizeof(in) - 1, MAXL, want, NULL, 6);
}
END_TEST

/* a line past max: its first max bytes, flagged; the next is whole */
START_TEST(test_long_line_cut)
{
	static const char in[] = "0123456789abcdef\r\nok\r\n12345678\r\n";
	static const char *const want[] = {"01234567", "ok", "12345678"};
	static const bool cut[] = {true, false, false};

	all_splits(in, sizeof(in) - 1, 8, want, cut, 3);
}
END_TEST

/* a partial line waits; no end, no line; reset forgets it and a CR */
START_TEST(test_partial_and_reset)
{
	char buf[MAXL];
	struct natter__reader r;
	struct got g = {0};
	size_t none[1] = {0};

	natter__reader_init(&r, buf, MAXL);
	feed(&r, "abc", 3, none, 0, &g);
	ck_assert_int_eq(g.n, 0);
	feed(&r, "def\r", 4, none, 0, &g);
	ck_assert_int_eq(g.n, 1);
	ck_assert_str_eq(g.lines[0], "abcdef");
	/* a new connection: the old CR must not eat its first byte */
	natter__reader_reset(&r);
	feed(&r, "\nx\n", 3, none, 0, &g);
	ck_assert_int_eq(g.n, 3);
	ck_assert_str_eq(g.lines[1], "");
	ck_assert_str_eq(g.lines[2], "x");
	natter__reader_reset(&r);
	feed(&r, "half", 4, none, 0, &g);
	natter__reader_reset(&r);
	feed(&r, "new\r\n", 5, none, 0, &g);
	ck_assert_int_eq(g.n, 4);
	ck_assert_str_eq(g.lines[3], "new");
}
END_TEST

/* random bytes in random pieces: never more than max per line */
START_TEST(test_random_bounded)
{
	char buf[16], in[4096];
	struct natter__reader r;
	struct natter__rng rng;

	natter__rng_seed(&rng, 42);
	for (int round = 0; round < 200; round++) {
		natter__reader_init(&r, buf, sizeof(buf));
		for (size_t i = 0; i < sizeof(in); i++) {
			uint64_t x = natter__rng_next(&rng);
			in[i] = (x & 7) == 0   ? '\r'
			        : (x & 7) == 1 ? '\n'
			                       : (char)(x >> 8);
		}
		size_t off = 0;
		while (off < sizeof(in)) {
			size_t piece = 1 + natter__rng_upto(&rng, 40);
			if (piece > sizeof(in) - off)
				piece = sizeof(in) - off;
			size_t used, ll;
			const char *line;
			bool cut;
			while (piece) {
				int got = natter__reader_next(&r, in + off,
				                              piece, &used,
				                              &line, &ll, &cut);
				off += used;
				piece -= used;
				if (!got)
					break;
				ck_assert_uint_le(ll, sizeof(buf));
				ck_assert(!memchr(line, '\r', ll));
				ck_assert(!memchr(line, '\n', ll));
			}
		}
	}
}
END_TEST

static Suite *natter_reader_suite(void)
{
	Suite *s = suite_create("natter_reader");
	TCase *tc = tcase_create("reader");

	tcase_add_test(tc, test_crlf_every_split);
	tcase_add_test(tc, test_other_endings);
	tcase_add_test(tc, test_long_line_cut);
	tcase_add_test(tc, test_partial_and_reset);
	tcase_add_test(tc, test_random_bounded);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_reader_suite)
