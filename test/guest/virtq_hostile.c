/*
 * Hostile-input test of lib/virtq.c: builds split rings in a memfd laid out
 * as two guest memory regions and feeds bad descriptors (out-of-region
 * addresses, loops, over-long chains, indirect, bad heads, runaway avail
 * index); each must fail that chain only, and good chains must still work;
 * rings misaligned in our mapping are refused, and virtq_map_reply() finds
 * where an error reply can go in a chain that was refused.
 * Built and run by test/test_vhost_user.py (plain program, exit 0 = pass).
 */
#define _GNU_SOURCE
#include "virtq.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int checks, failed;
#define CHECK(c)                                                               \
	do {                                                                   \
		checks++;                                                      \
		if (!(c)) {                                                    \
			failed++;                                              \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);    \
		}                                                              \
	} while (0)

#define NUM 8
/* Region 0: gpa 0..64K at uva 0x10000000; region 1: gpa 1M..1M+64K at uva 0x20000000. */
#define R0_GPA 0x0ULL
#define R1_GPA 0x100000ULL
#define RSIZE 0x10000ULL

static struct virtq_mem mem;
static uint8_t *base;
static struct virtq vq;
static struct virtq_desc *desc;
static uint16_t *avail;

static void *gpa(uint64_t a)
{
	return a >= R1_GPA ? base + RSIZE + (a - R1_GPA) : base + a;
}

static void reset(void)
{
	memset(base, 0, 2 * RSIZE);
	/* desc at gpa 0, avail at 0x1000, used at 0x2000 (all in region 0). */
	CHECK(virtq_setup(&vq, &mem, NUM, 0x10000000, 0x10001000, 0x10002000) == 0);
	desc = (struct virtq_desc *)gpa(0);
	avail = (uint16_t *)gpa(0x1000);
}

static void publish(uint16_t head)
{
	avail[2 + (avail[1] % NUM)] = head;
	avail[1]++;
}

static int pop_map(struct virtq_chain *c)
{
	uint16_t h;
	int r = virtq_pop(&vq, &h);

	if (r != 1)
		return r == 0 ? -ENODATA : r;
	return virtq_map_chain(&vq, &mem, h, c);
}

