/* test_rtime.c - RFC 3339, the built-in zone rules, local days, the clock seam. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratepool/error.h"
#include "ratepool/rtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The simulated start given to the clock seam in main(). */
#define CLOCK_START "2026-11-21T12:00:00Z"

static int64_t at(const char *text)
{
	int64_t t = 0;
	assert_int_equal(rtime_parse(text, &t), 0);
	return t;
}

static void assert_formats(int64_t t, const char *want)
{
	char buf[RTIME_TEXT_SIZE];
	rtime_format(t, buf);
	assert_string_equal(buf, want);
}

/* --- RFC 3339 -------------------------------------------------------------- */

static void test_parse_utc_known_instants(void **state)
{
	assert_int_equal(at("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(at("2026-11-21T16:00:00Z"), 20778LL * 86400 + 16 * 3600);
	assert_int_equal(at("2000-02-29T23:59:59Z"), 951868799LL);
}

static void test_parse_format_round_trip_utc(void **state)
{
	static const char *texts[] = {
	        "1970-01-01T00:00:00Z", "2026-03-29T01:00:00Z", "2026-10-25T00:59:59Z",
	        "2024-02-29T12:34:56Z", "2099-12-31T23:59:59Z", "9999-12-31T23:59:59Z",
	};
	size_t i;

	for(i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		assert_formats(at(texts[i]), texts[i]);
}

static void test_parse_offsets_give_the_same_instant(void **state)
{
	int64_t utc = at("2026-11-21T16:00:00Z");

	assert_int_equal(at("2026-11-21T17:00:00+01:00"), utc);
	assert_int_equal(at("2026-11-21T17:00:00+0100"), utc);
	assert_int_equal(at("2026-11-22T02:00:00+10:00"), utc);
	assert_int_equal(at("2026-11-21T10:30:00-05:30"), utc);
	assert_int_equal(at("2026-11-21T16:00:00+00:00"), utc);
	assert_int_equal(at("2026-11-21T16:00:00-00:00"), utc);
	assert_formats(at("2026-01-01T00:30:00+01:00"), "2025-12-31T23:30:00Z");
}

static void test_parse_accepts_fractions_space_and_lower_case(void **state)
{
	int64_t utc = at("2026-11-21T16:00:00Z");

	assert_int_equal(at("2026-11-21T16:00:00.000Z"), utc);
	assert_int_equal(at("2026-11-21T16:00:00.999999Z"), utc);
	assert_int_equal(at("2026-11-21T16:00:00,5Z"), utc);
	assert_int_equal(at("2026-11-21T17:00:00.25+01:00"), utc);
	assert_int_equal(at("2026-11-21 16:00:00Z"), utc);
	assert_int_equal(at("2026-11-21t16:00:00z"), utc);
	/* Seconds may be left out; a leap second is clamped to :59. */
	assert_int_equal(at("2026-11-21T16:00Z"), utc);
	assert_int_equal(at("2016-12-31T23:59:60Z"), at("2016-12-31T23:59:59Z"));
}

static void test_parse_rejects_bad_text(void **state)
{
	static const char *bad[] = {
	        "",
	        "2026-11-21",
	        "2026-11-21T16:00:00", /* no offset: ambiguous */
	        "2026-11-21T16:00:00 Z",
	        "2026-11-21T16:00:00Zjunk",
	        "2026-11-21T16:00:00+01", /* offset without minutes */
	        "2026-11-21T16:00:00+1:00",
	        "2026-11-21T16:00:00+24:00",
	        "2026-11-21T16:00:00+01:60",
	        "2026-11-21T16:00:00.Z", /* empty fraction */
	        "2026-13-01T00:00:00Z",
	        "2026-00-01T00:00:00Z",
	        "2026-02-29T00:00:00Z", /* not a leap year */
	        "2100-02-29T00:00:00Z",
	        "2026-04-31T00:00:00Z",
	        "2026-11-00T00:00:00Z",
	        "2026-11-21T24:00:00Z",
	        "2026-11-21T23:60:00Z",
	        "2026-11-21T23:59:61Z",
	        "2026-1-21T16:00:00Z",
	        "26-11-21T16:00:00Z",
	        "1969-12-31T23:59:59Z", /* before the epoch */
	        "2026-11-21X16:00:00Z",
	        "2026-11-21T16-00-00Z",
	        "  2026-11-21T16:00:00Z",
	        "2026-11-21T16:00:00Z\n",
	};
	size_t i;
	int64_t t = 12345;

	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if(rtime_parse(bad[i], &t) != RP_EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(t, 12345); /* untouched on error */
	}
	assert_int_equal(rtime_parse(NULL, &t), RP_EINVAL);
}

static void test_parse_leap_days(void **state)
{
	assert_formats(at("2024-02-29T00:00:00Z") + 86400, "2024-03-01T00:00:00Z");
	assert_formats(at("2000-02-29T00:00:00Z") + 86400, "2000-03-01T00:00:00Z");
	assert_formats(at("2026-02-28T00:00:00Z") + 86400, "2026-03-01T00:00:00Z");
}

static void test_format_out_of_range_is_marked(void **state)
{
	assert_formats(-1, "1969-12-31T23:59:59Z");
	assert_formats(rtime_days_from_civil(10000, 1, 1) * 86400, "0000-00-00T00:00:00Z");
	assert_formats(rtime_days_from_civil(-1, 1, 1) * 86400, "0000-00-00T00:00:00Z");
}

static void test_parse_local_wall_times(void **state)
{
	int64_t t;

	assert_int_equal(rtime_parse_local("2026-11-21T16:00:00", RTIME_LONDON, &t), 0);
	assert_int_equal(t, at("2026-11-21T16:00:00Z"));
	assert_int_equal(rtime_parse_local("2026-07-01T12:00:00", RTIME_LONDON, &t), 0);
	assert_int_equal(t, at("2026-07-01T11:00:00Z"));
	assert_int_equal(rtime_parse_local("2026-07-01T12:00:00", RTIME_CET, &t), 0);
	assert_int_equal(t, at("2026-07-01T10:00:00Z"));
	assert_int_equal(rtime_parse_local("2026-07-01T12:00:00", RTIME_NEM, &t), 0);
	assert_int_equal(t, at("2026-07-01T02:00:00Z"));
	assert_int_equal(rtime_parse_local("2026-07-01T12:00:00", RTIME_UTC, &t), 0);
	assert_int_equal(t, at("2026-07-01T12:00:00Z"));
	/* A wall time that occurs twice (DST end) is its first occurrence. */
	assert_int_equal(rtime_parse_local("2026-10-25T01:30:00", RTIME_LONDON, &t), 0);
	assert_int_equal(t, at("2026-10-25T00:30:00Z"));
	assert_int_equal(rtime_parse_local("2026-10-25T02:30:00", RTIME_CET, &t), 0);
	assert_int_equal(t, at("2026-10-25T00:30:00Z"));
	/* One that never occurs (DST start) keeps the old offset. */
	assert_int_equal(rtime_parse_local("2026-03-29T01:30:00", RTIME_LONDON, &t), 0);
	assert_int_equal(t, at("2026-03-29T01:30:00Z"));
	assert_int_equal(rtime_parse_local("2026-03-29T02:30:00", RTIME_CET, &t), 0);
	assert_int_equal(t, at("2026-03-29T01:30:00Z"));
	/* An offset is not allowed in local text. */
	assert_int_equal(rtime_parse_local("2026-07-01T12:00:00Z", RTIME_UTC, &t), RP_EINVAL);
	assert_int_equal(rtime_parse_local("2026-07-01", RTIME_UTC, &t), RP_EINVAL);
}

/* --- zones ------------------------------------------------------------------ */

static void test_offsets_around_2026_eu_dst_changes(void **state)
{
	int64_t spring = at("2026-03-29T01:00:00Z");
	int64_t autumn = at("2026-10-25T01:00:00Z");

	assert_int_equal(rtime_offset(RTIME_LONDON, spring - 1), 0);
	assert_int_equal(rtime_offset(RTIME_LONDON, spring), 3600);
	assert_int_equal(rtime_offset(RTIME_LONDON, autumn - 1), 3600);
	assert_int_equal(rtime_offset(RTIME_LONDON, autumn), 0);

	assert_int_equal(rtime_offset(RTIME_CET, spring - 1), 3600);
	assert_int_equal(rtime_offset(RTIME_CET, spring), 7200);
	assert_int_equal(rtime_offset(RTIME_CET, autumn - 1), 7200);
	assert_int_equal(rtime_offset(RTIME_CET, autumn), 3600);

	assert_int_equal(rtime_offset(RTIME_NEM, spring), 36000);
	assert_int_equal(rtime_offset(RTIME_NEM, autumn), 36000);
	assert_int_equal(rtime_offset(RTIME_UTC, spring), 0);
}

/* Compares the built-in rule with the system's tz database for every hour
 * (and the seconds either side of each change) from 2000 to 2037. */
static void check_zone_against_tzdata(enum rtime_zone zone, const char *tz)
{
	char path[128];
	int64_t t, from = at("2000-01-01T00:00:00Z"), to = at("2037-12-31T00:00:00Z");
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	if(access(path, R_OK)) {
		free(old);
		skip();
	}
	setenv("TZ", tz, 1);
	tzset();
	for(t = from; t < to; t += 3600) {
		int64_t probes[3] = {t - 1, t, t + 1};
		int i;
		for(i = 0; i < 3; i++) {
			time_t tt = (time_t)probes[i];
			struct tm tm;
			localtime_r(&tt, &tm);
			if(rtime_offset(zone, probes[i]) != tm.tm_gmtoff) {
				char buf[RTIME_TEXT_SIZE];
				rtime_format(probes[i], buf);
				fail_msg("%s at %s: %d, tzdata %ld", tz, buf, rtime_offset(zone, probes[i]),
				         (long)tm.tm_gmtoff);
			}
		}
	}
	if(old)
		setenv("TZ", old, 1);
	else
		unsetenv("TZ");
	tzset();
	free(old);
}

static void test_london_rule_matches_tzdata(void **state)
{
	check_zone_against_tzdata(RTIME_LONDON, "Europe/London");
}

static void test_cet_rule_matches_tzdata(void **state)
{
	check_zone_against_tzdata(RTIME_CET, "Europe/Berlin");
}

static void test_nem_rule_matches_tzdata(void **state)
{
	check_zone_against_tzdata(RTIME_NEM, "Australia/Brisbane");
}

static void assert_day(enum rtime_zone zone, const char *inside, const char *start, int hours)
{
	int64_t t = at(inside);
	int64_t s = rtime_day_start(zone, t);
	int64_t next = rtime_day_add(zone, t, 1);

	assert_formats(s, start);
	assert_int_equal(next - s, hours * 3600);
	/* Any instant of the day gives the same start, and the next day's
	 * start is where this day ends. */
	assert_int_equal(rtime_day_start(zone, s), s);
	assert_int_equal(rtime_day_start(zone, next - 1), s);
	assert_int_equal(rtime_day_start(zone, next), next);
	assert_int_equal(rtime_day_add(zone, t, 0), s);
	assert_int_equal(rtime_day_add(zone, next, -1), s);
}

static void test_london_days_are_23_24_25_hours(void **state)
{
	assert_day(RTIME_LONDON, "2026-03-29T12:00:00Z", "2026-03-29T00:00:00Z", 23);
	assert_day(RTIME_LONDON, "2026-03-28T12:00:00Z", "2026-03-28T00:00:00Z", 24);
	assert_day(RTIME_LONDON, "2026-03-30T12:00:00Z", "2026-03-29T23:00:00Z", 24);
	assert_day(RTIME_LONDON, "2026-10-25T12:00:00Z", "2026-10-24T23:00:00Z", 25);
	assert_day(RTIME_LONDON, "2026-10-26T12:00:00Z", "2026-10-26T00:00:00Z", 24);
	/* A UK DST day holds 46 and 50 half-hours. */
	assert_int_equal((rtime_day_add(RTIME_LONDON, at("2026-03-29T12:00:00Z"), 1) -
	                  rtime_day_start(RTIME_LONDON, at("2026-03-29T12:00:00Z"))) /
	                         1800,
	                 46);
	assert_int_equal((rtime_day_add(RTIME_LONDON, at("2026-10-25T12:00:00Z"), 1) -
	                  rtime_day_start(RTIME_LONDON, at("2026-10-25T12:00:00Z"))) /
	                         1800,
	                 50);
}

static void test_cet_days_are_23_24_25_hours(void **state)
{
	assert_day(RTIME_CET, "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z", 23);
	assert_day(RTIME_CET, "2026-03-28T12:00:00Z", "2026-03-27T23:00:00Z", 24);
	assert_day(RTIME_CET, "2026-03-30T12:00:00Z", "2026-03-29T22:00:00Z", 24);
	assert_day(RTIME_CET, "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z", 25);
	assert_day(RTIME_CET, "2026-10-26T12:00:00Z", "2026-10-25T23:00:00Z", 24);
	/* Just after local midnight the local day is the new one. */
	assert_day(RTIME_CET, "2026-10-24T22:00:00Z", "2026-10-24T22:00:00Z", 25);
	assert_day(RTIME_CET, "2026-10-24T21:59:59Z", "2026-10-23T22:00:00Z", 24);
}

static void test_nem_and_utc_days_are_always_24_hours(void **state)
{
	assert_day(RTIME_NEM, "2026-03-29T12:00:00Z", "2026-03-28T14:00:00Z", 24);
	assert_day(RTIME_NEM, "2026-03-29T14:00:00Z", "2026-03-29T14:00:00Z", 24);
	assert_day(RTIME_NEM, "2026-03-29T13:59:59Z", "2026-03-28T14:00:00Z", 24);
	assert_day(RTIME_NEM, "2026-10-04T12:00:00Z", "2026-10-03T14:00:00Z", 24);
	assert_day(RTIME_UTC, "2026-03-29T12:00:00Z", "2026-03-29T00:00:00Z", 24);
	assert_day(RTIME_UTC, "2026-10-25T00:00:00Z", "2026-10-25T00:00:00Z", 24);
}

static void test_day_add_crosses_dst_changes(void **state)
{
	int64_t t = at("2026-03-27T12:00:00Z");

	/* Friday before the spring change to Monday after: 24+24+23 hours. */
	assert_formats(rtime_day_add(RTIME_LONDON, t, 3), "2026-03-29T23:00:00Z");
	assert_formats(rtime_day_add(RTIME_CET, t, 3), "2026-03-29T22:00:00Z");
	assert_formats(rtime_day_add(RTIME_LONDON, at("2026-10-27T12:00:00Z"), -2), "2026-10-24T23:00:00Z");
	assert_formats(rtime_day_add(RTIME_CET, at("2026-10-27T12:00:00Z"), -2), "2026-10-24T22:00:00Z");
	assert_formats(rtime_day_add(RTIME_LONDON, at("2026-01-15T12:00:00Z"), 365), "2027-01-15T00:00:00Z");
	assert_formats(rtime_day_add(RTIME_CET, at("2026-12-31T23:30:00Z"), 0), "2026-12-31T23:00:00Z");
}

static void test_zone_names(void **state)
{
	enum rtime_zone z = RTIME_UTC;

	assert_int_equal(rtime_zone_parse("Europe/London", &z), 0);
	assert_int_equal(z, RTIME_LONDON);
	assert_int_equal(rtime_zone_parse("Europe/Berlin", &z), 0);
	assert_int_equal(z, RTIME_CET);
	assert_int_equal(rtime_zone_parse("Europe/Stockholm", &z), 0);
	assert_int_equal(z, RTIME_CET);
	assert_int_equal(rtime_zone_parse("CET", &z), 0);
	assert_int_equal(z, RTIME_CET);
	assert_int_equal(rtime_zone_parse("NEM", &z), 0);
	assert_int_equal(z, RTIME_NEM);
	assert_int_equal(rtime_zone_parse("Australia/Brisbane", &z), 0);
	assert_int_equal(z, RTIME_NEM);
	assert_int_equal(rtime_zone_parse("UTC", &z), 0);
	assert_int_equal(z, RTIME_UTC);
	z = RTIME_NEM;
	assert_int_equal(rtime_zone_parse("Europe/Lisbon", &z), RP_EINVAL);
	assert_int_equal(rtime_zone_parse("", &z), RP_EINVAL);
	assert_int_equal(rtime_zone_parse(NULL, &z), RP_EINVAL);
	assert_int_equal(z, RTIME_NEM);

	/* Every name given out parses back to its zone. */
	for(z = RTIME_UTC; z <= RTIME_NEM; z++) {
		enum rtime_zone back;
		assert_int_equal(rtime_zone_parse(rtime_zone_name(z), &back), 0);
		assert_int_equal(back, z);
	}
}

/* --- civil dates -------------------------------------------------------------- */

static void test_days_from_civil_known_dates(void **state)
{
	assert_int_equal(rtime_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(rtime_days_from_civil(1969, 12, 31), -1);
	assert_int_equal(rtime_days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(rtime_days_from_civil(2026, 3, 29), 20541);
	assert_int_equal(rtime_days_from_civil(2026, 11, 21), 20778);
	assert_int_equal(rtime_days_from_civil(2400, 2, 29), 157113);
	assert_int_equal(rtime_days_from_civil(9999, 12, 31), 2932896);
	assert_int_equal(rtime_days_from_civil(1600, 1, 1), -135140);
}

static void test_days_from_civil_round_trip(void **state)
{
	int64_t z;
	int y, prev_y = 0;
	unsigned m, d, prev_m = 0, prev_d = 0;

	for(z = -800000; z <= 3000000; z++) {
		rtime_civil_from_days(z, &y, &m, &d);
		if(rtime_days_from_civil(y, m, d) != z)
			fail_msg("day %lld gives %d-%u-%u", (long long)z, y, m, d);
		/* Consecutive days: the day of month steps by one or restarts. */
		if(z > -800000 && !(d == prev_d + 1 && m == prev_m && y == prev_y) &&
		   !(d == 1 && (m == prev_m + 1 || (m == 1 && prev_m == 12 && y == prev_y + 1))))
			fail_msg("day %lld: %d-%u-%u follows %d-%u-%u", (long long)z, y, m, d, prev_y, prev_m,
			         prev_d);
		prev_y = y;
		prev_m = m;
		prev_d = d;
	}
}

/* --- the clock seam -------------------------------------------------------------- */

static void test_test_clock_starts_at_the_given_instant(void **state)
{
	int64_t start = at(CLOCK_START);
	int64_t now = rtime_now();
	int64_t now_ms = rtime_now_ms();

	/* Speed 60 (main): a day of simulated time would take 24 real minutes. */
	assert_true(now >= start && now < start + 86400);
	assert_true(now_ms >= start * 1000 && now_ms < (start + 86400) * 1000);
	assert_true(rtime_now() >= now);
}

static void test_test_clock_scales_sleeps(void **state)
{
	assert_true(rtime_real_seconds(600.0) > 9.999 && rtime_real_seconds(600.0) < 10.001);
	assert_true(rtime_real_seconds(0.0) == 0.0);
}

/* The clock's setup runs once per process, so other specs are checked in
 * a fresh copy of this binary (re-executed with --clock-child MODE). */
static int in_child(const char *spec, const char *mode)
{
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if(pid == 0) {
		if(spec)
			setenv("RATEPOOL_TEST_CLOCK", spec, 1);
		else
			unsetenv("RATEPOOL_TEST_CLOCK");
		execl("/proc/self/exe", "test_rtime", "--clock-child", mode, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Child checks: 0 when the clock behaves as `mode` says. */
static int clock_child(const char *mode)
{
	int64_t start = 0;
	int64_t real = (int64_t)time(NULL);
	int64_t now = rtime_now();

	if(rtime_parse(CLOCK_START, &start))
		return 3;
	if(!strcmp(mode, "sim-real-speed"))
		return now >= start && now < start + 3600 && rtime_real_seconds(5.0) == 5.0 ? 0 : 1;
	if(!strcmp(mode, "real"))
		return now >= real - 5 && now <= real + 3600 && rtime_real_seconds(5.0) == 5.0 ? 0 : 1;
	return 2;
}

static void test_test_clock_without_speed_runs_at_real_speed(void **state)
{
	assert_int_equal(in_child("2026-11-21T12:00:00Z", "sim-real-speed"), 0);
	assert_int_equal(in_child("2026-11-21T13:00:00+01:00", "sim-real-speed"), 0);
}

static void test_bad_test_clock_is_ignored(void **state)
{
	assert_int_equal(in_child(NULL, "real"), 0);
	assert_int_equal(in_child("", "real"), 0);
	assert_int_equal(in_child("tomorrow", "real"), 0);
	assert_int_equal(in_child("2026-11-21T12:00:00", "real"), 0);
	/* A nonsense speed falls back to real speed from the given start. */
	assert_int_equal(in_child("2026-11-21T12:00:00Z,fast", "sim-real-speed"), 0);
	assert_int_equal(in_child("2026-11-21T12:00:00Z,-5", "sim-real-speed"), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_utc_known_instants),
	        cmocka_unit_test(test_parse_format_round_trip_utc),
	        cmocka_unit_test(test_parse_offsets_give_the_same_instant),
	        cmocka_unit_test(test_parse_accepts_fractions_space_and_lower_case),
	        cmocka_unit_test(test_parse_rejects_bad_text),
	        cmocka_unit_test(test_parse_leap_days),
	        cmocka_unit_test(test_format_out_of_range_is_marked),
	        cmocka_unit_test(test_parse_local_wall_times),
	        cmocka_unit_test(test_offsets_around_2026_eu_dst_changes),
	        cmocka_unit_test(test_london_rule_matches_tzdata),
	        cmocka_unit_test(test_cet_rule_matches_tzdata),
	        cmocka_unit_test(test_nem_rule_matches_tzdata),
	        cmocka_unit_test(test_london_days_are_23_24_25_hours),
	        cmocka_unit_test(test_cet_days_are_23_24_25_hours),
	        cmocka_unit_test(test_nem_and_utc_days_are_always_24_hours),
	        cmocka_unit_test(test_day_add_crosses_dst_changes),
	        cmocka_unit_test(test_zone_names),
	        cmocka_unit_test(test_days_from_civil_known_dates),
	        cmocka_unit_test(test_days_from_civil_round_trip),
	        cmocka_unit_test(test_test_clock_starts_at_the_given_instant),
	        cmocka_unit_test(test_test_clock_scales_sleeps),
	        cmocka_unit_test(test_test_clock_without_speed_runs_at_real_speed),
	        cmocka_unit_test(test_bad_test_clock_is_ignored),
	};

	if(argc == 3 && !strcmp(argv[1], "--clock-child"))
		return clock_child(argv[2]);
	/* The clock seam is read once, at the first use of the clock: set it
	 * before any test runs. */
	setenv("RATEPOOL_TEST_CLOCK", CLOCK_START ",60", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
