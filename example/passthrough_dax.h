/*
 * passthrough_dax's private header: the state every part of the file system
 * shares (options, inodes, handles, the file system itself) and the calls
 * one part makes into another. Read example/passthrough_dax.c first; it
 * says which file holds what.
 */
#ifndef PASSTHROUGH_DAX_H
#define PASSTHROUGH_DAX_H

#define FUSE_USE_VERSION 317

#include <fuse_lowlevel.h>
#include <fuse_dax.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <search.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Options and state
 */

/* METADATA: names and attributes cached as with ALWAYS, file data never. */
enum pd_cache { CACHE_NEVER, CACHE_AUTO, CACHE_ALWAYS, CACHE_METADATA };
enum pd_dax { DAX_NEVER, DAX_ALWAYS, DAX_INODE, DAX_AUTO };

/* What the command line asked for (strings as fuse_opt_parse stores them). */
struct pd_opts {
	char *source;
	char *cache;
	char *dax;
	char *dax_window_size;
	char *timeout;
	int writeback;
	int xattr;
	unsigned int thread_pool_size;
	/* Defaults 1: host locks for both kinds, O_DIRECT honoured, killpriv_v2. */
	int flock;
	int posix_lock;
	int allow_direct_io;
	int killpriv_v2;
	char *log_level;
	int syslog;
};

/* What pd_virtiofsd_args() found besides passthrough_dax's own options. */
struct pd_virtiofsd {
	/* --socket-path, --socket or --fd: foreground unless --daemonize. */
	bool socket_named;
	bool daemonize;
};

/*
 * One host file the kernel holds a reference to. `fd` is an O_PATH
 * descriptor: it names the file (so renames on the host do not lose it)
 * without opening it for I/O. An operation may use it only while it holds
 * it (inode_get_fd() / inode_fd_hold(), see pd_inode.c).
 */
struct pd_inode {
	fuse_ino_t nodeid;	/* what the kernel calls it */
	dev_t dev;		/* host identity: the lookup key */
	ino_t ino;
	mode_t type;		/* S_IFMT bits; a file's type never changes */
	int fd;

	/* Protected by pd_fs.lock. */
	uint64_t nlookup;	/* the kernel's references */
	unsigned int users;	/* requests of ours using it right now */

	/*
	 * The ordering contract's per-inode lock. Shared: SETUPMAPPING, reads,
	 * writes within the file. Exclusive: every change of size or extents.
	 */
	pthread_rwlock_t extent_lock;
};

/*
 * An open directory: the stream plus where the kernel thinks we are. The
 * lock serializes READDIRs on one handle: the Linux client never sends two
 * at once, but a hostile peer may, and a DIR stream is not thread-safe.
 */
struct pd_dir {
	pthread_mutex_t lock;
	DIR *dp;
	off_t offset;		/* the offset of the entry that comes next */
	struct dirent *pending;	/* read but not yet sent (the reply was full) */
};

/* What a handle was opened as; requests ask for one kind (or either). */
enum pd_handle_kind { HANDLE_FILE, HANDLE_DIR, HANDLE_ANY };

/*
 * One open file or directory: what the client's fh names (see "The handle
 * table"). Every field but refs is fixed from creation to free.
 */
struct pd_handle {
	uint64_t id;		/* the fh the client sees: the lookup key */
	fuse_ino_t nodeid;	/* the inode it was opened on */
	enum pd_handle_kind kind;	/* HANDLE_FILE or HANDLE_DIR */
	int fd;			/* the host descriptor (a directory's: its stream's) */
	int flags;		/* fd's status flags at open (O_ACCMODE, O_APPEND...) */
	struct pd_dir *dir;	/* HANDLE_DIR only */
	unsigned int refs;	/* the table's one (until release) + one per user */
};

struct pd_fs {
	/* -o max_write=, readdirplus=, ... (libfuse's connection options) */
	struct fuse_conn_info_opts *conn_opts;
	enum pd_cache cache;
	enum pd_dax dax;
	bool writeback;
	bool xattr;
	bool flock;		/* offer flock() locks (kept on the host) */
	bool posix_lock;	/* offer POSIX locks (kept on the host) */
	bool allow_direct_io;	/* pass the client's O_DIRECT to the host */
	bool killpriv_v2;	/* offer to clear set-user-ID bits ourselves */
	bool switch_creds;	/* running as root: act as each caller */
	bool guest_callers;	/* vhost-user: callers' pids are a guest's */
	double timeout;		/* entry and attribute validity, seconds */
	int proc_fd;		/* /proc/self/fd, to reopen O_PATH descriptors */

