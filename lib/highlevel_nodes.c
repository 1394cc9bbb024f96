/*
 * The high-level API's node table: the inode numbers the client knows and
 * the (parent, name) each stands for, so every request's path can be
 * built. Also what a node needs beyond its name: open handles (an unlinked
 * open file is renamed to .fuse_hidden* instead), the attributes auto_cache
 * compares, and when -o remember lets a forgotten node go.
 */
#include "highlevel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static size_t hash_ino(fuse_ino_t ino)
{
	return (size_t)(ino * 0x9e3779b97f4a7c15ull >> 17);
}

static size_t hash_name(fuse_ino_t parent, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull ^ parent;	/* FNV-1a */

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
	return (size_t)(h ^ (h >> 29));
}

static size_t table_slot(const struct hl_table *t, const struct hl_node *n)
{
	size_t h = t->by_name ? hash_name(n->parent->ino, n->name)
			      : hash_ino(n->ino);
	return h & (t->size - 1);
}

static struct hl_node **table_next(const struct hl_table *t, struct hl_node *n)
{
	return t->by_name ? &n->name_next : &n->ino_next;
}

static int table_init(struct hl_table *t, int by_name)
{
	t->size = 256;
	t->count = 0;
	t->by_name = by_name;
	t->slots = calloc(t->size, sizeof(struct hl_node *));
	return t->slots ? 0 : -ENOMEM;
}

/* Doubles the slot array; on allocation failure the table just stays
 * denser, which is slower but still correct. */
static void table_grow(struct hl_table *t)
{
	struct hl_node **old = t->slots;
	size_t old_size = t->size, i;

	t->slots = calloc(old_size * 2, sizeof(struct hl_node *));
	if (!t->slots) {
		t->slots = old;
		return;
	}
	t->size = old_size * 2;
	for (i = 0; i < old_size; i++) {
		struct hl_node *n = old[i], *next;

		for (; n; n = next) {
			size_t s = table_slot(t, n);

			next = *table_next(t, n);
			*table_next(t, n) = t->slots[s];
			t->slots[s] = n;
		}
	}
	free(old);
}

static void table_insert(struct hl_table *t, struct hl_node *n)
{
	size_t s;

	if (t->count >= t->size)
		table_grow(t);
	s = table_slot(t, n);
	*table_next(t, n) = t->slots[s];
	t->slots[s] = n;
	t->count++;
}

static void table_remove(struct hl_table *t, struct hl_node *n)
{
	struct hl_node **pp = &t->slots[table_slot(t, n)];

	for (; *pp; pp = table_next(t, *pp)) {
		if (*pp == n) {
			*pp = *table_next(t, n);
			t->count--;
			return;
		}
	}
}

static struct hl_node *node_by_ino(struct fuse *f, fuse_ino_t ino)
{
	struct hl_node *n = f->by_ino.slots[hash_ino(ino) & (f->by_ino.size - 1)];

	while (n && n->ino != ino)
		n = n->ino_next;
	return n;
}

static struct hl_node *node_by_name(struct fuse *f, fuse_ino_t parent, const char *name)
{
	size_t s = hash_name(parent, name) & (f->by_name.size - 1);
	struct hl_node *n = f->by_name.slots[s];

	while (n && (n->parent->ino != parent || strcmp(n->name, name) != 0))
		n = n->name_next;
	return n;
}

static struct timespec now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static double seconds_since(struct timespec then)
{
	struct timespec t = now();

	return (double)(t.tv_sec - then.tv_sec) + (double)(t.tv_nsec - then.tv_nsec) / 1e9;
}

/* Whether -o remember still holds a forgotten, attached node. */
static bool node_remembered(const struct fuse *f, const struct hl_node *n)
{
	if (!n->parent || f->cfg.remember == 0)
		return false;
	if (f->cfg.remember < 0)
		return true;
	return seconds_since(n->forgotten) < f->cfg.remember;
}

static bool node_unused(const struct fuse *f, const struct hl_node *n)
{
	return n != f->root && n->nlookup == 0 && n->children == 0 &&
	       n->open_count == 0 && !node_remembered(f, n);
}

/* Frees n, then its ancestors, as long as nothing refers to them. */
static void node_release_unused(struct fuse *f, struct hl_node *n)
{
	while (n && node_unused(f, n)) {
		struct hl_node *parent = n->parent;

		if (parent) {
			table_remove(&f->by_name, n);
			parent->children--;
		}
		table_remove(&f->by_ino, n);
		free(n->name);
		free(n);
		n = parent;
	}
}

