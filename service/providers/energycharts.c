/* energycharts.c - Energy-Charts day-ahead prices; see include/ratepool/energycharts.h. */
#include "ratepool/energycharts.h"

#include "ratepool/config.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EC_URL_MAX 1024
/* A week of 15-minute prices is ~40 kB; far larger is not an answer. */
#define EC_BODY_MAX (16u << 20)
/* Longest step that is still one slot; a larger one is a gap. */
#define EC_MAX_STEP 3600
/* 2025-10-01 00:00 CEST: DE-LU and its neighbours went to 15 minutes. */
#define EC_QUARTER_HOUR_SINCE 1759269600LL
#define EC_TIME_MIN           946684800LL  /* 2000-01-01 */
#define EC_TIME_MAX           4102444800LL /* 2100-01-01 */

static void copy_printable(const char *in, char *out, size_t n)
{
	size_t i = 0;

	for(; in && *in && i + 1 < n; in++)
		out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : ' ';
	out[i] = '\0';
}

/* FastAPI's {"detail": "..."} (or a list of validation errors, whose
 * first "msg" is taken), or "" when the body has none. */
static void upstream_detail(const char *body, size_t len, char *out, size_t n)
{
	json_t *root = NULL;
	const json_t *d;

	out[0] = '\0';
	if(!body || !len || len > EC_BODY_MAX)
		return;
	root = json_loadb(body, len, 0, NULL);
	d = json_object_get(root, "detail");
	if(json_is_array(d))
		d = json_object_get(json_array_get(d, 0), "msg");
	copy_printable(json_string_value(d), out, n);
	json_decref(root);
}

/* True for "EUR/MWh" in any spacing or case ("EUR / MWh" today), and for
 * "No Unit", which the API said in 2024 while its prices were EUR/MWh. */
static bool unit_accepted(const char *u)
{
	char norm[32];
	size_t i = 0;

	if(!strcasecmp(u, "No Unit"))
		return true;
	for(; *u; u++) {
		if(isspace((unsigned char)*u))
			continue;
		if(i + 1 >= sizeof(norm))
			return false;
		norm[i++] = *u;
	}
	norm[i] = '\0';
	return !strcasecmp(norm, "EUR/MWh");
}

/* Slot length for point i when its successor does not end it (the last
 * point, or a gap after it): the step before it, else the step after the
 * next point, else what the date implies. */
static int64_t fallback_step(const int64_t *ts, size_t n, size_t i)
{
	if(i > 0 && ts[i] - ts[i - 1] <= EC_MAX_STEP)
		return ts[i] - ts[i - 1];
	if(i + 2 < n && ts[i + 2] - ts[i + 1] <= EC_MAX_STEP)
		return ts[i + 2] - ts[i + 1];
	/* Too few neighbours: the shorter guess never claims a price for
	 * time the upstream did not price. */
	return ts[i] >= EC_QUARTER_HOUR_SINCE ? 900 : 3600;
}

int energycharts_parse(const char *body, size_t len, int64_t from, int64_t to, struct slot_list *out,
                       struct rp_err *err)
{
	json_t *root = NULL;
	json_error_t jerr;
	const json_t *times, *prices, *unit, *dep, *e;
	int64_t *ts = NULL;
	size_t i, n;
	int rc = 0;

