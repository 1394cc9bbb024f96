/*
 * CUSE: a character device served from user space. The session runs on a
 * /dev/cuse connection; its first request is CUSE_INIT (answered with the
 * device's number and name), then the device's opens, reads, writes,
 * ioctls and polls arrive as ordinary FUSE requests and go to the
 * cuse_lowlevel_ops, which have no inode argument.
 */
/* The library speaks the newest API; cuse_lowlevel.h would default older. */
#define FUSE_USE_VERSION 317

#include "cuse_lowlevel.h"
#include "fuse_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* CUSE_INIT answers the read size the library's buffers take. */
#define CUSE_DEFAULT_MAX_READ 131072
#define CUSE_DEVICE "/dev/cuse"

struct cuse_data {
	struct cuse_lowlevel_ops clop;
	unsigned int dev_major, dev_minor, flags;
	size_t dev_info_len;
	char dev_info[];	/* "KEY=VALUE\0" strings, as the kernel reads them */
};

static const struct cuse_lowlevel_ops *req_clop(fuse_req_t req)
{
	return &req->se->cuse->clop;
}

void cuse_data_free(struct cuse_data *cd)
{
	free(cd);
}

/* ------------------------------------------------------------------------
 * The device's requests: the low-level operations without the inode.
 */

static void cuse_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	req_clop(req)->open(req, fi);
}

static void cuse_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)ino;
	req_clop(req)->read(req, size, off, fi);
}

static void cuse_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	req_clop(req)->write(req, buf, size, off, fi);
}

static void cuse_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	req_clop(req)->flush(req, fi);
}

static void cuse_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	req_clop(req)->release(req, fi);
}

static void cuse_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		       struct fuse_file_info *fi)
{
	(void)ino;
	req_clop(req)->fsync(req, datasync, fi);
}

static void cuse_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		       struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		       size_t in_bufsz, size_t out_bufsz)
{
	(void)ino;
	req_clop(req)->ioctl(req, (int)cmd, arg, fi, flags, in_buf, in_bufsz, out_bufsz);
}

static void cuse_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		      struct fuse_pollhandle *ph)
{
	(void)ino;
	req_clop(req)->poll(req, fi, ph);
}

/* ------------------------------------------------------------------------
 * CUSE_INIT.
 */

void do_cuse_init(fuse_req_t req, const struct wire_req *w)
{
	struct fuse_session *se = req->se;
	const struct cuse_init_in *in = &w->arg.cuse_init;
	struct cuse_data *cd = se->cuse;
	struct fuse_conn_info *c = &se->conn;
	struct cuse_init_out out;
	struct iovec iov[2];

	if (!cd) {
		fuse_log(FUSE_LOG_ERR, "fuse: CUSE_INIT on a FUSE (not CUSE) session: refused\n");
		fuse_reply_err(req, EPROTO);
		return;
	}
	if (se->debug)
		fuse_log(FUSE_LOG_DEBUG, "CUSE_INIT: %u.%u, flags 0x%08x\n", in->major,
			 in->minor, in->flags);
	if (in->major != FUSE_KERNEL_VERSION) {
		fuse_log(FUSE_LOG_ERR, "cuse: client speaks protocol %u.%u; this library %u.x\n",
			 in->major, in->minor, FUSE_KERNEL_VERSION);
		fuse_reply_err(req, EPROTO);
		return;
	}
	c->proto_major = in->major;
	c->proto_minor = in->minor;
	c->capable = c->capable_ext = 0;
	c->want = c->want_ext = 0;
	c->max_write = (uint32_t)(se->bufsize - 4096);
	c->max_read = CUSE_DEFAULT_MAX_READ;
	if (se->op.init)
		se->op.init(se->userdata, c);
	if (c->max_write > se->bufsize - 4096)
		c->max_write = (uint32_t)(se->bufsize - 4096);
	se->limits.proto_minor = in->minor;
	se->got_init = true;
	se->got_destroy = false;

	memset(&out, 0, sizeof(out));
	out.major = FUSE_KERNEL_VERSION;
	out.minor = FUSE_KERNEL_MINOR_VERSION;
	out.flags = cd->flags & CUSE_UNRESTRICTED_IOCTL;
	out.max_read = c->max_read ? c->max_read : CUSE_DEFAULT_MAX_READ;
	out.max_write = c->max_write;
	out.dev_major = cd->dev_major;
	out.dev_minor = cd->dev_minor;
	if (se->debug)
		fuse_log(FUSE_LOG_DEBUG, "   CUSE_INIT: %u.%u, max_read %u, max_write %u, "
			 "device %u:%u, %zu bytes of device info\n", out.major, out.minor,
			 out.max_read, out.max_write, out.dev_major, out.dev_minor,
			 cd->dev_info_len);
	iov[0].iov_base = &out;
	iov[0].iov_len = sizeof(out);
	iov[1].iov_base = cd->dev_info;
	iov[1].iov_len = cd->dev_info_len;
	if (reply_send(req, 0, iov, 2) == 0 && cd->clop.init_done)
		cd->clop.init_done(se->userdata);
}

/* ------------------------------------------------------------------------
 * Sessions.
 */

