/*
 * passthrough_dax: the ordering contract. Every change of a file's size or
 * extents excludes mapping setup and I/O on the inode, and keeps the DAX
 * window safe around the host operation.
 */
#include "passthrough_dax.h"

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
 * Truncate to size under the contract. fd: an open writable descriptor, or
 * -1 to open one as the current caller (so the host checks write access).
 *
 * Everything that can be checked is checked before the clip, so a truncate
 * that will fail never empties window pages the client may be storing to.
 * If ftruncate() still fails after a clip (an I/O error, a host file
 * system that refuses), the clipped pages were zero pages only for that
 * one call: extent_change_end() re-validates the window against the size
 * the file really has before anyone can map or fault again.
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
		err = extent_clip(fs, in, size);
	if (!err && ftruncate(fd, size) == -1)
		err = -errno;
	extent_change_end(fs, in, fd);
	if (own_fd >= 0)
		close(own_fd);
	return err;
}
