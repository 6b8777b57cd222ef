/* test_auth.c - tokens: JWT expiry, margin refresh, restart, error-driven
 * refresh-and-retry-once, single refresh under concurrency, no secret in
 * logs. Upstream calls are counted by the fake upstream.
 *
 * The store is replaced by an in-memory stub (the store_token_* seam), so
 * that a "restart" (auth_free + auth_new over the same store) and what
 * was written can be checked exactly. */
#include "ratepool/auth.h"
#include "ratepool/config.h"
#include "ratepool/error.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"
#include "ratepool/sha256.h"
#include "ratepool/store.h"
#include "support/fake.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define API_KEY     "sk_test_fake"
#define WT_USER     "ratepool"
#define WT_PASSWORD "fake-password"

/* --- the store seam --------------------------------------------------------- */

#define STUB_SLOTS 8

struct store {
	pthread_mutex_t mu;
	char keys[STUB_SLOTS][80];
	struct store_token toks[STUB_SLOTS];
	int n;
	int puts;
};

static struct store stub = {.mu = PTHREAD_MUTEX_INITIALIZER};

int store_token_get(struct store *s, const char *key, struct store_token *out)
{
	int i, rc = RP_ENOENT;

	pthread_mutex_lock(&s->mu);
	for(i = 0; i < s->n; i++)
		if(!strcmp(s->keys[i], key)) {
			*out = s->toks[i];
			rc = 0;
		}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int store_token_put(struct store *s, const char *key, const struct store_token *tok)
{
	int i;

	pthread_mutex_lock(&s->mu);
	s->puts++;
	for(i = 0; i < s->n; i++)
		if(!strcmp(s->keys[i], key))
			break;
	if(i == s->n && s->n < STUB_SLOTS) {
		snprintf(s->keys[i], sizeof(s->keys[i]), "%s", key);
		s->n++;
	}
	if(i < STUB_SLOTS)
		s->toks[i] = *tok;
	pthread_mutex_unlock(&s->mu);
	return i < STUB_SLOTS ? 0 : RP_EFULL;
}

int store_token_delete(struct store *s, const char *key)
{
	(void)s;
	(void)key;
	return 0;
}

static void stub_clear(void)
{
	pthread_mutex_lock(&stub.mu);
	stub.n = 0;
	stub.puts = 0;
	memset(stub.keys, 0, sizeof(stub.keys));
	memset(stub.toks, 0, sizeof(stub.toks));
	pthread_mutex_unlock(&stub.mu);
}

/* --- fixtures ------------------------------------------------------------- */

static struct config cfg;
static char octopus_url[64];
static char watttime_url[64];
static char api_key[64];
static char wt_user[32];
static char wt_password[64];

static void cfg_fill(int margin_s)
{
	memset(&cfg, 0, sizeof(cfg));
	snprintf(octopus_url, sizeof(octopus_url), "%s", fake_url());
	snprintf(watttime_url, sizeof(watttime_url), "%s/", fake_url()); /* a trailing slash is fine */
	snprintf(api_key, sizeof(api_key), "%s", API_KEY);
	snprintf(wt_user, sizeof(wt_user), "%s", WT_USER);
	snprintf(wt_password, sizeof(wt_password), "%s", WT_PASSWORD);
	cfg.octopus_url = octopus_url;
	cfg.watttime_url = watttime_url;
	cfg.octopus_api_key = api_key;
	cfg.watttime_username = wt_user;
	cfg.watttime_password = wt_password;
	cfg.token_refresh_margin_s = margin_s;
	cfg.http_connect_timeout_ms = 2000;
	cfg.http_timeout_ms = 5000;
	cfg.retry_max_attempts = 2;
	cfg.retry_base_ms = 1;
	cfg.retry_cap_ms = 5;
}

static const struct http_retry_policy fast_policy = {
        .max_attempts = 2,
        .base_ms = 1,
        .cap_ms = 5,
        .max_retry_after_s = 2,
};

static int group_setup(void **state)
{
	(void)state;
	log_open(LOG_LEVEL_ERROR, NULL);
	if(http_global_init())
		return -1;
	return fake_start();
}

static int group_teardown(void **state)
{
	(void)state;
	fake_stop();
	http_global_cleanup();
	return 0;
}

static int test_setup(void **state)
{
	(void)state;
	stub_clear();
	cfg_fill(300);
	return fake_reset();
}

/* How far the fake's clock may be from ours: a few seconds, more under an
 * accelerated RATEPOOL_TEST_CLOCK (each process starts its own). */
static int64_t clock_slack(void)
{
	return 10 + (int64_t)(5.0 / rtime_real_seconds(1.0));
}

static struct auth *new_auth(struct store *s)
{
	struct auth *a = NULL;
	assert_int_equal(auth_new(&a, s, &cfg), 0);
	assert_non_null(a);
	return a;
}

static unsigned long refreshes(struct auth *a, enum auth_kind kind)
{
	struct auth_stats st;
	auth_stats_get(a, kind, &st);
	return st.refresh_count;
}

/* A WattTime data request and a Kraken query that needs the token. */
static char forecast_url[160];
static char graphql_url[160];

static struct http_request forecast_request(void)
{
	struct http_request req = {0};
	snprintf(forecast_url, sizeof(forecast_url), "%s/v3/forecast?region=CAISO_NORTH&signal_type=co2_moer",
	         fake_url());
	req.url = forecast_url;
	req.timeout_ms = 5000;
	return req;
}

static struct http_request viewer_request(void)
{
	struct http_request req = {0};
	snprintf(graphql_url, sizeof(graphql_url), "%s/v1/graphql/", fake_url());
	req.method = "POST";
	req.url = graphql_url;
	req.body = "{\"query\":\"query { viewer { id email } }\"}";
	req.content_type = "application/json";
	req.timeout_ms = 5000;
	return req;
}

/* --- pure parts --------------------------------------------------------------- */

static void test_credential_key_is_sha256_of_provider_and_credential(void **state)
{
	char key[65];
	char want[SHA256_HEX_SIZE];
	(void)state;

	auth_credential_key("kraken", "sk_live_secret", key);
	sha256_hex("kraken:sk_live_secret", strlen("kraken:sk_live_secret"), want);
	assert_string_equal(key, want);
	assert_int_equal(strlen(key), 64);
	assert_null(strstr(key, "secret"));
	auth_credential_key("kraken", "sk_live_other", want);
	assert_string_not_equal(key, want);
}

static void test_jwt_exp_from_valid_token(void **state)
{
	/* payload {"sub":"x","exp":1724158972,"iat":1724155372} */
	const char *jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9."
	                  "eyJzdWIiOiJ4IiwiZXhwIjoxNzI0MTU4OTcyLCJpYXQiOjE3MjQxNTUzNzJ9.c2ln";
	/* the example token of shared/api/02: iss has '/' (base64url '_'/'-') */
	const char *doc =
	        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiJ9."
	        "eyJzdWIiOiJrcmFrZW58YWNjb3VudC11c2VyOjMyMzU0NDciLCJndHkiOiJBUEktS0VZIiwiZW1haWwiOiJkYW5A"
	        "YXJjaGVyLm9yZyIsInRva2VuVXNlIjoiYWNjZXNzIiwiaXNzIjoiaHR0cHM6Ly9hcGkub2N0b3B1cy5lbmVyZ3kv"
	        "djEvZ3JhcGhxbC8iLCJpYXQiOjE3MjQxNTUzNzIsImV4cCI6MTcyNDE1ODk3Miwib3JpZ0lhdCI6MTcyNDE1NTM3Mn0."
	        "c2lnbmF0dXJl";
	int64_t exp = 0;
	(void)state;

	assert_int_equal(auth_jwt_exp(jwt, &exp), 0);
	assert_int_equal(exp, 1724158972);
	exp = 0;
	assert_int_equal(auth_jwt_exp(doc, &exp), 0);
	assert_int_equal(exp, 1724158972);
}

static void test_jwt_exp_bad_base64_is_refused(void **state)
{
	int64_t exp = 42;
	(void)state;

	assert_int_equal(auth_jwt_exp("eyJ0eXAiOiJKV1QifQ.eyJleHAiOjE3MjQxNTg5NzJ9!!.c2ln", &exp), RP_EPARSE);
	assert_int_equal(auth_jwt_exp("eyJ0eXAiOiJKV1QifQ.e.c2ln", &exp), RP_EPARSE); /* 1 char: impossible */
	assert_int_equal(auth_jwt_exp("eyJ0eXAiOiJKV1QifQ.bm90IGpzb24.c2ln", &exp),
	                 RP_EPARSE); /* "not json" */
	assert_int_equal(exp, 42);
}

static void test_jwt_exp_missing_or_not_a_number_is_refused(void **state)
{
	int64_t exp = 42;
	(void)state;

	/* {"sub":"x"} */
	assert_int_equal(auth_jwt_exp("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", &exp), RP_EPARSE);
	/* {"exp":"1724158972"} */
	assert_int_equal(auth_jwt_exp("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOiIxNzI0MTU4OTcyIn0.c2ln", &exp),
	                 RP_EPARSE);
	/* [1] */
	assert_int_equal(auth_jwt_exp("eyJhbGciOiJIUzI1NiJ9.WzFd.c2ln", &exp), RP_EPARSE);
	/* {"exp":0.5}: positive, but no instant after the epoch (found by fuzz_jwt) */
	assert_int_equal(auth_jwt_exp("ey.eyJleHAiOjAuNX0.n", &exp), RP_EPARSE);
	assert_int_equal(exp, 42);
}

static void test_jwt_exp_needs_three_parts(void **state)
{
	int64_t exp = 42;
	(void)state;

	assert_int_equal(auth_jwt_exp("eyJleHAiOjE3MjQxNTg5NzJ9", &exp), RP_EPARSE);
	assert_int_equal(auth_jwt_exp("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MjQxNTg5NzJ9", &exp), RP_EPARSE);
	assert_int_equal(auth_jwt_exp("a.eyJleHAiOjE3MjQxNTg5NzJ9.c.d", &exp), RP_EPARSE);
	assert_int_equal(auth_jwt_exp(".eyJleHAiOjE3MjQxNTg5NzJ9.c2ln", &exp), RP_EPARSE);
	assert_int_equal(auth_jwt_exp("", &exp), RP_EPARSE);
	assert_int_equal(auth_jwt_exp(NULL, &exp), RP_EPARSE);
	assert_int_equal(exp, 42);
	/* {"exp":1724158972} with the three parts: fine */
	assert_int_equal(auth_jwt_exp("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MjQxNTg5NzJ9.", &exp), 0);
	assert_int_equal(exp, 1724158972);
}

static void test_no_credential_configured_is_invalid(void **state)
{
	struct auth *a;
	char tok[AUTH_TOKEN_MAX];
	struct rp_err err;
	(void)state;

	cfg.octopus_api_key = NULL;
	cfg.watttime_password = NULL;
	a = new_auth(NULL);
	rp_err_clear(&err);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, tok, sizeof(tok), &err), RP_EINVAL);
	assert_int_equal(auth_token(a, AUTH_WATTTIME, tok, sizeof(tok), &err), RP_EINVAL);
	auth_free(a);
	assert_int_equal(fake_calls("kraken_graphql"), 0);
	assert_int_equal(fake_calls("watttime_login"), 0);
}

