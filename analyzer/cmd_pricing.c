/*
 * cmd_pricing.c - `tokshim pricing list [MODEL]` and `tokshim pricing update --from SRC`.
 *
 * list shows the table in force (built-in merged with the user override file), each price
 * with the file it came from; with MODEL it shows how the name normalises and which entry
 * prices it, so "why is this unpriced" has an answer. update converts a LiteLLM or
 * OpenRouter price list (analyzer/pimport.c) and merges it into the override file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "analyzer/cli.h"
#include "analyzer/format.h"
#include "analyzer/pimport.h"
#include "providers/pjson.h"
#include "providers/pricing.h"

static const char usage_text[] =
	"usage: tokshim pricing list [MODEL] [--provider P] [--format table|json]\n"
	"       tokshim pricing update --from URL|FILE [--dry-run]\n"
	"\n"
	"list: the prices in force, USD per 1M tokens (fees per call in USD), each with the\n"
	"file it came from. With MODEL: how the name normalises and which entry prices it;\n"
	"exit status 1 when it is unpriced. --provider names the record's provider, which\n"
	"selects provider-specific entries (\"groq/...\").\n"
	"\n"
	"update: reads a price list (LiteLLM's model_prices_and_context_window.json, OpenRouter's\n"
	"/api/v1/models, or a tokshim pricing file) from a URL or a file and merges it into the\n"
	"user override file ($TOKSHIM_PRICING, else $XDG_CONFIG_HOME/tokshim/pricing.json, else\n"
	"~/.config/tokshim/pricing.json). --dry-run shows what would change and writes nothing.\n"
	"Costs are computed when reports are made, so the new prices apply to past records too.\n";

/* Pico-USD per token as USD per 1M tokens, exactly ("0.075"). */
static void per_m(char out[FMT_PUSD_MAX], int64_t pusd_per_token)
{
	fmt_pusd(out, pusd_per_token * 1000000);
}

static void jw_per_m(struct jw *w, const char *key, int64_t pusd_per_token)
{
	char t[FMT_PUSD_MAX];

	per_m(t, pusd_per_token);
	jw_key(w, key);
	jw_number_text(w, t);
}

static void write_price_json(struct jw *w, const struct price *pr)
{
	static const char *const ctx[] = {"low", "medium", "high"};
	int i, any = 0;

	jw_per_m(w, "input", pr->input);
	jw_per_m(w, "output", pr->output);
	jw_per_m(w, "cache_read", pr->cache_read);
	jw_per_m(w, "cache_write", pr->cache_write);
	jw_per_m(w, "cache_write_1h", pr->cache_write_1h);
	jw_key(w, "long_context");
	if (pr->long_threshold > 0) {
		jw_object_begin(w);
		jw_key(w, "threshold");
		jw_int(w, pr->long_threshold);
		jw_per_m(w, "input", pr->long_input);
		jw_per_m(w, "output", pr->long_output);
		jw_per_m(w, "cache_read", pr->long_cache_read);
		jw_per_m(w, "cache_write", pr->long_cache_write);
		jw_per_m(w, "cache_write_1h", pr->long_cache_write_1h);
		jw_object_end(w);
	} else {
		jw_null(w);
	}
	jw_key(w, "request");
	jw_pusd(w, pr->request);
	jw_key(w, "request_by_context");
	for (i = 0; i < 3; i++)
		any |= pr->request_by_context[i] > 0;
	if (any) {
		jw_object_begin(w);
		for (i = 0; i < 3; i++) {
			jw_key(w, ctx[i]);
			jw_pusd(w, pr->request_by_context[i]);
		}
		jw_object_end(w);
	} else {
		jw_null(w);
	}
	jw_key(w, "search");
	jw_pusd(w, pr->search);
	jw_key(w, "service_tiers");
	any = 0;
	for (i = 0; i < 3; i++)
		any |= pr->tier_ppb[i] > 0;
	if (any) {
		jw_object_begin(w);
		for (i = 0; i < 3; i++) {
			if (pr->tier_ppb[i] > 0) {
				jw_key(w, record_tier_name(RECORD_TIER_FLEX + i));
				jw_pusd(w, pr->tier_ppb[i] * 1000); /* a multiplier, as 10^-12 units */
			}
		}
		jw_object_end(w);
	} else {
		jw_null(w);
	}
}

