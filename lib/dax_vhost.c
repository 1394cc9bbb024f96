/*
 * A DAX window backend whose memory is the VMM's virtio-fs cache window:
 * map and unmap become vhost-user SHMEM_MAP / SHMEM_UNMAP requests on the
 * backend-request channel (the file by SCM_RIGHTS, each one acked). Also
 * fuse_dax_window_new_for_session(), which picks local or remote.
 *
 * The backend keeps what the VMM really has mapped and never makes a page
 * the guest may be using inaccessible, not even between two messages (the
 * VM would die: EFAULT under KVM, SIGSEGV in QEMU under TCG). A VMM that
 * replaces mappings in place gets in-place replacements; against the
 * strict rules (no map over a mapping, no unmap of part of one) a change
 * that would need a gap over pages that stay valid is refused instead.
 * doc/vhost-user.md ("DAX mapping changes") gives the whole argument.
 */
#include "fuse_i.h"
#include "vhost_user.h"

#include "fuse_dax.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VU_BACKEND_SHMEM_MAP 9
#define VU_BACKEND_SHMEM_UNMAP 10
#define VU_MAP_RW 1ULL

struct vu_mmap_msg {
	uint8_t shmid;
	uint8_t padding[7];
	uint64_t fd_offset, shm_offset, len, flags;
};

/* One mapping as the VMM has it. */
struct dv_map {
	uint64_t off, len;
	uint64_t foff;		/* the file offset shown at off */
	dev_t dev;		/* the file (the zero file for zero pages) */
	ino_t ino;
	bool zero, rw;
	unsigned int epoch;	/* channel epoch when the VMM last confirmed it */
};

/* What a backend call wants a range to show. */
struct dv_want {
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t foff;		/* at the start of the range */
	bool zero, rw;
};

/* Does the VMM follow the strict rules? Learned from its first answer. */
enum { STRICT_UNKNOWN, STRICT_NO, STRICT_YES };

struct dax_vhost {
	struct vu_breq *b;
	uint64_t size;
	int zero_fd;	/* memfd the size of the window: pages beyond a file's end */
	dev_t zero_dev;
	ino_t zero_ino;
	/* Sorted by off, never overlapping. */
	struct dv_map *maps;
	size_t nmaps, cap;
	int strict;
	bool told_strict, told_refused, told_upgrade, told_split;
};

/* ------------------------------------------------------------------------
 * Requests on the backend channel.
 */

static int recv_ack(struct vu_breq *b, int sock, uint32_t req, uint64_t *v)
{
	struct { uint32_t request, flags, size; uint64_t v; } __attribute__((packed)) r;
	struct timespec start, now;
	size_t got = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (got < sizeof(r)) {
		struct pollfd p = { .fd = sock, .events = POLLIN };
		long waited;
		ssize_t n;
		int res;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		res = waited >= b->ack_timeout_ms ? 0 : poll(&p, 1, (int)(b->ack_timeout_ms - waited));
		if (res < 0 && errno == EINTR)
			continue;
		if (res == 0)
			return -ETIMEDOUT;
		if (res < 0)
			return -errno;
		n = recv(sock, (char *)&r + got, sizeof(r) - got, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -ENOTCONN;
		got += (size_t)n;
	}
	if (r.request != req || !(r.flags & VU_FLAG_REPLY) || r.size != sizeof(r.v))
		return -EPROTO;
	*v = r.v;
	return 0;
}

/*
 * Send one request and wait for its ack. Runs on the worker of the request
 * that asked, never on the front-end thread, and tells the device it waits
 * for the VMM (vhost_user_vmm_wait): a GET_VRING_BASE does not wait for it.
 * A VMM that does not ack in time, or acks garbage, loses its connection:
 * what it has mapped can no longer be known.
 */
static int dv_request(struct dax_vhost *d, uint32_t req, const struct vu_mmap_msg *m, int fd)
{
	struct vu_breq *b = d->b;
	struct { uint32_t request, flags, size; } __attribute__((packed)) h = {
		req, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, sizeof(*m) };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)m, sizeof(*m) } };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	const char *name = req == VU_BACKEND_SHMEM_MAP ? "SHMEM_MAP" : "SHMEM_UNMAP";
	struct vu_chan *c = NULL;
	uint64_t v = 0;
	int err;

	vhost_user_vmm_wait(true);
	pthread_mutex_lock(&b->lock);
	c = vu_breq_chan(b);
	if (!c || atomic_load(&b->dead)) {
		err = -ENOTCONN;
		goto out;
	}
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(c->fd, &mh, MSG_NOSIGNAL) != (ssize_t)(sizeof(h) + sizeof(*m))) {
		err = -ENOTCONN;
		goto out;
	}
	err = recv_ack(b, c->fd, req, &v);
	if (err == -ETIMEDOUT || err == -EPROTO) {
		char why[160];

		snprintf(why, sizeof(why), "the VMM %s %s of window offset %llu (+%llu)%s",
			 err == -EPROTO ? "answered garbage to" : "did not answer",
			 name, (unsigned long long)m->shm_offset, (unsigned long long)m->len,
			 err == -EPROTO ? "" : " in time");
		atomic_store(&b->dead, true);
		shutdown(c->fd, SHUT_RDWR);
		vu_breq_disconnect(b, why);
	} else if (!err && v) {
		err = v < 4096 ? -(int)v : -EIO;
	}
