/* test_watttime.c - the WattTime forecast parser and error messages on
 * fixture files (tests/data/watttime/), and the client against the fake
 * upstream. */
#include "ratepool/watttime.h"

#include "ratepool/auth.h"
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

/* Reads tests/data/watttime/<name>, from the source tree (the working
 * directory, or three levels above build/<x>/tests/<binary>). */
static char *load(const char *name, size_t *len)
{
	return fixture_read("watttime", name, len);
}

static int parse(const char *name, const char *region, const char *signal, int64_t from, int64_t to,
                 struct slot_list *out, struct rp_err *err)
{
	size_t len;
	char *body = load(name, &len);
	int rc;

	rp_err_clear(err);
	rc = watttime_parse_forecast(body, len, region, signal, from, to, out, err);
	free(body);
	return rc;
}

#define DOC_T0      1657843200 /* 2022-07-15T00:00:00+00:00 */
#define FORECAST_T0 1795276800 /* 2026-11-21T16:00:00+00:00 */

static void test_doc_example_gives_five_minute_slots_in_upstream_unit(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(
	        parse("forecast_doc_example.json", "CAISO_NORTH", "co2_moer", ALL_FROM, ALL_TO, &l, &err), 0);
	assert_string_equal(l.unit, "lbs_co2_per_mwh");
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].start, DOC_T0);
	assert_int_equal(l.v[0].end, DOC_T0 + 300);
	assert_near(l.v[0].value, 1048.4131919701972, 1e-9);
	assert_true(isnan(l.v[0].value_exc_vat));
	assert_int_equal(l.v[1].start, DOC_T0 + 300);
	assert_near(l.v[1].value, 1051.0880801214637, 1e-9);
	slot_list_free(&l);
}

static void test_24_hour_forecast_gives_288_contiguous_slots(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse("forecast_24h.json", "CAISO_NORTH", "co2_moer", ALL_FROM, ALL_TO, &l, &err),
	                 0);
	assert_int_equal(l.n, 288);
	assert_int_equal(l.v[0].start, FORECAST_T0);
	assert_int_equal(slot_list_contiguous_end(&l), FORECAST_T0 + 86400);
	assert_int_equal(slot_list_validate(&l, provider_watttime.max_abs, &err), 0);
	slot_list_free(&l);
}

static void test_health_damage_keeps_its_own_unit(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse("forecast_health_damage.json", "CAISO_NORTH", "health_damage", ALL_FROM,
	                       ALL_TO, &l, &err),
	                 0);
	assert_string_equal(l.unit, "$_per_mwh");
	assert_int_equal(l.n, 3);
	assert_near(l.v[2].value, 14.5, 1e-12);
	slot_list_free(&l);
}

static void test_region_check_ignores_case_and_may_be_skipped(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse("forecast_doc_example.json", "caiso_north", NULL, ALL_FROM, ALL_TO, &l, &err),
	                 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(parse("forecast_region_mismatch.json", NULL, NULL, ALL_FROM, ALL_TO, &l, &err), 0);
	assert_int_equal(l.n, 3);
	slot_list_free(&l);
}

static void test_only_slots_overlapping_the_range_are_kept(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	assert_int_equal(parse("forecast_24h.json", "CAISO_NORTH", "co2_moer", FORECAST_T0 + 3600,
	                       FORECAST_T0 + 7200, &l, &err),
	                 0);
	assert_int_equal(l.n, 12);
	assert_int_equal(l.v[0].start, FORECAST_T0 + 3600);
	assert_int_equal(l.v[11].end, FORECAST_T0 + 7200);
	assert_int_equal(parse("forecast_24h.json", "CAISO_NORTH", "co2_moer", FORECAST_T0 + 3601,
	                       FORECAST_T0 + 3660, &l, &err),
	                 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].start, FORECAST_T0 + 3600);
	/* Before the forecast starts: nothing, and no error. */
	assert_int_equal(parse("forecast_24h.json", "CAISO_NORTH", "co2_moer", 0, FORECAST_T0, &l, &err), 0);
	assert_int_equal(l.n, 0);
	assert_string_equal(l.unit, "lbs_co2_per_mwh");
	slot_list_free(&l);
}

