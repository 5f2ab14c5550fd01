/*
 * alerts.c - the alerts file, event delivery to Slack, JSON webhooks, SMTP, a log file or
 * syslog, and the failure-rate and anomaly rules (alerts.h has the contract, docs/alerts.md
 * the file).
 *
 * HTTP and SMTP both go through libcurl, one easy handle per attempt: alerts are rare (a few
 * a day), so connection reuse is not worth the state it keeps. Messages are built from the
 * event's JSON with cJSON; the stored JSON is passed on unchanged where a channel carries it.
 */
#include "analyzer/alerts.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "analyzer/anomaly.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"

#define ALERTS_TEXT_MAX 2048   /* one event's summary line */
#define ALERTS_MSG_MAX (64 << 10) /* one message to a channel */
#define ALERTS_BACKOFF_CAP_NS (30 * 1000000000ll)

static const struct {
	const char *name;
	unsigned bit;
} kinds[] = {
	{ "budget_warning", ALERTS_BUDGET_WARNING },
	{ "budget_block", ALERTS_BUDGET_BLOCK },
	{ "failure_rate", ALERTS_FAILURE_RATE },
	{ "anomaly", ALERTS_ANOMALY },
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static const char *const type_names[] = { "slack", "webhook", "email", "log", "syslog" };

/* ---- the alerts file -------------------------------------------------------------------- */

static char *dup_str(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* A string member: *out a copy (NULL when absent and optional). Returns 0 or -1 (err set). */
static int get_str(const cJSON *obj, const char *key, int required, char **out,
		   const char *where, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	int ret = -1;

	*out = NULL;
	if (v == NULL && !required) {
		ret = 0;
	} else if (v == NULL) {
		snprintf(err, errlen, "%s.%s: missing", where, key);
	} else if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
		snprintf(err, errlen, "%s.%s: expected a non-empty string", where, key);
	} else {
		*out = dup_str(v->valuestring);
		ret = *out != NULL ? 0 : -1;
		if (ret != 0)
			snprintf(err, errlen, "out of memory");
	}
	return ret;
}

/* A duration member ("10s", "5m") into *out when present. Returns 0 or -1. */
static int get_duration(const cJSON *obj, const char *key, int64_t *out, const char *where,
			char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	int ret = 0;

	if (v != NULL && (!cJSON_IsString(v) ||
			  filter_parse_duration(v->valuestring, out) != 0 || *out <= 0)) {
		snprintf(err, errlen, "%s.%s: expected a duration such as \"30s\" or \"5m\"", where,
			 key);
		ret = -1;
	}
	return ret;
}

/* A number member in [lo, hi] into *out when present. Returns 0 or -1. */
static int get_number(const cJSON *obj, const char *key, double lo, double hi, double *out,
		      const char *where, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	int ret = 0;

	if (v != NULL && (!cJSON_IsNumber(v) || !(v->valuedouble >= lo) || v->valuedouble > hi)) {
		snprintf(err, errlen, "%s.%s: expected a number from %g to %g", where, key, lo, hi);
		ret = -1;
	} else if (v != NULL) {
		*out = v->valuedouble;
	}
	return ret;
}

static int parse_channel(struct alerts_channel *ch, const cJSON *o, const char *where,
			 char *err, size_t errlen)
{
	const cJSON *to;
	char *type = NULL;
	size_t t;
	int ret = -1;

	if (!cJSON_IsObject(o)) {
		snprintf(err, errlen, "%s: expected an object", where);
		goto out;
	}
	if (get_str(o, "name", 1, &ch->name, where, err, errlen) != 0 ||
	    get_str(o, "type", 1, &type, where, err, errlen) != 0)
		goto out;
	for (t = 0; t < sizeof type_names / sizeof type_names[0]; t++)
		if (strcmp(type, type_names[t]) == 0)
			break;
	if (t == sizeof type_names / sizeof type_names[0]) {
		snprintf(err, errlen,
			 "%s.type: unknown type '%s': expected slack, webhook, email, log or syslog",
			 where, type);
		goto out;
	}
	ch->type = (enum alerts_type)t;
	switch (ch->type) {
	case ALERTS_SLACK:
	case ALERTS_WEBHOOK:
		ret = get_str(o, "url", 1, &ch->url, where, err, errlen);
		if (ret == 0 && strncmp(ch->url, "http://", 7) != 0 &&
		    strncmp(ch->url, "https://", 8) != 0) {
			snprintf(err, errlen, "%s.url: expected an http:// or https:// URL", where);
			ret = -1;
		}
		break;
	case ALERTS_EMAIL:
		ret = get_str(o, "url", 1, &ch->url, where, err, errlen);
		if (ret == 0 && strncmp(ch->url, "smtp://", 7) != 0 &&
		    strncmp(ch->url, "smtps://", 8) != 0) {
			snprintf(err, errlen, "%s.url: expected an smtp:// or smtps:// URL", where);
			ret = -1;
		}
		if (ret == 0)
			ret = get_str(o, "from", 1, &ch->from, where, err, errlen);
		if (ret == 0)
			ret = get_str(o, "subject", 0, &ch->subject, where, err, errlen);
		if (ret != 0)
			break;
		to = cJSON_GetObjectItemCaseSensitive(o, "to");
		ret = -1;
		if (!cJSON_IsArray(to) || cJSON_GetArraySize(to) < 1 ||
		    cJSON_GetArraySize(to) > ALERTS_MAX_TO) {
			snprintf(err, errlen, "%s.to: expected a list of 1 to %d addresses", where,
				 ALERTS_MAX_TO);
			break;
		}
		for (const cJSON *a = to->child; a != NULL; a = a->next) {
			if (!cJSON_IsString(a) || strchr(a->valuestring, '@') == NULL) {
				snprintf(err, errlen, "%s.to[%zu]: expected an address", where,
					 ch->nto);
				goto out;
			}
			ch->to[ch->nto] = dup_str(a->valuestring);
			if (ch->to[ch->nto++] == NULL)
				goto out;
		}
		ret = 0;
		break;
	case ALERTS_LOG:
		ret = get_str(o, "path", 1, &ch->path, where, err, errlen);
		break;
	case ALERTS_SYSLOG:
		ret = 0;
		break;
	}
out:
	free(type);
	return ret;
}

static struct alerts_channel *find_channel(struct alerts_config *c, const char *name)
{
	for (size_t i = 0; i < c->nch; i++)
		if (strcmp(c->ch[i].name, name) == 0)
			return &c->ch[i];
	return NULL;
}

/* rules: [{"kinds": [...] or "*", "channels": [...]}]: each listed channel gets the kinds. */
static int parse_rule(struct alerts_config *c, const cJSON *o, const char *where, char *err,
		      size_t errlen)
{
	const cJSON *ks = cJSON_GetObjectItemCaseSensitive(o, "kinds");
	const cJSON *chs = cJSON_GetObjectItemCaseSensitive(o, "channels");
	struct alerts_channel *ch;
	unsigned bits = 0;
	size_t k, i = 0;
	int ret = -1;

	if (!cJSON_IsObject(o)) {
		snprintf(err, errlen, "%s: expected an object", where);
		goto out;
	}
	if (cJSON_IsString(ks) && strcmp(ks->valuestring, "*") == 0) {
		bits = ~0u;
	} else if (cJSON_IsArray(ks) && cJSON_GetArraySize(ks) > 0) {
		for (const cJSON *a = ks->child; a != NULL; a = a->next, i++) {
			for (k = 0; k < NKINDS && cJSON_IsString(a); k++)
				if (strcmp(a->valuestring, kinds[k].name) == 0)
					break;
			if (!cJSON_IsString(a) || k == NKINDS) {
				snprintf(err, errlen,
					 "%s.kinds[%zu]: expected budget_warning, budget_block, "
					 "failure_rate or anomaly",
					 where, i);
				goto out;
			}
			bits |= kinds[k].bit;
		}
	} else {
		snprintf(err, errlen, "%s.kinds: expected a list of event kinds or \"*\"", where);
		goto out;
	}
	if (!cJSON_IsArray(chs) || cJSON_GetArraySize(chs) < 1) {
		snprintf(err, errlen, "%s.channels: expected a list of channel names", where);
		goto out;
	}
	i = 0;
	for (const cJSON *a = chs->child; a != NULL; a = a->next, i++) {
		ch = cJSON_IsString(a) ? find_channel(c, a->valuestring) : NULL;
		if (ch == NULL) {
			snprintf(err, errlen, "%s.channels[%zu]: no channel of that name", where, i);
			goto out;
		}
		ch->kinds |= bits;
	}
	ret = 0;
out:
	return ret;
}

static int parse_rules(struct alerts_config *c, const cJSON *root, char *err, size_t errlen)
{
	const cJSON *fr = cJSON_GetObjectItemCaseSensitive(root, "failure_rate");
	const cJSON *an = cJSON_GetObjectItemCaseSensitive(root, "anomaly");
	const cJSON *sev;
	double min_calls = (double)c->fr_min_calls;
	int ret = -1;

	if (fr != NULL) {
		if (!cJSON_IsObject(fr)) {
			snprintf(err, errlen, "failure_rate: expected an object");
			goto out;
		}
		c->failure_rate = 1;
		if (get_duration(fr, "window", &c->fr_window_ns, "failure_rate", err, errlen) ||
		    get_number(fr, "rate", 0.000001, 1, &c->fr_rate, "failure_rate", err,
			       errlen) ||
		    get_number(fr, "min_calls", 1, 1e9, &min_calls, "failure_rate", err, errlen))
			goto out;
		c->fr_min_calls = (int64_t)min_calls;
	}
	if (an != NULL) {
		if (!cJSON_IsObject(an)) {
			snprintf(err, errlen, "anomaly: expected an object");
			goto out;
		}
		c->anomaly = 1;
		sev = cJSON_GetObjectItemCaseSensitive(an, "severity");
		if (sev != NULL) {
			c->anomaly_severity = cJSON_IsString(sev) ?
						      anomaly_severity_parse(sev->valuestring) : -1;
			if (c->anomaly_severity < 0) {
				snprintf(err, errlen,
					 "anomaly.severity: expected info, warning or critical");
				goto out;
			}
		}
		if (get_duration(an, "lookback", &c->anomaly_lookback_ns, "anomaly", err, errlen))
			goto out;
	}
	ret = 0;
out:
	return ret;
}

static int parse_config(struct alerts_config *c, const cJSON *root, char *err, size_t errlen)
{
	const cJSON *chs = cJSON_GetObjectItemCaseSensitive(root, "channels");
	const cJSON *rules = cJSON_GetObjectItemCaseSensitive(root, "rules");
	double retries = c->retries, backoff_ms = (double)(c->backoff_ns / 1000000);
	char where[64];
	size_t i = 0;
	int ret = -1;

	if (!cJSON_IsObject(root)) {
		snprintf(err, errlen, "expected a JSON object at the top");
		goto out;
	}
	if (!cJSON_IsArray(chs) || cJSON_GetArraySize(chs) < 1 ||
	    cJSON_GetArraySize(chs) > ALERTS_MAX_CHANNELS) {
		snprintf(err, errlen, "channels: expected a list of 1 to %d channels",
			 ALERTS_MAX_CHANNELS);
		goto out;
	}
	for (const cJSON *o = chs->child; o != NULL; o = o->next, i++) {
		snprintf(where, sizeof where, "channels[%zu]", i);
		c->nch++;
		if (parse_channel(&c->ch[i], o, where, err, errlen) != 0)
			goto out;
		if (find_channel(c, c->ch[i].name) != &c->ch[i]) {
			snprintf(err, errlen, "%s.name: '%s' is used twice", where, c->ch[i].name);
			goto out;
		}
	}
	if (rules != NULL && !cJSON_IsArray(rules)) {
		snprintf(err, errlen, "rules: expected a list");
		goto out;
	}
	i = 0;
	for (const cJSON *o = rules != NULL ? rules->child : NULL; o != NULL; o = o->next, i++) {
		snprintf(where, sizeof where, "rules[%zu]", i);
		if (parse_rule(c, o, where, err, errlen) != 0)
			goto out;
	}
	/* Without rules every channel gets every kind: the shortest useful file. */
	for (i = 0; i < c->nch && rules == NULL; i++)
		c->ch[i].kinds = ~0u;
	if (get_number(root, "retries", 0, 20, &retries, "delivery", err, errlen) ||
	    get_number(root, "backoff_ms", 1, 60000, &backoff_ms, "delivery", err, errlen) ||
	    get_duration(root, "timeout", &c->timeout_ns, "delivery", err, errlen))
		goto out;
	c->retries = (int)retries;
	c->backoff_ns = (int64_t)backoff_ms * 1000000;
	ret = parse_rules(c, root, err, errlen);
out:
	return ret;
}

int alerts_config_load(struct alerts_config *c, const char *path, char *err, size_t errlen)
{
	char msg[400], *text = NULL;
	cJSON *root = NULL;
	FILE *f;
	size_t n;
	int ret = -1;

	memset(c, 0, sizeof *c);
	c->retries = 3;
	c->backoff_ns = 500 * 1000000ll;
	c->timeout_ns = 10 * 1000000000ll;
	c->fr_window_ns = 300 * 1000000000ll;
	c->fr_rate = 0.5;
	c->fr_min_calls = 10;
	c->anomaly_severity = ANOMALY_WARNING;
	c->anomaly_lookback_ns = 24 * 3600 * 1000000000ll;
	f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		goto out;
	}
	text = malloc(ALERTS_FILE_MAX + 1);
	n = text != NULL ? fread(text, 1, ALERTS_FILE_MAX + 1, f) : 0;
	fclose(f);
	if (text == NULL || n > ALERTS_FILE_MAX) {
		snprintf(err, errlen, "'%s': %s", path,
			 text == NULL ? "out of memory" : "larger than 1 MiB");
		goto text_free;
	}
	root = cJSON_ParseWithLength(text, n);
	if (root == NULL) {
		snprintf(err, errlen, "'%s': not valid JSON", path);
		goto text_free;
	}
	ret = parse_config(c, root, msg, sizeof msg);
	if (ret != 0)
		snprintf(err, errlen, "'%s': %s", path, msg);
	cJSON_Delete(root);
text_free:
	free(text);
out:
	return ret;
}

