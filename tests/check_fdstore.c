/*
 * A restart that drops nobody. The test plays systemd's part: it owns the
 * NOTIFY_SOCKET, keeps every fd natterd sends with FDSTORE=1 (and lets go
 * of those named in FDSTOREREMOVE=1), and starts the next natterd with
 * them in LISTEN_FDS / LISTEN_FDNAMES, as systemd does on a restart.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nt_chat.h"
#include "nt_test.h"
#include "run_suite.h"
#include "sd.h"

#define IO_MS     10000
#define STORE_MAX 1024

static struct nt_daemon d, d2;
static struct nt_notify nfy = {.fd = -1};

/* ---- systemd's fd store, as far as the test needs it --------------------
 *
 * Like systemd, a thread reads the notifications all the time (natterd
 * never waits for them to be read: a message that does not fit in the
 * socket's queue is simply not sent), and drops a stored fd that hangs up.
 */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* all below */
static struct {
	char name[256];
	int fd;
} store[STORE_MAX];
static size_t n_store;
static bool seen_ready, seen_stopping;
static unsigned n_msg_store, n_msg_remove; /* FDSTORE=1, FDSTOREREMOVE=1 */
/* a systemd slow to see a hang-up, and a removal lost on the way */
static bool keep_gone;

static pthread_t pump_thread;
static bool pumping;
static atomic_bool pump_stop;

static void store_clear(void)
{
	for (size_t i = 0; i < n_store; i++)
		close(store[i].fd);
	n_store = 0;
}

static void pump_end(void)
{
	if (!pumping)
		return;
	atomic_store(&pump_stop, true);
	pthread_join(pump_thread, NULL);
	pumping = false;
}

/* the churning clients that are open, oldest first */
#define CHURN_OPEN   256                  /* clients open at once, at most */
#define CHURN_AGE_MS (3 * NT_SD_FLUSH_MS) /* when one is closed */
static struct {
	int fd;
	uint64_t at;
} ring[CHURN_OPEN];
static unsigned ring_head, ring_len;

/* close the oldest client while it is old enough, or while too many are
 * open (all: every one) */
static void churn_close(bool all)
{
	uint64_t now = nt_test_now_ms();

	while (ring_len && (all || ring_len == CHURN_OPEN ||
	                    now - ring[ring_head].at >= CHURN_AGE_MS)) {
		close(ring[ring_head].fd);
		ring_head = (ring_head + 1) % CHURN_OPEN;
		ring_len--;
	}
}

static void teardown(void)
{
	pump_end();
	churn_close(true);
	nt_daemon_cleanup(&d);
	nt_daemon_cleanup(&d2);
	nt_notify_close(&nfy);
	store_clear();
	keep_gone = false;
}

static void store_remove(const char *name)
{
	for (size_t i = 0; i < n_store;) {
		if (strcmp(store[i].name, name)) {
			i++;
			continue;
		}
		close(store[i].fd);
		store[i] = store[--n_store];
	}
}

/* what systemd does with one notification */
static void handle(const char *msg, const int *fds, size_t nfds)
{
	char name[256] = "stored";

	nt_notify_field(msg, "FDNAME", name, sizeof(name));
	if (strstr(msg, "READY=1"))
		seen_ready = true;
	if (strstr(msg, "STOPPING=1"))
		seen_stopping = true;
	if (strstr(msg, "FDSTOREREMOVE=1")) {
		n_msg_remove++;
		if (!keep_gone)
			store_remove(name);
	} else if (strstr(msg, "FDSTORE=1")) {
		n_msg_store++;
	}
	for (size_t i = 0; i < nfds; i++) {
		if (!strstr(msg, "FDSTORE=1") || n_store == STORE_MAX) {
			close(fds[i]);
			continue;
		}
		snprintf(store[n_store].name, sizeof(store[0].name), "%s",
		         name);
		store[n_store++].fd = fds[i];
	}
}

