/*
 * exchange.c - `tokshim show`'s rendering of one exchange (see exchange.h).
 *
 * A streamed response is stored as the raw event stream, which is what a provider sent but
 * not what a person wants to read: hundreds of one-word deltas. So besides the raw body we put
 * the stream back together with the same framers the shim uses (http/stream.h), reading the
 * text deltas of each wire API. Unknown event shapes are counted, never an error: `show` is
 * for debugging exactly the exchanges that look odd.
 */
#include "analyzer/exchange.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/format.h"
#include "http/http.h"
#include "http/stream.h"

/* Content-Type of a response head, found with the shim's own HTTP parser. */
struct head_probe {
	char content_type[128];
};

static enum http_body_mode probe_head(void *ctx, const struct http_head *head)
{
	struct head_probe *p = ctx;
	const struct http_header *h = http_head_get(head, "content-type");
	size_t n;

	if (h && head->status >= 200) {
		n = h->value_len < sizeof p->content_type - 1 ? h->value_len
							      : sizeof p->content_type - 1;
		memcpy(p->content_type, h->value, n);
		p->content_type[n] = '\0';
	}
	return HTTP_BODY_SKIP;
}

static void probe_body(void *ctx, const char *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
}

static void probe_end(void *ctx, int complete)
{
	(void)ctx;
	(void)complete;
}

static int has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

enum exchange_stream exchange_stream_kind(const char *resp_head, size_t head_len,
					  const char *body, size_t body_len)
{
	static const struct http_parser_callbacks cb = { probe_head, probe_body, probe_end };
	struct head_probe probe = { { 0 } };
	struct http_parser parser;
	enum exchange_stream kind = EXCHANGE_BODY;
	size_t i, end_len = 4;

	if (head_len > 0) {
		http_parser_init(&parser, HTTP_DIR_RESPONSE, &cb, &probe);
		/* An HTTP/2 or HTTP/3 exchange's head is stored as "HTTP/2 200 …" (capture/h2.c,
		 * libcurl's transfers): the same fields once its version reads as HTTP/1.1. */
		if (head_len > 7 && memcmp(resp_head, "HTTP/", 5) == 0 && resp_head[5] != '1' &&
		    resp_head[6] == ' ') {
			http_parser_feed(&parser, "HTTP/1.1", 8);
			resp_head += 6;
			head_len -= 6;
		}
		http_parser_feed(&parser, resp_head, head_len);
		/* A stored head may lack its final blank line: complete it. */
		if (head_len >= 4 && memcmp(resp_head + head_len - 4, "\r\n\r\n", 4) == 0)
			end_len = 0;
		else if (head_len >= 2 && memcmp(resp_head + head_len - 2, "\r\n", 2) == 0)
			end_len = 2;
		if (end_len)
			http_parser_feed(&parser, "\r\n\r\n", end_len);
		http_parser_release(&parser);
	}
	for (i = 0; probe.content_type[i]; i++)
		probe.content_type[i] = (char)tolower((unsigned char)probe.content_type[i]);
	if (has_prefix_ci(probe.content_type, "text/event-stream")) {
		kind = EXCHANGE_SSE;
	} else if (has_prefix_ci(probe.content_type, "application/x-ndjson") ||
		   has_prefix_ci(probe.content_type, "application/jsonl") ||
		   has_prefix_ci(probe.content_type, "application/json-seq")) {
		kind = EXCHANGE_NDJSON;
	} else if (probe.content_type[0] == '\0' && body_len > 5 &&
		   (strncmp(body, "data:", 5) == 0 || strncmp(body, "event:", 6) == 0)) {
		kind = EXCHANGE_SSE;
	}
	return kind;
}

/* Appends p[0..n) to t up to max bytes. Returns 0, or -1 when out of memory. */
static int text_add(struct exchange_text *t, size_t max, const char *p, size_t n)
{
	size_t cap;
	char *grown;
	int ret = 0;

	if (t->len + n > max) {
		t->cut = 1;
		n = max - t->len;
	}
	if (t->len + n + 1 > t->cap) {
		cap = t->cap ? t->cap : 256;
		while (cap < t->len + n + 1)
			cap *= 2;
		grown = realloc(t->p, cap);
		if (grown == NULL) {
			ret = -1;
			goto out;
		}
		t->p = grown;
		t->cap = cap;
	}
	memcpy(t->p + t->len, p, n);
	t->len += n;
	t->p[t->len] = '\0';
out:
	return ret;
}

