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
	/* A stale smaller size never hides pages the file still has... */
	CHECK_EQ(fuse_dax_window_revalidate(w, 40, 3 * P), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 8 * P, &m), 0);
	CHECK_EQ(m.file_len, 4 * P);
	/* ...but a file that really shrank is followed, whatever the caller says. */
	CHECK_EQ(ftruncate(fd, 3 * P), 0);
	CHECK_EQ(fuse_dax_window_revalidate(w, 40, 2 * P), 1);
	CHECK_EQ(fuse_dax_window_lookup(w, 8 * P, &m), 0);
	CHECK_EQ(m.file_len, 3 * P);
	CHECK_EQ(window_read(base + 11 * P, &c, 1), 0);
	CHECK_EQ(dax_window_check(w), 0);
	close(fd);
	fuse_dax_window_destroy(w);
}

/* ---- no signal handler: what the library does not hide ---- */

struct full_tmpfs {
	char *window;
	int fd;
};

/*
 * In a child: a store through the window into a hole of a file on a full
 * tmpfs cannot be backed. The kernel raises SIGBUS in the storing thread;
 * the library must not turn that into a zero page where the store
 * silently vanishes.
 */
static void store_into_full_tmpfs(void *arg)
{
	struct full_tmpfs *f = arg;

	(void)f->fd;
	*(volatile char *)f->window = 'x';
	_exit(3);
}

