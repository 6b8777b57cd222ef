/* rtime.c - clock seam, RFC 3339, and built-in zone rules. */
#include "ratepool/rtime.h"
#include "ratepool/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_once_t clock_once = PTHREAD_ONCE_INIT;
static int64_t sim_start_ms;  /* simulated instant at real_start_ms */
static int64_t real_start_ms; /* monotonic ms when the clock was read */
static double sim_speed;      /* 0: real clock */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void clock_setup(void)
{
	const char *spec = getenv("RATEPOOL_TEST_CLOCK");
	char start[64];
	const char *comma;
	int64_t t;
	size_t n;

	if(!spec || !*spec)
		return;
	comma = strchr(spec, ',');
	n = comma ? (size_t)(comma - spec) : strlen(spec);
	if(n >= sizeof(start))
		return;
	memcpy(start, spec, n);
	start[n] = '\0';
	if(rtime_parse(start, &t))
		return;
	sim_speed = comma ? strtod(comma + 1, NULL) : 1.0;
	if(!(sim_speed > 0 && sim_speed <= 1e6))
		sim_speed = 1.0;
	sim_start_ms = t * 1000;
	real_start_ms = mono_ms();
}

int64_t rtime_now_ms(void)
{
	struct timespec ts;

	pthread_once(&clock_once, clock_setup);
	if(sim_speed > 0)
		return sim_start_ms + (int64_t)((double)(mono_ms() - real_start_ms) * sim_speed);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rtime_now(void)
{
	int64_t ms = rtime_now_ms();
	return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

double rtime_real_seconds(double sim_seconds)
{
	pthread_once(&clock_once, clock_setup);
	return sim_speed > 0 ? sim_seconds / sim_speed : sim_seconds;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t rtime_days_from_civil(int y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void rtime_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yoe + era * 400) + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Days since epoch of the last Sunday of month m in year y. */
static int64_t last_sunday(int y, unsigned m)
{
	int64_t last = rtime_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) - 1;
	int64_t wd = ((last % 7) + 7 + 4) % 7; /* 1970-01-01 was a Thursday (4) */
	return last - wd;
}

/* EU summer time: last Sunday of March 01:00 UTC to last Sunday of
 * October 01:00 UTC. */
static int eu_summer(int64_t t)
{
	int y;
	unsigned m, d;
	int64_t begin, end;

	rtime_civil_from_days(floor_div(t, 86400), &y, &m, &d);
	begin = last_sunday(y, 3) * 86400 + 3600;
	end = last_sunday(y, 10) * 86400 + 3600;
	return t >= begin && t < end;
}

int rtime_offset(enum rtime_zone zone, int64_t t)
{
	switch(zone) {
	case RTIME_LONDON:
		return eu_summer(t) ? 3600 : 0;
	case RTIME_CET:
		return eu_summer(t) ? 7200 : 3600;
	case RTIME_NEM:
		return 36000;
	case RTIME_UTC:
	default:
		return 0;
	}
}

/* UTC instant of a local wall time: try the offset that applies an hour
 * either side and keep the first that maps back onto itself. */
static int64_t local_to_utc(enum rtime_zone zone, int64_t wall)
{
	int64_t guess = wall - rtime_offset(zone, wall - 86400 / 2);
	int64_t cand[2];
	int i;

	cand[0] = wall - rtime_offset(zone, wall - 3 * 3600);
	cand[1] = wall - rtime_offset(zone, wall + 3 * 3600);
	if(cand[1] < cand[0]) {
		int64_t tmp = cand[0];
		cand[0] = cand[1];
		cand[1] = tmp;
	}
	for(i = 0; i < 2; i++)
		if(cand[i] + rtime_offset(zone, cand[i]) == wall)
			return cand[i];
	return guess;
}

int64_t rtime_day_start(enum rtime_zone zone, int64_t t)
{
	int64_t wall = t + rtime_offset(zone, t);
	int64_t midnight = floor_div(wall, 86400) * 86400;
	return local_to_utc(zone, midnight);
}

int64_t rtime_day_add(enum rtime_zone zone, int64_t t, int days)
{
	int64_t wall = t + rtime_offset(zone, t);
	int64_t midnight = (floor_div(wall, 86400) + days) * 86400;
	return local_to_utc(zone, midnight);
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	int i;

	for(i = 0; i < n; i++) {
		if((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static unsigned month_days(int y, unsigned m)
{
	static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

/* Parses the date-time part; *p is left after the seconds (and any
 * fraction). Returns 0 or RP_EINVAL. */
static int parse_wall(const char **p, int64_t *wall)
{
	int y, mo, d, h, mi, s = 0;
	const char *q = *p;

	if(!q || digits(&q, 4, &y) || *q++ != '-' || digits(&q, 2, &mo) || *q++ != '-' || digits(&q, 2, &d))
		return RP_EINVAL;
	if(*q != 'T' && *q != 't' && *q != ' ')
		return RP_EINVAL;
	q++;
	if(digits(&q, 2, &h) || *q++ != ':' || digits(&q, 2, &mi))
		return RP_EINVAL;
	if(*q == ':') {
		q++;
		if(digits(&q, 2, &s))
			return RP_EINVAL;
		if(*q == '.' || *q == ',') {
			q++;
			if(*q < '0' || *q > '9')
				return RP_EINVAL;
			while(*q >= '0' && *q <= '9')
				q++;
		}
	}
	if(y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > month_days(y, (unsigned)mo) ||
	   h > 23 || mi > 59 || s > 60)
		return RP_EINVAL;
	if(s == 60)
		s = 59;
	*wall = rtime_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
	*p = q;
	return 0;
}

int rtime_parse(const char *text, int64_t *out)
{
	const char *p = text;
	int64_t wall;
	int oh, om, sign;

	if(parse_wall(&p, &wall))
		return RP_EINVAL;
	if(*p == 'Z' || *p == 'z') {
		p++;
		oh = om = 0;
		sign = 1;
	} else if(*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if(digits(&p, 2, &oh))
			return RP_EINVAL;
		if(*p == ':')
			p++;
		if(digits(&p, 2, &om) || oh > 23 || om > 59)
			return RP_EINVAL;
	} else
		return RP_EINVAL;
	if(*p)
		return RP_EINVAL;
	*out = wall - sign * (oh * 3600 + om * 60);
	return 0;
}

int rtime_parse_local(const char *text, enum rtime_zone zone, int64_t *out)
{
	const char *p = text;
	int64_t wall;

	if(parse_wall(&p, &wall) || *p)
		return RP_EINVAL;
	*out = local_to_utc(zone, wall);
	return 0;
}

static void put_digits(char *out, unsigned v, int n)
{
	while(n--) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void rtime_format(int64_t t, char out[RTIME_TEXT_SIZE])
{
	int y;
	unsigned m, d;
	int64_t days = floor_div(t, 86400);
	int64_t sec = t - days * 86400;

	rtime_civil_from_days(days, &y, &m, &d);
	if(y < 0 || y > 9999) {
		snprintf(out, RTIME_TEXT_SIZE, "0000-00-00T00:00:00Z");
		return;
	}
	put_digits(out, (unsigned)y, 4);
	out[4] = '-';
	put_digits(out + 5, m, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = 'T';
	put_digits(out + 11, (unsigned)(sec / 3600), 2);
	out[13] = ':';
	put_digits(out + 14, (unsigned)(sec / 60 % 60), 2);
	out[16] = ':';
	put_digits(out + 17, (unsigned)(sec % 60), 2);
	out[19] = 'Z';
	out[20] = '\0';
}

static const char *cet_names[] = {
        "CET",
        "Europe/Berlin",
        "Europe/Paris",
        "Europe/Amsterdam",
        "Europe/Brussels",
        "Europe/Vienna",
        "Europe/Oslo",
        "Europe/Stockholm",
        "Europe/Copenhagen",
        "Europe/Madrid",
        "Europe/Rome",
        "Europe/Warsaw",
        "Europe/Prague",
        "Europe/Zurich",
        "Europe/Luxembourg",
        "Europe/Budapest",
};

int rtime_zone_parse(const char *name, enum rtime_zone *out)
{
	size_t i;

	if(!name)
		return RP_EINVAL;
	if(!strcasecmp(name, "UTC") || !strcasecmp(name, "Etc/UTC")) {
		*out = RTIME_UTC;
		return 0;
	}
	if(!strcasecmp(name, "Europe/London")) {
		*out = RTIME_LONDON;
		return 0;
	}
	if(!strcasecmp(name, "Australia/Brisbane") || !strcasecmp(name, "NEM")) {
		*out = RTIME_NEM;
		return 0;
	}
	for(i = 0; i < sizeof(cet_names) / sizeof(cet_names[0]); i++)
		if(!strcasecmp(name, cet_names[i])) {
			*out = RTIME_CET;
			return 0;
		}
	return RP_EINVAL;
}

const char *rtime_zone_name(enum rtime_zone zone)
{
	switch(zone) {
	case RTIME_LONDON:
		return "Europe/London";
	case RTIME_CET:
		return "Europe/Berlin";
	case RTIME_NEM:
		return "Australia/Brisbane";
	case RTIME_UTC:
	default:
		return "UTC";
	}
}
