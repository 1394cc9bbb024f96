/*
 * FUSE passthrough (libfuse 3.17's fuse_passthrough_open/close): a file
 * system registers one of its open files as a backing file, and the
 * kernel then serves reads, writes and mmap of the FUSE file from it. The
 * transport holds the backing files (ioctls on /dev/fuse); where it has
 * none, or INIT did not agree on passthrough, the call fails softly and
 * the file system serves the file itself.
 */
#include "fuse_i.h"

#include <errno.h>
#include <string.h>

/* Why passthrough cannot work on this session, or NULL if it can. */
static const char *passthrough_unavailable(struct fuse_session *se, int *err)
{
	if (!se->tp->backing_open) {
		*err = EOPNOTSUPP;
		return "the transport has no backing files (only /dev/fuse has)";
	}
	if (!se->got_init) {
		*err = ENOTCONN;
		return "the connection is not initialised yet";
	}
	if (!(se->conn.capable_ext & FUSE_CAP_PASSTHROUGH)) {
		*err = EOPNOTSUPP;
		return "the client does not offer it (kernel older than 6.9, or built "
		       "without CONFIG_FUSE_PASSTHROUGH)";
	}
	if (!(se->conn.want_ext & FUSE_CAP_PASSTHROUGH)) {
		*err = EOPNOTSUPP;
		return "init() did not ask for FUSE_CAP_PASSTHROUGH, or the writeback "
		       "cache excluded it";
	}
	return NULL;
}

int fuse_passthrough_open(fuse_req_t req, int fd)
{
	struct fuse_session *se = req->se;
	const char *why;
	int err = 0, id;

	why = passthrough_unavailable(se, &err);
	if (why) {
		/* The same answer for every open: say it once per session. */
		if (!atomic_exchange(&se->passthrough_refusal_logged, true))
			fuse_log(FUSE_LOG_INFO,
				 "fuse: FUSE passthrough unavailable: %s; the file system "
				 "serves reads and writes itself\n", why);
		errno = err;
		return 0;
	}
	id = se->tp->backing_open(&se->master, fd);
	if (id <= 0) {
		err = id < 0 ? -id : EIO;
		/* Each cause once: it usually holds for every file. */
		if (atomic_exchange(&se->passthrough_refusal_errno, err) != err)
			fuse_log(FUSE_LOG_ERR,
				 "fuse: FUSE passthrough: registering fd %d as a backing file "
				 "failed: %s%s; the file system serves such files itself\n", fd,
				 strerror(err),
				 err == EPERM ? " (the kernel wants CAP_SYS_ADMIN)" :
				 err == ENOTTY ? " (the connection is not a /dev/fuse device)" :
				 err == ELOOP ? " (the backing file is on a stacked file system: "
						"see max_backing_stack_depth)" : "");
		errno = err;
		return 0;
	}
	if (se->debug)
		fuse_log(FUSE_LOG_DEBUG, "   passthrough: fd %d is backing id %d\n", fd, id);
	return id;
}

int fuse_passthrough_close(fuse_req_t req, int backing_id)
{
	struct fuse_session *se = req->se;
	int res;

	if (!se->tp->backing_close)
		return -EOPNOTSUPP;
	res = se->tp->backing_close(&se->master, backing_id);
	if (res < 0)
		fuse_log(FUSE_LOG_ERR, "fuse: FUSE passthrough: closing backing id %d: %s\n",
			 backing_id, strerror(-res));
	else if (se->debug)
		fuse_log(FUSE_LOG_DEBUG, "   passthrough: backing id %d closed\n", backing_id);
	return res;
}
