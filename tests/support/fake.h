/*
 * fake.h - the fake upstream (tests/fake_upstream/fake_upstream.py) as a
 * child process of a C test, and a small client for its control API.
 *
 * One fake per test process. fake_start() runs
 *   python3 tests/fake_upstream/fake_upstream.py --port 0 --port-file F
 * (the script is found relative to the working directory, then relative
 * to the test binary; RATEPOOL_FAKE_UPSTREAM overrides the path), waits
 * until its port accepts connections and returns. The child gets SIGTERM
 * when the test process dies, and fake_stop() runs at exit. Its output is
 * discarded unless RATEPOOL_FAKE_VERBOSE is set.
 *
 * The control calls speak HTTP/1.0 over a blocking loopback socket (no
 * curl here: this file is linked into every test binary and must not
 * depend on the code under test).
 */
#ifndef RATEPOOL_TEST_FAKE_H
#define RATEPOOL_TEST_FAKE_H

#include <stddef.h>

/* Starts the fake (no-op when running). Returns 0 or -1 (message on
 * stderr). Extra environment for the child, e.g. RATEPOOL_TEST_CLOCK,
 * is inherited from the test process. */
int fake_start(void);

/* Stops it (SIGTERM, then SIGKILL after 3 s). Safe to call twice. */
void fake_stop(void);

/* "http://127.0.0.1:PORT" (no trailing slash) while running, else "". */
const char *fake_url(void);
int fake_port(void);

/* POST /_fake/fault, /_fake/config, /_fake/reset. Return 0, or -1 when
 * the fake did not answer 200. */
int fake_fault(const char *json);
int fake_config(const char *json);
int fake_reset(void);

/* Calls to `endpoint` (e.g. "watttime_login") since start or the last
 * reset: GET /_fake/calls. An endpoint not listed counts 0. -1 on error. */
int fake_calls(const char *endpoint);

/* Any request to the fake: method "GET"/"POST", path "/...", body or
 * NULL. Copies the response body (NUL-terminated, truncated to fit) into
 * out when not NULL. Returns the HTTP status, or -1. */
int fake_http(const char *method, const char *path, const char *body, char *out, size_t n);

#endif
