/*
 * store.c - the LMDB store shared by the shim (appending) and the CLI (reading).
 *
 * One LMDB file (MDB_NOSUBDIR) holds five named sub-databases: records keyed by time then id,
 * so that a time range is one cursor walk; ids mapping an id back to its records key; payloads;
 * counters; meta. docs/record-format.md gives every byte.
 *
 * Why it is shaped so:
 * - One write transaction per append (record, id, payload, counters, next_id): readers see all
 *   of an exchange or none, and a writer killed mid-transaction leaves nothing half-written,
 *   because LMDB only publishes a transaction by writing its meta page last.
 * - MDB_NOSYNC: a commit is a few pwrite()s into the page cache, microseconds, instead of an
 *   fsync, milliseconds. The kernel keeps what a killed process wrote; only a machine crash
 *   can lose the last commits. An agent's usage record is not worth an fsync on its hot path.
 * - MDB_NOTLS: a handle's read transactions are not tied to a thread, so any thread of the
 *   agent (or the CLI) may use the handle.
 * - Everything is validated before LMDB sees it: LMDB trusts its file, so a foreign or
 *   truncated file is refused here (magic number, file size against the last committed page)
 *   rather than met with SIGBUS in the middle of a report.
 * - The encoding work (record, zstd) happens before the write transaction begins, so the
 *   store-wide writer lock is held only for the B-tree updates.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/endian.h"
#include "store/payload.h"
#include "store/store.h"

/* The store's format, kept in meta "format". Bump it only for a change older code cannot read. */
#define STORE_FORMAT 1

/* LMDB's meta page: its magic number follows the 16-byte page header, in native order. */
#define STORE_LMDB_MAGIC 0xBEEFC0DEu
#define STORE_LMDB_MAGIC_OFF 16

/* LMDB's default key size cap (mdb_env_get_maxkeysize): counter names must fit in a key. */
#define STORE_KEY_MAX 511

#define STORE_NDBS 5

struct store {
	MDB_env *env;
	MDB_dbi records, ids, payloads, counters, meta;
	/*
	 * Set once the five sub-databases are open. A reader can open a file whose creating
	 * writer has not yet committed them; it then sees an empty store and tries again on each
	 * call, so a long-running reader (tail, dashboard) picks up the store once it exists.
	 */
	int have_dbis;
	unsigned flags;
	pid_t pid;                 /* the opener: LMDB handles must not cross a fork() */
	pthread_mutex_t dbi_lock;  /* LMDB: mdb_dbi_open must not run in two txns at once */
	/*
	 * Held shared by every transaction, exclusively to adopt a map grown by another
	 * process (MDB_MAP_RESIZED): mdb_env_set_mapsize needs no transaction to be active.
	 */
	pthread_rwlock_t resize_lock;
	struct payload_coder coder;
};

/* The LMDB or system code behind this thread's last error, for store_last_error. */
static __thread int store_last_rc;

/* Maps an LMDB or errno code to ours, remembering it for store_last_error. */
static int store_err(int rc)
{
	if (rc == 0)
		return 0;
	store_last_rc = rc;
	switch (rc) {
	case MDB_MAP_FULL:
		return STORE_EFULL;
	case MDB_NOTFOUND:
		return STORE_ENOTFOUND;
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INCOMPATIBLE:
		return STORE_EFORMAT;
	case ENOENT:
		return STORE_ENOENT;
	case EACCES:
	case EPERM:
	case EROFS:
		return STORE_EACCES;
	case ENOMEM:
		return STORE_ENOMEM;
	default:
		return STORE_EIO;
	}
}

const char *store_strerror(int err)
{
	switch (err) {
	case STORE_OK:
		return "success";
	case STORE_ENOENT:
		return "no such store";
	case STORE_EFORMAT:
		return "not a tokshim store, a newer format, or damaged";
	case STORE_EFULL:
		return "store is full (map size cap reached)";
	case STORE_ENOTFOUND:
		return "not found";
	case STORE_EIO:
		return "i/o error";
	case STORE_ENOMEM:
		return "out of memory";
	case STORE_EINVAL:
		return "invalid argument";
	case STORE_EACCES:
		return "permission denied";
	default:
		return "unknown error";
	}
}

const char *store_last_error(void)
{
	return store_last_rc ? mdb_strerror(store_last_rc) : "";
}

/* Creates the folders above path (mode 0700), like mkdir -p of its dirname. */
static int store_mkdir_parent(const char *path)
{
	char *dir = strdup(path);
	int rc = STORE_ENOMEM;

	if (dir == NULL)
		goto out;
	rc = 0;
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			rc = store_err(errno);
			goto dir_free;
		}
		*p = '/';
	}
dir_free:
	free(dir);
out:
	return rc;
}

/*
 * Looks at path before LMDB does. A missing file is STORE_ENOENT, or gets its folder when
 * STORE_CREATE is given; a file that is not regular or does not start with LMDB's meta page is
 * STORE_EFORMAT. A zero-length file is what an LMDB creation cut short leaves: a writer lets
 * LMDB initialise it, a reader has no store to read.
 */
