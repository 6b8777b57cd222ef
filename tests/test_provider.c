/*
 * test_provider.c - the provider registry, provider_fetch's sorting and
 * validation (with a provider defined here), and end-to-end fetches of
 * the octopus and tibber clients through the real http module against
 * the fake upstream (tests/fake_upstream), counting upstream calls.
 *
 * Both ratepool and the fake run on RATEPOOL_TEST_CLOCK, set before
 * anything reads the clock, so "today" is the same fixed day for both and
 * nothing depends on when the test runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/fixture.h"

#include "support/fake.h"
#include "ratepool/config.h"
#include "ratepool/http.h"
#include "ratepool/octopus.h"
#include "ratepool/provider.h"
#include "ratepool/rtime.h"
#include "ratepool/store.h"
#include "ratepool/tibber.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 10:00 in London, 11:00 in Berlin: before both publication times. */
#define TEST_CLOCK "2026-11-21T10:00:00Z,1"
#define HOME       "96a14971-525a-4420-aae9-e5aedaa129ff"

static int64_t T(const char *text)
{
	return fixture_time(text);
}

/* --- registry ---------------------------------------------------------------- */

static void test_registry_lists_each_provider_once(void **state)
{
	const struct provider *const *all = provider_all();
	const char *want[] = {"octopus", "tibber", "watttime", "aemo", "energycharts"};
	size_t i, j, n = 0;

	while(all[n])
		n++;
	assert_int_equal(n, 5);
	for(i = 0; i < n; i++)
		for(j = i + 1; j < n; j++)
			assert_string_not_equal(all[i]->id, all[j]->id);
	for(i = 0; i < 5; i++) {
		const struct provider *p = provider_find(want[i]);
		assert_non_null(p);
		assert_string_equal(p->id, want[i]);
	}
	assert_ptr_equal(provider_find("octopus"), &provider_octopus);
	assert_ptr_equal(provider_find("tibber"), &provider_tibber);
	assert_null(provider_find("nordpool"));
	assert_null(provider_find("Octopus"));
	assert_null(provider_find(""));
	assert_null(provider_find(NULL));
}

static void test_every_provider_has_what_the_scheduler_needs(void **state)
{
	const struct provider *const *all = provider_all();
	size_t i;

	for(i = 0; all[i]; i++) {
		const struct provider *p = all[i];
		assert_non_null(p->fetch);
		assert_non_null(p->unit);
		assert_true(p->unit[0] != '\0' && strlen(p->unit) < SLOT_UNIT_SIZE);
		assert_true(p->max_abs > 0);
		assert_true(p->resolution > 0 && p->resolution <= 86400);
		if(p->cadence == PROVIDER_DAILY) {
			assert_true(p->publish_minute >= 0 && p->publish_minute < 24 * 60);
			assert_true(p->publish_spread_s > 0);
		} else
			assert_true(p->period_s > 0);
	}
}

static void test_retry_policy_comes_from_the_config(void **state)
{
	struct config cfg;
	struct http_retry_policy p;

	provider_retry_policy(NULL, &p);
	assert_int_equal(p.max_attempts, 4);
	assert_int_equal(p.base_ms, 500);
	assert_int_equal(p.cap_ms, 30000);
	assert_true(p.max_retry_after_s > 0);

	memset(&cfg, 0, sizeof(cfg));
	cfg.retry_max_attempts = 2;
	cfg.retry_base_ms = 100;
	cfg.retry_cap_ms = 50; /* below base: raised to base */
	provider_retry_policy(&cfg, &p);
	assert_int_equal(p.max_attempts, 2);
	assert_int_equal(p.base_ms, 100);
	assert_int_equal(p.cap_ms, 100);
}

/* --- provider_fetch with a provider defined here ---------------------------- */

static int script_rc;
static int script_calls;
static int fetch_called;
static double script_values[4];
static int64_t script_starts[4];
static size_t script_n;

static int scripted_fetch(const struct provider_ctx *ctx, const char *id, int64_t from, int64_t to,
                          struct provider_result *res, struct rp_err *err)
{
	size_t i;

