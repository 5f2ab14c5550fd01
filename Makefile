# tokshim: one plain Makefile.
#   make          builds build/libtokshim.so and build/tokshim
#   make test     installs what is missing, builds, runs every test
#   make demo     installs what is missing, builds, runs agents under the shim, prints the report
#   make SAN=1 …  the same with AddressSanitizer and UndefinedBehaviorSanitizer (build/san/)

CC ?= cc
ifeq ($(CC),cc)
CC := gcc
endif

ifeq ($(FUZZ),1)
# libFuzzer targets (make fuzz): clang, coverage for the fuzzer, ASan and UBSan (build/fuzz/).
BUILD ?= build/fuzz
CC := clang
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=all
OPT := -O1
else ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT := -O1
else
BUILD ?= build
SANFLAGS :=
OPT := -O2
endif

CFLAGS ?= $(OPT) -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden -I. -I$(BUILD)/gen \
	  -D_GNU_SOURCE $(SANFLAGS)
LDFLAGS += $(SANFLAGS)

# Libraries. The shim must never link libssl or libcrypto (see DESIGN.md): what it needs from
# them it resolves at run time from the copy the agent already has.
LIBS_CORE := -llmdb -lcjson -lzstd -lz -lbrotlidec -lnghttp2 -lpthread
LIBS_SHIM := $(LIBS_CORE) -ldl
LIBS_CLI := $(LIBS_CORE) -lcurl -lm

STORE_SRC := $(wildcard store/*.c)
BUDGET_SRC := $(wildcard budget/*.c)
HTTP_SRC := $(wildcard http/*.c)
PROVIDERS_SRC := $(wildcard providers/*.c)
CAPTURE_SRC := $(wildcard capture/*.c)
SHIM_SRC := $(wildcard shim/*.c)
ANALYZER_SRC := $(wildcard analyzer/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# The built-in price table is compiled in, so a binary prices correctly wherever it is copied.
PRICING_GEN := $(BUILD)/gen/pricing_data.c
PRICING_OBJ := $(BUILD)/obj/gen/pricing_data.o

CORE_OBJ := $(call obj,$(STORE_SRC) $(HTTP_SRC) $(PROVIDERS_SRC) $(CAPTURE_SRC) \
	    $(BUDGET_SRC)) $(PRICING_OBJ)
SHIM_OBJ := $(call obj,$(SHIM_SRC))
# The dashboard's page (HTML, CSS and script) is compiled in the same way.
DASHBOARD_GEN := $(BUILD)/gen/dashboard_html.c
DASHBOARD_OBJ := $(BUILD)/obj/gen/dashboard_html.o
ANALYZER_OBJ := $(call obj,$(ANALYZER_SRC)) $(DASHBOARD_OBJ)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(TOOL_SRC))

LIB := $(BUILD)/libtokshim.so
CLI := $(BUILD)/tokshim

.PHONY: all deps test-deps test demo clean unit-tests fuzz fuzz-targets
all: $(LIB) $(CLI)

deps:
	@sh scripts/install-deps.sh

test-deps:
	@sh scripts/install-deps.sh --test

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(PRICING_GEN): providers/pricing.json scripts/embed.sh
	@mkdir -p $(dir $@)
	sh scripts/embed.sh providers/pricing.json pricing_json > $@.tmp && mv $@.tmp $@

$(PRICING_OBJ): $(PRICING_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(DASHBOARD_GEN): analyzer/dashboard.html scripts/embed.sh
	@mkdir -p $(dir $@)
	sh scripts/embed.sh analyzer/dashboard.html dashboard_html > $@.tmp && mv $@.tmp $@

$(DASHBOARD_OBJ): $(DASHBOARD_GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Only the hooks are exported (visibility default on them); everything else stays inside.
$(LIB): $(SHIM_OBJ) $(CORE_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-z,defs -Wl,-z,noexecstack -o $@ $^ $(LIBS_SHIM)

$(CLI): $(ANALYZER_OBJ) $(CORE_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_CLI)

# Unit tests of the CLI's library files link the analyzer objects too (all but main).
CLI_LIB_OBJ := $(filter-out $(BUILD)/obj/analyzer/main.o,$(ANALYZER_OBJ))

$(BUILD)/tests/test_cli_%: tests/unit/test_cli_%.c $(CLI_LIB_OBJ) $(CORE_OBJ) tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CLI_LIB_OBJ) $(CORE_OBJ) $(LIBS_CLI)

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ) tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_OBJ) $(LIBS_CLI)

# The decryptor's test includes its generated vectors (tests/tools/tlsdec_vectors.py).
$(BUILD)/tests/test_tlsdec: tests/unit/tlsdec_vectors.h

$(BUILD)/tests/%: tests/tools/%.c tests/tools/agent_io.h tests/tools/curl_multi.h $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_OBJ) $(LIBS_CLI)

# The multi-interface agent again on Debian's libcurl3-gnutls (libcurl over GnuTLS), linked by
# file name: that package ships no development link (tests/integration/test_gnutls.py).
CURL_GNUTLS := $(firstword $(wildcard /usr/lib/*/libcurl-gnutls.so.4))
GNUTLS_AGENT := $(if $(CURL_GNUTLS),$(BUILD)/tests/curl_multi_agent_gnutls)

