/*
 * The single-threaded request loop: receive one message, process it, repeat
 * until the connection ends or the session is told to exit.
 */
#include "fuse_i.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

void *loop_alloc_buffer(struct fuse_session *se)
{
	void *buf = NULL;
	long page = sysconf(_SC_PAGESIZE);

	if (posix_memalign(&buf, page > 0 ? (size_t)page : 4096, se->bufsize))
		return NULL;
	return buf;
}

int fuse_session_loop(struct fuse_session *se)
{
	void *buf = loop_alloc_buffer(se);
	ssize_t res;

	if (!buf) {
		fuse_log(FUSE_LOG_ERR, "fuse: cannot allocate a %zu-byte request buffer\n",
			 se->bufsize);
		return -ENOMEM;
	}
	if (se->master.fd < 0) {
		fuse_log(FUSE_LOG_ERR, "fuse: session loop started before mount\n");
		free(buf);
		return -EBADF;
	}
	while (!fuse_session_exited(se)) {
		res = se->tp->receive(&se->master, buf, se->bufsize);
		if (res == -EINTR || res == -EAGAIN || res == -ENOENT)
			continue;
		if (res == 0)
			break;
		if (res < 0) {
			session_fail(se, (int)res);
			break;
		}
		session_process(se, &se->master, buf, (size_t)res);
	}
	free(buf);
	fuse_session_exit(se);
	return se->error;
}

int fuse_session_receive_buf(struct fuse_session *se, struct fuse_buf *buf)
{
	ssize_t res;

	if (se->master.fd < 0)
		return -EBADF;
	if (!buf->mem) {
		buf->mem = loop_alloc_buffer(se);
		if (!buf->mem)
			return -ENOMEM;
		buf->mem_size = se->bufsize;
	} else if (!buf->mem_size) {
		buf->mem_size = buf->size;
	}
	buf->flags = 0;
	res = se->tp->receive(&se->master, buf->mem, buf->mem_size);
	if (res == -ENOENT)
		res = -EINTR;	/* the request was interrupted before we read it */
	if (res < 0 && res != -EINTR && res != -EAGAIN)
		session_fail(se, (int)res);
	if (res >= 0)
		buf->size = (size_t)res;
	return (int)res;
}

void fuse_session_process_buf(struct fuse_session *se, const struct fuse_buf *buf)
{
	if (buf->flags & FUSE_BUF_IS_FD) {
		fuse_log(FUSE_LOG_ERR, "fuse: process_buf: a descriptor buffer is not a request\n");
		return;
	}
	session_process(se, &se->master, buf->mem, buf->size);
}
