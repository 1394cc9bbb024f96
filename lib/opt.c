/*
 * fuse_opt_*: parse a command line against a table of option templates,
 * including comma-separated "-o" lists, and build the vector of arguments
 * the caller keeps.
 */
#include "fuse_opt.h"
#include "fuse_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where one fuse_opt_parse() call stands. */
struct opt_ctx {
	void *data;
	const struct fuse_opt *opts;
	fuse_opt_proc_t proc;
	int argc;
	char **argv;
	int next;		/* index of the next input argument */
	int dashdash;		/* index of "--" in out, or -1 */
	struct fuse_args out;	/* kept arguments, always owned */
	char *kept_opts;	/* kept "-o" options, escaped, comma-joined */
};

static int opt_nomem(void)
{
	fuse_log(FUSE_LOG_ERR, "fuse: memory allocation failed\n");
	return -1;
}

/* Make args own its vector so that it can grow: copy the caller's. */
static int args_take_ownership(struct fuse_args *args)
{
	char **copy;
	int i;

	if (args->allocated)
		return 0;
	copy = calloc(args->argc + 1, sizeof(*copy));
	if (!copy)
		return -1;
	for (i = 0; i < args->argc; i++) {
		copy[i] = strdup(args->argv[i]);
		if (!copy[i])
			goto out_free;
	}
	args->argv = copy;
	args->allocated = 1;
	return 0;

out_free:
	while (i-- > 0)
		free(copy[i]);
	free(copy);
	return -1;
}

int fuse_opt_insert_arg(struct fuse_args *args, int pos, const char *arg)
{
	char **argv;
	char *dup;

	if (pos < 0 || pos > args->argc) {
		fuse_log(FUSE_LOG_ERR,
			 "fuse: cannot insert `%s' at %d into %d arguments\n",
			 arg, pos, args->argc);
		return -1;
	}
	if (args_take_ownership(args) < 0)
		return opt_nomem();
	dup = strdup(arg);
	if (!dup)
		return opt_nomem();
	argv = realloc(args->argv, (args->argc + 2) * sizeof(*argv));
	if (!argv) {
		free(dup);
		return opt_nomem();
	}
	memmove(&argv[pos + 1], &argv[pos],
		(args->argc - pos) * sizeof(*argv));
	argv[pos] = dup;
	args->argv = argv;
	args->argc++;
	args->argv[args->argc] = NULL;
	return 0;
}

int fuse_opt_add_arg(struct fuse_args *args, const char *arg)
{
	return fuse_opt_insert_arg(args, args->argc, arg);
}

void fuse_opt_free_args(struct fuse_args *args)
{
	int i;

	if (!args)
		return;
	if (args->allocated) {
		for (i = 0; i < args->argc; i++)
			free(args->argv[i]);
		free(args->argv);
	}
	args->argc = 0;
	args->argv = NULL;
	args->allocated = 0;
}

/* Append opt to the list, escaping ',' and '\' when escape is set. */
static int opts_append(char **opts, const char *opt, int escape)
{
	size_t old = *opts ? strlen(*opts) : 0;
	size_t need = old + 1 + 2 * strlen(opt) + 1;
	char *list, *d;

	list = realloc(*opts, need);
	if (!list)
		return opt_nomem();
	d = list + old;
	if (old)
		*d++ = ',';
	for (; *opt; opt++) {
		if (escape && (*opt == ',' || *opt == '\\'))
			*d++ = '\\';
		*d++ = *opt;
	}
	*d = '\0';
	*opts = list;
	return 0;
}

int fuse_opt_add_opt(char **opts, const char *opt)
{
	return opts_append(opts, opt, 0);
}

int fuse_opt_add_opt_escaped(char **opts, const char *opt)
{
	return opts_append(opts, opt, 1);
}

/*
 * Does template t match arg? On a match *sep is the index in t of the '='
 * or ' ' that starts the value part, or 0 for a template without one.
 */
