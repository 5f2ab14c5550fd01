/*
 * cmd_show.c - `tokshim show ID`: one exchange in full, for debugging an agent: the record,
 * the redacted heads, the bodies and a streamed response put back together (exchange.c).
 * With several --db stores the first one holding the id answers, since ids are per store.
 */
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/exchange.h"
#include "analyzer/filter.h"
#include "providers/pricing.h"

static const char usage_text[] =
	"usage: tokshim show [--db PATH]... ID\n"
	"\n"
	"Show one exchange: method, URL, status, timing, agent, provider, model, tokens and\n"
	"cost, the redacted request and response heads, the bodies (JSON pretty-printed) and a\n"
	"streamed response reassembled into its text and usage.\n"
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

int cmd_show(int argc, char **argv)
{
	struct store *stores[FILTER_MAX_DB];
	struct pricing *pricing = NULL;
	struct record *rec = NULL;
	struct payload pl;
	const char *id_arg = NULL, *v;
	struct filter f;
	uint64_t id = 0;
	int64_t pusd = 0;
	char err[512];
	size_t k;
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
	if (cli_parse_u64(id_arg, &id) != 0 || id == 0) {
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
	for (k = 0; k < f.ndb && rec == NULL; k++) {
		m = store_get(stores[k], id, keep_copy, &rec);
		if (m == STORE_ENOTFOUND)
			continue;
		if (m != 0) {
			cli_error("cannot read '%s': %s", f.db[k], store_strerror(m));
			ret = CLI_ERR;
			goto close;
		}
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
