/*
 * cmd_show.c - `tokshim show ID`: one exchange in full, for debugging an agent: the record,
 * the redacted heads, the bodies and a streamed response put back together (exchange.c).
 * Ids are per store: with several --db stores a record is named K#ID (its store's position
 * among the --db options, as listings print it); a bare ID is accepted when one store only
 * holds it, and otherwise refused with the K#ID forms that would be meant.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/exchange.h"
#include "analyzer/filter.h"
#include "analyzer/recordfmt.h"
#include "providers/pricing.h"

static const char usage_text[] =
	"usage: tokshim show [--db PATH]... ID|K#ID\n"
	"\n"
	"Show one exchange: method, URL, status, timing, agent, provider, model, tokens and\n"
	"cost, the redacted request and response heads, the bodies (JSON pretty-printed) and a\n"
	"streamed response reassembled into its text and usage. With several --db stores,\n"
	"K#ID names record ID of the K-th store (as listings name it); a bare ID must be in\n"
	"only one of them.\n"
	"\n"
	"Options:\n"
	"  --db PATH            store to read (repeatable); default $TOKSHIM_DB, else\n"
	"                       $XDG_DATA_HOME/tokshim/usage.mdb, else\n"
	"                       ~/.local/share/tokshim/usage.mdb\n";

static int keep_copy(const struct record *rec, void *arg)
{
	struct record **out = arg;

	*out = filter_record_dup(rec);
	return *out ? 0 : STORE_ENOMEM;
}

/* For a bare id already found in one store: is it in another one too? */
static int ignore_record(const struct record *rec, void *arg)
{
	(void)rec;
	(void)arg;
	return 0;
}

int cmd_show(int argc, char **argv)
{
	struct store *stores[FILTER_MAX_DB];
	struct pricing *pricing = NULL;
	struct record *rec = NULL;
	struct payload pl;
	const char *id_arg = NULL, *v;
	struct filter f;
	char ref[RECORDFMT_REF_MAX], others[256] = "";
	uint64_t id = 0;
	int64_t pusd = 0;
	char err[512];
	size_t k, db = SIZE_MAX, found = 0;
	int i, m, priced, have_payload = 0, ret = CLI_OK;

	memset(&pl, 0, sizeof pl);
	filter_init(&f);
	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage_text, stdout);
			goto out;
		}
		m = cli_opt_value("show", argc, argv, &i, "--db", &v);
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
		if (m == 1) {
			if (f.ndb == FILTER_MAX_DB) {
				ret = cli_usage_error("show", "too many '--db' stores");
				goto out;
			}
			f.db[f.ndb++] = v;
		} else if ((argv[i][0] == '-' && argv[i][1] != '\0') || id_arg) {
			ret = cli_unknown_arg("show", argv[i]);
			goto out;
		} else {
			id_arg = argv[i];
		}
	}
	if (id_arg == NULL) {
		ret = cli_usage_error("show", "missing record id");
		goto out;
	}
	if (recordfmt_parse_ref(id_arg, &id, &db) != 0) {
		ret = cli_usage_error("show", "invalid record id '%s'", id_arg);
		goto out;
	}
	ret = cli_reading_setup(&f, &pricing);
	if (ret != CLI_OK)
		goto out;
	if (filter_open(&f, stores, err, sizeof err) != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
		goto free_pricing;
	}
	if (db != SIZE_MAX && db >= f.ndb) {
		ret = cli_usage_error("show", "no store %zu: %zu given with --db", db + 1, f.ndb);
		goto close;
	}
	/* A bare id: every store is asked, so that an id held by two of them is refused. */
	for (k = 0; k < f.ndb; k++) {
		if (db != SIZE_MAX && k != db)
			continue;
		m = store_get(stores[k], id, rec ? ignore_record : keep_copy, &rec);
		if (m == STORE_ENOTFOUND)
			continue;
		if (m != 0) {
			cli_error("cannot read '%s': %s", f.db[k], store_strerror(m));
			ret = CLI_ERR;
			goto close;
		}
		recordfmt_ref(ref, id, k, f.ndb);
		snprintf(others + strlen(others), sizeof others - strlen(others), "%s%s",
			 found ? ", " : "", ref);
		if (found++)
			continue;
		if (rec->flags & RECORD_PAYLOAD) {
			m = store_payload_get(stores[k], id, &pl);
			if (m == 0) {
				have_payload = 1;
			} else if (m != STORE_ENOTFOUND) {
				cli_error("cannot read the payload of record %s in '%s': %s", id_arg,
					  f.db[k], store_strerror(m));
				ret = CLI_ERR;
				goto close;
			}
		}
	}
	if (found > 1) {
		cli_error("record '%s' is in %zu of the stores: name one of %s", id_arg, found,
			  others);
		ret = CLI_ERR;
		goto close;
	}
	if (rec == NULL) {
		cli_error("no record '%s' in %s%s%s", id_arg, f.ndb > 1 ? "any of the stores" : "'",
			  f.ndb > 1 ? "" : f.db[0], f.ndb > 1 ? "" : "'");
		ret = CLI_ERR;
		goto close;
	}
	priced = pricing_record_cost(pricing, rec, &pusd);
	exchange_print(stdout, rec, have_payload ? &pl : NULL, priced, pusd, cli_use_colour());
close:
	payload_release(&pl);
	filter_record_free(rec);
	filter_close(stores, f.ndb);
free_pricing:
	pricing_free(pricing);
out:
	return ret;
}