/* --- against the fake ---------------------------------------------------------- */

static void test_watttime_login_once_then_token_reused(void **state)
{
	struct auth *a = new_auth(NULL);
	char t1[AUTH_TOKEN_MAX], t2[AUTH_TOKEN_MAX];
	struct auth_stats st;
	int64_t now = rtime_now();
	(void)state;

	assert_int_equal(auth_token(a, AUTH_WATTTIME, t1, sizeof(t1), NULL), 0);
	assert_int_equal(auth_token(a, AUTH_WATTTIME, t2, sizeof(t2), NULL), 0);
	assert_string_equal(t1, t2);
	assert_int_equal(fake_calls("watttime_login"), 1);
	auth_stats_get(a, AUTH_WATTTIME, &st);
	assert_int_equal(st.refresh_count, 1);
	assert_true(st.last_refresh >= now);
	/* 30 minutes */
	assert_true(st.expires_at >= now + 1800 - clock_slack() && st.expires_at <= rtime_now() + 1800);
	auth_free(a);
}

static void test_kraken_token_expiry_comes_from_jwt_exp(void **state)
{
	struct auth *a = new_auth(NULL);
	char tok[AUTH_TOKEN_MAX];
	struct auth_stats st;
	int64_t exp = 0;
	int64_t before = rtime_now();
	(void)state;

	assert_int_equal(fake_config("{\"token_lifetime_s\": 2000}"), 0);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, tok, sizeof(tok), NULL), 0);
	assert_int_equal(auth_jwt_exp(tok, &exp), 0);
	auth_stats_get(a, AUTH_KRAKEN, &st);
	assert_int_equal(st.expires_at, exp);
	assert_true(exp >= before + 2000 - clock_slack() && exp <= rtime_now() + 2000 + clock_slack());
	assert_int_equal(fake_calls("kraken_graphql"), 1);
	auth_free(a);
}

