/*
 * The vhost-user-fs transport: the session serves a VMM (QEMU) over a
 * vhost-user socket instead of /dev/fuse. A front-end thread answers the
 * VMM's messages (features, memory table, vrings); one thread per started
 * queue pops descriptor chains, copies each request out of guest memory and
 * runs it through session_process() on a channel of its own, whose send
 * scatters the reply into the chain from whatever thread answers.
 *
 * Nothing the VMM does may hang, crash or starve the daemon: its file
 * descriptors are polled without blocking reads and signalled without
 * blocking writes, guest memory is checked against its files and reached
 * only under a SIGBUS guard, and no thread ever waits on the VMM while
 * holding what the front-end thread needs (doc/vhost-user.md, "What the
 * daemon promises a misbehaving VMM").
 */
#include "fuse_i.h"
#include "vhost_mem.h"
#include "vhost_user.h"
#include "virtq.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* hiprio + request queues. */
#define VU_MAX_QUEUES 9
#define VU_MAX_FDS 8
#define VU_MAX_PAYLOAD 4096

#define VU_F_PROTOCOL_FEATURES 30
#define VU_F_VERSION_1 32
#define VU_FEATURES ((1ULL << VU_F_VERSION_1) | (1ULL << VU_F_PROTOCOL_FEATURES))

/* Flags of a vring file message (SET_VRING_KICK/CALL/ERR). */
#define VU_VRING_IDX_MASK 0xffULL
#define VU_VRING_NOFD (1ULL << 8)

/*
 * GET_VRING_BASE waits this long for the queue's requests to finish on
 * their own, then interrupts them (a lock wait answers EINTR) and waits
 * again; whatever is still running then is answered with EIO.
 */
#define VU_DRAIN_GRACE_MS 2000
#define VU_DRAIN_INTERRUPTED_MS 3000
/* How long a DAX worker waits for the VMM to ack a backend request. */
#define VU_ACK_TIMEOUT_MS 30000
/* Lines about bad chains: a burst, then at most one a second. */
#define VU_LOG_BURST 10

enum {
	VU_GET_FEATURES = 1, VU_SET_FEATURES = 2, VU_SET_OWNER = 3, VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5, VU_SET_LOG_BASE = 6, VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8, VU_SET_VRING_ADDR = 9, VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11, VU_SET_VRING_KICK = 12, VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14, VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16, VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18, VU_SET_BACKEND_REQ_FD = 21,
	VU_RESET_DEVICE = 34, VU_GET_MAX_MEM_SLOTS = 36,
	VU_NMSGS = VU_GET_SHMEM_CONFIG + 1,
};

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

/* One front-end message; a handler sets the fds it keeps to -1. */
struct vu_msg {
	struct vu_hdr h;
	uint8_t *p;
	int fds[VU_MAX_FDS];
	int nfds;
	uint8_t reply[8 + 8 * VU_MAX_SHMEM_REGIONS];
	uint32_t reply_size;
};

/* A call eventfd, counted: signalled outside every lock, replaceable. */
struct vu_efd {
	atomic_int refs;
	int fd;
};

struct vu_worker;

/* One request in flight: its channel, chain and where it came from. */
struct vu_req {
	struct fuse_chan ch;
	struct vu_queue *q;	/* NULL: the device's own INTERRUPT messages */
	struct vu_mem *mem;	/* the table the chain's buffers are in */
	unsigned int gen;
	uint64_t unique;
	bool done;		/* answered or given up: off the in-flight list */
	bool vmm_wait;		/* waiting for the VMM (counted in nvmm_wait) */
	struct vu_req *next, *prev;
	struct virtq_chain c;
};

struct vu_queue {
	struct vu_dev *dev;
	unsigned int idx;
	/* Everything below, and the rings in guest memory. */
	pthread_mutex_t lock;
	pthread_cond_t drained;	/* a request of this queue finished */
	struct virtq vq;
	unsigned int num;
	uint16_t base;
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set, enabled, started;
	unsigned int gen;	/* bumped when chains can no longer be returned */
	struct vu_mem *ring_mem;	/* the table vq points into */
	struct vu_efd *call;
	struct vu_worker *worker;
	struct vu_req inflight;	/* list head */
	unsigned int ninflight, nvmm_wait;
};

struct vu_ratelimit {
	pthread_mutex_t lock;
	time_t last;
	unsigned int tokens;
	unsigned long suppressed;
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
	bool shmem_asked, shmem_noted;
	/* The current memory table; replaced with every queue lock held. */
	struct vu_mem *mem;
	struct vu_queue q[VU_MAX_QUEUES];
	int end_efd;
	atomic_int live_workers;
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	struct vu_breq *breq;
	/* Guest memory faulted: the connection is being closed. */
	atomic_bool broken;
	struct vu_ratelimit rl;
	/* The channel of the INTERRUPTs the device sends on its own. */
	struct vu_req intr;
};

/* A queue thread: owns its copy of the kick fd, a wake-up eventfd, an epoll. */
struct vu_worker {
	struct vu_queue *q;
	int kick, wake, ep;
	atomic_bool stop;
	atomic_int refs;
};

/* The request a queue thread is running, for vhost_user_vmm_wait(). */
static __thread struct vu_req *vu_cur_req;

static void worker_put(struct vu_worker *w)
{
	if (atomic_fetch_sub(&w->refs, 1) == 1) {
		if (w->kick >= 0)
			close(w->kick);
		close(w->wake);
		close(w->ep);
		free(w);
	}
}

static struct vu_efd *efd_get(struct vu_efd *e)
{
	if (e)
		atomic_fetch_add(&e->refs, 1);
	return e;
}

static void efd_put(struct vu_efd *e)
{
	if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
		close(e->fd);
		free(e);
	}
}

/*
 * Tell the VMM the used ring moved. The descriptor was made non-blocking
 * when it arrived, but the VMM shares the open file and could clear that
 * flag again: never write unless the write cannot block. A full eventfd
 * already tells the VMM to look.
 */
static void efd_signal(struct vu_efd *e)
{
	struct pollfd p;
	uint64_t one = 1;

	if (!e)
		return;
	p.fd = e->fd;
	p.events = POLLOUT;
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) && write(e->fd, &one, sizeof(one)) < 0)
		(void)0;
}

static void wake_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		(void)0; /* our own non-blocking eventfd: already signalled */
}

/* ------------------------------------------------------------------------
 * Logging that a guest cannot flood.
 */

