/*
 * kc_stress: many threads of random DAX window accesses, FUSE reads and
 * writes, and extent changes (truncate, punch, zero, collapse, insert)
 * against a real fusedax server, through the kernel DAX client stand-in,
 * with every read checked against an in-memory model of each file.
 *
 * Usage: kc_stress [options] -- SERVER [ARGS...]   (one ARG is @MNT@)
 * Prints "kc_stress: N ops, M mismatches, F faults, E errors" and exits 0
 * only if M, F and E are 0 and the server survived and exited cleanly.
 *
 * With --host-changes it also plays other host processes (it needs
 * --host-dir): appends written straight into the host files, which the
 * client learns of only from a GETATTR (the "refresh" operation), and
 * host truncates, each followed by the GETATTR that tells the client. The
 * model then keeps two sizes per file: the host's and the client's.
 *
 * With --evict-many N it runs one scenario instead: N ranges of one sparse
 * file mapped at once, then the inode evicted, so its REMOVEMAPPING goes out
 * in several requests of up to 256 entries (see run_evict_many()).
 */
#include "kclient_dax.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_SHIFT 18	/* model lock granule: 256 KiB */
#define MAX_FILES 16
#define MAX_REPORTS 20	/* mismatch lines printed in full */

struct opts {
	unsigned threads, files;
	uint64_t ops, file_size, max_size, seed;
	size_t max_io;
	const char *host_dir;
	int inject_corruption;
	int timeout_ms;
	int quiet_server;
	int host_changes;	/* play other host processes too */
	unsigned evict_many;	/* ranges for the eviction scenario; 0: stress */
};

/*
 * One file: the client's inode plus the model of its expected bytes.
 *
 * host_size is the file's real size; the client's i_size (in.size) lags
 * behind it after a host append until a GETATTR, and is never larger
 * outside an exclusive hold of in.lock. Everything that changes
 * host_size holds in.lock exclusive, except host appends, which hold it
 * shared plus host_mutex (they write beyond in.size, where no client
 * access goes).
 */
struct kc_file {
	char name[32];
	struct kc_inode in;
	uint32_t blksize;
	uint64_t host_size;
	pthread_mutex_t host_mutex;	/* host appends of this file */
	int host_fd;			/* --host-changes: the host file, O_RDWR */
	/* Expected contents; bytes at and beyond host_size are always zero. */
	unsigned char *data;
	unsigned nchunks;
	pthread_rwlock_t *chunk;	/* byte ranges: readers vs writers */
};

enum op {
	OP_WIN_READ, OP_WIN_WRITE, OP_READ, OP_WRITE, OP_TRUNCATE, OP_PUNCH,
	OP_ZERO, OP_COLLAPSE, OP_INSERT, OP_REMOVEMAPPING, OP_RECLAIM, OP_VMM_SCAN,
	OP_OPEN_TRUNC, OP_HOST_APPEND, OP_HOST_TRUNCATE, OP_REFRESH, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"window-read", "window-write", "read", "write", "truncate", "punch",
	"zero", "collapse", "insert", "removemapping", "reclaim", "vmm-scan",
	"open-trunc", "host-append", "host-truncate", "refresh",
};

/* Out of 100; the second set with --host-changes. */
static const unsigned op_weight[OP_COUNT] = { 22, 21, 12, 12, 5, 5, 4, 4, 3, 4, 4, 3, 1 };
static const unsigned op_weight_host[OP_COUNT] = { 20, 18, 11, 11, 4, 4, 3, 3, 3, 3, 4, 3,
						   1, 6, 2, 4 };

static struct opts o = {
	.threads = 8, .files = 4, .ops = 100000, .file_size = 6 << 20,
	.max_size = 12 << 20, .seed = 1, .max_io = 64 << 10,
	.timeout_ms = KC_DEFAULT_TIMEOUT_MS,
};
static struct kc_conn conn;
static struct kc_dax dax;
static struct kc_file files[MAX_FILES];
static atomic_uint_fast64_t ops_started, ops_done;
static atomic_uint_fast64_t mismatches, errors, op_count[OP_COUNT];
static atomic_int collapse_unsupported, insert_unsupported, stop_all;

/* ---- small helpers ---- */

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static uint64_t rnd_below(uint64_t *x, uint64_t n)
{
	return n ? rnd(x) % n : 0;
}

static void fill_random(uint64_t *x, unsigned char *buf, size_t len)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = rnd(x);
		buf[i] = (unsigned char)(v >> (8 * (i % 8)));
	}
}

static void error_at(const struct kc_file *f, const char *what, int err)
{
	atomic_fetch_add(&errors, 1);
	fprintf(stderr, "kc_stress: ERROR %s on %s: %s\n", what, f ? f->name : "-",
		strerror(-err));
	if (conn.dead || conn.timed_out)
		atomic_store(&stop_all, 1);
}

/* Compare got with the model; one line per mismatching access. */
static void check_bytes(const struct kc_file *f, const char *via, uint64_t off,
			const unsigned char *got, size_t len)
{
	const unsigned char *want = f->data + off;
	size_t first, ndiff = 0;
	uint64_t n;

	if (memcmp(want, got, len) == 0)
		return;
	for (first = 0; want[first] == got[first]; first++)
		;
	for (size_t i = first; i < len; i++)
		ndiff += want[i] != got[i];
	n = atomic_fetch_add(&mismatches, 1);
	if (n < MAX_REPORTS)
		fprintf(stderr, "kc_stress: MISMATCH %s via %s at offset %llu: expected 0x%02x, "
			"got 0x%02x (%zu of %zu bytes differ from offset %llu)\n",
			f->name, via, (unsigned long long)(off + first), want[first], got[first],
			ndiff, len, (unsigned long long)off);
}

static void size_mismatch(const struct kc_file *f, const char *after, uint64_t want,
			  uint64_t got)
{
	atomic_fetch_add(&mismatches, 1);
	fprintf(stderr, "kc_stress: MISMATCH %s size after %s: expected %llu, got %llu\n",
		f->name, after, (unsigned long long)want, (unsigned long long)got);
}

/* Lock the model's chunks covering [off, off + len), in order. */
static void chunks_lock(struct kc_file *f, uint64_t off, uint64_t len, int write)
{
	if (!len)
		return;
	for (uint64_t c = off >> CHUNK_SHIFT; c <= (off + len - 1) >> CHUNK_SHIFT; c++) {
		if (write)
			pthread_rwlock_wrlock(&f->chunk[c]);
		else
			pthread_rwlock_rdlock(&f->chunk[c]);
	}
}

static void chunks_unlock(struct kc_file *f, uint64_t off, uint64_t len)
{
	if (!len)
		return;
	for (uint64_t c = off >> CHUNK_SHIFT; c <= (off + len - 1) >> CHUNK_SHIFT; c++)
		pthread_rwlock_unlock(&f->chunk[c]);
}

