/*
 * Unit test of the wire decoder (lib/wire.c): builds requests byte by byte,
 * decodes every opcode of lib/opcodes.def, and sends every bad input that
 * wire.h's rule table lists, expecting exactly its errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static int failures;
static int checks;

#define CHECK(cond, ...)						\
	do {								\
		checks++;						\
		if (!(cond)) {						\
			failures++;					\
			printf("FAIL %s:%d: ", __FILE__, __LINE__);	\
			printf(__VA_ARGS__);				\
			printf("\n");					\
		}							\
	} while (0)

/* ------------------------------------------------------------------------
 * A request under construction. decode() copies it into an exactly-sized
 * heap buffer so a sanitizer sees any read past its end.
 * --------------------------------------------------------------------- */
#define MSG_MAX (64 * 1024)

struct msg {
	unsigned char b[MSG_MAX];
	size_t len;
	unsigned char *heap;	/* the copy decoded last; names point here */
};

static struct msg M;

static void msg_start(uint32_t opcode)
{
	struct fuse_in_header h = {
		.opcode = opcode, .unique = 0x1234, .nodeid = 7,
		.uid = 1000, .gid = 100, .pid = 42,
	};

	memcpy(M.b, &h, sizeof(h));
	M.len = sizeof(h);
}

static void msg_add(const void *p, size_t n)
{
	if (M.len + n > MSG_MAX) {
		printf("test bug: message too long\n");
		exit(2);
	}
	memcpy(M.b + M.len, p, n);
	M.len += n;
}

static void msg_str(const char *s)
{
	msg_add(s, strlen(s) + 1);
}

static void msg_fill(char ch, size_t n)
{
	if (M.len + n > MSG_MAX) {
		printf("test bug: message too long\n");
		exit(2);
	}
	memset(M.b + M.len, ch, n);
	M.len += n;
}

/* A name of n copies of ch, with its NUL */
static void msg_name(char ch, size_t n)
{
	msg_fill(ch, n);
	msg_fill('\0', 1);
}

static void msg_set_extlen(uint16_t units)
{
	struct fuse_in_header h;

	memcpy(&h, M.b, sizeof(h));
	h.total_extlen = units;
	memcpy(M.b, &h, sizeof(h));
}

/* Decode with in.len patched to `hdr_len` and `len` bytes passed. */
static int decode_raw(size_t len, uint32_t hdr_len,
		      const struct wire_limits *lim, struct wire_req *w)
{
	if (len >= 4)
		memcpy(M.b, &hdr_len, sizeof(hdr_len));
	free(M.heap);
	M.heap = malloc(len ? len : 1);
	if (M.heap == NULL) {
		printf("out of memory\n");
		exit(2);
	}
	memcpy(M.heap, M.b, len);
	return wire_decode(M.heap, len, lim, w);
}

static int decode(const struct wire_limits *lim, struct wire_req *w)
{
	return decode_raw(M.len, (uint32_t)M.len, lim, w);
}

#define WINDOW (64ull << 20)	/* 64 MiB */
#define ALIGN 4096ull

static const struct wire_limits lim_plain = {
	.proto_minor = 45, .setxattr_ext = 0,
};
static const struct wire_limits lim_ext = {
	.proto_minor = 45, .setxattr_ext = 1,
};
static const struct wire_limits lim_dax = {
	.proto_minor = 45, .dax_window_size = WINDOW, .dax_alignment = ALIGN,
};

/* Expect exactly `err` from decoding the current message. */
#define EXPECT_ERR(lim, err, what)					\
	do {								\
		struct wire_req w_;					\
		int rc_ = decode(lim, &w_);				\
		CHECK(rc_ == (err), "%s: got %d (%s), want %d (%s)",	\
		      what, rc_, strerror(-rc_), err, strerror(-(err)));\
	} while (0)

/* ------------------------------------------------------------------------
 * The opcode table against opcodes.def and the union.
 * --------------------------------------------------------------------- */

/* sizeof the union member named after the opcode; -1 for `none`. */
static long member_size(uint32_t opcode)
{
	union wire_arg *a = NULL;

	switch (opcode) {
	case FUSE_FORGET: return sizeof(a->forget);
	case FUSE_GETATTR: return sizeof(a->getattr);
	case FUSE_SETATTR: return sizeof(a->setattr);
	case FUSE_MKNOD: return sizeof(a->mknod);
	case FUSE_MKDIR: return sizeof(a->mkdir);
	case FUSE_RENAME: return sizeof(a->rename);
	case FUSE_LINK: return sizeof(a->link);
	case FUSE_OPEN: return sizeof(a->open);
	case FUSE_READ: return sizeof(a->read);
	case FUSE_WRITE: return sizeof(a->write);
	case FUSE_RELEASE: return sizeof(a->release);
	case FUSE_FSYNC: return sizeof(a->fsync);
	case FUSE_SETXATTR: return sizeof(a->setxattr);
	case FUSE_GETXATTR: return sizeof(a->getxattr);
	case FUSE_LISTXATTR: return sizeof(a->listxattr);
	case FUSE_FLUSH: return sizeof(a->flush);
	case FUSE_INIT: return sizeof(a->init);
	case FUSE_OPENDIR: return sizeof(a->opendir);
	case FUSE_READDIR: return sizeof(a->readdir);
	case FUSE_RELEASEDIR: return sizeof(a->releasedir);
	case FUSE_FSYNCDIR: return sizeof(a->fsyncdir);
	case FUSE_GETLK: return sizeof(a->getlk);
	case FUSE_SETLK: return sizeof(a->setlk);
	case FUSE_SETLKW: return sizeof(a->setlkw);
	case FUSE_ACCESS: return sizeof(a->access);
	case FUSE_CREATE: return sizeof(a->create);
	case FUSE_INTERRUPT: return sizeof(a->interrupt);
	case FUSE_BMAP: return sizeof(a->bmap);
	case FUSE_IOCTL: return sizeof(a->ioctl);
	case FUSE_POLL: return sizeof(a->poll);
	case FUSE_NOTIFY_REPLY: return sizeof(a->notify_reply);
	case FUSE_BATCH_FORGET: return sizeof(a->batch_forget);
	case FUSE_FALLOCATE: return sizeof(a->fallocate);
	case FUSE_READDIRPLUS: return sizeof(a->readdirplus);
	case FUSE_RENAME2: return sizeof(a->rename2);
	case FUSE_LSEEK: return sizeof(a->lseek);
	case FUSE_COPY_FILE_RANGE: return sizeof(a->copy_file_range);
	case FUSE_SETUPMAPPING: return sizeof(a->setupmapping);
	case FUSE_REMOVEMAPPING: return sizeof(a->removemapping);
	case FUSE_SYNCFS: return sizeof(a->syncfs);
	case FUSE_TMPFILE: return sizeof(a->tmpfile);
	case FUSE_STATX: return sizeof(a->statx);
	case FUSE_CUSE_INIT: return sizeof(a->cuse_init);
	}
	return -1;
}

