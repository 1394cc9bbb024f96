/*
 * A small stand-in for the kernel, shared by the session-level unit tests:
 * runs a fuse_session on one end of a SOCK_SEQPACKET socketpair (through
 * fuse_session_custom_io) and lets the test build requests and read the
 * replies on the other end, one message per request or reply.
 */
#ifndef FUSEDAX_TEST_WIRE_CLIENT_H
#define FUSEDAX_TEST_WIRE_CLIENT_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse_kernel.h"
#include "fuse_lowlevel.h"

/* ------------------------------------------------------------------------
 * Checks: one printed line per failed check, counted for the summary.
 * --------------------------------------------------------------------- */
static int wc_failures;
static int wc_checks;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		wc_checks++;                                                   \
		if (!(cond)) {                                                 \
			wc_failures++;                                         \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);            \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
			fflush(stdout);                                        \
		}                                                              \
	} while (0)

#define CHECK_EQ_U64(got, want, what)                                          \
	CHECK((uint64_t)(got) == (uint64_t)(want), "%s: got %llu (0x%llx), want %llu (0x%llx)", \
	      what, (unsigned long long)(got), (unsigned long long)(got),      \
	      (unsigned long long)(want), (unsigned long long)(want))

/* Print the summary and return the exit status for main(). */
static inline int wc_summary(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, wc_checks, wc_failures);
	return wc_failures ? 1 : 0;
}

/* A hang is a failure, not a stuck test run. */
static void wc_watchdog_fired(int sig)
{
	static const char msg[] = "FAIL: watchdog: the test hung (session did not answer or end)\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

static inline void wc_watchdog(unsigned seconds)
{
	signal(SIGALRM, wc_watchdog_fired);
	alarm(seconds);
}

/* ------------------------------------------------------------------------
 * The custom I/O over a SEQPACKET socket: one message per call.
 * --------------------------------------------------------------------- */
static ssize_t wc_io_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n;

	(void)userdata;
	do
		n = recv(fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

static ssize_t wc_io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)count };

	(void)userdata;
	return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

/* ------------------------------------------------------------------------
 * A session served by a loop thread, and the test's end of the socket.
 * --------------------------------------------------------------------- */
struct wc {
	struct fuse_session *se;
	int fd;		/* the test's ("kernel's") end */
	int server_fd;	/* the session's end */
	pthread_t thread;
	bool running;
	atomic_int loop_done;
	int loop_ret;
	uint64_t next_unique;
};

static void *wc_loop_thread(void *arg)
{
	struct wc *c = arg;

	c->loop_ret = fuse_session_loop(c->se);
	atomic_store(&c->loop_done, 1);
	return NULL;
}

/*
 * Start a session with ops (and an optional DAX window) on a new socketpair.
 * Returns 0, or -1 after printing why.
 */
static inline int wc_start(struct wc *c, const struct fuse_lowlevel_ops *ops, size_t op_size,
			   void *userdata, struct fuse_dax_window *window)
{
	static const struct fuse_custom_io io = {
		.writev = wc_io_writev,
		.read = wc_io_read,
	};
	char *argv[] = { "wire_client", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	int sv[2];

	memset(c, 0, sizeof(*c));
	c->next_unique = 2; /* the kernel's uniques are even; odd marks INTERRUPT */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		printf("wire_client: socketpair: %s\n", strerror(errno));
		return -1;
	}
	c->fd = sv[0];
	c->server_fd = sv[1];
	c->se = fuse_session_new(&args, ops, op_size, userdata);
	fuse_opt_free_args(&args);
	if (!c->se) {
		printf("wire_client: fuse_session_new failed\n");
		goto out_close;
	}
	if (fuse_session_custom_io(c->se, &io, sizeof(io), c->server_fd) != 0) {
		printf("wire_client: fuse_session_custom_io failed\n");
		goto out_destroy;
	}
	if (window && fuse_session_set_dax_window(c->se, window) != 0) {
		printf("wire_client: fuse_session_set_dax_window failed\n");
		goto out_destroy;
	}
	if (pthread_create(&c->thread, NULL, wc_loop_thread, c) != 0) {
		printf("wire_client: pthread_create failed\n");
		goto out_destroy;
	}
	c->running = true;
	return 0;

out_destroy:
	fuse_session_destroy(c->se);
	c->se = NULL;
out_close:
	close(sv[0]);
	close(sv[1]);
	c->fd = c->server_fd = -1;
	return -1;
}

