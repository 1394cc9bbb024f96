/*
 * passthrough_dax: a FUSE file system that exports a host directory, acting
 * with each caller's credentials, and maps file ranges into a DAX window on
 * FUSE_SETUPMAPPING. fusedax's flagship example: read it top to bottom.
 *
 * Build: part of fusedax (build/example/passthrough_dax).
 * Run:   passthrough_dax -o source=/srv/export [-o allow_other] MOUNTPOINT
 *        (MOUNTPOINT /dev/fd/N: serve a connection that is open already)
 *
 * The big ideas, in the order the code meets them:
 *
 *  - Inodes.  Every file the kernel knows is an `struct pd_inode` holding an
 *    O_PATH descriptor of the host file, keyed by the host (st_dev, st_ino).
 *    The kernel's reference count (nlookup: +1 per lookup reply, -n per
 *    forget) decides when the inode goes away. The node id the kernel sees
 *    is a counter, never a pointer, so a bogus id from a peer is an ESTALE,
 *    not a crash.
 *
 *  - The jail.  Everything happens relative to inode descriptors with
 *    *at() calls on single names (never a path built from names), with
 *    O_NOFOLLOW, so a symlink in the tree is data to be read, never a way
 *    out. A regular file or directory is opened through /proc/self/fd/N of
 *    its O_PATH descriptor, after checking its type; fifos, sockets and
 *    device nodes are never opened by the daemon.
 *
 *  - Handles.  The fh of an open file or directory is an id in a table of
 *    `struct pd_handle`, never a descriptor number: the client (a guest
 *    kernel, over vhost-user) is not trusted, and every fh it sends back is
 *    looked up and checked against the request's inode, or refused with
 *    EBADF. A request holds a reference to its handle, so a racing RELEASE
 *    cannot close the descriptor under it.
 *
 *  - Credentials.  Run as root, the daemon switches the calling thread's
 *    uid, gid and supplementary groups to the caller's for every request
 *    that touches the host file system, so the host kernel enforces the
 *    permissions (the mount does not use default_permissions). A thread
 *    switches only what differs from the identity it already has, and the
 *    few things done on the daemon's own authority say so (creds_daemon).
 *
 *  - The ordering contract (doc/architecture.md, "The ordering contract").
 *    A DAX mapping is a window onto the host file that the client accesses
 *    without asking us. Every inode has an rwlock: SETUPMAPPING and plain
 *    I/O take it shared; anything that changes the file's extents or size
 *    (truncate, fallocate, copy_file_range into the file, an extending
 *    write) takes it exclusive, clips the window before a shrink, does the
 *    host operation, re-validates the window after growth, then unlocks.
 *
 * Where things are: this file holds the operations, top to bottom in the
 * order of struct fuse_lowlevel_ops. What they share is declared in
 * passthrough_dax.h; pd_inode.c is the inode table, pd_handle.c the handle
 * table, pd_creds.c the credential switching, pd_extent.c the ordering
 * contract's primitives, and pd_main.c the command line and main().
 */
#include "passthrough_dax.h"

#include <sys/vfs.h>

/* ------------------------------------------------------------------------
 * Entries and attributes
 */

static double pd_timeout(const struct pd_fs *fs)
{
	return fs->timeout;
}

/*
 * With -o dax=inode or dax=auto the client asks, per inode, whether to use
 * DAX. A regular file uses DAX if it carries the extended attribute
 * "user.dax" (any value), so an administrator picks files with
 * `setfattr -n user.dax -v 1 FILE` on the host. Reading it needs read
 * permission: outside a caller's section, call attr_flags_as_daemon().
 *
 * dax=auto also picks by size: without the attribute, a file uses DAX while
 * it is at most a quarter of the window. A file much larger than the window
 * keeps the client recycling window ranges: every access to an unmapped
 * range costs a REMOVEMAPPING and a SETUPMAPPING round trip, where a read
 * without DAX costs one READ, so such a file is faster through the page
 * cache (doc/performance.md has the numbers). The client applies a changed
 * flag the next time it instantiates the inode.
 */
static bool dax_per_inode(const struct pd_fs *fs)
{
	return fs->dax == DAX_INODE || fs->dax == DAX_AUTO;
}

static uint32_t pd_attr_flags(const struct pd_fs *fs, const struct pd_inode *in,
			      const struct stat *st)
{
	if (!dax_per_inode(fs) || in->type != S_IFREG)
		return 0;
	if (fs->dax == DAX_AUTO && fs->window &&
	    (uint64_t)st->st_size <= fuse_dax_window_size(fs->window) / 4)
		return FUSE_ATTR_DAX_FLAG;
	if (getxattr(fd_path(fs, in->fd).s, "user.dax", NULL, 0) < 0)
		return 0;
	return FUSE_ATTR_DAX_FLAG;
}

/* pd_attr_flags() with our own credentials, for GETATTR and SETATTR replies. */
static uint32_t attr_flags_as_daemon(struct pd_fs *fs, const struct pd_inode *in,
				     const struct stat *st)
{
	if (dax_per_inode(fs))
		creds_daemon(fs);
	return pd_attr_flags(fs, in, st);
}

/*
 * The entry of LOOKUP, CREATE, LINK, MKNOD and READDIRPLUS. Its size is
 * news to the client, so the window follows it first (extent_report_size()).
 */
static void fill_entry(struct pd_fs *fs, struct pd_inode *in, const struct stat *st,
		       struct fuse_entry_param *e)
{
	extent_report_size(fs, in, (uint64_t)st->st_size);
	memset(e, 0, sizeof(*e));
	e->ino = in->nodeid;
	e->generation = 0;	/* node ids are never reused within a mount */
	e->attr = *st;
	idmap_stat(fs, &e->attr);
	e->attr_timeout = pd_timeout(fs);
	e->entry_timeout = pd_timeout(fs);
	e->attr_flags = pd_attr_flags(fs, in, st);
}

/*
 * Look name up in parent and count a kernel reference on the result. The
 * caller's credentials must be in effect (search permission on parent).
 */
static int do_lookup(struct pd_fs *fs, struct pd_inode *parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct pd_inode *in;
	struct stat st;
	int fd, err;

	if (strcmp(name, ".") == 0 || (strcmp(name, "..") == 0 && parent == &fs->root)) {
		/* The root is the top of the jail: its ".." is itself. */
		fd = fcntl(parent->fd, F_DUPFD_CLOEXEC, 0);
	} else {
		if (strchr(name, '/'))
			return -EINVAL;
		fd = inode_open_child(fs, parent, name);
		if (fd < 0)
			return fd;
	}
	if (fd == -1)
		return -errno;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	err = inode_lookup_ref(fs, fd, &st, &in);
	if (err)
		return err;
	fill_entry(fs, in, &st, e);
	inode_put_fd(fs, in);
	return 0;
}

/* Drop a kernel reference to ino that the client will never learn of. */
static void entry_unref(struct pd_fs *fs, fuse_ino_t ino)
{
	struct pd_inode *in = inode_get(fs, ino);

	if (in)
		inode_unref(fs, in, 1, 1);
}

/*
 * Answer with an entry that holds a kernel reference. If the reply does not
 * reach the client (the request was interrupted), the client never learns
 * of the reference, so drop it again.
 */
static void reply_entry(fuse_req_t req, struct pd_fs *fs, const struct fuse_entry_param *e)
{
	if (fuse_reply_entry(req, e) != 0 && e->ino != 0)
		entry_unref(fs, e->ino);
}

/*
 * Count a kernel reference to the file open on fd (an I/O descriptor, e.g.
 * from create or O_TMPFILE) and fill its entry. Going through the open file
 * rather than looking the name up again cannot pick up a different file
 * that took the name meanwhile, and works for unnamed files. With held,
 * the inode is left to the caller as from inode_get_fd() (since this runs
 * as the caller, who could not open it by handle later).
 */
static int inode_from_open_fd(struct pd_fs *fs, int fd, struct fuse_entry_param *e,
			      struct pd_inode **held)
{
	struct pd_inode *in;
	struct stat st;
	int path_fd, err;

