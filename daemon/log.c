/*
 * The daemon's log: timestamped lines on stderr, or journal entries with
 * fields when systemd connected our stderr to the journal; filtered by
 * level. Each line is formatted into one buffer and written with one
 * write(2), which keeps lines from different threads whole.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"
#include "util.h"

static const struct {
	const char *name;
	enum nt_log_level level;
} log_levels[] = {
    {"error", NT_LOG_ERR},     {"warning", NT_LOG_WARNING},
    {"notice", NT_LOG_NOTICE}, {"info", NT_LOG_INFO},
    {"debug", NT_LOG_DEBUG},
};

const char *nt_log_level_name(enum nt_log_level l)
{
	size_t i;

	for (i = 0; i < NT_ARRAY_SIZE(log_levels); i++)
		if (log_levels[i].level == l)
			return log_levels[i].name;
	return "unknown";
}

int nt_log_level_parse(const char *s, enum nt_log_level *out)
{
	size_t i;

	for (i = 0; s && i < NT_ARRAY_SIZE(log_levels); i++) {
		if (!strcmp(s, log_levels[i].name)) {
			*out = log_levels[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

#define LOG_LINE_MAX  2048
#define LOG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LOG_IDENT_MAX 32

static atomic_int log_level = NT_LOG_INFO;
/* set once by nt_log_init(), before any other thread exists */
static bool log_journal;
static bool log_show_fields;
static char log_ident[LOG_IDENT_MAX] = "natterd";

/* $JOURNAL_STREAM is "DEV:INO" of the stream systemd gave us as stderr */
static bool journal_stream_is_stderr(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (!e || sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void nt_log_init(const char *ident, enum nt_log_level level)
{
	const char *f = getenv("NATTERD_LOG_FIELDS");

	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_journal = journal_stream_is_stderr();
	log_show_fields = f && !strcmp(f, "1");
	nt_log_set_level(level);
}

bool nt_log_to_journal(void)
{
	return log_journal;
}

void nt_log_set_level(enum nt_log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

enum nt_log_level nt_log_get_level(void)
{
	return (enum nt_log_level)atomic_load_explicit(&log_level,
	                                               memory_order_relaxed);
}

static size_t log_timestamp(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	int m = snprintf(buf + n, size - n, ".%03ld ", (long)tv.tv_usec / 1000);
	return n + (m > 0 ? (size_t)m : 0);
}

/* Control characters never reach the terminal or journal raw. */
static void log_scrub(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
}

size_t nt_log_fields(const struct nt_log_ctx *ctx, char out[][NT_LOG_FIELD_MAX],
                     size_t max)
{
	const struct {
		const char *key;
		const char *value;
	} f[NT_LOG_FIELDS_MAX] = {
	    {"MESSAGE_ID", ctx ? ctx->msgid : NULL},
	    {"NATTER_CLIENT", ctx ? ctx->client : NULL},
	    {"NATTER_NICK", ctx ? ctx->nick : NULL},
	    {"NATTER_ROOM", ctx ? ctx->room : NULL},
	    {"NATTER_LISTENER", ctx ? ctx->listener : NULL},
	};
	size_t n = 0;

	for (size_t i = 0; i < NT_LOG_FIELDS_MAX && n < max; i++) {
		if (!f[i].value || !f[i].value[0])
			continue;
		int m = snprintf(out[n], NT_LOG_FIELD_MAX, "%s=%s", f[i].key,
		                 f[i].value);
		if (m < 0)
			continue;
		size_t klen = strlen(f[i].key) + 1;
		log_scrub(out[n] + klen,
		          LOG_MIN((size_t)m, NT_LOG_FIELD_MAX - 1) - klen);
		n++;
	}
	return n;
}

/* MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, ERRNO and ctx's fields; false if
 * the journal did not take it */
static bool log_journal_send(enum nt_log_level level, int err,
                             const struct nt_log_ctx *ctx, const char *msg,
                             size_t len)
{
	char fields[NT_LOG_FIELDS_MAX][NT_LOG_FIELD_MAX];
	char prio[16], ident[LOG_IDENT_MAX + 24], errnum[24];
	struct iovec iov[4 + NT_LOG_FIELDS_MAX];
	int n = 0;

	iov[n++] = (struct iovec){(void *)msg, len};
	snprintf(prio, sizeof(prio), "PRIORITY=%d", (int)level);
	iov[n++] = (struct iovec){prio, strlen(prio)};
	snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", log_ident);
	iov[n++] = (struct iovec){ident, strlen(ident)};
	if (err) {
		snprintf(errnum, sizeof(errnum), "ERRNO=%d", err);
		iov[n++] = (struct iovec){errnum, strlen(errnum)};
	}
	size_t nf = nt_log_fields(ctx, fields, NT_LOG_FIELDS_MAX);
	for (size_t i = 0; i < nf; i++)
		iov[n++] = (struct iovec){fields[i], strlen(fields[i])};
	return sd_journal_sendv(iov, n) >= 0;
}

/* " KEY=value ..." after a stderr line, when asked for */
static size_t log_append_fields(char *line, size_t n, size_t size,
                                const struct nt_log_ctx *ctx)
{
	char fields[NT_LOG_FIELDS_MAX][NT_LOG_FIELD_MAX];
	size_t nf = nt_log_fields(ctx, fields, NT_LOG_FIELDS_MAX);

	for (size_t i = 0; i < nf; i++) {
		int m = snprintf(line + n, size - n, " %s", fields[i]);
		n = m > 0 ? LOG_MIN(n + (size_t)m, size - 1) : n;
	}
	return n;
}

__attribute__((format(printf, 4, 0))) static void
log_emit(enum nt_log_level level, int err, const struct nt_log_ctx *ctx,
         const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = 0;
	int m;

	if (!nt_log_enabled(level))
		return;
	if (!log_journal) {
		n = log_timestamp(line, sizeof(line));
		m = snprintf(line + n, sizeof(line) - n,
		             "%s: ", nt_log_level_name(level));
		n += m > 0 ? (size_t)m : 0;
	}
	size_t start = n;
	if (log_journal) {
		memcpy(line, "MESSAGE=", 8);
		n = start = 8;
	}
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	n = m > 0 ? LOG_MIN(n + (size_t)m, sizeof(line) - 1) : n;
	if (err) {
		char ebuf[128];
		m = snprintf(line + n, sizeof(line) - n, ": %s",
		             strerror_r(err, ebuf, sizeof(ebuf)));
		n = m > 0 ? LOG_MIN(n + (size_t)m, sizeof(line) - 1) : n;
	}
	log_scrub(line + start, n - start);
	if (log_journal) {
		if (log_journal_send(level, err, ctx, line, n))
			return;
		/* no journal after all: the line goes to stderr as it is */
		memmove(line, line + 8, n - 8);
		n -= 8;
	}
	if (log_show_fields)
		n = log_append_fields(line, n, sizeof(line) - 1, ctx);
	line[n++] = '\n';
	/* a failed log write has nowhere better to be reported */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void nt_vlog(enum nt_log_level level, int err, const char *fmt, va_list ap)
{
	log_emit(level, err, NULL, fmt, ap);
}

void nt_log(enum nt_log_level level, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, err, NULL, fmt, ap);
	va_end(ap);
}

void nt_logc(enum nt_log_level level, const struct nt_log_ctx *ctx,
             const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, 0, ctx, fmt, ap);
	va_end(ap);
}

void nt_fatal(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nt_vlog(NT_LOG_ERR, 0, fmt, ap);
	va_end(ap);
	exit(status);
}
