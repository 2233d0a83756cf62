/*
 * Logging, OpenBSD style: *_warn adds strerror(errno), *_warnx does not,
 * nt_fatal* log and exit. Each call writes one whole line with one write(2),
 * so lines from different threads never interleave.
 */
#ifndef NT_LOG_H
#define NT_LOG_H

#include <stdarg.h>
#include <stdnoreturn.h>

#include "config.h"

void nt_log_init(const char *ident, enum nt_log_level level);
void nt_log_set_level(enum nt_log_level level);
enum nt_log_level nt_log_get_level(void);

/* err is an errno value to append (0 for none) */
void nt_log(enum nt_log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void nt_vlog(enum nt_log_level level, int err, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define nt_log_err(...)    nt_log(NT_LOG_ERR, errno, __VA_ARGS__)
#define nt_log_errx(...)   nt_log(NT_LOG_ERR, 0, __VA_ARGS__)
#define nt_log_warn(...)   nt_log(NT_LOG_WARNING, errno, __VA_ARGS__)
#define nt_log_warnx(...)  nt_log(NT_LOG_WARNING, 0, __VA_ARGS__)
#define nt_log_notice(...) nt_log(NT_LOG_NOTICE, 0, __VA_ARGS__)
#define nt_log_info(...)   nt_log(NT_LOG_INFO, 0, __VA_ARGS__)
#define nt_log_debug(...)  nt_log(NT_LOG_DEBUG, 0, __VA_ARGS__)

noreturn void nt_fatal(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
