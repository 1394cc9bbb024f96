/*
 * Session test over a socketpair transport: plays the kernel against a real
 * fuse_session loop and sends it bad input (broken framing, requests out of
 * order, bad names and lengths), checking each clear error and that the
 * server still serves afterwards.
 */
#include "wire_client.h"

#include <sys/stat.h>

/* The file system: root (1) holds one regular file "file" (2). */
#define FILE_INO 2

static atomic_int lookups;	/* handler calls, to prove refusals skip them */
static atomic_int getattrs;
static atomic_int writes;
static atomic_int forgets;

static void fill_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = 5;
	}
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	atomic_fetch_add(&lookups, 1);
	if (parent != FUSE_ROOT_ID || strcmp(name, "file") != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FILE_INO;
	e.generation = 1;
	fill_stat(FILE_INO, &e.attr);
	e.attr_timeout = 1.0;
	e.entry_timeout = 1.0;
	fuse_reply_entry(req, &e);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	atomic_fetch_add(&getattrs, 1);
	if (ino != FUSE_ROOT_ID && ino != FILE_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_stat(ino, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	(void)buf;
	(void)off;
	(void)fi;
	atomic_fetch_add(&writes, 1);
	fuse_reply_write(req, size);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	atomic_fetch_add(&forgets, 1);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	(void)f;
	atomic_fetch_add(&forgets, (int)count);
	fuse_reply_none(req);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.lookup = fs_lookup,
	.getattr = fs_getattr,
	.write = fs_write,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
};

static struct wc_reply R;

/* ------------------------------------------------------------------------
 * Helpers: the good requests that prove the server still serves.
 * --------------------------------------------------------------------- */

static void expect_good_lookup(struct wc *c, const char *after)
{
	char what[160];
	struct fuse_entry_out e;
	uint64_t u = wc_lookup(c, FUSE_ROOT_ID, "file");

	snprintf(what, sizeof(what), "LOOKUP file after %s", after);
	if (!wc_expect(c, &R, u, 0, what))
		return;
	CHECK(R.plen == sizeof(e), "%s: payload %zu bytes", what, R.plen);
	memcpy(&e, R.payload, sizeof(e));
	CHECK(e.nodeid == FILE_INO, "%s: nodeid %llu", what, (unsigned long long)e.nodeid);
	CHECK(e.attr.ino == FILE_INO && (e.attr.mode & S_IFMT) == S_IFREG,
	      "%s: attr ino %llu mode 0%o", what, (unsigned long long)e.attr.ino, e.attr.mode);
}

static void expect_good_getattr(struct wc *c, const char *after)
{
	char what[160];
	struct fuse_attr_out a;
	uint64_t u = wc_getattr(c, FILE_INO);

	snprintf(what, sizeof(what), "GETATTR after %s", after);
	if (!wc_expect(c, &R, u, 0, what))
		return;
	CHECK(R.plen == sizeof(a), "%s: payload %zu bytes", what, R.plen);
	memcpy(&a, R.payload, sizeof(a));
	CHECK(a.attr.ino == FILE_INO && a.attr.size == 5, "%s: attr ino %llu size %llu", what,
	      (unsigned long long)a.attr.ino, (unsigned long long)a.attr.size);
}

static void expect_good(struct wc *c, const char *after)
{
	expect_good_lookup(c, after);
	expect_good_getattr(c, after);
}

/*
 * Send a request that must be refused with err before reaching any handler,
 * then check the server still answers good requests.
 */
static void expect_refused(struct wc *c, uint64_t unique, int err, const char *what)
{
	int l = atomic_load(&lookups), g = atomic_load(&getattrs), w = atomic_load(&writes);

	wc_expect(c, &R, unique, err, what);
	CHECK(atomic_load(&lookups) == l && atomic_load(&getattrs) == g &&
		      atomic_load(&writes) == w,
	      "%s: a handler was called for a refused request", what);
	expect_good(c, what);
}

static bool start_and_init(struct wc *c)
{
	struct fuse_init_out out;

	if (wc_start(c, &fs_ops, sizeof(fs_ops), NULL, NULL) < 0)
		return false;
	return wc_init(c, WC_INIT_FLAGS, &out);
}

/* ------------------------------------------------------------------------
 * INIT.
 * --------------------------------------------------------------------- */

static void test_init_reply(void)
{
	struct wc c;
	struct fuse_init_out out;
	uint64_t granted;

	if (wc_start(&c, &fs_ops, sizeof(fs_ops), NULL, NULL) < 0) {
		CHECK(0, "init: cannot start a session");
		return;
	}
	if (wc_init(&c, WC_INIT_FLAGS, &out)) {
		granted = wc_init_flags(&out);
		CHECK(out.major == 7, "init: major %u", out.major);
		CHECK(out.minor == FUSE_KERNEL_MINOR_VERSION, "init: minor %u, want %u", out.minor,
		      FUSE_KERNEL_MINOR_VERSION);
		CHECK((granted & ~WC_INIT_FLAGS) == 0,
		      "init: reply grants flags the client did not offer: 0x%llx",
		      (unsigned long long)(granted & ~WC_INIT_FLAGS));
		CHECK(granted & FUSE_ASYNC_READ, "init: ASYNC_READ not granted (flags 0x%llx)",
		      (unsigned long long)granted);
		CHECK(granted & FUSE_BIG_WRITES, "init: BIG_WRITES not granted");
		CHECK(!(granted & FUSE_MAP_ALIGNMENT) && out.map_alignment == 0,
		      "init: MAP_ALIGNMENT granted without a window (map_alignment %u)",
		      out.map_alignment);
		CHECK(out.max_write >= 4096, "init: max_write %u", out.max_write);
		if (granted & FUSE_MAX_PAGES)
			CHECK(out.max_pages > 0 &&
				      (uint64_t)out.max_pages * 4096 >= out.max_write,
			      "init: max_pages %u does not cover max_write %u", out.max_pages,
			      out.max_write);
		CHECK(out.max_readahead <= 128 * 1024, "init: max_readahead %u above the offer",
		      out.max_readahead);
	}
	expect_good(&c, "INIT");
	CHECK(wc_stop(&c) == 0, "init: loop returned an error after a clean hang-up");
}

/* An old client (7.22) gets the short 24-byte INIT reply. */
static void test_init_old_client(void)
{
	struct wc c;
	uint64_t u;

	if (wc_start(&c, &fs_ops, sizeof(fs_ops), NULL, NULL) < 0) {
		CHECK(0, "init 7.22: cannot start a session");
		return;
	}
	u = wc_send_init(&c, 22, FUSE_ASYNC_READ);
	if (wc_expect(&c, &R, u, 0, "INIT 7.22"))
		CHECK(R.plen == FUSE_COMPAT_22_INIT_OUT_SIZE, "INIT 7.22: reply %zu bytes, want %d",
		      R.plen, FUSE_COMPAT_22_INIT_OUT_SIZE);
	expect_good(&c, "INIT 7.22");
	wc_stop(&c);
}

/* A major the library does not speak is refused, and INIT can follow. */
static void test_init_bad_major(void)
{
	struct wc c;
	struct fuse_init_in in;
	struct fuse_init_out out;
	uint64_t u;

	if (wc_start(&c, &fs_ops, sizeof(fs_ops), NULL, NULL) < 0) {
		CHECK(0, "init major 6: cannot start a session");
		return;
	}
	memset(&in, 0, sizeof(in));
	in.major = 6;
	in.minor = 99;
	u = wc_send(&c, FUSE_INIT, 0, &in, sizeof(in));
	wc_expect(&c, &R, u, EPROTO, "INIT 6.99");
	if (wc_init(&c, WC_INIT_FLAGS, &out))
		expect_good(&c, "INIT 6.99 then 7.x");
	wc_stop(&c);
}

/* ------------------------------------------------------------------------
 * Order: requests before INIT, a second INIT.
 * --------------------------------------------------------------------- */

static void test_order(void)
{
	struct wc c;
	struct fuse_init_out out;
	uint64_t u;

	if (wc_start(&c, &fs_ops, sizeof(fs_ops), NULL, NULL) < 0) {
		CHECK(0, "order: cannot start a session");
		return;
	}
	/* Earlier cases ran handlers; count from here on. */
	int lookups0 = atomic_load(&lookups), getattrs0 = atomic_load(&getattrs);

	u = wc_lookup(&c, FUSE_ROOT_ID, "file");
	wc_expect(&c, &R, u, EIO, "LOOKUP before INIT");
	u = wc_getattr(&c, FUSE_ROOT_ID);
	wc_expect(&c, &R, u, EIO, "GETATTR before INIT");
	CHECK(atomic_load(&lookups) == lookups0 && atomic_load(&getattrs) == getattrs0,
	      "order: a handler ran before INIT");
	if (wc_init(&c, WC_INIT_FLAGS, &out))
		expect_good(&c, "INIT after refused requests");
	u = wc_send_init(&c, FUSE_KERNEL_MINOR_VERSION, WC_INIT_FLAGS);
	expect_refused(&c, u, EIO, "second INIT");
	wc_stop(&c);
}

/* ------------------------------------------------------------------------
 * Broken framing: the session ends cleanly, and a fresh one works.
 * --------------------------------------------------------------------- */

static void framing_case(const char *what, const void *buf, size_t len)
{
	struct wc c;

	if (!start_and_init(&c)) {
		CHECK(0, "%s: cannot start a session", what);
		wc_stop(&c);
		return;
	}
	CHECK(wc_send_raw(&c, buf, len) == 0, "%s: send failed", what);
	CHECK(wc_wait_loop_end(&c, 5000), "%s: the session loop did not end", what);
	if (atomic_load(&c.loop_done))
		CHECK(c.loop_ret < 0, "%s: loop returned %d, want a negative errno", what,
		      c.loop_ret);
	/* Ending the session means no answer to the broken message. */
	wc_expect_silence(&c, &R, 100, what);
	wc_stop(&c);

	/* A fresh session on a fresh connection still works. */
	if (start_and_init(&c))
		expect_good(&c, what);
	else
		CHECK(0, "%s: a fresh session does not start", what);
	CHECK(wc_stop(&c) == 0, "%s: fresh session's loop failed", what);
}

static void test_framing(void)
{
	unsigned char buf[128];
	struct fuse_in_header h;
	struct fuse_getattr_in ga;

	memset(&ga, 0, sizeof(ga));
	memset(&h, 0, sizeof(h));
	h.opcode = FUSE_GETATTR;
	h.unique = 1000;
	h.nodeid = FILE_INO;

	/* Shorter than a header: 39 bytes, and a lone byte. */
	h.len = 39;
	memcpy(buf, &h, sizeof(h));
	framing_case("truncated header (39 bytes)", buf, 39);
	framing_case("1-byte message", buf, 1);

	/* len field larger than the bytes sent. */
	h.len = sizeof(h) + sizeof(ga) + 8;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &ga, sizeof(ga));
	framing_case("len field larger than the message", buf, sizeof(h) + sizeof(ga));

	/* len field smaller than the bytes sent. */
	h.len = sizeof(h) + sizeof(ga) - 8;
	memcpy(buf, &h, sizeof(h));
	framing_case("len field smaller than the message", buf, sizeof(h) + sizeof(ga));

	/* len field 0 on a whole header. */
	h.len = 0;
	memcpy(buf, &h, sizeof(h));
	framing_case("len field 0", buf, sizeof(h) + sizeof(ga));
}

/* ------------------------------------------------------------------------
 * Bad requests on a working session.
 * --------------------------------------------------------------------- */

static void test_unknown_opcode(struct wc *c)
{
	struct fuse_getattr_in ga;
	uint64_t u;

	memset(&ga, 0, sizeof(ga));
	u = wc_send(c, 9999, FUSE_ROOT_ID, &ga, sizeof(ga));
	expect_refused(c, u, ENOSYS, "opcode 9999");
	u = wc_send(c, 63, FUSE_ROOT_ID, NULL, 0);
	expect_refused(c, u, ENOSYS, "opcode 63");
	/* CUSE_INIT (4096) is decoded, but a FUSE session is no CUSE device. */
	u = wc_send(c, 4096, FUSE_ROOT_ID, NULL, 0);
	expect_refused(c, u, EINVAL, "CUSE_INIT without its argument");
	{
		struct cuse_init_in ci = { .major = 7, .minor = 45 };

		u = wc_send(c, 4096, FUSE_ROOT_ID, &ci, sizeof(ci));
		expect_refused(c, u, EPROTO, "CUSE_INIT on a FUSE session");
	}
}

static void test_names(struct wc *c)
{
	char name[1100];
	uint64_t u;

	/* 1025 bytes: one over FUSE_NAME_MAX. */
	memset(name, 'a', 1025);
	name[1025] = '\0';
	u = wc_lookup(c, FUSE_ROOT_ID, name);
	expect_refused(c, u, ENAMETOOLONG, "LOOKUP of a 1025-byte name");

	/* 1024 bytes is legal: it reaches the handler (ENOENT there). */
	name[1024] = '\0';
	{
		int l = atomic_load(&lookups);

		u = wc_lookup(c, FUSE_ROOT_ID, name);
		wc_expect(c, &R, u, ENOENT, "LOOKUP of a 1024-byte name");
		CHECK(atomic_load(&lookups) == l + 1,
		      "LOOKUP of a 1024-byte name did not reach the handler");
	}

	/* No NUL: the message ends right after the name's bytes. */
	u = wc_send(c, FUSE_LOOKUP, FUSE_ROOT_ID, "file", 4);
	expect_refused(c, u, EINVAL, "LOOKUP name without its NUL");

	u = wc_lookup(c, FUSE_ROOT_ID, "dir/file");
	expect_refused(c, u, EINVAL, "LOOKUP name with '/'");

	u = wc_lookup(c, FUSE_ROOT_ID, "");
	expect_refused(c, u, EINVAL, "LOOKUP of an empty name");

	u = wc_send(c, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0);
	expect_refused(c, u, EINVAL, "LOOKUP with no name at all");
}

static void test_short_args(struct wc *c)
{
	struct fuse_getattr_in ga;
	struct fuse_write_in wi;
	struct fuse_read_in ri;
	uint64_t u;

	memset(&ga, 0, sizeof(ga));
	u = wc_send(c, FUSE_GETATTR, FILE_INO, &ga, sizeof(ga) - 8);
	expect_refused(c, u, EINVAL, "GETATTR with 8 of 16 argument bytes");

	u = wc_send(c, FUSE_GETATTR, FILE_INO, NULL, 0);
	expect_refused(c, u, EINVAL, "GETATTR without argument");

	memset(&ri, 0, sizeof(ri));
	u = wc_send(c, FUSE_READ, FILE_INO, &ri, sizeof(ri) - 1);
	expect_refused(c, u, EINVAL, "READ one byte short");

	memset(&wi, 0, sizeof(wi));
	u = wc_send(c, FUSE_WRITE, FILE_INO, &wi, 24);
	expect_refused(c, u, EINVAL, "WRITE with the 7.8 24-byte argument on 7.45");
}

static void test_write_lengths(struct wc *c)
{
	struct fuse_write_in wi;
	char data[16] = "0123456789abcdef";
	uint64_t u;
	int w;

	memset(&wi, 0, sizeof(wi));
	wi.size = 10;
	u = wc_send3(c, FUSE_WRITE, FILE_INO, &wi, sizeof(wi), data, 9, NULL, 0);
	expect_refused(c, u, EINVAL, "WRITE with 9 data bytes for size 10");
	u = wc_send3(c, FUSE_WRITE, FILE_INO, &wi, sizeof(wi), data, 11, NULL, 0);
	expect_refused(c, u, EINVAL, "WRITE with 11 data bytes for size 10");
	wi.size = 0xffffffff;
	u = wc_send3(c, FUSE_WRITE, FILE_INO, &wi, sizeof(wi), data, 16, NULL, 0);
	expect_refused(c, u, EINVAL, "WRITE with size 4 GiB - 1 and 16 data bytes");

	/* The exact length is served. */
	wi.size = 10;
	w = atomic_load(&writes);
	u = wc_send3(c, FUSE_WRITE, FILE_INO, &wi, sizeof(wi), data, 10, NULL, 0);
	if (wc_expect(c, &R, u, 0, "WRITE of 10 bytes")) {
		struct fuse_write_out wo;

		CHECK(R.plen == sizeof(wo), "WRITE reply payload %zu", R.plen);
		memcpy(&wo, R.payload, sizeof(wo));
		CHECK(wo.size == 10, "WRITE reply size %u", wo.size);
	}
	CHECK(atomic_load(&writes) == w + 1, "WRITE of 10 bytes did not reach the handler");
}

static void test_forgets(struct wc *c)
{
	struct fuse_forget_in fi = { .nlookup = 1 };
	struct {
		struct fuse_batch_forget_in in;
		struct fuse_forget_one one[2];
	} bf;
	int f;
	uint64_t u;

	/* FORGET: handled, never answered. */
	f = atomic_load(&forgets);
	wc_send(c, FUSE_FORGET, FILE_INO, &fi, sizeof(fi));
	u = wc_getattr(c, FILE_INO);
	/* The next message must be GETATTR's reply, not a FORGET answer. */
	wc_expect(c, &R, u, 0, "GETATTR right after FORGET");
	CHECK(atomic_load(&forgets) == f + 1, "FORGET did not reach the handler");

	/* BATCH_FORGET with a count that does not match its entries: dropped,
	 * no reply, no handler call. */
	memset(&bf, 0, sizeof(bf));
	bf.one[0].nodeid = FILE_INO;
	bf.one[0].nlookup = 1;
	bf.one[1].nodeid = FILE_INO;
	bf.one[1].nlookup = 1;
	bf.in.count = 3;
	f = atomic_load(&forgets);
	wc_send(c, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf));
	bf.in.count = 1;
	wc_send(c, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf));
	bf.in.count = 0xffffffff;
	wc_send(c, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf));
	u = wc_getattr(c, FILE_INO);
	wc_expect(c, &R, u, 0, "GETATTR right after bad BATCH_FORGETs");
	CHECK(atomic_load(&forgets) == f, "a bad BATCH_FORGET reached the handler (%d)",
	      atomic_load(&forgets) - f);
	expect_good(c, "bad BATCH_FORGETs");

	/* A good one: two entries, no reply. */
	bf.in.count = 2;
	wc_send(c, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf));
	u = wc_getattr(c, FILE_INO);
	wc_expect(c, &R, u, 0, "GETATTR right after BATCH_FORGET");
	CHECK(atomic_load(&forgets) == f + 2, "good BATCH_FORGET: %d forgets, want 2",
	      atomic_load(&forgets) - f);
}

