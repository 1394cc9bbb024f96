/*
 * hello_ll: the smallest useful file system on fusedax's low-level API.
 * It shows one read-only file, "hello", containing "Hello World!\n".
 *
 *   build/example/hello_ll -f /mnt/hello     (-f: stay in the foreground)
 *   cat /mnt/hello
 *   fusermount3 -u /mnt/hello                (or Ctrl-C)
 *
 * Read it top to bottom: the callbacks first, then main(), which is the
 * same boilerplate every low-level file system has.
 */
#define FUSE_USE_VERSION 317

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * The low-level API names files by inode number, never by path. The kernel
 * learns a number from lookup() and uses it from then on. Number 1
 * (FUSE_ROOT_ID) is always the root directory; we pick 2 for our file.
 */
#define HELLO_INO 2

static const char hello_name[] = "hello";
static const char hello_data[] = "Hello World!\n";

/* Fills *st for one of our two inodes; -ENOENT for any other number. */
static int hello_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	switch (ino) {
	case FUSE_ROOT_ID:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	case HELLO_INO:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = sizeof(hello_data) - 1;
		return 0;
	default:
		return -ENOENT;
	}
}

/*
 * Every callback must answer its request exactly once with a fuse_reply_*
 * call. fuse_reply_err() takes a positive errno (0 for plain success).
 */

/* "Is there a name 'name' in directory 'parent'?" */
static void hello_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, hello_name) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = HELLO_INO;
	/* The kernel may cache the name and the attributes this long. Our
	 * content never changes, so a second is merely conservative. */
	e.entry_timeout = 1.0;
	e.attr_timeout = 1.0;
	hello_stat(HELLO_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void hello_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;	/* set only for fstat() on an open file */
	if (hello_stat(ino, &st) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_attr(req, &st, 1.0);
}

/*
 * Appends one entry to a readdir reply buffer if it fits. The offset we
 * store with an entry is where the *next* readdir call should resume, so
 * entry number i carries i + 1. Returns 0, or 1 when the buffer is full.
 */
static int add_entry(fuse_req_t req, char *buf, size_t size, size_t *used,
		     const char *name, fuse_ino_t ino, off_t next)
{
	struct stat st;
	size_t len;

	hello_stat(ino, &st);	/* only st_ino and the type bits are sent */
	len = fuse_add_direntry(req, buf + *used, size - *used, name, &st, next);
	if (*used + len > size)
		return 1;	/* it did not fit and was not written */
	*used += len;
	return 0;
}

/*
 * The kernel asks for at most 'size' bytes of entries, starting after the
 * entry whose offset was 'off' (0: from the start). A directory listing
 * may therefore take several calls; an empty reply means "no more".
 */
static void hello_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	static const struct {
		const char *name;
		fuse_ino_t ino;
	} entries[] = {
		{ ".", FUSE_ROOT_ID },
		{ "..", FUSE_ROOT_ID },
		{ hello_name, HELLO_INO },
	};
	size_t n = sizeof(entries) / sizeof(entries[0]);
	size_t used = 0, i;
	char *buf;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = off; i < n; i++)
		if (add_entry(req, buf, size, &used, entries[i].name,
			      entries[i].ino, i + 1))
			break;
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void hello_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	if (ino != HELLO_INO)
		fuse_reply_err(req, EISDIR);
	else if ((fi->flags & O_ACCMODE) != O_RDONLY)
		fuse_reply_err(req, EACCES);	/* the file is read-only */
	else
		fuse_reply_open(req, fi);	/* fi->fh unused: no state */
}

/* Reads past the end return fewer bytes, down to none: that is EOF. */
static void hello_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	size_t len = sizeof(hello_data) - 1;

	(void)ino;	/* open() let only HELLO_INO through */
	(void)fi;
	if ((size_t)off >= len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > len - off)
		size = len - off;
	fuse_reply_buf(req, hello_data + off, size);
}

/* Operations left NULL answer ENOSYS (or a harmless default). */
static const struct fuse_lowlevel_ops hello_ops = {
	.lookup = hello_lookup,
	.getattr = hello_getattr,
	.readdir = hello_readdir,
	.open = hello_open,
	.read = hello_read,
};

/* 0 if path is something other than a directory, after saying so on
 * stderr; else 1. A path we cannot stat passes: mounting reports why it
 * fails. "/dev/fd/N" (an fd a mount helper passed down) always passes. */
static int mountpoint_is_dir(const char *path)
{
	struct stat st;

	if (strncmp(path, "/dev/fd/", strlen("/dev/fd/")) == 0 ||
	    stat(path, &st) != 0)
		return 1;
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "hello_ll: bad mount point `%s': %s\n", path,
			strerror(ENOTDIR));
		return 0;
	}
	return 1;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_session *se;
	int ret = 1;

	/* Takes the generic options (-f, -d, -s, -h, -V, the mount point)
	 * out of args; mount options (-o ...) stay for fuse_session_new(). */
	if (fuse_parse_cmdline(&args, &opts) != 0)
		return 1;
	if (opts.show_help) {
		printf("usage: %s [options] <mountpoint>\n\n", argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (opts.show_version) {
		printf("FUSE library version %s\n", fuse_pkgversion());
		fuse_lowlevel_version();
		ret = 0;
		goto out_args;
	}
	if (!opts.mountpoint) {
		fprintf(stderr, "usage: %s [options] <mountpoint>\n", argv[0]);
		goto out_args;
	}

	/* Our root is a directory: the kernel takes the root's type from the
	 * mount point, so a file there would make every access fail (EIO). */
	if (!mountpoint_is_dir(opts.mountpoint))
		goto out_args;

	se = fuse_session_new(&args, &hello_ops, sizeof(hello_ops), NULL);
	if (!se)
		goto out_args;
	/* Ctrl-C and kill end the loop below instead of the process, so
	 * the unmount and cleanup after it still run. */
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	/* Mounted: only now may the parent exit (with 0) if we go to the
	 * background, so whoever started us can use the mount at once. */
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;

	/* Serve requests until the file system is unmounted or signalled.
	 * This file system keeps no state, so many threads are safe. */
	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *config = fuse_loop_cfg_create();

		if (!config)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(config, opts.clone_fd);
		fuse_loop_cfg_set_max_threads(config, opts.max_threads);
		fuse_loop_cfg_set_idle_threads(config, opts.max_idle_threads);
		ret = fuse_session_loop_mt(se, config);
		fuse_loop_cfg_destroy(config);
	}
	ret = ret ? 1 : 0;

out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
