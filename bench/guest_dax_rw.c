/*
 * guest_dax_rw: runs inside the benchmark guest (bench/guest_dax.py) on a
 * file of a virtio-fs mount with -o dax: random 4 KiB pread()s, then
 * random 4 KiB pwrite()s, then fstat()s (each one a FUSE_GETATTR when the
 * daemon runs with -o timeout=0), each for a fixed time, and prints the
 * operations per second of each as "GUEST: <job>:<ops/s>". A measurement,
 * not a test: nothing here passes or fails.
 *
 * Usage: guest_dax_rw FILE SECONDS
 * Built static on the host (the guest has only busybox).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define RANGE (2u << 20)	/* what the Linux DAX client maps at a time */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

enum job { RANDREAD, RANDWRITE, GETATTR };

/* One job for the given time; returns operations per second, or -1. */
static double run(int fd, uint64_t blocks, enum job job, double seconds, char *buf)
{
	uint64_t x = 0x9e3779b97f4a7c15ull + (uint64_t)job, ops = 0;
	double start = now(), end = start + seconds, t;
	struct stat st;

	do {
		for (int i = 0; i < 64; i++) {
			off_t off = (off_t)(next(&x) % blocks) * BLOCK;
			ssize_t n = 0;

			if (job == RANDREAD)
				n = pread(fd, buf, BLOCK, off);
			else if (job == RANDWRITE)
				n = pwrite(fd, buf, BLOCK, off);
			else
				n = fstat(fd, &st) == 0 ? BLOCK : -1;
			if (n != BLOCK) {
				perror("guest_dax_rw");
				return -1;
			}
			ops++;
		}
		t = now();
	} while (t < end);
	return (double)ops / (t - start);
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "randread", "randwrite", "getattr" };
	char *buf = aligned_alloc(BLOCK, BLOCK);
	struct stat st;
	double seconds;
	int fd;

	if (argc != 3 || !buf) {
		fprintf(stderr, "usage: guest_dax_rw FILE SECONDS\n");
		return 2;
	}
	seconds = atof(argv[2]);
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < BLOCK) {
		perror(argv[1]);
		return 1;
	}
	memset(buf, 0x5a, BLOCK);
	/*
	 * Map every 2 MiB range read-write once before timing, so the jobs
	 * measure steady-state DAX access, not the first SETUPMAPPINGs.
	 */
	for (off_t off = 0; off < st.st_size; off += RANGE)
		if (pwrite(fd, buf, 1, off) != 1) {
			perror("warm-up write");
			return 1;
		}
	for (int j = RANDREAD; j <= GETATTR; j++) {
		double rate = run(fd, (uint64_t)st.st_size / BLOCK, (enum job)j, seconds, buf);

		if (rate < 0)
			return 1;
		printf("GUEST: %s:%.0f\n", names[j], rate);
		fflush(stdout);
	}
	close(fd);
	return 0;
}
