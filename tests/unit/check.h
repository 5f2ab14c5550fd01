/*
 * check.h - the unit tests' assertions. Each test binary is a main() that runs its cases with
 * RUN(fn) and ends with CHECK_DONE(), which prints "N passed, N failed" for tests/run.sh to add
 * up and exits non-zero when any check failed. A check that fails prints where and what.
 */
#ifndef TOKSHIM_CHECK_H
#define TOKSHIM_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_case_failed;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                  \
			check_case_failed = 1;                                           \
		}                                                                        \
	} while (0)

#define CHECK_INT(got, want)                                                                \
	do {                                                                                \
		long long got_ = (long long)(got), want_ = (long long)(want);               \
		if (got_ != want_) {                                                        \
			fprintf(stderr, "%s:%d: %s is %lld, want %lld\n", __FILE__, __LINE__, \
				#got, got_, want_);                                         \
			check_case_failed = 1;                                              \
		}                                                                           \
	} while (0)

#define CHECK_STR(got, want)                                                                \
	do {                                                                                \
		const char *got_ = (got), *want_ = (want);                                  \
		if (got_ == NULL || strcmp(got_, want_) != 0) {                             \
			fprintf(stderr, "%s:%d: %s is \"%s\", want \"%s\"\n", __FILE__,     \
				__LINE__, #got, got_ ? got_ : "(null)", want_);             \
			check_case_failed = 1;                                              \
		}                                                                           \
	} while (0)

/* Compares a (pointer, length) string with a C string. */
#define CHECK_MEM(p, n, want)                                                               \
	do {                                                                                \
		const char *p_ = (const char *)(p), *want_ = (want);                        \
		size_t n_ = (n);                                                            \
		if (n_ != strlen(want_) || (n_ && memcmp(p_, want_, n_) != 0)) {            \
			fprintf(stderr, "%s:%d: %s is \"%.*s\", want \"%s\"\n", __FILE__,   \
				__LINE__, #p, (int)n_, p_ ? p_ : "", want_);                \
			check_case_failed = 1;                                              \
		}                                                                           \
	} while (0)

#define RUN(fn)                                                                   \
	do {                                                                      \
		check_case_failed = 0;                                            \
		fn();                                                             \
		if (check_case_failed) {                                          \
			check_failed++;                                           \
			fprintf(stderr, "FAIL %s\n", #fn);                        \
		} else {                                                          \
			check_passed++;                                           \
		}                                                                 \
	} while (0)

#define CHECK_DONE()                                                          \
	do {                                                                  \
		printf("%d passed, %d failed\n", check_passed, check_failed); \
		return check_failed ? 1 : 0;                                  \
	} while (0)

/* Reads a whole file into a malloc'd buffer (NUL-terminated); NULL when it cannot. */
#include <stdlib.h>
static inline char *check_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto close;
	buf = malloc((size_t)n + 1);
	if (buf == NULL)
		goto close;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto close;
	}
	buf[n] = '\0';
	if (len)
		*len = (size_t)n;
close:
	fclose(f);
	return buf;
}

/* The folder of the recorded provider bodies: $TOKSHIM_FIXTURES, else ../shared/fixtures. */
static inline const char *check_fixtures_dir(void)
{
	const char *d = getenv("TOKSHIM_FIXTURES");
	return d && *d ? d : "../shared/fixtures";
}

#endif
