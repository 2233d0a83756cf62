/*
 * The chat service. Bytes go through the telnet filter and line framing,
 * each line is cleaned, parsed and acted on. A line for a room is
 * formatted once into a shared buffer: this worker queues it to its own
 * members and posts one reference to each other worker with members there,
 * so a sender's lines reach everyone in the order sent.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "hub.h"
#include "log.h"
#include "telnet.h"
#include "text.h"
#include "worker.h"

#define READ_CHUNK       4096
#define WHO_MAX          100 /* nicks listed by /who */
#define ROOMS_MAX        100 /* rooms listed by /rooms */
#define PING_TOKEN_MAX   64
#define QUIT_MESSAGE_MAX 160

/*
 * What a room hears: the longest lines the service sends for one input
 * line. The config sizes limits.max_output by NT_TEXT_SAY_MAX(), which
 * counts on exactly this much around the nick and the text, CRLF included.
 */
#define SAY_FMT "<%s> %.*s"
#define ME_FMT  "* %s %.*s"
_Static_assert(sizeof(SAY_FMT) - sizeof("%s%.*s") + 2 == NT_TEXT_SAY_EXTRA &&
                   sizeof(ME_FMT) - sizeof("%s%.*s") + 2 == NT_TEXT_SAY_EXTRA,
               "NT_TEXT_SAY_EXTRA does not match the room line formats");

/*
 * The greeting, sent as one buffer: its cost against max_output is its
 * bytes, which the config bounds with NT_TEXT_GREETING_MAX() from the
 * fixed bytes of these formats (the count is at most 10 digits and
 * "users"). The notice of a new MOTD is shorter, so it fits too.
 */
#define WELCOME_FMT "*** Welcome to natter, %s!\r\n"
/* for programs: "limits:", then KEY=VALUE words, unknown keys ignored
 * (natter-protocol(7)); the count is at most 10 digits */
#define LIMITS_FMT "*** limits: max_line=%u\r\n"
#define HINT_FMT                                                               \
	"*** your nick is %s (change it with /nick NAME; /help lists the "     \
	"commands)\r\n"
#define HERE_FMT       "*** you are now in #%s (%u %s)\r\n"
#define NEW_MOTD_LINE  "*** the message of the day is now:\r\n"
#define FIXED(fmt, cs) (sizeof(fmt) - sizeof(cs)) /* cs: its conversions */
_Static_assert(FIXED(WELCOME_FMT, "%s") + FIXED(LIMITS_FMT, "%u") + 10 +
                       FIXED(HINT_FMT, "%s") + FIXED(HERE_FMT, "%s%u%s") + 10 +
                       sizeof("users") - 1 ==
                   NT_TEXT_GREETING_EXTRA,
               "NT_TEXT_GREETING_EXTRA does not match the greeting formats");
_Static_assert(sizeof(NEW_MOTD_LINE) - 1 <= NT_TEXT_GREETING_EXTRA,
               "the new MOTD notice is longer than the greeting");

struct local_room;

struct chat_session {
	struct nt_conn *c;
	struct nt_hub_entry ent;
	struct nt_telnet tn;
	struct nt_line line;
	uint8_t *linebuf;    /* max_line bytes while a line is partial */
	struct nt_buf *pend; /* decoded input held back by flood control */
	uint32_t pend_off;
	uint64_t tokens; /* flood bucket, in thousandths of a line */
	uint64_t tokens_at;
	bool entered; /* registered in the hub (until the quit) */
	bool gone;    /* the quit has been announced */
	struct local_room *room;
	struct chat_session *room_prev, *room_next;
};

/* this worker's members of one room */
struct local_room {
	struct nt_map_node node;
	char name[NT_ROOM_MAX + 1];
	struct chat_session *head;
};

struct nt_chat_worker {
	struct chat_session **slot; /* session table for targeted delivery */
	uint32_t n_slots;
	uint32_t free_slot; /* first possibly free slot */
	struct nt_map rooms;
	uint8_t *clean; /* scratch for cleaned text: 3 * max_line */
	size_t clean_cap;
	bool *workers; /* scratch: which workers have members in a room */
};

/* ---- the command parser (pure) ---- */

static const struct {
	const char *name;
	enum nt_chat_cmd cmd;
	const char *usage;
} commands[] = {
    {"nick", NT_CHAT_NICK, "/nick NAME"},
    {"join", NT_CHAT_JOIN, "/join ROOM"},
    {"part", NT_CHAT_PART, "/part"},
    {"rooms", NT_CHAT_ROOMS, "/rooms"},
    {"who", NT_CHAT_WHO, "/who [ROOM]"},
    {"msg", NT_CHAT_MSG, "/msg NICK TEXT"},
    {"me", NT_CHAT_ME, "/me TEXT"},
    {"ping", NT_CHAT_PING, "/ping [TOKEN]"},
    {"help", NT_CHAT_HELP, "/help"},
    {"quit", NT_CHAT_QUIT, "/quit [MESSAGE]"},
};

static size_t skip_spaces(const char *s, size_t i, size_t len)
{
	while (i < len && s[i] == ' ')
		i++;
	return i;
}

static size_t word_end(const char *s, size_t i, size_t len)
{
	while (i < len && s[i] != ' ')
		i++;
	return i;
}

void nt_chat_parse(const char *line, size_t len, struct nt_chat_line *out)
{
	memset(out, 0, sizeof(*out));
	out->cmd = NT_CHAT_SAY;
	out->text = line;
	out->text_len = len;
	if (len == 0 || line[0] != '/')
		return;
	if (len >= 2 && line[1] == '/') {
		out->text = line + 1; /* "//text" says "/text" */
		out->text_len = len - 1;
		return;
	}
	size_t e = word_end(line, 1, len);
	out->name = line + 1;
	out->name_len = e - 1;
	out->cmd = NT_CHAT_UNKNOWN;
	for (size_t i = 0; i < NT_ARRAY_SIZE(commands); i++)
		if (strlen(commands[i].name) == out->name_len &&
		    !strncasecmp(commands[i].name, out->name, out->name_len))
			out->cmd = commands[i].cmd;
	size_t t = skip_spaces(line, e, len);
	out->text = line + t;
	out->text_len = len - t;
	size_t ae = word_end(line, t, len);
	out->arg = line + t;
	out->arg_len = ae - t;
	size_t r = skip_spaces(line, ae, len);
	out->rest = line + r;
	out->rest_len = len - r;
}

