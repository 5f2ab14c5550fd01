/*
 * cmd_budget.c - `tokshim budget lint|status|check`: the budget file checked, each budget's
 * spend in its current window, and a pre-flight check for scripts.
 *
 * status and check read what the shim reads: the counters of the current window (or, for a
 * budget with no counters yet, the sum over the window's records, which is what the shim
 * would seed them with) and the live reservations. docs/budgets.md describes the rules.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyzer/cli.h"
#include "analyzer/filter.h"
#include "analyzer/format.h"
#include "budget/budget.h"
#include "store/store.h"

static const char usage_text[] =
	"usage: tokshim budget lint [FILE]\n"
	"       tokshim budget status [--budgets FILE] [--db PATH] [--tenant T] "
	"[--format table|json]\n"
	"       tokshim budget check --agent A [--tenant T] [--agent-type X] [--provider P]\n"
	"                            --model M --tokens N [--budgets FILE] [--db PATH]\n"
	"\n"
	"lint     checks a budget file (default $TOKSHIM_BUDGETS); exit 1 naming line and field\n"
	"status   each budget's window, used, reserved, cap, percent and state, per tenant\n"
	"check    would a call of N tokens (priced as input) be allowed now? exit 0 allowed,\n"
	"         1 blocked (the reason is printed), 2 usage error\n"
	"\n"
	"Options:\n"
	"  --budgets FILE  the budget file (default $TOKSHIM_BUDGETS)\n"
	"  --db PATH       the store (default $TOKSHIM_DB, else the default store)\n"
	"  --format F      table (default) or json (status)\n"
	"See docs/budgets.md for the file format.\n";

#define BUDGET_CMD "budget"

struct budget_args {
	const char *budgets, *format, *tenant, *agent, *agent_type, *provider, *model, *tokens;
	struct filter f;
};

/* The budget clock: TOKSHIM_TEST_NOW (seconds; tests only) or now. */
static int64_t budget_now_ns(void)
{
	const char *t = getenv("TOKSHIM_TEST_NOW");
	struct timespec ts;

	if (t != NULL && t[0] != '\0')
		return strtoll(t, NULL, 10) * 1000000000;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int budget_args_parse(int argc, char **argv, struct budget_args *a)
{
	static const char *const names[] = { "--budgets", "--format", "--tenant", "--agent",
					     "--agent-type", "--provider", "--model", "--tokens",
					     "--db" };
	const char **slots[] = { &a->budgets, &a->format, &a->tenant, &a->agent, &a->agent_type,
				 &a->provider, &a->model, &a->tokens, NULL };
	char err[512];
	const char *v;
	int m = 0;

	for (int i = 2; i < argc; i++) {
		for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
			m = cli_opt_value(BUDGET_CMD, argc, argv, &i, names[k], &v);
			if (m < 0)
				return CLI_USAGE;
			if (m == 0)
				continue;
			if (slots[k] != NULL)
				*slots[k] = v;
			else if (a->f.ndb < FILTER_MAX_DB)
				a->f.db[a->f.ndb++] = v;
			break;
		}
		if (m == 0)
			return cli_unknown_arg(BUDGET_CMD, argv[i]);
	}
	if (a->budgets == NULL)
		a->budgets = getenv("TOKSHIM_BUDGETS");
	if (a->budgets == NULL || a->budgets[0] == '\0')
		return cli_usage_error(BUDGET_CMD, "no budget file: give --budgets FILE or set "
				       "TOKSHIM_BUDGETS");
	if (cli_check_format(BUDGET_CMD, a->format, CLI_FORMATS("table", "json")) != CLI_OK)
		return CLI_USAGE;
	if (filter_finish(&a->f, err, sizeof err) != 0) {
		cli_error("%s", err);
		return CLI_ERR;
	}
	return CLI_OK;
}

