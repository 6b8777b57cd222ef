/* test_sched.c - poll scheduling by publication window, DST, backoff. */
#include "ratepool/rtime.h"
#include "ratepool/sched.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* Providers as the provider table describes them; tests own their own
 * copies so that the rules are tested, not one table's numbers. */
static const struct provider agile = {
        .id = "octopus",
        .unit = "GBP/kWh",
        .zone = RTIME_LONDON,
        .resolution = 1800,
        .cadence = PROVIDER_DAILY,
        .publish_minute = 16 * 60,
        .publish_spread_s = 3600,
};

static const struct provider dayahead = {
        .id = "energycharts",
        .unit = "EUR/kWh",
        .zone = RTIME_CET,
        .resolution = 900,
        .cadence = PROVIDER_DAILY,
        .publish_minute = 13 * 60,
        .publish_spread_s = 2 * 3600,
};

static const struct provider aemo = {
        .id = "aemo",
        .unit = "AUD/kWh",
        .zone = RTIME_NEM,
        .resolution = 300,
        .cadence = PROVIDER_PERIODIC,
        .period_s = 300,
        .delay_s = 60,
};

static const struct provider forecast = {
        .id = "watttime",
        .unit = "lbs_co2_per_mwh",
        .zone = RTIME_UTC,
        .resolution = 300,
        .cadence = PROVIDER_PERIODIC,
        .period_s = 300,
        .revisable = true,
};

static int64_t utc(const char *text)
{
	int64_t t = 0;
	assert_int_equal(rtime_parse(text, &t), 0);
	return t;
}

static int64_t local(const char *text, enum rtime_zone zone)
{
	int64_t t = 0;
	assert_int_equal(rtime_parse_local(text, zone, &t), 0);
	return t;
}

static int64_t london(const char *text)
{
	return local(text, RTIME_LONDON);
}

static int64_t cet(const char *text)
{
	return local(text, RTIME_CET);
}

static struct sched_input input(const struct provider *p, int64_t now, int64_t complete_until,
                                int64_t last_success)
{
	struct sched_input in;

	memset(&in, 0, sizeof(in));
	in.provider = p;
	in.now = now;
	in.complete_until = complete_until;
	in.last_success = last_success;
	in.failures = 0;
	in.retry_after = -1;
	in.forecast_ttl_s = 1800;
	in.seed = 12345;
	return in;
}

/* --- publish times ------------------------------------------------------- */

static void test_publish_time_is_wall_clock_on_dst_days(void **state)
{
	struct provider gap = agile;

	(void)state;
	/* Ordinary winter and summer days. */
	assert_int_equal(sched_publish_time(&agile, utc("2026-11-21T09:00:00Z")),
	                 utc("2026-11-21T16:00:00Z"));
	assert_int_equal(sched_publish_time(&agile, utc("2026-06-01T09:00:00Z")),
	                 utc("2026-06-01T15:00:00Z"));
	/* 23-hour day: midnight is GMT, 16:00 is BST, 15 hours later. */
	assert_int_equal(sched_publish_time(&agile, utc("2026-03-29T00:30:00Z")),
	                 utc("2026-03-29T15:00:00Z"));
	/* 25-hour day: midnight is BST (23:00Z the day before), 16:00 GMT is
	 * 17 hours later; midnight + 16 h would be an hour early. */
	assert_int_equal(sched_publish_time(&agile, utc("2026-10-24T23:30:00Z")),
	                 utc("2026-10-25T16:00:00Z"));
	assert_int_equal(sched_publish_time(&agile, utc("2026-10-25T20:00:00Z")),
	                 utc("2026-10-25T16:00:00Z"));
	/* CET day-ahead at 13:00 local on both DST days. */
	assert_int_equal(sched_publish_time(&dayahead, utc("2026-03-29T05:00:00Z")),
	                 utc("2026-03-29T11:00:00Z"));
	assert_int_equal(sched_publish_time(&dayahead, utc("2026-10-25T05:00:00Z")),
	                 utc("2026-10-25T12:00:00Z"));
	assert_int_equal(sched_publish_time(&dayahead, utc("2026-03-28T23:30:00Z")),
	                 utc("2026-03-29T11:00:00Z"));
	/* A wall time that does not exist (01:30 on the spring-forward day)
	 * is read with the old offset. */
	gap.publish_minute = 90;
	assert_int_equal(sched_publish_time(&gap, utc("2026-03-29T12:00:00Z")), utc("2026-03-29T01:30:00Z"));
	/* A wall time that occurs twice (01:30 on the fall-back day): the first. */
	assert_int_equal(sched_publish_time(&gap, utc("2026-10-25T12:00:00Z")), utc("2026-10-25T00:30:00Z"));
}

