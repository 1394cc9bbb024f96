/*
 * What the vhost-user-fs transport (lib/transport_vhost_user.c) and its DAX
 * window backend (lib/dax_vhost.c) share: the backend-request channel. The
 * session reaches the transport only through its class
 * (transport_vhost_user_class).
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
 * The backend-request socket a VMM hands over with SET_BACKEND_REQ_FD,
 * counted: the front-end thread may replace it while a DAX worker still
 * sends on it, and the descriptor is closed only when both are done with it
 * (so its number is never reused under a worker).
 */
struct vu_chan {
	atomic_int refs;
	int fd;
};

/*
 * What the device and the DAX backend share, counted (the window may
 * outlive the session). The front-end thread never takes lock, which a DAX
 * worker holds while it waits for the VMM's ack; it takes chan_lock only to
 * swap the channel.
 */
struct vu_breq {
	pthread_mutex_t lock;		/* one request/ack pair at a time */
	pthread_mutex_t chan_lock;	/* guards chan; never held across I/O */
	struct vu_chan *chan;
	/** The VMM is gone: nothing is mapped any more, nothing is sent. */
	atomic_bool dead;
	atomic_int refs;
	/** Protocol features acked by the front-end. */
	_Atomic uint64_t proto;
	unsigned int shmem_bit;
	/** The DAX window's size (0: no window): what GET_SHMEM_CONFIG answers. */
	_Atomic uint64_t window_size;
	/**
	 * Bumped whenever the device stops: a device reset in the VMM may
	 * have dropped its mappings, so what the backend knows is unverified.
	 */
	atomic_uint epoch;
	/** A duplicate of the front-end connection; shutdown() ends it. */
	atomic_int conn_fd;
	/** How long a worker waits for the VMM's ack, in milliseconds. */
	int ack_timeout_ms;
};

void vu_breq_put(struct vu_breq *b);
/** The current backend-request channel (a new reference), or NULL. */
struct vu_chan *vu_breq_chan(struct vu_breq *b);
void vu_chan_put(struct vu_chan *c);
/**
 * End the connection with the VMM, logging why (once): the front-end
 * thread sees the socket close and the session ends as on a disconnect.
 */
void vu_breq_disconnect(struct vu_breq *b, const char *why);

/** The channel a DAX backend sends on (a new reference), or NULL. */
struct vu_breq *vhost_user_breq(struct fuse_session *se);
/** Tell the device a DAX window exists: offer BACKEND_REQ and SHMEM. */
void vhost_user_want_dax(struct fuse_session *se);
/**
 * Called by the DAX backend around a wait for the VMM (begin true, then
 * false), on the thread running a request: while the VMM waits for us (a
 * GET_VRING_BASE), such a request cannot finish, and the device does not
 * wait for it. No-op on other threads.
 */
void vhost_user_vmm_wait(bool begin);

/** dax_vhost.c: a window whose map/unmap are SHMEM_MAP/UNMAP on b. */
int dax_vhost_window_new(struct vu_breq *b, uint64_t size, struct fuse_dax_window **out);

/* Protocol feature bits. */
#define VU_PROTO_REPLY_ACK 3
#define VU_PROTO_BACKEND_REQ 5
#define VU_PROTO_BACKEND_SEND_FD 10

#define VU_FLAG_VERSION 0x1
#define VU_FLAG_REPLY 0x4
#define VU_FLAG_NEED_REPLY 0x8

/* Front-end message of QEMU's SHMEM series: the backend's region sizes. */
#define VU_GET_SHMEM_CONFIG 44
#define VU_MAX_SHMEM_REGIONS 8

#endif /* FUSEDAX_VHOST_USER_H */
