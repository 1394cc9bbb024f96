/*
 * passthrough_dax: containment of the daemon. After the mount (or the
 * vhost-user connection) is in place and before the first request, the
 * serving process moves into a sandbox where the exported directory is the
 * whole file system it can see (-o sandbox=namespace|chroot|none), with only
 * the capabilities it needs (-o modcaps=) and as many descriptors as it may
 * need (-o rlimit_nofile=). pd_seccomp.c then limits its system calls.
 *
 * The order, and why:
 *
 *  1. RLIMIT_NOFILE is raised first, while we still have CAP_SYS_RESOURCE.
 *  2. The /dev/fuse mount (as root, or by fusermount3) and the vhost-user
 *     socket are made in the host's namespaces, by the library, as without
 *     a sandbox; so is daemonizing.
 *  3. The process forks. The parent stays outside as a monitor: it forwards
 *     SIGHUP/SIGINT/SIGTERM to the server, waits for it, and then unmounts
 *     the /dev/fuse mount in the host's mount namespace (the server, in its
 *     own mount namespace, could not) and exits with the server's status.
 *     The child is the server: it dies with the monitor (PR_SET_PDEATHSIG).
 *     Entering new namespaces has to happen here, while the process is
 *     single-threaded: the library starts its threads (workers, vhost-user,
 *     io_uring queues) only with the loop.
 *  4. namespace: as root, the server is process 1 of a new pid namespace
 *     and has new mount, network and IPC namespaces; not as root, a new
 *     user namespace (mapping only our own uid and gid) comes first and
 *     makes the others possible, without a pid namespace (proc could not
 *     be mounted for it). Mounts stop propagating to the host; as root a
 *     private /proc for the new pid namespace is mounted over /proc and
 *     /proc/self/fd opened (the daemon reopens O_PATH descriptors through
 *     it), not as root the host's /proc/self/fd is opened. The source is
 *     bind-mounted on itself (read-only with -o readonly), becomes the root
 *     (pivot_root) and the old root is detached: the source is the whole
 *     visible tree, the proc mount is reachable only through our
 *     descriptor, and a directory a host process renames out of the source
 *     can no longer reach its parent (".." from outside the bind mount's
 *     root is ENOENT).
 *     chroot: for hosts without namespaces (root only): chroot into the
 *     source; the host's /proc/self/fd stays open for reopening, so this
 *     contains path walks, not a compromised daemon.
 *  5. The working directory becomes the /proc/self/fd directory, so that
 *     "N" names descriptor N for the calls that take only a path (xattrs).
 *  6. Capabilities are dropped to what the daemon uses, from every set
 *     (bounding and ambient included), and no_new_privs is set.
 */
#include "passthrough_dax.h"

#include <dlfcn.h>
#include <sched.h>
#include <signal.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/capability.h>

/* ------------------------------------------------------------------------
 * Capabilities
 */

static const char *const cap_names[] = {
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill",
	"setgid", "setuid", "setpcap", "linux_immutable", "net_bind_service",
	"net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
	"sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time",
	"sys_tty_config", "mknod", "lease", "audit_write", "audit_control",
	"setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
	"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
};

#define CAP_COUNT (sizeof(cap_names) / sizeof(cap_names[0]))
#define CAP_BIT(c) (UINT64_C(1) << (c))

/* What the daemon acting as its callers uses, like virtiofsd's default. */
#define CAPS_DEFAULT                                                             \
	(CAP_BIT(CAP_CHOWN) | CAP_BIT(CAP_DAC_OVERRIDE) | CAP_BIT(CAP_FOWNER) |  \
	 CAP_BIT(CAP_FSETID) | CAP_BIT(CAP_SETGID) | CAP_BIT(CAP_SETUID) |       \
	 CAP_BIT(CAP_MKNOD) | CAP_BIT(CAP_SETFCAP))

