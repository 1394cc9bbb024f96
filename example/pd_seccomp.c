/*
 * passthrough_dax: the seccomp allow-list of the serving process
 * (-o seccomp=kill|log|trap|none), loaded after the sandbox is in place
 * and before the first request, so every thread the library starts later
 * (workers, vhost-user queues, io_uring queues, lock waiters) inherits it.
 *
 * The list is what the code calls, through glibc: the file system's
 * operations on the host, the library's transports (/dev/fuse reads and
 * writes and its clone ioctl, vhost-user's messages, descriptors and
 * eventfds, io_uring's three calls), guest memory and DAX windows
 * (mmap/munmap/mremap), threads, and the glibc internals behind them. It is
 * proven by running the test suite, the fuzz corpora and the hostile
 * front-end tests under -o seccomp=kill (doc/testing.md).
 *
 * What a call outside the list gets:
 *  - trap (the default): SECCOMP_RET_TRAP. A SIGSYS handler writes one line
 *    naming the call to stderr and makes the call return ENOSYS (which glibc
 *    often answers by falling back to an older call). A bug or a peer that
 *    reaches an unexpected path costs that one request, never the daemon.
 *  - kill: the whole process is killed at once (SECCOMP_RET_KILL_PROCESS),
 *    for deployments that prefer a dead daemon to a compromised one.
 *  - log: allowed, and the kernel logs it (audit), for building a list.
 *  - none: no filter.
 *
 * io_uring requests do not pass through seccomp once a ring exists: the
 * list limits the system calls, not what the rings the library sets up for
 * FUSE carry.
 */
#include "passthrough_dax.h"

#include <fuse_kernel.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <ucontext.h>

#ifdef PD_HAVE_SECCOMP
#include <seccomp.h>

/* Calls the daemon makes, any arguments. */
static const char *const allowed[] = {
	/* descriptors and data */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"preadv2", "pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3",
	"fcntl", "splice", "tee", "vmsplice", "sendfile", "copy_file_range", "pipe",
	"pipe2",
	/* the host file system, always relative to a descriptor */
	"openat", "openat2", "open", "name_to_handle_at", "open_by_handle_at",
	"newfstatat", "fstat", "stat", "lstat", "statx", "fstatfs", "statfs",
	"getdents64", "getdents", "readlinkat", "mkdirat", "mknodat", "symlinkat",
	"linkat", "unlinkat", "renameat", "renameat2", "fchmod", "fchmodat", "fchmodat2",
	"fchown", "fchownat", "utimensat", "faccessat", "faccessat2", "ftruncate",
	"fallocate", "fsync", "fdatasync", "flock", "fchdir", "umask",
	"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
	"listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr",
	"fremovexattr", "getxattrat", "setxattrat", "listxattrat", "removexattrat",
	/* memory: buffers, guest memory, DAX windows */
	"mmap", "munmap", "mprotect", "madvise", "mremap", "brk", "msync",
	"memfd_create",
	/* threads and their wake-ups */
	"clone", "clone3", "set_robust_list", "get_robust_list", "rseq", "futex",
	"exit", "exit_group", "gettid", "getpid", "getppid", "sched_yield",
	"sched_getaffinity", "sched_setaffinity", "rt_sigaction", "rt_sigprocmask",
	"rt_sigreturn", "rt_sigtimedwait", "rt_sigsuspend", "sigaltstack",
	"restart_syscall", "tgkill", "tkill", "nanosleep", "clock_nanosleep",
	"clock_gettime", "clock_getres", "gettimeofday", "time", "getrandom",
	"eventfd", "eventfd2", "poll", "ppoll", "select", "pselect6", "epoll_create1",
	"epoll_ctl", "epoll_wait", "epoll_pwait",
	/* acting as the caller */
	"setresuid", "setresgid", "setgroups", "getuid", "geteuid", "getgid", "getegid",
	"getresuid", "getresgid", "getgroups", "capget",
	/* vhost-user messages and descriptors, the kernel stand-ins' sockets */
	"sendmsg", "recvmsg", "sendto", "recvfrom", "shutdown", "getsockopt",
	"accept", "accept4",	/* vhost-user: the VMM is accepted by the serving loop */
	/* the watch of mapped files for host changes (pd_watch.c) */
	"inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	/* FUSE-over-io_uring */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	/* glibc: sysconf(), qsort() */
	"getrlimit", "prlimit64", "uname", "sysinfo",
};

/* For SIGSYS: the names of calls by number, made before the filter exists. */
#define NAMED_CALLS 512
static const char *call_names[NAMED_CALLS];

/* A decimal number into buf (async-signal-safe); returns its length. */
static size_t put_number(char *buf, long v)
{
	char tmp[24];
	size_t n = 0, len = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;

	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < sizeof(tmp));
	if (v < 0)
		buf[len++] = '-';
	while (n)
		buf[len++] = tmp[--n];
	return len;
}

static size_t put_text(char *buf, size_t room, const char *s)
{
	size_t n = strlen(s);

	if (n > room)
		n = room;
	memcpy(buf, s, n);
	return n;
}

