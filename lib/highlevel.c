/*
 * The path-based high-level API of <fuse.h>, written purely against the
 * public low-level API: each low-level request becomes the path of its
 * inode (lib/highlevel_nodes.c) and a call of the top struct fuse_fs layer
 * (lib/highlevel_fs.c), which is the file system's fuse_operations or a
 * module stacked on them (lib/highlevel_modules.c).
 */
#include "compat.h"
#include "highlevel.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* -o intr's default signal, as libfuse's. */
#define HL_DEFAULT_INTR_SIGNAL SIGUSR1

/* An open directory: what the file system's opendir() saw, plus a listing
 * collected from readdir() when it does not use offsets. */
struct hl_dirent {
	char *name;
	struct stat st;
	bool plus;		/* st is complete (FUSE_FILL_DIR_PLUS) */
};

struct hl_dir {
	struct fuse_file_info fi;	/* the file system's view of the handle */
	pthread_mutex_t lock;
	int cached;			/* ents holds the whole directory */
	struct hl_dirent *ents;
	size_t count, cap;
};

/* ------------------------------------------------------------------ */
/* Request context                                                     */

static __thread struct fuse_context hl_context;
static __thread fuse_req_t hl_current_req;

static void hl_interrupt(fuse_req_t req, void *data)
{
	struct fuse *f = fuse_req_userdata(req);

	/* Interrupts the callback's system call (EINTR); the handler is empty. */
	pthread_kill(*(pthread_t *)data, f->cfg.intr_signal);
}

static struct fuse *req_begin(fuse_req_t req)
{
	static __thread pthread_t self;
	struct fuse *f = fuse_req_userdata(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);

	hl_current_req = req;
	hl_context.fuse = f;
	hl_context.private_data = f->fs->user_data;
	hl_context.uid = c->uid;
	hl_context.gid = c->gid;
	hl_context.pid = c->pid;
	hl_context.umask = c->umask;
	if (f->cfg.intr) {
		self = pthread_self();
		fuse_req_interrupt_func(req, hl_interrupt, &self);
	}
	return f;
}

struct fuse_context *fuse_get_context(void)
{
	return &hl_context;
}

int fuse_getgroups(int size, gid_t list[])
{
	if (!hl_current_req)
		return -EINVAL;
	return fuse_req_getgroups(hl_current_req, size, list);
}

int fuse_interrupted(void)
{
	return hl_current_req ? fuse_req_interrupted(hl_current_req) : 0;
}

/* ------------------------------------------------------------------ */
/* Paths                                                               */

/*
 * The path for an operation on an open handle. With nullpath_ok the file
 * system said it works from fi alone: it gets NULL. Otherwise it gets the
 * path, or NULL when the file has none any more (unlinked while open with
 * hard_remove), as libfuse does.
 */
static int handle_path(struct fuse *f, fuse_ino_t ino, char **path)
{
	int err;

	*path = NULL;
	if (f->cfg.nullpath_ok)
		return 0;
	err = hl_node_path(f, ino, NULL, path);
	if (err == -ENOENT) {
		*path = NULL;
		return 0;
	}
	return err;
}

/* getattr, setattr: a handle's path rules when the client named a handle. */
static int inode_path(struct fuse *f, fuse_ino_t ino, struct fuse_file_info *fi,
		      char **path)
{
	return fi ? handle_path(f, ino, path) : hl_node_path(f, ino, NULL, path);
}

/* ------------------------------------------------------------------ */
/* Attributes and entries                                              */

static void fix_attr(struct fuse *f, struct stat *st, fuse_ino_t ino)
{
	if (!f->cfg.use_ino)
		st->st_ino = ino;
	if (f->cfg.set_mode) {
		mode_t mask = f->cfg.umask;

		if (S_ISDIR(st->st_mode) && f->cfg.dmask)
			mask = f->cfg.dmask;
		else if (!S_ISDIR(st->st_mode) && f->cfg.fmask)
			mask = f->cfg.fmask;
		st->st_mode = (st->st_mode & S_IFMT) | (0777 & ~mask);
	}
	if (f->cfg.set_uid)
		st->st_uid = f->cfg.uid;
	if (f->cfg.set_gid)
		st->st_gid = f->cfg.gid;
}

static int call_getattr(struct fuse *f, const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	memset(st, 0, sizeof(*st));
	return fuse_fs_getattr(f->fs, path, st, fi);
}

/* Stats path, and on success takes a lookup reference on (parent, name). */
static int make_entry(struct fuse *f, fuse_ino_t parent, const char *name, const char *path,
		      struct fuse_file_info *fi, struct fuse_entry_param *e)
{
	int err;

	memset(e, 0, sizeof(*e));
	err = call_getattr(f, path, &e->attr, fi);
	if (err)
		return err;
	err = hl_node_lookup(f, parent, name, &e->attr, &e->ino);
	if (err)
		return err;
	fix_attr(f, &e->attr, e->ino);
	e->attr_timeout = f->cfg.attr_timeout;
	e->entry_timeout = f->cfg.entry_timeout;
	return 0;
}

static void reply_entry_or_err(fuse_req_t req, struct fuse *f, int err,
			       const struct fuse_entry_param *e)
{
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	/* The kernel did not take the reference if it dropped the request. */
	if (fuse_reply_entry(req, e) == -ENOENT)
		hl_node_forget(f, e->ino, 1);
}

/* Reply for a successful positive return, else the errno. */
static void reply_status(fuse_req_t req, int res)
{
	fuse_reply_err(req, res < 0 ? -res : 0);
}

/* ------------------------------------------------------------------ */
/* Low-level callbacks: life cycle                                     */

static void intr_signal_handler(int sig)
{
	(void)sig;	/* only there to interrupt a system call */
}

/* cfg.intr: give intr_signal an empty handler unless someone set one. */
static void intr_install(struct fuse *f)
{
	struct sigaction sa;

	if (sigaction(f->cfg.intr_signal, NULL, &f->intr_old) != 0 ||
	    f->intr_old.sa_handler != SIG_DFL)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = intr_signal_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(f->cfg.intr_signal, &sa, NULL) == 0)
		f->intr_installed = true;
}

static void hl_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fuse *f = userdata;

	memset(&hl_context, 0, sizeof(hl_context));
	hl_context.fuse = f;
	hl_context.private_data = f->fs->user_data;
	fuse_fs_init(f->fs, conn, &f->cfg);
	if (f->cfg.intr)
		intr_install(f);
	if (f->cfg.debug)
		fuse_log(FUSE_LOG_DEBUG, "fuse: high-level: nullpath_ok %d, hard_remove %d, "
			 "use_ino %d, remember %d, auto_cache %d\n", f->cfg.nullpath_ok,
			 f->cfg.hard_remove, f->cfg.use_ino, f->cfg.remember,
			 f->cfg.auto_cache);
}

