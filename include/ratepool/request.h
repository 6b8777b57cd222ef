/*
 * request.h - rate requests from MQTT clients: parsing and checking the
 * request, and building the reply JSON. Pure functions: no MQTT types, no
 * I/O, no globals; every input is hostile until checked here.
 *
 * A request is a PUBLISH to `P/request/{provider}/{id}` (P = topic prefix)
 * with an empty payload or a JSON object:
 *
 *   {"from": "2026-11-21T00:00:00Z", "to": "2026-11-23T00:00:00Z",
 *    "id": "any string or number", "reply_to": "home/prices/reply"}
 *
 * Rules (each refusal has a stable code, see enum request_refusal):
 *  - topic: exactly P/request/{provider}/{id}: no more, no fewer levels;
 *    provider one of the known providers (octopus, tibber, watttime, aemo,
 *    energycharts unless the limits give a list); id matches
 *    [A-Za-z0-9._-]{1,64} (series_id_valid).
 *  - payload: empty or only white space means "all defaults"; otherwise at
 *    most lim->max_payload bytes (4 KiB) of JSON, an object, without
 *    duplicate keys.
 *  - keys: all optional; a key whose value is null counts as absent.
 *    Unknown keys are ignored, so that later versions may add keys that
 *    older ratepools skip (forward compatibility).
 *  - "from", "to": RFC 3339 strings with an offset (rtime_parse). from < to,
 *    to - from <= lim->max_range_s (7 days), from >= now - max_past_s (10
 *    years), to <= now + max_future_s (14 days).
 *  - default range: without "from" and "to", from = now rounded down to
 *    the hour minus 24 h and to = from + 72 h: yesterday's prices through
 *    tomorrow's in every time zone, and the same range for everyone asking
 *    within the same hour (so concurrent default requests coalesce). With
 *    only "from", to = from + 72 h; with only "to", from = to - 72 h.
 *  - "id": a string of at most 128 bytes or a number (echoed back as the
 *    same number); anything else is refused.
 *  - "reply_to": for MQTT 3.1.1 clients, which have no Response Topic. A
 *    string of 1..256 bytes; no '+' or '#' (a PUBLISH topic cannot hold
 *    wildcards), no control characters, not starting with '$'. It must not
 *    lie inside ratepool's own namespace (P itself or anything under P/)
 *    nor under the discovery prefix: otherwise a client could make
 *    ratepool overwrite its own retained P/prices/... or P/status topics,
 *    or feed ratepool its own replies as new requests.
 *  - when the message carried an MQTT 5 Response Topic, the reply goes
 *    there and "reply_to" is ignored (not even checked). The daemon checks
 *    that Response Topic with request_reply_topic_ok() before replying.
 *
 * A refused request still names where its error reply goes: request_parse
 * fills out->id and out->reply_to whenever they could be read, whatever
 * else was wrong.
 *
 * Typical use with a message from the MQTT inbox (mqtt.h):
 *
 *   rc = request_parse(prefix, msg->topic, msg->payload, msg->len,
 *                      msg->response_topic != NULL, rtime_now(), &lim, &req, &err);
 *   if(req.reply == REQUEST_REPLY_RESPONSE_TOPIC)
 *           to = request_reply_topic_ok(prefix, disc, msg->response_topic,
 *                                       msg->response_topic_len, 65535) ? msg->response_topic : NULL;
 *   else if(req.reply == REQUEST_REPLY_TO)
 *           to = req.reply_to;
 *   ... on refusal: request_reply_json(&req, "error", NULL, NULL, NULL, 0, NULL, 0, &err, ...)
 *   ... mqtt_reply(m, to, msg->correlation, msg->correlation_len, json, len, qos, expiry)
 */
#ifndef RATEPOOL_REQUEST_H
#define RATEPOOL_REQUEST_H

#include "ratepool/error.h"
#include "ratepool/series.h"
#include "ratepool/slot.h"
#include "ratepool/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQUEST_PAYLOAD_MAX    4096
#define REQUEST_ID_MAX         128
#define REQUEST_REPLY_TO_MAX   256
#define REQUEST_TOPIC_MAX      512
#define REQUEST_MAX_RANGE_S    (7 * 86400)
#define REQUEST_DEFAULT_SPAN_S (72 * 3600)
#define REQUEST_MAX_PAST_S     ((int64_t)3653 * 86400)
#define REQUEST_MAX_FUTURE_S   (14 * 86400)

