/*
 * A client connection: its socket, output queue, read pausing, timers and
 * its one teardown path. A connection belongs to exactly one worker and is
 * only ever touched by that worker's thread.
 */
#ifndef NT_CONN_H
#define NT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "config.h"
#include "outq.h"
#include "sd.h"
#include "service.h"
#include "util.h"
#include "worker.h"

struct nt_conn;
struct nt_worker;

/*
 * A connection's life. Only OPEN reads for the service; the three ending
 * states read nothing and wait for the output queue to empty; LINGERING
 * reads only to drop. Every change goes through conn_set_state(), which
 * allows only these moves:
 *
 *   OPEN      -> FINISHING, DRAINING, HANDED_OVER, CLOSED
 *   FINISHING -> HANDED_OVER, LINGERING, CLOSED
 *   DRAINING  -> FINISHING, HANDED_OVER, LINGERING, CLOSED
 *   HANDED_OVER -> CLOSED
 *   LINGERING -> CLOSED
 *
 * A finish while draining takes over its reason; a shutdown while
 * finishing changes nothing; a handover wins over both, since the next
 * natterd must get the client whatever this one was doing with it.
 */
enum nt_conn_state {
	NT_CONN_OPEN,        /* reading and writing */
	NT_CONN_FINISHING,   /* the session is over (the peer's EOF, a quit,
	                      * a timeout): no more input, linger once the
	                      * output is sent */
	NT_CONN_DRAINING,    /* the server shuts down: no more input, linger
	                      * once the output is sent */
	NT_CONN_HANDED_OVER, /* the next natterd takes it over from the fd
	                      * store: no more input, and once the output is
	                      * sent let go without a FIN */
	NT_CONN_LINGERING,   /* our FIN is out; reading and dropping until
	                      * the peer's, or NT_LINGER_MS */
	NT_CONN_CLOSED,      /* marked: no more I/O, freed at the safe point */
	NT_CONN_STATES
};

/* Whether conn_set_state() allows the move from -> to. */
bool nt_conn_state_ok(enum nt_conn_state from, enum nt_conn_state to);
const char *nt_conn_state_name(enum nt_conn_state s);

/* why an OPEN connection does not read; it reads when no reason is left */
enum {
	NT_PAUSE_OUTPUT = 1u << 0, /* too much queued output */
	NT_PAUSE_FLOOD = 1u << 1,  /* flood control */
};

/* how nt_conn_finish() ends a connection */
enum nt_conn_finish_how {
	NT_FINISH_OUTPUT,   /* read no more; close once the queue is sent */
	NT_FINISH_NOTICE,   /* the same, but what is queued (a timeout's
	                     * notice) gets one write now: a peer that does
	                     * not take it all is closed at once */
	NT_FINISH_SHUTDOWN, /* the server drains: the service's shutdown
	                     * hook, then as NT_FINISH_OUTPUT */
	NT_FINISH_HANDOVER, /* c is in the fd store and the server restarts:
	                     * what the client sends waits in the socket for
	                     * the next natterd; once our output is sent our
	                     * descriptor closes without telling anyone */
};

/* a connection taken over from an earlier natterd through the fd store */
struct nt_conn_restore {
	struct nt_sd_client *store; /* its place in the store, owned */
	struct nt_sd_session session;
};

void nt_conn_restore_free(struct nt_conn_restore *r);

/*
 * After a polite end (the peer's EOF, a quit, a timeout notice, shutdown)
 * and once everything owed is written, we send our FIN and read and drop
 * whatever the peer still sends, for at most this long or until its EOF:
 * closing with its bytes unread would reset the connection and destroy what
 * we wrote and the peer has not yet received, mid-line perhaps.
 */
#define NT_LINGER_MS 2000

/*
 * An idle connection costs this struct and a timer heap slot, so it is kept
 * small (200 bytes: the flags are bits, rare state lives elsewhere): the
 * RSS per connection of make bench's hold scenario (BENCHMARKS.md) counts
 * every byte of it.
 */
struct nt_conn {
	struct nt_watch watch;  /* its socket: fd, what epoll watches for */
	uint8_t state;          /* enum nt_conn_state */
	uint8_t pause;          /* NT_PAUSE_* bits */
	bool peer_eof : 1;      /* a read returned 0: no FIN of its own to wait
	                         * for */
	bool handed_over : 1;   /* closed from HANDED_OVER: nobody has quit */
	bool want_write : 1;    /* EPOLLOUT is armed */
	bool in_flush_list : 1; /* queued for the end-of-loop flush */
	bool lc_owned : 1;      /* lc is our own copy, freed with us */
	uint32_t heap_idx;      /* slot in w->deadlines, or NT_HEAP_NONE */
	struct nt_worker *w;
	/* in w->cfg, or our own copy (lc_owned) when its listener is gone or
	 * changed service since: a connection keeps the settings it came
	 * with */
	const struct nt_listener_conf *lc;
	const struct nt_service_ops *ops;
	void *svc; /* the service's per-connection state */
	struct nt_buf *in;
	struct nt_outq out;
	uint64_t svc_deadline;  /* ms; 0 = none */
	uint64_t last_activity; /* ms; input read or output written */
	uint64_t last_progress; /* ms; output written or queued from empty */
	uint64_t partial_since; /* ms; an unfinished line began; 0 = none */
	uint64_t linger_until;  /* ms; when lingering ends anyway */
	const char *close_reason;
	struct nt_sd_client *store;  /* in systemd's fd store, or NULL */
	struct nt_conn *next_flush;  /* worker's flush / close list */
	struct nt_conn *prev, *next; /* worker's list of connections */
	struct nt_peer peer;
};

