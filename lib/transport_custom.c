/*
 * The custom-I/O transport (fuse_session_custom_io): the application hands
 * us read and writev callbacks over its own descriptor, e.g. a socket. Each
 * read must return one whole request, each writev carries one whole reply.
 * It is chosen by that call, not by a mount point or an option.
 */
#include "fuse_i.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t custom_receive(struct fuse_chan *ch, void *buf, size_t size)
{
	struct fuse_session *se = ch->se;
	ssize_t res = se->custom_io.read(ch->fd, buf, size, se->userdata);

	if (res >= 0)
		return res;
	if (errno == ENODEV || errno == ECONNRESET)
		return 0;
	if (errno != EINTR && errno != EAGAIN)
		fuse_log(FUSE_LOG_ERR, "fuse: custom io read: %s\n", strerror(errno));
	return -errno;
}

static int custom_send(struct fuse_chan *ch, const struct iovec *iov, int count)
{
	struct fuse_session *se = ch->se;
	ssize_t res = se->custom_io.writev(ch->fd, (struct iovec *)iov, count, se->userdata);

	if (res >= 0)
		return 0;
	if (errno != EPIPE && errno != ECONNRESET && errno != ENOTCONN)
		fuse_log(FUSE_LOG_ERR, "fuse: custom io writev: %s\n", strerror(errno));
	return -errno;
}

static int custom_clone(struct fuse_chan *master, struct fuse_chan **out)
{
	struct fuse_session *se = master->se;
	struct fuse_chan *ch;
	int fd;

	if (!se->custom_io.clone_fd)
		return -ENOTSUP;
	fd = se->custom_io.clone_fd(master->fd);
	if (fd < 0)
		return fd;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->se = se;
	ch->fd = fd;
	*out = ch;
	return 0;
}

static void custom_release(struct fuse_chan *ch)
{
	close(ch->fd);
	free(ch);
}

static const struct transport_ops transport_custom_ops = {
	.name = "custom_io",
	.receive = custom_receive,
	.send = custom_send,
	.clone = custom_clone,
	.release = custom_release,
};

int fuse_session_custom_io_317(struct fuse_session *se, const struct fuse_custom_io *io,
			       size_t op_size, int fd)
{
	if (!io || !io->read || !io->writev || fd < 0) {
		fuse_log(FUSE_LOG_ERR, "fuse: custom io needs read, writev and an fd\n");
		return -EINVAL;
	}
	if (op_size > sizeof(se->custom_io))
		op_size = sizeof(se->custom_io);
	memset(&se->custom_io, 0, sizeof(se->custom_io));
	memcpy(&se->custom_io, io, op_size);
	se->tp = &transport_custom_ops;
	se->master.fd = fd;
	se->owns_fd = false;
	return 0;
}

int fuse_session_custom_io_30(struct fuse_session *se, const struct fuse_custom_io *io,
			      int fd)
{
	return fuse_session_custom_io_317(se, io, offsetof(struct fuse_custom_io, clone_fd),
					  fd);
}
