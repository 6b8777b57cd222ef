/*
 * discovery.h - Home Assistant MQTT discovery: one HA device per tracked
 * series and one for ratepool itself, so that prices appear in Home
 * Assistant without any YAML. docs/home-assistant.md is the user's page.
 *
 * Device-based discovery (HA 2024.11+): one retained message per device
 *   D/device/<object id>/config
 *   {"device":{…},"origin":{"name":"ratepool","sw_version":…},
 *    "availability":[{"topic":"P/status",…}],"state_topic":…,
 *    "cmps":{"<key>":{"p":"sensor",…},…}}
 * where D is RATEPOOL_DISCOVERY_PREFIX (empty: discovery is off and every
 * function below does nothing) and P the topic prefix. The object id is
 * the escaped "P", or "P__provider__id" for a series (escape: see
 * discovery_object_id); unique ids are "<object id>_<key>", so they never
 * change while P, provider and id stay; default_entity_id (not the
 * deprecated object_id) suggests "sensor.ratepool_octopus_<id>_<key>".
 *
 * Per series, state of its own (retained, QoS 1):
 *   P/ha/{provider}/{id}/state     {"current":…,"next":…,"today_min":…,
 *       "today_max":…,"today_avg":…,"tomorrow_min":…,"tomorrow_max":…,
 *       "tomorrow_avg":…}  (null when not known), republished at every
 *       slot boundary, so HA's expire_after (longest slot + 2 min) turns
 *       the sensors unavailable when ratepool stops rather than show an old
 *       price as current; the broker drops it too (message expiry);
 *   P/ha/{provider}/{id}/today     {"rates":[{"start","end","value"},…],
 *   P/ha/{provider}/{id}/tomorrow   "resolution":…} as JSON attributes of
 *       the "today average" / "tomorrow average" sensors, each at most
 *       DISCOVERY_ATTRS_MAX bytes so HA's recorder (16 KiB per state's
 *       attributes) keeps them: when a day of slots does not fit (288
 *       five-minute slots), neighbouring slots are averaged (10, 15, 20,
 *       30 min, 1 h) until it does, and "resolution" says which.
 * For ratepool itself: P/ha/service (retained) {"problem":"ON"|"OFF",
 *   "consecutive_failures":…,"token_refreshes":…,"upstream_calls":…,
 *   "cache_hit_rate":…,"series_tracked":…,"issues":[…]}, from the health
 *   JSON.
 *
 * HA's birth message: ratepool subscribes to D/status; "online" there
 * (HA restarted and lost its discovered entities unless they were
 * retained) republishes every config and state after a random 1-5 s delay,
 * so a restart of HA does not meet every device's republish at once.
 *
 * Threads: none of its own; every function is called from the daemon's
 * event loop only. It publishes through mqtt_publish (thread-safe).
 */
#ifndef RATEPOOL_DISCOVERY_H
#define RATEPOOL_DISCOVERY_H

#include "ratepool/error.h"
#include "ratepool/publish.h"
#include "ratepool/series.h"
#include "ratepool/slot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct mqtt;
struct mqtt_msg;
struct provider;
struct discovery;

/* Largest JSON attributes payload (today's or tomorrow's rates): HA's
 * recorder drops a state's attributes whole above 16384 bytes, and the
 * entity adds its own (friendly_name, unit, icon, state_class: < 400 B). */
#define DISCOVERY_ATTRS_MAX 15360
/* Room for any object id (escaped prefix, provider and id). */
#define DISCOVERY_OBJECT_ID_SIZE (3 * (PUBLISH_PREFIX_MAX + PROVIDER_ID_MAX + SERIES_ID_MAX) + 8)
/* Room for any entity id "<platform>.<slug>". */
#define DISCOVERY_ENTITY_ID_SIZE 256
/* HA's limit on a state's text. */
#define DISCOVERY_STATE_MAX 255
/* Series remembered at once (like the daemon's table). */
#define DISCOVERY_SERIES_MAX 10000
/* Margin added to the longest slot for expire_after. */
#define DISCOVERY_EXPIRE_MARGIN_S 120

/*
 * Creates the discovery state for cfg->discovery_prefix and
 * cfg->topic_prefix, publishing through mqtt. Both are borrowed and must
 * outlive it. When the discovery prefix is empty, *out is NULL and 0 is
 * returned: every function below accepts NULL and then does nothing.
 * Returns 0, RP_EINVAL (a prefix that cannot head a topic; err says
 * which) or RP_ENOMEM.
 */
int discovery_new(struct discovery **out, const struct config *cfg, struct mqtt *mqtt, struct rp_err *err);
/* Frees it (NULL allowed). Publishes nothing. */
void discovery_free(struct discovery *d);

/* Adds the D/status subscription (QoS 1, retained messages skipped: a
 * connect republishes everything anyway). Call before mqtt_start. Returns
 * 0 or mqtt_subscribe_add's error. */
int discovery_subscribe(struct discovery *d);

