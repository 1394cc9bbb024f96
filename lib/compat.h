/*
 * Private declarations of the entry points the public headers show only to
 * callers of older API levels (or hide behind macros), so the library's own
 * definitions have prototypes. See lib/compat.c.
 */
#ifndef FUSEDAX_COMPAT_H
#define FUSEDAX_COMPAT_H

#include "fuse_lowlevel.h"

struct fuse;

/* lib/loop_mt.c: fuse_session_loop_mt() of API 3.0/3.1 and 3.2 to 3.11. */
int fuse_session_loop_mt_31(struct fuse_session *se, int clone_fd);
int fuse_session_loop_mt_32(struct fuse_session *se, struct fuse_loop_config_v1 *config);

/* lib/highlevel.c: fuse_loop_mt() of API 3.0/3.1 and 3.2 to 3.11. */
int fuse_loop_mt_31(struct fuse *f, int clone_fd);
int fuse_loop_mt_32(struct fuse *f, struct fuse_loop_config_v1 *config);

/* lib/fail_signals.c: undo fuse_set_fail_signal_handlers(); called by
 * fuse_remove_signal_handlers(). */
void fail_signals_remove(void);

#endif /* FUSEDAX_COMPAT_H */
