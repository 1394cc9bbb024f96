/*
 * Writes the fuzzers' seed corpora. `gen_corpus DIR`: one valid request per
 * opcode of lib/opcodes.def (plus a few compat shapes), each prefixed with
 * the limit bytes fuzz_wire.c reads. `gen_corpus --session DIR`: inputs for
 * fuzz_session.c, each an INIT that offers DAX followed by requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* setxattr_ext, 64 MiB window, patch in.len; minor 45; 4 KiB alignment */
static const unsigned char prefix[3] = { 0x0b, 45, 12 };

struct seed {
	unsigned char b[65536];
	size_t len;
};

static void add(struct seed *s, const void *p, size_t n)
{
	if (s->len + n > sizeof(s->b)) {
		fprintf(stderr, "gen_corpus: seed too large\n");
		exit(1);
	}
	memcpy(s->b + s->len, p, n);
	s->len += n;
}

static void add_str(struct seed *s, const char *str)
{
	add(s, str, strlen(str) + 1);
}

/* Begin a request at s->len; returns where it starts (for its length). */
static size_t start_req(struct seed *s, uint32_t opcode, uint64_t unique,
			uint64_t nodeid)
{
	struct fuse_in_header h = { 0, opcode, unique, nodeid, 0, 0, 1, 0, 0 };
	size_t at = s->len;

	add(s, &h, sizeof(h));
	return at;
}

static void end_req(struct seed *s, size_t at)
{
	uint32_t len = (uint32_t)(s->len - at);

	memcpy(s->b + at, &len, sizeof(len));
}

static void start(struct seed *s, uint32_t opcode)
{
	s->len = 0;
	add(s, prefix, sizeof(prefix));
	start_req(s, opcode, 2, 1);
}

