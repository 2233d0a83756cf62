/*
 * End-to-end test harness: starts the real natterd on a config written to a
 * private temp dir, learns its listeners' addresses from its log, and gives
 * tests clients whose every operation is bounded in time.
 *
 * Functions that return int report failure as -errno (-ETIMEDOUT when a
 * deadline passed) and never abort; nt_daemon_start() and nt_daemon_init()
 * fail the running Check test instead, showing the daemon's log, because no
 * test can go on without them.
 *
 * Nothing outlives the test process, however it ends: Check's forked test
 * child leaves by _exit() on a failed assertion (no teardown, no atexit) or
 * is SIGKILLed at its timeout. Every daemon gets PR_SET_PDEATHSIG(SIGKILL);
 * every temp dir is also handed to a reaper process that removes it once
 * the test process is gone. Start daemons from the test's main thread: the
 * death signal follows the thread that forked.
 */
#ifndef NT_TEST_H
#define NT_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NT_TEST_MAX_LISTENERS 16
#define NT_TEST_READY_MS      15000 /* generous: sanitized builds are slow */
#define NT_TEST_STOP_MS       10000

/* one "listening on ADDR (SERVICE) listener=NAME" line from the log */
struct nt_test_listener {
	char name[64];
	char service[16];
	char addr[128]; /* as logged: "127.0.0.1:4007", "[::1]:4007", a path */
	int family;     /* AF_INET, AF_INET6 or AF_UNIX */
	char host[64];  /* numeric, without brackets; empty for unix */
	uint16_t port;
	char path[108]; /* unix only */
};

struct nt_daemon {
	pid_t pid;      /* 0 before spawn and once reaped */
	int status;     /* nt_exit_code() of the reaped process, else -1 */
	char dir[256];  /* private temp dir: config, log, sockets */
	char conf[300]; /* DIR/natterd.conf */
	char log[300];  /* DIR/natterd.log: the daemon's stdout+stderr */
	size_t n_listeners;
	struct nt_test_listener listeners[NT_TEST_MAX_LISTENERS];
};

struct nt_daemon_opts {
	long nofile; /* RLIMIT_NOFILE soft+hard for the daemon; 0: inherit */
	const char *const *args; /* extra arguments, NULL-terminated, or NULL */
	bool no_config;          /* do not pass -c DIR/natterd.conf */
	const char *const *env;  /* "NAME=value" to set, NULL-terminated */
	/*
	 * A command that runs natterd, NULL-terminated, put before natterd's
	 * own argv ("systemd-socket-activate", "-l", ...); its first word is
	 * looked up in $PATH.
	 */
	const char *const *wrapper;
	/*
	 * fds to pass the way systemd does: they become fds 3.. in the
	 * daemon, with LISTEN_FDS, LISTEN_PID (the daemon's own pid) and
	 * LISTEN_FDNAMES (fdnames, "a:b:c", may be NULL) set.
	 */
	const int *pass_fds;
	size_t n_pass_fds;
	const char *fdnames;
	/*
	 * Run natterd-test (nt_natterd_test_path()): natterd built with the
	 * test-only hooks, which the installed natterd never has.
	 */
	bool test_hooks;
};

/*
 * mkdtemp "$TMPDIR/nt-e2e-XXXXXX" (or /tmp when TMPDIR is unset or too long
 * for unix socket paths under it) into buf; it is removed when the test
 * process ends, at the latest. Fails the test on error.
 */
void nt_make_tmpdir(char *buf, size_t size);
/* remove a dir made by nt_make_tmpdir and all in it, now */
void nt_remove_tmpdir(const char *dir);

/*
 * Zero d and create its temp dir (mkdtemp under $TMPDIR or /tmp). Called by
 * the spawn functions when d->dir is empty; call it first when a test needs
 * d->dir before the daemon starts (to plant a file there).
 */
void nt_daemon_init(struct nt_daemon *d);

/*
 * Write the config (a printf format; every "@DIR@" in the result is then
 * replaced by d->dir) to d->conf and fork+exec "$NATTERD -c d->conf" with
 * opts (may be NULL). Does not wait. 0 or -errno.
 */
