/* test_health.c - counters, success rate, degraded reasons, scrubbing. */
#include "ratepool/error.h"
#include "ratepool/health.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"

#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define T0 1795000000 /* 2026-11-18T11:06:40Z */

struct fixture {
	struct health h;
	struct publish_buf out;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	assert_int_equal(health_init(&f.h, T0, "1.2.3"), 0);
	publish_buf_init(&f.out, 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	health_cleanup(&f->h);
	publish_buf_free(&f->out);
	log_close(); /* forgets the secrets a test registered */
	return 0;
}

/* Builds the JSON and parses it; the caller decrefs. */
static json_t *build(struct fixture *f, int64_t now, const struct health_check *check, bool *healthy)
{
	json_error_t jerr;
	json_t *j;

	assert_int_equal(health_json(&f->h, now, check, &f->out, healthy), 0);
	j = json_loadb(f->out.p, f->out.len, JSON_REJECT_DUPLICATES, &jerr);
	if(!j)
		fail_msg("health is not JSON (%s): %s", jerr.text, f->out.p);
	return j;
}

static json_t *provider(json_t *j, const char *id)
{
	json_t *p = json_object_get(json_object_get(j, "providers"), id);
	assert_non_null(p);
	return p;
}

static const char *issue(json_t *j, size_t i)
{
	return json_string_value(json_array_get(json_object_get(j, "issues"), i));
}

static size_t n_issues(json_t *j)
{
	return json_array_size(json_object_get(j, "issues"));
}

static void test_fresh_health_lists_known_providers(void **state)
{
	static const char *ids[] = {"octopus", "tibber", "watttime", "aemo", "energycharts"};
	struct fixture *f = *state;
	bool healthy = false;
	json_t *j, *p;
	const char *k;
	json_t *v;
	size_t i = 0;

	health_set_broker(&f->h, true);
	j = build(f, T0 + 90, NULL, &healthy);
	assert_true(healthy);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "healthy");
	assert_int_equal(json_integer_value(json_object_get(j, "uptime_s")), 90);
	assert_string_equal(json_string_value(json_object_get(j, "version")), "1.2.3");
	assert_true(json_is_true(json_object_get(j, "broker_connected")));
	assert_int_equal(json_integer_value(json_object_get(j, "series_tracked")), 0);
	assert_int_equal(n_issues(j), 0);
	assert_true(json_is_array(json_object_get(j, "issues")));
	/* The five providers, in order (jansson keeps insertion order). */
	json_object_foreach(json_object_get(j, "providers"), k, v)
	{
		assert_true(i < 5);
		assert_string_equal(k, ids[i]);
		i++;
	}
	assert_int_equal(i, 5);
	p = provider(j, "octopus");
	assert_int_equal(json_integer_value(json_object_get(p, "consecutive_failures")), 0);
	assert_int_equal(json_integer_value(json_object_get(p, "total_fetches")), 0);
	assert_int_equal(json_integer_value(json_object_get(p, "failed_fetches")), 0);
	/* No fetches: no rate to claim. */
	assert_true(json_is_null(json_object_get(p, "success_rate")));
	assert_true(json_is_null(json_object_get(p, "last_success")));
	assert_true(json_is_null(json_object_get(p, "last_error")));
	assert_true(json_is_null(json_object_get(p, "last_token_refresh")));
	assert_int_equal(json_integer_value(json_object_get(p, "token_refresh_count")), 0);
	json_decref(j);
}