/* --- DAILY rules --------------------------------------------------------- */

static void test_daily_nothing_held_polls_soon(void **state)
{
	int64_t now = london("2026-11-21T10:00:00");
	struct sched_input in = input(&agile, now, 0, 0);
	int64_t t = sched_next_poll(&in);

	(void)state;
	assert_in_range(t, now, now + SCHED_SOON_JITTER_S);
}

static void test_daily_data_short_of_today_polls_soon(void **state)
{
	int64_t now = london("2026-11-21T10:00:00");
	/* Held until 14:00 today: the rest of today is missing. */
	struct sched_input in = input(&agile, now, london("2026-11-21T14:00:00"), now - 3600);
	int64_t t = sched_next_poll(&in);

	(void)state;
	assert_in_range(t, now, now + SCHED_SOON_JITTER_S);
}

static void test_daily_data_for_now_missing_polls_soon(void **state)
{
	/* Evening, held until 21:00 only (within the day slack, but now is
	 * past it): the data for now is missing. */
	int64_t now = london("2026-11-21T21:30:00");
	struct sched_input in = input(&agile, now, london("2026-11-21T21:00:00"), now - 3600);
	int64_t t = sched_next_poll(&in);

	(void)state;
	assert_in_range(t, now, now + SCHED_SOON_JITTER_S);
}

static void test_daily_soon_after_fresh_success_waits_five_minutes(void **state)
{
	/* A fetch succeeded a minute ago and still did not bring today:
	 * the upstream does not have it; do not ask again every 30 s. */
	int64_t now = london("2026-11-21T10:00:00");
	struct sched_input in = input(&agile, now, 0, now - 60);
	int64_t t = sched_next_poll(&in);

	(void)state;
	assert_in_range(t, now - 60 + SCHED_WINDOW_INTERVAL_S,
	                now - 60 + SCHED_WINDOW_INTERVAL_S + SCHED_WINDOW_JITTER_S);
}

static void test_daily_before_publish_waits_for_publish_time(void **state)
{
	/* Agile shape: before 16:00 the data runs to 23:00 today. */
	int64_t now = london("2026-11-21T09:12:00");
	int64_t pub = london("2026-11-21T16:00:00");
	struct sched_input in = input(&agile, now, london("2026-11-21T23:00:00"), now - 600);
	int64_t t = sched_next_poll(&in);

	(void)state;
	assert_in_range(t, pub, pub + SCHED_PUBLISH_JITTER_S);
	/* Asked again later the same morning: the same instant. */
	in.now = london("2026-11-21T11:00:00");
	assert_int_equal(sched_next_poll(&in), t);
}

static void test_daily_in_window_polls_every_five_minutes(void **state)
{
	int64_t now = london("2026-11-21T16:01:30");
	struct sched_input in = input(&agile, now, london("2026-11-21T23:00:00"), now);
	int64_t t = sched_next_poll(&in);

	(void)state;
	assert_in_range(t, now + 300, now + 300 + SCHED_WINDOW_JITTER_S);
}

static void test_daily_after_spread_polls_every_half_hour(void **state)
{
	/* Publication window (16:00 + 1 h) passed, tomorrow still missing. */
	int64_t now = london("2026-11-21T17:10:00");
	struct sched_input in = input(&agile, now, london("2026-11-21T23:00:00"), now);
	int64_t t = sched_next_poll(&in);

	(void)state;
	assert_in_range(t, now + 1800, now + 1800 + SCHED_PUBLISH_JITTER_S);
}

