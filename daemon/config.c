/*
 * Reads a libconfig file into a plain struct nt_config and checks every
 * setting, collecting all problems with their file and line rather than
 * stopping at the first. The only file that includes <libconfig.h>.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "text.h"
#include "util.h"

/* text.c checks names without depending on the configuration */
_Static_assert(NT_TEXT_ROOM_MAX == NT_ROOM_MAX,
               "room name limits in text.h and config.h disagree");

#define FILE_SIZE_MAX     (1024 * 1024) /* any one file, main or included */
#define INCLUDE_DEPTH_MAX 10            /* libconfig 1.5's own limit */
#define INCLUDES_MAX      128
#define ERRORS_MAX        100
#define KEY_LEN_MAX       32 /* longer names get no "did you mean" */
#define ESC_MAX           64 /* a user's value quoted in a message */
#define LABEL_MAX         (NT_NAME_MAX + 16)
#define MSG_MAX           512
#define DEPTH_MAX         16384 /* brackets: libconfig's parser fails first */
#define GROUP_SIZE_MAX    64    /* settings in one group; 12 are used */
#define LEVEL_BRACE       0x80

#define DEFAULT_MOTD "Be excellent to each other."
#define DEFAULT_ROOM "lobby"

struct ctx {
	struct nt_config_diag *diag; /* NULL: only count */
	const char *name;            /* the main file, or the string's name */
	size_t first;                /* diag->n when this load began */
	unsigned errors;             /* found, including those not kept */
	unsigned includes;
	bool nomem;
	char prefix[LABEL_MAX + 2]; /* "listener \"echo\": " inside one */
};

static const char *const family_names[] = {
    [NT_FAMILY_IPV4] = "ipv4",
    [NT_FAMILY_IPV6] = "ipv6",
    [NT_FAMILY_ANY] = "any",
    [NT_FAMILY_UNIX] = "unix",
};

enum {
	R_WORKERS,
	R_MAXCONN,
	R_LOGLEVEL,
	R_USER,
	R_CORE_DUMPS,
	R_LIMITS,
	R_TIMEOUTS,
	R_CHAT,
	R_LISTENERS,
	R_N
};
static const char *const root_keys[R_N] = {
    "workers", "max_connections", "log_level", "user",      "core_dumps",
    "limits",  "timeouts",        "chat",      "listeners",
};

enum { LIM_PER_IP, LIM_PER_IP_PREFIX6, LIM_MAX_OUTPUT, LIM_N };
static const char *const limit_keys[LIM_N] = {"per_ip", "per_ip_prefix6",
                                              "max_output"};

enum { T_IDLE, T_WRITE, T_LINE, T_GRACE, T_N };
static const char *const timeout_keys[T_N] = {"idle", "write", "line",
                                              "shutdown_grace"};

/* What a listener needs while the rest of the file is still unread. */
struct lx {
	const char *file; /* libconfig's string: valid until config_destroy */
	bool named;
	bool ok;       /* no errors: takes part in the duplicate checks */
	bool set[T_N]; /* which timeouts it overrides */
	struct nt_timeouts t;
	int af;
	unsigned char addr[16];
};

enum { C_MOTD, C_ROOM, C_MAX_LINE, C_MAX_NICK, C_MAX_ROOMS, C_FLOOD, C_N };
static const char *const chat_keys[C_N] = {
    "motd", "default_room", "max_line", "max_nick", "max_rooms", "flood",
};

enum { F_RATE, F_BURST, F_N };
static const char *const flood_keys[F_N] = {"rate", "burst"};

enum {
	L_NAME,
	L_SERVICE,
	L_FAMILY,
	L_ADDRESS,
	L_PORT,
	L_PATH,
	L_MODE,
	L_BACKLOG,
	L_REUSEADDR,
	L_REUSEPORT,
	L_V6ONLY,
	L_TIMEOUTS,
	L_N
};
static const char *const listener_keys[L_N] = {
    "name", "service", "family",    "address",   "port",   "path",
    "mode", "backlog", "reuseaddr", "reuseport", "v6only", "timeouts",
};

/* ---- diagnostics -------------------------------------------------------- */

static void diag_push(struct ctx *c, const char *file, int line,
                      const char *msg)
{
	struct nt_config_error *v;
	char *f, *m;

	if (!c->diag)
		return;
	f = strdup(file);
	m = strdup(msg);
	v = f && m ? realloc(c->diag->v, (c->diag->n + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(f);
		free(m);
		c->nomem = true;
		return;
	}
	v[c->diag->n++] = (struct nt_config_error){f, line, m};
	c->diag->v = v;
}

__attribute__((format(printf, 5, 0))) static void
vreport(struct ctx *c, const char *file, int line, bool prefixed,
        const char *fmt, va_list ap)
{
	char msg[MSG_MAX];
	int n = 0;

	/* a runaway file must not become a runaway list */
	if (c->errors++ >= ERRORS_MAX)
		return;
	if (prefixed)
		n = snprintf(msg, sizeof(msg), "%s", c->prefix);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	diag_push(c, file, line, msg);
}

__attribute__((format(printf, 4, 5))) static void
report_at(struct ctx *c, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, file ? file : c->name, line, false, fmt, ap);
	va_end(ap);
}

static const char *file_of(const struct ctx *c, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;

	return f ? f : c->name;
}

static int line_of(const config_setting_t *s)
{
	return s ? (int)config_setting_source_line(s) : 0;
}

/* about setting s (NULL: the file as a whole), in the current listener */
__attribute__((format(printf, 3, 4))) static void
err(struct ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, file_of(c, s), line_of(s), true, fmt, ap);
	va_end(ap);
}

/* as err, for messages that name their listener themselves */
__attribute__((format(printf, 3, 4))) static void
err_plain(struct ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, file_of(c, s), line_of(s), false, fmt, ap);
	va_end(ap);
}

static int error_cmp(const struct ctx *c, const struct nt_config_error *a,
                     const struct nt_config_error *b)
{
	bool ma = !strcmp(a->file, c->name), mb = !strcmp(b->file, c->name);
	int r;

	if (ma != mb)
		return ma ? -1 : 1;
	r = strcmp(a->file, b->file);
	if (r)
		return r;
	return (a->line > b->line) - (a->line < b->line);
}

/*
 * Errors are found group by group; read in file order they make sense,
 * like a compiler's. A stable insertion sort: there are at most ERRORS_MAX.
 */
