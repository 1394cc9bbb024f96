/*
 * fusedax high-level API: path-based callbacks (struct fuse_operations) on
 * top of the low-level API, source-compatible with libfuse 3's <fuse.h>.
 *
 * The implementation (lib/highlevel.c) uses only the public low-level API.
 * It keeps a table of inode numbers -> (parent, name) and builds the path of
 * each request from it, then calls the matching path-based callback.
 *
 * What it does, in short:
 *   - every member of struct fuse_operations below except those listed next
 *     is called: lookups use getattr, readdir results are collected through
 *     the filler (both "offset 0 for every entry" and "real offsets" styles),
 *     ioctl handles restricted ioctls (data size encoded in the command),
 *     read prefers read_buf, write falls back to write_buf;
 *   - fuse_config members honoured: uid/gid/umask overrides (set_uid, uid,
 *     set_gid, gid, set_mode, umask), entry_timeout, negative_timeout,
 *     attr_timeout, use_ino, readdir_ino (always on), direct_io,
 *     kernel_cache, nullpath_ok (see below), debug. They can be set from
 *     the command line (-o uid=N, -o umask=022, -o entry_timeout=T, ...,
 *     see fuse_lib_help()) or by the init() callback.
 *
 * What it does not do (the differences from libfuse's high-level library):
 *   - never called: lock, flock, bmap, poll (no fuse_pollhandle support).
 *     Byte-range and flock locks are therefore handled by the
 *     kernel locally only.
 *   - unrestricted ioctls (FUSE_IOCTL_UNRESTRICTED, CUSE style) fail with
 *     ENOSYS; ioctls are answered with fuse_reply_ioctl() only.
 *   - no "hidden file" on unlink of an open file (libfuse's default
 *     without hard_remove): an unlinked or overwritten node loses its path
 *     at once, as with libfuse's -o hard_remove. Operations on an open
 *     handle of such a node then get path NULL if cfg->nullpath_ok is set,
 *     otherwise fail with ENOENT; release and releasedir are always called,
 *     with path NULL.
 *   - no path locking: a request that races a rename of one of its
 *     ancestors may see the old path (the kernel serialises most such
 *     cases itself).
 *   - no readdirplus, no inode cache cleaning thread ("remember"), no
 *     interrupt signal delivery (intr), no auto_cache, no stacking modules
 *     (modules), no fuse_fs_* calls, no fuse_invalidate_path().
 */
#ifndef FUSE_H_
#define FUSE_H_

#include "fuse_common.h"

#include <fcntl.h>
#include <time.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One mounted file system served through path-based callbacks. Opaque. */
struct fuse;
struct fuse_pollhandle;

/* Passed to readdir(): FUSE_READDIR_PLUS asks for full attributes. This
 * library never sets it (it does not serve READDIRPLUS). fusedax's
 * fuse_lowlevel.h defines the same enum; whichever header comes first does. */
#ifndef FUSE_LOWLEVEL_H_
enum fuse_readdir_flags {
	FUSE_READDIR_DEFAULTS = 0,
	FUSE_READDIR_PLUS = (1 << 0),
};
#endif

/* Passed to the filler: FUSE_FILL_DIR_PLUS says stbuf is complete. */
enum fuse_fill_dir_flags {
	FUSE_FILL_DIR_DEFAULTS = 0,
	FUSE_FILL_DIR_PLUS = (1 << 1),
};

/*
 * Adds one directory entry during readdir(). stbuf may be NULL; only its
 * st_ino (with use_ino) and the file type bits of st_mode are used.
 * off is 0 when the callback lists the whole directory at once, or the
 * offset of the *next* entry when it honours readdir()'s offset argument.
 * Returns 1 when the reply buffer is full (stop filling), 0 otherwise.
 */
typedef int (*fuse_fill_dir_t)(void *buf, const char *name,
			       const struct stat *stbuf, off_t off,
			       enum fuse_fill_dir_flags flags);

/* Settings of the high-level layer; init() may change them. */
struct fuse_config {
	int set_gid;		/* report gid for every file */
	unsigned int gid;
	int set_uid;		/* report uid for every file */
	unsigned int uid;
	int set_mode;		/* clear the umask bits from every mode */
	unsigned int umask;
	double entry_timeout;	/* seconds names stay cached (default 1) */
	double negative_timeout; /* seconds a missing name stays cached (0) */
	double attr_timeout;	/* seconds attributes stay cached (default 1) */
	int intr;		/* not supported */
	int intr_signal;	/* not supported */
	int remember;		/* not supported */
	int hard_remove;	/* always on (see above) */
	int use_ino;		/* report getattr's st_ino instead of ours */
	int readdir_ino;	/* always on for names already known */
	int direct_io;		/* open every file with direct_io */
	int kernel_cache;	/* open every file with keep_cache */
	int auto_cache;		/* not supported */
	int no_rofd_flush;	/* skip flush for read-only handles */
	int ac_attr_timeout_set; /* not supported */
	double ac_attr_timeout;	/* not supported */
	int nullpath_ok;	/* callbacks accept path NULL on open handles */
	int show_help;
	char *modules;		/* not supported */
	int debug;
};

/*
 * Path-based callbacks. Each returns 0 (or a count) on success and a
 * negative errno on failure; a missing member answers ENOSYS unless noted.
 * Members are in libfuse 3's order so positional initialisers still work.
 */