static int cap_by_name(const char *name, size_t len)
{
	if (len > 4 && strncasecmp(name, "cap_", 4) == 0) {
		name += 4;
		len -= 4;
	}
	for (size_t i = 0; i < CAP_COUNT; i++)
		if (strlen(cap_names[i]) == len && strncasecmp(cap_names[i], name, len) == 0)
			return (int)i;
	return -1;
}

/*
 * virtiofsd's syntax: "+sys_admin:-mknod", capabilities by name (with or
 * without "cap_", any case), each with + (keep it too) or - (drop it too).
 */
int sandbox_parse_modcaps(const char *text, uint64_t *add, uint64_t *drop)
{
	const char *p = text;

	*add = *drop = 0;
	while (*p) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int cap;

		if (len < 2 || (p[0] != '+' && p[0] != '-')) {
			fprintf(stderr, "passthrough_dax: modcaps=%s: expected +name or -name "
				"items separated by ':' (e.g. +sys_admin:-mknod)\n", text);
			return -1;
		}
		cap = cap_by_name(p + 1, len - 1);
		if (cap < 0) {
			fprintf(stderr, "passthrough_dax: modcaps=%s: unknown capability '%.*s'\n",
				text, (int)len - 1, p + 1);
			return -1;
		}
		if (p[0] == '+')
			*add |= CAP_BIT(cap);
		else
			*drop |= CAP_BIT(cap);
		p += len;
		if (*p == ':')
			p++;
	}
	return 0;
}