static void test_token_inside_margin_is_refreshed(void **state)
{
	struct auth *a;
	char tok[AUTH_TOKEN_MAX];
	(void)state;

	/* tokens live 60 s, the margin is 300 s: every call is inside it */
	assert_int_equal(fake_config("{\"token_lifetime_s\": 60}"), 0);
	a = new_auth(NULL);
	assert_int_equal(auth_token(a, AUTH_WATTTIME, tok, sizeof(tok), NULL), 0);
	assert_int_equal(refreshes(a, AUTH_WATTTIME), 1);
	assert_int_equal(auth_token(a, AUTH_WATTTIME, tok, sizeof(tok), NULL), 0);
	assert_int_equal(refreshes(a, AUTH_WATTTIME), 2);
	assert_int_equal(fake_calls("watttime_login"), 2);

	assert_int_equal(auth_token(a, AUTH_KRAKEN, tok, sizeof(tok), NULL), 0);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, tok, sizeof(tok), NULL), 0);
	assert_int_equal(refreshes(a, AUTH_KRAKEN), 2);
	assert_int_equal(fake_calls("kraken_graphql"), 2);
	auth_free(a);
}

static void test_token_outside_margin_is_not_refreshed(void **state)
{
	struct auth *a;
	char tok[AUTH_TOKEN_MAX];
	int i;
	(void)state;

	assert_int_equal(fake_config("{\"token_lifetime_s\": 600}"), 0);
	a = new_auth(NULL);
	for(i = 0; i < 5; i++) {
		assert_int_equal(auth_token(a, AUTH_KRAKEN, tok, sizeof(tok), NULL), 0);
		assert_int_equal(auth_token(a, AUTH_WATTTIME, tok, sizeof(tok), NULL), 0);
	}
	assert_int_equal(refreshes(a, AUTH_KRAKEN), 1);
	assert_int_equal(refreshes(a, AUTH_WATTTIME), 1);
	assert_int_equal(fake_calls("kraken_graphql"), 1);
	assert_int_equal(fake_calls("watttime_login"), 1);
	auth_free(a);
}

