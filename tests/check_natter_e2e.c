/*
 * libnatter against the real natterd: the server killed and restarted
 * under a sending client, the outage buffer's bound both ways, a first
 * connect before the server exists, the pong timeout on a stopped server,
 * the event-loop API in a plain poll loop, descriptors after many
 * reconnects, and text holding 0xFF (a telnet IAC) both ways.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
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

/* ---- kill and restart under a sending client ---------------------------- */

#define GATE 8 /* reconnect attempts made while the server is down */

static atomic_int sent;         /* lines the sender has queued */
static atomic_int sent_at_loss; /* ... when the loss was noticed */
static atomic_bool sender_run;

static void note_loss(struct tn_rec *r)
{
	(void)r;
	atomic_store(&sent_at_loss, atomic_load(&sent));
}

struct sender {
	natter_client *c;
	int failed; /* sends that did not return 0 */
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	while (atomic_load(&sender_run)) {
		/* counted before it is queued, so that the count read at the
		 * loss covers every line the old connection could have had */
		int n = atomic_fetch_add(&sent, 1) + 1;
		if (natter_client_sendf(s->c, "seq %d", n) != 0)
			s->failed++;
		nt_sleep_ms(1);
	}
	return NULL;
}

/* "<alice> seq N": N, else -1 */
static int seq_of(const char *line)
{
	int n;

	return sscanf(line, "<alice> seq %d", &n) == 1 ? n : -1;
}

/*
 * The server is SIGKILLed while a thread sends a line every millisecond,
 * stays down for GATE reconnect attempts, and comes back on the same port.
 * The client must wait growing (jittered) delays, re-take its nick and
 * room before anything else, and deliver every line sent after it noticed
 * the loss exactly once and in order; nothing is ever duplicated or
 * reordered.
 */
START_TEST(test_kill_restart_exactly_once)
{
	struct natter_options o;
	struct tn_rec r;
	struct tn_runner run;
	struct sender snd = {0};
	pthread_t st;
	char port[8], line[512];
	static int got[200000];
	int n_got = 0, one = 1, two = 2;

	atomic_store(&sent, 0);
	atomic_store(&sent_at_loss, -1);
	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_rec_init(&r, false);
	r.gate_attempt = GATE;
	r.on_disconnected = note_loss;
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	tn_rec_options(&r, &o);
	o.nick = "alice";
	o.room = "ops";
	o.reconnect_initial_ms = 20;
	o.reconnect_max_ms = 1000;
	o.stable_ms = 60000;
	o.queue_lines = 100000;
	o.queue_bytes = 16 << 20;
	int err;
	natter_client *c = natter_client_new(&o, &err);
	ck_assert_msg(c, "natter_client_new: %s", natter_strerror(err));

	int obs = tn_observer(&d, "watcher", "ops");
	tn_run_start(&run, c);
	ck_assert(tn_wait(&r, NULL, tn_at_least_connected, &one, 10000));
	ck_assert_msg(tn_obs_wait(obs, "*** alice has joined #ops", 5000),
	              "alice never joined #ops");

	snd.c = c;
	atomic_store(&sender_run, true);
	ck_assert_int_eq(pthread_create(&st, NULL, sender_main, &snd), 0);

	/* some lines through the first server */
	while (n_got < 50) {
		ck_assert_int_gt(tn_obs_line(obs, line, sizeof(line), 5000), 0);
		int s = seq_of(line);
		if (s > 0)
			got[n_got++] = s;
	}
	nt_daemon_kill(&d);
	close(obs);
	ck_assert_msg(tn_wait(&r, NULL, tn_at_least_disconnected, &one, 5000),
	              "the loss went unnoticed");
	ck_assert_msg(tn_wait(&r, NULL, tn_at_gate, NULL, 20000),
	              "fewer than %d reconnect attempts", GATE);

	/* the server is back, and the observer in #ops before alice is */
	tn_restart(&d, "ipv4", "127.0.0.1");
	obs = tn_observer(&d, "watcher", "ops");
	int outage_lines = atomic_load(&sent) - atomic_load(&sent_at_loss);
	tn_gate_open(&r);
	ck_assert(tn_wait(&r, NULL, tn_at_least_connected, &two, 10000));
	nt_sleep_ms(200);
	atomic_store(&sender_run, false);
	pthread_join(st, NULL);
	int last = atomic_load(&sent);
	int loss = atomic_load(&sent_at_loss);

	/* alice's join must come first: lines before it would have gone to
	 * #lobby and be missing below */
	bool joined = false;
	while (n_got < (int)(sizeof(got) / sizeof(got[0]))) {
		ssize_t n = tn_obs_line(obs, line, sizeof(line), 10000);
		ck_assert_msg(n >= 0, "observer: %s after seq %d of %d",
		              strerror((int)-n), n_got ? got[n_got - 1] : 0,
		              last);
		if (strstr(line, "*** alice has joined #ops"))
			joined = true;
		int s = seq_of(line);
		if (s < 0)
			continue;
		ck_assert_msg(joined, "line %d came before alice re-joined", s);
		got[n_got++] = s;
		if (s == last)
			break;
	}
	close(obs);
	ck_assert_int_eq(tn_run_stop(&run), 0);

	/* exactly once, in order; everything after the loss arrived */
	int missing = 0;
	for (int i = 1; i < n_got; i++)
		ck_assert_msg(got[i] > got[i - 1], "seq %d after %d: %s",
		              got[i], got[i - 1],
		              got[i] == got[i - 1] ? "duplicate" : "reordered");
	for (int i = 1; i < n_got; i++)
		if (got[i] != got[i - 1] + 1) {
			ck_assert_msg(got[i] - 1 <= loss,
			              "lines %d..%d lost, sent after the loss "
			              "was noticed (at %d)",
			              got[i - 1] + 1, got[i] - 1, loss);
			missing += got[i] - got[i - 1] - 1;
		}
	ck_assert_int_eq(got[n_got - 1], last);
	ck_assert_int_eq(snd.failed, 0);

	/* the session was restored and the delays grew */
	pthread_mutex_lock(&r.lock);
	ck_assert_str_eq(r.nick, "alice");
	ck_assert_str_eq(r.room, "ops");
	ck_assert_int_ge(r.n_rc, GATE);
	int early = 0, late = 0;
	for (int i = 0; i < GATE; i++) {
		int ceiling = 20 << i < 1000 ? 20 << i : 1000;
		ck_assert_int_eq(r.rc[i].attempt, i + 1);
		ck_assert_msg(r.rc[i].delay >= 0 && r.rc[i].delay <= ceiling,
		              "attempt %d: delay %d outside [0, %d]", i + 1,
		              r.rc[i].delay, ceiling);
		/* it waited what it said before trying again */
		if (i + 1 < GATE)
			ck_assert_msg(
			    r.rc[i + 1].t + 2 >=
			        r.rc[i].t + (uint64_t)r.rc[i].delay,
			    "attempt %d came %d ms after a %d ms delay", i + 2,
			    (int)(r.rc[i + 1].t - r.rc[i].t), r.rc[i].delay);
		if (i < 3)
			early += r.rc[i].delay;
		if (i >= 4)
			late += r.rc[i].delay;
	}
	/* attempts 1-3 wait at most 20+40+80 ms; 5-8 draw from ceilings of
	 * 320, 640, 1000, 1000: the chance that they sum to less than 140
	 * is below 1e-4 */
	ck_assert_msg(late > 140 && late > early,
	              "delays did not grow: %d ms then %d ms", early, late);
	fprintf(stderr,
	        "kill/restart: %d lines sent, %d during the outage, %d lost "
	        "before the loss was noticed; delays %d",
	        last, outage_lines, missing, r.rc[0].delay);
	for (int i = 1; i < GATE; i++)
		fprintf(stderr, ",%d", r.rc[i].delay);
	fprintf(stderr, " ms\n");
	pthread_mutex_unlock(&r.lock);
	natter_client_free(c);
	tn_rec_free(&r);
}
END_TEST

