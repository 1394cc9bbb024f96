/*
 * fusedax: the low-level FUSE server API. A file system implements
 * struct fuse_lowlevel_ops and answers each request with one fuse_reply_*
 * call. Source-compatible with libfuse 3.17's fuse_lowlevel.h at every
 * FUSE_USE_VERSION from 30 (doc/compat.md); fusedax adds the
 * DAX mapping operations (setupmapping, removemapping) after every libfuse
 * member, and the DAX window calls in fuse_dax.h.
 */
#ifndef FUSE_LOWLEVEL_H_
#define FUSE_LOWLEVEL_H_

#include "fuse_common.h"
#include "fuse_dax.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <utime.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Inode number of the root directory. */
#define FUSE_ROOT_ID 1

/** Inode number as the client knows it. */
typedef uint64_t fuse_ino_t;

/** One request in flight; answered by exactly one fuse_reply_* call. */
typedef struct fuse_req *fuse_req_t;

struct fuse_session;

/** Answer to lookup/mknod/mkdir/symlink/link/create (and readdirplus). */
struct fuse_entry_param {
	/** Inode number; 0 makes a negative entry cached for entry_timeout. */
	fuse_ino_t ino;
	/** Generation: (ino, generation) must be unique over the fs's life. */
	uint64_t generation;
	/** Attributes of the inode. */
	struct stat attr;
	/** Seconds the client may cache attr. */
	double attr_timeout;
	/** Seconds the client may cache the name -> inode entry. */
	double entry_timeout;
	/** fusedax: FUSE_ATTR_* flags for the client (FUSE_ATTR_DAX). */
	uint32_t attr_flags;
};

/** Attribute flag: the client should access this file through DAX. */
#define FUSE_ATTR_DAX_FLAG (1u << 1)

/** Who sent a request. */
struct fuse_ctx {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	/** umask of the caller (0 unless the client sends it). */
	mode_t umask;
};

/** One entry of forget_multi(). */
struct fuse_forget_data {
	fuse_ino_t ino;
	uint64_t nlookup;
};

/** Bits for setattr's to_set. */
#define FUSE_SET_ATTR_MODE (1 << 0)
#define FUSE_SET_ATTR_UID (1 << 1)
#define FUSE_SET_ATTR_GID (1 << 2)
#define FUSE_SET_ATTR_SIZE (1 << 3)
#define FUSE_SET_ATTR_ATIME (1 << 4)
#define FUSE_SET_ATTR_MTIME (1 << 5)
#define FUSE_SET_ATTR_ATIME_NOW (1 << 7)
#define FUSE_SET_ATTR_MTIME_NOW (1 << 8)
#define FUSE_SET_ATTR_FORCE (1 << 9)
#define FUSE_SET_ATTR_CTIME (1 << 10)
#define FUSE_SET_ATTR_KILL_SUID (1 << 11)
#define FUSE_SET_ATTR_KILL_SGID (1 << 12)
#define FUSE_SET_ATTR_FILE (1 << 13)
#define FUSE_SET_ATTR_KILL_PRIV (1 << 14)
#define FUSE_SET_ATTR_OPEN (1 << 15)
#define FUSE_SET_ATTR_TIMES_SET (1 << 16)
#define FUSE_SET_ATTR_TOUCH (1 << 17)

/** How fuse_lowlevel_notify_expire_entry() treats the entry. */
enum fuse_notify_entry_flags {
	/** Drop the entry from the client's cache. */
	FUSE_LL_INVALIDATE = 0,
	/** Only mark it expired: the next use looks it up again. */
	FUSE_LL_EXPIRE_ONLY = (1 << 0),
};
/* libfuse 3.12 to 3.16 spelled the enum fuse_expire_flags. */
#define fuse_expire_flags fuse_notify_entry_flags

/**
 * The file system's operations. Every member is optional: a missing one
 * answers its requests with ENOSYS (or a sensible default where the client
 * expects one, e.g. open and flush succeed). Each request handler must
 * answer exactly once with a fuse_reply_* call, possibly later and from
 * another thread; forget, forget_multi and retrieve_reply answer with
 * fuse_reply_none() or not at all.
 *
 * Order matters for positional initialisers: the libfuse members come first
 * in libfuse's order; fusedax's DAX members are appended.
 */
