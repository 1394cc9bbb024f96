/*
 * Unit test for the transport registry (lib/transport.c) and how a session
 * chooses its transport: from options or from the mount point, before any
 * DAX window exists, with a clear error for every combination that cannot
 * work (two transports, a window of this process's memory under
 * vhost-user, a mount point that contradicts the options). Also the
 * vhost-user socket the mount creates: its mode, its group, and that the
 * mount returns before any VMM connects.
 */
#include "fuse_dax.h"
#include "fuse_i.h"

#include "check.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Everything the library logged since the last reset. */
static char logged[4096];

static void collect_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	size_t used = strlen(logged);

	(void)level;
	if (used < sizeof(logged) - 1)
		vsnprintf(logged + used, sizeof(logged) - used, fmt, ap);
}

#define CHECK_LOGGED(text)                                                   \
	do {                                                                 \
		if (!strstr(logged, (text))) {                               \
			fprintf(stderr, "%s:%d: log lacks \"%s\"; it is:\n%s\n", \
				__FILE__, __LINE__, (text), logged);         \
			failures++;                                          \
		}                                                            \
	} while (0)

static const struct fuse_lowlevel_ops no_ops;
static char dir[64];

/* A session from a NULL-terminated argv; NULL if fuse_session_new refuses. */
static struct fuse_session *session(char **argv)
{
	int argc = 0;
	struct fuse_args args;
	struct fuse_session *se;

	while (argv[argc])
		argc++;
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	logged[0] = '\0';
	se = fuse_session_new(&args, &no_ops, sizeof(no_ops), NULL);
	fuse_opt_free_args(&args);
	return se;
}

