/*
 * filter.c - the common filters of the reading commands, and the scan over their stores
 * (see filter.h).
 *
 * The time range goes to store_scan, whose keys start with the timestamp, so --since on a
 * large store reads only the range asked for; the other filters are checked per record. When
 * several stores are read as one (one file per host), a time-ordered listing needs them
 * merged: store_scan hands out records through a callback inside its own read transaction, so
 * a k-way merge would need one thread per store; copying the matching records and sorting them
 * is simpler and only costs memory in the rare many-store case.
 */
#include "analyzer/filter.h"

#include <stddef.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_S INT64_C(1000000000)

const char filter_help[] =
	"Filters:\n"
	"  --db PATH            store to read (repeatable: several are read as one);\n"
	"                       default $TOKSHIM_DB, else $XDG_DATA_HOME/tokshim/usage.mdb,\n"
	"                       else ~/.local/share/tokshim/usage.mdb\n"
	"  --since TIME         records at or after TIME: 2026-11-25, 2026-11-25T04:30:00Z,\n"
	"                       or relative: 30m, 24h, 7d, 2w\n"
	"  --until TIME         records before TIME (a date alone includes that day)\n"
	"  --agent NAME         agent (shell glob; repeat an option to match any of its values)\n"
	"  --tenant NAME        tenant\n"
	"  --provider NAME      provider (openai, anthropic, ollama …)\n"
	"  --model NAME         model named by the response or asked for by the request\n"
	"  --session ID         session\n"
	"  --locality WHERE     local or cloud\n";

void filter_init(struct filter *f)
{
	memset(f, 0, sizeof *f);
	f->since_ns = INT64_MIN;
	f->until_ns = INT64_MAX;
	f->locality = -1;
}

int64_t filter_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Reads exactly n digits at *s into *out and advances *s. Returns 0 or -1. */
static int read_digits(const char **s, int n, int *out)
{
	int v = 0, i, ret = -1;

	for (i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			goto out;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	*out = v;
	ret = 0;
out:
	return ret;
}

static int parse_relative(const char *s, int64_t now_ns, int64_t *out)
{
	uint64_t n = 0, unit;
	const char *p = s;
	int ret = -1;

	if (*p < '0' || *p > '9')
		goto out;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > 1000000000)
			goto out;
	}
	switch (*p) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: goto out;
	}
	if (p[1] != '\0')
		goto out;
	*out = now_ns - (int64_t)(n * unit) * NS_PER_S;
	ret = 0;
out:
	return ret;
}

int filter_parse_duration(const char *s, int64_t *out)
{
	int64_t t = 0;
	int ret = parse_relative(s, 0, &t);

	if (ret == 0)
		*out = -t;
	return ret;
}

/* RFC 3339 date or date-time (see filter.h). */
static int parse_absolute(const char *s, int end_bound, int64_t *out)
{
	int year, mon, day, hour = 0, min = 0, sec = 0, oh, om, digits = 0, ret = -1;
	int64_t frac_ns = 0, scale = NS_PER_S / 10, offset_s = 0;
	struct tm tm;
	time_t t;

	if (read_digits(&s, 4, &year) || *s++ != '-' || read_digits(&s, 2, &mon) ||
	    *s++ != '-' || read_digits(&s, 2, &day))
		goto out;
	if (mon < 1 || mon > 12 || day < 1 || day > 31)
		goto out;
	if (*s == '\0') {
		memset(&tm, 0, sizeof tm);
		tm.tm_year = year - 1900;
		tm.tm_mon = mon - 1;
		tm.tm_mday = day + (end_bound ? 1 : 0); /* timegm normalises the day after */
		t = timegm(&tm);
		*out = (int64_t)t * NS_PER_S;
		ret = 0;
		goto out;
	}
	if (*s != 'T' && *s != 't' && *s != ' ')
		goto out;
	s++;
	if (read_digits(&s, 2, &hour) || *s++ != ':' || read_digits(&s, 2, &min))
		goto out;
	if (*s == ':') {
		s++;
		if (read_digits(&s, 2, &sec))
			goto out;
		if (*s == '.' || *s == ',') {
			s++;
			for (; *s >= '0' && *s <= '9'; s++, digits++) {
				frac_ns += (*s - '0') * scale;
				scale /= 10;
			}
			if (digits == 0)
				goto out;
		}
	}
	if (hour > 23 || min > 59 || sec > 60)
		goto out;
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		int sign = *s == '-' ? -1 : 1;

		s++;
		if (read_digits(&s, 2, &oh))
			goto out;
		if (*s == ':')
			s++;
		if (read_digits(&s, 2, &om) || oh > 23 || om > 59)
			goto out;
		offset_s = sign * (oh * 3600 + om * 60);
	}
	if (*s != '\0')
		goto out;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*out = ((int64_t)t - offset_s) * NS_PER_S + frac_ns;
	ret = 0;
