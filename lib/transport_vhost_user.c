/*
 * The vhost-user-fs transport: the session serves a VMM (QEMU) over a
 * vhost-user socket instead of /dev/fuse. A front-end thread answers the
 * VMM's messages (features, memory table, vrings); one thread per started
 * queue pops descriptor chains, copies each request out of guest memory and
 * runs it through session_process() on a channel of its own, whose send
 * scatters the reply into the chain from whatever thread answers.
 */
#include "fuse_i.h"
#include "vhost_user.h"
#include "virtq.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* hiprio + request queues. */
#define VU_MAX_QUEUES 9
#define VU_MAX_FDS 8
#define VU_MAX_PAYLOAD 4096

#define VU_F_PROTOCOL_FEATURES 30
#define VU_F_VERSION_1 32

enum {
	VU_GET_FEATURES = 1, VU_SET_FEATURES = 2, VU_SET_OWNER = 3, VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5, VU_SET_LOG_BASE = 6, VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8, VU_SET_VRING_ADDR = 9, VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11, VU_SET_VRING_KICK = 12, VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14, VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16, VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18, VU_SET_BACKEND_REQ_FD = 21,
	VU_GET_MAX_MEM_SLOTS = 36, VU_RESET_DEVICE = 34,
};

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vu_worker;

struct vu_queue {
	struct vu_dev *dev;
	unsigned int idx;
	pthread_mutex_t lock;	/* vq, gen, started, call */
	struct virtq vq;
	unsigned int num;
	uint16_t base;
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set, enabled, started;
	unsigned int gen;	/* bumped whenever the ring stops */
	int call;
	struct vu_worker *worker;
};

struct vu_dev {
	struct fuse_session *se;
	char *path;	/* the socket we listen on, or NULL (-o vhost_user_fd=) */
	char *group;	/* -o vhost_user_socket_group=, or NULL */
	int given_fd;	/* -o vhost_user_fd=N, or -1 */
	int lfd;	/* listening socket until the VMM connects, or -1 */
	int sock;
	pthread_t fe_thread;
	bool fe_live, fe_failed;
	uint64_t features, proto;
	bool want_dax;
	pthread_rwlock_t mem_lock;
	struct virtq_mem mem;
	void *map_base[VIRTQ_MAX_REGIONS];
	size_t map_len[VIRTQ_MAX_REGIONS];
	unsigned int mem_gen;
	struct vu_queue q[VU_MAX_QUEUES];
	int end_efd;
	atomic_int live_workers;
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	struct vu_breq *breq;
};

/* A queue thread: owns its copy of the kick fd and a wake-up eventfd. */
struct vu_worker {
	struct vu_queue *q;
	int kick, wake;
	atomic_bool stop;
	atomic_int refs;
};

/* One request in flight: its channel, chain and where it came from. */
struct vu_req {
	struct fuse_chan ch;
	struct vu_queue *q;
	unsigned int gen, mem_gen;
	bool done;
	struct virtq_chain c;
};

static void worker_put(struct vu_worker *w)
{
	if (atomic_fetch_sub(&w->refs, 1) == 1) {
		close(w->kick);
		close(w->wake);
		free(w);
	}
}

static void efd_signal(int fd)
{
	uint64_t one = 1;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		(void)0;
}

/* ------------------------------------------------------------------------
 * Channel operations.
 */

/* Called with q->lock and the memory read lock held. */
static void req_complete_locked(struct vu_req *r, uint32_t len)
{
	struct vu_queue *q = r->q;

	r->done = true;
	if (r->gen != q->gen || !q->started || !q->vq.num)
		return; /* the ring stopped: the guest forgot this chain */
	virtq_push(&q->vq, r->c.head, r->mem_gen == q->dev->mem_gen ? len : 0);
	efd_signal(q->call);
}

static int vu_send(struct fuse_chan *ch, const struct iovec *iov, int count)
{
	struct vu_req *r;
	struct vu_queue *q;
	ssize_t n = 0;

	if (ch == &ch->se->master)
		return -ENOSYS; /* notifications: virtio-fs has no queue for them */
	r = (struct vu_req *)ch;
	q = r->q;
	pthread_mutex_lock(&q->lock);
	pthread_rwlock_rdlock(&q->dev->mem_lock);
	if (r->done) {
		n = -EINVAL;
	} else if (r->gen == q->gen && q->started && r->mem_gen == q->dev->mem_gen) {
		n = virtq_scatter(&r->c, iov, count);
		if (n >= 0)
			req_complete_locked(r, (uint32_t)n);
	} else {
		r->done = true;
	}
	pthread_rwlock_unlock(&q->dev->mem_lock);
	pthread_mutex_unlock(&q->lock);
	return n < 0 ? (int)n : 0;
}

