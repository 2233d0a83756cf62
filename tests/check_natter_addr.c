/*
 * Addresses: the RFC 8305 interleaving and family filters, duplicates,
 * the bound, printable forms; and the error code list they report with.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "natter-int.h"
#include "run_suite.h"

static struct natter__addr mk(const char *ip, unsigned port)
{
	struct natter__addr a;

	memset(&a, 0, sizeof(a));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
		a.len = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
		a.len = sizeof(*in);
	}
	return a;
}

/* order the list ips (comma-separated) and print it back the same way */
static void order(const char *ips, int family, const char *want)
{
	struct natter__addr a[32];
	char list[512], out[512] = "", one[128];
	size_t n = 0;

	snprintf(list, sizeof(list), "%s", ips);
	for (char *s = strtok(list, ","); s; s = strtok(NULL, ","))
		a[n++] = mk(s, 1);
	n = natter__addr_order(a, n, family);
	for (size_t i = 0; i < n; i++) {
		natter__addr_format(&a[i], one, sizeof(one));
		*strrchr(one, ':') = '\0';
		strcat(out, i ? "," : "");
		strcat(out, one);
	}
	ck_assert_msg(!strcmp(out, want), "%s (family %d): %s, want %s", ips,
	              family, out, want);
}

START_TEST(test_interleave)
{
	order("::1,::2,1.0.0.1,1.0.0.2", NATTER_FAMILY_ANY,
	      "[::1],1.0.0.1,[::2],1.0.0.2");
	order("1.0.0.1,1.0.0.2,::1", NATTER_FAMILY_ANY,
	      "1.0.0.1,[::1],1.0.0.2");
	order("::1,::2,::3,1.0.0.1", NATTER_FAMILY_ANY,
	      "[::1],1.0.0.1,[::2],[::3]");
	order("1.0.0.1,::1,1.0.0.2", NATTER_FAMILY_PREFER_IPV6,
	      "[::1],1.0.0.1,1.0.0.2");
	order("::1,1.0.0.1,::2", NATTER_FAMILY_PREFER_IPV4,
	      "1.0.0.1,[::1],[::2]");
	order("::1,1.0.0.1,::2", NATTER_FAMILY_IPV4_ONLY, "1.0.0.1");
	order("::1,1.0.0.1,::2", NATTER_FAMILY_IPV6_ONLY, "[::1],[::2]");
	order("1.0.0.1", NATTER_FAMILY_IPV6_ONLY, "");
	/* /etc/hosts can list an address twice */
	order("127.0.0.1,127.0.0.1,::1,::1", NATTER_FAMILY_ANY,
	      "127.0.0.1,[::1]");
}
END_TEST

/* more than 16 addresses: the first 16, still interleaved */
START_TEST(test_bound)
{
	struct natter__addr a[40];
	char ip[32];

	for (int i = 0; i < 40; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
		a[i] = mk(ip, 1);
	}
	ck_assert_uint_eq(natter__addr_order(a, 40, NATTER_FAMILY_ANY),
	                  NATTER__ADDRS_MAX);
	ck_assert_uint_eq(natter__addr_order(a, 0, NATTER_FAMILY_ANY), 0);
}
END_TEST

START_TEST(test_format)
{
	struct natter__addr a = mk("127.0.0.1", 4000), b = mk("::1", 4000), u;
	char buf[128];
	char longpath[200];

	natter__addr_format(&a, buf, sizeof(buf));
	ck_assert_str_eq(buf, "127.0.0.1:4000");
	natter__addr_format(&b, buf, sizeof(buf));
	ck_assert_str_eq(buf, "[::1]:4000");
	ck_assert_int_eq(natter__addr_unix(&u, "/run/natter/chat.sock"), 0);
	natter__addr_format(&u, buf, sizeof(buf));
	ck_assert_str_eq(buf, "/run/natter/chat.sock");
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	ck_assert_int_eq(natter__addr_unix(&u, longpath), NATTER_EINVAL);
	ck_assert_int_eq(natter__addr_unix(&u, ""), NATTER_EINVAL);
	/* truncation stays inside the buffer */
	natter__addr_format(&b, buf, 5);
	ck_assert_str_eq(buf, "[::1");
}
END_TEST

/* one list: distinct negative codes, each with a message and a name */
START_TEST(test_error_list)
{
	static const int codes[] = {
#define CODE(name, value, msg) NATTER_##name,
	    NATTER_ERRNO_MAP(CODE)
#undef CODE
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);
	char want[64];

	ck_assert_str_eq(natter_strerror(NATTER_OK), "success");
	ck_assert_str_eq(natter_err_name(0), "NATTER_OK");
	ck_assert_str_eq(natter_strerror(-9999), "unknown error");
	ck_assert_str_eq(natter_err_name(1), "NATTER_UNKNOWN");
	ck_assert_str_eq(natter_err_name(NATTER_EFULL), "NATTER_EFULL");
	ck_assert_str_eq(natter_strerror(NATTER_EFULL), "send queue full");
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_lt(codes[i], 0);
		for (size_t j = 0; j < i; j++)
			ck_assert_int_ne(codes[i], codes[j]);
		ck_assert_str_ne(natter_strerror(codes[i]), "unknown error");
		ck_assert_str_ne(natter_err_name(codes[i]), "NATTER_UNKNOWN");
		snprintf(want, sizeof(want), "%s", natter_err_name(codes[i]));
		ck_assert(!strncmp(want, "NATTER_E", 8));
	}
	ck_assert_int_eq(natter__errno_code(ECONNREFUSED), NATTER_ECONNREFUSED);
	ck_assert_int_eq(natter__errno_code(ENOENT), NATTER_ENOENT);
	ck_assert_int_eq(natter__errno_code(ENETUNREACH), NATTER_EUNREACH);
	ck_assert_int_eq(natter__errno_code(EPIPE), NATTER_ECONNRESET);
	ck_assert_int_eq(natter__errno_code(ETIMEDOUT), NATTER_ETIMEDOUT);
	ck_assert_int_eq(natter__errno_code(EBADF), NATTER_EIO);
	ck_assert_str_eq(natter_version(), PACKAGE_VERSION);
	ck_assert_str_eq(natter_version(), NATTER_VERSION);
}
END_TEST

static Suite *natter_addr_suite(void)
{
	Suite *s = suite_create("natter_addr");
	TCase *tc = tcase_create("addr");

	tcase_add_test(tc, test_interleave);
	tcase_add_test(tc, test_bound);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_error_list);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_addr_suite)
