/*
 * passthrough_dax: coherence with the host. Other host processes append
 * to, truncate and rewrite files the client has mapped; an inotify watch on
 * every mapped file tells a thread of ours, which makes the window follow
 * the file's new size at once (doc/dax.md, "Coherence with the host").
 */
#include "passthrough_dax.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

/*
 * What a watch reports: IN_MODIFY comes with every write, truncate and
 * fallocate of the file, by anyone (us included); IN_IGNORED when the
 * watch went away (removed by us, or the file is gone).
 */
#define PD_WATCH_EVENTS IN_MODIFY

/* One watch: which inode an inotify watch descriptor stands for. */
struct watch_node {
	int wd;
	fuse_ino_t nodeid;
};

/*
 * The watcher of one file system: made on the first mapping, kept for the
 * life of the process (so no thread can find it freed); its thread and
 * inotify instance run from then until the session ends, and start again
 * on the first mapping of a new session.
 */
struct pd_watch {
	pthread_mutex_t lock;	/* everything below, and pd_inode.watch_* */
	bool running;
	bool failed;		/* said once that it cannot run */
	int ifd;		/* the running instance's inotify descriptor */
	int stop_fd;		/* an eventfd: its thread's signal to end */
	pthread_t thread;
	uint64_t gen;		/* pd_inode.watch_gen of this instance's watches */
	void *by_wd;		/* tsearch tree of watch_node */
};

/* What one thread works with: its own descriptors, whatever restarts. */
struct watch_run {
	struct pd_fs *fs;
	struct pd_watch *w;
	int ifd, stop_fd;
};