/* Keep exactly the capabilities in keep, in every set; then no_new_privs. */
static int caps_limit(uint64_t keep)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	int cap;

	/* The bounding set first: dropping from it needs CAP_SETPCAP. */
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (cap < 64 && (keep & CAP_BIT(cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == -1 && errno != EINVAL) {
			fprintf(stderr, "passthrough_dax: sandbox: dropping capability %d from "
				"the bounding set: %s\n", cap, strerror(errno));
			return -1;
		}
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = (uint32_t)keep;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &hdr, data) == -1) {
		fprintf(stderr, "passthrough_dax: sandbox: capset: %s\n", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		fprintf(stderr, "passthrough_dax: sandbox: no_new_privs: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * RLIMIT_NOFILE
 *
 * Like virtiofsd: by default both limits go up to 1,000,000 (less when the
 * system allows fewer: fs.nr_open, or fs.file-max minus a reserve), if we
 * may raise the hard limit (root); otherwise the soft limit goes up to the
 * hard one. rlimit_nofile=0 leaves both as they are; rlimit_nofile=N sets
 * both to N, or fails saying why.
 */

static unsigned long long read_proc_number(const char *path)
{
	unsigned long long v = 0;
	FILE *f = fopen(path, "re");

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

int sandbox_set_rlimit(long long want)
{
	const unsigned long long reserve = 16384;
	unsigned long long target = 1000000, nr_open, file_max;
	struct rlimit rl;

	if (want == 0)
		return 0;
	if (want > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
			fprintf(stderr, "passthrough_dax: rlimit_nofile=%lld: %s%s\n", want,
				strerror(errno),
				errno == EPERM ? " (raising the hard limit needs CAP_SYS_RESOURCE)"
					       : errno == EINVAL ? " (above fs.nr_open?)" : "");
			return -1;
		}
		return 0;
	}
	nr_open = read_proc_number("/proc/sys/fs/nr_open");
	file_max = read_proc_number("/proc/sys/fs/file-max");
	if (nr_open && nr_open < target)
		target = nr_open;
	if (file_max > 2 * reserve && file_max - reserve < target)
		target = file_max - reserve;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < target) {
		struct rlimit up = { .rlim_cur = target, .rlim_max = target };

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return 0;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * The monitor
 */

/* The server's pid, for the forwarding handler (a signal handler has no other way). */
static volatile pid_t monitor_child = -1;

static void monitor_forward(int sig)
{
	if (monitor_child > 0)
		kill(monitor_child, sig);
}

/* Wait for the server; its exit status becomes ours (128 + signal if killed). */
static int monitor_wait(pid_t child)
{
	static const int forwarded[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT };
	struct sigaction sa;
	int status;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = monitor_forward;
	sigemptyset(&sa.sa_mask);
	monitor_child = child;
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);
	while (waitpid(child, &status, 0) == -1) {
		if (errno != EINTR) {
			fuse_log(FUSE_LOG_ERR, "passthrough_dax: sandbox: waiting for the server: %s\n",
				 strerror(errno));
			return 1;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	fuse_log(FUSE_LOG_ERR, "passthrough_dax: sandbox: the server (process %d) was killed by "
		 "signal %d (%s)%s\n", (int)child, WTERMSIG(status), strsignal(WTERMSIG(status)),
		 WTERMSIG(status) == SIGSYS ? ": a system call outside the seccomp allow-list "
		 "under -o seccomp=kill" : "");
	return 128 + WTERMSIG(status);
}

/*
 * The server ends with the monitor, and makes sure the monitor did not end
 * before that was arranged: alive is the read end of a pipe whose write end
 * only the monitor holds.
 */
static int server_tie_to_monitor(int alive)
{
	struct pollfd pfd = { .fd = alive, .events = POLLIN };

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1) {
		fprintf(stderr, "passthrough_dax: sandbox: PR_SET_PDEATHSIG: %s\n",
			strerror(errno));
		return -1;
	}
	if (poll(&pfd, 1, 0) != 0) {
		fprintf(stderr, "passthrough_dax: sandbox: the monitor ended before the server "
			"started\n");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Namespaces and the new root
 */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err;

	if (fd == -1)
		return -errno;
	n = write(fd, text, strlen(text));
	err = n == (ssize_t)strlen(text) ? 0 : n < 0 ? -errno : -EIO;
	close(fd);
	return err;
}

/* Not root: a user namespace where we are who we were, and nobody else. */
static int enter_user_namespace(void)
{
	char map[64];
	int err;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) == -1) {
		err = errno;
		fprintf(stderr, "passthrough_dax: sandbox=namespace: unshare: %s%s\n",
			strerror(err),
			err == EPERM || err == ENOSPC
				? " (user namespaces are not available to this user here: see "
				  "user.max_user_namespaces, or use -o sandbox=none)" : "");
		return -1;
	}
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)getuid(), (unsigned)getuid());
	err = write_file("/proc/self/uid_map", map);
	if (!err)
		err = write_file("/proc/self/setgroups", "deny\n");
	if (!err) {
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)getgid(), (unsigned)getgid());
		err = write_file("/proc/self/gid_map", map);
	}
	if (err) {
		fprintf(stderr, "passthrough_dax: sandbox=namespace: mapping our ids into the "
			"user namespace: %s\n", strerror(-err));
		return -1;
	}
	return 0;
}

/*
 * In the new mount namespace: a /proc for us (as root), the source as the
 * only tree. *proc_fd gets /proc/self/fd. 0 or -1 after printing why.
 */
static int pivot_into_source(const char *source, bool own_proc, bool readonly, int *proc_fd)
{
	const char *step;

	step = "making mounts private (mount --make-rslave /)";
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == -1)
		goto out_err;
	if (own_proc) {
		step = "mounting a private /proc";
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME,
			  NULL) == -1)
			goto out_err;
	}
	step = "opening /proc/self/fd";
	*proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*proc_fd == -1)
		goto out_err;
	step = "bind-mounting the source on itself";
	if (mount(source, source, NULL, MS_BIND | MS_REC, NULL) == -1)
		goto out_err;
	if (readonly) {
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };

		step = "making the source read-only";
		if (mount_setattr(AT_FDCWD, source, AT_RECURSIVE, &attr, sizeof(attr)) == -1 &&
		    mount(NULL, source, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) == -1)
			goto out_err;
	}
	step = "entering the source";
	if (chdir(source) == -1)
		goto out_err;
	step = "pivot_root into the source";
	if (syscall(SYS_pivot_root, ".", ".") == -1)
		goto out_err;
	step = "detaching the old root";
	if (umount2(".", MNT_DETACH) == -1)
		goto out_err;
	step = "chdir /";
	if (chdir("/") == -1)
		goto out_err;
	return 0;