/* Why a request was refused; REQUEST_OK when it was not. The stable
 * snake_case names (request_refusal_name) are the `error.code` of the
 * reply and never change. */
enum request_refusal {
	REQUEST_OK = 0,
	REQUEST_BAD_TOPIC,           /* "bad_topic": not P/request/{provider}/{id} */
	REQUEST_UNKNOWN_PROVIDER,    /* "unknown_provider" */
	REQUEST_BAD_SERIES_ID,       /* "bad_series_id": not [A-Za-z0-9._-]{1,64} */
	REQUEST_PAYLOAD_TOO_LARGE,   /* "payload_too_large": over lim->max_payload */
	REQUEST_BAD_JSON,            /* "bad_json": not JSON, or duplicate keys */
	REQUEST_NOT_AN_OBJECT,       /* "not_an_object": JSON, but not {...} */
	REQUEST_BAD_TIME,            /* "bad_time": from/to not an RFC 3339 string */
	REQUEST_BAD_RANGE,           /* "bad_range": from >= to */
	REQUEST_RANGE_TOO_LARGE,     /* "range_too_large": to - from > max_range_s */
	REQUEST_RANGE_OUT_OF_BOUNDS, /* "range_out_of_bounds": too far back or ahead */
	REQUEST_BAD_REPLY_TO,        /* "bad_reply_to" */
	REQUEST_BAD_ID,              /* "bad_id" */
	REQUEST_REFUSAL_END
};

/* Stable code string of a refusal ("bad_topic", ...); "ok" for
 * REQUEST_OK; "unknown" for anything else. Never NULL, static. */
const char *request_refusal_name(enum request_refusal r);

/* Where the reply to a request goes. */
enum request_reply {
	REQUEST_REPLY_NONE,           /* nobody asked: only refresh the retained topic */
	REQUEST_REPLY_RESPONSE_TOPIC, /* the MQTT 5 Response Topic (held by the caller) */
	REQUEST_REPLY_TO              /* req->reply_to, from the JSON */
};

enum request_id_kind {
	REQUEST_ID_NONE,   /* no "id" (or null, or unusable) */
	REQUEST_ID_STRING, /* req->id holds the decoded UTF-8 string */
	REQUEST_ID_NUMBER  /* req->id holds the number as JSON text */
};

/* All limits; pass NULL to request_parse for the defaults. A zero field
 * means its default too. */
struct request_limits {
	int64_t max_range_s;          /* REQUEST_MAX_RANGE_S */
	size_t max_payload;           /* REQUEST_PAYLOAD_MAX */
	int64_t max_past_s;           /* REQUEST_MAX_PAST_S: from >= now - this */
	int64_t max_future_s;         /* REQUEST_MAX_FUTURE_S: to <= now + this */
	const char *const *providers; /* NULL-terminated list of provider ids
	                               * accepted; NULL: the first wave (octopus,
	                               * tibber, watttime, aemo, energycharts).
	                               * Borrowed for the call. */
	const char *discovery_prefix; /* reply_to may not lie under it; NULL or
	                               * "": no such rule */
};

/* A parsed request. Plain data, no pointers: copy it freely. */
struct request {
	enum request_refusal refusal; /* REQUEST_OK, or why it was refused */
	bool ref_ok;                  /* ref holds a valid provider and id */
	struct series_ref ref;
	int64_t from;        /* [from, to), UTC seconds; set when */
	int64_t to;          /* refusal is REQUEST_OK */
	bool explicit_range; /* "from" or "to" was given */
	enum request_id_kind id_kind;
	size_t id_len;
	char id[REQUEST_ID_MAX + 1]; /* NUL-terminated (a string id holds no NUL) */
	enum request_reply reply;
	char reply_to[REQUEST_REPLY_TO_MAX + 1]; /* "" unless reply == REQUEST_REPLY_TO */
};