out:
	pthread_mutex_unlock(&b->lock);
	vu_chan_put(c);
	vhost_user_vmm_wait(false);
	return err;
}

static int dv_send_map(struct dax_vhost *d, uint64_t off, uint64_t len, const struct dv_want *w,
		       uint64_t foff)
{
	struct vu_mmap_msg m = { .shmid = 0, .fd_offset = foff, .shm_offset = off, .len = len,
				 .flags = w->rw ? VU_MAP_RW : 0 };
	int err = dv_request(d, VU_BACKEND_SHMEM_MAP, &m, w->fd);

	if (err && err != -EEXIST && err != -ENOTCONN && !d->told_refused &&
	    !atomic_load(&d->b->dead)) {
		d->told_refused = true;
		fuse_log(FUSE_LOG_ERR, "vhost-user: the VMM refused SHMEM_MAP of window offset %llu "
			 "(+%llu): %s. If its cache window is smaller than this daemon's (%llu bytes), "
			 "give both the same size (QEMU: cache-size=%llu, or the daemon's "
			 "-o dax_window_size= set to the VMM's)\n", (unsigned long long)off,
			 (unsigned long long)len, strerror(-err), (unsigned long long)d->size,
			 (unsigned long long)d->size);
	}
	return err;
}

static int dv_send_unmap(struct dax_vhost *d, uint64_t off, uint64_t len)
{
	struct vu_mmap_msg m = { .shm_offset = off, .len = len };
	int err = dv_request(d, VU_BACKEND_SHMEM_UNMAP, &m, -1);

	/* The VMM dropped it already (a device reset). */
	if (err == -ENOENT)
		err = 0;
	return err;
}

/* ------------------------------------------------------------------------
 * The VMM's view.
 */

static uint64_t map_end(const struct dv_map *e)
{
	return e->off + e->len;
}

