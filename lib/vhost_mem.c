/*
 * Guest memory of a vhost-user device (see vhost_mem.h): SET_MEM_TABLE
 * regions mapped and checked, counted tables, and the SIGBUS guard around
 * every access to them.
 */
#include "vhost_mem.h"

#include "fuse_log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Tables.
 */

struct vu_region_msg {
	uint64_t gpa, size, uva, mmap_offset;
};

static int region_check(unsigned int i, const struct vu_region_msg *r, int fd)
{
	struct stat st;

	if (r->size == 0 || r->gpa + r->size < r->gpa || r->uva + r->size < r->uva ||
	    r->mmap_offset + r->size < r->mmap_offset) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: memory region %u (guest address 0x%llx, "
			 "%llu bytes, file offset %llu) is empty or wraps around: table refused\n",
			 i, (unsigned long long)r->gpa, (unsigned long long)r->size,
			 (unsigned long long)r->mmap_offset);
		return -EINVAL;
	}
	if (fstat(fd, &st) != 0) {
		int err = -errno;

		fuse_log(FUSE_LOG_ERR, "vhost-user: memory region %u: fstat of its descriptor: %s\n",
			 i, strerror(errno));
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: memory region %u is not backed by a file "
			 "(memfd, tmpfs or hugetlbfs): table refused\n", i);
		return -EINVAL;
	}
	/* Touching a page beyond the end of the file is a SIGBUS. */
	if (r->mmap_offset + r->size > (uint64_t)st.st_size) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: memory region %u (guest address 0x%llx, "
			 "%llu bytes at file offset %llu) runs past the end of its file "
			 "(%lld bytes): table refused\n", i, (unsigned long long)r->gpa,
			 (unsigned long long)r->size, (unsigned long long)r->mmap_offset,
			 (long long)st.st_size);
		return -EINVAL;
	}
	return 0;
}

static void mem_free(struct vu_mem *mem)
{
	for (unsigned int i = 0; i < mem->m.nregions; i++)
		munmap(mem->map_base[i], mem->map_len[i]);
	free(mem);
}

int vu_mem_empty(struct vu_mem **out)
{
	struct vu_mem *mem = calloc(1, sizeof(*mem));

	if (!mem)
		return -ENOMEM;
	atomic_init(&mem->refs, 1);
	*out = mem;
	return 0;
}

int vu_mem_new(const uint8_t *payload, uint32_t size, const int *fds, int nfds,
	       struct vu_mem **out)
{
	long pagesz = sysconf(_SC_PAGESIZE);
	uint64_t page = pagesz > 0 ? (uint64_t)pagesz : 4096;
	struct vu_mem *mem;
	uint32_t n;
	int err;

	if (size < 8)
		return -EINVAL;
	memcpy(&n, payload, sizeof(n));
	if (n > VIRTQ_MAX_REGIONS || size < 8 + sizeof(struct vu_region_msg) * n) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: memory table of %u regions in %u bytes: "
			 "refused (at most %d regions)\n", n, size, VIRTQ_MAX_REGIONS);
		return -EINVAL;
	}
	if ((int)n != nfds) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: memory table of %u regions came with %d "
			 "descriptors: refused\n", n, nfds);
		return -EINVAL;
	}
	err = vu_mem_empty(&mem);
	if (err)
		return err;
	for (uint32_t i = 0; i < n; i++) {
		struct vu_region_msg r;
		uint64_t start, skip;
		void *base;

		memcpy(&r, payload + 8 + sizeof(r) * i, sizeof(r));
		err = region_check(i, &r, fds[i]);
		if (err)
			goto out_free;
		start = r.mmap_offset & ~(page - 1);
		skip = r.mmap_offset - start;
		base = mmap(NULL, r.size + skip, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			    fds[i], (off_t)start);
		if (base == MAP_FAILED) {
			err = -errno;
			fuse_log(FUSE_LOG_ERR, "vhost-user: cannot map guest memory region %u "
				 "(%llu bytes): %s\n", i, (unsigned long long)r.size, strerror(errno));
			goto out_free;
		}
		mem->map_base[i] = base;
		mem->map_len[i] = r.size + skip;
		mem->m.r[i].gpa = r.gpa;
		mem->m.r[i].size = r.size;
		mem->m.r[i].uva = r.uva;
		mem->m.r[i].host = (uint8_t *)base + skip;
		mem->m.nregions = i + 1;
	}
	*out = mem;
	return 0;

