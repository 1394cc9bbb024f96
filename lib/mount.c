/*
 * The mount layer: mount options, mount(2) for a privileged process, the
 * fusermount3 helper for everyone else (and for auto_unmount), unmount.
 */
#include "mount.h"
#include "fuse_log.h"

#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MOUNT_HELPER "fusermount3"
#define MOUNT_HELPER_FALLBACK "/usr/bin/fusermount3"
#define MOUNT_COMMFD_ENV "_FUSE_COMMFD"
#define MOUNT_DEFAULT_SOURCE "fusedax"

/*
 * A process that unmounts when its socket or pipe closes: fusermount3 with
 * auto_unmount, or our own watcher (see spawn_watcher()).
 */
struct mount_helper {
	struct mount_helper *next;
	int fuse_fd;	/* the mount's /dev/fuse fd, the lookup key */
	int sock;	/* our end; closing it tells the helper to unmount */
	pid_t pid;
	bool watcher;	/* ours: a byte before the close says "don't" */
};

/* Helpers live outside the const options they were started for. */
struct mount_live {
	struct mount_helper *helpers;
};

struct mount_opts {
	unsigned long flags;	/* MS_* for mount(2) */
	int allow_other;
	int allow_root;
	int auto_unmount;
	char *fsname;
	char *subtype;
	char *kernel_opts;	/* for mount(2)'s data, after fd=...,rootmode=... */
	char *helper_opts;	/* for fusermount3 -o, all but the flags */
	struct mount_live *live;
};

enum mount_key {
	KEY_FLAG_SET = 1,	/* + index into mount_flags[] */
	KEY_FLAG_CLEAR = 100,	/* + index into mount_flags[] */
	KEY_ALLOW_OTHER = 200,
	KEY_ALLOW_ROOT,
	KEY_AUTO_UNMOUNT,
	KEY_FSNAME,
	KEY_SUBTYPE,
	KEY_KERNEL,		/* passed to the kernel and to fusermount3 */
};

/* Options that are mount(2) flags: "set" name, "clear" name, flag. */
static const struct mount_flag {
	const char *set;
	const char *clear;
	unsigned long flag;
} mount_flags[] = {
	{ "ro", "rw", MS_RDONLY },
	{ "nosuid", "suid", MS_NOSUID },
	{ "nodev", "dev", MS_NODEV },
	{ "noexec", "exec", MS_NOEXEC },
	{ "sync", "async", MS_SYNCHRONOUS },
	{ "noatime", "atime", MS_NOATIME },
	{ "nodiratime", "diratime", MS_NODIRATIME },
	{ "relatime", "norelatime", MS_RELATIME },
	{ "strictatime", "nostrictatime", MS_STRICTATIME },
	{ "lazytime", "nolazytime", MS_LAZYTIME },
	{ "dirsync", NULL, MS_DIRSYNC },
};

#define MOUNT_FLAG_COUNT (sizeof(mount_flags) / sizeof(mount_flags[0]))

static const struct fuse_opt mount_named_opts[] = {
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("allow_root", KEY_ALLOW_ROOT),
	FUSE_OPT_KEY("auto_unmount", KEY_AUTO_UNMOUNT),
	FUSE_OPT_KEY("fsname=", KEY_FSNAME),
	FUSE_OPT_KEY("subtype=", KEY_SUBTYPE),
	FUSE_OPT_KEY("default_permissions", KEY_KERNEL),
	FUSE_OPT_KEY("max_read=", KEY_KERNEL),
	FUSE_OPT_KEY("blksize=", KEY_KERNEL),
	FUSE_OPT_KEY("context=", KEY_KERNEL),
	FUSE_OPT_KEY("fscontext=", KEY_KERNEL),
	FUSE_OPT_KEY("defcontext=", KEY_KERNEL),
	FUSE_OPT_KEY("rootcontext=", KEY_KERNEL),
	FUSE_OPT_END
};

#define MOUNT_NAMED_COUNT                                                      \
	(sizeof(mount_named_opts) / sizeof(mount_named_opts[0]))

#define MOUNT_TABLE_SIZE (2 * MOUNT_FLAG_COUNT + MOUNT_NAMED_COUNT)

