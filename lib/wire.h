/*
 * The wire layer: decode and validate one FUSE request from raw bytes into
 * typed, bounds-checked arguments. Pure: no I/O, no logging, no allocation,
 * no session state, so it can be fuzzed on its own (lib/wire.c + headers).
 */
#ifndef FUSEDAX_WIRE_H
#define FUSEDAX_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "fuse_kernel.h"

/*
 * What follows an opcode's fixed argument struct (the `shape` column of
 * lib/opcodes.def).
 */
enum wire_shape {
	WIRE_FIXED,	/* the struct only; trailing bytes are ignored */
	WIRE_NAME,	/* struct, then one NUL-terminated name */
	WIRE_NAME_NAME,	/* struct, then two NUL-terminated names */
	WIRE_DATA,	/* struct, then exactly as many bytes as it says */
	WIRE_NAME_DATA,	/* struct, a NUL-terminated name, then exact data */
	WIRE_ENTRIES,	/* struct with a count, then count fixed entries */
};

/* Per-opcode flags (the `flags` column of lib/opcodes.def). */
#define OPF_NO_REPLY	(1u << 0)	/* the kernel expects no answer */
#define OPF_BEFORE_INIT	(1u << 1)	/* legal before INIT completes */
#define OPF_COMPONENT	(1u << 2)	/* names are path components */
#define OPF_XATTR_NAME	(1u << 3)	/* the name is an xattr name */
#define OPF_DAX		(1u << 4)	/* needs a DAX window */

struct wire_opcode {
	uint32_t opcode;
	const char *name;	/* "LOOKUP" */
	size_t arg_size;	/* sizeof the fixed argument struct, 0 if none */
	enum wire_shape shape;
	unsigned flags;		/* OPF_* */
};

/* Facts about one opcode; NULL if this library does not know it. */
const struct wire_opcode *wire_opcode_info(uint32_t opcode);
/* "LOOKUP", ..., or "UNKNOWN" */
const char *wire_opcode_name(uint32_t opcode);

/* What the session has negotiated; the decoder checks against it. */
struct wire_limits {
	uint32_t proto_minor;	  /* negotiated minor; 0 = before INIT */
	int setxattr_ext;	  /* FUSE_SETXATTR_EXT negotiated */
	uint64_t dax_window_size; /* bytes; 0 = no window */
	uint64_t dax_alignment;	  /* bytes, power of two (0 is taken as 1) */
};

/* The fixed argument, one member per opcode that has one, named after the
 * opcode (the `name` column of lib/opcodes.def). */
union wire_arg {
	struct fuse_forget_in forget;
	struct fuse_getattr_in getattr;
	struct fuse_setattr_in setattr;
	struct fuse_mknod_in mknod;
	struct fuse_mkdir_in mkdir;
	struct fuse_rename_in rename;
	struct fuse_link_in link;
	struct fuse_open_in open;
	struct fuse_read_in read;
	struct fuse_write_in write;
	struct fuse_release_in release;
	struct fuse_fsync_in fsync;
	struct fuse_setxattr_in setxattr;
	struct fuse_getxattr_in getxattr;
	struct fuse_getxattr_in listxattr;
	struct fuse_flush_in flush;
	struct fuse_init_in init;
	struct fuse_open_in opendir;
	struct fuse_read_in readdir;
	struct fuse_release_in releasedir;
	struct fuse_fsync_in fsyncdir;
	struct fuse_lk_in getlk;
	struct fuse_lk_in setlk;
	struct fuse_lk_in setlkw;
	struct fuse_access_in access;
	struct fuse_create_in create;
	struct fuse_interrupt_in interrupt;
	struct fuse_bmap_in bmap;
	struct fuse_ioctl_in ioctl;
	struct fuse_poll_in poll;
	struct fuse_notify_retrieve_in notify_reply;
	struct fuse_batch_forget_in batch_forget;
	struct fuse_fallocate_in fallocate;
	struct fuse_read_in readdirplus;
	struct fuse_rename2_in rename2;
	struct fuse_lseek_in lseek;
	struct fuse_copy_file_range_in copy_file_range;
	struct fuse_setupmapping_in setupmapping;
	struct fuse_removemapping_in removemapping;
	struct fuse_syncfs_in syncfs;
	struct fuse_create_in tmpfile;
	struct fuse_statx_in statx;
	struct cuse_init_in cuse_init;
};

/*
 * One decoded request. Ownership: name, name2 and data point into the
 * caller's buffer and are valid as long as that buffer is; everything else
 * is copied.
 */
