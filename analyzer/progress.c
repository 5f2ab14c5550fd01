/*
 * progress.c - the scan progress line on stderr (see progress.h).
 */
#include "analyzer/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "analyzer/format.h"

#define CHECK_EVERY 65536

static int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void progress_init(struct progress *p)
{
	p->enabled = isatty(STDERR_FILENO);
	p->start_ns = p->enabled ? monotonic_ns() : 0;
	p->count = 0;
	p->next_check = CHECK_EVERY;
	p->shown = 0;
	p->unit = "records";
}

void progress_tick(struct progress *p)
{
	progress_update(p, p->count + 1);
}

void progress_update(struct progress *p, uint64_t count)
{
	char n[FMT_HUMAN_MAX];

	p->count = count;
	if (p->count >= p->next_check && p->enabled) {
		p->next_check += CHECK_EVERY;
		if (monotonic_ns() - p->start_ns >= 1000000000) {
			fmt_count_human(n, (int64_t)p->count);
			fprintf(stderr, "\rtokshim: scanning… %s %s\033[K", n, p->unit);
			p->shown = 1;
		}
	}
}

void progress_done(struct progress *p)
{
	if (p->shown)
		fputs("\r\033[K", stderr);
	p->shown = 0;
}
