/*
 * report_scan.c - report_scan's pass over the stores, on every core (see report.h).
 *
 * A report over millions of records is bound by reading them: LMDB's cursor and the first
 * touch of each record cost about 200 ns a record on one core (docs/PERFORMANCE.md), more than
 * 5 million records a second allows. So each store's time range is cut into slices, and
 * threads take slices in turn, each slice read by store_scan in a read transaction of its own.
 *
 * A thread sums its records per cell: one distinct combination of everything the report
 * groups by (agent, provider, host when there is no provider, answered and asked model, the
 * pricing class the flags give, and the --by keys), found with one hash of the record's key
 * bytes and one probe. A store holds few cells (agents × models) against millions of records,
 * so the report's rows (total, local and cloud, byAgent, byModel, byProvider, --by) are made
 * at the end by adding cells together (report_row_merge): the same sums, the same exact
 * latencies and, past REPORT_LAT_EXACT calls, the same histograms, since buckets add. A cell's
 * price is looked up once, when the cell is made, since its key holds every name a price
 * depends on; each record is still priced on its own (pricing_record_parts_at, a few
 * multiplications), so long-context tiers, per-request fees and service tiers stay exact.
 *
 * The fallback detector needs a store's records in time order. It is handed only the records
 * that can change what it finds, copied: failed calls, calls answered by a model other than the
 * one asked for, and the next call of a session after a failure in the same slice. Slices are
 * fed to it in order, as soon as every earlier slice is fed; before a slice, the sessions still
 * waiting on a failure from earlier slices have their next call looked up by a short scan of
 * the slice's first window. A superset of the records that matter, in order, leaves the
 * detector as the whole sequence would, except its call and cost totals: those are the
 * report's totals.
 *
 * What depends on the order records come in cannot come out of sums: which rows keep a
 * histogram once more than REPORT_MAX_HIST need one, which keys become "(other)" at
 * REPORT_MAX_NAMES, the detector dropping failures when FALLBACK_MAX_PENDING wait. A scan
 * that comes near one of these limits, or meets a key name longer than RECORD_STR_MAX (which
 * key_encode would cut), stops and says so, and report_scan adds record by record instead.
 */
#include "analyzer/report.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/progress.h"

/* Below this many records per thread, fewer threads (a small store is read on one). */
#define SCAN_MIN_PER_THREAD 65536
/* Slices per store: enough that threads finish together when records are spread unevenly
 * over time and that the records a slice holds for the detector stay few (they wait for the
 * slices before theirs), few enough that the per-slice work (a transaction, a seek, the
 * detector's look at the slice's first window) stays small. */
#define SCAN_SLICES 128
#define SCAN_SLICES_MAX 1024
/* Cells one thread keeps (a cell is about 600 bytes); a report with more distinct keys is
 * added record by record (report_scan does not even try one by session, day or hour). */
#define SCAN_CELLS_MAX (1u << 16)
/* Records one slice holds for the detector. */
#define SCAN_SIDE_MAX (1u << 20)
/* A thread reports its count to the progress line every this many records. */
#define SCAN_PROGRESS_EVERY 4096
/* A cell key of names: its kind and flags bytes, at most eight strings and the hour. */
#define CELL_KEY_MAX (2 + 8 * (2 + RECORD_STR_MAX) + 8)
/* A cell key of string numbers: kind, flags, the store's index, pad, eight numbers, hour. */
#define CELL_REFS 8
#define CELL_REFKEY_LEN (8 + CELL_REFS * 4 + 8)
_Static_assert(FILTER_MAX_DB <= 256, "a cell key holds the store's index in a byte");
enum cell_key_kind {
	CELL_KEY_NAMES = 0,
	CELL_KEY_REFS = 1,
};
#define NS_PER_HOUR (3600 * 1000000000ll)
/* Latencies a cell holds before adding them to its row once the row keeps a histogram (past
 * REPORT_LAT_EXACT calls): an 8 KiB histogram each, a thousand cells' do not stay in cache, so
 * one record's bucket is a cache miss; a batch of a cell's latencies touches far fewer lines. */
#define CELL_LAT_BATCH 128

/* The pricing class of a record: the flags pricing_record_parts_at reads besides the price. */
#define CELL_FLAGS (RECORD_LOCAL | RECORD_NOT_BILLED | RECORD_BILLED)

/* Which optional parts a cell key holds (the --by keys beyond agent, provider and model). */
enum cell_part {
	CELL_AGENT_TYPE = 1 << 0,
	CELL_TENANT = 1 << 1,
	CELL_SESSION = 1 << 2,
	CELL_HOUR = 1 << 3, /* day or hour */
};

/* What every record of a cell touches comes first, so that a record's visit reads a few
 * adjacent cache lines: a worker holds a thousand cells and more, which do not all stay in a
 * core's cache; the representative record, read once at the end, comes last. */