out:
	return ret;
}

int filter_parse_time(const char *s, int64_t now_ns, int end_bound, int64_t *out)
{
	int ret;

	if (strcmp(s, "now") == 0) {
		*out = now_ns;
		ret = 0;
	} else if (parse_relative(s, now_ns, out) == 0) {
		ret = 0;
	} else {
		ret = parse_absolute(s, end_bound, out);
	}
	return ret;
}

static int add_value(struct filter_values *fv, const char *opt, const char *v, char *err,
		     size_t errlen)
{
	int ret = -1;

	if (fv->n == FILTER_MAX_VALUES) {
		snprintf(err, errlen, "too many '%s' values (at most %d)", opt, FILTER_MAX_VALUES);
		goto out;
	}
	fv->v[fv->n++] = v;
	ret = 1;
out:
	return ret;
}

/* Matches option name at argv[*i] as "--name VALUE" or "--name=VALUE" (see cli_opt_value;
 * this one returns its message instead of printing it, as library code should). */
static int opt_match(int argc, char **argv, int *i, const char *name, const char **v,
		     char *err, size_t errlen)
{
	const char *arg = argv[*i];
	size_t n = strlen(name);
	int ret = 0;

	if (strncmp(arg, name, n) != 0 || (arg[n] != '=' && arg[n] != '\0'))
		goto out;
	ret = 1;
	if (arg[n] == '=') {
		*v = arg + n + 1;
	} else if (*i + 1 < argc) {
		*v = argv[++*i];
	} else {
		snprintf(err, errlen, "option '%s' needs a value", name);
		ret = -1;
	}
out:
	return ret;
}

int filter_parse_arg(struct filter *f, int argc, char **argv, int *i, int64_t now_ns, char *err,
		     size_t errlen)
{
	const struct {
		const char *opt;
		struct filter_values *fv;
	} strs[] = {
		{ "--agent", &f->agent },     { "--tenant", &f->tenant },
		{ "--provider", &f->provider }, { "--model", &f->model },
		{ "--session", &f->session },
	};
	const char *v = NULL;
	size_t k;
	int ret = 0;

	for (k = 0; k < sizeof strs / sizeof strs[0]; k++) {
		ret = opt_match(argc, argv, i, strs[k].opt, &v, err, errlen);
		if (ret == 1)
			ret = add_value(strs[k].fv, strs[k].opt, v, err, errlen);
		if (ret != 0)
			goto out;
	}
	ret = opt_match(argc, argv, i, "--db", &v, err, errlen);
	if (ret == 1) {
		if (*v == '\0') {
			snprintf(err, errlen, "empty '--db' path");
			ret = -1;
		} else if (f->ndb == FILTER_MAX_DB) {
			snprintf(err, errlen, "too many '--db' stores (at most %d)", FILTER_MAX_DB);
			ret = -1;
		} else {
			f->db[f->ndb++] = v;
		}
	}
	if (ret != 0)
		goto out;
	for (k = 0; k < 2; k++) {
		const char *opt = k == 0 ? "--since" : "--until";

		ret = opt_match(argc, argv, i, opt, &v, err, errlen);
		if (ret == 1 && filter_parse_time(v, now_ns, k == 1,
						  k == 0 ? &f->since_ns : &f->until_ns) != 0) {
			snprintf(err, errlen,
				 "invalid time '%s' for '%s': expected 2026-11-25, "
				 "2026-11-25T04:30:00Z or 24h, 7d, 30m",
				 v, opt);
			ret = -1;
		}
		if (ret != 0)
			goto out;
	}
	ret = opt_match(argc, argv, i, "--locality", &v, err, errlen);
	if (ret == 1) {
		if (strcmp(v, "local") == 0) {
			f->locality = 1;
		} else if (strcmp(v, "cloud") == 0) {
			f->locality = 0;
		} else {
			snprintf(err, errlen, "invalid locality '%s': expected local or cloud", v);
			ret = -1;
		}
	}
out:
	return ret;
}

