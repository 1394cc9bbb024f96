/*
 * The FUSE wire ABI: every number and structure that crosses /dev/fuse,
 * virtio-fs or FUSE-over-io_uring, as spoken by Linux up to protocol 7.45.
 * fusedax's own transcription, checked against the kernel's uapi header.
 *
 * Layout rules the kernel keeps and this file relies on:
 *  - all integers are native-endian fixed-width;
 *  - every structure is padded to a multiple of 8 bytes, so a 32-bit server
 *    on a 64-bit kernel sees the same layout;
 *  - structures only grow at their end; an older peer sends or accepts a
 *    shorter prefix (the FUSE_COMPAT_*_SIZE constants below).
 *
 * Do not mix this header with <linux/fuse.h> in one translation unit: it
 * defines the same names. Including it first makes a later <linux/fuse.h>
 * a no-op.
 */
#ifndef FUSEDAX_FUSE_KERNEL_H
#define FUSEDAX_FUSE_KERNEL_H

#if defined(_LINUX_FUSE_H)
#error "<linux/fuse.h> was included before fuse_kernel.h; include only one of them"
#endif
/* Keep a later <linux/fuse.h> from redefining everything. */
#define _LINUX_FUSE_H

#include <stddef.h>
#include <stdint.h>
#ifdef __linux__
#include <linux/ioctl.h>
#endif

