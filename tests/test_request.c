/* test_request.c - request parsing (data-driven tables under
 * tests/data/requests/) and reply JSON building. */
#include "ratepool/error.h"
#include "ratepool/request.h"
#include "ratepool/rtime.h"
#include "ratepool/slot.h"
#include "ratepool/store.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define PREFIX "ratepool"

/* tests/data/requests/<name>, from the repository root or relative to the
 * test binary (build/<x>/tests/test_request). */
static json_t *load_table(const char *name)
{
	char path[PATH_MAX + 64], exe[PATH_MAX];
	json_error_t jerr;
	json_t *doc;
	ssize_t n;
	char *slash;

	snprintf(path, sizeof(path), "tests/data/requests/%s", name);
	doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if(doc)
		return doc;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 64);
	if(n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if(slash)
			*slash = '\0';
		snprintf(path, sizeof(path), "%.4000s/../../../tests/data/requests/%.20s", exe, name);
		doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	}
	if(!doc)
		fail_msg("cannot load %s: %s", name, jerr.text);
	return doc;
}

static int64_t parse_time(const char *text)
{
	int64_t t = 0;

	assert_int_equal(rtime_parse(text, &t), 0);
	return t;
}

static int hexval(char c)
{
	if(c >= '0' && c <= '9')
		return c - '0';
	if(c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The payload of a case: "payload" (text), "payload_hex" (raw bytes) or
 * "payload_fill" (a valid JSON object padded to exactly N bytes).
 * Returns a malloc'd buffer (NULL for no payload). */
static char *case_payload(json_t *c, size_t *len)
{
	json_t *p = json_object_get(c, "payload"), *hex = json_object_get(c, "payload_hex"),
	       *fill = json_object_get(c, "payload_fill");
	char *buf = NULL;

	*len = 0;
	if(json_is_string(p)) {
		*len = json_string_length(p);
		buf = malloc(*len + 1);
		assert_non_null(buf);
		memcpy(buf, json_string_value(p), *len);
	} else if(json_is_string(hex)) {
		const char *h = json_string_value(hex);
		size_t i, n = strlen(h) / 2;
		buf = malloc(n + 1);
		assert_non_null(buf);
		for(i = 0; i < n; i++)
			buf[i] = (char)(hexval(h[2 * i]) * 16 + hexval(h[2 * i + 1]));
		*len = n;
	} else if(json_is_integer(fill)) {
		size_t n = (size_t)json_integer_value(fill);
		assert_true(n >= 10);
		buf = malloc(n + 1);
		assert_non_null(buf);
		memcpy(buf, "{\"pad\":\"", 8);
		memset(buf + 8, 'p', n - 10);
		memcpy(buf + n - 2, "\"}", 2);
		*len = n;
	}
	return buf;
}

static const char *case_str(json_t *c, const char *key, const char *dflt)
{
	json_t *v = json_object_get(c, key);

	return json_is_string(v) ? json_string_value(v) : dflt;
}

static const char *id_kind_name(enum request_id_kind k)
{
	return k == REQUEST_ID_STRING ? "string" : k == REQUEST_ID_NUMBER ? "number" : "none";
}

static const char *reply_name(enum request_reply r)
{
	return r == REQUEST_REPLY_TO               ? "reply_to"
	       : r == REQUEST_REPLY_RESPONSE_TOPIC ? "response_topic"
	                                           : "none";
}

static const struct request_limits table_limits = {.discovery_prefix = "homeassistant"};

/* Runs one case; returns the request through out. */
static int run_case(json_t *c, int64_t now, struct request *out, struct rp_err *err)
{
	size_t len;
	char *payload = case_payload(c, &len);
	int rc;

	rc = request_parse(case_str(c, "prefix", PREFIX), case_str(c, "topic", ""), payload, len,
	                   json_is_true(json_object_get(c, "response_topic")), now, &table_limits, out, err);
	free(payload);
	return rc;
}

/* Checks the optional expectations shared by both tables. */
static void check_carried(json_t *c, const char *name, const struct request *req)
{
	const char *v;

	if((v = case_str(c, "id_kind", NULL)) && strcmp(v, id_kind_name(req->id_kind)) != 0)
		fail_msg("%s: id_kind %s, want %s", name, id_kind_name(req->id_kind), v);
	if((v = case_str(c, "id", NULL)) && (strcmp(v, req->id) != 0 || strlen(v) != req->id_len))
		fail_msg("%s: id \"%s\", want \"%s\"", name, req->id, v);
	if((v = case_str(c, "reply", NULL)) && strcmp(v, reply_name(req->reply)) != 0)
		fail_msg("%s: reply %s, want %s", name, reply_name(req->reply), v);
	if((v = case_str(c, "reply_to", NULL)) && strcmp(v, req->reply_to) != 0)
		fail_msg("%s: reply_to \"%s\", want \"%s\"", name, req->reply_to, v);
}

static void test_malformed_requests_are_refused_with_their_code(void **state)
{
	json_t *doc = load_table("malformed.json");
	json_t *cases = json_object_get(doc, "cases"), *c;
	int64_t now = parse_time(json_string_value(json_object_get(doc, "now")));
	size_t i;

	assert_true(json_array_size(cases) >= 30);
	json_array_foreach(cases, i, c)
	{
		const char *name = case_str(c, "name", "?"), *code = case_str(c, "code", "?");
		struct request req;
		struct rp_err err;
		int rc = run_case(c, now, &req, &err);

		if(rc != RP_EINVAL)
			fail_msg("%s: request_parse returned %d, want RP_EINVAL", name, rc);
		if(strcmp(request_refusal_name(req.refusal), code) != 0)
			fail_msg("%s: refused as %s, want %s (%s)", name, request_refusal_name(req.refusal),
			         code, err.msg);
		if(err.code != RP_EINVAL || err.msg[0] == '\0')
			fail_msg("%s: no human message", name);
		check_carried(c, name, &req);
	}
	json_decref(doc);
}

static void test_valid_requests_parse_as_expected(void **state)
{
	json_t *doc = load_table("valid.json");
	json_t *cases = json_object_get(doc, "cases"), *c;
	int64_t now = parse_time(json_string_value(json_object_get(doc, "now")));
	size_t i;

	assert_true(json_array_size(cases) >= 20);
	json_array_foreach(cases, i, c)
	{
		const char *name = case_str(c, "name", "?"), *v;
		struct request req;
		struct rp_err err;
		json_t *ex = json_object_get(c, "explicit");
		int rc = run_case(c, now, &req, &err);

		if(rc != 0 || req.refusal != REQUEST_OK)
			fail_msg("%s: refused as %s: %s", name, request_refusal_name(req.refusal), err.msg);
		if(!req.ref_ok)
			fail_msg("%s: ref not set", name);
		if((v = case_str(c, "provider", NULL)) && strcmp(v, req.ref.provider) != 0)
			fail_msg("%s: provider %s, want %s", name, req.ref.provider, v);
		if((v = case_str(c, "series", NULL)) && strcmp(v, req.ref.id) != 0)
			fail_msg("%s: series %s, want %s", name, req.ref.id, v);
		if((v = case_str(c, "from", NULL)) && parse_time(v) != req.from)
			fail_msg("%s: from %lld, want %s", name, (long long)req.from, v);
		if((v = case_str(c, "to", NULL)) && parse_time(v) != req.to)
			fail_msg("%s: to %lld, want %s", name, (long long)req.to, v);
		if(json_is_boolean(ex) && json_is_true(ex) != req.explicit_range)
			fail_msg("%s: explicit_range %d", name, req.explicit_range);
		if(req.from >= req.to)
			fail_msg("%s: empty range", name);
		check_carried(c, name, &req);
	}
	json_decref(doc);
}

static void test_refusal_names_are_stable(void **state)
{
	static const char *const want[] = {"ok",
	                                   "bad_topic",
	                                   "unknown_provider",
	                                   "bad_series_id",
	                                   "payload_too_large",
	                                   "bad_json",
	                                   "not_an_object",
	                                   "bad_time",
	                                   "bad_range",
	                                   "range_too_large",
	                                   "range_out_of_bounds",
	                                   "bad_reply_to",
	                                   "bad_id"};
	size_t i;

	assert_int_equal(sizeof(want) / sizeof(want[0]), REQUEST_REFUSAL_END);
	for(i = 0; i < REQUEST_REFUSAL_END; i++)
		assert_string_equal(request_refusal_name((enum request_refusal)i), want[i]);
	assert_string_equal(request_refusal_name(REQUEST_REFUSAL_END), "unknown");
	assert_string_equal(request_refusal_name((enum request_refusal) - 1), "unknown");
}

static void test_default_range_shrinks_to_a_smaller_max_range(void **state)
{
	struct request_limits lim = {.max_range_s = 86400};
	struct request req;
	int64_t now = parse_time("2026-11-21T12:34:56Z");

	assert_int_equal(
	        request_parse(PREFIX, "ratepool/request/aemo/NSW1", "", 0, false, now, &lim, &req, NULL), 0);
	assert_int_equal(req.from, parse_time("2026-11-20T12:00:00Z"));
	assert_int_equal(req.to, parse_time("2026-11-21T12:00:00Z"));
}

static void test_default_range_is_the_same_within_an_hour(void **state)
{
	struct request a, b;
	int64_t t0 = parse_time("2026-03-29T01:00:00Z");

	assert_int_equal(
	        request_parse(PREFIX, "ratepool/request/aemo/NSW1", NULL, 0, false, t0, NULL, &a, NULL), 0);
	assert_int_equal(request_parse(PREFIX, "ratepool/request/aemo/NSW1", NULL, 0, false, t0 + 3599, NULL,
	                               &b, NULL),
	                 0);
	assert_int_equal(a.from, b.from);
	assert_int_equal(a.to, b.to);
	assert_int_equal(a.from, t0 - 86400);
}

static void test_provider_list_from_limits_replaces_the_default(void **state)
{
	static const char *const only[] = {"awattar", NULL};
	struct request_limits lim = {.providers = only};
	struct request req;
	int64_t now = parse_time("2026-11-21T12:00:00Z");

	assert_int_equal(
	        request_parse(PREFIX, "ratepool/request/awattar/AT", NULL, 0, false, now, &lim, &req, NULL),
	        0);
	assert_string_equal(req.ref.provider, "awattar");
	assert_int_equal(
	        request_parse(PREFIX, "ratepool/request/octopus/E-1R", NULL, 0, false, now, &lim, &req, NULL),
	        RP_EINVAL);
	assert_int_equal(req.refusal, REQUEST_UNKNOWN_PROVIDER);
}

static void test_payload_limit_from_limits(void **state)
{
	struct request_limits lim = {.max_payload = 8};
	struct request req;
	int64_t now = parse_time("2026-11-21T12:00:00Z");

	assert_int_equal(request_parse(PREFIX, "ratepool/request/aemo/NSW1", "{\"id\":1}", 8, false, now,
	                               &lim, &req, NULL),
	                 0);
	assert_int_equal(request_parse(PREFIX, "ratepool/request/aemo/NSW1", "{\"id\":12}", 9, false, now,
	                               &lim, &req, NULL),
	                 RP_EINVAL);
	assert_int_equal(req.refusal, REQUEST_PAYLOAD_TOO_LARGE);
}

static void test_payload_need_not_be_nul_terminated(void **state)
{
	char buf[64];
	struct request req;
	int64_t now = parse_time("2026-11-21T12:00:00Z");

	memset(buf, '}', sizeof(buf));
	memcpy(buf, "{\"id\":\"x\"}", 10);
	assert_int_equal(
	        request_parse(PREFIX, "ratepool/request/aemo/NSW1", buf, 10, false, now, NULL, &req, NULL),
	        0);
	assert_string_equal(req.id, "x");
}

static void test_reply_topic_rules_for_response_topics(void **state)
{
	char big[70000];

	assert_true(request_reply_topic_ok(PREFIX, "homeassistant", "client/1/reply", 14, 65535));
	assert_false(request_reply_topic_ok(PREFIX, "homeassistant", "ratepool/prices/x", 17, 65535));
	assert_false(request_reply_topic_ok(PREFIX, NULL, "a/+", 3, 65535));
	assert_false(request_reply_topic_ok(PREFIX, NULL, "a\0b", 3, 65535));
	assert_false(request_reply_topic_ok(PREFIX, NULL, "a\xff", 2, 65535));
	assert_false(request_reply_topic_ok(PREFIX, NULL, "\xed\xa0\x80", 3, 65535)); /* surrogate */
	assert_false(request_reply_topic_ok(PREFIX, NULL, "\xc0\xaf", 2, 65535));     /* overlong */
	assert_true(request_reply_topic_ok(PREFIX, NULL, "caf\xc3\xa9/\xe2\x9a\xa1", 9, 65535));
	assert_true(request_reply_topic_ok(PREFIX, "", "homeassistant/x", 15, 65535));
	memset(big, 'a', sizeof(big));
	assert_true(request_reply_topic_ok(PREFIX, NULL, big, 65535, 65535));
	assert_false(request_reply_topic_ok(PREFIX, NULL, big, 65536, 70000));
	assert_false(request_reply_topic_ok(PREFIX, NULL, big, 300, REQUEST_REPLY_TO_MAX));
	assert_false(request_reply_topic_ok(PREFIX, NULL, "", 0, 65535));
}

/* --- replies ----------------------------------------------------------------- */

static void parse_ok(struct request *req, const char *payload)
{
	int64_t now = parse_time("2026-11-21T12:34:56Z");

	assert_int_equal(request_parse(PREFIX, "ratepool/request/octopus/E-1R-AGILE-24-10-01-C", payload,
	                               strlen(payload), false, now, NULL, req, NULL),
	                 0);
}

static json_t *reply_doc(const char *text, size_t len)
{
	json_error_t jerr;
	json_t *doc;

	assert_int_equal(strlen(text), len);
	doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if(!doc)
		fail_msg("reply is not JSON (%s): %s", jerr.text, text);
	return doc;
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if(!json_is_string(v))
		fail_msg("%s is not a string", key);
	return json_string_value(v);
}

static void test_reply_round_trips_through_jansson(void **state)
{
	struct request req;
	struct slot_list sl;
	struct store_range miss[2];
	int64_t t0 = parse_time("2026-11-21T00:00:00Z");
	json_t *doc, *rates, *r;
	char *out = NULL;
	size_t len = 0;

	parse_ok(&req, "{\"id\":\"r-1\",\"from\":\"2026-11-21T00:00:00Z\",\"to\":\"2026-11-21T03:00:00Z\"}");
	slot_list_init(&sl);
	memcpy(sl.unit, "GBP/kWh", 8);
	assert_int_equal(slot_list_push(&sl, t0, t0 + 1800, 0.2458575, NAN), 0);
	assert_int_equal(slot_list_push(&sl, t0 + 1800, t0 + 3600, -0.0123, NAN), 0);
	assert_int_equal(slot_list_push(&sl, t0 + 3600, t0 + 5400, 0, NAN), 0);
	miss[0].from = t0 + 5400;
	miss[0].to = t0 + 7200;
	miss[1].from = t0 + 9000;
	miss[1].to = t0 + 10800;
	assert_int_equal(request_reply_json(&req, REQUEST_STATUS_PARTIAL, &sl, NULL, NULL,
	                                    parse_time("2026-11-20T16:05:00Z"), miss, 2, NULL, &out, &len),
	                 0);
	doc = reply_doc(out, len);
	assert_string_equal(jstr(doc, "id"), "r-1");
	assert_string_equal(jstr(doc, "status"), "partial");
	assert_string_equal(jstr(doc, "series"), "E-1R-AGILE-24-10-01-C");
	assert_string_equal(jstr(doc, "unit"), "GBP/kWh");
	assert_string_equal(jstr(doc, "fetched_at"), "2026-11-20T16:05:00Z");
	assert_string_equal(jstr(doc, "from"), "2026-11-21T00:00:00Z");
	assert_string_equal(jstr(doc, "to"), "2026-11-21T03:00:00Z");
	assert_null(json_object_get(doc, "error"));
	rates = json_object_get(doc, "rates");
	assert_int_equal(json_array_size(rates), 3);
	r = json_array_get(rates, 0);
	assert_string_equal(jstr(r, "start"), "2026-11-21T00:00:00Z");
	assert_string_equal(jstr(r, "end"), "2026-11-21T00:30:00Z");
	assert_true(json_number_value(json_object_get(r, "value")) == 0.2458575);
	assert_true(json_number_value(json_object_get(json_array_get(rates, 1), "value")) == -0.0123);
	assert_true(json_number_value(json_object_get(json_array_get(rates, 2), "value")) == 0);
	assert_int_equal(json_array_size(json_object_get(doc, "missing")), 2);
	assert_string_equal(jstr(json_array_get(json_object_get(doc, "missing"), 1), "from"),
	                    "2026-11-21T02:30:00Z");
	assert_string_equal(jstr(json_array_get(json_object_get(doc, "missing"), 1), "to"),
	                    "2026-11-21T03:00:00Z");
	/* the exact text of the numbers: fixed point, trailing zeros trimmed */
	assert_non_null(strstr(out, "\"value\":0.2458575}"));
	assert_non_null(strstr(out, "\"value\":-0.0123}"));
	assert_non_null(strstr(out, "\"value\":0}"));
	json_decref(doc);
	free(out);
	slot_list_free(&sl);
}

static void test_reply_values_keep_their_precision(void **state)
{
	static const double values[] = {
	        0.2458575, 24.58575,         834.5,       -1.0,  17.5,    0.30000000000000004, 1e-7,
	        -3e-5,     999999.999999999, 1234567.891, 1e300, 0.00010, 5.123456789,         0.1};
	static const char *const text[] = {
	        "0.2458575", "24.58575",         "834.5", "-1", "17.5",   "0.3",         NULL,
	        NULL,        "999999.999999999", NULL,    NULL, "0.0001", "5.123456789", "0.1"};
	struct slot_list sl;
	json_t *doc, *rates;
	char *out = NULL, needle[64];
	size_t len, i, n = sizeof(values) / sizeof(values[0]);

	slot_list_init(&sl);
	memcpy(sl.unit, "EUR/kWh", 8);
	for(i = 0; i < n; i++)
		assert_int_equal(
		        slot_list_push(&sl, (int64_t)i * 900, (int64_t)(i + 1) * 900, values[i], NAN), 0);
	assert_int_equal(request_reply_json(NULL, "ok", &sl, "DE-LU", NULL, 0, NULL, 0, NULL, &out, &len), 0);
	doc = reply_doc(out, len);
	rates = json_object_get(doc, "rates");
	assert_int_equal(json_array_size(rates), n);
	for(i = 0; i < n; i++) {
		double got = json_number_value(json_object_get(json_array_get(rates, i), "value"));
		double tol = fabs(values[i]) * 1e-12;
		if(fabs(got - values[i]) > tol)
			fail_msg("value %zu: got %.17g, want %.17g", i, got, values[i]);
		if(text[i]) {
			snprintf(needle, sizeof(needle), "\"value\":%s}", text[i]);
			if(!strstr(out, needle))
				fail_msg("value %zu not written as %s: %s", i, text[i], out);
		}
	}
	/* no request: id null, no from/to */
	assert_true(json_is_null(json_object_get(doc, "id")));
	assert_true(json_is_null(json_object_get(doc, "fetched_at")));
	assert_null(json_object_get(doc, "from"));
	json_decref(doc);
	free(out);
	slot_list_free(&sl);
}

static void test_reply_non_finite_value_stays_valid_json(void **state)
{
	struct slot_list sl;
	json_t *doc;
	char *out = NULL;
	size_t len;

	slot_list_init(&sl);
	assert_int_equal(slot_list_push(&sl, 0, 300, NAN, NAN), 0);
	assert_int_equal(slot_list_push(&sl, 300, 600, INFINITY, NAN), 0);
	assert_int_equal(request_reply_json(NULL, "ok", &sl, "NSW1", "AUD/kWh", 0, NULL, 0, NULL, &out, &len),
	                 0);
	doc = reply_doc(out, len);
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(doc, "rates"), 0), "value")));
	json_decref(doc);
	free(out);
	slot_list_free(&sl);
}

