# SPDX-License-Identifier: GPL-2.0
# pktlens: `make` builds everything (and only builds), `make test` (with
# `make test-kernels`), `make demo`, `make bench`, `make fuzz` (these first
# install missing Debian packages: `make deps`, scripts/deps.sh),
# `make install` (PREFIX, DESTDIR), `make clean`.

# `make test SAN=1`: user-side code with ASan+UBSan, built apart in .output-san
OUT      := $(if $(filter 1,$(SAN)),.output-san,.output)
BIN      := $(if $(filter 1,$(SAN)),$(OUT)/pktlens,pktlens)
PREFIX   ?= /usr/local
CLANG    ?= clang
BPFTOOL  ?= bpftool
CC       ?= cc
PYTHON   ?= /usr/bin/python3
ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

PKGS     := libbpf libxdp libpcap libnl-3.0 libnl-route-3.0 libmicrohttpd ncursesw yaml-0.1 libsystemd
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wformat=2 -Wshadow \
	    -Iinclude -I$(OUT) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lelf -lz
BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	    -Iinclude -I$(OUT) $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH))

# `make V=1` shows the commands
ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = printf '  %-8s %s\n' $(1) $(2);
endif

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
# what the tests run (tests/lab.py)
TEST_ENV := PKTLENS_BIN=$(abspath $(BIN)) PKTLENS_OUT=$(abspath $(OUT)) PKTLENS_SAN=$(SAN) \
	    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1

# Kernel-side objects: name.bpf.c -> $(OUT)/name.bpf.o -> $(OUT)/name.skel.h
BPF_SRCS := xdp/pktlens_xdp.bpf.c tc/pktlens_tc.bpf.c xdp/pktlens_cap_xdp.bpf.c tc/pktlens_cap_tc.bpf.c probes/pktlens_tcp.bpf.c probes/pktlens_drops.bpf.c
BENCH_BPF_SRCS := bench/pass.bpf.c bench/cycle.bpf.c bench/flowmon.bpf.c bench/filter_ref.bpf.c bench/dropper.bpf.c \
		  bench/forward.bpf.c
# pktlens_xdp_notail: the XDP object without tail calls (-DPL_XDP_NO_TAIL), from the same source
BPF_OBJS := $(patsubst %.bpf.c,$(OUT)/%.bpf.o,$(notdir $(BPF_SRCS) $(BENCH_BPF_SRCS))) \
	    $(OUT)/pktlens_xdp_notail.bpf.o
SKELS    := $(BPF_OBJS:.bpf.o=.skel.h)

