/*
 * passthrough_dax: the command line, start-up and main(). The file system
 * itself is in passthrough_dax.c.
 */
#include "passthrough_dax.h"

#include <stdarg.h>
#include <syslog.h>

/* ------------------------------------------------------------------------
 * Command line
 */

#define PD_OPT(t, m, v) { t, offsetof(struct pd_opts, m), v }

static const struct fuse_opt pd_opt_spec[] = {
	PD_OPT("source=%s", source, 0),
	PD_OPT("cache=%s", cache, 0),
	PD_OPT("writeback", writeback, 1),
	PD_OPT("no_writeback", writeback, 0),
	PD_OPT("xattr", xattr, 1),
	PD_OPT("no_xattr", xattr, 0),
	PD_OPT("dax=%s", dax, 0),
	PD_OPT("dax_window_size=%s", dax_window_size, 0),
	PD_OPT("timeout=%s", timeout, 0),
	PD_OPT("--thread-pool-size=%u", thread_pool_size, 0),
	PD_OPT("flock", flock, 1),
	PD_OPT("no_flock", flock, 0),
	PD_OPT("posix_lock", posix_lock, 1),
	PD_OPT("no_posix_lock", posix_lock, 0),
	PD_OPT("allow_direct_io", allow_direct_io, 1),
	PD_OPT("no_allow_direct_io", allow_direct_io, 0),
	PD_OPT("killpriv_v2", killpriv_v2, 1),
	PD_OPT("no_killpriv_v2", killpriv_v2, 0),
	PD_OPT("log_level=%s", log_level, 0),
	PD_OPT("syslog", syslog, 1),
	PD_OPT("inode_file_handles=%s", inode_file_handles, 0),
	PD_OPT("inode_fd_cache=%s", inode_fd_cache, 0),
	PD_OPT("sandbox=%s", sandbox, 0),
	PD_OPT("seccomp=%s", seccomp, 0),
	PD_OPT("modcaps=%s", modcaps, 0),
	PD_OPT("rlimit_nofile=%s", rlimit_nofile, 0),
	PD_OPT("uid_map=%s", uid_map, 0),
	PD_OPT("gid_map=%s", gid_map, 0),
	PD_OPT("readonly", readonly, 1),
	PD_OPT("seccomp_refuse=%s", seccomp_refuse, 0),
	PD_OPT("passthrough", passthrough, 1),
	PD_OPT("no_passthrough", passthrough, 0),
	FUSE_OPT_END
};

