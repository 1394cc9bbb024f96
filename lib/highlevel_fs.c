/*
 * The stacking API of <fuse.h>: struct fuse_fs is one layer of path-based
 * callbacks, and fuse_fs_<op>() calls one of them with that layer's data as
 * the context's private_data. The high-level library calls the top layer
 * through these; a module calls the layer below it the same way.
 */
#include "highlevel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Makes fs's data the private_data its callback sees; true if fs->op.m is set. */
#define FS_ENTER(fs, member) (fuse_get_context()->private_data = (fs)->user_data, \
			      (fs)->op.member != NULL)

static const char *fs_path(const char *path)
{
	return path ? path : "(null)";
}

static void fs_debug(struct fuse_fs *fs, const char *op, const char *path)
{
	if (fs->debug)
		fuse_log(FUSE_LOG_DEBUG, "   %s %s\n", op, fs_path(path));
}

struct fuse_fs *fuse_fs_new(const struct fuse_operations *op, size_t op_size,
			    void *user_data)
{
	struct fuse_fs *fs;

	if (op_size > sizeof(fs->op)) {
		fuse_log(FUSE_LOG_ERR, "fuse: struct fuse_operations is %zu bytes, larger "
			 "than this library's %zu: the extra members are ignored\n",
			 op_size, sizeof(fs->op));
		op_size = sizeof(fs->op);
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs) {
		fuse_log(FUSE_LOG_ERR, "fuse: out of memory for a file system layer\n");
		return NULL;
	}
	if (op)
		memcpy(&fs->op, op, op_size);
	fs->user_data = user_data;
	return fs;
}

void fuse_fs_init(struct fuse_fs *fs, struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	fuse_get_context()->private_data = fs->user_data;
	/* The kernel does byte-range and flock locks itself when no layer
	 * can; data only comes spliced to a layer that takes buffers. */
	if (!fs->op.write_buf)
		fuse_unset_feature_flag(conn, FUSE_CAP_SPLICE_READ);
	if (!fs->op.lock)
		fuse_unset_feature_flag(conn, FUSE_CAP_POSIX_LOCKS);
	if (!fs->op.flock)
		fuse_unset_feature_flag(conn, FUSE_CAP_FLOCK_LOCKS);
	if (fs->op.init)
		fs->user_data = fs->op.init(conn, cfg);
}

void fuse_fs_destroy(struct fuse_fs *fs)
{
	if (FS_ENTER(fs, destroy))
		fs->op.destroy(fs->user_data);
}

void hl_fs_free_stack(struct fuse_fs *fs)
{
	while (fs) {
		struct fuse_fs *below = fs->below;

		free(fs);
		fs = below;
	}
}

int fuse_fs_getattr(struct fuse_fs *fs, const char *path, struct stat *buf,
		    struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, getattr))
		return -ENOSYS;
	fs_debug(fs, "getattr", path);
	return fs->op.getattr(path, buf, fi);
}

int fuse_fs_rename(struct fuse_fs *fs, const char *oldpath, const char *newpath,
		   unsigned int flags)
{
	if (!FS_ENTER(fs, rename))
		return -ENOSYS;
	if (fs->debug)
		fuse_log(FUSE_LOG_DEBUG, "   rename %s %s 0x%x\n", oldpath, newpath, flags);
	return fs->op.rename(oldpath, newpath, flags);
}

int fuse_fs_unlink(struct fuse_fs *fs, const char *path)
{
	if (!FS_ENTER(fs, unlink))
		return -ENOSYS;
	fs_debug(fs, "unlink", path);
	return fs->op.unlink(path);
}

int fuse_fs_rmdir(struct fuse_fs *fs, const char *path)
{
	if (!FS_ENTER(fs, rmdir))
		return -ENOSYS;
	fs_debug(fs, "rmdir", path);
	return fs->op.rmdir(path);
}

int fuse_fs_symlink(struct fuse_fs *fs, const char *linkname, const char *path)
{
	if (!FS_ENTER(fs, symlink))
		return -ENOSYS;
	fs_debug(fs, "symlink", path);
	return fs->op.symlink(linkname, path);
}

int fuse_fs_link(struct fuse_fs *fs, const char *oldpath, const char *newpath)
{
	if (!FS_ENTER(fs, link))
		return -ENOSYS;
	fs_debug(fs, "link", newpath);
	return fs->op.link(oldpath, newpath);
}

