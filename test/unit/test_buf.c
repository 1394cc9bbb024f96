/*
 * Unit test for fuse_buf_size() and fuse_buf_copy(): memory and fd buffers
 * in every direction, vectors of several pieces, FUSE_BUF_FD_SEEK and
 * FUSE_BUF_FD_RETRY, splice and its fallback, and errors.
 */
#include "fuse_common.h"

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static struct fuse_buf mem_buf(void *mem, size_t size)
{
	return (struct fuse_buf){ .size = size, .mem = mem, .fd = -1 };
}

static struct fuse_buf fd_buf(int fd, size_t size, off_t pos, int flags)
{
	return (struct fuse_buf){ .size = size, .fd = fd, .pos = pos,
				  .flags = FUSE_BUF_IS_FD | flags };
}

/* A temporary file holding len bytes of a known pattern. */
static int pattern_file(size_t len)
{
	int fd = memfd_create("test_buf", MFD_CLOEXEC);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)(i * 7 + 3);

		if (pwrite(fd, &c, 1, i) != 1)
			return -1;
	}
	return fd;
}

static int matches_pattern(const unsigned char *p, size_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (unsigned char)((off + i) * 7 + 3))
			return 0;
	return 1;
}

static void test_size(void)
{
	struct fuse_bufvec *v = calloc(1, sizeof(*v) + 2 * sizeof(v->buf[0]));

	v->count = 3;
	v->buf[0].size = 10;
	v->buf[1].size = 0;
	v->buf[2].size = 5;
	CHECK(fuse_buf_size(v) == 15);
	v->buf[1].size = SIZE_MAX - 3;
	CHECK(fuse_buf_size(v) == SIZE_MAX);
	free(v);
	struct fuse_bufvec one = FUSE_BUFVEC_INIT(4096);
	CHECK(fuse_buf_size(&one) == 4096);
}

static void test_mem_to_mem_vectors(void)
{
	char a[] = "hello", b[] = ", ", c[] = "world";
	char x[4] = { 0 }, y[20] = { 0 };
	struct fuse_bufvec *src = calloc(1, sizeof(*src) + 3 * sizeof(src->buf[0]));
	struct fuse_bufvec *dst = calloc(1, sizeof(*dst) + sizeof(dst->buf[0]));

	src->count = 4;
	src->buf[0] = mem_buf(a, 5);
	src->buf[1] = mem_buf(b, 0); /* empty pieces are stepped over */
	src->buf[2] = mem_buf(b, 2);
	src->buf[3] = mem_buf(c, 5);
	dst->count = 2;
	dst->buf[0] = mem_buf(x, 4);
	dst->buf[1] = mem_buf(y, sizeof(y));
	CHECK(fuse_buf_copy(dst, src, 0) == 12);
	CHECK(memcmp(x, "hell", 4) == 0);
	CHECK(memcmp(y, "o, world", 8) == 0);
	CHECK(src->idx == 4);

	/* A cursor already inside the source vector is honoured. */
	src->idx = 2;
	src->off = 1;
	dst->idx = 0;
	dst->off = 0;
	memset(x, 0, sizeof(x));
	CHECK(fuse_buf_copy(dst, src, 0) == 6);
	CHECK(memcmp(x, " wor", 4) == 0 && memcmp(y, "ld", 2) == 0);

	/* The destination is smaller: copy what fits. */
	struct fuse_bufvec s1 = FUSE_BUFVEC_INIT(5), d1 = FUSE_BUFVEC_INIT(3);
	char small[3];
	s1.buf[0].mem = a;
	d1.buf[0].mem = small;
	CHECK(fuse_buf_copy(&d1, &s1, 0) == 3);
	CHECK(memcmp(small, "hel", 3) == 0);
	free(src);
	free(dst);
}

static void test_fd_to_mem(void)
{
	int fd = pattern_file(10000);
	unsigned char out[8192];
	struct fuse_bufvec src = FUSE_BUFVEC_INIT(4000);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(sizeof(out));

	src.buf[0] = fd_buf(fd, 4000, 1000, FUSE_BUF_FD_SEEK);
	dst.buf[0].mem = out;
	CHECK(fuse_buf_copy(&dst, &src, 0) == 4000);
	CHECK(matches_pattern(out, 1000, 4000));
	CHECK(lseek(fd, 0, SEEK_CUR) == 0); /* pread: no file offset moved */

	/* Without SEEK the file offset is used and moves. */
	lseek(fd, 9000, SEEK_SET);
	src = FUSE_BUFVEC_INIT(4000);
	src.buf[0] = fd_buf(fd, 4000, 0, 0);
	dst = FUSE_BUFVEC_INIT(sizeof(out));
	dst.buf[0].mem = out;
	CHECK(fuse_buf_copy(&dst, &src, 0) == 1000); /* stops at EOF */
	CHECK(matches_pattern(out, 9000, 1000));
	close(fd);
}

/* A pipe with two separate writes: a plain read stops after the first. */
static void test_retry_on_pipe(void)
{
	char out[16] = { 0 };
	int p[2];

	for (int retry = 0; retry <= 1; retry++) {
		struct fuse_bufvec src = FUSE_BUFVEC_INIT(8);
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(sizeof(out));
		pid_t pid;

		CHECK(pipe(p) == 0);
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			if (write(p[1], "abcd", 4) != 4)
				_exit(1);
			usleep(100 * 1000);
			if (write(p[1], "efgh", 4) != 4)
				_exit(1);
			_exit(0);
		}
		close(p[1]);
		usleep(30 * 1000);
		src.buf[0] = fd_buf(p[0], 8, 0, retry ? FUSE_BUF_FD_RETRY : 0);
		dst.buf[0].mem = out;
		ssize_t n = fuse_buf_copy(&dst, &src, 0);
		if (retry) {
			CHECK(n == 8);
			CHECK(memcmp(out, "abcdefgh", 8) == 0);
		} else {
			CHECK(n == 4);
			CHECK(memcmp(out, "abcd", 4) == 0);
		}
		close(p[0]);
		waitpid(pid, NULL, 0);
	}
}

