/*
 * Private interface between the DAX window table (dax_window.c) and its
 * local mmap backend (dax_local.c), plus a self-check the unit test uses.
 */

#ifndef DAX_WINDOW_H_
#define DAX_WINDOW_H_

#include "fuse_dax.h"

/*
 * The one logging macro of the DAX modules. Until the library's fuse_log.h
 * exists (or when the modules are built standalone with -DDAX_LOG_STDERR),
 * messages go to stderr; the library never prints to stdout.
 */
#if !defined(DAX_LOG_STDERR) && __has_include("fuse_log.h")
#include "fuse_log.h"
#define DAX_LOG_ERR FUSE_LOG_ERR
#define DAX_LOG_WARNING FUSE_LOG_WARNING
#define DAX_LOG_INFO FUSE_LOG_INFO
#define DAX_LOG_DEBUG FUSE_LOG_DEBUG
#define dax_log(level, ...) fuse_log(level, __VA_ARGS__)
#else
#include <stdio.h>
#define DAX_LOG_ERR 3
#define DAX_LOG_WARNING 4
#define DAX_LOG_INFO 6
#define DAX_LOG_DEBUG 7
#define dax_log(level, ...) ((void)(level), fprintf(stderr, __VA_ARGS__))
#endif

/* The host page size: the granularity of every backend call. */
uint64_t dax_page_size(void);

/*
 * Called by fuse_dax_window_new_local() right after fuse_dax_window_new():
 * records the local address (fuse_dax_window_base()).
 */
void dax_window_set_local(struct fuse_dax_window *w, void *base);

/*
 * Check the table's invariants: sorted, non-overlapping, inside the window,
 * file_len <= len, every piece page-aligned; and the per-inode index that
 * revalidate's fast path reads: one record per mapped inode, with its exact
 * number of entries, no change under way, and bounds that cover every
 * entry. Returns 0 or -EUCLEAN, logging what is wrong. For tests.
 */
int dax_window_check(struct fuse_dax_window *w);

#endif /* DAX_WINDOW_H_ */
