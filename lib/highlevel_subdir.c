/*
 * The built-in "subdir" module (-o modules=subdir,subdir=DIR): the layer
 * below sees every path with DIR in front, so the mount shows only DIR.
 * With -o rellinks, a symlink whose absolute target lies under DIR reads
 * as a relative link, so it still points at the same file in the mount.
 */
#include "highlevel.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct subdir {
	char *base;	/* no trailing '/' ("" for "/") */
	size_t baselen;
	int rellinks;
	struct fuse_fs *next;
};

struct subdir_opts {
	char *base;
	int rellinks;
};

static const struct fuse_opt subdir_opt_spec[] = {
	{ "subdir=%s", offsetof(struct subdir_opts, base), 0 },
	{ "rellinks", offsetof(struct subdir_opts, rellinks), 1 },
	{ "norellinks", offsetof(struct subdir_opts, rellinks), 0 },
	FUSE_OPT_END
};

static struct subdir *subdir_of_context(void)
{
	return fuse_get_context()->private_data;
}

/* base + path in a new string, or NULL when out of memory. NULL in, NULL
 * out (an open handle without a path). */
static int subdir_path(struct subdir *d, const char *path, char **out)
{
	size_t len;

	*out = NULL;
	if (!path)
		return 0;
	if (!d->baselen) {
		*out = strdup(path);
		return *out ? 0 : -ENOMEM;
	}
	if (strcmp(path, "/") == 0)
		path = "";
	len = d->baselen + strlen(path) + 1;
	*out = malloc(len);
	if (!*out)
		return -ENOMEM;
	snprintf(*out, len, "%s%s", d->base, path);
	return 0;
}

/* The common shape: map one path, call the layer below, free. */
#define SUBDIR_CALL(path, call)                                                \
	do {                                                                   \
		struct subdir *d = subdir_of_context();                        \
		char *p;                                                       \
		int err_ = subdir_path(d, path, &p);                           \
		if (!err_) {                                                   \
			err_ = (call);                                         \
			free(p);                                               \
		}                                                              \
		return err_;                                                   \
	} while (0)

static int sd_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_getattr(d->next, p, st, fi));
}

static int sd_access(const char *path, int mask)
{
	SUBDIR_CALL(path, fuse_fs_access(d->next, p, mask));
}

/* "../" for each directory between the link and the mount's root. */
static int subdir_relative(char *buf, size_t size, const char *link_path,
			   const char *target)
{
	size_t ups = 0, need;
	char *rel;

	for (const char *s = link_path + 1; *s; s++)
		ups += *s == '/';
	need = ups * 3 + strlen(target) + 2;
	rel = malloc(need);
	if (!rel)
		return -ENOMEM;
	rel[0] = '\0';
	for (size_t i = 0; i < ups; i++)
		strcat(rel, "../");
	strcat(rel, *target ? target : ".");
	snprintf(buf, size, "%s", rel);
	free(rel);
	return 0;
}

static int sd_readlink(const char *path, char *buf, size_t size)
{
	struct subdir *d = subdir_of_context();
	char *p;
	int err = subdir_path(d, path, &p);

	if (err)
		return err;
	err = fuse_fs_readlink(d->next, p, buf, size);
	free(p);
	if (err || !d->rellinks || buf[0] != '/' || !d->baselen ||
	    strncmp(buf, d->base, d->baselen) != 0 ||
	    (buf[d->baselen] != '/' && buf[d->baselen] != '\0'))
		return err;
	{
		char *target = strdup(buf + d->baselen + (buf[d->baselen] == '/'));

		if (!target)
			return -ENOMEM;
		err = subdir_relative(buf, size, path, target);
		free(target);
	}
	return err;
}

static int sd_opendir(const char *path, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_opendir(d->next, p, fi));
}

static int sd_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	SUBDIR_CALL(path, fuse_fs_readdir(d->next, p, buf, filler, off, fi, flags));
}

static int sd_releasedir(const char *path, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_releasedir(d->next, p, fi));
}

static int sd_mknod(const char *path, mode_t mode, dev_t rdev)
{
	SUBDIR_CALL(path, fuse_fs_mknod(d->next, p, mode, rdev));
}