/* The last reference to a request's channel: return an unanswered chain. */
static void vu_release(struct fuse_chan *ch)
{
	struct vu_req *r = (struct vu_req *)ch;
	struct vu_queue *q = r->q;

	pthread_mutex_lock(&q->lock);
	pthread_rwlock_rdlock(&q->dev->mem_lock);
	if (!r->done)
		req_complete_locked(r, 0);
	pthread_rwlock_unlock(&q->dev->mem_lock);
	pthread_mutex_unlock(&q->lock);
	free(r);
}

/* The loops' receive: requests come from the queue threads; wait for the end. */
static void *frontend_main(void *arg);
static int vu_accept(struct vu_dev *dev);

static ssize_t vu_receive(struct fuse_chan *ch, void *buf, size_t size)
{
	struct vu_dev *dev = ch->priv;
	uint64_t v;

	if (!dev)
		return 0;
	if (dev->sock < 0) {
		int err = vu_accept(dev);

		if (err)
			return err;
	}
	/*
	 * The front-end thread starts with the first loop, not at mount: a
	 * file system may fork (fuse_daemonize) in between, and threads do not
	 * survive a fork. The VMM's messages wait in the socket meanwhile.
	 */
	pthread_mutex_lock(&dev->wlock);
	if (!dev->fe_live && !dev->fe_failed) {
		sigset_t all, old;
		int err;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		err = pthread_create(&dev->fe_thread, NULL, frontend_main, dev);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (err) {
			dev->fe_failed = true;
			pthread_mutex_unlock(&dev->wlock);
			fuse_log(FUSE_LOG_ERR, "vhost-user: cannot start a thread: %s\n",
				 strerror(err));
			return -err;
		}
		dev->fe_live = true;
	}
	pthread_mutex_unlock(&dev->wlock);
	if (read(dev->end_efd, &v, sizeof(v)) < 0)
		return errno == EINTR || errno == EAGAIN ? -EINTR : -errno;
	return 0;
}

static const struct transport_ops transport_vhost_user_ops = {
	.name = "vhost_user",
	.receive = vu_receive,
	.send = vu_send,
	.release = vu_release,
};

/* ------------------------------------------------------------------------
 * Queue threads.
 */

static void queue_serve_one(struct vu_queue *q, void *buf)
{
	struct fuse_session *se = q->dev->se;
	struct vu_req *r = NULL;
	ssize_t len;

	for (;;) {
		uint16_t head;
		int res, err;

		if (!r) {
			r = malloc(sizeof(*r));
			if (!r)
				return;
		}
		pthread_mutex_lock(&q->lock);
		pthread_rwlock_rdlock(&q->dev->mem_lock);
		if (!q->started || !q->enabled || !q->vq.num) {
			res = 0;
		} else {
			res = virtq_pop(&q->vq, &head);
			if (res < 0)
				fuse_log(FUSE_LOG_ERR,
					 "vhost-user: queue %u: bad avail ring entry%s\n", q->idx,
					 q->vq.broken ? " (ring index runs ahead: queue stopped)" : "");
		}
		if (res <= 0) {
			pthread_rwlock_unlock(&q->dev->mem_lock);
			pthread_mutex_unlock(&q->lock);
			if (res < 0 && !q->vq.broken)
				continue;
			free(r);
			return;
		}
		memset(&r->ch, 0, sizeof(r->ch));
		r->ch.se = se;
		r->ch.fd = -1;
		r->q = q;
		r->gen = q->gen;
		r->mem_gen = q->dev->mem_gen;
		r->done = false;
		err = virtq_map_chain(&q->vq, &q->dev->mem, head, &r->c);
		len = err ? err : virtq_gather(&r->c, buf, se->bufsize);
		if (len < (ssize_t)sizeof(struct fuse_in_header)) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: bad descriptor chain %u: %s\n",
				 q->idx, head,
				 len < 0 ? strerror((int)-len) : "shorter than a request header");
			r->c.head = head;
			req_complete_locked(r, 0);
			pthread_rwlock_unlock(&q->dev->mem_lock);
			pthread_mutex_unlock(&q->lock);
			continue;
		}
		pthread_rwlock_unlock(&q->dev->mem_lock);
		pthread_mutex_unlock(&q->lock);

		atomic_store(&r->ch.refs, 1);
		session_process(se, &r->ch, buf, (size_t)len);
		chan_put(se, &r->ch);
		r = NULL;
		if (fuse_session_exited(se))
			return;
	}
}

