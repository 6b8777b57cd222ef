/*
 * sched.h - when to poll an upstream, and what to ask it for.
 *
 * Pure functions of plain data: no clock, no store, no I/O. The daemon
 * calls sched_next_poll() for every tracked series at startup and after
 * every fetch (successful or not), arms a timer for the answer, and at
 * that time asks the provider for sched_poll_range().
 *
 * Published prices do not change, so polling follows each provider's
 * publication window rather than a fixed interval (DESIGN.md):
 *
 *  DAILY (day-ahead: Agile ~16:00 Europe/London, EU day-ahead and Tibber
 *  ~13:00 CET). Let T1 and T2 be the local midnights that end today and
 *  tomorrow, P the publish time today (local midnight + publish_minute,
 *  as wall-clock time, so 16:00 is 16:00 on a 23- or 25-hour day too):
 *   - data for now missing, or held data ends before the end of today
 *     -> poll soon: now + 0..30 s (if a fetch succeeded in the last
 *        5 minutes and still did not bring it, 5 minutes after that fetch);
 *   - tomorrow held (complete_until >= T2 - SCHED_DAY_SLACK_S)
 *     -> rest until tomorrow's publish time + 0..120 s;
 *   - else, before P -> P + 0..120 s;
 *     between P and P + publish_spread_s -> every 5 min (+ 0..60 s);
 *     later -> every 30 min (+ 0..120 s).
 *  A day counts as held when the data reaches within SCHED_DAY_SLACK_S of
 *  its end, because Agile's day-ahead runs 23:00 to 23:00 UK time: after
 *  the 16:00 publication the data ends at 23:00 tomorrow, not midnight.
 *
 *  PERIODIC, not revisable (AEMO dispatch): the first instant
 *  "multiple of period_s + delay_s" after now, + 0..30 s.
 *
 *  Revisable (forecasts: WattTime, AEMO pre-dispatch), whatever the
 *  cadence: last_success + forecast_ttl_s; now + 0..30 s when never
 *  fetched or overdue.
 *
 *  A series with nothing held that was never fetched is polled at once
 *  (now + 0..SCHED_FIRST_JITTER_S): someone is waiting for its first prices.
 *
 *  Failures: after N consecutive failures the poll is at least a
 *  full-jitter exponential backoff away (uniform in
 *  [0, min(30 min, 30 s * 2^(N-1))], at least 5 s) and at least
 *  retry_after seconds away (capped at SCHED_RETRY_AFTER_MAX).
 *
 * Jitter is deterministic: a hash of the per-series seed and the target
 * (or now), so series and processes spread out, tests are reproducible,
 * and asking twice for the same publish window gives the same instant.
 */
#ifndef RATEPOOL_SCHED_H
#define RATEPOOL_SCHED_H

#include "ratepool/provider.h"
#include "ratepool/store.h"

#include <stdbool.h>
#include <stdint.h>

/* How far short of a local day's end the data may stop and the day still
 * count as held (Agile: 23:00 to 23:00 UK). */
#define SCHED_DAY_SLACK_S (3 * 3600)

#define SCHED_SOON_JITTER_S     30  /* "poll soon" */
#define SCHED_FIRST_JITTER_S    5   /* a series never fetched, nothing held */
#define SCHED_PUBLISH_JITTER_S  120 /* at a publish time */
#define SCHED_WINDOW_INTERVAL_S 300 /* inside the publication window */
#define SCHED_WINDOW_JITTER_S   60
#define SCHED_LATE_INTERVAL_S   1800 /* after the window, still waiting */
#define SCHED_PERIODIC_JITTER_S 30
#define SCHED_BACKOFF_BASE_S    30
#define SCHED_BACKOFF_CAP_S     1800
#define SCHED_BACKOFF_MIN_S     5
#define SCHED_RETRY_AFTER_MAX   (6 * 3600) /* a hostile Retry-After cannot park a series for days */
#define SCHED_DEFAULT_TTL_S     1800
#define SCHED_DEFAULT_HORIZON_S 86400

struct sched_input {
	const struct provider *provider; /* borrowed; only read during the call */
	int64_t now;
	int64_t complete_until; /* end of the last slot held; 0: none */
	int64_t last_success;   /* last successful fetch; 0: never */
	int failures;           /* consecutive failed fetches; 0 after a success */
	long retry_after;       /* seconds the upstream asked to wait; -1: none */
	int forecast_ttl_s;     /* revisable providers; <= 0: SCHED_DEFAULT_TTL_S */
	uint32_t seed;          /* per series, e.g. sched_seed(provider, id) */
};

/* The instant (UTC seconds, >= in->now) at which the series should next
 * be polled, by the rules above. */
int64_t sched_next_poll(const struct sched_input *in);

/* What to ask the upstream for at a scheduled poll, into *out:
 *  - DAILY: from the start of yesterday (local), or complete_until when
 *    that is later, to the start of the day after tomorrow (local);
 *  - PERIODIC actuals: from max(now - 24 h, complete_until) to the end of
 *    the period holding now (both on period boundaries);
 *  - revisable: from now rounded down to the period to now +
 *    forecast_horizon_s (<= 0: 24 h) rounded up to the period.
 * out->from == out->to when nothing is missing (nothing to ask). */
void sched_poll_range(const struct provider *p, int64_t now, int64_t complete_until, int forecast_horizon_s,
                      struct store_range *out);

/* DAILY: true while tomorrow (local) is not yet held, i.e. the next
 * day's publication is still to come. False for PERIODIC providers. */
bool sched_needs_tomorrow(const struct provider *p, int64_t now, int64_t complete_until);

/* UTC instant of the provider's publish time on the local day holding t:
 * local midnight + publish_minute minutes of wall-clock time. On a DST
 * day a wall time that does not exist is taken with the old offset. */
int64_t sched_publish_time(const struct provider *p, int64_t t);

/* The full-jitter backoff in seconds after `failures` consecutive
 * failures (0 when failures <= 0), deterministic in (seed, failures, now). */
int64_t sched_backoff(int failures, uint32_t seed, int64_t now);

/* A stable per-series jitter seed (FNV-1a of "provider/id"); NULLs are
 * read as "". */
uint32_t sched_seed(const char *provider, const char *id);

#endif