static void vu_log_limited(struct vu_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void vu_log_limited(struct vu_dev *dev, const char *fmt, ...)
{
	struct vu_ratelimit *rl = &dev->rl;
	unsigned long suppressed;
	struct timespec now;
	char line[512];
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&rl->lock);
	if (now.tv_sec > rl->last) {
		time_t gain = now.tv_sec - rl->last;

		rl->tokens = gain >= VU_LOG_BURST ? VU_LOG_BURST
						 : rl->tokens + (unsigned int)gain;
		if (rl->tokens > VU_LOG_BURST)
			rl->tokens = VU_LOG_BURST;
		rl->last = now.tv_sec;
	}
	if (rl->tokens == 0) {
		rl->suppressed++;
		pthread_mutex_unlock(&rl->lock);
		return;
	}
	rl->tokens--;
	suppressed = rl->suppressed;
	rl->suppressed = 0;
	pthread_mutex_unlock(&rl->lock);

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (suppressed)
		fuse_log(FUSE_LOG_ERR, "vhost-user: %lu more such messages suppressed\n", suppressed);
	fuse_log(FUSE_LOG_ERR, "%s", line);
}

/* Say how many lines were held back (at the end of the connection). */
static void vu_log_flush(struct vu_dev *dev)
{
	unsigned long suppressed;

	pthread_mutex_lock(&dev->rl.lock);
	suppressed = dev->rl.suppressed;
	dev->rl.suppressed = 0;
	pthread_mutex_unlock(&dev->rl.lock);
	if (suppressed)
		fuse_log(FUSE_LOG_ERR, "vhost-user: %lu more such messages suppressed\n", suppressed);
}

/* ------------------------------------------------------------------------
 * Requests in flight (q->lock held).
 */

static void inflight_add(struct vu_queue *q, struct vu_req *r)
{
	r->next = q->inflight.next;
	r->prev = &q->inflight;
	q->inflight.next->prev = r;
	q->inflight.next = r;
	q->ninflight++;
}

/* The request is answered or given up: off the list, and nothing more goes to its chain. */
static void req_finish_locked(struct vu_req *r)
{
	struct vu_queue *q = r->q;

	if (r->done)
		return;
	r->done = true;
	r->prev->next = r->next;
	r->next->prev = r->prev;
	q->ninflight--;
	if (r->vmm_wait) {
		r->vmm_wait = false;
		q->nvmm_wait--;
	}
	pthread_cond_broadcast(&q->drained);
}

/* May r's chain still be written and returned to the ring? */
static bool req_live_locked(const struct vu_req *r)
{
	const struct vu_queue *q = r->q;

	return !r->done && r->gen == q->gen && q->vq.num && !atomic_load(&q->dev->broken);
}

/*
 * Return a chain that gets no real answer: an error reply (out header
 * only) if the chain has room for one, else nothing (length 0, as for
 * FORGET, which has no writable part). The Linux driver does not look at
 * the length: a chain returned empty would read as success with arguments
 * nobody wrote. Guest memory is touched: the caller holds a guard.
 */
static void chain_answer_error(struct vu_queue *q, const struct virtq_chain *c, uint64_t unique,
			       int err)
{
	struct fuse_out_header out = { sizeof(out), -err, unique };
	struct iovec iov = { &out, sizeof(out) };
	ssize_t n = 0;

	if (c->write_len >= sizeof(out))
		n = virtq_scatter(c, &iov, 1);
	virtq_push(&q->vq, c->head, n > 0 ? (uint32_t)n : 0);
}

/* ------------------------------------------------------------------------
 * Guest memory faults.
 */

/*
 * A guarded access to guest memory took a SIGBUS: the VMM shrank a region's
 * file under us. Nothing in that memory can be trusted to stay there, so
 * the connection ends (cleanly: the session exits as on a disconnect).
 */
static void vu_mem_fault(struct vu_dev *dev, const char *what)
{
	if (atomic_exchange(&dev->broken, true))
		return;
	fuse_log(FUSE_LOG_ERR, "vhost-user: guest memory went away while %s (SIGBUS: the VMM "
		 "shrank the file behind a memory region): closing the connection\n", what);
	vu_breq_disconnect(dev->breq, NULL);
}

/* ------------------------------------------------------------------------
 * Channel operations.
 */

/*
 * Copy a reply into r's chain and return it to the ring, under a guard:
 * -EFAULT if guest memory went away. q->lock held.
 */
static int reply_locked(struct vu_queue *q, struct vu_req *r, const struct iovec *iov, int count,
			ssize_t *n)
{
	struct vu_guard g;

	vu_guard_arm(&g, r->mem, q->ring_mem);
	if (sigsetjmp(g.jb, 0))
		return -EFAULT;
	*n = virtq_scatter(&r->c, iov, count);
	if (*n >= 0)
		virtq_push(&q->vq, r->c.head, (uint32_t)*n);
	vu_guard_disarm(&g);
	return 0;
}

/* The same for a chain that gets an error instead of its answer. */
static int refuse_locked(struct vu_queue *q, struct vu_req *r, int err)
{
	struct vu_guard g;

	vu_guard_arm(&g, r->mem, q->ring_mem);
	if (sigsetjmp(g.jb, 0))
		return -EFAULT;
	chain_answer_error(q, &r->c, r->unique, err);
	vu_guard_disarm(&g);
	return 0;
}

static int vu_send(struct fuse_chan *ch, const struct iovec *iov, int count)
{
	struct vu_efd *call = NULL;
	struct vu_queue *q;
	struct vu_req *r;
	ssize_t n = -ENOENT;

	if (ch == &ch->se->master)
		return -ENOSYS; /* notifications: virtio-fs has no queue for them */
	r = (struct vu_req *)ch;
	q = r->q;
	if (!q)
		return 0; /* the answer to the device's own INTERRUPT: nobody asked */
	pthread_mutex_lock(&q->lock);
	/* Not live: given up (the ring stopped), or answered already. */
	if (req_live_locked(r)) {
		if (reply_locked(q, r, iov, count, &n) != 0) {
			req_finish_locked(r);
			pthread_mutex_unlock(&q->lock);
			vu_mem_fault(q->dev, "writing a reply");
			return -EIO;
		}
		if (n >= 0)
			call = efd_get(q->call);
	}
	if (n >= 0 || n == -ENOENT)
		req_finish_locked(r);
	pthread_mutex_unlock(&q->lock);
	efd_signal(call);
	efd_put(call);
	return n < 0 ? (int)n : 0;
}