static int store_check_file(const char *path, unsigned flags)
{
	unsigned char head[STORE_LMDB_MAGIC_OFF + 4];
	struct stat sb;
	uint32_t magic;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = store_err(errno);
		if (rc == STORE_ENOENT && (flags & STORE_CREATE))
			rc = store_mkdir_parent(path);
		goto out;
	}
	rc = STORE_EFORMAT;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		goto fd_close;
	if (sb.st_size == 0) {
		rc = (flags & STORE_READONLY) ? STORE_EFORMAT : 0;
		goto fd_close;
	}
	n = pread(fd, head, sizeof(head), 0);
	if (n != (ssize_t)sizeof(head))
		goto fd_close;
	memcpy(&magic, head + STORE_LMDB_MAGIC_OFF, 4);
	if (magic != STORE_LMDB_MAGIC)
		goto fd_close;
	rc = 0;
fd_close:
	close(fd);
out:
	return rc;
}

/*
 * Refuses a file shorter than its last committed page: LMDB would map past its end and the
 * first read there would raise SIGBUS. Writers extend the file before they publish a meta
 * page, so a healthy store never fails this, even while it grows.
 */
static int store_check_size(MDB_env *env)
{
	MDB_envinfo info;
	MDB_stat ms;
	struct stat sb;
	int fd, rc;

	rc = store_err(mdb_env_info(env, &info));
	if (rc != 0)
		goto out;
	rc = store_err(mdb_env_stat(env, &ms));
	if (rc != 0)
		goto out;
	rc = store_err(mdb_env_get_fd(env, &fd));
	if (rc != 0)
		goto out;
	if (fstat(fd, &sb) != 0) {
		rc = store_err(errno);
		goto out;
	}
	if ((uint64_t)sb.st_size < ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize)
		rc = STORE_EFORMAT;
out:
	return rc;
}

/*
 * Begins a transaction with the resize lock held shared; store_txn_end releases both. When
 * another process has grown the map past ours, adopts its size and tries once more.
 */
static int store_txn_begin(struct store *st, unsigned flags, MDB_txn **txn)
{
	int rc;

	pthread_rwlock_rdlock(&st->resize_lock);
	rc = mdb_txn_begin(st->env, NULL, flags, txn);
	if (rc == MDB_MAP_RESIZED) {
		pthread_rwlock_unlock(&st->resize_lock);
		pthread_rwlock_wrlock(&st->resize_lock);
		rc = mdb_env_set_mapsize(st->env, 0);
		pthread_rwlock_unlock(&st->resize_lock);
		pthread_rwlock_rdlock(&st->resize_lock);
		if (rc == 0)
			rc = mdb_txn_begin(st->env, NULL, flags, txn);
	}
	if (rc != 0)
		pthread_rwlock_unlock(&st->resize_lock);
	return store_err(rc);
}

/* Commits (commit != 0) or aborts txn; returns the commit's result. */
static int store_txn_end(struct store *st, MDB_txn *txn, int commit)
{
	int rc = 0;

	if (commit)
		rc = store_err(mdb_txn_commit(txn));
	else
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->resize_lock);
	return rc;
}

/* Reads a little-endian u64 (meta next_id). A value of another size is damage. */
static int store_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *v)
{
	MDB_val key = { strlen(name), (void *)name }, val;
	int rc = store_err(mdb_get(txn, dbi, &key, &val));

	if (rc == 0 && val.mv_size != 8)
		rc = STORE_EFORMAT;
	if (rc == 0)
		*v = endian_le64(val.mv_data);
	return rc;
}

static int store_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t v)
{
	unsigned char b[8];
	MDB_val key = { strlen(name), (void *)name }, val = { 8, b };

	endian_put_le64(b, v);
	return store_err(mdb_put(txn, dbi, &key, &val, 0));
}

/* Checks meta "format": present, 4 bytes, and a version this code reads. */
static int store_check_format(MDB_txn *txn, MDB_dbi meta, uint32_t *format)
{
	MDB_val key = { 6, "format" }, val;
	int rc = mdb_get(txn, meta, &key, &val);

	if (rc == MDB_NOTFOUND || (rc == 0 && val.mv_size != 4))
		rc = STORE_EFORMAT;
	else
		rc = store_err(rc);
	if (rc == 0) {
		*format = endian_le32(val.mv_data);
		if (*format == 0 || *format > STORE_FORMAT)
			rc = STORE_EFORMAT;
	}
	return rc;
}

/* Creates the sub-databases and meta of a new store inside the write txn. */
static int store_dbis_create(struct store *st, MDB_txn *txn)
{
	unsigned char b[4];
	MDB_val key = { 6, "format" }, val = { 4, b };
	int rc;

	rc = store_err(mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta));
	if (rc != 0)
		goto out;
	endian_put_le32(b, STORE_FORMAT);
	rc = store_err(mdb_put(txn, st->meta, &key, &val, 0));
	if (rc != 0)
		goto out;
	rc = store_put_u64(txn, st->meta, "next_id", 1);
out:
	return rc;
}

/*
 * Opens the five sub-databases, in a write transaction when create is set (then creating
 * them in an empty LMDB file). Returns 0; STORE_ENOTFOUND when the file is an empty LMDB
 * file and create is not set; STORE_EFORMAT when it holds something else than a tokshim
 * store of a format this code reads.
 */
