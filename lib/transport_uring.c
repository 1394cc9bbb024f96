/*
 * FUSE-over-io_uring: after INIT, one io_uring per kernel queue (one per
 * possible CPU) carries requests and replies through buffers registered with
 * the kernel, while /dev/fuse keeps carrying INIT, FORGET, INTERRUPT and
 * notifications. Built only with liburing; -o io_uring says so otherwise.
 */
#include "fuse_i.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

/** Entries per queue unless -o uring_queue_depth=N says otherwise. */
#define URING_DEFAULT_DEPTH 8
#define URING_MAX_DEPTH 1024

#ifdef FUSEDAX_HAVE_LIBURING

#include <liburing.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

/* The kernel accepts no smaller payload buffer (FUSE_MIN_READ_BUFFER). */
#define URING_MIN_PAYLOAD 8192
/* Pages the kernel assumes when INIT did not set max_pages. */
#define URING_DEFAULT_MAX_PAGES 32
/* REGISTER before the kernel finished INIT answers EAGAIN: retries, 1 ms apart. */
#define URING_REGISTER_RETRIES 1000
/* user_data of the eventfd read that wakes a queue thread. */
#define URING_WAKE_TAG 1

enum uring_ent_state {
	ENT_IDLE,	/* not handed to the kernel (before start, or dead) */
	ENT_KERNEL,	/* REGISTER or COMMIT_AND_FETCH submitted: waits for a request */
	ENT_USER,	/* holds a request the session is processing */
	ENT_COMMIT,	/* reply written, commit queued for the queue thread */
	ENT_DEAD,	/* the kernel ended it (connection gone) */
};

struct uring_queue;

/*
 * One ring entry: a header buffer (struct fuse_uring_req_header) and a
 * payload buffer the kernel copies requests into and replies out of. One
 * mapping holds both: the header at its start, the payload one page in, so
 * the in_header and fixed argument can be copied in front of the payload to
 * hand the session one contiguous message without copying the data.
 */
struct uring_ent {
	/* The reply channel of the request it holds: ch.priv points here. */
	struct fuse_chan ch;
	struct uring_queue *q;
	enum uring_ent_state state;
	/* The last command submitted for it (REGISTER or COMMIT_AND_FETCH). */
	uint32_t cmd;
	int register_tries;
	char *area;
	struct fuse_uring_req_header *hdr;
	char *payload;
	struct iovec iov[2];
	uint64_t commit_id;
	/* Next on the queue's list of replies written by other threads. */
	struct uring_ent *next_commit;
};

struct uring_queue {
	struct uring_pool *pool;
	unsigned int qid;
	struct io_uring ring;
	bool ring_ok;
	pthread_t thread;
	bool thread_ok;
	struct uring_ent *ents;
	unsigned int live;	/* entries not dead */
	/* Replies from threads other than the queue's, guarded by lock. */
	pthread_mutex_t lock;
	struct uring_ent *commits;
	int wake_fd;
	uint64_t wake_val;
	atomic_ullong requests;
};

struct uring_pool {
	struct fuse_session *se;
	int fd;
	unsigned int nqueues;
	unsigned int depth;
	size_t payload_size;
	size_t area_size;
	struct uring_queue *queues;
	/* Threads wait for go: 1 after the INIT reply, -1 to quit unstarted. */
	pthread_mutex_t go_lock;
	pthread_cond_t go_cond;
	int go;
	atomic_bool stopping;
	atomic_ullong bytes_in, bytes_out;
};

/* The queue whose thread is running this code, if any. */
static __thread struct uring_queue *uring_self;

static size_t uring_page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

/*
 * The kernel makes one queue per possible CPU and uses the rings only when
 * every queue has an entry, so the count must be exactly that.
 */
