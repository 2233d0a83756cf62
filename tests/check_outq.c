/*
 * The output queue and its pool of spare rings, alone: no connection, no
 * worker, no socket. What the queue holds is read back through
 * nt_outq_iov(), as a flush would write it.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"
#include "run_suite.h"

#define COST  NT_OUTQ_SEG_COST
#define FIRST NT_OUTQ_RING_FIRST_SIZE

static const char letters[] = "abcdefghijklmnopqrstuvwxyz";

static struct nt_outq_pool pool;
static struct nt_outq q;
static struct nt_buf *abc; /* the letters; segments are spans of it */

static void setup(void)
{
	nt_outq_pool_init(&pool);
	memset(&q, 0, sizeof(q));
	abc = nt_buf_from(letters, strlen(letters));
	ck_assert_ptr_nonnull(abc);
}

static void teardown(void)
{
	nt_outq_clear(&q, &pool);
	nt_buf_unref(abc);
	nt_outq_pool_free(&pool);
}

/* what a flush would write, in order, as a string */
static const char *queued(void)
{
	static char text[256];
	struct iovec iov[64];
	size_t len = 0;
	int n = nt_outq_iov(&q, iov, 64);

	for (int i = 0; i < n; i++) {
		ck_assert_uint_lt(len + iov[i].iov_len, sizeof(text));
		memcpy(text + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	text[len] = '\0';
	return text;
}

/* letter i of abc as a segment of its own */
static void push_letter(size_t i)
{
	ck_assert_int_eq(nt_outq_push(&q, &pool, abc, i, 1), 0);
}

START_TEST(test_wrap_and_grow)
{
	for (size_t i = 0; i < 4; i++)
		push_letter(i);
	ck_assert_uint_eq(q.cap, FIRST / sizeof(struct nt_oseg));
	ck_assert_uint_eq(q.cap, 4);
	nt_outq_consume(&q, &pool, 2);
	ck_assert_uint_eq(q.head, 2);
	/* e and f wrap round to the start of the ring */
	push_letter(4);
	push_letter(5);
	ck_assert_uint_eq(q.cap, 4);
	ck_assert_uint_eq(q.seg[0].off, 4);
	ck_assert_uint_eq(q.seg[1].off, 5);
	ck_assert_str_eq(queued(), "cdef");
	void *first = q.seg;

	/* full and wrapped: the ring doubles and unwraps, in order */
	push_letter(6);
	ck_assert_uint_eq(q.cap, 8);
	ck_assert_uint_eq(q.head, 0);
	ck_assert_str_eq(queued(), "cdefg");
	ck_assert_uint_eq(pool.len[0], 1);
	ck_assert_ptr_eq(pool.spare[0][0], first);
	ck_assert_uint_eq(pool.bytes, FIRST);

	for (size_t i = 7; i < 11; i++)
		push_letter(i);
	ck_assert_uint_eq(q.cap, 16);
	ck_assert_uint_eq(q.count, 9);
	ck_assert_str_eq(queued(), "cdefghijk");
	ck_assert_uint_eq(pool.len[1], 1);
	ck_assert_uint_eq(pool.bytes, FIRST + 2 * FIRST);

	/* all written: the ring goes back to the pool, none is kept */
	nt_outq_consume(&q, &pool, 9);
	ck_assert_ptr_null(q.seg);
	ck_assert_uint_eq(q.cap, 0);
	ck_assert_uint_eq(q.count, 0);
	ck_assert_uint_eq(q.bytes, 0);
	ck_assert_uint_eq(pool.len[2], 1);
	ck_assert_uint_eq(pool.bytes, FIRST + 2 * FIRST + 4 * FIRST);

	/* and the next first ring comes from the pool */
	push_letter(25);
	ck_assert_ptr_eq(q.seg, first);
	ck_assert_uint_eq(pool.len[0], 0);
	ck_assert_uint_eq(pool.bytes, 2 * FIRST + 4 * FIRST);
	ck_assert_str_eq(queued(), "z");
}
END_TEST

START_TEST(test_partial_consume)
{
	ck_assert_int_eq(nt_outq_push(&q, &pool, abc, 0, 5), 0);  /* abcde */
	ck_assert_int_eq(nt_outq_push(&q, &pool, abc, 10, 5), 0); /* klmno */
	ck_assert_uint_eq(nt_buf_refs(abc), 3);
	ck_assert_uint_eq(q.bytes, 10 + 2 * COST);

	/* inside the first segment: it shrinks from the front */
	nt_outq_consume(&q, &pool, 3);
	ck_assert_uint_eq(q.count, 2);
	ck_assert_uint_eq(q.seg[q.head].off, 3);
	ck_assert_uint_eq(q.seg[q.head].len, 2);
	ck_assert_str_eq(queued(), "deklmno");
	ck_assert_uint_eq(q.bytes, 7 + 2 * COST);
	ck_assert_uint_eq(nt_buf_refs(abc), 3);

	/* across the boundary: the first goes, with its reference */
	nt_outq_consume(&q, &pool, 4);
	ck_assert_uint_eq(q.count, 1);
	ck_assert_str_eq(queued(), "mno");
	ck_assert_uint_eq(q.bytes, 3 + COST);
	ck_assert_uint_eq(nt_buf_refs(abc), 2);
	ck_assert_ptr_nonnull(q.seg);

	/* no more than what is queued is dropped */
	nt_outq_consume(&q, &pool, 100);
	ck_assert_uint_eq(q.count, 0);
	ck_assert_uint_eq(q.bytes, 0);
	ck_assert_ptr_null(q.seg);
	ck_assert_uint_eq(nt_buf_refs(abc), 1);
	ck_assert_uint_eq(pool.len[0], 1);
}
END_TEST

START_TEST(test_iov_max)
{
	struct iovec iov[16];

	for (size_t i = 0; i < 10; i++)
		push_letter(i);
	ck_assert_int_eq(nt_outq_iov(&q, iov, 3), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_eq(iov[i].iov_base, abc->data + i);
		ck_assert_uint_eq(iov[i].iov_len, 1);
	}
	ck_assert_int_eq(nt_outq_iov(&q, iov, 16), 10);
	ck_assert_ptr_eq(iov[9].iov_base, abc->data + 9);
	ck_assert_int_eq(nt_outq_iov(&q, iov, 0), 0);

	nt_outq_clear(&q, &pool);
	ck_assert_int_eq(nt_outq_iov(&q, iov, 16), 0);
}
END_TEST

/* every segment is charged COST on top of its bytes, and only once */
START_TEST(test_bytes)
{
	size_t want = 0;

	for (size_t i = 0; i < 6; i++) {
		ck_assert_int_eq(nt_outq_push(&q, &pool, abc, 2 * i, i + 1), 0);
		want += i + 1 + COST;
		ck_assert_uint_eq(q.bytes, want);
	}
	/* the tail grows by bytes alone */
	struct nt_oseg *t = nt_outq_last(&q);
	ck_assert_uint_eq(t->off, 10);
	nt_outq_extend(&q, t, 4);
	want += 4;
	ck_assert_uint_eq(q.bytes, want);
	ck_assert_uint_eq(t->len, 10);
	ck_assert_uint_eq(q.count, 6);

	/* a whole segment written gives its charge back */
	nt_outq_consume(&q, &pool, 1);
	want -= 1 + COST;
	ck_assert_uint_eq(q.bytes, want);
	/* part of one gives back bytes only */
	nt_outq_consume(&q, &pool, 1);
	want -= 1;
	ck_assert_uint_eq(q.bytes, want);
	nt_outq_consume(&q, &pool, 1 + 3 + 4 + 5 + 10);
	ck_assert_uint_eq(q.bytes, 0);
	ck_assert_uint_eq(q.count, 0);
}
END_TEST

START_TEST(test_clear)
{
	struct nt_buf *other = nt_buf_from("xyz", 3);

	ck_assert_int_eq(nt_outq_push(&q, &pool, abc, 0, 2), 0);
	ck_assert_int_eq(nt_outq_push(&q, &pool, other, 0, 3), 0);
	ck_assert_int_eq(nt_outq_push(&q, &pool, abc, 5, 2), 0);
	for (size_t i = 0; i < 5; i++) /* grown and wrapped */
		push_letter(i);
	nt_outq_consume(&q, &pool, 2);
	ck_assert_uint_eq(nt_buf_refs(abc), 1 + 6);
	ck_assert_uint_eq(nt_buf_refs(other), 2);

	nt_outq_clear(&q, &pool);
	ck_assert_uint_eq(nt_buf_refs(abc), 1);
	ck_assert_uint_eq(nt_buf_refs(other), 1);
	ck_assert_ptr_null(q.seg);
	ck_assert_uint_eq(q.count, 0);
	ck_assert_uint_eq(q.cap, 0);
	ck_assert_uint_eq(q.head, 0);
	ck_assert_uint_eq(q.bytes, 0);
	ck_assert_uint_eq(pool.len[1], 1); /* the 8-segment ring */
	nt_buf_unref(other);
	/* an empty queue clears to nothing */
	nt_outq_clear(&q, &pool);
	ck_assert_ptr_null(q.seg);
}
END_TEST

/* at NT_OUTQ_SEGS_MAX segments the ring does not grow; a full ring that
 * size is never touched, so its segments need not exist */
START_TEST(test_segs_max)
{
	struct nt_oseg dummy;

	q = (struct nt_outq){.seg = &dummy,
	                     .head = 7,
	                     .count = NT_OUTQ_SEGS_MAX,
	                     .cap = NT_OUTQ_SEGS_MAX,
	                     .bytes = 12345};
	ck_assert_int_eq(nt_outq_grow(&q, &pool), -ENOBUFS);
	ck_assert_int_eq(nt_outq_push(&q, &pool, abc, 0, 1), -ENOBUFS);
	/* nothing queued, nothing taken */
	ck_assert_ptr_eq(q.seg, &dummy);
	ck_assert_uint_eq(q.count, NT_OUTQ_SEGS_MAX);
	ck_assert_uint_eq(q.cap, NT_OUTQ_SEGS_MAX);
	ck_assert_uint_eq(q.head, 7);
	ck_assert_uint_eq(q.bytes, 12345);
	ck_assert_uint_eq(nt_buf_refs(abc), 1);
	ck_assert_uint_eq(pool.bytes, 0);
	memset(&q, 0, sizeof(q));

	/* the bound is a size the doubling reaches exactly */
	uint32_t cap = NT_OUTQ_RING_FIRST_SIZE / sizeof(struct nt_oseg);
	while (cap < NT_OUTQ_SEGS_MAX)
		cap *= 2;
	ck_assert_uint_eq(cap, NT_OUTQ_SEGS_MAX);
}
END_TEST

START_TEST(test_pool_classes)
{
	void *r64 = nt_outq_pool_get(&pool, FIRST);
	void *r128 = nt_outq_pool_get(&pool, 2 * FIRST);

	ck_assert_ptr_nonnull(r64);
	ck_assert_ptr_nonnull(r128);
	nt_outq_pool_put(&pool, r64, FIRST);
	nt_outq_pool_put(&pool, r128, 2 * FIRST);
	ck_assert_uint_eq(pool.len[0], 1);
	ck_assert_uint_eq(pool.len[1], 1);
	ck_assert_uint_eq(pool.bytes, 3 * FIRST);
	/* each size from its own class */
	ck_assert_ptr_eq(nt_outq_pool_get(&pool, 2 * FIRST), r128);
	ck_assert_ptr_eq(nt_outq_pool_get(&pool, FIRST), r64);
	ck_assert_uint_eq(pool.bytes, 0);
	ck_assert_uint_eq(pool.len[0], 0);
	ck_assert_uint_eq(pool.len[1], 0);

	/* the largest class is kept, sizes that are no class are freed */
	size_t largest = (size_t)FIRST << (NT_OUTQ_RING_CLASSES - 1);
	nt_outq_pool_put(&pool, malloc(largest), largest);
	ck_assert_uint_eq(pool.len[NT_OUTQ_RING_CLASSES - 1], 1);
	ck_assert_uint_eq(pool.bytes, largest);
	nt_outq_pool_put(&pool, malloc(2 * largest), 2 * largest);
	nt_outq_pool_put(&pool, malloc(3 * FIRST), 3 * FIRST);
	nt_outq_pool_put(&pool, malloc(FIRST / 2), FIRST / 2);
	nt_outq_pool_put(&pool, NULL, FIRST);
	ck_assert_uint_eq(pool.bytes, largest);
	for (unsigned k = 0; k + 1 < NT_OUTQ_RING_CLASSES; k++)
		ck_assert_uint_eq(pool.len[k], 0);
	ck_assert_uint_eq(pool.len[NT_OUTQ_RING_CLASSES - 1], 1);

	nt_outq_pool_put(&pool, r64, FIRST);
	nt_outq_pool_put(&pool, r128, 2 * FIRST);
	nt_outq_pool_free(&pool);
	ck_assert_uint_eq(pool.bytes, 0);
	for (unsigned k = 0; k < NT_OUTQ_RING_CLASSES; k++) {
		ck_assert_uint_eq(pool.len[k], 0);
		ck_assert_ptr_null(pool.spare[k]);
	}
}
END_TEST

/* spares past NT_OUTQ_SPARE_BYTES are freed, whatever their class */
START_TEST(test_pool_cap)
{
	size_t largest = (size_t)FIRST << (NT_OUTQ_RING_CLASSES - 1);
	unsigned fit = NT_OUTQ_SPARE_BYTES / largest;

	ck_assert_uint_eq(NT_OUTQ_SPARE_BYTES % largest, 0);
	for (unsigned i = 0; i < fit; i++)
		nt_outq_pool_put(&pool, malloc(largest), largest);
	ck_assert_uint_eq(pool.len[NT_OUTQ_RING_CLASSES - 1], fit);
	ck_assert_uint_eq(pool.bytes, NT_OUTQ_SPARE_BYTES);

	nt_outq_pool_put(&pool, malloc(largest), largest);
	nt_outq_pool_put(&pool, malloc(FIRST), FIRST);
	ck_assert_uint_eq(pool.len[NT_OUTQ_RING_CLASSES - 1], fit);
	ck_assert_uint_eq(pool.len[0], 0);
	ck_assert_uint_eq(pool.bytes, NT_OUTQ_SPARE_BYTES);

	/* room again once one is taken */
	free(nt_outq_pool_get(&pool, largest));
	nt_outq_pool_put(&pool, malloc(FIRST), FIRST);
	ck_assert_uint_eq(pool.len[0], 1);
	ck_assert_uint_eq(pool.bytes, NT_OUTQ_SPARE_BYTES - largest + FIRST);

	/* a queue's ring given back to a full pool is freed */
	for (unsigned i = 0; i < largest / FIRST - 1; i++)
		nt_outq_pool_put(&pool, malloc(FIRST), FIRST);
	ck_assert_uint_eq(pool.bytes, NT_OUTQ_SPARE_BYTES);
	push_letter(0);
	ck_assert_uint_eq(pool.bytes, NT_OUTQ_SPARE_BYTES - FIRST);
	nt_outq_pool_put(&pool, malloc(FIRST), FIRST);
	ck_assert_uint_eq(pool.len[0], largest / FIRST);
	nt_outq_consume(&q, &pool, 1);
	ck_assert_ptr_null(q.seg);
	ck_assert_uint_eq(pool.len[0], largest / FIRST);
	ck_assert_uint_eq(pool.bytes, NT_OUTQ_SPARE_BYTES);
}
END_TEST

static Suite *outq_suite(void)
{
	Suite *s = suite_create("outq");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_wrap_and_grow);
	tcase_add_test(tc, test_partial_consume);
	tcase_add_test(tc, test_iov_max);
	tcase_add_test(tc, test_bytes);
	tcase_add_test(tc, test_clear);
	tcase_add_test(tc, test_segs_max);
	tcase_add_test(tc, test_pool_classes);
	tcase_add_test(tc, test_pool_cap);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(outq_suite)
