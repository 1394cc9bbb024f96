/*
 * dax_testfs: the smallest complete DAX file system on the fusedax window
 * API, a flat directory of regular files kept as host files in a source
 * directory. It is the reference for the ordering contract (doc/dax.md) and
 * the second server the kernel-client stress test drives.
 *
 * Usage: dax_testfs -o source=DIR [-o window=BYTES] [-o no_host_coherence]
 *                   [-d] [-s] MOUNTPOINT
 * (MOUNTPOINT may be /dev/fd/N: an already open connection.)
 *
 * -o no_host_coherence plants a bug for the stress test's checker to find:
 * replies that tell the client a size no longer make the window follow the
 * host's file first, so host appends show as zeros and host truncates
 * leave pages that fault (what issue 8 found in passthrough_dax).
 */
#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>
#include <fuse_dax.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TF_MAX_INODES 1024

/*
 * One file. lock is the inode's ordering lock: SETUPMAPPING, reads and
 * in-place writes hold it shared; anything that moves the file's end
 * (truncate, fallocate, extending writes) holds it exclusive.
 */
struct tf_inode {
	char name[NAME_MAX + 1];
	int fd;			/* O_RDWR host descriptor; -1: slot unused */
	uint64_t nlookup;
	pthread_rwlock_t lock;
};

struct tf_fs {
	int dirfd;
	struct fuse_dax_window *window;
	int no_host_coherence;
	pthread_mutex_t lock;	/* the inode table */
	struct tf_inode inodes[TF_MAX_INODES];
};

struct tf_opts {
	char *source;
	char *window;
	int no_host_coherence;
};

/* Inode numbers are table indexes + 2 (1 is the root). */
static struct tf_inode *tf_inode(fuse_req_t req, fuse_ino_t ino)
{
	struct tf_fs *fs = fuse_req_userdata(req);

	if (ino < 2 || ino - 2 >= TF_MAX_INODES || fs->inodes[ino - 2].fd < 0)
		return NULL;
	return &fs->inodes[ino - 2];
}

static int tf_stat_for_reply(struct tf_fs *fs, fuse_ino_t ino, struct tf_inode *in,
			     struct stat *st);

static void reply_entry(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_entry_param e = { .ino = ino, .attr_timeout = 0, .entry_timeout = 0 };
	struct tf_fs *fs = fuse_req_userdata(req);
	int err = tf_stat_for_reply(fs, ino, &fs->inodes[ino - 2], &e.attr);

	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_entry(req, &e);
}

/*
 * Find name's inode or open the host file into a new one; counts a lookup.
 * open_flags: 0 for a lookup, O_CREAT (and maybe O_EXCL) for a create.
 */
static fuse_ino_t tf_get(struct tf_fs *fs, const char *name, int open_flags, mode_t mode,
			 int *err)
{
	int flags = O_RDWR | O_CLOEXEC | (open_flags & (O_CREAT | O_EXCL));
	int free_slot = -1, fd;

	pthread_mutex_lock(&fs->lock);
	for (int i = 0; i < TF_MAX_INODES; i++) {
		struct tf_inode *in = &fs->inodes[i];

		if (in->fd >= 0 && strcmp(in->name, name) == 0) {
			if (open_flags & O_EXCL) {
				pthread_mutex_unlock(&fs->lock);
				*err = EEXIST;
				return 0;
			}
			in->nlookup++;
			pthread_mutex_unlock(&fs->lock);
			return (fuse_ino_t)i + 2;
		}
		if (in->fd < 0 && free_slot < 0)
			free_slot = i;
	}
	fd = openat(fs->dirfd, name, flags, mode);
	*err = fd < 0 ? errno : free_slot < 0 ? ENFILE : 0;
	if (!*err) {
		struct tf_inode *in = &fs->inodes[free_slot];

		snprintf(in->name, sizeof(in->name), "%s", name);
		in->fd = fd;
		in->nlookup = 1;
	} else if (fd >= 0) {
		close(fd);
	}
	pthread_mutex_unlock(&fs->lock);
	return *err ? 0 : (fuse_ino_t)free_slot + 2;
}

/*
 * The ordering contract around a change of the file's end (doc/dax.md):
 * the caller holds in->lock exclusive (steps 1-2: no SETUPMAPPING, read or
 * write of the inode runs); before a shrink, clip the window (step 3); then
 * the host operation (step 4); then revalidate to the real size (step 5).
 */
static int tf_resize_begin(struct tf_fs *fs, fuse_ino_t ino, uint64_t new_size)
{
	int ret = fuse_dax_window_clip(fs->window, ino, new_size);

	return ret < 0 ? ret : 0;
}

static int tf_resize_end(struct tf_fs *fs, fuse_ino_t ino, int fd)
{
	struct stat st;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	ret = fuse_dax_window_revalidate(fs->window, ino, (uint64_t)st.st_size);
	return ret < 0 ? ret : 0;
}

