/*
 * A connection's output queue at its bounds, on a real connection: one end
 * of a socketpair, on a worker whose loop never runs, so nothing is ever
 * flushed and what is queued stays queued. Then a running worker's watches
 * and timers that are no connection's.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "conn.h"
#include "nt_test.h"
#include "run_suite.h"
#include "worker.h"

/* what the queue charges each segment on top of its bytes */
#define SEG sizeof(struct nt_oseg)
#define MAX 4096 /* the smallest max_output natterd.conf(5) allows */

static struct nt_worker w;
static struct nt_admit acc; /* only counts the connection's close */
static struct nt_conn *c;
static int peer = -1;
static unsigned overflows;

static void setup(void)
{
	char text[256];
	struct nt_config *cfg = NULL;
	struct nt_config_diag diag = {0};
	int sv[2];

	snprintf(text, sizeof(text),
	         "limits = { max_output = %d; };\n"
	         "listeners = ( { name = \"echo\"; service = \"echo\"; "
	         "family = \"unix\"; path = \"/nonexistent/echo\"; } );\n",
	         MAX);
	ck_assert_int_eq(nt_config_load_string(text, "test", &cfg, &diag), 0);
	ck_assert_int_eq(nt_worker_init(&w, 0, cfg, &acc, NULL), 0);
	ck_assert_int_eq(socketpair(AF_UNIX,
	                            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                            0, sv),
	                 0);
	peer = sv[1];
	struct nt_peer p = {.family = AF_UNIX};
	c = nt_conn_new(&w, sv[0], &cfg->listeners[0], cfg, &p, NULL);
	ck_assert_ptr_nonnull(c);
	nt_config_unref(cfg); /* the worker holds its own reference */
	overflows = 0;
}

static void teardown(void)
{
	nt_conn_close(c, "test over");
	nt_conn_free(c);
	close(peer);
	nt_worker_destroy(&w);
}

/* a buffer of n bytes, all filled */
static struct nt_buf *filled(size_t n)
{
	struct nt_buf *b = nt_buf_new(n);

	ck_assert_ptr_nonnull(b);
	memset(b->data, 'x', n);
	b->len = (uint32_t)n;
	return b;
}

/* one-byte segments that do not touch: each costs 1 + SEG, and the one
 * whose byte would take the queue past max_output is refused; echo has no
 * overflow hook, so the connection is closed for it */
START_TEST(test_segments_bound)
{
	struct nt_buf *b = filled(MAX);
	size_t fit = (MAX - 1) / (1 + SEG) + 1, i;
	int rc = 0;

	for (i = 0; i < MAX / 2 && (rc = nt_conn_send(c, b, 2 * i, 1)) == 0;
	     i++)
		ck_assert_uint_le(nt_conn_queued(c), MAX + SEG);
	ck_assert_int_eq(rc, -ENOBUFS);
	ck_assert_uint_eq(i, fit);
	ck_assert_uint_eq(nt_conn_queued(c), fit * (1 + SEG));
	ck_assert_uint_eq(c->out.count, fit);
	ck_assert(nt_conn_closed(c));
	ck_assert_str_eq(c->close_reason, "output overflow");
	/* and nothing more once it is closing */
	ck_assert_int_eq(nt_conn_send(c, b, MAX - 1, 1), -EPIPE);
	nt_buf_unref(b);
}
END_TEST

/* a tail that grows within its buffer is held to the same bound */
START_TEST(test_tail_bound)
{
	struct nt_buf *b = filled(2 * MAX);

	ck_assert_int_eq(nt_conn_send(c, b, 0, 1000), 0);
	ck_assert_int_eq(nt_conn_send(c, b, 1000, MAX - SEG - 1000), 0);
	ck_assert_uint_eq(c->out.count, 1);
	ck_assert_uint_eq(nt_conn_queued(c), MAX);
	ck_assert_uint_eq(nt_conn_room(c), 0);
	ck_assert_int_eq(nt_conn_send(c, b, MAX - SEG, 1), -ENOBUFS);
	ck_assert_uint_eq(nt_conn_queued(c), MAX);
	ck_assert(nt_conn_closed(c));
	nt_buf_unref(b);
}
END_TEST