static void test_token_survives_restart_without_the_secret_stored(void **state)
{
	struct auth *a = new_auth(&stub);
	char k1[AUTH_TOKEN_MAX], k2[AUTH_TOKEN_MAX];
	char w1[AUTH_TOKEN_MAX], w2[AUTH_TOKEN_MAX];
	struct auth_stats st;
	int i;
	(void)state;

	assert_int_equal(auth_token(a, AUTH_KRAKEN, k1, sizeof(k1), NULL), 0);
	assert_int_equal(auth_token(a, AUTH_WATTTIME, w1, sizeof(w1), NULL), 0);
	auth_free(a);
	assert_int_equal(stub.n, 2);

	a = new_auth(&stub);
	auth_stats_get(a, AUTH_KRAKEN, &st);
	assert_true(st.expires_at > rtime_now());
	assert_int_equal(auth_token(a, AUTH_KRAKEN, k2, sizeof(k2), NULL), 0);
	assert_int_equal(auth_token(a, AUTH_WATTTIME, w2, sizeof(w2), NULL), 0);
	assert_string_equal(k1, k2);
	assert_string_equal(w1, w2);
	assert_int_equal(fake_calls("kraken_graphql"), 1);
	assert_int_equal(fake_calls("watttime_login"), 1);
	assert_int_equal(refreshes(a, AUTH_KRAKEN), 0);
	auth_free(a);

	/* what was written names the credential by hash and holds no secret */
	for(i = 0; i < stub.n; i++) {
		assert_int_equal(strlen(stub.keys[i]), 64);
		assert_null(strstr(stub.keys[i], API_KEY));
		assert_null(strstr(stub.toks[i].access, API_KEY));
		assert_null(strstr(stub.toks[i].refresh, API_KEY));
		assert_null(strstr(stub.toks[i].access, WT_PASSWORD));
		assert_null(strstr(stub.toks[i].refresh, WT_PASSWORD));
	}
}

static void test_changed_credential_does_not_reuse_stored_token(void **state)
{
	struct auth *a = new_auth(&stub);
	char tok[AUTH_TOKEN_MAX];
	struct rp_err err;
	(void)state;

	assert_int_equal(auth_token(a, AUTH_WATTTIME, tok, sizeof(tok), NULL), 0);
	auth_free(a);
	/* another password: the stored token belongs to the old one */
	snprintf(wt_password, sizeof(wt_password), "another-password");
	a = new_auth(&stub);
	rp_err_clear(&err);
	assert_int_equal(auth_token(a, AUTH_WATTTIME, tok, sizeof(tok), &err), RP_EAUTH);
	assert_int_equal(fake_calls("watttime_login"), 2);
	assert_null(strstr(err.msg, "another-password"));
	auth_free(a);
}

static void test_watttime_wrong_password_is_auth_error(void **state)
{
	struct auth *a;
	char tok[AUTH_TOKEN_MAX];
	struct rp_err err;
	(void)state;

	snprintf(wt_password, sizeof(wt_password), "wrong-password");
	a = new_auth(NULL);
	rp_err_clear(&err);
	assert_int_equal(auth_token(a, AUTH_WATTTIME, tok, sizeof(tok), &err), RP_EAUTH);
	assert_int_equal(err.code, RP_EAUTH);
	assert_string_equal(tok, "");
	assert_int_equal(refreshes(a, AUTH_WATTTIME), 0);
	/* a refusal is not retried by the transport */
	assert_int_equal(fake_calls("watttime_login"), 1);
	auth_free(a);
}