static void *queue_main(void *arg)
{
	struct vu_worker *w = arg;
	struct vu_queue *q = w->q;
	struct vu_dev *dev = q->dev;
	void *buf = loop_alloc_buffer(dev->se);

	while (buf && !atomic_load(&w->stop)) {
		struct pollfd p[2] = { { .fd = w->kick, .events = POLLIN },
				       { .fd = w->wake, .events = POLLIN } };
		uint64_t v;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & POLLIN && read(w->kick, &v, sizeof(v)) < 0)
			(void)0;
		if (p[1].revents & POLLIN && read(w->wake, &v, sizeof(v)) < 0)
			(void)0;
		if ((p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) || atomic_load(&w->stop))
			break;
		queue_serve_one(q, buf);
	}
	free(buf);
	worker_put(w);
	pthread_mutex_lock(&dev->wlock);
	atomic_fetch_sub(&dev->live_workers, 1);
	pthread_cond_broadcast(&dev->wcond);
	pthread_mutex_unlock(&dev->wlock);
	return NULL;
}

/* Front-end thread, q->lock held. */
static void queue_stop_locked(struct vu_queue *q)
{
	struct vu_worker *w = q->worker;

	if (q->started)
		q->gen++;
	q->started = false;
	if (!w)
		return;
	q->worker = NULL;
	atomic_store(&w->stop, true);
	efd_signal(w->wake);
	worker_put(w);
}

static int queue_start_locked(struct vu_queue *q, int kick)
{
	struct vu_dev *dev = q->dev;
	struct vu_worker *w;
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int err;

	queue_stop_locked(q);
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->q = q;
	w->kick = kick;
	w->wake = eventfd(0, EFD_CLOEXEC);
	atomic_store(&w->refs, 2);
	if (w->wake < 0) {
		free(w);
		return -errno;
	}
	atomic_fetch_add(&dev->live_workers, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&t, &attr, queue_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err) {
		atomic_fetch_sub(&dev->live_workers, 1);
		close(w->wake);
		free(w);
		return -err;
	}
	q->worker = w;
	q->started = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * Front-end messages.
 */

static void mem_unmap_all(struct vu_dev *dev)
{
	for (unsigned int i = 0; i < dev->mem.nregions; i++)
		munmap(dev->map_base[i], dev->map_len[i]);
	dev->mem.nregions = 0;
}

/* Re-point running rings after the memory table changed; write lock held. */
static void rings_remap(struct vu_dev *dev)
{
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		struct vu_queue *q = &dev->q[i];
		uint16_t last;

		if (!q->addr_set)
			continue;
		last = q->vq.last_avail;
		if (virtq_setup(&q->vq, &dev->mem, q->num, q->desc_uva, q->avail_uva,
				q->used_uva) != 0) {
			q->addr_set = false;
			continue;
		}
		q->vq.last_avail = last;
	}
}

static int set_mem_table(struct vu_dev *dev, const uint8_t *p, uint32_t size,
			 int *fds, int nfds)
{
	struct virtq_mem m = { 0 };
	void *base[VIRTQ_MAX_REGIONS];
	size_t blen[VIRTQ_MAX_REGIONS];
	uint32_t n;
	int err = 0;

	if (size < 8)
		return -EINVAL;
	memcpy(&n, p, 4);
	if (n > VIRTQ_MAX_REGIONS || size < 8 + 32 * n || (int)n != nfds)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v[4];

		memcpy(v, p + 8 + 32 * i, sizeof(v));
		if (v[1] == 0 || v[3] + v[1] < v[3]) {
			err = -EINVAL;
			break;
		}
		blen[i] = v[1] + v[3];
		base[i] = mmap(NULL, blen[i], PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			       fds[i], 0);
		if (base[i] == MAP_FAILED) {
			err = -errno;
			fuse_log(FUSE_LOG_ERR, "vhost-user: cannot map guest memory region %u: %s\n",
				 i, strerror(errno));
			break;
		}
		m.r[i].gpa = v[0];
		m.r[i].size = v[1];
		m.r[i].uva = v[2];
		m.r[i].host = (uint8_t *)base[i] + v[3];
		m.nregions = i + 1;
	}
	if (err) {
		for (unsigned int i = 0; i < m.nregions; i++)
			munmap(base[i], blen[i]);
		return err;
	}
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		pthread_mutex_lock(&dev->q[i].lock);
	pthread_rwlock_wrlock(&dev->mem_lock);
	mem_unmap_all(dev);
	dev->mem = m;
	memcpy(dev->map_base, base, sizeof(base));
	memcpy(dev->map_len, blen, sizeof(blen));
	dev->mem_gen++;
	rings_remap(dev);
	pthread_rwlock_unlock(&dev->mem_lock);
	for (unsigned int i = VU_MAX_QUEUES; i-- > 0;)
		pthread_mutex_unlock(&dev->q[i].lock);
	if (n == 0)
		fuse_log(FUSE_LOG_WARNING, "vhost-user: the VMM shared no guest memory "
			 "(give QEMU -object memory-backend-memfd,share=on and -numa node,memdev=...)\n");
	return 0;
}

