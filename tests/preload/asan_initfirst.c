/*
 * asan_initfirst.c - built only in the sanitized build (make SAN=1) as
 * build/san/tests/asan_initfirst.so, which the integration tests preload right after the
 * sanitizer runtimes when they run agents under the sanitized shim (harness.py, TOKSHIM_SAN=1).
 *
 * Why: a preloaded ASan runtime is initialised lazily, by its own constructor or by the first
 * call it intercepts. Constructors of the agent's libraries run before those of preloaded ones,
 * and p11-kit's (pulled in by libcurl through GnuTLS, by curl, by ldap) calls newlocale(),
 * which allocates while holding glibc's locale lock for writing. That first malloc initialises
 * ASan, whose set-up calls dlsym() -> dlerror() -> dcgettext(), which takes the same lock for
 * reading: the lock's reader count goes negative and the agent's next setlocale() waits
 * forever. curl hangs that way with the runtime preloaded, shim or no shim.
 *
 * This object is linked with -z initfirst: the dynamic loader runs its constructor before any
 * other library's, and that constructor initialises ASan while no lock is held, as the
 * preinit_array entry of an instrumented program would.
 */
void __asan_init(void);

__attribute__((constructor)) static void asan_initfirst(void)
{
	__asan_init();
}
