/*
 * discovery.c - Home Assistant MQTT discovery (see discovery.h).
 *
 * What HA accepts was taken from its sources (homeassistant/components/
 * mqtt/discovery.py, schemas.py, sensor.py, abbreviations.py): a device
 * discovery payload needs "device" (with identifiers), "origin" (with a
 * name) and "cmps", each component a "p" platform and a unique_id; the
 * options availability and state_topic at the root are inherited by every
 * component that does not set its own; the object id in the topic must
 * match [a-zA-Z0-9_-]+ and a component id must not hold a space. A sensor
 * with state_class "measurement" must not have device_class "monetary"
 * (which allows only "total"), so prices have no device class. A value
 * template rendering "None" (a JSON null) makes the state unknown.
 */
#include "ratepool/discovery.h"
#include "ratepool/config.h"
#include "ratepool/log.h"
#include "ratepool/mqtt.h"
#include "ratepool/provider.h"
#include "ratepool/rtime.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef RATEPOOL_VERSION
#define RATEPOOL_VERSION "0.0.0"
#endif

#define SERIES_BUCKETS    1024
#define REPUBLISH_MIN_MS  1000
#define REPUBLISH_SPAN_MS 4000
#define RETRY_S           1
#define RETRY_MS          1000
#define NO_DATA_RECHECK_S 60
#define HEALTH_ISSUES_MAX 8192 /* bytes of issues text kept in P/ha/service */
#define HEALTH_STATE_MAX  (HEALTH_ISSUES_MAX + 1024)
#define CONFIG_MAX        (16 * 1024)
#define STATE_MAX         1024
#define TOPIC_SIZE        (PUBLISH_TOPIC_SIZE + 16)

struct disc_series {
	struct series_ref ref;
	uint64_t h_config, h_today, h_tomorrow; /* FNV-1a of what was last published; 0: nothing */
	int64_t next_due;
	struct disc_series *next;
};

struct discovery {
	struct mqtt *mqtt;
	char *prefix;                           /* P */
	char *dprefix;                          /* D */
	char status_topic[PUBLISH_TOPIC_SIZE];  /* P/status */
	char ha_status[PUBLISH_TOPIC_SIZE];     /* D/status */
	char service_topic[PUBLISH_TOPIC_SIZE]; /* P/ha/service */
	char service_oid[DISCOVERY_OBJECT_ID_SIZE];
	int health_interval_s;

	struct disc_series *buckets[SERIES_BUCKETS];
	size_t n_series;

	bool service_due;
	int64_t service_retry_ms;
	bool health_due;
	bool have_health;
	int64_t health_retry_ms;
	int64_t republish_at_ms; /* 0: none scheduled */
	uint64_t rng;

	struct publish_buf cfg;    /* configs */
	struct publish_buf attrs;  /* today / tomorrow */
	struct publish_buf state;  /* series state */
	struct publish_buf health; /* last P/ha/service, kept for republishing */
};

/* --- small helpers ------------------------------------------------------- */

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for(i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ull;
	}
	return h ? h : 1; /* 0 means "nothing published" */
}

static uint64_t rng_next(struct discovery *d)
{
	uint64_t x = d->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	d->rng = x;
	return x;
}

static int pub(struct discovery *d, const char *topic, const struct publish_buf *b, bool retain,
               uint32_t expiry)
{
	int rc = mqtt_publish(d->mqtt, topic, b ? b->p : NULL, b ? b->len : 0, 1, retain, expiry);

	if(rc)
		log_debug("discovery_publish_failed", "topic=\"%s\" error=\"%s\"", topic, rp_strerror(rc));
	return rc;
}

static bool is_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* Appends s escaped (see discovery_object_id) at out[*pos]. */
static int escape_part(char *out, size_t n, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for(; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if(is_plain(c)) {
			if(*pos + 1 >= n)
				return RP_ETOOLARGE;
			out[(*pos)++] = (char)c;
		} else {
			if(*pos + 3 >= n)
				return RP_ETOOLARGE;
			out[(*pos)++] = '_';
			out[(*pos)++] = hex[c >> 4];
			out[(*pos)++] = hex[c & 15];
		}
	}
	out[*pos] = '\0';
	return 0;
}

int discovery_object_id(char *out, size_t n, const char *prefix, const struct series_ref *ref)
{
	size_t pos = 0;
	int rc;

	if(!out || !n)
		return RP_EINVAL;
	out[0] = '\0';
	if(!prefix || !*prefix)
		return RP_EINVAL;
	if(ref && (!series_id_valid(ref->provider) || !series_id_valid(ref->id)))
		return RP_EINVAL;
	rc = escape_part(out, n, &pos, prefix);
	if(!rc && ref) {
		const char *parts[2] = {ref->provider, ref->id};
		for(int i = 0; !rc && i < 2; i++) {
			if(pos + 3 >= n) {
				rc = RP_ETOOLARGE;
				break;
			}
			out[pos++] = '_';
			out[pos++] = '_';
			out[pos] = '\0';
			rc = escape_part(out, n, &pos, parts[i]);
		}
	}
	if(rc)
		out[0] = '\0';
	return rc;
}

