/*
 * test_discovery.c - Home Assistant MQTT discovery: every config payload
 * checked against the rules Home Assistant applies to it (encoded below
 * from homeassistant/components/mqtt/{discovery,schemas,sensor,
 * binary_sensor}.py and sensor/const.py), the state and attributes sizes
 * HA and its recorder accept, and the publishing behaviour (dedupe,
 * removal, HA's birth message, failures, switch-off, custom prefix).
 *
 * mqtt_publish and mqtt_subscribe_add are stubbed here (mosquitto style):
 * every publish is captured.
 */
#include "ratepool/config.h"
#include "ratepool/discovery.h"
#include "ratepool/error.h"
#include "ratepool/health.h"
#include "ratepool/mqtt.h"
#include "ratepool/provider.h"
#include "ratepool/rtime.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support/fixture.h"

/* --- the MQTT stub -------------------------------------------------------- */

struct msg {
	char *topic;
	char *payload; /* NUL-terminated copy */
	size_t len;
	bool retain;
	uint32_t expiry;
};

static struct msg *msgs;
static size_t n_msgs, cap_msgs;
static int publish_fails; /* next publishes that fail with RP_ENET */
static char subscribed[256];

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                 uint32_t expiry_s)
{
	struct msg *x;

	(void)m;
	assert_true(qos >= 0 && qos <= 2);
	if(publish_fails > 0) {
		publish_fails--;
		return RP_ENET;
	}
	if(n_msgs == cap_msgs) {
		cap_msgs = cap_msgs ? cap_msgs * 2 : 64;
		msgs = realloc(msgs, cap_msgs * sizeof(*msgs));
		assert_non_null(msgs);
	}
	x = &msgs[n_msgs++];
	x->topic = strdup(topic);
	x->payload = malloc(len + 1);
	assert_non_null(x->payload);
	if(len)
		memcpy(x->payload, payload, len);
	x->payload[len] = '\0';
	x->len = len;
	x->retain = retain;
	x->expiry = expiry_s;
	return 0;
}

int mqtt_subscribe_add(struct mqtt *m, const char *filter, int qos, bool skip_retained)
{
	(void)m;
	(void)skip_retained;
	assert_int_equal(qos, 1);
	snprintf(subscribed, sizeof(subscribed), "%s", filter);
	return 0;
}

static void msgs_clear(void)
{
	for(size_t i = 0; i < n_msgs; i++) {
		free(msgs[i].topic);
		free(msgs[i].payload);
	}
	n_msgs = 0;
}

/* The last message on topic, or NULL. */
static const struct msg *last_on(const char *topic)
{
	for(size_t i = n_msgs; i-- > 0;)
		if(!strcmp(msgs[i].topic, topic))
			return &msgs[i];
	return NULL;
}

static size_t count_on(const char *topic)
{
	size_t n = 0;

	for(size_t i = 0; i < n_msgs; i++)
		n += !strcmp(msgs[i].topic, topic);
	return n;
}

static size_t count_suffix(const char *suffix)
{
	size_t n = 0, sl = strlen(suffix);

	for(size_t i = 0; i < n_msgs; i++) {
		size_t tl = strlen(msgs[i].topic);
		n += tl >= sl && !strcmp(msgs[i].topic + tl - sl, suffix);
	}
	return n;
}

/* --- fixtures ------------------------------------------------------------- */

struct fixture {
	struct config cfg;
	struct discovery *d;
	struct slot_list slots;
};

static int setup_with(void **state, const char *prefix, const char *dprefix)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct rp_err err;

	assert_non_null(f);
	f->cfg.topic_prefix = strdup(prefix);
	f->cfg.discovery_prefix = strdup(dprefix);
	f->cfg.health_interval_s = 30;
	slot_list_init(&f->slots);
	rp_err_clear(&err);
	assert_int_equal(discovery_new(&f->d, &f->cfg, NULL, &err), 0);
	msgs_clear();
	publish_fails = 0;
	subscribed[0] = '\0';
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, "ratepool", "homeassistant");
}

static int setup_custom(void **state)
{
	return setup_with(state, "home/energy/ratepool", "ha-test");
}

static int setup_off(void **state)
{
	return setup_with(state, "ratepool", "");
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	discovery_free(f->d);
	slot_list_free(&f->slots);
	free(f->cfg.topic_prefix);
	free(f->cfg.discovery_prefix);
	free(f);
	msgs_clear();
	free(msgs);
	msgs = NULL;
	cap_msgs = 0;
	return 0;
}

static struct series_ref ref_of(const char *provider, const char *id)
{
	struct series_ref r;

	assert_int_equal(series_ref_set(&r, provider, id), 0);
	return r;
}

/* Slots of `step` seconds over [from, to) with a value per index. */
static void fill(struct slot_list *l, int64_t from, int64_t to, int64_t step, double base)
{
	int64_t t;
	size_t i = 0;

	for(t = from; t < to; t += step, i++)
		assert_int_equal(slot_list_push(l, t, t + step, base + 0.001 * (double)(i % 97), NAN), 0);
}

static void set_unit(struct slot_list *l, const char *unit)
{
	snprintf(l->unit, sizeof(l->unit), "%s", unit);
}

static json_t *parse_json(const char *p, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(p, len, JSON_REJECT_DUPLICATES, &jerr);

	if(!j)
		fail_msg("not JSON (%s): %.300s", jerr.text, p);
	return j;
}

/* --- Home Assistant's rules ------------------------------------------------ */

static const char *or_default(const char *s, const char *def)
{
	return s ? s : def;
}

static const char *or_empty(const char *s)
{
	return or_default(s, "");
}

static bool in_list(const char *s, const char *const *list)
{
	for(; *list; list++)
		if(!strcmp(s, *list))
			return true;
	return false;
}

/* discovery.py/abbreviations.py: keys may be abbreviated. */
static const char *const abbrev[][2] = {{"cmps", "components"},
                                        {"dev", "device"},
                                        {"o", "origin"},
                                        {"p", "platform"},
                                        {"avty", "availability"},
                                        {"avty_t", "availability_topic"},
                                        {"avty_mode", "availability_mode"},
                                        {"avty_tpl", "availability_template"},
                                        {"stat_t", "state_topic"},
                                        {"uniq_id", "unique_id"},
                                        {"def_ent_id", "default_entity_id"},
                                        {"obj_id", "object_id"},
                                        {"val_tpl", "value_template"},
                                        {"unit_of_meas", "unit_of_measurement"},
                                        {"stat_cla", "state_class"},
                                        {"dev_cla", "device_class"},
                                        {"json_attr_t", "json_attributes_topic"},
                                        {"json_attr_tpl", "json_attributes_template"},
                                        {"exp_aft", "expire_after"},
                                        {"ent_cat", "entity_category"},
                                        {"ic", "icon"},
                                        {"pl_on", "payload_on"},
                                        {"pl_off", "payload_off"},
                                        {"pl_avail", "payload_available"},
                                        {"pl_not_avail", "payload_not_available"},
                                        {"t", "topic"},
                                        {"sug_dsp_prc", "suggested_display_precision"},
                                        {"en", "enabled_by_default"},
                                        {"frc_upd", "force_update"},
                                        {"e", "encoding"},
                                        {"cmd_t", "command_topic"},
                                        {NULL, NULL}};
static const char *const device_abbrev[][2] = {
        {"ids", "identifiers"},   {"cns", "connections"},    {"mf", "manufacturer"},
        {"mdl", "model"},         {"mdl_id", "model_id"},    {"sw", "sw_version"},
        {"hw", "hw_version"},     {"sn", "serial_number"},   {"cu", "configuration_url"},
        {"sa", "suggested_area"}, {"via_dev", "via_device"}, {NULL, NULL}};
static const char *const origin_abbrev[][2] = {{"sw", "sw_version"}, {"url", "support_url"}, {NULL, NULL}};