/* The service tiers cell: "flex x0.5, priority x2", or "". */
static void tiers_cell(char *out, size_t cap, const struct price *pr)
{
	char t[FMT_PUSD_MAX];
	size_t n = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < 3 && n < cap; i++) {
		if (pr->tier_ppb[i] > 0) {
			fmt_pusd(t, pr->tier_ppb[i] * 1000);
			n += (size_t)snprintf(out + n, cap - n, "%s%s x%s", n ? ", " : "",
					      record_tier_name(RECORD_TIER_FLEX + i), t);
		}
	}
}

/* The long-context cell: ">200k: 6/22.5" (input/output per 1M), or "". */
static void long_cell(char *out, size_t cap, const struct price *pr)
{
	char in[FMT_PUSD_MAX], o[FMT_PUSD_MAX];

	out[0] = '\0';
	if (pr->long_threshold > 0) {
		per_m(in, pr->long_input);
		per_m(o, pr->long_output);
		if (pr->long_threshold % 1000 == 0)
			snprintf(out, cap, ">%lldk: %s/%s", (long long)pr->long_threshold / 1000, in,
				 o);
		else
			snprintf(out, cap, ">%lld: %s/%s", (long long)pr->long_threshold, in, o);
	}
}

/* The fees cell: "$0.005/req", "$0.005-0.012/req", "$0.005/search", or "". */
static void fees_cell(char *out, size_t cap, const struct price *pr)
{
	char a[FMT_PUSD_MAX], b[FMT_PUSD_MAX], s[FMT_PUSD_MAX];
	int64_t lo = pr->request, hi = pr->request;
	size_t n = 0;
	int i;

	for (i = 0; i < 3; i++) {
		int64_t v = pr->request_by_context[i];
		if (v > 0 && (lo == 0 || v < lo))
			lo = v;
		if (v > hi)
			hi = v;
	}
	out[0] = '\0';
	fmt_pusd(a, lo);
	fmt_pusd(b, hi);
	if (hi > 0 && lo == hi)
		n = (size_t)snprintf(out, cap, "$%s/req", a);
	else if (hi > 0)
		n = (size_t)snprintf(out, cap, "$%s-%s/req", a, b);
	if (pr->search > 0 && n < cap) {
		fmt_pusd(s, pr->search);
		snprintf(out + n, cap - n, "%s$%s/search", n ? " " : "", s);
	}
}

struct listing {
	struct table t;
	struct jw w;
	int json;
	const struct pricing *p;
};

/* Appends one alias to the JSON array text being written to arg (a FILE). */
static int add_alias(const struct pricing_entry *e, void *arg)
{
	FILE *f = arg;

	if (ftell(f) > 1)
		fputc(',', f);
	fmt_json_string(f, e->model, strlen(e->model));
	return 0;
}

/* "aliases": ["…", …] — the writer has no arrays, so the array is written as raw text. */
static void write_aliases(struct jw *w, const struct pricing *p, const char *model)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	jw_key(w, "aliases");
	if (f != NULL) {
		fputc('[', f);
		pricing_each_alias(p, model, add_alias, f);
		fputc(']', f);
	}
	if (f != NULL && fclose(f) == 0)
		jw_number_text(w, text);
	else
		jw_null(w);
	free(text);
}