	path_fd = openat(fs->proc_fd, fd_name(fd).s, O_PATH | O_CLOEXEC);
	if (path_fd == -1)
		return -errno;
	if (fstat(path_fd, &st) == -1) {
		err = -errno;
		close(path_fd);
		return err;
	}
	err = inode_lookup_ref(fs, path_fd, &st, &in);
	if (err)
		return err;
	fill_entry(fs, in, &st, e);
	if (held)
		*held = in;
	else
		inode_put_fd(fs, in);
	return 0;
}

/* ------------------------------------------------------------------------
 * Operations: names and attributes
 */

static void pd_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pd_fs *fs = pd_fs(req);
	struct fuse_entry_param e;
	struct pd_inode *dir;
	int err;

	dir = inode_get_fd(fs, parent, &err);
	if (!dir) {
		fuse_reply_err(req, -err);
		return;
	}
	err = creds_enter(req);
	if (!err) {
		err = do_lookup(fs, dir, name, &e);
		creds_restore(fs);
	}
	inode_put_fd(fs, dir);
	if (err)
		fuse_reply_err(req, -err);
	else
		reply_entry(req, fs, &e);
}

static void pd_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in = inode_get(fs, ino);

	if (in)
		inode_unref(fs, in, nlookup, 1);
	fuse_reply_none(req);
}

static void pd_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in;
	size_t i;

	for (i = 0; i < count; i++) {
		in = inode_get(fs, forgets[i].ino);
		if (in)
			inode_unref(fs, in, forgets[i].nlookup, 1);
	}
	fuse_reply_none(req);
}

static void pd_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in;
	struct stat st;
	int err;

	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	/* Reading attributes needs no permission: no credential switch. */
	err = handle_check(fs, fi, ino);
	if (!err)
		err = inode_attr(fs, in, &st);
	if (!err)
		extent_report_size(fs, in, (uint64_t)st.st_size);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr_flags(req, &st, pd_timeout(fs), attr_flags_as_daemon(fs, in, &st));
	inode_put_fd(fs, in);
}

static void pd_statx(fuse_req_t req, fuse_ino_t ino, int flags, int mask,
		     struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct statx stx;
	int at_flags = AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | (flags & AT_STATX_SYNC_TYPE);
	struct pd_inode *in;
	int err;

	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	if (handle_check(fs, fi, ino) != 0)
		fuse_reply_err(req, EBADF);
	else if (statx(in->fd, "", at_flags, (unsigned int)mask, &stx) == -1)
		fuse_reply_err(req, errno);
	else {
		if (stx.stx_mask & STATX_SIZE)
			extent_report_size(fs, in, stx.stx_size);
		fuse_reply_statx(req, 0, idmap_statx(fs, &stx), pd_timeout(fs));
	}
	inode_put_fd(fs, in);
}

/* utimensat() arguments for the time bits of a SETATTR. */
static void setattr_times(const struct stat *attr, int to_set, struct timespec ts[2])
{
	ts[0].tv_sec = 0;
	ts[1].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_nsec = UTIME_OMIT;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
}

/*
 * The changes of one SETATTR, as the caller, through handle h if the client
 * named one (NULL otherwise). Times go last so that a truncate in the same
 * request does not overwrite the mtime it sets.
 */
static int do_setattr(struct pd_fs *fs, struct pd_inode *in, const struct stat *attr,
		      int to_set, const struct pd_handle *h)
{
	int fd = h ? h->fd : -1;
	struct timespec ts[2];
	int ret;

	if (to_set & FUSE_SET_ATTR_MODE) {
		if (fd >= 0)
			ret = fchmod(fd, attr->st_mode);
		else
			ret = fchmodat(fs->proc_fd, fd_name(in->fd).s, attr->st_mode, 0);
		if (ret == -1)
			return -errno;
	}
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (!idmap_chown(fs, &uid, &gid))
			return -EINVAL;	/* as chown(2) outside a user namespace's map */
		if (fchownat(in->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
			return -errno;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		/* Only a writable file handle can truncate: else open our own. */
		if (h && (h->kind != HANDLE_FILE || (h->flags & O_ACCMODE) == O_RDONLY))
			fd = -1;
		ret = truncate_ordered(fs, in, fd, attr->st_size);
		if (ret)
			return ret;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
		setattr_times(attr, to_set, ts);
		if (utimensat(in->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
			return -errno;
	}
	return 0;
}

/*
 * Handle-killpriv v2: the client leaves clearing the set-user-ID bit (and
 * the set-group-ID bit of a group-executable file) to us when a caller
 * without CAP_FSETID truncates or changes owner. The host kernel already
 * does it when the caller is not root, since we act as the caller; this
 * covers a root caller without CAP_FSETID. The kernel clears those bits
 * whoever owns the file, so we do it with the daemon's credentials.
 */
static int kill_suidgid(struct pd_fs *fs, struct pd_inode *in)
{
	struct stat st;
	mode_t kill = S_ISUID;
	int err;

	err = inode_stat(in, &st);
	if (err || !S_ISREG(st.st_mode))
		return err;
	if (st.st_mode & S_IXGRP)
		kill |= S_ISGID;
	if (!(st.st_mode & kill))
		return 0;
	if (fchmodat(fs->proc_fd, fd_name(in->fd).s, st.st_mode & ~kill & 07777, 0) == -1)
		return -errno;
	return 0;
}

static void pd_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_handle *h = NULL;
	struct pd_inode *in;
	struct stat st;
	int err;

	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	if (fi) {
		h = handle_get(fs, fi->fh, ino, HANDLE_ANY);
		if (!h) {
			err = -EBADF;
			goto out_put;
		}
	}
	err = creds_enter(req);
	if (!err) {
		err = do_setattr(fs, in, attr, to_set, h);
		creds_restore(fs);
	}
	if (!err && (to_set & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID)) &&
	    !(to_set & FUSE_SET_ATTR_MODE)) {
		creds_daemon(fs);
		err = kill_suidgid(fs, in);
	}
	if (!err)
		err = inode_attr(fs, in, &st);
	if (!err)
		extent_report_size(fs, in, (uint64_t)st.st_size);
	if (h)
		handle_put(fs, h);
out_put:
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr_flags(req, &st, pd_timeout(fs), attr_flags_as_daemon(fs, in, &st));
	inode_put_fd(fs, in);
}

static void pd_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct pd_fs *fs = pd_fs(req);
	char buf[PATH_MAX + 1];
	struct pd_inode *in;
	ssize_t len;
	int err;

	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	/* The link's text is returned, never followed: the client resolves it. */
	len = readlinkat(in->fd, "", buf, sizeof(buf));
	if (len == -1) {
		fuse_reply_err(req, errno);
	} else if (len == (ssize_t)sizeof(buf)) {
		fuse_reply_err(req, ENAMETOOLONG);
	} else {
		buf[len] = '\0';
		fuse_reply_readlink(req, buf);
	}
	inode_put_fd(fs, in);
}

/* ------------------------------------------------------------------------
 * Operations: making and removing names
 */

enum pd_node_kind { NODE_MKNOD, NODE_MKDIR, NODE_SYMLINK };

/* Make a node named name in parent as the caller, and answer with its entry. */
static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
		      enum pd_node_kind kind, mode_t mode, dev_t rdev, const char *link)
{
	struct pd_fs *fs = pd_fs(req);
	struct fuse_entry_param e;
	struct pd_inode *dir;
	int ret, err;

	dir = inode_get_fd(fs, parent, &err);
	if (!dir) {
		fuse_reply_err(req, -err);
		return;
	}
	if (!name_is_component(name)) {
		err = -EINVAL;
		goto out_put;
	}
	err = creds_enter(req);
	if (err)
		goto out_put;
	if (kind == NODE_MKDIR)
		ret = mkdirat(dir->fd, name, mode);
	else if (kind == NODE_SYMLINK)
		ret = symlinkat(link, dir->fd, name);
	else
		ret = mknodat(dir->fd, name, mode, rdev);
	err = ret == -1 ? -errno : do_lookup(fs, dir, name, &e);
	creds_restore(fs);
out_put:
	inode_put_fd(fs, dir);
	if (err)
		fuse_reply_err(req, -err);
	else
		reply_entry(req, fs, &e);
}

static void pd_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	make_node(req, parent, name, NODE_MKNOD, mode, rdev, NULL);
}

static void pd_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, NODE_MKDIR, mode, 0, NULL);
}