static void test_interrupt(struct wc *c)
{
	struct fuse_interrupt_in ii;
	uint64_t u;

	/* The kernel's INTERRUPT unique is the target's with bit 0 set. */
	memset(&ii, 0, sizeof(ii));
	ii.unique = 0x7000;
	c->next_unique = 0x7000 | 1;
	u = wc_send(c, FUSE_INTERRUPT, 0, &ii, sizeof(ii));
	c->next_unique = 0x8000;
	wc_expect(c, &R, u, EAGAIN, "INTERRUPT of an unknown unique");
	expect_good(c, "INTERRUPT of an unknown unique");

	/* A short INTERRUPT gets no reply (it is a no-reply opcode). */
	u = wc_send(c, FUSE_INTERRUPT, 0, &ii, 4);
	(void)u;
	u = wc_getattr(c, FILE_INO);
	wc_expect(c, &R, u, 0, "GETATTR right after a short INTERRUPT");
}

static void test_bad_requests(void)
{
	struct wc c;

	if (!start_and_init(&c)) {
		CHECK(0, "bad requests: cannot start a session");
		wc_stop(&c);
		return;
	}
	test_unknown_opcode(&c);
	test_names(&c);
	test_short_args(&c);
	test_write_lengths(&c);
	test_forgets(&c);
	test_interrupt(&c);
	/* Nothing unexpected is left on the connection. */
	wc_expect_silence(&c, &R, 100, "end of bad-request tests");
	CHECK(wc_stop(&c) == 0, "bad requests: loop returned an error");
}