static void test_kraken_wrong_api_key_is_auth_error(void **state)
{
	struct auth *a;
	char tok[AUTH_TOKEN_MAX];
	struct rp_err err;
	(void)state;

	snprintf(api_key, sizeof(api_key), "sk_test_wrong");
	a = new_auth(NULL);
	rp_err_clear(&err);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, tok, sizeof(tok), &err), RP_EAUTH);
	assert_non_null(strstr(err.msg, "KT-CT-1139"));
	assert_null(strstr(err.msg, "sk_test_wrong"));
	assert_int_equal(fake_calls("kraken_graphql"), 1);
	auth_free(a);
}

static void test_revoked_watttime_token_refreshes_and_retries_once(void **state)
{
	struct auth *a = new_auth(NULL);
	struct http_request req = forecast_request();
	struct http_response resp;
	char tok[AUTH_TOKEN_MAX];
	int attempts = 0;
	(void)state;

	assert_int_equal(auth_token(a, AUTH_WATTTIME, tok, sizeof(tok), NULL), 0);
	assert_int_equal(fake_config("{\"revoke_tokens\": true}"), 0);
	assert_int_equal(auth_perform(a, AUTH_WATTTIME, &req, &fast_policy, &resp, &attempts, NULL), 0);
	assert_int_equal(resp.status, 200);
	assert_non_null(strstr(resp.body, "\"data\""));
	http_response_free(&resp);
	/* refused request, login, retried request */
	assert_int_equal(attempts, 3);
	assert_int_equal(fake_calls("watttime_forecast"), 2);
	assert_int_equal(fake_calls("watttime_login"), 2);
	assert_int_equal(refreshes(a, AUTH_WATTTIME), 2);
	/* the request keeps no pointer to a freed token */
	assert_null(req.bearer);
	assert_null(req.authorization);
	auth_free(a);
}

static void test_revoked_kraken_token_refreshes_and_retries_once(void **state)
{
	struct auth *a = new_auth(NULL);
	struct http_request req = viewer_request();
	struct http_response resp;
	char tok[AUTH_TOKEN_MAX];
	int attempts = 0;
	(void)state;

	assert_int_equal(auth_token(a, AUTH_KRAKEN, tok, sizeof(tok), NULL), 0);
	assert_int_equal(fake_config("{\"revoke_tokens\": true}"), 0);
	assert_int_equal(auth_perform(a, AUTH_KRAKEN, &req, &fast_policy, &resp, &attempts, NULL), 0);
	assert_int_equal(resp.status, 200);
	assert_non_null(strstr(resp.body, "fake@ratepool.test"));
	assert_null(strstr(resp.body, "\"errors\""));
	http_response_free(&resp);
	/* refused query (KT-CT-1143 in a 200), refresh token refused (it was
	 * revoked too), API key, retried query */
	assert_int_equal(attempts, 4);
	assert_int_equal(fake_calls("kraken_graphql"), 5);
	assert_int_equal(refreshes(a, AUTH_KRAKEN), 2);
	auth_free(a);
}

static void test_second_auth_failure_is_reported_not_looped(void **state)
{
	struct auth *a = new_auth(NULL);
	struct http_request req = forecast_request();
	struct http_response resp;
	struct rp_err err;
	int attempts = 0;
	(void)state;

	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_forecast\",\"kind\":\"status\",\"status\":401,"
	                            "\"times\":-1}"),
	                 0);
	rp_err_clear(&err);
	assert_int_equal(auth_perform(a, AUTH_WATTTIME, &req, &fast_policy, &resp, &attempts, &err),
	                 RP_EAUTH);
	assert_int_equal(err.code, RP_EAUTH);
	http_response_free(&resp);
	assert_int_equal(fake_calls("watttime_forecast"), 2);
	assert_int_equal(fake_calls("watttime_login"), 2);
	assert_int_equal(attempts, 4);
	auth_free(a);
}

static void test_watttime_403_refreshes_once_then_stays_forbidden(void **state)
{
	struct auth *a = new_auth(NULL);
	struct http_request req = forecast_request();
	struct http_response resp;
	int attempts = 0;
	(void)state;

	/* WattTime answers an expired token with a 403 page as often as 401 */
	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_forecast\",\"kind\":\"html\",\"times\":1}"), 0);
	assert_int_equal(auth_perform(a, AUTH_WATTTIME, &req, &fast_policy, &resp, &attempts, NULL), 0);
	http_response_free(&resp);
	assert_int_equal(fake_calls("watttime_forecast"), 2);
	assert_int_equal(fake_calls("watttime_login"), 2);

	/* a 403 that a fresh token does not cure is the plan's limit: said
	 * as forbidden, after exactly one retry */
	assert_int_equal(fake_reset(), 0);
	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_forecast\",\"kind\":\"html\",\"times\":-1}"),
	                 0);
	assert_int_equal(auth_perform(a, AUTH_WATTTIME, &req, &fast_policy, &resp, &attempts, NULL),
	                 RP_EFORBIDDEN);
	http_response_free(&resp);
	assert_int_equal(fake_calls("watttime_forecast"), 2);
	assert_int_equal(fake_calls("watttime_login"), 1);
	auth_free(a);
}