static void expand(json_t *o, const char *const (*table)[2])
{
	if(!json_is_object(o))
		return;
	for(size_t i = 0; table[i][0]; i++) {
		json_t *v = json_object_get(o, table[i][0]);
		if(v) {
			json_object_set(o, table[i][1], v);
			json_object_del(o, table[i][0]);
		}
	}
}

/* schemas.py DEVICE_DISCOVERY_SCHEMA (extra keys refused). */
static const char *const root_allowed[] = {"availability",
                                           "availability_mode",
                                           "availability_template",
                                           "availability_topic",
                                           "payload_available",
                                           "payload_not_available",
                                           "device",
                                           "components",
                                           "origin",
                                           "state_topic",
                                           "command_topic",
                                           "qos",
                                           "encoding",
                                           NULL};
/* Options at the root that components inherit (SHARED_OPTIONS). */
static const char *const shared_options[] = {
        "availability",          "availability_mode", "availability_template",
        "availability_topic",    "command_topic",     "payload_available",
        "payload_not_available", "state_topic",       NULL};
static const char *const device_allowed[] = {
        "identifiers", "connections",   "manufacturer", "model",      "model_id",       "name",
        "hw_version",  "serial_number", "sw_version",   "via_device", "suggested_area", "configuration_url",
        NULL};
static const char *const origin_allowed[] = {"name", "sw_version", "support_url", NULL};
/* MQTT_ENTITY_COMMON_SCHEMA + MQTT_RO_SCHEMA: what every read-only entity
 * understands (anything else is silently dropped by HA, so it would be a
 * setting that does nothing). */
static const char *const entity_common[] = {"platform",
                                            "availability",
                                            "availability_mode",
                                            "availability_template",
                                            "availability_topic",
                                            "payload_available",
                                            "payload_not_available",
                                            "device",
                                            "origin",
                                            "enabled_by_default",
                                            "entity_category",
                                            "entity_picture",
                                            "icon",
                                            "json_attributes_topic",
                                            "json_attributes_template",
                                            "object_id",
                                            "default_entity_id",
                                            "unique_id",
                                            "name",
                                            "value_template",
                                            "state_topic",
                                            "qos",
                                            "encoding",
                                            NULL};
static const char *const sensor_extra[] = {"device_class",
                                           "expire_after",
                                           "force_update",
                                           "last_reset_value_template",
                                           "options",
                                           "suggested_display_precision",
                                           "state_class",
                                           "unit_of_measurement",
                                           NULL};
static const char *const binary_extra[] = {
        "device_class", "expire_after", "force_update", "off_delay", "payload_on", "payload_off", NULL};
static const char *const state_classes[] = {"measurement", "measurement_angle", "total", "total_increasing",
                                            NULL};
static const char *const binary_device_classes[] = {"battery",
                                                    "battery_charging",
                                                    "carbon_monoxide",
                                                    "cold",
                                                    "connectivity",
                                                    "door",
                                                    "garage_door",
                                                    "gas",
                                                    "heat",
                                                    "light",
                                                    "lock",
                                                    "moisture",
                                                    "motion",
                                                    "moving",
                                                    "occupancy",
                                                    "opening",
                                                    "plug",
                                                    "power",
                                                    "presence",
                                                    "problem",
                                                    "running",
                                                    "safety",
                                                    "smoke",
                                                    "sound",
                                                    "tamper",
                                                    "update",
                                                    "vibration",
                                                    "window",
                                                    NULL};
/* sensor/const.py DEVICE_CLASS_STATE_CLASSES, for the classes a price or
 * counter could be mistaken for. "" ends a list; a class not listed here
 * is refused by this test. */
static const struct {
	const char *device_class;
	const char *allowed[4];
} sensor_pairs[] = {
        {"monetary", {"total", NULL}},
        {"energy", {"total", "total_increasing", NULL}},
        {"power", {"measurement", NULL}},
        {"carbon_dioxide", {"measurement", NULL}},
        {"timestamp", {NULL}},
        {"enum", {NULL}},
        {"duration", {"measurement", "total", "total_increasing", NULL}},
        {"data_size", {"measurement", "total", "total_increasing", NULL}},
};

static bool valid_topic(const char *t)
{
	return t && *t && !strchr(t, '#') && !strchr(t, '+') && strlen(t) < 65536;
}

static bool match_object_id(const char *s, size_t n)
{
	if(!n)
		return false;
	for(size_t i = 0; i < n; i++) {
		char c = s[i];
		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		     c == '-'))
			return false;
	}
	return true;
}