static void sort_errors(struct ctx *c)
{
	struct nt_config_error *v, tmp;
	size_t i, j;

	if (!c->diag)
		return;
	v = c->diag->v;
	for (i = c->first + 1; i < c->diag->n; i++) {
		tmp = v[i];
		for (j = i; j > c->first && error_cmp(c, &v[j - 1], &tmp) > 0;
		     j--)
			v[j] = v[j - 1];
		v[j] = tmp;
	}
}

static int finish(struct ctx *c, int r)
{
	char msg[64];

	sort_errors(c);
	if (c->errors > ERRORS_MAX) {
		snprintf(msg, sizeof(msg), "%u more errors not shown",
		         c->errors - ERRORS_MAX);
		diag_push(c, c->name, 0, msg);
	}
	if (c->nomem)
		return -ENOMEM;
	if (r == 0 && c->errors)
		return -EINVAL;
	return r;
}

/* a user's string made safe and short enough to quote in a message */
static const char *esc(char *buf, size_t size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char t[4];
		size_t n = 0;

		if (ch == '"' || ch == '\\') {
			t[n++] = '\\';
			t[n++] = (char)ch;
		} else if (ch < 0x20 || ch > 0x7e) {
			t[n++] = '\\';
			t[n++] = 'x';
			t[n++] = hex[ch >> 4];
			t[n++] = hex[ch & 15];
		} else {
			t[n++] = (char)ch;
		}
		if (o + n + 4 > size) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		memcpy(buf + o, t, n);
		o += n;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- before libconfig -------------------------------------------------- */

/*
 * libconfig 1.5 has three flaws that input can reach: its scanner exit()s
 * the process when it cannot read an @include file (a directory, say) and
 * echoes a stray backslash in an @include name to stdout, and its parser
 * leaks a string token it cannot use. So the text is first walked the way
 * that scanner walks it (strings and comments hide what is in them), each
 * @include is vetted and walked in turn, as the scanner splices its tokens
 * in, and the first misplaced string is found, before libconfig sees any
 * of it.
 */
struct scan {
	const char *file; /* being walked: the main one or an included one */
	int depth;        /* of @include: 0 in the main text */
	int line;
	bool bol;       /* at the start of a line: where @include may be */
	bool blind;     /* stop looking for misplaced strings */
	bool string_ok; /* a string may come next */
	/*
	 * Per bracket not yet closed: LEVEL_BRACE, and for a group the number
	 * of its settings so far.
	 */
	unsigned char *level;
	size_t top;
	unsigned root_size;
	const char *bad; /* the first misplaced string, in the main text */
	int bad_line;    /* where it ends */
	int bad_lines;   /* newlines in it */
	bool failed;     /* libconfig must not run: an @include is wrong */
};

static int read_all(int fd, char **text, size_t *len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL, *p;
	ssize_t got;
	int r;

	for (;;) {
		if (n + 1 >= cap) {
			r = -EFBIG;
			if (cap > FILE_SIZE_MAX)
				goto fail;
			cap = cap ? cap * 2 : 4096;
			r = -ENOMEM;
			p = realloc(buf, cap);
			if (!p)
				goto fail;
			buf = p;
		}
		got = read(fd, buf + n, cap - 1 - n);
		if (got == 0)
			break;
		if (got < 0 && errno == EINTR)
			continue;
		r = -errno;
		if (got < 0)
			goto fail;
		n += (size_t)got;
	}
	r = -EFBIG;
	if (n > FILE_SIZE_MAX)
		goto fail;
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	return r;
}

/*
 * Only a regular file: opening a FIFO would block, and libconfig's scanner
 * exit()s the whole process when a read fails (a directory, say).
 */
static int read_include(const char *path, char **text, size_t *len)
{
	struct stat st;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else
		r = read_all(fd, text, len);
	close(fd);
	return r;
}

static void prescan(struct ctx *c, struct scan *s, const char *text);

/*
 * false if the file cannot be included as it stands. Its text is walked
 * with the includer's scan, so that what it opens, closes and leaves for a
 * string is known after the @include line too.
 */
static bool include_file(struct ctx *c, struct scan *s, const char *path,
                         int line)
{
	const char *file = s->file;
	int depth = s->depth, resume = s->line;
	char e[ESC_MAX], *text = NULL;
	size_t len;
	int r;

	if (++c->includes > INCLUDES_MAX) {
		if (c->includes == INCLUDES_MAX + 1)
			report_at(c, file, line,
			          "too many @include directives (%d at most)",
			          INCLUDES_MAX);
		return false;
	}
	if (depth >= INCLUDE_DEPTH_MAX) {
		report_at(c, file, line,
		          "@include \"%s\" is nested too deeply (%d levels at "
		          "most)",
		          esc(e, sizeof(e), path), INCLUDE_DEPTH_MAX);
		return false;
	}
	r = read_include(path, &text, &len);
	if (r == -ENOMEM)
		c->nomem = true;
	else if (r == -EINVAL)
		report_at(c, file, line,
		          "cannot include \"%s\": not a regular file",
		          esc(e, sizeof(e), path));
	else if (r < 0)
		report_at(c, file, line, "cannot include \"%s\": %s",
		          esc(e, sizeof(e), path), strerror(-r));
	else {
		s->file = path;
		s->depth = depth + 1;
		prescan(c, s, text);
		s->file = file;
		s->depth = depth;
		s->line = resume;
	}
	free(text);
	return r == 0;
}

/*
 * At p, just past `@include "`: take the name as the scanner does (only \\
 * and \" are escapes) and return where scanning resumes.
 */
static const char *include_directive(struct ctx *c, struct scan *s,
                                     const char *p)
{
	char path[PATH_MAX];
	int start = s->line;
	size_t n = 0;
	bool bad = false;

	for (; *p && *p != '"'; p++) {
		char ch = *p;

		if (ch == '\\' && (p[1] == '\\' || p[1] == '"'))
			ch = *++p;
		else if (ch == '\\')
			bad = true;
		else if (ch == '\n')
			s->line++;
		if (n + 1 < sizeof(path))
			path[n++] = ch;
		else
			bad = true;
	}
	path[n] = '\0';
	if (!*p)
		report_at(c, s->file, start, "unterminated @include");
	else if (bad)
		report_at(c, s->file, start, "bad @include file name");
	if (!*p || bad || !include_file(c, s, path, start))
		s->failed = true;
	return *p ? p + 1 : p;
}

/* `^[ \t]*@include[ \t]+"` as the scanner matches it */
static const char *include_open(const char *p)
{
	p += strspn(p, " \t");
	if (strncmp(p, "@include", 8) != 0 || (p[8] != ' ' && p[8] != '\t'))
		return NULL;
	p += 8 + strspn(p + 8, " \t");
	return *p == '"' ? p + 1 : NULL;
}

/* past the end of the comment that opened before p */
static const char *skip_comment(const char *p, int *line)
{
	const char *end = strstr(p, "*/");
	const char *stop = end ? end + 2 : p + strlen(p);

	for (; p < stop; p++)
		*line += *p == '\n';
	return stop;
}

/* the quote that ends the string opened before p, or the end of the text */
static const char *string_end(const char *p, int *line)
{
	for (; *p && *p != '"'; p++) {
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		else if (*p == '\n')
			(*line)++;
	}
	return p;
}

/*
 * A string may follow '=' or ':', open a list or an array, follow a comma
 * inside one, or follow another string (they are joined). Anywhere else the
 * parser stops at it, and that is when libconfig 1.5 loses it.
 */
static const char *scan_string(struct ctx *c, struct scan *s, const char *p)
{
	int start = s->line;
	const char *end = string_end(p + 1, &s->line);

	/*
	 * libconfig would quietly drop it, and all that it swallowed; at the
	 * end of an included file its scanner would even go on reading the
	 * includer's text as the string's: it must not run then.
	 */
	if (!*end) {
		report_at(c, s->file, start, "unterminated string");
		s->failed |= s->depth > 0;
	} else if (!s->blind && !s->string_ok && !s->bad && s->depth > 0) {
		/*
		 * libconfig reads an included file itself, so it cannot be
		 * cut short before the string like the main text: say what
		 * libconfig would have said, and do not run it.
		 */
		report_at(c, s->file, s->line, "syntax error");
		s->failed = true;
		s->blind = true;
	} else if (!s->blind && !s->string_ok && !s->bad) {
		s->bad = p;
		s->bad_line = s->line; /* the parser sees it where it ends */
		s->bad_lines = s->line - start;
	}
	s->string_ok = true;
	return *end ? end + 1 : end;
}

/*
 * libconfig looks a new setting's name up among its group's settings one
 * by one, so a huge group takes quadratic time. No valid group is large.
 */
static void count_setting(struct ctx *c, struct scan *s)
{
	unsigned n;

	if (!s->level)
		return;
	if (s->top == 0) {
		n = ++s->root_size;
	} else {
		unsigned char *l = &s->level[s->top - 1];

		/* stored up to GROUP_SIZE_MAX + 1: reported once */
		n = (*l & ~LEVEL_BRACE) + 1u;
		if (n <= GROUP_SIZE_MAX + 1)
			*l = (unsigned char)((*l & LEVEL_BRACE) | n);
	}
	if (n == GROUP_SIZE_MAX + 1) {
		report_at(c, s->file, s->line,
		          "too many settings in one group (%d at most)",
		          GROUP_SIZE_MAX);
		s->failed = true;
	}
}

static void scan_punct(struct ctx *c, struct scan *s, char ch)
{
	switch (ch) {
	case '(':
	case '[':
	case '{':
		if (!s->level || s->top == DEPTH_MAX) {
			s->blind = true;
			break;
		}
		s->level[s->top++] = ch == '{' ? LEVEL_BRACE : 0;
		s->string_ok = ch != '{';
		break;
	case ')':
	case ']':
	case '}':
		/* a mismatch is a syntax error: nothing after it matters */
		if (s->top == 0)
			s->blind = true;
		else
			s->top--;
		s->string_ok = false;
		break;
	case ',':
		s->string_ok =
		    s->top > 0 && !(s->level[s->top - 1] & LEVEL_BRACE);
		break;
	case '=':
	case ':':
		count_setting(c, s);
		s->string_ok = true;
		break;
	case ' ':
	case '\t':
	case '\r':
	case '\f':
		break;
	default: /* names, numbers, ';' */
		s->string_ok = false;
	}
}

static void prescan(struct ctx *c, struct scan *s, const char *text)
{
	const char *p = text, *q;

	s->line = 1;
	s->bol = true;
	while (*p) {
		if (s->bol && (q = include_open(p))) {
			p = include_directive(c, s, q);
			s->bol = false;
			continue;
		}
		s->bol = false;
		if (*p == '\n') {
			s->line++;
			s->bol = true;
			p++;
		} else if (*p == '"') {
			p = scan_string(c, s, p);
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			/* as for a string: the includer's text would be read
			 * as the rest of the comment */
			if (s->depth > 0 && !strstr(p + 2, "*/")) {
				report_at(c, s->file, s->line,
				          "unterminated comment");
				s->failed = true;
			}
			p = skip_comment(p + 2, &s->line);
		} else {
			scan_punct(c, s, *p++);
		}
	}
}

/*
 * Parse with libconfig. Given a misplaced string, libconfig sees the text
 * up to it and then, on the line where the string ended, a byte that no
 * rule takes: it fails there, or earlier, as it would have, with nothing
 * to leak.
 */
static bool parse(struct ctx *c, config_t *lc, const char *text,
                  const struct scan *s)
{
	size_t n = s->bad ? (size_t)(s->bad - text) : 0;
	char *head = NULL;
	bool ok;

	if (s->bad) {
		head = malloc(n + (size_t)s->bad_lines + 2);
		if (!head) {
			c->nomem = true;
			return false;
		}
		memcpy(head, text, n);
		memset(head + n, '\n', (size_t)s->bad_lines);
		memcpy(head + n + s->bad_lines, "\x01", 2);
		text = head;
	}
	ok = config_read_string(lc, text);
	free(head);
	if (!ok)
		report_at(c, config_error_file(lc), config_error_line(lc), "%s",
		          config_error_text(lc) ? config_error_text(lc)
		                                : "syntax error");
	else if (s->bad)
		report_at(c, NULL, s->bad_line, "syntax error");
	return ok && !s->bad;
}

/* ---- settings ----------------------------------------------------------- */

static unsigned edit_distance(const char *a, const char *b)
{
	unsigned d[KEY_LEN_MAX + 1][KEY_LEN_MAX + 1];
	size_t la = strlen(a), lb = strlen(b), i, j;

	if (la > KEY_LEN_MAX || lb > KEY_LEN_MAX)
		return UINT_MAX;
	for (i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned v = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			/* a swapped pair is one typo, not two */
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

static void unknown_key(struct ctx *c, const config_setting_t *s,
                        const char *const keys[], size_t n, const char *where)
{
	const char *name = config_setting_name(s), *best = NULL;
	unsigned bestd = 3;
	size_t i;

	/* only counted now: spare a runaway file the suggestions */
	if (c->errors >= ERRORS_MAX) {
		c->errors++;
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned d = edit_distance(name, keys[i]);

		if (d < bestd) {
			bestd = d;
			best = keys[i];
		}
	}
	if (best)
		err_plain(c, s,
		          "unknown setting '%.40s'%s (did you mean '%s'?)",
		          name, where, best);
	else
		err_plain(c, s, "unknown setting '%.40s'%s", name, where);
}

/*
 * Sort group g's members into slot[] by keys[] (libconfig refuses the same
 * name twice in a group) and report every member that is not a known key.
 */
static void members(struct ctx *c, const config_setting_t *g,
                    const char *const keys[], size_t n,
                    const config_setting_t *slot[], const char *where)
{
	int i, len = config_setting_length(g);

	for (i = 0; i < len; i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *name = config_setting_name(s);
		size_t k;

		for (k = 0; k < n && name && strcmp(name, keys[k]); k++)
			;
		if (k < n)
			slot[k] = s;
		else if (name)
			unknown_key(c, s, keys, n, where);
	}
}

/* "timeouts.idle": the setting's name as the user would spell its path */
static const char *path_of(char *buf, size_t size, const char *group,
                           const config_setting_t *s)
{
	snprintf(buf, size, "%s%.40s", group, config_setting_name(s));
	return buf;
}

static bool is_group(struct ctx *c, const config_setting_t *s, const char *path)
{
	if (config_setting_is_group(s))
		return true;
	err(c, s, "'%s' must be a group", path);
	return false;
}

/* false when s is absent or wrong; *out then keeps its default */
static bool get_int(struct ctx *c, const config_setting_t *s, const char *group,
                    long long min, long long max, long long *out)
{
	char name[64];
	long long v;

	if (!s)
		return false;
	path_of(name, sizeof(name), group, s);
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		err(c, s, "'%s' must be an integer", name);
		return false;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		err(c, s, "%s %lld is out of range (%lld..%lld)", name, v, min,
		    max);
		return false;
	}
	*out = v;
	return true;
}

static void set_uint(struct ctx *c, const config_setting_t *s,
                     const char *group, long long min, long long max,
                     unsigned *out)
{
	long long v;

	if (get_int(c, s, group, min, max, &v))
		*out = (unsigned)v;
}

static void set_bool(struct ctx *c, const config_setting_t *s,
                     const char *group, bool *out)
{
	char name[64];

	if (!s)
		return;
	if (config_setting_type(s) == CONFIG_TYPE_BOOL)
		*out = config_setting_get_bool(s);
	else
		err(c, s, "'%s' must be true or false",
		    path_of(name, sizeof(name), group, s));
}

static const char *get_str(struct ctx *c, const config_setting_t *s,
                           const char *group)
{
	char name[64];
	const char *v;

	if (!s)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		err(c, s, "'%s' must be a string",
		    path_of(name, sizeof(name), group, s));
		return NULL;
	}
	v = config_setting_get_string(s);
	return v ? v : "";
}

/* index of s in names[], or -1 */
static int lookup(const char *s, const char *const names[], size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

static bool all_of(const char *s, const char *set, size_t max)
{
	size_t n = strlen(s);

	return n >= 1 && n <= max && strspn(s, set) == n;
}

/* ---- top level ---------------------------------------------------------- */

static void parse_log_level(struct ctx *c, const config_setting_t *s,
                            struct nt_config *cfg)
{
	const char *v = get_str(c, s, "");
	char e[ESC_MAX];

	if (v && nt_log_level_parse(v, &cfg->log_level) < 0)
		err(c, s,
		    "unknown log_level \"%s\" (expected \"error\", "
		    "\"warning\", \"notice\", \"info\" or \"debug\")",
		    esc(e, sizeof(e), v));
}

static void parse_user(struct ctx *c, const config_setting_t *s,
                       struct nt_config *cfg)
{
	const char *v = get_str(c, s, "");
	size_t n;

	if (!v)
		return;
	n = strlen(v);
	if (n == 0)
		err(c, s, "'user' must not be empty");
	else if (n >= sizeof(cfg->user))
		err(c, s, "user is %zu bytes long (%zu at most)", n,
		    sizeof(cfg->user) - 1);
	else
		memcpy(cfg->user, v, n + 1);
}

static void parse_limits(struct ctx *c, const config_setting_t *g,
                         struct nt_config *cfg)
{
	const config_setting_t *k[LIM_N] = {0};
	long long v;

	if (!g || !is_group(c, g, "limits"))
		return;
	members(c, g, limit_keys, LIM_N, k, " in 'limits'");
	set_uint(c, k[LIM_PER_IP], "limits.", 0, NT_MAX_CONNS,
	         &cfg->limits.per_ip);
	set_uint(c, k[LIM_PER_IP_PREFIX6], "limits.", 1, 128,
	         &cfg->limits.per_ip_prefix6);
	if (get_int(c, k[LIM_MAX_OUTPUT], "limits.", NT_MIN_MAX_OUTPUT,
	            NT_MAX_MAX_OUTPUT, &v))
		cfg->limits.max_output = (size_t)v;
}

/*
 * The global timeouts, or a listener's overrides (where is then its label
 * and shutdown_grace is refused). set[] records what was given.
 */
static void parse_timeouts(struct ctx *c, const config_setting_t *g,
                           const char *where, struct nt_timeouts *t,
                           bool set[T_N])
{
	const config_setting_t *k[T_N] = {0};
	unsigned *dst[T_N] = {&t->idle, &t->write, &t->line,
	                      &t->shutdown_grace};
	char in[LABEL_MAX + 32];
	size_t i;

	if (!g || !is_group(c, g, "timeouts"))
		return;
	snprintf(in, sizeof(in), " in 'timeouts'%s%s", where ? " of " : "",
	         where ? where : "");
	members(c, g, timeout_keys, T_N, k, in);
	if (where && k[T_GRACE]) {
		err(c, k[T_GRACE],
		    "timeouts.shutdown_grace can only be set in the global "
		    "'timeouts'");
		k[T_GRACE] = NULL;
	}
	for (i = 0; i < T_N; i++) {
		long long v;

		if (get_int(c, k[i], "timeouts.", 0, NT_MAX_TIMEOUT, &v)) {
			*dst[i] = (unsigned)v;
			set[i] = true;
		}
	}
}

static void motd_append(char *dst, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len < NT_MOTD_MAX)
		memcpy(dst + *len, s, NT_MIN(n, NT_MOTD_MAX - *len));
	*len += n;
}

static const char *const flaw_names[] = {
    [NT_TEXT_FLAW_UTF8] = "invalid UTF-8",
    [NT_TEXT_FLAW_CONTROL] = "a control character",
    [NT_TEXT_FLAW_BIDI] = "a bidirectional control",
};

/*
 * Text the chat shows users as it is: it must already be what cleaned user
 * text is (text.c), or a terminal escape or a stray CR in it would reach
 * every client. "\n" separates lines and is the one control allowed.
 */
static bool text_ok(struct ctx *c, const config_setting_t *s, const char *key,
                    const char *v)
{
	size_t len = strlen(v), i = 0, off, n;
	char bad[8], e[ESC_MAX];

	while (i < len) {
		size_t line = strcspn(v + i, "\n");
		enum nt_text_flaw f =
		    nt_text_find_flaw((const uint8_t *)v + i, line, &off, &n);

		if (f != NT_TEXT_FLAW_NONE) {
			snprintf(bad, sizeof(bad), "%.*s", (int)n, v + i + off);
			err(c, s,
			    "%s has %s (\"%s\") at byte %zu: text shown to "
			    "users must be printable UTF-8",
			    key, flaw_names[f], esc(e, sizeof(e), bad),
			    i + off);
			return false;
		}
		i += line + 1;
	}
	return true;
}

/* a string, or a list of lines to join with "\n" */
static void parse_motd(struct ctx *c, const config_setting_t *s, char *motd)
{
	static const char *const bad =
	    "'chat.motd' must be a string or a list of strings";
	char buf[NT_MOTD_MAX], key[32];
	size_t len = 0;
	bool ok = true;
	int i, n;

	if (!s)
		return;
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		ok = text_ok(c, s, "chat.motd", config_setting_get_string(s));
		motd_append(buf, &len, config_setting_get_string(s));
	} else if (config_setting_is_list(s) || config_setting_is_array(s)) {
		n = config_setting_length(s);
		for (i = 0; i < n; i++) {
			const config_setting_t *e =
			    config_setting_get_elem(s, i);

			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				err(c, e, "%s", bad);
				return;
			}
			/* libconfig may place the last string on the line
			 * after it: its number finds it too */
			snprintf(key, sizeof(key), "chat.motd string %d",
			         i + 1);
			ok &= text_ok(c, e, key, config_setting_get_string(e));
			if (i > 0)
				motd_append(buf, &len, "\n");
			motd_append(buf, &len, config_setting_get_string(e));
		}
	} else {
		err(c, s, "%s", bad);
		return;
	}
	if (!ok)
		return;
	if (len > NT_MOTD_MAX) {
		err(c, s, "chat.motd is %zu bytes long (%d at most)", len,
		    NT_MOTD_MAX);
		return;
	}
	memcpy(motd, buf, len);
	motd[len] = '\0';
}