struct cell {
	int models_differ;  /* models_differ() of every record of the cell: both models are keys */
	const struct price *price; /* the table price, NULL when unpriced or not needed */
	uint32_t nlat;
	int64_t *lat; /* CELL_LAT_BATCH, owned; allocated with row.lat's histogram */
	struct report_row row;     /* its latencies but the nlat in lat */
	unsigned char *key; /* a key of names (owned); NULL for one of string numbers */
	uint32_t keylen;
	struct record rep;  /* the key's fields, strings pointing into key: what the rows read */
};

/* One thread's cells: an open-addressing index, at most half full, holding each cell's hash
 * beside it so that a probe touches no cell but the one it finds. */
struct cell_slot {
	uint64_t hash;
	struct cell *c; /* NULL: empty */
	/* A key of string numbers (the usual one) is kept here, so that finding its cell reads
	 * one cache line; a key of names is the cell's. */
	unsigned char refkey[CELL_REFKEY_LEN];
};

struct cells {
	struct cell_slot *index;
	size_t cap, n;
	size_t nhist; /* cells keeping a histogram */
};

/* A record held for the detector, with its cost. */
struct side {
	struct record *rec; /* side_copy: in the list's blocks */
	int priced;
	int64_t pusd;
};

/* A block of copies of held records (side_copy). */
struct side_block {
	struct side_block *next;
	size_t used, cap;
	unsigned char bytes[];
};

struct side_list {
	struct side *v;
	size_t n, cap;
	struct side_block *blocks; /* newest first */
};

struct slice {
	size_t db;
	int64_t since_ns, until_ns;
	int first_of_store; /* nothing waits on it from an earlier slice of the same store */
	int done;           /* read; side holds its records for the detector */
	struct side_list side;
};

struct scan {
	struct report *r;
	const struct filter *f;
	struct store *stores[FILTER_MAX_DB];
	unsigned parts; /* enum cell_part */
	int time_only;  /* filter_time_only(f): only a record's time is to be tested */
	struct slice *slices;
	size_t nslices;
	size_t next_slice; /* atomic: the next slice to read */
	pthread_mutex_t lock; /* the detector, next_feed, done flags, err */
	size_t next_feed;
	int bail;  /* atomic: record by record instead */
	int error; /* atomic: a store could not be read (err says why) */
	uint64_t seen; /* atomic: records read, for the progress line */
	struct progress progress; /* thread 0's */
	char *err;
	size_t errlen;
};

struct worker {
	struct scan *s;
	size_t index;
	struct cells cells;
	struct slice *slice;  /* being read */
	struct u64map failed; /* sessions of this slice whose last call failed (scan_session_key) */
	uint64_t unreported;
	pthread_t thread;
};

static void cells_release(struct cells *c)
{
	size_t i;

	for (i = 0; i < c->cap; i++) {
		if (c->index[i].c == NULL)
			continue;
		free(c->index[i].c->key);
		free(c->index[i].c->lat);
		report_row_release(&c->index[i].c->row);
		free(c->index[i].c);
	}
	free(c->index);
	memset(c, 0, sizeof *c);
}

/* Doubles the index (64 slots at first). Returns 0 or -1. */
static int cells_grow(struct cells *c)
{
	size_t cap = c->cap ? c->cap * 2 : 64, i, slot;
	struct cell_slot *index = calloc(cap, sizeof *index);
	int ret = -1;

	if (index == NULL)
		goto out;
	for (i = 0; i < c->cap; i++) {
		if (c->index[i].c == NULL)
			continue;
		slot = c->index[i].hash & (cap - 1);
		while (index[slot].c != NULL)
			slot = (slot + 1) & (cap - 1);
		index[slot] = c->index[i];
	}
	free(c->index);
	c->index = index;
	c->cap = cap;
	ret = 0;
out:
	return ret;
}

/* Appends s as a u16 length and its bytes; 0, or -1 when longer than key_encode keeps. */
static int put_str(unsigned char *buf, size_t *n, const struct record_str *s)
{
	uint16_t len = (uint16_t)s->n;
	int ret = -1;

	if (s->n > RECORD_STR_MAX)
		goto out;
	memcpy(buf + *n, &len, sizeof len);
	if (len)
		memcpy(buf + *n + sizeof len, s->p, len);
	*n += sizeof len + len;
	ret = 0;
out:
	return ret;
}

/* Is s in a cell key by number: named by its store's string table, or empty? */
static int by_ref(const struct record_str *s)
{
	return s->ref != 0 || s->n == 0;
}

/*
 * rec's cell key into buf (CELL_KEY_MAX bytes). Returns its length, or 0 for a name too long.
 * When every name of the key has its number in the store's string table (a record of version
 * 5, names under STRINGS_LEN_MAX bytes), the key holds those numbers and the store's index:
 * 48 bytes to build and hash instead of the names. Otherwise it holds the names. The first
 * byte tells the two kinds apart; a cell of either kind is added to rows by its names.
 */
