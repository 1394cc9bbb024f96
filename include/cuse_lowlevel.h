/*
 * fusedax: CUSE, character devices served from user space. The kernel's
 * /dev/cuse creates /dev/NAME and forwards the opens, reads, writes,
 * ioctls and polls of that device to these operations, which answer with
 * the low-level fuse_reply_* calls. Source-compatible with libfuse 3's
 * cuse_lowlevel.h.
 */
#ifndef CUSE_LOWLEVEL_H_
#define CUSE_LOWLEVEL_H_

/* libfuse lets a CUSE program omit FUSE_USE_VERSION; it then gets the
 * oldest API this library serves. */
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 30
#endif

#include "fuse_lowlevel.h"

#include <fcntl.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** cuse_info.flags: ioctls are unrestricted (the server asks the client
 * for the argument's memory with fuse_reply_ioctl_retry()). */
#define CUSE_UNRESTRICTED_IOCTL (1u << 0)

struct fuse_session;

/** The device to create. */
struct cuse_info {
	/** Device number; major 0 lets the kernel pick one. */
	unsigned dev_major;
	unsigned dev_minor;
	/** "KEY=VALUE" strings for the device; "DEVNAME=name" is required. */
	unsigned dev_info_argc;
	const char **dev_info_argv;
	/** CUSE_UNRESTRICTED_IOCTL or 0. */
	unsigned flags;
};

/*
 * The device's operations: the low-level ones without an inode (there is
 * one device). init_done is called once the kernel has created the device
 * node. Reads and writes are always direct (no page cache) and may run
 * concurrently.
 */
struct cuse_lowlevel_ops {
	void (*init)(void *userdata, struct fuse_conn_info *conn);
	void (*init_done)(void *userdata);
	void (*destroy)(void *userdata);
	void (*open)(fuse_req_t req, struct fuse_file_info *fi);
	void (*read)(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi);
	void (*write)(fuse_req_t req, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi);
	void (*flush)(fuse_req_t req, struct fuse_file_info *fi);
	void (*release)(fuse_req_t req, struct fuse_file_info *fi);
	void (*fsync)(fuse_req_t req, int datasync, struct fuse_file_info *fi);
	void (*ioctl)(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi,
		      unsigned int flags, const void *in_buf, size_t in_bufsz,
		      size_t out_bufsz);
	void (*poll)(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph);
};

/**
 * A session that serves the device ci with clop. args holds the session's
 * options (-d, ...), as for fuse_session_new(). The caller connects it
 * with cuse_lowlevel_setup(), or to its own transport. NULL on error.
 */
struct fuse_session *cuse_lowlevel_new(struct fuse_args *args, const struct cuse_info *ci,
				       const struct cuse_lowlevel_ops *clop, void *userdata);

/**
 * Parse the command line (-d, -f, -s, and the session's options), open
 * /dev/cuse, daemonize unless -f, and install the signal handlers.
 * *multithreaded tells whether -s was absent. NULL (after logging why) on
 * error, e.g. when the kernel has no CUSE.
 */
struct fuse_session *cuse_lowlevel_setup(int argc, char *argv[], const struct cuse_info *ci,
					 const struct cuse_lowlevel_ops *clop,
					 int *multithreaded, void *userdata);

/** Undo cuse_lowlevel_setup(): signal handlers, connection, session. */
void cuse_lowlevel_teardown(struct fuse_session *se);

/** Setup, serve until the device is released or a signal comes, teardown.
 * Returns 0 on a clean end, 1 otherwise. */
int cuse_lowlevel_main(int argc, char *argv[], const struct cuse_info *ci,
		       const struct cuse_lowlevel_ops *clop, void *userdata);

#ifdef __cplusplus
}
#endif

#endif /* CUSE_LOWLEVEL_H_ */
