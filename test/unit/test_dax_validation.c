/*
 * DAX request validation over a real session: plays the kernel on a
 * socketpair against a session with a local DAX window, sends every bad
 * SETUPMAPPING / REMOVEMAPPING that doc/dax.md's errno table lists, and
 * checks the errno, that the handler never ran, and that a good request
 * right after reaches the handler with exactly the values sent. Also covers
 * the INIT negotiation of FUSE_MAP_ALIGNMENT and ENOSYS without DAX.
 */
#include "wire_client.h"

#include "fuse_dax.h"

/* ------------------------------------------------------------------------
 * The file system: handlers that record what they were given.
 * --------------------------------------------------------------------- */

struct setup_call {
	fuse_ino_t ino;
	uint64_t foffset, len, moffset, flags;
	bool have_fi;
	uint64_t fh;
};

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static int setup_calls;		/* handler calls since the last reset */
static struct setup_call last_setup;
static int remove_calls;
static unsigned last_remove_count;
static struct fuse_dax_range last_ranges[FUSE_REMOVEMAPPING_MAX_ENTRY];
static int handler_errno;	/* what the handlers answer with */

static void fs_setupmapping(fuse_req_t req, fuse_ino_t ino, uint64_t foffset, uint64_t len,
			    uint64_t moffset, uint64_t flags, struct fuse_file_info *fi)
{
	int err;

	pthread_mutex_lock(&rec_lock);
	setup_calls++;
	last_setup = (struct setup_call){ ino, foffset, len, moffset, flags, fi != NULL,
					  fi ? fi->fh : 0 };
	err = handler_errno;
	pthread_mutex_unlock(&rec_lock);
	fuse_reply_err(req, err);
}

static void fs_removemapping(fuse_req_t req, const struct fuse_dax_range *ranges,
			     unsigned int count)
{
	int err;

	pthread_mutex_lock(&rec_lock);
	remove_calls++;
	last_remove_count = count;
	memset(last_ranges, 0, sizeof(last_ranges));
	memcpy(last_ranges, ranges,
	       (count < FUSE_REMOVEMAPPING_MAX_ENTRY ? count : FUSE_REMOVEMAPPING_MAX_ENTRY) *
		       sizeof(*ranges));
	err = handler_errno;
	pthread_mutex_unlock(&rec_lock);
	fuse_reply_err(req, err);
}

static const struct fuse_lowlevel_ops dax_ops = {
	.setupmapping = fs_setupmapping,
	.removemapping = fs_removemapping,
};
/* DAX without a removemapping handler. */
static const struct fuse_lowlevel_ops setup_only_ops = {
	.setupmapping = fs_setupmapping,
};
/* A file system that cannot map: removemapping alone is not DAX. */
static const struct fuse_lowlevel_ops remove_only_ops = {
	.removemapping = fs_removemapping,
};

static void reset_calls(void)
{
	pthread_mutex_lock(&rec_lock);
	setup_calls = remove_calls = 0;
	memset(&last_setup, 0, sizeof(last_setup));
	last_remove_count = 0;
	handler_errno = 0;
	pthread_mutex_unlock(&rec_lock);
}

static int calls(int *counter)
{
	int n;

	pthread_mutex_lock(&rec_lock);
	n = *counter;
	pthread_mutex_unlock(&rec_lock);
	return n;
}

/* ------------------------------------------------------------------------
 * The window and the requests.
 * --------------------------------------------------------------------- */

static uint64_t A;		/* the window's alignment (page size) */
static uint64_t WIN;		/* window size */
#define WIN_PAGES 4096ull	/* 16 MiB on 4 KiB pages */
#define FH_NONE UINT64_MAX
#define RW (FUSE_SETUPMAPPING_FLAG_READ | FUSE_SETUPMAPPING_FLAG_WRITE)
#define NODE 5

static struct wc_reply R;

