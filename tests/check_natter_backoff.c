/*
 * The reconnect delay (exponential ceiling, full jitter) over many draws,
 * and the send pacer. Seeds are fixed: the statistics are deterministic.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "natter-int.h"
#include "natter.h"
#include "run_suite.h"

START_TEST(test_ceiling)
{
	ck_assert_int_eq(natter__backoff_ceiling(1, 500, 30000), 500);
	ck_assert_int_eq(natter__backoff_ceiling(2, 500, 30000), 1000);
	ck_assert_int_eq(natter__backoff_ceiling(6, 500, 30000), 16000);
	ck_assert_int_eq(natter__backoff_ceiling(7, 500, 30000), 30000);
	ck_assert_int_eq(natter__backoff_ceiling(1000000, 500, 30000), 30000);
	ck_assert_int_eq(natter__backoff_ceiling(INT32_MAX, 1, INT32_MAX),
	                 INT32_MAX);
	ck_assert_int_eq(natter__backoff_ceiling(3, 100, 100), 100);
}
END_TEST

/* 20000 draws per attempt 1..20: always inside [0, ceiling] */
START_TEST(test_delay_bounds)
{
	struct natter__rng rng;

	natter__rng_seed(&rng, 1);
	for (int attempt = 1; attempt <= 20; attempt++) {
		int ceiling = natter__backoff_ceiling(attempt, 20, 5000);
		int lo = ceiling, hi = 0;
		for (int i = 0; i < 20000; i++) {
			int dl = natter__backoff_delay(&rng, attempt, 20, 5000);
			ck_assert_int_ge(dl, 0);
			ck_assert_int_le(dl, ceiling);
			lo = dl < lo ? dl : lo;
			hi = dl > hi ? dl : hi;
		}
		/* full jitter reaches both ends of its range */
		ck_assert_int_le(lo, ceiling / 100);
		ck_assert_int_ge(hi, ceiling - ceiling / 100);
	}
}
END_TEST

/*
 * Full jitter spreads clients evenly over [0, ceiling]: ten buckets of
 * 100000 draws each hold 10% +- 0.5%, the mean is ceiling/2 +- 1%.
 * (A "equal jitter" or no-jitter bug puts nothing in the low buckets.)
 */
START_TEST(test_jitter_spread)
{
	struct natter__rng rng;
	long bucket[10] = {0};
	const int n = 100000, ceiling = 999;
	double sum = 0;

	natter__rng_seed(&rng, 2);
	for (int i = 0; i < n; i++) {
		int dl = natter__backoff_delay(&rng, 5, 100, 999);
		bucket[dl * 10 / (ceiling + 1)]++;
		sum += dl;
	}
	for (int b = 0; b < 10; b++)
		ck_assert_msg(labs(bucket[b] - n / 10) < n / 200,
		              "bucket %d holds %ld of %d", b, bucket[b], n);
	double mean = sum / n;
	ck_assert_msg(mean > ceiling / 2.0 * 0.99 &&
	                  mean < ceiling / 2.0 * 1.01,
	              "mean %f", mean);
}
END_TEST

/* clients seeded apart draw apart: no thundering herd after a restart */
START_TEST(test_seeds_decorrelate)
{
	struct natter__rng a, b;
	int same = 0;

	natter__rng_seed(&a, 0); /* from getrandom() */
	natter__rng_seed(&b, 0);
	for (int i = 0; i < 1000; i++)
		same += natter__backoff_delay(&a, 10, 500, 30000) ==
		        natter__backoff_delay(&b, 10, 500, 30000);
	ck_assert_int_lt(same, 10);

	/* the same seed repeats: what tests rely on */
	natter__rng_seed(&a, 99);
	natter__rng_seed(&b, 99);
	for (int i = 0; i < 100; i++)
		ck_assert_uint_eq(natter__rng_next(&a), natter__rng_next(&b));
}
END_TEST

START_TEST(test_upto_edges)
{
	struct natter__rng rng;
	bool seen[2] = {false, false};

	natter__rng_seed(&rng, 3);
	for (int i = 0; i < 1000; i++) {
		ck_assert_uint_eq(natter__rng_upto(&rng, 0), 0);
		seen[natter__rng_upto(&rng, 1)] = true;
		(void)natter__rng_upto(&rng, UINT64_MAX);
	}
	ck_assert(seen[0] && seen[1]);
}
END_TEST

START_TEST(test_after_session)
{
	ck_assert_int_eq(natter__backoff_after_session(7, 0, 0), 0);
	ck_assert_int_eq(natter__backoff_after_session(7, 999, 1000), 7);
	ck_assert_int_eq(natter__backoff_after_session(7, 1000, 1000), 0);
	ck_assert_int_eq(natter__backoff_after_session(0, 5, 1000), 0);
}
END_TEST

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/*
 * One client's retries with the options' backoff: the server went away at
 * 0 and is ready at down_ms. Returns how long after ready the client's
 * connect came; *attempt carries the count from one outage to the next.
 */
