/*
 * The dispatcher: one do_<name>() per opcode in lib/opcodes.def, turning the
 * wire layer's validated arguments into a call of the file system's
 * fuse_lowlevel_ops member with libfuse 3's argument conventions, or into
 * the default answer when the file system left that member out.
 *
 * Every handler receives a request the session already allocated and, for
 * opcodes that expect an answer, listed as in flight. Each path ends in
 * exactly one of: a call of the file system (which then owns req), a
 * fuse_reply_*(), or req_free() for opcodes that are never answered.
 */
#include "fuse_i.h"
#include "notify.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

static const struct fuse_lowlevel_ops *ops(fuse_req_t req)
{
	return &req->se->op;
}

static void fi_init(struct fuse_file_info *fi, uint64_t fh)
{
	memset(fi, 0, sizeof(*fi));
	fi->fh = fh;
}

/*
 * The client's umask reaches the file system in fuse_req_ctx(). The client
 * applies it itself unless FUSE_CAP_DONT_MASK was negotiated (then the file
 * system decides, e.g. for default ACLs); applying it here again is a
 * no-op in that case and a safety net otherwise.
 */
static mode_t apply_umask(fuse_req_t req, uint32_t mode, uint32_t umask)
{
	req->ctx.umask = umask;
	if (req->se->conn.want_ext & FUSE_CAP_DONT_MASK)
		return mode;
	return mode & ~umask;
}

/* ------------------------------------------------------------------------
 * Names and inodes.
 */

void do_init(fuse_req_t req, const struct wire_req *w)
{
	session_do_init(req, w);
}

void do_lookup(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->lookup) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->lookup(req, w->in.nodeid, w->name);
}

void do_forget(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->forget) {
		fuse_reply_none(req);
		return;
	}
	ops(req)->forget(req, w->in.nodeid, w->arg.forget.nlookup);
}

/*
 * A request of our own for one forget() call of a split BATCH_FORGET: the
 * file system frees each with fuse_reply_none(). It is never listed as in
 * flight (forgets are not interruptible), so req_free() only frees it.
 */
static fuse_req_t req_clone_unlisted(fuse_req_t req)
{
	fuse_req_t copy = calloc(1, sizeof(*copy));

	if (!copy)
		return NULL;
	copy->se = req->se;
	copy->ch = req->ch;
	chan_get(copy->ch);
	copy->unique = req->unique;
	copy->opcode = req->opcode;
	copy->ctx = req->ctx;
	return copy;
}

static void batch_forget_multi(fuse_req_t req, const struct wire_req *w)
{
	struct fuse_forget_data *forgets;

	forgets = calloc(w->count ? w->count : 1, sizeof(*forgets));
	if (!forgets) {
		fuse_log(FUSE_LOG_ERR,
			 "fuse: out of memory for BATCH_FORGET of %u inodes: "
			 "their lookup counts stay raised\n",
			 w->count);
		req_free(req);
		return;
	}
	for (uint32_t i = 0; i < w->count; i++) {
		struct fuse_forget_one one;

		wire_batch_forget_entry(w, i, &one);
		forgets[i].ino = one.nodeid;
		forgets[i].nlookup = one.nlookup;
	}
	ops(req)->forget_multi(req, w->count, forgets);
	free(forgets);
}

static void batch_forget_each(fuse_req_t req, const struct wire_req *w)
{
	for (uint32_t i = 0; i < w->count; i++) {
		struct fuse_forget_one one;
		fuse_req_t one_req = req_clone_unlisted(req);

		if (!one_req) {
			fuse_log(FUSE_LOG_ERR,
				 "fuse: out of memory in BATCH_FORGET: %u of %u "
				 "forgets dropped\n",
				 w->count - i, w->count);
			break;
		}
		wire_batch_forget_entry(w, i, &one);
		ops(req)->forget(one_req, one.nodeid, one.nlookup);
	}
	req_free(req);
}

void do_batch_forget(fuse_req_t req, const struct wire_req *w)
{
	if (ops(req)->forget_multi)
		batch_forget_multi(req, w);
	else if (ops(req)->forget)
		batch_forget_each(req, w);
	else
		req_free(req);
}