static uint64_t send_setup(struct wc *c, uint64_t fh, uint64_t foffset, uint64_t len,
			   uint64_t moffset, uint64_t flags)
{
	struct fuse_setupmapping_in in = {
		.fh = fh, .foffset = foffset, .len = len, .flags = flags, .moffset = moffset,
	};

	return wc_send(c, FUSE_SETUPMAPPING, NODE, &in, sizeof(in));
}

/*
 * REMOVEMAPPING with `count` in the argument and n entries after it, laid
 * out exactly as the kernel does: the entries start at byte 44.
 */
static uint64_t send_remove(struct wc *c, uint32_t count, const struct fuse_removemapping_one *e,
			    size_t n)
{
	struct fuse_removemapping_in in = { .count = count };

	return wc_send3(c, FUSE_REMOVEMAPPING, NODE, &in, sizeof(in), e, n * sizeof(*e), NULL,
			0);
}

/* Expect the reply to u to be a bare 16-byte header with errno err. */
static bool expect_bare(struct wc *c, uint64_t u, int err, const char *what)
{
	bool ok = wc_expect(c, &R, u, err, what);

	CHECK(R.len == sizeof(struct fuse_out_header),
	      "%s: reply is %zu bytes, want a bare 16-byte header", what, R.len);
	return ok;
}

static bool setup_matches(uint64_t fh, uint64_t foffset, uint64_t len, uint64_t moffset,
			  uint64_t flags, const char *what)
{
	struct setup_call s;
	int n;

	pthread_mutex_lock(&rec_lock);
	s = last_setup;
	n = setup_calls;
	pthread_mutex_unlock(&rec_lock);
	CHECK(n == 1, "%s: setupmapping handler called %d times, want 1", what, n);
	CHECK_EQ_U64(s.ino, NODE, what);
	CHECK_EQ_U64(s.foffset, foffset, what);
	CHECK_EQ_U64(s.len, len, what);
	CHECK_EQ_U64(s.moffset, moffset, what);
	CHECK_EQ_U64(s.flags, flags, what);
	if (fh == FH_NONE) {
		CHECK(!s.have_fi, "%s: fh (u64)-1 must give fi == NULL", what);
	} else {
		CHECK(s.have_fi, "%s: fh %llu gave fi == NULL", what, (unsigned long long)fh);
		CHECK_EQ_U64(s.fh, fh, what);
	}
	return n == 1;
}

/*
 * A good SETUPMAPPING: answered 0 with a bare header, the handler called
 * once with exactly these values.
 */
static void good_setup(struct wc *c, uint64_t fh, uint64_t foffset, uint64_t len,
		       uint64_t moffset, uint64_t flags, const char *what)
{
	uint64_t u;

	reset_calls();
	u = send_setup(c, fh, foffset, len, moffset, flags);
	expect_bare(c, u, 0, what);
	setup_matches(fh, foffset, len, moffset, flags, what);
}

static void good_remove(struct wc *c, const struct fuse_removemapping_one *e, uint32_t n,
			const char *what)
{
	unsigned got_count;
	int calls_now;
	uint64_t u;
	uint32_t i, bad = 0;

	reset_calls();
	u = send_remove(c, n, e, n);
	expect_bare(c, u, 0, what);
	pthread_mutex_lock(&rec_lock);
	calls_now = remove_calls;
	got_count = last_remove_count;
	for (i = 0; i < n && i < FUSE_REMOVEMAPPING_MAX_ENTRY; i++)
		if (last_ranges[i].moffset != e[i].moffset || last_ranges[i].len != e[i].len)
			bad++;
	pthread_mutex_unlock(&rec_lock);
	CHECK(calls_now == 1, "%s: removemapping handler called %d times, want 1", what,
	      calls_now);
	CHECK(got_count == n, "%s: handler got count %u, want %u", what, got_count, n);
	CHECK(bad == 0, "%s: %u of %u ranges decoded wrong", what, bad, n);
}

