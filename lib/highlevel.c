/*
 * The path-based high-level API of <fuse.h>, written purely against the
 * public low-level API: a node table turns inode numbers into paths and each
 * low-level callback calls the matching struct fuse_operations member.
 */
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 317
#endif

/* fuse_lowlevel.h first: it also defines enum fuse_readdir_flags. */
#include "fuse_lowlevel.h"
#include "fuse.h"
#include "fuse_log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* d_ino the kernel shows when we cannot tell an entry's inode number. */
#define HL_UNKNOWN_INO 0xffffffffu

/*
 * One inode the kernel knows about. A node is "attached" while it has a
 * parent and a name; unlink, rmdir and rename-over detach it, and it then
 * has no path. It is freed once the kernel forgot it (nlookup == 0) and no
 * attached node names it as parent.
 */
struct hl_node {
	struct hl_node *name_next;	/* chain in f->by_name */
	struct hl_node *ino_next;	/* chain in f->by_ino */
	struct hl_node *parent;		/* NULL: root, or detached */
	char *name;			/* NULL: root, or detached */
	fuse_ino_t ino;
	uint64_t nlookup;		/* lookups the kernel has not forgotten */
	unsigned long children;		/* attached nodes with parent == this */
};

/* A chained hash table of nodes; by_name says which chain and key it uses. */
struct hl_table {
	struct hl_node **slots;
	size_t size;			/* a power of two */
	size_t count;
	int by_name;
};

struct fuse {
	struct fuse_session *se;
	struct fuse_operations op;
	struct fuse_config cfg;
	void *private_data;
	pthread_mutex_t lock;		/* guards the node table below */
	struct hl_table by_name;	/* key (parent ino, name) */
	struct hl_table by_ino;		/* key ino */
	fuse_ino_t next_ino;		/* never reused, so generation stays 0 */
	struct hl_node *root;
};

/* An open directory: what the file system's opendir() saw, plus a listing
 * collected from readdir() when it does not use offsets. */
struct hl_dirent {
	char *name;
	struct stat st;			/* only st_ino and the type bits */
};

struct hl_dir {
	struct fuse_file_info fi;	/* the file system's view of the handle */
	pthread_mutex_t lock;
	int cached;			/* ents holds the whole directory */
	struct hl_dirent *ents;
	size_t count, cap;
};

/* ------------------------------------------------------------------ */
/* Request context                                                     */

static __thread struct fuse_context hl_context;
static __thread fuse_req_t hl_current_req;

static struct fuse *req_begin(fuse_req_t req)
{
	struct fuse *f = fuse_req_userdata(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);

	hl_current_req = req;
	hl_context.fuse = f;
	hl_context.private_data = f->private_data;
	hl_context.uid = c->uid;
	hl_context.gid = c->gid;
	hl_context.pid = c->pid;
	hl_context.umask = c->umask;
	return f;
}

struct fuse_context *fuse_get_context(void)
{
	return &hl_context;
}

int fuse_getgroups(int size, gid_t list[])
{
	if (!hl_current_req)
		return -EINVAL;
	return fuse_req_getgroups(hl_current_req, size, list);
}

int fuse_interrupted(void)
{
	return hl_current_req ? fuse_req_interrupted(hl_current_req) : 0;
}

/* ------------------------------------------------------------------ */
/* Node table                                                          */

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
	t->slots = calloc(t->size, sizeof(*t->slots));
	return t->slots ? 0 : -ENOMEM;
}

/* Doubles the slot array; on allocation failure the table just stays
 * denser, which is slower but still correct. */