/*
 * A call outside the list (trap mode): say which, and make it fail with
 * ENOSYS. Only async-signal-safe work here; the thread that made the call
 * continues as if the kernel had answered ENOSYS.
 */
static void seccomp_sigsys(int sig, siginfo_t *info, void *uctx)
{
	ucontext_t *ctx = uctx;
	int nr = info->si_syscall;
	const char *name = nr >= 0 && nr < NAMED_CALLS && call_names[nr] ? call_names[nr] : "?";
	char line[200];
	size_t len = 0;
	int saved = errno;

	(void)sig;
	len += put_text(line + len, 60, "passthrough_dax: seccomp: refused system call ");
	len += put_text(line + len, 40, name);
	len += put_text(line + len, 4, " (");
	len += put_number(line + len, nr);
	len += put_text(line + len, 60, "): answered ENOSYS (not in the allow-list)\n");
	if (write(STDERR_FILENO, line, len) < 0)
		(void)0;	/* nowhere else to say it */
	ctx->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
	errno = saved;
}

/* Is name in the colon-separated list? */
static bool listed(const char *list, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == len && strncmp(p, name, n) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static int add_rule(scmp_filter_ctx ctx, const char *name, unsigned int argc,
		    const struct scmp_arg_cmp *args, const char *refuse)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR || listed(refuse, name))
		return 0;	/* unknown to this libseccomp (or architecture), or refused */
	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, argc, args);
}

/* Calls allowed only with some arguments. */
static int add_narrow_rules(scmp_filter_ctx ctx, bool may_unmount, const char *refuse)
{
	static const unsigned long ioctls[] = {
		FUSE_DEV_IOC_CLONE, FUSE_DEV_IOC_BACKING_OPEN, FUSE_DEV_IOC_BACKING_CLOSE,
		TCGETS,	/* isatty() when stdio picks a buffering */
	};
	static const int prctls[] = { PR_SET_NAME, PR_GET_NAME };
	int err = 0;

	for (size_t i = 0; !err && i < sizeof(ioctls) / sizeof(ioctls[0]); i++) {
		struct scmp_arg_cmp a = SCMP_A1(SCMP_CMP_EQ, ioctls[i]);

		err = add_rule(ctx, "ioctl", 1, &a, refuse);
	}
	for (size_t i = 0; !err && i < sizeof(prctls) / sizeof(prctls[0]); i++) {
		struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctls[i]);

		err = add_rule(ctx, "prctl", 1, &a, refuse);
	}
	/* The local DAX window probes its own memory (lib/dax_local.c). */
	if (!err) {
		struct scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());

		err = add_rule(ctx, "process_vm_readv", 1, &a, refuse);
	}
	/* Without a sandbox the daemon unmounts itself at the end. */
	if (!err && may_unmount)
		err = add_rule(ctx, "umount2", 0, NULL, refuse);
	if (!err && may_unmount)
		err = add_rule(ctx, "wait4", 0, NULL, refuse);
	return err;
}

/*
 * Load the filter. refuse: colon-separated calls to leave out of the list
 * (-o seccomp_refuse=, so a test can watch what the mode does to a refused
 * call); NULL for none.
 */
int seccomp_start(enum pd_seccomp_mode mode, bool may_unmount, const char *refuse)
{
	uint32_t deny = mode == SECCOMP_KILL ? SCMP_ACT_KILL_PROCESS
		      : mode == SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	scmp_filter_ctx ctx;
	int err = 0;

	if (mode == SECCOMP_NONE)
		return 0;
	if (mode == SECCOMP_TRAP) {
		struct sigaction sa;

		for (int nr = 0; nr < NAMED_CALLS; nr++)
			call_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = seccomp_sigsys;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSYS, &sa, NULL) == -1) {
			fprintf(stderr, "passthrough_dax: seccomp: SIGSYS handler: %s\n",
				strerror(errno));
			return -1;
		}
	}
	ctx = seccomp_init(deny);
	if (!ctx) {
		fprintf(stderr, "passthrough_dax: seccomp: cannot make a filter\n");
		return -1;
	}
	for (size_t i = 0; !err && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		err = add_rule(ctx, allowed[i], 0, NULL, refuse);
	if (!err)
		err = add_narrow_rules(ctx, may_unmount, refuse);
	if (!err)
		err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	if (err) {
		fprintf(stderr, "passthrough_dax: seccomp: loading the filter: %s\n",
			strerror(-err));
		return -1;
	}
	return 0;
}

bool seccomp_available(void)
{
	return true;
}

#else /* !PD_HAVE_SECCOMP */

int seccomp_start(enum pd_seccomp_mode mode, bool may_unmount, const char *refuse)
{
	(void)may_unmount;
	(void)refuse;
	if (mode == SECCOMP_NONE)
		return 0;
	fprintf(stderr, "passthrough_dax: seccomp: built without libseccomp (install "
		"libseccomp-dev and rebuild), so -o seccomp= can only be none\n");
	return -1;
}

bool seccomp_available(void)
{
	return false;
}

#endif
