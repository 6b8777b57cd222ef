/* test_energycharts.c - the Energy-Charts parser on fixture files
 * (tests/data/energycharts/), and the client against the fake upstream. */
#include "ratepool/energycharts.h"

#include "ratepool/config.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/provider.h"

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

#include "support/fixture.h"

#include "support/fake.h"

/* cmocka 1.1 has no assert_double_equal. */
#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

#define ALL_FROM INT64_MIN
#define ALL_TO   INT64_MAX

/* Reads tests/data/energycharts/<name>, from the source tree (the working
 * directory, or three levels above build/<x>/tests/<binary>). */
static char *load(const char *name, size_t *len)
{
	return fixture_read("energycharts", name, len);
}

static int parse_file(const char *name, int64_t from, int64_t to, struct slot_list *out, struct rp_err *err)
{
	size_t len;
	char *body = load(name, &len);
	int rc;

	rp_err_clear(err);
	rc = energycharts_parse(body, len, from, to, out, err);
	free(body);
	return rc;
}

static void test_doc_15min_example_gives_quarter_hours_in_eur_per_kwh(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse_file("price_nl_15min_doc.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_string_equal(l.unit, "EUR/kWh");
	assert_int_equal(l.n, 10);
	assert_int_equal(l.v[0].start, 1767135600);
	assert_int_equal(l.v[0].end, 1767136500);
	assert_near(l.v[0].value, 0.09487, 1e-12);
	assert_true(isnan(l.v[0].value_exc_vat));
	/* The last point has no successor: its length is the step before. */
	assert_int_equal(l.v[9].start, 1767143700);
	assert_int_equal(l.v[9].end, 1767143700 + 900);
	assert_near(l.v[9].value, 0.08106, 1e-12);
	assert_int_equal(slot_list_contiguous_end(&l), 1767143700 + 900);
	slot_list_free(&l);
}

static void test_doc_hourly_2024_example_with_no_unit_is_eur_per_mwh(void **state)
{
	struct slot_list l;
	struct rp_err err;
	size_t i;

	slot_list_init(&l);
	assert_int_equal(parse_file("price_delu_hourly_2024_doc.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 24);
	for(i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].end - l.v[i].start, 3600);
	assert_near(l.v[0].value, 0.09391, 1e-12);
	assert_near(l.v[23].value, 0.07501, 1e-12);
	slot_list_free(&l);
}

static void test_day_switching_from_hourly_to_quarter_hours_is_exact(void **state)
{
	const int64_t d0 = 1759183200; /* 2025-09-30T00:00+02:00 */
	struct slot_list l;
	struct rp_err err;
	size_t i;

	slot_list_init(&l);
	assert_int_equal(parse_file("price_delu_resolution_change.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 24 + 96);
	for(i = 0; i < 24; i++) {
		assert_int_equal(l.v[i].start, d0 + 3600 * (int64_t)i);
		assert_int_equal(l.v[i].end - l.v[i].start, 3600);
	}
	for(i = 24; i < l.n; i++)
		assert_int_equal(l.v[i].end - l.v[i].start, 900);
	assert_int_equal(l.v[23].end, d0 + 86400);
	assert_int_equal(l.v[24].start, d0 + 86400);
	assert_int_equal(slot_list_contiguous_end(&l), d0 + 2 * 86400);
	slot_list_free(&l);
}

static void test_dst_end_day_has_100_quarter_hours(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse_file("price_delu_dst_end.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 100);
	assert_int_equal(slot_list_contiguous_end(&l) - l.v[0].start, 25 * 3600);
	slot_list_free(&l);
}

static void test_null_price_is_missing_never_zero(void **state)
{
	const int64_t t0 = 1767135600;
	struct slot_list l;
	struct rp_err err;
	size_t i;

	slot_list_init(&l);
	assert_int_equal(parse_file("price_nulls.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[0].start, t0);
	assert_int_equal(l.v[0].end, t0 + 900);
	assert_int_equal(l.v[1].start, t0 + 1800);
	assert_near(l.v[1].value, 0.070, 1e-12);
	for(i = 0; i < l.n; i++)
		assert_true(l.v[i].start != t0 + 900);
	assert_int_equal(slot_list_contiguous_end(&l), t0 + 900);
	slot_list_free(&l);
}

static void test_negative_and_zero_prices_are_kept(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse_file("price_negative.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 4);
	assert_near(l.v[0].value, -0.0055, 1e-12);
	assert_near(l.v[2].value, 0.0, 0);
	slot_list_free(&l);
}

static void test_gap_in_answer_does_not_stretch_a_slot(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse_file("price_gap.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.v[1].start, 1767136500);
	assert_int_equal(l.v[1].end, 1767136500 + 900);
	assert_int_equal(l.v[2].start, 1767146400);
	assert_int_equal(l.v[2].end, 1767146400 + 900);
	slot_list_free(&l);
}

static void test_single_point_after_2025_10_is_a_quarter_hour(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse_file("price_single.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].end - l.v[0].start, 900);
	slot_list_free(&l);
}

static void test_only_slots_overlapping_the_range_are_kept(void **state)
{
	const int64_t t0 = 1767135600;
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	/* [t0+900, t0+2700): slots 1 and 2 of the ten. */
	assert_int_equal(parse_file("price_nl_15min_doc.json", t0 + 900, t0 + 2700, &l, &err), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].start, t0 + 900);
	assert_int_equal(l.v[1].start, t0 + 1800);
	/* A range starting mid-slot keeps the slot that holds its start. */
	assert_int_equal(parse_file("price_nl_15min_doc.json", t0 + 1000, t0 + 1800, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].start, t0 + 900);
	/* A range the answer does not reach: no slots, not an error. */
	assert_int_equal(parse_file("price_nl_15min_doc.json", t0 + 86400, t0 + 2 * 86400, &l, &err), 0);
	assert_int_equal(l.n, 0);
	assert_string_equal(l.unit, "EUR/kWh");
	slot_list_free(&l);
}

static void test_unit_without_spaces_and_deprecated_flag_are_accepted(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse_file("price_unit_compact.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(parse_file("price_deprecated.json", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 4);
	slot_list_free(&l);
}

/* Every bad answer is refused with the right class and leaves no slot. */
struct bad_case {
	const char *file;
	int code;
	const char *msg_part; /* expected in err.msg, or NULL */
};

static void test_bad_answer(void **state)
{
	const struct bad_case *c = *state;
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(slot_list_push(&l, 1, 61, 1.0, NAN), 0); /* must be emptied */
	assert_int_equal(parse_file(c->file, ALL_FROM, ALL_TO, &l, &err), c->code);
	assert_int_equal(err.code, c->code);
	assert_int_equal(l.n, 0);
	if(c->msg_part && !strstr(err.msg, c->msg_part))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, c->msg_part);
	slot_list_free(&l);
}

static void test_empty_body_is_a_parse_error(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	rp_err_clear(&err);
	assert_int_equal(energycharts_parse("", 0, ALL_FROM, ALL_TO, &l, &err), RP_EPARSE);
	assert_int_equal(energycharts_parse(NULL, 0, ALL_FROM, ALL_TO, &l, &err), RP_EPARSE);
	assert_int_equal(l.n, 0);
	slot_list_free(&l);
}

static const struct bad_case bad_html = {"cdn_403.html", RP_EFORBIDDEN,
                                         "upstream answered with an HTML page (CDN block?)"};
static const struct bad_case bad_not_json = {"error_500.txt", RP_EPARSE, "not JSON"};
static const struct bad_case bad_wrong_shape = {"price_wrong_shape.json", RP_EPARSE, NULL};
static const struct bad_case bad_error_body = {"error_no_content.json", RP_EPARSE, NULL};
static const struct bad_case bad_missing_price = {"price_missing_price.json", RP_EPARSE, NULL};
static const struct bad_case bad_missing_times = {"price_missing_times.json", RP_EPARSE, NULL};
static const struct bad_case bad_arrays_objects = {"price_arrays_objects.json", RP_EPARSE, NULL};
static const struct bad_case bad_string_price = {"price_string_element.json", RP_EPARSE, "price[1]"};
static const struct bad_case bad_float_times = {"price_times_float.json", RP_EPARSE, NULL};
static const struct bad_case bad_string_times = {"price_times_string.json", RP_EPARSE, NULL};
static const struct bad_case bad_nan = {"price_nan.txt", RP_EPARSE, NULL};
static const struct bad_case bad_infinity = {"price_infinity.txt", RP_EPARSE, NULL};
static const struct bad_case bad_unit_number = {"price_unit_number.json", RP_EPARSE, NULL};
static const struct bad_case bad_length_mismatch = {"price_length_mismatch.json", RP_EGARBAGE,
                                                    "4 times but 3"};
static const struct bad_case bad_unsorted = {"price_unsorted.json", RP_EGARBAGE, "out of order"};
static const struct bad_case bad_duplicate = {"price_duplicate.json", RP_EGARBAGE, "out of order"};
static const struct bad_case bad_unit_kwh = {"price_wrong_unit.json", RP_EGARBAGE, "wrong unit"};
static const struct bad_case bad_unit_dkk = {"price_wrong_currency.json", RP_EGARBAGE, "wrong unit"};
static const struct bad_case bad_empty = {"price_empty.json", RP_EGARBAGE, "no prices"};
static const struct bad_case bad_absurd = {"price_absurd.json", RP_EGARBAGE, "absurd"};
static const struct bad_case bad_not_minute = {"price_time_not_minute.json", RP_EGARBAGE, NULL};
static const struct bad_case bad_ms_times = {"price_time_ms.json", RP_EGARBAGE, NULL};
static const struct bad_case bad_too_many = {"price_too_many.json", RP_ETOOLARGE, NULL};

#define BAD(name, c)                                                                                         \
	{                                                                                                    \
		name, test_bad_answer, NULL, NULL, (void *)&(c)                                              \
	}

/* ---- the client against the fake upstream ---------------------------- */

static struct config cfg;
static char base_url[128];
static const struct http_retry_policy policy = {3, 1, 10, 1};

static int fake_setup(void **state)
{
	if(fake_start() || fake_reset())
		return -1;
	snprintf(base_url, sizeof(base_url), "%s", fake_url());
	memset(&cfg, 0, sizeof(cfg));
	cfg.energycharts_url = base_url;
	return 0;
}

static int fetch(const char *bzn, int64_t from, int64_t to, struct provider_result *res, struct rp_err *err)
{
	struct provider_ctx ctx = {.cfg = &cfg, .auth = NULL, .store = NULL, .retry = &policy};

	provider_result_init(res);
	rp_err_clear(err);
	return provider_fetch(&provider_energycharts, &ctx, bzn, from, to, res, err);
}

/* The fake's DE-LU price of the slot starting at t (README), EUR/MWh. */
static double fake_delu_price(int64_t t)
{
	double w = sin(2 * M_PI * (double)t / 86400.0), v = sin(2 * M_PI * (double)t / 604800.0);
	return 80 + 70 * w + 20 * v;
}

/* Every slot of [from, to) there, 15 minutes long, at the fake's price. */
static void assert_quarter_hours(const struct provider_result *res, int64_t from, int64_t to)
{
	size_t i;

	assert_string_equal(res->slots.unit, "EUR/kWh");
	assert_int_equal(res->slots.n, (size_t)((to - from) / 900));
	assert_int_equal(res->slots.v[0].start, from);
	assert_int_equal(slot_list_contiguous_end(&res->slots), to);
	for(i = 0; i < res->slots.n; i++) {
		assert_int_equal(res->slots.v[i].end - res->slots.v[i].start, 900);
		assert_near(res->slots.v[i].value * 1000.0, fake_delu_price(res->slots.v[i].start), 0.0051);
	}
}

static void test_today_comes_in_quarter_hours_at_the_upstream_price(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();
	int64_t today = rtime_day_start(RTIME_CET, now), tomorrow = rtime_day_add(RTIME_CET, now, 1);

	assert_int_equal(fetch("DE-LU", today, tomorrow, &res, &err), 0);
	assert_quarter_hours(&res, today, tomorrow);
	assert_int_equal(res.upstream_calls, 1);
	assert_string_equal(res.source, "energycharts/price");
	provider_result_free(&res);
}

static void test_tomorrow_before_publication_is_no_slots_not_an_error(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();
	int64_t tomorrow = rtime_day_add(RTIME_CET, now, 1), after = rtime_day_add(RTIME_CET, now, 2);

	assert_int_equal(fake_config("{\"publish_at\":{\"energycharts\":\"never\"}}"), 0);
	assert_int_equal(fetch("DE-LU", tomorrow, after, &res, &err), 0);
	assert_int_equal(res.slots.n, 0);
	assert_int_equal(res.upstream_calls, 1);
	provider_result_free(&res);
	assert_int_equal(fake_calls("energycharts_price"), 1);
}

static void test_today_and_tomorrow_before_publication_gives_today(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();
	int64_t today = rtime_day_start(RTIME_CET, now), tomorrow = rtime_day_add(RTIME_CET, now, 1);

	assert_int_equal(fake_config("{\"publish_at\":{\"energycharts\":\"never\"}}"), 0);
	assert_int_equal(fetch("DE-LU", today, rtime_day_add(RTIME_CET, now, 2), &res, &err), 0);
	assert_quarter_hours(&res, today, tomorrow);
	provider_result_free(&res);
}

static void test_tomorrow_after_publication_is_served(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();
	int64_t tomorrow = rtime_day_add(RTIME_CET, now, 1), after = rtime_day_add(RTIME_CET, now, 2);

	/* Published at local midnight: tomorrow is out whenever this runs. */
	assert_int_equal(fake_config("{\"publish_at\":{\"energycharts\":\"00:00\"}}"), 0);
	assert_int_equal(fetch("DE-LU", tomorrow, after, &res, &err), 0);
	assert_quarter_hours(&res, tomorrow, after);
	provider_result_free(&res);
}

static void test_resolution_change_day_from_the_upstream_is_exact(void **state)
{
	const int64_t d0 = 1759183200; /* 2025-09-30T00:00+02:00 */
	struct provider_result res;
	struct rp_err err;
	size_t i;

	assert_int_equal(fetch("DE-LU", d0, d0 + 2 * 86400, &res, &err), 0);
	assert_int_equal(res.slots.n, 24 + 96);
	for(i = 0; i < res.slots.n; i++)
		assert_int_equal(res.slots.v[i].end - res.slots.v[i].start, i < 24 ? 3600 : 900);
	assert_int_equal(slot_list_contiguous_end(&res.slots), d0 + 2 * 86400);
	provider_result_free(&res);
}

static void test_null_price_from_the_upstream_stays_missing(void **state)
{
	struct provider_result res;
	struct rp_err err;
	char conf[128];
	int64_t now = rtime_now();
	int64_t today = rtime_day_start(RTIME_CET, now), tomorrow = rtime_day_add(RTIME_CET, now, 1);
	int64_t hole = today + 3600;
	size_t i;

	snprintf(conf, sizeof(conf), "{\"energycharts_null_slots\":[%lld]}", (long long)hole);
	assert_int_equal(fake_config(conf), 0);
	assert_int_equal(fetch("DE-LU", today, tomorrow, &res, &err), 0);
	assert_int_equal(res.slots.n, (size_t)((tomorrow - today) / 900) - 1);
	for(i = 0; i < res.slots.n; i++) {
		assert_true(res.slots.v[i].start != hole);
		if(res.slots.v[i].end == hole)
			assert_int_equal(res.slots.v[i].start, hole - 900);
	}
	assert_int_equal(slot_list_contiguous_end(&res.slots), hole);
	provider_result_free(&res);
}

static void test_unknown_bidding_zone_is_not_found_without_retry(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fetch("XX", now - 3600, now, &res, &err), RP_ENOTFOUND);
	assert_non_null(strstr(err.msg, "does not know bidding zone \"XX\""));
	assert_int_equal(res.upstream_calls, 1);
	provider_result_free(&res);
}

static void test_server_error_is_retried(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();
	int64_t today = rtime_day_start(RTIME_CET, now), tomorrow = rtime_day_add(RTIME_CET, now, 1);

	assert_int_equal(
	        fake_fault("{\"endpoint\":\"energycharts_price\",\"kind\":\"status\",\"status\":500}"), 0);
	assert_int_equal(fetch("DE-LU", today, tomorrow, &res, &err), 0);
	assert_quarter_hours(&res, today, tomorrow);
	assert_int_equal(res.upstream_calls, 2);
	provider_result_free(&res);
	assert_int_equal(fake_calls("energycharts_price"), 2);
}

static void test_rate_limit_is_retried(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();
	int64_t today = rtime_day_start(RTIME_CET, now), tomorrow = rtime_day_add(RTIME_CET, now, 1);

	assert_int_equal(
	        fake_fault("{\"endpoint\":\"energycharts_price\",\"kind\":\"rate_limit\",\"retry_after\":0}"),
	        0);
	assert_int_equal(fetch("DE-LU", today, tomorrow, &res, &err), 0);
	assert_int_equal(res.upstream_calls, 2);
	provider_result_free(&res);
}

static void test_backend_error_that_persists_is_reported(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	/* The real API answers 500 for DE-AT-LU every time. */
	assert_int_equal(fetch("DE-AT-LU", now - 3600, now, &res, &err), RP_ESERVER);
	assert_int_equal(res.slots.n, 0);
	assert_int_equal(res.upstream_calls, policy.max_attempts);
	provider_result_free(&res);
}

static void test_cdn_html_page_is_forbidden_and_not_retried(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fake_fault("{\"endpoint\":\"energycharts_price\",\"kind\":\"html\"}"), 0);
	assert_int_equal(fetch("DE-LU", now - 3600, now, &res, &err), RP_EFORBIDDEN);
	assert_string_equal(err.msg, "upstream answered with an HTML page (CDN block?)");
	assert_int_equal(res.upstream_calls, 1);
	provider_result_free(&res);
}

static void test_garbage_and_empty_answers_keep_nothing(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();
	int rc;

	assert_int_equal(fake_fault("{\"endpoint\":\"energycharts_price\",\"kind\":\"garbage\"}"), 0);
	rc = fetch("DE-LU", now - 3600, now, &res, &err);
	assert_true(rc == RP_EPARSE || rc == RP_EGARBAGE);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);

	assert_int_equal(fake_fault("{\"endpoint\":\"energycharts_price\",\"kind\":\"empty\"}"), 0);
	assert_int_equal(fetch("DE-LU", now - 3600, now, &res, &err), RP_EGARBAGE);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);

	assert_int_equal(fake_fault("{\"endpoint\":\"energycharts_price\",\"kind\":\"invalid_json\"}"), 0);
	assert_int_equal(fetch("DE-LU", now - 3600, now, &res, &err), RP_EPARSE);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);
}

static void test_request_asks_the_range_in_unix_seconds(void **state)
{
	struct provider_result res;
	struct rp_err err;
	char seen[8192], want[96];
	int64_t now = rtime_now();
	int64_t today = rtime_day_start(RTIME_CET, now), tomorrow = rtime_day_add(RTIME_CET, now, 1);

	assert_int_equal(fetch("NL", today, tomorrow, &res, &err), 0);
	provider_result_free(&res);
	assert_int_equal(
	        fake_http("GET", "/_fake/requests?endpoint=energycharts_price", NULL, seen, sizeof(seen)),
	        200);
	snprintf(want, sizeof(want), "bzn=NL&start=%lld&end=%lld", (long long)today, (long long)tomorrow);
	if(!strstr(seen, want))
		fail_msg("request lacks \"%s\": %s", want, seen);
}

#define FAKE(f) cmocka_unit_test_setup(f, fake_setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_doc_15min_example_gives_quarter_hours_in_eur_per_kwh),
	        cmocka_unit_test(test_doc_hourly_2024_example_with_no_unit_is_eur_per_mwh),
	        cmocka_unit_test(test_day_switching_from_hourly_to_quarter_hours_is_exact),
	        cmocka_unit_test(test_dst_end_day_has_100_quarter_hours),
	        cmocka_unit_test(test_null_price_is_missing_never_zero),
	        cmocka_unit_test(test_negative_and_zero_prices_are_kept),
	        cmocka_unit_test(test_gap_in_answer_does_not_stretch_a_slot),
	        cmocka_unit_test(test_single_point_after_2025_10_is_a_quarter_hour),
	        cmocka_unit_test(test_only_slots_overlapping_the_range_are_kept),
	        cmocka_unit_test(test_unit_without_spaces_and_deprecated_flag_are_accepted),
	        cmocka_unit_test(test_empty_body_is_a_parse_error),
	        BAD("test_html_page_is_refused_as_forbidden", bad_html),
	        BAD("test_plain_text_body_is_a_parse_error", bad_not_json),
	        BAD("test_top_level_array_is_a_parse_error", bad_wrong_shape),
	        BAD("test_error_body_with_200_is_a_parse_error", bad_error_body),
	        BAD("test_missing_price_array_is_a_parse_error", bad_missing_price),
	        BAD("test_missing_unix_seconds_is_a_parse_error", bad_missing_times),
	        BAD("test_objects_instead_of_arrays_are_a_parse_error", bad_arrays_objects),
	        BAD("test_string_price_is_a_parse_error", bad_string_price),
	        BAD("test_fractional_unix_seconds_are_a_parse_error", bad_float_times),
	        BAD("test_string_unix_seconds_are_a_parse_error", bad_string_times),
	        BAD("test_nan_is_refused", bad_nan),
	        BAD("test_infinity_is_refused", bad_infinity),
	        BAD("test_unit_of_wrong_type_is_a_parse_error", bad_unit_number),
	        BAD("test_arrays_of_different_lengths_are_refused", bad_length_mismatch),
	        BAD("test_unsorted_times_are_refused", bad_unsorted),
	        BAD("test_repeated_times_are_refused", bad_duplicate),
	        BAD("test_eur_per_kwh_unit_is_refused_as_wrong", bad_unit_kwh),
	        BAD("test_other_currency_unit_is_refused_as_wrong", bad_unit_dkk),
	        BAD("test_empty_arrays_are_refused", bad_empty),
	        BAD("test_absurd_price_is_refused", bad_absurd),
	        BAD("test_time_not_on_a_minute_is_refused", bad_not_minute),
	        BAD("test_millisecond_times_are_refused", bad_ms_times),
	        BAD("test_more_points_than_slot_list_max_are_refused", bad_too_many),
	        FAKE(test_today_comes_in_quarter_hours_at_the_upstream_price),
	        FAKE(test_tomorrow_before_publication_is_no_slots_not_an_error),
	        FAKE(test_today_and_tomorrow_before_publication_gives_today),
	        FAKE(test_tomorrow_after_publication_is_served),
	        FAKE(test_resolution_change_day_from_the_upstream_is_exact),
	        FAKE(test_null_price_from_the_upstream_stays_missing),
	        FAKE(test_unknown_bidding_zone_is_not_found_without_retry),
	        FAKE(test_server_error_is_retried),
	        FAKE(test_rate_limit_is_retried),
	        FAKE(test_backend_error_that_persists_is_reported),
	        FAKE(test_cdn_html_page_is_forbidden_and_not_retried),
	        FAKE(test_garbage_and_empty_answers_keep_nothing),
	        FAKE(test_request_asks_the_range_in_unix_seconds),
	};

	log_open(LOG_LEVEL_ERROR, NULL);
	http_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
