/*
 * Unit test of the reply encoders (lib/reply.c): a real session on a
 * socketpair whose handlers answer with the fuse_reply_* call under test,
 * and checks of the exact bytes the kernel would receive (sizes, fields,
 * padding, errno sign), plus fuse_add_direntry / fuse_add_direntry_plus.
 */
#include "wire_client.h"

#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* ------------------------------------------------------------------------
 * What the handlers answer with: set by the test before each request.
 * --------------------------------------------------------------------- */
enum how {
	H_DEFAULT,
	H_ATTR,
	H_ATTR_FLAGS,
	H_BUF,
	H_BUF_EMPTY,
	H_DATA_MEM,
	H_DATA_MEM_OFF,
	H_DATA_FD,
	H_IOV,
	H_IOV_TOO_MANY,
	H_XATTR_SIZE,
	H_IOCTL,
	H_IOCTL_EMPTY,
	H_IOCTL_RETRY,
	H_IOCTL_RETRY_TOO_MANY,
	H_IOCTL_IOV,
	H_IOCTL_IOV_TOO_MANY,
	H_ERR,
};

static struct {
	enum how how;
	struct fuse_entry_param entry;
	struct fuse_file_info fi;
	struct stat st;
	double timeout;
	uint32_t attr_flags;
	const char *link;
	size_t count;
	struct statvfs vfs;
	struct flock lock;
	uint64_t idx;
	int result;
	unsigned revents;
	off_t off;
	struct statx stx;
	int stx_flags;
	int err;
	int data_fd;
	/* directory listings */
	const char *const *names;
	size_t n_names;
} P;

/* What the handlers saw and returned (the loop thread writes, the test
 * reads after the reply arrived). */
static atomic_int reply_ret;
static atomic_int forgets;
static atomic_size_t dir_needed;	/* sizes fuse_add_direntry* reported */
static atomic_int dir_untouched;	/* a refused entry left the buffer alone */
static atomic_int dir_null_size_ok;	/* NULL buf gives the size, writes nothing */

static void note(int ret)
{
	atomic_store(&reply_ret, ret);
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	note(fuse_reply_entry(req, &P.entry));
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	note(fuse_reply_create(req, &P.entry, &P.fi));
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (P.how == H_ATTR_FLAGS)
		note(fuse_reply_attr_flags(req, &P.st, P.timeout, P.attr_flags));
	else
		note(fuse_reply_attr(req, &P.st, P.timeout));
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	note(fuse_reply_readlink(req, P.link));
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	note(fuse_reply_open(req, &P.fi));
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	note(fuse_reply_write(req, P.count));
}

static const char DATA[] = "0123456789abcdefghijklmnopqrstuvwxyz";

static void read_data(fuse_req_t req, bool with_off)
{
	struct fuse_bufvec *bv = malloc(sizeof(*bv) + 2 * sizeof(struct fuse_buf));

	if (!bv) {
		note(fuse_reply_err(req, ENOMEM));
		return;
	}
	memset(bv, 0, sizeof(*bv) + 2 * sizeof(struct fuse_buf));
	bv->count = 3;
	bv->buf[0].mem = (void *)DATA;
	bv->buf[0].size = 4;
	bv->buf[1].mem = (void *)(DATA + 10);
	bv->buf[1].size = 0;
	bv->buf[2].mem = (void *)(DATA + 20);
	bv->buf[2].size = 6;
	if (with_off) {
		bv->idx = 0;
		bv->off = 1;
	}
	note(fuse_reply_data(req, bv, FUSE_BUF_SPLICE_MOVE));
	free(bv);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct iovec iov[FUSE_IOCTL_MAX_IOV + 2];
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	switch (P.how) {
	case H_BUF:
		note(fuse_reply_buf(req, DATA, 10));
		break;
	case H_BUF_EMPTY:
		note(fuse_reply_buf(req, NULL, 0));
		break;
	case H_DATA_MEM:
		read_data(req, false);
		break;
	case H_DATA_MEM_OFF:
		read_data(req, true);
		break;
	case H_DATA_FD:
		/* size bytes of the file from off; the file may end first */
		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = P.data_fd;
		bv.buf[0].pos = off;
		note(fuse_reply_data(req, &bv, 0));
		break;
	case H_IOV:
		iov[0] = (struct iovec){ (void *)DATA, 3 };
		iov[1] = (struct iovec){ (void *)(DATA + 30), 0 };
		iov[2] = (struct iovec){ (void *)(DATA + 10), 5 };
		note(fuse_reply_iov(req, iov, 3));
		break;
	case H_IOV_TOO_MANY:
		for (int i = 0; i < FUSE_IOCTL_MAX_IOV + 2; i++)
			iov[i] = (struct iovec){ (void *)DATA, 1 };
		note(fuse_reply_iov(req, iov, FUSE_IOCTL_MAX_IOV + 2));
		break;
	default:
		note(fuse_reply_err(req, EIO));
	}
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	note(fuse_reply_statfs(req, &P.vfs));
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (P.how == H_XATTR_SIZE)
		note(fuse_reply_xattr(req, P.count));
	else
		note(fuse_reply_buf(req, DATA, 7));
}

static void fs_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	note(fuse_reply_lock(req, &P.lock));
}

static void fs_bmap(fuse_req_t req, fuse_ino_t ino, size_t blocksize, uint64_t idx)
{
	note(fuse_reply_bmap(req, P.idx));
}

