/*
 * doctor.c - the checks behind `tokshim doctor`; see doctor.h.
 *
 * A command's TLS stacks are read from its files, never by running it: the executable's own
 * ELF headers (is it dynamic at all, a Go program, does it carry and export OpenSSL as node
 * does) and the libraries `ldd` lists for it (libssl, libgnutls, libcurl). ldd is the loader's
 * own answer to "what would this load", search paths and ld.so.cache included, which a
 * re-implementation would only approximate. Python links OpenSSL through its _ssl module,
 * which ldd of the interpreter does not show: that module is found in the interpreter's
 * lib-dynload folder and listed the same way.
 *
 * Ollama is asked with a plain HTTP/1.0 GET on a socket of our own: the question is what
 * answers on that address, not what a proxy in the environment would make of it.
 */
#include "analyzer/doctor.h"

#include <cjson/cJSON.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analyzer/alerts.h"
#include "budget/budget.h"
#include "store/store.h"

#define LDD_OUT_MAX (256u << 10)
#define HTTP_REPLY_MAX (1u << 20)
#define OLLAMA_TIMEOUT_MS 2000
#define MODELS_LISTED 10

static void say(struct dbuf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct dbuf *out, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	dbuf_append(out, line, (size_t)n);
}

/* ---- ELF ---------------------------------------------------------------------------------- */

static int in_file(size_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

/* The dynamic symbols of interest, from .dynsym (defined ones only). */
static void elf_symbols(const unsigned char *p, size_t size, const Elf64_Shdr *sym,
			const Elf64_Shdr *str, struct doctor_elf *out)
{
	const Elf64_Sym *s = (const Elf64_Sym *)(p + sym->sh_offset);
	size_t n = sym->sh_size / sizeof(Elf64_Sym);
	const char *name;

	for (size_t i = 0; i < n; i++) {
		if (s[i].st_shndx == SHN_UNDEF || s[i].st_name >= str->sh_size)
			continue;
		name = (const char *)p + str->sh_offset + s[i].st_name;
		if (memchr(name, '\0', str->sh_size - s[i].st_name) == NULL)
			continue;
		if (strcmp(name, "SSL_write") == 0)
			out->openssl_export = 1;
		else if (strcmp(name, "node_module_register") == 0)
			out->node = 1;
	}
	(void)size;
}

int doctor_elf_read(const char *path, struct doctor_elf *out)
{
	const unsigned char *p = MAP_FAILED;
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	const Elf64_Shdr *sh, *names;
	struct stat st;
	size_t size = 0;
	int fd, ret = -1;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(*eh))
		goto close_fd;
	size = (size_t)st.st_size;
	p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		goto close_fd;
	eh = (const Elf64_Ehdr *)p;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    !in_file(size, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)) ||
	    !in_file(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))
		goto unmap;
	out->elf = 1;
	ph = (const Elf64_Phdr *)(p + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_INTERP)
			out->dynamic = 1;
	sh = (const Elf64_Shdr *)(p + eh->e_shoff);
	if (eh->e_shstrndx >= eh->e_shnum)
		goto done;
	names = &sh[eh->e_shstrndx];
	if (!in_file(size, names->sh_offset, names->sh_size))
		goto done;
	for (int i = 0; i < eh->e_shnum; i++) {
		const char *name = (const char *)p + names->sh_offset + sh[i].sh_name;

		if (sh[i].sh_name >= names->sh_size ||
		    memchr(name, '\0', names->sh_size - sh[i].sh_name) == NULL)
			continue;
		if (strcmp(name, ".go.buildinfo") == 0)
			out->go = 1;
		if (sh[i].sh_type == SHT_DYNSYM && sh[i].sh_link < eh->e_shnum &&
		    in_file(size, sh[i].sh_offset, sh[i].sh_size) &&
		    in_file(size, sh[sh[i].sh_link].sh_offset, sh[sh[i].sh_link].sh_size))
			elf_symbols(p, size, &sh[i], &sh[sh[i].sh_link], out);
	}