static void test_provider_is_a_revisable_five_minute_forecast(void **state)
{
	assert_string_equal(provider_watttime.id, "watttime");
	assert_int_equal(provider_watttime.zone, RTIME_UTC);
	assert_int_equal(provider_watttime.cadence, PROVIDER_PERIODIC);
	assert_int_equal(provider_watttime.period_s, 300);
	assert_int_equal(provider_watttime.resolution, 300);
	assert_true(provider_watttime.revisable);
	assert_true(provider_watttime.needs_auth);
	assert_near(provider_watttime.max_abs, 10000.0, 0);
	assert_non_null(provider_watttime.fetch);
}

/* ---- error messages ------------------------------------------------- */

static int explain(int code, long status, const char *file, const char *region, struct rp_err *err)
{
	size_t len = 0;
	char *body = file ? load(file, &len) : NULL;
	int rc;

	rp_err_clear(err);
	rp_err_set(err, code, "from http");
	rc = watttime_explain_error(code, status, body, len, region, "co2_moer", err);
	free(body);
	return rc;
}

static void assert_msg_has(const struct rp_err *err, const char *part)
{
	if(!strstr(err->msg, part))
		fail_msg("message \"%s\" lacks \"%s\"", err->msg, part);
}

static void test_region_not_in_plan_says_what_to_do(void **state)
{
	struct rp_err err;

	assert_int_equal(explain(RP_EFORBIDDEN, 403, "error_invalid_scope.json", "PSCO", &err),
	                 RP_EFORBIDDEN);
	assert_int_equal(err.code, RP_EFORBIDDEN);
	assert_msg_has(&err, "PSCO");
	assert_msg_has(&err, "not in your WattTime plan");
	assert_msg_has(&err, "my-access");
	/* The same 403 after auth_perform's fresh login came back as an auth
	 * error: it is still about the region. */
	assert_int_equal(explain(RP_EAUTH, 403, "error_invalid_scope.json", "PSCO", &err), RP_EFORBIDDEN);
	assert_msg_has(&err, "not in your WattTime plan");
}

static void test_403_html_page_points_at_credentials(void **state)
{
	struct rp_err err;

	assert_int_equal(explain(RP_EFORBIDDEN, 403, "login_403.html", "CAISO_NORTH", &err), RP_EFORBIDDEN);
	assert_msg_has(&err, "HTML page");
	assert_msg_has(&err, "RATEPOOL_WATTTIME_USERNAME");
}

static void test_unknown_region_is_not_found(void **state)
{
	struct rp_err err;

	assert_int_equal(explain(RP_EUPSTREAM, 400, "error_invalid_region.json", "FOO", &err), RP_ENOTFOUND);
	assert_int_equal(err.code, RP_ENOTFOUND);
	assert_msg_has(&err, "does not know region FOO");
	assert_int_equal(explain(RP_ENOTFOUND, 404, NULL, "FOO", &err), RP_ENOTFOUND);
	assert_msg_has(&err, "does not know region FOO");
}

static void test_bad_signal_points_at_the_setting(void **state)
{
	struct rp_err err;

	assert_int_equal(explain(RP_EUPSTREAM, 400, "error_invalid_signal.json", "CAISO_NORTH", &err),
	                 RP_EUPSTREAM);
	assert_msg_has(&err, "RATEPOOL_WATTTIME_SIGNAL");
	assert_msg_has(&err, "Invalid signal_type");
}

static void test_refused_login_points_at_credentials(void **state)
{
	struct rp_err err;

	assert_int_equal(explain(RP_EAUTH, 401, NULL, "CAISO_NORTH", &err), RP_EAUTH);
	assert_msg_has(&err, "RATEPOOL_WATTTIME_PASSWORD");
}

static void test_transport_errors_keep_their_message(void **state)
{
	struct rp_err err;

	assert_int_equal(explain(RP_ESERVER, 503, NULL, "CAISO_NORTH", &err), RP_ESERVER);
	assert_string_equal(err.msg, "from http");
	assert_int_equal(explain(RP_ETIMEOUT, 0, NULL, "CAISO_NORTH", &err), RP_ETIMEOUT);
	assert_string_equal(err.msg, "from http");
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
	assert_int_equal(parse(c->file, "CAISO_NORTH", "co2_moer", ALL_FROM, ALL_TO, &l, &err), c->code);
	assert_int_equal(err.code, c->code);
	assert_int_equal(l.n, 0);
	if(c->msg_part)
		assert_msg_has(&err, c->msg_part);
	slot_list_free(&l);
}

