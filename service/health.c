/* health.c - counters and the health JSON. */
#include "ratepool/health.h"
#include "ratepool/error.h"
#include "ratepool/log.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const known_providers[] = {"octopus", "tibber", "watttime", "aemo", "energycharts"};

static const char *const counter_names[HEALTH_COUNTER_COUNT] = {
        [HEALTH_REQUESTS] = "requests",
        [HEALTH_HITS] = "hits",
        [HEALTH_MISSES] = "misses",
        [HEALTH_STALE_SERVED] = "stale_served",
        [HEALTH_UPSTREAM_CALLS] = "upstream_calls",
        [HEALTH_COALESCED] = "coalesced",
};

int health_init(struct health *h, int64_t started_at, const char *version)
{
	size_t i;

	memset(h, 0, sizeof(*h));
	if(pthread_mutex_init(&h->lock, NULL))
		return RP_ENOMEM;
	h->started_at = started_at;
	snprintf(h->version, sizeof(h->version), "%s", version ? version : "");
	for(i = 0; i < HEALTH_COUNTER_COUNT; i++)
		atomic_init(&h->counters[i], 0);
	atomic_init(&h->series_tracked, 0);
	atomic_init(&h->broker_connected, false);
	for(i = 0; i < sizeof(known_providers) / sizeof(known_providers[0]); i++) {
		snprintf(h->providers[i].id, sizeof(h->providers[i].id), "%s", known_providers[i]);
		h->n_providers++;
	}
	return 0;
}

void health_cleanup(struct health *h)
{
	pthread_mutex_destroy(&h->lock);
}

static bool provider_id_ok(const char *id)
{
	return id && strnlen(id, PROVIDER_ID_MAX + 1) <= PROVIDER_ID_MAX && series_id_valid(id);
}

/* The record of id, added when new. Caller holds h->lock. */
static int find_locked(struct health *h, const char *id, struct health_provider **out)
{
	size_t i;

	if(!provider_id_ok(id))
		return RP_EINVAL;
	for(i = 0; i < h->n_providers; i++)
		if(!strcmp(h->providers[i].id, id)) {
			*out = &h->providers[i];
			return 0;
		}
	if(h->n_providers == HEALTH_PROVIDERS_MAX)
		return RP_EBUSY;
	*out = &h->providers[h->n_providers++];
	memset(*out, 0, sizeof(**out));
	snprintf((*out)->id, sizeof((*out)->id), "%s", id);
	return 0;
}

/* Drops a UTF-8 sequence cut by the size bound at the end of s, so a
 * long message ends in whole characters. */