static void test_no_signal_handler(void)
{
	struct sigaction before, after;
	struct fuse_dax_window *w, *x = NULL;
	char dir[] = "/dev/shm/test_dax_window.XXXXXX";
	char path[64], block[4096];
	struct full_tmpfs f = { 0 };
	int filler;

	CHECK_EQ(sigaction(SIGBUS, NULL, &before), 0);
	/* No flag exists: the SIGBUS-to-zero-page option is gone. */
	CHECK_EQ(fuse_dax_window_new_local(8 * P, 1, &x), -EINVAL);
	CHECK(x == NULL, "a window was made with flags 1");
	w = new_window(8, 0);
	CHECK_EQ(sigaction(SIGBUS, NULL, &after), 0);
	CHECK(after.sa_handler == before.sa_handler && after.sa_flags == before.sa_flags,
	      "creating a window changed the SIGBUS disposition");

	/* A tiny tmpfs of our own, filled up, with a sparse file on it. */
	if (!mkdtemp(dir)) {
		printf("  (skipped the full-tmpfs store: mkdtemp /dev/shm: %s)\n",
		       strerror(errno));
		goto out;
	}
	if (geteuid() != 0) {
		printf("  (skipped the full-tmpfs store: needs root to mount a tmpfs)\n");
		rmdir(dir);
		goto out;
	}
	snprintf(path, sizeof(path), "mount -t tmpfs -o size=64k none %s", dir);
	if (system(path) != 0) {
		printf("  (skipped the full-tmpfs store: mount -t tmpfs failed)\n");
		rmdir(dir);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/sparse", dir);
	f.fd = open(path, O_RDWR | O_CREAT, 0600);
	CHECK(f.fd >= 0 && ftruncate(f.fd, 4 * P) == 0, "sparse file: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/filler", dir);
	filler = open(path, O_WRONLY | O_CREAT, 0600);
	memset(block, 7, sizeof(block));
	while (filler >= 0 && write(filler, block, sizeof(block)) == (ssize_t)sizeof(block))
		;
	CHECK_EQ(fuse_dax_window_map(w, 0, 4 * P, f.fd, 1, 0, PROT_READ | PROT_WRITE), 0);
	f.window = (char *)fuse_dax_window_base(w) + 2 * P;
	/* Killed by SIGBUS, never exit 3 (a store that "worked", or vanished). */
	CHECK_EQ(child_signal(store_into_full_tmpfs, &f), SIGBUS);
	CHECK_EQ(fuse_dax_window_unmap_all(w), 1);
	if (filler >= 0)
		close(filler);
	close(f.fd);
	snprintf(path, sizeof(path), "umount %s", dir);
	CHECK(system(path) == 0, "umount %s", dir);
	rmdir(dir);
out:
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
	/* Run inside map, with the window's lock held (then cleared). */
	void (*during_map)(struct fake_backend *f);
	int fd;		/* for during_map */
	/* While set, map waits (inside the window's lock) until it is cleared. */
	pthread_mutex_t hold_lock;
	pthread_cond_t hold_cond;
	int hold, held;
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
	if (f->during_map) {
		void (*fn)(struct fake_backend *) = f->during_map;

		f->during_map = NULL;
		fn(f);
	}
	pthread_mutex_lock(&f->hold_lock);
	f->held = f->hold;
	pthread_cond_broadcast(&f->hold_cond);
	while (f->hold)
		pthread_cond_wait(&f->hold_cond, &f->hold_lock);
	pthread_mutex_unlock(&f->hold_lock);
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

#define FAKE_BACKEND_INIT                                                 \
	{ .hold_lock = PTHREAD_MUTEX_INITIALIZER,                         \
	  .hold_cond = PTHREAD_COND_INITIALIZER }

static void test_remote_backend(void)
{
	const uint64_t A = 2 << 20;
	struct fake_backend fb = FAKE_BACKEND_INIT;
	struct fuse_dax_window *w = NULL;
	int fd = make_file("remote", 13, P + 10, O_RDWR);
	struct fuse_dax_mapping m;

	CHECK_EQ(fuse_dax_window_new(4 * A, A, &fake_ops, &fb, &w), 0);
	if (!w)
		return;
	CHECK(fuse_dax_window_base(w) == NULL, "remote base is not NULL");
	CHECK_EQ(fuse_dax_window_alignment(w), A);
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
	struct fake_backend fb = FAKE_BACKEND_INIT;
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

/* ---- coherence with the host: the file changes behind the window ---- */

/*
 * Another host process appends to a mapped file: the pages past the old
 * end are zero pages until a revalidate with the size the client is about
 * to be told; after it, the window shows the appended bytes and a store
 * there reaches the file (no private page keeps it).
 */
static void test_host_growth(void)
{
	struct fuse_dax_window *w = new_window(16, 0);
	char *base = fuse_dax_window_base(w);
	int fd = make_file("grow", 23, 2 * P, O_RDWR);
	struct fuse_dax_mapping m;
	char c;

	CHECK_EQ(fuse_dax_window_map(w, 0, 8 * P, fd, 230, 0, PROT_READ | PROT_WRITE), 0);
	CHECK_EQ(fuse_dax_window_map(w, 8 * P, 4 * P, fd, 230, 4 * P, PROT_READ), 0);
	rewrite_file(fd, 23, 5 * P + 10);	/* the host process */
	CHECK(shows(w, 0, 8 * P, 23, 5 * P + 10, 0, 2 * P), "stale before revalidate");
	/* What the file system already knew: nothing to do. */
	CHECK_EQ(fuse_dax_window_revalidate(w, 230, 2 * P), 0);
	CHECK_EQ(fuse_dax_window_revalidate(w, 230, 5 * P + 10), 2);
	CHECK(shows(w, 0, 8 * P, 23, 5 * P + 10, 0, 6 * P), "grown");
	CHECK(shows(w, 8 * P, 4 * P, 23, 5 * P + 10, 4 * P, 2 * P), "grown, second range");
	base[5 * P + 3] = 'g';
	CHECK(pread(fd, &c, 1, 5 * P + 3) == 1 && c == 'g', "store after growth not in the file");
	CHECK_EQ(fuse_dax_window_revalidate(w, 230, 5 * P + 10), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, &m), 0);
	CHECK_EQ(m.file_len, 6 * P);
	CHECK_EQ(dax_window_check(w), 0);
	close(fd);
	fuse_dax_window_destroy(w);
}

static void grow_during_map(struct fake_backend *f)
{
	CHECK_EQ(ftruncate(f->fd, 6 * (off_t)P), 0);
}

static void shrink_during_map(struct fake_backend *f)
{
	CHECK_EQ(ftruncate(f->fd, (off_t)P), 0);
}

/*
 * The file changes size between the size check of a SETUPMAPPING and the
 * moment its mapping is in the table (a host process racing the setup):
 * the mapping follows the new size before fuse_dax_window_map() returns,
 * growing over the new bytes or clipping what is now beyond the end.
 */
static void test_map_follows_a_racing_host(void)
{
	struct fake_backend fb = FAKE_BACKEND_INIT;
	struct fuse_dax_window *w = NULL;
	struct fuse_dax_mapping m;

	fb.fd = make_file("race", 24, 2 * P, O_RDWR);
	CHECK_EQ(fuse_dax_window_new(16 * P, P, &fake_ops, &fb, &w), 0);
	if (!w)
		return;
	fb.during_map = grow_during_map;
	CHECK_EQ(fuse_dax_window_map(w, 0, 8 * P, fb.fd, 240, 0, PROT_READ), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 0, &m), 0);
	CHECK_EQ(m.file_len, 6 * P);
	CHECK(fb.n == 3 && fb.calls[2].op == 'm' && fb.calls[2].moffset == 2 * P &&
	      fb.calls[2].len == 4 * P, "growth during the setup: %d backend calls", fb.n);

	fb.during_map = shrink_during_map;
	fb.n = 0;
	CHECK_EQ(fuse_dax_window_map(w, 8 * P, 8 * P, fb.fd, 241, 0, PROT_READ), 0);
	CHECK_EQ(fuse_dax_window_lookup(w, 8 * P, &m), 0);
	CHECK_EQ(m.file_len, P);
	CHECK(fb.n == 3 && fb.calls[2].op == 'z' && fb.calls[2].moffset == 9 * P &&
	      fb.calls[2].len == 5 * P, "shrink during the setup: %d backend calls", fb.n);
	CHECK_EQ(dax_window_check(w), 0);
	fuse_dax_window_destroy(w);
	close(fb.fd);
}

struct held_map {
	struct fuse_dax_window *w;
	int fd;
	int ret;
};

static void *map_in_thread(void *arg)
{
	struct held_map *h = arg;

	h->ret = fuse_dax_window_map(h->w, 8 * P, 4 * P, h->fd, 251, 0, PROT_READ);
	return NULL;
}

/*
 * revalidate's fast path: while a backend call of one inode holds the
 * window's lock (a VMM that is slow to answer), a revalidate of another
 * inode whose mappings already follow the size returns without waiting.
 */
static void test_revalidate_fast_path(void)
{
	struct fake_backend fb = FAKE_BACKEND_INIT;
	struct fuse_dax_window *w = NULL;
	struct held_map h;
	pthread_t t;
	int a = make_file("fasta", 25, 2 * P, O_RDWR);

	CHECK_EQ(fuse_dax_window_new(16 * P, P, &fake_ops, &fb, &w), 0);
	if (!w)
		return;
	CHECK_EQ(fuse_dax_window_map(w, 0, 4 * P, a, 250, 0, PROT_READ), 0);
	h = (struct held_map){ .w = w, .fd = a };
	pthread_mutex_lock(&fb.hold_lock);
	fb.hold = 1;
	pthread_mutex_unlock(&fb.hold_lock);
	CHECK_EQ(pthread_create(&t, NULL, map_in_thread, &h), 0);
	pthread_mutex_lock(&fb.hold_lock);
	while (!fb.held)
		pthread_cond_wait(&fb.hold_cond, &fb.hold_lock);
	pthread_mutex_unlock(&fb.hold_lock);
	/* The window's lock is held now; these must not wait for it. */
	CHECK_EQ(fuse_dax_window_revalidate(w, 250, 2 * P), 0);
	CHECK_EQ(fuse_dax_window_revalidate(w, 250, P + 1), 0);
	CHECK_EQ(fuse_dax_window_revalidate(w, 999, 100 * P), 0);
	pthread_mutex_lock(&fb.hold_lock);
	fb.hold = 0;
	pthread_cond_broadcast(&fb.hold_cond);
	pthread_mutex_unlock(&fb.hold_lock);
	pthread_join(t, NULL);
	CHECK_EQ(h.ret, 0);
	CHECK_EQ(dax_window_check(w), 0);
	fuse_dax_window_destroy(w);
	close(a);
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
		{ "no_signal_handler", test_no_signal_handler },
		{ "overlap_replaces", test_overlap_replaces },
		{ "errors", test_errors },
		{ "lookup_find", test_lookup_find },
		{ "remote_backend", test_remote_backend },
		{ "readonly_never_writable", test_readonly_never_writable },
		{ "replace_atomic", test_replace_atomic },
		{ "revalidate_bounded", test_revalidate_bounded },
		{ "host_growth", test_host_growth },
		{ "map_follows_a_racing_host", test_map_follows_a_racing_host },
		{ "revalidate_fast_path", test_revalidate_fast_path },
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
