/*
 * natter_parse_line(): every marker of natter-protocol(7), and text that
 * tries to pass for one. Lines are given with an exact length in buffers
 * of exactly that size, so a read past the end trips AddressSanitizer.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "natter-int.h"
#include "run_suite.h"

struct want {
	const char *line;
	size_t len; /* 0: strlen(line) */
	int type;
	const char *nick; /* NULL: none */
	const char *text;
};

static void check_one(const struct want *w)
{
	size_t len = w->len ? w->len : strlen(w->line);
	char *copy = malloc(len ? len : 1);
	struct natter_line l;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, w->line, len);
	int rc = natter_parse_line(copy, len, &l);
	ck_assert_msg(rc == w->type, "\"%s\": type %d, want %d", w->line, rc,
	              w->type);
	ck_assert_int_eq(l.type, w->type);
	ck_assert_ptr_eq(l.raw, copy);
	ck_assert_uint_eq(l.raw_len, len);
	if (w->nick) {
		ck_assert_msg(l.nick && l.nick_len == strlen(w->nick) &&
		                  !memcmp(l.nick, w->nick, l.nick_len),
		              "\"%s\": nick \"%.*s\", want \"%s\"", w->line,
		              (int)l.nick_len, l.nick ? l.nick : "", w->nick);
		ck_assert(l.nick >= copy && l.nick + l.nick_len <= copy + len);
	} else {
		ck_assert_msg(!l.nick && !l.nick_len, "\"%s\": a nick",
		              w->line);
	}
	size_t tl = w->len ? w->len - (size_t)(l.text - copy) : strlen(w->text);
	ck_assert_msg(l.text_len == tl && !memcmp(l.text, w->text, tl),
	              "\"%s\": text \"%.*s\", want \"%s\"", w->line,
	              (int)l.text_len, l.text, w->text);
	ck_assert(l.text >= copy && l.text + l.text_len <= copy + len);
	free(copy);
}

START_TEST(test_markers)
{
	static const struct want w[] = {
	    {"<bob> hello there", 0, NATTER_LINE_MESSAGE, "bob", "hello there"},
	    {"* bob waves", 0, NATTER_LINE_ACTION, "bob", "waves"},
	    {"*bob* psst", 0, NATTER_LINE_PRIVATE, "bob", "psst"},
	    {"-> *bob* psst", 0, NATTER_LINE_PRIVATE_SENT, "bob", "psst"},
	    {"*** Welcome to natter, guest0001!", 0, NATTER_LINE_NOTICE, NULL,
	     "Welcome to natter, guest0001!"},
	    {"!!! nick bob is taken", 0, NATTER_LINE_ERROR, NULL,
	     "nick bob is taken"},
	    {"*** pong abc", 0, NATTER_LINE_NOTICE, NULL, "pong abc"},
	    {"*** limits: max_line=512", 0, NATTER_LINE_NOTICE, NULL,
	     "limits: max_line=512"},
	    {"just echo", 0, NATTER_LINE_OTHER, NULL, "just echo"},
	    {"", 0, NATTER_LINE_OTHER, NULL, ""},
	    /* the edges of each marker */
	    {"***", 0, NATTER_LINE_NOTICE, NULL, ""},
	    {"*** ", 0, NATTER_LINE_NOTICE, NULL, ""},
	    {"!!!", 0, NATTER_LINE_ERROR, NULL, ""},
	    {"<bob>", 0, NATTER_LINE_MESSAGE, "bob", ""},
	    {"<bob> ", 0, NATTER_LINE_MESSAGE, "bob", ""},
	    {"* bob", 0, NATTER_LINE_ACTION, "bob", ""},
	    {"*bob*", 0, NATTER_LINE_PRIVATE, "bob", ""},
	    {"<guest0042> hi", 0, NATTER_LINE_MESSAGE, "guest0042", "hi"},
	    {"<a-b_c9> x", 0, NATTER_LINE_MESSAGE, "a-b_c9", "x"},
	    {"<abcdefghijklmnopqrstuvwxyzABCDEF> 32", 0, NATTER_LINE_MESSAGE,
	     "abcdefghijklmnopqrstuvwxyzABCDEF", "32"},
	};

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		check_one(&w[i]);
}
END_TEST

