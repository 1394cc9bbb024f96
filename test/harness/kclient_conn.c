/*
 * kclient connection: runs a FUSE server as a child process on a
 * SOCK_SEQPACKET socketpair (its mount point argument is "/dev/fd/N") and
 * plays the kernel's side of the wire: numbered requests from many threads,
 * replies matched by unique, and window access with process_vm_readv/writev.
 */
#include "kclient.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

const char *kc_opname(uint32_t opcode)
{
	static __thread char other[16];

	switch (opcode) {
	case FUSE_LOOKUP: return "LOOKUP";
	case FUSE_FORGET: return "FORGET";
	case FUSE_GETATTR: return "GETATTR";
	case FUSE_SETATTR: return "SETATTR";
	case FUSE_OPEN: return "OPEN";
	case FUSE_READ: return "READ";
	case FUSE_WRITE: return "WRITE";
	case FUSE_RELEASE: return "RELEASE";
	case FUSE_FLUSH: return "FLUSH";
	case FUSE_INIT: return "INIT";
	case FUSE_CREATE: return "CREATE";
	case FUSE_DESTROY: return "DESTROY";
	case FUSE_FALLOCATE: return "FALLOCATE";
	case FUSE_SETUPMAPPING: return "SETUPMAPPING";
	case FUSE_REMOVEMAPPING: return "REMOVEMAPPING";
	default:
		snprintf(other, sizeof(other), "op%u", opcode);
		return other;
	}
}

