/*
 * test_octopus.c - the Octopus REST client: parsers fed with fixture files
 * from tests/data/octopus/, and fetches against a scripted stand-in for
 * the http module (mosquitto style: the collaborators http, config and
 * store are stubbed here, so this binary links none of them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/fixture.h"

#include "ratepool/config.h"
#include "ratepool/http.h"
#include "ratepool/octopus.h"
#include "ratepool/rtime.h"
#include "ratepool/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- fixtures ------------------------------------------------------------ */

static char *read_fixture(const char *name, size_t *len)
{
	return fixture_read("octopus", name, len);
}

static int64_t T(const char *text)
{
	return fixture_time(text);
}

/* Parses a fixture as one page over [from, to). */
static int parse_fixture(const char *name, const char *from, const char *to, struct slot_list *out,
                         struct rp_err *err)
{
	size_t len;
	char *body = read_fixture(name, &len);
	int rc;

	rp_err_clear(err);
	rc = octopus_parse_rates(body, len, T(from), T(to), out, err);
	free(body);
	return rc;
}

/* --- stub: http ------------------------------------------------------------ */

struct reply {
	long status;
	const char *file; /* fixture name, or NULL */
	const char *body; /* literal body when file is NULL */
	const char *ctype;
};

#define MAX_SCRIPT 64
static struct reply script[MAX_SCRIPT];
static int script_n;
static int calls;
static char seen_url[MAX_SCRIPT][2048];
static char seen_user[64];
static char seen_password[64];
/* When set, makes every body (endless pagination) instead of the script. */
static char *(*page_maker)(int call);

static void script_reset(void)
{
	memset(script, 0, sizeof(script));
	script_n = 0;
	calls = 0;
	page_maker = NULL;
	seen_user[0] = seen_password[0] = '\0';
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
	int i = calls;

	assert_non_null(policy);
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if(attempts)
		*attempts = 1;
	calls++;
	if(i < MAX_SCRIPT)
		snprintf(seen_url[i], sizeof(seen_url[i]), "%s", req->url);
	if(req->basic_user) {
		snprintf(seen_user, sizeof(seen_user), "%s", req->basic_user);
		snprintf(seen_password, sizeof(seen_password), "%s",
		         req->basic_password ? req->basic_password : "(null)");
	}
	if(page_maker) {
		body = page_maker(i);
		len = strlen(body);
		resp->status = 200;
		snprintf(resp->content_type, sizeof(resp->content_type), "application/json");
	} else {
		if(i >= script_n)
			fail_msg("unexpected request %d: %s", i, req->url);
		r = &script[i];
		if(r->file)
			body = read_fixture(r->file, &len);
		else {
			body = strdup(r->body ? r->body : "");
			len = strlen(body);
		}
		resp->status = r->status;
		snprintf(resp->content_type, sizeof(resp->content_type), "%s", r->ctype);
	}
	resp->body = body;
	resp->len = len;
	if(resp->status >= 200 && resp->status < 300)
		return 0;
	switch(resp->status) {
	case 0:
		return rp_err_set(err, RP_ENET, "connection refused");
	case 401:
		return rp_err_set(err, RP_EAUTH, "HTTP 401");
	case 403:
		return rp_err_set(err, RP_EFORBIDDEN, "HTTP 403");
	case 404:
		return rp_err_set(err, RP_ENOTFOUND, "HTTP 404");
	case 429:
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

bool http_retryable(int code)
{
	return code == RP_ENET || code == RP_ETIMEOUT || code == RP_ERATELIMIT || code == RP_ESERVER;
}

int http_escape(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;

	for(; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		   c == '.' || c == '_' || c == '~') {
			if(j + 1 >= n)
				return RP_ETOOLARGE;
			out[j++] = (char)c;
		} else {
			if(j + 3 >= n)
				return RP_ETOOLARGE;
			out[j++] = '%';
			out[j++] = hex[c >> 4];
			out[j++] = hex[c & 15];
		}
	}
	out[j] = '\0';
	return 0;
}

/* --- stub: config and store ------------------------------------------------ */

static struct config cfg;

const struct config_account *config_account_find(const struct config *c, const char *alias)
{
	int i;
	for(i = 0; i < c->account_count; i++)
		if(!strcmp(c->accounts[i].alias, alias))
			return &c->accounts[i];
	return NULL;
}

#define MAX_META 8
static struct {
	char key[200];
	char *val;
	size_t len;
} meta[MAX_META];
static int meta_puts;
/* Any non-NULL pointer will do: the stubs ignore it. */
static struct store *fake_store = (struct store *)&meta;

int store_meta_put(struct store *s, const char *key, const void *val, size_t len)
{
	int i, free_slot = -1;

	meta_puts++;
	for(i = 0; i < MAX_META; i++) {
		if(meta[i].val && !strcmp(meta[i].key, key)) {
			free(meta[i].val);
			meta[i].val = NULL;
		}
		if(!meta[i].val && free_slot < 0)
			free_slot = i;
	}
	assert_true(free_slot >= 0);
	snprintf(meta[free_slot].key, sizeof(meta[free_slot].key), "%s", key);
	meta[free_slot].val = malloc(len + 1);
	memcpy(meta[free_slot].val, val, len);
	meta[free_slot].val[len] = '\0';
	meta[free_slot].len = len;
	return 0;
}

int store_meta_get(struct store *s, const char *key, char **val, size_t *len)
{
	int i;
	for(i = 0; i < MAX_META; i++)
		if(meta[i].val && !strcmp(meta[i].key, key)) {
			*val = malloc(meta[i].len + 1);
			memcpy(*val, meta[i].val, meta[i].len + 1);
			*len = meta[i].len;
			return 0;
		}
	return RP_ENOENT;
}

static void meta_reset(void)
{
	int i;
	for(i = 0; i < MAX_META; i++) {
		free(meta[i].val);
		meta[i].val = NULL;
	}
	meta_puts = 0;
}

static int setup(void **state)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.octopus_url = "http://fake.test";
	cfg.octopus_api_key = "sk_test_fake";
	snprintf(cfg.accounts[0].alias, sizeof(cfg.accounts[0].alias), "home");
	snprintf(cfg.accounts[0].number, sizeof(cfg.accounts[0].number), "A-FAKE0001");
	cfg.account_count = 1;
	script_reset();
	meta_reset();
	return 0;
}

