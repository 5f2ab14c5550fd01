/*
 * real.c - finding the functions the hooks stand in front of.
 *
 * libc is always in the global scope, so dlsym(RTLD_NEXT) finds it. libssl may not be: Python
 * loads _ssl, and with it libssl.so.3, with RTLD_LOCAL. Our SSL_read_ex still intercepts its
 * calls (a preloaded library comes first in every lookup), but RTLD_NEXT then finds nothing
 * and a naive hook jumps to NULL. So we look for the libssl the process has loaded, reopen it
 * with RTLD_NOLOAD (no second copy is ever loaded) and take the symbol from that handle.
 */
#include "shim/shim.h"

#include <dlfcn.h>
#include <link.h>
#include <limits.h>
#include <string.h>

void *shim_real_libc(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

/* What find_lib looks for (a library's file name prefix) and where it puts its path. */
struct lib_search {
	const char *prefix;
	char path[PATH_MAX];
};

static int find_lib(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct lib_search *ls = arg;
	const char *name = info->dlpi_name;
	const char *base;
	size_t n;

	(void)size;
	if (name == NULL || name[0] == '\0')
		return 0;
	base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (strncmp(base, ls->prefix, strlen(ls->prefix)) != 0)
		return 0;
	n = strlen(name);
	if (n >= PATH_MAX)
		return 0;
	memcpy(ls->path, name, n + 1);
	return 1;
}

void *shim_real_in(const char *lib_prefix, const char *name)
{
	struct lib_search ls;
	void *sym = dlsym(RTLD_NEXT, name);
	void *handle;

	if (sym != NULL)
		return sym;
	ls.prefix = lib_prefix;
	ls.path[0] = '\0';
	dl_iterate_phdr(find_lib, &ls);
	if (ls.path[0] == '\0')
		return NULL;
	handle = dlopen(ls.path, RTLD_LAZY | RTLD_NOLOAD);
	if (handle == NULL)
		return NULL;
	sym = dlsym(handle, name);
	/* Drops only the reference RTLD_NOLOAD took: whoever loaded the library keeps it loaded. */
	dlclose(handle);
	return sym;
}

void *shim_real_ssl(const char *name)
{
	return shim_real_in("libssl.so", name);
}
