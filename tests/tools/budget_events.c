/*
 * budget_events.c - prints a store's alert events, one JSON object per line, for the budget
 * tests (the events' reader for people is `tokshim alerts`, which delivers them).
 *
 *   build/tests/budget_events STORE
 */
#include <stdio.h>

#include "store/store.h"

static int print_event(uint64_t id, const char *json, size_t len, void *arg)
{
	(void)id;
	(void)arg;
	fwrite(json, 1, len, stdout);
	putchar('\n');
	return 0;
}

int main(int argc, char **argv)
{
	struct store *st;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: budget_events STORE\n");
		return 2;
	}
	rc = store_open(&st, argv[1], STORE_READONLY, 0);
	if (rc == 0)
		rc = store_events_scan(st, print_event, NULL);
	if (rc != 0)
		fprintf(stderr, "budget_events: '%s': %s\n", argv[1], store_strerror(rc));
	store_close(st);
	return rc != 0;
}