static void hl_destroy(void *userdata)
{
	struct fuse *f = userdata;

	memset(&hl_context, 0, sizeof(hl_context));
	hl_context.fuse = f;
	hl_context.private_data = f->fs->user_data;
	fuse_fs_destroy(f->fs);
}

/* ------------------------------------------------------------------ */
/* Low-level callbacks: names                                          */

static void hl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse *f = req_begin(req);
	struct fuse_entry_param e;
	char *path;
	int err = hl_node_path(f, parent, name, &path);

	if (!err) {
		err = make_entry(f, parent, name, path, NULL, &e);
		free(path);
	}
	if (err == -ENOENT && f->cfg.negative_timeout > 0) {
		/* ino 0 with a timeout: the kernel caches the absence */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = f->cfg.negative_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry_or_err(req, f, err, &e);
}

static void hl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	hl_node_forget(fuse_req_userdata(req), ino, nlookup);
	fuse_reply_none(req);
}

static void hl_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fuse *f = fuse_req_userdata(req);

	for (size_t i = 0; i < count; i++)
		hl_node_forget(f, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void hl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct stat st;
	char *path;
	int err = inode_path(f, ino, fi, &path);

	if (!err) {
		err = call_getattr(f, path, &st, fi);
		free(path);
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	/* The file system sees the hidden name; the client unlinked it. */
	if (hl_node_is_hidden(f, ino) && st.st_nlink > 0)
		st.st_nlink--;
	hl_node_update_stat(f, ino, &st);
	fix_attr(f, &st, ino);
	fuse_reply_attr(req, &st, f->cfg.attr_timeout);
}

static struct timespec setattr_time(int valid, int set, int now, struct timespec t)
{
	struct timespec ts = { 0, UTIME_OMIT };

	if (valid & now)
		ts.tv_nsec = UTIME_NOW;
	else if (valid & set)
		ts = t;
	return ts;
}

/* Applies the changes of one SETATTR in libfuse's order: mode, owner,
 * size, times. The first failure stops the rest. */
static int apply_setattr(struct fuse *f, const char *path, const struct stat *attr,
			 int valid, struct fuse_file_info *fi)
{
	int err = 0;

	if (valid & FUSE_SET_ATTR_MODE)
		err = fuse_fs_chmod(f->fs, path, attr->st_mode, fi);
	if (!err && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		err = fuse_fs_chown(f->fs, path, uid, gid, fi);
	}
	if (!err && (valid & FUSE_SET_ATTR_SIZE))
		err = fuse_fs_truncate(f->fs, path, attr->st_size, fi);
	if (!err && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2];

		tv[0] = setattr_time(valid, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW,
				     attr->st_atim);
		tv[1] = setattr_time(valid, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW,
				     attr->st_mtim);
		err = fuse_fs_utimens(f->fs, path, tv, fi);
	}
	return err;
}

static void hl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct stat st;
	char *path;
	int err = inode_path(f, ino, fi, &path);

	if (err)
		goto out_reply;
	err = apply_setattr(f, path, attr, valid, fi);
	if (!err)
		err = call_getattr(f, path, &st, fi);
	free(path);
out_reply:
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	hl_node_update_stat(f, ino, &st);
	fix_attr(f, &st, ino);
	fuse_reply_attr(req, &st, f->cfg.attr_timeout);
}

static void hl_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse *f = req_begin(req);
	char buf[PATH_MAX + 1];
	char *path;
	int err = hl_node_path(f, ino, NULL, &path);

	if (!err) {
		buf[0] = '\0';
		err = fuse_fs_readlink(f->fs, path, buf, sizeof(buf));
		free(path);
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	buf[sizeof(buf) - 1] = '\0';
	fuse_reply_readlink(req, buf);
}

/* mknod of a regular file tries create + release first, as libfuse does,
 * so a file system that only has create() still gets mknod. */
static int call_mknod(struct fuse *f, const char *path, mode_t mode, dev_t rdev)
{
	struct fuse_file_info fi;
	int err;

	if (S_ISREG(mode) && f->fs->op.create) {
		memset(&fi, 0, sizeof(fi));
		fi.flags = O_CREAT | O_EXCL | O_WRONLY;
		err = fuse_fs_create(f->fs, path, mode, &fi);
		if (!err)
			fuse_fs_release(f->fs, path, &fi);
		if (err != -ENOSYS)
			return err;
	}
	return fuse_fs_mknod(f->fs, path, mode, rdev);
}

/* Shared tail of mknod, mkdir, symlink, link: reply the new entry. */
static void reply_new_entry(fuse_req_t req, struct fuse *f, int err, fuse_ino_t parent,
			    const char *name, char *path)
{
	struct fuse_entry_param e;

	if (!err)
		err = make_entry(f, parent, name, path, NULL, &e);
	free(path);
	reply_entry_or_err(req, f, err, &e);
}

static void hl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct fuse *f = req_begin(req);
	char *path = NULL;
	int err = hl_node_path(f, parent, name, &path);

	if (!err)
		err = call_mknod(f, path, mode, rdev);
	reply_new_entry(req, f, err, parent, name, path);
}

static void hl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse *f = req_begin(req);
	char *path = NULL;
	int err = hl_node_path(f, parent, name, &path);

	if (!err)
		err = fuse_fs_mkdir(f->fs, path, mode);
	reply_new_entry(req, f, err, parent, name, path);
}

static void hl_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	struct fuse *f = req_begin(req);
	char *path = NULL;
	int err = hl_node_path(f, parent, name, &path);

	if (!err)
		err = fuse_fs_symlink(f->fs, target, path);
	reply_new_entry(req, f, err, parent, name, path);
}

static void hl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct fuse *f = req_begin(req);
	char *from = NULL, *to = NULL;
	int err = hl_node_path(f, ino, NULL, &from);

	if (!err)
		err = hl_node_path(f, newparent, newname, &to);
	if (!err)
		err = fuse_fs_link(f->fs, from, to);
	free(from);
	reply_new_entry(req, f, err, newparent, newname, to);
}