LIB_SRCS := $(filter-out %.bpf.c,$(wildcard loader/*.c export/*.c pcap/*.c probes/*.c)) cli/util.c
CLI_SRCS := $(filter-out cli/util.c,$(wildcard cli/*.c)) $(wildcard service/*.c)
LIB_OBJS := $(patsubst %.c,$(OUT)/%.o,$(LIB_SRCS))
CLI_OBJS := $(patsubst %.c,$(OUT)/%.o,$(CLI_SRCS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
TEST_TOOLS := $(OUT)/tests/bpf_run $(OUT)/tests/fill_flows $(OUT)/tests/loadcheck \
	      $(OUT)/tests/pace_send
BENCH_BINS := $(OUT)/bench/xdp_bench $(OUT)/bench/filter_bench $(OUT)/bench/tcp_bench

.PHONY: all deps test test-build test-kernels unit pytest demo bench fuzz install clean
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BIN)

deps:
	@./scripts/deps.sh

$(OUT) $(OUT)/loader $(OUT)/export $(OUT)/cli $(OUT)/tests $(OUT)/bench $(OUT)/pcap $(OUT)/probes:
	@mkdir -p $@

$(OUT)/vmlinux.h: | $(OUT)
	$(Q)$(call msg,VMLINUX,$@)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# Header dependencies come from the compilers (-MMD -MP): each object's .d
# file beside it lists the headers it includes, generated skeletons too.
DEPFLAGS = -MMD -MP -MF $(@:.o=.d)

$(OUT)/%.bpf.o: xdp/%.bpf.c | $(OUT)
	$(Q)$(call msg,BPF,$@)$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@
$(OUT)/pktlens_xdp_notail.bpf.o: xdp/pktlens_xdp.bpf.c | $(OUT)
	$(Q)$(call msg,BPF,$@)$(CLANG) $(BPF_CFLAGS) -DPL_XDP_NO_TAIL $(DEPFLAGS) -c $< -o $@
$(OUT)/%.bpf.o: tc/%.bpf.c | $(OUT)
	$(Q)$(call msg,BPF,$@)$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@
$(OUT)/%.bpf.o: probes/%.bpf.c $(OUT)/vmlinux.h | $(OUT)
	$(Q)$(call msg,BPF,$@)$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@
$(OUT)/%.bpf.o: bench/%.bpf.c | $(OUT)
	$(Q)$(call msg,BPF,$@)$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(Q)$(call msg,SKEL,$@)$(BPFTOOL) gen skeleton $< name $(subst .skel.h,,$(notdir $@)) > $@.tmp && mv $@.tmp $@

# The skeletons must exist before the first compile; afterwards the .d files
# say which object includes which.
$(OUT)/%.o: %.c | $(SKELS) $(OUT)/loader $(OUT)/export $(OUT)/cli $(OUT)/tests $(OUT)/bench $(OUT)/probes
	@mkdir -p $(dir $@)
	$(Q)$(call msg,CC,$@)$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BIN): $(CLI_OBJS) $(LIB_OBJS)
	$(Q)$(call msg,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(SKELS) $(OUT)/tests
	$(Q)$(call msg,LINK,$@)$(CC) $(CFLAGS) -MMD -MP -MF $@.d -MT $@ $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(OUT)/tests/bpf_run: $(OUT)/tests/bpf_run.o $(LIB_OBJS)
	$(Q)$(call msg,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/tests/loadcheck: $(OUT)/tests/loadcheck.o $(LIB_OBJS)
	$(Q)$(call msg,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/tests/fill_flows: $(OUT)/tests/fill_flows.o
	$(Q)$(call msg,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/tests/pace_send: $(OUT)/tests/pace_send.o
	$(Q)$(call msg,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^

$(OUT)/bench/%: $(OUT)/bench/%.o $(LIB_OBJS)
	$(Q)$(call msg,LINK,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lm

# libFuzzer targets, tests/fuzz/fuzz_<target>.c -> $(OUT)/fuzz_<target>:
#   translate  random cBPF through the translator and the verifier against libpcap
#   policy     random `policy load` files through the rule parser, round trip via list
#   export     random attachments and flow tables through the Prometheus and IPFIX writers
#   xdp        random frames through the XDP and tc programs (BPF_PROG_TEST_RUN, root)
#   config     random service configs through the loader apply and the daemon use
# `make fuzz` runs each for FUZZ_TIME seconds (`make fuzz FUZZ_TIME=600`,
# `make fuzz FUZZ_TARGETS=policy`), `make test` for TEST_FUZZ_TIME. Seeds in
# tests/fuzz/corpus/<target>/ are copied to $(OUT)/fuzz-corpus/<target>, where
# libFuzzer grows the corpus; tests/fuzz/crashes/<target>-* (fixed findings)
# are replayed first. A finding fails the make, its input in $(OUT)/<target>-crash-*.
FUZZ_TIME ?= 300
TEST_FUZZ_TIME ?= 10
FUZZ_TARGETS ?= translate policy export xdp config
FUZZ_BINS := $(patsubst %,$(OUT)/fuzz_%,$(FUZZ_TARGETS))
# undefined behaviour stops the run like a crash does
FUZZ_SAN := -g -O1 -std=c11 -D_GNU_SOURCE -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_MAX_LEN_translate := 2048
FUZZ_MAX_LEN_policy := 4096
FUZZ_MAX_LEN_export := 4096
FUZZ_MAX_LEN_xdp := 4096
FUZZ_MAX_LEN_config := 4096
# what the summary line counts
FUZZ_UNIT_translate := programs
FUZZ_UNIT_policy := rule files
FUZZ_UNIT_export := flow tables
FUZZ_UNIT_xdp := frames
FUZZ_UNIT_config := configs

# the translator alone: pcap/ without the capture writer
XLATE_SRCS := $(filter-out pcap/dump.c,$(wildcard pcap/*.c))
$(OUT)/fuzz_translate: tests/fuzz/fuzz_translate.c $(XLATE_SRCS) $(wildcard pcap/*.h) | $(OUT)
	$(Q)$(call msg,FUZZ,$@)$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
		-Iinclude tests/fuzz/fuzz_translate.c $(XLATE_SRCS) \
		$(shell pkg-config --libs libbpf libpcap 2>/dev/null) -lelf -lz -o $@

# The other targets link the library sources built by clang with coverage and
# sanitizers (and the policy rule grammar, rule
# files, triggers and the service config), from an archive so each takes only
# what it calls.
FUZZ_LIB_OBJS := $(patsubst %.c,$(OUT)/fuzz/%.o,$(LIB_SRCS) cli/policy_rule.c cli/policy_file.c \
		 cli/trigger.c service/config.c)
$(OUT)/fuzz/%.o: %.c | $(SKELS)
	@mkdir -p $(dir $@)
	$(Q)$(call msg,FUZZCC,$@)$(CLANG) $(FUZZ_SAN) -fsanitize=fuzzer-no-link,address,undefined \
		-Wall -Wextra -Iinclude -I$(OUT) $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
		$(DEPFLAGS) -c $< -o $@
$(OUT)/fuzz/libpktlens.a: $(FUZZ_LIB_OBJS)
	$(Q)$(call msg,AR,$@)rm -f $@ && ar rcs $@ $^
$(OUT)/fuzz_%: tests/fuzz/fuzz_%.c $(OUT)/fuzz/libpktlens.a | $(SKELS)
	$(Q)$(call msg,FUZZ,$@)$(CLANG) $(FUZZ_SAN) -fsanitize=fuzzer,address,undefined \
		-Wall -Wextra -Werror -Iinclude -I$(OUT) -MMD -MP -MF $@.d -MT $@ $< $(OUT)/fuzz/libpktlens.a \
		-o $@ $(LDLIBS)

# fuzz-<target>: replay the fixed findings, then fuzz for FUZZ_TIME seconds
FUZZ_RUNS := $(addprefix fuzz-,$(FUZZ_TARGETS))
.PHONY: $(FUZZ_RUNS)
$(FUZZ_RUNS): fuzz-%: $(OUT)/fuzz_%
	@mkdir -p $(OUT)/fuzz-corpus/$* && : > $(OUT)/fuzz-$*.log
	@if [ -d tests/fuzz/corpus/$* ]; then cp -n tests/fuzz/corpus/$*/* $(OUT)/fuzz-corpus/$*/ 2>/dev/null || true; fi
	@set -- $(wildcard tests/fuzz/crashes/$*-*); if [ $$# -gt 0 ]; then \
		if ! $(OUT)/fuzz_$* "$$@" > $(OUT)/fuzz-$*.log 2>&1; then tail -40 $(OUT)/fuzz-$*.log; \
			echo "fuzz_$*: REGRESSION: a fixed finding in tests/fuzz/crashes/ fails again, log $(OUT)/fuzz-$*.log"; exit 1; fi; \
	fi
	@if $(OUT)/fuzz_$* -max_len=$(FUZZ_MAX_LEN_$*) -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
		-artifact_prefix=$(OUT)/$*- $(OUT)/fuzz-corpus/$* >> $(OUT)/fuzz-$*.log 2>&1; then \
		echo "fuzz_$*: $$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\).*/\1 $(FUZZ_UNIT_$*) in \2 s/p' $(OUT)/fuzz-$*.log), no finding$(if $(wildcard tests/fuzz/crashes/$*-*),; replayed tests/fuzz/crashes/$*-* ($(words $(wildcard tests/fuzz/crashes/$*-*))))"; \
	else tail -40 $(OUT)/fuzz-$*.log; echo "fuzz_$*: FINDING (input saved in $(OUT)/$*-crash-*), log $(OUT)/fuzz-$*.log"; exit 1; fi

# FUZZ_JOBS targets at a time (one CPU each; default: as many as there are CPUs)
FUZZ_JOBS ?= $(shell nproc)
fuzz: deps
	@$(MAKE) -s --no-print-directory -j$(FUZZ_JOBS) $(FUZZ_RUNS)

unit: deps $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do $$t; done

pytest: deps $(BIN) $(TEST_TOOLS)
	$(TEST_ENV) $(PYTHON) -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS)

# `make test` ends with the kernel matrix in VMs (tests/kernels ran on this
# kernel with the rest): VM_KERNELS= skips it. The SAN=1 pass leaves it out,
# and the fuzzers too: they are ASan+UBSan builds either way, run once.
VM_KERNELS ?= 6.1 6.12 5.10
TEST_BUILD := $(BIN) $(UNIT_BINS) $(TEST_TOOLS) $(if $(filter 1,$(SAN)),,$(FUZZ_BINS))
# The fuzzers run beside pytest at the lowest CPU priority (nice 19, SCHED_IDLE:
# they take what the tests leave idle, which is most of a CPU) and report after it.
# (through FUZZ_MAKE, not $(MAKE): `make -n test` then shows the line and runs nothing)
TEST_FUZZ_LOG := $(OUT)/fuzz-test.log
FUZZ_MAKE = $(MAKE)
test: deps $(TEST_BUILD)
	@set -e; for t in $(UNIT_BINS); do $$t; done
ifeq ($(SAN),1)
	$(TEST_ENV) $(PYTHON) -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS)
else
	@chrt --idle 0 nice -n 19 $(FUZZ_MAKE) -s --no-print-directory fuzz FUZZ_TIME=$(TEST_FUZZ_TIME) \
		> $(TEST_FUZZ_LOG) 2>&1 & fuzz=$$!; \
	echo '$(TEST_ENV) $(PYTHON) -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS)'; \
	$(TEST_ENV) $(PYTHON) -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS); tests=$$?; \
	wait $$fuzz; fuzzed=$$?; cat $(TEST_FUZZ_LOG); \
	[ $$fuzzed = 0 ] || echo "make test: the fuzzers failed (exit $$fuzzed)" >&2; \
	[ $$tests = 0 ] && [ $$fuzzed = 0 ]
