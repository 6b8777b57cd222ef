/*
 * tibber.c - Tibber GraphQL priceInfo (today and tomorrow, 15-minute
 * resolution). See include/ratepool/tibber.h and docs/providers.md.
 */
#include "ratepool/tibber.h"
#include "ratepool/config.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"
#include "ratepool/series.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_URL "https://api.tibber.com"
#define URL_MAX     2048
#define TEXT_MAX    120

/* 2025-10-01T00:00:00+02:00: the day-ahead market moved to 15-minute
 * products; before it Tibber's prices were hourly. */
#define QUARTER_HOURLY_SINCE 1759269600

static const struct http_retry_policy default_policy = {4, 500, 30000, 60};

struct entry {
	int64_t start;
	double total;
};

/* Copies a message from the upstream into out, printable ASCII only. */
static void copy_text(const char *in, char *out, size_t n)
{
	size_t i, j = 0;

	for(i = 0; in && in[i] && j + 1 < n; i++) {
		unsigned char c = (unsigned char)in[i];
		out[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[j] = '\0';
}

static int contains(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle) != NULL;
}

/* Maps a GraphQL `errors` list to one code and message. */
static int classify_errors(json_t *errors, const char *home_id, struct rp_err *err)
{
	json_t *e = json_array_get(errors, 0);
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(json_object_get(e, "extensions"), "code"));
	char m[TEXT_MAX], c[48];
	size_t i;

	/* an auth error anywhere in the list decides */
	json_array_foreach(errors, i, e)
	{
		const char *ci = json_string_value(json_object_get(json_object_get(e, "extensions"), "code"));
		if(ci && !strcmp(ci, "UNAUTHENTICATED")) {
			msg = json_string_value(json_object_get(e, "message"));
			code = ci;
			break;
		}
	}
	copy_text(msg ? msg : "no message", m, sizeof(m));
	copy_text(code ? code : "none", c, sizeof(c));
	if((code && !strcmp(code, "UNAUTHENTICATED")) || contains(msg, "invalid token") ||
	   contains(msg, "no token"))
		return rp_err_set(err, RP_EAUTH, "Tibber refused the token (%s); check RATEPOOL_TIBBER_TOKEN",
		                  m);
	if((code && !strcmp(code, "NOT_FOUND")) || contains(msg, "not found"))
		return rp_err_set(err, RP_ENOTFOUND, "Tibber home %s not found for this token (%s)", home_id,
		                  m);
	if(contains(code, "RATE") || contains(code, "TOO_MANY") || contains(msg, "too many requests") ||
	   contains(msg, "rate limit"))
		return rp_err_set(err, RP_ERATELIMIT, "Tibber rate limit: %s", m);
	return rp_err_set(err, RP_EUPSTREAM, "Tibber GraphQL error %s: %s", c, m);
}