/* Appends a JSON string's value to t. */
static void text_add_item(struct stream_summary *s, struct exchange_text *t, size_t max,
			  const cJSON *item)
{
	if (cJSON_IsString(item) && item->valuestring &&
	    text_add(t, max, item->valuestring, strlen(item->valuestring)) != 0)
		s->failed = 1;
}

static void text_append_item(struct stream_summary *s, const cJSON *item)
{
	text_add_item(s, &s->text, EXCHANGE_TEXT_MAX, item);
}

/* The tool call at this index, created when new; NULL past EXCHANGE_TOOLS_MAX. */
static struct stream_tool *tool_at(struct stream_summary *s, int64_t index)
{
	struct stream_tool *t = NULL;
	size_t i;

	for (i = 0; i < s->ntools && t == NULL; i++)
		if (s->tools[i].index == index)
			t = &s->tools[i];
	if (t == NULL && s->ntools == EXCHANGE_TOOLS_MAX) {
		s->tools_cut = 1;
	} else if (t == NULL) {
		t = &s->tools[s->ntools++];
		memset(t, 0, sizeof *t);
		t->index = index;
	}
	return t;
}

static int64_t index_of(const cJSON *obj, const char *key, int64_t dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

/* A whole call in one piece (Ollama, Gemini): name and an arguments object. */
static void tool_whole(struct stream_summary *s, const cJSON *name, const cJSON *args)
{
	/* Negative indexes: whole calls never meet the indexed deltas of other APIs. */
	struct stream_tool *t = tool_at(s, -1 - (int64_t)s->ntools);
	char *text = NULL;

	if (t != NULL) {
		text_add_item(s, &t->name, EXCHANGE_ARGS_MAX, name);
		text = args ? cJSON_PrintUnformatted(args) : NULL;
		if (text && text_add(&t->args, EXCHANGE_ARGS_MAX, text, strlen(text)) != 0)
			s->failed = 1;
	}
	free(text);
}

/* The tool-call shapes of each wire API (see exchange.h). */
static void tools_of_event(struct stream_summary *s, const cJSON *root, const char *type)
{
	const cJSON *call, *fn, *block, *delta, *item, *part;
	struct stream_tool *t;

	item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
	delta = cJSON_GetObjectItemCaseSensitive(item, "delta");
	cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls"))
	{
		t = tool_at(s, index_of(call, "index", 0));
		fn = cJSON_GetObjectItemCaseSensitive(call, "function");
		if (t) {
			text_add_item(s, &t->name, EXCHANGE_ARGS_MAX,
				      cJSON_GetObjectItemCaseSensitive(fn, "name"));
			text_add_item(s, &t->args, EXCHANGE_ARGS_MAX,
				      cJSON_GetObjectItemCaseSensitive(fn, "arguments"));
		}
	}
	block = cJSON_GetObjectItemCaseSensitive(root, "content_block");
	delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
	item = cJSON_GetObjectItemCaseSensitive(root, "item");
	if (strcmp(type, "content_block_start") == 0 &&
	    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(block, "type")) &&
	    strcmp(cJSON_GetObjectItemCaseSensitive(block, "type")->valuestring, "tool_use") == 0) {
		t = tool_at(s, index_of(root, "index", 0));
		if (t)
			text_add_item(s, &t->name, EXCHANGE_ARGS_MAX,
				      cJSON_GetObjectItemCaseSensitive(block, "name"));
	} else if (strcmp(type, "content_block_delta") == 0 &&
		   cJSON_GetObjectItemCaseSensitive(delta, "partial_json")) {
		t = tool_at(s, index_of(root, "index", 0));
		if (t)
			text_add_item(s, &t->args, EXCHANGE_ARGS_MAX,
				      cJSON_GetObjectItemCaseSensitive(delta, "partial_json"));
	} else if (strcmp(type, "response.output_item.added") == 0 &&
		   cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item, "type")) &&
		   strcmp(cJSON_GetObjectItemCaseSensitive(item, "type")->valuestring,
			  "function_call") == 0) {
		t = tool_at(s, index_of(root, "output_index", 0));
		if (t)
			text_add_item(s, &t->name, EXCHANGE_ARGS_MAX,
				      cJSON_GetObjectItemCaseSensitive(item, "name"));
	} else if (strcmp(type, "response.function_call_arguments.delta") == 0) {
		t = tool_at(s, index_of(root, "output_index", 0));
		if (t)
			text_add_item(s, &t->args, EXCHANGE_ARGS_MAX, delta);
	}
	item = cJSON_GetObjectItemCaseSensitive(root, "message");
	cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(item, "tool_calls"))
	{
		fn = cJSON_GetObjectItemCaseSensitive(call, "function");
		tool_whole(s, cJSON_GetObjectItemCaseSensitive(fn, "name"),
			   cJSON_GetObjectItemCaseSensitive(fn, "arguments"));
	}
	item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "candidates"), 0);
	item = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, "content"),
						"parts");
	cJSON_ArrayForEach(part, item)
	{
		fn = cJSON_GetObjectItemCaseSensitive(part, "functionCall");
		if (fn)
			tool_whole(s, cJSON_GetObjectItemCaseSensitive(fn, "name"),
				   cJSON_GetObjectItemCaseSensitive(fn, "args"));
	}
}

