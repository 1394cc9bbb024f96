/*
 * The multi-threaded request loop. Workers receive and process requests;
 * a worker that takes the last idle slot starts another (up to max_threads),
 * and a worker about to wait while max_idle_threads peers already wait
 * exits instead. With clone_fd each worker reads its own cloned channel.
 */
#include "compat.h"
#include "fuse_i.h"

#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOOP_DEFAULT_MAX_THREADS 10
#define LOOP_DEFAULT_MAX_IDLE 10

struct fuse_loop_config {
	int clone_fd;
	unsigned int max_idle_threads;
	unsigned int max_threads;
};

struct mt_worker;

struct mt_loop {
	struct fuse_session *se;
	struct fuse_loop_config cfg;
	pthread_mutex_t lock;
	struct mt_worker *workers;
	unsigned int nworkers;
	unsigned int nidle;
	/*
	 * Workers that left the pool but may not have ended yet. A new worker
	 * starts only after they are joined, so the threads that exist never
	 * outnumber max_threads.
	 */
	struct mt_worker *departed;
	sem_t finished;
};

struct mt_worker {
	struct mt_loop *mt;
	pthread_t thread;
	struct fuse_chan *ch;
	void *buf;
	struct mt_worker *next, *prev;
};

struct fuse_loop_config *fuse_loop_cfg_create(void)
{
	struct fuse_loop_config *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->max_idle_threads = LOOP_DEFAULT_MAX_IDLE;
	c->max_threads = LOOP_DEFAULT_MAX_THREADS;
	return c;
}

void fuse_loop_cfg_destroy(struct fuse_loop_config *config)
{
	free(config);
}

void fuse_loop_cfg_set_idle_threads(struct fuse_loop_config *config, unsigned int value)
{
	config->max_idle_threads = value;
}

void fuse_loop_cfg_set_max_threads(struct fuse_loop_config *config, unsigned int value)
{
	config->max_threads = value;
}

void fuse_loop_cfg_set_clone_fd(struct fuse_loop_config *config, unsigned int value)
{
	config->clone_fd = !!value;
}

void fuse_loop_cfg_convert(struct fuse_loop_config *config,
			   struct fuse_loop_config_v1 *v1_conf)
{
	config->clone_fd = v1_conf->clone_fd;
	config->max_idle_threads = v1_conf->max_idle_threads;
}

static void mt_unlink(struct mt_loop *mt, struct mt_worker *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		mt->workers = w->next;
	if (w->next)
		w->next->prev = w->prev;
	mt->nworkers--;
}

/* Give back a worker's channel and buffer (the thread no longer uses them). */
static void mt_worker_release(struct mt_worker *w)
{
	struct fuse_session *se = w->mt->se;

	/* Requests read from a cloned channel may still be answered later. */
	if (w->ch && w->ch != &se->master)
		chan_put(se, w->ch);
	w->ch = NULL;
	free(w->buf);
	w->buf = NULL;
}

static void mt_worker_free(struct mt_worker *w)
{
	mt_worker_release(w);
	free(w);
}

/*
 * Join the workers that left the pool and free their slots. Called with
 * mt->lock held, which is safe: a departed worker never takes it again.
 */
static void mt_reap_departed(struct mt_loop *mt)
{
	while (mt->departed) {
		struct mt_worker *w = mt->departed;

		mt->departed = w->next;
		pthread_join(w->thread, NULL);
		mt_worker_free(w);
	}
}

static int mt_start_worker(struct mt_loop *mt);

/* Receive with cancellation allowed only while blocked in the transport. */
static ssize_t mt_receive(struct mt_worker *w)
{
	struct fuse_session *se = w->mt->se;
	ssize_t res;

	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	res = se->tp->receive(w->ch, w->buf, se->bufsize);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	return res;
}

/*
 * Called before each receive: count this worker idle, or, when
 * max_idle_threads peers already wait, take it out of the pool instead. The
 * test and the count share one critical section, so idle workers never
 * outnumber the limit (the last worker always stays). A leaving worker
 * gives its channel back at once and waits on the departed list to be
 * joined; after unlocking it must touch nothing of the loop.
 */
static bool mt_enter_idle(struct mt_loop *mt, struct mt_worker *w)
{
	bool leave = false;

	pthread_mutex_lock(&mt->lock);
	if (mt->nidle >= mt->cfg.max_idle_threads && mt->nworkers > 1 &&
	    !fuse_session_exited(mt->se)) {
		mt_unlink(mt, w);
		mt_worker_release(w);
		w->prev = NULL;
		w->next = mt->departed;
		mt->departed = w;
		leave = true;
	} else {
		mt->nidle++;
	}
	pthread_mutex_unlock(&mt->lock);
	return leave;
}

static void *mt_worker_main(void *arg)
{
	struct mt_worker *w = arg;
	struct mt_loop *mt = w->mt;
	struct fuse_session *se = mt->se;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	while (!fuse_session_exited(se)) {
		ssize_t res;

		if (mt_enter_idle(mt, w))
			return NULL;

		res = mt_receive(w);

		pthread_mutex_lock(&mt->lock);
		mt->nidle--;
		if (res > 0 && mt->nidle == 0) {
			/* Nobody left to take the next request: add a worker. */
			mt_reap_departed(mt);
			if (mt->nworkers < mt->cfg.max_threads)
				mt_start_worker(mt);
		}
		pthread_mutex_unlock(&mt->lock);

		if (fuse_session_exited(se))
			break;
		if (res == -EINTR || res == -EAGAIN || res == -ENOENT)
			continue;
		if (res <= 0) {
			session_fail(se, (int)res);
			break;
		}
		session_process(se, w->ch, w->buf, (size_t)res);
	}
	fuse_session_exit(se);
	sem_post(&mt->finished);
	return NULL;
}

