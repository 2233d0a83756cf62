/*
 * The end-to-end harness (see nt_test.h): natterd processes with their temp
 * dirs and logs, bounded client I/O, and /proc probes. Nothing here waits
 * without a deadline.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, vasprintf, nftw (configure defines it) */
#endif
#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nt_test.h"

#define LIVE_MAX      32
#define MAX_ARGS      40
#define IO_CHUNK      65536
#define LOG_TAIL_SHOW 3000

/* ---- bookkeeping: nothing may outlive the test --------------------------- */

/*
 * Daemons still running at a normal exit (a test that forgot its teardown,
 * or CK_NOFORK) are killed by an atexit handler; live_pid keeps a forked
 * copy of the table from acting.
 */
static struct nt_daemon *live[LIVE_MAX];
static pid_t live_pid;

static void live_cleanup(void)
{
	if (getpid() != live_pid)
		return;
	for (size_t i = 0; i < LIVE_MAX; i++)
		if (live[i])
			nt_daemon_cleanup(live[i]);
}

static void live_add(struct nt_daemon *d)
{
	static bool registered;

	if (live_pid != getpid()) {
		memset(live, 0, sizeof(live));
		live_pid = getpid();
	}
	if (!registered) {
		atexit(live_cleanup);
		registered = true;
	}
	for (size_t i = 0; i < LIVE_MAX; i++)
		if (live[i] == d)
			return;
	for (size_t i = 0; i < LIVE_MAX; i++)
		if (!live[i]) {
			live[i] = d;
			return;
		}
}

static void live_remove(struct nt_daemon *d)
{
	for (size_t i = 0; i < LIVE_MAX; i++)
		if (live[i] == d)
			live[i] = NULL;
}

/*
 * The reaper: a process of its own session (so that Check's killpg at a
 * timeout misses it) reading "+DIR" and "-DIR" lines from a pipe whose
 * write end only the test process holds. EOF means the test process is
 * gone, however it ended: the reaper then removes the dirs still listed.
 */
static int reaper_fd = -1;
static pid_t reaper_for; /* the test process that reaper_fd serves */

static int rm_entry(const char *path, const struct stat *st, int type,
                    struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static noreturn void reaper_main(int fd)
{
	static char dirs[LIVE_MAX][256], line[256 + 1];
	size_t n = 0, len = 0;
	char c;

	for (;;) {
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (c != '\n') {
			if (len < sizeof(line) - 1)
				line[len++] = c;
			continue;
		}
		line[len] = '\0';
		len = 0;
		if (line[0] == '+' && n < LIVE_MAX) {
			snprintf(dirs[n++], sizeof(dirs[0]), "%s", line + 1);
			continue;
		}
		for (size_t i = 0; line[0] == '-' && i < n; i++)
			if (strcmp(dirs[i], line + 1) == 0) {
				memcpy(dirs[i], dirs[--n], sizeof(dirs[0]));
				break;
			}
	}
	/* the daemons die with the test (PDEATHSIG): let them finish */
	for (int tries = 0; tries < 10; tries++) {
		bool left = false;
		for (size_t i = 0; i < n; i++) {
			rm_tree(dirs[i]);
			left |= access(dirs[i], F_OK) == 0;
		}
		if (!left)
			break;
		nt_sleep_ms(100);
	}
	_exit(0);
}

/* start this test process's reaper if need be; false if there is none */
static bool reaper_start(void)
{
	int p[2];

	if (reaper_for == getpid())
		return reaper_fd >= 0;
	if (reaper_fd >= 0)
		close(reaper_fd); /* a parent's, inherited: not ours to use */
	reaper_fd = -1;
	reaper_for = getpid();
	if (pipe2(p, O_CLOEXEC) < 0)
		return false;
	pid_t pid = fork();
	if (pid == 0) {
		/* hold nothing of the test's: no port, socket or pipe */
		int null = open("/dev/null", O_RDWR);
		dup2(p[0], 0);
		dup2(null, 1);
		dup2(null, 2);
		for (int fd = 3; fd < 4096; fd++)
			close(fd);
		setsid();
		reaper_main(0);
	}
	close(p[0]);
	if (pid < 0) {
		close(p[1]);
		return false;
	}
	reaper_fd = p[1];
	return true;
}

/* best effort: without a reaper, a failed test's dir merely stays */
static void reaper_send(char op, const char *dir)
{
	char line[300];
	int n = snprintf(line, sizeof(line), "%c%s\n", op, dir);

	if (n > 0 && (size_t)n < sizeof(line) && reaper_start()) {
		ssize_t w = write(reaper_fd, line, (size_t)n);
		(void)w;
	}
}

void nt_make_tmpdir(char *buf, size_t size)
{
	const char *tmp = getenv("TMPDIR");

	/* unix socket paths must fit in sun_path: keep the dir short */
	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(buf, size, "%s/nt-e2e-XXXXXX", tmp);
	ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp %s: %s", buf,
	              strerror(errno));
	reaper_send('+', buf);
}