/* Unlinks the hidden file a closed handle left (see hide_open_file). */
static void unlink_hidden(struct fuse *f, char *hidden)
{
	fuse_ino_t ino = hl_node_find_path(f, hidden);
	const char *slash = strrchr(hidden, '/');
	fuse_ino_t parent;
	char *dir;

	if (fuse_fs_unlink(f->fs, hidden) != 0 || !ino || !slash)
		goto out_free;
	dir = strndup(hidden, slash > hidden ? (size_t)(slash - hidden) : 1);
	parent = dir ? hl_node_find_path(f, dir) : 0;
	if (parent)
		hl_node_remove_name(f, parent, slash + 1);
	free(dir);
out_free:
	free(hidden);
}

/*
 * Without hard_remove, unlinking (or renaming over) a file that is still
 * open renames it to .fuse_hidden* in the same directory instead, so the
 * open handles keep a path; the last release unlinks it.
 */
static int hide_open_file(struct fuse *f, fuse_ino_t parent, const char *name,
			  const char *path)
{
	char *hidden = NULL, *hidden_path = NULL;
	struct stat st;
	bool unlink_now;
	int err, tries;

	for (tries = 0; tries < 10; tries++) {
		free(hidden);
		free(hidden_path);
		hidden_path = NULL;
		err = hl_node_hidden_name(f, parent, name, &hidden);
		if (!err)
			err = hl_node_path(f, parent, hidden, &hidden_path);
		if (err)
			goto out_free;
		/* The name must be free in the file system too. */
		if (call_getattr(f, hidden_path, &st, NULL) == -ENOENT)
			break;
	}
	if (tries == 10) {
		err = -EBUSY;
		goto out_free;
	}
	err = fuse_fs_rename(f->fs, path, hidden_path, 0);
	if (err)
		goto out_free;
	hl_node_hide(f, parent, name, hidden, &unlink_now);
	if (unlink_now) {
		unlink_hidden(f, hidden_path);
		hidden_path = NULL;
	}
out_free:
	free(hidden);
	free(hidden_path);
	return err;
}

static void hl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = hl_node_path(f, parent, name, &path);

	if (err)
		goto out_reply;
	if (!f->cfg.hard_remove && hl_node_is_open(f, parent, name)) {
		err = hide_open_file(f, parent, name, path);
	} else {
		err = fuse_fs_unlink(f->fs, path);
		if (!err)
			hl_node_remove_name(f, parent, name);
	}
	free(path);
out_reply:
	reply_status(req, err);
}

static void hl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = hl_node_path(f, parent, name, &path);

	if (!err) {
		err = fuse_fs_rmdir(f->fs, path);
		free(path);
	}
	if (!err)
		hl_node_remove_name(f, parent, name);
	reply_status(req, err);
}

static void hl_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fuse *f = req_begin(req);
	char *from = NULL, *to = NULL;
	int err = hl_node_path(f, parent, name, &from);

	if (!err)
		err = hl_node_path(f, newparent, newname, &to);
	/* An open file about to be replaced keeps a hidden name. */
	if (!err && !f->cfg.hard_remove && !(flags & RENAME_EXCHANGE) &&
	    hl_node_is_open(f, newparent, newname))
		err = hide_open_file(f, newparent, newname, to);
	if (!err)
		err = fuse_fs_rename(f->fs, from, to, flags);
	if (!err)
		hl_node_rename(f, parent, name, newparent, newname, flags);
	free(from);
	free(to);
	reply_status(req, err);
}

/* ------------------------------------------------------------------ */
/* Low-level callbacks: open files                                     */

static void apply_open_config(struct fuse *f, struct fuse_file_info *fi)
{
	if (f->cfg.direct_io)
		fi->direct_io = 1;
	if (f->cfg.kernel_cache)
		fi->keep_cache = 1;
	if (fi->direct_io && f->cfg.parallel_direct_writes)
		fi->parallel_direct_writes = 1;
}

/* auto_cache: keep the client's cache only while mtime and size hold. */
static void open_auto_cache(struct fuse *f, fuse_ino_t ino, const char *path,
			    struct fuse_file_info *fi)
{
	struct stat st;

	if (hl_node_stat_stale(f, ino, f->cfg.ac_attr_timeout) &&
	    call_getattr(f, path, &st, fi) == 0)
		hl_node_update_stat(f, ino, &st);
	if (hl_node_cache_keep(f, ino))
		fi->keep_cache = 1;
}

static void hl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = hl_node_path(f, ino, NULL, &path);

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	err = fuse_fs_open(f->fs, path, fi);
	if (err) {
		fuse_reply_err(req, -err);
		goto out_free;
	}
	apply_open_config(f, fi);
	if (f->cfg.auto_cache)
		open_auto_cache(f, ino, path, fi);
	if (f->cfg.no_rofd_flush && (fi->flags & O_ACCMODE) == O_RDONLY)
		fi->noflush = 1;
	hl_node_open(f, ino);
	/* An interrupted open leaves nobody to release the handle but us. */
	if (fuse_reply_open(req, fi) == -ENOENT) {
		char *hidden;

		fuse_fs_release(f->fs, path, fi);
		hl_node_close(f, ino, &hidden);
		if (hidden)
			unlink_hidden(f, hidden);
	}
out_free:
	free(path);
}

static void hl_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct fuse_entry_param e;
	char *path;
	int err = hl_node_path(f, parent, name, &path);

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	err = fuse_fs_create(f->fs, path, mode, fi);
	if (err) {
		fuse_reply_err(req, -err);
		goto out_free;
	}
	err = make_entry(f, parent, name, path, fi, &e);
	if (!err && !S_ISREG(e.attr.st_mode)) {
		hl_node_forget(f, e.ino, 1);
		err = -EIO;	/* create() made something else than a file */
	}
	if (err) {
		fuse_fs_release(f->fs, path, fi);
		fuse_reply_err(req, -err);
		goto out_free;
	}
	apply_open_config(f, fi);
	hl_node_open(f, e.ino);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		char *hidden;

		fuse_fs_release(f->fs, path, fi);
		hl_node_close(f, e.ino, &hidden);
		if (hidden)
			unlink_hidden(f, hidden);
		hl_node_forget(f, e.ino, 1);
	}
out_free:
	free(path);
}

static void free_bufvec(struct fuse_bufvec *bv)
{
	if (!bv)
		return;
	for (size_t i = 0; i < bv->count; i++)
		if (!(bv->buf[i].flags & FUSE_BUF_IS_FD))
			free(bv->buf[i].mem);
	free(bv);
}

