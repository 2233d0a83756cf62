/*
 * The supervisor, on the main thread: it starts the workers and, since
 * they own every connection, changes them only through messages, waiting
 * on a latch where the next step needs them all to have moved (reload,
 * the listeners at start and shutdown).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "sd.h"
#include "server.h"
#include "stats.h"
#include "util.h"

/* how long the main thread waits for the others to apply a change */
#define SYNC_WAIT_MS 10000

void nt_server_diag(const struct nt_config_diag *d, bool as_log)
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

int nt_server_start_threads(struct nt_server *s)
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
		nt_log(NT_LOG_ERR, -rc, "cannot set up admission");
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

bool nt_server_listen(struct nt_server *s, const struct nt_listener_set *set)
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

bool nt_server_sync(struct nt_server *s)
{
	struct nt_latch *l = nt_latch_new((unsigned)s->n_workers);

	for (size_t i = 0; l && i < s->n_workers; i++)
		if (nt_worker_post_barrier(s->workers[i], l) < 0)
			nt_latch_done(l);
	return nt_latch_wait(l, SYNC_WAIT_MS);
}

/* ---- shutdown ----------------------------------------------------------- */

static bool workers_done(const struct nt_server *s)
{
	for (size_t i = 0; i < s->n_inited; i++)
		if (s->workers[i]->started &&
		    !atomic_load(&s->workers[i]->done))
			return false;
	return true;
}

static void post_all(struct nt_server *s, enum nt_msg_type type)
{
	for (size_t i = 0; i < s->n_inited; i++)
		if (s->workers[i]->started &&
		    nt_worker_post_type(s->workers[i], type) < 0)
			nt_log_errx("worker %zu: out of memory posting a "
			            "message",
			            i);
}

int nt_server_wait_signal(int sigfd, int timeout_ms)
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
static void stop_listeners(struct nt_server *s, bool handover)
{
	struct nt_listener_set *set = NULL;

	if (s->admit_ready) {
		if (!nt_server_listen(s, NULL))
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

static uint64_t handed_over(const struct nt_server *s)
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
int nt_server_shutdown(struct nt_server *s)
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
		int sig = nt_server_wait_signal(
		    s->sigfd, (int)NT_MIN(deadline - now, 50));
		if (sig == SIGTERM || sig == SIGINT) {
			nt_log_warnx("second signal during shutdown: exiting "
			             "now");
			/* at once, abandoning the threads on purpose: the raw
			 * exit_group also keeps sanitizers from calling that a
			 * thread leak */
			syscall(SYS_exit_group, NT_EXIT_FORCED);
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
	return NT_EXIT_OK;
}

void nt_server_log_stats(struct nt_server *s)
{
	struct nt_stats st;
	char line[512];

	nt_stats_collect(&st, s->admit_ready ? &s->admit : NULL, s->workers,
	                 s->n_inited);
	nt_stats_format(&st, line, sizeof(line));
	nt_log_info("stats: %s", line);
}

/* ---- reload ------------------------------------------------------------- */

static void reload_failed(struct nt_server *s, const char *why)
{
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_RELOAD_FAILED};

	nt_logc(NT_LOG_ERR, &ctx,
	        "reload failed: %s; the previous configuration stays in force",
	        why);
	snprintf(s->note, sizeof(s->note), "last reload failed: %s", why);
}

/* what a reload cannot change in a running process */
static void reload_restart_only(const struct nt_server *s,
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
static char **reload_removed(const struct nt_server *s,
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
static bool reload_apply(struct nt_server *s, struct nt_config *cfg,
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
	if (!nt_server_listen(s, set) || !in_time)
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
void nt_server_reload(struct nt_server *s, const char *path,
                      const enum nt_log_level *level)
{
	struct nt_config_diag diag = {0};
	struct nt_config *cfg = NULL;
	struct nt_listener_set *set = NULL;
	struct nt_log_ctx ctx = {.msgid = NT_MSGID_RELOADED};

	nt_sd_reloading();
	nt_log_notice("SIGHUP: reloading %s", path);
	if (nt_config_load_file(path, &cfg, &diag) < 0) {
		nt_server_diag(&diag, true);
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
	nt_log_set_level(level ? *level : cfg->log_level);
	s->note[0] = '\0';
	nt_logc(NT_LOG_NOTICE, &ctx,
	        "reloaded %s: %zu listeners (%zu opened, %zu closed), "
	        "log_level %s, max_connections %u",
	        path, set->n, added, removed,
	        nt_log_level_name(nt_log_get_level()), max_conns);
}

void nt_server_free(struct nt_server *s)
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

void nt_server_stop(struct nt_server *s)
{
	post_all(s, NT_MSG_STOP);
	for (size_t i = 0; i < s->n_inited; i++)
		nt_worker_join(s->workers[i]);
}
