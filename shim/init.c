/*
 * init.c - what happens when libtokshim.so is loaded: the thread-local guard, fork handling,
 * and in node the key log option (nodetls.c). Nothing else runs at load time: settings are
 * read and the store is opened only when the first LLM exchange completes, so a process that
 * never calls an LLM is untouched.
 */
#include "shim/shim.h"

#include <pthread.h>

__thread int shim_busy __attribute__((tls_model("initial-exec")));

static void atfork_child(void)
{
	shim_busy = 0;
	shim_conns_atfork_child();
	shim_sink_atfork_child();
	shim_config_atfork_child();
	shim_gate_atfork_child();
	shim_curl_atfork_child();
}

__attribute__((constructor)) static void shim_init(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
	/* Before node's main() reads NODE_OPTIONS: the one thing that cannot wait (nodetls.c). */
	shim_node_init();
}
