/*
 * Unit test of the DAX window (lib/dax_window.c, lib/dax_local.c): real
 * files in a temporary directory mapped into local windows, plus a fake
 * remote backend. Exit 0 on pass; every failure is printed.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dax_window.h"
#include "fuse_dax.h"

static atomic_int failures;
static atomic_int checks;
static uint64_t P; /* page size */
static char tmpdir[256];

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		atomic_fetch_add(&checks, 1);                             \
		if (!(cond)) {                                            \
			printf("FAIL %s:%d: %s: ", __func__, __LINE__,    \
			       #cond);                                    \
			printf(__VA_ARGS__);                              \
			printf("\n");                                     \
			fflush(stdout);                                   \
			atomic_fetch_add(&failures, 1);                   \
		}                                                         \
	} while (0)

#define CHECK_EQ(a, b)                                                    \
	CHECK((long long)(a) == (long long)(b), "%lld != %lld",           \
	      (long long)(a), (long long)(b))

/* ---- files ---- */

static unsigned char pattern(int id, uint64_t off)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull + (uint64_t)id * 0x2545f491ull;

	return (unsigned char)(x >> 56) | 1; /* never 0: zeros stand out */
}

static int make_file(const char *name, int id, uint64_t size, int flags)
{
	char path[512];
	unsigned char *buf = malloc(size ? size : 1);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	for (uint64_t i = 0; i < size; i++)
		buf[i] = pattern(id, i);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || pwrite(fd, buf, size, 0) != (ssize_t)size) {
		printf("FAIL: creating %s: %s\n", path, strerror(errno));
		exit(1);
	}
	free(buf);
	if (flags != O_RDWR) {
		close(fd);
		fd = open(path, flags);
	}
	return fd;
}

static void rewrite_file(int fd, int id, uint64_t size)
{
	unsigned char *buf = malloc(size);

	for (uint64_t i = 0; i < size; i++)
		buf[i] = pattern(id, i);
	if (ftruncate(fd, (off_t)size) < 0 || pwrite(fd, buf, size, 0) != (ssize_t)size)
		printf("FAIL: rewriting a file: %s\n", strerror(errno));
	free(buf);
}

/* ---- reading the window without dying ---- */

/* Copy window bytes; -EFAULT if a page is inaccessible or beyond EOF. */
static int window_read(const void *addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)addr, .iov_len = len };
	ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);

	if (n == (ssize_t)len)
		return 0;
	return n < 0 ? -errno : -EFAULT;
}

/*
 * Does window [moff, +len) show file id (of size bytes) from foffset for
 * file_len bytes (zeros past EOF), then zeros? Returns 1 if so.
 */
static int shows(struct fuse_dax_window *w, uint64_t moff, uint64_t len,
		 int id, uint64_t size, uint64_t foffset, uint64_t file_len)
{
	unsigned char *buf = malloc(len);
	char *base = fuse_dax_window_base(w);
	int ok = 1;

	if (window_read(base + moff, buf, len) < 0) {
		printf("  window [%llu, +%llu) is not readable\n",
		       (unsigned long long)moff, (unsigned long long)len);
		free(buf);
		return 0;
	}
	for (uint64_t i = 0; i < len && ok; i++) {
		uint64_t off = foffset + i;
		unsigned char want = 0;

		if (i < file_len && off < size)
			want = pattern(id, off);
		if (buf[i] != want) {
			printf("  window byte %llu: got %u want %u\n",
			       (unsigned long long)moff + i, buf[i], want);
			ok = 0;
		}
	}
	free(buf);
	return ok;
}

/* Run fn in a child; return the signal that killed it, 0 if it exited 0. */
static int child_signal(void (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	if (WIFSIGNALED(status))
		return WTERMSIG(status);
	return WEXITSTATUS(status) ? -WEXITSTATUS(status) : 0;
}

static void touch_read(void *addr)
{
	(void)*(volatile char *)addr;
}

static void touch_write(void *addr)
{
	*(volatile char *)addr = 1;
}

static struct fuse_dax_window *new_window(uint64_t pages, unsigned flags)
{
	struct fuse_dax_window *w = NULL;
	int err = fuse_dax_window_new_local(pages * P, flags, &w);

	if (err) {
		printf("FAIL: fuse_dax_window_new_local: %s\n", strerror(-err));
		exit(1);
	}
	return w;
}

/* ---- tests ---- */

static void test_data_both_ways(void)
{
	struct fuse_dax_window *w = new_window(64, 0);
	char *base = fuse_dax_window_base(w);
	int fd = make_file("both", 1, 8 * P, O_RDWR);
	struct fuse_dax_mapping m;
	char buf[8];

	CHECK_EQ(fuse_dax_window_size(w), 64 * P);
	CHECK_EQ(fuse_dax_window_alignment(w), P);
	CHECK(base != NULL, "local window has no base");
	CHECK_EQ(fuse_dax_window_map(w, 4 * P, 8 * P, fd, 10, 0,
				     PROT_READ | PROT_WRITE), 0);
	CHECK(shows(w, 4 * P, 8 * P, 1, 8 * P, 0, 8 * P), "file data");

	memcpy(base + 4 * P + 100, "hello", 5);
	CHECK_EQ(pread(fd, buf, 5, 100), 5);
	CHECK(memcmp(buf, "hello", 5) == 0, "window write not in the file");
	CHECK_EQ(pwrite(fd, "world", 5, 3 * P + 5), 5);
	CHECK(memcmp(base + 7 * P + 5, "world", 5) == 0,
	      "file write not in the window");

	CHECK_EQ(fuse_dax_window_lookup(w, 6 * P + 17, &m), 0);
	CHECK(m.moffset == 4 * P && m.len == 8 * P && m.ino == 10 &&
	      m.foffset == 0 && m.prot == (PROT_READ | PROT_WRITE) &&
	      m.file_len == 8 * P, "lookup snapshot wrong");

	/* The window holds its own descriptor. */
	close(fd);
	CHECK(memcmp(base + 7 * P + 5, "world", 5) == 0, "after close");
	CHECK_EQ(fuse_dax_window_revalidate(w, 10, 8 * P), 0);
	fuse_dax_window_destroy(w);
}

static void test_unmap_leaves_reservation(void)
{
	struct fuse_dax_window *w = new_window(64, 0);
	char *base = fuse_dax_window_base(w);
	int fd = make_file("unmap", 2, 8 * P, O_RDWR);
	struct fuse_dax_mapping m;
	char c;
	void *p;

	CHECK_EQ(fuse_dax_window_map(w, 4 * P, 8 * P, fd, 20, 0, PROT_READ), 0);
	CHECK_EQ(child_signal(touch_read, base + 4 * P), 0);
	CHECK_EQ(fuse_dax_window_unmap(w, 4 * P, 8 * P), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 4 * P, &m), -ENOENT);
	CHECK_EQ(fuse_dax_window_unmap(w, 4 * P, 8 * P), -ENOENT);
	CHECK_EQ(window_read(base + 4 * P, &c, 1), -EFAULT);
	CHECK_EQ(child_signal(touch_read, base + 4 * P), SIGSEGV);
	CHECK_EQ(child_signal(touch_read, base + 11 * P), SIGSEGV);
	/* Still reserved: nothing else can be placed there. */
	p = mmap(base + 4 * P, P, PROT_READ,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(p == MAP_FAILED && errno == EEXIST,
	      "the unmapped range is a hole (mmap gave %p)", p);
	if (p != MAP_FAILED)
		munmap(p, P);
	close(fd);
	fuse_dax_window_destroy(w);
}

static void test_past_eof_reads_zeros(void)
{
	struct fuse_dax_window *w = new_window(16, 0);
	char *base = fuse_dax_window_base(w);
	uint64_t size = P + P / 2;
	int fd = make_file("eof", 3, size, O_RDWR);
	struct fuse_dax_mapping m;
	struct stat st;

	CHECK_EQ(fuse_dax_window_map(w, 0, 4 * P, fd, 30, 0,
				     PROT_READ | PROT_WRITE), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, &m), 0);
	CHECK_EQ(m.file_len, 2 * P);
	CHECK(shows(w, 0, 4 * P, 3, size, 0, 2 * P), "past EOF");
	CHECK_EQ(child_signal(touch_read, base + 3 * P + 9), 0);
	CHECK_EQ(child_signal(touch_write, base + 2 * P), 0);
	base[3 * P] = 7; /* private zero page: reaches no file */
	CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size == size,
	      "file size changed");

	/* A mapping wholly beyond EOF is all zero pages. */
	CHECK_EQ(fuse_dax_window_map(w, 8 * P, 2 * P, fd, 30, 4 * P,
				     PROT_READ), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 9 * P, &m), 0);
	CHECK_EQ(m.file_len, 0);
	CHECK(shows(w, 8 * P, 2 * P, 3, size, 4 * P, 0), "beyond EOF");
	close(fd);
	fuse_dax_window_destroy(w);
}