void nt_remove_tmpdir(const char *dir)
{
	rm_tree(dir);
	reaper_send('-', dir);
}

/* ---- small helpers ------------------------------------------------------ */

uint64_t nt_test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void nt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* milliseconds left until deadline, at least 0, for poll() */
static int ms_left(uint64_t deadline)
{
	uint64_t now = nt_test_now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

int nt_exit_code(int wait_status)
{
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	if (WIFSIGNALED(wait_status))
		return 128 + WTERMSIG(wait_status);
	return -1;
}

static const char *program_path(const char *env, const char *rel,
                                const char *up)
{
	const char *p = getenv(env);

	if (p && *p)
		return p;
	if (access(rel, X_OK) == 0)
		return rel;
	return up;
}

const char *nt_natterd_path(void)
{
	return program_path("NATTERD", "daemon/natterd", "../daemon/natterd");
}

const char *nt_natterd_test_path(void)
{
	return program_path("NATTERD_TEST", "daemon/natterd-test",
	                    "../daemon/natterd-test");
}

/* read a whole file; NUL-terminated, never NULL ("" if unreadable) */
static char *slurp_fd(int fd)
{
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);

	ck_assert_ptr_nonnull(buf);
	for (;;) {
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

static char *slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *s;

	if (fd < 0) {
		s = strdup("");
		ck_assert_ptr_nonnull(s);
		return s;
	}
	s = slurp_fd(fd);
	close(fd);
	return s;
}

/* "@DIR@" -> dir, everywhere in text; malloc'd */
static char *subst_dir(const char *text, const char *dir)
{
	static const char key[] = "@DIR@";
	size_t n = 0, klen = sizeof(key) - 1, dlen = strlen(dir);

	for (const char *p = text; (p = strstr(p, key)); p += klen)
		n++;
	char *out = malloc(strlen(text) + n * dlen + 1), *o = out;
	ck_assert_ptr_nonnull(out);
	for (const char *p = text, *q;; p = q + klen) {
		q = strstr(p, key);
		size_t seg = q ? (size_t)(q - p) : strlen(p);
		memcpy(o, p, seg);
		o += seg;
		if (!q)
			break;
		memcpy(o, dir, dlen);
		o += dlen;
	}
	*o = '\0';
	return out;
}

/*
 * In a freshly forked child, before exec: die with the test, start from a
 * clean signal state, and run under the requested fd limit. Only
 * async-signal-safe calls here: the test may have other threads.
 */
static void child_prepare(pid_t parent, long nofile)
{
	sigset_t none;
	struct sigaction dfl = {.sa_handler = SIG_DFL};

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127); /* the test died before prctl took effect */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < 32; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL);
	if (nofile > 0) {
		struct rlimit rl = {(rlim_t)nofile, (rlim_t)nofile};
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			_exit(127);
	}
}

/* fds from keep on are closed first: stdio and any passed fds stay */
static void child_exec(const char *path, char *const argv[], char *const envp[],
                       int keep)
{
	static const char msg[] = "nt_test: cannot exec natterd\n";

	/* Check's temp files and pipes are not the daemon's to hold, and
	 * would skew its fd counts */
	close_range((unsigned)keep, ~0U, 0);
	execve(path, argv, envp);
	ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	_exit(127);
}

/* ---- daemons ------------------------------------------------------------ */

void nt_daemon_init(struct nt_daemon *d)
{
	memset(d, 0, sizeof(*d));
	d->status = -1;
	nt_make_tmpdir(d->dir, sizeof(d->dir));
	snprintf(d->conf, sizeof(d->conf), "%s/natterd.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/natterd.log", d->dir);
	live_add(d);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text), off = 0;

	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;
			close(fd);
			return rc;
		}
		off += (size_t)n;
	}
	return close(fd) < 0 ? -errno : 0;
}

/* the name of "NAME=value" a is that of b */
static bool same_name(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");

	return strncmp(a, b, n) == 0 && b[n] == '=';
}

/*
 * environ with extra's variables set; built before fork because the child
 * may only make async-signal-safe calls. The strings are not copied.
 */
static char **make_env(const char *const *extra)
{
	size_t n = 0, m = 0, k = 0;

	while (environ[n])
		n++;
	while (extra && extra[m])
		m++;
	char **env = calloc(n + m + 1, sizeof(*env));
	ck_assert_ptr_nonnull(env);
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;
		for (size_t j = 0; j < m && !replaced; j++)
			replaced = same_name(extra[j], environ[i]);
		if (!replaced)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		env[k++] = (char *)extra[j];
	env[k] = NULL;
	return env;
}

