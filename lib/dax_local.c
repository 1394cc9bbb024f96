/*
 * The local DAX window backend: the window is a PROT_NONE reservation in
 * this process that file ranges are mmap()ed over, plus the optional SIGBUS
 * handler that turns pages beyond a shrunk file's end into zero pages.
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dax_window.h"

/*
 * The registry of ZERO_FAULTS windows, the one piece of process-global
 * state in the DAX code. It exists because a signal handler gets nothing
 * but the faulting address: it must find the window from that alone. It is
 * a fixed array of slots that are never freed, accessed only with lock-free
 * atomics, so the handler never takes a mutex, never calls malloc and never
 * reads freed memory, whatever thread it interrupts.
 *
 * Each slot has a spin lock taken by the backend around every change of the
 * window's memory and by the handler around its fix-up, so the handler never
 * replaces a page that a concurrent map has just made valid. The lock holder
 * never touches window memory, so the handler cannot interrupt its own
 * thread's holder.
 */
#define DAX_FAULT_SLOTS 64

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic int must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "atomic u64 must be lock-free");

enum { SLOT_FREE, SLOT_BUSY, SLOT_ACTIVE };

struct dax_fault_slot {
	atomic_int state;
	atomic_int lock;
	_Atomic uint64_t base;
	_Atomic uint64_t size;
	_Atomic uint64_t faults;
	/* Written before state becomes ACTIVE, read under lock only. */
	uint64_t page;
	/* Per window page: the prot of a file page, 0 for anything else. */
	unsigned char *pages;
};

static struct dax_fault_slot dax_fault_slots[DAX_FAULT_SLOTS];
static struct sigaction dax_prev_sigbus;
static pthread_once_t dax_sigbus_once = PTHREAD_ONCE_INIT;
static int dax_sigbus_err;

struct dax_local {
	char *base;
	uint64_t size;
	uint64_t page;
	struct dax_fault_slot *slot; /* NULL without ZERO_FAULTS */
};

static void slot_lock(struct dax_fault_slot *s)
{
	while (atomic_exchange_explicit(&s->lock, 1, memory_order_acquire))
		;
}

static void slot_unlock(struct dax_fault_slot *s)
{
	atomic_store_explicit(&s->lock, 0, memory_order_release);
}

/* ---- the SIGBUS handler (async-signal-safe code only) ---- */

/* Can the page at addr be read now? A page beyond EOF cannot. */
static int page_readable(uint64_t addr)
{
	char byte;
	struct iovec local = { .iov_base = &byte, .iov_len = 1 };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr,
				.iov_len = 1 };

	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1;
}

/* What the handler makes of a fault in the window. */
enum { FAULT_NOT_OURS, FAULT_FIXED, FAULT_RETRY };

/*
 * Consecutive retries of one address by this thread (initial-exec TLS:
 * no allocation on first use, so safe in a signal handler).
 */
static __thread uint64_t dax_retry_addr __attribute__((tls_model("initial-exec")));
static __thread unsigned int dax_retry_count __attribute__((tls_model("initial-exec")));
#define DAX_MAX_RETRIES 3