static int teardown(void **state)
{
	meta_reset();
	return 0;
}

static struct provider_ctx ctx_with_store(struct store *st)
{
	struct provider_ctx c;
	memset(&c, 0, sizeof(c));
	c.cfg = &cfg;
	c.store = st;
	return c;
}

/* --- tariff codes ------------------------------------------------------------ */

static void test_product_code_is_derived_from_tariff_code(void **state)
{
	char p[OCTOPUS_TARIFF_MAX];
	char kind = 0;

	assert_int_equal(octopus_product_code("E-1R-AGILE-24-10-01-C", p, sizeof(p), &kind), 0);
	assert_string_equal(p, "AGILE-24-10-01");
	assert_int_equal(kind, 'E');
	assert_int_equal(octopus_product_code("E-1R-AGILE-BB-24-10-01-H", p, sizeof(p), NULL), 0);
	assert_string_equal(p, "AGILE-BB-24-10-01");
	assert_int_equal(octopus_product_code("E-2R-VAR-22-11-01-P", p, sizeof(p), NULL), 0);
	assert_string_equal(p, "VAR-22-11-01");
	assert_int_equal(octopus_product_code("G-1R-VAR-BB-23-04-01-H", p, sizeof(p), &kind), 0);
	assert_int_equal(kind, 'G');
}

static void test_malformed_tariff_codes_are_refused(void **state)
{
	char p[OCTOPUS_TARIFF_MAX];
	const char *bad[] = {"AGILE-24-10-01",
	                     "E-1R-AGILE-24-10-01-I",
	                     "E-1R-AGILE-24-10-01-O",
	                     "E-3R-AGILE-C",
	                     "X-1R-AGILE-C",
	                     "E-1R--C",
	                     "E-1R-AGILE-24-10-01-c",
	                     "E-1R-AGILE/24-C",
	                     "",
	                     "E-1R-A-CC"};
	size_t i;

	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(octopus_product_code(bad[i], p, sizeof(p), NULL), RP_EINVAL);
	assert_int_equal(octopus_product_code("E-1R-AGILE-24-10-01-C", p, 5, NULL), RP_EINVAL);
}

/* --- rates parser ------------------------------------------------------------ */

static void test_real_page_is_converted_to_gbp_oldest_first(void **state)
{
	struct slot_list s;
	struct rp_err err;
	struct octopus_rows rows;
	char next[512];
	size_t len;
	char *body;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("agile_page_real.json", "2025-05-12T00:00:00Z", "2025-05-14T00:00:00Z",
	                               &s, &err),
	                 0);
	assert_int_equal(s.n, 6);
	assert_string_equal(s.unit, "GBP/kWh");
	assert_int_equal(s.v[0].start, T("2025-05-12T19:30:00Z"));
	assert_int_equal(s.v[0].end, T("2025-05-12T20:00:00Z"));
	assert_float_equal(s.v[0].value, 0.2205, 1e-12);
	assert_float_equal(s.v[0].value_exc_vat, 0.21, 1e-12);
	assert_int_equal(s.v[5].start, T("2025-05-13T21:30:00Z"));
	assert_float_equal(s.v[5].value, 0.17283, 1e-12);
	assert_float_equal(s.v[5].value_exc_vat, 0.1646, 1e-12);
	assert_int_equal(slot_list_validate(&s, provider_octopus.max_abs, &err), 0);
	slot_list_free(&s);

	/* the page parser hands back the next link verbatim */
	octopus_rows_init(&rows);
	body = read_fixture("agile_page_real.json", &len);
	assert_int_equal(octopus_parse_page(body, len, &rows, next, sizeof(next), &err), 0);
	assert_int_equal(rows.n, 6);
	assert_string_equal(next, "https://api.octopus.energy/v1/products/AGILE-24-10-01/electricity-tariffs/"
	                          "E-1R-AGILE-24-10-01-H/standard-unit-rates/?page=2");
	free(body);
	octopus_rows_free(&rows);
}

static void test_day_window_gives_48_contiguous_half_hours(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(
	        parse_fixture("agile_day.json", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &s, &err), 0);
	assert_int_equal(s.n, 48);
	assert_int_equal(s.v[0].start, T("2025-05-12T23:00:00Z"));
	assert_int_equal(slot_list_contiguous_end(&s), T("2025-05-13T23:00:00Z"));
	slot_list_free(&s);
}

static void test_dst_days_have_46_and_50_half_hours(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	/* 30 March 2025: the clocks go forward, the local day is 23 hours */
	assert_int_equal(
	        parse_fixture("dst_spring_46.json", "2025-03-30T00:00:00Z", "2025-03-30T23:00:00Z", &s, &err),
	        0);
	assert_int_equal(s.n, 46);
	assert_int_equal(s.v[0].start, rtime_day_start(RTIME_LONDON, T("2025-03-30T12:00:00Z")));
	assert_int_equal(slot_list_contiguous_end(&s),
	                 rtime_day_add(RTIME_LONDON, T("2025-03-30T12:00:00Z"), 1));
	assert_int_equal(slot_list_validate(&s, 100, &err), 0);
	slot_list_free(&s);

	/* 26 October 2025: the clocks go back, the local day is 25 hours */
	slot_list_init(&s);
	assert_int_equal(
	        parse_fixture("dst_autumn_50.json", "2025-10-25T23:00:00Z", "2025-10-27T00:00:00Z", &s, &err),
	        0);
	assert_int_equal(s.n, 50);
	assert_int_equal(s.v[0].start, rtime_day_start(RTIME_LONDON, T("2025-10-26T12:00:00Z")));
	assert_int_equal(slot_list_contiguous_end(&s),
	                 rtime_day_add(RTIME_LONDON, T("2025-10-26T12:00:00Z"), 1));
	assert_int_equal(slot_list_validate(&s, 100, &err), 0);
	slot_list_free(&s);
}