static void test_empty_body_is_a_parse_error(void **state)
{
	struct slot_list l;
	struct rp_err err;

	slot_list_init(&l);
	rp_err_clear(&err);
	assert_int_equal(watttime_parse_forecast("", 0, NULL, NULL, ALL_FROM, ALL_TO, &l, &err), RP_EPARSE);
	assert_int_equal(watttime_parse_forecast(NULL, 0, NULL, NULL, ALL_FROM, ALL_TO, &l, &err), RP_EPARSE);
	assert_int_equal(l.n, 0);
	slot_list_free(&l);
}

static const struct bad_case bad_html = {"login_403.html", RP_EFORBIDDEN,
                                         "upstream answered with an HTML page (CDN block?)"};
static const struct bad_case bad_truncated = {"forecast_truncated.txt", RP_EPARSE, "not JSON"};
static const struct bad_case bad_nan = {"forecast_nan.txt", RP_EPARSE, NULL};
static const struct bad_case bad_infinite = {"forecast_infinite.txt", RP_EPARSE, NULL};
static const struct bad_case bad_wrong_shape = {"forecast_wrong_shape.json", RP_EPARSE, NULL};
static const struct bad_case bad_error_body = {"error_invalid_scope.json", RP_EPARSE, NULL};
static const struct bad_case bad_data_object = {"forecast_data_object.json", RP_EPARSE, NULL};
static const struct bad_case bad_no_meta = {"forecast_no_meta.json", RP_EPARSE, "meta"};
static const struct bad_case bad_no_units = {"forecast_no_units.json", RP_EPARSE, "units"};
static const struct bad_case bad_units_number = {"forecast_units_number.json", RP_EPARSE, "units"};
static const struct bad_case bad_units_text = {"forecast_units_bad.json", RP_EGARBAGE, "unit"};
static const struct bad_case bad_period_string = {"forecast_period_string.json", RP_EPARSE, NULL};
static const struct bad_case bad_missing_value = {"forecast_missing_value.json", RP_EPARSE, "point 1"};
static const struct bad_case bad_value_string = {"forecast_value_string.json", RP_EPARSE, "point 1"};
static const struct bad_case bad_value_null = {"forecast_value_null.json", RP_EPARSE, "point 2"};
static const struct bad_case bad_time_number = {"forecast_time_number.json", RP_EPARSE, "point 0"};
static const struct bad_case bad_time_no_offset = {"forecast_time_no_offset.json", RP_EGARBAGE, "point_time"};
static const struct bad_case bad_unsorted = {"forecast_unsorted.json", RP_EGARBAGE, "out of order"};
static const struct bad_case bad_duplicate = {"forecast_duplicate.json", RP_EGARBAGE, "out of order"};
static const struct bad_case bad_overlap = {"forecast_overlap.json", RP_EGARBAGE, "overlaps"};
static const struct bad_case bad_empty = {"forecast_empty.json", RP_EGARBAGE, "no points"};
static const struct bad_case bad_region = {"forecast_region_mismatch.json", RP_EGARBAGE, "PSCO"};
static const struct bad_case bad_signal = {"forecast_signal_mismatch.json", RP_EGARBAGE, "co2_aoer"};
static const struct bad_case bad_absurd = {"forecast_absurd_value.json", RP_EGARBAGE, "absurd"};

#define BAD(name, c)                                                                                         \
	{                                                                                                    \
		name, test_bad_answer, NULL, NULL, (void *)&(c)                                              \
	}

/* ---- the client against the fake upstream ---------------------------- */

static struct config cfg;
static struct auth *auth;
static char base_url[128];
/* Fast retries: the policy, not the sleeping, is under test. */
static const struct http_retry_policy policy = {3, 1, 10, 1};

static int fake_setup(void **state)
{
	if(fake_start() || fake_reset())
		return -1;
	snprintf(base_url, sizeof(base_url), "%s", fake_url());
	memset(&cfg, 0, sizeof(cfg));
	cfg.watttime_url = base_url;
	cfg.watttime_username = "ratepool";
	cfg.watttime_password = "fake-password";
	cfg.watttime_signal = "co2_moer";
	cfg.token_refresh_margin_s = 300;
	return auth_new(&auth, NULL, &cfg) ? -1 : 0;
}

