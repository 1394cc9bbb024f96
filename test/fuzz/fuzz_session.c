/*
 * libFuzzer target over the whole session: a sequence of raw requests goes
 * through decode, dispatch, a file system implementing every operation, the
 * reply encoders and a real local DAX window, and after every request the
 * replies, the session and the window are checked against the library's
 * promises; a broken promise aborts.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse_kernel.h"
#include "fuse_log.h"
#include "fuse_lowlevel.h"
#include "dax_window.h"
#include "wire.h"

/*
 * Input layout:
 *   byte 0   session options (CFG_* below)
 *   byte 1   bits 0-2: fail every (n + 2)th writev (0: never);
 *            bits 3-7: max_write the file system asks for in init(), in KiB
 *   then     messages, each a 16-bit little-endian prefix and that many
 *            bytes (fewer at the end of the input). Prefix bit 15 set means
 *            "write the real length into in.len" so mutations get past the
 *            framing check; bits 0-14 are the length.
 */
#define CFG_WRITE_BUF	 (1u << 0) /* write_buf instead of write */
#define CFG_FORGET_MULTI (1u << 1) /* forget_multi as well as forget */
#define CFG_NO_OPS	 (1u << 2) /* an empty ops table: library defaults */
#define CFG_NO_DAX_OPS	 (1u << 3) /* no setupmapping / removemapping */
#define CFG_DEBUG	 (1u << 4) /* -d: the debug logging paths */
#define CFG_ALLOW_ROOT	 (1u << 5) /* -o allow_root: others refused */
#define CFG_INIT_WANTS	 (1u << 6) /* init() changes want and max_write */
#define CFG_LOOP	 (1u << 7) /* fuse_session_loop() + custom read */

#define WIN_SIZE	(8u << 20)
#define GUARD_SIZE	(1u << 20)
#define FILE_SIZE	(3 * 4096 + 100) /* ends inside a page */
#define MAX_REPLY_DATA	(64u << 10)
#define MAX_CAPS	64
#define MAX_INOS	256
#define MAX_RETRIEVES	64

#define PROMISE(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_session: broken promise "	\
				"(%s:%d): %s: ", __FILE__, __LINE__,	\
				#cond);					\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			abort();					\
		}							\
	} while (0)

/* One message the library sent through writev. */
struct capture {
	struct fuse_out_header h;
	size_t bytes;		/* what writev was given */
	unsigned char payload[64]; /* the first payload bytes */
	size_t payload_len;
	int failed;		/* the harness made this writev fail ... */
	int failed_errno;	/* ... with this errno */
};

/* A fuse_lowlevel_notify_retrieve() the file system made. */
struct retrieve {
	uint64_t notify_unique;
	int delivered;
};

/* Process-wide: made once, reused by every input. */
static struct fuse_dax_window *win;
static unsigned char *win_base;
static uint64_t page;
static int file_fd = -1;	/* the one file every mapping shows */
static int null_fd = -1;	/* the custom transport's descriptor */
static unsigned char *guard[2];	/* ours, right below and above the window */
static unsigned char *reply_data; /* MAX_REPLY_DATA pattern bytes */
static volatile unsigned sink;
static int trace;		/* FUZZ_SESSION_TRACE=1: print each exchange */

/* Per input. */
static struct {
	unsigned cfg, fail_every, max_write_kib;
	unsigned long writes;
	struct capture caps[MAX_CAPS];
	unsigned ncaps, lost_caps;
	/* The request being processed. */
	const unsigned char *msg;
	size_t msg_len;
	uint64_t unique;
	uint32_t opcode;
	/* Set while the file system calls notify_retrieve(). */
	int retrieve_pending;
	struct retrieve retrieves[MAX_RETRIEVES];
	unsigned nretrieves;
	fuse_ino_t inos[MAX_INOS];
	unsigned ninos, lost_inos;
	int mapped;		/* some map succeeded this input */
	int dax_negotiated;	/* an INIT reply granted FUSE_MAP_ALIGNMENT */
	int init_calls, destroy_calls;
	/* Loop mode: messages still to hand to the read callback. */
	const uint8_t *rest;
	size_t rest_len;
	int in_message;
	struct fuse_session *se;
} st;

static unsigned char file_byte(uint64_t off)
{
	return (unsigned char)(off * 7 + 3 + (off >> 12));
}

static void touch(const void *p, size_t n)
{
	const unsigned char *b = p;
	unsigned acc = 0;

	for (size_t i = 0; i < n; i++)
		acc += b[i];
	sink += acc;
}

static void quiet_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
}

/* Can this process read the byte at p? Without faulting. */
static int readable(const void *p)
{
	struct iovec local, remote;
	unsigned char c;

	local.iov_base = &c;
	local.iov_len = 1;
	remote.iov_base = (void *)p;
	remote.iov_len = 1;
	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1;
}

/* ------------------------------------------------------------------------
 * The transport: replies are captured, never sent anywhere.
 */

static ssize_t cap_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct capture c;
	unsigned char head[sizeof(struct fuse_out_header) + sizeof(c.payload)];
	size_t got = 0;

	(void)userdata;
	PROMISE(fd == null_fd, "writev on fd %d", fd);
	PROMISE(count >= 1 && count <= FUSE_IOCTL_MAX_IOV + 2, "%d iovecs",
		count);
	memset(&c, 0, sizeof(c));
	for (int i = 0; i < count; i++) {
		size_t n = iov[i].iov_len;

		PROMISE(n == 0 || iov[i].iov_base != NULL, "iovec %d is NULL", i);
		touch(iov[i].iov_base, n);	/* ASan: every byte is valid */
		if (got < sizeof(head)) {
			size_t k = sizeof(head) - got < n ? sizeof(head) - got : n;

			memcpy(head + got, iov[i].iov_base, k);
		}
		c.bytes += n;
		got = got + n > sizeof(head) ? sizeof(head) : got + n;
	}
	PROMISE(c.bytes >= sizeof(c.h), "a %zu-byte message", c.bytes);
	memcpy(&c.h, head, sizeof(c.h));
	c.payload_len = got - sizeof(c.h);
	memcpy(c.payload, head + sizeof(c.h), c.payload_len);

	/* A retrieve's unique travels in its payload. */
	if (c.h.unique == 0 && c.h.error == FUSE_NOTIFY_RETRIEVE) {
		struct fuse_notify_retrieve_out r;

		PROMISE(st.retrieve_pending && c.payload_len >= sizeof(r),
			"an unasked RETRIEVE notification");
		memcpy(&r, c.payload, sizeof(r));
		if (st.nretrieves < MAX_RETRIEVES) {
			st.retrieves[st.nretrieves].notify_unique = r.notify_unique;
			st.retrieves[st.nretrieves].delivered = 0;
		}
		st.retrieve_pending = 0;
	}

	st.writes++;
	c.failed = st.fail_every && st.writes % st.fail_every == 0;
	if (st.ncaps < MAX_CAPS) {
		st.caps[st.ncaps++] = c;
	} else {
		st.lost_caps++;
		c.failed = 0;	/* keep the check below honest */
	}
	if (c.failed) {
		/* ENOENT: the client dropped the request; EPIPE: it is gone. */
		errno = st.writes & 1 ? ENOENT : EPIPE;
		st.caps[st.ncaps - 1].failed_errno = errno;
		return -1;
	}
	return (ssize_t)c.bytes;
}