	fetch_called++;
	res->upstream_calls = script_calls;
	for(i = 0; i < script_n; i++)
		assert_int_equal(slot_list_push(&res->slots, script_starts[i], script_starts[i] + 900,
		                                script_values[i], NAN),
		                 0);
	if(script_rc)
		return rp_err_set(err, script_rc, "scripted failure");
	return 0;
}

static const struct provider scripted = {
        .id = "scripted",
        .unit = "EUR/kWh",
        .zone = RTIME_CET,
        .resolution = 900,
        .max_abs = 10,
        .cadence = PROVIDER_DAILY,
        .publish_minute = 780,
        .publish_spread_s = 3600,
        .fetch = scripted_fetch,
};

static int scripted_setup(void **state)
{
	script_rc = 0;
	script_calls = 1;
	fetch_called = 0;
	script_n = 3;
	script_starts[0] = 1800;
	script_starts[1] = 0;
	script_starts[2] = 900;
	script_values[0] = 0.3;
	script_values[1] = 0.1;
	script_values[2] = 0.2;
	return 0;
}

static void test_fetch_sorts_and_fills_defaults(void **state)
{
	struct config cfg;
	struct provider_ctx ctx = {&cfg, NULL, NULL, NULL};
	struct provider_result res;
	struct rp_err err;
	int64_t before = rtime_now();

	memset(&cfg, 0, sizeof(cfg));
	provider_result_init(&res);
	rp_err_clear(&err);
	assert_int_equal(provider_fetch(&scripted, &ctx, "DE-LU", 0, 3600, &res, &err), 0);
	assert_int_equal(res.slots.n, 3);
	assert_int_equal(res.slots.v[0].start, 0);
	assert_float_equal(res.slots.v[0].value, 0.1, 0);
	assert_int_equal(res.slots.v[2].start, 1800);
	assert_string_equal(res.slots.unit, "EUR/kWh");
	assert_string_equal(res.source, "scripted");
	assert_int_equal(res.upstream_calls, 1);
	assert_true(res.fetched_at >= before && res.fetched_at <= rtime_now());
	provider_result_free(&res);
}

static void expect_fetch_refused(int code, const char *id, int64_t from, int64_t to)
{
	struct config cfg;
	struct provider_ctx ctx = {&cfg, NULL, NULL, NULL};
	struct provider_result res;
	struct rp_err err;

	memset(&cfg, 0, sizeof(cfg));
	provider_result_init(&res);
	rp_err_clear(&err);
	assert_int_equal(provider_fetch(&scripted, &ctx, id, from, to, &res, &err), code);
	assert_int_equal(err.code, code);
	assert_true(err.msg[0] != '\0');
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);
}

static void test_fetch_refuses_values_beyond_max_abs(void **state)
{
	script_values[1] = 10.5;
	expect_fetch_refused(RP_EGARBAGE, "DE-LU", 0, 3600);
}

static void test_fetch_refuses_nan_values(void **state)
{
	script_values[2] = NAN;
	expect_fetch_refused(RP_EGARBAGE, "DE-LU", 0, 3600);
	script_values[2] = INFINITY;
	expect_fetch_refused(RP_EGARBAGE, "DE-LU", 0, 3600);
}

static void test_fetch_refuses_overlapping_slots(void **state)
{
	script_starts[2] = 600;
	expect_fetch_refused(RP_EGARBAGE, "DE-LU", 0, 3600);
}

static void test_failed_fetch_keeps_no_slots_but_counts_calls(void **state)
{
	struct provider_ctx ctx = {NULL, NULL, NULL, NULL};
	struct provider_result res;
	struct rp_err err;

	script_rc = RP_ESERVER;
	script_calls = 4;
	provider_result_init(&res);
	assert_int_equal(provider_fetch(&scripted, &ctx, "DE-LU", 0, 3600, &res, &err), RP_ESERVER);
	assert_int_equal(res.slots.n, 0);
	assert_int_equal(res.upstream_calls, 4);
	provider_result_free(&res);
}

