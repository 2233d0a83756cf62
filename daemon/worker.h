/*
 * A worker thread: one epoll loop that owns its connections outright. Other
 * threads reach a worker only by posting a message to its queue (a short
 * mutex-guarded list plus an eventfd wake-up).
 */
#ifndef NT_WORKER_H
#define NT_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "listener.h"
#include "outq.h"
#include "stats.h"
#include "util.h"

struct nt_conn;
struct nt_conn_restore;
struct nt_acceptor;
struct nt_hub;
struct nt_chat_worker;
struct nt_latch;

enum nt_msg_type {
	NT_MSG_CONN,     /* a new connection: u.conn */
	NT_MSG_DRAIN,    /* shut down gracefully: stop reading, flush, close */
	NT_MSG_HANDOVER, /* restart: let stored connections go, drain others */
	NT_MSG_STOP,     /* close everything now and leave the loop */
	NT_MSG_CALL,     /* run u.call.fn(worker, u.call.arg) on the worker */
	NT_MSG_CHAT,     /* a chat line for local sessions: u.chat */
	NT_MSG_CONFIG,   /* a reloaded configuration: u.config */
	NT_MSG_LISTEN,   /* accept on these listeners from now on: u.listen */
};

/* a listener as a worker watches it: the worker's own duplicate of the
 * socket, which it alone closes, so no other thread's change to the set
 * can leave a stale fd in its epoll */
struct nt_wlisten {
	int fd;                            /* -1: a free slot */
	bool tcp;                          /* TCP_NODELAY on what it accepts */
	const struct nt_listener_conf *lc; /* in the worker's lsn_cfg */
};

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
			void (*fn)(struct nt_worker *w, void *arg);
			void *arg;
		} call;
		struct {
			struct nt_buf *buf; /* a reference, formatted once */
			uint64_t id;        /* to this session, if room is "" */
			uint32_t slot;
			char room[NT_ROOM_MAX + 1]; /* or to this room */
		} chat;
	} u;
};

struct nt_worker {
	unsigned id;
	pthread_t thread;
	bool started;
	int epfd;
	int evfd; /* wakes the loop when the queue goes non-empty */
	struct nt_config *cfg; /* a reference; changes by NT_MSG_CONFIG */
	struct nt_acceptor *acceptor; /* told when a connection ends */
	struct nt_hub *hub;           /* the chat registry, shared */
	struct nt_chat_worker *chat;  /* chat state, made on first use */
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
	struct nt_conn **heap; /* timer min-heap on conn->deadline */
	uint32_t heap_len, heap_cap;
	struct nt_buf **pool; /* spare read buffers */
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

int nt_worker_init(struct nt_worker *w, unsigned id, struct nt_config *cfg,
                   struct nt_acceptor *acceptor, struct nt_hub *hub);
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
/* latch done once the worker has handled everything posted before. */
int nt_worker_post_barrier(struct nt_worker *w, struct nt_latch *latch);
void nt_worker_join(struct nt_worker *w);
/* Frees what init made; the thread must have ended (or never started). */
void nt_worker_destroy(struct nt_worker *w);

/* --- for the acceptor and conn.c, on the worker's own thread --- */
/* serve fd (an admitted connection, counted in w->load) */
void nt_worker_take(struct nt_worker *w, int fd,
                    const struct nt_listener_conf *lc,
                    const struct nt_config *cfg, const struct nt_peer *peer,
                    struct nt_conn_restore *restore);
void nt_worker_want_flush(struct nt_worker *w, struct nt_conn *c);
void nt_worker_closing(struct nt_worker *w, struct nt_conn *c);
void nt_worker_timer_update(struct nt_worker *w, struct nt_conn *c);
void nt_worker_timer_remove(struct nt_worker *w, struct nt_conn *c);
struct nt_buf *nt_worker_buf_get(struct nt_worker *w);
void nt_worker_buf_put(struct nt_worker *w, struct nt_buf *b);

#endif