/* Copies the members of src over s->usage (later events carry the cumulative values). */
static void usage_merge(struct stream_summary *s, const cJSON *src)
{
	const cJSON *m;
	cJSON *dup;

	if (!cJSON_IsObject(src))
		goto out;
	if (s->usage == NULL) {
		s->usage = cJSON_CreateObject();
		if (s->usage == NULL)
			goto nomem;
	}
	cJSON_ArrayForEach(m, src)
	{
		if (m->string == NULL)
			continue;
		dup = cJSON_Duplicate(m, 1);
		if (dup == NULL)
			goto nomem;
		if (cJSON_HasObjectItem(s->usage, m->string))
			cJSON_ReplaceItemInObjectCaseSensitive(s->usage, m->string, dup);
		else
			cJSON_AddItemToObject(s->usage, m->string, dup);
	}
	goto out;
nomem:
	s->failed = 1;
out:
	return;
}

/* Ollama's final line carries its counts at the top level, not in a usage object. */
static void ollama_counts(struct stream_summary *s, const cJSON *root)
{
	static const char *const keys[] = { "prompt_eval_count", "eval_count" };
	cJSON *counts = cJSON_CreateObject();
	const cJSON *v;
	size_t i;

	if (counts == NULL) {
		s->failed = 1;
		goto out;
	}
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
		if (cJSON_IsNumber(v))
			cJSON_AddNumberToObject(counts, keys[i], v->valuedouble);
	}
	if (counts->child)
		usage_merge(s, counts);
	cJSON_Delete(counts);
out:
	return;
}

