/*
 * format.c - output helpers for the tokshim commands (see format.h).
 *
 * Costs arrive as int64 pico-USD and leave as decimal text built with integer arithmetic
 * only: a report over millions of records must print the same cents whatever order it summed
 * them in, and a double cannot promise that. Strings from records are network bytes, so the
 * JSON writer validates UTF-8 rather than trusting it: one stray byte must not make a whole
 * jsonl export unparseable.
 */
#include "analyzer/format.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PUSD_PER_USD INT64_C(1000000000000)

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when it is not valid. */
static size_t utf8_valid_len(const unsigned char *p, size_t n)
{
	size_t len = 0, i;
	uint32_t cp = 0;

	if (p[0] < 0x80) {
		len = 1;
		goto out;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	}
	if (len == 0 || len > n)
		goto invalid;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			goto invalid;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		goto invalid;
	goto out;
invalid:
	len = 0;
out:
	return len;
}

void fmt_json_string(FILE *f, const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, len;

	putc('"', f);
	while (i < n) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			putc('\\', f);
			putc(c, f);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			switch (c) {
			case '\n': fputs("\\n", f); break;
			case '\r': fputs("\\r", f); break;
			case '\t': fputs("\\t", f); break;
			case '\b': fputs("\\b", f); break;
			case '\f': fputs("\\f", f); break;
			default: fprintf(f, "\\u%04x", c); break;
			}
			i++;
		} else if (c < 0x80) {
			putc(c, f);
			i++;
		} else {
			len = utf8_valid_len(s + i, n - i);
			if (len == 0) {
				fputs("\\ufffd", f);
				i++;
			} else {
				fwrite(s + i, 1, len, f);
				i += len;
			}
		}
	}
	putc('"', f);
}

/* Splits ns since the epoch into whole seconds and a non-negative ns remainder. */
static void split_ns(int64_t ts_ns, time_t *sec, long *ns)
{
	int64_t s = ts_ns / 1000000000, r = ts_ns % 1000000000;

	if (r < 0) {
		r += 1000000000;
		s--;
	}
	*sec = (time_t)s;
	*ns = (long)r;
}