struct fuse_lowlevel_ops {
	/** Called once after INIT: adjust conn (want, max_write, ...). */
	void (*init)(void *userdata, struct fuse_conn_info *conn);
	/** Called once when the session ends (DESTROY or disconnect). */
	void (*destroy)(void *userdata);
	void (*lookup)(fuse_req_t req, fuse_ino_t parent, const char *name);
	/** Drop nlookup references to ino. Answer with fuse_reply_none(). */
	void (*forget)(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
	void (*getattr)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
	void (*setattr)(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi);
	void (*readlink)(fuse_req_t req, fuse_ino_t ino);
	void (*mknod)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      dev_t rdev);
	void (*mkdir)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
	void (*unlink)(fuse_req_t req, fuse_ino_t parent, const char *name);
	void (*rmdir)(fuse_req_t req, fuse_ino_t parent, const char *name);
	void (*symlink)(fuse_req_t req, const char *link, fuse_ino_t parent,
			const char *name);
	void (*rename)(fuse_req_t req, fuse_ino_t parent, const char *name,
		       fuse_ino_t newparent, const char *newname, unsigned int flags);
	void (*link)(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		     const char *newname);
	void (*open)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
	/**
	 * size is at most the session's largest reply (a little over
	 * max_write), also for readdir and readdirplus, whatever the peer sent.
	 */
	void (*read)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);
	void (*write)(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		      off_t off, struct fuse_file_info *fi);
	void (*flush)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
	void (*release)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
	void (*fsync)(fuse_req_t req, fuse_ino_t ino, int datasync,
		      struct fuse_file_info *fi);
	void (*opendir)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
	void (*readdir)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi);
	void (*releasedir)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
	void (*fsyncdir)(fuse_req_t req, fuse_ino_t ino, int datasync,
			 struct fuse_file_info *fi);
	void (*statfs)(fuse_req_t req, fuse_ino_t ino);
	void (*setxattr)(fuse_req_t req, fuse_ino_t ino, const char *name,
			 const char *value, size_t size, int flags);
	/**
	 * size 0 asks for the value's length (fuse_reply_xattr); otherwise
	 * the buffer size, which fusedax caps at 65536 (XATTR_SIZE_MAX): a
	 * file system may allocate it as it comes.
	 */
	void (*getxattr)(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
	/** As getxattr, for the list of names (capped at XATTR_LIST_MAX). */
	void (*listxattr)(fuse_req_t req, fuse_ino_t ino, size_t size);
	void (*removexattr)(fuse_req_t req, fuse_ino_t ino, const char *name);
	void (*access)(fuse_req_t req, fuse_ino_t ino, int mask);
	void (*create)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi);
	void (*getlk)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		      struct flock *lock);
	void (*setlk)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		      struct flock *lock, int sleep);
	void (*bmap)(fuse_req_t req, fuse_ino_t ino, size_t blocksize, uint64_t idx);
#if FUSE_USE_VERSION < 35
	void (*ioctl)(fuse_req_t req, fuse_ino_t ino, int cmd, void *arg,
		      struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		      size_t in_bufsz, size_t out_bufsz);
#else
	void (*ioctl)(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		      struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		      size_t in_bufsz, size_t out_bufsz);