/* Fill the parse table: the flag words, then the named options. */
static void mount_opt_table(struct fuse_opt table[MOUNT_TABLE_SIZE])
{
	size_t n = 0;

	for (size_t i = 0; i < MOUNT_FLAG_COUNT; i++) {
		table[n++] = (struct fuse_opt)FUSE_OPT_KEY(mount_flags[i].set,
							   KEY_FLAG_SET + (int)i);
		if (mount_flags[i].clear)
			table[n++] = (struct fuse_opt)FUSE_OPT_KEY(
				mount_flags[i].clear, KEY_FLAG_CLEAR + (int)i);
	}
	memcpy(&table[n], mount_named_opts, sizeof(mount_named_opts));
	n += MOUNT_NAMED_COUNT;
	while (n < MOUNT_TABLE_SIZE)
		table[n++] = (struct fuse_opt)FUSE_OPT_END;
}

/* "x-" is a prefix, not a template: match it by hand. */
static int is_user_space_opt(const char *arg)
{
	return strncmp(arg, "x-", 2) == 0;
}

static int add_opt(char **list, const char *opt)
{
	return fuse_opt_add_opt_escaped(list, opt) < 0 ? -ENOMEM : 0;
}

/* The kernel parses "context=a,b" only with the value in double quotes. */
static int add_kernel_opt(struct mount_opts *mo, const char *opt)
{
	const char *eq = strchr(opt, '=');
	char *quoted;
	int res;

	if (!eq || !strchr(eq, ',') || strstr(opt, "context=") == NULL)
		return fuse_opt_add_opt(&mo->kernel_opts, opt) < 0 ? -ENOMEM : 0;
	quoted = malloc(strlen(opt) + 3);
	if (!quoted)
		return -ENOMEM;
	sprintf(quoted, "%.*s\"%s\"", (int)(eq - opt + 1), opt, eq + 1);
	res = fuse_opt_add_opt(&mo->kernel_opts, quoted) < 0 ? -ENOMEM : 0;
	free(quoted);
	return res;
}

static int set_string(char **dst, const char *arg)
{
	char *copy = strdup(strchr(arg, '=') + 1);

	if (!copy)
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

static int mount_opt_key(struct mount_opts *mo, const char *arg, int key)
{
	if (key >= KEY_FLAG_SET && key < KEY_FLAG_SET + (int)MOUNT_FLAG_COUNT) {
		mo->flags |= mount_flags[key - KEY_FLAG_SET].flag;
		return 0;
	}
	if (key >= KEY_FLAG_CLEAR &&
	    key < KEY_FLAG_CLEAR + (int)MOUNT_FLAG_COUNT) {
		mo->flags &= ~mount_flags[key - KEY_FLAG_CLEAR].flag;
		return 0;
	}
	switch (key) {
	case KEY_ALLOW_OTHER:
		mo->allow_other = 1;
		return add_opt(&mo->helper_opts, arg);
	case KEY_ALLOW_ROOT:
		mo->allow_root = 1;
		return add_opt(&mo->helper_opts, arg);
	case KEY_AUTO_UNMOUNT:
		mo->auto_unmount = 1;
		return add_opt(&mo->helper_opts, arg);
	case KEY_FSNAME:
		return set_string(&mo->fsname, arg);
	case KEY_SUBTYPE:
		return set_string(&mo->subtype, arg);
	case KEY_KERNEL:
		if (add_kernel_opt(mo, arg) < 0)
			return -ENOMEM;
		return add_opt(&mo->helper_opts, arg);
	default:
		return 0;
	}
}

struct mount_parse {
	struct mount_opts *mo;
	int err;
};

static int mount_opt_proc(void *data, const char *arg, int key,
			  struct fuse_args *outargs)
{
	struct mount_parse *mp = data;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT)
		return 1;
	if (key == FUSE_OPT_KEY_OPT)
		return is_user_space_opt(arg) ? 0 : 1;
	mp->err = mount_opt_key(mp->mo, arg, key);
	return mp->err < 0 ? -1 : 0;
}

