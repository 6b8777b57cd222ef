/*
 * provider.h - the upstream clients, one file each in service/providers/.
 *
 * A provider turns (series id, range) into the project's slot list: it
 * builds the request, calls http (and auth), parses the answer and refuses
 * garbage with an error and no slots. provider_fetch() is the one entry
 * point (the daemon and `ratepool fetch` both use it): it runs the
 * provider's fetch, sorts, validates the list and counts the upstream
 * calls.
 *
 * Each provider's parser is a separate exported function taking a body
 * (e.g. octopus_parse_rates) so tests feed it fixture files directly.
 */
#ifndef RATEPOOL_PROVIDER_H
#define RATEPOOL_PROVIDER_H

#include "ratepool/error.h"
#include "ratepool/http.h"
#include "ratepool/rtime.h"
#include "ratepool/slot.h"

#include <stdbool.h>
#include <stdint.h>

struct config;
struct auth;
struct store;

/* What a fetch may use; all borrowed. */
struct provider_ctx {
	const struct config *cfg;
	struct auth *auth;   /* may be NULL for public providers */
	struct store *store; /* may be NULL (no account cache) */
	const struct http_retry_policy *retry;
};

struct provider_result {
	struct slot_list slots; /* owned; free with provider_result_free */
	int upstream_calls;     /* HTTP requests made (pages, retries, logins) */
	int64_t fetched_at;
	char source[32]; /* endpoint label kept with the fetch group */
};

/* How far back an upstream still answers. Gaps before that can never be
 * filled, so they never cost an upstream call (provider_earliest). */
enum provider_history {
	PROVIDER_HISTORY_ALL = 0, /* keeps everything (Octopus, Energy-Charts) */
	PROVIDER_HISTORY_TODAY,   /* from the start of today, local (Tibber) */
	PROVIDER_HISTORY_ROLLING  /* the last history_s seconds (AEMO 5MIN) */
};

/* When an upstream's new data appears, so the scheduler polls then. */
enum provider_cadence {
	PROVIDER_DAILY,   /* day-ahead: next day published once a day */
	PROVIDER_PERIODIC /* rolling: dispatch/forecasts every `period_s` */
};

struct provider {
	const char *id;       /* "octopus", "tibber", ... */
	const char *unit;     /* default unit of its slots */
	enum rtime_zone zone; /* publication zone */
	int resolution;       /* native slot length in seconds (newest) */
	double max_abs;       /* largest believable |value| in unit */
	enum provider_cadence cadence;
	int publish_minute;   /* DAILY: local minute of day the next day usually appears */
	int publish_spread_s; /* DAILY: how late it may be; poll until then */
	int period_s;         /* PERIODIC: period; forecasts use the TTL */
	int delay_s;          /* PERIODIC: typical delay after the boundary */
	bool revisable;       /* forecasts: values change, TTL applies */
	enum provider_history history;
	int history_s; /* PROVIDER_HISTORY_ROLLING: seconds back */
	bool needs_auth;
	/* Fetches [from, to) for series `id` into res->slots (unsorted is
	 * fine). Returns 0 or RP_E*; on error no slots are kept. */
	int (*fetch)(const struct provider_ctx *ctx, const char *id, int64_t from, int64_t to,
	             struct provider_result *res, struct rp_err *err);
};

/* The provider with that id, or NULL. */
const struct provider *provider_find(const char *id);
/* NULL-terminated list of all providers. */
const struct provider *const *provider_all(void);

void provider_result_init(struct provider_result *res);
void provider_result_free(struct provider_result *res);

/* Runs p->fetch, then sorts and validates (slot_list_validate with
 * p->max_abs); on any error the slots are emptied. Sets fetched_at. */
int provider_fetch(const struct provider *p, const struct provider_ctx *ctx, const char *id, int64_t from,
                   int64_t to, struct provider_result *res, struct rp_err *err);

/* The earliest instant p's upstream still answers for at `now`;
 * INT64_MIN when it keeps all history. A forecast (revisable) has no
 * past: now. */
int64_t provider_earliest(const struct provider *p, int64_t now);

/* Builds the ctx's retry policy from the config. */
void provider_retry_policy(const struct config *cfg, struct http_retry_policy *out);

#endif