static void trim_cut_utf8(char *s)
{
	size_t n = strlen(s), i = n, need;
	unsigned char c;

	while(i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if(i == 0)
		return;
	c = (unsigned char)s[i - 1];
	if(c < 0xc0)
		return;
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	if(n - (i - 1) < need)
		s[i - 1] = '\0';
}

int health_fetch_done(struct health *h, const char *provider, int64_t now, int code, const char *message)
{
	struct health_provider *p = NULL;
	char clean[HEALTH_ERROR_SIZE];
	int rc;

	/* Scrub before taking our lock: log_scrub takes the log's. */
	if(code) {
		log_scrub(message ? message : rp_strerror(code), clean, sizeof(clean));
		trim_cut_utf8(clean);
	}
	pthread_mutex_lock(&h->lock);
	rc = find_locked(h, provider, &p);
	if(rc)
		goto out;
	p->total_fetches++;
	if(!code) {
		p->consecutive_failures = 0;
		p->last_success = now;
		goto out;
	}
	p->failed_fetches++;
	if(p->consecutive_failures < INT32_MAX)
		p->consecutive_failures++;
	p->last_error_at = now;
	memcpy(p->last_error, clean, sizeof(p->last_error));
	snprintf(p->last_error_code, sizeof(p->last_error_code), "%s", rp_code_name(code));
out:
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int health_token_refreshed(struct health *h, const char *provider, int64_t now)
{
	struct health_provider *p = NULL;
	int rc;

	pthread_mutex_lock(&h->lock);
	rc = find_locked(h, provider, &p);
	if(!rc) {
		p->token_refresh_count++;
		p->last_token_refresh = now;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

void health_count(struct health *h, enum health_counter c, uint64_t n)
{
	if((unsigned)c < HEALTH_COUNTER_COUNT)
		atomic_fetch_add_explicit(&h->counters[c], n, memory_order_relaxed);
}

uint64_t health_counter_get(struct health *h, enum health_counter c)
{
	if((unsigned)c >= HEALTH_COUNTER_COUNT)
		return 0;
	return atomic_load_explicit(&h->counters[c], memory_order_relaxed);
}

void health_set_series_tracked(struct health *h, size_t n)
{
	atomic_store(&h->series_tracked, (uint64_t)n);
}

void health_set_broker(struct health *h, bool connected)
{
	atomic_store(&h->broker_connected, connected);
}

int health_provider_get(struct health *h, const char *provider, struct health_provider *out)
{
	size_t i;
	int rc = RP_ENOENT;

	pthread_mutex_lock(&h->lock);
	for(i = 0; provider && i < h->n_providers; i++)
		if(!strcmp(h->providers[i].id, provider)) {
			*out = h->providers[i];
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

static void key(struct publish_buf *b, const char *name, bool first)
{
	publish_buf_puts(b, first ? "\"" : ",\"");
	publish_buf_puts(b, name);
	publish_buf_puts(b, "\":");
}

static void uint_field(struct publish_buf *b, const char *name, uint64_t v, bool first)
{
	char text[24];
	int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)v);

	key(b, name, first);
	publish_buf_append(b, text, (size_t)n);
}

static void provider_json(struct publish_buf *b, const struct health_provider *p)
{
	char clean[HEALTH_ERROR_SIZE];

	publish_buf_json_string(b, p->id);
	publish_buf_puts(b, ":{");
	uint_field(b, "consecutive_failures", (uint64_t)p->consecutive_failures, true);
	uint_field(b, "total_fetches", p->total_fetches, false);
	uint_field(b, "failed_fetches", p->failed_fetches, false);
	key(b, "success_rate", false);
	if(p->total_fetches) {
		double ok = (double)(p->total_fetches - p->failed_fetches) / (double)p->total_fetches;
		publish_buf_json_number(b, round(ok * 10000.0) / 10000.0);
	} else
		publish_buf_puts(b, "null");
	key(b, "last_success", false);
	publish_buf_json_time_or_null(b, p->last_success);
	key(b, "last_error", false);
	if(p->last_error[0]) {
		/* Again: a secret registered after the error was kept. */
		log_scrub(p->last_error, clean, sizeof(clean));
		publish_buf_json_string(b, clean);
	} else
		publish_buf_puts(b, "null");
	key(b, "last_error_code", false);
	publish_buf_json_string(b, p->last_error_code[0] ? p->last_error_code : NULL);
	key(b, "last_error_at", false);
	publish_buf_json_time_or_null(b, p->last_error_at);
	uint_field(b, "token_refresh_count", p->token_refresh_count, false);
	key(b, "last_token_refresh", false);
	publish_buf_json_time_or_null(b, p->last_token_refresh);
	publish_buf_puts(b, "}");
}

static void issue(struct publish_buf *b, bool *first, const char *text)
{
	if(!*first)
		publish_buf_puts(b, ",");
	*first = false;
	publish_buf_json_string(b, text);
}

int health_json(struct health *h, int64_t now, const struct health_check *check, struct publish_buf *out,
                bool *healthy)
{
	struct health_provider snap[HEALTH_PROVIDERS_MAX];
	size_t n, i, n_missing;
	int64_t started_at;
	int threshold =
	        check && check->failure_threshold > 0 ? check->failure_threshold : HEALTH_DEFAULT_THRESHOLD;
	bool broker = atomic_load(&h->broker_connected);
	bool ok = true, first = true;
	char text[HEALTH_ERROR_SIZE + 128];
	char clean[HEALTH_ERROR_SIZE];

	/* Copy under the lock, format outside it. */
	pthread_mutex_lock(&h->lock);
	n = h->n_providers;
	memcpy(snap, h->providers, n * sizeof(snap[0]));
	started_at = h->started_at;
	pthread_mutex_unlock(&h->lock);
	n_missing = check && check->missing_now ? check->n_missing : 0;

	for(i = 0; i < n; i++)
		if(snap[i].consecutive_failures >= threshold)
			ok = false;
	if(n_missing || !broker)
		ok = false;

	publish_buf_reset(out);
	publish_buf_puts(out, ok ? "{\"status\":\"healthy\"" : "{\"status\":\"degraded\"");
	key(out, "time", false);
	publish_buf_json_time(out, now);
	key(out, "started_at", false);
	publish_buf_json_time_or_null(out, started_at);
	uint_field(out, "uptime_s", now > started_at ? (uint64_t)(now - started_at) : 0, false);
	key(out, "version", false);
	publish_buf_json_string(out, h->version);
	key(out, "broker_connected", false);
	publish_buf_puts(out, broker ? "true" : "false");
	uint_field(out, "series_tracked", atomic_load(&h->series_tracked), false);

	key(out, "providers", false);
	publish_buf_puts(out, "{");
	for(i = 0; i < n; i++) {
		if(i)
			publish_buf_puts(out, ",");
		provider_json(out, &snap[i]);
	}
	publish_buf_puts(out, "}");

	key(out, "cache", false);
	publish_buf_puts(out, "{");
	for(i = 0; i < HEALTH_COUNTER_COUNT; i++)
		uint_field(out, counter_names[i], health_counter_get(h, (enum health_counter)i), i == 0);
	publish_buf_puts(out, "}");

	key(out, "issues", false);
	publish_buf_puts(out, "[");
	for(i = 0; i < n; i++) {
		if(snap[i].consecutive_failures < threshold)
			continue;
		log_scrub(snap[i].last_error[0] ? snap[i].last_error : "unknown error", clean, sizeof(clean));
		snprintf(text, sizeof(text), "%s: %d consecutive failures, last: %s", snap[i].id,
		         snap[i].consecutive_failures, clean);
		issue(out, &first, text);
	}
	for(i = 0; i < n_missing && i < HEALTH_ISSUES_SERIES_MAX; i++) {
		const char *name = check->missing_now[i] ? check->missing_now[i] : "?";
		snprintf(text, sizeof(text), "%.128s: no price for the current slot", name);
		issue(out, &first, text);
	}
	if(n_missing > HEALTH_ISSUES_SERIES_MAX) {
		snprintf(text, sizeof(text), "%zu more series without a price for the current slot",
		         n_missing - HEALTH_ISSUES_SERIES_MAX);
		issue(out, &first, text);
	}
	if(!broker)
		issue(out, &first, "MQTT broker unreachable");
	publish_buf_puts(out, "]}");

	if(healthy)
		*healthy = ok;
	return out->err;
}