#ifdef __cplusplus
#define FUSE_KERNEL_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define FUSE_KERNEL_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* ------------------------------------------------------------------------
 * Versions.
 *
 * The kernel sends its major.minor in FUSE_INIT; the server answers with its
 * own. With equal majors both sides use the smaller minor. A server that
 * only speaks an older major answers with that major and waits for a new
 * INIT; a kernel with a larger major than the server expects may do the same.
 *
 * Minor versions since 7.31 and what they brought (for the older history,
 * see the kernel's header):
 *   7.31  WRITE_KILL_PRIV, SETUPMAPPING/REMOVEMAPPING, MAP_ALIGNMENT
 *   7.32  fuse_attr.flags, FUSE_ATTR_SUBMOUNT, FUSE_SUBMOUNTS
 *   7.33  HANDLE_KILLPRIV_V2, SETXATTR_EXT, INIT_EXT and flags2,
 *         FUSE_ATTR_DAX, HAS_INODE_DAX, open_flags/OPEN_KILL_SUIDGID
 *   7.34  SYNCFS
 *   7.35  FOPEN_NOFLUSH
 *   7.36  SECURITY_CTX and request extensions (in_header.total_extlen)
 *   7.37  TMPFILE
 *   7.38  EXPIRE_ONLY, FOPEN_PARALLEL_DIRECT_WRITES, CREATE_SUPP_GROUP
 *   7.39  DIRECT_IO_ALLOW_MMAP, STATX
 *   7.40  PASSTHROUGH (backing files, max_stack_depth, backing_id),
 *         NO_EXPORT_SUPPORT, NOTIFY_RESEND / HAS_RESEND
 *   7.41  ALLOW_IDMAP
 *   7.42  OVER_IO_URING and its ring structures
 *   7.43  REQUEST_TIMEOUT, init_out.request_timeout
 *   7.44  NOTIFY_INC_EPOCH
 *   7.45  COPY_FILE_RANGE_64, NOTIFY_PRUNE (kernel 6.18/6.19)
 * --------------------------------------------------------------------- */
#define FUSE_KERNEL_VERSION		7
#define FUSE_KERNEL_MINOR_VERSION	45

/* nodeid of the mount's root directory */
#define FUSE_ROOT_ID			1

/* Smallest read(2) buffer the server may offer /dev/fuse. */
#define FUSE_MIN_READ_BUFFER		8192

/* Longest name component and link target the kernel will send. */
#define FUSE_NAME_MAX			1024
#define FUSE_SYMLINK_MAX		4096
/* Longest xattr name (XATTR_NAME_MAX) */
#define FUSE_XATTR_NAME_MAX		255

/* uid/gid in the request header when the caller's id does not map. */
#define FUSE_INVALID_UIDGID		((uint32_t)-1)

/* ------------------------------------------------------------------------
 * Opcodes (fuse_in_header.opcode).
 * --------------------------------------------------------------------- */
enum fuse_opcode {
	FUSE_LOOKUP		= 1,
	FUSE_FORGET		= 2,	/* never answered */
	FUSE_GETATTR		= 3,
	FUSE_SETATTR		= 4,
	FUSE_READLINK		= 5,
	FUSE_SYMLINK		= 6,
	/* 7 was never assigned */
	FUSE_MKNOD		= 8,
	FUSE_MKDIR		= 9,
	FUSE_UNLINK		= 10,
	FUSE_RMDIR		= 11,
	FUSE_RENAME		= 12,
	FUSE_LINK		= 13,
	FUSE_OPEN		= 14,
	FUSE_READ		= 15,
	FUSE_WRITE		= 16,
	FUSE_STATFS		= 17,
	FUSE_RELEASE		= 18,
	/* 19 was never assigned */
	FUSE_FSYNC		= 20,
	FUSE_SETXATTR		= 21,
	FUSE_GETXATTR		= 22,
	FUSE_LISTXATTR		= 23,
	FUSE_REMOVEXATTR	= 24,
	FUSE_FLUSH		= 25,
	FUSE_INIT		= 26,
	FUSE_OPENDIR		= 27,
	FUSE_READDIR		= 28,
	FUSE_RELEASEDIR		= 29,
	FUSE_FSYNCDIR		= 30,
	FUSE_GETLK		= 31,
	FUSE_SETLK		= 32,
	FUSE_SETLKW		= 33,
	FUSE_ACCESS		= 34,
	FUSE_CREATE		= 35,
	FUSE_INTERRUPT		= 36,	/* never answered */
	FUSE_BMAP		= 37,
	FUSE_DESTROY		= 38,
	FUSE_IOCTL		= 39,
	FUSE_POLL		= 40,
	FUSE_NOTIFY_REPLY	= 41,	/* answer to NOTIFY_RETRIEVE; never answered */
	FUSE_BATCH_FORGET	= 42,	/* never answered */
	FUSE_FALLOCATE		= 43,
	FUSE_READDIRPLUS	= 44,
	FUSE_RENAME2		= 45,
	FUSE_LSEEK		= 46,
	FUSE_COPY_FILE_RANGE	= 47,
	FUSE_SETUPMAPPING	= 48,	/* DAX: map a file range into the window */
	FUSE_REMOVEMAPPING	= 49,	/* DAX: unmap window ranges */
	FUSE_SYNCFS		= 50,
	FUSE_TMPFILE		= 51,
	FUSE_STATX		= 52,
	FUSE_COPY_FILE_RANGE_64	= 53,

	/* CUSE (character devices in user space) */
	CUSE_INIT		= 4096,

	/* Byte-swapped INITs: a peer of the other endianness sends these. */
	CUSE_INIT_BSWAP_RESERVED = 1048576,	/* CUSE_INIT << 8 */
	FUSE_INIT_BSWAP_RESERVED = 436207616,	/* FUSE_INIT << 24 */
};
/* Spelling used by some servers. */
#define FUSE_CUSE_INIT CUSE_INIT

/* Unsolicited messages from the server: out_header.unique == 0 and
 * out_header.error holds the code. */
enum fuse_notify_code {
	FUSE_NOTIFY_POLL	= 1,
	FUSE_NOTIFY_INVAL_INODE	= 2,
	FUSE_NOTIFY_INVAL_ENTRY	= 3,
	FUSE_NOTIFY_STORE	= 4,
	FUSE_NOTIFY_RETRIEVE	= 5,
	FUSE_NOTIFY_DELETE	= 6,
	FUSE_NOTIFY_RESEND	= 7,	/* 7.40 */
	FUSE_NOTIFY_INC_EPOCH	= 8,	/* 7.44 */
	FUSE_NOTIFY_PRUNE	= 9,	/* 7.45 */
};

/* ------------------------------------------------------------------------
 * INIT flags. fuse_init_in/out.flags hold bits 0..31; with FUSE_INIT_EXT
 * set, fuse_init_in/out.flags2 hold bits 32..63 (flags2 = value >> 32).
 * The kernel offers, the server answers with the subset it wants.
 * --------------------------------------------------------------------- */
#define FUSE_ASYNC_READ		(1u << 0)	/* reads may be issued in parallel */
#define FUSE_POSIX_LOCKS	(1u << 1)	/* server implements POSIX locks */
#define FUSE_FILE_OPS		(1u << 2)	/* unused */
#define FUSE_ATOMIC_O_TRUNC	(1u << 3)	/* O_TRUNC handled inside OPEN */
#define FUSE_EXPORT_SUPPORT	(1u << 4)	/* lookups of "." and ".." work */
#define FUSE_BIG_WRITES		(1u << 5)	/* writes above 4 KiB */
#define FUSE_DONT_MASK		(1u << 6)	/* kernel does not apply umask */
#define FUSE_SPLICE_WRITE	(1u << 7)
#define FUSE_SPLICE_MOVE	(1u << 8)
#define FUSE_SPLICE_READ	(1u << 9)
#define FUSE_FLOCK_LOCKS	(1u << 10)	/* server implements flock(2) */
#define FUSE_HAS_IOCTL_DIR	(1u << 11)	/* ioctl on directories */
#define FUSE_AUTO_INVAL_DATA	(1u << 12)	/* drop cache when mtime changes */
#define FUSE_DO_READDIRPLUS	(1u << 13)
#define FUSE_READDIRPLUS_AUTO	(1u << 14)
#define FUSE_ASYNC_DIO		(1u << 15)
#define FUSE_WRITEBACK_CACHE	(1u << 16)
#define FUSE_NO_OPEN_SUPPORT	(1u << 17)	/* ENOSYS from OPEN means "no open needed" */
#define FUSE_PARALLEL_DIROPS	(1u << 18)
#define FUSE_HANDLE_KILLPRIV	(1u << 19)
#define FUSE_POSIX_ACL		(1u << 20)
#define FUSE_ABORT_ERROR	(1u << 21)	/* ECONNABORTED after abort */
#define FUSE_MAX_PAGES		(1u << 22)	/* init_out.max_pages is valid */
#define FUSE_CACHE_SYMLINKS	(1u << 23)
#define FUSE_NO_OPENDIR_SUPPORT	(1u << 24)
#define FUSE_EXPLICIT_INVAL_DATA (1u << 25)
#define FUSE_MAP_ALIGNMENT	(1u << 26)	/* init_out.map_alignment = log2(DAX alignment) */
#define FUSE_SUBMOUNTS		(1u << 27)
#define FUSE_HANDLE_KILLPRIV_V2	(1u << 28)
#define FUSE_SETXATTR_EXT	(1u << 29)	/* SETXATTR carries the 16-byte struct */
#define FUSE_INIT_EXT		(1u << 30)	/* flags2 is valid */
#define FUSE_INIT_RESERVED	(1u << 31)
/* Bits 32..63, carried in flags2. */
#define FUSE_SECURITY_CTX	(1ULL << 32)	/* create ops carry a security context */
#define FUSE_HAS_INODE_DAX	(1ULL << 33)	/* FUSE_ATTR_DAX honoured per inode */
#define FUSE_CREATE_SUPP_GROUP	(1ULL << 34)	/* create ops carry a supplementary group */
#define FUSE_HAS_EXPIRE_ONLY	(1ULL << 35)	/* FUSE_EXPIRE_ONLY in inval_entry */
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)	/* shared mmap on FOPEN_DIRECT_IO files */
#define FUSE_PASSTHROUGH	(1ULL << 37)	/* backing files for read/write */
#define FUSE_NO_EXPORT_SUPPORT	(1ULL << 38)	/* refuse NFS export */
#define FUSE_HAS_RESEND		(1ULL << 39)	/* NOTIFY_RESEND and unique bit 63 */
#define FUSE_ALLOW_IDMAP	(1ULL << 40)	/* idmapped mounts */
#define FUSE_OVER_IO_URING	(1ULL << 41)	/* FUSE-over-io_uring transport */
#define FUSE_REQUEST_TIMEOUT	(1ULL << 42)	/* init_out.request_timeout is valid */
/* Older name of FUSE_DIRECT_IO_ALLOW_MMAP. */
#define FUSE_DIRECT_IO_RELAX	FUSE_DIRECT_IO_ALLOW_MMAP

