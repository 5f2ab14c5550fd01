/*
 * test_budget.c - budget/ (the file, windows, matching, estimates, the 429) and the store's
 * budget counters, reservations and events on real LMDB files.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "budget/budget.h"
#include "store/store.h"
#include "tests/unit/check.h"

/* 2026-11-25T12:00:00Z, a Wednesday. */
#define WED_NOON 1795608000LL
#define NS 1000000000LL

static int parse_err(const char *text, char *err, size_t errlen)
{
	struct budget_set *s = NULL;
	int rc = budget_parse(&s, text, strlen(text), err, errlen);

	budget_set_free(s);
	return rc;
}

static void test_parse(void)
{
	static const char ok[] =
		"{\"budgets\": [\n"
		" {\"name\": \"a\", \"scope\": \"agent\", \"match\": \"bot-*\",\n"
		"  \"window\": \"daily\",\n"
		"  \"max_tokens\": 1000},\n"
		" {\"name\": \"b\", \"scope\": \"system\", \"window\": \"monthly\",\n"
		"  \"max_cost_usd\": 0.05, \"warn_at\": 0.5, \"action\": \"warn\"}\n"
		"]}\n";
	struct budget_set *s = NULL;
	char err[256];

	CHECK_INT(budget_parse(&s, ok, strlen(ok), err, sizeof err), 0);
	CHECK_INT(s->n, 2);
	CHECK_STR(s->b[0].match, "bot-*");
	CHECK_INT(s->b[0].max_tokens, 1000);
	CHECK_INT(s->b[0].max_pusd, -1);
	CHECK(s->b[0].warn_at == 0.95 && s->b[0].action == BUDGET_BLOCK);
	CHECK_STR(s->b[1].match, "*");
	CHECK_INT(s->b[1].max_pusd, 50000000000LL);
	CHECK_INT(s->b[1].window, BUDGET_MONTHLY);
	CHECK(s->b[1].action == BUDGET_WARN && s->b[1].warn_at == 0.5);
	budget_set_free(s);

	CHECK_INT(parse_err("{\"budgets\": [\n{\"name\": \"a\",\n \"scope\": \"agent\" \"x\"}]}",
			    err, sizeof err), BUDGET_EFORMAT);
	CHECK_STR(err, "line 3: not valid JSON (near '\"x\"}]}')");
	CHECK_INT(parse_err("{\"budgets\": [\n{\"name\": \"a\", \"scope\": \"agent\", \"match\": "
			    "\"*\",\n \"window\": \"daily\"}]}", err, sizeof err), BUDGET_EFORMAT);
	CHECK_STR(err, "line 2: field 'max_tokens': a budget needs max_tokens, max_cost_usd or "
		  "both");
	CHECK_INT(parse_err("{\"budgets\": [{\"name\": \"a\", \"scope\": \"agent\", \"match\": "
			    "\"*\", \"window\": \"daily\", \"max_tokens\": 5},\n{\"name\": \"b\",\n"
			    "\"scope\": \"team\", \"window\": \"daily\", \"max_tokens\": 5}]}",
			    err, sizeof err), BUDGET_EFORMAT);
	CHECK_STR(err, "line 3: field 'scope': must be agent, agent_type, tenant, model, provider "
		  "or system");
	CHECK_INT(parse_err("{\"budgets\": [{\"name\": \"a\", \"scope\": \"system\", \"window\": "
			    "\"daily\", \"max_tokens\": 1.5}]}", err, sizeof err), BUDGET_EFORMAT);
	CHECK_STR(err, "line 1: field 'max_tokens': must be a whole number >= 0");
	CHECK_INT(parse_err("{\"budgets\": [{\"name\": \"a\", \"scope\": \"system\", \"window\": "
			    "\"daily\", \"max_tokens\": 1},\n{\"name\": \"a\", "
			    "\"scope\": \"system\", \"window\": \"daily\", \"max_tokens\": 1}]}",
			    err, sizeof err),
		  BUDGET_EFORMAT);
	CHECK_STR(err, "line 2: field 'name': 'a' names two budgets");
	CHECK_INT(parse_err("[]", err, sizeof err), BUDGET_EFORMAT);
	CHECK_STR(err, "line 1: field 'budgets': the file must be an object with a \"budgets\" "
		  "array");
	CHECK_INT(parse_err("", err, sizeof err), BUDGET_EFORMAT);
}

