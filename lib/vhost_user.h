/*
 * The vhost-user-fs transport (lib/transport_vhost_user.c) and its DAX
 * window backend (lib/dax_vhost.c): entry points for the session.
 */
#ifndef FUSEDAX_VHOST_USER_H
#define FUSEDAX_VHOST_USER_H

#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct fuse_session;
struct fuse_dax_window;

/** Mount point prefix that selects the transport: "vhost-user:/path/sock". */
#define VHOST_USER_PREFIX "vhost-user:"

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

/**
 * Create the session's vhost-user device for the socket path (from
 * -o vhost_user_socket= or the mount point prefix). Returns 0 or -errno.
 */
int vhost_user_new(struct fuse_session *se, const char *path);
/** -o vhost_user_shmem_bit=N (20, 21 or 22). */
int vhost_user_set_shmem_bit(struct fuse_session *se, unsigned int bit);
/** Listen, wait for the VMM, start the front-end thread. 0 or -errno. */
int vhost_user_mount(struct fuse_session *se);
/** Stop the threads, drop guest memory, close the sockets. */
void vhost_user_unmount(struct fuse_session *se);
void vhost_user_free(struct fuse_session *se);
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