static void table_grow(struct hl_table *t)
{
	struct hl_node **old = t->slots;
	size_t old_size = t->size, i;

	t->slots = calloc(old_size * 2, sizeof(*t->slots));
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

static struct hl_node *node_by_name(struct fuse *f, fuse_ino_t parent,
				    const char *name)
{
	size_t s = hash_name(parent, name) & (f->by_name.size - 1);
	struct hl_node *n = f->by_name.slots[s];

	while (n && (n->parent->ino != parent || strcmp(n->name, name) != 0))
		n = n->name_next;
	return n;
}

/* Frees n, then its ancestors, as long as nothing refers to them. */
static void node_release_unused(struct fuse *f, struct hl_node *n)
{
	while (n && n != f->root && n->nlookup == 0 && n->children == 0) {
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
	parent->children--;
	node_release_unused(f, parent);
}

/* Gives a detached node the name (parent, name). */
static int node_attach(struct fuse *f, struct hl_node *n,
		       struct hl_node *parent, const char *name)
{
	n->name = strdup(name);
	if (!n->name)
		return -ENOMEM;
	n->parent = parent;
	parent->children++;
	table_insert(&f->by_name, n);
	return 0;
}

/* The node named (parent, name), created if needed, with one more lookup. */
static int node_lookup_ref(struct fuse *f, fuse_ino_t parent, const char *name,
			   fuse_ino_t *ino)
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
	*ino = n->ino;
out_unlock:
	pthread_mutex_unlock(&f->lock);
	return err;
}

static void node_forget(struct fuse *f, fuse_ino_t ino, uint64_t nlookup)
{
	struct hl_node *n;

	pthread_mutex_lock(&f->lock);
	n = node_by_ino(f, ino);
	if (n && n != f->root) {
		n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
		node_release_unused(f, n);
	}
	pthread_mutex_unlock(&f->lock);
}

static void node_remove_name(struct fuse *f, fuse_ino_t parent, const char *name)
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
static void node_reattach(struct fuse *f, struct hl_node *n,
			  struct hl_node *parent, const char *name)
{
	if (node_attach(f, n, parent, name) != 0)
		node_release_unused(f, n);
}

static void node_release_ino(struct fuse *f, fuse_ino_t ino)
{
	node_release_unused(f, node_by_ino(f, ino));
}

/* Mirrors a successful rename (or RENAME_EXCHANGE) in the node table. */
static void node_rename(struct fuse *f, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned int flags)
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

/*
 * Builds the path of ino, plus "/name" when name is not NULL, into a new
 * string the caller frees. -ENOENT if the node or an ancestor is detached.
 */
static int node_path(struct fuse *f, fuse_ino_t ino, const char *name,
		     char **path)
{
	struct hl_node *n, *start;
	size_t len = name ? strlen(name) + 1 : 0, pos;
	char *p;
	int err = 0;

	pthread_mutex_lock(&f->lock);
	start = node_by_ino(f, ino);
	if (!start) {
		err = -ESTALE;
		goto out_unlock;
	}
	for (n = start; n != f->root; n = n->parent) {
		if (!n->parent) {
			err = -ENOENT;
			goto out_unlock;
		}
		len += strlen(n->name) + 1;
	}
	p = malloc(len ? len + 1 : 2);
	if (!p) {
		err = -ENOMEM;
		goto out_unlock;
	}
	if (!len) {
		strcpy(p, "/");
		goto out_done;
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
out_done:
	*path = p;
out_unlock:
	pthread_mutex_unlock(&f->lock);
	return err;
}

/* The path for an operation on an open handle: NULL is allowed for a
 * detached node when the file system said it copes (nullpath_ok). */
static int handle_path(struct fuse *f, fuse_ino_t ino, char **path)
{
	int err = node_path(f, ino, NULL, path);

	if (err == -ENOENT && f->cfg.nullpath_ok) {
		*path = NULL;
		return 0;
	}
	return err;
}

/* ------------------------------------------------------------------ */
/* Attributes and entries                                              */

static void fix_attr(struct fuse *f, struct stat *st, fuse_ino_t ino)
{
	if (!f->cfg.use_ino)
		st->st_ino = ino;
	if (f->cfg.set_mode)
		st->st_mode &= ~(mode_t)(f->cfg.umask & 07777);
	if (f->cfg.set_uid)
		st->st_uid = f->cfg.uid;
	if (f->cfg.set_gid)
		st->st_gid = f->cfg.gid;
}

static int call_getattr(struct fuse *f, const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	memset(st, 0, sizeof(*st));
	if (!f->op.getattr)
		return -ENOSYS;
	return f->op.getattr(path, st, fi);
}

/* Stats path, and on success takes a lookup reference on (parent, name). */
static int make_entry(struct fuse *f, fuse_ino_t parent, const char *name,
		      const char *path, struct fuse_file_info *fi,
		      struct fuse_entry_param *e)
{
	int err;

	memset(e, 0, sizeof(*e));
	err = call_getattr(f, path, &e->attr, fi);
	if (err)
		return err;
	err = node_lookup_ref(f, parent, name, &e->ino);
	if (err)
		return err;
	fix_attr(f, &e->attr, e->ino);
	e->attr_timeout = f->cfg.attr_timeout;
	e->entry_timeout = f->cfg.entry_timeout;
	return 0;
}

static void reply_entry_or_err(fuse_req_t req, struct fuse *f, int err,
			       const struct fuse_entry_param *e)
{
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	/* The kernel did not take the reference if it dropped the request. */
	if (fuse_reply_entry(req, e) == -ENOENT)
		node_forget(f, e->ino, 1);
}

/* Reply for a successful positive return, else the errno. */
static void reply_status(fuse_req_t req, int res)
{
	fuse_reply_err(req, res < 0 ? -res : 0);
}

/* ------------------------------------------------------------------ */
/* Low-level callbacks: names                                          */

static void hl_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fuse *f = userdata;

	memset(&hl_context, 0, sizeof(hl_context));
	hl_context.fuse = f;
	hl_context.private_data = f->private_data;
	if (f->op.init)
		f->private_data = f->op.init(conn, &f->cfg);
}

static void hl_destroy(void *userdata)
{
	struct fuse *f = userdata;

	memset(&hl_context, 0, sizeof(hl_context));
	hl_context.fuse = f;
	hl_context.private_data = f->private_data;
	if (f->op.destroy)
		f->op.destroy(f->private_data);
}

static void hl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse *f = req_begin(req);
	struct fuse_entry_param e;
	char *path;
	int err = node_path(f, parent, name, &path);

	if (!err) {
		err = make_entry(f, parent, name, path, NULL, &e);
		free(path);
	}
	if (err == -ENOENT && f->cfg.negative_timeout > 0) {
		/* ino 0 with a timeout: the kernel caches the absence */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = f->cfg.negative_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry_or_err(req, f, err, &e);
}

static void hl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(fuse_req_userdata(req), ino, nlookup);
	fuse_reply_none(req);
}

