/*
 * store.c - the LMDB store shared by the shim (appending) and the CLI (reading).
 *
 * One LMDB file (MDB_NOSUBDIR) holds its named sub-databases: records keyed by time then id,
 * so that a time range is one walk in key order; ids mapping an id back to its records key,
 * followed by the record's payload; payloads (format 1 stores kept them there); counters;
 * meta; strings (the names records refer to by number); the budgets' reservations and events.
 * docs/record-format.md gives every byte.
 *
 * Why it is shaped so:
 * - One write transaction per append (record, id and payload, counters): readers see all
 *   of an exchange or none, and a writer killed mid-transaction leaves nothing half-written,
 *   because LMDB only publishes a transaction by writing its meta page last.
 * - An append writes as few B-trees as it can, since every B-tree a commit touches costs a
 *   page write per level: the payload shares the ids entry and the next id is read from the
 *   last ids key rather than kept in meta.
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
 * - A scan of millions of records reads the records tree with pread inside a read txn
 *   (store/leafscan.c) rather than through LMDB's map: every page is copied at memory speed
 *   instead of faulted in, nothing stays mapped behind it, and a damaged page is an error
 *   rather than a wild read. Lookups of a few entries go through LMDB as usual.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/endian.h"
#include "store/leafscan.h"
#include "store/lmdbpage.h"
#include "store/pagewalk.h"
#include "store/payload.h"
#include "store/store.h"
#include "store/strings.h"

/* STORE_FORMAT (store.h): bump it only for a change older code cannot read. 2: payloads ride
 * in their ids entry, and next_id follows the last id. 3: records of version 5, whose strings
 * may be references into the "strings" database (docs/record-format.md). Older stores are
 * read as they are, and a writer marks them current when it opens one. */

/* LMDB's meta page: its magic number follows the 16-byte page header, in native order. */
#define STORE_LMDB_MAGIC 0xBEEFC0DEu
#define STORE_LMDB_MAGIC_OFF 16

/* LMDB's default key size cap (mdb_env_get_maxkeysize): counter names must fit in a key. */
#define STORE_KEY_MAX 511

/* The five core sub-databases, the two budget ones (reservations, events) opened on first
 * use (a store written before budgets existed has no such databases), and strings (format 3:
 * a writer creates it; a handle of a store that has none yet looks for it again before each
 * transaction, store_ready). */
#define STORE_NDBS_CORE 5
#define STORE_NDBS (STORE_NDBS_CORE + 3)

struct store {
	MDB_env *env;
	MDB_dbi records, ids, payloads, counters, meta;
	MDB_dbi main; /* the main database: the named databases' records (store_scan's root) */
	MDB_dbi reservations, events; /* valid once have_budget_dbis is set */
	int have_budget_dbis;
	MDB_dbi strings;              /* valid once have_strings_dbi is set */
	int have_strings_dbi;
	/* A writer's: set once the store is marked STORE_FORMAT and has its strings database,
	 * which version 5 records need before the first one is written. */
	int writable;
	struct strings_cache names;   /* a writer's interned names (strings_intern) */
	struct strings_table strtab;  /* a reader's resolved ids (strings_resolve) */
	/*
	 * Set once the five sub-databases are open. A reader can open a file whose creating
	 * writer has not yet committed them; it then sees an empty store and tries again on each
	 * call, so a long-running reader (tail, dashboard) picks up the store once it exists.
	 */
	int have_dbis;
	unsigned flags;
	unsigned forks;            /* store_forks at open: LMDB handles must not cross a fork() */
	pthread_mutex_t dbi_lock;  /* LMDB: mdb_dbi_open must not run in two txns at once */
	/*
	 * Held shared by every transaction, exclusively to adopt a map grown by another
	 * process (MDB_MAP_RESIZED): mdb_env_set_mapsize needs no transaction to be active.
	 */
	pthread_rwlock_t resize_lock;
	struct payload_coder coder;
	size_t filled_pages;       /* the file is known to hold this many pages (store_fill_tail) */
};

/* Is rc one of our STORE_E* codes (rather than LMDB's or errno's)? */
static int store_own(int rc)
{
	return rc <= STORE_ENOENT && rc >= STORE_EBUDGET;
}

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
	case STORE_EBUDGET:
		return "a budget's cap would be crossed";
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
 * Refuses a file shorter than its last committed page when a tree reaches the part missing:
 * LMDB would map past its end and the first read there would raise SIGBUS. Writers extend the
 * file before they publish a meta page, and store_fill_tail covers the pages LMDB counts but
 * never writes; a writer killed between a commit and that call leaves only such free pages
 * missing, which pagewalk_reaches tells from damage. A writer then extends the file to the
 * meta's length, as store_fill_tail would have; a reader leaves the file as it is.
 */