/* Notes a currency seen in the answer: all must agree. */
static int note_currency(json_t *v, char cur[4], struct rp_err *err)
{
	const char *s;

	if(!v || json_is_null(v))
		return 0;
	if(!json_is_string(v))
		return rp_err_set(err, RP_EPARSE, "tibber: currency is not a string");
	s = json_string_value(v);
	if(strlen(s) != 3 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' || s[2] < 'A' || s[2] > 'Z')
		return rp_err_set(err, RP_EGARBAGE, "tibber: currency '%.8s' is not a currency code", s);
	if(cur[0] && strcmp(cur, s))
		return rp_err_set(err, RP_EGARBAGE, "tibber: prices in two currencies (%s and %s)", cur, s);
	memcpy(cur, s, 4);
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Parses today or tomorrow into slots appended to out. */
static int parse_list(json_t *list, const char *name, char cur[4], struct slot_list *out, struct rp_err *err)
{
	struct entry e[TIBBER_MAX_ENTRIES];
	size_t n = json_array_size(list), i;
	int64_t res = 0;
	json_t *o;
	int rc;

	if(!json_is_array(list))
		return rp_err_set(err, RP_EPARSE, "tibber: %s is %s", name, list ? "not a list" : "missing");
	if(n > TIBBER_MAX_ENTRIES)
		return rp_err_set(err, RP_EGARBAGE, "tibber: %zu prices for %s (at most %d)", n, name,
		                  TIBBER_MAX_ENTRIES);
	json_array_foreach(list, i, o)
	{
		json_t *total, *starts;

		if(!json_is_object(o))
			return rp_err_set(err, RP_EPARSE, "tibber: %s[%zu] is not an object", name, i);
		total = json_object_get(o, "total");
		starts = json_object_get(o, "startsAt");
		if(!json_is_number(total))
			return rp_err_set(err, RP_EPARSE, "tibber: %s[%zu].total is %s", name, i,
			                  !total                  ? "missing"
			                  : json_is_string(total) ? "a string, not a number"
			                                          : "not a number");
		if(!json_is_string(starts))
			return rp_err_set(err, RP_EPARSE, "tibber: %s[%zu].startsAt is %s", name, i,
			                  starts ? "not a string" : "missing");
		e[i].total = json_number_value(total);
		if(!isfinite(e[i].total) || fabs(e[i].total) > TIBBER_MAX_ABS)
			return rp_err_set(err, RP_EGARBAGE, "tibber: %s[%zu].total is absurd (%g)", name, i,
			                  e[i].total);
		if(rtime_parse(json_string_value(starts), &e[i].start))
			return rp_err_set(err, RP_EGARBAGE,
			                  "tibber: %s[%zu].startsAt is not a date-time with offset", name, i);
		rc = note_currency(json_object_get(o, "currency"), cur, err);
		if(rc)
			return rc;
	}
	if(!n)
		return 0;
	qsort(e, n, sizeof(e[0]), entry_cmp);
	for(i = 1; i < n; i++) {
		int64_t d = e[i].start - e[i - 1].start;
		if(d == 0) {
			char t[RTIME_TEXT_SIZE];
			rtime_format(e[i].start, t);
			return rp_err_set(err, RP_EGARBAGE, "tibber: two prices for %s", t);
		}
		if(!res || d < res)
			res = d;
	}
	if(!res)
		res = e[0].start >= QUARTER_HOURLY_SINCE ? 900 : 3600;
	if(res != 900 && res != 3600)
		return rp_err_set(err, RP_EGARBAGE,
		                  "tibber: %s prices are %lld s apart (not 15 or 60 minutes)", name,
		                  (long long)res);
	for(i = 1; i < n; i++)
		if((e[i].start - e[i - 1].start) % res)
			return rp_err_set(err, RP_EGARBAGE, "tibber: %s prices are not on a %lld s grid",
			                  name, (long long)res);
	for(i = 0; i < n; i++) {
		rc = slot_list_push(out, e[i].start, e[i].start + res, e[i].total, NAN);
		if(rc)
			return rp_err_set(err, rc, "tibber: too many slots");
	}
	return 0;
}

static int slot_cmp(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Sorts the slots and refuses overlaps (today's last slot against
 * tomorrow's first, for instance). */
static int check_order(struct slot_list *all, struct rp_err *err)
{
	size_t i;

	if(all->n > 1)
		qsort(all->v, all->n, sizeof(all->v[0]), slot_cmp);
	for(i = 1; i < all->n; i++)
		if(all->v[i].start < all->v[i - 1].end) {
			char t[RTIME_TEXT_SIZE];
			rtime_format(all->v[i].start, t);
			return rp_err_set(err, RP_EGARBAGE, "tibber: prices overlap at %s", t);
		}
	return 0;
}

/* Finds the home object of the answer (borrowed from viewer). */
static int find_home(json_t *viewer, const char *home_id, json_t **out, struct rp_err *err)
{
	json_t *home = json_object_get(viewer, "home");
	json_t *homes, *h;
	size_t i;

	if(home) {
		if(json_is_null(home))
			return rp_err_set(err, RP_ENOTFOUND, "Tibber home %s not found for this token",
			                  home_id);
		if(!json_is_object(home))
			return rp_err_set(err, RP_EPARSE, "tibber: home is not an object");
		*out = home;
		return 0;
	}
	homes = json_object_get(viewer, "homes");
	if(!json_is_array(homes))
		return rp_err_set(err, RP_EPARSE, "tibber: the answer has no home");
	json_array_foreach(homes, i, h)
	{
		const char *id = json_string_value(json_object_get(h, "id"));
		if(json_is_object(h) && id && !strcmp(id, home_id)) {
			*out = h;
			return 0;
		}
	}
	/* an answer to an all-homes query without ids: only one can be meant */
	h = json_array_get(homes, 0);
	if(json_array_size(homes) == 1 && json_is_object(h) && !json_object_get(h, "id")) {
		*out = h;
		return 0;
	}
	return rp_err_set(err, RP_ENOTFOUND, "Tibber home %s not found for this token", home_id);
}

int tibber_parse_prices(const char *body, size_t len, const char *home_id, int64_t from, int64_t to,
                        struct slot_list *out, struct rp_err *err)
{
	json_error_t jerr;
	json_t *root = NULL;
	json_t *errors, *data, *viewer, *home = NULL, *sub, *pi, *current;
	struct slot_list all;
	char cur[4] = "";
	size_t first = out->n, i;
	int rc = 0;

	slot_list_init(&all);

	if(!body || !len)
		return rp_err_set(err, RP_EPARSE, "tibber: empty body");
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if(!root)
		return rp_err_set(err, RP_EPARSE, "tibber: not JSON (line %d: %.80s)", jerr.line, jerr.text);
	if(!json_is_object(root)) {
		rc = rp_err_set(err, RP_EPARSE, "tibber: the answer is not a JSON object");
		goto out;
	}
	errors = json_object_get(root, "errors");
	if(errors && !json_is_null(errors)) {
		if(!json_is_array(errors))
			rc = rp_err_set(err, RP_EPARSE, "tibber: errors is not a list");
		else if(json_array_size(errors))
			rc = classify_errors(errors, home_id, err);
		if(rc)
			goto out;
	}
	data = json_object_get(root, "data");
	viewer = json_object_get(data, "viewer");
	if(!json_is_object(data) || !json_is_object(viewer)) {
		rc = rp_err_set(err, RP_EPARSE, "tibber: the answer has no data.viewer");
		goto out;
	}
	rc = find_home(viewer, home_id, &home, err);
	if(rc)
		goto out;
	sub = json_object_get(home, "currentSubscription");
	if(!sub || json_is_null(sub)) {
		rc = rp_err_set(err, RP_ENOTFOUND, "Tibber home %s has no active subscription", home_id);
		goto out;
	}
	pi = json_object_get(sub, "priceInfo");
	if(!json_is_object(sub) || !json_is_object(pi)) {
		rc = rp_err_set(err, RP_EPARSE, "tibber: the answer has no priceInfo");
		goto out;
	}
	current = json_object_get(pi, "current");
	if(json_is_object(current))
		rc = note_currency(json_object_get(current, "currency"), cur, err);
	if(!rc)
		rc = parse_list(json_object_get(pi, "today"), "today", cur, &all, err);
	if(!rc)
		rc = parse_list(json_object_get(pi, "tomorrow"), "tomorrow", cur, &all, err);
	if(!rc)
		rc = check_order(&all, err);
	if(rc)
		goto out;
	if(!cur[0] && all.n) {
		rc = rp_err_set(err, RP_EPARSE, "tibber: the answer names no currency");
		goto out;
	}
	/* the whole answer is checked above; only the range is kept */
	for(i = 0; i < all.n; i++) {
		if(all.v[i].end <= from || all.v[i].start >= to)
			continue;
		rc = slot_list_push(out, all.v[i].start, all.v[i].end, all.v[i].value,
		                    all.v[i].value_exc_vat);
		if(rc) {
			rp_err_set(err, rc, "tibber: too many slots");
			goto out;
		}
	}
	if(cur[0])
		snprintf(out->unit, sizeof(out->unit), "%s/kWh", cur);
out:
	if(rc)
		out->n = first;
	slot_list_free(&all);
	json_decref(root);
	return rc;
}

/* --- the provider -------------------------------------------------------- */

static int tibber_fetch(const struct provider_ctx *ctx, const char *id, int64_t from, int64_t to,
                        struct provider_result *res, struct rp_err *err)
{
	static const char *const headers[] = {"Accept: application/json", NULL};
	const struct config *cfg = ctx->cfg;
	const char *base = cfg && cfg->tibber_url && *cfg->tibber_url ? cfg->tibber_url : DEFAULT_URL;
	const struct http_retry_policy *pol = ctx->retry ? ctx->retry : &default_policy;
	char url[URL_MAX];
	char query[512];
	char *body = NULL;
	json_t *jbody = NULL;
	struct http_request req;
	struct http_response resp;
	size_t blen = strlen(base);
	int attempts = 0;
	int rc;

	memset(&resp, 0, sizeof(resp));
	snprintf(res->source, sizeof(res->source), "tibber/priceInfo");
	/* The id goes into the query text, so it must be the checked charset
	 * (no quote or backslash can pass). */
	if(!series_id_valid(id))
		return rp_err_set(err, RP_EINVAL, "'%.64s' is not a Tibber home id", id);
	if(!cfg || !cfg->tibber_token || !*cfg->tibber_token)
		return rp_err_set(err, RP_EINVAL,
		                  "tibber needs RATEPOOL_TIBBER_TOKEN (a personal access token)");
	while(blen && base[blen - 1] == '/')
		blen--;
	if(snprintf(url, sizeof(url), "%.*s/v1-beta/gql", (int)blen, base) >= (int)sizeof(url))
		return rp_err_set(err, RP_EINVAL, "RATEPOOL_TIBBER_URL is too long");
	snprintf(
	        query, sizeof(query),
	        "{ viewer { home(id: \"%s\") { currentSubscription { priceInfo(resolution: QUARTER_HOURLY) { "
	        "current { currency } "
	        "today { total energy tax startsAt currency } "
	        "tomorrow { total energy tax startsAt currency } } } } } }",
	        id);
	jbody = json_pack("{s:s}", "query", query);
	body = jbody ? json_dumps(jbody, JSON_COMPACT) : NULL;
	if(!body) {
		rc = rp_err_set(err, RP_ENOMEM, "out of memory");
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = url;
	req.body = body;
	req.content_type = "application/json";
	req.headers = headers;
	req.bearer = cfg->tibber_token;
	req.connect_timeout_ms = cfg->http_connect_timeout_ms;
	req.timeout_ms = cfg->http_timeout_ms;
	req.max_body = cfg->http_max_body_bytes > 0 ? (size_t)cfg->http_max_body_bytes : 0;
	rc = http_perform_retry(&req, pol, &resp, &attempts, err);
	res->upstream_calls += attempts;
	if((rc == 0 || rc == RP_EFORBIDDEN) && http_body_is_html(&resp)) {
		rc = rp_err_set(err, RP_EFORBIDDEN, "upstream answered with an HTML page (CDN block?)");
		goto out;
	}
	if(rc == RP_EUPSTREAM || rc == RP_EAUTH) {
		/* A 400 (or 401) may carry a GraphQL errors list that says more. */
		struct rp_err e2;
		struct slot_list none;
		int rc2;

		rp_err_clear(&e2);
		slot_list_init(&none);
		rc2 = resp.body ? tibber_parse_prices(resp.body, resp.len, id, from, to, &none, &e2)
		                : RP_EPARSE;
		slot_list_free(&none);
		if(rc2 == RP_EAUTH || rc2 == RP_ENOTFOUND || rc2 == RP_ERATELIMIT ||
		   (rc2 == RP_EUPSTREAM && rc == RP_EUPSTREAM))
			rc = rp_err_set(err, rc2, "%s", e2.msg);
		else if(rc == RP_EAUTH)
			rc = rp_err_set(err, RP_EAUTH,
			                "Tibber refused the token (HTTP 401); check RATEPOOL_TIBBER_TOKEN");
		goto out;
	}
	if(rc == RP_ERATELIMIT) {
		rc = rp_err_set(err, rc,
		                "Tibber rate limit reached (about 100 requests per 5 minutes per IP)");
		goto out;
	}
	if(rc)
		goto out;
	rc = tibber_parse_prices(resp.body, resp.len, id, from, to, &res->slots, err);
	if(!rc && !res->slots.unit[0])
		snprintf(res->slots.unit, sizeof(res->slots.unit), "%s", provider_tibber.unit);
out:
	http_response_free(&resp);
	free(body);
	json_decref(jbody);
	return rc;
}

const struct provider provider_tibber = {
        .id = "tibber",
        .unit = "EUR/kWh",
        .zone = RTIME_CET,
        .resolution = 900,
        .max_abs = TIBBER_MAX_ABS,
        .cadence = PROVIDER_DAILY,
        .publish_minute = 13 * 60,
        .publish_spread_s = 3 * 3600,
        .period_s = 0,
        .delay_s = 0,
        .revisable = false,
        .history = PROVIDER_HISTORY_TODAY,
        .needs_auth = true,
        .fetch = tibber_fetch,
};