done:
	ret = 0;
unmap:
	munmap((void *)p, size);
close_fd:
	close(fd);
out:
	return ret;
}

/* ---- a command's libraries ---------------------------------------------------------------- */

/* Runs `ldd path` and keeps its standard output in b. 0 or -1. */
static int ldd_run(const char *path, struct dbuf *b)
{
	char buf[4096];
	int pfd[2], status, ret = -1;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) != 0)
		goto out;
	pid = fork();
	if (pid < 0)
		goto close_pipe;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(pfd[1], 1);
		if (devnull >= 0)
			dup2(devnull, 2);
		execl("/usr/bin/ldd", "ldd", path, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	pfd[1] = -1;
	for (;;) {
		n = read(pfd[0], buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		dbuf_append(b, buf, (size_t)n);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	ret = 0;
close_pipe:
	close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
out:
	return ret;
}

/* The path ldd resolved for a library whose file name starts with prefix, into buf. */
static int ldd_find(const struct dbuf *b, const char *prefix, char *buf, size_t cap)
{
	const char *p = b->p, *end = b->p + b->len, *eol, *name, *arrow, *path;
	size_t plen = strlen(prefix), n;

	for (; p != NULL && p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		name = p + strspn(p, " \t");
		if ((size_t)(eol - name) < plen || strncmp(name, prefix, plen) != 0)
			continue;
		arrow = memmem(name, (size_t)(eol - name), "=> ", 3);
		path = arrow ? arrow + 3 : name;
		n = strcspn(path, " (\n");
		if (path + n > eol || n == 0 || n >= cap)
			continue;
		memcpy(buf, path, n);
		buf[n] = '\0';
		return 1;
	}
	return 0;
}

/* Resolves argv0 as execvp would (PATH), then to its real file. 0 or -1. */
static int command_path(const char *argv0, char *out)
{
	char cand[PATH_MAX];
	const char *path = getenv("PATH"), *p;
	size_t n;
	int w;

	if (strchr(argv0, '/') != NULL)
		return realpath(argv0, out) != NULL ? 0 : -1;
	for (p = path ? path : "/usr/bin:/bin"; *p; p += n + (p[n] == ':')) {
		n = strcspn(p, ":");
		w = snprintf(cand, sizeof cand, "%.*s/%s", (int)n, n ? p : ".", argv0);
		if (w > 0 && (size_t)w < sizeof cand && access(cand, X_OK) == 0 &&
		    realpath(cand, out) != NULL)
			return 0;
		if (p[n] == '\0')
			break;
	}
	return -1;
}

/* A script's interpreter (#!/usr/bin/env NAME resolved on PATH) into out. 1 when path is a
 * script, 0 when not, -1 when its interpreter cannot be found. */
static int script_interpreter(const char *path, char *out)
{
	char line[256], *p, *arg;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, line, sizeof line - 1);
	close(fd);
	if (n < 3 || line[0] != '#' || line[1] != '!')
		return 0;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	p = line + 2 + strspn(line + 2, " \t");
	arg = p + strcspn(p, " \t");
	if (*arg) {
		*arg++ = '\0';
		arg += strspn(arg, " \t");
		arg[strcspn(arg, " \t")] = '\0';
	}
	if (strcmp(p, "/usr/bin/env") == 0 || strcmp(p, "/bin/env") == 0)
		return *arg && command_path(arg, out) == 0 ? 1 : -1;
	return realpath(p, out) != NULL ? 1 : -1;
}

/* Python's _ssl module beside this interpreter (lib-dynload), into out. 1 found, 0 not. */
static int python_ssl_module(const char *exe, char *out, size_t cap)
{
	char pattern[PATH_MAX], dir[PATH_MAX];
	const char *slash = strrchr(exe, '/');
	glob_t g;
	int found = 0, w;

	if (slash == NULL)
		return 0;
	w = snprintf(dir, sizeof dir, "%.*s", (int)(slash - exe), exe);
	if (w < 0 || (size_t)w >= sizeof dir)
		return 0;
	/* /usr/bin/python3 → /usr/lib/python3.N; a pyenv build: <prefix>/lib/python3.N */
	w = snprintf(pattern, sizeof pattern, "%s/../lib/python3*/lib-dynload/_ssl*.so", dir);
	if (w < 0 || (size_t)w >= sizeof pattern)
		return 0;
	if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0 &&
	    realpath(g.gl_pathv[g.gl_pathc - 1], pattern) != NULL && strlen(pattern) < cap) {
		memcpy(out, pattern, strlen(pattern) + 1);
		found = 1;
	}
	globfree(&g);
	return found;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* One line per TLS library ldd lists in b; *n counts them. */
static void report_libraries(const struct dbuf *b, const char *via, struct dbuf *out, int *n)
{
	char lib[PATH_MAX];

	if (ldd_find(b, "libssl.so", lib, sizeof lib)) {
		say(out, "  openssl: %s%s: seen (SSL_read/SSL_write hooks)", via, lib);
		(*n)++;
	}
	if (ldd_find(b, "libgnutls.so", lib, sizeof lib)) {
		say(out, "  gnutls: %s%s: seen (gnutls_record_send/recv hooks)", via, lib);
		(*n)++;
	}
	if (ldd_find(b, "libcurl.so", lib, sizeof lib) ||
	    ldd_find(b, "libcurl-gnutls.so", lib, sizeof lib)) {
		say(out, "  libcurl: %s%s: seen (libcurl hooks, HTTP/2 included)", via, lib);
		(*n)++;
	}
	if (ldd_find(b, "libnss3.so", lib, sizeof lib)) {
		say(out, "  nss: %s%s: not seen: tokshim has no NSS hooks", via, lib);
		(*n)++;
	}
}

int doctor_command(const char *argv0, struct dbuf *out)
{
	char exe[PATH_MAX], interp[PATH_MAX], mod[PATH_MAX];
	struct doctor_elf e;
	struct dbuf libs, modlibs;
	int n = 0, s, ret = -1;

	dbuf_init(&libs, LDD_OUT_MAX);
	dbuf_init(&modlibs, LDD_OUT_MAX);
	if (command_path(argv0, exe) != 0) {
		say(out, "command '%s': not found", argv0);
		goto out;
	}
	s = script_interpreter(exe, interp);
	if (s < 0) {
		say(out, "command '%s': a script whose interpreter cannot be found", exe);
		goto out;
	}
	if (s > 0) {
		say(out, "command '%s': a script run by '%s'", exe, interp);
		memcpy(exe, interp, strlen(interp) + 1);
	}
	if (doctor_elf_read(exe, &e) != 0) {
		say(out, "command '%s': not an executable tokshim can read", exe);
		goto out;
	}
	say(out, "command '%s': %s executable%s", exe, e.dynamic ? "dynamic" : "static",
	    e.go ? " (Go)" : "");
	if (e.go) {
		say(out, "  go: Go's own crypto/tls and system calls: not seen (no preload reaches "
			 "them); send its calls through a local proxy that tokshim runs under");
		n++;
	} else if (!e.dynamic) {
		say(out, "  static: no preload runs in a static executable: nothing seen");
		n++;
	}
	if (e.node && e.openssl_export) {
		say(out, "  openssl: static, inside node: seen (TLS key log through NODE_OPTIONS, set "
			 "by the shim; TOKSHIM_NODE_KEYLOG=off turns it off)");
		n++;
	} else if (e.openssl_export && !e.go) {
		say(out, "  openssl: static, inside the executable: not seen (its SSL calls never "
			 "reach the preload)");
		n++;
	}
	if (e.dynamic && !e.go) {
		ldd_run(exe, &libs);
		report_libraries(&libs, "", out, &n);
		if (strncmp(base_name(exe), "python", 6) == 0 &&
		    python_ssl_module(exe, mod, sizeof mod)) {
			int k = snprintf(interp, sizeof interp, "%s → ", mod);

			ldd_run(mod, &modlibs);
			if (k > 0 && (size_t)k < sizeof interp)
				report_libraries(&modlibs, interp, out, &n);
		}
	}
	if (n == 0)
		say(out, "  no TLS library: plaintext HTTP (local model servers) is seen, "
			 "nothing over TLS");
	ret = 0;
out:
	dbuf_release(&libs);
	dbuf_release(&modlibs);
	return ret;
}

/* ---- store and budgets -------------------------------------------------------------------- */

/* The nearest folder of path that exists (where the store's folders would be made). */
static void nearest_dir(const char *path, char *dir, size_t cap)
{
	char *s;

	snprintf(dir, cap, "%s", path);
	for (;;) {
		s = strrchr(dir, '/');
		if (s == NULL) {
			snprintf(dir, cap, ".");
			return;
		}
		if (s == dir) {
			dir[1] = '\0';
			return;
		}
		*s = '\0';
		if (access(dir, F_OK) == 0)
			return;
	}
}

int doctor_store(const char *path, struct dbuf *out)
{
	char dir[PATH_MAX];
	struct store *st = NULL;
	struct store_info info;
	int err, ret = -1;

	if (access(path, F_OK) != 0) {
		nearest_dir(path, dir, sizeof dir);
		if (access(dir, W_OK) != 0) {
			say(out, "store '%s': cannot be created: '%s' is not writable", path, dir);
			goto out;
		}
		say(out, "store '%s': not there yet: made by the first record", path);
		ret = 0;
		goto out;
	}
	err = store_open(&st, path, STORE_READONLY, 0);
	if (err == 0)
		err = store_info(st, &info);
	if (err != 0) {
		say(out, "store '%s': cannot be read: %s", path, store_strerror(err));
		goto close;
	}
	if (access(path, W_OK) != 0) {
		say(out, "store '%s': format %u, %llu records, not writable: %s", path, info.format,
		    (unsigned long long)info.records, strerror(errno));
		goto close;
	}
	say(out, "store '%s': format %u (%s), %llu records, writable", path, info.format,
	    info.format == STORE_FORMAT ? "current" : "older: the next writer updates it",
	    (unsigned long long)info.records);
	ret = 0;
close:
	store_close(st);
out:
	return ret;
}

int doctor_budgets(const char *path, struct dbuf *out)
{
	struct budget_set *set = NULL;
	char err[512];
	int ret = 0;

	if (path == NULL || path[0] == '\0') {
		say(out, "budgets: TOKSHIM_BUDGETS not set: no budget is enforced");
		return 0;
	}
	if (budget_load(&set, path, err, sizeof err) != 0) {
		say(out, "budgets: %s", err);
		ret = -1;
	} else {
		say(out, "budgets '%s': %zu budget%s, valid", path, set->n, set->n == 1 ? "" : "s");
	}
	budget_set_free(set);
	return ret;
}

int doctor_alerts(const char *path, struct dbuf *out)
{
	struct alerts_config c;
	char err[512];
	int ret = 0;

	if (path == NULL || path[0] == '\0') {
		say(out, "alerts: TOKSHIM_ALERTS not set: no alert is delivered");
		return 0;
	}
	memset(&c, 0, sizeof c);
	if (alerts_config_load(&c, path, err, sizeof err) != 0) {
		say(out, "alerts: %s", err);
		ret = -1;
	} else {
		say(out, "alerts '%s': %zu channel%s, valid", path, c.nch, c.nch == 1 ? "" : "s");
	}
	alerts_config_release(&c);
	return ret;
}

/* ---- Ollama and proxies ------------------------------------------------------------------- */

/* host and port of "host:port", "http://host:port/", "[::1]:port", "host". 0 or -1. */
static int split_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *p = addr, *colon, *end;
	size_t hl;

	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	else if (strncmp(p, "https://", 8) == 0)
		return -1;
	end = p + strcspn(p, "/");
	if (*p == '[') {
		colon = memchr(p, ']', (size_t)(end - p));
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - p - 1);
		p++;
		colon++;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		hl = (size_t)((colon ? colon : end) - p);
	}
	if (hl == 0 || hl >= hcap)
		return -1;
	memcpy(host, p, hl);
	host[hl] = '\0';
	if (colon != NULL && *colon == ':' && (size_t)(end - colon - 1) < pcap &&
	    end - colon > 1) {
		memcpy(port, colon + 1, (size_t)(end - colon - 1));
		port[end - colon - 1] = '\0';
	} else {
		snprintf(port, pcap, "11434");
	}
	/* Ollama's own OLLAMA_HOST=0.0.0.0 means "listen everywhere": ask it on loopback. */
	if (strcmp(host, "0.0.0.0") == 0)
		snprintf(host, hcap, "127.0.0.1");
	return 0;
}