static int list_one(const struct pricing_entry *e, void *arg)
{
	struct listing *l = arg;
	char in[FMT_PUSD_MAX], out[FMT_PUSD_MAX], cr[FMT_PUSD_MAX], cw[FMT_PUSD_MAX];
	char lc[160], fees[160];
	const char *cells[9];

	if (l->json) {
		jw_key(&l->w, e->model);
		jw_object_begin(&l->w);
		jw_key(&l->w, "provider");
		jw_str_or_null(&l->w, e->provider, e->provider ? strlen(e->provider) : 0);
		jw_key(&l->w, "source");
		jw_str(&l->w, e->source, strlen(e->source));
		write_price_json(&l->w, e->price);
		write_aliases(&l->w, l->p, e->model);
		jw_object_end(&l->w);
	} else {
		per_m(in, e->price->input);
		per_m(out, e->price->output);
		per_m(cr, e->price->cache_read);
		per_m(cw, e->price->cache_write);
		long_cell(lc, sizeof lc, e->price);
		fees_cell(fees, sizeof fees, e->price);
		cells[0] = e->model;
		cells[1] = e->provider ? e->provider : "";
		cells[2] = in;
		cells[3] = out;
		cells[4] = cr;
		cells[5] = cw;
		cells[6] = lc;
		cells[7] = fees;
		cells[8] = e->source;
		table_add(&l->t, cells);
	}
	return 0;
}

/* The override file's path and whether it exists, for the headers of list. */
static void override_state(char *path, size_t cap, int *exists)
{
	struct stat st;

	*exists = 0;
	if (pricing_user_path(path, cap) < 0)
		path[0] = '\0';
	else
		*exists = stat(path, &st) == 0;
}

static void list_all(const struct pricing *p, int json)
{
	static const struct table_col cols[] = {
		{"MODEL", 0, 1, 12},	  {"PROVIDER", 0, 1, 6}, {"INPUT", 1, 0, 0},
		{"OUTPUT", 1, 0, 0},	  {"CACHE_READ", 1, 0, 0}, {"CACHE_WRITE", 1, 0, 0},
		{"LONG_CONTEXT", 0, 0, 0}, {"FEES", 0, 0, 0},	 {"SOURCE", 0, 1, 8},
	};
	struct listing l;
	char path[4096];
	int exists;

	memset(&l, 0, sizeof l);
	l.json = json;
	l.p = p;
	override_state(path, sizeof path, &exists);
	if (json) {
		jw_init(&l.w, stdout, 1);
		jw_object_begin(&l.w);
		jw_key(&l.w, "taken");
		jw_str(&l.w, pricing_taken(p), strlen(pricing_taken(p)));
		jw_key(&l.w, "unit");
		jw_str(&l.w, "USD per 1M tokens; fees USD per call", 36);
		jw_key(&l.w, "override");
		jw_str_or_null(&l.w, path, exists ? strlen(path) : 0);
		jw_key(&l.w, "models");
		jw_object_begin(&l.w);
		pricing_each(p, list_one, &l);
		jw_object_end(&l.w);
		jw_object_end(&l.w);
	} else {
		printf("built-in prices taken %s; override file '%s'%s\n", pricing_taken(p),
		       path[0] ? path : "(none: no HOME)", exists ? "" : " (absent)");
		printf("USD per 1M tokens; LONG_CONTEXT: above N input tokens, input/output\n\n");
		table_init(&l.t, cols, sizeof cols / sizeof cols[0], 1);
		pricing_each(p, list_one, &l);
		table_print(&l.t, stdout, 160, NULL, NULL);
		table_release(&l.t);
	}
}