/* Takes n out of the name table: it keeps its inode number, loses its path. */
static void node_detach(struct fuse *f, struct hl_node *n)
{
	struct hl_node *parent = n->parent;

	if (!parent)
		return;
	table_remove(&f->by_name, n);
	free(n->name);
	n->name = NULL;
	n->parent = NULL;
	n->hidden = false;
	parent->children--;
	node_release_unused(f, parent);
}

/* Gives a detached node the name (parent, name). */
static int node_attach(struct fuse *f, struct hl_node *n, struct hl_node *parent,
		       const char *name)
{
	n->name = strdup(name);
	if (!n->name)
		return -ENOMEM;
	n->parent = parent;
	parent->children++;
	table_insert(&f->by_name, n);
	return 0;
}

static void node_set_stat(struct fuse *f, struct hl_node *n, const struct stat *st)
{
	if (!f->cfg.auto_cache || !st)
		return;
	if (n->cache_valid && (n->size != st->st_size ||
			       n->mtime.tv_sec != st->st_mtim.tv_sec ||
			       n->mtime.tv_nsec != st->st_mtim.tv_nsec))
		n->cache_valid = false;	/* the file changed: drop the cache */
	n->mtime = st->st_mtim;
	n->size = st->st_size;
	n->stat_updated = now();
}

int hl_nodes_init(struct fuse *f)
{
	if (table_init(&f->by_name, 1) != 0)
		return -ENOMEM;
	if (table_init(&f->by_ino, 0) != 0)
		goto out_name;
	f->root = calloc(1, sizeof(*f->root));
	if (!f->root)
		goto out_ino;
	f->root->ino = FUSE_ROOT_ID;
	f->root->nlookup = 1;
	table_insert(&f->by_ino, f->root);
	f->next_ino = FUSE_ROOT_ID + 1;
	return 0;

out_ino:
	free(f->by_ino.slots);
out_name:
	free(f->by_name.slots);
	return -ENOMEM;
}

void hl_nodes_free(struct fuse *f)
{
	for (size_t i = 0; i < f->by_ino.size; i++) {
		struct hl_node *n = f->by_ino.slots[i], *next;

		for (; n; n = next) {
			next = n->ino_next;
			free(n->name);
			free(n);
		}
	}
	free(f->by_ino.slots);
	free(f->by_name.slots);
}

int hl_node_lookup(struct fuse *f, fuse_ino_t parent, const char *name,
		   const struct stat *st, fuse_ino_t *ino)
{
	struct hl_node *p, *n;
	int err = 0;

	pthread_mutex_lock(&f->lock);
	n = node_by_name(f, parent, name);
	if (n)
		goto out_found;
	p = node_by_ino(f, parent);
	if (!p) {
		err = -ESTALE;
		goto out_unlock;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		err = -ENOMEM;
		goto out_unlock;
	}
	n->ino = f->next_ino++;
	err = node_attach(f, n, p, name);
	if (err) {
		free(n);
		goto out_unlock;
	}
	table_insert(&f->by_ino, n);
out_found:
	n->nlookup++;
	node_set_stat(f, n, st);
	*ino = n->ino;
out_unlock:
	pthread_mutex_unlock(&f->lock);
	return err;
}

void hl_node_forget(struct fuse *f, fuse_ino_t ino, uint64_t nlookup)
{
	struct hl_node *n;

	pthread_mutex_lock(&f->lock);
	n = node_by_ino(f, ino);
	if (n && n != f->root) {
		n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
		if (n->nlookup == 0)
			n->forgotten = now();
		node_release_unused(f, n);
	}
	pthread_mutex_unlock(&f->lock);
}

void hl_node_remove_name(struct fuse *f, fuse_ino_t parent, const char *name)
{
	struct hl_node *n;

	pthread_mutex_lock(&f->lock);
	n = node_by_name(f, parent, name);
	if (n) {
		node_detach(f, n);
		node_release_unused(f, n);
	}
	pthread_mutex_unlock(&f->lock);
}

/* Gives a detached node its new name; without memory it stays nameless. */
static void node_reattach(struct fuse *f, struct hl_node *n, struct hl_node *parent,
			  const char *name)
{
	if (node_attach(f, n, parent, name) != 0)
		node_release_unused(f, n);
}

static void node_release_ino(struct fuse *f, fuse_ino_t ino)
{
	node_release_unused(f, node_by_ino(f, ino));
}