int fuse_fs_release(struct fuse_fs *fs, const char *path, struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, release))
		return 0;
	fs_debug(fs, "release", path);
	return fs->op.release(path, fi);
}

int fuse_fs_opendir(struct fuse_fs *fs, const char *path, struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, opendir))
		return 0;
	fs_debug(fs, "opendir", path);
	return fs->op.opendir(path, fi);
}

int fuse_fs_open(struct fuse_fs *fs, const char *path, struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, open))
		return 0;
	fs_debug(fs, "open", path);
	return fs->op.open(path, fi);
}

/* A one-buffer vector of size bytes of fresh memory, or NULL. */
static struct fuse_bufvec *bufvec_alloc(size_t size)
{
	struct fuse_bufvec *bv = malloc(sizeof(*bv));

	if (!bv)
		return NULL;
	*bv = FUSE_BUFVEC_INIT(size);
	bv->buf[0].mem = malloc(size ? size : 1);
	if (!bv->buf[0].mem) {
		free(bv);
		return NULL;
	}
	return bv;
}

int fuse_fs_read_buf(struct fuse_fs *fs, const char *path, struct fuse_bufvec **bufp,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec *bv;
	int res;

	fuse_get_context()->private_data = fs->user_data;
	fs_debug(fs, "read", path);
	if (fs->op.read_buf) {
		res = fs->op.read_buf(path, bufp, size, off, fi);
		if (res == 0 && fuse_buf_size(*bufp) > size)
			fuse_log(FUSE_LOG_ERR, "fuse: read_buf of %s returned more than %zu "
				 "bytes\n", fs_path(path), size);
		return res < 0 ? res : 0;
	}
	if (!fs->op.read)
		return -ENOSYS;
	bv = bufvec_alloc(size);
	if (!bv)
		return -ENOMEM;
	res = fs->op.read(path, bv->buf[0].mem, size, off, fi);
	if (res < 0) {
		free(bv->buf[0].mem);
		free(bv);
		return res;
	}
	bv->buf[0].size = (size_t)res;
	*bufp = bv;
	return 0;
}

/* Frees a vector from read_buf and the memory of its buffers. */
static void bufvec_free(struct fuse_bufvec *bv)
{
	if (!bv)
		return;
	for (size_t i = 0; i < bv->count; i++)
		if (!(bv->buf[i].flags & FUSE_BUF_IS_FD))
			free(bv->buf[i].mem);
	free(bv);
}

int fuse_fs_read(struct fuse_fs *fs, const char *path, char *mem, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	struct fuse_bufvec *bv = NULL;
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	ssize_t copied;
	int res;

	fuse_get_context()->private_data = fs->user_data;
	if (fs->op.read) {
		fs_debug(fs, "read", path);
		return fs->op.read(path, mem, size, off, fi);
	}
	res = fuse_fs_read_buf(fs, path, &bv, size, off, fi);
	if (res < 0)
		return res;
	dst.buf[0].mem = mem;
	copied = fuse_buf_copy(&dst, bv, 0);
	bufvec_free(bv);
	return (int)copied;
}

int fuse_fs_write_buf(struct fuse_fs *fs, const char *path, struct fuse_bufvec *buf,
		      off_t off, struct fuse_file_info *fi)
{
	size_t size = fuse_buf_size(buf);
	struct fuse_bufvec flat = FUSE_BUFVEC_INIT(size);
	void *mem = NULL;
	ssize_t got;
	int res;

	fuse_get_context()->private_data = fs->user_data;
	fs_debug(fs, "write", path);
	if (fs->op.write_buf)
		return fs->op.write_buf(path, buf, off, fi);
	if (!fs->op.write)
		return -ENOSYS;
	if (buf->count == 1 && buf->idx == 0 && buf->off == 0 &&
	    !(buf->buf[0].flags & FUSE_BUF_IS_FD))
		return fs->op.write(path, buf->buf[0].mem, buf->buf[0].size, off, fi);
	/* Several pieces, or a descriptor: gather them in memory first. */
	mem = malloc(size ? size : 1);
	if (!mem)
		return -ENOMEM;
	flat.buf[0].mem = mem;
	got = fuse_buf_copy(&flat, buf, 0);
	if (got < 0)
		res = (int)got;
	else
		res = fs->op.write(path, mem, (size_t)got, off, fi);
	free(mem);
	return res;
}