static void hl_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct fuse *f = fuse_req_userdata(req);
	size_t i;

	for (i = 0; i < count; i++)
		node_forget(f, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void hl_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct stat st;
	char *path;
	int err = fi ? handle_path(f, ino, &path) : node_path(f, ino, NULL, &path);

	if (!err) {
		err = call_getattr(f, path, &st, fi);
		free(path);
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fix_attr(f, &st, ino);
	fuse_reply_attr(req, &st, f->cfg.attr_timeout);
}

static struct timespec setattr_time(int valid, int set, int now,
				    struct timespec t)
{
	struct timespec ts = { 0, UTIME_OMIT };

	if (valid & now)
		ts.tv_nsec = UTIME_NOW;
	else if (valid & set)
		ts = t;
	return ts;
}

/* Applies the changes of one SETATTR in libfuse's order: mode, owner,
 * size, times. The first failure stops the rest. */
static int apply_setattr(struct fuse *f, const char *path,
			 const struct stat *attr, int valid,
			 struct fuse_file_info *fi)
{
	const struct fuse_operations *op = &f->op;
	int err = 0;

	if (valid & FUSE_SET_ATTR_MODE)
		err = op->chmod ? op->chmod(path, attr->st_mode, fi) : -ENOSYS;
	if (!err && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		err = op->chown ? op->chown(path, uid, gid, fi) : -ENOSYS;
	}
	if (!err && (valid & FUSE_SET_ATTR_SIZE))
		err = op->truncate ? op->truncate(path, attr->st_size, fi)
				   : -ENOSYS;
	if (!err && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2];

		tv[0] = setattr_time(valid, FUSE_SET_ATTR_ATIME,
				     FUSE_SET_ATTR_ATIME_NOW, attr->st_atim);
		tv[1] = setattr_time(valid, FUSE_SET_ATTR_MTIME,
				     FUSE_SET_ATTR_MTIME_NOW, attr->st_mtim);
		err = op->utimens ? op->utimens(path, tv, fi) : -ENOSYS;
	}
	return err;
}

static void hl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct stat st;
	char *path;
	int err = fi ? handle_path(f, ino, &path) : node_path(f, ino, NULL, &path);

	if (err)
		goto out_reply;
	err = apply_setattr(f, path, attr, valid, fi);
	if (!err)
		err = call_getattr(f, path, &st, fi);
	free(path);
out_reply:
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fix_attr(f, &st, ino);
	fuse_reply_attr(req, &st, f->cfg.attr_timeout);
}

static void hl_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse *f = req_begin(req);
	char buf[PATH_MAX + 1];
	char *path;
	int err = node_path(f, ino, NULL, &path);

	if (!err) {
		err = f->op.readlink ? f->op.readlink(path, buf, sizeof(buf))
				     : -ENOSYS;
		free(path);
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	buf[sizeof(buf) - 1] = '\0';
	fuse_reply_readlink(req, buf);
}

/* mknod of a regular file falls back to create + release, as a file
 * system that only has create() would expect. */
static int call_mknod(struct fuse *f, const char *path, mode_t mode, dev_t rdev)
{
	struct fuse_file_info fi;
	int err;

	if (f->op.mknod)
		return f->op.mknod(path, mode, rdev);
	if (!S_ISREG(mode) || !f->op.create)
		return -ENOSYS;
	memset(&fi, 0, sizeof(fi));
	fi.flags = O_CREAT | O_EXCL | O_WRONLY;
	err = f->op.create(path, mode, &fi);
	if (!err && f->op.release)
		f->op.release(path, &fi);
	return err;
}

/* Shared tail of mknod, mkdir, symlink: the object exists, reply its entry. */
static void reply_new_entry(fuse_req_t req, struct fuse *f, int err,
			    fuse_ino_t parent, const char *name, char *path)
{
	struct fuse_entry_param e;

	if (!err)
		err = make_entry(f, parent, name, path, NULL, &e);
	free(path);
	reply_entry_or_err(req, f, err, &e);
}

static void hl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct fuse *f = req_begin(req);
	char *path = NULL;
	int err = node_path(f, parent, name, &path);

	if (!err)
		err = call_mknod(f, path, mode, rdev);
	reply_new_entry(req, f, err, parent, name, path);
}

static void hl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct fuse *f = req_begin(req);
	char *path = NULL;
	int err = node_path(f, parent, name, &path);

	if (!err)
		err = f->op.mkdir ? f->op.mkdir(path, mode) : -ENOSYS;
	reply_new_entry(req, f, err, parent, name, path);
}

static void hl_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	struct fuse *f = req_begin(req);
	char *path = NULL;
	int err = node_path(f, parent, name, &path);

	if (!err)
		err = f->op.symlink ? f->op.symlink(target, path) : -ENOSYS;
	reply_new_entry(req, f, err, parent, name, path);
}

static void hl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	struct fuse *f = req_begin(req);
	char *from = NULL, *to = NULL;
	int err = node_path(f, ino, NULL, &from);

	if (!err)
		err = node_path(f, newparent, newname, &to);
	if (!err)
		err = f->op.link ? f->op.link(from, to) : -ENOSYS;
	free(from);
	reply_new_entry(req, f, err, newparent, newname, to);
}

/* unlink and rmdir: on success the node loses its name. */
static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name,
			int (*remove)(const char *))
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = node_path(f, parent, name, &path);

	if (!err) {
		err = remove ? remove(path) : -ENOSYS;
		free(path);
	}
	if (!err)
		node_remove_name(f, parent, name);
	reply_status(req, err);
}

static void hl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse *f = fuse_req_userdata(req);

	remove_name(req, parent, name, f->op.unlink);
}

static void hl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse *f = fuse_req_userdata(req);

	remove_name(req, parent, name, f->op.rmdir);
}

