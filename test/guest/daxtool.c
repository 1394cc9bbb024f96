/*
 * daxtool: the guest side of the real-guest DAX coherence tests (built
 * static into the test initramfs by build-guest.sh; busybox has no mmap
 * tool). Each command checks every byte it reads against the pattern the
 * host wrote and prints one "GUEST: name:ok ..." or "GUEST: name:FAIL ..."
 * line on stdout (the serial console) for the host to parse.
 *
 *   daxtool tail FILE FINAL SEED SECONDS
 *       A `tail -f` reader: reads FILE with pread() as it grows (fstat for
 *       the size, as tail does) until FINAL bytes, then reads it all once
 *       more through mmap. Prints "tail:started" once the first bytes are
 *       read (the host starts appending then).
 *   daxtool regrow FILE INIT TRUNC FINAL SEED_A SEED_B CTLDIR SECONDS
 *       Maps FILE (INIT bytes of pattern A) and reads it, prints
 *       "regrow:mapped", waits for CTLDIR/go (the host has truncated FILE
 *       to TRUNC and grown it to FINAL with pattern B meanwhile), waits for
 *       the new size, and checks [0, TRUNC) = A, [TRUNC, FINAL) = B
 *       through the same mapping and with pread().
 *   daxtool upgrade FILE RANGES SEED_OLD SEED_NEW
 *       Two processes, range by range (2 MiB each): a reader maps the
 *       range read-only and keeps reading it while a writer writes the new
 *       pattern into it with pwrite() (the read-to-write upgrade of the
 *       range's DAX mapping). The reader accepts old or new bytes while the
 *       writer runs and only new ones after; the writer's data must be in
 *       the file.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RANGE (2u << 20)
#define PAGE 4096u

/* The byte the host put at offset o (never 0, so a stale zero page shows). */
static uint8_t pattern(uint64_t o, unsigned int seed)
{
	return (uint8_t)(1 + (o + (o >> 12) * 17 + (uint64_t)seed * 29) % 251);
}

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("GUEST: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 0);
}

/* First offset in buf (file offset base) that is not the pattern, or -1. */
static int64_t mismatch(const uint8_t *buf, size_t len, uint64_t base, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern(base + i, seed))
			return (int64_t)i;
	return -1;
}

static int fail_at(const char *name, const char *how, uint64_t off, uint8_t got,
		   unsigned int seed)
{
	say("%s:FAIL %s at 0x%llx: got 0x%02x, want 0x%02x", name, how,
	    (unsigned long long)off, got, pattern(off, seed));
	return 1;
}

static off_t size_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_size : -1;
}

static int cmd_tail(char **av)
{
	const char *path = av[0];
	uint64_t final = num(av[1]), pos = 0;
	unsigned int seed = (unsigned int)num(av[2]);
	double deadline = now() + (double)num(av[3]);
	static uint8_t buf[1 << 16];
	int fd = open(path, O_RDONLY);
	bool started = false;
	uint8_t *map;

	if (fd < 0) {
		say("tail:FAIL open %s: %s", path, strerror(errno));
		return 1;
	}
	while (pos < final) {
		off_t size = size_of(fd);

		if (size < 0) {
			say("tail:FAIL fstat: %s", strerror(errno));
			return 1;
		}
		while (pos < (uint64_t)size) {
			size_t want = (uint64_t)size - pos < sizeof(buf) ? (size_t)((uint64_t)size - pos)
									 : sizeof(buf);
			ssize_t n = pread(fd, buf, want, (off_t)pos);
			int64_t bad;

			if (n < 0) {
				say("tail:FAIL pread at 0x%llx: %s", (unsigned long long)pos,
				    strerror(errno));
				return 1;
			}
			if (n == 0)
				break;
			bad = mismatch(buf, (size_t)n, pos, seed);
			if (bad >= 0)
				return fail_at("tail", "read", pos + (uint64_t)bad, buf[bad], seed);
			pos += (uint64_t)n;
		}
		if (!started && pos > 0) {
			started = true;
			say("tail:started at %llu", (unsigned long long)pos);
		}
		if (now() > deadline) {
			say("tail:FAIL timeout at 0x%llx of 0x%llx (size %lld)",
			    (unsigned long long)pos, (unsigned long long)final,
			    (long long)size_of(fd));
			return 1;
		}
		usleep(20000);
	}
	map = mmap(NULL, final, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		say("tail:FAIL mmap: %s", strerror(errno));
		return 1;
	}
	{
		int64_t bad = mismatch(map, final, 0, seed);

		if (bad >= 0)
			return fail_at("tail", "mmap", (uint64_t)bad, map[bad], seed);
	}
	say("tail:ok %llu bytes", (unsigned long long)final);
	return 0;
}

