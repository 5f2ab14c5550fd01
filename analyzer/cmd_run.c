/*
 * cmd_run.c - `tokshim run [options] -- CMD...`: runs CMD with the shim preloaded and the
 * TOKSHIM_* variables set from the options, so one command line replaces a hand-written
 * LD_PRELOAD. The library is the libtokshim.so next to the tokshim executable, found through
 * /proc/self/exe so that an installed pair and a build folder both work wherever they are.
 * The command replaces tokshim (execvp): its exit status and signals are the caller's to see.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/cli.h"

#define SHIM_NAME "libtokshim.so"

static const char usage_text[] =
	"usage: tokshim run [options] [--] COMMAND [ARG]...\n"
	"\n"
	"Run COMMAND with the tokshim library preloaded, recording its LLM API calls.\n"
	"\n"
	"Options:\n"
	"  --agent NAME         agent name (TOKSHIM_AGENT; default the process name)\n"
	"  --agent-type TYPE    agent type (TOKSHIM_AGENT_TYPE)\n"
	"  --tenant NAME        tenant (TOKSHIM_TENANT)\n"
	"  --session ID         session (TOKSHIM_SESSION; default one per process run)\n"
	"  --db PATH            store to write (TOKSHIM_DB)\n"
	"  --capture MODE       off, meta or full (TOKSHIM_CAPTURE; default full)\n";

/* The path of libtokshim.so in the folder of the running executable. Returns 0 or -1. */
static int shim_path(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash;
	int w, ret = -1;

	if (n <= 0)
		goto out;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		goto out;
	*slash = '\0';
	w = snprintf(out, cap, "%s/%s", exe, SHIM_NAME);
	if (w < 0 || (size_t)w >= cap)
		goto out;
	ret = 0;
out:
	return ret;
}

/* Is lib one of the entries of an LD_PRELOAD list (separated by colons or spaces)? */
static int preload_has(const char *list, const char *lib)
{
	size_t n = strlen(lib), len;
	const char *p = list;
	int found = 0;

	while (*p && !found) {
		len = strcspn(p, ": ");
		found = len == n && strncmp(p, lib, n) == 0;
		p += len;
		p += strspn(p, ": ");
	}
	return found;
}

/* An absolute form of a relative store path: the command may change directory. */
static const char *absolute_db(const char *path, char *buf, size_t cap)
{
	char cwd[PATH_MAX];
	const char *abs = path;
	int w;

	if (path[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
		goto out;
	w = snprintf(buf, cap, "%s/%s", cwd, path);
	if (w > 0 && (size_t)w < cap)
		abs = buf;
out:
	return abs;
}

int cmd_run(int argc, char **argv)
{
	static const struct {
		const char *opt, *env;
	} opts[] = {
		{ "--agent", "TOKSHIM_AGENT" },     { "--agent-type", "TOKSHIM_AGENT_TYPE" },
		{ "--tenant", "TOKSHIM_TENANT" },   { "--session", "TOKSHIM_SESSION" },
		{ "--db", "TOKSHIM_DB" },           { "--capture", "TOKSHIM_CAPTURE" },
	};
	const char *values[sizeof opts / sizeof opts[0]] = { NULL };
	char lib[PATH_MAX], db[PATH_MAX], *preload = NULL;
	const char *old, *v;
	size_t k;
	int i, m = 0, err, ret = CLI_OK;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (argv[i][0] != '-')
			break; /* the command starts here */
		if (cli_is_help(argv[i])) {
			fputs(usage_text, stdout);
			goto out;
		}
		for (k = 0, m = 0; k < sizeof opts / sizeof opts[0] && m == 0; k++)
			m = cli_opt_value("run", argc, argv, &i, opts[k].opt, &values[k]);
		if (m < 0) {
			ret = CLI_USAGE;
			goto out;
		}
		if (m == 0) {
			ret = cli_unknown_arg("run", argv[i]);
			goto out;
		}
	}
	if (i >= argc) {
		ret = cli_usage_error("run", "missing the command to run");
		goto out;
	}
	v = values[5];
	if (v && strcmp(v, "off") != 0 && strcmp(v, "meta") != 0 && strcmp(v, "full") != 0) {
		ret = cli_usage_error("run", "invalid capture mode '%s': expected off, meta or full",
				      v);
		goto out;
	}
	if (values[4] && values[4][0] == '\0') {
		ret = cli_usage_error("run", "empty '--db' path");
		goto out;
	}
	if (shim_path(lib, sizeof lib) != 0) {
		cli_error("cannot find the folder of the tokshim executable: %s", strerror(errno));
		ret = CLI_ERR;
		goto out;
	}
	if (access(lib, R_OK) != 0) {
		cli_error("cannot use '%s': %s (it must sit next to the tokshim executable)", lib,
			  strerror(errno));
		ret = CLI_ERR;
		goto out;
	}
	/* Prepend, so the shim sees the TLS calls before any other preloaded library does; a
	 * `tokshim run` inside another one keeps the list as it is (one copy of the shim). */
	old = getenv("LD_PRELOAD");
	if (old && *old && preload_has(old, lib)) {
		preload = strdup(old);
		if (preload == NULL) {
			cli_error("out of memory");
			ret = CLI_ERR;
			goto out;
		}
	} else if (old && *old) {
		if (asprintf(&preload, "%s:%s", lib, old) < 0) {
			cli_error("out of memory");
			ret = CLI_ERR;
			goto out;
		}
	}
	if (values[4])
		values[4] = absolute_db(values[4], db, sizeof db);
	for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
		if (values[k] && setenv(opts[k].env, values[k], 1) != 0)
			goto setenv_failed;
	if (setenv("LD_PRELOAD", preload ? preload : lib, 1) != 0)
		goto setenv_failed;
	fflush(stdout);
	execvp(argv[i], argv + i);
	err = errno;
	cli_error("cannot run '%s': %s", argv[i], strerror(err));
	/* 127 and 126, as shells and env(1) report a command not found or not executable. */
	ret = err == ENOENT ? 127 : 126;
	goto free_preload;
setenv_failed:
	cli_error("cannot set the environment: %s", strerror(errno));
	ret = CLI_ERR;
free_preload:
	free(preload);
out:
	return ret;
}
