/*
 * alerts.h - the library behind `tokshim alerts` (docs/alerts.md): the alerts file, the
 * delivery of a store's alert events to its channels, and the rules evaluated outside the
 * agent (failure rate, anomaly flags) that write new events to the store.
 *
 * Events are only ever written to the store (by the shim, or by alerts_evaluate); delivery
 * reads them in id order. Each channel's progress is the counter "alerts:acked:{channel}" in
 * the store: the id of the last event the channel acknowledged (a 2xx reply, an SMTP success,
 * a line written). It is raised right after each acknowledgement, so a watcher killed at any
 * moment resends at most the one event in flight, and never an acknowledged one. A channel
 * whose delivery fails (after its retries) stops there for this pass, so its progress always
 * means "everything up to here is delivered".
 */
#ifndef TOKSHIM_ALERTS_H
#define TOKSHIM_ALERTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "providers/pricing.h"
#include "store/store.h"

#define ALERTS_MAX_CHANNELS 32
#define ALERTS_MAX_TO 16         /* email recipients per channel */
#define ALERTS_BATCH_MAX 1000    /* events delivered per channel in one pass */
#define ALERTS_FILE_MAX (1 << 20) /* the alerts file's size cap */

enum alerts_type { ALERTS_SLACK, ALERTS_WEBHOOK, ALERTS_EMAIL, ALERTS_LOG, ALERTS_SYSLOG };

/* The event kinds, as bits of alerts_channel.kinds. */
enum alerts_kind {
	ALERTS_BUDGET_WARNING = 1u << 0,
	ALERTS_BUDGET_BLOCK = 1u << 1,
	ALERTS_FAILURE_RATE = 1u << 2,
	ALERTS_ANOMALY = 1u << 3,
};

/* One channel; every string is owned by the config. */
struct alerts_channel {
	char *name;
	enum alerts_type type;
	char *url;     /* slack, webhook: http(s)://…; email: smtp(s)://host:port */
	char *from;    /* email */
	char *to[ALERTS_MAX_TO];
	size_t nto;
	char *subject; /* email: "{kind}" and "{summary}" are replaced */
	char *path;    /* log */
	unsigned kinds; /* routed kinds (rules) */
};

struct alerts_config {
	struct alerts_channel ch[ALERTS_MAX_CHANNELS];
	size_t nch;
	int retries;          /* further attempts after a failed one: 3 */
	int64_t backoff_ns;   /* wait before the first retry, doubled each time: 500 ms */
	int64_t timeout_ns;   /* one attempt: 10 s */
	int failure_rate;     /* the failure_rate rule is on */
	int64_t fr_window_ns; /* 5 min */
	double fr_rate;       /* failed share: 0.5 */
	int64_t fr_min_calls; /* calls in the window: 10 */
	int anomaly;          /* the anomaly rule is on */
	int anomaly_severity; /* enum anomaly_severity: warning */
	int64_t anomaly_lookback_ns; /* records scored each time: 24 h */
};

/*
 * Reads the alerts file at path into *c (released with alerts_config_release, also after a
 * failure). Returns 0, or -1 with err naming the file and the field ("'a.json': channels[1]
 * .url: missing").
 */
int alerts_config_load(struct alerts_config *c, const char *path, char *err, size_t errlen);
void alerts_config_release(struct alerts_config *c);

/* What alerts_deliver did. */
struct alerts_result {
	uint64_t sent;   /* deliveries acknowledged (or, dry run, that would be made) */
	uint64_t failed; /* channels that stopped on an event they could not deliver */
};

/*
 * Delivers each channel's pending events of st (those after its progress counter and routed
 * to it) in id order, retrying with back-off; one line per delivery to out, failures to err
 * (both may be the same). dry_run: prints each message that would be sent and writes
 * nothing. Returns 0 (even when some channel failed: see *res) or a STORE_E* code.
 */
int alerts_deliver(struct store *st, const struct alerts_config *c, int dry_run, FILE *out,
		   FILE *err, struct alerts_result *res);

/*
 * Evaluates the failure-rate and anomaly rules over st's records up to now_ns and writes an
 * event for each that fires (once per rule and window, or per anomaly flag: see
 * store_event_append's once_key). *written counts them. Returns 0 or a STORE_E* code.
 */
int alerts_evaluate(struct store *st, const struct alerts_config *c, const struct pricing *p,
		    int64_t now_ns, uint64_t *written);

#endif