/* ---- the attempt count: reset when stable, limited ---------------------- */

/*
 * Sessions the server ends at once (/quit) are not stable: the attempt
 * number keeps growing, 1, 2, 3. One that stays up past stable_ms resets
 * it: the next loss is attempt 1 again. Then, with the server gone and
 * max_attempts 2, two retries and the client gives up with the reason.
 */
START_TEST(test_attempts_reset_and_limit)
{
	struct natter_options o;
	struct tn_rec r;
	char port[8];

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_rec_init(&r, false);
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	tn_rec_options(&r, &o);
	o.reconnect_initial_ms = 10;
	o.reconnect_max_ms = 40;
	o.stable_ms = 600;
	o.max_attempts = 2;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	/* two quick losses: attempts 1 and 2, the most max_attempts allows */
	for (int i = 2; i <= 3; i++) {
		ck_assert_int_eq(natter_client_send(c, "/quit", 5), 0);
		ck_assert(tn_wait(&r, c, tn_at_least_connected, &i, 5000));
	}
	pthread_mutex_lock(&r.lock);
	ck_assert_int_eq(r.n_rc, 2);
	ck_assert_int_eq(r.rc[0].attempt, 1);
	ck_assert_int_eq(r.rc[1].attempt, 2);
	ck_assert_int_eq(r.rc[1].err, NATTER_EOF);
	pthread_mutex_unlock(&r.lock);

	/* stable now: the count starts over */
	int four = 4;
	tn_wait(&r, c, tn_gave_up, NULL, 800); /* drive it for 800 ms */
	ck_assert_int_eq(natter_client_send(c, "/quit", 5), 0);
	ck_assert(tn_wait(&r, c, tn_at_least_connected, &four, 5000));
	pthread_mutex_lock(&r.lock);
	ck_assert_int_eq(r.n_rc, 3);
	ck_assert_msg(r.rc[2].attempt == 1, "attempt %d after a stable session",
	              r.rc[2].attempt);
	pthread_mutex_unlock(&r.lock);

	/* a loss right after: attempt 2 is refused, and a third is one
	 * too many */
	nt_daemon_kill(&d);
	ck_assert(tn_wait(&r, c, tn_gave_up, NULL, 5000));
	pthread_mutex_lock(&r.lock);
	ck_assert_int_eq(r.gave_up, 1);
	ck_assert_int_eq(r.gave_up_err, NATTER_ECONNREFUSED);
	ck_assert_int_eq(r.rc[r.n_rc - 1].attempt, 2);
	pthread_mutex_unlock(&r.lock);
	ck_assert_int_eq(natter_client_state(c), NATTER_STATE_GAVE_UP);
	ck_assert_int_eq(natter_client_process(c), NATTER_ECLOSED);
	ck_assert_int_eq(natter_client_run(c), NATTER_ECONNREFUSED);
	natter_client_free(c);
	tn_rec_free(&r);
}
END_TEST

/* ---- the nick taken while we were away ------------------------------- */

struct taken {
	int calls;
	char nick[64];
};

/* a nick_taken call: counted, and the nick that was refused kept */
static void taken_note(void *data, const char *nick)
{
	struct tn_rec *r = data;
	struct taken *t = r->user;

	pthread_mutex_lock(&r->lock);
	t->calls++;
	snprintf(t->nick, sizeof(t->nick), "%s", nick);
	pthread_mutex_unlock(&r->lock);
}

static const char *offer_alice2(natter_client *c, const char *nick, void *data)
{
	(void)c;
	taken_note(data, nick);
	return "alice2";
}

/*
 * While the server was down someone else took "alice". On reconnect the
 * nick_taken callback is told and offers "alice2", and only then do the
 * lines queued during the outage go out: every one of them is said by
 * alice2, none by the guest nick the server handed out.
 */
START_TEST(test_restore_nick_taken)
{
	struct natter_options o;
	struct tn_rec r;
	struct taken t = {0};
	char port[8], line[512];
	int one = 1, two = 2;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_rec_init(&r, false);
	r.user = &t;
	r.gate_attempt = 1;
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	tn_rec_options(&r, &o);
	o.cb.nick_taken = offer_alice2;
	o.nick = "alice";
	o.room = "ops";
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);

	nt_daemon_kill(&d);
	ck_assert(tn_wait(&r, c, tn_at_least_disconnected, &one, 5000));
	for (int i = 1; i <= 20; i++)
		ck_assert_int_eq(natter_client_sendf(c, "outage %d", i), 0);
	tn_restart(&d, "ipv4", "127.0.0.1");
	int squatter = tn_observer(&d, "alice", "lobby");
	int obs = tn_observer(&d, "watcher", "ops");
	tn_gate_open(&r);
	ck_assert(tn_wait(&r, c, tn_at_least_connected, &two, 10000));

	int next = 1;
	while (next <= 20) {
		ck_assert_int_gt(tn_obs_line(obs, line, sizeof(line), 5000), 0);
		if (!strstr(line, "outage"))
			continue;
		char want[64];
		snprintf(want, sizeof(want), "<alice2> outage %d", next);
		ck_assert_msg(!strcmp(line, want), "got \"%s\", want \"%s\"",
		              line, want);
		next++;
	}
	pthread_mutex_lock(&r.lock);
	ck_assert_int_eq(t.calls, 1);
	ck_assert_str_eq(t.nick, "alice");
	ck_assert_str_eq(r.nick, "alice2");
	ck_assert_str_eq(r.room, "ops");
	pthread_mutex_unlock(&r.lock);
	close(obs);
	close(squatter);
	natter_client_free(c);
	tn_rec_free(&r);
}
END_TEST