/* Appends the slug of s to out (see discovery_entity_id). */
static void slug_part(char *out, size_t cap, size_t *pos, const char *s)
{
	bool gap = *pos > 0; /* a '_' goes before the next character */

	for(; *s && *pos < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')) {
			if(gap && *pos > 0) {
				if(*pos + 1 >= cap)
					break;
				out[(*pos)++] = '_';
			}
			gap = false;
			out[(*pos)++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		} else
			gap = true;
	}
	out[*pos] = '\0';
}

int discovery_entity_id(char *out, size_t n, const char *platform, const char *prefix,
                        const struct series_ref *ref, const char *key)
{
	char slug[201];
	size_t pos = 0;
	int w;

	if(!out || !n)
		return RP_EINVAL;
	out[0] = '\0';
	if(!platform || !*platform || !key)
		return RP_EINVAL;
	slug[0] = '\0';
	if(prefix)
		slug_part(slug, sizeof(slug) - 1, &pos, prefix);
	if(ref) {
		slug_part(slug, sizeof(slug) - 1, &pos, ref->provider);
		slug_part(slug, sizeof(slug) - 1, &pos, ref->id);
	}
	slug_part(slug, sizeof(slug) - 1, &pos, key);
	while(pos > 0 && slug[pos - 1] == '_')
		slug[--pos] = '\0';
	if(!pos)
		return RP_EINVAL;
	w = snprintf(out, n, "%s.%s", platform, slug);
	if(w < 0 || (size_t)w >= n) {
		out[0] = '\0';
		return RP_EINVAL;
	}
	return 0;
}

/* --- series table -------------------------------------------------------- */

static size_t ref_bucket(const struct series_ref *ref)
{
	/* FNV-1a over "provider/id", without building the string: this runs
	 * for every tracked series on every turn of the event loop. */
	uint64_t h = 1469598103934665603ull;
	const char *parts[2] = {ref->provider, ref->id};

	for(int i = 0; i < 2; i++) {
		for(const char *p = parts[i]; *p; p++) {
			h ^= (unsigned char)*p;
			h *= 1099511628211ull;
		}
		h ^= '/';
		h *= 1099511628211ull;
	}
	return (size_t)(h % SERIES_BUCKETS);
}

static struct disc_series **series_slot(struct discovery *d, const struct series_ref *ref)
{
	struct disc_series **pp = &d->buckets[ref_bucket(ref)];

	for(; *pp; pp = &(*pp)->next)
		if(!strcmp((*pp)->ref.id, ref->id) && !strcmp((*pp)->ref.provider, ref->provider))
			return pp;
	return pp;
}

/* --- topics -------------------------------------------------------------- */

static int series_topic(char *buf, size_t n, const struct discovery *d, const struct series_ref *ref,
                        const char *leaf)
{
	int w = snprintf(buf, n, "%s/ha/%s/%s/%s", d->prefix, ref->provider, ref->id, leaf);

	return w < 0 || (size_t)w >= n ? RP_ETOOLARGE : 0;
}

static int config_topic(char *buf, size_t n, const struct discovery *d, const char *oid)
{
	int w = snprintf(buf, n, "%s/device/%s/config", d->dprefix, oid);

	return w < 0 || (size_t)w >= n ? RP_ETOOLARGE : 0;
}

/* --- lifecycle ----------------------------------------------------------- */

int discovery_new(struct discovery **out, const struct config *cfg, struct mqtt *mqtt, struct rp_err *err)
{
	struct discovery *d = NULL;
	int rc = 0;

	*out = NULL;
	if(!cfg->discovery_prefix || !*cfg->discovery_prefix)
		return 0;
	if(!publish_prefix_valid(cfg->discovery_prefix))
		return rp_err_set(err, RP_EINVAL, "discovery_prefix \"%s\" cannot head a topic",
		                  cfg->discovery_prefix);
	if(!cfg->topic_prefix || !publish_prefix_valid(cfg->topic_prefix))
		return rp_err_set(err, RP_EINVAL, "topic_prefix cannot head a topic");
	d = calloc(1, sizeof(*d));
	if(!d)
		return RP_ENOMEM;
	d->mqtt = mqtt;
	d->prefix = strdup(cfg->topic_prefix);
	d->dprefix = strdup(cfg->discovery_prefix);
	if(!d->prefix || !d->dprefix) {
		rc = RP_ENOMEM;
		goto out;
	}
	d->health_interval_s = cfg->health_interval_s > 0 ? cfg->health_interval_s : 30;
	if(snprintf(d->status_topic, sizeof(d->status_topic), "%s/status", d->prefix) >=
	           (int)sizeof(d->status_topic) ||
	   snprintf(d->ha_status, sizeof(d->ha_status), "%s/status", d->dprefix) >=
	           (int)sizeof(d->ha_status) ||
	   snprintf(d->service_topic, sizeof(d->service_topic), "%s/ha/service", d->prefix) >=
	           (int)sizeof(d->service_topic) ||
	   discovery_object_id(d->service_oid, sizeof(d->service_oid), d->prefix, NULL)) {
		rc = rp_err_set(err, RP_EINVAL, "topic prefix too long for discovery");
		goto out;
	}
	publish_buf_init(&d->cfg, CONFIG_MAX);
	publish_buf_init(&d->attrs, DISCOVERY_ATTRS_MAX);
	publish_buf_init(&d->state, STATE_MAX);
	publish_buf_init(&d->health, HEALTH_STATE_MAX);
	d->rng = ((uint64_t)rtime_now_ms() << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)d;
	if(!d->rng)
		d->rng = 88172645463325252ull;
	d->service_due = true;
	*out = d;
	d = NULL;
out:
	discovery_free(d);
	return rc;
}