static void usage(const char *prog)
{
	printf("usage: %s [options] MOUNTPOINT\n\n", prog);
	printf("Export a host directory through FUSE, with DAX mapping support.\n\n"
	       "File system options:\n"
	       "    -o source=DIR          directory to export (required)\n"
	       "    -o cache=MODE          never (or none), auto (default), always, or\n"
	       "                           metadata (names and attributes as always,\n"
	       "                           file data never)\n"
	       "    -o timeout=SECONDS     entry/attribute validity (by cache mode:\n"
	       "                           0, 1 or 86400)\n"
	       "    -o writeback           use the client's write-back cache\n"
	       "    -o xattr|no_xattr      pass extended attributes (default: no_xattr)\n"
	       "    -o flock|no_flock      offer flock() locks, kept on the host\n"
	       "                           (default: flock)\n"
	       "    -o posix_lock|no_posix_lock  offer POSIX locks, kept on the host\n"
	       "                           (default: posix_lock)\n"
	       "    -o allow_direct_io|no_allow_direct_io  pass the client's O_DIRECT\n"
	       "                           to the host (default: allow_direct_io)\n"
	       "    -o killpriv_v2|no_killpriv_v2  clear set-user-ID bits in the server\n"
	       "                           (default: killpriv_v2, if the client offers it)\n"
	       "    -o log_level=LEVEL     error (or err), warn, info (default), debug,\n"
	       "                           trace or off\n"
	       "    -o syslog              log to syslog instead of stderr\n"
	       "    -o passthrough         the client reads, writes and maps open files\n"
	       "                           straight from the host files (FUSE\n"
	       "                           passthrough; /dev/fuse only, not with\n"
	       "                           -o writeback or DAX mappings)\n"
	       "    -o dax=MODE            never (default), always, inode or auto\n"
	       "                           (inode: files with the user.dax xattr; auto:\n"
	       "                           those and files up to a quarter of the window)\n"
	       "    -o dax_window_size=N   DAX window size, K/M/G suffixes, a multiple\n"
	       "                           of the page size (default 1G)\n"
	       "    --thread-pool-size=N   at most N worker threads\n"
	       "    -o inode_file_handles=never|prefer|mandatory\n"
	       "                           keep a file handle per inode and open\n"
	       "                           descriptors on demand (default: never,\n"
	       "                           one descriptor per known inode)\n"
	       "    -o inode_fd_cache=N    with file handles: keep at most N unused\n"
	       "                           descriptors open (default: 4096, at most a\n"
	       "                           quarter of RLIMIT_NOFILE)\n\n"
	       "Containment (see passthrough_dax(1)):\n"
	       "    -o sandbox=MODE        namespace, chroot or none (default: namespace\n"
	       "                           as root under vhost-user, else none)\n"
	       "    -o seccomp=MODE        trap (default in a sandbox), kill, log or none\n"
	       "    -o modcaps=LIST        capabilities to keep or drop too, e.g.\n"
	       "                           +sys_admin:-mknod\n"
	       "    -o rlimit_nofile=N     RLIMIT_NOFILE (default: up to 1000000;\n"
	       "                           0: leave it as it is)\n"
	       "    -o uid_map=:IN:OUT:N:  the client's uids IN.. are the host's OUT..\n"
	       "    -o gid_map=:IN:OUT:N:  the same for gids\n"
	       "    -o readonly            refuse every change to the source (EROFS)\n"
	       "    -o seccomp_refuse=CALL[:CALL]  leave these calls out of the allow-list\n"
	       "                           (to see what the seccomp mode does)\n\n"
	       "Connection options (libfuse's): -o max_write=N, max_readahead=N,\n"
	       "    max_background=N, congestion_threshold=N, readdirplus=yes|no|auto,\n"
	       "    [no_]writeback_cache, [no_]async_dio, [no_]auto_inval_data,\n"
	       "    [no_]splice_read|write|move, sync_read, no_remote_lock\n\n");
}

/* "64M" -> 67108864. Returns 0 or -EINVAL. */
static int parse_size(const char *text, uint64_t *out)
{
	unsigned long long value;
	unsigned int shift = 0;
	char *end;

	if (!text || text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end != '\0' || value > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)value << shift;
	return 0;
}

