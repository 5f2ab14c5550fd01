/*
 * export.h - records in the formats other tools read: CSV with the columns of the jsonl
 * listing, and OpenTelemetry spans (OTLP/HTTP JSON, an ExportTraceServiceRequest) carrying
 * the GenAI semantic-convention attributes.
 */
#ifndef TOKSHIM_EXPORT_H
#define TOKSHIM_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/record.h"

/*
 * Writes one flat JSON object (as recordfmt_json prints it) as a CSV line (RFC 4180: fields
 * with a comma, quote, CR or LF are quoted, quotes doubled; CRLF line ends): its keys when
 * header is set, else its values (strings unescaped, numbers as written, null empty).
 * Returns 0, or -1 when json is not such an object.
 */
int export_csv_line(FILE *f, const char *json, size_t len, int header);

/*
 * Writes one CSV line (export_csv_line: its keys when header is set, else its values) from the
 * flat JSON object that write puts on w, a compact writer on a buffer of its own; write is
 * called once, with arg. How every command's --format csv makes a line, so each CSV's columns
 * are its flat JSON keys. Returns 0, or -1 when out of memory or the object is not flat.
 */
struct jw;
typedef void export_flat_fn(struct jw *w, const void *arg);
int export_csv_object(FILE *f, export_flat_fn *write, const void *arg, int header);

/* The OTLP request around the spans: export_otlp_begin, export_otlp_span for each record
 * (first set for the first of the request), export_otlp_end. */
void export_otlp_begin(FILE *f);
void export_otlp_end(FILE *f);

/*
 * One record as one span: name "{operation} {model}", kind CLIENT, start at ts and end
 * latency later, trace id derived from the record's agent and session (a session's calls share
 * a trace), span id from its store, id and time; the attributes of docs/cli.md (gen_ai.*,
 * error.type, http.response.status_code, server.address, tokshim.*). priced/pusd as from
 * pricing_record_cost; db is the store's index, ndb the number of stores read; fallback_of
 * the record's fallback_of (fallback.h), 0 for none (the attribute is then left out).
 */
void export_otlp_span(FILE *f, const struct record *rec, int priced, int64_t pusd, size_t db,
		      size_t ndb, uint64_t fallback_of, int first);

/* The gen_ai.operation.name of an api ("chat.completions" → "chat", "embeddings" →
 * "embeddings", "generateContent" → "generate_content" …). Static string. */
const char *export_operation(const struct record_str *api);

#endif
