/*
 * fuse_set_fail_signal_handlers(): when the process is about to die of a
 * fault (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT), say which
 * signal and where through fuse_log(), then die of it as before.
 */
#include "compat.h"
#include "fuse_lowlevel.h"

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const int fail_signals[] = { SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV };

#define FAIL_SIGNAL_COUNT (sizeof(fail_signals) / sizeof(fail_signals[0]))
#define FAIL_BACKTRACE_DEPTH 64

static struct fuse_session *volatile fail_session;
static int fail_installed[FAIL_SIGNAL_COUNT];

static void fail_signal_handler(int sig)
{
	void *frames[FAIL_BACKTRACE_DEPTH];
	struct sigaction dfl;
	int n;

	if (fail_session)
		fuse_session_exit(fail_session);
	/*
	 * Past a fault nothing is safe; logging is what the caller asked for.
	 * The frames go to stderr without malloc (backtrace_symbols_fd).
	 */
	fuse_log(FUSE_LOG_ERR, "fuse: got signal %d (%s): backtrace follows\n", sig,
		 strsignal(sig));
	n = backtrace(frames, FAIL_BACKTRACE_DEPTH);
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
	/* Die of the same signal, as without the handler. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	raise(sig);
}

int fuse_set_fail_signal_handlers(struct fuse_session *se)
{
	fail_session = se;
	for (size_t i = 0; i < FAIL_SIGNAL_COUNT; i++) {
		struct sigaction old, sa;

		if (sigaction(fail_signals[i], NULL, &old) < 0)
			goto out_err;
		/* A disposition the application chose is left alone. */
		if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = fail_signal_handler;
		sigemptyset(&sa.sa_mask);
		/* A fault inside the handler must not recurse into it. */
		sa.sa_flags = SA_RESETHAND;
		if (sigaction(fail_signals[i], &sa, NULL) < 0)
			goto out_err;
		fail_installed[i] = 1;
		continue;
out_err:
		fuse_log(FUSE_LOG_ERR, "fuse: cannot set handler for signal %d: %s\n",
			 fail_signals[i], strerror(errno));
		fail_signals_remove();
		return -1;
	}
	return 0;
}

void fail_signals_remove(void)
{
	for (size_t i = 0; i < FAIL_SIGNAL_COUNT; i++) {
		struct sigaction cur, sa;

		if (!fail_installed[i])
			continue;
		fail_installed[i] = 0;
		/* Restore only if nobody replaced our handler meanwhile. */
		if (sigaction(fail_signals[i], NULL, &cur) < 0 ||
		    cur.sa_handler != fail_signal_handler)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigemptyset(&sa.sa_mask);
		sigaction(fail_signals[i], &sa, NULL);
	}
	fail_session = NULL;
}