static void test_fetch_counters_and_success_rate(void **state)
{
	struct fixture *f = *state;
	struct health_provider rec;
	json_t *j, *p;

	health_set_broker(&f->h, true);
	assert_int_equal(health_fetch_done(&f->h, "octopus", T0 + 10, 0, NULL), 0);
	assert_int_equal(health_fetch_done(&f->h, "octopus", T0 + 20, RP_ETIMEOUT, "upstream timed out"), 0);
	assert_int_equal(health_fetch_done(&f->h, "octopus", T0 + 30, 0, NULL), 0);
	assert_int_equal(health_fetch_done(&f->h, "tibber", T0 + 40, RP_ESERVER, NULL), 0);
	assert_int_equal(health_fetch_done(&f->h, "tibber", T0 + 50, 0, NULL), 0);
	assert_int_equal(health_fetch_done(&f->h, "tibber", T0 + 60, 0, NULL), 0);

	assert_int_equal(health_provider_get(&f->h, "octopus", &rec), 0);
	assert_int_equal(rec.total_fetches, 3);
	assert_int_equal(rec.failed_fetches, 1);
	assert_int_equal(rec.consecutive_failures, 0);
	assert_int_equal(rec.last_success, T0 + 30);
	assert_int_equal(health_provider_get(&f->h, "nope", &rec), RP_ENOENT);

	j = build(f, T0 + 100, NULL, NULL);
	p = provider(j, "octopus");
	assert_true(json_real_value(json_object_get(p, "success_rate")) == 0.6667);
	assert_string_equal(json_string_value(json_object_get(p, "last_success")), "2026-11-18T11:07:10Z");
	/* The last error is kept for diagnosis after the recovery. */
	assert_string_equal(json_string_value(json_object_get(p, "last_error")), "upstream timed out");
	assert_string_equal(json_string_value(json_object_get(p, "last_error_code")), "upstream_timeout");
	assert_string_equal(json_string_value(json_object_get(p, "last_error_at")), "2026-11-18T11:07:00Z");
	p = provider(j, "tibber");
	assert_true(json_real_value(json_object_get(p, "success_rate")) == 0.6667);
	/* No message given: the code's text. */
	assert_string_equal(json_string_value(json_object_get(p, "last_error")), "upstream server error");
	/* All successes: 1 (jansson reads "1" as an integer). */
	assert_int_equal(health_fetch_done(&f->h, "aemo", T0, 0, NULL), 0);
	json_decref(j);
	j = build(f, T0 + 100, NULL, NULL);
	assert_true(json_number_value(json_object_get(provider(j, "aemo"), "success_rate")) == 1.0);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "healthy");
	json_decref(j);
}

static void test_consecutive_failures_degrade_at_threshold(void **state)
{
	struct fixture *f = *state;
	struct health_check check = {.failure_threshold = 4};
	bool healthy = true;
	json_t *j;
	int i;

	health_set_broker(&f->h, true);
	for(i = 0; i < 3; i++)
		health_fetch_done(&f->h, "octopus", T0 + i, RP_ETIMEOUT, "upstream timed out");
	j = build(f, T0 + 10, &check, &healthy);
	assert_true(healthy);
	assert_int_equal(json_integer_value(json_object_get(provider(j, "octopus"), "consecutive_failures")),
	                 3);
	json_decref(j);

	health_fetch_done(&f->h, "octopus", T0 + 4, RP_ETIMEOUT, "upstream timed out");
	j = build(f, T0 + 10, &check, &healthy);
	assert_false(healthy);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "degraded");
	assert_int_equal(n_issues(j), 1);
	assert_string_equal(issue(j, 0), "octopus: 4 consecutive failures, last: upstream timed out");
	json_decref(j);

	/* Default threshold is 3 (check NULL). */
	j = build(f, T0 + 10, NULL, &healthy);
	assert_false(healthy);
	json_decref(j);

	/* One success ends it. */
	health_fetch_done(&f->h, "octopus", T0 + 20, 0, NULL);
	j = build(f, T0 + 30, &check, &healthy);
	assert_true(healthy);
	assert_int_equal(n_issues(j), 0);
	json_decref(j);
}