int filter_default_db(char *buf, size_t cap)
{
	const char *db = getenv("TOKSHIM_DB"), *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	int n, ret = -1;

	if (db && *db)
		n = snprintf(buf, cap, "%s", db);
	else if (xdg && *xdg == '/') /* XDG says relative values are to be ignored */
		n = snprintf(buf, cap, "%s/tokshim/usage.mdb", xdg);
	else if (home && *home)
		n = snprintf(buf, cap, "%s/.local/share/tokshim/usage.mdb", home);
	else
		goto out;
	if (n < 0 || (size_t)n >= cap)
		goto out;
	ret = 0;
out:
	return ret;
}

int filter_finish(struct filter *f, char *err, size_t errlen)
{
	int ret = 0;

	if (f->ndb == 0) {
		if (filter_default_db(f->default_db, sizeof f->default_db) != 0) {
			snprintf(err, errlen, "no store: set TOKSHIM_DB or HOME, or give --db");
			ret = -1;
			goto out;
		}
		f->db[f->ndb++] = f->default_db;
	}
out:
	return ret;
}

/* Does s[0..n) match any of the globs of fv (or fv is empty)? */
static int values_match(const struct filter_values *fv, const struct record_str *s)
{
	char buf[RECORD_STR_MAX + 1];
	size_t n = s->n < RECORD_STR_MAX ? s->n : RECORD_STR_MAX, k;
	int ret = fv->n == 0;

	if (ret)
		goto out;
	if (n)
		memcpy(buf, s->p, n);
	buf[n] = '\0';
	for (k = 0; k < fv->n && !ret; k++)
		ret = fnmatch(fv->v[k], buf, 0) == 0;
out:
	return ret;
}

static int filter_no_names(const struct filter *f)
{
	return (f->agent.n | f->tenant.n | f->provider.n | f->session.n | f->model.n) == 0;
}

int filter_time_only(const struct filter *f)
{
	return filter_no_names(f) && f->locality < 0;
}

int filter_match(const struct filter *f, const struct record *rec)
{
	int local = (rec->flags & RECORD_LOCAL) != 0;

	/* No name filter (the usual report, which asks for every record): no call that would
	 * find an empty list six times. */
	return (filter_no_names(f) ||
		(values_match(&f->agent, &rec->agent) && values_match(&f->tenant, &rec->tenant) &&
		 values_match(&f->provider, &rec->provider) &&
		 values_match(&f->session, &rec->session) &&
		 (values_match(&f->model, &rec->model) ||
		  values_match(&f->model, &rec->model_requested)))) &&
	       (f->locality < 0 || f->locality == local) && rec->ts_ns >= f->since_ns &&
	       rec->ts_ns < f->until_ns;
}

int filter_open(const struct filter *f, struct store **stores, char *err, size_t errlen)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < f->ndb; i++)
		stores[i] = NULL;
	for (i = 0; i < f->ndb; i++) {
		ret = store_open(&stores[i], f->db[i], STORE_READONLY, 0);
		if (ret != 0) {
			snprintf(err, errlen, "cannot open '%s': %s", f->db[i], store_strerror(ret));
			filter_close(stores, i);
			goto out;
		}
	}
out:
	return ret;
}

void filter_close(struct store **stores, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		store_close(stores[i]);
		stores[i] = NULL;
	}
}

/* A record copied out of the map with its strings, for the merge of several stores. */
struct rec_copy {
	struct record rec;
	size_t store; /* index of its store: ties in time are broken by store, then id */
	char strings[];
};

struct collect {
	const struct filter *f;
	struct rec_copy **v;
	size_t n, cap;
	size_t store;
	int failed; /* out of memory */
};

#define REC_NSTR 13

/* The string fields of r, to copy them one by one. */
static void rec_strings(struct record *r, struct record_str *out[REC_NSTR])
{
	out[0] = &r->process;
	out[1] = &r->agent;
	out[2] = &r->agent_type;
	out[3] = &r->tenant;
	out[4] = &r->session;
	out[5] = &r->provider;
	out[6] = &r->api;
	out[7] = &r->host;
	out[8] = &r->path;
	out[9] = &r->model_requested;
	out[10] = &r->model;
	out[11] = &r->error;
	out[12] = &r->error_message;
}

/* A copy of rec with its strings in the same allocation; NULL when out of memory. */
static struct rec_copy *rec_copy_new(const struct record *rec, size_t store)
{
	struct rec_copy *cp;
	struct record tmp = *rec;
	struct record_str *s[REC_NSTR];
	size_t total = 0, k;
	char *p;

