/*
 * passthrough_dax: acting as the caller. Worker threads switch their own
 * credentials to those of the request they serve.
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
 */

#define PD_MAX_GROUPS 256

static int creds_set(uid_t uid, gid_t gid, int ngroups, const gid_t *groups)
{
	/* Groups and gid first: changing them needs the root euid. */
	if (syscall(SYS_setgroups, ngroups, groups) == -1)
		return -errno;
	if (syscall(SYS_setresgid, -1, gid, -1) == -1)
		return -errno;
	if (syscall(SYS_setresuid, -1, uid, -1) == -1)
		return -errno;
	return 0;
}

/* Back to root. Failing here would leave a worker with a caller's identity. */
void creds_restore(struct pd_fs *fs)
{
	if (!fs->switch_creds)
		return;
	if (syscall(SYS_setresuid, -1, 0, -1) == -1 ||
	    syscall(SYS_setresgid, -1, 0, -1) == -1 ||
	    syscall(SYS_setgroups, 0, NULL) == -1) {
		fuse_log(FUSE_LOG_ERR, "passthrough_dax: cannot return to root credentials: %s\n",
			 strerror(errno));
		abort();	/* our own invariant, not peer input */
	}
}

/*
 * Become the caller of req. Requests the kernel makes on its own behalf
 * (write-back, release) carry pid 0 and no groups.
 */
int creds_enter(fuse_req_t req)
{
	struct pd_fs *fs = pd_fs(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[PD_MAX_GROUPS];
	uint32_t uid, gid;
	int ngroups, err;

	if (!fs->switch_creds)
		return 0;
	/* -o uid_map/gid_map: act as the host ids the caller's map to. */
	if (!idmap_to_host(&fs->uid_map, ctx->uid, &uid) ||
	    !idmap_to_host(&fs->gid_map, ctx->gid, &gid)) {
		pd_log_counted(fs, &fs->unmapped, "a request",
			       "its caller's uid or gid is outside -o uid_map/gid_map: refused (EPERM)");
		return -EPERM;
	}
	ngroups = fuse_req_getgroups(req, PD_MAX_GROUPS, groups);
	if (ngroups < 0)
		ngroups = 0;	/* no such process any more, or pid 0 */
	if (ngroups > PD_MAX_GROUPS)
		ngroups = PD_MAX_GROUPS;	/* the first 256 decide, like NFS's 16 */
	ngroups = idmap_groups(fs, groups, ngroups);
	err = creds_set(uid, gid, ngroups, groups);
	if (err) {
		fuse_log(FUSE_LOG_ERR, "passthrough_dax: cannot act as uid %u gid %u: %s\n",
			 (unsigned)uid, (unsigned)gid, strerror(-err));
		creds_restore(fs);
	}
	return err;
}
