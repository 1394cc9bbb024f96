/*
 * INIT negotiation: turn the client's offer into fuse_conn_info, let the
 * file system choose, and answer with what both sides support. DAX
 * (FUSE_MAP_ALIGNMENT) is negotiated here when a window is attached.
 */
#include "fuse_i.h"
#include "mount.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Oldest protocol we serve: 7.12 has everything the reply layouts assume. */
#define INIT_MIN_MINOR 12
/* FUSE_INIT_EXT (flags2) came with 7.36, map_alignment with 7.31. */
#define INIT_MIN_EXT_MINOR 36
#define INIT_MIN_DAX_MINOR 31
#define INIT_MAX_DAX_ALIGNMENT (1ULL << 21)

/* One row per capability: our FUSE_CAP_* bit and the kernel's INIT bit. */
struct cap_map {
	uint64_t cap;
	uint64_t kernel;
};

static const struct cap_map cap_table[] = {
	{ FUSE_CAP_ASYNC_READ, FUSE_ASYNC_READ },
	{ FUSE_CAP_POSIX_LOCKS, FUSE_POSIX_LOCKS },
	{ FUSE_CAP_ATOMIC_O_TRUNC, FUSE_ATOMIC_O_TRUNC },
	{ FUSE_CAP_EXPORT_SUPPORT, FUSE_EXPORT_SUPPORT },
	{ FUSE_CAP_DONT_MASK, FUSE_DONT_MASK },
	{ FUSE_CAP_SPLICE_WRITE, FUSE_SPLICE_WRITE },
	{ FUSE_CAP_SPLICE_MOVE, FUSE_SPLICE_MOVE },
	{ FUSE_CAP_SPLICE_READ, FUSE_SPLICE_READ },
	{ FUSE_CAP_FLOCK_LOCKS, FUSE_FLOCK_LOCKS },
	{ FUSE_CAP_IOCTL_DIR, FUSE_HAS_IOCTL_DIR },
	{ FUSE_CAP_AUTO_INVAL_DATA, FUSE_AUTO_INVAL_DATA },
	{ FUSE_CAP_READDIRPLUS, FUSE_DO_READDIRPLUS },
	{ FUSE_CAP_READDIRPLUS_AUTO, FUSE_READDIRPLUS_AUTO },
	{ FUSE_CAP_ASYNC_DIO, FUSE_ASYNC_DIO },
	{ FUSE_CAP_WRITEBACK_CACHE, FUSE_WRITEBACK_CACHE },
	{ FUSE_CAP_NO_OPEN_SUPPORT, FUSE_NO_OPEN_SUPPORT },
	{ FUSE_CAP_PARALLEL_DIROPS, FUSE_PARALLEL_DIROPS },
	{ FUSE_CAP_POSIX_ACL, FUSE_POSIX_ACL },
	{ FUSE_CAP_HANDLE_KILLPRIV, FUSE_HANDLE_KILLPRIV },
	{ FUSE_CAP_HANDLE_KILLPRIV_V2, FUSE_HANDLE_KILLPRIV_V2 },
	{ FUSE_CAP_CACHE_SYMLINKS, FUSE_CACHE_SYMLINKS },
	{ FUSE_CAP_NO_OPENDIR_SUPPORT, FUSE_NO_OPENDIR_SUPPORT },
	{ FUSE_CAP_EXPLICIT_INVAL_DATA, FUSE_EXPLICIT_INVAL_DATA },
	{ FUSE_CAP_EXPIRE_ONLY, FUSE_HAS_EXPIRE_ONLY },
	{ FUSE_CAP_SETXATTR_EXT, FUSE_SETXATTR_EXT },
	{ FUSE_CAP_DIRECT_IO_ALLOW_MMAP, FUSE_DIRECT_IO_ALLOW_MMAP },
	{ FUSE_CAP_PASSTHROUGH, FUSE_PASSTHROUGH },
	{ FUSE_CAP_NO_EXPORT_SUPPORT, FUSE_NO_EXPORT_SUPPORT },
	{ FUSE_CAP_DAX_INODE, FUSE_HAS_INODE_DAX },
	{ FUSE_CAP_DAX_MAPPING, FUSE_MAP_ALIGNMENT },
};

uint64_t init_caps_from_kernel(uint64_t kflags)
{
	uint64_t caps = 0;

	for (size_t i = 0; i < sizeof(cap_table) / sizeof(cap_table[0]); i++)
		if (kflags & cap_table[i].kernel)
			caps |= cap_table[i].cap;
	return caps;
}

uint64_t init_kernel_from_caps(uint64_t caps)
{
	uint64_t kflags = 0;

	for (size_t i = 0; i < sizeof(cap_table) / sizeof(cap_table[0]); i++)
		if (caps & cap_table[i].cap)
			kflags |= cap_table[i].kernel;
	return kflags;
}