static void test_fetch_refuses_bad_ids_and_ranges_without_calling(void **state)
{
	expect_fetch_refused(RP_EINVAL, "a/b", 0, 3600);
	expect_fetch_refused(RP_EINVAL, "+", 0, 3600);
	expect_fetch_refused(RP_EINVAL, "", 0, 3600);
	expect_fetch_refused(RP_EINVAL, "DE-LU", 3600, 3600);
	expect_fetch_refused(RP_EINVAL, "DE-LU", 3600, 0);
	assert_int_equal(fetch_called, 0);
}

/* --- against the fake upstream ------------------------------------------------- */

static struct config cfg;
static struct store *store;
static char store_dir[64];
static struct http_retry_policy policy;

static int load_config(const char *tibber_token)
{
	char octopus_url[128], tibber_url[128], token[128];
	char *envp[] = {
	        octopus_url,
	        tibber_url,
	        "RATEPOOL_OCTOPUS_API_KEY=sk_test_fake",
	        "RATEPOOL_OCTOPUS_ACCOUNTS=home:A-FAKE0001",
	        token,
	        "RATEPOOL_RETRY_BASE_MS=1",
	        "RATEPOOL_RETRY_CAP_MS=5",
	        "RATEPOOL_HTTP_TIMEOUT_MS=10000",
	        NULL,
	};
	struct rp_err err;

	snprintf(octopus_url, sizeof(octopus_url), "RATEPOOL_OCTOPUS_URL=%s", fake_url());
	snprintf(tibber_url, sizeof(tibber_url), "RATEPOOL_TIBBER_URL=%s", fake_url());
	snprintf(token, sizeof(token), "RATEPOOL_TIBBER_TOKEN=%s", tibber_token);
	config_free(&cfg);
	if(config_load(&cfg, NULL, envp, &err)) {
		fprintf(stderr, "config: %s\n", err.msg);
		return -1;
	}
	provider_retry_policy(&cfg, &policy);
	return 0;
}

static int fake_group_setup(void **state)
{
	struct store_options opt;
	struct rp_err err;

	if(http_global_init() || fake_start())
		return -1;
	snprintf(store_dir, sizeof(store_dir), "/tmp/ratepool-prov1-XXXXXX");
	if(!mkdtemp(store_dir))
		return -1;
	memset(&opt, 0, sizeof(opt));
	opt.path = store_dir;
	if(store_open(&store, &opt, &err)) {
		fprintf(stderr, "store: %s\n", err.msg);
		return -1;
	}
	return load_config("tibber-test-token");
}