static int store_dbis_open(struct store *st, int create)
{
	static const char *const names[STORE_NDBS - 1] = { "records", "ids", "payloads",
							    "counters" };
	MDB_dbi *dbis[STORE_NDBS - 1] = { &st->records, &st->ids, &st->payloads, &st->counters };
	unsigned dbflags = create ? MDB_CREATE : 0;
	MDB_txn *txn;
	MDB_dbi main_dbi;
	MDB_stat ms;
	uint32_t format;
	int rc, commit = 0;

	pthread_mutex_lock(&st->dbi_lock);
	rc = 0;
	if (__atomic_load_n(&st->have_dbis, __ATOMIC_ACQUIRE))
		goto unlock;
	rc = store_txn_begin(st, create ? 0 : MDB_RDONLY, &txn);
	if (rc != 0)
		goto unlock;
	rc = mdb_dbi_open(txn, "meta", 0, &st->meta);
	if (rc == MDB_NOTFOUND) {
		/* No meta: a new store if the file holds nothing at all, else someone else's. */
		rc = store_err(mdb_dbi_open(txn, NULL, 0, &main_dbi));
		if (rc == 0)
			rc = store_err(mdb_stat(txn, main_dbi, &ms));
		if (rc == 0 && ms.ms_entries != 0)
			rc = STORE_EFORMAT;
		if (rc == 0)
			rc = create ? store_dbis_create(st, txn) : STORE_ENOTFOUND;
		if (rc != 0)
			goto txn_abort;
	} else {
		rc = store_err(rc);
		if (rc == STORE_ENOTFOUND)
			rc = STORE_EFORMAT; /* "meta" named something else than a database */
		if (rc == 0)
			rc = store_check_format(txn, st->meta, &format);
		if (rc != 0)
			goto txn_abort;
	}
	for (int i = 0; i < STORE_NDBS - 1; i++) {
		rc = store_err(mdb_dbi_open(txn, names[i], dbflags, dbis[i]));
		if (rc == STORE_ENOTFOUND)
			rc = STORE_EFORMAT;
		if (rc != 0)
			goto txn_abort;
	}
	commit = 1;
txn_abort:
	/* Committing, even a read txn, is what keeps the opened handles for later txns. */
	rc = store_txn_end(st, txn, commit) ?: rc;
	if (rc == 0)
		__atomic_store_n(&st->have_dbis, 1, __ATOMIC_RELEASE);
unlock:
	pthread_mutex_unlock(&st->dbi_lock);
	return rc;
}

/*
 * Common entry of every call after open: refuses a handle carried across fork(), and opens the
 * sub-databases of a store created since a reader opened it. Returns 0, STORE_ENOTFOUND when
 * there is still no store in the file (an empty result for the caller), or an error.
 */
static int store_ready(struct store *st)
{
	if (st == NULL || st->pid != getpid())
		return STORE_EINVAL;
	if (__atomic_load_n(&st->have_dbis, __ATOMIC_ACQUIRE))
		return 0;
	return store_dbis_open(st, 0);
}

/* store_ready, then a read txn. STORE_ENOTFOUND: the file holds no store yet. */
static int store_read_begin(struct store *st, MDB_txn **txn)
{
	int rc = store_ready(st);

	if (rc == 0)
		rc = store_txn_begin(st, MDB_RDONLY, txn);
	return rc;
}

int store_open(struct store **out, const char *path, unsigned flags, uint64_t map_size)
{
	unsigned envflags = MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOTLS;
	struct store *st = NULL;
	int rc = STORE_EINVAL, dead;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || path == NULL || *path == '\0' ||
	    (flags & ~(unsigned)(STORE_READONLY | STORE_CREATE)) != 0 ||
	    (flags & STORE_READONLY && flags & STORE_CREATE))
		goto out;
	if (flags & STORE_READONLY)
		envflags |= MDB_RDONLY;
	rc = store_check_file(path, flags);
	if (rc != 0)
		goto out;
	rc = STORE_ENOMEM;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto out;
	st->flags = flags;
	st->pid = getpid();
	if (pthread_mutex_init(&st->dbi_lock, NULL) != 0)
		goto st_free;
	if (pthread_rwlock_init(&st->resize_lock, NULL) != 0)
		goto mutex_destroy;
	if (payload_coder_init(&st->coder) != 0)
		goto rwlock_destroy;
	rc = store_err(mdb_env_create(&st->env));
	if (rc != 0)
		goto coder_release;
	rc = store_err(mdb_env_set_maxdbs(st->env, STORE_NDBS));
	/* A reader given no size maps what the writers set (the file's own), so store_info
	 * reports the writers' cap rather than a default of ours. */
	if (rc == 0 && (map_size != 0 || !(flags & STORE_READONLY)))
		rc = store_err(mdb_env_set_mapsize(st->env, map_size ? map_size
								: STORE_DEFAULT_MAP_SIZE));
	if (rc == 0)
		rc = store_err(mdb_env_open(st->env, path, envflags, 0600));
	if (rc == 0)
		rc = store_check_size(st->env);
	if (rc != 0)
		goto env_close;
	/* Frees the reader slots of processes killed while reading, so they cannot pin pages. */
	if (!(flags & STORE_READONLY))
		mdb_reader_check(st->env, &dead);
	rc = store_dbis_open(st, 0);
	if (rc == STORE_ENOTFOUND)
		rc = (flags & STORE_READONLY) ? 0 : store_dbis_open(st, 1);
	if (rc != 0)
		goto env_close;
	*out = st;
	goto out;
env_close:
	mdb_env_close(st->env);
coder_release:
	payload_coder_release(&st->coder);
rwlock_destroy:
	pthread_rwlock_destroy(&st->resize_lock);
mutex_destroy:
	pthread_mutex_destroy(&st->dbi_lock);
st_free:
	free(st);
