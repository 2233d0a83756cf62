/*
 * natter: a line client for natterd that survives server restarts, built
 * on libnatter's event-loop API. stdin lines go to the server, server
 * lines to stdout, connection status to stderr. With --count or --until
 * it is a scripting tool: it exits once enough (or the right) lines came.
 * On a terminal server lines are shown cleaned, so that a server (or the
 * echo of someone's bytes) cannot drive the user's terminal.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "natter.h"

#define STDIN_BUF (64 * 1024)

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct app {
	natter_client *c;
	bool quiet;
	bool raw;    /* --raw */
	bool clean;  /* stdout is a terminal and no --raw */
	bool script; /* --count or --until given */
	long count;  /* lines still to receive; -1: not counting */
	bool until_set;
	regex_t until;
	unsigned types; /* bit per enum natter_line_type shown; 0: all */
	bool done;      /* the script's condition held */
	int sessions;
	char nick_alt[64];

	/* stdin, split into lines by hand: bounded by STDIN_BUF */
	char in[STDIN_BUF];
	size_t in_len;
	bool in_eof;
	bool in_held; /* the first line in `in` waits for queue room */
};

static const char *prog = "natter";

static void status(const struct app *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void status(const struct app *a, const char *fmt, ...)
{
	va_list ap;

	if (a->quiet)
		return;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s [OPTIONS] HOST [PORT]\n"
	        "       %s [OPTIONS] -U PATH\n"
	        "\n"
	        "A line client for natterd that reconnects by itself.\n"
	        "\n"
	        "  -U, --unix PATH          connect to a unix socket\n"
	        "  -e, --echo               the echo service (port 4007)\n"
	        "  -n, --nick NICK          chat nick, re-taken on reconnect\n"
	        "  -r, --room ROOM          chat room, re-joined on reconnect\n"
	        "  -4, -6                   IPv4 or IPv6 only\n"
	        "  -w, --wait               retry a first connect that fails\n"
	        "  -a, --attempts N         give up after N failed retries\n"
	        "      --connect-timeout S  one connect, seconds (10)\n"
	        "      --retry-min S        first backoff ceiling (0.1)\n"
	        "      --retry-max S        backoff cap (2)\n"
	        "      --ping S             ping interval, 0 for none (30)\n"
	        "      --pong-timeout S     (10)\n"
	        "      --rate N             lines per second, 0 unpaced\n"
	        "                           (chat: 5, as natterd)\n"
	        "  -c, --count N            exit after N lines came\n"
	        "  -m, --until REGEX        exit after a line matching REGEX\n"
	        "  -o, --only TYPES         show (and count) only these:\n"
	        "                           message,action,private,sent,\n"
	        "                           notice,error,other\n"
	        "  -t, --timeout S          exit 1 if not done by then\n"
	        "  -q, --quiet              no status lines\n"
	        "      --raw                server lines as they came, even\n"
	        "                           on a terminal\n"
	        "  -h, --help, -V, --version\n",
	        prog, prog);
}

/* ---- the terminal ---- */

/*
 * The next code point of s (len >= 1) and its length in *n; -1 for an
 * ill-formed part, *n being its maximal length (Unicode's practice for
 * U+FFFD), so that one bad byte never hides the good ones after it.
 */