/* CUSE INIT flags */
#define CUSE_UNRESTRICTED_IOCTL	(1u << 0)

/* ------------------------------------------------------------------------
 * Per-request flag words.
 * --------------------------------------------------------------------- */
/* fuse_setattr_in.valid: which fields to apply */
#define FATTR_MODE		(1u << 0)
#define FATTR_UID		(1u << 1)
#define FATTR_GID		(1u << 2)
#define FATTR_SIZE		(1u << 3)
#define FATTR_ATIME		(1u << 4)
#define FATTR_MTIME		(1u << 5)
#define FATTR_FH		(1u << 6)
#define FATTR_ATIME_NOW		(1u << 7)
#define FATTR_MTIME_NOW		(1u << 8)
#define FATTR_LOCKOWNER		(1u << 9)
#define FATTR_CTIME		(1u << 10)
#define FATTR_KILL_SUIDGID	(1u << 11)

/* fuse_open_out.open_flags: how the kernel should treat the open file */
#define FOPEN_DIRECT_IO		(1u << 0)	/* bypass the page cache */
#define FOPEN_KEEP_CACHE	(1u << 1)	/* keep cached data on open */
#define FOPEN_NONSEEKABLE	(1u << 2)
#define FOPEN_CACHE_DIR		(1u << 3)	/* cache directory contents */
#define FOPEN_STREAM		(1u << 4)	/* no file position at all */
#define FOPEN_NOFLUSH		(1u << 5)	/* no FLUSH on close */
#define FOPEN_PARALLEL_DIRECT_WRITES (1u << 6)
#define FOPEN_PASSTHROUGH	(1u << 7)	/* I/O goes to backing_id's file */

/* fuse_open_in/fuse_create_in.open_flags */
#define FUSE_OPEN_KILL_SUIDGID	(1u << 0)

/* fuse_release_in.release_flags */
#define FUSE_RELEASE_FLUSH	(1u << 0)
#define FUSE_RELEASE_FLOCK_UNLOCK (1u << 1)

/* fuse_getattr_in.getattr_flags: fh is valid */
#define FUSE_GETATTR_FH		(1u << 0)

/* fuse_lk_in.lk_flags: a flock(2) lock, not a POSIX one */
#define FUSE_LK_FLOCK		(1u << 0)

/* fuse_write_in.write_flags */
#define FUSE_WRITE_CACHE	(1u << 0)	/* writeback from the cache; fh guessed */
#define FUSE_WRITE_LOCKOWNER	(1u << 1)	/* lock_owner is valid */
#define FUSE_WRITE_KILL_SUIDGID	(1u << 2)
#define FUSE_WRITE_KILL_PRIV	FUSE_WRITE_KILL_SUIDGID

