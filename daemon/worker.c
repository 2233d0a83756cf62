/*
 * A worker: one thread, one epoll loop, the connections it owns, a timer
 * heap for their deadlines, the other fds and timers it was given, and a
 * message queue through which every other thread talks to it. Each loop
 * turn dispatches events through their watches, then flushes every
 * connection that queued output, then runs due timers, then frees what was
 * closed: the one safe point for freeing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "admit.h"
#include "conn.h"
#include "log.h"
#include "service.h"
#include "worker.h"

#define EVENTS_PER_TURN 256
#define POOL_MAX        64
/* the loop wakes at least this often, so its heartbeat shows it is alive */
#define TICK_MS 1000

static void worker_on_queue(struct nt_watch *wt, uint32_t events);
static void worker_on_lsn(struct nt_watch *wt, uint32_t events);

/* a watch of any fd, for nt_worker_watch() */
struct nt_fdwatch {
	struct nt_watch watch;
	struct nt_worker *w;
	nt_fdwatch_fn *fn;
	void (*cleanup)(void *arg);
	void *arg;
	struct nt_fdwatch *prev, *next; /* w->watches, or w->unwatched */
};

struct nt_timer {
	uint64_t when;
	nt_timer_fn *fn;
	void *arg;
	struct nt_timer *next; /* w->timers, soonest first */
};

/* the deadline heap tells a connection its slot (conn.c keys them) */
static void worker_conn_moved(void *item, uint32_t idx)
{
	((struct nt_conn *)item)->heap_idx = idx;
}

int nt_worker_init(struct nt_worker *w, unsigned id, struct nt_config *cfg,
                   struct nt_admit *admit, void *const *shared)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->cfg = nt_config_ref(cfg);
	w->admit = admit;
	for (size_t i = 0; shared && i < NT_SERVICES; i++)
		w->svc_shared[i] = shared[i];
	nt_outq_pool_init(&w->rings);
	nt_heap_init(&w->deadlines, worker_conn_moved);
	w->epfd = w->queue.fd = -1;
	w->queue.fn = worker_on_queue;
	for (size_t i = 0; i < NT_LISTENERS_MAX; i++) {
		w->lsn[i].watch.fd = -1;
		w->lsn[i].watch.fn = worker_on_lsn;
	}
	pthread_mutex_init(&w->lock, NULL);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		goto fail;
	w->queue.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->queue.fd < 0)
		goto fail;
	int rc = nt_worker_watch_set(w, &w->queue, EPOLLIN);
	if (rc < 0) {
		errno = -rc;
		goto fail;
	}
	w->pool = calloc(POOL_MAX, sizeof(*w->pool));
	if (!w->pool) {
		errno = ENOMEM;
		goto fail;
	}
	return 0;
fail:
	rc = -errno;
	nt_worker_destroy(w);
	return rc;
}

bool nt_worker_has_posts(struct nt_worker *w)
{
	pthread_mutex_lock(&w->lock);
	bool any = w->queue_head != NULL;
	pthread_mutex_unlock(&w->lock);
	return any;
}

void nt_worker_post(struct nt_worker *w, struct nt_msg *m)
{
	bool was_empty;

	m->next = NULL;
	pthread_mutex_lock(&w->lock);
	was_empty = w->queue_head == NULL;
	if (w->queue_tail)
		w->queue_tail->next = m;
	else
		w->queue_head = m;
	w->queue_tail = m;
	pthread_mutex_unlock(&w->lock);
	/* the worker drains the whole queue per wake-up, so only the first
	 * message of a batch needs to wake it */
	if (was_empty) {
		uint64_t one = 1;
		ssize_t n = write(w->queue.fd, &one, sizeof(one));
		(void)n; /* EAGAIN: the counter is already non-zero */
	}
}

int nt_worker_post_type(struct nt_worker *w, enum nt_msg_type type)
{
	struct nt_msg *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->type = type;
	nt_worker_post(w, m);
	return 0;
}

int nt_worker_post_config(struct nt_worker *w, struct nt_config *cfg,
                          struct nt_latch *latch)
{
	struct nt_msg *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->type = NT_MSG_CONFIG;
	m->u.config.cfg = nt_config_ref(cfg);
	m->u.config.latch = latch;
	nt_worker_post(w, m);
	return 0;
}