void alerts_config_release(struct alerts_config *c)
{
	for (size_t i = 0; i < c->nch; i++) {
		struct alerts_channel *ch = &c->ch[i];

		free(ch->name);
		free(ch->url);
		free(ch->from);
		free(ch->subject);
		free(ch->path);
		for (size_t j = 0; j < ch->nto; j++)
			free(ch->to[j]);
	}
	memset(c, 0, sizeof *c);
}

/* ---- messages ------------------------------------------------------------------------- */

/* One event as delivery sees it. */
struct alerts_event {
	uint64_t id;
	char *json;    /* as stored, owned */
	unsigned kind; /* enum alerts_kind bit, 0 for a kind this version does not know */
	const char *kind_name;
	char summary[ALERTS_TEXT_MAX];
};

static int64_t num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

/* "960 tokens" or "$0.000288" of a budget event's counter pair. */
static void amount(char *out, size_t cap, int64_t tokens, int64_t pusd, int by_tokens)
{
	char usd[FMT_PUSD_MAX];

	if (by_tokens) {
		snprintf(out, cap, "%" PRId64 " tokens", tokens);
	} else {
		fmt_pusd(usd, pusd);
		snprintf(out, cap, "$%s", usd);
	}
}

/* The one line for people: from the event's own "summary", or made from a budget event. */
static void summarize(struct alerts_event *ev, const cJSON *o)
{
	int by_tokens = num(o, "cap_tokens") >= 0 || num(o, "warn_tokens") >= 0;
	char used[64], cap[64], est[64];

	amount(used, sizeof used, num(o, "used_tokens"), num(o, "used_cost_pusd"), by_tokens);
	amount(cap, sizeof cap, by_tokens ? num(o, "cap_tokens") : 0, num(o, "cap_cost_pusd"),
	       by_tokens);
	amount(est, sizeof est, num(o, "estimate_tokens"), num(o, "estimate_cost_pusd"),
	       by_tokens);
	if (ev->kind == ALERTS_BUDGET_WARNING)
		snprintf(ev->summary, sizeof ev->summary,
			 "budget '%s' reached its warning level: %s used", str(o, "budget"), used);
	else if (ev->kind == ALERTS_BUDGET_BLOCK)
		snprintf(ev->summary, sizeof ev->summary,
			 "budget '%s' blocked a call: %s used, the call's %s would pass the cap of "
			 "%s",
			 str(o, "budget"), used, est, cap);
	else
		snprintf(ev->summary, sizeof ev->summary, "%s",
			 str(o, "summary")[0] ? str(o, "summary") : ev->kind_name);
}

