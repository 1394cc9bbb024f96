/*
 * passthrough_dax: -o uid_map= and -o gid_map=, the client's ids seen as
 * other ids on the host (the Rust virtiofsd's ":inner:outer:count:"
 * syntax): a guest whose root must not be the host's root maps its ids
 * 0..65535 to an unprivileged range, e.g. -o uid_map=:0:100000:65536:.
 *
 * The daemon translates, like a user namespace would: a caller's uid, gid
 * and groups become host ids before it acts as the caller (a caller with
 * an id outside the map is refused with EPERM), chown's ids likewise
 * (EINVAL outside the map, as chown(2) in a user namespace), and the
 * owners of host files come back as the client's ids (65534, "nobody",
 * for an owner outside the map). Unlike a user namespace this works as
 * root without giving up file handles, and in every sandbox mode. The ids
 * inside POSIX ACLs (system.posix_acl_* values) are passed as they are.
 */
#include "passthrough_dax.h"

#define OVERFLOW_ID 65534

/* ":inner:outer:count:" (the outer colons may be left out). 0 or -1. */
int idmap_parse(const char *what, const char *text, struct pd_idmap *map)
{
	unsigned long long v[3];
	const char *p = text;
	char *end;

	if (*p == ':')
		p++;
	for (int i = 0; i < 3; i++) {
		if (*p < '0' || *p > '9')
			goto out_err;
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (errno || v[i] > UINT32_MAX)
			goto out_err;
		p = end;
		if (i < 2 && *p++ != ':')
			goto out_err;
	}
	if (*p == ':')
		p++;
	/* (uid_t)-1 means "no change" to chown: no range may reach it. */
	if (*p || v[2] == 0 || v[0] + v[2] > UINT32_MAX || v[1] + v[2] > UINT32_MAX)
		goto out_err;
	map->inner = (uint32_t)v[0];
	map->outer = (uint32_t)v[1];
	map->count = (uint32_t)v[2];
	map->set = true;
	return 0;

out_err:
	fprintf(stderr, "passthrough_dax: %s=%s: expected :inner:outer:count: (e.g. "
		":0:100000:65536:), a non-empty range below 4294967295\n", what, text);
	return -1;
}

/* The host id for the client's id: true, or false if it is outside the map. */
bool idmap_to_host(const struct pd_idmap *map, uint32_t id, uint32_t *host)
{
	if (!map->set) {
		*host = id;
		return true;
	}
	if (id - map->inner >= map->count)
		return false;
	*host = map->outer + (id - map->inner);
	return true;
}

/* The client's id for a host id: 65534 if it is outside the map. */
uint32_t idmap_to_client(const struct pd_idmap *map, uint32_t host)
{
	if (!map->set)
		return host;
	if (host - map->outer >= map->count)
		return OVERFLOW_ID;
	return map->inner + (host - map->outer);
}

/* The caller's groups as host groups; those outside the map are left out. */
int idmap_groups(const struct pd_fs *fs, gid_t *groups, int count)
{
	uint32_t host;
	int kept = 0;

	for (int i = 0; i < count; i++)
		if (idmap_to_host(&fs->gid_map, groups[i], &host))
			groups[kept++] = host;
	return kept;
}

/* The owner of a host file as the client sees it. */
void idmap_stat(const struct pd_fs *fs, struct stat *st)
{
	st->st_uid = idmap_to_client(&fs->uid_map, st->st_uid);
	st->st_gid = idmap_to_client(&fs->gid_map, st->st_gid);
}

/* The same for statx; returns stx. */
struct statx *idmap_statx(const struct pd_fs *fs, struct statx *stx)
{
	stx->stx_uid = idmap_to_client(&fs->uid_map, stx->stx_uid);
	stx->stx_gid = idmap_to_client(&fs->gid_map, stx->stx_gid);
	return stx;
}

/* chown's ids (-1: unchanged) to host ids: false if one is outside the map. */
bool idmap_chown(const struct pd_fs *fs, uid_t *uid, gid_t *gid)
{
	uint32_t host;

	if (*uid != (uid_t)-1) {
		if (!idmap_to_host(&fs->uid_map, *uid, &host))
			return false;
		*uid = host;
	}
	if (*gid != (gid_t)-1) {
		if (!idmap_to_host(&fs->gid_map, *gid, &host))
			return false;
		*gid = host;
	}
	return true;
}