static int send_reply(struct vu_dev *dev, const struct vu_hdr *req, const void *payload,
		      uint32_t size)
{
	struct vu_hdr h = { .request = req->request, .flags = VU_FLAG_VERSION | VU_FLAG_REPLY,
			    .size = size };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, size } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	return sendmsg(dev->sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int reply_u64(struct vu_dev *dev, const struct vu_hdr *req, uint64_t v)
{
	return send_reply(dev, req, &v, sizeof(v));
}

static ssize_t recv_msg(int sock, struct vu_hdr *h, uint8_t *payload, int *fds, int *nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
	struct iovec iov = { h, sizeof(*h) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			for (int i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (*nfds < VU_MAX_FDS)
					fds[(*nfds)++] = fd;
				else
					close(fd);
			}
		}
	}
	if (n != sizeof(*h) || h->size > VU_MAX_PAYLOAD)
		return -EPROTO;
	if (h->size) {
		size_t got = 0;

		while (got < h->size) {
			n = recv(sock, payload + got, h->size - got, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n < 0 ? -errno : -EPROTO;
			got += (size_t)n;
		}
	}
	return 1;
}

static void close_fds(int *fds, int nfds)
{
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static uint64_t offered_proto(const struct vu_dev *dev)
{
	uint64_t p = 1ULL << VU_PROTO_REPLY_ACK;

	if (dev->want_dax)
		p |= (1ULL << VU_PROTO_BACKEND_REQ) | (1ULL << VU_PROTO_BACKEND_SEND_FD) |
		     (1ULL << dev->breq->shmem_bit);
	return p;
}

/* Handle one message; returns 0, or -errno to end the connection. */
static int handle_msg(struct vu_dev *dev, struct vu_hdr *h, uint8_t *p, int *fds, int nfds)
{
	struct vu_queue *q = NULL;
	uint32_t st[2] = { 0, 0 };
	uint64_t u = 0;
	int err = 0;
	bool acked = false;

	if (h->size >= 8)
		memcpy(&u, p, 8);
	if (h->size >= 8)
		memcpy(st, p, 8);
	switch (h->request) {
	case VU_GET_FEATURES:
		close_fds(fds, nfds);
		return reply_u64(dev, h, (1ULL << VU_F_VERSION_1) | (1ULL << VU_F_PROTOCOL_FEATURES));
	case VU_SET_FEATURES:
		dev->features = u;
		break;
	case VU_GET_PROTOCOL_FEATURES:
		return reply_u64(dev, h, offered_proto(dev));
	case VU_SET_PROTOCOL_FEATURES:
		dev->proto = u & offered_proto(dev);
		atomic_store(&dev->breq->proto, dev->proto);
		break;
	case VU_GET_QUEUE_NUM:
		return reply_u64(dev, h, VU_MAX_QUEUES);
	case VU_GET_MAX_MEM_SLOTS:
		return reply_u64(dev, h, VIRTQ_MAX_REGIONS);
	case VU_SET_OWNER:
	case VU_RESET_OWNER:
	case VU_RESET_DEVICE:
		break;
	case VU_SET_MEM_TABLE:
		err = set_mem_table(dev, p, h->size, fds, nfds);
		close_fds(fds, nfds);
		nfds = 0;
		if (err)
			fuse_log(FUSE_LOG_ERR, "vhost-user: SET_MEM_TABLE refused: %s\n",
				 strerror(-err));
		break;
	case VU_SET_BACKEND_REQ_FD:
		if (nfds < 1) {
			err = -EINVAL;
			break;
		}
		{
			int old = atomic_exchange(&dev->breq->fd, fds[0]);

			if (old >= 0) {
				shutdown(old, SHUT_RDWR);
				/* Closed at teardown would leak; one connection per device. */
				close(old);
			}
		}
		atomic_store(&dev->breq->dead, false);
		nfds = 0;
		break;
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_ADDR:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
	case VU_SET_VRING_ENABLE: {
		unsigned int idx = (h->request == VU_SET_VRING_KICK ||
				    h->request == VU_SET_VRING_CALL ||
				    h->request == VU_SET_VRING_ERR) ? (unsigned int)(u & 0xff) : st[0];

		if (h->size < 8 || idx >= VU_MAX_QUEUES) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: message %u for queue %u: this "
				 "device has %u queues (hiprio + %u request queues)\n",
				 h->request, idx, VU_MAX_QUEUES, VU_MAX_QUEUES - 1);
			close_fds(fds, nfds);
			if (h->request == VU_GET_VRING_BASE) {
				st[1] = 0;
				return send_reply(dev, h, st, sizeof(st));
			}
			err = -EINVAL;
			nfds = 0;
			break;
		}
		q = &dev->q[idx];
		pthread_mutex_lock(&q->lock);
		switch (h->request) {
		case VU_SET_VRING_NUM:
			if (st[1] == 0 || st[1] > VIRTQ_MAX_NUM || (st[1] & (st[1] - 1)))
				err = -EINVAL;
			else
				q->num = st[1];
			break;
		case VU_SET_VRING_BASE:
			q->base = (uint16_t)st[1];
			q->vq.last_avail = q->base;
			break;
		case VU_SET_VRING_ADDR: {
			uint64_t a[4];

			if (h->size < 40) {
				err = -EINVAL;
				break;
			}
			memcpy(a, p + 8, sizeof(a));
			pthread_rwlock_rdlock(&dev->mem_lock);
			err = virtq_setup(&q->vq, &dev->mem, q->num, a[0], a[2], a[1]);
			pthread_rwlock_unlock(&dev->mem_lock);
			if (err) {
				fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: ring addresses not "
					 "in shared guest memory (%s)%s\n", idx, strerror(-err),
					 dev->mem.nregions ? "" :
					 ": QEMU needs -object memory-backend-memfd,share=on");
				q->addr_set = false;
				break;
			}
			q->desc_uva = a[0];
			q->used_uva = a[1];
			q->avail_uva = a[2];
			q->vq.last_avail = q->base;
			q->addr_set = true;
			break;
		}
		case VU_GET_VRING_BASE:
			/* Never wait for anything here: QEMU's main loop waits for us. */
			queue_stop_locked(q);
			q->enabled = false;
			st[1] = q->vq.last_avail;
			q->base = q->vq.last_avail;
			pthread_mutex_unlock(&q->lock);
			return send_reply(dev, h, st, sizeof(st));
		case VU_SET_VRING_KICK:
			if (nfds < 1 || (u & 0x100)) {
				err = -EINVAL; /* polling mode is not supported */
				break;
			}
			err = queue_start_locked(q, fds[0]);
			if (!err)
				nfds = 0;
			break;
		case VU_SET_VRING_CALL:
			if (q->call >= 0)
				close(q->call);
			q->call = (nfds >= 1 && !(u & 0x100)) ? fds[0] : -1;
			if (q->call >= 0)
				nfds = 0;
			break;
		case VU_SET_VRING_ERR:
			break;
		case VU_SET_VRING_ENABLE:
			q->enabled = st[1] != 0;
			if (q->worker)
				efd_signal(q->worker->wake);
			break;
		}
		pthread_mutex_unlock(&q->lock);
		break;
	}
	default:
		fuse_log(FUSE_LOG_DEBUG, "vhost-user: ignoring message %u\n", h->request);
		if (h->flags & VU_FLAG_NEED_REPLY) {
			err = -ENOSYS;
		}
		break;
	}
	close_fds(fds, nfds);
	if ((h->flags & VU_FLAG_NEED_REPLY) && (dev->proto & (1ULL << VU_PROTO_REPLY_ACK)) &&
	    !acked)
		return reply_u64(dev, h, err ? 1 : 0);
	return 0;
}

