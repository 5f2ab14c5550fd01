/*
 * redact.c - removes secrets from HTTP heads before anything is stored (DESIGN.md rule 2).
 *
 * Redaction works on the raw bytes of a head, not on a parsed http_head, so that what is stored
 * is the head as sent, byte for byte, except the secret values: a reader debugging a request
 * sees the real header order, case and spacing. Only values are replaced, never names, so it
 * stays visible that a key was sent and which header carried it. The input may be any bytes
 * (a head cut short, garbage): every read is bounded by len and every write by cap.
 */
#include "http/http.h"

#include <string.h>

static const char redact_mark[] = "[REDACTED]";

/* Header names whose values are secrets (compared without regard to case). */
static const char *const redact_header_names[] = {
	"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key",
	"api-key",       "cookie",              "set-cookie", NULL,
};

/* Query parameter names whose values are secrets. Google's key= is the one DESIGN.md names;
 * the others are the spellings other APIs use for the same thing. */
static const char *const redact_param_names[] = {
	"key", "api_key", "api-key", "apikey", "access_token", NULL,
};

/* Output bounded by cap: what does not fit is cut, never written past out[cap). */
struct redact_out {
	char *buf;
	size_t cap;
	size_t len;
};

static void redact_put(struct redact_out *w, const char *s, size_t n)
{
	if (n > w->cap - w->len)
		n = w->cap - w->len;
	if (n > 0) { /* out may be NULL with cap 0 */
		memcpy(w->buf + w->len, s, n);
		w->len += n;
	}
}

static int redact_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Is s[0..n) one of names, ignoring ASCII case? */
static int redact_name_listed(const char *s, size_t n, const char *const *names)
{
	size_t i, k;
	int found = 0;

	for (i = 0; names[i] != NULL && !found; i++) {
		for (k = 0; k < n && names[i][k] != '\0'; k++) {
			if (redact_lower((unsigned char)s[k]) != redact_lower((unsigned char)names[i][k]))
				break;
		}
		found = k == n && names[i][k] == '\0';
	}
	return found;
}

/* Writes target[0..len) with the values of secret query parameters replaced. */
static void redact_target_into(struct redact_out *w, const char *target, size_t len)
{
	const char *q = memchr(target, '?', len), *eq;
	size_t pos = q ? (size_t)(q - target) + 1 : len, end;

	redact_put(w, target, pos);
	while (pos < len && target[pos] != '#') {
		end = pos;
		while (end < len && target[end] != '&' && target[end] != '#')
			end++;
		eq = memchr(target + pos, '=', end - pos);
		if (eq != NULL &&
		    redact_name_listed(target + pos, (size_t)(eq - (target + pos)), redact_param_names)) {
			redact_put(w, target + pos, (size_t)(eq - (target + pos)) + 1);
			redact_put(w, redact_mark, sizeof(redact_mark) - 1);
		} else {
			redact_put(w, target + pos, end - pos);
		}
		pos = end;
		if (pos < len && target[pos] == '&') {
			redact_put(w, "&", 1);
			pos++;
		}
	}
	redact_put(w, target + pos, len - pos); /* the fragment, if any */
}

size_t http_redact_target(const char *target, size_t len, char *out, size_t cap)
{
	struct redact_out w = { out, cap, 0 };

	redact_target_into(&w, target, len);
	return w.len;
}

/* Writes a request line with its target redacted; a status line passes unchanged. */
static void redact_start_line(struct redact_out *w, const char *s, size_t n)
{
	const char *sp1 = memchr(s, ' ', n), *sp2 = NULL;
	size_t t;

	if (sp1 != NULL && !(n >= 5 && memcmp(s, "HTTP/", 5) == 0)) {
		t = (size_t)(sp1 - s) + 1;
		sp2 = memchr(s + t, ' ', n - t);
	}
	if (sp2 == NULL) {
		redact_put(w, s, n);
	} else {
		redact_put(w, s, t);
		redact_target_into(w, s + t, (size_t)(sp2 - (s + t)));
		redact_put(w, sp2, n - (size_t)(sp2 - s));
	}
}

/* Writes a header line with its value replaced when its name is a secret one. */
static void redact_header_line(struct redact_out *w, const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t v;

	if (colon == NULL ||
	    !redact_name_listed(s, (size_t)(colon - s), redact_header_names)) {
		redact_put(w, s, n);
	} else {
		v = (size_t)(colon - s) + 1;
		while (v < n && (s[v] == ' ' || s[v] == '\t'))
			v++;
		redact_put(w, s, v);
		redact_put(w, redact_mark, sizeof(redact_mark) - 1);
	}
}

size_t http_redact_head(const char *raw, size_t len, char *out, size_t cap)
{
	struct redact_out w = { out, cap, 0 };
	const char *lf;
	size_t pos = 0, end, content;
	int first = 1;

	while (pos < len) {
		lf = memchr(raw + pos, '\n', len - pos);
		end = lf ? (size_t)(lf - raw) + 1 : len;
		content = end;
		while (content > pos && (raw[content - 1] == '\n' || raw[content - 1] == '\r'))
			content--;
		if (first)
			redact_start_line(&w, raw + pos, content - pos);
		else
			redact_header_line(&w, raw + pos, content - pos);
		redact_put(&w, raw + content, end - content); /* the line end as it was */
		first = 0;
		pos = end;
	}
	return w.len;
}
