/*
 * passthrough_dax: acting as the caller. Worker threads switch their own
 * credentials to those of the request they serve, and only the parts that
 * differ from what is in effect on the thread already.
 */
#include "passthrough_dax.h"

/* ------------------------------------------------------------------------
 * Acting as the caller
 *
 * The set*id() wrappers in glibc change the credentials of every thread of
 * the process (POSIX asks for that). We want one worker thread to act as one
 * caller while its neighbours act as others, so we call the raw system
 * calls, which change only the calling thread. Only the effective ids
 * change: the saved uid stays 0, so the thread can switch back, and the
 * kernel drops the thread's capabilities while its euid is not 0 (so
 * CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID... do not apply to the caller's
 * requests) and restores them when it returns to 0.
 *
 * Switching is lazy. Each thread remembers what it acts as; creds_enter()
 * changes only what differs (usually nothing: one caller tends to send many
 * requests in a row), and nothing switches back when an operation ends. So
 * between requests a worker may still act as the last caller it served.
 * That is safe because every operation says which identity it needs:
 *
 *  - creds_enter(req): the caller's, for everything the host must check
 *    against the caller (names, opens, creates, writes, attributes...);
 *  - creds_daemon(fs): ours (euid 0, every capability), for the few things
 *    done on the daemon's own authority (opening a file for a DAX mapping,
 *    clearing set-user-ID bits, reading the user.dax attribute);
 *  - neither, for operations that only use descriptors opened earlier
 *    (read, fsync, flush, release, locks, lseek, statfs) or O_PATH
 *    descriptors (getattr, statx, readlink): the host checks no
 *    credentials there, so the identity in effect cannot change the result.
 *
 * A new thread starts as "unknown" (it inherited whatever the thread that
 * created it acted as), and so does a thread whose switch failed halfway:
 * the next call then sets every part.
 */

#define PD_MAX_GROUPS 256
#define PD_STATUS_FDS 4		/* callers whose status file a thread keeps open */

struct pd_ids {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[PD_MAX_GROUPS];
};

/* One worker thread's state, freed (and its descriptors closed) at exit. */
struct pd_thread_creds {
	bool known;		/* cur is what the thread acts as */
	bool root;		/* the euid is 0 (also when the rest is unknown) */
	struct pd_ids cur;
	struct {
		pid_t pid;	/* 0: free slot */
		int fd;		/* /proc/PID/status, open */
	} status[PD_STATUS_FDS];
	unsigned int next_slot;	/* round-robin eviction */
};

static pthread_key_t creds_key;
static pthread_once_t creds_key_once = PTHREAD_ONCE_INIT;

static void thread_creds_free(void *p)
{
	struct pd_thread_creds *tc = p;

	for (int i = 0; i < PD_STATUS_FDS; i++)
		if (tc->status[i].pid)
			close(tc->status[i].fd);
	free(tc);
}

static void creds_key_create(void)
{
	if (pthread_key_create(&creds_key, thread_creds_free) != 0) {
		fuse_log(FUSE_LOG_ERR, "passthrough_dax: cannot create a thread key\n");
		abort();	/* start-up resource failure, not peer input */
	}
}

static struct pd_thread_creds *thread_creds(void)
{
	struct pd_thread_creds *tc;

	pthread_once(&creds_key_once, creds_key_create);
	tc = pthread_getspecific(creds_key);
	if (tc)
		return tc;
	tc = calloc(1, sizeof(*tc));
	if (tc && pthread_setspecific(creds_key, tc) != 0) {
		free(tc);
		tc = NULL;
	}
	return tc;
}

/* ------------------------------------------------------------------------
 * The caller's supplementary groups
 *
 * The kernel sends uid, gid and pid, not groups: they are read from the
 * caller's /proc/PID/status (PID is the calling thread, and groups are per
 * thread). Reading it on every request keeps permission checks exact (a
 * process may change its groups between two requests); what we save is the
 * open and close: a thread keeps the status files of its last few callers
 * open and re-reads them with pread(), which regenerates the text. An open
 * /proc/PID file stays bound to the process it was opened for: once that
 * process is gone the read fails with ESRCH, even if its pid was reused, and
 * we open the new process's file instead. So a cached descriptor can never
 * give another process's groups.
 *
 * Only a /dev/fuse client's pids are this host's. A guest's (vhost-user)
 * name processes of the guest: reading the host process that happens to
 * have that number would give a stranger's groups, so a guest's caller
 * acts with its uid and gid only, as under virtiofsd. The host's /proc is
 * kept open from start-up (host_proc), since a sandbox mounts its own.
 */