/* ---- FUSE requests ---- */

static int fuse_read(struct kc_file *f, uint64_t off, void *buf, size_t len, size_t *got)
{
	struct fuse_read_in a = { .fh = f->in.fh, .offset = off, .size = (uint32_t)len,
				  .flags = O_RDWR };
	struct iovec iov = { &a, sizeof(a) };

	return kc_call(&conn, FUSE_READ, f->in.nodeid, &iov, 1, buf, len, got);
}

static int fuse_write(struct kc_file *f, uint64_t off, const void *buf, size_t len)
{
	struct fuse_write_in a = { .fh = f->in.fh, .offset = off, .size = (uint32_t)len,
				   .flags = O_RDWR };
	struct iovec iov[2] = { { &a, sizeof(a) }, { (void *)buf, len } };
	struct fuse_write_out out;
	size_t outlen = 0;
	int err;

	err = kc_call(&conn, FUSE_WRITE, f->in.nodeid, iov, 2, &out, sizeof(out), &outlen);
	if (err)
		return err;
	if (outlen != sizeof(out) || out.size != len) {
		fprintf(stderr, "kc_stress: WRITE of %zu bytes at %llu on %s wrote %u\n", len,
			(unsigned long long)off, f->name, outlen == sizeof(out) ? out.size : 0);
		return -EIO;
	}
	return 0;
}

static int fuse_getattr(struct kc_file *f, struct fuse_attr *attr)
{
	struct fuse_getattr_in a = { .getattr_flags = FUSE_GETATTR_FH, .fh = f->in.fh };
	struct iovec iov = { &a, sizeof(a) };
	struct fuse_attr_out out;
	size_t outlen = 0;
	int err;

	err = kc_call(&conn, FUSE_GETATTR, f->in.nodeid, &iov, 1, &out, sizeof(out), &outlen);
	if (!err && outlen != sizeof(out))
		err = -EPROTO;
	if (!err)
		*attr = out.attr;
	return err;
}

static int fuse_truncate(struct kc_file *f, uint64_t size, struct fuse_attr *attr)
{
	struct fuse_setattr_in a = { .valid = FATTR_SIZE | FATTR_FH, .fh = f->in.fh,
				     .size = size };
	struct iovec iov = { &a, sizeof(a) };
	struct fuse_attr_out out;
	size_t outlen = 0;
	int err;

	err = kc_call(&conn, FUSE_SETATTR, f->in.nodeid, &iov, 1, &out, sizeof(out), &outlen);
	if (!err && outlen != sizeof(out))
		err = -EPROTO;
	if (!err)
		*attr = out.attr;
	return err;
}

static int fuse_fallocate(struct kc_file *f, uint32_t mode, uint64_t off, uint64_t len)
{
	struct fuse_fallocate_in a = { .fh = f->in.fh, .offset = off, .length = len,
				       .mode = mode };
	struct iovec iov = { &a, sizeof(a) };

	return kc_call(&conn, FUSE_FALLOCATE, f->in.nodeid, &iov, 1, NULL, 0, NULL);
}

/* After an extent change: i_size from the server, checked against the model. */
static void refresh_size(struct kc_file *f, const char *after, uint64_t want)
{
	struct fuse_attr attr;
	int err = fuse_getattr(f, &attr);

	if (err) {
		error_at(f, "GETATTR", err);
		return;
	}
	if (attr.size != want)
		size_mismatch(f, after, want, attr.size);
	f->in.size = attr.size;
	f->host_size = attr.size;
}

/* The file's real size now (host appends may be running: host_mutex). */
static uint64_t host_size_now(struct kc_file *f)
{
	uint64_t size;

	pthread_mutex_lock(&f->host_mutex);
	size = f->host_size;
	pthread_mutex_unlock(&f->host_mutex);
	return size;
}

/* ---- the operations ---- */

static void op_window_read(struct kc_file *f, uint64_t *x, unsigned char *buf)
{
	uint64_t off, want;
	size_t len = 1 + rnd_below(x, o.max_io);
	ssize_t n;

	pthread_rwlock_rdlock(&f->in.lock);
	off = rnd_below(x, f->in.size + 1);
	want = off < f->in.size ? f->in.size - off : 0;
	if (want > len)
		want = len;
	chunks_lock(f, off, want, 0);
	n = kc_dax_read(&dax, &f->in, off, buf, len);
	if (n == -EFAULT)
		;	/* a fault: counted and described by the client */
	else if (n < 0)
		error_at(f, "window read", (int)n);
	else if ((uint64_t)n != want)
		error_at(f, "window read (short)", -EIO);
	else
		check_bytes(f, "window", off, buf, want);
	chunks_unlock(f, off, want);
	pthread_rwlock_unlock(&f->in.lock);
}

/* After a failed window write the file's bytes there are unknown: re-read. */
static void resync_model(struct kc_file *f, uint64_t off, size_t len)
{
	size_t got = 0;

	if (fuse_read(f, off, f->data + off, len, &got) != 0 || got != len)
		error_at(f, "re-reading after a failed window write", -EIO);
}

static void op_window_write(struct kc_file *f, uint64_t *x, unsigned char *buf)
{
	uint64_t off;
	size_t len = 1 + rnd_below(x, o.max_io);
	ssize_t n;

	pthread_rwlock_rdlock(&f->in.lock);
	if (f->in.size == 0)
		goto out;	/* nothing to write in place; extending goes by WRITE */
	off = rnd_below(x, f->in.size);
	if (len > f->in.size - off)
		len = (size_t)(f->in.size - off);
	fill_random(x, buf, len);
	chunks_lock(f, off, len, 1);
	n = kc_dax_write(&dax, &f->in, off, buf, len);
	if (n == (ssize_t)len) {
		memcpy(f->data + off, buf, len);
	} else {
		if (n >= 0)
			error_at(f, "window write (short)", -EIO);
		else if (n != -EFAULT)	/* faults are counted by the client */
			error_at(f, "window write", (int)n);
		resync_model(f, off, len);
	}
	chunks_unlock(f, off, len);
out:
	pthread_rwlock_unlock(&f->in.lock);
}

static void op_read(struct kc_file *f, uint64_t *x, unsigned char *buf)
{
	size_t len = 1 + rnd_below(x, o.max_io), got = 0;
	uint64_t off, want, size;
	int err;

	pthread_rwlock_rdlock(&f->in.lock);
	size = host_size_now(f);
	off = rnd_below(x, size + (64 << 10));
	want = off < size ? size - off : 0;
	if (want > len)
		want = len;
	if (o.host_changes) {
		/* A host append may be landing beyond size: read up to it only. */
		if (!want)
			goto out;
		len = (size_t)want;
	}
	chunks_lock(f, off, want, 0);
	err = fuse_read(f, off, buf, len, &got);
	if (err)
		error_at(f, "READ", err);
	else if (got != want)
		size_mismatch(f, "READ (reply length)", want, got);
	else
		check_bytes(f, "READ", off, buf, want);
	chunks_unlock(f, off, want);
out:
	pthread_rwlock_unlock(&f->in.lock);
}