static int fake_teardown(void **state)
{
	auth_free(auth);
	auth = NULL;
	return 0;
}

static int fetch(const char *region, int64_t from, int64_t to, struct provider_result *res,
                 struct rp_err *err)
{
	struct provider_ctx ctx = {.cfg = &cfg, .auth = auth, .store = NULL, .retry = &policy};

	provider_result_init(res);
	rp_err_clear(err);
	return provider_watttime.fetch(&ctx, region, from, to, res, err);
}

static void assert_forecast(const struct provider_result *res, int64_t from, int64_t to)
{
	size_t i;

	assert_true(res->slots.n >= 23 && res->slots.n <= 24);
	assert_string_equal(res->slots.unit, "lbs_co2_per_mwh");
	/* The forecast starts at the fake's current 5 minutes, which may be
	 * the next one if a boundary passed since `from` was read. */
	assert_true(res->slots.v[0].start <= from + 300 && res->slots.v[0].end > from);
	for(i = 0; i < res->slots.n; i++) {
		assert_int_equal(res->slots.v[i].end - res->slots.v[i].start, 300);
		assert_true(res->slots.v[i].start < to);
		/* 800 + 200 sin(...) + 5 * (0..11) */
		assert_true(res->slots.v[i].value >= 600 && res->slots.v[i].value <= 1055);
	}
	assert_int_equal(slot_list_contiguous_end(&res->slots), res->slots.v[res->slots.n - 1].end);
}

static void test_fetch_logs_in_once_and_reuses_the_token(void **state)
{
	struct provider_result res;
	struct auth_stats st;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), 0);
	assert_forecast(&res, now, now + 7200);
	assert_int_equal(res.upstream_calls, 2); /* login + forecast */
	assert_string_equal(res.source, "watttime/v3/forecast");
	provider_result_free(&res);

	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), 0);
	assert_int_equal(res.upstream_calls, 1);
	provider_result_free(&res);
	assert_int_equal(fake_calls("watttime_login"), 1);
	assert_int_equal(fake_calls("watttime_forecast"), 2);
	auth_stats_get(auth, AUTH_WATTTIME, &st);
	assert_int_equal(st.refresh_count, 1);
}

static void test_token_near_expiry_is_renewed_and_counted(void **state)
{
	struct provider_result res;
	struct auth_stats st;
	struct rp_err err;
	int64_t now = rtime_now();

	/* A margin longer than the 30-minute lifetime: every token is
	 * already "about to expire" at the next fetch. */
	cfg.token_refresh_margin_s = 3600;
	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), 0);
	provider_result_free(&res);
	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), 0);
	assert_int_equal(res.upstream_calls, 2);
	provider_result_free(&res);
	assert_int_equal(fake_calls("watttime_login"), 2);
	assert_int_equal(fake_calls("watttime_forecast"), 2);
	auth_stats_get(auth, AUTH_WATTTIME, &st);
	assert_int_equal(st.refresh_count, 2);
}

static void test_revoked_token_is_renewed_and_the_request_retried_once(void **state)
{
	struct provider_result res;
	struct auth_stats st;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), 0);
	provider_result_free(&res);
	assert_int_equal(fake_config("{\"revoke_tokens\": true}"), 0);
	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), 0);
	assert_forecast(&res, now, now + 7200);
	assert_int_equal(res.upstream_calls, 3); /* 401, login, forecast */
	provider_result_free(&res);
	assert_int_equal(fake_calls("watttime_login"), 2);
	assert_int_equal(fake_calls("watttime_forecast"), 3);
	auth_stats_get(auth, AUTH_WATTTIME, &st);
	assert_int_equal(st.refresh_count, 2);
}

static void test_expired_token_answered_with_403_page_is_renewed(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_forecast\",\"kind\":\"html\",\"status\":403}"),
	                 0);
	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), 0);
	assert_forecast(&res, now, now + 7200);
	assert_int_equal(res.upstream_calls, 4); /* login, 403, login, forecast */
	provider_result_free(&res);
}