static size_t cell_key(unsigned parts, size_t db, const struct record *rec, unsigned char *buf)
{
	const struct record_str *host = rec->provider.n ? NULL : &rec->host;
	uint32_t ref[CELL_REFS];
	size_t n = 1;
	int64_t hour = 0;
	int bad;

	if (parts & CELL_HOUR) /* floor division: a damaged record's negative time too */
		hour = rec->ts_ns / NS_PER_HOUR - (rec->ts_ns % NS_PER_HOUR < 0);
	if (by_ref(&rec->agent) && by_ref(&rec->provider) && (host == NULL || by_ref(host)) &&
	    by_ref(&rec->model) && by_ref(&rec->model_requested) &&
	    (!(parts & CELL_AGENT_TYPE) || by_ref(&rec->agent_type)) &&
	    (!(parts & CELL_TENANT) || by_ref(&rec->tenant)) &&
	    (!(parts & CELL_SESSION) || by_ref(&rec->session))) {
		ref[0] = rec->agent.ref;
		ref[1] = rec->provider.ref;
		ref[2] = host != NULL ? host->ref : 0;
		ref[3] = rec->model.ref;
		ref[4] = rec->model_requested.ref;
		ref[5] = parts & CELL_AGENT_TYPE ? rec->agent_type.ref : 0;
		ref[6] = parts & CELL_TENANT ? rec->tenant.ref : 0;
		ref[7] = parts & CELL_SESSION ? rec->session.ref : 0;
		memset(buf, 0, CELL_REFKEY_LEN);
		buf[0] = CELL_KEY_REFS;
		buf[1] = (unsigned char)(rec->flags & CELL_FLAGS);
		buf[2] = (unsigned char)db;
		memcpy(buf + 8, ref, sizeof ref);
		memcpy(buf + 8 + sizeof ref, &hour, sizeof hour);
		return CELL_REFKEY_LEN;
	}
	buf[0] = CELL_KEY_NAMES;
	buf[n++] = (unsigned char)(rec->flags & CELL_FLAGS);
	bad = put_str(buf, &n, &rec->agent) | put_str(buf, &n, &rec->provider) |
	      (host != NULL ? put_str(buf, &n, host) : 0) |
	      put_str(buf, &n, &rec->model) | put_str(buf, &n, &rec->model_requested) |
	      (parts & CELL_AGENT_TYPE ? put_str(buf, &n, &rec->agent_type) : 0) |
	      (parts & CELL_TENANT ? put_str(buf, &n, &rec->tenant) : 0) |
	      (parts & CELL_SESSION ? put_str(buf, &n, &rec->session) : 0);
	if (parts & CELL_HOUR) {
		memcpy(buf + n, &hour, sizeof hour);
		n += sizeof hour;
	}
	return bad ? 0 : n;
}

/* Points s at the next string of a cell key. */
static void take_str(const unsigned char **p, struct record_str *s)
{
	uint16_t len;

	memcpy(&len, *p, sizeof len);
	s->n = len;
	s->p = len ? (const char *)*p + sizeof len : NULL;
	*p += sizeof len + len;
}

/* Adds the latencies c holds to its row. Returns 0, or -1 when the row lost its
 * percentiles (no histogram could be had). */
static int cell_flush(struct cells *cs, struct cell *c)
{
	uint32_t i;

	for (i = 0; i < c->nlat; i++)
		report_lat_add(&cs->nhist, &c->row.lat, c->lat[i]);
	c->nlat = 0;
	return c->row.lat.lost ? -1 : 0;
}

/* Answered by a model other than the one asked for, byte-wise: a routed fallback maybe. */
static int models_differ(const struct record *rec)
{
	return rec->model.n && rec->model_requested.n &&
	       (rec->model.n != rec->model_requested.n ||
		memcmp(rec->model.p, rec->model_requested.p, rec->model.n) != 0);
}

/* rec's session as a key of worker.failed: fallback_session_key's sessions (the session id,
 * else the process), hashed eight bytes a step rather than byte by byte. Once a slice has a
 * failure waiting, every record of it is looked up, so this is a per-record cost; the key
 * never leaves the slice, whose records are all of one store (so its string numbers name one
 * string each). */
static uint64_t scan_session_key(const struct record *rec)
{
	/* A session with a number in the string table is keyed by it: an odd multiplier spreads
	 * the numbers like the hashes of the others, one to one. */
	if (rec->session.ref != 0)
		return ((uint64_t)rec->session.ref << 1 | 1) * 0x9e3779b97f4a7c15ull;
	return rec->session.n ? report_key_hash((const unsigned char *)rec->session.p,
						rec->session.n)
			      : ~report_key_hash((const unsigned char *)&rec->pid, sizeof rec->pid);
}

