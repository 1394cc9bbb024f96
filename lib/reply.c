/*
 * Reply encoders: every fuse_reply_* call turns the file system's answer into
 * a fuse_out_header plus payload and hands it to the transport. One encoder
 * for every transport; it refuses values the kernel would reject.
 */
#include "fuse_i.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The kernel rejects a reply whose error is positive or below -511. */
#define REPLY_ERRNO_MAX 511

void req_free(fuse_req_t req)
{
	struct fuse_session *se = req->se;

	if (req->listed) {
		pthread_mutex_lock(&se->lock);
		req->prev->next = req->next;
		req->next->prev = req->prev;
		req->listed = false;
		pthread_mutex_unlock(&se->lock);
	}
	chan_put(se, req->ch);
	free(req);
}

int reply_send(fuse_req_t req, int error, const struct iovec *payload, int count)
{
	struct iovec iov[FUSE_IOCTL_MAX_IOV + 2];
	struct fuse_out_header out;
	size_t len = sizeof(out);
	int res;

	if (count < 0 || count > FUSE_IOCTL_MAX_IOV + 1) {
		fuse_log(FUSE_LOG_ERR, "fuse: reply to %s (unique %llu) has %d pieces\n",
			 wire_opcode_name(req->opcode), (unsigned long long)req->unique,
			 count);
		error = EIO;
		count = 0;
	}
	if (error < 0 || error > REPLY_ERRNO_MAX) {
		fuse_log(FUSE_LOG_ERR,
			 "fuse: reply to %s with invalid errno %d: sending EIO\n",
			 wire_opcode_name(req->opcode), error);
		error = EIO;
	}
	if (error)
		count = 0;

	iov[0].iov_base = &out;
	iov[0].iov_len = sizeof(out);
	for (int i = 0; i < count; i++) {
		iov[i + 1] = payload[i];
		len += payload[i].iov_len;
	}
	out.len = (uint32_t)len;
	out.error = -error;
	out.unique = req->unique;

	/* libfuse's spelling: its test suite tells errnos apart by it. */
	if (req->se->debug && error)
		fuse_log(FUSE_LOG_DEBUG, "   unique: %llu, error: %d (%s), outsize: %zu\n",
			 (unsigned long long)req->unique, -error, strerror(error), len);
	else if (req->se->debug)
		fuse_log(FUSE_LOG_DEBUG, "   unique: %llu, success, outsize: %zu\n",
			 (unsigned long long)req->unique, len);

	res = req->se->tp->send(req->ch, iov, count + 1);
	if (res < 0 && res != -ENOENT && res != -ENODEV && res != -ENOTCONN && count) {
		/* The reply did not fit the transport: the client still hears. */
		out.len = sizeof(out);
		out.error = -EIO;
		res = req->se->tp->send(req->ch, iov, 1);
	}
	if (res == -ENOENT)
		res = 0; /* the client gave up on this request (interrupted) */
	req_free(req);
	return res;
}

static int reply_one(fuse_req_t req, const void *arg, size_t size)
{
	struct iovec iov = { .iov_base = (void *)arg, .iov_len = size };

	return reply_send(req, 0, &iov, size ? 1 : 0);
}

int fuse_reply_err(fuse_req_t req, int err)
{
	return reply_send(req, err, NULL, 0);
}

void fuse_reply_none(fuse_req_t req)
{
	req_free(req);
}

void reply_timeout(double t, uint64_t *sec, uint32_t *nsec)
{
	if (!(t > 0) || isnan(t)) {
		*sec = 0;
		*nsec = 0;
		return;
	}
	if (t >= (double)UINT64_MAX) {
		*sec = UINT64_MAX;
		*nsec = 0;
		return;
	}
	*sec = (uint64_t)t;
	*nsec = (uint32_t)((t - (double)*sec) * 1e9);
	if (*nsec >= 1000000000u)
		*nsec = 999999999u;
}

