/*
 * config.c - the shim's settings, read once from the environment, and its diagnostics log.
 *
 * Settings are copied at first use: the agent may change its environment later, and the
 * strings a capture_config points to must live as long as the process.
 */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct capture_config config;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;
static char session_buf[64];
static int log_fd = -1;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static const char *env_copy(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	char *copy;

	if (v == NULL || v[0] == '\0')
		return fallback;
	copy = strdup(v);
	return copy ? copy : fallback;
}

/* "1048576", "512K", "4M": bytes; 0 when unreadable. */
static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	if (s == NULL)
		return 0;
	v = strtoull(s, &end, 10);
	if (end == s)
		return 0;
	if (*end == 'k' || *end == 'K')
		v <<= 10;
	else if (*end == 'm' || *end == 'M')
		v <<= 20;
	return (size_t)v;
}

static void config_load(void)
{
	const char *mode = getenv("TOKSHIM_CAPTURE");
	size_t cap = parse_size(getenv("TOKSHIM_CAPTURE_MAX"));
	struct timespec ts;

	config.pid = (int32_t)getpid();
	config.process = program_invocation_short_name ? program_invocation_short_name : "";
	config.agent = env_copy("TOKSHIM_AGENT", config.process);
	config.agent_type = env_copy("TOKSHIM_AGENT_TYPE", "");
	config.tenant = env_copy("TOKSHIM_TENANT", "");
	/* One process run is one session unless the user names it: start time and pid. */
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(session_buf, sizeof(session_buf), "%lld-%d", (long long)ts.tv_sec,
		 (int)config.pid);
	config.session = env_copy("TOKSHIM_SESSION", session_buf);
	config.local_hosts = env_copy("TOKSHIM_LOCAL_HOSTS", NULL);
	config.mode = CAPTURE_FULL;
	if (mode != NULL && strcmp(mode, "off") == 0)
		config.mode = CAPTURE_OFF;
	else if (mode != NULL && strcmp(mode, "meta") == 0)
		config.mode = CAPTURE_META;
	config.body_cap = cap ? cap : CAPTURE_BODY_CAP_DEFAULT;
	config.drop = shim_sink_drop;
}

const struct capture_config *shim_config(void)
{
	pthread_once(&config_once, config_load);
	return &config;
}

static void log_open(void)
{
	const char *path = getenv("TOKSHIM_LOG");

	if (path != NULL && path[0] != '\0')
		log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

void shim_log(const char *fmt, ...)
{
	char line[1024];
	int n, m;
	va_list ap;
	int saved = errno;
	ssize_t w;

	pthread_once(&log_once, log_open);
	if (log_fd < 0)
		goto out;
	n = snprintf(line, sizeof(line), "tokshim[%d]: ", (int)getpid());
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		goto out;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	w = write(log_fd, line, (size_t)n); /* shim_busy is set: passes through our hook */
	(void)w;
out:
	errno = saved;
}

void shim_config_atfork_child(void)
{
	config.pid = (int32_t)getpid();
}
