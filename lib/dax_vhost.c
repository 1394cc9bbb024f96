/*
 * A DAX window backend whose memory is the VMM's virtio-fs cache window:
 * map and unmap become vhost-user SHMEM_MAP / SHMEM_UNMAP requests on the
 * backend-request channel (the file by SCM_RIGHTS, each one acked). Also
 * fuse_dax_window_new_for_session(), which picks local or remote.
 */
#include "fuse_i.h"
#include "vhost_user.h"

#include "fuse_dax.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define VU_BACKEND_SHMEM_MAP 9
#define VU_BACKEND_SHMEM_UNMAP 10
#define VU_MAP_RW 1ULL

struct vu_mmap_msg {
	uint8_t shmid;
	uint8_t padding[7];
	uint64_t fd_offset, shm_offset, len, flags;
};

/* What the VMM has mapped, as the VMM sees it (strict: whole mappings). */
struct dv_map {
	uint64_t off, len, foff;
	int fd;		/* the window's descriptor, or -1 for the zero file */
	bool rw;
};

struct dax_vhost {
	struct vu_breq *b;
	uint64_t size;
	int zero_fd;	/* memfd the size of the window: pages beyond a file's end */
	struct dv_map *maps;
	size_t nmaps, cap;
};

/* Send one request and wait for its ack. Never called on the front-end thread. */
static int dv_request(struct dax_vhost *d, uint32_t req, const struct vu_mmap_msg *m, int fd)
{
	struct vu_breq *b = d->b;
	struct { uint32_t request, flags, size; } __attribute__((packed)) h = {
		req, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, sizeof(*m) };
	struct { uint32_t request, flags, size; uint64_t v; } __attribute__((packed)) r;
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)m, sizeof(*m) } };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t got = 0;
	int sock, err = 0;

	pthread_mutex_lock(&b->lock);
	sock = atomic_load(&b->fd);
	if (sock < 0 || atomic_load(&b->dead)) {
		err = -ENOTCONN;
		goto out;
	}
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)(sizeof(h) + sizeof(*m))) {
		err = -ENOTCONN;
		goto out;
	}
	while (got < sizeof(r)) {
		ssize_t n = recv(sock, (char *)&r + got, sizeof(r) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = -ENOTCONN;
			goto out;
		}
		got += (size_t)n;
	}
	if (r.request != req || r.size != 8) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: unexpected backend reply %u (size %u)\n",
			 r.request, r.size);
		err = -EPROTO;
		goto out;
	}
	if (r.v)
		err = r.v < 4096 ? -(int)r.v : -EIO;
out:
	pthread_mutex_unlock(&b->lock);
	return err;
}

static int dv_send_map(struct dax_vhost *d, const struct dv_map *e)
{
	struct vu_mmap_msg m = { .shmid = 0, .fd_offset = e->foff, .shm_offset = e->off,
				 .len = e->len, .flags = e->rw ? VU_MAP_RW : 0 };

	return dv_request(d, VU_BACKEND_SHMEM_MAP, &m, e->fd >= 0 ? e->fd : d->zero_fd);
}

static int dv_send_unmap(struct dax_vhost *d, uint64_t off, uint64_t len)
{
	struct vu_mmap_msg m = { .shm_offset = off, .len = len };
	int err = dv_request(d, VU_BACKEND_SHMEM_UNMAP, &m, -1);

	/* The VMM is gone or already dropped it (device reset): nothing is mapped. */
	if (err == -ENOTCONN || err == -ENOENT)
		err = 0;
	return err;
}

