/*
 * The FUSE-over-io_uring transport's entry points for the session (option
 * parsing, INIT negotiation, teardown); the transport itself is in
 * lib/transport_uring.c.
 */
#ifndef FUSEDAX_URING_H
#define FUSEDAX_URING_H

#include <stdbool.h>
#include <stdint.h>

struct fuse_session;
struct transport_ops;

/** Entries per queue unless -o uring_queue_depth=N says otherwise. */
#define URING_DEFAULT_DEPTH 8
#define URING_MAX_DEPTH 1024

/** /dev/fuse for INIT and what the kernel keeps there, rings for the rest. */
extern const struct transport_ops transport_uring_ops;

/**
 * -o io_uring was given: returns the transport the session starts on
 * (transport_uring_ops, or the /dev/fuse one with a log line when this
 * build has no io_uring).
 */
const struct transport_ops *uring_requested(struct fuse_session *se);

/**
 * At INIT, before the reply: if the session asked for io_uring and the
 * kernel offered FUSE_OVER_IO_URING (kflags), build the rings, buffers and
 * threads (waiting) and return FUSE_OVER_IO_URING for the reply's flags;
 * otherwise log why and return 0 (the session keeps serving over /dev/fuse).
 */
uint64_t uring_negotiate(struct fuse_session *se, uint64_t kflags);

/** After the INIT reply was written: the queue threads register their entries. */
void uring_start(struct fuse_session *se);

/** Stop and join the queue threads, close the rings, free the buffers. */
void uring_stop(struct fuse_session *se);

#endif /* FUSEDAX_URING_H */
