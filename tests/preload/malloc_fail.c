/*
 * malloc_fail.c - the allocation-failure torture helper (curl's -t, for a preloaded library):
 * built as build/tests/malloc_fail.so and preloaded ahead of the shim by
 * tests/integration/test_torture.py.
 *
 * It interposes malloc, calloc and realloc, and libc's allocating string calls (strdup,
 * strndup, asprintf, vasprintf), and counts the calls made from the shim's side of the
 * process: from code in libtokshim.so, and from the libraries only the shim uses there
 * (liblmdb, libzstd). Calls from anywhere else (the agent, libc, OpenSSL, libcurl) are passed
 * through uncounted, so a failure always lands on the shim. The string calls are done here on
 * __libc_malloc, so that one of them is one counted allocation, as the shim sees it.
 *
 *   TOKSHIM_MALLOC_FAIL=N      the Nth counted call fails (NULL, errno ENOMEM); 0 or unset:
 *                              none does
 *   TOKSHIM_MALLOC_COUNT=PATH  at exit, the number of counted calls is written to PATH
 *
 * Allocations libc makes inside other calls of the shim's (fopen's buffer) are attributed to
 * libc and not counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

#define RANGES_MAX 16

static const char *const counted_libs[] = { "libtokshim.so", "liblmdb.so", "libzstd.so" };

static struct {
	uintptr_t lo, hi;
} ranges[RANGES_MAX];
static int nranges;
static int ranges_state; /* 0 not looked up, 1 looking, 2 done */
static unsigned long fail_at, calls;

static int range_of_lib(struct dl_phdr_info *info, size_t size, void *arg)
{
	size_t i, k;

	(void)size;
	(void)arg;
	for (k = 0; k < sizeof counted_libs / sizeof counted_libs[0]; k++) {
		if (info->dlpi_name == NULL || strstr(info->dlpi_name, counted_libs[k]) == NULL)
			continue;
		for (i = 0; i < info->dlpi_phnum && nranges < RANGES_MAX; i++) {
			const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

			if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
				continue;
			ranges[nranges].lo = info->dlpi_addr + ph->p_vaddr;
			ranges[nranges].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
			nranges++;
		}
	}
	return 0;
}

/* Is the caller at ret one whose allocations count? Libraries are found once, on the first
 * allocation after this object's constructor (every preloaded object is mapped by then). */
static int counted(void *ret)
{
	uintptr_t r = (uintptr_t)ret;
	int i;

	if (__atomic_load_n(&ranges_state, __ATOMIC_ACQUIRE) != 2)
		return 0;
	for (i = 0; i < nranges; i++) {
		if (r >= ranges[i].lo && r < ranges[i].hi)
			return 1;
	}
	return 0;
}

/* 1 when this counted call is the one to fail. */
static int fail_now(void)
{
	unsigned long n = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);

	return fail_at != 0 && n == fail_at;
}

__attribute__((visibility("default"))) void *malloc(size_t n)
{
	if (counted(__builtin_return_address(0)) && fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

__attribute__((visibility("default"))) void *calloc(size_t n, size_t size)
{
	if (counted(__builtin_return_address(0)) && fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

__attribute__((visibility("default"))) void *realloc(void *p, size_t n)
{
	if (counted(__builtin_return_address(0)) && fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

/* 1 when the allocation the caller at ret asks for is to fail (errno set). */
static int fail_for(void *ret)
{
	if (!counted(ret) || !fail_now())
		return 0;
	errno = ENOMEM;
	return 1;
}

static char *dup_n(const char *s, size_t n)
{
	char *copy = __libc_malloc(n + 1);

	if (copy != NULL) {
		memcpy(copy, s, n);
		copy[n] = '\0';
	}
	return copy;
}

__attribute__((visibility("default"))) char *strdup(const char *s)
{
	return fail_for(__builtin_return_address(0)) ? NULL : dup_n(s, strlen(s));
}

__attribute__((visibility("default"))) char *strndup(const char *s, size_t n)
{
	return fail_for(__builtin_return_address(0)) ? NULL : dup_n(s, strnlen(s, n));
}

static int vasprintf_at(void *ret, char **out, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	*out = NULL;
	if (fail_for(ret))
		return -1;
	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	if (n >= 0)
		*out = __libc_malloc((size_t)n + 1);
	if (*out != NULL)
		n = vsnprintf(*out, (size_t)n + 1, fmt, again);
	else
		n = -1;
	va_end(again);
	return n;
}

__attribute__((visibility("default"))) int vasprintf(char **out, const char *fmt, va_list ap)
{
	return vasprintf_at(__builtin_return_address(0), out, fmt, ap);
}

__attribute__((visibility("default"))) int asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf_at(__builtin_return_address(0), out, fmt, ap);
	va_end(ap);
	return n;
}

__attribute__((constructor)) static void malloc_fail_init(void)
{
	const char *f = getenv("TOKSHIM_MALLOC_FAIL");

	fail_at = f ? strtoul(f, NULL, 10) : 0;
	__atomic_store_n(&ranges_state, 1, __ATOMIC_RELAXED);
	dl_iterate_phdr(range_of_lib, NULL);
	__atomic_store_n(&ranges_state, 2, __ATOMIC_RELEASE);
}

__attribute__((destructor)) static void malloc_fail_report(void)
{
	const char *path = getenv("TOKSHIM_MALLOC_COUNT");
	char buf[32];
	int fd, n;

	if (path == NULL || *path == '\0')
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof buf, "%lu\n", __atomic_load_n(&calls, __ATOMIC_RELAXED));
	if (write(fd, buf, (size_t)n) != n)
		n = -1;
	close(fd);
}
