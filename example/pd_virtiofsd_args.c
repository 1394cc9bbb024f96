/*
 * passthrough_dax: the command lines of QEMU's C virtiofsd (7.2) and of the
 * Rust virtiofsd, as deployments (libvirt among them) pass them, turned into
 * passthrough_dax's own options before anything else parses the command
 * line. One table says, per spelling, what it becomes; the same table
 * prints the --help section, so the two cannot drift apart.
 */
#include "passthrough_dax.h"

#include <stdarg.h>

/* What a spelling does. */
enum vfs_action {
	VFS_OPTION,	/* becomes "-o TARGET" (plus the value, escaped, if it has one) */
	VFS_ARG,	/* becomes the one argument "TARGETVALUE" */
	VFS_SAME,	/* passthrough_dax always behaves so: accepted, nothing to do */
	VFS_NOT_YET,	/* not implemented yet: a warning on stderr, then ignored */
	VFS_SPECIAL,	/* handled in code (--print-capabilities, --daemonize) */
};

/* Value forms of a long option. */
enum vfs_value {
	VFS_NONE,	/* a flag */
	VFS_NEEDED,	/* "--name=V" or "--name V" */
	VFS_EQUALS,	/* only "--name=V" (--inode-file-handles) */
	VFS_OPTIONAL,	/* "--name" or "--name=V" (--posix-acl, --security-label) */
};

struct vfs_long {
	const char *name;
	enum vfs_value value;
	enum vfs_action action;
	const char *target;
	/* VFS_NOT_YET: what happens instead; else an optional note for --help. */
	const char *note;
	/* It names the vhost-user socket: the backend program conventions apply. */
	bool socket;
};

/*
 * The long options of both daemons (the C one spells a few of them, always
 * with "="). Canonical targets that passthrough_dax.c does not implement
 * itself (sandbox, seccomp, inode_file_handles, uid_map, gid_map, readonly,
 * modcaps, rlimit_nofile) are the sandboxing options of pd_main.c.
 */
