/*
 * The process's resources and identity, set once at start (and core dumps
 * again at reload): kept apart from the supervisor because they are about
 * the kernel's limits on natterd, not about its threads.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "sd.h"

/* fds the daemon needs besides its clients and the listeners (each worker
 * has a duplicate of each): stdio, epoll and eventfds, the spare fd kept
 * for running out, the signalfd, and some slack */
#define FD_RESERVE_BASE 32

/*
 * Raise the soft fd limit as far as the configuration needs and the hard
 * limit allows; if even that is too low, say so plainly and serve as many
 * clients as will fit rather than fail at the worst moment.
 */
unsigned nt_proc_fd_budget(const struct nt_config *cfg, size_t n_workers)
{
	struct rlimit rl;
	rlim_t reserve = FD_RESERVE_BASE + cfg->n_listeners * (n_workers + 1) +
	                 2 * n_workers;
	/* a client in the fd store shares its group's memfd of sessions; a
	 * client that came alone in its 100 ms window has one to itself */
	rlim_t per_conn = nt_sd_store_enabled() ? 2 : 1;
	rlim_t need = cfg->max_connections * per_conn + reserve;

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
	unsigned fit = rl.rlim_cur > reserve
	                   ? (unsigned)((rl.rlim_cur - reserve) / per_conn)
	                   : 0;
	nt_log_warnx("max_connections %u needs about %llu file descriptors, "
	             "but the limit is %llu (hard limit %llu): natterd will "
	             "accept at most %u connections; raise the limit "
	             "(LimitNOFILE= or ulimit -n) or lower max_connections",
	             cfg->max_connections, (unsigned long long)need,
	             (unsigned long long)rl.rlim_cur,
	             (unsigned long long)rl.rlim_max, fit);
	return fit;
}

int nt_proc_drop_privileges(const char *user)
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

/*
 * A core file holds whatever was in memory: chat lines, private messages.
 * Off unless core_dumps = true: the soft RLIMIT_CORE goes to 0 (the hard
 * limit stays, so that a reload can turn them back on) or, where a seccomp
 * filter refuses setrlimit (the shipped unit's ~@resources), the process
 * is made non-dumpable instead. On: the soft limit is raised to the hard
 * one, and a process that dropped root is made dumpable again (setuid()
 * cleared that). Quiet unless something fails.
 */
void nt_proc_core_dumps(bool on)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_CORE, &rl) < 0)
		rl.rlim_max = RLIM_INFINITY;
	if (!on) {
		rl.rlim_cur = 0;
		if (setrlimit(RLIMIT_CORE, &rl) < 0 &&
		    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			nt_log_warn("cannot turn core dumps off");
		return;
	}
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_CORE, &rl) < 0)
			nt_log_warn("core_dumps = true, but RLIMIT_CORE "
			            "cannot be raised");
	}
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1 &&
	    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		nt_log_warn("core_dumps = true, but natterd cannot be made "
		            "dumpable");
}

unsigned nt_proc_workers(const struct nt_config *cfg)
{
	if (cfg->workers)
		return cfg->workers;
	/* the CPUs we may run on (taskset, systemd's CPUAffinity=, a
	 * container's cpuset), not every CPU the machine has: a worker per
	 * CPU we cannot use only waits for a core */
	cpu_set_t set;
	long n = sched_getaffinity(0, sizeof(set), &set) == 0
	             ? CPU_COUNT(&set)
	             : sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (n > NT_MAX_WORKERS ? NT_MAX_WORKERS : (unsigned)n);
}