static int write_file(const struct seed *s, const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(s->b, 1, s->len, f) != s->len) {
		perror(path);
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

static int finish(struct seed *s, const char *dir, const char *name)
{
	end_req(s, sizeof(prefix));
	return write_file(s, dir, name);
}

/* The argument struct with the fields the decoder constrains made legal. */
static void add_arg(struct seed *s, uint32_t opcode, size_t size)
{
	union wire_arg a;

	memset(&a, 0, sizeof(a));
	switch (opcode) {
	case FUSE_WRITE: a.write.size = 4; break;
	case FUSE_SETXATTR: a.setxattr.size = 4; break;
	case FUSE_IOCTL: a.ioctl.in_size = 4; a.ioctl.out_size = 64; break;
	case FUSE_NOTIFY_REPLY: a.notify_reply.size = 4; break;
	case FUSE_BATCH_FORGET: a.batch_forget.count = 2; break;
	case FUSE_REMOVEMAPPING: a.removemapping.count = 2; break;
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS: a.read.size = 4096; break;
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR: a.getxattr.size = 100; break;
	case FUSE_POLL: a.poll.flags = FUSE_POLL_SCHEDULE_NOTIFY; break;
	case FUSE_LSEEK: a.lseek.whence = 3; break;	/* SEEK_DATA */
	case FUSE_GETLK:
	case FUSE_SETLK:
	case FUSE_SETLKW: a.getlk.lk.end = 99; a.getlk.lk.type = 1; break;
	case FUSE_INIT:
		a.init.major = 7;
		a.init.minor = 45;
		a.init.flags = FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT |
			       FUSE_DO_READDIRPLUS | FUSE_POSIX_LOCKS |
			       FUSE_FLOCK_LOCKS | FUSE_SETXATTR_EXT;
		a.init.flags2 = FUSE_HAS_INODE_DAX >> 32;
		break;
	case FUSE_SETUPMAPPING:
		a.setupmapping.fh = (uint64_t)-1;
		a.setupmapping.foffset = 2 << 20;
		a.setupmapping.len = 2 << 20;
		a.setupmapping.moffset = 4 << 20;
		a.setupmapping.flags = FUSE_SETUPMAPPING_FLAG_READ;
		break;
	}
	add(s, &a, size);
}

static void add_rest(struct seed *s, const struct wire_opcode *op)
{
	struct fuse_forget_one f[2] = { { 5, 1 }, { 6, 2 } };
	struct fuse_removemapping_one r[2] = { { 0, 2 << 20 },
					       { 4 << 20, 2 << 20 } };

	switch (op->shape) {
	case WIRE_FIXED:
		break;
	case WIRE_NAME:
		add_str(s, op->opcode == FUSE_TMPFILE ? "/" :
			   op->flags & OPF_XATTR_NAME ? "user.x" : "file");
		break;
	case WIRE_NAME_NAME:
		add_str(s, "file");
		add_str(s, op->opcode == FUSE_SYMLINK ? "../a/b" : "other");
		break;
	case WIRE_DATA:
		add(s, "data", 4);
		break;
	case WIRE_NAME_DATA:
		add_str(s, "user.x");
		add(s, "data", 4);
		break;
	case WIRE_ENTRIES:
		if (op->opcode == FUSE_BATCH_FORGET)
			add(s, f, sizeof(f));
		else
			add(s, r, sizeof(r));
		break;
	}
}

static int wire_seeds(const char *dir)
{
	struct seed *s = malloc(sizeof(*s));
	char name[64];
	uint32_t n;
	int err = 0;

	if (!s)
		return 1;
	for (n = 0; n < 64; n++) {
		const struct wire_opcode *op = wire_opcode_info(n);

		if (op == NULL)
			continue;
		start(s, n);
		add_arg(s, n, op->arg_size);
		add_rest(s, op);
		snprintf(name, sizeof(name), "%02u-%s", n, op->name);
		err |= finish(s, dir, name);
	}
	/* CUSE_INIT, the one opcode above 63. */
	start(s, FUSE_CUSE_INIT);
	add_arg(s, FUSE_CUSE_INIT, sizeof(struct cuse_init_in));
	err |= finish(s, dir, "4096-CUSE_INIT");
	/* INIT as a pre-7.36 kernel sends it: 16 bytes. */
	start(s, FUSE_INIT);
	add_arg(s, FUSE_INIT, 16);
	err |= finish(s, dir, "compat-INIT16");
	/* A CREATE with an 8-byte request extension after the name. */
	start(s, FUSE_CREATE);
	add_arg(s, FUSE_CREATE, sizeof(struct fuse_create_in));
	add_str(s, "file");
	add(s, "\x08\0\0\0\x20\0\0\0", 8);
	s->b[sizeof(prefix) + 36] = 1;	/* in.total_extlen = 1 */
	err |= finish(s, dir, "ext-CREATE");
	free(s);
	return err;
}

/* ------------------------------------------------------------------------
 * Session seeds: two option bytes, then messages with a 16-bit length.
 */

/* Begin a session message: a length prefix, then the request. */
static size_t start_msg(struct seed *s, uint32_t opcode, uint64_t unique,
			uint64_t nodeid)
{
	static const unsigned char zero[2];

	add(s, zero, 2);
	return start_req(s, opcode, unique, nodeid);
}

static void end_msg(struct seed *s, size_t at)
{
	size_t len = s->len - at;

	end_req(s, at);
	s->b[at - 2] = (unsigned char)len;
	s->b[at - 1] = (unsigned char)(len >> 8);
}

/* Whether the session's init() takes FUSE_SETXATTR_EXT (CFG_INIT_WANTS). */
static int setxattr_ext;

/* One request of each kind: the default arguments of add_arg/add_rest. */
static void add_default_msg(struct seed *s, uint32_t opcode, uint64_t unique)
{
	const struct wire_opcode *op = wire_opcode_info(opcode);
	size_t at = start_msg(s, opcode, unique, 2);

	add_arg(s, opcode, opcode == FUSE_SETXATTR && !setxattr_ext ?
		FUSE_COMPAT_SETXATTR_IN_SIZE : op->arg_size);
	add_rest(s, op);
	end_msg(s, at);
}

static void begin_session(struct seed *s, unsigned char cfg, unsigned char cfg2)
{
	s->len = 0;
	setxattr_ext = !!(cfg & 0x40);
	add(s, &cfg, 1);
	add(s, &cfg2, 1);
	add_default_msg(s, FUSE_INIT, 1);
}

static void add_mapping(struct seed *s, uint64_t unique, uint64_t ino,
			uint64_t foffset, uint64_t len, uint64_t moffset,
			uint64_t flags)
{
	struct fuse_setupmapping_in m = { (uint64_t)-1, foffset, len, flags,
					  moffset };
	size_t at = start_msg(s, FUSE_SETUPMAPPING, unique, ino);

	add(s, &m, sizeof(m));
	end_msg(s, at);
}

/* Map, map over it, read the window's inode, remove, a retrieve round. */
static void add_dax_story(struct seed *s, uint64_t *unique)
{
	struct fuse_removemapping_in rm = { 2 };
	struct fuse_removemapping_one r[2] = { { 0, 8192 }, { 1 << 20, 4096 } };
	struct fuse_getattr_in ga = { 0 };
	struct fuse_notify_retrieve_in nr = { 0 };
	struct fuse_setattr_in sa = { 0 };
	size_t at;

	add_mapping(s, (*unique)++, 5, 0, 16384, 0, FUSE_SETUPMAPPING_FLAG_READ |
		    FUSE_SETUPMAPPING_FLAG_WRITE);
	add_mapping(s, (*unique)++, 6, 8192, 8192, 1 << 20,
		    FUSE_SETUPMAPPING_FLAG_READ);
	add_mapping(s, (*unique)++, 5, 4096, 4096, 4096,
		    FUSE_SETUPMAPPING_FLAG_READ);
	/* Shrink inode 5: its mappings are clipped. */
	sa.valid = FATTR_SIZE;
	sa.size = 100;
	at = start_msg(s, FUSE_SETATTR, (*unique)++, 5);
	add(s, &sa, sizeof(sa));
	end_msg(s, at);
	at = start_msg(s, FUSE_REMOVEMAPPING, (*unique)++, 0);
	add(s, &rm, sizeof(rm));
	add(s, r, sizeof(r));
	end_msg(s, at);
	/* GETATTR of an inode = 7 mod 16 makes the fs ask for a retrieve,
	 * which is notification unique 1. */
	at = start_msg(s, FUSE_GETATTR, (*unique)++, 7);
	add(s, &ga, sizeof(ga));
	end_msg(s, at);
	nr.size = 4;
	at = start_msg(s, FUSE_NOTIFY_REPLY, 1, 7);
	add(s, &nr, sizeof(nr));
	add(s, "data", 4);
	end_msg(s, at);
}

static int session_seeds(const char *dir)
{
	/* Option sets (fuzz_session.c CFG_*): plain, write_buf+forget_multi,
	 * no ops, debug, loop, init() wants + small max_write, allow_root. */
	static const unsigned char cfgs[][2] = {
		{ 0x00, 0x00 }, { 0x03, 0x00 }, { 0x04, 0x00 }, { 0x10, 0x00 },
		{ 0x80, 0x00 }, { 0x40, 8 << 3 }, { 0x20, 0x00 }, { 0x00, 0x03 },
	};
	struct seed *s = malloc(sizeof(*s));
	char name[64];
	uint64_t unique;
	uint32_t n;
	size_t at;
	int err = 0;

	if (!s)
		return 1;
	/* INIT, then one request of each opcode. */
	for (n = 0; n < 64; n++) {
		if (wire_opcode_info(n) == NULL || n == FUSE_INIT)
			continue;
		begin_session(s, 0, 0);
		add_default_msg(s, n, 2);
		snprintf(name, sizeof(name), "s-%02u-%s", n,
			 wire_opcode_info(n)->name);
		err |= write_file(s, dir, name);
	}
	/* Every opcode in one input, under each option set, then DAX. */
	for (size_t c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++) {
		begin_session(s, cfgs[c][0], cfgs[c][1]);
		unique = 2;
		for (n = 0; n < 64; n++)
			if (wire_opcode_info(n) && n != FUSE_INIT &&
			    n != FUSE_DESTROY)
				add_default_msg(s, n, unique++);
		add_dax_story(s, &unique);
		add_default_msg(s, FUSE_DESTROY, unique++);
		snprintf(name, sizeof(name), "s-all-%02x-%02x", cfgs[c][0],
			 cfgs[c][1]);
		err |= write_file(s, dir, name);
	}
	/* DAX alone. */
	begin_session(s, 0, 0);
	unique = 2;
	add_dax_story(s, &unique);
	err |= write_file(s, dir, "s-dax");
	/* Broken framing mid-stream (in.len one short): the session ends,
	 * is reset, and serves the rest. */
	begin_session(s, 0, 0);
	add_default_msg(s, FUSE_GETATTR, 2);
	at = s->len;
	add_default_msg(s, FUSE_STATFS, 3);
	s->b[at + 2] -= 1;
	add_default_msg(s, FUSE_LOOKUP, 4);
	add_default_msg(s, FUSE_SETUPMAPPING, 5);
	err |= write_file(s, dir, "s-broken-framing");
	free(s);
	return err;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--session") == 0)
		return session_seeds(argv[2]) ? 1 : 0;
	if (argc != 2) {
		fprintf(stderr, "usage: %s [--session] DIR\n", argv[0]);
		return 2;
	}
	return wire_seeds(argv[1]) ? 1 : 0;
}
