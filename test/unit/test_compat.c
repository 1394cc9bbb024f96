/*
 * The libfuse compatibility layer over a socketpair (the test plays the
 * kernel): a CUSE device's session (CUSE_INIT and the device's requests,
 * which this host's kernel cannot send: it has no CONFIG_CUSE), libfuse
 * 3.17's want/want_ext conversion after init() (what libfuse's own
 * test_want_conversion.c checks through its private headers), the 3.12-3.16
 * spelling of fuse_lowlevel_notify_expire_entry(), and
 * fuse_parse_cmdline_30() leaving the fields a 3.0 struct lacked alone.
 */
#include "wire_client.h"
#include "cuse_lowlevel.h"

#include <sys/ioctl.h>

/* ------------------------------------------------------------------------
 * A session made by the caller (CUSE or a plain one), on a socketpair.
 * --------------------------------------------------------------------- */

static int start_on(struct wc *c, struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.writev = wc_io_writev,
		.read = wc_io_read,
	};
	int sv[2];

	memset(c, 0, sizeof(*c));
	c->next_unique = 2;
	c->se = se;
	if (!se || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		printf("test_compat: no session or socketpair\n");
		return -1;
	}
	c->fd = sv[0];
	c->server_fd = sv[1];
	if (fuse_session_custom_io(se, &io, sizeof(io), c->server_fd) != 0 ||
	    pthread_create(&c->thread, NULL, wc_loop_thread, c) != 0) {
		printf("test_compat: cannot start the session\n");
		return -1;
	}
	c->running = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * CUSE.
 * --------------------------------------------------------------------- */

static atomic_int cuse_inits, cuse_init_dones, cuse_opens, cuse_releases;
static char device[64];
static size_t device_len;

static void dev_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	atomic_fetch_add(&cuse_inits, 1);
	conn->max_read = 8192;
}

static void dev_init_done(void *userdata)
{
	(void)userdata;
	atomic_fetch_add(&cuse_init_dones, 1);
}

static void dev_open(fuse_req_t req, struct fuse_file_info *fi)
{
	atomic_fetch_add(&cuse_opens, 1);
	fi->fh = 77;
	fuse_reply_open(req, fi);
}

static void dev_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	if ((size_t)off >= device_len)
		size = 0;
	else if (off + size > device_len)
		size = device_len - (size_t)off;
	fuse_reply_buf(req, device + off, size);
}

static void dev_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	if (fi->fh != 77 || (size_t)off + size > sizeof(device)) {
		fuse_reply_err(req, fi->fh != 77 ? EBADF : ENOSPC);
		return;
	}
	memcpy(device + off, buf, size);
	if ((size_t)off + size > device_len)
		device_len = (size_t)off + size;
	fuse_reply_write(req, size);
}

#define DEV_GET_SIZE _IOR('E', 0, size_t)

