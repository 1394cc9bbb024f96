/*
 * fusedax: the libfuse API level this library implements, in the header
 * name libfuse installs for it (some programs include it directly).
 *
 * LIBFUSE_BUILT_WITH_VERSIONED_SYMBOLS is deliberately not defined: the
 * headers pick the entry point of each FUSE_USE_VERSION with macros.
 */
#ifndef FUSEDAX_LIBFUSE_CONFIG_H
#define FUSEDAX_LIBFUSE_CONFIG_H

#define FUSE_MAJOR_VERSION 3
#define FUSE_MINOR_VERSION 17
#define FUSE_HOTFIX_VERSION 2
#define FUSE_RC_VERSION /* a release, not a release candidate */

#endif /* FUSEDAX_LIBFUSE_CONFIG_H */