void hl_node_rename(struct fuse *f, fuse_ino_t parent, const char *name,
		    fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct hl_node *from, *to, *p, *newp;

	pthread_mutex_lock(&f->lock);
	from = node_by_name(f, parent, name);
	to = node_by_name(f, newparent, newname);
	p = node_by_ino(f, parent);
	newp = node_by_ino(f, newparent);
	if (!p || !newp)
		goto out_unlock;
	/* Pin both parents while their children are between names. */
	p->children++;
	newp->children++;
	if (to == from)
		to = NULL;
	if (from)
		node_detach(f, from);
	if (to)
		node_detach(f, to);
	if (from)
		node_reattach(f, from, newp, newname);
	if (to && (flags & RENAME_EXCHANGE))
		node_reattach(f, to, p, name);
	else if (to)
		node_release_unused(f, to);	/* overwritten: nameless now */
	p->children--;
	newp->children--;
	/* By number: releasing one parent may free the other. */
	node_release_ino(f, parent);
	node_release_ino(f, newparent);
out_unlock:
	pthread_mutex_unlock(&f->lock);
}

/* Path of n (+ "/name") into a new string; f->lock held. */
static int node_path_locked(struct fuse *f, struct hl_node *start, const char *name,
			    char **path)
{
	size_t len = name ? strlen(name) + 1 : 0, pos;
	struct hl_node *n;
	char *p;

	for (n = start; n != f->root; n = n->parent) {
		if (!n->parent)
			return -ENOENT;
		len += strlen(n->name) + 1;
	}
	p = malloc(len ? len + 1 : 2);
	if (!p)
		return -ENOMEM;
	if (!len) {
		strcpy(p, "/");
		*path = p;
		return 0;
	}
	pos = len;
	p[pos] = '\0';
	if (name) {
		pos -= strlen(name);
		memcpy(p + pos, name, strlen(name));
		p[--pos] = '/';
	}
	for (n = start; n != f->root; n = n->parent) {
		pos -= strlen(n->name);
		memcpy(p + pos, n->name, strlen(n->name));
		p[--pos] = '/';
	}
	*path = p;
	return 0;
}

int hl_node_path(struct fuse *f, fuse_ino_t ino, const char *name, char **path)
{
	struct hl_node *n;
	int err;

	pthread_mutex_lock(&f->lock);
	n = node_by_ino(f, ino);
	err = n ? node_path_locked(f, n, name, path) : -ESTALE;
	pthread_mutex_unlock(&f->lock);
	return err;
}

fuse_ino_t hl_node_ino(struct fuse *f, fuse_ino_t parent, const char *name)
{
	struct hl_node *n;
	fuse_ino_t ino;

	pthread_mutex_lock(&f->lock);
	n = node_by_name(f, parent, name);
	ino = n ? n->ino : HL_UNKNOWN_INO;
	pthread_mutex_unlock(&f->lock);
	return ino;
}

fuse_ino_t hl_node_find_path(struct fuse *f, const char *path)
{
	fuse_ino_t ino = FUSE_ROOT_ID;
	char *copy = strdup(path), *part, *save = NULL;

	if (!copy)
		return 0;
	pthread_mutex_lock(&f->lock);
	for (part = strtok_r(copy, "/", &save); part && ino;
	     part = strtok_r(NULL, "/", &save)) {
		struct hl_node *n = node_by_name(f, ino, part);

		ino = n ? n->ino : 0;
	}
	pthread_mutex_unlock(&f->lock);
	free(copy);
	return ino;
}

void hl_node_update_stat(struct fuse *f, fuse_ino_t ino, const struct stat *st)
{
	struct hl_node *n;

	pthread_mutex_lock(&f->lock);
	n = node_by_ino(f, ino);
	if (n)
		node_set_stat(f, n, st);
	pthread_mutex_unlock(&f->lock);
}

bool hl_node_stat_stale(struct fuse *f, fuse_ino_t ino, double max_age)
{
	struct hl_node *n;
	bool stale;

	pthread_mutex_lock(&f->lock);
	n = node_by_ino(f, ino);
	stale = n && n->cache_valid && seconds_since(n->stat_updated) >= max_age;
	pthread_mutex_unlock(&f->lock);
	return stale;
}

bool hl_node_cache_keep(struct fuse *f, fuse_ino_t ino)
{
	struct hl_node *n;
	bool keep = false;

	pthread_mutex_lock(&f->lock);
	n = node_by_ino(f, ino);
	if (n) {
		keep = n->cache_valid;
		n->cache_valid = true;	/* what the client reads now is current */
	}
	pthread_mutex_unlock(&f->lock);
	return keep;
}