static void pd_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	make_node(req, parent, name, NODE_SYMLINK, 0, 0, link);
}

static void pd_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in, *dir = NULL;
	struct fuse_entry_param e;
	int err;

	in = inode_get_fd(fs, ino, &err);
	if (in)
		dir = inode_get_fd(fs, newparent, &err);
	if (!in || !dir)
		goto out_put;
	if (!name_is_component(newname)) {
		err = -EINVAL;
		goto out_put;
	}
	err = creds_enter(req);
	if (err)
		goto out_put;
	/*
	 * linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH, which the
	 * caller lacks; following the /proc/self/fd magic link reaches the
	 * same file (even an O_TMPFILE one) without it.
	 */
	if (linkat(fs->proc_fd, fd_name(in->fd).s, dir->fd, newname, AT_SYMLINK_FOLLOW) == -1)
		err = -errno;
	else
		err = do_lookup(fs, dir, newname, &e);
	creds_restore(fs);
out_put:
	if (in)
		inode_put_fd(fs, in);
	if (dir)
		inode_put_fd(fs, dir);
	if (err)
		fuse_reply_err(req, -err);
	else
		reply_entry(req, fs, &e);
}

/* unlink and rmdir: flags 0 or AT_REMOVEDIR. */
static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int flags)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *dir;
	int err;

	dir = inode_get_fd(fs, parent, &err);
	if (!dir) {
		fuse_reply_err(req, -err);
		return;
	}
	err = name_is_component(name) ? creds_enter(req) : -EINVAL;
	if (!err) {
		if (unlinkat(dir->fd, name, flags) == -1)
			err = -errno;
		creds_restore(fs);
	}
	inode_put_fd(fs, dir);
	fuse_reply_err(req, -err);
}

static void pd_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

static void pd_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, AT_REMOVEDIR);
}

static void pd_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *dir, *newdir = NULL;
	int err;

	dir = inode_get_fd(fs, parent, &err);
	if (dir)
		newdir = inode_get_fd(fs, newparent, &err);
	if (!dir || !newdir)
		goto out_put;
	if (!name_is_component(name) || !name_is_component(newname)) {
		err = -EINVAL;
		goto out_put;
	}
	err = creds_enter(req);
	if (err)
		goto out_put;
	/* RENAME_NOREPLACE and RENAME_EXCHANGE mean the same on the host. */
	if (renameat2(dir->fd, name, newdir->fd, newname, flags) == -1)
		err = -errno;
	creds_restore(fs);
out_put:
	if (dir)
		inode_put_fd(fs, dir);
	if (newdir)
		inode_put_fd(fs, newdir);
	fuse_reply_err(req, -err);
}

/* ------------------------------------------------------------------------
 * Operations: open files
 */

/*
 * The host open flags for the client's flags. With a write-back cache the
 * client reads pages to fill partial writes even through write-only files,
 * and works out the append position itself.
 */