static void test_daily_tomorrow_held_rests_until_next_publish(void **state)
{
	int64_t now = london("2026-11-21T16:07:00");
	int64_t next = london("2026-11-22T16:00:00");
	/* Agile: after publication the data runs to 23:00 tomorrow. */
	struct sched_input in = input(&agile, now, london("2026-11-22T23:00:00"), now);
	int64_t t = sched_next_poll(&in);

	(void)state;
	assert_in_range(t, next, next + SCHED_PUBLISH_JITTER_S);
	/* Whole-day upstreams (to midnight) rest the same way. */
	in.complete_until = london("2026-11-23T00:00:00");
	assert_in_range(sched_next_poll(&in), next, next + SCHED_PUBLISH_JITTER_S);
}

static void test_daily_rest_lands_on_dst_day_publish_time(void **state)
{
	/* Saturday before the spring change: tomorrow's 16:00 is BST (15:00Z). */
	int64_t now = london("2026-03-28T16:10:00");
	struct sched_input in = input(&agile, now, london("2026-03-29T23:00:00"), now);
	int64_t t;

	(void)state;
	t = sched_next_poll(&in);
	assert_in_range(t, utc("2026-03-29T15:00:00Z"), utc("2026-03-29T15:00:00Z") + SCHED_PUBLISH_JITTER_S);

	/* Saturday before the autumn change: tomorrow's 16:00 is GMT (16:00Z). */
	in.now = london("2026-10-24T16:10:00");
	in.last_success = in.now;
	in.complete_until = london("2026-10-25T23:00:00");
	t = sched_next_poll(&in);
	assert_in_range(t, utc("2026-10-25T16:00:00Z"), utc("2026-10-25T16:00:00Z") + SCHED_PUBLISH_JITTER_S);

	/* CET: 13:00 CEST on 2026-03-29 is 11:00Z. */
	in = input(&dayahead, cet("2026-03-28T14:00:00"), cet("2026-03-30T00:00:00"),
	           cet("2026-03-28T14:00:00"));
	t = sched_next_poll(&in);
	assert_in_range(t, utc("2026-03-29T11:00:00Z"), utc("2026-03-29T11:00:00Z") + SCHED_PUBLISH_JITTER_S);
	/* 13:00 CET on 2026-10-25 is 12:00Z. */
	in = input(&dayahead, cet("2026-10-24T14:00:00"), cet("2026-10-26T00:00:00"),
	           cet("2026-10-24T14:00:00"));
	t = sched_next_poll(&in);
	assert_in_range(t, utc("2026-10-25T12:00:00Z"), utc("2026-10-25T12:00:00Z") + SCHED_PUBLISH_JITTER_S);
}

static void test_daily_waits_for_publish_on_dst_day(void **state)
{
	/* On the 25-hour day itself, early morning: the poll is at 16:00
	 * GMT, not at midnight(BST) + 16 h = 15:00Z. */
	int64_t now = london("2026-10-25T08:00:00");
	struct sched_input in = input(&agile, now, london("2026-10-25T23:00:00"), now - 3600);
	int64_t t = sched_next_poll(&in);

	(void)state;
	assert_in_range(t, utc("2026-10-25T16:00:00Z"), utc("2026-10-25T16:00:00Z") + SCHED_PUBLISH_JITTER_S);
	/* 23-hour day: 16:00 BST = 15:00Z, not midnight(GMT) + 16 h = 16:00Z. */
	in.now = london("2026-03-29T08:00:00");
	in.complete_until = london("2026-03-29T23:00:00");
	in.last_success = in.now - 3600;
	t = sched_next_poll(&in);
	assert_in_range(t, utc("2026-03-29T15:00:00Z"), utc("2026-03-29T15:00:00Z") + SCHED_PUBLISH_JITTER_S);
}

