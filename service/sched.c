/* sched.c - poll times by publication window, with deterministic jitter. */
#include "ratepool/sched.h"
#include "ratepool/rtime.h"

#include <stddef.h>

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* splitmix64's finaliser over (seed, key): well spread, cheap, and the
 * same inputs always give the same jitter. */
static uint64_t mix(uint32_t seed, uint64_t key)
{
	uint64_t z = key + 0x9e3779b97f4a7c15ULL * ((uint64_t)seed + 1);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform-ish in [0, max]. */
static int64_t jitter(uint32_t seed, int64_t key, int64_t max)
{
	if(max <= 0)
		return 0;
	return (int64_t)(mix(seed, (uint64_t)key) % (uint64_t)(max + 1));
}

static int64_t period_of(const struct provider *p)
{
	if(p->period_s > 0)
		return p->period_s;
	if(p->resolution > 0)
		return p->resolution;
	return 300;
}

/* UTC instant of wall-clock time `wall` (seconds since the epoch as if the
 * zone were UTC). Of two instants (DST end) the first; a wall time that
 * never occurs (DST start) is read with the offset in force before it. */
static int64_t wall_to_utc(enum rtime_zone zone, int64_t wall)
{
	int64_t a = wall - rtime_offset(zone, wall - 3 * 3600);
	int64_t b = wall - rtime_offset(zone, wall + 3 * 3600);
	int64_t lo = a < b ? a : b;
	int64_t hi = a < b ? b : a;

	if(lo + rtime_offset(zone, lo) == wall)
		return lo;
	if(hi + rtime_offset(zone, hi) == wall)
		return hi;
	return wall - rtime_offset(zone, wall - 3 * 3600);
}

int64_t sched_publish_time(const struct provider *p, int64_t t)
{
	int64_t wall = t + rtime_offset(p->zone, t);
	int64_t midnight = floor_div(wall, 86400) * 86400;

	/* Wall clock, not "midnight + n hours": on a 23-hour day 16:00 local
	 * is 15 hours after midnight. */
	return wall_to_utc(p->zone, midnight + (int64_t)p->publish_minute * 60);
}

int64_t sched_backoff(int failures, uint32_t seed, int64_t now)
{
	int64_t ceiling = SCHED_BACKOFF_BASE_S;
	int64_t d;
	int i;

	if(failures <= 0)
		return 0;
	for(i = 1; i < failures && ceiling < SCHED_BACKOFF_CAP_S; i++)
		ceiling *= 2;
	if(ceiling > SCHED_BACKOFF_CAP_S)
		ceiling = SCHED_BACKOFF_CAP_S;
	d = jitter(seed ^ 0x5bd1e995u, (int64_t)(((uint64_t)(unsigned)failures << 40) ^ (uint64_t)now),
	           ceiling);
	return d < SCHED_BACKOFF_MIN_S ? SCHED_BACKOFF_MIN_S : d;
}

uint32_t sched_seed(const char *provider, const char *id)
{
	uint32_t h = 2166136261u;
	const char *parts[2] = {provider ? provider : "", id ? id : ""};
	int i;

	for(i = 0; i < 2; i++) {
		const unsigned char *s = (const unsigned char *)parts[i];
		if(i) {
			h ^= '/';
			h *= 16777619u;
		}
		for(; *s; s++) {
			h ^= *s;
			h *= 16777619u;
		}
	}
	return h;
}

bool sched_needs_tomorrow(const struct provider *p, int64_t now, int64_t complete_until)
{
	if(!p || p->cadence != PROVIDER_DAILY || p->revisable)
		return false;
	return complete_until < rtime_day_add(p->zone, now, 2) - SCHED_DAY_SLACK_S;
}

/* "Poll soon", unless a fetch succeeded moments ago and still did not
 * bring the data: then the upstream does not have it yet, and asking
 * every 30 s would hammer it. */
static int64_t soon(const struct sched_input *in)
{
	int64_t since = in->now - in->last_success;

	if(in->last_success > 0 && since >= 0 && since < SCHED_WINDOW_INTERVAL_S)
		return in->last_success + SCHED_WINDOW_INTERVAL_S +
		       jitter(in->seed, in->last_success, SCHED_WINDOW_JITTER_S);
	return in->now + jitter(in->seed, in->now, SCHED_SOON_JITTER_S);
}

static int64_t daily_next(const struct sched_input *in)
{
	const struct provider *p = in->provider;
	int64_t now = in->now;
	int64_t cu = in->complete_until;
	int64_t t1 = rtime_day_add(p->zone, now, 1);
	int64_t t2 = rtime_day_add(p->zone, now, 2);
	int64_t pub;

	if(cu <= now || cu < t1 - SCHED_DAY_SLACK_S)
		return soon(in);
	if(cu >= t2 - SCHED_DAY_SLACK_S) {
		pub = sched_publish_time(p, t1);
		return pub + jitter(in->seed, pub, SCHED_PUBLISH_JITTER_S);
	}
	pub = sched_publish_time(p, now);
	if(now < pub)
		return pub + jitter(in->seed, pub, SCHED_PUBLISH_JITTER_S);
	if(now < pub + (p->publish_spread_s > 0 ? p->publish_spread_s : 0))
		return now + SCHED_WINDOW_INTERVAL_S + jitter(in->seed, now, SCHED_WINDOW_JITTER_S);
	return now + SCHED_LATE_INTERVAL_S + jitter(in->seed, now, SCHED_PUBLISH_JITTER_S);
}

static int64_t periodic_next(const struct sched_input *in)
{
	const struct provider *p = in->provider;
	int64_t per = period_of(p);
	int64_t delay = p->delay_s > 0 ? p->delay_s : 0;
	int64_t now = in->now;
	int64_t t;

	/* Far behind (startup, outage): catch up now rather than at the next
	 * boundary, but not more than once a period after a success. */
	if(in->complete_until < now - 2 * per && (in->last_success <= 0 || now - in->last_success >= per))
		return now + jitter(in->seed, now, SCHED_PERIODIC_JITTER_S);
	/* First "boundary + delay" strictly after now, so a boundary that has
	 * passed but whose data is not out yet is not skipped. */
	t = floor_div(now - delay, per) * per + per + delay;
	return t + jitter(in->seed, t, SCHED_PERIODIC_JITTER_S);
}

static int64_t revisable_next(const struct sched_input *in)
{
	int64_t ttl = in->forecast_ttl_s > 0 ? in->forecast_ttl_s : SCHED_DEFAULT_TTL_S;
	int64_t t;

	if(in->last_success <= 0)
		return in->now + jitter(in->seed, in->now, SCHED_SOON_JITTER_S);
	t = in->last_success + ttl;
	if(t < in->now)
		return in->now + jitter(in->seed, in->now, SCHED_SOON_JITTER_S);
	return t;
}

int64_t sched_next_poll(const struct sched_input *in)
{
	const struct provider *p = in->provider;
	int64_t now = in->now;
	int64_t t;

	if(!p)
		return now;
	if(in->complete_until <= 0 && in->last_success <= 0 && in->failures <= 0)
		return now +
		       jitter(in->seed, now, SCHED_FIRST_JITTER_S); /* nothing held: a user is waiting */
	if(p->revisable)
		t = revisable_next(in);
	else if(p->cadence == PROVIDER_DAILY)
		t = daily_next(in);
	else
		t = periodic_next(in);

	if(in->failures > 0) {
		int64_t b = sched_backoff(in->failures, in->seed, now);
		if(t < now + b)
			t = now + b;
	}
	if(in->retry_after >= 0) {
		int64_t ra =
		        in->retry_after > SCHED_RETRY_AFTER_MAX ? SCHED_RETRY_AFTER_MAX : in->retry_after;
		if(t < now + ra)
			t = now + ra;
	}
	return t < now ? now : t;
}

void sched_poll_range(const struct provider *p, int64_t now, int64_t complete_until, int forecast_horizon_s,
                      struct store_range *out)
{
	int64_t from, to, per;

	if(!p) {
		out->from = out->to = now;
		return;
	}
	per = period_of(p);
	if(p->revisable) {
		int64_t h = forecast_horizon_s > 0 ? forecast_horizon_s : SCHED_DEFAULT_HORIZON_S;
		from = floor_div(now, per) * per;
		to = -floor_div(-(now + h), per) * per;
	} else if(p->cadence == PROVIDER_DAILY) {
		from = rtime_day_add(p->zone, now, -1);
		if(complete_until > from)
			from = complete_until;
		to = rtime_day_add(p->zone, now, 2);
	} else {
		from = now - 86400;
		if(complete_until > from)
			from = complete_until;
		from = floor_div(from, per) * per;
		to = floor_div(now, per) * per + per;
	}
	if(from > to)
		from = to;
	out->from = from;
	out->to = to;
}