static int host_open_flags(const struct pd_fs *fs, int flags)
{
	if (!fs->allow_direct_io)
		flags &= ~O_DIRECT;
	if (fs->writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags;
}

/* A file passed through never uses the client's cache of our data. */
static void set_cache_flags(const struct pd_fs *fs, struct fuse_file_info *fi)
{
	fi->direct_io = !fi->backing_id &&
			(fs->cache == CACHE_NEVER || fs->cache == CACHE_METADATA);
	fi->keep_cache = !fi->backing_id && fs->cache == CACHE_ALWAYS;
}

/*
 * -o passthrough: the client reads, writes and maps an open regular file
 * straight from a backing file we register on the connection, with no
 * READ or WRITE to us. The kernel wants every open of an inode on the same
 * backing file, so the inode keeps one while any of its files is open; the
 * last release drops it. Where the kernel refuses, fuse_passthrough_open()
 * says why and we serve the file ourselves (backing_id -1 remembers that
 * until the inode's files are all closed, so every open agrees).
 */
static void passthrough_attach(fuse_req_t req, struct pd_fs *fs, struct pd_inode *in, int fd,
			       struct fuse_file_info *fi)
{
	if (!fs->passthrough || in->type != S_IFREG)
		return;
	pthread_mutex_lock(&fs->lock);
	in->file_opens++;
	if (in->backing_id == 0) {
		/* Registering a backing file needs CAP_SYS_ADMIN: ours, not the caller's. */
		creds_daemon(fs);
		in->backing_id = fuse_passthrough_open(req, fd);
		if (in->backing_id == 0)
			in->backing_id = -1;
	}
	fi->backing_id = in->backing_id > 0 ? in->backing_id : 0;
	pthread_mutex_unlock(&fs->lock);
}

/* The other end of passthrough_attach(), at release of a file of ino. */
static void passthrough_detach(fuse_req_t req, struct pd_fs *fs, fuse_ino_t ino)
{
	struct pd_inode *in;
	int id = 0;

	if (!fs->passthrough || !(in = inode_get(fs, ino)))
		return;
	pthread_mutex_lock(&fs->lock);
	if (in->type == S_IFREG && in->file_opens > 0 && --in->file_opens == 0) {
		id = in->backing_id;
		in->backing_id = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	inode_put(fs, in);
	if (id > 0) {
		creds_daemon(fs);
		fuse_passthrough_close(req, id);
	}
}

static void pd_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	int flags = host_open_flags(fs, fi->flags);
	struct pd_inode *in;
	int fd, err = 0;

	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	fd = creds_enter(req);
	if (fd < 0)
		goto out_put;
	if ((flags & O_TRUNC) && in->type == S_IFREG) {
		/*
		 * An O_TRUNC open is a truncate to 0: the ordering contract. Open
		 * first, without O_TRUNC, so the host checks the caller's access
		 * before anything is clipped: a refused open must leave the window
		 * alone. A read-only O_TRUNC open truncates only if the caller may
		 * write, which truncate_ordered() checks by opening for writing.
		 */
		fd = inode_open(fs, in, flags & ~O_TRUNC);
		if (fd >= 0) {
			err = truncate_ordered(fs, in, (flags & O_ACCMODE) == O_RDONLY ? -1 : fd, 0);
			if (err) {
				close(fd);
				fd = err;
				err = 0;
			}
		}
	} else {
		fd = inode_open(fs, in, flags);
	}
	creds_restore(fs);
	if (fd >= 0)
		err = handle_new(fs, ino, fd, NULL, &fi->fh);
	if (fd >= 0 && !err)
		passthrough_attach(req, fs, in, fd, fi);
out_put:
	inode_put_fd(fs, in);
	if (fd < 0 || err) {
		fuse_reply_err(req, fd < 0 ? -fd : -err);
		return;
	}
	set_cache_flags(fs, fi);
	if (fuse_reply_open(req, fi) != 0) {	/* interrupted: no RELEASE will come */
		handle_release(fs, fi->fh, ino, HANDLE_FILE);
		passthrough_detach(req, fs, ino);
	}
}

/*
 * Open (maybe creating) name in dir as the caller, and only ever a regular
 * file. openat() with O_CREAT but not O_EXCL opens whatever has the name,
 * a fifo (which may block us, or unblock a host process waiting for a
 * reader) or a device node too, so we never ask for that: first try to
 * create the file exclusively; if the name exists (and the caller did not
 * ask for O_EXCL), look at what it is through an O_PATH descriptor, which
 * opens nothing, and reopen it through /proc/self/fd only if it is a
 * regular file (as inode_open() does). If the name vanishes between the
 * two steps, start again, a few times. O_TRUNC is left out: the caller
 * truncates under the ordering contract once it knows the inode.
 */
#define PD_CREATE_TRIES 8

static int open_existing_regular(struct pd_fs *fs, const struct pd_inode *dir,
				 const char *name, int flags)
{
	struct stat st;
	int path_fd, fd, err;

	path_fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (path_fd == -1)
		return -errno;
	if (fstat(path_fd, &st) == -1) {
		err = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		/* What open(2) would say: O_NOFOLLOW refuses a symlink. */
		err = S_ISDIR(st.st_mode) ? -EISDIR : S_ISLNK(st.st_mode) ? -ELOOP : -EACCES;
		goto out_close;
	}
	fd = openat(fs->proc_fd, fd_name(path_fd).s, flags);
	err = fd == -1 ? -errno : fd;
out_close:
	close(path_fd);
	return err;
}

static int create_open(struct pd_fs *fs, const struct pd_inode *dir, const char *name,
		       int flags, mode_t mode)
{
	int host_flags = (flags & ~(O_TRUNC | O_CREAT | O_EXCL | O_NOFOLLOW)) | O_NOCTTY |
			 O_CLOEXEC;
	int fd = -ENOENT;

	for (int i = 0; i < PD_CREATE_TRIES; i++) {
		fd = openat(dir->fd, name, host_flags | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST || (flags & O_EXCL))
			return -errno;
		fd = open_existing_regular(fs, dir, name, host_flags);
		if (fd != -ENOENT)
			return fd;
	}
	return fd;
}

/*
 * The end of CREATE and TMPFILE: on success (err 0) fd is the new file's
 * descriptor and e its entry; give it a handle and answer. On failure,
 * close fd (if any) and answer the error.
 */
static void reply_created(fuse_req_t req, struct pd_fs *fs, int err, int fd,
			  const struct fuse_entry_param *e, struct fuse_file_info *fi)
{
	if (err && fd >= 0)
		close(fd);
	if (!err) {
		struct pd_inode *in;

		err = handle_new(fs, e->ino, fd, NULL, &fi->fh);
		if (err)
			entry_unref(fs, e->ino);
		else if ((in = inode_get(fs, e->ino))) {
			passthrough_attach(req, fs, in, fd, fi);
			inode_put(fs, in);
		}
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	set_cache_flags(fs, fi);
	if (fuse_reply_create(req, e, fi) != 0) {
		handle_release(fs, fi->fh, e->ino, HANDLE_FILE);
		passthrough_detach(req, fs, e->ino);
		entry_unref(fs, e->ino);
	}
}

static void pd_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	int flags = host_open_flags(fs, fi->flags);
	struct fuse_entry_param e;
	struct pd_inode *dir, *in;
	int fd = -1, err;

	dir = inode_get_fd(fs, parent, &err);
	if (!dir) {
		fuse_reply_err(req, -err);
		return;
	}
	err = name_is_component(name) ? creds_enter(req) : -EINVAL;
	if (err)
		goto out_put;
	fd = create_open(fs, dir, name, flags, mode);
	err = fd < 0 ? fd : inode_from_open_fd(fs, fd, &e, &in);
	if (!err) {
		if (flags & O_TRUNC) {
			err = truncate_ordered(fs, in, (flags & O_ACCMODE) == O_RDONLY ? -1 : fd, 0);
			if (!err)
				err = inode_attr(fs, in, &e.attr);
			if (!err)
				extent_report_size(fs, in, (uint64_t)e.attr.st_size);
		}
		inode_fd_drop(fs, in);
		inode_unref(fs, in, err ? 1 : 0, 1);
	}
	creds_restore(fs);
out_put:
	inode_put_fd(fs, dir);
	reply_created(req, fs, err, fd, &e, fi);
}

/* O_TMPFILE: an unnamed regular file in parent, which linkat() may name later. */
static void pd_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	int flags = host_open_flags(fs, fi->flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
	struct fuse_entry_param e;
	struct pd_inode *dir;
	int fd = -1, err;

	dir = inode_get_fd(fs, parent, &err);
	if (!dir) {
		fuse_reply_err(req, -err);
		return;
	}
	err = creds_enter(req);
	if (err)
		goto out_put;
	fd = openat(dir->fd, ".", flags | O_TMPFILE | O_CLOEXEC, mode);
	err = fd == -1 ? -errno : inode_from_open_fd(fs, fd, &e, NULL);
	creds_restore(fs);
out_put:
	inode_put_fd(fs, dir);
	reply_created(req, fs, err, fd, &e, fi);
}

/*
 * Reads hold the inode's lock shared: an extent change waits for them
 * (step 2 of the contract). The data moves straight from the host file into
 * the reply (by splice where the transport can) under the lock.
 */
static void pd_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in = inode_get(fs, ino);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct pd_handle *h;

	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	h = handle_get(fs, fi->fh, ino, HANDLE_FILE);
	if (!h) {
		fuse_reply_err(req, EBADF);
		goto out_put;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = h->fd;
	buf.buf[0].pos = off;
	pthread_rwlock_rdlock(&in->extent_lock);
	fuse_reply_data(req, &buf, 0);
	pthread_rwlock_unlock(&in->extent_lock);
	handle_put(fs, h);
out_put:
	inode_put(fs, in);
}

/*
 * Does writing size bytes at off through h grow the file? An O_APPEND
 * descriptor always writes at the end, so it always may. If not,
 * *file_size is the file's size.
 */
static bool write_extends(const struct pd_handle *h, off_t off, size_t size,
			  uint64_t *file_size)
{
	struct stat st;

	if (h->flags & O_APPEND)
		return true;
	if (fstat(h->fd, &st) == -1)
		return true;	/* when in doubt, take the safe path */
	*file_size = (uint64_t)st.st_size;
	return (uint64_t)off + size > (uint64_t)st.st_size;
}

/*
 * Writes to set-user-ID or set-group-ID files run as the caller: the host
 * then clears those bits as for the caller's own write(), which is what
 * FUSE_WRITE_KILL_SUIDGID asks. A write inside the file holds the lock
 * shared; an extending write is an extent change (the window must be
 * re-validated to show the new end).
 * A write inside the file may still end beyond the size the client knows
 * (another host process made the file longer), and the client takes the
 * end of its write as the new size: the window follows the file first.
 */
static void pd_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf,
			 off_t off, struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in = inode_get(fs, ino);
	struct fuse_bufvec out_buf = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	struct pd_handle *h;
	uint64_t file_size = 0;
	struct stat st;
	bool extending;
	ssize_t res;
	int fd;

	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	h = handle_get(fs, fi->fh, ino, HANDLE_FILE);
	if (!h) {
		res = -EBADF;
		goto out_put;
	}
	fd = h->fd;
	out_buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out_buf.buf[0].fd = fd;
	out_buf.buf[0].pos = off;

	/*
	 * A write checks no permission (the open did). The writer's identity
	 * counts in one place only: the host clears the set-user-ID bit, and
	 * the set-group-ID bit, when the writer lacks CAP_FSETID (a
	 * set-group-ID file without group execute: only if the writer is not
	 * in its group either). So only a file with one of those bits needs
	 * the caller's credentials; the others are written as the thread
	 * is, which saves reading the caller's groups. A chmod +s racing with
	 * such a write acts as if it came right after the write.
	 */
	if (fstat(fd, &st) == -1 || (st.st_mode & (S_ISUID | S_ISGID))) {
		res = creds_enter(req);
		if (res < 0)
			goto out_handle;
	}
	pthread_rwlock_rdlock(&in->extent_lock);
	/* Without a window an extending write has nothing to re-validate. */
	extending = fs->window && write_extends(h, off, out_buf.buf[0].size, &file_size);
	if (extending) {
		pthread_rwlock_unlock(&in->extent_lock);
		extent_change_begin(in);
	}
	res = fuse_buf_copy(&out_buf, in_buf, 0);
	if (extending) {
		extent_change_end(fs, in, fd);
	} else {
		extent_report_size_locked(fs, in, file_size);
		pthread_rwlock_unlock(&in->extent_lock);
	}
	creds_restore(fs);
out_handle:
	handle_put(fs, h);
out_put:
	inode_put(fs, in);
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_write(req, (size_t)res);
}

/*
 * close() is where some file systems (NFS) report write errors; closing a
 * duplicate gives the client that report without closing our descriptor.
 * POSIX locks need nothing here: the client sends an explicit unlock.
 */
static void pd_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_handle *h = handle_get(fs, fi->fh, ino, HANDLE_FILE);
	int fd, err;

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	fd = dup(h->fd);
	if (fd == -1)
		err = errno;
	else
		err = close(fd) == -1 ? errno : 0;
	handle_put(fs, h);
	fuse_reply_err(req, err);
}

/*
 * Closing the descriptor (when the last request using it is done) also
 * drops its flock and OFD locks.
 */
