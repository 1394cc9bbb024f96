/*
 * The session: owns a connection, its negotiated state and its transport,
 * and runs each received message through decode -> checks -> dispatch.
 * It never looks at file descriptors or vrings itself.
 */
#include "fuse_dax.h"
#include "fuse_i.h"
#include "mount.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest write we offer by default: 256 pages, as the kernel allows. */
#define SESSION_DEFAULT_MAX_PAGES 256

struct session_opts {
	int debug;
};

#define SESSION_OPT(t, p) { t, offsetof(struct session_opts, p), 1 }
static const struct fuse_opt session_opt_spec[] = {
	SESSION_OPT("debug", debug),
	SESSION_OPT("-d", debug),
	SESSION_OPT("--debug", debug),
	FUSE_OPT_END,
};

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

/*
 * Let every transport take its options; at most one may be selected by
 * them (the default one needs none).
 */
static int session_pick_transport(struct fuse_session *se, struct fuse_args *args)
{
	for (size_t i = 0; transport_classes[i]; i++) {
		const struct transport_class *tc = transport_classes[i];
		int res;

		if (!tc->parse)
			continue;
		res = tc->parse(se, args);
		if (res < 0)
			return res;
		if (res == 0)
			continue;
		if (se->tc != transport_classes[0]) {
			fuse_log(FUSE_LOG_ERR, "fuse: the options select two transports, %s and "
				 "%s: a session serves one\n", se->tc->name, tc->name);
			return -EINVAL;
		}
		se->tc = tc;
	}
	return 0;
}

static int session_parse_args(struct fuse_session *se, struct fuse_args *args)
{
	struct session_opts so = { 0 };
	int err;

	if (fuse_opt_parse(args, &so, session_opt_spec, NULL) == -1)
		return -EINVAL;
	se->debug = so.debug;
	err = session_pick_transport(se, args);
	if (err < 0)
		return err;
	if (mount_opts_parse(args, &se->mo) < 0)
		return -EINVAL;
	/* allow_root mounts with allow_other; the session turns others away. */
	se->deny_others = mount_opts_allow_root(se->mo);
	se->owner = getuid();
	if (args->argc > 1) {
		fuse_log(FUSE_LOG_ERR, "fuse: unknown option(s): `");
		for (int i = 1; i < args->argc; i++)
			fuse_log(FUSE_LOG_ERR, "%s%s", i > 1 ? " " : "", args->argv[i]);
		fuse_log(FUSE_LOG_ERR, "'\n");
		return -EINVAL;
	}
	return 0;
}

/* What every transport allocated, whether or not it was chosen. */
static void session_free_transports(struct fuse_session *se)
{
	for (size_t i = 0; transport_classes[i]; i++)
		if (transport_classes[i]->free)
			transport_classes[i]->free(se);
}

struct fuse_session *fuse_session_new(struct fuse_args *args,
				      const struct fuse_lowlevel_ops *op, size_t op_size,
				      void *userdata)
{
	struct fuse_session *se;
	struct fuse_args empty = FUSE_ARGS_INIT(0, NULL);

	if (op_size > sizeof(se->op)) {
		fuse_log(FUSE_LOG_WARNING,
			 "fuse: operations struct is larger than this library's; "
			 "ignoring the unknown members\n");
		op_size = sizeof(se->op);
	}
	se = calloc(1, sizeof(*se));
	if (!se) {
		fuse_log(FUSE_LOG_ERR, "fuse: cannot allocate a session\n");
		return NULL;
	}
	memcpy(&se->op, op, op_size);
	se->userdata = userdata;
	se->master.se = se;
	se->master.fd = -1;
	se->tc = transport_classes[0];
	se->tp = se->tc->ops;
	se->bufsize = SESSION_DEFAULT_MAX_PAGES * page_size() + SESSION_HEADER_ROOM;
	se->conn.max_write = UINT32_MAX;
	se->conn.max_readahead = UINT32_MAX;
	se->inflight.next = se->inflight.prev = &se->inflight;
	pthread_mutex_init(&se->lock, NULL);

	if (session_parse_args(se, args ? args : &empty) < 0)
		goto out_free;
	if (se->debug)
		fuse_log(FUSE_LOG_DEBUG, "fusedax %s, API %d\n", fuse_pkgversion(),
			 FUSE_VERSION);
	return se;

out_free:
	session_free_transports(se);
	mount_opts_free(se->mo);
	pthread_mutex_destroy(&se->lock);
	free(se);
	return NULL;
}

