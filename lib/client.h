/*
 * The client handle, shared by client.c (life, options, the calls any
 * thread may make), loop.c (the state machine and the socket) and
 * blocking.c (the waiting calls).
 */
#ifndef NATTER_CLIENT_H
#define NATTER_CLIENT_H

#include <stdatomic.h>

#include "natter-int.h"

/* epoll tags */
#define NATTER__TAG_WAKE    1
#define NATTER__TAG_SOCK    2
#define NATTER__TAG_ATTEMPT 16 /* + slot */

enum natter__state {
	NATTER__ST_IDLE,
	NATTER__ST_RESOLVING,
	NATTER__ST_CONNECTING, /* Happy Eyeballs */
	NATTER__ST_RESTORING,  /* connected; nick and room being re-taken */
	NATTER__ST_CONNECTED,
	NATTER__ST_WAITING, /* backoff */
	NATTER__ST_GAVE_UP,
	NATTER__ST_STOPPED,
};

/* a line waiting for natter_client_receive() */
struct natter__rline {
	struct natter__rline *next;
	size_t len;
	char data[];
};

struct natter_client {
	struct natter_options o; /* the strings point at the copies below */
	char *host, *port, *unix_path, *target;
	char **addresses;
	size_t n_addresses;
	int epfd; /* the one fd callers wait on */
	int evfd; /* wake-up from other threads and the lookup thread */

	/*
	 * lock guards q, st, wake_pending, stop_req, pub_state and
	 * server_max_line: what
	 * senders on other threads touch. It is held across the
	 * non-blocking sendmsg() that drains q, so that a drop-oldest
	 * overflow can never free a line while it is being written.
	 */
	pthread_mutex_t lock;
	struct natter__queue q;
	struct natter_stats st;
	bool wake_pending; /* evfd has been written and not yet drained */
	bool stop_req;
	enum natter_state pub_state;
	/* the server's line limit as it last announced it; 0: none known */
	size_t server_max_line;

	/* a driving call is running: a second one gets NATTER_EBUSY */
	atomic_bool driving;

	/* everything below belongs to the driving thread */
	enum natter__state state;
	int fd; /* the session's socket, or -1 */
	bool want_out;
	struct natter__he he;
	struct natter__resolve *job;
	uint64_t deadline; /* of the connect under way */
	uint64_t wake_at;  /* end of the backoff delay */
	uint64_t ping_at, pong_at, ping_sent, pace_at, up_since;
	int attempt;  /* retries since the last stable session */
	int sessions; /* established so far */
	int nick_tries;
	int last_err;
	bool ever_up;
	bool half_closed; /* natter_client_close(): waiting for the EOF */
	int close_err;    /* how that wait ended: 0 at EOF */
	struct natter__pacer pacer;
	struct natter__rng rng;
	struct natter__session ses;
	struct natter__reader rd;
	char *rdbuf;
	struct natter__rline *rq_head, *rq_tail;
	size_t rq_len;
	/* the server's error while restoring: why the nick was refused */
	char refusal[NATTER__REASON_MAX];
	/* natter_client_flush_server(): the ping whose answer it awaits;
	 * "" once that came (or when none is awaited) */
	char sync_token[NATTER__TOKEN_MAX + 1];
	unsigned long long sync_seq;
	char reason[NATTER__REASON_MAX];
	char peer[NATTER__PEER_MAX];
};

/* loop.c */
void natter__set_state(natter_client *c, enum natter__state s);
int natter__process(natter_client *c);
bool natter__terminal(const natter_client *c);
/* natter_client_stop() was called (the state may not show it yet) */
bool natter__stop_requested(natter_client *c);
/* what a driving call returns once the client is done */
int natter__terminal_code(const natter_client *c);
void natter__teardown(natter_client *c);
/* shut down the sending side of the session and wait for the server's
 * end: no reconnect after it */
void natter__half_close(natter_client *c);

#endif
