/*
 * test_tibber.c - the Tibber GraphQL client: the parser fed with fixture
 * files from tests/data/tibber/, and fetches against a scripted stand-in
 * for the http module (stubbed here, so http.c is not linked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/fixture.h"

#include "ratepool/config.h"
#include "ratepool/http.h"
#include "ratepool/rtime.h"
#include "ratepool/tibber.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOME "96a14971-525a-4420-aae9-e5aedaa129ff"

static char *read_fixture(const char *name, size_t *len)
{
	return fixture_read("tibber", name, len);
}

static int64_t T(const char *text)
{
	return fixture_time(text);
}

static int parse_fixture(const char *name, const char *from, const char *to, struct slot_list *out,
                         struct rp_err *err)
{
	size_t len;
	char *body = read_fixture(name, &len);
	int rc;

	rp_err_clear(err);
	rc = tibber_parse_prices(body, len, HOME, T(from), T(to), out, err);
	free(body);
	return rc;
}

/* --- stub: http ------------------------------------------------------------ */

struct reply {
	long status;
	const char *file;
	const char *body;
	const char *ctype;
};

#define MAX_SCRIPT 8
static struct reply script[MAX_SCRIPT];
static int script_n;
static int calls;
static char seen_url[256];
static char seen_method[8];
static char seen_bearer[128];
static char seen_ctype[64];
static char seen_body[2048];

static void script_reset(void)
{
	memset(script, 0, sizeof(script));
	script_n = 0;
	calls = 0;
	seen_url[0] = seen_method[0] = seen_bearer[0] = seen_ctype[0] = seen_body[0] = '\0';
}

static void script_add(long status, const char *file, const char *body, const char *ctype)
{
	assert_true(script_n < MAX_SCRIPT);
	script[script_n].status = status;
	script[script_n].file = file;
	script[script_n].body = body;
	script[script_n].ctype = ctype ? ctype : "application/json";
	script_n++;
}

int http_perform_retry(const struct http_request *req, const struct http_retry_policy *policy,
                       struct http_response *resp, int *attempts, struct rp_err *err)
{
	const struct reply *r;
	size_t len = 0;
	char *body;

	assert_non_null(policy);
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if(attempts)
		*attempts = 1;
	if(calls >= script_n)
		fail_msg("unexpected request %d: %s", calls, req->url);
	r = &script[calls++];
	snprintf(seen_url, sizeof(seen_url), "%s", req->url);
	snprintf(seen_method, sizeof(seen_method), "%s", req->method ? req->method : "GET");
	snprintf(seen_bearer, sizeof(seen_bearer), "%s", req->bearer ? req->bearer : "");
	snprintf(seen_ctype, sizeof(seen_ctype), "%s", req->content_type ? req->content_type : "");
	snprintf(seen_body, sizeof(seen_body), "%s", req->body ? req->body : "");
	if(r->file)
		body = read_fixture(r->file, &len);
	else {
		body = strdup(r->body ? r->body : "");
		len = strlen(body);
	}
	resp->status = r->status;
	snprintf(resp->content_type, sizeof(resp->content_type), "%s", r->ctype);
	resp->body = body;
	resp->len = len;
	if(resp->status >= 200 && resp->status < 300)
		return 0;
	switch(resp->status) {
	case 401:
		return rp_err_set(err, RP_EAUTH, "HTTP 401");
	case 403:
		return rp_err_set(err, RP_EFORBIDDEN, "HTTP 403");
	case 404:
		return rp_err_set(err, RP_ENOTFOUND, "HTTP 404");
	case 429:
		resp->retry_after = 300;
		if(err)
			err->retry_after = 300;
		return rp_err_set(err, RP_ERATELIMIT, "HTTP 429");
	default:
		if(resp->status >= 500)
			return rp_err_set(err, RP_ESERVER, "HTTP %ld", resp->status);
		return rp_err_set(err, RP_EUPSTREAM, "HTTP %ld", resp->status);
	}
}

void http_response_free(struct http_response *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
}

bool http_body_is_html(const struct http_response *resp)
{
	const char *p = resp->body;
	if(!strncmp(resp->content_type, "text/html", 9))
		return true;
	while(p && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p && *p == '<';
}

static struct config cfg;

static int setup(void **state)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.tibber_url = "http://fake.test/";
	cfg.tibber_token = "tibber-test-token";
	script_reset();
	return 0;
}