/* With s locked: replace the faulting file page with a zero page. */
static int slot_zero_page(struct dax_fault_slot *s, uint64_t addr)
{
	uint64_t base = atomic_load(&s->base);
	uint64_t idx = (addr - base) / s->page;
	uint64_t page = base + idx * s->page;
	int prot = s->pages[idx];

	/*
	 * The page reads fine now: a remap, clip or revalidate replaced it
	 * between the fault and this lock, and the access will work when
	 * retried; or it is a write fault of a valid page (ENOSPC), which a
	 * retry repeats, so the caller bounds the retries.
	 */
	if (page_readable(page))
		return FAULT_RETRY;
	/* Not a file page of ours. */
	if (!prot)
		return FAULT_NOT_OURS;
	if (mmap((void *)(uintptr_t)page, s->page, prot,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return FAULT_NOT_OURS;
	s->pages[idx] = 0;
	atomic_fetch_add(&s->faults, 1);
	return FAULT_FIXED;
}

/* Whether to return and let the access run again. */
static int dax_retry_allowed(uint64_t addr)
{
	if (addr != dax_retry_addr) {
		dax_retry_addr = addr;
		dax_retry_count = 0;
	}
	return ++dax_retry_count <= DAX_MAX_RETRIES;
}

static int dax_fix_fault(uint64_t addr)
{
	for (int i = 0; i < DAX_FAULT_SLOTS; i++) {
		struct dax_fault_slot *s = &dax_fault_slots[i];
		int fixed = 0;

		if (atomic_load(&s->state) != SLOT_ACTIVE)
			continue;
		if (addr < atomic_load(&s->base) ||
		    addr - atomic_load(&s->base) >= atomic_load(&s->size))
			continue;
		slot_lock(s);
		if (atomic_load(&s->state) == SLOT_ACTIVE &&
		    addr >= atomic_load(&s->base) &&
		    addr - atomic_load(&s->base) < atomic_load(&s->size))
			fixed = slot_zero_page(s, addr);
		slot_unlock(s);
		if (fixed == FAULT_RETRY)
			return dax_retry_allowed(addr);
		if (fixed == FAULT_FIXED)
			dax_retry_addr = 0;
		return fixed == FAULT_FIXED;
	}
	return 0;
}

/* Not ours: do what would have happened without us. */
static void dax_chain_sigbus(int sig, siginfo_t *si, void *uctx)
{
	const struct sigaction *prev = &dax_prev_sigbus;
	struct sigaction dfl;

	if (prev->sa_flags & SA_SIGINFO) {
		prev->sa_sigaction(sig, si, uctx);
		return;
	}
	/*
	 * Ignoring a SIGBUS that a fault raised would run the faulting
	 * instruction again forever: the kernel kills in that case, so do we.
	 */
	if (prev->sa_handler == SIG_IGN && si->si_code <= 0)
		return;
	if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
		prev->sa_handler(sig);
		return;
	}
	/* Blocked while we run, so it is delivered, and kills, on return. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGBUS, &dfl, NULL);
	raise(SIGBUS);
}

static void dax_sigbus_handler(int sig, siginfo_t *si, void *uctx)
{
	int saved_errno = errno;

	/* si_code <= 0: sent by kill() and friends, si_addr means nothing. */
	if (si->si_code > 0 && dax_fix_fault((uint64_t)(uintptr_t)si->si_addr)) {
		errno = saved_errno;
		return;
	}
	errno = saved_errno;
	dax_chain_sigbus(sig, si, uctx);
}

static void dax_install_sigbus(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = dax_sigbus_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &dax_prev_sigbus) < 0) {
		dax_sigbus_err = -errno;
		dax_log(DAX_LOG_ERR,
			"DAX window: installing the SIGBUS handler failed: %s\n",
			strerror(errno));
	}
}

static struct dax_fault_slot *slot_claim(struct dax_local *l)
{
	for (int i = 0; i < DAX_FAULT_SLOTS; i++) {
		struct dax_fault_slot *s = &dax_fault_slots[i];
		int expect = SLOT_FREE;

		if (!atomic_compare_exchange_strong(&s->state, &expect,
						    SLOT_BUSY))
			continue;
		s->pages = calloc(l->size / l->page, 1);
		if (!s->pages) {
			atomic_store(&s->state, SLOT_FREE);
			return NULL;
		}
		s->page = l->page;
		atomic_store(&s->faults, 0);
		atomic_store(&s->base, (uint64_t)(uintptr_t)l->base);
		atomic_store(&s->size, l->size);
		atomic_store(&s->state, SLOT_ACTIVE);
		return s;
	}
	return NULL;
}

static void slot_release(struct dax_fault_slot *s)
{
	slot_lock(s);
	atomic_store(&s->state, SLOT_BUSY);
	atomic_store(&s->size, 0);
	atomic_store(&s->base, 0);
	slot_unlock(s);
	free(s->pages);
	s->pages = NULL;
	atomic_store(&s->state, SLOT_FREE);
}

