/*
 * How libnatter connects (RFC 8305 Happy Eyeballs), against the real
 * natterd: localhost to a server on only 127.0.0.1 or only ::1, a
 * refusing address skipped at once, a silent one raced and abandoned, the
 * overall connect timeout, family restrictions and unix sockets.
 *
 * This machine's /etc/hosts may lack "::1 localhost" (glibc then returns
 * only 127.0.0.1 for it); the ::1 test then names the addresses a
 * resolver following RFC 6761 would return, through the addresses option,
 * and says so on stderr.
 */
#include <check.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "natter.h"
#include "natter_test.h"
#include "run_suite.h"

static struct nt_daemon d;

static void teardown(void)
{
	nt_daemon_cleanup(&d);
}

static bool localhost_has(int family)
{
	struct addrinfo hints = {0}, *res = NULL;
	bool found = false;

	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo("localhost", NULL, &hints, &res) != 0)
		return false;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		found |= ai->ai_family == family;
	freeaddrinfo(res);
	return found;
}

/* connect with o; the result, the peer it reached and how long it took */
static int connect_with(struct natter_options *o, char *peer, size_t size,
                        int *took_ms)
{
	int err;
	natter_client *c = natter_client_new(o, &err);

	ck_assert_msg(c, "natter_client_new: %s", natter_err_name(err));
	uint64_t t0 = nt_test_now_ms();
	int rc = natter_client_connect(c);
	*took_ms = (int)(nt_test_now_ms() - t0);
	snprintf(peer, size, "%s",
	         rc == 0 ? natter_client_peer(c) : natter_client_reason(c));
	natter_client_free(c);
	return rc;
}

static void expect_peer(const char *peer, const char *host, uint16_t port)
{
	char want[128];

	snprintf(want, sizeof(want), strchr(host, ':') ? "[%s]:%u" : "%s:%u",
	         host, port);
	ck_assert_str_eq(peer, want);
}

/* localhost, looked up for real, reaches natterd on 127.0.0.1 only */
START_TEST(test_localhost_ipv4_only)
{
	struct natter_options o;
	char port[8], peer[256];
	int took;

	ck_assert_msg(localhost_has(AF_INET),
	              "localhost is not 127.0.0.1 here");
	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	uint16_t p = nt_daemon_port(&d, "chat");
	tn_options(&o, "localhost", p, port);
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took), 0);
	expect_peer(peer, "127.0.0.1", p);
}
END_TEST

/* localhost reaches natterd on ::1 only (127.0.0.1 refuses) */
START_TEST(test_localhost_ipv6_only)
{
	static const char *const rfc6761[] = {"::1", "127.0.0.1", NULL};
	struct natter_options o;
	char port[8], peer[256];
	int took;

	tn_start(&d, "ipv6", "::1", 0, 0);
	uint16_t p = nt_daemon_port(&d, "chat");
	tn_options(&o, "localhost", p, port);
	if (!localhost_has(AF_INET6)) {
		fprintf(stderr, "note: localhost has no ::1 in this machine's "
		                "resolver; racing ::1 and 127.0.0.1 by the "
		                "addresses option instead\n");
		o.addresses = rfc6761;
	}
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took), 0);
	expect_peer(peer, "::1", p);
}
END_TEST

/*
 * A refusal starts the next address at once, not after the attempt
 * delay (2 s here): both ways round.
 */
START_TEST(test_refused_skipped)
{
	static const char *const v4_first[] = {"127.0.0.1", "::1", NULL};
	static const char *const v6_first[] = {"::1", "127.0.0.1", NULL};
	struct natter_options o;
	char port[8], peer[256];
	int took;

	tn_start(&d, "ipv6", "::1", 0, 0);
	uint16_t p = nt_daemon_port(&d, "chat");
	tn_options(&o, NULL, p, port);
	o.addresses = v4_first;
	o.attempt_delay_ms = 2000;
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took), 0);
	expect_peer(peer, "::1", p);
	ck_assert_msg(took < 1000, "took %d ms: waited out the delay", took);
	nt_daemon_kill(&d);

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	p = nt_daemon_port(&d, "chat");
	tn_options(&o, NULL, p, port);
	o.addresses = v6_first;
	o.attempt_delay_ms = 2000;
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took), 0);
	expect_peer(peer, "127.0.0.1", p);
	ck_assert_msg(took < 1000, "took %d ms: waited out the delay", took);
}
END_TEST