struct wire_req {
	struct fuse_in_header in;	/* copied out of the buffer */
	const struct wire_opcode *op;	/* NULL only if decoding failed before
					 * the opcode was known */
	union wire_arg arg;		/* fixed argument, copied (alignment-safe);
					 * a shorter legal compat struct is
					 * zero-extended */
	const char *name;		/* first name (NUL-terminated) or NULL */
	const char *name2;		/* RENAME/RENAME2 new name, SYMLINK target */
	const void *data;		/* WRITE data, SETXATTR value, IOCTL input,
					 * NOTIFY_REPLY data, raw BATCH_FORGET /
					 * REMOVEMAPPING entries (unaligned: use
					 * the accessors below) */
	size_t data_len;
	uint32_t count;			/* BATCH_FORGET / REMOVEMAPPING entries */
};

/*
 * Decode the request in buf[0..len) into *out.
 *
 * Returns 0, or a negative errno. -EPROTO means the framing is broken (the
 * transport cannot trust where the next request starts: end the session).
 * Any other error is the answer to send for this request: out->in already
 * holds its valid header.
 *
 * Rules, in the order they are checked:
 *
 *   what                                                  errno
 *   ----------------------------------------------------  ------------
 *   len < sizeof(struct fuse_in_header) (40)               -EPROTO
 *   in.len != len                                          -EPROTO
 *   (from here on out->in is filled)
 *   opcode not in lib/opcodes.def                          -ENOSYS
 *   OPF_DAX and lim->dax_window_size == 0                  -ENOSYS
 *   in.total_extlen * 8 > len - 40 (extensions overrun)    -EINVAL
 *   argument bytes (len - 40 - extensions) shorter than    -EINVAL
 *     the struct; legal shorter compat sizes, zero-extended:
 *       INIT >= 8 bytes (old kernels send 8 or 16)
 *       SETXATTR exactly 8 bytes consumed if !setxattr_ext,
 *         16 if setxattr_ext
 *       WRITE 24 if 0 < proto_minor < 9
 *       MKNOD 8 if 0 < proto_minor < 12
 *     bytes after a WIRE_FIXED struct or after the last name are ignored
 *   a name not NUL-terminated inside the message           -EINVAL
 *   OPF_COMPONENT name (every name of LOOKUP, MKNOD,
 *     MKDIR, UNLINK, RMDIR, LINK, CREATE, both of RENAME
 *     and RENAME2, the first of SYMLINK):
 *       empty                                              -EINVAL
 *       strlen > FUSE_NAME_MAX (1024)                      -ENAMETOOLONG
 *       contains '/'                                       -EINVAL
 *   SYMLINK target (name2): empty                          -EINVAL
 *                           strlen >= FUSE_SYMLINK_MAX     -ENAMETOOLONG
 *   OPF_XATTR_NAME name: empty                             -EINVAL
 *                        strlen > 255 (XATTR_NAME_MAX)     -ERANGE
 *   TMPFILE's name ("/" from the kernel): NUL-termination only
 *   WRITE: data bytes != write_in.size                     -EINVAL
 *   SETXATTR: value bytes after the name != size           -EINVAL
 *   IOCTL: data bytes != ioctl_in.in_size                  -EINVAL
 *   NOTIFY_REPLY: data bytes != notify_retrieve_in.size    -EINVAL
 *   BATCH_FORGET: argument bytes != 8 + count * 16         -EINVAL
 *   SETUPMAPPING: flags other than READ|WRITE              -EINVAL
 *                 len == 0                                 -EINVAL
 *                 foffset, len or moffset not a multiple
 *                   of dax_alignment                       -EINVAL
 *                 moffset >= window size or
 *                   len > window size - moffset            -ERANGE
 *                 foffset + len > INT64_MAX                -EOVERFLOW
 *   REMOVEMAPPING: count == 0 or
 *                    count > FUSE_REMOVEMAPPING_MAX_ENTRY  -EINVAL
 *                  argument bytes != 4 + count * 16        -EINVAL
 *                  an entry with len == 0, or moffset/len
 *                    not a multiple of dax_alignment       -EINVAL
 *                  an entry outside the window             -ERANGE
 *
 * Session rules (a request before INIT, a second INIT) are not checked here.
 */
int wire_decode(const void *buf, size_t len, const struct wire_limits *lim,
		struct wire_req *out);

/* Copy out entry i (< w->count) of a decoded BATCH_FORGET / REMOVEMAPPING.
 * An index out of range yields a zeroed entry. */
void wire_batch_forget_entry(const struct wire_req *w, uint32_t i,
			     struct fuse_forget_one *out);
void wire_removemapping_entry(const struct wire_req *w, uint32_t i,
			      struct fuse_removemapping_one *out);

/* One line of text for -d debug logs (opcode, unique, nodeid, key
 * arguments), snprintf-style: returns the length it needed, always
 * NUL-terminates when size > 0. Names are shown escaped and shortened. */
int wire_describe(const struct wire_req *w, char *buf, size_t size);

#endif /* FUSEDAX_WIRE_H */
