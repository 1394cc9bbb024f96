/*
 * fuse_buf_size() and fuse_buf_copy(): move bytes between vectors of memory
 * and file-descriptor buffers, with splice(2) for fd to fd when allowed.
 */
#include "fuse_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The bounce buffer of an fd to fd copy without splice. */
#define BUF_BOUNCE_SIZE ((size_t)64 * 1024)

size_t fuse_buf_size(const struct fuse_bufvec *bufv)
{
	size_t total = 0;

	for (size_t i = 0; i < bufv->count; i++) {
		if (bufv->buf[i].size >= SIZE_MAX - total)
			return SIZE_MAX;
		total += bufv->buf[i].size;
	}
	return total;
}

static int buf_retries(const struct fuse_buf *b)
{
	return (b->flags & FUSE_BUF_FD_RETRY) != 0;
}

/* One read(2) or pread(2) at off bytes into the buffer's file range. */
static ssize_t fd_read_once(const struct fuse_buf *b, size_t off, void *mem,
			    size_t len)
{
	ssize_t n;

	if (b->flags & FUSE_BUF_FD_SEEK)
		n = pread(b->fd, mem, len, b->pos + (off_t)off);
	else
		n = read(b->fd, mem, len);
	return n < 0 ? -errno : n;
}

static ssize_t fd_write_once(const struct fuse_buf *b, size_t off,
			     const void *mem, size_t len)
{
	ssize_t n;

	if (b->flags & FUSE_BUF_FD_SEEK)
		n = pwrite(b->fd, mem, len, b->pos + (off_t)off);
	else
		n = write(b->fd, mem, len);
	return n < 0 ? -errno : n;
}

/*
 * Read up to len bytes; with retry keep going until len or EOF. An error
 * after some progress reports the progress; the next call sees the error.
 */
static ssize_t fd_read(const struct fuse_buf *b, size_t off, void *mem,
		       size_t len, int retry)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = fd_read_once(b, off + done, (char *)mem + done,
					 len - done);

		if (n < 0)
			return done ? (ssize_t)done : n;
		if (n == 0)
			break;
		done += n;
		if (!retry)
			break;
	}
	return (ssize_t)done;
}

static ssize_t fd_write(const struct fuse_buf *b, size_t off,
			const void *mem, size_t len, int retry)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = fd_write_once(b, off + done,
					  (const char *)mem + done, len - done);

		if (n < 0)
			return done ? (ssize_t)done : n;
		if (n == 0)
			break;
		done += n;
		if (!retry)
			break;
	}
	return (ssize_t)done;
}

/*
 * fd to fd through memory. Bytes once read are always written out in full
 * (a pipe cannot give them back); reading stops at the first short read
 * unless the source retries.
 */
static ssize_t copy_fd_bounce(const struct fuse_buf *dst, size_t doff,
			      const struct fuse_buf *src, size_t soff,
			      size_t len)
{
	size_t bsize = len < BUF_BOUNCE_SIZE ? len : BUF_BOUNCE_SIZE;
	char *bounce = malloc(bsize);
	size_t done = 0;
	ssize_t res = 0;

	if (!bounce)
		return -ENOMEM;
	while (done < len) {
		size_t chunk = len - done < bsize ? len - done : bsize;
		ssize_t n = fd_read(src, soff + done, bounce, chunk,
				    buf_retries(src));
		ssize_t w;

		if (n <= 0) {
			res = n;
			break;
		}
		w = fd_write(dst, doff + done, bounce, n, 1);
		if (w < 0) {
			res = w;
			break;
		}
		done += w;
		if (w < n || (size_t)n < chunk)
			break;
	}
	free(bounce);
	return done ? (ssize_t)done : res;
}

static unsigned splice_flags(enum fuse_buf_copy_flags flags)
{
	unsigned sf = 0;

	if (flags & FUSE_BUF_SPLICE_MOVE)
		sf |= SPLICE_F_MOVE;
	if (flags & FUSE_BUF_SPLICE_NONBLOCK)
		sf |= SPLICE_F_NONBLOCK;
	return sf;
}

static ssize_t splice_at(int fd_in, const struct fuse_buf *in, size_t in_off,
			 int fd_out, const struct fuse_buf *out,
			 size_t out_off, size_t len, unsigned sf)
{
	loff_t ipos = in ? in->pos + (loff_t)in_off : 0;
	loff_t opos = out ? out->pos + (loff_t)out_off : 0;
	int iseek = in && (in->flags & FUSE_BUF_FD_SEEK);
	int oseek = out && (out->flags & FUSE_BUF_FD_SEEK);
	ssize_t n;

	n = splice(fd_in, iseek ? &ipos : NULL, fd_out, oseek ? &opos : NULL,
		   len, sf);
	return n < 0 ? -errno : n;
}

/* Move n bytes that sit in the pipe to dst by read and write. */
static ssize_t drain_pipe_by_copy(int pipe_rd, const struct fuse_buf *dst,
				  size_t doff, size_t n)
{
	struct fuse_buf pipe_buf = { .flags = FUSE_BUF_IS_FD, .fd = pipe_rd };

	return copy_fd_bounce(dst, doff, &pipe_buf, 0, n);
}