static void parse_default_room(struct ctx *c, const config_setting_t *s,
                               struct nt_chat_conf *chat)
{
	const char *v = get_str(c, s, "chat.");
	char e[ESC_MAX];

	if (!v)
		return;
	if (!all_of(v, "abcdefghijklmnopqrstuvwxyz0123456789_-", NT_ROOM_MAX))
		err(c, s,
		    "chat.default_room \"%s\" is not a valid room name "
		    "(1..%d of a-z 0-9 _ -)",
		    esc(e, sizeof(e), v), NT_ROOM_MAX);
	else
		strcpy(chat->default_room, v);
}

static void parse_flood(struct ctx *c, const config_setting_t *g,
                        struct nt_chat_conf *chat)
{
	const config_setting_t *k[F_N] = {0};

	if (!g || !is_group(c, g, "chat.flood"))
		return;
	members(c, g, flood_keys, F_N, k, " in 'chat.flood'");
	set_uint(c, k[F_RATE], "chat.flood.", 1, 10000, &chat->flood_rate);
	set_uint(c, k[F_BURST], "chat.flood.", 1, 100000, &chat->flood_burst);
}

static void parse_chat(struct ctx *c, const config_setting_t *g,
                       struct nt_chat_conf *chat)
{
	const config_setting_t *k[C_N] = {0};