static void test_missing_current_slot_degrades(void **state)
{
	struct fixture *f = *state;
	const char *names[20];
	char store[20][40];
	struct health_check check = {0};
	bool healthy = true;
	json_t *j;
	size_t i;

	health_set_broker(&f->h, true);
	names[0] = "octopus/E-1R-AGILE-24-10-01-C";
	names[1] = "energycharts/DE-LU";
	check.missing_now = names;
	check.n_missing = 2;
	j = build(f, T0, &check, &healthy);
	assert_false(healthy);
	assert_int_equal(n_issues(j), 2);
	assert_string_equal(issue(j, 0), "octopus/E-1R-AGILE-24-10-01-C: no price for the current slot");
	assert_string_equal(issue(j, 1), "energycharts/DE-LU: no price for the current slot");
	json_decref(j);

	/* Many: bounded list plus a count; hostile text stays valid JSON. */
	for(i = 0; i < 20; i++) {
		snprintf(store[i], sizeof(store[i]), "x/\"s%zu\\\n", i);
		names[i] = store[i];
	}
	check.n_missing = 20;
	j = build(f, T0, &check, &healthy);
	assert_int_equal(n_issues(j), HEALTH_ISSUES_SERIES_MAX + 1);
	assert_string_equal(issue(j, 0), "x/\"s0\\\n: no price for the current slot");
	assert_string_equal(issue(j, HEALTH_ISSUES_SERIES_MAX),
	                    "4 more series without a price for the current slot");
	json_decref(j);

	/* An empty list is healthy. */
	check.n_missing = 0;
	j = build(f, T0, &check, &healthy);
	assert_true(healthy);
	json_decref(j);
}

static void test_broker_unreachable_degrades(void **state)
{
	struct fixture *f = *state;
	bool healthy = true;
	json_t *j;

	/* Not connected from the start until told otherwise. */
	j = build(f, T0, NULL, &healthy);
	assert_false(healthy);
	assert_true(json_is_false(json_object_get(j, "broker_connected")));
	assert_int_equal(n_issues(j), 1);
	assert_string_equal(issue(j, 0), "MQTT broker unreachable");
	json_decref(j);
	health_set_broker(&f->h, true);
	j = build(f, T0, NULL, &healthy);
	assert_true(healthy);
	json_decref(j);
	health_set_broker(&f->h, false);
	j = build(f, T0, NULL, &healthy);
	assert_false(healthy);
	json_decref(j);
}

static void test_all_reasons_listed_together(void **state)
{
	struct fixture *f = *state;
	const char *names[] = {"aemo/NSW1"};
	struct health_check check = {.failure_threshold = 1, .missing_now = names, .n_missing = 1};
	bool healthy = true;
	json_t *j;

	health_fetch_done(&f->h, "aemo", T0, RP_ENET, "connection refused");
	health_fetch_done(&f->h, "watttime", T0, RP_EAUTH, "login failed (401)");
	j = build(f, T0, &check, &healthy);
	assert_false(healthy);
	assert_int_equal(n_issues(j), 4);
	assert_string_equal(issue(j, 0), "watttime: 1 consecutive failures, last: login failed (401)");
	assert_string_equal(issue(j, 1), "aemo: 1 consecutive failures, last: connection refused");
	assert_string_equal(issue(j, 2), "aemo/NSW1: no price for the current slot");
	assert_string_equal(issue(j, 3), "MQTT broker unreachable");
	json_decref(j);
}

static void test_secret_is_scrubbed_from_last_error(void **state)
{
	struct fixture *f = *state;
	struct health_provider rec;
	json_t *j;

	assert_int_equal(log_add_secret("sk_live_0123456789abcdef"), 0);
	health_fetch_done(
	        &f->h, "octopus", T0, RP_EAUTH,
	        "401 for key sk_live_0123456789abcdef: {\"detail\":\"bad key sk_live_0123456789abcdef\"}");
	/* Kept scrubbed: the secret is never stored. */
	assert_int_equal(health_provider_get(&f->h, "octopus", &rec), 0);
	assert_string_equal(rec.last_error, "401 for key ***: {\"detail\":\"bad key ***\"}");
	health_fetch_done(&f->h, "octopus", T0 + 1, RP_EAUTH, "again sk_live_0123456789abcdef");
	health_fetch_done(&f->h, "octopus", T0 + 2, RP_EAUTH, "token=tibber-secret-token-xyz");
	/* ...and a secret registered after the failure is scrubbed on output. */
	assert_int_equal(log_add_secret("tibber-secret-token-xyz"), 0);
	j = build(f, T0 + 5, NULL, NULL);
	assert_null(strstr(f->out.p, "sk_live_0123456789abcdef"));
	assert_null(strstr(f->out.p, "tibber-secret-token-xyz"));
	assert_string_equal(json_string_value(json_object_get(provider(j, "octopus"), "last_error")),
	                    "token=***");
	assert_string_equal(issue(j, 0), "octopus: 3 consecutive failures, last: token=***");
	json_decref(j);

	health_fetch_done(&f->h, "octopus", T0 + 3, RP_EAUTH, "401 for key sk_live_0123456789abcdef");
	j = build(f, T0 + 5, NULL, NULL);
	assert_null(strstr(f->out.p, "sk_live_0123456789abcdef"));
	assert_string_equal(json_string_value(json_object_get(provider(j, "octopus"), "last_error")),
	                    "401 for key ***");
	json_decref(j);
}