static int wait_for_name(const char *dir, const char *name, double deadline)
{
	while (now() < deadline) {
		DIR *d = opendir(dir);
		struct dirent *e;

		if (d) {
			while ((e = readdir(d)))
				if (strcmp(e->d_name, name) == 0) {
					closedir(d);
					return 0;
				}
			closedir(d);
		}
		usleep(50000);
	}
	return -1;
}

static int check_two(const char *name, const char *how, const uint8_t *buf, uint64_t base,
		     uint64_t len, uint64_t split, unsigned int seed_a, unsigned int seed_b)
{
	for (uint64_t i = 0; i < len; i++) {
		uint64_t o = base + i;
		unsigned int seed = o < split ? seed_a : seed_b;

		if (buf[i] != pattern(o, seed))
			return fail_at(name, how, o, buf[i], seed);
	}
	return 0;
}

static int cmd_regrow(char **av)
{
	const char *path = av[0], *ctl = av[6];
	uint64_t init = num(av[1]), trunc = num(av[2]), final = num(av[3]);
	unsigned int seed_a = (unsigned int)num(av[4]), seed_b = (unsigned int)num(av[5]);
	double deadline = now() + (double)num(av[7]);
	int fd = open(path, O_RDONLY);
	static uint8_t buf[1 << 16];
	uint8_t *map;
	int64_t bad;

	if (fd < 0 || size_of(fd) != (off_t)init) {
		say("regrow:FAIL %s: not %llu bytes", path, (unsigned long long)init);
		return 1;
	}
	map = mmap(NULL, final, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		say("regrow:FAIL mmap: %s", strerror(errno));
		return 1;
	}
	bad = mismatch(map, init, 0, seed_a);
	if (bad >= 0)
		return fail_at("regrow", "mmap before", (uint64_t)bad, map[bad], seed_a);
	say("regrow:mapped");
	if (wait_for_name(ctl, "go", deadline) < 0) {
		say("regrow:FAIL no %s/go from the host", ctl);
		return 1;
	}
	while (size_of(fd) != (off_t)final) {
		if (now() > deadline) {
			say("regrow:FAIL size stays %lld, want %llu", (long long)size_of(fd),
			    (unsigned long long)final);
			return 1;
		}
		usleep(50000);
	}
	if (check_two("regrow", "mmap after", map, 0, final, trunc, seed_a, seed_b))
		return 1;
	for (uint64_t pos = 0; pos < final;) {
		size_t want = final - pos < sizeof(buf) ? (size_t)(final - pos) : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)pos);

		if (n <= 0) {
			say("regrow:FAIL pread at 0x%llx: %s", (unsigned long long)pos,
			    n < 0 ? strerror(errno) : "end of file");
			return 1;
		}
		if (check_two("regrow", "read after", buf, pos, (uint64_t)n, trunc, seed_a, seed_b))
			return 1;
		pos += (uint64_t)n;
	}
	say("regrow:ok %llu bytes", (unsigned long long)final);
	return 0;
}