static const struct vfs_long vfs_longs[] = {
	{ "--shared-dir", VFS_NEEDED, VFS_OPTION, "source=", NULL, false },
	{ "--socket-path", VFS_NEEDED, VFS_OPTION, "vhost_user_socket=", NULL, true },
	{ "--socket", VFS_NEEDED, VFS_OPTION, "vhost_user_socket=", NULL, true },
	{ "--fd", VFS_NEEDED, VFS_OPTION, "vhost_user_fd=", NULL, true },
	{ "--socket-group", VFS_NEEDED, VFS_OPTION, "vhost_user_socket_group=", NULL, false },
	{ "--thread-pool-size", VFS_NEEDED, VFS_ARG, "--thread-pool-size=",
	  "bounds the /dev/fuse worker threads; under vhost-user each queue has one", false },
	{ "--rlimit-nofile", VFS_NEEDED, VFS_OPTION, "rlimit_nofile=", NULL, false },
	{ "--cache", VFS_NEEDED, VFS_OPTION, "cache=", NULL, false },
	{ "--xattr", VFS_NONE, VFS_OPTION, "xattr", NULL, false },
	{ "--writeback", VFS_NONE, VFS_OPTION, "writeback", NULL, false },
	{ "--allow-direct-io", VFS_NONE, VFS_OPTION, "allow_direct_io", NULL, false },
	{ "--no-readdirplus", VFS_NONE, VFS_OPTION, "readdirplus=no", NULL, false },
	{ "--killpriv-v2", VFS_NONE, VFS_OPTION, "killpriv_v2", NULL, false },
	{ "--no-killpriv-v2", VFS_NONE, VFS_OPTION, "no_killpriv_v2", NULL, false },
	{ "--log-level", VFS_NEEDED, VFS_OPTION, "log_level=",
	  "debug and trace also trace every request (-o debug)", false },
	{ "--syslog", VFS_NONE, VFS_OPTION, "syslog", NULL, false },
	{ "--sandbox", VFS_NEEDED, VFS_OPTION, "sandbox=", NULL, false },
	{ "--seccomp", VFS_NEEDED, VFS_OPTION, "seccomp=", NULL, false },
	{ "--readonly", VFS_NONE, VFS_OPTION, "readonly", NULL, false },
	{ "--modcaps", VFS_NEEDED, VFS_OPTION, "modcaps=", NULL, false },
	{ "--inode-file-handles", VFS_EQUALS, VFS_OPTION, "inode_file_handles=",
	  "fallback is prefer", false },
	{ "--uid-map", VFS_NEEDED, VFS_OPTION, "uid_map=", NULL, false },
	{ "--gid-map", VFS_NEEDED, VFS_OPTION, "gid_map=", NULL, false },
	{ "--print-capabilities", VFS_NONE, VFS_SPECIAL, NULL,
	  "print the vhost-user backend capabilities (JSON) and exit", false },
	{ "--daemonize", VFS_NONE, VFS_SPECIAL, NULL,
	  "run in the background (the default once the socket is named this way "
	  "is the foreground)", false },
	{ "--no-announce-submounts", VFS_NONE, VFS_SAME, NULL,
	  "the guest is not told about submounts", false },
	{ "--preserve-noatime", VFS_NONE, VFS_SAME, NULL,
	  "O_NOATIME is passed to the host as the guest asks", false },
	{ "--announce-submounts", VFS_NONE, VFS_NOT_YET, NULL,
	  "the guest is not told which directories are mount points", false },
	{ "--xattrmap", VFS_NEEDED, VFS_NOT_YET, NULL,
	  "extended attribute names pass unmapped", false },
	{ "--posix-acl", VFS_OPTIONAL, VFS_NOT_YET, NULL,
	  "POSIX ACLs are not negotiated; with -o xattr the ACL attributes pass as they are",
	  false },
	{ "--security-label", VFS_OPTIONAL, VFS_NOT_YET, NULL,
	  "no security label is set on new files", false },
	{ "--allow-mmap", VFS_NONE, VFS_NOT_YET, NULL,
	  "with --cache=never or metadata, shared mmap of a file fails in the guest", false },
	{ "--posix-acl-create-fallback", VFS_NONE, VFS_NOT_YET, NULL,
	  "a create the host refuses stays refused", false },
	{ "--translate-uid", VFS_NEEDED, VFS_NOT_YET, NULL, "ids pass untranslated", false },
	{ "--translate-gid", VFS_NEEDED, VFS_NOT_YET, NULL, "ids pass untranslated", false },
	{ "--tag", VFS_NEEDED, VFS_NOT_YET, NULL,
	  "the tag comes from the VMM: QEMU's tag= property", false },
	{ "--migration-mode", VFS_NEEDED, VFS_NOT_YET, NULL, "no migration support", false },
	{ "--migration-on-error", VFS_NEEDED, VFS_NOT_YET, NULL, "no migration support", false },
	{ "--migration-verify-handles", VFS_NONE, VFS_NOT_YET, NULL, "no migration support",
	  false },
	{ "--migration-confirm-paths", VFS_NONE, VFS_NOT_YET, NULL, "no migration support",
	  false },
};

/*
 * Items of a "-o" list that need more than passing on (everything else is
 * an option passthrough_dax or libfuse knows by the same name: source=,
 * cache=, timeout=, xattr, writeback, flock, posix_lock, allow_direct_io,
 * killpriv_v2, their no_ forms, sandbox=, modcaps=, log_level=,
 * max_idle_threads=, allow_root, debug).
 */
struct vfs_item {
	const char *name;	/* ends with '=' to match any value */
	enum vfs_action action;
	const char *target;	/* VFS_OPTION: the item that replaces it */
	const char *note;
};

