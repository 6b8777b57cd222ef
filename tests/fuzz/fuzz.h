/*
 * fuzz.h - what every libFuzzer target under tests/fuzz/ shares.
 *
 * Each target is one file fuzz_<name>.c defining LLVMFuzzerTestOneInput
 * around one parser of hostile input; `make fuzz` builds them with clang
 * and -fsanitize=fuzzer,address,undefined into build/fuzz/ and runs each
 * for FUZZ_SECONDS (tests/fuzz/run.sh). Any crash, leak or sanitizer
 * report fails the run.
 */
#ifndef RATEPOOL_FUZZ_H
#define RATEPOOL_FUZZ_H

#include "ratepool/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The parsers log what they refuse; a fuzzer refuses millions of inputs,
 * so log lines go nowhere. Errors too: a crash is what we look for. */
static inline void fuzz_quiet_logs(void)
{
	log_open(LOG_LEVEL_ERROR, "/dev/null");
}

/* A NUL-terminated malloc'd copy of the input (for APIs taking C
 * strings); NULL when out of memory. The exact-size allocation lets ASan
 * catch a read one past the end. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if(s) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

/* A wide range, 2000-01-01 .. 2100-01-01: every fixture's slots fall in it. */
#define FUZZ_FROM INT64_C(946684800)
#define FUZZ_TO   INT64_C(4102444800)

#endif