static int uring_possible_cpus(void)
{
	char text[256];
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	int highest = -1;
	char *p;

	if (!f)
		return -errno;
	if (!fgets(text, sizeof(text), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	/* "0-3" or "0,2-5": the last number is the highest CPU. */
	for (p = text; *p;) {
		char *end;
		long v;

		if (*p < '0' || *p > '9') {
			p++; /* '-' is a range here, not a sign */
			continue;
		}
		v = strtol(p, &end, 10);
		if (v > highest && v < 65536)
			highest = (int)v;
		p = end;
	}
	return highest >= 0 ? highest + 1 : -EIO;
}

/* ------------------------------------------------------------------------
 * Submissions (queue thread only: the kernel delivers an entry's next
 * request to the task that submitted its command, so that task must live
 * as long as the ring).
 */

static struct io_uring_sqe *uring_sqe(struct uring_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	if (sqe)
		memset(sqe, 0, 2 * sizeof(*sqe)); /* SQE128: the command area too */
	return sqe;
}

static int uring_prep_cmd(struct uring_ent *ent, uint32_t cmd_op)
{
	struct uring_queue *q = ent->q;
	struct io_uring_sqe *sqe = uring_sqe(q);
	struct fuse_uring_cmd_req *req;

	if (!sqe)
		return -EBUSY;
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->pool->fd;
	sqe->cmd_op = cmd_op;
	sqe->addr = (uintptr_t)ent->iov;
	sqe->len = 2;
	sqe->user_data = (uintptr_t)ent;
	req = (struct fuse_uring_cmd_req *)sqe->cmd;
	req->qid = (uint16_t)q->qid;
	req->commit_id = cmd_op == FUSE_IO_URING_CMD_COMMIT_AND_FETCH ? ent->commit_id : 0;
	ent->cmd = cmd_op;
	ent->state = ENT_KERNEL;
	return 0;
}

static int uring_arm_wake(struct uring_queue *q)
{
	struct io_uring_sqe *sqe = uring_sqe(q);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, q->wake_fd, &q->wake_val, sizeof(q->wake_val), 0);
	sqe->user_data = URING_WAKE_TAG;
	return 0;
}

static void uring_commit(struct uring_ent *ent)
{
	int err = uring_prep_cmd(ent, FUSE_IO_URING_CMD_COMMIT_AND_FETCH);

	if (err) {
		fuse_log(FUSE_LOG_ERR, "fuse: io_uring queue %u: no room to commit unique %" PRIu64
			 ": %s\n", ent->q->qid, ent->commit_id, strerror(-err));
		ent->state = ENT_DEAD;
		ent->q->live--;
	}
}

/* Make the queue thread look at its commit list and the stop flag. */
static void uring_wake(struct uring_queue *q)
{
	uint64_t one = 1;

	if (write(q->wake_fd, &one, sizeof(one)) < 0)
		fuse_log(FUSE_LOG_ERR, "fuse: io_uring queue %u: waking its thread: %s\n", q->qid,
			 strerror(errno));
}

/* ------------------------------------------------------------------------
 * The transport: /dev/fuse for everything but the replies to ring requests.
 */

static ssize_t uring_receive(struct fuse_chan *ch, void *buf, size_t size)
{
	return transport_dev_ops.receive(ch, buf, size);
}

/*
 * Copy a reply (out header, then payload) into the entry's buffers. The
 * commit itself is submitted by the queue thread: at once when it is the
 * caller, else through the queue's commit list and its eventfd.
 */
static int uring_send(struct fuse_chan *ch, const struct iovec *iov, int count)
{
	struct uring_ent *ent = ch->priv;
	struct uring_queue *q;
	struct fuse_out_header out;
	size_t got = 0, used = 0;

	if (!ent)
		return transport_dev_ops.send(ch, iov, count);
	q = ent->q;
	if (ent->state != ENT_USER)
		return -EINVAL; /* a second reply to one request */
	for (int i = 0; i < count; i++) {
		const char *src = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		if (got < sizeof(out)) {
			size_t n = len < sizeof(out) - got ? len : sizeof(out) - got;

			memcpy((char *)&out + got, src, n);
			got += n;
			src += n;
			len -= n;
		}
		if (len > q->pool->payload_size - used)
			return -EMSGSIZE;
		memmove(ent->payload + used, src, len);
		used += len;
	}
	if (got < sizeof(out))
		return -EINVAL;
	memset(ent->hdr->in_out, 0, sizeof(ent->hdr->in_out));
	memcpy(ent->hdr->in_out, &out, sizeof(out));
	ent->hdr->ring_ent_in_out.payload_sz = (uint32_t)used;
	atomic_fetch_add(&q->pool->bytes_out, used);

	if (uring_self == q) {
		uring_commit(ent);
		return 0;
	}
	pthread_mutex_lock(&q->lock);
	ent->state = ENT_COMMIT;
	ent->next_commit = q->commits;
	q->commits = ent;
	pthread_mutex_unlock(&q->lock);
	uring_wake(q);
	return 0;
}

static int uring_clone(struct fuse_chan *master, struct fuse_chan **out)
{
	return transport_dev_ops.clone(master, out);
}

static void uring_release(struct fuse_chan *ch)
{
	transport_dev_ops.release(ch);
}

/* The rings run over the /dev/fuse connection, which holds backing files. */
static int uring_backing_open(struct fuse_chan *master, int fd)
{
	return transport_dev_ops.backing_open(master, fd);
}

static int uring_backing_close(struct fuse_chan *master, int backing_id)
{
	return transport_dev_ops.backing_close(master, backing_id);
}

static const struct transport_ops transport_uring_ops = {
	.name = "io_uring",
	.receive = uring_receive,
	.send = uring_send,
	.clone = uring_clone,
	.release = uring_release,
	.backing_open = uring_backing_open,
	.backing_close = uring_backing_close,
};

/* ------------------------------------------------------------------------
 * The queue threads.
 */

/*
 * The kernel put the in_header in in_out, the opcode's fixed argument in
 * op_in and the rest (names, data) in the payload; in_header.len counts all
 * three, which gives the fixed argument's size. Copy header and argument in
 * front of the payload and hand the whole message to the session.
 */
static void uring_deliver(struct uring_ent *ent)
{
	struct uring_queue *q = ent->q;
	struct uring_pool *pool = q->pool;
	struct fuse_in_header in;
	uint32_t payload_sz = ent->hdr->ring_ent_in_out.payload_sz;
	const struct wire_opcode *op;
	size_t fixed;
	char *msg;

	memcpy(&in, ent->hdr->in_out, sizeof(in));
	ent->commit_id = ent->hdr->ring_ent_in_out.commit_id;
	ent->state = ENT_USER;
	if (payload_sz > pool->payload_size || in.len < sizeof(in) + (size_t)payload_sz ||
	    in.len - sizeof(in) - payload_sz > FUSE_URING_OP_IN_OUT_SZ) {
		struct fuse_out_header out = { sizeof(out), -EIO, in.unique };
		struct iovec iov = { &out, sizeof(out) };

		fuse_log(FUSE_LOG_ERR,
			 "fuse: io_uring queue %u: request unique %" PRIu64 " of %u bytes with a "
			 "%u-byte payload does not add up: EIO\n",
			 q->qid, in.unique, in.len, payload_sz);
		uring_send(&ent->ch, &iov, 1);
		return;
	}
	fixed = in.len - sizeof(in) - payload_sz;
	msg = ent->payload - fixed - sizeof(in);
	memcpy(msg, &in, sizeof(in));
	memcpy(msg + sizeof(in), ent->hdr->op_in, fixed);
	atomic_fetch_add(&q->requests, 1);
	atomic_fetch_add(&pool->bytes_in, payload_sz);

	session_process(pool->se, &ent->ch, msg, in.len);

	/*
	 * Commit and fetch are one step: an entry holding a message that gets
	 * no answer (NOTIFY_REPLY) is re-armed with an empty commit.
	 */
	op = wire_opcode_info(in.opcode);
	if (op && (op->flags & OPF_NO_REPLY)) {
		struct fuse_out_header out = { sizeof(out), 0, in.unique };
		struct iovec iov = { &out, sizeof(out) };

		uring_send(&ent->ch, &iov, 1);
	}
}

static bool uring_teardown_errno(int err)
{
	return err == -ENOTCONN || err == -ECONNABORTED || err == -ECANCELED || err == -ENODEV;
}

/* A command failed: the kernel ended the entry, or refused it. */
static void uring_ent_failed(struct uring_ent *ent, int err)
{
	struct uring_queue *q = ent->q;
	bool was_register = ent->cmd == FUSE_IO_URING_CMD_REGISTER;

	if (err == -EAGAIN && was_register && ent->register_tries++ < URING_REGISTER_RETRIES &&
	    !atomic_load(&q->pool->stopping)) {
		/* INIT not yet processed by the kernel: try again shortly. */
		usleep(1000);
		if (uring_prep_cmd(ent, FUSE_IO_URING_CMD_REGISTER) == 0)
			return;
	}
	if (!uring_teardown_errno(err) && !atomic_load(&q->pool->stopping))
		fuse_log(FUSE_LOG_ERR, "fuse: io_uring queue %u: %s failed: %s\n", q->qid,
			 was_register ? "REGISTER" : "COMMIT_AND_FETCH", strerror(-err));
	ent->state = ENT_DEAD;
	q->live--;
}

static void uring_take_commits(struct uring_queue *q)
{
	struct uring_ent *list;

	pthread_mutex_lock(&q->lock);
	list = q->commits;
	q->commits = NULL;
	pthread_mutex_unlock(&q->lock);
	while (list) {
		struct uring_ent *ent = list;

		list = ent->next_commit;
		uring_commit(ent);
	}
}

/* Returns false when the thread should end. */
static bool uring_handle_cqe(struct uring_queue *q, const struct io_uring_cqe *cqe)
{
	if (cqe->user_data == URING_WAKE_TAG) {
		if (atomic_load(&q->pool->stopping))
			return false;
		uring_take_commits(q);
		if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN) {
			fuse_log(FUSE_LOG_ERR, "fuse: io_uring queue %u: eventfd: %s\n", q->qid,
				 strerror(-cqe->res));
			return false;
		}
		return uring_arm_wake(q) == 0;
	}
	if (cqe->res < 0)
		uring_ent_failed((struct uring_ent *)(uintptr_t)cqe->user_data, cqe->res);
	else
		uring_deliver((struct uring_ent *)(uintptr_t)cqe->user_data);
	return true;
}

