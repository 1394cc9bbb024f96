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
#include <sys/sysmacros.h>
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
/* -o inode_file_handles=: how an inode names its host file (pd_inode.c) */
enum pd_fhandles { FHANDLES_NEVER, FHANDLES_PREFER, FHANDLES_MANDATORY };
/* -o sandbox=, -o seccomp= (pd_sandbox.c, pd_seccomp.c); DEFAULT: not given */
enum pd_sandbox_mode { SANDBOX_DEFAULT, SANDBOX_NONE, SANDBOX_CHROOT, SANDBOX_NAMESPACE };
enum pd_seccomp_mode { SECCOMP_DEFAULT, SECCOMP_NONE, SECCOMP_LOG, SECCOMP_TRAP, SECCOMP_KILL };
/* What the session's descriptor is (pd_sandbox.c) */
enum pd_transport { TRANSPORT_MOUNT, TRANSPORT_VHOST_USER, TRANSPORT_GIVEN };

/* How the serving process is contained (pd_sandbox.c). */
struct pd_sandbox {
	enum pd_sandbox_mode mode;
	enum pd_seccomp_mode seccomp;
	enum pd_transport transport;
	uint64_t caps_add, caps_drop;	/* -o modcaps= */
	uint64_t caps_keep;		/* what the server keeps (sandbox_caps()) */
	long long rlimit_nofile;	/* -o rlimit_nofile=; -1: the default */
	bool readonly;			/* -o readonly */
	char *source;			/* the source's absolute path */
};

/* -o uid_map=, gid_map=: client ids inner.. are host ids outer.. (pd_idmap.c) */
struct pd_idmap {
	bool set;
	uint32_t inner, outer, count;
};

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
	char *inode_file_handles;
	char *inode_fd_cache;
	char *sandbox;
	char *seccomp;
	char *modcaps;
	char *rlimit_nofile;
	char *uid_map;
	char *gid_map;
	char *seccomp_refuse;
	int readonly;
	int passthrough;	/* -o passthrough: FUSE passthrough of open files */
};

/* What pd_virtiofsd_args() found besides passthrough_dax's own options. */
struct pd_virtiofsd {
	/* --socket-path, --socket or --fd: foreground unless --daemonize. */
	bool socket_named;
	bool daemonize;
};

/*
 * A host mount we open file handles on, by the id name_to_handle_at() gives.
 * open_by_handle_at() refuses an O_PATH descriptor as the mount's, so path_fd
 * (the first file we met on it) is reopened for reading, as the daemon, when
 * first needed.
 */
struct pd_mount {
	int mount_id;
	int path_fd;
	int fd;			/* -1 until reopened */
};

/*
 * A file handle (name_to_handle_at): names a host file for as long as it
 * exists, without holding a descriptor. mount_id says which of the daemon's
 * mount descriptors open_by_handle_at() takes.
 */
struct pd_fhandle {
	int mount_id;
	struct file_handle fh;	/* followed by fh.handle_bytes bytes */
};

/*
 * One host file the kernel holds a reference to. `fd` is an O_PATH
 * descriptor: it names the file (so renames on the host do not lose it)
 * without opening it for I/O. An operation may use it only while it holds
 * it (inode_get_fd() / inode_fd_hold(), see pd_inode.c). An inode with a
 * file handle (-o inode_file_handles=prefer|mandatory) opens fd on demand
 * and may lose it again while nobody holds it.
 */
struct pd_inode {
	fuse_ino_t nodeid;	/* what the kernel calls it */
	dev_t dev;		/* host identity: the lookup key */
	ino_t ino;
	mode_t type;		/* S_IFMT bits; a file's type never changes */
	int fd;			/* -1: closed (only with a file handle) */
	struct pd_fhandle *handle;	/* NULL: fd lives as long as the inode */

	/* Protected by pd_fs.lock. */
	uint64_t nlookup;	/* the kernel's references */
	unsigned int users;	/* requests of ours using it right now */

	/* Protected by pd_fs.fd_lock; used only with a handle. */
	unsigned int fd_holds;	/* requests and open files using fd */
	struct pd_inode *idle_prev, *idle_next;	/* open, unheld: in pd_fs.idle */