/* GET target from host:port; the reply's status and body into *status and body. 0, or a
 * negative errno-style code when nothing answered (-ECONNREFUSED, -ETIMEDOUT …). */
static int http_get(const char *host, const char *port, const char *target, int *status,
		    struct dbuf *body)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct dbuf reply;
	struct pollfd pfd;
	char req[512], buf[4096];
	const char *sep;
	ssize_t n;
	int fd = -1, ret = -EHOSTUNREACH, r, len;

	dbuf_init(&reply, HTTP_REPLY_MAX);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
		goto out;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto free_ai;
	r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (r != 0 && errno != EINPROGRESS) {
		ret = -errno;
		goto close_fd;
	}
	if (r != 0 && poll(&pfd, 1, OLLAMA_TIMEOUT_MS) <= 0) {
		ret = -ETIMEDOUT;
		goto close_fd;
	}
	{
		int soerr = 0;
		socklen_t sl = sizeof soerr;

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
			ret = -(soerr ? soerr : errno);
			goto close_fd;
		}
	}
	len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s:%s\r\nAccept: "
		       "application/json\r\n\r\n", target, host, port);
	if (len < 0 || (size_t)len >= sizeof req || send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
		ret = -EIO;
		goto close_fd;
	}
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, OLLAMA_TIMEOUT_MS) <= 0) {
			ret = -ETIMEDOUT;
			goto close_fd;
		}
		n = recv(fd, buf, sizeof buf, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		dbuf_append(&reply, buf, (size_t)n);
	}
	if (reply.len < 12 || strncmp(reply.p, "HTTP/1.", 7) != 0) {
		ret = -EPROTO;
		goto close_fd;
	}
	*status = atoi(reply.p + 9);
	sep = strstr(reply.p, "\r\n\r\n");
	if (sep != NULL)
		dbuf_append(body, sep + 4, reply.len - (size_t)(sep + 4 - reply.p));
	ret = 0;