static void test_needs_tomorrow(void **state)
{
	int64_t now = london("2026-11-21T12:00:00");

	(void)state;
	assert_true(sched_needs_tomorrow(&agile, now, london("2026-11-21T23:00:00")));
	assert_false(sched_needs_tomorrow(&agile, now, london("2026-11-22T23:00:00")));
	assert_false(sched_needs_tomorrow(&agile, now, london("2026-11-23T00:00:00")));
	assert_false(sched_needs_tomorrow(&aemo, now, 0));
	assert_false(sched_needs_tomorrow(&forecast, now, 0));
	assert_false(sched_needs_tomorrow(NULL, now, 0));
}

/* --- PERIODIC and revisable ---------------------------------------------- */

static void test_periodic_polls_after_boundary_plus_delay(void **state)
{
	int64_t now = utc("2026-11-21T10:05:10Z");
	struct sched_input in = input(&aemo, now, utc("2026-11-21T10:05:00Z"), now - 250);
	int64_t t = sched_next_poll(&in);

	(void)state;
	/* The 10:05 boundary's data is out at 10:06: not skipped. */
	assert_in_range(t, utc("2026-11-21T10:06:00Z"),
	                utc("2026-11-21T10:06:00Z") + SCHED_PERIODIC_JITTER_S);
	/* Just after that poll, the next boundary. */
	in.now = utc("2026-11-21T10:06:12Z");
	in.last_success = in.now;
	in.complete_until = utc("2026-11-21T10:10:00Z");
	t = sched_next_poll(&in);
	assert_in_range(t, utc("2026-11-21T10:11:00Z"),
	                utc("2026-11-21T10:11:00Z") + SCHED_PERIODIC_JITTER_S);
}

static void test_periodic_far_behind_catches_up_soon(void **state)
{
	int64_t now = utc("2026-11-21T10:02:00Z");
	struct sched_input in = input(&aemo, now, 0, 0);

	(void)state;
	assert_in_range(sched_next_poll(&in), now, now + SCHED_PERIODIC_JITTER_S);
	/* But not again right after a success that did not bring it. */
	in.last_success = now - 10;
	assert_true(sched_next_poll(&in) >= utc("2026-11-21T10:06:00Z"));
}

static void test_revisable_uses_ttl(void **state)
{
	int64_t now = utc("2026-11-21T10:00:00Z");
	struct sched_input in = input(&forecast, now, now + 86400, now - 600);

	(void)state;
	assert_int_equal(sched_next_poll(&in), now - 600 + 1800);
	in.forecast_ttl_s = 0; /* default */
	assert_int_equal(sched_next_poll(&in), now - 600 + SCHED_DEFAULT_TTL_S);
	in.forecast_ttl_s = 900;
	in.last_success = 0; /* never fetched */
	assert_in_range(sched_next_poll(&in), now, now + SCHED_SOON_JITTER_S);
	in.last_success = now - 7200; /* overdue (after a restart) */
	assert_in_range(sched_next_poll(&in), now, now + SCHED_SOON_JITTER_S);
}

/* --- failures ------------------------------------------------------------ */

static void test_backoff_stays_within_full_jitter_bounds(void **state)
{
	int n;
	uint32_t seed;

	(void)state;
	assert_int_equal(sched_backoff(0, 1, 0), 0);
	for(n = 1; n <= 40; n++) {
		int64_t ceiling = SCHED_BACKOFF_BASE_S;
		int64_t max_seen = 0;
		int i;

		for(i = 1; i < n && ceiling < SCHED_BACKOFF_CAP_S; i++)
			ceiling *= 2;
		if(ceiling > SCHED_BACKOFF_CAP_S)
			ceiling = SCHED_BACKOFF_CAP_S;
		for(seed = 0; seed < 500; seed++) {
			int64_t b = sched_backoff(n, seed, 1795000000 + seed * 7);
			assert_in_range(b, SCHED_BACKOFF_MIN_S, ceiling);
			if(b > max_seen)
				max_seen = b;
		}
		/* Full jitter: the range is used, up to near the ceiling. */
		assert_true(max_seen > ceiling * 3 / 4);
	}
	/* Huge counts do not overflow. */
	assert_in_range(sched_backoff(1 << 30, 7, 0), SCHED_BACKOFF_MIN_S, SCHED_BACKOFF_CAP_S);
}

