/*
 * fuzz_pagewalk.c - store/pagewalk.h's walks over an LMDB file's pages, as store_open meets a
 * file that may be damaged anywhere: the structural check every open makes (pagewalk_check)
 * and the walk of a file shorter than its meta says (pagewalk_reaches).
 *
 * Input: one control byte, then the file's bytes (4 KiB pages). pagewalk_reaches runs with
 * the txnid of page 0's meta or page 1's (the control byte's low bit) and a page limit of the
 * file's pages less 0 to 3 (its next two bits); pagewalk_check with no cap, then with a cap of
 * 0, 1, 4 or PAGEWALK_CAP pages (its next two bits: every named database walked along its
 * ends, or some). Each must stay inside the pages it reads (pread, into buffers of a page),
 * end (a cycle is damage), and say 0 or STORE_EFORMAT, the latter with a reason. The walks
 * must agree: a file that passes the whole check passes a capped one (unless the page counts
 * of a database's record, which choose between a whole walk and one along the ends, do not
 * hold), and nothing of it reaches past the file's end.
 *
 * Then store/leafscan.h's reader walks the main database of the later meta, and every named
 * database its entries record, from a start key drawn from the control byte, as store_scan
 * reads records: it must stay inside its buffers, end, and say 0 or STORE_EFORMAT, whatever
 * the pages hold, checked or not.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz/fuzz.h"
#include "store/leafscan.h"
#include "store/lmdbpage.h"
#include "store/pagewalk.h"
#include "store/store.h"

#define PAGE 4096
#define META_TXNID 144

/* A walk of leafscan: the file, its end, and how deep in named databases it is. */
struct scan {
	int fd;
	uint64_t end;
	int nested;
};

static int scan_entry(const unsigned char *key, size_t klen, const unsigned char *val,
		      size_t vlen, void *arg);

/* Walks the tree whose MDB_db record is at db, from start[0..slen). */
static void scan_tree(const struct scan *sc, const unsigned char *db, const unsigned char *start,
		      size_t slen)
{
	struct leafscan_tree t = { lp_u64(db + LP_DB_ROOT), lp_u16(db + LP_DB_DEPTH), sc->end };
	struct scan inner = { sc->fd, sc->end, sc->nested + 1 };
	int rc = leafscan_walk(sc->fd, PAGE, &t, start, slen, 1u << 16, scan_entry, &inner);

	FUZZ_CHECK(rc == 0 || rc == STORE_EFORMAT);
}

/* Every entry the reader hands out lies inside what it checked: its key within LMDB's size;
 * a named database's record is walked too (one level: they hold no deeper ones). */
static int scan_entry(const unsigned char *key, size_t klen, const unsigned char *val,
		      size_t vlen, void *arg)
{
	const struct scan *sc = arg;

	FUZZ_CHECK(klen <= LP_KEY_MAX && key != NULL && (vlen == 0 || val != NULL));
	if (sc->nested == 1 && vlen == LP_DB_SIZE)
		scan_tree(sc, val, key, 0);
	return 0;
}

/* pagewalk_check's answer, checked for its shape. */
static int check(int fd, uint64_t cap, struct pagewalk_report *rep)
{
	int rc = pagewalk_check(fd, PAGE, cap, rep);

	FUZZ_CHECK(rc == 0 || rc == STORE_EFORMAT);
	FUZZ_CHECK((rc == STORE_EFORMAT) == (rep->why != NULL));
	FUZZ_CHECK(rep->bounded <= rep->trees);
	return rc;
}

/* The capped walk's own findings: a record's page counts that chose the walk do not hold. */
static int counts_disagree(const char *why)
{
	return strcmp(why, "tree larger than its record says") == 0 ||
	       strcmp(why, "page counts of its record disagree with the tree") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t caps[4] = { 0, 1, 4, PAGEWALK_CAP };
	struct pagewalk_report whole, capped;
	uint64_t txnid = 0, pages, limit;
	int fd, rc, reaches = -1;
	unsigned ctl;

	if (size < 1)
		return 0;
	ctl = data[0];
	data++;
	size--;
	pages = size / PAGE;
	if (size >= (ctl & 1 ? 2 * PAGE : PAGE))
		memcpy(&txnid, data + (ctl & 1 ? PAGE : 0) + META_TXNID, sizeof txnid);
	limit = pages > ((ctl >> 1) & 3) ? pages - ((ctl >> 1) & 3) : 0;
	fd = memfd_create("pagewalk", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	rc = pagewalk_reaches(fd, PAGE, txnid, limit, &reaches);
	FUZZ_CHECK(rc == 0 || rc == STORE_EFORMAT);
	FUZZ_CHECK(reaches == 0 || reaches == 1);

	if (check(fd, UINT64_MAX, &whole) == 0) {
		FUZZ_CHECK(whole.bounded == 0);
		rc = check(fd, caps[(ctl >> 3) & 3], &capped);
		FUZZ_CHECK(rc == 0 || counts_disagree(capped.why));
		FUZZ_CHECK(capped.pages <= whole.pages);
		FUZZ_CHECK(rc != 0 || capped.trees == whole.trees);
		rc = pagewalk_reaches(fd, PAGE, whole.txnid, pages, &reaches);
		FUZZ_CHECK(rc == 0 && reaches == 0);
	}
	if (size >= 2 * PAGE) {
		/* the later meta's main database, as store_scan finds the records tree */
		const unsigned char *m0 = data, *m1 = data + PAGE;
		const unsigned char *m = lp_u64(m1 + META_TXNID) > lp_u64(m0 + META_TXNID) ? m1 : m0;
		unsigned char start[16];
		struct scan sc = { fd, lp_u64(m + LP_META_LAST) + 1, 0 };

		if (sc.end > pages)
			sc.end = pages;
		memset(start, ctl, sizeof start);
		scan_tree(&sc, m + LP_META_DBS + LP_DB_SIZE, start, (ctl >> 5) & 1 ? 0 : 16);
	}
	close(fd);
	return 0;
}