struct def_row {
	uint32_t opcode;
	const char *name;
	size_t arg_size;
	enum wire_shape shape;
	unsigned flags;
};

#define DEF_SIZE(argstruct) DEF_SIZE_##argstruct)
#define DEF_SIZE_none (0
#define DEF_SIZE_struct sizeof(struct
static const struct def_row def_rows[] = {
#define OPCODE(number, name, argstruct, shape, flags) \
	{ number, #name, DEF_SIZE(argstruct), shape, flags },
#include "opcodes.def"
#undef OPCODE
};
#define N_DEFS (sizeof(def_rows) / sizeof(def_rows[0]))

static int is_defined(uint32_t opcode)
{
	size_t i;

	for (i = 0; i < N_DEFS; i++)
		if (def_rows[i].opcode == opcode)
			return 1;
	return 0;
}

static void test_table(void)
{
	uint32_t unknown[] = { 0, 7, 19, 53, 63, 64, 4095, 4097, 436207616, 0xffffffff };
	size_t i;
	uint32_t n;

	for (i = 0; i < N_DEFS; i++) {
		const struct def_row *d = &def_rows[i];
		const struct wire_opcode *op = wire_opcode_info(d->opcode);
		char upper[64];
		size_t k;

		CHECK(op != NULL, "opcode %u (%s) missing", d->opcode, d->name);
		if (op == NULL)
			continue;
		for (k = 0; d->name[k] && k < sizeof(upper) - 1; k++)
			upper[k] = (char)(d->name[k] - ('a' <= d->name[k] &&
				d->name[k] <= 'z' ? 'a' - 'A' : 0));
		upper[k] = '\0';
		CHECK(op->opcode == d->opcode, "%s: opcode", d->name);
		CHECK(strcmp(op->name, upper) == 0, "%s: name %s", d->name,
		      op->name);
		CHECK(strcmp(wire_opcode_name(d->opcode), upper) == 0,
		      "%s: wire_opcode_name", d->name);
		CHECK(op->arg_size == d->arg_size, "%s: arg_size", d->name);
		CHECK(op->shape == d->shape && op->flags == d->flags,
		      "%s: shape/flags", d->name);
		CHECK(d->arg_size == 0 ? member_size(d->opcode) == -1 :
		      member_size(d->opcode) == (long)d->arg_size,
		      "%s: union member does not match opcodes.def", d->name);
	}
	for (n = 0; n < 4200; n++)
		CHECK((wire_opcode_info(n) != NULL) == is_defined(n),
		      "opcode %u: table and opcodes.def disagree", n);
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		CHECK(wire_opcode_info(unknown[i]) == NULL, "%u known", unknown[i]);
		CHECK(strcmp(wire_opcode_name(unknown[i]), "UNKNOWN") == 0,
		      "%u name", unknown[i]);
	}
	CHECK(N_DEFS == 51, "opcodes.def has %zu entries", N_DEFS);
}

/* ------------------------------------------------------------------------
 * Good requests: one per opcode, fields checked.
 * --------------------------------------------------------------------- */

/* Fill n bytes with a recognisable pattern that depends on the opcode. */
static void pattern(void *p, size_t n, uint32_t opcode)
{
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)(opcode * 7 + i * 13 + 1);
}

/*
 * Build a valid request for `opcode` whose argument starts from the pattern
 * and has the fields the rules constrain set to legal values. The argument
 * as sent is left in *arg.
 */
static void build_good(uint32_t opcode, union wire_arg *arg)
{
	const struct wire_opcode *op = wire_opcode_info(opcode);
	size_t i;

	memset(arg, 0, sizeof(*arg));
	pattern(arg, op->arg_size, opcode);
	msg_start(opcode);

	switch (opcode) {
	case FUSE_GETLK:
	case FUSE_SETLK:
	case FUSE_SETLKW:
		/* A lock range is checked: a real type, start <= end <= OFFSET_MAX. */
		arg->getlk.lk.type = F_WRLCK;
		arg->getlk.lk.start = 100;
		arg->getlk.lk.end = 199;
		msg_add(arg, op->arg_size);
		return;
	case FUSE_WRITE:
		arg->write.size = 5;
		msg_add(arg, op->arg_size);
		msg_add("hello", 5);
		return;
	case FUSE_SETXATTR:
		arg->setxattr.size = 3;
		msg_add(arg, op->arg_size);	/* lim_ext is used for it */
		msg_str("user.test");
		msg_add("v\0w", 3);
		return;
	case FUSE_IOCTL:
		arg->ioctl.in_size = 4;
		msg_add(arg, op->arg_size);
		msg_add("\1\2\3\4", 4);
		return;
	case FUSE_NOTIFY_REPLY:
		arg->notify_reply.size = 6;
		msg_add(arg, op->arg_size);
		msg_add("abcdef", 6);
		return;
	case FUSE_BATCH_FORGET: {
		struct fuse_forget_one one[3];

		arg->batch_forget.count = 3;
		msg_add(arg, op->arg_size);
		for (i = 0; i < 3; i++) {
			one[i].nodeid = 100 + i;
			one[i].nlookup = 10 * (i + 1);
		}
		msg_add(one, sizeof(one));
		return;
	}
	case FUSE_SETUPMAPPING:
		arg->setupmapping.fh = (uint64_t)-1;
		arg->setupmapping.foffset = 2 << 20;
		arg->setupmapping.len = 2 << 20;
		arg->setupmapping.moffset = 4 << 20;
		arg->setupmapping.flags = FUSE_SETUPMAPPING_FLAG_READ |
					  FUSE_SETUPMAPPING_FLAG_WRITE;
		msg_add(arg, op->arg_size);
		return;
	case FUSE_REMOVEMAPPING: {
		struct fuse_removemapping_one one[2] = {
			{ 0, 2 << 20 }, { WINDOW - (2 << 20), 2 << 20 },
		};

		arg->removemapping.count = 2;
		msg_add(arg, op->arg_size);
		msg_add(one, sizeof(one));
		return;
	}
	}

	msg_add(arg, op->arg_size);
	switch (op->shape) {
	case WIRE_NAME:
		if (opcode == FUSE_TMPFILE)
			msg_str("/");
		else if (op->flags & OPF_XATTR_NAME)
			msg_str("user.test");
		else
			msg_str("name");
		break;
	case WIRE_NAME_NAME:
		msg_str("name");
		msg_str(opcode == FUSE_SYMLINK ? "../target/x" : "other");
		break;
	default:
		break;
	}
}