static void fs_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	struct iovec in[FUSE_IOCTL_MAX_IOV + 1], out[2];

	switch (P.how) {
	case H_IOCTL:
		note(fuse_reply_ioctl(req, P.result, DATA, 6));
		break;
	case H_IOCTL_EMPTY:
		note(fuse_reply_ioctl(req, P.result, NULL, 0));
		break;
	case H_IOCTL_RETRY:
		in[0] = (struct iovec){ (void *)(uintptr_t)0x1000, 16 };
		in[1] = (struct iovec){ (void *)(uintptr_t)0x2000, 8 };
		out[0] = (struct iovec){ (void *)(uintptr_t)0x3000, 32 };
		note(fuse_reply_ioctl_retry(req, in, 2, out, 1));
		break;
	case H_IOCTL_RETRY_TOO_MANY:
		for (int i = 0; i <= FUSE_IOCTL_MAX_IOV; i++)
			in[i] = (struct iovec){ (void *)(uintptr_t)0x1000, 1 };
		note(fuse_reply_ioctl_retry(req, in, FUSE_IOCTL_MAX_IOV + 1, NULL, 0));
		break;
	case H_IOCTL_IOV:
		in[0] = (struct iovec){ (void *)DATA, 2 };
		in[1] = (struct iovec){ (void *)(DATA + 26), 4 };
		note(fuse_reply_ioctl_iov(req, P.result, in, 2));
		break;
	case H_IOCTL_IOV_TOO_MANY:
		for (int i = 0; i <= FUSE_IOCTL_MAX_IOV; i++)
			in[i] = (struct iovec){ (void *)DATA, 1 };
		note(fuse_reply_ioctl_iov(req, P.result, in, FUSE_IOCTL_MAX_IOV + 1));
		break;
	default:
		note(fuse_reply_err(req, EIO));
	}
}

static void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	if (ph)
		fuse_pollhandle_destroy(ph);
	note(fuse_reply_poll(req, P.revents));
}

static void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	note(fuse_reply_lseek(req, P.off));
}

static void fs_statx(fuse_req_t req, fuse_ino_t ino, int flags, int mask,
		     struct fuse_file_info *fi)
{
	note(fuse_reply_statx(req, P.stx_flags, &P.stx, P.timeout));
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	atomic_fetch_add(&forgets, 1);
	fuse_reply_none(req);
}

static void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	note(fuse_reply_err(req, P.err));
}

/*
 * A listing of P.names into a buffer of the size the client asked for,
 * entry i at offset i + 1; stops at the first entry that does not fit and
 * checks that the refused call wrote nothing.
 */
static void list_dir(fuse_req_t req, size_t size, bool plus)
{
	char *buf = malloc(size + 64);
	size_t used = 0, need, total_need = 0;

	if (!buf) {
		note(fuse_reply_err(req, ENOMEM));
		return;
	}
	memset(buf, 0xa5, size + 64);
	atomic_store(&dir_untouched, 1);
	atomic_store(&dir_null_size_ok, 1);
	for (size_t i = 0; i < P.n_names; i++) {
		struct fuse_entry_param e = P.entry;
		struct stat st = P.st;
		size_t null_need;

		st.st_ino = 100 + i;
		e.attr.st_ino = 100 + i;
		e.ino = 100 + i;
		if (plus) {
			null_need = fuse_add_direntry_plus(req, NULL, 0, P.names[i], &e,
							   (off_t)i + 1);
			need = fuse_add_direntry_plus(req, buf + used, size - used, P.names[i],
						      &e, (off_t)i + 1);
		} else {
			null_need = fuse_add_direntry(req, NULL, 0, P.names[i], &st,
						      (off_t)i + 1);
			need = fuse_add_direntry(req, buf + used, size - used, P.names[i], &st,
						 (off_t)i + 1);
		}
		if (null_need != need)
			atomic_store(&dir_null_size_ok, 0);
		total_need += need;
		if (need > size - used) {
			for (size_t k = used; k < size + 64; k++)
				if ((unsigned char)buf[k] != 0xa5)
					atomic_store(&dir_untouched, 0);
			break;
		}
		used += need;
	}
	atomic_store(&dir_needed, total_need);
	note(fuse_reply_buf(req, buf, used));
	free(buf);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	list_dir(req, size, false);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	list_dir(req, size, true);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = fs_lookup,
	.create = fs_create,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.open = fs_open,
	.write = fs_write,
	.read = fs_read,
	.statfs = fs_statfs,
	.getxattr = fs_getxattr,
	.getlk = fs_getlk,
	.bmap = fs_bmap,
	.ioctl = fs_ioctl,
	.poll = fs_poll,
	.lseek = fs_lseek,
	.statx = fs_statx,
	.forget = fs_forget,
	.access = fs_access,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
};

/* ------------------------------------------------------------------------
 * The client side.
 * --------------------------------------------------------------------- */
static struct wc_reply R;

/*
 * Receive the reply to u: success, a payload of exactly plen bytes, and the
 * handler's encoder returned 0. Returns true if the payload has that size.
 */
static bool expect_payload(struct wc *c, uint64_t u, size_t plen, const char *what)
{
	if (!wc_expect(c, &R, u, 0, what))
		return false;
	CHECK(atomic_load(&reply_ret) == 0, "%s: the encoder returned %d", what,
	      atomic_load(&reply_ret));
	CHECK(R.plen == plen, "%s: payload %zu bytes, want %zu", what, R.plen, plen);
	return R.plen == plen;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void fill_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = 0x1122334455667788ull;
	st->st_mode = S_IFREG | 0640;
	st->st_nlink = 3;
	st->st_uid = 1001;
	st->st_gid = 1002;
	st->st_rdev = 0x0803;
	st->st_size = 0x123456789abull;
	st->st_blksize = 4096;
	st->st_blocks = 77;
	st->st_atim = (struct timespec){ 1000000001, 11 };
	st->st_mtim = (struct timespec){ 1000000002, 22 };
	st->st_ctim = (struct timespec){ 1000000003, 999999999 };
}

static void check_attr(const struct fuse_attr *a, const struct stat *st, uint32_t flags,
		       const char *what)
{
	CHECK_EQ_U64(a->ino, st->st_ino, what);
	CHECK_EQ_U64(a->size, st->st_size, what);
	CHECK_EQ_U64(a->blocks, st->st_blocks, what);
	CHECK_EQ_U64(a->atime, st->st_atim.tv_sec, what);
	CHECK_EQ_U64(a->mtime, st->st_mtim.tv_sec, what);
	CHECK_EQ_U64(a->ctime, st->st_ctim.tv_sec, what);
	CHECK_EQ_U64(a->atimensec, st->st_atim.tv_nsec, what);
	CHECK_EQ_U64(a->mtimensec, st->st_mtim.tv_nsec, what);
	CHECK_EQ_U64(a->ctimensec, st->st_ctim.tv_nsec, what);
	CHECK_EQ_U64(a->mode, st->st_mode, what);
	CHECK_EQ_U64(a->nlink, st->st_nlink, what);
	CHECK_EQ_U64(a->uid, st->st_uid, what);
	CHECK_EQ_U64(a->gid, st->st_gid, what);
	CHECK_EQ_U64(a->rdev, st->st_rdev, what);
	CHECK_EQ_U64(a->blksize, st->st_blksize, what);
	CHECK_EQ_U64(a->flags, flags, what);
}