static void test_token_refreshes_are_counted(void **state)
{
	struct fixture *f = *state;
	json_t *j, *p;

	assert_int_equal(health_token_refreshed(&f->h, "octopus", T0 + 100), 0);
	assert_int_equal(health_token_refreshed(&f->h, "octopus", T0 + 1900), 0);
	assert_int_equal(health_token_refreshed(&f->h, "watttime", T0 + 50), 0);
	j = build(f, T0 + 2000, NULL, NULL);
	p = provider(j, "octopus");
	assert_int_equal(json_integer_value(json_object_get(p, "token_refresh_count")), 2);
	assert_string_equal(json_string_value(json_object_get(p, "last_token_refresh")),
	                    "2026-11-18T11:38:20Z");
	assert_int_equal(json_integer_value(json_object_get(provider(j, "watttime"), "token_refresh_count")),
	                 1);
	/* A refresh is not a fetch. */
	assert_int_equal(json_integer_value(json_object_get(p, "total_fetches")), 0);
	json_decref(j);
}

static void test_cache_figures_and_series_tracked(void **state)
{
	struct fixture *f = *state;
	json_t *j, *c;

	health_count(&f->h, HEALTH_REQUESTS, 10);
	health_count(&f->h, HEALTH_HITS, 7);
	health_count(&f->h, HEALTH_MISSES, 3);
	health_count(&f->h, HEALTH_STALE_SERVED, 1);
	health_count(&f->h, HEALTH_UPSTREAM_CALLS, 4);
	health_count(&f->h, HEALTH_COALESCED, 2);
	health_count(&f->h, HEALTH_COUNTER_COUNT, 99); /* ignored */
	health_set_series_tracked(&f->h, 3);
	assert_int_equal(health_counter_get(&f->h, HEALTH_HITS), 7);
	j = build(f, T0, NULL, NULL);
	c = json_object_get(j, "cache");
	assert_int_equal(json_object_size(c), 6);
	assert_int_equal(json_integer_value(json_object_get(c, "requests")), 10);
	assert_int_equal(json_integer_value(json_object_get(c, "hits")), 7);
	assert_int_equal(json_integer_value(json_object_get(c, "misses")), 3);
	assert_int_equal(json_integer_value(json_object_get(c, "stale_served")), 1);
	assert_int_equal(json_integer_value(json_object_get(c, "upstream_calls")), 4);
	assert_int_equal(json_integer_value(json_object_get(c, "coalesced")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "series_tracked")), 3);
	json_decref(j);
}

