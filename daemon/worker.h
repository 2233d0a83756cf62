/*
 * A worker thread: one epoll loop that owns its connections outright and
 * watches any other fd and timer it is given (nt_worker_watch(),
 * nt_worker_timer()). Other threads reach a worker only by posting a
 * message to its queue (a short mutex-guarded list plus an eventfd wake-up).
 */
#ifndef NT_WORKER_H
#define NT_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "heap.h"
#include "listener.h"
#include "outq.h"
#include "service.h"
#include "stats.h"
#include "util.h"

struct nt_conn;
struct nt_conn_restore;
struct nt_admit;
struct nt_latch;
struct nt_watch;
struct nt_fdwatch;
struct nt_timer;

/*
 * What the epoll data of every fd a worker watches points at: a
 * connection, the queue's eventfd, a listener or any other fd. It is
 * embedded in its owner (no allocation of its own), and fn finds the owner
 * with nt_container_of(): one indirect call per event, whatever the fd.
 */
typedef void nt_watch_fn(struct nt_watch *wt, uint32_t events);
struct nt_watch {
	nt_watch_fn *fn;
	int fd;
	uint32_t events; /* the interest in the epoll set; 0: not in it */
};

enum nt_msg_type {
	NT_MSG_CONN,     /* a new connection: u.conn */
	NT_MSG_DRAIN,    /* shut down gracefully: stop reading, flush, close */
	NT_MSG_HANDOVER, /* restart: let stored connections go, drain others */
	NT_MSG_STOP,     /* close everything now and leave the loop */
	NT_MSG_CALL,     /* a callback: u.call (nt_worker_call()) */
	NT_MSG_CONFIG,   /* a reloaded configuration: u.config */
	NT_MSG_LISTEN,   /* accept on these listeners from now on: u.listen */
};

/* a listener as a worker watches it: the worker's own duplicate of the
 * socket, which it alone closes, so no other thread's change to the set
 * can leave a stale fd in its epoll */
struct nt_wlisten {
	struct nt_watch watch;             /* watch.fd -1: a free slot */
	struct nt_worker *w;               /* whose slot it is */
	bool tcp;                          /* TCP_NODELAY on what it accepts */
	const struct nt_listener_conf *lc; /* in the worker's lsn_cfg */
};

/* what a posted call runs, on the worker's thread */
typedef void nt_call_fn(struct nt_worker *w, void *arg);

struct nt_msg {
	struct nt_msg *next;
	enum nt_msg_type type;
	union {
		struct {
			int fd;
			const struct nt_listener_conf *lc;
			struct nt_config *cfg; /* a reference; lc is in it */
			struct nt_peer peer;
			struct nt_conn_restore *restore; /* or NULL */
		} conn;
		struct {
			struct nt_config *cfg; /* a reference, for the worker */
			struct nt_latch *latch; /* done once applied */
		} config;
		struct {
			struct nt_wlisten *l; /* malloc'd, fds owned */
			size_t n;             /* 0: stop accepting */
			struct nt_config
			    *cfg; /* a reference; every lc is in it */
			struct nt_latch *latch; /* done once applied */
		} listen;
		struct {
			nt_call_fn *fn;
			void (*release)(void *arg); /* or NULL */
			void *arg;
		} call;
	} u;
	/* a call's argument when it travels in the message itself */
	max_align_t data[];
};

struct nt_worker {
	unsigned id;
	pthread_t thread;
	bool started;
	int epfd;
	struct nt_watch queue;  /* an eventfd: the queue went non-empty */
	struct nt_config *cfg;  /* a reference; changes by NT_MSG_CONFIG */
	struct nt_admit *admit; /* told when a connection ends */
	/* each service's state shared by all workers (main's), or NULL */
	void *svc_shared[NT_SERVICES];
	void *svc_state[NT_SERVICES]; /* each service's own, for this one */
	struct nt_worker **peers;     /* every worker, this one included */
	size_t n_peers;

	pthread_mutex_t lock; /* guards queue_head and queue_tail only */
	struct nt_msg *queue_head, *queue_tail;

	/* owned by the worker thread */
	uint64_t now; /* ms, CLOCK_MONOTONIC, read once per loop turn */
	bool draining;
	bool stopping;
	struct nt_conn *conns; /* every connection (doubly linked) */
	struct nt_conn *flush_list;
	struct nt_conn *close_list;
	struct nt_heap deadlines;     /* its connections, keyed by conn.c */
	struct nt_timer *timers;      /* nt_worker_timer()s, soonest first */
	struct nt_fdwatch *watches;   /* nt_worker_watch()es */
	struct nt_fdwatch *unwatched; /* freed at the end of the loop turn */
	struct nt_buf **pool;         /* spare read buffers */
	uint32_t pool_len;
	struct nt_outq_pool rings; /* spare rings for its output queues */
	/* the listeners it accepts on (EPOLLEXCLUSIVE), in fixed slots so
	 * that an event still pending for a slot finds a valid one */
	struct nt_wlisten lsn[NT_LISTENERS_MAX];
	size_t n_lsn;
	struct nt_config *lsn_cfg; /* a reference, for lsn[].lc */
	bool lsn_watched;          /* lsn[] are in the epoll set */
	uint64_t lsn_resume;       /* out of fds: rest until then (ms), or 0 */

	/* read by other threads */
	atomic_uint load; /* connections posted and not yet closed */
	atomic_bool done; /* the loop has ended */
	atomic_uint_fast64_t heartbeat; /* bumped every loop turn */
	struct nt_worker_stats stats;
};

