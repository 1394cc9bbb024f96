/*
 * What the vhost-user-fs transport (lib/transport_vhost_user.c) and its DAX
 * window backend (lib/dax_vhost.c) share. The session reaches the
 * transport only through its class (transport_vhost_user_class).
 */
#ifndef FUSEDAX_VHOST_USER_H
#define FUSEDAX_VHOST_USER_H

#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct fuse_session;
struct fuse_dax_window;

/*
 * The backend-request channel (SET_BACKEND_REQ_FD), shared by the device
 * and the DAX backend, counted. The front-end thread never takes lock: it
 * only stores fd (atomically) and shuts it down on disconnect.
 */
struct vu_breq {
	pthread_mutex_t lock;	/* one request/reply pair at a time */
	atomic_int fd;
	atomic_bool dead;
	atomic_int refs;
	/** Protocol features acked by the front-end. */
	_Atomic uint64_t proto;
	unsigned int shmem_bit;
};

void vu_breq_put(struct vu_breq *b);

/** The channel a DAX backend sends on (a new reference), or NULL. */
struct vu_breq *vhost_user_breq(struct fuse_session *se);
/** Tell the device a DAX window exists: offer BACKEND_REQ and SHMEM. */
void vhost_user_want_dax(struct fuse_session *se);

/** dax_vhost.c: a window whose map/unmap are SHMEM_MAP/UNMAP on b. */
int dax_vhost_window_new(struct vu_breq *b, uint64_t size, struct fuse_dax_window **out);

/* Protocol feature bits. */
#define VU_PROTO_REPLY_ACK 3
#define VU_PROTO_BACKEND_REQ 5
#define VU_PROTO_BACKEND_SEND_FD 10

#define VU_FLAG_VERSION 0x1
#define VU_FLAG_REPLY 0x4
#define VU_FLAG_NEED_REPLY 0x8

#endif /* FUSEDAX_VHOST_USER_H */
