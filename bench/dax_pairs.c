/*
 * bench/dax_pairs.c: how many DAX mapping setup + teardown pairs per second
 * a server answers, measured without a guest. It plays the kernel's DAX
 * client over a SOCK_SEQPACKET socketpair (the server's mount point is
 * /dev/fd/N, as in test/test_dax_hostile.py): INIT, LOOKUP of one file, then
 * for a number of seconds SETUPMAPPING of a 2 MiB range followed by
 * REMOVEMAPPING of it, the way the guest's reclaim cycles ranges when the
 * data is larger than the window. With BATCH > 1 it maps BATCH ranges and
 * removes them in one REMOVEMAPPING, as the guest's background reclaim does.
 * Prints one JSON line, with the server's CPU time per pair (from wait4's
 * rusage once it has ended). The server's window is whatever it makes for a
 * /dev/fd connection (passthrough_dax: a local mmap window).
 *
 * Usage: dax_pairs SECONDS BATCH FILE-NAME SERVER [SERVER ARGS...]
 *        (the server's argv without the mount point; "/dev/fd/N" is added)
 */
#define _GNU_SOURCE
#include "fuse_kernel.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RANGE (2u << 20)
#define MAX_BATCH 256

static int conn = -1;
static uint64_t next_unique = 1;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One request, one reply; returns the reply's error (0 or negative errno). */
static int call(uint32_t opcode, uint64_t nodeid, const void *arg, size_t len, void *out,
		size_t outlen)
{
	char buf[8192];
	struct fuse_in_header in = {
		.len = (uint32_t)(sizeof(in) + len), .opcode = opcode,
		.unique = next_unique++, .nodeid = nodeid,
		.uid = getuid(), .gid = getgid(), .pid = (uint32_t)getpid(),
	};
	struct fuse_out_header *oh = (struct fuse_out_header *)buf;
	ssize_t n;

	if (sizeof(in) + len > sizeof(buf))
		return -E2BIG;
	memcpy(buf, &in, sizeof(in));
	memcpy(buf + sizeof(in), arg, len);
	if (send(conn, buf, sizeof(in) + len, 0) < 0)
		return -errno;
	n = recv(conn, buf, sizeof(buf), 0);
	if (n < (ssize_t)sizeof(*oh)) {
		fprintf(stderr, "dax_pairs: short or no reply (%zd bytes)\n", n);
		exit(1);
	}
	if (oh->unique != in.unique) {
		fprintf(stderr, "dax_pairs: reply to %llu, expected %llu\n",
			(unsigned long long)oh->unique, (unsigned long long)in.unique);
		exit(1);
	}
	if (out && oh->error == 0)
		memcpy(out, buf + sizeof(*oh), outlen < (size_t)n - sizeof(*oh)
					      ? outlen : (size_t)n - sizeof(*oh));
	return oh->error;
}

static void check(int err, const char *what)
{
	if (err) {
		fprintf(stderr, "dax_pairs: %s: %s\n", what, strerror(-err));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct fuse_init_in init = { .major = FUSE_KERNEL_VERSION, .minor = 31,
				     .max_readahead = 1 << 20,
				     .flags = FUSE_MAP_ALIGNMENT | FUSE_INIT_EXT |
					      FUSE_BIG_WRITES | FUSE_MAX_PAGES };
	struct fuse_init_out init_out = { 0 };
	struct fuse_entry_out entry = { 0 };
	char fdarg[32];
	struct rusage ru;
	double seconds, t0, t, cpu;
	unsigned long pairs = 0;
	uint64_t file_ranges = 64, slots;
	int sv[2], batch, err, status;
	pid_t pid;

	if (argc < 5) {
		fprintf(stderr, "usage: dax_pairs SECONDS BATCH FILE-NAME SERVER [ARGS...]\n");
		return 2;
	}
	seconds = atof(argv[1]);
	batch = atoi(argv[2]);
	if (seconds <= 0 || batch < 1 || batch > MAX_BATCH) {
		fprintf(stderr, "dax_pairs: SECONDS > 0, 1 <= BATCH <= %d\n", MAX_BATCH);
		return 2;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
		perror("dax_pairs: socketpair");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		char **sargv = calloc((size_t)argc, sizeof(char *));
		int i;

		close(sv[0]);
		for (i = 4; i < argc; i++)
			sargv[i - 4] = argv[i];
		snprintf(fdarg, sizeof(fdarg), "/dev/fd/%d", sv[1]);
		sargv[argc - 4] = fdarg;
		execv(sargv[0], sargv);
		perror("dax_pairs: exec");
		_exit(127);
	}
	close(sv[1]);
	conn = sv[0];

	check(call(FUSE_INIT, 0, &init, sizeof(init), &init_out, sizeof(init_out)), "INIT");
	if (!(init_out.flags & FUSE_MAP_ALIGNMENT)) {
		fprintf(stderr, "dax_pairs: the server offers no DAX mappings\n");
		return 1;
	}
	check(call(FUSE_LOOKUP, FUSE_ROOT_ID, argv[3], strlen(argv[3]) + 1, &entry,
		   sizeof(entry)), "LOOKUP");
	if (entry.attr.size >= RANGE)
		file_ranges = entry.attr.size / RANGE;
	slots = (uint64_t)batch;

	t0 = now();
	do {
		char rm[sizeof(struct fuse_removemapping_in) +
			MAX_BATCH * sizeof(struct fuse_removemapping_one)];
		struct fuse_removemapping_in *ri = (struct fuse_removemapping_in *)rm;
		struct fuse_removemapping_one one;
		int i;

		for (i = 0; i < batch; i++) {
			struct fuse_setupmapping_in sm = {
				.fh = UINT64_MAX, .foffset = ((pairs + (uint64_t)i) % file_ranges) * RANGE,
				.len = RANGE, .flags = FUSE_SETUPMAPPING_FLAG_READ,
				.moffset = ((uint64_t)i % slots) * RANGE,
			};

			check(call(FUSE_SETUPMAPPING, entry.nodeid, &sm, sizeof(sm), NULL, 0),
			      "SETUPMAPPING");
			one.moffset = sm.moffset;
			one.len = RANGE;
			memcpy(rm + sizeof(*ri) + (size_t)i * sizeof(one), &one, sizeof(one));
		}
		ri->count = (uint32_t)batch;
		err = call(FUSE_REMOVEMAPPING, entry.nodeid, rm,
			   sizeof(*ri) + (size_t)batch * sizeof(one), NULL, 0);
		check(err, "REMOVEMAPPING");
		pairs += (unsigned long)batch;
		t = now();
	} while (t - t0 < seconds);

	/* The server's CPU time, INIT and LOOKUP included, once it has ended. */
	close(conn);
	if (wait4(pid, &status, 0, &ru) != pid) {
		perror("dax_pairs: wait4");
		return 1;
	}
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		fprintf(stderr, "dax_pairs: the server exited with status %d\n", status);
	cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	printf("{\"pairs\": %lu, \"seconds\": %.3f, \"pairs_per_s\": %.1f, \"batch\": %d, "
	       "\"us_per_pair\": %.2f, \"server_cpu_us_per_pair\": %.2f}\n",
	       pairs, t - t0, (double)pairs / (t - t0), batch, (t - t0) * 1e6 / (double)pairs,
	       cpu / (double)pairs);
	return 0;
}