/* Fills ev from its stored JSON (taken over). Returns 0, or -1 when it is not an object. */
static int event_init(struct alerts_event *ev, uint64_t id, char *json)
{
	cJSON *o = cJSON_Parse(json);
	int ret = -1;

	memset(ev, 0, sizeof *ev);
	ev->id = id;
	ev->json = json;
	ev->kind_name = "unknown";
	if (!cJSON_IsObject(o))
		goto out;
	for (size_t k = 0; k < NKINDS; k++)
		if (strcmp(str(o, "kind"), kinds[k].name) == 0) {
			ev->kind = kinds[k].bit;
			ev->kind_name = kinds[k].name;
		}
	summarize(ev, o);
	ret = 0;
out:
	cJSON_Delete(o);
	return ret;
}

/* Slack's message JSON: the summary as text (notifications) and as blocks (the message). */
static char *slack_message(const struct alerts_event *ev)
{
	cJSON *m = cJSON_CreateObject(), *blocks, *b, *t, *els;
	char head[ALERTS_TEXT_MAX + 64], ctx[128];
	char *out = NULL;

	snprintf(head, sizeof head, "*tokshim: %s*\n%s", ev->kind_name, ev->summary);
	snprintf(ctx, sizeof ctx, "event %" PRIu64, ev->id);
	cJSON_AddStringToObject(m, "text", ev->summary);
	blocks = cJSON_AddArrayToObject(m, "blocks");
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "type", "section");
	t = cJSON_AddObjectToObject(b, "text");
	cJSON_AddStringToObject(t, "type", "mrkdwn");
	cJSON_AddStringToObject(t, "text", head);
	cJSON_AddItemToArray(blocks, b);
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "type", "context");
	els = cJSON_AddArrayToObject(b, "elements");
	t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "type", "mrkdwn");
	cJSON_AddStringToObject(t, "text", ctx);
	cJSON_AddItemToArray(els, t);
	cJSON_AddItemToArray(blocks, b);
	out = cJSON_PrintUnformatted(m);
	cJSON_Delete(m);
	return out;
}