static void pd_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int err = handle_release(pd_fs(req), fi->fh, ino, HANDLE_FILE);

	if (!err)
		passthrough_detach(req, pd_fs(req), ino);
	fuse_reply_err(req, -err);
}

/*
 * The window maps the host file MAP_SHARED, so stores the client made
 * through a DAX mapping are dirty pages of the same host page cache:
 * fsync()/fdatasync() of any descriptor of the file writes them too.
 */
static void pd_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_handle *h = handle_get(fs, fi->fh, ino, HANDLE_FILE);
	int ret;

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	ret = datasync ? fdatasync(h->fd) : fsync(h->fd);
	fuse_reply_err(req, ret == -1 ? errno : 0);
	handle_put(fs, h);
}

/* ------------------------------------------------------------------------
 * Operations: directories
 */

static void pd_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_dir *d = NULL;
	struct pd_inode *in;
	int fd = -1, err;

	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	if (in->type != S_IFDIR) {
		err = -ENOTDIR;
		goto out_put;
	}
	err = creds_enter(req);
	if (err)
		goto out_put;
	fd = inode_open(fs, in, O_RDONLY | O_DIRECTORY);
	creds_restore(fs);
	if (fd < 0) {
		err = fd;
		goto out_put;
	}
	d = calloc(1, sizeof(*d));
	if (d)
		d->dp = fdopendir(fd);
	if (!d || !d->dp) {
		err = -ENOMEM;
		free(d);
		close(fd);
		goto out_put;
	}
	pthread_mutex_init(&d->lock, NULL);
	err = handle_new(fs, ino, fd, d, &fi->fh);
	fi->cache_readdir = fs->cache == CACHE_ALWAYS;
out_put:
	inode_put_fd(fs, in);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	if (fuse_reply_open(req, fi) != 0)	/* interrupted: no RELEASEDIR will come */
		handle_release(fs, fi->fh, ino, HANDLE_DIR);
}

static bool is_dot_or_dotdot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* An entry with only what readdir() told: node id 0 means "no attributes". */
static void entry_from_dirent(const struct dirent *de, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->attr.st_ino = de->d_ino;
	e->attr.st_mode = (mode_t)de->d_type << 12;
}

/*
 * Pack one directory entry into buf. For readdirplus this looks the entry
 * up (a kernel reference, which the caller must drop again if the entry does
 * not fit); "." and ".." get no lookup and no reference. *err is -ENOENT
 * for an entry gone since readdir() saw it (skip it). Any other lookup
 * failure still lists the name, without attributes: a caller may read a
 * directory it cannot search (mode r-- for it), and `ls` of it must show
 * the names as it would on the host; the client looks such a name up by
 * itself if it needs more (and gets the error then). lookup false: names
 * only, for every entry.
 */
static size_t pack_entry(fuse_req_t req, struct pd_inode *dir, struct dirent *de, bool plus,
			 bool lookup, char *buf, size_t room, off_t next,
			 struct fuse_entry_param *e, int *err)
{
	struct pd_fs *fs = pd_fs(req);

	entry_from_dirent(de, e);
	*err = 0;
	if (!plus)
		return fuse_add_direntry(req, buf, room, de->d_name, &e->attr, next);
	if (lookup && !is_dot_or_dotdot(de->d_name)) {
		*err = do_lookup(fs, dir, de->d_name, e);
		if (*err == -ENOENT)
			return 0;
		if (*err) {
			entry_from_dirent(de, e);
			*err = 0;
		}
	}
	return fuse_add_direntry_plus(req, buf, room, de->d_name, e, next);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct pd_fs *fs = pd_fs(req);
	struct fuse_entry_param e;
	struct pd_inode *dir;
	struct pd_handle *h;
	size_t used = 0, len;
	bool names_only;
	struct pd_dir *d;
	char *buf = NULL;
	int err = 0;

	/* readdirplus looks names up in the directory: it needs its descriptor. */
	dir = plus ? inode_get_fd(fs, ino, &err) : inode_get(fs, ino);
	if (!dir) {
		fuse_reply_err(req, plus ? -err : ESTALE);
		return;
	}
	h = handle_get(fs, fi->fh, ino, HANDLE_DIR);
	if (!h) {
		err = -EBADF;
		goto out_put;
	}
	buf = calloc(1, size ? size : 1);
	if (!buf) {
		err = -ENOMEM;
		goto out_handle;
	}
	d = h->dir;
	pthread_mutex_lock(&d->lock);
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->offset = off;
		d->pending = NULL;
	}
	/*
	 * readdirplus looks names up as the caller; readdir reads the open
	 * directory. When the caller's identity cannot be taken on (its groups
	 * unreadable: out of descriptors or memory), the names still go out,
	 * without attributes, as for any lookup that fails (pack_entry()).
	 */
	names_only = plus && creds_enter(req) != 0;
	for (;;) {
		struct dirent *de = d->pending;

		if (!de) {
			errno = 0;
			de = readdir(d->dp);
			if (!de) {
				err = errno ? -errno : 0;
				break;
			}
			d->pending = de;
		}
		len = pack_entry(req, dir, de, plus, !names_only, buf + used, size - used,
				 de->d_off, &e, &err);
		if (err == -ENOENT) {
			/* Gone since readdir saw it: skip it. */
			err = 0;
			d->pending = NULL;
			d->offset = de->d_off;
			continue;
		}
		if (err)
			break;
		if (len > size - used) {
			/* Full: this entry comes first in the next reply. */
			if (plus && e.ino)
				inode_unref(fs, inode_get(fs, e.ino), 1, 1);
			break;
		}
		used += len;
		d->pending = NULL;
		d->offset = de->d_off;
	}
	if (plus && !names_only)
		creds_restore(fs);
	pthread_mutex_unlock(&d->lock);
out_handle:
	handle_put(fs, h);
out_put:
	if (plus)
		inode_put_fd(fs, dir);
	else
		inode_put(fs, dir);
	/* An error after some entries: send those; the next call reports it. */
	if (err && used == 0)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void pd_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void pd_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void pd_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -handle_release(pd_fs(req), fi->fh, ino, HANDLE_DIR));
}

static void pd_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_handle *h = handle_get(fs, fi->fh, ino, HANDLE_DIR);
	int ret;

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	ret = datasync ? fdatasync(h->fd) : fsync(h->fd);
	fuse_reply_err(req, ret == -1 ? errno : 0);
	handle_put(fs, h);
}

static void pd_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in;
	struct statvfs sv;
	int err;

	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	if (fstatvfs(in->fd, &sv) == -1)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
	inode_put_fd(fs, in);
}

/* syncfs(2) needs a descriptor that is not O_PATH: open ino for that. */
static void pd_syncfs(fuse_req_t req, fuse_ino_t ino)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in;
	int err, fd;

	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	fd = openat(AT_FDCWD, fd_path(fs, in->fd).s, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	err = fd == -1 || syncfs(fd) == -1 ? errno : 0;
	if (fd != -1)
		close(fd);
	inode_put_fd(fs, in);
	fuse_reply_err(req, err);
}

static void pd_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in;
	int err;

	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	err = creds_enter(req);
	if (!err) {
		/* AT_EACCESS: check with the effective ids we just took on. */
		if (faccessat(in->fd, "", mask, AT_EMPTY_PATH | AT_EACCESS) == -1)
			err = -errno;
		creds_restore(fs);
	}
	inode_put_fd(fs, in);
	fuse_reply_err(req, -err);
}

/* ------------------------------------------------------------------------
 * Operations: extended attributes (-o xattr)
 *
 * The xattr calls have no *at() form, so they go through the
 * /proc/self/fd/N name of the inode's O_PATH descriptor, which resolves to
 * exactly that file (a symlink itself, not its target). They run as the
 * caller, so the host applies its rules (user.* needs write permission to
 * set, trusted.* needs CAP_SYS_ADMIN).
 */

/*
 * getxattr and listxattr share the size-probe-or-fetch protocol. The size
 * comes from the peer, but the library caps it at the host's xattr limits
 * (see fuse_lowlevel.h), so allocating it as it comes is safe.
 */