/*
 * fd to fd through a pipe with splice(2). Returns -ENOSYS before moving
 * anything when splice does not work for these fds (the caller falls back
 * unless splice is forced).
 */
static ssize_t copy_fd_splice(const struct fuse_buf *dst, size_t doff,
			      const struct fuse_buf *src, size_t soff,
			      size_t len, enum fuse_buf_copy_flags flags)
{
	unsigned sf = splice_flags(flags);
	int force = (flags & FUSE_BUF_FORCE_SPLICE) != 0;
	size_t done = 0;
	ssize_t res = 0;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	while (done < len) {
		ssize_t n = splice_at(src->fd, src, soff + done, p[1], NULL, 0,
				      len - done, sf);
		size_t moved = 0;

		if (n == -EINVAL && done == 0 && !force) {
			res = -ENOSYS;
			break;
		}
		if (n <= 0) {
			res = n;
			break;
		}
		while (moved < (size_t)n) {
			ssize_t m = splice_at(p[0], NULL, 0, dst->fd, dst,
					      doff + done + moved, n - moved, sf);

			if (m == -EINVAL && !force)
				m = drain_pipe_by_copy(p[0], dst,
						       doff + done + moved,
						       n - moved);
			if (m <= 0) {
				/* What sat in the pipe is lost: stop here. */
				res = m ? m : -EIO;
				done += moved;
				goto out_close;
			}
			moved += m;
		}
		done += n;
		/*
		 * A pipe holds whole pages, so a short splice from a file says
		 * nothing about EOF: a positioned source goes on until splice
		 * returns 0; a stream stops after one chunk unless it retries.
		 */
		if (!buf_retries(src) && !(src->flags & FUSE_BUF_FD_SEEK))
			break;
	}
out_close:
	close(p[0]);
	close(p[1]);
	if (res == -ENOSYS)
		return res;
	return done ? (ssize_t)done : res;
}

static ssize_t copy_fd_to_fd(const struct fuse_buf *dst, size_t doff,
			     const struct fuse_buf *src, size_t soff,
			     size_t len, enum fuse_buf_copy_flags flags)
{
	ssize_t res;

	if (flags & FUSE_BUF_NO_SPLICE)
		return copy_fd_bounce(dst, doff, src, soff, len);
	res = copy_fd_splice(dst, doff, src, soff, len, flags);
	if (res == -ENOSYS) {
		if (flags & FUSE_BUF_FORCE_SPLICE)
			return -EINVAL;
		return copy_fd_bounce(dst, doff, src, soff, len);
	}
	return res;
}

/* Copy len bytes between two single buffers at the given offsets. */
static ssize_t copy_one(const struct fuse_buf *dst, size_t doff,
			const struct fuse_buf *src, size_t soff, size_t len,
			enum fuse_buf_copy_flags flags)
{
	int src_fd = (src->flags & FUSE_BUF_IS_FD) != 0;
	int dst_fd = (dst->flags & FUSE_BUF_IS_FD) != 0;

	if (!src_fd && !dst_fd) {
		memmove((char *)dst->mem + doff, (char *)src->mem + soff, len);
		return (ssize_t)len;
	}
	if (!dst_fd)
		return fd_read(src, soff, (char *)dst->mem + doff, len,
			       buf_retries(src));
	if (!src_fd)
		return fd_write(dst, doff, (char *)src->mem + soff, len,
				buf_retries(dst));
	return copy_fd_to_fd(dst, doff, src, soff, len, flags);
}

/* Advance the cursor by len; returns 0 when the vector is used up. */
static int bufvec_advance(struct fuse_bufvec *v, size_t len)
{
	v->off += len;
	if (v->off == v->buf[v->idx].size) {
		v->idx++;
		v->off = 0;
	}
	return v->idx < v->count;
}

ssize_t fuse_buf_copy(struct fuse_bufvec *dstv, struct fuse_bufvec *srcv,
		      enum fuse_buf_copy_flags flags)
{
	size_t copied = 0;

	if (dstv == srcv)
		return (ssize_t)fuse_buf_size(dstv);
	while (srcv->idx < srcv->count && dstv->idx < dstv->count) {
		const struct fuse_buf *src = &srcv->buf[srcv->idx];
		const struct fuse_buf *dst = &dstv->buf[dstv->idx];
		size_t src_len = src->size - srcv->off;
		size_t dst_len = dst->size - dstv->off;
		size_t len = src_len < dst_len ? src_len : dst_len;
		ssize_t res;

		if (len == 0) {
			/* An empty buffer: step over it. */
			if (!bufvec_advance(src_len ? dstv : srcv, 0))
				break;
			continue;
		}
		res = copy_one(dst, dstv->off, src, srcv->off, len, flags);
		if (res < 0)
			return copied ? (ssize_t)copied : res;
		copied += res;
		if (!bufvec_advance(srcv, res) || !bufvec_advance(dstv, res))
			break;
		if ((size_t)res < len)
			break;
	}
	return (ssize_t)copied;
}
