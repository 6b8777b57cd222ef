/* test_aemo.c - the AEMO 5MIN parser on fixture files (tests/data/aemo/),
 * and the client against the fake upstream. */
#include "ratepool/aemo.h"

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

/* Reads tests/data/aemo/<name>, from the source tree (the working
 * directory, or three levels above build/<x>/tests/<binary>). */
static char *load(const char *name, size_t *len)
{
	return fixture_read("aemo", name, len);
}

static int parse_file(const char *name, const char *region, int64_t from, int64_t to, struct slot_list *out,
                      struct rp_err *err)
{
	size_t len;
	char *body = load(name, &len);
	int rc;

	rp_err_clear(err);
	rc = aemo_parse_5min(body, len, region, from, to, out, err);
	free(body);
	return rc;
}

/* 2025-11-14T11:35:00 NEM (UTC+10) is 01:35Z, the END of its interval. */
#define DOC_END_1 1763084100

static void test_doc_example_slot_ends_at_settlementdate_in_nem_time(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse_file("5min_doc_example.json", "NSW1", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_string_equal(l.unit, "AUD/kWh");
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].start, DOC_END_1 - 300);
	assert_int_equal(l.v[0].end, DOC_END_1);
	assert_near(l.v[0].value, -0.01172846, 1e-12);
	assert_true(isnan(l.v[0].value_exc_vat));
	assert_int_equal(l.v[1].start, DOC_END_1);
	assert_int_equal(l.v[1].end, DOC_END_1 + 300);
	assert_near(l.v[1].value, -0.0109, 1e-12);
	slot_list_free(&l);
}