static void test_failures_push_soon_poll_back(void **state)
{
	int64_t now = london("2026-11-21T10:00:00");
	struct sched_input in = input(&agile, now, 0, 0);
	int64_t t;

	(void)state;
	in.failures = 1;
	t = sched_next_poll(&in);
	assert_in_range(t, now + SCHED_BACKOFF_MIN_S, now + 30);
	in.failures = 4; /* ceiling 240 s */
	t = sched_next_poll(&in);
	assert_in_range(t, now + SCHED_BACKOFF_MIN_S, now + 240);
	in.failures = 30;
	t = sched_next_poll(&in);
	assert_in_range(t, now + SCHED_BACKOFF_MIN_S, now + SCHED_BACKOFF_CAP_S);
	/* A later rule time is kept: backoff only ever delays. */
	in.complete_until = london("2026-11-21T23:00:00");
	in.failures = 1;
	t = sched_next_poll(&in);
	assert_in_range(t, london("2026-11-21T16:00:00"), london("2026-11-21T16:02:00"));
}

static void test_retry_after_is_honoured(void **state)
{
	int64_t now = utc("2026-11-21T10:05:10Z");
	struct sched_input in = input(&aemo, now, utc("2026-11-21T10:05:00Z"), now - 10);

	(void)state;
	in.failures = 1;
	in.retry_after = 900;
	assert_true(sched_next_poll(&in) >= now + 900);
	/* Also without a failure count (a 503 with Retry-After). */
	in.failures = 0;
	in.retry_after = 120;
	assert_true(sched_next_poll(&in) >= now + 120);
	/* Zero means "now is fine": the normal rule applies. */
	in.retry_after = 0;
	assert_in_range(sched_next_poll(&in), utc("2026-11-21T10:06:00Z"), utc("2026-11-21T10:06:30Z"));
	/* A hostile value is capped. */
	in.retry_after = 2000000000L;
	assert_int_equal(sched_next_poll(&in), now + SCHED_RETRY_AFTER_MAX);
}

/* --- jitter -------------------------------------------------------------- */

static void test_jitter_is_deterministic_and_spreads_series(void **state)
{
	int64_t now = london("2026-11-21T09:00:00");
	struct sched_input in = input(&agile, now, london("2026-11-21T23:00:00"), now - 60);
	int64_t seen[SCHED_PUBLISH_JITTER_S + 1];
	int distinct = 0;
	uint32_t s;
	int64_t a;

	(void)state;
	memset(seen, 0, sizeof(seen));
	a = sched_next_poll(&in);
	assert_int_equal(sched_next_poll(&in), a);
	for(s = 0; s < 40; s++) {
		int64_t t;
		in.seed =
		        sched_seed("octopus", s % 2 ? "E-1R-AGILE-24-10-01-C" : "E-1R-AGILE-24-10-01-H") + s;
		t = sched_next_poll(&in) - london("2026-11-21T16:00:00");
		assert_in_range(t, 0, SCHED_PUBLISH_JITTER_S);
		if(!seen[t]++)
			distinct++;
	}
	assert_true(distinct >= 20);
	assert_int_not_equal(sched_seed("octopus", "A"), sched_seed("octopus", "B"));
	assert_int_equal(sched_seed("octopus", "A"), sched_seed("octopus", "A"));
	assert_int_equal(sched_seed(NULL, NULL), sched_seed("", ""));
}