int fuse_fs_write(struct fuse_fs *fs, const char *path, const char *buf, size_t size,
		  off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	bv.buf[0].mem = (void *)buf;
	return fuse_fs_write_buf(fs, path, &bv, off, fi);
}

int fuse_fs_fsync(struct fuse_fs *fs, const char *path, int datasync,
		  struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, fsync))
		return -ENOSYS;
	fs_debug(fs, "fsync", path);
	return fs->op.fsync(path, datasync, fi);
}

int fuse_fs_fsyncdir(struct fuse_fs *fs, const char *path, int datasync,
		     struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, fsyncdir))
		return -ENOSYS;
	fs_debug(fs, "fsyncdir", path);
	return fs->op.fsyncdir(path, datasync, fi);
}

int fuse_fs_flush(struct fuse_fs *fs, const char *path, struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, flush))
		return -ENOSYS;
	fs_debug(fs, "flush", path);
	return fs->op.flush(path, fi);
}

int fuse_fs_statfs(struct fuse_fs *fs, const char *path, struct statvfs *buf)
{
	if (!FS_ENTER(fs, statfs)) {
		/* What a file system without statfs reports. */
		buf->f_namemax = 255;
		buf->f_bsize = 512;
		return 0;
	}
	fs_debug(fs, "statfs", path);
	return fs->op.statfs(path, buf);
}

int fuse_fs_releasedir(struct fuse_fs *fs, const char *path, struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, releasedir))
		return 0;
	fs_debug(fs, "releasedir", path);
	return fs->op.releasedir(path, fi);
}

int fuse_fs_readdir(struct fuse_fs *fs, const char *path, void *buf, fuse_fill_dir_t filler,
		    off_t off, struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	if (!FS_ENTER(fs, readdir))
		return -ENOSYS;
	fs_debug(fs, flags & FUSE_READDIR_PLUS ? "readdirplus" : "readdir", path);
	return fs->op.readdir(path, buf, filler, off, fi, flags);
}

int fuse_fs_create(struct fuse_fs *fs, const char *path, mode_t mode,
		   struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, create))
		return -ENOSYS;
	fs_debug(fs, "create", path);
	return fs->op.create(path, mode, fi);
}

int fuse_fs_lock(struct fuse_fs *fs, const char *path, struct fuse_file_info *fi, int cmd,
		 struct flock *lock)
{
	if (!FS_ENTER(fs, lock))
		return -ENOSYS;
	fs_debug(fs, "lock", path);
	return fs->op.lock(path, fi, cmd, lock);
}

int fuse_fs_flock(struct fuse_fs *fs, const char *path, struct fuse_file_info *fi, int op)
{
	if (!FS_ENTER(fs, flock))
		return -ENOSYS;
	fs_debug(fs, "flock", path);
	return fs->op.flock(path, fi, op);
}

int fuse_fs_chown(struct fuse_fs *fs, const char *path, uid_t uid, gid_t gid,
		  struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, chown))
		return -ENOSYS;
	fs_debug(fs, "chown", path);
	return fs->op.chown(path, uid, gid, fi);
}

int fuse_fs_truncate(struct fuse_fs *fs, const char *path, off_t size,
		     struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, truncate))
		return -ENOSYS;
	fs_debug(fs, "truncate", path);
	return fs->op.truncate(path, size, fi);
}

int fuse_fs_utimens(struct fuse_fs *fs, const char *path, const struct timespec tv[2],
		    struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, utimens))
		return -ENOSYS;
	fs_debug(fs, "utimens", path);
	return fs->op.utimens(path, tv, fi);
}

int fuse_fs_access(struct fuse_fs *fs, const char *path, int mask)
{
	if (!FS_ENTER(fs, access))
		return -ENOSYS;
	fs_debug(fs, "access", path);
	return fs->op.access(path, mask);
}

int fuse_fs_readlink(struct fuse_fs *fs, const char *path, char *buf, size_t len)
{
	if (!FS_ENTER(fs, readlink))
		return -ENOSYS;
	fs_debug(fs, "readlink", path);
	return fs->op.readlink(path, buf, len);
}

