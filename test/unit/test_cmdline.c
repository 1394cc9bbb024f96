/*
 * Unit test for fuse_parse_cmdline(), fuse_daemonize() and the version
 * calls: what each generic option sets, what stays in args for the session
 * and the mount, the mount point rules, and the errors a user sees.
 */
#include "fuse_lowlevel.h"

#include "check.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Parse a NULL-terminated argv; args and opts are the caller's to free. */
static int parse(char **argv, struct fuse_args *args,
		 struct fuse_cmdline_opts *opts)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	*args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	return fuse_parse_cmdline(args, opts);
}

static void check_args(const struct fuse_args *a, const char **want)
{
	int n = 0;

	while (want[n])
		n++;
	CHECK(a->argc == n);
	for (int i = 0; i < n && i < a->argc; i++)
		CHECK_STR(a->argv[i], want[i]);
}

static void test_defaults(void)
{
	struct fuse_cmdline_opts o;
	struct fuse_args a;

	CHECK(parse((char *[]){ "/usr/bin/myfs", "/tmp/../tmp", NULL }, &a, &o) == 0);
	CHECK(!o.singlethread && !o.foreground && !o.debug && !o.clone_fd);
	CHECK(!o.show_help && !o.show_version && !o.nodefault_subtype);
	CHECK(o.max_threads == 10);
	CHECK(o.max_idle_threads == UINT_MAX);
	CHECK_STR(o.mountpoint, "/tmp"); /* made absolute and canonical */
	check_args(&a, (const char *[]){ "/usr/bin/myfs", "-osubtype=myfs", NULL });
	free(o.mountpoint);
	fuse_opt_free_args(&a);
}

static void test_flags(void)
{
	struct fuse_cmdline_opts o;
	struct fuse_args a;

	CHECK(parse((char *[]){ "fs", "-s", "-f", "--clone-fd", "-o",
				"max_threads=5,max_idle_threads=2,allow_other",
				"-o", "ro", "--other", NULL }, &a, &o) == 0);
	CHECK(o.singlethread && o.foreground && o.clone_fd && !o.debug);
	CHECK(o.max_threads == 5 && o.max_idle_threads == 2);
	CHECK(o.mountpoint == NULL);
	/* Options that are not ours stay, for the session and the mount. */
	check_args(&a, (const char *[]){ "fs", "-osubtype=fs", "-o",
		"allow_other,ro", "--other", NULL });
	fuse_opt_free_args(&a);

	CHECK(parse((char *[]){ "fs", "-oclone_fd", "-h", "-V", NULL }, &a, &o) == 0);
	CHECK(o.clone_fd && o.show_help && o.show_version);
	fuse_opt_free_args(&a);
	CHECK(parse((char *[]){ "fs", "--help", "--version", NULL }, &a, &o) == 0);
	CHECK(o.show_help && o.show_version);
	fuse_opt_free_args(&a);
}

static void test_debug(void)
{
	struct fuse_cmdline_opts o;
	struct fuse_args a;

	/* -d implies -f and reaches the session as "-o debug". */
	CHECK(parse((char *[]){ "fs", "-d", NULL }, &a, &o) == 0);
	CHECK(o.debug && o.foreground);
	check_args(&a, (const char *[]){ "fs", "-osubtype=fs", "-odebug", NULL });
	fuse_opt_free_args(&a);

	CHECK(parse((char *[]){ "fs", "-o", "debug", NULL }, &a, &o) == 0);
	CHECK(o.debug && o.foreground);
	check_args(&a, (const char *[]){ "fs", "-osubtype=fs", "-o", "debug", NULL });
	fuse_opt_free_args(&a);
}

static void test_subtype(void)
{
	struct fuse_cmdline_opts o;
	struct fuse_args a;

	CHECK(parse((char *[]){ "fs", "-osubtype=mine", NULL }, &a, &o) == 0);
	CHECK(o.nodefault_subtype);
	check_args(&a, (const char *[]){ "fs", "-o", "subtype=mine", NULL });
	fuse_opt_free_args(&a);

	/* A comma in the program name is escaped in the "-o" list. */
	CHECK(parse((char *[]){ "./odd,name", NULL }, &a, &o) == 0);
	check_args(&a, (const char *[]){ "./odd,name", "-osubtype=odd\\,name", NULL });
	fuse_opt_free_args(&a);
}

