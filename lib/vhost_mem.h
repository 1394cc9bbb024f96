/*
 * Guest memory of a vhost-user device: the regions a VMM shares with
 * SET_MEM_TABLE, mapped into this process and checked against their files,
 * as counted tables (a request keeps the table its buffers live in), and a
 * guard that turns a SIGBUS on that memory (the VMM shrank a region's file)
 * into an error of the access instead of the death of the process.
 */
#ifndef FUSEDAX_VHOST_MEM_H
#define FUSEDAX_VHOST_MEM_H

#include "virtq.h"

#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>

/** One memory table: its regions mapped here. Counted; immutable. */
struct vu_mem {
	atomic_int refs;
	struct virtq_mem m;
	void *map_base[VIRTQ_MAX_REGIONS];
	size_t map_len[VIRTQ_MAX_REGIONS];
};

/**
 * Map the regions of a SET_MEM_TABLE payload (u32 nregions, u32 padding,
 * then per region u64 guest_phys_addr, memory_size, userspace_addr,
 * mmap_offset), one descriptor per region in fds. A region must lie inside
 * its file (fstat) and be a regular file; the fds are not closed. Logs why
 * a table is refused. Returns 0 (*out holds one reference) or -errno.
 */
int vu_mem_new(const uint8_t *payload, uint32_t size, const int *fds, int nfds,
	       struct vu_mem **out);
/** A table with no regions (before the first SET_MEM_TABLE). */
int vu_mem_empty(struct vu_mem **out);
struct vu_mem *vu_mem_get(struct vu_mem *mem);
/** Drop a reference; the last one unmaps the regions. NULL is a no-op. */
void vu_mem_put(struct vu_mem *mem);

/*
 * Every access to guest memory runs inside a guard:
 *
 *	struct vu_guard g;
 *
 *	vu_guard_arm(&g, mem_a, mem_b);
 *	if (sigsetjmp(g.jb, 0)) {
 *		(a SIGBUS hit mem_a or mem_b: the guard is already disarmed)
 *	} else {
 *		(touch guest memory)
 *		vu_guard_disarm(&g);
 *	}
 *
 * A SIGBUS inside one of the named tables' mappings jumps back with
 * sigsetjmp() returning 1; any other SIGBUS goes to the handler that was
 * installed before (or kills the process, as without the guard). Locals
 * changed between the two calls and read after a jump must be volatile.
 * Guards nest. Arming unblocks SIGBUS in the calling thread once (the
 * library's threads block every signal, and a blocked SIGBUS from a fault
 * kills the process whatever the handler).
 */
struct vu_guard {
	sigjmp_buf jb;
	const struct vu_mem *mem[2];
	struct vu_guard *prev;
};

/** Install the process's SIGBUS handler once; 0 or -errno. */
int vu_guard_install(void);
void vu_guard_arm(struct vu_guard *g, const struct vu_mem *a, const struct vu_mem *b);
void vu_guard_disarm(struct vu_guard *g);

#endif /* FUSEDAX_VHOST_MEM_H */
