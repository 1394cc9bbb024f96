/*
 * The process helpers of the libfuse API: fuse_parse_cmdline() for the
 * generic options and the mount point, its help text, fuse_daemonize(),
 * and the library's version.
 */
#include "fuse_i.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FUSEDAX_PKGVERSION
#define FUSEDAX_PKGVERSION "0.1.0"
#endif

int fuse_version(void)
{
	return FUSE_MAJOR_VERSION * 100 + FUSE_MINOR_VERSION;
}

const char *fuse_pkgversion(void)
{
	return FUSEDAX_PKGVERSION;
}

enum { CMDLINE_KEY_DASH_D = 1 };

#define CMDLINE_OPT(t, member, v)                                              \
	{ t, offsetof(struct fuse_cmdline_opts, member), v }

static const struct fuse_opt cmdline_opts[] = {
	CMDLINE_OPT("-h", show_help, 1),
	CMDLINE_OPT("--help", show_help, 1),
	CMDLINE_OPT("-V", show_version, 1),
	CMDLINE_OPT("--version", show_version, 1),
	/* Debugging output only makes sense with the terminal kept. */
	CMDLINE_OPT("-d", debug, 1),
	CMDLINE_OPT("-d", foreground, 1),
	CMDLINE_OPT("debug", debug, 1),
	CMDLINE_OPT("debug", foreground, 1),
	/* The session turns on its request tracing from "-o debug". */
	FUSE_OPT_KEY("-d", CMDLINE_KEY_DASH_D),
	FUSE_OPT_KEY("debug", FUSE_OPT_KEY_KEEP),
	CMDLINE_OPT("-f", foreground, 1),
	CMDLINE_OPT("-s", singlethread, 1),
	CMDLINE_OPT("clone_fd", clone_fd, 1),
	CMDLINE_OPT("--clone-fd", clone_fd, 1),
	CMDLINE_OPT("max_idle_threads=%u", max_idle_threads, 0),
	CMDLINE_OPT("max_threads=%u", max_threads, 0),
	/* An explicit subtype replaces the default one; the mount uses it. */
	CMDLINE_OPT("subtype=", nodefault_subtype, 1),
	FUSE_OPT_KEY("subtype=", FUSE_OPT_KEY_KEEP),
	FUSE_OPT_END
};

/* "/dev/fd/N": the caller already holds a connection (see lib/mount.h). */
static int is_dev_fd_path(const char *path)
{
	const char *n = path + strlen("/dev/fd/");

	if (strncmp(path, "/dev/fd/", strlen("/dev/fd/")) != 0 || !*n)
		return 0;
	return strspn(n, "0123456789") == strlen(n);
}

/*
 * A mount point that names a transport ("vhost-user:SOCKET") chooses it
 * for the session: fuse_session_new() gets the option it stands for
 * ("-ovhost_user_socket=SOCKET"), so the transport is known before the file
 * system creates a DAX window, as with the option itself.
 */
static int add_scheme_option(const struct transport_class *tc, const char *arg,
			     struct fuse_args *outargs)
{
	const char *value = strchr(arg, ':');
	char *escaped = NULL, *opt;
	int res = -1;

	if (!tc->scheme_option || !value)
		return 0;
	if (fuse_opt_add_opt_escaped(&escaped, value + 1) < 0)
		return -1;
	opt = malloc(strlen("-o") + strlen(tc->scheme_option) + strlen(escaped) + 1);
	if (!opt) {
		fuse_log(FUSE_LOG_ERR, "fuse: memory allocation failed\n");
		goto out_free;
	}
	strcpy(opt, "-o");
	strcat(opt, tc->scheme_option);
	strcat(opt, escaped);
	res = fuse_opt_add_arg(outargs, opt);
	free(opt);
out_free:
	free(escaped);
	return res;
}

static int set_mountpoint(struct fuse_cmdline_opts *opts, const char *arg,
			  struct fuse_args *outargs)
{
	const struct transport_class *tc = transport_for_mountpoint(arg);

	if (opts->mountpoint) {
		fuse_log(FUSE_LOG_ERR, "fuse: invalid argument `%s'\n", arg);
		return -1;
	}
	if (tc && add_scheme_option(tc, arg, outargs) < 0)
		return -1;
	/*
	 * Absolute, so that it survives fuse_daemonize()'s chdir("/"). One that
	 * cannot be resolved is kept as given: mounting reports why it fails.
	 * /dev/fd/N must not be resolved: it names a descriptor, not a file;
	 * nor a transport's mount point, even if a file of that name exists.
	 */
	if (!is_dev_fd_path(arg) && !tc)
		opts->mountpoint = realpath(arg, NULL);
	if (!opts->mountpoint)
		opts->mountpoint = strdup(arg);
	if (!opts->mountpoint) {
		fuse_log(FUSE_LOG_ERR, "fuse: memory allocation failed\n");
		return -1;
	}
	return 0;
}

