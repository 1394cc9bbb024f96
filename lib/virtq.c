/*
 * Split virtqueue handling over guest memory described by a vhost-user
 * memory table: every address the guest gives is checked against the table
 * before it is touched, and a bad chain fails only that chain.
 */
#include "virtq.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

void *virtq_mem_uva(const struct virtq_mem *m, uint64_t uva, uint64_t len)
{
	for (unsigned int i = 0; i < m->nregions; i++) {
		const struct virtq_region *r = &m->r[i];

		if (uva >= r->uva && uva - r->uva <= r->size && len <= r->size - (uva - r->uva))
			return r->host + (uva - r->uva);
	}
	return NULL;
}

int virtq_mem_gpa(const struct virtq_mem *m, uint64_t gpa, uint64_t len,
		  struct iovec *iov, int *n, int max)
{
	while (len > 0) {
		const struct virtq_region *r = NULL;
		uint64_t off, chunk;

		for (unsigned int i = 0; i < m->nregions; i++) {
			if (gpa >= m->r[i].gpa && gpa - m->r[i].gpa < m->r[i].size) {
				r = &m->r[i];
				break;
			}
		}
		if (!r)
			return -EFAULT;
		if (*n >= max)
			return -E2BIG;
		off = gpa - r->gpa;
		chunk = r->size - off < len ? r->size - off : len;
		iov[*n].iov_base = r->host + off;
		iov[*n].iov_len = chunk;
		(*n)++;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

int virtq_setup(struct virtq *vq, const struct virtq_mem *m, unsigned int num,
		uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva)
{
	void *d, *a, *u;

	memset(vq, 0, sizeof(*vq));
	if (num == 0 || num > VIRTQ_MAX_NUM || (num & (num - 1)))
		return -EINVAL;
	if ((desc_uva & 15) || (avail_uva & 1) || (used_uva & 3))
		return -EINVAL;
	d = virtq_mem_uva(m, desc_uva, 16ULL * num);
	a = virtq_mem_uva(m, avail_uva, 6 + 2ULL * num);
	u = virtq_mem_uva(m, used_uva, 6 + 8ULL * num);
	if (!d || !a || !u)
		return -EFAULT;
	/*
	 * Aligned as VMM addresses is not enough: a region's mmap_offset can
	 * shift our view of it. The rings are read with 16- and 32-bit atomics,
	 * which must be aligned here (a misaligned atomic is a SIGBUS on some
	 * architectures and undefined everywhere).
	 */
	if (((uintptr_t)d & 15) || ((uintptr_t)a & 1) || ((uintptr_t)u & 3))
		return -EINVAL;
	vq->num = num;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->used_idx = __atomic_load_n(&vq->used[1], __ATOMIC_ACQUIRE);
	return 0;
}

int virtq_pop(struct virtq *vq, uint16_t *head)
{
	uint16_t avail_idx, h;

	if (vq->broken || !vq->num)
		return 0;
	avail_idx = __atomic_load_n(&vq->avail[1], __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->num) {
		vq->broken = true;
		return -EIO;
	}
	/* The ring entry is read after the index (acquire above). */
	h = __atomic_load_n(&vq->avail[2 + (vq->last_avail & (vq->num - 1))],
			    __ATOMIC_RELAXED);
	vq->last_avail++;
	if (h >= vq->num)
		return -EIO;
	*head = h;
	return 1;
}

int virtq_map_chain(const struct virtq *vq, const struct virtq_mem *m, uint16_t head,
		    struct virtq_chain *c)
{
	uint16_t i = head;
	unsigned int steps = 0;
	int n = 0, err;

	c->head = head;
	c->nread = c->nwrite = 0;
	c->read_len = c->write_len = 0;
	for (;;) {
		struct virtq_desc d;

		if (i >= vq->num || ++steps > vq->num)
			return -EINVAL;
		/* One copy: the guest may change the descriptor under us. */
		memcpy(&d, (const void *)&vq->desc[i], sizeof(d));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return -EINVAL; /* not offered */
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			err = virtq_mem_gpa(m, d.addr, d.len, c->seg, &n, VIRTQ_MAX_SEGS);
			if (err)
				return err;
			c->write_len += d.len;
		} else {
			if (c->write_len || c->nwrite)
				return -EINVAL;
			err = virtq_mem_gpa(m, d.addr, d.len, c->seg, &n, VIRTQ_MAX_SEGS);
			if (err)
				return err;
			c->read_len += d.len;
			c->nread = n;
		}
		c->nwrite = n - c->nread;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		i = d.next;
	}
	return 0;
}

int virtq_map_reply(const struct virtq *vq, const struct virtq_mem *m, uint16_t head,
		    struct virtq_chain *c, void *prefix, size_t prefix_size, size_t *prefix_len)
{
	uint16_t i = head;
	unsigned int steps = 0;
	bool reading = true;
	int n = 0;