#endif
	void (*poll)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct fuse_pollhandle *ph);
	/** Write from a buffer vector; preferred over write when both are set. */
	void (*write_buf)(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
			  off_t off, struct fuse_file_info *fi);
	/** Data for fuse_lowlevel_notify_retrieve(). Answer with fuse_reply_none(). */
	void (*retrieve_reply)(fuse_req_t req, void *cookie, fuse_ino_t ino, off_t offset,
			       struct fuse_bufvec *bufv);
	/** Several forgets at once. Answer with fuse_reply_none(). */
	void (*forget_multi)(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
	void (*flock)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
	void (*fallocate)(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			  off_t length, struct fuse_file_info *fi);
	void (*readdirplus)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi);
	void (*copy_file_range)(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
				struct fuse_file_info *fi_in, fuse_ino_t ino_out,
				off_t off_out, struct fuse_file_info *fi_out, size_t len,
				int flags);
	void (*lseek)(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		      struct fuse_file_info *fi);
	/** Create an unnamed file in parent (O_TMPFILE). Answer with fuse_reply_create(). */
	void (*tmpfile)(fuse_req_t req, fuse_ino_t parent, mode_t mode,
			struct fuse_file_info *fi);
	/** Extended attributes; answer with fuse_reply_statx(). fi may be NULL. */
	void (*statx)(fuse_req_t req, fuse_ino_t ino, int flags, int mask,
		      struct fuse_file_info *fi);

	/* ---- fusedax additions ---- */

	/**
	 * Map [foffset, foffset + len) of ino at window offset moffset of the
	 * DAX window attached with fuse_session_set_dax_window().
	 *
	 * flags holds FUSE_DAX_MAP_READ and/or FUSE_DAX_MAP_WRITE. fi is NULL
	 * when the client named no open file (the Linux client always sends
	 * fh = -1): the file system opens ino itself, read-only or read-write
	 * per FUSE_DAX_MAP_WRITE. When fi is set, its fh came from the client
	 * and must be checked to belong to ino and to allow the protection.
	 *
	 * The library has already checked, against the negotiated alignment and
	 * the window: len > 0, foffset/len/moffset aligned, the window range
	 * inside the window, foffset + len without overflow, and no unknown
	 * flag bits. An overlapping earlier mapping must be replaced.
	 *
	 * Answer with fuse_reply_err(req, 0) or an errno.
	 */
	void (*setupmapping)(fuse_req_t req, fuse_ino_t ino, uint64_t foffset,
			     uint64_t len, uint64_t moffset, uint64_t flags,
			     struct fuse_file_info *fi);

	/**
	 * Remove the mappings covering each of count window ranges (1 to 256,
	 * each already checked to lie inside the window and be aligned).
	 * The array is owned by the library and valid only during the call
	 * (like names and write data): copy it to answer later.
	 * Answer with fuse_reply_err(req, 0) or an errno.
	 */
	void (*removemapping)(fuse_req_t req, const struct fuse_dax_range *ranges,
			      unsigned int count);

	/**
	 * Write out every change on the file system that holds ino (the
	 * client's syncfs(2) or sync(1); Linux sends it for virtio-fs only).
	 * A fusedax addition: without it the request is answered ENOSYS and
	 * the client stops asking. Answer with fuse_reply_err(req, 0) or an
	 * errno.
	 */
	void (*syncfs)(fuse_req_t req, fuse_ino_t ino);
};

/* ------------------------------------------------------------------------
 * Replies. Each returns 0 or a negative errno (the client has gone away, or
 * the reply could not be encoded). Every call consumes the request.
 */

/** Answer with an error (positive errno), or 0 for a bare success. */
int fuse_reply_err(fuse_req_t req, int err);
/** No answer (forget, forget_multi, retrieve_reply); frees the request. */
void fuse_reply_none(fuse_req_t req);
int fuse_reply_entry(fuse_req_t req, const struct fuse_entry_param *e);
int fuse_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
		      const struct fuse_file_info *fi);
int fuse_reply_attr(fuse_req_t req, const struct stat *attr, double attr_timeout);
int fuse_reply_readlink(fuse_req_t req, const char *link);

/**
 * Register fd (a file the file system opened) with the client as a backing
 * file, from an open or create handler. Put the returned id in
 * fi->backing_id before fuse_reply_open()/fuse_reply_create(): the client
 * then reads, writes and maps the open file through fd without asking the
 * file system (FUSE passthrough; needs FUSE_CAP_PASSTHROUGH in want_ext).
 * The client holds its own reference to the file, so fd may be closed
 * once the reply went out. Returns the id (> 0), or 0 with one log line
 * saying why (the transport is not /dev/fuse, the client did not accept
 * passthrough, the kernel refused: errno); the file system then serves
 * the file itself.
 */
int fuse_passthrough_open(fuse_req_t req, int fd);
/**
 * Drop a backing id from fuse_passthrough_open() (in release, or when an
 * open failed after it). Files already opened with it keep working.
 * Returns 0 or a negative errno.
 */
int fuse_passthrough_close(fuse_req_t req, int backing_id);

int fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi);
int fuse_reply_write(fuse_req_t req, size_t count);
int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size);
int fuse_reply_data(fuse_req_t req, struct fuse_bufvec *bufv,
		    enum fuse_buf_copy_flags flags);
int fuse_reply_iov(fuse_req_t req, const struct iovec *iov, int count);
int fuse_reply_statfs(fuse_req_t req, const struct statvfs *stbuf);
int fuse_reply_xattr(fuse_req_t req, size_t count);
int fuse_reply_lock(fuse_req_t req, const struct flock *lock);
int fuse_reply_bmap(fuse_req_t req, uint64_t idx);
int fuse_reply_ioctl_retry(fuse_req_t req, const struct iovec *in_iov, size_t in_count,
			   const struct iovec *out_iov, size_t out_count);
int fuse_reply_ioctl(fuse_req_t req, int result, const void *buf, size_t size);
int fuse_reply_ioctl_iov(fuse_req_t req, int result, const struct iovec *iov, int count);
int fuse_reply_poll(fuse_req_t req, unsigned revents);
int fuse_reply_lseek(fuse_req_t req, off_t off);
/** statx answer: attr as struct statx from <sys/stat.h>. */
struct statx;
int fuse_reply_statx(fuse_req_t req, int flags, struct statx *statx, double attr_timeout);
/** fusedax: answer getattr with FUSE_ATTR_* flags (FUSE_ATTR_DAX_FLAG). */
int fuse_reply_attr_flags(fuse_req_t req, const struct stat *attr, double attr_timeout,
			  uint32_t attr_flags);

/* Directory entry packing for readdir / readdirplus. */

/**
 * Append one directory entry to buf (bufsize bytes left). Returns the bytes
 * the entry needs; if that exceeds bufsize nothing was written. buf may be
 * NULL to ask for the size.
 */
size_t fuse_add_direntry(fuse_req_t req, char *buf, size_t bufsize, const char *name,
			 const struct stat *stbuf, off_t off);
/** As fuse_add_direntry, with a full entry for readdirplus. */
size_t fuse_add_direntry_plus(fuse_req_t req, char *buf, size_t bufsize,
			      const char *name, const struct fuse_entry_param *e,
			      off_t off);

/* ------------------------------------------------------------------------
 * Notifications the file system sends to the client without a request.
 * Each returns 0 or a negative errno (-ENOSYS if the client lacks support).
 */
int fuse_lowlevel_notify_poll(struct fuse_pollhandle *ph);
int fuse_lowlevel_notify_inval_inode(struct fuse_session *se, fuse_ino_t ino,
				     off_t off, off_t len);
int fuse_lowlevel_notify_inval_entry(struct fuse_session *se, fuse_ino_t parent,
				     const char *name, size_t namelen);
/**
 * Mark the entry expired rather than dropping it (the client looks it up
 * again on next use, but a process holding it as its cwd is not thrown
 * out). -ENOSYS if the client cannot (FUSE_CAP_EXPIRE_ONLY missing).
 */
int fuse_lowlevel_notify_expire_entry(struct fuse_session *se, fuse_ino_t parent,
				      const char *name, size_t namelen);
/**
 * libfuse 3.12 to 3.16 took a fifth argument: FUSE_LL_EXPIRE_ONLY expires,
 * 0 invalidates. Both spellings compile; the call with four arguments is
 * the function above.
 */
int fuse_lowlevel_notify_expire_entry_flags(struct fuse_session *se, fuse_ino_t parent,
					    const char *name, size_t namelen,
					    enum fuse_notify_entry_flags flags);
#define FUSEDAX_EXPIRE_PICK(a, b, c, d, e, name, ...) name
#define fuse_lowlevel_notify_expire_entry(...)                                 \
	FUSEDAX_EXPIRE_PICK(__VA_ARGS__, fuse_lowlevel_notify_expire_entry_flags, \
			    (fuse_lowlevel_notify_expire_entry), unused)(__VA_ARGS__)
int fuse_lowlevel_notify_delete(struct fuse_session *se, fuse_ino_t parent,
				fuse_ino_t child, const char *name, size_t namelen);