static long utf8_next(const unsigned char *s, size_t len, size_t *n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;
	long cp;

	*n = 1;
	if (s[0] < 0x80)
		return s[0];
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 1;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		cp = s[0] & 0x0f;
		lo = s[0] == 0xe0 ? 0xa0 : 0x80; /* no overlongs */
		hi = s[0] == 0xed ? 0x9f : 0xbf; /* no surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		cp = s[0] & 0x07;
		lo = s[0] == 0xf0 ? 0x90 : 0x80;
		hi = s[0] == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
	} else
		return -1;
	for (size_t i = 1; i <= need; i++) {
		if (i >= len || s[i] < lo || s[i] > hi) {
			*n = i;
			return -1;
		}
		cp = cp << 6 | (s[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*n = need + 1;
	return cp;
}

/* where term_put() is in a terminal control sequence */
enum term_seq {
	SEQ_NONE,
	SEQ_ESC,    /* after ESC */
	SEQ_ESC_IN, /* ESC and intermediate bytes */
	SEQ_CSI,    /* parameters up to the final byte */
	SEQ_STRING, /* OSC, DCS, SOS, PM, APC: up to BEL or ST */
};

static bool bidi_control(long cp)
{
	return cp == 0x61c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* the state after cp outside a sequence; *show: cp is text to print */
static enum term_seq term_text(long cp, bool *show)
{
	*show = false;
	if (cp == 0x1b)
		return SEQ_ESC;
	if (cp == 0x9b)
		return SEQ_CSI;
	if (cp == 0x90 || cp == 0x98 || cp == 0x9d || cp == 0x9e || cp == 0x9f)
		return SEQ_STRING;
	*show = cp == '\t' || cp < 0 ||
	        (cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f) &&
	         !bidi_control(cp));
	return SEQ_NONE;
}

/* the state after cp inside a sequence; *again: cp ended it without
 * belonging to it, so it is to be looked at as text */
static enum term_seq term_seq_step(enum term_seq st, long cp, bool *again)
{
	*again = false;
	switch (st) {
	case SEQ_ESC:
		if (cp == '[')
			return SEQ_CSI;
		if (cp == ']' || cp == 'P' || cp == 'X' || cp == '^' ||
		    cp == '_')
			return SEQ_STRING;
		/* fall through */
	case SEQ_ESC_IN:
		if (cp >= 0x20 && cp <= 0x2f)
			return SEQ_ESC_IN;
		*again = !(cp >= 0x30 && cp <= 0x7e);
		return SEQ_NONE;
	case SEQ_CSI:
		if (cp >= 0x20 && cp <= 0x3f)
			return SEQ_CSI;
		*again = !(cp >= 0x40 && cp <= 0x7e);
		return SEQ_NONE;
	case SEQ_STRING:
		/* ESC \ (ST) ends it as an ESC sequence of its own */
		if (cp == 0x1b)
			return SEQ_ESC;
		return cp == 0x07 || cp == 0x9c ? SEQ_NONE : SEQ_STRING;
	default:
		return SEQ_NONE;
	}
}

/*
 * Print a server line for a terminal: valid UTF-8, ill-formed parts as
 * U+FFFD; no C0 control but tab, no DEL, no C1 control, no bidirectional
 * control; escape and control sequences removed whole (to the end of the
 * line if they never end), whether ESC or a C1 character opens them.
 */
static void term_put(const char *line, size_t len)
{
	const unsigned char *s = (const unsigned char *)line;
	enum term_seq st = SEQ_NONE;
	size_t n;

	for (size_t i = 0; i < len; i += n) {
		long cp = utf8_next(s + i, len - i, &n);
		bool show = false, again = true;
		if (st != SEQ_NONE)
			st = term_seq_step(st, cp, &again);
		if (again)
			st = term_text(cp, &show);
		if (show && cp < 0)
			fputs("\xef\xbf\xbd", stdout);
		else if (show)
			fwrite(s + i, 1, n, stdout);
	}
}

/* ---- callbacks ---- */

static void on_connected(natter_client *c, int n, void *data)
{
	struct app *a = data;
	const char *nick = natter_client_nick(c);
	const char *room = natter_client_room(c);

	a->sessions = n;
	if (*nick || *room)
		status(a, "%s to %s%s%s%s%s",
		       n > 1 ? "reconnected" : "connected",
		       natter_client_peer(c), *nick ? " as " : "", nick,
		       *room ? " in #" : "", room);
	else
		status(a, "%s to %s", n > 1 ? "reconnected" : "connected",
		       natter_client_peer(c));
}

static void on_disconnected(natter_client *c, int err, const char *reason,
                            void *data)
{
	(void)c;
	(void)err;
	status(data, "disconnected: %s", reason);
}

static void on_reconnecting(natter_client *c, int attempt, int delay_ms,
                            int err, void *data)
{
	(void)c;
	(void)err;
	status(data, "reconnecting in %.1f s (attempt %d)", delay_ms / 1000.0,
	       attempt);
}

static void on_gave_up(natter_client *c, int err, void *data)
{
	const char *why = natter_client_reason(c);

	status(data, "giving up: %s", *why ? why : natter_strerror(err));
}

static const char *on_nick_taken(natter_client *c, const char *nick, void *data)
{
	struct app *a = data;

	(void)c;
	/* one underscore more, while it fits natterd's nick limit */
	if (strlen(nick) + 1 > 24) {
		status(a, "nick %s is taken; carrying on as a guest", nick);
		return NULL;
	}
	snprintf(a->nick_alt, sizeof(a->nick_alt), "%s_", nick);
	status(a, "nick %s is taken; trying %s", nick, a->nick_alt);
	return a->nick_alt;
}

static void on_line(natter_client *c, const struct natter_line *l, void *data)
{
	struct app *a = data;
	char *s;

	(void)c;
	if (a->types && !(a->types & (1u << l->type)))
		return;
	if (a->clean)
		term_put(l->raw, l->raw_len);
	else
		fwrite(l->raw, 1, l->raw_len, stdout);
	fputc('\n', stdout);
	if (a->count > 0 && --a->count == 0)
		a->done = true;
	if (a->until_set && (s = strndup(l->raw, l->raw_len))) {
		if (regexec(&a->until, s, 0, NULL, 0) == 0)
			a->done = true;
		free(s);
	}
}

/* ---- stdin ---- */

/* Send the complete lines held in a->in; stop at a full queue. */
static int send_lines(struct app *a)
{
	size_t off = 0;

	a->in_held = false;
	while (off < a->in_len) {
		char *nl = memchr(a->in + off, '\n', a->in_len - off);
		size_t len;
		if (nl)
			len = (size_t)(nl - (a->in + off));
		else if (a->in_eof || a->in_len == sizeof(a->in))
			len = a->in_len - off; /* last line, or too long */
		else
			break;
		size_t take = len + (nl ? 1 : 0);
		if (len && a->in[off + len - 1] == '\r')
			len--;
		int rc = natter_client_send(a->c, a->in + off, len);
		if (rc == NATTER_EFULL) {
			a->in_held = true;
			break;
		}
		if (rc == NATTER_ECLOSED)
			return rc;
		if (rc < 0)
			status(a, "line not sent: %s", natter_strerror(rc));
		off += take;
	}
	memmove(a->in, a->in + off, a->in_len - off);
	a->in_len -= off;
	return 0;
}

static int read_stdin(struct app *a)
{
	ssize_t n =
	    read(STDIN_FILENO, a->in + a->in_len, sizeof(a->in) - a->in_len);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		a->in_eof = true;
	else
		a->in_len += (size_t)n;
	return send_lines(a);
}

/* ---- options ---- */

static bool parse_secs(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0) || v > 7 * 24 * 3600)
		return false;
	*ms = (int)(v * 1000 + 0.5);
	return true;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);

	if (end == s || *end || errno || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_types(const char *s, unsigned *types)
{
	static const struct {
		const char *name;
		enum natter_line_type type;
	} names[] = {
	    {"message", NATTER_LINE_MESSAGE},
	    {"action", NATTER_LINE_ACTION},
	    {"private", NATTER_LINE_PRIVATE},
	    {"sent", NATTER_LINE_PRIVATE_SENT},
	    {"notice", NATTER_LINE_NOTICE},
	    {"error", NATTER_LINE_ERROR},
	    {"other", NATTER_LINE_OTHER},
	};

	*types = 0;
	while (*s) {
		size_t len = strcspn(s, ",");
		bool found = false;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len &&
			    !strncmp(names[i].name, s, len)) {
				*types |= 1u << names[i].type;
				found = true;
			}
		if (!found)
			return false;
		s += len + (s[len] == ',');
	}
	return *types != 0;
}

