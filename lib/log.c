/*
 * fuse_log(): every message the library emits goes through one sink,
 * stderr by default, replaceable at run time by the application.
 */
#include "fuse_log.h"

#include <stdio.h>
#include <syslog.h>

static void log_to_stderr(enum fuse_log_level level, const char *fmt,
			  va_list ap)
{
	(void)level;
	vfprintf(stderr, fmt, ap);
}

static void log_to_syslog(enum fuse_log_level level, const char *fmt,
			  va_list ap)
{
	/* Our levels are syslog's priorities, one for one. */
	vsyslog((int)level, fmt, ap);
}

/*
 * The sink is read by every thread that logs and written rarely; an atomic
 * pointer is enough, no lock is needed. Each stdio call locks stderr itself.
 */
static fuse_log_func_t log_sink = log_to_stderr;

void fuse_set_log_func(fuse_log_func_t func)
{
	__atomic_store_n(&log_sink, func ? func : log_to_stderr,
			 __ATOMIC_RELEASE);
}

void fuse_log(enum fuse_log_level level, const char *fmt, ...)
{
	fuse_log_func_t sink = __atomic_load_n(&log_sink, __ATOMIC_ACQUIRE);
	va_list ap;

	va_start(ap, fmt);
	sink(level, fmt, ap);
	va_end(ap);
}

void fuse_log_enable_syslog(const char *ident, int option, int facility)
{
	openlog(ident, option, facility);
	fuse_set_log_func(log_to_syslog);
}

void fuse_log_close_syslog(void)
{
	fuse_set_log_func(NULL);
	closelog();
}
