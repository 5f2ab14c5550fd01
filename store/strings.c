/*
 * strings.c - the store's string table (strings.h): ids for the names records repeat.
 *
 * Writers ask for the id of a dozen names per append, nearly always names they asked for a
 * moment ago (the same agent, process, session and model call after call), so a name costs a
 * hash and one probe of the cache; only a name new to this process reads the table, and only a
 * name new to the store writes it (the first call of each session, mostly).
 *
 * Readers meet ids by the million in a scan, spread over a few thousand strings, from several
 * threads each in its own read transaction. The table is an array of chunks of pointers
 * indexed by id, filled once per id under a lock and read without one: a pointer, once
 * published, never changes, and the bytes it points to live until the table is released. A
 * miss loads the id and the ones after it, which are the strings written next, so a scan in
 * time order finds the sessions it meets next already loaded.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/endian.h"
#include "store/store.h"
#include "store/strings.h"

/* A name's key: STRINGS_BY_NAME, then its bytes. */
#define STRINGS_NAME_KEY_MAX (1 + STRINGS_LEN_MAX)
/* An id's key: STRINGS_BY_ID, then be32(id). */
#define STRINGS_ID_KEY_LEN 5
/* Ids a miss loads at once, from the one asked for on. */
#define STRINGS_LOAD_AHEAD 256
/* The blocks strings are copied into. */
#define STRINGS_BLOCK_SIZE (64u << 10)

static void strings_id_key(unsigned char key[STRINGS_ID_KEY_LEN], uint32_t id)
{
	key[0] = STRINGS_BY_ID;
	key[1] = (unsigned char)(id >> 24);
	key[2] = (unsigned char)(id >> 16);
	key[3] = (unsigned char)(id >> 8);
	key[4] = (unsigned char)id;
}

static uint32_t strings_key_id(const unsigned char key[STRINGS_ID_KEY_LEN])
{
	return (uint32_t)key[1] << 24 | (uint32_t)key[2] << 16 | (uint32_t)key[3] << 8 | key[4];
}

/* ---- writers ------------------------------------------------------------------------------ */

