/*
 * The telnet receiver: exact replies for every sequence, refusals once per
 * option and direction, bounds on subnegotiation and timing marks, and the
 * same result however the input is split.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "run_suite.h"
#include "telnet.h"

#define IAC  NT_TELNET_IAC
#define WILL NT_TELNET_WILL
#define WONT NT_TELNET_WONT
#define DO   NT_TELNET_DO
#define DONT NT_TELNET_DONT
#define SB   NT_TELNET_SB
#define SE   NT_TELNET_SE
#define TM   NT_TELNET_OPT_TIMING_MARK

/* one parser, one reply collector and the data it produced */
struct fix {
	struct nt_telnet t;
	struct nt_telnet_out out;
	uint8_t data[4096];
	size_t n;
};

static void fix_init(struct fix *f)
{
	nt_telnet_init(&f->t);
	nt_telnet_out_init(&f->out);
	f->n = 0;
}

/* feed a whole buffer, appending data to f->data */
static void feed(struct fix *f, const uint8_t *in, size_t len)
{
	ck_assert_uint_le(f->n + len, sizeof(f->data));
	f->n += nt_telnet_feed(&f->t, in, len, f->data + f->n, &f->out);
}

#define FEED(f, ...)                                                           \
	do {                                                                   \
		const uint8_t in_[] = {__VA_ARGS__};                           \
		feed((f), in_, sizeof(in_));                                   \
	} while (0)

#define ASSERT_BYTES(buf, len, ...)                                            \
	do {                                                                   \
		const uint8_t want_[] = {__VA_ARGS__};                         \
		ck_assert_uint_eq((len), sizeof(want_));                       \
		ck_assert_mem_eq((buf), want_, sizeof(want_));                 \
	} while (0)

START_TEST(test_plain_data_passes)
{
	struct fix f;
	const char *s = "hello\r\n\r\0world\n\x01\xfe";

	fix_init(&f);
	feed(&f, (const uint8_t *)s, 17);
	ck_assert_uint_eq(f.n, 17);
	ck_assert_mem_eq(f.data, s, 17);
	ck_assert_uint_eq(f.out.len, 0);
	ck_assert_uint_eq(f.out.events, 0);
}
END_TEST

START_TEST(test_iac_iac_is_ff)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, 'a', IAC, IAC, 'b', IAC, IAC, IAC, IAC);
	ASSERT_BYTES(f.data, f.n, 'a', 0xFF, 'b', 0xFF, 0xFF);
	ck_assert_uint_eq(f.out.len, 0);
}
END_TEST

START_TEST(test_will_gets_dont)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, 'x', IAC, WILL, 31, 'y'); /* NAWS */
	ASSERT_BYTES(f.data, f.n, 'x', 'y');
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, DONT, 31);
}
END_TEST

START_TEST(test_do_gets_wont)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, IAC, DO, 1); /* ECHO */
	ck_assert_uint_eq(f.n, 0);
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, WONT, 1);
}
END_TEST

START_TEST(test_refused_once_per_option_and_direction)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, IAC, WILL, 24, IAC, WILL, 24, IAC, DO, 24, IAC, DO, 24, IAC,
	     WILL, 3, IAC, DO, 24, IAC, WILL, 24);
	/* one DONT 24, one WONT 24, one DONT 3, in arrival order */
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, DONT, 24, IAC, WONT, 24, IAC,
	             DONT, 3);

	/* and still nothing after the collector is reset */
	nt_telnet_out_init(&f.out);
	FEED(&f, IAC, WILL, 24, IAC, DO, 24, IAC, WILL, 3);
	ck_assert_uint_eq(f.out.len, 0);
}
END_TEST