/* ---- the outage buffer's bound ------------------------------------------ */

/* receive n lines within the timeout into lines[] */
static int receive_n(natter_client *c, char lines[][64], int n, int timeout_ms)
{
	uint64_t end = nt_test_now_ms() + (uint64_t)timeout_ms;
	int got = 0;

	while (got < n) {
		uint64_t now = nt_test_now_ms();
		if (now >= end)
			break;
		int rc =
		    natter_client_receive(c, lines[got], 64, (int)(end - now));
		if (rc < 0)
			break;
		got++;
	}
	return got;
}

/*
 * Connected to echo, then the server dies: with queue_lines 5, lines
 * 1..8 are sent during the outage. FAIL refuses 6..8 with NATTER_EFULL
 * and delivers 1..5; DROP_OLDEST accepts all and delivers 4..8. Either
 * way nothing else arrives.
 */
static void overflow_case(int policy)
{
	struct natter_options o;
	struct tn_rec r;
	char port[8], lines[16][64], buf[64];
	int one = 1;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_rec_init(&r, false);
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "echo"), port);
	tn_rec_options(&r, &o);
	o.service = NATTER_SERVICE_ECHO;
	o.queue_lines = 5;
	o.overflow = policy;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	ck_assert_int_eq(natter_client_send(c, "before", 6), 0);
	ck_assert_int_eq(natter_client_receive(c, buf, sizeof(buf), 5000), 6);
	ck_assert_str_eq(buf, "before");

	nt_daemon_kill(&d);
	ck_assert(tn_wait(&r, c, tn_at_least_disconnected, &one, 5000));
	for (int i = 1; i <= 8; i++) {
		int rc = natter_client_sendf(c, "out-%d", i);
		if (policy == NATTER_OVERFLOW_FAIL && i > 5)
			ck_assert_msg(rc == NATTER_EFULL, "send %d: %s", i,
			              natter_err_name(rc));
		else
			ck_assert_msg(rc == 0, "send %d: %s", i,
			              natter_err_name(rc));
	}
	ck_assert_uint_eq(natter_client_pending(c), 5);

	tn_restart(&d, "ipv4", "127.0.0.1");
	ck_assert_int_eq(receive_n(c, lines, 5, 10000), 5);
	int first = policy == NATTER_OVERFLOW_FAIL ? 1 : 4;
	for (int i = 0; i < 5; i++) {
		snprintf(buf, sizeof(buf), "out-%d", first + i);
		ck_assert_str_eq(lines[i], buf);
	}
	ck_assert_int_eq(natter_client_receive(c, buf, sizeof(buf), 300),
	                 NATTER_ETIMEDOUT);
	struct natter_stats st;
	natter_client_stats(c, &st);
	ck_assert_uint_eq(st.lines_dropped,
	                  policy == NATTER_OVERFLOW_FAIL ? 0 : 3);
	ck_assert_uint_eq(st.connects, 2);
	ck_assert_uint_eq(natter_client_pending(c), 0);
	natter_client_free(c);
	tn_rec_free(&r);
}

START_TEST(test_overflow_fail)
{
	overflow_case(NATTER_OVERFLOW_FAIL);
}
END_TEST

START_TEST(test_overflow_drop_oldest)
{
	overflow_case(NATTER_OVERFLOW_DROP_OLDEST);
}
END_TEST

/* ---- ending without losing a line --------------------------------------- */

#define CLOSE_LINES 1500

/*
 * natterd reads a flooding client slowly (3000 lines/s here), so most of
 * 1500 messages, each followed by a /ping, wait unread in its socket
 * buffer while pongs keep coming back: whenever the client closes, it has
 * unread input. A plain close would then reset the connection and
 * natterd drop the lines it had not read; natter_client_close() returns
 * only once natterd has acted on them all: the observer has every
 * message and the client every pong, in order.
 */
START_TEST(test_close_delivers_everything)
{
	struct natter_options o;
	char port[8], line[256];

	tn_start_flood(&d, "ipv4", "127.0.0.1", 3000, 20);
	int obs = tn_observer(&d, "watcher", "quiet");
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	o.nick = "chatty";
	o.room = "quiet";
	o.queue_lines = 2 * CLOSE_LINES;
	o.recv_queue_lines = 2 * CLOSE_LINES;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	while (natter_client_receive(c, line, sizeof(line), 0) >= 0)
		; /* the welcome */
	for (int i = 1; i <= CLOSE_LINES; i++) {
		ck_assert_int_eq(natter_client_sendf(c, "line %d", i), 0);
		ck_assert_int_eq(natter_client_sendf(c, "/ping %d", i), 0);
	}
	uint64_t t0 = nt_test_now_ms();
	int rc = natter_client_close(c, 30000);
	int took = (int)(nt_test_now_ms() - t0);
	ck_assert_msg(rc == 0, "close: %s", natter_err_name(rc));
	ck_assert_int_eq(natter_client_state(c), NATTER_STATE_STOPPED);
	ck_assert_int_eq(natter_client_send(c, "late", 4), NATTER_ECLOSED);
	ck_assert_int_eq(natter_client_close(c, 0), NATTER_ECLOSED);
	/* every pong came before the end, and is still there to read */
	for (int i = 1; i <= CLOSE_LINES; i++) {
		char want[64];
		do
			ck_assert_msg(natter_client_receive(
			                  c, line, sizeof(line), 0) >= 0,
			              "pong %d missing", i);
		while (strncmp(line, "*** pong ", 9));
		snprintf(want, sizeof(want), "*** pong %d", i);
		ck_assert_str_eq(line, want);
	}
	natter_client_free(c);

	int next = 1;
	while (next <= CLOSE_LINES) {
		ssize_t n = tn_obs_line(obs, line, sizeof(line), 10000);
		ck_assert_msg(n > 0, "observer: line %d never came", next);
		int seq;
		if (sscanf(line, "<chatty> line %d", &seq) != 1)
			continue;
		ck_assert_int_eq(seq, next);
		next++;
	}
	close(obs);
	fprintf(stderr,
	        "close: %d lines read by a 3000 lines/s natterd, close "
	        "returned after %d ms\n",
	        2 * CLOSE_LINES, took);
}
END_TEST

/* ---- 0xFF in text ------------------------------------------------------- */

#define FFFD "\xef\xbf\xbd"

/*
 * Text relayed from elsewhere may hold 0xFF, which natterd's telnet
 * receiver reads as IAC: IAC IP would end the sender's session, IAC SB
 * swallow every line after it. Sent as IAC IAC it is a data byte, which
 * natterd's text cleaning shows as U+FFFD: every line arrives, in order,
 * over the one session.
 */
