/* config.c - settings from built-in defaults, a JSON file and the environment.
 *
 * Every setting is one row of `settings` below: its JSON key (the
 * environment variable is RATEPOOL_ plus the key in upper case), its kind
 * (which parser checks it), flags and its default as text. Defaults go
 * through the same parser as user values, so a default can never be a
 * value the parser would refuse. docs/configuration.md documents exactly
 * these rows (tests/test_config.c checks that it names every one).
 */
#include "ratepool/config.h"
#include "ratepool/error.h"
#include "ratepool/log.h"
#include "ratepool/series.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define ENV_PREFIX      "RATEPOOL_"
#define SECRET_FILE_MAX (64 * 1024)
#define TEXT_MAX        4096 /* longest string setting (tokens, paths) */
#define URL_MAX         1024
#define TOPIC_MAX       128
#define NAME_MAX_LEN    64 /* longest key or variable name */
#define WHERE_MAX       320

enum kind {
	K_STR,       /* printable text */
	K_MQTT_URL,  /* tcp://, ssl://, mqtt://, mqtts://, ws://, wss:// */
	K_HTTP_URL,  /* http:// or https:// base URL, trailing '/' dropped */
	K_TOPIC,     /* MQTT topic prefix: no wildcards, no empty levels */
	K_PATH,      /* file system path */
	K_FILE,      /* path of a file that must be readable now */
	K_CLIENT_ID, /* MQTT client id */
	K_SIGNAL,    /* WattTime signal type: [a-z0-9_]{1,32} */
	K_LEVEL,     /* log level name */
	K_SIZE,      /* bytes, uint64_t field: 256MiB */
	K_ISIZE,     /* bytes, int field */
	K_INT,       /* int field with a range */
	K_SERIES,    /* provider/id,provider/id */
	K_ACCOUNTS,  /* alias:A-1234ABCD,alias:A-... */
};

#define F_SECRET   1u /* masked in dumps, may come from _FILE, scrubbed from logs */
#define F_OPTIONAL 2u /* an empty value (or JSON null) means unset: NULL */
#define F_EMPTY_OK 4u /* "" is a value of its own (discovery_prefix: off) */

struct setting {
	const char *key;
	enum kind kind;
	unsigned flags;
	size_t offset;
	long long min, max; /* K_INT, K_SIZE, K_ISIZE */
	const char *def;    /* default as text; NULL: unset (or computed) */
};

#define STR(key, kind, flags, def)                                                                           \
	{                                                                                                    \
#key, kind, flags, offsetof(struct config, key), 0, 0, def                                   \
	}
#define INT(key, min, max, def)                                                                              \
	{                                                                                                    \
#key, K_INT, 0, offsetof(struct config, key), min, max, def                                  \
	}
#define SIZE(key, kind, min, max, def)                                                                       \
	{                                                                                                    \
#key, kind, 0, offsetof(struct config, key), min, max, def                                   \
	}

#define KiB 1024LL
#define MiB (1024LL * KiB)
#define GiB (1024LL * MiB)
#define TiB (1024LL * GiB)

/* The one table of settings. Keep docs/configuration.md in step. */
static const struct setting settings[] = {
        STR(mqtt_url, K_MQTT_URL, 0, "tcp://127.0.0.1:1883"),
        STR(mqtt_username, K_STR, F_OPTIONAL, NULL),
        STR(mqtt_password, K_STR, F_OPTIONAL | F_SECRET, NULL),
        STR(mqtt_ca_file, K_FILE, F_OPTIONAL, NULL),
        STR(mqtt_client_id, K_CLIENT_ID, 0, NULL), /* computed: ratepool-<host>-<pid> */
        STR(topic_prefix, K_TOPIC, 0, "ratepool"),
        STR(discovery_prefix, K_TOPIC, F_EMPTY_OK, "homeassistant"),
        STR(store, K_PATH, 0, "./var/ratepool"),
        SIZE(store_max_bytes, K_SIZE, MiB, TiB, "256MiB"),
        {"log_level", K_LEVEL, 0, offsetof(struct config, log_level), 0, 0, "info"},
        STR(log_file, K_PATH, F_OPTIONAL, NULL),
        {"series", K_SERIES, 0, offsetof(struct config, series), 0, 0, ""},
        STR(octopus_url, K_HTTP_URL, 0, "https://api.octopus.energy"),
        STR(tibber_url, K_HTTP_URL, 0, "https://api.tibber.com"),
        STR(watttime_url, K_HTTP_URL, 0, "https://api.watttime.org"),
        STR(aemo_url, K_HTTP_URL, 0, "https://visualisations.aemo.com.au"),
        STR(energycharts_url, K_HTTP_URL, 0, "https://api.energy-charts.info"),
        STR(octopus_api_key, K_STR, F_OPTIONAL | F_SECRET, NULL),
        {"octopus_accounts", K_ACCOUNTS, 0, offsetof(struct config, accounts), 0, 0, ""},
        STR(tibber_token, K_STR, F_OPTIONAL | F_SECRET, NULL),
        STR(watttime_username, K_STR, F_OPTIONAL, NULL),
        STR(watttime_password, K_STR, F_OPTIONAL | F_SECRET, NULL),
        STR(watttime_signal, K_SIGNAL, 0, "co2_moer"),
        INT(http_connect_timeout_ms, 100, 120000, "5000"),
        INT(http_timeout_ms, 100, 600000, "20000"),
        SIZE(http_max_body_bytes, K_ISIZE, 64 * KiB, 256 * MiB, "8MiB"),
        INT(retry_max_attempts, 1, 10, "4"),
        INT(retry_base_ms, 1, 60000, "500"),
        INT(retry_cap_ms, 1, 600000, "30000"),
        INT(token_refresh_margin_s, 0, 1500, "300"),
        INT(request_max_range_s, 3600, 31 * 86400, "604800"),
        INT(request_wait_ms, 100, 120000, "10000"),
        INT(series_idle_s, 60, 366 * 86400, "604800"),
        INT(new_series_per_minute, 0, 10000, "30"),
        INT(forecast_ttl_s, 60, 86400, "1800"),
        INT(stale_grace_s, 0, 86400, "300"),
        INT(negative_cache_s, 0, 86400, "600"),
        INT(failure_threshold, 1, 1000, "3"),
        INT(health_interval_s, 1, 3600, "30"),
        INT(shutdown_grace_ms, 0, 60000, "5000"),
};

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