static const struct wire_limits *lim_for(uint32_t opcode)
{
	if (opcode == FUSE_SETXATTR)
		return &lim_ext;
	if (opcode == FUSE_SETUPMAPPING || opcode == FUSE_REMOVEMAPPING)
		return &lim_dax;
	return &lim_plain;
}

static void check_good_payload(uint32_t opcode, const struct wire_req *w)
{
	const struct wire_opcode *op = w->op;
	struct fuse_forget_one f;
	struct fuse_removemapping_one r;

	switch (opcode) {
	case FUSE_WRITE:
		CHECK(w->data_len == 5 && memcmp(w->data, "hello", 5) == 0,
		      "WRITE data");
		return;
	case FUSE_SETXATTR:
		CHECK(w->name && strcmp(w->name, "user.test") == 0, "SETXATTR name");
		CHECK(w->data_len == 3 && memcmp(w->data, "v\0w", 3) == 0,
		      "SETXATTR value");
		return;
	case FUSE_IOCTL:
		CHECK(w->data_len == 4 && memcmp(w->data, "\1\2\3\4", 4) == 0,
		      "IOCTL data");
		return;
	case FUSE_NOTIFY_REPLY:
		CHECK(w->data_len == 6 && memcmp(w->data, "abcdef", 6) == 0,
		      "NOTIFY_REPLY data");
		return;
	case FUSE_BATCH_FORGET:
		CHECK(w->count == 3 && w->data_len == 48, "BATCH_FORGET count");
		wire_batch_forget_entry(w, 2, &f);
		CHECK(f.nodeid == 102 && f.nlookup == 30, "BATCH_FORGET entry 2");
		wire_batch_forget_entry(w, 3, &f);
		CHECK(f.nodeid == 0 && f.nlookup == 0, "BATCH_FORGET out of range");
		return;
	case FUSE_SETUPMAPPING:
		CHECK(w->arg.setupmapping.moffset == 4 << 20 &&
		      w->arg.setupmapping.len == 2 << 20, "SETUPMAPPING fields");
		return;
	case FUSE_REMOVEMAPPING:
		CHECK(w->count == 2, "REMOVEMAPPING count");
		CHECK((const char *)w->data == (const char *)M.heap + 44,
		      "REMOVEMAPPING entries at byte 44");
		wire_removemapping_entry(w, 1, &r);
		CHECK(r.moffset == WINDOW - (2 << 20) && r.len == 2 << 20,
		      "REMOVEMAPPING entry 1");
		return;
	}
	if (op->shape == WIRE_NAME) {
		const char *want = opcode == FUSE_TMPFILE ? "/" :
				   op->flags & OPF_XATTR_NAME ? "user.test" : "name";
		CHECK(w->name && strcmp(w->name, want) == 0, "%s name", op->name);
	} else if (op->shape == WIRE_NAME_NAME) {
		CHECK(w->name && strcmp(w->name, "name") == 0, "%s name", op->name);
		CHECK(w->name2 && strcmp(w->name2, opcode == FUSE_SYMLINK ?
		      "../target/x" : "other") == 0, "%s name2", op->name);
	} else {
		CHECK(w->name == NULL && w->name2 == NULL && w->data == NULL,
		      "%s: no names/data", op->name);
	}
}

/* Lock ranges that cannot become a struct flock are refused. */
static void test_lock_ranges(void)
{
	static const struct { uint32_t type; uint64_t start, end; int want; } cases[] = {
		{ F_RDLCK, 0, INT64_MAX, 0 },		/* to end of file */
		{ F_UNLCK, 5, 5, 0 },			/* one byte */
		{ F_WRLCK, 10, 9, -EINVAL },		/* start after end */
		{ F_WRLCK, 0, (uint64_t)INT64_MAX + 1, -EINVAL },
		{ F_WRLCK, UINT64_MAX, UINT64_MAX, -EINVAL },
		{ 7, 0, 10, -EINVAL },			/* no such type */
	};
	static const uint32_t ops[] = { FUSE_GETLK, FUSE_SETLK, FUSE_SETLKW };

	for (size_t o = 0; o < 3; o++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			union wire_arg a;
			struct wire_req w;
			int rc;

			build_good(ops[o], &a);
			a.getlk.lk.type = cases[i].type;
			a.getlk.lk.start = cases[i].start;
			a.getlk.lk.end = cases[i].end;
			memcpy(M.b + sizeof(struct fuse_in_header), &a, sizeof(a.getlk));
			rc = decode(lim_for(ops[o]), &w);
			CHECK(rc == cases[i].want, "%s lock case %zu: got %d, want %d",
			      wire_opcode_info(ops[o])->name, i, rc, cases[i].want);
		}
	}
}

static void test_good_all(void)
{
	size_t i;

	for (i = 0; i < N_DEFS; i++) {
		uint32_t opcode = def_rows[i].opcode;
		const struct wire_opcode *op = wire_opcode_info(opcode);
		union wire_arg sent;
		struct wire_req w;
		int rc;

		build_good(opcode, &sent);
		rc = decode(lim_for(opcode), &w);
		CHECK(rc == 0, "%s: good request gave %d", op->name, rc);
		if (rc != 0)
			continue;
		CHECK(w.op == op, "%s: op", op->name);
		CHECK(w.in.opcode == opcode && w.in.unique == 0x1234 &&
		      w.in.nodeid == 7 && w.in.uid == 1000 && w.in.gid == 100 &&
		      w.in.pid == 42 && w.in.len == M.len, "%s: header", op->name);
		CHECK(memcmp(&w.arg, &sent, op->arg_size) == 0,
		      "%s: argument not copied", op->name);
		check_good_payload(opcode, &w);

		/* Trailing bytes after a fixed struct are ignored. */
		if (op->shape == WIRE_FIXED && opcode != FUSE_SETUPMAPPING) {
			msg_fill('\x55', 24);
			rc = decode(lim_for(opcode), &w);
			CHECK(rc == 0 && memcmp(&w.arg, &sent, op->arg_size) == 0,
			      "%s: trailing bytes rejected (%d)", op->name, rc);
		}
		/* One byte short of the struct is rejected (INIT excepted). */
		if (op->arg_size > 0 && opcode != FUSE_INIT) {
			build_good(opcode, &sent);
			M.len = sizeof(struct fuse_in_header) + op->arg_size - 1;
			EXPECT_ERR(lim_for(opcode), -EINVAL, op->name);
		}
	}
}