/* fuse_read_in.read_flags */
#define FUSE_READ_LOCKOWNER	(1u << 1)

/* fuse_ioctl_in.flags and fuse_ioctl_out.flags */
#define FUSE_IOCTL_COMPAT	(1u << 0)	/* 32-bit caller on a 64-bit kernel */
#define FUSE_IOCTL_UNRESTRICTED	(1u << 1)	/* server may ask for a retry */
#define FUSE_IOCTL_RETRY	(1u << 2)	/* retry with the iovecs in the reply */
#define FUSE_IOCTL_32BIT	(1u << 3)
#define FUSE_IOCTL_DIR		(1u << 4)
#define FUSE_IOCTL_COMPAT_X32	(1u << 5)
#define FUSE_IOCTL_MAX_IOV	256		/* in_iovs + out_iovs */

/* fuse_poll_in.flags */
#define FUSE_POLL_SCHEDULE_NOTIFY (1u << 0)

/* fuse_fsync_in.fsync_flags */
#define FUSE_FSYNC_FDATASYNC	(1u << 0)

/* fuse_attr.flags */
#define FUSE_ATTR_SUBMOUNT	(1u << 0)	/* automount point */
#define FUSE_ATTR_DAX		(1u << 1)	/* use DAX for this inode (dax=inode) */

/* fuse_setxattr_in.setxattr_flags */
#define FUSE_SETXATTR_ACL_KILL_SGID (1u << 0)

/* fuse_notify_inval_entry_out.flags: only expire, do not drop */
#define FUSE_EXPIRE_ONLY	(1u << 0)

/* fuse_setupmapping_in.flags */
#define FUSE_SETUPMAPPING_FLAG_WRITE (1ULL << 0)
#define FUSE_SETUPMAPPING_FLAG_READ  (1ULL << 1)

/* ------------------------------------------------------------------------
 * Message headers. Every request is fuse_in_header + arguments; every
 * reply or notification is fuse_out_header + payload.
 * --------------------------------------------------------------------- */
struct fuse_in_header {
	uint32_t len;		/* whole request, header included */
	uint32_t opcode;
	uint64_t unique;	/* echoed in the reply; bit 63 marks a resend */
	uint64_t nodeid;
	uint32_t uid;
	uint32_t gid;
	uint32_t pid;
	uint16_t total_extlen;	/* trailing extensions, in 8-byte units */
	uint16_t padding;
};

struct fuse_out_header {
	uint32_t len;		/* whole reply, header included */
	int32_t error;		/* 0 or -errno; notify code when unique == 0 */
	uint64_t unique;
};

/* ------------------------------------------------------------------------
 * Attributes.
 * --------------------------------------------------------------------- */
struct fuse_attr {
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t atime;
	uint64_t mtime;
	uint64_t ctime;
	uint32_t atimensec;
	uint32_t mtimensec;
	uint32_t ctimensec;
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint32_t rdev;
	uint32_t blksize;
	uint32_t flags;		/* FUSE_ATTR_* */
};

/* statx(2)-shaped attributes (7.39) */
struct fuse_sx_time {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t __reserved;
};

struct fuse_statx {
	uint32_t mask;
	uint32_t blksize;
	uint64_t attributes;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint16_t mode;
	uint16_t __spare0[1];
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t attributes_mask;
	struct fuse_sx_time atime;
	struct fuse_sx_time btime;
	struct fuse_sx_time ctime;
	struct fuse_sx_time mtime;
	uint32_t rdev_major;
	uint32_t rdev_minor;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint64_t __spare2[14];
};

struct fuse_kstatfs {
	uint64_t blocks;
	uint64_t bfree;
	uint64_t bavail;
	uint64_t files;
	uint64_t ffree;
	uint32_t bsize;
	uint32_t namelen;
	uint32_t frsize;
	uint32_t padding;
	uint32_t spare[6];
};

struct fuse_file_lock {
	uint64_t start;
	uint64_t end;
	uint32_t type;
	uint32_t pid;		/* thread group id of the owner */
};

/* ------------------------------------------------------------------------
 * Lookup and inode lifetime.
 * --------------------------------------------------------------------- */
#define FUSE_COMPAT_ENTRY_OUT_SIZE	120	/* before 7.9 */

/* Reply to LOOKUP, MKNOD, MKDIR, SYMLINK, LINK (and inside CREATE,
 * READDIRPLUS). */
struct fuse_entry_out {
	uint64_t nodeid;
	uint64_t generation;	/* (nodeid, generation) unique for the fs's life */
	uint64_t entry_valid;	/* name cache timeout, seconds */
	uint64_t attr_valid;	/* attribute cache timeout, seconds */
	uint32_t entry_valid_nsec;
	uint32_t attr_valid_nsec;
	struct fuse_attr attr;
};

struct fuse_forget_in {
	uint64_t nlookup;
};

/* One entry of BATCH_FORGET */
struct fuse_forget_one {
	uint64_t nodeid;
	uint64_t nlookup;
};

/* BATCH_FORGET: followed by `count` struct fuse_forget_one */
struct fuse_batch_forget_in {
	uint32_t count;
	uint32_t dummy;
};

