/*
 * The send queue / outage buffer: its bounds (lines and bytes, at the
 * limit), both overflow policies, control lines ahead of user lines, and
 * the rewind after a lost connection that keeps delivery exactly-once.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "natter-int.h"
#include "run_suite.h"

/* the queue's bytes as one string, as they would go out */
static void wire(const struct natter__queue *q, bool user, char *out,
                 size_t size)
{
	struct iovec iov[64];
	int n = natter__queue_iov(q, iov, 64, SIZE_MAX, user);
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		ck_assert_uint_lt(len + iov[i].iov_len, size);
		memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	out[len] = '\0';
}

static void push(struct natter__queue *q, const char *s, int want)
{
	int rc = natter__queue_push(q, s, strlen(s));
	ck_assert_msg(rc == want, "push %s: %s", s, natter_err_name(rc));
}

START_TEST(test_lines_bound_fail)
{
	struct natter__queue q;
	char out[256];

	natter__queue_init(&q, 3, 1 << 20, NATTER_OVERFLOW_FAIL, false);
	push(&q, "a", 0);
	push(&q, "b", 0);
	push(&q, "c", 0);
	push(&q, "d", NATTER_EFULL);
	ck_assert_uint_eq(q.lines, 3);
	ck_assert_uint_eq(q.bytes, 9);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "a\r\nb\r\nc\r\n");
	ck_assert_uint_eq(q.dropped, 0);
	natter__queue_clear(&q);
	ck_assert_uint_eq(q.lines, 0);
}
END_TEST

START_TEST(test_lines_bound_drop_oldest)
{
	struct natter__queue q;
	char out[256], s[8];

	natter__queue_init(&q, 5, 1 << 20, NATTER_OVERFLOW_DROP_OLDEST, false);
	for (int i = 1; i <= 8; i++) {
		snprintf(s, sizeof(s), "%d", i);
		push(&q, s, 0);
	}
	ck_assert_uint_eq(q.lines, 5);
	ck_assert_uint_eq(q.dropped, 3);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "4\r\n5\r\n6\r\n7\r\n8\r\n");
	natter__queue_clear(&q);
}
END_TEST

/* bytes, CRLF included: exactly at the bound fits, one more does not */
START_TEST(test_bytes_bound)
{
	struct natter__queue q;
	char out[256];

	natter__queue_init(&q, 100, 12, NATTER_OVERFLOW_FAIL, false);
	push(&q, "abcd", 0);        /* 6 */
	push(&q, "efgh", 0);        /* 12: at the bound */
	push(&q, "", NATTER_EFULL); /* 14 */
	ck_assert_uint_eq(q.bytes, 12);
	natter__queue_clear(&q);

	natter__queue_init(&q, 100, 12, NATTER_OVERFLOW_DROP_OLDEST, false);
	push(&q, "abcd", 0);
	push(&q, "efgh", 0);
	push(&q, "ijklmn", 0); /* 8: both go */
	ck_assert_uint_eq(q.dropped, 2);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "ijklmn\r\n");
	/* larger than the whole bound: too long, not full; nothing is
	 * dropped for it */
	push(&q, "0123456789ab", NATTER_ETOOLONG);
	ck_assert_uint_eq(q.dropped, 2);
	ck_assert_uint_eq(q.lines, 1);
	natter__queue_clear(&q);

	natter__queue_init(&q, 100, 12, NATTER_OVERFLOW_FAIL, false);
	push(&q, "0123456789", 0);                /* 12: the whole bound */
	push(&q, "0123456789a", NATTER_ETOOLONG); /* 13 */
	push(&q, "", NATTER_EFULL);               /* 2 would fit later */
	natter__queue_clear(&q);
}
END_TEST

/*
 * Through natter_client_send(): queue_bytes counts each line's CRLF (and
 * for chat each 0xFF twice); a line that could never fit the queue is
 * NATTER_ETOOLONG even when max_line allows it, one that does not fit
 * now NATTER_EFULL.
 */
START_TEST(test_send_larger_than_queue)
{
	struct natter_options o;

	natter_options_init(&o);
	o.host = "127.0.0.1";
	o.queue_bytes = 10;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_send(c, "12345678", 8), 0); /* 10 */
	ck_assert_int_eq(natter_client_send(c, "", 0), NATTER_EFULL);
	ck_assert_int_eq(natter_client_send(c, "123456789", 9),
	                 NATTER_ETOOLONG); /* 11 */
	ck_assert_int_eq(natter_client_send(c,
	                                    "1234\xff"
	                                    "678",
	                                    8),
	                 NATTER_ETOOLONG); /* 11 with IAC IAC */
	ck_assert_uint_eq(natter_client_pending(c), 1);
	natter_client_free(c);
}
END_TEST

/* ours go first, uncounted, never dropped; while restoring only ours */
START_TEST(test_ctl_lines)
{
	struct natter__queue q;
	char out[256];

	natter__queue_init(&q, 2, 1 << 20, NATTER_OVERFLOW_DROP_OLDEST, false);
	push(&q, "u1", 0);
	push(&q, "u2", 0);
	ck_assert_int_eq(natter__queue_push_ctl(&q, "/nick a", 7), 0);
	ck_assert_int_eq(natter__queue_push_ctl(&q, "/ping t", 7), 0);
	ck_assert(natter__queue_has_ctl(&q));
	ck_assert_uint_eq(q.lines, 2);
	wire(&q, false, out, sizeof(out));
	ck_assert_str_eq(out, "/nick a\r\n/ping t\r\n");
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "/nick a\r\n/ping t\r\nu1\r\nu2\r\n");
	push(&q, "u3", 0); /* drops u1, not a ctl line */
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "/nick a\r\n/ping t\r\nu2\r\nu3\r\n");

	size_t lines, user;
	natter__queue_consume(&q, 18, &lines, &user);
	ck_assert_uint_eq(lines, 2);
	ck_assert_uint_eq(user, 0);
	ck_assert(!natter__queue_has_ctl(&q));
	natter__queue_consume(&q, 4, &lines, &user);
	ck_assert_uint_eq(user, 1);
	ck_assert_uint_eq(q.lines, 1);
	natter__queue_clear(&q);
}
END_TEST

