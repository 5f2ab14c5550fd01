/*
 * alert_event.c - writes one alert event into a store through store_event_append, for the
 * alerts tests (events otherwise come from the shim's budget gate or `tokshim alerts watch`).
 *
 *   build/tests/alert_event STORE MEMBERS [ONCE_KEY]
 *
 * MEMBERS are the JSON object's members after "id" ("\"kind\":\"budget_warning\",…"). Prints
 * the new event's id (0 when ONCE_KEY had already fired).
 */
#include <inttypes.h>
#include <stdio.h>

#include "store/store.h"

int main(int argc, char **argv)
{
	struct store *st;
	uint64_t id = 0;
	int rc;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: alert_event STORE MEMBERS [ONCE_KEY]\n");
		return 2;
	}
	rc = store_open(&st, argv[1], STORE_CREATE, 0);
	if (rc == 0)
		rc = store_event_append(st, argc == 4 ? argv[3] : NULL, argv[2], &id);
	if (rc != 0)
		fprintf(stderr, "alert_event: '%s': %s\n", argv[1], store_strerror(rc));
	else
		printf("%" PRIu64 "\n", id);
	store_close(st);
	return rc != 0;
}