/* The last reference to a request's channel: return an unanswered chain. */
static void vu_release(struct fuse_chan *ch)
{
	struct vu_req *r = (struct vu_req *)ch;
	struct vu_queue *q = r->q;
	struct vu_efd *call = NULL;
	bool fault = false;

	pthread_mutex_lock(&q->lock);
	if (req_live_locked(r)) {
		fault = refuse_locked(q, r, EIO) != 0;
		if (!fault)
			call = efd_get(q->call);
	}
	req_finish_locked(r);
	pthread_mutex_unlock(&q->lock);
	if (fault)
		vu_mem_fault(q->dev, "returning a request");
	efd_signal(call);
	efd_put(call);
	vu_mem_put(r->mem);
	free(r);
}

/* The loops' receive: requests come from the queue threads; wait for the end. */
static void *frontend_main(void *arg);
static int vu_accept(struct vu_dev *dev);

static ssize_t vu_receive(struct fuse_chan *ch, void *buf, size_t size)
{
	struct vu_dev *dev = ch->priv;
	uint64_t v;

	(void)buf;
	(void)size;
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

		signals_fill_blockable(&all);
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

void vhost_user_vmm_wait(bool begin)
{
	struct vu_req *r = vu_cur_req;
	struct vu_queue *q;

	if (!r)
		return;
	q = r->q;
	pthread_mutex_lock(&q->lock);
	if (!r->done && r->vmm_wait != begin) {
		r->vmm_wait = begin;
		if (begin)
			q->nvmm_wait++;
		else
			q->nvmm_wait--;
		pthread_cond_broadcast(&q->drained);
	}
	pthread_mutex_unlock(&q->lock);
}

/* ------------------------------------------------------------------------
 * Queue threads.
 */

enum { TAKE_NONE, TAKE_REQUEST, TAKE_BAD };

/* Does buf hold a request whose header agrees with the chain's length? */
static int request_framing(const void *buf, ssize_t len)
{
	struct fuse_in_header in;

	if (len < (ssize_t)sizeof(in))
		return -EBADMSG;
	memcpy(&in, buf, sizeof(in));
	return in.len == (uint64_t)len ? 0 : -EBADMSG;
}

/*
 * A chain the device cannot serve: answered with EIO wherever it has room
 * for an out header (the unique comes from its first bytes, if readable).
 */
static void chain_refuse_locked(struct vu_queue *q, struct vu_req *r, uint16_t head, int why)
{
	struct fuse_in_header in = { 0 };
	size_t got;

	vu_log_limited(q->dev, "vhost-user: queue %u: bad descriptor chain %u (%s): "
		       "answered with EIO\n", q->idx, head,
		       why == -EBADMSG ? "the request's length disagrees with its buffers"
				       : strerror(-why));
	virtq_map_reply(&q->vq, &r->mem->m, head, &r->c, &in, sizeof(in), &got);
	chain_answer_error(q, &r->c, got >= offsetof(struct fuse_in_header, nodeid) ? in.unique : 0,
			   EIO);
}

/*
 * Pop the next chain of q into r and its request into buf, under a guard;
 * a chain that cannot be served is answered here. q->lock held. Returns
 * TAKE_*, or -EFAULT if guest memory went away.
 */
static int take_locked(struct vu_queue *q, struct vu_req *r, void *buf, size_t *len)
{
	struct vu_dev *dev = q->dev;
	struct vu_guard g;
	uint16_t head;
	ssize_t n;
	int err;

	vu_guard_arm(&g, q->ring_mem, dev->mem);
	if (sigsetjmp(g.jb, 0))
		return -EFAULT;
	err = virtq_pop(&q->vq, &head);
	if (err <= 0) {
		vu_guard_disarm(&g);
		if (err == 0)
			return TAKE_NONE;
		vu_log_limited(dev, "vhost-user: queue %u: bad avail ring entry%s\n", q->idx,
			       q->vq.broken ? " (ring index runs ahead: queue stopped)" : "");
		return q->vq.broken ? TAKE_NONE : TAKE_BAD;
	}
	err = virtq_map_chain(&q->vq, &r->mem->m, head, &r->c);
	n = err ? err : virtq_gather(&r->c, buf, dev->se->bufsize);
	err = n < 0 ? (int)n : request_framing(buf, n);
	if (err) {
		chain_refuse_locked(q, r, head, err);
		vu_guard_disarm(&g);
		return TAKE_BAD;
	}
	vu_guard_disarm(&g);
	*len = (size_t)n;
	return TAKE_REQUEST;
}

/* Take the next chain of q into r and buf. */
static int queue_take(struct vu_queue *q, struct vu_req *r, void *buf, size_t *len)
{
	struct vu_dev *dev = q->dev;
	struct vu_efd *call = NULL;
	int res = TAKE_NONE;

	pthread_mutex_lock(&q->lock);
	if (!q->started || !q->enabled || !q->vq.num || atomic_load(&dev->broken))
		goto out_unlock;
	r->mem = vu_mem_get(dev->mem);
	res = take_locked(q, r, buf, len);
	if (res != TAKE_REQUEST) {
		vu_mem_put(r->mem);
		if (res == TAKE_BAD)
			call = efd_get(q->call);
		if (res < 0) {
			pthread_mutex_unlock(&q->lock);
			vu_mem_fault(dev, "reading a request");
			return TAKE_NONE;
		}
		goto out_unlock;
	}
	memset(&r->ch, 0, sizeof(r->ch));
	r->ch.se = dev->se;
	r->ch.fd = -1;
	atomic_init(&r->ch.refs, 1);
	r->q = q;
	r->gen = q->gen;
	r->done = false;
	r->vmm_wait = false;
	memcpy(&r->unique, (const char *)buf + offsetof(struct fuse_in_header, unique),
	       sizeof(r->unique));
	inflight_add(q, r);
out_unlock:
	pthread_mutex_unlock(&q->lock);
	efd_signal(call);
	efd_put(call);
	return res;
}

/* Serve q until its ring is empty or it stops. */
static void queue_serve(struct vu_queue *q, void *buf)
{
	struct fuse_session *se = q->dev->se;
	struct vu_req *r = NULL;

	for (;;) {
		size_t len = 0;
		int res;

		if (!r) {
			r = malloc(sizeof(*r));
			if (!r) {
				fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: out of memory\n", q->idx);
				return;
			}
		}
		res = queue_take(q, r, buf, &len);
		if (res == TAKE_NONE)
			break;
		if (res == TAKE_BAD)
			continue;
		vu_cur_req = r;
		session_process(se, &r->ch, buf, len);
		vu_cur_req = NULL;
		chan_put(se, &r->ch);
		r = NULL;
		if (fuse_session_exited(se))
			break;
	}
	free(r);
}

static void *queue_main(void *arg)
{
	struct vu_worker *w = arg;
	struct vu_queue *q = w->q;
	struct vu_dev *dev = q->dev;
	void *buf = loop_alloc_buffer(dev->se);

	/*
	 * The kick fd is watched edge-triggered and never read: every write
	 * the VMM makes wakes us once, and no read can block (a drained
	 * eventfd shared by several queues) or spin (a descriptor that always
	 * reads, such as a socket with data nobody consumes).
	 */
	while (buf && !atomic_load(&w->stop)) {
		struct epoll_event ev[2];
		int n = epoll_wait(w->ep, ev, 2, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: epoll_wait: %s\n", q->idx,
				 strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t v;

			if (ev[i].data.u32 == 1 && read(w->wake, &v, sizeof(v)) < 0)
				(void)0; /* our non-blocking eventfd, drained */
		}
		if (atomic_load(&w->stop))
			break;
		queue_serve(q, buf);
	}
	free(buf);
	worker_put(w);
	pthread_mutex_lock(&dev->wlock);
	atomic_fetch_sub(&dev->live_workers, 1);
	pthread_cond_broadcast(&dev->wcond);
	pthread_mutex_unlock(&dev->wlock);
	return NULL;
}

/* Stop q's thread (not the ring). q->lock held. */
static void worker_stop_locked(struct vu_queue *q)
{
	struct vu_worker *w = q->worker;

	if (!w)
		return;
	q->worker = NULL;
	atomic_store(&w->stop, true);
	wake_signal(w->wake);
	worker_put(w);
}

/* Start a thread serving q on kick; on success it owns kick. q->lock held. */
static int worker_start_locked(struct vu_queue *q, int kick)
{
	struct vu_dev *dev = q->dev;
	struct epoll_event ev;
	struct vu_worker *w;
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int err;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->q = q;
	w->kick = -1;
	w->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->wake < 0 || w->ep < 0) {
		err = -errno;
		goto out_free;
	}
	ev.events = EPOLLIN;
	ev.data.u32 = 1;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake, &ev) != 0) {
		err = -errno;
		goto out_free;
	}
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u32 = 0;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, kick, &ev) != 0) {
		err = -errno;
		fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: the kick descriptor cannot be "
			 "polled (%s): refused\n", q->idx, strerror(errno));
		goto out_free;
	}
	worker_stop_locked(q);
	w->kick = kick;
	atomic_init(&w->refs, 2);
	atomic_fetch_add(&dev->live_workers, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	signals_fill_blockable(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = -pthread_create(&t, &attr, queue_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err) {
		atomic_fetch_sub(&dev->live_workers, 1);
		q->started = false;
		w->kick = -1;
		goto out_free;
	}
	q->worker = w;
	q->started = true;
	return 0;

out_free:
	if (w->wake >= 0)
		close(w->wake);
	if (w->ep >= 0)
		close(w->ep);
	free(w);
	return err;
}

static int wait_drained(struct vu_queue *q, int ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	while (q->ninflight > q->nvmm_wait)
		if (pthread_cond_timedwait(&q->drained, &q->lock, &t) == ETIMEDOUT)
			return -ETIMEDOUT;
	return 0;
}

/* The device's own FUSE_INTERRUPT of a request, as the client would send it. */
static void send_interrupt(struct vu_dev *dev, uint64_t unique)
{
	struct {
		struct fuse_in_header h;
		struct fuse_interrupt_in a;
	} m;

	memset(&m, 0, sizeof(m));
	m.h.len = sizeof(m);
	m.h.opcode = FUSE_INTERRUPT;
	m.h.unique = unique | 1; /* the Linux client marks an INTERRUPT with bit 0 */
	m.a.unique = unique;
	session_process(dev->se, &dev->intr.ch, &m, sizeof(m));
}

/* Interrupt every request of q that is not waiting for the VMM. q->lock held. */
static void queue_interrupt_locked(struct vu_queue *q)
{
	unsigned int n = 0, cap = q->ninflight;
	uint64_t *uniques = calloc(cap ? cap : 1, sizeof(*uniques));

	if (!uniques)
		return;
	for (struct vu_req *r = q->inflight.next; r != &q->inflight && n < cap; r = r->next)
		if (!r->vmm_wait)
			uniques[n++] = r->unique;
	pthread_mutex_unlock(&q->lock);
	for (unsigned int i = 0; i < n; i++)
		send_interrupt(q->dev, uniques[i]);
	pthread_mutex_lock(&q->lock);
	free(uniques);
}

/*
 * GET_VRING_BASE: the VMM resumes from the index we return, so every chain
 * taken before it must be answered first. A request that waits for the
 * VMM (a DAX map) cannot be: QEMU serves our backend requests only once we
 * answered, so the front-end thread never waits for those. Others get a
 * grace period, then an INTERRUPT, then a second period; whatever is left
 * is answered with EIO (its real answer, later, goes nowhere). q->lock held.
 */
static void queue_drain_locked(struct vu_queue *q)
{
	unsigned int failed = 0, parked;

	if (!q->ninflight)
		return;
	if (wait_drained(q, VU_DRAIN_GRACE_MS) != 0) {
		queue_interrupt_locked(q);
		wait_drained(q, VU_DRAIN_INTERRUPTED_MS);
	}
	if (!q->ninflight)
		return;
	parked = q->nvmm_wait;
	while (q->inflight.next != &q->inflight) {
		struct vu_req *r = q->inflight.next;

		if (req_live_locked(r) && refuse_locked(q, r, EIO) != 0)
			vu_mem_fault(q->dev, "stopping a queue");
		req_finish_locked(r);
		failed++;
	}
	fuse_log(FUSE_LOG_WARNING, "vhost-user: queue %u stopped with %u requests unfinished "
		 "(%u waiting for the VMM): answered with EIO\n", q->idx, failed, parked);
}

/* ------------------------------------------------------------------------
 * Front-end messages.
 */

static int send_reply(struct vu_dev *dev, const struct vu_hdr *req, const void *payload,
		      uint32_t size)
{
	struct vu_hdr h = { .request = req->request, .flags = VU_FLAG_VERSION | VU_FLAG_REPLY,
			    .size = size };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)payload, size } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	return sendmsg(dev->sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void reply_u64(struct vu_msg *m, uint64_t v)
{
	memcpy(m->reply, &v, sizeof(v));
	m->reply_size = sizeof(v);
}

static uint64_t msg_u64(const struct vu_msg *m)
{
	uint64_t u = 0;

	memcpy(&u, m->p, m->h.size < sizeof(u) ? m->h.size : sizeof(u));
	return u;
}

static uint64_t offered_proto(const struct vu_dev *dev)
{
	uint64_t p = 1ULL << VU_PROTO_REPLY_ACK;

	if (dev->want_dax)
		p |= (1ULL << VU_PROTO_BACKEND_REQ) | (1ULL << VU_PROTO_BACKEND_SEND_FD) |
		     (1ULL << dev->breq->shmem_bit);
	return p;
}

static bool shmem_negotiated(const struct vu_dev *dev)
{
	return dev->want_dax && (dev->proto & (1ULL << dev->breq->shmem_bit));
}

/* Stop every queue at once: the VMM is gone, or reset the device. */
static void device_stop(struct vu_dev *dev, bool forget_rings)
{
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		struct vu_queue *q = &dev->q[i];

		pthread_mutex_lock(&q->lock);
		worker_stop_locked(q);
		q->started = false;
		q->gen++;
		/* Their answers go nowhere now; the guest forgot the chains. */
		while (q->inflight.next != &q->inflight)
			req_finish_locked(q->inflight.next);
		if (forget_rings) {
			q->enabled = false;
			q->addr_set = false;
			memset(&q->vq, 0, sizeof(q->vq));
			vu_mem_put(q->ring_mem);
			q->ring_mem = NULL;
		}
		pthread_mutex_unlock(&q->lock);
	}
	atomic_fetch_add(&dev->breq->epoch, 1);
}