/* core.py VALID_ENTITY_ID: ^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$ */
static bool valid_entity_id(const char *e, const char *domain)
{
	const char *dot = strchr(e, '.');
	size_t n = strlen(e);

	if(!dot || dot == e || !dot[1] || strchr(dot + 1, '.') || strstr(e, "__") || n > 255)
		return false;
	if((size_t)(dot - e) != strlen(domain) || strncmp(e, domain, strlen(domain)))
		return false;
	for(const char *p = e; *p; p++)
		if(p != dot && !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return e[0] != '_' && dot[-1] != '_' && dot[1] != '_' && e[n - 1] != '_';
}

static bool http_url(const char *u)
{
	return !strncmp(u, "http://", 7) || !strncmp(u, "https://", 8) || !strncmp(u, "homeassistant://", 16);
}

/* The value the entity's template gives for the last state on its topic,
 * as HA renders it ({{ value_json.x }}: null renders "None", which HA takes
 * as unknown). Only that template form is used by ratepool; anything else
 * is refused. Returns NULL and sets *why when it cannot be rendered. */
static char *render(const char *tpl, const char *state_topic, const char **why)
{
	const struct msg *m = last_on(state_topic);
	char field[128];
	json_t *j, *v;
	char *out = NULL;
	size_t n;

	if(sscanf(tpl, "{{ value_json.%127[a-z_] }}", field) != 1 ||
	   strlen(tpl) != strlen("{{ value_json. }}") + strlen(field)) {
		*why = "value_template is not {{ value_json.<field> }}";
		return NULL;
	}
	if(!m || !m->len) {
		*why = "nothing published on the state topic";
		return NULL;
	}
	j = parse_json(m->payload, m->len);
	v = json_object_get(j, field);
	if(!v)
		*why = "the state JSON lacks the template's field";
	else if(json_is_null(v))
		out = strdup("None");
	else if(json_is_string(v))
		out = strdup(json_string_value(v));
	else if(json_is_number(v)) {
		out = malloc(64);
		n = (size_t)snprintf(out, 64, "%.17g", json_number_value(v));
		(void)n;
	} else
		*why = "the template's field is neither null, a number nor a string";
	json_decref(j);
	return out;
}

static const char *check_attributes(const char *topic)
{
	const struct msg *m = last_on(topic);
	json_t *j, *rates;
	const char *why = NULL;
	int64_t prev_end = 0;

	if(!m || !m->len)
		return "nothing published on json_attributes_topic";
	/* HA's recorder drops a state's attributes whole above 16384 bytes;
	 * the entity's own (friendly_name, unit, icon, ...) take < 1 KiB. */
	if(m->len + 1024 > 16384)
		return "attributes too large for HA's recorder";
	j = parse_json(m->payload, m->len);
	if(!json_is_object(j)) {
		json_decref(j);
		return "attributes are not a JSON object";
	}
	rates = json_object_get(j, "rates");
	if(rates) {
		size_t i;
		json_t *r;
		if(!json_is_array(rates))
			why = "rates is not a list";
		json_array_foreach(rates, i, r)
		{
			int64_t s = 0, e = 0;
			if(!json_is_object(r) || json_object_size(r) != 3 ||
			   rtime_parse(or_empty(json_string_value(json_object_get(r, "start"))), &s) ||
			   rtime_parse(or_empty(json_string_value(json_object_get(r, "end"))), &e) ||
			   !json_is_number(json_object_get(r, "value"))) {
				why = "a rate is not {start, end, value}";
				break;
			}
			if(s >= e || s < prev_end) {
				why = "rates out of order";
				break;
			}
			prev_end = e;
		}
	}
	json_decref(j);
	return why;
}

struct seen_ids {
	char *ids[256];
	size_t n;
};

/* Checks one component (already merged with the shared options). */
static const char *check_component(const char *cid, json_t *c, struct seen_ids *seen)
{
	const char *platform, *uid, *eid, *sc, *dc, *cat, *why = NULL;
	const char *const *extra;
	const char *key;
	json_t *v;
	char *state;
	bool numeric;

	if(!*cid || strchr(cid, ' '))
		return "component id empty or with a space";
	platform = json_string_value(json_object_get(c, "platform"));
	if(!platform)
		return "component without platform (p)";
	if(!strcmp(platform, "sensor"))
		extra = sensor_extra;
	else if(!strcmp(platform, "binary_sensor"))
		extra = binary_extra;
	else
		return "platform not used by ratepool";
	json_object_foreach(c, key, v)
	{
		if(!in_list(key, entity_common) && !in_list(key, extra))
			return "an option this platform does not know (HA would drop it)";
	}
	uid = json_string_value(json_object_get(c, "unique_id"));
	if(!uid || !*uid)
		return "no unique_id";
	for(size_t i = 0; i < seen->n; i++)
		if(!strcmp(seen->ids[i], uid))
			return "unique_id not unique";
	if(seen->n < 256)
		seen->ids[seen->n++] = strdup(uid);
	if(json_object_get(c, "object_id"))
		return "object_id is deprecated: default_entity_id";
	eid = json_string_value(json_object_get(c, "default_entity_id"));
	if(!eid || !valid_entity_id(eid, platform))
		return "default_entity_id missing or not a valid entity id of the platform";
	if(!json_is_string(json_object_get(c, "name")))
		return "no name";
	if(!valid_topic(json_string_value(json_object_get(c, "state_topic"))))
		return "no valid state_topic (required by MQTT_RO_SCHEMA)";
	v = json_object_get(c, "expire_after");
	if(v && (!json_is_integer(v) || json_integer_value(v) <= 0))
		return "expire_after not a positive integer";
	v = json_object_get(c, "suggested_display_precision");
	if(v && (!json_is_integer(v) || json_integer_value(v) < 0))
		return "suggested_display_precision not a non-negative integer";
	cat = json_string_value(json_object_get(c, "entity_category"));
	if(json_object_get(c, "entity_category") && (!cat || strcmp(cat, "diagnostic")))
		return "read-only entities may only be in the diagnostic category";
	sc = json_string_value(json_object_get(c, "state_class"));
	dc = json_string_value(json_object_get(c, "device_class"));
	if(json_object_get(c, "state_class") && (!sc || !in_list(sc, state_classes)))
		return "unknown state_class";
	if(!strcmp(platform, "binary_sensor")) {
		if(dc && !in_list(dc, binary_device_classes))
			return "unknown binary_sensor device_class";
	} else if(dc) {
		size_t i;
		for(i = 0; i < sizeof(sensor_pairs) / sizeof(sensor_pairs[0]); i++)
			if(!strcmp(sensor_pairs[i].device_class, dc))
				break;
		if(i == sizeof(sensor_pairs) / sizeof(sensor_pairs[0]))
			return "device_class not known to this test";
		if(sc && !in_list(sc, sensor_pairs[i].allowed))
			return "state_class impossible with this device_class";
	}
	v = json_object_get(c, "json_attributes_topic");
	if(v && (why = check_attributes(json_string_value(v))))
		return why;
	/* The state HA would show. */
	state = render(or_empty(json_string_value(json_object_get(c, "value_template"))),
	               json_string_value(json_object_get(c, "state_topic")), &why);
	if(!state)
		return why;
	if(strlen(state) > 255)
		why = "state longer than 255 characters";
	numeric = json_object_get(c, "unit_of_measurement") || sc;
	if(!why && !strcmp(platform, "binary_sensor")) {
		const char *on = or_default(json_string_value(json_object_get(c, "payload_on")), "ON");
		const char *off = or_default(json_string_value(json_object_get(c, "payload_off")), "OFF");
		if(strcmp(state, on) && strcmp(state, off) && strcmp(state, "None"))
			why = "binary_sensor state is neither payload_on nor payload_off";
	} else if(!why && numeric && strcmp(state, "None")) {
		char *end;
		double x = strtod(state, &end);
		if(*end || !isfinite(x))
			why = "a numeric sensor's state is not a number";
	}
	free(state);
	return why;
}

/* Checks a device discovery message against HA's rules; NULL when HA
 * would take it, else what is wrong. */
static const char *ha_check(const char *dprefix, const struct msg *m, struct seen_ids *seen)
{
	json_t *root, *dev, *origin, *cmps, *ids, *avty, *c;
	const char *key, *why = NULL, *oid;
	size_t dl = strlen(dprefix), tl = strlen(m->topic);
	json_t *v;

	if(!m->retain)
		return "discovery config not retained";
	if(tl < dl + 16 || strncmp(m->topic, dprefix, dl) || strncmp(m->topic + dl, "/device/", 8) ||
	   strcmp(m->topic + tl - 7, "/config"))
		return "topic is not <prefix>/device/<object_id>/config";
	oid = m->topic + dl + 8;
	if(!match_object_id(oid, (size_t)(m->topic + tl - 7 - oid)))
		return "object_id in the topic does not match [a-zA-Z0-9_-]+";
	root = parse_json(m->payload, m->len);
	if(!json_is_object(root)) {
		json_decref(root);
		return "payload is not a JSON object";
	}
	expand(root, abbrev);
	json_object_foreach(root, key, v)
	{
		if(!in_list(key, root_allowed)) {
			why = "key not allowed at the root of a device discovery payload";
			goto out;
		}
	}
	dev = json_object_get(root, "device");
	origin = json_object_get(root, "origin");
	cmps = json_object_get(root, "components");
	if(!json_is_object(dev) || !json_is_object(origin) || !json_is_object(cmps)) {
		why = "device, origin and components (cmps) are required objects";
		goto out;
	}
	expand(dev, device_abbrev);
	expand(origin, origin_abbrev);
	json_object_foreach(dev, key, v)
	{
		if(!in_list(key, device_allowed)) {
			why = "unknown device option";
			goto out;
		}
	}
	ids = json_object_get(dev, "identifiers");
	if(!json_is_array(ids) || !json_array_size(ids) || !json_is_string(json_array_get(ids, 0))) {
		why = "device needs identifiers";
		goto out;
	}
	json_object_foreach(origin, key, v)
	{
		if(!in_list(key, origin_allowed) || !json_is_string(v)) {
			why = "unknown origin option";
			goto out;
		}
	}
	if(!json_is_string(json_object_get(origin, "name"))) {
		why = "origin needs a name";
		goto out;
	}
	if(json_object_get(origin, "support_url") &&
	   !http_url(json_string_value(json_object_get(origin, "support_url")))) {
		why = "origin support_url is not a URL";
		goto out;
	}
	if(json_object_get(root, "availability") && json_object_get(root, "availability_topic")) {
		why = "availability and availability_topic are exclusive";
		goto out;
	}
	avty = json_object_get(root, "availability");
	if(avty) {
		size_t i;
		json_t *a;
		if(!json_is_array(avty)) {
			why = "availability is not a list";
			goto out;
		}
		json_array_foreach(avty, i, a)
		{
			expand(a, abbrev);
			if(!valid_topic(json_string_value(json_object_get(a, "topic")))) {
				why = "availability entry without a topic";
				goto out;
			}
		}
	}
	v = json_object_get(root, "availability_mode");
	if(v &&
	   !in_list(or_empty(json_string_value(v)), (const char *const[]){"all", "any", "latest", NULL})) {
		why = "bad availability_mode";
		goto out;
	}
	if(!json_object_size(cmps)) {
		why = "no components";
		goto out;
	}
	json_object_foreach(cmps, key, c)
	{
		if(!json_is_object(c)) {
			why = "a component is not an object";
			goto out;
		}
		expand(c, abbrev);
		for(const char *const *o = shared_options; *o; o++)
			if(json_object_get(root, *o) && !json_object_get(c, *o))
				json_object_set(c, *o, json_object_get(root, *o));
		why = check_component(key, c, seen);
		if(why)
			goto out;
	}
out:
	json_decref(root);
	return why;
}

static void seen_free(struct seen_ids *s)
{
	for(size_t i = 0; i < s->n; i++)
		free(s->ids[i]);
	s->n = 0;
}

/* Every config published so far passes ha_check; returns how many. */
static size_t assert_all_configs_valid(const char *dprefix)
{
	struct seen_ids seen = {{0}, 0};
	size_t n = 0;

	for(size_t i = 0; i < n_msgs; i++) {
		const char *why;
		size_t tl = strlen(msgs[i].topic);
		if(tl < 7 || strcmp(msgs[i].topic + tl - 7, "/config") || !msgs[i].len)
			continue;
		if(last_on(msgs[i].topic) != &msgs[i])
			continue; /* only what is retained now */
		why = ha_check(dprefix, &msgs[i], &seen);
		if(why)
			fail_msg("%s refused: %s\n%s", msgs[i].topic, why, msgs[i].payload);
		n++;
	}
	seen_free(&seen);
	return n;
}

static json_t *config_json(const char *topic)
{
	const struct msg *m = last_on(topic);

	assert_non_null(m);
	assert_true(m->len > 0);
	return parse_json(m->payload, m->len);
}

/* --- tests: the rules themselves ------------------------------------------- */

static const char *check_crafted(const char *payload)
{
	struct seen_ids seen = {{0}, 0};
	struct msg m = {.topic = "homeassistant/device/x/config",
	                .payload = (char *)payload,
	                .len = strlen(payload),
	                .retain = true};
	const char *why;

	msgs_clear();
	mqtt_publish(NULL, "s", "{\"v\":1.5,\"n\":null}", 18, 1, true, 0);
	why = ha_check("homeassistant", &m, &seen);
	seen_free(&seen);
	return why;
}

#define GOOD_ROOT                                                                                            \
	"{\"device\":{\"identifiers\":[\"x\"]},\"origin\":{\"name\":\"t\"},\"state_topic\":\"s\",\"cmps\":{"

/* The checker refuses what HA refuses, so a pass means something. */
static void test_checker_refuses_what_home_assistant_refuses(void **state)
{
	(void)state;
	assert_null(check_crafted(GOOD_ROOT "\"a\":{\"p\":\"sensor\",\"unique_id\":\"u\",\"name\":\"A\","
	                                    "\"default_entity_id\":\"sensor.a\",\"value_template\":\"{{ "
	                                    "value_json.v }}\",\"state_class\":\"measurement\"}}}"));
	assert_non_null(check_crafted(GOOD_ROOT "\"a\":{\"p\":\"sensor\",\"unique_id\":\"u\",\"name\":\"A\","
	                                        "\"default_entity_id\":\"sensor.a\",\"value_template\":\"{{ "
	                                        "value_json.v }}\",\"state_class\":\"measurement\","
	                                        "\"device_class\":\"monetary\"}}}"));
	assert_non_null(check_crafted(GOOD_ROOT
	                              "\"a\":{\"p\":\"sensor\",\"name\":\"A\",\"default_entity_id\":"
	                              "\"sensor.a\",\"value_template\":\"{{ value_json.v }}\"}}}"));
	assert_non_null(check_crafted(GOOD_ROOT
	                              "\"a\":{\"p\":\"sensor\",\"unique_id\":\"u\",\"name\":\"A\","
	                              "\"object_id\":\"a\",\"value_template\":\"{{ value_json.v }}\"}}}"));
	assert_non_null(check_crafted(GOOD_ROOT
	                              "\"a\":{\"p\":\"sensor\",\"unique_id\":\"u\",\"name\":\"A\","
	                              "\"default_entity_id\":\"sensor.a__b\",\"value_template\":\"{{ "
	                              "value_json.v }}\"}}}"));
	assert_non_null(
	        check_crafted("{\"device\":{\"identifiers\":[\"x\"]},\"state_topic\":\"s\",\"cmps\":{\"a\":"
	                      "{\"p\":\"sensor\",\"unique_id\":\"u\",\"name\":\"A\",\"default_entity_id\":"
	                      "\"sensor.a\",\"value_template\":\"{{ value_json.v }}\"}}}"));
	assert_non_null(check_crafted(GOOD_ROOT
	                              "\"a b\":{\"p\":\"sensor\",\"unique_id\":\"u\",\"name\":\"A\","
	                              "\"default_entity_id\":\"sensor.a\",\"value_template\":\"{{ "
	                              "value_json.v }}\"}}}"));
	assert_non_null(check_crafted(GOOD_ROOT "\"a\":{\"p\":\"sensor\",\"unique_id\":\"u\",\"name\":\"A\","
	                                        "\"default_entity_id\":\"sensor.a\",\"value_template\":\"{{ "
	                                        "value_json.v }}\",\"unit_of_measurment\":\"x\"}}}"));
	msgs_clear();
}

/* --- tests: configs -------------------------------------------------------- */

static const char *agile_config = "homeassistant/device/ratepool__octopus__E-1R-AGILE-24-10-01-C/config";

/* 2026-11-21 12:10 UTC (London = UTC in November). */
#define NOW_GB 1795263000

static void publish_agile(struct fixture *f, int64_t now, bool with_tomorrow)
{
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	int64_t day0 = rtime_day_start(RTIME_LONDON, now);

	slot_list_clear(&f->slots);
	set_unit(&f->slots, "GBP/kWh");
	fill(&f->slots, day0 - 86400, day0 + (with_tomorrow ? 2 : 1) * 86400 - (with_tomorrow ? 3600 : 0),
	     1800, 0.2);
	assert_int_equal(discovery_publish_series(f->d, &r, provider_find("octopus"), &f->slots, now), 0);
}

static void test_series_config_follows_home_assistant_rules(void **state)
{
	struct fixture *f = *state;
	json_t *j, *c;

	publish_agile(f, NOW_GB, true);
	assert_int_equal(assert_all_configs_valid("homeassistant"), 1);
	j = config_json(agile_config);
	/* Prices: measurement, no device class, the series' unit, 4 decimals. */
	c = json_object_get(json_object_get(j, "cmps"), "current");
	assert_string_equal(json_string_value(json_object_get(c, "unit_of_measurement")), "GBP/kWh");
	assert_string_equal(json_string_value(json_object_get(c, "state_class")), "measurement");
	assert_null(json_object_get(c, "device_class"));
	assert_int_equal(json_integer_value(json_object_get(c, "suggested_display_precision")), 4);
	/* A dead service goes unavailable a little after the slot. */
	assert_int_equal(json_integer_value(json_object_get(c, "expire_after")),
	                 1800 + DISCOVERY_EXPIRE_MARGIN_S);
	assert_string_equal(json_string_value(json_object_get(c, "default_entity_id")),
	                    "sensor.ratepool_octopus_e_1r_agile_24_10_01_c_current");
	/* Availability follows P/status, origin names ratepool. */
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(j, "availability"), 0), "topic")),
	                    "ratepool/status");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "origin"), "name")),
	                    "ratepool");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "device"), "via_device")),
	                    "ratepool");
	assert_int_equal(json_object_size(json_object_get(j, "cmps")), 8);
	json_decref(j);
}