static void test_reply_escapes_hostile_ids(void **state)
{
	static const char *const ids[] = {
	        "\\\"},\"status\":\"ok\",\"x\":{\"",           /* tries to close the string and inject keys */
	        "line\nbreak\ttab\rcr\x01\x1f\x7f",            /* control characters */
	        "</script><script>alert(1)</script>",          /* harmless in JSON, must survive */
	        "z\xc3\xa4hler \xe2\x9a\xa1 \xf0\x9f\x94\x8c", /* UTF-8 of 2, 3 and 4 bytes */
	        "back\\slash \\u0041 not an escape",
	};
	size_t i;

	for(i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		json_t *payload = json_pack("{s:s}", "id", ids[i]);
		char *ptext = json_dumps(payload, JSON_COMPACT);
		struct request req;
		char *out = NULL;
		size_t len;
		json_t *doc;

		assert_non_null(ptext);
		parse_ok(&req, ptext);
		assert_string_equal(req.id, ids[i]);
		assert_int_equal(
		        request_reply_json(&req, "ok", NULL, NULL, NULL, 0, NULL, 0, NULL, &out, &len), 0);
		doc = reply_doc(out, len);
		assert_string_equal(jstr(doc, "id"), ids[i]);
		assert_string_equal(jstr(doc, "status"), "ok");
		assert_null(json_object_get(doc, "x"));
		assert_int_equal(json_object_size(doc),
		                 9); /* id status series unit fetched_at from to rates missing */
		json_decref(doc);
		free(out);
		free(ptext);
		json_decref(payload);
	}
}