static void hl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct fuse_bufvec *bv = NULL;
	char *path;
	int res = handle_path(f, ino, &path);

	if (!res)
		res = fuse_fs_read_buf(f->fs, path, &bv, size, off, fi);
	free(path);
	if (res == 0 && fuse_buf_size(bv) > size)
		res = -EIO;	/* never hand the kernel more than it asked */
	if (res == 0)
		fuse_reply_data(req, bv, 0);
	else
		fuse_reply_err(req, -res);
	free_bufvec(bv);
}

static void hl_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
			 off_t off, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	char *path;
	int res = handle_path(f, ino, &path);

	if (!res)
		res = fuse_fs_write_buf(f->fs, path, bufv, off, fi);
	free(path);
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_write(req, (size_t)res);
}

/* Runs an fh operation whose result is just a status. */
#define HANDLE_OP(req, ino, call)                                              \
	do {                                                                   \
		struct fuse *f_ = req_begin(req);                              \
		char *path;                                                    \
		int err_ = handle_path(f_, ino, &path);                        \
		if (!err_) {                                                   \
			err_ = (call);                                         \
			free(path);                                            \
		}                                                              \
		reply_status(req, err_);                                       \
	} while (0)

/*
 * FLUSH: the file system's flush, then, if it does byte-range locks, the
 * release of this owner's POSIX locks (the kernel sends no UNLCK on close).
 */
static int flush_handle(struct fuse *f, const char *path, struct fuse_file_info *fi)
{
	int err = fuse_fs_flush(f->fs, path, fi);

	if (f->fs->op.lock) {
		struct flock lock;

		memset(&lock, 0, sizeof(lock));
		lock.l_type = F_UNLCK;
		lock.l_whence = SEEK_SET;
		fuse_fs_lock(f->fs, path, fi, F_SETLK, &lock);
	}
	return err == -ENOSYS ? 0 : err;
}

static void hl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse *f = fuse_req_userdata(req);

	HANDLE_OP(req, ino, flush_handle(f, path, fi));
}

static void hl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fuse *f = fuse_req_userdata(req);

	HANDLE_OP(req, ino, fuse_fs_fsync(f->fs, path, datasync, fi));
}

static void hl_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct fuse *f = fuse_req_userdata(req);

	HANDLE_OP(req, ino, fuse_fs_fallocate(f->fs, path, mode, off, len, fi));
}

/* release is always called: the file system frees its handle there. */
static void hl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	char *path = NULL, *hidden;

	if (handle_path(f, ino, &path) != 0)
		path = NULL;
	if (fi->flush)
		flush_handle(f, path, fi);
	if (fi->flock_release && f->fs->op.flock)
		fuse_fs_flock(f->fs, path, fi, LOCK_UN);
	fuse_fs_release(f->fs, path, fi);
	free(path);
	hl_node_close(f, ino, &hidden);
	if (hidden)
		unlink_hidden(f, hidden);
	fuse_reply_err(req, 0);
}

static void hl_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = handle_path(f, ino, &path);

	if (!err) {
		err = fuse_fs_lock(f->fs, path, fi, F_GETLK, lock);
		free(path);
	}
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_lock(req, lock);
}

static void hl_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	struct fuse *f = fuse_req_userdata(req);

	HANDLE_OP(req, ino, fuse_fs_lock(f->fs, path, fi, sleep ? F_SETLKW : F_SETLK, lock));
}

static void hl_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct fuse *f = fuse_req_userdata(req);

	HANDLE_OP(req, ino, fuse_fs_flock(f->fs, path, fi, op));
}

static void hl_bmap(fuse_req_t req, fuse_ino_t ino, size_t blocksize, uint64_t idx)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = hl_node_path(f, ino, NULL, &path);

	if (!err) {
		err = fuse_fs_bmap(f->fs, path, blocksize, &idx);
		free(path);
	}
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_bmap(req, idx);
}

static void hl_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	struct fuse *f = req_begin(req);
	unsigned revents = 0;
	char *path;
	int err = handle_path(f, ino, &path);

	if (!err) {
		err = fuse_fs_poll(f->fs, path, fi, ph, &revents);
		free(path);
	} else if (ph) {
		fuse_pollhandle_destroy(ph);
	}
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_poll(req, revents);
}

int fuse_notify_poll(struct fuse_pollhandle *ph)
{
	return fuse_lowlevel_notify_poll(ph);
}

static void hl_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	char *path;
	off_t res = handle_path(f, ino, &path);

	if (!res) {
		res = fuse_fs_lseek(f->fs, path, off, whence, fi);
		free(path);
	}
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_lseek(req, res);
}

static void hl_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out, size_t len,
			       int flags)
{
	struct fuse *f = req_begin(req);
	char *path_in = NULL, *path_out = NULL;
	ssize_t res = handle_path(f, ino_in, &path_in);

	if (!res)
		res = handle_path(f, ino_out, &path_out);
	if (!res)
		res = fuse_fs_copy_file_range(f->fs, path_in, fi_in, off_in, path_out, fi_out,
					      off_out, len, flags);
	free(path_in);
	free(path_out);
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_write(req, (size_t)res);
}

/*
 * Restricted ioctls only: the kernel already copied in the argument
 * (in_buf) and will copy out_bufsz bytes back, both sized by the command.
 * The file system reads and writes them through one buffer, "data".
 */
static void hl_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	struct fuse *f = req_begin(req);
	size_t size = in_bufsz > out_bufsz ? in_bufsz : out_bufsz;
	struct fuse_file_info *ufi = fi;
	char *path = NULL, *data = NULL;
	int res;

	if (flags & FUSE_IOCTL_UNRESTRICTED) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (flags & FUSE_IOCTL_DIR)
		ufi = &((struct hl_dir *)(uintptr_t)fi->fh)->fi;
	res = handle_path(f, ino, &path);
	if (res)
		goto out_reply;
	if (size) {
		data = calloc(1, size);
		if (!data) {
			res = -ENOMEM;
			goto out_reply;
		}
		if (in_bufsz)
			memcpy(data, in_buf, in_bufsz);
	}
	res = fuse_fs_ioctl(f->fs, path, cmd, arg, ufi, flags, data);
out_reply:
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_ioctl(req, res, out_bufsz ? data : NULL, out_bufsz);
	free(data);
	free(path);
}

/* ------------------------------------------------------------------ */
/* Low-level callbacks: directories                                    */