/* Record what [moffset, +len) now shows, for the handler. */
static void slot_note(struct dax_fault_slot *s, uint64_t moffset,
		      uint64_t len, int file_prot)
{
	memset(s->pages + moffset / s->page, file_prot, len / s->page);
}

/* ---- the backend ops ---- */

/* mmap at a window offset, with the slot locked; returns 0 or -errno. */
static int local_mmap(struct dax_local *l, uint64_t moffset, uint64_t len,
		      int prot, int flags, int fd, uint64_t foffset,
		      int file_prot)
{
	void *addr = l->base + moffset;
	int err = 0;

	if (l->slot)
		slot_lock(l->slot);
	if (mmap(addr, len, prot, flags | MAP_FIXED, fd, (off_t)foffset) ==
	    MAP_FAILED) {
		err = -errno;
		file_prot = 0; /* what is there now is unknown: not ours */
	}
	if (l->slot) {
		slot_note(l->slot, moffset, len, file_prot);
		slot_unlock(l->slot);
	}
	return err;
}

static int local_map(void *backend, uint64_t moffset, uint64_t len, int fd,
		     uint64_t foffset, int prot)
{
	return local_mmap(backend, moffset, len, prot, MAP_SHARED, fd, foffset,
			  prot);
}

static int local_map_zero(void *backend, uint64_t moffset, uint64_t len,
			  int prot)
{
	return local_mmap(backend, moffset, len, prot,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, 0);
}

/* Back to the reservation: never munmap, or another mmap could land there. */
static int local_unmap(void *backend, uint64_t moffset, uint64_t len)
{
	return local_mmap(backend, moffset, len, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0,
			  0);
}

static void local_destroy(void *backend)
{
	struct dax_local *l = backend;

	if (l->slot)
		slot_release(l->slot);
	munmap(l->base, l->size);
	free(l);
}

static uint64_t local_fault_count(const void *backend)
{
	const struct dax_local *l = backend;

	return l->slot ? atomic_load(&l->slot->faults) : 0;
}

static const struct fuse_dax_backend_ops dax_local_ops = {
	.map = local_map,
	.map_zero = local_map_zero,
	.unmap = local_unmap,
	.destroy = local_destroy,
};

static int local_enable_zero_faults(struct dax_local *l)
{
	pthread_once(&dax_sigbus_once, dax_install_sigbus);
	if (dax_sigbus_err)
		return dax_sigbus_err;
	l->slot = slot_claim(l);
	if (!l->slot) {
		dax_log(DAX_LOG_ERR,
			"DAX window: cannot watch for SIGBUS: %d windows with FUSE_DAX_WINDOW_ZERO_FAULTS exist already, or no memory\n",
			DAX_FAULT_SLOTS);
		return -ENOSPC;
	}
	return 0;
}

int fuse_dax_window_new_local(uint64_t size, unsigned flags,
			      struct fuse_dax_window **out)
{
	uint64_t page = dax_page_size();
	struct dax_local *l;
	int err;

	if (!out || (flags & ~FUSE_DAX_WINDOW_ZERO_FAULTS))
		return -EINVAL;
	if (size == 0 || size % page || (uint64_t)(size_t)size != size)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->size = size;
	l->page = page;
	l->base = mmap(NULL, size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (l->base == MAP_FAILED) {
		err = -errno;
		dax_log(DAX_LOG_ERR,
			"DAX window: reserving %llu bytes of address space failed: %s\n",
			(unsigned long long)size, strerror(-err));
		goto out_free;
	}
	if (flags & FUSE_DAX_WINDOW_ZERO_FAULTS) {
		err = local_enable_zero_faults(l);
		if (err)
			goto out_unmap;
	}
	err = fuse_dax_window_new(size, page, &dax_local_ops, l, out);
	if (err)
		goto out_release;
	dax_window_set_local(*out, l->base, local_fault_count);
	dax_log(DAX_LOG_INFO, "DAX window: local, %llu bytes at %p\n",
		(unsigned long long)size, (void *)l->base);
	return 0;

out_release:
	if (l->slot)
		slot_release(l->slot);
out_unmap:
	munmap(l->base, size);
out_free:
	free(l);
	return err;
}