void do_getattr(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_getattr_in *arg = &w->arg.getattr;
	struct fuse_file_info fi, *fip = NULL;

	if (!ops(req)->getattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (arg->getattr_flags & FUSE_GETATTR_FH) {
		fi_init(&fi, arg->fh);
		fip = &fi;
	}
	ops(req)->getattr(req, w->in.nodeid, fip);
}

/* FATTR_* (wire) -> FUSE_SET_ATTR_* (API), bit by bit. */
static int setattr_to_set(uint32_t valid)
{
	static const struct {
		uint32_t fattr;
		int set;
	} map[] = {
		{ FATTR_MODE, FUSE_SET_ATTR_MODE },
		{ FATTR_UID, FUSE_SET_ATTR_UID },
		{ FATTR_GID, FUSE_SET_ATTR_GID },
		{ FATTR_SIZE, FUSE_SET_ATTR_SIZE },
		{ FATTR_ATIME, FUSE_SET_ATTR_ATIME },
		{ FATTR_MTIME, FUSE_SET_ATTR_MTIME },
		{ FATTR_ATIME_NOW, FUSE_SET_ATTR_ATIME_NOW },
		{ FATTR_MTIME_NOW, FUSE_SET_ATTR_MTIME_NOW },
		{ FATTR_CTIME, FUSE_SET_ATTR_CTIME },
		{ FATTR_KILL_SUIDGID, FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID },
	};
	int to_set = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (valid & map[i].fattr)
			to_set |= map[i].set;
	return to_set;
}

static void setattr_to_stat(const struct fuse_setattr_in *arg, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = arg->mode;
	st->st_uid = arg->uid;
	st->st_gid = arg->gid;
	st->st_size = (off_t)arg->size;
	st->st_atim.tv_sec = (time_t)arg->atime;
	st->st_atim.tv_nsec = arg->atimensec;
	st->st_mtim.tv_sec = (time_t)arg->mtime;
	st->st_mtim.tv_nsec = arg->mtimensec;
	st->st_ctim.tv_sec = (time_t)arg->ctime;
	st->st_ctim.tv_nsec = arg->ctimensec;
}

void do_setattr(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_setattr_in *arg = &w->arg.setattr;
	struct fuse_file_info fi, *fip = NULL;
	struct stat st;

	if (!ops(req)->setattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (arg->valid & FATTR_FH) {
		fi_init(&fi, arg->fh);
		if (arg->valid & FATTR_LOCKOWNER)
			fi.lock_owner = arg->lock_owner;
		fip = &fi;
	}
	setattr_to_stat(arg, &st);
	ops(req)->setattr(req, w->in.nodeid, &st, setattr_to_set(arg->valid), fip);
}

void do_readlink(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->readlink) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->readlink(req, w->in.nodeid);
}

void do_symlink(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->symlink) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* On the wire the new entry's name comes first, the target second. */
	ops(req)->symlink(req, w->name2, w->in.nodeid, w->name);
}

void do_mknod(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_mknod_in *arg = &w->arg.mknod;
	mode_t mode;

	if (!ops(req)->mknod) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	mode = apply_umask(req, arg->mode, arg->umask);
	ops(req)->mknod(req, w->in.nodeid, w->name, mode, (dev_t)arg->rdev);
}

void do_mkdir(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_mkdir_in *arg = &w->arg.mkdir;
	mode_t mode;

	if (!ops(req)->mkdir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	mode = apply_umask(req, arg->mode, arg->umask);
	ops(req)->mkdir(req, w->in.nodeid, w->name, mode);
}

void do_unlink(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->unlink) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->unlink(req, w->in.nodeid, w->name);
}

void do_rmdir(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->rmdir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->rmdir(req, w->in.nodeid, w->name);
}

void do_rename(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->rename) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->rename(req, w->in.nodeid, w->name, w->arg.rename.newdir, w->name2, 0);
}

void do_rename2(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_rename2_in *arg = &w->arg.rename2;

	if (!ops(req)->rename) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->rename(req, w->in.nodeid, w->name, arg->newdir, w->name2, arg->flags);
}

void do_link(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->link) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* nodeid is the new parent; the existing inode is in the argument. */
	ops(req)->link(req, w->arg.link.oldnodeid, w->in.nodeid, w->name);
}

void do_statfs(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->statfs) {
		/* Without the op the client still needs sane numbers (df,
		 * pathconf): a name limit and a block size, no space. */
		struct statvfs st = { .f_namemax = 255, .f_bsize = 512 };

		fuse_reply_statfs(req, &st);
		return;
	}
	ops(req)->statfs(req, w->in.nodeid);
}

void do_access(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->access) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->access(req, w->in.nodeid, (int)w->arg.access.mask);
}

/* ------------------------------------------------------------------------
 * Open files and directories.
 */