static void on_event(void *ctx, const char *name, size_t name_len, const char *data, size_t len)
{
	struct stream_summary *s = ctx;
	const cJSON *type, *delta, *item, *part, *message;
	cJSON *root;

	(void)name;
	(void)name_len;
	s->events++;
	/* OpenAI ends its streams with a data line that is not JSON. */
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
		goto out;
	root = cJSON_ParseWithLength(data, len);
	if (root == NULL) {
		s->not_json++;
		goto out;
	}
	type = cJSON_GetObjectItemCaseSensitive(root, "type");
	/* OpenAI chat completions: choices[0].delta.content. */
	item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "choices"), 0);
	delta = cJSON_GetObjectItemCaseSensitive(item, "delta");
	text_append_item(s, cJSON_GetObjectItemCaseSensitive(delta, "content"));
	/* Anthropic messages: content_block_delta → delta.text; usage in message_start's
	 * message and in message_delta. OpenAI responses: output_text deltas, usage at the end. */
	delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
	if (cJSON_IsString(type) && strcmp(type->valuestring, "content_block_delta") == 0)
		text_append_item(s, cJSON_GetObjectItemCaseSensitive(delta, "text"));
	if (cJSON_IsString(type) && strcmp(type->valuestring, "response.output_text.delta") == 0)
		text_append_item(s, delta);
	message = cJSON_GetObjectItemCaseSensitive(root, "message");
	usage_merge(s, cJSON_GetObjectItemCaseSensitive(message, "usage"));
	usage_merge(s, cJSON_GetObjectItemCaseSensitive(
			       cJSON_GetObjectItemCaseSensitive(root, "response"), "usage"));
	/* Ollama: message.content (chat) or response (generate); counts on the done line. */
	text_append_item(s, cJSON_GetObjectItemCaseSensitive(message, "content"));
	text_append_item(s, cJSON_GetObjectItemCaseSensitive(root, "response"));
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "done")))
		ollama_counts(s, root);
	/* Gemini: candidates[0].content.parts[].text, usageMetadata. */
	item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "candidates"), 0);
	item = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, "content"),
						"parts");
	cJSON_ArrayForEach(part, item)
	{
		/* Gemini marks its thinking parts "thought": true; they are not the answer. */
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(part, "thought")))
			text_append_item(s, cJSON_GetObjectItemCaseSensitive(part, "text"));
	}
	usage_merge(s, cJSON_GetObjectItemCaseSensitive(root, "usageMetadata"));
	/* Any family: a top-level usage object (OpenAI's last chunk, Anthropic message_delta). */
	usage_merge(s, cJSON_GetObjectItemCaseSensitive(root, "usage"));
	tools_of_event(s, root, cJSON_IsString(type) ? type->valuestring : "");
	cJSON_Delete(root);
out:
	return;
}

int exchange_reassemble(enum exchange_stream kind, const char *body, size_t len,
			struct stream_summary *out)
{
	struct sse_parser sse;
	struct ndjson_parser nd;
	int ret = 0;

	memset(out, 0, sizeof *out);
	if (kind == EXCHANGE_SSE) {
		sse_parser_init(&sse, STREAM_EVENT_MAX_DEFAULT, on_event, out);
		if (sse_parser_feed(&sse, body, len) != 0)
			out->failed = 1;
		sse_parser_finish(&sse);
		out->dropped = sse.dropped;
		sse_parser_release(&sse);
	} else if (kind == EXCHANGE_NDJSON) {
		ndjson_parser_init(&nd, STREAM_EVENT_MAX_DEFAULT, on_event, out);
		if (ndjson_parser_feed(&nd, body, len) != 0)
			out->failed = 1;
		ndjson_parser_finish(&nd);
		out->dropped = nd.dropped;
		ndjson_parser_release(&nd);
	}
	if (out->failed)
		ret = -1;
	return ret;
}

void stream_summary_release(struct stream_summary *s)
{
	size_t i;

	for (i = 0; i < s->ntools; i++) {
		free(s->tools[i].name.p);
		free(s->tools[i].args.p);
	}
	free(s->text.p);
	cJSON_Delete(s->usage);
	memset(s, 0, sizeof *s);
}

/* Printing */

struct style {
	const char *bold, *dim, *off;
};

/* Writes text with control characters other than newline and tab shown as '.', so a binary
 * or hostile body cannot drive the terminal. CR of CRLF line ends is dropped. */
static void print_raw(FILE *f, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue;
		if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f))
			putc(c, f);
		else
			putc('.', f);
	}
}

/* A block of text, ending with a newline. */
static void print_text(FILE *f, const char *p, size_t n)
{
	print_raw(f, p, n);
	if (n > 0 && p[n - 1] != '\n')
		putc('\n', f);
}

/* A record string inside a line (from the network or the environment: never trusted). */
static void print_str(FILE *f, const struct record_str *s)
{
	print_raw(f, s->p, s->n);
}

static void section(FILE *f, const struct style *st, const char *title, const char *detail)
{
	fprintf(f, "\n%s── %s%s%s ──%s\n", st->bold, title, detail ? " " : "", detail ? detail : "",
		st->off);
}

static void field(FILE *f, const struct style *st, const char *name)
{
	fprintf(f, "%s%-10s%s ", st->dim, name, st->off);
}

/* What prices the call beyond its tokens (record version 3), one line when there is any:
 * the provider's billed units, the one-hour cache writes, the service tier. */
