/*
 * fallback.c - the fallback detector (see fallback.h for the rules).
 *
 * It runs inside every report's single pass, so the common case costs little: a call whose
 * answered model is byte-equal to the requested one and whose session has no failure waiting
 * costs one hash of the session name and one probe. Model names are normalised only when they
 * differ byte-wise or a failure is waiting, and are interned (few distinct models exist) so a
 * waiting failure is 24 bytes whatever the names.
 */
#include "analyzer/fallback.h"

#include <stdlib.h>
#include <string.h>

#include "providers/pricing.h"

#define OTHER_NAME "(other)"

void fallback_init(struct fallback *fb, int64_t window_ns)
{
	memset(fb, 0, sizeof *fb);
	fb->window_ns = window_ns;
	u64map_init(&fb->pending, sizeof(struct fallback_pending), FALLBACK_MAX_PENDING);
	u64map_init(&fb->name_idx, sizeof(uint32_t), FALLBACK_MAX_NAMES);
	u64map_init(&fb->name_raw, sizeof(uint32_t), FALLBACK_MAX_RAW);
}

void fallback_release(struct fallback *fb)
{
	size_t i;

	for (i = 0; i < fb->nnames; i++) {
		free(fb->names[i].provider);
		free(fb->names[i].model);
	}
	free(fb->names);
	free(fb->pairs);
	u64map_release(&fb->pending);
	u64map_release(&fb->name_idx);
	u64map_release(&fb->name_raw);
	memset(fb, 0, sizeof *fb);
}

int fallback_call_failed(const struct record *rec)
{
	return rec->error.n > 0 || rec->status == 0 || rec->status >= 400 ||
	       (rec->flags & RECORD_TRUNCATED) != 0;
}

/* Adds a name to the table; returns its index, or UINT32_MAX when out of memory. */
static uint32_t name_push(struct fallback *fb, const char *provider, size_t plen,
			  const char *model, size_t mlen)
{
	struct fallback_name *grown;
	uint32_t idx = UINT32_MAX;
	size_t cap;

	if (fb->nnames == fb->names_cap) {
		cap = fb->names_cap ? fb->names_cap * 2 : 16;
		grown = realloc(fb->names, cap * sizeof *grown);
		if (grown == NULL)
			goto out;
		fb->names = grown;
		fb->names_cap = cap;
	}
	fb->names[fb->nnames].provider = strndup(provider, plen);
	fb->names[fb->nnames].model = strndup(model, mlen);
	if (fb->names[fb->nnames].provider == NULL || fb->names[fb->nnames].model == NULL) {
		free(fb->names[fb->nnames].provider);
		free(fb->names[fb->nnames].model);
		goto out;
	}
	idx = (uint32_t)fb->nnames++;
out:
	return idx;
}

/*
 * The index of (provider, normalised model); the "(other)" name past FALLBACK_MAX_NAMES.
 * Normalising a name costs thousands of instructions and a report feeds the detector every
 * failed call and the call after it (about 6% of the records in figure 6 of
 * docs/PERFORMANCE.md): the index of each spelling met is remembered in name_raw, so a name
 * is normalised once. Like name_idx, name_raw identifies names by a 64-bit hash.
 */
static uint32_t name_index(struct fallback *fb, const struct record_str *provider,
			   const struct record_str *model)
{
	char norm[PRICING_NAME_MAX];
	uint64_t raw = u64map_hash(model->p, model->n, u64map_hash(provider->p, provider->n, 5));
	uint64_t h;
	uint32_t *slot = u64map_get(&fb->name_raw, raw), idx = UINT32_MAX;
	size_t n;
	int created;

	if (slot != NULL) {
		idx = *slot - 1;
		goto out;
	}
	n = pricing_normalise(model->p, model->n, norm);
	h = u64map_hash(norm, n, u64map_hash(provider->p, provider->n, 0));
	if (n == 0 && model->n > 0) {
		/* too long to normalise: keep a cut copy, compared as it is */
		n = model->n < PRICING_NAME_MAX - 1 ? model->n : PRICING_NAME_MAX - 1;
		memcpy(norm, model->p, n);
		norm[n] = '\0';
		h = u64map_hash(norm, n, u64map_hash(provider->p, provider->n, 0));
	}
	slot = u64map_put(&fb->name_idx, h, &created);
	if (slot != NULL && !created) {
		idx = *slot - 1;
	} else if (slot != NULL) {
		idx = name_push(fb, provider->p, provider->n, norm, n);
		if (idx == UINT32_MAX)
			u64map_del(&fb->name_idx, h);
		else
			*slot = idx + 1;
	}
	/* Only a name's own index is remembered: "(other)" may be a shortage of memory. A full
	 * name_raw only means normalising again. */
	slot = idx != UINT32_MAX ? u64map_put(&fb->name_raw, raw, &created) : NULL;
	if (slot != NULL)
		*slot = idx + 1;
	if (idx == UINT32_MAX) {
		/* the table is full (or memory is short): one shared "(other)" name */
		h = u64map_hash(OTHER_NAME, strlen(OTHER_NAME), 1);
		slot = u64map_get(&fb->name_idx, h);
		if (slot != NULL) {
			idx = *slot - 1;
		} else {
			idx = name_push(fb, "", 0, OTHER_NAME, strlen(OTHER_NAME));
			fb->name_idx.max_entries++;
			slot = idx == UINT32_MAX ? NULL : u64map_put(&fb->name_idx, h, &created);
			if (slot != NULL)
				*slot = idx + 1;
		}
	}
out:
	return idx;
}