/* a span past the buffer's end is refused and nothing happens */
START_TEST(test_span)
{
	struct nt_buf *b = filled(100);

	ck_assert_int_eq(nt_conn_send(c, b, 90, 11), -EINVAL);
	ck_assert_int_eq(nt_conn_send(c, b, 101, 1), -EINVAL);
	ck_assert_int_eq(nt_conn_send(c, b, 1, SIZE_MAX), -EINVAL);
	ck_assert_uint_eq(nt_conn_queued(c), 0);
	ck_assert(!nt_conn_closed(c));
	ck_assert_int_eq(nt_conn_send(c, b, 90, 10), 0);
	nt_buf_unref(b);
}
END_TEST

/* room is what one more send may queue, and it is all accepted */
START_TEST(test_room)
{
	struct nt_buf *b = filled(2 * MAX);

	ck_assert_uint_eq(nt_conn_room(c), MAX);
	ck_assert_int_eq(nt_conn_send(c, b, 0, 100), 0);
	ck_assert_uint_eq(nt_conn_room(c), MAX - SEG - 100);
	ck_assert_int_eq(nt_conn_send(c, b, 200, nt_conn_room(c)), 0);
	ck_assert_uint_eq(nt_conn_room(c), 0);
	ck_assert_uint_eq(nt_conn_queued(c), MAX + SEG);
	ck_assert(!nt_conn_closed(c));
	nt_buf_unref(b);
}
END_TEST

/* a line of max_output bytes fits an empty queue (the config sizes
 * max_output by the longest line a room can hear), one byte more not */
START_TEST(test_line_fits)
{
	struct nt_buf *b = filled(MAX + 1);

	ck_assert_int_eq(nt_conn_send(c, b, 0, MAX + 1), -ENOBUFS);
	ck_assert_uint_eq(nt_conn_queued(c), 0);
	nt_buf_unref(b);
	teardown();
	setup();
	b = filled(MAX);
	ck_assert_int_eq(nt_conn_send(c, b, 0, MAX), 0);
	ck_assert_uint_eq(nt_conn_queued(c), MAX + SEG);
	ck_assert(!nt_conn_closed(c));
	nt_buf_unref(b);
}
END_TEST

/* three-byte answers in a row share buffers: about their bytes, not a
 * segment each; and the bound counts them like anything else */
START_TEST(test_copies_share)
{
	size_t n = 0;
	int rc;

	for (int i = 0; i < 80; i++)
		ck_assert_int_eq(nt_conn_send_copy(c, "\xff\xfc\x06", 3), 0);
	ck_assert_uint_eq(c->out.count, 1);
	ck_assert_uint_eq(nt_conn_queued(c), 80 * 3 + SEG);
	/* a buffer someone else holds is not written after its end, room
	 * or not */
	struct nt_buf *b = filled(100);
	b->len = 10;
	ck_assert_int_eq(nt_conn_send(c, b, 0, 10), 0);
	ck_assert_int_eq(nt_conn_send_copy(c, "abc", 3), 0);
	ck_assert_uint_eq(c->out.count, 3);
	ck_assert_uint_eq(b->len, 10);
	ck_assert_mem_eq(b->data + 10, "xxx", 3);
	nt_buf_unref(b);
	while ((rc = nt_conn_send_copy(c, "\xff\xfc\x06", 3)) == 0)
		ck_assert_uint_lt(++n, MAX);
	ck_assert_int_eq(rc, -ENOBUFS);
	ck_assert_uint_le(nt_conn_queued(c), MAX + SEG);
	ck_assert_uint_gt(nt_conn_queued(c) + 3, MAX);
}
END_TEST

static void count_overflow(struct nt_conn *conn)
{
	(void)conn;
	overflows++;
}

/* the service decides what passing the bound means: here, nothing */
START_TEST(test_overflow_hook)
{
	static const struct nt_service_ops ops = {.overflow = count_overflow};
	const struct nt_service_ops *was = c->ops;
	struct nt_buf *b = filled(2 * MAX);

	c->ops = &ops;
	ck_assert_int_eq(nt_conn_send(c, b, 0, MAX - SEG), 0);
	ck_assert_int_eq(nt_conn_send(c, b, MAX, 1), -ENOBUFS);
	ck_assert_int_eq(nt_conn_send_copy(c, "x", 1), -ENOBUFS);
	ck_assert_uint_eq(overflows, 2);
	ck_assert(!nt_conn_closed(c));
	ck_assert_uint_eq(nt_conn_queued(c), MAX);
	c->ops = was;
	nt_buf_unref(b);
}
END_TEST

/* ---- a running worker watching a pipe, as a client library would ---- */

/* ---- the state machine ---- */

#define OPEN   NT_CONN_OPEN
#define FIN    NT_CONN_FINISHING
#define DRAIN  NT_CONN_DRAINING
#define HAND   NT_CONN_HANDED_OVER
#define LING   NT_CONN_LINGERING
#define CLOSED NT_CONN_CLOSED