static void test_empty_results_are_no_slots_and_no_error(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(
	        parse_fixture("empty.json", "2025-05-13T23:00:00Z", "2025-05-14T23:00:00Z", &s, &err), 0);
	assert_int_equal(s.n, 0);
	slot_list_free(&s);
}

static void test_payment_duplicates_keep_direct_debit(void **state)
{
	struct slot_list s;
	struct rp_err err;
	size_t i;

	slot_list_init(&s);
	assert_int_equal(
	        parse_fixture("var_dd_pairs.json", "2025-03-30T00:00:00Z", "2025-04-02T00:00:00Z", &s, &err),
	        0);
	/* closed DD row: the 23-hour 30 March and 31 March; open DD row: 1 April
	 * and the first hour of 2 April (clipped to the range end) */
	assert_int_equal(s.n, 4);
	assert_int_equal(s.v[0].start, T("2025-03-30T00:00:00Z"));
	assert_int_equal(s.v[0].end, T("2025-03-30T23:00:00Z"));
	assert_int_equal(s.v[1].end, T("2025-03-31T23:00:00Z"));
	assert_int_equal(s.v[2].end, T("2025-04-01T23:00:00Z"));
	assert_int_equal(s.v[3].end, T("2025-04-02T00:00:00Z"));
	for(i = 0; i < 2; i++)
		assert_float_equal(s.v[i].value, 0.23478, 1e-12);
	for(i = 2; i < 4; i++)
		assert_float_equal(s.v[i].value, 0.244755, 1e-12);
	assert_int_equal(slot_list_validate(&s, 100, &err), 0);
	slot_list_free(&s);
}

static void test_other_payment_method_kept_without_direct_debit_row(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(
	        parse_fixture("non_dd_only.json", "2025-05-13T00:00:00Z", "2025-05-14T00:00:00Z", &s, &err),
	        0);
	assert_int_equal(s.n, 1);
	assert_float_equal(s.v[0].value, 0.25767, 1e-12);
	slot_list_free(&s);
}

static void test_open_ended_rate_is_clipped_to_range_end(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("open_ended_short.json", "2025-05-13T00:00:00Z",
	                               "2025-05-13T18:00:00Z", &s, &err),
	                 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.v[0].start, T("2025-05-13T12:00:00Z"));
	assert_int_equal(s.v[0].end, T("2025-05-13T18:00:00Z"));
	slot_list_clear(&s);
	/* a range end inside a minute ends the slot at the next whole minute */
	assert_int_equal(parse_fixture("open_ended_short.json", "2025-05-13T00:00:00Z",
	                               "2025-05-13T18:00:30Z", &s, &err),
	                 0);
	assert_int_equal(s.v[0].end, T("2025-05-13T18:01:00Z"));
	assert_int_equal(slot_list_validate(&s, 100, &err), 0);
	slot_list_free(&s);
}

/* An open-ended rate is not stored past what Octopus could have published
 * (the end of tomorrow, UK): held slots are never fetched again, so a rate
 * stretched to a far request end would hide a later change. */
static void test_open_ended_rate_stops_at_the_end_of_tomorrow(void **state)
{
	struct slot_list s;
	struct rp_err err;
	char from[RTIME_TEXT_SIZE], to[RTIME_TEXT_SIZE];
	int64_t now = rtime_now();
	int64_t horizon = rtime_day_add(RTIME_LONDON, now, 2);

	slot_list_init(&s);
	rtime_format(now - 86400, from);
	rtime_format(now + 10 * 86400, to);
	assert_int_equal(parse_fixture("open_ended_short.json", from, to, &s, &err), 0);
	assert_true(s.n > 0);
	assert_int_equal(s.v[s.n - 1].end, horizon);
	slot_list_free(&s);
}

static void test_long_rate_is_split_into_local_days_over_dst(void **state)
{
	struct slot_list s;
	struct rp_err err;
	size_t i;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("fixed_long_row.json", "2025-10-25T00:00:00Z", "2025-10-28T00:00:00Z",
	                               &s, &err),
	                 0);
	/* 25 Oct (BST, 24 h), 26 Oct (25 h, cut at 12 h), 27 Oct (GMT) */
	assert_int_equal(s.n, 4);
	assert_int_equal(s.v[0].start, T("2025-10-24T23:00:00Z"));
	assert_int_equal(s.v[0].end, T("2025-10-25T23:00:00Z"));
	assert_int_equal(s.v[1].end, T("2025-10-26T11:00:00Z"));
	assert_int_equal(s.v[2].end, T("2025-10-27T00:00:00Z"));
	assert_int_equal(s.v[3].end, T("2025-10-28T00:00:00Z"));
	for(i = 0; i < s.n; i++) {
		assert_true(s.v[i].end - s.v[i].start <= 86400);
		assert_float_equal(s.v[i].value, 0.21, 1e-12);
	}
	assert_int_equal(slot_list_validate(&s, 100, &err), 0);
	slot_list_free(&s);
}

static void test_row_repeated_on_two_pages_counts_once(void **state)
{
	struct slot_list s;
	struct rp_err err;

	slot_list_init(&s);
	assert_int_equal(parse_fixture("duplicate_same_row.json", "2025-05-12T23:00:00Z",
	                               "2025-05-13T23:00:00Z", &s, &err),
	                 0);
	assert_int_equal(s.n, 4);
	slot_list_free(&s);
}