static void test_predispatch_forecast_rows_are_not_kept(void **state)
{
	struct slot_list l;
	struct rp_err err;
	size_t i;

	slot_list_init(&l);
	assert_int_equal(parse_file("5min_doc_example.json", "NSW1", ALL_FROM, ALL_TO, &l, &err), 0);
	for(i = 0; i < l.n; i++)
		assert_true(l.v[i].end <= DOC_END_1 + 300);
	/* SA1 has only a FORECAST row there: known region, no slots. */
	assert_int_equal(parse_file("5min_doc_example.json", "SA1", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 0);
	assert_string_equal(l.unit, "AUD/kWh");
	slot_list_free(&l);
}

static void test_full_report_gives_288_contiguous_slots_per_region(void **state)
{
	static const char *const regions[] = {"NSW1", "QLD1", "VIC1", "SA1", "TAS1"};
	const int64_t first_start = 1763083200; /* 11:20 NEM, 01:20Z */
	struct slot_list l;
	struct rp_err err;
	size_t r, i;

	slot_list_init(&l);
	for(r = 0; r < 5; r++) {
		assert_int_equal(parse_file("5min_full.json", regions[r], ALL_FROM, ALL_TO, &l, &err), 0);
		assert_int_equal(l.n, 288);
		assert_int_equal(l.v[0].start, first_start);
		for(i = 0; i < l.n; i++)
			assert_int_equal(l.v[i].end - l.v[i].start, 300);
		assert_int_equal(slot_list_contiguous_end(&l), first_start + 288 * 300);
		assert_int_equal(slot_list_validate(&l, provider_aemo.max_abs, &err), 0);
	}
	slot_list_free(&l);
}

static void test_only_slots_overlapping_the_range_are_kept(void **state)
{
	const int64_t first_start = 1763083200;
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(
	        parse_file("5min_full.json", "VIC1", first_start + 3600, first_start + 7200, &l, &err), 0);
	assert_int_equal(l.n, 12);
	assert_int_equal(l.v[0].start, first_start + 3600);
	assert_int_equal(l.v[11].end, first_start + 7200);
	assert_int_equal(
	        parse_file("5min_full.json", "VIC1", first_start + 3601, first_start + 3900, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].start, first_start + 3600);
	slot_list_free(&l);
}

static void test_market_cap_and_floor_prices_are_believed(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse_file("5min_cap_floor.json", "SA1", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_near(l.v[0].value, 17.5, 1e-12);
	assert_near(l.v[1].value, -1.0, 1e-12);
	assert_near(l.v[2].value, 0.3, 1e-12);
	slot_list_free(&l);
}

static void test_region_missing_from_answer_is_not_found(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse_file("5min_only_qld.json", "NSW1", ALL_FROM, ALL_TO, &l, &err), RP_ENOTFOUND);
	assert_int_equal(l.n, 0);
	assert_non_null(strstr(err.msg, "NSW1"));
	slot_list_free(&l);
}

static void test_only_the_five_nem_regions_are_known(void **state)
{
	assert_true(aemo_region_known("NSW1"));
	assert_true(aemo_region_known("QLD1"));
	assert_true(aemo_region_known("VIC1"));
	assert_true(aemo_region_known("SA1"));
	assert_true(aemo_region_known("TAS1"));
	assert_false(aemo_region_known("nsw1"));
	assert_false(aemo_region_known("WA1"));
	assert_false(aemo_region_known(""));
	assert_false(aemo_region_known(NULL));
}

static void test_provider_describes_nem_dispatch(void **state)
{
	assert_string_equal(provider_aemo.id, "aemo");
	assert_string_equal(provider_aemo.unit, "AUD/kWh");
	assert_int_equal(provider_aemo.zone, RTIME_NEM);
	assert_int_equal(provider_aemo.cadence, PROVIDER_PERIODIC);
	assert_int_equal(provider_aemo.period_s, 300);
	assert_int_equal(provider_aemo.delay_s, 60);
	assert_int_equal(provider_aemo.resolution, 300);
	assert_near(provider_aemo.max_abs, 100.0, 0);
	assert_false(provider_aemo.needs_auth);
	assert_non_null(provider_aemo.fetch);
}

/* Every bad answer is refused with the right class and leaves no slot. */
struct bad_case {
	const char *file;
	const char *region;
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
	assert_int_equal(parse_file(c->file, c->region, ALL_FROM, ALL_TO, &l, &err), c->code);
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
	assert_int_equal(aemo_parse_5min("", 0, "NSW1", ALL_FROM, ALL_TO, &l, &err), RP_EPARSE);
	assert_int_equal(aemo_parse_5min(NULL, 0, "NSW1", ALL_FROM, ALL_TO, &l, &err), RP_EPARSE);
	assert_int_equal(l.n, 0);
	slot_list_free(&l);
}

static const struct bad_case bad_html = {"cdn_403.html", "NSW1", RP_EFORBIDDEN,
                                         "upstream answered with an HTML page (CDN block?)"};
static const struct bad_case bad_error_body = {"error_500.json", "NSW1", RP_EPARSE, "5MIN"};
static const struct bad_case bad_no_key = {"5min_no_key.json", "NSW1", RP_EPARSE, NULL};
static const struct bad_case bad_not_array = {"5min_not_array.json", "NSW1", RP_EPARSE, NULL};
static const struct bad_case bad_row_not_object = {"5min_row_not_object.json", "NSW1", RP_EPARSE, "row 2"};
static const struct bad_case bad_regionid_missing = {"5min_regionid_missing.json", "NSW1", RP_EPARSE,
                                                     "row 1"};
static const struct bad_case bad_periodtype_missing = {"5min_periodtype_missing.json", "NSW1", RP_EPARSE,
                                                       NULL};
static const struct bad_case bad_rrp_string = {"5min_rrp_string.json", "NSW1", RP_EPARSE, "RRP"};
static const struct bad_case bad_rrp_null = {"5min_rrp_null.json", "NSW1", RP_EPARSE, "RRP"};
static const struct bad_case bad_rrp_missing = {"5min_rrp_missing.json", "NSW1", RP_EPARSE, "RRP"};
static const struct bad_case bad_date_number = {"5min_date_number.json", "NSW1", RP_EPARSE, "SETTLEMENTDATE"};
static const struct bad_case bad_date_off_grid = {"5min_date_off_grid.json", "NSW1", RP_EGARBAGE,
                                                  "SETTLEMENTDATE"};
static const struct bad_case bad_date_garbled = {"5min_date_garbled.json", "NSW1", RP_EGARBAGE,
                                                 "SETTLEMENTDATE"};
static const struct bad_case bad_unsorted = {"5min_unsorted.json", "NSW1", RP_EGARBAGE, "out of order"};
static const struct bad_case bad_duplicate = {"5min_duplicate.json", "NSW1", RP_EGARBAGE, "out of order"};
static const struct bad_case bad_empty = {"5min_empty.json", "NSW1", RP_EGARBAGE, "no rows"};
static const struct bad_case bad_absurd = {"5min_absurd_price.json", "SA1", RP_EGARBAGE, "absurd"};
static const struct bad_case bad_nan = {"5min_nan.txt", "NSW1", RP_EPARSE, NULL};

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
	cfg.aemo_url = base_url;
	return 0;
}