static int templ_match(const char *t, const char *arg, unsigned *sep)
{
	const char *s = strchr(t, '=');

	if (!s)
		s = strchr(t, ' ');
	if (s && (s[1] == '\0' || s[1] == '%')) {
		/* "foo=" must match with its '='; "-x " matches "-x..." */
		size_t prefix = s - t + (*s == '=');

		if (strncmp(arg, t, prefix) == 0) {
			*sep = s - t;
			return 1;
		}
	}
	if (strcmp(t, arg) == 0) {
		*sep = 0;
		return 1;
	}
	return 0;
}

static const struct fuse_opt *find_match(const struct fuse_opt *o,
					 const char *arg, unsigned *sep)
{
	for (; o && o->templ; o++)
		if (templ_match(o->templ, arg, sep))
			return o;
	return NULL;
}

int fuse_opt_match(const struct fuse_opt opts[], const char *opt)
{
	unsigned sep;

	if (!opt)
		return 0;
	return find_match(opts, opt, &sep) != NULL;
}

static int keep_arg(struct opt_ctx *ctx, const char *arg)
{
	return fuse_opt_add_arg(&ctx->out, arg);
}

static int call_proc(struct opt_ctx *ctx, const char *arg, int key,
		     int in_list)
{
	if (key == FUSE_OPT_KEY_DISCARD)
		return 0;
	if (key != FUSE_OPT_KEY_KEEP && ctx->proc) {
		int res = ctx->proc(ctx->data, arg, key, &ctx->out);

		if (res <= 0)
			return res < 0 ? -1 : 0;
	}
	if (in_list)
		return fuse_opt_add_opt_escaped(&ctx->kept_opts, arg);
	return keep_arg(ctx, arg);
}

/* Convert param with the scanf conversion fmt ("%s", "%u", ...) into var. */
static int store_value(void *var, const char *fmt, const char *param,
		       const char *arg)
{
	char conv[32];
	int used = -1;

	if (strcmp(fmt, "%s") == 0) {
		char **str = var;
		char *copy = strdup(param);

		if (!copy)
			return opt_nomem();
		free(*str);
		*str = copy;
		return 0;
	}
	/* %n tells how much was consumed: trailing junk is an error too. */
	if (snprintf(conv, sizeof(conv), "%s%%n", fmt) >= (int)sizeof(conv))
		goto out_invalid;
	if (sscanf(param, conv, var, &used) != 1 || used < 0 ||
	    param[used] != '\0')
		goto out_invalid;
	return 0;

out_invalid:
	fuse_log(FUSE_LOG_ERR, "fuse: invalid parameter in option `%s'\n",
		 arg);
	return -1;
}

/* Do what entry o says for arg, which matched it with separator sep. */
static int apply_match(struct opt_ctx *ctx, const struct fuse_opt *o,
		       unsigned sep, const char *arg, int in_list)
{
	void *var;

	if (o->offset == -1U)
		return call_proc(ctx, arg, o->value, in_list);
	var = (char *)ctx->data + o->offset;
	if (sep && o->templ[sep + 1]) {
		const char *param = arg + sep + (o->templ[sep] == '=');

		return store_value(var, o->templ + sep + 1, param, arg);
	}
	*(int *)var = o->value;
	return 0;
}

static int missing_argument(const char *arg)
{
	fuse_log(FUSE_LOG_ERR, "fuse: missing argument after `%s'\n", arg);
	return -1;
}

/*
 * "-x" "VALUE" for a "-x %s" template: take the next argument, once, and
 * hand out the joined "-xVALUE".
 */
static int join_next_arg(struct opt_ctx *ctx, const char *arg, int in_list,
			 char **joined)
{
	const char *value;

	if (*joined)
		return 0;
	if (in_list || ctx->next >= ctx->argc)
		return missing_argument(arg);
	value = ctx->argv[ctx->next++];
	*joined = malloc(strlen(arg) + strlen(value) + 1);
	if (!*joined)
		return opt_nomem();
	strcpy(*joined, arg);
	strcat(*joined, value);
	return 0;
}

