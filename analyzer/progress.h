/*
 * progress.h - the progress line a long scan prints on stderr: "tokshim: scanning… 1.2M
 * records". Only when stderr is a terminal and the scan has run longer than a second, so quick
 * commands and pipes never see it; the line is erased when the scan ends. What is counted is
 * records unless the caller names another unit after progress_init ("entries" for verify).
 */
#ifndef TOKSHIM_PROGRESS_H
#define TOKSHIM_PROGRESS_H

#include <stdint.h>

struct progress {
	int64_t start_ns;
	uint64_t count, next_check;
	int shown, enabled;
	const char *unit; /* static; "records" from progress_init */
};

void progress_init(struct progress *p);
/* One more record; looks at the clock once every 64k calls, so it is cheap per record. */
void progress_tick(struct progress *p);
/* The scan has read count records so far (a scan whose threads count together); as cheap as
 * progress_tick. */
void progress_update(struct progress *p, uint64_t count);
/* Erases the line when one was shown. */
void progress_done(struct progress *p);

#endif