/* Wait up to timeout_ms for the loop to return on its own. */
static inline bool wc_wait_loop_end(struct wc *c, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 10) {
		if (atomic_load(&c->loop_done))
			return true;
		usleep(10000);
	}
	return atomic_load(&c->loop_done);
}

/*
 * End the session: hang up the test's end (the loop sees end of connection),
 * join the loop and destroy the session. Returns the loop's return value.
 */
static inline int wc_stop(struct wc *c)
{
	int ret = 0;

	if (c->fd >= 0) {
		shutdown(c->fd, SHUT_RDWR);
		close(c->fd);
		c->fd = -1;
	}
	if (c->running) {
		pthread_join(c->thread, NULL);
		c->running = false;
		ret = c->loop_ret;
	}
	if (c->se) {
		fuse_session_destroy(c->se);
		c->se = NULL;
	}
	if (c->server_fd >= 0) {
		close(c->server_fd);
		c->server_fd = -1;
	}
	return ret;
}

/* ------------------------------------------------------------------------
 * Requests.
 * --------------------------------------------------------------------- */

/* Send exactly len bytes as one message. Returns 0 or -errno. */
static inline int wc_send_raw(struct wc *c, const void *buf, size_t len)
{
	ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

/*
 * Build and send header + up to three pieces (fixed arg, names, data), with
 * the header's len field right. Returns the request's unique (0 on a send
 * error, which is reported as a failed check).
 */
static inline uint64_t wc_send3(struct wc *c, uint32_t opcode, uint64_t nodeid,
				const void *p1, size_t n1, const void *p2, size_t n2,
				const void *p3, size_t n3)
{
	size_t len = sizeof(struct fuse_in_header) + n1 + n2 + n3;
	struct fuse_in_header h = {
		.len = (uint32_t)len, .opcode = opcode, .unique = c->next_unique,
		.nodeid = nodeid, .uid = 0, .gid = 0, .pid = (uint32_t)getpid(),
	};
	char *buf = malloc(len);
	int res;

	if (!buf) {
		CHECK(0, "out of memory building a request");
		return 0;
	}
	c->next_unique += 2;
	memcpy(buf, &h, sizeof(h));
	if (n1)
		memcpy(buf + sizeof(h), p1, n1);
	if (n2)
		memcpy(buf + sizeof(h) + n1, p2, n2);
	if (n3)
		memcpy(buf + sizeof(h) + n1 + n2, p3, n3);
	res = wc_send_raw(c, buf, len);
	free(buf);
	CHECK(res == 0, "sending opcode %u: %s", opcode, strerror(-res));
	return res == 0 ? h.unique : 0;
}

static inline uint64_t wc_send(struct wc *c, uint32_t opcode, uint64_t nodeid,
			       const void *arg, size_t arglen)
{
	return wc_send3(c, opcode, nodeid, arg, arglen, NULL, 0, NULL, 0);
}

/* ------------------------------------------------------------------------
 * Replies.
 * --------------------------------------------------------------------- */
#define WC_REPLY_MAX (1 << 20)

struct wc_reply {
	struct fuse_out_header h;
	size_t len;		/* bytes received, header included */
	size_t plen;		/* payload bytes */
	unsigned char *payload;	/* points into buf */
	unsigned char buf[WC_REPLY_MAX];
};

/*
 * Receive one message within timeout_ms. Returns its length, 0 on end of
 * connection, -ETIMEDOUT when nothing came, or another -errno.
 */
static inline ssize_t wc_recv(struct wc *c, struct wc_reply *r, int timeout_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	int res;

	memset(&r->h, 0, sizeof(r->h));
	r->len = r->plen = 0;
	r->payload = r->buf + sizeof(struct fuse_out_header);
	do
		res = poll(&pfd, 1, timeout_ms);
	while (res < 0 && errno == EINTR);
	if (res < 0)
		return -errno;
	if (res == 0)
		return -ETIMEDOUT;
	n = recv(c->fd, r->buf, sizeof(r->buf), MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	r->len = (size_t)n;
	if ((size_t)n >= sizeof(r->h)) {
		memcpy(&r->h, r->buf, sizeof(r->h));
		r->plen = (size_t)n - sizeof(r->h);
	}
	return n;
}

/*
 * Receive the reply to unique and check its header: len field equal to the
 * bytes received, error == -err, unique echoed. With err != 0 the reply must
 * be a bare header. Returns true when the reply arrived with that header.
 */
static inline bool wc_expect(struct wc *c, struct wc_reply *r, uint64_t unique, int err,
			     const char *what)
{
	ssize_t n = wc_recv(c, r, 5000);

	if (n < (ssize_t)sizeof(struct fuse_out_header)) {
		CHECK(0, "%s: no reply (recv %zd: %s)", what, n,
		      n < 0 ? strerror((int)-n) : n == 0 ? "connection ended" : "short message");
		return false;
	}
	CHECK(r->h.unique == unique, "%s: reply unique %llu, want %llu", what,
	      (unsigned long long)r->h.unique, (unsigned long long)unique);
	CHECK(r->h.len == r->len, "%s: out_header.len %u but %zu bytes received", what,
	      r->h.len, r->len);
	CHECK(r->h.error == -err, "%s: error %d (%s), want %d (%s)", what, r->h.error,
	      strerror(-r->h.error), -err, strerror(err));
	if (err)
		CHECK(r->len == sizeof(struct fuse_out_header),
		      "%s: error reply carries %zu payload bytes", what, r->plen);
	return r->h.unique == unique && r->h.error == -err;
}

/* Check that nothing arrives within timeout_ms. */
static inline void wc_expect_silence(struct wc *c, struct wc_reply *r, int timeout_ms,
				     const char *what)
{
	ssize_t n = wc_recv(c, r, timeout_ms);

	CHECK(n == -ETIMEDOUT, "%s: expected no reply, got %zd bytes (unique %llu, error %d)",
	      what, n, (unsigned long long)r->h.unique, r->h.error);
}

/* ------------------------------------------------------------------------
 * INIT.
 * --------------------------------------------------------------------- */

/* Flags a current Linux client offers (without DAX). */
#define WC_INIT_FLAGS                                                          \
	((uint64_t)(FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | \
		    FUSE_BIG_WRITES | FUSE_DONT_MASK | FUSE_AUTO_INVAL_DATA |  \
		    FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |              \
		    FUSE_ASYNC_DIO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES |   \
		    FUSE_INIT_EXT))

/*
 * Send INIT 7.<minor> offering flags (bits 32..63 go to flags2) and return
 * its unique.
 */
static inline uint64_t wc_send_init(struct wc *c, uint32_t minor, uint64_t flags)
{
	struct fuse_init_in in;

	memset(&in, 0, sizeof(in));
	in.major = FUSE_KERNEL_VERSION;
	in.minor = minor;
	in.max_readahead = 128 * 1024;
	in.flags = (uint32_t)flags;
	in.flags2 = (uint32_t)(flags >> 32);
	return wc_send(c, FUSE_INIT, 0, &in, sizeof(in));
}

/* INIT and check the basic answer; *out receives the reply. */
static inline bool wc_init(struct wc *c, uint64_t flags, struct fuse_init_out *out)
{
	static struct wc_reply r;
	uint64_t u = wc_send_init(c, FUSE_KERNEL_MINOR_VERSION, flags);

	memset(out, 0, sizeof(*out));
	if (!wc_expect(c, &r, u, 0, "INIT"))
		return false;
	CHECK(r.plen == sizeof(*out), "INIT: reply payload %zu bytes, want %zu", r.plen,
	      sizeof(*out));
	memcpy(out, r.payload, r.plen < sizeof(*out) ? r.plen : sizeof(*out));
	CHECK(out->major == FUSE_KERNEL_VERSION, "INIT: major %u", out->major);
	return r.plen == sizeof(*out) && out->major == FUSE_KERNEL_VERSION;
}

/* The 64 bits of INIT flags the reply grants. */
static inline uint64_t wc_init_flags(const struct fuse_init_out *out)
{
	uint64_t f = out->flags;

	if (f & FUSE_INIT_EXT)
		f |= (uint64_t)out->flags2 << 32;
	return f;
}

/* ------------------------------------------------------------------------
 * Common requests.
 * --------------------------------------------------------------------- */

/* LOOKUP name (with its NUL) under parent. */
static inline uint64_t wc_lookup(struct wc *c, uint64_t parent, const char *name)
{
	return wc_send(c, FUSE_LOOKUP, parent, name, strlen(name) + 1);
}

static inline uint64_t wc_getattr(struct wc *c, uint64_t ino)
{
	struct fuse_getattr_in in;

	memset(&in, 0, sizeof(in));
	return wc_send(c, FUSE_GETATTR, ino, &in, sizeof(in));
}

#endif /* FUSEDAX_TEST_WIRE_CLIENT_H */