static unsigned int log2_u64(uint64_t v)
{
	unsigned int n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* What we ask for unless the file system says otherwise (as libfuse does). */
static uint64_t init_default_want(const struct fuse_session *se, uint64_t capable)
{
	uint64_t want = FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS |
			FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_ASYNC_DIO |
			FUSE_CAP_IOCTL_DIR | FUSE_CAP_ATOMIC_O_TRUNC |
			FUSE_CAP_READDIRPLUS_AUTO;

	if (se->op.getlk && se->op.setlk)
		want |= FUSE_CAP_POSIX_LOCKS;
	if (se->op.flock)
		want |= FUSE_CAP_FLOCK_LOCKS;
	if (se->op.readdirplus)
		want |= FUSE_CAP_READDIRPLUS;
	if (se->dax && se->op.setupmapping)
		want |= FUSE_CAP_DAX_MAPPING;
	return want & capable;
}

/*
 * What the library believes want and want_ext hold while init() runs: the
 * defaults, plus every fuse_set/unset_feature_flag() since. A file system
 * that writes want directly is told apart from one that writes want_ext
 * by comparing against these. Only the thread running init() sees them.
 */
struct want_track {
	const struct fuse_conn_info *conn;
	uint32_t want;
	uint64_t want_ext;
};

static __thread struct want_track *want_tracking;

static struct want_track *want_track_of(const struct fuse_conn_info *conn)
{
	return want_tracking && want_tracking->conn == conn ? want_tracking : NULL;
}

static void init_fill_conn(struct fuse_session *se, const struct fuse_init_in *in,
			   uint64_t kflags)
{
	struct fuse_conn_info *c = &se->conn;
	uint64_t capable = init_caps_from_kernel(kflags);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	/*
	 * Without a window or a handler there is nothing to map. A client
	 * older than 7.31 has no map_alignment field to learn the alignment
	 * from, and the kernel refuses an alignment above 2 MiB (log2 21).
	 */
	if (!se->dax || !se->op.setupmapping || in->minor < INIT_MIN_DAX_MINOR)
		capable &= ~FUSE_CAP_DAX_MAPPING;
	else if (fuse_dax_window_alignment(se->dax) > INIT_MAX_DAX_ALIGNMENT) {
		fuse_log(FUSE_LOG_ERR,
			 "fuse: DAX window alignment %llu is above the 2 MiB the client accepts: DAX off\n",
			 (unsigned long long)fuse_dax_window_alignment(se->dax));
		capable &= ~FUSE_CAP_DAX_MAPPING;
	}
	/* 7.38 made expire-only notifications part of the protocol. */
	if (in->minor >= 38)
		capable |= FUSE_CAP_EXPIRE_ONLY;
	/* Backing files are registered with ioctls on the connection. */
	if (!se->tp->backing_open)
		capable &= ~FUSE_CAP_PASSTHROUGH;
	c->proto_major = in->major;
	c->proto_minor = in->minor;
	c->capable_ext = capable;
	c->capable = (uint32_t)capable;
	c->want_ext = init_default_want(se, capable);
	c->want = (uint32_t)c->want_ext;
	c->max_readahead = in->max_readahead;
	c->max_read = mount_opts_max_read(se->mo);
	c->max_write = (uint32_t)(se->bufsize - 4096);
	if (c->max_write > se->bufsize - page)
		c->max_write = (uint32_t)(se->bufsize - page);
	c->max_background = 0;
	c->congestion_threshold = 0;
	c->time_gran = 1;
	c->max_backing_stack_depth = FUSE_BACKING_STACKED_UNDER;
	c->no_interrupt = 0;
}

static void init_reply(fuse_req_t req, const struct fuse_conn_info *c, uint64_t want,
		       uint64_t offered, uint64_t uring)
{
	struct fuse_session *se = req->se;
	struct fuse_init_out out;
	uint64_t kflags = init_kernel_from_caps(want);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t outsize = sizeof(out);
	struct iovec iov;

	memset(&out, 0, sizeof(out));
	out.major = FUSE_KERNEL_VERSION;
	out.minor = FUSE_KERNEL_MINOR_VERSION;
	out.max_readahead = c->max_readahead;
	out.max_write = c->max_write;
	out.max_background = (uint16_t)c->max_background;
	out.congestion_threshold = (uint16_t)c->congestion_threshold;
	out.time_gran = c->time_gran;
	kflags |= offered & FUSE_BIG_WRITES;
	kflags |= uring;
	if ((offered & FUSE_MAX_PAGES) && c->max_write > page) {
		out.max_pages = (uint16_t)((c->max_write + page - 1) / page);
		kflags |= FUSE_MAX_PAGES;
	}
	if (want & FUSE_CAP_DAX_MAPPING)
		out.map_alignment = (uint16_t)log2_u64(fuse_dax_window_alignment(se->dax));
	/* The client counts its own layer in the stack depth. */
	if (want & FUSE_CAP_PASSTHROUGH)
		out.max_stack_depth = c->max_backing_stack_depth + 1;
	if (kflags >> 32)
		kflags |= FUSE_INIT_EXT;
	out.flags = (uint32_t)kflags;
	out.flags2 = (uint32_t)(kflags >> 32);

	/* Older clients expect the shorter reply of their protocol. */
	if (c->proto_minor < 5)
		outsize = FUSE_COMPAT_INIT_OUT_SIZE;
	else if (c->proto_minor < 23)
		outsize = FUSE_COMPAT_22_INIT_OUT_SIZE;

	iov.iov_base = &out;
	iov.iov_len = outsize;
	reply_send(req, 0, &iov, 1);
}

/* Runs the file system's init() with want tracking on, then folds a
 * change of the 32-bit want into want_ext. */
static void init_call_fs(struct fuse_session *se)
{
	struct fuse_conn_info *c = &se->conn;
	struct want_track track = { c, c->want, c->want_ext };
	uint32_t max_read = c->max_read;	/* the mount option's */

	want_tracking = &track;
	se->op.init(se->userdata, c);
	fuse_convert_to_conn_want_ext(c);
	want_tracking = NULL;
	/* The client learnt max_read from the mount options, not from INIT:
	 * libfuse refuses the INIT here; we say so and go on. */
	if (c->max_read != max_read)
		fuse_log(FUSE_LOG_INFO,
			 "fuse: init() set conn->max_read to %u but the mount said %u: the "
			 "client keeps %u (set both, with -o max_read=)\n", c->max_read,
			 max_read, max_read);
}

/*
 * What the file system asked for, minus what cannot be: capabilities the
 * client did not offer, and passthrough next to the writeback cache (the
 * kernel silently drops passthrough then, and every passthrough open
 * would fail). Each refusal is said once, here.
 */
static uint64_t init_check_want(struct fuse_session *se)
{
	struct fuse_conn_info *c = &se->conn;
	uint64_t want = c->want_ext;

	if (want & ~c->capable_ext) {
		fuse_log(FUSE_LOG_INFO,
			 "fuse: the file system asked for capabilities 0x%llx the client "
			 "does not offer: left out\n",
			 (unsigned long long)(want & ~c->capable_ext));
		want &= c->capable_ext;
	}
	/* Granted (they only describe the server), but not acted upon. */
	if (want & (FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE))
		fuse_log(FUSE_LOG_INFO,
			 "fuse: splice (FUSE_CAP_SPLICE_*) accepted; fusedax moves data with "
			 "read(2) and writev(2)\n");
	if ((want & FUSE_CAP_PASSTHROUGH) && (want & FUSE_CAP_WRITEBACK_CACHE)) {
		fuse_log(FUSE_LOG_INFO,
			 "fuse: FUSE passthrough and the writeback cache exclude each other: "
			 "passthrough off\n");
		want &= ~(uint64_t)FUSE_CAP_PASSTHROUGH;
	}
	if ((want & FUSE_CAP_PASSTHROUGH) &&
	    c->max_backing_stack_depth > FUSE_BACKING_STACKED_OVER) {
		fuse_log(FUSE_LOG_INFO,
			 "fuse: max_backing_stack_depth %u is above the kernel's limit of %u: "
			 "passthrough off\n", c->max_backing_stack_depth,
			 FUSE_BACKING_STACKED_OVER);
		want &= ~(uint64_t)FUSE_CAP_PASSTHROUGH;
	}
	return want;
}

void session_do_init(fuse_req_t req, const struct wire_req *w)
{
	struct fuse_session *se = req->se;
	const struct fuse_init_in *in = &w->arg.init;
	struct fuse_conn_info *c = &se->conn;
	uint64_t kflags = in->flags;
	uint64_t want;

	if (se->cuse) {
		fuse_log(FUSE_LOG_ERR, "fuse: FUSE INIT on a CUSE session: refused\n");
		fuse_reply_err(req, EPROTO);
		return;
	}
	if (se->debug)
		fuse_log(FUSE_LOG_DEBUG, "INIT: %u.%u, flags 0x%08x, flags2 0x%08x, transport %s\n",
			 in->major, in->minor, in->flags, in->flags2, se->tp->name);
	if (in->major != FUSE_KERNEL_VERSION || in->minor < INIT_MIN_MINOR) {
		fuse_log(FUSE_LOG_ERR,
			 "fuse: client speaks protocol %u.%u; fusedax needs %u.%u or later\n",
			 in->major, in->minor, FUSE_KERNEL_VERSION, INIT_MIN_MINOR);
		if (in->major > FUSE_KERNEL_VERSION) {
			/* Tell a newer client which major we speak; it retries. */
			struct fuse_init_out out = { .major = FUSE_KERNEL_VERSION };
			struct iovec iov = { &out, sizeof(out) };

			reply_send(req, 0, &iov, 1);
			return;
		}
		fuse_reply_err(req, EPROTO);
		return;
	}
	/*
	 * A new INIT without a DESTROY (vhost-user: a guest that was reset or
	 * crashed, then booted again) begins a new session: the file system
	 * ends the old one first, as if the client had sent DESTROY, so what
	 * it holds for the old client (DAX mappings, watches) goes.
	 */
	if (se->got_init && !se->got_destroy) {
		fuse_log(FUSE_LOG_INFO, "fuse: a new INIT without DESTROY: the client restarted; "
			 "ending its old session first\n");
		session_call_destroy(se);
	}
	if ((in->flags & FUSE_INIT_EXT) && in->minor >= INIT_MIN_EXT_MINOR)
		kflags |= (uint64_t)in->flags2 << 32;
	else
		kflags &= ~(uint64_t)FUSE_INIT_EXT;

	init_fill_conn(se, in, kflags);
	if (se->op.init)
		init_call_fs(se);
	want = init_check_want(se);
	c->want_ext = want;
	c->want = (uint32_t)want;
	if (c->max_write > se->bufsize - 4096)
		c->max_write = (uint32_t)(se->bufsize - 4096);
	if (se->socket_max_write && c->max_write > se->socket_max_write)
		c->max_write = (uint32_t)se->socket_max_write;
	if (c->max_write < 4096)
		c->max_write = 4096;

	se->limits.proto_minor = in->minor;
	se->limits.setxattr_ext = !!(want & FUSE_CAP_SETXATTR_EXT);
	if (want & FUSE_CAP_DAX_MAPPING) {
		se->limits.dax_window_size = fuse_dax_window_size(se->dax);
		se->limits.dax_alignment = fuse_dax_window_alignment(se->dax);
	} else {
		se->limits.dax_window_size = 0;
		se->limits.dax_alignment = 0;
	}
	se->got_init = true;
	se->got_destroy = false;
	if (se->debug)
		fuse_log(FUSE_LOG_DEBUG, "INIT: answered %u.%u, want 0x%llx, max_write %u%s\n",
			 FUSE_KERNEL_VERSION, FUSE_KERNEL_MINOR_VERSION,
			 (unsigned long long)want, c->max_write,
			 (want & FUSE_CAP_DAX_MAPPING) ? ", DAX window" : "");
	/* The rings are built before the reply and used only after it. */
	init_reply(req, c, want, kflags, session_transport_negotiate(se, kflags));
	session_transport_init_done(se);
}

/* ------------------------------------------------------------------------
 * Capability helpers of the public API.
 */

bool fuse_set_feature_flag(struct fuse_conn_info *conn, uint64_t flag)
{
	struct want_track *track = want_track_of(conn);

	if (!(conn->capable_ext & flag))
		return false;
	conn->want_ext |= flag;
	conn->want |= (uint32_t)flag;
	if (track) {
		track->want_ext |= flag;
		track->want |= (uint32_t)flag;
	}
	return true;
}

void fuse_unset_feature_flag(struct fuse_conn_info *conn, uint64_t flag)
{
	struct want_track *track = want_track_of(conn);

	conn->want_ext &= ~flag;
	conn->want &= ~(uint32_t)flag;
	if (track) {
		track->want_ext &= ~flag;
		track->want &= ~(uint32_t)flag;
	}
}

bool fuse_get_feature_flag(struct fuse_conn_info *conn, uint64_t flag)
{
	return (conn->capable_ext & flag) != 0;
}

int fuse_convert_to_conn_want_ext(struct fuse_conn_info *conn)
{
	struct want_track *track = want_track_of(conn);
	uint32_t low = (uint32_t)conn->want_ext;

	/*
	 * want untouched since the library last set it, or already equal to
	 * the low half of want_ext: nothing to carry over. Outside init() the
	 * library does not know its own values and compares with want_ext.
	 */
	if (conn->want == low || (track && conn->want == track->want)) {
		conn->want = low;
		return 0;
	}
	if (!track || conn->want_ext != track->want_ext) {
		fuse_log(FUSE_LOG_ERR,
			 "fuse: init() changed both conn->want (0x%x) and conn->want_ext "
			 "(0x%llx) in different ways: using want_ext\n", conn->want,
			 (unsigned long long)conn->want_ext);
		return -EINVAL;
	}
	conn->want_ext = (conn->want_ext & ~(uint64_t)UINT32_MAX) | conn->want;
	conn->want = (uint32_t)conn->want_ext;
	return 0;
}