static void op_write(struct kc_file *f, uint64_t *x, unsigned char *buf)
{
	size_t len = 1 + rnd_below(x, o.max_io);
	uint64_t off;
	int extending, err;

	/* Peek at the size to choose; an extending write is an exclusive one. */
	pthread_rwlock_rdlock(&f->in.lock);
	off = rnd_below(x, f->in.size + (128 << 10));
	if (off >= o.max_size)
		off = o.max_size - 1;
	if (len > o.max_size - off)
		len = (size_t)(o.max_size - off);
	extending = off + len > f->in.size;
	if (extending) {
		pthread_rwlock_unlock(&f->in.lock);
		pthread_rwlock_wrlock(&f->in.lock);
		extending = off + len > f->in.size;	/* it may have changed */
	}
	fill_random(x, buf, len);
	if (!extending)
		chunks_lock(f, off, len, 1);
	err = fuse_write(f, off, buf, len);
	if (err) {
		error_at(f, "WRITE", err);
		resync_model(f, off, len);
	} else {
		memcpy(f->data + off, buf, len);
		/* The kernel's i_size after a write: the end of what was written. */
		if (off + len > f->in.size)
			f->in.size = off + len;
		if (off + len > f->host_size)
			f->host_size = off + len;	/* extending: in.lock exclusive */
	}
	if (!extending)
		chunks_unlock(f, off, len);
	pthread_rwlock_unlock(&f->in.lock);
}

static void op_truncate(struct kc_file *f, uint64_t *x)
{
	struct fuse_attr attr;
	uint64_t size;
	int err;

	pthread_rwlock_wrlock(&f->in.lock);	/* break layout: wait for our accesses */
	if (rnd(x) & 1)
		size = rnd_below(x, f->host_size + 1);
	else
		size = f->host_size + rnd_below(x, o.max_size - f->host_size + 1);
	err = fuse_truncate(f, size, &attr);
	if (err) {
		error_at(f, "SETATTR size", err);
	} else {
		if (size < f->host_size)
			memset(f->data + size, 0, f->host_size - size);
		if (attr.size != size)
			size_mismatch(f, "truncate", size, attr.size);
		f->in.size = attr.size;
		f->host_size = attr.size;
	}
	pthread_rwlock_unlock(&f->in.lock);
}

static void op_punch_or_zero(struct kc_file *f, uint64_t *x, int zero)
{
	uint64_t off, len, end, new_size;
	uint32_t mode;
	int keep, err;

	pthread_rwlock_wrlock(&f->in.lock);
	off = rnd_below(x, f->host_size + 1);
	len = 1 + rnd_below(x, 1 << 20);
	if (off >= o.max_size)
		off = o.max_size - 1;
	if (len > o.max_size - off)
		len = o.max_size - off;
	keep = !zero || (rnd(x) & 1);
	mode = zero ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE;
	if (keep)
		mode |= FALLOC_FL_KEEP_SIZE;
	err = fuse_fallocate(f, mode, off, len);
	if (err) {
		error_at(f, zero ? "FALLOCATE zero range" : "FALLOCATE punch hole", err);
		goto out;
	}
	end = off + len;
	new_size = !keep && end > f->host_size ? end : f->host_size;
	if (end > new_size)
		end = new_size;
	if (off < end)
		memset(f->data + off, 0, end - off);
	refresh_size(f, zero ? "zero range" : "punch hole", new_size);
out:
	pthread_rwlock_unlock(&f->in.lock);
}

/* open(O_TRUNC): with FUSE_ATOMIC_O_TRUNC the server truncates in OPEN. */
static void op_open_trunc(struct kc_file *f)
{
	struct fuse_open_in a = { .flags = O_RDWR | O_TRUNC };
	struct iovec iov = { &a, sizeof(a) };
	struct fuse_release_in r = { .flags = O_RDWR };
	struct fuse_open_out out;
	size_t outlen = 0;
	int err;

	pthread_rwlock_wrlock(&f->in.lock);	/* the kernel breaks layouts here too */
	err = kc_call(&conn, FUSE_OPEN, f->in.nodeid, &iov, 1, &out, sizeof(out), &outlen);
	if (!err && outlen != sizeof(out))
		err = -EPROTO;
	if (err) {
		error_at(f, "OPEN O_TRUNC", err);
		goto out;
	}
	memset(f->data, 0, f->host_size);
	refresh_size(f, "open O_TRUNC", 0);
	r.fh = out.fh;
	iov = (struct iovec){ &r, sizeof(r) };
	err = kc_call(&conn, FUSE_RELEASE, f->in.nodeid, &iov, 1, NULL, 0, NULL);
	if (err)
		error_at(f, "RELEASE", err);
out:
	pthread_rwlock_unlock(&f->in.lock);
}

/* Collapse or insert range: block-aligned, so only some files qualify. */
static int shift_range(struct kc_file *f, uint64_t *x, int insert)
{
	atomic_int *unsupported = insert ? &insert_unsupported : &collapse_unsupported;
	uint64_t blk = f->blksize, nblocks, off, len, size;
	int err, done = 0;

	if (atomic_load(unsupported))
		return 0;
	pthread_rwlock_wrlock(&f->in.lock);
	size = f->host_size;
	nblocks = size / blk;
	if (insert) {
		/* The kernel wants off inside the file and room to grow. */
		if (nblocks < 1 || size + blk > o.max_size)
			goto out;
		off = rnd_below(x, nblocks) * blk;
		len = (1 + rnd_below(x, 64)) * blk;
		if (size + len > o.max_size)
			len = (o.max_size - size) / blk * blk;
	} else {
		/* ... and for collapse, a range that ends before EOF. */
		if (nblocks < 2)
			goto out;
		off = rnd_below(x, nblocks - 1) * blk;
		len = (1 + rnd_below(x, 64)) * blk;
		if (off + len >= size)
			len = (size - 1 - off) / blk * blk;
		if (!len)
			goto out;
	}
	err = fuse_fallocate(f, insert ? FALLOC_FL_INSERT_RANGE : FALLOC_FL_COLLAPSE_RANGE,
			     off, len);
	done = 1;
	if (err == -EOPNOTSUPP) {
		if (!atomic_exchange(unsupported, 1))
			fprintf(stderr, "kc_stress: %s range: the server says EOPNOTSUPP; "
				"left out of the model from now on\n",
				insert ? "insert" : "collapse");
		goto out;
	}
	if (err) {
		error_at(f, insert ? "FALLOCATE insert range" : "FALLOCATE collapse range", err);
		goto out;
	}
	if (insert) {
		memmove(f->data + off + len, f->data + off, size - off);
		memset(f->data + off, 0, len);
		size += len;
	} else {
		memmove(f->data + off, f->data + off + len, size - off - len);
		memset(f->data + size - len, 0, len);
		size -= len;
	}
	refresh_size(f, insert ? "insert range" : "collapse range", size);
out:
	pthread_rwlock_unlock(&f->in.lock);
	return done;
}