endif
	$(if $(filter 1,$(SAN)),,$(if $(strip $(VM_KERNELS)),@$(MAKE) -s --no-print-directory test-kernels KERNELS='$(VM_KERNELS)'))

# What `make test` runs, built and not run (.ci/run builds it with -j first)
test-build: deps $(TEST_BUILD)

# The kernel matrix: KERNEL_TESTS on each kernel of KERNELS, Debian's own in
# qemu (scripts/vmtest.sh, cached in .output/kernels) and `host` right here,
# at most KERNEL_TIMEOUT seconds each (scripts/test-kernels.sh).
KERNELS ?= 6.1 6.12 5.10 host
KERNEL_TESTS ?= tests/kernels
KERNEL_TIMEOUT ?= 900
test-kernels: deps $(BIN) $(TEST_TOOLS)
	@./scripts/deps.sh --vm
	@$(TEST_ENV) ./scripts/test-kernels.sh -t $(KERNEL_TIMEOUT) $(KERNELS) -- $(KERNEL_TESTS)

demo: deps pktlens
	./scripts/demo.sh

bench: deps pktlens $(BENCH_BINS) $(OUT)/tests/fill_flows
	@./scripts/deps.sh --bench
	./bench/run.sh

# The service: the unit (paths filled in), the example config (also as
# SYSCONFDIR/pktlens/pktlens.conf unless one is there: never overwritten).
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
install: pktlens
	install -D -m 0755 pktlens $(DESTDIR)$(PREFIX)/sbin/pktlens
	install -D -m 0644 docs/pktlens.8 $(DESTDIR)$(PREFIX)/share/man/man8/pktlens.8
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		contrib/systemd/pktlens.service.in > $(DESTDIR)$(UNITDIR)/pktlens.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/pktlens.service.tmp
	mv $(DESTDIR)$(UNITDIR)/pktlens.service.tmp $(DESTDIR)$(UNITDIR)/pktlens.service
	install -D -m 0644 docs/pktlens.conf $(DESTDIR)$(PREFIX)/share/doc/pktlens/pktlens.conf.example
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/pktlens/pktlens.conf ]; then \
		echo "  kept $(DESTDIR)$(SYSCONFDIR)/pktlens/pktlens.conf (the example is in $(PREFIX)/share/doc/pktlens/)"; \
	else install -D -m 0600 docs/pktlens.conf $(DESTDIR)$(SYSCONFDIR)/pktlens/pktlens.conf; fi

clean:
	rm -rf .output .output-san pktlens

# What the compilers found each object to include. An object without its .d
# file (built before -MMD) is built again.
DEPFILES := $(patsubst %.o,%.d,$(BPF_OBJS) $(LIB_OBJS) $(CLI_OBJS) $(FUZZ_LIB_OBJS) \
	      $(TEST_TOOLS:=.o) $(BENCH_BINS:=.o))
.PHONY: FORCE
$(patsubst %.d,%.o,$(filter-out $(wildcard $(DEPFILES)),$(DEPFILES))): FORCE
-include $(wildcard $(DEPFILES) $(UNIT_BINS:=.d) $(FUZZ_BINS:=.d))