static int cmp_wd(const void *a, const void *b)
{
	const struct watch_node *x = a, *y = b;

	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

/*
 * The host changed the file behind nodeid: follow its size, as a reply
 * carrying that size would (extent_report_size()). So a shrink is clipped
 * now rather than when the client next asks, and a growth is mapped
 * already when it does.
 */
static void watch_follow(struct pd_fs *fs, fuse_ino_t nodeid)
{
	struct pd_inode *in;
	struct stat st;
	int err;

	in = inode_get_fd(fs, nodeid, &err);
	if (!in)
		return;		/* forgotten meanwhile: its mappings went with it */
	pthread_rwlock_rdlock(&in->extent_lock);
	if (inode_stat(in, &st) == 0)
		extent_report_size_locked(fs, in, (uint64_t)st.st_size);
	pthread_rwlock_unlock(&in->extent_lock);
	inode_put_fd(fs, in);
}

struct node_list {
	fuse_ino_t *ids;
	size_t count, cap;
};

static void collect_nodeid(const void *nodep, VISIT which, void *closure)
{
	const struct watch_node *n = *(const struct watch_node *const *)nodep;
	struct node_list *l = closure;

	if ((which == postorder || which == leaf) && l->count < l->cap)
		l->ids[l->count++] = n->nodeid;
}

/* The kernel dropped events (IN_Q_OVERFLOW): follow every watched inode. */
static void watch_follow_all(struct watch_run *r)
{
	struct node_list l = { .cap = 4096 };

	l.ids = calloc(l.cap, sizeof(*l.ids));
	if (!l.ids)
		return;
	pthread_mutex_lock(&r->w->lock);
	twalk_r(r->w->by_wd, collect_nodeid, &l);
	pthread_mutex_unlock(&r->w->lock);
	for (size_t i = 0; i < l.count; i++)
		watch_follow(r->fs, l.ids[i]);
	free(l.ids);
}

/* One batch of events from the inotify instance. */
static void watch_handle(struct watch_run *r, const char *buf, ssize_t len)
{
	const struct inotify_event *ev;

	for (const char *p = buf; p < buf + len; p += sizeof(*ev) + ev->len) {
		struct watch_node key, **found;
		fuse_ino_t nodeid = 0;

		ev = (const struct inotify_event *)p;
		if (ev->mask & IN_Q_OVERFLOW) {
			watch_follow_all(r);
			continue;
		}
		key.wd = ev->wd;
		pthread_mutex_lock(&r->w->lock);
		found = r->w->ifd == r->ifd ? tfind(&key, &r->w->by_wd, cmp_wd) : NULL;
		if (found) {
			nodeid = (*found)->nodeid;
			if (ev->mask & IN_IGNORED) {
				struct watch_node *gone = *found;

				tdelete(&key, &r->w->by_wd, cmp_wd);
				free(gone);
				nodeid = 0;
			}
		}
		pthread_mutex_unlock(&r->w->lock);
		if (nodeid)
			watch_follow(r->fs, nodeid);
	}
}

static void *watch_thread(void *arg)
{
	struct watch_run *r = arg;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		struct pollfd p[2] = { { .fd = r->ifd, .events = POLLIN },
				       { .fd = r->stop_fd, .events = POLLIN } };
		ssize_t len;

		if (poll(p, 2, -1) == -1 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		len = read(r->ifd, buf, sizeof(buf));
		if (len > 0)
			watch_handle(r, buf, len);
		else if (len == -1 && errno != EINTR && errno != EAGAIN)
			break;
	}
	close(r->ifd);
	close(r->stop_fd);
	free(r);
	return NULL;
}

/* fs's watcher, made on first use; NULL without memory. */
static struct pd_watch *watch_get(struct pd_fs *fs)
{
	struct pd_watch *w = atomic_load(&fs->watch);

	if (w)
		return w;
	pthread_mutex_lock(&fs->lock);
	w = atomic_load(&fs->watch);
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (w) {
			pthread_mutex_init(&w->lock, NULL);
			w->ifd = w->stop_fd = -1;
			atomic_store(&fs->watch, w);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return w;
}

/* With w->lock held: start the thread and its inotify instance. */
static int watch_start_locked(struct pd_fs *fs, struct pd_watch *w)
{
	struct watch_run *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	r->fs = fs;
	r->w = w;
	r->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	r->stop_fd = eventfd(0, EFD_CLOEXEC);
	err = r->ifd == -1 || r->stop_fd == -1 ? -errno : 0;
	if (!err)
		err = -pthread_create(&w->thread, NULL, watch_thread, r);
	/* Named, so `top -H` (and the tests) can tell it from the workers. */
	if (!err)
		pthread_setname_np(w->thread, "pd-host-watch");
	if (err) {
		if (r->ifd >= 0)
			close(r->ifd);
		if (r->stop_fd >= 0)
			close(r->stop_fd);
		free(r);
		return err;
	}
	w->ifd = r->ifd;
	w->stop_fd = r->stop_fd;
	w->gen++;
	w->running = true;
	return 0;
}

/*
 * Watch the file behind in, which now has a mapping. The caller holds the
 * inode's descriptor. A file we cannot watch (the limit of watches, no
 * permission) still follows the host through the replies that carry its
 * size (extent_report_size()).
 */
void watch_inode(struct pd_fs *fs, struct pd_inode *in)
{
	struct pd_watch *w = watch_get(fs);
	struct watch_node *n, **slot;
	int wd, err;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	if (!w->running) {
		err = watch_start_locked(fs, w);
		if (err) {
			if (!w->failed)
				fuse_log(FUSE_LOG_ERR,
					 "passthrough_dax: cannot watch mapped files for host changes: %s; a host process that shrinks a mapped file is noticed only when a reply carries its size\n",
					 strerror(-err));
			w->failed = true;
			goto out_unlock;
		}
	}
	if (in->watch_gen == w->gen)
		goto out_unlock;	/* watched already */
	wd = inotify_add_watch(w->ifd, fd_path(fs, in->fd).s, PD_WATCH_EVENTS);
	if (wd == -1) {
		fuse_log(FUSE_LOG_DEBUG,
			 "passthrough_dax: inode %" PRIu64 ": cannot watch for host changes: %s\n",
			 in->nodeid, strerror(errno));
		goto out_unlock;
	}
	n = malloc(sizeof(*n));
	if (!n)
		goto out_unlock;
	n->wd = wd;
	n->nodeid = in->nodeid;
	slot = tsearch(n, &w->by_wd, cmp_wd);
	if (!slot) {
		free(n);
		goto out_unlock;
	}
	if (*slot != n) {
		/* A wd we removed, its IN_IGNORED not read yet: it is this one now. */
		(*slot)->nodeid = in->nodeid;
		free(n);
	}
	in->watch_wd = wd;
	in->watch_gen = w->gen;
out_unlock:
	pthread_mutex_unlock(&w->lock);
}

/* The inode is being freed: its watch goes, so the host file is not kept. */
void watch_forget(struct pd_fs *fs, struct pd_inode *in)
{
	struct pd_watch *w = atomic_load(&fs->watch);
	struct watch_node key = { .wd = in->watch_wd }, **found;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->running && in->watch_gen == w->gen) {
		found = tfind(&key, &w->by_wd, cmp_wd);
		if (found && (*found)->nodeid == in->nodeid) {
			struct watch_node *gone = *found;

			tdelete(&key, &w->by_wd, cmp_wd);
			free(gone);
		}
		inotify_rm_watch(w->ifd, in->watch_wd);
	}
	in->watch_gen = 0;
	pthread_mutex_unlock(&w->lock);
}

/*
 * The session ends (DESTROY, or the connection closed): stop the thread;
 * every watch goes with its inotify instance. A new session starts again
 * on its first mapping.
 */
void watch_stop(struct pd_fs *fs)
{
	struct pd_watch *w = atomic_load(&fs->watch);
	pthread_t thread;
	bool running;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	running = w->running;
	thread = w->thread;
	if (running && eventfd_write(w->stop_fd, 1) != 0) {
		fuse_log(FUSE_LOG_ERR, "passthrough_dax: cannot stop the host watch thread: %s\n",
			 strerror(errno));
		running = false;	/* leave it be rather than wait forever */
	}
	w->running = false;
	w->ifd = w->stop_fd = -1;
	tdestroy(w->by_wd, free);
	w->by_wd = NULL;
	pthread_mutex_unlock(&w->lock);
	if (running)
		pthread_join(thread, NULL);
}
