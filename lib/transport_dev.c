/*
 * The /dev/fuse transport: one read(2) is one request, one writev(2) is one
 * reply. Worker threads may each get their own cloned fd
 * (FUSE_DEV_IOC_CLONE) so the kernel spreads requests without a shared
 * queue in user space. It is the default transport: any mount point that
 * names no other transport is mounted here (or, as /dev/fd/N, taken as an
 * open connection).
 */
#include "fuse_i.h"
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <string.h>
#include <unistd.h>

static ssize_t dev_receive(struct fuse_chan *ch, void *buf, size_t size)
{
	ssize_t res = read(ch->fd, buf, size);

	if (res >= 0)
		return res;
	switch (errno) {
	case ENODEV: /* unmounted, or the connection was aborted */
		return 0;
	case EINTR:
	case EAGAIN:
	case ENOENT: /* the request was interrupted before we read it */
		return -errno;
	default:
		fuse_log(FUSE_LOG_ERR, "fuse: reading the device: %s\n", strerror(errno));
		return -errno;
	}
}

static int dev_send(struct fuse_chan *ch, const struct iovec *iov, int count)
{
	ssize_t res = writev(ch->fd, iov, count);

	if (res >= 0)
		return 0;
	if (errno == ENOENT)
		return -ENOENT;
	/* A client that went away is not worth a log line per reply. */
	if (errno != ENODEV && errno != ENOTCONN)
		fuse_log(FUSE_LOG_ERR, "fuse: writing the device: %s\n", strerror(errno));
	return -errno;
}

static int dev_clone(struct fuse_chan *master, struct fuse_chan **out)
{
	uint32_t master_fd = (uint32_t)master->fd;
	struct fuse_chan *ch;
	int fd;

	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, FUSE_DEV_IOC_CLONE, &master_fd) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		close(fd);
		return -ENOMEM;
	}
	ch->se = master->se;
	ch->fd = fd;
	*out = ch;
	return 0;
}

static void dev_release(struct fuse_chan *ch)
{
	close(ch->fd);
	free(ch);
}

/* FUSE passthrough: backing files live on the connection (any fd of it). */
static int dev_backing_open(struct fuse_chan *master, int fd)
{
	struct fuse_backing_map map = { .fd = fd };
	int id = ioctl(master->fd, FUSE_DEV_IOC_BACKING_OPEN, &map);

	return id < 0 ? -errno : id;
}

static int dev_backing_close(struct fuse_chan *master, int backing_id)
{
	uint32_t id = (uint32_t)backing_id;

	return ioctl(master->fd, FUSE_DEV_IOC_BACKING_CLOSE, &id) < 0 ? -errno : 0;
}

const struct transport_ops transport_dev_ops = {
	.name = "dev_fuse",
	.receive = dev_receive,
	.send = dev_send,
	.clone = dev_clone,
	.release = dev_release,
	.backing_open = dev_backing_open,
	.backing_close = dev_backing_close,
};

/* ------------------------------------------------------------------------
 * Mounting (also the io_uring transport's: its connection is /dev/fuse's).
 */

/*
 * A connection handed over as /dev/fd/N may be a socket (a test client, a
 * VMM helper). One reply is one message there, and a message larger than
 * the socket's send buffer fails with EMSGSIZE, so the buffers must hold
 * the largest request and reply. Root may exceed the system's limit; for
 * anyone else, max_write shrinks to what fits.
 */
static void dev_size_socket(struct fuse_session *se, int fd)
{
	int want = (int)se->bufsize * 2, got = 0;
	socklen_t len = sizeof(got);
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) != 0)
		return;
	/* The kernel doubles the value and keeps some for its bookkeeping. */
	if ((size_t)got / 2 < se->bufsize + 4096) {
		size_t fit = (size_t)got / 2 > 8192 + SESSION_HEADER_ROOM
				     ? (size_t)got / 2 - SESSION_HEADER_ROOM - 4096 : 4096;

		fit &= ~(size_t)4095;
		fuse_log(FUSE_LOG_INFO,
			 "fuse: /dev/fd/%d: socket buffer of %d bytes; replies limited to %zu bytes\n",
			 fd, got, fit);
		se->socket_max_write = fit;
	}
}

int transport_dev_mount(struct fuse_session *se, const char *mountpoint)
{
	int fd;

	/* Never let a connection fd land on stdin/stdout/stderr. */
	for (;;) {
		int probe = open("/dev/null", O_RDWR);

		if (probe < 0)
			break;
		if (probe > 2) {
			close(probe);
			break;
		}
	}
	fd = mount_fuse(mountpoint, se->mo);
	if (fd < 0)
		return fd;
	se->master.fd = fd;
	se->owns_fd = strncmp(mountpoint, "/dev/fd/", 8) != 0;
	if (!se->owns_fd)
		dev_size_socket(se, fd);
	return 0;
}

void transport_dev_unmount(struct fuse_session *se)
{
	if (se->owns_fd) {
		mount_unmount(se->mountpoint, se->master.fd, se->mo);
		se->master.fd = -1;
	}
}

const struct transport_class transport_dev_class = {
	.name = "dev_fuse",
	.ops = &transport_dev_ops,
	.local_dax_window = true,
	.mount = transport_dev_mount,
	.unmount = transport_dev_unmount,
};