/*
 * Another host process appends to the file. The client hears of it only
 * from its next GETATTR (op_refresh); until then its accesses stop at its
 * own i_size, below what is being written here.
 */
static void op_host_append(struct kc_file *f, uint64_t *x, unsigned char *buf)
{
	size_t len = 1 + rnd_below(x, o.max_io);
	uint64_t off;
	ssize_t n;

	pthread_rwlock_rdlock(&f->in.lock);	/* no extent change of the client's */
	pthread_mutex_lock(&f->host_mutex);
	off = f->host_size;
	if (len > o.max_size - off)
		len = (size_t)(o.max_size - off);
	if (len) {
		fill_random(x, buf, len);
		n = pwrite(f->host_fd, buf, len, (off_t)off);
		if (n != (ssize_t)len) {
			error_at(f, "host append", n < 0 ? -errno : -EIO);
		} else {
			memcpy(f->data + off, buf, len);
			f->host_size = off + len;
		}
	}
	pthread_mutex_unlock(&f->host_mutex);
	pthread_rwlock_unlock(&f->in.lock);
}

/*
 * Another host process truncates the file, and the client learns of it at
 * once (GETATTR). Until the server has clipped the window, pages beyond
 * the new end would fault in whoever touched them (doc/dax.md, "What
 * remains"), so the client's accesses and the VMM's reads of this file
 * wait; everything else races on.
 */
static void op_host_truncate(struct kc_file *f, uint64_t *x)
{
	uint64_t size;

	pthread_rwlock_wrlock(&f->in.lock);
	pthread_rwlock_wrlock(&f->in.host_lock);
	size = rnd_below(x, f->host_size + 1);
	if (ftruncate(f->host_fd, (off_t)size) != 0) {
		error_at(f, "host truncate", -errno);
	} else {
		memset(f->data + size, 0, f->host_size - size);
		f->host_size = size;
		refresh_size(f, "a host truncate (GETATTR)", size);
	}
	pthread_rwlock_unlock(&f->in.host_lock);
	pthread_rwlock_unlock(&f->in.lock);
}

/* GETATTR: the client learns what host appends did to the size. */
static void op_refresh(struct kc_file *f)
{
	pthread_rwlock_wrlock(&f->in.lock);
	refresh_size(f, "host appends (GETATTR)", f->host_size);
	pthread_rwlock_unlock(&f->in.lock);
}

static enum op pick_op(uint64_t *x)
{
	const unsigned *weight = o.host_changes ? op_weight_host : op_weight;
	unsigned r = (unsigned)rnd_below(x, 100), acc = 0;

	for (int i = 0; i < OP_COUNT; i++) {
		acc += weight[i];
		if (r < acc)
			return (enum op)i;
	}
	return OP_WIN_READ;
}

static void run_one(uint64_t *x, unsigned char *buf)
{
	struct kc_file *f = &files[rnd_below(x, o.files)];
	enum op op = pick_op(x);
	int err;

	switch (op) {
	case OP_WIN_READ: op_window_read(f, x, buf); break;
	case OP_WIN_WRITE: op_window_write(f, x, buf); break;
	case OP_READ: op_read(f, x, buf); break;
	case OP_WRITE: op_write(f, x, buf); break;
	case OP_TRUNCATE: op_truncate(f, x); break;
	case OP_PUNCH: op_punch_or_zero(f, x, 0); break;
	case OP_ZERO: op_punch_or_zero(f, x, 1); break;
	case OP_COLLAPSE:
	case OP_INSERT:
		if (!shift_range(f, x, op == OP_INSERT))
			op = OP_TRUNCATE, op_truncate(f, x);
		break;
	case OP_REMOVEMAPPING:
		err = kc_dax_remove_random(&dax, 1 + (unsigned)rnd_below(x, 4), x);
		if (err < 0)
			atomic_store(&stop_all, conn.dead || conn.timed_out);
		break;
	case OP_RECLAIM:
		err = kc_dax_reclaim(&dax, 1 + (unsigned)rnd_below(x, 3));
		if (err < 0)
			atomic_store(&stop_all, conn.dead || conn.timed_out);
		break;
	case OP_OPEN_TRUNC: op_open_trunc(f); break;
	case OP_HOST_APPEND: op_host_append(f, x, buf); break;
	case OP_HOST_TRUNCATE: op_host_truncate(f, x); break;
	case OP_REFRESH: op_refresh(f); break;
	case OP_VMM_SCAN:
		err = kc_dax_vmm_scan(&dax, 1, x);
		if (err < 0 && err != -EFAULT)
			error_at(NULL, "VMM read of the window", err);
		break;
	default:
		break;
	}
	atomic_fetch_add(&op_count[op], 1);
}

static void *worker(void *arg)
{
	uint64_t x = o.seed * 0x9E3779B97F4A7C15ULL + (uintptr_t)arg * 7919 + 1;
	unsigned char *buf = malloc(o.max_io);
	uint64_t step = o.ops / 10 ? o.ops / 10 : 1;

	while (buf && !atomic_load(&stop_all)) {
		uint64_t n = atomic_fetch_add(&ops_started, 1);

		if (n >= o.ops)
			break;
		run_one(&x, buf);
		n = atomic_fetch_add(&ops_done, 1) + 1;
		if (n % step == 0)
			fprintf(stderr, "kc_stress: %llu/%llu ops (%llu%%), %llu mismatches, "
				"%llu faults, %llu errors\n", (unsigned long long)n,
				(unsigned long long)o.ops, (unsigned long long)(n * 100 / o.ops),
				(unsigned long long)atomic_load(&mismatches),
				(unsigned long long)dax.st.faults,
				(unsigned long long)atomic_load(&errors));
	}
	free(buf);
	return NULL;
}