/* OPEN and OPENDIR: without the op, succeed with handle 0 (stateless fs). */
static void open_common(fuse_req_t req, const struct wire_req *w,
			const struct fuse_open_in *arg,
			void (*op)(fuse_req_t, fuse_ino_t, struct fuse_file_info *))
{
	struct fuse_file_info fi;

	fi_init(&fi, 0);
	fi.flags = (int32_t)arg->flags;
	if (!op) {
		fuse_reply_open(req, &fi);
		return;
	}
	op(req, w->in.nodeid, &fi);
}

void do_open(fuse_req_t req, const struct wire_req *w)
{
	open_common(req, w, &w->arg.open, ops(req)->open);
}

void do_opendir(fuse_req_t req, const struct wire_req *w)
{
	open_common(req, w, &w->arg.opendir, ops(req)->opendir);
}

void do_create(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_create_in *arg = &w->arg.create;
	struct fuse_file_info fi;
	mode_t mode;

	if (!ops(req)->create) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, 0);
	fi.flags = (int32_t)arg->flags;
	mode = apply_umask(req, arg->mode, arg->umask);
	ops(req)->create(req, w->in.nodeid, w->name, mode, &fi);
}

void do_tmpfile(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_create_in *arg = &w->arg.tmpfile;
	struct fuse_file_info fi;
	mode_t mode;

	if (!ops(req)->tmpfile) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, 0);
	fi.flags = (int32_t)arg->flags;
	mode = apply_umask(req, arg->mode, arg->umask);
	ops(req)->tmpfile(req, w->in.nodeid, mode, &fi);
}

/*
 * Sizes the peer asks for, bounded by what a reply can carry: the kernel
 * never asks for more than max_pages (a read) or XATTR_SIZE_MAX /
 * XATTR_LIST_MAX (65536, the xattr calls), but a hostile peer could ask a
 * file system to allocate gigabytes.
 */
#define DISPATCH_XATTR_MAX 65536

static size_t read_size(fuse_req_t req, uint32_t size)
{
	return size < req->se->bufsize ? size : req->se->bufsize;
}

static size_t xattr_size(uint32_t size)
{
	return size < DISPATCH_XATTR_MAX ? size : DISPATCH_XATTR_MAX;
}

/* READ, READDIR and READDIRPLUS: the same argument, the same call shape. */
typedef void (*read_op_t)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi);

static void call_read_op(fuse_req_t req, const struct wire_req *w,
			 const struct fuse_read_in *arg, read_op_t op)
{
	struct fuse_file_info fi;

	if (!op) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, arg->fh);
	fi.flags = (int32_t)arg->flags;
	if (arg->read_flags & FUSE_READ_LOCKOWNER)
		fi.lock_owner = arg->lock_owner;
	op(req, w->in.nodeid, read_size(req, arg->size), (off_t)arg->offset, &fi);
}

void do_read(fuse_req_t req, const struct wire_req *w)
{
	call_read_op(req, w, &w->arg.read, ops(req)->read);
}

void do_readdir(fuse_req_t req, const struct wire_req *w)
{
	call_read_op(req, w, &w->arg.readdir, ops(req)->readdir);
}

void do_readdirplus(fuse_req_t req, const struct wire_req *w)
{
	call_read_op(req, w, &w->arg.readdirplus, ops(req)->readdirplus);
}

void do_write(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_write_in *arg = &w->arg.write;
	struct fuse_file_info fi;

	fi_init(&fi, arg->fh);
	fi.flags = (int32_t)arg->flags;
	fi.writepage = !!(arg->write_flags & FUSE_WRITE_CACHE);
	if (arg->write_flags & FUSE_WRITE_LOCKOWNER)
		fi.lock_owner = arg->lock_owner;

	if (ops(req)->write_buf) {
		/* The data stays in the receive buffer; the vector is only
		 * valid during the call, as in libfuse. */
		struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(w->data_len);

		bufv.buf[0].mem = (void *)w->data;
		ops(req)->write_buf(req, w->in.nodeid, &bufv, (off_t)arg->offset, &fi);
	} else if (ops(req)->write) {
		ops(req)->write(req, w->in.nodeid, w->data, w->data_len,
				(off_t)arg->offset, &fi);
	} else {
		fuse_reply_err(req, ENOSYS);
	}
}

void do_flush(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_flush_in *arg = &w->arg.flush;
	struct fuse_file_info fi;

	if (!ops(req)->flush) {
		/* The client then stops sending FLUSH for this mount. */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, arg->fh);
	fi.flush = 1;
	fi.lock_owner = arg->lock_owner;
	ops(req)->flush(req, w->in.nodeid, &fi);
}

