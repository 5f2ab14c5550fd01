/*
 * u64map.h - a capped open-addressing hash map from 64-bit keys to fixed-size values, for the
 * analyses that keep state per session, per request hash or per (agent, hour) while a scan
 * streams millions of records past them.
 *
 * Keys are hashes the caller computed (any value; 0 is allowed). Values are value_size bytes
 * each, zeroed when created, stored inline in one array: no allocation per entry. The map never
 * holds more than max_entries entries: past it, u64map_put refuses and the caller decides what
 * to drop, so memory stays bounded whatever the store holds. Deletion shifts the following
 * entries back (linear probing), so no tombstones accumulate.
 */
#ifndef TOKSHIM_U64MAP_H
#define TOKSHIM_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map {
	unsigned char *slots; /* cap slots of (uint64_t key, uint8_t used, value), owned */
	size_t cap;           /* a power of two, or 0 before the first put */
	size_t n, max_entries, value_size, slot_size;
};

/* Sets up an empty map; nothing is allocated until the first put. */
void u64map_init(struct u64map *m, size_t value_size, size_t max_entries);
void u64map_release(struct u64map *m);

/* The value of key, or NULL. Valid until the next put or delete. */
void *u64map_get(const struct u64map *m, uint64_t key);

/*
 * The value of key, created (zeroed, *created set to 1) when absent. NULL when the map is at
 * max_entries or out of memory (the map is then unchanged). Valid until the next put or delete.
 */
void *u64map_put(struct u64map *m, uint64_t key, int *created);

/* Removes key (nothing when absent). */
void u64map_del(struct u64map *m, uint64_t key);

/* Iteration: for i in [0, m->cap), u64map_slot returns the value in slot i (and its key), or
 * NULL for an empty slot. The map must not change during an iteration. */
void *u64map_slot(const struct u64map *m, size_t i, uint64_t *key);

/* A 64-bit hash of bytes, mixed with seed (FNV-1a then a final avalanche). */
uint64_t u64map_hash(const void *p, size_t n, uint64_t seed);

#endif