static int sd_mkdir(const char *path, mode_t mode)
{
	SUBDIR_CALL(path, fuse_fs_mkdir(d->next, p, mode));
}

static int sd_unlink(const char *path)
{
	SUBDIR_CALL(path, fuse_fs_unlink(d->next, p));
}

static int sd_rmdir(const char *path)
{
	SUBDIR_CALL(path, fuse_fs_rmdir(d->next, p));
}

static int sd_symlink(const char *target, const char *path)
{
	SUBDIR_CALL(path, fuse_fs_symlink(d->next, target, p));
}

/* Two paths: map both. */
static int sd_two(const char *from, const char *to, unsigned int flags, int is_link)
{
	struct subdir *d = subdir_of_context();
	char *pf, *pt;
	int err = subdir_path(d, from, &pf);

	if (err)
		return err;
	err = subdir_path(d, to, &pt);
	if (!err) {
		err = is_link ? fuse_fs_link(d->next, pf, pt)
			      : fuse_fs_rename(d->next, pf, pt, flags);
		free(pt);
	}
	free(pf);
	return err;
}

static int sd_rename(const char *from, const char *to, unsigned int flags)
{
	return sd_two(from, to, flags, 0);
}

static int sd_link(const char *from, const char *to)
{
	return sd_two(from, to, 0, 1);
}

static int sd_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_chmod(d->next, p, mode, fi));
}

static int sd_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_chown(d->next, p, uid, gid, fi));
}

static int sd_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_truncate(d->next, p, size, fi));
}

static int sd_utimens(const char *path, const struct timespec ts[2],
		      struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_utimens(d->next, p, ts, fi));
}

static int sd_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_create(d->next, p, mode, fi));
}

static int sd_open(const char *path, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_open(d->next, p, fi));
}

static int sd_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_read_buf(d->next, p, bufp, size, off, fi));
}

static int sd_write_buf(const char *path, struct fuse_bufvec *buf, off_t off,
			struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_write_buf(d->next, p, buf, off, fi));
}

static int sd_statfs(const char *path, struct statvfs *st)
{
	SUBDIR_CALL(path, fuse_fs_statfs(d->next, p, st));
}

static int sd_flush(const char *path, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_flush(d->next, p, fi));
}

static int sd_release(const char *path, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_release(d->next, p, fi));
}

static int sd_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_fsync(d->next, p, datasync, fi));
}

static int sd_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_fsyncdir(d->next, p, datasync, fi));
}

static int sd_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	SUBDIR_CALL(path, fuse_fs_setxattr(d->next, p, name, value, size, flags));
}

static int sd_getxattr(const char *path, const char *name, char *value, size_t size)
{
	SUBDIR_CALL(path, fuse_fs_getxattr(d->next, p, name, value, size));
}

static int sd_listxattr(const char *path, char *list, size_t size)
{
	SUBDIR_CALL(path, fuse_fs_listxattr(d->next, p, list, size));
}

static int sd_removexattr(const char *path, const char *name)
{
	SUBDIR_CALL(path, fuse_fs_removexattr(d->next, p, name));
}

static int sd_lock(const char *path, struct fuse_file_info *fi, int cmd, struct flock *lock)
{
	SUBDIR_CALL(path, fuse_fs_lock(d->next, p, fi, cmd, lock));
}

static int sd_flock(const char *path, struct fuse_file_info *fi, int op)
{
	SUBDIR_CALL(path, fuse_fs_flock(d->next, p, fi, op));
}

static int sd_bmap(const char *path, size_t blocksize, uint64_t *idx)
{
	SUBDIR_CALL(path, fuse_fs_bmap(d->next, p, blocksize, idx));
}

static int sd_ioctl(const char *path, unsigned int cmd, void *arg, struct fuse_file_info *fi,
		    unsigned int flags, void *data)
{
	SUBDIR_CALL(path, fuse_fs_ioctl(d->next, p, cmd, arg, fi, flags, data));
}

static int sd_poll(const char *path, struct fuse_file_info *fi, struct fuse_pollhandle *ph,
		   unsigned *reventsp)
{
	SUBDIR_CALL(path, fuse_fs_poll(d->next, p, fi, ph, reventsp));
}

