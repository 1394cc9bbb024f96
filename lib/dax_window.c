/*
 * The DAX window object: validates mapping requests, keeps the table of
 * which window range shows which inode/file range, and drives a backend
 * (dax_local.c, or a remote one) to change the memory, all under one lock.
 * A small per-inode index beside the table lets fuse_dax_window_revalidate()
 * see, without that lock, that an inode's mappings already follow a size.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dax_window.h"

/* A duplicate of the caller's fd, shared by the pieces of one mapping. */
struct dax_file {
	int fd;
	unsigned refs; /* protected by the window lock */
};

/* One live mapping: the window range [moffset, moffset + len). */
struct dax_entry {
	uint64_t moffset, len;
	fuse_ino_t ino;
	uint64_t foffset;
	uint64_t file_len; /* bytes from moffset mapped to the file */
	int prot;
	struct dax_file *file;
};

/*
 * What revalidate's fast path needs to know of one inode's mappings. The
 * bounds are loose in the safe direction: a piece that shrinks or goes
 * away leaves them as they were, and a full pass over the inode's entries
 * (clip, revalidate) makes them exact again.
 */
struct dax_ino {
	fuse_ino_t ino;
	unsigned entries;	/* table entries of ino */
	unsigned changing;	/* changes of ino under way (w->lock held) */
	uint64_t grow_edge;	/* <= foffset + file_len of every entry that
				 * shows zeros at its end; UINT64_MAX if none */
	uint64_t shown_end;	/* >= foffset + file_len of every entry */
};

struct fuse_dax_window {
	uint64_t size;
	uint64_t align; /* of requests */
	uint64_t page;  /* of backend calls and of the EOF boundary */
	const struct fuse_dax_backend_ops *ops;
	void *backend;
	void *base;

	pthread_mutex_t lock;
	/* Sorted by moffset, never overlapping; so also sorted by end. */
	struct dax_entry *tab;
	size_t count, cap;

	/*
	 * The per-inode index, sorted by ino. Changed with both locks held,
	 * read with idx_lock alone: idx_lock is never held across a backend
	 * call or a system call, so the fast path never waits for a VMM.
	 */
	pthread_mutex_t idx_lock;
	struct dax_ino *idx;
	size_t nidx, idx_cap;
};

uint64_t dax_page_size(void)
{
	long page = sysconf(_SC_PAGESIZE);

	return page > 0 ? (uint64_t)page : 4096;
}

static uint64_t round_up_sat(uint64_t x, uint64_t align)
{
	if (x > UINT64_MAX - (align - 1))
		return UINT64_MAX & ~(align - 1);
	return (x + align - 1) & ~(align - 1);
}

static uint64_t entry_end(const struct dax_entry *e)
{
	return e->moffset + e->len;
}

/* How many of len bytes from foffset lie within a file of size bytes. */
static uint64_t file_part(uint64_t size, uint64_t page, uint64_t foffset,
			  uint64_t len)
{
	uint64_t eof = round_up_sat(size, page);

	if (foffset >= eof)
		return 0;
	return eof - foffset < len ? eof - foffset : len;
}

/* ---- shared descriptors ---- */