static int fake_group_teardown(void **state)
{
	char path[128];

	store_close(store);
	snprintf(path, sizeof(path), "%s/data.mdb", store_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", store_dir);
	unlink(path);
	rmdir(store_dir);
	config_free(&cfg);
	fake_stop();
	http_global_cleanup();
	return 0;
}

static int fake_setup(void **state)
{
	store_meta_delete(store, "account/home");
	if(load_config("tibber-test-token"))
		return -1;
	return fake_reset();
}

static int fetch(const char *provider, const char *id, int64_t from, int64_t to, struct provider_result *res,
                 struct rp_err *err)
{
	struct provider_ctx ctx = {&cfg, NULL, store, &policy};

	provider_result_init(res);
	rp_err_clear(err);
	return provider_fetch(provider_find(provider), &ctx, id, from, to, res, err);
}

static void test_clock_is_the_test_clock(void **state)
{
	int64_t now = rtime_now();
	assert_true(now >= T("2026-11-21T10:00:00Z") && now < T("2026-11-21T11:00:00Z"));
}

static void test_octopus_pages_through_a_long_range(void **state)
{
	struct provider_result res;
	struct rp_err err;
	size_t i;

	/* 39 days of half hours = 1872 rows: two pages of at most 1500 */
	assert_int_equal(fetch("octopus", "E-1R-AGILE-24-10-01-C", T("2026-10-10T00:00:00Z"),
	                       T("2026-11-18T00:00:00Z"), &res, &err),
	                 0);
	assert_int_equal(res.slots.n, 1872);
	assert_int_equal(res.upstream_calls, 2);
	assert_int_equal(fake_calls("octopus_rates"), 2);
	assert_int_equal(res.slots.v[0].start, T("2026-10-10T00:00:00Z"));
	assert_int_equal(slot_list_contiguous_end(&res.slots), T("2026-11-18T00:00:00Z"));
	assert_string_equal(res.slots.unit, "GBP/kWh");
	/* pence became pounds */
	for(i = 0; i < res.slots.n; i++)
		assert_true(fabs(res.slots.v[i].value) < 1.5);
	provider_result_free(&res);
}

static void test_octopus_tomorrow_appears_only_after_publication(void **state)
{
	int64_t today = rtime_day_start(RTIME_LONDON, rtime_now());
	int64_t in_two_days = rtime_day_add(RTIME_LONDON, today, 2);
	struct provider_result res;
	struct rp_err err;

	assert_int_equal(fake_config("{\"publish_at\":{\"octopus\":\"never\"}}"), 0);
	assert_int_equal(fetch("octopus", "E-1R-AGILE-24-10-01-C", today, in_two_days, &res, &err), 0);
	assert_int_equal(res.slots.n, 48);
	assert_int_equal(slot_list_contiguous_end(&res.slots), rtime_day_add(RTIME_LONDON, today, 1));
	provider_result_free(&res);

	assert_int_equal(fake_config("{\"publish_at\":{\"octopus\":\"00:00\"}}"), 0);
	assert_int_equal(fetch("octopus", "E-1R-AGILE-24-10-01-C", today, in_two_days, &res, &err), 0);
	assert_int_equal(res.slots.n, 96);
	assert_int_equal(slot_list_contiguous_end(&res.slots), in_two_days);
	provider_result_free(&res);
}

static void test_octopus_server_error_is_retried(void **state)
{
	struct provider_result res;
	struct rp_err err;

	assert_int_equal(
	        fake_fault("{\"endpoint\":\"octopus_rates\",\"kind\":\"status\",\"status\":500,\"times\":1}"),
	        0);
	assert_int_equal(fetch("octopus", "E-1R-AGILE-24-10-01-C", T("2026-11-20T00:00:00Z"),
	                       T("2026-11-21T00:00:00Z"), &res, &err),
	                 0);
	assert_int_equal(res.slots.n, 48);
	assert_int_equal(res.upstream_calls, 2);
	assert_int_equal(fake_calls("octopus_rates"), 2);
	provider_result_free(&res);
}

static void test_octopus_unknown_tariff_is_not_found(void **state)
{
	struct provider_result res;
	struct rp_err err;

	assert_int_equal(fetch("octopus", "E-1R-NOPE-24-10-01-C", T("2026-11-20T00:00:00Z"),
	                       T("2026-11-21T00:00:00Z"), &res, &err),
	                 RP_ENOTFOUND);
	assert_non_null(strstr(err.msg, "E-1R-NOPE-24-10-01-C"));
	assert_int_equal(res.slots.n, 0);
	/* a 404 is an answer, not a failure to retry */
	assert_int_equal(res.upstream_calls, 1);
	assert_int_equal(fake_calls("octopus_rates"), 1);
	provider_result_free(&res);
}

static void test_octopus_html_page_is_forbidden(void **state)
{
	struct provider_result res;
	struct rp_err err;

	assert_int_equal(fake_fault("{\"endpoint\":\"octopus_rates\",\"kind\":\"html\"}"), 0);
	assert_int_equal(fetch("octopus", "E-1R-AGILE-24-10-01-C", T("2026-11-20T00:00:00Z"),
	                       T("2026-11-21T00:00:00Z"), &res, &err),
	                 RP_EFORBIDDEN);
	assert_string_equal(err.msg, "upstream answered with an HTML page (CDN block?)");
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);
}

