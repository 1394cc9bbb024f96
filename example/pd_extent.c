/*
 * passthrough_dax: the ordering contract, and coherence with the host.
 * Every change of a file's size or extents excludes mapping setup and I/O
 * on the inode and keeps the DAX window safe around the host operation;
 * every size the client hears of, the window shows first.
 */
#include "passthrough_dax.h"

#include <linux/fs.h>
#include <sys/ioctl.h>

/* ------------------------------------------------------------------------
 * The ordering contract
 *
 * extent_change_begin() is steps 1 and 2: with the inode's lock held
 * exclusive, no SETUPMAPPING of the inode can start (it takes the lock
 * shared), and every read, write or mapping setup in flight on the inode has
 * finished (they hold it shared while they run).
 *
 * extent_clip() is step 3, called before a host operation that can shrink
 * the file: no window page may show a file page beyond the new end (that
 * page would raise SIGBUS in whoever touched it, the VMM or us).
 *
 * Step 4 is the host operation, done by the caller.
 *
 * extent_change_end() is steps 5 and 6: it asks the host for the real size
 * (another host process may have changed it too), re-validates the window
 * against it, so ranges a shrink clipped or that lay beyond the old end show
 * the file again where it now has data, and unlocks.
 *
 * Hole punching and zeroing need no window work. The window maps the host
 * file MAP_SHARED, so it shows the host page cache: when the host punches or
 * zeroes a range inside the file, it drops those pages from every shared
 * mapping, and the next access faults in the new contents (zeros). Nothing
 * beyond the end is exposed, since the size does not change. The same holds
 * for data written into the file by write() or copy_file_range(), and for
 * the shifted data of collapse and insert range: only the end of the file
 * moves, and that is what clip and revalidate look after.
 */

/*
 * The per-inode lock prefers writers: once a truncate or punch waits for
 * it, new reads and SETUPMAPPINGs wait behind it, so a steady stream of
 * them cannot hold an extent change off for ever (glibc's default prefers
 * readers). No thread may take it shared twice: a writer waiting between
 * the two would deadlock them.
 */
void extent_lock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

void extent_change_begin(struct pd_inode *in)
{
	pthread_rwlock_wrlock(&in->extent_lock);
}

int extent_clip(struct pd_fs *fs, struct pd_inode *in, uint64_t new_size)
{
	int ret;

	if (!fs->window)
		return 0;
	ret = fuse_dax_window_clip(fs->window, in->nodeid, new_size);
	return ret < 0 ? ret : 0;
}

/* fd: a descriptor of the file for fstat; -1 to use the inode's own. */
void extent_change_end(struct pd_fs *fs, struct pd_inode *in, int fd)
{
	struct stat st;
	int ret;

	if (fs->window) {
		ret = fd >= 0 ? fstat(fd, &st) : inode_stat(in, &st);
		if (ret == 0)
			ret = fuse_dax_window_revalidate(fs->window, in->nodeid,
							 st.st_size);
		else
			ret = -errno;
		if (ret < 0)
			fuse_log(FUSE_LOG_ERR,
				 "passthrough_dax: inode %" PRIu64 ": window revalidate: %s\n",
				 in->nodeid, strerror(-ret));
	}
	pthread_rwlock_unlock(&in->extent_lock);
}

/*
 * An append-only or immutable file refuses to be truncated or collapsed
 * (EPERM) even through a descriptor opened for writing: find that out
 * before the clip. 0 when the flags allow it, or the file system has none.
 */
int extent_flags_allow_shrink(int fd)
{
	int flags = 0;

	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == -1)
		return 0;
	return flags & (FS_APPEND_FL | FS_IMMUTABLE_FL) ? -EPERM : 0;
}

/*
 * Truncate to size under the contract. fd: an open writable descriptor, or
 * -1 to open one as the current caller (so the host checks write access).
 *
 * Everything that can be checked is checked before the clip (the open for
 * writing, append-only and immutable flags), so a truncate that will fail
 * never empties window pages the client may be storing to. If ftruncate()
 * still fails after a clip (an I/O error, a security module), stores into
 * the clipped pages during that one call are lost: extent_change_end()
 * re-validates the window against the size the file really has before
 * anyone can map or fault again (doc/dax.md, "What remains").
 */
int truncate_ordered(struct pd_fs *fs, struct pd_inode *in, int fd, off_t size)
{
	struct stat st;
	int own_fd = -1, err;

	if (in->type != S_IFREG)
		return in->type == S_IFDIR ? -EISDIR : -EINVAL;
	if (size < 0)
		return -EINVAL;
	if (fd < 0) {
		own_fd = inode_open(fs, in, O_WRONLY);
		if (own_fd < 0)
			return own_fd;
		fd = own_fd;
	}
	extent_change_begin(in);
	err = fstat(fd, &st) == -1 ? -errno : 0;
	if (!err && size < st.st_size)
		err = extent_flags_allow_shrink(fd);
	if (!err && size < st.st_size)
		err = extent_clip(fs, in, size);
	if (!err && ftruncate(fd, size) == -1)
		err = -errno;
	extent_change_end(fs, in, fd);
	if (own_fd >= 0)
		close(own_fd);
	return err;
}

/* ------------------------------------------------------------------------
 * Coherence with the host (doc/dax.md)
 *
 * The client learns a file's size only from our replies: the attributes of
 * LOOKUP, GETATTR, SETATTR, STATX, CREATE, LINK and READDIRPLUS, and the
 * end of a WRITE it made. So before a reply tells it a size, the window
 * must show the file that far: a page mapped as zeros past an old end must
 * show what another host process appended, or the client reads zeros there
 * and its stores reach no file. And a size smaller than what the window
 * shows means a host process truncated the file behind us: clip now, since
 * a page beyond the end faults in whoever touches it.
 *
 * fuse_dax_window_revalidate() does both, and returns at once (without the
 * window's lock) when the inode has no mappings or they already follow
 * that size, which is nearly always. It runs under the inode's lock
 * shared, so it never maps again what a truncate in progress has clipped.
 */

/* The caller holds in's extent lock (either way). */
void extent_report_size_locked(struct pd_fs *fs, struct pd_inode *in, uint64_t size)
{
	int ret;

	if (!fs->window || in->type != S_IFREG)
		return;
	ret = fuse_dax_window_revalidate(fs->window, in->nodeid, size);
	if (ret < 0)
		fuse_log(FUSE_LOG_ERR,
			 "passthrough_dax: inode %" PRIu64 ": following the host's size %" PRIu64
			 " in the window: %s\n", in->nodeid, size, strerror(-ret));
}

void extent_report_size(struct pd_fs *fs, struct pd_inode *in, uint64_t size)
{
	if (!fs->window || in->type != S_IFREG)
		return;
	pthread_rwlock_rdlock(&in->extent_lock);
	extent_report_size_locked(fs, in, size);
	pthread_rwlock_unlock(&in->extent_lock);
}
