/*
 * kclient DAX: a model of the Linux FUSE DAX client (fs/fuse/dax.c) on top
 * of a kclient connection, so a server's SETUPMAPPING/REMOVEMAPPING and its
 * ordering against extent changes can be driven the way a guest drives them.
 *
 * What it models:
 * - 2 MiB ranges: the window is divided into 2 MiB slots, and a file is
 *   mapped in 2 MiB-aligned ranges, one slot per range.
 * - Mapping on first access to a file range: SETUPMAPPING (fh (u64)-1)
 *   read-only for a read, READ|WRITE for a write; a write to a range mapped
 *   read-only upgrades it by re-sending SETUPMAPPING for the same range and
 *   slot with WRITE (the server replaces the mapping in place).
 * - Clipping accesses to the client's i_size: window reads and writes stop
 *   at i_size (kc_dax_read/kc_dax_write return the bytes done). Extending
 *   writes are not done through the window: the caller sends them as
 *   FUSE_WRITE.
 * - Reclaim of least-recently-used ranges when free slots run low: a
 *   background reclaimer keeps a few slots free, and an access that finds
 *   none reclaims one inline; ranges in use by an access are never taken.
 * - REMOVEMAPPING in batches of up to 256 entries (reclaim, explicit
 *   removal of random slots, eviction of an inode).
 * - Break-layout before truncate/punch/zero/collapse: each inode has an
 *   rwlock (the kernel's i_mmap/invalidate lock). Window accesses hold it
 *   shared; the caller takes it exclusive around an extent change, which so
 *   waits for the client's own in-flight window accesses on that inode. As
 *   in the real kernel, no REMOVEMAPPING is sent on truncate or punch: the
 *   server owns the safety of the window across them. After an extent
 *   change the caller updates i_size (kc_inode.size) from the reply.
 *
 * Beyond the client, it also plays the VMM that owns the window: it may
 * read a whole mapped range at any moment, regardless of the guest's locks
 * and i_size (kc_dax_vmm_scan). A window page that shows a file page
 * beyond the file's end is a SIGBUS in the VMM, so such a read must never
 * fail while the range is mapped, even in the middle of a truncate. The
 * one exception is a host process shrinking the file behind the server's
 * back: until the server learns of it, the pages beyond the new end fault
 * (doc/dax.md, "What remains"), so the VMM leaves a file alone while its
 * caller holds kc_inode.host_lock exclusive for such a change.
 *
 * What it does NOT model: page tables and page faults (an access is one
 * process_vm_readv/writev on the server's window, as a VMM would reach
 * guest memory; a page that would fault makes it fail with EFAULT, the
 * "would-be SIGBUS"), the page cache and writeback (there is none under
 * DAX), the per-inode interval tree (a flat array per inode), the kernel's
 * busy-page waits for DMA, inline reclaim limited to the faulting inode,
 * FUSE_HAS_INODE_DAX and per-inode DAX mode, mmap of files by user
 * processes, and interrupts (FUSE_INTERRUPT).
 */
#ifndef KCLIENT_DAX_H_
#define KCLIENT_DAX_H_

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "kclient.h"

/* One file as the client sees it. */
struct kc_inode {
	uint64_t nodeid;
	uint64_t fh;
	/* The invalidate lock: window accesses shared, extent changes exclusive. */
	pthread_rwlock_t lock;
	/* i_size: read under lock (shared), changed under lock (exclusive). */
	uint64_t size;
	unsigned nranges;	/* 2 MiB ranges the file may ever have */
	int *range_slot;	/* per range: its slot or -1; kc_dax.lock */
	/*
	 * Held exclusive by the caller while another host process shrinks the
	 * file, until the server has clipped the window: the VMM reads none
	 * of the file's ranges meanwhile (kc_dax_vmm_scan tries it shared).
	 */
	pthread_rwlock_t host_lock;
};

enum kc_slot_state {
	KC_SLOT_FREE,
	KC_SLOT_BUSY,	/* a SETUPMAPPING or REMOVEMAPPING is in flight */
	KC_SLOT_MAPPED,
};

struct kc_slot {
	enum kc_slot_state state;
	struct kc_inode *in;	/* the inode it maps (MAPPED, BUSY) */
	uint64_t range;		/* file range index */
	int writable;		/* mapped READ|WRITE */
	unsigned refs;		/* window accesses in flight */
	uint64_t last_use;	/* for LRU reclaim */
};

struct kc_dax_stats {
	uint64_t setups, upgrades, remove_requests, removed_ranges;
	uint64_t reclaimed, inline_reclaims, slot_waits, faults, errors;
	/* REMOVEMAPPING: most entries in one request; requests of exactly 256. */
	uint64_t remove_largest, remove_full;
};

struct kc_dax {
	struct kc_conn *c;
	unsigned nslots;
	struct kc_slot *slots;
	pthread_mutex_t lock;	/* slots, nfree, inodes' range_slot, stats */
	pthread_cond_t cond;	/* a slot changed state or refs */
	pthread_cond_t reclaim_cond;
	unsigned nfree;
	uint64_t tick;
	unsigned low_water;	/* the reclaimer keeps this many slots free */
	unsigned batch;		/* ... reclaiming up to this many at a time */
	int stop;
	pthread_t reclaimer;
	struct kc_dax_stats st;
};

/* Use the connection's window (kc_wait_window first): size / 2 MiB slots. */
int kc_dax_init(struct kc_dax *d, struct kc_conn *c);

/* Stop the background reclaimer (the slots' mappings stay). */
void kc_dax_stop(struct kc_dax *d);

/* Set up in for a file of size bytes that may grow to max_size. */
int kc_inode_init(struct kc_inode *in, uint64_t nodeid, uint64_t fh,
		  uint64_t size, uint64_t max_size);

/*
 * Read or write [off, off + len) of in through the window, clipped to
 * in->size, mapping ranges as needed. The caller holds in->lock (shared or
 * exclusive). Returns the bytes done (0 at or past i_size), -EFAULT if a
 * window page could not be touched (the access would have faulted; it is
 * counted and described on stderr), or the errno of a failed SETUPMAPPING.
 */
ssize_t kc_dax_read(struct kc_dax *d, struct kc_inode *in, uint64_t off,
		    void *buf, size_t len);
ssize_t kc_dax_write(struct kc_dax *d, struct kc_inode *in, uint64_t off,
		     const void *buf, size_t len);

/* Reclaim up to n least-recently-used idle ranges in one REMOVEMAPPING. */
int kc_dax_reclaim(struct kc_dax *d, unsigned n);

/*
 * REMOVEMAPPING of up to n randomly chosen slots in one request (only idle
 * mapped ones: the Linux client never removes a range it did not map);
 * *seed is the caller's random state. Returns the number removed or a
 * negative errno.
 */
int kc_dax_remove_random(struct kc_dax *d, unsigned n, uint64_t *seed);

/*
 * As the VMM: read every byte of up to n random mapped slots (each pinned
 * against removal while it is read, but with no inode lock; a slot whose
 * inode's host_lock is held exclusive is skipped). Returns the number of
 * slots read, or -EFAULT if a page could not be read (counted and
 * described on stderr as a fault).
 */
int kc_dax_vmm_scan(struct kc_dax *d, unsigned n, uint64_t *seed);

/* Remove every range of in, as on inode eviction (in requests of at most
 * 256 entries). Caller holds in->lock exclusive. Returns the number removed
 * or a negative errno (the first failed request's). */
int kc_dax_evict_inode(struct kc_dax *d, struct kc_inode *in);

#endif /* KCLIENT_DAX_H_ */