static void release_fi(struct fuse_file_info *fi, const struct fuse_release_in *arg)
{
	fi_init(fi, arg->fh);
	fi->flags = (int32_t)arg->flags;
	fi->flush = !!(arg->release_flags & FUSE_RELEASE_FLUSH);
	fi->flock_release = !!(arg->release_flags & FUSE_RELEASE_FLOCK_UNLOCK);
	fi->lock_owner = arg->lock_owner;
}

void do_release(fuse_req_t req, const struct wire_req *w)
{
	struct fuse_file_info fi;

	if (!ops(req)->release) {
		fuse_reply_err(req, 0);
		return;
	}
	release_fi(&fi, &w->arg.release);
	ops(req)->release(req, w->in.nodeid, &fi);
}

void do_releasedir(fuse_req_t req, const struct wire_req *w)
{
	struct fuse_file_info fi;

	if (!ops(req)->releasedir) {
		fuse_reply_err(req, 0);
		return;
	}
	release_fi(&fi, &w->arg.releasedir);
	ops(req)->releasedir(req, w->in.nodeid, &fi);
}

/* FSYNC and FSYNCDIR: ENOSYS without the op tells the client that syncing
 * is not needed, and it stops asking. */
static void fsync_common(fuse_req_t req, const struct wire_req *w,
			 const struct fuse_fsync_in *arg,
			 void (*op)(fuse_req_t, fuse_ino_t, int, struct fuse_file_info *))
{
	struct fuse_file_info fi;

	if (!op) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, arg->fh);
	op(req, w->in.nodeid, (int)(arg->fsync_flags & FUSE_FSYNC_FDATASYNC), &fi);
}

void do_fsync(fuse_req_t req, const struct wire_req *w)
{
	fsync_common(req, w, &w->arg.fsync, ops(req)->fsync);
}

void do_fsyncdir(fuse_req_t req, const struct wire_req *w)
{
	fsync_common(req, w, &w->arg.fsyncdir, ops(req)->fsyncdir);
}

void do_fallocate(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_fallocate_in *arg = &w->arg.fallocate;
	struct fuse_file_info fi;

	if (!ops(req)->fallocate) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, arg->fh);
	ops(req)->fallocate(req, w->in.nodeid, (int)arg->mode, (off_t)arg->offset,
			    (off_t)arg->length, &fi);
}

void do_lseek(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_lseek_in *arg = &w->arg.lseek;
	struct fuse_file_info fi;

	if (!ops(req)->lseek) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, arg->fh);
	ops(req)->lseek(req, w->in.nodeid, (off_t)arg->offset, (int)arg->whence, &fi);
}

void do_copy_file_range(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_copy_file_range_in *arg = &w->arg.copy_file_range;
	struct fuse_file_info fi_in, fi_out;

	if (!ops(req)->copy_file_range) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi_in, arg->fh_in);
	fi_init(&fi_out, arg->fh_out);
	ops(req)->copy_file_range(req, w->in.nodeid, (off_t)arg->off_in, &fi_in,
				  arg->nodeid_out, (off_t)arg->off_out, &fi_out,
				  (size_t)arg->len, (int)arg->flags);
}

void do_statx(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_statx_in *arg = &w->arg.statx;
	struct fuse_file_info fi, *fip = NULL;

	if (!ops(req)->statx) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (arg->getattr_flags & FUSE_GETATTR_FH) {
		fi_init(&fi, arg->fh);
		fip = &fi;
	}
	ops(req)->statx(req, w->in.nodeid, (int)arg->sx_flags, (int)arg->sx_mask, fip);
}

void do_syncfs(fuse_req_t req, const struct wire_req *w)
{
	/* libfuse's low-level API has no syncfs member. */
	(void)w;
	fuse_reply_err(req, ENOSYS);
}

void do_bmap(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_bmap_in *arg = &w->arg.bmap;

	if (!ops(req)->bmap) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->bmap(req, w->in.nodeid, arg->blocksize, arg->block);
}

/* ------------------------------------------------------------------------
 * Extended attributes.
 */