static void test_second_kraken_token_error_is_reported_not_looped(void **state)
{
	struct auth *a = new_auth(NULL);
	struct http_request req = viewer_request();
	struct http_response resp;
	struct rp_err err;
	int attempts = 0;
	(void)state;

	/* only the viewer query is refused; token mutations go through */
	assert_int_equal(fake_fault("{\"endpoint\":\"kraken_graphql\",\"kind\":\"graphql_error\","
	                            "\"code\":\"KT-CT-1111\",\"times\":-1,\"match\":\"viewer\"}"),
	                 0);
	rp_err_clear(&err);
	assert_int_equal(auth_perform(a, AUTH_KRAKEN, &req, &fast_policy, &resp, &attempts, &err), RP_EAUTH);
	/* the GraphQL body stays for the caller's message */
	assert_non_null(strstr(resp.body, "KT-CT-1111"));
	http_response_free(&resp);
	/* token, query, refresh, query: never a third query */
	assert_int_equal(fake_calls("kraken_graphql"), 4);
	assert_int_equal(attempts, 4);
	assert_int_equal(refreshes(a, AUTH_KRAKEN), 2);
	auth_free(a);
}

static void test_expired_kraken_jwt_code_refreshes_once(void **state)
{
	struct auth *a = new_auth(NULL);
	struct http_request req = viewer_request();
	struct http_response resp;
	int attempts = 0;
	(void)state;

	/* the older "Signature of the JWT has expired." answer */
	assert_int_equal(fake_fault("{\"endpoint\":\"kraken_graphql\",\"kind\":\"graphql_error\","
	                            "\"code\":\"KT-CT-1124\",\"match\":\"viewer\"}"),
	                 0);
	assert_int_equal(auth_perform(a, AUTH_KRAKEN, &req, &fast_policy, &resp, &attempts, NULL), 0);
	assert_null(strstr(resp.body, "\"errors\""));
	http_response_free(&resp);
	/* token, refused query, refresh, query */
	assert_int_equal(fake_calls("kraken_graphql"), 4);
	assert_int_equal(attempts, 4);
	auth_free(a);
}

static void test_other_kraken_errors_do_not_refresh(void **state)
{
	struct auth *a = new_auth(NULL);
	struct http_request req = viewer_request();
	struct http_response resp;
	int attempts = 0;
	(void)state;

	assert_int_equal(fake_fault("{\"endpoint\":\"kraken_graphql\",\"kind\":\"graphql_error\","
	                            "\"code\":\"KT-CT-4301\",\"match\":\"viewer\"}"),
	                 0);
	/* not a token problem: handed to the caller as the answer it is */
	assert_int_equal(auth_perform(a, AUTH_KRAKEN, &req, &fast_policy, &resp, &attempts, NULL), 0);
	assert_non_null(strstr(resp.body, "KT-CT-4301"));
	http_response_free(&resp);
	assert_int_equal(attempts, 2);
	assert_int_equal(refreshes(a, AUTH_KRAKEN), 1);
	auth_free(a);
}

static void test_kraken_refresh_uses_refresh_token_first(void **state)
{
	struct auth *a = new_auth(NULL);
	char t1[AUTH_TOKEN_MAX], t2[AUTH_TOKEN_MAX];
	(void)state;

	assert_int_equal(auth_token(a, AUTH_KRAKEN, t1, sizeof(t1), NULL), 0);
	/* with the API key now wrong, only the refresh token can succeed */
	snprintf(api_key, sizeof(api_key), "sk_test_rotated");
	auth_invalidate(a, AUTH_KRAKEN, t1);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, t2, sizeof(t2), NULL), 0);
	assert_string_not_equal(t1, t2);
	assert_int_equal(fake_calls("kraken_graphql"), 2);
	assert_int_equal(refreshes(a, AUTH_KRAKEN), 2);
	auth_free(a);
}

static void test_kraken_falls_back_to_api_key_when_refresh_token_refused(void **state)
{
	struct auth *a = new_auth(NULL);
	char t1[AUTH_TOKEN_MAX], t2[AUTH_TOKEN_MAX];
	(void)state;

	assert_int_equal(auth_token(a, AUTH_KRAKEN, t1, sizeof(t1), NULL), 0);
	assert_int_equal(fake_fault("{\"endpoint\":\"kraken_graphql\",\"kind\":\"graphql_error\","
	                            "\"code\":\"KT-CT-1135\",\"match\":\"fake_refresh_\"}"),
	                 0);
	auth_invalidate(a, AUTH_KRAKEN, t1);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, t2, sizeof(t2), NULL), 0);
	assert_string_not_equal(t1, t2);
	/* API key, refused refresh token, API key */
	assert_int_equal(fake_calls("kraken_graphql"), 3);
	assert_int_equal(refreshes(a, AUTH_KRAKEN), 2);
	auth_free(a);
}