START_TEST(test_chat_text_with_iac)
{
	static const char *const lines[] = {"hello \xff\xf4 world", "after ip",
	                                    "x \xff\xfa", "after sb"};
	static const char *const want[] = {
	    "<bridge> hello " FFFD FFFD " world", "<bridge> after ip",
	    "<bridge> x " FFFD FFFD, "<bridge> after sb"};
	struct natter_options o;
	struct natter_stats st;
	char port[8];

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	int obs = tn_observer(&d, "watcher", "relay");
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	o.nick = "bridge";
	o.room = "relay";
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	for (size_t i = 0; i < 4; i++)
		ck_assert_int_eq(
		    natter_client_send(c, lines[i], strlen(lines[i])), 0);
	int rc = natter_client_close(c, 10000);
	ck_assert_msg(rc == 0, "close: %s", natter_err_name(rc));
	natter_client_stats(c, &st);
	ck_assert_uint_eq(st.connects, 1);
	ck_assert_uint_eq(st.disconnects, 0);
	ck_assert_uint_eq(st.lines_sent, 4);
	natter_client_free(c);

	tn_obs_expect(obs, want, 4, 5000);
	close(obs);
}
END_TEST

/*
 * natterd announces its line limit (512 by default) in the greeting; the
 * client, whose own max_line is 8192, then refuses longer lines itself.
 * A line queued before the first connect is checked against max_line
 * only: it goes out, and the server refuses it.
 */
START_TEST(test_server_line_limit)
{
	static char big[601], ok[513], ok_line[530];
	const char *const want[] = {ok_line};
	struct natter_options o;
	char port[8], line[1024];
	bool told = false, refused = false;

	memset(big, 'b', 600);
	memset(ok, 'k', 512);
	snprintf(ok_line, sizeof(ok_line), "<bridge> %s", ok);
	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	int obs = tn_observer(&d, "watcher", "relay");
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	o.nick = "bridge";
	o.room = "relay";
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_send(c, big, 600), 0);
	ck_assert_int_eq(natter_client_connect(c), 0);
	ck_assert_int_eq(natter_client_send(c, big, 513), NATTER_ETOOLONG);
	ck_assert_int_eq(natter_client_sendf(c, "%s", big), NATTER_ETOOLONG);
	ck_assert_int_eq(natter_client_send(c, ok, 512), 0);
	ck_assert_int_eq(natter_client_flush(c, 5000), 0);
	for (int i = 0; i < 50 && !(told && refused); i++) {
		int n = natter_client_receive(c, line, sizeof(line), 5000);
		ck_assert_int_gt(n, 0);
		told |= !strcmp(line, "*** limits: max_line=512");
		refused |= !strncmp(line, "!!! line too long", 17);
	}
	ck_assert_msg(told, "no limits notice");
	ck_assert_msg(refused, "the early long line was not refused");
	int rc = natter_client_close(c, 10000);
	ck_assert_msg(rc == 0, "close: %s", natter_err_name(rc));
	natter_client_free(c);

	tn_obs_expect(obs, want, 1, 5000);
	close(obs);
}
END_TEST

/* echo is no telnet: 0xFF goes and comes back as it is */
START_TEST(test_echo_text_with_iac)
{
	static const char *const lines[] = {"a\xff\xf4"
	                                    "b",
	                                    "c\xff\xfa", "d"};
	struct natter_options o;
	char port[8], buf[64];

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "echo"), port);
	o.service = NATTER_SERVICE_ECHO;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(
		    natter_client_send(c, lines[i], strlen(lines[i])), 0);
	for (size_t i = 0; i < 3; i++) {
		int n = natter_client_receive(c, buf, sizeof(buf), 5000);
		ck_assert_int_eq(n, (int)strlen(lines[i]));
		ck_assert_str_eq(buf, lines[i]);
	}
	natter_client_free(c);
}
END_TEST

/* ---- options from other headers ----------------------------------------- */

/*
 * A program built against an older natter.h whose options ended before
 * nick: natter_options_init() recorded that smaller size, and what lies
 * beyond it in memory is not options at all (garbage here). The library
 * must read none of it: no nick, no room, no callbacks, no data, and the
 * client works against natterd with those defaults.
 */
START_TEST(test_old_layout_caller)
{
	union {
		struct natter_options o;
		unsigned char bytes[sizeof(struct natter_options)];
	} u;
	char port[8], buf[64];
	int err = 0;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	memset(u.bytes, 0xa5, sizeof(u.bytes));
	natter_options_init_size(&u.o, offsetof(struct natter_options, nick));
	ck_assert_uint_eq(u.o.size, offsetof(struct natter_options, nick));
	ck_assert_int_eq(u.o.queue_lines, 1000);
	snprintf(port, sizeof(port), "%u", nt_daemon_port(&d, "echo"));
	u.o.host = "127.0.0.1";
	u.o.port = port;
	u.o.service = NATTER_SERVICE_ECHO;
	u.o.connect_timeout_ms = 5000;
	natter_client *c = natter_client_new(&u.o, &err);
	ck_assert_msg(c, "natter_client_new: %s: %s", natter_err_name(err),
	              natter_options_error());
	ck_assert_str_eq(natter_options_error(), "");
	ck_assert_ptr_null(natter_client_data(c));
	ck_assert_str_eq(natter_client_nick(c), "");
	ck_assert_str_eq(natter_client_room(c), "");
	ck_assert_int_eq(natter_client_connect(c), 0);
	ck_assert_int_eq(natter_client_send(c, "old", 3), 0);
	/* receive works only without a line callback */
	ck_assert_int_eq(natter_client_receive(c, buf, sizeof(buf), 5000), 3);
	ck_assert_str_eq(buf, "old");
	natter_client_free(c);
}
END_TEST

/* ---- the first connect --------------------------------------------------- */

/* a port natterd just had (so nothing listens there now) */
static void free_ports(uint16_t *chat, uint16_t *echo)
{
	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	*chat = nt_daemon_port(&d, "chat");
	*echo = nt_daemon_port(&d, "echo");
	nt_daemon_kill(&d);
}

/*
 * With retry_first_connect, a client started before the server exists
 * keeps trying, and a line it was given meanwhile arrives once the
 * server is up.
 */
