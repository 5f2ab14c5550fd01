/*
 * recordfmt.h - one record as a JSON object (the `records --format jsonl` contract of
 * DESIGN.md) or as a row of the records table. Shared by every command that lists records.
 */
#ifndef TOKSHIM_RECORDFMT_H
#define TOKSHIM_RECORDFMT_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer/format.h"
#include "store/record.h"

/*
 * Writes rec as one JSON object with the keys of DESIGN.md, in this order: id ts pid process
 * agent agent_type tenant session provider api host path locality model_requested model status
 * stream latency_ms ttfb_ms input_tokens output_tokens cache_read_tokens cache_write_tokens
 * reasoning_tokens total_tokens estimated cost_usd billed fallback_of retry_after error
 * error_message truncated payload. priced and pusd are pricing_record_cost's answer (cost_usd
 * is null when not priced).
 */
void recordfmt_json(struct jw *w, const struct record *rec, int priced, int64_t pusd);

/*
 * Record references. Ids are per store, so when several stores are read at once (ndb > 1) a
 * record is named "K#ID", K being its store's 1-based position among the --db options
 * (db is that position minus one); with one store it is plain "ID". `tokshim show` takes both.
 */
#define RECORDFMT_REF_MAX 32
void recordfmt_ref(char out[RECORDFMT_REF_MAX], uint64_t id, size_t db, size_t ndb);

/* Parses "ID" (*db set to SIZE_MAX: any store) or "K#ID" (*db = K - 1). ids and K start at
 * 1. Returns 0, or -1 when s is neither. */
int recordfmt_parse_ref(const char *s, uint64_t *id, size_t *db);

/* recordfmt_json, plus a "db" key (K, 1-based) right after "id" when ndb > 1. */
void recordfmt_json_db(struct jw *w, const struct record *rec, int priced, int64_t pusd,
		       size_t db, size_t ndb);

/* recordfmt_json_db with fallback_of set: the id (same store) of the call this one replaced
 * (fallback.h's verdict), 0 for null. */
void recordfmt_json_fallback(struct jw *w, const struct record *rec, int priced, int64_t pusd,
			     size_t db, size_t ndb, uint64_t fallback_of);

/* The records table's columns, and the cells of one record (cells[] gets RECORDFMT_NCOLS
 * pointers into buf, which must outlive the cells' use). */
#define RECORDFMT_NCOLS 9
extern const struct table_col recordfmt_cols[RECORDFMT_NCOLS];

struct recordfmt_cells {
	char id[RECORDFMT_REF_MAX], time[FMT_TIME_MAX], agent[RECORD_STR_MAX + 1];
	char provider[RECORD_STR_MAX + 1];
	char model[RECORD_STR_MAX + 1], status[16], in[FMT_HUMAN_MAX], out[FMT_HUMAN_MAX];
	char cost[FMT_HUMAN_MAX];
};
void recordfmt_row(struct recordfmt_cells *buf, const char *cells[RECORDFMT_NCOLS],
		   const struct record *rec, int priced, int64_t pusd, size_t db, size_t ndb);

/* Copies a record string into a NUL-terminated buffer of RECORD_STR_MAX + 1 bytes, control
 * characters shown as '.'. */
void recordfmt_cstr(char *out, const struct record_str *s);

#endif