/*
 * Too short, for every opcode: each good request of test_good_all cut at
 * every length below its own is refused (a header cut short breaks the
 * framing; a body cut short loses part of the struct, a name's NUL, data
 * or entries). INIT alone accepts its old 8- and 16-byte bodies. Opcodes
 * whose request is a bare header can only be cut into the header.
 */
static void test_short_all(void)
{
	size_t i, cut;

	for (i = 0; i < N_DEFS; i++) {
		uint32_t opcode = def_rows[i].opcode;
		const struct wire_opcode *op = wire_opcode_info(opcode);
		const struct wire_limits *lim = lim_for(opcode);
		union wire_arg sent;
		struct wire_req w;
		size_t full;
		int bad = 0, rc;

		build_good(opcode, &sent);
		full = M.len;
		CHECK(decode(lim, &w) == 0, "%s: good request refused", op->name);
		/* Cut into the header: always a framing error. */
		for (cut = 0; cut < sizeof(struct fuse_in_header); cut++) {
			build_good(opcode, &sent);
			rc = decode_raw(cut, (uint32_t)cut, lim, &w);
			if (rc != -EPROTO) {
				printf("  %s cut to %zu bytes: %d\n", op->name, cut, rc);
				bad++;
			}
		}
		CHECK(bad == 0, "%s: a request shorter than the header was not -EPROTO",
		      op->name);
		/* Cut into the body, with in.len telling the truth. */
		bad = 0;
		for (cut = sizeof(struct fuse_in_header); cut < full; cut++) {
			size_t body = cut - sizeof(struct fuse_in_header);
			int want = -EINVAL;

			if (opcode == FUSE_INIT && body >= FUSE_COMPAT_5_INIT_IN_SIZE)
				want = 0;
			build_good(opcode, &sent);
			M.len = cut;
			rc = decode(lim, &w);
			if (rc != want) {
				printf("  %s cut to %zu of %zu bytes: %d, want %d\n", op->name,
				       cut, full, rc, want);
				bad++;
			}
		}
		CHECK(bad == 0, "%s: %d truncated requests not refused with -EINVAL",
		      op->name, bad);
		/* The header may not claim more than was received. */
		build_good(opcode, &sent);
		CHECK(decode_raw(M.len, (uint32_t)M.len + 1, lim, &w) == -EPROTO,
		      "%s: in.len one more than received", op->name);
		if (op->arg_size == 0 && op->shape == WIRE_FIXED)
			CHECK(full == sizeof(struct fuse_in_header),
			      "%s: the good request is not a bare header", op->name);
	}
}

/* ------------------------------------------------------------------------
 * Framing and header.
 * --------------------------------------------------------------------- */
static void test_framing(void)
{
	struct wire_req w;
	union wire_arg a;
	int rc;

	msg_start(FUSE_STATFS);
	CHECK(decode_raw(0, 0, &lim_plain, &w) == -EPROTO, "len 0");
	CHECK(decode_raw(39, 39, &lim_plain, &w) == -EPROTO, "len 39");
	CHECK(w.op == NULL, "op set on EPROTO");
	CHECK(decode_raw(40, 41, &lim_plain, &w) == -EPROTO, "in.len > len");
	CHECK(decode_raw(40, 39, &lim_plain, &w) == -EPROTO, "in.len < len");
	CHECK(decode_raw(40, 0, &lim_plain, &w) == -EPROTO, "in.len 0");
	CHECK(decode_raw(40, 40, &lim_plain, &w) == 0, "STATFS bare header");

	msg_start(7);
	rc = decode(&lim_plain, &w);
	CHECK(rc == -ENOSYS && w.op == NULL, "opcode 7");
	CHECK(w.in.unique == 0x1234 && w.in.opcode == 7,
	      "header not filled on ENOSYS");
	msg_start(CUSE_INIT);
	EXPECT_ERR(&lim_plain, -EINVAL, "CUSE_INIT without its argument");
	msg_start(FUSE_COPY_FILE_RANGE_64);
	EXPECT_ERR(&lim_plain, -ENOSYS, "COPY_FILE_RANGE_64");
	msg_start(0xffffffffu);
	EXPECT_ERR(&lim_plain, -ENOSYS, "opcode ~0");

	/* The header is kept on a later error too. */
	msg_start(FUSE_GETATTR);
	msg_fill(0, 4);
	rc = decode(&lim_plain, &w);
	CHECK(rc == -EINVAL && w.in.unique == 0x1234 && w.op != NULL,
	      "short GETATTR keeps header");

	/* Extensions: counted from the end; may not overrun the body. */
	build_good(FUSE_CREATE, &a);
	msg_fill('\xee', 16);
	msg_set_extlen(2);
	rc = decode(&lim_plain, &w);
	CHECK(rc == 0 && strcmp(w.name, "name") == 0, "CREATE with extensions");
	msg_set_extlen(200);
	EXPECT_ERR(&lim_plain, -EINVAL, "extensions overrun");
	/* An extension that swallows the name's NUL */
	build_good(FUSE_MKDIR, &a);
	msg_set_extlen(1);
	EXPECT_ERR(&lim_plain, -EINVAL, "extension hides the name");
}

/* ------------------------------------------------------------------------
 * Compat sizes.
 * --------------------------------------------------------------------- */