static int cmdline_proc(void *data, const char *arg, int key,
			struct fuse_args *outargs)
{
	struct fuse_cmdline_opts *opts = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		return set_mountpoint(opts, arg, outargs) < 0 ? -1 : 0;
	case CMDLINE_KEY_DASH_D:
		return fuse_opt_add_arg(outargs, "-odebug") < 0 ? -1 : 0;
	default:
		return 1; /* not ours: leave it for the session and the mount */
	}
}

/* "-osubtype=<program name>", so the mount table names the file system. */
static int add_default_subtype(struct fuse_args *args)
{
	const char *prog, *slash;
	char *name = NULL, *opt;
	int res = -1;

	if (args->argc < 1 || !args->argv[0])
		return 0;
	prog = args->argv[0];
	slash = strrchr(prog, '/');
	if (slash)
		prog = slash + 1;
	if (!*prog)
		return 0;
	/* The name is one item of a "-o" list: escape its commas. */
	if (fuse_opt_add_opt_escaped(&name, prog) < 0)
		return -1;
	opt = malloc(strlen("-osubtype=") + strlen(name) + 1);
	if (!opt) {
		fuse_log(FUSE_LOG_ERR, "fuse: memory allocation failed\n");
		goto out_free;
	}
	strcpy(opt, "-osubtype=");
	strcat(opt, name);
	res = fuse_opt_insert_arg(args, 1, opt);
	free(opt);
out_free:
	free(name);
	return res;
}

int fuse_parse_cmdline(struct fuse_args *args, struct fuse_cmdline_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->max_idle_threads = UINT_MAX; /* no limit: idle threads stay */
	opts->max_threads = 10;

	if (fuse_opt_parse(args, opts, cmdline_opts, cmdline_proc) < 0)
		goto out_fail;
	if (!opts->nodefault_subtype && add_default_subtype(args) < 0)
		goto out_fail;
	return 0;

out_fail:
	free(opts->mountpoint);
	opts->mountpoint = NULL;
	return -1;
}

/*
 * Help is output the user asked for, printed where the program's own usage
 * line goes (stdout), so the two appear in order.
 */
void fuse_cmdline_help(void)
{
	printf("    -h   --help            show this help and exit\n"
	       "    -V   --version         show the version and exit\n"
	       "    -d   -o debug          trace every request and reply; implies -f\n"
	       "    -f                     stay in the foreground\n"
	       "    -s                     serve requests from one thread only\n"
	       "    --clone-fd, -o clone_fd\n"
	       "                           give each worker thread its own /dev/fuse descriptor\n"
	       "    -o max_idle_threads=N  keep at most N idle worker threads (default: no limit)\n"
	       "    -o max_threads=N       start at most N worker threads (default: 10)\n"
	       "    -o subtype=NAME        file system type shown as fuse.NAME\n"
	       "                           (default: the program's name)\n");
}

static void daemon_child_report(int fd, unsigned char status)
{
	ssize_t unused = write(fd, &status, 1);

	(void)unused;
	close(fd);
}

/* Point stdin, stdout and stderr at /dev/null. */
static int stdio_to_dev_null(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (fd > 2)
		close(fd);
	return 0;
}

/*
 * The parent stays until the child has detached, then exits with the
 * child's verdict, so a shell sees a failure to daemonize.
 */
int fuse_daemonize(int foreground)
{
	unsigned char status = 1;
	int ready[2];
	pid_t pid;
	int err;

	if (foreground)
		return 0;
	if (pipe2(ready, O_CLOEXEC) < 0) {
		fuse_log(FUSE_LOG_ERR, "fuse: daemonize: pipe: %s\n",
			 strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fuse_log(FUSE_LOG_ERR, "fuse: daemonize: fork: %s\n",
			 strerror(errno));
		close(ready[0]);
		close(ready[1]);
		return -1;
	}
	if (pid > 0) {
		close(ready[1]);
		if (read(ready[0], &status, 1) != 1)
			status = 1; /* the child died before it could say */
		_exit(status);
	}
	close(ready[0]);
	if (setsid() < 0) {
		fuse_log(FUSE_LOG_ERR, "fuse: daemonize: setsid: %s\n",
			 strerror(errno));
		goto out_report;
	}
	if (chdir("/") < 0) {
		fuse_log(FUSE_LOG_ERR, "fuse: daemonize: chdir /: %s\n",
			 strerror(errno));
		goto out_report;
	}
	err = stdio_to_dev_null();
	if (err < 0) {
		fuse_log(FUSE_LOG_ERR, "fuse: daemonize: /dev/null: %s\n",
			 strerror(-err));
		goto out_report;
	}
	daemon_child_report(ready[1], 0);
	return 0;

out_report:
	daemon_child_report(ready[1], 1);
	return -1;
}
