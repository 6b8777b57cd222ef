/* test_publish.c - topics, price and current documents, JSON safety. */
#include "ratepool/error.h"
#include "ratepool/publish.h"
#include "ratepool/rtime.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

static int64_t utc(const char *text)
{
	int64_t t = 0;
	assert_int_equal(rtime_parse(text, &t), 0);
	return t;
}

static struct series_ref agile_ref(void)
{
	struct series_ref ref;
	assert_int_equal(series_ref_set(&ref, "octopus", "E-1R-AGILE-24-10-01-C"), 0);
	return ref;
}

static json_t *parse(const struct publish_buf *b)
{
	json_error_t jerr;
	json_t *j;

	assert_non_null(b->p);
	assert_int_equal(strlen(b->p), b->len);
	j = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if(!j)
		fail_msg("not JSON (%s): %s", jerr.text, b->p);
	return j;
}

static void assert_json_equals(const struct publish_buf *b, const char *expected)
{
	json_error_t jerr;
	json_t *got = parse(b);
	json_t *want = json_loads(expected, 0, &jerr);

	if(!want)
		fail_msg("bad expected JSON: %s", jerr.text);
	if(!json_equal(got, want))
		fail_msg("got %s\nwant %s", b->p, expected);
	json_decref(got);
	json_decref(want);
}

static void assert_no_nan_inf(const struct publish_buf *b)
{
	if(!b->p)
		return;
	assert_null(strcasestr(b->p, "nan"));
	assert_null(strcasestr(b->p, "inf"));
}

/* --- numbers ------------------------------------------------------------- */

static void test_numbers_print_short_decimals(void **state)
{
	char t[32];
	volatile double pence = 24.5175;

	(void)state;
	/* Binary noise from unit conversion is not printed. */
	assert_int_equal(publish_format_number(pence / 100.0, t), 8);
	assert_string_equal(t, "0.245175");
	publish_format_number(17.5, t);
	assert_string_equal(t, "17.5");
	publish_format_number(-0.0123, t);
	assert_string_equal(t, "-0.0123");
	publish_format_number(-0.0, t);
	assert_string_equal(t, "0");
	publish_format_number(0.0, t);
	assert_string_equal(t, "0");
	publish_format_number(100.0, t);
	assert_string_equal(t, "100");
	publish_format_number(17500.0, t);
	assert_string_equal(t, "17500");
	publish_format_number(1e-7, t);
	assert_string_equal(t, "1e-07");
	publish_format_number(0.1 + 0.2, t);
	assert_string_equal(t, "0.3");
	publish_format_number(-1.7976931348623157e308, t);
	assert_string_equal(t, "-1.79769313486232e+308");
}

static void test_numbers_never_nan_or_inf(void **state)
{
	struct publish_buf b;
	char t[32];

	(void)state;
	assert_int_equal(publish_format_number(NAN, t), RP_EINVAL);
	assert_string_equal(t, "");
	assert_int_equal(publish_format_number(INFINITY, t), RP_EINVAL);
	assert_int_equal(publish_format_number(-INFINITY, t), RP_EINVAL);

	publish_buf_init(&b, 0);
	assert_int_equal(publish_buf_puts(&b, "["), 0);
	assert_int_equal(publish_buf_json_number(&b, NAN), RP_EINVAL);
	/* Sticky: later appends do nothing and report the first error. */
	assert_int_equal(publish_buf_json_number(&b, 1.0), RP_EINVAL);
	assert_int_equal(publish_buf_puts(&b, "]"), RP_EINVAL);
	assert_string_equal(b.p, "[");
	publish_buf_reset(&b);
	assert_int_equal(b.err, 0);
	assert_int_equal(publish_buf_json_number(&b, 2.5), 0);
	assert_string_equal(b.p, "2.5");
	publish_buf_free(&b);
}

/* --- strings ------------------------------------------------------------- */