static void test_compat(void)
{
	struct fuse_init_in init = { 7, 45, 1 << 17, 0xabc, 0x1, { 0 } };
	struct fuse_setxattr_in sx = { 2, 1, 0x77, 0 };
	struct fuse_write_in wr = { 9, 4096, 3, 0, 0, 0, 0 };
	struct fuse_mknod_in mk = { 0100644, 0, 022, 0 };
	struct wire_limits old = lim_plain;
	struct wire_req w;
	int rc;

	/* INIT: 64, 16, 8 bytes accepted and zero-extended; 7 refused. */
	msg_start(FUSE_INIT);
	msg_add(&init, 64);
	CHECK(decode(&lim_plain, &w) == 0 && w.arg.init.flags2 == 1, "INIT 64");
	msg_start(FUSE_INIT);
	msg_add(&init, 16);
	rc = decode(&lim_plain, &w);
	CHECK(rc == 0 && w.arg.init.flags == 0xabc && w.arg.init.flags2 == 0,
	      "INIT 16 (%d)", rc);
	msg_start(FUSE_INIT);
	msg_add(&init, 8);
	rc = decode(&lim_plain, &w);
	CHECK(rc == 0 && w.arg.init.minor == 45 && w.arg.init.max_readahead == 0,
	      "INIT 8 (%d)", rc);
	msg_start(FUSE_INIT);
	msg_add(&init, 7);
	EXPECT_ERR(&lim_plain, -EINVAL, "INIT 7");
	msg_start(FUSE_INIT);
	msg_add(&init, 64);
	msg_fill(1, 32);
	CHECK(decode(&lim_plain, &w) == 0, "INIT longer than today's struct");

	/* SETXATTR: 8 bytes without setxattr_ext, 16 with it. */
	msg_start(FUSE_SETXATTR);
	msg_add(&sx, 8);
	msg_str("user.a");
	msg_add("xy", 2);
	rc = decode(&lim_plain, &w);
	CHECK(rc == 0 && w.arg.setxattr.size == 2 && w.arg.setxattr.flags == 1 &&
	      w.arg.setxattr.setxattr_flags == 0 && strcmp(w.name, "user.a") == 0 &&
	      w.data_len == 2, "SETXATTR compat 8 (%d)", rc);
	/* The same bytes read as the 16-byte struct: name and value shift. */
	rc = decode(&lim_ext, &w);
	CHECK(rc != 0, "SETXATTR 8-byte struct under setxattr_ext accepted");
	msg_start(FUSE_SETXATTR);
	msg_add(&sx, 16);
	msg_str("user.a");
	msg_add("xy", 2);
	rc = decode(&lim_ext, &w);
	CHECK(rc == 0 && w.arg.setxattr.setxattr_flags == 0x77 &&
	      memcmp(w.data, "xy", 2) == 0, "SETXATTR ext 16 (%d)", rc);
	msg_start(FUSE_SETXATTR);
	msg_add(&sx, 12);
	EXPECT_ERR(&lim_ext, -EINVAL, "SETXATTR ext, 12 bytes");
	msg_start(FUSE_SETXATTR);
	msg_add(&sx, 4);
	EXPECT_ERR(&lim_plain, -EINVAL, "SETXATTR 4 bytes");

	/* WRITE 24 bytes and MKNOD 8 bytes under old minors only. */
	old.proto_minor = 8;
	msg_start(FUSE_WRITE);
	msg_add(&wr, FUSE_COMPAT_WRITE_IN_SIZE);
	msg_add("abc", 3);
	rc = decode(&old, &w);
	CHECK(rc == 0 && w.arg.write.size == 3 && w.arg.write.lock_owner == 0 &&
	      memcmp(w.data, "abc", 3) == 0, "WRITE compat 24 (%d)", rc);
	EXPECT_ERR(&lim_plain, -EINVAL, "WRITE 24 bytes under 7.45");
	old.proto_minor = 11;
	msg_start(FUSE_MKNOD);
	msg_add(&mk, FUSE_COMPAT_MKNOD_IN_SIZE);
	msg_str("node");
	rc = decode(&old, &w);
	CHECK(rc == 0 && w.arg.mknod.mode == 0100644 && w.arg.mknod.umask == 0 &&
	      strcmp(w.name, "node") == 0, "MKNOD compat 8 (%d)", rc);
	EXPECT_ERR(&lim_plain, -EINVAL, "MKNOD 8+5 bytes under 7.45");
	msg_start(FUSE_MKNOD);
	msg_add(&mk, FUSE_COMPAT_MKNOD_IN_SIZE);
	msg_str("n");
	EXPECT_ERR(&lim_plain, -EINVAL, "MKNOD 8+2 bytes under 7.45");
}

/* ------------------------------------------------------------------------
 * Names.
 * --------------------------------------------------------------------- */
static void name_case(uint32_t opcode, const void *arg, size_t arg_len,
		      char ch, size_t n, int with_nul,
		      const struct wire_limits *lim, int want, const char *what)
{
	msg_start(opcode);
	msg_add(arg, arg_len);
	msg_fill(ch, n);
	if (with_nul)
		msg_fill(0, 1);
	EXPECT_ERR(lim, want, what);
}

static void test_component_names(void)
{
	static const uint32_t ops[] = {
		FUSE_LOOKUP, FUSE_MKNOD, FUSE_MKDIR, FUSE_UNLINK, FUSE_RMDIR,
		FUSE_LINK, FUSE_CREATE,
	};
	unsigned char arg[64] = { 0 };
	struct wire_req w;
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		const struct wire_opcode *op = wire_opcode_info(ops[i]);
		size_t as = op->arg_size;

		name_case(ops[i], arg, as, 'a', 5, 0, &lim_plain, -EINVAL,
			  "name without NUL");
		name_case(ops[i], arg, as, 'a', 0, 1, &lim_plain, -EINVAL,
			  "empty name");
		name_case(ops[i], arg, as, '/', 1, 1, &lim_plain, -EINVAL,
			  "name \"/\"");
		name_case(ops[i], arg, as, 'b', FUSE_NAME_MAX, 1, &lim_plain, 0,
			  "name of 1024");
		name_case(ops[i], arg, as, 'b', FUSE_NAME_MAX + 1, 1, &lim_plain,
			  -ENAMETOOLONG, "name of 1025");
		msg_start(ops[i]);
		msg_add(arg, as);
		msg_str("a/b");
		EXPECT_ERR(&lim_plain, -EINVAL, "name a/b");
		msg_start(ops[i]);
		msg_add(arg, as);
		msg_str("..");
		EXPECT_ERR(&lim_plain, 0, "name .. (LOOKUP of parent is legal)");
		/* Bytes after the name's NUL are not part of it. */
		msg_start(ops[i]);
		msg_add(arg, as);
		msg_str("ok");
		msg_add("x/y", 3);
		CHECK(decode(&lim_plain, &w) == 0 && strcmp(w.name, "ok") == 0,
		      "%s: trailing bytes after the name", op->name);
	}
}

