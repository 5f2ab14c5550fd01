/*
 * fuzz_pricing.c - the pricing file parser (providers/pricing.h pricing_parse and
 * pricing_merge), as `tokshim` meets a user's override file or a downloaded price list.
 *
 * Input: the text of a pricing document. When it parses, every model in it is looked up by its
 * own name and with a provider prefix (both must find a price) and a record of large token
 * counts is priced by it, so that UBSan sees the cost arithmetic at its extremes; the document
 * is then merged over the table it made (a merge of a valid document must succeed). Its model
 * names go through pricing_normalise, and the text through pricing_decimal as a number.
 */
#include <string.h>

#include "fuzz/fuzz.h"
#include "providers/pricing.h"

struct walk {
	const struct pricing *p;
	struct record rec;
};

static int each_model(const struct pricing_entry *e, void *arg)
{
	struct walk *w = arg;
	char out[PRICING_NAME_MAX], prefixed[PRICING_NAME_MAX + 64];
	struct pricing_parts parts;
	int64_t pusd;
	int n;

	(void)pricing_normalise(e->model, strlen(e->model), out);
	n = snprintf(prefixed, sizeof prefixed, "%s/%s", e->provider ? e->provider : "x",
		     e->model);
	if (n > 0 && (size_t)n < sizeof prefixed)
		(void)pricing_lookup(w->p, NULL, 0, prefixed, (size_t)n);
	(void)pricing_cost_pusd(e->price, &w->rec);
	pricing_cost_parts(e->price, &w->rec, &parts);
	(void)pricing_parts_sum(&parts);
	w->rec.model = record_str_of(e->model);
	w->rec.provider = record_str_of(e->provider);
	(void)pricing_record_cost(w->p, &w->rec, &pusd);
	(void)pricing_record_parts(w->p, &w->rec, &parts);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pricing *p = NULL;
	char err[256];
	struct walk w;
	int64_t dec;
	char *text = malloc(size + 1); /* pricing_decimal reads a NUL-terminated number */

	if (text == NULL)
		goto done;
	memcpy(text, data, size);
	text[size] = '\0';
	if (pricing_decimal(text, 12, &dec) == 0)
		FUZZ_CHECK(dec >= 0);
	free(text);
	if (pricing_parse(&p, (const char *)data, size, err, sizeof err) != 0) {
		FUZZ_CHECK(p == NULL);
		FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
		goto done;
	}
	memset(&w, 0, sizeof w);
	w.p = p;
	w.rec.status = 200;
	w.rec.input_tokens = INT64_MAX / 2;
	w.rec.output_tokens = INT64_MAX / 3;
	w.rec.cache_read_tokens = INT64_MAX / 4;
	w.rec.cache_write_tokens = INT64_MAX / 5;
	w.rec.reasoning_tokens = 7;
	w.rec.search_queries = INT64_MAX;
	w.rec.search_context = 3;
	w.rec.cache_write_1h_tokens = INT64_MAX;
	w.rec.service_tier = RECORD_TIER_PRIORITY; /* a multiplier of an extreme cost */
	(void)pricing_each(p, each_model, &w);
	w.rec.input_tokens = 1000;
	w.rec.output_tokens = 10;
	w.rec.flags = RECORD_BILLED_UNITS;
	w.rec.billed_input_tokens = INT64_MAX;
	w.rec.billed_output_tokens = 3;
	(void)pricing_each(p, each_model, &w);
	FUZZ_CHECK(pricing_merge(p, (const char *)data, size, "fuzz", err, sizeof err) == 0);
	pricing_free(p);
done:
	return 0;
}