/* The good requests that prove the server still serves after a refusal. */
static void still_serving(struct wc *c, const char *after)
{
	struct fuse_removemapping_one e = { 3 * A, 2 * A };
	char what[200];

	snprintf(what, sizeof(what), "SETUPMAPPING after %s", after);
	good_setup(c, FH_NONE, 8 * A, 4 * A, 16 * A, FUSE_SETUPMAPPING_FLAG_READ, what);
	snprintf(what, sizeof(what), "REMOVEMAPPING after %s", after);
	good_remove(c, &e, 1, what);
}

/* Expect u refused with err before any handler ran, then good requests. */
static void expect_refused(struct wc *c, uint64_t u, int err, const char *what)
{
	expect_bare(c, u, err, what);
	CHECK(calls(&setup_calls) == 0 && calls(&remove_calls) == 0,
	      "%s: a handler ran for a refused request (setup %d, remove %d)", what,
	      calls(&setup_calls), calls(&remove_calls));
	still_serving(c, what);
}

static void bad_setup(struct wc *c, uint64_t foffset, uint64_t len, uint64_t moffset,
		      uint64_t flags, int err, const char *what)
{
	reset_calls();
	expect_refused(c, send_setup(c, FH_NONE, foffset, len, moffset, flags), err, what);
}

static void bad_remove(struct wc *c, uint32_t count, const struct fuse_removemapping_one *e,
		       size_t n, int err, const char *what)
{
	reset_calls();
	expect_refused(c, send_remove(c, count, e, n), err, what);
}

/* ------------------------------------------------------------------------
 * Sessions.
 * --------------------------------------------------------------------- */

static struct fuse_dax_window *new_window(void)
{
	struct fuse_dax_window *w = NULL;
	int err = fuse_dax_window_new_local(WIN, 0, &w);

	if (err) {
		CHECK(0, "fuse_dax_window_new_local(%llu): %s", (unsigned long long)WIN,
		      strerror(-err));
		return NULL;
	}
	return w;
}

/*
 * Start a session with ops and (if with_window) a window, INIT offering
 * flags; *granted receives the INIT flags of the reply. Returns false after
 * a failed check.
 */
static bool start(struct wc *c, const struct fuse_lowlevel_ops *ops, bool with_window,
		  struct fuse_dax_window **wp, uint64_t offer, struct fuse_init_out *out)
{
	*wp = NULL;
	if (with_window && (*wp = new_window()) == NULL)
		return false;
	if (wc_start(c, ops, sizeof(*ops), NULL, *wp) < 0) {
		CHECK(0, "cannot start a session");
		fuse_dax_window_destroy(*wp);
		*wp = NULL;
		return false;
	}
	if (!wc_init(c, offer, out)) {
		wc_stop(c);
		fuse_dax_window_destroy(*wp);
		*wp = NULL;
		return false;
	}
	return true;
}

static void stop(struct wc *c, struct fuse_dax_window *w)
{
	CHECK(wc_stop(c) == 0, "the loop returned an error after a clean hang-up");
	fuse_dax_window_destroy(w);
}

