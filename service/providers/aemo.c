/* aemo.c - AEMO NEM 5-minute dispatch prices; see include/ratepool/aemo.h. */
#include "ratepool/aemo.h"

#include "ratepool/config.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define AEMO_INTERVAL 300
#define AEMO_URL_MAX  1024
/* The 5MIN report is ~1,600 rows (~300 kB); far larger is not one. */
#define AEMO_BODY_MAX (32u << 20)
/* Five regions of at most SLOT_LIST_MAX rows each, plus forecasts. */
#define AEMO_ROWS_MAX (6 * SLOT_LIST_MAX)
/* The request body AEMO's own page sends; without it the report is 500. */
#define AEMO_5MIN_BODY "{\"timeScale\":[\"30MIN\"]}"

static const char *const aemo_regions[] = {"NSW1", "QLD1", "VIC1", "SA1", "TAS1"};

bool aemo_region_known(const char *region)
{
	size_t i;

	if(!region)
		return false;
	for(i = 0; i < sizeof(aemo_regions) / sizeof(aemo_regions[0]); i++)
		if(!strcmp(region, aemo_regions[i]))
			return true;
	return false;
}

int aemo_parse_5min(const char *body, size_t len, const char *region, int64_t from, int64_t to,
                    struct slot_list *out, struct rp_err *err)
{
	json_t *root = NULL;
	json_error_t jerr;
	const json_t *rows, *row;
	size_t i, n, region_rows = 0;
	int64_t prev_end = 0;
	bool have_prev = false;
	int rc = 0;

	slot_list_clear(out);
	out->unit[0] = '\0';
	if(http_text_is_html(body, len, NULL)) {
		rc = rp_err_set(err, RP_EFORBIDDEN, "upstream answered with an HTML page (CDN block?)");
		goto out;
	}
	if(!body || !region || len > AEMO_BODY_MAX) {
		rc = rp_err_set(err, body && region ? RP_ETOOLARGE : RP_EPARSE,
		                "AEMO 5MIN: no body or too large");
		goto out;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if(!root) {
		rc = rp_err_set(err, RP_EPARSE, "AEMO 5MIN report is not JSON (line %d: %.80s)", jerr.line,
		                jerr.text);
		goto out;
	}
	rows = json_object_get(root, "5MIN");
	if(!json_is_array(rows)) {
		rc = rp_err_set(err, RP_EPARSE, "AEMO answer has no \"5MIN\" array");
		goto out;
	}
	n = json_array_size(rows);
	if(n == 0) {
		rc = rp_err_set(err, RP_EGARBAGE, "AEMO 5MIN report holds no rows");
		goto out;
	}
	if(n > AEMO_ROWS_MAX) {
		rc = rp_err_set(err, RP_ETOOLARGE, "AEMO 5MIN report holds %zu rows, more than %d", n,
		                AEMO_ROWS_MAX);
		goto out;
	}

	json_array_foreach(rows, i, row)
	{
		const json_t *reg = json_object_get(row, "REGIONID");
		const json_t *type = json_object_get(row, "PERIODTYPE");
		const json_t *date, *rrp;
		int64_t end;
		double v;

		if(!json_is_object(row) || !json_is_string(reg) || !json_is_string(type)) {
			rc = rp_err_set(err, RP_EPARSE,
			                "AEMO 5MIN row %zu lacks a string REGIONID or PERIODTYPE", i);
			goto out;
		}
		if(strcmp(json_string_value(reg), region))
			continue;
		region_rows++;
		/* Predispatch (FORECAST) rows are 30-minute, revisable
		 * forecasts: only settled dispatch prices are kept. */
		if(strcmp(json_string_value(type), "ACTUAL"))
			continue;
		date = json_object_get(row, "SETTLEMENTDATE");
		rrp = json_object_get(row, "RRP");
		if(!json_is_string(date) || !json_is_number(rrp)) {
			rc = rp_err_set(err, RP_EPARSE,
			                "AEMO 5MIN row %zu lacks a string SETTLEMENTDATE or a number RRP", i);
			goto out;
		}
		/* SETTLEMENTDATE is NEM time (UTC+10, no DST), no offset. */
		if(rtime_parse_local(json_string_value(date), RTIME_NEM, &end) || end % AEMO_INTERVAL) {
			rc = rp_err_set(err, RP_EGARBAGE, "AEMO 5MIN row %zu has a bad SETTLEMENTDATE", i);
			goto out;
		}
		v = json_number_value(rrp) / 1000.0; /* AUD/MWh -> AUD/kWh */
		if(!isfinite(v) || fabs(v) > AEMO_MAX_ABS) {
			rc = rp_err_set(err, RP_EGARBAGE, "AEMO 5MIN row %zu has an absurd price", i);
			goto out;
		}
		if(have_prev && end <= prev_end) {
			rc = rp_err_set(err, RP_EGARBAGE, "AEMO 5MIN row %zu is out of order or repeated", i);
			goto out;
		}
		have_prev = true;
		prev_end = end;
		/* SETTLEMENTDATE marks the END of the interval. Keep every slot
		 * overlapping the range. */
		if(end - AEMO_INTERVAL < to && end > from) {
			rc = slot_list_push(out, end - AEMO_INTERVAL, end, v, NAN);
			if(rc) {
				rp_err_set(err, rc, "AEMO 5MIN: cannot keep row %zu", i);
				goto out;
			}
		}
	}
	if(!region_rows) {
		rc = rp_err_set(err, RP_ENOTFOUND, "AEMO 5MIN report has no rows for region %s", region);
		goto out;
	}
	snprintf(out->unit, sizeof(out->unit), "AUD/kWh");
	rc = slot_list_validate(out, AEMO_MAX_ABS, err);
out:
	json_decref(root);
	if(rc)
		slot_list_clear(out);
	return rc;
}

static int aemo_fetch(const struct provider_ctx *ctx, const char *id, int64_t from, int64_t to,
                      struct provider_result *res, struct rp_err *err)
{
	static const struct http_retry_policy once = {1, 0, 0, 0};
	static const char *const headers[] = {
	        "Accept: application/json",
	        "Referer: https://visualisations.aemo.com.au/aemo/apps/visualisation/index.html",
	        "Origin: https://visualisations.aemo.com.au",
	        NULL,
	};
	const struct config *cfg = ctx ? ctx->cfg : NULL;
	const struct http_retry_policy *policy = ctx && ctx->retry ? ctx->retry : &once;
	struct http_request req;
	struct http_response resp;
	char url[AEMO_URL_MAX];
	const char *base;
	size_t base_len;
	int rc, attempts = 0, n;

