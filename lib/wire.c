/*
 * The wire decoder: turns one raw FUSE request into a struct wire_req,
 * checking every length, count, offset and name once (rules in wire.h).
 * Everything reads through a bounds-checked cursor and copies with memcpy,
 * so no byte outside the buffer is touched and no pointer is misaligned.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire.h"

/*
 * The opcode table, built from lib/opcodes.def. `none` in the argument
 * column means "no fixed argument"; WIRE_ARG_SIZE() turns it into 0 and
 * `struct x` into sizeof(struct x) by pasting the column's first token.
 */
#define WIRE_ARG_SIZE(argstruct) WIRE_ARG_SIZE_##argstruct)
#define WIRE_ARG_SIZE_none (0
#define WIRE_ARG_SIZE_struct sizeof(struct

/* Large enough for every opcode number in opcodes.def (checked at compile
 * time: an index past the end is a constraint violation). CUSE_INIT (4096)
 * takes the last slot. */
#define WIRE_TABLE_SIZE 64
#define WIRE_SLOT(number) ((number) == FUSE_CUSE_INIT ? WIRE_TABLE_SIZE - 1 : (number))

static const struct wire_opcode wire_table[WIRE_TABLE_SIZE] = {
#define OPCODE(number, name, argstruct, shape, flags)			\
	[WIRE_SLOT(number)] = { number, &(#number)[5] /* skip "FUSE_" */, \
				WIRE_ARG_SIZE(argstruct), shape, flags },
#include "opcodes.def"
#undef OPCODE
};

const struct wire_opcode *wire_opcode_info(uint32_t opcode)
{
	uint32_t slot = WIRE_SLOT(opcode);

	if (slot >= WIRE_TABLE_SIZE || wire_table[slot].name == NULL ||
	    wire_table[slot].opcode != opcode)
		return NULL;
	return &wire_table[slot];
}

const char *wire_opcode_name(uint32_t opcode)
{
	const struct wire_opcode *op = wire_opcode_info(opcode);

	return op ? op->name : "UNKNOWN";
}

/* ------------------------------------------------------------------------
 * A read cursor over the request body: [pos, end) of buf.
 * --------------------------------------------------------------------- */
struct wire_cursor {
	const char *buf;
	size_t pos;
	size_t end;
};

static size_t cursor_left(const struct wire_cursor *c)
{
	return c->end - c->pos;
}

/*
 * Take a NUL-terminated string at the cursor. Returns its length or
 * -EINVAL when no NUL lies before the end of the body.
 */
static long cursor_string(struct wire_cursor *c, const char **str)
{
	const char *start = c->buf + c->pos;
	const char *nul = memchr(start, '\0', cursor_left(c));

	if (nul == NULL)
		return -EINVAL;
	*str = start;
	c->pos += (size_t)(nul - start) + 1;
	return nul - start;
}

/* ------------------------------------------------------------------------
 * Name rules.
 * --------------------------------------------------------------------- */
static int check_component(const char *name, long len)
{
	if (len == 0)
		return -EINVAL;
	if (len > FUSE_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', (size_t)len) != NULL)
		return -EINVAL;
	return 0;
}

static int check_symlink_target(long len)
{
	if (len == 0)
		return -EINVAL;
	if (len >= FUSE_SYMLINK_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static int check_xattr_name(long len)
{
	if (len == 0)
		return -EINVAL;
	/* The kernel's own limit; getxattr(2) reports ERANGE for it. */
	if (len > FUSE_XATTR_NAME_MAX)
		return -ERANGE;
	return 0;
}

/* Take the first name and apply the opcode's name rule. */
static int take_name(struct wire_cursor *c, unsigned flags,
		     const char **name)
{
	long len = cursor_string(c, name);

	if (len < 0)
		return (int)len;
	if (flags & OPF_COMPONENT)
		return check_component(*name, len);
	if (flags & OPF_XATTR_NAME)
		return check_xattr_name(len);
	return 0;
}

/* The second name: a component, except SYMLINK's link target. */
static int take_name2(struct wire_cursor *c, const struct wire_opcode *op,
		      const char **name2)
{
	long len = cursor_string(c, name2);

	if (len < 0)
		return (int)len;
	if (op->opcode == FUSE_SYMLINK)
		return check_symlink_target(len);
	if (op->flags & OPF_COMPONENT)
		return check_component(*name2, len);
	return 0;
}

/* ------------------------------------------------------------------------
 * The fixed argument.
 * --------------------------------------------------------------------- */

/*
 * How many argument bytes this request must carry (*min) and how many the
 * struct occupies before its names or data start (*take, at most
 * arg_size; any remainder of the union stays zero).
 */
static void arg_sizes(const struct wire_opcode *op,
		      const struct wire_limits *lim, size_t avail,
		      size_t *min, size_t *take)
{
	*min = op->arg_size;
	*take = op->arg_size;

	switch (op->opcode) {
	case FUSE_INIT:
		*min = FUSE_COMPAT_5_INIT_IN_SIZE;
		*take = avail < op->arg_size ? avail : op->arg_size;
		break;
	case FUSE_SETXATTR:
		if (!lim->setxattr_ext)
			*min = *take = FUSE_COMPAT_SETXATTR_IN_SIZE;
		break;
	case FUSE_WRITE:
		if (lim->proto_minor > 0 && lim->proto_minor < 9)
			*min = *take = FUSE_COMPAT_WRITE_IN_SIZE;
		break;
	case FUSE_MKNOD:
		if (lim->proto_minor > 0 && lim->proto_minor < 12)
			*min = *take = FUSE_COMPAT_MKNOD_IN_SIZE;
		break;
	}
}

static int take_arg(struct wire_cursor *c, const struct wire_opcode *op,
		    const struct wire_limits *lim, union wire_arg *arg)
{
	size_t min, take;

	arg_sizes(op, lim, cursor_left(c), &min, &take);
	if (cursor_left(c) < min)
		return -EINVAL;
	memcpy(arg, c->buf + c->pos, take);
	c->pos += take;
	return 0;
}

/* ------------------------------------------------------------------------
 * Shapes.
 * --------------------------------------------------------------------- */

/* The size that WIRE_DATA / WIRE_NAME_DATA data must have exactly. */
static uint32_t expected_data_len(const struct wire_req *w)
{
	switch (w->in.opcode) {
	case FUSE_WRITE:
		return w->arg.write.size;
	case FUSE_SETXATTR:
		return w->arg.setxattr.size;
	case FUSE_IOCTL:
		return w->arg.ioctl.in_size;
	case FUSE_NOTIFY_REPLY:
		return w->arg.notify_reply.size;
	}
	return 0;
}

static int take_data(struct wire_cursor *c, struct wire_req *w)
{
	size_t len = cursor_left(c);

	if (len != expected_data_len(w))
		return -EINVAL;
	w->data = c->buf + c->pos;
	w->data_len = len;
	c->pos = c->end;
	return 0;
}

static int take_forget_entries(struct wire_cursor *c, struct wire_req *w)
{
	uint64_t want = (uint64_t)w->arg.batch_forget.count *
			sizeof(struct fuse_forget_one);

	if (cursor_left(c) != want)
		return -EINVAL;
	w->count = w->arg.batch_forget.count;
	w->data = c->buf + c->pos;
	w->data_len = (size_t)want;
	c->pos = c->end;
	return 0;
}

static uint64_t dax_align(const struct wire_limits *lim)
{
	return lim->dax_alignment ? lim->dax_alignment : 1;
}

/* Is [moffset, moffset + len) inside the window? (no overflow) */
static int in_window(const struct wire_limits *lim, uint64_t moffset,
		     uint64_t len)
{
	return moffset < lim->dax_window_size &&
	       len <= lim->dax_window_size - moffset;
}

static int check_setupmapping(const struct fuse_setupmapping_in *m,
			      const struct wire_limits *lim)
{
	const uint64_t known = FUSE_SETUPMAPPING_FLAG_READ |
			       FUSE_SETUPMAPPING_FLAG_WRITE;
	uint64_t align = dax_align(lim);

	if (m->flags & ~known)
		return -EINVAL;
	if (m->len == 0)
		return -EINVAL;
	if (m->foffset % align || m->len % align || m->moffset % align)
		return -EINVAL;
	if (!in_window(lim, m->moffset, m->len))
		return -ERANGE;
	if (m->len > (uint64_t)INT64_MAX ||
	    m->foffset > (uint64_t)INT64_MAX - m->len)
		return -EOVERFLOW;
	return 0;
}

static int check_removemapping_one(const struct fuse_removemapping_one *e,
				   const struct wire_limits *lim)
{
	uint64_t align = dax_align(lim);

	if (e->len == 0 || e->moffset % align || e->len % align)
		return -EINVAL;
	if (!in_window(lim, e->moffset, e->len))
		return -ERANGE;
	return 0;
}

static int take_removemapping_entries(struct wire_cursor *c,
				      struct wire_req *w,
				      const struct wire_limits *lim)
{
	uint32_t count = w->arg.removemapping.count;
	struct fuse_removemapping_one e;
	uint32_t i;
	int err;

	if (count == 0 || count > FUSE_REMOVEMAPPING_MAX_ENTRY)
		return -EINVAL;
	if (cursor_left(c) != (size_t)count * sizeof(e))
		return -EINVAL;
	w->count = count;
	w->data = c->buf + c->pos;
	w->data_len = cursor_left(c);
	c->pos = c->end;
	for (i = 0; i < count; i++) {
		wire_removemapping_entry(w, i, &e);
		err = check_removemapping_one(&e, lim);
		if (err)
			return err;
	}
	return 0;
}

static int take_entries(struct wire_cursor *c, struct wire_req *w,
			const struct wire_limits *lim)
{
	if (w->in.opcode == FUSE_REMOVEMAPPING)
		return take_removemapping_entries(c, w, lim);
	return take_forget_entries(c, w);
}

/* Everything after the fixed argument, by shape. */
static int take_rest(struct wire_cursor *c, struct wire_req *w,
		     const struct wire_limits *lim)
{
	const struct wire_opcode *op = w->op;
	int err;

	switch (op->shape) {
	case WIRE_FIXED:
		return 0;
	case WIRE_NAME:
		return take_name(c, op->flags, &w->name);
	case WIRE_NAME_NAME:
		err = take_name(c, op->flags, &w->name);
		if (err)
			return err;
		return take_name2(c, op, &w->name2);
	case WIRE_DATA:
		return take_data(c, w);
	case WIRE_NAME_DATA:
		err = take_name(c, op->flags, &w->name);
		if (err)
			return err;
		return take_data(c, w);
	case WIRE_ENTRIES:
		return take_entries(c, w, lim);
	}
	return -EINVAL;
}

/*
 * A lock range: a known type, and start <= end <= OFFSET_MAX (end is
 * inclusive; OFFSET_MAX means "to the end of the file"), so it converts to
 * a struct flock without overflow.
 */
static int check_lock(const struct fuse_file_lock *lk)
{
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
		return -EINVAL;
	if (lk->end > (uint64_t)INT64_MAX || lk->start > lk->end)
		return -EINVAL;
	return 0;
}

/* Checks on the fixed argument of one opcode, after the whole decode. */
static int check_arg(const struct wire_req *w, const struct wire_limits *lim)
{
	switch (w->in.opcode) {
	case FUSE_SETUPMAPPING:
		return check_setupmapping(&w->arg.setupmapping, lim);
	case FUSE_GETLK:
	case FUSE_SETLK:
	case FUSE_SETLKW:
		return check_lock(&w->arg.getlk.lk);
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------------
 * The decoder.
 * --------------------------------------------------------------------- */
int wire_decode(const void *buf, size_t len, const struct wire_limits *lim,
		struct wire_req *out)
{
	struct wire_cursor c = { buf, sizeof(struct fuse_in_header), len };
	size_t extlen;
	int err;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(struct fuse_in_header))
		return -EPROTO;
	memcpy(&out->in, buf, sizeof(out->in));
	if (out->in.len != len)
		return -EPROTO;

	out->op = wire_opcode_info(out->in.opcode);
	if (out->op == NULL)
		return -ENOSYS;
	if ((out->op->flags & OPF_DAX) && lim->dax_window_size == 0)
		return -ENOSYS;

	/* Request extensions (security context, groups) sit at the very end
	 * and are not part of any argument. */
	extlen = (size_t)out->in.total_extlen * 8;
	if (extlen > cursor_left(&c))
		return -EINVAL;
	c.end -= extlen;

	err = take_arg(&c, out->op, lim, &out->arg);
	if (err)
		return err;
	err = take_rest(&c, out, lim);
	if (err)
		return err;
	return check_arg(out, lim);
}

void wire_batch_forget_entry(const struct wire_req *w, uint32_t i,
			     struct fuse_forget_one *out)
{
	memset(out, 0, sizeof(*out));
	if (i < w->count && w->in.opcode == FUSE_BATCH_FORGET)
		memcpy(out, (const char *)w->data + (size_t)i * sizeof(*out),
		       sizeof(*out));
}

void wire_removemapping_entry(const struct wire_req *w, uint32_t i,
			      struct fuse_removemapping_one *out)
{
	memset(out, 0, sizeof(*out));
	if (i < w->count && w->in.opcode == FUSE_REMOVEMAPPING)
		memcpy(out, (const char *)w->data + (size_t)i * sizeof(*out),
		       sizeof(*out));
}

/* ------------------------------------------------------------------------
 * Debug text.
 * --------------------------------------------------------------------- */

/* snprintf-style appender that keeps counting past the end of buf. */
struct wire_text {
	char *buf;
	size_t size;
	size_t len;
};

static void text_add(struct wire_text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void text_add(struct wire_text *t, const char *fmt, ...)
{
	size_t room = t->len < t->size ? t->size - t->len : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n;
}

/* A name, quoted, with unprintable bytes escaped, cut at 64 bytes. */
static void text_name(struct wire_text *t, const char *key, const char *s)
{
	enum { SHOWN = 64 };
	size_t i;

	if (s == NULL)
		return;
	text_add(t, " %s=\"", key);
	for (i = 0; s[i] != '\0' && i < SHOWN; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
			text_add(t, "\\x%02x", ch);
		else
			text_add(t, "%c", ch);
	}
	text_add(t, "\"%s", s[i] != '\0' ? "..." : "");
}

static void describe_arg(struct wire_text *t, const struct wire_req *w)
{
	const union wire_arg *a = &w->arg;

	switch (w->in.opcode) {
	case FUSE_FORGET:
		text_add(t, " nlookup=%" PRIu64, a->forget.nlookup);
		break;
	case FUSE_GETATTR:
		text_add(t, " flags=0x%x fh=%" PRIu64, a->getattr.getattr_flags,
			 a->getattr.fh);
		break;
	case FUSE_SETATTR:
		text_add(t, " valid=0x%x fh=%" PRIu64 " size=%" PRIu64
			 " mode=0%o", a->setattr.valid, a->setattr.fh,
			 a->setattr.size, a->setattr.mode);
		break;
	case FUSE_MKNOD:
		text_add(t, " mode=0%o rdev=0x%x", a->mknod.mode, a->mknod.rdev);
		break;
	case FUSE_MKDIR:
		text_add(t, " mode=0%o", a->mkdir.mode);
		break;
	case FUSE_RENAME:
		text_add(t, " newdir=%" PRIu64, a->rename.newdir);
		break;
	case FUSE_RENAME2:
		text_add(t, " newdir=%" PRIu64 " flags=0x%x", a->rename2.newdir,
			 a->rename2.flags);
		break;
	case FUSE_LINK:
		text_add(t, " oldnodeid=%" PRIu64, a->link.oldnodeid);
		break;
	case FUSE_OPEN:
	case FUSE_OPENDIR:
		text_add(t, " flags=0%o", a->open.flags);
		break;
	case FUSE_CREATE:
	case FUSE_TMPFILE:
		text_add(t, " flags=0%o mode=0%o", a->create.flags,
			 a->create.mode);
		break;
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		text_add(t, " fh=%" PRIu64 " offset=%" PRIu64 " size=%u",
			 a->read.fh, a->read.offset, a->read.size);
		break;
	case FUSE_WRITE:
		text_add(t, " fh=%" PRIu64 " offset=%" PRIu64 " size=%u"
			 " flags=0x%x", a->write.fh, a->write.offset,
			 a->write.size, a->write.write_flags);
		break;
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
		text_add(t, " fh=%" PRIu64, a->release.fh);
		break;
	case FUSE_FLUSH:
		text_add(t, " fh=%" PRIu64, a->flush.fh);
		break;
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
		text_add(t, " fh=%" PRIu64 " datasync=%u", a->fsync.fh,
			 a->fsync.fsync_flags & FUSE_FSYNC_FDATASYNC);
		break;
	case FUSE_SETXATTR:
		text_add(t, " size=%u flags=0x%x", a->setxattr.size,
			 a->setxattr.flags);
		break;
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
		text_add(t, " size=%u", a->getxattr.size);
		break;
	case FUSE_INIT:
		text_add(t, " version=%u.%u flags=0x%x flags2=0x%x",
			 a->init.major, a->init.minor, a->init.flags,
			 a->init.flags2);
		break;
	case FUSE_GETLK:
	case FUSE_SETLK:
	case FUSE_SETLKW:
		text_add(t, " fh=%" PRIu64 " type=%u start=%" PRIu64
			 " end=%" PRIu64, a->getlk.fh, a->getlk.lk.type,
			 a->getlk.lk.start, a->getlk.lk.end);
		break;
	case FUSE_ACCESS:
		text_add(t, " mask=0%o", a->access.mask);
		break;
	case FUSE_INTERRUPT:
		text_add(t, " target=%" PRIu64, a->interrupt.unique);
		break;
	case FUSE_IOCTL:
		text_add(t, " fh=%" PRIu64 " cmd=0x%x in=%u out=%u",
			 a->ioctl.fh, a->ioctl.cmd, a->ioctl.in_size,
			 a->ioctl.out_size);
		break;
	case FUSE_FALLOCATE:
		text_add(t, " fh=%" PRIu64 " offset=%" PRIu64 " length=%"
			 PRIu64 " mode=0x%x", a->fallocate.fh,
			 a->fallocate.offset, a->fallocate.length,
			 a->fallocate.mode);
		break;
	case FUSE_LSEEK:
		text_add(t, " fh=%" PRIu64 " offset=%" PRIu64 " whence=%u",
			 a->lseek.fh, a->lseek.offset, a->lseek.whence);
		break;
	case FUSE_COPY_FILE_RANGE:
		text_add(t, " off_in=%" PRIu64 " nodeid_out=%" PRIu64
			 " off_out=%" PRIu64 " len=%" PRIu64,
			 a->copy_file_range.off_in,
			 a->copy_file_range.nodeid_out,
			 a->copy_file_range.off_out, a->copy_file_range.len);
		break;
	case FUSE_SETUPMAPPING:
		text_add(t, " fh=%" PRIu64 " foffset=%" PRIu64 " len=%" PRIu64
			 " moffset=%" PRIu64 " flags=0x%" PRIx64,
			 a->setupmapping.fh, a->setupmapping.foffset,
			 a->setupmapping.len, a->setupmapping.moffset,
			 a->setupmapping.flags);
		break;
	case FUSE_BATCH_FORGET:
	case FUSE_REMOVEMAPPING:
		text_add(t, " count=%u", w->count);
		break;
	case FUSE_STATX:
		text_add(t, " fh=%" PRIu64 " mask=0x%x", a->statx.fh,
			 a->statx.sx_mask);
		break;
	}
}

int wire_describe(const struct wire_req *w, char *buf, size_t size)
{
	struct wire_text t = { buf, size, 0 };

	if (size > 0)
		buf[0] = '\0';
	if (w->op != NULL)
		text_add(&t, "%s", w->op->name);
	else
		text_add(&t, "UNKNOWN(%u)", w->in.opcode);
	text_add(&t, " unique=%" PRIu64 " nodeid=%" PRIu64, w->in.unique,
		 w->in.nodeid);
	if (w->op != NULL)
		describe_arg(&t, w);
	text_name(&t, "name", w->name);
	text_name(&t, w->in.opcode == FUSE_SYMLINK ? "target" : "newname",
		  w->name2);
	if (w->data != NULL && w->in.opcode != FUSE_BATCH_FORGET &&
	    w->in.opcode != FUSE_REMOVEMAPPING)
		text_add(&t, " data_len=%zu", w->data_len);
	return t.len > INT32_MAX ? INT32_MAX : (int)t.len;
}