void do_setxattr(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_setxattr_in *arg = &w->arg.setxattr;

	if (!ops(req)->setxattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* setxattr_flags (FUSE_SETXATTR_EXT) has no place in the API. */
	ops(req)->setxattr(req, w->in.nodeid, w->name, w->data, w->data_len,
			   (int)arg->flags);
}

void do_getxattr(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->getxattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->getxattr(req, w->in.nodeid, w->name, xattr_size(w->arg.getxattr.size));
}

void do_listxattr(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->listxattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->listxattr(req, w->in.nodeid, xattr_size(w->arg.listxattr.size));
}

void do_removexattr(fuse_req_t req, const struct wire_req *w)
{
	if (!ops(req)->removexattr) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	ops(req)->removexattr(req, w->in.nodeid, w->name);
}

/* ------------------------------------------------------------------------
 * Locks.
 */

static void lock_to_flock(const struct fuse_file_lock *lk, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = (short)lk->type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)lk->start;
	/* The wire's end is inclusive, with the largest offset meaning "to
	 * the end of the file"; struct flock says that with length 0. */
	if (lk->end == (uint64_t)INT64_MAX)
		fl->l_len = 0;
	else
		fl->l_len = (off_t)(lk->end - lk->start + 1);
	fl->l_pid = (pid_t)lk->pid;
}

void do_getlk(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_lk_in *arg = &w->arg.getlk;
	struct fuse_file_info fi;
	struct flock fl;

	if (!ops(req)->getlk) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, arg->fh);
	fi.lock_owner = arg->owner;
	lock_to_flock(&arg->lk, &fl);
	ops(req)->getlk(req, w->in.nodeid, &fi, &fl);
}

/* A flock(2) request arrives as SETLK/SETLKW with FUSE_LK_FLOCK. */
static void setlk_flock(fuse_req_t req, const struct wire_req *w,
			const struct fuse_lk_in *arg, struct fuse_file_info *fi, bool sleep)
{
	int op;

	if (!ops(req)->flock) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	switch (arg->lk.type) {
	case F_RDLCK:
		op = LOCK_SH;
		break;
	case F_WRLCK:
		op = LOCK_EX;
		break;
	case F_UNLCK:
		op = LOCK_UN;
		break;
	default:
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!sleep)
		op |= LOCK_NB;
	ops(req)->flock(req, w->in.nodeid, fi, op);
}

static void setlk_common(fuse_req_t req, const struct wire_req *w,
			 const struct fuse_lk_in *arg, bool sleep)
{
	struct fuse_file_info fi;
	struct flock fl;

	fi_init(&fi, arg->fh);
	fi.lock_owner = arg->owner;
	if (arg->lk_flags & FUSE_LK_FLOCK) {
		setlk_flock(req, w, arg, &fi, sleep);
		return;
	}
	if (!ops(req)->setlk) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	lock_to_flock(&arg->lk, &fl);
	ops(req)->setlk(req, w->in.nodeid, &fi, &fl, sleep);
}

void do_setlk(fuse_req_t req, const struct wire_req *w)
{
	setlk_common(req, w, &w->arg.setlk, false);
}

void do_setlkw(fuse_req_t req, const struct wire_req *w)
{
	setlk_common(req, w, &w->arg.setlkw, true);
}

/* ------------------------------------------------------------------------
 * ioctl and poll.
 */

void do_ioctl(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_ioctl_in *arg = &w->arg.ioctl;
	struct fuse_file_info fi;

	if (!ops(req)->ioctl) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* A directory ioctl the file system did not ask for. */
	if ((arg->flags & FUSE_IOCTL_DIR) &&
	    !(req->se->conn.want_ext & FUSE_CAP_IOCTL_DIR)) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	/* A 32-bit server cannot follow a 64-bit caller's pointers; clients
	 * before 7.16 do not say which kind of caller they have. */
	if (sizeof(void *) == 4 && req->se->conn.proto_minor >= 16 &&
	    !(arg->flags & FUSE_IOCTL_32BIT)) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, arg->fh);
	/* arg->arg is an address in the caller's process, never dereferenced
	 * here: an unrestricted ioctl asks for it with a retry. */
	ops(req)->ioctl(req, w->in.nodeid, arg->cmd, (void *)(uintptr_t)arg->arg, &fi,
			arg->flags, arg->in_size ? w->data : NULL, w->data_len,
			arg->out_size);
}