/* name looked up in $PATH (or as given when it has a '/'): 0 or -ENOENT */
static int which(const char *name, char *buf, size_t size)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(buf, size, "%s", name);
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		snprintf(buf, size, "%.*s/%s", (int)n, p, name);
		if (n && access(buf, X_OK) == 0)
			return 0;
		p += n + (p[n] == ':');
	}
	return -ENOENT;
}

/* LISTEN_PID=<the child's pid>: written in the child, which must not call
 * snprintf, into a buffer that envp already points to */
static char listen_pid_env[32] = "LISTEN_PID=";

static void child_set_listen_pid(void)
{
	char digits[16];
	int n = 0;
	pid_t pid = getpid();
	size_t off = strlen("LISTEN_PID=");

	do {
		digits[n++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid && n < (int)sizeof(digits));
	while (n)
		listen_pid_env[off++] = digits[--n];
	listen_pid_env[off] = '\0';
}

/* fds[i] -> 3 + i, without close-on-exec; async-signal-safe */
static void child_pass_fds(const int *fds, size_t n)
{
	int tmp[64];

	if (n > 64)
		_exit(127);
	/* first out of the way of 3..3+n, then into place */
	for (size_t i = 0; i < n; i++)
		if ((tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + (int)n)) < 0)
			_exit(127);
	for (size_t i = 0; i < n; i++)
		if (dup2(tmp[i], 3 + (int)i) < 0)
			_exit(127);
	child_set_listen_pid();
}

static int daemon_vspawn(struct nt_daemon *d, const struct nt_daemon_opts *o,
                         const char *fmt, va_list ap)
{
	static const struct nt_daemon_opts none;
	static char wrapper_path[512];
	const char *argv[2 * MAX_ARGS + 4];
	const char *extra_env[MAX_ARGS + 4];
	char listen_fds[32], listen_names[4096];
	char *text, *conf;
	size_t argc = 0, nenv = 0;
	int logfd, nullfd, rc;

	if (!o)
		o = &none;
	if (!d->dir[0])
		nt_daemon_init(d);
	if (d->pid > 0)
		return -EBUSY;
	if (vasprintf(&text, fmt, ap) < 0)
		return -ENOMEM;
	conf = subst_dir(text, d->dir);
	free(text);
	rc = write_file(d->conf, conf);
	free(conf);
	if (rc < 0)
		return rc;

	for (size_t i = 0; o->wrapper && o->wrapper[i] && i < MAX_ARGS; i++) {
		if (i == 0) {
			if (which(o->wrapper[0], wrapper_path,
			          sizeof(wrapper_path)) < 0)
				return -ENOENT;
			argv[argc++] = wrapper_path;
		} else {
			argv[argc++] = o->wrapper[i];
		}
	}
	argv[argc++] =
	    o->test_hooks ? nt_natterd_test_path() : nt_natterd_path();
	if (!o->no_config) {
		argv[argc++] = "-c";
		argv[argc++] = d->conf;
	}
	for (size_t i = 0; o->args && o->args[i] && i < MAX_ARGS; i++)
		argv[argc++] = o->args[i];
	argv[argc] = NULL;

	logfd = open(d->log,
	             O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -errno;
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nullfd < 0) {
		rc = -errno;
		close(logfd);
		return rc;
	}
	for (size_t i = 0; o->env && o->env[i] && nenv < MAX_ARGS; i++)
		extra_env[nenv++] = o->env[i];
	if (o->n_pass_fds) {
		snprintf(listen_fds, sizeof(listen_fds), "LISTEN_FDS=%zu",
		         o->n_pass_fds);
		extra_env[nenv++] = listen_fds;
		extra_env[nenv++] = listen_pid_env;
		if (o->fdnames) {
			snprintf(listen_names, sizeof(listen_names),
			         "LISTEN_FDNAMES=%s", o->fdnames);
			extra_env[nenv++] = listen_names;
		}
	}
	extra_env[nenv] = NULL;
	char **envp = make_env(extra_env);
	d->n_listeners = 0;
	d->status = -1;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		child_prepare(parent, o->nofile);
		/* dup2 clears close-on-exec on the copies */
		if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 ||
		    dup2(logfd, 2) < 0)
			_exit(127);
		if (o->n_pass_fds)
			child_pass_fds(o->pass_fds, o->n_pass_fds);
		child_exec(argv[0], (char *const *)argv, envp,
		           3 + (int)o->n_pass_fds);
	}
	rc = pid < 0 ? -errno : 0;
	free(envp);
	close(logfd);
	close(nullfd);
	if (rc == 0) {
		d->pid = pid;
		live_add(d);
	}
	return rc;
}