/* --- parser: good answers ------------------------------------------------------ */

static void test_real_hourly_answer_in_nok_parses(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("hourly_real_nok.json", "2021-12-28T00:00:00Z", "2022-01-01T00:00:00Z",
	                               &s, &err),
	                 0);
	assert_int_equal(s.n, 8);
	assert_string_equal(s.unit, "NOK/kWh");
	assert_int_equal(s.v[0].start, T("2021-12-28T23:00:00Z"));
	assert_int_equal(s.v[0].end, T("2021-12-29T00:00:00Z"));
	assert_float_equal(s.v[0].value, 0.7158, 1e-12);
	/* `energy` leaves out every tax, not only VAT: no exc-VAT figure */
	assert_true(isnan(s.v[0].value_exc_vat));
	assert_int_equal(s.v[7].start, T("2021-12-30T22:00:00Z"));
	assert_float_equal(s.v[7].value, 0.6358, 1e-12);
	assert_int_equal(slot_list_validate(&s, provider_tibber.max_abs, &err), 0);
	slot_list_free(&s);
}

static void test_quarter_hours_today_and_empty_tomorrow(void **state)
{
	struct slot_list s;
	struct rp_err err;
	size_t i;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("quarter_today_only.json", "2025-10-14T00:00:00Z",
	                               "2025-10-17T00:00:00Z", &s, &err),
	                 0);
	assert_int_equal(s.n, 96);
	assert_string_equal(s.unit, "EUR/kWh");
	assert_int_equal(s.v[0].start, T("2025-10-15T00:00:00+02:00"));
	for(i = 0; i < s.n; i++)
		assert_int_equal(s.v[i].end - s.v[i].start, 900);
	assert_int_equal(slot_list_contiguous_end(&s), T("2025-10-16T00:00:00+02:00"));
	slot_list_free(&s);
}

static void test_starts_without_milliseconds_and_tomorrow_published(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("quarter_no_ms_with_tomorrow.json", "2025-11-02T00:00:00Z",
	                               "2025-11-06T00:00:00Z", &s, &err),
	                 0);
	assert_int_equal(s.n, 192);
	assert_int_equal(s.v[0].start, T("2025-11-03T00:00:00+01:00"));
	assert_int_equal(slot_list_contiguous_end(&s), T("2025-11-05T00:00:00+01:00"));
	assert_int_equal(slot_list_validate(&s, provider_tibber.max_abs, &err), 0);
	slot_list_free(&s);
}

static void test_dst_days_have_100_and_92_quarter_hours(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("dst_autumn_100.json", "2025-10-25T00:00:00Z", "2025-10-28T00:00:00Z",
	                               &s, &err),
	                 0);
	assert_int_equal(s.n, 100);
	assert_int_equal(s.v[0].start, rtime_day_start(RTIME_CET, T("2025-10-26T12:00:00Z")));
	assert_int_equal(slot_list_contiguous_end(&s),
	                 rtime_day_add(RTIME_CET, T("2025-10-26T12:00:00Z"), 1));
	slot_list_clear(&s);
	assert_int_equal(
	        parse_fixture("dst_spring_92.json", "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z", &s, &err),
	        0);
	assert_int_equal(s.n, 92);
	assert_int_equal(slot_list_contiguous_end(&s),
	                 rtime_day_add(RTIME_CET, T("2026-03-29T12:00:00Z"), 1));
	slot_list_free(&s);
}

static void test_hourly_day_next_to_quarter_hourly_day(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("hourly_then_quarter.json", "2025-09-29T00:00:00Z",
	                               "2025-10-02T00:00:00Z", &s, &err),
	                 0);
	assert_int_equal(s.n, 24 + 96);
	assert_int_equal(s.v[0].end - s.v[0].start, 3600);
	assert_int_equal(s.v[23].end, T("2025-10-01T00:00:00+02:00"));
	assert_int_equal(s.v[24].end - s.v[24].start, 900);
	assert_int_equal(slot_list_contiguous_end(&s), T("2025-10-02T00:00:00+02:00"));
	assert_int_equal(slot_list_validate(&s, provider_tibber.max_abs, &err), 0);
	slot_list_free(&s);
}

