/*
 * libnatter internals: the pieces client.c assembles, each with its own
 * file. Names carry a double prefix (natter__) and are not exported from
 * the shared library (only ^natter_[a-z] is); the unit tests link the
 * convenience library to reach them.
 */
#ifndef NATTER_INT_H
#define NATTER_INT_H

#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "natter.h"

#define NATTER__ADDRS_MAX  16 /* addresses raced per connect */
#define NATTER__NICK_MAX   32 /* natterd's hard limit on nick length */
#define NATTER__ROOM_MAX   32 /* and on room names (without '#') */
#define NATTER__TOKEN_MAX  48 /* "natter-" + 16 hex + "-" + counter */
#define NATTER__REASON_MAX 256
#define NATTER__PEER_MAX   128
#define NATTER__NEVER      UINT64_MAX

/* CLOCK_MONOTONIC in ms */
uint64_t natter__now_ms(void);

/* ---- error.c ---- */

/* a NATTER_E* code for a connect/read/write errno */
int natter__errno_code(int sys_errno);

/* ---- reader.c: line framing, pure ---- */

struct natter__reader {
	char *buf; /* max bytes, the caller's */
	size_t max;
	size_t len;    /* bytes of the current line held */
	bool after_cr; /* a CR ended the last line: skip one LF or NUL */
	bool cut;      /* the current line passed max: rest discarded */
};

void natter__reader_init(struct natter__reader *r, char *buf, size_t max);
/* forget any partial line (a new connection) */
void natter__reader_reset(struct natter__reader *r);
/*
 * Consume bytes of in (len) up to the end of the next line: 1 with *line,
 * *line_len (valid until the next call) and *truncated, or 0 when all of
 * in was used and no line ended. *used says how many bytes were taken.
 * Lines end at CR LF, LF, CR NUL or a lone CR, split anywhere.
 */
int natter__reader_next(struct natter__reader *r, const char *in, size_t len,
                        size_t *used, const char **line, size_t *line_len,
                        bool *truncated);

/* ---- backoff.c: random numbers and the reconnect delay ---- */

struct natter__rng {
	uint64_t s;
};

/* seed 0: from getrandom(), else time and pid */
void natter__rng_seed(struct natter__rng *r, uint64_t seed);
uint64_t natter__rng_next(struct natter__rng *r);
/* uniform in [0, n] */
uint64_t natter__rng_upto(struct natter__rng *r, uint64_t n);
/* min(cap, initial * 2^(attempt - 1)), attempt >= 1, without overflow */
int natter__backoff_ceiling(int attempt, int initial_ms, int cap_ms);
/* full jitter: uniform in [0, ceiling] */
int natter__backoff_delay(struct natter__rng *r, int attempt, int initial_ms,
                          int cap_ms);
/* the attempt count once a restored session ends, up_ms after it began */
int natter__backoff_after_session(int attempt, uint64_t up_ms, int stable_ms);

/* token bucket in thousandths of a line, so that rates below one line per
 * millisecond still refill smoothly */
struct natter__pacer {
	int rate; /* lines per second; 0: unpaced */
	int burst;
	uint64_t tokens; /* milli-lines */
	uint64_t at;     /* ms of the last refill */
};

void natter__pacer_init(struct natter__pacer *p, int rate, int burst,
                        uint64_t now);
/* whole lines that may go out now */
size_t natter__pacer_allow(struct natter__pacer *p, uint64_t now);
void natter__pacer_take(struct natter__pacer *p, size_t lines);
/* when the next line may go: now if allowed */
uint64_t natter__pacer_next(const struct natter__pacer *p, uint64_t now);

/* ---- queue.c: the send queue (bounded), guarded by the client's lock ---- */

struct natter__qline {
	struct natter__qline *next;
	size_t len; /* on the wire: with the CRLF and any 0xFF doubled */
	bool ctl;   /* ours (ping, restore): not counted, never dropped */
	char data[];
};

struct natter__queue {
	struct natter__qline *head, *tail;
	size_t off;          /* bytes of head already written */
	size_t lines, bytes; /* user lines only; bytes as on the wire */
	size_t max_lines, max_bytes;
	int overflow;
	bool telnet; /* the server parses telnet: 0xFF goes as IAC IAC */
	unsigned long long dropped;
};

void natter__queue_init(struct natter__queue *q, size_t max_lines,
                        size_t max_bytes, int overflow, bool telnet);
void natter__queue_clear(struct natter__queue *q);
/* a user line (CRLF appended and, with telnet, 0xFF doubled here): 0,
 * NATTER_EFULL or NATTER_ENOMEM */
int natter__queue_push(struct natter__queue *q, const char *line, size_t len);
/* one of ours, ahead of every user line not yet begun: 0 or ENOMEM */
int natter__queue_push_ctl(struct natter__queue *q, const char *line,
                           size_t len);
/*
 * iovecs for the next write, from head (minus what was written of it):
 * at most max_iov and max_lines lines; with user false, only the ctl
 * lines before the first user line that has not begun.
 */
int natter__queue_iov(const struct natter__queue *q, struct iovec *iov,
                      int max_iov, size_t max_lines, bool user);
/* n bytes went out: frees whole lines; counts them in *lines and *user */
void natter__queue_consume(struct natter__queue *q, size_t n, size_t *lines,
                           size_t *user);