/* what systemd does with a stored fd that reports POLLHUP or POLLERR */
static void drop_hung_up(void)
{
	struct pollfd p[STORE_MAX];

	for (size_t i = 0; i < n_store; i++)
		p[i] = (struct pollfd){.fd = store[i].fd};
	if (poll(p, n_store, 0) <= 0)
		return;
	for (size_t i = n_store; i-- > 0;) {
		if (!(p[i].revents & (POLLHUP | POLLERR)))
			continue;
		close(store[i].fd);
		store[i] = store[--n_store];
	}
}

static void *pump_main(void *arg)
{
	char msg[4096];
	int fds[253]; /* SCM_MAX_FD */
	size_t nfds;

	uint64_t scanned = 0;

	(void)arg;
	while (!atomic_load(&pump_stop)) {
		ssize_t r =
		    nt_notify_recv(&nfy, msg, sizeof(msg), fds, 253, &nfds, 50);
		pthread_mutex_lock(&lock);
		if (r >= 0)
			handle(msg, fds, nfds);
		/* now and then, not for every message: reading comes first */
		if (!keep_gone && nt_test_now_ms() >= scanned + 20) {
			drop_hung_up();
			scanned = nt_test_now_ms();
		}
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static void pump_start(void)
{
	atomic_store(&pump_stop, false);
	ck_assert_int_eq(pthread_create(&pump_thread, NULL, pump_main, NULL),
	                 0);
	pumping = true;
}

/* wait until cond() holds (true) or ms pass (false); NULL: just wait */
static bool pump(bool (*cond)(void), int ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)ms;

	for (;;) {
		pthread_mutex_lock(&lock);
		bool ok = cond && cond();
		pthread_mutex_unlock(&lock);
		if (ok)
			return true;
		if (nt_test_now_ms() >= deadline)
			return false;
		nt_sleep_ms(10);
	}
}

static size_t stored_named(const char *prefix)
{
	size_t n = 0;

	for (size_t i = 0; i < n_store; i++)
		n += !strncmp(store[i].name, prefix, strlen(prefix));
	return n;
}

/* the client sockets in the store (the rest are their session memfds) */
static size_t stored_sockets(void)
{
	size_t n = 0;
	struct stat st;

	for (size_t i = 0; i < n_store; i++)
		n += !strncmp(store[i].name, "client@", 7) &&
		     fstat(store[i].fd, &st) == 0 && S_ISSOCK(st.st_mode);
	return n;
}

static bool is_ready(void)
{
	return seen_ready;
}

static bool is_stopping(void)
{
	return seen_stopping;
}

/* whether a record in a stored session memfd has needle */
static bool session_stored(const char *needle)
{
	static char buf[253 * 256];

	for (size_t i = 0; i < n_store; i++) {
		struct stat st;
		if (strncmp(store[i].name, "client@", 7) ||
		    fstat(store[i].fd, &st) < 0 || S_ISSOCK(st.st_mode))
			continue;
		ssize_t n = pread(store[i].fd, buf, sizeof(buf), 0);
		/* records of 256 bytes, zero-padded: one at a time */
		for (ssize_t off = 0; off + 256 <= n; off += 256) {
			char rec[257];
			memcpy(rec, buf + off, 256);
			rec[256] = '\0';
			if (strstr(rec, needle))
				return true;
		}
	}
	return false;
}

/* alice and bob in #den, the echo client, and carol gone again */
static bool first_clients_stored(void)
{
	return stored_sockets() == 3 &&
	       session_stored("nick=alice\nroom=den\n") &&
	       session_stored("nick=bob\nroom=den\n") &&
	       session_stored("listener=echo\n") &&
	       !session_stored("nick=carol");
}

static bool no_client_stored(void)
{
	return stored_named("client@") == 0;
}

static bool bob_gone(void)
{
	return !session_stored("nick=bob");
}

/* ---- clients ------------------------------------------------------------ */

static void say(int fd, const char *line)
{
	ck_assert_int_eq(nt_chat_send_fd(fd, IO_MS, "%s", line), 0);
}

static void expect(int fd, const char *needle)
{
	bool ok = nt_chat_wait_line(fd, needle, false, IO_MS);

	if (!ok) {
		nt_daemon_dump_log(&d);
		nt_daemon_dump_log(&d2);
	}
	ck_assert_msg(ok, "no line with \"%s\"", needle);
}

/* read and drop what fd has, until nothing came for 300 ms */
static void drain(int fd)
{
	char buf[4096];

	while (nt_read_exact(fd, buf, sizeof(buf), 300) > 0)
		;
}

/* a chat client that is nick in #room */
static int chatter(int fd, const char *nick, const char *room)
{
	nt_chat_enter(fd, nick, NULL, IO_MS);
	nt_chat_join(fd, room, IO_MS);
	return fd;
}

/*
 * Clients connecting all through the restart, every 20 ms: each connect
 * must succeed, whichever natterd (or neither, for a moment) is running.
 */
static atomic_bool connector_stop;
static atomic_int connector_ok, connector_refused;
static uint16_t connector_port;

static void *connector(void *arg)
{
	(void)arg;
	while (!atomic_load(&connector_stop)) {
		int fd = nt_connect_tcp("127.0.0.1", connector_port, IO_MS);
		if (fd >= 0) {
			atomic_fetch_add(&connector_ok, 1);
			close(fd);
		} else {
			atomic_fetch_add(&connector_refused, 1);
		}
		nt_sleep_ms(20);
	}
	return NULL;
}

/* ---- the test ----------------------------------------------------------- */

#define CONF                                                                   \
	"workers = 2;\n"                                                       \
	"listeners = (\n"                                                      \
	" { name = \"chat\"; service = \"chat\"; family = \"ipv4\";\n"         \
	"   address = \"127.0.0.1\"; port = 0; },\n"                           \
	" { name = \"uchat\"; service = \"chat\"; path = \"%s/chat.sock\"; "   \
	"},\n"                                                                 \
	" { name = \"echo\"; service = \"echo\"; family = \"ipv4\";\n"         \
	"   address = \"127.0.0.1\"; port = 0; } );\n"

/* LISTEN_FDNAMES for the whole store */
static void store_names(char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n_store && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
		                        i ? ":" : "", store[i].name);
}

