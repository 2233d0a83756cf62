/*
 * libnatter: a client library for natterd that rides out server restarts
 * and network trouble. One opaque natter_client per connection; options in
 * a struct, callbacks with user data, NATTER_E* codes. See libnatter(3).
 *
 * Threads: natter_client_send(), _sendf(), _stop(), _state(), _pending()
 * and _stats() may be called from any thread at any time. Every other
 * function is for the one thread that drives the client (the one calling
 * _process(), _run(), _connect(), _flush() or _receive()), and callbacks
 * run on that thread. The library never logs, never exits, never raises a
 * signal and opens every descriptor close-on-exec.
 */
#ifndef NATTER_H
#define NATTER_H

#include <stdbool.h>
#include <stddef.h>

#include "natter-version.h" /* NATTER_VERSION_MAJOR..PATCH, NATTER_VERSION */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes: negative, stable, one list. NATTER_OK is 0.
 * natter_strerror() gives the message, natter_err_name() the name.
 */
#define NATTER_ERRNO_MAP(XX)                                                   \
	XX(EINVAL, -1, "invalid argument")                                     \
	XX(ENOMEM, -2, "out of memory")                                        \
	XX(ERESOLVE, -3, "host name lookup failed")                            \
	XX(ENOADDR, -4, "no address of the wanted family")                     \
	XX(ECONNREFUSED, -5, "connection refused")                             \
	XX(ENOENT, -6, "no such socket file")                                  \
	XX(EUNREACH, -7, "network or host unreachable")                        \
	XX(ETIMEDOUT, -8, "timed out")                                         \
	XX(ECONNRESET, -9, "connection reset by peer")                         \
	XX(EOF, -10, "server closed the connection")                           \
	XX(EIO, -11, "input/output error")                                     \
	XX(EPONG, -12, "no pong from the server in time")                      \
	XX(EFULL, -13, "send queue full")                                      \
	XX(ETOOLONG, -14, "line too long")                                     \
	XX(ECLOSED, -15, "client stopped or gave up")                          \
	XX(EBUSY, -16, "client is being driven by another call")

enum {
	NATTER_OK = 0,
#define NATTER__ERRDEF(name, value, msg) NATTER_##name = (value),
	NATTER_ERRNO_MAP(NATTER__ERRDEF)
#undef NATTER__ERRDEF
};

/* the message for a NATTER_E* code ("unknown error" for anything else) */
const char *natter_strerror(int err);
/* "NATTER_EFULL" and so on; "NATTER_UNKNOWN" for anything else */
const char *natter_err_name(int err);
/* NATTER_VERSION of the library that runs ("0.1.0") */
const char *natter_version(void);

/* ---- lines ------------------------------------------------------------- */

/*
 * What a server line is, by its marker (natter-protocol(7)). User text
 * cannot produce a marker, so the type can be trusted.
 */
enum natter_line_type {
	NATTER_LINE_OTHER = 0,    /* no marker: echo data, or not natterd */
	NATTER_LINE_MESSAGE,      /* "<nick> text": said in your room */
	NATTER_LINE_ACTION,       /* "* nick text": /me in your room */
	NATTER_LINE_PRIVATE,      /* "*nick* text": to you, from nick */
	NATTER_LINE_PRIVATE_SENT, /* "-> *nick* text": yours, to nick */
	NATTER_LINE_NOTICE,       /* "*** text": from the server */
	NATTER_LINE_ERROR,        /* "!!! text": the server refused something */
};

/* Pointers point into the parsed line; nick is NULL when there is none. */
struct natter_line {
	enum natter_line_type type;
	const char *raw; /* the whole line, without its CRLF */
	size_t raw_len;
	const char *nick;
	size_t nick_len;
	const char *text;
	size_t text_len;
	bool truncated; /* longer than max_line: the rest was not kept */
};

/*
 * Classify one line (without CRLF; len bytes, need not be NUL-terminated).
 * Returns the type (>= 0), or NATTER_EINVAL for a NULL line (even with
 * len 0: an empty line is "") or out. A line
 * whose marker is malformed (bad nick, missing space) is NATTER_LINE_OTHER
 * with text = the whole line.
 */
int natter_parse_line(const char *line, size_t len, struct natter_line *out);

/* ---- the client -------------------------------------------------------- */

typedef struct natter_client natter_client;

enum natter_service {
	NATTER_SERVICE_CHAT = 0,
	NATTER_SERVICE_ECHO,
};