/* ------------------------------------------------------------------------
 * Entries and attributes.
 * --------------------------------------------------------------------- */

static void test_entry(struct wc *c)
{
	struct fuse_entry_out e;
	uint64_t u;

	memset(&P.entry, 0, sizeof(P.entry));
	P.entry.ino = 0x42;
	P.entry.generation = 0xdeadbeefcafeull;
	fill_stat(&P.entry.attr);
	P.entry.entry_timeout = 2.25;
	P.entry.attr_timeout = 1.5;
	P.entry.attr_flags = FUSE_ATTR_DAX_FLAG;
	u = wc_lookup(c, 1, "x");
	if (expect_payload(c, u, 128, "reply_entry")) { /* sizeof fuse_entry_out since 7.9 */
		memcpy(&e, R.payload, sizeof(e));
		CHECK_EQ_U64(e.nodeid, 0x42, "entry nodeid");
		CHECK_EQ_U64(e.generation, 0xdeadbeefcafeull, "entry generation");
		CHECK_EQ_U64(e.entry_valid, 2, "entry_valid");
		CHECK_EQ_U64(e.entry_valid_nsec, 250000000, "entry_valid_nsec");
		CHECK_EQ_U64(e.attr_valid, 1, "attr_valid");
		CHECK_EQ_U64(e.attr_valid_nsec, 500000000, "attr_valid_nsec");
		check_attr(&e.attr, &P.entry.attr, FUSE_ATTR_DAX_FLAG, "entry attr");
	}

	/* A negative entry with a timeout is cached: nodeid 0, success. */
	memset(&P.entry, 0, sizeof(P.entry));
	P.entry.entry_timeout = 3.0;
	u = wc_lookup(c, 1, "neg");
	if (expect_payload(c, u, 128, "reply_entry negative with timeout")) {
		memcpy(&e, R.payload, sizeof(e));
		CHECK(e.nodeid == 0 && e.entry_valid == 3, "negative entry: nodeid %llu valid %llu",
		      (unsigned long long)e.nodeid, (unsigned long long)e.entry_valid);
	}
	/* Without a timeout it is a plain ENOENT. */
	P.entry.entry_timeout = 0;
	u = wc_lookup(c, 1, "neg");
	wc_expect(c, &R, u, ENOENT, "reply_entry ino 0 without timeout");

	/* Timeouts that are negative, NaN or huge are clamped. */
	fill_stat(&P.entry.attr);
	P.entry.ino = 9;
	P.entry.entry_timeout = -1.0;
	P.entry.attr_timeout = NAN;
	u = wc_lookup(c, 1, "t");
	if (expect_payload(c, u, 128, "reply_entry odd timeouts")) {
		memcpy(&e, R.payload, sizeof(e));
		CHECK(e.entry_valid == 0 && e.entry_valid_nsec == 0 && e.attr_valid == 0 &&
			      e.attr_valid_nsec == 0,
		      "negative / NaN timeouts: %llu.%u %llu.%u",
		      (unsigned long long)e.entry_valid, e.entry_valid_nsec,
		      (unsigned long long)e.attr_valid, e.attr_valid_nsec);
		CHECK_EQ_U64(e.attr.flags, 0, "attr_flags 0");
	}
	P.entry.entry_timeout = 1e30;
	P.entry.attr_timeout = INFINITY;
	u = wc_lookup(c, 1, "t");
	if (expect_payload(c, u, 128, "reply_entry huge timeouts")) {
		memcpy(&e, R.payload, sizeof(e));
		CHECK(e.entry_valid == UINT64_MAX && e.attr_valid == UINT64_MAX &&
			      e.entry_valid_nsec < 1000000000 && e.attr_valid_nsec < 1000000000,
		      "huge timeouts: %llu.%u %llu.%u", (unsigned long long)e.entry_valid,
		      e.entry_valid_nsec, (unsigned long long)e.attr_valid, e.attr_valid_nsec);
	}
}

static void test_create(struct wc *c)
{
	struct fuse_create_in in = { .flags = O_RDWR | O_CREAT, .mode = 0644 };
	struct fuse_entry_out e;
	struct fuse_open_out o;
	uint64_t u;

	memset(&P.entry, 0, sizeof(P.entry));
	P.entry.ino = 0x77;
	P.entry.generation = 5;
	fill_stat(&P.entry.attr);
	P.entry.attr_timeout = 0.5;
	P.entry.entry_timeout = 4;
	memset(&P.fi, 0, sizeof(P.fi));
	P.fi.fh = 0xfedcba9876543210ull;
	P.fi.direct_io = 1;
	P.fi.keep_cache = 1;
	P.fi.nonseekable = 1;
	P.fi.parallel_direct_writes = 1;
	u = wc_send3(c, FUSE_CREATE, 1, &in, sizeof(in), "new", 4, NULL, 0);
	if (!expect_payload(c, u, 128 + 16, "reply_create"))
		return;
	memcpy(&e, R.payload, sizeof(e));
	memcpy(&o, R.payload + sizeof(e), sizeof(o));
	CHECK_EQ_U64(e.nodeid, 0x77, "create nodeid");
	CHECK_EQ_U64(e.generation, 5, "create generation");
	CHECK_EQ_U64(e.entry_valid, 4, "create entry_valid");
	CHECK_EQ_U64(e.attr_valid_nsec, 500000000, "create attr_valid_nsec");
	check_attr(&e.attr, &P.entry.attr, 0, "create attr");
	CHECK_EQ_U64(o.fh, 0xfedcba9876543210ull, "create fh");
	CHECK_EQ_U64(o.open_flags, FOPEN_DIRECT_IO | FOPEN_KEEP_CACHE | FOPEN_NONSEEKABLE |
					   FOPEN_PARALLEL_DIRECT_WRITES,
		     "create open_flags");
	CHECK(o.backing_id == 0, "create: open_out backing_id %d", o.backing_id);
}