static void hl_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct fuse *f = req_begin(req);
	char *from = NULL, *to = NULL;
	int err = node_path(f, parent, name, &from);

	if (!err)
		err = node_path(f, newparent, newname, &to);
	if (!err)
		err = f->op.rename ? f->op.rename(from, to, flags) : -ENOSYS;
	if (!err)
		node_rename(f, parent, name, newparent, newname, flags);
	free(from);
	free(to);
	reply_status(req, err);
}

/* ------------------------------------------------------------------ */
/* Low-level callbacks: open files                                     */

static void apply_open_config(struct fuse *f, struct fuse_file_info *fi)
{
	if (f->cfg.direct_io)
		fi->direct_io = 1;
	if (f->cfg.kernel_cache)
		fi->keep_cache = 1;
}

static void hl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = node_path(f, ino, NULL, &path);

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	err = f->op.open ? f->op.open(path, fi) : 0;
	if (err) {
		fuse_reply_err(req, -err);
		goto out_free;
	}
	apply_open_config(f, fi);
	/* An interrupted open leaves nobody to release the handle but us. */
	if (fuse_reply_open(req, fi) == -ENOENT && f->op.release)
		f->op.release(path, fi);
out_free:
	free(path);
}

static void hl_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct fuse_entry_param e;
	char *path;
	int err = node_path(f, parent, name, &path);

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	err = f->op.create ? f->op.create(path, mode, fi) : -ENOSYS;
	if (err) {
		fuse_reply_err(req, -err);
		goto out_free;
	}
	err = make_entry(f, parent, name, path, fi, &e);
	if (err) {
		if (f->op.release)
			f->op.release(path, fi);
		fuse_reply_err(req, -err);
		goto out_free;
	}
	apply_open_config(f, fi);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		if (f->op.release)
			f->op.release(path, fi);
		node_forget(f, e.ino, 1);
	}
out_free:
	free(path);
}

static void free_bufvec(struct fuse_bufvec *bv)
{
	size_t i;

	if (!bv)
		return;
	for (i = 0; i < bv->count; i++)
		if (!(bv->buf[i].flags & FUSE_BUF_IS_FD))
			free(bv->buf[i].mem);
	free(bv);
}

static void hl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct fuse_bufvec *bv = NULL;
	char *path, *buf = NULL;
	int res = handle_path(f, ino, &path);

	if (res)
		goto out_reply;
	if (f->op.read_buf) {
		res = f->op.read_buf(path, &bv, size, off, fi);
		if (res == 0)
			fuse_reply_data(req, bv, 0);
		free_bufvec(bv);
		free(path);
		if (res == 0)
			return;
		goto out_reply;
	}
	buf = malloc(size ? size : 1);
	if (!buf)
		res = -ENOMEM;
	else if (!f->op.read)
		res = -ENOSYS;
	else
		res = f->op.read(path, buf, size, off, fi);
	free(path);
	if (res > (int)size)
		res = -EIO;	/* never hand the kernel more than it asked */
	if (res >= 0)
		fuse_reply_buf(req, buf, res);
out_reply:
	if (res < 0)
		fuse_reply_err(req, -res);
	free(buf);
}

static void hl_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	char *path;
	int res = handle_path(f, ino, &path);

	if (res)
		goto out_reply;
	if (f->op.write) {
		res = f->op.write(path, buf, size, off, fi);
	} else if (f->op.write_buf) {
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

		bv.buf[0].mem = (void *)buf;
		res = f->op.write_buf(path, &bv, off, fi);
	} else {
		res = -ENOSYS;
	}
	free(path);
out_reply:
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_write(req, res);
}

/* Runs an fh operation whose result is just a status. */
#define HANDLE_OP(req, ino, call)					\
	do {								\
		struct fuse *f_ = req_begin(req);			\
		char *path;						\
		int err_ = handle_path(f_, ino, &path);			\
		if (!err_) {						\
			err_ = (call);					\
			free(path);					\
		}							\
		reply_status(req, err_);				\
	} while (0)

static void hl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse *f = fuse_req_userdata(req);

	HANDLE_OP(req, ino, f->op.flush ? f->op.flush(path, fi) : -ENOSYS);
}

static void hl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct fuse *f = fuse_req_userdata(req);

	HANDLE_OP(req, ino,
		  f->op.fsync ? f->op.fsync(path, datasync, fi) : -ENOSYS);
}

static void hl_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t off, off_t len, struct fuse_file_info *fi)
{
	struct fuse *f = fuse_req_userdata(req);

	HANDLE_OP(req, ino, f->op.fallocate ?
		  f->op.fallocate(path, mode, off, len, fi) : -ENOSYS);
}

/* release is always called: the file system frees its handle there. */
static void hl_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	char *path = NULL;

	if (node_path(f, ino, NULL, &path) != 0)
		path = NULL;
	if (f->op.release)
		f->op.release(path, fi);
	free(path);
	fuse_reply_err(req, 0);
}

static void hl_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	char *path;
	off_t res = handle_path(f, ino, &path);

	if (!res) {
		res = f->op.lseek ? f->op.lseek(path, off, whence, fi) : -ENOSYS;
		free(path);
	}
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_lseek(req, res);
}

static void hl_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	struct fuse *f = req_begin(req);
	char *path_in = NULL, *path_out = NULL;
	ssize_t res = handle_path(f, ino_in, &path_in);

	if (!res)
		res = handle_path(f, ino_out, &path_out);
	if (!res)
		res = f->op.copy_file_range ?
		      f->op.copy_file_range(path_in, fi_in, off_in, path_out,
					    fi_out, off_out, len, flags) :
		      -ENOSYS;
	free(path_in);
	free(path_out);
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_write(req, res);
}

