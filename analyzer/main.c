/*
 * main.c - the tokshim command: the table of subcommands and the dispatch to them.
 *
 * Each subcommand is one file (cmd_<name>.c) with one entry here, as git's builtins and
 * tmux's commands are: adding a command is a file and a line. Options before the command
 * name are only --help and --version.
 */
#include <stdio.h>
#include <string.h>

#include "analyzer/cli.h"

static const struct cli_cmd commands[] = {
	{ "run", cmd_run, "run a command with the shim preloaded" },
	{ "records", cmd_records, "list usage records (table or jsonl)" },
	{ "report", cmd_report, "tokens and cost by agent, model and provider" },
	{ "show", cmd_show, "one exchange in full: heads, bodies, the stream reassembled" },
	{ "pricing", cmd_pricing, "the prices in force (list [MODEL]); update them from a list" },
	{ "stats", cmd_stats, "the store's size, records, payloads and drop counters" },
	{ "verify", cmd_verify, "check the store's structure; exit 1 when it is damaged" },
	{ "fallbacks", cmd_fallbacks, "calls that fell back to another model or provider" },
	{ "sessions", cmd_sessions, "the heaviest sessions: agent, start, duration, calls, cost" },
	{ "locality", cmd_locality, "local and cloud side by side; local tokens at a cloud price" },
	{ "anomalies", cmd_anomalies, "usage that looks wrong: spikes, error bursts, retry storms …" },
	{ "budget", cmd_budget, "budgets: lint the file, status of each, check a call" },
	{ "alerts", cmd_alerts, "deliver alert events to Slack, webhooks, email, a log; watch" },
	{ "tail", cmd_tail, "the last records, and with -f new ones as they land" },
	{ "prune", cmd_prune, "delete records older than a date and return the space" },
	{ "export", cmd_export, "records as jsonl, csv or OpenTelemetry (OTLP/HTTP JSON)" },
	{ "dashboard", cmd_dashboard, "one self-contained HTML page of the usage, with filters" },
	{ "doctor", cmd_doctor, "what tokshim will and will not see: TLS stacks, store, Ollama" },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
	size_t i;

	fputs("usage: tokshim <command> [options]\n"
	      "       tokshim --version\n"
	      "\n"
	      "Capture the LLM API calls of unmodified programs and read what they cost.\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\nSee 'tokshim <command> --help' for a command's options.\n", f);
}

static const struct cli_cmd *find_command(const char *name)
{
	const struct cli_cmd *found = NULL;
	size_t i;

	for (i = 0; i < NCOMMANDS && found == NULL; i++)
		if (strcmp(commands[i].name, name) == 0)
			found = &commands[i];
	return found;
}

int main(int argc, char **argv)
{
	const struct cli_cmd *cmd;
	char *help_argv[3];
	int ret;

	if (argc < 2) {
		usage(stderr);
		ret = CLI_USAGE;
	} else if (cli_is_help(argv[1])) {
		usage(stdout);
		ret = CLI_OK;
	} else if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("tokshim %s\n", TOKSHIM_VERSION);
		ret = CLI_OK;
	} else if (strcmp(argv[1], "help") == 0) {
		/* "tokshim help records" is "tokshim records --help". */
		cmd = argc >= 3 ? find_command(argv[2]) : NULL;
		if (argc < 3) {
			usage(stdout);
			ret = CLI_OK;
		} else if (cmd == NULL) {
			ret = cli_usage_error(NULL, "unknown command '%s'", argv[2]);
		} else {
			help_argv[0] = argv[2];
			help_argv[1] = "--help";
			help_argv[2] = NULL;
			ret = cmd->fn(2, help_argv);
		}
	} else if (argv[1][0] == '-') {
		ret = cli_usage_error(NULL, "unknown option '%s'", argv[1]);
	} else {
		cmd = find_command(argv[1]);
		if (cmd == NULL)
			ret = cli_usage_error(NULL, "unknown command '%s'", argv[1]);
		else
			ret = cmd->fn(argc - 1, argv + 1);
	}
	if (fflush(stdout) != 0 && ret == CLI_OK) {
		cli_error("cannot write the output: %m");
		ret = CLI_ERR;
	}
	return ret;
}