static void show_billing(FILE *f, const struct style *st, const struct record *rec)
{
	const char *tier = record_tier_name(rec->service_tier), *sep = "";

	if (!(rec->flags & RECORD_BILLED_UNITS) && rec->cache_write_1h_tokens <= 0 && tier == NULL)
		goto done;
	field(f, st, "billing");
	if (rec->flags & RECORD_BILLED_UNITS) {
		fprintf(f, "billed units: input %" PRId64 ", output %" PRId64, rec->billed_input_tokens,
			rec->billed_output_tokens);
		sep = "; ";
	}
	if (rec->cache_write_1h_tokens > 0) {
		fprintf(f, "%scache writes for 1 hour %" PRId64, sep, rec->cache_write_1h_tokens);
		sep = "; ";
	}
	if (tier != NULL)
		fprintf(f, "%sservice tier %s", sep, tier);
	putc('\n', f);
done:
	return;
}

/* Parses p[0..n) as one JSON value followed by nothing but white space: cJSON alone would
 * accept the first line of an NDJSON stream as the whole body. NULL when it is not that. */
static cJSON *parse_whole_json(const char *p, size_t n)
{
	const char *end = NULL;
	cJSON *json = cJSON_ParseWithLengthOpts(p, n, &end, 0);

	while (json && end && end < p + n && isspace((unsigned char)*end))
		end++;
	if (json && end != p + n) {
		cJSON_Delete(json);
		json = NULL;
	}
	return json;
}

/* A head without the blank line that ends it (print_text adds the last newline). */
static void print_head(FILE *f, const struct record_str *head)
{
	size_t n = head->n;

	while (n > 0 && (head->p[n - 1] == '\n' || head->p[n - 1] == '\r'))
		n--;
	print_text(f, head->p, n);
}

/*
 * Names what the shim redacted in a stored head, for the section title: the header names
 * whose value is the mark, and "key=" style query parameters of the request line, e.g.
 * "(redacted: authorization, cookie, key=)". Empty when nothing was.
 */
static void redacted_names(const struct record_str *head, char *out, size_t cap)
{
	static const char mark[] = "[REDACTED]";
	const char *p = head->p, *end = head->p + head->n, *eol, *q;
	size_t len = 0, mlen = sizeof mark - 1;
	int first_line = 1;

	out[0] = '\0';
	for (; p != NULL && p < end; p = eol + 1, first_line = 0) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		for (q = p; q + mlen <= eol; q++) {
			const char *name = q;

			if (memcmp(q, mark, mlen) != 0)
				continue;
			if (first_line) { /* a query parameter: back to its '?' or '&' */
				while (name > p && name[-1] != '?' && name[-1] != '&')
					name--;
			} else {
				name = p;
			}
			while (q > name && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == ':'))
				q--;
			len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%.*s",
						len ? ", " : "(redacted: ", (int)(q - name), name);
			if (len >= cap)
				len = cap - 1;
			break;
		}
	}
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	if (len > 0 && len + 2 <= cap)
		memcpy(out + len, ")", 2);
}

/* A body: pretty JSON when it parses, else the text; says when the stored part is cut. */
static void print_body(FILE *f, const struct style *st, const char *title,
		       const struct record_str *body, uint64_t size)
{
	char detail[96];
	cJSON *json;
	char *pretty;

	if (body->n == 0 && size == 0)
		goto out;
	if (size > body->n)
		snprintf(detail, sizeof detail, "(%" PRIu64 " bytes, %u stored)", size, body->n);
	else
		snprintf(detail, sizeof detail, "(%u bytes)", body->n);
	section(f, st, title, detail);
	json = parse_whole_json(body->p, body->n);
	pretty = json ? cJSON_Print(json) : NULL;
	if (pretty) {
		fputs(pretty, f);
		putc('\n', f);
	} else {
		print_text(f, body->p, body->n);
	}
	free(pretty);
	cJSON_Delete(json);
out:
	return;
}