/*
 * Restricted ioctls only: the kernel already copied in the argument
 * (in_buf) and will copy out_bufsz bytes back, both sized by the command.
 * The file system reads and writes them through one buffer, "data".
 */
static void hl_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
		     void *arg, struct fuse_file_info *fi, unsigned flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct fuse *f = req_begin(req);
	size_t size = in_bufsz > out_bufsz ? in_bufsz : out_bufsz;
	struct fuse_file_info *ufi = fi;
	char *path = NULL, *data = NULL;
	int res;

	if ((flags & FUSE_IOCTL_UNRESTRICTED) || !f->op.ioctl) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (flags & FUSE_IOCTL_DIR)
		ufi = &((struct hl_dir *)(uintptr_t)fi->fh)->fi;
	res = handle_path(f, ino, &path);
	if (res)
		goto out_reply;
	if (size) {
		data = calloc(1, size);
		if (!data) {
			res = -ENOMEM;
			goto out_reply;
		}
		if (in_bufsz)
			memcpy(data, in_buf, in_bufsz);
	}
	res = f->op.ioctl(path, cmd, arg, ufi, flags, data);
out_reply:
	if (res < 0)
		fuse_reply_err(req, -res);
	else
		fuse_reply_ioctl(req, res, out_bufsz ? data : NULL, out_bufsz);
	free(data);
	free(path);
}

/* ------------------------------------------------------------------ */
/* Low-level callbacks: directories                                    */

/* State of one readdir() call, handed to the file system as "buf". */
struct hl_fill {
	struct fuse *f;
	fuse_req_t req;
	fuse_ino_t dir_ino;
	struct hl_dir *dh;
	char *buf;		/* the reply, when the fs uses offsets */
	size_t size, len;
	int uses_offsets;	/* -1 unknown, 0 no, 1 yes */
	int error;
};

static fuse_ino_t dirent_ino(struct hl_fill *fl, const char *name,
			     const struct stat *st)
{
	struct hl_node *n;
	fuse_ino_t ino = HL_UNKNOWN_INO;

	if (fl->f->cfg.use_ino && st)
		return st->st_ino;
	pthread_mutex_lock(&fl->f->lock);
	n = node_by_name(fl->f, fl->dir_ino, name);
	if (n)
		ino = n->ino;
	pthread_mutex_unlock(&fl->f->lock);
	return ino;
}

static int cache_dirent(struct hl_dir *dh, const char *name,
			const struct stat *st)
{
	if (dh->count == dh->cap) {
		size_t cap = dh->cap ? dh->cap * 2 : 32;
		struct hl_dirent *ents = realloc(dh->ents, cap * sizeof(*ents));

		if (!ents)
			return -ENOMEM;
		dh->ents = ents;
		dh->cap = cap;
	}
	dh->ents[dh->count].name = strdup(name);
	if (!dh->ents[dh->count].name)
		return -ENOMEM;
	dh->ents[dh->count].st = *st;
	dh->count++;
	return 0;
}

/* Adds one entry to the reply buffer; 1 when it does not fit. */
static int add_dirent(struct hl_fill *fl, const char *name,
		      const struct stat *st, off_t next_off)
{
	size_t need = fuse_add_direntry(fl->req, NULL, 0, name, NULL, 0);

	if (fl->len + need > fl->size)
		return 1;
	fuse_add_direntry(fl->req, fl->buf + fl->len, fl->size - fl->len,
			  name, st, next_off);
	fl->len += need;
	return 0;
}

static int hl_filler(void *buf, const char *name, const struct stat *stbuf,
		     off_t off, enum fuse_fill_dir_flags flags)
{
	struct hl_fill *fl = buf;
	struct stat st;
	int uses_offsets = off != 0;

	(void)flags;
	if (fl->uses_offsets >= 0 && fl->uses_offsets != uses_offsets) {
		fl->error = -EIO;	/* mixing both styles has no meaning */
		return 1;
	}
	fl->uses_offsets = uses_offsets;
	memset(&st, 0, sizeof(st));
	if (stbuf)
		st.st_mode = stbuf->st_mode & S_IFMT;
	st.st_ino = dirent_ino(fl, name, stbuf);
	if (uses_offsets)
		return add_dirent(fl, name, &st, off);
	fl->error = cache_dirent(fl->dh, name, &st);
	return fl->error ? 1 : 0;
}

static void dir_clear(struct hl_dir *dh)
{
	size_t i;

	for (i = 0; i < dh->count; i++)
		free(dh->ents[i].name);
	dh->count = 0;
	dh->cached = 0;
}

/* Calls the file system's readdir; entries land in fl->buf or dh->ents. */
static int fill_dir(struct fuse *f, fuse_ino_t ino, off_t off,
		    struct hl_fill *fl)
{
	char *path;
	int err = handle_path(f, ino, &path);

	if (err)
		return err;
	if (off == 0)
		dir_clear(fl->dh);
	err = f->op.readdir ? f->op.readdir(path, fl, hl_filler, off,
					    &fl->dh->fi, 0)
			    : -ENOSYS;
	free(path);
	if (!err)
		err = fl->error;
	if (!err && fl->uses_offsets != 1)
		fl->dh->cached = 1;	/* it listed everything at once */
	return err;
}