static void test_clip_and_revalidate(void)
{
	struct fuse_dax_window *w = new_window(16, 0);
	char *base = fuse_dax_window_base(w);
	int fd = make_file("clip", 4, 4 * P, O_RDWR);
	uint64_t small = P + 100;
	struct fuse_dax_mapping m;
	char c;

	CHECK_EQ(fuse_dax_window_map(w, 8 * P, 4 * P, fd, 40, 0,
				     PROT_READ | PROT_WRITE), 0);
	/* Ordering contract: clip, then shrink the file. */
	CHECK_EQ(fuse_dax_window_clip(w, 40, small), 1);
	CHECK_EQ(fuse_dax_window_clip(w, 40, small), 0);
	CHECK_EQ(fuse_dax_window_clip(w, 41, 0), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 8 * P, &m), 0);
	CHECK_EQ(m.file_len, 2 * P);
	CHECK_EQ(ftruncate(fd, small), 0);
	CHECK(shows(w, 8 * P, 4 * P, 4, small, 0, 2 * P), "after truncate");
	CHECK_EQ(child_signal(touch_read, base + 11 * P), 0);

	/* Without a clip, the page past EOF would fault: prove the test can fail. */
	CHECK_EQ(fuse_dax_window_map(w, 0, 2 * P, fd, 40, 0, PROT_READ), 0);
	CHECK_EQ(ftruncate(fd, 0), 0);
	CHECK_EQ(window_read(base + P, &c, 1), -EFAULT);
	CHECK_EQ(fuse_dax_window_clip(w, 40, 0), 2);
	CHECK_EQ(window_read(base + P, &c, 1), 0);

	/* Extend, then revalidate: the new bytes show. */
	rewrite_file(fd, 5, 4 * P);
	CHECK_EQ(fuse_dax_window_revalidate(w, 40, 4 * P), 2);
	CHECK_EQ(fuse_dax_window_lookup(w, 8 * P, &m), 0);
	CHECK_EQ(m.file_len, 4 * P);
	CHECK(shows(w, 8 * P, 4 * P, 5, 4 * P, 0, 4 * P), "after extend");
	CHECK(shows(w, 0, 2 * P, 5, 4 * P, 0, 2 * P), "after extend");
	base[11 * P + 1] = 'x';
	CHECK(pread(fd, &c, 1, 3 * P + 1) == 1 && c == 'x',
	      "write after revalidate not in the file");
	/* A size beyond the real file is not trusted. */
	CHECK_EQ(fuse_dax_window_revalidate(w, 40, 100 * P), 0);
	/* revalidate to a smaller size clips too. */
	CHECK_EQ(fuse_dax_window_revalidate(w, 40, 3 * P), 1);
	CHECK_EQ(fuse_dax_window_lookup(w, 8 * P, &m), 0);
	CHECK_EQ(m.file_len, 3 * P);
	close(fd);
	fuse_dax_window_destroy(w);
}

static sigjmp_buf own_handler_jmp;

static void own_sigbus(int sig)
{
	(void)sig;
	siglongjmp(own_handler_jmp, 1);
}

/*
 * In a child, before any ZERO_FAULTS window exists in this process: a
 * handler installed before ours still gets the SIGBUS that is not ours.
 */
static void chain_child(void *unused)
{
	struct fuse_dax_window *plain, *zf;
	int fd1, fd2;

	(void)unused;
	signal(SIGBUS, own_sigbus);
	plain = new_window(8, 0);
	zf = new_window(8, FUSE_DAX_WINDOW_ZERO_FAULTS);
	fd1 = make_file("chain1", 6, 4 * P, O_RDWR);
	fd2 = make_file("chain2", 6, 4 * P, O_RDWR);
	if (fuse_dax_window_map(plain, 0, 4 * P, fd1, 1, 0, PROT_READ) ||
	    fuse_dax_window_map(zf, 0, 4 * P, fd2, 2, 0, PROT_READ))
		_exit(10);
	if (ftruncate(fd1, 0) || ftruncate(fd2, 0))
		_exit(11);
	if (sigsetjmp(own_handler_jmp, 1) == 0) {
		/* Ours: fixed silently, the old handler is not called. */
		if (*(volatile char *)((char *)fuse_dax_window_base(zf) + P))
			_exit(12);
		if (fuse_dax_window_fault_count(zf) != 1)
			_exit(13);
	} else {
		_exit(14);
	}
	if (sigsetjmp(own_handler_jmp, 1) == 0) {
		touch_read((char *)fuse_dax_window_base(plain) + P);
		_exit(15); /* not reached: the old handler jumps */
	}
	_exit(42);
}