close_fd:
	close(fd);
free_ai:
	freeaddrinfo(ai);
out:
	dbuf_release(&reply);
	return ret;
}

/* The models of an /api/tags body as "a, b, c" (the first MODELS_LISTED) into names. */
static int ollama_models(const struct dbuf *body, char *names, size_t cap)
{
	cJSON *doc = cJSON_ParseWithLength(body->p ? body->p : "", body->len);
	cJSON *models = cJSON_GetObjectItemCaseSensitive(doc, "models"), *m, *name;
	size_t o = 0;
	int n = -1;

	names[0] = '\0';
	if (!cJSON_IsArray(models))
		goto out;
	n = 0;
	cJSON_ArrayForEach(m, models) {
		name = cJSON_GetObjectItemCaseSensitive(m, "name");
		if (!cJSON_IsString(name))
			continue;
		if (n < MODELS_LISTED && o + strlen(name->valuestring) + 3 < cap)
			o += (size_t)snprintf(names + o, cap - o, "%s%s", n ? ", " : "",
					      name->valuestring);
		n++;
	}
out:
	cJSON_Delete(doc);
	return n;
}

int doctor_ollama(const char *addr, struct dbuf *out)
{
	const char *env = getenv("OLLAMA_HOST");
	const char *where = addr ? addr : env && *env ? env : "127.0.0.1:11434";
	char host[256], port[16], version[64] = "", names[512];
	struct dbuf body;
	cJSON *doc;
	int status = 0, r, models, ret = -1;

	dbuf_init(&body, HTTP_REPLY_MAX);
	if (split_addr(where, host, sizeof host, port, sizeof port) != 0) {
		say(out, "ollama: cannot read the address '%s' (want host:port)", where);
		goto out;
	}
	r = http_get(host, port, "/api/version", &status, &body);
	if (r == -ECONNREFUSED) {
		say(out, "ollama %s:%s: not running (connection refused)%s", host, port,
		    addr == NULL && env && *env ? "; is OLLAMA_HOST right?" : "");
		/* A fault only where an Ollama was asked for by name: many hosts run none. */
		ret = addr != NULL || (env && *env) ? -1 : 0;
		goto out;
	}
	if (r != 0) {
		say(out, "ollama %s:%s: no answer (%s): wrong address?", host, port,
		    r == -EPROTO ? "not HTTP" : strerror(-r));
		goto out;
	}
	doc = cJSON_ParseWithLength(body.p ? body.p : "", body.len);
	if (status == 200 && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "version")))
		snprintf(version, sizeof version, "%s",
			 cJSON_GetObjectItemCaseSensitive(doc, "version")->valuestring);
	cJSON_Delete(doc);
	if (version[0] == '\0') {
		say(out, "ollama %s:%s: something answers that is not Ollama (HTTP %d on "
			 "/api/version): wrong address?", host, port, status);
		goto out;
	}
	dbuf_release(&body);
	r = http_get(host, port, "/api/tags", &status, &body);
	models = r == 0 && status == 200 ? ollama_models(&body, names, sizeof names) : -1;
	if (models < 0) {
		say(out, "ollama %s:%s: version %s, but /api/tags did not answer with models",
		    host, port, version);
		goto out;
	}
	if (models == 0) {
		say(out, "ollama %s:%s: version %s, no models pulled (ollama pull MODEL)", host, port,
		    version);
		goto out;
	}
	say(out, "ollama %s:%s: version %s, %d model%s: %s%s", host, port, version, models,
	    models == 1 ? "" : "s", names, models > MODELS_LISTED ? ", …" : "");
	ret = 0;