static void expect_refused(const char *file, int code)
{
	struct slot_list s;
	struct rp_err err;
	int rc;

	slot_list_init(&s);
	assert_int_equal(slot_list_push(&s, 0, 60, 1.0, NAN), 0);
	rc = parse_fixture(file, "2025-05-12T00:00:00Z", "2025-05-14T00:00:00Z", &s, &err);
	if(rc != code)
		fail_msg("%s: expected %s, got %s (%s)", file, rp_code_name(code), rp_code_name(rc), err.msg);
	assert_int_equal(err.code, code);
	assert_true(err.msg[0] != '\0');
	/* nothing added to what the list held */
	assert_int_equal(s.n, 1);
	slot_list_free(&s);
}

static void test_same_slot_with_two_values_is_garbage(void **state)
{
	expect_refused("duplicate_different_value.json", RP_EGARBAGE);
}

static void test_overlapping_rates_are_garbage(void **state)
{
	expect_refused("overlap.json", RP_EGARBAGE);
}

static void test_missing_fields_are_parse_errors(void **state)
{
	expect_refused("missing_valid_from.json", RP_EPARSE);
	expect_refused("missing_value.json", RP_EPARSE);
	expect_refused("missing_next.json", RP_EPARSE);
	expect_refused("no_results.json", RP_EPARSE);
	expect_refused("results_not_list.json", RP_EPARSE);
}

static void test_mistyped_fields_are_parse_errors(void **state)
{
	expect_refused("value_string.json", RP_EPARSE);
	expect_refused("value_nan_string.json", RP_EPARSE);
	expect_refused("valid_to_number.json", RP_EPARSE);
	expect_refused("payment_number.json", RP_EPARSE);
}

static void test_bad_times_are_garbage(void **state)
{
	expect_refused("valid_from_text.json", RP_EGARBAGE);
	expect_refused("valid_from_no_offset.json", RP_EGARBAGE);
	expect_refused("ends_before_start.json", RP_EGARBAGE);
}

static void test_absurd_numbers_are_refused(void **state)
{
	expect_refused("value_huge.json", RP_EGARBAGE);
	/* 1e999 is not a double: jansson refuses the document */
	expect_refused("value_overflow.json", RP_EPARSE);
}

static void test_non_json_bodies_are_parse_errors(void **state)
{
	expect_refused("not_json.txt", RP_EPARSE);
	expect_refused("array_top.json", RP_EPARSE);
	expect_refused("cdn_403.html", RP_EPARSE);
}

static void test_more_rows_than_a_slot_list_holds_are_garbage(void **state)
{
	struct octopus_rows rows;
	struct rp_err err;
	char next[64];
	size_t i, n = SLOT_LIST_MAX + 1, cap = n * 160 + 64;
	char *body = malloc(cap);
	size_t len = 0;

	assert_non_null(body);
	len += (size_t)snprintf(body + len, cap - len,
	                        "{\"count\":%zu,\"next\":null,\"previous\":null,\"results\":[", n);
	for(i = 0; i < n; i++) {
		char a[RTIME_TEXT_SIZE], b[RTIME_TEXT_SIZE];
		rtime_format(T("2025-01-01T00:00:00Z") + (int64_t)i * 1800, a);
		rtime_format(T("2025-01-01T00:30:00Z") + (int64_t)i * 1800, b);
		len += (size_t)snprintf(body + len, cap - len,
		                        "%s{\"value_exc_vat\":1,\"value_inc_vat\":1.05,\"valid_from\":\"%s\","
		                        "\"valid_to\":\"%s\",\"payment_method\":null}",
		                        i ? "," : "", a, b);
	}
	len += (size_t)snprintf(body + len, cap - len, "]}");
	octopus_rows_init(&rows);
	assert_int_equal(octopus_parse_page(body, len, &rows, next, sizeof(next), &err), RP_EGARBAGE);
	octopus_rows_free(&rows);
	free(body);
}

/* --- account parser ------------------------------------------------------------ */

static void test_real_account_gives_import_agreements_oldest_first(void **state)
{
	struct octopus_agreement ag[16];
	struct rp_err err;
	size_t n = 0, len;
	char *body = read_fixture("account_real.json", &len);

	assert_int_equal(octopus_parse_account(body, len, ag, 16, &n, &err), 0);
	/* six agreements, one of them zero-length; gas is not ours */
	assert_int_equal(n, 5);
	assert_string_equal(ag[0].tariff_code, "E-1R-BULB-CRED-VAR-V1-H");
	assert_int_equal(ag[0].from, T("2021-10-22T23:00:00Z"));
	assert_int_equal(ag[0].to, T("2023-03-31T23:00:00Z"));
	assert_string_equal(ag[3].tariff_code, "E-1R-AGILE-BB-23-12-06-H");
	assert_string_equal(ag[4].tariff_code, "E-1R-AGILE-BB-24-10-01-H");
	assert_int_equal(ag[4].from, T("2025-02-15T00:00:00Z"));
	assert_int_equal(ag[4].to, T("2026-02-15T00:00:00Z"));
	free(body);
}

static void test_export_meter_points_are_not_tariffs_paid(void **state)
{
	struct octopus_agreement ag[16];
	struct rp_err err;
	size_t n = 0, len, i;
	char *body = read_fixture("account_export.json", &len);

	assert_int_equal(octopus_parse_account(body, len, ag, 16, &n, &err), 0);
	assert_int_equal(n, 5);
	for(i = 0; i < n; i++)
		assert_null(strstr(ag[i].tariff_code, "OUTGOING"));
	free(body);
}

static void expect_account_refused(const char *file, int code)
{
	struct octopus_agreement ag[16];
	struct rp_err err;
	size_t n = 7, len;
	char *body = read_fixture(file, &len);
	int rc = octopus_parse_account(body, len, ag, 16, &n, &err);

	if(rc != code)
		fail_msg("%s: expected %s, got %s (%s)", file, rp_code_name(code), rp_code_name(rc), err.msg);
	assert_int_equal(n, 0);
	free(body);
}