/* Loop mode: hand out the next message, or end the connection. */
static void message_begin(const uint8_t *p, size_t n);
static void message_end(struct fuse_session *se);
static size_t next_message(const uint8_t **p, size_t *len, const uint8_t **msg,
			   int *patch);

static ssize_t cap_read(int fd, void *buf, size_t buf_len, void *userdata)
{
	/* The loop frees its buffer before returning: checks read this. */
	static unsigned char copy[0x8000];
	const uint8_t *msg;
	size_t n;
	int patch;

	(void)fd;
	(void)userdata;
	if (st.in_message)
		message_end(st.se);
	n = next_message(&st.rest, &st.rest_len, &msg, &patch);
	if (msg == NULL) {
		errno = ENODEV;	/* the transport says: connection ended */
		return -1;
	}
	if (n > buf_len)
		n = buf_len;
	memcpy(buf, msg, n);
	if (patch && n >= 4) {
		uint32_t l = (uint32_t)n;

		memcpy(buf, &l, sizeof(l));
	}
	memcpy(copy, buf, n);
	message_begin(copy, n);
	return (ssize_t)n;
}

/* ------------------------------------------------------------------------
 * The file system: every operation answers at once with values derived
 * from the request.
 */

static void note_ino(fuse_ino_t ino)
{
	for (unsigned i = 0; i < st.ninos; i++)
		if (st.inos[i] == ino)
			return;
	if (st.ninos < MAX_INOS)
		st.inos[st.ninos++] = ino;
	else
		st.lost_inos++;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static double pick_timeout(uint64_t v)
{
	static const double t[6] = { 0.0, -1.0, 1.5, 1e30, 0.999999999, 3.0 };

	if (v % 7 == 6)
		return NAN;
	return t[v % 6];
}

static void fill_stat(struct stat *s, fuse_ino_t ino)
{
	static const mode_t types[4] = { S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO };

	memset(s, 0, sizeof(*s));
	s->st_ino = ino;
	s->st_mode = types[ino % 4] | (mode_t)(ino & 07777);
	s->st_nlink = (nlink_t)(ino % 5);
	s->st_uid = (uid_t)(ino >> 3);
	s->st_gid = (gid_t)(ino >> 5);
	s->st_size = (off_t)(ino & 0xffffffffffffull);
	s->st_blksize = 4096;
	s->st_blocks = (blkcnt_t)(ino % 100000);
	s->st_mtim.tv_sec = (time_t)(ino % 1000000007);
	s->st_mtim.tv_nsec = (long)(ino % 1000000000);
}

static void fill_entry(struct fuse_entry_param *e, fuse_ino_t ino)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->generation = ino * 3;
	fill_stat(&e->attr, ino);
	e->attr_timeout = pick_timeout(ino);
	e->entry_timeout = pick_timeout(ino >> 3);
	e->attr_flags = ino & 1 ? FUSE_ATTR_DAX_FLAG : 0;
}

/* An errno the library must pass through, or (rarely) an invalid one it
 * must turn into EIO. */
static int pick_errno(uint64_t v)
{
	static const int e[8] = { 0, 0, 0, ENOENT, EACCES, EIO, 600, -5 };

	return e[v % 8];
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	st.init_calls++;
	PROMISE(st.init_calls == 1, "init() called %d times", st.init_calls);
	if (!(st.cfg & CFG_INIT_WANTS))
		return;
	fuse_set_feature_flag(conn, FUSE_CAP_SETXATTR_EXT);
	fuse_set_feature_flag(conn, FUSE_CAP_DONT_MASK);
	fuse_set_feature_flag(conn, FUSE_CAP_WRITEBACK_CACHE);
	fuse_unset_feature_flag(conn, FUSE_CAP_IOCTL_DIR);
	if (st.max_write_kib & 1)
		fuse_unset_feature_flag(conn, FUSE_CAP_DAX_MAPPING);
	conn->max_write = st.max_write_kib << 10;
}

static void fs_destroy(void *userdata)
{
	(void)userdata;
	st.destroy_calls++;
	PROMISE(st.destroy_calls == 1, "destroy() called %d times",
		st.destroy_calls);
	PROMISE(fuse_dax_window_unmap_all(win) >= 0, "unmap_all failed");
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	uint64_t h = hash_str(name) ^ parent;

	fill_entry(&e, h % 8 == 0 ? 0 : h);
	fuse_reply_entry(req, &e);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	if (nlookup & 1)
		PROMISE(fuse_dax_window_unmap_inode(win, ino) >= 0,
			"unmap_inode failed");
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		if (forgets[i].nlookup & 1)
			PROMISE(fuse_dax_window_unmap_inode(win, forgets[i].ino) >= 0,
				"unmap_inode failed");
	fuse_reply_none(req);
}