static char *path_in_dir(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static void test_lookup(void)
{
	CHECK(transport_classes[0] == &transport_dev_class);
	CHECK(transport_for_mountpoint("vhost-user") == &transport_vhost_user_class);
	CHECK(transport_for_mountpoint("vhost-user:/s") == &transport_vhost_user_class);
	CHECK(transport_for_mountpoint("vhost-users") == NULL);
	CHECK(transport_for_mountpoint("/mnt/vhost-user") == NULL);
	CHECK(transport_for_mountpoint("/dev/fd/3") == NULL);
	CHECK(transport_for_mountpoint(NULL) == NULL);
}

/*
 * fuse_parse_cmdline() passes the transport a mount point names on to the
 * session, so the window made before mounting is the right kind. Without
 * this, "vhost-user:SOCK" made a local window and the guest hung.
 */
static void test_scheme_reaches_session(void)
{
	char sock[128], mp[160];
	char *argv[] = { "fs", mp, NULL };
	struct fuse_args a = FUSE_ARGS_INIT(2, argv);
	struct fuse_cmdline_opts o;
	struct fuse_dax_window *w = NULL;
	struct fuse_session *se;

	snprintf(sock, sizeof(sock), "%s", path_in_dir("a,b.sock"));
	snprintf(mp, sizeof(mp), "vhost-user:%s", sock);
	CHECK(fuse_parse_cmdline(&a, &o) == 0);
	CHECK_STR(o.mountpoint, mp);	/* never resolved as a path */
	CHECK(a.argc == 3);
	if (a.argc == 3) {
		char want[200];

		snprintf(want, sizeof(want), "-ovhost_user_socket=%s/a\\,b.sock", dir);
		CHECK_STR(a.argv[2], want);
	}
	logged[0] = '\0';
	se = fuse_session_new(&a, &no_ops, sizeof(no_ops), NULL);
	CHECK(se != NULL);
	if (se) {
		CHECK(se->tc == &transport_vhost_user_class);
		CHECK(fuse_dax_window_new_for_session(se, 1 << 20, 0, &w) == 0);
		CHECK(w && fuse_dax_window_base(w) == NULL);	/* the VMM's window */
		CHECK(fuse_session_set_dax_window(se, w) == 0);
		fuse_session_destroy(se);
	}
	fuse_dax_window_destroy(w);
	free(o.mountpoint);
	fuse_opt_free_args(&a);

	/* The bare "vhost-user" names no socket: nothing to pass on. */
	argv[1] = "vhost-user";
	a = (struct fuse_args)FUSE_ARGS_INIT(2, argv);
	CHECK(fuse_parse_cmdline(&a, &o) == 0);
	CHECK_STR(o.mountpoint, "vhost-user");
	CHECK(a.argc == 2);
	free(o.mountpoint);
	fuse_opt_free_args(&a);
}

static void test_option_spellings(void)
{
	struct fuse_dax_window *w = NULL;
	struct fuse_session *se;
	char opt[160];

	snprintf(opt, sizeof(opt), "vhost_user_socket=%s", path_in_dir("s"));
	se = session((char *[]){ "fs", "-o", opt, NULL });
	CHECK(se && se->tc == &transport_vhost_user_class);
	if (se) {
		CHECK(fuse_dax_window_new_for_session(se, 1 << 20, 0, &w) == 0);
		CHECK(w && fuse_dax_window_base(w) == NULL);
		fuse_dax_window_destroy(w);
		fuse_session_destroy(se);
	}
	/* The session owns the descriptor it is given: it closes it. */
	snprintf(opt, sizeof(opt), "vhost_user_fd=%d", open("/dev/null", O_RDONLY));
	se = session((char *[]){ "fs", "-o", opt, NULL });
	CHECK(se && se->tc == &transport_vhost_user_class);
	fuse_session_destroy(se);
	/* Options of others pass each transport's parser untouched. */
	snprintf(opt, sizeof(opt), "allow_root,vhost_user_fd=%d,fsname=x",
		 open("/dev/null", O_RDONLY));
	se = session((char *[]){ "fs", "-o", opt, "-d", NULL });
	CHECK(se && se->tc == &transport_vhost_user_class && se->debug);
	fuse_session_destroy(se);
	CHECK(fcntl(0, F_GETFD) != -1);	/* our stdin was not touched */

	se = session((char *[]){ "fs", NULL });
	CHECK(se && se->tc == &transport_dev_class);
	if (se) {
		w = NULL;
		CHECK(fuse_dax_window_new_for_session(se, 1 << 20, 0, &w) == 0);
		CHECK(w && fuse_dax_window_base(w) != NULL);	/* ours, on /dev/fuse */
		fuse_dax_window_destroy(w);
		fuse_session_destroy(se);
	}
	se = session((char *[]){ "fs", "-o", "io_uring", NULL });
	CHECK(se && se->tc == &transport_uring_class);
	fuse_session_destroy(se);
}

/* Combinations that cannot work fail in fuse_session_new(), saying why. */
static void test_refused_options(void)
{
	char opt[160], opt2[160];

	snprintf(opt, sizeof(opt), "vhost_user_socket=%s", path_in_dir("s"));
	snprintf(opt2, sizeof(opt2), "vhost_user_socket=%s", path_in_dir("t"));

	CHECK(session((char *[]){ "fs", "-o", "io_uring", "-o", opt, NULL }) == NULL);
	CHECK_LOGGED("select two transports, io_uring and vhost_user");
	CHECK(session((char *[]){ "fs", "-o", opt, "-o", opt2, NULL }) == NULL);
	CHECK_LOGGED("two sockets given");
	CHECK(session((char *[]){ "fs", "-o", opt, "-o", "vhost_user_fd=3", NULL }) == NULL);
	CHECK_LOGGED("one or the other");
	CHECK(session((char *[]){ "fs", "-o", "vhost_user_fd=three", NULL }) == NULL);
	CHECK_LOGGED("vhost_user_fd=three: expected a descriptor number");
	CHECK(session((char *[]){ "fs", "-o", "vhost_user_shmem_bit=21", NULL }) == NULL);
	CHECK_LOGGED("needs vhost_user_socket=PATH or vhost_user_fd=N");
	CHECK(session((char *[]){ "fs", "-o", opt, "-o", "vhost_user_shmem_bit=23", NULL }) == NULL);
	CHECK_LOGGED("expected 20, 21 or 22");
	CHECK(session((char *[]){ "fs", "-o", "vhost_user_fd=1000",
				  "-o", "vhost_user_socket_group=root", NULL }) == NULL);
	CHECK_LOGGED("only for a socket the daemon creates");
	CHECK(session((char *[]){ "fs", "-o", "vhost_user_socket=", NULL }) == NULL);
	CHECK_LOGGED("empty socket path");
}

/* A local window, then a mount point that turns out to be vhost-user. */
static void test_local_window_under_vhost_user(void)
{
	struct fuse_dax_window *w = NULL;
	struct fuse_session *se = session((char *[]){ "fs", NULL });
	char mp[160], opt[160];

	snprintf(mp, sizeof(mp), "vhost-user:%s", path_in_dir("w.sock"));
	CHECK(se != NULL);
	if (!se)
		return;
	CHECK(fuse_dax_window_new_local(1 << 20, 0, &w) == 0);
	CHECK(fuse_session_set_dax_window(se, w) == 0);
	logged[0] = '\0';
	CHECK(fuse_session_mount(se, mp) == -1);
	CHECK_LOGGED("the DAX window is this process's own memory, which the client of "
		     "the vhost_user transport cannot reach");
	CHECK(access(path_in_dir("w.sock"), F_OK) != 0);	/* nothing listens */
	fuse_session_destroy(se);

	/* Attaching it to a vhost-user session is refused at once. */
	snprintf(opt, sizeof(opt), "vhost_user_socket=%s", path_in_dir("w.sock"));
	se = session((char *[]){ "fs", "-o", opt, NULL });
	CHECK(se != NULL);
	if (se) {
		logged[0] = '\0';
		CHECK(fuse_session_set_dax_window(se, w) == -EINVAL);
		CHECK_LOGGED("cannot reach");
		fuse_session_destroy(se);
	}
	fuse_dax_window_destroy(w);
}

/* Mount points that contradict the options, or name no socket. */
static void test_refused_mountpoints(void)
{
	char opt[160], mp[160];
	struct fuse_session *se;

	snprintf(opt, sizeof(opt), "vhost_user_socket=%s", path_in_dir("m.sock"));
	se = session((char *[]){ "fs", "-o", opt, NULL });
	if (se) {
		logged[0] = '\0';
		CHECK(fuse_session_mount(se, dir) == -1);
		CHECK_LOGGED("its mount point is `vhost-user' or `vhost-user:SOCKET' "
			     "(nothing is mounted)");
		snprintf(mp, sizeof(mp), "vhost-user:%s", path_in_dir("other.sock"));
		logged[0] = '\0';
		CHECK(fuse_session_mount(se, mp) == -1);
		CHECK_LOGGED("the mount point names socket");
		fuse_session_destroy(se);
	}
	se = session((char *[]){ "fs", "-o", "io_uring", NULL });
	if (se) {
		logged[0] = '\0';
		CHECK(fuse_session_mount(se, "vhost-user:/nowhere") == -1);
		CHECK_LOGGED("names the vhost_user transport, but the options chose io_uring");
		fuse_session_destroy(se);
	}
	se = session((char *[]){ "fs", NULL });
	if (se) {
		logged[0] = '\0';
		CHECK(fuse_session_mount(se, "vhost-user") == -1);
		CHECK_LOGGED("which socket?");
		logged[0] = '\0';
		CHECK(fuse_session_mount(se, "vhost-user:") == -1);
		CHECK_LOGGED("no socket path after `vhost-user:'");
		fuse_session_destroy(se);
	}
}

/*
 * Mounting listens and returns at once: the VMM is accepted by the loop,
 * after a daemon forked. The socket is the owner's only, or its group's.
 */
static void test_listening_socket(void)
{
	char opt[160], gopt[160], mp[160];
	struct group *g = getgrgid(getgid());
	struct fuse_session *se;
	struct stat st;

	snprintf(mp, sizeof(mp), "vhost-user:%s", path_in_dir("l.sock"));
	se = session((char *[]){ "fs", NULL });
	CHECK(se && fuse_session_mount(se, mp) == 0);
	CHECK(stat(path_in_dir("l.sock"), &st) == 0 && S_ISSOCK(st.st_mode));
	CHECK((st.st_mode & 0777) == 0600);
	CHECK(fuse_session_fd(se) >= 0);
	fuse_session_destroy(se);
	CHECK(access(path_in_dir("l.sock"), F_OK) != 0);	/* removed again */

	CHECK(g != NULL);
	if (!g)
		return;
	snprintf(opt, sizeof(opt), "vhost_user_socket=%s", path_in_dir("g.sock"));
	snprintf(gopt, sizeof(gopt), "vhost_user_socket_group=%s", g->gr_name);
	se = session((char *[]){ "fs", "-o", opt, "-o", gopt, NULL });
	CHECK(se && fuse_session_mount(se, "vhost-user") == 0);
	CHECK(stat(path_in_dir("g.sock"), &st) == 0);
	CHECK((st.st_mode & 0777) == 0660 && st.st_gid == g->gr_gid);
	fuse_session_destroy(se);

	snprintf(gopt, sizeof(gopt), "vhost_user_socket_group=no-such-group-fusedax");
	se = session((char *[]){ "fs", "-o", opt, "-o", gopt, NULL });
	if (se) {
		CHECK(fuse_session_mount(se, "vhost-user") == -1);
		CHECK_LOGGED("socket group no-such-group-fusedax: no such group");
		fuse_session_destroy(se);
	}
}

/* -o vhost_user_fd=N: a listening socket is taken; anything else refused. */
static void test_inherited_fd(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fuse_session *se;
	char opt[64];
	int lfd, null;

	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (strlen(path_in_dir("fd.sock")) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, path_in_dir("fd.sock"));
	CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	      listen(lfd, 1) == 0);
	snprintf(opt, sizeof(opt), "vhost_user_fd=%d", lfd);
	se = session((char *[]){ "fs", "-o", opt, NULL });
	CHECK(se && fuse_session_mount(se, "vhost-user") == 0);
	CHECK(se && fuse_session_fd(se) == lfd);
	fuse_session_destroy(se);	/* closes it: it was handed to us */
	CHECK(fcntl(lfd, F_GETFD) == -1 && errno == EBADF);
	unlink(path_in_dir("fd.sock"));

	null = open("/dev/null", O_RDONLY);
	snprintf(opt, sizeof(opt), "vhost_user_fd=%d", null);
	se = session((char *[]){ "fs", "-o", opt, NULL });
	if (se) {
		CHECK(fuse_session_mount(se, "vhost-user") == -1);
		CHECK_LOGGED("not a socket");
		fuse_session_destroy(se);
	}
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fusedax-transport-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	fuse_set_log_func(collect_log);
	test_lookup();
	test_scheme_reaches_session();
	test_option_spellings();
	test_refused_options();
	test_local_window_under_vhost_user();
	test_refused_mountpoints();
	test_listening_socket();
	test_inherited_fd();
	fuse_set_log_func(NULL);
	rmdir(dir);
	return check_summary("test_transport");
}