static void test_account_garbage_is_refused(void **state)
{
	expect_account_refused("account_ends_before_start.json", RP_EGARBAGE);
	expect_account_refused("account_missing_tariff.json", RP_EPARSE);
	expect_account_refused("account_bad_tariff.json", RP_EGARBAGE);
	expect_account_refused("account_no_properties.json", RP_EPARSE);
	expect_account_refused("cdn_403.html", RP_EPARSE);
}

static void test_account_with_more_agreements_than_room_is_refused(void **state)
{
	struct octopus_agreement ag[3];
	struct rp_err err;
	size_t n, len;
	char *body = read_fixture("account_real.json", &len);

	assert_int_equal(octopus_parse_account(body, len, ag, 3, &n, &err), RP_EGARBAGE);
	free(body);
}

/* --- fetch through the stubbed http ------------------------------------------ */

/* provider.c is not linked here (it would pull in every provider). */
static void res_init(struct provider_result *res)
{
	memset(res, 0, sizeof(*res));
	slot_list_init(&res->slots);
}

static void res_free(struct provider_result *res)
{
	slot_list_free(&res->slots);
}

static int fetch(const char *id, const char *from, const char *to, struct provider_result *res,
                 struct rp_err *err)
{
	struct provider_ctx c = ctx_with_store(fake_store);
	rp_err_clear(err);
	return provider_octopus.fetch(&c, id, T(from), T(to), res, err);
}

static void test_fetch_asks_for_the_range_and_largest_page(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	script_add(200, "agile_day.json", NULL, NULL);
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        0);
	assert_string_equal(seen_url[0],
	                    "http://fake.test/v1/products/AGILE-24-10-01/electricity-tariffs/"
	                    "E-1R-AGILE-24-10-01-C/standard-unit-rates/"
	                    "?period_from=2025-05-12T23%3A00%3A00Z&period_to=2025-05-13T23%3A00%3A00Z"
	                    "&page_size=1500");
	assert_int_equal(res.slots.n, 48);
	assert_int_equal(res.upstream_calls, 1);
	assert_string_equal(res.slots.unit, "GBP/kWh");
	/* public tariff: no credentials sent */
	assert_string_equal(seen_user, "");
	res_free(&res);
}

static void test_fetch_uses_gas_path_for_gas_tariffs(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	script_add(200, "empty.json", NULL, NULL);
	assert_int_equal(
	        fetch("G-1R-VAR-22-11-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err), 0);
	assert_non_null(strstr(seen_url[0], "/v1/products/VAR-22-11-01/gas-tariffs/G-1R-VAR-22-11-01-C/"));
	res_free(&res);
}

static void test_fetch_follows_next_links_until_null(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	script_add(200, "paged_1.json", NULL, NULL);
	script_add(200, "paged_2.json", NULL, NULL);
	script_add(200, "paged_3.json", NULL, NULL);
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        0);
	assert_int_equal(calls, 3);
	assert_int_equal(res.upstream_calls, 3);
	assert_int_equal(res.slots.n, 48);
	/* the next link's path and query, under the configured origin */
	assert_string_equal(seen_url[1],
	                    "http://fake.test/v1/products/AGILE-24-10-01/electricity-tariffs/"
	                    "E-1R-AGILE-24-10-01-C/standard-unit-rates/?page=2&page_size=20"
	                    "&period_from=2025-05-12T23%3A00%3A00Z&period_to=2025-05-13T23%3A00%3A00Z");
	slot_list_sort(&res.slots);
	assert_int_equal(slot_list_validate(&res.slots, 100, &err), 0);
	assert_int_equal(slot_list_contiguous_end(&res.slots), T("2025-05-13T23:00:00Z"));
	res_free(&res);
}

static void test_fetch_drops_row_repeated_when_pages_shift(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	script_add(200, "paged_1.json", NULL, NULL);
	script_add(200, "paged_2_shifted.json", NULL, NULL);
	script_add(200, "paged_3.json", NULL, NULL);
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        0);
	assert_int_equal(res.slots.n, 48);
	res_free(&res);
}

static void test_next_link_back_to_the_same_page_is_refused(void **state)
{
	struct provider_result res;
	struct rp_err err;
	int i;

	res_init(&res);
	for(i = 0; i < 4; i++)
		script_add(200, "next_self.json", NULL, NULL);
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        RP_EGARBAGE);
	assert_non_null(strstr(err.msg, "same page"));
	assert_true(calls <= 2);
	assert_int_equal(res.slots.n, 0);
	res_free(&res);
}

static char *endless_page(int call)
{
	char a[RTIME_TEXT_SIZE], b[RTIME_TEXT_SIZE];
	char *s = malloc(1024);
	rtime_format(T("2025-05-13T00:00:00Z") + call * 1800, a);
	rtime_format(T("2025-05-13T00:30:00Z") + call * 1800, b);
	snprintf(s, 1024,
	         "{\"count\":100000,\"next\":\"https://api.octopus.energy/v1/products/AGILE-24-10-01/"
	         "electricity-tariffs/E-1R-AGILE-24-10-01-C/standard-unit-rates/?page=%d\",\"previous\":null,"
	         "\"results\":[{\"value_exc_vat\":1,\"value_inc_vat\":1.05,\"valid_from\":\"%s\",\"valid_"
	         "to\":\"%s\","
	         "\"payment_method\":null}]}",
	         call + 2, a, b);
	return s;
}

static void test_endless_pagination_stops_at_the_page_cap(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	page_maker = endless_page;
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-13T00:00:00Z", "2025-05-14T00:00:00Z", &res, &err),
	        RP_EGARBAGE);
	assert_int_equal(calls, OCTOPUS_MAX_PAGES);
	assert_int_equal(res.upstream_calls, OCTOPUS_MAX_PAGES);
	assert_non_null(strstr(err.msg, "pages"));
	assert_int_equal(res.slots.n, 0);
	res_free(&res);
}

