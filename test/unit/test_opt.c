/*
 * Unit test for fuse_opt_*: every template kind, "-o" lists and escapes,
 * keys passed to the processing function, KEEP/DISCARD, non-options, "--",
 * and the errors a user sees.
 */
#include "fuse_opt.h"
#include "fuse_log.h"

#include "check.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conf {
	int flag_x;
	int verbose;
	char *name;
	unsigned u;
	unsigned long ul;
	unsigned long long ull;
	unsigned mode;
	int d;
	char *sep_str;
	int sep_int;
	int has_foo;
	int seen_keys[16];
	char seen[16][64];
	int nseen;
	int proc_result;
};

enum { KEY_A = 1, KEY_B, KEY_FAIL, KEY_ADD };

#define OPT(t, m, v) { t, offsetof(struct conf, m), v }

static const struct fuse_opt opts[] = {
	OPT("-x", flag_x, 1),
	OPT("--verbose", verbose, 7),
	OPT("-v", verbose, 3),
	OPT("name=%s", name, 0),
	OPT("u=%u", u, 0),
	OPT("ul=%lu", ul, 0),
	OPT("ull=%llu", ull, 0),
	OPT("mode=%o", mode, 0),
	OPT("-d=%d", d, 0),
	OPT("--num=%d", d, 0),
	OPT("-s %s", sep_str, 0),
	OPT("-n %d", sep_int, 0),
	OPT("foo=", has_foo, 1),
	OPT("exact=yes", has_foo, 2),
	FUSE_OPT_KEY("-a", KEY_A),
	FUSE_OPT_KEY("bkey", KEY_B),
	FUSE_OPT_KEY("-k ", KEY_B),
	FUSE_OPT_KEY("fail", KEY_FAIL),
	FUSE_OPT_KEY("addme", KEY_ADD),
	FUSE_OPT_KEY("keepme", FUSE_OPT_KEY_KEEP),
	FUSE_OPT_KEY("--keep", FUSE_OPT_KEY_KEEP),
	FUSE_OPT_KEY("dropme", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("--drop", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

static int proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct conf *c = data;

	if (c->nseen < 16) {
		c->seen_keys[c->nseen] = key;
		snprintf(c->seen[c->nseen], sizeof(c->seen[0]), "%s", arg);
		c->nseen++;
	}
	if (key == KEY_FAIL)
		return -1;
	if (key == KEY_ADD)
		return fuse_opt_add_arg(out, "--added") ? -1 : 0;
	return c->proc_result;
}

/* Parse a NULL-terminated list; the result stays in *args. */
static int parse(struct fuse_args *args, struct conf *c, char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	*args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	return fuse_opt_parse(args, c, opts, proc);
}

static void check_args(const struct fuse_args *a, const char **want)
{
	int n = 0;

	while (want[n])
		n++;
	CHECK(a->argc == n);
	for (int i = 0; i < n && i < a->argc; i++)
		CHECK_STR(a->argv[i], want[i]);
	CHECK(a->argv && a->argv[a->argc] == NULL);
}

static void free_conf(struct conf *c)
{
	free(c->name);
	free(c->sep_str);
}

static void test_flag_templates(void)
{
	struct conf c = { .proc_result = 1 };
	struct fuse_args a;
	char *argv[] = { "prog", "-x", "--verbose", "-ofoo=1", NULL };

	CHECK(parse(&a, &c, argv) == 0);
	CHECK(c.flag_x == 1);
	CHECK(c.verbose == 7);
	CHECK(c.has_foo == 1);
	CHECK(c.nseen == 0);
	check_args(&a, (const char *[]){ "prog", NULL });
	CHECK(a.allocated);
	fuse_opt_free_args(&a);
	CHECK(a.argc == 0 && a.argv == NULL && !a.allocated);

	/* "exact=yes" has no format: it matches only itself. */
	struct conf c2 = { .proc_result = 1 };
	char *argv2[] = { "prog", "-oexact=yes", "-oexact=no", NULL };
	CHECK(parse(&a, &c2, argv2) == 0);
	CHECK(c2.has_foo == 2);
	CHECK(c2.nseen == 1 && c2.seen_keys[0] == FUSE_OPT_KEY_OPT);
	CHECK_STR(c2.seen[0], "exact=no");
	check_args(&a, (const char *[]){ "prog", "-o", "exact=no", NULL });
	fuse_opt_free_args(&a);
}

static void test_value_templates(void)
{
	struct conf c = { .proc_result = 1 };
	struct fuse_args a;
	char *argv[] = { "prog", "-oname=first", "-o",
			 "name=second,u=42,ul=4000000000,ull=18446744073709551615",
			 "-omode=755", "-d=-12", NULL };

	CHECK(parse(&a, &c, argv) == 0);
	CHECK_STR(c.name, "second"); /* the first copy was freed */
	CHECK(c.u == 42);
	CHECK(c.ul == 4000000000UL);
	CHECK(c.ull == 18446744073709551615ULL);
	CHECK(c.mode == 0755);
	CHECK(c.d == -12);
	check_args(&a, (const char *[]){ "prog", NULL });
	fuse_opt_free_args(&a);
	free_conf(&c);

	struct conf c2 = { .proc_result = 1 };
	char *argv2[] = { "prog", "--num=99", "-oname=", NULL };
	CHECK(parse(&a, &c2, argv2) == 0);
	CHECK(c2.d == 99);
	CHECK_STR(c2.name, "");
	fuse_opt_free_args(&a);
	free_conf(&c2);
}

static void test_separate_argument(void)
{
	struct conf c = { .proc_result = 1 };
	struct fuse_args a;
	char *argv[] = { "prog", "-s", "two words", "-n7", "-k", "kv", "-kjoined",
			 "-n", "8", NULL };

	CHECK(parse(&a, &c, argv) == 0);
	CHECK_STR(c.sep_str, "two words");
	CHECK(c.sep_int == 8);
	/* A key template gets the two arguments joined into one. */
	CHECK(c.nseen == 2);
	CHECK(c.seen_keys[0] == KEY_B && c.seen_keys[1] == KEY_B);
	CHECK_STR(c.seen[0], "-kkv");
	CHECK_STR(c.seen[1], "-kjoined");
	check_args(&a, (const char *[]){ "prog", "-kkv", "-kjoined", NULL });
	fuse_opt_free_args(&a);
	free_conf(&c);
}

static void test_option_lists_and_escapes(void)
{
	struct conf c = { .proc_result = 1 };
	struct fuse_args a;
	char *argv[] = { "prog", "-o", "unknown1,name=a\\,b\\\\c,,other=x\\,y",
			 "-ounknown2", "-oname2=\\054z", NULL };

	CHECK(parse(&a, &c, argv) == 0);
	CHECK_STR(c.name, "a,b\\c");
	CHECK(c.nseen == 4);
	CHECK_STR(c.seen[0], "unknown1");
	CHECK_STR(c.seen[1], "other=x,y");
	CHECK_STR(c.seen[2], "unknown2");
	CHECK_STR(c.seen[3], "name2=,z"); /* octal escape */
	for (int i = 0; i < 4; i++)
		CHECK(c.seen_keys[i] == FUSE_OPT_KEY_OPT);
	/* Kept options are joined again, escaped, into one list after argv[0]. */
	check_args(&a, (const char *[]){ "prog", "-o",
		"unknown1,other=x\\,y,unknown2,name2=\\,z", NULL });
	fuse_opt_free_args(&a);
	free_conf(&c);
}

static void test_keys_keep_discard(void)
{
	struct conf c = { .proc_result = 1 };
	struct fuse_args a;
	char *argv[] = { "prog", "-a", "-obkey,keepme,dropme", "--keep", "--drop",
			 "-oaddme", "--unknown", NULL };

	CHECK(parse(&a, &c, argv) == 0);
	CHECK(c.nseen == 4);
	CHECK(c.seen_keys[0] == KEY_A);
	CHECK_STR(c.seen[0], "-a");
	CHECK(c.seen_keys[1] == KEY_B);
	CHECK_STR(c.seen[1], "bkey"); /* without the "-o" */
	CHECK(c.seen_keys[2] == KEY_ADD);
	CHECK(c.seen_keys[3] == FUSE_OPT_KEY_OPT);
	CHECK_STR(c.seen[3], "--unknown");
	check_args(&a, (const char *[]){ "prog", "-o", "bkey,keepme", "-a",
		"--keep", "--added", "--unknown", NULL });
	fuse_opt_free_args(&a);

	/* The processing function returning 0 drops the argument. */
	struct conf c2 = { .proc_result = 0 };
	char *argv2[] = { "prog", "-a", "-obkey", "mnt", NULL };
	CHECK(parse(&a, &c2, argv2) == 0);
	CHECK(c2.nseen == 3 && c2.seen_keys[2] == FUSE_OPT_KEY_NONOPT);
	check_args(&a, (const char *[]){ "prog", NULL });
	fuse_opt_free_args(&a);
}

static void test_nonopts_and_dashdash(void)
{
	struct conf c = { .proc_result = 1 };
	struct fuse_args a;
	char *argv[] = { "prog", "mnt", "-x", "--", "-v", "-ofoo", NULL };

	CHECK(parse(&a, &c, argv) == 0);
	CHECK(c.flag_x == 1);
	CHECK(c.verbose == 0); /* after "--" nothing is an option */
	CHECK(c.nseen == 3);
	CHECK(c.seen_keys[0] == FUSE_OPT_KEY_NONOPT);
	CHECK(c.seen_keys[1] == FUSE_OPT_KEY_NONOPT);
	CHECK(c.seen_keys[2] == FUSE_OPT_KEY_NONOPT);
	CHECK_STR(c.seen[1], "-v");
	check_args(&a, (const char *[]){ "prog", "mnt", "--", "-v", "-ofoo",
		NULL });
	fuse_opt_free_args(&a);

	/* A "--" with nothing kept after it is dropped. */
	struct conf c2 = { .proc_result = 0 };
	char *argv2[] = { "prog", "--", "x", NULL };
	CHECK(parse(&a, &c2, argv2) == 0);
	check_args(&a, (const char *[]){ "prog", NULL });
	fuse_opt_free_args(&a);

	/* NULL table and NULL proc keep everything. */
	char *argv3[] = { "prog", "-z", "-oa,b", "m", NULL };
	a = (struct fuse_args)FUSE_ARGS_INIT(4, argv3);
	CHECK(fuse_opt_parse(&a, NULL, NULL, NULL) == 0);
	check_args(&a, (const char *[]){ "prog", "-o", "a,b", "-z", "m", NULL });
	fuse_opt_free_args(&a);
	CHECK(fuse_opt_parse(NULL, NULL, NULL, NULL) == 0);
}

static void expect_error(char **argv, const char *msg)
{
	struct conf c = { .proc_result = 1 };
	struct fuse_args a;
	int argc = 0;

	while (argv[argc])
		argc++;
	last_log[0] = '\0';
	CHECK(parse(&a, &c, argv) == -1);
	if (msg)
		CHECK_STR(last_log, msg);
	/* On error args is left untouched. */
	CHECK(a.argc == argc && a.argv == argv && !a.allocated);
	free_conf(&c);
}

static void test_errors(void)
{
	fuse_set_log_func(capture_log);
	expect_error((char *[]){ "prog", "-s", NULL },
		     "fuse: missing argument after `-s'\n");
	expect_error((char *[]){ "prog", "-o", NULL },
		     "fuse: missing argument after `-o'\n");
	expect_error((char *[]){ "prog", "-ou=abc", NULL },
		     "fuse: invalid parameter in option `u=abc'\n");
	expect_error((char *[]){ "prog", "-ou=12x", NULL },
		     "fuse: invalid parameter in option `u=12x'\n");
	expect_error((char *[]){ "prog", "-ou=", NULL },
		     "fuse: invalid parameter in option `u='\n");
	expect_error((char *[]){ "prog", "-n", "seven", NULL },
		     "fuse: invalid parameter in option `-nseven'\n");
	expect_error((char *[]){ "prog", "-ofail", NULL }, NULL);
	fuse_set_log_func(NULL);
}

static void test_arg_helpers(void)
{
	struct fuse_args a = FUSE_ARGS_INIT(0, NULL);
	char *argv[] = { "prog", "mnt", NULL };
	char *list = NULL;

	CHECK(fuse_opt_add_arg(&a, "one") == 0);
	CHECK(fuse_opt_add_arg(&a, "three") == 0);
	CHECK(fuse_opt_insert_arg(&a, 1, "two") == 0);
	CHECK(fuse_opt_insert_arg(&a, 0, "zero") == 0);
	check_args(&a, (const char *[]){ "zero", "one", "two", "three", NULL });
	fuse_set_log_func(capture_log);
	CHECK(fuse_opt_insert_arg(&a, 9, "bad") == -1);
	fuse_set_log_func(NULL);
	fuse_opt_free_args(&a);

	/* Adding to a vector that wraps main's argv copies it first. */
	a = (struct fuse_args)FUSE_ARGS_INIT(2, argv);
	CHECK(fuse_opt_add_arg(&a, "-f") == 0);
	CHECK(a.allocated && a.argv != argv);
	check_args(&a, (const char *[]){ "prog", "mnt", "-f", NULL });
	CHECK_STR(argv[1], "mnt");
	fuse_opt_free_args(&a);

	CHECK(fuse_opt_add_opt(&list, "a") == 0);
	CHECK(fuse_opt_add_opt(&list, "b,c") == 0);
	CHECK_STR(list, "a,b,c");
	CHECK(fuse_opt_add_opt_escaped(&list, "d,e\\f") == 0);
	CHECK_STR(list, "a,b,c,d\\,e\\\\f");
	free(list);

	CHECK(fuse_opt_match(opts, "-x") == 1);
	CHECK(fuse_opt_match(opts, "name=abc") == 1);
	CHECK(fuse_opt_match(opts, "-sfoo") == 1);
	CHECK(fuse_opt_match(opts, "nomatch") == 0);
	CHECK(fuse_opt_match(NULL, "-x") == 0);
}

int main(void)
{
	test_flag_templates();
	test_value_templates();
	test_separate_argument();
	test_option_lists_and_escapes();
	test_keys_keep_discard();
	test_nonopts_and_dashdash();
	test_errors();
	test_arg_helpers();
	return check_summary("test_opt");
}