static void test_octopus_garbage_is_refused(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int rc;

	assert_int_equal(fake_fault("{\"endpoint\":\"octopus_rates\",\"kind\":\"garbage\"}"), 0);
	rc = fetch("octopus", "E-1R-AGILE-24-10-01-C", T("2026-11-20T00:00:00Z"), T("2026-11-21T00:00:00Z"),
	           &res, &err);
	if(rc != RP_EGARBAGE && rc != RP_EPARSE)
		fail_msg("garbage gave %s (%s)", rp_code_name(rc), err.msg);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);

	assert_int_equal(fake_fault("{\"endpoint\":\"octopus_rates\",\"kind\":\"invalid_json\"}"), 0);
	assert_int_equal(fetch("octopus", "E-1R-AGILE-24-10-01-C", T("2026-11-20T00:00:00Z"),
	                       T("2026-11-21T00:00:00Z"), &res, &err),
	                 RP_EPARSE);
	provider_result_free(&res);
}

static void test_octopus_account_alias_is_answered_from_tariff_rates(void **state)
{
	struct provider_result res;
	struct rp_err err;
	char *rec = NULL;
	size_t len;

	assert_int_equal(
	        fetch("octopus", "home", T("2026-11-20T00:00:00Z"), T("2026-11-21T00:00:00Z"), &res, &err),
	        0);
	assert_int_equal(res.slots.n, 48);
	assert_int_equal(res.upstream_calls, 2);
	assert_int_equal(fake_calls("octopus_account"), 1);
	assert_int_equal(fake_calls("octopus_rates"), 1);
	assert_int_equal(store_meta_get(store, "account/home", &rec, &len), 0);
	assert_non_null(strstr(rec, "E-1R-AGILE-24-10-01-C"));
	free(rec);
	provider_result_free(&res);

	/* the account record is reused: only the rates are fetched again */
	assert_int_equal(
	        fetch("octopus", "home", T("2026-11-19T00:00:00Z"), T("2026-11-20T00:00:00Z"), &res, &err),
	        0);
	assert_int_equal(res.slots.n, 48);
	assert_int_equal(res.upstream_calls, 1);
	assert_int_equal(fake_calls("octopus_account"), 1);
	assert_int_equal(fake_calls("octopus_rates"), 2);
	provider_result_free(&res);
}

static void test_octopus_account_switch_mid_day_joins_two_tariffs(void **state)
{
	struct octopus_tariff_span sp[4];
	struct provider_ctx ctx = {&cfg, NULL, store, &policy};
	struct provider_result res;
	struct rp_err err;
	size_t n = 0, i;

	assert_int_equal(
	        fake_config(
	                "{\"account_agreements\":["
	                "{\"tariff_code\":\"E-1R-VAR-22-11-01-C\",\"valid_from\":\"2024-01-01T00:00:00Z\","
	                "\"valid_to\":\"2026-11-20T12:00:00Z\"},"
	                "{\"tariff_code\":\"E-1R-AGILE-24-10-01-C\",\"valid_from\":\"2026-11-20T12:00:00Z\","
	                "\"valid_to\":null}]}"),
	        0);
	assert_int_equal(octopus_account_tariffs(&ctx, "home", T("2026-11-20T00:00:00Z"),
	                                         T("2026-11-21T00:00:00Z"), sp, 4, &n, &err),
	                 0);
	assert_int_equal(n, 2);
	assert_string_equal(sp[0].tariff_code, "E-1R-VAR-22-11-01-C");
	assert_int_equal(sp[0].to, T("2026-11-20T12:00:00Z"));

	assert_int_equal(
	        fetch("octopus", "home", T("2026-11-20T00:00:00Z"), T("2026-11-21T00:00:00Z"), &res, &err),
	        0);
	/* the flexible tariff's DIRECT_DEBIT rate until noon, then Agile */
	assert_int_equal(res.slots.n, 1 + 24);
	assert_int_equal(res.slots.v[0].start, T("2026-11-20T00:00:00Z"));
	assert_int_equal(res.slots.v[0].end, T("2026-11-20T12:00:00Z"));
	assert_float_equal(res.slots.v[0].value, 0.24, 1e-9);
	for(i = 1; i < res.slots.n; i++)
		assert_int_equal(res.slots.v[i].end - res.slots.v[i].start, 1800);
	assert_int_equal(slot_list_contiguous_end(&res.slots), T("2026-11-21T00:00:00Z"));
	assert_int_equal(fake_calls("octopus_account"), 1);
	provider_result_free(&res);
}