START_TEST(test_first_connect_retry)
{
	struct natter_options o;
	struct tn_rec r;
	struct tn_runner run;
	uint16_t chat, echo;
	char port[8];
	int three = 3, one = 1, lines = 1;

	free_ports(&chat, &echo);
	tn_rec_init(&r, true);
	tn_options(&o, "127.0.0.1", echo, port);
	tn_rec_options(&r, &o);
	o.service = NATTER_SERVICE_ECHO;
	o.retry_first_connect = true;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_send(c, "early bird", 10), 0);
	tn_run_start(&run, c);
	ck_assert_msg(tn_wait(&r, NULL, tn_at_least_reconnecting, &three, 5000),
	              "no retries of the first connect");
	pthread_mutex_lock(&r.lock);
	ck_assert_int_eq(r.connected, 0);
	ck_assert_int_eq(r.rc[0].err, NATTER_ECONNREFUSED);
	pthread_mutex_unlock(&r.lock);
	ck_assert_int_ne(natter_client_state(c), NATTER_STATE_CONNECTED);

	tn_start(&d, "ipv4", "127.0.0.1", chat, echo);
	ck_assert(tn_wait(&r, NULL, tn_at_least_connected, &one, 10000));
	ck_assert(tn_wait(&r, NULL, tn_at_least_lines, &lines, 5000));
	ck_assert_int_eq(tn_run_stop(&run), 0);
	ck_assert_str_eq(r.lines[0], "early bird");
	ck_assert_int_eq(r.gave_up, 0);
	natter_client_free(c);
	tn_rec_free(&r);
}
END_TEST

/*
 * Without it, the same first connect fails at once with
 * NATTER_ECONNREFUSED (TCP) or NATTER_ENOENT (a missing unix socket),
 * calls gave_up, never reconnecting, and refuses later sends.
 */
START_TEST(test_first_connect_no_retry)
{
	struct natter_options o;
	struct tn_rec r;
	uint16_t chat, echo;
	char port[8], path[300];

	free_ports(&chat, &echo);
	tn_rec_init(&r, false);
	tn_options(&o, "127.0.0.1", chat, port);
	tn_rec_options(&r, &o);
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	uint64_t t0 = nt_test_now_ms();
	int rc = natter_client_connect(c);
	uint64_t took = nt_test_now_ms() - t0;
	ck_assert_msg(rc == NATTER_ECONNREFUSED, "connect: %s",
	              natter_err_name(rc));
	ck_assert_msg(took < 2000, "took %d ms", (int)took);
	ck_assert_int_eq(r.gave_up, 1);
	ck_assert_int_eq(r.gave_up_err, NATTER_ECONNREFUSED);
	ck_assert_int_eq(r.n_rc, 0);
	ck_assert_int_eq(natter_client_state(c), NATTER_STATE_GAVE_UP);
	ck_assert(strstr(natter_client_reason(c), "connection refused"));
	ck_assert_int_eq(natter_client_send(c, "x", 1), NATTER_ECLOSED);
	ck_assert_int_eq(natter_client_events(c), 0);
	natter_client_free(c);

	snprintf(path, sizeof(path), "%s/nobody.sock", d.dir);
	natter_options_init(&o);
	o.unix_path = path;
	c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	rc = natter_client_connect(c);
	ck_assert_msg(rc == NATTER_ENOENT, "connect: %s", natter_err_name(rc));
	natter_client_free(c);
	tn_rec_free(&r);
}
END_TEST

/* ---- a server that stops answering --------------------------------------- */

static bool saw_pong_line(struct tn_rec *r)
{
	for (int i = 0; i < r->n_lines; i++)
		if (strstr(r->lines[i], "pong natter-"))
			return true;
	return false;
}

static bool reconnect_epong(struct tn_rec *r, void *arg)
{
	(void)arg;
	for (int i = 0; i < r->n_rc; i++)
		if (r->rc[i].err == NATTER_EPONG && r->rc[i].attempt > 1)
			return true;
	return false;
}

/*
 * Pings every 100 ms with a 300 ms pong timeout: while natterd runs the
 * session stays up and the pongs never reach the application; once it is
 * SIGSTOPped (the kernel still accepts and acknowledges, so only the
 * missing pong tells) the loss is reported as NATTER_EPONG in bounded
 * time, reconnects that get no restore answer fail the same way, and
 * after SIGCONT the client is back.
 */
START_TEST(test_pong_timeout_sigstop)
{
	struct natter_options o;
	struct tn_rec r;
	struct tn_runner run;
	char port[8];
	int one = 1, two = 2;

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_rec_init(&r, true);
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	tn_rec_options(&r, &o);
	o.nick = "pinger";
	o.ping_interval_ms = 100;
	o.pong_timeout_ms = 300;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	tn_run_start(&run, c);
	ck_assert(tn_wait(&r, NULL, tn_at_least_connected, &one, 10000));
	nt_sleep_ms(1000);
	struct natter_stats st;
	natter_client_stats(c, &st);
	pthread_mutex_lock(&r.lock);
	ck_assert_int_eq(r.disconnected, 0);
	ck_assert(!saw_pong_line(&r));
	pthread_mutex_unlock(&r.lock);
	ck_assert_msg(st.pings >= 5, "only %llu pings answered in 1 s",
	              st.pings);

	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	uint64_t t0 = nt_test_now_ms();
	ck_assert(tn_wait(&r, NULL, tn_at_least_disconnected, &one, 5000));
	pthread_mutex_lock(&r.lock);
	int took = (int)(r.t_disconnected - t0);
	ck_assert_msg(r.disc_err == NATTER_EPONG, "lost with %s",
	              natter_err_name(r.disc_err));
	ck_assert(strstr(r.reason, "no pong"));
	pthread_mutex_unlock(&r.lock);
	/* at least the pong timeout less one interval, at most both plus
	 * a generous margin for sanitizers */
	ck_assert_msg(took >= 150 && took <= 2400, "detected after %d ms",
	              took);
	ck_assert_msg(tn_wait(&r, NULL, reconnect_epong, NULL, 5000),
	              "a reconnect to the stopped server did not time out");

	kill(d.pid, SIGCONT);
	ck_assert_msg(tn_wait(&r, NULL, tn_at_least_connected, &two, 10000),
	              "not back after SIGCONT");
	ck_assert_int_eq(tn_run_stop(&run), 0);
	fprintf(stderr, "pong timeout: SIGSTOP detected after %d ms\n", took);
	natter_client_free(c);
	tn_rec_free(&r);
}
END_TEST

/* ---- the event-loop API -------------------------------------------------- */

struct loop_state {
	int iterations;
	int fd;
	bool fd_changed;
};

/* one round of the caller's loop: wait as told, then process */
static void loop_round(natter_client *c, struct loop_state *ls, int max_ms)
{
	int t = natter_client_timeout(c);

	if (t < 0 || t > max_ms)
		t = max_ms;
	if (natter_client_fd(c) != ls->fd)
		ls->fd_changed = true;
	struct pollfd p = {.fd = ls->fd,
	                   .events = (short)natter_client_events(c)};
	poll(&p, 1, t);
	natter_client_process(c);
	ls->iterations++;
}

static bool has_line(struct tn_rec *r, const char *s)
{
	pthread_mutex_lock(&r->lock);
	bool found = false;
	for (int i = 0; i < r->n_lines && !found; i++)
		found = strcmp(r->lines[i], s) == 0;
	pthread_mutex_unlock(&r->lock);
	return found;
}

