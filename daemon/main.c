/*
 * natterd: options, start-up, the signal loop (with reload and, under
 * systemd, status and watchdog ticks) and shutdown. Everything that serves
 * clients lives in the threads started from here; this thread waits on a
 * signalfd and talks to systemd.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "admit.h"
#include "conn.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "proc.h"
#include "sd.h"
#include "service.h"
#include "stats.h"
#include "worker.h"

enum {
	EXIT_OK = 0,
	EXIT_CONFIG = 1, /* the configuration is invalid or unreadable */
	EXIT_USAGE = 2,  /* bad command line */
	EXIT_START = 3,  /* could not start: bind, threads, resources */
	EXIT_FORCED = 4, /* a second signal cut shutdown short */
};

#define DEFAULT_CONFIG NT_SYSCONFDIR "/natter/natterd.conf"
/* how long the main thread waits for the others to apply a change */
#define SYNC_WAIT_MS 10000
/* STATUS= is refreshed this often (only sent when it changed) */
#define STATUS_PERIOD_MS 2000
/* while a thread has not moved, how often the watchdog looks again */
#define WATCHDOG_RECHECK_MS 100
/* the threads beat at least once a second (their epoll timeout): one that
 * has not for this long since the last ping is stuck, not idle */
#define WATCHDOG_STUCK_MS 2500

struct options {
	const char *config;
	bool check_only;
	bool have_level;
	enum nt_log_level level;
};

struct server {
	struct nt_config *cfg;
	/* the set the workers accept on: admission owns it, main only
	 * reads it to plan the next reload */
	struct nt_listener_set *set;
	struct nt_worker *worker_mem;
	struct nt_worker **workers;
	size_t n_workers;
	size_t n_inited; /* workers[0..n_inited) went through init */
	struct nt_admit admit;
	bool admit_ready;
	void *svc_shared[NT_SERVICES]; /* each service's, for every worker */
	int sigfd;
	unsigned max_conns;
	char note[128]; /* appended to STATUS=, e.g. a failed reload */

