/*
 * The daemon's log: timestamped lines on stderr, filtered by level. Each
 * line is formatted into one buffer and written with one write(2), which
 * keeps lines from different threads whole.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX  2048
#define LOG_MIN(a, b) ((a) < (b) ? (a) : (b))

static atomic_int log_level = NT_LOG_INFO;

void nt_log_init(const char *ident, enum nt_log_level level)
{
	(void)ident;
	nt_log_set_level(level);
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

void nt_vlog(enum nt_log_level level, int err, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n;
	int m;

	if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	n = log_timestamp(line, sizeof(line));
	m = snprintf(line + n, sizeof(line) - n,
	             "%s: ", nt_log_level_name(level));
	n += m > 0 ? (size_t)m : 0;
	size_t start = n;
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	n = m > 0 ? LOG_MIN(n + (size_t)m, sizeof(line) - 1) : n;
	if (err) {
		char ebuf[128];
		m = snprintf(line + n, sizeof(line) - n, ": %s",
		             strerror_r(err, ebuf, sizeof(ebuf)));
		n = m > 0 ? LOG_MIN(n + (size_t)m, sizeof(line) - 1) : n;
	}
	log_scrub(line + start, n - start);
	line[n++] = '\n';
	/* a failed log write has nowhere better to be reported */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void nt_log(enum nt_log_level level, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nt_vlog(level, err, fmt, ap);
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