void discovery_free(struct discovery *d)
{
	size_t b;

	if(!d)
		return;
	for(b = 0; b < SERIES_BUCKETS; b++) {
		struct disc_series *s = d->buckets[b], *next;
		for(; s; s = next) {
			next = s->next;
			free(s);
		}
	}
	publish_buf_free(&d->cfg);
	publish_buf_free(&d->attrs);
	publish_buf_free(&d->state);
	publish_buf_free(&d->health);
	free(d->prefix);
	free(d->dprefix);
	free(d);
}

int discovery_subscribe(struct discovery *d)
{
	if(!d)
		return 0;
	return mqtt_subscribe_add(d->mqtt, d->ha_status, 1, true);
}

bool discovery_handle(struct discovery *d, const struct mqtt_msg *m, int64_t now_ms)
{
	size_t len;

	if(!d || !m || !m->topic || strcmp(m->topic, d->ha_status))
		return false;
	len = m->len;
	while(len &&
	      (m->payload[len - 1] == '\n' || m->payload[len - 1] == '\r' || m->payload[len - 1] == ' '))
		len--;
	if(len == 6 && !memcmp(m->payload, "online", 6)) {
		if(!d->republish_at_ms) {
			d->republish_at_ms =
			        now_ms + REPUBLISH_MIN_MS + (int64_t)(rng_next(d) % (REPUBLISH_SPAN_MS + 1));
			log_info("discovery_ha_online", "republish_in_ms=%lld",
			         (long long)(d->republish_at_ms - now_ms));
		}
	}
	return true;
}

void discovery_reset(struct discovery *d)
{
	size_t b;

	if(!d)
		return;
	for(b = 0; b < SERIES_BUCKETS; b++)
		for(struct disc_series *s = d->buckets[b]; s; s = s->next) {
			s->h_config = s->h_today = s->h_tomorrow = 0;
			s->next_due = 0;
		}
	d->service_due = true;
	d->service_retry_ms = 0;
	if(d->have_health) {
		d->health_due = true;
		d->health_retry_ms = 0;
	}
}

void discovery_tick(struct discovery *d, int64_t now_ms)
{
	if(!d)
		return;
	if(d->republish_at_ms && now_ms >= d->republish_at_ms) {
		d->republish_at_ms = 0;
		log_info("discovery_republish", "series=%zu", d->n_series);
		discovery_reset(d);
	}
	if(d->service_due && now_ms >= d->service_retry_ms) {
		if(discovery_publish_service(d))
			d->service_retry_ms = now_ms + RETRY_MS;
	}
	if(d->health_due && d->have_health && now_ms >= d->health_retry_ms) {
		if(pub(d, d->service_topic, &d->health, true, (uint32_t)(3 * d->health_interval_s)) == 0)
			d->health_due = false;
		else
			d->health_retry_ms = now_ms + RETRY_MS;
	}
}

/* --- config builders ------------------------------------------------------ */

/* The root of a device payload: device, origin, availability and the
 * shared state topic, then the opening of "cmps". */
static void root_open(struct discovery *d, struct publish_buf *b, const char *oid, const char *name,
                      const char *manufacturer, const char *model, bool via, const char *state_topic)
{
	publish_buf_puts(b, "{\"device\":{\"identifiers\":[");
	publish_buf_json_string(b, oid);
	publish_buf_puts(b, "],\"name\":");
	publish_buf_json_string(b, name);
	publish_buf_puts(b, ",\"manufacturer\":");
	publish_buf_json_string(b, manufacturer);
	publish_buf_puts(b, ",\"model\":");
	publish_buf_json_string(b, model);
	publish_buf_puts(b, ",\"sw_version\":");
	publish_buf_json_string(b, RATEPOOL_VERSION);
	if(via) {
		publish_buf_puts(b, ",\"via_device\":");
		publish_buf_json_string(b, d->service_oid);
	}
	publish_buf_puts(b, "},\"origin\":{\"name\":\"ratepool\",\"sw_version\":");
	publish_buf_json_string(b, RATEPOOL_VERSION);
	publish_buf_puts(b, "},\"availability\":[{\"topic\":");
	publish_buf_json_string(b, d->status_topic);
	publish_buf_puts(b, ",\"payload_available\":\"online\",\"payload_not_available\":\"offline\"}],"
	                    "\"availability_mode\":\"latest\",\"state_topic\":");
	publish_buf_json_string(b, state_topic);
	publish_buf_puts(b, ",\"cmps\":{");
}

struct comp_opts {
	const char *platform; /* "sensor", "binary_sensor" */
	const char *key;      /* component id, unique id suffix */
	const char *name;
	const char *field;        /* value_json.<field> */
	const char *unit;         /* NULL: none */
	const char *state_class;  /* NULL: none */
	const char *device_class; /* NULL: none */
	const char *category;     /* entity_category; NULL: none */
	const char *icon;         /* NULL: none */
	int precision;            /* suggested_display_precision; < 0: none */
	int expire_after;         /* <= 0: none */
	const char *attrs_topic;  /* json_attributes_topic; NULL: none */
	const char *attrs_template;
};