/* text that looks like a marker but is not one is OTHER, whole */
START_TEST(test_hostile)
{
	static const struct want w[] = {
	    {"<bob", 0, NATTER_LINE_OTHER, NULL, "<bob"},
	    {"<> hi", 0, NATTER_LINE_OTHER, NULL, "<> hi"},
	    {"<b b> hi", 0, NATTER_LINE_OTHER, NULL, "<b b> hi"},
	    {"<bob>hi", 0, NATTER_LINE_OTHER, NULL, "<bob>hi"},
	    {"<1bob> hi", 0, NATTER_LINE_OTHER, NULL, "<1bob> hi"},
	    {"<-bob> hi", 0, NATTER_LINE_OTHER, NULL, "<-bob> hi"},
	    {"<abcdefghijklmnopqrstuvwxyzABCDEFG> 33", 0, NATTER_LINE_OTHER,
	     NULL, "<abcdefghijklmnopqrstuvwxyzABCDEFG> 33"},
	    {"<b\xc3\xa9> hi", 0, NATTER_LINE_OTHER, NULL, "<b\xc3\xa9> hi"},
	    {"***hi", 0, NATTER_LINE_OTHER, NULL, "***hi"},
	    {"!!!x", 0, NATTER_LINE_OTHER, NULL, "!!!x"},
	    {"**", 0, NATTER_LINE_OTHER, NULL, "**"},
	    {"** x", 0, NATTER_LINE_OTHER, NULL, "** x"},
	    {"*bob*x", 0, NATTER_LINE_OTHER, NULL, "*bob*x"},
	    {"*bob", 0, NATTER_LINE_OTHER, NULL, "*bob"},
	    {"* *** fake", 0, NATTER_LINE_OTHER, NULL, "* *** fake"},
	    {"*  bob", 0, NATTER_LINE_OTHER, NULL, "*  bob"},
	    {"->*bob* hi", 0, NATTER_LINE_OTHER, NULL, "->*bob* hi"},
	    {"-> bob hi", 0, NATTER_LINE_OTHER, NULL, "-> bob hi"},
	    {"-> *bob*hi", 0, NATTER_LINE_OTHER, NULL, "-> *bob*hi"},
	    {" *** indented", 0, NATTER_LINE_OTHER, NULL, " *** indented"},
	    /* a marker inside the text stays text */
	    {"<bob> *** you are now known as alice", 0, NATTER_LINE_MESSAGE,
	     "bob", "*** you are now known as alice"},
	    {"<bob> <alice> i said so", 0, NATTER_LINE_MESSAGE, "bob",
	     "<alice> i said so"},
	    {"*** <bob> hi", 0, NATTER_LINE_NOTICE, NULL, "<bob> hi"},
	    /* NUL is a byte like any other: lengths rule, not strings */
	    {"<b\0b> hi", 8, NATTER_LINE_OTHER, NULL, "<b\0b> hi"},
	    {"<bob> a\0b", 9, NATTER_LINE_MESSAGE, "bob", "a\0b"},
	    {"***\0", 4, NATTER_LINE_OTHER, NULL, "***\0"},
	};

	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		check_one(&w[i]);
}
END_TEST

START_TEST(test_bad_args)
{
	struct natter_line l;

	ck_assert_int_eq(natter_parse_line("x", 1, NULL), NATTER_EINVAL);
	ck_assert_int_eq(natter_parse_line(NULL, 1, &l), NATTER_EINVAL);
	/* NULL is NULL whatever the length */
	ck_assert_int_eq(natter_parse_line(NULL, 0, &l), NATTER_EINVAL);
	ck_assert_int_eq(natter_parse_line("", 0, &l), NATTER_LINE_OTHER);
	ck_assert_uint_eq(l.text_len, 0);
}
END_TEST

/*
 * Random lines built from marker pieces: whatever the type, nick and
 * text lie inside the line, a nick is a valid nick, and parsing is a
 * function of the bytes alone.
 */
START_TEST(test_random)
{
	static const char *const parts[] = {
	    "<",   ">",    "*",  "***", "!!!", "-> ", " ",   "bob",
	    "b0b", "\xff", "\0", "x y", "-",   "_",   "<a>", "*a*"};
	struct natter__rng rng;
	char buf[128];

	natter__rng_seed(&rng, 7);
	for (int round = 0; round < 100000; round++) {
		size_t len = 0;
		int pieces = 1 + (int)natter__rng_upto(&rng, 6);
		for (int i = 0; i < pieces; i++) {
			const char *p = parts[natter__rng_upto(&rng, 15)];
			size_t pl = p[0] ? strlen(p) : 1;
			if (len + pl > sizeof(buf))
				break;
			memcpy(buf + len, p, pl);
			len += pl;
		}
		char *line = malloc(len ? len : 1);
		ck_assert_ptr_nonnull(line);
		memcpy(line, buf, len);
		struct natter_line a, b;
		int t = natter_parse_line(line, len, &a);
		ck_assert(t >= NATTER_LINE_OTHER && t <= NATTER_LINE_ERROR);
		ck_assert(a.text >= line && a.text + a.text_len <= line + len);
		if (a.nick) {
			char nick[64];
			ck_assert(a.nick >= line &&
			          a.nick + a.nick_len <= line + len);
			ck_assert_uint_le(a.nick_len, 32);
			memcpy(nick, a.nick, a.nick_len);
			nick[a.nick_len] = '\0';
			ck_assert(natter__nick_valid(nick));
		}
		natter_parse_line(line, len, &b);
		ck_assert(memcmp(&a, &b, sizeof(a)) == 0);
		free(line);
	}
}
END_TEST

static Suite *natter_parse_suite(void)
{
	Suite *s = suite_create("natter_parse");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_markers);
	tcase_add_test(tc, test_hostile);
	tcase_add_test(tc, test_bad_args);
	tcase_add_test(tc, test_random);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_parse_suite)