/* ------------------------------------------------------------------------
 * A loop of the file system's own: fuse_session_receive_buf() and
 * fuse_session_process_buf(), on the test's thread.
 * --------------------------------------------------------------------- */

/* Receive and process one request; the reply is then waiting on c->fd. */
static int own_loop_step(struct wc *c, struct fuse_buf *buf)
{
	int n = fuse_session_receive_buf(c->se, buf);

	if (n > 0)
		fuse_session_process_buf(c->se, buf);
	return n;
}

static void test_own_loop(void)
{
	static const struct fuse_custom_io io = { .writev = wc_io_writev, .read = wc_io_read };
	char *argv[] = { "own_loop", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	struct fuse_buf buf = { .mem = NULL };
	struct wc c;
	int sv[2], n;
	uint64_t u;

	memset(&c, 0, sizeof(c));
	c.next_unique = 2;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		CHECK(0, "own loop: socketpair: %s", strerror(errno));
		return;
	}
	c.fd = sv[0];
	c.se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), NULL);
	fuse_opt_free_args(&args);
	CHECK(c.se != NULL, "own loop: fuse_session_new failed");
	if (!c.se || fuse_session_custom_io(c.se, &io, sizeof(io), sv[1]) != 0) {
		CHECK(0, "own loop: cannot set up the session");
		close(sv[0]);
		close(sv[1]);
		if (c.se)
			fuse_session_destroy(c.se);
		return;
	}
	u = wc_send_init(&c, FUSE_KERNEL_MINOR_VERSION, WC_INIT_FLAGS);
	n = own_loop_step(&c, &buf);
	CHECK(n == (int)(sizeof(struct fuse_in_header) + sizeof(struct fuse_init_in)),
	      "own loop: receive_buf returned %d for INIT", n);
	CHECK(buf.mem != NULL && buf.mem_size >= (size_t)n,
	      "own loop: receive_buf did not allocate a buffer (mem_size %zu)", buf.mem_size);
	wc_expect(&c, &R, u, 0, "own loop: INIT");
	u = wc_lookup(&c, FUSE_ROOT_ID, "file");
	CHECK(own_loop_step(&c, &buf) > 0, "own loop: receive_buf for LOOKUP");
	wc_expect(&c, &R, u, 0, "own loop: LOOKUP");
	u = wc_lookup(&c, FUSE_ROOT_ID, "nothing-here");
	CHECK(own_loop_step(&c, &buf) > 0, "own loop: receive_buf for LOOKUP");
	wc_expect(&c, &R, u, ENOENT, "own loop: LOOKUP of a missing name");
	/* The "kernel" hangs up: receive_buf reports the end with 0. */
	close(c.fd);
	n = fuse_session_receive_buf(c.se, &buf);
	CHECK(n == 0, "own loop: receive_buf after hang-up returned %d, want 0", n);
	free(buf.mem);
	fuse_session_destroy(c.se);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	wc_watchdog(120);
	test_init_reply();
	test_init_old_client();
	test_init_bad_major();
	test_order();
	test_framing();
	test_bad_requests();
	test_own_loop();
	return wc_summary("test_session");
}
