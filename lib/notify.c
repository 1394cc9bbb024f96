/*
 * Notifications: messages the file system sends to the client without a
 * request (poll wakeups, cache invalidation, store and retrieve), and the
 * bookkeeping that matches a NOTIFY_REPLY to its retrieve.
 */
#include "notify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Protocol minors that introduced each notification. */
#define NOTIFY_MINOR_INVAL 12
#define NOTIFY_MINOR_STORE 15
#define NOTIFY_MINOR_DELETE 18
#define NOTIFY_MINOR_EXPIRE 38

/* Header plus the most payload pieces any notification here uses. */
#define NOTIFY_MAX_IOV 4

/* A wakeup handle the client gave us in POLL, and where to send it. */
struct fuse_pollhandle {
	uint64_t kh;
	struct fuse_session *se;
};

int notify_send(struct fuse_session *se, int code, const struct iovec *payload, int count)
{
	struct iovec iov[NOTIFY_MAX_IOV];
	struct fuse_out_header out;
	size_t len = sizeof(out);

	if (count < 0 || count > NOTIFY_MAX_IOV - 1)
		return -EINVAL;
	iov[0].iov_base = &out;
	iov[0].iov_len = sizeof(out);
	for (int i = 0; i < count; i++) {
		iov[i + 1] = payload[i];
		len += payload[i].iov_len;
	}
	if (len > UINT32_MAX)
		return -EINVAL;
	out.len = (uint32_t)len;
	/* A notification is told apart from a reply by unique 0; its code
	 * travels in the error field. */
	out.error = code;
	out.unique = 0;
	if (se->debug)
		fuse_log(FUSE_LOG_DEBUG, "NOTIFY: code=%d length=%zu\n", code, len);
	return se->tp->send(&se->master, iov, count + 1);
}

/* Can this notification be sent on se now? 0 or a negative errno. */
static int notify_check(struct fuse_session *se, uint32_t min_minor)
{
	if (!se)
		return -EINVAL;
	if (!se->got_init || se->got_destroy)
		return -ENOTCONN;
	if (se->conn.proto_minor < min_minor)
		return -ENOSYS;
	return 0;
}

struct fuse_pollhandle *notify_pollhandle_new(struct fuse_session *se, uint64_t kh)
{
	struct fuse_pollhandle *ph = malloc(sizeof(*ph));

	if (!ph)
		return NULL;
	ph->kh = kh;
	ph->se = se;
	return ph;
}

void fuse_pollhandle_destroy(struct fuse_pollhandle *ph)
{
	free(ph);
}

int fuse_lowlevel_notify_poll(struct fuse_pollhandle *ph)
{
	struct fuse_notify_poll_wakeup_out out = { 0 };
	struct iovec iov = { &out, sizeof(out) };
	int res;

	if (!ph)
		return -EINVAL;
	/* POLL itself needs 7.11; every minor we accept has it. */
	res = notify_check(ph->se, 0);
	if (res)
		return res;
	out.kh = ph->kh;
	return notify_send(ph->se, FUSE_NOTIFY_POLL, &iov, 1);
}

int fuse_lowlevel_notify_inval_inode(struct fuse_session *se, fuse_ino_t ino,
				     off_t off, off_t len)
{
	struct fuse_notify_inval_inode_out out = { 0 };
	struct iovec iov = { &out, sizeof(out) };
	int res;

	res = notify_check(se, NOTIFY_MINOR_INVAL);
	if (res)
		return res;
	out.ino = ino;
	out.off = off;
	out.len = len;
	return notify_send(se, FUSE_NOTIFY_INVAL_INODE, &iov, 1);
}

/* INVAL_ENTRY with the given FUSE_EXPIRE_ONLY-style flags. The name need
 * not be NUL-terminated: the terminator goes out as its own piece. */
static int notify_inval_entry(struct fuse_session *se, fuse_ino_t parent,
			      const char *name, size_t namelen, uint32_t flags)
{
	struct fuse_notify_inval_entry_out out = { 0 };
	static const char nul;
	struct iovec iov[3];

	if (!name || namelen > UINT32_MAX)
		return -EINVAL;
	out.parent = parent;
	out.namelen = (uint32_t)namelen;
	out.flags = flags;
	iov[0].iov_base = &out;
	iov[0].iov_len = sizeof(out);
	iov[1].iov_base = (void *)name;
	iov[1].iov_len = namelen;
	iov[2].iov_base = (void *)&nul;
	iov[2].iov_len = 1;
	return notify_send(se, FUSE_NOTIFY_INVAL_ENTRY, iov, 3);
}

int fuse_lowlevel_notify_inval_entry(struct fuse_session *se, fuse_ino_t parent,
				     const char *name, size_t namelen)
{
	int res = notify_check(se, NOTIFY_MINOR_INVAL);

	if (res)
		return res;
	return notify_inval_entry(se, parent, name, namelen, 0);
}