static void hl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct hl_dir *dh = (struct hl_dir *)(uintptr_t)fi->fh;
	struct hl_fill fl = { .f = f, .req = req, .dir_ino = ino, .dh = dh,
			      .size = size, .uses_offsets = -1 };
	int err = 0;
	size_t i;

	fl.buf = malloc(size ? size : 1);
	if (!fl.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&dh->lock);
	if (off == 0 || !dh->cached)
		err = fill_dir(f, ino, off, &fl);
	if (!err && dh->cached) {
		/* Our offsets into the collected listing: entry i is at i + 1. */
		for (i = (size_t)off; i < dh->count; i++)
			if (add_dirent(&fl, dh->ents[i].name, &dh->ents[i].st,
				       (off_t)i + 1))
				break;
	}
	pthread_mutex_unlock(&dh->lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, fl.buf, fl.len);
	free(fl.buf);
}

static void hl_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct fuse_file_info out;
	struct hl_dir *dh;
	char *path;
	int err = node_path(f, ino, NULL, &path);

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	dh = calloc(1, sizeof(*dh));
	if (!dh) {
		err = -ENOMEM;
		goto out_reply;
	}
	pthread_mutex_init(&dh->lock, NULL);
	dh->fi = *fi;
	err = f->op.opendir ? f->op.opendir(path, &dh->fi) : 0;
	if (err) {
		pthread_mutex_destroy(&dh->lock);
		free(dh);
		goto out_reply;
	}
	out = dh->fi;	/* keep_cache, cache_readdir... as the fs chose */
	out.fh = (uintptr_t)dh;
	if (fuse_reply_open(req, &out) == -ENOENT) {
		if (f->op.releasedir)
			f->op.releasedir(path, &dh->fi);
		dir_clear(dh);
		pthread_mutex_destroy(&dh->lock);
		free(dh->ents);
		free(dh);
	}
out_reply:
	if (err)
		fuse_reply_err(req, -err);
	free(path);
}

static void hl_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fuse *f = req_begin(req);
	struct hl_dir *dh = (struct hl_dir *)(uintptr_t)fi->fh;
	char *path = NULL;

	if (node_path(f, ino, NULL, &path) != 0)
		path = NULL;
	if (f->op.releasedir)
		f->op.releasedir(path, &dh->fi);
	free(path);
	dir_clear(dh);
	free(dh->ents);
	pthread_mutex_destroy(&dh->lock);
	free(dh);
	fuse_reply_err(req, 0);
}

static void hl_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct fuse *f = fuse_req_userdata(req);
	struct hl_dir *dh = (struct hl_dir *)(uintptr_t)fi->fh;

	HANDLE_OP(req, ino, f->op.fsyncdir ?
		  f->op.fsyncdir(path, datasync, &dh->fi) : -ENOSYS);
}

/* ------------------------------------------------------------------ */
/* Low-level callbacks: file system wide, xattrs, access               */

static void hl_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse *f = req_begin(req);
	struct statvfs st;
	char *path;
	int err = node_path(f, ino, NULL, &path);

	memset(&st, 0, sizeof(st));
	if (!err) {
		if (f->op.statfs) {
			err = f->op.statfs(path, &st);
		} else {
			/* what a file system without statfs reports */
			st.f_namemax = 255;
			st.f_bsize = 512;
		}
		free(path);
	}
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_statfs(req, &st);
}

static void hl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = node_path(f, ino, NULL, &path);

	if (!err) {
		err = f->op.setxattr ?
		      f->op.setxattr(path, name, value, size, flags) : -ENOSYS;
		free(path);
	}
	reply_status(req, err);
}

static void hl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = node_path(f, ino, NULL, &path);

	if (!err) {
		err = f->op.removexattr ? f->op.removexattr(path, name)
					: -ENOSYS;
		free(path);
	}
	reply_status(req, err);
}

/* getxattr and listxattr: size 0 asks for the length only. */
static void reply_xattr_result(fuse_req_t req, int res, const char *buf,
			       size_t size)
{
	if (res < 0)
		fuse_reply_err(req, -res);
	else if (size == 0)
		fuse_reply_xattr(req, res);
	else if ((size_t)res > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, res);
}

static void hl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct fuse *f = req_begin(req);
	char *path, *buf = NULL;
	int res = node_path(f, ino, NULL, &path);

	if (res)
		goto out_reply;
	if (size && !(buf = malloc(size)))
		res = -ENOMEM;
	else
		res = f->op.getxattr ? f->op.getxattr(path, name, buf, size)
				     : -ENOSYS;
	free(path);
out_reply:
	reply_xattr_result(req, res, buf, size);
	free(buf);
}

static void hl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fuse *f = req_begin(req);
	char *path, *buf = NULL;
	int res = node_path(f, ino, NULL, &path);

	if (res)
		goto out_reply;
	if (size && !(buf = malloc(size)))
		res = -ENOMEM;
	else
		res = f->op.listxattr ? f->op.listxattr(path, buf, size)
				      : -ENOSYS;
	free(path);
out_reply:
	reply_xattr_result(req, res, buf, size);
	free(buf);
}

static void hl_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fuse *f = req_begin(req);
	char *path;
	int err = node_path(f, ino, NULL, &path);

	if (!err) {
		err = f->op.access ? f->op.access(path, mask) : -ENOSYS;
		free(path);
	}
	reply_status(req, err);
}