struct fuse_operations {
	int (*getattr)(const char *path, struct stat *stbuf,
		       struct fuse_file_info *fi);
	int (*readlink)(const char *path, char *buf, size_t size);
	int (*mknod)(const char *path, mode_t mode, dev_t rdev);
	int (*mkdir)(const char *path, mode_t mode);
	int (*unlink)(const char *path);
	int (*rmdir)(const char *path);
	int (*symlink)(const char *target, const char *path);
	int (*rename)(const char *from, const char *to, unsigned int flags);
	int (*link)(const char *from, const char *to);
	int (*chmod)(const char *path, mode_t mode, struct fuse_file_info *fi);
	int (*chown)(const char *path, uid_t uid, gid_t gid,
		     struct fuse_file_info *fi);
	int (*truncate)(const char *path, off_t size, struct fuse_file_info *fi);
	int (*open)(const char *path, struct fuse_file_info *fi);
	int (*read)(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi);
	int (*write)(const char *path, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi);
	int (*statfs)(const char *path, struct statvfs *st);
	int (*flush)(const char *path, struct fuse_file_info *fi);
	int (*release)(const char *path, struct fuse_file_info *fi);
	int (*fsync)(const char *path, int datasync, struct fuse_file_info *fi);
	int (*setxattr)(const char *path, const char *name, const char *value,
			size_t size, int flags);
	int (*getxattr)(const char *path, const char *name, char *value,
			size_t size);
	int (*listxattr)(const char *path, char *list, size_t size);
	int (*removexattr)(const char *path, const char *name);
	int (*opendir)(const char *path, struct fuse_file_info *fi);
	int (*readdir)(const char *path, void *buf, fuse_fill_dir_t filler,
		       off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags);
	int (*releasedir)(const char *path, struct fuse_file_info *fi);
	int (*fsyncdir)(const char *path, int datasync,
			struct fuse_file_info *fi);
	/* Its return value becomes fuse_get_context()->private_data. */
	void *(*init)(struct fuse_conn_info *conn, struct fuse_config *cfg);
	void (*destroy)(void *private_data);
	int (*access)(const char *path, int mask);
	int (*create)(const char *path, mode_t mode, struct fuse_file_info *fi);
	int (*lock)(const char *path, struct fuse_file_info *fi, int cmd,
		    struct flock *lock);
	int (*utimens)(const char *path, const struct timespec tv[2],
		       struct fuse_file_info *fi);
	int (*bmap)(const char *path, size_t blocksize, uint64_t *idx);
#if FUSE_USE_VERSION < 35
	int (*ioctl)(const char *path, int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned int flags, void *data);
#else
	int (*ioctl)(const char *path, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned int flags, void *data);
#endif
	int (*poll)(const char *path, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph, unsigned *reventsp);
	int (*write_buf)(const char *path, struct fuse_bufvec *buf, off_t off,
			 struct fuse_file_info *fi);
	/* The library frees *bufp and its memory buffers (malloc'ed). */
	int (*read_buf)(const char *path, struct fuse_bufvec **bufp,
			size_t size, off_t off, struct fuse_file_info *fi);
	int (*flock)(const char *path, struct fuse_file_info *fi, int op);
	int (*fallocate)(const char *path, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi);
	ssize_t (*copy_file_range)(const char *path_in,
				   struct fuse_file_info *fi_in, off_t off_in,
				   const char *path_out,
				   struct fuse_file_info *fi_out, off_t off_out,
				   size_t size, int flags);
	off_t (*lseek)(const char *path, off_t off, int whence,
		       struct fuse_file_info *fi);
};

/* Who sent the request being served (valid inside a callback). */
struct fuse_context {
	struct fuse *fuse;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	void *private_data;	/* fuse_new()'s user data, then init()'s result */
	mode_t umask;
};

/*
 * Parses the command line, mounts, serves until unmounted or signalled,
 * unmounts. Returns 0 on success, non-zero on failure. Use fuse_main().
 */
int fuse_main_real(int argc, char *argv[], const struct fuse_operations *op,
		   size_t op_size, void *private_data);
#define fuse_main(argc, argv, op, private_data) \
	fuse_main_real(argc, argv, op, sizeof(*(op)), private_data)

/* Prints the options fuse_new() understands to stdout. */
void fuse_lib_help(struct fuse_args *args);

/*
 * Creates a file system. Options of this layer are taken out of args, the
 * rest go to fuse_session_new(). Returns NULL (after logging why) on error.
 */
struct fuse *fuse_new(struct fuse_args *args, const struct fuse_operations *op,
		      size_t op_size, void *private_data);
int fuse_mount(struct fuse *f, const char *mountpoint);
void fuse_unmount(struct fuse *f);
void fuse_destroy(struct fuse *f);
int fuse_loop(struct fuse *f);
#if FUSE_USE_VERSION < 32
int fuse_loop_mt_31(struct fuse *f, int clone_fd);
#define fuse_loop_mt(f, clone_fd) fuse_loop_mt_31(f, clone_fd)
#elif FUSE_USE_VERSION < FUSE_MAKE_VERSION(3, 12)
int fuse_loop_mt_32(struct fuse *f, struct fuse_loop_config *config);
#define fuse_loop_mt(f, config) fuse_loop_mt_32(f, config)
#else
/* config may be NULL for the defaults. */
int fuse_loop_mt(struct fuse *f, struct fuse_loop_config *config);
#endif
void fuse_exit(struct fuse *f);
struct fuse_session *fuse_get_session(struct fuse *f);

/* The context of the request this thread is serving. */
struct fuse_context *fuse_get_context(void);
/* Supplementary groups of the caller; see fuse_req_getgroups(). */
int fuse_getgroups(int size, gid_t list[]);
/* 1 if the request this thread is serving was interrupted. */
int fuse_interrupted(void);

#ifdef __cplusplus
}
#endif

#endif /* FUSE_H_ */
