/*
 * cmd_stats.c - `tokshim stats`: what a store holds and what the shim could not put in it.
 *
 * The shim never tells the agent that it dropped something (fail open); it counts the drop in
 * the store's counters instead, and this command is where a person or a test reads them:
 * dropped.store_* (the store could not be opened, was full, or a write failed) and
 * dropped.capture.* (an LLM exchange that could not be parsed or was cut by a cap, by reason).
 * With several --db stores each is reported on its own (one JSON object per line).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"

static const char usage_text[] =
	"usage: tokshim stats [--db PATH]... [--format table|json]\n"
	"\n"
	"The store's file size and map cap, its records and payloads (the bytes they take as\n"
	"stored, headers included, and the bytes of heads and bodies they hold: payloads under\n"
	"1 KiB are stored uncompressed, larger ones zstd-compressed), and every counter the\n"
	"shim keeps in it: dropped.store_unavailable, dropped.store_full, dropped.store_error\n"
	"(records lost because of the store) and dropped.capture.REASON (LLM exchanges the shim\n"
	"could not read whole; recorded cut short where a record could still be made).\n"
	"\n"
	"Options:\n"
	"  --db PATH            store to read (repeatable); default $TOKSHIM_DB, else\n"
	"                       $XDG_DATA_HOME/tokshim/usage.mdb, else\n"
	"                       ~/.local/share/tokshim/usage.mdb\n"
	"  --format FORMAT      table (default) or json\n";

#define STATS_DROP_PREFIX "dropped."

struct stats_out {
	struct jw *jw;    /* JSON output, else a table to stdout */
	int64_t dropped;  /* sum of the dropped.* counters */
};

static int is_drop(const char *name)
{
	return strncmp(name, STATS_DROP_PREFIX, strlen(STATS_DROP_PREFIX)) == 0;
}

static int sum_drop(const char *name, int64_t value, void *arg)
{
	struct stats_out *so = arg;

	if (is_drop(name))
		so->dropped += value;
	return 0;
}

static int print_counter(const char *name, int64_t value, void *arg)
{
	struct stats_out *so = arg;

	if (so->jw != NULL) {
		jw_key(so->jw, name);
		jw_int(so->jw, value);
	} else {
		printf("  %-34s %" PRId64 "\n", name, value);
	}
	return 0;
}

static void write_json(const char *path, const struct store_info *in, struct store *st,
		       struct stats_out *so)
{
	struct jw w;

	jw_init(&w, stdout, 0);
	so->jw = &w;
	jw_object_begin(&w);
	jw_key(&w, "db");
	jw_str(&w, path, strlen(path));
	jw_key(&w, "format");
	jw_int(&w, in->format);
	jw_key(&w, "file_bytes");
	jw_int(&w, (int64_t)in->file_bytes);
	jw_key(&w, "map_bytes");
	jw_int(&w, (int64_t)in->map_bytes);
	jw_key(&w, "records");
	jw_int(&w, (int64_t)in->records);
	jw_key(&w, "next_id");
	jw_int(&w, (int64_t)in->next_id);
	jw_key(&w, "strings");
	jw_int(&w, (int64_t)in->strings);
	jw_key(&w, "payloads");
	jw_int(&w, (int64_t)in->payloads);
	jw_key(&w, "payload_bytes");
	jw_int(&w, (int64_t)in->payload_bytes);
	jw_key(&w, "payload_raw_bytes");
	jw_int(&w, (int64_t)in->payload_raw_bytes);
	jw_key(&w, "payloads_uncompressed");
	jw_int(&w, (int64_t)in->payloads_kept);
	jw_key(&w, "dropped");
	jw_int(&w, so->dropped);
	jw_key(&w, "counters");
	jw_object_begin(&w);
	store_counters_scan(st, print_counter, so);
	jw_object_end(&w);
	jw_object_end(&w);
	putchar('\n');
}

static void write_table(const char *path, const struct store_info *in, struct store *st,
			struct stats_out *so)
{
	so->jw = NULL;
	printf("store      %s (format %" PRIu32 ")\n", path, in->format);
	printf("file       %" PRIu64 " bytes, map cap %" PRIu64 " bytes (%.1f%% used)\n",
	       in->file_bytes, in->map_bytes,
	       in->map_bytes ? 100.0 * (double)in->file_bytes / (double)in->map_bytes : 0.0);
	printf("records    %" PRIu64 " (next id %" PRIu64 ")\n", in->records, in->next_id);
	printf("strings    %" PRIu64 " distinct names, each stored once\n", in->strings);
	printf("payloads   %" PRIu64 ": %" PRIu64 " bytes stored for %" PRIu64
	       " bytes of heads and bodies (%" PRIu64 " stored uncompressed, %" PRIu64
	       " compressed)\n",
	       in->payloads, in->payload_bytes, in->payload_raw_bytes, in->payloads_kept,
	       in->payloads - in->payloads_kept);
	printf("dropped    %" PRId64 "\n", so->dropped);
	printf("counters\n");
	store_counters_scan(st, print_counter, so);
}

int cmd_stats(int argc, char **argv)
{
	struct store *stores[FILTER_MAX_DB];
	const char *format = "table";
	struct store_info in;
	struct stats_out so;
	struct filter f;
	char err[512];
	size_t k;
	int done, m, ret;

	filter_init(&f);
	ret = cli_store_args("stats", usage_text, argc, argv, &f, &format, &done);
	if (ret != CLI_OK || done)
		goto out;
	if (filter_open(&f, stores, err, sizeof err) != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
		goto out;
	}
	for (k = 0; k < f.ndb; k++) {
		memset(&so, 0, sizeof so);
		m = store_info(stores[k], &in);
		if (m == 0)
			m = store_counters_scan(stores[k], sum_drop, &so);
		if (m != 0) {
			cli_error("cannot read '%s': %s", f.db[k], store_strerror(m));
			ret = CLI_ERR;
			goto close;
		}
		if (strcmp(format, "json") == 0)
			write_json(f.db[k], &in, stores[k], &so);
		else
			write_table(f.db[k], &in, stores[k], &so);
	}
close:
	filter_close(stores, f.ndb);
out:
	return ret;
}