void reply_fill_attr(struct fuse_attr *attr, const struct stat *st, uint32_t flags)
{
	memset(attr, 0, sizeof(*attr));
	attr->ino = st->st_ino;
	attr->mode = st->st_mode;
	attr->nlink = st->st_nlink;
	attr->uid = st->st_uid;
	attr->gid = st->st_gid;
	attr->rdev = st->st_rdev;
	attr->size = st->st_size;
	attr->blksize = st->st_blksize;
	attr->blocks = st->st_blocks;
	attr->atime = st->st_atim.tv_sec;
	attr->mtime = st->st_mtim.tv_sec;
	attr->ctime = st->st_ctim.tv_sec;
	attr->atimensec = st->st_atim.tv_nsec;
	attr->mtimensec = st->st_mtim.tv_nsec;
	attr->ctimensec = st->st_ctim.tv_nsec;
	attr->flags = flags;
}

static void fill_entry(struct fuse_entry_out *arg, const struct fuse_entry_param *e)
{
	memset(arg, 0, sizeof(*arg));
	arg->nodeid = e->ino;
	arg->generation = e->generation;
	reply_timeout(e->entry_timeout, &arg->entry_valid, &arg->entry_valid_nsec);
	reply_timeout(e->attr_timeout, &arg->attr_valid, &arg->attr_valid_nsec);
	reply_fill_attr(&arg->attr, &e->attr, e->attr_flags);
}

static void fill_open(struct fuse_open_out *arg, const struct fuse_file_info *f)
{
	memset(arg, 0, sizeof(*arg));
	arg->fh = f->fh;
	if (f->direct_io)
		arg->open_flags |= FOPEN_DIRECT_IO;
	if (f->keep_cache)
		arg->open_flags |= FOPEN_KEEP_CACHE;
	if (f->nonseekable)
		arg->open_flags |= FOPEN_NONSEEKABLE;
	if (f->cache_readdir)
		arg->open_flags |= FOPEN_CACHE_DIR;
	if (f->noflush)
		arg->open_flags |= FOPEN_NOFLUSH;
	if (f->parallel_direct_writes)
		arg->open_flags |= FOPEN_PARALLEL_DIRECT_WRITES;
	if (f->backing_id > 0) {
		arg->open_flags |= FOPEN_PASSTHROUGH;
		arg->backing_id = f->backing_id;
	}
}

/*
 * The kernel fails a passthrough open (EIO) that also asks for the page
 * cache (keep_cache, cache_readdir) or nonseekable: passthrough I/O never
 * uses the cache, so those flags are dropped, and said so in debug output.
 */
static void open_check_passthrough(fuse_req_t req, struct fuse_open_out *arg)
{
	const uint32_t allowed = FOPEN_PASSTHROUGH | FOPEN_DIRECT_IO |
				 FOPEN_PARALLEL_DIRECT_WRITES | FOPEN_NOFLUSH;

	if (!(arg->open_flags & FOPEN_PASSTHROUGH) || !(arg->open_flags & ~allowed))
		return;
	if (req->se->debug)
		fuse_log(FUSE_LOG_DEBUG,
			 "   passthrough open: dropping open flags 0x%x the kernel refuses "
			 "with it\n", arg->open_flags & ~allowed);
	arg->open_flags &= allowed;
}

int fuse_reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
	struct fuse_entry_out arg;

	/* A negative entry (ino 0) without a timeout means plain ENOENT. */
	if (!e->ino && e->entry_timeout <= 0)
		return fuse_reply_err(req, ENOENT);
	fill_entry(&arg, e);
	return reply_one(req, &arg, sizeof(arg));
}

int fuse_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
		      const struct fuse_file_info *fi)
{
	struct {
		struct fuse_entry_out entry;
		struct fuse_open_out open;
	} arg;

	fill_entry(&arg.entry, e);
	fill_open(&arg.open, fi);
	open_check_passthrough(req, &arg.open);
	return reply_one(req, &arg, sizeof(arg));
}

int fuse_reply_attr_flags(fuse_req_t req, const struct stat *attr, double attr_timeout,
			  uint32_t attr_flags)
{
	struct fuse_attr_out arg;

	memset(&arg, 0, sizeof(arg));
	reply_timeout(attr_timeout, &arg.attr_valid, &arg.attr_valid_nsec);
	reply_fill_attr(&arg.attr, attr, attr_flags);
	return reply_one(req, &arg, sizeof(arg));
}