void hl_node_open(struct fuse *f, fuse_ino_t ino)
{
	struct hl_node *n;

	pthread_mutex_lock(&f->lock);
	n = node_by_ino(f, ino);
	if (n)
		n->open_count++;
	pthread_mutex_unlock(&f->lock);
}

void hl_node_close(struct fuse *f, fuse_ino_t ino, char **hidden)
{
	struct hl_node *n;

	*hidden = NULL;
	pthread_mutex_lock(&f->lock);
	n = node_by_ino(f, ino);
	if (n && n->open_count > 0 && --n->open_count == 0) {
		if (n->hidden && node_path_locked(f, n, NULL, hidden) == 0)
			n->hidden = false;
		node_release_unused(f, n);
	}
	pthread_mutex_unlock(&f->lock);
}

bool hl_node_is_open(struct fuse *f, fuse_ino_t parent, const char *name)
{
	struct hl_node *n;
	bool open;

	pthread_mutex_lock(&f->lock);
	n = node_by_name(f, parent, name);
	open = n && n->open_count > 0;
	pthread_mutex_unlock(&f->lock);
	return open;
}

bool hl_node_is_hidden(struct fuse *f, fuse_ino_t ino)
{
	struct hl_node *n;
	bool hidden;

	pthread_mutex_lock(&f->lock);
	n = node_by_ino(f, ino);
	hidden = n && n->hidden;
	pthread_mutex_unlock(&f->lock);
	return hidden;
}

int hl_node_hidden_name(struct fuse *f, fuse_ino_t parent, const char *name,
			char **hidden)
{
	char buf[64];
	struct hl_node *n;
	int err = -EBUSY;

	pthread_mutex_lock(&f->lock);
	n = node_by_name(f, parent, name);
	/* A name neither the table nor (the caller checks) the file system has. */
	for (int tries = 0; n && tries < 10; tries++) {
		snprintf(buf, sizeof(buf), ".fuse_hidden%08x%08x",
			 (unsigned int)n->ino, ++f->hidden_counter);
		if (!node_by_name(f, parent, buf)) {
			*hidden = strdup(buf);
			err = *hidden ? 0 : -ENOMEM;
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return err;
}

void hl_node_hide(struct fuse *f, fuse_ino_t parent, const char *name, const char *hidden,
		  bool *unlink_now)
{
	struct hl_node *n;

	*unlink_now = false;
	hl_node_rename(f, parent, name, parent, hidden, 0);
	pthread_mutex_lock(&f->lock);
	n = node_by_name(f, parent, hidden);
	if (n) {
		/* The last handle may have closed while we renamed. */
		n->hidden = n->open_count > 0;
		*unlink_now = n->open_count == 0;
	}
	pthread_mutex_unlock(&f->lock);
}

char **hl_node_hidden_paths(struct fuse *f, size_t *count)
{
	char **paths = NULL;
	size_t cap = 0;

	*count = 0;
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->by_ino.size; i++) {
		for (struct hl_node *n = f->by_ino.slots[i]; n; n = n->ino_next) {
			char *path;

			if (!n->hidden || node_path_locked(f, n, NULL, &path) != 0)
				continue;
			if (*count == cap) {
				char **more = realloc(paths, (cap ? cap * 2 : 8) * sizeof(*more));

				if (!more) {
					free(path);
					goto out_unlock;
				}
				paths = more;
				cap = cap ? cap * 2 : 8;
			}
			paths[(*count)++] = path;
		}
	}
out_unlock:
	pthread_mutex_unlock(&f->lock);
	return paths;
}

int hl_nodes_clean(struct fuse *f)
{
	double next = f->cfg.remember > 0 ? f->cfg.remember : 3600;
	size_t i;

	pthread_mutex_lock(&f->lock);
	for (i = 0; i < f->by_ino.size; i++) {
		struct hl_node *n = f->by_ino.slots[i], *following;

		for (; n; n = following) {
			following = n->ino_next;
			if (n == f->root || n->nlookup || n->children || n->open_count)
				continue;
			if (node_remembered(f, n)) {
				double left = f->cfg.remember - seconds_since(n->forgotten);

				if (left < next)
					next = left;
				continue;
			}
			/* Freeing may free parents too; restart this chain. */
			node_release_unused(f, n);
			following = f->by_ino.slots[i];
		}
	}
	pthread_mutex_unlock(&f->lock);
	return next < 1 ? 1 : (int)next;
}