	c->head = head;
	c->nread = c->nwrite = 0;
	c->read_len = c->write_len = 0;
	*prefix_len = 0;
	for (;;) {
		/* Regions do not overlap: one buffer crosses each at most once. */
		struct iovec seg[VIRTQ_MAX_REGIONS];
		struct virtq_desc d;
		int k = 0, err;

		if (i >= vq->num || ++steps > vq->num)
			return -EINVAL;
		memcpy(&d, (const void *)&vq->desc[i], sizeof(d));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return -EINVAL;
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			/* From the first writable byte on, as far as it translates. */
			reading = false;
			err = virtq_mem_gpa(m, d.addr, d.len, c->seg, &n, VIRTQ_MAX_SEGS);
			if (err)
				return err;
			c->write_len += d.len;
			c->nwrite = n;
		} else if (reading) {
			/* The first bytes of the request, up to the first bad one. */
			err = virtq_mem_gpa(m, d.addr, d.len, seg, &k, VIRTQ_MAX_REGIONS);
			for (int j = 0; !err && j < k && *prefix_len < prefix_size; j++) {
				size_t take = seg[j].iov_len < prefix_size - *prefix_len
						      ? seg[j].iov_len : prefix_size - *prefix_len;

				memcpy((char *)prefix + *prefix_len, seg[j].iov_base, take);
				*prefix_len += take;
			}
			if (err)
				reading = false;
		} else if (c->nwrite) {
			return -EINVAL; /* readable after writable */
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

ssize_t virtq_gather(const struct virtq_chain *c, void *buf, size_t size)
{
	size_t done = 0;

	if (c->read_len > size)
		return -E2BIG;
	for (int i = 0; i < c->nread; i++) {
		memcpy((char *)buf + done, c->seg[i].iov_base, c->seg[i].iov_len);
		done += c->seg[i].iov_len;
	}
	return (ssize_t)done;
}

ssize_t virtq_scatter(const struct virtq_chain *c, const struct iovec *iov, int count)
{
	size_t total = 0, seg_off = 0;
	int s = c->nread;

	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	if (total > c->write_len)
		return -EMSGSIZE;
	for (int i = 0; i < count; i++) {
		const char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left > 0) {
			size_t room, n;

			if (s >= c->nread + c->nwrite)
				return -EMSGSIZE;
			room = c->seg[s].iov_len - seg_off;
			n = left < room ? left : room;
			memcpy((char *)c->seg[s].iov_base + seg_off, p, n);
			p += n;
			left -= n;
			seg_off += n;
			if (seg_off == c->seg[s].iov_len) {
				s++;
				seg_off = 0;
			}
		}
	}
	return (ssize_t)total;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	volatile uint32_t *ring = (volatile uint32_t *)(vq->used + 2);
	size_t slot = vq->used_idx & (vq->num - 1);

	ring[2 * slot] = head;
	ring[2 * slot + 1] = len;
	vq->used_idx++;
	__atomic_store_n(&vq->used[1], vq->used_idx, __ATOMIC_RELEASE);
}