/* the same, under the lock, for the test's own thread */
static size_t count(const char *prefix)
{
	pthread_mutex_lock(&lock);
	size_t n = stored_named(prefix);
	pthread_mutex_unlock(&lock);
	return n;
}

static size_t count_sockets(void)
{
	pthread_mutex_lock(&lock);
	size_t n = stored_sockets();
	pthread_mutex_unlock(&lock);
	return n;
}

static unsigned count_messages(void)
{
	pthread_mutex_lock(&lock);
	unsigned n = n_msg_store + n_msg_remove;
	pthread_mutex_unlock(&lock);
	return n;
}

/* the second natterd, given the whole store as systemd does; ready */
static void start_second(const char *const *env)
{
	static char names[STORE_MAX * 64];
	int fds[STORE_MAX];
	size_t nfds;

	pthread_mutex_lock(&lock);
	for (nfds = 0; nfds < n_store; nfds++)
		fds[nfds] = store[nfds].fd;
	store_names(names, sizeof(names));
	seen_ready = false;
	pthread_mutex_unlock(&lock);
	nt_daemon_init(&d2);
	struct nt_daemon_opts o2 = {
	    .env = env, .pass_fds = fds, .n_pass_fds = nfds, .fdnames = names};
	nt_daemon_start(&d2, &o2, CONF, d.dir);
	ck_assert(pump(is_ready, IO_MS));
}

static bool has_session(const char *needle)
{
	pthread_mutex_lock(&lock);
	bool ok = session_stored(needle);
	pthread_mutex_unlock(&lock);
	return ok;
}

