/*
 * fuse_parse_conn_info_opts() and fuse_apply_conn_info_opts(): the -o
 * options that let a user tune what INIT negotiates (max_write=,
 * readdirplus=, writeback_cache, ...) without the file system parsing them.
 */
#include "fuse_lowlevel.h"

#include <stddef.h>
#include <stdlib.h>

/* A set option that turns a capability on or off. */
struct cap_switch {
	int on, off;
};

struct fuse_conn_info_opts {
	/* Limits; -1 leaves the negotiated value alone. */
	long max_write, max_readahead, max_background, congestion_threshold, time_gran;
	struct cap_switch async_read, atomic_o_trunc, splice_write, splice_move, splice_read,
		auto_inval_data, async_dio, writeback_cache;
	int no_remote_posix_lock, no_remote_flock;
	int readdirplus_yes, readdirplus_no, readdirplus_auto;
};

#define CO(t, p, v) { t, offsetof(struct fuse_conn_info_opts, p), v }

static const struct fuse_opt conn_opt_spec[] = {
	CO("max_write=%lu", max_write, 0),
	CO("max_readahead=%lu", max_readahead, 0),
	CO("max_background=%lu", max_background, 0),
	CO("congestion_threshold=%lu", congestion_threshold, 0),
	CO("time_gran=%lu", time_gran, 0),
	CO("async_read", async_read.on, 1),
	CO("sync_read", async_read.off, 1),
	CO("atomic_o_trunc", atomic_o_trunc.on, 1),
	CO("no_remote_lock", no_remote_posix_lock, 1),
	CO("no_remote_lock", no_remote_flock, 1),
	CO("no_remote_posix_lock", no_remote_posix_lock, 1),
	CO("no_remote_flock", no_remote_flock, 1),
	CO("splice_write", splice_write.on, 1),
	CO("no_splice_write", splice_write.off, 1),
	CO("splice_move", splice_move.on, 1),
	CO("no_splice_move", splice_move.off, 1),
	CO("splice_read", splice_read.on, 1),
	CO("no_splice_read", splice_read.off, 1),
	CO("auto_inval_data", auto_inval_data.on, 1),
	CO("no_auto_inval_data", auto_inval_data.off, 1),
	CO("async_dio", async_dio.on, 1),
	CO("no_async_dio", async_dio.off, 1),
	CO("writeback_cache", writeback_cache.on, 1),
	CO("no_writeback_cache", writeback_cache.off, 1),
	CO("readdirplus=yes", readdirplus_yes, 1),
	CO("readdirplus=no", readdirplus_no, 1),
	CO("readdirplus=auto", readdirplus_auto, 1),
	FUSE_OPT_END,
};

struct fuse_conn_info_opts *fuse_parse_conn_info_opts(struct fuse_args *args)
{
	struct fuse_conn_info_opts *o = calloc(1, sizeof(*o));

	if (!o) {
		fuse_log(FUSE_LOG_ERR, "fuse: out of memory parsing connection options\n");
		return NULL;
	}
	o->max_write = o->max_readahead = o->max_background = -1;
	o->congestion_threshold = o->time_gran = -1;
	/* The caller frees the result with free(), so it owns no strings. */
	if (fuse_opt_parse(args, o, conn_opt_spec, NULL) == -1) {
		free(o);
		return NULL;
	}
	return o;
}

static void apply_switch(struct fuse_conn_info *conn, const struct cap_switch *s, uint64_t cap)
{
	if (s->on)
		fuse_set_feature_flag(conn, cap);
	if (s->off)
		fuse_unset_feature_flag(conn, cap);
}

void fuse_apply_conn_info_opts(struct fuse_conn_info_opts *o, struct fuse_conn_info *conn)
{
	if (!o || !conn)
		return;
	if (o->max_write >= 0)
		conn->max_write = (unsigned int)o->max_write;
	if (o->max_readahead >= 0)
		conn->max_readahead = (unsigned int)o->max_readahead;
	if (o->max_background >= 0)
		conn->max_background = (unsigned int)o->max_background;
	if (o->congestion_threshold >= 0)
		conn->congestion_threshold = (unsigned int)o->congestion_threshold;
	if (o->time_gran >= 0)
		conn->time_gran = (unsigned int)o->time_gran;
	apply_switch(conn, &o->async_read, FUSE_CAP_ASYNC_READ);
	apply_switch(conn, &o->atomic_o_trunc, FUSE_CAP_ATOMIC_O_TRUNC);
	apply_switch(conn, &o->splice_write, FUSE_CAP_SPLICE_WRITE);
	apply_switch(conn, &o->splice_move, FUSE_CAP_SPLICE_MOVE);
	apply_switch(conn, &o->splice_read, FUSE_CAP_SPLICE_READ);
	apply_switch(conn, &o->auto_inval_data, FUSE_CAP_AUTO_INVAL_DATA);
	apply_switch(conn, &o->async_dio, FUSE_CAP_ASYNC_DIO);
	apply_switch(conn, &o->writeback_cache, FUSE_CAP_WRITEBACK_CACHE);
	if (o->no_remote_posix_lock)
		fuse_unset_feature_flag(conn, FUSE_CAP_POSIX_LOCKS);
	if (o->no_remote_flock)
		fuse_unset_feature_flag(conn, FUSE_CAP_FLOCK_LOCKS);
	if (o->readdirplus_no) {
		fuse_unset_feature_flag(conn, FUSE_CAP_READDIRPLUS);
		fuse_unset_feature_flag(conn, FUSE_CAP_READDIRPLUS_AUTO);
	} else if (o->readdirplus_yes) {
		fuse_set_feature_flag(conn, FUSE_CAP_READDIRPLUS);
		fuse_unset_feature_flag(conn, FUSE_CAP_READDIRPLUS_AUTO);
	} else if (o->readdirplus_auto) {
		fuse_set_feature_flag(conn, FUSE_CAP_READDIRPLUS);
		fuse_set_feature_flag(conn, FUSE_CAP_READDIRPLUS_AUTO);
	}
}