static void uring_pin(unsigned int cpu)
{
	cpu_set_t set;

	/* Locality only: the kernel picks the queue by the caller's CPU. */
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void uring_queue_run(struct uring_queue *q)
{
	for (unsigned int i = 0; i < q->pool->depth; i++) {
		if (uring_prep_cmd(&q->ents[i], FUSE_IO_URING_CMD_REGISTER) == 0)
			q->live++;
	}
	if (uring_arm_wake(q) != 0)
		return;
	while (q->live > 0) {
		struct io_uring_cqe *cqe;
		unsigned int head, seen = 0;
		bool go_on = true;
		int res = io_uring_submit_and_wait(&q->ring, 1);

		if (res < 0 && res != -EINTR && res != -EAGAIN && res != -EBUSY) {
			fuse_log(FUSE_LOG_ERR, "fuse: io_uring queue %u: waiting: %s\n", q->qid,
				 strerror(-res));
			return;
		}
		io_uring_for_each_cqe(&q->ring, head, cqe) {
			seen++;
			if (!uring_handle_cqe(q, cqe)) {
				go_on = false;
				break;
			}
		}
		io_uring_cq_advance(&q->ring, seen);
		if (!go_on)
			return;
	}
}

static void *uring_queue_main(void *arg)
{
	struct uring_queue *q = arg;
	struct uring_pool *pool = q->pool;
	int go;

	uring_self = q;
	uring_pin(q->qid);
	pthread_mutex_lock(&pool->go_lock);
	while (!pool->go)
		pthread_cond_wait(&pool->go_cond, &pool->go_lock);
	go = pool->go;
	pthread_mutex_unlock(&pool->go_lock);
	if (go > 0)
		uring_queue_run(q);
	return NULL;
}

/* ------------------------------------------------------------------------
 * Building and tearing down the pool.
 */

static int uring_queue_init(struct uring_pool *pool, struct uring_queue *q, unsigned int qid)
{
	struct io_uring_params params;
	unsigned int entries = pool->depth + 2;
	int err;

	q->pool = pool;
	q->qid = qid;
	q->wake_fd = -1;
	pthread_mutex_init(&q->lock, NULL);
	q->ents = calloc(pool->depth, sizeof(*q->ents));
	if (!q->ents)
		return -ENOMEM;
	for (unsigned int i = 0; i < pool->depth; i++) {
		struct uring_ent *ent = &q->ents[i];
		void *area = mmap(NULL, pool->area_size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (area == MAP_FAILED)
			return -errno;
		ent->q = q;
		ent->area = area;
		ent->hdr = area;
		ent->payload = ent->area + uring_page_size();
		ent->iov[0].iov_base = ent->hdr;
		ent->iov[0].iov_len = sizeof(*ent->hdr);
		ent->iov[1].iov_base = ent->payload;
		ent->iov[1].iov_len = pool->payload_size;
		ent->ch.se = pool->se;
		ent->ch.fd = pool->fd;
		ent->ch.priv = ent;
	}
	q->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (q->wake_fd < 0)
		return -errno;
	/* No SINGLE_ISSUER/DEFER_TASKRUN: the ring stays usable by any thread. */
	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_SQE128;
	err = io_uring_queue_init_params(entries, &q->ring, &params);
	if (err < 0)
		return err;
	q->ring_ok = true;
	return 0;
}

static void uring_queue_free(struct uring_pool *pool, struct uring_queue *q)
{
	if (q->ring_ok)
		io_uring_queue_exit(&q->ring);
	if (q->wake_fd >= 0)
		close(q->wake_fd);
	if (q->ents) {
		for (unsigned int i = 0; i < pool->depth; i++)
			if (q->ents[i].area)
				munmap(q->ents[i].area, pool->area_size);
		free(q->ents);
	}
	pthread_mutex_destroy(&q->lock);
}

static void uring_pool_free(struct uring_pool *pool)
{
	for (unsigned int i = 0; i < pool->nqueues; i++)
		uring_queue_free(pool, &pool->queues[i]);
	free(pool->queues);
	pthread_mutex_destroy(&pool->go_lock);
	pthread_cond_destroy(&pool->go_cond);
	free(pool);
}

static void uring_release_threads(struct uring_pool *pool, int go)
{
	pthread_mutex_lock(&pool->go_lock);
	pool->go = go;
	pthread_cond_broadcast(&pool->go_cond);
	pthread_mutex_unlock(&pool->go_lock);
}

static void uring_join(struct uring_pool *pool)
{
	for (unsigned int i = 0; i < pool->nqueues; i++) {
		struct uring_queue *q = &pool->queues[i];

		if (!q->thread_ok)
			continue;
		pthread_join(q->thread, NULL);
		q->thread_ok = false;
	}
}

static int uring_start_threads(struct uring_pool *pool)
{
	sigset_t all, old;
	int err = 0;

	/* Queue threads leave signals to the thread that installed the handlers. */
	signals_fill_blockable(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned int i = 0; i < pool->nqueues && !err; i++) {
		struct uring_queue *q = &pool->queues[i];

		err = -pthread_create(&q->thread, NULL, uring_queue_main, q);
		q->thread_ok = !err;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

/* Size of a payload buffer: what the kernel computes as its minimum. */
static size_t uring_payload_size(const struct fuse_session *se, uint64_t kflags)
{
	size_t page = uring_page_size();
	size_t max_write = se->conn.max_write;
	size_t pages = (kflags & FUSE_MAX_PAGES) ? (max_write + page - 1) / page
						 : URING_DEFAULT_MAX_PAGES;
	size_t size = pages * page;

	if (size < max_write)
		size = max_write;
	if (size < URING_MIN_PAYLOAD)
		size = URING_MIN_PAYLOAD;
	return (size + page - 1) / page * page;
}

static int uring_pool_new(struct fuse_session *se, uint64_t kflags, struct uring_pool **out)
{
	struct uring_pool *pool;
	int ncpus = se->uring_cpus > 0 ? se->uring_cpus : uring_possible_cpus();
	int err;

	if (ncpus < 0)
		return ncpus;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pthread_mutex_init(&pool->go_lock, NULL);
	pthread_cond_init(&pool->go_cond, NULL);
	pool->se = se;
	pool->fd = se->master.fd;
	pool->depth = se->uring_depth ? se->uring_depth : URING_DEFAULT_DEPTH;
	pool->payload_size = uring_payload_size(se, kflags);
	pool->area_size = uring_page_size() + pool->payload_size;
	pool->queues = calloc((size_t)ncpus, sizeof(*pool->queues));
	if (!pool->queues) {
		err = -ENOMEM;
		goto out_free;
	}
	for (int i = 0; i < ncpus; i++) {
		pool->nqueues = (unsigned int)i + 1;
		err = uring_queue_init(pool, &pool->queues[i], (unsigned int)i);
		if (err)
			goto out_free;
	}
	err = uring_start_threads(pool);
	if (err)
		goto out_threads;
	*out = pool;
	return 0;

out_threads:
	uring_release_threads(pool, -1);
	uring_join(pool);
out_free:
	uring_pool_free(pool);
	return err;
}

/* ------------------------------------------------------------------------
 * The transport class's hooks (see the end of this file).
 */

static const struct transport_ops *uring_requested(struct fuse_session *se)
{
	se->uring_cpus = uring_possible_cpus();
	return &transport_uring_ops;
}

static uint64_t uring_negotiate(struct fuse_session *se, uint64_t kflags)
{
	int err;

	if (se->tp != &transport_uring_ops || se->uring)
		return se->uring ? FUSE_OVER_IO_URING : 0;
	if (!(kflags & FUSE_OVER_IO_URING)) {
		fuse_log(FUSE_LOG_INFO,
			 "fuse: io_uring: the kernel does not offer FUSE-over-io_uring "
			 "(see /sys/module/fuse/parameters/enable_uring): serving over /dev/fuse\n");
		return 0;
	}
	err = uring_pool_new(se, kflags, &se->uring);
	if (err) {
		fuse_log(FUSE_LOG_ERR, "fuse: io_uring: cannot set up the rings: %s: "
			 "serving over /dev/fuse\n", strerror(-err));
		se->uring = NULL;
		return 0;
	}
	return FUSE_OVER_IO_URING;
}

static void uring_start(struct fuse_session *se)
{
	struct uring_pool *pool = se->uring;

	if (!pool || pool->go)
		return;
	fuse_log(FUSE_LOG_INFO, "fuse: io_uring: %u queues, depth %u, %zu-byte payload buffers\n",
		 pool->nqueues, pool->depth, pool->payload_size);
	uring_release_threads(pool, 1);
}

static void uring_stop(struct fuse_session *se)
{
	struct uring_pool *pool = se->uring;
	unsigned long long total = 0;
	char per_queue[256] = "";
	size_t used = 0;

	if (!pool)
		return;
	atomic_store(&pool->stopping, true);
	if (!pool->go)
		uring_release_threads(pool, -1);
	for (unsigned int i = 0; i < pool->nqueues; i++)
		uring_wake(&pool->queues[i]);
	uring_join(pool);
	for (unsigned int i = 0; i < pool->nqueues; i++) {
		unsigned long long n = atomic_load(&pool->queues[i].requests);
		int w;

		total += n;
		w = snprintf(per_queue + used, sizeof(per_queue) - used, "%sq%u %llu",
			     i ? ", " : "", i, n);
		if (w > 0 && (size_t)w < sizeof(per_queue) - used)
			used += (size_t)w;
	}
	if (pool->go > 0)
		fuse_log(FUSE_LOG_INFO,
			 "fuse: io_uring: stopped; %llu requests over the rings (%s), "
			 "%llu bytes in, %llu bytes out\n",
			 total, per_queue, (unsigned long long)atomic_load(&pool->bytes_in),
			 (unsigned long long)atomic_load(&pool->bytes_out));
	uring_pool_free(pool);
	se->uring = NULL;
}

#else /* !FUSEDAX_HAVE_LIBURING */

static const struct transport_ops *uring_requested(struct fuse_session *se)
{
	fuse_log(FUSE_LOG_ERR, "fuse: -o io_uring: fusedax was not built with io_uring "
		 "(liburing missing at build time): serving over /dev/fuse\n");
	return &transport_dev_ops;
}

static uint64_t uring_negotiate(struct fuse_session *se, uint64_t kflags)
{
	return 0;
}

static void uring_start(struct fuse_session *se)
{
}

static void uring_stop(struct fuse_session *se)
{
}

#endif /* FUSEDAX_HAVE_LIBURING */

/* ------------------------------------------------------------------------
 * Registration: -o io_uring selects this transport; it mounts like
 * /dev/fuse (INIT arrives there) and builds its rings at INIT.
 */

struct uring_opts {
	int io_uring;
	unsigned int depth;
};

static const struct fuse_opt uring_opt_spec[] = {
	{ "io_uring", offsetof(struct uring_opts, io_uring), 1 },
	{ "uring_queue_depth=%u", offsetof(struct uring_opts, depth), 0 },
	FUSE_OPT_END,
};

static int uring_parse(struct fuse_session *se, struct fuse_args *args)
{
	struct uring_opts o = { 0 };

	if (fuse_opt_parse(args, &o, uring_opt_spec, NULL) == -1)
		return -EINVAL;
	if (o.depth > URING_MAX_DEPTH) {
		fuse_log(FUSE_LOG_ERR, "fuse: uring_queue_depth=%u: at most %d\n", o.depth,
			 URING_MAX_DEPTH);
		return -EINVAL;
	}
	se->uring_depth = o.depth;
	if (!o.io_uring)
		return 0;
	se->tp = uring_requested(se);
	return 1;
}

const struct transport_class transport_uring_class = {
	.name = "io_uring",
	.help = "    -o io_uring            FUSE-over-io_uring when the kernel offers it\n"
		"    -o uring_queue_depth=N ring entries per queue (default 8)\n",
	.local_dax_window = true,
	.parse = uring_parse,
	.mount = transport_dev_mount,
	.unmount = transport_dev_unmount,
	.init_negotiate = uring_negotiate,
	.init_done = uring_start,
	.stop = uring_stop,
};