static void test_two_names(void)
{
	struct fuse_rename2_in r2 = { 9, 1, 0 };
	struct fuse_rename_in r = { 9 };
	struct wire_req w;
	int rc;

	/* RENAME and RENAME2: both names are components. */
	msg_start(FUSE_RENAME);
	msg_add(&r, sizeof(r));
	msg_str("old");
	msg_str("new/x");
	EXPECT_ERR(&lim_plain, -EINVAL, "RENAME new name with /");
	msg_start(FUSE_RENAME);
	msg_add(&r, sizeof(r));
	msg_str("old");
	msg_add("new", 3);
	EXPECT_ERR(&lim_plain, -EINVAL, "RENAME new name without NUL");
	msg_start(FUSE_RENAME);
	msg_add(&r, sizeof(r));
	msg_str("old");
	EXPECT_ERR(&lim_plain, -EINVAL, "RENAME without new name");
	msg_start(FUSE_RENAME);
	msg_add(&r, sizeof(r));
	msg_str("o/ld");
	msg_str("new");
	EXPECT_ERR(&lim_plain, -EINVAL, "RENAME old name with /");
	msg_start(FUSE_RENAME2);
	msg_add(&r2, sizeof(r2));
	msg_str("old");
	msg_str("");
	EXPECT_ERR(&lim_plain, -EINVAL, "RENAME2 empty new name");
	msg_start(FUSE_RENAME2);
	msg_add(&r2, sizeof(r2));
	msg_str("old");
	msg_name('n', FUSE_NAME_MAX + 1);
	EXPECT_ERR(&lim_plain, -ENAMETOOLONG, "RENAME2 long new name");
	msg_start(FUSE_RENAME2);
	msg_add(&r2, sizeof(r2));
	msg_str("old");
	msg_str("new");
	rc = decode(&lim_plain, &w);
	CHECK(rc == 0 && w.arg.rename2.newdir == 9 && w.arg.rename2.flags == 1 &&
	      strcmp(w.name2, "new") == 0, "RENAME2 good");

	/* SYMLINK: entry name is a component, the target is not. */
	msg_start(FUSE_SYMLINK);
	msg_str("a/b");
	msg_str("target");
	EXPECT_ERR(&lim_plain, -EINVAL, "SYMLINK name with /");
	msg_start(FUSE_SYMLINK);
	msg_str("");
	msg_str("target");
	EXPECT_ERR(&lim_plain, -EINVAL, "SYMLINK empty name");
	msg_start(FUSE_SYMLINK);
	msg_str("link");
	msg_str("");
	EXPECT_ERR(&lim_plain, -EINVAL, "SYMLINK empty target");
	msg_start(FUSE_SYMLINK);
	msg_str("link");
	msg_name('t', FUSE_SYMLINK_MAX - 1);
	EXPECT_ERR(&lim_plain, 0, "SYMLINK target of 4095");
	msg_start(FUSE_SYMLINK);
	msg_str("link");
	msg_name('t', FUSE_SYMLINK_MAX);
	EXPECT_ERR(&lim_plain, -ENAMETOOLONG, "SYMLINK target of 4096");
	msg_start(FUSE_SYMLINK);
	msg_str("link");
	msg_fill('t', 10);
	EXPECT_ERR(&lim_plain, -EINVAL, "SYMLINK target without NUL");
	msg_start(FUSE_SYMLINK);
	msg_name('l', FUSE_NAME_MAX + 1);
	msg_str("t");
	EXPECT_ERR(&lim_plain, -ENAMETOOLONG, "SYMLINK long name");

	/* TMPFILE: the kernel's "/" is fine; only termination is checked. */
	msg_start(FUSE_TMPFILE);
	msg_add(&r2, sizeof(struct fuse_create_in));
	msg_str("/");
	rc = decode(&lim_plain, &w);
	CHECK(rc == 0 && strcmp(w.name, "/") == 0, "TMPFILE /");
	msg_start(FUSE_TMPFILE);
	msg_add(&r2, sizeof(struct fuse_create_in));
	msg_add("/", 1);
	EXPECT_ERR(&lim_plain, -EINVAL, "TMPFILE name without NUL");
}

static void test_xattr_names(void)
{
	static const uint32_t ops[] = {
		FUSE_GETXATTR, FUSE_REMOVEXATTR, FUSE_SETXATTR,
	};
	struct fuse_setxattr_in sx = { 0, 0, 0, 0 };
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		const struct wire_opcode *op = wire_opcode_info(ops[i]);
		size_t as = op->arg_size;	/* SETXATTR: 16, under lim_ext */

		name_case(ops[i], &sx, as, 'x', 0, 1, &lim_ext, -EINVAL,
			  "empty xattr name");
		name_case(ops[i], &sx, as, 'x', 255, 1, &lim_ext, 0,
			  "xattr name of 255");
		name_case(ops[i], &sx, as, 'x', 256, 1, &lim_ext, -ERANGE,
			  "xattr name of 256");
		name_case(ops[i], &sx, as, 'x', 3, 0, &lim_ext, -EINVAL,
			  "xattr name without NUL");
		name_case(ops[i], &sx, as, '/', 3, 1, &lim_ext, 0,
			  "xattr name with / is not a path");
	}
}

/* ------------------------------------------------------------------------
 * Exact data lengths.
 * --------------------------------------------------------------------- */
static void data_case(uint32_t opcode, void *arg, size_t arg_len,
		      const char *name, size_t data_len, int want,
		      const char *what)
{
	msg_start(opcode);
	msg_add(arg, arg_len);
	if (name)
		msg_str(name);
	msg_fill('d', data_len);
	EXPECT_ERR(opcode == FUSE_SETXATTR ? &lim_ext : &lim_plain, want, what);
}

static void test_data_lengths(void)
{
	struct fuse_write_in wr = { .size = 100 };
	struct fuse_setxattr_in sx = { .size = 10 };
	struct fuse_ioctl_in io = { .in_size = 8, .out_size = 16 };
	struct fuse_notify_retrieve_in nr = { .size = 4096 };
	struct fuse_write_in wr0 = { .size = 0 };

	data_case(FUSE_WRITE, &wr, sizeof(wr), NULL, 100, 0, "WRITE exact");
	data_case(FUSE_WRITE, &wr, sizeof(wr), NULL, 99, -EINVAL, "WRITE short");
	data_case(FUSE_WRITE, &wr, sizeof(wr), NULL, 101, -EINVAL, "WRITE long");
	data_case(FUSE_WRITE, &wr0, sizeof(wr0), NULL, 0, 0, "WRITE of 0");
	data_case(FUSE_SETXATTR, &sx, sizeof(sx), "user.x", 10, 0,
		  "SETXATTR exact");
	data_case(FUSE_SETXATTR, &sx, sizeof(sx), "user.x", 9, -EINVAL,
		  "SETXATTR short value");
	data_case(FUSE_SETXATTR, &sx, sizeof(sx), "user.x", 11, -EINVAL,
		  "SETXATTR long value");
	data_case(FUSE_IOCTL, &io, sizeof(io), NULL, 8, 0, "IOCTL exact");
	data_case(FUSE_IOCTL, &io, sizeof(io), NULL, 7, -EINVAL, "IOCTL short");
	data_case(FUSE_IOCTL, &io, sizeof(io), NULL, 16, -EINVAL, "IOCTL long");
	data_case(FUSE_NOTIFY_REPLY, &nr, sizeof(nr), NULL, 4096, 0,
		  "NOTIFY_REPLY exact");
	data_case(FUSE_NOTIFY_REPLY, &nr, sizeof(nr), NULL, 4095, -EINVAL,
		  "NOTIFY_REPLY short");
	data_case(FUSE_NOTIFY_REPLY, &nr, sizeof(nr), NULL, 4097, -EINVAL,
		  "NOTIFY_REPLY long");
	wr.size = 0xffffffff;
	data_case(FUSE_WRITE, &wr, sizeof(wr), NULL, 16, -EINVAL,
		  "WRITE size ~0");
}