	if (!g || !is_group(c, g, "chat"))
		return;
	members(c, g, chat_keys, C_N, k, " in 'chat'");
	parse_motd(c, k[C_MOTD], chat->motd);
	parse_default_room(c, k[C_ROOM], chat);
	set_uint(c, k[C_MAX_LINE], "chat.", 64, 65536, &chat->max_line);
	set_uint(c, k[C_MAX_NICK], "chat.", 1, NT_NICK_LIMIT, &chat->max_nick);
	set_uint(c, k[C_MAX_ROOMS], "chat.", 1, 100000, &chat->max_rooms);
	parse_flood(c, k[C_FLOOD], chat);
}

/* "line 12", or "other.conf:12" when s is in another file than ref */
static void place_of(char *buf, size_t size, const struct ctx *c,
                     const config_setting_t *s, const config_setting_t *ref)
{
	if (!strcmp(file_of(c, s), file_of(c, ref)))
		snprintf(buf, size, "line %d", line_of(s));
	else
		snprintf(buf, size, "%s:%d", file_of(c, s), line_of(s));
}

/*
 * max_output must hold need bytes that the server sends on its own (what),
 * or it would disconnect a client for them. The error sits on max_output's
 * line and says where the chat key that sets need is (setting: its name,
 * and its value if that helps). Defaults cannot clash: both settings are
 * in the file when this fails.
 */
