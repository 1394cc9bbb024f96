/*
 * The checks of the plain unit tests (test_opt, test_cmdline, test_buf): a
 * failed check prints where and what, and is counted for the summary.
 * Session-level tests use wire_client.h's checks instead.
 */
#ifndef FUSEDAX_TEST_CHECK_H
#define FUSEDAX_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fuse_log.h"

static int failures;

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
			failures++;                                          \
		}                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                      \
	do {                                                                 \
		const char *a_ = (a), *b_ = (b);                             \
		if (!a_ || strcmp(a_, b_) != 0) {                            \
			fprintf(stderr, "%s:%d: `%s' is \"%s\", want \"%s\"\n", \
				__FILE__, __LINE__, #a, a_ ? a_ : "(null)",  \
				b_);                                         \
			failures++;                                          \
		}                                                            \
	} while (0)

/* The last message the library logged (install with fuse_set_log_func). */
static char last_log[512] __attribute__((unused));

static inline void capture_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	(void)level;
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
}

/* Print the verdict and return main()'s exit status. */
static inline int check_summary(const char *name)
{
	if (failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
		return 1;
	}
	printf("%s: all checks passed\n", name);
	return 0;
}

#endif /* FUSEDAX_TEST_CHECK_H */