/* ------------------------------------------------------------------------
 * Attributes: GETATTR, SETATTR, STATX.
 * --------------------------------------------------------------------- */
struct fuse_getattr_in {
	uint32_t getattr_flags;	/* FUSE_GETATTR_* */
	uint32_t dummy;
	uint64_t fh;
};

#define FUSE_COMPAT_ATTR_OUT_SIZE	96	/* before 7.9 */

struct fuse_attr_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec;
	uint32_t dummy;
	struct fuse_attr attr;
};

struct fuse_statx_in {
	uint32_t getattr_flags;
	uint32_t reserved;
	uint64_t fh;
	uint32_t sx_flags;	/* AT_STATX_* sync flags */
	uint32_t sx_mask;	/* STATX_* fields wanted */
};

struct fuse_statx_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec;
	uint32_t flags;
	uint64_t spare[2];
	struct fuse_statx stat;
};

struct fuse_setattr_in {
	uint32_t valid;		/* FATTR_* */
	uint32_t padding;
	uint64_t fh;
	uint64_t size;
	uint64_t lock_owner;
	uint64_t atime;
	uint64_t mtime;
	uint64_t ctime;
	uint32_t atimensec;
	uint32_t mtimensec;
	uint32_t ctimensec;
	uint32_t mode;
	uint32_t unused4;
	uint32_t uid;
	uint32_t gid;
	uint32_t unused5;
};

/* ------------------------------------------------------------------------
 * Creating and naming: MKNOD, MKDIR, RENAME, RENAME2, LINK, CREATE, TMPFILE.
 * The names follow the struct, NUL-terminated.
 * --------------------------------------------------------------------- */
#define FUSE_COMPAT_MKNOD_IN_SIZE	8	/* before 7.12 */

struct fuse_mknod_in {
	uint32_t mode;
	uint32_t rdev;
	uint32_t umask;
	uint32_t padding;
};

struct fuse_mkdir_in {
	uint32_t mode;
	uint32_t umask;
};

struct fuse_rename_in {
	uint64_t newdir;
};

struct fuse_rename2_in {
	uint64_t newdir;
	uint32_t flags;		/* RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT */
	uint32_t padding;
};

struct fuse_link_in {
	uint64_t oldnodeid;
};

/* CREATE and TMPFILE */
struct fuse_create_in {
	uint32_t flags;		/* open(2) flags */
	uint32_t mode;
	uint32_t umask;
	uint32_t open_flags;	/* FUSE_OPEN_* */
};

/* ------------------------------------------------------------------------
 * Open files: OPEN, OPENDIR, RELEASE, FLUSH, READ, WRITE, FSYNC, ...
 * --------------------------------------------------------------------- */
struct fuse_open_in {
	uint32_t flags;		/* open(2) flags */
	uint32_t open_flags;	/* FUSE_OPEN_* */
};

struct fuse_open_out {
	uint64_t fh;
	uint32_t open_flags;	/* FOPEN_* */
	int32_t backing_id;	/* with FOPEN_PASSTHROUGH */
};

struct fuse_release_in {
	uint64_t fh;
	uint32_t flags;
	uint32_t release_flags;	/* FUSE_RELEASE_* */
	uint64_t lock_owner;
};

struct fuse_flush_in {
	uint64_t fh;
	uint32_t unused;
	uint32_t padding;
	uint64_t lock_owner;
};

/* READ, READDIR, READDIRPLUS */
struct fuse_read_in {
	uint64_t fh;
	uint64_t offset;
	uint32_t size;
	uint32_t read_flags;	/* FUSE_READ_* */
	uint64_t lock_owner;
	uint32_t flags;		/* open(2) flags of the file */
	uint32_t padding;
};

#define FUSE_COMPAT_WRITE_IN_SIZE	24	/* before 7.9 */

/* WRITE: followed by `size` bytes of data */
struct fuse_write_in {
	uint64_t fh;
	uint64_t offset;
	uint32_t size;
	uint32_t write_flags;	/* FUSE_WRITE_* */
	uint64_t lock_owner;
	uint32_t flags;
	uint32_t padding;
};

struct fuse_write_out {
	uint32_t size;
	uint32_t padding;
};

#define FUSE_COMPAT_STATFS_SIZE		48	/* before 7.4 */

struct fuse_statfs_out {
	struct fuse_kstatfs st;
};

/* FSYNC, FSYNCDIR */
struct fuse_fsync_in {
	uint64_t fh;
	uint32_t fsync_flags;	/* FUSE_FSYNC_* */
	uint32_t padding;
};

struct fuse_fallocate_in {
	uint64_t fh;
	uint64_t offset;
	uint64_t length;
	uint32_t mode;		/* FALLOC_FL_* */
	uint32_t padding;
};

struct fuse_lseek_in {
	uint64_t fh;
	uint64_t offset;
	uint32_t whence;
	uint32_t padding;
};

struct fuse_lseek_out {
	uint64_t offset;
};