enum {
	OPT_CONNECT_TIMEOUT = 256,
	OPT_RETRY_MIN,
	OPT_RETRY_MAX,
	OPT_PING,
	OPT_PONG_TIMEOUT,
	OPT_RATE,
	OPT_RAW,
};

static const struct option longopts[] = {
    {"unix", required_argument, NULL, 'U'},
    {"echo", no_argument, NULL, 'e'},
    {"nick", required_argument, NULL, 'n'},
    {"room", required_argument, NULL, 'r'},
    {"wait", no_argument, NULL, 'w'},
    {"attempts", required_argument, NULL, 'a'},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"retry-min", required_argument, NULL, OPT_RETRY_MIN},
    {"retry-max", required_argument, NULL, OPT_RETRY_MAX},
    {"ping", required_argument, NULL, OPT_PING},
    {"pong-timeout", required_argument, NULL, OPT_PONG_TIMEOUT},
    {"rate", required_argument, NULL, OPT_RATE},
    {"count", required_argument, NULL, 'c'},
    {"until", required_argument, NULL, 'm'},
    {"only", required_argument, NULL, 'o'},
    {"timeout", required_argument, NULL, 't'},
    {"quiet", no_argument, NULL, 'q'},
    {"raw", no_argument, NULL, OPT_RAW},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "%s: invalid %s: '%s'\n", prog, what, arg);
	return EXIT_USAGE;
}