static void raise_sigbus(void *unused)
{
	(void)unused;
	kill(getpid(), SIGBUS);
}

static void test_zero_faults(void)
{
	int st = child_signal(chain_child, NULL);
	struct fuse_dax_window *w, *plain;
	volatile char *base;
	int fd, fd2, fd3;

	CHECK(st == -42, "chaining to an earlier SIGBUS handler: child status %d", st);

	w = new_window(16, FUSE_DAX_WINDOW_ZERO_FAULTS);
	base = fuse_dax_window_base(w);
	fd = make_file("zf", 7, 4 * P, O_RDWR);
	CHECK_EQ(fuse_dax_window_map(w, 0, 4 * P, fd, 70, 0,
				     PROT_READ | PROT_WRITE), 0);
	CHECK_EQ(fuse_dax_window_fault_count(w), 0);
	/* Shrink behind the window's back: no clip. */
	CHECK_EQ(ftruncate(fd, P), 0);
	CHECK_EQ(base[2 * P], 0);
	CHECK_EQ(fuse_dax_window_fault_count(w), 1);
	CHECK_EQ(base[2 * P + 1], 0);
	CHECK_EQ(fuse_dax_window_fault_count(w), 1);
	CHECK_EQ(base[3 * P + 7], 0);
	CHECK_EQ(fuse_dax_window_fault_count(w), 2);
	base[3 * P + 8] = 3; /* the zero page keeps the mapping's prot */
	CHECK_EQ(base[3 * P + 8], 3);
	CHECK(shows(w, 0, P, 7, P, 0, P), "page before EOF");

	/* The same on a read-only mapping. */
	fd2 = make_file("zf2", 8, 2 * P, O_RDONLY);
	CHECK_EQ(fuse_dax_window_map(w, 8 * P, 2 * P, fd2, 71, 0, PROT_READ), 0);
	{
		int rw = make_file("zf2", 8, 2 * P, O_RDWR);

		CHECK_EQ(ftruncate(rw, 0), 0);
		close(rw);
	}
	CHECK_EQ(base[9 * P], 0);
	CHECK_EQ(fuse_dax_window_fault_count(w), 3);
	CHECK_EQ(child_signal(touch_write, (char *)base + 9 * P), SIGSEGV);
	/* Still a window with ZERO_FAULTS: unmapped pages give SIGSEGV. */
	CHECK_EQ(child_signal(touch_read, (char *)base + 12 * P), SIGSEGV);

	/* A window without the flag: the default action, with ours installed. */
	plain = new_window(8, 0);
	fd3 = make_file("zf3", 9, 4 * P, O_RDWR);
	CHECK_EQ(fuse_dax_window_map(plain, 0, 4 * P, fd3, 72, 0, PROT_READ), 0);
	CHECK_EQ(ftruncate(fd3, P), 0);
	CHECK_EQ(child_signal(touch_read, (char *)fuse_dax_window_base(plain) +
						  2 * P), SIGBUS);
	CHECK_EQ(fuse_dax_window_fault_count(plain), 0);
	/* and a SIGBUS sent by kill() is not mistaken for a fault */
	CHECK_EQ(child_signal(raise_sigbus, NULL), SIGBUS);
	CHECK_EQ(fuse_dax_window_fault_count(w), 3);
	close(fd3);
	fuse_dax_window_destroy(plain);

	close(fd);
	close(fd2);
	fuse_dax_window_destroy(w);
}

static void test_overlap_replaces(void)
{
	struct fuse_dax_window *w = new_window(32, 0);
	char *base = fuse_dax_window_base(w);
	int a = make_file("ova", 9, 8 * P, O_RDWR);
	int b = make_file("ovb", 10, 8 * P, O_RDWR);
	struct fuse_dax_mapping m[4];
	char c;

	/* read -> read/write upgrade in place */
	CHECK_EQ(fuse_dax_window_map(w, 0, 8 * P, a, 90, 0, PROT_READ), 0);
	CHECK_EQ(child_signal(touch_write, base + 5), SIGSEGV);
	CHECK_EQ(fuse_dax_window_map(w, 0, 8 * P, a, 90, 0,
				     PROT_READ | PROT_WRITE), 0);
	CHECK_EQ(fuse_dax_window_find(w, 90, 0, UINT64_MAX, m, 4), 1);
	CHECK_EQ(m[0].prot, PROT_READ | PROT_WRITE);
	base[5] = 'u';
	CHECK(pread(a, &c, 1, 5) == 1 && c == 'u', "write after upgrade");
	rewrite_file(a, 9, 8 * P);

	/* B inside A splits A in two; A's right piece keeps its file range. */
	CHECK_EQ(fuse_dax_window_map(w, 2 * P, 2 * P, b, 91, 0,
				     PROT_READ | PROT_WRITE), 0);
	CHECK_EQ(fuse_dax_window_find(w, 90, 0, UINT64_MAX, m, 4), 2);
	CHECK(m[0].moffset == 0 && m[0].len == 2 * P && m[0].foffset == 0,
	      "left piece %llu +%llu", (unsigned long long)m[0].moffset,
	      (unsigned long long)m[0].len);
	CHECK(m[1].moffset == 4 * P && m[1].len == 4 * P &&
	      m[1].foffset == 4 * P && m[1].file_len == 4 * P,
	      "right piece %llu +%llu @%llu", (unsigned long long)m[1].moffset,
	      (unsigned long long)m[1].len, (unsigned long long)m[1].foffset);
	CHECK_EQ(fuse_dax_window_lookup(w, 5 * P, &m[2]), 0);
	CHECK(m[2].ino == 90 && m[2].foffset == 4 * P, "lookup in right piece");
	CHECK(shows(w, 0, 2 * P, 9, 8 * P, 0, 2 * P), "A left");
	CHECK(shows(w, 2 * P, 2 * P, 10, 8 * P, 0, 2 * P), "B");
	CHECK(shows(w, 4 * P, 4 * P, 9, 8 * P, 4 * P, 4 * P), "A right");

	/* A mapping across three entries. */
	CHECK_EQ(fuse_dax_window_map(w, P, 6 * P, b, 92, 2 * P, PROT_READ), 0);
	CHECK_EQ(fuse_dax_window_find(w, 90, 0, UINT64_MAX, m, 4), 2);
	CHECK(m[0].moffset == 0 && m[0].len == P, "left");
	CHECK(m[1].moffset == 7 * P && m[1].len == P && m[1].foffset == 7 * P,
	      "right");
	CHECK_EQ(fuse_dax_window_find(w, 91, 0, UINT64_MAX, m, 4), 0);
	CHECK(shows(w, 0, P, 9, 8 * P, 0, P), "A left");
	CHECK(shows(w, P, 6 * P, 10, 8 * P, 2 * P, 6 * P), "B across");
	CHECK(shows(w, 7 * P, P, 9, 8 * P, 7 * P, P), "A right");

	/* Partial unmap splits too. */
	CHECK_EQ(fuse_dax_window_unmap(w, 3 * P, 2 * P), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 5 * P, &m[0]), 0);
	CHECK(m[0].ino == 92 && m[0].moffset == 5 * P &&
	      m[0].foffset == 6 * P && m[0].len == 2 * P, "piece after unmap");
	CHECK_EQ(window_read(base + 3 * P, &c, 1), -EFAULT);
	CHECK_EQ(window_read(base + 4 * P, &c, 1), -EFAULT);
	CHECK(shows(w, 5 * P, 2 * P, 10, 8 * P, 6 * P, 2 * P), "B after unmap");
	/* Unmapping a range that covers a gap and entries works. */
	CHECK_EQ(fuse_dax_window_unmap(w, 0, 16 * P), 0);
	CHECK_EQ(fuse_dax_window_find(w, 90, 0, UINT64_MAX, NULL, 0), 0);
	CHECK_EQ(fuse_dax_window_find(w, 92, 0, UINT64_MAX, NULL, 0), 0);
	CHECK_EQ(dax_window_check(w), 0);
	close(a);
	close(b);
	fuse_dax_window_destroy(w);
}