out:
	return rc;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	/*
	 * In a forked child the handle is the parent's: mdb_env_close would clear the parent's
	 * reader slots in the shared lock file. Only our own memory is freed.
	 */
	if (st->pid == getpid()) {
		mdb_env_close(st->env);
		payload_coder_release(&st->coder);
		pthread_rwlock_destroy(&st->resize_lock);
		pthread_mutex_destroy(&st->dbi_lock);
	}
	free(st);
}

static int store_deltas_valid(const struct store_counter_delta *deltas, size_t n)
{
	if (n != 0 && deltas == NULL)
		return 0;
	for (size_t i = 0; i < n; i++) {
		size_t len;

		if (deltas[i].name == NULL)
			return 0;
		len = strlen(deltas[i].name);
		if (len == 0 || len > STORE_KEY_MAX)
			return 0;
	}
	return 1;
}

/* Adds each delta to its counter inside txn (a missing counter starts at 0). */
static int store_counters_apply(struct store *st, MDB_txn *txn,
				const struct store_counter_delta *deltas, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		MDB_val key = { strlen(deltas[i].name), (void *)deltas[i].name }, val;
		unsigned char b[8];
		uint64_t v = 0;

		rc = mdb_get(txn, st->counters, &key, &val);
		if (rc == 0 && val.mv_size != 8) {
			rc = STORE_EFORMAT;
			break;
		}
		if (rc == 0)
			v = endian_le64(val.mv_data);
		else if (rc != MDB_NOTFOUND)
			break;
		/* Unsigned, so that a counter wraps instead of overflowing into UB. */
		endian_put_le64(b, v + (uint64_t)deltas[i].delta);
		val.mv_size = 8;
		val.mv_data = b;
		rc = mdb_put(txn, st->counters, &key, &val, 0);
	}
	return store_err(rc);
}

/* The records key: be64(ts_ns) ‖ be64(id), so LMDB's byte order is time order. */
static void store_record_key(unsigned char key[16], int64_t ts_ns, uint64_t id)
{
	endian_put_be64(key, (uint64_t)ts_ns);
	endian_put_be64(key + 8, id);
}

/*
 * Appends leave part of the map to counter-only transactions: once LMDB itself reports the
 * map full, even updating a counter needs fresh pages, so the drops of a full store could
 * never be counted. Appends stop at the cap minus this reserve; counters may use it, and
 * steady counter updates reuse the pages they free. Bounds: [128 KiB, 4 MiB], 1/16 between.
 */
#define STORE_RESERVE_MIN (128u << 10)
#define STORE_RESERVE_MAX (4u << 20)
/* Pages an append may touch besides its data: copies along each B-tree path, the free list. */
#define STORE_APPEND_SLACK_PAGES 16

/* Inside a write txn: is there room for an append of bytes outside the counters' reserve?
 * Returns 0 or STORE_EFULL. The file's last page bounds what is in use: the store only grows,
 * so its free list holds little more than the copies of recent transactions. */
static int store_room(struct store *st, size_t bytes)
{
	MDB_envinfo info;
	MDB_stat ms;
	uint64_t used, need, reserve;
	int rc = 0;

	if (mdb_env_info(st->env, &info) != 0 || mdb_env_stat(st->env, &ms) != 0)
		goto out; /* LMDB will say MDB_MAP_FULL itself if it must */
	reserve = info.me_mapsize / 16;
	if (reserve < STORE_RESERVE_MIN)
		reserve = STORE_RESERVE_MIN;
	if (reserve > STORE_RESERVE_MAX)
		reserve = STORE_RESERVE_MAX;
	used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	need = bytes + (uint64_t)STORE_APPEND_SLACK_PAGES * ms.ms_psize;
	if (used + need + reserve > info.me_mapsize)
		rc = STORE_EFULL;
out:
	return rc;
}

/* Writes what store_append encoded, in the caller's write txn; *id receives the new id. */
static int store_append_txn(struct store *st, MDB_txn *txn, int64_t ts_ns,
			    const unsigned char *enc, size_t enc_len, const unsigned char *pay,
			    size_t pay_len, const struct store_counter_delta *deltas,
			    size_t ndeltas, uint64_t *id)
{
	unsigned char rkey[16], ikey[8];
	MDB_val key, val;
	int rc;

	rc = store_room(st, enc_len + pay_len);
	if (rc != 0)
		goto out;
	rc = store_get_u64(txn, st->meta, "next_id", id);
	if (rc == STORE_ENOTFOUND)
		rc = STORE_EFORMAT;
	if (rc != 0)
		goto out;
	store_record_key(rkey, ts_ns, *id);
	endian_put_be64(ikey, *id);
	key = (MDB_val){ 16, rkey };
	val = (MDB_val){ enc_len, (void *)enc };
	rc = store_err(mdb_put(txn, st->records, &key, &val, MDB_NOOVERWRITE));
	if (rc != 0)
		goto out;
	/* Ids only grow, so both id-keyed puts are appends: no B-tree search, full pages. */
	key = (MDB_val){ 8, ikey };
	val = (MDB_val){ 16, rkey };
	rc = store_err(mdb_put(txn, st->ids, &key, &val, MDB_APPEND));
	if (rc != 0)
		goto out;
	if (pay != NULL) {
		val = (MDB_val){ pay_len, (void *)pay };
		rc = store_err(mdb_put(txn, st->payloads, &key, &val, MDB_APPEND));
		if (rc != 0)
			goto out;
	}
	rc = store_counters_apply(st, txn, deltas, ndeltas);
	if (rc == 0)
		rc = store_put_u64(txn, st->meta, "next_id", *id + 1);
out:
	return rc;
}