static int dv_add(struct dax_vhost *d, const struct dv_map *e)
{
	if (d->nmaps == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct dv_map *n = realloc(d->maps, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->maps = n;
		d->cap = cap;
	}
	d->maps[d->nmaps++] = *e;
	return 0;
}

/*
 * Make [off, off + len) unmapped in the VMM. A mapping that covers more is
 * unmapped whole (the strict rules allow nothing else) and its outside
 * pieces mapped again.
 */
static int dv_clear(struct dax_vhost *d, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;

	for (size_t i = 0; i < d->nmaps;) {
		struct dv_map e = d->maps[i];
		int err;

		if (e.off >= end || e.off + e.len <= off) {
			i++;
			continue;
		}
		err = dv_send_unmap(d, e.off, e.len);
		if (err)
			return err;
		d->maps[i] = d->maps[--d->nmaps];
		if (e.off < off) {
			struct dv_map h = e;

			h.len = off - e.off;
			if (dv_send_map(d, &h) == 0)
				dv_add(d, &h);
		}
		if (e.off + e.len > end) {
			struct dv_map t = e;

			t.off = end;
			t.len = e.off + e.len - end;
			t.foff = e.foff + (end - e.off);
			if (dv_send_map(d, &t) == 0)
				dv_add(d, &t);
		}
		i = 0; /* the table changed: look again */
	}
	return 0;
}

static int dv_map(void *backend, uint64_t moffset, uint64_t len, int fd, uint64_t foffset,
		  int prot)
{
	struct dax_vhost *d = backend;
	struct dv_map e = { moffset, len, foffset, fd, (prot & PROT_WRITE) != 0 };
	int err = dv_clear(d, moffset, len);

	if (!err)
		err = dv_send_map(d, &e);
	if (!err)
		err = dv_add(d, &e);
	return err;
}

static int dv_map_zero(void *backend, uint64_t moffset, uint64_t len, int prot)
{
	struct dax_vhost *d = backend;
	struct dv_map e = { moffset, len, moffset, -1, (prot & PROT_WRITE) != 0 };
	int err = dv_clear(d, moffset, len);

	/* Fresh zeros: drop whatever an earlier zero mapping left there. */
	if (!err && fallocate(d->zero_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)moffset, (off_t)len) != 0)
		err = -errno;
	if (!err)
		err = dv_send_map(d, &e);
	if (!err)
		err = dv_add(d, &e);
	return err;
}

static int dv_unmap(void *backend, uint64_t moffset, uint64_t len)
{
	return dv_clear(backend, moffset, len);
}

static void dv_destroy(void *backend)
{
	struct dax_vhost *d = backend;

	vu_breq_put(d->b);
	close(d->zero_fd);
	free(d->maps);
	free(d);
}

static const struct fuse_dax_backend_ops dax_vhost_ops = {
	.map = dv_map,
	.map_zero = dv_map_zero,
	.unmap = dv_unmap,
	.destroy = dv_destroy,
};

int dax_vhost_window_new(struct vu_breq *b, uint64_t size, struct fuse_dax_window **out)
{
	struct dax_vhost *d = calloc(1, sizeof(*d));
	long page = sysconf(_SC_PAGESIZE);
	int err;

	if (!d)
		return -ENOMEM;
	d->b = b;
	d->size = size;
	d->zero_fd = memfd_create("fusedax-dax-zero", MFD_CLOEXEC);
	if (d->zero_fd < 0 || ftruncate(d->zero_fd, (off_t)size) != 0) {
		err = -errno;
		goto out_free;
	}
	err = fuse_dax_window_new(size, page > 0 ? (uint64_t)page : 4096, &dax_vhost_ops, d, out);
	if (err)
		goto out_free;
	fuse_log(FUSE_LOG_INFO, "DAX window: vhost-user, %llu bytes\n", (unsigned long long)size);
	return 0;

out_free:
	if (d->zero_fd >= 0)
		close(d->zero_fd);
	free(d);
	return err;
}

int fuse_dax_window_new_for_session(struct fuse_session *se, uint64_t size, unsigned flags,
				    struct fuse_dax_window **out)
{
	struct vu_breq *b;
	int err;

	if (!se || !se->vu)
		return fuse_dax_window_new_local(size, flags, out);
	b = vhost_user_breq(se);
	err = dax_vhost_window_new(b, size, out);
	if (err) {
		vu_breq_put(b);
		return err;
	}
	vhost_user_want_dax(se);
	return 0;
}