static void *frontend_main(void *arg)
{
	struct vu_dev *dev = arg;
	uint8_t *payload = malloc(VU_MAX_PAYLOAD);

	while (payload) {
		struct vu_hdr h;
		int fds[VU_MAX_FDS], nfds;
		ssize_t n = recv_msg(dev->sock, &h, payload, fds, &nfds);

		if (n <= 0) {
			close_fds(fds, nfds);
			if (n < 0)
				fuse_log(FUSE_LOG_ERR, "vhost-user: front-end connection: %s\n",
					 strerror((int)-n));
			break;
		}
		if (handle_msg(dev, &h, payload, fds, nfds) < 0)
			break;
	}
	free(payload);
	/* The VMM is gone: nothing more will be answered or mapped. */
	{
		int bfd = atomic_load(&dev->breq->fd);

		atomic_store(&dev->breq->dead, true);
		if (bfd >= 0)
			shutdown(bfd, SHUT_RDWR);
	}
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		pthread_mutex_lock(&dev->q[i].lock);
		queue_stop_locked(&dev->q[i]);
		pthread_mutex_unlock(&dev->q[i].lock);
	}
	fuse_session_exit(dev->se);
	{
		uint64_t many = 1ULL << 30;

		if (write(dev->end_efd, &many, sizeof(many)) < 0)
			(void)0;
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Session hooks.
 */

void vu_breq_put(struct vu_breq *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
		int fd = atomic_load(&b->fd);

		if (fd >= 0)
			close(fd);
		pthread_mutex_destroy(&b->lock);
		free(b);
	}
}