static void component(struct discovery *d, struct publish_buf *b, const char *oid,
                      const struct series_ref *ref, const struct comp_opts *c, bool first)
{
	char eid[DISCOVERY_ENTITY_ID_SIZE];
	char text[DISCOVERY_OBJECT_ID_SIZE + 64];

	if(!first)
		publish_buf_puts(b, ",");
	publish_buf_json_string(b, c->key);
	publish_buf_puts(b, ":{\"p\":");
	publish_buf_json_string(b, c->platform);
	publish_buf_puts(b, ",\"name\":");
	publish_buf_json_string(b, c->name);
	snprintf(text, sizeof(text), "%s_%s", oid, c->key);
	publish_buf_puts(b, ",\"unique_id\":");
	publish_buf_json_string(b, text);
	if(discovery_entity_id(eid, sizeof(eid), c->platform, d->prefix, ref, c->key) == 0) {
		publish_buf_puts(b, ",\"default_entity_id\":");
		publish_buf_json_string(b, eid);
	}
	snprintf(text, sizeof(text), "{{ value_json.%s }}", c->field);
	publish_buf_puts(b, ",\"value_template\":");
	publish_buf_json_string(b, text);
	if(c->unit) {
		publish_buf_puts(b, ",\"unit_of_measurement\":");
		publish_buf_json_string(b, c->unit);
	}
	if(c->state_class) {
		publish_buf_puts(b, ",\"state_class\":");
		publish_buf_json_string(b, c->state_class);
	}
	if(c->device_class) {
		publish_buf_puts(b, ",\"device_class\":");
		publish_buf_json_string(b, c->device_class);
	}
	if(c->category) {
		publish_buf_puts(b, ",\"entity_category\":");
		publish_buf_json_string(b, c->category);
	}
	if(c->icon) {
		publish_buf_puts(b, ",\"icon\":");
		publish_buf_json_string(b, c->icon);
	}
	if(c->precision >= 0) {
		publish_buf_puts(b, ",\"suggested_display_precision\":");
		publish_buf_json_int(b, c->precision);
	}
	if(c->expire_after > 0) {
		publish_buf_puts(b, ",\"expire_after\":");
		publish_buf_json_int(b, c->expire_after);
	}
	if(!strcmp(c->platform, "binary_sensor"))
		publish_buf_puts(b, ",\"payload_on\":\"ON\",\"payload_off\":\"OFF\"");
	if(c->attrs_topic) {
		publish_buf_puts(b, ",\"json_attributes_topic\":");
		publish_buf_json_string(b, c->attrs_topic);
		if(c->attrs_template) {
			publish_buf_puts(b, ",\"json_attributes_template\":");
			publish_buf_json_string(b, c->attrs_template);
		}
	}
	publish_buf_puts(b, "}");
}

int discovery_publish_service(struct discovery *d)
{
	char topic[TOPIC_SIZE + DISCOVERY_OBJECT_ID_SIZE];
	char name[PUBLISH_PREFIX_MAX + 16];
	int expire, rc, i;
	struct comp_opts c[6];

	if(!d)
		return 0;
	rc = config_topic(topic, sizeof(topic), d, d->service_oid);
	if(rc)
		return rc;
	if(!strcmp(d->prefix, "ratepool"))
		snprintf(name, sizeof(name), "ratepool");
	else
		snprintf(name, sizeof(name), "ratepool (%s)", d->prefix);
	/* Health goes out every interval and on change: three missed in a row
	 * mean ratepool is gone even if its will was lost. */
	expire = 3 * d->health_interval_s;
	memset(c, 0, sizeof(c));
	c[0] = (struct comp_opts){.platform = "binary_sensor",
	                          .key = "problem",
	                          .name = "Problem",
	                          .field = "problem",
	                          .device_class = "problem",
	                          .precision = -1,
	                          .expire_after = expire,
	                          .attrs_topic = d->service_topic,
	                          .attrs_template = "{{ {'issues': value_json.issues} | tojson }}"};
	c[1] = (struct comp_opts){.platform = "sensor",
	                          .key = "consecutive_failures",
	                          .name = "Consecutive failures",
	                          .field = "consecutive_failures",
	                          .state_class = "measurement",
	                          .category = "diagnostic",
	                          .icon = "mdi:alert-circle-outline",
	                          .precision = -1,
	                          .expire_after = expire};
	c[2] = (struct comp_opts){.platform = "sensor",
	                          .key = "token_refreshes",
	                          .name = "Token refreshes",
	                          .field = "token_refreshes",
	                          .state_class = "total_increasing",
	                          .category = "diagnostic",
	                          .icon = "mdi:key-change",
	                          .precision = -1,
	                          .expire_after = expire};
	c[3] = (struct comp_opts){.platform = "sensor",
	                          .key = "upstream_calls",
	                          .name = "Upstream calls",
	                          .field = "upstream_calls",
	                          .state_class = "total_increasing",
	                          .category = "diagnostic",
	                          .icon = "mdi:cloud-download-outline",
	                          .precision = -1,
	                          .expire_after = expire};
	c[4] = (struct comp_opts){.platform = "sensor",
	                          .key = "cache_hit_rate",
	                          .name = "Cache hit rate",
	                          .field = "cache_hit_rate",
	                          .unit = "%",
	                          .state_class = "measurement",
	                          .category = "diagnostic",
	                          .icon = "mdi:percent",
	                          .precision = 1,
	                          .expire_after = expire};
	c[5] = (struct comp_opts){.platform = "sensor",
	                          .key = "series_tracked",
	                          .name = "Series tracked",
	                          .field = "series_tracked",
	                          .state_class = "measurement",
	                          .category = "diagnostic",
	                          .icon = "mdi:chart-line",
	                          .precision = -1,
	                          .expire_after = expire};
	publish_buf_reset(&d->cfg);
	root_open(d, &d->cfg, d->service_oid, name, "ratepool", "Electricity price cache", false,
	          d->service_topic);
	for(i = 0; i < 6; i++)
		component(d, &d->cfg, d->service_oid, NULL, &c[i], i == 0);
	publish_buf_puts(&d->cfg, "}}");
	if(d->cfg.err)
		return d->cfg.err;
	rc = pub(d, topic, &d->cfg, true, 0);
	if(rc == 0)
		d->service_due = false;
	return rc;
}