/* conn.h's list of moves, written out again: every one allowed, every
 * other pair of states refused */
START_TEST(test_state_table)
{
	static const bool legal[NT_CONN_STATES][NT_CONN_STATES] = {
	    [OPEN] =
	        {[FIN] = true, [DRAIN] = true, [HAND] = true, [CLOSED] = true},
	    [FIN] = {[HAND] = true, [LING] = true, [CLOSED] = true},
	    [DRAIN] =
	        {[FIN] = true, [HAND] = true, [LING] = true, [CLOSED] = true},
	    [HAND] = {[CLOSED] = true},
	    [LING] = {[CLOSED] = true},
	};
	unsigned allowed = 0;

	for (int from = 0; from < NT_CONN_STATES; from++)
		for (int to = 0; to < NT_CONN_STATES; to++) {
			ck_assert_msg(nt_conn_state_ok(from, to) ==
			                  legal[from][to],
			              "%s -> %s", nt_conn_state_name(from),
			              nt_conn_state_name(to));
			allowed += legal[from][to];
		}
	ck_assert_uint_eq(allowed, 13);
	/* a sample spelt out: no way back, nothing after closed */
	ck_assert(!nt_conn_state_ok(LING, OPEN));
	ck_assert(!nt_conn_state_ok(FIN, OPEN));
	ck_assert(!nt_conn_state_ok(FIN, DRAIN));
	ck_assert(!nt_conn_state_ok(HAND, LING));
	ck_assert(!nt_conn_state_ok(OPEN, LING));
	ck_assert(!nt_conn_state_ok(CLOSED, CLOSED));
	ck_assert(!nt_conn_state_ok(OPEN, NT_CONN_STATES));
	ck_assert(!nt_conn_state_ok(NT_CONN_STATES, CLOSED));
}
END_TEST

/* what the peer has read so far: up to size - 1 bytes, or -1 at its EOF,
 * 0 when nothing is there yet */
static ssize_t peer_read(char *buf, size_t size)
{
	ssize_t n = read(peer, buf, size - 1);

	if (n == 0)
		return -1;
	if (n < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		return 0;
	}
	buf[n] = '\0';
	return n;
}

/* a finish waits for the queue, then our FIN goes out and we linger */
START_TEST(test_finish_after_output)
{
	char buf[64];

	ck_assert_int_eq(nt_conn_send_copy(c, "bye\n", 4), 0);
	nt_conn_finish(c, NT_FINISH_OUTPUT, "quit");
	ck_assert_int_eq(c->state, FIN);
	/* a shutdown now changes neither the state nor the reason */
	nt_conn_finish(c, NT_FINISH_SHUTDOWN, "server shutting down");
	ck_assert_int_eq(c->state, FIN);
	ck_assert_str_eq(c->close_reason, "quit");
	ck_assert_int_eq(peer_read(buf, sizeof(buf)), 0);
	nt_conn_flush(c);
	ck_assert_int_eq(c->state, LING);
	ck_assert_int_eq(peer_read(buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "bye\n");
	ck_assert_int_eq(peer_read(buf, sizeof(buf)), -1);
	ck_assert_int_eq(nt_conn_send_copy(c, "x", 1), -EPIPE);
	nt_conn_finish(c, NT_FINISH_NOTICE, "idle timeout");
	ck_assert_int_eq(c->state, LING);
}
END_TEST

/* the peer's EOF: nothing queued and no FIN of its to wait for */
START_TEST(test_peer_eof)
{
	char buf[16];

	shutdown(peer, SHUT_WR);
	ck_assert_int_eq(nt_conn_read(c, buf, sizeof(buf)), 0);
	ck_assert(nt_conn_closed(c));
	ck_assert_str_eq(c->close_reason, "client closed");
}
END_TEST

/* a finish while draining takes over; it lingers once drained */
START_TEST(test_drain_then_finish)
{
	char buf[64];

	ck_assert_int_eq(nt_conn_send_copy(c, "hi\n", 3), 0);
	nt_conn_finish(c, NT_FINISH_SHUTDOWN, "server shutting down");
	ck_assert_int_eq(c->state, DRAIN);
	ck_assert_str_eq(c->close_reason, "server shutting down");
	nt_conn_finish(c, NT_FINISH_OUTPUT, "quit");
	ck_assert_int_eq(c->state, FIN);
	ck_assert_str_eq(c->close_reason, "quit");
	nt_conn_flush(c);
	ck_assert_int_eq(c->state, LING);
	ck_assert_int_eq(peer_read(buf, sizeof(buf)), 3);
	ck_assert_int_eq(peer_read(buf, sizeof(buf)), -1);
}
END_TEST

/* handed over: the output goes, then we let go without a FIN */
START_TEST(test_handover)
{
	char buf[64];

	ck_assert_int_eq(nt_conn_send_copy(c, "hi\n", 3), 0);
	nt_conn_finish(c, NT_FINISH_OUTPUT, "quit");
	nt_conn_finish(c, NT_FINISH_HANDOVER,
	               "handed over to the next natterd");
	ck_assert_int_eq(c->state, HAND);
	nt_conn_finish(c, NT_FINISH_OUTPUT, "quit");
	ck_assert_int_eq(c->state, HAND);
	ck_assert(!nt_conn_handed_over(c));
	nt_conn_flush(c);
	ck_assert(nt_conn_closed(c));
	ck_assert(nt_conn_handed_over(c));
	ck_assert_str_eq(c->close_reason, "handed over to the next natterd");
	ck_assert_int_eq(peer_read(buf, sizeof(buf)), 3);
	ck_assert_int_eq(peer_read(buf, sizeof(buf)), 0); /* no FIN */
}
END_TEST

/* a notice the peer does not take at once: closed, not lingering */
START_TEST(test_notice_unread)
{
	struct nt_buf *b = filled(MAX / 2);
	int sndbuf = 1;

	/* a socket buffer far smaller than what is queued */
	setsockopt(c->watch.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));
	for (int i = 0; i < 64 && nt_conn_write_now(c, b->data, b->len) > 0;
	     i++)
		;
	ck_assert_int_eq(nt_conn_send(c, b, 0, b->len), 0);
	nt_conn_finish(c, NT_FINISH_NOTICE, "idle timeout");
	ck_assert(nt_conn_closed(c));
	ck_assert_str_eq(c->close_reason, "idle timeout");
	nt_buf_unref(b);
}
END_TEST

