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
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz/fuzz.h"
#include "store/pagewalk.h"
#include "store/store.h"

#define PAGE 4096
#define META_TXNID 144

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
	close(fd);
	return 0;
}