/* --- health --------------------------------------------------------------- */

static json_int_t int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

int discovery_publish_health(struct discovery *d, const char *json, size_t len)
{
	json_t *root = NULL, *providers, *cache, *issues, *v;
	json_error_t jerr;
	const char *status, *key;
	json_int_t failures = 0, refreshes = 0, requests, hits;
	size_t i, issues_bytes = 0;
	int rc;

	if(!d)
		return 0;
	root = json_loadb(json, len, 0, &jerr);
	status = json_string_value(json_object_get(root, "status"));
	if(!json_is_object(root) || !status) {
		rc = RP_EPARSE;
		goto out;
	}
	providers = json_object_get(root, "providers");
	json_object_foreach(providers, key, v)
	{
		json_int_t f = int_of(v, "consecutive_failures");
		if(f > failures)
			failures = f;
		refreshes += int_of(v, "token_refresh_count");
	}
	cache = json_object_get(root, "cache");
	requests = int_of(cache, "requests");
	hits = int_of(cache, "hits");

	publish_buf_reset(&d->health);
	publish_buf_puts(&d->health, "{\"problem\":");
	publish_buf_puts(&d->health, strcmp(status, "healthy") ? "\"ON\"" : "\"OFF\"");
	publish_buf_puts(&d->health, ",\"consecutive_failures\":");
	publish_buf_json_int(&d->health, failures);
	publish_buf_puts(&d->health, ",\"token_refreshes\":");
	publish_buf_json_int(&d->health, refreshes);
	publish_buf_puts(&d->health, ",\"upstream_calls\":");
	publish_buf_json_int(&d->health, int_of(cache, "upstream_calls"));
	publish_buf_puts(&d->health, ",\"cache_hit_rate\":");
	if(requests > 0)
		publish_buf_json_number(&d->health, round(1000.0 * (double)hits / (double)requests) / 10.0);
	else
		publish_buf_puts(&d->health, "null");
	publish_buf_puts(&d->health, ",\"series_tracked\":");
	publish_buf_json_int(&d->health, int_of(root, "series_tracked"));
	publish_buf_puts(&d->health, ",\"issues\":[");
	issues = json_object_get(root, "issues");
	for(i = 0; i < json_array_size(issues); i++) {
		const char *s = json_string_value(json_array_get(issues, i));
		size_t n = s ? strlen(s) : 0;
		if(!s)
			continue;
		if(issues_bytes + n > HEALTH_ISSUES_MAX) {
			/* Attributes stay far below HA's recorder limit. */
			if(issues_bytes)
				publish_buf_puts(&d->health, ",");
			publish_buf_json_string(&d->health, "(more issues: see P/health)");
			break;
		}
		if(issues_bytes)
			publish_buf_puts(&d->health, ",");
		publish_buf_json_string(&d->health, s);
		issues_bytes += n + 1;
	}
	publish_buf_puts(&d->health, "]}");
	rc = d->health.err;
	if(rc) {
		d->have_health = false;
		goto out;
	}
	d->have_health = true;
	rc = pub(d, d->service_topic, &d->health, true, (uint32_t)(3 * d->health_interval_s));
	d->health_due = rc != 0;
out:
	json_decref(root);
	return rc;
}

/* --- series --------------------------------------------------------------- */

static bool finite_slot(const struct slot *s)
{
	return isfinite(s->value) && s->end > s->start;
}

static double round6(double v)
{
	double r = round(v * 1e6) / 1e6;

	return isfinite(r) ? r : v;
}

struct day_stats {
	bool known;
	double min, max, avg;
};