/* the connection is gone: ctl lines go, a half-written line starts over */
void natter__queue_rewind(struct natter__queue *q);
bool natter__queue_has_ctl(const struct natter__queue *q);

/* ---- addr.c: addresses, lookup, RFC 8305 ordering ---- */

struct natter__addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* "127.0.0.1:4000", "[::1]:4000", or the path */
void natter__addr_format(const struct natter__addr *a, char *buf, size_t size);
/*
 * Keep the families the preference allows, drop duplicates and
 * interleave IPv6 and IPv4 (RFC 8305 section 4), starting with the
 * preferred family or, for ANY, that of the first address. Returns the
 * new count.
 */
/* a decimal port 1..65535, digits only: no sign, no space, no name */
bool natter__port_valid(const char *s);
size_t natter__addr_order(struct natter__addr *a, size_t n, int family);
/* addresses from a getaddrinfo list, at most max */
size_t natter__addr_from_ai(const struct addrinfo *ai, struct natter__addr *a,
                            size_t max);
int natter__addr_unix(struct natter__addr *a, const char *path);

/*
 * A lookup on a thread of its own, so that process() never blocks on
 * DNS. The client polls natter__resolve_done() when its eventfd fires and
 * abandons the job (which the thread then frees) if it gives up first.
 */
struct natter__resolve;

/* 0 and *job, or NATTER_ENOMEM; wake_fd is written when done */
int natter__resolve_start(struct natter__resolve **job, const char *host,
                          const char *port, int ai_family, int wake_fd);
/* true once done: then *res (freeaddrinfo it) or *gai_err */
bool natter__resolve_done(struct natter__resolve *job, struct addrinfo **res,
                          int *gai_err);
/* the client no longer wants it; NULL is fine */
void natter__resolve_abandon(struct natter__resolve *job);

/* ---- connect.c: Happy Eyeballs ---- */

struct natter__he {
	int epfd;
	uint64_t tag; /* epoll tag of slot 0; slot i is tag + i */
	int delay_ms;
	struct natter__addr addrs[NATTER__ADDRS_MAX];
	size_t n, next;
	int fds[NATTER__ADDRS_MAX]; /* attempts in flight by slot, or -1 */
	size_t idx[NATTER__ADDRS_MAX];
	size_t in_flight;
	uint64_t next_at; /* when the next address starts */
	int err;          /* the most telling failure so far (NATTER_E*) */
	int sys_err;
	size_t err_idx;
};

void natter__he_init(struct natter__he *h, int epfd, uint64_t tag,
                     int delay_ms);
/* start racing a..n (copied) */
void natter__he_begin(struct natter__he *h, const struct natter__addr *a,
                      size_t n, uint64_t now);
/* the attempt delay passed: start the next address */
void natter__he_timer(struct natter__he *h, uint64_t now);
/*
 * Attempt in slot finished (its fd polled ready): 1 with *fd and *idx if
 * it connected (every other attempt is then closed), else 0.
 */
int natter__he_ready(struct natter__he *h, size_t slot, uint64_t now, int *fd,
                     size_t *idx);
/* nothing in flight and nothing left to try */
bool natter__he_failed(const struct natter__he *h);
void natter__he_abort(struct natter__he *h);

/* ---- session.c: chat session tracking and restore, pure ---- */

enum natter__sev {
	NATTER__SEV_NONE = 0,
	NATTER__SEV_PONG,       /* our ping was answered: swallow the line */
	NATTER__SEV_NICK,       /* the server confirmed a nick */
	NATTER__SEV_ROOM,       /* the server confirmed a room */
	NATTER__SEV_NICK_TAKEN, /* "!!! nick X is taken" */
	NATTER__SEV_ALREADY,    /* "!!! you are already ...": a restore
	                           that had nothing to do; swallowed */
	NATTER__SEV_LIMITS,     /* "*** limits: ...": max_line was set */
};

struct natter__session {
	bool echo;
	char want_nick[NATTER__NICK_MAX + 1]; /* to restore; "" none */
	char want_room[NATTER__ROOM_MAX + 1];
	char nick[NATTER__NICK_MAX + 1]; /* as the server says, this session */
	char room[NATTER__ROOM_MAX + 1];
	char taken[NATTER__NICK_MAX + 1];
	char token[NATTER__TOKEN_MAX + 1]; /* the ping in flight; "" none */
	uint64_t token_seq;
	uint64_t token_salt;
	size_t max_line; /* this connection's announced limit; 0 none */
};

bool natter__nick_valid(const char *s);
/* a room with or without '#' into out without it: 0 or NATTER_EINVAL */
int natter__room_norm(const char *s, char *out);

void natter__session_init(struct natter__session *s, bool echo,
                          const char *nick, const char *room, uint64_t salt);
/* a new connection: forget what the last one said */
void natter__session_reset(struct natter__session *s);
/* a fresh ping line (CRLF-less) into buf and its token remembered */
size_t natter__session_ping(struct natter__session *s, char *buf, size_t size);
/*
 * A server line. Updates nick/room, and with established also what is to
 * be restored; says what it was.
 */
enum natter__sev natter__session_line(struct natter__session *s,
                                      const struct natter_line *l,
                                      bool established);

#endif