/*
 * ::1 answers nothing (a full backlog drops the SYN), 127.0.0.1 is
 * natterd: ::1 is tried first, 127.0.0.1 250 ms later wins, and the
 * silent attempt is closed, long before the connect timeout. With
 * PREFER_IPV4 there is no wait.
 */
START_TEST(test_race_silent_address)
{
	static const char *const addrs[] = {"::1", "127.0.0.1", NULL};
	struct natter_options o;
	char port[8], peer[256];
	int took, filler;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	uint16_t p = nt_daemon_port(&d, "chat");
	int hole = tn_blackhole("::1", &p, &filler);
	int base = tn_fd_count();
	tn_options(&o, "localhost", p, port);
	o.addresses = addrs;
	o.connect_timeout_ms = 8000;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	uint64_t t0 = nt_test_now_ms();
	ck_assert_int_eq(natter_client_connect(c), 0);
	took = (int)(nt_test_now_ms() - t0);
	expect_peer(natter_client_peer(c), "127.0.0.1", p);
	ck_assert_msg(took >= 240 && took < 3000,
	              "connected after %d ms, not one attempt delay", took);
	/* epoll, eventfd, the session: the silent attempt is gone */
	ck_assert_int_eq(tn_fd_count(), base + 3);
	natter_client_free(c);
	fprintf(stderr,
	        "happy eyeballs: silent ::1, 127.0.0.1 won after %d ms\n",
	        took);

	/* 127.0.0.1 first: no wait at all, even with a long attempt delay */
	o.family = NATTER_FAMILY_PREFER_IPV4;
	o.attempt_delay_ms = 2000;
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took), 0);
	expect_peer(peer, "127.0.0.1", p);
	ck_assert_msg(took < 1500, "PREFER_IPV4 still took %d ms", took);
	close(filler);
	close(hole);
}
END_TEST

/* every address silent: NATTER_ETIMEDOUT at the connect timeout */
START_TEST(test_connect_timeout)
{
	static const char *const addrs[] = {"::1", "127.0.0.1", NULL};
	struct natter_options o;
	char port[8], peer[256];
	uint16_t p = 0;
	int f4, f6, took;

	int h4 = tn_blackhole("127.0.0.1", &p, &f4);
	int h6 = tn_blackhole("::1", &p, &f6);
	int base = tn_fd_count();
	tn_options(&o, "nowhere", p, port);
	o.addresses = addrs;
	o.attempt_delay_ms = 100;
	o.connect_timeout_ms = 600;
	int rc = connect_with(&o, peer, sizeof(peer), &took);
	ck_assert_msg(rc == NATTER_ETIMEDOUT, "%s", natter_err_name(rc));
	ck_assert_msg(took >= 590 && took < 2600, "gave up after %d ms", took);
	ck_assert_msg(strstr(peer, "timed out"), "reason: %s", peer);
	ck_assert_int_eq(tn_fd_count(), base);
	close(f4);
	close(f6);
	close(h4);
	close(h6);
}
END_TEST

/* family restrictions filter what is raced */
START_TEST(test_family_only)
{
	static const char *const both[] = {"::1", "127.0.0.1", NULL};
	static const char *const v4[] = {"127.0.0.1", NULL};
	struct natter_options o;
	char port[8], peer[256];
	int took;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	uint16_t p = nt_daemon_port(&d, "chat");
	tn_options(&o, NULL, p, port);
	o.addresses = both;
	o.family = NATTER_FAMILY_IPV6_ONLY;
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took),
	                 NATTER_ECONNREFUSED);
	o.family = NATTER_FAMILY_IPV4_ONLY;
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took), 0);
	expect_peer(peer, "127.0.0.1", p);
	o.addresses = v4;
	o.family = NATTER_FAMILY_IPV6_ONLY;
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took),
	                 NATTER_ENOADDR);
}
END_TEST