START_TEST(test_restart_keeps_everyone)
{
	char path[300];
	pthread_t th;

	/* the first natterd: listeners and clients go into the store */
	nt_daemon_init(&d);
	nt_notify_open(&nfy, d.dir);
	pump_start();
	const char *const env[] = {nfy.env, "FDSTORE=64", NULL};
	struct nt_daemon_opts o = {.env = env};
	nt_daemon_start(&d, &o, CONF, d.dir);
	ck_assert(pump(is_ready, IO_MS));
	ck_assert_int_eq(count("listener@"), 3);
	uint16_t chat_port = nt_daemon_port(&d, "chat");
	uint16_t echo_port = nt_daemon_port(&d, "echo");
	snprintf(path, sizeof(path), "%s/chat.sock", d.dir);

	int alice = chatter(nt_daemon_connect(&d, "chat"), "alice", "den");
	int bob = chatter(nt_daemon_connect(&d, "uchat"), "bob", "den");
	int carol = chatter(nt_daemon_connect(&d, "chat"), "carol", "den");
	int e = nt_daemon_connect(&d, "echo");
	ck_assert_int_eq(nt_echo_check(e, "one", 3, IO_MS), 0);
	/* carol leaves: she must leave the store too */
	say(carol, "/quit");
	expect(carol, "*** bye");
	ck_assert_int_eq(nt_expect_eof(carol, IO_MS), 0);
	close(carol);
	ck_assert_msg(pump(first_clients_stored, IO_MS),
	              "%zu client sockets stored; alice %d, bob %d, carol %d",
	              count_sockets(), has_session("nick=alice\nroom=den\n"),
	              has_session("nick=bob\nroom=den\n"),
	              has_session("nick=carol"));
	/* what was said so far (bob and carol coming and going) */
	drain(alice);
	drain(bob);

	/* restart: stop the first, start the second with the store */
	connector_port = chat_port;
	ck_assert_int_eq(pthread_create(&th, NULL, connector, NULL), 0);
	nt_sleep_ms(200);
	/* a client younger than the store's flush window is kept too */
	int young = nt_daemon_connect(&d, "echo");
	ck_assert_int_eq(nt_echo_check(young, "yo", 2, IO_MS), 0);
	kill(d.pid, SIGTERM);
	ck_assert(pump(is_stopping, IO_MS));
	ck_assert_int_eq(nt_daemon_wait_exit(&d, NT_TEST_STOP_MS), 0);
	pump(NULL, 300); /* anything sent last */
	/* (and maybe a connector's client that came just before SIGTERM) */
	ck_assert(nt_daemon_log_contains(&d, "clients left in the systemd fd "
	                                     "store"));
	ck_assert_int_eq(count("listener@"), 3);
	ck_assert_uint_ge(count_sockets(), 4);
	/* between the two: nobody was told anything, nobody was cut */
	ck_assert_int_eq(nt_expect_eof(alice, 100), -ETIMEDOUT);
	ck_assert_int_eq(nt_expect_eof(bob, 100), -ETIMEDOUT);
	ck_assert_int_eq(nt_expect_eof(e, 100), -ETIMEDOUT);
	ck_assert_int_eq(nt_expect_eof(young, 100), -ETIMEDOUT);
	/* and a client arriving now waits in the stored listener's queue */
	int dave = nt_connect_tcp("127.0.0.1", chat_port, IO_MS);
	ck_assert_int_ge(dave, 0);
	nt_sleep_ms(300);

	start_second(env);
	nt_sleep_ms(300);
	atomic_store(&connector_stop, true);
	pthread_join(th, NULL);
	ck_assert_msg(atomic_load(&connector_refused) == 0,
	              "%d of %d connects refused during the restart",
	              atomic_load(&connector_refused),
	              atomic_load(&connector_refused) +
	                  atomic_load(&connector_ok));
	ck_assert_int_gt(atomic_load(&connector_ok), 10);

	/* the second natterd serves the same sockets and the same people */
	ck_assert_int_eq(nt_daemon_port(&d2, "chat"), chat_port);
	ck_assert_int_eq(nt_daemon_port(&d2, "echo"), echo_port);
	ck_assert(nt_daemon_log_contains(
	    &d2, "listener=chat (kept by systemd across the restart)"));
	ck_assert(nt_daemon_log_contains(
	    &d2, "listener=uchat (kept by systemd across the restart)"));
	ck_assert(nt_daemon_log_contains(&d2, "took over "));
	expect(alice, "natterd was restarted; you are still alice, in #den");
	/* the second natterd's config may differ: its limits, again */
	expect(alice, "*** limits: max_line=512");
	expect(bob, "natterd was restarted; you are still bob, in #den");
	expect(dave, "Welcome to natter");
	say(alice, "hi bob");
	expect(bob, "<alice> hi bob");
	say(bob, "/who");
	expect(bob, "#den has 2 users");
	ck_assert_int_eq(nt_echo_check(e, "two", 3, IO_MS), 0);
	ck_assert_int_eq(nt_echo_check(young, "yo again", 8, IO_MS), 0);
	int u = nt_connect_unix(path, IO_MS);
	ck_assert_int_ge(u, 0);
	expect(u, "Welcome to natter");
	/* the kept listeners are not stored twice */
	ck_assert_int_eq(count("listener@"), 3);

	/* bob leaves the second natterd: out of the store, and really gone
	 * although the store held another descriptor of his socket */
	say(bob, "/quit");
	expect(bob, "*** bye");
	ck_assert_int_eq(nt_expect_eof(bob, IO_MS), 0);
	ck_assert_msg(pump(bob_gone, IO_MS), "bob is still in the store");
	ck_assert(has_session("nick=alice\nroom=den\n"));
	close(alice);
	close(bob);
	close(dave);
	close(u);
	close(e);
	close(young);
	ck_assert_int_eq(nt_daemon_stop(&d2, SIGTERM, NT_TEST_STOP_MS), 0);
}
END_TEST