static void test_errors(void)
{
	const uint64_t top = UINT64_MAX & ~(P - 1);
	struct fuse_dax_window *w = new_window(16, 0), *x;
	int rw = make_file("err", 11, 4 * P, O_RDWR);
	int ro = make_file("err", 11, 4 * P, O_RDONLY);
	int wo = make_file("err", 11, 4 * P, O_WRONLY);
	int path = make_file("err", 11, 4 * P, O_PATH);
	int dir = open(tmpdir, O_RDONLY | O_DIRECTORY);
	const int RW = PROT_READ | PROT_WRITE;
	struct fuse_dax_backend_ops no_map = { 0 };
	struct fuse_dax_mapping m;

	CHECK_EQ(fuse_dax_window_map(w, 0, P, ro, 1, 0, RW), -EACCES);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, wo, 1, 0, PROT_READ), -EACCES);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, wo, 1, 0, RW), -EACCES);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, path, 1, 0, PROT_READ), -EBADF);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, dir, 1, 0, PROT_READ), -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, 999, 1, 0, PROT_READ), -EBADF);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, -1, 1, 0, PROT_READ), -EBADF);
	CHECK_EQ(fuse_dax_window_map(w, 0, 0, rw, 1, 0, PROT_READ), -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, P / 2, P, rw, 1, 0, PROT_READ), -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, 0, P + 1, rw, 1, 0, PROT_READ), -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, rw, 1, 1, PROT_READ), -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, rw, 1, 0, PROT_WRITE), -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, rw, 1, 0, 0), -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, rw, 1, 0, PROT_READ | PROT_EXEC),
		 -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, rw, 1, top, PROT_READ), -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, 16 * P, P, rw, 1, 0, PROT_READ), -ERANGE);
	CHECK_EQ(fuse_dax_window_map(w, 15 * P, 2 * P, rw, 1, 0, PROT_READ),
		 -ERANGE);
	CHECK_EQ(fuse_dax_window_map(w, top, P, rw, 1, 0, PROT_READ), -ERANGE);
	CHECK_EQ(fuse_dax_window_map(w, P, top, rw, 1, 0, PROT_READ), -ERANGE);
	CHECK_EQ(fuse_dax_window_unmap(w, 0, 0), -EINVAL);
	CHECK_EQ(fuse_dax_window_unmap(w, 1, P), -EINVAL);
	CHECK_EQ(fuse_dax_window_unmap(w, 16 * P, P), -ERANGE);
	CHECK_EQ(fuse_dax_window_unmap(w, P, top), -ERANGE);
	CHECK_EQ(fuse_dax_window_unmap(w, 0, 16 * P), -ENOENT);

	/* None of that touched the table; good calls still work. */
	CHECK_EQ(fuse_dax_window_find(w, 1, 0, UINT64_MAX, NULL, 0), 0);
	CHECK_EQ(fuse_dax_window_map(w, 0, P, ro, 1, 0, PROT_READ), 0);
	CHECK_EQ(fuse_dax_window_map(w, 15 * P, P, rw, 1, 0, RW), 0);
	CHECK_EQ(fuse_dax_window_map(w, 15 * P, P, ro, 1, 0, RW), -EACCES);
	CHECK_EQ(fuse_dax_window_lookup(w, 15 * P, &m), 0);
	CHECK_EQ(m.prot, RW);
	CHECK_EQ(fuse_dax_window_lookup(w, 16 * P, &m), -ENOENT);
	CHECK_EQ(fuse_dax_window_lookup(w, UINT64_MAX, &m), -ENOENT);

	CHECK_EQ(fuse_dax_window_new_local(0, 0, &x), -EINVAL);
	CHECK_EQ(fuse_dax_window_new_local(P + 1, 0, &x), -EINVAL);
	CHECK_EQ(fuse_dax_window_new_local(P, 2, &x), -EINVAL);
	CHECK_EQ(fuse_dax_window_new(P, 3, &no_map, NULL, &x), -EINVAL);
	CHECK_EQ(fuse_dax_window_new(4 * P, 2 * P, &no_map, NULL, &x), -EINVAL);

	close(rw);
	close(ro);
	close(wo);
	close(path);
	close(dir);
	fuse_dax_window_destroy(w);
}