static void print_stream(FILE *f, const struct style *st, enum exchange_stream kind,
			 const struct record_str *body)
{
	struct stream_summary s;
	char detail[96];
	char *usage;
	size_t i;

	exchange_reassemble(kind, body->p, body->n, &s);
	snprintf(detail, sizeof detail, "(%s, %" PRIu64 " event%s)",
		 kind == EXCHANGE_SSE ? "server-sent events" : "ndjson", s.events,
		 s.events == 1 ? "" : "s");
	section(f, st, "stream reassembled", detail);
	if (s.text.len) {
		fprintf(f, "%stext%s\n", st->dim, st->off);
		print_text(f, s.text.p, s.text.len);
		if (s.text.cut)
			fprintf(f, "[text cut at %u bytes]\n", EXCHANGE_TEXT_MAX);
	} else if (s.ntools == 0) {
		field(f, st, "text");
		fputs("(none: the stream carried no text deltas)\n", f);
	}
	if (s.ntools)
		fprintf(f, "%stool calls%s\n", st->dim, st->off);
	for (i = 0; i < s.ntools; i++) {
		fputs("  ", f);
		print_raw(f, s.tools[i].name.p, s.tools[i].name.len);
		putc(' ', f);
		print_text(f, s.tools[i].args.p ? s.tools[i].args.p : "{}",
			   s.tools[i].args.p ? s.tools[i].args.len : 2);
		if (s.tools[i].args.cut)
			fprintf(f, "  [arguments cut at %u bytes]\n", EXCHANGE_ARGS_MAX);
	}
	if (s.tools_cut)
		fprintf(f, "  [more than %d tool calls: the rest are not shown]\n",
			EXCHANGE_TOOLS_MAX);
	usage = s.usage ? cJSON_Print(s.usage) : NULL;
	if (usage) {
		fprintf(f, "%susage%s\n", st->dim, st->off);
		fputs(usage, f);
		putc('\n', f);
	} else {
		field(f, st, "usage");
		fputs("(none: the stream carried no usage)\n", f);
	}
	free(usage);
	if (s.not_json || s.dropped)
		fprintf(f, "%s%-10s%s %" PRIu64 " events were not JSON, %" PRIu64
			   " were too large\n",
			st->dim, "skipped", st->off, s.not_json, s.dropped);
	stream_summary_release(&s);
}

/* The method of a request head: its first word. */
static struct record_str head_method(const struct payload *pl)
{
	struct record_str m = { NULL, 0, 0 };
	uint32_t n = 0;

	if (pl == NULL)
		goto out;
	while (n < pl->req_head.n && n < 16 && pl->req_head.p[n] != ' ')
		n++;
	if (n < pl->req_head.n) {
		m.p = pl->req_head.p;
		m.n = n;
	}
out:
	return m;
}

