/*
 * Entry points of older libfuse API levels and of libfuse 3.17's versioned
 * wrappers, each a thin shim over the one implementation. The headers pick
 * the right one for the caller's FUSE_USE_VERSION; the undecorated names
 * stay exported with the newest behaviour for callers that take their
 * address.
 */
#include "compat.h"
#include "fuse_i.h"
#include "mount.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Command line.
 */

int fuse_parse_cmdline_312(struct fuse_args *args, struct fuse_cmdline_opts *opts)
{
	return fuse_parse_cmdline(args, opts);
}

int fuse_parse_cmdline_30(struct fuse_args *args, struct fuse_cmdline_opts *opts)
{
	struct fuse_cmdline_opts full;
	int res = fuse_parse_cmdline(args, &full);

	/* The 3.0 struct ends before max_threads: write nothing past it. */
	if (res == 0)
		memcpy(opts, &full, offsetof(struct fuse_cmdline_opts, max_threads));
	return res;
}

/* ------------------------------------------------------------------------
 * Sessions.
 */

struct fuse_session *fuse_session_new_versioned(struct fuse_args *args,
						const struct fuse_lowlevel_ops *op,
						size_t op_size,
						struct libfuse_version *version,
						void *userdata)
{
	struct fuse_session *se = fuse_session_new(args, op, op_size, userdata);

	if (se && se->debug && version && version->major)
		fuse_log(FUSE_LOG_DEBUG, "fuse: file system built against API %u.%u.%u\n",
			 version->major, version->minor, version->hotfix);
	return se;
}

int fuse_session_loop_mt(struct fuse_session *se, struct fuse_loop_config *config)
{
	return fuse_session_loop_mt_312(se, config);
}

/* ------------------------------------------------------------------------
 * Notifications: libfuse 3.12 to 3.16 had a flags argument.
 */

int fuse_lowlevel_notify_expire_entry_flags(struct fuse_session *se, fuse_ino_t parent,
					    const char *name, size_t namelen,
					    enum fuse_notify_entry_flags flags)
{
	if (flags & FUSE_LL_EXPIRE_ONLY)
		return (fuse_lowlevel_notify_expire_entry)(se, parent, name, namelen);
	return fuse_lowlevel_notify_inval_entry(se, parent, name, namelen);
}

/* ------------------------------------------------------------------------
 * Mounting without a session.
 */

int fuse_open_channel(const char *mountpoint, const char *options)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct mount_opts *mo = NULL;
	int fd = -1;

	if (fuse_opt_add_arg(&args, "fuse_open_channel") < 0 ||
	    (options && (fuse_opt_add_arg(&args, "-o") < 0 ||
			 fuse_opt_add_arg(&args, options) < 0))) {
		fuse_log(FUSE_LOG_ERR, "fuse_open_channel: out of memory\n");
		goto out_args;
	}
	if (mount_opts_parse(&args, &mo) < 0)
		goto out_args;
	if (args.argc > 1) {
		fuse_log(FUSE_LOG_ERR, "fuse_open_channel: `%s' is not a mount option\n",
			 args.argv[args.argc - 1]);
		goto out_opts;
	}
	fd = mount_fuse(mountpoint, mo);
	if (fd < 0) {
		fd = -1;
		goto out_opts;
	}
	/*
	 * The caller owns the mount from here on. Its options stay allocated
	 * for the life of the process: an auto_unmount helper is tied to them
	 * and must live as long as the mount.
	 */
	goto out_args;

out_opts:
	mount_opts_free(mo);
out_args:
	fuse_opt_free_args(&args);
	return fd;
}