/*
 * A port is a decimal number 1..65535 and nothing else: getaddrinfo()
 * would take 99999 as 34463, 0 as is and look a name up in
 * /etc/services; none of them is what the caller meant.
 */
START_TEST(test_bad_ports)
{
	static const char *const bad[] = {
	    "0",   "99999", "65536", "abc",  "-1",      "+80", " 80",
	    "80 ", "4000x", "0x50",  "http", "1000000", ""};
	static const char *const good[] = {"1", "80", "4000", "65535", "00080"};
	struct natter_options o;
	int err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		natter_options_init(&o);
		o.host = "127.0.0.1";
		o.port = bad[i];
		err = 0;
		ck_assert_msg(!natter_client_new(&o, &err), "port \"%s\" taken",
		              bad[i]);
		ck_assert_msg(err == NATTER_EINVAL, "port \"%s\": %s", bad[i],
		              natter_err_name(err));
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		natter_options_init(&o);
		o.host = "127.0.0.1";
		o.port = good[i];
		natter_client *c = natter_client_new(&o, &err);
		ck_assert_msg(c, "port \"%s\": %s", good[i],
		              natter_err_name(err));
		natter_client_free(c);
	}
}
END_TEST

/*
 * A host name with no address of the one family allowed is
 * NATTER_ENOADDR, as a numeric address of the other family is: the name
 * itself was found.
 */
START_TEST(test_name_without_family)
{
	struct natter_options o;
	char port[8], peer[256];
	int took;
	bool v4 = localhost_has(AF_INET), v6 = localhost_has(AF_INET6);

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_options(&o, "localhost", nt_daemon_port(&d, "chat"), port);
	if (v4 == v6) {
		fprintf(stderr,
		        "localhost has %s: using a name of one family "
		        "is not possible here\n",
		        v4 ? "both families" : "no address");
		ck_assert(v4); /* a resolver that does not know localhost */
		return;
	}
	o.family = v4 ? NATTER_FAMILY_IPV6_ONLY : NATTER_FAMILY_IPV4_ONLY;
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took),
	                 NATTER_ENOADDR);
	ck_assert_msg(strstr(peer, "no address of the wanted family"), "%s",
	              peer);
	o.family = v4 ? NATTER_FAMILY_IPV4_ONLY : NATTER_FAMILY_IPV6_ONLY;
	ck_assert_int_eq(connect_with(&o, peer, sizeof(peer), &took),
	                 v4 ? 0 : NATTER_ECONNREFUSED);
}
END_TEST

/* a unix socket: the session restores over it like over TCP */
START_TEST(test_unix_socket)
{
	struct natter_options o;
	char line[256];

	nt_daemon_start(&d, NULL,
	                "workers = 1;\n"
	                "listeners = ( { name = \"chat\"; service = \"chat\";"
	                " path = \"@DIR@/chat.sock\"; } );\n");
	natter_options_init(&o);
	o.unix_path = nt_daemon_sock_path(&d, "chat");
	o.nick = "sockpuppet";
	o.room = "pipes";
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	ck_assert_str_eq(natter_client_peer(c), o.unix_path);
	ck_assert_int_eq(natter_client_send(c, "/ping here", 10), 0);
	bool nick = false, room = false, pong = false;
	while (!pong &&
	       natter_client_receive(c, line, sizeof(line), 5000) >= 0) {
		nick |= !strcmp(line, "*** you are now known as sockpuppet");
		room |= !strncmp(line, "*** you are now in #pipes", 25);
		pong |= !strcmp(line, "*** pong here");
	}
	ck_assert(nick && room && pong);
	natter_client_free(c);
}
END_TEST

static Suite *natter_connect_suite(void)
{
	Suite *s = suite_create("natter_connect");
	TCase *tc = tcase_create("happy_eyeballs");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_localhost_ipv4_only);
	tcase_add_test(tc, test_localhost_ipv6_only);
	tcase_add_test(tc, test_refused_skipped);
	tcase_add_test(tc, test_race_silent_address);
	tcase_add_test(tc, test_connect_timeout);
	tcase_add_test(tc, test_family_only);
	tcase_add_test(tc, test_unix_socket);
	tcase_add_test(tc, test_bad_ports);
	tcase_add_test(tc, test_name_without_family);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_connect_suite)