static void test_next_poll_is_never_in_the_past(void **state)
{
	const struct provider *ps[] = {&agile, &dayahead, &aemo, &forecast};
	uint32_t x = 2463534242u;
	int i;

	(void)state;
	for(i = 0; i < 20000; i++) {
		struct sched_input in;
		int64_t now, t;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		now = utc("2026-01-01T00:00:00Z") + (int64_t)(x % (366u * 86400u));
		in = input(ps[i % 4], now, 0, 0);
		in.complete_until = (x & 1) ? 0 : now + (int64_t)(x % (3 * 86400)) - 86400;
		in.last_success = (x & 2) ? 0 : now - (int64_t)(x % 7200);
		in.failures = (int)(x % 7);
		in.retry_after = (x & 4) ? -1 : (long)(x % 100);
		in.seed = x;
		t = sched_next_poll(&in);
		assert_true(t >= now);
		assert_true(t <= now + 2 * 86400 + 3600);
	}
}

/* --- poll range ---------------------------------------------------------- */

static void test_poll_range_daily(void **state)
{
	struct store_range r;
	int64_t now = london("2026-11-21T16:01:00");

	(void)state;
	sched_poll_range(&agile, now, 0, 0, &r);
	assert_int_equal(r.from, london("2026-11-20T00:00:00"));
	assert_int_equal(r.to, london("2026-11-23T00:00:00"));
	sched_poll_range(&agile, now, london("2026-11-21T23:00:00"), 0, &r);
	assert_int_equal(r.from, london("2026-11-21T23:00:00"));
	assert_int_equal(r.to, london("2026-11-23T00:00:00"));
	/* Held before yesterday: yesterday's start. */
	sched_poll_range(&agile, now, london("2026-11-10T00:00:00"), 0, &r);
	assert_int_equal(r.from, london("2026-11-20T00:00:00"));
	/* Everything held: empty. */
	sched_poll_range(&agile, now, london("2026-11-24T00:00:00"), 0, &r);
	assert_int_equal(r.from, r.to);
	/* Around the autumn change: local days, 25 hours on the 25th. */
	sched_poll_range(&agile, london("2026-10-25T12:00:00"), 0, 0, &r);
	assert_int_equal(r.from, utc("2026-10-23T23:00:00Z"));
	assert_int_equal(r.to, utc("2026-10-27T00:00:00Z"));
	sched_poll_range(&dayahead, cet("2026-03-29T12:00:00"), 0, 0, &r);
	assert_int_equal(r.from, utc("2026-03-27T23:00:00Z"));
	assert_int_equal(r.to, utc("2026-03-30T22:00:00Z"));
}

static void test_poll_range_periodic_and_revisable(void **state)
{
	struct store_range r;
	int64_t now = utc("2026-11-21T10:06:10Z");

	(void)state;
	sched_poll_range(&aemo, now, 0, 0, &r);
	assert_int_equal(r.from, utc("2026-11-20T10:05:00Z"));
	assert_int_equal(r.to, utc("2026-11-21T10:10:00Z"));
	sched_poll_range(&aemo, now, utc("2026-11-21T09:30:00Z"), 0, &r);
	assert_int_equal(r.from, utc("2026-11-21T09:30:00Z"));
	assert_int_equal(r.to, utc("2026-11-21T10:10:00Z"));
	sched_poll_range(&aemo, now, utc("2026-11-21T11:00:00Z"), 0, &r);
	assert_int_equal(r.from, r.to);

	sched_poll_range(&forecast, now, utc("2026-11-22T00:00:00Z"), 0, &r);
	assert_int_equal(r.from, utc("2026-11-21T10:05:00Z"));
	assert_int_equal(r.to, utc("2026-11-22T10:10:00Z"));
	sched_poll_range(&forecast, now, 0, 3600, &r);
	assert_int_equal(r.to, utc("2026-11-21T11:10:00Z"));
}

/* --- simulated days ------------------------------------------------------ */

struct sim {
	int polls;
	int64_t first_poll;
	int64_t got_data_at;
	int64_t after_day; /* the first poll time past the simulated day */
	int64_t max_gap;
};

/* Runs one local day of `p` in `zone` from 00:00 to 24:00: the upstream
 * holds data to `held_before` until `publish_at`, then to `held_after`.
 * The daemon polls at each sched_next_poll() answer, as it would. */
