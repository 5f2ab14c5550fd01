/*
 * strtab.h - a store's string ids as a reader holds them: chunks of pointers indexed by id.
 *
 * store/strings.c fills it from the store's strings database (one id at a time, under its own
 * lock, publishing each pointer with a release store), and record_decode reads it without a
 * lock while it decodes, so that a record's references become strings in the same pass that
 * finds them: a report resolves about ten of them per record over millions of records. A
 * pointer, once published, never changes; what it points to (a u16 length, then the bytes)
 * lives as long as the table.
 */
#ifndef TOKSHIM_STRTAB_H
#define TOKSHIM_STRTAB_H

#include <stdint.h>

/* The last id a table holds (writers give out no larger one). */
#define STRTAB_ID_MAX ((1u << 24) - 1)
#define STRTAB_CHUNK_BITS 12
#define STRTAB_CHUNK_LEN (1u << STRTAB_CHUNK_BITS)
#define STRTAB_CHUNKS ((STRTAB_ID_MAX >> STRTAB_CHUNK_BITS) + 1)

struct strtab {
	const unsigned char **chunk[STRTAB_CHUNKS]; /* each STRTAB_CHUNK_LEN entries, or NULL */
};

/* The string of id as t holds it (a u16 length, then the bytes), NULL while not loaded. */
static inline const unsigned char *strtab_get(const struct strtab *t, uint32_t id)
{
	const unsigned char **chunk;

	if (id > STRTAB_ID_MAX)
		return NULL;
	chunk = __atomic_load_n(&t->chunk[id >> STRTAB_CHUNK_BITS], __ATOMIC_ACQUIRE);
	return chunk != NULL ? __atomic_load_n(&chunk[id & (STRTAB_CHUNK_LEN - 1)],
					       __ATOMIC_ACQUIRE) :
			       NULL;
}

#endif