static int fetch(const char *region, int64_t from, int64_t to, struct provider_result *res,
                 struct rp_err *err)
{
	struct provider_ctx ctx = {.cfg = &cfg, .auth = NULL, .store = NULL, .retry = &policy};

	provider_result_init(res);
	rp_err_clear(err);
	return provider_aemo.fetch(&ctx, region, from, to, res, err);
}

/* The fake's price of the NSW1 interval ending at e (README), AUD/MWh. */
static double fake_nsw1_rrp(int64_t e)
{
	double w = sin(2 * M_PI * (double)e / 86400.0), v = sin(2 * M_PI * (double)e / 604800.0);
	return 80 + 60 * w + 10 * v;
}

static void test_fetch_region_gives_settled_five_minute_prices(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now(), from = now - 6 * 3600;
	size_t i;

	assert_int_equal(fetch("NSW1", from, now, &res, &err), 0);
	assert_int_equal(res.upstream_calls, 1);
	assert_string_equal(res.slots.unit, "AUD/kWh");
	assert_string_equal(res.source, "aemo/5MIN");
	/* Six hours back, up to the newest interval (45 s after its end). */
	assert_true(res.slots.n >= 70 && res.slots.n <= 73);
	assert_true(res.slots.v[0].start <= from && res.slots.v[0].end > from);
	assert_int_equal(slot_list_contiguous_end(&res.slots), res.slots.v[res.slots.n - 1].end);
	assert_true(res.slots.v[res.slots.n - 1].end <= now);
	for(i = 0; i < res.slots.n; i++) {
		const struct slot *sl = &res.slots.v[i];
		assert_int_equal(sl->end - sl->start, 300);
		assert_int_equal(sl->end % 300, 0);
		/* The price belongs to the interval ENDING at SETTLEMENTDATE. */
		assert_near(sl->value * 1000.0, fake_nsw1_rrp(sl->end), 1e-4);
	}
	provider_result_free(&res);
}

static void test_request_is_the_post_aemo_expects(void **state)
{
	struct provider_result res;
	struct rp_err err;
	char seen[8192];
	int64_t now = rtime_now();

	assert_int_equal(fetch("QLD1", now - 3600, now, &res, &err), 0);
	provider_result_free(&res);
	assert_int_equal(fake_http("GET", "/_fake/requests?endpoint=aemo_5min", NULL, seen, sizeof(seen)),
	                 200);
	assert_non_null(strstr(seen, "\"POST\""));
	assert_non_null(strstr(seen, "timeScale"));
	assert_non_null(strstr(seen, "30MIN"));
}