const char *nt_chat_usage(enum nt_chat_cmd cmd)
{
	for (size_t i = 0; i < NT_ARRAY_SIZE(commands); i++)
		if (commands[i].cmd == cmd)
			return commands[i].usage;
	return NULL;
}

/* ---- per-worker state ---- */

/* the registry every worker shares, and this worker's chat state */
static inline struct nt_hub *chat_hub(const struct nt_worker *w)
{
	return w->svc_shared[NT_SERVICE_CHAT];
}

static inline struct nt_chat_worker *chat_state(const struct nt_worker *w)
{
	return w->svc_state[NT_SERVICE_CHAT];
}

static void chat_worker_free(void *state);

static struct nt_chat_worker *chat_worker(struct nt_worker *w)
{
	if (chat_state(w))
		return chat_state(w);
	struct nt_chat_worker *cw = calloc(1, sizeof(*cw));
	if (!cw)
		return NULL;
	nt_map_init(&cw->rooms);
	cw->clean_cap = NT_TEXT_CLEAN_MAX((size_t)w->cfg->chat.max_line);
	cw->clean = malloc(cw->clean_cap);
	cw->workers = calloc(NT_MAX(w->n_peers, 1), sizeof(bool));
	if (!cw->clean || !cw->workers) {
		chat_worker_free(cw);
		return NULL;
	}
	w->svc_state[NT_SERVICE_CHAT] = cw;
	return cw;
}

/* the worker moved to a new configuration: resize what depends on it */
static void chat_worker_reconfigure(struct nt_worker *w, void *state)
{
	struct nt_chat_worker *cw = state;
	size_t cap = NT_TEXT_CLEAN_MAX((size_t)w->cfg->chat.max_line);

	/* only ever grows: a session keeps its old max_line until its
	 * current line is done */
	if (!cw || cap <= cw->clean_cap)
		return;
	uint8_t *p = realloc(cw->clean, cap);
	if (!p) {
		nt_log_warnx("worker %u: out of memory: longer chat lines are "
		             "cut until the next restart",
		             w->id);
		return;
	}
	cw->clean = p;
	cw->clean_cap = cap;
}

static void chat_worker_free(void *state)
{
	struct nt_chat_worker *cw = state;

	if (!cw)
		return;
	free(cw->slot);
	free(cw->clean);
	free(cw->workers);
	nt_map_free(&cw->rooms);
	free(cw);
}

static int slot_take(struct nt_chat_worker *cw, struct chat_session *s)
{
	uint32_t i = cw->free_slot;

	while (i < cw->n_slots && cw->slot[i])
		i++;
	if (i == cw->n_slots) {
		uint32_t n = cw->n_slots ? cw->n_slots * 2 : 64;
		void *p = realloc(cw->slot, n * sizeof(*cw->slot));
		if (!p)
			return -ENOMEM;
		cw->slot = p;
		memset(cw->slot + cw->n_slots, 0,
		       (n - cw->n_slots) * sizeof(*cw->slot));
		cw->n_slots = n;
	}
	cw->slot[i] = s;
	cw->free_slot = i + 1;
	s->ent.slot = i;
	return 0;
}

static void slot_give(struct nt_chat_worker *cw, struct chat_session *s)
{
	cw->slot[s->ent.slot] = NULL;
	if (s->ent.slot < cw->free_slot)
		cw->free_slot = s->ent.slot;
}

static struct local_room *lroom_get(struct nt_chat_worker *cw, const char *name)
{
	struct nt_map_node *n = nt_map_get(&cw->rooms, name);
	return n ? nt_container_of(n, struct local_room, node) : NULL;
}

static int lroom_add(struct nt_chat_worker *cw, struct chat_session *s,
                     const char *name)
{
	struct local_room *r = lroom_get(cw, name);

	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return -ENOMEM;
		snprintf(r->name, sizeof(r->name), "%s", name);
		if (nt_map_put(&cw->rooms, &r->node, r->name) < 0) {
			free(r);
			return -ENOMEM;
		}
	}
	s->room = r;
	s->room_prev = NULL;
	s->room_next = r->head;
	if (r->head)
		r->head->room_prev = s;
	r->head = s;
	return 0;
}

static void lroom_remove(struct nt_chat_worker *cw, struct chat_session *s)
{
	struct local_room *r = s->room;

	if (!r)
		return;
	if (s->room_prev)
		s->room_prev->room_next = s->room_next;
	else
		r->head = s->room_next;
	if (s->room_next)
		s->room_next->room_prev = s->room_prev;
	s->room = NULL;
	s->room_prev = s->room_next = NULL;
	if (!r->head) {
		nt_map_del(&cw->rooms, &r->node);
		free(r);
	}
}

/* ---- output ---- */

/* an entry about s, with its fields for the journal */
#define chat_log(s, level, id, ...)                                            \
	do {                                                                   \
		if (nt_log_enabled(level)) {                                   \
			char who_[NT_ADDRSTR_MAX];                             \
			nt_conn_client((s)->c, who_, sizeof(who_));            \
			struct nt_log_ctx ctx_ = {.msgid = (id),               \
			                          .client = who_,              \
			                          .nick = (s)->ent.nick,       \
			                          .room = (s)->ent.room,       \
			                          .listener =                  \
			                              (s)->c->lc->name};       \
			nt_logc((level), &ctx_, __VA_ARGS__);                  \
		}                                                              \
	} while (0)

static const char overflow_notice[] = "*** disconnected: output overflow\r\n";

/*
 * Something queued to c would have passed max_output (a room's line, a
 * reply, a telnet answer: the queue counts them all): c is a slow consumer
 * and is disconnected rather than slowing anyone else or holding memory.
 */
static void chat_overflow(struct nt_conn *c)
{
	struct chat_session *s = c->svc;
	char who[NT_ADDRSTR_MAX];

	nt_peer_format(&c->peer, who, sizeof(who));
	if (s)
		chat_log(s, NT_LOG_NOTICE, NT_MSGID_CHAT_OVERFLOW,
		         "%s (%s): disconnected: output overflow", who,
		         s->ent.nick);
	nt_conn_close_with(c, "output overflow", overflow_notice,
	                   sizeof(overflow_notice) - 1);
}