static void test_region_not_in_plan_says_so_through_the_fake(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fetch("CAISO_SOUTH", now, now + 7200, &res, &err), RP_EFORBIDDEN);
	assert_int_equal(res.slots.n, 0);
	assert_msg_has(&err, "CAISO_SOUTH");
	assert_msg_has(&err, "not in your WattTime plan");
	provider_result_free(&res);
	/* A scope refusal is not an expired token: no second login, no retry. */
	assert_int_equal(fake_calls("watttime_forecast"), 1);
}

static void test_unknown_region_is_not_found_without_retry(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(fetch("FOO", now, now + 7200, &res, &err), RP_ENOTFOUND);
	assert_msg_has(&err, "does not know region FOO");
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);
	assert_int_equal(fake_calls("watttime_forecast"), 1);
}

static void test_wrong_password_is_an_auth_error_naming_the_settings(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	cfg.watttime_password = "not-the-password";
	auth_free(auth);
	assert_int_equal(auth_new(&auth, NULL, &cfg), 0);
	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), RP_EAUTH);
	assert_msg_has(&err, "RATEPOOL_WATTTIME_PASSWORD");
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);
	assert_int_equal(fake_calls("watttime_forecast"), 0);
}

static void test_no_account_configured_is_invalid_without_a_call(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	cfg.watttime_username = NULL;
	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), RP_EINVAL);
	assert_msg_has(&err, "RATEPOOL_WATTTIME_USERNAME");
	provider_result_free(&res);
	assert_int_equal(fake_calls("watttime_login"), 0);
}

static void test_server_error_is_retried(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_int_equal(
	        fake_fault("{\"endpoint\":\"watttime_forecast\",\"kind\":\"status\",\"status\":500}"), 0);
	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), 0);
	assert_forecast(&res, now, now + 7200);
	assert_int_equal(res.upstream_calls, 3); /* login, 500, forecast */
	provider_result_free(&res);
	assert_int_equal(fake_calls("watttime_forecast"), 2);
}

static void test_garbage_and_empty_answers_keep_nothing(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();
	int rc;

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_forecast\",\"kind\":\"garbage\"}"), 0);
	rc = fetch("CAISO_NORTH", now, now + 7200, &res, &err);
	assert_true(rc == RP_EPARSE || rc == RP_EGARBAGE);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_forecast\",\"kind\":\"empty\"}"), 0);
	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), RP_EGARBAGE);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_forecast\",\"kind\":\"invalid_json\"}"), 0);
	assert_int_equal(fetch("CAISO_NORTH", now, now + 7200, &res, &err), RP_EPARSE);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);
}

static void test_health_damage_signal_is_asked_and_its_unit_kept(void **state)
{
	struct provider_result res;
	struct rp_err err;
	char seen[8192];
	int64_t now = rtime_now();

	cfg.watttime_signal = "health_damage";
	assert_int_equal(fetch("PSCO", now, now + 3600, &res, &err), 0);
	assert_string_equal(res.slots.unit, "$_per_mwh");
	assert_true(res.slots.n >= 11 && res.slots.n <= 12);
	provider_result_free(&res);
	assert_int_equal(
	        fake_http("GET", "/_fake/requests?endpoint=watttime_forecast", NULL, seen, sizeof(seen)),
	        200);
	assert_non_null(strstr(seen, "region=PSCO"));
	assert_non_null(strstr(seen, "signal_type=health_damage"));
	assert_non_null(strstr(seen, "horizon_hours=1"));
}

static void test_provider_fetch_validates_and_counts_calls(void **state)
{
	struct provider_ctx ctx = {.cfg = &cfg, .auth = auth, .store = NULL, .retry = &policy};
	const struct provider *p = provider_find("watttime");
	struct provider_result res;
	struct rp_err err;
	int64_t now = rtime_now();

	assert_ptr_equal(p, &provider_watttime);
	provider_result_init(&res);
	rp_err_clear(&err);
	assert_int_equal(provider_fetch(p, &ctx, "CAISO_NORTH", now, now + 7200, &res, &err), 0);
	assert_forecast(&res, now, now + 7200);
	assert_int_equal(res.upstream_calls, 2);
	assert_true(res.fetched_at > 0);
	provider_result_free(&res);
	/* A series id with a topic character never reaches the upstream. */
	assert_int_equal(provider_fetch(p, &ctx, "CAISO/NORTH", now, now + 7200, &res, &err), RP_EINVAL);
	provider_result_free(&res);
	assert_int_equal(fake_calls("watttime_forecast"), 1);
}

