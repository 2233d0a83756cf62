/*
 * natterd: options, start-up, the signal loop and shutdown. Everything that
 * serves clients lives in the threads started from here; this thread only
 * waits on a signalfd.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "acceptor.h"
#include "config.h"
#include "hub.h"
#include "listener.h"
#include "log.h"
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
/* fds the daemon needs besides its clients: stdio, epoll and eventfds,
 * the acceptor's timer and spare, the signalfd, and some slack */
#define FD_RESERVE_BASE 32

struct options {
	const char *config;
	bool check_only;
	bool have_level;
	enum nt_log_level level;
};

struct server {
	struct nt_config *cfg;
	struct nt_listener *listeners;
	const struct nt_listener_conf **lconfs;
	size_t n_listeners;
	struct nt_worker *worker_mem;
	struct nt_worker **workers;
	size_t n_workers;
	size_t n_inited; /* workers[0..n_inited) went through init */
	struct nt_acceptor acceptor;
	bool acceptor_ready;
	struct nt_hub *hub;
	int sigfd;
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

/*
 * Raise the soft fd limit as far as the configuration needs and the hard
 * limit allows; if even that is too low, say so plainly and serve as many
 * clients as will fit rather than fail at the worst moment.
 */
static unsigned fd_budget(const struct nt_config *cfg, size_t n_workers)
{
	struct rlimit rl;
	rlim_t reserve = FD_RESERVE_BASE + cfg->n_listeners + 2 * n_workers;
	rlim_t need = cfg->max_connections + reserve;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return cfg->max_connections;
	if (rl.rlim_cur < need) {
		struct rlimit nrl = rl;
		nrl.rlim_cur = rl.rlim_max == RLIM_INFINITY
		                   ? need
		                   : (need < rl.rlim_max ? need : rl.rlim_max);
		if (setrlimit(RLIMIT_NOFILE, &nrl) == 0)
			rl = nrl;
	}
	if (rl.rlim_cur >= need)
		return cfg->max_connections;
	unsigned fit =
	    rl.rlim_cur > reserve ? (unsigned)(rl.rlim_cur - reserve) : 0;
	nt_log_warnx("max_connections %u needs about %llu file descriptors, "
	             "but the limit is %llu (hard limit %llu): natterd will "
	             "accept at most %u connections; raise the limit "
	             "(LimitNOFILE= or ulimit -n) or lower max_connections",
	             cfg->max_connections, (unsigned long long)need,
	             (unsigned long long)rl.rlim_cur,
	             (unsigned long long)rl.rlim_max, fit);
	return fit;
}

static int drop_privileges(const char *user)
{
	if (!user[0])
		return 0;
	if (geteuid() != 0) {
		nt_log_notice("not started as root: staying the current user "
		              "instead of \"%s\"",
		              user);
		return 0;
	}
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		nt_log_errx("user \"%s\": %s", user,
		            errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		nt_log_err("cannot become user \"%s\"", user);
		return -1;
	}
	/* make sure there is no way back */
	if (setuid(0) == 0 || geteuid() == 0) {
		nt_log_errx("still able to regain root after dropping to "
		            "\"%s\"",
		            user);
		return -1;
	}
	nt_log_info("running as user %s (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}

static int open_listeners(struct server *s)
{
	const struct nt_config *cfg = s->cfg;

	s->listeners = calloc(cfg->n_listeners, sizeof(*s->listeners));
	s->lconfs = calloc(cfg->n_listeners, sizeof(*s->lconfs));
	if (!s->listeners || !s->lconfs)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		s->lconfs[i] = &cfg->listeners[i];
		int rc = nt_listener_open(&s->listeners[i], s->lconfs[i]);
		if (rc < 0)
			return rc;
		s->n_listeners++;
	}
	return 0;
}

static void close_listeners(struct server *s)
{
	for (size_t i = 0; i < s->n_listeners; i++)
		nt_listener_close(&s->listeners[i]);
	s->n_listeners = 0;
}

static int start_threads(struct server *s, unsigned max_conns)
{
	int rc;

	s->worker_mem = calloc(s->n_workers, sizeof(*s->worker_mem));
	s->workers = calloc(s->n_workers, sizeof(*s->workers));
	s->hub = nt_hub_new((unsigned)s->n_workers, s->cfg->chat.max_rooms,
	                    s->cfg->chat.default_room);
	if (!s->worker_mem || !s->workers || !s->hub) {
		nt_log_errx("out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n_workers; i++) {
		s->workers[i] = &s->worker_mem[i];
		rc = nt_worker_init(s->workers[i], (unsigned)i, s->cfg,
		                    &s->acceptor, s->hub);
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
	rc = nt_acceptor_init(&s->acceptor, s->listeners, s->lconfs,
	                      s->n_listeners, s->workers, s->n_workers,
	                      max_conns, s->cfg->limits.per_ip);
	if (rc < 0) {
		nt_log(NT_LOG_ERR, -rc, "cannot set up the acceptor");
		return rc;
	}
	s->acceptor_ready = true;
	for (size_t i = 0; i < s->n_workers; i++)
		if ((rc = nt_worker_start(s->workers[i])) < 0) {
			nt_log(NT_LOG_ERR, -rc, "cannot start worker %zu", i);
			return rc;
		}
	if ((rc = nt_acceptor_start(&s->acceptor)) < 0) {
		nt_log(NT_LOG_ERR, -rc, "cannot start the acceptor");
		return rc;
	}
	return 0;
}

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
 * Stop accepting, let the workers drain for up to shutdown_grace, then
 * close what is left. A second SIGTERM/SIGINT ends the process at once.
 */
static int shutdown_server(struct server *s)
{
	uint64_t deadline =
	    nt_now_ms() + (uint64_t)s->cfg->timeouts.shutdown_grace * 1000;
	int status = EXIT_OK;

	if (s->acceptor_ready)
		nt_acceptor_stop(&s->acceptor);
	close_listeners(s);
	post_all(s, NT_MSG_DRAIN);
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
	return status;
}

static void log_stats(struct server *s)
{
	struct nt_stats st;
	char line[512];

	nt_stats_collect(&st, s->acceptor_ready ? &s->acceptor : NULL,
	                 s->workers, s->n_inited);
	nt_stats_format(&st, line, sizeof(line));
	nt_log_info("stats: %s", line);
}

static void reload(struct server *s, const char *path)
{
	struct nt_config_diag diag = {0};
	struct nt_config *cfg = NULL;

	nt_log_notice("SIGHUP: reloading %s", path);
	if (nt_config_load_file(path, &cfg, &diag) < 0) {
		print_diag(&diag, true);
		nt_log_errx("reload failed: the previous configuration "
		            "stays in force");
		nt_config_diag_clear(&diag);
		return;
	}
	nt_log_set_level(cfg->log_level);
	nt_log_notice("reloaded: log_level is now %s; other changes take "
	              "effect at the next restart",
	              nt_log_level_name(cfg->log_level));
	(void)s;
	nt_config_unref(cfg);
}

static int serve(struct server *s, const struct options *o)
{
	for (;;) {
		int sig = wait_signal(s->sigfd, -1);
		if (sig == SIGHUP) {
			reload(s, o->config);
			if (o->have_level)
				nt_log_set_level(o->level);
		} else if (sig == SIGTERM || sig == SIGINT) {
			nt_log_notice("shutting down (%s)", strsignal(sig));
			return shutdown_server(s);
		}
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
	if (s->acceptor_ready)
		nt_acceptor_destroy(&s->acceptor);
	nt_hub_free(s->hub);
	close_listeners(s);
	free(s->worker_mem);
	free(s->workers);
	free(s->listeners);
	free(s->lconfs);
	if (s->sigfd >= 0)
		close(s->sigfd);
	nt_config_unref(s->cfg);
}

static unsigned resolve_workers(const struct nt_config *cfg)
{
	if (cfg->workers)
		return cfg->workers;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (n > NT_MAX_WORKERS ? NT_MAX_WORKERS : (unsigned)n);
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct nt_config_diag diag = {0};
	struct server s = {.sigfd = -1};
	int status = EXIT_START;

	if (parse_options(argc, argv, &o) < 0)
		return EXIT_USAGE;
	nt_log_init("natterd", o.have_level ? o.level : NT_LOG_INFO);
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
	s.n_workers = resolve_workers(s.cfg);
	unsigned max_conns = fd_budget(s.cfg, s.n_workers);
	if (max_conns == 0) {
		nt_log_errx("too few file descriptors to serve anyone");
		goto out;
	}
	if ((s.sigfd = block_signals()) < 0) {
		nt_log_err("cannot set up signal handling");
		goto out;
	}
	if (open_listeners(&s) < 0 || drop_privileges(s.cfg->user) < 0 ||
	    start_threads(&s, max_conns) < 0)
		goto out;
	nt_log_info("natterd %s ready: %zu workers, %zu listeners, "
	            "max_connections %u",
	            PACKAGE_VERSION, s.n_workers, s.n_listeners, max_conns);
	status = serve(&s, &o);
	log_stats(&s);
	nt_log_info("stopped");
out:
	if (status != EXIT_OK) {
		/* start-up failed part way: stop whatever did start */
		if (s.acceptor_ready)
			nt_acceptor_stop(&s.acceptor);
		post_all(&s, NT_MSG_STOP);
		for (size_t i = 0; i < s.n_inited; i++)
			nt_worker_join(s.workers[i]);
	}
	server_free(&s);
	return status;
}