static void test_reply_number_id_is_echoed_as_a_number(void **state)
{
	struct request req;
	char *out = NULL;
	size_t len;
	json_t *doc;

	parse_ok(&req, "{\"id\":1234567}");
	assert_int_equal(request_reply_json(&req, "ok", NULL, NULL, NULL, 0, NULL, 0, NULL, &out, &len), 0);
	doc = reply_doc(out, len);
	assert_true(json_is_integer(json_object_get(doc, "id")));
	assert_int_equal(json_integer_value(json_object_get(doc, "id")), 1234567);
	json_decref(doc);
	free(out);

	parse_ok(&req, "{\"id\":2.75}");
	assert_int_equal(request_reply_json(&req, "ok", NULL, NULL, NULL, 0, NULL, 0, NULL, &out, &len), 0);
	doc = reply_doc(out, len);
	assert_true(json_real_value(json_object_get(doc, "id")) == 2.75);
	json_decref(doc);
	free(out);
}

static void test_refused_request_reply_carries_the_refusal_code(void **state)
{
	struct request req;
	struct rp_err err;
	char *out = NULL;
	size_t len;
	json_t *doc, *e;
	int64_t now = parse_time("2026-11-21T12:00:00Z");
	const char *p = "{\"id\":\"q1\",\"reply_to\":\"me/r\",\"from\":\"2026-11-22T00:00:00Z\","
	                "\"to\":\"2026-11-21T00:00:00Z\"}";

	assert_int_equal(request_parse(PREFIX, "ratepool/request/octopus/E-1R", p, strlen(p), false, now,
	                               NULL, &req, &err),
	                 RP_EINVAL);
	assert_int_equal(request_reply_json(&req, "error", NULL, NULL, "", 0, NULL, 0, &err, &out, &len), 0);
	doc = reply_doc(out, len);
	assert_string_equal(jstr(doc, "id"), "q1");
	assert_string_equal(jstr(doc, "status"), "error");
	assert_string_equal(jstr(doc, "series"), "E-1R");
	assert_true(json_is_null(json_object_get(doc, "unit")));
	assert_null(json_object_get(doc, "from"));
	assert_int_equal(json_array_size(json_object_get(doc, "rates")), 0);
	assert_int_equal(json_array_size(json_object_get(doc, "missing")), 0);
	e = json_object_get(doc, "error");
	assert_string_equal(jstr(e, "code"), "bad_range");
	assert_string_equal(jstr(e, "message"), err.msg);
	json_decref(doc);
	free(out);
}