/* State of one readdir() call, handed to the file system as "buf". */
struct hl_fill {
	struct fuse *f;
	fuse_req_t req;
	fuse_ino_t dir_ino;
	struct hl_dir *dh;
	bool plus;		/* answering READDIRPLUS */
	char *buf;		/* the reply, when the fs uses offsets */
	size_t size, len;
	int uses_offsets;	/* -1 unknown, 0 no, 1 yes */
	int error;
};

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

static int cache_dirent(struct hl_dir *dh, const char *name, const struct stat *st, bool plus)
{
	if (dh->count == dh->cap) {
		size_t cap = dh->cap ? dh->cap * 2 : 32;
		struct hl_dirent *ents = realloc(dh->ents, cap * sizeof(*ents));

		if (!ents)
			return -ENOMEM;
		dh->ents = ents;
		dh->cap = cap;
	}
	dh->ents[dh->count].name = strdup(name);
	if (!dh->ents[dh->count].name)
		return -ENOMEM;
	dh->ents[dh->count].st = *st;
	dh->ents[dh->count].plus = plus;
	dh->count++;
	return 0;
}

/*
 * Adds one entry to the reply buffer; 1 when it does not fit. For
 * READDIRPLUS an entry with complete attributes becomes a lookup (the
 * client takes a reference on it); others go without attributes (ino 0:
 * the client looks them up itself).
 */
static int add_dirent(struct hl_fill *fl, const char *name, const struct stat *st,
		      bool plus, off_t next_off)
{
	struct fuse *f = fl->f;
	struct fuse_entry_param e;
	size_t need;

	if (!fl->plus) {
		struct stat small;

		need = fuse_add_direntry(fl->req, NULL, 0, name, NULL, 0);
		if (fl->len + need > fl->size)
			return 1;
		memset(&small, 0, sizeof(small));
		small.st_mode = st->st_mode & S_IFMT;
		small.st_ino = f->cfg.use_ino ? st->st_ino : hl_node_ino(f, fl->dir_ino, name);
		fuse_add_direntry(fl->req, fl->buf + fl->len, fl->size - fl->len, name, &small,
				  next_off);
		fl->len += need;
		return 0;
	}
	memset(&e, 0, sizeof(e));
	need = fuse_add_direntry_plus(fl->req, NULL, 0, name, &e, 0);
	if (fl->len + need > fl->size)
		return 1;
	e.attr = *st;
	if (plus && !is_dot_or_dotdot(name) &&
	    hl_node_lookup(f, fl->dir_ino, name, st, &e.ino) == 0) {
		fix_attr(f, &e.attr, e.ino);
		e.attr_timeout = f->cfg.attr_timeout;
		e.entry_timeout = f->cfg.entry_timeout;
	} else {
		e.attr.st_mode = st->st_mode & S_IFMT;
		e.attr.st_ino = f->cfg.use_ino ? st->st_ino : hl_node_ino(f, fl->dir_ino, name);
	}
	fuse_add_direntry_plus(fl->req, fl->buf + fl->len, fl->size - fl->len, name, &e,
			       next_off);
	fl->len += need;
	return 0;
}

static int hl_filler(void *buf, const char *name, const struct stat *stbuf, off_t off,
		     enum fuse_fill_dir_flags flags)
{
	struct hl_fill *fl = buf;
	int uses_offsets = off != 0;
	bool plus = stbuf && (flags & FUSE_FILL_DIR_PLUS);
	struct stat st;

	if (fl->uses_offsets >= 0 && fl->uses_offsets != uses_offsets) {
		fl->error = -EIO;	/* mixing both styles has no meaning */
		return 1;
	}
	fl->uses_offsets = uses_offsets;
	memset(&st, 0, sizeof(st));
	if (stbuf)
		st = *stbuf;
	if (uses_offsets)
		return add_dirent(fl, name, &st, plus, off);
	fl->error = cache_dirent(fl->dh, name, &st, plus);
	return fl->error ? 1 : 0;
}

static void dir_clear(struct hl_dir *dh)
{
	for (size_t i = 0; i < dh->count; i++)
		free(dh->ents[i].name);
	dh->count = 0;
	dh->cached = 0;
}

/* Calls the file system's readdir; entries land in fl->buf or dh->ents. */
static int fill_dir(struct fuse *f, fuse_ino_t ino, off_t off, struct hl_fill *fl)
{
	char *path;
	int err = handle_path(f, ino, &path);

	if (err)
		return err;
	if (off == 0)
		dir_clear(fl->dh);
	err = fuse_fs_readdir(f->fs, path, fl, hl_filler, off, &fl->dh->fi,
			      fl->plus ? FUSE_READDIR_PLUS : FUSE_READDIR_DEFAULTS);
	free(path);
	if (!err)
		err = fl->error;
	/* Listed everything at once (offset 0 for every entry): keep it. A
	 * call past the end that adds nothing says nothing about the style. */
	if (!err && off == 0 && fl->uses_offsets != 1)
		fl->dh->cached = 1;
	return err;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi, bool plus)
{
	struct fuse *f = req_begin(req);
	struct hl_dir *dh = (struct hl_dir *)(uintptr_t)fi->fh;
	struct hl_fill fl = { .f = f, .req = req, .dir_ino = ino, .dh = dh, .plus = plus,
			      .size = size, .uses_offsets = -1 };
	int err = 0;

	fl.buf = malloc(size ? size : 1);
	if (!fl.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&dh->lock);
	if (off == 0 || !dh->cached)
		err = fill_dir(f, ino, off, &fl);
	if (!err && dh->cached) {
		/* Our offsets into the collected listing: entry i is at i + 1. */
		for (size_t i = (size_t)off; i < dh->count; i++)
			if (add_dirent(&fl, dh->ents[i].name, &dh->ents[i].st,
				       dh->ents[i].plus, (off_t)i + 1))
				break;
	}
	pthread_mutex_unlock(&dh->lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, fl.buf, fl.len);
	free(fl.buf);
}

static void hl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void hl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void dir_free(struct hl_dir *dh)
{
	dir_clear(dh);
	free(dh->ents);
	pthread_mutex_destroy(&dh->lock);
	free(dh);
}

static void hl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct fuse_file_info out;
	struct hl_dir *dh;
	char *path;
	int err = hl_node_path(f, ino, NULL, &path);

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	dh = calloc(1, sizeof(*dh));
	if (!dh) {
		err = -ENOMEM;
		goto out_reply;
	}
	pthread_mutex_init(&dh->lock, NULL);
	dh->fi = *fi;
	err = fuse_fs_opendir(f->fs, path, &dh->fi);
	if (err) {
		dir_free(dh);
		goto out_reply;
	}
	out = dh->fi;	/* keep_cache, cache_readdir... as the fs chose */
	out.fh = (uintptr_t)dh;
	if (fuse_reply_open(req, &out) == -ENOENT) {
		fuse_fs_releasedir(f->fs, path, &dh->fi);
		dir_free(dh);
	}