static int dax_file_new(int fd, struct dax_file **out)
{
	struct dax_file *f = malloc(sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (f->fd < 0) {
		int err = -errno;

		free(f);
		return err;
	}
	f->refs = 1;
	*out = f;
	return 0;
}

static struct dax_file *dax_file_get(struct dax_file *f)
{
	f->refs++;
	return f;
}

static void dax_file_put(struct dax_file *f)
{
	if (--f->refs == 0) {
		close(f->fd);
		free(f);
	}
}

/* ---- the table ---- */

static int table_reserve(struct fuse_dax_window *w, size_t extra)
{
	struct dax_entry *tab;
	size_t cap;

	if (w->count + extra <= w->cap)
		return 0;
	cap = w->cap ? w->cap * 2 : 16;
	while (cap < w->count + extra)
		cap *= 2;
	tab = realloc(w->tab, cap * sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	w->tab = tab;
	w->cap = cap;
	return 0;
}

/* Index of the first entry that ends after x (w->count if none). */
static size_t table_first_end_after(const struct fuse_dax_window *w,
				    uint64_t x)
{
	size_t lo = 0, hi = w->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (entry_end(&w->tab[mid]) > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void table_remove_at(struct fuse_dax_window *w, size_t i)
{
	memmove(&w->tab[i], &w->tab[i + 1],
		(w->count - i - 1) * sizeof(w->tab[0]));
	w->count--;
}

/* Needs one free slot (table_reserve). */
static void table_insert_at(struct fuse_dax_window *w, size_t i,
			    const struct dax_entry *e)
{
	memmove(&w->tab[i + 1], &w->tab[i],
		(w->count - i) * sizeof(w->tab[0]));
	w->tab[i] = *e;
	w->count++;
}

/* ---- the per-inode index (w->lock held; idx_lock taken here) ---- */

/* Index of ino's record, or of where it would go. */
static size_t idx_find(const struct fuse_dax_window *w, fuse_ino_t ino)
{
	size_t lo = 0, hi = w->nidx;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (w->idx[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct dax_ino *idx_get(const struct fuse_dax_window *w, fuse_ino_t ino)
{
	size_t i = idx_find(w, ino);

	return i < w->nidx && w->idx[i].ino == ino ? &w->idx[i] : NULL;
}

/* Room for one more record, so that idx_begin() cannot fail later. */
static int idx_reserve(struct fuse_dax_window *w)
{
	struct dax_ino *idx;
	size_t cap;

	if (w->nidx < w->idx_cap)
		return 0;
	cap = w->idx_cap ? w->idx_cap * 2 : 16;
	pthread_mutex_lock(&w->idx_lock);
	idx = realloc(w->idx, cap * sizeof(*idx));
	if (idx) {
		w->idx = idx;
		w->idx_cap = cap;
	}
	pthread_mutex_unlock(&w->idx_lock);
	return idx ? 0 : -ENOMEM;
}

/* With idx_lock held: drop ino's record once nothing refers to it. */
static void idx_drop_if_unused(struct fuse_dax_window *w, struct dax_ino *r)
{
	size_t i = (size_t)(r - w->idx);

	if (r->entries || r->changing)
		return;
	memmove(&w->idx[i], &w->idx[i + 1], (w->nidx - i - 1) * sizeof(*r));
	w->nidx--;
}

/*
 * A change of ino's mappings starts: until idx_end(), the fast path of
 * revalidate sends every caller to the lock. Needs idx_reserve() first
 * when ino may have no record yet.
 */
static void idx_begin(struct fuse_dax_window *w, fuse_ino_t ino)
{
	size_t i;

	pthread_mutex_lock(&w->idx_lock);
	i = idx_find(w, ino);
	if (i == w->nidx || w->idx[i].ino != ino) {
		memmove(&w->idx[i + 1], &w->idx[i], (w->nidx - i) * sizeof(w->idx[0]));
		w->idx[i] = (struct dax_ino){ .ino = ino, .grow_edge = UINT64_MAX };
		w->nidx++;
	}
	w->idx[i].changing++;
	pthread_mutex_unlock(&w->idx_lock);
}

static void idx_end(struct fuse_dax_window *w, fuse_ino_t ino)
{
	struct dax_ino *r;

	pthread_mutex_lock(&w->idx_lock);
	r = idx_get(w, ino);
	if (r) {
		r->changing--;
		idx_drop_if_unused(w, r);
	}
	pthread_mutex_unlock(&w->idx_lock);
}

/* With idx_lock held: widen r's bounds to cover what e shows now. */
static void idx_cover(struct dax_ino *r, const struct dax_entry *e)
{
	uint64_t end = e->foffset + e->file_len;

	if (e->file_len < e->len && end < r->grow_edge)
		r->grow_edge = end;
	if (e->file_len && end > r->shown_end)
		r->shown_end = end;
}

/* Entry e joined the table (a new mapping, or one piece of a split). */
static void idx_added(struct fuse_dax_window *w, const struct dax_entry *e)
{
	struct dax_ino *r;

	pthread_mutex_lock(&w->idx_lock);
	r = idx_get(w, e->ino);
	/* A mapping begins with idx_begin() and a split piece has a sibling. */
	if (r) {
		r->entries++;
		idx_cover(r, e);
	}
	pthread_mutex_unlock(&w->idx_lock);
}

/* Entry e's file part changed: keep the bounds covering it. */
static void idx_changed(struct fuse_dax_window *w, const struct dax_entry *e)
{
	struct dax_ino *r;

	pthread_mutex_lock(&w->idx_lock);
	r = idx_get(w, e->ino);
	if (r)
		idx_cover(r, e);
	pthread_mutex_unlock(&w->idx_lock);
}

static void idx_removed(struct fuse_dax_window *w, fuse_ino_t ino)
{
	struct dax_ino *r;

	pthread_mutex_lock(&w->idx_lock);
	r = idx_get(w, ino);
	if (r) {
		r->entries--;
		idx_drop_if_unused(w, r);
	}
	pthread_mutex_unlock(&w->idx_lock);
}

/* After a pass over all of ino's entries: its exact bounds. */
static void idx_set_bounds(struct fuse_dax_window *w, fuse_ino_t ino)
{
	struct dax_ino *r;

	pthread_mutex_lock(&w->idx_lock);
	r = idx_get(w, ino);
	if (r) {
		r->grow_edge = UINT64_MAX;
		r->shown_end = 0;
		for (size_t i = 0; i < w->count; i++)
			if (w->tab[i].ino == ino)
				idx_cover(r, &w->tab[i]);
	}
	pthread_mutex_unlock(&w->idx_lock);
}

/*
 * Without w->lock: do ino's mappings already show its file up to size
 * (rounded up to a page) and nothing beyond? Then revalidate has nothing
 * to do. A change under way answers no, so its caller waits for it.
 */
static int idx_follows(struct fuse_dax_window *w, fuse_ino_t ino, uint64_t size)
{
	uint64_t eof = round_up_sat(size, w->page);
	struct dax_ino *r;
	int follows;

	pthread_mutex_lock(&w->idx_lock);
	r = idx_get(w, ino);
	follows = !r || (!r->changing && eof <= r->grow_edge && eof >= r->shown_end);
	pthread_mutex_unlock(&w->idx_lock);
	return follows;
}

/* The part of e at window range [from, to), which lies inside e. */
static struct dax_entry entry_slice(const struct dax_entry *e, uint64_t from,
				    uint64_t to)
{
	struct dax_entry s = *e;
	uint64_t skip = from - e->moffset;

	s.moffset = from;
	s.len = to - from;
	s.foffset = e->foffset + skip;
	s.file_len = e->file_len > skip ? e->file_len - skip : 0;
	if (s.file_len > s.len)
		s.file_len = s.len;
	return s;
}

/*
 * Drop [start, end) from the table: entries inside it go, entries that
 * overlap it partly keep their outside pieces. The backend is not called.
 * Needs one free slot (table_reserve), for an entry split in two.
 */
static void table_carve(struct fuse_dax_window *w, uint64_t start,
			uint64_t end)
{
	size_t i = table_first_end_after(w, start);

	while (i < w->count && w->tab[i].moffset < end) {
		struct dax_entry e = w->tab[i];
		int keep_left = e.moffset < start;
		int keep_right = entry_end(&e) > end;

		if (keep_left && keep_right) {
			struct dax_entry right = entry_slice(&e, end,
							     entry_end(&e));

			right.file = dax_file_get(e.file);
			w->tab[i] = entry_slice(&e, e.moffset, start);
			table_insert_at(w, i + 1, &right);
			idx_added(w, &right);
			return;
		}
		if (keep_left) {
			w->tab[i] = entry_slice(&e, e.moffset, start);
			i++;
		} else if (keep_right) {
			w->tab[i] = entry_slice(&e, end, entry_end(&e));
			return;
		} else {
			dax_file_put(e.file);
			table_remove_at(w, i);
			idx_removed(w, e.ino);
		}
	}
}

static void mapping_from_entry(const struct dax_entry *e,
			       struct fuse_dax_mapping *m)
{
	m->moffset = e->moffset;
	m->len = e->len;
	m->ino = e->ino;
	m->foffset = e->foffset;
	m->prot = e->prot;
	m->file_len = e->file_len;
}

/* ---- creation and teardown ---- */

int fuse_dax_window_new(uint64_t size, uint64_t alignment,
			const struct fuse_dax_backend_ops *ops, void *backend,
			struct fuse_dax_window **out)
{
	struct fuse_dax_window *w;
	uint64_t page = dax_page_size();

	if (!out || !ops || !ops->map || !ops->map_zero || !ops->unmap)
		return -EINVAL;
	if (alignment < page || (alignment & (alignment - 1)))
		return -EINVAL;
	if (size == 0 || size % alignment)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->size = size;
	w->align = alignment;
	w->page = page;
	w->ops = ops;
	w->backend = backend;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->idx_lock, NULL);
	*out = w;
	return 0;
}

void dax_window_set_local(struct fuse_dax_window *w, void *base)
{
	w->base = base;
}

static int unmap_matching_locked(struct fuse_dax_window *w, int all,
				 fuse_ino_t ino);

void fuse_dax_window_destroy(struct fuse_dax_window *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	unmap_matching_locked(w, 1, 0);
	/* Entries the backend failed to unmap: destroy releases them. */
	for (size_t i = 0; i < w->count; i++)
		dax_file_put(w->tab[i].file);
	w->count = 0;
	pthread_mutex_unlock(&w->lock);
	if (w->ops->destroy)
		w->ops->destroy(w->backend);
	pthread_mutex_destroy(&w->idx_lock);
	pthread_mutex_destroy(&w->lock);
	free(w->idx);
	free(w->tab);
	free(w);
}

uint64_t fuse_dax_window_size(const struct fuse_dax_window *w)
{
	return w->size;
}

uint64_t fuse_dax_window_alignment(const struct fuse_dax_window *w)
{
	return w->align;
}

void *fuse_dax_window_base(const struct fuse_dax_window *w)
{
	return w->base;
}

/* ---- validation ---- */

static int check_range(const struct fuse_dax_window *w, uint64_t moffset,
		       uint64_t len)
{
	if (len == 0 || moffset % w->align || len % w->align)
		return -EINVAL;
	if (moffset >= w->size || len > w->size - moffset)
		return -ERANGE;
	return 0;
}

/* Is fd a regular file whose open mode allows prot? Returns its size. */
static int check_file(int fd, int prot, uint64_t *size)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
#ifdef O_PATH
	if (fl & O_PATH)
		return -EBADF;
#endif
	if ((fl & O_ACCMODE) == O_WRONLY)
		return -EACCES;
	if ((prot & PROT_WRITE) && (fl & O_ACCMODE) != O_RDWR)
		return -EACCES;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int check_map_args(const struct fuse_dax_window *w, uint64_t moffset,
			  uint64_t len, uint64_t foffset, int prot)
{
	int err = check_range(w, moffset, len);

	if (err)
		return err;
	if (prot != PROT_READ && prot != (PROT_READ | PROT_WRITE))
		return -EINVAL;
	if (foffset % w->align || foffset > (uint64_t)INT64_MAX - len)
		return -EINVAL;
	return 0;
}

/* ---- changing the memory (lock held) ---- */

/* Make [moffset, +len) show file_len bytes of the file, then zeros. */
static int backend_show(struct fuse_dax_window *w, uint64_t moffset,
			uint64_t len, int fd, uint64_t foffset,
			uint64_t file_len, int prot)
{
	int err = 0;

	if (file_len)
		err = w->ops->map(w->backend, moffset, file_len, fd, foffset,
				  prot);
	if (!err && file_len < len)
		err = w->ops->map_zero(w->backend, moffset + file_len,
				       len - file_len, prot);
	return err;
}

/* Make e show exactly file_len bytes of its file, then zeros. */
static int entry_set_file_len(struct fuse_dax_window *w, struct dax_entry *e,
			      uint64_t file_len)
{
	int err;

	if (file_len > e->file_len)
		err = w->ops->map(w->backend, e->moffset + e->file_len,
				  file_len - e->file_len, e->file->fd,
				  e->foffset + e->file_len, e->prot);
	else
		err = w->ops->map_zero(w->backend, e->moffset + file_len,
				       e->file_len - file_len, e->prot);
	if (err) {
		dax_log(DAX_LOG_ERR,
			"DAX window: resizing the mapping of inode %llu at window offset %llu to %llu file bytes failed: %s\n",
			(unsigned long long)e->ino,
			(unsigned long long)e->moffset,
			(unsigned long long)file_len, strerror(-err));
		return err;
	}
	e->file_len = file_len;
	idx_changed(w, e);
	return 0;
}

/*
 * Make e show its file up to the file's size now, as fstat() on the
 * window's own descriptor reports it: file pages up to the end rounded up
 * to a page, zero pages beyond. Returns 1 if e changed, 0, or -errno.
 */
static int entry_follow_file(struct fuse_dax_window *w, struct dax_entry *e)
{
	uint64_t file_len;
	struct stat st;
	int err;

	if (fstat(e->file->fd, &st) < 0)
		return -errno;
	file_len = file_part((uint64_t)st.st_size, w->page, e->foffset, e->len);
	if (file_len == e->file_len)
		return 0;
	err = entry_set_file_len(w, e, file_len);
	return err ? err : 1;
}

/* After a failed change: leave [moffset, +len) empty, in memory and table. */
static void range_abandon(struct fuse_dax_window *w, uint64_t moffset,
			  uint64_t len)
{
	/*
	 * A local mmap that failed may have left anything there: make the
	 * range the reservation again. A backend of the window's own (a
	 * VMM's) leaves what it failed to change as it was, and the table
	 * keeps it: unmapping pages the client may still be using could kill
	 * the VM.
	 */
	if (!w->base)
		return;
	w->ops->unmap(w->backend, moffset, len);
	table_carve(w, moffset, moffset + len);
}

int fuse_dax_window_map(struct fuse_dax_window *w, uint64_t moffset,
			uint64_t len, int fd, fuse_ino_t ino, uint64_t foffset,
			int prot)
{
	struct dax_entry e = { .moffset = moffset, .len = len, .ino = ino,
			       .foffset = foffset, .prot = prot };
	uint64_t size = 0;
	size_t i;
	int err;

	err = check_map_args(w, moffset, len, foffset, prot);
	if (err)
		return err;
	err = check_file(fd, prot, &size);
	if (err)
		return err;
	e.file_len = file_part(size, w->page, foffset, len);
	err = dax_file_new(fd, &e.file);
	if (err)
		return err;

	pthread_mutex_lock(&w->lock);
	err = table_reserve(w, 2);
	if (!err)
		err = idx_reserve(w);
	if (err)
		goto out_unlock;
	idx_begin(w, ino);
	err = backend_show(w, moffset, len, e.file->fd, foffset, e.file_len,
			   prot);
	if (err) {
		dax_log(DAX_LOG_ERR,
			"DAX window: mapping inode %llu at window offset %llu (+%llu) failed: %s\n",
			(unsigned long long)ino, (unsigned long long)moffset,
			(unsigned long long)len, strerror(-err));
		/* The old contents may be partly gone: leave the range empty. */
		range_abandon(w, moffset, len);
		goto out_end;
	}
	table_carve(w, moffset, moffset + len);
	i = table_first_end_after(w, moffset);
	table_insert_at(w, i, &e);
	idx_added(w, &w->tab[i]);
	e.file = NULL;
	/*
	 * The size was read before the lock, and another host process may
	 * have changed the file since. Now that the mapping is in the table,
	 * where a revalidate started from now on finds it, follow the file
	 * once more: whoever changes its size after this fstat() and then
	 * calls revalidate sees this mapping.
	 */
	err = entry_follow_file(w, &w->tab[i]);
	if (err < 0)
		range_abandon(w, moffset, len);
	else
		err = 0;
out_end:
	idx_end(w, ino);
out_unlock:
	pthread_mutex_unlock(&w->lock);
	if (e.file)
		dax_file_put(e.file);
	return err;
}

int fuse_dax_window_unmap(struct fuse_dax_window *w, uint64_t moffset,
			  uint64_t len)
{
	uint64_t pos = moffset, end = moffset + len;
	int found = 0, err;

	err = check_range(w, moffset, len);
	if (err)
		return err;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		size_t i = table_first_end_after(w, pos);
		uint64_t from, to;
		int ret;

		/* pos moves past a piece the backend failed to unmap, too. */
		if (i == w->count || w->tab[i].moffset >= end || pos >= end)
			break;
		found = 1;
		from = w->tab[i].moffset > pos ? w->tab[i].moffset : pos;
		to = entry_end(&w->tab[i]) < end ? entry_end(&w->tab[i]) : end;
		pos = to;
		ret = table_reserve(w, 1);
		if (!ret)
			ret = w->ops->unmap(w->backend, from, to - from);
		if (ret) {
			err = err ? err : ret;
			continue;
		}
		table_carve(w, from, to);
	}
	pthread_mutex_unlock(&w->lock);
	if (!found)
		return -ENOENT;
	return err;
}

/* Unmap whole entries: all of them, or those of ino. */
static int unmap_matching_locked(struct fuse_dax_window *w, int all,
				 fuse_ino_t ino)
{
	int removed = 0, err = 0;
	size_t i = 0;

	while (i < w->count) {
		struct dax_entry *e = &w->tab[i];
		fuse_ino_t e_ino = e->ino;
		int ret;

		if (!all && e_ino != ino) {
			i++;
			continue;
		}
		ret = w->ops->unmap(w->backend, e->moffset, e->len);
		if (ret) {
			err = err ? err : ret;
			i++;
			continue;
		}
		dax_file_put(e->file);
		table_remove_at(w, i);
		idx_removed(w, e_ino);
		removed++;
	}
	return err ? err : removed;
}

int fuse_dax_window_unmap_inode(struct fuse_dax_window *w, fuse_ino_t ino)
{
	int ret;

	pthread_mutex_lock(&w->lock);
	ret = unmap_matching_locked(w, 0, ino);
	pthread_mutex_unlock(&w->lock);
	return ret;
}

int fuse_dax_window_unmap_all(struct fuse_dax_window *w)
{
	int ret;

	pthread_mutex_lock(&w->lock);
	ret = unmap_matching_locked(w, 1, 0);
	pthread_mutex_unlock(&w->lock);
	return ret;
}

/* ---- queries ---- */

int fuse_dax_window_lookup(struct fuse_dax_window *w, uint64_t moffset,
			   struct fuse_dax_mapping *out)
{
	int err = -ENOENT;
	size_t i;

	pthread_mutex_lock(&w->lock);
	i = table_first_end_after(w, moffset);
	if (i < w->count && w->tab[i].moffset <= moffset) {
		mapping_from_entry(&w->tab[i], out);
		err = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return err;
}

int fuse_dax_window_find(struct fuse_dax_window *w, fuse_ino_t ino,
			 uint64_t foffset, uint64_t len,
			 struct fuse_dax_mapping *out, size_t max)
{
	uint64_t end = len > UINT64_MAX - foffset ? UINT64_MAX : foffset + len;
	int n = 0;

	if (len == 0)
		return 0;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->count; i++) {
		const struct dax_entry *e = &w->tab[i];

		if (e->ino != ino || e->foffset >= end ||
		    e->foffset + e->len <= foffset)
			continue;
		if ((size_t)n < max)
			mapping_from_entry(e, &out[n]);
		n++;
	}
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* ---- the ordering contract and coherence with the host ---- */

int fuse_dax_window_clip(struct fuse_dax_window *w, fuse_ino_t ino,
			 uint64_t size)
{
	int changed = 0, err = 0;

	pthread_mutex_lock(&w->lock);
	if (!idx_get(w, ino))
		goto out_unlock;	/* no mapping of ino */
	idx_begin(w, ino);
	for (size_t i = 0; i < w->count; i++) {
		struct dax_entry *e = &w->tab[i];
		uint64_t file_len;

		if (e->ino != ino)
			continue;
		file_len = file_part(size, w->page, e->foffset, e->len);
		if (file_len >= e->file_len)
			continue;
		err = entry_set_file_len(w, e, file_len);
		if (err)
			break;
		changed++;
	}
	idx_set_bounds(w, ino);
	idx_end(w, ino);
out_unlock:
	pthread_mutex_unlock(&w->lock);
	return err ? err : changed;
}

int fuse_dax_window_revalidate(struct fuse_dax_window *w, fuse_ino_t ino,
			       uint64_t size)
{
	int changed = 0, err = 0;

	/* The common case, without the window's lock: nothing to do. */
	if (idx_follows(w, ino, size))
		return 0;
	pthread_mutex_lock(&w->lock);
	if (!idx_get(w, ino))
		goto out_unlock;	/* its last mapping went meanwhile */
	idx_begin(w, ino);
	for (size_t i = 0; i < w->count; i++) {
		int ret;

		if (w->tab[i].ino != ino)
			continue;
		ret = entry_follow_file(w, &w->tab[i]);
		if (ret < 0) {
			err = ret;
			break;
		}
		changed += ret;
	}
	idx_set_bounds(w, ino);
	idx_end(w, ino);
out_unlock:
	pthread_mutex_unlock(&w->lock);
	return err ? err : changed;
}

/* ---- self-check for tests ---- */

static int check_entry(const struct fuse_dax_window *w,
		       const struct dax_entry *e, uint64_t prev_end)
{
	if (e->len == 0 || e->moffset < prev_end || e->moffset >= w->size ||
	    e->len > w->size - e->moffset)
		return -EUCLEAN;
	if (e->moffset % w->page || e->len % w->page ||
	    e->foffset % w->page || e->file_len % w->page)
		return -EUCLEAN;
	if (e->file_len > e->len || !e->file || e->file->refs == 0)
		return -EUCLEAN;
	return 0;
}

/* The index against the table: counts exact, bounds covering every entry. */
static int check_index(const struct fuse_dax_window *w)
{
	for (size_t k = 0; k < w->nidx; k++) {
		const struct dax_ino *r = &w->idx[k];
		unsigned n = 0;

		if ((k && w->idx[k - 1].ino >= r->ino) || r->changing ||
		    !r->entries)
			goto bad;
		for (size_t i = 0; i < w->count; i++) {
			const struct dax_entry *e = &w->tab[i];
			uint64_t end = e->foffset + e->file_len;

			if (e->ino != r->ino)
				continue;
			n++;
			if ((e->file_len < e->len && end < r->grow_edge) ||
			    (e->file_len && end > r->shown_end))
				goto bad;
		}
		if (n != r->entries)
			goto bad;
		continue;
bad:
		dax_log(DAX_LOG_ERR,
			"DAX window: index record of inode %llu (%u entries, %u changing, grow edge %llu, shown end %llu) does not match the table\n",
			(unsigned long long)r->ino, r->entries, r->changing,
			(unsigned long long)r->grow_edge,
			(unsigned long long)r->shown_end);
		return -EUCLEAN;
	}
	for (size_t i = 0; i < w->count; i++)
		if (!idx_get(w, w->tab[i].ino)) {
			dax_log(DAX_LOG_ERR,
				"DAX window: inode %llu has mappings but no index record\n",
				(unsigned long long)w->tab[i].ino);
			return -EUCLEAN;
		}
	return 0;
}

int dax_window_check(struct fuse_dax_window *w)
{
	uint64_t prev_end = 0;
	int err = 0;

	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->count && !err; i++) {
		const struct dax_entry *e = &w->tab[i];

		err = check_entry(w, e, prev_end);
		if (err)
			dax_log(DAX_LOG_ERR,
				"DAX window: table entry %zu (window %llu +%llu, file %llu, file_len %llu) is inconsistent\n",
				i, (unsigned long long)e->moffset,
				(unsigned long long)e->len,
				(unsigned long long)e->foffset,
				(unsigned long long)e->file_len);
		prev_end = entry_end(e);
	}
	if (!err) {
		pthread_mutex_lock(&w->idx_lock);
		err = check_index(w);
		pthread_mutex_unlock(&w->idx_lock);
	}
	pthread_mutex_unlock(&w->lock);
	return err;
}