static bool alice_and_bob_stored(void)
{
	return session_stored("nick=alice\nroom=den\n") &&
	       session_stored("nick=bob\nroom=den\n");
}

/*
 * After a crash, what the store holds comes back, but never a client that
 * had left: even if systemd still holds its socket, its record is gone.
 */
START_TEST(test_crash_keeps_no_closed_client)
{
	nt_daemon_init(&d);
	nt_notify_open(&nfy, d.dir);
	pump_start();
	pthread_mutex_lock(&lock);
	keep_gone = true;
	pthread_mutex_unlock(&lock);
	const char *const env[] = {nfy.env, "FDSTORE=64", NULL};
	struct nt_daemon_opts o = {.env = env};
	nt_daemon_start(&d, &o, CONF, d.dir);
	ck_assert(pump(is_ready, IO_MS));
	int alice = chatter(nt_daemon_connect(&d, "chat"), "alice", "den");
	int bob = chatter(nt_daemon_connect(&d, "chat"), "bob", "den");
	ck_assert(pump(alice_and_bob_stored, IO_MS));
	say(bob, "/quit");
	expect(bob, "*** bye");
	ck_assert_int_eq(nt_expect_eof(bob, IO_MS), 0);
	ck_assert(pump(bob_gone, IO_MS));
	ck_assert_uint_eq(count_sockets(), 2); /* bob's too */
	drain(alice);
	kill(d.pid, SIGKILL);
	nt_daemon_wait_exit(&d, NT_TEST_STOP_MS);

	start_second(env);
	expect(alice, "natterd was restarted; you are still alice, in #den");
	ck_assert(nt_daemon_log_contains(&d2, "took over 1 client "));
	ck_assert(!nt_daemon_log_contains(&d2, "took over 2 clients"));
	say(alice, "/who");
	expect(alice, "#den has 1 user");
	close(alice);
	close(bob);
	ck_assert_int_eq(nt_daemon_stop(&d2, SIGTERM, NT_TEST_STOP_MS), 0);
}
END_TEST