static int count(struct tn_rec *r, int *field)
{
	pthread_mutex_lock(&r->lock);
	int n = *field;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/*
 * A caller's own poll() loop: natter_client_fd() once, events and
 * timeout each round. Echo through, the server killed, a line queued in
 * the outage, the server back: the line arrives, the fd never changed,
 * and the loop slept instead of spinning.
 */
START_TEST(test_event_loop)
{
	struct natter_options o;
	struct tn_rec r;
	struct loop_state ls = {0};
	char port[8];

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_rec_init(&r, true);
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "echo"), port);
	tn_rec_options(&r, &o);
	o.service = NATTER_SERVICE_ECHO;
	o.reconnect_initial_ms = 100;
	o.reconnect_max_ms = 400;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ls.fd = natter_client_fd(c);
	ck_assert_int_ge(ls.fd, 0);
	ck_assert_int_eq(natter_client_start(c), 0);
	ck_assert_int_eq(natter_client_events(c), POLLIN);

	uint64_t end = nt_test_now_ms() + 10000;
	ck_assert_int_eq(natter_client_send(c, "first", 5), 0);
	while (!has_line(&r, "first") && nt_test_now_ms() < end)
		loop_round(c, &ls, 100);
	ck_assert(has_line(&r, "first"));
	ck_assert_int_eq(natter_client_state(c), NATTER_STATE_CONNECTED);

	nt_daemon_kill(&d);
	while (count(&r, &r.disconnected) < 1 && nt_test_now_ms() < end)
		loop_round(c, &ls, 100);
	ck_assert_int_eq(count(&r, &r.disconnected), 1);
	ck_assert_int_eq(natter_client_send(c, "second", 6), 0);
	/* out of the server's way for a second: the loop must sleep */
	int before = ls.iterations;
	uint64_t idle_end = nt_test_now_ms() + 1000;
	while (nt_test_now_ms() < idle_end)
		loop_round(c, &ls, 1000);
	int idle_rounds = ls.iterations - before;
	ck_assert_msg(idle_rounds < 200, "%d rounds in an idle second",
	              idle_rounds);

	tn_restart(&d, "ipv4", "127.0.0.1");
	end = nt_test_now_ms() + 10000;
	while (!has_line(&r, "second") && nt_test_now_ms() < end)
		loop_round(c, &ls, 100);
	ck_assert(has_line(&r, "second"));
	ck_assert(!ls.fd_changed);
	ck_assert_int_eq(count(&r, &r.connected), 2);
	fprintf(stderr, "event loop: %d rounds in all, %d in an idle second\n",
	        ls.iterations, idle_rounds);
	natter_client_free(c);
	tn_rec_free(&r);
}
END_TEST

/* ---- descriptors --------------------------------------------------------- */

#define CYCLES 200

/*
 * 200 sessions, each ended by the server (/quit), each reconnect racing
 * ::1 (refused: natterd listens on 127.0.0.1 only) against 127.0.0.1:
 * afterwards the process has exactly the descriptors it had after the
 * first connect, every one the library opened is close-on-exec, and
 * natter_client_free() gives them all back.
 */
START_TEST(test_no_fd_leak)
{
	static const char *const addrs[] = {"::1", "127.0.0.1", NULL};
	unsigned char before[TN_FD_MAX];
	struct natter_options o;
	struct tn_rec r;
	char port[8];

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	int base = tn_fd_count();
	tn_fd_snapshot(before);
	tn_rec_init(&r, false);
	tn_options(&o, NULL, nt_daemon_port(&d, "chat"), port);
	tn_rec_options(&r, &o);
	o.addresses = addrs;
	o.nick = "leaky";
	o.reconnect_initial_ms = 1;
	o.reconnect_max_ms = 5;
	o.stable_ms = 0;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(tn_fd_count(), base + 2); /* epoll + eventfd */
	ck_assert_int_eq(natter_client_connect(c), 0);
	int up = tn_fd_count();
	ck_assert_int_eq(up, base + 3);

	uint64_t t0 = nt_test_now_ms();
	for (int i = 2; i <= CYCLES + 1; i++) {
		ck_assert_int_eq(natter_client_send(c, "/quit", 5), 0);
		ck_assert_msg(tn_wait(&r, c, tn_at_least_connected, &i, 10000),
		              "cycle %d did not reconnect", i);
	}
	int took = (int)(nt_test_now_ms() - t0);
	ck_assert_int_eq(tn_fd_count(), up);
	ck_assert_int_eq(tn_fd_new_without_cloexec(before), 0);
	struct natter_stats st;
	natter_client_stats(c, &st);
	ck_assert_uint_eq(st.connects, CYCLES + 1);
	ck_assert_uint_eq(st.disconnects, CYCLES);
	ck_assert_str_eq(r.nick, "leaky");
	natter_client_free(c);
	ck_assert_int_eq(tn_fd_count(), base);
	fprintf(stderr, "fd leak: %d reconnects in %d ms (%.2f ms each)\n",
	        CYCLES, took, (double)took / CYCLES);
	tn_rec_free(&r);
}
END_TEST

static const char *offer_shorty(natter_client *c, const char *nick, void *data)
{
	(void)c;
	taken_note(data, nick);
	return "shorty";
}

/* 30 bytes: valid for the library (32), too long for natterd (24) */
#define LONG_NICK "abcdefghijklmnopqrstuvwxyz0123"

/*
 * A nick the server refuses, for being too long there or taken, is not
 * passed over in silence: the reason gives the server's words,
 * natter_client_current_nick() the guest nick it gave, and the
 * nick_taken callback may offer another, which is then taken.
 */
START_TEST(test_restore_nick_refused)
{
	struct natter_options o;
	struct tn_rec r;
	struct taken t = {0};
	char port[8];

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	o.nick = LONG_NICK;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(natter_client_current_nick(c), "");
	ck_assert_int_eq(natter_client_connect(c), 0);
	ck_assert_msg(!strncmp(natter_client_current_nick(c), "guest", 5),
	              "current nick %s", natter_client_current_nick(c));
	ck_assert_str_eq(natter_client_nick(c), LONG_NICK);
	ck_assert_msg(strstr(natter_client_reason(c), "invalid nick"), "%s",
	              natter_client_reason(c));
	natter_client_free(c);

	tn_rec_init(&r, false);
	r.user = &t;
	tn_rec_options(&r, &o);
	o.cb.nick_taken = offer_shorty;
	c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	pthread_mutex_lock(&r.lock);
	ck_assert_int_eq(t.calls, 1);
	ck_assert_str_eq(t.nick, LONG_NICK);
	pthread_mutex_unlock(&r.lock);
	ck_assert_str_eq(natter_client_current_nick(c), "shorty");
	ck_assert_str_eq(natter_client_nick(c), "shorty");
	natter_client_free(c);
	tn_rec_free(&r);

	/* taken, and no callback to ask */
	int squatter = tn_observer(&d, "alice", "lobby");
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	o.nick = "alice";
	c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	ck_assert_msg(!strncmp(natter_client_current_nick(c), "guest", 5),
	              "current nick %s", natter_client_current_nick(c));
	ck_assert_str_eq(natter_client_nick(c), "alice");
	ck_assert_msg(strstr(natter_client_reason(c), "nick alice is taken"),
	              "%s", natter_client_reason(c));
	natter_client_free(c);
	close(squatter);
}
END_TEST

