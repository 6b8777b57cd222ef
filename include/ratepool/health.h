/*
 * health.h - the daemon's counters and the health JSON.
 *
 * One struct health per process. Every function is thread-safe: the
 * event loop, fetch workers and the request path may count at the same
 * time (cache counters are atomics; per-provider records sit behind a
 * mutex). No I/O here: the daemon publishes the JSON on P/health and
 * stores it for `ratepool health`.
 *
 * The JSON (docs/topics.md has a full example):
 *   {"status":"healthy"|"degraded","time":…,"started_at":…,"uptime_s":…,
 *    "version":…,"broker_connected":…,"series_tracked":…,
 *    "providers":{"octopus":{"consecutive_failures":…,"total_fetches":…,
 *       "failed_fetches":…,"success_rate":…,"last_success":…,
 *       "last_error":…,"last_error_code":…,"last_error_at":…,
 *       "token_refresh_count":…,"last_token_refresh":…},…},
 *    "cache":{"requests":…,"hits":…,"misses":…,"stale_served":…,
 *       "upstream_calls":…,"coalesced":…},
 *    "issues":[…]}
 * Times are RFC 3339 or null (never). success_rate is
 * (total - failed) / total rounded to 4 decimals, null with no fetches.
 * last_error keeps the latest failure's message even after later
 * successes (for diagnosis); only consecutive failures degrade.
 */
#ifndef RATEPOOL_HEALTH_H
#define RATEPOOL_HEALTH_H

#include "ratepool/publish.h"
#include "ratepool/series.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEALTH_PROVIDERS_MAX     16
#define HEALTH_ERROR_SIZE        256
#define HEALTH_VERSION_SIZE      32
#define HEALTH_DEFAULT_THRESHOLD 3
/* Series named one by one in issues; the rest are summed up. */
#define HEALTH_ISSUES_SERIES_MAX 16

enum health_counter {
	HEALTH_REQUESTS,       /* rate requests received */
	HEALTH_HITS,           /* answered from the cache, range covered */
	HEALTH_MISSES,         /* needed an upstream fetch */
	HEALTH_STALE_SERVED,   /* answered with stale data */
	HEALTH_UPSTREAM_CALLS, /* HTTP requests made upstream */
	HEALTH_COALESCED,      /* waited on another asker's in-flight fetch */
	HEALTH_COUNTER_COUNT
};

/* One provider's record; a copy is returned by health_provider_get. */
struct health_provider {
	char id[PROVIDER_ID_MAX + 1];
	int consecutive_failures;
	uint64_t total_fetches;
	uint64_t failed_fetches;
	int64_t last_success;               /* 0: never */
	int64_t last_error_at;              /* 0: never */
	char last_error[HEALTH_ERROR_SIZE]; /* scrubbed; "" none */
	char last_error_code[32];           /* rp_code_name(); "" none */
	uint64_t token_refresh_count;
	int64_t last_token_refresh; /* 0: never */
};

/* Fields are private: use the functions below. */
struct health {
	pthread_mutex_t lock;
	int64_t started_at;
	char version[HEALTH_VERSION_SIZE];
	struct health_provider providers[HEALTH_PROVIDERS_MAX];
	size_t n_providers;
	_Atomic uint64_t counters[HEALTH_COUNTER_COUNT];
	_Atomic uint64_t series_tracked;
	atomic_bool broker_connected;
};

/* Sets h up with the start time and version (copied, truncated to fit),
 * and registers the five known providers (octopus, tibber, watttime,
 * aemo, energycharts) so they always appear, in that order. The broker
 * starts as not connected. Returns 0 or RP_ENOMEM. */
int health_init(struct health *h, int64_t started_at, const char *version);
/* Releases the mutex; h may be reused with health_init. */
void health_cleanup(struct health *h);

/* Records one fetch of `provider` at `now`: code 0 is a success (resets
 * consecutive_failures, sets last_success); any RP_E* code is a failure
 * with a human message (NULL: rp_strerror(code)) that is scrubbed of
 * every secret registered with log_add_secret() before it is kept.
 * An unknown provider id is added (up to HEALTH_PROVIDERS_MAX). Returns 0,
 * RP_EINVAL (id not matching [A-Za-z0-9._-]{1,15}) or RP_EBUSY (full). */
int health_fetch_done(struct health *h, const char *provider, int64_t now, int code, const char *message);

/* Counts one token refresh (Kraken JWT, WattTime login). Same returns. */
int health_token_refreshed(struct health *h, const char *provider, int64_t now);

/* Adds n to a cache counter. Lock-free. */
void health_count(struct health *h, enum health_counter c, uint64_t n);
uint64_t health_counter_get(struct health *h, enum health_counter c);

void health_set_series_tracked(struct health *h, size_t n);
void health_set_broker(struct health *h, bool connected);

/* Copies the record of `provider` into out. Returns 0 or RP_ENOENT. */
int health_provider_get(struct health *h, const char *provider, struct health_provider *out);

/* What the daemon knows that health cannot see itself. */
struct health_check {
	int failure_threshold;          /* consecutive failures that degrade; <= 0: 3 */
	const char *const *missing_now; /* borrowed: "provider/id" of tracked series
	                                   whose slot for now is not held */
	size_t n_missing;
};

/* Builds the health JSON for `now` into out (reset first) and sets
 * *healthy (may be NULL). Degraded, with one human-readable line in
 * "issues" each, when: a provider has failed >= threshold times in a row
 * ("octopus: 4 consecutive failures, last: upstream timed out"); a tracked
 * series has no price for now ("octopus/E-1R-…: no price for the current
 * slot", at most HEALTH_ISSUES_SERIES_MAX named, then a count); the broker
 * is not connected ("MQTT broker unreachable"). check may be NULL.
 * Returns 0, RP_ETOOLARGE or RP_ENOMEM. */
int health_json(struct health *h, int64_t now, const struct health_check *check, struct publish_buf *out,
                bool *healthy);

#endif
