/*
 * Per-address connection counting: the limit, release, IPv4-mapped
 * addresses counted as IPv4, IPv6 counted per prefix, unix peers never
 * limited, release going by what was counted whatever the settings are
 * since, and many addresses (table growth) without mixing their counts.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "iplimit.h"
#include "run_suite.h"

#define N_CONNS 16

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

/* one connection from p: its own copy, as admission gives each one */
static bool take(struct nt_iplimit *t, const struct nt_peer *p,
                 struct nt_peer *conn)
{
	*conn = *p;
	return nt_iplimit_take(t, conn);
}

START_TEST(test_limit_and_release)
{
	struct nt_iplimit *t = nt_iplimit_new(2, 64);
	struct nt_peer a = peer4("127.0.0.1"), b = peer4("127.0.0.2");
	struct nt_peer c[N_CONNS];

	ck_assert(take(t, &a, &c[0]));
	ck_assert(take(t, &a, &c[1]));
	ck_assert(!take(t, &a, &c[2]));
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 2);
	/* another address has its own count */
	ck_assert(take(t, &b, &c[3]));
	nt_iplimit_release(t, &c[0]);
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 1);
	ck_assert(take(t, &a, &c[0]));
	/* a refused one was not counted, so it gives nothing back */
	nt_iplimit_release(t, &c[2]);
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 2);
	nt_iplimit_release(t, &c[0]);
	nt_iplimit_release(t, &c[1]);
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 0);
	ck_assert_uint_eq(nt_iplimit_count(t, &b), 1);
	nt_iplimit_free(t);
}
END_TEST

START_TEST(test_mapped_is_ipv4)
{
	struct nt_iplimit *t = nt_iplimit_new(1, 64);
	struct nt_peer a = peer4("127.0.0.1"), m = peer6("::ffff:127.0.0.1");
	struct nt_peer m2 = peer6("::ffff:127.0.0.2"), v6 = peer6("::1");
	struct nt_peer c[N_CONNS];

	ck_assert_int_eq(m.family, AF_INET);
	ck_assert(take(t, &a, &c[0]));
	/* the same client over a dual-stack listener is still one client */
	ck_assert(!take(t, &m, &c[1]));
	/* and IPv4 is per address, never per IPv6 prefix */
	ck_assert(take(t, &m2, &c[2]));
	ck_assert(take(t, &v6, &c[3]));
	ck_assert(!take(t, &v6, &c[4]));
	nt_iplimit_release(t, &c[0]);
	ck_assert(take(t, &m, &c[1]));
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 1);
	nt_iplimit_free(t);
}
END_TEST

/* addresses of one /64 share a count; another /64 has its own */
START_TEST(test_ipv6_prefix)
{
	struct nt_iplimit *t = nt_iplimit_new(2, 64);
	struct nt_peer a = peer6("2001:db8:1:2::1");
	struct nt_peer b = peer6("2001:db8:1:2:ffff:ffff:ffff:fffe");
	struct nt_peer other = peer6("2001:db8:1:3::1");
	struct nt_peer c[N_CONNS];

	ck_assert(take(t, &a, &c[0]));
	ck_assert(take(t, &b, &c[1]));
	ck_assert(!take(t, &a, &c[2]));
	ck_assert(!take(t, &b, &c[2]));
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 2);
	ck_assert_uint_eq(nt_iplimit_count(t, &b), 2);
	ck_assert(take(t, &other, &c[3]));
	ck_assert(take(t, &other, &c[4]));
	ck_assert_uint_eq(nt_iplimit_count(t, &other), 2);
	nt_iplimit_release(t, &c[0]);
	ck_assert_uint_eq(nt_iplimit_count(t, &b), 1);
	ck_assert(take(t, &b, &c[0]));
	nt_iplimit_free(t);
}
END_TEST

/* a prefix that ends inside a byte, and 128: every address alone */
START_TEST(test_ipv6_prefix_lengths)
{
	struct nt_iplimit *t56 = nt_iplimit_new(1, 56);
	struct nt_iplimit *t128 = nt_iplimit_new(1, 128);
	struct nt_iplimit *t1 = nt_iplimit_new(1, 1);
	struct nt_peer c[N_CONNS];

	struct nt_peer x = peer6("2001:db8:0:ff00::1");
	struct nt_peer same = peer6("2001:db8:0:ff7f:1::");
	struct nt_peer diff = peer6("2001:db8:0:fe00::1");
	ck_assert(take(t56, &x, &c[0]));
	ck_assert(!take(t56, &same, &c[1]));
	ck_assert(take(t56, &diff, &c[1]));

	struct nt_peer y = peer6("2001:db8::1"), y2 = peer6("2001:db8::2");
	ck_assert(take(t128, &y, &c[2]));
	ck_assert(!take(t128, &y, &c[3]));
	ck_assert(take(t128, &y2, &c[3]));

	/* /1: the two halves of the address space */
	struct nt_peer lo = peer6("::2"), lo2 = peer6("7fff::1");
	struct nt_peer hi = peer6("8000::1");
	ck_assert(take(t1, &lo, &c[4]));
	ck_assert(!take(t1, &lo2, &c[5]));
	ck_assert(take(t1, &hi, &c[5]));
	nt_iplimit_free(t56);
	nt_iplimit_free(t128);
	nt_iplimit_free(t1);
}
END_TEST