/* RATEPOOL_* variables that are not settings and are not refused: read by
 * rtime (the test clock seam) and by the test tooling. */
static const char *const ignored_env[] = {
        "RATEPOOL_TEST_CLOCK",   "RATEPOOL_BIN",        "RATEPOOL_FAKE_UPSTREAM",
        "RATEPOOL_FAKE_VERBOSE", "RATEPOOL_BENCH_RUNS", "RATEPOOL_BENCH_CALLGRIND",
};

/* Provider ids a series may name. */
static const char *const known_providers[] = {"octopus", "tibber", "watttime", "aemo", "energycharts"};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* --- small helpers ----------------------------------------------------------- */

static char **str_field(struct config *cfg, const struct setting *st)
{
	return (char **)((char *)cfg + st->offset);
}

static const char *str_value(const struct config *cfg, const struct setting *st)
{
	return *(char *const *)((const char *)cfg + st->offset);
}

static bool is_string_kind(enum kind k)
{
	return k == K_STR || k == K_MQTT_URL || k == K_HTTP_URL || k == K_TOPIC || k == K_PATH ||
	       k == K_FILE || k == K_CLIENT_ID || k == K_SIGNAL;
}

/* "RATEPOOL_" + upper-cased key into out (NAME_MAX_LEN). */
static void env_name(const struct setting *st, char *out)
{
	size_t i, n = strlen(ENV_PREFIX);

	memcpy(out, ENV_PREFIX, n);
	for(i = 0; st->key[i] && n + 1 < NAME_MAX_LEN; i++)
		out[n++] = (char)toupper((unsigned char)st->key[i]);
	out[n] = '\0';
}

static const struct setting *find_by_key(const char *key)
{
	size_t i;

	for(i = 0; i < SETTING_COUNT; i++)
		if(!strcmp(settings[i].key, key))
			return &settings[i];
	return NULL;
}

static const struct setting *find_by_env(const char *name, size_t len)
{
	char buf[NAME_MAX_LEN];
	size_t i;

	for(i = 0; i < SETTING_COUNT; i++) {
		env_name(&settings[i], buf);
		if(strlen(buf) == len && !memcmp(buf, name, len))
			return &settings[i];
	}
	return NULL;
}