/*
 * A line half written when the connection died goes out again whole
 * (the server never saw its end, so never acted on it); whole lines
 * written are gone; ctl lines of the dead connection are dropped; and a
 * half-written line is never dropped by overflow while it is going out.
 */
START_TEST(test_rewind_exactly_once)
{
	struct natter__queue q;
	char out[256];
	size_t lines, user;

	natter__queue_init(&q, 3, 1 << 20, NATTER_OVERFLOW_DROP_OLDEST, false);
	push(&q, "one", 0);
	push(&q, "two", 0);
	push(&q, "three", 0);
	natter__queue_consume(&q, 5 + 2, &lines, &user); /* one, and "tw" */
	ck_assert_uint_eq(user, 1);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "o\r\nthree\r\n");

	/* overflow now must not drop the half-written "two" */
	push(&q, "four", 0);
	push(&q, "five", 0);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "o\r\nfour\r\nfive\r\n");
	/* a ctl line goes after the half-written line, not inside it */
	ck_assert_int_eq(natter__queue_push_ctl(&q, "/ping x", 7), 0);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "o\r\n/ping x\r\nfour\r\nfive\r\n");

	natter__queue_rewind(&q);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "two\r\nfour\r\nfive\r\n");
	ck_assert_uint_eq(q.lines, 3);
	ck_assert_uint_eq(q.bytes, 5 + 6 + 6);
	/* rewound, "two" is an ordinary oldest line again */
	push(&q, "six", 0);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "four\r\nfive\r\nsix\r\n");
	natter__queue_clear(&q);
}
END_TEST

/*
 * For a telnet server every 0xFF goes out as IAC IAC, so text cannot
 * carry a telnet command; the bound counts the bytes as they go out. An
 * echo queue sends 0xFF as it is.
 */
START_TEST(test_telnet_iac_escaped)
{
	struct natter__queue q;
	char out[256];

	natter__queue_init(&q, 100, 12, NATTER_OVERFLOW_DROP_OLDEST, true);
	push(&q,
	     "a\xff\xf4"
	     "b",
	     0);                 /* 7 on the wire */
	push(&q, "\xff\xfa", 0); /* 5: at the bound */
	ck_assert_uint_eq(q.bytes, 12);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "a\xff\xff\xf4"
	                      "b\r\n\xff\xff\xfa"
	                      "\r\n");
	/* 12 bytes as given, 13 on the wire: never fits (too long, not
	 * full), nothing dropped */
	push(&q, "012345678\xff", NATTER_ETOOLONG);
	ck_assert_uint_eq(q.dropped, 0);
	ck_assert_uint_eq(q.lines, 2);
	/* a rewound line goes out escaped once, not twice */
	size_t lines, user;
	natter__queue_consume(&q, 3, &lines, &user);
	natter__queue_rewind(&q);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "a\xff\xff\xf4"
	                      "b\r\n\xff\xff\xfa"
	                      "\r\n");
	ck_assert_uint_eq(q.bytes, 12);
	natter__queue_clear(&q);

	natter__queue_init(&q, 100, 12, NATTER_OVERFLOW_FAIL, false);
	push(&q,
	     "a\xff\xf4"
	     "b",
	     0);
	ck_assert_uint_eq(q.bytes, 6);
	wire(&q, true, out, sizeof(out));
	ck_assert_str_eq(out, "a\xff\xf4"
	                      "b\r\n");
	natter__queue_clear(&q);
}
END_TEST

/* iov limits: lines and iovecs, and the offset into the head */
START_TEST(test_iov_limits)
{
	struct natter__queue q;
	struct iovec iov[4];
	size_t lines, user;

	natter__queue_init(&q, 10, 1 << 20, NATTER_OVERFLOW_FAIL, false);
	for (int i = 0; i < 6; i++)
		push(&q, "xyz", 0);
	ck_assert_int_eq(natter__queue_iov(&q, iov, 4, 2, true), 2);
	ck_assert_int_eq(natter__queue_iov(&q, iov, 4, SIZE_MAX, true), 4);
	ck_assert_int_eq(natter__queue_iov(&q, iov, 4, 0, true), 0);
	ck_assert_int_eq(natter__queue_iov(&q, iov, 4, 9, false), 0);
	natter__queue_consume(&q, 1, &lines, &user);
	ck_assert_int_eq(natter__queue_iov(&q, iov, 4, 1, false), 1);
	ck_assert_uint_eq(iov[0].iov_len, 4);
	ck_assert(!memcmp(iov[0].iov_base, "yz\r\n", 4));
	natter__queue_clear(&q);
}
END_TEST

static Suite *natter_queue_suite(void)
{
	Suite *s = suite_create("natter_queue");
	TCase *tc = tcase_create("queue");

	tcase_add_test(tc, test_lines_bound_fail);
	tcase_add_test(tc, test_lines_bound_drop_oldest);
	tcase_add_test(tc, test_bytes_bound);
	tcase_add_test(tc, test_send_larger_than_queue);
	tcase_add_test(tc, test_ctl_lines);
	tcase_add_test(tc, test_rewind_exactly_once);
	tcase_add_test(tc, test_iov_limits);
	tcase_add_test(tc, test_telnet_iac_escaped);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_queue_suite)