	/*
	 * The ordering contract's per-inode lock. Shared: SETUPMAPPING, reads,
	 * writes within the file, following the host's size. Exclusive: every
	 * change of size or extents. Writer-preferring (extent_lock_init()).
	 */
	pthread_rwlock_t extent_lock;
	bool collapse_refused;	/* the host said EOPNOTSUPP; under extent_lock */

	/* The host watch of a mapped file (pd_watch.c; under its lock). */
	int watch_wd;
	uint64_t watch_gen;	/* 0: not watched */

	/*
	 * -o passthrough (protected by pd_fs.lock): the backing file the
	 * client reads and writes this inode through, shared by every open of
	 * it (the kernel wants one per inode), and how many open handles of it
	 * there are; the last release drops the backing file.
	 */
	int backing_id;
	unsigned int file_opens;
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
	bool passthrough;	/* -o passthrough, and the client agreed at INIT */
	bool switch_creds;	/* running as root: act as each caller */
	/*
	 * The pid of a request names a process of this host (a /dev/fuse
	 * mount), not a guest's (vhost-user): only then are the caller's
	 * supplementary groups read, from host_proc (the host's /proc, kept
	 * open so a sandbox's own /proc does not hide the callers).
	 */
	bool callers_on_host;
	int host_proc;
	bool readonly;		/* -o readonly (pd_readonly.c) */
	struct pd_idmap uid_map, gid_map;	/* identity unless set */
	double timeout;		/* entry and attribute validity, seconds */
	int proc_fd;		/* /proc/self/fd, to reopen O_PATH descriptors */
	const char *fd_dir;	/* how paths name descriptor N: fd_dir + "N" */

	struct fuse_dax_window *window;	/* NULL without -o dax */

	pthread_mutex_t lock;	/* the two trees, nlookup, users, next_nodeid */
	void *by_nodeid;	/* tsearch tree of pd_inode, by nodeid */
	void *by_host_id;	/* tsearch tree of pd_inode, by (dev, ino) */
	fuse_ino_t next_nodeid;
	struct pd_inode root;

	/* Descriptors opened from file handles (pd_inode.c). */
	enum pd_fhandles fhandles;
	pthread_mutex_t fd_lock;	/* fd, fd_holds, idle list of handle inodes; mounts */
	struct pd_inode *idle_newest, *idle_oldest;	/* open, unheld descriptors */
	unsigned long idle_count;
	unsigned long idle_max;	/* -o inode_fd_cache=: keep at most this many */
	struct pd_mount *mounts;	/* a descriptor per host mount, for open_by_handle_at */
	unsigned int mount_count;
	atomic_ulong exhausted;	/* failures for want of descriptors or memory */
	atomic_ulong no_handle;	/* lookups mandatory mode refused */
	atomic_ulong unmapped;	/* requests from callers outside -o uid_map/gid_map */

	pthread_mutex_t handle_lock;	/* handles, next_fh, pd_handle.refs */
	void *handles;		/* tsearch tree of pd_handle, by id */
	uint64_t next_fh;	/* the id of the next handle */

	/* Threads waiting for a blocking lock (see "Operations: locks"). */
	pthread_mutex_t waiter_lock;	/* waiters */
	pthread_cond_t waiter_gone;	/* signalled when waiters drops */
	unsigned int waiters;
	atomic_bool stopping;	/* the session ends: waiters give up */