/* without $FDSTORE nothing is stored, and SIGTERM drains as before */
START_TEST(test_no_store_without_fdstore)
{
	nt_daemon_init(&d);
	nt_notify_open(&nfy, d.dir);
	pump_start();
	const char *const env[] = {nfy.env, NULL};
	struct nt_daemon_opts o = {.env = env};
	nt_daemon_start(&d, &o, CONF, d.dir);
	ck_assert(pump(is_ready, IO_MS));
	int c = nt_daemon_connect(&d, "chat");
	expect(c, "you are now in");
	kill(d.pid, SIGTERM);
	expect(c, "the server is shutting down");
	ck_assert_int_eq(nt_expect_eof(c, IO_MS), 0);
	ck_assert_int_eq(nt_daemon_wait_exit(&d, NT_TEST_STOP_MS), 0);
	pump(NULL, 300);
	ck_assert_int_eq(count(""), 0);
	close(c);
}
END_TEST

/*
 * Connection churn is not load on PID 1: a client that comes and goes
 * within the store's flush window never reaches it, the others go in
 * groups, a few messages per window and worker whatever the rate.
 */
#define CHURN_N       2000
#define CHURN_MS      2000
#define CHURN_WORKERS 2 /* as in CONF */
#define CHURN_GROUPS  2 /* groups a worker may send per window */

static void churn_open(uint16_t port)
{
	int fd = nt_connect_tcp("127.0.0.1", port, IO_MS);

	ck_assert_int_ge(fd, 0);
	/* served, so natterd has taken it in */
	ck_assert_int_eq(nt_echo_check(fd, "x", 1, IO_MS), 0);
	unsigned i = (ring_head + ring_len++) % CHURN_OPEN;
	ring[i].fd = fd;
	ring[i].at = nt_test_now_ms();
}

START_TEST(test_churn_is_not_load_on_systemd)
{
	unsigned n = 0;

	nt_daemon_init(&d);
	nt_notify_open(&nfy, d.dir);
	pump_start();
	const char *const env[] = {nfy.env, "FDSTORE=4096", NULL};
	struct nt_daemon_opts o = {.env = env};
	/* more clients open at once than per_ip allows by default */
	nt_daemon_start(&d, &o, CONF "limits = { per_ip = 0; };\n", d.dir);
	ck_assert(pump(is_ready, IO_MS));
	uint16_t port = nt_daemon_port(&d, "echo");
	unsigned before = count_messages();
	uint64_t start = nt_test_now_ms();
	for (; n < CHURN_N && nt_test_now_ms() - start < CHURN_MS; n++) {
		churn_close(false);
		churn_open(port);
	}
	churn_close(true);
	uint64_t ms = nt_test_now_ms() - start;
	/* every one of them leaves the store again, and nothing comes late */
	bool gone = pump(no_client_stored, IO_MS);
	pump(NULL, 2 * NT_SD_FLUSH_MS);
	unsigned msgs = count_messages() - before;
	/* a store and a removal per group; the last removals come after */
	uint64_t bound =
	    2 * CHURN_WORKERS * CHURN_GROUPS * (ms / NT_SD_FLUSH_MS + 3);
	ck_assert_msg(n >= 200, "only %u connections in %d ms", n, CHURN_MS);
	ck_assert_msg(msgs <= bound,
	              "%u fd store messages for %u connections in %llu ms "
	              "(bound %llu)",
	              msgs, n, (unsigned long long)ms,
	              (unsigned long long)bound);
	ck_assert_msg(gone, "%zu client fds still stored", count("client@"));
	ck_assert_int_eq(nt_daemon_stop(&d, SIGTERM, NT_TEST_STOP_MS), 0);
}
END_TEST

Suite *fdstore_suite(void);

Suite *fdstore_suite(void)
{
	Suite *s = suite_create("fdstore");
	TCase *tc = tcase_create("restart");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_restart_keeps_everyone);
	tcase_add_test(tc, test_no_store_without_fdstore);
	tcase_add_test(tc, test_crash_keeps_no_closed_client);
	tcase_add_test(tc, test_churn_is_not_load_on_systemd);
	suite_add_tcase(s, tc);
	return s;
}

NT_RUN_SUITE(fdstore_suite)