/* COPY_FILE_RANGE and COPY_FILE_RANGE_64 (source is in_header.nodeid) */
struct fuse_copy_file_range_in {
	uint64_t fh_in;
	uint64_t off_in;
	uint64_t nodeid_out;
	uint64_t fh_out;
	uint64_t off_out;
	uint64_t len;
	uint64_t flags;
};

/* Reply to COPY_FILE_RANGE_64; plain COPY_FILE_RANGE replies with
 * fuse_write_out and so caps a copy below 4 GiB. */
struct fuse_copy_file_range_out {
	uint64_t bytes_copied;
};

/* SYNCFS */
struct fuse_syncfs_in {
	uint64_t padding;
};

/* ------------------------------------------------------------------------
 * Extended attributes.
 * --------------------------------------------------------------------- */
/* Without FUSE_SETXATTR_EXT only size and flags are sent. */
#define FUSE_COMPAT_SETXATTR_IN_SIZE	8

/* SETXATTR: followed by the name (NUL-terminated) and `size` value bytes */
struct fuse_setxattr_in {
	uint32_t size;
	uint32_t flags;		/* XATTR_CREATE, XATTR_REPLACE */
	uint32_t setxattr_flags; /* FUSE_SETXATTR_* */
	uint32_t padding;
};

/* GETXATTR (followed by the name) and LISTXATTR */
struct fuse_getxattr_in {
	uint32_t size;		/* 0: ask for the needed size */
	uint32_t padding;
};

struct fuse_getxattr_out {
	uint32_t size;
	uint32_t padding;
};

/* ------------------------------------------------------------------------
 * Locks, access, INTERRUPT, BMAP.
 * --------------------------------------------------------------------- */
/* GETLK, SETLK, SETLKW */
struct fuse_lk_in {
	uint64_t fh;
	uint64_t owner;
	struct fuse_file_lock lk;
	uint32_t lk_flags;	/* FUSE_LK_* */
	uint32_t padding;
};

struct fuse_lk_out {
	struct fuse_file_lock lk;
};

struct fuse_access_in {
	uint32_t mask;
	uint32_t padding;
};

struct fuse_interrupt_in {
	uint64_t unique;	/* the request to interrupt */
};

struct fuse_bmap_in {
	uint64_t block;
	uint32_t blocksize;
	uint32_t padding;
};

struct fuse_bmap_out {
	uint64_t block;
};

/* ------------------------------------------------------------------------
 * INIT and CUSE_INIT.
 * --------------------------------------------------------------------- */
/* Kernels before 7.36 send only the first 16 bytes; before 7.6 only 8. */
#define FUSE_COMPAT_INIT_IN_SIZE	16
#define FUSE_COMPAT_5_INIT_IN_SIZE	8

struct fuse_init_in {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;		/* INIT flag bits 0..31 */
	uint32_t flags2;	/* bits 32..63, with FUSE_INIT_EXT */
	uint32_t unused[11];
};

/* Reply sizes accepted from servers speaking old minors. */
#define FUSE_COMPAT_INIT_OUT_SIZE	8	/* minor < 5 */
#define FUSE_COMPAT_22_INIT_OUT_SIZE	24	/* minor < 23 */

struct fuse_init_out {
	uint32_t major;
	uint32_t minor;
	uint32_t max_readahead;
	uint32_t flags;
	uint16_t max_background;
	uint16_t congestion_threshold;
	uint32_t max_write;
	uint32_t time_gran;	/* timestamp granularity in ns */
	uint16_t max_pages;	/* with FUSE_MAX_PAGES */
	uint16_t map_alignment;	/* log2 of DAX alignment, with FUSE_MAP_ALIGNMENT */
	uint32_t flags2;	/* bits 32..63, with FUSE_INIT_EXT */
	uint32_t max_stack_depth; /* with FUSE_PASSTHROUGH */
	uint16_t request_timeout; /* seconds, with FUSE_REQUEST_TIMEOUT */
	uint16_t unused[11];
};

/* Longest device-info string after cuse_init_out */
#define CUSE_INIT_INFO_MAX		4096

struct cuse_init_in {
	uint32_t major;
	uint32_t minor;
	uint32_t unused;
	uint32_t flags;		/* CUSE_* */
};

struct cuse_init_out {
	uint32_t major;
	uint32_t minor;
	uint32_t unused;
	uint32_t flags;
	uint32_t max_read;
	uint32_t max_write;
	uint32_t dev_major;
	uint32_t dev_minor;
	uint32_t spare[10];
};

/* ------------------------------------------------------------------------
 * IOCTL and POLL.
 * --------------------------------------------------------------------- */
/* IOCTL: followed by in_size bytes of input */
struct fuse_ioctl_in {
	uint64_t fh;
	uint32_t flags;		/* FUSE_IOCTL_* */
	uint32_t cmd;
	uint64_t arg;
	uint32_t in_size;
	uint32_t out_size;
};

struct fuse_ioctl_iovec {
	uint64_t base;
	uint64_t len;
};

struct fuse_ioctl_out {
	int32_t result;
	uint32_t flags;
	uint32_t in_iovs;
	uint32_t out_iovs;
};