/* 0, or an exit status (usage error, --help) with *stop set */
static int parse_args(int argc, char **argv, struct app *a,
                      struct natter_options *o, int *timeout_ms, bool *stop)
{
	int opt, ms;
	long v;

	*stop = true;
	while ((opt = getopt_long(argc, argv, "U:en:r:46wa:c:m:o:t:qhV",
	                          longopts, NULL)) != -1) {
		switch (opt) {
		case 'U':
			o->unix_path = optarg;
			break;
		case 'e':
			o->service = NATTER_SERVICE_ECHO;
			break;
		case 'n':
			o->nick = optarg;
			break;
		case 'r':
			o->room = optarg;
			break;
		case '4':
			o->family = NATTER_FAMILY_IPV4_ONLY;
			break;
		case '6':
			o->family = NATTER_FAMILY_IPV6_ONLY;
			break;
		case 'w':
			o->retry_first_connect = true;
			break;
		case 'a':
			if (!parse_int(optarg, -1, INT_MAX, &v))
				return bad("attempt count", optarg);
			o->max_attempts = (int)v;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (!parse_secs(optarg, &ms) || !ms)
				return bad("connect timeout", optarg);
			o->connect_timeout_ms = ms;
			break;
		case OPT_RETRY_MIN:
			if (!parse_secs(optarg, &ms) || !ms)
				return bad("retry delay", optarg);
			o->reconnect_initial_ms = ms;
			break;
		case OPT_RETRY_MAX:
			if (!parse_secs(optarg, &ms) || !ms)
				return bad("retry cap", optarg);
			o->reconnect_max_ms = ms;
			break;
		case OPT_PING:
			if (!parse_secs(optarg, &ms))
				return bad("ping interval", optarg);
			o->ping_interval_ms = ms;
			break;
		case OPT_PONG_TIMEOUT:
			if (!parse_secs(optarg, &ms) || ms < 10)
				return bad("pong timeout", optarg);
			o->pong_timeout_ms = ms;
			break;
		case OPT_RATE:
			if (!parse_int(optarg, 0, 1000000, &v))
				return bad("rate", optarg);
			o->send_rate = (int)v;
			break;
		case 'c':
			if (!parse_int(optarg, 1, LONG_MAX, &v))
				return bad("count", optarg);
			a->count = v;
			a->script = true;
			break;
		case 'm':
			if (a->until_set)
				regfree(&a->until);
			if (regcomp(&a->until, optarg,
			            REG_EXTENDED | REG_NOSUB))
				return bad("regular expression", optarg);
			a->until_set = a->script = true;
			break;
		case 'o':
			if (!parse_types(optarg, &a->types))
				return bad("line types", optarg);
			break;
		case 't':
			if (!parse_secs(optarg, timeout_ms))
				return bad("timeout", optarg);
			break;
		case 'q':
			a->quiet = true;
			break;
		case OPT_RAW:
			a->raw = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("natter %s\n", natter_version());
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	int left = argc - optind;
	if (o->unix_path ? left != 0 : left < 1 || left > 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!o->unix_path) {
		o->host = argv[optind];
		o->port = left == 2 ? argv[optind + 1] : NULL;
	}
	*stop = false;
	return 0;
}

/* ---- the loop ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ms left before end (0: no end): -1 for none */
static int left_ms(uint64_t end)
{
	uint64_t now = now_ms();

	if (!end)
		return -1;
	return now >= end ? 0 : (int)(end - now);
}

/*
 * End the session without losing a line: natter_client_close() waits
 * until the server has read everything (a plain close could make the
 * kernel reset the connection, and the server drop what it had not read).
 */
static int finish(struct app *a, uint64_t end, int cap_ms)
{
	int t = left_ms(end);

	if (cap_ms >= 0 && (t < 0 || t > cap_ms))
		t = cap_ms;
	int rc = natter_client_close(a->c, t);
	if (rc == NATTER_ETIMEDOUT)
		status(a, "timed out before the server read everything");
	else if (rc < 0)
		status(a, "%s", natter_client_reason(a->c));
	return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

static int loop(struct app *a, int timeout_ms)
{
	uint64_t end = timeout_ms > 0 ? now_ms() + (uint64_t)timeout_ms : 0;

	natter_client_start(a->c);
	for (;;) {
		if (natter_client_process(a->c) == NATTER_ECLOSED) {
			/* gave up */
			fflush(stdout);
			return EXIT_FAIL;
		}
		/* the script's condition held: what it sent has done its
		 * job, so only a short wait for the rest */
		if (a->done) {
			finish(a, end, 2000);
			return EXIT_OK;
		}
		if (a->in_held && send_lines(a) == NATTER_ECLOSED)
			return EXIT_FAIL;
		/* interactive: all of stdin is with the library */
		if (!a->script && a->in_eof && !a->in_len && !a->in_held)
			return finish(a, end, -1);
		int t = natter_client_timeout(a->c);
		if (end) {
			uint64_t now = now_ms();
			if (now >= end) {
				status(a, "timed out");
				return EXIT_FAIL;
			}
			if (t < 0 || (uint64_t)t > end - now)
				t = (int)(end - now);
		}
		struct pollfd p[2] = {
		    {.fd = natter_client_fd(a->c),
		     .events = (short)natter_client_events(a->c)},
		    {.fd = a->in_eof || a->in_held ? -1 : STDIN_FILENO,
		     .events = POLLIN},
		};
		/* a held line waits for the queue to drain: poll again soon */
		if (a->in_held && (t < 0 || t > 50))
			t = 50;
		if (poll(p, 2, t) < 0 && errno != EINTR) {
			status(a, "poll: %s", strerror(errno));
			return EXIT_FAIL;
		}
		if (p[1].revents && read_stdin(a) == NATTER_ECLOSED)
			return EXIT_FAIL;
	}
}

int main(int argc, char **argv)
{
	static struct app a; /* the stdin buffer is large */
	struct natter_options o;
	int timeout_ms = 0, err;
	bool stop;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	natter_options_init(&o);
	a.count = -1;
	int rc = parse_args(argc, argv, &a, &o, &timeout_ms, &stop);
	if (stop)
		return rc;
	a.clean = !a.raw && isatty(STDOUT_FILENO);
	o.cb.connected = on_connected;
	o.cb.disconnected = on_disconnected;
	o.cb.reconnecting = on_reconnecting;
	o.cb.gave_up = on_gave_up;
	o.cb.line = on_line;
	o.cb.nick_taken = on_nick_taken;
	o.data = &a;
	a.c = natter_client_new(&o, &err);
	if (!a.c) {
		/* "nick: ..." names the option at fault */
		fprintf(stderr, "%s: %s\n", prog, natter_options_error());
		return EXIT_USAGE;
	}
	rc = loop(&a, timeout_ms);
	natter_client_free(a.c);
	if (a.until_set)
		regfree(&a.until);
	return rc;
}