static void reply_xattr_value(fuse_req_t req, const struct pd_inode *in, const char *name,
			      size_t size)
{
	char *value = NULL;
	ssize_t len;

	if (size) {
		value = malloc(size);
		if (!value) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	if (name)
		len = getxattr(fd_path(pd_fs(req), in->fd).s, name, value, size);
	else
		len = listxattr(fd_path(pd_fs(req), in->fd).s, value, size);
	if (len == -1)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else
		fuse_reply_buf(req, value, (size_t)len);
	free(value);
}

/* Run one xattr call (name NULL: list) as the caller and answer it. */
static void do_xattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags, char op)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in;
	int err;

	if (!fs->xattr) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	in = inode_get_fd(fs, ino, &err);
	if (!in) {
		fuse_reply_err(req, -err);
		return;
	}
	err = creds_enter(req);
	if (err) {
		fuse_reply_err(req, -err);
		goto out_put;
	}
	if (op == 'g' || op == 'l') {
		reply_xattr_value(req, in, name, size);
	} else {
		if (op == 's')
			err = setxattr(fd_path(fs, in->fd).s, name, value, size, flags);
		else
			err = removexattr(fd_path(fs, in->fd).s, name);
		fuse_reply_err(req, err == -1 ? errno : 0);
	}
	creds_restore(fs);
out_put:
	inode_put_fd(fs, in);
}

static void pd_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	do_xattr(req, ino, name, value, size, flags, 's');
}

static void pd_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	do_xattr(req, ino, name, NULL, size, 0, 'g');
}

static void pd_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	do_xattr(req, ino, NULL, NULL, size, 0, 'l');
}

static void pd_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	do_xattr(req, ino, name, NULL, 0, 0, 'r');
}

/* ------------------------------------------------------------------------
 * Operations: extents
 */

/*
 * Collapse range removes [offset, offset + length) and shifts the rest
 * down: the file ends length bytes earlier, so the window must be clipped
 * to the new end before the host call. Check what the host would refuse
 * first (st: the file's attributes, taken under the extent lock), so that
 * a collapse that fails never clips: the offset and length must be
 * multiples of the file system's block size (st_blksize is what the host
 * reports for it) and the range must end before the end of the file. The
 * mode must be collapse alone (Linux 6.x refuses any mix with
 * EOPNOTSUPP). 0 or the host's errno for the same mistake. pd_fallocate()
 * adds what the file itself says: append-only or immutable (EPERM), and a
 * file system that refused a collapse of it before (EOPNOTSUPP).
 */
static int check_collapse(const struct stat *st, off_t offset, off_t length, int mode)
{
	off_t block = st->st_blksize > 0 ? st->st_blksize : 1;

	if (mode != FALLOC_FL_COLLAPSE_RANGE)
		return -EOPNOTSUPP;
	if (offset % block || length % block)
		return -EINVAL;
	if (offset >= st->st_size || length >= st->st_size - offset)
		return -EINVAL;
	return 0;
}

/*
 * Every fallocate mode is an extent change. Only collapse range can make
 * the file shorter (by length bytes): checked, then the window is clipped
 * to the new end first. Punch hole and zero range keep the size and, as
 * explained at extent_clip(), need no window work; allocate, zero range
 * without FALLOC_FL_KEEP_SIZE, and insert range may grow the file, which
 * extent_change_end() re-validates.
 */
static void pd_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *in = inode_get(fs, ino);
	struct pd_handle *h;
	struct stat st;
	int fd, err;

	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	h = handle_get(fs, fi->fh, ino, HANDLE_FILE);
	if (!h) {
		err = -EBADF;
		goto out_put;
	}
	/* What fallocate() itself answers first, before any window work. */
	if ((h->flags & O_ACCMODE) == O_RDONLY) {
		err = -EBADF;
		goto out_handle;
	}
	if (offset < 0 || length <= 0) {
		err = -EINVAL;
		goto out_handle;
	}
	fd = h->fd;
	err = creds_enter(req);
	if (err)
		goto out_handle;
	extent_change_begin(in);
	if (mode & FALLOC_FL_COLLAPSE_RANGE) {
		err = fstat(fd, &st) == -1 ? -errno : check_collapse(&st, offset, length, mode);
		if (!err)
			err = extent_flags_allow_shrink(fd);
		if (!err && in->collapse_refused)
			err = -EOPNOTSUPP;
		if (!err)
			err = extent_clip(fs, in, (uint64_t)(st.st_size - length));
	}
	if (!err && fallocate(fd, mode, offset, length) == -1) {
		err = -errno;
		/*
		 * A file system that cannot collapse says so only when asked
		 * (tmpfs, btrfs, NFS; on ext4 it depends on the file): remember
		 * it, so the next collapse of this file is refused before it
		 * clips the window.
		 */
		if (err == -EOPNOTSUPP && mode == FALLOC_FL_COLLAPSE_RANGE)
			in->collapse_refused = true;
	}
	extent_change_end(fs, in, fd);
	creds_restore(fs);
out_handle:
	handle_put(fs, h);
out_put:
	inode_put(fs, in);
	fuse_reply_err(req, -err);
}

/* SEEK_DATA / SEEK_HOLE: the client cannot know where the host has holes. */
static void pd_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_handle *h = handle_get(fs, fi->fh, ino, HANDLE_FILE);
	off_t res;

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	res = lseek(h->fd, off, whence);
	if (res == -1)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
	handle_put(fs, h);
}

/*
 * Lock two inodes for a copy: the source shared, the destination exclusive
 * (it is an extent change). Always lock the lower node id first, so two
 * copies in opposite directions cannot deadlock.
 */
static void lock_for_copy(struct pd_inode *src, struct pd_inode *dst)
{
	if (src == dst) {
		extent_change_begin(dst);
	} else if (src->nodeid < dst->nodeid) {
		pthread_rwlock_rdlock(&src->extent_lock);
		extent_change_begin(dst);
	} else {
		extent_change_begin(dst);
		pthread_rwlock_rdlock(&src->extent_lock);
	}
}

static void pd_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_inode *src = inode_get(fs, ino_in);
	struct pd_inode *dst = inode_get(fs, ino_out);
	struct pd_handle *h_in = NULL, *h_out = NULL;
	ssize_t res;

	if (!src || !dst) {
		res = -ESTALE;
		goto out_put;
	}
	/* Each handle must belong to its own side's inode. */
	h_in = handle_get(fs, fi_in->fh, ino_in, HANDLE_FILE);
	h_out = handle_get(fs, fi_out->fh, ino_out, HANDLE_FILE);
	if (!h_in || !h_out) {
		res = -EBADF;
		goto out_put;
	}
	res = creds_enter(req);
	if (res < 0)
		goto out_put;
	lock_for_copy(src, dst);
	res = copy_file_range(h_in->fd, &off_in, h_out->fd, &off_out, len, (unsigned int)flags);
	if (res == -1)
		res = -errno;
	if (src != dst)
		pthread_rwlock_unlock(&src->extent_lock);
	extent_change_end(fs, dst, h_out->fd);
	creds_restore(fs);
out_put:
	if (h_in)
		handle_put(fs, h_in);
	if (h_out)
		handle_put(fs, h_out);
	if (src)
		inode_put(fs, src);
	if (dst)
		inode_put(fs, dst);
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_write(req, (size_t)res);
}

/* ------------------------------------------------------------------------
 * Operations: locks
 *
 * POSIX (fcntl) locks are taken as open file description locks on the
 * handle's host descriptor: each open() by a client process has its own
 * handle, so two processes conflict as they would on a local file. Unlike
 * process-owned POSIX locks, two handles of one process also conflict with
 * each other, and a forked child shares its parent's handle and locks.
 */

static void pd_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_handle *h = handle_get(fs, fi->fh, ino, HANDLE_FILE);

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	lock->l_pid = 0;	/* OFD locks require it */
	if (fcntl(h->fd, F_OFD_GETLK, lock) == -1)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lock(req, lock);
	handle_put(fs, h);
}

/*
 * Blocking locks (F_SETLKW, flock without LOCK_NB) must not block a worker:
 * with every worker waiting for a lock, nothing would be left to serve the
 * unlock that ends the wait. So a worker tries the non-blocking form once,
 * and on a conflict hands the request to a waiter thread of its own, which
 * retries with a short backoff until it gets the lock, the client
 * interrupts the request (FUSE_INTERRUPT: the answer is EINTR), or the
 * session ends. The waiter holds a reference on the handle, so a RELEASE
 * cannot close the descriptor under it, and pd_destroy() waits for every
 * waiter before the handles are freed.
 */