static void test_octopus_account_with_wrong_key_is_auth_error(void **state)
{
	struct provider_result res;
	struct rp_err err;
	struct provider_ctx ctx;
	char *saved = cfg.octopus_api_key;

	cfg.octopus_api_key = "sk_live_wrong";
	memset(&ctx, 0, sizeof(ctx));
	assert_int_equal(
	        fetch("octopus", "home", T("2026-11-20T00:00:00Z"), T("2026-11-21T00:00:00Z"), &res, &err),
	        RP_EAUTH);
	assert_non_null(strstr(err.msg, "RATEPOOL_OCTOPUS_API_KEY"));
	assert_int_equal(res.upstream_calls, 1);
	cfg.octopus_api_key = saved;
	provider_result_free(&res);
}

static void test_tibber_tomorrow_is_empty_until_published(void **state)
{
	int64_t today = rtime_day_start(RTIME_CET, rtime_now());
	int64_t in_two_days = rtime_day_add(RTIME_CET, today, 2);
	struct provider_result res;
	struct rp_err err;
	size_t i;

	assert_int_equal(fake_config("{\"publish_at\":{\"tibber\":\"never\"}}"), 0);
	assert_int_equal(fetch("tibber", HOME, today, in_two_days, &res, &err), 0);
	assert_int_equal(res.slots.n, 96);
	assert_string_equal(res.slots.unit, "EUR/kWh");
	for(i = 0; i < res.slots.n; i++)
		assert_int_equal(res.slots.v[i].end - res.slots.v[i].start, 900);
	assert_int_equal(slot_list_contiguous_end(&res.slots), rtime_day_add(RTIME_CET, today, 1));
	assert_int_equal(res.upstream_calls, 1);
	provider_result_free(&res);

	assert_int_equal(fake_config("{\"publish_at\":{\"tibber\":\"00:00\"}}"), 0);
	assert_int_equal(fetch("tibber", HOME, today, in_two_days, &res, &err), 0);
	assert_int_equal(res.slots.n, 192);
	assert_int_equal(slot_list_contiguous_end(&res.slots), in_two_days);
	assert_int_equal(fake_calls("tibber_graphql"), 2);
	provider_result_free(&res);
}

static void test_tibber_starts_without_milliseconds(void **state)
{
	int64_t today = rtime_day_start(RTIME_CET, rtime_now());
	struct provider_result res;
	struct rp_err err;

	assert_int_equal(fake_config("{\"tibber_startsat_ms\":false}"), 0);
	assert_int_equal(fetch("tibber", HOME, today, rtime_day_add(RTIME_CET, today, 1), &res, &err), 0);
	assert_int_equal(res.slots.n, 96);
	provider_result_free(&res);
}

static void test_tibber_wrong_token_is_auth_error(void **state)
{
	struct provider_result res;
	struct rp_err err;

	assert_int_equal(load_config("not-the-token"), 0);
	assert_int_equal(
	        fetch("tibber", HOME, T("2026-11-21T00:00:00Z"), T("2026-11-22T00:00:00Z"), &res, &err),
	        RP_EAUTH);
	assert_non_null(strstr(err.msg, "RATEPOOL_TIBBER_TOKEN"));
	/* no refresh exists for a Tibber token: one call, no retry */
	assert_int_equal(fake_calls("tibber_graphql"), 1);
	provider_result_free(&res);
}

static void test_tibber_unknown_home_is_not_found(void **state)
{
	struct provider_result res;
	struct rp_err err;

	assert_int_equal(fetch("tibber", "00000000-0000-0000-0000-000000000000", T("2026-11-21T00:00:00Z"),
	                       T("2026-11-22T00:00:00Z"), &res, &err),
	                 RP_ENOTFOUND);
	assert_non_null(strstr(err.msg, "00000000-0000-0000-0000-000000000000"));
	provider_result_free(&res);
}