static void test_next_link_host_is_ignored_and_path_checked(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	/* only the path and query of a next link are used, under our origin */
	script_add(200, "next_other_host.json", NULL, NULL);
	script_add(200, "empty.json", NULL, NULL);
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        0);
	assert_string_equal(seen_url[1], "http://fake.test/v1/products/X/?page=2");
	assert_int_equal(res.slots.n, 20);
	slot_list_clear(&res.slots);
	script_reset();
	/* and a link out of the rates path is refused */
	script_add(200, "next_other_path.json", NULL, NULL);
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        RP_EGARBAGE);
	assert_int_equal(calls, 1);
	assert_int_equal(res.slots.n, 0);
	res_free(&res);
}

static void test_next_link_keeps_a_base_url_path_prefix(void **state)
{
	struct provider_result res;
	struct rp_err err;

	cfg.octopus_url = "http://fake.test/proxy/";
	res_init(&res);
	script_add(200, NULL,
	           "{\"count\":2,\"next\":\"http://elsewhere/proxy/v1/products/AGILE-24-10-01/"
	           "electricity-tariffs/"
	           "E-1R-AGILE-24-10-01-C/standard-unit-rates/?page=2\",\"previous\":null,\"results\":[]}",
	           NULL);
	script_add(200, "empty.json", NULL, NULL);
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        0);
	assert_true(!strncmp(seen_url[0], "http://fake.test/proxy/v1/products/", 35));
	assert_string_equal(seen_url[1],
	                    "http://fake.test/proxy/v1/products/AGILE-24-10-01/electricity-tariffs/"
	                    "E-1R-AGILE-24-10-01-C/standard-unit-rates/?page=2");
	res_free(&res);
}

static void test_unknown_tariff_is_not_found_with_a_clear_message(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	script_add(404, NULL, "{\"detail\":\"Not found.\"}", NULL);
	assert_int_equal(
	        fetch("E-1R-NOPE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        RP_ENOTFOUND);
	assert_non_null(strstr(err.msg, "E-1R-NOPE-24-10-01-C"));
	assert_non_null(strstr(err.msg, "Not found."));
	res_free(&res);
}

static void test_html_answer_is_forbidden(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	script_add(200, "cdn_403.html", NULL, "text/html");
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        RP_EFORBIDDEN);
	assert_string_equal(err.msg, "upstream answered with an HTML page (CDN block?)");
	script_reset();
	/* a 403 page with a JSON content type still starts with '<' */
	script_add(403, "cdn_403.html", NULL, "application/json");
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        RP_EFORBIDDEN);
	assert_string_equal(err.msg, "upstream answered with an HTML page (CDN block?)");
	assert_int_equal(res.slots.n, 0);
	res_free(&res);
}

static void test_bad_request_carries_the_upstream_detail(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	script_add(400, NULL, "{\"detail\":\"Enter a valid date/time.\"}", NULL);
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        RP_EUPSTREAM);
	assert_non_null(strstr(err.msg, "Enter a valid date/time."));
	res_free(&res);
}

static void test_server_error_is_passed_on(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	script_add(503, NULL, "{\"detail\":\"busy\"}", NULL);
	assert_int_equal(
	        fetch("E-1R-AGILE-24-10-01-C", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	        RP_ESERVER);
	assert_int_equal(res.upstream_calls, 1);
	res_free(&res);
}

static void test_series_that_is_neither_tariff_nor_alias_is_refused_without_a_call(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	assert_int_equal(fetch("kitchen", "2025-05-12T23:00:00Z", "2025-05-13T23:00:00Z", &res, &err),
	                 RP_EINVAL);
	assert_non_null(strstr(err.msg, "alias"));
	assert_int_equal(calls, 0);
	res_free(&res);
}

/* --- accounts through the stubs --------------------------------------------- */

static void test_account_tariffs_split_the_range_by_agreement(void **state)
{
	struct provider_ctx c = ctx_with_store(fake_store);
	struct octopus_tariff_span sp[4];
	struct rp_err err;
	size_t n = 0;

	script_add(200, "account_open.json", NULL, NULL);
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2025-05-13T00:00:00Z"),
	                                         T("2025-05-14T00:00:00Z"), sp, 4, &n, &err),
	                 0);
	assert_string_equal(seen_url[0], "http://fake.test/v1/accounts/A-FAKE0001/");
	assert_string_equal(seen_user, "sk_test_fake");
	assert_string_equal(seen_password, "");
	assert_int_equal(n, 2);
	assert_string_equal(sp[0].tariff_code, "E-1R-VAR-22-11-01-C");
	assert_int_equal(sp[0].from, T("2025-05-13T00:00:00Z"));
	assert_int_equal(sp[0].to, T("2025-05-13T10:00:00Z"));
	assert_string_equal(sp[1].tariff_code, "E-1R-AGILE-24-10-01-C");
	assert_int_equal(sp[1].from, T("2025-05-13T10:00:00Z"));
	assert_int_equal(sp[1].to, T("2025-05-14T00:00:00Z"));

	/* too little room is an error, not a silent cut */
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2025-05-13T00:00:00Z"),
	                                         T("2025-05-14T00:00:00Z"), sp, 1, &n, &err),
	                 RP_ETOOLARGE);
}