/* A stuck run is a failure with a diagnosis, not a hang. */
static void *watchdog(void *arg)
{
	unsigned limit_s = (unsigned)(o.timeout_ms / 1000) + 15, still = 0;
	uint64_t last = 0;

	(void)arg;
	for (;;) {
		uint64_t now;

		sleep(1);
		now = atomic_load(&ops_done);
		if (now >= o.ops || atomic_load(&stop_all))
			return NULL;
		still = now == last ? still + 1 : 0;
		last = now;
		if (still >= limit_s) {
			fprintf(stderr, "kc_stress: DEADLOCK: no operation finished for %u s\n",
				still);
			kc_dump_pending(&conn);
			kc_kill(&conn);
			printf("kc_stress: %llu ops, %llu mismatches, %llu faults, %llu errors\n",
			       (unsigned long long)now, (unsigned long long)atomic_load(&mismatches),
			       (unsigned long long)dax.st.faults,
			       (unsigned long long)atomic_load(&errors) + 1);
			fflush(stdout);
			_exit(1);
		}
	}
}

/* ---- set-up ---- */

static int do_init(uint32_t *max_write)
{
	struct fuse_init_in in = {
		.major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION,
		.max_readahead = 128 << 10,
		/* What a Linux 6.x virtio-fs guest mounted with -o dax offers. */
		.flags = FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT | FUSE_BIG_WRITES |
			 FUSE_MAX_PAGES | FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS |
			 FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_ATOMIC_O_TRUNC |
			 FUSE_EXPORT_SUPPORT | FUSE_AUTO_INVAL_DATA |
			 FUSE_HANDLE_KILLPRIV_V2,
	};
	struct iovec iov = { &in, sizeof(in) };
	struct fuse_init_out out;
	size_t outlen = 0;
	int err;

	memset(&out, 0, sizeof(out));
	err = kc_call(&conn, FUSE_INIT, 0, &iov, 1, &out, sizeof(out), &outlen);
	if (err) {
		fprintf(stderr, "kc_stress: INIT failed: %s\n", strerror(-err));
		return err;
	}
	if (outlen < FUSE_COMPAT_22_INIT_OUT_SIZE || out.major != FUSE_KERNEL_VERSION) {
		fprintf(stderr, "kc_stress: INIT reply: %zu bytes, major %u\n", outlen, out.major);
		return -EPROTO;
	}
	if (!(out.flags & FUSE_MAP_ALIGNMENT)) {
		fprintf(stderr, "kc_stress: the server did not negotiate DAX "
			"(no FUSE_MAP_ALIGNMENT in its INIT reply)\n");
		return -ENOTSUP;
	}
	if (out.map_alignment > KC_RANGE_SHIFT) {
		fprintf(stderr, "kc_stress: map_alignment %u: above 2 MiB, the Linux client "
			"would refuse it\n", out.map_alignment);
		return -EPROTO;
	}
	*max_write = out.max_write;
	fprintf(stderr, "kc_stress: INIT %u.%u, map_alignment %u, max_write %u\n",
		out.major, out.minor, out.map_alignment, out.max_write);
	return 0;
}

/* CREATE kcf<idx> (empty, open O_RDWR) as f->in, for sizes up to max_size. */
static int create_inode(struct kc_file *f, unsigned idx, uint64_t max_size)
{
	struct fuse_create_in a = { .flags = O_RDWR | O_CREAT | O_EXCL,
				    .mode = S_IFREG | 0644 };
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out op;
	} out;
	struct iovec iov[2];
	size_t outlen = 0;
	int err;

	snprintf(f->name, sizeof(f->name), "kcf%u", idx);
	iov[0] = (struct iovec){ &a, sizeof(a) };
	iov[1] = (struct iovec){ f->name, strlen(f->name) + 1 };
	err = kc_call(&conn, FUSE_CREATE, FUSE_ROOT_ID, iov, 2, &out, sizeof(out), &outlen);
	if (!err && outlen != sizeof(out))
		err = -EPROTO;
	if (err) {
		fprintf(stderr, "kc_stress: CREATE %s: %s\n", f->name, strerror(-err));
		return err;
	}
	f->blksize = out.e.attr.blksize >= 4096 ? out.e.attr.blksize : 4096;
	err = kc_inode_init(&f->in, out.e.nodeid, out.op.fh, out.e.attr.size, max_size);
	if (err)
		return err;
	if (f->in.size != 0) {
		fprintf(stderr, "kc_stress: %s: a new file with %llu bytes\n", f->name,
			(unsigned long long)f->in.size);
		return -EEXIST;
	}
	return 0;
}

/* A file for the stress: its inode plus a model of o.max_size zero bytes. */
static int create_file(struct kc_file *f, unsigned idx)
{
	int err = create_inode(f, idx, o.max_size);

	if (err)
		return err;
	f->host_fd = -1;
	pthread_mutex_init(&f->host_mutex, NULL);
	if (o.host_changes) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", o.host_dir, f->name);
		f->host_fd = open(path, O_RDWR | O_CLOEXEC);
		if (f->host_fd < 0) {
			fprintf(stderr, "kc_stress: --host-changes: opening %s: %s\n", path,
				strerror(errno));
			return -errno;
		}
	}
	f->data = calloc(1, o.max_size);
	f->nchunks = (unsigned)((o.max_size + (1 << CHUNK_SHIFT) - 1) >> CHUNK_SHIFT);
	f->chunk = calloc(f->nchunks, sizeof(*f->chunk));
	if (!f->data || !f->chunk)
		return -ENOMEM;
	for (unsigned c = 0; c < f->nchunks; c++)
		pthread_rwlock_init(&f->chunk[c], NULL);
	return 0;
}

/* Fill a new file with random data by extending FUSE_WRITEs. */
static int fill_file(struct kc_file *f, uint64_t *x)
{
	unsigned char *buf = malloc(o.max_io);
	int err = 0;

	for (uint64_t off = 0; buf && !err && off < o.file_size; off += o.max_io) {
		size_t len = o.file_size - off < o.max_io ? o.file_size - off : o.max_io;

		fill_random(x, buf, len);
		err = fuse_write(f, off, buf, len);
		memcpy(f->data + off, buf, len);
		f->in.size = off + len;
		f->host_size = off + len;
	}
	free(buf);
	return buf ? err : -ENOMEM;
}

/* ---- the end ---- */

static void verify_file(struct kc_file *f, unsigned char *buf)
{
	struct fuse_attr attr;
	size_t got;
	int err;

	err = fuse_getattr(f, &attr);
	if (err)
		error_at(f, "final GETATTR", err);
	else if (attr.size != f->host_size)
		size_mismatch(f, "the run (GETATTR)", f->host_size, attr.size);
	else
		f->in.size = attr.size;	/* the client learns the last host appends */
	for (uint64_t off = 0; off < f->in.size; off += o.max_io) {
		size_t len = f->in.size - off < o.max_io ? f->in.size - off : o.max_io;
		ssize_t n;

		err = fuse_read(f, off, buf, len, &got);
		if (err || got != len) {
			error_at(f, "final READ", err ? err : -EIO);
			return;
		}
		check_bytes(f, "final READ", off, buf, len);
		n = kc_dax_read(&dax, &f->in, off, buf, len);
		if (n != (ssize_t)len) {
			error_at(f, "final window read", n < 0 ? (int)n : -EIO);
			return;
		}
		check_bytes(f, "final window read", off, buf, len);
	}
}