static struct cuse_data *cuse_data_new(const struct cuse_info *ci,
				       const struct cuse_lowlevel_ops *clop)
{
	struct cuse_data *cd;
	size_t len = 0, pos = 0;

	for (unsigned i = 0; i < ci->dev_info_argc; i++)
		len += strlen(ci->dev_info_argv[i]) + 1;
	if (len > CUSE_INIT_INFO_MAX) {
		fuse_log(FUSE_LOG_ERR, "cuse: device info of %zu bytes is over the "
			 "kernel's limit of %d\n", len, CUSE_INIT_INFO_MAX);
		return NULL;
	}
	cd = calloc(1, sizeof(*cd) + len);
	if (!cd) {
		fuse_log(FUSE_LOG_ERR, "cuse: out of memory\n");
		return NULL;
	}
	cd->clop = *clop;
	cd->dev_major = ci->dev_major;
	cd->dev_minor = ci->dev_minor;
	cd->flags = ci->flags;
	for (unsigned i = 0; i < ci->dev_info_argc; i++) {
		size_t n = strlen(ci->dev_info_argv[i]) + 1;

		memcpy(cd->dev_info + pos, ci->dev_info_argv[i], n);
		pos += n;
	}
	cd->dev_info_len = len;
	return cd;
}

struct fuse_session *cuse_lowlevel_new(struct fuse_args *args, const struct cuse_info *ci,
				       const struct cuse_lowlevel_ops *clop, void *userdata)
{
	struct fuse_lowlevel_ops lop;
	struct fuse_session *se;
	struct cuse_data *cd = cuse_data_new(ci, clop);

	if (!cd)
		return NULL;
	memset(&lop, 0, sizeof(lop));
	lop.init = clop->init;
	lop.destroy = clop->destroy;
	lop.open = clop->open ? cuse_open : NULL;
	lop.read = clop->read ? cuse_read : NULL;
	lop.write = clop->write ? cuse_write : NULL;
	lop.flush = clop->flush ? cuse_flush : NULL;
	lop.release = clop->release ? cuse_release : NULL;
	lop.fsync = clop->fsync ? cuse_fsync : NULL;
	lop.ioctl = clop->ioctl ? cuse_ioctl : NULL;
	lop.poll = clop->poll ? cuse_poll : NULL;
	se = fuse_session_new(args, &lop, sizeof(lop), userdata);
	if (!se) {
		free(cd);
		return NULL;
	}
	se->cuse = cd;
	return se;
}

struct fuse_session *cuse_lowlevel_setup(int argc, char *argv[], const struct cuse_info *ci,
					 const struct cuse_lowlevel_ops *clop,
					 int *multithreaded, void *userdata)
{
	/* fuse_parse_cmdline() adds a subtype= that means nothing here. */
	static const struct fuse_opt drop_subtype[] = {
		FUSE_OPT_KEY("subtype=", FUSE_OPT_KEY_DISCARD),
		FUSE_OPT_END
	};
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_session *se;
	char mountpoint[32];
	int fd;

	if (fuse_parse_cmdline_312(&args, &opts) == -1)
		return NULL;
	free(opts.mountpoint);	/* a device has none */
	if (fuse_opt_parse(&args, NULL, drop_subtype, NULL) == -1)
		goto out_args;
	*multithreaded = !opts.singlethread;
	se = cuse_lowlevel_new(&args, ci, clop, userdata);
	if (!se)
		goto out_args;
	/* Never let the connection land on stdin/stdout/stderr. */
	do {
		fd = open("/dev/null", O_RDWR);
		if (fd > 2)
			close(fd);
	} while (fd >= 0 && fd <= 2);
	fd = open(CUSE_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		fuse_log(FUSE_LOG_ERR, "cuse: cannot open %s: %s%s\n", CUSE_DEVICE, strerror(err),
			 err == ENOENT || err == ENODEV || err == ENXIO
				 ? " (this kernel has no CUSE: CONFIG_CUSE, module cuse)" : "");
		goto out_session;
	}
	/* The session serves an fd it does not own, as for /dev/fd/N. */
	snprintf(mountpoint, sizeof(mountpoint), "/dev/fd/%d", fd);
	if (fuse_session_mount(se, mountpoint) != 0)
		goto out_fd;
	if (fuse_set_signal_handlers(se) == -1)
		goto out_unmount;
	if (fuse_daemonize(opts.foreground) == -1)
		goto out_signals;
	fuse_opt_free_args(&args);
	return se;

out_signals:
	fuse_remove_signal_handlers(se);
out_unmount:
	fuse_session_unmount(se);
out_fd:
	close(fd);
out_session:
	fuse_session_destroy(se);
out_args:
	fuse_opt_free_args(&args);
	return NULL;
}

void cuse_lowlevel_teardown(struct fuse_session *se)
{
	int fd = fuse_session_fd(se);

	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	if (fd >= 0)
		close(fd);
}

int cuse_lowlevel_main(int argc, char *argv[], const struct cuse_info *ci,
		       const struct cuse_lowlevel_ops *clop, void *userdata)
{
	struct fuse_session *se;
	int multithreaded, res;

	se = cuse_lowlevel_setup(argc, argv, ci, clop, &multithreaded, userdata);
	if (!se)
		return 1;
	if (multithreaded) {
		/* No cloned fds: /dev/cuse connections cannot be cloned. */
		struct fuse_loop_config *config = fuse_loop_cfg_create();

		res = config ? fuse_session_loop_mt_312(se, config) : -ENOMEM;
		fuse_loop_cfg_destroy(config);
	} else {
		res = fuse_session_loop(se);
	}
	cuse_lowlevel_teardown(se);
	return res == 0 ? 0 : 1;
}