out_err:
	fprintf(stderr, "passthrough_dax: sandbox=namespace: %s (source %s): %s\n", step, source,
		strerror(errno));
	return -1;
}

static int chroot_into_source(const char *source, int *proc_fd)
{
	const char *step;

	step = "opening /proc/self/fd";
	*proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*proc_fd == -1)
		goto out_err;
	step = "entering the source";
	if (chdir(source) == -1)
		goto out_err;
	step = "chroot";
	if (chroot(".") == -1)
		goto out_err;
	step = "chdir /";
	if (chdir("/") == -1)
		goto out_err;
	return 0;

out_err:
	fprintf(stderr, "passthrough_dax: sandbox=chroot: %s (source %s): %s%s\n", step, source,
		strerror(errno), errno == EPERM ? " (chroot needs root)" : "");
	return -1;
}

/*
 * Inside: the root inode's descriptor is reopened through the new root (so
 * it is on the bind mount, whose root stops ".."), after checking it is
 * the same directory; proc_fd replaces the old /proc/self/fd, and becomes
 * the working directory.
 */
static int adopt_new_root(struct pd_fs *fs, int proc_fd)
{
	struct stat st;
	int fd;

	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		fprintf(stderr, "passthrough_dax: sandbox: the new root: %s\n", strerror(errno));
		return -1;
	}
	if (st.st_dev != fs->root.dev || st.st_ino != fs->root.ino) {
		fprintf(stderr, "passthrough_dax: sandbox: the source was replaced on the host "
			"while starting (its path names another directory now)\n");
		close(fd);
		return -1;
	}
	if (dup3(fd, fs->root.fd, O_CLOEXEC) == -1 || dup3(proc_fd, fs->proc_fd, O_CLOEXEC) == -1 ||
	    fchdir(fs->proc_fd) == -1) {
		fprintf(stderr, "passthrough_dax: sandbox: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	close(proc_fd);
	fs->fd_dir = "";
	return 0;
}

/* ------------------------------------------------------------------------
 * Entering the sandbox
 */

/*
 * What the session's descriptor is: a /dev/fuse mount of ours (the monitor
 * must unmount it), a vhost-user connection, or a connection the caller
 * handed over (/dev/fd/N).
 */
enum pd_transport sandbox_transport(struct fuse_session *se, const char *mountpoint)
{
	struct stat st;

	if (mountpoint && strncmp(mountpoint, "/dev/fd/", strlen("/dev/fd/")) == 0)
		return TRANSPORT_GIVEN;
	if (fstat(fuse_session_fd(se), &st) == 0 && S_ISSOCK(st.st_mode))
		return TRANSPORT_VHOST_USER;
	return TRANSPORT_MOUNT;
}

/*
 * In the monitor, a connection's descriptor must not outlive the server
 * (the VMM or the client must see it close when the server ends): /dev/null
 * takes its number, so the session can still close "it" later.
 */
static void monitor_let_go_of(int fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null >= 0) {
		dup3(null, fd, O_CLOEXEC);
		close(null);
	}
}

/*
 * Fork the monitor and the server; in the server, enter the sandbox.
 * Returns 0 in the server (or at once with sandbox=none), 1 in the monitor
 * once the server has ended (*status: the exit status to end with), -1 if
 * there is no sandbox because forking failed (printed). A server that
 * cannot enter its sandbox says why and exits with status 1.
 */