static void test_every_provider_config_follows_home_assistant_rules(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *provider, *id, *unit;
		int64_t step;
		int precision;
	} cases[] = {
	        {"octopus", "E-1R-AGILE-24-10-01-C", "GBP/kWh", 1800, 4},
	        {"tibber", "96a14971-525a-4420-aae9-e5aedaa129ff", "EUR/kWh", 900, 4},
	        {"energycharts", "DE-LU", "EUR/kWh", 900, 4},
	        {"aemo", "NSW1", "AUD/kWh", 300, 4},
	        {"watttime", "CAISO_NORTH", "lbs_co2_per_mwh", 300, 1},
	        {"energycharts", "a.b_c", "EUR/kWh", 3600, 4},
	};
	int64_t now = NOW_GB;

	for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct provider *p = provider_find(cases[i].provider);
		struct series_ref r = ref_of(cases[i].provider, cases[i].id);
		int64_t day0 = rtime_day_start(p->zone, now);
		char oid[DISCOVERY_OBJECT_ID_SIZE], topic[DISCOVERY_OBJECT_ID_SIZE + 64];
		json_t *j, *c;

		slot_list_clear(&f->slots);
		set_unit(&f->slots, cases[i].unit);
		fill(&f->slots, day0 - 86400, day0 + 2 * 86400, cases[i].step, 100 * (i == 4) + 0.1);
		assert_int_equal(discovery_publish_series(f->d, &r, p, &f->slots, now), 0);
		assert_int_equal(discovery_object_id(oid, sizeof(oid), "ratepool", &r), 0);
		snprintf(topic, sizeof(topic), "homeassistant/device/%s/config", oid);
		j = config_json(topic);
		c = json_object_get(json_object_get(j, "cmps"), "today_avg");
		assert_string_equal(json_string_value(json_object_get(c, "unit_of_measurement")),
		                    cases[i].unit);
		assert_int_equal(json_integer_value(json_object_get(c, "suggested_display_precision")),
		                 cases[i].precision);
		assert_int_equal(json_integer_value(json_object_get(c, "expire_after")),
		                 cases[i].step > p->resolution ? cases[i].step + DISCOVERY_EXPIRE_MARGIN_S
		                                               : p->resolution + DISCOVERY_EXPIRE_MARGIN_S);
		json_decref(j);
	}
	/* All six at once: unique ids unique across devices too. */
	assert_int_equal(assert_all_configs_valid("homeassistant"), 6);
}