/* The generic webhook: {"event": the stored JSON as is, "delivery": {...}}. */
static char *webhook_message(const struct alerts_event *ev, const struct alerts_channel *ch,
			     int attempt, int64_t now_ns)
{
	char ts[FMT_TIME_MAX], *out = malloc(strlen(ev->json) + 512 + strlen(ch->name) * 6);
	cJSON *name = cJSON_CreateString(ch->name);
	char *qname = cJSON_PrintUnformatted(name);

	fmt_rfc3339(ts, now_ns);
	if (out != NULL && qname != NULL)
		sprintf(out,
			"{\"event\":%s,\"delivery\":{\"channel\":%s,\"event_id\":%" PRIu64
			",\"attempt\":%d,\"sent_at\":\"%s\"}}",
			ev->json, qname, ev->id, attempt, ts);
	if (qname == NULL) {
		free(out);
		out = NULL;
	}
	free(qname);
	cJSON_Delete(name);
	return out;
}

/* The subject: ch->subject (default "tokshim: {summary}") with {kind} and {summary} filled. */
static void email_subject(char *out, size_t cap, const struct alerts_event *ev,
			  const struct alerts_channel *ch)
{
	const char *tpl = ch->subject != NULL ? ch->subject : "tokshim: {summary}";
	size_t n = 0;

	for (const char *p = tpl; *p != '\0' && n + 1 < cap; p++) {
		const char *rep = NULL;

		if (strncmp(p, "{kind}", 6) == 0)
			rep = ev->kind_name;
		else if (strncmp(p, "{summary}", 9) == 0)
			rep = ev->summary;
		if (rep != NULL) {
			n += (size_t)snprintf(out + n, cap - n, "%s", rep);
			p += rep == ev->kind_name ? 5 : 8;
		} else {
			out[n++] = *p;
		}
		if (n >= cap)
			n = cap - 1;
	}
	out[n] = '\0';
	/* Header injection: a subject is one line. */
	for (char *p = out; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
}

/* An RFC 5322 message: headers, then a UTF-8 text body (the summary and the event's JSON). */
static char *email_message(const struct alerts_event *ev, const struct alerts_channel *ch,
			   int64_t now_ns)
{
	char subject[ALERTS_TEXT_MAX], date[64], to[1024];
	time_t t = (time_t)(now_ns / 1000000000);
	char *out = malloc(ALERTS_MSG_MAX);
	size_t n = 0;
	struct tm tm;

	if (out == NULL)
		goto out;
	email_subject(subject, sizeof subject, ev, ch);
	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	to[0] = '\0';
	for (size_t i = 0; i < ch->nto; i++)
		n += (size_t)snprintf(to + n, n < sizeof to ? sizeof to - n : 0, "%s%s",
				      i ? ", " : "", ch->to[i]);
	n = (size_t)snprintf(out, ALERTS_MSG_MAX,
			     "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
			     "Message-ID: <tokshim-event-%" PRIu64 "-%s@tokshim>\r\n"
			     "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
			     "Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n\r\n%s\r\n",
			     ch->from, to, subject, date, ev->id, ch->name, ev->summary, ev->json);
	if (n >= ALERTS_MSG_MAX) {
		free(out);
		out = NULL;
	}
out:
	return out;
}

/* ---- delivery ------------------------------------------------------------------------- */

struct reader {
	const char *p;
	size_t left;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct reader *r = arg;
	size_t n = size * nitems < r->left ? size * nitems : r->left;

	memcpy(buf, r->p, n);
	r->p += n;
	r->left -= n;
	return n;
}

static size_t discard_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	(void)buf;
	(void)arg;
	return size * nitems;
}