static void deliver_one(struct chat_session *s, struct nt_buf *b)
{
	struct nt_conn *c = s->c;

	/* after its goodbye, a session hears nothing more */
	if (nt_conn_closed(c) || s->gone)
		return;
	/* -ENOBUFS: chat_overflow() has dealt with it; -EPIPE: its
	 * connection is ending anyway */
	if (nt_conn_send(c, b, 0, b->len) == -ENOMEM)
		nt_conn_close(c, "out of memory");
}

static void deliver_local_room(struct local_room *r, struct nt_buf *b,
                               const struct chat_session *except)
{
	struct chat_session *s, *next;

	for (s = r ? r->head : NULL; s; s = next) {
		next = s->room_next; /* an overflow close keeps s linked */
		if (s != except)
			deliver_one(s, b);
	}
}

/* a chat line for another worker's sessions, carried in the call */
struct chat_post {
	struct nt_buf *buf; /* a reference, formatted once */
	uint64_t id;        /* to this session, if room is "" */
	uint32_t slot;
	char room[NT_ROOM_MAX + 1]; /* or to this room */
};

static void chat_deliver(struct nt_worker *w, void *arg);

static void chat_post_release(void *arg)
{
	struct chat_post *p = arg;

	nt_buf_unref(p->buf);
}

/* one message per worker, the line referenced, not copied; the queue
 * keeps a sender's lines in order */
static void post_chat(struct nt_worker *to, struct nt_buf *b, const char *room,
                      uint64_t id, uint32_t slot)
{
	struct nt_msg *m = nt_worker_call_new(chat_deliver, chat_post_release,
	                                      sizeof(struct chat_post));
	if (!m) {
		nt_log_warnx("out of memory: a chat line was not delivered");
		return;
	}
	struct chat_post *p = m->u.call.arg;
	p->buf = nt_buf_ref(b);
	p->id = id;
	p->slot = slot;
	snprintf(p->room, sizeof(p->room), "%s", room ? room : "");
	nt_worker_post(to, m);
}

static void fan_out(struct chat_session *from, const char *room,
                    struct nt_buf *b)
{
	struct nt_worker *w = from->c->w;
	struct nt_chat_worker *cw = chat_state(w);

	deliver_local_room(lroom_get(cw, room), b, from);
	nt_hub_room_workers(chat_hub(w), room, cw->workers);
	for (size_t i = 0; i < w->n_peers; i++)
		if (cw->workers[i] && w->peers[i] != w)
			post_chat(w->peers[i], b, room, 0, 0);
}

static struct nt_buf *fmt_line(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* A CRLF-terminated line in a fresh buffer; the text was cleaned before. */
static struct nt_buf *fmt_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	struct nt_buf *b = nt_buf_new((size_t)n + 3);
	if (!b)
		return NULL;
	va_start(ap, fmt);
	vsnprintf((char *)b->data, (size_t)n + 1, fmt, ap);
	va_end(ap);
	memcpy(b->data + n, "\r\n", 2);
	b->len = (uint32_t)n + 2;
	return b;
}

static void announce(struct chat_session *from, const char *room,
                     struct nt_buf *b)
{
	if (!b)
		return;
	fan_out(from, room, b);
	nt_buf_unref(b);
}

static void reply(struct chat_session *s, struct nt_buf *b)
{
	if (!b)
		return;
	deliver_one(s, b);
	nt_buf_unref(b);
}

#define chat_notice(s, ...) reply((s), fmt_line("*** " __VA_ARGS__))
#define chat_error(s, ...)  reply((s), fmt_line("!!! " __VA_ARGS__))

static void error_usage(struct chat_session *s, enum nt_chat_cmd cmd,
                        const char *problem)
{
	chat_error(s, "%s; usage: %s", problem, nt_chat_usage(cmd));
}

/* ---- session life ---- */

static const struct nt_chat_conf *chat_conf(const struct chat_session *s)
{
	return &s->c->w->cfg->chat;
}

/*
 * Append to b what fmt makes, if b->len would then be at most lim (and
 * within b->cap with a byte for vsnprintf's NUL); false, with b->len
 * unchanged, if not.
 */