/*
 * Made by the worker that accepted fd or was handed it; lc is in cfg, which
 * may be older than the worker's. restore (taken, may be NULL) is a session
 * from before a restart. NULL if no memory (restore is then freed).
 */
struct nt_conn *nt_conn_new(struct nt_worker *w, int fd,
                            const struct nt_listener_conf *lc,
                            const struct nt_config *cfg,
                            const struct nt_peer *peer,
                            struct nt_conn_restore *restore);
/* Frees a connection that nt_conn_close() marked; called by the worker. */
void nt_conn_free(struct nt_conn *c);

/*
 * Read from the socket: the bytes read, or 0 when there is nothing to do
 * now: no data yet, or the peer's EOF (the connection then finishes: no
 * more reading, closed once its output is sent) or an error (closed).
 */
ssize_t nt_conn_read(struct nt_conn *c, void *buf, size_t len);

/*
 * Queue len bytes of b from off for sending; takes its own reference.
 * Never writes to the socket itself: the worker flushes once per loop.
 * Every byte queued on a connection comes through here and counts against
 * limits.max_output, each segment charged NT_OUTQ_SEG_COST more: a send
 * whose bytes would take what is queued past it (or the ring past
 * NT_OUTQ_SEGS_MAX) queues nothing, calls the service's overflow hook and
 * returns -ENOBUFS. A queue thus holds at most max_output bytes and one
 * segment's charge, and a line of max_output bytes fits an empty one. -EINVAL
 * if off and len are not within b's cap, -EPIPE once the connection is closing
 * or lingering, -ENOMEM.
 */
int nt_conn_send(struct nt_conn *c, struct nt_buf *b, size_t off, size_t len);
/* The most bytes one more send can queue without passing the bound. */
static inline size_t nt_conn_room(const struct nt_conn *c)
{
	size_t limit = c->w->cfg->limits.max_output;

	return c->out.bytes < limit ? limit - c->out.bytes : 0;
}
/*
 * Write data straight to the socket when nothing is queued ahead of it, so
 * a reply that fits the socket never touches the output queue: how many
 * bytes went out (0 when something is queued, the socket is full or the
 * connection is ending; the caller queues the rest), or -1 when the write
 * failed and the connection is closed.
 */
ssize_t nt_conn_write_now(struct nt_conn *c, const void *data, size_t len);
/*
 * Queue a copy of a short server reply, as nt_conn_send() does; copies in
 * a row share one buffer, so a stream of tiny replies costs about its
 * bytes and not a buffer and a segment each.
 */
int nt_conn_send_copy(struct nt_conn *c, const void *data, size_t len);
/*
 * Close with last words: a copy of data is queued past the bound (nothing
 * can follow it) and gets the one best-effort write that output queued at
 * a close gets; reason as for nt_conn_close().
 */
void nt_conn_close_with(struct nt_conn *c, const char *reason, const void *data,
                        size_t len);
static inline size_t nt_conn_queued(const struct nt_conn *c)
{
	return c->out.bytes;
}

/* Write as much queued output as the socket takes (writev). */
void nt_conn_flush(struct nt_conn *c);

void nt_conn_pause(struct nt_conn *c, unsigned why);
void nt_conn_resume(struct nt_conn *c, unsigned why);

/*
 * The service holds an unfinished line (or not any more): the line timeout
 * runs from the first call with true until a call with false.
 */
void nt_conn_partial(struct nt_conn *c, bool partial);

/* A service deadline in ms on the worker's clock (0 clears it). */
void nt_conn_set_timer(struct nt_conn *c, uint64_t when_ms);
/* The worker's timer heap says our deadline has come. */
void nt_conn_on_deadline(struct nt_conn *c);

/* Epoll reported events for this connection (its watch's callback). */
void nt_conn_on_events(struct nt_watch *wt, uint32_t events);

/*
 * The one teardown path: mark the connection, stop all I/O on it, and let
 * the worker free it at a safe point, logging reason once. Idempotent: the
 * first reason wins. reason must be a string literal or otherwise outlive
 * the connection.
 */
void nt_conn_close(struct nt_conn *c, const char *reason);

/*
 * The polite end, as how says: read no more and close once the queue is
 * sent, lingering first (NT_LINGER_MS) unless handed over; reason as for
 * nt_conn_close(). Nothing more can be queued once the queue is empty. A
 * connection already ending keeps its course (see enum nt_conn_state).
 */
void nt_conn_finish(struct nt_conn *c, enum nt_conn_finish_how how,
                    const char *reason);

/* Closed (nt_conn_close() was called): nothing more reaches the peer. */
static inline bool nt_conn_closed(const struct nt_conn *c)
{
	return c->state == NT_CONN_CLOSED;
}
/* The session is over (finished, lingering or closed): act on no more
 * input. A draining or handed-over session still does what it was asked. */
static inline bool nt_conn_ended(const struct nt_conn *c)
{
	return c->state == NT_CONN_FINISHING || c->state >= NT_CONN_LINGERING;
}
/* Closed from HANDED_OVER: the next natterd carries the session on. */
static inline bool nt_conn_handed_over(const struct nt_conn *c)
{
	return c->handed_over;
}

/* The worker moved to a new configuration: re-resolve the listener by name,
 * apply new timeouts, tell the service. old is still valid. */
void nt_conn_reconfigure(struct nt_conn *c, const struct nt_config *old);

/* The service's session changed (chat: nick or room): keep the stored copy
 * current, as its session_encode hook says. No-op when c is not in the fd
 * store. */
void nt_conn_store_session(struct nt_conn *c);

/* NATTER_CLIENT text for logs */
void nt_conn_client(const struct nt_conn *c, char *buf, size_t size);

uint64_t nt_conn_now(const struct nt_conn *c);

#endif
