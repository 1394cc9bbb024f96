/*
 * fusedax: the DAX window, the memory range a FUSE client maps file ranges
 * into (FUSE_SETUPMAPPING / FUSE_REMOVEMAPPING), with its mapping table.
 *
 * This file is part of the public API of libfusedax.
 */

#ifndef FUSE_DAX_H_
#define FUSE_DAX_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h> /* PROT_READ, PROT_WRITE */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Inode number as the kernel sends it. The same typedef appears in
 * fuse_lowlevel.h; repeating an identical typedef is legal in C11.
 */
typedef uint64_t fuse_ino_t;

/*
 * Flags of a SETUPMAPPING request, with the values they have on the wire
 * (FUSE_SETUPMAPPING_FLAG_WRITE and FUSE_SETUPMAPPING_FLAG_READ). A file
 * system turns them into a prot for fuse_dax_window_map(): WRITE set gives
 * PROT_READ | PROT_WRITE, otherwise PROT_READ.
 */
#define FUSE_DAX_MAP_WRITE (1 << 0)
#define FUSE_DAX_MAP_READ (1 << 1)

/*
 * One range of a REMOVEMAPPING request: window offset and length in bytes.
 * The removemapping member of struct fuse_lowlevel_ops receives an array of
 * these, already copied out of the request and validated.
 */
struct fuse_dax_range {
	uint64_t moffset;
	uint64_t len;
};

/**
 * A DAX window: a fixed-size range of memory, owned by this process (a
 * "local" window) or by a virtual machine monitor (a "remote" window), into
 * which ranges of host files are mapped. Opaque; all access goes through
 * the functions below. Every function is thread-safe: each window has one
 * lock, held across a whole change (table and backend calls), so a
 * teardown never races a setup of the same range.
 */
struct fuse_dax_window;

/**
 * A snapshot of one live mapping, as returned by fuse_dax_window_lookup()
 * and fuse_dax_window_find(). The copy does not change when the window
 * does.
 *
 * moffset, len:  the window range, in bytes.
 * ino:           the inode the caller named when it set the mapping up.
 * foffset:       the file offset that moffset shows.
 * prot:          PROT_READ or PROT_READ | PROT_WRITE.
 * file_len:      bytes from moffset that show the file. The remaining
 *                len - file_len bytes lie beyond the file's end (rounded up
 *                to a page) and are private pages that read as zeros;
 *                writes to them reach no file.
 */
struct fuse_dax_mapping {
	uint64_t moffset, len;
	fuse_ino_t ino;
	uint64_t foffset;
	int prot;
	uint64_t file_len;
};

/**
 * The operations a window backend implements: how a range of the window is
 * made to show a file, zeros, or nothing. The window validates every
 * argument and keeps the table; a backend only carries out the change.
 *
 * All offsets and lengths are multiples of the host page size and lie inside
 * the window. Every call is made with the window's lock held, so a backend
 * sees one call at a time per window; it must not call back into the window.
 * Each returns 0 or a negative errno.
 *
 * map:      make [moffset, moffset + len) show fd's bytes from foffset with
 *           the given prot (PROT_READ, or PROT_READ | PROT_WRITE), as a
 *           shared mapping, replacing whatever is there in place. The fd
 *           belongs to the window and stays open at least until this range
 *           is unmapped or replaced; the backend must not close it (it may
 *           dup() it, or pass it to another process).
 * map_zero: make the range show pages that read as zeros and never fault,
 *           with the given prot. Used for the part of a mapping beyond the
 *           file's end.
 * unmap:    return the range to the inaccessible reservation.
 *
 * When map or map_zero fails, the range must show what it showed before
 * (or, if the backend cannot undo a partial change, nothing less safe than
 * that): the window keeps its table for the range as it was, since the
 * client may still be using those pages.
 *
 * destroy:  release the backend; called once, by fuse_dax_window_destroy(),
 *           after every range has been unmapped. May be NULL.
 */
struct fuse_dax_backend_ops {
	int (*map)(void *backend, uint64_t moffset, uint64_t len, int fd,
		   uint64_t foffset, int prot);
	int (*map_zero)(void *backend, uint64_t moffset, uint64_t len,
			int prot);
	int (*unmap)(void *backend, uint64_t moffset, uint64_t len);
	void (*destroy)(void *backend);
};