struct fuse_poll_in {
	uint64_t fh;
	uint64_t kh;		/* handle for NOTIFY_POLL */
	uint32_t flags;		/* FUSE_POLL_* */
	uint32_t events;
};

struct fuse_poll_out {
	uint32_t revents;
	uint32_t padding;
};

/* ------------------------------------------------------------------------
 * Directory entries in READDIR / READDIRPLUS replies. Each record is
 * padded to 8 bytes; the name is not NUL-terminated.
 * --------------------------------------------------------------------- */
struct fuse_dirent {
	uint64_t ino;
	uint64_t off;		/* offset of the next entry */
	uint32_t namelen;
	uint32_t type;		/* DT_* (mode >> 12) */
	char name[];
};

struct fuse_direntplus {
	struct fuse_entry_out entry_out;
	struct fuse_dirent dirent;
};

#define FUSE_REC_ALIGN(x) \
	(((x) + sizeof(uint64_t) - 1) & ~(sizeof(uint64_t) - 1))
#define FUSE_DIRENT_ALIGN(x)	FUSE_REC_ALIGN(x)
#define FUSE_NAME_OFFSET	offsetof(struct fuse_dirent, name)
#define FUSE_NAME_OFFSET_DIRENTPLUS \
	offsetof(struct fuse_direntplus, dirent.name)
#define FUSE_DIRENT_SIZE(d) \
	FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + (d)->namelen)
#define FUSE_DIRENTPLUS_SIZE(d) \
	FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + (d)->dirent.namelen)

/* ------------------------------------------------------------------------
 * Notifications (server -> kernel) and NOTIFY_REPLY.
 * --------------------------------------------------------------------- */
struct fuse_notify_poll_wakeup_out {
	uint64_t kh;
};

struct fuse_notify_inval_inode_out {
	uint64_t ino;
	int64_t off;
	int64_t len;		/* <= 0: to the end */
};

/* followed by the name and a NUL */
struct fuse_notify_inval_entry_out {
	uint64_t parent;
	uint32_t namelen;
	uint32_t flags;		/* FUSE_EXPIRE_ONLY */
};

/* followed by the name and a NUL */
struct fuse_notify_delete_out {
	uint64_t parent;
	uint64_t child;
	uint32_t namelen;
	uint32_t padding;
};

/* followed by `size` bytes of data */
struct fuse_notify_store_out {
	uint64_t nodeid;
	uint64_t offset;
	uint32_t size;
	uint32_t padding;
};

struct fuse_notify_retrieve_out {
	uint64_t notify_unique;	/* comes back as NOTIFY_REPLY's unique */
	uint64_t nodeid;
	uint64_t offset;
	uint32_t size;
	uint32_t padding;
};

/* NOTIFY_REPLY: same size as fuse_write_in, followed by `size` bytes */
struct fuse_notify_retrieve_in {
	uint64_t dummy1;
	uint64_t offset;
	uint32_t size;
	uint32_t dummy2;
	uint64_t dummy3;
	uint64_t dummy4;
};

/* NOTIFY_PRUNE: followed by `count` uint64_t nodeids */
struct fuse_notify_prune_out {
	uint32_t count;
	uint32_t padding;
	uint64_t spare;
};

/* ------------------------------------------------------------------------
 * DAX mapping (virtio-fs cache window).
 * --------------------------------------------------------------------- */
struct fuse_setupmapping_in {
	uint64_t fh;		/* open handle; Linux sends (uint64_t)-1 */
	uint64_t foffset;	/* file offset */
	uint64_t len;
	uint64_t flags;		/* FUSE_SETUPMAPPING_FLAG_* */
	uint64_t moffset;	/* offset in the window */
};

/* REMOVEMAPPING: followed by `count` fuse_removemapping_one, starting at
 * byte 44 of the request, so the entries are not 8-byte aligned. */
struct fuse_removemapping_in {
	uint32_t count;
};

struct fuse_removemapping_one {
	uint64_t moffset;
	uint64_t len;
};

/* The kernel sends at most a page of entries; fixed at the 4 KiB value so
 * the limit does not depend on the server's page size. */
#define FUSE_REMOVEMAPPING_MAX_ENTRY \
	(4096 / sizeof(struct fuse_removemapping_one))

/* ------------------------------------------------------------------------
 * Request extensions (7.36): in_header.total_extlen * 8 bytes at the end of
 * the request, each starting with fuse_ext_header.
 * --------------------------------------------------------------------- */
enum fuse_ext_type {
	/* 0..31: security context (fuse_secctx_header) */
	FUSE_MAX_NR_SECCTX	= 31,
	FUSE_EXT_GROUPS		= 32,	/* fuse_supp_groups */
};

struct fuse_ext_header {
	uint32_t size;		/* whole extension, 8-byte multiple */
	uint32_t type;
};

/* followed by nr_secctx x (fuse_secctx, name, context) */
struct fuse_secctx_header {
	uint32_t size;
	uint32_t nr_secctx;
};

struct fuse_secctx {
	uint32_t size;
	uint32_t padding;
};