static void test_upstream_error_reply_uses_the_error_code_name(void **state)
{
	struct request req;
	struct rp_err err;
	char *out = NULL;
	size_t len;
	json_t *doc;

	parse_ok(&req, "");
	rp_err_set(&err, RP_ETIMEOUT, "octopus did not answer in 20 s");
	assert_int_equal(request_reply_json(&req, "error", NULL, NULL, NULL, 0, NULL, 0, &err, &out, &len),
	                 0);
	doc = reply_doc(out, len);
	assert_string_equal(jstr(json_object_get(doc, "error"), "code"), "upstream_timeout");
	assert_string_equal(jstr(json_object_get(doc, "error"), "message"), "octopus did not answer in 20 s");
	assert_true(json_is_null(json_object_get(doc, "series")) == false);
	json_decref(doc);
	free(out);
}

static void test_reply_replaces_invalid_utf8_in_messages(void **state)
{
	struct rp_err err;
	char *out = NULL;
	size_t len;
	json_t *doc;

	rp_err_clear(&err);
	err.code = RP_EUPSTREAM;
	memcpy(err.msg, "bad \xff\xfe bytes \xc3", 14);
	assert_int_equal(request_reply_json(NULL, "error", NULL, NULL, NULL, 0, NULL, 0, &err, &out, &len),
	                 0);
	doc = reply_doc(out, len);
	assert_string_equal(jstr(json_object_get(doc, "error"), "message"),
	                    "bad \xef\xbf\xbd\xef\xbf\xbd bytes \xef\xbf\xbd");
	json_decref(doc);
	free(out);
}