/* Turn the option strings into settings; print what is wrong. */
static int configure(struct pd_fs *fs, const struct pd_opts *o, uint64_t *window_size)
{
	long page = sysconf(_SC_PAGESIZE);

	if (!o->cache || strcmp(o->cache, "auto") == 0) {
		fs->cache = CACHE_AUTO;
		fs->timeout = 1.0;
	} else if (strcmp(o->cache, "never") == 0 || strcmp(o->cache, "none") == 0) {
		fs->cache = CACHE_NEVER;	/* "none" is QEMU's C virtiofsd's word */
		fs->timeout = 0.0;
	} else if (strcmp(o->cache, "always") == 0) {
		fs->cache = CACHE_ALWAYS;
		fs->timeout = 86400.0;
	} else if (strcmp(o->cache, "metadata") == 0) {
		fs->cache = CACHE_METADATA;
		fs->timeout = 86400.0;
	} else {
		fprintf(stderr, "passthrough_dax: cache=%s: expected never (or none), auto, "
			"always or metadata\n", o->cache);
		return -1;
	}
	if (o->timeout) {
		char *end;

		fs->timeout = strtod(o->timeout, &end);
		if (end == o->timeout || *end != '\0' || !(fs->timeout >= 0)) {
			fprintf(stderr, "passthrough_dax: timeout=%s: expected seconds (0 or more)\n",
				o->timeout);
			return -1;
		}
	}
	if (!o->dax || strcmp(o->dax, "never") == 0) {
		fs->dax = DAX_NEVER;
	} else if (strcmp(o->dax, "always") == 0) {
		fs->dax = DAX_ALWAYS;
	} else if (strcmp(o->dax, "inode") == 0) {
		fs->dax = DAX_INODE;
	} else if (strcmp(o->dax, "auto") == 0) {
		fs->dax = DAX_AUTO;
	} else {
		fprintf(stderr, "passthrough_dax: dax=%s: expected never, always, inode or auto\n",
			o->dax);
		return -1;
	}
	*window_size = 1ULL << 30;
	if (o->dax_window_size) {
		if (parse_size(o->dax_window_size, window_size) != 0 || *window_size == 0) {
			fprintf(stderr,
				"passthrough_dax: dax_window_size=%s: expected a size such as 64M or 1G\n",
				o->dax_window_size);
			return -1;
		}
		if (*window_size % (uint64_t)page != 0) {
			fprintf(stderr,
				"passthrough_dax: dax_window_size=%s: must be a multiple of the page size (%ld bytes)\n",
				o->dax_window_size, page);
			return -1;
		}
	}
	if (!o->inode_file_handles || strcmp(o->inode_file_handles, "never") == 0) {
		fs->fhandles = FHANDLES_NEVER;
	} else if (strcmp(o->inode_file_handles, "prefer") == 0) {
		fs->fhandles = FHANDLES_PREFER;
	} else if (strcmp(o->inode_file_handles, "mandatory") == 0) {
		fs->fhandles = FHANDLES_MANDATORY;
	} else {
		fprintf(stderr,
			"passthrough_dax: inode_file_handles=%s: expected never, prefer or mandatory\n",
			o->inode_file_handles);
		return -1;
	}
	if (o->inode_fd_cache) {
		char *end;

		errno = 0;
		fs->idle_max = strtoul(o->inode_fd_cache, &end, 10);
		if (errno || end == o->inode_fd_cache || *end != '\0' ||
		    o->inode_fd_cache[0] == '-') {
			fprintf(stderr,
				"passthrough_dax: inode_fd_cache=%s: expected a number of descriptors\n",
				o->inode_fd_cache);
			return -1;
		}
	}
	fs->writeback = o->writeback;
	fs->xattr = o->xattr;
	fs->flock = o->flock;
	fs->posix_lock = o->posix_lock;
	fs->allow_direct_io = o->allow_direct_io;
	fs->killpriv_v2 = o->killpriv_v2;
	/* The kernel turns passthrough off when the write-back cache is on. */
	if (o->passthrough && o->writeback) {
		fprintf(stderr, "passthrough_dax: -o passthrough and -o writeback exclude each "
			"other (the kernel does not pass files through a write-back cache)\n");
		return -1;
	}
	fs->passthrough = o->passthrough;
	return 0;
}

/* ------------------------------------------------------------------------
 * Logging: -o log_level= and -o syslog (virtiofsd's --log-level, --syslog).
 */

static int log_max = FUSE_LOG_INFO;
static bool log_to_syslog;

static void log_sink(enum fuse_log_level level, const char *fmt, va_list ap)
{
	if ((int)level > log_max)
		return;
	if (log_to_syslog)
		vsyslog((int)level, fmt, ap);	/* fuse_log levels are syslog's */
	else
		vfprintf(stderr, fmt, ap);
}

