/*
 * tmpdir.h - a unit test's own folder under /tmp: made by tmpdir_make before the first case,
 * removed whole by tmpdir_remove after the last, so that no test leaves a store behind or
 * meets another's. Included by one test file each (its definitions are static).
 */
#ifndef TOKSHIM_TMPDIR_H
#define TOKSHIM_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static char tmp_root[128];
static int tmp_seq;

/* Makes /tmp/tokshim-NAME-XXXXXX; 0, or -1 (after saying why on stderr). */
static int tmpdir_make(const char *name)
{
	snprintf(tmp_root, sizeof tmp_root, "/tmp/tokshim-%s-XXXXXX", name);
	if (mkdtemp(tmp_root) != NULL)
		return 0;
	perror("mkdtemp");
	return -1;
}

/* A fresh path under the test folder. Static storage, one of 8 in rotation. */
static const char *tmp_path(const char *name)
{
	static char bufs[8][512];
	char *b = bufs[tmp_seq % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%d-%s", tmp_root, tmp_seq, name);
	tmp_seq++;
	return b;
}

static int tmpdir_rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* Removes the folder and everything in it. */
static void tmpdir_remove(void)
{
	nftw(tmp_root, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