static void test_cap_and_floor_pass_through_provider_fetch(void **state)
{
	struct provider_ctx ctx = {.cfg = &cfg, .auth = NULL, .store = NULL, .retry = &policy};
	struct provider_result res;
	struct rp_err err;
	char conf[512], a[RTIME_TEXT_SIZE], b[RTIME_TEXT_SIZE], c[RTIME_TEXT_SIZE];
	int64_t now = rtime_now(), t = now - 3 * 3600;
	size_t i, cap = 0, floor = 0;

	t -= t % 300;
	rtime_format(t, a);
	rtime_format(t + 300, b);
	rtime_format(t + 600, c);
	snprintf(conf, sizeof(conf),
	         "{\"aemo_prices\":[{\"region\":\"SA1\",\"from\":\"%s\",\"to\":\"%s\",\"rrp\":17500},"
	         "{\"region\":\"SA1\",\"from\":\"%s\",\"to\":\"%s\",\"rrp\":-1000}]}",
	         a, b, b, c);
	assert_int_equal(fake_config(conf), 0);
	provider_result_init(&res);
	rp_err_clear(&err);
	assert_int_equal(provider_fetch(&provider_aemo, &ctx, "SA1", t - 3600, t + 3600, &res, &err), 0);
	assert_int_equal(res.upstream_calls, 1);
	for(i = 0; i < res.slots.n; i++) {
		if(res.slots.v[i].start == t) {
			assert_near(res.slots.v[i].value, 17.5, 1e-9);
			cap++;
		}
		if(res.slots.v[i].start == t + 300) {
			assert_near(res.slots.v[i].value, -1.0, 1e-9);
			floor++;
		}
	}
	assert_int_equal(cap, 1);
	assert_int_equal(floor, 1);
	provider_result_free(&res);
}

static void test_unknown_region_costs_no_upstream_call(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fetch("WA1", now - 3600, now, &res, &err), RP_ENOTFOUND);
	assert_non_null(strstr(err.msg, "NSW1, QLD1, VIC1, SA1 or TAS1"));
	assert_int_equal(res.upstream_calls, 0);
	provider_result_free(&res);
	assert_int_equal(fake_calls("aemo_5min"), 0);
}

static void test_future_range_costs_no_upstream_call(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fetch("VIC1", now + 600, now + 3600, &res, &err), 0);
	assert_int_equal(res.slots.n, 0);
	assert_string_equal(res.slots.unit, "AUD/kWh");
	assert_int_equal(res.upstream_calls, 0);
	provider_result_free(&res);
	assert_int_equal(fake_calls("aemo_5min"), 0);
}

static void test_server_error_is_retried(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fake_fault("{\"endpoint\":\"aemo_5min\",\"kind\":\"status\",\"status\":500}"), 0);
	assert_int_equal(fetch("TAS1", now - 3600, now, &res, &err), 0);
	assert_true(res.slots.n >= 11);
	assert_int_equal(res.upstream_calls, 2);
	provider_result_free(&res);
	assert_int_equal(fake_calls("aemo_5min"), 2);
}

static void test_overload_that_persists_is_reported_after_the_retries(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(
	        fake_fault("{\"endpoint\":\"aemo_5min\",\"kind\":\"status\",\"status\":503,\"times\":-1}"),
	        0);
	assert_int_equal(fetch("TAS1", now - 3600, now, &res, &err), RP_ESERVER);
	assert_int_equal(res.slots.n, 0);
	assert_int_equal(res.upstream_calls, policy.max_attempts);
	provider_result_free(&res);
}

static void test_waf_html_page_is_forbidden_and_not_retried(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fake_fault("{\"endpoint\":\"aemo_5min\",\"kind\":\"html\"}"), 0);
	assert_int_equal(fetch("NSW1", now - 3600, now, &res, &err), RP_EFORBIDDEN);
	assert_non_null(strstr(err.msg, "HTML page"));
	assert_int_equal(res.slots.n, 0);
	assert_int_equal(res.upstream_calls, 1);
	provider_result_free(&res);
}

