/*
 * bench/metadata.c: the metadata job of bench/run.py. In a directory, create
 * N empty files, stat each, rename each, unlink each, and print the rate
 * (4 N operations over the elapsed time) as one JSON line. fio has no rename
 * or unlink loop, so this small program stands in for it on the host and in
 * the guest alike (it is built static for the guest's initramfs).
 *
 * Usage: metadata DIR [N]   (N defaults to 3000)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, const char *name)
{
	fprintf(stderr, "metadata: %s %s: %s\n", what, name, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	char a[64], b[64];
	struct stat st;
	double t0, t[4];
	long n, i;
	int dfd, fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: metadata DIR [N]\n");
		return 2;
	}
	n = argc == 3 ? strtol(argv[2], NULL, 10) : 3000;
	if (n < 1) {
		fprintf(stderr, "metadata: N must be a positive number\n");
		return 2;
	}
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		return fail("opening", argv[1]);

	t0 = now();
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "md.%ld", i);
		fd = openat(dfd, a, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail("creating", a);
		close(fd);
	}
	t[0] = now();
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "md.%ld", i);
		if (fstatat(dfd, a, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return fail("stat of", a);
	}
	t[1] = now();
	for (i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "md.%ld", i);
		snprintf(b, sizeof(b), "mv.%ld", i);
		if (renameat(dfd, a, dfd, b) < 0)
			return fail("renaming", a);
	}
	t[2] = now();
	for (i = 0; i < n; i++) {
		snprintf(b, sizeof(b), "mv.%ld", i);
		if (unlinkat(dfd, b, 0) < 0)
			return fail("unlinking", b);
	}
	t[3] = now();
	close(dfd);
	printf("{\"files\": %ld, \"ops_per_s\": %.1f, \"create_s\": %.6f, \"stat_s\": %.6f, "
	       "\"rename_s\": %.6f, \"unlink_s\": %.6f}\n",
	       n, 4.0 * (double)n / (t[3] - t0), t[0] - t0, t[1] - t[0], t[2] - t[1],
	       t[3] - t[2]);
	return 0;
}