	rec_strings(&tmp, s);
	for (k = 0; k < REC_NSTR; k++)
		total += s[k]->n;
	cp = malloc(sizeof *cp + total + 1);
	if (cp == NULL)
		goto out;
	cp->rec = *rec;
	cp->store = store;
	rec_strings(&cp->rec, s);
	p = cp->strings;
	for (k = 0; k < REC_NSTR; k++) {
		if (s[k]->n)
			memcpy(p, s[k]->p, s[k]->n);
		s[k]->p = p;
		p += s[k]->n;
	}
out:
	return cp;
}

struct record *filter_record_dup(const struct record *rec)
{
	struct rec_copy *cp = rec_copy_new(rec, 0);

	return cp ? &cp->rec : NULL;
}

void filter_record_free(struct record *rec)
{
	/* rec is the first member of its rec_copy: the allocation starts there. */
	free(rec);
}

static int collect_one(const struct record *rec, void *arg)
{
	struct collect *c = arg;
	struct rec_copy *cp, **grown;
	size_t cap;
	int ret = 0;

	if (!filter_match(c->f, rec))
		goto out;
	if (c->n == c->cap) {
		cap = c->cap ? c->cap * 2 : 1024;
		grown = realloc(c->v, cap * sizeof *grown);
		if (grown == NULL)
			goto nomem;
		c->v = grown;
		c->cap = cap;
	}
	cp = rec_copy_new(rec, c->store);
	if (cp == NULL)
		goto nomem;
	c->v[c->n++] = cp;
	goto out;
nomem:
	c->failed = 1;
	ret = STORE_ENOMEM;
out:
	return ret;
}

static int rec_copy_cmp(const void *a, const void *b)
{
	const struct rec_copy *x = *(const struct rec_copy *const *)a;
	const struct rec_copy *y = *(const struct rec_copy *const *)b;

	int c = 0;

	if (x->rec.ts_ns != y->rec.ts_ns)
		c = x->rec.ts_ns < y->rec.ts_ns ? -1 : 1;
	else if (x->store != y->store)
		c = x->store < y->store ? -1 : 1;
	else if (x->rec.id != y->rec.id)
		c = x->rec.id < y->rec.id ? -1 : 1;
	return c;
}

/* The store of the record being handed to a filter_scan callback (filter_scan_db). */
static __thread size_t scan_db;

size_t filter_scan_db(void)
{
	return scan_db;
}

struct pass {
	const struct filter *f;
	store_record_fn fn;
	void *arg;
};

static int pass_one(const struct record *rec, void *arg)
{
	struct pass *p = arg;

	return filter_match(p->f, rec) ? p->fn(rec, p->arg) : 0;
}

int filter_scan(const struct filter *f, int ordered, store_record_fn fn, void *arg, char *err,
		size_t errlen)
{
	struct store *stores[FILTER_MAX_DB];
	struct collect c = { .f = f };
	struct pass p = { f, fn, arg };
	size_t i;
	int ret;

	ret = filter_open(f, stores, err, errlen);
	if (ret != 0)
		goto out;
	if (!ordered || f->ndb == 1) {
		for (i = 0; i < f->ndb && ret == 0; i++) {
			scan_db = i;
			ret = store_scan(stores[i], f->since_ns, f->until_ns, pass_one, &p);
			if (ret < 0)
				snprintf(err, errlen, "cannot read '%s': %s", f->db[i],
					 store_strerror(ret));
		}
		goto close;
	}
	for (i = 0; i < f->ndb && ret == 0; i++) {
		c.store = i;
		ret = store_scan(stores[i], f->since_ns, f->until_ns, collect_one, &c);
		if (ret < 0)
			snprintf(err, errlen, "cannot read '%s': %s", f->db[i],
				 c.failed ? "out of memory" : store_strerror(ret));
	}
	if (ret != 0)
		goto free_copies;
	if (c.n > 1)
		qsort(c.v, c.n, sizeof *c.v, rec_copy_cmp);
	for (i = 0; i < c.n && ret == 0; i++) {
		scan_db = c.v[i]->store;
		ret = fn(&c.v[i]->rec, arg);
	}
free_copies:
	for (i = 0; i < c.n; i++)
		free(c.v[i]);
	free(c.v);
close:
	filter_close(stores, f->ndb);
out:
	return ret;
}