int fuse_reply_attr(fuse_req_t req, const struct stat *attr, double attr_timeout)
{
	return fuse_reply_attr_flags(req, attr, attr_timeout, 0);
}

int fuse_reply_readlink(fuse_req_t req, const char *linkname)
{
	return reply_one(req, linkname, strlen(linkname));
}

int fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	struct fuse_open_out arg;

	fill_open(&arg, fi);
	open_check_passthrough(req, &arg);
	return reply_one(req, &arg, sizeof(arg));
}

int fuse_reply_write(fuse_req_t req, size_t count)
{
	struct fuse_write_out arg;

	memset(&arg, 0, sizeof(arg));
	arg.size = (uint32_t)count;
	return reply_one(req, &arg, sizeof(arg));
}

int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size)
{
	return reply_one(req, buf, size);
}

int fuse_reply_iov(fuse_req_t req, const struct iovec *iov, int count)
{
	return reply_send(req, 0, iov, count);
}

int fuse_reply_data(fuse_req_t req, struct fuse_bufvec *bufv,
		    enum fuse_buf_copy_flags flags)
{
	size_t size = fuse_buf_size(bufv);
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(size);
	ssize_t res;
	int ret;

	/* Memory-only vectors go out as they are, without a copy. */
	if (bufv->count - bufv->idx <= FUSE_IOCTL_MAX_IOV) {
		struct iovec iov[FUSE_IOCTL_MAX_IOV];
		bool all_mem = true;
		int n = 0;

		for (size_t i = bufv->idx; i < bufv->count; i++) {
			const struct fuse_buf *b = &bufv->buf[i];
			size_t skip = i == bufv->idx ? bufv->off : 0;

			if (b->flags & FUSE_BUF_IS_FD) {
				all_mem = false;
				break;
			}
			iov[n].iov_base = (char *)b->mem + skip;
			iov[n].iov_len = b->size - skip;
			n++;
		}
		if (all_mem)
			return reply_send(req, 0, iov, n);
	}

	mem.buf[0].mem = malloc(size ? size : 1);
	if (!mem.buf[0].mem)
		return fuse_reply_err(req, ENOMEM);
	res = fuse_buf_copy(&mem, bufv, flags);
	if (res < 0) {
		free(mem.buf[0].mem);
		return fuse_reply_err(req, (int)-res);
	}
	ret = reply_one(req, mem.buf[0].mem, (size_t)res);
	free(mem.buf[0].mem);
	return ret;
}

int fuse_reply_statfs(fuse_req_t req, const struct statvfs *st)
{
	struct fuse_statfs_out arg;

	memset(&arg, 0, sizeof(arg));
	arg.st.bsize = st->f_bsize;
	arg.st.frsize = st->f_frsize;
	arg.st.blocks = st->f_blocks;
	arg.st.bfree = st->f_bfree;
	arg.st.bavail = st->f_bavail;
	arg.st.files = st->f_files;
	arg.st.ffree = st->f_ffree;
	arg.st.namelen = st->f_namemax;
	return reply_one(req, &arg, sizeof(arg));
}

int fuse_reply_xattr(fuse_req_t req, size_t count)
{
	struct fuse_getxattr_out arg;

	memset(&arg, 0, sizeof(arg));
	arg.size = (uint32_t)count;
	return reply_one(req, &arg, sizeof(arg));
}

int fuse_reply_lock(fuse_req_t req, const struct flock *lock)
{
	struct fuse_lk_out arg;

	memset(&arg, 0, sizeof(arg));
	arg.lk.type = lock->l_type;
	if (lock->l_type != F_UNLCK) {
		/*
		 * POSIX: len 0 runs to the end of the file, a negative len covers
		 * the bytes before start. The values may echo the client's, so
		 * the sums are done without signed overflow and clamped.
		 */
		uint64_t start = (uint64_t)lock->l_start, len = (uint64_t)lock->l_len;
		uint64_t end;

		if (lock->l_len < 0) {
			end = start ? start - 1 : 0;
			start += len;
			if ((int64_t)start < 0)
				start = 0;
		} else if (lock->l_len == 0) {
			end = INT64_MAX;
		} else {
			end = start + len - 1;
			if ((int64_t)end < (int64_t)start)
				end = INT64_MAX;
		}
		arg.lk.start = start;
		arg.lk.end = end;
	}
	arg.lk.pid = lock->l_pid;
	return reply_one(req, &arg, sizeof(arg));
}