static void test_invalidating_an_old_token_keeps_the_new_one(void **state)
{
	struct auth *a = new_auth(NULL);
	char t1[AUTH_TOKEN_MAX];
	(void)state;

	assert_int_equal(auth_token(a, AUTH_WATTTIME, t1, sizeof(t1), NULL), 0);
	/* a slow thread reports a token that was already replaced */
	auth_invalidate(a, AUTH_WATTTIME, "some.older.token");
	assert_int_equal(auth_token(a, AUTH_WATTTIME, t1, sizeof(t1), NULL), 0);
	assert_int_equal(fake_calls("watttime_login"), 1);
	auth_free(a);
}

struct racer {
	struct auth *a;
	enum auth_kind kind;
	int rc;
	char tok[AUTH_TOKEN_MAX];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	r->rc = auth_token(r->a, r->kind, r->tok, sizeof(r->tok), NULL);
	return NULL;
}

static void run_racers(enum auth_kind kind, const char *endpoint)
{
	struct auth *a = new_auth(NULL);
	struct racer r[8];
	pthread_t th[8];
	int i;

	for(i = 0; i < 8; i++) {
		r[i].a = a;
		r[i].kind = kind;
		r[i].rc = -1;
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for(i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for(i = 0; i < 8; i++) {
		assert_int_equal(r[i].rc, 0);
		assert_string_equal(r[i].tok, r[0].tok);
	}
	assert_int_equal(fake_calls(endpoint), 1);
	assert_int_equal(refreshes(a, kind), 1);
	auth_free(a);
}

static void test_concurrent_callers_share_one_login(void **state)
{
	(void)state;
	/* a slow login keeps the refresh in flight while the others arrive */
	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_login\",\"kind\":\"slow\",\"delay_s\":0.5}"),
	                 0);
	run_racers(AUTH_WATTTIME, "watttime_login");
	assert_int_equal(fake_fault("{\"endpoint\":\"kraken_graphql\",\"kind\":\"slow\",\"delay_s\":0.5}"),
	                 0);
	run_racers(AUTH_KRAKEN, "kraken_graphql");
}

