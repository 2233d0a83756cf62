/*
 * natterd: options, start-up and the signal loop. This thread only waits
 * on a signalfd and talks to systemd; what it sets going lives in
 * server.c (the threads), proc.c (the process) and status.c (systemd).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>

#include "adopt.h"
#include "config.h"
#include "log.h"
#include "proc.h"
#include "sd.h"
#include "server.h"
#include "status.h"
#include "worker.h"

#define DEFAULT_CONFIG NT_SYSCONFDIR "/natter/natterd.conf"

struct options {
	const char *config;
	bool check_only;
	bool have_level;
	enum nt_log_level level;
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
			exit(NT_EXIT_OK);
		case 'h':
			usage(stdout);
			exit(NT_EXIT_OK);
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

static void test_stall_post(struct nt_server *s)
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

static int serve(struct nt_server *s, const struct options *o)
{
	for (;;) {
		int sig = nt_server_wait_signal(s->sigfd, nt_status_timeout(s));
		if (sig == SIGHUP) {
			nt_server_reload(s, o->config,
			                 o->have_level ? &o->level : NULL);
			nt_status_ready(s);
		} else if (sig == SIGTERM || sig == SIGINT) {
			nt_log_notice("shutting down (%s)", strsignal(sig));
			return nt_server_shutdown(s);
		}
#ifdef NT_TEST_HOOKS
		else if (sig == SIGUSR2) {
			test_stall_post(s);
		}
#endif
		nt_status_tick(s);
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

/* which listeners systemd provided, for the operator */
static void log_from_systemd(const struct nt_server *s)
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
static int start(struct nt_server *s)
{
	struct nt_sd_fds fds = {0};
	int status = NT_EXIT_START;

	s->n_workers = nt_proc_workers(s->cfg);
	s->max_conns = nt_proc_fd_budget(s->cfg, s->n_workers);
	if (s->max_conns == 0) {
		nt_log_errx("too few file descriptors to serve anyone");
		return NT_EXIT_START;
	}
	if ((s->sigfd = block_signals()) < 0) {
		nt_log_err("cannot set up signal handling");
		return NT_EXIT_START;
	}
	nt_proc_core_dumps(s->cfg->core_dumps);
	if (nt_sd_fds_take(&fds) < 0 ||
	    nt_listener_set_open(s->cfg, &fds, &s->set) < 0 ||
	    nt_proc_drop_privileges(s->cfg->user) < 0)
		goto out;
	if (s->cfg->core_dumps && s->cfg->user[0])
		nt_proc_core_dumps(true); /* setuid() made us non-dumpable */
	if (nt_server_start_threads(s) < 0)
		goto out;
	nt_adopt_clients(s, &fds);
	/* only now, so that no new client can take a kept client's nick */
	if (!nt_server_listen(s, s->set)) {
		nt_log_errx("the workers could not start accepting");
		goto out;
	}
	log_from_systemd(s);
	status = NT_EXIT_OK;
out:
	nt_sd_fds_free(&fds);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct nt_config_diag diag = {0};
	struct nt_server s = {.sigfd = -1};
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_STARTED};
	int status;

	if (parse_options(argc, argv, &o) < 0)
		return NT_EXIT_USAGE;
	nt_log_init("natterd", o.have_level ? o.level : NT_LOG_INFO);
	nt_sd_init();
	if (nt_config_load_file(o.config, &s.cfg, &diag) < 0) {
		nt_server_diag(&diag, !o.check_only);
		nt_config_diag_clear(&diag);
		if (o.check_only)
			fprintf(stderr, "configuration has errors\n");
		return NT_EXIT_CONFIG;
	}
	if (o.check_only) {
		printf("configuration OK\n");
		nt_config_unref(s.cfg);
		return NT_EXIT_OK;
	}
	nt_log_set_level(o.have_level ? o.level : s.cfg->log_level);
	status = start(&s);
	if (status == NT_EXIT_OK) {
		nt_logc(NT_LOG_INFO, &ctx,
		        "natterd %s ready: %zu workers, %zu listeners, "
		        "max_connections %u",
		        PACKAGE_VERSION, s.n_workers, s.set->n, s.max_conns);
		nt_status_ready(&s);
		nt_status_start(&s);
		status = serve(&s, &o);
		nt_server_log_stats(&s);
		ctx.msgid = NT_MSGID_STOPPED;
		nt_logc(NT_LOG_INFO, &ctx, "stopped");
	} else {
		/* start-up failed part way: stop whatever did start */
		nt_server_stop(&s);
	}
	nt_server_free(&s);
	return status;
}
