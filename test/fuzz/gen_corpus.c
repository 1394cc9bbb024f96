/*
 * Writes the fuzzer's seed corpus: one valid request per opcode of
 * lib/opcodes.def (plus a few compat shapes), each prefixed with the limit
 * bytes fuzz_wire.c reads. Usage: gen_corpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* setxattr_ext, 64 MiB window, patch in.len; minor 45; 4 KiB alignment */
static const unsigned char prefix[3] = { 0x0b, 45, 12 };

struct seed {
	unsigned char b[8192];
	size_t len;
};

static void add(struct seed *s, const void *p, size_t n)
{
	memcpy(s->b + s->len, p, n);
	s->len += n;
}

static void add_str(struct seed *s, const char *str)
{
	add(s, str, strlen(str) + 1);
}

static void start(struct seed *s, uint32_t opcode)
{
	struct fuse_in_header h = { 0, opcode, 2, 1, 0, 0, 1, 0, 0 };

	s->len = 0;
	add(s, prefix, sizeof(prefix));
	add(s, &h, sizeof(h));
}

static int finish(struct seed *s, const char *dir, const char *name)
{
	uint32_t len = (uint32_t)(s->len - sizeof(prefix));
	char path[4096];
	FILE *f;

	memcpy(s->b + sizeof(prefix), &len, sizeof(len));
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

/* The argument struct with the fields the decoder constrains made legal. */
static void add_arg(struct seed *s, uint32_t opcode, size_t size)
{
	union wire_arg a;

	memset(&a, 0, sizeof(a));
	switch (opcode) {
	case FUSE_WRITE: a.write.size = 4; break;
	case FUSE_SETXATTR: a.setxattr.size = 4; break;
	case FUSE_IOCTL: a.ioctl.in_size = 4; break;
	case FUSE_NOTIFY_REPLY: a.notify_reply.size = 4; break;
	case FUSE_BATCH_FORGET: a.batch_forget.count = 2; break;
	case FUSE_REMOVEMAPPING: a.removemapping.count = 2; break;
	case FUSE_INIT:
		a.init.major = 7;
		a.init.minor = 45;
		a.init.flags = FUSE_INIT_EXT | FUSE_MAP_ALIGNMENT;
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

int main(int argc, char **argv)
{
	struct seed s;
	char name[64];
	uint32_t n;
	int err = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	for (n = 0; n < 64; n++) {
		const struct wire_opcode *op = wire_opcode_info(n);

		if (op == NULL)
			continue;
		start(&s, n);
		add_arg(&s, n, op->arg_size);
		add_rest(&s, op);
		snprintf(name, sizeof(name), "%02u-%s", n, op->name);
		err |= finish(&s, argv[1], name);
	}
	/* INIT as a pre-7.36 kernel sends it: 16 bytes. */
	start(&s, FUSE_INIT);
	add_arg(&s, FUSE_INIT, 16);
	err |= finish(&s, argv[1], "compat-INIT16");
	/* A CREATE with an 8-byte request extension after the name. */
	start(&s, FUSE_CREATE);
	add_arg(&s, FUSE_CREATE, sizeof(struct fuse_create_in));
	add_str(&s, "file");
	add(&s, "\x08\0\0\0\x20\0\0\0", 8);
	s.b[sizeof(prefix) + 36] = 1;	/* in.total_extlen = 1 */
	err |= finish(&s, argv[1], "ext-CREATE");
	return err ? 1 : 0;
}