/* Formats ts_ns as UTC: long is RFC 3339 with microseconds, else the short table form. */
static void format_time(char out[FMT_TIME_MAX], int64_t ts_ns, int long_form)
{
	struct tm tm;
	time_t sec;
	long ns;

	split_ns(ts_ns, &sec, &ns);
	if (gmtime_r(&sec, &tm) == NULL)
		snprintf(out, FMT_TIME_MAX, "invalid");
	else if (long_form)
		snprintf(out, FMT_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)(ns / 1000));
	else
		snprintf(out, FMT_TIME_MAX, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void fmt_rfc3339(char out[FMT_TIME_MAX], int64_t ts_ns)
{
	format_time(out, ts_ns, 1);
}

void fmt_time_short(char out[FMT_TIME_MAX], int64_t ts_ns)
{
	format_time(out, ts_ns, 0);
}

void fmt_pusd(char out[FMT_PUSD_MAX], int64_t pusd)
{
	/* Work on the magnitude as unsigned so INT64_MIN has one too. */
	uint64_t mag = pusd < 0 ? (uint64_t)0 - (uint64_t)pusd : (uint64_t)pusd;
	uint64_t whole = mag / (uint64_t)PUSD_PER_USD, frac = mag % (uint64_t)PUSD_PER_USD;
	char digits[16];
	int len;

	snprintf(digits, sizeof digits, "%012" PRIu64, frac);
	len = 12;
	while (len > 0 && digits[len - 1] == '0')
		len--;
	if (len == 0)
		snprintf(out, FMT_PUSD_MAX, "%s%" PRIu64, pusd < 0 ? "-" : "", whole);
	else
		snprintf(out, FMT_PUSD_MAX, "%s%" PRIu64 ".%.*s", pusd < 0 ? "-" : "", whole, len,
			 digits);
}

void fmt_usd_human(char out[FMT_HUMAN_MAX], int64_t pusd)
{
	const uint64_t cent = (uint64_t)PUSD_PER_USD / 100;
	uint64_t mag = pusd < 0 ? (uint64_t)0 - (uint64_t)pusd : (uint64_t)pusd;
	const char *sign = pusd < 0 ? "-" : "";
	char text[FMT_PUSD_MAX];
	uint64_t unit = 1, cents;

	if (mag == 0) {
		snprintf(out, FMT_HUMAN_MAX, "$0");
	} else if (mag >= cent - cent / 200) {
		/* From what rounds to a cent up: dollars and cents. */
		cents = (mag + cent / 2) / cent;
		snprintf(out, FMT_HUMAN_MAX, "%s$%" PRIu64 ".%02" PRIu64, sign, cents / 100,
			 cents % 100);
	} else {
		/* Below a cent: keep two significant digits, so $0.0011 does not read as $0.00. */
		while (unit * 100 <= mag)
			unit *= 10;
		mag = (mag + unit / 2) / unit * unit;
		fmt_pusd(text, (int64_t)mag);
		snprintf(out, FMT_HUMAN_MAX, "%s$%s", sign, text);
	}
}

void fmt_count_human(char out[FMT_HUMAN_MAX], int64_t n)
{
	static const char suffix[] = "kMBT";
	uint64_t mag = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
	const char *sign = n < 0 ? "-" : "";
	uint64_t unit = 1000, tenths, whole;
	int i;

	if (mag < 1000) {
		snprintf(out, FMT_HUMAN_MAX, "%s%" PRIu64, sign, mag);
		goto out;
	}
	/* One decimal below 100 of a unit ("1.2k"), none from there ("123M"); a value that
	 * rounds up to 1000 of a unit moves to the next one ("1.0M", not "1000k"). */
	for (i = 0;; i++, unit *= 1000) {
		tenths = (mag + unit / 20) / (unit / 10);
		if (tenths < 1000) {
			snprintf(out, FMT_HUMAN_MAX, "%s%" PRIu64 ".%" PRIu64 "%c", sign,
				 tenths / 10, tenths % 10, suffix[i]);
			break;
		}
		whole = (mag + unit / 2) / unit;
		if (whole < 1000 || i == 3) {
			snprintf(out, FMT_HUMAN_MAX, "%s%" PRIu64 "%c", sign, whole, suffix[i]);
			break;
		}
	}
out:
	return;
}

void fmt_ms(char out[FMT_MS_MAX], int64_t us)
{
	uint64_t mag = us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;

	snprintf(out, FMT_MS_MAX, "%s%" PRIu64 ".%03" PRIu64, us < 0 ? "-" : "", mag / 1000,
		 mag % 1000);
}

/* JSON writer */

void jw_init(struct jw *w, FILE *f, int pretty)
{
	memset(w, 0, sizeof *w);
	w->f = f;
	w->pretty = pretty;
}

static void jw_newline(struct jw *w)
{
	int i;

	if (w->pretty) {
		putc('\n', w->f);
		for (i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
}

/* Writes what goes before a value or a key: a comma and line break between members. */
static void jw_before(struct jw *w)
{
	if (w->after_key) {
		/* The value of a key goes on the key's line. */
		w->after_key = 0;
	} else if (w->depth > 0 && w->depth <= JW_MAX_DEPTH) {
		if (w->count[w->depth - 1]++ > 0)
			putc(',', w->f);
		jw_newline(w);
	}
}

/* Opens an object or an array (bracket '{' or '['). */
static void jw_open(struct jw *w, int bracket)
{
	jw_before(w);
	putc(bracket, w->f);
	if (w->depth < JW_MAX_DEPTH)
		w->count[w->depth] = 0;
	w->depth++;
}

static void jw_close(struct jw *w, int bracket)
{
	int had = w->depth <= JW_MAX_DEPTH && w->depth > 0 && w->count[w->depth - 1] > 0;

	w->depth--;
	if (had)
		jw_newline(w);
	putc(bracket, w->f);
	if (w->depth == 0 && w->pretty)
		putc('\n', w->f);
}

void jw_object_begin(struct jw *w)
{
	jw_open(w, '{');
}

void jw_object_end(struct jw *w)
{
	jw_close(w, '}');
}

void jw_array_begin(struct jw *w)
{
	jw_open(w, '[');
}

void jw_array_end(struct jw *w)
{
	jw_close(w, ']');
}

void jw_key(struct jw *w, const char *key)
{
	jw_before(w);
	fmt_json_string(w->f, key, strlen(key));
	fputs(w->pretty ? ": " : ":", w->f);
	w->after_key = 1;
}

void jw_str(struct jw *w, const char *p, size_t n)
{
	jw_before(w);
	fmt_json_string(w->f, p, n);
}

void jw_str_or_null(struct jw *w, const char *p, size_t n)
{
	if (n == 0)
		jw_null(w);
	else
		jw_str(w, p, n);
}

void jw_int(struct jw *w, int64_t v)
{
	jw_before(w);
	fprintf(w->f, "%" PRId64, v);
}

void jw_bool(struct jw *w, int v)
{
	jw_before(w);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(struct jw *w)
{
	jw_before(w);
	fputs("null", w->f);
}

void jw_number_text(struct jw *w, const char *text)
{
	jw_before(w);
	fputs(text, w->f);
}

void jw_pusd(struct jw *w, int64_t pusd)
{
	char text[FMT_PUSD_MAX];

	fmt_pusd(text, pusd);
	jw_number_text(w, text);
}

/* Tables */

size_t fmt_display_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

void table_init(struct table *t, const struct table_col *cols, size_t ncols, int header)
{
	size_t i;

	memset(t, 0, sizeof *t);
	if (ncols > TABLE_MAX_COLS)
		ncols = TABLE_MAX_COLS;
	t->ncols = ncols;
	t->header = header;
	for (i = 0; i < ncols; i++) {
		t->cols[i] = cols[i];
		t->width[i] = header ? fmt_display_width(cols[i].title) : 0;
	}
}

/* Copies at most TABLE_CELL_MAX bytes of s, never ending inside a UTF-8 sequence. */
static char *cell_dup(const char *s)
{
	size_t n = strlen(s);
	char *c;

	if (n > TABLE_CELL_MAX) {
		n = TABLE_CELL_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	c = malloc(n + 1);
	if (c != NULL) {
		memcpy(c, s, n);
		c[n] = '\0';
	}
	return c;
}

int table_add(struct table *t, const char *const *cells)
{
	char **grown;
	size_t i, base, cap;
	int ret = -1;

	if (t->nrows == t->cap) {
		cap = t->cap ? t->cap * 2 : 64;
		grown = realloc(t->cells, cap * t->ncols * sizeof *grown);
		if (grown == NULL)
			goto out;
		t->cells = grown;
		t->cap = cap;
	}
	base = t->nrows * t->ncols;
	for (i = 0; i < t->ncols; i++) {
		t->cells[base + i] = cell_dup(cells[i] ? cells[i] : "");
		if (t->cells[base + i] == NULL) {
			while (i-- > 0)
				free(t->cells[base + i]);
			goto out;
		}
	}
	for (i = 0; i < t->ncols; i++) {
		size_t w = fmt_display_width(t->cells[base + i]);

		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
	ret = 0;
out:
	return ret;
}

/* Prints s in a field of w cells: cut with "…" when longer, padded unless last on the line. */
static void print_cell(FILE *f, const char *s, size_t w, int right, int last)
{
	size_t len = fmt_display_width(s), shown = 0, pad;
	const char *p = s;

	if (len > w) {
		/* Print w-1 characters and an ellipsis. */
		while (*p && shown < w - 1) {
			p++;
			while (((unsigned char)*p & 0xc0) == 0x80)
				p++;
			shown++;
		}
		fwrite(s, 1, (size_t)(p - s), f);
		if (w > 0)
			fputs("…", f);
		goto out;
	}
	pad = w - len;
	if (right)
		while (pad-- > 0)
			putc(' ', f);
	fputs(s, f);
	if (!right && !last)
		while (pad-- > 0)
			putc(' ', f);
out:
	return;
}

static void print_row(FILE *f, const struct table *t, const size_t *w, const char *const *cells)
{
	size_t i;

	for (i = 0; i < t->ncols; i++) {
		if (i > 0)
			fputs("  ", f);
		print_cell(f, cells[i], w[i], t->cols[i].right, i + 1 == t->ncols);
	}
	putc('\n', f);
}

void table_print(struct table *t, FILE *f, size_t max_width, const char *title_on,
		 const char *title_off)
{
	size_t w[TABLE_MAX_COLS], total = 0, i, widest;
	const char *titles[TABLE_MAX_COLS];

	for (i = 0; i < t->ncols; i++) {
		w[i] = t->width[i];
		total += w[i] + (i > 0 ? 2 : 0);
	}
	/* Shorten the widest flexible column one cell at a time until the line fits. */
	while (total > max_width) {
		widest = TABLE_MAX_COLS;
		for (i = 0; i < t->ncols; i++)
			if (t->cols[i].flex && w[i] > t->cols[i].min && w[i] > 1 &&
			    (widest == TABLE_MAX_COLS || w[i] > w[widest]))
				widest = i;
		if (widest == TABLE_MAX_COLS)
			break;
		w[widest]--;
		total--;
	}
	if (t->header && !t->header_done) {
		for (i = 0; i < t->ncols; i++)
			titles[i] = t->cols[i].title;
		if (title_on)
			fputs(title_on, f);
		print_row(f, t, w, titles);
		if (title_off)
			fputs(title_off, f);
		t->header_done = 1;
	}
	for (i = 0; i < t->nrows; i++)
		print_row(f, t, w, (const char *const *)&t->cells[i * t->ncols]);
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	t->nrows = 0;
}

void table_release(struct table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}