/* One attempt over libcurl: POST body (http) or send the message (smtp). Returns 0 when the
 * other end acknowledged it, else -1 with why. */
static int curl_send(const struct alerts_channel *ch, const struct alerts_config *c,
		     const char *body, char *why, size_t whylen)
{
	struct curl_slist *hdrs = NULL, *rcpt = NULL;
	struct reader r = { body, strlen(body) };
	CURL *h = curl_easy_init();
	CURLcode cc = CURLE_OUT_OF_MEMORY;
	long status = 0;
	int ret = -1;

	if (h == NULL)
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, ch->url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->timeout_ns / 1000000));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_cb);
	if (ch->type == ALERTS_EMAIL) {
		curl_easy_setopt(h, CURLOPT_MAIL_FROM, ch->from);
		for (size_t i = 0; i < ch->nto; i++)
			rcpt = curl_slist_append(rcpt, ch->to[i]);
		curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, &r);
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	} else {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_USERAGENT, "tokshim-alerts");
	}
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK)
		snprintf(why, whylen, "%s", curl_easy_strerror(cc));
	else if (ch->type != ALERTS_EMAIL && (status < 200 || status > 299))
		snprintf(why, whylen, "http status %ld", status);
	else
		ret = 0;
	curl_slist_free_all(hdrs);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(h);