enum natter_family {
	NATTER_FAMILY_ANY = 0, /* resolver order, families interleaved */
	NATTER_FAMILY_PREFER_IPV6,
	NATTER_FAMILY_PREFER_IPV4,
	NATTER_FAMILY_IPV6_ONLY,
	NATTER_FAMILY_IPV4_ONLY,
};

enum natter_overflow {
	NATTER_OVERFLOW_FAIL = 0, /* the send fails with NATTER_EFULL */
	NATTER_OVERFLOW_DROP_OLDEST,
};

enum natter_state {
	NATTER_STATE_IDLE = 0,   /* not started */
	NATTER_STATE_CONNECTING, /* resolving, connecting, restoring */
	NATTER_STATE_CONNECTED,  /* session up: queued lines are going out */
	NATTER_STATE_WAITING,    /* waiting out the backoff delay */
	NATTER_STATE_GAVE_UP,    /* attempt limit reached (or no retry) */
	NATTER_STATE_STOPPED,    /* natter_client_stop() */
};

/*
 * Callbacks, all optional, all called on the driving thread with the
 * options' data. They may call natter_client_send() and _stop(), but not
 * drive the client (that returns NATTER_EBUSY) nor free it.
 */
struct natter_callbacks {
	/* the session is up (after nick and room were restored); n counts
	 * sessions, 1 for the first */
	void (*connected)(natter_client *c, int n, void *data);
	/* an established session was lost; reason is a sentence for people */
	void (*disconnected)(natter_client *c, int err, const char *reason,
	                     void *data);
	/* the next connect starts in delay_ms; err is why the last one
	 * failed or was lost; attempt counts from 1 since the last stable
	 * session */
	void (*reconnecting)(natter_client *c, int attempt, int delay_ms,
	                     int err, void *data);
	/* no more attempts (limit reached, or a first connect without
	 * retry_first_connect failed) */
	void (*gave_up)(natter_client *c, int err, void *data);
	/* a server line; without this callback lines queue up for
	 * natter_client_receive() */
	void (*line)(natter_client *c, const struct natter_line *line,
	             void *data);
	/* chat: the server refused the nick to restore (taken, or not valid
	 * there: natterd's chat.max_nick may be shorter than the 32 bytes
	 * the library allows); natter_client_reason() has the server's
	 * words. Return another nick to try (copied at once; up to 5 per
	 * connect), or NULL to carry on with the one the server gave
	 * (natter_client_current_nick()); lines queued during the outage go
	 * out only after this. Without this callback the session goes on
	 * under the server's nick, the reason says why, and
	 * natter_client_current_nick() differs from natter_client_nick(). */
	const char *(*nick_taken)(natter_client *c, const char *nick,
	                          void *data);
};

/*
 * Options. natter_options_init() sets every default and the size; then set
 * what you need. Strings are copied by natter_client_new(). Times in
 * milliseconds.
 *
 * The struct grows without breaking compiled programs: size is the
 * sizeof(struct natter_options) the caller was compiled with, and the
 * library reads only the fields that size covers, using the defaults for
 * the rest. So always start from natter_options_init() (a struct whose size
 * is 0 is refused), and never copy options between programs built against
 * different headers. New fields are only ever appended, and each release's
 * layout ends without tail padding, so an older size always ends on a
 * field boundary. A size larger than the library knows (a newer header, an
 * older library) is accepted only if the bytes it does not know are all 0,
 * that is, left at their defaults. struct natter_callbacks is part of this
 * layout and never grows: a new callback is a new field at the end.
 */
struct natter_options {
	size_t size; /* set by natter_options_init(); first, in every release */
	const char *host; /* name or numeric address (TCP) */
	/* decimal digits, 1..65535, no service names (else NATTER_EINVAL
	 * from natter_client_new()); NULL: 4000 chat, 4007 echo */
	const char *port;
	const char *unix_path; /* a unix socket instead of host */
	/* NULL-terminated numeric addresses to race instead of resolving
	 * host (which then only names the server in messages); at most 16 */
	const char *const *addresses;
	/* enum natter_family; a name with no address of an _ONLY family
	 * is NATTER_ENOADDR, like a numeric address of the other */
	int family;
	int service; /* enum natter_service */

	int connect_timeout_ms; /* one whole connect: lookup + every attempt */
	int attempt_delay_ms;   /* RFC 8305: next address after this long */