/*
 * A window in this process's memory is of no use to a client that cannot
 * reach it (a VMM's guest): a guest that is offered one waits forever for
 * mappings that never appear. Refuse the combination before anything runs.
 */
static int session_check_window(const struct fuse_session *se,
				const struct fuse_dax_window *w)
{
	if (!w || se->tc->local_dax_window || !fuse_dax_window_base(w))
		return 0;
	fuse_log(FUSE_LOG_ERR,
		 "fuse: the DAX window is this process's own memory, which the client of "
		 "the %s transport cannot reach: create the window with "
		 "fuse_dax_window_new_for_session() after the transport is known "
		 "(its mount point or option must reach fuse_session_new(), e.g. "
		 "through fuse_parse_cmdline())\n", se->tc->name);
	return -EINVAL;
}

int fuse_session_mount(struct fuse_session *se, const char *mountpoint)
{
	const struct transport_class *named;

	if (!mountpoint) {
		fuse_log(FUSE_LOG_ERR, "fuse: no mount point\n");
		return -1;
	}
	if (se->mountpoint) {
		fuse_log(FUSE_LOG_ERR, "fuse: %s: the session is mounted already (on %s)\n",
			 mountpoint, se->mountpoint);
		return -1;
	}
	named = transport_for_mountpoint(mountpoint);
	if (named && named != se->tc) {
		if (se->tc != transport_classes[0]) {
			fuse_log(FUSE_LOG_ERR, "fuse: mount point `%s' names the %s transport, "
				 "but the options chose %s\n", mountpoint, named->name,
				 se->tc->name);
			return -1;
		}
		se->tc = named;
	}
	se->mountpoint = strdup(mountpoint);
	if (!se->mountpoint) {
		fuse_log(FUSE_LOG_ERR, "fuse: out of memory mounting %s\n", mountpoint);
		return -1;
	}
	if (se->tc->mount(se, mountpoint) < 0)
		goto out_free;
	/* After the transport judged the mount point: its error comes first. */
	if (session_check_window(se, se->dax) < 0)
		goto out_unmount;
	return 0;

out_unmount:
	se->tc->unmount(se);
out_free:
	fuse_session_leave_mount(se);
	return -1;
}

void fuse_session_unmount(struct fuse_session *se)
{
	if (!se->mountpoint)
		return;
	se->tc->unmount(se);
	fuse_session_leave_mount(se);
}

void fuse_session_leave_mount(struct fuse_session *se)
{
	free(se->mountpoint);
	se->mountpoint = NULL;
}

int fuse_session_fd(struct fuse_session *se)
{
	return se->master.fd;
}

void fuse_session_exit(struct fuse_session *se)
{
	atomic_store(&se->exited, 1);
}

int fuse_session_exited(struct fuse_session *se)
{
	return atomic_load(&se->exited);
}

void fuse_session_reset(struct fuse_session *se)
{
	atomic_store(&se->exited, 0);
	se->error = 0;
}

void session_fail(struct fuse_session *se, int err)
{
	if (err && !se->error)
		se->error = err;
	fuse_session_exit(se);
}

void session_call_destroy(struct fuse_session *se)
{
	if (se->got_init && !se->got_destroy) {
		se->got_destroy = true;
		if (se->op.destroy)
			se->op.destroy(se->userdata);
	}
}

void fuse_session_destroy(struct fuse_session *se)
{
	struct retrieve_wait *rw, *next;

	if (!se)
		return;
	if (se->tc->stop)
		se->tc->stop(se);
	session_call_destroy(se);
	fuse_session_unmount(se);
	session_free_transports(se);
	if (se->owns_fd && se->master.fd >= 0)
		close(se->master.fd);
	for (rw = se->retrieves; rw; rw = next) {
		next = rw->next;
		free(rw);
	}
	mount_opts_free(se->mo);
	cuse_data_free(se->cuse);
	pthread_mutex_destroy(&se->lock);
	free(se);
}

int fuse_session_set_dax_window(struct fuse_session *se, struct fuse_dax_window *w)
{
	int err;

	if (se->got_init)
		return -EBUSY;
	err = session_check_window(se, w);
	if (err)
		return err;
	se->dax = w;
	return 0;
}

uint64_t session_transport_negotiate(struct fuse_session *se, uint64_t kflags)
{
	return se->tc->init_negotiate ? se->tc->init_negotiate(se, kflags) : 0;
}