static void test_lookup_find(void)
{
	struct fuse_dax_window *w = new_window(32, 0);
	int fd = make_file("find", 12, 16 * P, O_RDWR);
	struct fuse_dax_mapping m[8];

	CHECK_EQ(fuse_dax_window_map(w, 12 * P, 2 * P, fd, 70, 2 * P, PROT_READ), 0);
	CHECK_EQ(fuse_dax_window_map(w, 0, 2 * P, fd, 70, 0, PROT_READ), 0);
	CHECK_EQ(fuse_dax_window_map(w, 4 * P, 2 * P, fd, 70, 8 * P, PROT_READ), 0);
	CHECK_EQ(fuse_dax_window_map(w, 8 * P, 2 * P, fd, 71, 0, PROT_READ), 0);

	CHECK_EQ(fuse_dax_window_find(w, 70, 0, UINT64_MAX, m, 8), 3);
	CHECK(m[0].moffset == 0 && m[1].moffset == 4 * P &&
	      m[2].moffset == 12 * P, "not in window order");
	CHECK(m[2].foffset == 2 * P && m[2].ino == 70 && m[2].len == 2 * P,
	      "third match");
	CHECK_EQ(fuse_dax_window_find(w, 70, P, 2 * P, m, 8), 2);
	CHECK(m[0].foffset == 0 && m[1].foffset == 2 * P, "file range match");
	CHECK_EQ(fuse_dax_window_find(w, 70, 4 * P, 4 * P, m, 8), 0);
	CHECK_EQ(fuse_dax_window_find(w, 70, 8 * P, 1, m, 8), 1);
	CHECK_EQ(fuse_dax_window_find(w, 70, 9 * P + 5, UINT64_MAX, m, 8), 1);
	CHECK_EQ(fuse_dax_window_find(w, 70, 0, 0, m, 8), 0);
	CHECK_EQ(fuse_dax_window_find(w, 72, 0, UINT64_MAX, m, 8), 0);
	memset(m, 0xee, sizeof(m));
	CHECK_EQ(fuse_dax_window_find(w, 70, 0, UINT64_MAX, m, 1), 3);
	CHECK(m[0].moffset == 0 && m[1].moffset == 0xeeeeeeeeeeeeeeeeull,
	      "find wrote beyond max");

	CHECK_EQ(fuse_dax_window_lookup(w, 2 * P, m), -ENOENT);
	CHECK_EQ(fuse_dax_window_lookup(w, 13 * P + P - 1, m), 0);
	CHECK(m[0].ino == 70 && m[0].moffset == 12 * P, "lookup at a last byte");
	CHECK_EQ(fuse_dax_window_lookup(w, 9 * P, m), 0);
	CHECK_EQ(m[0].ino, 71);

	CHECK_EQ(fuse_dax_window_unmap_inode(w, 70), 3);
	CHECK_EQ(fuse_dax_window_unmap_inode(w, 70), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, m), -ENOENT);
	CHECK_EQ(fuse_dax_window_lookup(w, 9 * P, m), 0);
	CHECK_EQ(fuse_dax_window_unmap_all(w), 1);
	CHECK_EQ(fuse_dax_window_unmap_all(w), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 9 * P, m), -ENOENT);
	close(fd);
	fuse_dax_window_destroy(w);
}

/* ---- a fake remote backend ---- */

struct fake_call {
	char op;
	uint64_t moffset, len, foffset;
	int prot;
};

struct fake_backend {
	struct fake_call calls[32];
	int n;
	int fail_map; /* errno to fail map with */
	int destroyed;
};

static void fake_note(struct fake_backend *f, char op, uint64_t moffset,
		      uint64_t len, uint64_t foffset, int prot)
{
	if (f->n < 32)
		f->calls[f->n++] = (struct fake_call){ op, moffset, len, foffset,
						       prot };
}

static int fake_map(void *b, uint64_t moffset, uint64_t len, int fd,
		    uint64_t foffset, int prot)
{
	struct fake_backend *f = b;

	if (fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	fake_note(f, 'm', moffset, len, foffset, prot);
	return f->fail_map ? -f->fail_map : 0;
}

static int fake_map_zero(void *b, uint64_t moffset, uint64_t len, int prot)
{
	fake_note(b, 'z', moffset, len, 0, prot);
	return 0;
}

static int fake_unmap(void *b, uint64_t moffset, uint64_t len)
{
	fake_note(b, 'u', moffset, len, 0, 0);
	return 0;
}

static void fake_destroy(void *b)
{
	((struct fake_backend *)b)->destroyed = 1;
}

static const struct fuse_dax_backend_ops fake_ops = {
	.map = fake_map,
	.map_zero = fake_map_zero,
	.unmap = fake_unmap,
	.destroy = fake_destroy,
};

#define CHECK_CALL(c, o, m, l)                                            \
	CHECK((c).op == (o) && (c).moffset == (m) && (c).len == (l),       \
	      "call %c %llu +%llu", (c).op, (unsigned long long)(c).moffset, \
	      (unsigned long long)(c).len)

static void test_remote_backend(void)
{
	const uint64_t A = 2 << 20;
	struct fake_backend fb = { 0 };
	struct fuse_dax_window *w = NULL;
	int fd = make_file("remote", 13, P + 10, O_RDWR);
	struct fuse_dax_mapping m;

	CHECK_EQ(fuse_dax_window_new(4 * A, A, &fake_ops, &fb, &w), 0);
	if (!w)
		return;
	CHECK(fuse_dax_window_base(w) == NULL, "remote base is not NULL");
	CHECK_EQ(fuse_dax_window_alignment(w), A);
	CHECK_EQ(fuse_dax_window_fault_count(w), 0);
	CHECK_EQ(fuse_dax_window_map(w, P, A, fd, 1, 0, PROT_READ), -EINVAL);
	CHECK_EQ(fuse_dax_window_map(w, A, A, fd, 1, 0, PROT_READ), 0);
	CHECK_EQ(fb.n, 2);
	/* The file part ends at EOF rounded to a page, not to the alignment. */
	CHECK_CALL(fb.calls[0], 'm', A, 2 * P);
	CHECK_CALL(fb.calls[1], 'z', A + 2 * P, A - 2 * P);
	CHECK_EQ(fuse_dax_window_lookup(w, A, &m), 0);
	CHECK_EQ(m.file_len, 2 * P);

	fb.n = 0;
	CHECK_EQ(fuse_dax_window_unmap(w, A, A), 0);
	CHECK_EQ(fb.n, 1);
	CHECK_CALL(fb.calls[0], 'u', A, A);

	/*
	 * A failing backend of the window's own leaves the range as it was
	 * (the client may still be using it), and so does the table.
	 */
	CHECK_EQ(fuse_dax_window_map(w, 0, A, fd, 1, 0, PROT_READ), 0);
	fb.fail_map = EIO;
	fb.n = 0;
	CHECK_EQ(fuse_dax_window_map(w, 0, A, fd, 2, 0, PROT_READ), -EIO);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, &m), 0);
	CHECK_EQ(m.ino, 1);
	for (int i = 0; i < fb.n; i++)
		CHECK(fb.calls[i].op != 'u', "range unmapped after a failed change");
	fb.fail_map = 0;

	CHECK_EQ(fuse_dax_window_map(w, 3 * A, A, fd, 3, 0, PROT_READ), 0);
	fb.n = 0;
	fuse_dax_window_destroy(w);
	CHECK_EQ(fb.n, 2);
	CHECK_CALL(fb.calls[0], 'u', 0, A);
	CHECK_CALL(fb.calls[1], 'u', 3 * A, A);
	CHECK_EQ(fb.destroyed, 1);
	close(fd);
}

