/* watttime.c - WattTime v3 forecast client; see include/ratepool/watttime.h. */
#include "ratepool/watttime.h"

#include "ratepool/auth.h"
#include "ratepool/config.h"
#include "ratepool/http.h"
#include "ratepool/log.h"
#include "ratepool/rtime.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WATTTIME_DEFAULT_SIGNAL "co2_moer"
#define WATTTIME_DEFAULT_PERIOD 300
#define WATTTIME_MAX_HORIZON_H  72
#define WATTTIME_URL_MAX        1024
/* A forecast body is a few tens of kB; anything far larger is not one. */
#define WATTTIME_BODY_MAX        (16u << 20)
#define WATTTIME_WARNINGS_LOGGED 8

/* Upstream text that goes into a user-facing message: printable ASCII,
 * bounded, so a hostile body cannot inject control characters. */
static void copy_printable(const char *in, char *out, size_t n)
{
	size_t i = 0;

	for(; in && *in && i + 1 < n; in++)
		out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : ' ';
	out[i] = '\0';
}

/* The upstream's own explanation in a JSON error body ("message", else
 * "error", else "detail"), or "" when there is none. */
static void upstream_message(const char *body, size_t len, char *out, size_t n)
{
	static const char *const keys[] = {"message", "error", "detail"};
	json_t *root = NULL;
	size_t i;

	out[0] = '\0';
	if(!body || !len || len > WATTTIME_BODY_MAX)
		return;
	root = json_loadb(body, len, 0, NULL);
	if(!json_is_object(root))
		goto out;
	for(i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *s = json_string_value(json_object_get(root, keys[i]));
		if(s && *s) {
			copy_printable(s, out, n);
			break;
		}
	}
out:
	json_decref(root);
}

/* A unit we are willing to publish: a short plain word such as
 * "lbs_co2_per_mwh" or "$_per_mwh". */