static int sim_outage(struct natter__rng *rng, const struct natter_options *o,
                      int *attempt, int down_ms)
{
	long t = 0;

	for (;;) {
		++*attempt;
		t += natter__backoff_delay(rng, *attempt,
		                           o->reconnect_initial_ms,
		                           o->reconnect_max_ms);
		if (t >= down_ms)
			return (int)(t - down_ms);
	}
}

/*
 * With the defaults, 1001 clients of a server restarted five times, 8 s up
 * and 1 s or 3 s down each time: at every restart the median client is
 * back within a second of the server being ready. (Backoff counted across
 * short sessions, or a high cap, puts the median at several seconds.)
 */
START_TEST(test_defaults_ride_out_restarts)
{
	enum { N = 1001, RESTARTS = 5, UP_MS = 8000 };
	static const int down_ms[] = {1000, 3000};
	struct natter_options o;
	struct natter__rng rng;
	int wait[N], attempt[N];

	natter_options_init(&o);
	natter__rng_seed(&rng, 4);
	for (size_t d = 0; d < sizeof(down_ms) / sizeof(down_ms[0]); d++) {
		for (int i = 0; i < N; i++)
			attempt[i] = 0;
		for (int r = 0; r < RESTARTS; r++) {
			for (int i = 0; i < N; i++) {
				wait[i] = sim_outage(&rng, &o, &attempt[i],
				                     down_ms[d]);
				attempt[i] = natter__backoff_after_session(
				    attempt[i], UP_MS, o.stable_ms);
			}
			qsort(wait, N, sizeof(wait[0]), cmp_int);
			ck_assert_msg(wait[N / 2] <= 1000,
			              "down %d ms, restart %d: median %d ms",
			              down_ms[d], r + 1, wait[N / 2]);
		}
	}
}
END_TEST

/*
 * A server that stays down: with the defaults a client's attempts thin
 * out (more in the first second than in any later one) down to at most
 * about one a second per client (the cap's mean), never a steady hammer
 * at the first ceiling.
 */
START_TEST(test_defaults_thin_out)
{
	enum { N = 1000, SECS = 60 };
	struct natter_options o;
	struct natter__rng rng;
	long per_sec[SECS] = {0};

	natter_options_init(&o);
	natter__rng_seed(&rng, 5);
	for (int i = 0; i < N; i++) {
		long t = 0;
		for (int attempt = 1;; attempt++) {
			t += natter__backoff_delay(&rng, attempt,
			                           o.reconnect_initial_ms,
			                           o.reconnect_max_ms);
			if (t >= SECS * 1000L)
				break;
			per_sec[t / 1000]++;
		}
	}
	for (int s = 1; s < SECS; s++)
		ck_assert_msg(per_sec[s] < per_sec[0], "second %d: %ld >= %ld",
		              s, per_sec[s], per_sec[0]);
	long late = 0;
	for (int s = 30; s < SECS; s++)
		late += per_sec[s];
	/* the mean delay at the cap is cap/2 */
	double rate = (double)late / (SECS - 30) / N;
	ck_assert_msg(rate <= 1000.0 / (o.reconnect_max_ms / 2.0) * 1.05,
	              "%.2f attempts a second per client", rate);
	ck_assert_int_ge(o.reconnect_max_ms, 4 * o.reconnect_initial_ms);
}
END_TEST

/* 5 lines/s, burst 20: natterd's default flood control, from our side */
START_TEST(test_pacer)
{
	struct natter__pacer p;

	natter__pacer_init(&p, 5, 20, 1000);
	ck_assert_uint_eq(natter__pacer_allow(&p, 1000), 20);
	natter__pacer_take(&p, 20);
	ck_assert_uint_eq(natter__pacer_allow(&p, 1000), 0);
	ck_assert_uint_eq(natter__pacer_next(&p, 1000), 1200);
	ck_assert_uint_eq(natter__pacer_allow(&p, 1199), 0);
	ck_assert_uint_eq(natter__pacer_allow(&p, 1200), 1);
	natter__pacer_take(&p, 1);
	ck_assert_uint_eq(natter__pacer_allow(&p, 2200), 5);
	ck_assert_uint_eq(natter__pacer_allow(&p, 100000), 20); /* capped */
	natter__pacer_take(&p, 100); /* more than there is: empty, no wrap */
	ck_assert_uint_eq(natter__pacer_allow(&p, 100000), 0);

	natter__pacer_init(&p, 0, 1, 0); /* unpaced */
	ck_assert_uint_eq(natter__pacer_allow(&p, 0), SIZE_MAX);
	ck_assert_uint_eq(natter__pacer_next(&p, 7), 7);
}
END_TEST

static Suite *natter_backoff_suite(void)
{
	Suite *s = suite_create("natter_backoff");
	TCase *tc = tcase_create("backoff");

	tcase_add_test(tc, test_ceiling);
	tcase_add_test(tc, test_delay_bounds);
	tcase_add_test(tc, test_jitter_spread);
	tcase_add_test(tc, test_seeds_decorrelate);
	tcase_add_test(tc, test_upto_edges);
	tcase_add_test(tc, test_pacer);
	tcase_add_test(tc, test_after_session);
	tcase_add_test(tc, test_defaults_ride_out_restarts);
	tcase_add_test(tc, test_defaults_thin_out);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_backoff_suite)
