/*
 * passthrough_dax: the inode table (the host files the client knows, by
 * node id and by host identity), how an inode gets its descriptor (kept for
 * life, or opened on demand from a file handle), and small helpers over
 * inode descriptors.
 */
#include "passthrough_dax.h"

/* ------------------------------------------------------------------------
 * Running out
 *
 * When descriptors or memory run out, the request that needed one gets the
 * errno and the daemon goes on. The log says so, but a directory of a
 * million entries listed under too low a limit must not write a million
 * lines: the first failure is logged, then every 1024th, with the count.
 */

void pd_log_counted(struct pd_fs *fs, atomic_ulong *count, const char *what,
		    const char *why)
{
	unsigned long n = atomic_fetch_add(count, 1) + 1;

	(void)fs;
	if (n == 1 || n % 1024 == 0)
		fuse_log(FUSE_LOG_ERR,
			 "passthrough_dax: %s: %s (%lu such failures so far; each request "
			 "got the error, the daemon goes on)\n", what, why, n);
}

void pd_log_exhausted(struct pd_fs *fs, const char *what, int err)
{
	char why[160];

	snprintf(why, sizeof(why), "%s (see -o rlimit_nofile= and -o inode_file_handles=)",
		 strerror(-err));
	pd_log_counted(fs, &fs->exhausted, what, why);
}

static bool is_exhaustion(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM;
}

/* ------------------------------------------------------------------------
 * The inode table
 */

static int cmp_nodeid(const void *a, const void *b)
{
	const struct pd_inode *x = a, *y = b;

	return x->nodeid < y->nodeid ? -1 : x->nodeid > y->nodeid;
}