static void test_service_config_follows_home_assistant_rules(void **state)
{
	struct fixture *f = *state;
	struct health h;
	struct publish_buf b;
	json_t *j, *c;

	publish_buf_init(&b, 0);
	assert_int_equal(health_init(&h, NOW_GB, "0.1.0"), 0);
	assert_int_equal(health_json(&h, NOW_GB, NULL, &b, NULL), 0);
	assert_int_equal(discovery_publish_health(f->d, b.p, b.len), 0);
	assert_int_equal(discovery_publish_service(f->d), 0);
	assert_int_equal(assert_all_configs_valid("homeassistant"), 1);
	j = config_json("homeassistant/device/ratepool/config");
	c = json_object_get(json_object_get(j, "cmps"), "problem");
	assert_string_equal(json_string_value(json_object_get(c, "p")), "binary_sensor");
	assert_string_equal(json_string_value(json_object_get(c, "device_class")), "problem");
	for(const char *const *k = (const char *const[]){"consecutive_failures", "token_refreshes",
	                                                 "upstream_calls", "cache_hit_rate", NULL};
	    *k; k++) {
		c = json_object_get(json_object_get(j, "cmps"), *k);
		assert_non_null(c);
		assert_string_equal(json_string_value(json_object_get(c, "entity_category")), "diagnostic");
	}
	json_decref(j);
	health_cleanup(&h);
	publish_buf_free(&b);
}

static void test_unique_ids_are_stable_across_republish_and_restart(void **state)
{
	struct fixture *f = *state;
	struct rp_err err;
	char *first;
	json_t *a, *b;

	publish_agile(f, NOW_GB, false);
	first = strdup(last_on(agile_config)->payload);
	discovery_free(f->d);
	rp_err_clear(&err);
	assert_int_equal(discovery_new(&f->d, &f->cfg, NULL, &err), 0);
	msgs_clear();
	publish_agile(f, NOW_GB + 86400 * 3, true);
	a = parse_json(first, strlen(first));
	b = config_json(agile_config);
	for(const char *const *k = (const char *const[]){"current", "today_avg", "tomorrow_max", NULL}; *k;
	    k++) {
		json_t *ca = json_object_get(json_object_get(a, "cmps"), *k);
		json_t *cb = json_object_get(json_object_get(b, "cmps"), *k);
		assert_string_equal(json_string_value(json_object_get(ca, "unique_id")),
		                    json_string_value(json_object_get(cb, "unique_id")));
		assert_string_equal(json_string_value(json_object_get(ca, "default_entity_id")),
		                    json_string_value(json_object_get(cb, "default_entity_id")));
	}
	json_decref(a);
	json_decref(b);
	free(first);
}