int nt_daemon_spawn(struct nt_daemon *d, const struct nt_daemon_opts *opts,
                    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = daemon_vspawn(d, opts, fmt, ap);
	va_end(ap);
	return rc;
}

/* the start of the line holding p */
static const char *line_start(const char *log, const char *p)
{
	while (p > log && p[-1] != '\n')
		p--;
	return p;
}

/* "natterd VERSION ready: ..." (or "natterd ready") on one line */
static bool log_has_ready(const char *log)
{
	for (const char *p = log; (p = strstr(p, " ready")); p++) {
		const char *ls = line_start(log, p);
		const char *n = strstr(ls, "natterd");
		if (n && n < p)
			return true;
	}
	return false;
}

static void copy_field(char *dst, size_t size, const char *src, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* ADDR of "listening on ADDR (SERVICE) listener=NAME" into l */
static bool parse_addr(struct nt_test_listener *l)
{
	const char *a = l->addr, *colon;
	char *end;

	if (a[0] == '/') {
		l->family = AF_UNIX;
		copy_field(l->path, sizeof(l->path), a, strlen(a));
		return true;
	}
	if (a[0] == '[') {
		const char *rb = strchr(a, ']');
		if (!rb || rb[1] != ':')
			return false;
		l->family = AF_INET6;
		copy_field(l->host, sizeof(l->host), a + 1,
		           (size_t)(rb - a - 1));
		colon = rb + 1;
	} else {
		colon = strrchr(a, ':');
		if (!colon)
			return false;
		l->family = AF_INET;
		copy_field(l->host, sizeof(l->host), a, (size_t)(colon - a));
	}
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (end == colon + 1 || port > 65535)
		return false;
	l->port = (uint16_t)port;
	return true;
}

static bool parse_listener_line(struct nt_test_listener *l, const char *p,
                                const char *eol)
{
	const char *paren = strstr(p, " (");
	const char *close, *name;

	memset(l, 0, sizeof(*l));
	if (!paren || paren >= eol)
		return false;
	copy_field(l->addr, sizeof(l->addr), p, (size_t)(paren - p));
	close = strchr(paren, ')');
	if (!close || close >= eol)
		return false;
	copy_field(l->service, sizeof(l->service), paren + 2,
	           (size_t)(close - paren - 2));
	name = strstr(close, "listener=");
	if (!name || name >= eol)
		return false;
	name += strlen("listener=");
	const char *ne = name;
	while (ne < eol && !isspace((unsigned char)*ne))
		ne++;
	if (ne > name && *name == '"' && ne[-1] == '"' && ne - name >= 2) {
		name++;
		ne--;
	}
	copy_field(l->name, sizeof(l->name), name, (size_t)(ne - name));
	return parse_addr(l);
}

static void parse_listeners(struct nt_daemon *d, const char *log)
{
	static const char key[] = "listening on ";
	struct nt_test_listener l;

	d->n_listeners = 0;
	for (const char *p = log; (p = strstr(p, key));) {
		p += sizeof(key) - 1;
		const char *eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		if (parse_listener_line(&l, p, eol)) {
			size_t i = 0;
			/* a listener opened again (reload) replaces itself */
			while (i < d->n_listeners &&
			       strcmp(d->listeners[i].name, l.name))
				i++;
			if (i < NT_TEST_MAX_LISTENERS) {
				d->listeners[i] = l;
				if (i == d->n_listeners)
					d->n_listeners++;
			}
		}
		p = eol;
	}
}

void nt_daemon_refresh_listeners(struct nt_daemon *d)
{
	char *log = nt_daemon_log(d);

	parse_listeners(d, log);
	free(log);
}

int nt_daemon_wait_ready(struct nt_daemon *d, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		/* look at the log before the exit status: both may be true */
		bool alive = nt_daemon_alive(d);
		char *log = nt_daemon_log(d);
		bool ready = log_has_ready(log);
		if (ready)
			parse_listeners(d, log);
		free(log);
		if (ready)
			return 0;
		if (!alive)
			return -ECHILD;
		if (nt_test_now_ms() >= deadline)
			return -ETIMEDOUT;
		nt_sleep_ms(10);
	}
}

/* the last part of the log, for a failure message */
static const char *log_tail(const char *log)
{
	size_t len = strlen(log);

	return len > LOG_TAIL_SHOW ? log + len - LOG_TAIL_SHOW : log;
}

