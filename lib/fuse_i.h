/*
 * Private definitions shared by the session layer (session.c, init.c,
 * dispatch.c, reply.c, notify.c), the transports and the loops. Nothing here
 * is visible to file systems.
 */
#ifndef FUSEDAX_FUSE_I_H
#define FUSEDAX_FUSE_I_H

#include "fuse_kernel.h"
#include "fuse_lowlevel.h"
#include "wire.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

struct fuse_chan;
struct mount_opts;
struct uring_pool;
struct vu_dev;

/*
 * A transport moves whole request and reply messages. It knows nothing of
 * opcodes; the session never asks which transport it runs on.
 */
struct transport_ops {
	/** Shown in debug output at INIT ("dev_fuse", "custom_io", ...). */
	const char *name;
	/**
	 * Read one whole request into buf. Returns its length, 0 when the
	 * connection has ended, or a negative errno: -EINTR/-EAGAIN/-ENOENT
	 * mean "try again", anything else ends the loop.
	 */
	ssize_t (*receive)(struct fuse_chan *ch, void *buf, size_t size);
	/**
	 * Send one whole message (reply or notification). Returns 0 or a
	 * negative errno; -ENOENT means the client dropped the request
	 * (interrupted) and is not an error.
	 */
	int (*send)(struct fuse_chan *ch, const struct iovec *iov, int count);
	/**
	 * Optional: make a new channel on the same connection for one worker
	 * thread (FUSE_DEV_IOC_CLONE). Returns 0 or a negative errno.
	 */
	int (*clone)(struct fuse_chan *master, struct fuse_chan **out);
	/** Release a channel made by clone (not the master). */
	void (*release)(struct fuse_chan *ch);
	/**
	 * Optional (FUSE passthrough): register fd as a backing file on the
	 * connection; returns its backing id (> 0) or a negative errno.
	 * NULL: the transport has no backing files (lib/passthrough.c).
	 */
	int (*backing_open)(struct fuse_chan *master, int fd);
	/** Drop a backing id; 0 or a negative errno. */
	int (*backing_close)(struct fuse_chan *master, int backing_id);
};

/*
 * A transport class: how a session comes to run on a transport. The
 * registry (lib/transport.c) lists them. fuse_session_new() lets each take
 * its options out of the command line; fuse_parse_cmdline() and
 * fuse_session_mount() recognise a mount point that names one
 * ("SCHEME" or "SCHEME:ARG"). Either way the transport is known before the
 * file system creates a DAX window. The session calls only these hooks
 * and never names a transport.
 */
struct transport_class {
	/** For messages: "dev_fuse", "io_uring", "vhost_user". */
	const char *name;
	/** A mount point "SCHEME" or "SCHEME:ARG" selects it; NULL: none. */
	const char *scheme;
	/**
	 * The option "SCHEME:ARG" stands for, without its value
	 * ("vhost_user_socket="): fuse_parse_cmdline() adds it with ARG, so
	 * that fuse_session_new() sees the choice. NULL: none.
	 */
	const char *scheme_option;
	/** Its lines of fuse_lowlevel_help(), or NULL. */
	const char *help;
	/** The data path a session starts on, or NULL (mount sets se->tp). */
	const struct transport_ops *ops;
	/** The client can reach a DAX window in this process's memory. */
	bool local_dax_window;
	/**
	 * Take this transport's options out of args. Returns 1 when they
	 * select this transport, 0 when they do not, or a negative errno after
	 * logging why. NULL: it has no options.
	 */
	int (*parse)(struct fuse_session *se, struct fuse_args *args);
	/**
	 * Connect for mountpoint (as given to fuse_session_mount(), which set
	 * se->mountpoint to a copy); set se->tp and se->master. 0 or a
	 * negative errno after logging what failed on what.
	 */
	int (*mount)(struct fuse_session *se, const char *mountpoint);
	/** Undo mount (se->mountpoint is still set). */
	void (*unmount)(struct fuse_session *se);
	/** Optional: extra flags for the INIT reply (kflags: what the client offered). */
	uint64_t (*init_negotiate)(struct fuse_session *se, uint64_t kflags);
	/** Optional: the INIT reply went out. */
	void (*init_done)(struct fuse_session *se);
	/** Optional: first step of fuse_session_destroy() (stop threads). */
	void (*stop)(struct fuse_session *se);
	/** Optional: free what parse or mount allocated (any time, even unused). */
	void (*free)(struct fuse_session *se);
};