out_reply:
	if (err)
		fuse_reply_err(req, -err);
	free(path);
}

static void hl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct hl_dir *dh = (struct hl_dir *)(uintptr_t)fi->fh;
	char *path = NULL;

	if (handle_path(f, ino, &path) != 0)
		path = NULL;
	fuse_fs_releasedir(f->fs, path, &dh->fi);
	free(path);
	dir_free(dh);
	fuse_reply_err(req, 0);
}

static void hl_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct fuse *f = fuse_req_userdata(req);
	struct hl_dir *dh = (struct hl_dir *)(uintptr_t)fi->fh;

	HANDLE_OP(req, ino, fuse_fs_fsyncdir(f->fs, path, datasync, &dh->fi));
}

/* ------------------------------------------------------------------ */
/* Low-level callbacks: file system wide, xattrs, access               */

static void hl_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse *f = req_begin(req);
	struct statvfs st;
	char *path;
	int err = hl_node_path(f, ino, NULL, &path);

	memset(&st, 0, sizeof(st));
	if (!err) {
		err = fuse_fs_statfs(f->fs, path, &st);
		free(path);
	}
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_statfs(req, &st);
}

static void hl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = hl_node_path(f, ino, NULL, &path);

	if (!err) {
		err = fuse_fs_setxattr(f->fs, path, name, value, size, flags);
		free(path);
	}
	reply_status(req, err);
}

static void hl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = hl_node_path(f, ino, NULL, &path);

	if (!err) {
		err = fuse_fs_removexattr(f->fs, path, name);
		free(path);
	}
	reply_status(req, err);
}

/* getxattr and listxattr: size 0 asks for the length only. */
static void reply_xattr_result(fuse_req_t req, int res, const char *buf, size_t size)
{
	if (res < 0)
		fuse_reply_err(req, -res);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)res);
	else if ((size_t)res > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)res);
}

static void hl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fuse *f = req_begin(req);
	char *path, *buf = NULL;
	int res = hl_node_path(f, ino, NULL, &path);

	if (res)
		goto out_reply;
	if (size && !(buf = malloc(size)))
		res = -ENOMEM;
	else
		res = fuse_fs_getxattr(f->fs, path, name, buf, size);
	free(path);
out_reply:
	reply_xattr_result(req, res, buf, size);
	free(buf);
}

static void hl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fuse *f = req_begin(req);
	char *path, *buf = NULL;
	int res = hl_node_path(f, ino, NULL, &path);

	if (res)
		goto out_reply;
	if (size && !(buf = malloc(size)))
		res = -ENOMEM;
	else
		res = fuse_fs_listxattr(f->fs, path, buf, size);
	free(path);
out_reply:
	reply_xattr_result(req, res, buf, size);
	free(buf);
}

static void hl_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = hl_node_path(f, ino, NULL, &path);

	if (!err) {
		err = fuse_fs_access(f->fs, path, mask);
		free(path);
	}
	reply_status(req, err);
}

static const struct fuse_lowlevel_ops hl_ops = {
	.init = hl_init,
	.destroy = hl_destroy,
	.lookup = hl_lookup,
	.forget = hl_forget,
	.getattr = hl_getattr,
	.setattr = hl_setattr,
	.readlink = hl_readlink,
	.mknod = hl_mknod,
	.mkdir = hl_mkdir,
	.unlink = hl_unlink,
	.rmdir = hl_rmdir,
	.symlink = hl_symlink,
	.rename = hl_rename,
	.link = hl_link,
	.open = hl_open,
	.read = hl_read,
	.flush = hl_flush,
	.release = hl_release,
	.fsync = hl_fsync,
	.opendir = hl_opendir,
	.readdir = hl_readdir,
	.releasedir = hl_releasedir,
	.fsyncdir = hl_fsyncdir,
	.statfs = hl_statfs,
	.setxattr = hl_setxattr,
	.getxattr = hl_getxattr,
	.listxattr = hl_listxattr,
	.removexattr = hl_removexattr,
	.access = hl_access,
	.create = hl_create,
	.getlk = hl_getlk,
	.setlk = hl_setlk,
	.bmap = hl_bmap,
	.ioctl = hl_ioctl,
	.poll = hl_poll,
	.write_buf = hl_write_buf,
	.forget_multi = hl_forget_multi,
	.flock = hl_flock,
	.fallocate = hl_fallocate,
	.readdirplus = hl_readdirplus,
	.copy_file_range = hl_copy_file_range,
	.lseek = hl_lseek,
};

/* ------------------------------------------------------------------ */
/* Options and help                                                    */

#define HL_OPT(templ, member, value) { templ, offsetof(struct fuse_config, member), value }

static const struct fuse_opt hl_opts[] = {
	/* -d is both ours (callback tracing) and the session's. */
	FUSE_OPT_KEY("debug", FUSE_OPT_KEY_KEEP),
	FUSE_OPT_KEY("-d", FUSE_OPT_KEY_KEEP),
	HL_OPT("debug", debug, 1),
	HL_OPT("-d", debug, 1),
	HL_OPT("kernel_cache", kernel_cache, 1),
	HL_OPT("auto_cache", auto_cache, 1),
	HL_OPT("noauto_cache", auto_cache, 0),
	HL_OPT("no_rofd_flush", no_rofd_flush, 1),
	HL_OPT("umask=", set_mode, 1),
	HL_OPT("umask=%o", umask, 0),
	HL_OPT("fmask=", set_mode, 1),
	HL_OPT("fmask=%o", fmask, 0),
	HL_OPT("dmask=", set_mode, 1),
	HL_OPT("dmask=%o", dmask, 0),
	HL_OPT("uid=", set_uid, 1),
	HL_OPT("uid=%u", uid, 0),
	HL_OPT("gid=", set_gid, 1),
	HL_OPT("gid=%u", gid, 0),
	HL_OPT("entry_timeout=%lf", entry_timeout, 0),
	HL_OPT("attr_timeout=%lf", attr_timeout, 0),
	HL_OPT("ac_attr_timeout=%lf", ac_attr_timeout, 0),
	HL_OPT("ac_attr_timeout=", ac_attr_timeout_set, 1),
	HL_OPT("negative_timeout=%lf", negative_timeout, 0),
	HL_OPT("noforget", remember, -1),
	HL_OPT("remember=%u", remember, 0),
	HL_OPT("modules=%s", modules, 0),
	HL_OPT("parallel_direct_write=%d", parallel_direct_writes, 0),
	/* Settings libfuse 3 leaves to init(); accepted here too. */
	HL_OPT("use_ino", use_ino, 1),
	HL_OPT("readdir_ino", readdir_ino, 1),
	HL_OPT("direct_io", direct_io, 1),
	HL_OPT("hard_remove", hard_remove, 1),
	HL_OPT("nullpath_ok", nullpath_ok, 1),
	HL_OPT("intr", intr, 1),
	HL_OPT("intr_signal=%d", intr_signal, 0),
	FUSE_OPT_END
};