/* the notice all out: it lingers like any finished session */
START_TEST(test_notice_sent)
{
	ck_assert_int_eq(nt_conn_send_copy(c, "timeout\n", 8), 0);
	nt_conn_finish(c, NT_FINISH_NOTICE, "idle timeout");
	ck_assert_int_eq(c->state, LING);
	ck_assert_str_eq(c->close_reason, "idle timeout");
}
END_TEST

static struct {
	int pipe[2];
	struct nt_fdwatch *rd, *wr;
	atomic_uint reads, writes, cleanups, fires, bad;
	atomic_uint in_set; /* write interest seen by the write callback */
} wt;

static void on_read(struct nt_worker *ww, int fd, uint32_t events, void *arg)
{
	char buf[16];

	(void)ww;
	if (fd != wt.pipe[0] || arg != &wt || !(events & EPOLLIN))
		atomic_fetch_add(&wt.bad, 1);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	atomic_fetch_add(&wt.reads, 1);
}

/* the write end is always writable: one callback, then interest off */
static void on_write(struct nt_worker *ww, int fd, uint32_t events, void *arg)
{
	(void)ww;
	(void)arg;
	if (fd != wt.pipe[1] || !(events & EPOLLOUT))
		atomic_fetch_add(&wt.bad, 1);
	atomic_store(&wt.in_set, nt_worker_watch_events(wt.wr));
	atomic_fetch_add(&wt.writes, 1);
	if (nt_worker_watch_del(wt.wr, EPOLLOUT) < 0)
		atomic_fetch_add(&wt.bad, 1);
}

static void on_cleanup(void *arg)
{
	if (arg != &wt)
		atomic_fetch_add(&wt.bad, 1);
	atomic_fetch_add(&wt.cleanups, 1);
}

static void on_timer(struct nt_worker *ww, void *arg)
{
	(void)ww;
	if (arg != &wt)
		atomic_fetch_add(&wt.bad, 1);
	atomic_fetch_add(&wt.fires, 1);
}

static void call_watch(struct nt_worker *ww, void *arg)
{
	(void)arg;
	wt.rd =
	    nt_worker_watch(ww, wt.pipe[0], EPOLLIN, on_read, on_cleanup, &wt);
	wt.wr = nt_worker_watch(ww, wt.pipe[1], 0, on_write, on_cleanup, &wt);
	if (!wt.rd || !wt.wr ||
	    !nt_worker_timer(ww, ww->now + 20, on_timer, &wt))
		atomic_fetch_add(&wt.bad, 1);
}