/** One endpoint of the connection: the master fd or a worker's clone. */
struct fuse_chan {
	struct fuse_session *se;
	int fd;
	/** Owned by the transport (e.g. custom io userdata). */
	void *priv;
	/**
	 * References of a channel a loop cloned (its worker plus each request
	 * read from it, which may be answered after the worker left); 0 for
	 * channels that live as long as the session (the master, ring entries).
	 */
	atomic_int refs;
};

/* Keep a counted channel alive for one more user (no-op if uncounted). */
static inline void chan_get(struct fuse_chan *ch)
{
	if (ch && atomic_load(&ch->refs) > 0)
		atomic_fetch_add(&ch->refs, 1);
}

/* Drop a reference; the last one releases the channel to its transport. */
void chan_put(struct fuse_session *se, struct fuse_chan *ch);

/* Room for the request header and arguments in front of WRITE data. */
#define SESSION_HEADER_ROOM 4096

/** A request in flight, from decode to reply. */
struct fuse_req {
	struct fuse_session *se;
	/** Channel the reply goes out on; owned by the loop that read it. */
	struct fuse_chan *ch;
	uint64_t unique;
	uint32_t opcode;
	struct fuse_ctx ctx;
	/* Interrupt state, guarded by se->lock. */
	fuse_interrupt_func_t interrupt_func;
	void *interrupt_data;
	bool interrupted;
	/* In-flight list for INTERRUPT lookup, guarded by se->lock. */
	struct fuse_req *next, *prev;
	bool listed;
};

/** A pending fuse_lowlevel_notify_retrieve(): its cookie and unique. */
struct retrieve_wait {
	uint64_t unique;
	void *cookie;
	struct retrieve_wait *next;
};

struct fuse_session {
	struct fuse_lowlevel_ops op;
	void *userdata;

	/* Transport and connection. */
	const struct transport_class *tc;
	const struct transport_ops *tp;
	struct fuse_chan master;
	struct fuse_custom_io custom_io;
	char *mountpoint;
	struct mount_opts *mo;
	bool owns_fd;

	/* Negotiated state. */
	struct fuse_conn_info conn;
	struct wire_limits limits;
	bool got_init;
	bool got_destroy;
	/** A second INIT starts a new session instead of being refused. */
	bool reinit_allowed;
	/** Size of one receive buffer (max_write plus header room). */
	size_t bufsize;

	/* Options from fuse_session_new. */
	bool debug;
	/** allow_root: refuse requests from users other than root and owner. */
	bool deny_others;
	/** A /dev/fd/N socket whose buffers stay small: max_write cap, or 0. */
	size_t socket_max_write;
	uid_t owner;

	/* DAX window (not owned). */
	struct fuse_dax_window *dax;

	/* FUSE-over-io_uring (lib/transport_uring.c): rings once negotiated. */
	struct uring_pool *uring;
	/** -o uring_queue_depth=N, 0 for the default. */
	unsigned int uring_depth;
	/*
	 * The kernel's possible CPUs, read from /sys when io_uring is asked
	 * for: a sandboxed server (passthrough_dax) has no /sys by INIT.
	 */
	int uring_cpus;

	/* vhost-user-fs (lib/transport_vhost_user.c), or NULL. */
	struct vu_dev *vu;

	/* A CUSE device's session (lib/cuse.c), or NULL. Owned. */
	struct cuse_data *cuse;