static int budget_lint(int argc, char **argv)
{
	struct budget_set *s;
	const char *path = argc >= 3 ? argv[2] : getenv("TOKSHIM_BUDGETS");
	char err[600];
	int rc;

	if (argc > 3)
		return cli_unknown_arg(BUDGET_CMD, argv[3]);
	if (path == NULL || path[0] == '\0')
		return cli_usage_error(BUDGET_CMD, "no budget file: give FILE or set "
				       "TOKSHIM_BUDGETS");
	rc = budget_load(&s, path, err, sizeof err);
	if (rc != 0) {
		cli_error("%s", err);
		return CLI_ERR;
	}
	printf("'%s': %zu budget%s, valid\n", path, s->n, s->n == 1 ? "" : "s");
	budget_set_free(s);
	return CLI_OK;
}

/* Opens the store read-only; a store that does not exist yet reads as empty (*st NULL). */
static int budget_store(const struct budget_args *a, struct store **st)
{
	int rc = store_open(st, a->f.db[0], STORE_READONLY, 0);

	if (rc == STORE_ENOENT)
		return CLI_OK;
	if (rc != 0) {
		cli_error("cannot open '%s': %s", a->f.db[0], store_strerror(rc));
		return CLI_ERR;
	}
	return CLI_OK;
}

/* ---- status ---------------------------------------------------------------------------------- */

/* Tenants with counters of one budget in its window: the text between base prefix and
 * ":tokens". */
struct tenant_list {
	const char *prefix;
	size_t n;
	char name[BUDGET_MAX][BUDGET_TENANT_MAX + 1];
};

static int tenant_collect(const char *name, int64_t value, void *arg)
{
	struct tenant_list *tl = arg;
	size_t pn = strlen(tl->prefix), nn = strlen(name), tn;
	static const char sfx[] = ":tokens";

	(void)value;
	if (nn < pn + sizeof sfx - 1 || strncmp(name, tl->prefix, pn) != 0 ||
	    strcmp(name + nn - (sizeof sfx - 1), sfx) != 0 || tl->n == BUDGET_MAX)
		return 0;
	tn = nn - pn - (sizeof sfx - 1);
	if (tn > BUDGET_TENANT_MAX || memchr(name + pn, ':', tn) != NULL)
		return 0;
	memcpy(tl->name[tl->n], name + pn, tn);
	tl->name[tl->n][tn] = '\0';
	tl->n++;
	return 0;
}

static const char *budget_state(const struct budget *b, const struct store_budget *sb,
				int64_t *permille)
{
	int64_t pt = b->max_tokens > 0 ? sb->used_tokens * 1000 / b->max_tokens : 0;
	int64_t pc = b->max_pusd > 0 ? sb->used_pusd * 1000 / b->max_pusd : 0;
	int64_t warn = (int64_t)(b->warn_at * 1000 + 0.5);

	*permille = pt > pc ? pt : pc;
	if ((b->max_tokens >= 0 && sb->used_tokens >= b->max_tokens) ||
	    (b->max_pusd >= 0 && sb->used_pusd >= b->max_pusd))
		return b->action == BUDGET_BLOCK ? "exhausted" : "over";
	return *permille >= warn ? "warning" : "ok";
}