static void test_garbage_and_empty_answers_keep_nothing_truncated_is_retried(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();
	int rc;

	assert_int_equal(fake_fault("{\"endpoint\":\"aemo_5min\",\"kind\":\"garbage\"}"), 0);
	rc = fetch("NSW1", now - 3600, now, &res, &err);
	assert_true(rc == RP_EPARSE || rc == RP_EGARBAGE);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);

	assert_int_equal(fake_fault("{\"endpoint\":\"aemo_5min\",\"kind\":\"empty\"}"), 0);
	assert_int_equal(fetch("NSW1", now - 3600, now, &res, &err), RP_EGARBAGE);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);

	/* A body cut short is a transport error: retried, and the retry's
	 * whole answer is what counts. */
	assert_int_equal(fake_fault("{\"endpoint\":\"aemo_5min\",\"kind\":\"truncate\"}"), 0);
	assert_int_equal(fetch("NSW1", now - 3600, now, &res, &err), 0);
	assert_int_equal(res.upstream_calls, 2);
	assert_true(res.slots.n >= 11);
	provider_result_free(&res);
}

#define FAKE(f) cmocka_unit_test_setup(f, fake_setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_doc_example_slot_ends_at_settlementdate_in_nem_time),
	        cmocka_unit_test(test_predispatch_forecast_rows_are_not_kept),
	        cmocka_unit_test(test_full_report_gives_288_contiguous_slots_per_region),
	        cmocka_unit_test(test_only_slots_overlapping_the_range_are_kept),
	        cmocka_unit_test(test_market_cap_and_floor_prices_are_believed),
	        cmocka_unit_test(test_region_missing_from_answer_is_not_found),
	        cmocka_unit_test(test_only_the_five_nem_regions_are_known),
	        cmocka_unit_test(test_provider_describes_nem_dispatch),
	        cmocka_unit_test(test_empty_body_is_a_parse_error),
	        BAD("test_html_page_is_refused_as_forbidden", bad_html),
	        BAD("test_error_body_is_a_parse_error", bad_error_body),
	        BAD("test_answer_without_5min_key_is_a_parse_error", bad_no_key),
	        BAD("test_5min_object_instead_of_array_is_a_parse_error", bad_not_array),
	        BAD("test_row_that_is_not_an_object_is_a_parse_error", bad_row_not_object),
	        BAD("test_row_without_regionid_is_a_parse_error", bad_regionid_missing),
	        BAD("test_row_without_periodtype_is_a_parse_error", bad_periodtype_missing),
	        BAD("test_string_rrp_is_a_parse_error", bad_rrp_string),
	        BAD("test_null_rrp_is_a_parse_error", bad_rrp_null),
	        BAD("test_missing_rrp_is_a_parse_error", bad_rrp_missing),
	        BAD("test_numeric_settlementdate_is_a_parse_error", bad_date_number),
	        BAD("test_settlementdate_off_the_5_minute_grid_is_refused", bad_date_off_grid),
	        BAD("test_garbled_settlementdate_is_refused", bad_date_garbled),
	        BAD("test_unsorted_rows_are_refused", bad_unsorted),
	        BAD("test_repeated_interval_is_refused", bad_duplicate),
	        BAD("test_empty_report_is_refused", bad_empty),
	        BAD("test_absurd_price_is_refused", bad_absurd),
	        BAD("test_nan_is_refused", bad_nan),
	        FAKE(test_fetch_region_gives_settled_five_minute_prices),
	        FAKE(test_request_is_the_post_aemo_expects),
	        FAKE(test_cap_and_floor_pass_through_provider_fetch),
	        FAKE(test_unknown_region_costs_no_upstream_call),
	        FAKE(test_future_range_costs_no_upstream_call),
	        FAKE(test_server_error_is_retried),
	        FAKE(test_overload_that_persists_is_reported_after_the_retries),
	        FAKE(test_waf_html_page_is_forbidden_and_not_retried),
	        FAKE(test_garbage_and_empty_answers_keep_nothing_truncated_is_retried),
	};

	log_open(LOG_LEVEL_ERROR, NULL);
	http_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