static int msg_get_features(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	reply_u64(m, VU_FEATURES);
	return 0;
}

static int msg_set_features(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	uint64_t u = msg_u64(m);

	if (u & ~VU_FEATURES) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: SET_FEATURES 0x%llx acks features this device "
			 "never offered (0x%llx): refused\n", (unsigned long long)u,
			 (unsigned long long)(u & ~VU_FEATURES));
		return -EINVAL;
	}
	dev->features = u;
	return 0;
}

static int msg_get_protocol_features(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	reply_u64(m, offered_proto(dev));
	return 0;
}

static int msg_set_protocol_features(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	uint64_t u = msg_u64(m);

	if (u & ~offered_proto(dev))
		fuse_log(FUSE_LOG_WARNING, "vhost-user: SET_PROTOCOL_FEATURES acks 0x%llx, never "
			 "offered: ignored\n", (unsigned long long)(u & ~offered_proto(dev)));
	dev->proto = u & offered_proto(dev);
	atomic_store(&dev->breq->proto, dev->proto);
	return 0;
}

static int msg_get_queue_num(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	reply_u64(m, VU_MAX_QUEUES);
	return 0;
}

static int msg_get_max_mem_slots(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	reply_u64(m, VIRTQ_MAX_REGIONS);
	return 0;
}