static void notify_some(struct fuse_session *se, fuse_ino_t ino)
{
	static const char name[] = "victim";
	char store[10] = "0123456789";
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(ino % 11);

	switch (ino % 16) {
	case 5:
		fuse_lowlevel_notify_expire_entry(se, ino, name, ino % 7);
		break;
	case 7:
		if (st.nretrieves >= MAX_RETRIEVES)
			break;
		st.retrieve_pending = 1;
		fuse_lowlevel_notify_retrieve(se, ino, (size_t)(ino >> 4),
					      (off_t)(ino >> 8),
					      (void *)(uintptr_t)(st.nretrieves + 1));
		if (!st.retrieve_pending)	/* sent: remember its cookie */
			st.nretrieves++;
		st.retrieve_pending = 0;
		break;
	case 9:
		fuse_lowlevel_notify_inval_inode(se, ino, (off_t)(ino >> 4),
						 (off_t)(ino >> 8));
		break;
	case 11:
		fuse_lowlevel_notify_inval_entry(se, ino, name, ino % 7);
		break;
	case 13:
		bv.buf[0].mem = store;
		if (bv.buf[0].size > sizeof(store))
			bv.buf[0].size = sizeof(store);
		fuse_lowlevel_notify_store(se, ino, (off_t)(ino >> 8), &bv, 0);
		break;
	case 15:
		fuse_lowlevel_notify_delete(se, ino, ino + 1, name, ino % 7);
		break;
	}
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat s;

	notify_some(fuse_req_session(req), ino);
	fill_stat(&s, ino ^ (fi ? fi->fh : 0));
	if (ino & 2)
		fuse_reply_attr_flags(req, &s, pick_timeout(ino), FUSE_ATTR_DAX_FLAG);
	else
		fuse_reply_attr(req, &s, pick_timeout(ino));
}

/* A shrinking or growing file: the window must follow (ordering contract
 * steps 3 and 5, without touching the shared file itself). */
static void resize_mappings(fuse_ino_t ino, uint64_t size)
{
	PROMISE(fuse_dax_window_clip(win, ino, size) >= 0, "clip failed");
	PROMISE(fuse_dax_window_revalidate(win, ino, size) >= 0,
		"revalidate failed");
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	(void)fi;
	if (to_set & FUSE_SET_ATTR_SIZE)
		resize_mappings(ino, (uint64_t)attr->st_size);
	attr->st_ino = ino;
	fuse_reply_attr(req, attr, pick_timeout((uint64_t)to_set));
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	static char target[301];

	memset(target, 'a', ino % 300);
	target[ino % 300] = '\0';
	fuse_reply_readlink(req, target);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct fuse_entry_param e;

	fill_entry(&e, hash_str(name) + parent + mode + rdev);
	fuse_reply_entry(req, &e);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	fs_mknod(req, parent, name, mode, 0);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fs_mknod(req, parent, name, 0, hash_str(link));
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	fs_mknod(req, newparent, newname, 0, ino);
}

static void fs_err_name(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, pick_errno(hash_str(name) + parent));
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	fuse_reply_err(req, pick_errno(hash_str(name) ^ hash_str(newname) ^
				       parent ^ newparent ^ flags));
}

static void fill_fi(struct fuse_file_info *fi, fuse_ino_t ino)
{
	uint64_t v = ino ^ (uint64_t)fi->flags;

	fi->fh = v * 5;
	fi->direct_io = v & 1;
	fi->keep_cache = (v >> 1) & 1;
	fi->nonseekable = (v >> 2) & 1;
	fi->cache_readdir = (v >> 3) & 1;
	fi->noflush = (v >> 4) & 1;
	fi->parallel_direct_writes = (v >> 5) & 1;
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino % 13 == 12) {
		fuse_reply_err(req, EACCES);
		return;
	}
	fill_fi(fi, ino);
	fuse_reply_open(req, fi);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	size_t n = size < MAX_REPLY_DATA ? size : MAX_REPLY_DATA;
	uint64_t how = (uint64_t)off ^ ino ^ (fi ? fi->fh : 0);

	switch (how % 4) {
	case 0:
		fuse_reply_buf(req, (const char *)reply_data, n);
		break;
	case 1: {
		/* Three memory pieces and a cursor inside the first. */
		struct fuse_bufvec *b = calloc(1, sizeof(*b) + 2 * sizeof(b->buf[0]));
		size_t third = n / 3;

		if (!b) {
			fuse_reply_err(req, ENOMEM);
			break;
		}
		b->count = 3;
		b->off = third ? (size_t)(how >> 2) % third : 0;
		for (int i = 0; i < 3; i++) {
			b->buf[i].size = i < 2 ? third : n - 2 * third;
			b->buf[i].mem = reply_data + i * third;
			b->buf[i].fd = -1;
		}
		fuse_reply_data(req, b, 0);
		free(b);
		break;
	}
	case 2: {
		/* From the file, at a position past its end sometimes. */
		struct fuse_bufvec b = FUSE_BUFVEC_INIT(n);

		b.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		b.buf[0].fd = file_fd;
		b.buf[0].pos = (off_t)((how >> 2) % (2 * FILE_SIZE));
		fuse_reply_data(req, &b, FUSE_BUF_NO_SPLICE);
		break;
	}
	default: {
		struct iovec iov[8];
		int count = (int)((how >> 2) % 8);
		size_t left = n;

		for (int i = 0; i < count; i++) {
			size_t k = i == count - 1 ? left : left / 2;

			iov[i].iov_base = reply_data + (n - left);
			iov[i].iov_len = k;
			left -= k;
		}
		fuse_reply_iov(req, iov, count);
		break;
	}
	}
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)off;
	(void)fi;
	touch(buf, size);
	fuse_reply_write(req, ino % 3 ? size : size / 2);
}

static void fs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
			 off_t off, struct fuse_file_info *fi)
{
	size_t size = fuse_buf_size(bufv);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	ssize_t res;

	(void)ino;
	(void)fi;
	dst.buf[0].mem = malloc(size ? size : 1);
	if (!dst.buf[0].mem) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	res = fuse_buf_copy(&dst, bufv, 0);
	PROMISE(res == (ssize_t)size, "buf_copy of %zu gave %zd", size, res);
	touch(dst.buf[0].mem, size);
	free(dst.buf[0].mem);
	(void)off;
	fuse_reply_write(req, (size_t)res);
}

static void fs_err_fi(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, pick_errno(ino ^ fi->fh ^ fi->lock_owner));
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	fuse_reply_err(req, pick_errno(ino ^ fi->fh ^ (uint64_t)datasync));
}