static int configure_log(const struct pd_opts *o, int debug)
{
	static const struct { const char *name; int level; } levels[] = {
		{ "off", -1 }, { "error", FUSE_LOG_ERR }, { "err", FUSE_LOG_ERR },
		{ "warn", FUSE_LOG_WARNING }, { "info", FUSE_LOG_INFO },
		{ "debug", FUSE_LOG_DEBUG }, { "trace", FUSE_LOG_DEBUG },
	};
	size_t i;

	if (!o->log_level && !o->syslog)
		return 0;	/* the library's default: everything to stderr */
	for (i = 0; o->log_level && i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(o->log_level, levels[i].name) == 0)
			break;
	if (o->log_level && i == sizeof(levels) / sizeof(levels[0])) {
		fprintf(stderr, "passthrough_dax: log_level=%s: expected error, warn, info, "
			"debug, trace or off\n", o->log_level);
		return -1;
	}
	if (o->log_level)
		log_max = levels[i].level;
	/* -d asks for a line per request: those are debug messages. */
	if (debug)
		log_max = FUSE_LOG_DEBUG;
	if (o->syslog) {
		openlog("passthrough_dax", LOG_PID, LOG_DAEMON);
		log_to_syslog = true;
	}
	fuse_set_log_func(log_sink);
	return 0;
}

/* The containment options: mode names, capabilities, the descriptor limit. */
static int configure_sandbox(struct pd_sandbox *sb, const struct pd_opts *o)
{
	static const char *const sandboxes[] = { NULL, "none", "chroot", "namespace" };
	static const char *const seccomps[] = { NULL, "none", "log", "trap", "kill" };
	unsigned int i;

	if (o->sandbox) {
		for (i = 1; i < 4 && strcmp(o->sandbox, sandboxes[i]) != 0; i++)
			;
		if (i == 4) {
			fprintf(stderr, "passthrough_dax: sandbox=%s: expected namespace, chroot "
				"or none\n", o->sandbox);
			return -1;
		}
		sb->mode = (enum pd_sandbox_mode)i;
	}
	if (o->seccomp) {
		for (i = 1; i < 5 && strcmp(o->seccomp, seccomps[i]) != 0; i++)
			;
		if (i == 5) {
			fprintf(stderr, "passthrough_dax: seccomp=%s: expected trap, kill, log or "
				"none\n", o->seccomp);
			return -1;
		}
		sb->seccomp = (enum pd_seccomp_mode)i;
	}
	if (o->modcaps && sandbox_parse_modcaps(o->modcaps, &sb->caps_add, &sb->caps_drop) != 0)
		return -1;
	sb->rlimit_nofile = -1;
	if (o->rlimit_nofile) {
		char *end;

		errno = 0;
		sb->rlimit_nofile = strtoll(o->rlimit_nofile, &end, 10);
		if (errno || end == o->rlimit_nofile || *end != '\0' || sb->rlimit_nofile < 0) {
			fprintf(stderr, "passthrough_dax: rlimit_nofile=%s: expected a number of "
				"descriptors (0: leave the limit as it is)\n", o->rlimit_nofile);
			return -1;
		}
	}
	sb->readonly = o->readonly;
	return 0;
}

static int configure_ids(struct pd_fs *fs, const struct pd_opts *o)
{
	if (o->uid_map && idmap_parse("uid_map", o->uid_map, &fs->uid_map) != 0)
		return -1;
	if (o->gid_map && idmap_parse("gid_map", o->gid_map, &fs->gid_map) != 0)
		return -1;
	fs->readonly = o->readonly;
	return 0;
}

/*
 * Once the transport is known (after the mount): the sandbox is namespace
 * under vhost-user as root, as virtiofsd's is; on /dev/fuse it is none, so
 * the daemon stays the one process libfuse users expect (see
 * passthrough_dax(1)). seccomp defaults to trap inside a sandbox. A
 * sandbox has no /dev/fuse to clone descriptors from.
 */