static int sd_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	SUBDIR_CALL(path, fuse_fs_fallocate(d->next, p, mode, off, len, fi));
}

static ssize_t sd_copy_file_range(const char *path_in, struct fuse_file_info *fi_in,
				  off_t off_in, const char *path_out,
				  struct fuse_file_info *fi_out, off_t off_out, size_t len,
				  int flags)
{
	struct subdir *d = subdir_of_context();
	char *pi, *po;
	ssize_t res = subdir_path(d, path_in, &pi);

	if (res)
		return res;
	res = subdir_path(d, path_out, &po);
	if (!res) {
		res = fuse_fs_copy_file_range(d->next, pi, fi_in, off_in, po, fi_out,
					      off_out, len, flags);
		free(po);
	}
	free(pi);
	return res;
}

static off_t sd_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
	struct subdir *d = subdir_of_context();
	char *p;
	off_t res = subdir_path(d, path, &p);

	if (res)
		return res;
	res = fuse_fs_lseek(d->next, p, off, whence, fi);
	free(p);
	return res;
}

static void *sd_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct subdir *d = subdir_of_context();

	fuse_fs_init(d->next, conn, cfg);
	return d;
}

static void sd_destroy(void *data)
{
	struct subdir *d = data;

	fuse_fs_destroy(d->next);
	free(d->base);
	free(d);
}

static const struct fuse_operations subdir_ops = {
	.getattr = sd_getattr,
	.readlink = sd_readlink,
	.mknod = sd_mknod,
	.mkdir = sd_mkdir,
	.unlink = sd_unlink,
	.rmdir = sd_rmdir,
	.symlink = sd_symlink,
	.rename = sd_rename,
	.link = sd_link,
	.chmod = sd_chmod,
	.chown = sd_chown,
	.truncate = sd_truncate,
	.open = sd_open,
	.statfs = sd_statfs,
	.flush = sd_flush,
	.release = sd_release,
	.fsync = sd_fsync,
	.setxattr = sd_setxattr,
	.getxattr = sd_getxattr,
	.listxattr = sd_listxattr,
	.removexattr = sd_removexattr,
	.opendir = sd_opendir,
	.readdir = sd_readdir,
	.releasedir = sd_releasedir,
	.fsyncdir = sd_fsyncdir,
	.init = sd_init,
	.destroy = sd_destroy,
	.access = sd_access,
	.create = sd_create,
	.lock = sd_lock,
	.utimens = sd_utimens,
	.bmap = sd_bmap,
	.ioctl = sd_ioctl,
	.poll = sd_poll,
	.write_buf = sd_write_buf,
	.read_buf = sd_read_buf,
	.flock = sd_flock,
	.fallocate = sd_fallocate,
	.copy_file_range = sd_copy_file_range,
	.lseek = sd_lseek,
};

void hl_subdir_help(void)
{
	printf("    -o subdir=DIR          prepend this directory to all paths (mandatory)\n"
	       "    -o [no]rellinks        make absolute symlinks into DIR relative (off)\n");
}

struct fuse_fs *hl_subdir_factory(struct fuse_args *args, struct fuse_fs *fs[])
{
	struct subdir_opts o = { NULL, 0 };
	struct subdir *d;
	struct fuse_fs *top;

	if (!fs[0] || fs[1]) {
		fuse_log(FUSE_LOG_ERR, "fuse: subdir: needs exactly one layer below\n");
		return NULL;
	}
	if (fuse_opt_parse(args, &o, subdir_opt_spec, NULL) == -1)
		return NULL;
	if (!o.base) {
		fuse_log(FUSE_LOG_ERR, "fuse: subdir: missing -o subdir=DIR\n");
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		goto out_nomem;
	d->base = o.base;
	d->baselen = strlen(d->base);
	while (d->baselen && d->base[d->baselen - 1] == '/')
		d->base[--d->baselen] = '\0';
	d->rellinks = o.rellinks;
	d->next = fs[0];
	top = fuse_fs_new(&subdir_ops, sizeof(subdir_ops), d);
	if (!top) {
		free(d);
		free(o.base);
		return NULL;
	}
	return top;

out_nomem:
	fuse_log(FUSE_LOG_ERR, "fuse: subdir: out of memory\n");
	free(o.base);
	return NULL;
}