static void test_attr(struct wc *c)
{
	struct fuse_attr_out a;
	uint64_t u;

	fill_stat(&P.st);
	P.timeout = 7.125;
	P.how = H_ATTR;
	u = wc_getattr(c, 2);
	if (expect_payload(c, u, 104, "reply_attr")) { /* sizeof fuse_attr_out since 7.9 */
		memcpy(&a, R.payload, sizeof(a));
		CHECK_EQ_U64(a.attr_valid, 7, "attr_valid");
		CHECK_EQ_U64(a.attr_valid_nsec, 125000000, "attr_valid_nsec");
		CHECK(a.dummy == 0, "attr_out dummy %u", a.dummy);
		check_attr(&a.attr, &P.st, 0, "reply_attr");
	}
	P.how = H_ATTR_FLAGS;
	P.attr_flags = FUSE_ATTR_DAX_FLAG;
	u = wc_getattr(c, 2);
	if (expect_payload(c, u, 104, "reply_attr_flags")) {
		memcpy(&a, R.payload, sizeof(a));
		check_attr(&a.attr, &P.st, FUSE_ATTR_DAX_FLAG, "reply_attr_flags");
	}
	P.how = H_DEFAULT;
}

/* The same sizes under the oldest protocol the library serves (7.12). */
static void test_old_minor(void)
{
	struct wc c;
	uint64_t u;

	if (wc_start(&c, &ops, sizeof(ops), NULL, NULL) < 0) {
		CHECK(0, "7.12: cannot start a session");
		return;
	}
	u = wc_send_init(&c, 12, FUSE_ASYNC_READ);
	if (wc_expect(&c, &R, u, 0, "INIT 7.12")) {
		CHECK(R.plen == FUSE_COMPAT_22_INIT_OUT_SIZE, "INIT 7.12: reply %zu bytes",
		      R.plen);
		memset(&P.entry, 0, sizeof(P.entry));
		P.entry.ino = 3;
		fill_stat(&P.entry.attr);
		u = wc_lookup(&c, 1, "x");
		expect_payload(&c, u, 128, "reply_entry under 7.12");
		fill_stat(&P.st);
		P.how = H_ATTR;
		u = wc_getattr(&c, 3);
		expect_payload(&c, u, 104, "reply_attr under 7.12");
		P.how = H_DEFAULT;
	}
	CHECK(wc_stop(&c) == 0, "7.12: loop error");
}

/* ------------------------------------------------------------------------
 * Small fixed replies.
 * --------------------------------------------------------------------- */

static void test_small(struct wc *c)
{
	struct fuse_write_in wr = { .size = 3 };
	struct fuse_open_in oin = { .flags = O_RDONLY };
	struct fuse_getxattr_in gx = { .size = 0 };
	struct fuse_bmap_in bm = { .block = 5, .blocksize = 512 };
	struct fuse_poll_in pin = { .fh = 1, .kh = 9, .flags = FUSE_POLL_SCHEDULE_NOTIFY,
				    .events = POLLIN };
	struct fuse_lseek_in ls = { .fh = 1, .offset = 10, .whence = SEEK_DATA };
	struct fuse_write_out wo;
	struct fuse_open_out oo;
	struct fuse_getxattr_out xo;
	struct fuse_bmap_out bo;
	struct fuse_poll_out po;
	struct fuse_lseek_out lo;
	uint64_t u;

	P.link = "../some/where";
	u = wc_send(c, FUSE_READLINK, 2, NULL, 0);
	if (expect_payload(c, u, strlen(P.link), "reply_readlink (no NUL)"))
		CHECK(memcmp(R.payload, P.link, strlen(P.link)) == 0, "readlink bytes");

	memset(&P.fi, 0, sizeof(P.fi));
	P.fi.fh = 0x0102030405060708ull;
	P.fi.keep_cache = 1;
	P.fi.cache_readdir = 1;
	P.fi.noflush = 1;
	u = wc_send(c, FUSE_OPEN, 2, &oin, sizeof(oin));
	if (expect_payload(c, u, 16, "reply_open")) {
		memcpy(&oo, R.payload, sizeof(oo));
		CHECK_EQ_U64(oo.fh, 0x0102030405060708ull, "open fh");
		CHECK_EQ_U64(oo.open_flags, FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR | FOPEN_NOFLUSH,
			     "open_flags");
		CHECK(oo.backing_id == 0, "open: backing_id %d", oo.backing_id);
	}

	P.count = 3;
	u = wc_send3(c, FUSE_WRITE, 2, &wr, sizeof(wr), "abc", 3, NULL, 0);
	if (expect_payload(c, u, 8, "reply_write")) {
		memcpy(&wo, R.payload, sizeof(wo));
		CHECK(wo.size == 3 && wo.padding == 0, "write_out %u/%u", wo.size, wo.padding);
	}

	P.how = H_XATTR_SIZE;
	P.count = 0x1234;
	u = wc_send3(c, FUSE_GETXATTR, 2, &gx, sizeof(gx), "user.a", 7, NULL, 0);
	if (expect_payload(c, u, 8, "reply_xattr")) {
		memcpy(&xo, R.payload, sizeof(xo));
		CHECK(xo.size == 0x1234 && xo.padding == 0, "getxattr_out %u", xo.size);
	}
	P.how = H_DEFAULT; /* the value itself goes back with reply_buf */
	gx.size = 100;
	u = wc_send3(c, FUSE_GETXATTR, 2, &gx, sizeof(gx), "user.a", 7, NULL, 0);
	if (expect_payload(c, u, 7, "getxattr value via reply_buf"))
		CHECK(memcmp(R.payload, DATA, 7) == 0, "xattr value bytes");

	P.idx = 0xabcdef0123ull;
	u = wc_send(c, FUSE_BMAP, 2, &bm, sizeof(bm));
	if (expect_payload(c, u, 8, "reply_bmap")) {
		memcpy(&bo, R.payload, sizeof(bo));
		CHECK_EQ_U64(bo.block, 0xabcdef0123ull, "bmap block");
	}

	P.revents = POLLIN | POLLOUT | POLLHUP;
	u = wc_send(c, FUSE_POLL, 2, &pin, sizeof(pin));
	if (expect_payload(c, u, 8, "reply_poll")) {
		memcpy(&po, R.payload, sizeof(po));
		CHECK(po.revents == (POLLIN | POLLOUT | POLLHUP) && po.padding == 0,
		      "poll_out revents 0x%x", po.revents);
	}

	P.off = 0x7000000000001234ll;
	u = wc_send(c, FUSE_LSEEK, 2, &ls, sizeof(ls));
	if (expect_payload(c, u, 8, "reply_lseek")) {
		memcpy(&lo, R.payload, sizeof(lo));
		CHECK_EQ_U64(lo.offset, 0x7000000000001234ull, "lseek offset");
	}
}