/* A new cell for rec, its key key[0..n). NULL when out of memory. */
static struct cell *cell_new(struct scan *s, const struct record *rec, const unsigned char *key,
			     size_t n)
{
	struct cell *c = calloc(1, sizeof *c);
	const unsigned char *p;

	if (c == NULL)
		goto out;
	c->rep.flags = key[1];
	c->rep.ts_ns = rec->ts_ns;
	if (key[0] == CELL_KEY_REFS) {
		/* Numbered names live in the store's string table until the stores close,
		 * after the rows have copied them. */
		c->rep.agent = rec->agent;
		c->rep.provider = rec->provider;
		if (rec->provider.n == 0)
			c->rep.host = rec->host;
		c->rep.model = rec->model;
		c->rep.model_requested = rec->model_requested;
		if (s->parts & CELL_AGENT_TYPE)
			c->rep.agent_type = rec->agent_type;
		if (s->parts & CELL_TENANT)
			c->rep.tenant = rec->tenant;
		if (s->parts & CELL_SESSION)
			c->rep.session = rec->session;
	} else {
		c->key = malloc(n);
		if (c->key == NULL) {
			free(c);
			c = NULL;
			goto out;
		}
		memcpy(c->key, key, n);
		c->keylen = (uint32_t)n;
		p = c->key + 2;
		take_str(&p, &c->rep.agent);
		take_str(&p, &c->rep.provider);
		if (c->rep.provider.n == 0)
			take_str(&p, &c->rep.host);
		take_str(&p, &c->rep.model);
		take_str(&p, &c->rep.model_requested);
		if (s->parts & CELL_AGENT_TYPE)
			take_str(&p, &c->rep.agent_type);
		if (s->parts & CELL_TENANT)
			take_str(&p, &c->rep.tenant);
		if (s->parts & CELL_SESSION)
			take_str(&p, &c->rep.session);
	}
	c->models_differ = models_differ(&c->rep);
	if (pricing_record_needs_price(&c->rep))
		c->price = pricing_record_price(s->r->pricing, &c->rep);
out:
	return c;
}

