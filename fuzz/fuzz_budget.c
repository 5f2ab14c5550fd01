/*
 * fuzz_budget.c - the budget file parser (budget/budget.h budget_parse), as the shim and
 * `tokshim budget` meet a user's file, and the request-body reader behind a call's estimate
 * (budget_max_output).
 *
 * Input: the text of a budget file (also read as a request body). When it parses, every budget
 * holds NUL-terminated names inside their arrays and a window of its kind is computed at the
 * epoch, now, and in the year 2191 (a month past it still fits in int64 nanoseconds): the
 * window contains the time and its key is NUL-terminated.
 */
#include <string.h>

#include "budget/budget.h"
#include "fuzz/fuzz.h"

static void check_window(enum budget_window w, int64_t now_ns)
{
	struct budget_span span;

	budget_window_of(w, now_ns, &span);
	FUZZ_CHECK(memchr(span.key, '\0', sizeof span.key) != NULL);
	FUZZ_CHECK(span.since_ns <= now_ns && now_ns < span.until_ns);
	FUZZ_CHECK(budget_retry_after(&span, now_ns) >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct budget_set *s = NULL;
	char err[256];
	size_t i;

	(void)budget_max_output((const char *)data, size);
	if (budget_parse(&s, (const char *)data, size, err, sizeof err) != 0) {
		FUZZ_CHECK(s == NULL);
		FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
		goto done;
	}
	FUZZ_CHECK(s->n <= BUDGET_MAX);
	for (i = 0; i < s->n; i++) {
		const struct budget *b = &s->b[i];

		FUZZ_CHECK(memchr(b->name, '\0', sizeof b->name) != NULL);
		FUZZ_CHECK(memchr(b->match, '\0', sizeof b->match) != NULL);
		FUZZ_CHECK(b->warn_at > 0 && b->warn_at <= 1);
		check_window(b->window, 0);
		check_window(b->window, 1764000000000000000LL);
		check_window(b->window, 7000000000000000000LL); /* year 2191 */
	}
	budget_set_free(s);
done:
	return 0;
}