static void need_max_output(struct ctx *c, const config_setting_t *limits,
                            const config_setting_t *chat,
                            const struct nt_config *cfg, size_t need,
                            const char *what, const char *key,
                            const char *setting)
{
	const config_setting_t *mo, *k;
	char place[PATH_MAX + 16];

	if (cfg->limits.max_output >= need)
		return;
	mo = limits ? config_setting_get_member(limits, "max_output") : NULL;
	k = chat ? config_setting_get_member(chat, key) : NULL;
	place_of(place, sizeof(place), c, k, mo);
	err(c, mo,
	    "limits.max_output (%zu) must hold %s: at least %zu with %s at %s",
	    cfg->limits.max_output, what, need, setting, place);
}

/*
 * A room line too big for a reader's queue would disconnect every reader
 * of the room, so max_output must hold the longest line max_line allows,
 * from the longest nick any reload may leave in place. A new session's
 * greeting (one send: the welcome, the MOTD, the nick hint, the room line)
 * must fit an empty queue too, or every client would be disconnected as it
 * connects; so must the notice of a new MOTD after a reload, which is
 * shorter. Counted for the longest nick and room name.
 */
static void check_max_output(struct ctx *c, const config_setting_t *limits,
                             const config_setting_t *chat,
                             const struct nt_config *cfg)
{
	size_t motd = nt_text_motd_lines(cfg->chat.motd, NULL);
	char max_line[48];

	snprintf(max_line, sizeof(max_line), "chat.max_line %u",
	         cfg->chat.max_line);
	need_max_output(c, limits, chat, cfg,
	                NT_TEXT_SAY_MAX(cfg->chat.max_line, NT_NICK_LIMIT),
	                "one chat line", "max_line", max_line);
	need_max_output(c, limits, chat, cfg,
	                NT_TEXT_GREETING_MAX(motd, NT_NICK_LIMIT),
	                "the greeting", "motd", "chat.motd");
}