static void test_object_ids_are_escaped_without_collisions(void **state)
{
	char a[DISCOVERY_OBJECT_ID_SIZE], b[DISCOVERY_OBJECT_ID_SIZE];
	struct series_ref r1 = ref_of("energycharts", "a.b"), r2 = ref_of("energycharts", "a_b"),
	                  r3 = ref_of("energycharts", "a_2eb");

	(void)state;
	assert_int_equal(discovery_object_id(a, sizeof(a), "ratepool", &r1), 0);
	assert_string_equal(a, "ratepool__energycharts__a_2eb");
	assert_int_equal(discovery_object_id(b, sizeof(b), "ratepool", &r2), 0);
	assert_string_equal(b, "ratepool__energycharts__a_5fb");
	assert_int_equal(discovery_object_id(b, sizeof(b), "ratepool", &r3), 0);
	assert_string_not_equal(a, b);
	assert_true(match_object_id(b, strlen(b)));
	assert_int_equal(discovery_object_id(a, sizeof(a), "home/energy/ratepool", NULL), 0);
	assert_string_equal(a, "home_2fenergy_2fratepool");
	/* Prefix "a__b" cannot pose as prefix "a" with provider "b". */
	assert_int_equal(discovery_object_id(a, sizeof(a), "a_5f_5fb", NULL), 0);
	assert_int_equal(discovery_object_id(b, sizeof(b), "a", NULL), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(discovery_object_id(a, 8, "ratepool", &r1), RP_ETOOLARGE);
	assert_int_equal(discovery_object_id(a, sizeof(a), "", NULL), RP_EINVAL);
}

static void test_entity_ids_are_valid_home_assistant_entity_ids(void **state)
{
	char e[DISCOVERY_ENTITY_ID_SIZE];
	struct series_ref r = ref_of("energycharts", "_.-x__Y-");
	char longid[SERIES_ID_MAX + 1];

	(void)state;
	assert_int_equal(discovery_entity_id(e, sizeof(e), "sensor", "Home/Energy", &r, "today_avg"), 0);
	assert_string_equal(e, "sensor.home_energy_energycharts_x_y_today_avg");
	assert_true(valid_entity_id(e, "sensor"));
	memset(longid, 'A', SERIES_ID_MAX);
	longid[SERIES_ID_MAX] = '\0';
	r = ref_of("octopus", longid);
	assert_int_equal(
	        discovery_entity_id(e, sizeof(e), "binary_sensor",
	                            "a_very_long_prefix_that_keeps_going_and_going_and_going_and_going_and_"
	                            "going_and_going_and_going_and_going_and_going_and_going_on",
	                            &r, "problem"),
	        0);
	assert_true(valid_entity_id(e, "binary_sensor"));
	assert_true(strlen(e) <= 255);
}

/* --- tests: state and attributes --------------------------------------------- */

static void test_state_holds_current_next_and_day_figures(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	int64_t day0 = rtime_day_start(RTIME_LONDON, NOW_GB);
	const struct msg *m;
	json_t *j;

	set_unit(&f->slots, "GBP/kWh");
	/* Today: 48 half-hours 0.10, 0.20, ... cycling; tomorrow unknown. */
	for(int i = 0; i < 48; i++)
		slot_list_push(&f->slots, day0 + i * 1800, day0 + (i + 1) * 1800,
		               i == 5 ? -0.05 : 0.1 + 0.01 * i, NAN);
	assert_int_equal(discovery_publish_series(f->d, &r, provider_find("octopus"), &f->slots, NOW_GB), 0);
	m = last_on("ratepool/ha/octopus/E-1R-AGILE-24-10-01-C/state");
	assert_non_null(m);
	assert_true(m->retain);
	assert_int_equal(m->expiry, 1800 + DISCOVERY_EXPIRE_MARGIN_S);
	j = parse_json(m->payload, m->len);
	/* 12:10 is in slot 24 (12:00-12:30). */
	assert_float_equal(json_number_value(json_object_get(j, "current")), 0.1 + 0.24, 1e-12);
	assert_float_equal(json_number_value(json_object_get(j, "next")), 0.1 + 0.25, 1e-12);
	assert_float_equal(json_number_value(json_object_get(j, "today_min")), -0.05, 1e-12);
	assert_float_equal(json_number_value(json_object_get(j, "today_max")), 0.1 + 0.47, 1e-12);
	assert_float_equal(json_number_value(json_object_get(j, "today_avg")),
	                   (47 * 0.1 + 0.01 * (47 * 48 / 2 - 5) - 0.05) / 48, 1e-6);
	assert_true(json_is_null(json_object_get(j, "tomorrow_min")));
	assert_true(json_is_null(json_object_get(j, "tomorrow_avg")));
	json_decref(j);
	/* And it renders as HA would: unknown for tomorrow, numbers today. */
	assert_int_equal(assert_all_configs_valid("homeassistant"), 1);
}

static void test_next_is_unknown_after_a_gap(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	int64_t t = rtime_day_start(RTIME_LONDON, NOW_GB) + 12 * 3600;
	json_t *j;

	set_unit(&f->slots, "GBP/kWh");
	slot_list_push(&f->slots, t, t + 1800, 0.3, NAN);
	slot_list_push(&f->slots, t + 3600, t + 5400, 0.4, NAN);
	assert_int_equal(discovery_publish_series(f->d, &r, provider_find("octopus"), &f->slots, t + 60), 0);
	j = config_json("ratepool/ha/octopus/E-1R-AGILE-24-10-01-C/state");
	assert_true(json_is_null(json_object_get(j, "next")));
	json_decref(j);
	/* In the gap: no current price, the next one is known. */
	assert_int_equal(discovery_publish_series(f->d, &r, provider_find("octopus"), &f->slots, t + 2000),
	                 0);
	j = config_json("ratepool/ha/octopus/E-1R-AGILE-24-10-01-C/state");
	assert_true(json_is_null(json_object_get(j, "current")));
	assert_float_equal(json_number_value(json_object_get(j, "next")), 0.4, 1e-12);
	json_decref(j);
}

static json_t *attributes_of(struct slot_list *l, int64_t from, int64_t to)
{
	struct publish_buf b;
	json_t *j;

	publish_buf_init(&b, 0);
	assert_int_equal(discovery_day_attributes(&b, l, from, to, 0), 0);
	assert_true(b.len <= DISCOVERY_ATTRS_MAX);
	assert_true(b.len + 1024 <= 16384);
	j = parse_json(b.p, b.len);
	publish_buf_free(&b);
	return j;
}

static void test_attributes_keep_every_slot_when_they_fit(void **state)
{
	struct slot_list l;
	/* CET's long day (2026-10-25): 100 quarter-hours. */
	int64_t day0 = rtime_day_start(RTIME_CET, fixture_time("2026-10-25T12:00:00Z"));
	int64_t day1 = rtime_day_add(RTIME_CET, day0, 1);
	json_t *j, *rates;

	(void)state;
	assert_int_equal(day1 - day0, 25 * 3600);
	slot_list_init(&l);
	fill(&l, day0 - 3600, day1 + 3600, 900, 0.05);
	j = attributes_of(&l, day0, day1);
	rates = json_object_get(j, "rates");
	assert_int_equal(json_array_size(rates), 100);
	assert_int_equal(json_integer_value(json_object_get(j, "resolution")), 900);
	json_decref(j);
	slot_list_free(&l);
}

static void test_five_minute_day_is_averaged_to_fit_the_recorder(void **state)
{
	struct slot_list l;
	int64_t day0 = rtime_day_start(RTIME_NEM, fixture_time("2026-11-21T12:00:00Z"));
	json_t *j, *rates, *r0;
	double expect = 0;

	(void)state;
	slot_list_init(&l);
	fill(&l, day0, day0 + 86400, 300, 0.1);
	j = attributes_of(&l, day0, day0 + 86400);
	rates = json_object_get(j, "rates");
	/* 288 five-minute slots do not fit in 15 KiB; 144 ten-minute ones do. */
	assert_int_equal(json_integer_value(json_object_get(j, "resolution")), 600);
	assert_int_equal(json_array_size(rates), 144);
	r0 = json_array_get(rates, 0);
	for(int i = 0; i < 2; i++)
		expect += l.v[i].value / 2;
	assert_float_equal(json_number_value(json_object_get(r0, "value")), expect, 1e-6);
	json_decref(j);
	/* A 25-hour day of 5-minute slots (300) still fits. */
	slot_list_clear(&l);
	fill(&l, day0, day0 + 90000, 300, 0.1);
	json_decref(attributes_of(&l, day0, day0 + 90000));
	slot_list_free(&l);
}

static void test_averaging_never_bridges_a_gap(void **state)
{
	struct slot_list l;
	struct publish_buf b;
	int64_t t = fixture_time("2026-11-21T00:00:00Z");
	json_t *j, *rates;
	size_t i;
	json_t *r;

	(void)state;
	slot_list_init(&l);
	fill(&l, t, t + 3600, 300, 0.1);
	fill(&l, t + 4200, t + 7200, 300, 0.2); /* 10 minutes missing */
	publish_buf_init(&b, 0);
	assert_int_equal(discovery_day_attributes(&b, &l, t, t + 86400, 1000), 0);
	j = parse_json(b.p, b.len);
	rates = json_object_get(j, "rates");
	json_array_foreach(rates, i, r)
	{
		int64_t s = 0, e = 0;
		assert_int_equal(rtime_parse(json_string_value(json_object_get(r, "start")), &s), 0);
		assert_int_equal(rtime_parse(json_string_value(json_object_get(r, "end")), &e), 0);
		assert_false(s < t + 4200 && e > t + 3600);
	}
	json_decref(j);
	publish_buf_free(&b);
	slot_list_free(&l);
}

static void test_attributes_of_a_full_five_minute_series_pass_home_assistant_rules(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("aemo", "NSW1");
	int64_t now = NOW_GB;
	int64_t day0 = rtime_day_start(RTIME_NEM, now);

	set_unit(&f->slots, "AUD/kWh");
	fill(&f->slots, day0 - 86400, day0 + 2 * 86400, 300, 0.08);
	assert_int_equal(discovery_publish_series(f->d, &r, provider_find("aemo"), &f->slots, now), 0);
	assert_true(last_on("ratepool/ha/aemo/NSW1/today")->len <= DISCOVERY_ATTRS_MAX);
	assert_true(last_on("ratepool/ha/aemo/NSW1/tomorrow")->len <= DISCOVERY_ATTRS_MAX);
	assert_int_equal(assert_all_configs_valid("homeassistant"), 1);
}

/* --- tests: publishing behaviour ---------------------------------------------- */

static void test_no_device_before_the_series_has_data(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-NOPE");

	set_unit(&f->slots, "GBP/kWh");
	assert_true(discovery_due(f->d, &r, NOW_GB));
	assert_int_equal(discovery_publish_series(f->d, &r, provider_find("octopus"), &f->slots, NOW_GB), 0);
	assert_int_equal(n_msgs, 0);
	/* Not asked again every tick. */
	assert_false(discovery_due(f->d, &r, NOW_GB + 1));
	assert_true(discovery_due(f->d, &r, NOW_GB + 60));
}

static void test_unchanged_config_is_not_republished_but_state_is(void **state)
{
	struct fixture *f = *state;

	publish_agile(f, NOW_GB, false);
	assert_int_equal(count_on(agile_config), 1);
	assert_int_equal(count_on("ratepool/ha/octopus/E-1R-AGILE-24-10-01-C/state"), 1);
	publish_agile(f, NOW_GB + 1800, false);
	assert_int_equal(count_on(agile_config), 1);
	assert_int_equal(count_on("ratepool/ha/octopus/E-1R-AGILE-24-10-01-C/today"), 1);
	assert_int_equal(count_on("ratepool/ha/octopus/E-1R-AGILE-24-10-01-C/state"), 2);
	/* Tomorrow arrives: its attributes change, the config does not. */
	publish_agile(f, NOW_GB + 3600, true);
	assert_int_equal(count_on(agile_config), 1);
	assert_int_equal(count_on("ratepool/ha/octopus/E-1R-AGILE-24-10-01-C/tomorrow"), 2);
}

static void test_due_at_the_next_slot_boundary_and_midnight(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	int64_t boundary = NOW_GB - NOW_GB % 1800 + 1800;

	publish_agile(f, NOW_GB, false);
	assert_false(discovery_due(f->d, &r, NOW_GB + 1));
	assert_false(discovery_due(f->d, &r, boundary - 1));
	assert_true(discovery_due(f->d, &r, boundary));
	/* Beyond the last slot known: still refreshed once a slot, so that
	 * expire_after does not fire while ratepool runs. */
	slot_list_clear(&f->slots);
	assert_int_equal(slot_list_push(&f->slots, NOW_GB - 7200, NOW_GB - 5400, 0.1, NAN), 0);
	assert_int_equal(discovery_publish_series(f->d, &r, provider_find("octopus"), &f->slots, NOW_GB), 0);
	assert_false(discovery_due(f->d, &r, NOW_GB + 1799));
	assert_true(discovery_due(f->d, &r, NOW_GB + 1800));
}

static void test_removed_series_gets_an_empty_retained_config(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	const struct msg *m;

	publish_agile(f, NOW_GB, true);
	assert_int_equal(discovery_remove_series(f->d, &r), 0);
	m = last_on(agile_config);
	assert_int_equal(m->len, 0);
	assert_true(m->retain);
	for(const char *const *t = (const char *const[]){"state", "today", "tomorrow", NULL}; *t; t++) {
		char topic[256];
		snprintf(topic, sizeof(topic), "ratepool/ha/octopus/E-1R-AGILE-24-10-01-C/%s", *t);
		m = last_on(topic);
		assert_int_equal(m->len, 0);
		assert_true(m->retain);
	}
	/* Forgotten: tracked again, it is published again from scratch. */
	assert_true(discovery_due(f->d, &r, NOW_GB));
	publish_agile(f, NOW_GB, true);
	assert_true(last_on(agile_config)->len > 0);
}

static struct mqtt_msg *make_msg(const char *topic, const char *payload)
{
	struct mqtt_msg *m = calloc(1, sizeof(*m));

	m->topic = strdup(topic);
	m->topic_len = strlen(topic);
	m->payload = strdup(payload);
	m->len = strlen(payload);
	return m;
}

static void free_msg(struct mqtt_msg *m)
{
	free(m->topic);
	free(m->payload);
	free(m);
}

static void test_ha_online_republishes_everything_after_a_random_delay(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	struct mqtt_msg *online = make_msg("homeassistant/status", "online");
	struct mqtt_msg *offline = make_msg("homeassistant/status", "offline");
	struct mqtt_msg *request = make_msg("ratepool/request/octopus/E-1R-AGILE-24-10-01-C", "");
	int64_t t0 = 1000000;
	int64_t t;

	assert_int_equal(discovery_subscribe(f->d), 0);
	assert_string_equal(subscribed, "homeassistant/status");
	discovery_tick(f->d, t0);
	publish_agile(f, NOW_GB, false);
	assert_int_equal(count_on("homeassistant/device/ratepool/config"), 1);
	discovery_tick(f->d, t0 + 10);
	assert_int_equal(count_on("homeassistant/device/ratepool/config"), 1);

	assert_false(discovery_handle(f->d, request, t0));
	assert_true(discovery_handle(f->d, offline, t0));
	assert_true(discovery_handle(f->d, online, t0));
	/* Not at once: between 1 and 5 s later. */
	discovery_tick(f->d, t0 + 999);
	assert_int_equal(count_on("homeassistant/device/ratepool/config"), 1);
	assert_false(discovery_due(f->d, &r, NOW_GB + 1));
	for(t = t0 + 1000; t <= t0 + 5000 && count_on("homeassistant/device/ratepool/config") == 1; t += 10)
		discovery_tick(f->d, t);
	assert_int_equal(count_on("homeassistant/device/ratepool/config"), 2);
	/* Every series is due again, config included. */
	assert_true(discovery_due(f->d, &r, NOW_GB + 1));
	publish_agile(f, NOW_GB + 1, false);
	assert_int_equal(count_on(agile_config), 2);
	free_msg(online);
	free_msg(offline);
	free_msg(request);
}

static void test_reconnect_forgets_what_was_published(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	struct health h;
	struct publish_buf b;

	publish_buf_init(&b, 0);
	assert_int_equal(health_init(&h, NOW_GB, "0.1.0"), 0);
	assert_int_equal(health_json(&h, NOW_GB, NULL, &b, NULL), 0);
	assert_int_equal(discovery_publish_health(f->d, b.p, b.len), 0);
	discovery_tick(f->d, 1);
	publish_agile(f, NOW_GB, false);
	assert_int_equal(count_on("ratepool/ha/service"), 1);
	discovery_reset(f->d);
	assert_true(discovery_due(f->d, &r, NOW_GB + 1));
	discovery_tick(f->d, 2);
	assert_int_equal(count_on("ratepool/ha/service"), 2);
	assert_int_equal(count_on("homeassistant/device/ratepool/config"), 2);
	health_cleanup(&h);
	publish_buf_free(&b);
}

static void test_failed_publish_is_retried_a_second_later(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	int64_t day0 = rtime_day_start(RTIME_LONDON, NOW_GB);

	set_unit(&f->slots, "GBP/kWh");
	fill(&f->slots, day0, day0 + 86400, 1800, 0.2);
	publish_fails = 1; /* the config */
	assert_int_equal(discovery_publish_series(f->d, &r, provider_find("octopus"), &f->slots, NOW_GB),
	                 RP_ENET);
	assert_int_equal(count_on(agile_config), 0);
	assert_false(discovery_due(f->d, &r, NOW_GB));
	assert_true(discovery_due(f->d, &r, NOW_GB + 1));
	assert_int_equal(discovery_publish_series(f->d, &r, provider_find("octopus"), &f->slots, NOW_GB + 1),
	                 0);
	assert_int_equal(count_on(agile_config), 1);
	/* The service config too, on the next tick a second later. */
	publish_fails = 1;
	discovery_tick(f->d, 5000);
	assert_int_equal(count_on("homeassistant/device/ratepool/config"), 0);
	discovery_tick(f->d, 5500);
	assert_int_equal(count_on("homeassistant/device/ratepool/config"), 0);
	discovery_tick(f->d, 6000);
	assert_int_equal(count_on("homeassistant/device/ratepool/config"), 1);
}

static void test_health_becomes_ratepools_own_sensors(void **state)
{
	struct fixture *f = *state;
	struct health h;
	struct publish_buf b;
	struct health_check check;
	const char *missing[] = {"octopus/E-1R-AGILE-24-10-01-C"};
	const struct msg *m;
	json_t *j;

	publish_buf_init(&b, 0);
	assert_int_equal(health_init(&h, NOW_GB, "0.1.0"), 0);
	for(int i = 0; i < 4; i++)
		health_fetch_done(&h, "tibber", NOW_GB, RP_EAUTH, "401 Unauthorized");
	health_fetch_done(&h, "octopus", NOW_GB, 0, NULL);
	health_token_refreshed(&h, "octopus", NOW_GB);
	health_token_refreshed(&h, "watttime", NOW_GB);
	health_token_refreshed(&h, "watttime", NOW_GB);
	health_count(&h, HEALTH_REQUESTS, 8);
	health_count(&h, HEALTH_HITS, 7);
	health_count(&h, HEALTH_UPSTREAM_CALLS, 12);
	health_set_series_tracked(&h, 3);
	memset(&check, 0, sizeof(check));
	check.missing_now = missing;
	check.n_missing = 1;
	assert_int_equal(health_json(&h, NOW_GB, &check, &b, NULL), 0);
	assert_int_equal(discovery_publish_health(f->d, b.p, b.len), 0);
	m = last_on("ratepool/ha/service");
	assert_non_null(m);
	assert_true(m->retain);
	assert_int_equal(m->expiry, 90);
	j = parse_json(m->payload, m->len);
	assert_string_equal(json_string_value(json_object_get(j, "problem")), "ON");
	assert_int_equal(json_integer_value(json_object_get(j, "consecutive_failures")), 4);
	assert_int_equal(json_integer_value(json_object_get(j, "token_refreshes")), 3);
	assert_int_equal(json_integer_value(json_object_get(j, "upstream_calls")), 12);
	assert_float_equal(json_number_value(json_object_get(j, "cache_hit_rate")), 87.5, 1e-9);
	assert_int_equal(json_integer_value(json_object_get(j, "series_tracked")), 3);
	assert_true(json_array_size(json_object_get(j, "issues")) >= 2);
	json_decref(j);
	/* Rendered as HA would, against the service config. */
	assert_int_equal(discovery_publish_service(f->d), 0);
	assert_int_equal(assert_all_configs_valid("homeassistant"), 1);
	assert_int_equal(discovery_publish_health(f->d, "not json", 8), RP_EPARSE);
	health_cleanup(&h);
	publish_buf_free(&b);
}

static void test_healthy_with_no_requests_has_no_hit_rate(void **state)
{
	struct fixture *f = *state;
	const char *json =
	        "{\"status\":\"healthy\",\"providers\":{},\"cache\":{\"requests\":0},\"issues\":[]}";
	json_t *j;

	assert_int_equal(discovery_publish_health(f->d, json, strlen(json)), 0);
	j = config_json("ratepool/ha/service");
	assert_string_equal(json_string_value(json_object_get(j, "problem")), "OFF");
	assert_true(json_is_null(json_object_get(j, "cache_hit_rate")));
	json_decref(j);
}

/* --- tests: switched off, custom prefixes ------------------------------------ */

static void test_empty_prefix_switches_discovery_off(void **state)
{
	struct fixture *f = *state;
	struct series_ref r = ref_of("octopus", "E-1R-AGILE-24-10-01-C");
	struct mqtt_msg *online = make_msg("homeassistant/status", "online");

	assert_null(f->d);
	assert_int_equal(discovery_subscribe(f->d), 0);
	assert_false(discovery_handle(f->d, online, 0));
	assert_false(discovery_due(f->d, &r, NOW_GB));
	publish_agile(f, NOW_GB, true);
	discovery_tick(f->d, 100000);
	assert_int_equal(discovery_publish_health(f->d, "{}", 2), 0);
	assert_int_equal(discovery_remove_series(f->d, &r), 0);
	assert_int_equal(n_msgs, 0);
	assert_string_equal(subscribed, "");
	free_msg(online);
}

static void test_custom_prefixes_are_used_everywhere(void **state)
{
	struct fixture *f = *state;
	struct mqtt_msg *online = make_msg("ha-test/status", "online\n");
	struct mqtt_msg *default_online = make_msg("homeassistant/status", "online");
	const char *healthy = "{\"status\":\"healthy\",\"issues\":[]}";
	json_t *j;

	assert_int_equal(discovery_subscribe(f->d), 0);
	assert_string_equal(subscribed, "ha-test/status");
	assert_false(discovery_handle(f->d, default_online, 0));
	assert_true(discovery_handle(f->d, online, 0));
	publish_agile(f, NOW_GB, true);
	assert_int_equal(discovery_publish_health(f->d, healthy, strlen(healthy)), 0);
	discovery_tick(f->d, 0);
	assert_int_equal(count_suffix("/config"), 2);
	assert_int_equal(assert_all_configs_valid("ha-test"), 2);
	j = config_json("ha-test/device/home_2fenergy_2fratepool__octopus__E-1R-AGILE-24-10-01-C/config");
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(j, "availability"), 0), "topic")),
	                    "home/energy/ratepool/status");
	assert_string_equal(json_string_value(json_object_get(j, "state_topic")),
	                    "home/energy/ratepool/ha/octopus/E-1R-AGILE-24-10-01-C/state");
	json_decref(j);
	assert_non_null(last_on("ha-test/device/home_2fenergy_2fratepool/config"));
	free_msg(online);
	free_msg(default_online);
}