static void test_statfs(struct wc *c)
{
	struct fuse_statfs_out so;
	uint64_t u;

	memset(&P.vfs, 0, sizeof(P.vfs));
	P.vfs.f_bsize = 4096;
	P.vfs.f_frsize = 1024;
	P.vfs.f_blocks = 1000000;
	P.vfs.f_bfree = 500000;
	P.vfs.f_bavail = 400000;
	P.vfs.f_files = 9999;
	P.vfs.f_ffree = 8888;
	P.vfs.f_namemax = 255;
	u = wc_send(c, FUSE_STATFS, 1, NULL, 0);
	if (!expect_payload(c, u, 80, "reply_statfs"))
		return;
	memcpy(&so, R.payload, sizeof(so));
	CHECK(so.st.bsize == 4096 && so.st.frsize == 1024 && so.st.blocks == 1000000 &&
		      so.st.bfree == 500000 && so.st.bavail == 400000 && so.st.files == 9999 &&
		      so.st.ffree == 8888 && so.st.namelen == 255,
	      "statfs fields");
	CHECK(so.st.padding == 0 && all_zero(so.st.spare, sizeof(so.st.spare)),
	      "statfs padding/spare not zero");
}

static void test_lock(struct wc *c)
{
	struct fuse_lk_in in = { .fh = 1, .owner = 2, .lk = { 0, 100, F_WRLCK, 0 } };
	struct fuse_lk_out lo;
	uint64_t u;

	P.lock = (struct flock){ .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 100,
				 .l_len = 50, .l_pid = 4321 };
	u = wc_send(c, FUSE_GETLK, 2, &in, sizeof(in));
	if (expect_payload(c, u, 24, "reply_lock")) {
		memcpy(&lo, R.payload, sizeof(lo));
		CHECK(lo.lk.type == F_RDLCK && lo.lk.start == 100 && lo.lk.end == 149 &&
			      lo.lk.pid == 4321,
		      "lock: type %u %llu..%llu pid %u", lo.lk.type,
		      (unsigned long long)lo.lk.start, (unsigned long long)lo.lk.end, lo.lk.pid);
	}
	/* l_len 0 means "to the end of the file": OFFSET_MAX. */
	P.lock.l_len = 0;
	u = wc_send(c, FUSE_GETLK, 2, &in, sizeof(in));
	if (expect_payload(c, u, 24, "reply_lock to EOF")) {
		memcpy(&lo, R.payload, sizeof(lo));
		CHECK(lo.lk.start == 100 && lo.lk.end == (uint64_t)INT64_MAX,
		      "lock to EOF: end %llx", (unsigned long long)lo.lk.end);
	}
	/* A length that runs past OFFSET_MAX is clamped, not overflowed. */
	P.lock.l_start = INT64_MAX - 10;
	P.lock.l_len = INT64_MAX;
	u = wc_send(c, FUSE_GETLK, 2, &in, sizeof(in));
	if (expect_payload(c, u, 24, "reply_lock overflowing")) {
		memcpy(&lo, R.payload, sizeof(lo));
		CHECK(lo.lk.start == (uint64_t)INT64_MAX - 10 && lo.lk.end == (uint64_t)INT64_MAX,
		      "lock overflowing: %llx..%llx", (unsigned long long)lo.lk.start,
		      (unsigned long long)lo.lk.end);
	}
	/* A negative length covers the bytes before start (POSIX). */
	P.lock.l_start = 100;
	P.lock.l_len = -40;
	u = wc_send(c, FUSE_GETLK, 2, &in, sizeof(in));
	if (expect_payload(c, u, 24, "reply_lock negative length")) {
		memcpy(&lo, R.payload, sizeof(lo));
		CHECK(lo.lk.start == 60 && lo.lk.end == 99, "lock negative length: %llu..%llu",
		      (unsigned long long)lo.lk.start, (unsigned long long)lo.lk.end);
	}
	P.lock = (struct flock){ .l_type = F_UNLCK };
	u = wc_send(c, FUSE_GETLK, 2, &in, sizeof(in));
	if (expect_payload(c, u, 24, "reply_lock unlocked")) {
		memcpy(&lo, R.payload, sizeof(lo));
		CHECK(lo.lk.type == F_UNLCK, "unlock type %u", lo.lk.type);
	}
}