static void test_waiters_get_the_refresh_failure(void **state)
{
	struct auth *a;
	struct racer r[8];
	pthread_t th[8];
	int i;
	(void)state;

	snprintf(wt_password, sizeof(wt_password), "wrong-password");
	a = new_auth(NULL);
	assert_int_equal(fake_fault("{\"endpoint\":\"watttime_login\",\"kind\":\"slow\",\"delay_s\":0.5}"),
	                 0);
	for(i = 0; i < 8; i++) {
		r[i].a = a;
		r[i].kind = AUTH_WATTTIME;
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for(i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for(i = 0; i < 8; i++)
		assert_int_equal(r[i].rc, RP_EAUTH);
	/* the slow refusal is shared; late arrivals may try once more */
	assert_true(fake_calls("watttime_login") < 8);
	auth_free(a);
}

static int file_contains(const char *path, const char *needle)
{
	char line[8192];
	int hit = 0;
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	while(!hit && fgets(line, sizeof(line), f))
		hit = strstr(line, needle) != NULL;
	fclose(f);
	return hit;
}

static void test_secrets_and_tokens_never_reach_the_log(void **state)
{
	char path[] = "/tmp/ratepool-auth-log-XXXXXX";
	char tokens[6][AUTH_TOKEN_MAX];
	struct http_request req;
	struct http_response resp;
	struct auth *a;
	struct rp_err err;
	int fd = mkstemp(path);
	int i, n = 0;
	(void)state;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(log_open(LOG_LEVEL_DEBUG, path), 0);

	a = new_auth(&stub);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, tokens[n++], AUTH_TOKEN_MAX, NULL), 0);
	auth_invalidate(a, AUTH_KRAKEN, tokens[0]);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, tokens[n++], AUTH_TOKEN_MAX, NULL),
	                 0); /* refresh token */
	assert_int_equal(auth_token(a, AUTH_WATTTIME, tokens[n++], AUTH_TOKEN_MAX, NULL), 0);
	assert_int_equal(fake_config("{\"revoke_tokens\": true}"), 0);
	req = forecast_request();
	assert_int_equal(auth_perform(a, AUTH_WATTTIME, &req, &fast_policy, &resp, NULL, &err), 0);
	http_response_free(&resp);
	req = viewer_request();
	assert_int_equal(auth_perform(a, AUTH_KRAKEN, &req, &fast_policy, &resp, NULL, &err), 0);
	http_response_free(&resp);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, tokens[n++], AUTH_TOKEN_MAX, NULL), 0);
	assert_int_equal(auth_token(a, AUTH_WATTTIME, tokens[n++], AUTH_TOKEN_MAX, NULL), 0);
	auth_free(a);
	/* refusals log too */
	snprintf(api_key, sizeof(api_key), "sk_test_refused_key");
	snprintf(wt_password, sizeof(wt_password), "refused-password");
	a = new_auth(NULL);
	assert_int_equal(auth_token(a, AUTH_KRAKEN, tokens[n], AUTH_TOKEN_MAX, &err), RP_EAUTH);
	assert_null(strstr(err.msg, "sk_test_refused_key"));
	assert_int_equal(auth_token(a, AUTH_WATTTIME, tokens[n], AUTH_TOKEN_MAX, &err), RP_EAUTH);
	assert_null(strstr(err.msg, "refused-password"));
	auth_free(a);
	log_open(LOG_LEVEL_ERROR, NULL);

	/* something was logged, none of it secret */
	assert_true(file_contains(path, "token_refreshed"));
	assert_true(file_contains(path, "token_refused"));
	assert_false(file_contains(path, API_KEY));
	assert_false(file_contains(path, WT_PASSWORD));
	assert_false(file_contains(path, "sk_test_refused_key"));
	assert_false(file_contains(path, "refused-password"));
	assert_false(file_contains(path, "fake_refresh_"));
	for(i = 0; i < n; i++) {
		/* the signature part is unique to each token */
		const char *sig = strrchr(tokens[i], '.');
		assert_non_null(sig);
		assert_false(file_contains(path, tokens[i]));
		assert_false(file_contains(path, sig + 1));
	}
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_credential_key_is_sha256_of_provider_and_credential),
	        cmocka_unit_test(test_jwt_exp_from_valid_token),
	        cmocka_unit_test(test_jwt_exp_bad_base64_is_refused),
	        cmocka_unit_test(test_jwt_exp_missing_or_not_a_number_is_refused),
	        cmocka_unit_test(test_jwt_exp_needs_three_parts),
	        cmocka_unit_test_setup(test_no_credential_configured_is_invalid, test_setup),
	        cmocka_unit_test_setup(test_watttime_login_once_then_token_reused, test_setup),
	        cmocka_unit_test_setup(test_kraken_token_expiry_comes_from_jwt_exp, test_setup),
	        cmocka_unit_test_setup(test_token_inside_margin_is_refreshed, test_setup),
	        cmocka_unit_test_setup(test_token_outside_margin_is_not_refreshed, test_setup),
	        cmocka_unit_test_setup(test_token_survives_restart_without_the_secret_stored, test_setup),
	        cmocka_unit_test_setup(test_changed_credential_does_not_reuse_stored_token, test_setup),
	        cmocka_unit_test_setup(test_watttime_wrong_password_is_auth_error, test_setup),
	        cmocka_unit_test_setup(test_kraken_wrong_api_key_is_auth_error, test_setup),
	        cmocka_unit_test_setup(test_revoked_watttime_token_refreshes_and_retries_once, test_setup),
	        cmocka_unit_test_setup(test_revoked_kraken_token_refreshes_and_retries_once, test_setup),
	        cmocka_unit_test_setup(test_second_auth_failure_is_reported_not_looped, test_setup),
	        cmocka_unit_test_setup(test_watttime_403_refreshes_once_then_stays_forbidden, test_setup),
	        cmocka_unit_test_setup(test_second_kraken_token_error_is_reported_not_looped, test_setup),
	        cmocka_unit_test_setup(test_expired_kraken_jwt_code_refreshes_once, test_setup),
	        cmocka_unit_test_setup(test_other_kraken_errors_do_not_refresh, test_setup),
	        cmocka_unit_test_setup(test_kraken_refresh_uses_refresh_token_first, test_setup),
	        cmocka_unit_test_setup(test_kraken_falls_back_to_api_key_when_refresh_token_refused,
	                               test_setup),
	        cmocka_unit_test_setup(test_invalidating_an_old_token_keeps_the_new_one, test_setup),
	        cmocka_unit_test_setup(test_concurrent_callers_share_one_login, test_setup),
	        cmocka_unit_test_setup(test_waiters_get_the_refresh_failure, test_setup),
	        cmocka_unit_test_setup(test_secrets_and_tokens_never_reach_the_log, test_setup),
	};
	return cmocka_run_group_tests_name("auth", tests, group_setup, group_teardown);
}