static int msg_nothing(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	return 0;
}

static int msg_reset(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	device_stop(dev, true);
	dev->features = 0;
	return 0;
}

/* Point a queue's rings into the new table; q->lock held. */
static void ring_remap_locked(struct vu_dev *dev, struct vu_queue *q, struct vu_mem *mem)
{
	uint16_t last = q->vq.last_avail, used = q->vq.used_idx;
	bool broken = q->vq.broken;
	struct vu_guard g;
	int err;

	vu_guard_arm(&g, mem, NULL);
	if (sigsetjmp(g.jb, 0)) {
		memset(&q->vq, 0, sizeof(q->vq));
		q->addr_set = false;
		vu_mem_fault(dev, "moving a ring to a new memory table");
		return;
	}
	err = virtq_setup(&q->vq, &mem->m, q->num, q->desc_uva, q->avail_uva, q->used_uva);
	vu_guard_disarm(&g);
	if (err) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: its rings are not in the new memory "
			 "table (%s): queue stopped\n", q->idx, strerror(-err));
		memset(&q->vq, 0, sizeof(q->vq));
		q->addr_set = false;
		return;
	}
	q->vq.last_avail = last;
	q->vq.used_idx = used;
	q->vq.broken = broken;
	vu_mem_put(q->ring_mem);
	q->ring_mem = vu_mem_get(mem);
}

/*
 * A new memory table, possibly at run time (memory hotplug): requests in
 * flight keep the table their buffers are in (it stays mapped until they
 * are answered), the rings move to the new one.
 */
static int msg_set_mem_table(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	struct vu_mem *mem, *old;
	int err;

	err = vu_mem_new(m->p, m->h.size, m->fds, m->nfds, &mem);
	if (err) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: SET_MEM_TABLE refused: %s\n", strerror(-err));
		return err;
	}
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		pthread_mutex_lock(&dev->q[i].lock);
	old = dev->mem;
	dev->mem = mem;
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		if (dev->q[i].addr_set)
			ring_remap_locked(dev, &dev->q[i], mem);
	for (unsigned int i = VU_MAX_QUEUES; i-- > 0;)
		pthread_mutex_unlock(&dev->q[i].lock);
	vu_mem_put(old);
	if (mem->m.nregions == 0)
		fuse_log(FUSE_LOG_WARNING, "vhost-user: the VMM shared no guest memory "
			 "(give QEMU -object memory-backend-memfd,share=on and -numa node,memdev=...)\n");
	return 0;
}

static int msg_set_backend_req_fd(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	struct vu_breq *b = dev->breq;
	struct vu_chan *c, *old;

	if (m->nfds < 1)
		return -EINVAL;
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	c->fd = m->fds[0];
	m->fds[0] = -1;
	pthread_mutex_lock(&b->chan_lock);
	old = b->chan;
	b->chan = c;
	atomic_store(&b->dead, false);
	pthread_mutex_unlock(&b->chan_lock);
	if (old) {
		/* A worker waiting on it wakes with an error; the fd closes after it. */
		shutdown(old->fd, SHUT_RDWR);
		vu_chan_put(old);
	}
	return 0;
}