/* One option, from the command line or (in_list) from a "-o" list. */
static int process_option(struct opt_ctx *ctx, const char *arg, int in_list)
{
	const struct fuse_opt *o;
	char *joined = NULL;
	unsigned sep;
	int res = 0;

	o = find_match(ctx->opts, arg, &sep);
	if (!o)
		return call_proc(ctx, arg, FUSE_OPT_KEY_OPT, in_list);
	for (; o && res == 0; o = find_match(o + 1, arg, &sep)) {
		const char *this_arg = arg;

		if (sep && o->templ[sep] == ' ' && arg[sep] == '\0') {
			res = join_next_arg(ctx, arg, in_list, &joined);
			if (res < 0)
				break;
			this_arg = joined;
		}
		res = apply_match(ctx, o, sep, this_arg, in_list);
	}
	free(joined);
	return res;
}

/*
 * Split a "-o" list at unescaped commas. '\' takes the next character
 * literally; '\ooo' (octal, as in /proc/mounts) gives that byte.
 */
static int process_list(struct opt_ctx *ctx, const char *list)
{
	char *item = malloc(strlen(list) + 1);
	const char *s = list;
	int res = 0;

	if (!item)
		return opt_nomem();
	while (res == 0 && *s) {
		char *d = item;

		for (; *s && *s != ','; s++) {
			if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
			    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
			    s[3] <= '7') {
				*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					      (s[3] - '0'));
				s += 3;
			} else if (s[0] == '\\' && s[1]) {
				*d++ = *++s;
			} else {
				*d++ = *s;
			}
		}
		*d = '\0';
		if (*s == ',')
			s++;
		if (item[0])
			res = process_option(ctx, item, 1);
	}
	free(item);
	return res;
}

static int process_arg(struct opt_ctx *ctx, const char *arg)
{
	if (ctx->dashdash >= 0 || arg[0] != '-')
		return call_proc(ctx, arg, FUSE_OPT_KEY_NONOPT, 0);
	if (arg[1] == 'o') {
		if (arg[2])
			return process_list(ctx, arg + 2);
		if (ctx->next >= ctx->argc)
			return missing_argument(arg);
		return process_list(ctx, ctx->argv[ctx->next++]);
	}
	if (strcmp(arg, "--") == 0) {
		ctx->dashdash = ctx->out.argc;
		return keep_arg(ctx, arg);
	}
	return process_option(ctx, arg, 0);
}

/* Drop a trailing "--" and put the kept "-o" list right after argv[0]. */
static int finish_output(struct opt_ctx *ctx)
{
	struct fuse_args *out = &ctx->out;

	if (ctx->dashdash >= 0 && ctx->dashdash == out->argc - 1 &&
	    strcmp(out->argv[out->argc - 1], "--") == 0) {
		free(out->argv[--out->argc]);
		out->argv[out->argc] = NULL;
	}
	if (!ctx->kept_opts)
		return 0;
	if (fuse_opt_insert_arg(out, 1, "-o") < 0 ||
	    fuse_opt_insert_arg(out, 2, ctx->kept_opts) < 0)
		return -1;
	return 0;
}

int fuse_opt_parse(struct fuse_args *args, void *data,
		   const struct fuse_opt opts[], fuse_opt_proc_t proc)
{
	struct opt_ctx ctx = {
		.data = data,
		.opts = opts,
		.proc = proc,
		.dashdash = -1,
		.out = FUSE_ARGS_INIT(0, NULL),
	};
	int res = -1;

	if (!args || !args->argv || args->argc <= 0)
		return 0;
	ctx.argc = args->argc;
	ctx.argv = args->argv;
	if (keep_arg(&ctx, args->argv[0]) < 0)
		goto out;
	for (ctx.next = 1; ctx.next < ctx.argc;) {
		if (process_arg(&ctx, ctx.argv[ctx.next++]) < 0)
			goto out;
	}
	if (finish_output(&ctx) < 0)
		goto out;
	fuse_opt_free_args(args);
	*args = ctx.out;
	ctx.out.argv = NULL;
	ctx.out.argc = 0;
	res = 0;
out:
	free(ctx.kept_opts);
	fuse_opt_free_args(&ctx.out);
	return res;
}