static const struct record_str *provider_of(const struct record *rec)
{
	return rec->provider.n ? &rec->provider : &rec->host;
}

static const struct record_str *requested_of(const struct record *rec)
{
	return rec->model_requested.n ? &rec->model_requested : &rec->model;
}

static const struct record_str *answered_of(const struct record *rec)
{
	return rec->model.n ? &rec->model : &rec->model_requested;
}

/* (a): answered, both names known, and different once normalised. Normalising costs about a
 * microsecond per name, more than the rest of a report's work on a record, and a store holds
 * few distinct (asked, answered) pairs: the verdict is remembered per pair in a small
 * direct-mapped cache keyed by the pair's hash. */
static int routed(struct fallback *fb, const struct record *rec)
{
	char a[PRICING_NAME_MAX], b[PRICING_NAME_MAX];
	uint64_t h;
	size_t slot;
	int ret = 0;

	if (fallback_call_failed(rec) || rec->model.n == 0 || rec->model_requested.n == 0)
		goto out;
	if (rec->model.n == rec->model_requested.n &&
	    memcmp(rec->model.p, rec->model_requested.p, rec->model.n) == 0)
		goto out;
	h = u64map_hash(rec->model.p, rec->model.n,
			u64map_hash(rec->model_requested.p, rec->model_requested.n, 3));
	h |= 1; /* 0 marks an empty slot */
	slot = h % FALLBACK_ROUTED_CACHE;
	if (fb->routed_key[slot] == h) {
		ret = fb->routed_verdict[slot];
		goto out;
	}
	pricing_normalise(rec->model.p, rec->model.n, a);
	pricing_normalise(rec->model_requested.p, rec->model_requested.n, b);
	ret = strcmp(a, b) != 0;
	fb->routed_key[slot] = h;
	fb->routed_verdict[slot] = (uint8_t)ret;
out:
	return ret;
}

static int pair_cmp(const void *x, const void *y)
{
	const struct fallback_pair *a = x, *b = y;
	int c = 0;

	if (a->count != b->count)
		c = a->count > b->count ? -1 : 1;
	else if (a->tokens != b->tokens)
		c = a->tokens > b->tokens ? -1 : 1;
	else if (a->primary != b->primary)
		c = a->primary < b->primary ? -1 : 1;
	else if (a->fallback != b->fallback)
		c = a->fallback < b->fallback ? -1 : 1;
	return c;
}

uint64_t fallback_of(const struct fallback_verdict *v)
{
	return v->kind == FALLBACK_ROUTED || v->kind == FALLBACK_AFTER_FAILURE ? v->of : 0;
}

void fallback_sort(struct fallback *fb)
{
	if (fb->npairs > 1)
		qsort(fb->pairs, fb->npairs, sizeof *fb->pairs, pair_cmp);
}

/* The pair primary → fallback, created when new; past FALLBACK_MAX_PAIRS the last pair
 * collects the rest. NULL when out of memory. */
static struct fallback_pair *pair_of(struct fallback *fb, uint32_t primary, uint32_t fallback)
{
	struct fallback_pair *grown, *p = NULL;
	size_t i, cap;

	for (i = 0; i < fb->npairs && p == NULL; i++)
		if (fb->pairs[i].primary == primary && fb->pairs[i].fallback == fallback)
			p = &fb->pairs[i];
	if (p != NULL)
		goto out;
	if (fb->npairs == FALLBACK_MAX_PAIRS) {
		p = &fb->pairs[fb->npairs - 1];
		goto out;
	}
	if (fb->npairs == fb->pairs_cap) {
		cap = fb->pairs_cap ? fb->pairs_cap * 2 : 8;
		grown = realloc(fb->pairs, cap * sizeof *grown);
		if (grown == NULL)
			goto out;
		fb->pairs = grown;
		fb->pairs_cap = cap;
	}
	p = &fb->pairs[fb->npairs++];
	memset(p, 0, sizeof *p);
	p->primary = primary;
	p->fallback = fallback;
out:
	return p;
}