START_TEST(test_every_option_refused_exactly_once)
{
	struct fix f;
	uint8_t in[256 * 6];
	size_t n = 0;

	fix_init(&f);
	for (int opt = 0; opt < 256; opt++) {
		in[n++] = IAC;
		in[n++] = WILL;
		in[n++] = (uint8_t)opt;
		in[n++] = IAC;
		in[n++] = DO;
		in[n++] = (uint8_t)opt;
	}
	feed(&f, in, n);
	ck_assert_uint_eq(f.out.len, 256 * 6);
	for (int opt = 0; opt < 256; opt++) {
		const uint8_t *r = f.out.buf + opt * 6;

		ck_assert_uint_eq(r[0], IAC);
		ck_assert_uint_eq(r[1], DONT);
		ck_assert_uint_eq(r[2], opt);
		ck_assert_uint_eq(r[3], IAC);
		ck_assert_uint_eq(r[4], WONT);
		ck_assert_uint_eq(r[5], opt);
	}
	/* all again, same collector: only DO TIMING-MARK is answered */
	feed(&f, in, n);
	ck_assert_uint_eq(f.out.len, 256 * 6 + 3);
	ASSERT_BYTES(f.out.buf + 256 * 6, 3, IAC, WONT, TM);
	ck_assert_uint_le(f.out.len, NT_TELNET_REPLY_MAX);
}
END_TEST

START_TEST(test_wont_dont_never_answered)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, IAC, WONT, 1, IAC, DONT, 1, IAC, WONT, TM, IAC, DONT, TM, 'k');
	ASSERT_BYTES(f.data, f.n, 'k');
	ck_assert_uint_eq(f.out.len, 0);
	/* a WONT does not use up the refusal of a later WILL */
	FEED(&f, IAC, WILL, 1, IAC, DO, 1);
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, DONT, 1, IAC, WONT, 1);
}
END_TEST

START_TEST(test_timing_mark_answered_every_time)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, 'a', IAC, DO, TM, 'b', IAC, DO, TM, IAC, DO, TM);
	ASSERT_BYTES(f.data, f.n, 'a', 'b');
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, WONT, TM, IAC, WONT, TM, IAC,
	             WONT, TM);
	/* the client's usual Ctrl-C: IAC IP IAC DO TM */
	nt_telnet_out_init(&f.out);
	FEED(&f, IAC, NT_TELNET_IP, IAC, DO, TM);
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, WONT, TM);
	ck_assert_uint_eq(f.out.events, NT_TELNET_EV_INTERRUPT);
}
END_TEST

START_TEST(test_will_timing_mark_refused_once)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, IAC, WILL, TM, IAC, WILL, TM);
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, DONT, TM);
}
END_TEST

START_TEST(test_timing_mark_spam_is_capped)
{
	struct fix f;
	static uint8_t in[3 * 100000];

	fix_init(&f);
	for (size_t i = 0; i < sizeof(in); i += 3) {
		in[i] = IAC;
		in[i + 1] = DO;
		in[i + 2] = TM;
	}
	f.n = nt_telnet_feed(&f.t, in, sizeof(in), in, &f.out);
	ck_assert_uint_eq(f.n, 0);
	ck_assert_uint_eq(f.out.len, 3 * NT_TELNET_TM_MAX);
	ck_assert_uint_eq(f.out.tm_replies, NT_TELNET_TM_MAX);
	/* a fresh collector answers again */
	nt_telnet_out_init(&f.out);
	FEED(&f, IAC, DO, TM);
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, WONT, TM);
}
END_TEST

/* worst case: every refusal plus the timing-mark cap fits the buffer */
START_TEST(test_reply_buffer_never_overflows)
{
	struct fix f;
	static uint8_t in[256 * 6 + 3 * 50];
	size_t n = 0;

	fix_init(&f);
	for (int i = 0; i < 50; i++) {
		in[n++] = IAC;
		in[n++] = DO;
		in[n++] = TM;
	}
	for (int opt = 0; opt < 256; opt++) {
		in[n++] = IAC;
		in[n++] = DO;
		in[n++] = (uint8_t)opt;
		in[n++] = IAC;
		in[n++] = WILL;
		in[n++] = (uint8_t)opt;
	}
	feed(&f, in, n);
	/* 255 WONTs + 256 DONTs + the capped timing marks */
	ck_assert_uint_eq(f.out.len, (255 + 256 + NT_TELNET_TM_MAX) * 3);
	ck_assert_uint_le(f.out.len, NT_TELNET_REPLY_MAX);
	/* the last refusal made it in: nothing was dropped */
	ASSERT_BYTES(f.out.buf + f.out.len - 3, 3, IAC, DONT, 255);
}
END_TEST

