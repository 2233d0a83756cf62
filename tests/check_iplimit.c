/*
 * Per-address connection counting: the limit, release, IPv4-mapped
 * addresses counted as IPv4, unix peers never limited, and many addresses
 * (table growth) without mixing their counts.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "iplimit.h"
#include "run_suite.h"

static struct nt_peer peer4(const char *ip)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(9)};
	struct nt_peer p;

	inet_pton(AF_INET, ip, &in.sin_addr);
	nt_peer_from_sockaddr(&p, (struct sockaddr *)&in, sizeof(in));
	return p;
}

static struct nt_peer peer6(const char *ip)
{
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct nt_peer p;

	inet_pton(AF_INET6, ip, &in6.sin6_addr);
	nt_peer_from_sockaddr(&p, (struct sockaddr *)&in6, sizeof(in6));
	return p;
}

START_TEST(test_limit_and_release)
{
	struct nt_iplimit *t = nt_iplimit_new(2);
	struct nt_peer a = peer4("127.0.0.1"), b = peer4("127.0.0.2");

	ck_assert(nt_iplimit_take(t, &a));
	ck_assert(nt_iplimit_take(t, &a));
	ck_assert(!nt_iplimit_take(t, &a));
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 2);
	/* another address has its own count */
	ck_assert(nt_iplimit_take(t, &b));
	nt_iplimit_release(t, &a);
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 1);
	ck_assert(nt_iplimit_take(t, &a));
	nt_iplimit_release(t, &a);
	nt_iplimit_release(t, &a);
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 0);
	ck_assert_uint_eq(nt_iplimit_count(t, &b), 1);
	nt_iplimit_free(t);
}
END_TEST

START_TEST(test_mapped_is_ipv4)
{
	struct nt_iplimit *t = nt_iplimit_new(1);
	struct nt_peer a = peer4("127.0.0.1"), m = peer6("::ffff:127.0.0.1");
	struct nt_peer v6 = peer6("::1");

	ck_assert_int_eq(m.family, AF_INET);
	ck_assert(nt_iplimit_take(t, &a));
	/* the same client over a dual-stack listener is still one client */
	ck_assert(!nt_iplimit_take(t, &m));
	ck_assert(nt_iplimit_take(t, &v6));
	ck_assert(!nt_iplimit_take(t, &v6));
	nt_iplimit_free(t);
}
END_TEST

START_TEST(test_unlimited_and_unix)
{
	struct nt_iplimit *t0 = nt_iplimit_new(0);
	struct nt_iplimit *t1 = nt_iplimit_new(1);
	struct nt_peer a = peer4("10.0.0.1"), u = {.family = AF_UNIX};

	for (int i = 0; i < 1000; i++)
		ck_assert(nt_iplimit_take(t0, &a));
	for (int i = 0; i < 10; i++)
		ck_assert(nt_iplimit_take(t1, &u));
	ck_assert_uint_eq(nt_iplimit_count(t1, &u), 0);
	nt_iplimit_free(t0);
	nt_iplimit_free(t1);
}
END_TEST

START_TEST(test_many_addresses)
{
	struct nt_iplimit *t = nt_iplimit_new(3);
	char ip[32];

	/* enough addresses to make the table grow several times */
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		struct nt_peer p = peer4(ip);
		for (int k = 0; k < 3; k++)
			ck_assert(nt_iplimit_take(t, &p));
		ck_assert(!nt_iplimit_take(t, &p));
	}
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		struct nt_peer p = peer4(ip);
		ck_assert_uint_eq(nt_iplimit_count(t, &p), 3);
		nt_iplimit_release(t, &p);
		ck_assert_uint_eq(nt_iplimit_count(t, &p), 2);
	}
	nt_iplimit_free(t);
}
END_TEST

Suite *iplimit_suite(void);
Suite *iplimit_suite(void)
{
	Suite *s = suite_create("iplimit");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_limit_and_release);
	tcase_add_test(tc, test_mapped_is_ipv4);
	tcase_add_test(tc, test_unlimited_and_unix);
	tcase_add_test(tc, test_many_addresses);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(iplimit_suite)
