/*
 * passthrough_dax: the handle table. The fh of an open file or directory
 * is an id looked up here, never a descriptor number.
 */
#include "passthrough_dax.h"

/* ------------------------------------------------------------------------
 * The handle table
 *
 * The fh we give the client for an open file or directory is an id in this
 * table, never a descriptor number or a pointer. fh comes back from a peer
 * we do not trust (over vhost-user, a guest kernel): a descriptor number
 * would let it name any descriptor of this process (/dev/fuse, a file of
 * another inode, one already closed), and a pointer would let it name any
 * memory. An id is looked up, checked against the inode and the kind of the
 * request, and anything else is answered with EBADF.
 *
 * Ids count up from 2^32 and are never reused, so no descriptor number, no
 * small integer and no released handle ever names a live handle.
 *
 * A request that uses a handle holds a reference: a RELEASE that races with
 * it takes the handle out of the table at once (no new request finds it),
 * but the descriptor is closed only when the last user is done with it.
 */


static int cmp_handle_id(const void *a, const void *b)
{
	const struct pd_handle *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Close an open file (dir NULL) or directory stream (its fd goes with it). */
static void close_open(int fd, struct pd_dir *dir)
{
	if (dir) {
		closedir(dir->dp);
		pthread_mutex_destroy(&dir->lock);
		free(dir);
	} else {
		close(fd);
	}
}

/* A tdestroy() callback too, hence void *. */
void handle_free(void *p)
{
	struct pd_handle *h = p;

	close_open(h->fd, h->dir);
	free(h);
}

/*
 * An open file keeps its inode's descriptor open (pd_inode.c, "Inode
 * descriptors"): a file unlinked while open cannot be opened by handle any
 * more, and must still answer getattr and setattr.
 */
static int handle_hold_inode_fd(struct pd_fs *fs, fuse_ino_t nodeid)
{
	struct pd_inode *in = inode_get(fs, nodeid);
	int err;

	if (!in)
		return -ESTALE;
	err = inode_fd_hold(fs, in);
	inode_put(fs, in);
	return err;
}

static void handle_drop_inode_fd(struct pd_fs *fs, fuse_ino_t nodeid)
{
	struct pd_inode *in = inode_get(fs, nodeid);

	/* None if a peer forgot the inode before it released the file. */
	if (in) {
		inode_fd_drop(fs, in);
		inode_put(fs, in);
	}
}

/* The last reference is gone: give the inode's descriptor back, and free. */
static void handle_destroy(struct pd_fs *fs, struct pd_handle *h)
{
	handle_drop_inode_fd(fs, h->nodeid);
	handle_free(h);
}

/*
 * Enter an open file (dir NULL, fd its descriptor) or directory (dir its
 * stream, fd = dirfd(dir->dp)) opened on inode nodeid, and return its id in
 * *fh. Takes ownership of fd and dir whatever happens: on failure they are
 * closed.
 */
int handle_new(struct pd_fs *fs, fuse_ino_t nodeid, int fd, struct pd_dir *dir,
		      uint64_t *fh)
{
	struct pd_handle *h = calloc(1, sizeof(*h));
	int err;

	if (!h) {
		err = -ENOMEM;
		goto out_close;
	}
	h->flags = fcntl(fd, F_GETFL);
	if (h->flags == -1) {
		err = -errno;
		goto out_free;
	}
	err = handle_hold_inode_fd(fs, nodeid);
	if (err)
		goto out_free;
	h->nodeid = nodeid;
	h->kind = dir ? HANDLE_DIR : HANDLE_FILE;
	h->fd = fd;
	h->dir = dir;
	h->refs = 1;
	pthread_mutex_lock(&fs->handle_lock);
	h->id = fs->next_fh++;
	if (!tsearch(h, &fs->handles, cmp_handle_id)) {
		pthread_mutex_unlock(&fs->handle_lock);
		handle_drop_inode_fd(fs, nodeid);
		err = -ENOMEM;
		goto out_free;
	}
	/* From here a peer that guesses the id may release h at any time. */
	*fh = h->id;
	pthread_mutex_unlock(&fs->handle_lock);
	return 0;

out_free:
	free(h);
out_close:
	close_open(fd, dir);
	return err;
}

/* Is h what a request on inode nodeid asking for kind may use? */
static bool handle_matches(const struct pd_handle *h, fuse_ino_t nodeid,
			   enum pd_handle_kind kind)
{
	return h->nodeid == nodeid && (kind == HANDLE_ANY || h->kind == kind);
}

/*
 * The live handle fh of inode nodeid, of the kind asked for, with a
 * reference the caller drops with handle_put(). NULL for anything else (an
 * id never issued, one released, one of another inode or kind): the request
 * is then answered with EBADF.
 */
struct pd_handle *handle_get(struct pd_fs *fs, uint64_t fh, fuse_ino_t nodeid,
				    enum pd_handle_kind kind)
{
	struct pd_handle key = { .id = fh };
	struct pd_handle *h = NULL;
	void **found;

	pthread_mutex_lock(&fs->handle_lock);
	found = tfind(&key, &fs->handles, cmp_handle_id);
	if (found && handle_matches(*found, nodeid, kind)) {
		h = *found;
		h->refs++;
	}
	pthread_mutex_unlock(&fs->handle_lock);
	return h;
}

void handle_put(struct pd_fs *fs, struct pd_handle *h)
{
	bool dead;

	pthread_mutex_lock(&fs->handle_lock);
	dead = --h->refs == 0;
	pthread_mutex_unlock(&fs->handle_lock);
	if (dead)
		handle_destroy(fs, h);
}

/*
 * RELEASE, RELEASEDIR, or an open whose reply never reached the client:
 * take fh out of the table and drop the table's reference. Requests still
 * using it keep the descriptor open until they finish.
 */
int handle_release(struct pd_fs *fs, uint64_t fh, fuse_ino_t nodeid,
			  enum pd_handle_kind kind)
{
	struct pd_handle key = { .id = fh };
	struct pd_handle *h;
	void **found;
	bool dead;

	pthread_mutex_lock(&fs->handle_lock);
	found = tfind(&key, &fs->handles, cmp_handle_id);
	if (!found || !handle_matches(*found, nodeid, kind)) {
		pthread_mutex_unlock(&fs->handle_lock);
		return -EBADF;
	}
	h = *found;
	tdelete(h, &fs->handles, cmp_handle_id);
	dead = --h->refs == 0;
	pthread_mutex_unlock(&fs->handle_lock);
	if (dead)
		handle_destroy(fs, h);
	return 0;
}

/*
 * For requests where the handle is optional (GETATTR, STATX): none, or a
 * live handle of ino of either kind. 0 or -EBADF.
 */
int handle_check(struct pd_fs *fs, const struct fuse_file_info *fi, fuse_ino_t ino)
{
	struct pd_handle *h;

	if (!fi)
		return 0;
	h = handle_get(fs, fi->fh, ino, HANDLE_ANY);
	if (!h)
		return -EBADF;
	handle_put(fs, h);
	return 0;
}
