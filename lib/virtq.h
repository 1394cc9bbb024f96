/*
 * Split virtqueues in guest memory shared by a VMM (vhost-user): the memory
 * table, ring setup, descriptor chains gathered into a buffer and replies
 * scattered back, all bounds checked against the table. Pure: no threads.
 */
#ifndef FUSEDAX_VIRTQ_H
#define FUSEDAX_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VIRTQ_MAX_REGIONS 8
/** Largest queue size accepted (virtio allows 32768; QEMU uses <= 1024). */
#define VIRTQ_MAX_NUM 32768
/** Segments of one chain after splitting at region boundaries. */
#define VIRTQ_MAX_SEGS 1024

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

/** One region of guest memory, mapped into this process. */
struct virtq_region {
	uint64_t gpa;	/* guest physical address of the first byte */
	uint64_t size;
	uint64_t uva;	/* the VMM's virtual address of the first byte */
	uint8_t *host;	/* our mapping of the first byte */
};

struct virtq_mem {
	unsigned int nregions;
	struct virtq_region r[VIRTQ_MAX_REGIONS];
};

/** Host pointer for [uva, uva + len) if it lies inside one region, else NULL. */
void *virtq_mem_uva(const struct virtq_mem *m, uint64_t uva, uint64_t len);

/**
 * Translate the guest range [gpa, gpa + len) into host segments appended to
 * iov[*n..max). Returns 0, -EFAULT (some byte lies in no region) or -E2BIG.
 */
int virtq_mem_gpa(const struct virtq_mem *m, uint64_t gpa, uint64_t len,
		  struct iovec *iov, int *n, int max);

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/** One queue's rings; the caller serialises access. */
struct virtq {
	unsigned int num;
	struct virtq_desc *desc;
	volatile uint16_t *avail;	/* flags, idx, ring[num] */
	volatile uint16_t *used;	/* flags, idx, then {u32 id, u32 len}[num] */
	uint16_t last_avail;
	uint16_t used_idx;
	bool broken;	/* the guest broke the avail ring: stop popping */
};

/**
 * Point vq at rings given as VMM virtual addresses (vhost-user's
 * SET_VRING_ADDR); used_idx is read from the used ring. Returns 0, -EINVAL
 * (bad num, or a ring misaligned as a VMM address or as ours) or -EFAULT
 * (a ring is not inside one region).
 */
int virtq_setup(struct virtq *vq, const struct virtq_mem *m, unsigned int num,
		uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva);

/**
 * Take the next available chain head. Returns 1 (head set), 0 (ring empty)
 * or -EIO (the guest published more entries than the ring holds, or a head
 * out of range: the entry is consumed and, for a bad head, dropped).
 */
int virtq_pop(struct virtq *vq, uint16_t *head);

/** A mapped descriptor chain: readable segments first, then writable ones. */
struct virtq_chain {
	uint16_t head;
	int nread, nwrite;
	size_t read_len, write_len;
	struct iovec seg[VIRTQ_MAX_SEGS];
};

/**
 * Walk and translate the chain starting at head. Returns 0, or -EINVAL (bad
 * index, a loop or a chain longer than the ring, an indirect descriptor,
 * a readable descriptor after a writable one), -EFAULT (a buffer outside
 * guest memory) or -E2BIG (too many segments). Each descriptor is read once.
 */
int virtq_map_chain(const struct virtq *vq, const struct virtq_mem *m, uint16_t head,
		    struct virtq_chain *c);

/**
 * For a chain that virtq_map_chain() refused: find where an error reply
 * can still go. Copies up to prefix_size leading readable bytes (as far as
 * they translate) into prefix and sets *prefix_len; maps the writable part
 * from its first descriptor on into c (c->nread stays 0) as far as it
 * translates, so c->write_len is the room for a reply (0: none). Returns 0
 * if the walk reached the chain's end, or the error that stopped it; c is
 * usable either way. Each descriptor is read once.
 */
int virtq_map_reply(const struct virtq *vq, const struct virtq_mem *m, uint16_t head,
		    struct virtq_chain *c, void *prefix, size_t prefix_size, size_t *prefix_len);

/** Copy the readable part into buf; returns the bytes copied, or -E2BIG. */
ssize_t virtq_gather(const struct virtq_chain *c, void *buf, size_t size);

/** Copy iov into the writable part; returns the bytes written, or -EMSGSIZE. */
ssize_t virtq_scatter(const struct virtq_chain *c, const struct iovec *iov, int count);

/** Return head to the guest with len bytes written. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);

#endif /* FUSEDAX_VIRTQ_H */