static void test_mountpoints(void)
{
	struct fuse_cmdline_opts o;
	struct fuse_args a;

	/* Not there yet: kept as given, the mount will say why it fails. */
	CHECK(parse((char *[]){ "fs", "no/such/dir", NULL }, &a, &o) == 0);
	CHECK_STR(o.mountpoint, "no/such/dir");
	free(o.mountpoint);
	fuse_opt_free_args(&a);

	/* A /dev/fd/N mount point names a descriptor: never resolved. */
	CHECK(parse((char *[]){ "fs", "/dev/fd/0", NULL }, &a, &o) == 0);
	CHECK_STR(o.mountpoint, "/dev/fd/0");
	free(o.mountpoint);
	fuse_opt_free_args(&a);

	/* After "--" an argument that looks like an option is the mount point. */
	CHECK(parse((char *[]){ "fs", "-f", "--", "-weird", NULL }, &a, &o) == 0);
	CHECK_STR(o.mountpoint, "-weird");
	CHECK(o.foreground);
	free(o.mountpoint);
	fuse_opt_free_args(&a);
}

static void test_errors(void)
{
	struct fuse_cmdline_opts o;
	struct fuse_args a;
	char *argv[] = { "fs", "/tmp", "/var", NULL };

	fuse_set_log_func(capture_log);
	CHECK(parse(argv, &a, &o) == -1);
	CHECK_STR(last_log, "fuse: invalid argument `/var'\n");
	CHECK(o.mountpoint == NULL);
	CHECK(a.argv == argv); /* untouched on error */

	CHECK(parse((char *[]){ "fs", "-omax_threads=many", NULL }, &a, &o) == -1);
	CHECK_STR(last_log, "fuse: invalid parameter in option `max_threads=many'\n");
	fuse_set_log_func(NULL);
}

static void test_versions(void)
{
	CHECK(fuse_version() == FUSE_MAJOR_VERSION * 100 + FUSE_MINOR_VERSION);
	CHECK(fuse_version() == 317);
	CHECK(fuse_pkgversion() && fuse_pkgversion()[0]);
}

/*
 * fuse_daemonize(0) in a child: the child's exit status is the daemon's
 * verdict; the daemon reports its session, cwd and stdout through a pipe.
 */
static void test_daemonize(void)
{
	int p[2];
	pid_t pid;
	int status;
	char report[256] = "";

	CHECK(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		char cwd[64] = "";

		close(p[0]);
		if (chdir("/tmp") != 0 || fuse_daemonize(0) != 0)
			_exit(3);
		if (!getcwd(cwd, sizeof(cwd)))
			cwd[0] = '?';
		dprintf(p[1], "%d %d %s %d\n", getsid(0) == getpid(),
			getpid() != pid, cwd, isatty(1));
		_exit(0);
	}
	close(p[1]);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(read(p[0], report, sizeof(report) - 1) > 0);
	CHECK_STR(report, "1 1 / 0\n");
	close(p[0]);

	CHECK(fuse_daemonize(1) == 0); /* foreground: nothing happens */
}

/* -o options that tune INIT: consumed from args, applied to the conn. */
static void test_conn_info_opts(void)
{
	char *argv[] = { "fs", "-omax_write=65536,writeback_cache,readdirplus=no",
			 "-ono_remote_lock,sync_read,keepme", NULL };
	struct fuse_args a = FUSE_ARGS_INIT(3, argv);
	struct fuse_conn_info conn;
	struct fuse_conn_info_opts *o = fuse_parse_conn_info_opts(&a);
	const char *rest[] = { "fs", "-o", "keepme", NULL };

	CHECK(o != NULL);
	if (!o)
		return;
	check_args(&a, rest);
	memset(&conn, 0, sizeof(conn));
	conn.capable_ext = FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_READDIRPLUS |
			   FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_POSIX_LOCKS |
			   FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_ASYNC_READ;
	conn.capable = (uint32_t)conn.capable_ext;
	conn.want_ext = FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO |
			FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_ASYNC_READ;
	conn.want = (uint32_t)conn.want_ext;
	conn.max_write = 131072;
	fuse_apply_conn_info_opts(o, &conn);
	CHECK(conn.max_write == 65536);
	CHECK(conn.want_ext == FUSE_CAP_WRITEBACK_CACHE);
	CHECK(conn.want == (uint32_t)FUSE_CAP_WRITEBACK_CACHE);
	free(o);
	fuse_opt_free_args(&a);
}

int main(void)
{
	test_conn_info_opts();
	test_defaults();
	test_flags();
	test_debug();
	test_subtype();
	test_mountpoints();
	test_errors();
	test_versions();
	test_daemonize();
	return check_summary("test_cmdline");
}