int nt_worker_post_listen(struct nt_worker *w,
                          const struct nt_listener_set *set,
                          struct nt_latch *latch)
{
	size_t n = set ? set->n : 0, k = 0;
	struct nt_msg *m = calloc(1, sizeof(*m));
	struct nt_wlisten *l = calloc(n ? n : 1, sizeof(*l));

	if (!m || !l) {
		free(m);
		free(l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int fd = fcntl(set->l[i]->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			nt_log_warn("worker %u: cannot accept on listener "
			            "\"%s\"",
			            w->id, set->lc[i]->name);
			continue;
		}
		l[k].watch.fd = fd;
		l[k].tcp = set->l[i]->family != NT_FAMILY_UNIX;
		l[k++].lc = set->lc[i];
	}
	m->type = NT_MSG_LISTEN;
	m->u.listen.l = l;
	m->u.listen.n = k;
	m->u.listen.cfg = set ? nt_config_ref(set->cfg) : NULL;
	m->u.listen.latch = latch;
	nt_worker_post(w, m);
	return 0;
}

struct nt_msg *nt_worker_call_new(nt_call_fn *fn, void (*release)(void *arg),
                                  size_t size)
{
	struct nt_msg *m = malloc(sizeof(*m) + size);

	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->type = NT_MSG_CALL;
	m->u.call.fn = fn;
	m->u.call.release = release;
	m->u.call.arg = size ? m->data : NULL;
	return m;
}

int nt_worker_call(struct nt_worker *w, nt_call_fn *fn,
                   void (*release)(void *arg), void *arg)
{
	struct nt_msg *m = nt_worker_call_new(fn, release, 0);

	if (!m)
		return -ENOMEM;
	m->u.call.arg = arg;
	nt_worker_post(w, m);
	return 0;
}

/* the latch is done by the release that follows */
static void worker_barrier(struct nt_worker *w, void *arg)
{
	(void)w;
	(void)arg;
}

static void worker_latch_done(void *arg)
{
	nt_latch_done(arg);
}

int nt_worker_post_barrier(struct nt_worker *w, struct nt_latch *latch)
{
	return nt_worker_call(w, worker_barrier, worker_latch_done, latch);
}

static void worker_run_timers(struct nt_worker *w)
{
	struct nt_heap *h = &w->deadlines;

	/* bounded: a connection whose deadline moved is re-keyed, one whose
	 * deadline is still due is closed or cleared by on_deadline */
	for (unsigned n = 0; nt_heap_len(h) && n < 4 * EVENTS_PER_TURN; n++) {
		struct nt_conn *c = nt_heap_min(h);
		if (nt_heap_min_key(h) > w->now)
			break;
		if (nt_conn_closed(c)) {
			nt_heap_remove(h, 0);
			continue;
		}
		nt_conn_on_deadline(c);
		if (!nt_conn_closed(c) && c->heap_idx == 0 &&
		    nt_heap_key(h, 0) <= w->now)
			/* a deadline that stays due must not spin the loop */
			nt_heap_update(h, 0, w->now + TICK_MS);
	}
}

/* ---- watches and timers of any kind ---- */

int nt_worker_watch_set(struct nt_worker *w, struct nt_watch *wt,
                        uint32_t events)
{
	struct epoll_event e = {.events = events, .data.ptr = wt};
	int op = !events      ? EPOLL_CTL_DEL
	         : wt->events ? EPOLL_CTL_MOD
	                      : EPOLL_CTL_ADD;

	if (events == wt->events)
		return 0;
	if (epoll_ctl(w->epfd, op, wt->fd, &e) < 0)
		return -errno;
	wt->events = events;
	return 0;
}

static void fdwatch_on_events(struct nt_watch *wt, uint32_t events)
{
	struct nt_fdwatch *x = nt_container_of(wt, struct nt_fdwatch, watch);

	x->fn(x->w, wt->fd, events, x->arg);
}

/* an event reported for a watch that has ended since, in the same turn */
static void fdwatch_gone(struct nt_watch *wt, uint32_t events)
{
	(void)wt;
	(void)events;
}

struct nt_fdwatch *nt_worker_watch(struct nt_worker *w, int fd, uint32_t events,
                                   nt_fdwatch_fn *fn,
                                   void (*cleanup)(void *arg), void *arg)
{
	struct nt_fdwatch *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	*x = (struct nt_fdwatch){.watch = {.fn = fdwatch_on_events, .fd = fd},
	                         .w = w,
	                         .fn = fn,
	                         .cleanup = cleanup,
	                         .arg = arg};
	int rc = nt_worker_watch_set(w, &x->watch, events);
	if (rc < 0) {
		free(x);
		errno = -rc;
		return NULL;
	}
	x->next = w->watches;
	if (w->watches)
		w->watches->prev = x;
	w->watches = x;
	return x;
}

int nt_worker_watch_add(struct nt_fdwatch *x, uint32_t events)
{
	return nt_worker_watch_set(x->w, &x->watch, x->watch.events | events);
}

int nt_worker_watch_del(struct nt_fdwatch *x, uint32_t events)
{
	return nt_worker_watch_set(x->w, &x->watch, x->watch.events & ~events);
}

uint32_t nt_worker_watch_events(const struct nt_fdwatch *x)
{
	return x->watch.events;
}

void nt_worker_unwatch(struct nt_fdwatch *x)
{
	if (!x || x->watch.fn == fdwatch_gone)
		return;
	struct nt_worker *w = x->w;
	nt_worker_watch_set(w, &x->watch, 0);
	x->watch.fn = fdwatch_gone;
	if (x->prev)
		x->prev->next = x->next;
	else
		w->watches = x->next;
	if (x->next)
		x->next->prev = x->prev;
	/* freed at the end of the turn: an event for it may still be in
	 * this turn's batch */
	x->prev = NULL;
	x->next = w->unwatched;
	w->unwatched = x;
	if (x->cleanup)
		x->cleanup(x->arg);
}

static void worker_free_unwatched(struct nt_worker *w)
{
	while (w->unwatched) {
		struct nt_fdwatch *x = w->unwatched;
		w->unwatched = x->next;
		free(x);
	}
}

struct nt_timer *nt_worker_timer(struct nt_worker *w, uint64_t when_ms,
                                 nt_timer_fn *fn, void *arg)
{
	struct nt_timer *t = malloc(sizeof(*t)), **pp = &w->timers;

	if (!t)
		return NULL;
	*t = (struct nt_timer){.when = when_ms, .fn = fn, .arg = arg};
	while (*pp && (*pp)->when <= when_ms)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	return t;
}

void nt_worker_timer_cancel(struct nt_worker *w, struct nt_timer *t)
{
	for (struct nt_timer **pp = &w->timers; t && *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			free(t);
			return;
		}
}

static void worker_run_other_timers(struct nt_worker *w)
{
	/* bounded: only those due now; one a callback sets for now waits
	 * for the next turn */
	struct nt_timer *due = w->timers, **pp = &w->timers;

	while (*pp && (*pp)->when <= w->now)
		pp = &(*pp)->next;
	w->timers = *pp;
	*pp = NULL;
	while (due) {
		struct nt_timer *t = due;
		due = t->next;
		t->fn(w, t->arg);
		free(t);
	}
}

static int worker_timeout(struct nt_worker *w)
{
	if (w->flush_list || w->close_list)
		return 0;
	uint64_t d = nt_heap_min_key(&w->deadlines);
	if (w->timers && w->timers->when < d)
		d = w->timers->when;
	if (w->lsn_resume && w->lsn_resume < d)
		d = w->lsn_resume;
	if (nt_sd_clients_due() < d)
		d = nt_sd_clients_due();
	if (d == UINT64_MAX)
		return TICK_MS;
	if (d <= w->now)
		return 0;
	return (int)NT_MIN(d - w->now, (uint64_t)TICK_MS);
}

/* ---- buffers ---- */

struct nt_buf *nt_worker_buf_get(struct nt_worker *w)
{
	if (w->pool_len)
		return w->pool[--w->pool_len];
	return nt_buf_new(NT_READ_BUF_SIZE);
}

void nt_worker_buf_put(struct nt_worker *w, struct nt_buf *b)
{
	if (w->pool_len < POOL_MAX && b->cap == NT_READ_BUF_SIZE &&
	    nt_buf_refs(b) == 1) {
		b->len = 0;
		w->pool[w->pool_len++] = b;
		return;
	}
	nt_buf_unref(b);
}

/* ---- lists ---- */

void nt_worker_want_flush(struct nt_worker *w, struct nt_conn *c)
{
	if (c->in_flush_list || nt_conn_closed(c))
		return;
	c->in_flush_list = true;
	c->next_flush = w->flush_list;
	w->flush_list = c;
}

void nt_worker_closing(struct nt_worker *w, struct nt_conn *c)
{
	if (c->heap_idx != NT_HEAP_NONE)
		nt_heap_remove(&w->deadlines, c->heap_idx);
	/* the close list reuses next_flush: take it off the flush list */
	if (c->in_flush_list) {
		struct nt_conn **pp = &w->flush_list;
		while (*pp != c)
			pp = &(*pp)->next_flush;
		*pp = c->next_flush;
		c->in_flush_list = false;
	}
	c->next_flush = w->close_list;
	w->close_list = c;
}

static void worker_flush_all(struct nt_worker *w)
{
	while (w->flush_list) {
		struct nt_conn *c = w->flush_list;
		w->flush_list = c->next_flush;
		c->in_flush_list = false;
		nt_conn_flush(c);
	}
}

static void worker_free_closed(struct nt_worker *w)
{
	while (w->close_list) {
		struct nt_conn *c = w->close_list;
		w->close_list = c->next_flush;
		nt_conn_free(c);
	}
}

/* ---- listeners ---- */

static void worker_lsn_watch(struct nt_worker *w, bool on)
{
	for (size_t i = 0; i < w->n_lsn; i++) {
		struct nt_wlisten *l = &w->lsn[i];
		/* EPOLLEXCLUSIVE: a new client wakes one waiting worker */
		if (!on)
			nt_worker_watch_set(w, &l->watch, 0);
		else if (nt_worker_watch_set(w, &l->watch,
		                             EPOLLIN | EPOLLEXCLUSIVE) < 0)
			nt_log_warn("worker %u: cannot accept on listener "
			            "\"%s\"",
			            w->id, l->lc->name);
	}
	w->lsn_watched = on;
}

/* stop accepting: out of the epoll set, and the duplicates closed */
static void worker_lsn_drop(struct nt_worker *w)
{
	if (w->lsn_watched)
		worker_lsn_watch(w, false);
	for (size_t i = 0; i < w->n_lsn; i++) {
		close(w->lsn[i].watch.fd);
		w->lsn[i].watch.fd = -1;
		w->lsn[i].watch.events = 0;
		w->lsn[i].lc = NULL;
	}
	w->n_lsn = 0;
	w->lsn_resume = 0;
	nt_config_unref(w->lsn_cfg);
	w->lsn_cfg = NULL;
}

static void worker_listen(struct nt_worker *w, struct nt_msg *m)
{
	worker_lsn_drop(w);
	for (size_t i = 0; i < m->u.listen.n; i++) {
		w->lsn[i] = m->u.listen.l[i];
		w->lsn[i].watch.fn = worker_on_lsn;
		w->lsn[i].watch.events = 0;
		w->lsn[i].w = w;
	}
	w->n_lsn = m->u.listen.n;
	w->lsn_cfg = m->u.listen.cfg;
	free(m->u.listen.l);
	if (w->draining || w->stopping)
		worker_lsn_drop(w);
	else
		worker_lsn_watch(w, true);
	nt_latch_done(m->u.listen.latch);
}

static void worker_accept(struct nt_worker *w, struct nt_wlisten *l);

static void worker_on_lsn(struct nt_watch *wt, uint32_t events)
{
	struct nt_wlisten *l = nt_container_of(wt, struct nt_wlisten, watch);

	(void)events;
	worker_accept(l->w, l);
}

static void worker_accept(struct nt_worker *w, struct nt_wlisten *l)
{
	/* an event from before a change of listeners or a rest: none now */
	if (l->watch.fd < 0 || !w->lsn_watched)
		return;
	uint64_t until = nt_admit_accept(w->admit, w, l);
	if (until) {
		worker_lsn_watch(w, false);
		w->lsn_resume = until;
	}
}

static void worker_lsn_resume(struct nt_worker *w)
{
	if (w->lsn_resume && w->now >= w->lsn_resume) {
		w->lsn_resume = 0;
		worker_lsn_watch(w, true);
	}
}

/* ---- messages ---- */

static void worker_refuse(struct nt_worker *w, int fd,
                          const struct nt_peer *peer,
                          struct nt_conn_restore *restore)
{
	close(fd);
	nt_conn_restore_free(restore);
	atomic_fetch_sub_explicit(&w->load, 1, memory_order_relaxed);
	nt_admit_release(w->admit, peer);
}

void nt_worker_take(struct nt_worker *w, int fd,
                    const struct nt_listener_conf *lc,
                    const struct nt_config *cfg, const struct nt_peer *peer,
                    struct nt_conn_restore *restore)
{
	if (w->draining || w->stopping) {
		/* a stored client stays stored for the next natterd */
		if (restore) {
			nt_sd_client_release(restore->store);
			restore->store = NULL;
		}
		worker_refuse(w, fd, peer, restore);
	} else if (!nt_conn_new(w, fd, lc, cfg, peer, restore)) {
		nt_log_warn("worker %u: cannot take a connection", w->id);
		/* restore was freed by nt_conn_new */
		worker_refuse(w, fd, peer, NULL);
	}
}

static void worker_new_conn(struct nt_worker *w, struct nt_msg *m)
{
	nt_worker_take(w, m->u.conn.fd, m->u.conn.lc, m->u.conn.cfg,
	               &m->u.conn.peer, m->u.conn.restore);
	nt_config_unref(m->u.conn.cfg);
}

static void worker_drain(struct nt_worker *w)
{
	worker_lsn_drop(w);
	w->draining = true;
	for (struct nt_conn *c = w->conns; c; c = c->next)
		nt_conn_finish(c, NT_FINISH_SHUTDOWN, "server shutting down");
}

static void worker_handover(struct nt_worker *w)
{
	worker_lsn_drop(w);
	w->draining = true;
	/* clients still waiting for the fd store go into it now, or are
	 * not kept and shut down like any other */
	nt_sd_clients_flush(w->now, true);
	for (struct nt_conn *c = w->conns; c; c = c->next)
		if (nt_sd_client_kept(c->store))
			nt_conn_finish(c, NT_FINISH_HANDOVER,
			               "handed over to the next natterd");
		else
			nt_conn_finish(c, NT_FINISH_SHUTDOWN,
			               "server shutting down");
}

static void worker_stop(struct nt_worker *w)
{
	worker_lsn_drop(w);
	w->stopping = true;
	for (struct nt_conn *c = w->conns; c; c = c->next)
		nt_conn_close(c, "server stopped");
}

/*
 * A reloaded configuration: every connection re-resolves its listener
 * while the old configuration is still alive, then it is let go.
 */
static void worker_reconfigure(struct nt_worker *w, struct nt_msg *m)
{
	struct nt_config *old = w->cfg;

	w->cfg = m->u.config.cfg;
	for (size_t i = 0; i < NT_SERVICES; i++) {
		const struct nt_service_def *sv = nt_service_get(i);
		if (sv->worker_reconfigure && w->svc_state[i])
			sv->worker_reconfigure(w, w->svc_state[i]);
	}
	for (struct nt_conn *c = w->conns; c; c = c->next)
		if (!nt_conn_closed(c))
			nt_conn_reconfigure(c, old);
	nt_config_unref(old);
	nt_latch_done(m->u.config.latch);
}

static void worker_on_queue(struct nt_watch *wt, uint32_t events)
{
	struct nt_worker *w = nt_container_of(wt, struct nt_worker, queue);
	uint64_t junk;
	ssize_t r = read(wt->fd, &junk, sizeof(junk));

	(void)events;
	(void)r;

	pthread_mutex_lock(&w->lock);
	struct nt_msg *m = w->queue_head;
	w->queue_head = w->queue_tail = NULL;
	pthread_mutex_unlock(&w->lock);

	while (m) {
		struct nt_msg *next = m->next;
		switch (m->type) {
		case NT_MSG_CONN:
			worker_new_conn(w, m);
			break;
		case NT_MSG_DRAIN:
			worker_drain(w);
			break;
		case NT_MSG_HANDOVER:
			worker_handover(w);
			break;
		case NT_MSG_CONFIG:
			worker_reconfigure(w, m);
			break;
		case NT_MSG_LISTEN:
			worker_listen(w, m);
			break;
		case NT_MSG_STOP:
			worker_stop(w);
			break;
		case NT_MSG_CALL:
			m->u.call.fn(w, m->u.call.arg);
			if (m->u.call.release)
				m->u.call.release(m->u.call.arg);
			break;
		}
		free(m);
		m = next;
	}
}

static void worker_turn(struct nt_worker *w, struct epoll_event *ev, int n)
{
	/*
	 * Posts first: a room's line posted before a client connected must not
	 * reach that client because this batch accepted it ahead of the post
	 * (a room is delivered to whoever is in it at delivery).
	 */
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == &w->queue) {
			worker_on_queue(&w->queue, ev[i].events);
			ev[i].data.ptr = NULL;
			break;
		}
	}
	for (int i = 0; i < n; i++) {
		struct nt_watch *wt = ev[i].data.ptr;
		if (wt)
			wt->fn(wt, ev[i].events);
	}
	worker_flush_all(w);
	worker_run_timers(w);
	worker_run_other_timers(w);
	worker_flush_all(w);
	worker_free_closed(w);
	worker_free_unwatched(w);
	/* after the frees: a client gone by now never reaches the store */
	nt_sd_clients_flush(w->now, false);
}