static const struct vfs_item vfs_items[] = {
	{ "loglevel=", VFS_OPTION, "log_level=", NULL },	/* the Rust daemon's spelling */
	{ "readdirplus", VFS_SAME, NULL, "the default" },
	{ "no_readdirplus", VFS_OPTION, "readdirplus=no", NULL },
	{ "no_posix_acl", VFS_SAME, NULL, "the default" },
	{ "no_security_label", VFS_SAME, NULL, "the default" },
	{ "xattrmap=", VFS_NOT_YET, NULL, "extended attribute names pass unmapped" },
	{ "announce_submounts", VFS_NOT_YET, NULL,
	  "the guest is not told which directories are mount points" },
	{ "posix_acl", VFS_NOT_YET, NULL,
	  "POSIX ACLs are not negotiated; with -o xattr the ACL attributes pass as they are" },
	{ "security_label", VFS_NOT_YET, NULL, "no security label is set on new files" },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void not_yet(const char *spelling, const char *what)
{
	fprintf(stderr, "passthrough_dax: %s: not implemented yet, ignored (%s)\n",
		spelling, what);
}

static int out_of_memory(void)
{
	fprintf(stderr, "passthrough_dax: out of memory\n");
	return -1;
}

/* Append one argument; -1 on allocation failure (reported). */
static int add(struct fuse_args *out, const char *arg)
{
	return fuse_opt_add_arg(out, arg) == 0 ? 0 : out_of_memory();
}

/* "-o TARGET<value>", the value escaped for an option list. */
static int add_option(struct fuse_args *out, const char *target, const char *value)
{
	char *escaped = NULL, *item;
	int res;

	if (value && fuse_opt_add_opt_escaped(&escaped, value) != 0)
		return out_of_memory();
	item = malloc(strlen(target) + (escaped ? strlen(escaped) : 0) + 1);
	if (!item) {
		free(escaped);
		return out_of_memory();
	}
	strcpy(item, target);
	if (escaped)
		strcat(item, escaped);
	res = add(out, "-o") == 0 && add(out, item) == 0 ? 0 : -1;
	free(item);
	free(escaped);
	return res;
}

static const struct vfs_long *find_long(const char *arg, const char **value)
{
	for (size_t i = 0; i < ARRAY_SIZE(vfs_longs); i++) {
		size_t len = strlen(vfs_longs[i].name);

		if (strncmp(arg, vfs_longs[i].name, len) != 0)
			continue;
		if (arg[len] == '\0') {
			*value = NULL;
			return &vfs_longs[i];
		}
		if (arg[len] == '=' && vfs_longs[i].value != VFS_NONE) {
			*value = arg + len + 1;
			return &vfs_longs[i];
		}
	}
	return NULL;
}

/* One long option (argv[*i]); may consume the next argument as its value. */
static int translate_long(const struct vfs_long *o, const char *value, int argc,
			  char *argv[], int *i, struct fuse_args *out,
			  struct pd_virtiofsd *v)
{
	if (!value && o->value == VFS_NEEDED) {
		if (*i + 1 >= argc) {
			fprintf(stderr, "passthrough_dax: %s needs a value\n", o->name);
			return -1;
		}
		value = argv[++*i];
	}
	if (!value && o->value == VFS_EQUALS) {
		fprintf(stderr, "passthrough_dax: %s needs a value, as %s=VALUE\n", o->name,
			o->name);
		return -1;
	}
	v->socket_named |= o->socket;
	switch (o->action) {
	case VFS_OPTION:
		if (strcmp(o->name, "--inode-file-handles") == 0 && strcmp(value, "fallback") == 0)
			value = "prefer";
		if (strcmp(o->name, "--log-level") == 0 &&
		    (strcmp(value, "debug") == 0 || strcmp(value, "trace") == 0) &&
		    add_option(out, "debug", NULL) != 0)
			return -1;
		return add_option(out, o->target, value);
	case VFS_ARG: {
		char *arg = malloc(strlen(o->target) + strlen(value) + 1);
		int res;

		if (!arg)
			return out_of_memory();
		strcpy(arg, o->target);
		strcat(arg, value);
		res = add(out, arg);
		free(arg);
		return res;
	}
	case VFS_SAME:
		return 0;
	case VFS_NOT_YET:
		/* "never" is what passthrough_dax does anyway. */
		if (o->value == VFS_OPTIONAL && value && strcmp(value, "never") == 0)
			return 0;
		not_yet(o->name, o->note);
		return 0;
	case VFS_SPECIAL:
		if (strcmp(o->name, "--daemonize") == 0)
			v->daemonize = true;
		return 0;	/* --print-capabilities: see pd_virtiofsd_capabilities() */
	}
	return 0;
}

static const struct vfs_item *find_item(const char *item, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(vfs_items); i++) {
		const char *name = vfs_items[i].name;
		size_t n = strlen(name);

		if (name[n - 1] == '=' ? len >= n && strncmp(item, name, n) == 0
				       : len == n && strncmp(item, name, n) == 0)
			return &vfs_items[i];
	}
	return NULL;
}