int fuse_lowlevel_notify_store(struct fuse_session *se, fuse_ino_t ino, off_t offset,
			       struct fuse_bufvec *bufv, enum fuse_buf_copy_flags flags);
int fuse_lowlevel_notify_retrieve(struct fuse_session *se, fuse_ino_t ino, size_t size,
				  off_t offset, void *cookie);

/* ------------------------------------------------------------------------
 * Request information.
 */
void *fuse_req_userdata(fuse_req_t req);
const struct fuse_ctx *fuse_req_ctx(fuse_req_t req);
/** Fill list with up to size supplementary groups of the caller (from
 * /proc/PID/status); returns the total number or a negative errno. */
int fuse_req_getgroups(fuse_req_t req, int size, gid_t list[]);
typedef void (*fuse_interrupt_func_t)(fuse_req_t req, void *data);
void fuse_req_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func, void *data);
int fuse_req_interrupted(fuse_req_t req);
/** fusedax: the session a request belongs to. */
struct fuse_session *fuse_req_session(fuse_req_t req);

/* ------------------------------------------------------------------------
 * Command line and help.
 */
struct fuse_cmdline_opts {
	int singlethread;
	int foreground;
	int debug;
	int nodefault_subtype;
	char *mountpoint;
	int show_version;
	int show_help;
	int clone_fd;
	unsigned int max_idle_threads;
	unsigned int max_threads;
};

/**
 * Parse the generic options (-d -f -s -h -V --clone-fd ...) and the mount
 * point. Declared as in the libfuse that distributions ship (built with
 * versioned symbols): one function for every API level. The 3.0 entry
 * point writes nothing past max_idle_threads (its struct ended there).
 */
int fuse_parse_cmdline(struct fuse_args *args, struct fuse_cmdline_opts *opts);
int fuse_parse_cmdline_30(struct fuse_args *args, struct fuse_cmdline_opts *opts);
int fuse_parse_cmdline_312(struct fuse_args *args, struct fuse_cmdline_opts *opts);
void fuse_cmdline_help(void);
void fuse_lowlevel_help(void);
void fuse_lowlevel_version(void);

/* ------------------------------------------------------------------------
 * Sessions.
 */

/**
 * Create a session from the remaining command line options (-o debug,
 * mount options, ...). op is copied (op_size bytes; a shorter struct from an
 * older build leaves the later members NULL). Returns NULL with a logged
 * reason on failure.
 */
struct fuse_session *fuse_session_new(struct fuse_args *args,
				      const struct fuse_lowlevel_ops *op, size_t op_size,
				      void *userdata);
/** libfuse 3.17's entry point behind fuse_session_new(); the same here. */
struct fuse_session *fuse_session_new_versioned(struct fuse_args *args,
						const struct fuse_lowlevel_ops *op,
						size_t op_size,
						struct libfuse_version *version,
						void *userdata);
/* libfuse 3.17's inline wrapper, for code that names it. */
static inline struct fuse_session *fuse_session_new_fn(struct fuse_args *args,
						       const struct fuse_lowlevel_ops *op,
						       size_t op_size, void *userdata)
{
	struct libfuse_version version = { FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION,
					   FUSE_HOTFIX_VERSION, 0 };

	return fuse_session_new_versioned(args, op, op_size, &version, userdata);
}
int fuse_session_mount(struct fuse_session *se, const char *mountpoint);
void fuse_session_unmount(struct fuse_session *se);
int fuse_session_fd(struct fuse_session *se);
int fuse_session_loop(struct fuse_session *se);

/**
 * Read one request from the session's connection into buf, for a file
 * system that runs its own loop. If buf->mem is NULL, a buffer of the
 * session's request size is allocated (buf->mem_size records its size; the
 * caller frees it). Returns the request's length, 0 once the file system is
 * unmounted, or a negative errno (-EINTR and -EAGAIN: just call again).
 */
int fuse_session_receive_buf(struct fuse_session *se, struct fuse_buf *buf);

/**
 * Decode and dispatch one request received with fuse_session_receive_buf
 * (buf->size bytes at buf->mem). The reply is sent before, or after, this
 * returns, as the handler decides.
 */