static void test_statx(struct wc *c)
{
	struct fuse_statx_in in = { .fh = 0, .sx_mask = STATX_BASIC_STATS };
	struct fuse_statx_out so;
	uint64_t u;

	memset(&P.stx, 0, sizeof(P.stx));
	P.stx.stx_mask = STATX_BASIC_STATS | STATX_BTIME;
	P.stx.stx_blksize = 4096;
	P.stx.stx_attributes = STATX_ATTR_IMMUTABLE;
	P.stx.stx_nlink = 2;
	P.stx.stx_uid = 11;
	P.stx.stx_gid = 12;
	P.stx.stx_mode = S_IFREG | 0600;
	P.stx.stx_ino = 0x55;
	P.stx.stx_size = 0x10000;
	P.stx.stx_blocks = 128;
	P.stx.stx_attributes_mask = STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND;
	P.stx.stx_atime = (struct statx_timestamp){ .tv_sec = -5, .tv_nsec = 1 };
	P.stx.stx_btime = (struct statx_timestamp){ .tv_sec = 6, .tv_nsec = 2 };
	P.stx.stx_ctime = (struct statx_timestamp){ .tv_sec = 7, .tv_nsec = 3 };
	P.stx.stx_mtime = (struct statx_timestamp){ .tv_sec = 8, .tv_nsec = 4 };
	P.stx.stx_rdev_major = 8;
	P.stx.stx_rdev_minor = 1;
	P.stx.stx_dev_major = 253;
	P.stx.stx_dev_minor = 7;
	P.stx_flags = 0;
	P.timeout = 2.5;
	u = wc_send(c, FUSE_STATX, 2, &in, sizeof(in));
	if (!expect_payload(c, u, 288, "reply_statx"))
		return;
	memcpy(&so, R.payload, sizeof(so));
	CHECK(so.attr_valid == 2 && so.attr_valid_nsec == 500000000, "statx attr_valid");
	CHECK(so.flags == 0 && all_zero(so.spare, sizeof(so.spare)), "statx flags/spare");
	CHECK(so.stat.mask == (STATX_BASIC_STATS | STATX_BTIME) && so.stat.blksize == 4096 &&
		      so.stat.attributes == STATX_ATTR_IMMUTABLE && so.stat.nlink == 2 &&
		      so.stat.uid == 11 && so.stat.gid == 12 &&
		      so.stat.mode == (S_IFREG | 0600) && so.stat.ino == 0x55 &&
		      so.stat.size == 0x10000 && so.stat.blocks == 128 &&
		      so.stat.attributes_mask == (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND),
	      "statx fields");
	CHECK(so.stat.atime.tv_sec == -5 && so.stat.atime.tv_nsec == 1 &&
		      so.stat.btime.tv_sec == 6 && so.stat.btime.tv_nsec == 2 &&
		      so.stat.ctime.tv_sec == 7 && so.stat.ctime.tv_nsec == 3 &&
		      so.stat.mtime.tv_sec == 8 && so.stat.mtime.tv_nsec == 4,
	      "statx times");
	CHECK(so.stat.rdev_major == 8 && so.stat.rdev_minor == 1 && so.stat.dev_major == 253 &&
		      so.stat.dev_minor == 7,
	      "statx devices");
	CHECK(so.stat.__spare0[0] == 0 && all_zero(so.stat.__spare2, sizeof(so.stat.__spare2)) &&
		      so.stat.atime.__reserved == 0,
	      "statx spare fields not zero");
}

/* ------------------------------------------------------------------------
 * Data replies: buf, data (memory and fd vectors), iov.
 * --------------------------------------------------------------------- */

static uint64_t send_read(struct wc *c, uint64_t off, uint32_t size)
{
	struct fuse_read_in in = { .fh = 1, .offset = off, .size = size };

	return wc_send(c, FUSE_READ, 2, &in, sizeof(in));
}

static void test_data(struct wc *c)
{
	char path[] = "/tmp/test_reply.XXXXXX";
	unsigned char file[10000];
	int fd;
	uint64_t u;

	P.how = H_BUF;
	u = send_read(c, 0, 4096);
	if (expect_payload(c, u, 10, "reply_buf"))
		CHECK(memcmp(R.payload, DATA, 10) == 0, "reply_buf bytes");
	P.how = H_BUF_EMPTY;
	u = send_read(c, 0, 4096);
	if (expect_payload(c, u, 0, "reply_buf of 0 bytes"))
		CHECK(R.len == sizeof(struct fuse_out_header), "empty reply_buf is a bare header");

	P.how = H_DATA_MEM;
	u = send_read(c, 0, 4096);
	if (expect_payload(c, u, 10, "reply_data memory vector"))
		CHECK(memcmp(R.payload, "0123", 4) == 0 && memcmp(R.payload + 4, "klmnop", 6) == 0,
		      "reply_data memory bytes: %.10s", R.payload);
	P.how = H_DATA_MEM_OFF;
	u = send_read(c, 0, 4096);
	if (expect_payload(c, u, 9, "reply_data memory vector from off 1"))
		CHECK(memcmp(R.payload, "123", 3) == 0 && memcmp(R.payload + 3, "klmnop", 6) == 0,
		      "reply_data off bytes: %.9s", R.payload);

	fd = mkstemp(path);
	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	if (fd >= 0) {
		unlink(path);
		for (size_t i = 0; i < sizeof(file); i++)
			file[i] = (unsigned char)(i * 31 + 7);
		CHECK(pwrite(fd, file, sizeof(file), 0) == (ssize_t)sizeof(file), "pwrite");
		P.data_fd = fd;
		P.how = H_DATA_FD;
		u = send_read(c, 1000, 5000);
		if (expect_payload(c, u, 5000, "reply_data fd vector"))
			CHECK(memcmp(R.payload, file + 1000, 5000) == 0, "reply_data fd bytes");
		/* The file ends first: a short read, not an error. */
		u = send_read(c, 8000, 4096);
		if (expect_payload(c, u, 2000, "reply_data fd vector at EOF"))
			CHECK(memcmp(R.payload, file + 8000, 2000) == 0, "reply_data EOF bytes");
		close(fd);
	}

	P.how = H_IOV;
	u = send_read(c, 0, 4096);
	if (expect_payload(c, u, 8, "reply_iov"))
		CHECK(memcmp(R.payload, "012abcde", 8) == 0, "reply_iov bytes: %.8s", R.payload);
	P.how = H_IOV_TOO_MANY;
	u = send_read(c, 0, 4096);
	wc_expect(c, &R, u, EIO, "reply_iov with too many pieces");
	P.how = H_DEFAULT;
}

/* ------------------------------------------------------------------------
 * ioctl replies.
 * --------------------------------------------------------------------- */