/* ---- read-only handles ---- */

/*
 * A read-only handle never yields a writable mapping: not when asked for
 * one, not for the zero pages past EOF, not after revalidate or clip
 * re-map the file from the window's own duplicate of the descriptor, and
 * a read-only mapping made from a read/write handle stays read-only too.
 */
static void test_readonly_never_writable(void)
{
	struct fuse_dax_window *w = new_window(32, 0);
	char *base = fuse_dax_window_base(w);
	uint64_t size = 2 * P + 100;
	int ro = make_file("ro", 14, size, O_RDONLY);
	int rw = make_file("ro", 14, size, O_RDWR);
	int rw2 = make_file("ro2", 15, P, O_RDWR);
	struct fuse_dax_mapping m;

	CHECK_EQ(fuse_dax_window_map(w, 0, 8 * P, ro, 140, 0, PROT_READ | PROT_WRITE),
		 -EACCES);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, &m), -ENOENT);
	CHECK_EQ(fuse_dax_window_map(w, 0, 8 * P, ro, 140, 0, PROT_READ), 0);
	CHECK(shows(w, 0, 8 * P, 14, size, 0, 3 * P), "read-only mapping");
	CHECK_EQ(child_signal(touch_write, base + P), SIGSEGV);
	CHECK_EQ(child_signal(touch_write, base + 2 * P + 200), SIGSEGV); /* EOF page */
	CHECK_EQ(child_signal(touch_write, base + 6 * P), SIGSEGV);	    /* zero page */
	/* An upgrade through the read-only handle is refused; nothing changes. */
	CHECK_EQ(fuse_dax_window_map(w, 0, 8 * P, ro, 140, 0, PROT_READ | PROT_WRITE),
		 -EACCES);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, &m), 0);
	CHECK_EQ(m.prot, PROT_READ);
	CHECK_EQ(child_signal(touch_write, base), SIGSEGV);

	/* The caller closes its handle; the file grows; revalidate re-maps
	 * from the window's duplicate, still read-only. */
	close(ro);
	rewrite_file(rw, 16, 6 * P);
	CHECK_EQ(fuse_dax_window_revalidate(w, 140, 6 * P), 1);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, &m), 0);
	CHECK(m.prot == PROT_READ && m.file_len == 6 * P, "after revalidate: prot %d file_len %llu",
	      m.prot, (unsigned long long)m.file_len);
	CHECK(shows(w, 0, 8 * P, 16, 6 * P, 0, 6 * P), "grown read-only mapping");
	CHECK_EQ(child_signal(touch_write, base + 5 * P), SIGSEGV);
	CHECK_EQ(child_signal(touch_write, base + 7 * P), SIGSEGV);
	/* clip turns file pages into zero pages of the same protection */
	CHECK_EQ(fuse_dax_window_clip(w, 140, P), 1);
	CHECK_EQ(child_signal(touch_write, base + 3 * P), SIGSEGV);
	CHECK_EQ(child_signal(touch_read, base + 3 * P), 0);

	/* PROT_READ from a read/write handle: revalidate does not upgrade it. */
	CHECK_EQ(fuse_dax_window_map(w, 16 * P, 4 * P, rw2, 141, 0, PROT_READ), 0);
	CHECK_EQ(child_signal(touch_write, base + 16 * P), SIGSEGV);
	rewrite_file(rw2, 17, 4 * P);
	CHECK_EQ(fuse_dax_window_revalidate(w, 141, 4 * P), 1);
	CHECK_EQ(fuse_dax_window_lookup(w, 16 * P, &m), 0);
	CHECK_EQ(m.prot, PROT_READ);
	CHECK_EQ(child_signal(touch_write, base + 19 * P), SIGSEGV);
	CHECK(shows(w, 16 * P, 4 * P, 17, 4 * P, 0, 4 * P), "grown rw-handle read mapping");
	CHECK_EQ(dax_window_check(w), 0);
	close(rw);
	close(rw2);
	fuse_dax_window_destroy(w);
}

/* ---- unmap with ZERO_FAULTS: a reservation, never zeros or another mapping ---- */