static void verify_host_file(struct kc_file *f, unsigned char *buf)
{
	char path[4096];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", o.host_dir, f->name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		error_at(f, "opening the host file", -errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	if ((uint64_t)st.st_size != f->host_size)
		size_mismatch(f, "the run (host file)", f->host_size, (uint64_t)st.st_size);
	for (uint64_t off = 0; off < f->host_size && off < (uint64_t)st.st_size;
	     off += o.max_io) {
		size_t len = f->host_size - off < o.max_io ? f->host_size - off : o.max_io;
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n != (ssize_t)len) {
			if ((uint64_t)st.st_size >= off + len)
				error_at(f, "reading the host file", n < 0 ? -errno : -EIO);
			break;
		}
		check_bytes(f, "host file", off, buf, len);
	}
	close(fd);
}

/* Behind the model's back: the checker must notice. */
static int inject_corruption(void)
{
	struct kc_file *f = NULL;
	char path[4096];
	unsigned char b;
	uint64_t off;
	int fd;

	if (!o.host_dir) {
		fprintf(stderr, "kc_stress: --inject-corruption needs --host-dir\n");
		return -EINVAL;
	}
	/* The first file the run left non-empty (an O_TRUNC may end it empty). */
	for (unsigned i = 0; i < o.files && !f; i++)
		if (files[i].in.size)
			f = &files[i];
	if (!f) {
		fprintf(stderr, "kc_stress: --inject-corruption: every file is empty\n");
		return -ENODATA;
	}
	off = f->in.size / 2;
	b = f->data[off] ^ 0x5a;
	snprintf(path, sizeof(path), "%s/%s", o.host_dir, f->name);
	fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, &b, 1, (off_t)off) != 1) {
		fprintf(stderr, "kc_stress: corrupting %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	close(fd);
	fprintf(stderr, "kc_stress: injected a wrong byte into %s at offset %llu\n", path,
		(unsigned long long)off);
	return 0;
}

static void release_file(struct kc_file *f)
{
	struct fuse_release_in r = { .fh = f->in.fh, .flags = O_RDWR };
	struct fuse_forget_in fg = { .nlookup = 1 };
	struct iovec iov = { &r, sizeof(r) };
	int err;

	/* Eviction: the kernel removes the inode's mappings, then forgets it. */
	pthread_rwlock_wrlock(&f->in.lock);
	err = kc_dax_evict_inode(&dax, &f->in);
	pthread_rwlock_unlock(&f->in.lock);
	if (err < 0)
		error_at(f, "REMOVEMAPPING on eviction", err);
	err = kc_call(&conn, FUSE_RELEASE, f->in.nodeid, &iov, 1, NULL, 0, NULL);
	if (err)
		error_at(f, "RELEASE", err);
	iov = (struct iovec){ &fg, sizeof(fg) };
	err = kc_send_noreply(&conn, FUSE_FORGET, f->in.nodeid, &iov, 1);
	if (err)
		error_at(f, "FORGET", err);
}

/* ---- the eviction scenario (--evict-many) ---- */

/* Where range r of the eviction file keeps its marker: a different page each. */
static uint64_t evict_mark_offset(uint64_t r)
{
	return (r << KC_RANGE_SHIFT) + ((r * 37) % (KC_RANGE_SIZE / 4096)) * 4096 + 100;
}

/* The 16 non-zero bytes written at range r's marker. */
static void evict_mark(uint64_t r, unsigned char mark[16])
{
	char text[17];

	snprintf(text, sizeof(text), "evict-%08llx!", (unsigned long long)r);
	memcpy(mark, text, 16);
}

/*
 * Does the window range of slot s show anything but zeros? Page by page:
 * an unreachable page (EFAULT, what the local window makes of an unmapped
 * range) shows nothing. Returns 1 (the first non-zero byte's window offset
 * in *where), 0, or a negative errno other than EFAULT.
 */
static int slot_shows_data(unsigned s, uint64_t *where)
{
	static unsigned char page[4096];
	uint64_t base = (uint64_t)s << KC_RANGE_SHIFT;

	for (uint64_t off = 0; off < KC_RANGE_SIZE; off += sizeof(page)) {
		int err = kc_window_read(&conn, base + off, page, sizeof(page));

		if (err == -EFAULT)
			continue;
		if (err)
			return err;
		for (size_t i = 0; i < sizeof(page); i++)
			if (page[i]) {
				*where = base + off + i;
				return 1;
			}
	}
	return 0;
}

/*
 * One sparse file of N ranges of 2 MiB (grown by SETATTR), every range
 * mapped READ|WRITE by a 16-byte store through the window (nothing else may
 * remove a range: the background reclaimer is stopped and the window must
 * have a slot for each), then the inode evicted: kc_dax_evict_inode() must
 * send its N removals as REMOVEMAPPING requests of at most 256 entries, and
 * the server must accept every one. Before the eviction each range's marker
 * is checked through the window (the check below can see file data); after
 * it, no window range that held one of them may show any (each page is
 * unreachable or zeros), while FUSE_READ still finds every marker in the
 * file. Returns the number of failed checks.
 */
static unsigned run_evict_many(void)
{
	struct kc_file *f = &files[0];
	uint64_t n = o.evict_many, size = n << KC_RANGE_SHIFT;
	struct kc_dax_stats before, after;
	unsigned char mark[16], got[16];
	unsigned *slot = NULL;
	unsigned bad = 0, mapped = 0, shown_before = 0, shown_after = 0, in_file = 0;
	unsigned missing = 0;
	struct fuse_attr attr;
	int err;

	kc_dax_stop(&dax);	/* no reclaim: the eviction is the only removal */
	if (dax.nslots < n) {
		fprintf(stderr, "kc_stress: evict-many: the window has %u slots of 2 MiB, "
			"fewer than the %llu ranges asked for\n", dax.nslots,
			(unsigned long long)n);
		return 1;
	}
	slot = calloc(n, sizeof(*slot));
	err = slot ? create_inode(f, 0, size) : -ENOMEM;
	if (!err)
		err = fuse_truncate(f, size, &attr);
	if (err) {
		error_at(f, "evict-many set-up (CREATE, SETATTR size)", err);
		free(slot);
		return 1;
	}
	if (attr.size != size) {
		size_mismatch(f, "SETATTR size", size, attr.size);
		free(slot);
		return 1;
	}
	f->in.size = attr.size;

	/* Map every range by touching it, as a write fault in it would. */
	pthread_rwlock_rdlock(&f->in.lock);
	for (uint64_t r = 0; r < n; r++) {
		ssize_t done;

		evict_mark(r, mark);
		done = kc_dax_write(&dax, &f->in, evict_mark_offset(r), mark, sizeof(mark));
		if (done != (ssize_t)sizeof(mark)) {
			error_at(f, "window store of a range's marker", done < 0 ? (int)done : -EIO);
			bad++;
			break;
		}
	}
	pthread_mutex_lock(&dax.lock);
	for (uint64_t r = 0; r < n; r++) {
		int s = f->in.range_slot[r];

		if (s >= 0 && dax.slots[s].state == KC_SLOT_MAPPED && dax.slots[s].writable) {
			slot[r] = (unsigned)s;
			mapped++;
		}
	}
	before = dax.st;
	pthread_mutex_unlock(&dax.lock);
	pthread_rwlock_unlock(&f->in.lock);
	if (mapped != n) {
		fprintf(stderr, "kc_stress: evict-many: only %u of %llu ranges mapped read-write\n",
			mapped, (unsigned long long)n);
		bad++;
	}

	/* The check can see file data: every marker shows in the window now. */
	for (uint64_t r = 0; r < n && mapped == n; r++) {
		uint64_t in_range = evict_mark_offset(r) & (KC_RANGE_SIZE - 1);

		evict_mark(r, mark);
		err = kc_window_read(&conn, ((uint64_t)slot[r] << KC_RANGE_SHIFT) + in_range, got,
				     sizeof(got));
		if (!err && memcmp(got, mark, sizeof(mark)) == 0)
			shown_before++;
		else if (missing++ < MAX_REPORTS)
			fprintf(stderr, "kc_stress: evict-many: range %llu (slot %u) does not show "
				"its marker before eviction: %s\n", (unsigned long long)r, slot[r],
				err ? strerror(-err) : "other bytes");
	}

	/* Eviction: every range, in batches of up to 256. */
	pthread_rwlock_wrlock(&f->in.lock);
	err = kc_dax_evict_inode(&dax, &f->in);
	pthread_rwlock_unlock(&f->in.lock);
	pthread_mutex_lock(&dax.lock);
	after = dax.st;
	pthread_mutex_unlock(&dax.lock);
	if (err < 0)
		error_at(f, "REMOVEMAPPING on eviction", err);
	else if ((uint64_t)err != mapped)
		error_at(f, "eviction (ranges removed != ranges mapped)", -EIO);

	/* Nothing of the file is left in the window, yet the file has it all. */
	for (uint64_t r = 0; r < n && mapped == n; r++) {
		uint64_t where = 0;
		size_t len = 0;
		int shows = slot_shows_data(slot[r], &where);

		if (shows < 0) {
			error_at(f, "reading the window after eviction", shows);
			break;
		}
		if (shows && shown_after++ < MAX_REPORTS)
			fprintf(stderr, "kc_stress: evict-many: after eviction, slot %u (file range "
				"%llu) shows data at window offset %llu\n", slot[r],
				(unsigned long long)r, (unsigned long long)where);
		evict_mark(r, mark);
		err = fuse_read(f, evict_mark_offset(r), got, sizeof(got), &len);
		if (!err && len == sizeof(got) && memcmp(got, mark, sizeof(mark)) == 0)
			in_file++;
	}
	printf("kc_stress: evict-many: %u of %llu ranges mapped, %u showed their marker; "
	       "eviction sent %llu REMOVEMAPPING requests for %llu ranges (largest %llu entries, "
	       "%llu of 256), %llu failed; after it %u ranges show file data, %u markers "
	       "in the file\n", mapped, (unsigned long long)n, shown_before,
	       (unsigned long long)(after.remove_requests - before.remove_requests),
	       (unsigned long long)(after.removed_ranges - before.removed_ranges),
	       (unsigned long long)after.remove_largest,
	       (unsigned long long)(after.remove_full - before.remove_full),
	       (unsigned long long)(after.errors - before.errors), shown_after, in_file);
	if (shown_before != n || shown_after || in_file != n)
		bad++;
	if (after.remove_requests - before.remove_requests < (n + 255) / 256 ||
	    after.removed_ranges - before.removed_ranges != n ||
	    (n >= 256 && after.remove_full == before.remove_full) ||
	    after.errors != before.errors)
		bad++;
	release_file(f);
	free(slot);
	return bad;
}

/* ---- main ---- */

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [options] -- SERVER [ARGS...]\n"
		"  one of ARGS must be %s: it becomes /dev/fd/N, the server's connection\n"
		"  -t, --threads N        worker threads (8)\n"
		"  -n, --ops N            operations in all (100000)\n"
		"  -f, --files N          files (4, at most %d)\n"
		"  -s, --file-size BYTES  initial size of each file (6 MiB)\n"
		"  -m, --max-size BYTES   largest size a file may grow to (12 MiB)\n"
		"  -i, --max-io BYTES     largest single access (64 KiB)\n"
		"  -r, --seed N           random seed (1)\n"
		"  -H, --host-dir DIR     the server's backing directory: verify it at the end\n"
		"  -C, --inject-corruption  write a wrong byte into a host file before the\n"
		"                         final check (needs -H; the run must then fail)\n"
		"  -T, --timeout-ms N     per request (30000)\n"
		"  -q, --quiet-server     do not forward the server's stderr\n"
		"  -X, --host-changes     play other host processes too: appends and\n"
		"                         truncates of the host files (needs -H)\n"
		"  -E, --evict-many N     instead of the stress: map N 2 MiB ranges of one\n"
		"                         sparse file, evict it, check the batched REMOVEMAPPING\n",
		prog, KC_MOUNT_PLACEHOLDER, MAX_FILES);
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", 1, NULL, 't' }, { "ops", 1, NULL, 'n' },
		{ "files", 1, NULL, 'f' }, { "file-size", 1, NULL, 's' },
		{ "max-size", 1, NULL, 'm' }, { "max-io", 1, NULL, 'i' },
		{ "seed", 1, NULL, 'r' }, { "host-dir", 1, NULL, 'H' },
		{ "inject-corruption", 0, NULL, 'C' }, { "timeout-ms", 1, NULL, 'T' },
		{ "quiet-server", 0, NULL, 'q' }, { "evict-many", 1, NULL, 'E' },
		{ "host-changes", 0, NULL, 'X' },
		{ "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "+t:n:f:s:m:i:r:H:CT:qE:Xh", lo, NULL)) != -1) {
		switch (c) {
		case 't': o.threads = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'n': o.ops = strtoull(optarg, NULL, 0); break;
		case 'f': o.files = (unsigned)strtoul(optarg, NULL, 0); break;
		case 's': o.file_size = strtoull(optarg, NULL, 0); break;
		case 'm': o.max_size = strtoull(optarg, NULL, 0); break;
		case 'i': o.max_io = strtoull(optarg, NULL, 0); break;
		case 'r': o.seed = strtoull(optarg, NULL, 0); break;
		case 'H': o.host_dir = optarg; break;
		case 'C': o.inject_corruption = 1; break;
		case 'T': o.timeout_ms = atoi(optarg); break;
		case 'q': o.quiet_server = 1; break;
		case 'E': o.evict_many = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'X': o.host_changes = 1; break;
		default: usage(argv[0]); return -1;
		}
	}
	if (optind >= argc || o.threads < 1 || o.files < 1 || o.files > MAX_FILES ||
	    o.max_io < 1 || o.max_io > KC_MAX_REPLY || o.file_size > o.max_size ||
	    o.max_size < 2 * o.max_io || o.timeout_ms < 100 ||
	    (o.host_changes && !o.host_dir)) {
		usage(argv[0]);
		return -1;
	}
	return optind;
}