/*
 * Coherence with the host (doc/dax.md): before a reply tells the client
 * the file has size bytes, the window follows the host's file, which
 * another host process may have grown or shrunk. The caller holds
 * in->lock either way (so no clip of a truncate in progress is undone).
 */
static void tf_follow_host(struct tf_fs *fs, fuse_ino_t ino, uint64_t size)
{
	int ret;

	if (fs->no_host_coherence)
		return;
	ret = fuse_dax_window_revalidate(fs->window, ino, size);
	if (ret < 0)
		fprintf(stderr, "dax_testfs: inode %llu: following size %llu: %s\n",
			(unsigned long long)ino, (unsigned long long)size, strerror(-ret));
}

/* The attributes of ino for a reply, the window following them first. */
static int tf_stat_for_reply(struct tf_fs *fs, fuse_ino_t ino, struct tf_inode *in,
			     struct stat *st)
{
	int err = 0;

	pthread_rwlock_rdlock(&in->lock);
	if (fstat(in->fd, st) < 0)
		err = -errno;
	else
		tf_follow_host(fs, ino, (uint64_t)st->st_size);
	pthread_rwlock_unlock(&in->lock);
	st->st_ino = ino;
	return err;
}

static int tf_truncate(struct tf_fs *fs, fuse_ino_t ino, struct tf_inode *in, off_t size)
{
	struct stat st;
	int err = 0, err2;

	pthread_rwlock_wrlock(&in->lock);
	if (fstat(in->fd, &st) < 0)
		err = -errno;
	if (!err && size < st.st_size)
		err = tf_resize_begin(fs, ino, (uint64_t)size);
	if (!err && ftruncate(in->fd, size) < 0)
		err = -errno;
	err2 = tf_resize_end(fs, ino, in->fd);
	pthread_rwlock_unlock(&in->lock);
	return err ? err : err2;
}

/* ---- the operations ---- */

static void tf_init(void *userdata, struct fuse_conn_info *conn)
{
	if (!fuse_set_feature_flag(conn, FUSE_CAP_DAX_MAPPING))
		fuse_log(FUSE_LOG_INFO, "dax_testfs: the client does not offer DAX\n");
}

/* The client never removes its mappings at the end: drop them all. */
static void tf_destroy(void *userdata)
{
	struct tf_fs *fs = userdata;

	fuse_dax_window_unmap_all(fs->window);
}

static void tf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct tf_fs *fs = fuse_req_userdata(req);
	fuse_ino_t ino;
	int err;

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	ino = tf_get(fs, name, 0, 0, &err);
	if (!ino)
		fuse_reply_err(req, err);
	else
		reply_entry(req, ino);
}

static void tf_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct tf_fs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e = { 0 };
	struct tf_inode *in;
	int err;

	if (parent != FUSE_ROOT_ID || !S_ISREG(mode)) {
		fuse_reply_err(req, parent != FUSE_ROOT_ID ? ENOTDIR : EINVAL);
		return;
	}
	e.ino = tf_get(fs, name, O_CREAT | (fi->flags & O_EXCL), mode & 07777, &err);
	if (!e.ino) {
		fuse_reply_err(req, err);
		return;
	}
	in = &fs->inodes[e.ino - 2];
	err = (fi->flags & O_TRUNC) ? -tf_truncate(fs, e.ino, in, 0) : 0;
	if (!err)
		err = -tf_stat_for_reply(fs, e.ino, in, &e.attr);
	if (err) {
		fuse_reply_err(req, err);	/* the client forgets nothing: keep it */
		return;
	}
	fi->fh = e.ino;
	fuse_reply_create(req, &e, fi);
}

static void tf_forget_one(struct tf_fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct tf_inode *in;

	pthread_mutex_lock(&fs->lock);
	if (ino >= 2 && ino - 2 < TF_MAX_INODES) {
		in = &fs->inodes[ino - 2];
		in->nlookup -= nlookup < in->nlookup ? nlookup : in->nlookup;
		if (in->fd >= 0 && in->nlookup == 0) {
			/* Forgotten: nothing may keep showing its file. */
			fuse_dax_window_unmap_inode(fs->window, ino);
			close(in->fd);
			in->fd = -1;
		}
	}
	pthread_mutex_unlock(&fs->lock);
}

static void tf_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	tf_forget_one(fuse_req_userdata(req), ino, nlookup);
	fuse_reply_none(req);
}

static void tf_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		tf_forget_one(fuse_req_userdata(req), f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

static void tf_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tf_inode *in = tf_inode(req, ino);
	struct stat st;
	int err;

	if (ino == FUSE_ROOT_ID) {
		struct tf_fs *fs = fuse_req_userdata(req);

		if (fstat(fs->dirfd, &st) < 0)
			fuse_reply_err(req, errno);
		else
			fuse_reply_attr(req, &st, 0);
		return;
	}
	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	err = tf_stat_for_reply(fuse_req_userdata(req), ino, in, &st);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, 0);
}