#define PD_MAX_LOCK_WAITERS 1024	/* a peer's SETLKWs cannot make more threads */
#define PD_LOCK_RETRY_MIN_NS 1000000L	/* 1 ms, doubling up to... */
#define PD_LOCK_RETRY_MAX_NS 20000000L	/* ...20 ms between tries */

struct pd_lock_wait {
	struct pd_fs *fs;
	fuse_req_t req;
	struct pd_handle *h;	/* a reference of ours */
	struct flock lock;	/* a POSIX lock (flock_op 0) */
	int flock_op;		/* or flock()'s LOCK_SH / LOCK_EX */
	atomic_bool interrupted;	/* set by the interrupt callback */
};

/* One non-blocking try: 0, -EAGAIN while another holds a conflicting lock. */
static int lock_try(struct pd_lock_wait *w)
{
	int ret;

	if (w->flock_op) {
		ret = flock(w->h->fd, w->flock_op | LOCK_NB);
		if (ret == -1 && errno == EWOULDBLOCK)
			return -EAGAIN;
	} else {
		struct flock l = w->lock;

		ret = fcntl(w->h->fd, F_OFD_SETLK, &l);
		if (ret == -1 && errno == EACCES)
			return -EAGAIN;
	}
	return ret == -1 ? -errno : 0;
}

/*
 * Runs with the library's session lock held (FUSE_INTERRUPT): it must not
 * reply nor block, only tell the waiter.
 */
static void lock_interrupted(fuse_req_t req, void *data)
{
	struct pd_lock_wait *w = data;

	(void)req;
	atomic_store(&w->interrupted, true);
}

static void lock_wait_free(struct pd_lock_wait *w)
{
	struct pd_fs *fs = w->fs;

	handle_put(fs, w->h);
	free(w);
	pthread_mutex_lock(&fs->waiter_lock);
	if (--fs->waiters == 0)
		pthread_cond_broadcast(&fs->waiter_gone);
	pthread_mutex_unlock(&fs->waiter_lock);
}

static void *lock_waiter(void *arg)
{
	struct pd_lock_wait *w = arg;
	struct timespec delay = { 0, PD_LOCK_RETRY_MIN_NS };
	int err;

	/* Named, so `top -H` (and the tests) can tell waiters from workers. */
	pthread_setname_np(pthread_self(), "pd-lock-wait");
	for (;;) {
		err = lock_try(w);
		if (err != -EAGAIN)
			break;
		if (atomic_load(&w->interrupted) || atomic_load(&w->fs->stopping)) {
			err = -EINTR;
			break;
		}
		nanosleep(&delay, NULL);
		delay.tv_nsec = delay.tv_nsec * 2 > PD_LOCK_RETRY_MAX_NS ? PD_LOCK_RETRY_MAX_NS
									: delay.tv_nsec * 2;
	}
	/* Once this returns, the callback is not running and never will. */
	fuse_req_interrupt_func(w->req, NULL, NULL);
	fuse_reply_err(w->req, -err);
	lock_wait_free(w);
	return NULL;
}

/*
 * Take a lock for req (the handle reference h comes with it), waiting if
 * sleep is set. Always answers req.
 */
static void lock_or_wait(fuse_req_t req, struct pd_handle *h, const struct flock *lock,
			 int flock_op, bool sleep)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_lock_wait *w = calloc(1, sizeof(*w));
	pthread_attr_t attr;
	pthread_t thread;
	int err;

	if (!w) {
		handle_put(fs, h);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	w->fs = fs;
	w->req = req;
	w->h = h;
	if (lock)
		w->lock = *lock;
	w->flock_op = flock_op;
	atomic_init(&w->interrupted, false);
	err = lock_try(w);
	if (err != -EAGAIN || !sleep)
		goto out_reply;

	pthread_mutex_lock(&fs->waiter_lock);
	if (atomic_load(&fs->stopping) || fs->waiters >= PD_MAX_LOCK_WAITERS)
		err = -ENOLCK;
	else
		fs->waiters++;
	pthread_mutex_unlock(&fs->waiter_lock);
	if (err == -ENOLCK)
		goto out_reply;
	fuse_req_interrupt_func(req, lock_interrupted, w);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	err = -pthread_create(&thread, &attr, lock_waiter, w);
	pthread_attr_destroy(&attr);
	if (err == 0)
		return;		/* the waiter answers and frees w */
	fuse_log(FUSE_LOG_ERR, "passthrough_dax: cannot start a lock waiter: %s\n",
		 strerror(-err));
	fuse_req_interrupt_func(req, NULL, NULL);
	fuse_reply_err(req, ENOLCK);
	lock_wait_free(w);
	return;

out_reply:
	fuse_reply_err(req, -err);
	handle_put(fs, h);
	free(w);
}

static void pd_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	struct pd_handle *h = handle_get(pd_fs(req), fi->fh, ino, HANDLE_FILE);

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	lock->l_pid = 0;	/* OFD locks require it */
	lock_or_wait(req, h, lock, 0, sleep);
}

static void pd_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct pd_handle *h = handle_get(pd_fs(req), fi->fh, ino, HANDLE_FILE);

	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	lock_or_wait(req, h, NULL, op & ~LOCK_NB, !(op & LOCK_NB));
}

/*
 * The end of the session: waiters stop (answering EINTR) and are waited
 * for, since they use handles that main() is about to free.
 */
static void lock_waiters_stop(struct pd_fs *fs)
{
	atomic_store(&fs->stopping, true);
	pthread_mutex_lock(&fs->waiter_lock);
	while (fs->waiters > 0)
		pthread_cond_wait(&fs->waiter_gone, &fs->waiter_lock);
	pthread_mutex_unlock(&fs->waiter_lock);
}

/* ------------------------------------------------------------------------
 * Operations: DAX mappings
 */

/*
 * The client named a handle: it must be a live file handle of this very
 * inode (else EBADF), open in a mode that allows the protection asked for
 * (else EACCES: a write-only descriptor cannot be mapped at all).
 */
static int check_map_handle(const struct pd_handle *h, int prot)
{
	int mode = h->flags & O_ACCMODE;

	if (mode == O_WRONLY || ((prot & PROT_WRITE) && mode != O_RDWR))
		return -EACCES;
	return 0;
}

/*
 * Map [foffset, foffset + len) of ino at moffset of the window. This holds
 * the inode's lock shared, so it cannot run inside an extent change (steps
 * 1 and 6 of the contract).
 *
 * The Linux client sends no handle (fi is NULL): we open the file ourselves
 * with the daemon's credentials. The client checked the caller's access
 * when the file was opened; a mapping request comes from a page fault or
 * from the client's own housekeeping and has no caller worth checking. The
 * window keeps its own duplicate of the descriptor, so ours is closed again.
 *
 * Beyond what the library checked (doc/dax.md), the answers are: ESTALE for
 * an inode we do not know, EINVAL for one that is not a regular file, EBADF
 * for a handle that is not a live file handle of ino, EACCES for a handle
 * whose open mode does not allow the protection.
 */
