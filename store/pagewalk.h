/*
 * pagewalk.h - whether an LMDB file's current B-trees reach past a page count, read without
 * mapping the file (store.c's check of a file shorter than its meta says).
 */
#ifndef TOKSHIM_PAGEWALK_H
#define TOKSHIM_PAGEWALK_H

#include <stddef.h>
#include <stdint.h>

/*
 * Walks every page the meta of transaction txnid reaches (the free list's and the main
 * database's trees, every named database's tree, overflow runs) in the LMDB file open on fd,
 * pages of psize bytes, reading with pread. *reaches is set to 1 when one of them is page
 * limit or later (the walk stops there), else 0. Returns 0; STORE_EFORMAT when no meta has
 * that txnid, a page the trees reach does not parse, or the trees form a cycle; STORE_ENOMEM.
 */
int pagewalk_reaches(int fd, size_t psize, uint64_t txnid, uint64_t limit, int *reaches);

#endif