static void test_mem_to_fd(void)
{
	int fd = memfd_create("test_buf_w", MFD_CLOEXEC);
	char in[] = "0123456789";
	char back[16] = { 0 };
	struct fuse_bufvec src = FUSE_BUFVEC_INIT(10);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(10);

	src.buf[0].mem = in;
	dst.buf[0] = fd_buf(fd, 10, 100, FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY);
	CHECK(fuse_buf_copy(&dst, &src, 0) == 10);
	CHECK(pread(fd, back, 10, 100) == 10 && memcmp(back, in, 10) == 0);

	/* Several memory pieces into one positioned fd buffer. */
	struct fuse_bufvec *sv = calloc(1, sizeof(*sv) + sizeof(sv->buf[0]));
	sv->count = 2;
	sv->buf[0] = mem_buf("AB", 2);
	sv->buf[1] = mem_buf("CDE", 3);
	dst = FUSE_BUFVEC_INIT(5);
	dst.buf[0] = fd_buf(fd, 5, 200, FUSE_BUF_FD_SEEK);
	CHECK(fuse_buf_copy(&dst, sv, 0) == 5);
	CHECK(pread(fd, back, 5, 200) == 5 && memcmp(back, "ABCDE", 5) == 0);
	free(sv);
	close(fd);
}

static void check_fd_to_fd(enum fuse_buf_copy_flags flags, size_t len)
{
	int in = pattern_file(len + 500);
	int out = memfd_create("test_buf_o", MFD_CLOEXEC);
	unsigned char *back = malloc(len);
	struct fuse_bufvec src = FUSE_BUFVEC_INIT(len);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(len);

	src.buf[0] = fd_buf(in, len, 500, FUSE_BUF_FD_SEEK);
	dst.buf[0] = fd_buf(out, len, 7, FUSE_BUF_FD_SEEK);
	ssize_t got = fuse_buf_copy(&dst, &src, flags);
	if (got != (ssize_t)len)
		fprintf(stderr, "fd to fd, flags %#x: %zd\n", flags, got);
	CHECK(got == (ssize_t)len);
	CHECK(pread(out, back, len, 7) == (ssize_t)len);
	CHECK(matches_pattern(back, 500, len));
	free(back);
	close(in);
	close(out);
}

static void test_fd_to_fd(void)
{
	/* Larger than a pipe and than the bounce buffer, so both loop. */
	check_fd_to_fd(FUSE_BUF_NO_SPLICE, 300000);
	check_fd_to_fd(0, 300000);
	check_fd_to_fd(FUSE_BUF_FORCE_SPLICE | FUSE_BUF_SPLICE_MOVE, 300000);
	check_fd_to_fd(0, 1);
}

/* splice(2) refuses an eventfd: the copy falls back, unless forced. */
static void test_splice_fallback(void)
{
	uint64_t val = 42, back = 0;
	int out = memfd_create("test_buf_e", MFD_CLOEXEC);

	for (int force = 0; force <= 1; force++) {
		int efd = eventfd(0, EFD_CLOEXEC);
		struct fuse_bufvec src = FUSE_BUFVEC_INIT(8);
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(8);
		ssize_t n;

		CHECK(write(efd, &val, 8) == 8);
		src.buf[0] = fd_buf(efd, 8, 0, 0);
		dst.buf[0] = fd_buf(out, 8, 0, FUSE_BUF_FD_SEEK);
		n = fuse_buf_copy(&dst, &src, force ? FUSE_BUF_FORCE_SPLICE : 0);
		if (force) {
			CHECK(n == -EINVAL);
		} else {
			CHECK(n == 8);
			CHECK(pread(out, &back, 8, 0) == 8 && back == 42);
		}
		close(efd);
	}
	close(out);
}

static void test_errors(void)
{
	char mem[8];
	struct fuse_bufvec src = FUSE_BUFVEC_INIT(8);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(8);

	src.buf[0] = fd_buf(12345, 8, 0, 0);
	dst.buf[0].mem = mem;
	CHECK(fuse_buf_copy(&dst, &src, 0) == -EBADF);

	int ro = memfd_create("test_buf_ro", MFD_CLOEXEC);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ro);
	int rofd = open(path, O_RDONLY | O_CLOEXEC);
	src = FUSE_BUFVEC_INIT(8);
	src.buf[0].mem = mem;
	dst = FUSE_BUFVEC_INIT(8);
	dst.buf[0] = fd_buf(rofd, 8, 0, FUSE_BUF_FD_SEEK);
	CHECK(fuse_buf_copy(&dst, &src, 0) == -EBADF);
	close(rofd);
	close(ro);
}

int main(void)
{
	test_size();
	test_mem_to_mem_vectors();
	test_fd_to_mem();
	test_retry_on_pipe();
	test_mem_to_fd();
	test_fd_to_fd();
	test_splice_fallback();
	test_errors();
	return check_summary("test_buf");
}
