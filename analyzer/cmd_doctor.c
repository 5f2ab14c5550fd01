/*
 * cmd_doctor.c - `tokshim doctor [--db PATH] [-- COMMAND]`: what tokshim will and will not
 * see, before anyone relies on it. With a command: the TLS stacks it uses and what the shim
 * sees of each. Always: the store, the budget and alerts files, a local Ollama server and the proxy
 * variables. The checks are library calls (doctor.h); this file parses options and prints.
 * Exit status 1 when a check found a fault, else 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/cli.h"
#include "analyzer/doctor.h"
#include "analyzer/filter.h"

static const char usage_text[] =
	"usage: tokshim doctor [--db PATH] [--ollama HOST:PORT] [-- COMMAND [ARG]...]\n"
	"\n"
	"Say what tokshim will and will not see: for COMMAND, the TLS libraries its executable\n"
	"and libraries use (OpenSSL, GnuTLS, libcurl, OpenSSL inside node, Go's own TLS) and what\n"
	"to do about each; the store (TOKSHIM_DB), the budget and alerts files (TOKSHIM_BUDGETS,\n"
	"TOKSHIM_ALERTS), the local "
	"Ollama server (OLLAMA_HOST, default 127.0.0.1:11434) and proxy variables. COMMAND is read,\n"
	"never run. Exit status 1 when a check finds a fault.\n"
	"\n"
	"Options:\n"
	"  --db PATH            the store to check (default as for every command)\n"
	"  --ollama HOST:PORT   the Ollama address to check (default $OLLAMA_HOST)\n";

int cmd_doctor(int argc, char **argv)
{
	const char *db = NULL, *ollama = NULL, *cmd = NULL;
	char dbpath[4096];
	struct dbuf out;
	int i, m, faults = 0, ret = CLI_OK;

	dbuf_init(&out, DOCTOR_OUT_MAX);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			cmd = i + 1 < argc ? argv[i + 1] : NULL;
			if (cmd == NULL) {
				ret = cli_usage_error("doctor", "missing the command after '--'");
				goto out;
			}
			break;
		}
		if (cli_is_help(argv[i])) {
			fputs(usage_text, stdout);
			goto out;
		}
		m = cli_opt_value("doctor", argc, argv, &i, "--db", &db);
		if (m == 0)
			m = cli_opt_value("doctor", argc, argv, &i, "--ollama", &ollama);
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
		if (m == 0) {
			ret = cli_unknown_arg("doctor", argv[i]);
			goto out;
		}
	}
	if (db == NULL && filter_default_db(dbpath, sizeof dbpath) == 0)
		db = dbpath;
	if (cmd != NULL)
		faults += doctor_command(cmd, &out) != 0;
	if (db != NULL)
		faults += doctor_store(db, &out) != 0;
	faults += doctor_budgets(getenv("TOKSHIM_BUDGETS"), &out) != 0;
	faults += doctor_alerts(getenv("TOKSHIM_ALERTS"), &out) != 0;
	faults += doctor_ollama(ollama, &out) != 0;
	faults += doctor_proxy(&out) != 0;
	if (out.len > 0)
		fwrite(out.p, 1, out.len, stdout);
	ret = faults ? CLI_ERR : CLI_OK;
out:
	dbuf_release(&out);
	return ret;
}