	slot_list_clear(out);
	out->unit[0] = '\0';
	if(http_text_is_html(body, len, NULL)) {
		rc = rp_err_set(err, RP_EFORBIDDEN, "upstream answered with an HTML page (CDN block?)");
		goto out;
	}
	if(!body || len > EC_BODY_MAX) {
		rc = rp_err_set(err, body ? RP_ETOOLARGE : RP_EPARSE, "Energy-Charts: no body or too large");
		goto out;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if(!root) {
		rc = rp_err_set(err, RP_EPARSE, "Energy-Charts answer is not JSON (line %d: %.80s)",
		                jerr.line, jerr.text);
		goto out;
	}
	times = json_object_get(root, "unix_seconds");
	prices = json_object_get(root, "price");
	if(!json_is_array(times) || !json_is_array(prices)) {
		rc = rp_err_set(err, RP_EPARSE,
		                "Energy-Charts answer has no \"unix_seconds\" and \"price\" arrays");
		goto out;
	}
	unit = json_object_get(root, "unit");
	if(unit && !json_is_null(unit)) {
		char shown[40];
		if(!json_is_string(unit)) {
			rc = rp_err_set(err, RP_EPARSE, "Energy-Charts answer: \"unit\" is not a string");
			goto out;
		}
		if(!unit_accepted(json_string_value(unit))) {
			copy_printable(json_string_value(unit), shown, sizeof(shown));
			rc = rp_err_set(err, RP_EGARBAGE,
			                "Energy-Charts answered in a wrong unit \"%s\" (want EUR/MWh)",
			                shown);
			goto out;
		}
	}
	dep = json_object_get(root, "deprecated");
	if(json_is_true(dep))
		log_warn("energycharts_deprecated", "msg=\"%s\"",
		         "Energy-Charts marks the price endpoint deprecated; it may be removed in ~6 months");

	n = json_array_size(times);
	if(n != json_array_size(prices)) {
		rc = rp_err_set(err, RP_EGARBAGE, "Energy-Charts answer has %zu times but %zu prices", n,
		                json_array_size(prices));
		goto out;
	}
	if(n == 0) {
		rc = rp_err_set(err, RP_EGARBAGE, "Energy-Charts answer holds no prices");
		goto out;
	}
	if(n > SLOT_LIST_MAX) {
		rc = rp_err_set(err, RP_ETOOLARGE, "Energy-Charts answer holds %zu prices, more than %d", n,
		                SLOT_LIST_MAX);
		goto out;
	}
	ts = malloc(n * sizeof(*ts));
	if(!ts) {
		rc = rp_err_set(err, RP_ENOMEM, "Energy-Charts: out of memory");
		goto out;
	}
	json_array_foreach(times, i, e)
	{
		if(!json_is_integer(e)) {
			rc = rp_err_set(err, RP_EPARSE, "Energy-Charts unix_seconds[%zu] is not an integer",
			                i);
			goto out;
		}
		ts[i] = json_integer_value(e);
		if(ts[i] < EC_TIME_MIN || ts[i] > EC_TIME_MAX || ts[i] % 60) {
			rc = rp_err_set(err, RP_EGARBAGE,
			                "Energy-Charts unix_seconds[%zu] is not a believable slot start", i);
			goto out;
		}
		if(i && ts[i] <= ts[i - 1]) {
			rc = rp_err_set(err, RP_EGARBAGE,
			                "Energy-Charts unix_seconds[%zu] is out of order or repeated", i);
			goto out;
		}
	}

	json_array_foreach(prices, i, e)
	{
		int64_t end;
		double v;

		/* null: the upstream has no price for that slot. It stays
		 * missing (never 0), and its time still ends the slot before. */
		if(json_is_null(e))
			continue;
		if(!json_is_number(e)) {
			rc = rp_err_set(err, RP_EPARSE, "Energy-Charts price[%zu] is not a number", i);
			goto out;
		}
		v = json_number_value(e) / 1000.0; /* EUR/MWh -> EUR/kWh */
		if(!isfinite(v) || fabs(v) > ENERGYCHARTS_MAX_ABS) {
			rc = rp_err_set(err, RP_EGARBAGE, "Energy-Charts price[%zu] is absurd", i);
			goto out;
		}
		/* A slot ends where the next begins, which keeps a day that
		 * changes from hourly to 15-minute slots exact. */
		if(i + 1 < n && ts[i + 1] - ts[i] <= EC_MAX_STEP)
			end = ts[i + 1];
		else
			end = ts[i] + fallback_step(ts, n, i);
		if(i + 1 < n && end > ts[i + 1])
			end = ts[i + 1];
		if(ts[i] < to && end > from) {
			rc = slot_list_push(out, ts[i], end, v, NAN);
			if(rc) {
				rp_err_set(err, rc, "Energy-Charts: cannot keep price %zu", i);
				goto out;
			}
		}
	}
	snprintf(out->unit, sizeof(out->unit), "EUR/kWh");
	rc = slot_list_validate(out, ENERGYCHARTS_MAX_ABS, err);
out:
	free(ts);
	json_decref(root);
	if(rc)
		slot_list_clear(out);
	return rc;
}

static int energycharts_fetch(const struct provider_ctx *ctx, const char *id, int64_t from, int64_t to,
                              struct provider_result *res, struct rp_err *err)
{
	static const struct http_retry_policy once = {1, 0, 0, 0};
	static const char *const headers[] = {"Accept: application/json", NULL};
	const struct config *cfg = ctx ? ctx->cfg : NULL;
	const struct http_retry_policy *policy = ctx && ctx->retry ? ctx->retry : &once;
	struct http_request req;
	struct http_response resp;
	char url[EC_URL_MAX], bzn[3 * SERIES_ID_MAX + 1], detail[160];
	const char *base;
	size_t base_len;
	int rc, attempts = 0, n;