static int msg_get_shmem_config(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	uint32_t nregions = 0, pad = 0;
	uint64_t sizes[VU_MAX_SHMEM_REGIONS] = { 0 };

	dev->shmem_asked = true;
	sizes[0] = atomic_load(&dev->breq->window_size);
	if (shmem_negotiated(dev) && sizes[0])
		nregions = 1;
	else
		fuse_log(FUSE_LOG_WARNING, "vhost-user: GET_SHMEM_CONFIG without %s: answered "
			 "with no regions\n", dev->want_dax ? "the SHMEM protocol feature"
							    : "a DAX window");
	if (!nregions)
		sizes[0] = 0;
	else
		fuse_log(FUSE_LOG_INFO, "vhost-user: the VMM asked for the DAX window size: "
			 "%llu bytes\n", (unsigned long long)sizes[0]);
	memcpy(m->reply, &nregions, 4);
	memcpy(m->reply + 4, &pad, 4);
	memcpy(m->reply + 8, sizes, sizeof(sizes));
	m->reply_size = 8 + sizeof(sizes);
	return 0;
}

static int msg_set_vring_num(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	uint32_t st[2];

	memcpy(st, m->p, sizeof(st));
	if (st[1] == 0 || st[1] > VIRTQ_MAX_NUM || (st[1] & (st[1] - 1))) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: size %u is not a power of two up to "
			 "%d: refused\n", q->idx, st[1], VIRTQ_MAX_NUM);
		return -EINVAL;
	}
	q->num = st[1];
	return 0;
}

static int msg_set_vring_base(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	uint32_t st[2];

	memcpy(st, m->p, sizeof(st));
	q->base = (uint16_t)st[1];
	q->vq.last_avail = q->base;
	return 0;
}

static int msg_set_vring_addr(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	struct virtq vq;
	struct vu_guard g;
	uint64_t a[4];
	int err;

	memcpy(a, m->p + 8, sizeof(a)); /* desc, used, avail, log */
	vu_guard_arm(&g, dev->mem, NULL);
	if (sigsetjmp(g.jb, 0)) {
		vu_mem_fault(dev, "setting up a ring");
		return -EFAULT;
	}
	err = virtq_setup(&vq, &dev->mem->m, q->num, a[0], a[2], a[1]);
	vu_guard_disarm(&g);
	if (err) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: ring addresses not usable in shared "
			 "guest memory (%s)%s\n", q->idx, strerror(-err),
			 dev->mem->m.nregions ? "" : ": QEMU needs -object memory-backend-memfd,share=on");
		q->addr_set = false;
		memset(&q->vq, 0, sizeof(q->vq));
		return err;
	}
	/* New rings (not a change of logging flags): old chains cannot go back. */
	if (!q->addr_set || q->desc_uva != a[0] || q->used_uva != a[1] || q->avail_uva != a[2] ||
	    q->vq.num != vq.num)
		q->gen++;
	q->vq = vq;
	q->vq.last_avail = q->base;
	q->desc_uva = a[0];
	q->used_uva = a[1];
	q->avail_uva = a[2];
	q->addr_set = true;
	vu_mem_put(q->ring_mem);
	q->ring_mem = vu_mem_get(dev->mem);
	return 0;
}

static int msg_get_vring_base(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	uint32_t st[2];

	memcpy(st, m->p, sizeof(st));
	/* Never wait on the VMM here: QEMU's main loop waits for this answer. */
	worker_stop_locked(q);
	q->started = false;
	q->enabled = false;
	queue_drain_locked(q);
	q->gen++;
	q->base = q->vq.last_avail;
	st[1] = q->base;
	memcpy(m->reply, st, sizeof(st));
	m->reply_size = sizeof(st);
	atomic_fetch_add(&dev->breq->epoch, 1);
	return 0;
}

static int msg_set_vring_kick(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	uint64_t u = msg_u64(m);
	int err;

	if (m->nfds < 1 || (u & VU_VRING_NOFD)) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: SET_VRING_KICK without a descriptor "
			 "(polling mode is not supported)\n", q->idx);
		return -EINVAL;
	}
	err = worker_start_locked(q, m->fds[0]);
	if (err)
		return err;
	m->fds[0] = -1;
	/* Without protocol features a ring is enabled as soon as it starts. */
	if (!(dev->features & (1ULL << VU_F_PROTOCOL_FEATURES)))
		q->enabled = true;
	if (shmem_negotiated(dev) && !dev->shmem_asked && !dev->shmem_noted) {
		dev->shmem_noted = true;
		fuse_log(FUSE_LOG_WARNING, "vhost-user: the VMM did not ask for the DAX window size "
			 "(GET_SHMEM_CONFIG): its cache window must be %llu bytes, as this daemon's "
			 "(QEMU: cache-size=%llu), or set the daemon's to the VMM's "
			 "(-o dax_window_size=)\n",
			 (unsigned long long)atomic_load(&dev->breq->window_size),
			 (unsigned long long)atomic_load(&dev->breq->window_size));
	}
	return 0;
}

static int msg_set_vring_call(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	uint64_t u = msg_u64(m);
	struct vu_efd *e = NULL, *old;

	if (m->nfds >= 1 && !(u & VU_VRING_NOFD)) {
		int fl = fcntl(m->fds[0], F_GETFL);

		/* A blocking write to it could park whichever thread answers. */
		if (fl < 0 || fcntl(m->fds[0], F_SETFL, fl | O_NONBLOCK) != 0) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: queue %u: the call descriptor cannot be "
				 "made non-blocking (%s): refused\n", q->idx, strerror(errno));
			return -EINVAL;
		}
		e = malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		atomic_init(&e->refs, 1);
		e->fd = m->fds[0];
		m->fds[0] = -1;
	}
	old = q->call;
	q->call = e;
	efd_put(old);
	return 0;
}

static int msg_set_vring_enable(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q)
{
	uint32_t st[2];

	memcpy(st, m->p, sizeof(st));
	q->enabled = st[1] != 0;
	if (q->worker)
		wake_signal(q->worker->wake);
	return 0;
}

/* Where a message names its queue. */
enum { VU_NO_QUEUE, VU_QUEUE_STATE, VU_QUEUE_FILE };

/*
 * The front-end messages this device knows, and what the dispatcher
 * enforces for each: the payload's minimum size, how many descriptors it
 * may carry (the rest are closed), where it names a queue, and whether it
 * answers with a message of its own (GET_*: even when refused, so the VMM
 * never waits for nothing).
 */
struct vu_msg_type {
	const char *name;
	uint32_t min_size;
	int max_fds;
	int queue;
	bool answers;
	int (*handle)(struct vu_dev *dev, struct vu_msg *m, struct vu_queue *q);
};

