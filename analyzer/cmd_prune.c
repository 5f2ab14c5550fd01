/*
 * cmd_prune.c - `tokshim prune --before DATE [--dry-run]`: deletes the records older than
 * DATE with their payloads, then gives the space back to the file system when it can. The
 * work and its guarantees are store_prune's (store.h, docs/record-format.md); this file reads
 * the options and says what was done.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"

static const char usage_text[] =
	"usage: tokshim prune --before TIME [--dry-run] [--no-compact] [--db PATH]...\n"
	"\n"
	"Delete every record older than TIME (2026-11-25, 2026-11-25T04:30:00Z, or 30d, 12w\n"
	"ago), with its payload, from each store; then compact the file so that it shrinks.\n"
	"Compacting needs the store to itself: while another process has it open (a running\n"
	"agent under the shim, a tail -f) the records are still deleted and their space is\n"
	"reused by later records, but the file keeps its size. Processes that open the store\n"
	"during the compaction wait for it.\n"
	"\n"
	"Options:\n"
	"  --before TIME        delete the records before TIME (required)\n"
	"  --dry-run            only count what would be deleted\n"
	"  --no-compact         delete, but leave the file's size as it is\n"
	"  --db PATH            store to prune (repeatable); default $TOKSHIM_DB, else\n"
	"                       $XDG_DATA_HOME/tokshim/usage.mdb, else\n"
	"                       ~/.local/share/tokshim/usage.mdb\n";

static void say_compacting(void *arg)
{
	fprintf(stderr, "tokshim: compacting '%s'\n", (const char *)arg);
}

int cmd_prune(int argc, char **argv)
{
	struct store_prune_result res;
	const char *before_arg = NULL, *v;
	struct filter f;
	char err[512], when[FMT_TIME_MAX];
	int64_t before = 0;
	unsigned flags = 0;
	size_t k;
	int i, m, ret = CLI_OK;

	filter_init(&f);
	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage_text, stdout);
			goto out;
		}
		if (strcmp(argv[i], "--dry-run") == 0) {
			flags |= STORE_PRUNE_DRY_RUN;
			continue;
		}
		if (strcmp(argv[i], "--no-compact") == 0) {
			flags |= STORE_PRUNE_NO_COMPACT;
			continue;
		}
		m = cli_opt_value("prune", argc, argv, &i, "--before", &before_arg);
		if (m == 0) {
			m = cli_opt_value("prune", argc, argv, &i, "--db", &v);
			if (m == 1 && f.ndb == FILTER_MAX_DB) {
				ret = cli_usage_error("prune", "too many '--db' stores");
				goto out;
			}
			if (m == 1)
				f.db[f.ndb++] = v;
		}
		if (m == 0) {
			ret = cli_unknown_arg("prune", argv[i]);
			goto out;
		}
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
	}
	if (before_arg == NULL) {
		ret = cli_usage_error("prune", "missing '--before TIME'");
		goto out;
	}
	if (filter_parse_time(before_arg, filter_now_ns(), 0, &before) != 0) {
		ret = cli_usage_error("prune",
				      "invalid time '%s' for '--before': expected 2026-11-25, "
				      "2026-11-25T04:30:00Z or 24h, 7d, 30m",
				      before_arg);
		goto out;
	}
	if (filter_finish(&f, err, sizeof err) != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
		goto out;
	}
	fmt_rfc3339(when, before);
	for (k = 0; k < f.ndb; k++) {
		m = store_prune(f.db[k], before, flags, say_compacting, (void *)f.db[k], &res);
		if (m != 0) {
			/* The LMDB or system detail only where it says more than our reason. */
			cli_error("cannot prune '%s': %s%s%s", f.db[k], store_strerror(m),
				  m == STORE_EIO && *store_last_error() ? ": " : "",
				  m == STORE_EIO ? store_last_error() : "");
			ret = CLI_ERR;
			continue;
		}
		printf("%s: %s %" PRIu64 " records (%" PRIu64 " with payloads) before %s",
		       f.db[k], flags & STORE_PRUNE_DRY_RUN ? "would delete" : "deleted",
		       res.records, res.payloads, when);
		if (flags & STORE_PRUNE_DRY_RUN)
			printf("\n");
		else if (res.compacted)
			printf("; compacted %" PRIu64 " -> %" PRIu64 " bytes\n", res.bytes_before,
			       res.bytes_after);
		else if (flags & STORE_PRUNE_NO_COMPACT)
			printf("; not compacted (--no-compact)\n");
		else
			printf("; not compacted: the store is open in another process (its free "
			       "space will be reused)\n");
	}
out:
	return ret;
}