static struct sim simulate_day(const struct provider *p, int64_t day_start, int64_t day_end,
                               int64_t held_before, int64_t publish_at, int64_t held_after, uint32_t seed)
{
	struct sim s;
	struct sched_input in = input(p, day_start, held_before, day_start - 8 * 3600);
	int64_t prev = 0;

	memset(&s, 0, sizeof(s));
	in.seed = seed;
	for(;;) {
		int64_t t = sched_next_poll(&in);
		assert_true(t >= in.now);
		if(t >= day_end) {
			s.after_day = t;
			break;
		}
		s.polls++;
		assert_true(s.polls < 200);
		if(!s.first_poll)
			s.first_poll = t;
		if(prev && t - prev > s.max_gap)
			s.max_gap = t - prev;
		prev = t;
		in.now = t;
		in.last_success = t;
		in.failures = 0;
		if(t >= publish_at && in.complete_until < held_after) {
			in.complete_until = held_after;
			s.got_data_at = t;
		}
	}
	return s;
}

static void check_agile_day(const char *d0, const char *d1)
{
	char a[32], b[32], c[32], pub[32], up[32], held0[32], held1[32];
	uint32_t seed;

	snprintf(a, sizeof(a), "%sT00:00:00", d0);
	snprintf(b, sizeof(b), "%sT00:00:00", d1);
	snprintf(c, sizeof(c), "%sT16:00:00", d1);
	snprintf(pub, sizeof(pub), "%sT16:00:00", d0);
	snprintf(up, sizeof(up), "%sT16:05:00", d0);
	snprintf(held0, sizeof(held0), "%sT23:00:00", d0);
	snprintf(held1, sizeof(held1), "%sT23:00:00", d1);
	for(seed = 1; seed <= 50; seed++) {
		struct sim s = simulate_day(&agile, london(a), london(b), london(held0), london(up),
		                            london(held1), seed * 2654435761u);
		/* One poll near 16:00, a few until 16:05, then rest: a naive
		 * 30-minute poller makes 48. */
		assert_in_range(s.polls, 2, 4);
		assert_in_range(s.first_poll, london(pub), london(pub) + SCHED_PUBLISH_JITTER_S);
		assert_in_range(s.got_data_at, london(up), london(up) + 6 * 60);
		assert_in_range(s.after_day, london(c), london(c) + SCHED_PUBLISH_JITTER_S);
	}
}

static void test_simulated_agile_day_polls_a_few_times(void **state)
{
	(void)state;
	check_agile_day("2026-11-21", "2026-11-22");
}

static void test_simulated_agile_dst_days_poll_a_few_times(void **state)
{
	(void)state;
	/* 23-hour day, and the Saturday before it (rest lands on BST 16:00). */
	check_agile_day("2026-03-28", "2026-03-29");
	check_agile_day("2026-03-29", "2026-03-30");
	/* 25-hour day, and the Saturday before it. */
	check_agile_day("2026-10-24", "2026-10-25");
	check_agile_day("2026-10-25", "2026-10-26");
}

static void test_simulated_cet_dst_day_polls_a_few_times(void **state)
{
	uint32_t seed;

	(void)state;
	for(seed = 1; seed <= 50; seed++) {
		/* Whole days; published 13:10 CEST on the spring-forward day. */
		struct sim s = simulate_day(&dayahead, cet("2026-03-29T00:00:00"), cet("2026-03-30T00:00:00"),
		                            cet("2026-03-30T00:00:00"), cet("2026-03-29T13:10:00"),
		                            cet("2026-03-31T00:00:00"), seed * 40503u);
		assert_in_range(s.polls, 2, 5);
		assert_in_range(s.first_poll, utc("2026-03-29T11:00:00Z"), utc("2026-03-29T11:02:00Z"));
		assert_in_range(s.after_day, utc("2026-03-30T11:00:00Z"), utc("2026-03-30T11:02:00Z"));
	}
}