static const struct fuse_lowlevel_ops hl_ops = {
	.init = hl_init,
	.destroy = hl_destroy,
	.lookup = hl_lookup,
	.forget = hl_forget,
	.getattr = hl_getattr,
	.setattr = hl_setattr,
	.readlink = hl_readlink,
	.mknod = hl_mknod,
	.mkdir = hl_mkdir,
	.unlink = hl_unlink,
	.rmdir = hl_rmdir,
	.symlink = hl_symlink,
	.rename = hl_rename,
	.link = hl_link,
	.open = hl_open,
	.read = hl_read,
	.write = hl_write,
	.flush = hl_flush,
	.release = hl_release,
	.fsync = hl_fsync,
	.opendir = hl_opendir,
	.readdir = hl_readdir,
	.releasedir = hl_releasedir,
	.fsyncdir = hl_fsyncdir,
	.statfs = hl_statfs,
	.setxattr = hl_setxattr,
	.getxattr = hl_getxattr,
	.listxattr = hl_listxattr,
	.removexattr = hl_removexattr,
	.access = hl_access,
	.create = hl_create,
	.ioctl = hl_ioctl,
	.forget_multi = hl_forget_multi,
	.fallocate = hl_fallocate,
	.copy_file_range = hl_copy_file_range,
	.lseek = hl_lseek,
};

/* ------------------------------------------------------------------ */
/* Creating, running and destroying                                    */

enum { HL_KEY_DEBUG, HL_KEY_UID, HL_KEY_GID, HL_KEY_UMASK };

#define HL_OPT(templ, member, value) \
	{ templ, offsetof(struct fuse_config, member), value }

static const struct fuse_opt hl_opts[] = {
	HL_OPT("-h", show_help, 1),
	HL_OPT("--help", show_help, 1),
	HL_OPT("use_ino", use_ino, 1),
	HL_OPT("readdir_ino", readdir_ino, 1),
	HL_OPT("direct_io", direct_io, 1),
	HL_OPT("kernel_cache", kernel_cache, 1),
	HL_OPT("hard_remove", hard_remove, 1),
	HL_OPT("nullpath_ok", nullpath_ok, 1),
	HL_OPT("entry_timeout=%lf", entry_timeout, 0),
	HL_OPT("attr_timeout=%lf", attr_timeout, 0),
	HL_OPT("negative_timeout=%lf", negative_timeout, 0),
	FUSE_OPT_KEY("-d", HL_KEY_DEBUG),
	FUSE_OPT_KEY("debug", HL_KEY_DEBUG),
	FUSE_OPT_KEY("uid=", HL_KEY_UID),
	FUSE_OPT_KEY("gid=", HL_KEY_GID),
	FUSE_OPT_KEY("umask=", HL_KEY_UMASK),
	FUSE_OPT_END
};

/* Options needing more than one field set; the rest are kept for the
 * low-level session (-d is both ours and its). */
static int hl_opt_proc(void *data, const char *arg, int key,
		       struct fuse_args *outargs)
{
	struct fuse_config *cfg = data;
	const char *value = strchr(arg, '=');

	(void)outargs;
	switch (key) {
	case HL_KEY_DEBUG:
		cfg->debug = 1;
		return 1;
	case HL_KEY_UID:
		cfg->set_uid = 1;
		return sscanf(value + 1, "%u", &cfg->uid) == 1 ? 0 : -1;
	case HL_KEY_GID:
		cfg->set_gid = 1;
		return sscanf(value + 1, "%u", &cfg->gid) == 1 ? 0 : -1;
	case HL_KEY_UMASK:
		cfg->set_mode = 1;
		return sscanf(value + 1, "%o", &cfg->umask) == 1 ? 0 : -1;
	default:
		return 1;
	}
}

void fuse_lib_help(struct fuse_args *args)
{
	(void)args;
	printf("    -o use_ino             report the file system's st_ino\n"
	       "    -o readdir_ino         (always on) known inode numbers in readdir\n"
	       "    -o direct_io           bypass the page cache for every file\n"
	       "    -o kernel_cache        keep cached data across opens\n"
	       "    -o hard_remove         (always on) unlinked files lose their path\n"
	       "    -o nullpath_ok         callbacks accept path NULL on open handles\n"
	       "    -o umask=M             clear bits M (octal) from every mode\n"
	       "    -o uid=N               report owner N for every file\n"
	       "    -o gid=N               report group N for every file\n"
	       "    -o entry_timeout=T     seconds names stay cached (1)\n"
	       "    -o negative_timeout=T  seconds missing names stay cached (0)\n"
	       "    -o attr_timeout=T      seconds attributes stay cached (1)\n");
	fuse_lowlevel_help();
}

static int hl_tables_init(struct fuse *f)
{
	if (table_init(&f->by_name, 1) != 0)
		return -ENOMEM;
	if (table_init(&f->by_ino, 0) != 0) {
		free(f->by_name.slots);
		return -ENOMEM;
	}
	f->root = calloc(1, sizeof(*f->root));
	if (!f->root) {
		free(f->by_name.slots);
		free(f->by_ino.slots);
		return -ENOMEM;
	}
	f->root->ino = FUSE_ROOT_ID;
	f->root->nlookup = 1;
	table_insert(&f->by_ino, f->root);
	f->next_ino = FUSE_ROOT_ID + 1;
	return 0;
}