static void check_window(enum budget_window w, int64_t t, const char *key, int64_t since,
			 int64_t until)
{
	struct budget_span sp;

	budget_window_of(w, t * NS, &sp);
	CHECK_STR(sp.key, key);
	CHECK_INT(sp.since_ns, since * NS);
	CHECK_INT(sp.until_ns, until * NS);
}

static void test_windows(void)
{
	const int64_t day = 86400, wed0 = WED_NOON - 43200;

	check_window(BUDGET_DAILY, WED_NOON, "d2026-11-25", wed0, wed0 + day);
	check_window(BUDGET_WEEKLY, WED_NOON, "w2026-11-23", wed0 - 2 * day, wed0 + 5 * day);
	check_window(BUDGET_MONTHLY, WED_NOON, "m2026-11", wed0 - 24 * day, wed0 + 6 * day);
	/* Sunday 23:59:59 is the last second of its week; Monday 00:00 starts the next. */
	check_window(BUDGET_WEEKLY, wed0 + 5 * day - 1, "w2026-11-23", wed0 - 2 * day,
		     wed0 + 5 * day);
	check_window(BUDGET_WEEKLY, wed0 + 5 * day, "w2026-11-30", wed0 + 5 * day,
		     wed0 + 12 * day);
	/* December to January; a week that starts in one month and ends in the next year. */
	check_window(BUDGET_MONTHLY, 1798761599, "m2026-12", 1796083200, 1798761600);
	check_window(BUDGET_WEEKLY, 1798761600, "w2026-12-28", 1798416000, 1799020800);
}

/* The last nanosecond int64_t holds (2262-04-11 23:47:16 UTC, a Friday): every window's end
 * lies past it and is held at INT64_MAX, its start is exact. */
static void test_windows_extreme(void)
{
	struct budget_span sp;

	budget_window_of(BUDGET_DAILY, INT64_MAX, &sp);
	CHECK_STR(sp.key, "d2262-04-11");
	CHECK_INT(sp.since_ns, 9223286400 * NS);
	CHECK_INT(sp.until_ns, INT64_MAX);
	budget_window_of(BUDGET_WEEKLY, INT64_MAX, &sp);
	CHECK_STR(sp.key, "w2262-04-07");
	CHECK_INT(sp.since_ns, 9222940800 * NS);
	CHECK_INT(sp.until_ns, INT64_MAX);
	budget_window_of(BUDGET_MONTHLY, INT64_MAX, &sp);
	CHECK_STR(sp.key, "m2262-04");
	CHECK_INT(sp.since_ns, 9222422400 * NS);
	CHECK_INT(sp.until_ns, INT64_MAX);
	/* Before the first representable day: its start is held at INT64_MIN. */
	budget_window_of(BUDGET_DAILY, INT64_MIN, &sp);
	CHECK_STR(sp.key, "d1677-09-21");
	CHECK_INT(sp.since_ns, INT64_MIN);
	CHECK_INT(sp.until_ns, -9223286400 * NS);
}

static void test_match_estimate(void)
{
	struct budget b = { .scope = BUDGET_SCOPE_MODEL, .match = "gpt-4o*" };
	struct budget_call c = { "bot", "", "acme", "gpt-4o-mini", "openai" };
	struct budget_estimate e;
	static const char gem[] = "{\"generationConfig\":{\"maxOutputTokens\":77}}";
	static const char oa[] = "{\"model\":\"x\",\"max_completion_tokens\":9}";

	CHECK(budget_matches(&b, &c));
	c.model = "claude-3";
	CHECK(!budget_matches(&b, &c));
	b.scope = BUDGET_SCOPE_TENANT;
	strcpy(b.match, "ac*");
	CHECK(budget_matches(&b, &c));
	c.tenant = NULL;
	CHECK(!budget_matches(&b, &c));
	CHECK_INT(budget_max_output(gem, strlen(gem)), 77);
	CHECK_INT(budget_max_output(oa, strlen(oa)), 9);
	CHECK_INT(budget_max_output("{", 1), -1);
	budget_estimate_call(NULL, "openai", "gpt-4o", 97, -1, &e);
	CHECK_INT(e.input_tokens, 25);
	CHECK_INT(e.output_tokens, BUDGET_DEFAULT_OUTPUT_TOKENS);
	CHECK_INT(e.tokens, 25 + BUDGET_DEFAULT_OUTPUT_TOKENS);
	CHECK_INT(e.pusd, 0);
}