int fuse_fs_mknod(struct fuse_fs *fs, const char *path, mode_t mode, dev_t rdev)
{
	if (!FS_ENTER(fs, mknod))
		return -ENOSYS;
	fs_debug(fs, "mknod", path);
	return fs->op.mknod(path, mode, rdev);
}

int fuse_fs_mkdir(struct fuse_fs *fs, const char *path, mode_t mode)
{
	if (!FS_ENTER(fs, mkdir))
		return -ENOSYS;
	fs_debug(fs, "mkdir", path);
	return fs->op.mkdir(path, mode);
}

int fuse_fs_setxattr(struct fuse_fs *fs, const char *path, const char *name,
		     const char *value, size_t size, int flags)
{
	if (!FS_ENTER(fs, setxattr))
		return -ENOSYS;
	fs_debug(fs, "setxattr", path);
	return fs->op.setxattr(path, name, value, size, flags);
}

int fuse_fs_getxattr(struct fuse_fs *fs, const char *path, const char *name, char *value,
		     size_t size)
{
	if (!FS_ENTER(fs, getxattr))
		return -ENOSYS;
	fs_debug(fs, "getxattr", path);
	return fs->op.getxattr(path, name, value, size);
}

int fuse_fs_listxattr(struct fuse_fs *fs, const char *path, char *list, size_t size)
{
	if (!FS_ENTER(fs, listxattr))
		return -ENOSYS;
	fs_debug(fs, "listxattr", path);
	return fs->op.listxattr(path, list, size);
}

int fuse_fs_removexattr(struct fuse_fs *fs, const char *path, const char *name)
{
	if (!FS_ENTER(fs, removexattr))
		return -ENOSYS;
	fs_debug(fs, "removexattr", path);
	return fs->op.removexattr(path, name);
}

int fuse_fs_chmod(struct fuse_fs *fs, const char *path, mode_t mode,
		  struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, chmod))
		return -ENOSYS;
	fs_debug(fs, "chmod", path);
	return fs->op.chmod(path, mode, fi);
}

int fuse_fs_bmap(struct fuse_fs *fs, const char *path, size_t blocksize, uint64_t *idx)
{
	if (!FS_ENTER(fs, bmap))
		return -ENOSYS;
	fs_debug(fs, "bmap", path);
	return fs->op.bmap(path, blocksize, idx);
}

int fuse_fs_ioctl(struct fuse_fs *fs, const char *path, unsigned int cmd, void *arg,
		  struct fuse_file_info *fi, unsigned int flags, void *data)
{
	if (!FS_ENTER(fs, ioctl))
		return -ENOSYS;
	fs_debug(fs, "ioctl", path);
	return fs->op.ioctl(path, cmd, arg, fi, flags, data);
}

int fuse_fs_poll(struct fuse_fs *fs, const char *path, struct fuse_file_info *fi,
		 struct fuse_pollhandle *ph, unsigned *reventsp)
{
	if (!FS_ENTER(fs, poll))
		return -ENOSYS;
	fs_debug(fs, "poll", path);
	return fs->op.poll(path, fi, ph, reventsp);
}

int fuse_fs_fallocate(struct fuse_fs *fs, const char *path, int mode, off_t offset,
		      off_t length, struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, fallocate))
		return -ENOSYS;
	fs_debug(fs, "fallocate", path);
	return fs->op.fallocate(path, mode, offset, length, fi);
}

ssize_t fuse_fs_copy_file_range(struct fuse_fs *fs, const char *path_in,
				struct fuse_file_info *fi_in, off_t off_in,
				const char *path_out, struct fuse_file_info *fi_out,
				off_t off_out, size_t len, int flags)
{
	if (!FS_ENTER(fs, copy_file_range))
		return -ENOSYS;
	fs_debug(fs, "copy_file_range", path_out);
	return fs->op.copy_file_range(path_in, fi_in, off_in, path_out, fi_out, off_out,
				      len, flags);
}

off_t fuse_fs_lseek(struct fuse_fs *fs, const char *path, off_t off, int whence,
		    struct fuse_file_info *fi)
{
	if (!FS_ENTER(fs, lseek))
		return -ENOSYS;
	fs_debug(fs, "lseek", path);
	return fs->op.lseek(path, off, whence, fi);
}