/* `pricing list MODEL`: how the name resolves. Returns CLI_OK when priced, CLI_ERR when not. */
static int list_model(const struct pricing *p, const char *model, const char *provider,
		      int json)
{
	struct pricing_match m;
	const struct price *pr = pricing_lookup_match(p, provider, provider ? strlen(provider) : 0,
						      model, strlen(model), &m);
	struct jw w;
	char a[FMT_PUSD_MAX], b[FMT_PUSD_MAX], c[FMT_PUSD_MAX], d[FMT_PUSD_MAX], lc[160], fees[160];

	if (json) {
		jw_init(&w, stdout, 1);
		jw_object_begin(&w);
		jw_key(&w, "model");
		jw_str(&w, model, strlen(model));
		jw_key(&w, "provider");
		jw_str_or_null(&w, provider, provider ? strlen(provider) : 0);
		jw_key(&w, "normalised");
		jw_str(&w, m.tried, strlen(m.tried));
		jw_key(&w, "priced");
		jw_bool(&w, pr != NULL);
		if (pr != NULL) {
			jw_key(&w, "entry");
			jw_str(&w, m.entry, strlen(m.entry));
			jw_key(&w, "matched");
			jw_str(&w, m.key, strlen(m.key));
			jw_key(&w, "source");
			jw_str(&w, m.source, strlen(m.source));
			write_price_json(&w, pr);
		}
		jw_object_end(&w);
	} else if (pr == NULL) {
		printf("'%s' is unpriced: no entry matches '%s'%s%s%s\n", model, m.tried,
		       provider ? " (provider '" : "", provider ? provider : "", provider ? "')" : "");
		printf("its tokens are reported as unpriced, never as $0; add it to the override "
		       "file (docs/pricing.md)\n");
	} else {
		per_m(a, pr->input);
		per_m(b, pr->output);
		per_m(c, pr->cache_read);
		per_m(d, pr->cache_write);
		printf("model        %s\n", model);
		printf("normalised   %s\n", m.tried);
		if (strcmp(m.key, m.entry) != 0)
			printf("priced by    %s (as '%s')\n", m.entry, m.key);
		else
			printf("priced by    %s\n", m.entry);
		printf("provider     %s\n", m.provider ? m.provider : "-");
		printf("source       %s\n", m.source);
		printf("per 1M       input %s, output %s, cache read %s, cache write %s\n", a, b, c,
		       d);
		long_cell(lc, sizeof lc, pr);
		if (lc[0])
			printf("long context %s\n", lc);
		fees_cell(fees, sizeof fees, pr);
		if (fees[0])
			printf("fees         %s\n", fees);
		per_m(a, pr->cache_write_1h);
		printf("1h cache     write %s\n", a);
		tiers_cell(fees, sizeof fees, pr);
		if (fees[0])
			printf("tiers        %s\n", fees);
	}
	return pr != NULL ? CLI_OK : CLI_ERR;
}

static int cmd_pricing_list(int argc, char **argv)
{
	const char *format = "table", *provider = NULL, *model = NULL;
	struct pricing *p = NULL;
	char err[512];
	int i, m, ret = CLI_OK;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage_text, stdout);
			goto out;
		}
		m = cli_opt_value("pricing", argc, argv, &i, "--format", &format);
		if (m == 0)
			m = cli_opt_value("pricing", argc, argv, &i, "--provider", &provider);
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
		if (m == 0 && (argv[i][0] == '-' || model != NULL)) {
			ret = cli_unknown_arg("pricing", argv[i]);
			goto out;
		}
		if (m == 0)
			model = argv[i];
	}
	ret = cli_check_format("pricing", format, CLI_FORMATS("table", "json"));
	if (ret != CLI_OK)
		goto out;
	if (pricing_load(&p, err, sizeof err) != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
		goto out;
	}
	if (model != NULL)
		ret = list_model(p, model, provider, strcmp(format, "json") == 0);
	else
		list_all(p, strcmp(format, "json") == 0);
	pricing_free(p);
out:
	return ret;
}

struct tally {
	int dry_run;
	long added, changed, same;
};

static void print_change(const char *model, enum pimport_change change, const cJSON *before,
			 const cJSON *after, void *arg)
{
	struct tally *t = arg;
	char *b = NULL, *a = NULL;

	if (change == PIMPORT_ADDED)
		t->added++;
	else if (change == PIMPORT_CHANGED)
		t->changed++;
	else
		t->same++;
	if (!t->dry_run || change == PIMPORT_SAME)
		goto out;
	a = cJSON_PrintUnformatted(after);
	if (change == PIMPORT_ADDED) {
		printf("add     %s %s\n", model, a ? a : "");
	} else {
		b = cJSON_PrintUnformatted(before);
		printf("change  %s %s -> %s\n", model, b ? b : "", a ? a : "");
	}
out:
	free(a);
	free(b);
}