static double elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) +
	       (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* ---- the reply reader ---- */

static struct kc_call *unlink_call(struct kc_conn *c, uint64_t unique)
{
	for (struct kc_call **p = &c->pending; *p; p = &(*p)->next) {
		if ((*p)->unique == unique) {
			struct kc_call *call = *p;

			*p = call->next;
			return call;
		}
	}
	return NULL;
}

static void protocol_error(struct kc_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* With c->lock held. */
static void protocol_error(struct kc_conn *c, const char *fmt, ...)
{
	va_list ap;

	c->protocol_errors++;
	fprintf(stderr, "kc: protocol error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* One reply message of n bytes; with c->lock held. */
static void deliver_reply(struct kc_conn *c, const char *msg, ssize_t n)
{
	struct fuse_out_header oh;
	struct kc_call *call;
	size_t payload;

	if (n < (ssize_t)sizeof(oh)) {
		protocol_error(c, "a %zd-byte reply is shorter than its header", n);
		return;
	}
	memcpy(&oh, msg, sizeof(oh));
	if (oh.len != (uint32_t)n) {
		protocol_error(c, "reply unique %llu: header says %u bytes, message has %zd",
			       (unsigned long long)oh.unique, oh.len, n);
		return;
	}
	if (oh.unique == 0) {
		c->notifications++;
		return;
	}
	call = unlink_call(c, oh.unique);
	if (!call) {
		protocol_error(c, "reply to unknown unique %llu (error %d)",
			       (unsigned long long)oh.unique, oh.error);
		return;
	}
	payload = (size_t)n - sizeof(oh);
	call->error = oh.error;
	if (oh.error > 0 || oh.error < -4095) {
		protocol_error(c, "%s unique %llu: error %d is not a negative errno",
			       kc_opname(call->opcode), (unsigned long long)oh.unique, oh.error);
		call->error = -EPROTO;
	} else if (oh.error != 0 && payload) {
		protocol_error(c, "%s unique %llu: error reply %d carries %zu payload bytes",
			       kc_opname(call->opcode), (unsigned long long)oh.unique,
			       oh.error, payload);
		call->error = -EPROTO;
	} else if (payload > call->outmax) {
		protocol_error(c, "%s unique %llu: %zu payload bytes, at most %zu expected",
			       kc_opname(call->opcode), (unsigned long long)oh.unique,
			       payload, call->outmax);
		call->error = -EPROTO;
	} else if (payload) {
		memcpy(call->out, msg + sizeof(oh), payload);
	}
	call->outlen = payload;
	call->done = 1;
	pthread_cond_signal(&call->cond);
}

static void *rx_main(void *arg)
{
	struct kc_conn *c = arg;
	size_t size = KC_MAX_REPLY + sizeof(struct fuse_out_header);
	char *msg = malloc(size);
	ssize_t n;

	for (;;) {
		if (!msg)
			break;
		n = recv(c->fd, msg, size, MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		pthread_mutex_lock(&c->lock);
		if ((size_t)n > size)
			protocol_error(c, "a %zd-byte reply is larger than any we ask for", n);
		else
			deliver_reply(c, msg, n);
		pthread_mutex_unlock(&c->lock);
	}
	free(msg);
	pthread_mutex_lock(&c->lock);
	c->dead = 1;
	for (struct kc_call *call = c->pending; call; call = call->next) {
		call->error = -ENOTCONN;
		call->done = 1;
		pthread_cond_signal(&call->cond);
	}
	c->pending = NULL;
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- the server's stderr: forward it, and find the window line ---- */

static void parse_window_line(struct kc_conn *c, const char *line)
{
	const char *p = strstr(line, "DAX window: local, ");
	unsigned long long size;
	void *addr;

	if (!p || sscanf(p, "DAX window: local, %llu bytes at %p", &size, &addr) != 2)
		return;
	pthread_mutex_lock(&c->lock);
	c->win_size = size;
	c->win_addr = (uintptr_t)addr;
	c->win_known = 1;
	pthread_cond_broadcast(&c->win_cond);
	pthread_mutex_unlock(&c->lock);
}

static void *err_main(void *arg)
{
	struct kc_conn *c = arg;
	char buf[8192];
	size_t have = 0;
	ssize_t n;

	for (;;) {
		char *nl;

		n = read(c->err_fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			parse_window_line(c, buf);
			if (!c->quiet)
				fprintf(stderr, "[server] %s\n", buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
		if (have == sizeof(buf) - 1) {	/* an endless line: flush it */
			if (!c->quiet)
				fprintf(stderr, "[server] %s\n", buf);
			have = 0;
		}
	}
	pthread_mutex_lock(&c->lock);
	c->err_eof = 1;
	pthread_cond_broadcast(&c->win_cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- spawning ---- */

static void exec_server(char *const argv[], int server_fd, int err_wr)
{
	char mnt[32];
	size_t argc = 0;
	char **args;
	int fd;

	/* The server's end must survive exec: dup() drops close-on-exec. */
	fd = dup(server_fd);
	if (fd < 0)
		_exit(127);
	snprintf(mnt, sizeof(mnt), "/dev/fd/%d", fd);
	while (argv[argc])
		argc++;
	args = calloc(argc + 1, sizeof(*args));
	if (!args)
		_exit(127);
	for (size_t i = 0; i < argc; i++)
		args[i] = strcmp(argv[i], KC_MOUNT_PLACEHOLDER) == 0 ? mnt : argv[i];
	dup2(err_wr, STDERR_FILENO);
	dup2(err_wr, STDOUT_FILENO);
	/* If we die, the server must not outlive us. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	execvp(args[0], args);
	fprintf(stderr, "kc: cannot run %s: %s\n", args[0], strerror(errno));
	_exit(127);
}

int kc_spawn(struct kc_conn *c, char *const argv[])
{
	int sv[2], errpipe[2];
	pid_t pid;
	int err;

	memset(c, 0, sizeof(*c));
	c->fd = c->err_fd = -1;
	c->next_unique = 2;	/* the kernel's uniques are even; any non-zero works */
	c->timeout_ms = KC_DEFAULT_TIMEOUT_MS;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->win_cond, NULL);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		err = -errno;
		goto out_sock;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		goto out_pipe;
	}
	if (pid == 0)
		exec_server(argv, sv[1], errpipe[1]);
	close(sv[1]);
	close(errpipe[1]);
	c->fd = sv[0];
	c->err_fd = errpipe[0];
	c->server_pid = pid;
	pthread_create(&c->rx_thread, NULL, rx_main, c);
	pthread_create(&c->err_thread, NULL, err_main, c);
	return 0;

out_pipe:
	close(errpipe[0]);
	close(errpipe[1]);
out_sock:
	close(sv[0]);
	close(sv[1]);
	return err;
}

/* ---- requests ---- */

static int send_request(struct kc_conn *c, struct fuse_in_header *ih,
			const struct iovec *in, int nin)
{
	struct iovec iov[8];
	struct msghdr mh = { .msg_iov = iov };
	size_t len = sizeof(*ih);
	ssize_t n;

	if (nin > 7)
		return -EINVAL;
	iov[0].iov_base = ih;
	iov[0].iov_len = sizeof(*ih);
	for (int i = 0; i < nin; i++) {
		iov[i + 1] = in[i];
		len += in[i].iov_len;
	}
	mh.msg_iovlen = (size_t)nin + 1;
	ih->len = (uint32_t)len;
	ih->pid = (uint32_t)getpid();
	do
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE || errno == ECONNRESET ? -ENOTCONN : -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

static void on_timeout(struct kc_conn *c, struct kc_call *call)
{
	int first = !c->timed_out;

	fprintf(stderr, "kc: DEADLOCK? %s unique %llu nodeid %llu: no reply after %d ms\n",
		kc_opname(call->opcode), (unsigned long long)call->unique,
		(unsigned long long)call->nodeid, c->timeout_ms);
	c->timed_out = 1;
	pthread_mutex_unlock(&c->lock);
	if (first) {	/* one dump is enough: the others wait on the same server */
		kc_dump_pending(c);
		kc_kill(c);
	}
	pthread_mutex_lock(&c->lock);
	/* The reader may have failed every pending call already. */
	if (!call->done)
		unlink_call(c, call->unique);
}

int kc_call(struct kc_conn *c, uint32_t opcode, uint64_t nodeid,
	    const struct iovec *in, int nin, void *out, size_t outmax,
	    size_t *outlen)
{
	struct fuse_in_header ih = { .opcode = opcode, .nodeid = nodeid };
	struct kc_call call = { .opcode = opcode, .nodeid = nodeid,
				.out = out, .outmax = outmax };
	pthread_condattr_t ca;
	struct timespec deadline;
	int err = 0;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&call.cond, &ca);
	pthread_condattr_destroy(&ca);
	clock_gettime(CLOCK_MONOTONIC, &call.sent);
	deadline = call.sent;
	deadline.tv_sec += c->timeout_ms / 1000;
	deadline.tv_nsec += (long)(c->timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		err = -ENOTCONN;
		goto out_unlock;
	}
	call.unique = c->next_unique;
	c->next_unique += 2;
	ih.unique = call.unique;
	call.next = c->pending;
	c->pending = &call;
	/* Registered before it is sent: the reply may beat us back. */
	pthread_mutex_unlock(&c->lock);
	err = send_request(c, &ih, in, nin);
	pthread_mutex_lock(&c->lock);
	if (err) {
		if (!call.done)
			unlink_call(c, call.unique);
		goto out_unlock;
	}
	while (!call.done) {
		if (pthread_cond_timedwait(&call.cond, &c->lock, &deadline) == ETIMEDOUT &&
		    !call.done) {
			on_timeout(c, &call);
			err = -ETIMEDOUT;
			goto out_unlock;
		}
	}
	err = call.error;
	if (outlen)
		*outlen = call.outlen;
out_unlock:
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&call.cond);
	return err;
}

int kc_send_noreply(struct kc_conn *c, uint32_t opcode, uint64_t nodeid,
		    const struct iovec *in, int nin)
{
	struct fuse_in_header ih = { .opcode = opcode, .nodeid = nodeid };

	pthread_mutex_lock(&c->lock);
	ih.unique = c->next_unique;
	c->next_unique += 2;
	pthread_mutex_unlock(&c->lock);
	return send_request(c, &ih, in, nin);
}

int kc_wait_window(struct kc_conn *c, int timeout_ms)
{
	struct timespec deadline;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while (!c->win_known && !c->err_eof && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&c->win_cond, &c->lock, &deadline);
	ret = c->win_known ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* ---- the window, as a VMM reaches guest-visible shared memory ---- */

/*
 * The process whose memory holds the window. A sandboxed passthrough_dax
 * (-o sandbox=namespace|chroot) forks after its mount: the process we
 * started stays outside as a monitor, and its one child running the same
 * program serves and maps file ranges into its copy of the window.
 * Otherwise the process we started. Asked once the server has answered.
 */
static pid_t serving_pid(pid_t pid)
{
	char path[64], exe[4096], child_exe[4096];
	ssize_t n;
	FILE *f;
	int child;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n < 0)
		return pid;
	exe[n] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fscanf(f, "%d", &child) == 1) {
		snprintf(path, sizeof(path), "/proc/%d/exe", child);
		n = readlink(path, child_exe, sizeof(child_exe) - 1);
		if (n < 0)
			continue;
		child_exe[n] = '\0';
		if (strcmp(exe, child_exe) == 0) {
			fclose(f);
			return child;
		}
	}
	fclose(f);
	return pid;
}

static int window_io(struct kc_conn *c, uint64_t moffset, void *buf, size_t len,
		     int write)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(c->win_addr + moffset),
				.iov_len = len };
	ssize_t n;
	pid_t pid;

	if (!c->win_known || moffset > c->win_size || len > c->win_size - moffset)
		return -ERANGE;
	pthread_mutex_lock(&c->lock);
	if (!c->win_pid)
		c->win_pid = serving_pid(c->server_pid);
	pid = c->win_pid;
	pthread_mutex_unlock(&c->lock);
	if (write)
		n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
	else
		n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	/* A partial transfer stopped at a page that could not be touched. */
	return (size_t)n == len ? 0 : -EFAULT;
}

int kc_window_read(struct kc_conn *c, uint64_t moffset, void *buf, size_t len)
{
	return window_io(c, moffset, buf, len, 0);
}

int kc_window_write(struct kc_conn *c, uint64_t moffset, const void *buf,
		    size_t len)
{
	return window_io(c, moffset, (void *)buf, len, 1);
}

/* ---- diagnostics and the end ---- */

void kc_dump_pending(struct kc_conn *c)
{
	int n = 0;

	pthread_mutex_lock(&c->lock);
	fprintf(stderr, "kc: requests waiting for a reply:\n");
	for (struct kc_call *call = c->pending; call; call = call->next, n++)
		fprintf(stderr, "kc:   %s unique %llu nodeid %llu, sent %.1f s ago\n",
			kc_opname(call->opcode), (unsigned long long)call->unique,
			(unsigned long long)call->nodeid, elapsed_s(&call->sent));
	fprintf(stderr, "kc: %d pending\n", n);
	pthread_mutex_unlock(&c->lock);
}

/* With c->lock held: reap the server if it has exited. */
static int reap(struct kc_conn *c, int options)
{
	int status;
	pid_t r;

	if (c->server_exited)
		return 1;
	r = waitpid(c->server_pid, &status, options);
	if (r == c->server_pid) {
		c->server_exited = 1;
		c->server_status = status;
		return 1;
	}
	return 0;
}

int kc_server_alive(struct kc_conn *c)
{
	int exited;

	pthread_mutex_lock(&c->lock);
	exited = reap(c, WNOHANG);
	pthread_mutex_unlock(&c->lock);
	return !exited;
}

void kc_kill(struct kc_conn *c)
{
	pthread_mutex_lock(&c->lock);
	if (!c->server_exited) {
		kill(c->server_pid, SIGKILL);
		reap(c, 0);
	}
	pthread_mutex_unlock(&c->lock);
}

static void describe_status(int status)
{
	if (WIFEXITED(status))
		fprintf(stderr, "kc: the server exited with status %d\n", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "kc: the server was killed by signal %d (%s)\n",
			WTERMSIG(status), strsignal(WTERMSIG(status)));
}

int kc_shutdown(struct kc_conn *c, int timeout_ms)
{
	int waited = 0, clean;

	/* Like an unmount of a virtio-fs device: the connection just ends. */
	shutdown(c->fd, SHUT_RDWR);
	pthread_join(c->rx_thread, NULL);
	for (;;) {
		pthread_mutex_lock(&c->lock);
		if (reap(c, WNOHANG)) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		pthread_mutex_unlock(&c->lock);
		if (waited >= timeout_ms) {
			fprintf(stderr, "kc: the server did not exit within %d ms of the "
				"connection closing: killing it\n", timeout_ms);
			kc_kill(c);
			pthread_join(c->err_thread, NULL);
			close(c->fd);
			close(c->err_fd);
			return -1;
		}
		usleep(10000);
		waited += 10;
	}
	pthread_join(c->err_thread, NULL);
	close(c->fd);
	close(c->err_fd);
	clean = WIFEXITED(c->server_status) && WEXITSTATUS(c->server_status) == 0;
	if (!clean)
		describe_status(c->server_status);
	return clean ? 0 : -1;
}