/**
 * Create a local window: size bytes of this process's address space.
 *
 * The whole range is reserved at once with an inaccessible anonymous
 * mapping (PROT_NONE, MAP_NORESERVE), so it costs no memory until ranges
 * are mapped, and no other mmap() can land inside it while it exists.
 * Touching an unmapped part raises SIGSEGV. The alignment of a local
 * window is the host page size. On success the line
 * "DAX window: local, <size> bytes at <address>" is logged at
 * FUSE_LOG_INFO (tools parse it to find the window from outside).
 *
 * The library installs no signal handler. A window page never shows a file
 * page beyond the file's end while the file system follows the ordering
 * contract and the host file only changes size through it; another host
 * process that shrinks a mapped file makes the pages beyond the new end
 * fault (SIGBUS for a thread of this process that touches them, EFAULT for
 * process_vm_readv) until fuse_dax_window_revalidate() is called for the
 * new size (doc/dax.md, "Coherence with the host").
 *
 * @param size   window size in bytes; a non-zero multiple of the page size
 * @param flags  0 (no flag is defined)
 * @param out    receives the window; the caller owns it and frees it with
 *               fuse_dax_window_destroy()
 * @return 0, or -EINVAL (bad size or a non-zero flags), -ENOMEM (no address
 *         space or memory)
 */
int fuse_dax_window_new_local(uint64_t size, unsigned flags,
			      struct fuse_dax_window **out);

struct fuse_session;

/**
 * Create the window that fits the session's transport: a local window (as
 * fuse_dax_window_new_local()) on /dev/fuse, or, when the session serves a
 * VMM over vhost-user (-o vhost_user_socket=PATH, or a mount point
 * "vhost-user:PATH" given to fuse_session_mount()), a remote window whose
 * mappings the VMM carries out (vhost-user SHMEM_MAP / SHMEM_UNMAP) in the
 * device's DAX cache window; size should not exceed the VMM's cache size.
 * Call it after fuse_session_new() and before fuse_session_mount(); for the
 * vhost-user case the transport must be chosen by then (the option, or
 * fuse_session_new() arguments), since the mount point is not known yet.
 * The caller attaches it with fuse_session_set_dax_window() and frees it
 * with fuse_dax_window_destroy() after fuse_session_destroy().
 *
 * @return 0, or the errors of fuse_dax_window_new_local() / fuse_dax_window_new()
 */
int fuse_dax_window_new_for_session(struct fuse_session *se, uint64_t size,
				    unsigned flags, struct fuse_dax_window **out);

/**
 * Create a window driven by a backend, typically a remote one whose memory
 * belongs to another process (a VMM). The window keeps the table and
 * applies the same rules as a local window, and calls ops to change the
 * memory.
 *
 * @param size       window size in bytes; a non-zero multiple of alignment
 * @param alignment  the alignment of every moffset, foffset and len the
 *                   window accepts: a power of two, at least the page size
 * @param ops        the backend operations; map, map_zero and unmap are
 *                   required. The struct must stay valid (typically
 *                   static) for the window's lifetime.
 * @param backend    passed to every op. On success the window owns it and
 *                   calls ops->destroy(backend) from
 *                   fuse_dax_window_destroy(); on failure the caller still
 *                   owns it.
 * @param out        receives the window; the caller frees it with
 *                   fuse_dax_window_destroy()
 * @return 0, -EINVAL (bad size, alignment or ops), or -ENOMEM
 */
int fuse_dax_window_new(uint64_t size, uint64_t alignment,
			const struct fuse_dax_backend_ops *ops, void *backend,
			struct fuse_dax_window **out);

/**
 * Destroy a window: unmap every mapping, close the window's file
 * descriptors, destroy the backend (for a local window: release the
 * reservation) and free the window. Nothing may use the window, or touch
 * its memory, during or after this call. NULL is a no-op.
 */
void fuse_dax_window_destroy(struct fuse_dax_window *w);

/** The window's size in bytes. */
uint64_t fuse_dax_window_size(const struct fuse_dax_window *w);