static const struct vu_msg_type vu_msg_types[VU_NMSGS] = {
	[VU_GET_FEATURES] = { "GET_FEATURES", 0, 0, VU_NO_QUEUE, true, msg_get_features },
	[VU_SET_FEATURES] = { "SET_FEATURES", 8, 0, VU_NO_QUEUE, false, msg_set_features },
	[VU_SET_OWNER] = { "SET_OWNER", 0, 0, VU_NO_QUEUE, false, msg_nothing },
	[VU_RESET_OWNER] = { "RESET_OWNER", 0, 0, VU_NO_QUEUE, false, msg_reset },
	[VU_SET_MEM_TABLE] = { "SET_MEM_TABLE", 8, VIRTQ_MAX_REGIONS, VU_NO_QUEUE, false,
			       msg_set_mem_table },
	[VU_SET_VRING_NUM] = { "SET_VRING_NUM", 8, 0, VU_QUEUE_STATE, false, msg_set_vring_num },
	[VU_SET_VRING_ADDR] = { "SET_VRING_ADDR", 40, 0, VU_QUEUE_STATE, false,
				msg_set_vring_addr },
	[VU_SET_VRING_BASE] = { "SET_VRING_BASE", 8, 0, VU_QUEUE_STATE, false,
				msg_set_vring_base },
	[VU_GET_VRING_BASE] = { "GET_VRING_BASE", 8, 0, VU_QUEUE_STATE, true, msg_get_vring_base },
	[VU_SET_VRING_KICK] = { "SET_VRING_KICK", 8, 1, VU_QUEUE_FILE, false, msg_set_vring_kick },
	[VU_SET_VRING_CALL] = { "SET_VRING_CALL", 8, 1, VU_QUEUE_FILE, false, msg_set_vring_call },
	[VU_SET_VRING_ERR] = { "SET_VRING_ERR", 8, 1, VU_QUEUE_FILE, false, msg_nothing },
	[VU_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", 0, 0, VU_NO_QUEUE, true,
				       msg_get_protocol_features },
	[VU_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", 8, 0, VU_NO_QUEUE, false,
				       msg_set_protocol_features },
	[VU_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", 0, 0, VU_NO_QUEUE, true, msg_get_queue_num },
	[VU_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", 8, 0, VU_QUEUE_STATE, false,
				  msg_set_vring_enable },
	[VU_SET_BACKEND_REQ_FD] = { "SET_BACKEND_REQ_FD", 0, 1, VU_NO_QUEUE, false,
				    msg_set_backend_req_fd },
	[VU_RESET_DEVICE] = { "RESET_DEVICE", 0, 0, VU_NO_QUEUE, false, msg_reset },
	[VU_GET_MAX_MEM_SLOTS] = { "GET_MAX_MEM_SLOTS", 0, 0, VU_NO_QUEUE, true,
				   msg_get_max_mem_slots },
	[VU_GET_SHMEM_CONFIG] = { "GET_SHMEM_CONFIG", 0, 0, VU_NO_QUEUE, true,
				  msg_get_shmem_config },
};

static void close_fds(int *fds, int nfds)
{
	for (int i = 0; i < nfds; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Check a message against its type, run it, answer it. -errno ends the connection. */
static int dispatch(struct vu_dev *dev, struct vu_msg *m)
{
	const struct vu_msg_type *t = m->h.request < VU_NMSGS ? &vu_msg_types[m->h.request] : NULL;
	struct vu_queue *q = NULL;
	bool answers = t && t->handle && t->answers;
	int err = 0;

	m->reply_size = 0;
	if (!t || !t->handle) {
		fuse_log(FUSE_LOG_DEBUG, "vhost-user: ignoring message %u\n", m->h.request);
		err = -ENOSYS;
		goto out_answer;
	}
	if (m->nfds > t->max_fds) {
		fuse_log(FUSE_LOG_DEBUG, "vhost-user: %s came with %d descriptors; closed %d\n",
			 t->name, m->nfds, m->nfds - t->max_fds);
		close_fds(m->fds + t->max_fds, m->nfds - t->max_fds);
		m->nfds = t->max_fds;
	}
	if (m->h.size < t->min_size) {
		fuse_log(FUSE_LOG_ERR, "vhost-user: %s with a %u-byte payload (needs %u): refused\n",
			 t->name, m->h.size, t->min_size);
		err = -EINVAL;
		goto out_answer;
	}
	if (t->queue != VU_NO_QUEUE) {
		uint32_t idx;

		memcpy(&idx, m->p, sizeof(idx));
		if (t->queue == VU_QUEUE_FILE)
			idx &= VU_VRING_IDX_MASK;
		if (idx >= VU_MAX_QUEUES) {
			fuse_log(FUSE_LOG_ERR, "vhost-user: %s for queue %u: this device has %u queues "
				 "(hiprio + %u request queues)\n", t->name, idx, VU_MAX_QUEUES,
				 VU_MAX_QUEUES - 1);
			err = -EINVAL;
			goto out_answer;
		}
		q = &dev->q[idx];
		pthread_mutex_lock(&q->lock);
	}
	err = t->handle(dev, m, q);
	if (q)
		pthread_mutex_unlock(&q->lock);

out_answer:
	close_fds(m->fds, m->nfds);
	if (answers) {
		if (!m->reply_size) {
			/* Refused: still answer, with the queue index and zeros. */
			memset(m->reply, 0, sizeof(m->reply));
			if (m->h.size >= 4)
				memcpy(m->reply, m->p, 4);
			m->reply_size = m->h.request == VU_GET_SHMEM_CONFIG ? 8 + 8 * VU_MAX_SHMEM_REGIONS
					: 8;
		}
		return send_reply(dev, &m->h, m->reply, m->reply_size);
	}
	if ((m->h.flags & VU_FLAG_NEED_REPLY) && (dev->proto & (1ULL << VU_PROTO_REPLY_ACK))) {
		uint64_t v = err ? 1 : 0;

		return send_reply(dev, &m->h, &v, sizeof(v));
	}
	return 0;
}

/* Read one message; 1, 0 at the end of the connection, or -errno. */
static ssize_t recv_msg(int sock, struct vu_msg *m)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
	struct iovec iov = { &m->h, sizeof(m->h) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t n;

	m->nfds = 0;
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
				if (m->nfds < VU_MAX_FDS)
					m->fds[m->nfds++] = fd;
				else
					close(fd);
			}
		}
	}
	if (n != sizeof(m->h) || m->h.size > VU_MAX_PAYLOAD)
		return -EPROTO;
	for (size_t got = 0; got < m->h.size;) {
		n = recv(sock, m->p + got, m->h.size - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPROTO;
		got += (size_t)n;
	}
	return 1;
}

static void *frontend_main(void *arg)
{
	struct vu_dev *dev = arg;
	uint8_t *payload = malloc(VU_MAX_PAYLOAD);

	/* Anyone may end the connection through the channel's copy of it. */
	atomic_store(&dev->breq->conn_fd, fcntl(dev->sock, F_DUPFD_CLOEXEC, 3));
	while (payload) {
		struct vu_msg m = { .p = payload };
		ssize_t n = recv_msg(dev->sock, &m);

		if (n <= 0) {
			close_fds(m.fds, m.nfds);
			if (n == -EPROTO)
				fuse_log(FUSE_LOG_ERR, "vhost-user: malformed message from the VMM "
					 "(header or payload size): closing the connection\n");
			else if (n < 0 && n != -ECONNRESET)
				fuse_log(FUSE_LOG_ERR, "vhost-user: front-end connection: %s\n",
					 strerror((int)-n));
			break;
		}
		if (dispatch(dev, &m) < 0)
			break;
	}
	free(payload);
	fuse_log(FUSE_LOG_INFO, "vhost-user: the VMM disconnected\n");
	/* The VMM is gone: nothing more will be answered or mapped. */
	{
		struct vu_chan *c = vu_breq_chan(dev->breq);

		atomic_store(&dev->breq->dead, true);
		if (c) {
			shutdown(c->fd, SHUT_RDWR);
			vu_chan_put(c);
		}
	}
	device_stop(dev, false);
	vu_log_flush(dev);
	fuse_session_exit(dev->se);
	{
		uint64_t many = 1ULL << 30;

		if (write(dev->end_efd, &many, sizeof(many)) < 0)
			(void)0;
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * The backend-request channel, shared with lib/dax_vhost.c.
 */

struct vu_chan *vu_breq_chan(struct vu_breq *b)
{
	struct vu_chan *c;

	pthread_mutex_lock(&b->chan_lock);
	c = b->chan;
	if (c)
		atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&b->chan_lock);
	return c;
}

void vu_chan_put(struct vu_chan *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
		close(c->fd);
		free(c);
	}
}

void vu_breq_disconnect(struct vu_breq *b, const char *why)
{
	int fd = atomic_load(&b->conn_fd);

	if (why)
		fuse_log(FUSE_LOG_ERR, "vhost-user: %s: closing the connection\n", why);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

void vu_breq_put(struct vu_breq *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
		int fd = atomic_load(&b->conn_fd);

		vu_chan_put(b->chan);
		if (fd >= 0)
			close(fd);
		pthread_mutex_destroy(&b->lock);
		pthread_mutex_destroy(&b->chan_lock);
		free(b);
	}
}

static int ack_timeout_ms(void)
{
	const char *s = getenv("FUSEDAX_VHOST_USER_ACK_TIMEOUT_MS");
	char *end;
	long v;

	if (!s)
		return VU_ACK_TIMEOUT_MS;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v <= 0 || v > 3600L * 1000) {
		fuse_log(FUSE_LOG_WARNING, "vhost-user: FUSEDAX_VHOST_USER_ACK_TIMEOUT_MS=%s is not "
			 "a number of milliseconds: using %d\n", s, VU_ACK_TIMEOUT_MS);
		return VU_ACK_TIMEOUT_MS;
	}
	return (int)v;
}