static void call_want_write(struct nt_worker *ww, void *arg)
{
	(void)ww;
	(void)arg;
	if (nt_worker_watch_add(wt.wr, EPOLLOUT) < 0)
		atomic_fetch_add(&wt.bad, 1);
}

static void call_unwatch(struct nt_worker *ww, void *arg)
{
	(void)ww;
	(void)arg;
	nt_worker_unwatch(wt.rd);
	nt_worker_unwatch(wt.wr);
}

/* until *v reaches want, 2 s at most */
static unsigned wait_for(atomic_uint *v, unsigned want)
{
	for (int i = 0; i < 200 && atomic_load(v) < want; i++)
		nt_sleep_ms(10);
	return atomic_load(v);
}

START_TEST(test_watch_fd)
{
	char text[256];
	struct nt_config *cfg = NULL;
	struct nt_config_diag diag = {0};
	static struct nt_worker rw;
	static struct nt_admit racc;

	memset(&wt, 0, sizeof(wt));
	snprintf(text, sizeof(text),
	         "listeners = ( { name = \"echo\"; service = \"echo\"; "
	         "family = \"unix\"; path = \"/nonexistent/echo\"; } );\n");
	ck_assert_int_eq(nt_config_load_string(text, "test", &cfg, &diag), 0);
	ck_assert_int_eq(nt_worker_init(&rw, 0, cfg, &racc, NULL), 0);
	nt_config_unref(cfg);
	ck_assert_int_eq(pipe2(wt.pipe, O_NONBLOCK | O_CLOEXEC), 0);
	ck_assert_int_eq(nt_worker_start(&rw), 0);

	ck_assert_int_eq(nt_worker_call(&rw, call_watch, NULL, NULL), 0);
	ck_assert_int_eq(write(wt.pipe[1], "x", 1), 1);
	ck_assert_uint_eq(wait_for(&wt.reads, 1), 1);
	/* no write interest yet: the always-writable end stays quiet */
	ck_assert_uint_eq(atomic_load(&wt.writes), 0);

	ck_assert_int_eq(nt_worker_call(&rw, call_want_write, NULL, NULL), 0);
	ck_assert_uint_eq(wait_for(&wt.writes, 1), 1);
	ck_assert_uint_eq(atomic_load(&wt.in_set), EPOLLOUT);
	ck_assert_uint_eq(wait_for(&wt.fires, 1), 1);
	nt_sleep_ms(100); /* interest off, timer spent: nothing more */
	ck_assert_uint_eq(atomic_load(&wt.writes), 1);
	ck_assert_uint_eq(atomic_load(&wt.fires), 1);

	ck_assert_int_eq(nt_worker_call(&rw, call_unwatch, NULL, NULL), 0);
	ck_assert_uint_eq(wait_for(&wt.cleanups, 2), 2);
	ck_assert_int_eq(write(wt.pipe[1], "y", 1), 1);
	nt_sleep_ms(50);
	ck_assert_uint_eq(atomic_load(&wt.reads), 1);
	ck_assert_uint_eq(atomic_load(&wt.bad), 0);

	/* no admission was counted for any of it */
	ck_assert_uint_eq(atomic_load(&rw.load), 0);
	ck_assert_uint_eq(atomic_load(&racc.open), 0);
	ck_assert_uint_eq(atomic_load(&rw.stats.opened), 0);

	ck_assert_int_eq(nt_worker_post_type(&rw, NT_MSG_STOP), 0);
	nt_worker_join(&rw);
	nt_worker_destroy(&rw);
	close(wt.pipe[0]);
	close(wt.pipe[1]);
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("outq");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_segments_bound);
	tcase_add_test(tc, test_tail_bound);
	tcase_add_test(tc, test_span);
	tcase_add_test(tc, test_room);
	tcase_add_test(tc, test_line_fits);
	tcase_add_test(tc, test_copies_share);
	tcase_add_test(tc, test_overflow_hook);
	suite_add_tcase(s, tc);
	tc = tcase_create("state");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_state_table);
	tcase_add_test(tc, test_finish_after_output);
	tcase_add_test(tc, test_peer_eof);
	tcase_add_test(tc, test_drain_then_finish);
	tcase_add_test(tc, test_handover);
	tcase_add_test(tc, test_notice_unread);
	tcase_add_test(tc, test_notice_sent);
	suite_add_tcase(s, tc);
	tc = tcase_create("watch");
	tcase_add_test(tc, test_watch_fd);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(conn_suite)
