/*
 * format.h - output helpers shared by every tokshim command: JSON writing, RFC 3339 times,
 * exact pico-USD amounts, human units and aligned tables.
 *
 * Everything here is pure formatting: no store, no pricing. Money is kept as integer pico-USD
 * up to the moment it is printed, so what a report prints is exactly what was summed; no
 * double ever holds a cost. Fixed-size outputs take caller buffers of the *_MAX sizes below.
 */
#ifndef TOKSHIM_FORMAT_H
#define TOKSHIM_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Buffer sizes for the fixed-size formatters (terminating NUL included). */
#define FMT_TIME_MAX 96 /* "2026-11-25T04:30:00.123456Z"; room for any int fields */
#define FMT_PUSD_MAX 40  /* "-9223372.036854775807" */
#define FMT_HUMAN_MAX 48 /* "1.2M", "$3.45", "$0.0011" */
#define FMT_MS_MAX 32    /* "1234.567" */

/* Writes p[0..n) to f as a JSON string with its quotes. Control characters are escaped and
 * bytes that are not valid UTF-8 become U+FFFD, so the output always parses. p may be NULL
 * when n is 0. */
void fmt_json_string(FILE *f, const char *p, size_t n);

/* RFC 3339 UTC with microseconds: "2026-11-25T04:30:00.123456Z". ts_ns is ns since the epoch;
 * a time before the epoch is floored, never printed with a negative fraction. */
void fmt_rfc3339(char out[FMT_TIME_MAX], int64_t ts_ns);

/* Short UTC form for tables: "2026-11-25 04:30:00". */
void fmt_time_short(char out[FMT_TIME_MAX], int64_t ts_ns);

/* pico-USD as an exact decimal number of dollars, trailing zeros trimmed, at most 12
 * decimals: 1140000000 → "0.00114", 0 → "0", 2500000000000 → "2.5". A valid JSON number. */
void fmt_pusd(char out[FMT_PUSD_MAX], int64_t pusd);

/* pico-USD for people: "$3.45" (cents from $0.01 up), "$0.0011" (two significant digits below
 * a cent), "$0" for nothing. Rounds half up. */
void fmt_usd_human(char out[FMT_HUMAN_MAX], int64_t pusd);

/* A count for people: "999", "1.2k", "1.2M", "3.4B", "5.6T". */
void fmt_count_human(char out[FMT_HUMAN_MAX], int64_t n);

/* Microseconds as milliseconds with three decimals: 1234567 → "1234.567". */
void fmt_ms(char out[FMT_MS_MAX], int64_t us);

/*
 * A small JSON writer: compact (one line, for jsonl) or pretty (two-space indent). Nesting
 * is capped at JW_MAX_DEPTH; deeper opens are ignored, which the fixed shapes we write never
 * reach. Numbers are passed either as integers or as already-formatted text (fmt_pusd).
 */
#define JW_MAX_DEPTH 16

struct jw {
	FILE *f;
	int pretty;
	int depth;
	int count[JW_MAX_DEPTH]; /* members written so far at each depth */
	int after_key;           /* a key was written: the next value follows it on the line */
};

void jw_init(struct jw *w, FILE *f, int pretty);
void jw_object_begin(struct jw *w);
void jw_object_end(struct jw *w);
void jw_array_begin(struct jw *w);
void jw_array_end(struct jw *w);
void jw_key(struct jw *w, const char *key);
void jw_str(struct jw *w, const char *p, size_t n);
/* The empty string as null; anything else as jw_str. */
void jw_str_or_null(struct jw *w, const char *p, size_t n);
void jw_int(struct jw *w, int64_t v);
void jw_bool(struct jw *w, int v);
void jw_null(struct jw *w);
/* A number already formatted as JSON (fmt_pusd, fmt_ms output). */
void jw_number_text(struct jw *w, const char *text);
void jw_pusd(struct jw *w, int64_t pusd);

/*
 * Aligned text tables. Rows are copied into the table. Column widths are measured in display
 * cells (UTF-8 characters), grow with the widest cell seen, and are never shrunk between
 * table_print calls, so a long listing printed in batches stays aligned. When the columns
 * would pass max_width, the flexible columns are shortened (widest first) and their cells cut
 * with "…".
 */
#define TABLE_MAX_COLS 16
#define TABLE_CELL_MAX 256 /* a cell is cut to this many bytes when added */

struct table_col {
	const char *title;
	int right;      /* right-aligned (numbers) */
	int flex;       /* may be shortened to fit */
	size_t min;     /* a flexible column is never shortened below this */
};

struct table {
	struct table_col cols[TABLE_MAX_COLS];
	size_t ncols;
	size_t width[TABLE_MAX_COLS];
	char **cells; /* nrows * ncols strings, owned */
	size_t nrows, cap;
	int header_done; /* the title line was printed */
	int header;      /* print a title line at all */
};

/* Sets up t with ncols (<= TABLE_MAX_COLS) columns; the titles are used, not copied. */
void table_init(struct table *t, const struct table_col *cols, size_t ncols, int header);
/* Adds a row of ncols cells (NULL cells are empty). Returns 0 or -1 when out of memory. */
int table_add(struct table *t, const char *const *cells);
/* Prints the rows added since the last print (and the titles once), then forgets them. A
 * colour prefix/suffix pair, when not NULL, wraps the title line (bold on a terminal). */
void table_print(struct table *t, FILE *f, size_t max_width, const char *title_on,
		 const char *title_off);
void table_release(struct table *t);

/* The number of display cells of a UTF-8 string (continuation bytes do not count). */
size_t fmt_display_width(const char *s);

#endif