#define NT_READ_BUF_SIZE (16 * 1024)

/* shared: NT_SERVICES entries, each service's shared state (outlives the
 * worker), or NULL when no service has any */
int nt_worker_init(struct nt_worker *w, unsigned id, struct nt_config *cfg,
                   struct nt_admit *admit, void *const *shared);
int nt_worker_start(struct nt_worker *w);
/* Takes ownership of m (allocated with malloc). Safe from any thread. */
void nt_worker_post(struct nt_worker *w, struct nt_msg *m);
/* Post a message with no payload; -ENOMEM if it could not be made. */
int nt_worker_post_type(struct nt_worker *w, enum nt_msg_type type);
/* Switch to cfg (a reference is taken); latch done once applied. */
int nt_worker_post_config(struct nt_worker *w, struct nt_config *cfg,
                          struct nt_latch *latch);
/* Accept on the listeners of set from now on (NULL: on none); the worker
 * gets its own duplicates. latch done once applied. */
int nt_worker_post_listen(struct nt_worker *w,
                          const struct nt_listener_set *set,
                          struct nt_latch *latch);
/*
 * Run fn(w, arg) on w's thread, after everything posted before, then
 * release(arg) if it is not NULL; a worker that ends before it runs calls
 * only release(arg). Safe from any thread; 0 or -ENOMEM.
 */
int nt_worker_call(struct nt_worker *w, nt_call_fn *fn,
                   void (*release)(void *arg), void *arg);
/*
 * The same with an argument of size bytes carried in the message itself,
 * at m->data (one allocation for both, which the worker frees; release
 * frees only what the argument holds): fill it, then nt_worker_post().
 * NULL if no memory.
 */
struct nt_msg *nt_worker_call_new(nt_call_fn *fn, void (*release)(void *arg),
                                  size_t size);
/* latch done once the worker has handled everything posted before. */
int nt_worker_post_barrier(struct nt_worker *w, struct nt_latch *latch);
void nt_worker_join(struct nt_worker *w);
/* Frees what init made; the thread must have ended (or never started). */
void nt_worker_destroy(struct nt_worker *w);

/* ---- on the worker's own thread: fds and timers of any kind ---------- */

/*
 * Watch fd (not taken: the caller closes it after nt_worker_unwatch()) for
 * events (EPOLLIN, EPOLLOUT; 0 is fine): fn(w, fd, events, arg) runs on
 * each readiness, and cleanup(arg), if not NULL, once the watch ends, by
 * nt_worker_unwatch() or because the worker ends. The handle, or NULL
 * (errno set). This is the shape an asynchronous client library's event
 * adapter wants (hiredis: addRead/delRead/addWrite/delWrite are
 * nt_worker_watch_add()/_del(), cleanup is nt_worker_unwatch()).
 */
typedef void nt_fdwatch_fn(struct nt_worker *w, int fd, uint32_t events,
                           void *arg);
struct nt_fdwatch *nt_worker_watch(struct nt_worker *w, int fd, uint32_t events,
                                   nt_fdwatch_fn *fn,
                                   void (*cleanup)(void *arg), void *arg);
/* add or remove interest (EPOLLIN, EPOLLOUT); 0 or -errno */
int nt_worker_watch_add(struct nt_fdwatch *x, uint32_t events);
int nt_worker_watch_del(struct nt_fdwatch *x, uint32_t events);
/* the interest now */
uint32_t nt_worker_watch_events(const struct nt_fdwatch *x);
/* Stop watching, run the cleanup hook; the handle is gone (events already
 * reported for it in this loop turn are dropped). NULL is fine. */
void nt_worker_unwatch(struct nt_fdwatch *x);

/*
 * Run fn(w, arg) once at when_ms (the worker's clock, w->now). The handle
 * (valid until it fires or is cancelled), or NULL if no memory. Meant for
 * the few timers that are not a connection's (those are in the heap).
 */
typedef void nt_timer_fn(struct nt_worker *w, void *arg);
struct nt_timer *nt_worker_timer(struct nt_worker *w, uint64_t when_ms,
                                 nt_timer_fn *fn, void *arg);
/* Before it fired: it never will. NULL is fine. */
void nt_worker_timer_cancel(struct nt_worker *w, struct nt_timer *t);

/*
 * Put wt in the epoll set with interest events (0: out of it), adding,
 * modifying or removing as needed; 0 or -errno. For watches embedded in
 * their owners (connections).
 */
int nt_worker_watch_set(struct nt_worker *w, struct nt_watch *wt,
                        uint32_t events);

/* --- for admission and conn.c, on the worker's own thread --- */
/*
 * Whether messages wait in w's queue. A connection w accepts itself waits
 * behind them (admission posts it to w), so that whatever was posted to w
 * before the client connected (a room's line, a join) is handled before
 * the client is in a room.
 */
bool nt_worker_has_posts(struct nt_worker *w);
/* serve fd (an admitted connection, counted in w->load) */
void nt_worker_take(struct nt_worker *w, int fd,
                    const struct nt_listener_conf *lc,
                    const struct nt_config *cfg, const struct nt_peer *peer,
                    struct nt_conn_restore *restore);
void nt_worker_want_flush(struct nt_worker *w, struct nt_conn *c);
void nt_worker_closing(struct nt_worker *w, struct nt_conn *c);
struct nt_buf *nt_worker_buf_get(struct nt_worker *w);
void nt_worker_buf_put(struct nt_worker *w, struct nt_buf *b);

#endif