void mount_opts_free(struct mount_opts *mo)
{
	if (!mo)
		return;
	if (mo->live) {
		/* A helper still running would unmount when we exit anyway. */
		for (struct mount_helper *h = mo->live->helpers, *next; h;
		     h = next) {
			next = h->next;
			close(h->sock);
			free(h);
		}
		free(mo->live);
	}
	free(mo->fsname);
	free(mo->subtype);
	free(mo->kernel_opts);
	free(mo->helper_opts);
	free(mo);
}

int mount_opts_parse(struct fuse_args *args, struct mount_opts **out)
{
	struct mount_parse mp = { .mo = calloc(1, sizeof(*mp.mo)) };
	struct fuse_opt table[MOUNT_TABLE_SIZE];

	mount_opt_table(table);
	*out = NULL;
	if (!mp.mo || !(mp.mo->live = calloc(1, sizeof(*mp.mo->live)))) {
		mp.err = -ENOMEM;
		goto out_fail;
	}
	mp.mo->flags = MS_NOSUID | MS_NODEV;
	if (fuse_opt_parse(args, &mp, table, mount_opt_proc) < 0) {
		if (!mp.err)
			mp.err = -EINVAL;
		goto out_fail;
	}
	*out = mp.mo;
	return 0;

out_fail:
	if (mp.err == -ENOMEM)
		fuse_log(FUSE_LOG_ERR, "fuse: mount options: %s\n",
			 strerror(ENOMEM));
	mount_opts_free(mp.mo);
	return mp.err;
}

unsigned int mount_opts_max_read(const struct mount_opts *mo)
{
	const char *p = mo ? mo->kernel_opts : NULL;

	/* An option starts the list or follows a comma. */
	for (; p && (p = strstr(p, "max_read=")); p++)
		if (p == mo->kernel_opts || p[-1] == ',')
			return (unsigned int)strtoul(p + strlen("max_read="), NULL, 10);
	return 0;
}

int mount_opts_allow_root(const struct mount_opts *mo)
{
	return mo && mo->allow_root;
}

/* ------------------------------------------------------------------------
 * Mount point checks.
 */

/* Returns N for "/dev/fd/N", -1 for any other path. */
static int dev_fd_number(const char *path)
{
	const char *n = path + strlen("/dev/fd/");
	char *end;
	long v;

	if (strncmp(path, "/dev/fd/", strlen("/dev/fd/")) != 0 || *n < '0' ||
	    *n > '9')
		return -1;
	errno = 0;
	v = strtol(n, &end, 10);
	if (*end || errno || v > 0x7fffffff)
		return -1;
	return (int)v;
}