int nt_daemon_spawn(struct nt_daemon *d, const struct nt_daemon_opts *opts,
                    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Wait until the log holds the ready line, then parse the listeners.
 * 0; -ECHILD if the daemon exited first (d->status holds its code);
 * -ETIMEDOUT.
 */
int nt_daemon_wait_ready(struct nt_daemon *d, int timeout_ms);

/* spawn + wait_ready; fails the current test (with the log) on error */
void nt_daemon_start(struct nt_daemon *d, const struct nt_daemon_opts *opts,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Exit codes: 0..255 for a normal exit, 128 + N for death by signal N
 * (as the shell reports them).
 */
int nt_exit_code(int wait_status);

/* reap if it has exited; true while it runs */
bool nt_daemon_alive(struct nt_daemon *d);

/* wait for exit: its exit code, or -ETIMEDOUT (still running) */
int nt_daemon_wait_exit(struct nt_daemon *d, int timeout_ms);

/*
 * Send sig and wait up to timeout_ms: the exit code; on timeout the daemon
 * is SIGKILLed and -ETIMEDOUT returned. If it already exited, its code.
 */
int nt_daemon_stop(struct nt_daemon *d, int sig, int timeout_ms);

/* SIGKILL and reap if still running; safe to call at any time, repeatedly */
void nt_daemon_kill(struct nt_daemon *d);

/* kill, then remove the temp dir; d may be reused after nt_daemon_init() */
void nt_daemon_cleanup(struct nt_daemon *d);

/* the daemon's log so far, NUL-terminated; free() it. Never NULL. */
char *nt_daemon_log(const struct nt_daemon *d);
bool nt_daemon_log_contains(const struct nt_daemon *d, const char *s);
/* number of log lines whose level ("info", "debug", ...) is level */
int nt_daemon_log_level_count(const struct nt_daemon *d, const char *level);
/* poll the log (10 ms steps) until it contains s: true, or false at timeout */
bool nt_daemon_wait_log(const struct nt_daemon *d, const char *s,
                        int timeout_ms);
/* copy the log to stderr, for a failing test's output */
void nt_daemon_dump_log(const struct nt_daemon *d);

/* parse the log's "listening on" lines again (after a reload): for a name
 * logged more than once, the last line counts */
void nt_daemon_refresh_listeners(struct nt_daemon *d);

/* listener by name, or NULL */
const struct nt_test_listener *nt_daemon_listener(const struct nt_daemon *d,
                                                  const char *name);
/* port of a TCP listener / path of a unix one; fail the test if unknown */
uint16_t nt_daemon_port(const struct nt_daemon *d, const char *name);
const char *nt_daemon_sock_path(const struct nt_daemon *d, const char *name);
/*
 * Connect to a listener: 127.0.0.1 for ipv4, ::1 for ipv6 (also when it is
 * bound to a wildcard), the path for unix. Fails the test if it cannot.
 */
int nt_daemon_connect(const struct nt_daemon *d, const char *name);

/* result of running natterd to completion (--check-config, --version...) */
struct nt_run {
	int code;  /* nt_exit_code(), or -ETIMEDOUT (then it was killed) */
	char *out; /* stdout, NUL-terminated, never NULL after nt_run() */
	char *err; /* stderr */
};

/* run "$NATTERD arg..." (NULL-terminated); 0 or -errno if it did not run */
int nt_run_natterd(struct nt_run *r, int timeout_ms, ...)
    __attribute__((sentinel));
void nt_run_free(struct nt_run *r);

/* $NATTERD, or daemon/natterd or ../daemon/natterd, whichever exists */
const char *nt_natterd_path(void);
/* the same for natterd-test: $NATTERD_TEST, or daemon/natterd-test... */
const char *nt_natterd_test_path(void);

/*
 * Clients. The fds returned are non-blocking and close-on-exec; the I/O
 * helpers below wait with poll() and never raise SIGPIPE.
 */
int nt_connect_tcp(const char *host, uint16_t port, int timeout_ms);
int nt_connect_unix(const char *path, int timeout_ms);
/* 0 once all n bytes are written */
int nt_write_all(int fd, const void *buf, size_t n, int timeout_ms);
/* n; fewer at EOF; -errno / -ETIMEDOUT (what was read is then lost) */
ssize_t nt_read_exact(int fd, void *buf, size_t n, int timeout_ms);
/*
 * One line up to and including CRLF (read byte by byte, so nothing after it
 * is consumed), NUL-terminated: its length; at EOF the partial line's length
 * (0 if none); -EMSGSIZE if size - 1 bytes hold no CRLF; -errno.
 */
ssize_t nt_read_line(int fd, char *buf, size_t size, int timeout_ms);
/*
 * Read lines until one contains needle: that line (NUL-terminated, with its
 * CRLF) goes to buf, and its length is returned; -EPIPE at EOF, -errno,
 * -ETIMEDOUT once timeout_ms have passed overall.
 */
ssize_t nt_read_line_with(int fd, const char *needle, char *buf, size_t size,
                          int timeout_ms);
/* 0 at EOF; -EPROTO if data came instead; -ECONNRESET; -ETIMEDOUT */
int nt_expect_eof(int fd, int timeout_ms);

#define NT_SHUT_WR 1 /* nt_exchange: shutdown(SHUT_WR) once all is written */

/*
 * Write out_len bytes while reading what comes back into in, at the same
 * time, so that neither side's buffers can deadlock. Stops when everything
 * is written and in_cap bytes were read or EOF came. Returns the number of
 * bytes read, or -errno / -ETIMEDOUT.
 */
ssize_t nt_exchange(int fd, const void *out, size_t out_len, void *in,
                    size_t in_cap, int flags, int timeout_ms);
/*
 * Write pseudo-random data to fd without ever reading, until no write has
 * been possible for stall_ms (*stalled = true), max bytes went out, or
 * timeout_ms passed. Bytes written, or -errno.
 */
ssize_t nt_push_until_stall(int fd, size_t max, int stall_ms, int timeout_ms,
                            bool *stalled);
/* send n bytes, expect the same n back: 0, -EBADMSG if they differ, -errno */
int nt_echo_check(int fd, const void *buf, size_t n, int timeout_ms);

/* deterministic pseudo-random bytes (xorshift64*) */
void nt_fill_random(void *buf, size_t n, uint64_t seed);

/*
 * A NOTIFY_SOCKET for the daemon, as systemd would have it: an AF_UNIX
 * datagram socket bound to DIR/notify. env is "NOTIFY_SOCKET=DIR/notify",
 * for nt_daemon_opts.env.
 */
struct nt_notify {
	int fd;
	char path[300];
	char env[320];
};

/* bind in dir (a test temp dir); fails the test on error */
void nt_notify_open(struct nt_notify *n, const char *dir);
void nt_notify_close(struct nt_notify *n);
/*
 * One message, NUL-terminated into buf: its length, or -ETIMEDOUT. fds
 * that came with it (close-on-exec) go to fds[0..*nfds), up to max; any
 * beyond are closed. fds may be NULL (then all are closed).
 */
ssize_t nt_notify_recv(struct nt_notify *n, char *buf, size_t size, int *fds,
                       size_t max, size_t *nfds, int timeout_ms);
/*
 * Receive until a message has the line `line` ("READY=1") or starts with
 * it followed by '=' (a key such as "STATUS"); that message goes into buf
 * (may be NULL). Others (and their fds) are dropped. true, or false at the
 * timeout.
 */
bool nt_notify_wait(struct nt_notify *n, const char *line, char *buf,
                    size_t size, int timeout_ms);
/* the value of "KEY=value" in a message, into val; false if absent */
bool nt_notify_field(const char *msg, const char *key, char *val, size_t size);

/* CLOCK_MONOTONIC, milliseconds */
uint64_t nt_test_now_ms(void);
void nt_sleep_ms(int ms);

/* from /proc: resident set (kB), open fds, user+system CPU time (ms); -1 */
long nt_proc_rss_kb(pid_t pid);
int nt_proc_fd_count(pid_t pid);
long nt_proc_cpu_ms(pid_t pid);
/* sockets in TIME_WAIT whose local port is port (/proc/net/tcp and tcp6) */
int nt_tcp_timewait_count(uint16_t port);

/*
 * A listening TCP socket on host:0 (or a fixed port), for tests that need a
 * port taken; *port receives the port. fd or -errno.
 */
int nt_listen_tcp(const char *host, uint16_t *port);

#endif