static void test_single_entry_lasts_by_the_date(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("single_entry_2025.json", "2025-10-14T00:00:00Z",
	                               "2025-10-17T00:00:00Z", &s, &err),
	                 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.v[0].end - s.v[0].start, 900);
	slot_list_clear(&s);
	assert_int_equal(parse_fixture("single_entry_2024.json", "2024-01-09T00:00:00Z",
	                               "2024-01-11T00:00:00Z", &s, &err),
	                 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.v[0].end - s.v[0].start, 3600);
	slot_list_free(&s);
}

static void test_only_slots_overlapping_the_range_are_kept(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("quarter_today_only.json", "2025-10-15T08:07:00Z",
	                               "2025-10-15T09:00:00Z", &s, &err),
	                 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.v[0].start, T("2025-10-15T08:00:00Z"));
	assert_int_equal(s.v[3].end, T("2025-10-15T09:00:00Z"));
	slot_list_clear(&s);
	/* a range before today or after tomorrow has nothing */
	assert_int_equal(parse_fixture("quarter_today_only.json", "2025-10-20T00:00:00Z",
	                               "2025-10-21T00:00:00Z", &s, &err),
	                 0);
	assert_int_equal(s.n, 0);
	slot_list_free(&s);
}

static void test_unordered_entries_are_sorted(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(
	        parse_fixture("unordered.json", "2025-10-14T00:00:00Z", "2025-10-17T00:00:00Z", &s, &err), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(slot_list_validate(&s, provider_tibber.max_abs, &err), 0);
	slot_list_free(&s);
}

static void test_currency_may_come_from_current_only(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("currency_in_current_only.json", "2025-10-14T00:00:00Z",
	                               "2025-10-17T00:00:00Z", &s, &err),
	                 0);
	assert_string_equal(s.unit, "SEK/kWh");
	slot_list_free(&s);
}

static void test_home_is_picked_from_a_homes_list_by_id(void **state)
{
	const char *body =
	        "{\"data\":{\"viewer\":{\"homes\":["
	        "{\"id\":\"other\",\"currentSubscription\":{\"priceInfo\":{\"today\":[{\"total\":9,"
	        "\"startsAt\":\"2025-10-15T00:00:00+02:00\",\"currency\":\"EUR\"}],\"tomorrow\":[]}}},"
	        "{\"id\":\"" HOME "\",\"currentSubscription\":{\"priceInfo\":{\"today\":[{\"total\":0.25,"
	        "\"startsAt\":\"2025-10-15T00:00:00+02:00\",\"currency\":\"EUR\"}],\"tomorrow\":[]}}}]}}}";
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(tibber_parse_prices(body, strlen(body), HOME, 0, INT64_MAX, &s, &err), 0);
	assert_int_equal(s.n, 1);
	assert_float_equal(s.v[0].value, 0.25, 1e-12);
	assert_int_equal(tibber_parse_prices(body, strlen(body), "absent", 0, INT64_MAX, &s, &err),
	                 RP_ENOTFOUND);
	slot_list_free(&s);
}

/* --- parser: errors and garbage ------------------------------------------------ */

static void expect_refused(const char *file, int code)
{
	struct slot_list s;
	struct rp_err err;
	int rc;

	slot_list_init(&s);
	assert_int_equal(slot_list_push(&s, 0, 60, 1.0, NAN), 0);
	snprintf(s.unit, sizeof(s.unit), "XYZ/kWh");
	rc = parse_fixture(file, "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z", &s, &err);
	if(rc != code)
		fail_msg("%s: expected %s, got %s (%s)", file, rp_code_name(code), rp_code_name(rc), err.msg);
	assert_int_equal(err.code, code);
	assert_true(err.msg[0] != '\0');
	assert_int_equal(s.n, 1);
	assert_string_equal(s.unit, "XYZ/kWh");
	slot_list_free(&s);
}

static void test_graphql_errors_map_to_clear_codes(void **state)
{
	struct slot_list s;
	struct rp_err err;

	expect_refused("err_unauthenticated.json", RP_EAUTH);
	expect_refused("err_home_not_found.json", RP_ENOTFOUND);
	expect_refused("home_null.json", RP_ENOTFOUND);
	expect_refused("err_rate_limited.json", RP_ERATELIMIT);
	expect_refused("err_demo_user.json", RP_EUPSTREAM);
	expect_refused("err_syntax.json", RP_EUPSTREAM);
	expect_refused("no_subscription.json", RP_ENOTFOUND);

	slot_list_init(&s);
	parse_fixture("err_unauthenticated.json", "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z", &s, &err);
	assert_non_null(strstr(err.msg, "RATEPOOL_TIBBER_TOKEN"));
	assert_non_null(strstr(err.msg, "invalid token"));
	parse_fixture("err_home_not_found.json", "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z", &s, &err);
	assert_non_null(strstr(err.msg, HOME));
	slot_list_free(&s);
}