/* ---- the blocking calls' one rule --------------------------------------- */

static char rbuf[64];

static int call_connect(natter_client *c, int ms)
{
	(void)ms;
	return natter_client_connect(c);
}

static int call_run(natter_client *c, int ms)
{
	(void)ms;
	return natter_client_run(c);
}

static int call_run_for(natter_client *c, int ms)
{
	return natter_client_run_for(c, ms);
}

static int call_flush(natter_client *c, int ms)
{
	return natter_client_flush(c, ms);
}

static int call_flush_server(natter_client *c, int ms)
{
	return natter_client_flush_server(c, ms);
}

static int call_close(natter_client *c, int ms)
{
	return natter_client_close(c, ms);
}

static int call_receive(natter_client *c, int ms)
{
	return natter_client_receive(c, rbuf, sizeof(rbuf), ms);
}

static const struct blocking_call {
	const char *name;
	int (*fn)(natter_client *c, int ms);
	int on_stop; /* when natter_client_stop() ends it while it runs */
} calls[] = {
    {"connect", call_connect, NATTER_ECLOSED},
    {"run", call_run, 0},
    {"run_for", call_run_for, 0},
    {"flush", call_flush, NATTER_ECLOSED},
    {"flush_server", call_flush_server, NATTER_ECLOSED},
    {"close", call_close, NATTER_ECLOSED},
    {"receive", call_receive, NATTER_ECLOSED},
};
#define N_CALLS (sizeof(calls) / sizeof(calls[0]))

/* a client of a port nobody listens on, with lines queued */
static natter_client *refused_client(uint16_t port, bool retry, int lines)
{
	struct natter_options o;
	char portbuf[8];

	tn_options(&o, "127.0.0.1", port, portbuf);
	o.retry_first_connect = retry;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	for (int i = 0; i < lines; i++)
		ck_assert_int_eq(natter_client_sendf(c, "unsent %d", i), 0);
	return c;
}

/*
 * Every blocking call, on a client stopped before it (just stopped, or
 * stopped and processed), on one that gave up, with an empty queue and
 * with lines queued: NATTER_ECLOSED when stopped, the error it gave up
 * with when it gave up, at once, and never 0.
 */
START_TEST(test_blocking_rule_after)
{
	uint16_t chat, echo;

	free_ports(&chat, &echo);
	for (size_t i = 0; i < N_CALLS; i++) {
		for (int lines = 0; lines <= 2; lines += 2) {
			for (int how = 0; how < 3; how++) {
				natter_client *c =
				    refused_client(chat, how < 2, lines);
				int want = NATTER_ECLOSED;
				if (how == 2) {
					ck_assert_int_eq(
					    natter_client_connect(c),
					    NATTER_ECONNREFUSED);
					want = NATTER_ECONNREFUSED;
				} else {
					natter_client_stop(c);
					if (how == 1)
						natter_client_process(c);
				}
				uint64_t t0 = nt_test_now_ms();
				int rc = calls[i].fn(c, 5000);
				int took = (int)(nt_test_now_ms() - t0);
				ck_assert_msg(
				    rc == want,
				    "%s, %d lines, case %d: %s, want %s",
				    calls[i].name, lines, how,
				    natter_err_name(rc), natter_err_name(want));
				ck_assert_msg(took < 1000, "%s took %d ms",
				              calls[i].name, took);
				ck_assert_uint_eq(natter_client_pending(c),
				                  (size_t)lines);
				natter_client_free(c);
			}
		}
	}
}
END_TEST

struct stopper {
	pthread_t t;
	natter_client *c;
	int after_ms;
};

static void *stopper_main(void *arg)
{
	struct stopper *s = arg;

	nt_sleep_ms(s->after_ms);
	natter_client_stop(s->c);
	return NULL;
}

/*
 * Every blocking call on a client that keeps retrying a refused port
 * with a line queued, stopped from another thread while the call waits:
 * it returns soon after, with NATTER_ECLOSED, except run and run_for,
 * which were waiting for just that: 0.
 */
START_TEST(test_blocking_rule_during)
{
	uint16_t chat, echo;

	free_ports(&chat, &echo);
	for (size_t i = 0; i < N_CALLS; i++) {
		natter_client *c = refused_client(chat, true, 1);
		struct stopper s = {.c = c, .after_ms = 200};
		ck_assert_int_eq(pthread_create(&s.t, NULL, stopper_main, &s),
		                 0);
		uint64_t t0 = nt_test_now_ms();
		int rc = calls[i].fn(c, 20000);
		int took = (int)(nt_test_now_ms() - t0);
		pthread_join(s.t, NULL);
		ck_assert_msg(rc == calls[i].on_stop, "%s: %s, want %s",
		              calls[i].name, natter_err_name(rc),
		              natter_err_name(calls[i].on_stop));
		ck_assert_msg(took >= 150 && took < 5000, "%s took %d ms",
		              calls[i].name, took);
		ck_assert_int_eq(natter_client_state(c), NATTER_STATE_STOPPED);
		natter_client_free(c);
	}
}
END_TEST

/*
 * A client retrying a refused port with 3 lines queued, then stopped:
 * natter_client_close() cannot deliver them and must not say 0.
 */
START_TEST(test_close_with_lines_unsent)
{
	struct tn_rec r;
	struct natter_options o;
	uint16_t chat, echo;
	char port[8];
	int two = 2;

	free_ports(&chat, &echo);
	tn_rec_init(&r, false);
	tn_options(&o, "127.0.0.1", chat, port);
	tn_rec_options(&r, &o);
	o.retry_first_connect = true;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(natter_client_sendf(c, "line %d", i), 0);
	ck_assert(tn_wait(&r, c, tn_at_least_reconnecting, &two, 5000));
	natter_client_stop(c);
	ck_assert_int_eq(natter_client_process(c), NATTER_ECLOSED);
	int rc = natter_client_close(c, 100);
	ck_assert_msg(rc == NATTER_ECLOSED, "close: %s", natter_err_name(rc));
	ck_assert_uint_eq(natter_client_pending(c), 3);
	natter_client_free(c);
	tn_rec_free(&r);
}
END_TEST

