/*
 * Private to the high-level API (lib/highlevel*.c): one layer of
 * path-based callbacks (struct fuse_fs) and the module stack built on it.
 */
#ifndef FUSEDAX_HIGHLEVEL_H
#define FUSEDAX_HIGHLEVEL_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 317
#endif

#include "fuse.h"
#include "fuse_lowlevel.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

/* One layer: the callbacks, the data they see as private_data, and the
 * module it came from (NULL for the file system itself). */
struct fuse_fs {
	struct fuse_operations op;
	void *user_data;
	int debug;
	struct hl_module *module;
	/* The layer below, for freeing the stack (set by the module loader). */
	struct fuse_fs *below;
};

/*
 * One inode the kernel knows about (lib/highlevel_nodes.c). A node is
 * "attached" while it has a parent and a name; unlink, rmdir and
 * rename-over detach it, and it then has no path. It is freed once the
 * kernel forgot it (nlookup 0; with -o remember=T, T seconds later), no
 * attached node names it as parent, and no handle of it is open.
 */
struct hl_node {
	struct hl_node *name_next;	/* chain in f->by_name */
	struct hl_node *ino_next;	/* chain in f->by_ino */
	struct hl_node *parent;		/* NULL: root, or detached */
	char *name;			/* NULL: root, or detached */
	fuse_ino_t ino;
	uint64_t nlookup;		/* lookups the kernel has not forgotten */
	unsigned long children;		/* attached nodes with parent == this */
	unsigned int open_count;	/* open file handles */
	bool hidden;			/* renamed to .fuse_hidden* while open */
	/* auto_cache: the attributes last seen, and when. */
	bool cache_valid;
	struct timespec mtime;
	off_t size;
	struct timespec stat_updated;
	/* remember: when nlookup dropped to 0. */
	struct timespec forgotten;
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
	struct fuse_fs *fs;		/* the top layer */
	struct fuse_config cfg;
	pthread_mutex_t lock;		/* guards the node table below */
	struct hl_table by_name;	/* key (parent ino, name) */
	struct hl_table by_ino;		/* key ino */
	fuse_ino_t next_ino;		/* never reused, so generation stays 0 */
	struct hl_node *root;
	unsigned int hidden_counter;
	/* -o remember=T: the cleanup thread. */
	pthread_t cleanup_thread;
	bool cleanup_running;
	pthread_cond_t cleanup_wake;
	/* cfg.intr: the disposition intr_signal had before we set one. */
	bool intr_installed;
	struct sigaction intr_old;
};

/* d_ino the kernel shows when we cannot tell an entry's inode number. */
#define HL_UNKNOWN_INO 0xffffffffu

/* lib/highlevel_nodes.c: every call takes f->lock itself. */
int hl_nodes_init(struct fuse *f);
void hl_nodes_free(struct fuse *f);
/* The node (parent, name), created if needed, with one more lookup;
 * st (may be NULL) refreshes what auto_cache compares. */
int hl_node_lookup(struct fuse *f, fuse_ino_t parent, const char *name,
		   const struct stat *st, fuse_ino_t *ino);
void hl_node_forget(struct fuse *f, fuse_ino_t ino, uint64_t nlookup);
/* After a successful unlink/rmdir of (parent, name). */
void hl_node_remove_name(struct fuse *f, fuse_ino_t parent, const char *name);
/* After a successful rename (flags as rename(2)'s). */
void hl_node_rename(struct fuse *f, fuse_ino_t parent, const char *name,
		    fuse_ino_t newparent, const char *newname, unsigned int flags);
/* The path of ino (+ "/name"), malloc'ed. -ENOENT if detached, -ESTALE if
 * unknown. */
int hl_node_path(struct fuse *f, fuse_ino_t ino, const char *name, char **path);
/* The inode number the name has now, or HL_UNKNOWN_INO. */
fuse_ino_t hl_node_ino(struct fuse *f, fuse_ino_t parent, const char *name);
/* The inode number of path ("/a/b") if every component is known, else 0. */
fuse_ino_t hl_node_find_path(struct fuse *f, const char *path);
/* Refresh auto_cache's view of ino from st. */
void hl_node_update_stat(struct fuse *f, fuse_ino_t ino, const struct stat *st);
/* auto_cache: whether ino's attributes are older than max_age seconds
 * (then the caller refreshes them), and whether the cache may be kept. */
bool hl_node_stat_stale(struct fuse *f, fuse_ino_t ino, double max_age);
bool hl_node_cache_keep(struct fuse *f, fuse_ino_t ino);
/* Open handles: counted so unlink of an open file can hide it instead. */
void hl_node_open(struct fuse *f, fuse_ino_t ino);
/* One handle fewer; if it was the last one of a hidden node, *hidden is
 * its path (the caller unlinks it), else NULL. */
void hl_node_close(struct fuse *f, fuse_ino_t ino, char **hidden);
bool hl_node_is_open(struct fuse *f, fuse_ino_t parent, const char *name);
/* Whether ino is an open file hidden as .fuse_hidden* (unlinked). */
bool hl_node_is_hidden(struct fuse *f, fuse_ino_t ino);
/* A name in parent no node has, for hiding (parent, name). */
int hl_node_hidden_name(struct fuse *f, fuse_ino_t parent, const char *name,
			char **hidden);
/* After renaming (parent, name) to (parent, hidden): mark it hidden. If no
 * handle is open any more, *unlink_now is set: the caller unlinks it. */
void hl_node_hide(struct fuse *f, fuse_ino_t parent, const char *name,
		  const char *hidden, bool *unlink_now);
/* Each hidden node's path (for fuse_destroy to unlink); *count of them. */
char **hl_node_hidden_paths(struct fuse *f, size_t *count);
/* -o remember: drop what is due; seconds until the next one is. */
int hl_nodes_clean(struct fuse *f);

/*
 * Push every module named in modules ("subdir:NAME...") on *fs, in order,
 * each taking its options out of args. *fs is the top layer afterwards.
 * Returns 0, or -1 after logging which module failed and why.
 */
int hl_modules_push(struct fuse_fs **fs, const char *modules, struct fuse_args *args);

/* Print the help of the built-in modules and of those named in modules. */
void hl_modules_help(const char *modules);

/* Free a stack of layers (not calling destroy: the session did). */
void hl_fs_free_stack(struct fuse_fs *fs);

#endif /* FUSEDAX_HIGHLEVEL_H */