int sandbox_enter(struct pd_fs *fs, struct fuse_session *se, struct pd_sandbox *sb,
		  const char *mountpoint, int *status)
{
	bool root = geteuid() == 0;
	int alive[2], pidns = -1, proc_fd = -1, ret;
	pid_t pid;

	if (sb->mode == SANDBOX_NONE)
		return 0;
	/*
	 * glibc loads the unwinder the first time a thread is cancelled (the
	 * multi-threaded loop cancels its workers at the end): the sandbox has
	 * no /lib, so load it now; it stays loaded.
	 */
	if (!dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NODELETE))
		fuse_log(FUSE_LOG_INFO, "passthrough_dax: sandbox: %s: stopping worker threads may "
			 "fail\n", dlerror());
	if (sb->mode == SANDBOX_NAMESPACE && root) {
		/* New children go into a new pid namespace; the monitor stays out. */
		pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
		if (pidns == -1 || unshare(CLONE_NEWPID) == -1) {
			fprintf(stderr, "passthrough_dax: sandbox=namespace: a pid namespace: %s\n",
				strerror(errno));
			goto out_close;
		}
	}
	if (pipe2(alive, O_CLOEXEC) == -1) {
		fprintf(stderr, "passthrough_dax: sandbox: pipe: %s\n", strerror(errno));
		goto out_close;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == -1) {
		fprintf(stderr, "passthrough_dax: sandbox: fork: %s\n", strerror(errno));
		close(alive[0]);
		close(alive[1]);
		goto out_close;
	}
	if (pid > 0) {
		/* The monitor: its later children (fusermount3) stay in our pid namespace. */
		if (pidns >= 0 && setns(pidns, CLONE_NEWPID) == -1)
			fuse_log(FUSE_LOG_ERR, "passthrough_dax: sandbox: back to our pid "
				 "namespace: %s\n", strerror(errno));
		if (pidns >= 0)
			close(pidns);
		close(alive[0]);
		if (sb->transport != TRANSPORT_MOUNT)
			monitor_let_go_of(fuse_session_fd(se));
		*status = monitor_wait(pid);
		close(alive[1]);
		return 1;
	}

	/* The server. */
	if (pidns >= 0)
		close(pidns);
	close(alive[1]);
	ret = server_tie_to_monitor(alive[0]);
	close(alive[0]);
	if (ret == 0 && sb->mode == SANDBOX_NAMESPACE) {
		if (root && unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) == -1) {
			fprintf(stderr, "passthrough_dax: sandbox=namespace: unshare: %s\n",
				strerror(errno));
			ret = -1;
		} else if (!root) {
			ret = enter_user_namespace();
		}
		if (ret == 0)
			ret = pivot_into_source(sb->source, root, sb->readonly, &proc_fd);
	} else if (ret == 0) {
		ret = chroot_into_source(sb->source, &proc_fd);
	}
	if (ret == 0)
		ret = adopt_new_root(fs, proc_fd);
	/* Not root: only what the user namespace gave and modcaps asks for. */
	if (ret == 0)
		ret = caps_limit(root ? sb->caps_keep : sb->caps_add & ~sb->caps_drop);
	if (ret) {
		/* The monitor unmounts and reports our status. */
		fflush(stderr);
		_exit(1);
	}
	fuse_log(FUSE_LOG_INFO, "passthrough_dax: sandbox=%s: serving with %s as the root%s%s\n",
		 sb->mode == SANDBOX_NAMESPACE ? (root ? "namespace (pid, mount, net, ipc)"
						       : "namespace (user, mount, net, ipc)")
					       : "chroot",
		 sb->source, sb->readonly && sb->mode == SANDBOX_NAMESPACE ? ", read-only" : "",
		 (root ? sb->caps_keep : sb->caps_add & ~sb->caps_drop) ? ""
									 : ", no capabilities");
	return 0;

out_close:
	if (pidns >= 0)
		close(pidns);
	return -1;
}

/*
 * The capabilities the server keeps: the default set, plus
 * CAP_DAC_READ_SEARCH when inodes use file handles (open_by_handle_at
 * needs it), adjusted by -o modcaps=.
 */
uint64_t sandbox_caps(const struct pd_sandbox *sb, bool file_handles)
{
	uint64_t keep = CAPS_DEFAULT;

	if (file_handles)
		keep |= CAP_BIT(CAP_DAC_READ_SEARCH);
	return (keep | sb->caps_add) & ~sb->caps_drop;
}