static int check_mountpoint(const char *mountpoint, struct stat *st)
{
	if (stat(mountpoint, st) < 0) {
		int err = -errno;

		fuse_log(FUSE_LOG_ERR, "fuse: bad mount point `%s': %s\n",
			 mountpoint, strerror(-err));
		return err;
	}
	if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode)) {
		fuse_log(FUSE_LOG_ERR,
			 "fuse: bad mount point `%s': not a directory or a regular file\n",
			 mountpoint);
		return -ENOTDIR;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Privileged mount with mount(2).
 */

static const char *mount_source(const struct mount_opts *mo)
{
	return mo->fsname ? mo->fsname : MOUNT_DEFAULT_SOURCE;
}

static char *kernel_data(int fd, const struct stat *st,
			 const struct mount_opts *mo)
{
	char *data = NULL;
	int n;

	n = asprintf(&data, "fd=%d,rootmode=%o,user_id=%u,group_id=%u%s%s%s",
		     fd, st->st_mode & S_IFMT, getuid(), getgid(),
		     mo->kernel_opts ? "," : "",
		     mo->kernel_opts ? mo->kernel_opts : "",
		     mo->allow_other || mo->allow_root ? ",allow_other" : "");
	return n < 0 ? NULL : data;
}

/* The options column of an /etc/mtab line. */
static char *mtab_opts(const struct mount_opts *mo)
{
	char *opts = NULL;

	if (fuse_opt_add_opt(&opts, mo->flags & MS_RDONLY ? "ro" : "rw") < 0)
		return NULL;
	for (size_t i = 1; i < MOUNT_FLAG_COUNT; i++) {
		const char *word = (mo->flags & mount_flags[i].flag) ? mount_flags[i].set : NULL;

		/* fusermount3 mounts nosuid,nodev unless told suid/dev. */
		if (!word && (mount_flags[i].flag & (MS_NOSUID | MS_NODEV)))
			word = mount_flags[i].clear;
		if (word && fuse_opt_add_opt(&opts, word) < 0)
			goto out_free;
	}
	if (mo->helper_opts && fuse_opt_add_opt(&opts, mo->helper_opts) < 0)
		goto out_free;
	return opts;

out_free:
	free(opts);
	return NULL;
}

/* Only a real /etc/mtab needs an entry; a link to /proc is the kernel's. */
static void mtab_add(const char *mountpoint, const char *type,
		     const struct mount_opts *mo)
{
	struct stat st;
	struct mntent ent;
	FILE *f;

	if (lstat("/etc/mtab", &st) < 0 || !S_ISREG(st.st_mode))
		return;
	ent = (struct mntent){ .mnt_fsname = (char *)mount_source(mo),
			       .mnt_dir = (char *)mountpoint,
			       .mnt_type = (char *)type,
			       .mnt_opts = mtab_opts(mo) };
	f = setmntent("/etc/mtab", "a");
	if (!f || !ent.mnt_opts || addmntent(f, &ent) != 0)
		fuse_log(FUSE_LOG_WARNING,
			 "fuse: could not add `%s' to /etc/mtab\n", mountpoint);
	if (f)
		endmntent(f);
	free(ent.mnt_opts);
}

static int try_mount(const char *source, const char *mountpoint,
		     const char *type, const struct mount_opts *mo,
		     const char *data)
{
	if (mount(source, mountpoint, type, mo->flags, data) < 0)
		return -errno;
	return 0;
}

/* Returns the fd, -EPERM when the caller should try fusermount3. */
static int mount_direct(const char *mountpoint, const struct stat *st,
			const struct mount_opts *mo)
{
	char *data, *type = NULL, *source = NULL;
	int fd, err;

	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err == -EACCES || err == -EPERM)
			return -EPERM;
		fuse_log(FUSE_LOG_ERR, "fuse: cannot open /dev/fuse: %s%s\n",
			 strerror(-err),
			 err == -ENOENT ? " (is the fuse module loaded?)" : "");
		return err;
	}
	data = kernel_data(fd, st, mo);
	if (!data || asprintf(&type, "fuse%s%s", mo->subtype ? "." : "",
			      mo->subtype ? mo->subtype : "") < 0) {
		type = NULL;
		err = -ENOMEM;
		goto out_close;
	}
	err = try_mount(mount_source(mo), mountpoint, type, mo, data);
	if (err == -ENODEV && mo->subtype) {
		/* An old kernel without subtypes: say it in the source. */
		if (asprintf(&source, "%s#%s", mo->subtype, mount_source(mo)) < 0) {
			source = NULL;
			err = -ENOMEM;
			goto out_close;
		}
		err = try_mount(source, mountpoint, "fuse", mo, data);
	}
	if (err == -EPERM)
		goto out_close;
	if (err < 0) {
		fuse_log(FUSE_LOG_ERR, "fuse: mount failed on `%s': %s\n",
			 mountpoint, strerror(-err));
		goto out_close;
	}
	mtab_add(mountpoint, source ? "fuse" : type, mo);
	free(data);
	free(type);
	free(source);
	return fd;

out_close:
	if (err == -ENOMEM)
		fuse_log(FUSE_LOG_ERR, "fuse: mount failed on `%s': %s\n",
			 mountpoint, strerror(ENOMEM));
	free(data);
	free(type);
	free(source);
	close(fd);
	return err;
}

/* ------------------------------------------------------------------------
 * fusermount3: runs setuid root, mounts, and sends the /dev/fuse fd back
 * over the socket named by $_FUSE_COMMFD as SCM_RIGHTS with one byte.
 */