/* Called with mt->lock held. */
static int mt_start_worker(struct mt_loop *mt)
{
	struct fuse_session *se = mt->se;
	struct mt_worker *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int err;

	if (!w)
		return -ENOMEM;
	w->mt = mt;
	w->ch = &se->master;
	if (mt->cfg.clone_fd && se->tp->clone) {
		struct fuse_chan *ch;
		int cerr = se->tp->clone(&se->master, &ch);

		if (cerr == 0) {
			atomic_store(&ch->refs, 1);
			w->ch = ch;
		}
		else
			fuse_log(FUSE_LOG_DEBUG, "fuse: clone_fd unavailable (%s); sharing the fd\n",
				 strerror(-cerr));
	}
	w->buf = loop_alloc_buffer(se);
	if (!w->buf) {
		err = -ENOMEM;
		goto out_free;
	}
	/*
	 * Workers leave the signals that end the loop to the thread that
	 * installed their handlers, as libfuse's do. Others stay open: the
	 * high-level -o intr interrupts a worker's callback with one.
	 */
	sigemptyset(&all);
	sigaddset(&all, SIGTERM);
	sigaddset(&all, SIGINT);
	sigaddset(&all, SIGHUP);
	sigaddset(&all, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = -pthread_create(&w->thread, NULL, mt_worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		fuse_log(FUSE_LOG_ERR, "fuse: cannot start a worker thread: %s\n",
			 strerror(-err));
		goto out_free;
	}
	w->next = mt->workers;
	if (mt->workers)
		mt->workers->prev = w;
	mt->workers = w;
	mt->nworkers++;
	return 0;

out_free:
	free(w->buf);
	if (w->ch != &se->master)
		chan_put(se, w->ch);
	free(w);
	return err;
}

/* Wait until the session exits; signals interrupt sem_wait in this thread. */
static void mt_wait(struct mt_loop *mt)
{
	while (!fuse_session_exited(mt->se)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		sem_timedwait(&mt->finished, &ts);
	}
}

static void mt_stop_workers(struct mt_loop *mt)
{
	struct mt_worker *w;

	pthread_mutex_lock(&mt->lock);
	for (w = mt->workers; w; w = w->next)
		pthread_cancel(w->thread);
	pthread_mutex_unlock(&mt->lock);

	for (;;) {
		pthread_mutex_lock(&mt->lock);
		w = mt->workers;
		if (w)
			mt_unlink(mt, w);
		pthread_mutex_unlock(&mt->lock);
		if (!w)
			break;
		pthread_join(w->thread, NULL);
		mt_worker_free(w);
	}
	pthread_mutex_lock(&mt->lock);
	mt_reap_departed(mt);
	pthread_mutex_unlock(&mt->lock);
}

int fuse_session_loop_mt_312(struct fuse_session *se, struct fuse_loop_config *config)
{
	struct mt_loop mt;
	int err;

	memset(&mt, 0, sizeof(mt));
	mt.se = se;
	mt.cfg.max_idle_threads = LOOP_DEFAULT_MAX_IDLE;
	mt.cfg.max_threads = LOOP_DEFAULT_MAX_THREADS;
	if (config)
		mt.cfg = *config;
	if (mt.cfg.max_threads == 0)
		mt.cfg.max_threads = 1;
	if (se->master.fd < 0) {
		fuse_log(FUSE_LOG_ERR, "fuse: session loop started before mount\n");
		return -EBADF;
	}
	pthread_mutex_init(&mt.lock, NULL);
	sem_init(&mt.finished, 0, 0);

	pthread_mutex_lock(&mt.lock);
	err = mt_start_worker(&mt);
	pthread_mutex_unlock(&mt.lock);
	if (!err)
		mt_wait(&mt);
	mt_stop_workers(&mt);

	sem_destroy(&mt.finished);
	pthread_mutex_destroy(&mt.lock);
	return err ? err : se->error;
}

/* API 3.2 to 3.11: the two-member config of those headers. */
int fuse_session_loop_mt_32(struct fuse_session *se, struct fuse_loop_config_v1 *config)
{
	struct fuse_loop_config c = {
		.clone_fd = config ? config->clone_fd : 0,
		.max_idle_threads = config ? config->max_idle_threads : LOOP_DEFAULT_MAX_IDLE,
		.max_threads = LOOP_DEFAULT_MAX_THREADS,
	};

	return fuse_session_loop_mt_312(se, &c);
}

/* API 3.0 and 3.1: a clone_fd flag. */
int fuse_session_loop_mt_31(struct fuse_session *se, int clone_fd)
{
	struct fuse_loop_config c = {
		.clone_fd = clone_fd,
		.max_idle_threads = LOOP_DEFAULT_MAX_IDLE,
		.max_threads = LOOP_DEFAULT_MAX_THREADS,
	};

	return fuse_session_loop_mt_312(se, &c);
}