static ssize_t status_read(const struct pd_fs *fs, struct pd_thread_creds *tc, pid_t pid,
			   char *buf, size_t size)
{
	char path[32];
	unsigned int slot;
	ssize_t n;
	int fd, i;

	for (i = 0; i < PD_STATUS_FDS; i++) {
		if (tc->status[i].pid != pid)
			continue;
		n = pread(tc->status[i].fd, buf, size, 0);
		if (n >= 0)
			return n;
		close(tc->status[i].fd);	/* that process is gone */
		tc->status[i].pid = 0;
		break;
	}
	snprintf(path, sizeof(path), "%d/status", (int)pid);
	fd = openat(fs->host_proc, path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	n = pread(fd, buf, size, 0);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	slot = tc->next_slot++ % PD_STATUS_FDS;
	if (tc->status[slot].pid)
		close(tc->status[slot].fd);
	tc->status[slot].pid = pid;
	tc->status[slot].fd = fd;
	return n;
}

/*
 * The numbers of the "Groups:" line of a status text, at most
 * PD_MAX_GROUPS of them (the first 256 decide, like NFS's 16). A number
 * counts only if a space or the end of the line follows it inside the
 * text, so a cut-off text never yields a shortened gid.
 */
static int parse_groups(const char *text, size_t len, gid_t *groups)
{
	const char *p = memmem(text, len, "\nGroups:", 8);
	const char *end = text + len;
	int n = 0;

	if (!p)
		return -EIO;
	for (p += 8; p < end && *p != '\n' && n < PD_MAX_GROUPS;) {
		unsigned long g = 0;
		const char *digits;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		digits = p;
		while (p < end && *p >= '0' && *p <= '9')
			g = g * 10 + (unsigned long)(*p++ - '0');
		if (p == digits || p == end || (*p != ' ' && *p != '\t' && *p != '\n'))
			break;
		groups[n++] = (gid_t)g;
	}
	return n;
}

/*
 * The caller's groups. Requests the kernel makes on its own behalf
 * (write-back, release) carry pid 0 and no groups; a caller that is gone
 * has none either. Any other failure fails the request: acting without the
 * caller's groups could deny (or, through a group with fewer rights than
 * "other", grant) what the caller's own system call would not.
 */
static int caller_groups(const struct pd_fs *fs, struct pd_thread_creds *tc, pid_t pid,
			 gid_t *groups)
{
	char text[8192];
	ssize_t len;

	if (pid <= 0 || !fs->callers_on_host || fs->host_proc < 0)
		return 0;
	len = status_read(fs, tc, pid, text, sizeof(text));
	if (len == -ENOENT || len == -ESRCH)
		return 0;
	if (len < 0)
		return (int)len;
	return parse_groups(text, (size_t)len, groups);
}

/* ------------------------------------------------------------------------
 * Switching
 */

static int sys_setresuid(uid_t euid)
{
	return syscall(SYS_setresuid, -1, euid, -1) == -1 ? -errno : 0;
}

/* Become want, changing only what differs from what the thread acts as. */
static int creds_switch(struct pd_thread_creds *tc, const struct pd_ids *want)
{
	bool groups_differ = !tc->known || tc->cur.ngroups != want->ngroups ||
			     memcmp(tc->cur.groups, want->groups,
				    (size_t)want->ngroups * sizeof(gid_t)) != 0;
	bool gid_differs = !tc->known || tc->cur.gid != want->gid;
	bool uid_differs = !tc->known || tc->cur.uid != want->uid;
	int err;

	if (!groups_differ && !gid_differs && !uid_differs)
		return 0;
	tc->known = false;	/* until every step below succeeded */
	if (groups_differ || gid_differs) {
		/* Changing groups or gid needs the root euid. */
		if (!tc->root) {
			err = sys_setresuid(0);
			if (err)
				return err;
			tc->root = true;
		}
		uid_differs = want->uid != 0;
		if (groups_differ &&
		    syscall(SYS_setgroups, want->ngroups, want->groups) == -1)
			return -errno;
		if (gid_differs && syscall(SYS_setresgid, -1, want->gid, -1) == -1)
			return -errno;
	}
	if (uid_differs) {
		tc->root = false;
		err = sys_setresuid(want->uid);
		if (err)
			return err;
		tc->root = want->uid == 0;
	}
	tc->cur.uid = want->uid;
	tc->cur.gid = want->gid;
	tc->cur.ngroups = want->ngroups;
	memcpy(tc->cur.groups, want->groups, (size_t)want->ngroups * sizeof(gid_t));
	tc->known = true;
	return 0;
}

/*
 * Act as the daemon: euid 0, with every capability back. gid and groups
 * stay as they are: with every capability they decide no permission, and
 * they would only give their group to files we create as ourselves, which
 * we never do. Failing here would leave a worker with a caller's identity.
 */
void creds_daemon(struct pd_fs *fs)
{
	struct pd_thread_creds *tc;

	if (!fs->switch_creds)
		return;
	tc = thread_creds();
	if (tc && tc->root)
		return;
	if (sys_setresuid(0) != 0) {
		fuse_log(FUSE_LOG_ERR, "passthrough_dax: cannot return to root credentials: %s\n",
			 strerror(errno));
		abort();	/* our own invariant, not peer input */
	}
	if (tc) {
		tc->root = true;
		tc->cur.uid = 0;	/* gid and groups: unchanged, known or not */
	}
}

/*
 * One step on our own authority in the middle of acting as a caller (an
 * inode's descriptor opened by file handle, which needs
 * CAP_DAC_READ_SEARCH): creds_daemon() would leave the rest of the
 * operation running as us, so the euid in effect comes back with
 * creds_return(). Returns the euid to give back (0: nothing to give back).
 */
uid_t creds_borrow_daemon(struct pd_fs *fs)
{
	struct pd_thread_creds *tc;
	uid_t euid;

	if (!fs->switch_creds)
		return 0;
	tc = thread_creds();
	if (tc && tc->root)
		return 0;
	euid = geteuid();
	creds_daemon(fs);
	return euid;
}

void creds_return(struct pd_fs *fs, uid_t euid)
{
	struct pd_thread_creds *tc;

	if (!fs->switch_creds || euid == 0)
		return;
	if (sys_setresuid(euid) != 0) {
		fuse_log(FUSE_LOG_ERR, "passthrough_dax: cannot act as uid %u again: %s\n",
			 (unsigned)euid, strerror(errno));
		abort();	/* our own invariant: never go on with the daemon's rights */
	}
	tc = thread_creds();
	if (tc) {
		tc->root = false;
		tc->cur.uid = euid;
	}
}

/*
 * The end of acting as the caller. Nothing is switched back: the next
 * operation switches only what it needs (see the top of this file).
 */
void creds_restore(struct pd_fs *fs)
{
	(void)fs;
}

/* Become the caller of req. */
int creds_enter(fuse_req_t req)
{
	struct pd_fs *fs = pd_fs(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct pd_thread_creds *tc;
	struct pd_ids want;
	uint32_t uid, gid;
	int err;

	if (!fs->switch_creds)
		return 0;
	/* -o uid_map/gid_map: act as the host ids the caller's map to. */
	if (!idmap_to_host(&fs->uid_map, ctx->uid, &uid) ||
	    !idmap_to_host(&fs->gid_map, ctx->gid, &gid)) {
		pd_log_counted(fs, &fs->unmapped, "a request",
			       "its caller's uid or gid is outside -o uid_map/gid_map: refused (EPERM)");
		return -EPERM;
	}
	tc = thread_creds();
	if (!tc)
		return -ENOMEM;
	want.uid = uid;
	want.gid = gid;
	want.ngroups = caller_groups(fs, tc, ctx->pid, want.groups);
	if (want.ngroups < 0) {
		err = want.ngroups;
		if (err == -EMFILE || err == -ENFILE || err == -ENOMEM)
			pd_log_exhausted(fs, "reading a caller's groups", err);	/* counted */
		else
			fuse_log(FUSE_LOG_ERR, "passthrough_dax: cannot read the groups of pid %d: %s\n",
				 (int)ctx->pid, strerror(-err));
		return err;
	}
	want.ngroups = idmap_groups(fs, want.groups, want.ngroups);
	err = creds_switch(tc, &want);
	if (err) {
		fuse_log(FUSE_LOG_ERR, "passthrough_dax: cannot act as uid %u gid %u: %s\n",
			 (unsigned)uid, (unsigned)gid, strerror(-err));
		creds_daemon(fs);
	}
	return err;
}