/* The helper's path: the first on PATH, else the Debian location. */
static char *find_helper(void)
{
	const char *path = getenv("PATH");
	char *dirs, *dir, *save = NULL, *file = NULL;

	if (path && (dirs = strdup(path))) {
		for (dir = strtok_r(dirs, ":", &save); dir && !file;
		     dir = strtok_r(NULL, ":", &save)) {
			if (asprintf(&file, "%s/%s", dir, MOUNT_HELPER) < 0) {
				file = NULL;
				break;
			}
			if (access(file, X_OK) != 0) {
				free(file);
				file = NULL;
			}
		}
		free(dirs);
	}
	if (!file && access(MOUNT_HELPER_FALLBACK, X_OK) == 0)
		file = strdup(MOUNT_HELPER_FALLBACK);
	if (!file)
		fuse_log(FUSE_LOG_ERR,
			 "fuse: %s not found on PATH nor at %s (install fuse3)\n",
			 MOUNT_HELPER, MOUNT_HELPER_FALLBACK);
	return file;
}

/* environ without any _FUSE_COMMFD, plus ours; built before fork(). */
static char **helper_env(int commfd)
{
	extern char **environ;
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	if (asprintf(&env[k++], MOUNT_COMMFD_ENV "=%d", commfd) < 0) {
		free(env);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], MOUNT_COMMFD_ENV "=",
			    strlen(MOUNT_COMMFD_ENV "=")) != 0)
			env[k++] = environ[i];
	return env;
}

/*
 * Run the helper with argv; commfd, if >= 0, is inherited by it. Returns
 * the pid or a negative errno. Only async-signal-safe calls after fork().
 */
static pid_t spawn_helper(const char *helper, char *const argv[],
			  char *const envp[], int commfd, int quiet)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid > 0)
		return pid;
	if (commfd >= 0 && fcntl(commfd, F_SETFD, 0) < 0)
		_exit(127);
	if (quiet) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
	}
	execve(helper, argv, envp);
	_exit(127);
}

/* Receive the fd fusermount3 sends; 0 (and no fd) if it sent nothing. */
static int receive_fd(int sock)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cmsg;
	ssize_t n;
	int fd;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	cmsg = CMSG_FIRSTHDR(&msg);
	if (n == 0 || !cmsg || cmsg->cmsg_level != SOL_SOCKET ||
	    cmsg->cmsg_type != SCM_RIGHTS ||
	    cmsg->cmsg_len != CMSG_LEN(sizeof(int)))
		return -ENODATA;
	memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
	return fd;
}

static int wait_helper(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return status;
}

/* Append "name=value" with value's commas escaped. */
static int add_named_opt(char **opts, const char *name, const char *value)
{
	char *opt;
	int res;

	if (!value)
		return 0;
	if (asprintf(&opt, "%s=%s", name, value) < 0)
		return -1;
	res = fuse_opt_add_opt_escaped(opts, opt);
	free(opt);
	return res;
}

/* "-o" for fusermount3: the flag words, then the named options. */
static char *helper_opts(const struct mount_opts *mo)
{
	char *opts = mtab_opts(mo);

	if (!opts)
		return NULL;
	if (add_named_opt(&opts, "fsname", mo->fsname) < 0 ||
	    add_named_opt(&opts, "subtype", mo->subtype) < 0) {
		free(opts);
		return NULL;
	}
	return opts;
}

static int remember_helper(const struct mount_opts *mo, int fuse_fd,
			   int sock, pid_t pid, bool watcher)
{
	struct mount_helper *h = malloc(sizeof(*h));

	if (!h)
		return -ENOMEM;
	*h = (struct mount_helper){ .next = mo->live->helpers,
				    .fuse_fd = fuse_fd, .sock = sock,
				    .pid = pid, .watcher = watcher };
	mo->live->helpers = h;
	return 0;
}

/*
 * The watcher's life, in a child of fork(): async-signal-safe calls only.
 * It keeps no descriptor but its pipe (a /dev/fuse fd kept here would keep
 * a dead server's connection alive), waits for the pipe to end, and then,
 * unless it was sent a byte first, unmounts with argv ("fusermount3 -u -q
 * -z -- MOUNTPOINT") if the mount point still shows a dead connection:
 * statfs() always asks the server, so ENOTCONN (or ECONNABORTED) means
 * exactly that, and a live file system mounted there since is left alone.
 */