/**
 * The window's alignment in bytes: every moffset, foffset and len passed to
 * the window must be a multiple of it. The page size for a local window.
 * A session reports it to the client in INIT (map_alignment is its log2).
 */
uint64_t fuse_dax_window_alignment(const struct fuse_dax_window *w);

/**
 * The address of a local window's first byte; NULL for a remote window.
 * The window owns the memory: it is valid until fuse_dax_window_destroy().
 */
void *fuse_dax_window_base(const struct fuse_dax_window *w);

/**
 * Map a file range into the window: [moffset, moffset + len) of the window
 * shows fd's bytes from foffset, the way the client's SETUPMAPPING asks.
 *
 * Only the part that lies within the file is mapped to the file: file
 * offsets up to the file's size rounded up to a page. The window pages
 * beyond that read as zeros and never fault (a shared mapping of a page
 * beyond a file's end raises SIGBUS in whoever touches it, so the window
 * never exposes one); fuse_dax_window_revalidate() maps them to the file
 * once it has grown.
 *
 * Whatever was mapped at the range before is replaced in place, with no
 * moment where the range is unmapped: a read mapping upgraded to read/write
 * is just a second call. A mapping that overlaps only partly is split; its
 * remaining pieces keep their own inode and file range.
 *
 * The window keeps its own duplicate of fd (close-on-exec) for as long as
 * any piece of this mapping lives, so it can map more of the file later;
 * the caller keeps, and may close, fd.
 *
 * The file's size is read at the start of the call and once more after
 * the mapping is in the window's table (another host process may change
 * the file meanwhile; a revalidate that starts after that second look sees
 * the new mapping). The caller must still keep its own operations from
 * shrinking the file until the call returns (step 1 of the ordering
 * contract: lock out truncation of the inode around a setup).
 *
 * @param w        the window
 * @param moffset  window offset; a multiple of the window's alignment
 * @param len      length; non-zero, a multiple of the alignment
 * @param fd       an open regular file: O_RDONLY or O_RDWR
 * @param ino      the inode this mapping belongs to; the window never
 *                 interprets it, it is the key for unmap_inode, find, clip
 *                 and revalidate
 * @param foffset  file offset; a multiple of the alignment
 * @param prot     PROT_READ or PROT_READ | PROT_WRITE
 * @return 0 on success, or:
 *   -EINVAL  len is zero, an offset or len is not aligned, prot is not
 *            one of the two values, foffset + len overflows, or fd is not
 *            a regular file
 *   -ERANGE  the range does not lie inside the window
 *   -EBADF   fd is not an open file descriptor, or is an O_PATH one
 *   -EACCES  fd was opened O_WRONLY, or PROT_WRITE was asked of an
 *            O_RDONLY fd
 *   -EMFILE, -ENOMEM, or the backend's error. If the backend of a local
 *            window fails, the range is left unmapped (anything mapped there
 *            before is gone from the window and its table); a backend given
 *            to fuse_dax_window_new() leaves a range it failed to change as
 *            it was, and the table keeps it.
 */
int fuse_dax_window_map(struct fuse_dax_window *w, uint64_t moffset,
			uint64_t len, int fd, fuse_ino_t ino, uint64_t foffset,
			int prot);

/**
 * Unmap a window range, the way the client's REMOVEMAPPING asks: every
 * mapping that overlaps [moffset, moffset + len) loses that part (a mapping
 * that overlaps partly is split or trimmed, and its rest stays mapped). The
 * range returns to the inaccessible reservation.
 *
 * @return 0, -EINVAL (len zero or not aligned), -ERANGE (not inside the
 *         window), -ENOENT (no mapping overlaps the range: nothing was
 *         done), or the backend's error (the parts the backend failed to
 *         unmap stay in the table).
 */
int fuse_dax_window_unmap(struct fuse_dax_window *w, uint64_t moffset,
			  uint64_t len);

/**
 * Unmap every mapping of inode ino, e.g. when the inode is forgotten.
 *
 * @return the number of mappings removed (0 if there were none), or the
 *         backend's negative errno (the mappings it failed to unmap stay).
 */
int fuse_dax_window_unmap_inode(struct fuse_dax_window *w, fuse_ino_t ino);