static void test_reply_refuses_unknown_status(void **state)
{
	char *out = (char *)1;
	size_t len;

	assert_int_equal(request_reply_json(NULL, "fine", NULL, NULL, NULL, 0, NULL, 0, NULL, &out, &len),
	                 RP_EINVAL);
	assert_null(out);
	assert_int_equal(request_reply_json(NULL, NULL, NULL, NULL, NULL, 0, NULL, 0, NULL, &out, &len),
	                 RP_EINVAL);
	assert_int_equal(request_reply_json(NULL, "ok", NULL, NULL, NULL, 0, NULL, 1, NULL, &out, &len),
	                 RP_EINVAL);
}

static void test_reply_times_match_rtime_format(void **state)
{
	struct slot_list sl;
	char *out = NULL, want[RTIME_TEXT_SIZE];
	size_t len, i;
	json_t *doc, *rates;
	uint64_t x = 88172645463325252ull;
	int64_t t = -86400 * 3 - 1;

	slot_list_init(&sl);
	for(i = 0; i < 2000; i++) {
		int64_t step;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* mostly small steps (same day), sometimes across days */
		step = (int64_t)(x % 7 == 0 ? x % 400000 : x % 4000) + 1;
		assert_int_equal(slot_list_push(&sl, t, t + step, 1, NAN), 0);
		t += step;
	}
	assert_int_equal(request_reply_json(NULL, "ok", &sl, "x", "u", 0, NULL, 0, NULL, &out, &len), 0);
	doc = reply_doc(out, len);
	rates = json_object_get(doc, "rates");
	for(i = 0; i < sl.n; i++) {
		rtime_format(sl.v[i].start, want);
		assert_string_equal(jstr(json_array_get(rates, i), "start"), want);
		rtime_format(sl.v[i].end, want);
		assert_string_equal(jstr(json_array_get(rates, i), "end"), want);
	}
	json_decref(doc);
	free(out);
	slot_list_free(&sl);
}