/* Eight bytes a step: a writer hashes a dozen names per append. */
static uint64_t strings_hash(const char *p, uint32_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	w = 0;
	memcpy(&w, p, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	return h ^ h >> 29;
}

int strings_cache_init(struct strings_cache *c)
{
	memset(c, 0, sizeof *c);
	return pthread_mutex_init(&c->lock, NULL);
}

/* Empties the cache (its slots stay allocated). */
static void strings_cache_clear(struct strings_cache *c)
{
	for (size_t i = 0; c->slot != NULL && i < STRINGS_CACHE_SLOTS; i++) {
		free(c->slot[i].p);
		c->slot[i] = (struct strings_cache_slot){ 0, 0, 0, NULL };
	}
	c->n = 0;
}

void strings_cache_release(struct strings_cache *c)
{
	strings_cache_clear(c);
	free(c->slot);
	c->slot = NULL;
	pthread_mutex_destroy(&c->lock);
}

/* The slot holding (p, n), or the empty slot where it would go. NULL without slots. */
static struct strings_cache_slot *strings_cache_find(struct strings_cache *c, uint64_t h,
						      const char *p, uint32_t n)
{
	struct strings_cache_slot *s = NULL;
	size_t i;

	if (c->slot == NULL)
		goto out;
	for (i = h & (STRINGS_CACHE_SLOTS - 1);; i = (i + 1) & (STRINGS_CACHE_SLOTS - 1)) {
		s = &c->slot[i];
		if (s->id == 0 || (s->hash == h && s->n == n && memcmp(s->p, p, n) == 0))
			break;
	}
out:
	return s;
}

/* Remembers (p, n) → id; a cache that cannot (no memory) simply does not. */
static void strings_cache_add(struct strings_cache *c, uint64_t h, const char *p, uint32_t n,
			      uint32_t id)
{
	struct strings_cache_slot *s;
	char *copy;

	if (c->slot == NULL)
		c->slot = calloc(STRINGS_CACHE_SLOTS, sizeof *c->slot);
	if (c->slot == NULL)
		return;
	/* Half full: start again rather than grow (a writer's names are few; a bulk load's
	 * sessions pass through). */
	if (c->n >= STRINGS_CACHE_SLOTS / 2)
		strings_cache_clear(c);
	copy = malloc(n);
	if (copy == NULL)
		return;
	memcpy(copy, p, n);
	s = strings_cache_find(c, h, p, n);
	*s = (struct strings_cache_slot){ h, id, n, copy };
	c->n++;
}

void strings_txn_init(struct strings_txn *sx, struct strings_cache *c, MDB_dbi dbi)
{
	*sx = (struct strings_txn){ c, dbi, 0, 0, 0 };
}

/* The id the next new string gets: one past the last id entry (1 in an empty table). */
static int strings_next_id(MDB_txn *txn, MDB_dbi dbi, uint32_t *next)
{
	unsigned char first_name = STRINGS_BY_NAME;
	MDB_val key = { 1, &first_name }, val;
	MDB_cursor *cur;
	int rc;

	*next = 1;
	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		goto out;
	/* The id entries sort before every name entry: the last of them is the one just before
	 * the first name (or the last key, in a table of ids alone). */
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	rc = mdb_cursor_get(cur, &key, &val, rc == 0 ? MDB_PREV : MDB_LAST);
	if (rc == 0 && key.mv_size == STRINGS_ID_KEY_LEN &&
	    ((const unsigned char *)key.mv_data)[0] == STRINGS_BY_ID)
		*next = strings_key_id(key.mv_data) + 1;
	rc = rc == MDB_NOTFOUND ? 0 : rc;
	mdb_cursor_close(cur);
out:
	return rc;
}

/* Writes (p, n) as a new string in txn, its id in *id (0 when the table is full). */
static int strings_add(struct strings_txn *sx, MDB_txn *txn, const char *p, uint32_t n,
		       uint32_t *id)
{
	unsigned char ikey[STRINGS_ID_KEY_LEN], nkey[STRINGS_NAME_KEY_MAX], idv[4];
	MDB_val key, val;
	int rc = 0;

	if (sx->next_id == 0)
		rc = strings_next_id(txn, sx->dbi, &sx->next_id);
	if (rc != 0 || sx->next_id > STRINGS_ID_MAX)
		goto out;
	strings_id_key(ikey, sx->next_id);
	key = (MDB_val){ sizeof ikey, ikey };
	val = (MDB_val){ n, (void *)p };
	rc = mdb_put(txn, sx->dbi, &key, &val, MDB_NOOVERWRITE);
	if (rc != 0)
		goto out;
	nkey[0] = STRINGS_BY_NAME;
	memcpy(nkey + 1, p, n);
	endian_put_le32(idv, sx->next_id);
	key = (MDB_val){ 1 + (size_t)n, nkey };
	val = (MDB_val){ sizeof idv, idv };
	rc = mdb_put(txn, sx->dbi, &key, &val, MDB_NOOVERWRITE);
	if (rc != 0)
		goto out;
	sx->added = 1;
	*id = sx->next_id++;
out:
	return rc;
}

/* Does id's entry in txn hold the n bytes at p? 0 when it does, MDB_NOTFOUND when it does not
 * (or there is none), or another LMDB code. */
static int strings_names(MDB_txn *txn, MDB_dbi dbi, uint32_t id, const char *p, uint32_t n)
{
	unsigned char ikey[STRINGS_ID_KEY_LEN];
	MDB_val key = { sizeof ikey, ikey }, val;
	int rc;

	strings_id_key(ikey, id);
	rc = mdb_get(txn, dbi, &key, &val);
	if (rc == 0 && (val.mv_size != n || memcmp(val.mv_data, p, n) != 0))
		rc = MDB_NOTFOUND;
	return rc;
}

int strings_intern(struct strings_txn *sx, MDB_txn *txn, const char *p, uint32_t n,
		   uint32_t *id)
{
	unsigned char nkey[STRINGS_NAME_KEY_MAX];
	struct strings_cache_slot *slot;
	MDB_val key, val;
	uint64_t h;
	uint32_t found;
	int rc = 0;

	*id = 0;
	if (n == 0 || n > STRINGS_LEN_MAX || p == NULL)
		goto out;
	if (!sx->held) {
		pthread_mutex_lock(&sx->cache->lock);
		sx->held = 1;
	}
	h = strings_hash(p, n);
	slot = strings_cache_find(sx->cache, h, p, n);
	if (slot != NULL && slot->id != 0) {
		*id = slot->id;
		goto out;
	}
	nkey[0] = STRINGS_BY_NAME;
	memcpy(nkey + 1, p, n);
	key = (MDB_val){ 1 + (size_t)n, nkey };
	rc = mdb_get(txn, sx->dbi, &key, &val);
	if (rc == 0) {
		found = val.mv_size == 4 ? endian_le32(val.mv_data) : 0;
		/* A damaged entry is not trusted, nor written over: the name stays inline. Its
		 * id must give the name back, or records would spread a wrong name. */
		rc = found != 0 && found <= STRINGS_ID_MAX ? strings_names(txn, sx->dbi, found, p, n)
							   : MDB_NOTFOUND;
		if (rc != 0) {
			rc = rc == MDB_NOTFOUND ? 0 : rc;
			goto out;
		}
		*id = found;
	} else if (rc == MDB_NOTFOUND) {
		rc = strings_add(sx, txn, p, n, id);
		if (rc != 0 || *id == 0)
			goto out;
	} else {
		goto out;
	}
	strings_cache_add(sx->cache, h, p, n, *id);
out:
	return rc;
}

void strings_txn_end(struct strings_txn *sx, int committed)
{
	if (!sx->held)
		return;
	/* The ids this transaction gave out were never written: another writer will give them
	 * to other names. */
	if (!committed && sx->added)
		strings_cache_clear(sx->cache);
	pthread_mutex_unlock(&sx->cache->lock);
	sx->held = 0;
}

/* ---- readers ------------------------------------------------------------------------------ */

struct strings_block {
	struct strings_block *next;
	unsigned char bytes[];
};

int strings_table_init(struct strings_table *t)
{
	memset(t, 0, sizeof *t);
	return pthread_mutex_init(&t->lock, NULL);
}

void strings_table_release(struct strings_table *t)
{
	struct strings_block *b, *next;

	for (size_t i = 0; i < STRTAB_CHUNKS; i++)
		free(t->tab.chunk[i]);
	for (b = t->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	pthread_mutex_destroy(&t->lock);
	memset(t, 0, sizeof *t);
}

/* Copies val as the string of id into t (lock held). Returns 0 or ENOMEM. */
static int strings_table_put(struct strings_table *t, uint32_t id, const MDB_val *val)
{
	const unsigned char ***slot = &t->tab.chunk[id >> STRTAB_CHUNK_BITS];
	const unsigned char **chunk = *slot;
	struct strings_block *b;
	size_t need = 2 + val->mv_size, size;
	unsigned char *e;
	int rc = ENOMEM;

	if (chunk == NULL) {
		chunk = calloc(STRTAB_CHUNK_LEN, sizeof *chunk);
		if (chunk == NULL)
			goto out;
		__atomic_store_n(slot, chunk, __ATOMIC_RELEASE);
	}
	if (t->room < need) {
		size = need > STRINGS_BLOCK_SIZE ? need : STRINGS_BLOCK_SIZE;
		b = malloc(sizeof *b + size);
		if (b == NULL)
			goto out;
		b->next = t->blocks;
		t->blocks = b;
		t->free = b->bytes;
		t->room = size;
	}
	e = t->free;
	t->free += need;
	t->room -= need;
	endian_put_le16(e, (uint16_t)val->mv_size);
	memcpy(e + 2, val->mv_data, val->mv_size);
	__atomic_store_n(&chunk[id & (STRTAB_CHUNK_LEN - 1)], e, __ATOMIC_RELEASE);
	rc = 0;
out:
	return rc;
}

/* A load's progress through the strings database's id entries. */
struct strings_load {
	struct strings_table *t;
	uint32_t from; /* the id asked for */
	int rc;        /* of strings_table_put */
};

/* One entry of the strings database from the id asked for on (leafscan_fn): copies id
 * entries into the table, STRINGS_LOAD_AHEAD of them at most. */
static int strings_load_entry(const unsigned char *key, size_t klen, const unsigned char *val,
			      size_t vlen, void *arg)
{
	struct strings_load *sl = arg;
	MDB_val v = { vlen, (void *)val };
	uint32_t at;

	if (klen != STRINGS_ID_KEY_LEN || key[0] != STRINGS_BY_ID)
		return 1;
	at = strings_key_id(key);
	if (at > STRINGS_ID_MAX || at - sl->from >= STRINGS_LOAD_AHEAD)
		return 1;
	/* a value too long is damage: verify reports it; a record naming it does not decode */
	if (vlen <= UINT16_MAX && strtab_get(&sl->t->tab, at) == NULL)
		sl->rc = strings_table_put(sl->t, at, &v);
	return sl->rc != 0;
}

/* Loads id and the ids after it (up to STRINGS_LOAD_AHEAD) from the pages at from into t.
 * Returns 0, MDB_NOTFOUND when id itself is not in the table, or an error. */
static int strings_table_load(struct strings_table *t, const struct strings_pages *from,
			      uint32_t id)
{
	struct strings_load sl = { t, id, 0 };
	unsigned char start[STRINGS_ID_KEY_LEN];
	int rc;

	pthread_mutex_lock(&t->lock);
	rc = 0;
	if (strtab_get(&t->tab, id) != NULL)
		goto unlock;
	strings_id_key(start, id);
	rc = leafscan_walk(from->fd, from->psize, &from->tree, start, sizeof start, UINT16_MAX,
			   strings_load_entry, &sl);
	/* leafscan's STORE_E* codes in this file's own terms (strings.h) */
	if (rc == 1)
		rc = sl.rc;
	else if (rc == STORE_EFORMAT)
		rc = MDB_CORRUPTED;
	else if (rc == STORE_ENOMEM)
		rc = ENOMEM;
	else if (rc != 0)
		rc = EIO;
	if (rc == 0)
		rc = strtab_get(&t->tab, id) != NULL ? 0 : MDB_NOTFOUND;
unlock:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int strings_resolve(struct strings_table *t, MDB_txn *txn, MDB_dbi dbi,
		    const struct strings_pages *from, struct record_str *s)
{
	unsigned char ikey[STRINGS_ID_KEY_LEN];
	MDB_val key = { sizeof ikey, ikey }, val;
	const unsigned char *e = strtab_get(&t->tab, s->ref);
	int rc = 0;

	if (e == NULL && from != NULL) {
		rc = strings_table_load(t, from, s->ref);
		e = strtab_get(&t->tab, s->ref);
	}
	if (e != NULL) {
		s->n = endian_le16(e);
		s->p = (const char *)e + 2;
		goto out;
	}
	if (rc != 0)
		goto out;
	strings_id_key(ikey, s->ref);
	rc = mdb_get(txn, dbi, &key, &val);
	if (rc == 0 && val.mv_size > UINT16_MAX)
		rc = MDB_NOTFOUND;
	if (rc == 0) {
		s->n = (uint32_t)val.mv_size;
		s->p = val.mv_data;
	}
out:
	return rc;
}

/* ---- verify ------------------------------------------------------------------------------- */

static void strings_problem(strings_problem_fn fn, void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void strings_problem(strings_problem_fn fn, void *arg, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fn(line, arg);
}

/* Does entry (key, val) have its counterpart in txn? */
static int strings_counterpart(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key,
			       const MDB_val *val, int *ok)
{
	const unsigned char *k = key->mv_data;
	unsigned char other[STRINGS_NAME_KEY_MAX];
	MDB_val okey, oval;
	int rc;

	*ok = 0;
	if (k[0] == STRINGS_BY_ID) {
		if (val->mv_size == 0 || val->mv_size > STRINGS_LEN_MAX)
			return 0;
		other[0] = STRINGS_BY_NAME;
		memcpy(other + 1, val->mv_data, val->mv_size);
		okey = (MDB_val){ 1 + val->mv_size, other };
	} else {
		if (val->mv_size != 4)
			return 0;
		strings_id_key(other, endian_le32(val->mv_data));
		okey = (MDB_val){ STRINGS_ID_KEY_LEN, other };
	}
	rc = mdb_get(txn, dbi, &okey, &oval);
	if (rc == 0 && k[0] == STRINGS_BY_ID)
		*ok = oval.mv_size == 4 && endian_le32(oval.mv_data) == strings_key_id(k);
	else if (rc == 0)
		*ok = oval.mv_size == key->mv_size - 1 &&
		      memcmp(oval.mv_data, k + 1, oval.mv_size) == 0;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int strings_verify(MDB_txn *txn, MDB_dbi dbi, strings_problem_fn fn, void (*tick)(void *),
		   void *arg, uint64_t *entries)
{
	MDB_val key, val;
	MDB_cursor *cur;
	const unsigned char *k;
	uint32_t id;
	int rc, ok;

	*entries = 0;
	rc = mdb_cursor_open(txn, dbi, &cur);
	if (rc != 0)
		goto out;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (tick != NULL)
			tick(arg);
		k = key.mv_data;
		if (key.mv_size == STRINGS_ID_KEY_LEN && k[0] == STRINGS_BY_ID) {
			id = strings_key_id(k);
			(*entries)++;
			if (id == 0 || id > STRINGS_ID_MAX)
				strings_problem(fn, arg, "strings: id %" PRIu32 " is out of range",
						id);
			else if (val.mv_size == 0 || val.mv_size > STRINGS_LEN_MAX)
				strings_problem(fn, arg, "string %" PRIu32 ": %zu bytes (1 to %d "
						"expected)", id, val.mv_size, STRINGS_LEN_MAX);
		} else if (key.mv_size >= 2 && key.mv_size <= STRINGS_NAME_KEY_MAX &&
			   k[0] == STRINGS_BY_NAME) {
			if (val.mv_size != 4)
				strings_problem(fn, arg, "strings: a name entry of %zu bytes (4 "
						"expected)", val.mv_size);
		} else {
			strings_problem(fn, arg, "strings: a key of %zu bytes of neither kind",
					key.mv_size);
			continue;
		}
		rc = strings_counterpart(txn, dbi, &key, &val, &ok);
		if (rc != 0)
			break;
		if (!ok && k[0] == STRINGS_BY_ID)
			strings_problem(fn, arg, "string %" PRIu32 ": no name entry gives back "
					"its id", strings_key_id(k));
		else if (!ok)
			strings_problem(fn, arg, "strings: the name '%.*s' has no id entry that "
					"gives it back", (int)(key.mv_size > 65 ? 64 : key.mv_size - 1),
					(const char *)k + 1);
	}
	rc = rc == MDB_NOTFOUND ? 0 : rc;
	mdb_cursor_close(cur);
out:
	return rc;
}