static int cmp_host_id(const void *a, const void *b)
{
	const struct pd_inode *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/*
 * Take a use of the inode the kernel calls nodeid, so it stays alive until
 * inode_put() even if a forget arrives meanwhile. NULL if we do not know it.
 */
struct pd_inode *inode_get(struct pd_fs *fs, fuse_ino_t nodeid)
{
	struct pd_inode key = { .nodeid = nodeid };
	struct pd_inode *in = NULL;
	void **found;

	if (nodeid == FUSE_ROOT_ID)
		return &fs->root;
	pthread_mutex_lock(&fs->lock);
	found = tfind(&key, &fs->by_nodeid, cmp_nodeid);
	if (found) {
		in = *found;
		in->users++;
	}
	pthread_mutex_unlock(&fs->lock);
	return in;
}

static void idle_remove(struct pd_fs *fs, struct pd_inode *in);

/* Close and free an inode; a tdestroy() callback at the end of the program. */
void inode_close(void *p)
{
	struct pd_inode *in = p;

	if (in->fd >= 0)
		close(in->fd);
	pthread_rwlock_destroy(&in->extent_lock);
	free(in);
}

/* tdestroy() callback for by_host_id: its inodes are freed through by_nodeid. */
void tree_node_keep(void *p)
{
	(void)p;
}

/* Free an inode nobody refers to. Called without fs->lock. */
static void inode_free(struct pd_fs *fs, struct pd_inode *in)
{
	/*
	 * The client sends REMOVEMAPPING only on reclaim and eviction, and an
	 * inode it forgot can have no mappings it still uses: drop ours, so the
	 * window does not keep the host file open, nor a watch of it.
	 */
	if (fs->window)
		fuse_dax_window_unmap_inode(fs->window, in->nodeid);
	watch_forget(fs, in);
	if (in->handle) {
		/*
		 * No request uses it. An open file may still hold the descriptor
		 * (a peer that forgets before it releases): it is closed anyway,
		 * and that file's release finds no inode to give it back to.
		 */
		pthread_mutex_lock(&fs->fd_lock);
		if (in->fd >= 0 && in->fd_holds == 0)
			idle_remove(fs, in);
		pthread_mutex_unlock(&fs->fd_lock);
	}
	inode_close(in);
}

/* Drop nlookup kernel references and users uses; free the inode at zero. */
void inode_unref(struct pd_fs *fs, struct pd_inode *in, uint64_t nlookup,
			unsigned int users)
{
	bool dead;

	if (in == &fs->root)
		return;		/* the root lives as long as the file system */
	pthread_mutex_lock(&fs->lock);
	in->nlookup -= nlookup < in->nlookup ? nlookup : in->nlookup;
	in->users -= users;
	dead = in->nlookup == 0 && in->users == 0;
	if (dead) {
		tdelete(in, &fs->by_nodeid, cmp_nodeid);
		tdelete(in, &fs->by_host_id, cmp_host_id);
	}
	pthread_mutex_unlock(&fs->lock);
	if (dead)
		inode_free(fs, in);
}

/* twalk_r() callback of inodes_forget_all(): collect each inode once. */
struct inode_list {
	struct pd_inode **v;
	size_t n, cap;
	bool short_of_memory;
};

static void collect_inode(const void *node, VISIT which, void *closure)
{
	struct inode_list *l = closure;

	if (which != postorder && which != leaf)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct pd_inode **v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->short_of_memory = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *(struct pd_inode *const *)node;
}

/*
 * The client is gone (DESTROY, or a new INIT without one after a guest
 * was reset): it knows no inode any more, so drop every lookup it held, as
 * if it had sent each FORGET. An inode a request still uses lives until
 * that request ends.
 */
void inodes_forget_all(struct pd_fs *fs)
{
	struct inode_list l = { 0 };

	pthread_mutex_lock(&fs->lock);
	twalk_r(fs->by_nodeid, collect_inode, &l);
	pthread_mutex_unlock(&fs->lock);
	if (l.short_of_memory)
		fuse_log(FUSE_LOG_ERR, "passthrough_dax: out of memory while forgetting the old "
			 "client's inodes: some stay known until the end\n");
	for (size_t i = 0; i < l.n; i++)
		inode_unref(fs, l.v[i], UINT64_MAX, 0);
	free(l.v);
}

void inode_put(struct pd_fs *fs, struct pd_inode *in)
{
	inode_unref(fs, in, 0, 1);
}

/* ------------------------------------------------------------------------
 * Inode descriptors
 *
 * An operation that works on the host file through in->fd holds the
 * descriptor for the length of the request: in->fd is valid between
 * inode_fd_hold() and inode_fd_drop() (or inode_get_fd() and
 * inode_put_fd()), and nowhere else. Take it with the daemon's own
 * credentials, before creds_enter(): a worker may still act as the last
 * caller it served (pd_creds.c), so whatever needs our privileges to get
 * the descriptor (opening by handle needs CAP_DAC_READ_SEARCH, which a
 * thread acting as a caller does not have) calls creds_daemon() first.
 *
 * With -o inode_file_handles=never (the default) every inode keeps its
 * O_PATH descriptor from lookup to forget: one descriptor per inode the
 * client knows, so RLIMIT_NOFILE bounds how many files a client may know
 * at once (`ls -l` of a directory bigger than that fails with EMFILE).
 *
 * With prefer or mandatory an inode keeps a file handle instead
 * (name_to_handle_at, a few dozen bytes) and opens its descriptor with
 * open_by_handle_at() when a request needs it. Descriptors nobody holds
 * stay open in a cache of at most idle_max, oldest closed first, so a
 * working set of files does not pay an open per request. Open files hold
 * their inode's descriptor as long as they are open: a file unlinked while
 * open can no longer be opened by handle (ext4 answers ESTALE), but must
 * still answer getattr and setattr.
 *
 * prefer falls back to a descriptor for life, per file, where the host file
 * system cannot make handles (/proc, some FUSE file systems) or the file
 * has no name (O_TMPFILE, or unlinked before we saw it); mandatory refuses
 * to look such files up (EOPNOTSUPP) and refuses to start where
 * open_by_handle_at() is not allowed at all (not root, or inside a user
 * namespace, where the kernel opens only directories by handle).
 */

static struct pd_mount *mount_find_locked(struct pd_fs *fs, int mount_id)
{
	for (unsigned int i = 0; i < fs->mount_count; i++)
		if (fs->mounts[i].mount_id == mount_id)
			return &fs->mounts[i];
	return NULL;
}

/*
 * The descriptor of mount mount_id to open handles with, or -errno. Only a
 * directory or a regular file is reopened (never a device or a fifo).
 */
static int mount_fd_locked(struct pd_fs *fs, int mount_id)
{
	struct pd_mount *m = mount_find_locked(fs, mount_id);
	struct stat st;

	if (!m)
		return -ESTALE;
	if (m->fd >= 0)
		return m->fd;
	if (fstat(m->path_fd, &st) == -1)
		return -errno;
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return -ESTALE;
	m->fd = openat(fs->proc_fd, fd_name(m->path_fd).s,
		       O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	return m->fd < 0 ? -errno : m->fd;
}

/* Know mount mount_id, through a duplicate of fd (a file on it). */
static int mount_add(struct pd_fs *fs, int mount_id, int fd)
{
	struct pd_mount *grown;
	int dup_fd, err = 0;

	pthread_mutex_lock(&fs->fd_lock);
	if (mount_find_locked(fs, mount_id))
		goto out_unlock;
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0) {
		err = -errno;
		goto out_unlock;
	}
	grown = realloc(fs->mounts, (fs->mount_count + 1) * sizeof(*grown));
	if (!grown) {
		close(dup_fd);
		err = -ENOMEM;
		goto out_unlock;
	}
	fs->mounts = grown;
	fs->mounts[fs->mount_count].mount_id = mount_id;
	fs->mounts[fs->mount_count].path_fd = dup_fd;
	fs->mounts[fs->mount_count].fd = -1;
	fs->mount_count++;
out_unlock:
	pthread_mutex_unlock(&fs->fd_lock);
	return err;
}

static void idle_remove(struct pd_fs *fs, struct pd_inode *in)
{
	if (in->idle_prev)
		in->idle_prev->idle_next = in->idle_next;
	else
		fs->idle_newest = in->idle_next;
	if (in->idle_next)
		in->idle_next->idle_prev = in->idle_prev;
	else
		fs->idle_oldest = in->idle_prev;
	in->idle_prev = in->idle_next = NULL;
	fs->idle_count--;
}

static void idle_push(struct pd_fs *fs, struct pd_inode *in)
{
	in->idle_prev = NULL;
	in->idle_next = fs->idle_newest;
	if (fs->idle_newest)
		fs->idle_newest->idle_prev = in;
	else
		fs->idle_oldest = in;
	fs->idle_newest = in;
	fs->idle_count++;
}

/*
 * Take the oldest idle descriptors out of the cache until at most keep are
 * left; returns one to close (the caller closes it outside the lock), or
 * -1 when there is nothing more to take.
 */
static int idle_take_oldest_locked(struct pd_fs *fs, unsigned long keep)
{
	struct pd_inode *in = fs->idle_oldest;
	int fd;

	if (!in || fs->idle_count <= keep)
		return -1;
	idle_remove(fs, in);
	fd = in->fd;
	in->fd = -1;
	return fd;
}

/* Close idle descriptors until at most keep are cached. */
static void idle_trim(struct pd_fs *fs, unsigned long keep)
{
	int fd;

	for (;;) {
		pthread_mutex_lock(&fs->fd_lock);
		fd = idle_take_oldest_locked(fs, keep);
		pthread_mutex_unlock(&fs->fd_lock);
		if (fd < 0)
			return;
		close(fd);
	}
}

/* Give every idle cached descriptor back (we ran out): true if any was. */
static bool idle_reclaim(struct pd_fs *fs)
{
	bool any;

	pthread_mutex_lock(&fs->fd_lock);
	any = fs->idle_count > 0;
	pthread_mutex_unlock(&fs->fd_lock);
	idle_trim(fs, 0);
	return any;
}

/* open_by_handle_at() of in's handle: an O_PATH descriptor or -errno. */
static int open_handle(struct pd_fs *fs, const struct pd_inode *in)
{
	uid_t euid = creds_borrow_daemon(fs);
	int mfd, fd;

	pthread_mutex_lock(&fs->fd_lock);
	mfd = mount_fd_locked(fs, in->handle->mount_id);
	/* The mount descriptor stays open until the file system ends. */
	pthread_mutex_unlock(&fs->fd_lock);
	if (mfd < 0) {
		creds_return(fs, euid);
		return mfd;
	}
	fd = open_by_handle_at(mfd, (struct file_handle *)&in->handle->fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	creds_return(fs, euid);
	return fd;
}

/* 0, or why in has no descriptor now (a negative errno). */
int inode_fd_hold(struct pd_fs *fs, struct pd_inode *in)
{
	int fd;

	if (!in->handle)
		return 0;
	pthread_mutex_lock(&fs->fd_lock);
	if (in->fd >= 0) {
		if (in->fd_holds++ == 0)
			idle_remove(fs, in);
		pthread_mutex_unlock(&fs->fd_lock);
		return 0;
	}
	pthread_mutex_unlock(&fs->fd_lock);

	fd = open_handle(fs, in);
	if (is_exhaustion(fd) && idle_reclaim(fs))
		fd = open_handle(fs, in);
	if (fd < 0) {
		if (is_exhaustion(fd)) {
			char what[64];

			snprintf(what, sizeof(what), "inode %" PRIu64 ": open by file handle",
				 in->nodeid);
			pd_log_exhausted(fs, what, fd);
		}
		return fd;
	}

	pthread_mutex_lock(&fs->fd_lock);
	if (in->fd >= 0) {
		/* Another request opened it meanwhile: use theirs. */
		if (in->fd_holds++ == 0)
			idle_remove(fs, in);
		pthread_mutex_unlock(&fs->fd_lock);
		close(fd);
		return 0;
	}
	in->fd = fd;
	in->fd_holds = 1;
	pthread_mutex_unlock(&fs->fd_lock);
	return 0;
}

void inode_fd_drop(struct pd_fs *fs, struct pd_inode *in)
{
	bool over;

	if (!in->handle)
		return;
	pthread_mutex_lock(&fs->fd_lock);
	if (--in->fd_holds == 0)
		idle_push(fs, in);
	over = fs->idle_count > fs->idle_max;
	pthread_mutex_unlock(&fs->fd_lock);
	if (over)
		idle_trim(fs, fs->idle_max);
}

/*
 * inode_get() with the descriptor held. NULL with *err -ESTALE for a node
 * id we do not know, or the reason the descriptor cannot be had.
 */
struct pd_inode *inode_get_fd(struct pd_fs *fs, fuse_ino_t nodeid, int *err)
{
	struct pd_inode *in = inode_get(fs, nodeid);

	if (!in) {
		*err = -ESTALE;
		return NULL;
	}
	*err = inode_fd_hold(fs, in);
	if (*err) {
		inode_put(fs, in);
		return NULL;
	}
	return in;
}

void inode_put_fd(struct pd_fs *fs, struct pd_inode *in)
{
	inode_fd_drop(fs, in);
	inode_put(fs, in);
}

/*
 * The file handle of the file behind fd, in a new allocation of
 * extra + sizeof(struct pd_fhandle) + its bytes, the handle at offset extra;
 * NULL with *err: -EOPNOTSUPP where the host file system makes none, or
 * another negative errno.
 */
static void *handle_alloc(struct pd_fs *fs, int fd, size_t extra, int *err)
{
	union {
		struct file_handle fh;
		char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	struct pd_fhandle *fh;
	int mount_id;
	char *mem;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) == -1) {
		*err = errno == EOVERFLOW || errno == ENOTSUP ? -EOPNOTSUPP : -errno;
		return NULL;
	}
	*err = mount_add(fs, mount_id, fd);
	if (*err)
		return NULL;
	mem = calloc(1, extra + sizeof(*fh) + h.fh.handle_bytes);
	if (!mem) {
		*err = -ENOMEM;
		return NULL;
	}
	fh = (struct pd_fhandle *)(mem + extra);
	fh->mount_id = mount_id;
	memcpy(&fh->fh, &h.fh, sizeof(h.fh) + h.fh.handle_bytes);
	return mem;
}

/*
 * A new inode for the host file behind fd (whose stat is st), with a file
 * handle if the mode asks for one and the file has one. NULL with *err.
 */
static struct pd_inode *inode_alloc(struct pd_fs *fs, int fd, const struct stat *st,
				    int *err)
{
	struct pd_inode *in;
	char what[64];

	/*
	 * An unnamed file (O_TMPFILE, or unlinked since) cannot be opened by
	 * handle (ext4 answers ESTALE), and can be reached only through the
	 * open file it came from: it keeps its descriptor, whatever the mode.
	 */
	if (fs->fhandles == FHANDLES_NEVER || (st->st_nlink == 0 && !S_ISDIR(st->st_mode))) {
		in = calloc(1, sizeof(*in));
		*err = in ? 0 : -ENOMEM;
		return in;
	}
	in = handle_alloc(fs, fd, sizeof(*in), err);
	if (in) {
		in->handle = (struct pd_fhandle *)(in + 1);
		return in;
	}
	if (*err == -EOPNOTSUPP && fs->fhandles == FHANDLES_MANDATORY) {
		snprintf(what, sizeof(what), "host inode %lu on device %u:%u",
			 (unsigned long)st->st_ino, major(st->st_dev), minor(st->st_dev));
		pd_log_counted(fs, &fs->no_handle, what,
			       "its file system makes no file handles, and "
			       "-o inode_file_handles=mandatory: lookup refused");
		return NULL;
	}
	if (*err != -EOPNOTSUPP)
		return NULL;
	/* prefer: this one keeps its descriptor. */
	in = calloc(1, sizeof(*in));
	*err = in ? 0 : -ENOMEM;
	return in;
}

/*
 * Find or make the inode for the host file behind fd (O_PATH, whose stat is
 * st) and count one kernel reference to it; the inode comes as from
 * inode_get_fd() (inode_put_fd() when done). Takes ownership of fd: it is
 * kept, or closed if the inode already had a descriptor.
 */
int inode_lookup_ref(struct pd_fs *fs, int fd, const struct stat *st,
			    struct pd_inode **out)
{
	struct pd_inode key = { .dev = st->st_dev, .ino = st->st_ino };
	struct pd_inode *in, *fresh;
	void **found;
	int err;

	fresh = inode_alloc(fs, fd, st, &err);
	if (!fresh) {
		if (err == -ENOMEM)
			pd_log_exhausted(fs, "a new inode", err);
		close(fd);
		return err;
	}
	pthread_mutex_lock(&fs->lock);
	found = tfind(&key, &fs->by_host_id, cmp_host_id);
	if (found) {
		in = *found;
	} else if (fs->root.dev == key.dev && fs->root.ino == key.ino) {
		in = &fs->root;	/* "..", or a hard link to the root */
	} else {
		in = fresh;
		fresh = NULL;
		in->nodeid = fs->next_nodeid++;
		in->dev = st->st_dev;
		in->ino = st->st_ino;
		in->type = st->st_mode & S_IFMT;
		in->fd = fd;
		in->fd_holds = 1;
		fd = -1;
		extent_lock_init(&in->extent_lock);
		if (!tsearch(in, &fs->by_nodeid, cmp_nodeid) ||
		    !tsearch(in, &fs->by_host_id, cmp_host_id)) {
			tdelete(in, &fs->by_nodeid, cmp_nodeid);
			pthread_mutex_unlock(&fs->lock);
			pthread_rwlock_destroy(&in->extent_lock);
			close(in->fd);
			free(in);
			pd_log_exhausted(fs, "a new inode", -ENOMEM);
			return -ENOMEM;
		}
	}
	in->nlookup++;
	if (in != &fs->root)
		in->users++;	/* the caller's use, as from inode_get() */
	pthread_mutex_unlock(&fs->lock);
	free(fresh);
	if (fd >= 0 && in->handle) {
		/* Known, with a handle: adopt fd if its descriptor was closed. */
		pthread_mutex_lock(&fs->fd_lock);
		if (in->fd < 0) {
			in->fd = fd;
			in->fd_holds = 1;
			fd = -1;
		} else if (in->fd_holds++ == 0) {
			idle_remove(fs, in);
		}
		pthread_mutex_unlock(&fs->fd_lock);
	}
	if (fd >= 0)
		close(fd);
	*out = in;
	return 0;
}

/*
 * After the sandbox is in place (which decides whether the kernel lets us
 * open by handle at all): make sure file handles work here, or fall back
 * (prefer) or refuse to start (mandatory). 0 or -1 after printing why.
 */
int inode_handles_start(struct pd_fs *fs)
{
	union {
		struct file_handle fh;
		char space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	const char *why;
	int mount_id, fd, err;

	if (fs->fhandles == FHANDLES_NEVER)
		return 0;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	why = "name_to_handle_at";
	err = 0;
	if (name_to_handle_at(fs->root.fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) == -1)
		err = -errno;
	if (!err) {
		why = "a mount descriptor";
		err = mount_add(fs, mount_id, fs->root.fd);
	}
	if (!err) {
		pthread_mutex_lock(&fs->fd_lock);
		fd = mount_fd_locked(fs, mount_id);
		pthread_mutex_unlock(&fs->fd_lock);
		err = fd < 0 ? fd : 0;
	}
	if (!err) {
		why = "open_by_handle_at";
		fd = open_by_handle_at(fd, &h.fh, O_PATH | O_CLOEXEC);
		if (fd < 0)
			err = -errno;
		else
			close(fd);
	}
	if (!err)
		return 0;
	err = -err;
	if (fs->fhandles == FHANDLES_PREFER) {
		fuse_log(FUSE_LOG_INFO,
			 "passthrough_dax: inode_file_handles=prefer: %s on the source: %s; "
			 "every inode keeps a descriptor\n", why, strerror(err));
		fs->fhandles = FHANDLES_NEVER;
		return 0;
	}
	fuse_log(FUSE_LOG_ERR,
		 "passthrough_dax: inode_file_handles=mandatory: %s on the source: %s%s\n",
		 why, strerror(err),
		 err == EPERM ? " (opening by handle needs CAP_DAC_READ_SEARCH outside any "
				"user namespace: run as root, and not with -o modcaps=-dac_read_search)"
			      : "");
	return -1;
}

/* The end of the file system: close the mount descriptors. */
void inode_handles_stop(struct pd_fs *fs)
{
	for (unsigned int i = 0; i < fs->mount_count; i++) {
		close(fs->mounts[i].path_fd);
		if (fs->mounts[i].fd >= 0)
			close(fs->mounts[i].fd);
	}
	free(fs->mounts);
	fs->mounts = NULL;
	fs->mount_count = 0;
}

/* ------------------------------------------------------------------------
 * Small helpers over inode descriptors
 */


struct fd_name fd_name(int fd)
{
	struct fd_name n;

	snprintf(n.s, sizeof(n.s), "%d", fd);
	return n;
}


/*
 * The path form: "/proc/self/fd/N", or just "N" inside a sandbox, whose
 * working directory is that directory (there is no /proc in its tree).
 */
struct fd_path fd_path(const struct pd_fs *fs, int fd)
{
	struct fd_path p;

	snprintf(p.s, sizeof(p.s), "%s%d", fs->fd_dir, fd);
	return p;
}

/* The caller holds in's descriptor (as for every helper below). */
int inode_stat(const struct pd_inode *in, struct stat *st)
{
	if (fstatat(in->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	return 0;
}

/*
 * An O_PATH descriptor of name in dir (the child a lookup finds), or
 * -errno. Out of descriptors, idle cached ones are given back and the open
 * tried once more; if it still fails, the failure is logged.
 */
int inode_open_child(struct pd_fs *fs, const struct pd_inode *dir, const char *name)
{
	int fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1 && (errno == EMFILE || errno == ENFILE) && idle_reclaim(fs))
		fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		fd = -errno;
		if (is_exhaustion(fd))
			pd_log_exhausted(fs, "lookup", fd);
	}
	return fd;
}

/* Attributes as the client sees them (owners through -o uid_map/gid_map). */
int inode_attr(const struct pd_fs *fs, const struct pd_inode *in, struct stat *st)
{
	int err = inode_stat(in, st);

	if (!err)
		idmap_stat(fs, st);
	return err;
}

/*
 * Open a regular file or directory for I/O. Re-opening through
 * /proc/self/fd/N gives a real descriptor of exactly the file our O_PATH
 * descriptor names; it cannot follow a symlink, because we checked that the
 * inode is not one (its type never changes). Fifos, sockets and device
 * nodes are refused: the kernel handles opens of those on the client side
 * itself (FUSE never sends OPEN for them), so a request to open one is not
 * from a well-behaved client, and opening one here could block or reach a
 * host device.
 */
int inode_open(struct pd_fs *fs, const struct pd_inode *in, int flags)
{
	int fd;

	if (in->type != S_IFREG && in->type != S_IFDIR)
		return -EACCES;
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
	fd = openat(fs->proc_fd, fd_name(in->fd).s, flags | O_CLOEXEC);
	if (fd == -1 && (errno == EMFILE || errno == ENFILE) && idle_reclaim(fs))
		fd = openat(fs->proc_fd, fd_name(in->fd).s, flags | O_CLOEXEC);
	if (fd == -1) {
		fd = -errno;
		if (is_exhaustion(fd))
			pd_log_exhausted(fs, "open of a file for I/O", fd);
	}
	return fd;
}

bool name_is_component(const char *name)
{
	/* The library rejects these already; the jail does not depend on it. */
	return name[0] != '\0' && strchr(name, '/') == NULL &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}
