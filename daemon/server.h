/*
 * The supervisor: the worker threads' start, the latches that let the main
 * thread wait for them, reload and shutdown. The main thread alone calls
 * these; the workers only see the messages posted to them.
 */
#ifndef NT_SERVER_H
#define NT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admit.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "service.h"
#include "worker.h"

/* natterd's exit status */
enum {
	NT_EXIT_OK = 0,
	NT_EXIT_CONFIG = 1, /* the configuration is invalid or unreadable */
	NT_EXIT_USAGE = 2,  /* bad command line */
	NT_EXIT_START = 3,  /* could not start: bind, threads, resources */
	NT_EXIT_FORCED = 4, /* a second signal cut shutdown short */
};

struct nt_server {
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

	/* watchdog (status.c): every worker's heartbeat at the last ping */
	uint64_t *beats;
	uint64_t wd_last_ms; /* last ping */
	bool wd_waiting;     /* a ping is due, but someone did not move */
	bool wd_stuck;       /* ...for a while: it was logged */
	uint64_t status_next_ms;
};

/* configuration errors, to the log (as_log) or to stderr */
void nt_server_diag(const struct nt_config_diag *d, bool as_log);
/* s->cfg, s->set, s->n_workers and s->max_conns set: init the workers and
 * admission (which owns s->set from then on) and start the threads */
int nt_server_start_threads(struct nt_server *s);
/*
 * Let every worker accept on set's listeners (NULL: on none) and wait until
 * all of them do; false if one could not be told or took too long.
 */
bool nt_server_listen(struct nt_server *s, const struct nt_listener_set *set);
/* wait until every worker has handled what was posted to it so far */
bool nt_server_sync(struct nt_server *s);
/* Returns the signal that arrived, or 0 after timeout_ms. */
int nt_server_wait_signal(int sigfd, int timeout_ms);
/* SIGHUP: reload path; level, when set, overrides the file's log_level.
 * A failure is logged and noted in s->note; nothing changes then. */
void nt_server_reload(struct nt_server *s, const char *path,
                      const enum nt_log_level *level);
/* SIGTERM/SIGINT: drain or hand over, then join; the exit status */
int nt_server_shutdown(struct nt_server *s);
/* start-up failed part way: stop and join whatever did start */
void nt_server_stop(struct nt_server *s);
void nt_server_log_stats(struct nt_server *s);
void nt_server_free(struct nt_server *s);

#endif