/* The session's device for socket path (or an inherited fd): 0 or -errno. */
static int vhost_user_new(struct fuse_session *se, const char *path, int fd)
{
	struct vu_dev *dev;

	if (se->vu)
		return 0;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->breq = calloc(1, sizeof(*dev->breq));
	dev->path = path ? strdup(path) : NULL;
	dev->end_efd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	if (!dev->breq || (path && !dev->path) || dev->end_efd < 0) {
		if (dev->end_efd >= 0)
			close(dev->end_efd);
		free(dev->breq);
		free(dev->path);
		free(dev);
		fuse_log(FUSE_LOG_ERR, "vhost-user: out of memory\n");
		return -ENOMEM;
	}
	pthread_mutex_init(&dev->breq->lock, NULL);
	atomic_store(&dev->breq->fd, -1);
	atomic_store(&dev->breq->refs, 1);
	dev->breq->shmem_bit = 20;
	dev->se = se;
	dev->given_fd = fd;
	dev->lfd = -1;
	dev->sock = -1;
	pthread_rwlock_init(&dev->mem_lock, NULL);
	pthread_mutex_init(&dev->wlock, NULL);
	pthread_cond_init(&dev->wcond, NULL);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		dev->q[i].dev = dev;
		dev->q[i].idx = i;
		dev->q[i].call = -1;
		pthread_mutex_init(&dev->q[i].lock, NULL);
	}
	se->vu = dev;
	return 0;
}

static int vhost_user_set_shmem_bit(struct fuse_session *se, unsigned int bit)
{
	if (!se->vu || bit < 20 || bit > 22)
		return -EINVAL;
	se->vu->breq->shmem_bit = bit;
	return 0;
}

void vhost_user_want_dax(struct fuse_session *se)
{
	if (se->vu)
		se->vu->want_dax = true;
}

struct vu_breq *vhost_user_breq(struct fuse_session *se)
{
	if (!se->vu)
		return NULL;
	atomic_fetch_add(&se->vu->breq->refs, 1);
	return se->vu->breq;
}

/* Bind the socket path: only its owner (and group) may connect as the VMM. */
static int vu_bind(struct vu_dev *dev)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	gid_t gid = (gid_t)-1;
	mode_t old_mask;
	struct stat st;
	int lfd, res, err;

	if (strlen(dev->path) >= sizeof(sa.sun_path)) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: socket path too long (at most %zu bytes): %s\n",
			 sizeof(sa.sun_path) - 1, dev->path);
		return -ENAMETOOLONG;
	}
	if (dev->group) {
		struct group *g = getgrnam(dev->group);

		if (!g) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: socket group %s: no such group\n",
				 dev->group);
			return -EINVAL;
		}
		gid = g->gr_gid;
	}
	strcpy(sa.sun_path, dev->path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	/* A socket left by an earlier daemon is replaced; nothing else is. */
	if (lstat(dev->path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(dev->path);
	/*
	 * The socket file is created with its final mode (bind() takes it
	 * from the umask, and a socket file cannot be chmod-ed before it
	 * exists), and listens right away: a VMM that sees the file must be
	 * able to connect. The umask is the process's: this is brief, at
	 * mount time, and only ever stricter.
	 */
	old_mask = umask(dev->group ? 0117 : 0177);
	res = bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
	err = -errno;
	umask(old_mask);
	if (res != 0) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: cannot bind %s: %s\n", dev->path,
			 strerror(-err));
		goto out_close;
	}
	if (listen(lfd, 1) != 0) {
		err = -errno;
		fuse_log(FUSE_LOG_ERR, "vhost-user: cannot listen on %s: %s\n", dev->path,
			 strerror(errno));
		goto out_unlink;
	}
	if (dev->group && chown(dev->path, (uid_t)-1, gid) != 0) {
		err = -errno;
		fuse_log(FUSE_LOG_ERR, "vhost-user: cannot give %s to group %s: %s\n",
			 dev->path, dev->group, strerror(errno));
		goto out_unlink;
	}
	dev->lfd = lfd;
	return 0;

out_unlink:
	unlink(dev->path);
out_close:
	close(lfd);
	return err;
}

/*
 * -o vhost_user_fd=N: a listening socket (what libvirt passes), or a
 * connection already made.
 */
static int vu_take_fd(struct vu_dev *dev)
{
	int fd = dev->given_fd, listening = 0;
	socklen_t len = sizeof(listening);
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: descriptor %d: %s\n", fd,
			 errno == EBADF ? "not open" : "not a socket");
		return -EBADF;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0)
		return -errno;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (listening)
		dev->lfd = fd;
	else
		dev->sock = fd;
	dev->given_fd = -1;	/* ours to close now */
	return 0;
}

/*
 * The connection is accepted by the first loop call, not at mount, so a
 * daemon has forked and its parent returned before the VMM comes: a script
 * can start the daemon, then the VMM.
 */