	memset(&resp, 0, sizeof(resp));
	if(!cfg || !cfg->energycharts_url) {
		rc = rp_err_set(err, RP_EINVAL, "Energy-Charts: no configuration");
		goto out;
	}
	if(!id || http_escape(id, bzn, sizeof(bzn))) {
		rc = rp_err_set(err, RP_EINVAL, "Energy-Charts: bad bidding zone");
		goto out;
	}
	base = cfg->energycharts_url;
	base_len = strlen(base);
	while(base_len && base[base_len - 1] == '/')
		base_len--;
	/* Unix seconds for start and end: exact, with no guess at the
	 * zone's local midnight that a date would imply. */
	n = snprintf(url, sizeof(url), "%.*s/price?bzn=%s&start=%lld&end=%lld", (int)base_len, base, bzn,
	             (long long)from, (long long)to);
	if(n < 0 || (size_t)n >= sizeof(url)) {
		rc = rp_err_set(err, RP_ETOOLARGE, "Energy-Charts: request URL too long");
		goto out;
	}
	snprintf(res->source, sizeof(res->source), "energycharts/price");

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.headers = headers;
	req.connect_timeout_ms = cfg->http_connect_timeout_ms;
	req.timeout_ms = cfg->http_timeout_ms;
	req.max_body = cfg->http_max_body_bytes > 0 ? (size_t)cfg->http_max_body_bytes : 0;
	rc = http_perform_retry(&req, policy, &resp, &attempts, err);
	res->upstream_calls += attempts;
	if(rc == RP_ENOTFOUND && !http_text_is_html(resp.body, resp.len, resp.content_type)) {
		/* "no content available": nothing published for the range
		 * yet (tomorrow before ~13:00 CET). Not an error: no slots,
		 * and the scheduler polls again. */
		upstream_detail(resp.body, resp.len, detail, sizeof(detail));
		log_debug("energycharts_no_data", "bzn=%s detail=\"%s\"", id, detail);
		snprintf(res->slots.unit, sizeof(res->slots.unit), "EUR/kWh");
		rc = 0;
		goto out;
	}
	if(rc) {
		upstream_detail(resp.body, resp.len, detail, sizeof(detail));
		if(rc == RP_EUPSTREAM && resp.status == 400 && strcasestr(detail, "bzn"))
			rc = rp_err_set(
			        err, RP_ENOTFOUND,
			        "Energy-Charts does not know bidding zone \"%s\": use one such as DE-LU, AT, "
			        "FR, NL, BE, CH, DK1, NO1, SE3 or PL (see docs/providers.md)",
			        id);
		else if(rc == RP_EUPSTREAM)
			rp_err_set(err, rc, "Energy-Charts refused the query (HTTP %ld%s%s)", resp.status,
			           detail[0] ? ": " : "", detail);
		else if(rc == RP_ENOTFOUND)
			rp_err_set(err, rc,
			           "Energy-Charts answered 404 with an HTML page: check "
			           "RATEPOOL_ENERGYCHARTS_URL");
		else if(rc == RP_EFORBIDDEN && http_text_is_html(resp.body, resp.len, resp.content_type))
			rp_err_set(err, rc, "upstream answered with an HTML page (CDN block?)");
		goto out;
	}
	if(http_text_is_html(resp.body, resp.len, resp.content_type)) {
		rc = rp_err_set(err, RP_EFORBIDDEN, "upstream answered with an HTML page (CDN block?)");
		goto out;
	}
	rc = energycharts_parse(resp.body, resp.len, from, to, &res->slots, err);
	if(rc)
		goto out;
	log_debug("energycharts_fetched", "bzn=%s slots=%zu", id, res->slots.n);
out:
	http_response_free(&resp);
	if(rc)
		slot_list_clear(&res->slots);
	return rc;
}

const struct provider provider_energycharts = {
        .id = "energycharts",
        .unit = "EUR/kWh",
        .zone = RTIME_CET,
        .resolution = 900,
        .max_abs = ENERGYCHARTS_MAX_ABS,
        .cadence = PROVIDER_DAILY,
        .publish_minute = 13 * 60,
        .publish_spread_s = 3 * 3600,
        .period_s = 0,
        .delay_s = 0,
        .revisable = false,
        .needs_auth = false,
        .fetch = energycharts_fetch,
};