int fuse_reply_bmap(fuse_req_t req, uint64_t idx)
{
	struct fuse_bmap_out arg;

	memset(&arg, 0, sizeof(arg));
	arg.block = idx;
	return reply_one(req, &arg, sizeof(arg));
}

static struct fuse_ioctl_iovec *ioctl_iovecs(const struct iovec *iov, size_t count)
{
	struct fuse_ioctl_iovec *fiov = calloc(count ? count : 1, sizeof(*fiov));

	if (!fiov)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		fiov[i].base = (uintptr_t)iov[i].iov_base;
		fiov[i].len = iov[i].iov_len;
	}
	return fiov;
}

int fuse_reply_ioctl_retry(fuse_req_t req, const struct iovec *in_iov, size_t in_count,
			   const struct iovec *out_iov, size_t out_count)
{
	struct fuse_ioctl_out arg;
	struct fuse_ioctl_iovec *in_fiov = NULL, *out_fiov = NULL;
	struct iovec iov[3];
	int count = 1;
	int res;

	/* The kernel takes at most FUSE_IOCTL_MAX_IOV in both directions together. */
	if (in_count > FUSE_IOCTL_MAX_IOV || out_count > FUSE_IOCTL_MAX_IOV ||
	    in_count + out_count > FUSE_IOCTL_MAX_IOV) {
		fuse_log(FUSE_LOG_ERR, "fuse: ioctl retry with %zu + %zu iovecs (at most %d)\n",
			 in_count, out_count, FUSE_IOCTL_MAX_IOV);
		return fuse_reply_err(req, ENOMEM);
	}
	memset(&arg, 0, sizeof(arg));
	arg.flags = FUSE_IOCTL_RETRY;
	arg.in_iovs = (uint32_t)in_count;
	arg.out_iovs = (uint32_t)out_count;
	iov[0].iov_base = &arg;
	iov[0].iov_len = sizeof(arg);

	in_fiov = ioctl_iovecs(in_iov, in_count);
	out_fiov = ioctl_iovecs(out_iov, out_count);
	if (!in_fiov || !out_fiov) {
		res = fuse_reply_err(req, ENOMEM);
		goto out_free;
	}
	if (in_count) {
		iov[count].iov_base = in_fiov;
		iov[count++].iov_len = in_count * sizeof(*in_fiov);
	}
	if (out_count) {
		iov[count].iov_base = out_fiov;
		iov[count++].iov_len = out_count * sizeof(*out_fiov);
	}
	res = reply_send(req, 0, iov, count);
out_free:
	free(in_fiov);
	free(out_fiov);
	return res;
}

int fuse_reply_ioctl(fuse_req_t req, int result, const void *buf, size_t size)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = size };

	return fuse_reply_ioctl_iov(req, result, &iov, size ? 1 : 0);
}

int fuse_reply_ioctl_iov(fuse_req_t req, int result, const struct iovec *iov, int count)
{
	struct iovec all[FUSE_IOCTL_MAX_IOV + 1];
	struct fuse_ioctl_out arg;

	if (count < 0 || count > FUSE_IOCTL_MAX_IOV)
		return fuse_reply_err(req, ENOMEM);
	memset(&arg, 0, sizeof(arg));
	arg.result = result;
	all[0].iov_base = &arg;
	all[0].iov_len = sizeof(arg);
	for (int i = 0; i < count; i++)
		all[i + 1] = iov[i];
	return reply_send(req, 0, all, count + 1);
}

int fuse_reply_poll(fuse_req_t req, unsigned revents)
{
	struct fuse_poll_out arg;

	memset(&arg, 0, sizeof(arg));
	arg.revents = revents;
	return reply_one(req, &arg, sizeof(arg));
}