/* The value of `name` in envp, or NULL. */
static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for(; envp && *envp; envp++)
		if(!strncmp(*envp, name, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

static bool has_control(const char *s)
{
	for(; *s; s++)
		if((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool known_provider(const char *id)
{
	size_t i;

	for(i = 0; i < sizeof(known_providers) / sizeof(known_providers[0]); i++)
		if(!strcmp(known_providers[i], id))
			return true;
	return false;
}

/* --- parsers: each checks text and reports with `where` --------------------- */

/* Checks a URL's authority (host[:port], [v6]:port) up to the first '/'. */
static int check_authority(const char *a, const char *where, struct rp_err *err)
{
	const char *end = strchr(a, '/');
	size_t len = end ? (size_t)(end - a) : strlen(a);
	const char *port = NULL;
	size_t i;

	if(len == 0)
		return rp_err_set(err, RP_EINVAL, "%s: has no host", where);
	if(memchr(a, '@', len))
		return rp_err_set(err, RP_EINVAL,
		                  "%s: must not hold credentials (use the username and password settings)",
		                  where);
	if(a[0] == '[') {
		const char *close = memchr(a, ']', len);
		if(!close || close == a + 1)
			return rp_err_set(err, RP_EINVAL, "%s: has a bad IPv6 host", where);
		if((size_t)(close - a) + 1 < len) {
			if(close[1] != ':')
				return rp_err_set(err, RP_EINVAL, "%s: has a bad host", where);
			port = close + 2;
		}
	} else {
		const char *colon = memchr(a, ':', len);
		if(colon == a)
			return rp_err_set(err, RP_EINVAL, "%s: has no host", where);
		if(colon)
			port = colon + 1;
	}
	if(port) {
		long v = 0;
		size_t plen = (size_t)(a + len - port);
		if(plen == 0 || plen > 5)
			return rp_err_set(err, RP_EINVAL, "%s: has a bad port", where);
		for(i = 0; i < plen; i++) {
			if(!isdigit((unsigned char)port[i]))
				return rp_err_set(err, RP_EINVAL, "%s: has a bad port", where);
			v = v * 10 + (port[i] - '0');
		}
		if(v < 1 || v > 65535)
			return rp_err_set(err, RP_EINVAL, "%s: port must be between 1 and 65535", where);
	}
	return 0;
}

static int check_mqtt_url(const char *v, const char *where, struct rp_err *err)
{
	static const char *const schemes[] = {"tcp://", "ssl://", "mqtt://", "mqtts://", "ws://", "wss://"};
	size_t i;

	for(i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if(!strncmp(v, schemes[i], strlen(schemes[i])))
			break;
	if(i == sizeof(schemes) / sizeof(schemes[0]))
		return rp_err_set(err, RP_EINVAL,
		                  "%s: must start with tcp://, ssl://, mqtt://, mqtts://, ws:// or wss://",
		                  where);
	if(strlen(v) > URL_MAX || strpbrk(v, " \t"))
		return rp_err_set(err, RP_EINVAL, "%s: is not a valid URL", where);
	return check_authority(v + strlen(schemes[i]), where, err);
}

/* Also drops trailing slashes in place: the providers append "/v1/...". */
static int check_http_url(char *v, const char *where, struct rp_err *err)
{
	size_t n;
	int rc;

	if(strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
		return rp_err_set(err, RP_EINVAL, "%s: must start with http:// or https://", where);
	if(strlen(v) > URL_MAX || strpbrk(v, " \t?#"))
		return rp_err_set(err, RP_EINVAL, "%s: must be a base URL without spaces, query or fragment",
		                  where);
	rc = check_authority(strstr(v, "://") + 3, where, err);
	if(rc)
		return rc;
	n = strlen(v);
	while(n > 0 && v[n - 1] == '/' && v[n - 2] != '/')
		v[--n] = '\0';
	return 0;
}

static int check_topic(const char *v, const char *where, struct rp_err *err)
{
	size_t n = strlen(v);

	if(n > TOPIC_MAX)
		return rp_err_set(err, RP_EINVAL, "%s: is longer than %d characters", where, TOPIC_MAX);
	if(strpbrk(v, "+#"))
		return rp_err_set(err, RP_EINVAL, "%s: must not contain the MQTT wildcards + or #", where);
	if(v[0] == '$')
		return rp_err_set(err, RP_EINVAL, "%s: must not start with $ (reserved for the broker)",
		                  where);
	if(v[0] == '/' || v[n - 1] == '/' || strstr(v, "//"))
		return rp_err_set(err, RP_EINVAL, "%s: must not start or end with / or hold an empty level",
		                  where);
	if(has_control(v) || strchr(v, ' '))
		return rp_err_set(err, RP_EINVAL, "%s: must not contain spaces or control characters", where);
	return 0;
}

static int check_client_id(const char *v, const char *where, struct rp_err *err)
{
	size_t n = strlen(v), i;

	if(n > 128)
		return rp_err_set(err, RP_EINVAL, "%s: is longer than 128 characters", where);
	for(i = 0; i < n; i++)
		if((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return rp_err_set(err, RP_EINVAL, "%s: must be printable ASCII without spaces",
			                  where);
	return 0;
}

static int check_signal(const char *v, const char *where, struct rp_err *err)
{
	size_t n = strlen(v), i;

	for(i = 0; i < n; i++)
		if(!(islower((unsigned char)v[i]) || isdigit((unsigned char)v[i]) || v[i] == '_'))
			break;
	if(n > 32 || i < n)
		return rp_err_set(err, RP_EINVAL, "%s: must be a WattTime signal type such as co2_moer",
		                  where);
	return 0;
}

/* Parses "256MiB", "64m", "1GiB", "1048576" (binary units). */
static int parse_size(const char *v, unsigned long long *out)
{
	static const struct {
		const char *suffix;
		unsigned long long mult;
	} units[] = {
	        {"", 1},      {"b", 1},   {"k", KiB},   {"kib", KiB}, {"m", MiB},
	        {"mib", MiB}, {"g", GiB}, {"gib", GiB}, {"t", TiB},   {"tib", TiB},
	};
	unsigned long long n = 0;
	const char *p = v;
	size_t i;

	if(!isdigit((unsigned char)*p))
		return RP_EINVAL;
	while(isdigit((unsigned char)*p)) {
		if(n > (~0ULL - 9) / 10)
			return RP_EINVAL;
		n = n * 10 + (unsigned)(*p++ - '0');
	}
	if(*p == ' ')
		p++;
	for(i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if(!strcasecmp(p, units[i].suffix)) {
			if(n > ~0ULL / units[i].mult)
				return RP_EINVAL;
			*out = n * units[i].mult;
			return 0;
		}
	return RP_EINVAL;
}

/* "268435456" as "256MiB" when it is a whole number of a unit. */
static void format_size(unsigned long long v, char *out, size_t n)
{
	if(v && v % TiB == 0)
		snprintf(out, n, "%lluTiB", v / TiB);
	else if(v && v % GiB == 0)
		snprintf(out, n, "%lluGiB", v / GiB);
	else if(v && v % MiB == 0)
		snprintf(out, n, "%lluMiB", v / MiB);
	else if(v && v % KiB == 0)
		snprintf(out, n, "%lluKiB", v / KiB);
	else
		snprintf(out, n, "%llu", v);
}

static int parse_int(const char *v, long long *out)
{
	char *end = NULL;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if(errno || end == v || *end || isspace((unsigned char)*v))
		return RP_EINVAL;
	*out = n;
	return 0;
}

/* --- series and accounts lists --------------------------------------------- */

static int series_add(struct config *cfg, const char *entry, const char *where, struct rp_err *err)
{
	struct series_ref ref;
	int i;

	if(series_ref_parse(entry, &ref))
		return rp_err_set(
		        err, RP_EINVAL,
		        "%s: \"%.80s\" is not provider/id (id of 1-64 letters, digits, '.', '_' or '-')",
		        where, entry);
	if(!known_provider(ref.provider))
		return rp_err_set(
		        err, RP_EINVAL,
		        "%s: unknown provider \"%s\" in \"%.80s\" (known: octopus, tibber, watttime, aemo, "
		        "energycharts)",
		        where, ref.provider, entry);
	for(i = 0; i < cfg->series_count; i++)
		if(!strcmp(cfg->series[i].provider, ref.provider) && !strcmp(cfg->series[i].id, ref.id))
			return 0; /* listed twice: once is enough */
	if(cfg->series_count >= CONFIG_MAX_SERIES)
		return rp_err_set(err, RP_EINVAL, "%s: more than %d series", where, CONFIG_MAX_SERIES);
	cfg->series[cfg->series_count++] = ref;
	return 0;
}

/* Octopus account numbers: "A-" and 4 to 20 upper-case letters or digits
 * (real ones are A- and 8 hex digits). */
static bool account_number_valid(const char *n)
{
	size_t len = strlen(n), i;

	if(len < 6 || len > 22 || n[0] != 'A' || n[1] != '-')
		return false;
	for(i = 2; i < len; i++)
		if(!(isupper((unsigned char)n[i]) || isdigit((unsigned char)n[i])))
			return false;
	return true;
}

static int account_add(struct config *cfg, const char *alias, const char *number, const char *where,
                       struct rp_err *err)
{
	struct config_account *a;
	int i;

	if(!series_id_valid(alias))
		return rp_err_set(err, RP_EINVAL,
		                  "%s: alias \"%.80s\" must be 1-64 letters, digits, '.', '_' or '-'", where,
		                  alias);
	if(!account_number_valid(number))
		return rp_err_set(err, RP_EINVAL,
		                  "%s: \"%.40s\" is not an Octopus account number such as A-1234ABCD", where,
		                  number);
	for(i = 0; i < cfg->account_count; i++)
		if(!strcmp(cfg->accounts[i].alias, alias))
			return rp_err_set(err, RP_EINVAL, "%s: alias \"%s\" is given twice", where, alias);
	if(cfg->account_count >= CONFIG_MAX_ACCOUNTS)
		return rp_err_set(err, RP_EINVAL, "%s: more than %d accounts", where, CONFIG_MAX_ACCOUNTS);
	a = &cfg->accounts[cfg->account_count++];
	memcpy(a->alias, alias, strlen(alias) + 1);
	memcpy(a->number, number, strlen(number) + 1);
	return 0;
}

/* Splits a comma separated list, trims blanks around each entry and calls
 * add() for each. Empty entries (",,", a trailing comma) are refused. */
static int parse_list(struct config *cfg, const struct setting *st, const char *v, const char *where,
                      struct rp_err *err)
{
	char entry[160];
	const char *p = v;
	int rc = 0;

	if(st->kind == K_SERIES)
		cfg->series_count = 0;
	else
		cfg->account_count = 0;
	while(*p == ' ' || *p == '\t')
		p++;
	if(!*p)
		return 0; /* an empty list */
	for(;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while(len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		while(len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		if(len == 0)
			return rp_err_set(err, RP_EINVAL, "%s: has an empty entry", where);
		if(len >= sizeof(entry))
			return rp_err_set(err, RP_EINVAL, "%s: entry \"%.40s...\" is too long", where, p);
		memcpy(entry, p, len);
		entry[len] = '\0';
		if(st->kind == K_SERIES)
			rc = series_add(cfg, entry, where, err);
		else {
			char *colon = strchr(entry, ':');
			if(!colon)
				return rp_err_set(err, RP_EINVAL, "%s: \"%.80s\" is not alias:A-1234ABCD",
				                  where, entry);
			*colon = '\0';
			rc = account_add(cfg, entry, colon + 1, where, err);
		}
		if(rc || !comma)
			return rc;
		p = comma + 1;
	}
}

/* --- applying one value ------------------------------------------------------- */

static int set_string(struct config *cfg, const struct setting *st, const char *v)
{
	char **field = str_field(cfg, st);
	char *copy = NULL;

	if(v) {
		copy = strdup(v);
		if(!copy)
			return RP_ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

/* Checks text v for setting st and stores it. `where` names the setting
 * as the user gave it (RATEPOOL_X, or "file: x"). A secret's value is
 * never put into a message. */
static int apply_text(struct config *cfg, const struct setting *st, const char *v, const char *where,
                      struct rp_err *err)
{
	char buf[URL_MAX + 1];
	unsigned long long size;
	long long n;
	int rc;

	if(!*v && st->kind != K_SERIES && st->kind != K_ACCOUNTS) {
		if(st->flags & F_OPTIONAL)
			return set_string(cfg, st, NULL);
		if(!(st->flags & F_EMPTY_OK))
			return rp_err_set(err, RP_EINVAL, "%s: must not be empty", where);
	}
	if(is_string_kind(st->kind)) {
		if(strlen(v) > TEXT_MAX)
			return rp_err_set(err, RP_EINVAL, "%s: is longer than %d characters", where,
			                  TEXT_MAX);
		if(has_control(v))
			return rp_err_set(err, RP_EINVAL, "%s: must not contain control characters", where);
	}
	switch(st->kind) {
	case K_STR:
		break;
	case K_MQTT_URL:
		rc = check_mqtt_url(v, where, err);
		if(rc)
			return rc;
		break;
	case K_HTTP_URL:
		if(strlen(v) > URL_MAX)
			return rp_err_set(err, RP_EINVAL, "%s: is longer than %d characters", where, URL_MAX);
		memcpy(buf, v, strlen(v) + 1);
		rc = check_http_url(buf, where, err);
		if(rc)
			return rc;
		return set_string(cfg, st, buf);
	case K_TOPIC:
		if(*v) {
			rc = check_topic(v, where, err);
			if(rc)
				return rc;
		}
		break;
	case K_PATH:
		break;
	case K_FILE:
		if(access(v, R_OK))
			return rp_err_set(err, RP_EINVAL, "%s: cannot read %.200s: %s", where, v,
			                  strerror(errno));
		break;
	case K_CLIENT_ID:
		rc = check_client_id(v, where, err);
		if(rc)
			return rc;
		break;
	case K_SIGNAL:
		rc = check_signal(v, where, err);
		if(rc)
			return rc;
		break;
	case K_LEVEL:
		if(log_level_parse(v, (enum log_level *)((char *)cfg + st->offset)))
			return rp_err_set(err, RP_EINVAL,
			                  "%s: \"%.40s\" is not one of error, warn, info, debug", where, v);
		return 0;
	case K_SIZE:
	case K_ISIZE: {
		char lo[32], hi[32];
		format_size((unsigned long long)st->min, lo, sizeof(lo));
		format_size((unsigned long long)st->max, hi, sizeof(hi));
		if(parse_size(v, &size))
			return rp_err_set(
			        err, RP_EINVAL,
			        "%s: \"%.40s\" is not a size (bytes, or a number with KiB, MiB, GiB or TiB, "
			        "e.g. 256MiB)",
			        where, v);
		if(size < (unsigned long long)st->min || size > (unsigned long long)st->max)
			return rp_err_set(err, RP_EINVAL, "%s: must be between %s and %s", where, lo, hi);
		if(st->kind == K_SIZE)
			*(uint64_t *)((char *)cfg + st->offset) = size;
		else
			*(int *)((char *)cfg + st->offset) = (int)size;
		return 0;
	}
	case K_INT:
		if(parse_int(v, &n))
			return rp_err_set(err, RP_EINVAL, "%s: \"%.40s\" is not an integer", where, v);
		if(n < st->min || n > st->max)
			return rp_err_set(err, RP_EINVAL, "%s: must be between %lld and %lld", where, st->min,
			                  st->max);
		*(int *)((char *)cfg + st->offset) = (int)n;
		return 0;
	case K_SERIES:
	case K_ACCOUNTS:
		return parse_list(cfg, st, v, where, err);
	}
	return set_string(cfg, st, v);
}

/* Reads a secret from a file (Docker secrets): readable, at most 64 KiB,
 * trailing newlines stripped, not empty, no NUL. *out is malloc'd. */
static int read_secret_file(const char *path, const char *where, char **out, struct rp_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t got;
	int fd = -1, rc = 0;
	struct stat st;

	if(!*path)
		return rp_err_set(err, RP_EINVAL, "%s: must not be empty", where);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if(fd < 0) {
		rc = rp_err_set(err, RP_EINVAL, "%s: cannot read %.200s: %s", where, path, strerror(errno));
		goto out;
	}
	if(fstat(fd, &st) || S_ISDIR(st.st_mode)) {
		rc = rp_err_set(err, RP_EINVAL, "%s: %.200s is not a file", where, path);
		goto out;
	}
	buf = malloc(SECRET_FILE_MAX + 2);
	if(!buf) {
		rc = rp_err_set(err, RP_ENOMEM, "%s: out of memory", where);
		goto out;
	}
	while(len <= SECRET_FILE_MAX) {
		got = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);
		if(got < 0 && errno == EINTR)
			continue;
		if(got < 0) {
			rc = rp_err_set(err, RP_EINVAL, "%s: cannot read %.200s: %s", where, path,
			                strerror(errno));
			goto out;
		}
		if(got == 0)
			break;
		len += (size_t)got;
	}
	if(len > SECRET_FILE_MAX) {
		rc = rp_err_set(err, RP_EINVAL, "%s: %.200s is larger than 64 KiB", where, path);
		goto out;
	}
	buf[len] = '\0';
	if(memchr(buf, '\0', len)) {
		rc = rp_err_set(err, RP_EINVAL, "%s: %.200s holds a NUL byte", where, path);
		goto out;
	}
	while(len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if(!len) {
		rc = rp_err_set(err, RP_EINVAL, "%s: %.200s is empty", where, path);
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	if(fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* Applies a secret given as a file path. */
static int apply_file(struct config *cfg, const struct setting *st, const char *path, const char *where,
                      struct rp_err *err)
{
	char *value = NULL;
	int rc = read_secret_file(path, where, &value, err);

	if(!rc)
		rc = apply_text(cfg, st, value, where, err);
	free(value);
	return rc;
}

/* --- the JSON file ------------------------------------------------------------- */

static int apply_json(struct config *cfg, const struct setting *st, json_t *v, const char *where,
                      struct rp_err *err)
{
	char num[32];
	const char *k;
	json_t *item;
	size_t i;
	int rc;

	if(json_is_null(v)) {
		if(st->flags & F_OPTIONAL)
			return set_string(cfg, st, NULL);
		return rp_err_set(err, RP_EINVAL, "%s: must not be null", where);
	}
	if(json_is_string(v)) {
		if(strlen(json_string_value(v)) != json_string_length(v))
			return rp_err_set(err, RP_EINVAL, "%s: must not contain a NUL character", where);
		if(st->kind == K_INT)
			return rp_err_set(err, RP_EINVAL, "%s: must be a number, not a string", where);
		return apply_text(cfg, st, json_string_value(v), where, err);
	}
	if(json_is_integer(v) && (st->kind == K_INT || st->kind == K_SIZE || st->kind == K_ISIZE)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return apply_text(cfg, st, num, where, err);
	}
	if(json_is_array(v) && st->kind == K_SERIES) {
		cfg->series_count = 0;
		json_array_foreach(v, i, item)
		{
			if(!json_is_string(item))
				return rp_err_set(err, RP_EINVAL,
				                  "%s: entries must be strings like \"octopus/ID\"", where);
			rc = series_add(cfg, json_string_value(item), where, err);
			if(rc)
				return rc;
		}
		return 0;
	}
	if(json_is_object(v) && st->kind == K_ACCOUNTS) {
		cfg->account_count = 0;
		json_object_foreach(v, k, item)
		{
			if(!json_is_string(item))
				return rp_err_set(err, RP_EINVAL,
				                  "%s: values must be account numbers like \"A-1234ABCD\"",
				                  where);
			rc = account_add(cfg, k, json_string_value(item), where, err);
			if(rc)
				return rc;
		}
		return 0;
	}
	switch(st->kind) {
	case K_INT:
		return rp_err_set(err, RP_EINVAL, "%s: must be an integer", where);
	case K_SIZE:
	case K_ISIZE:
		return rp_err_set(err, RP_EINVAL,
		                  "%s: must be a number of bytes or a string such as \"256MiB\"", where);
	case K_SERIES:
		return rp_err_set(err, RP_EINVAL, "%s: must be a list of \"provider/id\" strings", where);
	case K_ACCOUNTS:
		return rp_err_set(err, RP_EINVAL, "%s: must be an object {\"alias\": \"A-1234ABCD\"}", where);
	default:
		return rp_err_set(err, RP_EINVAL, "%s: must be a string", where);
	}
}

/* The setting a JSON key names: "x" or, for a secret, "x_file". */
static const struct setting *match_key(const char *key, bool *is_file)
{
	const struct setting *st = find_by_key(key);
	size_t n = strlen(key);
	char base[NAME_MAX_LEN];

	*is_file = false;
	if(st)
		return st;
	if(n > 5 && n - 5 < sizeof(base) && !strcmp(key + n - 5, "_file")) {
		memcpy(base, key, n - 5);
		base[n - 5] = '\0';
		st = find_by_key(base);
		if(st && (st->flags & F_SECRET)) {
			*is_file = true;
			return st;
		}
	}
	return NULL;
}

static int load_file(struct config *cfg, const char *path, struct rp_err *err)
{
	char where[WHERE_MAX];
	char file_key[NAME_MAX_LEN + 8];
	json_error_t jerr;
	json_t *root = NULL;
	json_t *v;
	const char *key;
	size_t i;
	int rc = 0;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if(!root) {
		/* jansson reports most failed allocations with no text at all. */
		if(!jerr.text[0] || json_error_code(&jerr) == json_error_out_of_memory)
			return rp_err_set(err, RP_ENOMEM, "config %.200s: out of memory", path);
		if(jerr.line <= 0)
			return rp_err_set(err, RP_EINVAL, "config %.200s: %s", path, jerr.text);
		return rp_err_set(err, RP_EINVAL, "config %.200s:%d:%d: %s", path, jerr.line, jerr.column,
		                  jerr.text);
	}
	if(!json_is_object(root)) {
		rc = rp_err_set(err, RP_EINVAL, "config %.200s: must be a JSON object", path);
		goto out;
	}
	/* Unknown keys first, so a typo is reported whatever else is wrong. */
	json_object_foreach(root, key, v)
	{
		bool is_file;
		if(!match_key(key, &is_file)) {
			rc = rp_err_set(
			        err, RP_EINVAL,
			        "config %.200s: unknown key \"%.64s\" (docs/configuration.md lists them)",
			        path, key);
			goto out;
		}
	}
	for(i = 0; i < SETTING_COUNT; i++) {
		const struct setting *st = &settings[i];
		json_t *plain = json_object_get(root, st->key);
		json_t *file = NULL;

		if(st->flags & F_SECRET) {
			snprintf(file_key, sizeof(file_key), "%s_file", st->key);
			file = json_object_get(root, file_key);
		}
		if(plain && file) {
			rc = rp_err_set(err, RP_EINVAL, "config %.200s: %s and %s are both set; give one",
			                path, st->key, file_key);
			goto out;
		}
		if(plain) {
			snprintf(where, sizeof(where), "config %.200s: %s", path, st->key);
			rc = apply_json(cfg, st, plain, where, err);
		} else if(file) {
			snprintf(where, sizeof(where), "config %.200s: %s", path, file_key);
			if(!json_is_string(file))
				rc = rp_err_set(err, RP_EINVAL, "%s: must be a path", where);
			else
				rc = apply_file(cfg, st, json_string_value(file), where, err);
		}
		if(rc)
			goto out;
	}
out:
	json_decref(root);
	return rc;
}

/* --- the environment ------------------------------------------------------------ */

static int check_env_names(char *const *envp, struct rp_err *err)
{
	size_t plen = strlen(ENV_PREFIX), i;

	for(; envp && *envp; envp++) {
		const char *e = *envp;
		const char *eq = strchr(e, '=');
		size_t len = eq ? (size_t)(eq - e) : strlen(e);
		const struct setting *st;
		bool ignored = false;

		if(strncmp(e, ENV_PREFIX, plen))
			continue;
		for(i = 0; i < sizeof(ignored_env) / sizeof(ignored_env[0]); i++)
			if(strlen(ignored_env[i]) == len && !memcmp(ignored_env[i], e, len))
				ignored = true;
		if(ignored || find_by_env(e, len))
			continue;
		if(len > 5 && !memcmp(e + len - 5, "_FILE", 5)) {
			st = find_by_env(e, len - 5);
			if(st && (st->flags & F_SECRET))
				continue;
			if(st)
				return rp_err_set(
				        err, RP_EINVAL,
				        "%.*s: only secrets may be given as a file (%.*s is not one)",
				        (int)len, e, (int)(len - 5), e);
		}
		return rp_err_set(
		        err, RP_EINVAL,
		        "%.*s: unknown setting (docs/configuration.md lists them; unset it or fix the name)",
		        (int)(len > 80 ? 80 : len), e);
	}
	return 0;
}

static int load_env(struct config *cfg, char *const *envp, struct rp_err *err)
{
	char name[NAME_MAX_LEN];
	char file_name[NAME_MAX_LEN + 8];
	size_t i;
	int rc;

	rc = check_env_names(envp, err);
	if(rc)
		return rc;
	for(i = 0; i < SETTING_COUNT; i++) {
		const struct setting *st = &settings[i];
		const char *plain, *file = NULL;

		env_name(st, name);
		plain = env_get(envp, name);
		if(st->flags & F_SECRET) {
			snprintf(file_name, sizeof(file_name), "%s_FILE", name);
			file = env_get(envp, file_name);
		}
		if(plain && file)
			return rp_err_set(err, RP_EINVAL, "%s and %s are both set; give one", name,
			                  file_name);
		if(plain)
			rc = apply_text(cfg, st, plain, name, err);
		else if(file)
			rc = apply_file(cfg, st, file, file_name, err);
		if(rc)
			return rc;
	}
	return 0;
}

/* --- load, free, dump ----------------------------------------------------------- */

static int set_defaults(struct config *cfg, struct rp_err *err)
{
	char host[64] = "";
	char id[128];
	size_t i;
	int rc;

	for(i = 0; i < SETTING_COUNT; i++) {
		if(!settings[i].def)
			continue;
		rc = apply_text(cfg, &settings[i], settings[i].def, settings[i].key, err);
		if(rc)
			return rc;
	}
	/* MQTT client ids must be unique per broker: several ratepools (or a
	 * `ratepool fetch` beside the daemon) must not kick each other off. */
	if(gethostname(host, sizeof(host) - 1))
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for(i = 0; host[i]; i++)
		if(!isalnum((unsigned char)host[i]) && host[i] != '-' && host[i] != '.' && host[i] != '_')
			host[i] = '-';
	if(host[0])
		snprintf(id, sizeof(id), "ratepool-%.40s-%ld", host, (long)getpid());
	else
		snprintf(id, sizeof(id), "ratepool-%ld", (long)getpid());
	return set_string(cfg, find_by_key("mqtt_client_id"), id)
	               ? rp_err_set(err, RP_ENOMEM, "out of memory")
	               : 0;
}

static int check_together(const struct config *cfg, struct rp_err *err)
{
	if(cfg->http_connect_timeout_ms > cfg->http_timeout_ms)
		return rp_err_set(err, RP_EINVAL,
		                  "RATEPOOL_HTTP_CONNECT_TIMEOUT_MS: must not be more than "
		                  "RATEPOOL_HTTP_TIMEOUT_MS (%d)",
		                  cfg->http_timeout_ms);
	if(cfg->retry_base_ms > cfg->retry_cap_ms)
		return rp_err_set(err, RP_EINVAL,
		                  "RATEPOOL_RETRY_BASE_MS: must not be more than RATEPOOL_RETRY_CAP_MS (%d)",
		                  cfg->retry_cap_ms);
	if(!!cfg->watttime_username != !!cfg->watttime_password)
		return rp_err_set(
		        err, RP_EINVAL,
		        "RATEPOOL_WATTTIME_USERNAME and RATEPOOL_WATTTIME_PASSWORD: give both or neither");
	if(cfg->mqtt_password && !cfg->mqtt_username)
		return rp_err_set(err, RP_EINVAL,
		                  "RATEPOOL_MQTT_PASSWORD: is set without RATEPOOL_MQTT_USERNAME");
	return 0;
}

/* Registers every secret that is set, so that none can reach a log line;
 * also called when loading failed half-way, for what was read. */
static int register_secrets(const struct config *cfg)
{
	size_t i;
	int rc = 0;

	/* A secret the log could not copy would be logged in clear: that
	 * fails the load (out of memory) rather than go unnoticed. */
	for(i = 0; i < SETTING_COUNT; i++)
		if((settings[i].flags & F_SECRET) && str_value(cfg, &settings[i]) &&
		   log_add_secret(str_value(cfg, &settings[i])) == RP_ENOMEM)
			rc = RP_ENOMEM;
	return rc;
}

int config_load(struct config *cfg, const char *path, char *const *envp, struct rp_err *err)
{
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	rc = set_defaults(cfg, err);
	if(!rc && path)
		rc = load_file(cfg, path, err);
	if(!rc)
		rc = load_env(cfg, envp ? envp : environ, err);
	if(!rc)
		rc = check_together(cfg, err);
	if(register_secrets(cfg) && !rc)
		rc = RP_ENOMEM;
	if(rc == RP_ENOMEM && err && !err->msg[0])
		rp_err_set(err, RP_ENOMEM, "out of memory while reading the configuration");
	return rc;
}

void config_free(struct config *cfg)
{
	size_t i;

	if(!cfg)
		return;
	for(i = 0; i < SETTING_COUNT; i++)
		if(is_string_kind(settings[i].kind)) {
			char **field = str_field(cfg, &settings[i]);
			free(*field);
			*field = NULL;
		}
	cfg->series_count = 0;
	cfg->account_count = 0;
}

int config_dump(const struct config *cfg, void *out)
{
	json_t *root = json_object();
	json_t *v = NULL;
	char ref[PROVIDER_ID_MAX + SERIES_ID_MAX + 2];
	size_t i;
	int k, rc = 0;

	if(!root)
		return RP_ENOMEM;
	for(i = 0; i < SETTING_COUNT; i++) {
		const struct setting *st = &settings[i];
		const void *field = (const char *)cfg + st->offset;

		switch(st->kind) {
		case K_INT:
		case K_ISIZE:
			v = json_integer(*(const int *)field);
			break;
		case K_SIZE:
			v = json_integer((json_int_t) * (const uint64_t *)field);
			break;
		case K_LEVEL:
			v = json_string(level_names[*(const enum log_level *)field]);
			break;
		case K_SERIES:
			v = json_array();
			for(k = 0; v && k < cfg->series_count; k++) {
				snprintf(ref, sizeof(ref), "%s/%s", cfg->series[k].provider,
				         cfg->series[k].id);
				if(json_array_append_new(v, json_string(ref)))
					rc = RP_ENOMEM;
			}
			break;
		case K_ACCOUNTS:
			v = json_object();
			for(k = 0; v && k < cfg->account_count; k++)
				if(json_object_set_new(v, cfg->accounts[k].alias,
				                       json_string(cfg->accounts[k].number)))
					rc = RP_ENOMEM;
			break;
		default:
			if(!str_value(cfg, st))
				v = json_null();
			else
				v = json_string((st->flags & F_SECRET) ? "***" : str_value(cfg, st));
			break;
		}
		if(!v || json_object_set_new(root, st->key, v))
			rc = RP_ENOMEM;
		v = NULL;
	}
	if(!rc && (json_dumpf(root, (FILE *)out, JSON_INDENT(2)) || fputc('\n', (FILE *)out) == EOF))
		rc = RP_EIO;
	json_decref(root);
	return rc;
}

const struct config_account *config_account_find(const struct config *cfg, const char *alias)
{
	int i;

	if(!alias)
		return NULL;
	for(i = 0; i < cfg->account_count; i++)
		if(!strcmp(cfg->accounts[i].alias, alias))
			return &cfg->accounts[i];
	return NULL;
}
