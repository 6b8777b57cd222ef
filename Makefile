# ratepool - see README.md.
#
#   make                 build/ratepool
#   make test            unit tests, then integration tests
#   make unit            cmocka unit tests only
#   make SANITIZE=1 ...  the same with AddressSanitizer + UBSan, in build/asan
#   make sanitize        make SANITIZE=1 test
#   make bench           benchmarks (tests/bench), not part of `make test`
#   make fuzz            libFuzzer targets (clang) in build/fuzz, FUZZ_SECONDS each
#   make memcheck        integration tests with the daemon under valgrind
#   make soak            long fault tests (tests/soak), not part of `make test`
#   make run             build and run the daemon with the environment given
#   make install         install to $(DESTDIR)$(PREFIX)/bin
#   make format          clang-format every C file in place

PREFIX ?= /usr/local
CC ?= cc
PKGS := libcurl jansson lmdb
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

ifeq ($(SANITIZE),1)
BUILD ?= build/asan
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT ?= -O1 -g
else
BUILD ?= build
SAN_FLAGS :=
OPT ?= -O2 -g
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif

CPPFLAGS += -Iinclude -D_GNU_SOURCE -DRATEPOOL_VERSION='"$(VERSION)"'
CFLAGS += -std=c11 $(OPT) $(WARN) $(SAN_FLAGS) -pthread -MMD -MP \
	$(shell pkg-config --cflags $(PKGS))
LDFLAGS += $(SAN_FLAGS) -pthread
LDLIBS += $(shell pkg-config --libs $(PKGS)) -lpaho-mqtt3as -lm

SRC := $(wildcard service/*.c service/providers/*.c)
LIB_SRC := $(filter-out service/main.c,$(SRC))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB := $(BUILD)/libratepool.a

TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_HELPERS := $(wildcard tests/support/*.c)
TEST_HELPER_OBJ := $(TEST_HELPERS:%.c=$(BUILD)/obj/%.o)

BENCH_SRC := $(wildcard tests/bench/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

# Keep the objects of tests and benchmarks between runs.
.SECONDARY:

.PHONY: all test unit integration sanitize bench run install clean format tools fuzz fuzz-build memcheck soak
all: $(BUILD)/ratepool

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/ratepool: $(BUILD)/obj/service/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HELPER_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# test_oom fails every allocation in turn: it wraps the allocator.
$(BUILD)/tests/test_oom: LDFLAGS += -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=strdup,--wrap=strndup,--wrap=json_loadb,--wrap=json_load_file

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tools: $(BUILD)/ratepool $(TEST_BIN) $(BENCH_BIN)

unit: $(TEST_BIN)
	@BUILD=$(BUILD) tests/run_unit.sh $(TEST_BIN)

integration: $(BUILD)/ratepool $(BENCH_BIN)
	@RATEPOOL_BIN=$(BUILD)/ratepool BUILD=$(BUILD) tests/integration/run.sh

test: unit integration

sanitize:
	$(MAKE) SANITIZE=1 test

bench: $(BUILD)/ratepool $(BENCH_BIN)
	tests/bench/run.sh $(BUILD)

run: $(BUILD)/ratepool
	$(BUILD)/ratepool run

install: $(BUILD)/ratepool
	install -D -m 0755 $(BUILD)/ratepool $(DESTDIR)$(PREFIX)/bin/ratepool

format:
	clang-format -i $(SRC) $(wildcard include/ratepool/*.h tests/*.c tests/*/*.c tests/fuzz/*.h)

# Fuzzing (tests/fuzz): clang with libFuzzer, ASan and UBSan. The library
# is compiled again with clang and coverage instrumentation into its own
# object dir; each tests/fuzz/fuzz_*.c becomes $(FUZZ_BUILD)/fuzz_*.
# `make fuzz` runs every target for FUZZ_SECONDS, FUZZ_JOBS at a time.
FUZZ_BUILD ?= build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_CC ?= clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -O1 -g $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -pthread \
	$(shell pkg-config --cflags $(PKGS))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libratepool.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libratepool.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -pthread -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_JOBS)

# The integration tests with the daemon under valgrind's memcheck
# (harness.py: RATEPOOL_VALGRIND=1); a plain build, valgrind and ASan do
# not mix.
memcheck: $(BUILD)/ratepool
	@if [ "$(SANITIZE)" = 1 ]; then echo "make memcheck: use a build without SANITIZE=1" >&2; exit 2; fi
	@rm -rf $(BUILD)/memcheck
	@RATEPOOL_VALGRIND=1 RATEPOOL_VALGRIND_DIR=$(BUILD)/memcheck RATEPOOL_BIN=$(BUILD)/ratepool BUILD=$(BUILD) \
		tests/integration/run.sh; echo "memcheck: the tests exited $$? (timing failures under valgrind are expected)"
	@tests/integration/memcheck_report.sh $(BUILD)/memcheck

# Fault tests that take minutes (tests/soak/soak_*.py): kill -9 in a loop.
soak: $(BUILD)/ratepool
	@RATEPOOL_BIN=$(BUILD)/ratepool BUILD=$(BUILD) python3 -m unittest discover -s tests/soak -p "soak_*.py" -v

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
ifneq ($(filter fuzz fuzz-build $(FUZZ_BUILD)/%,$(MAKECMDGOALS)),)
-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
endif