static void test_missing_and_mistyped_fields_are_parse_errors(void **state)
{
	expect_refused("missing_total.json", RP_EPARSE);
	expect_refused("total_string.json", RP_EPARSE);
	expect_refused("total_nan_string.json", RP_EPARSE);
	expect_refused("total_null.json", RP_EPARSE);
	expect_refused("missing_starts.json", RP_EPARSE);
	expect_refused("today_not_list.json", RP_EPARSE);
	expect_refused("tomorrow_missing.json", RP_EPARSE);
	expect_refused("no_currency.json", RP_EPARSE);
	expect_refused("data_list.json", RP_EPARSE);
	expect_refused("not_json.txt", RP_EPARSE);
	expect_refused("cdn_403.html", RP_EPARSE);
}

static void test_lying_data_is_garbage(void **state)
{
	expect_refused("total_huge.json", RP_EGARBAGE);
	expect_refused("starts_no_offset.json", RP_EGARBAGE);
	expect_refused("duplicate_starts.json", RP_EGARBAGE);
	expect_refused("spacing_20min.json", RP_EGARBAGE);
	expect_refused("off_grid.json", RP_EGARBAGE);
	expect_refused("bad_currency.json", RP_EGARBAGE);
	expect_refused("mixed_currency.json", RP_EGARBAGE);
	expect_refused("too_many.json", RP_EGARBAGE);
	expect_refused("tomorrow_overlaps_today.json", RP_EGARBAGE);
}

/* --- fetch through the stubbed http ---------------------------------------------- */

static int fetch(const char *id, const char *from, const char *to, struct provider_result *res,
                 struct rp_err *err)
{
	struct provider_ctx c;

	memset(&c, 0, sizeof(c));
	c.cfg = &cfg;
	memset(res, 0, sizeof(*res));
	slot_list_init(&res->slots);
	rp_err_clear(err);
	return provider_tibber.fetch(&c, id, T(from), T(to), res, err);
}

static void test_fetch_posts_the_quarter_hourly_query_with_the_token(void **state)
{
	struct provider_result res;
	struct rp_err err;

	script_add(200, "quarter_today_only.json", NULL, NULL);
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err), 0);
	assert_string_equal(seen_url, "http://fake.test/v1-beta/gql");
	assert_string_equal(seen_method, "POST");
	assert_string_equal(seen_bearer, "tibber-test-token");
	assert_string_equal(seen_ctype, "application/json");
	assert_non_null(strstr(seen_body, "\"query\""));
	assert_non_null(strstr(seen_body, "priceInfo(resolution: QUARTER_HOURLY)"));
	assert_non_null(strstr(seen_body, "home(id: \\\"" HOME "\\\")"));
	assert_non_null(strstr(seen_body, "tomorrow"));
	assert_int_equal(res.upstream_calls, 1);
	/* today is 2025-10-14T22:00Z..2025-10-15T22:00Z; the range cuts it */
	assert_int_equal(res.slots.n, 88);
	assert_string_equal(res.slots.unit, "EUR/kWh");
	slot_list_free(&res.slots);
}

static void test_fetch_without_token_is_refused_without_a_call(void **state)
{
	struct provider_result res;
	struct rp_err err;

	cfg.tibber_token = NULL;
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err), RP_EINVAL);
	assert_non_null(strstr(err.msg, "RATEPOOL_TIBBER_TOKEN"));
	assert_int_equal(calls, 0);
	slot_list_free(&res.slots);
}

static void test_http_401_asks_to_check_the_token(void **state)
{
	struct provider_result res;
	struct rp_err err;

	script_add(401, NULL, "Unauthorized", "text/plain");
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err), RP_EAUTH);
	assert_non_null(strstr(err.msg, "RATEPOOL_TIBBER_TOKEN"));
	assert_int_equal(res.slots.n, 0);
	slot_list_free(&res.slots);
}

