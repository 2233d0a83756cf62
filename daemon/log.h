/*
 * Logging, OpenBSD style: *_warn adds strerror(errno), *_warnx does not,
 * nt_fatal* log and exit. Each call writes one whole line with one write(2),
 * so lines from different threads never interleave. Under systemd (when
 * $JOURNAL_STREAM names our stderr) entries go to the journal instead, with
 * the fields of a struct nt_log_ctx.
 */
#ifndef NT_LOG_H
#define NT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdnoreturn.h>

/* log levels, in syslog order so they map onto priorities directly */
enum nt_log_level {
	NT_LOG_ERR = 3,
	NT_LOG_WARNING = 4,
	NT_LOG_NOTICE = 5,
	NT_LOG_INFO = 6,
	NT_LOG_DEBUG = 7,
};

/*
 * MESSAGE_ID= of each kind of event, for `journalctl MESSAGE_ID=...`. They
 * never change once released.
 */
#define NT_MSGID_STARTED       "bb9aa6f514e747eb9185e942285609c4"
#define NT_MSGID_STOPPED       "3a5f8adfd6704457b090a8258d71359e"
#define NT_MSGID_RELOADED      "8ea4c7b8be3d4d83aa2b7d49def8f191"
#define NT_MSGID_RELOAD_FAILED "9b9c7584fc1d4f8995ebcf4191e2e04e"
#define NT_MSGID_LISTENING     "521a3ef2900942d1863d6ec171dd14e7"
#define NT_MSGID_REFUSED       "47cb0b9b0ade479c9381d26abc78729f"
#define NT_MSGID_CONN_OPEN     "8045ac3be55c417cbc7ba480849663c4"
#define NT_MSGID_CONN_CLOSE    "3f3f636274c7409787e137a030daa86e"
#define NT_MSGID_CHAT_NICK     "ee9cf48670f74f74b0b2f924499dc33c"
#define NT_MSGID_CHAT_JOIN     "33ee935a9d344ff0835157b2bcde93eb"
#define NT_MSGID_CHAT_OVERFLOW "cf7f1bb5769c42ea9be9e125be89c4b9"
#define NT_MSGID_RESTORED      "c707c6e9f3be45f0872c5cef17aeec02"
#define NT_MSGID_HANDOVER      "b14b77d7d2b34217bdddbe42e2774ad2"
#define NT_MSGID_WATCHDOG      "63bee167d1ea4f8ebee89fc0c48b9e0f"

/* what an entry is about; any member may be NULL (or "") for "not known" */
struct nt_log_ctx {
	const char *msgid; /* NT_MSGID_* */
	const char
	    *client;      /* NATTER_CLIENT: "addr:port", "[v6]:port", "unix" */
	const char *nick; /* NATTER_NICK */
	const char *room; /* NATTER_ROOM */
	const char *listener; /* NATTER_LISTENER */
};

#define NT_LOG_FIELDS_MAX 5   /* one per member of struct nt_log_ctx */
#define NT_LOG_FIELD_MAX  160 /* "NATTER_LISTENER=" + a name, with room */

/*
 * The journal fields for ctx, "KEY=value" each, control characters
 * replaced by '?', in struct order: MESSAGE_ID, NATTER_CLIENT, NATTER_NICK,
 * NATTER_ROOM, NATTER_LISTENER; members that are NULL or "" are left out.
 * Returns how many were written (pure: for the journal path, the stderr
 * path with $NATTERD_LOG_FIELDS=1, and the tests).
 */
size_t nt_log_fields(const struct nt_log_ctx *ctx, char out[][NT_LOG_FIELD_MAX],
                     size_t max);

/*
 * ident becomes SYSLOG_IDENTIFIER=. Decides once where entries go: the
 * journal when $JOURNAL_STREAM holds the device and inode of our stderr,
 * else timestamped lines on stderr (with the fields appended when
 * $NATTERD_LOG_FIELDS is 1).
 */
/* "error", "warning", "notice", "info", "debug" */
const char *nt_log_level_name(enum nt_log_level l);
/* 0, or -EINVAL for a name that is none of those */
int nt_log_level_parse(const char *s, enum nt_log_level *out);

void nt_log_init(const char *ident, enum nt_log_level level);
void nt_log_set_level(enum nt_log_level level);
enum nt_log_level nt_log_get_level(void);
/* true when entries go to the journal */
bool nt_log_to_journal(void);

/* err is an errno value to append (0 for none) */
void nt_log(enum nt_log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void nt_vlog(enum nt_log_level level, int err, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* an entry about something: ctx's fields go to the journal with it */
void nt_logc(enum nt_log_level level, const struct nt_log_ctx *ctx,
             const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define nt_log_err(...)    nt_log(NT_LOG_ERR, errno, __VA_ARGS__)
#define nt_log_errx(...)   nt_log(NT_LOG_ERR, 0, __VA_ARGS__)
#define nt_log_warn(...)   nt_log(NT_LOG_WARNING, errno, __VA_ARGS__)
#define nt_log_warnx(...)  nt_log(NT_LOG_WARNING, 0, __VA_ARGS__)
#define nt_log_notice(...) nt_log(NT_LOG_NOTICE, 0, __VA_ARGS__)
#define nt_log_info(...)   nt_log(NT_LOG_INFO, 0, __VA_ARGS__)
#define nt_log_debug(...)  nt_log(NT_LOG_DEBUG, 0, __VA_ARGS__)

/* cheap test before building a ctx for an entry that may be filtered out */
static inline bool nt_log_enabled(enum nt_log_level level)
{
	return (int)level <= (int)nt_log_get_level();
}

noreturn void nt_fatal(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