static int vu_accept(struct vu_dev *dev)
{
	int sock = accept4(dev->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (sock < 0) {
		if (errno == EINTR || errno == ECONNABORTED)
			return -EINTR;
		fuse_log(FUSE_LOG_ERR, "vhost-user: accept on %s: %s\n",
			 dev->path ? dev->path : "the inherited socket", strerror(errno));
		return -errno;
	}
	close(dev->lfd);
	dev->lfd = -1;
	/* One VMM per daemon: nobody else may connect. */
	if (dev->path)
		unlink(dev->path);
	dev->sock = sock;
	dev->se->master.fd = sock;
	return 0;
}

static int vhost_user_mount(struct fuse_session *se)
{
	struct vu_dev *dev = se->vu;
	int err;

	err = dev->path ? vu_bind(dev) : vu_take_fd(dev);
	if (err)
		return err;
	if (dev->path)
		fuse_log(FUSE_LOG_INFO, "vhost-user: waiting for the VMM on %s\n", dev->path);
	se->tp = &transport_vhost_user_ops;
	se->master.fd = dev->sock >= 0 ? dev->sock : dev->lfd;
	se->master.priv = dev;
	/* A second INIT after a guest reboot starts a new session. */
	se->reinit_allowed = true;
	return 0;
}

static void vhost_user_unmount(struct fuse_session *se)
{
	struct vu_dev *dev = se->vu;

	if (dev && dev->lfd >= 0) {
		close(dev->lfd);
		dev->lfd = -1;
		if (dev->path)
			unlink(dev->path);
		se->master.fd = -1;
	}
	if (!dev || dev->sock < 0)
		return;
	pthread_mutex_lock(&dev->wlock);
	dev->fe_failed = true; /* no loop may start it any more */
	pthread_mutex_unlock(&dev->wlock);
	if (dev->fe_live) {
		shutdown(dev->sock, SHUT_RDWR);
		pthread_join(dev->fe_thread, NULL);
		dev->fe_live = false;
	}
	/* Queue threads were told to stop; wait for the ones still in a request. */
	pthread_mutex_lock(&dev->wlock);
	while (atomic_load(&dev->live_workers) > 0)
		pthread_cond_wait(&dev->wcond, &dev->wlock);
	pthread_mutex_unlock(&dev->wlock);
	pthread_rwlock_wrlock(&dev->mem_lock);
	mem_unmap_all(dev);
	dev->mem_gen++;
	pthread_rwlock_unlock(&dev->mem_lock);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		if (dev->q[i].call >= 0)
			close(dev->q[i].call);
		dev->q[i].call = -1;
		dev->q[i].vq.num = 0;
	}
	close(dev->sock);
	dev->sock = -1;
	se->master.fd = -1;
	se->master.priv = NULL;
}

static void vhost_user_free(struct fuse_session *se)
{
	struct vu_dev *dev = se->vu;

	if (!dev)
		return;
	vhost_user_unmount(se);
	close(dev->end_efd);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		pthread_mutex_destroy(&dev->q[i].lock);
	pthread_rwlock_destroy(&dev->mem_lock);
	pthread_mutex_destroy(&dev->wlock);
	pthread_cond_destroy(&dev->wcond);
	vu_breq_put(dev->breq);
	if (dev->given_fd >= 0)
		close(dev->given_fd);
	free(dev->group);
	free(dev->path);
	free(dev);
	se->vu = NULL;
}

/* ------------------------------------------------------------------------
 * Registration: the mount point "vhost-user:SOCKET" (or "vhost-user" with
 * -o vhost_user_socket=SOCKET or -o vhost_user_fd=N) selects this transport.
 */

#define VU_SCHEME "vhost-user"

struct vu_opts {
	char *socket;
	int fd;
	unsigned int shmem_bit;
	char *group;
};

enum { VU_KEY_SOCKET, VU_KEY_FD };

static const struct fuse_opt vu_opt_spec[] = {
	FUSE_OPT_KEY("vhost_user_socket=", VU_KEY_SOCKET),
	FUSE_OPT_KEY("vhost_user_fd=", VU_KEY_FD),
	{ "vhost_user_shmem_bit=%u", offsetof(struct vu_opts, shmem_bit), 0 },
	{ "vhost_user_socket_group=%s", offsetof(struct vu_opts, group), 0 },
	FUSE_OPT_END,
};