static void test_reply_with_the_largest_slot_list(void **state)
{
	struct slot_list sl;
	char *out = NULL;
	size_t len, i;
	json_t *doc;

	slot_list_init(&sl);
	memcpy(sl.unit, "AUD/kWh", 8);
	for(i = 0; i < SLOT_LIST_MAX; i++)
		assert_int_equal(slot_list_push(&sl, (int64_t)i * 300, (int64_t)(i + 1) * 300,
		                                (double)(i % 1000) / 997.0 - 0.3, NAN),
		                 0);
	assert_int_equal(request_reply_json(NULL, "stale", &sl, "NSW1", NULL, 1, NULL, 0, NULL, &out, &len),
	                 0);
	doc = reply_doc(out, len);
	assert_int_equal(json_array_size(json_object_get(doc, "rates")), SLOT_LIST_MAX);
	assert_string_equal(jstr(doc, "fetched_at"), "1970-01-01T00:00:01Z");
	json_decref(doc);
	free(out);
	slot_list_free(&sl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_malformed_requests_are_refused_with_their_code),
	        cmocka_unit_test(test_valid_requests_parse_as_expected),
	        cmocka_unit_test(test_refusal_names_are_stable),
	        cmocka_unit_test(test_default_range_shrinks_to_a_smaller_max_range),
	        cmocka_unit_test(test_default_range_is_the_same_within_an_hour),
	        cmocka_unit_test(test_provider_list_from_limits_replaces_the_default),
	        cmocka_unit_test(test_payload_limit_from_limits),
	        cmocka_unit_test(test_payload_need_not_be_nul_terminated),
	        cmocka_unit_test(test_reply_topic_rules_for_response_topics),
	        cmocka_unit_test(test_reply_round_trips_through_jansson),
	        cmocka_unit_test(test_reply_values_keep_their_precision),
	        cmocka_unit_test(test_reply_non_finite_value_stays_valid_json),
	        cmocka_unit_test(test_reply_escapes_hostile_ids),
	        cmocka_unit_test(test_reply_number_id_is_echoed_as_a_number),
	        cmocka_unit_test(test_refused_request_reply_carries_the_refusal_code),
	        cmocka_unit_test(test_upstream_error_reply_uses_the_error_code_name),
	        cmocka_unit_test(test_reply_replaces_invalid_utf8_in_messages),
	        cmocka_unit_test(test_reply_refuses_unknown_status),
	        cmocka_unit_test(test_reply_times_match_rtime_format),
	        cmocka_unit_test(test_reply_with_the_largest_slot_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
