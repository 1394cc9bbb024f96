/*
 * fusedax: command line and "-o a,b=c" option parsing driven by a table of
 * templates. Source-compatible with libfuse 3's fuse_opt.h.
 */
#ifndef FUSE_OPT_H_
#define FUSE_OPT_H_

#ifdef __cplusplus
extern "C" {
#endif

/**
 * One entry of an option table; a table ends with FUSE_OPT_END.
 *
 * templ says which arguments match:
 *   "-x", "--foo"     exactly that argument;
 *   "foo"             "-ofoo", or "foo" inside a "-o a,foo,b" list;
 *   "foo=", "--foo="  the same with any value after '=';
 *   "foo=%s", "--bar=%lu"  the same, and the value is stored (below);
 *   "-x "             "-xVALUE" or "-x" "VALUE" (two arguments);
 *   "-x %s"           the same, and the value is stored.
 * A template with "=" or " " followed by anything but "%..." or nothing
 * matches only itself. Every entry that matches an argument acts, in order.
 *
 * What a match does:
 *   offset == -1U (FUSE_OPT_KEY): the processing function is called with
 *       value as its key;
 *   else, no format in templ: the int at data + offset is set to value;
 *   else: the value after '=' or the template's space is converted with
 *       the scanf conversion in templ ("%u", "%lu", "%llu", "%o", "%d",
 *       "%x", ...) into the variable at data + offset. The whole value must
 *       be consumed. "%s" stores a malloc'ed copy and frees the previous
 *       non-NULL string in that place.
 */
struct fuse_opt {
	const char *templ;
	unsigned long offset;
	int value;
};

/** An entry that calls the processing function with key on a match. */
#define FUSE_OPT_KEY(templ, key) { templ, -1U, key }

/** The entry that ends every option table. */
#define FUSE_OPT_END { NULL, 0, 0 }

/**
 * An argument vector, argv NULL-terminated. allocated is nonzero when argv
 * and its strings belong to the vector (heap copies, freed by
 * fuse_opt_free_args()); zero when they belong to the caller (main's argv).
 */
struct fuse_args {
	int argc;
	char **argv;
	int allocated;
};

/** Wrap main's argc/argv without copying them. */
#define FUSE_ARGS_INIT(argc, argv) { argc, argv, 0 }

/** Key: an option that no table entry matched. */
#define FUSE_OPT_KEY_OPT -1
/** Key: a non-option (not starting with '-', or anything after "--"). */
#define FUSE_OPT_KEY_NONOPT -2
/** Table key: keep the argument without calling the processing function. */
#define FUSE_OPT_KEY_KEEP -3
/** Table key: drop the argument without calling the processing function. */
#define FUSE_OPT_KEY_DISCARD -4

/**
 * Processing function: called for unmatched options (FUSE_OPT_KEY_OPT),
 * non-options (FUSE_OPT_KEY_NONOPT) and FUSE_OPT_KEY entries (their key).
 *
 * arg is the whole argument. An option from a "-o" list comes without the
 * "-o" and with its escapes resolved; a two-argument option ("-x" "VALUE")
 * comes joined ("-xVALUE").
 *
 * outargs is the output vector built so far; the function may add to it.
 * Return 1 to keep arg in the output (an option from a "-o" list goes back
 * into the output's "-o" list), 0 to drop it, -1 to fail the whole parse.
 */
typedef int (*fuse_opt_proc_t)(void *data, const char *arg, int key,
			       struct fuse_args *outargs);

/**
 * Parse args (argv[0] is the program name and is always kept) against
 * opts, calling proc as described above. On success args is replaced by
 * the kept arguments, the kept "-o" options joined into one "-o" list
 * placed right after argv[0]; returns 0. On error (a missing or bad value,
 * proc returned -1, out of memory) the cause is logged, args is left as it
 * was, and -1 is returned.
 *
 * "--" ends the options: everything after it is a non-option. It is kept
 * in the output unless nothing follows it there.
 * A NULL args is an empty vector, a NULL opts an empty table, and a NULL
 * proc keeps everything it would have been given.
 */
int fuse_opt_parse(struct fuse_args *args, void *data,
		   const struct fuse_opt opts[], fuse_opt_proc_t proc);

/**
 * Append opt to the comma-separated list *opts (*opts may be NULL; the list
 * is malloc'ed). Returns 0, or -1 when out of memory.
 */
int fuse_opt_add_opt(char **opts, const char *opt);

/** Like fuse_opt_add_opt(), with ',' and '\' in opt escaped by a '\'. */
int fuse_opt_add_opt_escaped(char **opts, const char *opt);

/**
 * Append a copy of arg to args. A vector that does not own its argv is
 * first copied, so this works on FUSE_ARGS_INIT(argc, argv) too.
 * Returns 0, or -1 when out of memory.
 */
int fuse_opt_add_arg(struct fuse_args *args, const char *arg);

/**
 * Insert a copy of arg at index pos (0 <= pos <= argc), e.g. to put an
 * option before a "--". Returns 0, or -1 (out of memory or pos invalid).
 */
int fuse_opt_insert_arg(struct fuse_args *args, int pos, const char *arg);

/**
 * Free what args owns and reset it to empty; the struct itself is the
 * caller's.
 */
void fuse_opt_free_args(struct fuse_args *args);

/** Return 1 if some entry of opts matches the option opt, else 0. */
int fuse_opt_match(const struct fuse_opt opts[], const char *opt);

#ifdef __cplusplus
}
#endif

#endif /* FUSE_OPT_H_ */