static void stats_of(const struct slot_list *slots, int64_t from, int64_t to, struct day_stats *st)
{
	double weighted = 0;
	int64_t seconds = 0;
	size_t i;

	memset(st, 0, sizeof(*st));
	for(i = 0; i < slots->n; i++) {
		const struct slot *s = &slots->v[i];
		if(s->start < from || s->start >= to || !finite_slot(s))
			continue;
		if(!st->known || s->value < st->min)
			st->min = s->value;
		if(!st->known || s->value > st->max)
			st->max = s->value;
		st->known = true;
		weighted += s->value * (double)(s->end - s->start);
		seconds += s->end - s->start;
	}
	if(st->known)
		st->avg = round6(weighted / (double)seconds);
}

static void num_or_null(struct publish_buf *b, bool known, double v)
{
	if(known && isfinite(v))
		publish_buf_json_number(b, v);
	else
		publish_buf_puts(b, "null");
}

/* One merged entry of the attributes list. */
struct bucket {
	int64_t start, end, seconds;
	double weighted;
	size_t count;
};

static void bucket_write(struct publish_buf *out, const struct bucket *k, bool merged, bool *first)
{
	if(!*first)
		publish_buf_puts(out, ",");
	*first = false;
	publish_buf_puts(out, "{\"start\":");
	publish_buf_json_time(out, k->start);
	publish_buf_puts(out, ",\"end\":");
	publish_buf_json_time(out, k->end);
	publish_buf_puts(out, ",\"value\":");
	publish_buf_json_number(out, merged && k->count > 1 ? round6(k->weighted / (double)k->seconds)
	                                                    : k->weighted / (double)k->seconds);
	publish_buf_puts(out, "}");
}

/* Writes the list with buckets of `len` seconds aligned on `from` (len 0:
 * every slot as it is). */
static int attributes_at(struct publish_buf *out, const struct slot_list *slots, int64_t from, int64_t to,
                         int64_t len, int64_t resolution)
{
	struct bucket k;
	bool first = true, open = false;
	size_t i;

	publish_buf_reset(out);
	publish_buf_puts(out, "{\"rates\":[");
	memset(&k, 0, sizeof(k));
	for(i = 0; i < slots->n && !out->err; i++) {
		const struct slot *s = &slots->v[i];
		int64_t idx;
		if(s->start < from || s->start >= to || !finite_slot(s))
			continue;
		idx = len ? (s->start - from) / len : 0;
		/* A slot joins the open bucket when it continues it without a gap
		 * and starts in the same bucket. */
		if(open && len && s->start == k.end && (k.start - from) / len == idx) {
			k.end = s->end;
			k.seconds += s->end - s->start;
			k.weighted += s->value * (double)(s->end - s->start);
			k.count++;
			continue;
		}
		if(open)
			bucket_write(out, &k, len > 0, &first);
		k.start = s->start;
		k.end = s->end;
		k.seconds = s->end - s->start;
		k.weighted = s->value * (double)k.seconds;
		k.count = 1;
		open = true;
	}
	if(open)
		bucket_write(out, &k, len > 0, &first);
	publish_buf_puts(out, "],\"resolution\":");
	if(open)
		publish_buf_json_int(out, len ? len : resolution);
	else
		publish_buf_puts(out, "null");
	publish_buf_puts(out, "}");
	return out->err;
}

int discovery_day_attributes(struct publish_buf *out, const struct slot_list *slots, int64_t from, int64_t to,
                             size_t max)
{
	static const int factors[] = {2, 3, 4, 6, 12};
	size_t old_max = out->max;
	int64_t shortest = 0, len;
	size_t i;
	int rc;

	out->max = max ? max : DISCOVERY_ATTRS_MAX;
	for(i = 0; i < slots->n; i++) {
		const struct slot *s = &slots->v[i];
		if(s->start >= from && s->start < to && finite_slot(s) &&
		   (!shortest || s->end - s->start < shortest))
			shortest = s->end - s->start;
	}
	rc = attributes_at(out, slots, from, to, 0, shortest);
	for(i = 0; rc == RP_ETOOLARGE && i < sizeof(factors) / sizeof(factors[0]); i++) {
		len = shortest * factors[i];
		if(len >= 3600)
			break;
		rc = attributes_at(out, slots, from, to, len, shortest);
	}
	if(rc == RP_ETOOLARGE)
		rc = attributes_at(out, slots, from, to, 3600, shortest);
	out->max = old_max;
	return rc;
}

static const char *provider_label(const char *id)
{
	if(!strcmp(id, "octopus"))
		return "Octopus Energy";
	if(!strcmp(id, "tibber"))
		return "Tibber";
	if(!strcmp(id, "watttime"))
		return "WattTime";
	if(!strcmp(id, "aemo"))
		return "AEMO";
	if(!strcmp(id, "energycharts"))
		return "Energy-Charts";
	return id;
}

static const char *provider_model(const char *id)
{
	if(!strcmp(id, "octopus"))
		return "Tariff";
	if(!strcmp(id, "tibber"))
		return "Home";
	if(!strcmp(id, "watttime"))
		return "Grid region (marginal emissions)";
	if(!strcmp(id, "aemo"))
		return "NEM region (dispatch price)";
	if(!strcmp(id, "energycharts"))
		return "Bidding zone (day-ahead price)";
	return "Series";
}

static bool is_price(const char *unit)
{
	size_t n = strlen(unit);

	return n > 4 && !strcmp(unit + n - 4, "/kWh");
}