void fuse_lib_help(struct fuse_args *args)
{
	(void)args;
	printf("    -o kernel_cache        keep cached file data across opens\n"
	       "    -o [no]auto_cache      keep it only while mtime and size hold (off)\n"
	       "    -o no_rofd_flush       no flush when a read-only handle closes (off)\n"
	       "    -o umask=M             permission bits M (octal) cleared from every mode\n"
	       "    -o fmask=M             the same for everything but directories\n"
	       "    -o dmask=M             the same for directories\n"
	       "    -o uid=N               report owner N for every file\n"
	       "    -o gid=N               report group N for every file\n"
	       "    -o entry_timeout=T     seconds names stay cached (1.0)\n"
	       "    -o negative_timeout=T  seconds missing names stay cached (0.0)\n"
	       "    -o attr_timeout=T      seconds attributes stay cached (1.0)\n"
	       "    -o ac_attr_timeout=T   age of attributes auto_cache trusts (attr_timeout)\n"
	       "    -o noforget            keep inode numbers the client forgot\n"
	       "    -o remember=T          keep them T seconds (0)\n"
	       "    -o modules=M1[:M2...]  modules to stack on the file system\n"
	       "    -o parallel_direct_write=1  direct writes to one file in parallel\n");
	fuse_lowlevel_help();
	hl_modules_help(NULL);
}

/* ------------------------------------------------------------------ */
/* Creating, running and destroying                                    */

static struct fuse *hl_new(struct fuse_args *args, const struct fuse_operations *op,
			   size_t op_size, void *user_data)
{
	struct fuse_lowlevel_ops llop = hl_ops;
	struct fuse *f = calloc(1, sizeof(*f));

	if (!f) {
		fuse_log(FUSE_LOG_ERR, "fuse_new: out of memory\n");
		return NULL;
	}
	f->cfg.entry_timeout = 1.0;
	f->cfg.attr_timeout = 1.0;
	f->cfg.intr_signal = HL_DEFAULT_INTR_SIGNAL;
	if (fuse_opt_parse(args, &f->cfg, hl_opts, NULL) == -1)
		goto out_free;
	if (!f->cfg.ac_attr_timeout_set)
		f->cfg.ac_attr_timeout = f->cfg.attr_timeout;
	f->fs = fuse_fs_new(op, op_size, user_data);
	if (!f->fs)
		goto out_free;
	f->fs->debug = f->cfg.debug;
	if (f->cfg.modules && hl_modules_push(&f->fs, f->cfg.modules, args) != 0)
		goto out_fs;
	/* Without a lock callback the kernel keeps byte-range locks itself. */
	if (!f->fs->op.lock) {
		llop.getlk = NULL;
		llop.setlk = NULL;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cleanup_wake, NULL);
	if (hl_nodes_init(f) != 0) {
		fuse_log(FUSE_LOG_ERR, "fuse_new: out of memory\n");
		goto out_mutex;
	}
	f->se = fuse_session_new(args, &llop, sizeof(llop), f);
	if (!f->se)
		goto out_nodes;	/* fuse_session_new said why */
	return f;

out_nodes:
	hl_nodes_free(f);
out_mutex:
	pthread_cond_destroy(&f->cleanup_wake);
	pthread_mutex_destroy(&f->lock);
out_fs:
	hl_fs_free_stack(f->fs);
out_free:
	free(f->cfg.modules);
	free(f);
	return NULL;
}

struct fuse *_fuse_new_31(struct fuse_args *args, const struct fuse_operations *op,
			  size_t op_size, struct libfuse_version *version, void *user_data)
{
	struct fuse *f = hl_new(args, op, op_size, user_data);

	if (f && f->cfg.debug && version && version->major)
		fuse_log(FUSE_LOG_DEBUG, "fuse: file system built against API %u.%u.%u\n",
			 version->major, version->minor, version->hotfix);
	return f;
}

/* API 3.0: fuse_new() itself answered -h/--help. */
struct fuse *_fuse_new_30(struct fuse_args *args, const struct fuse_operations *op,
			  size_t op_size, struct libfuse_version *version, void *user_data)
{
	static const struct fuse_opt help_opts[] = {
		HL_OPT("-h", show_help, 1),
		HL_OPT("--help", show_help, 1),
		FUSE_OPT_END
	};
	struct fuse_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	if (fuse_opt_parse(args, &cfg, help_opts, NULL) == -1)
		return NULL;
	if (cfg.show_help) {
		fuse_lib_help(args);
		return NULL;
	}
	return _fuse_new_31(args, op, op_size, version, user_data);
}

#undef fuse_new
struct fuse *fuse_new(struct fuse_args *args, const struct fuse_operations *op,
		      size_t op_size, void *user_data);
struct fuse *fuse_new(struct fuse_args *args, const struct fuse_operations *op,
		      size_t op_size, void *user_data)
{
	return _fuse_new_31(args, op, op_size, NULL, user_data);
}

int fuse_mount(struct fuse *f, const char *mountpoint)
{
	return fuse_session_mount(f->se, mountpoint);
}

void fuse_unmount(struct fuse *f)
{
	fuse_session_unmount(f->se);
}

void fuse_destroy(struct fuse *f)
{
	char **hidden;
	size_t count;

	if (!f)
		return;
	fuse_stop_cleanup_thread(f);
	/* Files still hidden at the end are unlinked, as libfuse does. */
	hidden = hl_node_hidden_paths(f, &count);
	for (size_t i = 0; i < count; i++) {
		fuse_fs_unlink(f->fs, hidden[i]);
		free(hidden[i]);
	}
	free(hidden);
	/* Destroying the session may still call op.destroy through us. */
	fuse_session_destroy(f->se);
	if (f->intr_installed)
		sigaction(f->cfg.intr_signal, &f->intr_old, NULL);
	hl_nodes_free(f);
	hl_fs_free_stack(f->fs);
	pthread_cond_destroy(&f->cleanup_wake);
	pthread_mutex_destroy(&f->lock);
	free(f->cfg.modules);
	free(f);
}

