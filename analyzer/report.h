/*
 * report.h - usage summed by agent, model and provider, and its two renderings: the JSON
 * that downstream code consumes (DESIGN.md: totalTokens, totalCost, byAgent, byModel,
 * byProvider, fallbackUsage, locality) and the table for people.
 *
 * Costs are summed as integer pico-USD. A record whose model has no price adds its tokens to
 * unpricedTokens and nothing to the cost: an unknown price is never counted as $0, and a group
 * with no priced request at all shows its cost as null ("unpriced" in the table).
 */
#ifndef TOKSHIM_REPORT_H
#define TOKSHIM_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/record.h"

/* Distinct names kept per grouping; past it, records are summed under "(other)" so a store
 * with a runaway number of agent names cannot exhaust memory. */
#define REPORT_MAX_NAMES 100000

struct report_row {
	int64_t requests;
	int64_t failed;  /* an error, no response (status 0), or a status of 400 or more */
	int64_t input, output, cache_read, cache_write, reasoning, total;
	int64_t cost_pusd;         /* priced records only */
	int64_t unpriced_requests; /* records whose model has no price */
	int64_t unpriced_tokens;
};

struct report_entry {
	char *name; /* owned */
	struct report_row row;
};

struct report_group {
	struct report_entry *v;
	size_t n, cap;
	uint32_t *index; /* open addressing: entry index + 1, 0 = empty */
	size_t index_cap;
};

struct report {
	struct report_row total, local, cloud;
	struct report_group by_agent, by_model, by_provider;
};

void report_init(struct report *r);
void report_release(struct report *r);

/*
 * Adds one record: priced says whether its cost is known, pusd is that cost. Returns 0, or -1
 * when out of memory (the record is then counted in the totals but not in every group).
 */
int report_add(struct report *r, const struct record *rec, int priced, int64_t pusd);

/* Orders every group by cost, then tokens (both descending), then name. */
void report_sort(struct report *r);

/* The report as pretty-printed JSON (the downstream shape; see DESIGN.md). */
void report_write_json(const struct report *r, FILE *f);

/* The report for people: totals, then a table per grouping; bold titles when colour is set. */
void report_write_table(const struct report *r, FILE *f, int colour);

#endif