static void test_simulated_late_publication_slows_down_after_window(void **state)
{
	/* The upstream is 3 hours late: every 5 minutes for the hour of the
	 * window, then every 30 minutes, never a storm. */
	struct sim s = simulate_day(&agile, london("2026-11-21T00:00:00"), london("2026-11-22T00:00:00"),
	                            london("2026-11-21T23:00:00"), london("2026-11-21T19:00:00"),
	                            london("2026-11-22T23:00:00"), 99);

	(void)state;
	assert_in_range(s.polls, 12, 20);
	assert_in_range(s.got_data_at, london("2026-11-21T19:00:00"), london("2026-11-21T19:33:00"));
	assert_true(s.max_gap >= 1800);
}

/* A series never fetched with nothing held is polled within seconds, for
 * every cadence: a user is waiting for its first prices. */
static void test_first_poll_of_an_empty_series_is_within_seconds(void **state)
{
	const struct provider *all[] = {&agile, &dayahead, &aemo, &forecast};
	int64_t now = 1795276800; /* 2026-11-21T12:00:00Z */
	uint32_t seed;
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		for(seed = 0; seed < 200; seed++) {
			struct sched_input in = {.provider = all[i], .now = now, .retry_after = -1, .seed = seed};
			int64_t t = sched_next_poll(&in);
			assert_true(t >= now);
			assert_true(t <= now + SCHED_FIRST_JITTER_S);
		}
}

static void test_simulated_aemo_hour_polls_once_per_interval(void **state)
{
	int64_t t0 = utc("2026-11-21T10:00:00Z");
	struct sched_input in = input(&aemo, t0, t0, t0 - 240);
	int polls = 0;

	(void)state;
	for(;;) {
		int64_t t = sched_next_poll(&in);
		int64_t into;
		if(t >= t0 + 3600)
			break;
		into = (t - t0) % 300;
		assert_in_range(into, 60, 60 + SCHED_PERIODIC_JITTER_S);
		polls++;
		in.now = t;
		in.last_success = t;
		in.complete_until = t - into + 300;
	}
	assert_int_equal(polls, 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_publish_time_is_wall_clock_on_dst_days),
	        cmocka_unit_test(test_daily_nothing_held_polls_soon),
	        cmocka_unit_test(test_daily_data_short_of_today_polls_soon),
	        cmocka_unit_test(test_daily_data_for_now_missing_polls_soon),
	        cmocka_unit_test(test_daily_soon_after_fresh_success_waits_five_minutes),
	        cmocka_unit_test(test_daily_before_publish_waits_for_publish_time),
	        cmocka_unit_test(test_daily_in_window_polls_every_five_minutes),
	        cmocka_unit_test(test_daily_after_spread_polls_every_half_hour),
	        cmocka_unit_test(test_daily_tomorrow_held_rests_until_next_publish),
	        cmocka_unit_test(test_daily_rest_lands_on_dst_day_publish_time),
	        cmocka_unit_test(test_daily_waits_for_publish_on_dst_day),
	        cmocka_unit_test(test_needs_tomorrow),
	        cmocka_unit_test(test_periodic_polls_after_boundary_plus_delay),
	        cmocka_unit_test(test_periodic_far_behind_catches_up_soon),
	        cmocka_unit_test(test_revisable_uses_ttl),
	        cmocka_unit_test(test_backoff_stays_within_full_jitter_bounds),
	        cmocka_unit_test(test_failures_push_soon_poll_back),
	        cmocka_unit_test(test_retry_after_is_honoured),
	        cmocka_unit_test(test_jitter_is_deterministic_and_spreads_series),
	        cmocka_unit_test(test_next_poll_is_never_in_the_past),
	        cmocka_unit_test(test_poll_range_daily),
	        cmocka_unit_test(test_poll_range_periodic_and_revisable),
	        cmocka_unit_test(test_simulated_agile_day_polls_a_few_times),
	        cmocka_unit_test(test_simulated_agile_dst_days_poll_a_few_times),
	        cmocka_unit_test(test_simulated_cet_dst_day_polls_a_few_times),
	        cmocka_unit_test(test_simulated_late_publication_slows_down_after_window),
	        cmocka_unit_test(test_first_poll_of_an_empty_series_is_within_seconds),
	        cmocka_unit_test(test_simulated_aemo_hour_polls_once_per_interval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