static void test_unknown_providers_added_and_bounded(void **state)
{
	struct fixture *f = *state;
	char id[16];
	json_t *j;
	int i;

	assert_int_equal(health_fetch_done(&f->h, "amber", T0, 0, NULL), 0);
	assert_int_equal(health_fetch_done(&f->h, "a/b", T0, 0, NULL), RP_EINVAL);
	assert_int_equal(health_fetch_done(&f->h, "", T0, 0, NULL), RP_EINVAL);
	assert_int_equal(health_fetch_done(&f->h, NULL, T0, 0, NULL), RP_EINVAL);
	assert_int_equal(health_fetch_done(&f->h, "sixteen-chars-xx", T0, 0, NULL), RP_EINVAL);
	assert_int_equal(health_token_refreshed(&f->h, "\"x", T0), RP_EINVAL);
	for(i = 0; i < HEALTH_PROVIDERS_MAX - 6; i++) {
		snprintf(id, sizeof(id), "p%d", i);
		assert_int_equal(health_fetch_done(&f->h, id, T0, 0, NULL), 0);
	}
	assert_int_equal(health_fetch_done(&f->h, "onetoomany", T0, 0, NULL), RP_EBUSY);
	assert_int_equal(health_fetch_done(&f->h, "amber", T0, 0, NULL), 0); /* known still fine */
	j = build(f, T0, NULL, NULL);
	assert_int_equal(json_object_size(json_object_get(j, "providers")), HEALTH_PROVIDERS_MAX);
	assert_int_equal(json_integer_value(json_object_get(provider(j, "amber"), "total_fetches")), 2);
	json_decref(j);
}

static void test_output_cap_and_long_errors(void **state)
{
	struct fixture *f = *state;
	struct publish_buf small;
	char longmsg[1000];
	bool healthy = true;
	json_t *j;

	memset(longmsg, 'e', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	memcpy(longmsg + 250, "\xe2\x82\xac\xe2\x82\xac", 6); /* cut mid-character by the bound */
	health_fetch_done(&f->h, "octopus", T0, RP_EPARSE, longmsg);
	j = build(f, T0, NULL, NULL);
	/* Bounded, and ends on a whole character: 250 'e' and one euro sign. */
	assert_int_equal(strlen(json_string_value(json_object_get(provider(j, "octopus"), "last_error"))),
	                 253);
	assert_string_equal(json_string_value(json_object_get(provider(j, "octopus"), "last_error")) + 250,
	                    "\xe2\x82\xac");
	json_decref(j);
	publish_buf_init(&small, 200);
	assert_int_equal(health_json(&f->h, T0, NULL, &small, &healthy), RP_ETOOLARGE);
	publish_buf_free(&small);
}

struct hammer {
	struct health *h;
	int id;
};

static void *hammer_thread(void *arg)
{
	struct hammer *hm = arg;
	struct publish_buf b;
	int i;

	publish_buf_init(&b, 0);
	for(i = 0; i < 20000; i++) {
		health_count(hm->h, HEALTH_REQUESTS, 1);
		health_fetch_done(hm->h, hm->id % 2 ? "octopus" : "tibber", T0 + i, i % 4 ? 0 : RP_ESERVER,
		                  "server said no");
		if(i % 1000 == 0)
			health_json(hm->h, T0 + i, NULL, &b, NULL);
	}
	publish_buf_free(&b);
	return NULL;
}

static void test_counters_are_thread_safe(void **state)
{
	struct fixture *f = *state;
	struct hammer hm[4];
	pthread_t th[4];
	struct health_provider o, t;
	int i;

	for(i = 0; i < 4; i++) {
		hm[i].h = &f->h;
		hm[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, hammer_thread, &hm[i]), 0);
	}
	for(i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(health_counter_get(&f->h, HEALTH_REQUESTS), 80000);
	health_provider_get(&f->h, "octopus", &o);
	health_provider_get(&f->h, "tibber", &t);
	assert_int_equal(o.total_fetches, 40000);
	assert_int_equal(t.total_fetches, 40000);
	assert_int_equal(o.failed_fetches, 10000);
	assert_int_equal(t.failed_fetches, 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_fresh_health_lists_known_providers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_fetch_counters_and_success_rate, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_consecutive_failures_degrade_at_threshold, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_missing_current_slot_degrades, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_broker_unreachable_degrades, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_all_reasons_listed_together, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_secret_is_scrubbed_from_last_error, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_token_refreshes_are_counted, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cache_figures_and_series_tracked, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_providers_added_and_bounded, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_output_cap_and_long_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_counters_are_thread_safe, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