out:
	if (h == NULL)
		snprintf(why, whylen, "%s", curl_easy_strerror(cc));
	return ret;
}

/* Appends one line, the event's JSON as stored, to the log file. */
static int log_send(const struct alerts_channel *ch, const struct alerts_event *ev, char *why,
		    size_t whylen)
{
	FILE *f = fopen(ch->path, "a");
	int ret = -1;

	if (f == NULL) {
		snprintf(why, whylen, "cannot open '%s': %s", ch->path, strerror(errno));
		goto out;
	}
	fprintf(f, "%s\n", ev->json);
	ret = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
	if (fclose(f) != 0 || ret != 0) {
		snprintf(why, whylen, "cannot write '%s': %s", ch->path, strerror(errno));
		ret = -1;
	}
out:
	return ret;
}

/* The message a channel gets for ev (attempt counts from 1); NULL when out of memory.
 * syslog and log channels carry the summary and the JSON as they are. */
static char *message(const struct alerts_event *ev, const struct alerts_channel *ch,
		     int attempt, int64_t now_ns)
{
	char *out = NULL;

	if (ch->type == ALERTS_SLACK)
		out = slack_message(ev);
	else if (ch->type == ALERTS_WEBHOOK)
		out = webhook_message(ev, ch, attempt, now_ns);
	else if (ch->type == ALERTS_EMAIL)
		out = email_message(ev, ch, now_ns);
	else if (ch->type == ALERTS_LOG)
		out = strdup(ev->json);
	else
		out = strdup(ev->summary);
	return out;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Delivers ev to ch with retries and back-off. Returns 0 when acknowledged, else -1. */
static int deliver_one(const struct alerts_config *c, const struct alerts_channel *ch,
		       const struct alerts_event *ev, char *why, size_t whylen)
{
	int64_t wait = c->backoff_ns;
	char *msg;
	int attempt, ret = -1;

	for (attempt = 1; attempt <= 1 + c->retries && ret != 0; attempt++) {
		if (attempt > 1) {
			sleep_ns(wait);
			wait = wait * 2 < ALERTS_BACKOFF_CAP_NS ? wait * 2 : ALERTS_BACKOFF_CAP_NS;
		}
		msg = message(ev, ch, attempt, filter_now_ns());
		if (msg == NULL) {
			snprintf(why, whylen, "out of memory");
			continue;
		}
		if (ch->type == ALERTS_LOG) {
			ret = log_send(ch, ev, why, whylen);
		} else if (ch->type == ALERTS_SYSLOG) {
			syslog(LOG_WARNING, "tokshim alert %" PRIu64 " %s: %s", ev->id,
			       ev->kind_name, ev->summary);
			ret = 0;
		} else {
			ret = curl_send(ch, c, msg, why, whylen);
		}
		free(msg);
	}
	return ret;
}

/* ---- progress ------------------------------------------------------------------------- */

#define ACKED_PREFIX "alerts:acked:"

struct acked {
	const struct alerts_config *c;
	uint64_t v[ALERTS_MAX_CHANNELS];
};

static int acked_visit(const char *name, int64_t value, void *arg)
{
	struct acked *a = arg;

	if (strncmp(name, ACKED_PREFIX, strlen(ACKED_PREFIX)) == 0)
		for (size_t i = 0; i < a->c->nch; i++)
			if (strcmp(name + strlen(ACKED_PREFIX), a->c->ch[i].name) == 0)
				a->v[i] = (uint64_t)value;
	return 0;
}

/* Raises channel i's progress from a->v[i] to id (durable once this returns 0). */
static int acked_raise(struct store *st, struct acked *a, size_t i, uint64_t id)
{
	char name[512];
	struct store_counter_delta d = { name, (int64_t)(id - a->v[i]) };
	int rc;

	snprintf(name, sizeof name, "%s%s", ACKED_PREFIX, a->c->ch[i].name);
	rc = store_counters_add(st, &d, 1);
	if (rc == 0)
		a->v[i] = id;
	return rc;
}

/* The pending events: those after the lowest progress, at most ALERTS_BATCH_MAX. */
struct pending {
	uint64_t after;
	struct alerts_event *ev;
	size_t n;
	int nomem;
};

static int pending_visit(uint64_t id, const char *json, size_t len, void *arg)
{
	struct pending *p = arg;
	char *copy;

	if (id <= p->after)
		return 0;
	if (p->n == ALERTS_BATCH_MAX)
		return 1;
	copy = malloc(len + 1);
	if (copy == NULL) {
		p->nomem = 1;
		return 1;
	}
	memcpy(copy, json, len + 1);
	/* An event that is not a JSON object still moves progress on; it is never sent. */
	if (event_init(&p->ev[p->n], id, copy) != 0)
		p->ev[p->n].kind = 0;
	p->n++;
	return 0;
}

int alerts_deliver(struct store *st, const struct alerts_config *c, int dry_run, FILE *out,
		   FILE *err, struct alerts_result *res)
{
	struct acked a = { c, { 0 } };
	struct pending p = { UINT64_MAX, NULL, 0, 0 };
	char why[512];
	char *msg;
	size_t i, e;
	int rc;

	memset(res, 0, sizeof *res);
	rc = store_counters_scan(st, acked_visit, &a);
	if (rc != 0)
		goto out;
	for (i = 0; i < c->nch; i++)
		p.after = a.v[i] < p.after ? a.v[i] : p.after;
	rc = STORE_ENOMEM;
	p.ev = calloc(ALERTS_BATCH_MAX, sizeof *p.ev);
	if (p.ev == NULL)
		goto out;
	rc = store_events_scan(st, pending_visit, &p);
	if (rc == 0 && p.nomem)
		rc = STORE_ENOMEM;
	for (i = 0; i < c->nch && rc == 0; i++) {
		const struct alerts_channel *ch = &c->ch[i];

		for (e = 0; e < p.n && rc == 0; e++) {
			const struct alerts_event *ev = &p.ev[e];

			if (ev->id <= a.v[i])
				continue;
			if (!(ev->kind & ch->kinds)) {
				continue;
			} else if (dry_run) {
				msg = message(ev, ch, 1, filter_now_ns());
				fprintf(out, "would send event %" PRIu64 " (%s) to '%s' (%s): %s\n",
					ev->id, ev->kind_name, ch->name, type_names[ch->type],
					msg != NULL ? msg : "(out of memory)");
				free(msg);
				res->sent++;
				continue;
			} else if (deliver_one(c, ch, ev, why, sizeof why) != 0) {
				fprintf(err,
					"tokshim: cannot deliver event %" PRIu64 " to '%s': %s "
					"(%d attempts)\n",
					ev->id, ch->name, why, 1 + c->retries);
				res->failed++;
				break;
			}
			rc = acked_raise(st, &a, i, ev->id);
			if (rc == 0) {
				fprintf(out, "sent event %" PRIu64 " (%s) to '%s'\n", ev->id,
					ev->kind_name, ch->name);
				res->sent++;
			}
		}
		/* Events not routed here: progress moves past them, so later passes skip them. */
		if (rc == 0 && !dry_run && e == p.n && p.n > 0 && p.ev[p.n - 1].id > a.v[i])
			rc = acked_raise(st, &a, i, p.ev[p.n - 1].id);
		fflush(out);
	}
	for (e = 0; e < p.n; e++)
		free(p.ev[e].json);
	free(p.ev);
out:
	return rc;
}

/* ---- rules ---------------------------------------------------------------------------- */

/* An exact integer member (a double would round nanoseconds). */
static void add_i64(cJSON *o, const char *key, int64_t v)
{
	char text[24];

	snprintf(text, sizeof text, "%" PRId64, v);
	cJSON_AddRawToObject(o, key, text);
}

/* Writes an event: members built in o (consumed), once_key as store_event_append's. */
static int event_write(struct store *st, cJSON *o, const char *once_key, uint64_t *written)
{
	char *text = cJSON_PrintUnformatted(o);
	size_t len = text != NULL ? strlen(text) : 0;
	uint64_t id = 0;
	int rc = STORE_ENOMEM;

	cJSON_Delete(o);
	if (len < 2)
		goto out;
	/* The members without the braces: store_event_append puts "id" first. */
	text[len - 1] = '\0';
	rc = store_event_append(st, once_key, text + 1, &id);
	*written += id != 0;
out:
	free(text);
	return rc;
}

struct fr_count {
	int64_t calls, failed;
};

static int fr_visit(const struct record *rec, void *arg)
{
	struct fr_count *f = arg;

	f->calls++;
	f->failed += rec->error.n > 0 || rec->status >= 400;
	return 0;
}

static int failure_rate(struct store *st, const struct alerts_config *c, int64_t now_ns,
			uint64_t *written)
{
	/* Windows are aligned to the epoch, so a rule fires at most once per window. */
	int64_t since = now_ns - now_ns % c->fr_window_ns;
	struct fr_count f = { 0, 0 };
	char once[128], summary[256];
	cJSON *o;
	int rc = store_scan(st, now_ns - c->fr_window_ns, now_ns + 1, fr_visit, &f);

	if (rc != 0 || f.calls < c->fr_min_calls || (double)f.failed < c->fr_rate * (double)f.calls)
		goto out;
	snprintf(once, sizeof once, "alerts:fired:failure_rate:%" PRId64, since);
	snprintf(summary, sizeof summary,
		 "%" PRId64 " of %" PRId64 " calls failed in the last %" PRId64 " s (%.0f%%, the "
		 "limit is %.0f%%)",
		 f.failed, f.calls, c->fr_window_ns / 1000000000, 100.0 * (double)f.failed /
		 (double)f.calls, 100.0 * c->fr_rate);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", "failure_rate");
	add_i64(o, "ts_ns", now_ns);
	add_i64(o, "since_ns", now_ns - c->fr_window_ns);
	add_i64(o, "until_ns", now_ns);
	add_i64(o, "calls", f.calls);
	add_i64(o, "failed", f.failed);
	cJSON_AddNumberToObject(o, "rate", c->fr_rate);
	cJSON_AddStringToObject(o, "summary", summary);
	rc = event_write(st, o, once, written);
out:
	return rc;
}

struct an_feed {
	const struct pricing *p;
	struct anomaly a;
};

static int an_visit(const struct record *rec, void *arg)
{
	struct an_feed *f = arg;
	int64_t pusd = 0;
	int priced = pricing_record_cost(f->p, rec, &pusd);

	return anomaly_feed(&f->a, rec, 0, priced, pusd) != 0 ? STORE_ENOMEM : 0;
}

static int anomalies(struct store *st, const struct alerts_config *c, const struct pricing *p,
		     int64_t now_ns, uint64_t *written)
{
	struct anomaly_thresholds th;
	struct an_feed f;
	char once[256], *ev_text;
	cJSON *o, *evidence;
	int rc;

	anomaly_thresholds_default(&th);
	f.p = p;
	anomaly_init(&f.a, &th);
	rc = store_scan(st, now_ns - c->anomaly_lookback_ns, now_ns + 1, an_visit, &f);
	if (rc == 0)
		rc = anomaly_finish(&f.a) != 0 ? STORE_ENOMEM : 0;
	for (size_t i = 0; i < f.a.nflags && rc == 0; i++) {
		const struct anomaly_flag *fl = &f.a.flags[i];

		if ((int)fl->severity < c->anomaly_severity)
			continue;
		/* One event per flag: its kind, agent and start name it across evaluations. */
		snprintf(once, sizeof once, "alerts:fired:anomaly:%s:%" PRId64 ":%.200s", fl->kind,
			 fl->from_ns, fl->agent);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "kind", "anomaly");
		add_i64(o, "ts_ns", now_ns);
		cJSON_AddStringToObject(o, "anomaly", fl->kind);
		cJSON_AddStringToObject(o, "severity", anomaly_severity_name(fl->severity));
		cJSON_AddStringToObject(o, "agent", fl->agent);
		add_i64(o, "from_ns", fl->from_ns);
		add_i64(o, "to_ns", fl->to_ns);
		cJSON_AddStringToObject(o, "summary", fl->summary);
		ev_text = malloc(strlen(fl->evidence) + 3);
		if (ev_text != NULL) {
			sprintf(ev_text, "{%s}", fl->evidence);
			evidence = cJSON_Parse(ev_text);
			if (evidence != NULL)
				cJSON_AddItemToObject(o, "evidence", evidence);
			free(ev_text);
		}
		rc = event_write(st, o, once, written);
	}
	anomaly_release(&f.a);
	return rc;
}

int alerts_evaluate(struct store *st, const struct alerts_config *c, const struct pricing *p,
		    int64_t now_ns, uint64_t *written)
{
	int rc = 0;

	*written = 0;
	if (c->failure_rate)
		rc = failure_rate(st, c, now_ns, written);
	if (rc == 0 && c->anomaly)
		rc = anomalies(st, c, p, now_ns, written);
	return rc;
}