void session_transport_init_done(struct fuse_session *se)
{
	if (se->tc->init_done)
		se->tc->init_done(se);
}

struct fuse_dax_window *fuse_session_dax_window(struct fuse_session *se)
{
	return se->dax;
}

/* ------------------------------------------------------------------------
 * Processing one message.
 */

void chan_put(struct fuse_session *se, struct fuse_chan *ch)
{
	if (ch && atomic_load(&ch->refs) > 0 && atomic_fetch_sub(&ch->refs, 1) == 1)
		se->tp->release(ch);
}

static fuse_req_t req_new(struct fuse_session *se, struct fuse_chan *ch,
			  const struct wire_req *w)
{
	fuse_req_t req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->se = se;
	req->ch = ch;
	chan_get(ch);
	req->unique = w->in.unique;
	req->opcode = w->in.opcode;
	req->ctx.uid = w->in.uid;
	req->ctx.gid = w->in.gid;
	req->ctx.pid = w->in.pid;
	return req;
}

static void req_list(fuse_req_t req)
{
	struct fuse_session *se = req->se;

	pthread_mutex_lock(&se->lock);
	req->next = se->inflight.next;
	req->prev = &se->inflight;
	se->inflight.next->prev = req;
	se->inflight.next = req;
	req->listed = true;
	pthread_mutex_unlock(&se->lock);
}

/* Answer a request that never reaches a handler. */
static void session_reply_early(struct fuse_session *se, struct fuse_chan *ch,
				const struct wire_req *w, int err)
{
	fuse_req_t req;

	if (w->op && (w->op->flags & OPF_NO_REPLY))
		return;
	req = req_new(se, ch, w);
	if (!req) {
		fuse_log(FUSE_LOG_ERR, "fuse: out of memory answering unique %" PRIu64 "\n",
			 w->in.unique);
		return;
	}
	reply_send(req, err, NULL, 0);
}

static void session_debug_request(struct fuse_session *se, const struct wire_req *w,
				  size_t len)
{
	char text[256];

	if (w->op) {
		wire_describe(w, text, sizeof(text));
		fuse_log(FUSE_LOG_DEBUG, "%s, insize: %zu, pid: %u\n", text, len, w->in.pid);
	} else {
		fuse_log(FUSE_LOG_DEBUG, "opcode %u (unknown), unique: %" PRIu64 ", insize: %zu\n",
			 w->in.opcode, w->in.unique, len);
	}
}

/* Requests that must wait for INIT, and INIT that must not repeat. */
static int session_check_order(struct fuse_session *se, const struct wire_req *w)
{
	/* A CUSE device's session starts with CUSE_INIT instead. */
	bool is_init = w->in.opcode == (se->cuse ? FUSE_CUSE_INIT : FUSE_INIT);

	if (se->got_destroy && !is_init)
		return -EIO;
	if (!se->got_init && !is_init) {
		fuse_log(FUSE_LOG_ERR, "fuse: %s before INIT: refused with EIO\n",
			 wire_opcode_name(w->in.opcode));
		return -EIO;
	}
	if (se->got_init && is_init && !se->reinit_allowed) {
		fuse_log(FUSE_LOG_ERR, "fuse: second INIT on one connection: refused with EIO\n");
		return -EIO;
	}
	return 0;
}

/*
 * allow_root: only root and the user who mounted may use the file system.
 * Requests on handles that were opened already, and the session's own
 * traffic, are let through, as libfuse does.
 */
static int session_check_access(const struct fuse_session *se, const struct wire_req *w)
{
	if (!se->deny_others || w->in.uid == 0 || w->in.uid == se->owner)
		return 0;
	switch (w->in.opcode) {
	case FUSE_INIT:
	case FUSE_READ:
	case FUSE_WRITE:
	case FUSE_FSYNC:
	case FUSE_RELEASE:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_FSYNCDIR:
	case FUSE_RELEASEDIR:
	case FUSE_NOTIFY_REPLY:
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
	case FUSE_DESTROY:
		return 0;
	default:
		return -EACCES;
	}
}

/*
 * A client that maps beyond the end of the window has a larger window than
 * this server (a VMM whose cache size was not agreed with the daemon): its
 * accesses there fail. Say so once, with the fix, instead of once a request.
 */