static void settle_sandbox(struct pd_sandbox *sb, struct pd_fs *fs,
			   struct fuse_session *se, struct fuse_cmdline_opts *opts)
{
	sb->transport = sandbox_transport(se, opts->mountpoint);
	fs->callers_on_host = sb->transport != TRANSPORT_VHOST_USER;
	if (sb->mode == SANDBOX_DEFAULT)
		sb->mode = sb->transport == TRANSPORT_VHOST_USER && geteuid() == 0
				   ? SANDBOX_NAMESPACE : SANDBOX_NONE;
	if (sb->seccomp == SECCOMP_DEFAULT)
		sb->seccomp = sb->mode != SANDBOX_NONE && seccomp_available() ? SECCOMP_TRAP
									     : SECCOMP_NONE;
	sb->caps_keep = sandbox_caps(sb, fs->fhandles != FHANDLES_NEVER);
	if (sb->mode != SANDBOX_NONE && opts->clone_fd) {
		fuse_log(FUSE_LOG_INFO, "passthrough_dax: clone_fd: no /dev/fuse inside the "
			 "sandbox: the workers share one descriptor\n");
		opts->clone_fd = 0;
	}
}

/* Open the exported directory as the root inode. */
static int open_source(struct pd_fs *fs, const char *source)
{
	struct stat st;
	int fd;

	if (!source) {
		fprintf(stderr, "passthrough_dax: missing -o source=DIR or --shared-dir=DIR "
			"(the directory to export)\n");
		return -1;
	}
	/* Opening it for reading proves it exists, is a directory, and is ours to read. */
	fd = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1) {
		fprintf(stderr, "passthrough_dax: source %s: %s\n", source, strerror(errno));
		return -1;
	}
	close(fd);
	fd = open(source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		fprintf(stderr, "passthrough_dax: source %s: %s\n", source, strerror(errno));
		return -1;
	}
	fs->root.nodeid = FUSE_ROOT_ID;
	fs->root.dev = st.st_dev;
	fs->root.ino = st.st_ino;
	fs->root.type = S_IFDIR;
	fs->root.fd = fd;
	fs->root.nlookup = 2;	/* never reaches 0 */
	extent_lock_init(&fs->root.extent_lock);
	return 0;
}

static int check_mountpoint(const char *mountpoint)
{
	struct stat st;

	if (!mountpoint) {
		fprintf(stderr, "passthrough_dax: no mount point given (see --help)\n");
		return -1;
	}
	/*
	 * /dev/fd/N is a connection that is open already (a /dev/fuse fd, or
	 * a socket a test or a VMM stand-in speaks the protocol on): the
	 * library checks and takes it as it is.
	 */
	if (strncmp(mountpoint, "/dev/fd/", strlen("/dev/fd/")) == 0)
		return 0;
	/* "vhost-user[:SOCKET]": no mount, a VMM connects (see --help). */
	if (strcmp(mountpoint, "vhost-user") == 0 || strncmp(mountpoint, "vhost-user:", 11) == 0)
		return 0;
	if (stat(mountpoint, &st) == -1) {
		fprintf(stderr, "passthrough_dax: mount point %s: %s\n", mountpoint,
			strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "passthrough_dax: mount point %s: %s\n", mountpoint,
			strerror(ENOTDIR));
		return -1;
	}
	return 0;
}