/* Counts rec as a fallback of primary, naming the pair in *v. Returns 0 or -1 (out of
 * memory). */
static int count_fallback(struct fallback *fb, const struct record *rec, size_t db,
			  uint32_t primary, int routed, int priced, int64_t pusd,
			  struct fallback_verdict *v)
{
	uint32_t to = name_index(fb, provider_of(rec), answered_of(rec));
	int64_t tokens = record_total_tokens(rec);
	struct fallback_pair *p = to == UINT32_MAX || primary == UINT32_MAX
					  ? NULL : pair_of(fb, primary, to);
	int ret = 0;

	v->primary = primary;
	v->fallback = to;

	fb->fallbacks++;
	fb->fallback_tokens += tokens;
	if (priced)
		fb->fallback_cost_pusd += pusd;
	else
		fb->fallback_unpriced++;
	if (p == NULL) {
		ret = -1;
		goto out;
	}
	p->count++;
	p->routed += routed;
	p->tokens += tokens;
	if (priced)
		p->cost_pusd += pusd;
	else
		p->unpriced++;
	if (p->nids < FALLBACK_MAX_IDS) {
		p->ids[p->nids].db = (uint32_t)db;
		p->ids[p->nids].id = rec->id;
		p->nids++;
	}
out:
	return ret;
}

/* Drops waiting failures that ended more than the window before now_ns. */
static void expire(struct fallback *fb, int64_t now_ns)
{
	struct u64map kept;
	struct fallback_pending *p, *q;
	uint64_t key;
	size_t i;
	int created;

	u64map_init(&kept, sizeof *p, FALLBACK_MAX_PENDING);
	for (i = 0; i < fb->pending.cap; i++) {
		p = u64map_slot(&fb->pending, i, &key);
		if (p == NULL || now_ns - p->end_ns > fb->window_ns)
			continue;
		q = u64map_put(&kept, key, &created);
		if (q == NULL)
			goto nomem;
		*q = *p;
	}
	u64map_release(&fb->pending);
	fb->pending = kept;
	goto out;
nomem:
	u64map_release(&kept);
out:
	return;
}

uint64_t fallback_session_key(const struct record *rec, size_t db)
{
	return rec->session.n ? u64map_hash(rec->session.p, rec->session.n, db * 2)
			      : u64map_hash(&rec->pid, sizeof rec->pid, db * 2 + 1);
}

int fallback_feed(struct fallback *fb, const struct record *rec, size_t db, int priced,
		  int64_t pusd, struct fallback_verdict *v)
{
	uint64_t key = fallback_session_key(rec, db);
	struct fallback_pending *p = u64map_get(&fb->pending, key);
	uint32_t asked = UINT32_MAX;
	int created, ret = 0;

	v->kind = FALLBACK_NONE;
	v->of = 0;
	v->primary = v->fallback = UINT32_MAX;
	fb->calls++;
	if (priced)
		fb->cost_pusd += pusd;
	if (p != NULL && rec->ts_ns - p->end_ns <= fb->window_ns) {
		asked = name_index(fb, provider_of(rec), requested_of(rec));
		v->of = p->id;
		if (asked == p->name) {
			v->kind = FALLBACK_RETRY;
			fb->retries++;
		} else {
			v->kind = FALLBACK_AFTER_FAILURE;
			fb->after_failure++;
			ret = count_fallback(fb, rec, db, p->name, 0, priced, pusd, v);
		}
	} else if (routed(fb, rec)) {
		v->kind = FALLBACK_ROUTED;
		v->of = rec->id;
		fb->routed++;
		ret = count_fallback(fb, rec, db,
				     name_index(fb, provider_of(rec), &rec->model_requested), 1,
				     priced, pusd, v);
	}
	if (!fallback_call_failed(rec)) {
		if (p != NULL)
			u64map_del(&fb->pending, key);
		goto out;
	}
	if (asked == UINT32_MAX)
		asked = name_index(fb, provider_of(rec), requested_of(rec));
	p = u64map_put(&fb->pending, key, &created);
	if (p == NULL) {
		expire(fb, rec->ts_ns);
		p = u64map_put(&fb->pending, key, &created);
	}
	if (p == NULL) {
		fb->untracked++;
		goto out;
	}
	p->end_ns = rec->ts_ns + rec->latency_us * 1000;
	p->id = rec->id;
	p->name = asked;
out:
	if (ret != 0)
		fb->nomem = 1;
	return ret;
}