static void test_ioctl(struct wc *c)
{
	struct fuse_ioctl_in in = { .fh = 1, .flags = FUSE_IOCTL_UNRESTRICTED, .cmd = 0x5401,
				    .arg = 0x1000, .in_size = 0, .out_size = 64 };
	struct fuse_ioctl_out io;
	struct fuse_ioctl_iovec v[3];
	uint64_t u;

	P.how = H_IOCTL;
	P.result = -7; /* the ioctl's own return value, passed as is */
	u = wc_send(c, FUSE_IOCTL, 2, &in, sizeof(in));
	if (expect_payload(c, u, 16 + 6, "reply_ioctl")) {
		memcpy(&io, R.payload, sizeof(io));
		CHECK(io.result == -7 && io.flags == 0 && io.in_iovs == 0 && io.out_iovs == 0,
		      "ioctl_out result %d flags %u", io.result, io.flags);
		CHECK(memcmp(R.payload + 16, DATA, 6) == 0, "reply_ioctl data");
	}
	P.how = H_IOCTL_EMPTY;
	P.result = 3;
	u = wc_send(c, FUSE_IOCTL, 2, &in, sizeof(in));
	if (expect_payload(c, u, 16, "reply_ioctl without data")) {
		memcpy(&io, R.payload, sizeof(io));
		CHECK(io.result == 3, "ioctl result %d", io.result);
	}

	P.how = H_IOCTL_RETRY;
	u = wc_send(c, FUSE_IOCTL, 2, &in, sizeof(in));
	if (expect_payload(c, u, 16 + 3 * 16, "reply_ioctl_retry")) {
		memcpy(&io, R.payload, sizeof(io));
		memcpy(v, R.payload + 16, sizeof(v));
		CHECK(io.flags == FUSE_IOCTL_RETRY && io.in_iovs == 2 && io.out_iovs == 1 &&
			      io.result == 0,
		      "retry: flags %u in %u out %u", io.flags, io.in_iovs, io.out_iovs);
		CHECK(v[0].base == 0x1000 && v[0].len == 16 && v[1].base == 0x2000 &&
			      v[1].len == 8 && v[2].base == 0x3000 && v[2].len == 32,
		      "retry iovecs");
	}
	P.how = H_IOCTL_RETRY_TOO_MANY;
	u = wc_send(c, FUSE_IOCTL, 2, &in, sizeof(in));
	wc_expect(c, &R, u, ENOMEM, "reply_ioctl_retry with 257 iovecs");

	P.how = H_IOCTL_IOV;
	P.result = 0;
	u = wc_send(c, FUSE_IOCTL, 2, &in, sizeof(in));
	if (expect_payload(c, u, 16 + 6, "reply_ioctl_iov")) {
		memcpy(&io, R.payload, sizeof(io));
		CHECK(io.result == 0 && io.flags == 0, "ioctl_iov header");
		CHECK(memcmp(R.payload + 16, "01qrst", 6) == 0, "ioctl_iov data: %.6s",
		      R.payload + 16);
	}
	P.how = H_IOCTL_IOV_TOO_MANY;
	u = wc_send(c, FUSE_IOCTL, 2, &in, sizeof(in));
	wc_expect(c, &R, u, ENOMEM, "reply_ioctl_iov with 257 pieces");
	P.how = H_DEFAULT;
}

/* ------------------------------------------------------------------------
 * err and none.
 * --------------------------------------------------------------------- */

static void err_case(struct wc *c, int err, int want, const char *what)
{
	struct fuse_access_in in = { .mask = 4 };
	uint64_t u;

	P.err = err;
	u = wc_send(c, FUSE_ACCESS, 2, &in, sizeof(in));
	if (wc_expect(c, &R, u, want, what))
		CHECK(R.len == sizeof(struct fuse_out_header), "%s: %zu bytes, want 16", what,
		      R.len);
}

static void test_err_none(struct wc *c)
{
	struct fuse_forget_in f = { .nlookup = 1 };
	uint64_t u;
	int before;

	err_case(c, 0, 0, "reply_err(0): a bare header");
	err_case(c, ENOENT, ENOENT, "reply_err(ENOENT)");
	err_case(c, EACCES, EACCES, "reply_err(EACCES)");
	err_case(c, 1, 1, "reply_err(1)");
	err_case(c, 511, 511, "reply_err(511), the largest the kernel takes");
	err_case(c, 512, EIO, "reply_err(512) becomes EIO");
	err_case(c, 100000, EIO, "reply_err(100000) becomes EIO");
	err_case(c, -ENOENT, EIO, "reply_err(-ENOENT) becomes EIO");
	err_case(c, INT32_MIN, EIO, "reply_err(INT_MIN) becomes EIO");

	/* none: no reply at all; the next request's reply is the next message. */
	before = atomic_load(&forgets);
	P.how = H_ATTR;
	fill_stat(&P.st);
	wc_send(c, FUSE_FORGET, 2, &f, sizeof(f));
	u = wc_getattr(c, 2);
	expect_payload(c, u, 104, "GETATTR right after FORGET (reply_none sent nothing)");
	CHECK(atomic_load(&forgets) == before + 1, "forget handler not called");
	P.how = H_DEFAULT;
}

/* ------------------------------------------------------------------------
 * Directory entries.
 * --------------------------------------------------------------------- */

static const char *const NAMES[] = { "a", "abcdefgh", "abcdefghi", "0123456789abcdef" };
#define N_NAMES (sizeof(NAMES) / sizeof(NAMES[0]))

/* fuse_dirent is 24 bytes, the name follows, the record is padded to 8. */
static size_t dirent_size(const char *name)
{
	return (24 + strlen(name) + 7) & ~(size_t)7;
}