int fuse_reply_lseek(fuse_req_t req, off_t off)
{
	struct fuse_lseek_out arg;

	memset(&arg, 0, sizeof(arg));
	arg.offset = off;
	return reply_one(req, &arg, sizeof(arg));
}

static void fill_sx_time(struct fuse_sx_time *t, const struct statx_timestamp *s)
{
	t->tv_sec = s->tv_sec;
	t->tv_nsec = s->tv_nsec;
}

int fuse_reply_statx(fuse_req_t req, int flags, struct statx *stx, double attr_timeout)
{
	struct fuse_statx_out arg;

	memset(&arg, 0, sizeof(arg));
	arg.flags = flags;
	reply_timeout(attr_timeout, &arg.attr_valid, &arg.attr_valid_nsec);
	arg.stat.mask = stx->stx_mask;
	arg.stat.blksize = stx->stx_blksize;
	arg.stat.attributes = stx->stx_attributes;
	arg.stat.nlink = stx->stx_nlink;
	arg.stat.uid = stx->stx_uid;
	arg.stat.gid = stx->stx_gid;
	arg.stat.mode = stx->stx_mode;
	arg.stat.ino = stx->stx_ino;
	arg.stat.size = stx->stx_size;
	arg.stat.blocks = stx->stx_blocks;
	arg.stat.attributes_mask = stx->stx_attributes_mask;
	fill_sx_time(&arg.stat.atime, &stx->stx_atime);
	fill_sx_time(&arg.stat.btime, &stx->stx_btime);
	fill_sx_time(&arg.stat.ctime, &stx->stx_ctime);
	fill_sx_time(&arg.stat.mtime, &stx->stx_mtime);
	arg.stat.rdev_major = stx->stx_rdev_major;
	arg.stat.rdev_minor = stx->stx_rdev_minor;
	arg.stat.dev_major = stx->stx_dev_major;
	arg.stat.dev_minor = stx->stx_dev_minor;
	return reply_one(req, &arg, sizeof(arg));
}

/* ------------------------------------------------------------------------
 * Directory entries. Each entry is a fuse_dirent (or fuse_direntplus) and
 * its name, padded to 8 bytes.
 */

static size_t dirent_pad(size_t len)
{
	return (len + 7) & ~(size_t)7;
}

size_t fuse_add_direntry(fuse_req_t req, char *buf, size_t bufsize, const char *name,
			 const struct stat *stbuf, off_t off)
{
	size_t namelen = strlen(name);
	size_t entlen = offsetof(struct fuse_dirent, name) + namelen;
	size_t total = dirent_pad(entlen);
	struct fuse_dirent *d;

	(void)req;
	if (!buf || total > bufsize)
		return total;
	d = (struct fuse_dirent *)buf;
	d->ino = stbuf->st_ino;
	d->off = off;
	d->namelen = (uint32_t)namelen;
	d->type = (stbuf->st_mode & S_IFMT) >> 12;
	memcpy(d->name, name, namelen);
	memset(buf + entlen, 0, total - entlen);
	return total;
}

size_t fuse_add_direntry_plus(fuse_req_t req, char *buf, size_t bufsize,
			      const char *name, const struct fuse_entry_param *e,
			      off_t off)
{
	size_t namelen = strlen(name);
	size_t entlen = offsetof(struct fuse_direntplus, dirent.name) + namelen;
	size_t total = dirent_pad(entlen);
	struct fuse_direntplus *dp;

	(void)req;
	if (!buf || total > bufsize)
		return total;
	dp = (struct fuse_direntplus *)buf;
	memset(&dp->entry_out, 0, sizeof(dp->entry_out));
	fill_entry(&dp->entry_out, e);
	dp->dirent.ino = e->attr.st_ino;
	dp->dirent.off = off;
	dp->dirent.namelen = (uint32_t)namelen;
	dp->dirent.type = (e->attr.st_mode & S_IFMT) >> 12;
	memcpy(dp->dirent.name, name, namelen);
	memset(buf + entlen, 0, total - entlen);
	return total;
}