START_TEST(test_sb_skipped)
{
	struct fix f;

	fix_init(&f);
	/* NAWS 80x24 with an escaped 0xFF width byte, then TTYPE IS */
	FEED(&f, 'a', IAC, SB, 31, 0, IAC, IAC, 0, 24, IAC, SE, 'b', IAC, SB,
	     24, 0, 'x', 't', 'e', 'r', 'm', IAC, SE, 'c');
	ASSERT_BYTES(f.data, f.n, 'a', 'b', 'c');
	ck_assert_uint_eq(f.out.len, 0);
	ck_assert_uint_eq(f.out.events, 0);
}
END_TEST

START_TEST(test_sb_one_mib_bounded)
{
	struct fix f;
	size_t big = 1024 * 1024;
	uint8_t *in = malloc(big);
	size_t events = 0;

	ck_assert_ptr_nonnull(in);
	fix_init(&f);
	FEED(&f, 'a', IAC, SB, 24);
	for (size_t i = 0; i < big; i++)
		in[i] = (uint8_t)('A' + i % 26);
	/* in 4 KiB chunks, in place, the way a worker would */
	for (size_t off = 0; off < big; off += 4096) {
		size_t n =
		    nt_telnet_feed(&f.t, in + off, 4096, in + off, &f.out);

		ck_assert_uint_eq(n, 0);
		if (f.out.events & NT_TELNET_EV_SB_TOO_LONG) {
			events++;
			f.out.events = 0;
		}
	}
	ck_assert_uint_eq(events, 1); /* reported once per subnegotiation */
	ck_assert_uint_eq(f.t.sb_len, NT_TELNET_SB_MAX + 1); /* saturated */
	FEED(&f, IAC, SE, 'b', 'c');
	ASSERT_BYTES(f.data, f.n, 'a', 'b', 'c');
	ck_assert_uint_eq(f.out.len, 0);
	ck_assert_uint_eq(f.out.events, 0);
	free(in);
}
END_TEST

START_TEST(test_sb_exactly_max_no_event)
{
	struct fix f;
	uint8_t in[NT_TELNET_SB_MAX];

	memset(in, 'z', sizeof(in));
	fix_init(&f);
	FEED(&f, IAC, SB);
	feed(&f, in, sizeof(in));
	FEED(&f, IAC, SE);
	ck_assert_uint_eq(f.out.events, 0);
	ck_assert_uint_eq(f.n, 0);
	/* one more byte is too long */
	FEED(&f, IAC, SB);
	feed(&f, in, sizeof(in));
	FEED(&f, 'z', IAC, SE, 'q');
	ck_assert_uint_eq(f.out.events, NT_TELNET_EV_SB_TOO_LONG);
	ASSERT_BYTES(f.data, f.n, 'q');
}
END_TEST

START_TEST(test_sb_broken_by_command)
{
	struct fix f;

	fix_init(&f);
	/* an SB that never ends: IAC IP inside it still interrupts */
	FEED(&f, IAC, SB, 24, 'j', 'u', 'n', 'k', IAC, NT_TELNET_IP, 'o', 'k');
	ASSERT_BYTES(f.data, f.n, 'o', 'k');
	ck_assert_uint_eq(f.out.events, NT_TELNET_EV_INTERRUPT);
	/* an option command ends it too, and is answered */
	fix_init(&f);
	FEED(&f, IAC, SB, 24, 'j', IAC, DO, 5, 'd');
	ASSERT_BYTES(f.data, f.n, 'd');
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, WONT, 5);
}
END_TEST

START_TEST(test_interrupt_event)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, 'a', IAC, NT_TELNET_IP, 'b');
	ASSERT_BYTES(f.data, f.n, 'a', 'b');
	ck_assert_uint_eq(f.out.events, NT_TELNET_EV_INTERRUPT);
	ck_assert_uint_eq(f.out.len, 0);
}
END_TEST

START_TEST(test_ayt_event)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, IAC, NT_TELNET_AYT);
	ck_assert_uint_eq(f.n, 0);
	ck_assert_uint_eq(f.out.events, NT_TELNET_EV_AYT);
	ck_assert_uint_eq(f.out.len, 0);
	FEED(&f, IAC, NT_TELNET_IP);
	ck_assert_uint_eq(f.out.events,
	                  NT_TELNET_EV_AYT | NT_TELNET_EV_INTERRUPT);
}
END_TEST