/* The times that come with a truncate are set too; nothing else can be. */
static int tf_set_times(int fd, const struct stat *attr, int to_set)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
	return futimens(fd, ts) < 0 ? -errno : 0;
}

static void tf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	const int times = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			  FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;
	struct tf_inode *in = tf_inode(req, ino);
	int err = 0;

	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (to_set & ~(FUSE_SET_ATTR_SIZE | times)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE)
		err = tf_truncate(fuse_req_userdata(req), ino, in, attr->st_size);
	if (!err && (to_set & (times & ~FUSE_SET_ATTR_CTIME)))
		err = tf_set_times(in->fd, attr, to_set);
	if (err)
		fuse_reply_err(req, -err);
	else
		tf_getattr(req, ino, fi);
}

static void tf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct tf_inode *in = tf_inode(req, ino);
	int err = 0;

	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (fi->flags & O_TRUNC)
		err = -tf_truncate(fuse_req_userdata(req), ino, in, 0);
	fi->fh = ino;
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_open(req, fi);
}

static void tf_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void tf_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void tf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct tf_inode *in = tf_inode(req, ino);
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	if (!in || !buf) {
		free(buf);
		fuse_reply_err(req, in ? ENOMEM : ESTALE);
		return;
	}
	pthread_rwlock_rdlock(&in->lock);
	n = pread(in->fd, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	pthread_rwlock_unlock(&in->lock);
	free(buf);
}

/* A write that moves the end of the file is an extent change: step 5. */
static void tf_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct tf_fs *fs = fuse_req_userdata(req);
	struct tf_inode *in = tf_inode(req, ino);
	struct stat st;
	int extending;
	ssize_t n;

	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	pthread_rwlock_rdlock(&in->lock);
	extending = fstat(in->fd, &st) < 0 || (uint64_t)off + size > (uint64_t)st.st_size;
	if (extending) {
		pthread_rwlock_unlock(&in->lock);
		pthread_rwlock_wrlock(&in->lock);
	}
	n = pwrite(in->fd, buf, size, off);
	if (n < 0)
		n = -errno;
	/*
	 * The client takes the end of its write as the size: inside the
	 * host's file that may be news to it (another host process grew it).
	 */
	if (extending)
		tf_resize_end(fs, ino, in->fd);
	else
		tf_follow_host(fs, ino, (uint64_t)st.st_size);
	pthread_rwlock_unlock(&in->lock);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/*
 * Collapse range moves the end down: clip first. Punch hole and zero range
 * keep the end (or move it up) and the window maps the page cache, which
 * the host empties for the punched range, so they need only the lock and
 * the final revalidate. Insert range and zero range without KEEP_SIZE grow
 * the file: the revalidate maps the new pages.
 */
static void tf_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	struct tf_fs *fs = fuse_req_userdata(req);
	struct tf_inode *in = tf_inode(req, ino);
	struct stat st;
	int err = 0, err2;

	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	pthread_rwlock_wrlock(&in->lock);
	if ((mode & FALLOC_FL_COLLAPSE_RANGE) && fstat(in->fd, &st) == 0 && length <= st.st_size)
		err = tf_resize_begin(fs, ino, (uint64_t)(st.st_size - length));
	if (!err && fallocate(in->fd, mode, offset, length) < 0)
		err = -errno;
	err2 = tf_resize_end(fs, ino, in->fd);
	pthread_rwlock_unlock(&in->lock);
	fuse_reply_err(req, -(err ? err : err2));
}

/* Shared lock: a mapping is never set up in the middle of an extent change. */
static void tf_setupmapping(fuse_req_t req, fuse_ino_t ino, uint64_t foffset, uint64_t len,
			    uint64_t moffset, uint64_t flags, struct fuse_file_info *fi)
{
	struct tf_fs *fs = fuse_req_userdata(req);
	struct tf_inode *in = tf_inode(req, ino);
	int prot = (flags & FUSE_DAX_MAP_WRITE) ? PROT_READ | PROT_WRITE : PROT_READ;
	int err;

	if (!in) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (fi && fi->fh != ino) {	/* a handle from the client: check it */
		fuse_reply_err(req, EBADF);
		return;
	}
	/*
	 * A VMM's window (no local address) is mapped writable up front: under
	 * the strict SHMEM rules the client's later read-to-write upgrade could
	 * only unmap pages other guest processes still use (doc/vhost-user.md).
	 */
	if (!fuse_dax_window_base(fs->window))
		prot = PROT_READ | PROT_WRITE;
	pthread_rwlock_rdlock(&in->lock);
	err = fuse_dax_window_map(fs->window, moffset, len, in->fd, ino, foffset, prot);
	pthread_rwlock_unlock(&in->lock);
	fuse_reply_err(req, -err);
}