/* ------------------------------------------------------------------------
 * BATCH_FORGET.
 * --------------------------------------------------------------------- */
static void forget_case(uint32_t count, size_t entries, int want,
			const char *what)
{
	struct fuse_batch_forget_in bf = { count, 0 };
	struct fuse_forget_one one = { 5, 1 };
	size_t i;

	msg_start(FUSE_BATCH_FORGET);
	msg_add(&bf, sizeof(bf));
	for (i = 0; i < entries; i++)
		msg_add(&one, sizeof(one));
	EXPECT_ERR(&lim_plain, want, what);
}

static void test_batch_forget(void)
{
	struct wire_req w;
	struct fuse_forget_one f;
	int rc;

	forget_case(2, 2, 0, "BATCH_FORGET 2/2");
	forget_case(2, 1, -EINVAL, "BATCH_FORGET 2/1");
	forget_case(1, 2, -EINVAL, "BATCH_FORGET 1/2");
	forget_case(0xffffffff, 1, -EINVAL, "BATCH_FORGET count ~0");
	forget_case(0x10000001, 1, -EINVAL, "BATCH_FORGET count*16 wraps 32 bits");
	forget_case(0, 0, 0, "BATCH_FORGET 0/0");
	forget_case(1000, 1000, 0, "BATCH_FORGET 1000");
	rc = decode(&lim_plain, &w);
	wire_batch_forget_entry(&w, 999, &f);
	CHECK(rc == 0 && w.count == 1000 && f.nodeid == 5 && f.nlookup == 1,
	      "BATCH_FORGET entry 999");
	msg_fill(0, 1);
	EXPECT_ERR(&lim_plain, -EINVAL, "BATCH_FORGET extra byte");
}

/* ------------------------------------------------------------------------
 * DAX.
 * --------------------------------------------------------------------- */
static void setup_case(uint64_t foffset, uint64_t len, uint64_t moffset,
		       uint64_t flags, int want, const char *what)
{
	struct fuse_setupmapping_in m = { (uint64_t)-1, foffset, len, flags,
					  moffset };

	msg_start(FUSE_SETUPMAPPING);
	msg_add(&m, sizeof(m));
	EXPECT_ERR(&lim_dax, want, what);
}

static void test_setupmapping(void)
{
	const uint64_t rw = FUSE_SETUPMAPPING_FLAG_READ |
			    FUSE_SETUPMAPPING_FLAG_WRITE;
	const uint64_t i64max = 0x7fffffffffffffffull;

	setup_case(0, 2 << 20, 0, rw, 0, "SETUPMAPPING good");
	setup_case(0, WINDOW, 0, FUSE_SETUPMAPPING_FLAG_READ, 0,
		   "SETUPMAPPING whole window");
	setup_case(0, ALIGN, 0, 0, 0, "SETUPMAPPING flags 0");
	setup_case(0, ALIGN, 0, 4, -EINVAL, "SETUPMAPPING unknown flag");
	setup_case(0, ALIGN, 0, 1ull << 63, -EINVAL, "SETUPMAPPING flag 63");
	setup_case(0, 0, 0, rw, -EINVAL, "SETUPMAPPING len 0");
	setup_case(1, ALIGN, 0, rw, -EINVAL, "SETUPMAPPING foffset misaligned");
	setup_case(0, ALIGN + 512, 0, rw, -EINVAL, "SETUPMAPPING len misaligned");
	setup_case(0, ALIGN, 2048, rw, -EINVAL, "SETUPMAPPING moffset misaligned");
	setup_case(0, ALIGN, WINDOW, rw, -ERANGE, "SETUPMAPPING moffset == window");
	setup_case(0, ALIGN, WINDOW + ALIGN, rw, -ERANGE,
		   "SETUPMAPPING moffset past window");
	setup_case(0, 2 * ALIGN, WINDOW - ALIGN, rw, -ERANGE,
		   "SETUPMAPPING end past window");
	setup_case(0, 0xfffffffffffff000ull, 2 * ALIGN, rw, -ERANGE,
		   "SETUPMAPPING moffset + len wraps");
	setup_case(0, ALIGN, 0xfffffffffffff000ull, rw, -ERANGE,
		   "SETUPMAPPING huge moffset");
	setup_case(i64max - 2 * ALIGN + 1, ALIGN, 0, rw, 0,
		   "SETUPMAPPING ends just below INT64_MAX");
	setup_case(i64max - ALIGN + 1, 2 * ALIGN, 0, rw, -EOVERFLOW,
		   "SETUPMAPPING foffset + len > INT64_MAX");
	setup_case(0xfffffffffffff000ull, ALIGN, 0, rw, -EOVERFLOW,
		   "SETUPMAPPING foffset above INT64_MAX");
	setup_case(0, ALIGN, 0, rw, 0, "SETUPMAPPING good after bad ones");
}

static void remove_case(uint32_t count, const struct fuse_removemapping_one *e,
			size_t n, int want, const char *what)
{
	msg_start(FUSE_REMOVEMAPPING);
	msg_add(&count, sizeof(count));
	msg_add(e, n * sizeof(*e));
	EXPECT_ERR(&lim_dax, want, what);
}