$(BUILD)/tests/curl_multi_agent_gnutls: tests/tools/curl_multi_agent.c tests/tools/agent_io.h \
					 tests/tools/curl_multi.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CURL_GNUTLS)

# The agent on GnuTLS's own record calls (send2, recv_seq, recv_packet) links libgnutls.
$(BUILD)/tests/gnutls_agent: tests/tools/gnutls_agent.c tests/tools/agent_io.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lgnutls

# Libraries the integration tests preload ahead of the shim. Sanitized build: asan_initfirst.so
# initialises ASan before any library's constructor runs (tests/preload/asan_initfirst.c).
# Plain build: malloc_fail.so fails the Nth allocation of the shim (test_torture.py).
PRELOAD_SO := $(if $(filter 1,$(SAN)),$(BUILD)/tests/asan_initfirst.so,$(BUILD)/tests/malloc_fail.so)

$(BUILD)/tests/asan_initfirst.so: tests/preload/asan_initfirst.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-z,initfirst -o $@ $<

$(BUILD)/tests/malloc_fail.so: tests/preload/malloc_fail.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -o $@ $<

unit-tests: $(UNIT_BIN) $(TOOL_BIN) $(GNUTLS_AGENT) $(PRELOAD_SO)

# libFuzzer targets, one per fuzz/fuzz_<name>.c; built only with FUZZ=1 (clang).
FUZZ_BIN := $(patsubst fuzz/%.c,$(BUILD)/%,$(wildcard fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 300

$(BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h fuzz/framer.h $(CORE_OBJ)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(CORE_OBJ) $(LIBS_CLI)

fuzz-targets: $(FUZZ_BIN)

# Every target for FUZZ_SECONDS on its corpus (new inputs kept in build/fuzz/corpus/).
fuzz: test-deps
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-targets
	@rc=0; for t in build/fuzz/fuzz_*; do sh fuzz/run.sh "$$t" $(FUZZ_SECONDS) keep || rc=1; done; \
	exit $$rc

# The plain build's tests, then the unit tests and a subset of the integration tests built with
# ASan and UBSan (build/san; the subset and why: tests/run.sh), then every fuzz target for a few
# seconds on its corpus and regression inputs (build/fuzz).
test: test-deps
	@$(MAKE) --no-print-directory all unit-tests
	@$(MAKE) --no-print-directory SAN=1 all unit-tests
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-targets
	@TOKSHIM_SAN_BUILD=build/san TOKSHIM_FUZZ_BUILD=build/fuzz sh tests/run.sh $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh $(BUILD)

# make bench: every speed figure side by side (bench/bench.py, docs/PERFORMANCE.md); never part
# of make test, and no timing is a pass/fail. BENCH_QUICK=1 for a short run.
.PHONY: bench bench-deps bench-bins
BENCH_DIR := $(BUILD)/bench
BENCH_BIN := $(BENCH_DIR)/tls_server $(BENCH_DIR)/llm_client $(BENCH_DIR)/gen_store \
	     $(BENCH_DIR)/store_appends $(BENCH_DIR)/scan_floor

bench-deps:
	@sh scripts/install-deps.sh --bench

# The bench's server and agent link libssl themselves: they stand for the provider and the
# agent, never for the shim.
$(BENCH_DIR)/tls_server $(BENCH_DIR)/llm_client: $(BENCH_DIR)/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lssl -lcrypto -lpthread

$(BENCH_DIR)/gen_store: bench/gen_store.c $(CORE_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_OBJ) -lsqlite3 $(LIBS_CLI)

$(BENCH_DIR)/store_appends $(BENCH_DIR)/scan_floor: $(BENCH_DIR)/%: bench/%.c $(CORE_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_OBJ) $(LIBS_CLI)

bench-bins: $(BENCH_BIN)

bench: deps bench-deps
	@$(MAKE) --no-print-directory all bench-bins
	@sh bench/bench.sh $(BUILD)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