#define FAKE(f) cmocka_unit_test_setup_teardown(f, fake_setup, fake_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_doc_example_gives_five_minute_slots_in_upstream_unit),
	        cmocka_unit_test(test_24_hour_forecast_gives_288_contiguous_slots),
	        cmocka_unit_test(test_health_damage_keeps_its_own_unit),
	        cmocka_unit_test(test_region_check_ignores_case_and_may_be_skipped),
	        cmocka_unit_test(test_only_slots_overlapping_the_range_are_kept),
	        cmocka_unit_test(test_provider_is_a_revisable_five_minute_forecast),
	        cmocka_unit_test(test_region_not_in_plan_says_what_to_do),
	        cmocka_unit_test(test_403_html_page_points_at_credentials),
	        cmocka_unit_test(test_unknown_region_is_not_found),
	        cmocka_unit_test(test_bad_signal_points_at_the_setting),
	        cmocka_unit_test(test_refused_login_points_at_credentials),
	        cmocka_unit_test(test_transport_errors_keep_their_message),
	        cmocka_unit_test(test_empty_body_is_a_parse_error),
	        BAD("test_html_page_is_refused_as_forbidden", bad_html),
	        BAD("test_truncated_body_is_a_parse_error", bad_truncated),
	        BAD("test_nan_is_refused", bad_nan),
	        BAD("test_infinite_value_is_refused", bad_infinite),
	        BAD("test_top_level_array_is_a_parse_error", bad_wrong_shape),
	        BAD("test_error_body_with_200_is_a_parse_error", bad_error_body),
	        BAD("test_data_object_instead_of_array_is_a_parse_error", bad_data_object),
	        BAD("test_missing_meta_is_a_parse_error", bad_no_meta),
	        BAD("test_missing_units_is_a_parse_error", bad_no_units),
	        BAD("test_numeric_units_is_a_parse_error", bad_units_number),
	        BAD("test_units_with_spaces_or_markup_are_refused", bad_units_text),
	        BAD("test_string_period_is_a_parse_error", bad_period_string),
	        BAD("test_point_without_value_is_a_parse_error", bad_missing_value),
	        BAD("test_string_value_is_a_parse_error", bad_value_string),
	        BAD("test_null_value_is_a_parse_error", bad_value_null),
	        BAD("test_numeric_point_time_is_a_parse_error", bad_time_number),
	        BAD("test_point_time_without_offset_is_refused", bad_time_no_offset),
	        BAD("test_unsorted_points_are_refused", bad_unsorted),
	        BAD("test_repeated_points_are_refused", bad_duplicate),
	        BAD("test_overlapping_points_are_refused", bad_overlap),
	        BAD("test_empty_forecast_is_refused", bad_empty),
	        BAD("test_forecast_for_another_region_is_refused", bad_region),
	        BAD("test_forecast_for_another_signal_is_refused", bad_signal),
	        BAD("test_absurd_value_is_refused", bad_absurd),
	        FAKE(test_fetch_logs_in_once_and_reuses_the_token),
	        FAKE(test_token_near_expiry_is_renewed_and_counted),
	        FAKE(test_revoked_token_is_renewed_and_the_request_retried_once),
	        FAKE(test_expired_token_answered_with_403_page_is_renewed),
	        FAKE(test_region_not_in_plan_says_so_through_the_fake),
	        FAKE(test_unknown_region_is_not_found_without_retry),
	        FAKE(test_wrong_password_is_an_auth_error_naming_the_settings),
	        FAKE(test_no_account_configured_is_invalid_without_a_call),
	        FAKE(test_server_error_is_retried),
	        FAKE(test_garbage_and_empty_answers_keep_nothing),
	        FAKE(test_health_damage_signal_is_asked_and_its_unit_kept),
	        FAKE(test_provider_fetch_validates_and_counts_calls),
	};

	log_open(LOG_LEVEL_ERROR, NULL);
	http_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