START_TEST(test_other_commands_silent)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, 'a', IAC, NT_TELNET_NOP, IAC, NT_TELNET_DM, IAC, NT_TELNET_BRK,
	     IAC, NT_TELNET_AO, IAC, NT_TELNET_EC, IAC, NT_TELNET_EL, IAC,
	     NT_TELNET_GA, IAC, SE, IAC, 0, IAC, 'Q', IAC, 239, 'b');
	ASSERT_BYTES(f.data, f.n, 'a', 'b');
	ck_assert_uint_eq(f.out.len, 0);
	ck_assert_uint_eq(f.out.events, 0);
}
END_TEST

START_TEST(test_command_split_across_feeds)
{
	struct fix f;

	fix_init(&f);
	FEED(&f, 'a', IAC);
	ck_assert_uint_eq(f.out.len, 0);
	FEED(&f, DO);
	FEED(&f, 1, 'b', IAC);
	FEED(&f, IAC);
	ASSERT_BYTES(f.data, f.n, 'a', 'b', 0xFF);
	ASSERT_BYTES(f.out.buf, f.out.len, IAC, WONT, 1);
}
END_TEST

START_TEST(test_in_place)
{
	struct nt_telnet t;
	struct nt_telnet_out out;
	uint8_t buf[] = {'h', IAC, WILL, 3,   'i', IAC, IAC, IAC,
	                 SB,  1,   2,    IAC, SE,  '!', IAC, NT_TELNET_NOP};
	size_t n;

	nt_telnet_init(&t);
	nt_telnet_out_init(&out);
	n = nt_telnet_feed(&t, buf, sizeof(buf), buf, &out);
	ASSERT_BYTES(buf, n, 'h', 'i', 0xFF, '!');
	ASSERT_BYTES(out.buf, out.len, IAC, DONT, 3);
}
END_TEST

/* result of feeding a stream with the given split points */
struct result {
	uint8_t *data;
	size_t n;
	struct nt_telnet_out out;
	struct nt_telnet t;
};

/* pieces of 1..maxchunk bytes at random; maxchunk 0: all in one */
static void run_split(const uint8_t *in, size_t len, struct result *r,
                      unsigned seed, size_t maxchunk)
{
	size_t off = 0;

	r->data = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(r->data);
	r->n = 0;
	nt_telnet_init(&r->t);
	nt_telnet_out_init(&r->out);
	srand(seed);
	while (off < len) {
		size_t chunk = maxchunk ? 1 + (size_t)rand() % maxchunk : len;

		if (chunk > len - off)
			chunk = len - off;
		r->n += nt_telnet_feed(&r->t, in + off, chunk, r->data + r->n,
		                       &r->out);
		off += chunk;
	}
}

static void assert_same(const struct result *a, const struct result *b)
{
	ck_assert_uint_eq(a->n, b->n);
	ck_assert_mem_eq(a->data, b->data, a->n);
	ck_assert_uint_eq(a->out.len, b->out.len);
	ck_assert_mem_eq(a->out.buf, b->out.buf, a->out.len);
	ck_assert_uint_eq(a->out.events, b->out.events);
	ck_assert_uint_eq(a->t.state, b->t.state);
	ck_assert_uint_eq(a->t.sb_len, b->t.sb_len);
	ck_assert_mem_eq(a->t.refused_will, b->t.refused_will,
	                 sizeof(a->t.refused_will));
	ck_assert_mem_eq(a->t.refused_do, b->t.refused_do,
	                 sizeof(a->t.refused_do));
}

