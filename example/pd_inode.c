/*
 * passthrough_dax: the inode table (the host files the client knows, by
 * node id and by host identity) and small helpers over inode descriptors.
 */
#include "passthrough_dax.h"

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

/* Close and free an inode; a tdestroy() callback at the end of the program. */
void inode_close(void *p)
{
	struct pd_inode *in = p;

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
	 * window does not keep the host file open.
	 */
	if (fs->window)
		fuse_dax_window_unmap_inode(fs->window, in->nodeid);
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
 * the descriptor calls creds_daemon() first.
 */

/* 0, or why in has no descriptor now (a negative errno). */
int inode_fd_hold(struct pd_fs *fs, struct pd_inode *in)
{
	(void)fs;
	(void)in;
	return 0;
}

void inode_fd_drop(struct pd_fs *fs, struct pd_inode *in)
{
	(void)fs;
	(void)in;
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
 * Find or make the inode for the host file behind fd (O_PATH, whose stat is
 * st) and count one kernel reference to it; the inode comes with its
 * descriptor held (inode_fd_drop() when done). Takes ownership of fd: it is
 * kept, or closed if the inode already had a descriptor.
 */
int inode_lookup_ref(struct pd_fs *fs, int fd, const struct stat *st,
			    struct pd_inode **out)
{
	struct pd_inode key = { .dev = st->st_dev, .ino = st->st_ino };
	struct pd_inode *in, *fresh;
	void **found;

	fresh = calloc(1, sizeof(*fresh));
	if (!fresh) {
		close(fd);
		return -ENOMEM;
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
		fd = -1;
		pthread_rwlock_init(&in->extent_lock, NULL);
		if (!tsearch(in, &fs->by_nodeid, cmp_nodeid) ||
		    !tsearch(in, &fs->by_host_id, cmp_host_id)) {
			tdelete(in, &fs->by_nodeid, cmp_nodeid);
			pthread_mutex_unlock(&fs->lock);
			pthread_rwlock_destroy(&in->extent_lock);
			close(in->fd);
			free(in);
			return -ENOMEM;
		}
	}
	in->nlookup++;
	pthread_mutex_unlock(&fs->lock);
	free(fresh);
	if (fd >= 0)
		close(fd);
	*out = in;
	return 0;
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


struct fd_path fd_path(int fd)
{
	struct fd_path p;

	snprintf(p.s, sizeof(p.s), "/proc/self/fd/%d", fd);
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
	return fd == -1 ? -errno : fd;
}

bool name_is_component(const char *name)
{
	/* The library rejects these already; the jail does not depend on it. */
	return name[0] != '\0' && strchr(name, '/') == NULL &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}