	memset(&resp, 0, sizeof(resp));
	if(!cfg || !cfg->aemo_url) {
		rc = rp_err_set(err, RP_EINVAL, "AEMO: no configuration");
		goto out;
	}
	if(!aemo_region_known(id)) {
		rc = rp_err_set(err, RP_ENOTFOUND,
		                "AEMO has no NEM region \"%s\": use NSW1, QLD1, VIC1, SA1 or TAS1",
		                id ? id : "");
		goto out;
	}
	snprintf(res->source, sizeof(res->source), "aemo/5MIN");
	/* Only dispatch prices already settled exist: a range wholly in the
	 * future cannot hold any, so it costs no upstream call. */
	if(from >= rtime_now()) {
		snprintf(res->slots.unit, sizeof(res->slots.unit), "AUD/kWh");
		rc = 0;
		goto out;
	}
	base = cfg->aemo_url;
	base_len = strlen(base);
	while(base_len && base[base_len - 1] == '/')
		base_len--;
	n = snprintf(url, sizeof(url), "%.*s/aemo/apps/api/report/5MIN", (int)base_len, base);
	if(n < 0 || (size_t)n >= sizeof(url)) {
		rc = rp_err_set(err, RP_ETOOLARGE, "AEMO: request URL too long");
		goto out;
	}

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = url;
	req.body = AEMO_5MIN_BODY;
	req.content_type = "application/json";
	req.headers = headers;
	req.connect_timeout_ms = cfg->http_connect_timeout_ms;
	req.timeout_ms = cfg->http_timeout_ms;
	req.max_body = cfg->http_max_body_bytes > 0 ? (size_t)cfg->http_max_body_bytes : 0;
	rc = http_perform_retry(&req, policy, &resp, &attempts, err);
	res->upstream_calls += attempts;
	if(rc) {
		if(rc == RP_EFORBIDDEN && http_text_is_html(resp.body, resp.len, resp.content_type))
			rp_err_set(err, rc,
			           "AEMO refused the request with an HTML page (HTTP 403, a WAF/CDN block?): "
			           "check "
			           "RATEPOOL_AEMO_URL points at visualisations.aemo.com.au");
		else if(rc == RP_ENOTFOUND)
			rp_err_set(err, rc, "AEMO answered 404 for the 5MIN report: check RATEPOOL_AEMO_URL");
		goto out;
	}
	if(http_text_is_html(resp.body, resp.len, resp.content_type)) {
		rc = rp_err_set(err, RP_EFORBIDDEN, "upstream answered with an HTML page (CDN block?)");
		goto out;
	}
	rc = aemo_parse_5min(resp.body, resp.len, id, from, to, &res->slots, err);
	if(rc)
		goto out;
	log_debug("aemo_fetched", "region=%s slots=%zu", id, res->slots.n);
out:
	http_response_free(&resp);
	if(rc)
		slot_list_clear(&res->slots);
	return rc;
}

const struct provider provider_aemo = {
        .id = "aemo",
        .unit = "AUD/kWh",
        .zone = RTIME_NEM,
        .resolution = AEMO_INTERVAL,
        .max_abs = AEMO_MAX_ABS,
        .cadence = PROVIDER_PERIODIC,
        .publish_minute = 0,
        .publish_spread_s = 0,
        .period_s = AEMO_INTERVAL,
        .delay_s = 60,
        .revisable = false,
        .history = PROVIDER_HISTORY_ROLLING,
        .history_s = 86400,
        .needs_auth = false,
        .fetch = aemo_fetch,
};
