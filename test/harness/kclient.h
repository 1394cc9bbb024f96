/*
 * kclient: a user-space stand-in for the Linux FUSE DAX client. This header
 * is the connection half (kclient_conn.c): spawn a server on a socketpair,
 * send requests and wait for replies from many threads, and reach the
 * server's DAX window with process_vm_readv/writev.
 */
#ifndef KCLIENT_H_
#define KCLIENT_H_

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "fuse_kernel.h"

/* The size of the DAX ranges the Linux client maps: 2 MiB. */
#define KC_RANGE_SHIFT 21
#define KC_RANGE_SIZE (1ULL << KC_RANGE_SHIFT)

/* Largest reply payload we accept (reads are kept well below this). */
#define KC_MAX_REPLY (512 * 1024)

/* The argument of the server's command line replaced by "/dev/fd/N". */
#define KC_MOUNT_PLACEHOLDER "@MNT@"

/* How long a request may wait for its reply before we call it a deadlock. */
#define KC_DEFAULT_TIMEOUT_MS 30000

/* One request waiting for its reply; lives on the caller's stack. */
struct kc_call {
	uint64_t unique;
	uint32_t opcode;
	uint64_t nodeid;
	void *out;		/* reply payload goes here ... */
	size_t outmax;		/* ... up to this many bytes */
	size_t outlen;		/* payload length the server sent */
	int error;		/* out_header.error (0 or -errno) */
	int done;
	struct timespec sent;	/* CLOCK_MONOTONIC */
	pthread_cond_t cond;
	struct kc_call *next;
};

struct kc_conn {
	int fd;			/* our end of the socketpair */
	pid_t server_pid;
	int server_exited;	/* waitpid() reaped it (kc_shutdown, kc_kill) */
	int server_status;
	int err_fd;		/* read end of the server's stderr */
	int quiet;		/* do not forward the server's stderr */
	int timeout_ms;		/* per request; KC_DEFAULT_TIMEOUT_MS */
	pthread_t rx_thread, err_thread;

	pthread_mutex_t lock;	/* guards everything below */
	struct kc_call *pending;
	uint64_t next_unique;
	int dead;		/* the connection ended; no more replies */
	int timed_out;		/* a request timed out: the server was killed */
	int protocol_errors;	/* replies that broke the protocol */
	uint64_t notifications;

	/* The window, from the server's "DAX window: local, ..." line. */
	pthread_cond_t win_cond;
	int win_known;
	int err_eof;		/* the server's stderr closed */
	uint64_t win_size;
	uintptr_t win_addr;
	pid_t win_pid;		/* whose memory the window is: the serving process */
};

/* The name of a FUSE opcode, for messages ("op<N>" if unknown). */
const char *kc_opname(uint32_t opcode);

/*
 * Spawn argv[0] with argv (an argument equal to KC_MOUNT_PLACEHOLDER is
 * replaced by "/dev/fd/N" for the server's end of the socketpair),
 * connected to c. Starts the reply and stderr reader threads.
 * Returns 0 or a negative errno.
 */
int kc_spawn(struct kc_conn *c, char *const argv[]);

/*
 * Send one request and wait for its reply. in/nin is the argument after the
 * in_header. Returns the reply's error (0 or -errno), -ENOTCONN if the
 * connection ended, -ETIMEDOUT if no reply came within c->timeout_ms (the
 * pending requests are then dumped and the server is killed), or -EPROTO
 * for a reply that broke the protocol. *outlen (may be NULL) receives the
 * payload length.
 */
int kc_call(struct kc_conn *c, uint32_t opcode, uint64_t nodeid,
	    const struct iovec *in, int nin, void *out, size_t outmax,
	    size_t *outlen);

/* Send a request that has no reply (FORGET). 0 or a negative errno. */
int kc_send_noreply(struct kc_conn *c, uint32_t opcode, uint64_t nodeid,
		    const struct iovec *in, int nin);

/* Wait up to timeout_ms for the window line; 0 or -ETIMEDOUT. */
int kc_wait_window(struct kc_conn *c, int timeout_ms);

/*
 * Copy between the server's window and buf. 0 on success; -EFAULT if any
 * byte could not be reached (the page would have faulted: SIGBUS beyond a
 * file's end, unmapped, or a write to a read-only mapping), or another
 * negative errno.
 */
int kc_window_read(struct kc_conn *c, uint64_t moffset, void *buf, size_t len);
int kc_window_write(struct kc_conn *c, uint64_t moffset, const void *buf,
		    size_t len);

/* Print every request still waiting for a reply (for a deadlock dump). */
void kc_dump_pending(struct kc_conn *c);

/* Is the server still running? 1 yes, 0 it exited (status in c). */
int kc_server_alive(struct kc_conn *c);

/*
 * Close our end, then reap the server (SIGKILL after timeout_ms).
 * Returns 0 if the server exited by itself with status 0, else -1 (the
 * reason is printed).
 */
int kc_shutdown(struct kc_conn *c, int timeout_ms);

/* Kill the server at once (used on a deadlock). */
void kc_kill(struct kc_conn *c);

#endif /* KCLIENT_H_ */