/* The hash of a key of string numbers (CELL_REFKEY_LEN bytes), inline and a word at a time. */
static inline uint64_t refkey_hash(const unsigned char *k)
{
	uint64_t h = 0x9e3779b97f4a7c15ull, w;

	for (size_t i = 0; i < CELL_REFKEY_LEN; i += 8) {
		memcpy(&w, k + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return h;
}

static inline int refkey_equal(const unsigned char *a, const unsigned char *b)
{
	uint64_t x, y, diff = 0;

	for (size_t i = 0; i < CELL_REFKEY_LEN; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		diff |= x ^ y;
	}
	return diff == 0;
}

/* rec's cell, made when new. NULL when out of memory, past SCAN_CELLS_MAX or for a name too
 * long: the scan then bails out. */
static struct cell *cell_of(struct worker *w, const struct record *rec)
{
	unsigned char key[CELL_KEY_MAX];
	struct cells *cs = &w->cells;
	struct cell *c = NULL;
	size_t n = cell_key(w->s->parts, w->slice->db, rec, key), slot;
	uint64_t h;
	int refs;

	if (n == 0)
		goto out;
	refs = key[0] == CELL_KEY_REFS;
	h = refs ? refkey_hash(key) : report_key_hash(key, n);
	for (slot = cs->cap ? h & (cs->cap - 1) : 0; cs->cap && cs->index[slot].c != NULL;
	     slot = (slot + 1) & (cs->cap - 1)) {
		c = cs->index[slot].c;
		if (cs->index[slot].hash != h)
			continue;
		/* A slot of a key of names holds zeros in refkey, never a key of numbers. */
		if (refs ? refkey_equal(cs->index[slot].refkey, key)
			 : c->keylen == n && memcmp(c->key, key, n) == 0)
			goto out;
	}
	c = NULL;
	if (cs->n == SCAN_CELLS_MAX || ((cs->n + 1) * 2 > cs->cap && cells_grow(cs) != 0))
		goto out;
	c = cell_new(w->s, rec, key, n);
	if (c == NULL)
		goto out;
	slot = h & (cs->cap - 1);
	while (cs->index[slot].c != NULL)
		slot = (slot + 1) & (cs->cap - 1);
	cs->index[slot].hash = h;
	cs->index[slot].c = c;
	if (refs)
		memcpy(cs->index[slot].refkey, key, CELL_REFKEY_LEN);
	cs->n++;
out:
	return c;
}

/* The copies of held records are cut from blocks of this size, freed with their list: a
 * slice holds every failure and the call after it, thousands, and a malloc and free each
 * was a tenth of a report's allocations. */
#define SIDE_BLOCK (64u << 10)

/* n bytes, 8-aligned, from l's blocks. NULL when out of memory. */
static void *side_alloc(struct side_list *l, size_t n)
{
	struct side_block *b = l->blocks;
	size_t cap;
	void *p = NULL;

	n = (n + 7) & ~(size_t)7;
	if (b == NULL || b->cap - b->used < n) {
		cap = n > SIDE_BLOCK ? n : SIDE_BLOCK;
		b = malloc(sizeof *b + cap);
		if (b == NULL)
			goto out;
		b->next = l->blocks;
		b->used = 0;
		b->cap = cap;
		l->blocks = b;
	}
	p = b->bytes + b->used;
	b->used += n;
out:
	return p;
}

/*
 * A copy of rec in l's blocks. A string with a number in its store's string table points into
 * that table, which lives until the stores close, after every slice is released: only the
 * others (inline in their record: error messages, long names, older records) are copied.
 * NULL when out of memory.
 */
static struct record *side_copy(struct side_list *l, const struct record *rec)
{
	struct record *cp = side_alloc(l, sizeof *cp);
	struct record_str *str;
	char *bytes;

	if (cp == NULL)
		goto out;
	*cp = *rec;
	for (size_t i = 0; i < RECORD_NSTRS; i++) {
		str = record_str_mut(cp, i);
		if (str->ref != 0 || str->n == 0)
			continue;
		bytes = side_alloc(l, str->n);
		if (bytes == NULL) {
			cp = NULL;
			goto out;
		}
		memcpy(bytes, str->p, str->n);
		str->p = bytes;
	}
out:
	return cp;
}

/* Keeps a copy of rec for the detector. Returns 0, or -1 (out of memory, or the cap). */
static int side_push(struct side_list *l, const struct record *rec, int priced, int64_t pusd)
{
	struct side *grown;
	size_t cap;
	int ret = -1;

	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 256;
		if (cap > SCAN_SIDE_MAX)
			goto out;
		grown = realloc(l->v, cap * sizeof *grown);
		if (grown == NULL)
			goto out;
		l->v = grown;
		l->cap = cap;
	}
	l->v[l->n].rec = side_copy(l, rec);
	if (l->v[l->n].rec == NULL)
		goto out;
	l->v[l->n].priced = priced;
	l->v[l->n].pusd = pusd;
	l->n++;
	ret = 0;
out:
	return ret;
}

static void side_release(struct side_list *l)
{
	struct side_block *b, *next;

	for (b = l->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Counts the thread's records for the progress line (thread 0 prints it); 1 when the scan
 * is to stop. */
static int scan_progress(struct worker *w)
{
	struct scan *s = w->s;
	uint64_t seen = __atomic_add_fetch(&s->seen, w->unreported, __ATOMIC_RELAXED);

	w->unreported = 0;
	if (w->index == 0)
		progress_update(&s->progress, seen);
	return __atomic_load_n(&s->bail, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&s->error, __ATOMIC_RELAXED);
}

static int scan_visit(const struct record *rec, void *arg)
{
	struct worker *w = arg;
	struct scan *s = w->s;
	struct pricing_parts parts;
	struct cell *c;
	uint64_t key = 0;
	int64_t pusd;
	int failed, priced, waiting = 0, created, ret = 1;
	void *slot;

	if (++w->unreported == SCAN_PROGRESS_EVERY && scan_progress(w))
		goto out;
	ret = 0;
	/* The usual report filters by nothing but time: two comparisons, not a call. */
	if (s->time_only ? rec->ts_ns < s->f->since_ns || rec->ts_ns >= s->f->until_ns
			 : !filter_match(s->f, rec))
		goto out;
	c = cell_of(w, rec);
	if (c == NULL)
		goto bail;
	failed = fallback_call_failed(rec);
	priced = pricing_record_parts_at(c->price, rec, &parts);
	pusd = priced ? pricing_parts_sum(&parts) : 0;
	report_row_count(&c->row, rec, failed, priced, &parts, pusd);
	if (c->lat != NULL) {
		c->lat[c->nlat++] = rec->latency_us;
		if (c->nlat == CELL_LAT_BATCH && cell_flush(&w->cells, c) != 0)
			goto bail;
	} else {
		/* exact values are appended in order, cheaply, until the histogram starts */
		report_lat_add(&w->cells.nhist, &c->row.lat, rec->latency_us);
		if (c->row.lat.lost)
			goto bail;
		if (c->row.lat.hist != NULL)
			c->lat = malloc(CELL_LAT_BATCH * sizeof *c->lat);
		if (c->row.lat.hist != NULL && c->lat == NULL)
			goto bail;
	}
	if (failed || w->failed.n > 0) {
		key = scan_session_key(rec);
		waiting = u64map_get(&w->failed, key) != NULL;
	}
	if ((failed || waiting || c->models_differ) &&
	    side_push(&w->slice->side, rec, priced, pusd) != 0)
		goto bail;
	if (failed) {
		slot = u64map_put(&w->failed, key, &created);
		if (slot == NULL)
			goto bail;
	} else if (waiting) {
		u64map_del(&w->failed, key);
	}
	goto out;
bail:
	__atomic_store_n(&s->bail, 1, __ATOMIC_RELAXED);
	ret = 1;
out:
	return ret;
}

/* The waiting sessions' next calls at the start of a slice (see the top of the file). */
struct boundary {
	struct scan *s;
	size_t db;
	struct u64map wanted; /* session keys */
	struct side_list found;
	int nomem;
};

static int boundary_visit(const struct record *rec, void *arg)
{
	struct boundary *b = arg;
	struct pricing_parts parts;
	const struct price *pr;
	uint64_t key;
	int priced, ret = 0;

	if (!filter_match(b->s->f, rec))
		goto out;
	key = fallback_session_key(rec, b->db);
	if (u64map_get(&b->wanted, key) == NULL)
		goto out;
	u64map_del(&b->wanted, key);
	pr = pricing_record_needs_price(rec) ? pricing_record_price(b->s->r->pricing, rec) : NULL;
	priced = pricing_record_parts_at(pr, rec, &parts);
	if (side_push(&b->found, rec, priced, priced ? pricing_parts_sum(&parts) : 0) != 0) {
		b->nomem = 1;
		ret = 1;
	}
	if (b->wanted.n == 0)
		ret = 1;
out:
	return ret;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_add_overflow(a, b, &r))
		r = b < 0 ? INT64_MIN : INT64_MAX;
	return r;
}

/* Finds into b->found the first call in slice sl of each session whose failure, from an
 * earlier slice, still waits within the window. Returns 0, a STORE_E* code, or 1 to bail. */
static int boundary_find(struct scan *s, struct slice *sl, struct boundary *b)
{
	struct fallback *fb = &s->r->fallback;
	struct fallback_pending *p;
	int64_t last_end = INT64_MIN, from = sat_add(sl->since_ns, -fb->window_ns);
	uint64_t key;
	size_t i;
	int created, rc = 0;

	b->s = s;
	b->db = sl->db;
	u64map_init(&b->wanted, 1, FALLBACK_MAX_PENDING);
	for (i = 0; i < fb->pending.cap; i++) {
		p = u64map_slot(&fb->pending, i, &key);
		if (p == NULL || p->end_ns < from)
			continue;
		if (u64map_put(&b->wanted, key, &created) == NULL) {
			rc = 1;
			goto out;
		}
		last_end = p->end_ns > last_end ? p->end_ns : last_end;
	}
	if (b->wanted.n == 0)
		goto out;
	/* A call later than the last failure's end plus the window is no fallback of it. */
	rc = store_scan(s->stores[sl->db], sl->since_ns,
			sat_add(sat_add(last_end, fb->window_ns), 1) < sl->until_ns
				? sat_add(sat_add(last_end, fb->window_ns), 1)
				: sl->until_ns,
			boundary_visit, b);
	/* boundary_visit stops the scan with 1 once every session is found */
	rc = b->nomem ? 1 : rc < 0 ? rc : 0;
out:
	u64map_release(&b->wanted);
	return rc;
}

/* Is a before b in a store's order (time, then id)? */
static int side_before(const struct side *a, const struct side *b)
{
	return a->rec->ts_ns < b->rec->ts_ns ||
	       (a->rec->ts_ns == b->rec->ts_ns && a->rec->id < b->rec->id);
}

/* Feeds one record to the detector. Returns 0, or 1 to bail. */
static int feed_one(struct scan *s, size_t db, const struct side *sd)
{
	struct fallback *fb = &s->r->fallback;
	struct fallback_verdict v;

	/* Near the cap the detector drops failures by time, which a subset of the records would
	 * not reproduce. */
	return fb->pending.n + 1 >= FALLBACK_MAX_PENDING ||
	       fallback_feed(fb, sd->rec, db, sd->priced, sd->pusd, &v) != 0;
}

/* Feeds slice sl (read, every earlier slice fed) to the detector: its held records merged in
 * order with the waiting sessions' next calls. Returns 0, a STORE_E* code, or 1 to bail. */
static int feed_slice(struct scan *s, struct slice *sl)
{
	struct boundary b = { 0 };
	size_t i = 0, j = 0;
	const struct side *next;
	int rc = 0;

	if (!sl->first_of_store && s->r->fallback.pending.n > 0)
		rc = boundary_find(s, sl, &b);
	while (rc == 0 && (i < sl->side.n || j < b.found.n)) {
		/* A waiting session's next call may be one the slice holds already: fed once. */
		if (i < sl->side.n && j < b.found.n && sl->side.v[i].rec->id == b.found.v[j].rec->id)
			j++;
		if (j == b.found.n || (i < sl->side.n && side_before(&sl->side.v[i], &b.found.v[j])))
			next = &sl->side.v[i++];
		else
			next = &b.found.v[j++];
		rc = feed_one(s, sl->db, next);
	}
	side_release(&b.found);
	side_release(&sl->side);
	return rc;
}

/* Records err's reason once; every later failure keeps the first. */
static void scan_fail(struct scan *s, size_t db, int rc)
{
	if (__atomic_exchange_n(&s->error, 1, __ATOMIC_RELAXED) == 0)
		snprintf(s->err, s->errlen, "cannot read '%s': %s", s->f->db[db],
			 store_strerror(rc));
}

/* Feeds every read slice whose predecessors are fed, in order. */
static void feed_ready(struct scan *s)
{
	struct slice *sl;
	int rc;

	pthread_mutex_lock(&s->lock);
	while (s->next_feed < s->nslices && s->slices[s->next_feed].done &&
	       !__atomic_load_n(&s->bail, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&s->error, __ATOMIC_RELAXED)) {
		sl = &s->slices[s->next_feed++];
		rc = feed_slice(s, sl);
		if (rc == 1)
			__atomic_store_n(&s->bail, 1, __ATOMIC_RELAXED);
		else if (rc != 0)
			scan_fail(s, sl->db, rc);
	}
	pthread_mutex_unlock(&s->lock);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct scan *s = w->s;
	struct slice *sl;
	size_t i;
	int rc;

	for (;;) {
		i = __atomic_fetch_add(&s->next_slice, 1, __ATOMIC_RELAXED);
		if (i >= s->nslices || __atomic_load_n(&s->bail, __ATOMIC_RELAXED) ||
		    __atomic_load_n(&s->error, __ATOMIC_RELAXED))
			break;
		sl = &s->slices[i];
		w->slice = sl;
		u64map_release(&w->failed);
		u64map_init(&w->failed, 1, FALLBACK_MAX_PENDING);
		rc = store_scan(s->stores[sl->db], sl->since_ns, sl->until_ns, scan_visit, w);
		if (rc < 0) {
			scan_fail(s, sl->db, rc);
			break;
		}
		pthread_mutex_lock(&s->lock);
		sl->done = 1;
		pthread_mutex_unlock(&s->lock);
		feed_ready(s);
	}
	scan_progress(w);
	return NULL;
}

/* Cuts each store's range (within the filter's) into nslices slices, or when nslices is 0
 * into SCAN_SLICES, with *nthreads cut down for a small store. Returns 0 or a STORE_E* code
 * (its store in *bad). */
static int plan_slices(struct scan *s, size_t *nthreads, size_t nslices, size_t *bad)
{
	int64_t first[FILTER_MAX_DB], last[FILTER_MAX_DB], lo, hi;
	uint64_t n[FILTER_MAX_DB], records = 0;
	size_t db, j, k;
	__int128 width;
	int rc = 0;

	for (db = 0; db < s->f->ndb && rc == 0; db++) {
		rc = store_span(s->stores[db], &first[db], &last[db], &n[db]);
		*bad = db;
		records += n[db];
	}
	if (rc != 0)
		goto out;
	if (nslices == 0) {
		while (*nthreads > 1 && records < *nthreads * SCAN_MIN_PER_THREAD)
			(*nthreads)--;
		nslices = SCAN_SLICES;
	}
	nslices = nslices > SCAN_SLICES_MAX ? SCAN_SLICES_MAX : nslices;
	s->slices = calloc(s->f->ndb * nslices, sizeof *s->slices);
	if (s->slices == NULL) {
		rc = STORE_ENOMEM;
		goto out;
	}
	for (db = 0; db < s->f->ndb; db++) {
		lo = first[db] > s->f->since_ns ? first[db] : s->f->since_ns;
		hi = sat_add(last[db], 1) < s->f->until_ns ? sat_add(last[db], 1) : s->f->until_ns;
		if (n[db] == 0 || hi <= lo)
			continue;
		width = (__int128)hi - lo;
		k = width < (__int128)nslices ? (size_t)width : nslices;
		for (j = 0; j < k; j++) {
			s->slices[s->nslices].db = db;
			s->slices[s->nslices].since_ns = (int64_t)(lo + width * j / k);
			s->slices[s->nslices].until_ns = (int64_t)(lo + width * (j + 1) / k);
			s->slices[s->nslices].first_of_store = j == 0;
			s->nslices++;
		}
	}
out:
	return rc;
}

/* Adds cell c to every row of r it belongs to. Returns 0, or -1 to bail. */
static int rollup_cell(struct report *r, const struct cell *c)
{
	struct report_group *groups[] = { &r->by_agent, &r->by_model, &r->by_provider, &r->by };
	struct report_row *row;
	size_t i;
	int ret = report_row_merge(&r->nhist, &r->total, &c->row);

	ret |= report_row_merge(&r->nhist, c->rep.flags & RECORD_LOCAL ? &r->local : &r->cloud,
				&c->row);
	for (i = 0; i < sizeof groups / sizeof groups[0] && ret == 0; i++) {
		if (groups[i]->nkeys == 0)
			continue;
		/* At REPORT_MAX_NAMES report_add starts "(other)" with whichever record comes
		 * next: an order a sum cannot give. */
		row = groups[i]->n + 1 < REPORT_MAX_NAMES ? report_row_of(groups[i], &c->rep) : NULL;
		ret = row ? report_row_merge(&r->nhist, row, &c->row) : -1;
	}
	return ret;
}

static int rollup(struct report *r, struct worker *w, size_t nworkers)
{
	size_t i, k;
	int ret = 0;

	for (i = 0; i < nworkers && ret == 0; i++)
		for (k = 0; k < w[i].cells.cap && ret == 0; k++)
			if (w[i].cells.index[k].c != NULL)
				ret = cell_flush(&w[i].cells, w[i].cells.index[k].c) |
				      rollup_cell(r, w[i].cells.index[k].c);
	r->fallback.calls = r->total.requests;
	r->fallback.cost_pusd = r->total.cost_pusd;
	return ret;
}

/* Puts r back as report_init left it. */
static void report_reset(struct report *r)
{
	enum report_key keys[REPORT_NKEYS];
	const struct pricing *pricing = r->pricing;
	size_t n = r->by.nkeys, top = r->top;
	int64_t window_ns = r->fallback.window_ns;

	memcpy(keys, r->by.keys, sizeof keys);
	report_release(r);
	report_init(r, pricing, keys, n, window_ns);
	r->top = top;
}

static unsigned cell_parts(const struct report_group *by)
{
	unsigned parts = 0;
	size_t i;

	for (i = 0; i < by->nkeys; i++) {
		if (by->keys[i] == REPORT_AGENT_TYPE)
			parts |= CELL_AGENT_TYPE;
		else if (by->keys[i] == REPORT_TENANT)
			parts |= CELL_TENANT;
		else if (by->keys[i] == REPORT_SESSION)
			parts |= CELL_SESSION;
		else if (by->keys[i] == REPORT_DAY || by->keys[i] == REPORT_HOUR)
			parts |= CELL_HOUR;
	}
	return parts;
}

int report_scan_parallel(struct report *r, const struct filter *f, size_t nthreads,
			 size_t nslices, char *err, size_t errlen)
{
	struct scan s = { .r = r, .f = f, .err = err, .errlen = errlen };
	struct worker w[REPORT_SCAN_THREADS];
	size_t i, started = 1, bad = 0;
	long ncpu;
	int rc, ret = -1;

	memset(w, 0, sizeof w);
	s.parts = cell_parts(&r->by);
	s.time_only = filter_time_only(f);
	rc = filter_open(f, s.stores, err, errlen);
	if (rc != 0)
		goto out;
	if (nthreads == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu > 0 ? (size_t)ncpu : 1;
	}
	nthreads = nthreads > REPORT_SCAN_THREADS ? REPORT_SCAN_THREADS : nthreads;
	rc = plan_slices(&s, &nthreads, nslices, &bad);
	if (rc != 0) {
		snprintf(err, errlen, "cannot read '%s': %s", f->db[bad], store_strerror(rc));
		goto close;
	}
	if (pthread_mutex_init(&s.lock, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		goto free_slices;
	}
	progress_init(&s.progress);
	for (i = 0; i < nthreads; i++) {
		w[i].s = &s;
		w[i].index = i;
		u64map_init(&w[i].failed, 1, FALLBACK_MAX_PENDING);
	}
	/* Thread 0 is this one; a thread that cannot start leaves its share to the others. */
	for (i = 1; i < nthreads && started == i; i++)
		if (pthread_create(&w[i].thread, NULL, worker_run, &w[i]) == 0)
			started++;
	worker_run(&w[0]);
	for (i = 1; i < started; i++)
		pthread_join(w[i].thread, NULL);
	feed_ready(&s);
	progress_done(&s.progress);
	ret = 0;
	if (s.error)
		ret = -1;
	else if (s.bail || s.next_feed < s.nslices || rollup(r, w, started) != 0)
		ret = 1;
	for (i = 0; i < nthreads; i++) {
		cells_release(&w[i].cells);
		u64map_release(&w[i].failed);
	}
	pthread_mutex_destroy(&s.lock);
free_slices:
	for (i = 0; i < s.nslices; i++)
		side_release(&s.slices[i].side);
	free(s.slices);
close:
	filter_close(s.stores, f->ndb);
out:
	if (ret == 1)
		report_reset(r);
	return ret;
}
