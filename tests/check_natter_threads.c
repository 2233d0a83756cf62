/*
 * libnatter from several threads at once, meant for ThreadSanitizer:
 * senders on their own threads while another drives the client and a
 * third reads its state and counters, and a second driving call refused.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "natter.h"
#include "natter_test.h"
#include "run_suite.h"

#define SENDERS 4
#define PER     500

static struct nt_daemon d;

static void teardown(void)
{
	nt_daemon_cleanup(&d);
}

/* the echoes, checked on the driving thread as they come */
struct tally {
	pthread_mutex_t lock;
	int next[SENDERS]; /* the sequence number expected next */
	int total, bad;
	char first_bad[128];
};

static void on_line(natter_client *c, const struct natter_line *l, void *data)
{
	struct tally *t = data;
	int who, seq;
	char buf[128];

	(void)c;
	snprintf(buf, sizeof(buf), "%.*s", (int)l->raw_len, l->raw);
	pthread_mutex_lock(&t->lock);
	if (sscanf(buf, "t%d %d", &who, &seq) == 2 && who >= 0 &&
	    who < SENDERS && seq == t->next[who]) {
		t->next[who]++;
	} else if (!t->bad++) {
		snprintf(t->first_bad, sizeof(t->first_bad), "%s", buf);
	}
	t->total++;
	pthread_mutex_unlock(&t->lock);
}

struct sender {
	natter_client *c;
	int id, full, failed;
};

static void *send_main(void *arg)
{
	struct sender *s = arg;

	for (int i = 0; i < PER; i++) {
		int rc;
		while ((rc = natter_client_sendf(s->c, "t%d %d", s->id, i)) ==
		       NATTER_EFULL) {
			s->full++;
			nt_sleep_ms(1);
		}
		if (rc)
			s->failed++;
	}
	return NULL;
}

static atomic_bool watching;

/* the calls any thread may make, in a loop, against the others */
static void *watch_main(void *arg)
{
	natter_client *c = arg;
	struct natter_stats st;
	unsigned long long rounds = 0;

	while (atomic_load(&watching)) {
		natter_client_stats(c, &st);
		(void)natter_client_pending(c);
		(void)natter_client_state(c);
		rounds++;
	}
	return (void *)(uintptr_t)rounds;
}

static int total(struct tally *t)
{
	pthread_mutex_lock(&t->lock);
	int n = t->total;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/*
 * Four threads send 500 lines each through a 64-line queue (so EFULL and
 * retries happen) while one thread runs the client and one reads its
 * counters: every line comes back from echo once, each thread's in
 * order, and a second driving call gets NATTER_EBUSY.
 */
START_TEST(test_threads_send)
{
	struct natter_options o;
	struct tally t = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct sender s[SENDERS];
	pthread_t th[SENDERS], watcher;
	struct tn_runner run;
	char port[8];

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "echo"), port);
	o.service = NATTER_SERVICE_ECHO;
	o.queue_lines = 64;
	o.cb.line = on_line;
	o.data = &t;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	tn_run_start(&run, c);
	atomic_store(&watching, true);
	ck_assert_int_eq(pthread_create(&watcher, NULL, watch_main, c), 0);
	for (int i = 0; i < SENDERS; i++) {
		s[i] = (struct sender){.c = c, .id = i};
		ck_assert_int_eq(pthread_create(&th[i], NULL, send_main, &s[i]),
		                 0);
	}
	/* run() holds the client: nobody else may drive it */
	uint64_t end = nt_test_now_ms() + 5000;
	while (natter_client_state(c) != NATTER_STATE_CONNECTED &&
	       nt_test_now_ms() < end)
		nt_sleep_ms(1);
	ck_assert_int_eq(natter_client_process(c), NATTER_EBUSY);

	int full = 0;
	for (int i = 0; i < SENDERS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(s[i].failed, 0);
		full += s[i].full;
	}
	end = nt_test_now_ms() + 20000;
	while (total(&t) < SENDERS * PER && nt_test_now_ms() < end)
		nt_sleep_ms(5);
	atomic_store(&watching, false);
	void *rounds;
	pthread_join(watcher, &rounds);
	ck_assert_int_eq(tn_run_stop(&run), 0);

	ck_assert_msg(t.bad == 0, "%d lines out of order, first: %s", t.bad,
	              t.first_bad);
	ck_assert_int_eq(t.total, SENDERS * PER);
	for (int i = 0; i < SENDERS; i++)
		ck_assert_int_eq(t.next[i], PER);
	struct natter_stats st;
	natter_client_stats(c, &st);
	ck_assert_uint_eq(st.lines_sent, SENDERS * PER);
	ck_assert_int_eq(natter_client_state(c), NATTER_STATE_STOPPED);
	ck_assert_int_eq(natter_client_send(c, "late", 4), NATTER_ECLOSED);
	fprintf(stderr,
	        "threads: %d lines from %d threads, %d EFULL retries, "
	        "%llu watcher rounds\n",
	        SENDERS * PER, SENDERS, full,
	        (unsigned long long)(uintptr_t)rounds);
	natter_client_free(c);
}
END_TEST

/* stop from another thread while the client is between attempts */
START_TEST(test_stop_while_waiting)
{
	struct natter_options o;
	struct tn_rec r;
	struct tn_runner run;
	char port[8];
	int two = 2;
	uint16_t p = 0;
	int hole = nt_listen_tcp("127.0.0.1", &p); /* a port, then none */

	close(hole);
	tn_rec_init(&r, false);
	tn_options(&o, "127.0.0.1", p, port);
	tn_rec_options(&r, &o);
	o.retry_first_connect = true;
	o.reconnect_initial_ms = 5000; /* it will be waiting */
	o.reconnect_max_ms = 5000;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	tn_run_start(&run, c);
	int one = 1;
	ck_assert(tn_wait(&r, NULL, tn_at_least_reconnecting, &one, 5000));
	uint64_t t0 = nt_test_now_ms();
	ck_assert_int_eq(tn_run_stop(&run), 0);
	int took = (int)(nt_test_now_ms() - t0);
	ck_assert_msg(took < 1000, "stop took %d ms", took);
	ck_assert(!tn_wait(&r, NULL, tn_at_least_reconnecting, &two, 10));
	ck_assert_int_eq(natter_client_state(c), NATTER_STATE_STOPPED);
	natter_client_free(c);
	tn_rec_free(&r);
}
END_TEST

static Suite *natter_threads_suite(void)
{
	Suite *s = suite_create("natter_threads");
	TCase *tc = tcase_create("threads");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_threads_send);
	tcase_add_test(tc, test_stop_while_waiting);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_threads_suite)