/*
 * natter_client_run_for() returns NATTER_ETIMEDOUT after about its time,
 * with the session still up and serving, and 0 soon after a stop.
 */
START_TEST(test_run_for)
{
	struct natter_options o;
	char port[8];

	tn_start(&d, "ipv4", "127.0.0.1", 0, 0);
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "echo"), port);
	o.service = NATTER_SERVICE_ECHO;
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	ck_assert_int_eq(natter_client_send(c, "tick", 4), 0);
	uint64_t t0 = nt_test_now_ms();
	int rc = natter_client_run_for(c, 300);
	int took = (int)(nt_test_now_ms() - t0);
	ck_assert_msg(rc == NATTER_ETIMEDOUT, "%s", natter_err_name(rc));
	ck_assert_msg(took >= 300 && took < 1500, "took %d ms", took);
	ck_assert_int_eq(natter_client_state(c), NATTER_STATE_CONNECTED);
	/* it drove the client meanwhile: the echo is in */
	ck_assert_int_eq(natter_client_receive(c, rbuf, sizeof(rbuf), 0), 4);
	ck_assert_str_eq(rbuf, "tick");

	struct stopper s = {.c = c, .after_ms = 100};
	ck_assert_int_eq(pthread_create(&s.t, NULL, stopper_main, &s), 0);
	t0 = nt_test_now_ms();
	rc = natter_client_run_for(c, 10000);
	took = (int)(nt_test_now_ms() - t0);
	pthread_join(s.t, NULL);
	ck_assert_msg(rc == 0, "%s", natter_err_name(rc));
	ck_assert_msg(took < 2000, "took %d ms", took);
	ck_assert_int_eq(natter_client_run_for(c, 10), NATTER_ECLOSED);
	natter_client_free(c);
}
END_TEST

#define SYNC_LINES 200
#define SYNC_RATE  400 /* lines/s natterd reads from a flooding client */

/*
 * natterd reads a flooding client at 400 lines/s: natter_client_flush()
 * returns once 200 lines are in the socket, natter_client_flush_server()
 * only once natterd has read and relayed them (about half a second
 * later), and a second member of the room then gets every one without
 * further waiting on the sender. The ping's answer is not handed to the
 * caller. On echo every line is echoed back, in the receive queue, by
 * the time it returns.
 */
START_TEST(test_flush_server)
{
	struct natter_options o;
	char port[8], line[256];

	tn_start_flood(&d, "ipv4", "127.0.0.1", SYNC_RATE, 20);
	int obs = tn_observer(&d, "watcher", "sync");
	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "chat"), port);
	o.nick = "syncer";
	o.room = "sync";
	natter_client *c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(natter_client_connect(c), 0);
	for (int i = 1; i <= SYNC_LINES; i++)
		ck_assert_int_eq(natter_client_sendf(c, "sync %d", i), 0);
	uint64_t t0 = nt_test_now_ms();
	ck_assert_int_eq(natter_client_flush(c, 10000), 0);
	int flushed = (int)(nt_test_now_ms() - t0);
	ck_assert_int_eq(natter_client_flush_server(c, 20000), 0);
	int synced = (int)(nt_test_now_ms() - t0);
	int read_ms = (SYNC_LINES - 20) * 1000 / SYNC_RATE;
	ck_assert_msg(synced >= read_ms * 8 / 10,
	              "flush_server returned after %d ms, natterd needs %d "
	              "to read the lines",
	              synced, read_ms);
	ck_assert_uint_eq(natter_client_pending(c), 0);
	for (int next = 1; next <= SYNC_LINES;) {
		ssize_t n = tn_obs_line(obs, line, sizeof(line), 1000);
		ck_assert_msg(n > 0, "observer: line %d not there", next);
		int seq;
		if (sscanf(line, "<syncer> sync %d", &seq) != 1)
			continue;
		ck_assert_int_eq(seq, next);
		next++;
	}
	while (natter_client_receive(c, line, sizeof(line), 0) >= 0)
		ck_assert_msg(!strstr(line, "natter-sync"), "%s", line);
	natter_client_free(c);
	close(obs);
	fprintf(stderr,
	        "flush_server: %d lines to a %d lines/s natterd: flush %d ms, "
	        "flush_server %d ms\n",
	        SYNC_LINES, SYNC_RATE, flushed, synced);

	tn_options(&o, "127.0.0.1", nt_daemon_port(&d, "echo"), port);
	o.service = NATTER_SERVICE_ECHO;
	c = natter_client_new(&o, NULL);
	ck_assert_ptr_nonnull(c);
	for (int i = 1; i <= SYNC_LINES; i++)
		ck_assert_int_eq(natter_client_sendf(c, "echo %d", i), 0);
	ck_assert_int_eq(natter_client_flush_server(c, 10000), 0);
	for (int i = 1; i <= SYNC_LINES; i++) {
		char want[32];
		snprintf(want, sizeof(want), "echo %d", i);
		ck_assert_int_gt(
		    natter_client_receive(c, line, sizeof(line), 0), 0);
		ck_assert_str_eq(line, want);
	}
	ck_assert_int_eq(natter_client_receive(c, line, sizeof(line), 0),
	                 NATTER_ETIMEDOUT);
	natter_client_free(c);
}
END_TEST

static Suite *natter_e2e_suite(void)
{
	Suite *s = suite_create("natter_e2e");
	TCase *tc;

	tc = tcase_create("reconnect");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_kill_restart_exactly_once);
	tcase_add_test(tc, test_restore_nick_taken);
	tcase_add_test(tc, test_restore_nick_refused);
	tcase_add_test(tc, test_attempts_reset_and_limit);
	tcase_add_test(tc, test_pong_timeout_sigstop);
	tcase_add_test(tc, test_no_fd_leak);
	suite_add_tcase(s, tc);

	tc = tcase_create("outage");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_close_delivers_everything);
	tcase_add_test(tc, test_overflow_fail);
	tcase_add_test(tc, test_overflow_drop_oldest);
	tcase_add_test(tc, test_first_connect_retry);
	tcase_add_test(tc, test_first_connect_no_retry);
	tcase_add_test(tc, test_chat_text_with_iac);
	tcase_add_test(tc, test_echo_text_with_iac);
	tcase_add_test(tc, test_server_line_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("options");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_old_layout_caller);
	suite_add_tcase(s, tc);

	tc = tcase_create("blocking");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_blocking_rule_after);
	tcase_add_test(tc, test_blocking_rule_during);
	tcase_add_test(tc, test_close_with_lines_unsent);
	tcase_add_test(tc, test_run_for);
	tcase_add_test(tc, test_flush_server);
	suite_add_tcase(s, tc);

	tc = tcase_create("event_loop");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_event_loop);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(natter_e2e_suite)