static int setup(uint64_t *seed)
{
	uint32_t max_write = 0;
	int err;

	err = do_init(&max_write);
	if (err)
		return err;
	if (max_write < o.max_io) {
		fprintf(stderr, "kc_stress: the server's max_write is %u: accesses capped there\n",
			max_write);
		o.max_io = max_write;
	}
	if (kc_wait_window(&conn, 10000) != 0) {
		fprintf(stderr, "kc_stress: the server never logged \"DAX window: local, "
			"<size> bytes at <address>\"\n");
		return -ETIMEDOUT;
	}
	if (conn.win_size % KC_RANGE_SIZE) {
		fprintf(stderr, "kc_stress: window of %llu bytes: not a multiple of 2 MiB\n",
			(unsigned long long)conn.win_size);
		return -EINVAL;
	}
	err = kc_dax_init(&dax, &conn);
	if (err) {
		fprintf(stderr, "kc_stress: DAX client set-up: %s\n", strerror(-err));
		return err;
	}
	if (o.evict_many)
		return 0;	/* run_evict_many() makes its own file */
	if (dax.nslots <= o.threads)
		fprintf(stderr, "kc_stress: warning: %u slots for %u threads\n", dax.nslots,
			o.threads);
	for (unsigned i = 0; i < o.files; i++) {
		err = create_file(&files[i], i);
		if (!err)
			err = fill_file(&files[i], seed);
		if (err)
			return err;
	}
	fprintf(stderr, "kc_stress: %u files of %llu bytes (up to %llu), window %llu bytes "
		"= %u slots of 2 MiB, %u threads, %llu ops\n", o.files,
		(unsigned long long)o.file_size, (unsigned long long)o.max_size,
		(unsigned long long)conn.win_size, dax.nslots, o.threads,
		(unsigned long long)o.ops);
	return 0;
}