static void test_tibber_server_error_is_retried_and_counted(void **state)
{
	struct provider_result res;
	struct rp_err err;

	assert_int_equal(
	        fake_fault(
	                "{\"endpoint\":\"tibber_graphql\",\"kind\":\"status\",\"status\":503,\"times\":2}"),
	        0);
	assert_int_equal(
	        fetch("tibber", HOME, T("2026-11-21T00:00:00Z"), T("2026-11-22T00:00:00Z"), &res, &err), 0);
	assert_int_equal(res.upstream_calls, 3);
	assert_int_equal(fake_calls("tibber_graphql"), 3);
	provider_result_free(&res);
}

static void test_tibber_html_and_garbage_are_refused(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int rc;

	assert_int_equal(fake_fault("{\"endpoint\":\"tibber_graphql\",\"kind\":\"html\"}"), 0);
	assert_int_equal(
	        fetch("tibber", HOME, T("2026-11-21T00:00:00Z"), T("2026-11-22T00:00:00Z"), &res, &err),
	        RP_EFORBIDDEN);
	assert_string_equal(err.msg, "upstream answered with an HTML page (CDN block?)");
	provider_result_free(&res);

	assert_int_equal(fake_fault("{\"endpoint\":\"tibber_graphql\",\"kind\":\"garbage\"}"), 0);
	rc = fetch("tibber", HOME, T("2026-11-21T00:00:00Z"), T("2026-11-22T00:00:00Z"), &res, &err);
	if(rc != RP_EGARBAGE && rc != RP_EPARSE)
		fail_msg("garbage gave %s (%s)", rp_code_name(rc), err.msg);
	assert_int_equal(res.slots.n, 0);
	provider_result_free(&res);

	assert_int_equal(fake_fault("{\"endpoint\":\"tibber_graphql\",\"kind\":\"graphql_error\",\"code\":"
	                            "\"UNAUTHENTICATED\"}"),
	                 0);
	assert_int_equal(
	        fetch("tibber", HOME, T("2026-11-21T00:00:00Z"), T("2026-11-22T00:00:00Z"), &res, &err),
	        RP_EAUTH);
	provider_result_free(&res);
}

#define S_(f) cmocka_unit_test_setup(f, scripted_setup)
#define F_(f) cmocka_unit_test_setup(f, fake_setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_registry_lists_each_provider_once),
	        cmocka_unit_test(test_every_provider_has_what_the_scheduler_needs),
	        cmocka_unit_test(test_retry_policy_comes_from_the_config),
	        S_(test_fetch_sorts_and_fills_defaults),
	        S_(test_fetch_refuses_values_beyond_max_abs),
	        S_(test_fetch_refuses_nan_values),
	        S_(test_fetch_refuses_overlapping_slots),
	        S_(test_failed_fetch_keeps_no_slots_but_counts_calls),
	        S_(test_fetch_refuses_bad_ids_and_ranges_without_calling),
	        F_(test_clock_is_the_test_clock),
	        F_(test_octopus_pages_through_a_long_range),
	        F_(test_octopus_tomorrow_appears_only_after_publication),
	        F_(test_octopus_server_error_is_retried),
	        F_(test_octopus_unknown_tariff_is_not_found),
	        F_(test_octopus_html_page_is_forbidden),
	        F_(test_octopus_garbage_is_refused),
	        F_(test_octopus_account_alias_is_answered_from_tariff_rates),
	        F_(test_octopus_account_switch_mid_day_joins_two_tariffs),
	        F_(test_octopus_account_with_wrong_key_is_auth_error),
	        F_(test_tibber_tomorrow_is_empty_until_published),
	        F_(test_tibber_starts_without_milliseconds),
	        F_(test_tibber_wrong_token_is_auth_error),
	        F_(test_tibber_unknown_home_is_not_found),
	        F_(test_tibber_server_error_is_retried_and_counted),
	        F_(test_tibber_html_and_garbage_are_refused),
	};
	/* before anything reads the clock, and inherited by the fake */
	setenv("RATEPOOL_TEST_CLOCK", TEST_CLOCK, 1);
	log_open(LOG_LEVEL_ERROR, NULL);
	/* one group, so that tests/run_unit.sh counts every test; the fake is
	 * started for all of them (the first ones do not use it) */
	return cmocka_run_group_tests(tests, fake_group_setup, fake_group_teardown);
}
