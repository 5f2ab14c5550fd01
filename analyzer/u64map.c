/*
 * u64map.c - capped open-addressing hash map (see u64map.h).
 *
 * Linear probing over slots kept at most half full: the maps here are probed once or twice per
 * record on scans of millions of records, so short probe runs matter more than memory.
 */
#include "analyzer/u64map.h"

#include <stdlib.h>
#include <string.h>

#define SLOT_KEY(m, i) ((uint64_t *)((m)->slots + (i) * (m)->slot_size))
#define SLOT_USED(m, i) ((m)->slots[(i) * (m)->slot_size + sizeof(uint64_t)])
#define SLOT_VALUE(m, i) ((void *)((m)->slots + (i) * (m)->slot_size + 2 * sizeof(uint64_t)))

void u64map_init(struct u64map *m, size_t value_size, size_t max_entries)
{
	memset(m, 0, sizeof *m);
	m->value_size = value_size;
	m->max_entries = max_entries;
	/* key, used flag padded to 8, value rounded up to 8 so keys stay aligned */
	m->slot_size = 2 * sizeof(uint64_t) + ((value_size + 7) & ~(size_t)7);
}

void u64map_release(struct u64map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = 0;
	m->n = 0;
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

uint64_t u64map_hash(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *s = p;
	uint64_t h = 14695981039346656037ull ^ mix(seed + 1);
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	return mix(h);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find(const struct u64map *m, uint64_t key)
{
	size_t i = mix(key) & (m->cap - 1);

	while (SLOT_USED(m, i) && *SLOT_KEY(m, i) != key)
		i = (i + 1) & (m->cap - 1);
	return i;
}

void *u64map_get(const struct u64map *m, uint64_t key)
{
	void *v = NULL;
	size_t i;

	if (m->cap == 0)
		goto out;
	i = find(m, key);
	if (SLOT_USED(m, i))
		v = SLOT_VALUE(m, i);
out:
	return v;
}

/* Moves every entry into a table of twice the size. Returns 0 or -1. */
static int grow(struct u64map *m)
{
	struct u64map bigger = *m;
	size_t i, j;
	int ret = -1;

	bigger.cap = m->cap ? m->cap * 2 : 64;
	bigger.slots = calloc(bigger.cap, m->slot_size);
	if (bigger.slots == NULL)
		goto out;
	for (i = 0; i < m->cap; i++) {
		if (!SLOT_USED(m, i))
			continue;
		j = find(&bigger, *SLOT_KEY(m, i));
		memcpy(bigger.slots + j * m->slot_size, m->slots + i * m->slot_size, m->slot_size);
	}
	free(m->slots);
	*m = bigger;
	ret = 0;
out:
	return ret;
}

void *u64map_put(struct u64map *m, uint64_t key, int *created)
{
	void *v = NULL;
	size_t i;

	*created = 0;
	if (m->cap > 0) {
		i = find(m, key);
		if (SLOT_USED(m, i)) {
			v = SLOT_VALUE(m, i);
			goto out;
		}
	}
	if (m->n >= m->max_entries)
		goto out;
	if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
		goto out;
	i = find(m, key);
	*SLOT_KEY(m, i) = key;
	SLOT_USED(m, i) = 1;
	v = SLOT_VALUE(m, i);
	memset(v, 0, m->value_size);
	m->n++;
	*created = 1;
out:
	return v;
}

void u64map_del(struct u64map *m, uint64_t key)
{
	size_t i, j, home;

	if (m->cap == 0)
		goto out;
	i = find(m, key);
	if (!SLOT_USED(m, i))
		goto out;
	SLOT_USED(m, i) = 0;
	m->n--;
	/* Backward shift: pull later entries of the run into the hole when their home slot
	 * does not lie (cyclically) between the hole and them. */
	for (j = (i + 1) & (m->cap - 1); SLOT_USED(m, j); j = (j + 1) & (m->cap - 1)) {
		home = mix(*SLOT_KEY(m, j)) & (m->cap - 1);
		if (((j - home) & (m->cap - 1)) >= ((j - i) & (m->cap - 1))) {
			memcpy(m->slots + i * m->slot_size, m->slots + j * m->slot_size,
			       m->slot_size);
			SLOT_USED(m, j) = 0;
			i = j;
		}
	}
out:
	return;
}

void *u64map_slot(const struct u64map *m, size_t i, uint64_t *key)
{
	void *v = NULL;

	if (i < m->cap && SLOT_USED(m, i)) {
		*key = *SLOT_KEY(m, i);
		v = SLOT_VALUE(m, i);
	}
	return v;
}