static void dev_ioctl(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi,
		      unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	(void)arg; (void)fi; (void)flags; (void)in_buf; (void)in_bufsz;
	if ((unsigned int)cmd != DEV_GET_SIZE || out_bufsz < sizeof(size_t)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_ioctl(req, 0, &device_len, sizeof(device_len));
}

static void dev_release(fuse_req_t req, struct fuse_file_info *fi)
{
	(void)fi;
	atomic_fetch_add(&cuse_releases, 1);
	fuse_reply_err(req, 0);
}

static const struct cuse_lowlevel_ops dev_ops = {
	.init = dev_init,
	.init_done = dev_init_done,
	.open = dev_open,
	.read = dev_read,
	.write = dev_write,
	.ioctl = dev_ioctl,
	.release = dev_release,
};

static void test_cuse(void)
{
	static const char *info[] = { "DEVNAME=fdxcuse", "MODE=0600" };
	static const char want_info[] = "DEVNAME=fdxcuse\0MODE=0600";
	const struct cuse_info ci = { .dev_major = 250, .dev_minor = 7,
				      .dev_info_argc = 2, .dev_info_argv = info,
				      .flags = CUSE_UNRESTRICTED_IOCTL };
	char *argv[] = { "test_compat", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	static struct wc_reply r;
	struct cuse_init_in ci_in = { .major = 7, .minor = 45 };
	struct cuse_init_out out;
	struct fuse_open_in oi = { .flags = O_RDWR };
	struct fuse_write_in wi = { .size = 5 };
	struct fuse_read_in ri = { .size = 100 };
	struct fuse_ioctl_in ii = { .cmd = DEV_GET_SIZE, .out_size = sizeof(size_t) };
	struct fuse_release_in rel = { 0 };
	struct wc c;
	uint64_t u, fh;

	if (start_on(&c, cuse_lowlevel_new(&args, &ci, &dev_ops, NULL)) != 0) {
		CHECK(0, "cuse session did not start");
		return;
	}
	/* Nothing before CUSE_INIT; a FUSE INIT is not a CUSE session's. */
	u = wc_send(&c, FUSE_OPEN, 1, &oi, sizeof(oi));
	wc_expect(&c, &r, u, EIO, "OPEN before CUSE_INIT");
	u = wc_send_init(&c, 45, WC_INIT_FLAGS);
	wc_expect(&c, &r, u, EIO, "FUSE INIT on a CUSE session");

	u = wc_send(&c, CUSE_INIT, 0, &ci_in, sizeof(ci_in));
	if (wc_expect(&c, &r, u, 0, "CUSE_INIT")) {
		CHECK(r.plen == sizeof(out) + sizeof(want_info),
		      "CUSE_INIT reply: %zu payload bytes, want %zu", r.plen,
		      sizeof(out) + sizeof(want_info));
		memcpy(&out, r.payload, sizeof(out));
		CHECK(out.major == 7, "CUSE_INIT major %u", out.major);
		CHECK(out.flags == CUSE_UNRESTRICTED_IOCTL, "CUSE_INIT flags 0x%x", out.flags);
		CHECK(out.dev_major == 250 && out.dev_minor == 7, "device %u:%u",
		      out.dev_major, out.dev_minor);
		CHECK(out.max_read == 8192, "max_read %u (init() set 8192)", out.max_read);
		CHECK(out.max_write >= 4096, "max_write %u", out.max_write);
		CHECK(r.plen >= sizeof(out) + sizeof(want_info) &&
		      memcmp(r.payload + sizeof(out), want_info, sizeof(want_info)) == 0,
		      "device info strings after cuse_init_out");
	}
	CHECK(atomic_load(&cuse_inits) == 1, "init() called %d times", atomic_load(&cuse_inits));
	u = wc_send(&c, CUSE_INIT, 0, &ci_in, sizeof(ci_in));
	wc_expect(&c, &r, u, EIO, "a second CUSE_INIT");
	/* init_done() runs after the reply went out, so look after a round trip. */
	CHECK(atomic_load(&cuse_init_dones) == 1, "init_done() called %d times",
	      atomic_load(&cuse_init_dones));

	/* The device's requests reach the inode-less operations. */
	u = wc_send(&c, FUSE_OPEN, 1, &oi, sizeof(oi));
	if (wc_expect(&c, &r, u, 0, "OPEN")) {
		struct fuse_open_out oo;

		memcpy(&oo, r.payload, sizeof(oo));
		CHECK(oo.fh == 77, "OPEN: fh %llu", (unsigned long long)oo.fh);
	}
	fh = 77;
	wi.fh = fh;
	wi.offset = 3;
	u = wc_send3(&c, FUSE_WRITE, 1, &wi, sizeof(wi), "hello", 5, NULL, 0);
	if (wc_expect(&c, &r, u, 0, "WRITE")) {
		struct fuse_write_out wo;

		memcpy(&wo, r.payload, sizeof(wo));
		CHECK(wo.size == 5, "WRITE: %u bytes", wo.size);
	}
	ri.fh = fh;
	u = wc_send(&c, FUSE_READ, 1, &ri, sizeof(ri));
	if (wc_expect(&c, &r, u, 0, "READ"))
		CHECK(r.plen == 8 && memcmp(r.payload + 3, "hello", 5) == 0,
		      "READ: %zu bytes", r.plen);
	ii.fh = fh;
	u = wc_send(&c, FUSE_IOCTL, 1, &ii, sizeof(ii));
	if (wc_expect(&c, &r, u, 0, "IOCTL")) {
		struct fuse_ioctl_out io;
		size_t size = 0;

		memcpy(&io, r.payload, sizeof(io));
		if (r.plen >= sizeof(io) + sizeof(size))
			memcpy(&size, r.payload + sizeof(io), sizeof(size));
		CHECK(io.result == 0 && size == 8, "IOCTL: result %d, size %zu", io.result,
		      size);
	}
	rel.fh = fh;
	u = wc_send(&c, FUSE_RELEASE, 1, &rel, sizeof(rel));
	wc_expect(&c, &r, u, 0, "RELEASE");
	CHECK(atomic_load(&cuse_opens) == 1 && atomic_load(&cuse_releases) == 1,
	      "opens %d, releases %d", atomic_load(&cuse_opens), atomic_load(&cuse_releases));
	/* An operation the device lacks answers ENOSYS, the session goes on. */
	u = wc_send(&c, FUSE_FSYNC, 1, &rel, sizeof(struct fuse_fsync_in));
	wc_expect(&c, &r, u, ENOSYS, "FSYNC without fsync()");
	CHECK(wc_stop(&c) == 0, "the CUSE session's loop did not end cleanly");
	fuse_opt_free_args(&args);
}

static void test_cuse_device_info_limit(void)
{
	static char big[CUSE_INIT_INFO_MAX + 10];
	const char *info[] = { big };
	const struct cuse_info ci = { .dev_info_argc = 1, .dev_info_argv = info };
	char *argv[] = { "test_compat", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	struct fuse_session *se;

	memset(big, 'x', sizeof(big) - 1);
	se = cuse_lowlevel_new(&args, &ci, &dev_ops, NULL);
	CHECK(se == NULL, "device info over CUSE_INIT_INFO_MAX accepted");
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
}

/* ------------------------------------------------------------------------
 * want / want_ext after init(): what the INIT reply grants.
 * --------------------------------------------------------------------- */

enum init_style { OLD_STYLE, NEW_STYLE, CONFLICT };
static enum init_style style;

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	switch (style) {
	case OLD_STYLE:	/* a pre-3.17 file system: the 32-bit want */
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		conn->want &= ~FUSE_CAP_ASYNC_READ;
		/* ... mixed with a helper that uses the new calls */
		fuse_set_feature_flag(conn, FUSE_CAP_DONT_MASK);
		break;
	case NEW_STYLE:
		fuse_set_feature_flag(conn, FUSE_CAP_WRITEBACK_CACHE);
		fuse_set_feature_flag(conn, FUSE_CAP_DONT_MASK);
		fuse_unset_feature_flag(conn, FUSE_CAP_ASYNC_READ);
		break;
	case CONFLICT:	/* both fields changed directly, differently */
		conn->want_ext |= FUSE_CAP_WRITEBACK_CACHE;
		conn->want &= ~FUSE_CAP_ASYNC_READ;
		break;
	}
}

static uint64_t granted_with(enum init_style s)
{
	static const struct fuse_lowlevel_ops ops = { .init = fs_init };
	struct fuse_init_out out;
	uint64_t flags = 0;
	struct wc c;

	style = s;
	if (wc_start(&c, &ops, sizeof(ops), NULL, NULL) != 0) {
		CHECK(0, "session did not start");
		return 0;
	}
	if (wc_init(&c, WC_INIT_FLAGS | FUSE_WRITEBACK_CACHE, &out))
		flags = wc_init_flags(&out);
	wc_stop(&c);
	return flags;
}

static void test_want_conversion(void)
{
	uint64_t f;
	struct fuse_conn_info conn;

	f = granted_with(OLD_STYLE);
	CHECK((f & FUSE_WRITEBACK_CACHE) && (f & FUSE_DONT_MASK) && !(f & FUSE_ASYNC_READ),
	      "old style: granted 0x%llx", (unsigned long long)f);
	f = granted_with(NEW_STYLE);
	CHECK((f & FUSE_WRITEBACK_CACHE) && (f & FUSE_DONT_MASK) && !(f & FUSE_ASYNC_READ),
	      "new style: granted 0x%llx", (unsigned long long)f);
	/* A conflict keeps want_ext (writeback on, async read still on). */
	f = granted_with(CONFLICT);
	CHECK((f & FUSE_WRITEBACK_CACHE) && (f & FUSE_ASYNC_READ),
	      "conflict: granted 0x%llx", (unsigned long long)f);

	/* Outside init(): a conflict is refused, bits above 31 survive. */
	memset(&conn, 0, sizeof(conn));
	conn.capable_ext = FUSE_CAP_SPLICE_READ | FUSE_CAP_POSIX_LOCKS;
	conn.want_ext = conn.capable_ext;
	conn.want = (uint32_t)conn.want_ext;
	conn.want_ext |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn.want &= ~FUSE_CAP_SPLICE_READ;
	CHECK(fuse_convert_to_conn_want_ext(&conn) == -EINVAL, "conflict not refused");
	memset(&conn, 0, sizeof(conn));
	conn.want_ext = (1ULL << 33) | FUSE_CAP_ASYNC_READ;
	conn.want = (uint32_t)conn.want_ext;
	CHECK(fuse_convert_to_conn_want_ext(&conn) == 0 &&
	      conn.want_ext == ((1ULL << 33) | FUSE_CAP_ASYNC_READ), "high bits lost");
	/* fuse_set_feature_flag() refuses what the client does not offer. */
	memset(&conn, 0, sizeof(conn));
	conn.capable_ext = FUSE_CAP_ASYNC_READ;
	CHECK(!fuse_set_feature_flag(&conn, FUSE_CAP_WRITEBACK_CACHE) && conn.want_ext == 0,
	      "set_feature_flag granted an unoffered capability");
	CHECK(fuse_set_feature_flag(&conn, FUSE_CAP_ASYNC_READ) &&
	      conn.want == FUSE_CAP_ASYNC_READ, "set_feature_flag");
}

/* ------------------------------------------------------------------------
 * fuse_lowlevel_notify_expire_entry(): the 3.12-3.16 five-argument form.
 * --------------------------------------------------------------------- */

static void test_expire_entry_spellings(void)
{
	static const struct fuse_lowlevel_ops ops = { 0 };
	static struct wc_reply r;
	struct fuse_notify_inval_entry_out out;
	struct fuse_init_out io;
	struct wc c;
	int res;

	if (wc_start(&c, &ops, sizeof(ops), NULL, NULL) != 0 ||
	    !wc_init(&c, WC_INIT_FLAGS, &io)) {
		CHECK(0, "session did not start");
		return;
	}
	struct {
		int (*call)(struct wc *);
		uint32_t flags;
		const char *what;
	} cases[] = { { NULL, FUSE_EXPIRE_ONLY, "four arguments" },
		      { NULL, FUSE_EXPIRE_ONLY, "five, FUSE_LL_EXPIRE_ONLY" },
		      { NULL, 0, "five, 0 (invalidate)" } };
	for (size_t i = 0; i < 3; i++) {
		if (i == 0)
			res = fuse_lowlevel_notify_expire_entry(c.se, 1, "name", 4);
		else
			res = fuse_lowlevel_notify_expire_entry(c.se, 1, "name", 4,
				i == 1 ? FUSE_LL_EXPIRE_ONLY : FUSE_LL_INVALIDATE);
		CHECK(res == 0, "%s: %d", cases[i].what, res);
		if (wc_recv(&c, &r, 5000) < (ssize_t)(sizeof(r.h) + sizeof(out))) {
			CHECK(0, "%s: no notification", cases[i].what);
			continue;
		}
		memcpy(&out, r.payload, sizeof(out));
		CHECK(r.h.unique == 0 && r.h.error == FUSE_NOTIFY_INVAL_ENTRY,
		      "%s: code %d", cases[i].what, r.h.error);
		CHECK(out.parent == 1 && out.namelen == 4 && out.flags == cases[i].flags,
		      "%s: parent %llu namelen %u flags 0x%x", cases[i].what,
		      (unsigned long long)out.parent, out.namelen, out.flags);
	}
	wc_stop(&c);
}

/* ------------------------------------------------------------------------
 * conn->max_read: the mount option's value, as init() sees it.
 * --------------------------------------------------------------------- */

static atomic_uint seen_max_read;

static void max_read_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	atomic_store(&seen_max_read, conn->max_read);
}

static void test_max_read_from_mount_option(void)
{
	static const struct fuse_lowlevel_ops ops = { .init = max_read_init };
	char *argv[] = { "test_compat", "-o", "max_read=65536", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct fuse_init_out out;
	struct wc c;

	if (start_on(&c, fuse_session_new(&args, &ops, sizeof(ops), NULL)) != 0) {
		CHECK(0, "session did not start");
		return;
	}
	wc_init(&c, WC_INIT_FLAGS, &out);
	CHECK(atomic_load(&seen_max_read) == 65536, "init() saw max_read %u",
	      atomic_load(&seen_max_read));
	wc_stop(&c);
	fuse_opt_free_args(&args);
}

/* ------------------------------------------------------------------------
 * fuse_parse_cmdline_30(): a 3.0 struct ends before max_threads.
 * --------------------------------------------------------------------- */

static void test_parse_cmdline_30(void)
{
	char *argv[] = { "prog", "-f", "-s", "/mnt", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(4, argv);
	struct fuse_cmdline_opts opts;

	memset(&opts, 0, sizeof(opts));
	opts.max_threads = 0xdeadbeef;
	CHECK(fuse_parse_cmdline_30(&args, &opts) == 0, "parse");
	CHECK(opts.foreground && opts.singlethread && opts.mountpoint &&
	      strcmp(opts.mountpoint, "/mnt") == 0, "parsed fields");
	CHECK(opts.max_threads == 0xdeadbeef, "max_threads written: %u", opts.max_threads);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
}

int main(void)
{
	wc_watchdog(120);
	test_cuse();
	test_cuse_device_info_limit();
	test_want_conversion();
	test_expire_entry_spellings();
	test_parse_cmdline_30();
	test_max_read_from_mount_option();
	return wc_summary("test_compat");
}