static void test_unmap_zero_faults_window(void)
{
	struct fuse_dax_window *w = new_window(16, FUSE_DAX_WINDOW_ZERO_FAULTS);
	char *base = fuse_dax_window_base(w);
	int fd = make_file("uzf", 18, 4 * P, O_RDWR);
	uint64_t faults;
	char c;
	void *p;

	CHECK_EQ(fuse_dax_window_map(w, 4 * P, 4 * P, fd, 180, 0, PROT_READ | PROT_WRITE), 0);
	faults = fuse_dax_window_fault_count(w);
	CHECK_EQ(fuse_dax_window_unmap(w, 5 * P, 2 * P), 0);
	/* The option turns SIGBUS past EOF into zeros; an unmapped range is
	 * not that: it stays inaccessible. */
	CHECK_EQ(child_signal(touch_read, base + 5 * P), SIGSEGV);
	CHECK_EQ(child_signal(touch_write, base + 6 * P + 8), SIGSEGV);
	CHECK_EQ(window_read(base + 5 * P, &c, 1), -EFAULT);
	CHECK_EQ(fuse_dax_window_fault_count(w), faults);
	CHECK(shows(w, 4 * P, P, 18, 4 * P, 0, P), "left piece after unmap");
	CHECK(shows(w, 7 * P, P, 18, 4 * P, 3 * P, P), "right piece after unmap");
	p = mmap(base + 5 * P, P, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(p == MAP_FAILED && errno == EEXIST,
	      "the unmapped range is a hole (mmap gave %p)", p);
	if (p != MAP_FAILED)
		munmap(p, P);
	/* Nothing the process maps later lands inside the window. */
	for (int i = 0; i < 16; i++) {
		char *q = mmap(NULL, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(q != MAP_FAILED, "mmap: %s", strerror(errno));
		if (q == MAP_FAILED)
			break;
		CHECK(q + P <= base || q >= base + 16 * P,
		      "a new mapping at %p landed inside the window %p", (void *)q,
		      (void *)base);
		munmap(q, P);
	}
	close(fd);
	fuse_dax_window_destroy(w);
}

/* ---- overlapping setup replaces atomically ---- */

#define SWAP_PAGES 4
#define SWAP_ROUNDS 3000

struct swap_reader {
	const volatile unsigned char *addr;
	atomic_int stop;
	long reads;
	int torn;	/* pages that showed neither file */
};

static int page_is(const volatile unsigned char *p, int id, uint64_t off)
{
	for (uint64_t i = 0; i < P; i += 61)
		if (p[i] != pattern(id, off + i))
			return 0;
	return 1;
}

/* Direct loads: a moment without a mapping would be a SIGSEGV. */
static void *swap_reader(void *arg)
{
	struct swap_reader *r = arg;

	while (!atomic_load(&r->stop)) {
		for (uint64_t pg = 0; pg < SWAP_PAGES; pg++) {
			const volatile unsigned char *p = r->addr + pg * P;

			if (!page_is(p, 19, pg * P) && !page_is(p, 20, pg * P))
				r->torn++;
		}
		r->reads++;
	}
	return NULL;
}

/* In a child: remap one range between two files while a thread reads it. */
static void swap_child(void *unused)
{
	struct fuse_dax_window *w = new_window(16, 0);
	char *base = fuse_dax_window_base(w);
	int a = make_file("swapa", 19, SWAP_PAGES * P, O_RDWR);
	int b = make_file("swapb", 20, SWAP_PAGES * P, O_RDONLY);
	struct swap_reader r = { .addr = (unsigned char *)base + 4 * P };
	pthread_t t;

	(void)unused;
	if (fuse_dax_window_map(w, 4 * P, SWAP_PAGES * P, a, 1, 0, PROT_READ))
		_exit(20);
	if (pthread_create(&t, NULL, swap_reader, &r))
		_exit(21);
	for (int i = 0; i < SWAP_ROUNDS; i++) {
		int odd = i & 1;

		/* read -> read/write upgrade of the same file, and a switch
		 * to another file, both in place */
		if (fuse_dax_window_map(w, 4 * P, SWAP_PAGES * P, odd ? b : a, 1, 0,
					PROT_READ))
			_exit(22);
		if (!odd && fuse_dax_window_map(w, 4 * P, SWAP_PAGES * P, a, 1, 0,
						PROT_READ | PROT_WRITE))
			_exit(23);
	}
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	if (r.reads == 0)
		_exit(24);
	if (r.torn)
		_exit(25);
	if (dax_window_check(w))
		_exit(26);
	_exit(0);
}

static void test_replace_atomic(void)
{
	struct fake_backend fb = { 0 };
	struct fuse_dax_window *w = NULL;
	int fd = make_file("swapfake", 21, 4 * P, O_RDWR);
	int st = child_signal(swap_child, NULL);

	CHECK(st == 0,
	      "remapping a range under a reader: child %s %d (SIGSEGV means a moment "
	      "without a mapping; 25 a page that showed neither file)",
	      st > 0 ? "killed by signal" : "exit", st > 0 ? st : -st);

	/* At the backend: a replace is a map over the old one, never an unmap. */
	CHECK_EQ(fuse_dax_window_new(8 * P, P, &fake_ops, &fb, &w), 0);
	if (!w) {
		close(fd);
		return;
	}
	CHECK_EQ(fuse_dax_window_map(w, 0, 4 * P, fd, 1, 0, PROT_READ), 0);
	fb.n = 0;
	CHECK_EQ(fuse_dax_window_map(w, 0, 4 * P, fd, 1, 0, PROT_READ | PROT_WRITE), 0);
	CHECK_EQ(fuse_dax_window_map(w, P, 2 * P, fd, 2, 2 * P, PROT_READ), 0);
	CHECK(fb.n == 2 && fb.calls[0].op == 'm' && fb.calls[1].op == 'm',
	      "replace went through %d backend calls, first %c", fb.n,
	      fb.n ? fb.calls[0].op : '-');
	for (int i = 0; i < fb.n; i++)
		CHECK(fb.calls[i].op != 'u', "replace unmapped [%llu +%llu] first",
		      (unsigned long long)fb.calls[i].moffset,
		      (unsigned long long)fb.calls[i].len);
	CHECK_EQ(dax_window_check(w), 0);
	fuse_dax_window_destroy(w);
	close(fd);
}

/* ---- revalidate never maps beyond the real end ---- */

static void test_revalidate_bounded(void)
{
	struct fuse_dax_window *w = new_window(16, 0);
	char *base = fuse_dax_window_base(w);
	uint64_t size = 2 * P + 1;
	int fd = make_file("bounded", 22, size, O_RDWR);
	struct fuse_dax_mapping m;

	CHECK_EQ(fuse_dax_window_map(w, 0, 8 * P, fd, 220, 0, PROT_READ | PROT_WRITE), 0);
	/* The caller claims a size the file does not have. */
	CHECK_EQ(fuse_dax_window_revalidate(w, 220, 100 * P), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, &m), 0);
	CHECK_EQ(m.file_len, 3 * P);
	for (uint64_t pg = 3; pg < 8; pg++)
		CHECK_EQ(child_signal(touch_read, base + pg * P), 0);
	CHECK(shows(w, 0, 8 * P, 22, size, 0, 3 * P), "after an inflated revalidate");
	/* Clip to 0 first, then truncate: no page shows the file any more. */
	CHECK_EQ(fuse_dax_window_clip(w, 220, 0), 1);
	CHECK_EQ(ftruncate(fd, 0), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, &m), 0);
	CHECK_EQ(m.file_len, 0);
	for (uint64_t pg = 0; pg < 8; pg++)
		CHECK_EQ(child_signal(touch_read, base + pg * P), 0);
	CHECK(shows(w, 0, 8 * P, 22, 0, 0, 0), "after clip to 0");
	close(fd);
	fuse_dax_window_destroy(w);
}

/* ---- concurrency ---- */

#define NFILES 4
#define WPAGES 256

struct stress {
	struct fuse_dax_window *w;
	int fd[NFILES];
	uint64_t size[NFILES];
	atomic_int stop;
	atomic_long ops;
};

