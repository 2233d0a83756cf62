/*
 * The deadline heap alone: items that record the slot the heap gives them,
 * checked after every operation against the heap's own array and, over a
 * long random run, against a brute-force scan for the minimum.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>

#include "heap.h"
#include "run_suite.h"

#define ITEMS 512

struct item {
	uint32_t idx; /* what the heap last told us */
	bool in;      /* whether the test put it in */
	uint64_t key; /* the key the test gave it */
};

static struct nt_heap h;
static struct item items[ITEMS];

static void moved(void *p, uint32_t idx)
{
	((struct item *)p)->idx = idx;
}

static void setup(void)
{
	nt_heap_init(&h, moved);
	for (size_t i = 0; i < ITEMS; i++)
		items[i] = (struct item){.idx = NT_HEAP_NONE};
}

static void teardown(void)
{
	nt_heap_destroy(&h);
}

/* every item knows its slot, holds its key there, and the order holds */
static void check_all(void)
{
	uint32_t in = 0;
	uint64_t min = UINT64_MAX;

	for (size_t i = 0; i < ITEMS; i++) {
		struct item *it = &items[i];
		if (!it->in) {
			ck_assert_uint_eq(it->idx, NT_HEAP_NONE);
			continue;
		}
		in++;
		ck_assert_uint_lt(it->idx, nt_heap_len(&h));
		ck_assert_ptr_eq(h.e[it->idx].item, it);
		ck_assert_uint_eq(nt_heap_key(&h, it->idx), it->key);
		if (it->key < min)
			min = it->key;
	}
	ck_assert_uint_eq(nt_heap_len(&h), in);
	ck_assert_uint_eq(nt_heap_min_key(&h), min);
	for (uint32_t i = 1; i < nt_heap_len(&h); i++)
		ck_assert_uint_le(h.e[(i - 1) / 2].key, h.e[i].key);
	if (in)
		ck_assert_uint_eq(((struct item *)nt_heap_min(&h))->key, min);
	else
		ck_assert_ptr_null(nt_heap_min(&h));
}

static void put(size_t i, uint64_t key)
{
	ck_assert_int_eq(nt_heap_insert(&h, &items[i], key), 0);
	items[i].in = true;
	items[i].key = key;
}

static void rekey(size_t i, uint64_t key)
{
	nt_heap_update(&h, items[i].idx, key);
	items[i].key = key;
}

static void take(size_t i)
{
	nt_heap_remove(&h, items[i].idx);
	items[i].in = false;
}

START_TEST(test_empty)
{
	ck_assert_uint_eq(nt_heap_len(&h), 0);
	ck_assert_uint_eq(nt_heap_min_key(&h), UINT64_MAX);
	ck_assert_ptr_null(nt_heap_min(&h));
}
END_TEST

/* keys in descending order: each new one is the minimum */
START_TEST(test_insert)
{
	for (size_t i = 0; i < 10; i++) {
		put(i, 100 - i);
		check_all();
		ck_assert_ptr_eq(nt_heap_min(&h), &items[i]);
	}
}
END_TEST

START_TEST(test_update)
{
	for (size_t i = 0; i < 10; i++)
		put(i, 10 * (i + 1));
	/* a middle one becomes the earliest, then the latest */
	rekey(5, 1);
	check_all();
	ck_assert_ptr_eq(nt_heap_min(&h), &items[5]);
	rekey(5, 1000);
	check_all();
	ck_assert_ptr_eq(nt_heap_min(&h), &items[0]);
	/* the minimum moves later past everything */
	rekey(0, 2000);
	check_all();
	ck_assert_ptr_eq(nt_heap_min(&h), &items[1]);
	/* the same key again moves nothing */
	uint32_t at = items[3].idx;
	rekey(3, items[3].key);
	ck_assert_uint_eq(items[3].idx, at);
	check_all();
}
END_TEST

START_TEST(test_remove)
{
	for (size_t i = 0; i < 15; i++)
		put(i, (i * 7) % 15);
	/* from the middle, the last slot, the top, until empty */
	take(7);
	check_all();
	for (size_t i = 0; i < 15; i++)
		if (items[i].in && items[i].idx == nt_heap_len(&h) - 1) {
			take(i);
			break;
		}
	check_all();
	while (nt_heap_len(&h)) {
		take((size_t)((struct item *)nt_heap_min(&h) - items));
		check_all();
	}
	ck_assert_uint_eq(nt_heap_min_key(&h), UINT64_MAX);
}
END_TEST

/* past its first array the heap doubles and keeps every item in place */
START_TEST(test_growth)
{
	for (size_t i = 0; i < ITEMS; i++) {
		put(i, (i * 7919) % 1009);
		if (nt_heap_len(&h) == h.cap)
			check_all();
	}
	check_all();
	ck_assert_uint_ge(h.cap, ITEMS);
}
END_TEST

/* equal keys are no special case */
START_TEST(test_ties)
{
	for (size_t i = 0; i < 20; i++)
		put(i, 5);
	take(3);
	rekey(10, 5);
	check_all();
	ck_assert_uint_eq(nt_heap_min_key(&h), 5);
}
END_TEST

/* a random mix of every operation, the heap checked after each */
START_TEST(test_random)
{
	unsigned seed = 12345;

	for (int op = 0; op < 10000; op++) {
		size_t i = (size_t)rand_r(&seed) % ITEMS;
		uint64_t key = (uint64_t)rand_r(&seed) % 5000;
		if (!items[i].in)
			put(i, key);
		else if (rand_r(&seed) % 3)
			rekey(i, key);
		else
			take(i);
		check_all();
	}
}
END_TEST

static Suite *heap_suite(void)
{
	Suite *s = suite_create("heap");
	TCase *tc = tcase_create("heap");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_insert);
	tcase_add_test(tc, test_update);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_growth);
	tcase_add_test(tc, test_ties);
	tcase_add_test(tc, test_random);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(heap_suite)