/*
 * Unmap every range, then answer the first error; a range with nothing
 * mapped answers ENOENT (doc/dax.md), after the others are unmapped.
 */
static void tf_removemapping(fuse_req_t req, const struct fuse_dax_range *ranges,
			     unsigned int count)
{
	struct tf_fs *fs = fuse_req_userdata(req);
	int err = 0;

	for (unsigned int i = 0; i < count; i++) {
		int ret = fuse_dax_window_unmap(fs->window, ranges[i].moffset, ranges[i].len);

		if (ret < 0 && !err)
			err = ret;
	}
	fuse_reply_err(req, -err);
}

static const struct fuse_lowlevel_ops tf_ops = {
	.init = tf_init,
	.destroy = tf_destroy,
	.lookup = tf_lookup,
	.forget = tf_forget,
	.forget_multi = tf_forget_multi,
	.getattr = tf_getattr,
	.setattr = tf_setattr,
	.open = tf_open,
	.read = tf_read,
	.write = tf_write,
	.flush = tf_flush,
	.release = tf_release,
	.create = tf_create,
	.fallocate = tf_fallocate,
	.setupmapping = tf_setupmapping,
	.removemapping = tf_removemapping,
};

/* ---- main ---- */

static const struct fuse_opt tf_opt_spec[] = {
	{ "source=%s", offsetof(struct tf_opts, source), 0 },
	{ "window=%s", offsetof(struct tf_opts, window), 0 },
	{ "no_host_coherence", offsetof(struct tf_opts, no_host_coherence), 1 },
	FUSE_OPT_END
};

static int run(struct tf_fs *fs, struct fuse_args *args, const struct fuse_cmdline_opts *co,
	       uint64_t size)
{
	struct fuse_loop_config *cfg;
	struct fuse_session *se;
	int ret = 1, err;

	se = fuse_session_new(args, &tf_ops, sizeof(tf_ops), fs);
	if (!se)
		return 1;
	/* A local window on /dev/fuse, the VMM's cache window under vhost-user. */
	err = fuse_dax_window_new_for_session(se, size, 0, &fs->window);
	if (err) {
		fprintf(stderr, "dax_testfs: a %llu-byte window: %s\n",
			(unsigned long long)size, strerror(-err));
		goto out_session;
	}
	if (fuse_session_set_dax_window(se, fs->window) != 0 ||
	    fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, co->mountpoint) != 0)
		goto out_signals;
	if (co->singlethread) {
		ret = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		ret = cfg ? fuse_session_loop_mt(se, cfg) : 1;
		fuse_loop_cfg_destroy(cfg);
	}
	ret = ret ? 1 : 0;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co = { 0 };
	struct tf_opts o = { 0 };
	static struct tf_fs fs;
	uint64_t size = 32 << 20;
	int ret = 1;

	pthread_rwlockattr_t writers_first;

	/* Writer-preferring, as in passthrough_dax: no truncate is starved. */
	pthread_rwlockattr_init(&writers_first);
	pthread_rwlockattr_setkind_np(&writers_first,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_mutex_init(&fs.lock, NULL);
	for (int i = 0; i < TF_MAX_INODES; i++) {
		fs.inodes[i].fd = -1;
		pthread_rwlock_init(&fs.inodes[i].lock, &writers_first);
	}
	pthread_rwlockattr_destroy(&writers_first);
	if (fuse_opt_parse(&args, &o, tf_opt_spec, NULL) == -1 ||
	    fuse_parse_cmdline(&args, &co) != 0)
		goto out;
	if (co.show_help || !o.source || !co.mountpoint) {
		printf("usage: %s -o source=DIR [-o window=BYTES] [-o no_host_coherence] [-d] [-s] MOUNTPOINT\n",
		       argv[0]);
		ret = co.show_help ? 0 : 1;
		goto out;
	}
	if (o.window)
		size = strtoull(o.window, NULL, 0);
	fs.no_host_coherence = o.no_host_coherence;
	fs.dirfd = open(o.source, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (fs.dirfd < 0) {
		fprintf(stderr, "dax_testfs: source %s: %s\n", o.source, strerror(errno));
		goto out;
	}
	ret = run(&fs, &args, &co, size);
	fuse_dax_window_destroy(fs.window);
	for (int i = 0; i < TF_MAX_INODES; i++)
		if (fs.inodes[i].fd >= 0)
			close(fs.inodes[i].fd);
	close(fs.dirfd);
out:
	free(co.mountpoint);
	free(o.source);
	free(o.window);
	fuse_opt_free_args(&args);
	return ret;
}