static unsigned log2_u64(uint64_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------------
 * INIT: MAP_ALIGNMENT only with an offer, a window and a handler.
 * --------------------------------------------------------------------- */

static void check_not_granted(const struct fuse_init_out *out, const char *what)
{
	CHECK(!(wc_init_flags(out) & FUSE_MAP_ALIGNMENT), "%s: MAP_ALIGNMENT granted", what);
	CHECK(out->map_alignment == 0, "%s: map_alignment %u, want 0", what, out->map_alignment);
}

/* Both DAX opcodes answer ENOSYS and never reach a handler. */
static void check_enosys(struct wc *c, const char *what)
{
	struct fuse_removemapping_one e = { 0, A };
	char buf[200];

	reset_calls();
	snprintf(buf, sizeof(buf), "SETUPMAPPING %s", what);
	expect_bare(c, send_setup(c, FH_NONE, 0, A, 0, RW), ENOSYS, buf);
	snprintf(buf, sizeof(buf), "REMOVEMAPPING %s", what);
	expect_bare(c, send_remove(c, 1, &e, 1), ENOSYS, buf);
	CHECK(calls(&setup_calls) == 0 && calls(&remove_calls) == 0,
	      "%s: a DAX handler ran", what);
}

static void test_init_granted(void)
{
	struct fuse_dax_window *w;
	struct fuse_init_out out;
	struct wc c;

	if (!start(&c, &dax_ops, true, &w, WC_INIT_FLAGS | FUSE_MAP_ALIGNMENT, &out))
		return;
	CHECK(wc_init_flags(&out) & FUSE_MAP_ALIGNMENT,
	      "init: MAP_ALIGNMENT offered, window and handler present, but not granted");
	CHECK(out.map_alignment == log2_u64(A), "init: map_alignment %u, want %u (log2 of %llu)",
	      out.map_alignment, log2_u64(A), (unsigned long long)A);
	CHECK(out.map_alignment <= 21, "init: map_alignment %u above the kernel's limit 21",
	      out.map_alignment);
	still_serving(&c, "INIT with DAX");
	stop(&c, w);
}

static void test_init_not_offered(void)
{
	struct fuse_dax_window *w;
	struct fuse_init_out out;
	struct wc c;

	if (!start(&c, &dax_ops, true, &w, WC_INIT_FLAGS, &out))
		return;
	check_not_granted(&out, "init without the client's offer");
	check_enosys(&c, "when the client did not offer MAP_ALIGNMENT");
	stop(&c, w);
}

static void test_init_no_window(void)
{
	struct fuse_dax_window *w;
	struct fuse_init_out out;
	struct wc c;

	if (!start(&c, &dax_ops, false, &w, WC_INIT_FLAGS | FUSE_MAP_ALIGNMENT, &out))
		return;
	check_not_granted(&out, "init without a window");
	check_enosys(&c, "without a window");
	stop(&c, w);
}

static void test_init_no_handler(void)
{
	struct fuse_dax_window *w;
	struct fuse_init_out out;
	struct wc c;

	if (!start(&c, &remove_only_ops, true, &w, WC_INIT_FLAGS | FUSE_MAP_ALIGNMENT, &out))
		return;
	check_not_granted(&out, "init without a setupmapping handler");
	check_enosys(&c, "without a setupmapping handler");
	stop(&c, w);
}

/*
 * A client older than 7.31 has no map_alignment field: even if it sets the
 * MAP_ALIGNMENT bit (and INIT_EXT, which 7.36 introduced), DAX stays off.
 */
static void test_init_old_minor(void)
{
	static struct wc_reply r;
	struct fuse_dax_window *w = new_window();
	struct fuse_init_out out;
	struct wc c;
	uint64_t u;

	if (!w)
		return;
	if (wc_start(&c, &dax_ops, sizeof(dax_ops), NULL, w) < 0) {
		CHECK(0, "cannot start a session");
		fuse_dax_window_destroy(w);
		return;
	}
	u = wc_send_init(&c, 30, WC_INIT_FLAGS | FUSE_MAP_ALIGNMENT);
	if (wc_expect(&c, &r, u, 0, "INIT 7.30 offering MAP_ALIGNMENT")) {
		memset(&out, 0, sizeof(out));
		memcpy(&out, r.payload, r.plen < sizeof(out) ? r.plen : sizeof(out));
		CHECK(!(out.flags & FUSE_MAP_ALIGNMENT), "INIT 7.30: MAP_ALIGNMENT granted");
		CHECK(!(out.flags & FUSE_INIT_EXT), "INIT 7.30: INIT_EXT answered");
		CHECK(out.map_alignment == 0, "INIT 7.30: map_alignment %u", out.map_alignment);
		check_enosys(&c, "after INIT 7.30");
	}
	stop(&c, w);
}

/*
 * DAX negotiated but no removemapping handler: validation still comes
 * first (a bad request gets its EINVAL), a good one gets ENOSYS.
 */
static void test_no_remove_handler(void)
{
	struct fuse_removemapping_one e = { 0, A };
	struct fuse_dax_window *w;
	struct fuse_init_out out;
	struct wc c;

	if (!start(&c, &setup_only_ops, true, &w, WC_INIT_FLAGS | FUSE_MAP_ALIGNMENT, &out))
		return;
	CHECK(wc_init_flags(&out) & FUSE_MAP_ALIGNMENT,
	      "setupmapping alone: MAP_ALIGNMENT not granted");
	reset_calls();
	expect_bare(&c, send_remove(&c, 0, NULL, 0), EINVAL,
		    "REMOVEMAPPING count 0 without a handler");
	expect_bare(&c, send_remove(&c, 1, &e, 1), ENOSYS, "REMOVEMAPPING without a handler");
	good_setup(&c, FH_NONE, 0, A, 0, RW, "SETUPMAPPING without a removemapping handler");
	stop(&c, w);
}

/* ------------------------------------------------------------------------
 * SETUPMAPPING rules.
 * --------------------------------------------------------------------- */

static void test_setup_rules(struct wc *c)
{
	const uint64_t top = UINT64_MAX & ~(A - 1);		/* largest aligned u64 */
	const uint64_t i64_top = (uint64_t)INT64_MAX & ~(A - 1);	/* 2^63 - A */
	struct fuse_setupmapping_in in;
	uint64_t u;

	/* Good ones first, including every edge that is still legal. */
	good_setup(c, FH_NONE, 0, A, 0, FUSE_SETUPMAPPING_FLAG_READ, "SETUPMAPPING read");
	good_setup(c, FH_NONE, 2 << 20, 2 << 20, 4 << 20, RW, "SETUPMAPPING 2 MiB rw");
	good_setup(c, FH_NONE, 0, WIN, 0, RW, "SETUPMAPPING the whole window");
	good_setup(c, FH_NONE, A, A, WIN - A, RW, "SETUPMAPPING the window's last page");
	good_setup(c, FH_NONE, i64_top - A, A, 0, RW,
		   "SETUPMAPPING ending at the largest aligned file offset");
	good_setup(c, FH_NONE, 0, A, 0, 0, "SETUPMAPPING flags 0");

	/* Unknown flag bits. */
	bad_setup(c, 0, A, 0, 1u << 2, EINVAL, "SETUPMAPPING flag bit 2");
	bad_setup(c, 0, A, 0, RW | (1ull << 63), EINVAL, "SETUPMAPPING flag bit 63");
	bad_setup(c, 0, A, 0, 1ull << 32, EINVAL, "SETUPMAPPING flag bit 32");
	/* Zero length. */
	bad_setup(c, 0, 0, 0, RW, EINVAL, "SETUPMAPPING len 0");
	/* Alignment of each of the three. */
	bad_setup(c, 1, A, 0, RW, EINVAL, "SETUPMAPPING foffset 1");
	bad_setup(c, A / 2, A, 0, RW, EINVAL, "SETUPMAPPING foffset half a page");
	bad_setup(c, 0, A + 512, 0, RW, EINVAL, "SETUPMAPPING len not aligned");
	bad_setup(c, 0, A - 1, 0, RW, EINVAL, "SETUPMAPPING len below the alignment");
	bad_setup(c, 0, A, A / 2, RW, EINVAL, "SETUPMAPPING moffset half a page");
	bad_setup(c, 0, A, WIN + 1, RW, EINVAL,
		  "SETUPMAPPING moffset misaligned and outside (alignment first)");
	/* Inside the window, overflow-safe. */
	bad_setup(c, 0, A, WIN, RW, ERANGE, "SETUPMAPPING moffset == window size");
	bad_setup(c, 0, A, WIN + A, RW, ERANGE, "SETUPMAPPING moffset past the window");
	bad_setup(c, 0, 2 * A, WIN - A, RW, ERANGE, "SETUPMAPPING end one page past");
	bad_setup(c, 0, WIN + A, 0, RW, ERANGE, "SETUPMAPPING longer than the window");
	bad_setup(c, 0, top, 2 * A, RW, ERANGE,
		  "SETUPMAPPING moffset + len wraps 64 bits");
	bad_setup(c, 0, A, top, RW, ERANGE, "SETUPMAPPING moffset near 2^64");
	/* The file range may not overflow. */
	bad_setup(c, i64_top, A, 0, RW, EOVERFLOW,
		  "SETUPMAPPING foffset + len == 2^63");
	bad_setup(c, top, A, 0, RW, EOVERFLOW, "SETUPMAPPING foffset + len wraps 64 bits");
	bad_setup(c, 1ull << 63, A, 0, RW, EOVERFLOW, "SETUPMAPPING foffset 2^63");

	/* An argument shorter than struct fuse_setupmapping_in. */
	memset(&in, 0, sizeof(in));
	in.len = A;
	in.fh = FH_NONE;
	reset_calls();
	u = wc_send(c, FUSE_SETUPMAPPING, NODE, &in, sizeof(in) - 1);
	expect_refused(c, u, EINVAL, "SETUPMAPPING argument one byte short");
	reset_calls();
	u = wc_send(c, FUSE_SETUPMAPPING, NODE, NULL, 0);
	expect_refused(c, u, EINVAL, "SETUPMAPPING without an argument");
}

/* fi: NULL for fh (u64)-1, else fi->fh is the client's fh. */
static void test_setup_fi(struct wc *c)
{
	good_setup(c, FH_NONE, 0, A, 0, RW, "SETUPMAPPING fh -1");
	good_setup(c, 42, 0, A, A, FUSE_SETUPMAPPING_FLAG_READ, "SETUPMAPPING fh 42");
	good_setup(c, 0, A, A, 2 * A, RW, "SETUPMAPPING fh 0");
	good_setup(c, UINT64_MAX - 1, 0, A, 0, RW, "SETUPMAPPING fh 2^64-2");
}

/* The handler's own errno reaches the client, and the next request works. */
static void test_handler_errors(struct wc *c)
{
	struct fuse_removemapping_one e = { 0, A };
	uint64_t u;

	reset_calls();
	handler_errno = EACCES;
	u = send_setup(c, FH_NONE, 0, A, 0, RW);
	expect_bare(c, u, EACCES, "SETUPMAPPING answered EACCES by the handler");
	CHECK(calls(&setup_calls) == 1, "SETUPMAPPING handler not called");
	handler_errno = ENOENT;
	u = send_remove(c, 1, &e, 1);
	expect_bare(c, u, ENOENT, "REMOVEMAPPING answered ENOENT by the handler");
	CHECK(calls(&remove_calls) == 1, "REMOVEMAPPING handler not called");
	still_serving(c, "handler errors");
}

/* ------------------------------------------------------------------------
 * REMOVEMAPPING rules.
 * --------------------------------------------------------------------- */

static void test_remove_rules(struct wc *c)
{
	static struct fuse_removemapping_one many[FUSE_REMOVEMAPPING_MAX_ENTRY + 1];
	const uint64_t top = UINT64_MAX & ~(A - 1);
	struct fuse_removemapping_one e[3];
	struct fuse_removemapping_in in;
	unsigned char raw[4 + 16 + 3];
	uint64_t u;

	/* Distinct values in every entry, so a shifted decode shows. */
	for (size_t i = 0; i <= FUSE_REMOVEMAPPING_MAX_ENTRY; i++) {
		many[i].moffset = (i * 7 % WIN_PAGES) * A;
		many[i].len = (1 + i % 3) * A;
		if (many[i].moffset + many[i].len > WIN)
			many[i].moffset = WIN - many[i].len;
	}

	/* Good: one, three, 256 entries, and the window's edges. */
	e[0] = (struct fuse_removemapping_one){ 0x10 * A, 0x3 * A };
	e[1] = (struct fuse_removemapping_one){ 0x200 * A, 0x40 * A };
	e[2] = (struct fuse_removemapping_one){ WIN - A, A };
	good_remove(c, e, 1, "REMOVEMAPPING 1 entry");
	good_remove(c, e, 3, "REMOVEMAPPING 3 entries (unaligned at byte 44)");
	good_remove(c, many, FUSE_REMOVEMAPPING_MAX_ENTRY, "REMOVEMAPPING 256 entries");
	e[0] = (struct fuse_removemapping_one){ 0, WIN };
	good_remove(c, e, 1, "REMOVEMAPPING the whole window");

	/* count: at least 1, at most 256. */
	bad_remove(c, 0, NULL, 0, EINVAL, "REMOVEMAPPING count 0");
	bad_remove(c, 0, e, 1, EINVAL, "REMOVEMAPPING count 0 with an entry");
	bad_remove(c, FUSE_REMOVEMAPPING_MAX_ENTRY + 1, many, FUSE_REMOVEMAPPING_MAX_ENTRY + 1,
		   EINVAL, "REMOVEMAPPING count 257");
	bad_remove(c, UINT32_MAX, e, 1, EINVAL, "REMOVEMAPPING count 2^32-1");
	bad_remove(c, 0x10000001u, e, 1, EINVAL, "REMOVEMAPPING count whose size wraps");

	/* The message is exactly header + 4 + 16 * count bytes. */
	e[0] = (struct fuse_removemapping_one){ 0, A };
	e[1] = (struct fuse_removemapping_one){ 2 * A, A };
	bad_remove(c, 2, e, 1, EINVAL, "REMOVEMAPPING 2 counted, 1 sent");
	bad_remove(c, 1, e, 2, EINVAL, "REMOVEMAPPING 1 counted, 2 sent");
	bad_remove(c, 256, many, 255, EINVAL, "REMOVEMAPPING 256 counted, 255 sent");
	in.count = 1;
	memcpy(raw, &in, 4);
	memcpy(raw + 4, &e[0], 16);
	memset(raw + 20, 0, 3);
	reset_calls();
	u = wc_send(c, FUSE_REMOVEMAPPING, NODE, raw, sizeof(raw));
	expect_refused(c, u, EINVAL, "REMOVEMAPPING 3 trailing bytes");
	reset_calls();
	u = wc_send(c, FUSE_REMOVEMAPPING, NODE, raw, 4 + 15);
	expect_refused(c, u, EINVAL, "REMOVEMAPPING entry one byte short");
	reset_calls();
	u = wc_send(c, FUSE_REMOVEMAPPING, NODE, raw, 2);
	expect_refused(c, u, EINVAL, "REMOVEMAPPING 2-byte argument");
	reset_calls();
	u = wc_send(c, FUSE_REMOVEMAPPING, NODE, NULL, 0);
	expect_refused(c, u, EINVAL, "REMOVEMAPPING without an argument");

	/* Each entry: non-zero, aligned, inside the window. */
	e[0] = (struct fuse_removemapping_one){ 0, 0 };
	bad_remove(c, 1, e, 1, EINVAL, "REMOVEMAPPING entry len 0");
	e[0] = (struct fuse_removemapping_one){ A / 2, A };
	bad_remove(c, 1, e, 1, EINVAL, "REMOVEMAPPING entry moffset misaligned");
	e[0] = (struct fuse_removemapping_one){ 0, A + 8 };
	bad_remove(c, 1, e, 1, EINVAL, "REMOVEMAPPING entry len misaligned");
	e[0] = (struct fuse_removemapping_one){ WIN, A };
	bad_remove(c, 1, e, 1, ERANGE, "REMOVEMAPPING entry at the window's end");
	e[0] = (struct fuse_removemapping_one){ WIN - A, 2 * A };
	bad_remove(c, 1, e, 1, ERANGE, "REMOVEMAPPING entry crossing the window's end");
	e[0] = (struct fuse_removemapping_one){ 2 * A, top };
	bad_remove(c, 1, e, 1, ERANGE, "REMOVEMAPPING entry whose end wraps");
	e[0] = (struct fuse_removemapping_one){ top, A };
	bad_remove(c, 1, e, 1, ERANGE, "REMOVEMAPPING entry near 2^64");
	/* A bad entry after good ones refuses the whole request. */
	e[0] = (struct fuse_removemapping_one){ 0, A };
	e[1] = (struct fuse_removemapping_one){ A, A };
	e[2] = (struct fuse_removemapping_one){ WIN, A };
	bad_remove(c, 3, e, 3, ERANGE, "REMOVEMAPPING third entry outside");
	e[2] = (struct fuse_removemapping_one){ A, 0 };
	bad_remove(c, 3, e, 3, EINVAL, "REMOVEMAPPING third entry len 0");
	{
		struct fuse_removemapping_one saved = many[255];

		many[255].moffset = WIN;
		bad_remove(c, 256, many, 256, ERANGE, "REMOVEMAPPING entry 255 outside");
		many[255] = saved;
	}
}

/*
 * The entries sit at byte 44 of the request, not 8-byte aligned. Build the
 * message by hand and check the bytes are where the kernel puts them, then
 * that every entry decodes to what was written there.
 */
static void test_remove_layout(struct wc *c)
{
	unsigned char msg[sizeof(struct fuse_in_header) + 4 + 2 * 16];
	struct fuse_in_header h = {
		.len = sizeof(msg), .opcode = FUSE_REMOVEMAPPING, .unique = 0,
		.nodeid = NODE,
	};
	uint64_t vals[4] = { 0x7 * A, 0x11 * A, 0x123 * A, 0x5 * A };
	uint32_t count = 2;
	int n;

	h.unique = c->next_unique;
	c->next_unique += 2;
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + 40, &count, 4);
	memcpy(msg + 44, &vals[0], 8);
	memcpy(msg + 52, &vals[1], 8);
	memcpy(msg + 60, &vals[2], 8);
	memcpy(msg + 68, &vals[3], 8);
	reset_calls();
	CHECK(wc_send_raw(c, msg, sizeof(msg)) == 0, "sending a hand-built REMOVEMAPPING");
	expect_bare(c, h.unique, 0, "REMOVEMAPPING built byte by byte");
	pthread_mutex_lock(&rec_lock);
	n = remove_calls;
	CHECK(n == 1 && last_remove_count == 2 && last_ranges[0].moffset == vals[0] &&
		      last_ranges[0].len == vals[1] && last_ranges[1].moffset == vals[2] &&
		      last_ranges[1].len == vals[3],
	      "REMOVEMAPPING at byte 44: calls %d count %u, [%llx+%llx] [%llx+%llx]", n,
	      last_remove_count, (unsigned long long)last_ranges[0].moffset,
	      (unsigned long long)last_ranges[0].len, (unsigned long long)last_ranges[1].moffset,
	      (unsigned long long)last_ranges[1].len);
	pthread_mutex_unlock(&rec_lock);
}

static void test_rules(void)
{
	struct fuse_dax_window *w;
	struct fuse_init_out out;
	struct wc c;

	if (!start(&c, &dax_ops, true, &w, WC_INIT_FLAGS | FUSE_MAP_ALIGNMENT, &out))
		return;
	if (!(wc_init_flags(&out) & FUSE_MAP_ALIGNMENT)) {
		CHECK(0, "DAX not negotiated: cannot test the rules");
		stop(&c, w);
		return;
	}
	test_setup_rules(&c);
	test_setup_fi(&c);
	test_handler_errors(&c);
	test_remove_rules(&c);
	test_remove_layout(&c);
	/* After all of that the session is alive and was never torn down. */
	still_serving(&c, "every rule");
	CHECK(!atomic_load(&c.loop_done), "the session loop ended during the rules");
	stop(&c, w);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	A = (uint64_t)sysconf(_SC_PAGESIZE);
	WIN = WIN_PAGES * A;
	wc_watchdog(120);

	test_init_granted();
	test_init_not_offered();
	test_init_no_window();
	test_init_no_handler();
	test_init_old_minor();
	test_no_remove_handler();
	test_rules();
	return wc_summary("test_dax_validation");
}
