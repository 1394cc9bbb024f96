/*
 * passthrough_dax: -o readonly. Every operation that would change the
 * source is answered EROFS before it reaches passthrough_dax.c: the table
 * below is pd_ops with those operations replaced. Opening for writing or
 * with O_TRUNC, access(W_OK) and writable DAX mappings are refused too.
 * In namespace mode the source is also mounted read-only in the sandbox,
 * so the host kernel refuses what this table might miss.
 */
#include "passthrough_dax.h"

static void ro_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void ro_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void ro_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void ro_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void ro_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void ro_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void ro_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void ro_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void ro_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode,
		       struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void ro_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		fuse_reply_err(req, EROFS);
	else
		pd_ops.open(req, ino, fi);
}

static void ro_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
			 struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void ro_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	if (mask & W_OK)
		fuse_reply_err(req, EROFS);
	else
		pd_ops.access(req, ino, mask);
}

static void ro_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void ro_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void ro_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void ro_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void ro_setupmapping(fuse_req_t req, fuse_ino_t ino, uint64_t foffset, uint64_t len,
			    uint64_t moffset, uint64_t flags, struct fuse_file_info *fi)
{
	if (flags & FUSE_DAX_MAP_WRITE)
		fuse_reply_err(req, EROFS);
	else
		pd_ops.setupmapping(req, ino, foffset, len, moffset, flags, fi);
}

/* pd_ops with every operation that changes the source refused. */
void readonly_ops(struct fuse_lowlevel_ops *ops)
{
	*ops = pd_ops;
	ops->setattr = ro_setattr;
	ops->mknod = ro_mknod;
	ops->mkdir = ro_mkdir;
	ops->symlink = ro_symlink;
	ops->link = ro_link;
	ops->unlink = ro_remove;
	ops->rmdir = ro_remove;
	ops->rename = ro_rename;
	ops->create = ro_create;
	ops->tmpfile = ro_tmpfile;
	ops->open = ro_open;
	ops->write_buf = ro_write_buf;
	ops->access = ro_access;
	ops->setxattr = ro_setxattr;
	ops->removexattr = ro_removexattr;
	ops->fallocate = ro_fallocate;
	ops->copy_file_range = ro_copy_file_range;
	ops->setupmapping = ro_setupmapping;
}
