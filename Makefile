# ratepool - see README.md.
#
#   make                 build/ratepool
#   make test            unit tests, then integration tests
#   make unit            cmocka unit tests only
#   make SANITIZE=1 ...  the same with AddressSanitizer + UBSan, in build/asan
#   make sanitize        make SANITIZE=1 test
#   make bench           benchmarks (tests/bench), not part of `make test`
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

.PHONY: all test unit integration sanitize bench run install clean format tools
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
	clang-format -i $(SRC) $(wildcard include/ratepool/*.h tests/*.c tests/*/*.c)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
