/*
 * libFuzzer target for the wire decoder: the first bytes of the input pick
 * the negotiated limits, the rest is one request. On success every field,
 * name, data byte and entry is read so a sanitizer sees any bad bound, and
 * the decoder's promises (wire.h) are re-checked; a broken one traps.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/*
 * Input layout:
 *   byte 0  bit 0: setxattr_ext; bits 1-2: window (none, 64 MiB, 1 GiB,
 *           2^63); bit 3: patch in.len to the real length (so mutations
 *           get past framing)
 *   byte 1  proto_minor (0 = before INIT)
 *   byte 2  log2 of the DAX alignment (mod 32; 31 means "0")
 *   rest    the request
 */
#define PREFIX 3

static const uint64_t windows[4] = { 0, 64ull << 20, 1ull << 30, 1ull << 63 };

#define PROMISE(cond)				\
	do {					\
		if (!(cond))			\
			__builtin_trap();	\
	} while (0)

static volatile unsigned sink;

static void touch(const void *p, size_t n)
{
	const unsigned char *b = p;
	unsigned acc = 0;
	size_t i;

	for (i = 0; i < n; i++)
		acc += b[i];
	sink += acc;
}

static int inside(const unsigned char *buf, size_t len, const void *p,
		  size_t n)
{
	const unsigned char *q = p;

	return q >= buf && q <= buf + len && n <= (size_t)(buf + len - q);
}

static void check_name(const unsigned char *buf, size_t len, const char *s)
{
	size_t n;

	if (s == NULL)
		return;
	n = strlen(s);	/* ASan catches a missing NUL */
	PROMISE(inside(buf, len, s, n + 1));
}

static void check_entries(const struct wire_req *w,
			  const struct wire_limits *lim)
{
	struct fuse_forget_one f;
	struct fuse_removemapping_one r;
	uint32_t i;

	PROMISE(w->data_len == (size_t)w->count * 16);
	for (i = 0; i < w->count; i++) {
		if (w->in.opcode == FUSE_BATCH_FORGET) {
			wire_batch_forget_entry(w, i, &f);
			touch(&f, sizeof(f));
		} else {
			wire_removemapping_entry(w, i, &r);
			PROMISE(r.len != 0 && r.moffset < lim->dax_window_size &&
				r.len <= lim->dax_window_size - r.moffset);
		}
	}
	if (w->in.opcode == FUSE_REMOVEMAPPING)
		PROMISE(w->count >= 1 &&
			w->count <= FUSE_REMOVEMAPPING_MAX_ENTRY);
}

static void check_success(const unsigned char *buf, size_t len,
			  const struct wire_req *w,
			  const struct wire_limits *lim)
{
	const struct fuse_setupmapping_in *m = &w->arg.setupmapping;

	PROMISE(w->op != NULL && w->op->opcode == w->in.opcode);
	PROMISE(w->in.len == len);
	touch(&w->arg, sizeof(w->arg));
	check_name(buf, len, w->name);
	check_name(buf, len, w->name2);
	if (w->data != NULL) {
		PROMISE(inside(buf, len, w->data, w->data_len));
		touch(w->data, w->data_len);
	}
	if (w->op->shape == WIRE_ENTRIES)
		check_entries(w, lim);
	if (w->op->flags & OPF_COMPONENT && w->name != NULL)
		PROMISE(w->name[0] != '\0' && strchr(w->name, '/') == NULL &&
			strlen(w->name) <= FUSE_NAME_MAX);
	if (w->in.opcode == FUSE_WRITE)
		PROMISE(w->data_len == w->arg.write.size);
	if (w->in.opcode == FUSE_SETUPMAPPING) {
		PROMISE(lim->dax_window_size != 0 && m->len != 0);
		PROMISE(m->moffset < lim->dax_window_size &&
			m->len <= lim->dax_window_size - m->moffset);
		PROMISE(m->foffset <= (uint64_t)INT64_MAX - m->len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_limits lim;
	struct wire_req w;
	unsigned char *buf;
	char text[256];
	size_t len;
	int rc;

	if (size < PREFIX)
		return 0;
	lim.setxattr_ext = data[0] & 1;
	lim.dax_window_size = windows[(data[0] >> 1) & 3];
	lim.proto_minor = data[1];
	lim.dax_alignment = (data[2] % 32) == 31 ? 0 : 1ull << (data[2] % 32);

	/* An exactly-sized copy: any read past the request is caught. */
	len = size - PREFIX;
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + PREFIX, len);
	if ((data[0] & 8) && len >= 4) {
		uint32_t l = (uint32_t)len;

		memcpy(buf, &l, sizeof(l));
	}

	rc = wire_decode(buf, len, &lim, &w);
	PROMISE(rc <= 0);
	if (rc == 0)
		check_success(buf, len, &w, &lim);
	else if (rc != -EPROTO)
		PROMISE(len >= sizeof(struct fuse_in_header));
	/* The session logs failed requests too. */
	PROMISE(wire_describe(&w, text, sizeof(text)) >= 0);
	PROMISE(strlen(text) < sizeof(text));
	free(buf);
	return 0;
}