static void __attribute__((noreturn))
watcher_main(int rfd, const char *helper, char *const argv[],
	     const char *mountpoint)
{
	extern char **environ;
	static const int sigs[] = { SIGHUP, SIGINT, SIGTERM, SIGPIPE };
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	struct statfs sfs;
	sigset_t none;
	ssize_t n;
	char byte;
	int null;

	/* Not in the server's process group: a terminal's ^C is not for us. */
	setsid();
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	if (rfd > 3)
		close_range(3, rfd - 1, 0);
	close_range(rfd + 1, ~0U, 0);
	do
		n = read(rfd, &byte, 1);
	while (n < 0 && errno == EINTR);
	if (n != 0)
		_exit(0);
	/* ECONNABORTED: asked while the dead server's fd was being released. */
	if (statfs(mountpoint, &sfs) == 0 ||
	    (errno != ENOTCONN && errno != ECONNABORTED))
		_exit(0);
	execve(helper, argv, environ);
	_exit(127);
}

/*
 * fusermount3 before libfuse 3.15 (libfuse issue #586) cannot honour
 * auto_unmount for a user's mount without allow_other: it checks the mount
 * as root, whom the kernel keeps out. So an unprivileged process also
 * starts this watcher, running as the user, which unmounts in its place
 * (with a fixed fusermount3 the two race harmlessly: whichever comes second
 * finds no dead connection). Returns the watcher's pid and our pipe end in
 * *wfd, or a negative errno.
 */
static pid_t spawn_watcher(const char *helper, const char *mountpoint, int *wfd)
{
	char *const argv[] = { (char *)helper, "-u", "-q", "-z", "--",
			       (char *)mountpoint, NULL };
	int p[2], err;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(p[0]);
		close(p[1]);
		return err;
	}
	if (pid == 0)
		watcher_main(p[0], helper, argv, mountpoint);
	close(p[0]);
	*wfd = p[1];
	return pid;
}

/* Send our watcher away without unmounting: we unmount ourselves. */
static void dismiss_watcher(int wfd, pid_t pid)
{
	if (write(wfd, "", 1) < 0)
		fuse_log(FUSE_LOG_DEBUG, "fuse: unmount watcher gone: %s\n",
			 strerror(errno));
	close(wfd);
	/* Not our child after a daemonizing fork: ECHILD at once. */
	wait_helper(pid);
}

static void start_watcher(const char *helper, const char *mountpoint,
			  const struct mount_opts *mo, int fuse_fd)
{
	int wfd = -1;
	pid_t pid = spawn_watcher(helper, mountpoint, &wfd);

	if (pid < 0 || remember_helper(mo, fuse_fd, wfd, pid, true) < 0) {
		fuse_log(FUSE_LOG_WARNING,
			 "fuse: `%s' may stay mounted if this process dies: cannot start an unmount watcher\n",
			 mountpoint);
		if (pid > 0)
			dismiss_watcher(wfd, pid);
	}
}

static int mount_with_helper(const char *mountpoint,
			     const struct mount_opts *mo)
{
	char *helper = find_helper(), *opts = NULL, **env = NULL;
	int sv[2] = { -1, -1 }, fd = -ENOMEM, status;
	pid_t pid;

	if (!helper)
		return -ENOENT;
	opts = helper_opts(mo);
	if (!opts)
		goto out_free;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fd = -errno;
		goto out_free;
	}
	env = helper_env(sv[1]);
	if (!env)
		goto out_free;
	char *argv[] = { helper, "-o", opts, "--", (char *)mountpoint, NULL };
	pid = spawn_helper(helper, argv, env, sv[1], 0);
	if (pid < 0) {
		fd = pid;
		goto out_free;
	}
	close(sv[1]);
	sv[1] = -1;
	fd = receive_fd(sv[0]);
	if (fd >= 0 && mo->auto_unmount && getuid() != 0)
		start_watcher(helper, mountpoint, mo, fd);
	if (fd >= 0 && mo->auto_unmount) {
		/* The helper watches sv[0]: it must stay open until unmount. */
		if (remember_helper(mo, fd, sv[0], pid, false) == 0) {
			sv[0] = -1;
			goto out_free;
		}
	}
	close(sv[0]);
	sv[0] = -1;
	status = wait_helper(pid);
	if (fd < 0) {
		fuse_log(FUSE_LOG_ERR,
			 "fuse: mount failed on `%s': %s did not mount it (exit status %d)\n",
			 mountpoint, helper,
			 status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		fd = -EIO;
	}

out_free:
	if (fd == -ENOMEM)
		fuse_log(FUSE_LOG_ERR, "fuse: mount failed on `%s': %s\n",
			 mountpoint, strerror(ENOMEM));
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (env)
		free(env[0]);
	free(env);
	free(opts);
	free(helper);
	return fd;
}

