/*
 * fixture.h - test data files under tests/data/, for every test binary.
 */
#ifndef RATEPOOL_TEST_FIXTURE_H
#define RATEPOOL_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* Reads tests/data/<dir>/<name> into a malloc'd buffer with a NUL after
 * len bytes; the caller frees it. Looks under $RATEPOOL_TEST_DATA, then
 * tests/data from the working directory, then from the source tree above
 * the test binary (build/<x>/tests/<binary>). A missing file fails the
 * running test. */
char *fixture_read(const char *dir, const char *name, size_t *len);

/* RFC 3339 text as UTC seconds; bad text fails the running test. */
int64_t fixture_time(const char *text);

#endif