void do_poll(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_poll_in *arg = &w->arg.poll;
	struct fuse_pollhandle *ph = NULL;
	struct fuse_file_info fi;

	if (!ops(req)->poll) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi_init(&fi, arg->fh);
	fi.poll_events = arg->events;
	if (arg->flags & FUSE_POLL_SCHEDULE_NOTIFY) {
		ph = notify_pollhandle_new(req->se, arg->kh);
		if (!ph) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	ops(req)->poll(req, w->in.nodeid, &fi, ph);
}

/* ------------------------------------------------------------------------
 * Session-level opcodes.
 */

/*
 * Find the in-flight request the client wants interrupted, mark it and run
 * its interrupt callback.
 *
 * The callback runs with se->lock held. That is what keeps the target
 * alive: its reply frees it through req_free(), which takes se->lock to
 * unlist it, and fuse_req_interrupt_func(req, NULL, NULL) also waits for
 * the lock, so once a handler has unregistered its callback the callback is
 * not running. The price: a callback must not reply, nor call
 * fuse_req_interrupted() or fuse_req_interrupt_func() (they take the lock);
 * it should only wake the thread working on the request.
 *
 * If the target is not in flight (not yet listed by another worker, or
 * already answered), EAGAIN makes the client queue the INTERRUPT again
 * while the request is still pending, and is ignored otherwise.
 */
void do_interrupt(fuse_req_t req, const struct wire_req *w)
{
	struct fuse_session *se = req->se;
	uint64_t target = w->arg.interrupt.unique;
	struct fuse_req *cur;
	bool found = false;

	/* init() set no_interrupt: ENOSYS tells the client to stop sending. */
	if (se->conn.no_interrupt) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	pthread_mutex_lock(&se->lock);
	for (cur = se->inflight.next; cur != &se->inflight; cur = cur->next) {
		if (cur->unique != target)
			continue;
		found = true;
		cur->interrupted = true;
		if (cur->interrupt_func)
			cur->interrupt_func(cur, cur->interrupt_data);
		break;
	}
	pthread_mutex_unlock(&se->lock);

	if (se->debug)
		fuse_log(FUSE_LOG_DEBUG, "INTERRUPT: unique %llu %s\n",
			 (unsigned long long)target, found ? "marked" : "not in flight");
	if (found)
		req_free(req);
	else
		fuse_reply_err(req, EAGAIN);
}

void do_destroy(fuse_req_t req, const struct wire_req *w)
{
	struct fuse_session *se = req->se;

	(void)w;
	/* fuse_session_destroy() skips op.destroy once this is set. */
	if (!se->got_destroy) {
		se->got_destroy = true;
		if (se->op.destroy)
			se->op.destroy(se->userdata);
	}
	fuse_reply_err(req, 0);
}

void do_notify_reply(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_notify_retrieve_in *arg = &w->arg.notify_reply;
	void *cookie;

	/* An unknown unique is a stale or forged reply: nothing waits for it. */
	if (!notify_take_retrieve(req->se, w->in.unique, &cookie) ||
	    !ops(req)->retrieve_reply) {
		req_free(req);
		return;
	}
	{
		struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(w->data_len);

		bufv.buf[0].mem = (void *)w->data;
		ops(req)->retrieve_reply(req, cookie, w->in.nodeid, (off_t)arg->offset,
					 &bufv);
	}
}

/* ------------------------------------------------------------------------
 * DAX mapping (fusedax).
 */

void do_setupmapping(fuse_req_t req, const struct wire_req *w)
{
	const struct fuse_setupmapping_in *arg = &w->arg.setupmapping;
	struct fuse_file_info fi, *fip = NULL;

	if (!ops(req)->setupmapping) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* The Linux client names no open file (fh = -1); another client may. */
	if (arg->fh != UINT64_MAX) {
		fi_init(&fi, arg->fh);
		fip = &fi;
	}
	ops(req)->setupmapping(req, w->in.nodeid, arg->foffset, arg->len, arg->moffset,
			       arg->flags, fip);
}

void do_removemapping(fuse_req_t req, const struct wire_req *w)
{
	struct fuse_dax_range ranges[FUSE_REMOVEMAPPING_MAX_ENTRY];

	if (!ops(req)->removemapping) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	/* The wire layer bounds count by FUSE_REMOVEMAPPING_MAX_ENTRY; the
	 * check stays as our own invariant, not the peer's. */
	if (w->count > FUSE_REMOVEMAPPING_MAX_ENTRY) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* Entries sit unaligned in the request: copy each one out. */
	for (uint32_t i = 0; i < w->count; i++) {
		struct fuse_removemapping_one one;

		wire_removemapping_entry(w, i, &one);
		ranges[i].moffset = one.moffset;
		ranges[i].len = one.len;
	}
	/* ranges lives on this stack frame: valid until the handler returns.
	 * A handler that replies later must copy it. */
	ops(req)->removemapping(req, ranges, w->count);
}