	/* backoff: each retry waits a delay drawn uniformly below a ceiling
	 * that starts at reconnect_initial_ms (100) and doubles with each
	 * attempt up to reconnect_max_ms (2000). After a restart a client is
	 * back within about a second; a server that stays down sees one
	 * attempt per client a second on average. */
	int reconnect_initial_ms;
	int reconnect_max_ms;
	int max_attempts; /* retries before giving up; -1: forever */
	/* a restored session up this long restarts the count at attempt 1;
	 * 0 (the default): every restored session does */
	int stable_ms;
	bool retry_first_connect; /* a failed first connect is retried too */

	/* the send queue, which is also the outage buffer */
	int queue_lines;    /* 1..1000000 lines */
	size_t queue_bytes; /* and at most this many bytes, as sent: each
	                       line's text + 2 for its CRLF, for chat each
	                       0xFF twice (IAC IAC) */
	int overflow;       /* enum natter_overflow */

	/* chat pacing, to stay under the server's flood control: lines per
	 * second (0: unpaced; -1: natterd's default of 5 for chat, unpaced
	 * for echo) and burst */
	int send_rate;
	int send_burst;

	int ping_interval_ms; /* 0: no pings */
	int pong_timeout_ms;  /* also bounds the session restore */

	int max_line; /* longest line either way, bytes; a server's announced
	                 limit also bounds sends (natter_client_send()) */
	int recv_queue_lines; /* natter_client_receive() backlog; oldest
	                         dropped beyond it */

	const char *nick; /* chat: nick to take and restore; NULL: a guest */
	const char *room; /* chat: room to join and restore; NULL: default */

	struct natter_callbacks cb;
	void *data;
};

struct natter_stats {
	unsigned long long attempts;       /* connects started */
	unsigned long long connects;       /* sessions established */
	unsigned long long disconnects;    /* established sessions lost */
	unsigned long long lines_sent;     /* user lines written in full */
	unsigned long long lines_received; /* server lines read */
	unsigned long long lines_dropped;  /* drop-oldest overflow */
	unsigned long long recv_dropped;   /* receive backlog overflow */
	unsigned long long pings;          /* pings answered */
	int last_rtt_ms;                   /* of the last answered ping; -1 */
};

/*
 * The defaults for the first size bytes of *o, and o->size = size. Call it
 * through natter_options_init(), which passes the size this program was
 * compiled with.
 */
void natter_options_init_size(struct natter_options *o, size_t size);

static inline void natter_options_init(struct natter_options *o)
{
	natter_options_init_size(o, sizeof(*o));
}

/*
 * NULL on error, with *err (if err) set; nothing is connected yet. Why it
 * failed, for people: natter_options_error().
 */
natter_client *natter_client_new(const struct natter_options *o, int *err);
/*
 * Why the last natter_client_new() on this thread failed: for a refused
 * option "field: why" (e.g. "queue_lines: 0 is not in 1..1000000"),
 * otherwise the natter_strerror() text; "" after a success. Valid until
 * the next natter_client_new() on this thread.
 */
const char *natter_options_error(void);
/*
 * Closes everything at once; NULL is fine; not from a callback. Lines
 * already written may still be lost: closing a socket with unread input
 * makes the kernel send a reset, and the server then drops what it had
 * not read yet. To end without losing anything, natter_client_close().
 */
void natter_client_free(natter_client *c);

/* begin connecting without waiting (the first driving call also does) */
int natter_client_start(natter_client *c);

/*
 * Queue one line (len bytes, no CR, LF or NUL inside; one trailing "\n"
 * or "\r\n" is dropped; for chat a 0xFF goes out as IAC IAC, a data
 * byte to the server). While disconnected it waits in the queue, which
 * is sent after the next connect, exactly once and in order. Any thread.
 * NATTER_ETOOLONG: longer than max_line, or than the limit the server
 * last announced ("*** limits: max_line=N", natter-protocol(7); kept
 * across outages; none is known before the first session, when only
 * max_line applies and a longer line is refused by the server instead).
 * NATTER_ETOOLONG also for a line of more than queue_bytes on its own
 * with its CRLF. NATTER_EFULL (queue full, overflow = FAIL),
 * NATTER_EINVAL, NATTER_ECLOSED (stopped or gave up).
 */