static void test_account_record_is_cached_and_reused(void **state)
{
	struct provider_ctx c = ctx_with_store(fake_store);
	struct octopus_tariff_span sp[4];
	struct rp_err err;
	char *val = NULL;
	size_t n = 0, len;

	script_add(200, "account_real.json", NULL, NULL);
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2025-01-01T00:00:00Z"),
	                                         T("2025-03-01T00:00:00Z"), sp, 4, &n, &err),
	                 0);
	assert_int_equal(n, 2);
	assert_string_equal(sp[0].tariff_code, "E-1R-AGILE-BB-23-12-06-H");
	assert_string_equal(sp[1].tariff_code, "E-1R-AGILE-BB-24-10-01-H");
	assert_int_equal(calls, 1);
	assert_int_equal(store_meta_get(fake_store, "account/home", &val, &len), 0);
	assert_non_null(strstr(val, "\"fetched_at\""));
	assert_non_null(strstr(val, "A-FAKE0001"));
	/* the address is personal and not needed: not kept */
	assert_null(strstr(val, "WINCHESTER"));
	free(val);

	/* a second question within 6 h is answered from the record */
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2021-01-01T00:00:00Z"),
	                                         T("2030-01-01T00:00:00Z"), sp, 4, &n, &err),
	                 RP_ETOOLARGE);
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2023-01-01T00:00:00Z"),
	                                         T("2023-06-01T00:00:00Z"), sp, 4, &n, &err),
	                 0);
	assert_int_equal(n, 2);
	assert_int_equal(calls, 1);
}

static void put_record(int64_t fetched_at, const char *number)
{
	char rec[512];
	int len = snprintf(rec, sizeof(rec),
	                   "{\"number\":\"%s\",\"fetched_at\":%lld,\"agreements\":[{\"tariff_code\":"
	                   "\"E-1R-AGILE-24-10-01-C\",\"from\":1700000000,\"to\":null}]}",
	                   number, (long long)fetched_at);
	assert_int_equal(store_meta_put(fake_store, "account/home", rec, (size_t)len), 0);
}

static void test_old_account_record_is_refreshed(void **state)
{
	struct provider_ctx c = ctx_with_store(fake_store);
	struct octopus_tariff_span sp[4];
	struct rp_err err;
	size_t n = 0;

	put_record(rtime_now() - 3600, "A-FAKE0001");
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2025-05-13T00:00:00Z"),
	                                         T("2025-05-14T00:00:00Z"), sp, 4, &n, &err),
	                 0);
	assert_int_equal(calls, 0);
	assert_string_equal(sp[0].tariff_code, "E-1R-AGILE-24-10-01-C");

	put_record(rtime_now() - 7 * 3600, "A-FAKE0001");
	script_add(200, "account_open.json", NULL, NULL);
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2025-05-13T00:00:00Z"),
	                                         T("2025-05-14T00:00:00Z"), sp, 4, &n, &err),
	                 0);
	assert_int_equal(calls, 1);
	assert_int_equal(n, 2);

	/* a record for another account number (the config changed) is not used */
	script_reset();
	put_record(rtime_now() - 60, "A-OTHER001");
	script_add(200, "account_open.json", NULL, NULL);
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2025-05-13T00:00:00Z"),
	                                         T("2025-05-14T00:00:00Z"), sp, 4, &n, &err),
	                 0);
	assert_int_equal(calls, 1);
}

static void test_old_account_record_serves_while_upstream_is_down(void **state)
{
	struct provider_ctx c = ctx_with_store(fake_store);
	struct octopus_tariff_span sp[4];
	struct rp_err err;
	size_t n = 0;

	put_record(rtime_now() - 7 * 3600, "A-FAKE0001");
	script_add(503, NULL, "<html>busy</html>", "text/html");
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2025-05-13T00:00:00Z"),
	                                         T("2025-05-14T00:00:00Z"), sp, 4, &n, &err),
	                 0);
	assert_int_equal(n, 1);

	/* but a refused key is reported even with a record at hand */
	script_reset();
	script_add(401, NULL, "{\"detail\":\"Invalid API key.\"}", NULL);
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2025-05-13T00:00:00Z"),
	                                         T("2025-05-14T00:00:00Z"), sp, 4, &n, &err),
	                 RP_EAUTH);
	assert_non_null(strstr(err.msg, "RATEPOOL_OCTOPUS_API_KEY"));
}

static void test_account_errors_are_clear(void **state)
{
	struct provider_ctx c = ctx_with_store(NULL);
	struct octopus_tariff_span sp[4];
	struct rp_err err;
	size_t n = 0;

	assert_int_equal(octopus_account_tariffs(&c, "cottage", 0, 86400, sp, 4, &n, &err), RP_ENOTFOUND);
	assert_non_null(strstr(err.msg, "cottage"));

	script_add(404, NULL, "{\"detail\":\"Not found.\"}", NULL);
	assert_int_equal(octopus_account_tariffs(&c, "home", 0, 86400, sp, 4, &n, &err), RP_ENOTFOUND);
	assert_non_null(strstr(err.msg, "A-FAKE0001"));

	cfg.octopus_api_key = NULL;
	assert_int_equal(octopus_account_tariffs(&c, "home", 0, 86400, sp, 4, &n, &err), RP_EINVAL);
	assert_non_null(strstr(err.msg, "RATEPOOL_OCTOPUS_API_KEY"));
	assert_int_equal(calls, 1);
}

static void test_import_points_on_different_tariffs_are_refused(void **state)
{
	struct provider_ctx c = ctx_with_store(NULL);
	struct octopus_tariff_span sp[4];
	struct rp_err err;
	size_t n = 0;

	script_add(200, "account_two_points_conflict.json", NULL, NULL);
	assert_int_equal(octopus_account_tariffs(&c, "home", T("2025-06-01T00:00:00Z"),
	                                         T("2025-06-02T00:00:00Z"), sp, 4, &n, &err),
	                 RP_EGARBAGE);
	assert_non_null(strstr(err.msg, "tariff code instead"));
}