/*
 * One "-o" list: its items are passed on as they are (escapes kept), or
 * translated, or dropped with a warning. The result is one "-o" argument.
 */
static int translate_list(const char *list, struct fuse_args *out)
{
	size_t cap = strlen(list) * 2 + 64, used = 0;
	char *kept = malloc(cap);
	const char *p = list;
	int res = -1;

	if (!kept)
		return out_of_memory();
	kept[0] = '\0';
	while (*p) {
		const char *end = p;
		const struct vfs_item *it;
		const char *text;
		size_t len, tlen;

		while (*end && *end != ',') {
			if (*end == '\\' && end[1])
				end++;
			end++;
		}
		len = (size_t)(end - p);
		it = find_item(p, len);
		text = p;
		tlen = len;
		if (it && it->action == VFS_NOT_YET) {
			char spelling[64];

			snprintf(spelling, sizeof(spelling), "-o %.*s", (int)strcspn(it->name, "="),
				 it->name);
			not_yet(spelling, it->note);
			tlen = 0;
		} else if (it && it->action == VFS_SAME) {
			tlen = 0;
		} else if (it && it->action == VFS_OPTION) {
			/* A renamed item keeps its value: "loglevel=V" -> "log_level=V". */
			size_t n = strlen(it->name);

			if (it->name[n - 1] == '=') {
				if (used + strlen(it->target) + len + 2 > cap)
					goto out;
				used += (size_t)sprintf(kept + used, "%s%s%.*s", used ? "," : "",
							it->target, (int)(len - n), p + n);
				tlen = 0;
			} else {
				text = it->target;
				tlen = strlen(it->target);
			}
		}
		if (tlen) {
			if (used + tlen + 2 > cap)
				goto out;
			used += (size_t)sprintf(kept + used, "%s%.*s", used ? "," : "", (int)tlen,
						text);
		}
		p = *end ? end + 1 : end;
	}
	res = used ? (add(out, "-o") == 0 && add(out, kept) == 0 ? 0 : -1) : 0;
out:
	if (res && *p)
		fprintf(stderr, "passthrough_dax: -o %s: too long\n", list);
	free(kept);
	return res;
}

int pd_virtiofsd_args(int argc, char *argv[], struct fuse_args *out, struct pd_virtiofsd *v)
{
	bool options_end = false, mountpoint = false;

	memset(v, 0, sizeof(*v));
	*out = (struct fuse_args)FUSE_ARGS_INIT(0, NULL);
	if (add(out, argv[0]) != 0)
		goto out_fail;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value;
		const struct vfs_long *o;

		if (options_end || arg[0] != '-' || strcmp(arg, "-") == 0) {
			mountpoint = true;
			if (add(out, arg) != 0)
				goto out_fail;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_end = true;
			if (add(out, arg) != 0)
				goto out_fail;
			continue;
		}
		if (strncmp(arg, "-o", 2) == 0) {
			const char *list = arg[2] ? arg + 2 : NULL;

			if (!list) {
				if (i + 1 >= argc) {
					fprintf(stderr, "passthrough_dax: -o needs a value\n");
					goto out_fail;
				}
				list = argv[++i];
			}
			if (translate_list(list, out) != 0)
				goto out_fail;
			continue;
		}
		o = find_long(arg, &value);
		if (!o) {
			if (add(out, arg) != 0)	/* libfuse's, or unknown: said later */
				goto out_fail;
			continue;
		}
		if (translate_long(o, value, argc, argv, &i, out, v) != 0)
			goto out_fail;
	}
	/* virtiofsd has no mount point: the socket options say it all. */
	if (v->socket_named && !mountpoint && add(out, "vhost-user") != 0)
		goto out_fail;
	return 0;