/* Walk the records in R's payload; returns how many were well formed. */
static size_t check_dirents(bool plus, size_t want_entries, const char *what)
{
	size_t pos = 0, n = 0;
	const size_t head = plus ? 128 : 0;

	while (pos < R.plen && n < N_NAMES) {
		struct fuse_dirent d;
		const char *name = NAMES[n];
		size_t rec = head + dirent_size(name);

		CHECK(pos % 8 == 0, "%s: record %zu at offset %zu, not 8-aligned", what, n, pos);
		if (pos + rec > R.plen) {
			CHECK(0, "%s: record %zu runs past the payload", what, n);
			break;
		}
		if (plus) {
			struct fuse_entry_out e;

			memcpy(&e, R.payload + pos, sizeof(e));
			CHECK(e.nodeid == 100 + n && e.generation == P.entry.generation &&
				      e.entry_valid == 3 && e.attr_valid == 1 &&
				      e.attr_valid_nsec == 250000000,
			      "%s: record %zu entry_out nodeid %llu", what, n,
			      (unsigned long long)e.nodeid);
			CHECK(e.attr.ino == 100 + n && e.attr.mode == P.entry.attr.st_mode &&
				      e.attr.size == (uint64_t)P.entry.attr.st_size &&
				      e.attr.flags == FUSE_ATTR_DAX_FLAG,
			      "%s: record %zu attributes", what, n);
		}
		memcpy(&d, R.payload + pos + head, sizeof(d));
		CHECK(d.ino == 100 + n, "%s: record %zu ino %llu", what, n,
		      (unsigned long long)d.ino);
		CHECK(d.off == n + 1, "%s: record %zu off %llu", what, n,
		      (unsigned long long)d.off);
		CHECK(d.namelen == strlen(name), "%s: record %zu namelen %u", what, n, d.namelen);
		CHECK(d.type == ((plus ? P.entry.attr.st_mode : P.st.st_mode) & S_IFMT) >> 12,
		      "%s: record %zu type %u", what, n, d.type);
		CHECK(memcmp(R.payload + pos + head + 24, name, strlen(name)) == 0,
		      "%s: record %zu name", what, n);
		CHECK(all_zero(R.payload + pos + head + 24 + strlen(name),
			       rec - head - 24 - strlen(name)),
		      "%s: record %zu padding not zero", what, n);
		pos += rec;
		n++;
	}
	CHECK(pos == R.plen, "%s: %zu payload bytes left over", what, R.plen - pos);
	CHECK(n == want_entries, "%s: %zu records, want %zu", what, n, want_entries);
	return n;
}

static void dir_case(struct wc *c, bool plus, uint32_t size, size_t want_entries,
		     const char *what)
{
	struct fuse_read_in in = { .fh = 1, .offset = 0, .size = size };
	size_t want_len = 0, total = 0;
	uint64_t u;

	for (size_t i = 0; i < N_NAMES; i++) {
		size_t rec = (plus ? 128 : 0) + dirent_size(NAMES[i]);

		if (i < want_entries)
			want_len += rec;
		if (i <= want_entries && i < N_NAMES)
			total += rec;
	}
	u = wc_send(c, plus ? FUSE_READDIRPLUS : FUSE_READDIR, 1, &in, sizeof(in));
	if (!expect_payload(c, u, want_len, what))
		return;
	check_dirents(plus, want_entries, what);
	CHECK(atomic_load(&dir_needed) == total, "%s: the encoder reported %zu bytes needed, want %zu",
	      what, atomic_load(&dir_needed), total);
	CHECK(atomic_load(&dir_untouched), "%s: an entry that did not fit wrote to the buffer",
	      what);
	CHECK(atomic_load(&dir_null_size_ok), "%s: a NULL buffer gave a different size", what);
}

static void test_dirents(struct wc *c)
{
	size_t all = 0, allp = 0;

	fill_stat(&P.st);
	P.st.st_mode = S_IFLNK | 0777;
	memset(&P.entry, 0, sizeof(P.entry));
	fill_stat(&P.entry.attr);
	P.entry.attr.st_mode = S_IFDIR | 0755;
	P.entry.generation = 31;
	P.entry.entry_timeout = 3;
	P.entry.attr_timeout = 1.25;
	P.entry.attr_flags = FUSE_ATTR_DAX_FLAG;
	P.names = NAMES;
	P.n_names = N_NAMES;
	for (size_t i = 0; i < N_NAMES; i++) {
		all += dirent_size(NAMES[i]);
		allp += 128 + dirent_size(NAMES[i]);
	}
	CHECK(dirent_size("a") == 32 && dirent_size("abcdefgh") == 32 &&
		      dirent_size("abcdefghi") == 40,
	      "test bug: dirent sizes");

	dir_case(c, false, 4096, N_NAMES, "readdir, all fit");
	dir_case(c, false, (uint32_t)all, N_NAMES, "readdir, exactly enough");
	dir_case(c, false, (uint32_t)all - 1, N_NAMES - 1, "readdir, one byte short");
	dir_case(c, false, 64, 2, "readdir, room for two");
	dir_case(c, false, 31, 0, "readdir, no room for one");
	dir_case(c, true, 4096, N_NAMES, "readdirplus, all fit");
	dir_case(c, true, (uint32_t)allp, N_NAMES, "readdirplus, exactly enough");
	dir_case(c, true, (uint32_t)allp - 1, N_NAMES - 1, "readdirplus, one byte short");
	dir_case(c, true, 160, 1, "readdirplus, room for one");
	dir_case(c, true, 159, 0, "readdirplus, no room for one");
	P.names = NULL;
	P.n_names = 0;
}

int main(void)
{
	struct fuse_init_out out;
	struct wc c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	wc_watchdog(60);
	if (wc_start(&c, &ops, sizeof(ops), NULL, NULL) < 0) {
		CHECK(0, "cannot start a session");
		return wc_summary("test_reply");
	}
	if (wc_init(&c, WC_INIT_FLAGS, &out)) {
		test_entry(&c);
		test_create(&c);
		test_attr(&c);
		test_small(&c);
		test_statfs(&c);
		test_lock(&c);
		test_statx(&c);
		test_data(&c);
		test_ioctl(&c);
		test_err_none(&c);
		test_dirents(&c);
	}
	CHECK(wc_stop(&c) == 0, "the loop returned an error after a clean hang-up");
	test_old_minor();
	return wc_summary("test_reply");
}