static bool unit_plain(const char *u)
{
	size_t i, n = strlen(u);

	if(n == 0 || n >= SLOT_UNIT_SIZE)
		return false;
	for(i = 0; i < n; i++) {
		char c = u[i];
		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		     c == '$' || c == '%' || c == '/' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static void log_warnings(const json_t *warnings, const char *region)
{
	size_t i;
	const json_t *w;
	char type[64], msg[200];

	if(!json_is_array(warnings))
		return;
	json_array_foreach(warnings, i, w)
	{
		if(i >= WATTTIME_WARNINGS_LOGGED)
			break;
		copy_printable(json_string_value(json_object_get(w, "type")), type, sizeof(type));
		copy_printable(json_string_value(json_object_get(w, "message")), msg, sizeof(msg));
		log_warn("watttime_warning", "region=%s type=\"%s\" msg=\"%s\"", region ? region : "?", type,
		         msg);
	}
}

/* Checks an optional string field of meta against what was asked. */
static int meta_matches(const json_t *meta, const char *key, const char *want, struct rp_err *err)
{
	const json_t *v = json_object_get(meta, key);
	char got[64];

	if(!v || json_is_null(v))
		return 0;
	if(!json_is_string(v))
		return rp_err_set(err, RP_EPARSE, "WattTime forecast: meta.%s is not a string", key);
	if(want && strcasecmp(json_string_value(v), want)) {
		copy_printable(json_string_value(v), got, sizeof(got));
		return rp_err_set(err, RP_EGARBAGE, "WattTime forecast is for %s \"%s\", not \"%s\"", key,
		                  got, want);
	}
	return 0;
}

int watttime_parse_forecast(const char *body, size_t len, const char *region, const char *signal,
                            int64_t from, int64_t to, struct slot_list *out, struct rp_err *err)
{
	json_t *root = NULL;
	json_error_t jerr;
	const json_t *data, *meta, *units, *period_v, *pt;
	int64_t period = WATTTIME_DEFAULT_PERIOD, prev = 0;
	size_t i, n;
	int rc = 0;

	slot_list_clear(out);
	out->unit[0] = '\0';
	if(http_text_is_html(body, len, NULL)) {
		rc = rp_err_set(err, RP_EFORBIDDEN, "upstream answered with an HTML page (CDN block?)");
		goto out;
	}
	if(!body || len > WATTTIME_BODY_MAX) {
		rc = rp_err_set(err, body ? RP_ETOOLARGE : RP_EPARSE,
		                "WattTime forecast: no body or too large");
		goto out;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if(!root) {
		rc = rp_err_set(err, RP_EPARSE, "WattTime forecast is not JSON (line %d: %.80s)", jerr.line,
		                jerr.text);
		goto out;
	}
	data = json_object_get(root, "data");
	meta = json_object_get(root, "meta");
	if(!json_is_array(data) || !json_is_object(meta)) {
		rc = rp_err_set(err, RP_EPARSE, "WattTime forecast has no \"data\" array or \"meta\" object");
		goto out;
	}
	units = json_object_get(meta, "units");
	if(!json_is_string(units)) {
		rc = rp_err_set(err, RP_EPARSE, "WattTime forecast has no meta.units string");
		goto out;
	}
	if(!unit_plain(json_string_value(units))) {
		rc = rp_err_set(err, RP_EGARBAGE, "WattTime forecast has an unusable unit");
		goto out;
	}
	rc = meta_matches(meta, "region", region, err);
	if(!rc)
		rc = meta_matches(meta, "signal_type", signal, err);
	if(rc)
		goto out;
	period_v = json_object_get(meta, "data_point_period_seconds");
	if(period_v && !json_is_null(period_v)) {
		if(!json_is_integer(period_v)) {
			rc = rp_err_set(err, RP_EPARSE,
			                "WattTime forecast: data_point_period_seconds is not an integer");
			goto out;
		}
		period = json_integer_value(period_v);
		if(period < 60 || period > 3600 || period % 60) {
			rc = rp_err_set(err, RP_EGARBAGE, "WattTime forecast: absurd point period %lld s",
			                (long long)period);
			goto out;
		}
	}
	n = json_array_size(data);
	if(n == 0) {
		rc = rp_err_set(err, RP_EGARBAGE, "WattTime forecast holds no points");
		goto out;
	}
	if(n > SLOT_LIST_MAX) {
		rc = rp_err_set(err, RP_ETOOLARGE, "WattTime forecast holds %zu points, more than %d", n,
		                SLOT_LIST_MAX);
		goto out;
	}
	log_warnings(json_object_get(meta, "warnings"), region);

	json_array_foreach(data, i, pt)
	{
		const json_t *tv = json_object_get(pt, "point_time");
		const json_t *vv = json_object_get(pt, "value");
		int64_t t;
		double v;

		if(!json_is_object(pt) || !json_is_string(tv) || !json_is_number(vv)) {
			rc = rp_err_set(
			        err, RP_EPARSE,
			        "WattTime forecast point %zu lacks a string point_time or a number value", i);
			goto out;
		}
		if(rtime_parse(json_string_value(tv), &t) || t % 60) {
			rc = rp_err_set(err, RP_EGARBAGE, "WattTime forecast point %zu has a bad point_time",
			                i);
			goto out;
		}
		v = json_number_value(vv);
		if(!isfinite(v) || fabs(v) > WATTTIME_MAX_ABS) {
			rc = rp_err_set(err, RP_EGARBAGE, "WattTime forecast point %zu has an absurd value",
			                i);
			goto out;
		}
		if(i && t < prev + period) {
			rc = rp_err_set(err, RP_EGARBAGE,
			                "WattTime forecast point %zu is out of order or overlaps", i);
			goto out;
		}
		prev = t;
		/* Keep every point whose slot overlaps the range, so a range
		 * that starts mid-slot still gets the slot holding its start. */
		if(t < to && t + period > from) {
			rc = slot_list_push(out, t, t + period, v, NAN);
			if(rc) {
				rp_err_set(err, rc, "WattTime forecast: cannot keep point %zu", i);
				goto out;
			}
		}
	}
	snprintf(out->unit, sizeof(out->unit), "%s", json_string_value(units));
	rc = slot_list_validate(out, WATTTIME_MAX_ABS, err);
out:
	json_decref(root);
	if(rc)
		slot_list_clear(out);
	return rc;
}

int watttime_explain_error(int code, long status, const char *body, size_t len, const char *region,
                           const char *signal, struct rp_err *err)
{
	char up[160];
	const char *r = region ? region : "?";
	const char *s = signal ? signal : WATTTIME_DEFAULT_SIGNAL;
	bool html = http_text_is_html(body, len, NULL);

	upstream_message(body, len, up, sizeof(up));
	/* A 403 with WattTime's JSON "Invalid scope" body is about the
	 * region, not the token, even when auth_perform tried a fresh login
	 * first (it treats a WattTime 403 as a possibly expired token) and so
	 * reports RP_EAUTH. */
	if((code == RP_EFORBIDDEN || code == RP_EAUTH) && status == 403 && !html && up[0])
		return rp_err_set(err, RP_EFORBIDDEN,
		                  "WattTime region %s (signal %s) is not in your WattTime plan: use a region "
		                  "your account may read (GET /v3/my-access lists them; free accounts get "
		                  "CAISO_NORTH) or see https://api.watttime.org/plans/",
		                  r, s);
	switch(code) {
	case RP_EFORBIDDEN:
	case RP_EAUTH:
		if(status == 403)
			return rp_err_set(
			        err, code,
			        "WattTime answered 403%s even with a fresh token: the account was refused "
			        "or a CDN blocked the request; check RATEPOOL_WATTTIME_USERNAME and "
			        "RATEPOOL_WATTTIME_PASSWORD",
			        html ? " with an HTML page" : "");
		return rp_err_set(err, code,
		                  "WattTime refused the credentials: check RATEPOOL_WATTTIME_USERNAME and "
		                  "RATEPOOL_WATTTIME_PASSWORD");
	case RP_ENOTFOUND:
		return rp_err_set(err, RP_ENOTFOUND,
		                  "WattTime does not know region %s: use a WattTime region id such as "
		                  "CAISO_NORTH (GET /v3/region-from-loc finds yours)",
		                  r);
	case RP_EUPSTREAM:
		if(strcasestr(up, "region"))
			return watttime_explain_error(RP_ENOTFOUND, status, NULL, 0, region, signal, err);
		return rp_err_set(err, RP_EUPSTREAM,
		                  "WattTime refused the forecast query (HTTP %ld%s%s): check "
		                  "RATEPOOL_WATTTIME_SIGNAL (co2_moer, co2_aoer or health_damage, now %s)",
		                  status, up[0] ? ": " : "", up, s);
	default:
		return code;
	}
}

static int watttime_fetch(const struct provider_ctx *ctx, const char *id, int64_t from, int64_t to,
                          struct provider_result *res, struct rp_err *err)
{
	static const struct http_retry_policy once = {1, 0, 0, 0};
	static const char *const headers[] = {"Accept: application/json", NULL};
	const struct config *cfg = ctx ? ctx->cfg : NULL;
	const struct http_retry_policy *policy = ctx && ctx->retry ? ctx->retry : &once;
	struct http_request req;
	struct http_response resp;
	char url[WATTTIME_URL_MAX], region[3 * SERIES_ID_MAX + 1], sig[128];
	const char *signal, *base;
	size_t base_len;
	int64_t horizon;
	int rc, attempts = 0, n;

	memset(&resp, 0, sizeof(resp));
	if(!cfg || !cfg->watttime_url) {
		rc = rp_err_set(err, RP_EINVAL, "WattTime: no configuration");
		goto out;
	}
	if(!ctx->auth || !cfg->watttime_username || !cfg->watttime_password) {
		rc = rp_err_set(err, RP_EINVAL,
		                "WattTime needs an account: set RATEPOOL_WATTTIME_USERNAME and "
		                "RATEPOOL_WATTTIME_PASSWORD");
		goto out;
	}
	signal = cfg->watttime_signal && *cfg->watttime_signal ? cfg->watttime_signal
	                                                       : WATTTIME_DEFAULT_SIGNAL;
	if(http_escape(id, region, sizeof(region)) || http_escape(signal, sig, sizeof(sig))) {
		rc = rp_err_set(err, RP_EINVAL, "WattTime: region or signal too long");
		goto out;
	}
	/* The forecast starts about now; ask for just enough hours to reach
	 * `to`, within the API's 1..72. */
	horizon = (to - rtime_now() + 3599) / 3600;
	if(horizon < 1)
		horizon = 1;
	if(horizon > WATTTIME_MAX_HORIZON_H)
		horizon = WATTTIME_MAX_HORIZON_H;
	base = cfg->watttime_url;
	base_len = strlen(base);
	while(base_len && base[base_len - 1] == '/')
		base_len--;
	n = snprintf(url, sizeof(url), "%.*s/v3/forecast?region=%s&signal_type=%s&horizon_hours=%lld",
	             (int)base_len, base, region, sig, (long long)horizon);
	if(n < 0 || (size_t)n >= sizeof(url)) {
		rc = rp_err_set(err, RP_ETOOLARGE, "WattTime: request URL too long");
		goto out;
	}

	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.headers = headers;
	req.connect_timeout_ms = cfg->http_connect_timeout_ms;
	req.timeout_ms = cfg->http_timeout_ms;
	req.max_body = cfg->http_max_body_bytes > 0 ? (size_t)cfg->http_max_body_bytes : 0;
	rc = auth_perform(ctx->auth, AUTH_WATTTIME, &req, policy, &resp, &attempts, err);
	res->upstream_calls += attempts;
	if(rc) {
		rc = watttime_explain_error(rc, resp.status, resp.body, resp.len, id, signal, err);
		goto out;
	}
	if(http_text_is_html(resp.body, resp.len, resp.content_type)) {
		rc = rp_err_set(err, RP_EFORBIDDEN, "upstream answered with an HTML page (CDN block?)");
		goto out;
	}
	rc = watttime_parse_forecast(resp.body, resp.len, id, signal, from, to, &res->slots, err);
	if(rc)
		goto out;
	snprintf(res->source, sizeof(res->source), "watttime/v3/forecast");
	log_debug("watttime_fetched", "region=%s signal=%s slots=%zu", id, signal, res->slots.n);
out:
	http_response_free(&resp);
	if(rc)
		slot_list_clear(&res->slots);
	return rc;
}

const struct provider provider_watttime = {
        .id = "watttime",
        .unit = "lbs_co2_per_mwh",
        .zone = RTIME_UTC,
        .resolution = WATTTIME_DEFAULT_PERIOD,
        .max_abs = WATTTIME_MAX_ABS,
        .cadence = PROVIDER_PERIODIC,
        .publish_minute = 0,
        .publish_spread_s = 0,
        .period_s = 300,
        .delay_s = 60,
        .revisable = true,
        .needs_auth = true,
        .fetch = watttime_fetch,
};