/* The same option twice must agree (the mount point "vhost-user:S" adds one). */
static int vu_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct vu_opts *o = data;
	const char *val;
	char *end;
	long fd;

	if (key != VU_KEY_SOCKET && key != VU_KEY_FD)
		return 1;	/* not ours: keep it for the others */
	val = strchr(arg, '=') + 1;	/* the templates end in '=' */
	switch (key) {
	case VU_KEY_SOCKET:
		if (!*val) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: empty socket path\n");
			return -1;
		}
		if (o->socket && strcmp(o->socket, val) != 0) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: two sockets given, %s and %s: "
				 "a daemon serves one VMM\n", o->socket, val);
			return -1;
		}
		if (!o->socket && !(o->socket = strdup(val)))
			return -1;
		return 0;
	case VU_KEY_FD:
		errno = 0;
		fd = strtol(val, &end, 10);
		if (errno || end == val || *end || fd < 0 || fd > INT32_MAX) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: vhost_user_fd=%s: expected a "
				 "descriptor number\n", val);
			return -1;
		}
		if (o->fd >= 0 && o->fd != fd) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: two descriptors given, %d and %ld\n",
				 o->fd, fd);
			return -1;
		}
		o->fd = (int)fd;
		return 0;
	}
	return 1;
}

static int vu_parse(struct fuse_session *se, struct fuse_args *args)
{
	struct vu_opts o = { .fd = -1 };
	int err = -EINVAL;

	if (fuse_opt_parse(args, &o, vu_opt_spec, vu_opt_proc) == -1)
		goto out;
	if (o.socket && o.fd >= 0) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: a socket path (%s) and a descriptor (%d) "
			 "given: one or the other\n", o.socket, o.fd);
		goto out;
	}
	if (o.group && !o.socket) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: vhost_user_socket_group=%s: only for a "
			 "socket the daemon creates (vhost_user_socket=PATH)\n", o.group);
		goto out;
	}
	if (!o.socket && o.fd < 0) {
		if (!o.shmem_bit) {
			err = 0;
			goto out;
		}
		fuse_log(FUSE_LOG_ERR, "vhost-user: vhost_user_shmem_bit=%u: needs "
			 "vhost_user_socket=PATH or vhost_user_fd=N\n", o.shmem_bit);
		goto out;
	}
	err = vhost_user_new(se, o.socket, o.fd);
	if (err)
		goto out;
	if (o.shmem_bit && vhost_user_set_shmem_bit(se, o.shmem_bit) < 0) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: vhost_user_shmem_bit=%u: expected 20, 21 "
			 "or 22\n", o.shmem_bit);
		err = -EINVAL;
		goto out;
	}
	se->vu->group = o.group;
	o.group = NULL;
	err = 1;
out:
	free(o.socket);
	free(o.group);
	return err;
}

/*
 * The mount point of a vhost-user session only says "vhost-user", with or
 * without the socket; nothing is mounted.
 */
static int vu_mount(struct fuse_session *se, const char *mountpoint)
{
	size_t len = strlen(VU_SCHEME);
	const char *path;
	int err;

	if (strncmp(mountpoint, VU_SCHEME, len) != 0 ||
	    (mountpoint[len] != '\0' && mountpoint[len] != ':')) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: the session serves a VMM: its mount point "
			 "is `%s' or `%s:SOCKET' (nothing is mounted), not `%s'\n",
			 VU_SCHEME, VU_SCHEME, mountpoint);
		return -EINVAL;
	}
	path = mountpoint[len] == ':' ? mountpoint + len + 1 : NULL;
	if (path && !*path) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: no socket path after `%s:'\n", VU_SCHEME);
		return -EINVAL;
	}
	if (!se->vu) {
		if (!path) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: which socket? Give the mount point "
				 "as `%s:SOCKET', or -o vhost_user_socket=SOCKET or "
				 "-o vhost_user_fd=N\n", VU_SCHEME);
			return -EINVAL;
		}
		err = vhost_user_new(se, path, -1);
		if (err)
			return err;
	} else if (path && (!se->vu->path || strcmp(se->vu->path, path) != 0)) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: the mount point names socket %s, but the "
			 "options name %s%s\n", path, se->vu->path ? "socket " : "a descriptor",
			 se->vu->path ? se->vu->path : "");
		return -EINVAL;
	}
	return vhost_user_mount(se);
}

const struct transport_class transport_vhost_user_class = {
	.name = "vhost_user",
	.scheme = VU_SCHEME,
	.scheme_option = "vhost_user_socket=",
	.help = "    vhost-user:PATH        as the mount point: serve a VMM (vhost-user-fs)\n"
		"                           on socket PATH instead of mounting\n"
		"    -o vhost_user_socket=PATH  the same, with the mount point `vhost-user'\n"
		"    -o vhost_user_fd=N     the same on inherited socket N (listening, or\n"
		"                           connected to the VMM already)\n"
		"    -o vhost_user_socket_group=GROUP  let GROUP connect (mode 0660; the\n"
		"                           default is 0600: only the owner)\n"
		"    -o vhost_user_shmem_bit=N  protocol feature bit of SHMEM_MAP (20, 21, 22)\n",
	.local_dax_window = false,
	.parse = vu_parse,
	.mount = vu_mount,
	.unmount = vhost_user_unmount,
	.free = vhost_user_free,
};