out:
	dbuf_release(&body);
	return ret;
}

/* Does a NO_PROXY list cover localhost and 127.0.0.1 ("*" covers everything)? */
static int no_proxy_covers_local(const char *list)
{
	int localhost = 0, loopback = 0;
	const char *p = list;
	size_t n;

	while (p && *p) {
		p += strspn(p, ", ");
		n = strcspn(p, ", ");
		if (n == 1 && *p == '*')
			return 1;
		if ((n == 9 && strncmp(p, "localhost", 9) == 0) ||
		    (n == 10 && strncmp(p, ".localhost", 10) == 0))
			localhost = 1;
		if ((n == 9 && strncmp(p, "127.0.0.1", 9) == 0) ||
		    (n == 11 && strncmp(p, "127.0.0.0/8", 11) == 0))
			loopback = 1;
		p += n;
	}
	return localhost && loopback;
}

int doctor_proxy(struct dbuf *out)
{
	static const char *const vars[] = { "HTTP_PROXY", "http_proxy", "HTTPS_PROXY",
					    "https_proxy", "ALL_PROXY", "all_proxy" };
	const char *no = getenv("NO_PROXY"), *v;
	int ret = 0;

	if (no == NULL || *no == '\0')
		no = getenv("no_proxy");
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		v = getenv(vars[i]);
		if (v == NULL || *v == '\0' || no_proxy_covers_local(no))
			continue;
		say(out, "proxy: %s is set and NO_PROXY does not name localhost and 127.0.0.1: "
			 "calls to local model servers may go through the proxy (set "
			 "NO_PROXY=localhost,127.0.0.1)", vars[i]);
		ret = -1;
	}
	if (ret == 0)
		say(out, "proxy: no proxy variable captures localhost");
	return ret;
}