START_TEST(test_split_long_mixed_stream)
{
	static const uint8_t piece[] = {'h',
	                                'i',
	                                '\r',
	                                '\n',
	                                IAC,
	                                IAC,
	                                IAC,
	                                WILL,
	                                31,
	                                IAC,
	                                DO,
	                                1,
	                                IAC,
	                                DO,
	                                TM,
	                                'x',
	                                IAC,
	                                SB,
	                                24,
	                                0,
	                                'v',
	                                't',
	                                IAC,
	                                IAC,
	                                IAC,
	                                SE,
	                                '\r',
	                                0,
	                                IAC,
	                                NT_TELNET_NOP,
	                                IAC,
	                                WONT,
	                                3,
	                                IAC,
	                                DONT,
	                                3,
	                                IAC,
	                                NT_TELNET_AYT,
	                                'y',
	                                IAC,
	                                NT_TELNET_GA,
	                                'z',
	                                '\n'};
	size_t reps = 200, len = sizeof(piece) * reps;
	uint8_t *in = malloc(len);
	struct result whole, bytes;
	size_t want_data = 0;

	ck_assert_ptr_nonnull(in);
	for (size_t i = 0; i < reps; i++) {
		memcpy(in + i * sizeof(piece), piece, sizeof(piece));
		/* a different option each time so refusals keep coming */
		in[i * sizeof(piece) + 8] = (uint8_t)(32 + i);
	}
	run_split(in, len, &whole, 1, 0);
	run_split(in, len, &bytes, 1, 1);
	assert_same(&whole, &bytes);
	/* and the content is what the piece says: 11 data bytes each */
	want_data = 11 * reps;
	ck_assert_uint_eq(whole.n, want_data);
	for (size_t i = 0; i < reps; i++)
		ck_assert_mem_eq(whole.data + 11 * i, "hi\r\n\xffx\r\0yz\n",
		                 11);
	ck_assert_uint_eq(whole.out.events, NT_TELNET_EV_AYT);
	/* WONT 1 once, DONT 32+i each time, timing marks up to the cap */
	ck_assert_uint_eq(whole.out.len, 3 * (1 + reps + NT_TELNET_TM_MAX));
	free(in);
	free(whole.data);
	free(bytes.data);
}
END_TEST

START_TEST(test_split_random_streams)
{
	/* weighted toward command bytes so every state is visited */
	static const uint8_t alphabet[] = {
	    IAC,  IAC, IAC, IAC, WILL,         WONT,          DO,
	    DONT, SB,  SE,  SE,  NT_TELNET_IP, NT_TELNET_AYT, NT_TELNET_NOP,
	    TM,   1,   24,  'a', 'b',          '\r',          '\n',
	    0};
	enum { LEN = 20000 };
	uint8_t *in = malloc(LEN);

	ck_assert_ptr_nonnull(in);
	for (unsigned seed = 1; seed <= 50; seed++) {
		struct result whole, split, bytes;

		srand(seed * 7919);
		for (size_t i = 0; i < LEN; i++)
			in[i] =
			    rand() % 4
			        ? alphabet[(size_t)rand() % sizeof(alphabet)]
			        : (uint8_t)rand();
		run_split(in, LEN, &whole, seed, 0);
		run_split(in, LEN, &split, seed, 37);
		run_split(in, LEN, &bytes, seed, 1);
		/* one collector per run, so even the TM cap matches */
		assert_same(&whole, &split);
		assert_same(&whole, &bytes);
		ck_assert_uint_le(whole.n, LEN);
		ck_assert_uint_le(whole.out.len, NT_TELNET_REPLY_MAX);
		free(whole.data);
		free(split.data);
		free(bytes.data);
	}
	free(in);
}
END_TEST

Suite *telnet_suite(void);

Suite *telnet_suite(void)
{
	Suite *s = suite_create("telnet");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_plain_data_passes);
	tcase_add_test(tc, test_iac_iac_is_ff);
	tcase_add_test(tc, test_will_gets_dont);
	tcase_add_test(tc, test_do_gets_wont);
	tcase_add_test(tc, test_refused_once_per_option_and_direction);
	tcase_add_test(tc, test_every_option_refused_exactly_once);
	tcase_add_test(tc, test_wont_dont_never_answered);
	tcase_add_test(tc, test_timing_mark_answered_every_time);
	tcase_add_test(tc, test_will_timing_mark_refused_once);
	tcase_add_test(tc, test_timing_mark_spam_is_capped);
	tcase_add_test(tc, test_reply_buffer_never_overflows);
	tcase_add_test(tc, test_sb_skipped);
	tcase_add_test(tc, test_sb_one_mib_bounded);
	tcase_add_test(tc, test_sb_exactly_max_no_event);
	tcase_add_test(tc, test_sb_broken_by_command);
	tcase_add_test(tc, test_interrupt_event);
	tcase_add_test(tc, test_ayt_event);
	tcase_add_test(tc, test_other_commands_silent);
	tcase_add_test(tc, test_command_split_across_feeds);
	tcase_add_test(tc, test_in_place);
	tcase_add_test(tc, test_split_long_mixed_stream);
	tcase_add_test(tc, test_split_random_streams);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(telnet_suite)