	/* FUSE passthrough (lib/passthrough.c): "unavailable" said once, and
	 * the last errno a backing file was refused with (said once each). */
	atomic_bool passthrough_refusal_logged;
	atomic_int passthrough_refusal_errno;

	/* Loop state. */
	atomic_int exited;
	int error;

	pthread_mutex_t lock;
	struct fuse_req inflight; /* list head */
	struct retrieve_wait *retrieves;
	uint64_t notify_unique;
};

/* session.c */
/** Decode, validate and dispatch one message read from ch. */
void session_process(struct fuse_session *se, struct fuse_chan *ch, const void *buf,
		     size_t len);
/** End the session's loops with an error code (negative errno or 0). */
void session_fail(struct fuse_session *se, int err);
/** At INIT: the transport's extra reply flags (0 if none), then its hook after the reply. */
uint64_t session_transport_negotiate(struct fuse_session *se, uint64_t kflags);
void session_transport_init_done(struct fuse_session *se);

/* init.c */
void session_do_init(fuse_req_t req, const struct wire_req *w);
/* The file system's destroy, once per INIT (a DESTROY, the end, a new INIT). */
void session_call_destroy(struct fuse_session *se);
/** Capability bits <-> kernel INIT flags. */
uint64_t init_caps_from_kernel(uint64_t kflags);
uint64_t init_kernel_from_caps(uint64_t caps);

/* reply.c */
/**
 * Send a reply for req: header (error as a positive errno or 0) plus
 * payload iovecs, then free req. Returns 0 or a negative errno.
 */
int reply_send(fuse_req_t req, int error, const struct iovec *payload, int count);
/** Free a request without answering it (no-reply opcodes). */
void req_free(fuse_req_t req);
/** Fill a fuse_attr from a struct stat. */
void reply_fill_attr(struct fuse_attr *attr, const struct stat *st, uint32_t flags);
/** Convert a timeout in seconds to the wire's (sec, nsec) pair. */
void reply_timeout(double t, uint64_t *sec, uint32_t *nsec);

/* notify.c */
/** Send a notification (code, payload) with unique 0. */
int notify_send(struct fuse_session *se, int code, const struct iovec *payload, int count);
/** Match a NOTIFY_REPLY to its retrieve cookie; true if found (cookie set). */
bool notify_take_retrieve(struct fuse_session *se, uint64_t unique, void **cookie);

/* dispatch.c: the handlers named in opcodes.def. */
#define OPCODE(num, name, type, shape, flags)                                  \
	void do_##name(fuse_req_t req, const struct wire_req *w);
#include "opcodes.def"
#undef OPCODE

/* cuse.c */
/** Free what cuse_lowlevel_new() attached to the session. */
void cuse_data_free(struct cuse_data *cd);

/* transport.c: the registry. */
/** Every transport class, NULL-terminated; the first is the default. */
extern const struct transport_class *const transport_classes[];
/** The class whose scheme mountpoint names ("SCHEME" or "SCHEME:..."), or NULL. */
const struct transport_class *transport_for_mountpoint(const char *mountpoint);

/* transport_*.c: the classes, and the /dev/fuse data path uring reuses. */
extern const struct transport_class transport_dev_class;
extern const struct transport_class transport_uring_class;
extern const struct transport_class transport_vhost_user_class;
extern const struct transport_ops transport_dev_ops;
/** Mount on /dev/fuse (or take /dev/fd/N): the dev and io_uring classes' mount. */
int transport_dev_mount(struct fuse_session *se, const char *mountpoint);
void transport_dev_unmount(struct fuse_session *se);

/* loop.c / loop_mt.c */
/** Receive buffer for one worker, page aligned. */
void *loop_alloc_buffer(struct fuse_session *se);

/* lib/signals.c: what a library thread blocks (all but fault/trap signals) */
void signals_fill_blockable(sigset_t *set);

#endif /* FUSEDAX_FUSE_I_H */