static void session_note_dax_range(struct fuse_session *se, const struct wire_req *w)
{
	static atomic_bool told;

	if (w->in.opcode != FUSE_SETUPMAPPING || atomic_exchange(&told, true))
		return;
	fuse_log(FUSE_LOG_ERR, "fuse: the client maps window offset %" PRIu64 " (+%" PRIu64
		 "), beyond this server's DAX window of %" PRIu64 " bytes: its window is "
		 "larger. Give both the same size (passthrough_dax: -o dax_window_size=; QEMU: "
		 "cache-size=), or use a VMM that asks the daemon (GET_SHMEM_CONFIG)\n",
		 w->arg.setupmapping.moffset, w->arg.setupmapping.len,
		 se->limits.dax_window_size);
}

void session_process(struct fuse_session *se, struct fuse_chan *ch, const void *buf,
		     size_t len)
{
	struct wire_req w;
	fuse_req_t req;
	int res;

	res = wire_decode(buf, len, &se->limits, &w);
	if (res == -EPROTO) {
		fuse_log(FUSE_LOG_ERR,
			 "fuse: malformed message of %zu bytes (header length field "
			 "does not match): ending the session\n",
			 len);
		session_fail(se, -EPROTO);
		return;
	}
	if (se->debug)
		session_debug_request(se, &w, len);

	if (!res)
		res = session_check_order(se, &w);
	if (!res)
		res = session_check_access(se, &w);
	if (res) {
		if (res == -ERANGE)
			session_note_dax_range(se, &w);
		if (se->debug || res != -ENOSYS)
			fuse_log(se->debug ? FUSE_LOG_DEBUG : FUSE_LOG_INFO,
				 "fuse: %s (unique %" PRIu64 ") refused: %s\n",
				 wire_opcode_name(w.in.opcode), w.in.unique, strerror(-res));
		session_reply_early(se, ch, &w, -res);
		return;
	}

	req = req_new(se, ch, &w);
	if (!req) {
		session_reply_early(se, ch, &w, ENOMEM);
		return;
	}
	if (!(w.op->flags & OPF_NO_REPLY))
		req_list(req);

	switch (w.in.opcode) {
#define OPCODE(num, name, type, shape, flags)                                  \
	case num:                                                              \
		do_##name(req, &w);                                            \
		break;
#include "opcodes.def"
#undef OPCODE
	default:
		/* wire_decode only accepts opcodes in the table. */
		fuse_reply_err(req, ENOSYS);
	}
}

/* ------------------------------------------------------------------------
 * Request accessors.
 */

void *fuse_req_userdata(fuse_req_t req)
{
	return req->se->userdata;
}

const struct fuse_ctx *fuse_req_ctx(fuse_req_t req)
{
	return &req->ctx;
}

struct fuse_session *fuse_req_session(fuse_req_t req)
{
	return req->se;
}

/* Parse the Groups: line of /proc/PID/status. */
int fuse_req_getgroups(fuse_req_t req, int size, gid_t list[])
{
	char path[64], line[4096];
	FILE *f;
	int n = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%u/status", (unsigned)req->ctx.pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *p, *end;

		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		n = 0;
		for (p = line + 7;; p = end) {
			unsigned long g = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (n < size)
				list[n] = (gid_t)g;
			n++;
		}
		break;
	}
	fclose(f);
	return n;
}

void fuse_req_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func, void *data)
{
	bool call_now;

	pthread_mutex_lock(&req->se->lock);
	req->interrupt_func = func;
	req->interrupt_data = data;
	call_now = req->interrupted && func;
	pthread_mutex_unlock(&req->se->lock);
	if (call_now)
		func(req, data);
}

int fuse_req_interrupted(fuse_req_t req)
{
	int res;

	pthread_mutex_lock(&req->se->lock);
	res = req->interrupted;
	pthread_mutex_unlock(&req->se->lock);
	return res;
}

/* ------------------------------------------------------------------------
 * Help and version text.
 */

void fuse_lowlevel_version(void)
{
	printf("using FUSE kernel interface version %i.%i (fusedax %s)\n",
	       FUSE_KERNEL_VERSION, FUSE_KERNEL_MINOR_VERSION, fuse_pkgversion());
}

void fuse_lowlevel_help(void)
{
	printf("    -o allow_other         allow access by all users\n"
	       "    -o allow_root          allow access by root and the owner\n"
	       "    -o auto_unmount        unmount when the process ends\n"
	       "    -o default_permissions let the kernel check permissions\n"
	       "    -o fsname=NAME         source shown in the mount table\n");
	for (size_t i = 0; transport_classes[i]; i++)
		if (transport_classes[i]->help)
			fputs(transport_classes[i]->help, stdout);
}