static int store_check_size(MDB_env *env, int writer)
{
	MDB_envinfo info;
	MDB_stat ms;
	struct stat sb;
	uint64_t need;
	int fd, rc, reaches;

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
	need = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	if ((uint64_t)sb.st_size >= need)
		goto out;
	rc = pagewalk_reaches(fd, ms.ms_psize, info.me_last_txnid,
			      (uint64_t)sb.st_size / ms.ms_psize, &reaches);
	if (rc == 0 && reaches)
		rc = STORE_EFORMAT;
	if (rc == 0 && writer)
		(void)fallocate(fd, 0, 0, (off_t)need);
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

/*
 * Makes the file reach the last page of the meta just committed. LMDB does not write a page
 * that a transaction allocated and freed again (a "loose" page: deletions that merge pages do
 * this), yet counts it in the meta's last page: without this, a healthy store could be
 * shorter than store_check_size demands. fallocate never overwrites a byte another writer
 * has written since, so no lock is needed; failure leaves the file as LMDB left it.
 */
static void store_fill_tail(struct store *st)
{
	MDB_envinfo info;
	MDB_stat ms;
	struct stat sb;
	off_t need;
	int fd;

	if (mdb_env_info(st->env, &info) != 0 || info.me_last_pgno < st->filled_pages)
		return;
	if (mdb_env_stat(st->env, &ms) != 0 || mdb_env_get_fd(st->env, &fd) != 0)
		return;
	need = (off_t)(info.me_last_pgno + 1) * (off_t)ms.ms_psize;
	/* One fstat per growth of the file: an append that ends the file has written its end. */
	if (fstat(fd, &sb) != 0)
		return;
	if (sb.st_size >= need)
		st->filled_pages = (size_t)(sb.st_size / ms.ms_psize);
	else if (fallocate(fd, 0, 0, need) == 0)
		st->filled_pages = info.me_last_pgno + 1;
}

/* Commits (commit != 0) or aborts txn; returns the commit's result. */
static int store_txn_end(struct store *st, MDB_txn *txn, int commit)
{
	int rc = 0;

	if (commit) {
		rc = store_err(mdb_txn_commit(txn));
		if (rc == 0)
			store_fill_tail(st);
	} else {
		mdb_txn_abort(txn);
	}
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

/*
 * The id the next record gets: one past the last ids key, or meta next_id when that is more
 * (a new store; a store whose newest records were pruned, as prune raises next_id first).
 * Appends do not write next_id: the meta database's page would be one more page written by
 * every commit, and the ids entry an append writes anyway already says it.
 */
static int store_next_id_txn(struct store *st, MDB_txn *txn, uint64_t *id)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int rc;

	rc = store_get_u64(txn, st->meta, "next_id", id);
	if (rc == STORE_ENOTFOUND)
		rc = STORE_EFORMAT;
	if (rc != 0)
		goto out;
	rc = store_err(mdb_cursor_open(txn, st->ids, &cur));
	if (rc != 0)
		goto out;
	rc = mdb_cursor_get(cur, &key, &val, MDB_LAST);
	if (rc == 0 && key.mv_size != 8)
		rc = MDB_CORRUPTED;
	else if (rc == 0 && endian_be64(key.mv_data) >= *id)
		*id = endian_be64(key.mv_data) + 1;
	rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
	mdb_cursor_close(cur);
out:
	return rc;
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
	static const char *const names[STORE_NDBS_CORE - 1] = { "records", "ids", "payloads",
								 "counters" };
	MDB_dbi *dbis[STORE_NDBS_CORE - 1] = { &st->records, &st->ids, &st->payloads,
						&st->counters };
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
	for (int i = 0; i < STORE_NDBS_CORE - 1; i++) {
		rc = store_err(mdb_dbi_open(txn, names[i], dbflags, dbis[i]));
		if (rc == STORE_ENOTFOUND)
			rc = STORE_EFORMAT;
		if (rc != 0)
			goto txn_abort;
	}
	rc = store_err(mdb_dbi_open(txn, NULL, 0, &st->main));
	if (rc != 0)
		goto txn_abort;
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
 * Opens the strings database in txn (dbi_lock held), creating it when create is set.
 * Returns 0 or a STORE_E* code (STORE_ENOTFOUND: a reader's store has none yet).
 */
static int store_strings_dbi_txn(struct store *st, MDB_txn *txn, int create)
{
	int rc = 0;

	if (!__atomic_load_n(&st->have_strings_dbi, __ATOMIC_ACQUIRE))
		rc = store_err(mdb_dbi_open(txn, "strings", create ? MDB_CREATE : 0, &st->strings));
	return rc;
}

/*
 * Makes the store ready for this writer's appends, which write version 5 records: an older
 * store is marked STORE_FORMAT (a reader of its format would misread them, so from then on it
 * refuses the store) and gets its strings database, in one write transaction; its own
 * entries stay as they are. A current store costs one read transaction.
 */
static int store_make_writable(struct store *st)
{
	unsigned char b[4];
	MDB_val key = { 6, "format" }, val = { 4, b };
	MDB_txn *txn;
	uint32_t format;
	int rc = 0, write = 0;

	/* Every append asks: once the answer is yes, it costs a load, not the lock. */
	if (__atomic_load_n(&st->writable, __ATOMIC_ACQUIRE))
		goto out;
	pthread_mutex_lock(&st->dbi_lock);
	if (st->writable)
		goto unlock;
	for (;;) {
		rc = store_txn_begin(st, write ? 0 : MDB_RDONLY, &txn);
		if (rc != 0)
			goto unlock;
		rc = store_check_format(txn, st->meta, &format);
		if (rc == 0 && format != STORE_FORMAT && write) {
			endian_put_le32(b, STORE_FORMAT);
			rc = store_err(mdb_put(txn, st->meta, &key, &val, 0));
		}
		if (rc == 0 && (format == STORE_FORMAT || write))
			rc = store_strings_dbi_txn(st, txn, write);
		/* Committing, even a read txn, is what keeps the opened handle. */
		rc = store_txn_end(st, txn, rc == 0) ?: rc;
		if (rc == 0 && format == STORE_FORMAT && !write)
			break;
		if ((rc != 0 && rc != STORE_ENOTFOUND) || write)
			break;
		write = 1;
	}
	if (rc == 0) {
		__atomic_store_n(&st->have_strings_dbi, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&st->writable, 1, __ATOMIC_RELEASE);
	}
unlock:
	pthread_mutex_unlock(&st->dbi_lock);
out:
	return rc;
}

/*
 * Forks seen by this process: every fork() child adds one. A handle remembers the count at
 * open, so "is this the opener?" costs a load on every append instead of a getpid() system
 * call (glibc does not cache the pid), which was one of the dozen system calls of a commit.
 */
static unsigned store_forks;
static pthread_once_t store_fork_once = PTHREAD_ONCE_INIT;

static void store_fork_child(void)
{
	__atomic_add_fetch(&store_forks, 1, __ATOMIC_RELEASE);
}

static void store_fork_watch(void)
{
	pthread_atfork(NULL, NULL, store_fork_child);
}

static int store_in_opener(const struct store *st)
{
	return st->forks == __atomic_load_n(&store_forks, __ATOMIC_ACQUIRE);
}

/*
 * Opens the strings database for a reader whose store had none when it opened, in a
 * transaction of its own. Returns 0, or STORE_ENOTFOUND while the store still has none.
 */
static int store_strings_dbi(struct store *st)
{
	MDB_txn *txn;
	int rc;

	pthread_mutex_lock(&st->dbi_lock);
	rc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (rc != 0)
		goto unlock;
	rc = store_strings_dbi_txn(st, txn, 0);
	rc = store_txn_end(st, txn, rc == 0) ?: rc;
	if (rc == 0)
		__atomic_store_n(&st->have_strings_dbi, 1, __ATOMIC_RELEASE);
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
	int rc;

	if (st == NULL || !store_in_opener(st))
		return STORE_EINVAL;
	rc = __atomic_load_n(&st->have_dbis, __ATOMIC_ACQUIRE) ? 0 : store_dbis_open(st, 0);
	/* A store of an older format has no strings until a writer of this one opens it; a
	 * handle without them (a reader, or a writer whose own mark failed for want of room)
	 * looks again before each transaction until it has them. */
	if (rc == 0 && !__atomic_load_n(&st->have_strings_dbi, __ATOMIC_ACQUIRE) &&
	    store_strings_dbi(st) == STORE_ENOMEM)
		rc = STORE_ENOMEM;
	return rc;
}

/* store_ready, then a read txn. STORE_ENOTFOUND: the file holds no store yet. */
static int store_read_begin(struct store *st, MDB_txn **txn)
{
	int rc = store_ready(st);

	if (rc == 0)
		rc = store_txn_begin(st, MDB_RDONLY, txn);
	return rc;
}

/*
 * Refuses a store whose B-tree pages do not parse, before LMDB reads them: LMDB trusts its
 * pages, and one damaged page number, offset or size sends it past its map (SIGBUS) or its
 * buffers. pagewalk_check reads them with pread, inside a read transaction so that writers
 * reuse no page of what it walks. Named databases past PAGEWALK_CAP pages are checked along
 * their ends only, where writers append. Readers (the CLI) run it too: STORE_EFORMAT rather
 * than a crash, for the same tens of microseconds (docs/record-format.md, "Opening, and what
 * is refused").
 */
static int store_check_pages(struct store *st)
{
	MDB_txn *txn;
	MDB_stat ms;
	int fd, rc;

	rc = store_err(mdb_env_stat(st->env, &ms));
	if (rc == 0)
		rc = store_err(mdb_env_get_fd(st->env, &fd));
	if (rc == 0)
		rc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (rc != 0)
		goto out;
	rc = pagewalk_check(fd, ms.ms_psize, PAGEWALK_CAP, NULL);
	/* store_last_error then names LMDB's own word for it. */
	if (rc == STORE_EFORMAT)
		rc = store_err(MDB_CORRUPTED);
	(void)store_txn_end(st, txn, 0);
out:
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
	pthread_once(&store_fork_once, store_fork_watch);
	st->forks = __atomic_load_n(&store_forks, __ATOMIC_ACQUIRE);
	if (pthread_mutex_init(&st->dbi_lock, NULL) != 0)
		goto st_free;
	if (pthread_rwlock_init(&st->resize_lock, NULL) != 0)
		goto mutex_destroy;
	if (payload_coder_init(&st->coder) != 0)
		goto rwlock_destroy;
	if (strings_cache_init(&st->names) != 0)
		goto coder_release;
	if (strings_table_init(&st->strtab) != 0)
		goto names_release;
	rc = store_err(mdb_env_create(&st->env));
	if (rc != 0)
		goto strtab_release;
	rc = store_err(mdb_env_set_maxdbs(st->env, STORE_NDBS));
	/* A reader given no size maps what the writers set (the file's own), so store_info
	 * reports the writers' cap rather than a default of ours. */
	if (rc == 0 && (map_size != 0 || !(flags & STORE_READONLY)))
		rc = store_err(mdb_env_set_mapsize(st->env, map_size ? map_size
								: STORE_DEFAULT_MAP_SIZE));
	if (rc == 0)
		rc = store_err(mdb_env_open(st->env, path, envflags, 0600));
	if (rc == 0)
		rc = store_check_size(st->env, !(flags & STORE_READONLY));
	if (rc != 0)
		goto env_close;
	/* Frees the reader slots of processes killed while reading, so they cannot pin pages. */
	if (!(flags & STORE_READONLY))
		mdb_reader_check(st->env, &dead);
	/* After that: the check reads in a transaction of its own, which needs a reader slot. */
	rc = store_check_pages(st);
	if (rc != 0)
		goto env_close;
	rc = store_dbis_open(st, 0);
	if (rc == STORE_ENOTFOUND)
		rc = (flags & STORE_READONLY) ? 0 : store_dbis_open(st, 1);
	/* A full store cannot take the mark; appends to it fail anyway (each tries again),
	 * counters still work. */
	if (rc == 0 && !(flags & STORE_READONLY))
		rc = store_make_writable(st);
	if (rc == STORE_EFULL)
		rc = 0;
	if (rc != 0)
		goto env_close;
	*out = st;
	goto out;
env_close:
	mdb_env_close(st->env);
strtab_release:
	strings_table_release(&st->strtab);
names_release:
	strings_cache_release(&st->names);
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
	if (store_in_opener(st)) {
		mdb_env_close(st->env);
		strings_table_release(&st->strtab);
		strings_cache_release(&st->names);
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
#define STORE_RKEY_LEN 16

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
	rc = store_next_id_txn(st, txn, id);
	if (rc != 0)
		goto out;
	store_record_key(rkey, ts_ns, *id);
	endian_put_be64(ikey, *id);
	key = (MDB_val){ 16, rkey };
	val = (MDB_val){ enc_len, (void *)enc };
	/* Nearly every record is the latest so far: put as an append, LMDB fills each leaf before
	 * starting the next, where an ordinary put at the end splits the last leaf in half and
	 * leaves the store half empty, twice the pages for a report to read. A record that
	 * started before the last one (a long call finishing after a short later one) is refused
	 * as an append, untouched, and goes in by search. */
	rc = mdb_put(txn, st->records, &key, &val, MDB_APPEND | MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		rc = mdb_put(txn, st->records, &key, &val, MDB_NOOVERWRITE);
	rc = store_err(rc);
	if (rc != 0)
		goto out;
	/* Ids only grow, so the ids put is an append: no B-tree search, full pages. The payload
	 * rides in the same entry, after the records key: one B-tree written per commit instead
	 * of two, each of whose pages is a write of its own. */
	key = (MDB_val){ 8, ikey };
	val = (MDB_val){ STORE_RKEY_LEN + pay_len, NULL };
	rc = store_err(mdb_put(txn, st->ids, &key, &val, MDB_APPEND | MDB_RESERVE));
	if (rc != 0)
		goto out;
	memcpy(val.mv_data, rkey, STORE_RKEY_LEN);
	if (pay_len != 0)
		memcpy((unsigned char *)val.mv_data + STORE_RKEY_LEN, pay, pay_len);
	rc = store_counters_apply(st, txn, deltas, ndeltas);
out:
	return rc;
}

/*
 * Appends recs[0..n) in one write transaction: pl (n == 1 only) and the deltas go with the
 * first record. Each record is encoded inside the transaction (record_encode is quick); the
 * payload, whose compression is not, is encoded before it. Ids are consecutive within one
 * transaction, so the i-th record's id is the first one plus i.
 */
struct store_settle;
static int store_budget_dbis(struct store *st);
static int store_settle_before(struct store *st, MDB_txn *txn, const struct store_settle *se);
static int store_settle_after(struct store *st, MDB_txn *txn, const struct store_settle *se,
			      uint64_t id, int64_t ts_ns);

/*
 * Gives copy's strings their ids in the store's string table, inside the write txn (ref 0:
 * written inline). The provider's error message is never given one: it varies from call to
 * call and a report never groups by it.
 */
static int store_intern(struct strings_txn *sx, MDB_txn *txn, struct record *copy)
{
	struct record_str *s;
	int rc = 0;

	for (size_t i = 0; i < RECORD_NSTRS && rc == 0; i++) {
		s = record_str_mut(copy, i);
		s->ref = 0;
		if (i != RECORD_STR_ERROR_MESSAGE)
			rc = store_err(strings_intern(sx, txn, s->p, s->n, &s->ref));
	}
	return rc;
}

static int store_append_n(struct store *st, struct record *recs, size_t n,
			  const struct payload *pl, const struct store_counter_delta *deltas,
			  size_t ndeltas, const struct store_settle *settle)
{
	struct record copy;
	struct strings_txn sx;
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
	if (rc == 0)
		rc = store_make_writable(st);
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
	/* Budget usage rides in the record's own transaction (store_append_budget). */
	rc = settle != NULL ? store_budget_dbis(st) : 0;
	if (rc != 0)
		goto pay_free;
	rc = store_txn_begin(st, 0, &txn);
	if (rc != 0)
		goto pay_free;
	strings_txn_init(&sx, &st->names, st->strings);
	if (settle != NULL)
		rc = store_settle_before(st, txn, settle);
	for (i = 0; i < n && rc == 0; i++) {
		copy = recs[i];
		if (pl != NULL)
			copy.flags |= RECORD_PAYLOAD;
		else
			copy.flags &= ~(uint32_t)RECORD_PAYLOAD;
		rc = store_intern(&sx, txn, &copy);
		if (rc != 0)
			break;
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
	if (rc == 0 && settle != NULL)
		rc = store_settle_after(st, txn, settle, first, recs[0].ts_ns);
	/* A failed put (MDB_MAP_FULL among them) leaves the txn unusable: it is aborted whole. */
	rc = store_txn_end(st, txn, rc == 0) ?: rc;
	strings_txn_end(&sx, rc == 0);
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
	return store_append_n(st, rec, 1, pl, deltas, ndeltas, NULL);
}

int store_append_batch(struct store *st, struct record *recs, size_t n)
{
	return store_append_n(st, recs, n, NULL, NULL, 0, NULL);
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

/*
 * Where the tree of named database name lies in txn's snapshot, for reading it with pread
 * (store/leafscan.h): its root and depth as the main database records them, the file and its
 * page size. Returns 0 or a STORE_E* code.
 */
static int store_pages(struct store *st, MDB_txn *txn, const char *name, int *fd, size_t *psize,
		       struct leafscan_tree *t)
{
	MDB_val key = { strlen(name), (void *)name }, val;
	MDB_envinfo info;
	MDB_stat ms;
	int rc = store_err(mdb_get(txn, st->main, &key, &val));

	if (rc == 0 && val.mv_size != LP_DB_SIZE)
		rc = STORE_EFORMAT;
	if (rc == 0)
		rc = store_err(mdb_env_info(st->env, &info));
	if (rc == 0)
		rc = store_err(mdb_env_stat(st->env, &ms));
	if (rc == 0)
		rc = store_err(mdb_env_get_fd(st->env, fd));
	if (rc == 0) {
		*psize = ms.ms_psize;
		t->root = lp_u64((const unsigned char *)val.mv_data + LP_DB_ROOT);
		t->depth = lp_u16((const unsigned char *)val.mv_data + LP_DB_DEPTH);
		/* the latest meta's: no snapshot uses a page past it */
		t->end = (uint64_t)info.me_last_pgno + 1;
	}
	return rc;
}

/*
 * Resolves the string references record_decode left in rec (those its table did not hold
 * yet), decoded inside txn. In a read txn (load set) the strings go into the handle's table
 * and stay valid until store_close; in a write txn they point into txn's pages (what it wrote
 * itself may yet be aborted). Returns 0, STORE_EFORMAT for a reference to no string,
 * STORE_ENOMEM or an error.
 */
static int store_resolve(struct store *st, MDB_txn *txn, int load, struct record *rec)
{
	struct strings_pages from, *pages = NULL;
	struct record_str *s;
	int rc = 0;

	for (size_t i = 0; i < RECORD_NSTRS && rc == 0; i++) {
		s = record_str_mut(rec, i);
		if (s->ref == 0 || s->p != NULL)
			continue;
		/* A read txn finds the strings database by its snapshot's own record of it. A write
		 * txn reads it through the handle, which writers open before their first append (a
		 * handle opened later is not usable in a txn begun before it). */
		if (!load && !__atomic_load_n(&st->have_strings_dbi, __ATOMIC_ACQUIRE)) {
			rc = STORE_EFORMAT;
			break;
		}
		if (load && pages == NULL) {
			rc = store_pages(st, txn, "strings", &from.fd, &from.psize, &from.tree);
			pages = &from;
		}
		if (rc == 0)
			rc = store_err(strings_resolve(&st->strtab, txn, st->strings, pages, s));
	}
	return rc == STORE_ENOTFOUND ? STORE_EFORMAT : rc;
}

/*
 * Decodes one records entry (key and value) inside txn into rec: its id and time from the
 * key, its strings resolved (store_resolve). Returns 0 or a STORE_E* code.
 */
static int store_decode(struct store *st, MDB_txn *txn, int load, const MDB_val *key,
			const MDB_val *val, struct record *rec)
{
	int rc = STORE_EFORMAT;

	if (key->mv_size != STORE_RKEY_LEN)
		goto out;
	rec->id = endian_be64((const unsigned char *)key->mv_data + 8);
	/* Version 5 keeps the time in the key alone; older versions hold it again. */
	rec->ts_ns = (int64_t)endian_be64(key->mv_data);
	rc = record_decode(val->mv_data, val->mv_size, &st->strtab.tab, rec);
	if (rc > 0)
		rc = store_resolve(st, txn, load, rec);
out:
	return rc;
}

/* Decodes one records entry of a read txn and hands it to fn. */
static int store_emit(struct store *st, MDB_txn *txn, const MDB_val *key, const MDB_val *val,
		      store_record_fn fn, void *arg, int *fn_rc)
{
	struct record rec;
	int rc = store_decode(st, txn, 1, key, val, &rec);

	if (rc == 0)
		*fn_rc = fn(&rec, arg);
	return rc;
}

/*
 * Called for each entry of a store_txn_walk with the walk's cursor, which it may use to
 * delete that entry: returns 0 to go on, 1 to stop, or an LMDB or STORE_E* code to fail the
 * walk. key and val are valid for the call only.
 */
typedef int (*store_cursor_fn)(MDB_cursor *cur, const MDB_val *key, const MDB_val *val,
			       void *ctx);

/*
 * Walks dbi in key order inside txn, from the first key >= *start (from the first key when
 * start is NULL). Returns 0 or a STORE_E* code (the visitor's, or LMDB's mapped by store_err).
 */
static int store_txn_walk(MDB_txn *txn, MDB_dbi dbi, const MDB_val *start, store_cursor_fn visit,
			  void *ctx)
{
	MDB_val key = { 0, NULL }, val;
	MDB_cursor *cur;
	int rc;

	rc = store_err(mdb_cursor_open(txn, dbi, &cur));
	if (rc != 0)
		goto out;
	if (start != NULL)
		key = *start;
	rc = mdb_cursor_get(cur, &key, &val, start != NULL ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0) {
		rc = visit(cur, &key, &val, ctx);
		if (rc != 0)
			break;
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	/* A visitor's own STORE_E* code passes as it is; LMDB's are mapped. */
	rc = rc == MDB_NOTFOUND || rc == 1 ? 0 : store_own(rc) ? rc : store_err(rc);
	mdb_cursor_close(cur);
out:
	return rc;
}

/*
 * Walks *dbi (a small database: counters, events) in key order from its first key inside one
 * read transaction. dbi is a pointer because a reader's handles may only be opened by the
 * store_ready call in here. Returns 0 or an error; a store whose databases do not exist yet is
 * walked as empty.
 */
static int store_walk(struct store *st, MDB_dbi *dbi, store_cursor_fn visit, void *ctx)
{
	MDB_txn *txn;
	int rc;

	rc = store_read_begin(st, &txn);
	if (rc != 0)
		goto out;
	rc = store_txn_walk(txn, *dbi, NULL, visit, ctx);
	store_txn_end(st, txn, 0);
out:
	/* Not found before a txn began: no store in the file yet, an empty walk. */
	return rc == STORE_ENOTFOUND ? 0 : rc;
}

struct store_scan_ctx {
	struct store *st;
	MDB_txn *txn;
	int64_t until_ns;
	store_record_fn fn;
	void *arg;
	int fn_rc;
};

/* One records entry of a scan, in key order (leafscan_fn): 1 past until_ns or when fn says
 * to stop. */
static int store_scan_entry(const unsigned char *k, size_t klen, const unsigned char *v,
			    size_t vlen, void *ctx)
{
	struct store_scan_ctx *sc = ctx;
	MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
	int rc;

	if (klen >= 8 && (int64_t)endian_be64(k) >= sc->until_ns)
		return 1;
	rc = store_emit(sc->st, sc->txn, &key, &val, sc->fn, sc->arg, &sc->fn_rc);
	return rc != 0 ? rc : sc->fn_rc != 0;
}

/*
 * Reads the records of [since_ns, until_ns) with pread rather than through the map
 * (store/leafscan.h): a report reads each of millions of records once, and first touches
 * through the map cost a page fault a few pages. The walk runs inside a read txn, which pins
 * the snapshot's pages; the records decode as store_get's do.
 */
int store_scan(struct store *st, int64_t since_ns, int64_t until_ns, store_record_fn fn,
	       void *arg)
{
	struct store_scan_ctx sc = { st, NULL, until_ns, fn, arg, 0 };
	struct leafscan_tree tree;
	unsigned char start[16];
	size_t psize;
	int rc = STORE_EINVAL, fd;

	if (fn == NULL || st == NULL)
		goto out;
	/* No record has a negative time (store_append refuses them). */
	if (since_ns < 0)
		since_ns = 0;
	rc = 0;
	if (until_ns <= since_ns)
		goto out;
	store_record_key(start, since_ns, 0);
	rc = store_read_begin(st, &sc.txn);
	if (rc != 0)
		goto out;
	rc = store_pages(st, sc.txn, "records", &fd, &psize, &tree);
	if (rc == 0)
		rc = leafscan_walk(fd, psize, &tree, start, sizeof start, RECORD_ENCODED_MAX,
				   store_scan_entry, &sc);
	store_txn_end(st, sc.txn, 0);
	if (rc == 1)
		rc = sc.fn_rc;
out:
	/* Not found before a txn began: no store in the file yet, an empty scan. */
	return rc == STORE_ENOTFOUND ? 0 : rc;
}

int store_span(struct store *st, int64_t *first_ns, int64_t *last_ns, uint64_t *records)
{
	MDB_val key, val;
	MDB_cursor *cur;
	MDB_stat ms;
	MDB_txn *txn;
	int rc;

	*first_ns = *last_ns = 0;
	*records = 0;
	rc = store_read_begin(st, &txn);
	if (rc != 0)
		goto out;
	rc = store_err(mdb_stat(txn, st->records, &ms));
	if (rc != 0 || ms.ms_entries == 0)
		goto txn_end;
	*records = ms.ms_entries;
	rc = store_err(mdb_cursor_open(txn, st->records, &cur));
	if (rc != 0)
		goto txn_end;
	rc = store_err(mdb_cursor_get(cur, &key, &val, MDB_FIRST));
	if (rc == 0 && key.mv_size >= 8)
		*first_ns = (int64_t)endian_be64(key.mv_data);
	if (rc == 0)
		rc = store_err(mdb_cursor_get(cur, &key, &val, MDB_LAST));
	if (rc == 0 && key.mv_size >= 8)
		*last_ns = (int64_t)endian_be64(key.mv_data);
	mdb_cursor_close(cur);
txn_end:
	store_txn_end(st, txn, 0);
out:
	return rc == STORE_ENOTFOUND ? 0 : rc;
}

/*
 * An id's entry inside txn: *rkey its records key and, when pay is not NULL, *found whether
 * it has a payload and *pay the payload's bytes: in the entry itself after the key (format 2)
 * or, for a record a format 1 writer wrote, in payloads. Returns 0, STORE_ENOTFOUND for an
 * id with no entry, STORE_EFORMAT for an entry shorter than a key.
 */
static int store_id_lookup(struct store *st, MDB_txn *txn, const unsigned char ikey[8],
			   MDB_val *rkey, MDB_val *pay, int *found)
{
	MDB_val key = { 8, (void *)ikey }, val;
	int rc = store_err(mdb_get(txn, st->ids, &key, &val));

	if (rc == 0 && val.mv_size < STORE_RKEY_LEN)
		rc = STORE_EFORMAT;
	if (rc != 0 || pay == NULL)
		goto out;
	*found = val.mv_size > STORE_RKEY_LEN;
	*pay = (MDB_val){ val.mv_size - STORE_RKEY_LEN,
			  (unsigned char *)val.mv_data + STORE_RKEY_LEN };
	if (!*found) {
		rc = mdb_get(txn, st->payloads, &key, pay);
		*found = rc == 0;
		rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
	}
out:
	if (rc == 0)
		*rkey = (MDB_val){ STORE_RKEY_LEN, val.mv_data };
	return rc;
}

int store_get(struct store *st, uint64_t id, store_record_fn fn, void *arg)
{
	unsigned char ikey[8];
	MDB_val rkey, val;
	MDB_txn *txn;
	int rc = STORE_EINVAL, fn_rc = 0;

	if (fn == NULL)
		goto out;
	endian_put_be64(ikey, id);
	rc = store_read_begin(st, &txn);
	if (rc != 0)
		goto out;
	rc = store_id_lookup(st, txn, ikey, &rkey, NULL, NULL);
	if (rc != 0)
		goto txn_abort;
	rc = store_err(mdb_get(txn, st->records, &rkey, &val));
	/* An id whose record is missing is damage: ids and records are written together. */
	if (rc == STORE_ENOTFOUND)
		rc = STORE_EFORMAT;
	if (rc == 0)
		rc = store_emit(st, txn, &rkey, &val, fn, arg, &fn_rc);
txn_abort:
	store_txn_end(st, txn, 0);
out:
	return rc;
}

int store_payload_get(struct store *st, uint64_t id, struct payload *out)
{
	unsigned char ikey[8];
	MDB_val rkey, val;
	MDB_txn *txn;
	int rc = STORE_EINVAL, found;

	if (out == NULL)
		goto out;
	memset(out, 0, sizeof(*out));
	endian_put_be64(ikey, id);
	rc = store_read_begin(st, &txn);
	if (rc != 0)
		goto out;
	rc = store_id_lookup(st, txn, ikey, &rkey, &val, &found);
	if (rc == 0 && !found)
		rc = STORE_ENOTFOUND;
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

static int store_counters_visit(MDB_cursor *cur, const MDB_val *key, const MDB_val *val,
				void *ctx)
{
	struct store_counters_ctx *cc = ctx;
	char name[STORE_KEY_MAX + 1];

	(void)cur;
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
	rc = store_walk(st, &st->counters, store_counters_visit, &cc);
	if (rc == 0)
		rc = cc.fn_rc;
out:
	return rc;
}

/* A walk adding up payloads: the database's values hold them after skip bytes. */
struct store_payload_count {
	struct store_info *out;
	size_t skip;
};

/* Counts one payload and adds up its stored and held sizes; a value that is not a payload
 * counts its stored bytes only (verify reports it). An ids entry of the records key alone
 * has none. */
static int store_payload_bytes_visit(MDB_cursor *cur, const MDB_val *key, const MDB_val *val,
				     void *ctx)
{
	struct store_payload_count *pc = ctx;
	const unsigned char *p = (const unsigned char *)val->mv_data + pc->skip;
	uint64_t raw = 0;
	size_t n;
	int kept = 0;

	(void)cur;
	(void)key;
	if (val->mv_size <= pc->skip)
		return 0;
	n = val->mv_size - pc->skip;
	pc->out->payloads++;
	pc->out->payload_bytes += n;
	if (payload_sizes(p, n, &raw, &kept) == 0) {
		pc->out->payload_raw_bytes += raw;
		pc->out->payloads_kept += kept;
	}
	return 0;
}

/* The payloads in ids entries, and those a format 1 writer kept in payloads. */
static int store_payload_bytes(struct store *st, MDB_txn *txn, struct store_info *out)
{
	struct store_payload_count in_ids = { out, STORE_RKEY_LEN }, legacy = { out, 0 };
	int rc = store_txn_walk(txn, st->ids, NULL, store_payload_bytes_visit, &in_ids);

	return rc ?: store_txn_walk(txn, st->payloads, NULL, store_payload_bytes_visit, &legacy);
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
	/* Each string has two entries: its id's and its name's. */
	if (__atomic_load_n(&st->have_strings_dbi, __ATOMIC_ACQUIRE) &&
	    mdb_stat(txn, st->strings, &ms) == 0)
		out->strings = ms.ms_entries / 2;
	rc = store_payload_bytes(st, txn, out);
	if (rc == 0)
		rc = store_check_format(txn, st->meta, &out->format);
	if (rc == 0)
		rc = store_next_id_txn(st, txn, &out->next_id);
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
	/* The walk under way: its store, transaction, database and that database's name. */
	struct store *st;
	MDB_txn *txn;
	MDB_dbi dbi;
	const char *what;
	store_cursor_fn visit;
	/* progress: entries checked so far, told to tick (when set) as they go */
	store_tick_fn tick;
	void *tick_arg;
	uint64_t checked;
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
	rc = store_next_id_txn(st, txn, &vc->next_id);
	if (rc == STORE_EFORMAT || rc == STORE_ENOTFOUND)
		store_problem(vc, "meta 'next_id' is missing or not 8 bytes, or an ids key is not "
			      "8 bytes");
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
	MDB_val rkey, val;
	struct payload pl;
	int rc;

	endian_put_be64(ikey, id);
	*found = *decodes = 0;
	rc = store_id_lookup(st, txn, ikey, &rkey, &val, found);
	if (rc == STORE_ENOTFOUND || rc == STORE_EFORMAT) {
		rc = 0; /* the records walk reports the ids entry */
		goto out;
	}
	if (rc != 0 || !*found)
		goto out;
	rc = payload_decode(val.mv_data, val.mv_size, &pl);
	*decodes = rc == 0;
	payload_release(&pl);
	rc = rc == STORE_ENOMEM ? rc : 0;
out:
	return rc;
}

/* records → ids and payloads: every record decodes and is named by its id's entry. */
static int store_verify_record(MDB_cursor *cur, const MDB_val *key, const MDB_val *val,
			       void *ctx)
{
	struct store_verify_ctx *vc = ctx;
	MDB_val ival;
	struct record rec;
	unsigned char ikey[8];
	MDB_val ik = { 8, ikey };
	uint64_t id;
	int rc = 0, found, decodes;

	(void)cur;
	if (key->mv_size != 16) {
		store_problem(vc, "records: a key of %zu bytes (16 expected)", key->mv_size);
		goto out;
	}
	id = endian_be64((const unsigned char *)key->mv_data + 8);
	rec.ts_ns = (int64_t)endian_be64(key->mv_data);
	if (record_decode(val->mv_data, val->mv_size, &vc->st->strtab.tab, &rec) < 0) {
		store_problem(vc, "record %" PRIu64 ": does not decode", id);
		goto out;
	}
	/* Versions before 5 hold the time again in the value (it decoded, so it has two
	 * bytes of version): it must be the key's. */
	if (endian_le16(val->mv_data) < 5 && (uint64_t)rec.ts_ns != endian_be64(key->mv_data))
		store_problem(vc, "record %" PRIu64 ": its key's time is not its ts_ns", id);
	rc = store_resolve(vc->st, vc->txn, 1, &rec);
	if (rc == STORE_EFORMAT)
		store_problem(vc, "record %" PRIu64 ": names a string the strings table does "
			      "not hold", id);
	if (rc != STORE_EFORMAT && rc != 0)
		goto out;
	rc = 0;
	if (id == 0 || (vc->have_next_id && id >= vc->next_id))
		store_problem(vc, "record %" PRIu64 ": id not below next_id %" PRIu64,
			      id, vc->next_id);
	endian_put_be64(ikey, id);
	rc = mdb_get(vc->txn, vc->st->ids, &ik, &ival);
	if (rc == MDB_NOTFOUND)
		store_problem(vc, "record %" PRIu64 ": no ids entry", id);
	else if (rc != 0)
		goto out;
	else if (ival.mv_size < STORE_RKEY_LEN ||
		 memcmp(ival.mv_data, key->mv_data, STORE_RKEY_LEN) != 0)
		store_problem(vc, "record %" PRIu64 ": its ids entry names another key", id);
	rc = store_verify_payload(vc->st, vc->txn, id, &found, &decodes);
	if (rc != 0)
		goto out;
	if ((rec.flags & RECORD_PAYLOAD) && !found)
		store_problem(vc, "record %" PRIu64 ": flagged with a payload, none stored", id);
	else if (found && !decodes)
		store_problem(vc, "payload %" PRIu64 ": does not decode", id);
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
	rc = store_id_lookup(st, txn, ikey->mv_data, &rkey, NULL, NULL);
	if (rc == 0)
		rc = store_err(mdb_get(txn, st->records, &rkey, &val));
	if (rc == 0)
		*flags = record_decode(val.mv_data, val.mv_size, NULL, &rec) >= 0 ? (int64_t)rec.flags
										    : -2;
	return rc == STORE_ENOTFOUND || rc == STORE_EFORMAT ? 0 : rc;
}

/* ids → records and payloads → records (vc->dbi, named vc->what): no entry without its
 * record. */
static int store_verify_by_id(MDB_cursor *cur, const MDB_val *key, const MDB_val *val,
			      void *ctx)
{
	struct store_verify_ctx *vc = ctx;
	int64_t flags;
	uint64_t id;
	int rc = 0;

	(void)cur;
	if (key->mv_size != 8) {
		store_problem(vc, "%s: a key of %zu bytes (8 expected)", vc->what, key->mv_size);
		goto out;
	}
	if (vc->dbi == vc->st->ids && val->mv_size < STORE_RKEY_LEN) {
		store_problem(vc, "ids %" PRIu64 ": a value of %zu bytes (at least %d expected)",
			      endian_be64(key->mv_data), val->mv_size, STORE_RKEY_LEN);
		goto out;
	}
	id = endian_be64(key->mv_data);
	rc = store_verify_owner(vc->st, vc->txn, key, &flags);
	if (rc != 0)
		goto out;
	if (flags == -1)
		store_problem(vc, "%s %" PRIu64 ": no record with this id", vc->what, id);
	else if (flags >= 0 && !(flags & RECORD_PAYLOAD) &&
		 (vc->dbi == vc->st->payloads || val->mv_size > STORE_RKEY_LEN))
		store_problem(vc, "payload %" PRIu64 ": its record is not flagged with a "
			      "payload", id);
out:
	return rc;
}

static int store_verify_counter(MDB_cursor *cur, const MDB_val *key, const MDB_val *val,
				void *ctx)
{
	struct store_verify_ctx *vc = ctx;

	(void)cur;
	if (key->mv_size == 0 || key->mv_size > STORE_KEY_MAX ||
	    memchr(key->mv_data, '\0', key->mv_size) != NULL)
		store_problem(vc, "counters: a name of %zu bytes that is not 1 to %d bytes "
			      "of text", key->mv_size, STORE_KEY_MAX);
	else if (val->mv_size != 8)
		store_problem(vc, "counter '%.*s': a value of %zu bytes (8 expected)",
			      (int)(key->mv_size > 64 ? 64 : key->mv_size),
			      (const char *)key->mv_data, val->mv_size);
	return 0;
}

/* Walks dbi (named what) with visit, reporting into vc. */
/* Counts the entry for the progress tick, then checks it with the walk's own visit. */
static int store_verify_entry(MDB_cursor *cur, const MDB_val *key, const MDB_val *val,
			      void *ctx)
{
	struct store_verify_ctx *vc = ctx;

	vc->checked++;
	if (vc->tick != NULL)
		vc->tick(vc->checked, vc->tick_arg);
	return vc->visit(cur, key, val, ctx);
}

static int store_verify_walk(struct store_verify_ctx *vc, MDB_dbi dbi, const char *what,
			     store_cursor_fn visit)
{
	vc->dbi = dbi;
	vc->what = what;
	vc->visit = visit;
	return store_txn_walk(vc->txn, dbi, NULL, store_verify_entry, vc);
}

static void store_verify_string_problem(const char *problem, void *arg)
{
	store_problem(arg, "%s", problem);
}

static void store_verify_string_tick(void *arg)
{
	struct store_verify_ctx *vc = arg;

	vc->checked++;
	if (vc->tick != NULL)
		vc->tick(vc->checked, vc->tick_arg);
}

/* The strings table: consistent in itself, and present in a store of format 3 or later. */
static int store_verify_strings(struct store_verify_ctx *vc)
{
	uint64_t entries;
	uint32_t format;
	int rc = 0;

	if (!__atomic_load_n(&vc->st->have_strings_dbi, __ATOMIC_ACQUIRE)) {
		if (store_check_format(vc->txn, vc->st->meta, &format) == 0 && format >= 3)
			store_problem(vc, "the strings database is missing");
		goto out;
	}
	rc = store_err(strings_verify(vc->txn, vc->st->strings, store_verify_string_problem,
				      store_verify_string_tick, vc, &entries));
out:
	return rc;
}

int store_verify(struct store *st, store_problem_fn fn, void *arg, uint64_t *nproblems)
{
	return store_verify_ticking(st, fn, arg, NULL, NULL, nproblems);
}

int store_verify_ticking(struct store *st, store_problem_fn fn, void *arg, store_tick_fn tick,
			 void *tick_arg, uint64_t *nproblems)
{
	struct store_verify_ctx vc = { fn, arg, 0, 0, 0, st, NULL, 0, NULL, NULL, tick, tick_arg, 0 };
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
	vc.txn = txn;
	rc = store_verify_meta(st, txn, &vc);
	if (rc == 0)
		rc = store_verify_walk(&vc, st->records, "records", store_verify_record);
	if (rc == 0)
		rc = store_verify_walk(&vc, st->ids, "ids", store_verify_by_id);
	if (rc == 0)
		rc = store_verify_walk(&vc, st->payloads, "payload", store_verify_by_id);
	if (rc == 0)
		rc = store_verify_walk(&vc, st->counters, "counters", store_verify_counter);
	if (rc == 0)
		rc = store_verify_strings(&vc);
	store_txn_end(st, txn, 0);
done:
	*nproblems = vc.problems;
out:
	return rc;
}

/*
 * Pruning. Deleting is ordinary LMDB work and runs beside the shim's appends: small write
 * transactions, so an agent's append never waits behind a long one. Returning the space is
 * not: LMDB only reuses freed pages, it never shrinks its file, and the one way to shrink it
 * is a compacting copy renamed over the original. Every process that has the store open
 * keeps writing into the file it mapped, so a rename under it would lose what it commits
 * afterwards; and every opener shares the "-lock" file, whose transaction id says which of
 * the data file's two meta pages is current. Hence the rules below (docs/record-format.md).
 */

/* Deletions per write transaction: short enough that an append waits microseconds. */
#define STORE_PRUNE_BATCH 1024

/* Deletes (or, dry, counts) up to STORE_PRUNE_BATCH records older than before_ns and their
 * ids and payloads in one write transaction. *more is set when the batch filled up. */
static int store_prune_batch(struct store *st, int64_t before_ns, int dry,
			     struct store_prune_result *res, int *more)
{
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val key, val, rkey, pay;
	unsigned char id[8];
	uint64_t next, floor_id;
	unsigned n = 0;
	int rc, found, err = 0;

	*more = 0;
	rc = store_txn_begin(st, dry ? MDB_RDONLY : 0, &txn);
	if (rc != 0)
		goto out;
	/* The next id follows the last ids entry: pinned in meta before the newest may go. */
	rc = store_next_id_txn(st, txn, &next);
	if (rc == 0)
		rc = store_get_u64(txn, st->meta, "next_id", &floor_id);
	if (rc == 0 && !dry && next != floor_id)
		rc = store_put_u64(txn, st->meta, "next_id", next);
	if (rc != 0)
		goto txn_end;
	rc = store_err(mdb_cursor_open(txn, st->records, &cur));
	if (rc != 0)
		goto txn_end;
	rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
	while (rc == 0 && (dry || n < STORE_PRUNE_BATCH)) {
		if (key.mv_size != 16) {
			rc = STORE_EFORMAT;
			break;
		}
		if ((int64_t)endian_be64(key.mv_data) >= before_ns)
			break;
		/* The key points into a page the deletes below may free. */
		memcpy(id, (unsigned char *)key.mv_data + 8, 8);
		res->records++;
		n++;
		/* A missing or damaged ids entry does not keep its record (verify reports it). */
		found = 0;
		err = store_id_lookup(st, txn, id, &rkey, &pay, &found);
		if (err != 0 && err != STORE_ENOTFOUND && err != STORE_EFORMAT)
			break;
		err = 0;
		res->payloads += found != 0;
		if (!dry) {
			MDB_val ikey = { 8, id };

			rc = mdb_cursor_del(cur, 0);
			if (rc == 0)
				rc = mdb_del(txn, st->ids, &ikey, NULL);
			if (rc == 0 || rc == MDB_NOTFOUND)
				rc = mdb_del(txn, st->payloads, &ikey, NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
			if (rc != 0)
				break;
		}
		/* Deleting from the front: the first entry is the next one. */
		rc = mdb_cursor_get(cur, &key, &val, dry ? MDB_NEXT : MDB_FIRST);
	}
	*more = !dry && n == STORE_PRUNE_BATCH;
	rc = err ?: (rc == MDB_NOTFOUND ? 0 : store_err(rc));
	mdb_cursor_close(cur);
txn_end:
	rc = store_txn_end(st, txn, !dry && rc == 0) ?: rc;
out:
	return rc;
}

/*
 * Takes an open-file-description write lock on byte 0 of the lock file, where every LMDB
 * environment holds a shared lock for as long as it is open. It is refused while any process
 * (this one included: OFD locks conflict with its POSIX locks too) has the store open, and
 * while it is held an opener waits inside mdb_env_open, before it opens the data file.
 * Returns the descriptor (closing it releases the lock), -1 when the store is in use, or a
 * STORE_E* code (< -1).
 */
static int store_lock_exclusive(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	char lockpath[PATH_MAX];
	int fd, rc;

	rc = STORE_EINVAL;
	if (snprintf(lockpath, sizeof lockpath, "%s-lock", path) >= (int)sizeof lockpath)
		goto out;
	fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = store_err(errno);
		goto out;
	}
	rc = fd;
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		rc = errno == EAGAIN || errno == EACCES ? -1 : store_err(errno);
		close(fd);
	}
out:
	return rc;
}

/*
 * The compacting copy of path into *tmp (a new file beside it), made while no process has the
 * store open and openers wait (store_lock_exclusive). LMDB writes the copy's current meta
 * page as page 1 with transaction id 1. Openers that waited on the lock find the lock file as
 * the last user left it: its transaction id T picks meta page T & 1 for readers, and writers
 * go on from T + 1. When T is even, one more (harmless) commit on the copy makes page 0
 * current with id 2, so that both agree; ids only need to stay at or below T, which they do.
 */
static int store_compact_copy(const char *path, char *tmp, size_t tmpcap)
{
	unsigned char b[4];
	MDB_val key = { 6, "format" }, val;
	MDB_envinfo info;
	MDB_env *env = NULL, *copy = NULL;
	MDB_txn *txn;
	MDB_dbi meta;
	int fd = -1, rc;

	rc = STORE_EINVAL;
	if (snprintf(tmp, tmpcap, "%s.compact.XXXXXX", path) >= (int)tmpcap)
		goto out;
	rc = store_err(mdb_env_create(&env));
	if (rc != 0)
		goto out;
	rc = store_err(mdb_env_set_maxdbs(env, STORE_NDBS));
	if (rc == 0)
		rc = store_err(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOLOCK | MDB_RDONLY,
					    0600));
	if (rc == 0)
		rc = store_err(mdb_env_info(env, &info));
	if (rc != 0)
		goto env_close;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = store_err(errno);
		goto env_close;
	}
	rc = store_err(mdb_env_copyfd2(env, fd, MDB_CP_COMPACT));
	if (rc != 0 || (info.me_last_txnid & 1) != 0)
		goto sync;
	rc = store_err(mdb_env_create(&copy));
	if (rc == 0)
		rc = store_err(mdb_env_set_maxdbs(copy, STORE_NDBS));
	if (rc == 0)
		rc = store_err(mdb_env_set_mapsize(copy, info.me_mapsize));
	if (rc == 0)
		rc = store_err(mdb_env_open(copy, tmp, MDB_NOSUBDIR | MDB_NOLOCK, 0600));
	if (rc == 0)
		rc = store_err(mdb_txn_begin(copy, NULL, 0, &txn));
	if (rc != 0)
		goto sync;
	rc = store_err(mdb_dbi_open(txn, "meta", 0, &meta));
	if (rc == 0)
		rc = store_err(mdb_get(txn, meta, &key, &val));
	if (rc == 0 && val.mv_size != sizeof b)
		rc = STORE_EFORMAT;
	if (rc == 0) {
		memcpy(b, val.mv_data, sizeof b);
		val = (MDB_val){ sizeof b, b };
		rc = store_err(mdb_put(txn, meta, &key, &val, 0));
	}
	if (rc == 0)
		rc = store_err(mdb_txn_commit(txn));
	else
		mdb_txn_abort(txn);
sync:
	mdb_env_close(copy);
	if (rc == 0 && fsync(fd) != 0)
		rc = store_err(errno);
	close(fd);
	if (rc != 0)
		unlink(tmp);
env_close:
	mdb_env_close(env);
out:
	return rc;
}

/* Syncs the folder holding path, so that a rename in it survives a crash. */
static void store_sync_dir(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd;

	if (dir == NULL)
		return;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

static off_t store_file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : 0;
}

int store_prune(const char *path, int64_t before_ns, unsigned flags,
		void (*on_compact)(void *arg), void *arg, struct store_prune_result *out)
{
	char tmp[PATH_MAX];
	struct store *st;
	int rc, more = 1, dry = (flags & STORE_PRUNE_DRY_RUN) != 0, lock;

	memset(out, 0, sizeof *out);
	out->bytes_before = (uint64_t)store_file_size(path);
	rc = store_open(&st, path, dry ? STORE_READONLY : 0, 0);
	if (rc != 0)
		goto out;
	while (rc == 0 && more)
		rc = store_prune_batch(st, before_ns, dry, out, &more);
	store_close(st);
	if (rc != 0 || dry || (flags & STORE_PRUNE_NO_COMPACT))
		goto size;
	lock = store_lock_exclusive(path);
	if (lock < -1)
		rc = lock;
	if (lock < 0)
		goto size;
	if (on_compact)
		on_compact(arg);
	rc = store_compact_copy(path, tmp, sizeof tmp);
	if (rc == 0 && rename(tmp, path) != 0) {
		rc = store_err(errno);
		unlink(tmp);
	}
	if (rc == 0) {
		store_sync_dir(path);
		out->compacted = 1;
	}
	close(lock);
size:
	out->bytes_after = (uint64_t)store_file_size(path);
out:
	return rc;
}

int store_next_id(struct store *st, uint64_t *out)
{
	MDB_txn *txn;
	int rc;

	*out = 1;
	rc = store_read_begin(st, &txn);
	if (rc == STORE_ENOTFOUND) {
		rc = 0;
		goto out;
	}
	if (rc != 0)
		goto out;
	rc = store_next_id_txn(st, txn, out);
	store_txn_end(st, txn, 0);
out:
	return rc;
}

/* ---- budgets: counters, reservations, events ------------------------------------------------ */

/* Counter base names are capped so that "{base}:warned:{budget name}" still fits in a key. */
#define STORE_BASE_MAX 400
#define STORE_BUDGET_NAME_MAX 100
/* An event's JSON: a few numbers and two escaped names of bounded length. */
#define STORE_EVENT_MAX (1024 + 6 * (STORE_BASE_MAX + STORE_BUDGET_NAME_MAX))

/* What store_append_budget adds to a record's transaction. */
struct store_settle {
	struct store_budget *b;
	size_t n;
	uint64_t resv_id;
	size_t block; /* n: no block event */
};

/*
 * Opens the reservations and events databases in a transaction of their own, before the
 * caller's: a store written before budgets existed has neither, and a writer creates them
 * here. A reader (create 0) gets STORE_ENOTFOUND while they do not exist.
 */
static int store_budget_dbis_open(struct store *st, int create)
{
	unsigned dbflags = create ? MDB_CREATE : 0;
	MDB_txn *txn;
	int rc;

	rc = store_ready(st);
	if (rc != 0)
		goto out;
	pthread_mutex_lock(&st->dbi_lock);
	if (__atomic_load_n(&st->have_budget_dbis, __ATOMIC_ACQUIRE))
		goto unlock;
	rc = store_txn_begin(st, create ? 0 : MDB_RDONLY, &txn);
	if (rc != 0)
		goto unlock;
	rc = store_err(mdb_dbi_open(txn, "reservations", dbflags, &st->reservations));
	if (rc == 0)
		rc = store_err(mdb_dbi_open(txn, "events", dbflags, &st->events));
	rc = store_txn_end(st, txn, rc == 0) ?: rc;
	if (rc == 0)
		__atomic_store_n(&st->have_budget_dbis, 1, __ATOMIC_RELEASE);
unlock:
	pthread_mutex_unlock(&st->dbi_lock);
out:
	return rc;
}

static int store_budget_dbis(struct store *st)
{
	return store_budget_dbis_open(st, 1);
}

static int store_budgets_valid(const struct store_budget *b, size_t n)
{
	if (n > STORE_BUDGET_MAX || (n > 0 && b == NULL))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (b[i].base == NULL || b[i].name == NULL || b[i].base[0] == '\0' ||
		    strlen(b[i].base) > STORE_BASE_MAX || strlen(b[i].name) > STORE_BUDGET_NAME_MAX)
			return 0;
	}
	return 1;
}

/* Does an earlier budget of the call share b[i]'s counters? Two budgets with one scope, match
 * and window (a warn level and a hard cap) count the same calls: their usage is added once. */
static int store_base_seen(const struct store_budget *b, size_t i)
{
	for (size_t j = 0; j < i; j++) {
		if (strcmp(b[j].base, b[i].base) == 0)
			return 1;
	}
	return 0;
}

/* Reads counter name into *v. Returns 0, STORE_ENOTFOUND, or an error. */
static int store_counter_get(struct store *st, MDB_txn *txn, const char *name, int64_t *v)
{
	MDB_val key = { strlen(name), (void *)name }, val;
	int rc = mdb_get(txn, st->counters, &key, &val);

	if (rc == 0 && val.mv_size != 8)
		return STORE_EFORMAT;
	if (rc == 0)
		*v = (int64_t)endian_le64(val.mv_data);
	return rc == MDB_NOTFOUND ? STORE_ENOTFOUND : store_err(rc);
}

struct store_seed_ctx {
	struct store *st;
	int load; /* a read txn: strings may go into the handle's table */
	const struct store_budget *b;
	int64_t *tokens, *pusd;
};

/* One record of a budget's window: stops at the window's end. */
static int store_budget_seed_visit(MDB_cursor *cur, const MDB_val *key, const MDB_val *val,
				   void *ctx)
{
	struct store_seed_ctx *sc = ctx;
	struct record rec;
	int64_t t, p;

	if (key->mv_size != 16 || (int64_t)endian_be64(key->mv_data) >= sc->b->until_ns)
		return 1;
	if (store_decode(sc->st, mdb_cursor_txn(cur), sc->load, key, val, &rec) == 0 &&
	    sc->b->seed(&rec, sc->b->seed_arg, &t, &p)) {
		*sc->tokens += t;
		*sc->pusd += p;
	}
	return 0;
}

/* The sums b->seed gives over the records of b's window, read inside txn (a write txn when
 * write is set). */
static int store_budget_seed(struct store *st, MDB_txn *txn, int write,
			     const struct store_budget *b, int64_t *tokens, int64_t *pusd)
{
	struct store_seed_ctx sc = { st, !write, b, tokens, pusd };
	unsigned char start[16];
	MDB_val key = { 16, start };
	int rc = 0;

	*tokens = *pusd = 0;
	if (b->seed == NULL)
		goto out;
	store_record_key(start, b->since_ns < 0 ? 0 : b->since_ns, 0);
	rc = store_txn_walk(txn, st->records, &key, store_budget_seed_visit, &sc);
out:
	return rc;
}

/* Fills b->used_*: its counters, else the seed, which write then stores as the counters. */
static int store_budget_used(struct store *st, MDB_txn *txn, struct store_budget *b, int write)
{
	char tname[STORE_KEY_MAX + 1], cname[STORE_KEY_MAX + 1];
	struct store_counter_delta d[2] = { { tname, 0 }, { cname, 0 } };
	int rc;

	snprintf(tname, sizeof tname, "%s:tokens", b->base);
	snprintf(cname, sizeof cname, "%s:cost_pusd", b->base);
	b->used_tokens = b->used_pusd = 0;
	rc = store_counter_get(st, txn, tname, &b->used_tokens);
	if (rc == 0)
		rc = store_counter_get(st, txn, cname, &b->used_pusd);
	if (rc != STORE_ENOTFOUND)
		goto out;
	rc = store_budget_seed(st, txn, write, b, &b->used_tokens, &b->used_pusd);
	if (rc != 0 || !write)
		goto out;
	d[0].delta = b->used_tokens;
	d[1].delta = b->used_pusd;
	rc = store_counters_apply(st, txn, d, 2);
out:
	return rc;
}

/* Is the process that made a reservation still running? (EPERM: it runs as another user.) */
static int store_pid_alive(int32_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/*
 * A reservation value: le32 pid, le32 count, le64 time_ns, then count entries of le64 tokens,
 * le64 pusd, le16 base length and the base's bytes. Walks the reservations: a dead one (its
 * process gone, older than the TTL, or malformed) is deleted when write is set and skipped
 * otherwise; a live one adds its entries to the reserved_* of every b[i] with that base.
 */
struct store_sweep_ctx {
	struct store_budget *b;
	size_t n;
	int64_t now_ns;
	int write;
};

static int store_resv_visit(MDB_cursor *cur, const MDB_val *key, const MDB_val *val, void *ctx)
{
	struct store_sweep_ctx *sc = ctx;
	struct store_budget *b = sc->b;
	const unsigned char *v = val->mv_data, *end = v + val->mv_size;
	uint32_t count = val->mv_size >= 16 ? endian_le32(v + 4) : 0;
	int64_t age = val->mv_size >= 16 ? sc->now_ns - (int64_t)endian_le64(v + 8) : 0;
	int dead = val->mv_size < 16 || age > (int64_t)STORE_RESERVATION_TTL_S * 1000000000 ||
		   !store_pid_alive((int32_t)endian_le32(v));

	(void)key;
	for (v += 16; !dead && count > 0; count--) {
		size_t len;

		if (end - v < 18)
			break;
		len = endian_le16(v + 16);
		if ((size_t)(end - v - 18) < len)
			break;
		for (size_t i = 0; i < sc->n; i++) {
			if (strlen(b[i].base) != len || memcmp(b[i].base, v + 18, len) != 0)
				continue;
			b[i].reserved_tokens += (int64_t)endian_le64(v);
			b[i].reserved_pusd += (int64_t)endian_le64(v + 8);
		}
		v += 18 + len;
	}
	return dead && sc->write ? mdb_cursor_del(cur, 0) : 0;
}

static int store_resv_sweep(struct store *st, MDB_txn *txn, struct store_budget *b, size_t n,
			    int64_t now_ns, int write)
{
	struct store_sweep_ctx sc = { b, n, now_ns, write };

	for (size_t i = 0; i < n; i++)
		b[i].reserved_tokens = b[i].reserved_pusd = 0;
	return store_txn_walk(txn, st->reservations, NULL, store_resv_visit, &sc);
}

/* Takes the next value of the u64 sequence meta name (starting at 1) into *id. */
static int store_next_seq(struct store *st, MDB_txn *txn, const char *name, uint64_t *id)
{
	int rc = store_get_u64(txn, st->meta, name, id);

	if (rc == STORE_ENOTFOUND) {
		*id = 1;
		rc = 0;
	}
	if (rc == 0)
		rc = store_put_u64(txn, st->meta, name, *id + 1);
	return rc;
}

/* Records a reservation of b[0..n)'s estimates (one entry per distinct base); *id its key. */
static int store_resv_put(struct store *st, MDB_txn *txn, const struct store_budget *b,
			  size_t n, int64_t now_ns, uint64_t *id)
{
	size_t size = 16, count = 0;
	unsigned char *buf, *p, ikey[8];
	MDB_val key = { 8, ikey }, val;
	int rc = STORE_ENOMEM;

	for (size_t i = 0; i < n; i++)
		size += 18 + strlen(b[i].base);
	buf = malloc(size);
	if (buf == NULL)
		goto out;
	p = buf + 16;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(b[i].base);

		if (store_base_seen(b, i))
			continue;
		endian_put_le64(p, (uint64_t)b[i].est_tokens);
		endian_put_le64(p + 8, (uint64_t)b[i].est_pusd);
		endian_put_le16(p + 16, (uint16_t)len);
		memcpy(p + 18, b[i].base, len);
		p += 18 + len;
		count++;
	}
	endian_put_le32(buf, (uint32_t)getpid());
	endian_put_le32(buf + 4, (uint32_t)count);
	endian_put_le64(buf + 8, (uint64_t)now_ns);
	rc = store_next_seq(st, txn, "next_reservation", id);
	if (rc != 0)
		goto buf_free;
	endian_put_be64(ikey, *id);
	val = (MDB_val){ (size_t)(p - buf), buf };
	rc = store_err(mdb_put(txn, st->reservations, &key, &val, MDB_APPEND));
buf_free:
	free(buf);
out:
	return rc;
}

static int store_cap_crossed(int64_t cap, int64_t used, int64_t reserved, int64_t est)
{
	return cap >= 0 && used + reserved + est > cap;
}

int store_budget_reserve(struct store *st, struct store_budget *b, size_t n, int64_t now_ns,
			 uint64_t *resv_id, size_t *refused)
{
	MDB_txn *txn;
	size_t i;
	int rc = STORE_EINVAL;

	if (resv_id == NULL || refused == NULL || !store_budgets_valid(b, n))
		goto out;
	*resv_id = 0;
	*refused = n;
	rc = 0;
	if (n == 0)
		goto out;
	rc = store_budget_dbis(st);
	if (rc != 0)
		goto out;
	rc = store_txn_begin(st, 0, &txn);
	if (rc != 0)
		goto out;
	for (i = 0; i < n && rc == 0; i++)
		rc = store_budget_used(st, txn, &b[i], 1);
	if (rc == 0)
		rc = store_resv_sweep(st, txn, b, n, now_ns, 1);
	for (i = 0; i < n && rc == 0; i++) {
		if (store_cap_crossed(b[i].cap_tokens, b[i].used_tokens, b[i].reserved_tokens,
				      b[i].est_tokens) ||
		    store_cap_crossed(b[i].cap_pusd, b[i].used_pusd, b[i].reserved_pusd,
				      b[i].est_pusd)) {
			*refused = i;
			rc = STORE_EBUDGET;
		}
	}
	if (rc == 0)
		rc = store_resv_put(st, txn, b, n, now_ns, resv_id);
	/* A refusal keeps the seeding and the sweep: they are true whatever this call does. */
	rc = store_txn_end(st, txn, rc == 0 || rc == STORE_EBUDGET) ?: rc;
	if (rc != 0)
		*resv_id = 0;
out:
	return rc;
}

int store_budget_release(struct store *st, uint64_t resv_id)
{
	unsigned char ikey[8];
	MDB_val key = { 8, ikey };
	MDB_txn *txn;
	int rc;

	rc = store_budget_dbis(st);
	if (rc != 0)
		goto out;
	rc = store_txn_begin(st, 0, &txn);
	if (rc != 0)
		goto out;
	endian_put_be64(ikey, resv_id);
	rc = mdb_del(txn, st->reservations, &key, NULL);
	rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
	rc = store_txn_end(st, txn, rc == 0) ?: rc;
out:
	return rc;
}

/* Appends s to the JSON text at *p (room up to end) as a JSON string. */
static void store_json_str(char **p, char *end, const char *s)
{
	char *o = *p;

	if (o < end)
		*o++ = '"';
	for (; *s != '\0' && end - o > 7; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c < 0x20) {
			o += snprintf(o, (size_t)(end - o), "\\u%04x", c);
		} else {
			*o++ = (char)c;
		}
	}
	if (o < end)
		*o++ = '"';
	*p = o;
}

/* Writes one alert event about b (docs/record-format.md): kind is "budget_warning" or
 * "budget_block"; the estimate is the refused call's (block only). */
static int store_event_put(struct store *st, MDB_txn *txn, const char *kind,
			   const struct store_budget *b, uint64_t record_id, int64_t ts_ns)
{
	int block = strcmp(kind, "budget_block") == 0;
	unsigned char ikey[8];
	MDB_val key = { 8, ikey }, val;
	char *json, *p, *end;
	uint64_t id;
	int rc = STORE_ENOMEM;

	json = malloc(STORE_EVENT_MAX);
	if (json == NULL)
		goto out;
	rc = store_next_seq(st, txn, "next_event", &id);
	if (rc != 0)
		goto json_free;
	end = json + STORE_EVENT_MAX;
	p = json + snprintf(json, STORE_EVENT_MAX,
			    "{\"id\":%" PRIu64 ",\"kind\":\"%s\",\"ts_ns\":%" PRId64
			    ",\"record_id\":%" PRIu64 ",\"budget\":",
			    id, kind, ts_ns, record_id);
	store_json_str(&p, end, b->name);
	p += snprintf(p, (size_t)(end - p), ",\"counter\":");
	store_json_str(&p, end, b->base);
	p += snprintf(p, (size_t)(end - p),
		      ",\"since_ns\":%" PRId64 ",\"until_ns\":%" PRId64
		      ",\"used_tokens\":%" PRId64 ",\"used_cost_pusd\":%" PRId64
		      ",\"reserved_tokens\":%" PRId64 ",\"reserved_cost_pusd\":%" PRId64
		      ",\"estimate_tokens\":%" PRId64 ",\"estimate_cost_pusd\":%" PRId64
		      ",\"cap_tokens\":%" PRId64 ",\"cap_cost_pusd\":%" PRId64
		      ",\"warn_tokens\":%" PRId64 ",\"warn_cost_pusd\":%" PRId64 "}",
		      b->since_ns, b->until_ns, b->used_tokens, b->used_pusd, b->reserved_tokens,
		      b->reserved_pusd, block ? b->est_tokens : 0, block ? b->est_pusd : 0,
		      b->cap_tokens, b->cap_pusd, b->warn_tokens, b->warn_pusd);
	rc = STORE_EINVAL;
	if (p >= end)
		goto json_free;
	endian_put_be64(ikey, id);
	val = (MDB_val){ (size_t)(p - json), json };
	rc = store_err(mdb_put(txn, st->events, &key, &val, MDB_APPEND));
json_free:
	free(json);
out:
	return rc;
}

/* Before the record is written: each budget's counters exist (seeded from the records so far)
 * and its used_* are read. */
static int store_settle_before(struct store *st, MDB_txn *txn, const struct store_settle *se)
{
	int rc = 0;

	for (size_t i = 0; i < se->n && rc == 0; i++) {
		se->b[i].reserved_tokens = se->b[i].reserved_pusd = 0;
		rc = store_budget_used(st, txn, &se->b[i], 1);
	}
	return rc;
}

static int store_warn_reached(const struct store_budget *b)
{
	return (b->warn_tokens >= 0 && b->used_tokens >= b->warn_tokens) ||
	       (b->warn_pusd >= 0 && b->used_pusd >= b->warn_pusd);
}

/* After record id is written: the reservation goes, the usage is added, events follow. */
static int store_settle_after(struct store *st, MDB_txn *txn, const struct store_settle *se,
			      uint64_t id, int64_t ts_ns)
{
	char tname[STORE_KEY_MAX + 1], cname[STORE_KEY_MAX + 1];
	struct store_counter_delta d[2] = { { tname, 0 }, { cname, 0 } };
	unsigned char ikey[8];
	MDB_val key = { 8, ikey };
	int64_t warned;
	int rc = 0;

	if (se->resv_id != 0) {
		endian_put_be64(ikey, se->resv_id);
		rc = mdb_del(txn, st->reservations, &key, NULL);
		rc = rc == MDB_NOTFOUND ? 0 : store_err(rc); /* expired meanwhile */
	}
	for (size_t i = 0; i < se->n && rc == 0; i++) {
		struct store_budget *b = &se->b[i];

		if (!store_base_seen(se->b, i)) {
			snprintf(tname, sizeof tname, "%s:tokens", b->base);
			snprintf(cname, sizeof cname, "%s:cost_pusd", b->base);
			d[0].delta = b->tokens;
			d[1].delta = b->pusd;
			rc = store_counters_apply(st, txn, d, 2);
		}
		b->used_tokens += b->tokens;
		b->used_pusd += b->pusd;
		if (rc != 0 || !store_warn_reached(b))
			continue;
		snprintf(tname, sizeof tname, "%s:warned:%s", b->base, b->name);
		rc = store_counter_get(st, txn, tname, &warned);
		if (rc != STORE_ENOTFOUND)
			continue; /* warned already in this window, or an error */
		d[0].delta = 1;
		rc = store_counters_apply(st, txn, d, 1);
		if (rc == 0)
			rc = store_event_put(st, txn, "budget_warning", b, id, ts_ns);
	}
	if (rc == 0 && se->block < se->n)
		rc = store_event_put(st, txn, "budget_block", &se->b[se->block], id, ts_ns);
	return rc;
}

int store_append_budget(struct store *st, struct record *rec, const struct payload *pl,
			const struct store_counter_delta *deltas, size_t ndeltas,
			struct store_budget *b, size_t n, uint64_t resv_id, size_t block)
{
	struct store_settle se = { b, n, resv_id, block };

	if (!store_budgets_valid(b, n))
		return STORE_EINVAL;
	return store_append_n(st, rec, 1, pl, deltas, ndeltas, &se);
}

int store_budget_read(struct store *st, struct store_budget *b, size_t n, int64_t now_ns)
{
	MDB_txn *txn;
	int rc = STORE_EINVAL, have_resv;

	if (!store_budgets_valid(b, n))
		goto out;
	for (size_t i = 0; i < n; i++)
		b[i].used_tokens = b[i].used_pusd = b[i].reserved_tokens = b[i].reserved_pusd = 0;
	rc = store_budget_dbis_open(st, 0);
	have_resv = rc == 0;
	if (rc == STORE_ENOTFOUND)
		rc = store_ready(st);
	if (rc == STORE_ENOTFOUND)
		rc = 0; /* no store in the file yet: nothing used */
	if (rc != 0 || !__atomic_load_n(&st->have_dbis, __ATOMIC_ACQUIRE))
		goto out;
	rc = store_txn_begin(st, MDB_RDONLY, &txn);
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = store_budget_used(st, txn, &b[i], 0);
	if (rc == 0 && have_resv)
		rc = store_resv_sweep(st, txn, b, n, now_ns, 0);
	store_txn_end(st, txn, 0);
out:
	return rc;
}

struct store_events_ctx {
	store_event_fn fn;
	void *arg;
	char *buf;
	int fn_rc;
};

static int store_events_visit(MDB_cursor *cur, const MDB_val *key, const MDB_val *val,
			      void *ctx)
{
	struct store_events_ctx *ec = ctx;

	(void)cur;
	if (key->mv_size != 8 || val->mv_size >= STORE_EVENT_MAX)
		return STORE_EFORMAT;
	memcpy(ec->buf, val->mv_data, val->mv_size);
	ec->buf[val->mv_size] = '\0';
	ec->fn_rc = ec->fn(endian_be64(key->mv_data), ec->buf, val->mv_size, ec->arg);
	return ec->fn_rc != 0;
}

int store_events_scan(struct store *st, store_event_fn fn, void *arg)
{
	struct store_events_ctx ec = { fn, arg, NULL, 0 };
	int rc = STORE_EINVAL;

	if (fn == NULL)
		goto out;
	rc = store_budget_dbis_open(st, 0);
	if (rc == STORE_ENOTFOUND)
		rc = 0; /* no events database yet: no events */
	if (rc != 0 || !__atomic_load_n(&st->have_budget_dbis, __ATOMIC_ACQUIRE))
		goto out;
	rc = STORE_ENOMEM;
	ec.buf = malloc(STORE_EVENT_MAX);
	if (ec.buf == NULL)
		goto out;
	rc = store_walk(st, &st->events, store_events_visit, &ec);
	if (rc == 0)
		rc = ec.fn_rc;
	free(ec.buf);
out:
	return rc;
}

int store_event_append(struct store *st, const char *once_key, const char *members,
		       uint64_t *id)
{
	size_t mlen = members != NULL ? strlen(members) : 0;
	struct store_counter_delta once = { once_key, 1 };
	unsigned char ikey[8];
	MDB_val key = { 8, ikey }, val;
	char *json = NULL;
	MDB_txn *txn;
	int64_t fired;
	int len, rc = STORE_EINVAL;

	*id = 0;
	if (members == NULL || mlen + 32 >= STORE_EVENT_MAX ||
	    (once_key != NULL && !store_deltas_valid(&once, 1)))
		goto out;
	rc = store_budget_dbis(st);
	if (rc != 0)
		goto out;
	rc = STORE_ENOMEM;
	json = malloc(STORE_EVENT_MAX);
	if (json == NULL)
		goto out;
	rc = store_txn_begin(st, 0, &txn);
	if (rc != 0)
		goto json_free;
	rc = once_key != NULL ? store_counter_get(st, txn, once_key, &fired) : STORE_ENOTFOUND;
	if (rc != STORE_ENOTFOUND)
		goto txn_end; /* already written (rc 0, *id 0), or an error */
	rc = store_next_seq(st, txn, "next_event", id);
	if (rc != 0)
		goto txn_end;
	len = snprintf(json, STORE_EVENT_MAX, "{\"id\":%" PRIu64 ",%s}", *id, members);
	endian_put_be64(ikey, *id);
	val = (MDB_val){ (size_t)len, json };
	rc = store_err(mdb_put(txn, st->events, &key, &val, MDB_APPEND));
	if (rc == 0 && once_key != NULL)
		rc = store_counters_apply(st, txn, &once, 1);
txn_end:
	rc = store_txn_end(st, txn, rc == 0) ?: rc;
	if (rc != 0)
		*id = 0;
json_free:
	free(json);
out:
	return rc;
}