out_free:
	mem_free(mem);
	return err;
}

struct vu_mem *vu_mem_get(struct vu_mem *mem)
{
	atomic_fetch_add(&mem->refs, 1);
	return mem;
}

void vu_mem_put(struct vu_mem *mem)
{
	if (mem && atomic_fetch_sub(&mem->refs, 1) == 1)
		mem_free(mem);
}

/* ------------------------------------------------------------------------
 * The SIGBUS guard (the handler runs async-signal-safe code only).
 */

/* Initial-exec TLS: no allocation on first use, so a handler may read it. */
static __thread struct vu_guard *vu_guard_cur __attribute__((tls_model("initial-exec")));
static __thread bool vu_sigbus_open __attribute__((tls_model("initial-exec")));
static struct sigaction vu_prev_sigbus;
static pthread_once_t vu_guard_once = PTHREAD_ONCE_INIT;
static int vu_guard_err;

static bool mem_contains(const struct vu_mem *mem, uintptr_t addr)
{
	if (!mem)
		return false;
	for (unsigned int i = 0; i < mem->m.nregions; i++) {
		uintptr_t base = (uintptr_t)mem->map_base[i];

		if (addr >= base && addr - base < mem->map_len[i])
			return true;
	}
	return false;
}

/* Not ours: do what would have happened without this handler. */
static void vu_chain_sigbus(int sig, siginfo_t *si, void *uctx)
{
	const struct sigaction *prev = &vu_prev_sigbus;
	struct sigaction dfl;

	if (prev->sa_flags & SA_SIGINFO) {
		prev->sa_sigaction(sig, si, uctx);
		return;
	}
	/* An ignored fault would repeat forever; the kernel kills then, so do we. */
	if (prev->sa_handler == SIG_IGN && si->si_code <= 0)
		return;
	if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
		prev->sa_handler(sig);
		return;
	}
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGBUS, &dfl, NULL);
	raise(SIGBUS); /* blocked while we run: delivered, and kills, on return */
}

static void vu_sigbus_handler(int sig, siginfo_t *si, void *uctx)
{
	struct vu_guard *g = vu_guard_cur;
	uintptr_t addr = (uintptr_t)si->si_addr;

	/* si_code <= 0: sent by kill() and friends, si_addr means nothing. */
	if (g && si->si_code > 0 && (mem_contains(g->mem[0], addr) || mem_contains(g->mem[1], addr))) {
		sigset_t bus;

		vu_guard_cur = g->prev;
		/* The jump skips the return that would unblock it. */
		sigemptyset(&bus);
		sigaddset(&bus, SIGBUS);
		pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
		siglongjmp(g->jb, 1);
	}
	vu_chain_sigbus(sig, si, uctx);
}

static void vu_guard_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = vu_sigbus_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &vu_prev_sigbus) != 0) {
		vu_guard_err = -errno;
		fuse_log(FUSE_LOG_ERR, "vhost-user: installing the SIGBUS handler for guest "
			 "memory failed: %s\n", strerror(errno));
	}
}

int vu_guard_install(void)
{
	pthread_once(&vu_guard_once, vu_guard_setup);
	return vu_guard_err;
}

void vu_guard_arm(struct vu_guard *g, const struct vu_mem *a, const struct vu_mem *b)
{
	if (!vu_sigbus_open) {
		sigset_t bus;

		sigemptyset(&bus);
		sigaddset(&bus, SIGBUS);
		pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
		vu_sigbus_open = true;
	}
	g->mem[0] = a;
	g->mem[1] = b;
	g->prev = vu_guard_cur;
	/* The handler must see a complete guard. */
	atomic_signal_fence(memory_order_seq_cst);
	vu_guard_cur = g;
	atomic_signal_fence(memory_order_seq_cst);
}

void vu_guard_disarm(struct vu_guard *g)
{
	atomic_signal_fence(memory_order_seq_cst);
	vu_guard_cur = g->prev;
	atomic_signal_fence(memory_order_seq_cst);
}