/* The existing override file as a tree into *doc (NULL when it does not exist). */
static int read_override(const char *path, cJSON **doc)
{
	struct stat st;
	char *data = NULL, err[512];
	size_t len = 0;
	int ret = CLI_OK;

	*doc = NULL;
	if (stat(path, &st) != 0)
		goto out;
	if (pimport_read(path, &data, &len, err, sizeof err) != 0) {
		cli_error("%s", err);
		ret = CLI_ERR;
		goto out;
	}
	*doc = pjson_parse(data, len);
	if (!cJSON_IsObject(*doc)) {
		cli_error("cannot update '%s': not valid JSON (fix or remove it first)", path);
		cJSON_Delete(*doc);
		*doc = NULL;
		ret = CLI_ERR;
	}
	free(data);
out:
	return ret;
}

static int cmd_pricing_update(int argc, char **argv)
{
	const char *from = NULL;
	struct tally t = {0};
	enum pimport_schema schema;
	struct pricing *check = NULL;
	cJSON *models = NULL, *doc = NULL;
	char path[4096], err[512], today[16], *data = NULL, *text = NULL;
	time_t now = time(NULL);
	struct tm tm;
	size_t len = 0;
	int i, m, ret = CLI_USAGE;

	for (i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage_text, stdout);
			ret = CLI_OK;
			goto out;
		}
		if (strcmp(argv[i], "--dry-run") == 0) {
			t.dry_run = 1;
			continue;
		}
		m = cli_opt_value("pricing", argc, argv, &i, "--from", &from);
		if (m < 0)
			goto out;
		if (m == 0) {
			ret = cli_unknown_arg("pricing", argv[i]);
			goto out;
		}
	}
	if (from == NULL) {
		ret = cli_usage_error("pricing", "update needs --from URL|FILE");
		goto out;
	}
	ret = CLI_ERR;
	if (pricing_user_path(path, sizeof path) < 0) {
		cli_error("no place for the override file: set TOKSHIM_PRICING or HOME");
		goto out;
	}
	if (pimport_read(from, &data, &len, err, sizeof err) != 0) {
		cli_error("%s", err);
		goto out;
	}
	if (pimport_convert(data, len, &models, &schema, err, sizeof err) != 0) {
		cli_error("cannot use '%s': %s", from, err);
		goto out;
	}
	if (read_override(path, &doc) != CLI_OK)
		goto out;
	gmtime_r(&now, &tm);
	strftime(today, sizeof today, "%Y-%m-%d", &tm);
	i = pimport_merge(&doc, models, from, today, print_change, &t, err, sizeof err);
	models = NULL;
	if (i != 0) {
		cli_error("cannot update '%s': %s", path, err);
		goto out;
	}
	text = cJSON_Print(doc);
	if (text == NULL) {
		cli_error("cannot update '%s': out of memory", path);
		goto out;
	}
	/* What is written must load: a list that would break every report is refused here. */
	if (pricing_parse(&check, text, strlen(text), err, sizeof err) != 0) {
		cli_error("cannot update '%s': the merged file would not load: %s", path, err);
		goto out;
	}
	printf("%s price list '%s': %ld added, %ld changed, %ld unchanged\n",
	       pimport_schema_name(schema), from, t.added, t.changed, t.same);
	if (t.dry_run) {
		printf("dry run: '%s' not written\n", path);
	} else {
		if (pimport_write_atomic(path, text, err, sizeof err) != 0) {
			cli_error("%s", err);
			goto out;
		}
		printf("wrote '%s'\n", path);
	}
	ret = CLI_OK;
out:
	pricing_free(check);
	free(text);
	cJSON_Delete(doc);
	cJSON_Delete(models);
	free(data);
	return ret;
}

int cmd_pricing(int argc, char **argv)
{
	int ret;

	if (argc < 2) {
		ret = cli_usage_error("pricing", "a subcommand is needed: list or update");
	} else if (cli_is_help(argv[1])) {
		fputs(usage_text, stdout);
		ret = CLI_OK;
	} else if (strcmp(argv[1], "list") == 0) {
		ret = cmd_pricing_list(argc - 1, argv + 1);
	} else if (strcmp(argv[1], "update") == 0) {
		ret = cmd_pricing_update(argc - 1, argv + 1);
	} else {
		ret = cli_usage_error("pricing", "unknown subcommand '%s': expected list or update",
				      argv[1]);
	}
	return ret;
}