/* /proc/self/fd of the serving process, to reopen O_PATH descriptors. */
static int open_proc_fd(struct pd_fs *fs)
{
	fs->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->proc_fd == -1) {
		fuse_log(FUSE_LOG_ERR, "passthrough_dax: /proc/self/fd: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Unused descriptors of inodes with file handles stay open up to a bound:
 * by default 4096, and never more than a quarter of the descriptors we
 * may have, so the cache cannot be what makes a request fail.
 */
static void size_fd_cache(struct pd_fs *fs, bool asked)
{
	struct rlimit rl;
	unsigned long quarter;

	if (asked)
		return;
	fs->idle_max = 4096;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		quarter = (unsigned long)rl.rlim_cur / 4;
		if (quarter < fs->idle_max)
			fs->idle_max = quarter;
	}
}

static int run_loop(struct fuse_session *se, const struct fuse_cmdline_opts *opts,
		    const struct pd_opts *o)
{
	struct fuse_loop_config *config;
	int ret;

	if (opts->singlethread)
		return fuse_session_loop(se);
	config = fuse_loop_cfg_create();
	if (!config)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(config, (unsigned int)opts->clone_fd);
	fuse_loop_cfg_set_idle_threads(config, opts->max_idle_threads);
	fuse_loop_cfg_set_max_threads(config, o->thread_pool_size ? o->thread_pool_size
								  : opts->max_threads);
	ret = fuse_session_loop_mt(se, config);
	fuse_loop_cfg_destroy(config);
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args;
	struct fuse_cmdline_opts opts = { 0 };
	struct pd_opts o = { .flock = 1, .posix_lock = 1, .allow_direct_io = 1,
			     .killpriv_v2 = 1 };
	struct pd_virtiofsd v;
	struct pd_fs fs = { .proc_fd = -1, .host_proc = -1, .next_nodeid = FUSE_ROOT_ID + 1,
			    .next_fh = PD_FIRST_FH };
	struct pd_sandbox sb = { .mode = SANDBOX_DEFAULT };
	struct fuse_lowlevel_ops ro_ops;
	struct fuse_session *se = NULL;
	uint64_t window_size = 0;
	int ret = 1, err;

	pthread_mutex_init(&fs.lock, NULL);
	pthread_mutex_init(&fs.handle_lock, NULL);
	pthread_mutex_init(&fs.fd_lock, NULL);
	pthread_mutex_init(&fs.waiter_lock, NULL);
	pthread_cond_init(&fs.waiter_gone, NULL);
	atomic_init(&fs.stopping, false);
	fs.root.fd = -1;
	fs.fd_dir = "/proc/self/fd/";
	/* The vhost-user backend conventions: nothing else is looked at. */
	if (pd_virtiofsd_capabilities(argc, argv))
		return 0;
	/* virtiofsd's spellings become ours (see pd_virtiofsd_args.c). */
	if (pd_virtiofsd_args(argc, argv, &args, &v) != 0)
		return 1;
	if (fuse_opt_parse(&args, &o, pd_opt_spec, NULL) == -1)
		goto out_args;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out_args;
	/*
	 * A socket named the virtiofsd way (--socket-path, --fd) follows the
	 * vhost-user backend program conventions: the program does not
	 * daemonize itself (its manager may); --daemonize asks it to.
	 */
	if (v.daemonize)
		opts.foreground = 0;
	else if (v.socket_named)
		opts.foreground = 1;
	fs.conn_opts = fuse_parse_conn_info_opts(&args);
	if (!fs.conn_opts)
		goto out_args;
	if (opts.show_help) {
		usage(argv[0]);
		pd_virtiofsd_help();
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (opts.show_version) {
		printf("passthrough_dax (fusedax %s)\n", fuse_pkgversion());
		fuse_lowlevel_version();
		ret = 0;
		goto out_args;
	}
	if (configure(&fs, &o, &window_size) != 0 || configure_log(&o, opts.debug) != 0 ||
	    configure_sandbox(&sb, &o) != 0 || configure_ids(&fs, &o) != 0 ||
	    open_source(&fs, o.source) != 0 || check_mountpoint(opts.mountpoint) != 0)
		goto out_args;
	sb.source = realpath(o.source, NULL);
	if (!sb.source) {
		fprintf(stderr, "passthrough_dax: source %s: %s\n", o.source, strerror(errno));
		goto out_args;
	}

	fs.switch_creds = geteuid() == 0;
	fs.host_proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs.host_proc == -1) {
		fprintf(stderr, "passthrough_dax: /proc: %s\n", strerror(errno));
		goto out_args;
	}
	/* The client already applied the caller's umask; apply none again. */
	umask(0);
	if (sandbox_set_rlimit(sb.rlimit_nofile) != 0)
		goto out_args;
	size_fd_cache(&fs, o.inode_fd_cache != NULL);

	if (fs.readonly)
		readonly_ops(&ro_ops);
	se = fuse_session_new(&args, fs.readonly ? &ro_ops : &pd_ops, sizeof(pd_ops), &fs);
	if (!se)
		goto out_args;
	/*
	 * The window is memory of this process on /dev/fuse, and the VMM's
	 * cache window under vhost-user: the session knows which.
	 */
	if (fs.dax != DAX_NEVER) {
		err = fuse_dax_window_new_for_session(se, window_size, 0, &fs.window);
		if (err) {
			fprintf(stderr, "passthrough_dax: cannot create a %" PRIu64
				"-byte DAX window: %s\n", window_size, strerror(-err));
			goto out_session;
		}
	}
	if (fs.window) {
		err = fuse_session_set_dax_window(se, fs.window);
		if (err) {
			fprintf(stderr, "passthrough_dax: cannot attach the DAX window: %s\n",
				strerror(-err));
			goto out_session;
		}
	}
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	/*
	 * Only now: "/proc/self" is resolved when it is opened, so a
	 * descriptor opened before fuse_daemonize() forked names the parent's
	 * /proc/<pid>/fd, which is gone once the parent exits (every reopen
	 * through it then fails with ENOENT). The same holds for anything else
	 * tied to a process: threads do not survive the fork either, which is
	 * why none is started before this point. A sandbox replaces it with
	 * its own /proc's (sandbox_enter()).
	 */
	if (open_proc_fd(&fs) != 0)
		goto out_unmount;
	settle_sandbox(&sb, &fs, se, &opts);
	err = sandbox_enter(&fs, se, &sb, opts.mountpoint, &ret);
	if (err < 0) {
		ret = 1;
		goto out_unmount;
	}
	if (err == 1)
		goto out_unmount;	/* the monitor: the server has ended */
	if (inode_handles_start(&fs) == 0 && seccomp_start(sb.seccomp, sb.mode == SANDBOX_NONE, o.seccomp_refuse) == 0)
		ret = run_loop(se, &opts, &o) == 0 ? 0 : 1;
	/*
	 * A sandboxed server on a mount leaves the unmount to the monitor, in
	 * the host's mount namespace (the mount point is not in the server's),
	 * and tears the rest down like an unconfined one.
	 */
	if (sb.mode != SANDBOX_NONE && sb.transport == TRANSPORT_MOUNT)
		fuse_session_leave_mount(se);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	/* No request runs any more: close what the client left open or known. */
	tdestroy(fs.handles, handle_free);
	tdestroy(fs.by_host_id, tree_node_keep);
	tdestroy(fs.by_nodeid, inode_close);
	inode_handles_stop(&fs);
	fuse_dax_window_destroy(fs.window);
out_args:
	free(fs.conn_opts);
	if (fs.proc_fd >= 0)
		close(fs.proc_fd);
	if (fs.host_proc >= 0)
		close(fs.host_proc);
	if (fs.root.fd >= 0)
		close(fs.root.fd);
	free(opts.mountpoint);
	free(o.source);
	free(o.cache);
	free(o.dax);
	free(o.dax_window_size);
	free(o.timeout);
	free(o.log_level);
	free(o.inode_file_handles);
	free(o.inode_fd_cache);
	free(o.sandbox);
	free(o.seccomp);
	free(o.modcaps);
	free(o.rlimit_nofile);
	free(o.uid_map);
	free(o.gid_map);
	free(o.seccomp_refuse);
	free(sb.source);
	fuse_opt_free_args(&args);
	return ret;
}