static void check_string(const char *in, size_t n, const char *expected_decoded, size_t en)
{
	struct publish_buf b;
	json_t *arr;
	json_t *s;

	publish_buf_init(&b, 0);
	publish_buf_puts(&b, "[");
	publish_buf_json_string_n(&b, in, n);
	assert_int_equal(publish_buf_puts(&b, "]"), 0);
	arr = parse(&b);
	s = json_array_get(arr, 0);
	assert_true(json_is_string(s));
	if(en != json_string_length(s) || memcmp(json_string_value(s), expected_decoded, en))
		fail_msg("escaped %s decodes to \"%s\", want \"%s\"", b.p, json_string_value(s),
		         expected_decoded);
	json_decref(arr);
	publish_buf_free(&b);
}

/* String literals with their exact lengths (they may hold NULs). */
#define CHECK(in, out) check_string(in, sizeof(in) - 1, out, sizeof(out) - 1)

static void test_hostile_strings_are_escaped(void **state)
{
	struct publish_buf b;

	(void)state;
	CHECK("plain GBP/kWh", "plain GBP/kWh");
	CHECK("q\"b\\s/", "q\"b\\s/");
	CHECK("\n\r\t\b\f\x01\x1f\x7f", "\n\r\t\b\f\x01\x1f\x7f");
	CHECK("\"},\"value\":0,\"x\":{\"", "\"},\"value\":0,\"x\":{\"");
	/* Valid UTF-8 passes through. */
	CHECK("\xe2\x82\xac/kWh \xf0\x9f\x94\x8c", "\xe2\x82\xac/kWh \xf0\x9f\x94\x8c");
	/* Invalid UTF-8 becomes U+FFFD: a lone byte, an overlong '/', a
	 * surrogate, a cut sequence at the end, past U+10FFFF. */
	CHECK("\xff", "\xef\xbf\xbd");
	CHECK("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");
	CHECK("x\xed\xa0\x80y", "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdy");
	CHECK("ab\xe2\x82", "ab\xef\xbf\xbd\xef\xbf\xbd");
	CHECK("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	/* U+2028 is valid JSON but breaks JavaScript embedding: escaped. */
	CHECK("a\xe2\x80\xa8z", "a\xe2\x80\xa8z");
	CHECK("a\0b", "a\0b");

	publish_buf_init(&b, 0);
	publish_buf_json_string(&b, "a\xe2\x80\xa8z\x01");
	assert_string_equal(b.p, "\"a\\u2028z\\u0001\"");
	publish_buf_reset(&b);
	publish_buf_json_string(&b, NULL);
	assert_string_equal(b.p, "null");
	publish_buf_free(&b);
}

/* --- price document ------------------------------------------------------ */

static void test_price_doc_matches_contract(void **state)
{
	struct series_ref ref = agile_ref();
	struct slot_list sl;
	struct publish_buf b;
	struct publish_price_doc doc;

	(void)state;
	slot_list_init(&sl);
	snprintf(sl.unit, sizeof(sl.unit), "GBP/kWh");
	slot_list_push(&sl, utc("2026-11-21T16:00:00Z"), utc("2026-11-21T16:30:00Z"), 0.2891, 0.27533333);
	slot_list_push(&sl, utc("2026-11-21T16:30:00Z"), utc("2026-11-21T17:00:00Z"), -0.0123, NAN);
	slot_list_push(&sl, utc("2026-11-21T17:00:00Z"), utc("2026-11-21T17:30:00Z"), 0.3,
	               0.2857142857142857);
	memset(&doc, 0, sizeof(doc));
	doc.ref = &ref;
	doc.resolution = 1800;
	doc.fetched_at = utc("2026-11-21T16:05:12Z");
	doc.stale = false;
	doc.complete_until = utc("2026-11-21T17:30:00Z");
	doc.slots = &sl;

	publish_buf_init(&b, 0);
	assert_int_equal(publish_price_doc(&b, &doc), 0);
	assert_json_equals(&b, "{\"series\":\"E-1R-AGILE-24-10-01-C\",\"provider\":\"octopus\","
	                       "\"unit\":\"GBP/kWh\",\"resolution\":1800,"
	                       "\"fetched_at\":\"2026-11-21T16:05:12Z\",\"stale\":false,"
	                       "\"complete_until\":\"2026-11-21T17:30:00Z\",\"rates\":["
	                       "{\"start\":\"2026-11-21T16:00:00Z\",\"end\":\"2026-11-21T16:30:00Z\","
	                       "\"value\":0.2891,\"value_exc_vat\":0.27533333},"
	                       "{\"start\":\"2026-11-21T16:30:00Z\",\"end\":\"2026-11-21T17:00:00Z\","
	                       "\"value\":-0.0123},"
	                       "{\"start\":\"2026-11-21T17:00:00Z\",\"end\":\"2026-11-21T17:30:00Z\","
	                       "\"value\":0.3,\"value_exc_vat\":0.285714285714286}]}");
	/* Field order is the documented one (readers of raw payloads). */
	assert_ptr_equal(strstr(b.p, "{\"series\":"), b.p);
	assert_true(strstr(b.p, "\"rates\":[") > strstr(b.p, "\"complete_until\":"));

	/* Stale, unknown fetch time, nothing held: nulls, empty rates,
	 * resolution from the argument; unit override. */
	slot_list_clear(&sl);
	doc.stale = true;
	doc.fetched_at = 0;
	doc.complete_until = 0;
	doc.unit = "EUR/kWh";
	assert_int_equal(publish_price_doc(&b, &doc), 0);
	assert_json_equals(&b, "{\"series\":\"E-1R-AGILE-24-10-01-C\",\"provider\":\"octopus\","
	                       "\"unit\":\"EUR/kWh\",\"resolution\":1800,\"fetched_at\":null,\"stale\":true,"
	                       "\"complete_until\":null,\"rates\":[]}");
	slot_list_free(&sl);
	publish_buf_free(&b);
}

static void test_price_doc_dst_day_keeps_50_slots_in_order(void **state)
{
	struct series_ref ref = agile_ref();
	struct slot_list sl;
	struct publish_buf b;
	struct publish_price_doc doc = {0};
	int64_t t0 = utc("2026-10-24T23:00:00Z"); /* 00:00 BST */
	int64_t t1 = utc("2026-10-26T00:00:00Z"); /* 00:00 GMT next day */
	json_t *j, *rates;
	size_t i;
	int64_t t;

	(void)state;
	slot_list_init(&sl);
	snprintf(sl.unit, sizeof(sl.unit), "GBP/kWh");
	for(t = t0; t < t1; t += 1800)
		slot_list_push(&sl, t, t + 1800, 0.1 + (double)(t - t0) / 1e6, NAN);
	doc.ref = &ref;
	doc.slots = &sl;
	doc.complete_until = t1;
	publish_buf_init(&b, 0);
	assert_int_equal(publish_price_doc(&b, &doc), 0);
	j = parse(&b);
	/* resolution from the slots when not given */
	assert_int_equal(json_integer_value(json_object_get(j, "resolution")), 1800);
	rates = json_object_get(j, "rates");
	assert_int_equal(json_array_size(rates), 50);
	for(i = 0; i < 50; i++) {
		int64_t s = 0;
		assert_int_equal(
		        rtime_parse(json_string_value(json_object_get(json_array_get(rates, i), "start")),
		                    &s),
		        0);
		assert_int_equal(s, t0 + (int64_t)i * 1800);
	}
	json_decref(j);
	slot_list_free(&sl);
	publish_buf_free(&b);
}

static void test_price_doc_leaves_out_non_finite_values(void **state)
{
	struct series_ref ref = agile_ref();
	struct slot_list sl;
	struct publish_buf b;
	struct publish_price_doc doc = {0};
	json_t *j;

	(void)state;
	slot_list_init(&sl);
	snprintf(sl.unit, sizeof(sl.unit), "GBP/kWh");
	/* The store never holds these; if one slipped through it must not be
	 * printed as nan, nor replaced by 0. */
	slot_list_push(&sl, 0 + 1800000000, 1800001800, NAN, 0.1);
	slot_list_push(&sl, 1800001800, 1800003600, 0.25, INFINITY);
	slot_list_push(&sl, 1800003600, 1800005400, -INFINITY, NAN);
	doc.ref = &ref;
	doc.slots = &sl;
	publish_buf_init(&b, 0);
	assert_int_equal(publish_price_doc(&b, &doc), 0);
	assert_no_nan_inf(&b);
	j = parse(&b);
	assert_int_equal(json_array_size(json_object_get(j, "rates")), 1);
	assert_null(json_object_get(json_array_get(json_object_get(j, "rates"), 0), "value_exc_vat"));
	assert_true(json_real_value(json_object_get(json_array_get(json_object_get(j, "rates"), 0),
	                                            "value")) == 0.25);
	json_decref(j);
	slot_list_free(&sl);
	publish_buf_free(&b);
}

static void test_price_doc_refuses_unordered_slots_and_bad_ids(void **state)
{
	struct series_ref ref = agile_ref();
	struct series_ref bad = agile_ref();
	struct slot_list sl;
	struct publish_buf b;
	struct publish_price_doc doc = {0};

	(void)state;
	slot_list_init(&sl);
	snprintf(sl.unit, sizeof(sl.unit), "GBP/kWh");
	slot_list_push(&sl, 1800001800, 1800003600, 0.2, NAN);
	slot_list_push(&sl, 1800000000, 1800001800, 0.1, NAN);
	doc.ref = &ref;
	doc.slots = &sl;
	publish_buf_init(&b, 0);
	assert_int_equal(publish_price_doc(&b, &doc), RP_EINVAL);
	assert_int_equal(b.len, 0);
	/* overlap */
	slot_list_clear(&sl);
	slot_list_push(&sl, 1800000000, 1800003600, 0.1, NAN);
	slot_list_push(&sl, 1800001800, 1800005400, 0.2, NAN);
	assert_int_equal(publish_price_doc(&b, &doc), RP_EINVAL);
	/* empty slot */
	slot_list_clear(&sl);
	slot_list_push(&sl, 1800000000, 1800000000, 0.1, NAN);
	assert_int_equal(publish_price_doc(&b, &doc), RP_EINVAL);
	/* a series id that could inject a topic level */
	snprintf(bad.id, sizeof(bad.id), "a/#");
	doc.ref = &bad;
	slot_list_clear(&sl);
	assert_int_equal(publish_price_doc(&b, &doc), RP_EINVAL);
	doc.ref = NULL;
	assert_int_equal(publish_price_doc(&b, &doc), RP_EINVAL);
	slot_list_free(&sl);
	publish_buf_free(&b);
}

static void fill(struct slot_list *sl, size_t n)
{
	size_t i;

	slot_list_clear(sl);
	snprintf(sl->unit, sizeof(sl->unit), "AUD/kWh");
	for(i = 0; i < n; i++)
		slot_list_push(sl, 1800000000 + (int64_t)i * 300, 1800000300 + (int64_t)i * 300,
		               0.123456789 + (double)i, NAN);
}

static void test_price_doc_size_cap(void **state)
{
	struct series_ref ref = agile_ref();
	struct slot_list sl;
	struct publish_buf b;
	struct publish_price_doc doc = {0};
	size_t full;

	(void)state;
	slot_list_init(&sl);
	doc.ref = &ref;
	doc.slots = &sl;

	/* A week of 5-minute slots fits the default cap. */
	fill(&sl, 7 * 288);
	publish_buf_init(&b, 0);
	assert_int_equal(publish_price_doc(&b, &doc), 0);
	assert_true(b.len <= PUBLISH_DOC_MAX);
	json_decref(parse(&b));
	/* The biggest list a provider may return does not. */
	fill(&sl, SLOT_LIST_MAX);
	assert_int_equal(publish_price_doc(&b, &doc), RP_ETOOLARGE);
	assert_true(b.cap <= PUBLISH_DOC_MAX + 1);
	publish_buf_free(&b);

	/* Exactly at the cap fits; one byte less does not. */
	fill(&sl, 10);
	publish_buf_init(&b, 0);
	assert_int_equal(publish_price_doc(&b, &doc), 0);
	full = b.len;
	publish_buf_free(&b);
	publish_buf_init(&b, full);
	assert_int_equal(publish_price_doc(&b, &doc), 0);
	assert_int_equal(b.len, full);
	publish_buf_free(&b);
	publish_buf_init(&b, full - 1);
	assert_int_equal(publish_price_doc(&b, &doc), RP_ETOOLARGE);
	assert_true(b.cap <= full);
	publish_buf_free(&b);
	slot_list_free(&sl);
}

static void test_buffer_is_reused_without_growing(void **state)
{
	struct series_ref ref = agile_ref();
	struct slot_list sl;
	struct publish_buf b;
	struct publish_price_doc doc = {0};
	char *p;
	size_t cap;
	int i;

	(void)state;
	slot_list_init(&sl);
	fill(&sl, 500);
	doc.ref = &ref;
	doc.slots = &sl;
	publish_buf_init(&b, 0);
	assert_int_equal(publish_price_doc(&b, &doc), 0);
	p = b.p;
	cap = b.cap;
	for(i = 0; i < 10; i++) {
		assert_int_equal(publish_price_doc(&b, &doc), 0);
		assert_ptr_equal(b.p, p);
		assert_int_equal(b.cap, cap);
		assert_int_equal(publish_current(&b, &sl, NULL, 1800000000 + 450), 0);
		assert_ptr_equal(b.p, p);
	}
	publish_buf_free(&b);
	slot_list_free(&sl);
}

/* --- current ------------------------------------------------------------- */

static void test_current_doc_for_slot_holding_now(void **state)
{
	struct slot_list sl;
	struct publish_buf b;

	(void)state;
	slot_list_init(&sl);
	snprintf(sl.unit, sizeof(sl.unit), "GBP/kWh");
	slot_list_push(&sl, utc("2026-11-21T16:00:00Z"), utc("2026-11-21T16:30:00Z"), 0.2891, 0.27);
	slot_list_push(&sl, utc("2026-11-21T16:30:00Z"), utc("2026-11-21T17:00:00Z"), 0.31, NAN);
	/* gap 17:00-17:30 */
	slot_list_push(&sl, utc("2026-11-21T17:30:00Z"), utc("2026-11-21T18:00:00Z"), NAN, NAN);
	publish_buf_init(&b, 0);

	assert_int_equal(publish_current(&b, &sl, NULL, utc("2026-11-21T16:10:00Z")), 0);
	assert_json_equals(&b, "{\"value\":0.2891,\"start\":\"2026-11-21T16:00:00Z\","
	                       "\"end\":\"2026-11-21T16:30:00Z\",\"unit\":\"GBP/kWh\"}");
	/* A slot's start belongs to it; its end to the next. */
	assert_int_equal(publish_current(&b, &sl, "p/kWh", utc("2026-11-21T16:30:00Z")), 0);
	assert_json_equals(&b, "{\"value\":0.31,\"start\":\"2026-11-21T16:30:00Z\","
	                       "\"end\":\"2026-11-21T17:00:00Z\",\"unit\":\"p/kWh\"}");
	/* In a gap, before the first, after the last, a non-finite value:
	 * nothing (never a 0). */
	assert_int_equal(publish_current(&b, &sl, NULL, utc("2026-11-21T17:00:00Z")), RP_ENOENT);
	assert_int_equal(b.len, 0);
	assert_int_equal(publish_current(&b, &sl, NULL, utc("2026-11-21T15:59:59Z")), RP_ENOENT);
	assert_int_equal(publish_current(&b, &sl, NULL, utc("2026-11-21T18:00:00Z")), RP_ENOENT);
	assert_int_equal(publish_current(&b, &sl, NULL, utc("2026-11-21T17:45:00Z")), RP_ENOENT);
	assert_no_nan_inf(&b);
	slot_list_clear(&sl);
	assert_int_equal(publish_current(&b, &sl, NULL, utc("2026-11-21T17:45:00Z")), RP_ENOENT);
	slot_list_free(&sl);
	publish_buf_free(&b);
}

static void test_next_boundary_for_timer(void **state)
{
	struct slot_list sl;

	(void)state;
	slot_list_init(&sl);
	assert_int_equal(publish_next_boundary(&sl, 100), 0);
	slot_list_push(&sl, 1000, 2800, 1, NAN);
	slot_list_push(&sl, 2800, 4600, 1, NAN);
	slot_list_push(&sl, 6400, 8200, 1, NAN); /* gap 4600-6400 */
	assert_int_equal(publish_next_boundary(&sl, 0), 1000);
	assert_int_equal(publish_next_boundary(&sl, 1000), 2800);
	assert_int_equal(publish_next_boundary(&sl, 2799), 2800);
	assert_int_equal(publish_next_boundary(&sl, 2800), 4600);
	assert_int_equal(publish_next_boundary(&sl, 4600), 6400);
	assert_int_equal(publish_next_boundary(&sl, 5000), 6400);
	assert_int_equal(publish_next_boundary(&sl, 8199), 8200);
	assert_int_equal(publish_next_boundary(&sl, 8200), 0);
	assert_int_equal(publish_next_boundary(NULL, 8200), 0);
	slot_list_free(&sl);
}

static void test_slot_at_matches_linear_search(void **state)
{
	struct slot_list sl;
	int64_t t;

	(void)state;
	slot_list_init(&sl);
	for(t = 0; t < 200; t++)
		if(t % 7 != 3) /* some gaps */
			slot_list_push(&sl, 1000 + t * 300, 1300 + t * 300, 1, NAN);
	for(t = 0; t < 200 * 300 + 2000; t += 37) {
		long want = -1;
		size_t i;
		for(i = 0; i < sl.n; i++)
			if(sl.v[i].start <= t && t < sl.v[i].end)
				want = (long)i;
		assert_int_equal(publish_slot_at(&sl, t), want);
	}
	slot_list_free(&sl);
}

/* --- topics -------------------------------------------------------------- */

static void test_topic_builders(void **state)
{
	struct series_ref ref = agile_ref();
	char buf[PUBLISH_TOPIC_SIZE];

	(void)state;
	assert_int_equal(publish_topic_prices(buf, sizeof(buf), "ratepool", &ref), 0);
	assert_string_equal(buf, "ratepool/prices/octopus/E-1R-AGILE-24-10-01-C");
	assert_int_equal(publish_topic_current(buf, sizeof(buf), "home/energy", &ref), 0);
	assert_string_equal(buf, "home/energy/prices/octopus/E-1R-AGILE-24-10-01-C/current");
	assert_int_equal(publish_topic_status(buf, sizeof(buf), "ratepool"), 0);
	assert_string_equal(buf, "ratepool/status");
	assert_int_equal(publish_topic_health(buf, sizeof(buf), "ratepool"), 0);
	assert_string_equal(buf, "ratepool/health");
	assert_int_equal(publish_topic_request_filter(buf, sizeof(buf), "ratepool"), 0);
	assert_string_equal(buf, "ratepool/request/#");
}

static void test_topic_builders_refuse_overflow(void **state)
{
	struct series_ref ref = agile_ref();
	char buf[PUBLISH_TOPIC_SIZE];
	char prefix[PUBLISH_PREFIX_MAX + 1];
	size_t n, want;

	(void)state;
	want = strlen("ratepool/prices/octopus/E-1R-AGILE-24-10-01-C/current");
	for(n = 0; n <= want; n++) {
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(publish_topic_current(buf, n, "ratepool", &ref), RP_ETOOLARGE);
		if(n)
			assert_int_equal(buf[0], '\0');
		assert_int_equal(buf[n], 'x'); /* nothing written past n */
	}
	assert_int_equal(publish_topic_current(buf, want + 1, "ratepool", &ref), 0);
	want = strlen("ratepool/prices/octopus/E-1R-AGILE-24-10-01-C");
	assert_int_equal(publish_topic_prices(buf, want, "ratepool", &ref), RP_ETOOLARGE);
	assert_int_equal(publish_topic_prices(buf, want + 1, "ratepool", &ref), 0);
	assert_int_equal(publish_topic_status(buf, 15, "ratepool"), RP_ETOOLARGE);
	assert_int_equal(publish_topic_status(buf, 16, "ratepool"), 0);
	assert_int_equal(publish_topic_health(buf, 15, "ratepool"), RP_ETOOLARGE);
	assert_int_equal(publish_topic_request_filter(buf, 18, "ratepool"), RP_ETOOLARGE);
	assert_int_equal(publish_topic_request_filter(buf, 19, "ratepool"), 0);
	assert_int_equal(publish_topic_status(NULL, 0, "ratepool"), RP_ETOOLARGE);

	/* The longest prefix, provider and id fit PUBLISH_TOPIC_SIZE. */
	memset(prefix, 'p', PUBLISH_PREFIX_MAX);
	prefix[PUBLISH_PREFIX_MAX] = '\0';
	memset(ref.provider, 'a', PROVIDER_ID_MAX);
	ref.provider[PROVIDER_ID_MAX] = '\0';
	memset(ref.id, 'i', SERIES_ID_MAX);
	ref.id[SERIES_ID_MAX] = '\0';
	assert_int_equal(publish_topic_current(buf, sizeof(buf), prefix, &ref), 0);
}

static void test_topic_builders_refuse_bad_names(void **state)
{
	static const char *bad_prefix[] = {"",          "rate+pool",  "rate#", "$SYS", "/ratepool",
	                                   "ratepool/", "rate\npool", "a\x7f", "a//b", NULL};
	static const char *bad_id[] = {"", "a/b", "+", "#", "a b", "x\xc3\xa9", NULL};
	struct series_ref ref = agile_ref();
	char buf[PUBLISH_TOPIC_SIZE];
	char longp[PUBLISH_PREFIX_MAX + 2];
	size_t i;

	(void)state;
	for(i = 0; bad_prefix[i]; i++) {
		assert_false(publish_prefix_valid(bad_prefix[i]));
		assert_int_equal(publish_topic_prices(buf, sizeof(buf), bad_prefix[i], &ref), RP_EINVAL);
		assert_int_equal(publish_topic_health(buf, sizeof(buf), bad_prefix[i]), RP_EINVAL);
		assert_int_equal(publish_topic_request_filter(buf, sizeof(buf), bad_prefix[i]), RP_EINVAL);
	}
	assert_false(publish_prefix_valid(NULL));
	memset(longp, 'p', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_false(publish_prefix_valid(longp));
	assert_true(publish_prefix_valid("home/energy/ratepool"));
	for(i = 0; bad_id[i]; i++) {
		struct series_ref r = agile_ref();
		snprintf(r.id, sizeof(r.id), "%s", bad_id[i]);
		assert_int_equal(publish_topic_prices(buf, sizeof(buf), "ratepool", &r), RP_EINVAL);
		assert_int_equal(publish_topic_current(buf, sizeof(buf), "ratepool", &r), RP_EINVAL);
		snprintf(r.id, sizeof(r.id), "ok");
		snprintf(r.provider, sizeof(r.provider), "%s", bad_id[i]);
		assert_int_equal(publish_topic_prices(buf, sizeof(buf), "ratepool", &r), RP_EINVAL);
	}
	assert_int_equal(publish_topic_prices(buf, sizeof(buf), "ratepool", NULL), RP_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_numbers_print_short_decimals),
	        cmocka_unit_test(test_numbers_never_nan_or_inf),
	        cmocka_unit_test(test_hostile_strings_are_escaped),
	        cmocka_unit_test(test_price_doc_matches_contract),
	        cmocka_unit_test(test_price_doc_dst_day_keeps_50_slots_in_order),
	        cmocka_unit_test(test_price_doc_leaves_out_non_finite_values),
	        cmocka_unit_test(test_price_doc_refuses_unordered_slots_and_bad_ids),
	        cmocka_unit_test(test_price_doc_size_cap),
	        cmocka_unit_test(test_buffer_is_reused_without_growing),
	        cmocka_unit_test(test_current_doc_for_slot_holding_now),
	        cmocka_unit_test(test_next_boundary_for_timer),
	        cmocka_unit_test(test_slot_at_matches_linear_search),
	        cmocka_unit_test(test_topic_builders),
	        cmocka_unit_test(test_topic_builders_refuse_overflow),
	        cmocka_unit_test(test_topic_builders_refuse_bad_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