static void status_row(struct jw *jw, const struct budget *b, const char *tenant,
		       const struct store_budget *sb, const struct budget_span *span)
{
	char used[48], cap[48];
	int64_t pm;
	const char *state = budget_state(b, sb, &pm);

	if (jw == NULL) {
		if (b->max_tokens >= 0) {
			snprintf(used, sizeof used, "%" PRId64 "+%" PRId64, sb->used_tokens,
				 sb->reserved_tokens);
			snprintf(cap, sizeof cap, "%" PRId64 " tok", b->max_tokens);
		} else {
			snprintf(used, sizeof used, "$%.6f+%.6f", (double)sb->used_pusd / 1e12,
				 (double)sb->reserved_pusd / 1e12);
			snprintf(cap, sizeof cap, "$%.6f", (double)b->max_pusd / 1e12);
		}
		printf("%-16s %-10s %-14s %-10s %-8s %-11s %18s %14s %5" PRId64 ".%" PRId64
		       "%% %s\n",
		       b->name, budget_scope_name(b->scope), b->match, tenant[0] ? tenant : "-",
		       budget_window_name(b->window), span->key + 1, used, cap, pm / 10, pm % 10,
		       state);
		return;
	}
	jw_object_begin(jw);
	jw_key(jw, "name");
	jw_str(jw, b->name, strlen(b->name));
	jw_key(jw, "scope");
	jw_str(jw, budget_scope_name(b->scope), strlen(budget_scope_name(b->scope)));
	jw_key(jw, "match");
	jw_str(jw, b->match, strlen(b->match));
	jw_key(jw, "tenant");
	jw_str(jw, tenant, strlen(tenant));
	jw_key(jw, "window");
	jw_str(jw, budget_window_name(b->window), strlen(budget_window_name(b->window)));
	jw_key(jw, "window_start");
	jw_str(jw, span->key + 1, strlen(span->key + 1));
	jw_key(jw, "action");
	jw_str(jw, b->action == BUDGET_BLOCK ? "block" : "warn", 5 - (b->action == BUDGET_WARN));
	jw_key(jw, "used_tokens");
	jw_int(jw, sb->used_tokens);
	jw_key(jw, "reserved_tokens");
	jw_int(jw, sb->reserved_tokens);
	jw_key(jw, "max_tokens");
	if (b->max_tokens >= 0)
		jw_int(jw, b->max_tokens);
	else
		jw_null(jw);
	jw_key(jw, "used_cost_usd");
	jw_pusd(jw, sb->used_pusd);
	jw_key(jw, "reserved_cost_usd");
	jw_pusd(jw, sb->reserved_pusd);
	jw_key(jw, "max_cost_usd");
	if (b->max_pusd >= 0)
		jw_pusd(jw, b->max_pusd);
	else
		jw_null(jw);
	jw_key(jw, "percent");
	jw_int(jw, pm / 10);
	jw_key(jw, "state");
	jw_str(jw, state, strlen(state));
	jw_object_end(jw);
}

/* Reads and prints one budget for one tenant. */
static int status_one(struct store *st, struct jw *jw, const struct budget *b,
		      const struct pricing *p, const char *tenant, int64_t now)
{
	struct budget_plan *pl = malloc(sizeof(*pl));
	int rc = CLI_ERR;

	if (pl == NULL)
		goto out;
	budget_plan_init(pl, tenant);
	budget_plan_add(pl, b, p, now);
	if (st != NULL && store_budget_read(st, pl->sb, 1, now) != 0) {
		cli_error("cannot read budget '%s'", b->name);
		goto out;
	}
	status_row(jw, b, tenant, &pl->sb[0], &pl->span[0]);
	rc = CLI_OK;
out:
	free(pl);
	return rc;
}

static int budget_status(const struct budget_args *a, const struct budget_set *s,
			 const struct pricing *p, struct store *st)
{
	struct tenant_list *tl = malloc(sizeof(*tl));
	struct jw jw;
	char prefix[BUDGET_BASE_MAX + 1];
	int64_t now = budget_now_ns();
	int rc = CLI_ERR;

	if (tl == NULL)
		goto out;
	if (strcmp(a->format, "json") == 0) {
		jw_init(&jw, stdout, 0);
		jw_object_begin(&jw);
		jw_key(&jw, "budgets");
		jw_array_begin(&jw);
	} else {
		printf("%-16s %-10s %-14s %-10s %-8s %-11s %18s %14s %7s %s\n", "BUDGET", "SCOPE",
		       "MATCH", "TENANT", "WINDOW", "START", "USED+RESERVED", "CAP", "USED",
		       "STATE");
	}
	rc = CLI_OK;
	for (size_t i = 0; i < s->n && rc == CLI_OK; i++) {
		struct budget_span span;

		budget_window_of(s->b[i].window, now, &span);
		budget_counter_base(&s->b[i], &span, "", prefix, sizeof prefix);
		tl->prefix = prefix;
		tl->n = 0;
		if (a->tenant == NULL && st != NULL)
			store_counters_scan(st, tenant_collect, tl);
		if (a->tenant != NULL || tl->n == 0) {
			tl->n = 1;
			snprintf(tl->name[0], sizeof tl->name[0], "%s", a->tenant ? a->tenant : "");
		}
		for (size_t t = 0; t < tl->n && rc == CLI_OK; t++)
			rc = status_one(st, strcmp(a->format, "json") == 0 ? &jw : NULL, &s->b[i],
					p, tl->name[t], now);
	}
	if (strcmp(a->format, "json") == 0) {
		jw_array_end(&jw);
		jw_object_end(&jw);
		putchar('\n');
	}
	free(tl);
out:
	return rc;
}