static void test_http_400_with_graphql_errors_is_classified(void **state)
{
	struct provider_result res;
	struct rp_err err;

	/* before 2025 an invalid token was a 400 with UNAUTHENTICATED */
	script_add(400, "err_unauthenticated.json", NULL, NULL);
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err), RP_EAUTH);
	assert_non_null(strstr(err.msg, "RATEPOOL_TIBBER_TOKEN"));
	script_reset();
	script_add(400, "err_syntax.json", NULL, NULL);
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err),
	                 RP_EUPSTREAM);
	assert_non_null(strstr(err.msg, "Syntax Error"));
	slot_list_free(&res.slots);
}

static void test_http_200_with_auth_error_is_auth_error(void **state)
{
	struct provider_result res;
	struct rp_err err;

	script_add(200, "err_unauthenticated.json", NULL, NULL);
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err), RP_EAUTH);
	script_reset();
	script_add(200, "err_home_not_found.json", NULL, NULL);
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err),
	                 RP_ENOTFOUND);
	slot_list_free(&res.slots);
}

static void test_http_429_is_rate_limited_with_retry_after(void **state)
{
	struct provider_result res;
	struct rp_err err;

	script_add(429, "not_json.txt", NULL, "text/plain");
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err),
	                 RP_ERATELIMIT);
	assert_int_equal(err.retry_after, 300);
	assert_non_null(strstr(err.msg, "rate limit"));
	slot_list_free(&res.slots);
}

static void test_html_answer_is_forbidden(void **state)
{
	struct provider_result res;
	struct rp_err err;

	script_add(200, "cdn_403.html", NULL, "text/html; charset=utf-8");
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err),
	                 RP_EFORBIDDEN);
	assert_string_equal(err.msg, "upstream answered with an HTML page (CDN block?)");
	slot_list_free(&res.slots);
}

static void test_garbage_answer_leaves_no_slots(void **state)
{
	struct provider_result res;
	struct rp_err err;

	script_add(200, "tomorrow_overlaps_today.json", NULL, NULL);
	assert_int_equal(fetch(HOME, "2025-10-15T00:00:00Z", "2025-10-16T00:00:00Z", &res, &err),
	                 RP_EGARBAGE);
	assert_int_equal(res.slots.n, 0);
	slot_list_free(&res.slots);
}

static void test_provider_fields_for_the_scheduler(void **state)
{
	assert_string_equal(provider_tibber.id, "tibber");
	assert_int_equal(provider_tibber.zone, RTIME_CET);
	assert_int_equal(provider_tibber.resolution, 900);
	assert_int_equal(provider_tibber.cadence, PROVIDER_DAILY);
	assert_int_equal(provider_tibber.publish_minute, 13 * 60);
	assert_int_equal(provider_tibber.publish_spread_s, 3 * 3600);
	assert_float_equal(provider_tibber.max_abs, 1000.0, 0);
	assert_true(provider_tibber.needs_auth);
}

#define T_(f) cmocka_unit_test_setup(f, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T_(test_real_hourly_answer_in_nok_parses),
	        T_(test_quarter_hours_today_and_empty_tomorrow),
	        T_(test_starts_without_milliseconds_and_tomorrow_published),
	        T_(test_dst_days_have_100_and_92_quarter_hours),
	        T_(test_hourly_day_next_to_quarter_hourly_day),
	        T_(test_single_entry_lasts_by_the_date),
	        T_(test_only_slots_overlapping_the_range_are_kept),
	        T_(test_unordered_entries_are_sorted),
	        T_(test_currency_may_come_from_current_only),
	        T_(test_home_is_picked_from_a_homes_list_by_id),
	        T_(test_graphql_errors_map_to_clear_codes),
	        T_(test_missing_and_mistyped_fields_are_parse_errors),
	        T_(test_lying_data_is_garbage),
	        T_(test_fetch_posts_the_quarter_hourly_query_with_the_token),
	        T_(test_fetch_without_token_is_refused_without_a_call),
	        T_(test_http_401_asks_to_check_the_token),
	        T_(test_http_400_with_graphql_errors_is_classified),
	        T_(test_http_200_with_auth_error_is_auth_error),
	        T_(test_http_429_is_rate_limited_with_retry_after),
	        T_(test_html_answer_is_forbidden),
	        T_(test_garbage_answer_leaves_no_slots),
	        T_(test_provider_fields_for_the_scheduler),
	};
	log_open(LOG_LEVEL_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