static void fs_readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, int plus)
{
	size_t cap = size < MAX_REPLY_DATA ? size : MAX_REPLY_DATA;
	char *buf = malloc(cap ? cap : 1);	/* exact: ASan sees overruns */
	size_t used = 0;
	uint64_t i = (uint64_t)off;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (unsigned n = 0; n < 512 && i < 1000; n++, i++) {
		char name[64];
		struct fuse_entry_param e;
		size_t need, got;

		snprintf(name, sizeof(name), "%.*s%llu", (int)(i % 40),
			 "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
			 (unsigned long long)i);
		fill_entry(&e, ino + i);
		need = plus ? fuse_add_direntry_plus(req, NULL, 0, name, &e, 0)
			    : fuse_add_direntry(req, NULL, 0, name, &e.attr, 0);
		got = plus ? fuse_add_direntry_plus(req, buf + used, cap - used,
						    name, &e, (off_t)(i + 1))
			   : fuse_add_direntry(req, buf + used, cap - used, name,
					       &e.attr, (off_t)(i + 1));
		PROMISE(got == need && got % 8 == 0, "entry size %zu, %zu", got,
			need);
		if (got > cap - used)
			break;
		used += got;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	fs_readdir_common(req, ino, size, off, 0);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	fs_readdir_common(req, ino, size, off, 1);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs s;

	memset(&s, 0, sizeof(s));
	s.f_bsize = (unsigned long)(ino % 65536);
	s.f_frsize = 4096;
	s.f_blocks = ino;
	s.f_bfree = ino / 2;
	s.f_bavail = ino / 3;
	s.f_files = ino * 3;
	s.f_ffree = ino;
	s.f_namemax = 255;
	fuse_reply_statfs(req, &s);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	touch(value, size);
	fuse_reply_err(req, pick_errno(hash_str(name) ^ ino ^ size ^
				       (uint64_t)flags));
}

/* getxattr and listxattr: size 0 asks for the length, too small is ERANGE. */
static void reply_sized(fuse_req_t req, const char *val, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	reply_sized(req, (const char *)reply_data,
		    (hash_str(name) ^ ino) % 300, size);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const char list[] = "user.a\0user.bb\0trusted.ccc\0security.d";

	reply_sized(req, list, ino % sizeof(list), size);
}

static void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	fuse_reply_err(req, pick_errno(ino ^ (uint64_t)mask));
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;

	fill_entry(&e, hash_str(name) + parent + mode);
	fill_fi(fi, e.ino);
	fuse_reply_create(req, &e, fi);
}

static void fs_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode,
		       struct fuse_file_info *fi)
{
	fs_create(req, parent, "", mode, fi);
}

static void fs_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	(void)fi;
	/* Report the asked-for range as held by another owner, or free. */
	if (ino & 1)
		lock->l_type = F_UNLCK;
	lock->l_pid = (pid_t)(ino % 100000);
	fuse_reply_lock(req, lock);
}

static void fs_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	(void)fi;
	fuse_reply_err(req, pick_errno(ino ^ (uint64_t)lock->l_start ^
				       (uint64_t)sleep));
}

static void fs_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     int op)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, op & LOCK_NB ? EWOULDBLOCK : 0);
}

static void fs_bmap(fuse_req_t req, fuse_ino_t ino, size_t blocksize, uint64_t idx)
{
	fuse_reply_bmap(req, idx * blocksize + ino);
}

static void fs_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	static struct iovec iov[FUSE_IOCTL_MAX_IOV + 8];
	static struct iovec iov2[FUSE_IOCTL_MAX_IOV + 8];
	size_t out = out_bufsz < MAX_REPLY_DATA ? out_bufsz : MAX_REPLY_DATA;
	size_t n_in = (cmd >> 4) % (FUSE_IOCTL_MAX_IOV + 4);
	size_t n_out = (cmd >> 12) % (FUSE_IOCTL_MAX_IOV + 4);

	(void)ino;
	(void)fi;
	(void)flags;
	if (in_buf)
		touch(in_buf, in_bufsz);
	switch (cmd % 3) {
	case 0:
		fuse_reply_ioctl(req, (int)(cmd >> 2) % 64 - 8, reply_data, out);
		break;
	case 1: {
		/* Split the output over n_in pieces, some of them empty. */
		size_t left = out;

		for (size_t i = 0; i < n_in && i < FUSE_IOCTL_MAX_IOV + 4; i++) {
			size_t k = i == n_in - 1 ? left : (i % 3 ? left / 4 : 0);

			iov[i].iov_base = reply_data + (out - left);
			iov[i].iov_len = k;
			left -= k;
		}
		fuse_reply_ioctl_iov(req, 0, iov, (int)n_in);
		break;
	}
	default:
		/* Ask for the caller's memory: arbitrary addresses and sizes. */
		for (size_t i = 0; i < n_in; i++) {
			iov[i].iov_base = (void *)((uintptr_t)arg + i * 8);
			iov[i].iov_len = in_bufsz + i;
		}
		for (size_t i = 0; i < n_out; i++) {
			iov2[i].iov_base = (void *)((uintptr_t)arg + i * 16);
			iov2[i].iov_len = out_bufsz + i;
		}
		fuse_reply_ioctl_retry(req, iov, n_in, iov2, n_out);
		break;
	}
}

static void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	if (ph) {
		fuse_lowlevel_notify_poll(ph);
		fuse_pollhandle_destroy(ph);
	}
	fuse_reply_poll(req, fi->poll_events ^ (unsigned)ino);
}

