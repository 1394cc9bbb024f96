/*
 * The /dev/fuse transport: one read(2) is one request, one writev(2) is one
 * reply. Worker threads may each get their own cloned fd
 * (FUSE_DEV_IOC_CLONE) so the kernel spreads requests without a shared
 * queue in user space.
 */
#include "fuse_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
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
