/*
 * fusedax: types and calls shared by the low-level and high-level APIs:
 * file handles, connection capabilities, data buffers, loop configuration
 * and process helpers. Source-compatible with libfuse 3.17's fuse_common.h.
 */
#ifndef FUSE_COMMON_H_
#define FUSE_COMMON_H_

/* A libfuse file system built by libfuse's own meson build passes this
 * define so its examples see the build's feature tests (HAVE_*). */
#ifdef HAVE_LIBFUSE_PRIVATE_CONFIG_H
#include "fuse_config.h"
#endif

#include "libfuse_config.h"
#include "fuse_log.h"
#include "fuse_opt.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Encode an API level the way libfuse does: 3.17 -> 317. FUSE_USE_VERSION
 * is spelled either as this (FUSE_MAKE_VERSION(3, 12)) or as the short
 * numbers of the early releases (30, 31, 34, 35): every comparison in
 * these headers is written so both spellings mean what libfuse means.
 */
#define FUSE_MAKE_VERSION(maj, min) ((maj) * 100 + (min))
#define FUSE_VERSION FUSE_MAKE_VERSION(FUSE_MAJOR_VERSION, FUSE_MINOR_VERSION)

/** A file system that does not say which API it wants gets the newest. */
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION FUSE_VERSION
#endif
#if FUSE_USE_VERSION < 30
#error "fusedax supports FUSE_USE_VERSION 30 and later"
#endif

/** libfuse's helper for compile-time checks in its headers. */
#ifdef __cplusplus
#define fuse_static_assert(condition, message) static_assert(condition, message)
#else
#define fuse_static_assert(condition, message) _Static_assert(condition, message)
#endif

/** Marks fusedax's own extensions of the libfuse API. */
#define FUSEDAX 1

/**
 * State of one open file or directory, passed to the open-time and I/O
 * operations. The file system may set the output members in open, create
 * and opendir; the library carries fh back to it on later calls.
 * 64 bytes at every API level (libfuse 3.17's layout).
 */
struct fuse_file_info {
	/** Open flags (O_*) as the client passed them. In: open, create. */
	int32_t flags;

	/** In: a write that comes from the client's page cache write-back. */
	uint32_t writepage : 1;
	/** Out: bypass the client's page cache for this open file. */
	uint32_t direct_io : 1;
	/** Out: keep data the client already caches for this inode. */
	uint32_t keep_cache : 1;
	/** In (release, lock): the client asked for a flush of this handle. */
	uint32_t flush : 1;
	/** Out: the file does not support seeking. */
	uint32_t nonseekable : 1;
	/** In (release): flock locks held through this handle must be dropped. */
	uint32_t flock_release : 1;
	/** Out (opendir): let the client cache readdir results. */
	uint32_t cache_readdir : 1;
	/** Out: the client need not send FLUSH on close. */
	uint32_t noflush : 1;
	/** Out: allow concurrent direct writes to the same file. */
	uint32_t parallel_direct_writes : 1;
	uint32_t padding : 23;
	uint32_t padding2 : 32;
	uint32_t padding3 : 32;

	/** File handle chosen by the file system in open/create/opendir. */
	uint64_t fh;

	/** Lock owner id (locks, flush, release with flock_release). */
	uint64_t lock_owner;

	/** In (poll): the requested events. */
	uint32_t poll_events;

	/**
	 * Out (open, create): the id fuse_passthrough_open() returned. The
	 * client then reads, writes and maps the file through that backing
	 * file without asking the file system. 0: no passthrough.
	 */
	int32_t backing_id;

	/** Reserved for flags of a later API level; 0 today. */
	uint64_t compat_flags;

	/** Reserved for growth. */
	uint64_t reserved[2];
};

/*
 * Multi-threaded loop configuration.
 *
 * Since API 3.12 the configuration is opaque and set through the
 * fuse_loop_cfg_* calls. A file system written for an older API declares
 * struct fuse_loop_config with its two public members and gets exactly that
 * struct; from 3.12 on that struct is called fuse_loop_config_v1 and
 * fuse_loop_config is opaque.
 */