static void fs_retrieve_reply(fuse_req_t req, void *cookie, fuse_ino_t ino,
			      off_t offset, struct fuse_bufvec *bufv)
{
	uintptr_t n = (uintptr_t)cookie;

	(void)ino;
	(void)offset;
	PROMISE(n >= 1 && n <= st.nretrieves, "unknown retrieve cookie %zu",
		(size_t)n);
	PROMISE(st.retrieves[n - 1].notify_unique == st.unique &&
		!st.retrieves[n - 1].delivered,
		"cookie %zu (unique %llu, delivered %d) for NOTIFY_REPLY %llu",
		(size_t)n, (unsigned long long)st.retrieves[n - 1].notify_unique,
		st.retrieves[n - 1].delivered, (unsigned long long)st.unique);
	st.retrieves[n - 1].delivered = 1;
	for (size_t i = bufv->idx; i < bufv->count; i++)
		if (!(bufv->buf[i].flags & FUSE_BUF_IS_FD))
			touch(bufv->buf[i].mem, bufv->buf[i].size);
	fuse_reply_none(req);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			 off_t length, struct fuse_file_info *fi)
{
	(void)fi;
	(void)length;
	if (mode == 0)
		resize_mappings(ino, (uint64_t)offset);
	fuse_reply_err(req, mode & 0xff ? EOPNOTSUPP : 0);
}

static void fs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	(void)ino_in;
	(void)off_in;
	(void)fi_in;
	(void)ino_out;
	(void)off_out;
	(void)fi_out;
	if (flags)
		fuse_reply_err(req, EINVAL);
	else
		fuse_reply_write(req, len);
}

static void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		fuse_reply_err(req, EINVAL);
	else
		fuse_reply_lseek(req, (off_t)((uint64_t)off + (uint64_t)whence));
}

static void fs_statx(fuse_req_t req, fuse_ino_t ino, int flags, int mask,
		     struct fuse_file_info *fi)
{
	struct statx x;
	struct stat s;

	(void)fi;
	fill_stat(&s, ino);
	memset(&x, 0, sizeof(x));
	x.stx_mask = (uint32_t)mask;
	x.stx_ino = ino;
	x.stx_mode = (uint16_t)s.st_mode;
	x.stx_size = (uint64_t)s.st_size;
	x.stx_mtime.tv_sec = s.st_mtim.tv_sec;
	x.stx_mtime.tv_nsec = (uint32_t)s.st_mtim.tv_nsec;
	fuse_reply_statx(req, flags, &x, pick_timeout(ino));
}

/*
 * DAX. The library promised (fuse_lowlevel.h) to have validated everything
 * against the window; the file system re-checks, then really maps.
 */
static void check_in_window(uint64_t moffset, uint64_t len, const char *what)
{
	PROMISE(len != 0 && moffset % page == 0 && len % page == 0 &&
		moffset < WIN_SIZE && len <= WIN_SIZE - moffset,
		"%s passed window range %llu +%llu", what,
		(unsigned long long)moffset, (unsigned long long)len);
}

static unsigned char expected_byte(uint64_t foff)
{
	return foff < FILE_SIZE ? file_byte(foff) : 0;
}

static void fs_setupmapping(fuse_req_t req, fuse_ino_t ino, uint64_t foffset,
			    uint64_t len, uint64_t moffset, uint64_t flags,
			    struct fuse_file_info *fi)
{
	struct fuse_dax_mapping m;
	int prot, res;

	PROMISE(st.dax_negotiated, "SETUPMAPPING reached the fs without DAX");
	check_in_window(moffset, len, "setupmapping");
	PROMISE(foffset % page == 0 && foffset <= (uint64_t)INT64_MAX - len &&
		!(flags & ~(uint64_t)(FUSE_DAX_MAP_READ | FUSE_DAX_MAP_WRITE)),
		"setupmapping passed foffset %llu flags %#llx",
		(unsigned long long)foffset, (unsigned long long)flags);
	if (fi && (fi->fh & 1)) {
		fuse_reply_err(req, EBADF);	/* not a handle of ino */
		return;
	}
	prot = flags & FUSE_DAX_MAP_WRITE ? PROT_READ | PROT_WRITE : PROT_READ;
	note_ino(ino);
	res = fuse_dax_window_map(win, moffset, len, file_fd, ino, foffset, prot);
	if (res == 0) {
		uint64_t end = foffset + len - 1;

		st.mapped = 1;
		PROMISE(fuse_dax_window_lookup(win, moffset, &m) == 0 &&
			m.moffset == moffset && m.len == len && m.ino == ino &&
			m.foffset == foffset && m.prot == prot &&
			m.file_len <= len && m.file_len % page == 0,
			"lookup after map at %llu", (unsigned long long)moffset);
		/* The memory shows the file, then zeros, and never faults. */
		PROMISE(win_base[moffset] == expected_byte(foffset),
			"window byte at %llu", (unsigned long long)moffset);
		PROMISE(win_base[moffset + len - 1] == expected_byte(end),
			"window byte at %llu", (unsigned long long)(moffset + len - 1));
	}
	fuse_reply_err(req, -res);
}

static void fs_removemapping(fuse_req_t req, const struct fuse_dax_range *ranges,
			     unsigned int count)
{
	struct fuse_dax_mapping m;
	int err = 0;

	PROMISE(st.dax_negotiated, "REMOVEMAPPING reached the fs without DAX");
	PROMISE(count >= 1 && count <= FUSE_REMOVEMAPPING_MAX_ENTRY,
		"removemapping of %u ranges", count);
	for (unsigned i = 0; i < count; i++) {
		uint64_t off = ranges[i].moffset, len = ranges[i].len;
		int res;

		check_in_window(off, len, "removemapping");
		res = fuse_dax_window_unmap(win, off, len);
		if (res == 0 || res == -ENOENT) {
			PROMISE(fuse_dax_window_lookup(win, off, &m) == -ENOENT &&
				fuse_dax_window_lookup(win, off + len - 1, &m) == -ENOENT,
				"range %llu +%llu still mapped after unmap",
				(unsigned long long)off, (unsigned long long)len);
			PROMISE(!readable(win_base + off),
				"window offset %llu readable after unmap",
				(unsigned long long)off);
		} else if (!err) {
			err = -res;
		}
	}
	fuse_reply_err(req, err);
}