	/* watchdog: every worker's heartbeat seen at the last ping */
	uint64_t *beats;
	uint64_t wd_last_ms; /* last ping */
	bool wd_waiting;     /* a ping is due, but someone did not move */
	bool wd_stuck;       /* ...for WATCHDOG_STUCK_MS: it was logged */
	uint64_t status_next_ms;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: natterd [-c FILE] [-t|--check-config] "
	        "[--log-level LEVEL] [--version] [--help]\n"
	        "  -c, --config FILE   configuration file (default %s)\n"
	        "  -t, --check-config  validate the configuration and exit\n"
	        "  -l, --log-level L   error, warning, notice, info or debug\n"
	        "  -V, --version       print the version and exit\n"
	        "  -h, --help          print this help and exit\n",
	        DEFAULT_CONFIG);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 't'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	o->config = DEFAULT_CONFIG;
	while ((ch = getopt_long(argc, argv, "c:tl:Vh", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 't':
			o->check_only = true;
			break;
		case 'l':
			if (nt_log_level_parse(optarg, &o->level) < 0) {
				fprintf(stderr,
				        "natterd: unknown log level \"%s\" "
				        "(error, warning, notice, info, "
				        "debug)\n",
				        optarg);
				return -1;
			}
			o->have_level = true;
			break;
		case 'V':
			printf("natterd %s\n", PACKAGE_VERSION);
			exit(EXIT_OK);
		case 'h':
			usage(stdout);
			exit(EXIT_OK);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "natterd: unexpected argument \"%s\"\n",
		        argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

static void print_diag(const struct nt_config_diag *d, bool as_log)
{
	char line[1024];

	for (size_t i = 0; i < d->n; i++) {
		nt_config_error_format(&d->v[i], line, sizeof(line));
		if (as_log)
			nt_log_errx("%s", line);
		else
			fprintf(stderr, "%s\n", line);
	}
}

static int start_threads(struct server *s)
{
	int rc;

	s->worker_mem = calloc(s->n_workers, sizeof(*s->worker_mem));
	s->workers = calloc(s->n_workers, sizeof(*s->workers));
	s->beats = calloc(s->n_workers, sizeof(*s->beats));
	if (!s->worker_mem || !s->workers || !s->beats ||
	    nt_services_start(s->cfg, (unsigned)s->n_workers, s->svc_shared) <
	        0) {
		nt_log_errx("out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n_workers; i++) {
		s->workers[i] = &s->worker_mem[i];
		rc = nt_worker_init(s->workers[i], (unsigned)i, s->cfg,
		                    &s->admit, s->svc_shared);
		if (rc < 0) {
			nt_log(NT_LOG_ERR, -rc, "cannot set up worker %zu", i);
			return rc;
		}
		s->n_inited++;
	}
	for (size_t i = 0; i < s->n_workers; i++) {
		s->workers[i]->peers = s->workers;
		s->workers[i]->n_peers = s->n_workers;
	}
	/* admission owns the set from here on, also if this fails */
	rc = nt_admit_init(&s->admit, s->set, s->workers, s->n_workers,
	                   s->max_conns, s->cfg->limits.per_ip);
	if (rc < 0) {
		s->set = NULL;
		nt_log(NT_LOG_ERR, -rc, "cannot set up the acceptor");
		return rc;
	}
	s->admit_ready = true;
	for (size_t i = 0; i < s->n_workers; i++)
		if ((rc = nt_worker_start(s->workers[i])) < 0) {
			nt_log(NT_LOG_ERR, -rc, "cannot start worker %zu", i);
			return rc;
		}
	return 0;
}

/*
 * Let every worker accept on set's listeners (NULL: on none) and wait until
 * all of them do; false if one could not be told or took too long.
 */
static bool workers_listen(struct server *s, const struct nt_listener_set *set)
{
	struct nt_latch *l = nt_latch_new((unsigned)s->n_workers);
	bool ok = l != NULL;

	for (size_t i = 0; l && i < s->n_workers; i++)
		if (!s->workers[i]->started ||
		    nt_worker_post_listen(s->workers[i], set, l) < 0) {
			nt_log_errx("worker %zu: out of memory: its listeners "
			            "stay as they were",
			            i);
			nt_latch_done(l);
			ok = false;
		}
	return nt_latch_wait(l, SYNC_WAIT_MS) && ok;
}

/* wait until every worker has handled what was posted to it so far */
static bool workers_sync(struct server *s)
{
	struct nt_latch *l = nt_latch_new((unsigned)s->n_workers);

	for (size_t i = 0; l && i < s->n_workers; i++)
		if (nt_worker_post_barrier(s->workers[i], l) < 0)
			nt_latch_done(l);
	return nt_latch_wait(l, SYNC_WAIT_MS);
}

/* ---- clients kept in the fd store by the previous natterd --------------- */

static void adopt_refuse(int fd, struct nt_sd_client *sc, const char *why)
{
	static const char line[] = "*** natterd was restarted and no longer "
	                           "serves this port; bye\r\n";
	ssize_t w =
	    send(fd, line, sizeof(line) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);

	(void)w;
	nt_log_notice("a client kept across the restart was disconnected: %s",
	              why);
	shutdown(fd, SHUT_RDWR);
	close(fd);
	nt_sd_client_forget(sc);
}

static void adopt_client(void *arg, int fd, struct nt_sd_client *sc,
                         const struct nt_sd_session *sess)
{
	struct server *s = arg;
	const struct nt_listener_conf *lc;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct nt_peer peer = {.family = AF_UNIX};

	if (!nt_listener_set_find(s->set, sess->listener, &lc)) {
		adopt_refuse(fd, sc, "its listener is no longer configured");
		return;
	}
	/* the memfd is not trusted: its service reads only what it wrote */
	const struct nt_service_def *sv = nt_service_get(lc->service);
	if (sv->session_check &&
	    sv->session_check(sess->blob, sess->blob_len) < 0) {
		adopt_refuse(fd, sc, "its saved session is not valid");
		return;
	}
	struct nt_conn_restore *r = calloc(1, sizeof(*r));
	int fl = fcntl(fd, F_GETFL);
	if (!r || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		free(r);
		adopt_refuse(fd, sc, "out of resources");
		return;
	}
	r->store = sc;
	r->session = *sess;
	/* a client that left meanwhile has no peer: it reads EOF soon */
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		nt_peer_from_sockaddr(&peer, (struct sockaddr *)&ss, len);
	nt_admit_adopt(&s->admit, fd, lc, &peer, r);
}

/*
 * Hand every stored client to a worker and wait until they are all back
 * in their rooms, so that no new client can take a nick first.
 */
static void adopt_clients(struct server *s, struct nt_sd_fds *fds)
{
	size_t n = nt_sd_clients_take(fds, adopt_client, s);

	if (!n)
		return;
	if (!workers_sync(s))
		nt_log_warnx("the workers took long to take the clients over");
	nt_log_notice("took over %zu client%s kept by systemd across the "
	              "restart",
	              n, n == 1 ? "" : "s");
}

/* ---- status and watchdog ------------------------------------------------ */

static void status_text(struct server *s, char *buf, size_t size)
{
	unsigned conns = atomic_load(&s->admit.open);
	size_t n = s->set ? s->set->n : 0;
	char services[64];

	nt_services_status(s->svc_shared, services, sizeof(services));
	snprintf(buf, size, "%u connection%s%s, %zu listener%s%s%s", conns,
	         conns == 1 ? "" : "s", services, n, n == 1 ? "" : "s",
	         s->note[0] ? "; " : "", s->note);
}

static void status_refresh(struct server *s)
{
	char text[256];

	status_text(s, text, sizeof(text));
	nt_sd_status(text);
}

/* the first worker whose heartbeat did not move since the last ping, as
 * "worker N", or NULL when all did */
static const char *watchdog_laggard(struct server *s, char *buf, size_t size)
{
	for (size_t i = 0; i < s->n_workers; i++)
		if (atomic_load(&s->workers[i]->heartbeat) == s->beats[i]) {
			snprintf(buf, size, "worker %zu", i);
			return buf;
		}
	return NULL;
}

static void watchdog_snapshot(struct server *s)
{
	for (size_t i = 0; i < s->n_workers; i++)
		s->beats[i] = atomic_load(&s->workers[i]->heartbeat);
}

/*
 * Ping at half the interval, but only once every thread has moved since
 * the last ping: a stuck worker stops the pings and systemd restarts us.
 */
static void watchdog_tick(struct server *s, uint64_t now)
{
	uint64_t half = nt_sd_watchdog_usec() / 2000;
	char who[32];
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_WATCHDOG};

	if (!half || now < s->wd_last_ms + half)
		return;
	const char *lag = watchdog_laggard(s, who, sizeof(who));
	if (lag) {
		/* threads beat at least once a second: one that did not
		 * within WATCHDOG_STUCK_MS is stuck, not merely idle */
		if (!s->wd_stuck && now - s->wd_last_ms >= WATCHDOG_STUCK_MS) {
			nt_logc(NT_LOG_WARNING, &ctx,
			        "watchdog: %s has not run for %llu ms; "
			        "holding back the keep-alive",
			        lag, (unsigned long long)(now - s->wd_last_ms));
			s->wd_stuck = true;
			snprintf(s->note, sizeof(s->note), "%s is stuck", lag);
		}
		s->wd_waiting = true;
		return;
	}
	s->wd_waiting = false;
	if (s->wd_stuck) {
		nt_logc(NT_LOG_NOTICE, &ctx,
		        "watchdog: every thread runs again after %llu ms",
		        (unsigned long long)(now - s->wd_last_ms));
		s->wd_stuck = false;
		s->note[0] = '\0';
	}
	nt_sd_watchdog_ping();
	watchdog_snapshot(s);
	s->wd_last_ms = now;
}

static void tick(struct server *s)
{
	uint64_t now = nt_now_ms();

	watchdog_tick(s, now);
	if (now >= s->status_next_ms) {
		status_refresh(s);
		s->status_next_ms = now + STATUS_PERIOD_MS;
	}
}

/* ms until the next tick is due */
static int tick_timeout(const struct server *s)
{
	uint64_t now = nt_now_ms();
	uint64_t next = s->status_next_ms;
	uint64_t half = nt_sd_watchdog_usec() / 2000;

	if (half)
		next = NT_MIN(next, s->wd_waiting ? now + WATCHDOG_RECHECK_MS
		                                  : s->wd_last_ms + half);
	return next <= now ? 0 : (int)NT_MIN(next - now, (uint64_t)60000);
}

/* ---- signals ------------------------------------------------------------ */

static bool workers_done(const struct server *s)
{
	for (size_t i = 0; i < s->n_inited; i++)
		if (s->workers[i]->started &&
		    !atomic_load(&s->workers[i]->done))
			return false;
	return true;
}

static void post_all(struct server *s, enum nt_msg_type type)
{
	for (size_t i = 0; i < s->n_inited; i++)
		if (s->workers[i]->started &&
		    nt_worker_post_type(s->workers[i], type) < 0)
			nt_log_errx("worker %zu: out of memory posting a "
			            "message",
			            i);
}

/* Returns the signal that arrived, or 0 after timeout_ms. */
static int wait_signal(int sigfd, int timeout_ms)
{
	struct pollfd p = {.fd = sigfd, .events = POLLIN};
	struct signalfd_siginfo si;

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	if (read(sigfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

/*
 * Listeners at shutdown. With the fd store on, the store keeps them and
 * the next natterd takes them over, so their socket files stay put.
 */
static void stop_listeners(struct server *s, bool handover)
{
	struct nt_listener_set *set = NULL;

	if (s->admit_ready) {
		if (!workers_listen(s, NULL))
			nt_log_warnx("not every worker stopped accepting in "
			             "time");
		set = nt_admit_take_set(&s->admit);
	}
	s->set = NULL;
	for (size_t i = 0; set && i < set->n; i++) {
		if (handover && set->l[i]->stored)
			nt_listener_release(set->l[i]);
		else
			nt_listener_close(set->l[i]);
		free(set->l[i]);
	}
	nt_listener_set_free(set);
}

static uint64_t handed_over(const struct server *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->n_inited; i++)
		n += NT_STAT_GET(s->workers[i]->stats.handed_over);
	return n;
}

/*
 * Stop accepting, let the workers drain for up to shutdown_grace, then
 * close what is left. With the fd store on, clients in it are handed over
 * instead: they stay connected through systemd for the next natterd. A
 * second SIGTERM/SIGINT ends the process at once.
 */
static int shutdown_server(struct server *s)
{
	uint64_t deadline =
	    nt_now_ms() + (uint64_t)s->cfg->timeouts.shutdown_grace * 1000;
	bool handover = nt_sd_store_enabled();

	nt_sd_stopping(handover ? "stopping; clients stay in the fd store "
	                          "for a restart"
	                        : "stopping");
	stop_listeners(s, handover);
	post_all(s, handover ? NT_MSG_HANDOVER : NT_MSG_DRAIN);
	while (!workers_done(s)) {
		uint64_t now = nt_now_ms();
		if (now >= deadline)
			break;
		int sig =
		    wait_signal(s->sigfd, (int)NT_MIN(deadline - now, 50));
		if (sig == SIGTERM || sig == SIGINT) {
			nt_log_warnx("second signal during shutdown: exiting "
			             "now");
			/* at once, abandoning the threads on purpose: the raw
			 * exit_group also keeps sanitizers from calling that a
			 * thread leak */
			syscall(SYS_exit_group, EXIT_FORCED);
		}
	}
	if (!workers_done(s)) {
		nt_log_notice("shutdown grace of %u s is over: closing the "
		              "remaining connections",
		              s->cfg->timeouts.shutdown_grace);
		post_all(s, NT_MSG_STOP);
	}
	for (size_t i = 0; i < s->n_inited; i++)
		nt_worker_join(s->workers[i]);
	if (handover) {
		struct nt_log_ctx ctx = {.msgid = NT_MSGID_HANDOVER};
		nt_logc(NT_LOG_NOTICE, &ctx,
		        "%llu client%s left in the systemd fd store: they stay "
		        "connected if natterd is restarted",
		        (unsigned long long)handed_over(s),
		        handed_over(s) == 1 ? "" : "s");
	}
	return EXIT_OK;
}

static void log_stats(struct server *s)
{
	struct nt_stats st;
	char line[512];

	nt_stats_collect(&st, s->admit_ready ? &s->admit : NULL, s->workers,
	                 s->n_inited);
	nt_stats_format(&st, line, sizeof(line));
	nt_log_info("stats: %s", line);
}

/* ---- reload ------------------------------------------------------------- */

static void reload_failed(struct server *s, const char *why)
{
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_RELOAD_FAILED};
	char text[256];

	nt_logc(NT_LOG_ERR, &ctx,
	        "reload failed: %s; the previous configuration stays in force",
	        why);
	snprintf(s->note, sizeof(s->note), "last reload failed: %s", why);
	status_text(s, text, sizeof(text));
	nt_sd_ready(text);
}

/* what a reload cannot change in a running process */
static void reload_restart_only(const struct server *s,
                                const struct nt_config *cfg)
{
	if (cfg->workers != s->cfg->workers)
		nt_log_notice("reload: workers = %u takes effect at the next "
		              "restart (running %zu)",
		              cfg->workers, s->n_workers);
	if (strcmp(cfg->user, s->cfg->user))
		nt_log_notice("reload: user = \"%s\" takes effect at the next "
		              "restart",
		              cfg->user);
}

/*
 * The listeners of the running set that set drops, as "name" strings with
 * a leading '+' when they are in the fd store: admission frees them
 * once it switches, so their names are taken before. NULL if none.
 */
static char **reload_removed(const struct server *s,
                             const struct nt_listener_set *set, size_t *n)
{
	char **v = calloc(s->set->n + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; v && i < s->set->n; i++) {
		const struct nt_listener *l = s->set->l[i];
		if (nt_listener_set_has(set, l))
			continue;
		char *name = malloc(strlen(l->name) + 2);
		if (!name)
			continue;
		sprintf(name, "%s%s", l->stored ? "+" : "", l->name);
		v[(*n)++] = name;
	}
	return v;
}

/* admission closed them (done): say so, and take them out of the fd
 * store; then free the list */
static void reload_forget(char **removed, bool done)
{
	for (size_t i = 0; removed && removed[i]; i++) {
		bool stored = removed[i][0] == '+';
		const char *name = removed[i] + stored;
		if (done)
			nt_log_info("listener \"%s\" closed", name);
		if (done && stored)
			nt_sd_forget_listener(name);
		free(removed[i]);
	}
	free(removed);
}

/* give every worker the new config and set, wait, then let admission
 * switch sets (closing the removed listeners) and limits */
static bool reload_apply(struct server *s, struct nt_config *cfg,
                         struct nt_listener_set *set, unsigned max_conns)
{
	struct nt_latch *latch = nt_latch_new((unsigned)s->n_workers);

	if (!latch)
		return false;
	for (size_t i = 0; i < s->n_workers; i++)
		if (nt_worker_post_config(s->workers[i], cfg, latch) < 0) {
			nt_log_errx("worker %zu: out of memory: it keeps the "
			            "previous configuration",
			            i);
			nt_latch_done(latch);
		}
	bool in_time = nt_latch_wait(latch, SYNC_WAIT_MS);
	if (!workers_listen(s, set) || !in_time)
		nt_log_warnx("reload: some workers took over %d ms to apply "
		             "it",
		             SYNC_WAIT_MS);
	nt_admit_update(&s->admit, set, max_conns, cfg->limits.per_ip);
	return true;
}

/*
 * SIGHUP: validate the new file; on any error keep everything as it is.
 * Otherwise open the listeners it adds (a failure also keeps everything),
 * then let every worker switch config (re-resolving its connections'
 * listeners, so unchanged listeners keep their connections and new
 * timeouts and limits apply to them) and accept on the new set, and close
 * the removed listeners.
 */
static void reload(struct server *s, const struct options *o)
{
	struct nt_config_diag diag = {0};
	struct nt_config *cfg = NULL;
	struct nt_listener_set *set = NULL;
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_RELOADED};
	char text[256];

	nt_sd_reloading();
	nt_log_notice("SIGHUP: reloading %s", o->config);
	if (nt_config_load_file(o->config, &cfg, &diag) < 0) {
		print_diag(&diag, true);
		nt_config_diag_clear(&diag);
		reload_failed(s, "the file has errors");
		return;
	}
	if (nt_listener_set_reload(s->set, cfg, &set) < 0) {
		nt_config_unref(cfg);
		reload_failed(s, "a listener could not be opened");
		return;
	}
	reload_restart_only(s, cfg);
	unsigned max_conns = nt_proc_fd_budget(cfg, s->n_workers);
	size_t added = 0, removed;
	for (size_t i = 0; i < set->n; i++)
		added += !nt_listener_set_has(s->set, set->l[i]);
	char **gone = reload_removed(s, set, &removed);
	if (!reload_apply(s, cfg, set, max_conns)) {
		reload_forget(gone, false);
		nt_listener_set_close(set, s->set);
		nt_config_unref(cfg);
		reload_failed(s, "out of memory");
		return;
	}
	reload_forget(gone, true);
	s->set = set;
	s->max_conns = max_conns;
	nt_services_reload(s->svc_shared, cfg);
	if (cfg->core_dumps != s->cfg->core_dumps)
		nt_proc_core_dumps(cfg->core_dumps);
	nt_config_unref(s->cfg);
	s->cfg = cfg;
	nt_log_set_level(o->have_level ? o->level : cfg->log_level);
	s->note[0] = '\0';
	nt_logc(NT_LOG_NOTICE, &ctx,
	        "reloaded %s: %zu listeners (%zu opened, %zu closed), "
	        "log_level %s, max_connections %u",
	        o->config, set->n, added, removed,
	        nt_log_level_name(nt_log_get_level()), max_conns);
	status_text(s, text, sizeof(text));
	nt_sd_ready(text);
}

#ifdef NT_TEST_HOOKS
/* test hook: NATTERD_TEST_STALL_MS=N makes SIGUSR2 block worker 0 for N ms,
 * so the tests can see the watchdog hold back its pings */
static unsigned test_stall_ms(void)
{
	const char *e = getenv("NATTERD_TEST_STALL_MS");

	return e ? (unsigned)strtoul(e, NULL, 10) : 0;
}

static void test_stall(struct nt_worker *w, void *arg)
{
	unsigned ms = (unsigned)(uintptr_t)arg;

	nt_log_warnx("test hook: worker %u stalls for %u ms", w->id, ms);
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void test_stall_post(struct server *s)
{
	struct nt_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return;
	m->type = NT_MSG_CALL;
	m->u.call.fn = test_stall;
	m->u.call.arg = (void *)(uintptr_t)test_stall_ms();
	nt_worker_post(s->workers[0], m);
}
#endif

static int serve(struct server *s, const struct options *o)
{
	for (;;) {
		int sig = wait_signal(s->sigfd, tick_timeout(s));
		if (sig == SIGHUP) {
			reload(s, o);
		} else if (sig == SIGTERM || sig == SIGINT) {
			nt_log_notice("shutting down (%s)", strsignal(sig));
			return shutdown_server(s);
		}
#ifdef NT_TEST_HOOKS
		else if (sig == SIGUSR2) {
			test_stall_post(s);
		}
#endif
		tick(s);
	}
}

static int block_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN); /* writev on a closed socket */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
#ifdef NT_TEST_HOOKS
	if (test_stall_ms())
		sigaddset(&set, SIGUSR2);
#endif
	/* blocked before any thread starts, so every thread inherits it and
	 * signals are only ever read from the signalfd */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC);
}

static void server_free(struct server *s)
{
	for (size_t i = 0; i < s->n_inited; i++)
		nt_worker_destroy(s->workers[i]);
	if (s->admit_ready)
		nt_admit_destroy(&s->admit);
	else
		nt_listener_set_close(s->set, NULL);
	nt_services_stop(s->svc_shared);
	free(s->worker_mem);
	free(s->workers);
	free(s->beats);
	if (s->sigfd >= 0)
		close(s->sigfd);
	nt_config_unref(s->cfg);
}

/* which listeners systemd provided, for the operator */
static void log_from_systemd(const struct server *s)
{
	char names[512];
	size_t len = 0;

	names[0] = '\0';
	for (size_t i = 0; i < s->set->n; i++)
		if (s->set->l[i]->origin == NT_LISTENER_SOCKET &&
		    len < sizeof(names))
			len += (size_t)snprintf(
			    names + len, sizeof(names) - len, "%s%s",
			    len ? ", " : "", s->set->l[i]->name);
	if (len)
		nt_log_info("listeners from systemd socket activation: %s",
		            names);
}

/* everything up to READY=1; the exit status if something failed */
static int start(struct server *s)
{
	struct nt_sd_fds fds = {0};
	int status = EXIT_START;

	s->n_workers = nt_proc_workers(s->cfg);
	s->max_conns = nt_proc_fd_budget(s->cfg, s->n_workers);
	if (s->max_conns == 0) {
		nt_log_errx("too few file descriptors to serve anyone");
		return EXIT_START;
	}
	if ((s->sigfd = block_signals()) < 0) {
		nt_log_err("cannot set up signal handling");
		return EXIT_START;
	}
	nt_proc_core_dumps(s->cfg->core_dumps);
	if (nt_sd_fds_take(&fds) < 0 ||
	    nt_listener_set_open(s->cfg, &fds, &s->set) < 0 ||
	    nt_proc_drop_privileges(s->cfg->user) < 0)
		goto out;
	if (s->cfg->core_dumps && s->cfg->user[0])
		nt_proc_core_dumps(true); /* setuid() made us non-dumpable */
	if (start_threads(s) < 0)
		goto out;
	adopt_clients(s, &fds);
	/* only now, so that no new client can take a kept client's nick */
	if (!workers_listen(s, s->set)) {
		nt_log_errx("the workers could not start accepting");
		goto out;
	}
	log_from_systemd(s);
	status = EXIT_OK;
out:
	nt_sd_fds_free(&fds);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct nt_config_diag diag = {0};
	struct server s = {.sigfd = -1};
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_STARTED};
	char text[256];
	int status;

	if (parse_options(argc, argv, &o) < 0)
		return EXIT_USAGE;
	nt_log_init("natterd", o.have_level ? o.level : NT_LOG_INFO);
	nt_sd_init();
	if (nt_config_load_file(o.config, &s.cfg, &diag) < 0) {
		print_diag(&diag, !o.check_only);
		nt_config_diag_clear(&diag);
		if (o.check_only)
			fprintf(stderr, "configuration has errors\n");
		return EXIT_CONFIG;
	}
	if (o.check_only) {
		printf("configuration OK\n");
		nt_config_unref(s.cfg);
		return EXIT_OK;
	}
	nt_log_set_level(o.have_level ? o.level : s.cfg->log_level);
	status = start(&s);
	if (status == EXIT_OK) {
		nt_logc(NT_LOG_INFO, &ctx,
		        "natterd %s ready: %zu workers, %zu listeners, "
		        "max_connections %u",
		        PACKAGE_VERSION, s.n_workers, s.set->n, s.max_conns);
		status_text(&s, text, sizeof(text));
		nt_sd_ready(text);
		watchdog_snapshot(&s);
		s.wd_last_ms = nt_now_ms();
		s.status_next_ms = s.wd_last_ms + STATUS_PERIOD_MS;
		status = serve(&s, &o);
		log_stats(&s);
		ctx.msgid = NT_MSGID_STOPPED;
		nt_logc(NT_LOG_INFO, &ctx, "stopped");
	} else {
		/* start-up failed part way: stop whatever did start */
		post_all(&s, NT_MSG_STOP);
		for (size_t i = 0; i < s.n_inited; i++)
			nt_worker_join(s.workers[i]);
	}
	server_free(&s);
	return status;
}