static void *worker_main(void *arg)
{
	struct nt_worker *w = arg;
	struct epoll_event ev[EVENTS_PER_TURN];
	char name[16];

	snprintf(name, sizeof(name), "natterd-w%u", w->id);
	pthread_setname_np(pthread_self(), name);
	w->now = nt_now_ms();
	for (;;) {
		atomic_fetch_add_explicit(&w->heartbeat, 1,
		                          memory_order_relaxed);
		if ((w->draining && !w->conns) || w->stopping)
			break;
		int n =
		    epoll_wait(w->epfd, ev, EVENTS_PER_TURN, worker_timeout(w));
		if (n < 0 && errno != EINTR) {
			nt_log_err("worker %u: epoll_wait", w->id);
			break;
		}
		w->now = nt_now_ms();
		worker_lsn_resume(w);
		worker_turn(w, ev, n < 0 ? 0 : n);
	}
	worker_stop(w);
	worker_free_closed(w);
	atomic_store(&w->done, true);
	return NULL;
}

int nt_worker_start(struct nt_worker *w)
{
	int rc = pthread_create(&w->thread, NULL, worker_main, w);
	if (rc)
		return -rc;
	w->started = true;
	return 0;
}

void nt_worker_join(struct nt_worker *w)
{
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
}

void nt_worker_destroy(struct nt_worker *w)
{
	if (!w)
		return;
	/* messages nobody will handle now: close fds they carry */
	for (struct nt_msg *m = w->queue_head, *next; m; m = next) {
		next = m->next;
		if (m->type == NT_MSG_CONN) {
			close(m->u.conn.fd);
			nt_admit_release(w->admit, &m->u.conn.peer);
			nt_config_unref(m->u.conn.cfg);
			if (m->u.conn.restore) {
				nt_sd_client_release(m->u.conn.restore->store);
				m->u.conn.restore->store = NULL;
			}
			nt_conn_restore_free(m->u.conn.restore);
		} else if (m->type == NT_MSG_CONFIG) {
			nt_config_unref(m->u.config.cfg);
			nt_latch_done(m->u.config.latch);
		} else if (m->type == NT_MSG_LISTEN) {
			for (size_t i = 0; i < m->u.listen.n; i++)
				close(m->u.listen.l[i].watch.fd);
			free(m->u.listen.l);
			nt_config_unref(m->u.listen.cfg);
			nt_latch_done(m->u.listen.latch);
		} else if (m->type == NT_MSG_CALL && m->u.call.release) {
			m->u.call.release(m->u.call.arg);
		}
		free(m);
	}
	w->queue_head = w->queue_tail = NULL;
	if (w->epfd >= 0)
		worker_lsn_drop(w);
	/* their owners hear of it through their cleanup hooks */
	while (w->watches)
		nt_worker_unwatch(w->watches);
	worker_free_unwatched(w);
	while (w->timers)
		nt_worker_timer_cancel(w, w->timers);
	for (size_t i = 0; i < NT_SERVICES; i++) {
		const struct nt_service_def *sv = nt_service_get(i);
		if (sv->worker_free && w->svc_state[i])
			sv->worker_free(w->svc_state[i]);
		w->svc_state[i] = NULL;
	}
	for (uint32_t i = 0; i < w->pool_len; i++)
		nt_buf_unref(w->pool[i]);
	free(w->pool);
	nt_outq_pool_free(&w->rings);
	nt_heap_destroy(&w->deadlines);
	if (w->queue.fd >= 0)
		close(w->queue.fd);
	if (w->epfd >= 0)
		close(w->epfd);
	pthread_mutex_destroy(&w->lock);
	nt_config_unref(w->cfg);
	w->cfg = NULL;
	w->pool = NULL;
	w->queue.fd = w->epfd = -1;
}