struct fuse_supp_groups {
	uint32_t nr_groups;
	uint32_t groups[];
};

/* ------------------------------------------------------------------------
 * /dev/fuse ioctls.
 * --------------------------------------------------------------------- */
/* FUSE_DEV_IOC_BACKING_OPEN argument; returns the backing_id */
struct fuse_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};

#define FUSE_DEV_IOC_MAGIC		229
#ifdef _IOR
/* Attach this fd to the session of the fd passed as argument. */
#define FUSE_DEV_IOC_CLONE		_IOR(FUSE_DEV_IOC_MAGIC, 0, uint32_t)
#define FUSE_DEV_IOC_BACKING_OPEN	_IOW(FUSE_DEV_IOC_MAGIC, 1, struct fuse_backing_map)
#define FUSE_DEV_IOC_BACKING_CLOSE	_IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)
/* Handle INIT synchronously inside mount(2) (6.18+; ENOTTY before). */
#define FUSE_DEV_IOC_SYNC_INIT		_IO(FUSE_DEV_IOC_MAGIC, 3)
#endif

/* ------------------------------------------------------------------------
 * FUSE-over-io_uring (7.42). The server registers one fixed buffer per ring
 * entry: fuse_uring_req_header, then the payload.
 * --------------------------------------------------------------------- */
#define FUSE_URING_IN_OUT_HEADER_SZ	128
#define FUSE_URING_OP_IN_OUT_SZ		128

struct fuse_uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;	/* echoed in COMMIT_AND_FETCH */
	uint32_t payload_sz;	/* bytes used in the payload buffer */
	uint32_t padding;
	uint64_t reserved;
};

struct fuse_uring_req_header {
	char in_out[FUSE_URING_IN_OUT_HEADER_SZ];  /* fuse_in_header / fuse_out_header */
	char op_in[FUSE_URING_OP_IN_OUT_SZ];	   /* the opcode's fixed argument */
	struct fuse_uring_ent_in_out ring_ent_in_out;
};

enum fuse_uring_cmd {
	FUSE_IO_URING_CMD_INVALID		= 0,
	FUSE_IO_URING_CMD_REGISTER		= 1,	/* hand an entry to the kernel */
	FUSE_IO_URING_CMD_COMMIT_AND_FETCH	= 2,	/* reply, then wait for the next */
};

/* In the SQE's 80-byte command area */
struct fuse_uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;		/* queue index (one queue per CPU) */
	uint8_t padding[6];
};

/* ------------------------------------------------------------------------
 * Size checks: a wrong layout here is a silent protocol break.
 * --------------------------------------------------------------------- */
FUSE_KERNEL_ASSERT(sizeof(struct fuse_in_header) == 40, "fuse_in_header");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_out_header) == 16, "fuse_out_header");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_attr) == 88, "fuse_attr");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_entry_out) == 128, "fuse_entry_out");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_attr_out) == 104, "fuse_attr_out");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_statx) == 256, "fuse_statx");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_statx_in) == 24, "fuse_statx_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_statx_out) == 288, "fuse_statx_out");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_kstatfs) == 80, "fuse_kstatfs");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_init_in) == 64, "fuse_init_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_init_out) == 64, "fuse_init_out");
FUSE_KERNEL_ASSERT(offsetof(struct fuse_init_out, map_alignment) == 30, "map_alignment");
FUSE_KERNEL_ASSERT(offsetof(struct fuse_init_out, request_timeout) == 40, "request_timeout");
FUSE_KERNEL_ASSERT(sizeof(struct cuse_init_out) == 72, "cuse_init_out");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_setattr_in) == 88, "fuse_setattr_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_read_in) == 40, "fuse_read_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_write_in) == 40, "fuse_write_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_notify_retrieve_in) == 40, "fuse_notify_retrieve_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_open_out) == 16, "fuse_open_out");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_create_in) == 16, "fuse_create_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_setxattr_in) == 16, "fuse_setxattr_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_lk_in) == 48, "fuse_lk_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_ioctl_in) == 32, "fuse_ioctl_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_poll_in) == 24, "fuse_poll_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_fallocate_in) == 32, "fuse_fallocate_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_copy_file_range_in) == 56, "fuse_copy_file_range_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_batch_forget_in) == 8, "fuse_batch_forget_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_forget_one) == 16, "fuse_forget_one");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_setupmapping_in) == 40, "fuse_setupmapping_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_removemapping_in) == 4, "fuse_removemapping_in");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_removemapping_one) == 16, "fuse_removemapping_one");
FUSE_KERNEL_ASSERT(FUSE_REMOVEMAPPING_MAX_ENTRY == 256, "removemapping max");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_dirent) == 24, "fuse_dirent");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_direntplus) == 152, "fuse_direntplus");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_backing_map) == 16, "fuse_backing_map");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_uring_ent_in_out) == 32, "fuse_uring_ent_in_out");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_uring_req_header) == 288, "fuse_uring_req_header");
FUSE_KERNEL_ASSERT(sizeof(struct fuse_uring_cmd_req) == 24, "fuse_uring_cmd_req");

#endif /* FUSEDAX_FUSE_KERNEL_H */
