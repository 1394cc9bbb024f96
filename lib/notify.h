/*
 * Private interface of lib/notify.c beyond what fuse_i.h declares: the poll
 * handle that the POLL handler in dispatch.c hands to the file system.
 */
#ifndef FUSEDAX_NOTIFY_H
#define FUSEDAX_NOTIFY_H

#include "fuse_i.h"

/**
 * Make a poll handle for the client's wakeup handle kh. Ownership passes to
 * the file system, which releases it with fuse_pollhandle_destroy().
 * Returns NULL when out of memory.
 */
struct fuse_pollhandle *notify_pollhandle_new(struct fuse_session *se, uint64_t kh);

#endif /* FUSEDAX_NOTIFY_H */