/*
 * Parses and checks one request message.
 *
 * prefix: the topic prefix P (e.g. "ratepool"; may itself hold '/').
 * topic: the message's topic (NUL-terminated). payload/len: the message
 * body (need not be NUL-terminated; NULL only with len 0).
 * has_response_topic: the message carried an MQTT 5 Response Topic (the
 * reply goes there, whatever "reply_to" says). now: the current time (for
 * the default range and the bounds). lim: NULL for the defaults.
 *
 * Always fills *out (never left uninitialised): on success refusal is
 * REQUEST_OK and ref, from and to are set; on refusal, out->refusal says
 * why, err->msg (when err is not NULL) says it for a human, and out->id,
 * out->reply and out->reply_to are set whenever they could be read, so
 * that the error reply reaches the client.
 *
 * Returns 0 when the request is valid, RP_EINVAL when it is refused,
 * RP_ENOMEM when the JSON parser ran out of memory (refusal is then
 * REQUEST_BAD_JSON).
 */
int request_parse(const char *prefix, const char *topic, const void *payload, size_t len,
                  bool has_response_topic, int64_t now, const struct request_limits *lim, struct request *out,
                  struct rp_err *err);

/*
 * True when `topic` (len bytes, need not be NUL-terminated) may receive a
 * reply: 1..max_len bytes (REQUEST_REPLY_TO_MAX for "reply_to", 65535 for
 * an MQTT 5 Response Topic), no '+', '#', NUL or other control character,
 * no leading '$', neither P itself nor under P/, neither the discovery
 * prefix nor under it (discovery_prefix NULL or "": no such rule).
 */
bool request_reply_topic_ok(const char *prefix, const char *discovery_prefix, const char *topic, size_t len,
                            size_t max_len);

/* Reply status strings the reply builder accepts. */
#define REQUEST_STATUS_OK      "ok"
#define REQUEST_STATUS_STALE   "stale"
#define REQUEST_STATUS_PARTIAL "partial"
#define REQUEST_STATUS_ERROR   "error"

/*
 * Builds the reply JSON (DESIGN.md):
 *
 *   {"id":…,"status":"ok","series":"E-1R-…","unit":"GBP/kWh",
 *    "fetched_at":"2026-11-21T16:00:00Z","from":"…","to":"…",
 *    "rates":[{"start":"…","end":"…","value":0.2458575},…],
 *    "missing":[{"from":"…","to":"…"}],
 *    "error":{"code":"bad_range","message":"…"}}
 *
 * Keys always present: id (null when the request had none), status,
 * series, unit, fetched_at (null when 0), rates and missing (possibly
 * empty arrays). "from"/"to" (the range answered, an addition to the
 * DESIGN.md shape so a client sees which default range it got) appear
 * when the request was valid. "error" appears when `error` is not NULL.
 *
 * req: the parsed request (NULL allowed: id null, no from/to). status: one
 * of the REQUEST_STATUS_* strings (anything else is RP_EINVAL). slots: the
 * rates to send (NULL or empty: []), in order. series: the series id to
 * name (NULL: req->ref.id when ref_ok, else null). unit: NULL takes
 * slots->unit, "" gives null. missing/n_missing: gaps of the range that no
 * slot covers. error: NULL, or the error to report; its code string is
 * request_refusal_name(req->refusal) when the request was refused, else
 * rp_code_name(error->code); its message is error->msg.
 *
 * Numbers: values are written in fixed point with up to 9 decimals and
 * trailing zeros trimmed (0.2458575, -0.0123, 834.5, 0) - exact for every
 * upstream's published precision and cheaper than shortest round-trip;
 * values with magnitude below 1e-4 (except 0) or from 1e9 up are written
 * with "%.17g". A non-finite value (which slot_list_validate refuses
 * upstream) is written as null rather than producing invalid JSON.
 * Strings are escaped (", \, control characters; invalid UTF-8 bytes
 * become U+FFFD), so a hostile id or message can never break the JSON.
 *
 * On success *out is a malloc'd NUL-terminated buffer the caller frees,
 * *len its length without the NUL. Returns 0, RP_EINVAL or RP_ENOMEM
 * (then *out is NULL). One allocation sized up front for the common case;
 * no JSON tree is built (this is on the request hot path).
 */
int request_reply_json(const struct request *req, const char *status, const struct slot_list *slots,
                       const char *series, const char *unit, int64_t fetched_at,
                       const struct store_range *missing, size_t n_missing, const struct rp_err *error,
                       char **out, size_t *len);

#endif