static void hl_tables_free(struct fuse *f)
{
	size_t i;

	for (i = 0; i < f->by_ino.size; i++) {
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

struct fuse *fuse_new(struct fuse_args *args, const struct fuse_operations *op,
		      size_t op_size, void *private_data)
{
	struct fuse *f = calloc(1, sizeof(*f));

	if (!f) {
		fuse_log(FUSE_LOG_ERR, "fuse_new: out of memory\n");
		return NULL;
	}
	/* An older, shorter fuse_operations leaves the newer members NULL. */
	memcpy(&f->op, op, op_size < sizeof(f->op) ? op_size : sizeof(f->op));
	f->private_data = private_data;
	f->cfg.entry_timeout = 1.0;
	f->cfg.attr_timeout = 1.0;
	f->cfg.hard_remove = 1;
	f->cfg.readdir_ino = 1;
	if (fuse_opt_parse(args, &f->cfg, hl_opts, hl_opt_proc) == -1)
		goto out_free;
	if (f->cfg.show_help) {
		fuse_lib_help(args);
		goto out_free;
	}
	pthread_mutex_init(&f->lock, NULL);
	if (hl_tables_init(f) != 0) {
		fuse_log(FUSE_LOG_ERR, "fuse_new: out of memory\n");
		goto out_mutex;
	}
	f->se = fuse_session_new(args, &hl_ops, sizeof(hl_ops), f);
	if (!f->se)
		goto out_tables;	/* fuse_session_new said why */
	return f;

out_tables:
	hl_tables_free(f);
out_mutex:
	pthread_mutex_destroy(&f->lock);
out_free:
	free(f);
	return NULL;
}

int fuse_mount(struct fuse *f, const char *mountpoint)
{
	return fuse_session_mount(f->se, mountpoint);
}

void fuse_unmount(struct fuse *f)
{
	fuse_session_unmount(f->se);
}

void fuse_destroy(struct fuse *f)
{
	if (!f)
		return;
	/* Destroying the session may still call op.destroy through us. */
	fuse_session_destroy(f->se);
	hl_tables_free(f);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int fuse_loop(struct fuse *f)
{
	return fuse_session_loop(f->se);
}

int fuse_loop_mt(struct fuse *f, struct fuse_loop_config *config)
{
	struct fuse_loop_config *own = NULL;
	int res;

	if (!config) {
		own = fuse_loop_cfg_create();
		if (!own)
			return -ENOMEM;
		config = own;
	}
	res = fuse_session_loop_mt(f->se, config);
	if (own)
		fuse_loop_cfg_destroy(own);
	return res;
}

/* The entry points fuse.h names for callers built with FUSE_USE_VERSION
 * below 3.12 (old config layout) and below 3.2 (a bare clone_fd flag). */
int fuse_loop_mt_32(struct fuse *f, struct fuse_loop_config_v1 *v1);
int fuse_loop_mt_31(struct fuse *f, int clone_fd);

int fuse_loop_mt_32(struct fuse *f, struct fuse_loop_config_v1 *v1)
{
	struct fuse_loop_config *config = fuse_loop_cfg_create();
	int res;

	if (!config)
		return -ENOMEM;
	if (v1) {
		fuse_loop_cfg_set_clone_fd(config, v1->clone_fd);
		fuse_loop_cfg_set_idle_threads(config, v1->max_idle_threads);
	}
	res = fuse_session_loop_mt(f->se, config);
	fuse_loop_cfg_destroy(config);
	return res;
}

int fuse_loop_mt_31(struct fuse *f, int clone_fd)
{
	struct fuse_loop_config_v1 v1 = { .clone_fd = clone_fd,
					  .max_idle_threads = 10 };

	return fuse_loop_mt_32(f, &v1);
}

void fuse_exit(struct fuse *f)
{
	fuse_session_exit(f->se);
}

struct fuse_session *fuse_get_session(struct fuse *f)
{
	return f->se;
}

static int run_loop(struct fuse *f, const struct fuse_cmdline_opts *opts)
{
	struct fuse_loop_config *config;
	int res;

	if (opts->singlethread)
		return fuse_loop(f);
	config = fuse_loop_cfg_create();
	if (!config)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(config, opts->clone_fd);
	fuse_loop_cfg_set_idle_threads(config, opts->max_idle_threads);
	fuse_loop_cfg_set_max_threads(config, opts->max_threads);
	res = fuse_loop_mt(f, config);
	fuse_loop_cfg_destroy(config);
	return res;
}

/* Help and version go to stdout: they are what the user asked for. */
static int show_info(const struct fuse_cmdline_opts *opts,
		     struct fuse_args *args)
{
	if (opts->show_version) {
		printf("FUSE library version %s\n", fuse_pkgversion());
		fuse_lowlevel_version();
		return 1;
	}
	if (opts->show_help) {
		if (args->argv[0] && args->argv[0][0])
			printf("usage: %s [options] <mountpoint>\n\n",
			       args->argv[0]);
		fuse_cmdline_help();
		fuse_lib_help(args);
		return 1;
	}
	return 0;
}

int fuse_main_real(int argc, char *argv[], const struct fuse_operations *op,
		   size_t op_size, void *private_data)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse *f;
	int res = 1;

	memset(&opts, 0, sizeof(opts));
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out_args;
	if (show_info(&opts, &args)) {
		res = 0;
		goto out_args;
	}
	if (!opts.mountpoint) {
		fuse_log(FUSE_LOG_ERR, "%s: no mountpoint given (try --help)\n",
			 argv[0]);
		goto out_args;
	}
	f = fuse_new(&args, op, op_size, private_data);
	if (!f)
		goto out_args;
	if (fuse_mount(f, opts.mountpoint) != 0)
		goto out_destroy;
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	if (fuse_set_signal_handlers(f->se) != 0)
		goto out_unmount;
	res = run_loop(f, &opts) == 0 ? 0 : 1;
	fuse_remove_signal_handlers(f->se);
out_unmount:
	fuse_unmount(f);
out_destroy:
	fuse_destroy(f);
out_args:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return res;
}