static int upgrade_writer(const char *path, unsigned int ranges, unsigned int seed, int in, int out)
{
	static uint8_t buf[1 << 16];
	int fd = open(path, O_RDWR);

	if (fd < 0) {
		say("upgrade:FAIL writer open: %s", strerror(errno));
		return 1;
	}
	for (unsigned int k = 0; k < ranges; k++) {
		char c;

		if (read(in, &c, 1) != 1)
			return 1;
		for (uint64_t pos = (uint64_t)k * RANGE; pos < (uint64_t)(k + 1) * RANGE;
		     pos += sizeof(buf)) {
			for (size_t i = 0; i < sizeof(buf); i++)
				buf[i] = pattern(pos + i, seed);
			if (pwrite(fd, buf, sizeof(buf), (off_t)pos) != (ssize_t)sizeof(buf)) {
				say("upgrade:FAIL pwrite at 0x%llx: %s", (unsigned long long)pos,
				    strerror(errno));
				return 1;
			}
		}
		if (write(out, "w", 1) != 1)
			return 1;
	}
	return 0;
}

static int cmd_upgrade(char **av)
{
	const char *path = av[0];
	unsigned int ranges = (unsigned int)num(av[1]);
	unsigned int seed_old = (unsigned int)num(av[2]), seed_new = (unsigned int)num(av[3]);
	int to_writer[2], to_reader[2], fd, status, rc = 0;
	unsigned long spins = 0;
	volatile const uint8_t *map;
	pid_t writer;

	fd = open(path, O_RDONLY);
	if (fd < 0 || pipe(to_writer) || pipe(to_reader)) {
		say("upgrade:FAIL open %s: %s", path, strerror(errno));
		return 1;
	}
	map = mmap(NULL, (size_t)ranges * RANGE, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		say("upgrade:FAIL mmap: %s", strerror(errno));
		return 1;
	}
	writer = fork();
	if (writer == 0)
		_exit(upgrade_writer(path, ranges, seed_new, to_writer[0], to_reader[1]));
	for (unsigned int k = 0; k < ranges && rc == 0; k++) {
		uint64_t base = (uint64_t)k * RANGE;
		struct pollfd p = { .fd = to_reader[0], .events = POLLIN };
		char c;

		/* First touch: the range's DAX mapping is set up read-only. */
		for (uint64_t o = base; o < base + RANGE; o++)
			if (map[o] != pattern(o, seed_old)) {
				rc = fail_at("upgrade", "read before", o, map[o], seed_old);
				break;
			}
		if (rc || write(to_writer[1], "r", 1) != 1)
			break;
		/* Keep touching every page while the writer upgrades the mapping. */
		while (poll(&p, 1, 0) == 0) {
			for (uint64_t o = base; o < base + RANGE; o += PAGE) {
				uint8_t v = map[o];

				if (v != pattern(o, seed_old) && v != pattern(o, seed_new)) {
					rc = fail_at("upgrade", "read during", o, v, seed_new);
					break;
				}
			}
			spins++;
			if (rc)
				break;
		}
		if (rc || read(to_reader[0], &c, 1) != 1)
			break;
		for (uint64_t o = base; o < base + RANGE; o++)
			if (map[o] != pattern(o, seed_new)) {
				rc = fail_at("upgrade", "read after", o, map[o], seed_new);
				break;
			}
	}
	close(to_writer[1]);
	if (waitpid(writer, &status, 0) != writer || !WIFEXITED(status) || WEXITSTATUS(status)) {
		if (!rc)
			say("upgrade:FAIL the writer failed (status 0x%x)", status);
		rc = 1;
	}
	if (!rc)
		say("upgrade:ok %u ranges, %lu passes over a range during its upgrade", ranges,
		    spins);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "tail") == 0)
		return cmd_tail(argv + 2);
	if (argc == 10 && strcmp(argv[1], "regrow") == 0)
		return cmd_regrow(argv + 2);
	if (argc == 6 && strcmp(argv[1], "upgrade") == 0)
		return cmd_upgrade(argv + 2);
	fprintf(stderr, "usage: daxtool tail|regrow|upgrade ... (see the source)\n");
	return 2;
}