void nt_daemon_start(struct nt_daemon *d, const struct nt_daemon_opts *opts,
                     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int rc = daemon_vspawn(d, opts, fmt, ap);
	va_end(ap);
	ck_assert_msg(rc == 0, "cannot start %s: %s", nt_natterd_path(),
	              strerror(-rc));
	rc = nt_daemon_wait_ready(d, NT_TEST_READY_MS);
	if (rc == 0)
		return;
	if (rc == -ETIMEDOUT)
		nt_daemon_kill(d);
	char *log = nt_daemon_log(d);
	fprintf(stderr, "--- natterd log (%s) ---\n%s--- end ---\n", d->log,
	        log);
	ck_abort_msg(
	    "natterd (%s) %s, exit code %d; log:\n%s", nt_natterd_path(),
	    rc == -ETIMEDOUT ? "never became ready" : "exited at start",
	    d->status, log_tail(log));
}

bool nt_daemon_alive(struct nt_daemon *d)
{
	int st;

	if (d->pid <= 0)
		return false;
	pid_t r = waitpid(d->pid, &st, WNOHANG);
	if (r == 0)
		return true;
	if (r == d->pid)
		d->status = nt_exit_code(st);
	else if (r < 0 && errno == EINTR)
		return true;
	d->pid = 0;
	return false;
}

int nt_daemon_wait_exit(struct nt_daemon *d, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;

	while (nt_daemon_alive(d)) {
		if (nt_test_now_ms() >= deadline)
			return -ETIMEDOUT;
		nt_sleep_ms(5);
	}
	return d->status;
}

int nt_daemon_stop(struct nt_daemon *d, int sig, int timeout_ms)
{
	if (!nt_daemon_alive(d))
		return d->status;
	kill(d->pid, sig);
	int rc = nt_daemon_wait_exit(d, timeout_ms);
	if (rc == -ETIMEDOUT)
		nt_daemon_kill(d);
	return rc;
}

void nt_daemon_kill(struct nt_daemon *d)
{
	int st;

	if (d->pid <= 0)
		return;
	kill(d->pid, SIGKILL);
	while (waitpid(d->pid, &st, 0) < 0)
		if (errno != EINTR) {
			st = -1;
			break;
		}
	d->status = st == -1 ? -1 : nt_exit_code(st);
	d->pid = 0;
}

void nt_daemon_cleanup(struct nt_daemon *d)
{
	nt_daemon_kill(d);
	if (d->dir[0])
		nt_remove_tmpdir(d->dir);
	d->dir[0] = '\0';
	live_remove(d);
}

char *nt_daemon_log(const struct nt_daemon *d)
{
	return slurp(d->log);
}

bool nt_daemon_log_contains(const struct nt_daemon *d, const char *s)
{
	char *log = nt_daemon_log(d);
	bool found = strstr(log, s) != NULL;

	free(log);
	return found;
}

int nt_daemon_log_level_count(const struct nt_daemon *d, const char *level)
{
	char *log = nt_daemon_log(d);
	size_t llen = strlen(level);
	int count = 0;

	/* "YYYY-MM-DD HH:MM:SS.mmm LEVEL: message": the third word */
	for (char *line = log, *next; *line; line = next) {
		char *eol = strchr(line, '\n');
		next = eol ? eol + 1 : line + strlen(line);
		char *sp = strchr(line, ' ');
		if (sp && sp < next)
			sp = strchr(sp + 1, ' ');
		if (!sp || sp >= next)
			continue;
		if (strncasecmp(sp + 1, level, llen) == 0 &&
		    sp[1 + llen] == ':')
			count++;
	}
	free(log);
	return count;
}

bool nt_daemon_wait_log(const struct nt_daemon *d, const char *s,
                        int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (nt_daemon_log_contains(d, s))
			return true;
		if (nt_test_now_ms() >= deadline)
			return false;
		nt_sleep_ms(10);
	}
}

void nt_daemon_dump_log(const struct nt_daemon *d)
{
	char *log = nt_daemon_log(d);

	fprintf(stderr, "--- natterd log (%s) ---\n%s--- end ---\n", d->log,
	        log);
	free(log);
}

const struct nt_test_listener *nt_daemon_listener(const struct nt_daemon *d,
                                                  const char *name)
{
	for (size_t i = 0; i < d->n_listeners; i++)
		if (strcmp(d->listeners[i].name, name) == 0)
			return &d->listeners[i];
	return NULL;
}

uint16_t nt_daemon_port(const struct nt_daemon *d, const char *name)
{
	const struct nt_test_listener *l = nt_daemon_listener(d, name);

	ck_assert_msg(l && l->family != AF_UNIX,
	              "no TCP listener \"%s\" in the daemon's log", name);
	return l->port;
}

