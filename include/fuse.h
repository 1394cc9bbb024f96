/*
 * fusedax high-level API: path-based callbacks (struct fuse_operations) on
 * top of the low-level API, source-compatible with libfuse 3.17's <fuse.h>.
 *
 * The implementation (lib/highlevel*.c) uses only the public low-level API.
 * It keeps a table of inode numbers -> (parent, name), builds the path of
 * each request from it and calls the top struct fuse_fs layer: the file
 * system's callbacks, or a module stacked on them (-o modules=).
 *
 * It behaves as libfuse's high-level library: every callback is called
 * (lock/flock only when the file system has them, else the kernel locks
 * locally), READDIRPLUS with FUSE_FILL_DIR_PLUS entries, an unlinked open
 * file kept as .fuse_hidden* until its last release unless hard_remove,
 * nullpath_ok, auto_cache, remember/noforget, intr, umask/fmask/dmask,
 * uid/gid, the timeouts. What differs (doc/compat.md): no path locking (a
 * request that races a rename of one of its ancestors may use the old
 * path; the kernel serialises most such cases itself), no built-in iconv
 * module, and unrestricted ioctls (FUSE_IOCTL_UNRESTRICTED) fail with
 * ENOSYS.
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

/* Passed to readdir(): FUSE_READDIR_PLUS says the client reads the
 * directory with attributes (READDIRPLUS); the file system may then fill
 * complete stat buffers and say so with FUSE_FILL_DIR_PLUS. */
enum fuse_readdir_flags {
	FUSE_READDIR_DEFAULTS = 0,
	FUSE_READDIR_PLUS = (1 << 0),
};

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

/*
 * Settings of the high-level layer: from the command line (-o uid=N,
 * -o umask=022, -o entry_timeout=T, ...: see fuse_lib_help()), then from
 * init(), which may change them. Laid out as libfuse 3.17's.
 */