static void test_bad_prefix_is_refused(void **state)
{
	struct config cfg;
	struct discovery *d = (struct discovery *)1;
	struct rp_err err;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.topic_prefix = "ratepool";
	cfg.discovery_prefix = "home/#";
	rp_err_clear(&err);
	assert_int_equal(discovery_new(&d, &cfg, NULL, &err), RP_EINVAL);
	assert_null(d);
	assert_non_null(strstr(err.msg, "discovery_prefix"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_checker_refuses_what_home_assistant_refuses),
	        cmocka_unit_test_setup_teardown(test_series_config_follows_home_assistant_rules, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_every_provider_config_follows_home_assistant_rules,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_service_config_follows_home_assistant_rules, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_unique_ids_are_stable_across_republish_and_restart,
	                                        setup, teardown),
	        cmocka_unit_test(test_object_ids_are_escaped_without_collisions),
	        cmocka_unit_test(test_entity_ids_are_valid_home_assistant_entity_ids),
	        cmocka_unit_test_setup_teardown(test_state_holds_current_next_and_day_figures, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_next_is_unknown_after_a_gap, setup, teardown),
	        cmocka_unit_test(test_attributes_keep_every_slot_when_they_fit),
	        cmocka_unit_test(test_five_minute_day_is_averaged_to_fit_the_recorder),
	        cmocka_unit_test(test_averaging_never_bridges_a_gap),
	        cmocka_unit_test_setup_teardown(
	                test_attributes_of_a_full_five_minute_series_pass_home_assistant_rules, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_no_device_before_the_series_has_data, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unchanged_config_is_not_republished_but_state_is, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_due_at_the_next_slot_boundary_and_midnight, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_removed_series_gets_an_empty_retained_config, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_ha_online_republishes_everything_after_a_random_delay,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reconnect_forgets_what_was_published, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_failed_publish_is_retried_a_second_later, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_health_becomes_ratepools_own_sensors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_healthy_with_no_requests_has_no_hit_rate, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_empty_prefix_switches_discovery_off, setup_off,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_custom_prefixes_are_used_everywhere, setup_custom,
	                                        teardown),
	        cmocka_unit_test(test_bad_prefix_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
