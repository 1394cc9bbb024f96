/*
 * fuse_set_signal_handlers(): SIGHUP, SIGINT and SIGTERM end the session's
 * loop, SIGPIPE is ignored; fuse_remove_signal_handlers() undoes exactly
 * what was installed.
 */
#include "compat.h"
#include "fuse_i.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

/*
 * A signal handler has no argument to carry the session in, so the one
 * session the handlers serve is process state, as the API implies.
 */
static struct fuse_session *volatile signal_session;

static void signal_exit_handler(int sig)
{
	struct fuse_session *se = signal_session;

	(void)sig;
	/* Nothing here may print or allocate: only flag the loop to stop. */
	if (se)
		fuse_session_exit(se);
}

static const struct signal_plan {
	int sig;
	void (*handler)(int);
} signal_plans[] = {
	{ SIGHUP, signal_exit_handler },
	{ SIGINT, signal_exit_handler },
	{ SIGTERM, signal_exit_handler },
	{ SIGPIPE, SIG_IGN },
};

#define SIGNAL_PLAN_COUNT (sizeof(signal_plans) / sizeof(signal_plans[0]))

/* Which of signal_plans[] we installed, so removal touches only those. */
static int signal_installed[SIGNAL_PLAN_COUNT];

static int install_one(size_t i)
{
	struct sigaction old, sa;

	if (sigaction(signal_plans[i].sig, NULL, &old) < 0)
		goto out_err;
	/* A disposition the application chose is left alone. */
	if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = signal_plans[i].handler;
	sigemptyset(&sa.sa_mask);
	/*
	 * No SA_RESTART: a worker blocked in read() on /dev/fuse must come
	 * back with EINTR and see that the session has exited.
	 */
	sa.sa_flags = 0;
	if (sigaction(signal_plans[i].sig, &sa, NULL) < 0)
		goto out_err;
	signal_installed[i] = 1;
	return 0;

out_err:
	fuse_log(FUSE_LOG_ERR, "fuse: cannot set handler for signal %d: %s\n",
		 signal_plans[i].sig, strerror(errno));
	return -1;
}

static void remove_one(size_t i)
{
	struct sigaction cur, sa;

	if (!signal_installed[i])
		return;
	signal_installed[i] = 0;
	/* Restore only if nobody replaced our handler meanwhile. */
	if (sigaction(signal_plans[i].sig, NULL, &cur) < 0 ||
	    cur.sa_handler != signal_plans[i].handler)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(signal_plans[i].sig, &sa, NULL);
}

static void remove_all(void)
{
	for (size_t i = 0; i < SIGNAL_PLAN_COUNT; i++)
		remove_one(i);
}

int fuse_set_signal_handlers(struct fuse_session *se)
{
	/* Set before any handler exists, so a signal always finds it. */
	signal_session = se;
	for (size_t i = 0; i < SIGNAL_PLAN_COUNT; i++) {
		if (install_one(i) < 0) {
			remove_all();
			signal_session = NULL;
			return -1;
		}
	}
	return 0;
}

void fuse_remove_signal_handlers(struct fuse_session *se)
{
	if (signal_session != se)
		fuse_log(FUSE_LOG_ERR,
			 "fuse: fuse_remove_signal_handlers: unknown session\n");
	else
		signal_session = NULL;
	remove_all();
	fail_signals_remove();
}

/*
 * The signals a library thread blocks: all but those the kernel raises in
 * the thread itself for what that thread just did (a fault, a seccomp
 * trap). Blocking one of those does not hold it back: the kernel resets
 * its handler to the default and the process dies, so a SIGBUS handler
 * (the DAX window's FUSE_DAX_WINDOW_ZERO_FAULTS) or a SIGSYS handler
 * (passthrough_dax's -o seccomp=trap) would never run in such a thread.
 */
void signals_fill_blockable(sigset_t *set)
{
	static const int synchronous[] = { SIGBUS, SIGSEGV, SIGFPE, SIGILL, SIGTRAP, SIGSYS };

	sigfillset(set);
	for (size_t i = 0; i < sizeof(synchronous) / sizeof(synchronous[0]); i++)
		sigdelset(set, synchronous[i]);
}