/**
 * Unmap every mapping, e.g. on FUSE_DESTROY or when the connection ends
 * (the client never removes its mappings then).
 *
 * @return the number of mappings removed, or the backend's negative errno
 *         (the mappings it failed to unmap stay).
 */
int fuse_dax_window_unmap_all(struct fuse_dax_window *w);

/**
 * Find the mapping that contains window offset moffset.
 *
 * @param out  receives a snapshot of the mapping
 * @return 0, or -ENOENT if no mapping contains moffset (out is untouched)
 */
int fuse_dax_window_lookup(struct fuse_dax_window *w, uint64_t moffset,
			   struct fuse_dax_mapping *out);

/**
 * Find the mappings of inode ino whose file range overlaps
 * [foffset, foffset + len) (the end saturates at UINT64_MAX; so
 * find(w, ino, 0, UINT64_MAX, ...) lists every mapping of ino). A file
 * system calls it to see which window ranges an extent change touches.
 *
 * @param out  array of max entries; receives snapshots of the first
 *             min(count, max) matches, in window order. May be NULL if max
 *             is 0.
 * The search is linear in the number of mappings in the window.
 *
 * @return the number of matches, which may exceed max (call again with a
 *         larger array to see them all); 0 if len is 0.
 */
int fuse_dax_window_find(struct fuse_dax_window *w, fuse_ino_t ino,
			 uint64_t foffset, uint64_t len,
			 struct fuse_dax_mapping *out, size_t max);

/**
 * Prepare the window for ino's file shrinking to size bytes (step 3 of the
 * ordering contract: call it after locking out new mappings of ino and
 * before truncating or punching the host file).
 *
 * In every mapping of ino, the window pages that show file offsets at or
 * beyond size rounded up to a page are replaced with zero pages (same
 * protection) and file_len shrinks accordingly. The page that holds the
 * new end stays mapped: the host kernel zeroes its tail. So no window page
 * will expose a page beyond the new end, and none shows the removed data.
 *
 * A hole punched (or a range zeroed) inside the file needs no window work:
 * the window maps the host file shared, so those pages read as zeros as
 * soon as the host file system frees the blocks, and a later store through
 * the window allocates them again. Only operations that move the end of
 * the file (truncate, collapse, insert) need this call and
 * fuse_dax_window_revalidate().
 *
 * @return the number of mappings changed, or the backend's negative errno
 *         (then some pages may still show the file: do not shrink it).
 */
int fuse_dax_window_clip(struct fuse_dax_window *w, fuse_ino_t ino,
			 uint64_t size);

/**
 * Make ino's mappings follow its file's real size (step 5 of the ordering
 * contract, and how a file system keeps up with other host processes that
 * change the file: doc/dax.md, "Coherence with the host").
 *
 * size is the size the caller knows, typically the one it is about to tell
 * the client (a reply to GETATTR or LOOKUP, after its own extending write).
 * If every mapping of ino already shows the file up to size, rounded up to
 * a page, and nothing beyond it, the call returns 0 at once: it takes only
 * a short lock of its own, never the lock held across backend calls, so it
 * is cheap enough for every reply that carries a size, and costs nothing
 * for an inode without mappings.
 *
 * Otherwise each mapping of ino is made to show its file up to the file's
 * real size, as fstat() reports it through the window's own descriptor at
 * that moment (rounded up to a page), mapping the file again from that
 * descriptor; the window pages beyond the real end become zero pages, as
 * with fuse_dax_window_clip(). A size smaller than the real one never
 * empties a page the file still has (a stale size from a racing fstat()
 * must not hide data), and a larger one never maps beyond the real end.
 *
 * Call it with the inode's extent changes locked out (the ordering
 * contract's per-inode lock, shared is enough): between a clip and the
 * host truncate it prepares, the file is still long, and a revalidate
 * would map the pages again.
 *
 * @return the number of mappings changed, or a negative errno (fstat's or
 *         the backend's; mappings already changed stay changed).
 */
int fuse_dax_window_revalidate(struct fuse_dax_window *w, fuse_ino_t ino,
			       uint64_t size);

#ifdef __cplusplus
}
#endif

#endif /* FUSE_DAX_H_ */