static void check_429(const char *family, const char *path1, const char *path2,
		      const char *want)
{
	size_t len = 0;
	char *r = budget_response_429(family, "say \"no\"", 42, &len);
	const char *body = strstr(r, "\r\n\r\n") + 4;
	cJSON *j = cJSON_Parse(body);
	const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, path1), path2);
	char cl[64];

	CHECK_INT(strncmp(r, "HTTP/1.1 429 Too Many Requests\r\n", 32), 0);
	CHECK(strstr(r, "\r\nRetry-After: 42\r\n") != NULL);
	CHECK(strstr(r, "\r\nConnection: close\r\n") != NULL);
	snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", strlen(body));
	CHECK(strstr(r, cl) != NULL);
	CHECK_INT(len, strlen(r));
	CHECK(cJSON_IsString(v) && strcmp(v->valuestring, want) == 0);
	CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message")->valuestring,
		  "say \"no\"");
	cJSON_Delete(j);
	free(r);
}

static void test_429(void)
{
	check_429("openai", "error", "code", "budget_exceeded");
	check_429("ollama", "error", "type", "budget_exceeded");
	check_429("anthropic", "error", "type", "rate_limit_error");
	check_429("gemini", "error", "status", "RESOURCE_EXHAUSTED");
}

/* ---- the store ------------------------------------------------------------------------------ */

static struct budget_set *set_of(const char *json)
{
	struct budget_set *s = NULL;
	char err[256];

	if (budget_parse(&s, json, strlen(json), err, sizeof err) != 0)
		fprintf(stderr, "budget_parse: %s\n", err);
	return s;
}

static int append(struct store *st, struct budget_set *s, const char *agent, const char *tenant,
		  int64_t tokens, uint64_t resv, int64_t t)
{
	struct budget_plan *pl = malloc(sizeof(*pl));
	struct budget_call c = { agent, "", tenant, "m", "p" };
	struct record r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.ts_ns = t;
	r.status = 200;
	r.input_tokens = tokens;
	r.agent = record_str_of(agent);
	r.tenant = record_str_of(tenant);
	r.model_requested = record_str_of("m");
	r.provider = record_str_of("p");
	budget_plan_make(pl, s, NULL, &c, t);
	for (size_t i = 0; i < pl->n; i++)
		pl->sb[i].tokens = tokens;
	rc = store_append_budget(st, &r, NULL, NULL, 0, pl->sb, pl->n, resv, pl->n);
	free(pl);
	return rc;
}

/* Reserves est tokens for a call of agent; returns the store's code, *refused the budget. */
static int reserve(struct store *st, struct budget_set *s, const char *agent, int64_t est,
		   int64_t t, uint64_t *resv, size_t *refused, int64_t *used, int64_t *reserved)
{
	struct budget_plan *pl = malloc(sizeof(*pl));
	struct budget_call c = { agent, "", "", "m", "p" };
	int rc;

	budget_plan_make(pl, s, NULL, &c, t);
	for (size_t i = 0; i < pl->n; i++)
		pl->sb[i].est_tokens = est;
	rc = store_budget_reserve(st, pl->sb, pl->n, t, resv, refused);
	*used = pl->sb[0].used_tokens;
	*reserved = pl->sb[0].reserved_tokens;
	free(pl);
	return rc;
}

static int count_event(uint64_t id, const char *json, size_t len, void *arg)
{
	(void)id;
	(void)len;
	if (strstr(json, "\"kind\":\"budget_warning\"") != NULL)
		((int *)arg)[0]++;
	if (strstr(json, "\"kind\":\"budget_block\"") != NULL)
		((int *)arg)[1]++;
	return 0;
}

