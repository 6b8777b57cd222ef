/*
 * rtime.h - time as ratepool sees it: int64 seconds since the epoch (UTC),
 * RFC 3339 text, the few time zones the upstreams publish in, and the
 * clock seam that lets integration tests run a day in seconds.
 */
#ifndef RATEPOOL_RTIME_H
#define RATEPOOL_RTIME_H

#include <stddef.h>
#include <stdint.h>

/* "2026-11-21T16:00:00Z" plus NUL. */
#define RTIME_TEXT_SIZE 21

/* Zones whose local days matter (publication windows, "today", GC's
 * protected days). The EU rule (last Sunday of March/October at 01:00
 * UTC) is built in so no process-wide TZ variable is touched. */
enum rtime_zone {
	RTIME_UTC,
	RTIME_LONDON, /* Europe/London: UTC+0, BST UTC+1 */
	RTIME_CET,    /* Europe/Berlin etc.: UTC+1, CEST UTC+2 */
	RTIME_NEM     /* AEMO market time: AEST, UTC+10 all year */
};

/* Now, in seconds. Normally the real clock. When the process started with
 * RATEPOOL_TEST_CLOCK="<RFC 3339 start>[,<speed>]" (e.g.
 * "2026-11-21T12:00:00Z,600"), time starts at that instant and runs
 * `speed` times faster than real time: the seam that lets a simulated day
 * of publication windows run in seconds. Thread-safe. */
int64_t rtime_now(void);

/* Same clock in milliseconds (for timeouts and latency). */
int64_t rtime_now_ms(void);

/* Real seconds to sleep so that `sim_seconds` pass on rtime_now(). */
double rtime_real_seconds(double sim_seconds);

/* Parses RFC 3339 / ISO 8601 date-time: "2026-11-21T16:00:00Z",
 * "...+01:00", "...+0100", fractional seconds (dropped), a space instead
 * of 'T'. A missing offset is refused (ambiguous). Returns 0 or RP_EINVAL. */
int rtime_parse(const char *text, int64_t *out);

/* Parses a local time without offset ("2026-11-21T16:00:00") as wall time
 * in `zone`. For a wall time that occurs twice (DST end) the first is
 * taken; one that never occurs (DST start) is taken as if the old offset
 * still applied. Returns 0 or RP_EINVAL. */
int rtime_parse_local(const char *text, enum rtime_zone zone, int64_t *out);

/* Writes t as "YYYY-MM-DDTHH:MM:SSZ" into out (RTIME_TEXT_SIZE bytes). */
void rtime_format(int64_t t, char out[RTIME_TEXT_SIZE]);

/* Parses "UTC", "Europe/London", "Europe/Berlin" (and the other CET
 * capitals: Paris, Amsterdam, Brussels, Vienna, Oslo, Stockholm,
 * Copenhagen, Madrid, Rome, Warsaw, Prague, Zurich, Luxembourg, Budapest),
 * "CET", "Australia/Brisbane", "NEM". Returns 0 or RP_EINVAL. */
int rtime_zone_parse(const char *name, enum rtime_zone *out);
const char *rtime_zone_name(enum rtime_zone zone);

/* UTC offset of `zone` at instant t, in seconds (e.g. 3600 in BST). */
int rtime_offset(enum rtime_zone zone, int64_t t);

/* UTC instant of the local midnight that starts the local day holding t. */
int64_t rtime_day_start(enum rtime_zone zone, int64_t t);

/* UTC instant of local midnight `days` days after (or before, when
 * negative) the local day holding t. A local day is 23, 24 or 25 hours. */
int64_t rtime_day_add(enum rtime_zone zone, int64_t t, int days);

/* Days since 1970-01-01 of a civil date, and back (proleptic Gregorian). */
int64_t rtime_days_from_civil(int y, unsigned m, unsigned d);
void rtime_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d);

#endif