	struct fuse_dax_window *window;	/* NULL without -o dax */

	pthread_mutex_t lock;	/* the two trees, nlookup, users, next_nodeid */
	void *by_nodeid;	/* tsearch tree of pd_inode, by nodeid */
	void *by_host_id;	/* tsearch tree of pd_inode, by (dev, ino) */
	fuse_ino_t next_nodeid;
	struct pd_inode root;

	pthread_mutex_t handle_lock;	/* handles, next_fh, pd_handle.refs */
	void *handles;		/* tsearch tree of pd_handle, by id */
	uint64_t next_fh;	/* the id of the next handle */

	/* Threads waiting for a blocking lock (see "Operations: locks"). */
	pthread_mutex_t waiter_lock;	/* waiters */
	pthread_cond_t waiter_gone;	/* signalled when waiters drops */
	unsigned int waiters;
	atomic_bool stopping;	/* the session ends: waiters give up */
};

static inline struct pd_fs *pd_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The first fh we hand out: no descriptor number or small integer is one. */
#define PD_FIRST_FH (UINT64_C(1) << 32)

/* "N" for /proc/self/fd/N: names a descriptor, never a file name. */
struct fd_name {
	char s[16];
};

/* The path form, for calls that have no *at() variant (the xattr calls). */
struct fd_path {
	char s[32];
};

/* pd_creds.c: acting as the caller (or as ourselves) */
int creds_enter(fuse_req_t req);
void creds_restore(struct pd_fs *fs);
void creds_daemon(struct pd_fs *fs);

/* pd_inode.c: the inode table and helpers over inode descriptors */
struct pd_inode *inode_get(struct pd_fs *fs, fuse_ino_t nodeid);
void inode_put(struct pd_fs *fs, struct pd_inode *in);
int inode_fd_hold(struct pd_fs *fs, struct pd_inode *in);
void inode_fd_drop(struct pd_fs *fs, struct pd_inode *in);
struct pd_inode *inode_get_fd(struct pd_fs *fs, fuse_ino_t nodeid, int *err);
void inode_put_fd(struct pd_fs *fs, struct pd_inode *in);
void inode_unref(struct pd_fs *fs, struct pd_inode *in, uint64_t nlookup, unsigned int users);
int inode_lookup_ref(struct pd_fs *fs, int fd, const struct stat *st, struct pd_inode **out);
void inode_close(void *p);
void tree_node_keep(void *p);
struct fd_name fd_name(int fd);
struct fd_path fd_path(int fd);
int inode_stat(const struct pd_inode *in, struct stat *st);
int inode_open(struct pd_fs *fs, const struct pd_inode *in, int flags);
bool name_is_component(const char *name);

/* pd_handle.c: the handle table */
int handle_new(struct pd_fs *fs, fuse_ino_t nodeid, int fd, struct pd_dir *dir, uint64_t *fh);
struct pd_handle *handle_get(struct pd_fs *fs, uint64_t fh, fuse_ino_t nodeid,
			     enum pd_handle_kind kind);
void handle_put(struct pd_fs *fs, struct pd_handle *h);
int handle_release(struct pd_fs *fs, uint64_t fh, fuse_ino_t nodeid, enum pd_handle_kind kind);
int handle_check(struct pd_fs *fs, const struct fuse_file_info *fi, fuse_ino_t ino);
void handle_free(void *p);

/* pd_extent.c: the ordering contract */
void extent_change_begin(struct pd_inode *in);
int extent_clip(struct pd_fs *fs, struct pd_inode *in, uint64_t new_size);
void extent_change_end(struct pd_fs *fs, struct pd_inode *in, int fd);
int truncate_ordered(struct pd_fs *fs, struct pd_inode *in, int fd, off_t size);

/* pd_virtiofsd_args.c: virtiofsd command lines */
/*
 * Rewrite argv into *out (free it with fuse_opt_free_args()): the spellings
 * of QEMU's C virtiofsd and of the Rust virtiofsd become passthrough_dax's
 * own options, everything else stays. Unimplemented ones are warned about
 * on stderr and dropped. Returns 0, or -1 after printing what is wrong.
 */
int pd_virtiofsd_args(int argc, char *argv[], struct fuse_args *out, struct pd_virtiofsd *v);
/* --print-capabilities is among the arguments: the JSON was printed. */
bool pd_virtiofsd_capabilities(int argc, char *argv[]);
/* The --help section of the virtiofsd spellings. */
void pd_virtiofsd_help(void);

/* passthrough_dax.c: the operations */
extern const struct fuse_lowlevel_ops pd_ops;

#endif /* PASSTHROUGH_DAX_H */
