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
 *       Range by range (2 MiB each): a reader maps the range read-only
 *       (first touch) and keeps touching every page of it, as does a second
 *       reader process, while a writer process writes the new pattern into
 *       it with pwrite() (the read-to-write upgrade of the range's DAX
 *       mapping). The readers accept old or new bytes while the writer runs
 *       and only new ones after; the writer's data must reach the file.
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

/* The first byte of every page of range k, old and new. */
struct page_bytes {
	uint8_t old[RANGE / PAGE], new[RANGE / PAGE];
};

static void page_bytes(struct page_bytes *pb, unsigned int k, unsigned int seed_old,
		       unsigned int seed_new)
{
	for (unsigned int i = 0; i < RANGE / PAGE; i++) {
		uint64_t o = (uint64_t)k * RANGE + (uint64_t)i * PAGE;

		pb->old[i] = pattern(o, seed_old);
		pb->new[i] = pattern(o, seed_new);
	}
}

/*
 * Touch every page of range k until a byte arrives on stop; 0, or 1 after
 * printing the first byte that is neither old nor new.
 */
static int upgrade_spin(volatile const uint8_t *map, unsigned int k, const struct page_bytes *pb,
			int stop, unsigned long *passes)
{
	struct pollfd p = { .fd = stop, .events = POLLIN };
	volatile const uint8_t *r = map + (uint64_t)k * RANGE;

	while (poll(&p, 1, 0) == 0) {
		for (unsigned int i = 0; i < RANGE / PAGE; i++) {
			uint8_t v = r[(uint64_t)i * PAGE];

			if (v != pb->old[i] && v != pb->new[i]) {
				uint64_t o = (uint64_t)k * RANGE + (uint64_t)i * PAGE;

				say("upgrade:FAIL read during at 0x%llx: got 0x%02x, want 0x%02x or 0x%02x",
				    (unsigned long long)o, v, pb->old[i], pb->new[i]);
				return 1;
			}
		}
		(*passes)++;
	}
	return 0;
}

/* The second reader: spins on each range between 's' and 'e' from the first. */
static int upgrade_reader2(volatile const uint8_t *map, unsigned int ranges,
			   unsigned int seed_old, unsigned int seed_new, int in, int out)
{
	static struct page_bytes pb;
	unsigned long passes = 0;

	for (unsigned int k = 0; k < ranges; k++) {
		char c;

		if (read(in, &c, 1) != 1)
			return 1;
		page_bytes(&pb, k, seed_old, seed_new);
		if (upgrade_spin(map, k, &pb, in, &passes))
			return 1;
		if (read(in, &c, 1) != 1 || write(out, "a", 1) != 1)
			return 1;
	}
	return 0;
}

static int check_range(volatile const uint8_t *map, unsigned int k, unsigned int seed,
		       const char *how)
{
	for (uint64_t o = (uint64_t)k * RANGE; o < (uint64_t)(k + 1) * RANGE; o++)
		if (map[o] != pattern(o, seed))
			return fail_at("upgrade", how, o, map[o], seed);
	return 0;
}

static bool child_ok(pid_t pid)
{
	int status;

	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int cmd_upgrade(char **av)
{
	const char *path = av[0];
	unsigned int ranges = (unsigned int)num(av[1]);
	unsigned int seed_old = (unsigned int)num(av[2]), seed_new = (unsigned int)num(av[3]);
	int to_w[2], from_w[2], to_r2[2], from_r2[2], fd, rc = 0;
	static struct page_bytes pb;
	unsigned long passes = 0;
	volatile const uint8_t *map;
	pid_t writer, reader2;

	fd = open(path, O_RDONLY);
	if (fd < 0 || pipe(to_w) || pipe(from_w) || pipe(to_r2) || pipe(from_r2)) {
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
		_exit(upgrade_writer(path, ranges, seed_new, to_w[0], from_w[1]));
	reader2 = fork();
	if (reader2 == 0)
		_exit(upgrade_reader2(map, ranges, seed_old, seed_new, to_r2[0], from_r2[1]));
	for (unsigned int k = 0; k < ranges && rc == 0; k++) {
		char c;

		/* First touch: the range's DAX mapping is set up read-only. */
		rc = check_range(map, k, seed_old, "read before");
		page_bytes(&pb, k, seed_old, seed_new);
		if (rc || write(to_r2[1], "s", 1) != 1 || write(to_w[1], "r", 1) != 1)
			break;
		/* Both readers keep touching every page while the writer's first
		 * pwrite upgrades the range's mapping to read-write. */
		rc = upgrade_spin(map, k, &pb, from_w[0], &passes);
		if (rc || read(from_w[0], &c, 1) != 1)
			break;
		if (write(to_r2[1], "e", 1) != 1 || read(from_r2[0], &c, 1) != 1) {
			rc = 1;
			break;
		}
		rc = check_range(map, k, seed_new, "read after");
	}
	close(to_w[1]);
	close(to_r2[1]);
	if (!child_ok(writer)) {
		if (!rc)
			say("upgrade:FAIL the writer failed");
		rc = 1;
	}
	if (!child_ok(reader2)) {
		if (!rc)
			say("upgrade:FAIL the second reader failed");
		rc = 1;
	}
	if (!rc)
		say("upgrade:ok %u ranges, %lu passes over a range while it was written", ranges,
		    passes);
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