static void run_workers(void)
{
	pthread_t *t = calloc(o.threads, sizeof(*t));
	pthread_t wd;

	pthread_create(&wd, NULL, watchdog, NULL);
	pthread_detach(wd);
	for (uintptr_t i = 0; i < o.threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (unsigned i = 0; i < o.threads; i++)
		pthread_join(t[i], NULL);
	free(t);
}

static void finish(void)
{
	unsigned char *buf = malloc(o.max_io);

	if (!kc_server_alive(&conn)) {
		error_at(NULL, "the server died during the run", -ECHILD);
		free(buf);
		kc_dax_stop(&dax);
		return;
	}
	if (o.inject_corruption && inject_corruption() != 0)
		atomic_fetch_add(&errors, 1);
	for (unsigned i = 0; i < o.files && buf && !conn.dead; i++) {
		verify_file(&files[i], buf);
		if (o.host_dir)
			verify_host_file(&files[i], buf);
	}
	free(buf);
	kc_dax_stop(&dax);
	for (unsigned i = 0; i < o.files && !conn.dead; i++)
		release_file(&files[i]);
	if (!kc_server_alive(&conn))
		error_at(NULL, "the server died before the connection closed", -ECHILD);
}

static void print_stats(void)
{
	const struct kc_dax_stats *s = &dax.st;

	fprintf(stderr, "kc_stress: ops by kind:");
	for (int i = 0; i < OP_COUNT; i++)
		fprintf(stderr, " %s %llu", op_names[i], (unsigned long long)op_count[i]);
	fprintf(stderr, "\nkc_stress: DAX client: %llu SETUPMAPPING, %llu upgrades, %llu "
		"REMOVEMAPPING requests (%llu ranges), %llu reclaimed, %llu inline reclaims, "
		"%llu slot waits, %d protocol errors\n",
		(unsigned long long)s->setups, (unsigned long long)s->upgrades,
		(unsigned long long)s->remove_requests, (unsigned long long)s->removed_ranges,
		(unsigned long long)s->reclaimed, (unsigned long long)s->inline_reclaims,
		(unsigned long long)s->slot_waits, conn.protocol_errors);
}

int main(int argc, char **argv)
{
	uint64_t seed, nerr;
	int first, clean;

	first = parse_args(argc, argv);
	if (first < 0)
		return 2;
	seed = o.seed * 0x2545F4914F6CDD1DULL + 1;
	if (kc_spawn(&conn, argv + first) != 0) {
		fprintf(stderr, "kc_stress: cannot start %s\n", argv[first]);
		return 1;
	}
	conn.quiet = o.quiet_server;
	conn.timeout_ms = o.timeout_ms;
	if (setup(&seed) != 0) {
		kc_kill(&conn);
		printf("kc_stress: 0 ops, 0 mismatches, 0 faults, 1 errors (set-up failed)\n");
		return 1;
	}
	if (o.evict_many) {
		/* One scenario, not random operations: each range is one op. */
		atomic_fetch_add(&errors, run_evict_many());
		o.ops = o.evict_many;
		atomic_store(&ops_done, o.ops);
	} else {
		run_workers();
		finish();
	}
	clean = kc_shutdown(&conn, 10000) == 0;
	if (!clean)
		fprintf(stderr, "kc_stress: ERROR the server did not exit cleanly when the "
			"connection closed\n");
	print_stats();
	nerr = atomic_load(&errors) + (uint64_t)conn.protocol_errors + dax.st.errors +
	       (uint64_t)conn.timed_out + (uint64_t)!clean;
	printf("kc_stress: %llu ops, %llu mismatches, %llu faults, %llu errors\n",
	       (unsigned long long)atomic_load(&ops_done),
	       (unsigned long long)atomic_load(&mismatches),
	       (unsigned long long)dax.st.faults, (unsigned long long)nerr);
	return atomic_load(&mismatches) || dax.st.faults || nerr ||
			       atomic_load(&ops_done) < o.ops ? 1 : 0;
}