static void pd_setupmapping(fuse_req_t req, fuse_ino_t ino, uint64_t foffset, uint64_t len,
			    uint64_t moffset, uint64_t flags, struct fuse_file_info *fi)
{
	struct pd_fs *fs = pd_fs(req);
	struct pd_handle *h = NULL;
	struct pd_inode *in;
	bool writable = flags & FUSE_DAX_MAP_WRITE;
	int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
	int fd, err;

	if (!fs->window) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	in = inode_get(fs, ino);
	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (in->type != S_IFREG) {
		err = -EINVAL;
		goto out_put;
	}
	if (fi) {
		h = handle_get(fs, fi->fh, ino, HANDLE_FILE);
		if (!h) {
			err = -EBADF;
			goto out_put;
		}
		err = check_map_handle(h, prot);
		fd = h->fd;
	} else {
		fd = inode_fd_hold(fs, in);
		if (!fd) {
			creds_daemon(fs);
			/*
			 * The VMM's window (it has no local address) is mapped
			 * writable up front when the file can be opened so: under
			 * the strict SHMEM rules the client's later read-to-write
			 * upgrade could only unmap pages that other guest processes
			 * still map, and kill the VM (doc/vhost-user.md, "DAX
			 * mapping changes"). The guest kernel still maps the pages
			 * read-only until it asks for the upgrade. Never for a
			 * read-only export: a guest kernel could then store to it.
			 */
			fd = -1;
			if (!writable && !fs->readonly && !fuse_dax_window_base(fs->window)) {
				fd = inode_open(fs, in, O_RDWR);
				if (fd >= 0)
					prot = PROT_READ | PROT_WRITE;
			}
			if (fd < 0)
				fd = inode_open(fs, in, writable ? O_RDWR : O_RDONLY);
			inode_fd_drop(fs, in);
		}
		err = fd < 0 ? fd : 0;
	}
	if (!err) {
		pthread_rwlock_rdlock(&in->extent_lock);
		err = fuse_dax_window_map(fs->window, moffset, len, fd, in->nodeid, foffset,
					  prot);
		pthread_rwlock_unlock(&in->extent_lock);
	}
	/*
	 * Another host process may change the file now: hear of it. The watch
	 * needs read access to the file: ours (with a handle, nothing above
	 * switched, and the worker may still act as an earlier caller).
	 */
	if (!err && inode_fd_hold(fs, in) == 0) {
		creds_daemon(fs);
		watch_inode(fs, in);
		inode_fd_drop(fs, in);
	}
	if (h)
		handle_put(fs, h);
	else if (fd >= 0)
		close(fd);
out_put:
	inode_put(fs, in);
	fuse_reply_err(req, -err);
}

/*
 * Unmap every range that has something mapped. A range with nothing mapped
 * at all is an error of the client's (the Linux client removes only ranges
 * it mapped): the others are still unmapped, and the answer is ENOENT,
 * unless the window failed on a range, whose error comes first. The
 * window's own lock orders this against a setup of the same range; no inode
 * lock is needed, since an unmapped range exposes nothing.
 */
static void pd_removemapping(fuse_req_t req, const struct fuse_dax_range *ranges,
			     unsigned int count)
{
	struct pd_fs *fs = pd_fs(req);
	int first_err = 0, ret;
	bool unmapped_before = false;
	unsigned int i;

	if (!fs->window) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	for (i = 0; i < count; i++) {
		ret = fuse_dax_window_unmap(fs->window, ranges[i].moffset, ranges[i].len);
		if (ret == -ENOENT)
			unmapped_before = true;
		else if (ret < 0 && first_err == 0)
			first_err = ret;
	}
	if (first_err == 0 && unmapped_before)
		first_err = -ENOENT;
	fuse_reply_err(req, -first_err);
}

/* ------------------------------------------------------------------------
 * Session start and end
 */

static void want(struct fuse_conn_info *conn, uint64_t cap, const char *what)
{
	if (!fuse_set_feature_flag(conn, cap))
		fuse_log(FUSE_LOG_INFO, "passthrough_dax: the client does not offer %s\n", what);
}

/*
 * -o passthrough at INIT. A file the client maps through the DAX window
 * never reaches a backing file, so with DAX mappings passthrough stays off.
 * A source on overlayfs or FUSE is itself stacked: allow one layer under
 * the backing files (then nothing may be stacked over this mount).
 */
#define PD_OVERLAYFS_MAGIC 0x794c7630	/* statfs(2) f_type values */
#define PD_FUSE_MAGIC 0x65735546

static void want_passthrough(struct pd_fs *fs, struct fuse_conn_info *conn)
{
	struct statfs sfs;

	if (conn->want_ext & FUSE_CAP_DAX_MAPPING) {
		fuse_log(FUSE_LOG_INFO, "passthrough_dax: -o passthrough: the client maps "
			 "files through the DAX window; passthrough off\n");
		return;
	}
	want(conn, FUSE_CAP_PASSTHROUGH, "FUSE passthrough (-o passthrough)");
	if (fstatfs(fs->root.fd, &sfs) == 0 &&
	    (sfs.f_type == PD_OVERLAYFS_MAGIC || sfs.f_type == PD_FUSE_MAGIC))
		conn->max_backing_stack_depth = FUSE_BACKING_STACKED_OVER;
}

static void pd_init(void *userdata, struct fuse_conn_info *conn)
{
	struct pd_fs *fs = userdata;

	atomic_store(&fs->stopping, false);	/* a new INIT after a DESTROY */
	/* Locks are kept on the host, so every client sees the same ones. */
	if (fs->posix_lock)
		want(conn, FUSE_CAP_POSIX_LOCKS, "POSIX locks");
	else
		fuse_unset_feature_flag(conn, FUSE_CAP_POSIX_LOCKS);
	if (fs->flock)
		want(conn, FUSE_CAP_FLOCK_LOCKS, "flock locks");
	else
		fuse_unset_feature_flag(conn, FUSE_CAP_FLOCK_LOCKS);
	/* Open with O_TRUNC arrives as one OPEN, truncated under the contract. */
	want(conn, FUSE_CAP_ATOMIC_O_TRUNC, "atomic O_TRUNC");
	/* We clear set-user-ID bits; the client leaves that to us. */
	if (fs->killpriv_v2)
		want(conn, FUSE_CAP_HANDLE_KILLPRIV_V2, "handle_killpriv_v2");
	else
		fuse_unset_feature_flag(conn, FUSE_CAP_HANDLE_KILLPRIV_V2);
	if (fs->writeback)
		want(conn, FUSE_CAP_WRITEBACK_CACHE, "a write-back cache");
	if (fs->window)
		want(conn, FUSE_CAP_DAX_MAPPING, "DAX mappings");
	if (dax_per_inode(fs))
		want(conn, FUSE_CAP_DAX_INODE, "per-inode DAX");
	if (fs->passthrough)
		want_passthrough(fs, conn);
	/* The user's -o max_write=, readdirplus=... have the last word. */
	fuse_apply_conn_info_opts(fs->conn_opts, conn);
	/* Opens must follow the cache mode the connection really has. */
	fs->writeback = (conn->want_ext & FUSE_CAP_WRITEBACK_CACHE) != 0;
	fs->passthrough = fs->passthrough && !fs->writeback &&
			  (conn->want_ext & FUSE_CAP_PASSTHROUGH);
}

/*
 * The client never removes its mappings on unmount or disconnect, so drop
 * every one here: no window range may keep a host file open or mapped.
 */
static void pd_destroy(void *userdata)
{
	struct pd_fs *fs = userdata;

	lock_waiters_stop(fs);
	watch_stop(fs);
	if (fs->window)
		fuse_dax_window_unmap_all(fs->window);
	inodes_forget_all(fs);
}

const struct fuse_lowlevel_ops pd_ops = {
	.init = pd_init,
	.destroy = pd_destroy,
	.lookup = pd_lookup,
	.forget = pd_forget,
	.forget_multi = pd_forget_multi,
	.getattr = pd_getattr,
	.statx = pd_statx,
	.setattr = pd_setattr,
	.readlink = pd_readlink,
	.mknod = pd_mknod,
	.mkdir = pd_mkdir,
	.symlink = pd_symlink,
	.link = pd_link,
	.unlink = pd_unlink,
	.rmdir = pd_rmdir,
	.rename = pd_rename,
	.open = pd_open,
	.create = pd_create,
	.tmpfile = pd_tmpfile,
	.read = pd_read,
	.write_buf = pd_write_buf,
	.flush = pd_flush,
	.release = pd_release,
	.fsync = pd_fsync,
	.opendir = pd_opendir,
	.readdir = pd_readdir,
	.readdirplus = pd_readdirplus,
	.releasedir = pd_releasedir,
	.fsyncdir = pd_fsyncdir,
	.statfs = pd_statfs,
	.access = pd_access,
	.setxattr = pd_setxattr,
	.getxattr = pd_getxattr,
	.listxattr = pd_listxattr,
	.removexattr = pd_removexattr,
	.fallocate = pd_fallocate,
	.lseek = pd_lseek,
	.copy_file_range = pd_copy_file_range,
	.getlk = pd_getlk,
	.setlk = pd_setlk,
	.flock = pd_flock,
	.setupmapping = pd_setupmapping,
	.removemapping = pd_removemapping,
	.syncfs = pd_syncfs,
};