#if FUSE_USE_VERSION < FUSE_MAKE_VERSION(3, 12)
struct fuse_loop_config_v1;
struct fuse_loop_config {
#else
struct fuse_loop_config_v1 {
#endif
	int clone_fd;
	unsigned int max_idle_threads;
};

/*
 * Capabilities in fuse_conn_info.capable (what the client offers) and .want
 * (what the file system asks for). Values match libfuse 3.
 */
#define FUSE_CAP_ASYNC_READ (1 << 0)
#define FUSE_CAP_POSIX_LOCKS (1 << 1)
#define FUSE_CAP_ATOMIC_O_TRUNC (1 << 3)
#define FUSE_CAP_EXPORT_SUPPORT (1 << 4)
#define FUSE_CAP_DONT_MASK (1 << 6)
#define FUSE_CAP_SPLICE_WRITE (1 << 7)
#define FUSE_CAP_SPLICE_MOVE (1 << 8)
#define FUSE_CAP_SPLICE_READ (1 << 9)
#define FUSE_CAP_FLOCK_LOCKS (1 << 10)
#define FUSE_CAP_IOCTL_DIR (1 << 11)
#define FUSE_CAP_AUTO_INVAL_DATA (1 << 12)
#define FUSE_CAP_READDIRPLUS (1 << 13)
#define FUSE_CAP_READDIRPLUS_AUTO (1 << 14)
#define FUSE_CAP_ASYNC_DIO (1 << 15)
#define FUSE_CAP_WRITEBACK_CACHE (1 << 16)
#define FUSE_CAP_NO_OPEN_SUPPORT (1 << 17)
#define FUSE_CAP_PARALLEL_DIROPS (1 << 18)
#define FUSE_CAP_POSIX_ACL (1 << 19)
#define FUSE_CAP_HANDLE_KILLPRIV (1 << 20)
#define FUSE_CAP_HANDLE_KILLPRIV_V2 (1 << 21)
#define FUSE_CAP_CACHE_SYMLINKS (1 << 23)
#define FUSE_CAP_NO_OPENDIR_SUPPORT (1 << 24)
#define FUSE_CAP_EXPLICIT_INVAL_DATA (1 << 25)
#define FUSE_CAP_EXPIRE_ONLY (1 << 26)
#define FUSE_CAP_SETXATTR_EXT (1 << 27)
#define FUSE_CAP_DIRECT_IO_ALLOW_MMAP (1 << 28)
#define FUSE_CAP_PASSTHROUGH (1 << 29)
#define FUSE_CAP_NO_EXPORT_SUPPORT (1 << 30)
/* Extended capabilities, only in capable_ext / want_ext. */
/** The client supports FUSE_ATTR_DAX: the file system picks DAX per inode. */
#define FUSE_CAP_DAX_INODE (1ULL << 32)
/** The client maps file ranges into a DAX window (SETUPMAPPING). */
#define FUSE_CAP_DAX_MAPPING (1ULL << 33)

/* ioctl flags (fuse_lowlevel_ops.ioctl). */
/* Spelled exactly as in fuse_kernel.h so including both is clean. */
#define FUSE_IOCTL_COMPAT	(1u << 0)
#define FUSE_IOCTL_UNRESTRICTED	(1u << 1)
#define FUSE_IOCTL_RETRY	(1u << 2)
#define FUSE_IOCTL_DIR		(1u << 4)
#define FUSE_IOCTL_MAX_IOV	256

/**
 * Connection parameters, filled in by the library from the client's INIT and
 * adjustable by the file system's init() operation. 128 bytes, laid out as
 * libfuse 3.17's.
 */
struct fuse_conn_info {
	/** Protocol version the client speaks. Read-only. */
	uint32_t proto_major;
	uint32_t proto_minor;
	/** Largest WRITE payload the file system accepts. */
	uint32_t max_write;
	/**
	 * Largest READ the client may send. Set it with the max_read= mount
	 * option; init() may only repeat that value (0: no limit set).
	 */
	uint32_t max_read;
	/** Read-ahead the client may do. */
	uint32_t max_readahead;
	/** FUSE_CAP_* bits the client offers (low 32 bits). Read-only. */
	uint32_t capable;
	/**
	 * FUSE_CAP_* bits the file system wants (low 32 bits). Kept for
	 * file systems written before want_ext; a change made here in init()
	 * is carried into want_ext afterwards. Setting bits here and other
	 * bits directly in want_ext in the same init() is a conflict the
	 * library refuses (see fuse_convert_to_conn_want_ext()).
	 */
	uint32_t want;
	/** Background requests the client may keep in flight. */
	uint32_t max_background;
	/** Background requests at which the client considers us congested. */
	uint32_t congestion_threshold;
	/**
	 * Timestamp granularity in nanoseconds, a power of 10 (1: full
	 * nanoseconds, the default; 1000000000: whole seconds).
	 */
	uint32_t time_gran;
	/**
	 * With FUSE_CAP_PASSTHROUGH: how many stacked file systems may lie
	 * under a backing file. FUSE_BACKING_STACKED_UNDER (0, the default):
	 * backing files live on a plain file system, and this mount may itself
	 * be stacked on. FUSE_BACKING_STACKED_OVER (1): backing files may be on
	 * overlayfs or another passthrough mount, and nothing may stack on this
	 * one.
	 */
#define FUSE_BACKING_STACKED_UNDER (0)
#define FUSE_BACKING_STACKED_OVER (1)
	uint32_t max_backing_stack_depth;
	/**
	 * Set in init() to have the client stop sending INTERRUPT: the first
	 * one is answered ENOSYS, which the client remembers.
	 */
	uint32_t no_interrupt : 1;
	uint32_t padding : 31;
	/** Every FUSE_CAP_* bit the client offers, above bit 31 too. Read-only. */
	uint64_t capable_ext;
	/** Every FUSE_CAP_* bit the file system wants (prefer this to want). */
	uint64_t want_ext;
	/** Reserved for growth. */
	uint32_t reserved[16];
};

struct fuse_session;
struct fuse_pollhandle;
struct fuse_conn_info_opts;

/* ------------------------------------------------------------------------
 * Data buffers: a vector of memory or file-descriptor pieces, so replies
 * and writes can move data without an intermediate copy.
 */

enum fuse_buf_flags {
	/** The buffer is a file descriptor, not memory. */
	FUSE_BUF_IS_FD = (1 << 1),
	/** Use pos as the file offset (pread/pwrite). */
	FUSE_BUF_FD_SEEK = (1 << 2),
	/** Retry short reads and writes until the size is done or EOF. */
	FUSE_BUF_FD_RETRY = (1 << 3),
};

enum fuse_buf_copy_flags {
	/** Never use splice. */
	FUSE_BUF_NO_SPLICE = (1 << 1),
	/** Always use splice; fail if it cannot. */
	FUSE_BUF_FORCE_SPLICE = (1 << 2),
	/** Let splice move pages. */
	FUSE_BUF_SPLICE_MOVE = (1 << 3),
	/** Do not block in splice. */
	FUSE_BUF_SPLICE_NONBLOCK = (1 << 4),
};

/** One piece of data: memory (mem) or a file descriptor (fd, pos). */
struct fuse_buf {
	size_t size;
	enum fuse_buf_flags flags;
	void *mem;
	int fd;
	off_t pos;
	/** Allocated size of mem, when the library owns it. */
	size_t mem_size;
};

/** An array of buffers with a cursor (idx, off) into it. */
struct fuse_bufvec {
	size_t count;
	size_t idx;
	size_t off;
	struct fuse_buf buf[1];
};

/** Initialise a one-element fuse_bufvec of the given size. */
#define FUSE_BUFVEC_INIT(size__)                                               \
	((struct fuse_bufvec){ .count = 1,                                     \
			       .idx = 0,                                       \
			       .off = 0,                                       \
			       .buf = { { .size = (size__),                    \
					  .flags = (enum fuse_buf_flags)0,     \
					  .mem = NULL,                         \
					  .fd = -1,                            \
					  .pos = 0,                            \
					  .mem_size = 0 } } })

/** Total bytes described by the vector. */
size_t fuse_buf_size(const struct fuse_bufvec *bufv);

/** Copy from src to dst; returns bytes copied or a negative errno. */
ssize_t fuse_buf_copy(struct fuse_bufvec *dst, struct fuse_bufvec *src,
		      enum fuse_buf_copy_flags flags);

/**
 * The API level of the headers a file system was built with, handed to the
 * library by the inline wrappers of fuse_session_new(), fuse_new() and
 * fuse_main().
 */
struct libfuse_version {
	uint32_t major;
	uint32_t minor;
	uint32_t hotfix;
	uint32_t padding;
};

/* ------------------------------------------------------------------------
 * Multi-threaded loop configuration (API 3.12 and later).
 */
#if FUSE_USE_VERSION >= FUSE_MAKE_VERSION(3, 12)
/** A configuration with the defaults: 10 idle workers, at most 10 workers. */
struct fuse_loop_config *fuse_loop_cfg_create(void);
void fuse_loop_cfg_destroy(struct fuse_loop_config *config);
/** Idle workers kept waiting for requests before surplus ones exit. */
void fuse_loop_cfg_set_idle_threads(struct fuse_loop_config *config, unsigned int value);
/** Workers the loop starts at most. */
void fuse_loop_cfg_set_max_threads(struct fuse_loop_config *config, unsigned int value);
/** Nonzero: each worker reads its own cloned /dev/fuse descriptor. */
void fuse_loop_cfg_set_clone_fd(struct fuse_loop_config *config, unsigned int value);
/** Copy the settings of a pre-3.12 configuration into config. */
void fuse_loop_cfg_convert(struct fuse_loop_config *config, struct fuse_loop_config_v1 *v1_conf);
#endif

/* ------------------------------------------------------------------------
 * Process helpers.
 */

/** The API level as a number (317 for 3.17). */
int fuse_version(void);

/** This library's version as text. */
const char *fuse_pkgversion(void);

/**
 * Detach from the terminal unless foreground is set: fork, setsid, chdir /,
 * stdio to /dev/null. Returns 0 or -1.
 */
int fuse_daemonize(int foreground);

/**
 * Make SIGHUP, SIGINT and SIGTERM end the session's loop and ignore SIGPIPE.
 * Returns 0 or -1.
 */
int fuse_set_signal_handlers(struct fuse_session *se);

/**
 * On SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT, log the signal and a
 * backtrace through fuse_log(), then die of the signal as before.
 * Returns 0 or -1.
 */
int fuse_set_fail_signal_handlers(struct fuse_session *se);

/** Undo fuse_set_signal_handlers() and fuse_set_fail_signal_handlers(). */
void fuse_remove_signal_handlers(struct fuse_session *se);

/** Free a poll handle received in a poll operation. */
void fuse_pollhandle_destroy(struct fuse_pollhandle *ph);

/** Parse -o options that adjust fuse_conn_info (max_write=, etc.). */
struct fuse_conn_info_opts *fuse_parse_conn_info_opts(struct fuse_args *args);
/** Apply options parsed by fuse_parse_conn_info_opts() in init(). */
void fuse_apply_conn_info_opts(struct fuse_conn_info_opts *opts, struct fuse_conn_info *conn);

/**
 * Ask for a capability (in init()): sets it in want_ext and want.
 * Returns false, changing nothing, if the client does not offer it.
 */
bool fuse_set_feature_flag(struct fuse_conn_info *conn, uint64_t flag);
/** Stop asking for a capability: clears it in want_ext and want. */
void fuse_unset_feature_flag(struct fuse_conn_info *conn, uint64_t flag);
/** True if the client offers the capability. */
bool fuse_get_feature_flag(struct fuse_conn_info *conn, uint64_t flag);

/**
 * Carry what init() changed in the 32-bit want into want_ext; then want is
 * the low half of want_ext again. Returns 0, or -EINVAL (nothing changed)
 * when init() changed both want and want_ext directly in different ways.
 * The library calls it after init(); libfuse exports it for its tests.
 */
int fuse_convert_to_conn_want_ext(struct fuse_conn_info *conn);

/* The layouts libfuse 3.17 fixed; a 32-bit build needs
 * -D_FILE_OFFSET_BITS=64 for the off_t in its structs. */
#if defined(__cplusplus) && __cplusplus >= 201103L
static_assert(sizeof(off_t) == 8, "fusedax needs a 64-bit off_t");
static_assert(sizeof(struct fuse_file_info) == 64, "fuse_file_info is 64 bytes");
static_assert(sizeof(struct fuse_conn_info) == 128, "fuse_conn_info is 128 bytes");
#elif !defined(__cplusplus)
_Static_assert(sizeof(off_t) == 8, "fusedax needs a 64-bit off_t");
_Static_assert(sizeof(struct fuse_file_info) == 64, "fuse_file_info is 64 bytes");
_Static_assert(sizeof(struct fuse_conn_info) == 128, "fuse_conn_info is 128 bytes");
#endif

#ifdef __cplusplus
}
#endif

#endif /* FUSE_COMMON_H_ */