static void test_removemapping(void)
{
	static struct fuse_removemapping_one many[FUSE_REMOVEMAPPING_MAX_ENTRY + 1];
	struct fuse_removemapping_one e[2] = { { 0, ALIGN }, { ALIGN, ALIGN } };
	struct fuse_removemapping_one bad;
	struct fuse_removemapping_one got;
	struct wire_req w;
	size_t i;
	int rc;

	for (i = 0; i < FUSE_REMOVEMAPPING_MAX_ENTRY + 1; i++) {
		many[i].moffset = (i % 32) * (2 << 20);
		many[i].len = 2 << 20;
	}
	remove_case(2, e, 2, 0, "REMOVEMAPPING good");
	remove_case(0, e, 0, -EINVAL, "REMOVEMAPPING count 0");
	remove_case(FUSE_REMOVEMAPPING_MAX_ENTRY, many,
		    FUSE_REMOVEMAPPING_MAX_ENTRY, 0, "REMOVEMAPPING 256");
	rc = decode(&lim_dax, &w);
	wire_removemapping_entry(&w, 255, &got);
	CHECK(rc == 0 && got.moffset == many[255].moffset &&
	      got.len == 2 << 20, "REMOVEMAPPING entry 255");
	remove_case(FUSE_REMOVEMAPPING_MAX_ENTRY + 1, many,
		    FUSE_REMOVEMAPPING_MAX_ENTRY + 1, -EINVAL,
		    "REMOVEMAPPING 257");
	remove_case(0xffffffff, e, 2, -EINVAL, "REMOVEMAPPING count ~0");
	remove_case(2, e, 1, -EINVAL, "REMOVEMAPPING 2 counted, 1 sent");
	remove_case(1, e, 2, -EINVAL, "REMOVEMAPPING 1 counted, 2 sent");
	msg_start(FUSE_REMOVEMAPPING);
	msg_add("\1\0\0\0", 4);
	msg_add(e, sizeof(e[0]));
	msg_fill(0, 3);
	EXPECT_ERR(&lim_dax, -EINVAL, "REMOVEMAPPING trailing bytes");
	msg_start(FUSE_REMOVEMAPPING);
	msg_add("\1\0", 2);
	EXPECT_ERR(&lim_dax, -EINVAL, "REMOVEMAPPING 2-byte argument");

	bad = (struct fuse_removemapping_one){ 0, 0 };
	remove_case(1, &bad, 1, -EINVAL, "REMOVEMAPPING len 0");
	bad = (struct fuse_removemapping_one){ 512, ALIGN };
	remove_case(1, &bad, 1, -EINVAL, "REMOVEMAPPING moffset misaligned");
	bad = (struct fuse_removemapping_one){ 0, 100 };
	remove_case(1, &bad, 1, -EINVAL, "REMOVEMAPPING len misaligned");
	bad = (struct fuse_removemapping_one){ WINDOW, ALIGN };
	remove_case(1, &bad, 1, -ERANGE, "REMOVEMAPPING at window end");
	bad = (struct fuse_removemapping_one){ WINDOW - ALIGN, 2 * ALIGN };
	remove_case(1, &bad, 1, -ERANGE, "REMOVEMAPPING crosses window end");
	bad = (struct fuse_removemapping_one){ ALIGN, 0xfffffffffffff000ull };
	remove_case(1, &bad, 1, -ERANGE, "REMOVEMAPPING wraps");
	/* A bad entry after good ones is still found. */
	e[1] = (struct fuse_removemapping_one){ WINDOW, ALIGN };
	remove_case(2, e, 2, -ERANGE, "REMOVEMAPPING second entry bad");
}

static void test_dax_window(void)
{
	struct wire_limits nowin = lim_dax;
	struct wire_limits align1 = lim_dax;
	union wire_arg a;
	struct wire_req w;

	nowin.dax_window_size = 0;
	build_good(FUSE_SETUPMAPPING, &a);
	EXPECT_ERR(&nowin, -ENOSYS, "SETUPMAPPING without a window");
	build_good(FUSE_REMOVEMAPPING, &a);
	EXPECT_ERR(&nowin, -ENOSYS, "REMOVEMAPPING without a window");
	/* ENOSYS wins even over a malformed argument. */
	msg_start(FUSE_SETUPMAPPING);
	EXPECT_ERR(&nowin, -ENOSYS, "short SETUPMAPPING without a window");
	msg_start(FUSE_SETUPMAPPING);
	EXPECT_ERR(&lim_dax, -EINVAL, "short SETUPMAPPING with a window");

	/* Alignment 0 means none. */
	align1.dax_alignment = 0;
	msg_start(FUSE_SETUPMAPPING);
	{
		struct fuse_setupmapping_in m = { 3, 1, 1, 0, 5 };

		msg_add(&m, sizeof(m));
	}
	CHECK(decode(&align1, &w) == 0, "alignment 0 treated as 1");
}

/* ------------------------------------------------------------------------
 * Debug text.
 * --------------------------------------------------------------------- */
static void test_describe(void)
{
	union wire_arg a;
	struct wire_req w;
	char buf[512];
	char small[8];
	int n, m;
	size_t i;

	build_good(FUSE_LOOKUP, &a);
	CHECK(decode(&lim_plain, &w) == 0, "LOOKUP");
	n = wire_describe(&w, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n == strlen(buf), "describe length");
	CHECK(strstr(buf, "LOOKUP") && strstr(buf, "unique=4660") &&
	      strstr(buf, "nodeid=7") && strstr(buf, "name=\"name\""),
	      "describe text: %s", buf);
	m = wire_describe(&w, small, sizeof(small));
	CHECK(m == n && strlen(small) == sizeof(small) - 1,
	      "describe truncation");
	CHECK(wire_describe(&w, NULL, 0) == n, "describe size 0");

	/* Every opcode, and an unknown one, produces a line. */
	for (i = 0; i < N_DEFS; i++) {
		build_good(def_rows[i].opcode, &a);
		decode(lim_for(def_rows[i].opcode), &w);
		n = wire_describe(&w, buf, sizeof(buf));
		CHECK(n > 0 && strncmp(buf, w.op->name, strlen(w.op->name)) == 0,
		      "describe %s: %s", w.op->name, buf);
	}
	msg_start(999);
	decode(&lim_plain, &w);
	wire_describe(&w, buf, sizeof(buf));
	CHECK(strncmp(buf, "UNKNOWN(999)", 12) == 0, "describe unknown: %s", buf);

	/* Unprintable and long names are escaped and shortened. */
	msg_start(FUSE_LOOKUP);
	msg_str("a\nb\"");
	decode(&lim_plain, &w);
	wire_describe(&w, buf, sizeof(buf));
	CHECK(strstr(buf, "a\\x0ab\\x22") != NULL, "describe escapes: %s", buf);
	msg_start(FUSE_LOOKUP);
	msg_name('z', 1000);
	decode(&lim_plain, &w);
	n = wire_describe(&w, buf, sizeof(buf));
	CHECK(n < 200 && strstr(buf, "...") != NULL, "describe shortens: %s", buf);
}

int main(void)
{
	test_table();
	test_good_all();
	test_lock_ranges();
	test_short_all();
	test_framing();
	test_compat();
	test_component_names();
	test_two_names();
	test_xattr_names();
	test_data_lengths();
	test_batch_forget();
	test_setupmapping();
	test_removemapping();
	test_dax_window();
	test_describe();
	free(M.heap);

	printf("test_wire: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