void fuse_session_process_buf(struct fuse_session *se, const struct fuse_buf *buf);
void fuse_session_exit(struct fuse_session *se);
int fuse_session_exited(struct fuse_session *se);
void fuse_session_reset(struct fuse_session *se);
void fuse_session_destroy(struct fuse_session *se);

/*
 * The multi-threaded loop. Its argument changed twice: a clone_fd flag
 * (API 3.0, 3.1), the two-member config (3.2 to 3.11), the opaque config
 * of fuse_loop_cfg_create() (3.12 on; NULL means the defaults). Each API
 * level sees the entry point of its own argument.
 */
#if FUSE_USE_VERSION < 32
int fuse_session_loop_mt_31(struct fuse_session *se, int clone_fd);
#define fuse_session_loop_mt(se, clone_fd) fuse_session_loop_mt_31(se, clone_fd)
#elif FUSE_USE_VERSION < FUSE_MAKE_VERSION(3, 12)
int fuse_session_loop_mt_32(struct fuse_session *se, struct fuse_loop_config *config);
#define fuse_session_loop_mt(se, config) fuse_session_loop_mt_32(se, config)
#else
/* A function, as in distributions' libfuse; config NULL: the defaults. */
int fuse_session_loop_mt(struct fuse_session *se, struct fuse_loop_config *config);
int fuse_session_loop_mt_312(struct fuse_session *se, struct fuse_loop_config *config);
#endif

/**
 * A transport supplied by the application instead of /dev/fuse (a socket,
 * a pipe pair, a test harness). read returns one whole request per call;
 * writev sends one whole reply per call. Return values as read(2)/writev(2)
 * with errno set on failure.
 */
struct fuse_custom_io {
	ssize_t (*writev)(int fd, struct iovec *iov, int count, void *userdata);
	ssize_t (*read)(int fd, void *buf, size_t buf_len, void *userdata);
	ssize_t (*splice_receive)(int fdin, off_t *offin, int fdout, off_t *offout,
				  size_t len, unsigned int flags, void *userdata);
	ssize_t (*splice_send)(int fdin, off_t *offin, int fdout, off_t *offout,
			       size_t len, unsigned int flags, void *userdata);
	int (*clone_fd)(int master_fd);
};

/*
 * Serve the session over fd with io instead of /dev/fuse, before the loop
 * runs. From API 3.17 the caller passes sizeof(*io) (io may be an older,
 * shorter struct); before, io ended before clone_fd.
 */
int fuse_session_custom_io_317(struct fuse_session *se, const struct fuse_custom_io *io,
			       size_t op_size, int fd);
int fuse_session_custom_io_30(struct fuse_session *se, const struct fuse_custom_io *io,
			      int fd);
#if FUSE_USE_VERSION >= FUSE_MAKE_VERSION(3, 17)
static inline int fuse_session_custom_io(struct fuse_session *se,
					 const struct fuse_custom_io *io, size_t op_size,
					 int fd)
{
	return fuse_session_custom_io_317(se, io, op_size, fd);
}
#else
static inline int fuse_session_custom_io(struct fuse_session *se,
					 const struct fuse_custom_io *io, int fd)
{
	return fuse_session_custom_io_30(se, io, fd);
}
#endif

/**
 * fusedax: attach a DAX window to the session before its loop runs. The
 * session uses the window's size and alignment to negotiate
 * FUSE_MAP_ALIGNMENT at INIT and to validate SETUPMAPPING and
 * REMOVEMAPPING. The caller keeps ownership and destroys the window after
 * fuse_session_destroy(). Returns 0 or -EBUSY once INIT has happened.
 */
int fuse_session_set_dax_window(struct fuse_session *se, struct fuse_dax_window *w);

/** fusedax: the window attached to the session, or NULL. */
struct fuse_dax_window *fuse_session_dax_window(struct fuse_session *se);

/**
 * fusedax: the mount is another process's to remove, such as a sandbox's
 * monitor that stays in the host's mount namespace while this process
 * serves from its own. From now on fuse_session_unmount() does nothing and
 * fuse_session_destroy() only closes the session's descriptor; the mount
 * stays until its owner removes it. No effect on a session not mounted.
 */
void fuse_session_leave_mount(struct fuse_session *se);

#ifdef __cplusplus
}
#endif

#endif /* FUSE_LOWLEVEL_H_ */