/* -o remember=T: drop forgotten nodes T seconds after the client did. */
static void *cleanup_main(void *arg)
{
	struct fuse *f = arg;

	pthread_mutex_lock(&f->lock);
	while (f->cleanup_running) {
		struct timespec until;
		int wait;

		pthread_mutex_unlock(&f->lock);
		wait = fuse_clean_cache(f);
		pthread_mutex_lock(&f->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait;
		if (f->cleanup_running)
			pthread_cond_timedwait(&f->cleanup_wake, &f->lock, &until);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

int fuse_clean_cache(struct fuse *f)
{
	return hl_nodes_clean(f);
}

int fuse_start_cleanup_thread(struct fuse *f)
{
	int err;

	if (f->cfg.remember <= 0 || f->cleanup_running)
		return 0;
	f->cleanup_running = true;
	err = pthread_create(&f->cleanup_thread, NULL, cleanup_main, f);
	if (err) {
		f->cleanup_running = false;
		fuse_log(FUSE_LOG_ERR, "fuse: cannot start the remember cleanup thread: %s\n",
			 strerror(err));
		return -1;
	}
	return 0;
}

void fuse_stop_cleanup_thread(struct fuse *f)
{
	pthread_mutex_lock(&f->lock);
	if (!f->cleanup_running) {
		pthread_mutex_unlock(&f->lock);
		return;
	}
	f->cleanup_running = false;
	pthread_cond_signal(&f->cleanup_wake);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->cleanup_thread, NULL);
}

int fuse_loop(struct fuse *f)
{
	int res;

	if (!f)
		return -1;
	if (fuse_start_cleanup_thread(f) != 0)
		return -1;
	res = fuse_session_loop(f->se);
	fuse_stop_cleanup_thread(f);
	return res;
}

int fuse_loop_mt_312(struct fuse *f, struct fuse_loop_config *config)
{
	struct fuse_loop_config *own = NULL;
	int res;

	if (!f)
		return -1;
	if (!config) {
		own = fuse_loop_cfg_create();
		if (!own)
			return -ENOMEM;
		config = own;
	}
	if (fuse_start_cleanup_thread(f) != 0) {
		res = -1;
		goto out_cfg;
	}
	res = fuse_session_loop_mt_312(f->se, config);
	fuse_stop_cleanup_thread(f);
out_cfg:
	if (own)
		fuse_loop_cfg_destroy(own);
	return res;
}

int fuse_loop_mt(struct fuse *f, struct fuse_loop_config *config)
{
	return fuse_loop_mt_312(f, config);
}

/* API 3.2 to 3.11: the two-member configuration. */
int fuse_loop_mt_32(struct fuse *f, struct fuse_loop_config_v1 *v1)
{
	struct fuse_loop_config *config = fuse_loop_cfg_create();
	int res;

	if (!config)
		return -ENOMEM;
	if (v1)
		fuse_loop_cfg_convert(config, v1);
	res = fuse_loop_mt_312(f, config);
	fuse_loop_cfg_destroy(config);
	return res;
}

/* API 3.0 and 3.1: a bare clone_fd flag. */
int fuse_loop_mt_31(struct fuse *f, int clone_fd)
{
	struct fuse_loop_config_v1 v1 = { .clone_fd = clone_fd, .max_idle_threads = 10 };

	return fuse_loop_mt_32(f, &v1);
}

void fuse_exit(struct fuse *f)
{
	fuse_session_exit(f->se);
}

struct fuse_session *fuse_get_session(struct fuse *f)
{
	return f->se;
}

int fuse_invalidate_path(struct fuse *f, const char *path)
{
	fuse_ino_t ino = hl_node_find_path(f, path);

	if (!ino)
		return -ENOENT;
	return fuse_lowlevel_notify_inval_inode(f->se, ino, 0, 0);
}

/* ------------------------------------------------------------------ */
/* fuse_main()                                                         */

static int run_loop(struct fuse *f, const struct fuse_cmdline_opts *opts)
{
	struct fuse_loop_config *config;
	int res;

	if (opts->singlethread)
		return fuse_loop(f);
	config = fuse_loop_cfg_create();
	if (!config)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(config, (unsigned int)opts->clone_fd);
	fuse_loop_cfg_set_idle_threads(config, opts->max_idle_threads);
	fuse_loop_cfg_set_max_threads(config, opts->max_threads);
	res = fuse_loop_mt_312(f, config);
	fuse_loop_cfg_destroy(config);
	return res;
}

/*
 * Exit codes as libfuse's fuse_main(): 1 bad command line, 2 no mount
 * point, 3 fuse_new, 4 mount, 5 daemonize, 6 signal handlers, 7 the loop.
 */
int fuse_main_real_versioned(int argc, char *argv[], const struct fuse_operations *op,
			     size_t op_size, struct libfuse_version *version,
			     void *user_data)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse *f;
	int res = 1;

	memset(&opts, 0, sizeof(opts));
	if (fuse_parse_cmdline_312(&args, &opts) != 0)
		goto out_args;
	if (opts.show_version) {
		printf("FUSE library version %s\n", fuse_pkgversion());
		fuse_lowlevel_version();
		res = 0;
		goto out_args;
	}
	if (opts.show_help) {
		if (args.argv[0] && args.argv[0][0])
			printf("usage: %s [options] <mountpoint>\n\n", args.argv[0]);
		printf("FUSE options:\n");
		fuse_cmdline_help();
		fuse_lib_help(&args);
		res = 0;
		goto out_args;
	}
	if (!opts.mountpoint) {
		fuse_log(FUSE_LOG_ERR, "error: no mountpoint specified\n");
		res = 2;
		goto out_args;
	}
	f = _fuse_new_31(&args, op, op_size, version, user_data);
	res = 3;
	if (!f)
		goto out_args;
	res = 4;
	if (fuse_mount(f, opts.mountpoint) != 0)
		goto out_destroy;
	res = 5;
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	res = 6;
	if (fuse_set_signal_handlers(f->se) != 0)
		goto out_unmount;
	res = run_loop(f, &opts) == 0 ? 0 : 7;
	fuse_remove_signal_handlers(f->se);
out_unmount:
	fuse_unmount(f);
out_destroy:
	fuse_destroy(f);
out_args:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return res;
}