int natter_client_send(natter_client *c, const char *line, size_t len);
int natter_client_sendf(natter_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* from any thread: end the client; a driving call returns */
int natter_client_stop(natter_client *c);
enum natter_state natter_client_state(natter_client *c);
/* user lines queued and not yet written in full */
size_t natter_client_pending(natter_client *c);
void natter_client_stats(natter_client *c, struct natter_stats *out);

/* ---- blocking use -------------------------------------------------------
 * Negative timeouts wait forever.
 *
 * One rule for every blocking call (connect, run, run_for, flush,
 * flush_server, close, receive): once the client is stopped
 * (natter_client_stop(), or after natter_client_close()) it returns
 * NATTER_ECLOSED, and once it gave up the error it gave up with
 * (NATTER_ECLOSED if none); whether that was so before the call or
 * happened during it, and before the call's own condition is looked at
 * (so flushing an empty queue of a stopped client is NATTER_ECLOSED).
 * Two exceptions say what the call is for: run and run_for return 0 when
 * natter_client_stop() ends them while they run, and receive first hands
 * out lines that had already arrived.
 */

/* until the session is up (or the client gives up) */
int natter_client_connect(natter_client *c);
/* until natter_client_stop() (then 0) or the client gives up */
int natter_client_run(natter_client *c);
/*
 * run for at most timeout_ms (negative: 0): NATTER_ETIMEDOUT when that
 * time is up (the client is still fine: call again), 0 if
 * natter_client_stop() ended it sooner, or the error the client gave up
 * with. A bot that wants to stop on its own needs no second thread.
 */
int natter_client_run_for(natter_client *c, int timeout_ms);
/*
 * until no user line is left in the queue: 0 or NATTER_ETIMEDOUT. The
 * lines are then written to the socket, not yet read by the server: for
 * that, natter_client_flush_server().
 */
int natter_client_flush(natter_client *c, int timeout_ms);
/*
 * A round trip, like nats.c's Flush: queue a /ping behind every line
 * queued so far (it takes a place in the queue: NATTER_EFULL or
 * NATTER_ETOOLONG as a send; drop-oldest may drop it, and the call then
 * ends in NATTER_ETIMEDOUT) and wait for its answer, which natterd gives only
 * after acting on every line before it (chat: each one read and relayed to the
 * room, on its way to every member, no longer waiting on this client); on the
 * echo service, until the ping has come back echoed, after every line before
 * it. The answer is not delivered as a line. 0, NATTER_ETIMEDOUT or, by
 * the rule above, NATTER_ECLOSED or the error the client gave up with.
 */
int natter_client_flush_server(natter_client *c, int timeout_ms);
/*
 * End gracefully: flush (reconnecting if need be), shut down the sending
 * side, and read (lines still go to the callback or the receive queue)
 * until the server closes too, which natterd does only once it has acted
 * on every line. 0 then, and only then: no line of the queue was lost.
 * Else NATTER_ETIMEDOUT, the error that ended the connection or made the
 * client give up, or NATTER_ECLOSED (stopped, or a line another thread
 * queued meanwhile was not sent). The client is stopped after.
 */
int natter_client_close(natter_client *c, int timeout_ms);
/*
 * The next server line, NUL-terminated in buf without its CRLF (cut to
 * size - 1 bytes): its full length, or NATTER_ETIMEDOUT. Only without a
 * line callback (else NATTER_EINVAL).
 */
int natter_client_receive(natter_client *c, char *buf, size_t size,
                          int timeout_ms);

/* ---- event-loop use -----------------------------------------------------
 * natter_client_fd() is one descriptor for the client's whole life (an
 * epoll set of the socket, the connect attempts and a cross-thread
 * wake-up): wait for natter_client_events() on it, at most
 * natter_client_timeout() ms, then call natter_client_process().
 */
int natter_client_fd(const natter_client *c);
/* POLLIN, or 0 once the client stopped or gave up */
int natter_client_events(const natter_client *c);
/* ms until process() has timed work to do; -1: none */
int natter_client_timeout(const natter_client *c);
/* do what is ready without blocking: 0, or NATTER_ECLOSED when done */
int natter_client_process(natter_client *c);

/* ---- the session (driving thread) -------------------------------------- */

/* the nick and room to restore (from options, then from what the server
 * confirmed); "" when none. A nick the server refused stays the one to
 * restore, to be asked for again on the next connect. */
const char *natter_client_nick(const natter_client *c);
/* the nick the server gave this session (a guest nick when it refused
 * ours); "" while not connected and for echo */
const char *natter_client_current_nick(const natter_client *c);
const char *natter_client_room(const natter_client *c);
/* "127.0.0.1:4000", "[::1]:4000" or the socket path; "" when not
 * connected */
const char *natter_client_peer(const natter_client *c);
/* why the last connect failed, the last session ended or the server
 * refused the nick; "" if none */
const char *natter_client_reason(const natter_client *c);
void *natter_client_data(const natter_client *c);

#ifdef __cplusplus
}
#endif

#endif