static const struct fuse_lowlevel_ops all_ops = {
	.init = fs_init,
	.destroy = fs_destroy,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_err_name,
	.rmdir = fs_err_name,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_err_fi,
	.release = fs_err_fi,
	.fsync = fs_fsync,
	.opendir = fs_open,
	.readdir = fs_readdir,
	.releasedir = fs_err_fi,
	.fsyncdir = fs_fsync,
	.statfs = fs_statfs,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_err_name,
	.access = fs_access,
	.create = fs_create,
	.getlk = fs_getlk,
	.setlk = fs_setlk,
	.bmap = fs_bmap,
	.ioctl = fs_ioctl,
	.poll = fs_poll,
	.write_buf = fs_write_buf,
	.retrieve_reply = fs_retrieve_reply,
	.forget_multi = fs_forget_multi,
	.flock = fs_flock,
	.fallocate = fs_fallocate,
	.readdirplus = fs_readdirplus,
	.copy_file_range = fs_copy_file_range,
	.lseek = fs_lseek,
	.tmpfile = fs_tmpfile,
	.statx = fs_statx,
	.setupmapping = fs_setupmapping,
	.removemapping = fs_removemapping,
};

/* ------------------------------------------------------------------------
 * Checks after each message and each input.
 */

/* Payload of a successful reply whose size does not depend on the data. */
static long fixed_payload(uint32_t opcode)
{
	switch (opcode) {
	case FUSE_LOOKUP: case FUSE_MKNOD: case FUSE_MKDIR: case FUSE_SYMLINK:
	case FUSE_LINK:
		return sizeof(struct fuse_entry_out);
	case FUSE_CREATE: case FUSE_TMPFILE:
		return sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out);
	case FUSE_GETATTR: case FUSE_SETATTR:
		return sizeof(struct fuse_attr_out);
	case FUSE_OPEN: case FUSE_OPENDIR:
		return sizeof(struct fuse_open_out);
	case FUSE_WRITE: case FUSE_COPY_FILE_RANGE:
		return sizeof(struct fuse_write_out);
	case FUSE_STATFS:
		return sizeof(struct fuse_statfs_out);
	case FUSE_GETLK:
		return sizeof(struct fuse_lk_out);
	case FUSE_BMAP:
		return sizeof(struct fuse_bmap_out);
	case FUSE_POLL:
		return sizeof(struct fuse_poll_out);
	case FUSE_LSEEK:
		return sizeof(struct fuse_lseek_out);
	case FUSE_STATX:
		return sizeof(struct fuse_statx_out);
	case FUSE_READLINK: case FUSE_READ: case FUSE_READDIR:
	case FUSE_READDIRPLUS: case FUSE_GETXATTR: case FUSE_LISTXATTR:
	case FUSE_IOCTL: case FUSE_INIT:
		return -1;
	default:
		return 0;
	}
}

/* The size field of a request argument, if the message holds it. */
static int arg_u32(size_t off, uint32_t *v)
{
	off += sizeof(struct fuse_in_header);
	if (st.msg_len < off + 4)
		return 0;
	memcpy(v, st.msg + off, 4);
	return 1;
}

static void check_payload(const struct capture *c, size_t payload)
{
	long fixed = fixed_payload(st.opcode);
	uint32_t asked;

	if (fixed >= 0) {
		PROMISE(payload == (size_t)fixed, "%s reply of %zu bytes, want %ld",
			wire_opcode_name(st.opcode), payload, fixed);
		return;
	}
	switch (st.opcode) {
	case FUSE_READ: case FUSE_READDIR: case FUSE_READDIRPLUS:
		if (arg_u32(offsetof(struct fuse_read_in, size), &asked))
			PROMISE(payload <= asked, "%s reply of %zu > %u bytes",
				wire_opcode_name(st.opcode), payload, asked);
		break;
	case FUSE_GETXATTR: case FUSE_LISTXATTR:
		if (arg_u32(0, &asked))
			PROMISE(asked ? payload <= asked
				      : payload == sizeof(struct fuse_getxattr_out),
				"%s reply of %zu for size %u",
				wire_opcode_name(st.opcode), payload, asked);
		break;
	case FUSE_IOCTL:
		PROMISE(payload >= sizeof(struct fuse_ioctl_out),
			"IOCTL reply of %zu bytes", payload);
		break;
	case FUSE_INIT: {
		struct fuse_init_out o;

		PROMISE(payload == FUSE_COMPAT_INIT_OUT_SIZE ||
			payload == FUSE_COMPAT_22_INIT_OUT_SIZE ||
			payload == sizeof(o), "INIT reply of %zu bytes", payload);
		memset(&o, 0, sizeof(o));
		memcpy(&o, c->payload, payload);
		if (o.flags & FUSE_MAP_ALIGNMENT) {
			/* DAX is on: the client must learn the alignment. */
			st.dax_negotiated = 1;
			PROMISE(payload > offsetof(struct fuse_init_out, map_alignment),
				"INIT reply of %zu bytes (a client before 7.23) grants MAP_ALIGNMENT "
				"but cannot carry map_alignment", payload);
			PROMISE((1ull << o.map_alignment) == page,
				"map_alignment %u", o.map_alignment);
		}
		break;
	}
	}
}

/*
 * A reply the transport refused for any reason but "the client dropped it
 * / is gone" may be followed by a header-only EIO for the same request, so
 * the client never waits forever (reply.c); after a refused reply with a
 * payload, it must be.
 */
static int may_retry(const struct capture *c)
{
	return c->failed && c->failed_errno != ENOENT &&
	       c->failed_errno != ENODEV && c->failed_errno != ENOTCONN;
}

static int must_retry(const struct capture *c)
{
	return may_retry(c) && c->bytes > sizeof(c->h);
}

/*
 * Framing of every message the library wrote for the current request, and
 * how many answers it got: a reply counts once whether or not the send
 * went through; a refused reply and its EIO retry count once together.
 */