/* ---- listeners ---------------------------------------------------------- */

/* Sets the label that prefixes every message about this listener. */
static void parse_name(struct ctx *c, const config_setting_t *g, size_t idx,
                       struct nt_listener_conf *l, struct lx *x, char *label)
{
	const config_setting_t *s = config_setting_get_member(g, "name");
	const char *v;
	char e[ESC_MAX];

	snprintf(label, LABEL_MAX, "listener #%zu", idx + 1);
	snprintf(c->prefix, sizeof(c->prefix), "%s: ", label);
	if (!s) {
		err(c, g, "missing 'name'");
		return;
	}
	v = get_str(c, s, "");
	if (!v)
		return;
	if (!all_of(v,
	            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	            "0123456789_.-",
	            NT_NAME_MAX)) {
		err(c, s,
		    "name \"%s\" is not valid (1..%d of A-Z a-z 0-9 _ . -)",
		    esc(e, sizeof(e), v), NT_NAME_MAX);
		return;
	}
	strcpy(l->name, v);
	x->named = true;
	snprintf(label, LABEL_MAX, "listener \"%s\"", v);
	snprintf(c->prefix, sizeof(c->prefix), "%s: ", label);
}

static void parse_service(struct ctx *c, const config_setting_t *g,
                          const config_setting_t *s, struct nt_listener_conf *l)
{
	const char *v;
	char e[ESC_MAX];
	int i;

	if (!s) {
		err(c, g, "missing 'service'");
		return;
	}
	v = get_str(c, s, "");
	if (!v)
		return;
	i = nt_service_find(v);
	if (i < 0) {
		char names[128];
		nt_service_names(names, sizeof(names));
		err(c, s, "unknown service \"%s\" (expected %s)",
		    esc(e, sizeof(e), v), names);
	} else
		l->service = (enum nt_service)i;
}

/* false when the family is unknown: nothing that depends on it is checked */
static bool parse_family(struct ctx *c, const config_setting_t *k[],
                         struct nt_listener_conf *l)
{
	const char *v;
	char e[ESC_MAX];
	int i;

	if (!k[L_FAMILY]) {
		l->family = k[L_PATH] ? NT_FAMILY_UNIX : NT_FAMILY_IPV4;
		return true;
	}
	v = get_str(c, k[L_FAMILY], "");
	if (!v)
		return false;
	i = lookup(v, family_names, NT_ARRAY_SIZE(family_names));
	if (i < 0) {
		err(c, k[L_FAMILY],
		    "unknown family \"%s\" (expected \"ipv4\", \"ipv6\", "
		    "\"any\" or \"unix\")",
		    esc(e, sizeof(e), v));
		return false;
	}
	l->family = (enum nt_family)i;
	return true;
}

static void forbid(struct ctx *c, const config_setting_t *s,
                   const struct nt_listener_conf *l)
{
	if (s)
		err(c, s, "'%s' is not allowed with family \"%s\"",
		    config_setting_name(s), nt_family_name(l->family));
}

static void parse_address(struct ctx *c, const config_setting_t *s,
                          struct nt_listener_conf *l, struct lx *x)
{
	const char *v;
	char e[ESC_MAX];

	x->af = l->family == NT_FAMILY_IPV4 ? AF_INET : AF_INET6;
	strcpy(l->address, x->af == AF_INET ? "0.0.0.0" : "::");
	if (s) {
		v = get_str(c, s, "");
		if (!v)
			return;
		if (strlen(v) > NT_ADDR_MAX ||
		    inet_pton(x->af, v, x->addr) != 1) {
			err(c, s, "address \"%s\" is not a numeric %s address",
			    esc(e, sizeof(e), v),
			    x->af == AF_INET ? "IPv4" : "IPv6");
			return;
		}
		strcpy(l->address, v);
	}
	inet_pton(x->af, l->address, x->addr);
}

static void parse_ip(struct ctx *c, const config_setting_t *g,
                     const config_setting_t *k[], struct nt_listener_conf *l,
                     struct lx *x)
{
	long long v;

	forbid(c, k[L_PATH], l);
	forbid(c, k[L_MODE], l);
	parse_address(c, k[L_ADDRESS], l, x);
	if (!k[L_PORT])
		err(c, g, "missing 'port'");
	else if (get_int(c, k[L_PORT], "", 0, 65535, &v))
		l->port = (uint16_t)v;
	l->v6only = l->family == NT_FAMILY_IPV6;
	if (l->family == NT_FAMILY_IPV6)
		set_bool(c, k[L_V6ONLY], "", &l->v6only);
	else if (k[L_V6ONLY])
		err(c, k[L_V6ONLY],
		    "'v6only' is only allowed with family \"ipv6\"");
	set_bool(c, k[L_REUSEPORT], "", &l->reuseport);
}

/* libconfig 1.5 has no octal integers, so the mode is a string: "0660" */
static void parse_mode(struct ctx *c, const config_setting_t *s,
                       struct nt_listener_conf *l)
{
	const char *v;
	char e[ESC_MAX];
	unsigned long m = 0;
	size_t i;

	if (!s)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		err(c, s,
		    "'mode' must be a string of octal digits such as "
		    "\"0660\"");
		return;
	}
	v = config_setting_get_string(s);
	if (!all_of(v, "01234567", 64)) {
		err(c, s, "mode \"%s\" is not an octal number such as \"0660\"",
		    esc(e, sizeof(e), v));
		return;
	}
	for (i = 0; v[i] && m <= 0777; i++)
		m = m * 8 + (unsigned long)(v[i] - '0');
	if (m > 0777) {
		err(c, s, "mode \"%s\" is out of range (0..0777)",
		    esc(e, sizeof(e), v));
		return;
	}
	l->mode = (mode_t)m;
}

