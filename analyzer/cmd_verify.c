/*
 * cmd_verify.c - `tokshim verify`: is the store whole? The checks are store_verify's (store.h):
 * meta, every record decoding, ids and records naming each other both ways, next_id above
 * every id, payloads and RECORD_PAYLOAD matching and decoding, counters well-formed. This
 * file prints what it finds and turns it into an exit status, so that a script (or a test
 * that kills writers at random) can rely on it. A store that takes longer than a second shows
 * the progress line on stderr (progress.h), counting the entries checked.
 */
#include <inttypes.h>
#include <stdio.h>

#include "analyzer/cli.h"
#include "analyzer/filter.h"
#include "analyzer/progress.h"

static const char usage_text[] =
	"usage: tokshim verify [--db PATH]...\n"
	"\n"
	"Check the structure of each store: every record decodes and is indexed by its id, the\n"
	"id index names only existing records, meta next_id is above every id, every payload\n"
	"belongs to a record flagged with one and decodes, and the counters are well-formed.\n"
	"Prints 'ok' per sound store and one line per problem otherwise. Exit status: 0 when\n"
	"every store is sound, 1 when one is damaged or cannot be opened.\n"
	"\n"
	"Options:\n"
	"  --db PATH            store to check (repeatable); default $TOKSHIM_DB, else\n"
	"                       $XDG_DATA_HOME/tokshim/usage.mdb, else\n"
	"                       ~/.local/share/tokshim/usage.mdb\n";

struct checking {
	const char *db;
	struct progress progress;
};

static void print_problem(const char *problem, void *arg)
{
	struct checking *c = arg;

	/* the problem's line replaces the progress line; the next tick shows it again */
	progress_done(&c->progress);
	printf("%s: %s\n", c->db, problem);
	fflush(stdout);
}

static void tick(uint64_t checked, void *arg)
{
	struct checking *c = arg;

	progress_update(&c->progress, checked);
}

int cmd_verify(int argc, char **argv)
{
	struct store *st;
	struct store_info in;
	struct checking c;
	struct filter f;
	uint64_t problems;
	size_t k;
	int done, m, ret;

	filter_init(&f);
	ret = cli_store_args("verify", usage_text, argc, argv, &f, NULL, &done);
	if (ret != CLI_OK || done)
		goto out;
	for (k = 0; k < f.ndb; k++) {
		m = store_open(&st, f.db[k], STORE_READONLY, 0);
		if (m != 0) {
			cli_error("cannot open '%s': %s", f.db[k], store_strerror(m));
			ret = CLI_ERR;
			continue;
		}
		c.db = f.db[k];
		progress_init(&c.progress);
		c.progress.unit = "entries";
		m = store_verify_ticking(st, print_problem, &c, tick, &c, &problems);
		progress_done(&c.progress);
		if (m == 0)
			m = store_info(st, &in);
		if (m != 0 && problems == 0) {
			cli_error("cannot check '%s': %s", f.db[k], store_strerror(m));
			ret = CLI_ERR;
		} else if (problems != 0) {
			if (problems > STORE_VERIFY_MAX_PROBLEMS)
				printf("%s: %" PRIu64 " problems (the first %d shown)\n", f.db[k],
				       problems, STORE_VERIFY_MAX_PROBLEMS);
			cli_error("'%s' is damaged: %" PRIu64 " problem%s", f.db[k], problems,
				  problems == 1 ? "" : "s");
			ret = CLI_ERR;
		} else {
			printf("%s: ok (%" PRIu64 " records, %" PRIu64 " payloads)\n", f.db[k],
			       in.records, in.payloads);
		}
		store_close(st);
	}
out:
	return ret;
}