static const char *unit_icon(const char *unit)
{
	if(!strncmp(unit, "GBP", 3))
		return "mdi:currency-gbp";
	if(!strncmp(unit, "EUR", 3))
		return "mdi:currency-eur";
	if(!strncmp(unit, "AUD", 3) || !strncmp(unit, "USD", 3))
		return "mdi:currency-usd";
	if(strstr(unit, "co2"))
		return "mdi:molecule-co2";
	return "mdi:flash";
}

/* The components of a series device, in order: key, state field, name
 * before and after the noun ("price" or "intensity"). */
static const struct {
	const char *key, *before, *after;
	int attrs; /* 0 none, 1 today, 2 tomorrow */
} series_comps[] = {
        {"current", "Current ", "", 0},
        {"next", "Next ", "", 0},
        {"today_min", "Today's lowest ", "", 0},
        {"today_max", "Today's highest ", "", 0},
        {"today_avg", "Today's average ", "", 1},
        {"tomorrow_min", "Tomorrow's lowest ", "", 0},
        {"tomorrow_max", "Tomorrow's highest ", "", 0},
        {"tomorrow_avg", "Tomorrow's average ", "", 2},
};

static int series_config(struct discovery *d, const struct series_ref *ref, const struct provider *p,
                         const char *oid, const char *unit, int expire, const char *state_topic,
                         const char *today_topic, const char *tomorrow_topic)
{
	struct publish_buf *b = &d->cfg;
	char name[PROVIDER_ID_MAX + SERIES_ID_MAX + 32];
	char cname[64];
	const char *noun = is_price(unit) ? "price" : "intensity";
	size_t i;

	snprintf(name, sizeof(name), "%s %s", provider_label(ref->provider), ref->id);
	publish_buf_reset(b);
	root_open(d, b, oid, name, provider_label(ref->provider),
	          p ? provider_model(ref->provider) : "Series", true, state_topic);
	for(i = 0; i < sizeof(series_comps) / sizeof(series_comps[0]); i++) {
		struct comp_opts c;
		memset(&c, 0, sizeof(c));
		snprintf(cname, sizeof(cname), "%s%s%s", series_comps[i].before, noun, series_comps[i].after);
		c.platform = "sensor";
		c.key = series_comps[i].key;
		c.name = cname;
		c.field = series_comps[i].key;
		c.unit = unit;
		c.state_class = "measurement";
		c.icon = unit_icon(unit);
		c.precision = is_price(unit) ? 4 : 1;
		c.expire_after = expire;
		if(series_comps[i].attrs == 1)
			c.attrs_topic = today_topic;
		else if(series_comps[i].attrs == 2)
			c.attrs_topic = tomorrow_topic;
		component(d, b, oid, ref, &c, i == 0);
	}
	publish_buf_puts(b, "}}");
	return b->err;
}

static int series_state(struct publish_buf *b, const struct slot_list *slots, int64_t now,
                        const struct day_stats *today, const struct day_stats *tomorrow)
{
	long at = publish_slot_at(slots, now);
	bool cur = false, nxt = false;
	double cv = 0, nv = 0;
	size_t i;

	if(at >= 0 && finite_slot(&slots->v[at])) {
		cur = true;
		cv = slots->v[at].value;
	}
	/* The slot right after the current one (or, in a gap, the next to
	 * begin); a gap after the current slot means "not known". */
	for(i = at >= 0 ? (size_t)at + 1 : 0; i < slots->n; i++) {
		const struct slot *s = &slots->v[i];
		if(s->start <= now)
			continue;
		if(at >= 0 && s->start != slots->v[at].end)
			break;
		if(finite_slot(s)) {
			nxt = true;
			nv = s->value;
		}
		break;
	}
	publish_buf_reset(b);
	publish_buf_puts(b, "{\"current\":");
	num_or_null(b, cur, cv);
	publish_buf_puts(b, ",\"next\":");
	num_or_null(b, nxt, nv);
	publish_buf_puts(b, ",\"today_min\":");
	num_or_null(b, today->known, today->min);
	publish_buf_puts(b, ",\"today_max\":");
	num_or_null(b, today->known, today->max);
	publish_buf_puts(b, ",\"today_avg\":");
	num_or_null(b, today->known, today->avg);
	publish_buf_puts(b, ",\"tomorrow_min\":");
	num_or_null(b, tomorrow->known, tomorrow->min);
	publish_buf_puts(b, ",\"tomorrow_max\":");
	num_or_null(b, tomorrow->known, tomorrow->max);
	publish_buf_puts(b, ",\"tomorrow_avg\":");
	num_or_null(b, tomorrow->known, tomorrow->avg);
	publish_buf_puts(b, "}");
	return b->err;
}

/* Publishes b to topic unless its hash is *h; updates *h on success. */
static int pub_changed(struct discovery *d, const char *topic, const struct publish_buf *b, uint64_t *h)
{
	uint64_t nh = fnv1a(b->p ? b->p : "", b->len);
	int rc;

	if(nh == *h)
		return 0;
	rc = pub(d, topic, b, true, 0);
	if(rc == 0)
		*h = nh;
	return rc;
}

bool discovery_due(struct discovery *d, const struct series_ref *ref, int64_t now)
{
	struct disc_series *s;

	if(!d || !ref)
		return false;
	s = *series_slot(d, ref);
	return !s || now >= s->next_due;
}