/* ------------------------------------------------------------------------
 * Session hooks.
 */

/* The session's device for socket path (or an inherited fd): 0 or -errno. */
static int vhost_user_new(struct fuse_session *se, const char *path, int fd)
{
	struct vu_dev *dev;
	struct timespec now;

	if (se->vu)
		return 0;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->breq = calloc(1, sizeof(*dev->breq));
	dev->path = path ? strdup(path) : NULL;
	dev->end_efd = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	if (!dev->breq || (path && !dev->path) || dev->end_efd < 0 ||
	    vu_mem_empty(&dev->mem) != 0) {
		if (dev->end_efd >= 0)
			close(dev->end_efd);
		free(dev->breq);
		free(dev->path);
		free(dev);
		fuse_log(FUSE_LOG_ERR, "vhost-user: out of memory\n");
		return -ENOMEM;
	}
	pthread_mutex_init(&dev->breq->lock, NULL);
	pthread_mutex_init(&dev->breq->chan_lock, NULL);
	atomic_init(&dev->breq->conn_fd, -1);
	atomic_init(&dev->breq->refs, 1);
	dev->breq->shmem_bit = 20;
	dev->breq->ack_timeout_ms = ack_timeout_ms();
	dev->se = se;
	dev->given_fd = fd;
	dev->lfd = -1;
	dev->sock = -1;
	pthread_mutex_init(&dev->wlock, NULL);
	pthread_cond_init(&dev->wcond, NULL);
	pthread_mutex_init(&dev->rl.lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &now);
	dev->rl.last = now.tv_sec;
	dev->rl.tokens = VU_LOG_BURST;
	dev->intr.ch.se = se;
	dev->intr.ch.fd = -1;
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		struct vu_queue *q = &dev->q[i];
		pthread_condattr_t ca;

		q->dev = dev;
		q->idx = i;
		q->inflight.next = q->inflight.prev = &q->inflight;
		pthread_mutex_init(&q->lock, NULL);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&q->drained, &ca);
		pthread_condattr_destroy(&ca);
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

	/* Guest memory is reached under a SIGBUS guard (lib/vhost_mem.c). */
	err = vu_guard_install();
	if (err)
		return err;
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
	} else {
		device_stop(dev, false);
	}
	/* Queue threads were told to stop; wait for the ones still in a request. */
	pthread_mutex_lock(&dev->wlock);
	while (atomic_load(&dev->live_workers) > 0)
		pthread_cond_wait(&dev->wcond, &dev->wlock);
	pthread_mutex_unlock(&dev->wlock);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		struct vu_queue *q = &dev->q[i];

		pthread_mutex_lock(&q->lock);
		efd_put(q->call);
		q->call = NULL;
		memset(&q->vq, 0, sizeof(q->vq));
		q->addr_set = false;
		vu_mem_put(q->ring_mem);
		q->ring_mem = NULL;
		pthread_mutex_unlock(&q->lock);
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
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		pthread_mutex_destroy(&dev->q[i].lock);
		pthread_cond_destroy(&dev->q[i].drained);
	}
	/* Requests answered later keep the tables they use (counted). */
	vu_mem_put(dev->mem);
	pthread_mutex_destroy(&dev->wlock);
	pthread_cond_destroy(&dev->wcond);
	pthread_mutex_destroy(&dev->rl.lock);
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