static void test_fetch_by_alias_concatenates_the_tariffs(void **state)
{
	struct provider_result res;
	struct rp_err err;
	size_t i;

	res_init(&res);
	script_add(200, "account_open.json", NULL, NULL);
	script_add(200, "var_dd_pairs.json", NULL, NULL);
	script_add(200, "agile_day.json", NULL, NULL);
	assert_int_equal(fetch("home", "2025-05-13T00:00:00Z", "2025-05-14T00:00:00Z", &res, &err), 0);
	assert_int_equal(res.upstream_calls, 3);
	assert_non_null(strstr(seen_url[1],
	                       "/E-1R-VAR-22-11-01-C/standard-unit-rates/?period_from=2025-05-13T00%3A00"
	                       "%3A00Z&period_to=2025-05-13T10%3A00%3A00Z"));
	assert_non_null(strstr(seen_url[2],
	                       "/E-1R-AGILE-24-10-01-C/standard-unit-rates/?period_from=2025-05-13T10%3A00"
	                       "%3A00Z&period_to=2025-05-14T00%3A00%3A00Z"));
	assert_string_equal(res.source, "octopus/account");
	slot_list_sort(&res.slots);
	assert_int_equal(slot_list_validate(&res.slots, 100, &err), 0);
	/* the flexible rate up to the switch at 11:00 BST, then Agile half hours */
	assert_int_equal(res.slots.n, 1 + 26);
	assert_int_equal(res.slots.v[0].start, T("2025-05-12T23:00:00Z"));
	assert_int_equal(res.slots.v[0].end, T("2025-05-13T10:00:00Z"));
	assert_float_equal(res.slots.v[0].value, 0.244755, 1e-12);
	for(i = 1; i < res.slots.n; i++)
		assert_int_equal(res.slots.v[i].end - res.slots.v[i].start, 1800);
	assert_int_equal(slot_list_contiguous_end(&res.slots), T("2025-05-13T23:00:00Z"));
	res_free(&res);
}

static void test_fetch_by_alias_keeps_nothing_when_a_tariff_fails(void **state)
{
	struct provider_result res;
	struct rp_err err;

	res_init(&res);
	script_add(200, "account_open.json", NULL, NULL);
	script_add(200, "var_dd_pairs.json", NULL, NULL);
	script_add(502, NULL, "{}", NULL);
	assert_int_equal(fetch("home", "2025-05-13T00:00:00Z", "2025-05-14T00:00:00Z", &res, &err),
	                 RP_ESERVER);
	assert_int_equal(res.upstream_calls, 3);
	/* the first tariff's slots are not kept without the second's */
	assert_int_equal(res.slots.n, 0);
	res_free(&res);
}

static void test_provider_fields_for_the_scheduler(void **state)
{
	assert_string_equal(provider_octopus.id, "octopus");
	assert_string_equal(provider_octopus.unit, "GBP/kWh");
	assert_int_equal(provider_octopus.zone, RTIME_LONDON);
	assert_int_equal(provider_octopus.resolution, 1800);
	assert_int_equal(provider_octopus.cadence, PROVIDER_DAILY);
	assert_int_equal(provider_octopus.publish_minute, 16 * 60);
	assert_int_equal(provider_octopus.publish_spread_s, 4 * 3600);
	assert_float_equal(provider_octopus.max_abs, 100.0, 0);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T_(test_product_code_is_derived_from_tariff_code),
	        T_(test_malformed_tariff_codes_are_refused),
	        T_(test_real_page_is_converted_to_gbp_oldest_first),
	        T_(test_day_window_gives_48_contiguous_half_hours),
	        T_(test_dst_days_have_46_and_50_half_hours),
	        T_(test_empty_results_are_no_slots_and_no_error),
	        T_(test_payment_duplicates_keep_direct_debit),
	        T_(test_other_payment_method_kept_without_direct_debit_row),
	        T_(test_open_ended_rate_is_clipped_to_range_end),
	        T_(test_open_ended_rate_stops_at_the_end_of_tomorrow),
	        T_(test_long_rate_is_split_into_local_days_over_dst),
	        T_(test_row_repeated_on_two_pages_counts_once),
	        T_(test_same_slot_with_two_values_is_garbage),
	        T_(test_overlapping_rates_are_garbage),
	        T_(test_missing_fields_are_parse_errors),
	        T_(test_mistyped_fields_are_parse_errors),
	        T_(test_bad_times_are_garbage),
	        T_(test_absurd_numbers_are_refused),
	        T_(test_non_json_bodies_are_parse_errors),
	        T_(test_more_rows_than_a_slot_list_holds_are_garbage),
	        T_(test_real_account_gives_import_agreements_oldest_first),
	        T_(test_export_meter_points_are_not_tariffs_paid),
	        T_(test_account_garbage_is_refused),
	        T_(test_account_with_more_agreements_than_room_is_refused),
	        T_(test_fetch_asks_for_the_range_and_largest_page),
	        T_(test_fetch_uses_gas_path_for_gas_tariffs),
	        T_(test_fetch_follows_next_links_until_null),
	        T_(test_fetch_drops_row_repeated_when_pages_shift),
	        T_(test_next_link_back_to_the_same_page_is_refused),
	        T_(test_endless_pagination_stops_at_the_page_cap),
	        T_(test_next_link_host_is_ignored_and_path_checked),
	        T_(test_next_link_keeps_a_base_url_path_prefix),
	        T_(test_unknown_tariff_is_not_found_with_a_clear_message),
	        T_(test_html_answer_is_forbidden),
	        T_(test_bad_request_carries_the_upstream_detail),
	        T_(test_server_error_is_passed_on),
	        T_(test_series_that_is_neither_tariff_nor_alias_is_refused_without_a_call),
	        T_(test_account_tariffs_split_the_range_by_agreement),
	        T_(test_account_record_is_cached_and_reused),
	        T_(test_old_account_record_is_refreshed),
	        T_(test_old_account_record_serves_while_upstream_is_down),
	        T_(test_account_errors_are_clear),
	        T_(test_import_points_on_different_tariffs_are_refused),
	        T_(test_fetch_by_alias_concatenates_the_tariffs),
	        T_(test_fetch_by_alias_keeps_nothing_when_a_tariff_fails),
	        T_(test_provider_fields_for_the_scheduler),
	};
	log_open(LOG_LEVEL_ERROR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