out_fail:
	fuse_opt_free_args(out);
	return -1;
}

bool pd_virtiofsd_capabilities(int argc, char *argv[])
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--print-capabilities") != 0)
			continue;
		/*
		 * The vhost-user backend program conventions (QEMU's
		 * docs/interop/vhost-user.rst): a virtio-fs backend. It takes
		 * the Rust virtiofsd's separate options (--shared-dir, ...), which
		 * libvirt passes when it sees "separate-options".
		 */
		printf("{\n"
		       "  \"type\": \"fs\",\n"
		       "  \"features\": [\n"
		       "    \"separate-options\"\n"
		       "  ]\n"
		       "}\n");
		return true;
	}
	return false;
}

/* One help entry: the spelling, then its meaning wrapped at 80 columns. */
static void help_line(const char *left, const char *fmt, ...)
{
	char text[320];
	const char *p = text;
	int col = printf("    %-28s ", left);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (col > 33) {
		printf("\n%33s", "");
		col = 33;
	}
	while (*p) {
		size_t word = strcspn(p, " ");

		if (col > 33 && col + 1 + (int)word > 79) {
			printf("\n%33s", "");
			col = 33;
		} else if (col > 33) {
			putchar(' ');
			col++;
		}
		col += printf("%.*s", (int)word, p);
		p += word;
		p += strspn(p, " ");
	}
	putchar('\n');
}

void pd_virtiofsd_help(void)
{
	printf("virtiofsd options (QEMU's C virtiofsd 7.2 and the Rust virtiofsd):\n"
	       "    --socket-path=PATH, --socket=PATH or --fd=N name the vhost-user socket\n"
	       "    instead of a mount point; the daemon then stays in the foreground\n"
	       "    unless --daemonize is given (the vhost-user backend conventions).\n"
	       "    Long options take their value as --name=V or --name V.\n");
	for (size_t i = 0; i < ARRAY_SIZE(vfs_longs); i++) {
		const struct vfs_long *o = &vfs_longs[i];
		const char *value = o->value == VFS_NONE ? "" :
				    o->value == VFS_OPTIONAL ? "[=V]" : "=V";
		const char *v = o->value == VFS_NONE ? "" : "V";
		const char *sep = o->note ? "; " : "", *note = o->note ? o->note : "";
		char left[64];

		snprintf(left, sizeof(left), "%s%s", o->name, value);
		switch (o->action) {
		case VFS_OPTION:
			help_line(left, "-o %s%s%s%s", o->target, v, sep, note);
			break;
		case VFS_ARG:
			help_line(left, "%s%s%s%s", o->target, v, sep, note);
			break;
		case VFS_SAME:
			help_line(left, "accepted: %s", note);
			break;
		case VFS_NOT_YET:
			help_line(left, "NOT YET: ignored with a warning (%s)", note);
			break;
		case VFS_SPECIAL:
			help_line(left, "%s", note);
			break;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(vfs_items); i++) {
		const struct vfs_item *it = &vfs_items[i];
		bool valued = it->name[strlen(it->name) - 1] == '=';
		char left[64];

		snprintf(left, sizeof(left), "-o %s%s", it->name, valued ? "V" : "");
		if (it->action == VFS_OPTION)
			help_line(left, "-o %s%s", it->target, valued ? "V" : "");
		else if (it->action == VFS_SAME)
			help_line(left, "accepted: %s", it->note);
		else
			help_line(left, "NOT YET: ignored with a warning (%s)", it->note);
	}
	printf("    Other virtiofsd -o options (source=, cache=, timeout=, xattr, writeback,\n"
	       "    flock, posix_lock, allow_direct_io, killpriv_v2, their no_ forms,\n"
	       "    sandbox=, modcaps=, log_level=, max_idle_threads=, allow_root) and -f,\n"
	       "    -d, --rlimit-nofile=N, --thread-pool-size=N are this program's own.\n\n");
}