const char *nt_daemon_sock_path(const struct nt_daemon *d, const char *name)
{
	const struct nt_test_listener *l = nt_daemon_listener(d, name);

	ck_assert_msg(l && l->family == AF_UNIX,
	              "no unix listener \"%s\" in the daemon's log", name);
	return l->path;
}

int nt_daemon_connect(const struct nt_daemon *d, const char *name)
{
	const struct nt_test_listener *l = nt_daemon_listener(d, name);
	int fd;

	ck_assert_msg(l != NULL, "no listener \"%s\" in the daemon's log",
	              name);
	if (l->family == AF_UNIX)
		fd = nt_connect_unix(l->path, 5000);
	else
		fd = nt_connect_tcp(l->family == AF_INET ? "127.0.0.1" : "::1",
		                    l->port, 5000);
	ck_assert_msg(fd >= 0, "connect to listener %s (%s): %s", name, l->addr,
	              strerror(-fd));
	return fd;
}

/* ---- running natterd to completion -------------------------------------- */

int nt_run_natterd(struct nt_run *r, int timeout_ms, ...)
{
	const char *argv[MAX_ARGS + 2];
	size_t argc = 0;
	va_list ap;
	int st, rc = 0;

	r->code = -1;
	r->out = r->err = NULL;
	argv[argc++] = nt_natterd_path();
	va_start(ap, timeout_ms);
	for (const char *a; (a = va_arg(ap, const char *)) && argc <= MAX_ARGS;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;

	int out = memfd_create("nt-out", MFD_CLOEXEC);
	int err = memfd_create("nt-err", MFD_CLOEXEC);
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (out < 0 || err < 0 || nullfd < 0) {
		rc = -errno;
		goto done;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto done;
	}
	if (pid == 0) {
		child_prepare(parent, 0);
		if (dup2(nullfd, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(127);
		child_exec(argv[0], (char *const *)argv, environ, 3);
	}
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			r->code = nt_exit_code(st);
			break;
		}
		if (w < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (nt_test_now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			r->code = -ETIMEDOUT;
			break;
		}
		nt_sleep_ms(5);
	}
	lseek(out, 0, SEEK_SET);
	lseek(err, 0, SEEK_SET);
	r->out = slurp_fd(out);
	r->err = slurp_fd(err);
done:
	if (!r->out)
		r->out = strdup("");
	if (!r->err)
		r->err = strdup("");
	if (out >= 0)
		close(out);
	if (err >= 0)
		close(err);
	if (nullfd >= 0)
		close(nullfd);
	return rc;
}

void nt_run_free(struct nt_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* ---- clients ------------------------------------------------------------ */

/* wait for events on fd until deadline: revents, 0 at timeout, -errno */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};

	for (;;) {
		int n = poll(&p, 1, ms_left(deadline));
		if (n > 0)
			return p.revents;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static int connect_addr(const struct sockaddr *sa, socklen_t len,
                        int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	int fd = socket(sa->sa_family,
	                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc, err;
	socklen_t elen = sizeof(err);

	if (fd < 0)
		return -errno;
	for (;;) {
		if (connect(fd, sa, len) == 0)
			return fd;
		rc = -errno;
		if (rc == -EINTR)
			continue;
		/* a unix listener with a full backlog: try again shortly */
		if (rc == -EAGAIN && sa->sa_family == AF_UNIX &&
		    ms_left(deadline) > 0) {
			nt_sleep_ms(5);
			continue;
		}
		break;
	}
	if (rc != -EINPROGRESS)
		goto fail;
	rc = wait_fd(fd, POLLOUT, deadline);
	if (rc == 0) {
		rc = -ETIMEDOUT;
		goto fail;
	}
	if (rc < 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
		rc = -errno;
		goto fail;
	}
	if (err) {
		rc = -err;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

int nt_connect_tcp(const char *host, uint16_t port, int timeout_ms)
{
	struct sockaddr_in in = {.sin_family = AF_INET,
	                         .sin_port = htons(port)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6,
	                           .sin6_port = htons(port)};

	if (inet_pton(AF_INET, host, &in.sin_addr) == 1)
		return connect_addr((struct sockaddr *)&in, sizeof(in),
		                    timeout_ms);
	if (inet_pton(AF_INET6, host, &in6.sin6_addr) == 1)
		return connect_addr((struct sockaddr *)&in6, sizeof(in6),
		                    timeout_ms);
	return -EINVAL;
}

int nt_connect_unix(const char *path, int timeout_ms)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	size_t len = strlen(path);

	if (len >= sizeof(un.sun_path))
		return -ENAMETOOLONG;
	memcpy(un.sun_path, path, len + 1);
	return connect_addr(
	    (struct sockaddr *)&un,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1),
	    timeout_ms);
}

int nt_write_all(int fd, const void *buf, size_t n, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	const char *p = buf;

	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			return -errno;
		int rc = wait_fd(fd, POLLOUT, deadline);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ETIMEDOUT;
	}
	return 0;
}

ssize_t nt_read_exact(int fd, void *buf, size_t n, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, p + got, n - got, 0);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0)
			return (ssize_t)got;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ETIMEDOUT;
	}
	return (ssize_t)got;
}

