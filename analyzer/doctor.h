/*
 * doctor.h - what `tokshim doctor` checks, as library calls: which TLS stacks a command uses
 * (and so what the shim will and will not see of it), the store, the budget and alerts files,
 * and a local Ollama server. Each check appends lines of text to a caller's buffer, the same
 * lines the command prints, so tests can assert them exactly.
 */
#ifndef TOKSHIM_DOCTOR_H
#define TOKSHIM_DOCTOR_H

#include <stddef.h>

#include "capture/dbuf.h"

/* Lines of a report are appended here (capped: DOCTOR_OUT_MAX bytes). */
#define DOCTOR_OUT_MAX (64u << 10)

/* What the ELF file at path says of itself. */
struct doctor_elf {
	int elf;            /* an ELF file we could read */
	int dynamic;        /* has a PT_INTERP (run by the dynamic loader: a preload runs in it) */
	int go;             /* has a .go.buildinfo section: a Go program */
	int openssl_export; /* defines and exports SSL_write (a static OpenSSL, as node) */
	int node;           /* exports node_module_register */
};

/* Reads path's ELF headers, sections and dynamic symbols into *out. Returns 0, or -1 when
 * path cannot be read or is not a 64-bit ELF file (out->elf is then 0). */
int doctor_elf_read(const char *path, struct doctor_elf *out);

/*
 * The TLS report of a command: argv0 resolved on PATH (a script's #! interpreter is followed),
 * its ELF file read, its libraries listed by ldd, and one line per TLS stack with what tokshim
 * sees of it and what to do. Returns 0, or -1 when the command cannot be found (a line says so).
 */
int doctor_command(const char *argv0, struct dbuf *out);

/* The store at path: whether it exists, is writable, and its format. 0, or -1 on a problem. */
int doctor_store(const char *path, struct dbuf *out);

/* The budget file (path NULL: TOKSHIM_BUDGETS not set). 0, or -1 when it is not valid. */
int doctor_budgets(const char *path, struct dbuf *out);

/* The alerts file (path NULL: TOKSHIM_ALERTS not set). 0, or -1 when it is not valid. */
int doctor_alerts(const char *path, struct dbuf *out);

/*
 * The local Ollama server at addr ("host:port", "http://host:port"; NULL: $OLLAMA_HOST, else
 * 127.0.0.1:11434): whether it answers, its version (/api/version) and models (/api/tags), and
 * the faults seen often (not running, wrong address, no models pulled). 0, or -1 on a fault.
 */
int doctor_ollama(const char *addr, struct dbuf *out);

/* Proxy variables that would send calls to localhost through a proxy (no NO_PROXY for it).
 * 0, or -1 when one would. */
int doctor_proxy(struct dbuf *out);

#endif
