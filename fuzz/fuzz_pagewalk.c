/*
 * fuzz_pagewalk.c - store/pagewalk.h's walk over an LMDB file's pages, as store_open meets a
 * file shorter than its meta says: the file may be damaged anywhere.
 *
 * Input: one control byte, then the file's bytes (4 KiB pages). The walk runs with the txnid
 * of page 0's meta or page 1's (the control byte's low bit) and a page limit of the file's
 * pages less 0 to 3 (its next bits). It must stay inside the pages it reads (it reads with
 * pread, into a buffer of one page), end (a cycle is damage), and say 0 or STORE_EFORMAT with
 * a yes or no.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz/fuzz.h"
#include "store/pagewalk.h"
#include "store/store.h"

#define PAGE 4096
#define META_TXNID 144

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
	close(fd);
	return 0;
}