int main(void)
{
	static struct virtq_chain c;
	char buf[256];
	int fd = memfd_create("virtq", 0);

	if (fd < 0 || ftruncate(fd, 2 * RSIZE) != 0) {
		printf("memfd: %s\n", strerror(errno));
		return 77;
	}
	base = mmap(NULL, 2 * RSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	mem.nregions = 2;
	mem.r[0] = (struct virtq_region){ R0_GPA, RSIZE, 0x10000000, base };
	mem.r[1] = (struct virtq_region){ R1_GPA, RSIZE, 0x20000000, base + RSIZE };

	/* Rings outside memory or misaligned are refused. */
	CHECK(virtq_setup(&vq, &mem, NUM, 0x30000000, 0x10001000, 0x10002000) == -EFAULT);
	CHECK(virtq_setup(&vq, &mem, NUM, 0x1000fff0, 0x10001000, 0x10002000) == -EFAULT);
	CHECK(virtq_setup(&vq, &mem, 6, 0x10000000, 0x10001000, 0x10002000) == -EINVAL);
	CHECK(virtq_setup(&vq, &mem, NUM, 0x10000008, 0x10001000, 0x10002000) == -EINVAL);

	/* A good chain: 2 readable (one crossing nothing), 1 writable in region 1. */
	reset();
	memcpy(gpa(0x3000), "hello ", 6);
	memcpy(gpa(R1_GPA + 0x10), "world", 5);
	desc[0] = (struct virtq_desc){ 0x3000, 6, VIRTQ_DESC_F_NEXT, 1 };
	desc[1] = (struct virtq_desc){ R1_GPA + 0x10, 5, VIRTQ_DESC_F_NEXT, 2 };
	desc[2] = (struct virtq_desc){ R1_GPA + 0x100, 16, VIRTQ_DESC_F_WRITE, 0 };
	publish(0);
	CHECK(pop_map(&c) == 0);
	CHECK(c.read_len == 11 && c.write_len == 16);
	CHECK(virtq_gather(&c, buf, sizeof(buf)) == 11 && memcmp(buf, "hello world", 11) == 0);
	{
		struct iovec iov = { "0123456789abcdefXYZ", 16 };
		struct iovec big = { "0123456789abcdefXYZ", 17 };

		CHECK(virtq_scatter(&c, &big, 1) == -EMSGSIZE);
		CHECK(virtq_scatter(&c, &iov, 1) == 16);
		CHECK(memcmp(gpa(R1_GPA + 0x100), "0123456789abcdef", 16) == 0);
	}
	virtq_push(&vq, c.head, 16);
	CHECK(((uint16_t *)gpa(0x2000))[1] == 1);

	/* Address outside every region (the gap between regions, and beyond). */
	desc[3] = (struct virtq_desc){ 0x20000, 8, 0, 0 };
	publish(3);
	CHECK(pop_map(&c) == -EFAULT);
	desc[3] = (struct virtq_desc){ ~0ULL - 4, 8, 0, 0 };
	publish(3);
	CHECK(pop_map(&c) == -EFAULT);
	/* Buffer that starts inside a region and runs past its end. */
	desc[3] = (struct virtq_desc){ RSIZE - 4, 8, 0, 0 };
	publish(3);
	CHECK(pop_map(&c) == -EFAULT);

	/* A loop in the chain, and a self loop. */
	desc[4] = (struct virtq_desc){ 0x3000, 1, VIRTQ_DESC_F_NEXT, 5 };
	desc[5] = (struct virtq_desc){ 0x3000, 1, VIRTQ_DESC_F_NEXT, 4 };
	publish(4);
	CHECK(pop_map(&c) == -EINVAL);
	desc[6] = (struct virtq_desc){ 0x3000, 1, VIRTQ_DESC_F_NEXT, 6 };
	publish(6);
	CHECK(pop_map(&c) == -EINVAL);
	/* next out of range. */
	desc[7] = (struct virtq_desc){ 0x3000, 1, VIRTQ_DESC_F_NEXT, 200 };
	publish(7);
	CHECK(pop_map(&c) == -EINVAL);
	/* Indirect (not offered), and readable after writable. */
	desc[4] = (struct virtq_desc){ 0x3000, 16, VIRTQ_DESC_F_INDIRECT, 0 };
	publish(4);
	CHECK(pop_map(&c) == -EINVAL);
	desc[4] = (struct virtq_desc){ 0x3000, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 5 };
	desc[5] = (struct virtq_desc){ 0x3000, 16, 0, 0 };
	publish(4);
	CHECK(pop_map(&c) == -EINVAL);
	/* A head index out of range is consumed and refused. */
	publish(NUM + 3);
	CHECK(pop_map(&c) == -EIO);
	CHECK(!vq.broken);

	/* Still serving: the good chain again. */
	publish(0);
	CHECK(pop_map(&c) == 0 && c.read_len == 11);

	/* A chain that is too long: every descriptor chained (no loop) still ends. */
	for (int i = 0; i < NUM - 1; i++)
		desc[i] = (struct virtq_desc){ 0x3000, 1, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1) };
	desc[NUM - 1] = (struct virtq_desc){ 0x3000, 1, VIRTQ_DESC_F_NEXT, 0 };
	publish(0);
	CHECK(pop_map(&c) == -EINVAL);
	/* A huge length: more segments or bytes than allowed, no overflow. */
	desc[0] = (struct virtq_desc){ 0x3000, 0xffffffff, 0, 0 };
	publish(0);
	CHECK(pop_map(&c) == -EFAULT);
	/* A readable part larger than the buffer is refused by gather. */
	desc[0] = (struct virtq_desc){ 0x3000, 1024, 0, 0 };
	publish(0);
	CHECK(pop_map(&c) == 0 && virtq_gather(&c, buf, sizeof(buf)) == -E2BIG);

	/* The guest publishes more entries than the ring holds: ring stops. */
	avail[1] += NUM + 5;
	{
		uint16_t h;

		CHECK(virtq_pop(&vq, &h) == -EIO);
		CHECK(vq.broken);
		CHECK(virtq_pop(&vq, &h) == 0);
	}

	/*
	 * Aligned VMM addresses in a region whose mapping starts one byte into
	 * a page: misaligned for us, refused (16/32-bit atomics on the rings).
	 */
	{
		struct virtq_mem odd = mem;

		odd.r[0].host = base + 1;
		CHECK(virtq_setup(&vq, &odd, NUM, 0x10000000, 0x10001000, 0x10002000) == -EINVAL);
	}

	/* Where an error reply can go in a chain that cannot be served. */
	reset();
	{
		static struct virtq_chain rc;
		char pre[16];
		size_t got;

		memcpy(gpa(0x3000), "0123456789abcdefXYZ", 19);
		/* Readable part fine, second writable buffer outside memory. */
		desc[0] = (struct virtq_desc){ 0x3000, 19, VIRTQ_DESC_F_NEXT, 1 };
		desc[1] = (struct virtq_desc){ 0x4000, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2 };
		desc[2] = (struct virtq_desc){ 0x90000, 64, VIRTQ_DESC_F_WRITE, 0 };
		CHECK(virtq_map_reply(&vq, &mem, 0, &rc, pre, sizeof(pre), &got) == -EFAULT);
		CHECK(got == 16 && memcmp(pre, "0123456789abcdef", 16) == 0);
		CHECK(rc.nread == 0 && rc.nwrite == 1 && rc.write_len == 16);
		/* Readable part outside memory: no prefix, the writable part still. */
		desc[0] = (struct virtq_desc){ 0x90000, 19, VIRTQ_DESC_F_NEXT, 1 };
		desc[1] = (struct virtq_desc){ 0x4000, 32, VIRTQ_DESC_F_WRITE, 0 };
		CHECK(virtq_map_reply(&vq, &mem, 0, &rc, pre, sizeof(pre), &got) == 0);
		CHECK(got == 0 && rc.write_len == 32);
		/* A loop: the walk ends, with what it found. */
		desc[0] = (struct virtq_desc){ 0x3000, 19, VIRTQ_DESC_F_NEXT, 1 };
		desc[1] = (struct virtq_desc){ 0x4000, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0 };
		CHECK(virtq_map_reply(&vq, &mem, 0, &rc, pre, sizeof(pre), &got) == -EINVAL);
		CHECK(got == 16 && rc.write_len == 16);
		/* An indirect descriptor: nothing known, no room. */
		desc[0] = (struct virtq_desc){ 0x3000, 16, VIRTQ_DESC_F_INDIRECT, 0 };
		CHECK(virtq_map_reply(&vq, &mem, 0, &rc, pre, sizeof(pre), &got) == -EINVAL);
		CHECK(rc.write_len == 0);
	}

	printf("%d checks, %d failed\n", checks, failed);
	return failed ? 1 : 0;
}