static void parse_unix(struct ctx *c, const config_setting_t *g,
                       const config_setting_t *k[], struct nt_listener_conf *l)
{
	const char *v;
	size_t n;

	forbid(c, k[L_ADDRESS], l);
	forbid(c, k[L_PORT], l);
	forbid(c, k[L_V6ONLY], l);
	forbid(c, k[L_REUSEPORT], l);
	parse_mode(c, k[L_MODE], l);
	if (!k[L_PATH]) {
		err(c, g, "missing 'path'");
		return;
	}
	v = get_str(c, k[L_PATH], "");
	if (!v)
		return;
	n = strlen(v);
	if (n == 0)
		err(c, k[L_PATH], "'path' must not be empty");
	else if (n > NT_PATH_MAX)
		err(c, k[L_PATH], "path is %zu bytes long (%d at most)", n,
		    NT_PATH_MAX);
	else
		memcpy(l->path, v, n + 1);
}

static void listener_defaults(struct nt_listener_conf *l)
{
	memset(l, 0, sizeof(*l));
	l->mode = 0660;
	l->backlog = 511;
	l->reuseaddr = true;
}

static void parse_listener(struct ctx *c, const config_setting_t *g, size_t idx,
                           struct nt_listener_conf *l, struct lx *x)
{
	const config_setting_t *k[L_N] = {0};
	char label[LABEL_MAX], where[LABEL_MAX + 8];
	unsigned errors = c->errors;
	long long v;

	listener_defaults(l);
	l->line = line_of(g);
	x->file = file_of(c, g);
	parse_name(c, g, idx, l, x, label);
	snprintf(where, sizeof(where), " in %s", label);
	members(c, g, listener_keys, L_N, k, where);
	parse_service(c, g, k[L_SERVICE], l);
	if (parse_family(c, k, l)) {
		if (l->family == NT_FAMILY_UNIX)
			parse_unix(c, g, k, l);
		else
			parse_ip(c, g, k, l, x);
	}
	if (get_int(c, k[L_BACKLOG], "", 1, NT_MAX_BACKLOG, &v))
		l->backlog = (int)v;
	set_bool(c, k[L_REUSEADDR], "", &l->reuseaddr);
	parse_timeouts(c, k[L_TIMEOUTS], label, &x->t, x->set);
	c->prefix[0] = '\0';
	x->ok = c->errors == errors;
}

static void format_endpoint(char *buf, size_t size,
                            const struct nt_listener_conf *l)
{
	char e[ESC_MAX];

	if (l->family == NT_FAMILY_UNIX)
		snprintf(buf, size, "%s", esc(e, sizeof(e), l->path));
	else if (l->family == NT_FAMILY_IPV4)
		snprintf(buf, size, "%s:%u", l->address, l->port);
	else
		snprintf(buf, size, "[%s]:%u", l->address, l->port);
}

/* "line 12", or "other.conf:12" when a and b come from different files */
static void format_place(char *buf, size_t size, const struct lx *a,
                         const struct nt_listener_conf *la, const struct lx *b)
{
	if (!strcmp(a->file, b->file))
		snprintf(buf, size, "line %d", la->line);
	else
		snprintf(buf, size, "%s:%d", a->file, la->line);
}

/* ipv6 and any are both AF_INET6 sockets, so they can collide */
static bool same_endpoint(const struct nt_listener_conf *a, const struct lx *xa,
                          const struct nt_listener_conf *b, const struct lx *xb)
{
	if ((a->family == NT_FAMILY_UNIX) != (b->family == NT_FAMILY_UNIX))
		return false;
	if (a->family == NT_FAMILY_UNIX)
		return !strcmp(a->path, b->path);
	return xa->af == xb->af && a->port == b->port && a->port != 0 &&
	       !memcmp(xa->addr, xb->addr, xa->af == AF_INET ? 4 : 16);
}

static void check_duplicate(struct ctx *c, const struct nt_config *cfg,
                            const struct lx *xs, size_t i)
{
	const struct nt_listener_conf *L = cfg->listeners, *b = &L[i];
	char place[PATH_MAX], ep[ESC_MAX + 16];
	size_t j;

	for (j = 0; j < i && xs[i].named; j++) {
		if (!xs[j].named || strcmp(L[j].name, b->name))
			continue;
		format_place(place, sizeof(place), &xs[j], &L[j], &xs[i]);
		report_at(
		    c, xs[i].file, b->line,
		    "duplicate listener name \"%s\" (first defined at %s)",
		    b->name, place);
		break;
	}
	for (j = 0; j < i && xs[i].ok; j++) {
		if (!xs[j].ok || !same_endpoint(&L[j], &xs[j], b, &xs[i]))
			continue;
		format_place(place, sizeof(place), &xs[j], &L[j], &xs[i]);
		format_endpoint(ep, sizeof(ep), b);
		report_at(c, xs[i].file, b->line,
		          "listener \"%s\": %s is already used by listener "
		          "\"%s\" (%s)",
		          b->name, ep, L[j].name, place);
		break;
	}
}

static void parse_listeners(struct ctx *c, const config_setting_t *s,
                            struct nt_config *cfg, struct lx **xs)
{
	int i, n;

	if (!s) {
		err(c, NULL, "missing 'listeners'");
		return;
	}
	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		err(c, s, "'listeners' must be a list of groups");
		return;
	}
	n = config_setting_length(s);
	if (n == 0) {
		err(c, s,
		    "'listeners' is empty (at least one listener is "
		    "required)");
		return;
	}
	if (n > NT_LISTENERS_MAX) {
		err(c, s, "'listeners' has %d entries (%d at most)", n,
		    NT_LISTENERS_MAX);
		return;
	}
	cfg->listeners = calloc((size_t)n, sizeof(*cfg->listeners));
	*xs = calloc((size_t)n, sizeof(**xs));
	if (!cfg->listeners || !*xs) {
		c->nomem = true;
		return;
	}
	cfg->n_listeners = (size_t)n;
	for (i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(s, i);

		if (config_setting_is_group(g))
			parse_listener(c, g, (size_t)i, &cfg->listeners[i],
			               &(*xs)[i]);
		else
			err(c, g, "listener #%d is not a group", i + 1);
	}
	for (i = 1; i < n; i++)
		check_duplicate(c, cfg, *xs, (size_t)i);
}

/* the global timeouts may come after the listeners in the file */
static void resolve_timeouts(struct nt_config *cfg, const struct lx *xs)
{
	size_t i;

	for (i = 0; i < cfg->n_listeners; i++) {
		struct nt_timeouts *t = &cfg->listeners[i].timeouts;

		*t = cfg->timeouts;
		if (xs[i].set[T_IDLE])
			t->idle = xs[i].t.idle;
		if (xs[i].set[T_WRITE])
			t->write = xs[i].t.write;
		if (xs[i].set[T_LINE])
			t->line = xs[i].t.line;
	}
}

/* ---- loading ------------------------------------------------------------ */