/* ---- check ----------------------------------------------------------------------------------- */

static int budget_check(const struct budget_args *a, const struct budget_set *s,
			const struct pricing *p, struct store *st)
{
	struct budget_call c = { a->agent, a->agent_type, a->tenant, a->model, a->provider };
	struct budget_plan *pl;
	struct budget_estimate e;
	char msg[800];
	uint64_t tokens;
	int64_t now = budget_now_ns();
	int rc = CLI_ERR;

	if (a->agent == NULL || a->model == NULL || a->tokens == NULL)
		return cli_usage_error(BUDGET_CMD, "check needs --agent, --model and --tokens");
	if (cli_parse_u64(a->tokens, &tokens) != 0 || tokens > (uint64_t)1 << 40)
		return cli_usage_error(BUDGET_CMD, "invalid --tokens '%s'", a->tokens);
	pl = malloc(sizeof(*pl));
	if (pl == NULL)
		goto out;
	budget_plan_make(pl, s, p, &c, now);
	/* N tokens priced as input: body bytes 4N give N by the estimate rule, no output. */
	budget_estimate_call(p, a->provider, a->model, tokens * 4, 0, &e);
	for (size_t i = 0; i < pl->n; i++) {
		pl->sb[i].est_tokens = e.tokens;
		pl->sb[i].est_pusd = e.pusd;
	}
	if (st != NULL && store_budget_read(st, pl->sb, pl->n, now) != 0) {
		cli_error("cannot read the budgets' usage from '%s'", a->f.db[0]);
		goto pl_free;
	}
	rc = CLI_OK;
	for (size_t i = 0; i < pl->n && rc == CLI_OK; i++) {
		struct store_budget *sb = &pl->sb[i];

		if ((sb->cap_tokens >= 0 &&
		     sb->used_tokens + sb->reserved_tokens + sb->est_tokens > sb->cap_tokens) ||
		    (sb->cap_pusd >= 0 &&
		     sb->used_pusd + sb->reserved_pusd + sb->est_pusd > sb->cap_pusd)) {
			budget_block_message(msg, sizeof msg, pl->budget[i], sb, &pl->span[i],
					     a->tenant);
			printf("blocked: %s\n", msg);
			rc = CLI_ERR;
		}
	}
	if (rc == CLI_OK)
		printf("allowed: %zu budget%s apply\n", pl->n, pl->n == 1 ? "" : "s");
pl_free:
	free(pl);
out:
	return rc;
}

int cmd_budget(int argc, char **argv)
{
	struct budget_args a = { .format = "table" };
	struct budget_set *s = NULL;
	struct pricing *p = NULL;
	struct store *st = NULL;
	char err[600];
	int ret;

	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	if (strcmp(argv[1], "lint") == 0)
		return budget_lint(argc, argv);
	if (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "check") != 0)
		return cli_usage_error(BUDGET_CMD, "unknown budget command '%s'", argv[1]);
	filter_init(&a.f);
	ret = budget_args_parse(argc, argv, &a);
	if (ret != CLI_OK)
		goto out;
	ret = CLI_ERR;
	if (budget_load(&s, a.budgets, err, sizeof err) != 0) {
		cli_error("%s", err);
		goto out;
	}
	if (pricing_load(&p, err, sizeof err) != 0) {
		cli_error("%s", err);
		goto set_free;
	}
	ret = budget_store(&a, &st);
	if (ret != CLI_OK)
		goto pricing_free;
	if (strcmp(argv[1], "status") == 0)
		ret = budget_status(&a, s, p, st);
	else
		ret = budget_check(&a, s, p, st);
	store_close(st);
pricing_free:
	pricing_free(p);
set_free:
	budget_set_free(s);
out:
	return ret;
}
