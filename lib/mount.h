/*
 * The mount layer (private): parse the mount options out of a command line,
 * mount a FUSE file system (mount(2) as root, fusermount3 otherwise) and
 * unmount it. Used by the session's fuse_session_mount()/unmount().
 */
#ifndef FUSEDAX_MOUNT_H
#define FUSEDAX_MOUNT_H

#include "fuse_opt.h"

/* The parsed mount options; opaque outside lib/mount.c. */
struct mount_opts;

/*
 * Take the mount-related "-o" options out of args and return them parsed in
 * *out; every other argument stays in args for the session. Taken:
 * allow_other, allow_root, default_permissions, auto_unmount, fsname=,
 * subtype=, ro/rw, nosuid/suid, nodev/dev, noexec/exec, async/sync,
 * atime/noatime, diratime/nodiratime, relatime/norelatime,
 * strictatime/nostrictatime, lazytime/nolazytime, dirsync, max_read=,
 * blksize=, context=, fscontext=, defcontext=, rootcontext=, and x-* (kept
 * for no one: they are for mount helpers, not the kernel).
 * nosuid and nodev are on unless suid/dev are given.
 * Returns 0, or a negative errno after logging the cause; *out is then NULL.
 * The caller frees *out with mount_opts_free().
 */
int mount_opts_parse(struct fuse_args *args, struct mount_opts **out);

/* Free mo (NULL is fine). Call it only after mount_unmount(). */
void mount_opts_free(struct mount_opts *mo);

/* The -o max_read= the client was mounted with, or 0 (no limit). */
unsigned int mount_opts_max_read(const struct mount_opts *mo);

/* allow_root was given: the session must refuse requests from users other
 * than the mount's owner and root (the kernel was told allow_other). */
int mount_opts_allow_root(const struct mount_opts *mo);

/*
 * Mount a FUSE file system at mountpoint and return its /dev/fuse fd
 * (close-on-exec), or a negative errno after logging what failed on which
 * mount point.
 *
 * mountpoint "/dev/fd/N": N must be an open fd, which is returned as is and
 * nothing is mounted; the caller already holds a connection (a socketpair
 * in tests, or an fd a mount helper passed down) and keeps owning it.
 *
 * Otherwise mountpoint must be an existing directory (or a regular file,
 * for a file mount). With the privilege to mount, /dev/fuse is opened and
 * mount(2)ed directly (type fuse.<subtype>, source fsname or "fusedax");
 * without it (EPERM/EACCES), and always for auto_unmount, the setuid
 * fusermount3 (from PATH, else /usr/bin/fusermount3) mounts and passes the
 * fd back over a socket. With auto_unmount that fusermount3 stays alive
 * until mount_unmount() or this process's death, and unmounts then; an
 * unprivileged process also starts a watcher of its own that does the same
 * (fusermount3 before 3.15 cannot unmount a user's mount by itself).
 * mo must stay valid until mount_unmount() for the same mount.
 */
int mount_fuse(const char *mountpoint, const struct mount_opts *mo);

/*
 * Undo mount_fuse(): unmount lazily (umount2(MNT_DETACH) when privileged,
 * "fusermount3 -u -q -z" otherwise, or by letting the auto_unmount helper
 * go) and close fd. When the connection has already ended (someone else
 * unmounted the file system) only fd is closed: whatever the mount point
 * shows now is not ours to unmount. For a "/dev/fd/N" mount point nothing
 * is unmounted and fd is NOT closed: it belongs to the caller. A negative
 * fd is ignored.
 */
void mount_unmount(const char *mountpoint, int fd, const struct mount_opts *mo);

#endif /* FUSEDAX_MOUNT_H */
