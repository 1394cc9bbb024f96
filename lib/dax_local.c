/*
 * The local DAX window backend: the window is a PROT_NONE reservation in
 * this process that file ranges are mmap()ed over.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dax_window.h"

struct dax_local {
	char *base;
	uint64_t size;
};

/* mmap at a window offset; returns 0 or -errno. */
static int local_mmap(struct dax_local *l, uint64_t moffset, uint64_t len,
		      int prot, int flags, int fd, uint64_t foffset)
{
	if (mmap(l->base + moffset, len, prot, flags | MAP_FIXED, fd,
		 (off_t)foffset) == MAP_FAILED)
		return -errno;
	return 0;
}

static int local_map(void *backend, uint64_t moffset, uint64_t len, int fd,
		     uint64_t foffset, int prot)
{
	return local_mmap(backend, moffset, len, prot, MAP_SHARED, fd, foffset);
}

static int local_map_zero(void *backend, uint64_t moffset, uint64_t len,
			  int prot)
{
	return local_mmap(backend, moffset, len, prot,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* Back to the reservation: never munmap, or another mmap could land there. */
static int local_unmap(void *backend, uint64_t moffset, uint64_t len)
{
	return local_mmap(backend, moffset, len, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
}

static void local_destroy(void *backend)
{
	struct dax_local *l = backend;

	munmap(l->base, l->size);
	free(l);
}

static const struct fuse_dax_backend_ops dax_local_ops = {
	.map = local_map,
	.map_zero = local_map_zero,
	.unmap = local_unmap,
	.destroy = local_destroy,
};

int fuse_dax_window_new_local(uint64_t size, unsigned flags,
			      struct fuse_dax_window **out)
{
	uint64_t page = dax_page_size();
	struct dax_local *l;
	int err;

	if (!out || flags)
		return -EINVAL;
	if (size == 0 || size % page || (uint64_t)(size_t)size != size)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->size = size;
	l->base = mmap(NULL, size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (l->base == MAP_FAILED) {
		err = -errno;
		dax_log(DAX_LOG_ERR,
			"DAX window: reserving %llu bytes of address space failed: %s\n",
			(unsigned long long)size, strerror(-err));
		goto out_free;
	}
	err = fuse_dax_window_new(size, page, &dax_local_ops, l, out);
	if (err)
		goto out_unmap;
	dax_window_set_local(*out, l->base);
	dax_log(DAX_LOG_INFO, "DAX window: local, %llu bytes at %p\n",
		(unsigned long long)size, (void *)l->base);
	return 0;

out_unmap:
	munmap(l->base, size);
out_free:
	free(l);
	return err;
}