static struct nt_config *config_new(const char *name)
{
	struct nt_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	atomic_init(&cfg->refs, 1);
	cfg->file = strdup(name);
	if (!cfg->file) {
		free(cfg);
		return NULL;
	}
	cfg->max_connections = 4096;
	cfg->log_level = NT_LOG_INFO;
	cfg->limits.per_ip = 64;
	cfg->limits.per_ip_prefix6 = 64;
	cfg->limits.max_output = 256 * 1024;
	cfg->timeouts = (struct nt_timeouts){
	    .idle = 300, .write = 30, .line = 30, .shutdown_grace = 5};
	strcpy(cfg->chat.motd, DEFAULT_MOTD);
	strcpy(cfg->chat.default_room, DEFAULT_ROOM);
	cfg->chat.max_line = 512;
	cfg->chat.max_nick = 24;
	cfg->chat.max_rooms = 1000;
	cfg->chat.flood_rate = 5;
	cfg->chat.flood_burst = 20;
	return cfg;
}

static void parse_root(struct ctx *c, const config_setting_t *root,
                       struct nt_config *cfg, struct lx **xs)
{
	const config_setting_t *k[R_N] = {0};
	bool set[T_N] = {0};

	members(c, root, root_keys, R_N, k, "");
	set_uint(c, k[R_WORKERS], "", 0, NT_MAX_WORKERS, &cfg->workers);
	set_uint(c, k[R_MAXCONN], "", 1, NT_MAX_CONNS, &cfg->max_connections);
	parse_log_level(c, k[R_LOGLEVEL], cfg);
	parse_user(c, k[R_USER], cfg);
	set_bool(c, k[R_CORE_DUMPS], "", &cfg->core_dumps);
	parse_limits(c, k[R_LIMITS], cfg);
	parse_timeouts(c, k[R_TIMEOUTS], NULL, &cfg->timeouts, set);
	parse_chat(c, k[R_CHAT], &cfg->chat);
	check_max_output(c, k[R_LIMITS], k[R_CHAT], cfg);
	parse_listeners(c, k[R_LISTENERS], cfg, xs);
	if (*xs)
		resolve_timeouts(cfg, *xs);
}

static int load(struct ctx *c, const char *text, struct nt_config **out)
{
	struct nt_config *cfg = NULL;
	struct scan s = {.file = c->name};
	struct lx *xs = NULL;
	config_t lc;

	config_init(&lc);
	s.level = malloc(DEPTH_MAX);
	if (!s.level) {
		c->nomem = true;
		goto fail;
	}
	prescan(c, &s, text);
	if (s.failed || c->nomem || !parse(c, &lc, text, &s))
		goto fail;
	cfg = config_new(c->name);
	if (!cfg) {
		c->nomem = true;
		goto fail;
	}
	parse_root(c, config_root_setting(&lc), cfg, &xs);
	if (c->errors || c->nomem)
		goto fail;
	*out = cfg;
	cfg = NULL;
fail:
	nt_config_unref(cfg);
	free(s.level);
	free(xs);
	config_destroy(&lc);
	return finish(c, 0);
}

static void ctx_init(struct ctx *c, struct nt_config_diag *diag,
                     const char *name)
{
	memset(c, 0, sizeof(*c));
	c->diag = diag;
	c->name = name;
	c->first = diag ? diag->n : 0;
}

/* libconfig reads a string only up to a NUL; a file must not hide one */
static int find_nul(const char *text, size_t len)
{
	const char *nul = memchr(text, '\0', len), *p;
	int line = 1;

	if (!nul)
		return 0;
	for (p = text; p < nul; p++)
		line += *p == '\n';
	return line;
}

static int read_main(const char *path, char **text, size_t *len)
{
	struct stat st;
	int fd, r;

	/* blocking, and not only regular files: "-c /dev/stdin" works */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	else
		r = read_all(fd, text, len);
	close(fd);
	return r;
}

int nt_config_load_file(const char *path, struct nt_config **out,
                        struct nt_config_diag *diag)
{
	struct ctx c;
	char *text = NULL;
	size_t len;
	int r, line;

	if (!path || !out)
		return -EINVAL;
	ctx_init(&c, diag, path);
	r = read_main(path, &text, &len);
	if (r < 0) {
		report_at(&c, path, 0, "cannot read: %s", strerror(-r));
		return finish(&c, r);
	}
	line = find_nul(text, len);
	if (line) {
		report_at(&c, path, line, "NUL byte in file");
		r = finish(&c, -EINVAL);
	} else {
		r = load(&c, text, out);
	}
	free(text);
	return r;
}

int nt_config_load_string(const char *text, const char *name,
                          struct nt_config **out, struct nt_config_diag *diag)
{
	struct ctx c;

	if (!text || !out)
		return -EINVAL;
	ctx_init(&c, diag, name ? name : "<string>");
	if (strnlen(text, FILE_SIZE_MAX + 1) > FILE_SIZE_MAX) {
		report_at(&c, NULL, 0, "cannot read: %s", strerror(EFBIG));
		return finish(&c, -EFBIG);
	}
	return load(&c, text, out);
}

/* ---- the rest of the API ------------------------------------------------ */

struct nt_config *nt_config_ref(struct nt_config *cfg)
{
	if (cfg)
		atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
	return cfg;
}

void nt_config_unref(struct nt_config *cfg)
{
	if (!cfg)
		return;
	/* the last holder must see every other holder's reads finished */
	if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(cfg->listeners);
	free(cfg->file);
	free(cfg);
}

int nt_config_error_format(const struct nt_config_error *e, char *buf,
                           size_t size)
{
	const char *file = e->file ? e->file : "?";
	const char *msg = e->msg ? e->msg : "";

	if (e->line > 0)
		return snprintf(buf, size, "%s:%d: %s", file, e->line, msg);
	return snprintf(buf, size, "%s: %s", file, msg);
}

void nt_config_diag_clear(struct nt_config_diag *diag)
{
	size_t i;

	if (!diag)
		return;
	for (i = 0; i < diag->n; i++) {
		free(diag->v[i].file);
		free(diag->v[i].msg);
	}
	free(diag->v);
	diag->v = NULL;
	diag->n = 0;
}

const struct nt_listener_conf *nt_config_listener(const struct nt_config *cfg,
                                                  const char *name)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_listeners; i++)
		if (!strcmp(cfg->listeners[i].name, name))
			return &cfg->listeners[i];
	return NULL;
}

const char *nt_family_name(enum nt_family f)
{
	if ((size_t)f < NT_ARRAY_SIZE(family_names))
		return family_names[f];
	return "unknown";
}