static void stress_one(struct stress *s, unsigned *seed)
{
	unsigned r = rand_r(seed);
	int k = rand_r(seed) % NFILES;
	fuse_ino_t ino = 100 + k;
	uint64_t moff = (uint64_t)(rand_r(seed) % WPAGES) * P;
	uint64_t len = (uint64_t)(1 + rand_r(seed) % 16) * P;
	uint64_t foff = (uint64_t)(rand_r(seed) % 48) * P;
	struct fuse_dax_mapping m[4];
	int ret;

	if (moff + len > WPAGES * P)
		len = WPAGES * P - moff;
	switch (r % 10) {
	case 0: case 1: case 2: case 3: case 4:
		ret = fuse_dax_window_map(s->w, moff, len, s->fd[k], ino, foff,
					  r & 16 ? PROT_READ :
						   PROT_READ | PROT_WRITE);
		CHECK_EQ(ret, 0);
		break;
	case 5: case 6:
		ret = fuse_dax_window_unmap(s->w, moff, len);
		CHECK(ret == 0 || ret == -ENOENT, "unmap: %d", ret);
		break;
	case 7:
		ret = fuse_dax_window_clip(s->w, ino, rand_r(seed) % (s->size[k] + 1));
		CHECK(ret >= 0, "clip: %d", ret);
		break;
	case 8:
		ret = fuse_dax_window_revalidate(s->w, ino, s->size[k]);
		CHECK(ret >= 0, "revalidate: %d", ret);
		break;
	default:
		ret = fuse_dax_window_find(s->w, ino, foff, len, m, 4);
		CHECK(ret >= 0, "find: %d", ret);
		ret = fuse_dax_window_lookup(s->w, moff, m);
		CHECK(ret == 0 || ret == -ENOENT, "lookup: %d", ret);
		if (r % 100 == 9 && (r / 100) % 8 == 0)
			fuse_dax_window_unmap_inode(s->w, ino);
	}
}

static void *stress_thread(void *arg)
{
	struct stress *s = arg;
	unsigned seed = (unsigned)(uintptr_t)pthread_self() ^ (unsigned)time(NULL);

	while (!atomic_load(&s->stop)) {
		stress_one(s, &seed);
		atomic_fetch_add(&s->ops, 1);
	}
	return NULL;
}

/* Every page either belongs to one entry and shows its bytes, or faults. */
static void stress_verify(struct stress *s, int exact)
{
	char *base = fuse_dax_window_base(s->w);
	uint64_t pos = 0;
	int entries = 0;

	CHECK_EQ(dax_window_check(s->w), 0);
	while (pos < WPAGES * P) {
		struct fuse_dax_mapping m;
		int k;
		char c;

		if (fuse_dax_window_lookup(s->w, pos, &m) < 0) {
			CHECK(window_read(base + pos, &c, 1) == -EFAULT,
			      "unmapped page %llu is accessible",
			      (unsigned long long)(pos / P));
			pos += P;
			continue;
		}
		entries++;
		CHECK(m.moffset == pos, "entry does not start at its lookup");
		k = (int)(m.ino - 100);
		CHECK(k >= 0 && k < NFILES, "bad ino %llu",
		      (unsigned long long)m.ino);
		if (k < 0 || k >= NFILES)
			break;
		{
			uint64_t eof = (s->size[k] + P - 1) / P * P;
			uint64_t full = m.foffset >= eof ? 0 :
				eof - m.foffset < m.len ? eof - m.foffset : m.len;

			CHECK(exact ? m.file_len == full : m.file_len <= full,
			      "file_len %llu, file part %llu",
			      (unsigned long long)m.file_len,
			      (unsigned long long)full);
		}
		CHECK(shows(s->w, m.moffset, m.len, 20 + k, s->size[k],
			    m.foffset, m.file_len),
		      "entry at page %llu (ino %llu, file page %llu)",
		      (unsigned long long)(m.moffset / P),
		      (unsigned long long)m.ino,
		      (unsigned long long)(m.foffset / P));
		pos = m.moffset + m.len;
	}
	printf("  %d entries verified\n", entries);
}

static void test_concurrency(void)
{
	static const uint64_t sizes[NFILES] = { 40, 10, 3, 64 };
	struct stress s = { .w = new_window(WPAGES, 0) };
	pthread_t t[8];
	char name[32];

	for (int k = 0; k < NFILES; k++) {
		s.size[k] = sizes[k] * P + (k == 1 ? 123 : 0);
		snprintf(name, sizeof(name), "stress%d", k);
		s.fd[k] = make_file(name, 20 + k, s.size[k], O_RDWR);
	}
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, stress_thread, &s);
	sleep(3);
	atomic_store(&s.stop, 1);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	printf("  %ld operations from 8 threads\n", atomic_load(&s.ops));
	stress_verify(&s, 0);
	for (int k = 0; k < NFILES; k++)
		CHECK(fuse_dax_window_revalidate(s.w, 100 + k, s.size[k]) >= 0,
		      "revalidate");
	stress_verify(&s, 1);
	CHECK(fuse_dax_window_unmap_all(s.w) >= 0, "unmap_all");
	CHECK_EQ(fuse_dax_window_unmap_all(s.w), 0);
	for (int k = 0; k < NFILES; k++)
		close(s.fd[k]);
	fuse_dax_window_destroy(s.w);
}

/* ---- main ---- */

static void cleanup_tmpdir(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("warning: could not remove %s\n", tmpdir);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{ "data_both_ways", test_data_both_ways },
		{ "unmap_leaves_reservation", test_unmap_leaves_reservation },
		{ "past_eof_reads_zeros", test_past_eof_reads_zeros },
		{ "clip_and_revalidate", test_clip_and_revalidate },
		{ "zero_faults", test_zero_faults },
		{ "overlap_replaces", test_overlap_replaces },
		{ "errors", test_errors },
		{ "lookup_find", test_lookup_find },
		{ "remote_backend", test_remote_backend },
		{ "readonly_never_writable", test_readonly_never_writable },
		{ "unmap_zero_faults_window", test_unmap_zero_faults_window },
		{ "replace_atomic", test_replace_atomic },
		{ "revalidate_bounded", test_revalidate_bounded },
		{ "concurrency", test_concurrency },
	};
	const char *t = getenv("TMPDIR");
	char c;

	P = (uint64_t)sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_dax_window.XXXXXX",
		 t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("FAIL: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	/* The checks read the window through process_vm_readv. */
	if (window_read(&P, &c, 1) < 0) {
		printf("SKIP: process_vm_readv on self does not work here: %s\n",
		       strerror(errno));
		cleanup_tmpdir();
		return 77;
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int before = atomic_load(&failures);

		tests[i].fn();
		printf("%s %s\n",
		       atomic_load(&failures) == before ? "ok  " : "FAIL",
		       tests[i].name);
	}
	cleanup_tmpdir();
	printf("test_dax_window: %d checks, %d failed\n", atomic_load(&checks),
	       atomic_load(&failures));
	return atomic_load(&failures) ? 1 : 0;
}