static void check_replies(int framed)
{
	const struct wire_opcode *op = wire_opcode_info(st.opcode);
	unsigned replies = 0, max, min;
	const struct capture *retry_of = NULL;

	PROMISE(st.lost_caps == 0, "more than %d messages for one request",
		MAX_CAPS);
	for (unsigned i = 0; i < st.ncaps; i++) {
		const struct capture *c = &st.caps[i];

		PROMISE(c->h.len == c->bytes, "out.len %u but %zu bytes written",
			c->h.len, c->bytes);
		if (c->h.unique == 0 && c->h.error > 0) {
			/* A notification from the file system. */
			PROMISE(c->h.error <= FUSE_NOTIFY_DELETE,
				"notification code %d", c->h.error);
			continue;
		}
		PROMISE(c->h.error <= 0 && c->h.error >= -511, "error %d",
			c->h.error);
		PROMISE(framed && c->h.unique == st.unique,
			"reply for unique %llu while serving %llu (%s)",
			(unsigned long long)c->h.unique,
			(unsigned long long)st.unique,
			framed ? "framed" : "broken framing");
		if (retry_of) {
			PROMISE(c->h.error == -EIO && c->bytes == sizeof(c->h),
				"after a refused %zu-byte reply came error %d, %zu bytes",
				retry_of->bytes, c->h.error, c->bytes);
			retry_of = NULL;
			continue;
		}
		replies++;
		if (c->h.error == 0)
			check_payload(c, c->bytes - sizeof(c->h));
		if (may_retry(c) && i + 1 < st.ncaps) {
			retry_of = c;
		} else {
			PROMISE(!must_retry(c),
				"no EIO after a refused %zu-byte reply to %s",
				c->bytes, wire_opcode_name(st.opcode));
		}
	}
	if (!framed) {
		min = max = 0;
	} else if (op && (op->flags & OPF_NO_REPLY)) {
		min = 0;
		max = st.opcode == FUSE_INTERRUPT;	/* EAGAIN: not in flight */
	} else {
		min = max = 1;
	}
	PROMISE(replies >= min && replies <= max,
		"%u replies to %s (unique %llu), want %u..%u", replies,
		wire_opcode_name(st.opcode), (unsigned long long)st.unique, min,
		max);
}

static void message_begin(const uint8_t *p, size_t n)
{
	struct fuse_in_header h;

	st.msg = p;
	st.msg_len = n;
	st.ncaps = 0;
	st.lost_caps = 0;
	st.unique = 0;
	st.opcode = 0;
	if (n >= sizeof(h)) {
		memcpy(&h, p, sizeof(h));
		st.unique = h.unique;
		st.opcode = h.opcode;
	}
	st.in_message = 1;
}

static int message_framed(void)
{
	uint32_t len;

	if (st.msg_len < sizeof(struct fuse_in_header))
		return 0;
	memcpy(&len, st.msg, sizeof(len));
	return len == st.msg_len;
}

static void message_end(struct fuse_session *se)
{
	int framed = message_framed();

	st.in_message = 0;
	if (trace) {
		fprintf(stderr, "%s unique %llu, %zu bytes%s:",
			wire_opcode_name(st.opcode), (unsigned long long)st.unique,
			st.msg_len, framed ? "" : " (broken framing)");
		for (unsigned i = 0; i < st.ncaps; i++)
			fprintf(stderr, " [%s %d, %u bytes%s]",
				st.caps[i].h.unique == 0 && st.caps[i].h.error > 0 ?
				"notify" : "error", st.caps[i].h.error,
				st.caps[i].h.len, st.caps[i].failed ? ", failed" : "");
		fputc('\n', stderr);
	}
	check_replies(framed);
	/* Only broken framing ends the session; the harness then resets it. */
	PROMISE(!framed || !fuse_session_exited(se),
		"%s (unique %llu) ended the session", wire_opcode_name(st.opcode),
		(unsigned long long)st.unique);
	if (!framed)
		PROMISE(fuse_session_exited(se),
			"a %zu-byte message with a broken length kept the session",
			st.msg_len);
	PROMISE(dax_window_check(win) == 0, "window table inconsistent");
}

/* Every byte below and above the window is still ours, as we left it. */
static void check_guards(void)
{
	for (int g = 0; g < 2; g++) {
		if (!guard[g])
			continue;
		for (size_t off = 0; off < GUARD_SIZE; off += page)
			PROMISE(guard[g][off] == (unsigned char)(0xa5 ^ g) &&
				guard[g][off + page - 1] == (unsigned char)(0x5a ^ g),
				"guard %s the window changed at +%zu",
				g ? "above" : "below", off);
	}
}

/* Walk the whole window: every mapping inside it, every hole unmapped. */
static int check_window(void)
{
	struct fuse_dax_mapping m;
	uint64_t off = 0;
	int listed = 0, found = 0;

	PROMISE(dax_window_check(win) == 0, "window table inconsistent");
	check_guards();
	if (!st.mapped)
		return 0;
	while (off < WIN_SIZE) {
		if (fuse_dax_window_lookup(win, off, &m) != 0) {
			PROMISE(!readable(win_base + off),
				"unmapped window offset %llu is readable",
				(unsigned long long)off);
			/* Skip to the next mapping: one probe per hole. */
			while (off < WIN_SIZE &&
			       fuse_dax_window_lookup(win, off, &m) != 0)
				off += page;
			continue;
		}
		PROMISE(m.moffset <= off && m.len > off - m.moffset &&
			m.len <= WIN_SIZE - m.moffset && m.len % page == 0 &&
			m.file_len <= m.len && m.foffset % page == 0 &&
			(m.prot == PROT_READ || m.prot == (PROT_READ | PROT_WRITE)),
			"mapping %llu +%llu (file_len %llu, prot %d) at %llu",
			(unsigned long long)m.moffset, (unsigned long long)m.len,
			(unsigned long long)m.file_len, m.prot,
			(unsigned long long)off);
		PROMISE(win_base[m.moffset] ==
			(m.file_len ? expected_byte(m.foffset) : 0),
			"mapping at %llu shows the wrong byte",
			(unsigned long long)m.moffset);
		listed++;
		off = m.moffset + m.len;
	}
	for (unsigned i = 0; i < st.ninos; i++)
		found += fuse_dax_window_find(win, st.inos[i], 0, UINT64_MAX,
					      NULL, 0);
	PROMISE(st.lost_inos || found == listed,
		"find() sees %d mappings, the walk %d", found, listed);
	return listed;
}

/* ------------------------------------------------------------------------
 * Driving one input.
 */

static size_t next_message(const uint8_t **p, size_t *len, const uint8_t **msg,
			   int *patch)
{
	size_t n;

	*msg = NULL;
	if (*len < 2)
		return 0;
	n = ((size_t)(*p)[0] | (size_t)(*p)[1] << 8);
	*patch = !!(n & 0x8000);
	n &= 0x7fff;
	*p += 2;
	*len -= 2;
	if (n > *len)
		n = *len;
	*msg = *p;
	*p += n;
	*len -= n;
	return n;
}