/* True when m is on D/status, which is then consumed (never a request).
 * "online" schedules the republish of everything 1-5 s after now_ms
 * (rtime_now_ms clock); a second "online" before then keeps the first
 * time. m is borrowed. */
bool discovery_handle(struct discovery *d, const struct mqtt_msg *m, int64_t now_ms);

/* Forgets what was published: the service config, the health state and
 * every series become due again. The daemon calls it when the MQTT
 * connect generation changes (the broker may have lost its retained
 * messages). */
void discovery_reset(struct discovery *d);

/* Runs the delayed republish when its time came (then like
 * discovery_reset), and publishes the service config and the last health
 * state when they are due. Call on every turn of the event loop while
 * connected; it does nothing when nothing is due. */
void discovery_tick(struct discovery *d, int64_t now_ms);

/* Publishes ratepool's own device config (retained) now. Returns 0 or
 * mqtt_publish's error (then it stays due). */
int discovery_publish_service(struct discovery *d);

/* Builds P/ha/service from the health JSON (health.h; json is len bytes,
 * borrowed) and publishes it (retained; message expiry 3 x the health
 * interval). A copy is kept for republishing. Returns 0, RP_EPARSE (not
 * the health JSON), or mqtt_publish's error (kept due, retried by
 * discovery_tick). */
int discovery_publish_health(struct discovery *d, const char *json, size_t len);

/* True when the series should be published now: never published (or
 * forgotten by discovery_reset), its next slot boundary has come, or the
 * last attempt failed (retried once a second). A cheap lookup. */
bool discovery_due(struct discovery *d, const struct series_ref *ref, int64_t now);

/*
 * Publishes one series: its device config and today's / tomorrow's
 * attributes when they changed since last published, and its state
 * always (the state's refresh is what keeps expire_after from firing).
 * slots (borrowed) should hold yesterday through tomorrow as far as known,
 * sorted; "today" is the local day of p->zone holding now. Nothing at all
 * is published for a series that has never had a slot with a value (a
 * series the upstream turns out not to know never gets a device). Sets
 * when the series is next due (its next slot boundary, or local midnight,
 * and at least once per longest slot). Returns 0, RP_EINVAL (bad ref),
 * RP_ELIMIT (DISCOVERY_SERIES_MAX series), RP_ENOMEM, or mqtt_publish's
 * error (then due again in a second).
 */
int discovery_publish_series(struct discovery *d, const struct series_ref *ref, const struct provider *p,
                             const struct slot_list *slots, int64_t now);

/* Removes a series' device: an empty retained config (HA deletes the
 * device and its entities) and empty retained state and attributes, and
 * forgets it. Returns 0 or the first mqtt_publish error. */
int discovery_remove_series(struct discovery *d, const struct series_ref *ref);

/* --- pure helpers (also used by the tests) --------------------------------- */

/*
 * Writes the object id of ratepool's device (ref NULL) or of a series
 * device into out (n bytes): each part escaped so that the result matches
 * [A-Za-z0-9_-]+ as HA's discovery topic requires, with no two inputs
 * giving the same id: letters, digits and '-' stay, any other byte
 * becomes '_' and two lower-case hex digits ('.' is "_2e", '_' "_5f",
 * '/' "_2f"), and parts are joined with "__" (which no escape produces).
 * "ratepool", {octopus, E-1R-AGILE-24-10-01-C} gives
 * "ratepool__octopus__E-1R-AGILE-24-10-01-C". Returns 0, RP_EINVAL (empty
 * prefix, bad ref) or RP_ETOOLARGE.
 */
int discovery_object_id(char *out, size_t n, const char *prefix, const struct series_ref *ref);

/*
 * Writes a suggested entity id "<platform>.<slug>" into out (n bytes;
 * DISCOVERY_ENTITY_ID_SIZE is enough): the slug joins prefix, provider, id
 * (ref may be NULL) and key, lower-cased, every run of other characters
 * one '_', no leading, trailing or double '_', at most 200 characters, as
 * HA's entity ids require. Returns 0 or RP_EINVAL.
 */
int discovery_entity_id(char *out, size_t n, const char *platform, const char *prefix,
                        const struct series_ref *ref, const char *key);

/*
 * Builds the attributes JSON {"rates":[{"start":…,"end":…,"value":…},…],
 * "resolution":…} of the slots starting in [from, to) into out (reset
 * first), at most max bytes (0: DISCOVERY_ATTRS_MAX). Slots without a
 * finite value are left out. When the list does not fit, contiguous slots
 * are averaged (time-weighted, 6 decimals) into buckets of 2, 3, 4, 6 or
 * 12 shortest slots, then whole hours, until it fits; "resolution" is the
 * bucket length in seconds (the shortest slot's when nothing was merged;
 * null when empty). Returns 0, RP_ETOOLARGE (even hourly does not fit) or
 * RP_ENOMEM.
 */
int discovery_day_attributes(struct publish_buf *out, const struct slot_list *slots, int64_t from, int64_t to,
                             size_t max);

#endif
