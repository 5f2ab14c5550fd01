/*
 * sink.c - the shim's end of the store: opens it on the first record (a process that never
 * calls an LLM never touches it), appends each finished exchange, and counts what it drops.
 *
 * Fail open: when the store cannot be opened or written, the record is dropped and counted,
 * and the agent never hears of it. Drops that could not be written to the store yet are kept
 * in memory and written with the next record that gets through.
 *
 * After fork() the child must not use the parent's LMDB environment (lmdb.h), nor close it
 * (closing would clear reader slots that belong to the parent): the child forgets it and
 * opens its own.
 */
#include "shim/shim.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "budget/budget.h"
#include "store/store.h"

/* Retry a store that would not open at most this often. */
#define REOPEN_INTERVAL_NS 1000000000LL

/* The store's own drops, then the capture's reasons (capture_drop_names) after them. */
enum drop_reason { DROP_UNAVAILABLE, DROP_FULL, DROP_WRITE, DROP_CAPTURE, DROP_N = DROP_CAPTURE +
									       CAPTURE_DROP_N };

static const char *const store_drop_names[DROP_CAPTURE] = {
	"dropped.store_unavailable",
	"dropped.store_full",
	"dropped.store_error",
};

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store *sink_store;
static int64_t sink_retry_ns;
static int64_t pending[DROP_N]; /* drops not yet written to the store */

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* TOKSHIM_DB, else $XDG_DATA_HOME/tokshim/usage.mdb, else ~/.local/share/tokshim/usage.mdb. */
static int store_path(char *buf, size_t cap)
{
	const char *db = getenv("TOKSHIM_DB");
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	int n;

	if (db != NULL && db[0] != '\0')
		n = snprintf(buf, cap, "%s", db);
	else if (xdg != NULL && xdg[0] != '\0')
		n = snprintf(buf, cap, "%s/tokshim/usage.mdb", xdg);
	else if (home != NULL && home[0] != '\0')
		n = snprintf(buf, cap, "%s/.local/share/tokshim/usage.mdb", home);
	else
		return -1;
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static void sink_open(void)
{
	char path[4096];
	const char *max = getenv("TOKSHIM_DB_MAX_MB");
	uint64_t map = max ? strtoull(max, NULL, 10) << 20 : 0;
	int64_t now = mono_ns();
	int r;

	if (sink_store != NULL || now < sink_retry_ns)
		return;
	if (store_path(path, sizeof(path)) != 0) {
		shim_log("no store path: set TOKSHIM_DB or HOME");
		sink_retry_ns = now + REOPEN_INTERVAL_NS;
		return;
	}
	r = store_open(&sink_store, path, STORE_CREATE, map);
	/* Memory that could not be had a moment ago often can now; the next chance to open may
	 * not come before the process ends, and the drop could then be counted nowhere. */
	if (r == STORE_ENOMEM)
		r = store_open(&sink_store, path, STORE_CREATE, map);
	if (r != 0) {
		shim_log("cannot open store '%s': %s", path, store_strerror(r));
		sink_store = NULL;
		sink_retry_ns = now + REOPEN_INTERVAL_NS;
	}
}

/* Builds the counter deltas for the drops still pending; returns how many. */
static size_t pending_deltas(struct store_counter_delta *d)
{
	size_t n = 0;
	int i;

	for (i = 0; i < DROP_N; i++) {
		if (pending[i] == 0)
			continue;
		d[n].name = i < DROP_CAPTURE ? store_drop_names[i]
					     : capture_drop_names[i - DROP_CAPTURE];
		d[n].delta = pending[i];
		n++;
	}
	return n;
}

static void pending_clear(void)
{
	memset(pending, 0, sizeof(pending));
}

/* store_append, settling plan's budgets in the same transaction when there is a plan. */
static int sink_append(struct record *rec, const struct payload *pl,
		       const struct store_counter_delta *d, size_t nd, struct budget_plan *plan,
		       uint64_t resv, size_t block)
{
	if (plan == NULL)
		return store_append(sink_store, rec, pl, d, nd);
	return store_append_budget(sink_store, rec, pl, d, nd, plan->sb, plan->n, resv, block);
}

void shim_sink_emit(void *ctx, struct record *rec, const struct payload *pl)
{
	(void)ctx;
	if (__atomic_load_n(&shim_gate_on, __ATOMIC_RELAXED))
		shim_gate_emit(rec, pl);
	else
		shim_sink_emit_budget(rec, pl, NULL, 0, 0);
}

void shim_sink_emit_budget(struct record *rec, const struct payload *pl,
			   struct budget_plan *plan, uint64_t resv, size_t block)
{
	struct store_counter_delta d[DROP_N];
	size_t nd;
	int r;

	pthread_mutex_lock(&sink_lock);
	sink_open();
	if (sink_store == NULL) {
		pending[DROP_UNAVAILABLE]++;
		goto unlock;
	}
	nd = pending_deltas(d);
	r = sink_append(rec, pl, d, nd, plan, resv, block);
	if (r == STORE_EFULL && pl != NULL) {
		/* The record is worth more than its payload: keep it where the payload won't fit. */
		shim_log("payload dropped: %s", store_strerror(r));
		rec->flags &= ~(uint32_t)RECORD_PAYLOAD;
		r = sink_append(rec, NULL, d, nd, plan, resv, block);
	}
	if (r == 0) {
		pending_clear();
		goto unlock;
	}
	shim_log("record dropped: %s", store_strerror(r));
	pending[r == STORE_EFULL ? DROP_FULL : DROP_WRITE]++;
	/* A full map may still have room for the counters alone. */
	nd = pending_deltas(d);
	if (store_counters_add(sink_store, d, nd) == 0)
		pending_clear();
unlock:
	pthread_mutex_unlock(&sink_lock);
}

int shim_sink_reserve(struct budget_plan *plan, int64_t now_ns, uint64_t *resv, size_t *refused)
{
	int r = STORE_EIO;

	pthread_mutex_lock(&sink_lock);
	sink_open();
	if (sink_store != NULL)
		r = store_budget_reserve(sink_store, plan->sb, plan->n, now_ns, resv, refused);
	pthread_mutex_unlock(&sink_lock);
	return r;
}

void shim_sink_release(uint64_t resv)
{
	pthread_mutex_lock(&sink_lock);
	if (sink_store != NULL)
		store_budget_release(sink_store, resv);
	pthread_mutex_unlock(&sink_lock);
}

void shim_sink_drop(enum capture_drop reason)
{
	pthread_mutex_lock(&sink_lock);
	pending[DROP_CAPTURE + reason]++;
	shim_log("capture gave up: %s", capture_drop_names[reason]);
	pthread_mutex_unlock(&sink_lock);
}

/*
 * Drops that no later record carried to the store (a connection given up on as the agent's
 * last exchange) are written as the process exits. trylock: a thread of the agent may still
 * be inside the sink, and exit must never wait for it.
 */
__attribute__((destructor)) static void sink_flush_at_exit(void)
{
	struct store_counter_delta d[DROP_N];
	size_t nd;

	if (pthread_mutex_trylock(&sink_lock) != 0)
		return;
	shim_busy = 1;
	nd = pending_deltas(d);
	if (nd > 0 && pending[DROP_UNAVAILABLE] == 0)
		sink_open();
	if (nd > 0 && sink_store != NULL && store_counters_add(sink_store, d, nd) == 0)
		pending_clear();
	shim_busy = 0;
	pthread_mutex_unlock(&sink_lock);
}

void shim_sink_atfork_child(void)
{
	pthread_mutex_init(&sink_lock, NULL);
	sink_store = NULL; /* the parent's: neither used nor closed here */
	sink_retry_ns = 0;
	pending_clear();   /* the parent counts its own drops */
}
