/*
 * Reference-counted buffers and the latch, the two pieces every thread
 * shares: a buffer is freed exactly once, by whichever holder lets go last,
 * whatever thread that is (ASan sees a double free or a leak, TSan a race);
 * a latch tells its waiter whether every party was done in time, and a
 * party that comes after the waiter gave up is still safe.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "run_suite.h"
#include "util.h"

#define N_THREADS 4
#define N_REFS    10000

START_TEST(test_buf_new_and_from)
{
	struct nt_buf *b = nt_buf_new(100);

	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->len, 0);
	ck_assert_uint_eq(b->cap, 100);
	ck_assert_uint_eq(nt_buf_refs(b), 1);
	nt_buf_unref(b);

	struct nt_buf *c = nt_buf_from("hello", 5);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->len, 5);
	ck_assert_uint_eq(c->cap, 5);
	ck_assert(!memcmp(c->data, "hello", 5));
	nt_buf_unref(c);
	/* a size its 32-bit fields cannot describe is refused */
	ck_assert_ptr_null(nt_buf_new((size_t)UINT32_MAX + 1));
	nt_buf_unref(NULL);
}
END_TEST

START_TEST(test_buf_refs)
{
	struct nt_buf *b = nt_buf_from("x", 1);

	ck_assert_ptr_eq(nt_buf_ref(b), b);
	ck_assert_ptr_eq(nt_buf_ref(b), b);
	ck_assert_uint_eq(nt_buf_refs(b), 3);
	nt_buf_unref(b);
	nt_buf_unref(b);
	ck_assert_uint_eq(nt_buf_refs(b), 1);
	ck_assert(b->data[0] == 'x');
	nt_buf_unref(b);
}
END_TEST

static void *unref_many(void *arg)
{
	struct nt_buf *b = arg;
	uintptr_t wrong = 0;

	for (int i = 0; i < N_REFS; i++) {
		/* read what the creator wrote, as a recipient's flush does */
		wrong += b->data[0] != 'z';
		nt_buf_unref(b);
	}
	return (void *)wrong;
}

/* many holders on several threads; the last unref frees it, once */
START_TEST(test_buf_threads)
{
	pthread_t t[N_THREADS];
	struct nt_buf *b = nt_buf_from("z", 1);

	for (int i = 0; i < N_THREADS * N_REFS - 1; i++)
		nt_buf_ref(b);
	ck_assert_uint_eq(nt_buf_refs(b), N_THREADS * N_REFS);
	for (int i = 0; i < N_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, unref_many, b), 0);
	for (int i = 0; i < N_THREADS; i++) {
		void *wrong;
		pthread_join(t[i], &wrong);
		ck_assert_ptr_null(wrong);
	}
}
END_TEST

static void *latch_party(void *arg)
{
	nt_latch_done(arg);
	return NULL;
}

START_TEST(test_latch_all_done)
{
	pthread_t t[N_THREADS];
	struct nt_latch *l = nt_latch_new(N_THREADS);

	ck_assert_ptr_nonnull(l);
	for (int i = 0; i < N_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, latch_party, l),
		                 0);
	ck_assert(nt_latch_wait(l, 10000));
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(t[i], NULL);
}
END_TEST

START_TEST(test_latch_no_parties)
{
	ck_assert(nt_latch_wait(nt_latch_new(0), 0));
	ck_assert(!nt_latch_wait(NULL, 0));
	nt_latch_done(NULL);
}
END_TEST

/* the waiter gives up; the parties that come later still drop their
 * references safely, and the last of them frees the latch */
START_TEST(test_latch_timeout_then_late)
{
	pthread_t t[2];
	struct nt_latch *l = nt_latch_new(3);
	struct timespec t0, t1;

	nt_latch_done(l);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert(!nt_latch_wait(l, 50));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	          (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_int_ge(ms, 45);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, latch_party, l),
		                 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
}
END_TEST

Suite *buf_suite(void);
Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("buf");

	tcase_add_test(tc, test_buf_new_and_from);
	tcase_add_test(tc, test_buf_refs);
	tcase_add_test(tc, test_buf_threads);
	suite_add_tcase(s, tc);
	tc = tcase_create("latch");
	tcase_add_test(tc, test_latch_all_done);
	tcase_add_test(tc, test_latch_no_parties);
	tcase_add_test(tc, test_latch_timeout_then_late);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(buf_suite)