ssize_t nt_read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	size_t len = 0;

	if (size < 3)
		return -EINVAL;
	buf[0] = '\0';
	while (len < size - 1) {
		ssize_t r = recv(fd, buf + len, 1, 0);
		if (r == 1) {
			len++;
			buf[len] = '\0';
			if (len >= 2 && buf[len - 2] == '\r' &&
			    buf[len - 1] == '\n')
				return (ssize_t)len;
			continue;
		}
		if (r == 0)
			return (ssize_t)len;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ETIMEDOUT;
	}
	return -EMSGSIZE;
}

ssize_t nt_read_line_with(int fd, const char *needle, char *buf, size_t size,
                          int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		ssize_t n = nt_read_line(fd, buf, size, ms_left(deadline));
		if (n < 0)
			return n;
		if (n == 0)
			return -EPIPE;
		if (strstr(buf, needle))
			return n;
		if (ms_left(deadline) == 0)
			return -ETIMEDOUT;
	}
}

int nt_expect_eof(int fd, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	char buf[256];

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r == 0)
			return 0;
		if (r > 0)
			return -EPROTO;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ETIMEDOUT;
	}
}

ssize_t nt_exchange(int fd, const void *out, size_t out_len, void *in,
                    size_t in_cap, int flags, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	const char *op = out;
	char *ip = in;
	size_t sent = 0, got = 0;
	bool eof = false, shut = false;

	for (;;) {
		if (sent == out_len && (flags & NT_SHUT_WR) && !shut) {
			if (shutdown(fd, SHUT_WR) < 0)
				return -errno;
			shut = true;
		}
		if (sent == out_len && (got == in_cap || eof))
			return (ssize_t)got;
		if (eof)
			return (ssize_t)got; /* closed before we were done */
		short ev = (got < in_cap ? POLLIN : 0) |
		           (sent < out_len ? POLLOUT : 0);
		int rc = wait_fd(fd, ev, deadline);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ETIMEDOUT;
		if ((rc & (POLLIN | POLLHUP | POLLERR)) && got < in_cap) {
			size_t want = in_cap - got;
			ssize_t r = recv(fd, ip + got,
			                 want < IO_CHUNK ? want : IO_CHUNK, 0);
			if (r > 0)
				got += (size_t)r;
			else if (r == 0)
				eof = true;
			else if (errno != EAGAIN && errno != EINTR)
				return -errno;
		}
		if ((rc & (POLLOUT | POLLERR)) && sent < out_len) {
			size_t want = out_len - sent;
			ssize_t w = send(fd, op + sent,
			                 want < IO_CHUNK ? want : IO_CHUNK,
			                 MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				return -errno;
		}
	}
}

ssize_t nt_push_until_stall(int fd, size_t max, int stall_ms, int timeout_ms,
                            bool *stalled)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	static char chunk[IO_CHUNK];
	size_t total = 0;

	nt_fill_random(chunk, sizeof(chunk), 42);
	*stalled = false;
	while (total < max && ms_left(deadline) > 0) {
		size_t want = max - total;
		ssize_t w = send(fd, chunk, want < IO_CHUNK ? want : IO_CHUNK,
		                 MSG_NOSIGNAL);
		if (w > 0) {
			total += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			return -errno;
		uint64_t until = nt_test_now_ms() + (uint64_t)stall_ms;
		int rc =
		    wait_fd(fd, POLLOUT, until < deadline ? until : deadline);
		if (rc < 0)
			return rc;
		if (rc == 0 && until <= deadline) {
			*stalled = true;
			break;
		}
	}
	return (ssize_t)total;
}

int nt_echo_check(int fd, const void *buf, size_t n, int timeout_ms)
{
	char *in = malloc(n ? n : 1);
	int rc = 0;

	ck_assert_ptr_nonnull(in);
	ssize_t r = nt_exchange(fd, buf, n, in, n, 0, timeout_ms);
	if (r < 0)
		rc = (int)r;
	else if ((size_t)r < n)
		rc = -EPIPE; /* EOF before everything came back */
	else if (memcmp(in, buf, n) != 0)
		rc = -EBADMSG;
	free(in);
	return rc;
}

void nt_fill_random(void *buf, size_t n, uint64_t seed)
{
	uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ULL;
	unsigned char *p = buf;

	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
		}
		p[i] = (unsigned char)((x * 0x2545f4914f6cdd1dULL) >>
		                       (8 * (i % 8)));
	}
}