int fuse_lowlevel_notify_expire_entry(struct fuse_session *se, fuse_ino_t parent,
				      const char *name, size_t namelen)
{
	int res = notify_check(se, NOTIFY_MINOR_EXPIRE);

	if (res)
		return res;
	/* An older client would drop the entry instead: refuse rather than
	 * do something stronger than asked. */
	if (!(se->conn.capable_ext & FUSE_CAP_EXPIRE_ONLY))
		return -ENOSYS;
	return notify_inval_entry(se, parent, name, namelen, FUSE_EXPIRE_ONLY);
}

int fuse_lowlevel_notify_delete(struct fuse_session *se, fuse_ino_t parent,
				fuse_ino_t child, const char *name, size_t namelen)
{
	struct fuse_notify_delete_out out = { 0 };
	static const char nul;
	struct iovec iov[3];
	int res;

	res = notify_check(se, NOTIFY_MINOR_DELETE);
	if (res)
		return res;
	if (!name || namelen > UINT32_MAX)
		return -EINVAL;
	out.parent = parent;
	out.child = child;
	out.namelen = (uint32_t)namelen;
	iov[0].iov_base = &out;
	iov[0].iov_len = sizeof(out);
	iov[1].iov_base = (void *)name;
	iov[1].iov_len = namelen;
	iov[2].iov_base = (void *)&nul;
	iov[2].iov_len = 1;
	return notify_send(se, FUSE_NOTIFY_DELETE, iov, 3);
}

int fuse_lowlevel_notify_store(struct fuse_session *se, fuse_ino_t ino, off_t offset,
			       struct fuse_bufvec *bufv, enum fuse_buf_copy_flags flags)
{
	struct fuse_notify_store_out out = { 0 };
	struct fuse_bufvec mem;
	struct iovec iov[2];
	size_t size;
	ssize_t copied;
	int res;

	res = notify_check(se, NOTIFY_MINOR_STORE);
	if (res)
		return res;
	if (!bufv)
		return -EINVAL;
	size = fuse_buf_size(bufv);
	if (size > UINT32_MAX - sizeof(struct fuse_out_header) - sizeof(out))
		return -EFBIG;

	/* The data may sit in file descriptors: gather it into memory so
	 * every transport can send it as plain iovecs. */
	mem = FUSE_BUFVEC_INIT(size);
	mem.buf[0].mem = malloc(size ? size : 1);
	if (!mem.buf[0].mem)
		return -ENOMEM;
	copied = fuse_buf_copy(&mem, bufv, flags);
	if (copied < 0) {
		res = (int)copied;
		goto out_free;
	}

	out.nodeid = ino;
	out.offset = (uint64_t)offset;
	out.size = (uint32_t)copied;
	iov[0].iov_base = &out;
	iov[0].iov_len = sizeof(out);
	iov[1].iov_base = mem.buf[0].mem;
	iov[1].iov_len = (size_t)copied;
	res = notify_send(se, FUSE_NOTIFY_STORE, iov, 2);
out_free:
	free(mem.buf[0].mem);
	return res;
}

/* Take rw back off the list; false if a reply already took it. */
static bool notify_unlink_retrieve(struct fuse_session *se, struct retrieve_wait *rw)
{
	struct retrieve_wait **pp;
	bool found = false;

	pthread_mutex_lock(&se->lock);
	for (pp = &se->retrieves; *pp; pp = &(*pp)->next) {
		if (*pp == rw) {
			*pp = rw->next;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&se->lock);
	return found;
}

int fuse_lowlevel_notify_retrieve(struct fuse_session *se, fuse_ino_t ino, size_t size,
				  off_t offset, void *cookie)
{
	struct fuse_notify_retrieve_out out = { 0 };
	struct iovec iov = { &out, sizeof(out) };
	struct retrieve_wait *rw;
	int res;

	res = notify_check(se, NOTIFY_MINOR_STORE);
	if (res)
		return res;
	if (size > UINT32_MAX)
		return -EINVAL;
	rw = malloc(sizeof(*rw));
	if (!rw)
		return -ENOMEM;
	rw->cookie = cookie;

	/* List it before sending: the reply may arrive on another thread
	 * before send returns. */
	pthread_mutex_lock(&se->lock);
	rw->unique = ++se->notify_unique;
	rw->next = se->retrieves;
	se->retrieves = rw;
	pthread_mutex_unlock(&se->lock);

	out.notify_unique = rw->unique;
	out.nodeid = ino;
	out.offset = (uint64_t)offset;
	out.size = (uint32_t)size;
	res = notify_send(se, FUSE_NOTIFY_RETRIEVE, &iov, 1);
	if (res && notify_unlink_retrieve(se, rw))
		free(rw);
	return res;
}

bool notify_take_retrieve(struct fuse_session *se, uint64_t unique, void **cookie)
{
	struct retrieve_wait **pp, *rw = NULL;

	pthread_mutex_lock(&se->lock);
	for (pp = &se->retrieves; *pp; pp = &(*pp)->next) {
		if ((*pp)->unique == unique) {
			rw = *pp;
			*pp = rw->next;
			break;
		}
	}
	pthread_mutex_unlock(&se->lock);
	if (!rw)
		return false;
	*cookie = rw->cookie;
	free(rw);
	return true;
}
