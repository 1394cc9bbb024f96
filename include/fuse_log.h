/*
 * fusedax: the library's one logging entry point and its pluggable sink.
 * Source-compatible with libfuse 3's fuse_log.h.
 */
#ifndef FUSE_LOG_H_
#define FUSE_LOG_H_

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Severity of a message; the values and their order follow syslog(3). */
enum fuse_log_level {
	FUSE_LOG_EMERG,
	FUSE_LOG_ALERT,
	FUSE_LOG_CRIT,
	FUSE_LOG_ERR,
	FUSE_LOG_WARNING,
	FUSE_LOG_NOTICE,
	FUSE_LOG_INFO,
	FUSE_LOG_DEBUG
};

/**
 * A log sink. It receives every message the library emits, from any thread
 * and from any call (fuse_parse_cmdline() included), so it must be
 * thread-safe. fmt is a printf format; messages end with a newline.
 */
typedef void (*fuse_log_func_t)(enum fuse_log_level level, const char *fmt,
				va_list ap);

/**
 * Route all messages of this process to func. NULL restores the default
 * sink, which writes each message to stderr.
 */
void fuse_set_log_func(fuse_log_func_t func);

/** Emit one message through the current sink. */
void fuse_log(enum fuse_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/**
 * Send messages to syslog(3) instead of the current sink, opened with
 * openlog(ident, option, facility). Undone by fuse_log_close_syslog(),
 * which closes the log and restores the default sink.
 */
void fuse_log_enable_syslog(const char *ident, int option, int facility);
void fuse_log_close_syslog(void);

#ifdef __cplusplus
}
#endif

#endif /* FUSE_LOG_H_ */