static void print_fields(FILE *f, const struct style *st, const struct record *rec,
			 const struct payload *pl, int priced, int64_t pusd)
{
	struct record_str method = head_method(pl);
	char t[FMT_TIME_MAX], ms[FMT_MS_MAX], usd[FMT_HUMAN_MAX], exact[FMT_PUSD_MAX];
	const char *sep = "";

	fprintf(f, "%srecord %" PRIu64 "%s\n", st->bold, rec->id, st->off);
	fmt_rfc3339(t, rec->ts_ns);
	field(f, st, "time");
	fprintf(f, "%s\n", t);
	field(f, st, "request");
	if (method.n) {
		print_str(f, &method);
		putc(' ', f);
	}
	print_str(f, &rec->host);
	print_str(f, &rec->path);
	putc('\n', f);
	field(f, st, "status");
	if (rec->status)
		fprintf(f, "%d\n", (int)rec->status);
	else
		fputs("no response\n", f);
	field(f, st, "latency");
	fmt_ms(ms, rec->latency_us);
	fprintf(f, "%s ms", ms);
	if (rec->ttfb_us >= 0) {
		fmt_ms(ms, rec->ttfb_us);
		fprintf(f, " (first byte after %s ms)", ms);
	}
	putc('\n', f);
	field(f, st, "agent");
	print_str(f, &rec->agent);
	if (rec->agent_type.n) {
		fputs(" (type ", f);
		print_str(f, &rec->agent_type);
		putc(')', f);
	}
	putc('\n', f);
	if (rec->tenant.n) {
		field(f, st, "tenant");
		print_str(f, &rec->tenant);
		putc('\n', f);
	}
	field(f, st, "session");
	print_str(f, &rec->session);
	putc('\n', f);
	field(f, st, "process");
	print_str(f, &rec->process);
	fprintf(f, " (pid %d)\n", (int)rec->pid);
	field(f, st, "provider");
	print_str(f, &rec->provider);
	fputs(" (", f);
	print_str(f, &rec->api);
	fprintf(f, ", %s)\n", rec->flags & RECORD_LOCAL ? "local" : "cloud");
	field(f, st, "model");
	print_str(f, &rec->model);
	if (rec->model_requested.n &&
	    (rec->model_requested.n != rec->model.n ||
	     memcmp(rec->model_requested.p, rec->model.p, rec->model.n) != 0)) {
		fputs(" (asked for ", f);
		print_str(f, &rec->model_requested);
		putc(')', f);
	}
	putc('\n', f);
	field(f, st, "tokens");
	fprintf(f,
		"input %" PRId64 " (cache read %" PRId64 ", cache write %" PRId64 "), output %" PRId64
		" (reasoning %" PRId64 "), total %" PRId64 "%s\n",
		rec->input_tokens, rec->cache_read_tokens, rec->cache_write_tokens, rec->output_tokens,
		rec->reasoning_tokens, record_total_tokens(rec),
		rec->flags & RECORD_ESTIMATED ? " (estimated from the text)" : "");
	show_billing(f, st, rec);
	field(f, st, "cost");
	if (priced) {
		fmt_usd_human(usd, pusd);
		fmt_pusd(exact, pusd);
		fprintf(f, "%s (%s USD%s)\n", usd, exact,
			rec->flags & RECORD_BILLED ? ", billed by the provider" : "");
	} else {
		fputs("unpriced (no price for this model)\n", f);
	}
	if (rec->error.n || rec->error_message.n || rec->retry_after_s >= 0) {
		field(f, st, "error");
		print_str(f, &rec->error);
		if (rec->error_message.n) {
			fputs(": ", f);
			print_str(f, &rec->error_message);
		}
		if (rec->retry_after_s >= 0)
			fprintf(f, " (retry after %d s)", (int)rec->retry_after_s);
		putc('\n', f);
	}
	if (rec->flags & (RECORD_STREAM | RECORD_TRUNCATED | RECORD_NOT_BILLED)) {
		field(f, st, "flags");
		if (rec->flags & RECORD_STREAM) {
			fprintf(f, "%sstream", sep);
			sep = ", ";
		}
		if (rec->flags & RECORD_TRUNCATED) {
			fprintf(f, "%sresponse cut short", sep);
			sep = ", ";
		}
		if (rec->flags & RECORD_NOT_BILLED)
			fprintf(f, "%snot billed", sep);
		putc('\n', f);
	}
}

void exchange_print(FILE *f, const struct record *rec, const struct payload *pl, int priced,
		    int64_t pusd, int colour)
{
	struct style st = { "", "", "" };
	enum exchange_stream kind;
	char redacted[256];

	if (colour) {
		st.bold = "\033[1m";
		st.dim = "\033[2m";
		st.off = "\033[0m";
	}
	print_fields(f, &st, rec, pl, priced, pusd);
	if (pl == NULL) {
		fputs("\nno payload stored: the exchange was captured with TOKSHIM_CAPTURE=off or "
		      "meta, so only the record above was kept\n",
		      f);
		goto out;
	}
	if (pl->req_head.n) {
		redacted_names(&pl->req_head, redacted, sizeof redacted);
		section(f, &st, "request head", redacted[0] ? redacted : NULL);
		print_head(f, &pl->req_head);
	}
	print_body(f, &st, "request body", &pl->req_body, pl->req_body_size);
	if (pl->resp_head.n) {
		redacted_names(&pl->resp_head, redacted, sizeof redacted);
		section(f, &st, "response head", redacted[0] ? redacted : NULL);
		print_head(f, &pl->resp_head);
	}
	print_body(f, &st, "response body", &pl->resp_body, pl->resp_body_size);
	kind = exchange_stream_kind(pl->resp_head.p, pl->resp_head.n, pl->resp_body.p,
				    pl->resp_body.n);
	if (kind != EXCHANGE_BODY)
		print_stream(f, &st, kind, &pl->resp_body);
out:
	return;
}