/*
 * Appends recs[0..n) in one write transaction: pl (n == 1 only) and the deltas go with the
 * first record. Each record is encoded inside the transaction (record_encode is quick); the
 * payload, whose compression is not, is encoded before it. Ids are consecutive within one
 * transaction, so the i-th record's id is the first one plus i.
 */
static int store_append_n(struct store *st, struct record *recs, size_t n,
			  const struct payload *pl, const struct store_counter_delta *deltas,
			  size_t ndeltas)
{
	struct record copy;
	unsigned char *enc, *pay = NULL;
	size_t pay_len = 0, i;
	MDB_txn *txn;
	uint64_t id, first = 0;
	int rc = STORE_EINVAL, len;

	if (recs == NULL || n == 0 || n > STORE_BATCH_MAX || (pl != NULL && n != 1) ||
	    !store_deltas_valid(deltas, ndeltas))
		goto out;
	/* Negative times would sort after every real one in the big-endian key. */
	for (i = 0; i < n; i++) {
		if (recs[i].ts_ns < 0)
			goto out;
	}
	rc = store_ready(st);
	if (rc != 0)
		goto out;
	rc = STORE_ENOMEM;
	enc = malloc(RECORD_ENCODED_MAX);
	if (enc == NULL)
		goto out;
	if (pl != NULL) {
		rc = payload_encode(&st->coder, pl, &pay, &pay_len);
		if (rc != 0)
			goto enc_free;
	}
	rc = store_txn_begin(st, 0, &txn);
	if (rc != 0)
		goto pay_free;
	for (i = 0; i < n && rc == 0; i++) {
		copy = recs[i];
		if (pl != NULL)
			copy.flags |= RECORD_PAYLOAD;
		else
			copy.flags &= ~(uint32_t)RECORD_PAYLOAD;
		len = record_encode(&copy, enc, RECORD_ENCODED_MAX);
		if (len < 0) {
			rc = len;
			break;
		}
		rc = store_append_txn(st, txn, copy.ts_ns, enc, (size_t)len, pay, pay_len,
				      i == 0 ? deltas : NULL, i == 0 ? ndeltas : 0, &id);
		if (i == 0)
			first = id;
	}
	/* A failed put (MDB_MAP_FULL among them) leaves the txn unusable: it is aborted whole. */
	rc = store_txn_end(st, txn, rc == 0) ?: rc;
	for (i = 0; i < n && rc == 0; i++) {
		recs[i].id = first + i;
		if (pl != NULL)
			recs[i].flags |= RECORD_PAYLOAD;
		else
			recs[i].flags &= ~(uint32_t)RECORD_PAYLOAD;
	}
pay_free:
	free(pay);
enc_free:
	free(enc);
out:
	return rc;
}

int store_append(struct store *st, struct record *rec, const struct payload *pl,
		 const struct store_counter_delta *deltas, size_t ndeltas)
{
	return store_append_n(st, rec, 1, pl, deltas, ndeltas);
}

int store_append_batch(struct store *st, struct record *recs, size_t n)
{
	return store_append_n(st, recs, n, NULL, NULL, 0);
}

int store_counters_add(struct store *st, const struct store_counter_delta *deltas, size_t n)
{
	MDB_txn *txn;
	int rc = STORE_EINVAL;

	if (!store_deltas_valid(deltas, n))
		goto out;
	rc = store_ready(st);
	if (rc != 0)
		goto out;
	rc = store_txn_begin(st, 0, &txn);
	if (rc != 0)
		goto out;
	rc = store_counters_apply(st, txn, deltas, n);
	rc = store_txn_end(st, txn, rc == 0) ?: rc;
out:
	return rc;
}

/* Decodes one records entry (key and value) and hands it to fn. */
static int store_emit(const MDB_val *key, const MDB_val *val, store_record_fn fn, void *arg,
		      int *fn_rc)
{
	struct record rec;
	int rc = STORE_EFORMAT;

	if (key->mv_size != 16)
		goto out;
	rec.id = endian_be64((const unsigned char *)key->mv_data + 8);
	rc = record_decode(val->mv_data, val->mv_size, &rec);
	if (rc == 0)
		*fn_rc = fn(&rec, arg);
out:
	return rc;
}

/*
 * Called for each entry of a store_walk: returns 0 to go on, 1 to stop, or a STORE_E* code
 * to fail the walk.
 */
typedef int (*store_visit_fn)(const MDB_val *key, const MDB_val *val, void *ctx);

/* A walk gives back the pages it has read every this many entries (about 25 MB of records). */
#define STORE_WALK_RELEASE 65536

/*
 * Drops this process's mappings of the map's pages in [lo, hi) (a read-only handle only). A
 * scan reads the file once, front to back, through LMDB's map; every page it touches stays
 * counted in the process's resident set until unmapped, so a report over 10 million records
 * (~3.5 GB) would hold the whole file. The map is a shared read-only file mapping:
 * MADV_DONTNEED only removes the page-table entries, the pages stay in the kernel's page cache,
 * and a later access (the cursor's own pages, branch pages) faults the same bytes back in at
 * the same address. Nothing is lost when it fails, so its result is ignored.
 */
static void store_release_pages(struct store *st, uintptr_t lo, uintptr_t hi)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);

	lo &= ~(page - 1);
	if ((st->flags & STORE_READONLY) && hi > lo)
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/*
 * Walks *dbi in key order from the first key >= *start (from the first key when start is
 * NULL) inside one read transaction. dbi is a pointer because a reader's handles may only be
 * opened by the store_ready call in here. Returns 0 or an error; a store whose databases do not
 * exist yet is walked as empty.
 */