static void process_one(struct fuse_session *se, const uint8_t *msg, size_t n,
			int patch)
{
	struct fuse_buf b;
	unsigned char *copy = malloc(n ? n : 1); /* exact: no slack to read */

	PROMISE(copy != NULL, "out of memory");
	memcpy(copy, msg, n);
	if (patch && n >= 4) {
		uint32_t l = (uint32_t)n;

		memcpy(copy, &l, sizeof(l));
	}
	memset(&b, 0, sizeof(b));
	b.mem = copy;
	b.size = n;
	message_begin(copy, n);
	fuse_session_process_buf(se, &b);
	message_end(se);
	free(copy);
	if (fuse_session_exited(se)) {
		fuse_session_reset(se);
		PROMISE(!fuse_session_exited(se), "reset did not revive");
	}
}

static struct fuse_session *session_new(void)
{
	static const struct fuse_custom_io io = {
		.writev = cap_writev,
		.read = cap_read,
	};
	static const struct fuse_lowlevel_ops init_only = {
		.init = fs_init,
		.destroy = fs_destroy,
	};
	char *argv[6] = { "fuzz_session", NULL, NULL, NULL, NULL, NULL };
	struct fuse_args args;
	struct fuse_lowlevel_ops ops = all_ops;
	struct fuse_session *se;
	int argc = 1;

	if (st.cfg & CFG_NO_OPS)
		ops = init_only;
	if (!(st.cfg & CFG_WRITE_BUF))
		ops.write_buf = NULL;
	if (!(st.cfg & CFG_FORGET_MULTI))
		ops.forget_multi = NULL;
	if (st.cfg & CFG_NO_DAX_OPS) {
		ops.setupmapping = NULL;
		ops.removemapping = NULL;
	}
	if (st.cfg & CFG_DEBUG)
		argv[argc++] = "-d";
	if (st.cfg & CFG_ALLOW_ROOT) {
		argv[argc++] = "-o";
		argv[argc++] = "allow_root";
	}
	args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	PROMISE(se != NULL, "fuse_session_new failed");
	fuse_opt_free_args(&args);
	PROMISE(fuse_session_custom_io(se, &io, sizeof(io), null_fd) == 0,
		"custom_io failed");
	PROMISE(fuse_session_set_dax_window(se, win) == 0, "set_dax_window");
	return se;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char buf[FILE_SIZE];
	int res;

	(void)argc;
	(void)argv;
	trace = getenv("FUZZ_SESSION_TRACE") != NULL;
	if (!trace)
		fuse_set_log_func(quiet_log);
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	res = fuse_dax_window_new_local(WIN_SIZE, 0, &win);
	PROMISE(res == 0, "fuse_dax_window_new_local: %s", strerror(-res));
	win_base = fuse_dax_window_base(win);
	PROMISE(fuse_dax_window_alignment(win) == page, "alignment");

	file_fd = memfd_create("fuzz_session", MFD_CLOEXEC);
	PROMISE(file_fd >= 0, "memfd_create: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = file_byte(i);
	PROMISE(pwrite(file_fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf),
		"pwrite");
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	PROMISE(null_fd >= 0, "/dev/null: %s", strerror(errno));

	reply_data = malloc(MAX_REPLY_DATA);
	PROMISE(reply_data != NULL, "out of memory");
	for (size_t i = 0; i < MAX_REPLY_DATA; i++)
		reply_data[i] = (unsigned char)(i * 13);

	/* Claim the pages around the window if nothing else holds them: a
	 * map that strays outside the window would change them. */
	for (int g = 0; g < 2; g++) {
		unsigned char *want = g ? win_base + WIN_SIZE : win_base - GUARD_SIZE;
		void *p = mmap(want, GUARD_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			       -1, 0);

		if (p != want) {
			if (p != MAP_FAILED)
				munmap(p, GUARD_SIZE);
			fprintf(stderr, "fuzz_session: no guard %s the window (%s)\n",
				g ? "above" : "below",
				p == MAP_FAILED ? strerror(errno) : "kernel ignored the hint");
			continue;
		}
		guard[g] = p;
		for (size_t off = 0; off < GUARD_SIZE; off += page) {
			guard[g][off] = (unsigned char)(0xa5 ^ g);
			guard[g][off + page - 1] = (unsigned char)(0x5a ^ g);
		}
	}
	fprintf(stderr, "fuzz_session: %u MiB window at %p, guards below %s, above %s\n",
		WIN_SIZE >> 20, (void *)win_base, guard[0] ? "yes" : "no",
		guard[1] ? "yes" : "no");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuse_session *se;
	const uint8_t *p, *msg;
	size_t len, n;
	int patch;

	if (size < 2)
		return 0;
	memset(&st, 0, sizeof(st));
	st.cfg = data[0];
	st.fail_every = data[1] & 7 ? (data[1] & 7) + 1 : 0;
	st.max_write_kib = data[1] >> 3;
	p = data + 2;
	len = size - 2;

	se = session_new();
	st.se = se;
	if (st.cfg & CFG_LOOP) {
		/* The library's own loop reads through the custom transport;
		 * after broken framing ends it, reset and run it again. */
		st.rest = p;
		st.rest_len = len;
		for (;;) {
			fuse_session_loop(se);
			if (st.in_message)
				message_end(se);
			if (st.rest_len < 2)
				break;
			fuse_session_reset(se);
		}
	} else {
		while ((n = next_message(&p, &len, &msg, &patch)), msg != NULL)
			process_one(se, msg, n, patch);
	}
	check_window();

	fuse_session_destroy(se);
	PROMISE(st.destroy_calls == st.init_calls,
		"init() called %d times, destroy() %d", st.init_calls,
		st.destroy_calls);
	/* Every mapping is gone with the session (destroy() unmaps all). */
	if (st.mapped) {
		PROMISE(check_window() == 0, "mappings left after destroy");
		for (unsigned i = 0; i < st.ninos; i++)
			PROMISE(fuse_dax_window_find(win, st.inos[i], 0, UINT64_MAX,
						     NULL, 0) == 0,
				"inode %llu still mapped after destroy",
				(unsigned long long)st.inos[i]);
	}
	fuse_dax_window_unmap_all(win);
	return 0;
}
