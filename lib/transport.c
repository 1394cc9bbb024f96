/*
 * The transport registry: every way a session can reach its client, each
 * with the mount-point scheme and the options that select it (see struct
 * transport_class in fuse_i.h). Adding a transport means adding its class
 * here; the session and the command-line parser only walk this table.
 */
#include "fuse_i.h"

#include <string.h>

const struct transport_class *const transport_classes[] = {
	&transport_dev_class,	/* the default: /dev/fuse, or /dev/fd/N */
	&transport_uring_class,
	&transport_vhost_user_class,
	NULL,
};

const struct transport_class *transport_for_mountpoint(const char *mountpoint)
{
	for (size_t i = 0; mountpoint && transport_classes[i]; i++) {
		const char *scheme = transport_classes[i]->scheme;
		size_t len = scheme ? strlen(scheme) : 0;

		if (scheme && strncmp(mountpoint, scheme, len) == 0 &&
		    (mountpoint[len] == '\0' || mountpoint[len] == ':'))
			return transport_classes[i];
	}
	return NULL;
}