/* Index of the first mapping that ends after x. */
static size_t first_after(const struct dax_vhost *d, uint64_t x)
{
	size_t lo = 0, hi = d->nmaps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (map_end(&d->maps[mid]) > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static struct dv_map map_slice(const struct dv_map *e, uint64_t from, uint64_t to)
{
	struct dv_map s = *e;

	s.foff = e->foff + (from - e->off);
	s.off = from;
	s.len = to - from;
	return s;
}

static int table_reserve(struct dax_vhost *d, size_t extra)
{
	struct dv_map *n;
	size_t cap;

	if (d->nmaps + extra <= d->cap)
		return 0;
	cap = d->cap ? d->cap * 2 : 16;
	while (cap < d->nmaps + extra)
		cap *= 2;
	n = realloc(d->maps, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	d->maps = n;
	d->cap = cap;
	return 0;
}

/* Forget [start, end): the VMM no longer maps it. Needs one free slot. */
static void table_carve(struct dax_vhost *d, uint64_t start, uint64_t end)
{
	size_t i = first_after(d, start);

	while (i < d->nmaps && d->maps[i].off < end) {
		struct dv_map e = d->maps[i];
		bool left = e.off < start, right = map_end(&e) > end;

		if (left && right) {
			memmove(&d->maps[i + 2], &d->maps[i + 1], (d->nmaps - i - 1) * sizeof(e));
			d->maps[i] = map_slice(&e, e.off, start);
			d->maps[i + 1] = map_slice(&e, end, map_end(&e));
			d->nmaps++;
			return;
		}
		if (left) {
			d->maps[i++] = map_slice(&e, e.off, start);
		} else if (right) {
			d->maps[i] = map_slice(&e, end, map_end(&e));
			return;
		} else {
			memmove(&d->maps[i], &d->maps[i + 1], (d->nmaps - i - 1) * sizeof(e));
			d->nmaps--;
		}
	}
}

/* Record that the VMM maps [off, off + len) as w says (foff at off). */
static int table_set(struct dax_vhost *d, uint64_t off, uint64_t len, const struct dv_want *w,
		     uint64_t foff)
{
	struct dv_map e = { off, len, foff, w->dev, w->ino, w->zero, w->rw,
			    atomic_load(&d->b->epoch) };
	size_t i;
	int err = table_reserve(d, 2);

	if (err)
		return err;
	table_carve(d, off, off + len);
	i = first_after(d, off);
	memmove(&d->maps[i + 1], &d->maps[i], (d->nmaps - i) * sizeof(e));
	d->maps[i] = e;
	d->nmaps++;
	return 0;
}

/* The VMM is gone: it has nothing mapped. */
static bool vmm_gone(struct dax_vhost *d)
{
	if (!atomic_load(&d->b->dead))
		return false;
	d->nmaps = 0;
	return true;
}

/* Does e, at window offset pos, already show what w wants there? */
static bool shows(const struct dv_map *e, const struct dv_want *w, uint64_t m, uint64_t pos)
{
	return e->dev == w->dev && e->ino == w->ino && e->zero == w->zero &&
	       e->foff + (pos - e->off) == w->foff + (pos - m) && (e->rw || !w->rw);
}

/* ------------------------------------------------------------------------
 * Changing a range.
 */

static int map_piece(struct dax_vhost *d, uint64_t m, const struct dv_want *w, uint64_t from,
		     uint64_t to)
{
	uint64_t foff = w->foff + (from - m);
	int err;

	/* Fresh zeros: drop what an earlier zero mapping left there. */
	if (w->zero && fallocate(d->zero_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 (off_t)from, (off_t)(to - from)) != 0)
		return -errno;
	err = dv_send_map(d, from, to - from, w, foff);
	if (err == -EEXIST) {
		/* Something is there that we did not know of (a stale view). */
		return err;
	}
	return err ? err : table_set(d, from, to - from, w, foff);
}

/* Unmap e whole (strict), then map back its parts outside [from, to). */
static int replace_zero(struct dax_vhost *d, struct dv_map e, uint64_t from, uint64_t to)
{
	struct dv_want z = { d->zero_fd, d->zero_dev, d->zero_ino, 0, true, e.rw };
	int err = dv_send_unmap(d, e.off, e.len);

	if (err)
		return err;
	table_carve(d, e.off, map_end(&e));
	/* Zero pages lie beyond a file's end: nobody may touch them meanwhile. */
	if (e.off < from) {
		z.foff = e.off;
		err = dv_send_map(d, e.off, from - e.off, &z, e.off);
		if (!err)
			err = table_set(d, e.off, from - e.off, &z, e.off);
	}
	if (!err && map_end(&e) > to) {
		z.foff = to;
		err = dv_send_map(d, to, map_end(&e) - to, &z, to);
		if (!err)
			err = table_set(d, to, map_end(&e) - to, &z, to);
	}
	return err;
}

enum { ACT_NONE, ACT_MAP, ACT_CONFIRM, ACT_REPLACE_ZERO, ACT_REPLACE, ACT_KEEP };

/*
 * The strict rules: plan every piece of [m, m + len) first and refuse
 * (changing nothing) if one would need a gap over pages that stay valid;
 * then carry the plan out, recording each acked step.
 */
static int apply_strict(struct dax_vhost *d, uint64_t m, uint64_t len, const struct dv_want *w)
{
	unsigned int epoch = atomic_load(&d->b->epoch);
	uint64_t end = m + len, pos;
	int err;

	for (pos = m; pos < end;) {
		size_t i = first_after(d, pos);
		const struct dv_map *e = i < d->nmaps && d->maps[i].off <= pos ? &d->maps[i] : NULL;
		uint64_t next = e ? (map_end(e) < end ? map_end(e) : end)
				  : (i < d->nmaps && d->maps[i].off < end ? d->maps[i].off : end);

		if (e && !e->zero && !w->zero && !shows(e, w, m, pos)) {
			bool same = e->dev == w->dev && e->ino == w->ino &&
				    e->foff + (pos - e->off) == w->foff + (pos - m);

			if (same) {
				/* A read-to-write upgrade: the pages stay valid throughout. */
				if (!d->told_upgrade) {
					d->told_upgrade = true;
					fuse_log(FUSE_LOG_ERR, "vhost-user: the VMM cannot make a "
						 "read-only DAX mapping writable in place (strict SHMEM "
						 "rules), and unmapping it first could kill the VM: the "
						 "upgrade is refused. The file system should map writable "
						 "up front when the file allows it (as passthrough_dax "
						 "does)\n");
				}
				return -EEXIST;
			}
			if (e->off < m || map_end(e) > end) {
				/* Its other part stays valid: no gap may touch it. */
				if (!d->told_split) {
					d->told_split = true;
					fuse_log(FUSE_LOG_ERR, "vhost-user: cannot replace part of a "
						 "DAX mapping under the VMM's strict SHMEM rules: "
						 "refused\n");
				}
				return -EBUSY;
			}
		}
		pos = next;
	}

	for (pos = m; pos < end;) {
		size_t i = first_after(d, pos);
		struct dv_map e;
		uint64_t next;
		int act;

		if (i < d->nmaps && d->maps[i].off <= pos) {
			e = d->maps[i];
			next = map_end(&e) < end ? map_end(&e) : end;
			if (shows(&e, w, m, pos))
				act = e.epoch == epoch ? ACT_NONE : ACT_CONFIRM;
			else if (w->zero && !e.zero)
				act = ACT_KEEP;	/* file pages the window now treats as beyond EOF */
			else if (e.zero)
				act = ACT_REPLACE_ZERO;
			else
				act = ACT_REPLACE;
		} else {
			next = i < d->nmaps && d->maps[i].off < end ? d->maps[i].off : end;
			act = ACT_MAP;
		}
		switch (act) {
		case ACT_MAP:
			err = map_piece(d, m, w, pos, next);
			break;
		case ACT_CONFIRM:
			/* Maybe dropped by a device reset: present (EEXIST) or mapped again. */
			err = dv_send_map(d, pos, next - pos, w, w->foff + (pos - m));
			if (err == -EEXIST)
				d->maps[i].epoch = epoch, err = 0;
			else if (!err)
				err = table_set(d, pos, next - pos, w, w->foff + (pos - m));
			break;
		case ACT_REPLACE_ZERO:
			err = replace_zero(d, e, pos, next);
			if (!err)
				err = map_piece(d, m, w, pos, next);
			break;
		case ACT_REPLACE:
			/* The client replaces what it had here: those pages go. */
			err = dv_send_unmap(d, e.off, e.len);
			if (!err) {
				table_carve(d, e.off, map_end(&e));
				err = map_piece(d, m, w, pos, next);
			}
			break;
		default:
			err = 0;
		}
		if (err)
			return err;
		pos = next;
	}
	return 0;
}

/* Make [m, m + len) show what w says, without a gap over valid pages. */
static int apply(struct dax_vhost *d, uint64_t m, uint64_t len, const struct dv_want *w)
{
	unsigned int epoch = atomic_load(&d->b->epoch);
	bool all_same = true, all_hole = true;
	uint64_t end = m + len;
	int err;

	size_t overlaps = 0;

	if (vmm_gone(d))
		return -ENOTCONN;
	for (size_t i = first_after(d, m); i < d->nmaps && d->maps[i].off < end; i++) {
		const struct dv_map *e = &d->maps[i];
		uint64_t pos = e->off > m ? e->off : m;

		overlaps++;
		all_hole = false;
		if (!(shows(e, w, m, pos) && e->epoch == epoch) &&
		    !(w->zero && !e->zero && d->strict == STRICT_YES))
			all_same = false;
	}
	/*
	 * Room for every entry this change can add, before anything is sent:
	 * a step the VMM acked is always recorded.
	 */
	err = table_reserve(d, 3 * (overlaps + 1) + 2);
	if (err)
		return err;
	if (all_hole)
		return map_piece(d, m, w, m, end);
	if (all_same) {
		/* Covered without holes? Then nothing to do. */
		uint64_t pos = m;

		for (size_t i = first_after(d, m); i < d->nmaps && d->maps[i].off <= pos && pos < end;
		     i++)
			pos = map_end(&d->maps[i]);
		if (pos >= end)
			return 0;
	}
	if (d->strict != STRICT_YES) {
		/* In place, over what is there: a VMM that allows it never leaves a gap. */
		if (w->zero && fallocate(d->zero_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					 (off_t)m, (off_t)len) != 0)
			return -errno;
		err = dv_send_map(d, m, len, w, w->foff);
		if (!err) {
			d->strict = STRICT_NO;
			return table_set(d, m, len, w, w->foff);
		}
		if (err != -EEXIST) {
			/* What the VMM has there now is unknown: check it next time. */
			for (size_t i = first_after(d, m); i < d->nmaps && d->maps[i].off < end; i++)
				d->maps[i].epoch = epoch - 1;
			return err;
		}
		d->strict = STRICT_YES;
		if (!d->told_strict) {
			d->told_strict = true;
			fuse_log(FUSE_LOG_INFO, "vhost-user: the VMM follows the strict SHMEM rules "
				 "(no map over a mapping)\n");
		}
	}
	return apply_strict(d, m, len, w);
}

static int dv_map(void *backend, uint64_t moffset, uint64_t len, int fd, uint64_t foffset,
		  int prot)
{
	struct dax_vhost *d = backend;
	struct dv_want w = { .fd = fd, .foff = foffset, .rw = (prot & PROT_WRITE) != 0 };
	struct stat st;

	if (fstat(fd, &st) != 0)
		return -errno;
	w.dev = st.st_dev;
	w.ino = st.st_ino;
	return apply(d, moffset, len, &w);
}

static int dv_map_zero(void *backend, uint64_t moffset, uint64_t len, int prot)
{
	struct dax_vhost *d = backend;
	struct dv_want w = { d->zero_fd, d->zero_dev, d->zero_ino, moffset, true,
			     (prot & PROT_WRITE) != 0 };

	return apply(d, moffset, len, &w);
}

/*
 * Unmap [moffset, moffset + len). A mapping that lies partly outside is cut
 * in place where the VMM allows it; under the strict rules only zero pages
 * (beyond a file's end) may be unmapped and mapped back, anything else is
 * refused, changing nothing.
 */
static int dv_unmap(void *backend, uint64_t moffset, uint64_t len)
{
	struct dax_vhost *d = backend;
	uint64_t end = moffset + len;
	int err = 0;

	if (vmm_gone(d) || len == 0)
		return 0;
	err = table_reserve(d, 4);	/* zero pieces mapped back: recorded */
	if (err)
		return err;
	for (size_t i = first_after(d, moffset); i < d->nmaps && d->maps[i].off < end; i++) {
		const struct dv_map *e = &d->maps[i];

		if (d->strict == STRICT_YES && !e->zero && (e->off < moffset || map_end(e) > end)) {
			if (!d->told_split) {
				d->told_split = true;
				fuse_log(FUSE_LOG_ERR, "vhost-user: cannot unmap part of a DAX mapping "
					 "under the VMM's strict SHMEM rules: refused\n");
			}
			return -EBUSY;
		}
	}
	while (!err) {
		size_t i = first_after(d, moffset);
		struct dv_map e;
		uint64_t from, to;

		if (i >= d->nmaps || d->maps[i].off >= end)
			break;
		e = d->maps[i];
		from = e.off > moffset ? e.off : moffset;
		to = map_end(&e) < end ? map_end(&e) : end;
		if (e.off >= moffset && map_end(&e) <= end) {
			err = dv_send_unmap(d, e.off, e.len);
			if (!err)
				table_carve(d, e.off, map_end(&e));
			continue;
		}
		if (d->strict != STRICT_YES) {
			err = dv_send_unmap(d, from, to - from);
			if (!err) {
				d->strict = STRICT_NO;
				err = table_reserve(d, 1);
				if (!err)
					table_carve(d, from, to);
				continue;
			}
			if (err != -EINVAL)
				break;
			d->strict = STRICT_YES;
			if (!e.zero)
				return -EBUSY;
			err = 0;
		}
		err = replace_zero(d, e, from, to);
	}
	return err;
}

static void dv_destroy(void *backend)
{
	struct dax_vhost *d = backend;

	/* Whatever the window could not unmap, if the VMM is still there. */
	while (!vmm_gone(d) && d->nmaps) {
		struct dv_map e = d->maps[d->nmaps - 1];

		if (dv_send_unmap(d, e.off, e.len) != 0)
			break;
		d->nmaps--;
	}
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
	struct stat st;
	int err;

	if (!d)
		return -ENOMEM;
	d->b = b;
	d->size = size;
	d->zero_fd = memfd_create("fusedax-dax-zero", MFD_CLOEXEC);
	if (d->zero_fd < 0 || ftruncate(d->zero_fd, (off_t)size) != 0 ||
	    fstat(d->zero_fd, &st) != 0) {
		err = -errno;
		goto out_free;
	}
	d->zero_dev = st.st_dev;
	d->zero_ino = st.st_ino;
	err = fuse_dax_window_new(size, page > 0 ? (uint64_t)page : 4096, &dax_vhost_ops, d, out);
	if (err)
		goto out_free;
	atomic_store(&b->window_size, size);
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