int nt_listen_tcp(const char *host, uint16_t *port)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, rc;

	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(*port);
		len = sizeof(*in);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(*port);
		len = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*port = ntohs(ss.ss_family == AF_INET ? in->sin_port : in6->sin6_port);
	return fd;
}

/* ---- a NOTIFY_SOCKET ---------------------------------------------------- */

void nt_notify_open(struct nt_notify *n, const char *dir)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};

	snprintf(n->path, sizeof(n->path), "%s/notify", dir);
	ck_assert_uint_lt(strlen(n->path), sizeof(un.sun_path));
	memcpy(un.sun_path, n->path, strlen(n->path) + 1);
	snprintf(n->env, sizeof(n->env), "NOTIFY_SOCKET=%s", n->path);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_msg(n->fd >= 0, "socket: %s", strerror(errno));
	unlink(n->path);
	ck_assert_msg(bind(n->fd, (struct sockaddr *)&un, sizeof(un)) == 0,
	              "bind %s: %s", n->path, strerror(errno));
	/* a burst of FDSTORE messages must not be dropped */
	int big = 1 << 20;
	setsockopt(n->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
}

void nt_notify_close(struct nt_notify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}

ssize_t nt_notify_recv(struct nt_notify *n, char *buf, size_t size, int *fds,
                       size_t max, size_t *nfds, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 253)];
	} cm;
	struct iovec iov = {.iov_base = buf, .iov_len = size - 1};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = cm.buf,
	                    .msg_controllen = sizeof(cm.buf)};
	ssize_t r;

	if (nfds)
		*nfds = 0;
	for (;;) {
		r = recvmsg(n->fd, &mh, MSG_CMSG_CLOEXEC);
		if (r >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		int rc = wait_fd(n->fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ETIMEDOUT;
	}
	buf[r] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *p = (int *)(void *)CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			if (fds && nfds && *nfds < max)
				fds[(*nfds)++] = p[i];
			else
				close(p[i]);
		}
	}
	return r;
}

/* does msg have line, or a line "line=..." */
static bool notify_has(const char *msg, const char *line)
{
	size_t len = strlen(line);

	for (const char *p = msg; *p;) {
		if (!strncmp(p, line, len) &&
		    (p[len] == '\n' || p[len] == '\0' || p[len] == '='))
			return true;
		const char *eol = strchr(p, '\n');
		if (!eol)
			break;
		p = eol + 1;
	}
	return false;
}

bool nt_notify_wait(struct nt_notify *n, const char *line, char *buf,
                    size_t size, int timeout_ms)
{
	uint64_t deadline = nt_test_now_ms() + (uint64_t)timeout_ms;
	char msg[4096];

	for (;;) {
		int left = ms_left(deadline);
		if (nt_notify_recv(n, msg, sizeof(msg), NULL, 0, NULL, left) <
		    0)
			return false;
		if (notify_has(msg, line)) {
			if (buf)
				snprintf(buf, size, "%s", msg);
			return true;
		}
	}
}

bool nt_notify_field(const char *msg, const char *key, char *val, size_t size)
{
	size_t len = strlen(key);

	for (const char *p = msg; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		if (n > len && !strncmp(p, key, len) && p[len] == '=') {
			snprintf(val, size, "%.*s", (int)(n - len - 1),
			         p + len + 1);
			return true;
		}
		p = eol ? eol + 1 : NULL;
	}
	return false;
}

/* ---- /proc -------------------------------------------------------------- */

int nt_tcp_timewait_count(uint16_t port)
{
	static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	char line[512], local[64];
	unsigned lport, state;
	int n = 0;

	for (size_t i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		if (!f)
			continue;
		/* "sl local_address rem_address st ...", addresses HEX:PORT */
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, " %*s %63s %*s %x", local, &state) !=
			    2)
				continue;
			char *colon = strrchr(local, ':');
			if (colon && sscanf(colon + 1, "%x", &lport) == 1 &&
			    lport == port && state == 0x06)
				n++;
		}
		fclose(f);
	}
	return n;
}

long nt_proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int nt_proc_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

long nt_proc_cpu_ms(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long utime, stime;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* the command name may hold spaces: fields count from the last ')' */
	char *p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	           &utime, &stime) != 2)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	return (long)((utime + stime) * 1000 /
	              (unsigned long)(hz > 0 ? hz : 100));
}
