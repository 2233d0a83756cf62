/*
 * The string-keyed intrusive map: a key is found while linked and not after
 * its removal, a duplicate is refused and leaves the first in place, the
 * table grows without losing or mixing records, and iteration visits every
 * record exactly once.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "run_suite.h"

#define N_RECS 20000

struct rec {
	struct nt_map_node node;
	char key[16];
	unsigned id;
	unsigned seen;
};

static struct rec *recs_new(unsigned n)
{
	struct rec *r = calloc(n, sizeof(*r));

	ck_assert_ptr_nonnull(r);
	for (unsigned i = 0; i < n; i++) {
		snprintf(r[i].key, sizeof(r[i].key), "k%u", i);
		r[i].id = i;
	}
	return r;
}

static struct rec *rec_of(struct nt_map_node *n)
{
	return n ? nt_container_of(n, struct rec, node) : NULL;
}

START_TEST(test_put_get_del)
{
	struct nt_map m;
	struct rec *r = recs_new(3);

	nt_map_init(&m);
	ck_assert_ptr_null(nt_map_get(&m, "k0")); /* no table yet */
	for (unsigned i = 0; i < 3; i++)
		ck_assert_int_eq(nt_map_put(&m, &r[i].node, r[i].key), 0);
	ck_assert_uint_eq(m.n, 3);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_ptr_eq(rec_of(nt_map_get(&m, r[i].key)), &r[i]);
	ck_assert_ptr_null(nt_map_get(&m, "k3"));
	ck_assert_ptr_null(nt_map_get(&m, "K0")); /* as given: no folding */
	nt_map_del(&m, &r[1].node);
	ck_assert_uint_eq(m.n, 2);
	ck_assert_ptr_null(nt_map_get(&m, "k1"));
	ck_assert_ptr_eq(rec_of(nt_map_get(&m, "k0")), &r[0]);
	ck_assert_ptr_eq(rec_of(nt_map_get(&m, "k2")), &r[2]);
	/* back in after its removal */
	ck_assert_int_eq(nt_map_put(&m, &r[1].node, r[1].key), 0);
	ck_assert_ptr_eq(rec_of(nt_map_get(&m, "k1")), &r[1]);
	nt_map_free(&m);
	ck_assert_uint_eq(m.n, 0);
	ck_assert_ptr_null(nt_map_get(&m, "k0"));
	free(r);
}
END_TEST

START_TEST(test_duplicate_refused)
{
	struct nt_map m;
	struct rec *r = recs_new(2);

	strcpy(r[1].key, r[0].key);
	nt_map_init(&m);
	ck_assert_int_eq(nt_map_put(&m, &r[0].node, r[0].key), 0);
	ck_assert_int_eq(nt_map_put(&m, &r[1].node, r[1].key), -EEXIST);
	ck_assert_uint_eq(m.n, 1);
	ck_assert_ptr_eq(rec_of(nt_map_get(&m, r[0].key)), &r[0]);
	nt_map_free(&m);
	free(r);
}
END_TEST

START_TEST(test_growth_and_iteration)
{
	struct nt_map m;
	struct rec *r = recs_new(N_RECS);
	size_t it;

	nt_map_init(&m);
	for (unsigned i = 0; i < N_RECS; i++)
		ck_assert_int_eq(nt_map_put(&m, &r[i].node, r[i].key), 0);
	ck_assert_uint_eq(m.n, N_RECS);
	/* the table grew: chains stay short on average */
	ck_assert_uint_ge(m.n_buckets, N_RECS / 4);
	for (unsigned i = 0; i < N_RECS; i++)
		ck_assert_uint_eq(rec_of(nt_map_get(&m, r[i].key))->id, i);
	/* every other one out, then each record seen exactly once */
	for (unsigned i = 0; i < N_RECS; i += 2)
		nt_map_del(&m, &r[i].node);
	ck_assert_uint_eq(m.n, N_RECS / 2);
	unsigned visited = 0;
	for (struct nt_map_node *n = nt_map_first(&m, &it); n;
	     n = nt_map_next(&m, n, &it)) {
		rec_of(n)->seen++;
		visited++;
	}
	ck_assert_uint_eq(visited, N_RECS / 2);
	for (unsigned i = 0; i < N_RECS; i++)
		ck_assert_uint_eq(r[i].seen, i % 2);
	nt_map_free(&m);
	free(r);
}
END_TEST

START_TEST(test_empty_iteration)
{
	struct nt_map m;
	size_t it;

	nt_map_init(&m);
	ck_assert_ptr_null(nt_map_first(&m, &it));
	nt_map_free(&m);
}
END_TEST

Suite *map_suite(void);
Suite *map_suite(void)
{
	Suite *s = suite_create("map");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_put_get_del);
	tcase_add_test(tc, test_duplicate_refused);
	tcase_add_test(tc, test_growth_and_iteration);
	tcase_add_test(tc, test_empty_iteration);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(map_suite)
