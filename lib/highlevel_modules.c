/*
 * Stacked modules of the high-level API (-o modules=a:b): each is a
 * factory that builds a struct fuse_fs over the layer below. A module is
 * looked up among the built-in ones, then as fuse_module_NAME_factory in
 * libfusemod_NAME.so (what FUSE_REGISTER_MODULE defines).
 */
#include "highlevel.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hl_module {
	const char *name;
	fuse_module_factory_t factory;
};

/* The built-in modules. */
struct fuse_fs *hl_subdir_factory(struct fuse_args *args, struct fuse_fs *fs[]);
void hl_subdir_help(void);

static const struct hl_module builtin_modules[] = {
	{ "subdir", hl_subdir_factory },
};

#define BUILTIN_COUNT (sizeof(builtin_modules) / sizeof(builtin_modules[0]))

/* The factory of name: built in, or from libfusemod_<name>.so. */
static fuse_module_factory_t module_find(const char *name)
{
	char lib[256], sym[256];
	fuse_module_factory_t *factory;
	void *so;

	for (size_t i = 0; i < BUILTIN_COUNT; i++)
		if (strcmp(builtin_modules[i].name, name) == 0)
			return builtin_modules[i].factory;
	if (snprintf(lib, sizeof(lib), "libfusemod_%s.so", name) >= (int)sizeof(lib) ||
	    snprintf(sym, sizeof(sym), "fuse_module_%s_factory", name) >= (int)sizeof(sym)) {
		fuse_log(FUSE_LOG_ERR, "fuse: module name `%s' is too long\n", name);
		return NULL;
	}
	/* The library stays loaded: the layer's callbacks live in it. */
	so = dlopen(lib, RTLD_NOW);
	if (!so) {
		fuse_log(FUSE_LOG_ERR, "fuse: module `%s' is neither built in (subdir) "
			 "nor loadable: %s\n", name, dlerror());
		return NULL;
	}
	factory = dlsym(so, sym);
	if (!factory) {
		fuse_log(FUSE_LOG_ERR, "fuse: %s has no %s: not a module\n", lib, sym);
		dlclose(so);
		return NULL;
	}
	return *factory;
}

int hl_modules_push(struct fuse_fs **fs, const char *modules, struct fuse_args *args)
{
	char *list = strdup(modules), *name, *save = NULL;
	int res = 0;

	if (!list) {
		fuse_log(FUSE_LOG_ERR, "fuse: out of memory for -o modules=\n");
		return -1;
	}
	for (name = strtok_r(list, ":", &save); name; name = strtok_r(NULL, ":", &save)) {
		fuse_module_factory_t factory = module_find(name);
		struct fuse_fs *below[2] = { *fs, NULL }, *top;

		if (!factory) {
			res = -1;
			break;
		}
		top = factory(args, below);
		if (!top) {
			fuse_log(FUSE_LOG_ERR, "fuse: module `%s' failed to start\n", name);
			res = -1;
			break;
		}
		top->below = *fs;
		top->debug = (*fs)->debug;
		*fs = top;
	}
	free(list);
	return res;
}

void hl_modules_help(const char *modules)
{
	(void)modules;
	printf("\nOptions for subdir module:\n");
	hl_subdir_help();
}