	/* Host changes to mapped files (pd_watch.c); made on first use. */
	_Atomic(struct pd_watch *) watch;
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
/* Our privileges for one step inside an operation: creds_return() puts the euid back. */
uid_t creds_borrow_daemon(struct pd_fs *fs);
void creds_return(struct pd_fs *fs, uid_t euid);

/* pd_inode.c: the inode table and helpers over inode descriptors */
struct pd_inode *inode_get(struct pd_fs *fs, fuse_ino_t nodeid);
void inode_put(struct pd_fs *fs, struct pd_inode *in);
void inodes_forget_all(struct pd_fs *fs);
int inode_fd_hold(struct pd_fs *fs, struct pd_inode *in);
void inode_fd_drop(struct pd_fs *fs, struct pd_inode *in);
struct pd_inode *inode_get_fd(struct pd_fs *fs, fuse_ino_t nodeid, int *err);
void inode_put_fd(struct pd_fs *fs, struct pd_inode *in);
void inode_unref(struct pd_fs *fs, struct pd_inode *in, uint64_t nlookup, unsigned int users);
int inode_lookup_ref(struct pd_fs *fs, int fd, const struct stat *st, struct pd_inode **out);
void inode_close(void *p);
void tree_node_keep(void *p);
int inode_handles_start(struct pd_fs *fs);
void inode_handles_stop(struct pd_fs *fs);
void pd_log_counted(struct pd_fs *fs, atomic_ulong *count, const char *what,
		    const char *why);
void pd_log_exhausted(struct pd_fs *fs, const char *what, int err);
struct fd_name fd_name(int fd);
struct fd_path fd_path(const struct pd_fs *fs, int fd);
int inode_stat(const struct pd_inode *in, struct stat *st);
int inode_attr(const struct pd_fs *fs, const struct pd_inode *in, struct stat *st);
int inode_open_child(struct pd_fs *fs, const struct pd_inode *dir, const char *name);
int inode_open(struct pd_fs *fs, const struct pd_inode *in, int flags);
bool name_is_component(const char *name);

/* pd_sandbox.c, pd_seccomp.c: containment */
int sandbox_parse_modcaps(const char *text, uint64_t *add, uint64_t *drop);
int sandbox_set_rlimit(long long want);
enum pd_transport sandbox_transport(struct fuse_session *se, const char *mountpoint);
uint64_t sandbox_caps(const struct pd_sandbox *sb, bool file_handles);
int sandbox_enter(struct pd_fs *fs, struct fuse_session *se, struct pd_sandbox *sb,
		  const char *mountpoint, int *status);
void confinement_begun(void);
int seccomp_start(enum pd_seccomp_mode mode, bool may_unmount, const char *refuse);
bool seccomp_available(void);

/* pd_idmap.c: -o uid_map, gid_map (every owner that reaches the client passes idmap_stat) */
int idmap_parse(const char *what, const char *text, struct pd_idmap *map);
bool idmap_to_host(const struct pd_idmap *map, uint32_t id, uint32_t *host);
uint32_t idmap_to_client(const struct pd_idmap *map, uint32_t host);
void idmap_stat(const struct pd_fs *fs, struct stat *st);
struct statx *idmap_statx(const struct pd_fs *fs, struct statx *stx);
bool idmap_chown(const struct pd_fs *fs, uid_t *uid, gid_t *gid);
int idmap_groups(const struct pd_fs *fs, gid_t *groups, int count);

/* pd_readonly.c: -o readonly */
void readonly_ops(struct fuse_lowlevel_ops *ops);

/* pd_handle.c: the handle table */
int handle_new(struct pd_fs *fs, fuse_ino_t nodeid, int fd, struct pd_dir *dir, uint64_t *fh);
struct pd_handle *handle_get(struct pd_fs *fs, uint64_t fh, fuse_ino_t nodeid,
			     enum pd_handle_kind kind);
void handle_put(struct pd_fs *fs, struct pd_handle *h);
int handle_release(struct pd_fs *fs, uint64_t fh, fuse_ino_t nodeid, enum pd_handle_kind kind);
int handle_check(struct pd_fs *fs, const struct fuse_file_info *fi, fuse_ino_t ino);
void handle_free(void *p);

/* pd_extent.c: the ordering contract, and following the host's sizes */
void extent_lock_init(pthread_rwlock_t *lock);
void extent_change_begin(struct pd_inode *in);
int extent_clip(struct pd_fs *fs, struct pd_inode *in, uint64_t new_size);
void extent_change_end(struct pd_fs *fs, struct pd_inode *in, int fd);
int truncate_ordered(struct pd_fs *fs, struct pd_inode *in, int fd, off_t size);
int extent_flags_allow_shrink(int fd);
void extent_report_size(struct pd_fs *fs, struct pd_inode *in, uint64_t size);
void extent_report_size_locked(struct pd_fs *fs, struct pd_inode *in, uint64_t size);

/* pd_watch.c: host changes to mapped files */
struct pd_watch;
void watch_inode(struct pd_fs *fs, struct pd_inode *in);
void watch_forget(struct pd_fs *fs, struct pd_inode *in);
void watch_stop(struct pd_fs *fs);

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