int discovery_publish_series(struct discovery *d, const struct series_ref *ref, const struct provider *p,
                             const struct slot_list *slots, int64_t now)
{
	char oid[DISCOVERY_OBJECT_ID_SIZE];
	char topic[TOPIC_SIZE + DISCOVERY_OBJECT_ID_SIZE];
	char state_topic[TOPIC_SIZE], today_topic[TOPIC_SIZE], tomorrow_topic[TOPIC_SIZE];
	struct disc_series **pp, *s;
	struct day_stats today, tomorrow;
	const char *unit;
	enum rtime_zone zone = p ? p->zone : RTIME_UTC;
	int64_t day0, day1, day2, longest = p && p->resolution > 0 ? p->resolution : 0, next;
	int expire, rc = 0, first_rc = 0;
	bool any = false;
	size_t i;

	if(!d)
		return 0;
	if(!ref || !slots || discovery_object_id(oid, sizeof(oid), d->prefix, ref))
		return RP_EINVAL;
	pp = series_slot(d, ref);
	s = *pp;
	if(!s) {
		if(d->n_series >= DISCOVERY_SERIES_MAX)
			return RP_ELIMIT;
		s = calloc(1, sizeof(*s));
		if(!s)
			return RP_ENOMEM;
		s->ref = *ref;
		*pp = s;
		d->n_series++;
	}
	for(i = 0; i < slots->n; i++) {
		if(!finite_slot(&slots->v[i]))
			continue;
		any = true;
		if(slots->v[i].end - slots->v[i].start > longest)
			longest = slots->v[i].end - slots->v[i].start;
	}
	if(!any && !s->h_config) {
		/* Nothing known yet: no device for a series that may not exist. */
		s->next_due = now + NO_DATA_RECHECK_S;
		return 0;
	}
	if(longest <= 0)
		longest = 1800;
	expire = (int)(longest + DISCOVERY_EXPIRE_MARGIN_S);
	unit = slots->unit[0] ? slots->unit : (p && p->unit ? p->unit : "");
	if(series_topic(state_topic, sizeof(state_topic), d, ref, "state") ||
	   series_topic(today_topic, sizeof(today_topic), d, ref, "today") ||
	   series_topic(tomorrow_topic, sizeof(tomorrow_topic), d, ref, "tomorrow") ||
	   config_topic(topic, sizeof(topic), d, oid))
		return RP_EINVAL;

	rc = series_config(d, ref, p, oid, unit, expire, state_topic, today_topic, tomorrow_topic);
	if(!rc)
		rc = pub_changed(d, topic, &d->cfg, &s->h_config);
	if(rc && !first_rc)
		first_rc = rc;

	day0 = rtime_day_start(zone, now);
	day1 = rtime_day_add(zone, now, 1);
	day2 = rtime_day_add(zone, now, 2);
	stats_of(slots, day0, day1, &today);
	stats_of(slots, day1, day2, &tomorrow);

	rc = discovery_day_attributes(&d->attrs, slots, day0, day1, 0);
	if(!rc)
		rc = pub_changed(d, today_topic, &d->attrs, &s->h_today);
	if(rc && !first_rc)
		first_rc = rc;
	rc = discovery_day_attributes(&d->attrs, slots, day1, day2, 0);
	if(!rc)
		rc = pub_changed(d, tomorrow_topic, &d->attrs, &s->h_tomorrow);
	if(rc && !first_rc)
		first_rc = rc;

	rc = series_state(&d->state, slots, now, &today, &tomorrow);
	if(!rc)
		rc = pub(d, state_topic, &d->state, true, (uint32_t)expire);
	if(rc && !first_rc)
		first_rc = rc;

	/* Next: the next slot boundary, local midnight, and at the latest one
	 * longest slot from now so that expire_after never fires while ratepool
	 * runs. */
	next = now + longest;
	{
		int64_t b = publish_next_boundary(slots, now);
		if(b > now && b < next)
			next = b;
	}
	if(day1 > now && day1 < next)
		next = day1;
	s->next_due = first_rc ? now + RETRY_S : next;
	return first_rc;
}

int discovery_remove_series(struct discovery *d, const struct series_ref *ref)
{
	char oid[DISCOVERY_OBJECT_ID_SIZE];
	char topic[TOPIC_SIZE + DISCOVERY_OBJECT_ID_SIZE];
	static const char *const leaves[] = {"state", "today", "tomorrow"};
	struct disc_series **pp, *s;
	int rc = 0, r;
	size_t i;

	if(!d)
		return 0;
	if(!ref || discovery_object_id(oid, sizeof(oid), d->prefix, ref))
		return RP_EINVAL;
	if(config_topic(topic, sizeof(topic), d, oid) == 0)
		rc = pub(d, topic, NULL, true, 0);
	for(i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		if(series_topic(topic, sizeof(topic), d, ref, leaves[i]))
			continue;
		r = pub(d, topic, NULL, true, 0);
		if(r && !rc)
			rc = r;
	}
	pp = series_slot(d, ref);
	s = *pp;
	if(s) {
		*pp = s->next;
		free(s);
		d->n_series--;
	}
	log_info("discovery_removed", "series=%s/%s", ref->provider, ref->id);
	return rc;
}