static bool buf_add(struct nt_buf *b, size_t lim, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool buf_add(struct nt_buf *b, size_t lim, const char *fmt, ...)
{
	size_t left = b->cap - b->len;
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf((char *)b->data + b->len, left, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= left || b->len + (size_t)n > lim)
		return false;
	b->len += (uint32_t)n;
	return true;
}

/* budget less what must still follow, never below 0 */
static size_t budget_less(size_t budget, size_t reserve)
{
	return budget > reserve ? budget - reserve : 0;
}

/*
 * first (a line, with its CRLF) and the MOTD in one buffer with room for
 * NT_TEXT_GREETING_MAX() bytes, so that whatever follows it in the
 * greeting fits too
 */
static struct nt_buf *motd_reply(struct chat_session *s, const char *first)
{
	const char *motd = chat_conf(s)->motd;
	size_t motd_size = nt_text_motd_lines(motd, NULL);
	struct nt_buf *b =
	    nt_buf_new(NT_TEXT_GREETING_MAX(motd_size, NT_NICK_LIMIT) + 1);

	if (!b)
		return NULL;
	size_t n = strlen(first);
	memcpy(b->data, first, n);
	b->len = (uint32_t)(n + nt_text_motd_lines(motd, (char *)b->data + n));
	return b;
}

/*
 * A session that lived in an earlier natterd: back under its nick (unless
 * someone took it meanwhile) in its room, without a greeting or a join
 * announcement, since nobody saw it leave.
 */
static int chat_enter_restored(struct chat_session *s,
                               const struct nt_chat_saved *rs,
                               unsigned *members)
{
	const char *room = rs->room[0] ? rs->room : chat_conf(s)->default_room;
	int rc = nt_hub_enter_as(chat_hub(s->c->w), &s->ent, rs->nick, room,
	                         members);

	if (rc == -ENOSPC && strcmp(room, chat_conf(s)->default_room))
		rc = nt_hub_enter_as(chat_hub(s->c->w), &s->ent, rs->nick,
		                     chat_conf(s)->default_room, members);
	return rc;
}

static void chat_restored(struct chat_session *s,
                          const struct nt_chat_saved *rs)
{
	if (rs->nick[0] && strcmp(rs->nick, s->ent.nick))
		chat_notice(s,
		            "natterd was restarted; %s was taken meanwhile, so "
		            "you are now %s, in #%s",
		            rs->nick, s->ent.nick, s->ent.room);
	else
		chat_notice(s,
		            "natterd was restarted; you are still %s, in #%s",
		            s->ent.nick, s->ent.room);
	/* the new natterd's config may differ from the one the client
	 * was greeted under */
	chat_notice(s, "limits: max_line=%u", chat_conf(s)->max_line);
	chat_log(s, NT_LOG_INFO, NT_MSGID_RESTORED,
	         "%s is back in #%s after the restart", s->ent.nick,
	         s->ent.room);
}

/*
 * One buffer, so one send: a fresh queue takes it whole whenever the
 * config passed (max_output at least NT_TEXT_GREETING_MAX()), where a send
 * per line would also be charged a segment per line.
 */
static void chat_greet(struct chat_session *s, const char *room,
                       unsigned members)
{
	char welcome[sizeof(WELCOME_FMT) + NT_NICK_LIMIT];

	snprintf(welcome, sizeof(welcome), WELCOME_FMT, s->ent.nick);
	struct nt_buf *b = motd_reply(s, welcome);
	if (!b) {
		nt_conn_close(s->c, "out of memory");
		return;
	}
	if (!buf_add(b, b->cap, LIMITS_FMT, chat_conf(s)->max_line) ||
	    !buf_add(b, b->cap, HINT_FMT, s->ent.nick) ||
	    !buf_add(b, b->cap, HERE_FMT, room, members,
	             members == 1 ? "user" : "users"))
		nt_log_warnx("chat: a greeting was cut short");
	reply(s, b);
}

static int chat_open(struct nt_conn *c, const struct nt_sd_session *restored)
{
	struct nt_chat_saved saved, *rs = NULL;
	unsigned members = 0;
	int rc;

	/* checked when it was adopted: this cannot fail, but is no reason
	 * to trust it */
	if (restored) {
		if (nt_chat_session_decode(restored->blob, restored->blob_len,
		                           &saved) < 0)
			return -EINVAL;
		rs = &saved;
	}
	struct nt_chat_worker *cw = chat_worker(c->w);
	struct chat_session *s = cw ? calloc(1, sizeof(*s)) : NULL;
	if (!s)
		return -ENOMEM;
	c->svc = s;
	s->c = c;
	nt_telnet_init(&s->tn);
	nt_line_init(&s->line, NULL, chat_conf(s)->max_line);
	s->tokens = (uint64_t)chat_conf(s)->flood_burst * 1000;
	s->tokens_at = nt_conn_now(c);
	s->ent.id = nt_hub_next_id(chat_hub(c->w));
	s->ent.worker = c->w->id;
	if (slot_take(cw, s) < 0)
		return -ENOMEM;
	const char *room = chat_conf(s)->default_room;
	if (rs)
		rc = chat_enter_restored(s, rs, &members);
	else
		rc = nt_hub_enter(chat_hub(c->w), &s->ent, room, &members);
	if (rc == -ENOSPC) {
		chat_error(s, "the server has too many rooms; try again later");
		nt_conn_finish(c, NT_FINISH_OUTPUT,
		               "no room for the default room");
		return 0;
	}
	if (rc < 0)
		return rc;
	s->entered = true;
	room = s->ent.room;
	if (lroom_add(cw, s, room) < 0)
		return -ENOMEM;
	nt_conn_store_session(c);
	if (rs) {
		chat_restored(s, rs);
		return 0;
	}
	chat_greet(s, room, members);
	announce(s, room, fmt_line("*** %s has joined #%s", s->ent.nick, room));
	return 0;
}

static void chat_leave(struct chat_session *s, const char *why)
{
	if (!s->entered || s->gone)
		return;
	s->gone = true;
	announce(s, s->ent.room,
	         why && *why
	             ? fmt_line("*** %s has quit (%s)", s->ent.nick, why)
	             : fmt_line("*** %s has quit", s->ent.nick));
	/* whoever has seen the quit must not find us in /who or /rooms any
	 * more, nor find the nick taken: leave the registry now, not when
	 * the connection is finally freed */
	nt_hub_leave(chat_hub(s->c->w), &s->ent);
	s->entered = false;
	if (chat_state(s->c->w))
		lroom_remove(chat_state(s->c->w), s);
}

static void chat_close(struct nt_conn *c)
{
	struct chat_session *s = c->svc;

	if (!s)
		return;
	/* handed over: the next natterd carries on, nobody has quit */
	if (!nt_conn_handed_over(c))
		chat_leave(s, c->close_reason);
	if (s->entered)
		nt_hub_leave(chat_hub(c->w), &s->ent);
	if (chat_state(c->w)) {
		lroom_remove(chat_state(c->w), s);
		if (chat_state(c->w)->slot &&
		    chat_state(c->w)->slot[s->ent.slot] == s)
			slot_give(chat_state(c->w), s);
	}
	free(s->linebuf);
	nt_buf_unref(s->pend);
	free(s);
	c->svc = NULL;
}

static void chat_quit(struct chat_session *s, const char *msg, size_t len)
{
	char why[QUIT_MESSAGE_MAX + 1];

	snprintf(why, sizeof(why), "%.*s",
	         (int)nt_text_prefix(msg, len, QUIT_MESSAGE_MAX), msg);
	chat_notice(s, "bye"); /* before leaving: nothing reaches it after */
	chat_leave(s, why);
	nt_conn_finish(s->c, NT_FINISH_OUTPUT, "quit");
}

/* ---- commands ---- */

static void cmd_nick(struct chat_session *s, const struct nt_chat_line *l)
{
	char nick[NT_NICK_LIMIT + 1], old[NT_NICK_LIMIT + 1];
	unsigned max = chat_conf(s)->max_nick;

	if (!l->arg_len || l->rest_len) {
		error_usage(s, l->cmd, "give exactly one name");
		return;
	}
	if (!nt_text_nick_valid(l->arg, l->arg_len, max)) {
		chat_error(
		    s,
		    "invalid nick \"%.*s\": 1 to %u letters, digits, '_' or "
		    "'-', starting with a letter",
		    (int)nt_text_prefix(l->arg, l->arg_len, 64), l->arg, max);
		return;
	}
	if (l->arg_len >= 5 && !strncasecmp(l->arg, "guest", 5)) {
		chat_error(s, "nicks starting with \"guest\" are reserved for "
		              "guests");
		return;
	}
	snprintf(nick, sizeof(nick), "%.*s", (int)l->arg_len, l->arg);
	if (!strcmp(nick, s->ent.nick)) {
		chat_error(s, "you are already %s", nick);
		return;
	}
	memcpy(old, s->ent.nick, sizeof(old));
	if (nt_hub_rename(chat_hub(s->c->w), &s->ent, nick) < 0) {
		chat_error(s, "nick %s is taken", nick);
		return;
	}
	chat_notice(s, "you are now known as %s", nick);
	nt_conn_store_session(s->c);
	chat_log(s, NT_LOG_DEBUG, NT_MSGID_CHAT_NICK, "%s is now known as %s",
	         old, nick);
	announce(s, s->ent.room,
	         fmt_line("*** %s is now known as %s", old, nick));
}

static void cmd_join_room(struct chat_session *s, const char *room)
{
	struct nt_chat_worker *cw = chat_state(s->c->w);
	char old[NT_ROOM_MAX + 1];
	unsigned members = 0;

	memcpy(old, s->ent.room, sizeof(old));
	int rc = nt_hub_move(chat_hub(s->c->w), &s->ent, room, &members);
	if (rc == -EALREADY) {
		chat_error(s, "you are already in #%s", room);
		return;
	}
	if (rc == -ENOSPC) {
		chat_error(
		    s,
		    "cannot create #%s: the server has its maximum of %u "
		    "rooms",
		    room, chat_conf(s)->max_rooms);
		return;
	}
	if (rc < 0) {
		chat_error(s, "cannot join #%s: out of memory", room);
		return;
	}
	lroom_remove(cw, s);
	announce(s, old, fmt_line("*** %s has left #%s", s->ent.nick, old));
	if (lroom_add(cw, s, room) < 0) {
		nt_conn_close(s->c, "out of memory");
		return;
	}
	nt_conn_store_session(s->c);
	chat_log(s, NT_LOG_DEBUG, NT_MSGID_CHAT_JOIN, "%s went from #%s to #%s",
	         s->ent.nick, old, room);
	chat_notice(s, "you are now in #%s (%u %s)", room, members,
	            members == 1 ? "user" : "users");
	announce(s, room, fmt_line("*** %s has joined #%s", s->ent.nick, room));
}

static void cmd_join(struct chat_session *s, const struct nt_chat_line *l)
{
	char room[NT_ROOM_MAX + 1];

	if (!l->arg_len || l->rest_len) {
		error_usage(s, l->cmd, "give exactly one room");
		return;
	}
	if (nt_text_room_normalize(l->arg, l->arg_len, room) < 0) {
		chat_error(
		    s,
		    "invalid room \"%.*s\": 1 to %d of a-z, 0-9, '_' or '-' "
		    "(a leading '#' is fine)",
		    (int)nt_text_prefix(l->arg, l->arg_len, 64), l->arg,
		    NT_ROOM_MAX);
		return;
	}
	cmd_join_room(s, room);
}

/* stable output for people and programs: sorted, not in hash order */
static int cmp_nick(const void *a, const void *b)
{
	return nt_text_nick_cmp(a, b);
}

static int cmp_room(const void *a, const void *b)
{
	const struct nt_hub_room_info *x = a, *y = b;
	return strcmp(x->name, y->name);
}

/*
 * The list replies (/who, /rooms) grow with what other users do, so each
 * lists only what fits the room left in the asker's queue (and the reply
 * is one send: its bytes are its cost), then says how much it left out:
 * asking never overflows a queue that had room for the shortest answer.
 */
#define WHO_FMT  "*** #%s has %u %s:"
#define WHO_MORE " ..."
#define WHO_REPLY_MAX                                                          \
	(sizeof(WHO_FMT) + NT_ROOM_MAX + 10 + sizeof("users") +                \
	 WHO_MAX * (NT_NICK_LIMIT + 1) + sizeof(WHO_MORE) + 2)

static void who_reply(struct chat_session *s, const char *room, unsigned n,
                      char (*names)[NT_NICK_LIMIT + 1])
{
	struct nt_buf *b = nt_buf_new(WHO_REPLY_MAX);
	size_t room_left = nt_conn_room(s->c);
	unsigned i;

	if (!b)
		return;
	buf_add(b, b->cap, WHO_FMT, room, n, n == 1 ? "user" : "users");
	for (i = 0; i < n && i < WHO_MAX; i++) {
		size_t after = (i + 1 < n ? sizeof(WHO_MORE) - 1 : 0) + 2;
		if (!buf_add(b, budget_less(room_left, after), " %s", names[i]))
			break;
	}
	buf_add(b, b->cap, "%s\r\n", i < n ? WHO_MORE : "");
	reply(s, b);
}

static void cmd_who(struct chat_session *s, const struct nt_chat_line *l)
{
	char room[NT_ROOM_MAX + 1];
	char names[WHO_MAX][NT_NICK_LIMIT + 1];

	if (l->rest_len) {
		error_usage(s, l->cmd, "give at most one room");
		return;
	}
	if (!l->arg_len)
		memcpy(room, s->ent.room, sizeof(room));
	else if (nt_text_room_normalize(l->arg, l->arg_len, room) < 0) {
		chat_error(s, "invalid room \"%.*s\"",
		           (int)nt_text_prefix(l->arg, l->arg_len, 64), l->arg);
		return;
	}
	unsigned n = nt_hub_who(chat_hub(s->c->w), room, names, WHO_MAX);
	qsort(names, NT_MIN(n, WHO_MAX), sizeof(names[0]), cmp_nick);
	if (!n) {
		chat_error(s, "no such room: #%s", room);
		return;
	}
	who_reply(s, room, n, names);
}

#define ROOMS_FMT      "*** %u %s:\r\n"
#define ROOM_LINE_FMT  "*** #%s (%u %s)\r\n"
#define ROOMS_MORE_FMT "*** ... and %u more\r\n"
#define ROOMS_MORE_MAX (sizeof(ROOMS_MORE_FMT) + 10)
#define ROOMS_REPLY_MAX                                                        \
	(sizeof(ROOMS_FMT) + 10 + sizeof("rooms") +                            \
	 ROOMS_MAX *                                                           \
	     (sizeof(ROOM_LINE_FMT) + NT_ROOM_MAX + 10 + sizeof("users")) +    \
	 ROOMS_MORE_MAX)

static void cmd_rooms(struct chat_session *s, const struct nt_chat_line *l)
{
	struct nt_hub_room_info info[ROOMS_MAX];

	if (l->text_len) {
		error_usage(s, l->cmd, "no arguments");
		return;
	}
	unsigned n = nt_hub_rooms(chat_hub(s->c->w), info, ROOMS_MAX), i;
	qsort(info, NT_MIN(n, ROOMS_MAX), sizeof(info[0]), cmp_room);
	struct nt_buf *b = nt_buf_new(ROOMS_REPLY_MAX);
	size_t room_left = nt_conn_room(s->c);
	if (!b)
		return;
	buf_add(b, b->cap, ROOMS_FMT, n, n == 1 ? "room" : "rooms");
	for (i = 0; i < n && i < ROOMS_MAX; i++) {
		size_t after = i + 1 < n ? ROOMS_MORE_MAX : 0;
		if (!buf_add(b, budget_less(room_left, after), ROOM_LINE_FMT,
		             info[i].name, info[i].members,
		             info[i].members == 1 ? "user" : "users"))
			break;
	}
	if (i < n)
		buf_add(b, b->cap, ROOMS_MORE_FMT, n - i);
	reply(s, b);
}

static void cmd_msg(struct chat_session *s, const struct nt_chat_line *l)
{
	struct nt_hub_target t;
	char nick[NT_NICK_LIMIT + 1];

	if (!l->arg_len || !l->rest_len) {
		error_usage(s, l->cmd, "give a nick and a message");
		return;
	}
	if (l->arg_len > NT_NICK_LIMIT ||
	    (snprintf(nick, sizeof(nick), "%.*s", (int)l->arg_len, l->arg),
	     nt_hub_find(chat_hub(s->c->w), nick, &t) < 0)) {
		chat_error(s, "no such nick: %.*s",
		           (int)nt_text_prefix(l->arg, l->arg_len, 64), l->arg);
		return;
	}
	struct nt_buf *b =
	    fmt_line("*%s* %.*s", s->ent.nick, (int)l->rest_len, l->rest);
	if (!b)
		return;
	struct nt_worker *w = s->c->w;
	if (t.worker == w->id) {
		struct chat_session *to = t.slot < chat_state(w)->n_slots
		                              ? chat_state(w)->slot[t.slot]
		                              : NULL;
		if (to && to->ent.id == t.id)
			deliver_one(to, b);
	} else {
		post_chat(w->peers[t.worker], b, NULL, t.id, t.slot);
	}
	nt_buf_unref(b);
	reply(s, fmt_line("-> *%s* %.*s", t.nick, (int)l->rest_len, l->rest));
}

/* one send, far below the least max_output */
#define HELP_FMT                                                               \
	"*** commands (text without a command goes to your room):\r\n"         \
	"*** /nick NAME        change your nickname\r\n"                       \
	"*** /join ROOM        go to another room (made if new)\r\n"           \
	"*** /part             go back to #%s\r\n"                             \
	"*** /rooms            list the rooms\r\n"                             \
	"*** /who [ROOM]       who is in a room\r\n"                           \
	"*** /msg NICK TEXT    a private message\r\n"                          \
	"*** /me TEXT          an action\r\n"                                  \
	"*** /ping [TOKEN]     the server answers *** pong TOKEN\r\n"          \
	"*** /quit [MESSAGE]   leave\r\n"                                      \
	"*** //text            says /text"
_Static_assert(sizeof(HELP_FMT) + NT_ROOM_MAX + 2 <= NT_MIN_MAX_OUTPUT,
               "/help does not fit the least max_output");

static void cmd_help(struct chat_session *s)
{
	reply(s, fmt_line(HELP_FMT, chat_conf(s)->default_room));
}

static void chat_command(struct chat_session *s, const struct nt_chat_line *l)
{
	switch (l->cmd) {
	case NT_CHAT_SAY:
		announce(
		    s, s->ent.room,
		    fmt_line(SAY_FMT, s->ent.nick, (int)l->text_len, l->text));
		break;
	case NT_CHAT_ME:
		if (!l->text_len)
			error_usage(s, l->cmd, "say what you do");
		else
			announce(s, s->ent.room,
			         fmt_line(ME_FMT, s->ent.nick, (int)l->text_len,
			                  l->text));
		break;
	case NT_CHAT_NICK:
		cmd_nick(s, l);
		break;
	case NT_CHAT_JOIN:
		cmd_join(s, l);
		break;
	case NT_CHAT_PART:
		if (l->text_len)
			error_usage(s, l->cmd, "no arguments");
		else
			cmd_join_room(s, chat_conf(s)->default_room);
		break;
	case NT_CHAT_ROOMS:
		cmd_rooms(s, l);
		break;
	case NT_CHAT_WHO:
		cmd_who(s, l);
		break;
	case NT_CHAT_MSG:
		cmd_msg(s, l);
		break;
	case NT_CHAT_PING:
		chat_notice(
		    s, "pong%s%.*s", l->text_len ? " " : "",
		    (int)nt_text_prefix(l->text, l->text_len, PING_TOKEN_MAX),
		    l->text);
		break;
	case NT_CHAT_HELP:
		cmd_help(s);
		break;
	case NT_CHAT_QUIT:
		chat_quit(s, l->text, l->text_len);
		break;
	case NT_CHAT_UNKNOWN:
		chat_error(s, "unknown command /%.*s; /help lists the commands",
		           (int)nt_text_prefix(l->name, l->name_len, 32),
		           l->name);
		break;
	}
}

static void chat_line(struct chat_session *s, const uint8_t *line, size_t len)
{
	struct nt_chat_worker *cw = chat_state(s->c->w);
	struct nt_chat_line l;

	size_t n = nt_text_clean(line, len, cw->clean, cw->clean_cap);
	if (nt_text_is_blank(cw->clean, n))
		return;
	nt_chat_parse((const char *)cw->clean, n, &l);
	chat_command(s, &l);
}

/* ---- input ---- */

static void flood_refill(struct chat_session *s)
{
	uint64_t now = nt_conn_now(s->c);
	uint64_t cap = (uint64_t)chat_conf(s)->flood_burst * 1000;

	s->tokens += (now - s->tokens_at) * chat_conf(s)->flood_rate;
	if (s->tokens > cap)
		s->tokens = cap;
	s->tokens_at = now;
}

/*
 * Telnet commands the server answers (a refusal, a timing mark, AYT) cost
 * flood tokens too: answering is output, and negotiation alone must not be
 * a way to make the server write without limit. An answer is three bytes
 * (IAC, verb, option), so eight of them cost what one line does, about as
 * much as a short reply. Commands answered with nothing (NOP, a refusal
 * already sent, a timing mark past the cap) cost nothing.
 */
#define TELNET_ANSWERS_PER_LINE 8

/* thousandths of a token, like s->tokens */
static uint64_t telnet_cost(const struct nt_telnet_out *tout)
{
	uint64_t answers =
	    tout->len / 3 + ((tout->events & NT_TELNET_EV_AYT) ? 1 : 0);

	return answers * 1000 / TELNET_ANSWERS_PER_LINE;
}

/* what was answered is paid at once: the bucket runs dry rather than into
 * debt, and an empty bucket holds reading back as a line's cost would */
static void flood_spend(struct chat_session *s, uint64_t cost)
{
	s->tokens = s->tokens > cost ? s->tokens - cost : 0;
}

/* Out of tokens: keep the rest, stop reading, wake when one is back. */
static void flood_hold(struct chat_session *s, const uint8_t *rest, size_t len)
{
	if (len && !s->pend) {
		s->pend = nt_buf_from(rest, len);
		s->pend_off = 0;
		if (!s->pend) {
			nt_conn_close(s->c, "out of memory");
			return;
		}
	}
	uint64_t wait = (1000 - s->tokens + chat_conf(s)->flood_rate - 1) /
	                chat_conf(s)->flood_rate;
	nt_conn_pause(s->c, NT_PAUSE_FLOOD);
	nt_conn_set_timer(s->c, nt_conn_now(s->c) + NT_MAX(wait, 1));
}

static int line_buffer(struct chat_session *s)
{
	if (!s->linebuf) {
		s->linebuf = malloc(NT_MAX(s->line.max, 1));
		if (!s->linebuf)
			return -ENOMEM;
		s->line.buf = s->linebuf;
	}
	return 0;
}

/*
 * Frame and act on decoded input. Returns how many bytes were used; fewer
 * than len means flood control stopped us and the rest must wait.
 */
static size_t chat_consume(struct chat_session *s, const uint8_t *data,
                           size_t len)
{
	size_t pos = 0;

	if (line_buffer(s) < 0) {
		nt_conn_close(s->c, "out of memory");
		return len;
	}
	flood_refill(s);
	while (pos < len && !nt_conn_ended(s->c)) {
		if (s->tokens < 1000)
			break;
		const uint8_t *line;
		size_t used, line_len;
		enum nt_line_result r = nt_line_next(
		    &s->line, data + pos, len - pos, &used, &line, &line_len);
		pos += used;
		if (r == NT_LINE_OK) {
			s->tokens -= 1000;
			chat_line(s, line, line_len);
		} else if (r == NT_LINE_TOO_LONG) {
			s->tokens -= 1000;
			chat_error(s,
			           "line too long (the limit is %u bytes): "
			           "discarded",
			           chat_conf(s)->max_line);
		}
	}
	nt_conn_partial(s->c, nt_line_partial(&s->line));
	/* an idle session keeps no line buffer; between lines is also when
	 * a reloaded max_line takes effect */
	if (!nt_line_partial(&s->line)) {
		free(s->linebuf);
		s->linebuf = NULL;
		s->line.buf = NULL;
		s->line.max = chat_conf(s)->max_line;
	}
	return pos;
}

static void chat_telnet_events(struct chat_session *s,
                               const struct nt_telnet_out *tout)
{
	if (tout->len)
		nt_conn_send_copy(s->c, tout->buf, tout->len);
	if (tout->events & NT_TELNET_EV_AYT)
		chat_notice(s, "yes, natter is here");
	/* subnegotiations cost no memory, but an endless one would dodge
	 * flood control and the line timeout */
	if (tout->events & NT_TELNET_EV_SB_TOO_LONG) {
		chat_error(s, "telnet subnegotiation too long: disconnecting");
		chat_leave(s, "protocol error");
		nt_conn_finish(s->c, NT_FINISH_OUTPUT,
		               "telnet subnegotiation too long");
		return;
	}
	if (tout->events & NT_TELNET_EV_INTERRUPT)
		chat_quit(s, "interrupted", strlen("interrupted"));
}

static void chat_readable(struct nt_conn *c)
{
	struct chat_session *s = c->svc;
	uint8_t buf[READ_CHUNK];
	struct nt_telnet_out tout;

	ssize_t n = nt_conn_read(c, buf, sizeof(buf));
	if (n <= 0)
		return;
	nt_telnet_out_init(&tout);
	size_t len = nt_telnet_feed(&s->tn, buf, (size_t)n, buf, &tout);
	size_t used = chat_consume(s, buf, len);
	flood_spend(s, telnet_cost(&tout));
	if (used < len && !nt_conn_ended(c))
		flood_hold(s, buf + used, len - used);
	else if (s->tokens < 1000 && !nt_conn_closed(c))
		flood_hold(s, NULL, 0); /* nothing left, but wait for a token */
	chat_telnet_events(s, &tout);
}

static void chat_timer(struct nt_conn *c)
{
	struct chat_session *s = c->svc;

	if (s->pend) {
		uint8_t *p = s->pend->data + s->pend_off;
		size_t len = s->pend->len - s->pend_off;
		size_t used = chat_consume(s, p, len);
		s->pend_off += (uint32_t)used;
		if (used < len && !nt_conn_ended(c)) {
			flood_hold(s, NULL, 0);
			return;
		}
		nt_buf_unref(s->pend);
		s->pend = NULL;
	}
	flood_refill(s);
	if (s->tokens >= 1000)
		nt_conn_resume(c, NT_PAUSE_FLOOD);
	else
		flood_hold(s, NULL, 0);
}

static void chat_idle(struct nt_conn *c)
{
	struct chat_session *s = c->svc;

	unsigned n = c->lc->timeouts.idle;
	chat_notice(s, "idle for %u second%s: disconnecting", n,
	            n == 1 ? "" : "s");
	chat_leave(s, "idle timeout");
}

static void chat_line_timeout(struct nt_conn *c)
{
	struct chat_session *s = c->svc;

	unsigned n = c->lc->timeouts.line;
	chat_error(s, "a line must end within %u second%s: disconnecting", n,
	           n == 1 ? "" : "s");
	chat_leave(s, "line timeout");
}

static void chat_shutdown(struct nt_conn *c)
{
	struct chat_session *s = c->svc;

	chat_notice(s, "the server is shutting down; bye");
	chat_leave(s, "server shutting down");
}

static void chat_reconfigure(struct nt_conn *c, const struct nt_config *old)
{
	struct chat_session *s = c->svc;

	if (!s)
		return;
	if (!nt_line_partial(&s->line) && !s->linebuf)
		s->line.max = chat_conf(s)->max_line;
	/* it counts like any output: a fresh queue always holds it (the
	 * config saw to that), and a client already so far behind that it
	 * does not is a slow consumer anyway */
	if (s->entered && !s->gone &&
	    strcmp(old->chat.motd, chat_conf(s)->motd))
		reply(s, motd_reply(s, NEW_MOTD_LINE));
	/* the greeting's limits, again, so that a client refusing long
	 * lines itself goes by the new ones */
	if (s->entered && !s->gone &&
	    old->chat.max_line != chat_conf(s)->max_line)
		chat_notice(s, "limits: max_line=%u", chat_conf(s)->max_line);
}

/* a chat_post from another worker; its release drops the reference */
static void chat_deliver(struct nt_worker *w, void *arg)
{
	struct nt_chat_worker *cw = chat_state(w);
	const struct chat_post *p = arg;

	if (cw && p->room[0]) {
		deliver_local_room(lroom_get(cw, p->room), p->buf, NULL);
	} else if (cw && p->slot < cw->n_slots) {
		struct chat_session *s = cw->slot[p->slot];
		/* the session may have left since the sender looked it up */
		if (s && s->ent.id == p->id)
			deliver_one(s, p->buf);
	}
}

static const struct nt_service_ops chat_ops = {
    .open = chat_open,
    .readable = chat_readable,
    .overflow = chat_overflow,
    .timer = chat_timer,
    .idle = chat_idle,
    .line_timeout = chat_line_timeout,
    .shutdown = chat_shutdown,
    .reconfigure = chat_reconfigure,
    .close = chat_close,
};

/* ---- a session saved across a restart ---- */

#define SAVED_VERSION "chat 1\n"

int nt_chat_session_encode(const char *nick, const char *room, uint8_t *blob,
                           size_t cap)
{
	int n = snprintf((char *)blob, cap, SAVED_VERSION "nick=%s\nroom=%s\n",
	                 nick, room);

	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

/* one "key=value" line into out; false if it is not valid */
static bool saved_field(struct nt_chat_saved *out, const char *line, size_t len)
{
	const char *eq = memchr(line, '=', len);

	if (!eq || memchr(line, '\0', len))
		return false;
	size_t klen = (size_t)(eq - line), vlen = len - klen - 1;
	const char *v = eq + 1;
	if (klen == 4 && !memcmp(line, "nick", 4)) {
		if (vlen && !nt_text_nick_valid(v, vlen, NT_NICK_LIMIT))
			return false;
		memcpy(out->nick, v, vlen);
		out->nick[vlen] = '\0';
	} else if (klen == 4 && !memcmp(line, "room", 4)) {
		if (vlen && nt_text_room_normalize(v, vlen, out->room) < 0)
			return false;
		if (!vlen)
			out->room[0] = '\0';
	}
	/* other keys: written by a later version; not needed here */
	return true;
}

int nt_chat_session_decode(const uint8_t *blob, size_t len,
                           struct nt_chat_saved *out)
{
	const char *p = (const char *)blob;
	struct nt_chat_saved s = {{0}, {0}};
	size_t pos = 0, vlen = sizeof(SAVED_VERSION) - 1;

	if (len >= 5 && !memcmp(p, "chat ", 5)) {
		if (len < vlen || memcmp(p, SAVED_VERSION, vlen))
			return -EINVAL; /* a version we do not know */
		pos = vlen;
	}
	while (pos < len) {
		const char *nl = memchr(p + pos, '\n', len - pos);
		if (!nl || !saved_field(&s, p + pos, (size_t)(nl - p - pos)))
			return -EINVAL;
		pos = (size_t)(nl - p) + 1;
	}
	*out = s;
	return 0;
}

static int chat_session_encode(const struct nt_conn *c, uint8_t *blob,
                               size_t cap)
{
	const struct chat_session *s = c->svc;

	return s ? nt_chat_session_encode(s->ent.nick, s->ent.room, blob, cap)
	         : 0;
}

static int chat_session_check(const uint8_t *blob, size_t len)
{
	struct nt_chat_saved saved;

	return nt_chat_session_decode(blob, len, &saved);
}

/* ---- shared state: the registry ---- */

static int chat_start(const struct nt_config *cfg, unsigned n_workers,
                      void **shared)
{
	*shared =
	    nt_hub_new(n_workers, cfg->chat.max_rooms, cfg->chat.default_room);
	return *shared ? 0 : -ENOMEM;
}

static void chat_reload(void *shared, const struct nt_config *cfg)
{
	nt_hub_configure(shared, cfg->chat.max_rooms, cfg->chat.default_room);
}

static void chat_stop(void *shared)
{
	nt_hub_free(shared);
}

static int chat_status(void *shared, char *buf, size_t size)
{
	unsigned rooms = nt_hub_rooms(shared, NULL, 0);

	return snprintf(buf, size, "%u room%s", rooms, rooms == 1 ? "" : "s");
}

const struct nt_service_def nt_chat_service = {
    .name = "chat",
    .ops = &chat_ops,
    .start = chat_start,
    .reload = chat_reload,
    .stop = chat_stop,
    .worker_reconfigure = chat_worker_reconfigure,
    .worker_free = chat_worker_free,
    .status = chat_status,
    .session_encode = chat_session_encode,
    .session_check = chat_session_check,
};
