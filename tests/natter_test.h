/*
 * Helpers for the libnatter end-to-end suites: natterd configs with fixed
 * or kernel-chosen ports, a thread-safe recorder of the client's
 * callbacks, a raw-socket chat observer, black-hole listeners, and fd
 * bookkeeping. Every wait has a deadline.
 */
#ifndef NATTER_TEST_H
#define NATTER_TEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "natter.h"
#include "nt_test.h"

/*
 * natterd with a chat and an echo listener of one family and address,
 * flood control as given (tn_start() puts it out of the way: the tests
 * send fast on purpose; the pacer has its own unit tests), idle
 * connections left alone.
 */
#define TN_CONF                                                                \
	"workers = 2;\n"                                                       \
	"max_connections = 1000;\n"                                            \
	"limits = { per_ip = 0; };\n"                                          \
	"timeouts = { idle = 300; write = 30; shutdown_grace = 1; };\n"        \
	"chat = { flood = { rate = %d; burst = %d; }; };\n"                    \
	"listeners = (\n"                                                      \
	" { name = \"chat\"; service = \"chat\"; family = \"%s\";"             \
	" address = \"%s\"; port = %u; },\n"                                   \
	" { name = \"echo\"; service = \"echo\"; family = \"%s\";"             \
	" address = \"%s\"; port = %u; } );\n"

/*
 * Start natterd on family/address with these ports; both 0: on ports
 * below the kernel's ephemeral range, free now, so that a restart on the
 * same ports cannot find them taken by some client socket meanwhile.
 */
void tn_start(struct nt_daemon *d, const char *family, const char *address,
              uint16_t chat_port, uint16_t echo_port);
/*
 * The same with chat flood control at rate lines/s and burst: a slow
 * reader, so that lines wait unread in natterd's socket buffer
 */
void tn_start_flood(struct nt_daemon *d, const char *family,
                    const char *address, int rate, int burst);
/* SIGKILL, then start again on the same address and ports */
void tn_restart(struct nt_daemon *d, const char *family, const char *address);

#define TN_MAX_RC    128
#define TN_MAX_LINES 20000

/* what the callbacks saw; every field under lock */
struct tn_rec {
	pthread_mutex_t lock;
	int connected, disconnected, gave_up;
	int disc_err, gave_up_err;
	char reason[256];
	char peer[128], nick[64], room[64]; /* at the last connect */
	uint64_t t_connected, t_disconnected;
	struct {
		int attempt, delay, err;
		uint64_t t;
	} rc[TN_MAX_RC];
	int n_rc;
	/* lines, when record_lines */
	bool record_lines;
	char *lines[TN_MAX_LINES];
	int n_lines;
	/* the reconnecting callback blocks at this attempt until opened */
	int gate_attempt;
	bool at_gate, gate_open;
	pthread_cond_t cond;
	/* run in the disconnected callback, after recording */
	void (*on_disconnected)(struct tn_rec *r);
	void *user;
};

void tn_rec_init(struct tn_rec *r, bool record_lines);
void tn_rec_free(struct tn_rec *r);
/* set o's callbacks and data to record into r */
void tn_rec_options(struct tn_rec *r, struct natter_options *o);
void tn_gate_open(struct tn_rec *r);

/* test-friendly options: host and port, unpaced, no pings, quick retry */
void tn_options(struct natter_options *o, const char *host, uint16_t port,
                char portbuf[8]);

/*
 * Wait until pred(r, arg) holds (called under r->lock). With c, drive c
 * from this thread meanwhile; without, just poll. true if it held.
 */
typedef bool (*tn_pred)(struct tn_rec *r, void *arg);
bool tn_wait(struct tn_rec *r, natter_client *c, tn_pred pred, void *arg,
             int timeout_ms);
bool tn_at_least_connected(struct tn_rec *r, void *n);
bool tn_at_least_disconnected(struct tn_rec *r, void *n);
bool tn_at_least_reconnecting(struct tn_rec *r, void *n);
bool tn_at_least_lines(struct tn_rec *r, void *n);
bool tn_at_gate(struct tn_rec *r, void *unused);
bool tn_gave_up(struct tn_rec *r, void *unused);

/* the client on a thread of its own, in natter_client_run() */
struct tn_runner {
	pthread_t t;
	natter_client *c;
	int rc;
};
void tn_run_start(struct tn_runner *run, natter_client *c);
/* natter_client_stop() and join; the run's result */
int tn_run_stop(struct tn_runner *run);

/*
 * A chat observer on a raw socket: connected, nick taken and room joined
 * (fails the test if it cannot). Lines are read without their CRLF.
 */
int tn_observer(const struct nt_daemon *d, const char *nick, const char *room);
/* the next line: its length, or -errno (-ETIMEDOUT) */
ssize_t tn_obs_line(int fd, char *buf, size_t size, int timeout_ms);
/* read lines until one contains s: true, else false at EOF or timeout */
bool tn_obs_wait(int fd, const char *s, int timeout_ms);
/*
 * The room lines want[0..n-1], in this order, skipping server lines
 * ("*** "); fails the test on any other line, on a quit, or when a line
 * does not come within timeout_ms.
 */
void tn_obs_expect(int fd, const char *const *want, size_t n, int timeout_ms);

/*
 * A listener on host:*port (0: any) with a backlog of 0 and one pending
 * connection filling it: further connects get no answer at all, like a
 * host that drops packets. Returns the listener; *filler must be closed
 * too.
 */
int tn_blackhole(const char *host, uint16_t *port, int *filler);

/* open fds of this process, and whether all fds above those in before
 * (a bitmap of TN_FD_MAX) are close-on-exec */
#define TN_FD_MAX 1024
int tn_fd_count(void);
void tn_fd_snapshot(unsigned char before[TN_FD_MAX]);
int tn_fd_new_without_cloexec(const unsigned char before[TN_FD_MAX]);

#endif