static int store_walk(struct store *st, MDB_dbi *dbi, MDB_val *start, store_visit_fn visit,
		      void *ctx)
{
	MDB_val key = { 0, NULL }, val;
	MDB_cursor *cur;
	MDB_txn *txn;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	uint64_t seen = 0;
	int rc;

	rc = store_read_begin(st, &txn);
	if (rc != 0)
		goto out;
	rc = store_err(mdb_cursor_open(txn, *dbi, &cur));
	if (rc != 0)
		goto txn_abort;
	if (start != NULL)
		key = *start;
	rc = mdb_cursor_get(cur, &key, &val, start != NULL ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0) {
		rc = visit(&key, &val, ctx);
		if (rc != 0)
			break;
		/* The span of the values read since the last release: leaf and overflow pages. */
		lo = (uintptr_t)val.mv_data < lo ? (uintptr_t)val.mv_data : lo;
		hi = (uintptr_t)val.mv_data + val.mv_size > hi ?
		     (uintptr_t)val.mv_data + val.mv_size : hi;
		if (++seen % STORE_WALK_RELEASE == 0) {
			store_release_pages(st, lo, hi);
			lo = UINTPTR_MAX;
			hi = 0;
		}
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	rc = rc == MDB_NOTFOUND || rc == 1 ? 0 : store_err(rc);
	mdb_cursor_close(cur);
txn_abort:
	store_txn_end(st, txn, 0);
out:
	/* Not found before a txn began: no store in the file yet, an empty walk. */
	return rc == STORE_ENOTFOUND ? 0 : rc;
}

struct store_scan_ctx {
	int64_t until_ns;
	store_record_fn fn;
	void *arg;
	int fn_rc;
};

static int store_scan_visit(const MDB_val *key, const MDB_val *val, void *ctx)
{
	struct store_scan_ctx *sc = ctx;
	int rc;

	if (key->mv_size >= 8 && (int64_t)endian_be64(key->mv_data) >= sc->until_ns)
		return 1;
	rc = store_emit(key, val, sc->fn, sc->arg, &sc->fn_rc);
	return rc != 0 ? rc : sc->fn_rc != 0;
}

int store_scan(struct store *st, int64_t since_ns, int64_t until_ns, store_record_fn fn,
	       void *arg)
{
	struct store_scan_ctx sc = { until_ns, fn, arg, 0 };
	unsigned char start[16];
	MDB_val key = { 16, start };
	int rc = STORE_EINVAL;

	if (fn == NULL || st == NULL)
		goto out;
	/* No record has a negative time (store_append refuses them). */
	if (since_ns < 0)
		since_ns = 0;
	rc = 0;
	if (until_ns <= since_ns)
		goto out;
	store_record_key(start, since_ns, 0);
	rc = store_walk(st, &st->records, &key, store_scan_visit, &sc);
	if (rc == 0)
		rc = sc.fn_rc;
out:
	return rc;
}

int store_get(struct store *st, uint64_t id, store_record_fn fn, void *arg)
{
	unsigned char ikey[8];
	MDB_val key = { 8, ikey }, rkey, val;
	MDB_txn *txn;
	int rc = STORE_EINVAL, fn_rc = 0;

	if (fn == NULL)
		goto out;
	endian_put_be64(ikey, id);
	rc = store_read_begin(st, &txn);
	if (rc != 0)
		goto out;
	rc = store_err(mdb_get(txn, st->ids, &key, &rkey));
	if (rc != 0)
		goto txn_abort;
	rc = STORE_EFORMAT;
	if (rkey.mv_size != 16)
		goto txn_abort;
	rc = store_err(mdb_get(txn, st->records, &rkey, &val));
	/* An id whose record is missing is damage: ids and records are written together. */
	if (rc == STORE_ENOTFOUND)
		rc = STORE_EFORMAT;
	if (rc == 0)
		rc = store_emit(&rkey, &val, fn, arg, &fn_rc);
txn_abort:
	store_txn_end(st, txn, 0);
out:
	return rc;
}

int store_payload_get(struct store *st, uint64_t id, struct payload *out)
{
	unsigned char ikey[8];
	MDB_val key = { 8, ikey }, val;
	MDB_txn *txn;
	int rc = STORE_EINVAL;

	if (out == NULL)
		goto out;
	memset(out, 0, sizeof(*out));
	endian_put_be64(ikey, id);
	rc = store_read_begin(st, &txn);
	if (rc != 0)
		goto out;
	rc = store_err(mdb_get(txn, st->payloads, &key, &val));
	/* Decoding copies out of the map, so the payload outlives the txn. */
	if (rc == 0)
		rc = payload_decode(val.mv_data, val.mv_size, out);
	store_txn_end(st, txn, 0);
out:
	return rc;
}

struct store_counters_ctx {
	store_counter_fn fn;
	void *arg;
	int fn_rc;
};

static int store_counters_visit(const MDB_val *key, const MDB_val *val, void *ctx)
{
	struct store_counters_ctx *cc = ctx;
	char name[STORE_KEY_MAX + 1];

	if (key->mv_size > STORE_KEY_MAX || val->mv_size != 8)
		return STORE_EFORMAT;
	memcpy(name, key->mv_data, key->mv_size);
	name[key->mv_size] = '\0';
	cc->fn_rc = cc->fn(name, (int64_t)endian_le64(val->mv_data), cc->arg);
	return cc->fn_rc != 0;
}

int store_counters_scan(struct store *st, store_counter_fn fn, void *arg)
{
	struct store_counters_ctx cc = { fn, arg, 0 };
	int rc = STORE_EINVAL;

	if (fn == NULL || st == NULL)
		goto out;
	rc = store_walk(st, &st->counters, NULL, store_counters_visit, &cc);
	if (rc == 0)
		rc = cc.fn_rc;
out:
	return rc;
}

/* Adds up the sizes of every payload value (a walk of the payloads database). */
static int store_payload_bytes(struct store *st, MDB_txn *txn, uint64_t *total)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int rc;

	*total = 0;
	rc = store_err(mdb_cursor_open(txn, st->payloads, &cur));
	if (rc != 0)
		goto out;
	rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (rc == 0) {
		*total += val.mv_size;
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
	mdb_cursor_close(cur);
out:
	return rc;
}

int store_info(struct store *st, struct store_info *out)
{
	MDB_envinfo info;
	MDB_stat ms;
	MDB_txn *txn;
	struct stat sb;
	int rc = STORE_EINVAL, fd;

	if (out == NULL)
		goto out;
	memset(out, 0, sizeof(*out));
	rc = store_ready(st);
	if (rc == STORE_ENOTFOUND)
		rc = 0;
	if (rc != 0)
		goto out;
	out->next_id = 1;
	if (mdb_env_info(st->env, &info) == 0)
		out->map_bytes = info.me_mapsize;
	if (mdb_env_get_fd(st->env, &fd) == 0 && fstat(fd, &sb) == 0)
		out->file_bytes = (uint64_t)sb.st_size;
	if (!__atomic_load_n(&st->have_dbis, __ATOMIC_ACQUIRE))
		goto out;
	rc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (rc != 0)
		goto out;
	rc = store_err(mdb_stat(txn, st->records, &ms));
	if (rc != 0)
		goto txn_abort;
	out->records = ms.ms_entries;
	rc = store_err(mdb_stat(txn, st->payloads, &ms));
	if (rc != 0)
		goto txn_abort;
	out->payloads = ms.ms_entries;
	rc = store_payload_bytes(st, txn, &out->payload_bytes);
	if (rc == 0)
		rc = store_check_format(txn, st->meta, &out->format);
	if (rc == 0)
		rc = store_get_u64(txn, st->meta, "next_id", &out->next_id);
txn_abort:
	store_txn_end(st, txn, 0);
out:
	return rc;
}

/* ---- store_verify ------------------------------------------------------------------------ */

struct store_verify_ctx {
	store_problem_fn fn;
	void *arg;
	uint64_t problems;
	uint64_t next_id;
	int have_next_id;
};

static void store_problem(struct store_verify_ctx *vc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reports one problem (the first STORE_VERIFY_MAX_PROBLEMS of them) and counts it. */
static void store_problem(struct store_verify_ctx *vc, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	vc->problems++;
	if (vc->problems > STORE_VERIFY_MAX_PROBLEMS || vc->fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	vc->fn(line, vc->arg);
}

/* Checks meta: a format this code reads and an 8-byte next_id (kept in vc). */
static int store_verify_meta(struct store *st, MDB_txn *txn, struct store_verify_ctx *vc)
{
	uint32_t format;
	int rc;

	rc = store_check_format(txn, st->meta, &format);
	if (rc == STORE_EFORMAT)
		store_problem(vc, "meta 'format' is missing, malformed or newer than this tokshim");
	else if (rc != 0)
		goto out;
	rc = store_get_u64(txn, st->meta, "next_id", &vc->next_id);
	if (rc == STORE_EFORMAT || rc == STORE_ENOTFOUND)
		store_problem(vc, "meta 'next_id' is missing or not 8 bytes");
	else if (rc != 0)
		goto out;
	vc->have_next_id = rc == 0;
	rc = 0;
out:
	return rc;
}

/* Does the payload of id exist (*found) and decode? Returns 0 or an LMDB-level error. */
static int store_verify_payload(struct store *st, MDB_txn *txn, uint64_t id, int *found,
				int *decodes)
{
	unsigned char ikey[8];
	MDB_val key = { 8, ikey }, val;
	struct payload pl;
	int rc;

	endian_put_be64(ikey, id);
	*found = *decodes = 0;
	rc = mdb_get(txn, st->payloads, &key, &val);
	if (rc == MDB_NOTFOUND) {
		rc = 0;
		goto out;
	}
	rc = store_err(rc);
	if (rc != 0)
		goto out;
	*found = 1;
	rc = payload_decode(val.mv_data, val.mv_size, &pl);
	*decodes = rc == 0;
	payload_release(&pl);
	rc = rc == STORE_ENOMEM ? rc : 0;
out:
	return rc;
}

/* records → ids and payloads: every record decodes and is named by its id's entry. */
static int store_verify_records(struct store *st, MDB_txn *txn, struct store_verify_ctx *vc)
{
	MDB_cursor *cur;
	MDB_val key, val, ival;
	struct record rec;
	unsigned char ikey[8];
	MDB_val ik = { 8, ikey };
	int rc, found, decodes;

	rc = store_err(mdb_cursor_open(txn, st->records, &cur));
	if (rc != 0)
		goto out;
	rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (rc == 0) {
		uint64_t id;

		if (key.mv_size != 16) {
			store_problem(vc, "records: a key of %zu bytes (16 expected)", key.mv_size);
			goto next;
		}
		id = endian_be64((const unsigned char *)key.mv_data + 8);
		if (record_decode(val.mv_data, val.mv_size, &rec) != 0) {
			store_problem(vc, "record %" PRIu64 ": does not decode", id);
			goto next;
		}
		if ((uint64_t)rec.ts_ns != endian_be64(key.mv_data))
			store_problem(vc, "record %" PRIu64 ": its key's time is not its ts_ns", id);
		if (id == 0 || (vc->have_next_id && id >= vc->next_id))
			store_problem(vc, "record %" PRIu64 ": id not below meta next_id %" PRIu64,
				      id, vc->next_id);
		endian_put_be64(ikey, id);
		rc = mdb_get(txn, st->ids, &ik, &ival);
		if (rc == MDB_NOTFOUND)
			store_problem(vc, "record %" PRIu64 ": no ids entry", id);
		else if (rc != 0)
			break;
		else if (ival.mv_size != 16 || memcmp(ival.mv_data, key.mv_data, 16) != 0)
			store_problem(vc, "record %" PRIu64 ": its ids entry names another key", id);
		rc = store_verify_payload(st, txn, id, &found, &decodes);
		if (rc != 0)
			break;
		if ((rec.flags & RECORD_PAYLOAD) && !found)
			store_problem(vc, "record %" PRIu64 ": flagged with a payload, none stored",
				      id);
		else if (found && !decodes)
			store_problem(vc, "payload %" PRIu64 ": does not decode", id);
	next:
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
	mdb_cursor_close(cur);
out:
	return rc;
}

/* Looks up the record an id-keyed entry belongs to: *flags receives its flags, -1 when
 * there is none, -2 when it does not decode (the records walk has reported that). */
static int store_verify_owner(struct store *st, MDB_txn *txn, const MDB_val *ikey,
			      int64_t *flags)
{
	MDB_val rkey, val;
	struct record rec;
	int rc;

	*flags = -1;
	rc = mdb_get(txn, st->ids, (MDB_val *)ikey, &rkey);
	if (rc == 0 && rkey.mv_size == 16)
		rc = mdb_get(txn, st->records, &rkey, &val);
	if (rc == 0 && rkey.mv_size == 16)
		*flags = record_decode(val.mv_data, val.mv_size, &rec) == 0 ? (int64_t)rec.flags : -2;
	return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

/* ids → records and payloads → records: no entry without its record. */
static int store_verify_by_id(struct store *st, MDB_txn *txn, MDB_dbi dbi, const char *what,
			      struct store_verify_ctx *vc)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int64_t flags;
	int rc;

	rc = store_err(mdb_cursor_open(txn, dbi, &cur));
	if (rc != 0)
		goto out;
	rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (rc == 0) {
		uint64_t id;

		if (key.mv_size != 8) {
			store_problem(vc, "%s: a key of %zu bytes (8 expected)", what, key.mv_size);
			goto next;
		}
		id = endian_be64(key.mv_data);
		rc = store_verify_owner(st, txn, &key, &flags);
		if (rc != 0)
			break;
		if (flags == -1)
			store_problem(vc, "%s %" PRIu64 ": no record with this id", what, id);
		else if (flags >= 0 && dbi == st->payloads && !(flags & RECORD_PAYLOAD))
			store_problem(vc, "payload %" PRIu64 ": its record is not flagged with a "
				      "payload", id);
	next:
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
	mdb_cursor_close(cur);
out:
	return rc;
}

static int store_verify_counters(struct store *st, MDB_txn *txn, struct store_verify_ctx *vc)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int rc;

	rc = store_err(mdb_cursor_open(txn, st->counters, &cur));
	if (rc != 0)
		goto out;
	rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (rc == 0) {
		if (key.mv_size == 0 || key.mv_size > STORE_KEY_MAX ||
		    memchr(key.mv_data, '\0', key.mv_size) != NULL)
			store_problem(vc, "counters: a name of %zu bytes that is not 1 to %d bytes "
				      "of text", key.mv_size, STORE_KEY_MAX);
		else if (val.mv_size != 8)
			store_problem(vc, "counter '%.*s': a value of %zu bytes (8 expected)",
				      (int)(key.mv_size > 64 ? 64 : key.mv_size),
				      (const char *)key.mv_data, val.mv_size);
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
	mdb_cursor_close(cur);
out:
	return rc;
}

int store_verify(struct store *st, store_problem_fn fn, void *arg, uint64_t *nproblems)
{
	struct store_verify_ctx vc = { fn, arg, 0, 0, 0 };
	MDB_txn *txn;
	int rc = STORE_EINVAL;

	if (nproblems == NULL)
		goto out;
	*nproblems = 0;
	rc = store_read_begin(st, &txn);
	if (rc == STORE_ENOTFOUND) {
		store_problem(&vc, "the file holds no store yet (its creation never committed)");
		rc = 0;
		goto done;
	}
	if (rc != 0)
		goto out;
	rc = store_verify_meta(st, txn, &vc);
	if (rc == 0)
		rc = store_verify_records(st, txn, &vc);
	if (rc == 0)
		rc = store_verify_by_id(st, txn, st->ids, "ids", &vc);
	if (rc == 0)
		rc = store_verify_by_id(st, txn, st->payloads, "payload", &vc);
	if (rc == 0)
		rc = store_verify_counters(st, txn, &vc);
	store_txn_end(st, txn, 0);
done:
	*nproblems = vc.problems;
out:
	return rc;
}