static void test_store(void)
{
	char dir[] = "/tmp/tokshim-budget-XXXXXX", path[64];
	struct budget_set *s;
	struct store *st;
	uint64_t resv, resv2;
	size_t refused;
	int64_t used, reserved, t = WED_NOON * NS;
	int ev[2] = { 0, 0 };
	pid_t pid;
	int status;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/u.mdb", dir);
	CHECK_INT(store_open(&st, path, STORE_CREATE, 0), 0);
	/* Records from before the budget existed: seeded once, within the window only. */
	s = set_of("{\"budgets\":[]}");
	CHECK_INT(append(st, s, "bot-1", "", 30, 0, t - 86400 * NS), 0);
	CHECK_INT(append(st, s, "bot-1", "", 40, 0, t - 3600 * NS), 0);
	CHECK_INT(append(st, s, "bot-1", "other", 500, 0, t - 3600 * NS), 0);
	budget_set_free(s);
	s = set_of("{\"budgets\":[{\"name\":\"hard\",\"scope\":\"agent\",\"match\":\"bot-*\","
		   "\"window\":\"daily\",\"max_tokens\":100,\"warn_at\":0.7},"
		   "{\"name\":\"soft\",\"scope\":\"agent\",\"match\":\"bot-*\","
		   "\"window\":\"daily\",\"max_tokens\":80,\"action\":\"warn\"}]}");
	CHECK_INT(reserve(st, s, "bot-2", 50, t, &resv, &refused, &used, &reserved), 0);
	CHECK_INT(used, 40);
	CHECK_INT(reserved, 0);
	CHECK(resv != 0);
	/* 40 used + 50 in flight + 11 > 100: refused by "hard"; "soft" never refuses. */
	CHECK_INT(reserve(st, s, "bot-3", 11, t, &resv2, &refused, &used, &reserved),
		  STORE_EBUDGET);
	CHECK_INT(refused, 0);
	CHECK_INT(reserved, 50);
	CHECK_INT(reserve(st, s, "bot-3", 10, t, &resv2, &refused, &used, &reserved), 0);
	/* Settled with its real usage, the first call frees its reservation. */
	CHECK_INT(append(st, s, "bot-2", "", 35, resv, t), 0);
	CHECK_INT(reserve(st, s, "bot-4", 15, t, &resv, &refused, &used, &reserved), 0);
	CHECK_INT(used, 75);
	CHECK_INT(reserved, 10);
	CHECK_INT(store_budget_release(st, resv), 0);
	CHECK_INT(store_budget_release(st, resv2), 0);
	/* A reservation of a process that died is swept by the next reserve. */
	pid = fork();
	if (pid == 0) {
		struct store *cst;
		int rc = store_open(&cst, path, STORE_CREATE, 0);

		if (rc == 0)
			rc = reserve(cst, s, "bot-5", 20, t, &resv, &refused, &used, &reserved);
		_exit(rc == 0 ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_INT(reserve(st, s, "bot-6", 25, t, &resv, &refused, &used, &reserved), 0);
	CHECK_INT(used, 75);
	CHECK_INT(reserved, 0);
	/* Tomorrow is a new window: nothing used. */
	CHECK_INT(reserve(st, s, "bot-6", 99, t + 86400 * NS, &resv2, &refused, &used, &reserved),
		  0);
	CHECK_INT(used, 0);
	/* One warning per budget and window (hard at 70, soft at 76), one block event. */
	CHECK_INT(store_events_scan(st, count_event, ev), 0);
	CHECK_INT(ev[0], 1);
	CHECK_INT(append(st, s, "bot-6", "", 5, resv, t), 0);
	CHECK_INT(append(st, s, "bot-6", "", 5, 0, t), 0);
	ev[0] = ev[1] = 0;
	CHECK_INT(store_events_scan(st, count_event, ev), 0);
	CHECK_INT(ev[0], 2);
	CHECK_INT(ev[1], 0);
	store_close(st);
	budget_set_free(s);
	unlink(path);
	snprintf(path, sizeof path, "%s/u.mdb-lock", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_windows);
	RUN(test_windows_extreme);
	RUN(test_match_estimate);
	RUN(test_429);
	RUN(test_store);
	CHECK_DONE();
}