int mount_fuse(const char *mountpoint, const struct mount_opts *mo)
{
	struct stat st;
	int fd, err;

	fd = dev_fd_number(mountpoint);
	if (fd >= 0) {
		if (fcntl(fd, F_GETFD) < 0) {
			err = -errno;
			fuse_log(FUSE_LOG_ERR, "fuse: bad mount point `%s': %s\n",
				 mountpoint, strerror(-err));
			return err;
		}
		return fd;
	}
	err = check_mountpoint(mountpoint, &st);
	if (err < 0)
		return err;
	if (!mo->auto_unmount) {
		fd = mount_direct(mountpoint, &st, mo);
		if (fd != -EPERM)
			return fd;
	}
	return mount_with_helper(mountpoint, mo);
}

/* ------------------------------------------------------------------------
 * Unmount.
 */

/*
 * Let the auto_unmount helpers of fd go: fusermount3 unmounts once its
 * socket closes; our watcher is told first that we unmount ourselves.
 */
static void release_helpers(const struct mount_opts *mo, int fd)
{
	struct mount_helper **p = &mo->live->helpers;

	while (*p) {
		struct mount_helper *h = *p;

		if (h->fuse_fd != fd) {
			p = &h->next;
			continue;
		}
		*p = h->next;
		if (h->watcher) {
			dismiss_watcher(h->sock, h->pid);
		} else {
			close(h->sock);
			wait_helper(h->pid);
		}
		free(h);
	}
}

static void unmount_with_helper(const char *mountpoint)
{
	char *helper = find_helper();
	extern char **environ;
	pid_t pid;

	if (!helper)
		return;
	char *argv[] = { helper, "-u", "-q", "-z", "--", (char *)mountpoint,
			 NULL };
	pid = spawn_helper(helper, argv, environ, -1, 1);
	if (pid < 0)
		fuse_log(FUSE_LOG_ERR, "fuse: cannot run %s to unmount `%s': %s\n",
			 helper, mountpoint, strerror(-pid));
	else
		wait_helper(pid);
	free(helper);
}

/*
 * True when the connection behind fd has already ended: /dev/fuse polls as
 * POLLERR once its file system was unmounted (fusermount3 -u, umount, an
 * auto_unmount helper) or the connection was aborted. The mount point may
 * by then show another file system (one that was underneath ours, or one
 * mounted since), which must not be detached in our name.
 */
static bool connection_ended(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = 0 };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLNVAL));
}

void mount_unmount(const char *mountpoint, int fd, const struct mount_opts *mo)
{
	bool ended;

	if (fd < 0 || dev_fd_number(mountpoint) >= 0)
		return;
	ended = connection_ended(fd);
	/*
	 * Close first: that aborts the connection, so whatever touches the
	 * mount point from now on (fusermount3 opens it) fails with ENOTCONN
	 * instead of waiting for a server that no longer reads requests.
	 */
	close(fd);
	/*
	 * An auto_unmount helper unmounts when we let it go, but fusermount3
	 * before libfuse 3.15 (libfuse issue #586) cannot check a user's mount
	 * without allow_other and leaves it: unmount here as well, quietly.
	 */
	if (mo)
		release_helpers(mo, fd);
	if (ended)
		return;
	if (umount2(mountpoint, MNT_DETACH) == 0)
		return;
	if (errno == EPERM)
		unmount_with_helper(mountpoint);
	else if (errno != EINVAL && errno != ENOENT)
		fuse_log(FUSE_LOG_ERR, "fuse: unmount of `%s' failed: %s\n",
			 mountpoint, strerror(errno));
}