struct fuse_config {
	int32_t set_gid;	/* report gid for every file */
	uint32_t gid;
	int32_t set_uid;	/* report uid for every file */
	uint32_t uid;
	int32_t set_mode;	/* apply umask (or fmask/dmask) to every mode */
	uint32_t umask;
	double entry_timeout;	/* seconds names stay cached (default 1) */
	double negative_timeout; /* seconds a missing name stays cached (0) */
	double attr_timeout;	/* seconds attributes stay cached (default 1) */
	int32_t intr;		/* interrupt a callback with intr_signal */
	int32_t intr_signal;	/* the signal for intr (default SIGUSR1) */
	int32_t remember;	/* seconds to keep forgotten inodes; -1 forever */
	int32_t hard_remove;	/* unlink open files at once (no .fuse_hidden) */
	int32_t use_ino;	/* report getattr's st_ino instead of ours */
	int32_t readdir_ino;	/* readdir reports known inode numbers */
	int32_t direct_io;	/* open every file with direct_io */
	int32_t kernel_cache;	/* open every file with keep_cache */
	int32_t auto_cache;	/* keep the cache while mtime and size hold */
	int32_t ac_attr_timeout_set;
	double ac_attr_timeout;	/* attributes age for auto_cache checks */
	int32_t nullpath_ok;	/* callbacks accept path NULL on open handles */
	int32_t show_help;
	char *modules;		/* stacked modules, "subdir:iconv" */
	int32_t debug;
	uint32_t fmask;		/* with set_mode: bits cleared from non-dirs */
	uint32_t dmask;		/* with set_mode: bits cleared from dirs */
	int32_t no_rofd_flush;	/* no flush for read-only handles */
	int32_t parallel_direct_writes; /* open files with that flag */
	uint32_t flags;		/* FUSE_CONFIG_* (none defined yet) */
	uint64_t reserved[48];
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

/* ------------------------------------------------------------------------
 * Running a file system: fuse_main() does it all; fuse_new(), fuse_mount(),
 * fuse_loop*() and friends are its steps.
 */

/*
 * Parse the command line, mount, serve until unmounted or signalled,
 * unmount. Returns 0 on success, 1 or more on failure. fuse_main() and the
 * deprecated fuse_main_real() hand the library the API level the caller
 * was built with.
 */
int fuse_main_real_versioned(int argc, char *argv[],
			     const struct fuse_operations *op, size_t op_size,
			     struct libfuse_version *version, void *user_data);

static inline int fuse_main_fn(int argc, char *argv[], const struct fuse_operations *op,
			       void *user_data)
{
	struct libfuse_version version = { FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION,
					   FUSE_HOTFIX_VERSION, 0 };

	return fuse_main_real_versioned(argc, argv, op, sizeof(*(op)), &version,
					user_data);
}
#define fuse_main(argc, argv, op, user_data) fuse_main_fn(argc, argv, op, user_data)

/* The entry point under its pre-3.17 name; libfuse logs that it is internal. */
static inline int fuse_main_real(int argc, char *argv[],
				 const struct fuse_operations *op, size_t op_size,
				 void *user_data)
{
	struct libfuse_version version = { FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION,
					   FUSE_HOTFIX_VERSION, 0 };

	fuse_log(FUSE_LOG_ERR, "fuse_main_real() is internal to the library: "
		 "call fuse_main()\n");
	return fuse_main_real_versioned(argc, argv, op, op_size, &version, user_data);
}

/* Prints the options fuse_new() understands to stdout. */
void fuse_lib_help(struct fuse_args *args);

/*
 * Creates a file system. Options of this layer are taken out of args, the
 * rest go to fuse_session_new(). Returns NULL (after logging why) on error.
 * At API 3.0 it also handled -h/--help (printing fuse_lib_help() and
 * returning NULL); from 3.1 on that is the caller's job.
 */
struct fuse *_fuse_new_30(struct fuse_args *args, const struct fuse_operations *op,
			  size_t op_size, struct libfuse_version *version,
			  void *user_data);
struct fuse *_fuse_new_31(struct fuse_args *args, const struct fuse_operations *op,
			  size_t op_size, struct libfuse_version *version,
			  void *user_data);
static inline struct fuse *fuse_new_fn(struct fuse_args *args,
				       const struct fuse_operations *op,
				       size_t op_size, void *user_data)
{
	struct libfuse_version version = { FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION,
					   FUSE_HOTFIX_VERSION, 0 };

#if FUSE_USE_VERSION == 30
	return _fuse_new_30(args, op, op_size, &version, user_data);
#else
	return _fuse_new_31(args, op, op_size, &version, user_data);
#endif
}
#define fuse_new(args, op, size, data) fuse_new_fn(args, op, size, data)

int fuse_mount(struct fuse *f, const char *mountpoint);
void fuse_unmount(struct fuse *f);
void fuse_destroy(struct fuse *f);
/* Serve requests on this thread until the session ends. 0 on a clean end. */
int fuse_loop(struct fuse *f);
void fuse_exit(struct fuse *f);

/* The multi-threaded loop; its argument changed as fuse_session_loop_mt's. */
#if FUSE_USE_VERSION < 32
int fuse_loop_mt_31(struct fuse *f, int clone_fd);
#define fuse_loop_mt(f, clone_fd) fuse_loop_mt_31(f, clone_fd)
#elif FUSE_USE_VERSION < FUSE_MAKE_VERSION(3, 12)
int fuse_loop_mt_32(struct fuse *f, struct fuse_loop_config *config);
#define fuse_loop_mt(f, config) fuse_loop_mt_32(f, config)
#else
/* A function, as in distributions' libfuse; config NULL: the defaults. */
int fuse_loop_mt(struct fuse *f, struct fuse_loop_config *config);
int fuse_loop_mt_312(struct fuse *f, struct fuse_loop_config *config);
#endif

struct fuse_session *fuse_get_session(struct fuse *f);

/*
 * Mount mountpoint with the mount options in options ("ro,allow_other")
 * and return the connection's file descriptor, or -1 (after logging why).
 * For programs that hand the descriptor to a file system process.
 */
int fuse_open_channel(const char *mountpoint, const char *options);

/* The context of the request this thread is serving. */
struct fuse_context *fuse_get_context(void);
/* Supplementary groups of the caller; see fuse_req_getgroups(). */
int fuse_getgroups(int size, gid_t list[]);
/* 1 if the request this thread is serving was interrupted. */
int fuse_interrupted(void);

/*
 * Make the client forget what it caches for path: its data and
 * attributes, and the name itself. 0, -ENOENT if the library holds no
 * inode for path (nothing cached), or the notification's error.
 */
int fuse_invalidate_path(struct fuse *f, const char *path);

/* Wake a poll() waiter: the high-level fuse_lowlevel_notify_poll(). */
int fuse_notify_poll(struct fuse_pollhandle *ph);

/*
 * With -o remember=T: a thread that drops inodes forgotten by the client
 * more than T seconds ago. fuse_loop_mt() starts and stops it itself;
 * a file system running its own loop calls these, or fuse_clean_cache(),
 * which drops what is due and returns the seconds until it should run
 * again.
 */
int fuse_start_cleanup_thread(struct fuse *fuse);
void fuse_stop_cleanup_thread(struct fuse *fuse);
int fuse_clean_cache(struct fuse *fuse);

/* ------------------------------------------------------------------------
 * Stacking: a struct fuse_fs is one layer of path-based callbacks. A
 * module (-o modules=NAME) is a layer that calls the fuse_fs_* of the
 * layer below it. Each fuse_fs_* call makes that layer's user data the
 * context's private_data, calls the callback and returns its result; a
 * missing callback gives -ENOSYS, except open, release, opendir,
 * releasedir, flush and statfs (0), and lock, flock, bmap, ... as noted.
 */
struct fuse_fs;

int fuse_fs_getattr(struct fuse_fs *fs, const char *path, struct stat *buf,
		    struct fuse_file_info *fi);
int fuse_fs_rename(struct fuse_fs *fs, const char *oldpath,
		   const char *newpath, unsigned int flags);
int fuse_fs_unlink(struct fuse_fs *fs, const char *path);
int fuse_fs_rmdir(struct fuse_fs *fs, const char *path);
int fuse_fs_symlink(struct fuse_fs *fs, const char *linkname,
		    const char *path);
int fuse_fs_link(struct fuse_fs *fs, const char *oldpath, const char *newpath);
int fuse_fs_release(struct fuse_fs *fs, const char *path,
		    struct fuse_file_info *fi);
int fuse_fs_open(struct fuse_fs *fs, const char *path,
		 struct fuse_file_info *fi);
int fuse_fs_read(struct fuse_fs *fs, const char *path, char *buf, size_t size,
		 off_t off, struct fuse_file_info *fi);
int fuse_fs_read_buf(struct fuse_fs *fs, const char *path,
		     struct fuse_bufvec **bufp, size_t size, off_t off,
		     struct fuse_file_info *fi);
int fuse_fs_write(struct fuse_fs *fs, const char *path, const char *buf,
		  size_t size, off_t off, struct fuse_file_info *fi);
int fuse_fs_write_buf(struct fuse_fs *fs, const char *path,
		      struct fuse_bufvec *buf, off_t off,
		      struct fuse_file_info *fi);
int fuse_fs_fsync(struct fuse_fs *fs, const char *path, int datasync,
		  struct fuse_file_info *fi);
int fuse_fs_flush(struct fuse_fs *fs, const char *path,
		  struct fuse_file_info *fi);
int fuse_fs_statfs(struct fuse_fs *fs, const char *path, struct statvfs *buf);
int fuse_fs_opendir(struct fuse_fs *fs, const char *path,
		    struct fuse_file_info *fi);
int fuse_fs_readdir(struct fuse_fs *fs, const char *path, void *buf,
		    fuse_fill_dir_t filler, off_t off,
		    struct fuse_file_info *fi, enum fuse_readdir_flags flags);
int fuse_fs_fsyncdir(struct fuse_fs *fs, const char *path, int datasync,
		     struct fuse_file_info *fi);
int fuse_fs_releasedir(struct fuse_fs *fs, const char *path,
		       struct fuse_file_info *fi);
int fuse_fs_create(struct fuse_fs *fs, const char *path, mode_t mode,
		   struct fuse_file_info *fi);
int fuse_fs_lock(struct fuse_fs *fs, const char *path,
		 struct fuse_file_info *fi, int cmd, struct flock *lock);
int fuse_fs_flock(struct fuse_fs *fs, const char *path,
		  struct fuse_file_info *fi, int op);
int fuse_fs_chmod(struct fuse_fs *fs, const char *path, mode_t mode,
		  struct fuse_file_info *fi);
int fuse_fs_chown(struct fuse_fs *fs, const char *path, uid_t uid, gid_t gid,
		  struct fuse_file_info *fi);
int fuse_fs_truncate(struct fuse_fs *fs, const char *path, off_t size,
		     struct fuse_file_info *fi);
int fuse_fs_utimens(struct fuse_fs *fs, const char *path,
		    const struct timespec tv[2], struct fuse_file_info *fi);
int fuse_fs_access(struct fuse_fs *fs, const char *path, int mask);
int fuse_fs_readlink(struct fuse_fs *fs, const char *path, char *buf,
		     size_t len);
int fuse_fs_mknod(struct fuse_fs *fs, const char *path, mode_t mode,
		  dev_t rdev);
int fuse_fs_mkdir(struct fuse_fs *fs, const char *path, mode_t mode);
int fuse_fs_setxattr(struct fuse_fs *fs, const char *path, const char *name,
		     const char *value, size_t size, int flags);
int fuse_fs_getxattr(struct fuse_fs *fs, const char *path, const char *name,
		     char *value, size_t size);
int fuse_fs_listxattr(struct fuse_fs *fs, const char *path, char *list,
		      size_t size);
int fuse_fs_removexattr(struct fuse_fs *fs, const char *path,
			const char *name);
int fuse_fs_bmap(struct fuse_fs *fs, const char *path, size_t blocksize,
		 uint64_t *idx);
#if FUSE_USE_VERSION < 35
int fuse_fs_ioctl(struct fuse_fs *fs, const char *path, int cmd, void *arg,
		  struct fuse_file_info *fi, unsigned int flags, void *data);
#else
int fuse_fs_ioctl(struct fuse_fs *fs, const char *path, unsigned int cmd,
		  void *arg, struct fuse_file_info *fi, unsigned int flags,
		  void *data);
#endif
int fuse_fs_poll(struct fuse_fs *fs, const char *path,
		 struct fuse_file_info *fi, struct fuse_pollhandle *ph,
		 unsigned *reventsp);
int fuse_fs_fallocate(struct fuse_fs *fs, const char *path, int mode,
		      off_t offset, off_t length, struct fuse_file_info *fi);
ssize_t fuse_fs_copy_file_range(struct fuse_fs *fs, const char *path_in,
				struct fuse_file_info *fi_in, off_t off_in,
				const char *path_out,
				struct fuse_file_info *fi_out, off_t off_out,
				size_t len, int flags);
off_t fuse_fs_lseek(struct fuse_fs *fs, const char *path, off_t off,
		    int whence, struct fuse_file_info *fi);
void fuse_fs_init(struct fuse_fs *fs, struct fuse_conn_info *conn,
		  struct fuse_config *cfg);
void fuse_fs_destroy(struct fuse_fs *fs);

/*
 * A new layer over op (op_size bytes of it) with user_data as its
 * private data, for a module's factory. NULL when out of memory.
 */
struct fuse_fs *fuse_fs_new(const struct fuse_operations *op, size_t op_size,
			    void *user_data);

/*
 * A module's factory: build a layer over fs[0] (the layer below; fs[1] is
 * NULL), taking the module's own options out of args. Returns the new
 * layer, or NULL (after logging why) to fail fuse_new().
 */
typedef struct fuse_fs *(*fuse_module_factory_t)(struct fuse_args *args,
						 struct fuse_fs *fs[]);

/*
 * Makes a module loadable by -o modules=name_: compile it into
 * libfusemod_name_.so somewhere the dynamic loader looks. "subdir" and
 * "iconv" are built in.
 */
#define FUSE_REGISTER_MODULE(name_, factory_)                                  \
	fuse_module_factory_t fuse_module_##name_##_factory = factory_

#ifdef __cplusplus
}
#endif

#endif /* FUSE_H_ */