/*
 * A connection admitted with no limit was not counted, so its end takes
 * nothing away from those counted after a limit was set: three uncounted,
 * then the limit 2, two counted, the three end, and still no third.
 */
START_TEST(test_uncounted_release)
{
	struct nt_iplimit *t = nt_iplimit_new(0, 64);
	struct nt_peer a = peer4("192.0.2.1"), c[N_CONNS];

	for (int i = 0; i < 3; i++)
		ck_assert(take(t, &a, &c[i]));
	nt_iplimit_set(t, 2, 64);
	ck_assert(take(t, &a, &c[3]));
	ck_assert(take(t, &a, &c[4]));
	for (int i = 0; i < 3; i++)
		nt_iplimit_release(t, &c[i]);
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 2);
	ck_assert(!take(t, &a, &c[5]));
	nt_iplimit_release(t, &c[3]);
	ck_assert(take(t, &a, &c[5]));
	nt_iplimit_free(t);
}
END_TEST

/*
 * A new prefix applies to new connections; one counted under the old
 * prefix is released from that count, not from the new prefix's.
 */
START_TEST(test_prefix_change)
{
	struct nt_iplimit *t = nt_iplimit_new(2, 64);
	struct nt_peer a = peer6("2001:db8:0:1::1");
	struct nt_peer b = peer6("2001:db8:0:2::1"), c[N_CONNS];

	ck_assert(take(t, &a, &c[0]));
	ck_assert(take(t, &a, &c[1]));
	nt_iplimit_set(t, 2, 48);
	/* a and b share the /48 now; a's two count under their /64 */
	ck_assert(take(t, &b, &c[2]));
	ck_assert(take(t, &a, &c[3]));
	ck_assert(!take(t, &b, &c[4]));
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 2);
	nt_iplimit_release(t, &c[0]);
	nt_iplimit_release(t, &c[1]);
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 2);
	ck_assert(!take(t, &b, &c[4]));
	nt_iplimit_release(t, &c[2]);
	ck_assert_uint_eq(nt_iplimit_count(t, &b), 1);
	/* back to /64: the /48 count is released from the /48 */
	nt_iplimit_set(t, 2, 64);
	nt_iplimit_release(t, &c[3]);
	nt_iplimit_set(t, 2, 48);
	ck_assert_uint_eq(nt_iplimit_count(t, &a), 0);
	nt_iplimit_free(t);
}
END_TEST

START_TEST(test_unlimited_and_unix)
{
	struct nt_iplimit *t0 = nt_iplimit_new(0, 64);
	struct nt_iplimit *t1 = nt_iplimit_new(1, 64);
	struct nt_peer a = peer4("10.0.0.1"), u = {.family = AF_UNIX}, c;

	for (int i = 0; i < 1000; i++) {
		ck_assert(take(t0, &a, &c));
		ck_assert_uint_eq(c.counted, 0);
	}
	for (int i = 0; i < 10; i++)
		ck_assert(take(t1, &u, &c));
	ck_assert_uint_eq(nt_iplimit_count(t1, &u), 0);
	nt_iplimit_free(t0);
	nt_iplimit_free(t1);
}
END_TEST

#define N_ADDRS 5000

START_TEST(test_many_addresses)
{
	static struct nt_peer first[N_ADDRS];
	struct nt_iplimit *t = nt_iplimit_new(3, 64);
	char ip[32];

	/* enough addresses to make the table grow several times */
	for (int i = 0; i < N_ADDRS; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		struct nt_peer p = peer4(ip), c;
		ck_assert(take(t, &p, &first[i]));
		for (int k = 1; k < 3; k++)
			ck_assert(take(t, &p, &c));
		ck_assert(!take(t, &p, &c));
	}
	for (int i = 0; i < N_ADDRS; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		struct nt_peer p = peer4(ip);
		ck_assert_uint_eq(nt_iplimit_count(t, &p), 3);
		nt_iplimit_release(t, &first[i]);
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
	tcase_add_test(tc, test_ipv6_prefix);
	tcase_add_test(tc, test_ipv6_prefix_lengths);
	tcase_add_test(tc, test_uncounted_release);
	tcase_add_test(tc, test_prefix_change);
	tcase_add_test(tc, test_unlimited_and_unix);
	tcase_add_test(tc, test_many_addresses);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(iplimit_suite)
